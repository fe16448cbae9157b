/*
 * The active-copy locator, per worker. Source: static (gateway.yaml), or
 * ldap (ldap_source.c keeps the databases from the directory). It
 * keeps each server's runtime state -- health from the probes (health.c),
 * drain (configured, or set by an operator), suspect after a failed
 * connect -- and each database's active copy (configured, or moved by an
 * operator's switchover), and answers gw_route() through the pure
 * gw_route_decide().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core.h"
#include "health.h"
#include "ldap_source.h"

#define GW_SUSPECT_MS 10000  /* a server that refused is avoided this long */

static struct gw_server_state *states;
static unsigned long long *suspect_until;
static bool *drain_flag;          /* drain as configured or set at runtime */
static const char **active;       /* per database: active server name (config strings) */
static size_t nstates;
static const struct gw_config *lconf;

int gw_locator_init(const struct gw_config *conf, char **error_r)
{
    (void)error_r;
    lconf = conf;
    nstates = conf->nservers;
    states = gw_calloc(nstates, sizeof(*states));
    suspect_until = gw_calloc(nstates, sizeof(*suspect_until));
    drain_flag = gw_calloc(nstates, sizeof(*drain_flag));
    active = gw_calloc(conf->ndatabases, sizeof(*active));
    for (size_t i = 0; i < nstates; i++) {
        states[i].conf = &conf->servers[i];
        drain_flag[i] = conf->servers[i].drain;
    }
    for (size_t i = 0; i < conf->ndatabases; i++)
        active[i] = conf->databases[i].active;
    if (conf->loc_source == GW_LOC_LDAP && gw_locldap_start(conf, error_r) < 0) {
        gw_locator_deinit();
        return -1;
    }
    gw_health_start(conf);
    return 0;
}

void gw_locator_deinit(void)
{
    gw_health_stop();
    gw_locldap_stop();
    free(states);
    free(suspect_until);
    free(drain_flag);
    free(active);
    states = NULL;
    suspect_until = NULL;
    drain_flag = NULL;
    active = NULL;
    nstates = 0;
}

static long server_index(const char *name)
{
    for (size_t i = 0; i < nstates; i++)
        if (strcmp(states[i].conf->name, name) == 0)
            return (long)i;
    return -1;
}

void gw_locator_mark_suspect(const char *server, const char *protocol, const char *why)
{
    long i = server_index(server);

    (void)protocol;
    (void)why;
    if (i >= 0)
        suspect_until[i] = gw_now_ms() + GW_SUSPECT_MS;
}

const struct gw_conf_database *gw_locator_database(const char *name)
{
    if (lconf != NULL && lconf->loc_source == GW_LOC_LDAP)
        return gw_locldap_database(name);
    return lconf != NULL ? gw_config_database(lconf, name) : NULL;
}

void gw_locator_clear_suspect(const char *server)
{
    long i = server_index(server);

    if (i >= 0)
        suspect_until[i] = 0;
}

const char *gw_locator_active(const struct gw_conf_database *db)
{
    for (size_t i = 0; i < lconf->ndatabases; i++)
        if (db == &lconf->databases[i])
            return active[i];
    return db->active;   /* the ldap source keeps it in its own entries */
}

/* Bring the per-server view up to date for one protocol. */
static void refresh_states(const char *protocol)
{
    unsigned long long now = gw_now_ms();

    for (size_t i = 0; i < nstates; i++) {
        states[i].suspect = suspect_until[i] > now;
        states[i].drain = drain_flag[i];
        states[i].down = !gw_health_up(states[i].conf, protocol);
    }
}

static void route_input(struct gw_route_input *in, const struct gw_mailbox *mbox,
                        const char *protocol, unsigned flags)
{
    const struct gw_conf_database *db = gw_locator_database(mbox->database);

    memset(in, 0, sizeof(*in));
    in->conf = lconf;
    in->servers = states;
    in->database = mbox->database;
    in->site = mbox->site;
    in->protocol = protocol;
    in->flags = flags;
    in->active = db != NULL ? gw_locator_active(db) : NULL;
    in->db = db;
}

void gw_route(const struct gw_mailbox *mbox, const char *protocol, unsigned flags,
              struct gw_route *route_r)
{
    static char reason[512];
    struct gw_route_input in;
    bool all_suspect = true;
    const struct gw_conf_database *db = gw_locator_database(mbox->database);

    refresh_states(protocol);
    route_input(&in, mbox, protocol, flags);
    gw_route_decide(&in, route_r, reason, sizeof(reason));
    if (route_r->kind != GW_ROUTE_REFUSE || db == NULL)
        return;
    /* Every usable copy is only suspect (say, all refused once during a
       restart): suspicion is a hint, so try them again rather than refuse. */
    for (size_t c = 0; c < db->ncopies; c++) {
        long i = server_index(db->copies[c]);
        if (i >= 0 && (!states[i].suspect || states[i].drain || states[i].down))
            all_suspect = false;
    }
    if (!all_suspect)
        return;
    for (size_t i = 0; i < nstates; i++)
        states[i].suspect = false;
    gw_route_decide(&in, route_r, reason, sizeof(reason));
}

size_t gw_route_all(const struct gw_mailbox *mbox, const char *protocol,
                    struct gw_route *routes_r, size_t max)
{
    static char reason[512];
    struct gw_route_input in;
    size_t n = 0;

    refresh_states(protocol);
    route_input(&in, mbox, protocol, 0);
    /* Ask again with each found server hidden, until nothing is left. */
    while (n < max) {
        struct gw_route r;
        long i;

        gw_route_decide(&in, &r, reason, sizeof(reason));
        if (r.kind != GW_ROUTE_PROXY)
            break;
        routes_r[n++] = r;
        i = server_index(r.server);
        if (i < 0 || states[i].drain)
            break; /* cannot happen; never loop */
        states[i].drain = true;
    }
    return n;
}

size_t gw_servers_for(const char *protocol, struct gw_route *routes_r, size_t max)
{
    size_t n = 0;

    refresh_states(protocol);
    for (size_t i = 0; i < nstates && n < max; i++) {
        const struct gw_conf_service *svc = gw_config_service(states[i].conf, protocol);
        if (svc == NULL || states[i].drain || states[i].down || states[i].suspect)
            continue;
        memset(&routes_r[n], 0, sizeof(routes_r[n]));
        routes_r[n].kind = GW_ROUTE_PROXY;
        routes_r[n].server = states[i].conf->name;
        routes_r[n].host = states[i].conf->address;
        routes_r[n].port = svc->port;
        routes_r[n].tls = svc->tls;
        n++;
    }
    return n;
}

int gw_locator_drain(const char *server, bool drain, const char **error_r)
{
    long i = server_index(server);

    if (i < 0) {
        *error_r = "no such server";
        return -1;
    }
    if (drain_flag[i] != drain)
        gw_log(GW_LOG_WARN, NULL, "server %s %s by operator", server,
               drain ? "drained" : "undrained");
    drain_flag[i] = drain;
    return 0;
}

int gw_locator_set_active(const char *database, const char *server, const char **error_r)
{
    const struct gw_conf_database *db = gw_config_database(lconf, database);
    const char *name = NULL;
    size_t di;

    if (lconf->loc_source == GW_LOC_LDAP) {
        /* admin.c writes the directory (gw_locldap_switchover) instead */
        *error_r = "with the ldap source, a switchover writes the directory";
        return -1;
    }
    if (db == NULL) {
        *error_r = "no such database";
        return -1;
    }
    for (size_t c = 0; c < db->ncopies; c++)
        if (strcmp(db->copies[c], server) == 0)
            name = db->copies[c];
    if (name == NULL) {
        *error_r = "server holds no copy of that database";
        return -1;
    }
    di = (size_t)(db - lconf->databases);
    if (strcmp(active[di], name) == 0)
        return 0;
    gw_locator_moved(database, active[di], name);
    active[di] = name;
    return 0;
}

void gw_locator_moved(const char *database, const char *from, const char *to)
{
    size_t n;

    gw_log(GW_LOG_WARN, NULL, "database %s: active copy moved from %s to %s", database, from, to);
    n = gw_relay_close_moved(database, to, lconf->move_close_window);
    if (n > 0)
        gw_log(GW_LOG_INFO, NULL, "database %s: closing %zu session(s) on the old copy over %ld ms",
               database, n, lconf->move_close_window);
}

char *gw_locator_describe(void)
{
    char *out = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&out, &len);

    if (f == NULL)
        return gw_strdup("out of memory\n");
    if (lconf->loc_source == GW_LOC_LDAP)
        gw_locldap_describe(f);
    for (size_t d = 0; d < lconf->ndatabases && lconf->loc_source != GW_LOC_LDAP; d++) {
        const struct gw_conf_database *db = &lconf->databases[d];
        fprintf(f, "database %s active %s copies", db->name, active[d]);
        for (size_t c = 0; c < db->ncopies; c++)
            fprintf(f, " %s", db->copies[c]);
        fputc('\n', f);
    }
    for (size_t i = 0; i < nstates; i++) {
        const struct gw_conf_server *srv = states[i].conf;
        fprintf(f, "server %s %s%s%s", srv->name, srv->address, drain_flag[i] ? " draining" : "",
                suspect_until[i] > gw_now_ms() ? " suspect" : "");
        for (size_t j = 0; j < srv->nservices; j++)
            fprintf(f, " %s:%u=%s", srv->services[j].protocol, srv->services[j].port,
                    gw_health_detail(srv, srv->services[j].protocol));
        fputc('\n', f);
    }
    fclose(f);
    return out;
}
