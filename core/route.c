/*
 * The routing decision, as one pure function: given the configuration, the
 * locator's view of each server and a mailbox, say where a new session goes.
 * It reads nothing else and changes nothing, so tests/unit/test_route.c can
 * drive every case.
 */
#include <stdio.h>
#include <string.h>

#include "core.h"

static size_t server_index(const struct gw_config *conf, const char *name)
{
    for (size_t i = 0; i < conf->nservers; i++)
        if (strcmp(conf->servers[i].name, name) == 0)
            return i;
    return (size_t)-1;
}

void gw_route_decide(const struct gw_route_input *in, struct gw_route *r, char *buf, size_t bufsize)
{
    const struct gw_config *conf = in->conf;
    const struct gw_conf_database *db;
    size_t used = 0;
    size_t order[64];
    size_t norder = 0;

    memset(r, 0, sizeof(*r));
    r->kind = GW_ROUTE_REFUSE;
    buf[0] = '\0';

    db = in->db != NULL ? in->db
         : in->database != NULL ? gw_config_database(conf, in->database) : NULL;
    if (db == NULL) {
        snprintf(buf, bufsize, "unknown database %s", in->database ? in->database : "(none)");
        r->reason = buf;
        return;
    }

    /* Another site with an external URL: send the client there, when the
       protocol can redirect and this gateway is not in that site. */
    if ((in->flags & GW_ROUTE_ALLOW_REDIRECT) != 0 && in->site != NULL &&
        (conf->local_site == NULL || strcmp(conf->local_site, in->site) != 0)) {
        const struct gw_conf_site *site = gw_config_site(conf, in->site);
        if (site != NULL && site->external_url != NULL) {
            r->kind = GW_ROUTE_REDIRECT;
            r->url = site->external_url;
            return;
        }
    }

    /* The active copy first, then the others in activation preference. */
    {
        const char *active = in->active != NULL ? in->active : db->active;
        if (active != NULL)
            order[norder++] = server_index(conf, active);
        for (size_t i = 0; i < db->ncopies && norder < 64; i++) {
            size_t idx = server_index(conf, db->copies[i]);
            if (active == NULL || strcmp(db->copies[i], active) != 0)
                order[norder++] = idx;
        }
    }

    for (size_t k = 0; k < norder; k++) {
        size_t idx = order[k];
        const struct gw_server_state *st;
        const struct gw_conf_service *svc;
        const char *why = NULL;
        int n;

        if (idx == (size_t)-1)
            continue;
        st = &in->servers[idx];
        svc = gw_config_service(st->conf, in->protocol);
        if (svc == NULL)
            why = "no such service";
        else if (st->drain)
            why = "draining";
        else if (st->down)
            why = "down";
        else if (st->suspect)
            why = "suspect";
        else if (in->skip_server != NULL && strcmp(in->skip_server, st->conf->name) == 0)
            why = "already tried";
        if (why == NULL) {
            r->kind = GW_ROUTE_PROXY;
            r->server = st->conf->name;
            r->host = st->conf->address;
            r->port = svc->port;
            r->tls = svc->tls;
            r->proxy_protocol = svc->proxy_protocol;
            return;
        }
        n = snprintf(buf + used, bufsize - used, "%s%s: %s", used == 0 ? "" : ", ",
                     st->conf->name, why);
        if (n > 0 && (size_t)n < bufsize - used)
            used += (size_t)n;
    }
    /* Nothing can serve: say which servers were considered and why not. */
    {
        char tmp[256];
        snprintf(tmp, sizeof(tmp), "no copy of database %s can serve %s (%s)", db->name,
                 in->protocol, used > 0 ? buf : "no copies");
        snprintf(buf, bufsize, "%s", tmp);
    }
    r->reason = buf;
}
