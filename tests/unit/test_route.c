/* The routing decision: preference, health, drain, suspect, sites. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core.h"

static struct gw_conf_service svc_pop_imap[] = {
    {.protocol = "pop", .port = 110, .tls = GW_TLS_NONE},
    {.protocol = "imap", .port = 143, .tls = GW_TLS_STARTTLS},
};
static struct gw_conf_service svc_pop_only[] = {
    {.protocol = "pop", .port = 1110, .tls = GW_TLS_IMPLICIT},
};
static struct gw_conf_server servers[] = {
    {.name = "mbx1", .address = "10.0.0.1", .site = "a", .services = svc_pop_imap, .nservices = 2},
    {.name = "mbx2", .address = "10.0.0.2", .site = "a", .services = svc_pop_imap, .nservices = 2},
    {.name = "mbx3", .address = "10.0.0.3", .site = "b", .services = svc_pop_only, .nservices = 1},
};
static char *copies1[] = {"mbx1", "mbx2", "mbx3"};
static char *copies2[] = {"mbx3", "mbx1"};
static struct gw_conf_database databases[] = {
    {.name = "db1", .copies = copies1, .ncopies = 3, .active = "mbx1"},
    {.name = "db2", .copies = copies2, .ncopies = 2, .active = "mbx3"},
    {.name = "db3", .copies = copies1, .ncopies = 3, .active = "mbx2"},
};
static struct gw_conf_site sites[] = {
    {.name = "a", .external_url = NULL},
    {.name = "b", .external_url = "https://b.example.net"},
};
static struct gw_config conf = {
    .servers = servers, .nservers = 3,
    .databases = databases, .ndatabases = 3,
    .sites = sites, .nsites = 2,
    .local_site = "a",
};

struct route_case {
    const char *name;
    const char *database, *site, *protocol;
    unsigned flags;
    bool down[3], suspect[3], drain[3];
    enum gw_route_kind kind;
    const char *server;       /* PROXY: expected server */
    unsigned port;
    const char *reason_has;   /* REFUSE: substring of the reason */
};

static const struct route_case cases[] = {
    {"active first", "db1", "a", "pop", 0, {0}, {0}, {0}, GW_ROUTE_PROXY, "mbx1", 110, NULL},
    {"active not first in list", "db3", "a", "pop", 0, {0}, {0}, {0}, GW_ROUTE_PROXY, "mbx2", 110, NULL},
    {"active down -> next by preference", "db1", "a", "pop", 0, {1, 0, 0}, {0}, {0},
     GW_ROUTE_PROXY, "mbx2", 110, NULL},
    {"active of db3 down -> first preference", "db3", "a", "imap", 0, {0, 1, 0}, {0}, {0},
     GW_ROUTE_PROXY, "mbx1", 143, NULL},
    {"suspect skipped", "db1", "a", "pop", 0, {0}, {1, 0, 0}, {0}, GW_ROUTE_PROXY, "mbx2", 110, NULL},
    {"drained skipped", "db1", "a", "pop", 0, {0}, {0}, {1, 1, 0}, GW_ROUTE_PROXY, "mbx3", 1110, NULL},
    {"server without the service skipped", "db2", "b", "imap", 0, {0}, {0}, {0}, GW_ROUTE_PROXY,
     "mbx1", 143, NULL},
    {"all down -> refuse naming servers", "db1", "a", "pop", 0, {1, 1, 1}, {0}, {0},
     GW_ROUTE_REFUSE, NULL, 0, "mbx1: down, mbx2: down, mbx3: down"},
    {"drain reported", "db2", "b", "pop", 0, {1, 0, 0}, {0}, {0, 0, 1}, GW_ROUTE_REFUSE, NULL, 0,
     "mbx3: draining, mbx1: down"},
    {"unknown database", "nope", "a", "pop", 0, {0}, {0}, {0}, GW_ROUTE_REFUSE, NULL, 0,
     "unknown database nope"},
    {"other site with URL redirects when allowed", "db2", "b", "http", GW_ROUTE_ALLOW_REDIRECT,
     {0}, {0}, {0}, GW_ROUTE_REDIRECT, NULL, 0, NULL},
    {"other site without permission proxies", "db2", "b", "pop", 0, {0}, {0}, {0}, GW_ROUTE_PROXY,
     "mbx3", 1110, NULL},
    {"own site never redirects", "db1", "a", "pop", GW_ROUTE_ALLOW_REDIRECT, {0}, {0}, {0},
     GW_ROUTE_PROXY, "mbx1", 110, NULL},
};

static void test_cases(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct route_case *tc = &cases[i];
        struct gw_server_state st[3];
        struct gw_route_input in;
        struct gw_route r;
        char buf[512];

        for (int k = 0; k < 3; k++) {
            st[k].conf = &servers[k];
            st[k].down = tc->down[k];
            st[k].suspect = tc->suspect[k];
            st[k].drain = tc->drain[k];
        }
        memset(&in, 0, sizeof(in));
        in.conf = &conf;
        in.servers = st;
        in.database = tc->database;
        in.site = tc->site;
        in.protocol = tc->protocol;
        in.flags = tc->flags;
        gw_route_decide(&in, &r, buf, sizeof(buf));
        print_message("case: %s\n", tc->name);
        assert_int_equal(r.kind, tc->kind);
        if (tc->kind == GW_ROUTE_PROXY) {
            assert_string_equal(r.server, tc->server);
            assert_int_equal(r.port, tc->port);
        } else if (tc->kind == GW_ROUTE_REDIRECT) {
            assert_string_equal(r.url, "https://b.example.net");
        } else {
            assert_non_null(r.reason);
            assert_non_null(strstr(r.reason, tc->reason_has));
        }
    }
}

static void test_skip_server(void **state)
{
    struct gw_server_state st[3] = {{&servers[0], 0, 0, 0}, {&servers[1], 0, 0, 0}, {&servers[2], 0, 0, 0}};
    struct gw_route_input in = {.conf = &conf, .servers = st, .database = "db1", .site = "a",
                                .protocol = "pop", .skip_server = "mbx1"};
    struct gw_route r;
    char buf[256];

    (void)state;
    gw_route_decide(&in, &r, buf, sizeof(buf));
    assert_int_equal(r.kind, GW_ROUTE_PROXY);
    assert_string_equal(r.server, "mbx2");
}

/* A database the locator knows from elsewhere (the ldap source): not in
   conf, given as in->db; its own active copy and order are used. */
static void test_locator_database(void **state)
{
    struct gw_server_state st[3] = {{&servers[0], 0, 0, 0}, {&servers[1], 0, 0, 0}, {&servers[2], 0, 0, 0}};
    static char *copies[] = {"mbx2", "mbx1", "nosuch"};
    struct gw_conf_database ext = {.name = "dbx", .copies = copies, .ncopies = 3, .active = "mbx1"};
    struct gw_route_input in = {.conf = &conf, .servers = st, .database = "dbx", .site = "a",
                                .protocol = "pop", .db = &ext, .active = "mbx1"};
    struct gw_route r;
    char buf[256];

    (void)state;
    gw_route_decide(&in, &r, buf, sizeof(buf));
    assert_int_equal(r.kind, GW_ROUTE_PROXY);
    assert_string_equal(r.server, "mbx1");
    st[0].down = true;            /* active down: next by the entry's preference */
    gw_route_decide(&in, &r, buf, sizeof(buf));
    assert_string_equal(r.server, "mbx2");
    st[1].drain = true;           /* an unknown server name is skipped */
    gw_route_decide(&in, &r, buf, sizeof(buf));
    assert_int_equal(r.kind, GW_ROUTE_REFUSE);
    assert_non_null(strstr(r.reason, "dbx"));
    in.db = NULL;                 /* without it: not in conf */
    gw_route_decide(&in, &r, buf, sizeof(buf));
    assert_int_equal(r.kind, GW_ROUTE_REFUSE);
    assert_non_null(strstr(r.reason, "unknown database dbx"));
    /* in->db wins over a configured database of the same name */
    ext.name = "db1";
    in.database = "db1";
    in.db = &ext;
    in.active = "mbx2";
    st[0].down = false;
    st[1].drain = false;
    gw_route_decide(&in, &r, buf, sizeof(buf));
    assert_string_equal(r.server, "mbx2");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cases),
        cmocka_unit_test(test_skip_server),
        cmocka_unit_test(test_locator_database),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
