/*
 * The active-copy locator, per worker. Source: static (gateway.yaml). It
 * keeps each server's state (drain from the config, suspect after a failed
 * connect) and answers gw_route() through the pure gw_route_decide().
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core.h"

#define GW_SUSPECT_MS 10000  /* a server that refused is avoided this long */

static struct gw_server_state *states;
static unsigned long long *suspect_until;
static bool *drain_flag;          /* drain as configured or set at runtime */
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
    for (size_t i = 0; i < nstates; i++) {
        states[i].conf = &conf->servers[i];
        states[i].drain = conf->servers[i].drain;
        drain_flag[i] = conf->servers[i].drain;
    }
    return 0;
}

void gw_locator_deinit(void)
{
    free(states);
    free(suspect_until);
    free(drain_flag);
    drain_flag = NULL;
    states = NULL;
    suspect_until = NULL;
    nstates = 0;
}

void gw_locator_mark_suspect(const char *server, const char *protocol, const char *why)
{
    (void)protocol;
    (void)why;
    for (size_t i = 0; i < nstates; i++) {
        if (strcmp(states[i].conf->name, server) == 0) {
            suspect_until[i] = gw_now_ms() + GW_SUSPECT_MS;
            states[i].suspect = true;
        }
    }
}

void gw_route(const struct gw_mailbox *mbox, const char *protocol, unsigned flags,
              struct gw_route *route_r)
{
    static char reason[512];
    struct gw_route_input in;
    unsigned long long now = gw_now_ms();
    bool all_suspect = true;
    const struct gw_conf_database *db = gw_config_database(lconf, mbox->database);

    for (size_t i = 0; i < nstates; i++)
        states[i].suspect = suspect_until[i] > now;
    memset(&in, 0, sizeof(in));
    in.conf = lconf;
    in.servers = states;
    in.database = mbox->database;
    in.site = mbox->site;
    in.protocol = protocol;
    in.flags = flags;
    gw_route_decide(&in, route_r, reason, sizeof(reason));
    if (route_r->kind != GW_ROUTE_REFUSE || db == NULL)
        return;
    /* Every copy is suspect (say, all refused once during a restart):
       suspicion is only a hint, so try them again rather than refuse. */
    for (size_t c = 0; c < db->ncopies; c++)
        for (size_t i = 0; i < nstates; i++)
            if (strcmp(states[i].conf->name, db->copies[c]) == 0 &&
                (!states[i].suspect || states[i].drain || states[i].down))
                all_suspect = false;
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
    unsigned long long now = gw_now_ms();
    const char *skipped[64];
    size_t n = 0;

    for (size_t i = 0; i < nstates; i++)
        states[i].suspect = suspect_until[i] > now;
    memset(&in, 0, sizeof(in));
    in.conf = lconf;
    in.servers = states;
    in.database = mbox->database;
    in.site = mbox->site;
    in.protocol = protocol;
    /* Ask again with each found server hidden, until nothing is left. */
    while (n < max && n < 64) {
        struct gw_route r;
        bool seen = false;
        gw_route_decide(&in, &r, reason, sizeof(reason));
        if (r.kind != GW_ROUTE_PROXY)
            break;
        for (size_t k = 0; k < n; k++)
            if (strcmp(skipped[k], r.server) == 0)
                seen = true;
        if (seen)
            break;
        routes_r[n] = r;
        skipped[n] = r.server;
        n++;
        /* hide it: mark the state drained for the next round */
        for (size_t i = 0; i < nstates; i++)
            if (strcmp(states[i].conf->name, r.server) == 0)
                states[i].drain = true;
    }
    /* restore drain flags from the configuration and runtime */
    for (size_t i = 0; i < nstates; i++)
        states[i].drain = drain_flag[i];
    return n;
}

size_t gw_servers_for(const char *protocol, struct gw_route *routes_r, size_t max)
{
    unsigned long long now = gw_now_ms();
    size_t n = 0;

    for (size_t i = 0; i < nstates && n < max; i++) {
        const struct gw_conf_service *svc = gw_config_service(states[i].conf, protocol);
        if (svc == NULL || drain_flag[i] || states[i].down || suspect_until[i] > now)
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
