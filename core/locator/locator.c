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
static size_t nstates;
static const struct gw_config *lconf;

int gw_locator_init(const struct gw_config *conf, char **error_r)
{
    (void)error_r;
    lconf = conf;
    nstates = conf->nservers;
    states = gw_calloc(nstates, sizeof(*states));
    suspect_until = gw_calloc(nstates, sizeof(*suspect_until));
    for (size_t i = 0; i < nstates; i++) {
        states[i].conf = &conf->servers[i];
        states[i].drain = conf->servers[i].drain;
    }
    return 0;
}

void gw_locator_deinit(void)
{
    free(states);
    free(suspect_until);
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
