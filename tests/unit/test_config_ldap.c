/* gateway.yaml: directory.ldap, auth.stale_if_error, auth.penalty. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

#define PROTOCOLS "protocols:\n  dummy:\n    listen:\n      - address: 127.0.0.1:1110\n"

static char dir[] = "/tmp/gwcfgldapXXXXXX";

static int parse(const char *body, struct gw_config **conf, char **errors)
{
    char file[256], *yaml = NULL;
    int rc;

    snprintf(file, sizeof(file), "%s/gateway.yaml", dir);
    if (asprintf(&yaml, "%s%s", PROTOCOLS, body) < 0)
        return -2;
    rc = gw_config_parse(file, yaml, strlen(yaml), GW_CONFIG_NO_PLUGINS, conf, errors);
    free(yaml);
    return rc;
}

/* body must fail with an error line containing `expect`. */
static void fails_with(const char *body, const char *expect)
{
    struct gw_config *conf = NULL;
    char *errors = NULL;

    if (parse(body, &conf, &errors) != -1 || errors == NULL || strstr(errors, expect) == NULL) {
        print_error("for:\n%s\nexpected an error with '%s', got:\n%s\n", body, expect,
                    errors != NULL ? errors : "(none)");
        gw_config_free(&conf);
        free(errors);
        fail();
    }
    free(errors);
}

static int setup(void **state)
{
    char path[300];
    FILE *f;

    (void)state;
    if (mkdtemp(dir) == NULL)
        return -1;
    snprintf(path, sizeof(path), "%s/pw", dir);
    f = fopen(path, "w");
    fputs("s3cret\n", f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/empty", dir);
    f = fopen(path, "w");
    fclose(f);
    return 0;
}

static int teardown(void **state)
{
    char cmd[300];

    (void)state;
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void test_full(void **state)
{
    struct gw_config *conf = NULL;
    char *errors = NULL;
    const struct gw_conf_ldap *l;

    (void)state;
    assert_int_equal(parse("directory:\n"
                           "  source: ldap\n"
                           "  ldap:\n"
                           "    uris: [\"ldaps://127.0.0.1:1636\", ldap://10.0.0.2]\n"
                           "    starttls: true\n"
                           "    bind_dn: \"cn=gw,dc=example,dc=test\"\n"
                           "    bind_password_file: pw\n"
                           "    base: \"ou=people,dc=example,dc=test\"\n"
                           "    scope: one\n"
                           "    user_filter: \"(mail=%u)\"\n"
                           "    attributes: { database: msExchHomeMDB, disabled: ~ }\n"
                           "    timeout: 3s\n"
                           "    connections: 4\n"
                           "auth:\n"
                           "  stale_if_error: 10m\n"
                           "  penalty: { after: 5, lockout_user: 0, lockout_time: 1m }\n",
                           &conf, &errors),
                     0);
    l = &conf->dir_ldap;
    assert_int_equal(conf->dir_source, GW_DIR_LDAP);
    assert_int_equal(l->conn.nuris, 2);
    assert_string_equal(l->conn.uris[1], "ldap://10.0.0.2");
    assert_true(l->conn.starttls);
    assert_true(l->conn.verify);
    assert_string_equal(l->conn.bind_password, "s3cret");   /* the newline is not part of it */
    assert_int_equal(l->scope, 1);
    assert_string_equal(l->user_filter, "(mail=%u)");
    assert_string_equal(l->resolve_filter,
                        "(&(objectClass=gwMailUser)(|(uid=%u)(gwSipUri=%u)(gwExtension=%u)))");
    assert_string_equal(l->attrs.login, "uid");
    assert_string_equal(l->attrs.database, "msExchHomeMDB");
    assert_string_equal(l->attrs.version, "gwMailboxVersion");
    assert_null(l->attrs.disabled);
    assert_int_equal(l->conn.timeout, 3000);
    assert_int_equal(l->conn.connections, 4);
    assert_int_equal(l->bind_connections, 2);
    assert_int_equal(conf->auth_stale_ttl, 600000);
    assert_int_equal(conf->penalty_after, 5);
    assert_int_equal(conf->penalty_lockout_user, 0);
    assert_int_equal(conf->penalty_lockout_ip, 100);
    assert_int_equal(conf->penalty_lockout_time, 60000);
    gw_config_free(&conf);
}

static void test_defaults(void **state)
{
    struct gw_config *conf = NULL;
    char *errors = NULL;

    (void)state;
    assert_int_equal(parse("directory:\n  source: ldap\n  ldap:\n    uris: ldap://127.0.0.1\n"
                           "    base: \"dc=x\"\n",
                           &conf, &errors),
                     0);
    assert_int_equal(conf->dir_ldap.conn.nuris, 1);
    assert_null(conf->dir_ldap.conn.bind_dn);
    assert_int_equal(conf->dir_ldap.scope, 2);
    assert_string_equal(conf->dir_ldap.user_filter, "(&(objectClass=gwMailUser)(uid=%u))");
    assert_int_equal(conf->dir_ldap.conn.timeout, 5000);
    assert_int_equal(conf->auth_stale_ttl, 3600000);
    assert_int_equal(conf->penalty_after, 3);
    assert_int_equal(conf->penalty_lockout_user, 10);
    gw_config_free(&conf);
}

static void test_errors(void **state)
{
    (void)state;
#define L "directory:\n  source: ldap\n  ldap:\n"
    fails_with("directory:\n  source: ldap\n", "source ldap needs a directory.ldap section");
    fails_with(L "    base: \"dc=x\"\n", "directory.ldap: missing required key 'uris'");
    fails_with(L "    uris: ldap://x\n", "directory.ldap: missing required key 'base'");
    fails_with(L "    uris: http://x\n    base: \"dc=x\"\n", "not an LDAP URL");
    fails_with(L "    uris: []\n    base: \"dc=x\"\n", "must list between 1 and 16 URIs");
    fails_with(L "    uris: ldap://x/dc=x\n    base: \"dc=x\"\n", "put the search base in base:");
    fails_with(L "    uris: ldap://x\n    base: \"not a dn\"\n", "base: not a valid DN");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    bind_dn: \"cn=a,dc=x\"\n",
               "bind_dn needs bind_password_file");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    bind_password_file: pw\n",
               "bind_password_file needs bind_dn");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    bind_dn: \"cn=a,dc=x\"\n"
                 "    bind_password_file: empty\n",
               "is empty");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    bind_dn: \"cn=a,dc=x\"\n"
                 "    bind_password_file: nope\n",
               "cannot read");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    user_filter: \"uid=%u\"\n",
               "user_filter: must be one filter in parentheses");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    user_filter: \"(uid=alice)\"\n",
               "user_filter: must contain %u");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    resolve_filter: \"(uid=%s)\"\n",
               "resolve_filter: unknown % sequence");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    scope: deep\n",
               "scope: must be one of base, one, sub");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    attributes: { site: \"a b\" }\n",
               "attributes.site: not an attribute name");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    attributes: { database: ~ }\n",
               "attributes.database: required");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    attributes: { mailbox: x }\n",
               "unknown key 'mailbox'");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    timeout: 2h\n",
               "timeout: must be between");
    fails_with(L "    uris: ldap://x\n    base: \"dc=x\"\n    backoff_min: 5s\n"
                 "    backoff_max: 1s\n",
               "backoff_max: must not be below backoff_min");
    fails_with("auth:\n  penalty: { delay: 10s, max_delay: 1s }\n",
               "max_delay must not be below delay");
    fails_with("auth:\n  penalty: { lockout: 3 }\n", "unknown key 'lockout'");
#undef L
}

/* The secret is never part of an error message. */
static void test_password_not_echoed(void **state)
{
    struct gw_config *conf = NULL;
    char *errors = NULL;

    (void)state;
    assert_int_equal(parse("directory:\n  source: ldap\n  ldap:\n    uris: ldap://x\n"
                           "    bind_dn: \"cn=a,dc=x\"\n    bind_password_file: pw\n"
                           "    base: \"not a dn\"\n",
                           &conf, &errors),
                     -1);
    assert_null(strstr(errors, "s3cret"));
    free(errors);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full),
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_password_not_echoed),
    };

    return cmocka_run_group_tests(tests, setup, teardown);
}
