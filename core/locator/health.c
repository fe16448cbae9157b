/*
 * Health checks: every (server, service) pair of the locator is probed on
 * the worker loop -- TCP connect (and implicit TLS), then the protocol's
 * greeting or answer: POP3 "+OK", IMAP "* OK", HTTP "GET <path>" expecting
 * 200, SIP OPTIONS expecting 200; other protocols count a connect as
 * healthy. `rise` successes in a row bring a service up, `fall` failures in
 * a row take it down, so one lost probe does not flap routing.
 *
 * The probes use the same connection layer as sessions (non-blocking, with
 * the probe timeout on every step), so a backend that hangs -- accepts and
 * never greets, like a SIGSTOPped Dovecot -- costs a timer, never a stall.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../core.h"
#include "health.h"

struct probe {
    const struct gw_conf_server *srv;
    const struct gw_conf_service *svc;
    bool up;
    long ok_run, fail_run;
    struct gw_conn *conn;
    ev_timer timer;
    char last_error[96];
    char greeting[256];          /* last greeting line seen, for plugins */
};

static struct probe *probes;
static size_t nprobes;
static size_t *base;             /* index of each server's first probe */
static const struct gw_config *hconf;

static void probe_schedule(struct probe *p, double after_s)
{
    ev_timer_stop(gw_w.loop, &p->timer);
    ev_timer_set(&p->timer, after_s, 0.0);
    ev_timer_start(gw_w.loop, &p->timer);
}

static void probe_result(struct probe *p, bool ok, const char *why)
{
    if (p->conn != NULL) {
        gw_conn_close(p->conn);
        p->conn = NULL;
    }
    if (ok) {
        p->ok_run++;
        p->fail_run = 0;
        p->last_error[0] = '\0';
        /* a connect failure's suspicion ends when the server answers a probe */
        gw_locator_clear_suspect(p->srv->name);
        if (!p->up && p->ok_run >= hconf->health_rise) {
            p->up = true;
            gw_log(GW_LOG_WARN, NULL, "health: %s %s is up", p->srv->name, p->svc->protocol);
        }
    } else {
        p->fail_run++;
        p->ok_run = 0;
        snprintf(p->last_error, sizeof(p->last_error), "%s", why);
        if (p->up && p->fail_run >= hconf->health_fall) {
            p->up = false;
            gw_log(GW_LOG_WARN, NULL, "health: %s %s is down: %s", p->srv->name, p->svc->protocol,
                   why);
        }
    }
    probe_schedule(p, (double)hconf->health_interval / 1000.0);
}

/* What a healthy answer starts with, per protocol. NULL: connect is enough. */
static const char *expected_answer(const char *protocol)
{
    if (strcmp(protocol, "pop") == 0)
        return "+OK";
    if (strcmp(protocol, "imap") == 0)
        return "* OK";
    if (strcmp(protocol, "http") == 0)
        return "HTTP/1.";
    if (strcmp(protocol, "sip") == 0)
        return "SIP/2.0 ";
    return NULL;
}

static bool answer_ok(const char *protocol, const char *line)
{
    const char *want = expected_answer(protocol);

    if (strncmp(line, want, strlen(want)) != 0)
        return false;
    if (strcmp(protocol, "http") == 0 || strcmp(protocol, "sip") == 0) {
        /* status line: "HTTP/1.1 200 OK", "SIP/2.0 200 OK" */
        const char *sp = strchr(line, ' ');
        return sp != NULL && strncmp(sp + 1, "200", 3) == 0;
    }
    return true;
}

static void probe_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct probe *p = arg;
    const char *proto = p->svc->protocol;
    const char *line;
    size_t len;
    int rc;

    switch (ev) {
    case GW_EV_CONNECTED:
        if (expected_answer(proto) == NULL) {
            probe_result(p, true, NULL);
            return;
        }
        gw_conn_set_timeout(c, hconf->health_timeout);
        if (strcmp(proto, "http") == 0) {
            gw_conn_printf(c, "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: gatewayd-health\r\n"
                              "Connection: close\r\n\r\n",
                           hconf->health_http_path, p->svc->sni ? p->svc->sni : p->srv->address);
        } else if (strcmp(proto, "sip") == 0) {
            const struct gw_peer *l = gw_conn_local(c);
            gw_conn_printf(c, "OPTIONS sip:%s:%u;transport=tcp SIP/2.0\r\n"
                              "Via: SIP/2.0/TCP %s:%u;branch=z9hG4bK-gwhealth%lx\r\n"
                              "Max-Forwards: 70\r\nFrom: <sip:gatewayd@%s>;tag=gwh\r\n"
                              "To: <sip:%s:%u>\r\nCall-ID: gwhealth-%lx@%s\r\nCSeq: 1 OPTIONS\r\n"
                              "Content-Length: 0\r\n\r\n",
                           p->srv->address, p->svc->port, l->addr, l->port,
                           (unsigned long)gw_now_ms(), l->addr, p->srv->address, p->svc->port,
                           (unsigned long)gw_now_ms(), l->addr);
        }
        return;
    case GW_EV_READ:
        rc = gw_conn_read_line(c, &line, &len);
        if (rc == 0)
            return;
        if (rc < 0) {
            probe_result(p, false, "unreadable answer");
            return;
        }
        snprintf(p->greeting, sizeof(p->greeting), "%s", line);
        if (answer_ok(proto, line))
            probe_result(p, true, NULL);
        else
            probe_result(p, false, "unexpected answer");
        return;
    case GW_EV_TIMEOUT:
        probe_result(p, false, "timed out");
        return;
    case GW_EV_EOF:
        probe_result(p, false, "closed before answering");
        return;
    default:
        probe_result(p, false, "connect failed");
        return;
    }
}

static void probe_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct probe *p = GW_CONTAINER_OF(w, struct probe, timer);
    struct gw_route r;

    (void)loop;
    (void)revents;
    if (p->conn != NULL)
        return;
    memset(&r, 0, sizeof(r));
    r.kind = GW_ROUTE_PROXY;
    r.server = p->srv->name;
    r.host = p->srv->address;
    r.port = p->svc->port;
    r.tls = p->svc->tls;
    r.proxy_protocol = p->svc->proxy_protocol;
    p->conn = gw_upstream_probe(&r, p->svc->protocol, hconf->health_timeout, probe_event, p);
    if (p->conn == NULL)
        probe_result(p, false, "connect refused");
}

void gw_health_start(const struct gw_config *conf)
{
    size_t n = 0;

    hconf = conf;
    for (size_t i = 0; i < conf->nservers; i++)
        n += conf->servers[i].nservices;
    probes = gw_calloc(n, sizeof(*probes));
    base = gw_calloc(conf->nservers, sizeof(*base));
    nprobes = 0;
    for (size_t i = 0; i < conf->nservers; i++) {
        base[i] = nprobes;
        for (size_t j = 0; j < conf->servers[i].nservices; j++) {
            struct probe *p = &probes[nprobes++];
            p->srv = &conf->servers[i];
            p->svc = &conf->servers[i].services[j];
            p->up = true; /* until proven otherwise: don't refuse at start */
            ev_init(&p->timer, probe_timer_cb);
            if (conf->health_enabled)
                /* spread the first probes over the interval */
                probe_schedule(p, (double)conf->health_interval / 1000.0 * (double)nprobes /
                                      (double)(n + 1) / 4.0);
        }
    }
}

void gw_health_stop(void)
{
    for (size_t i = 0; i < nprobes; i++) {
        ev_timer_stop(gw_w.loop, &probes[i].timer);
        if (probes[i].conn != NULL)
            gw_conn_close(probes[i].conn);
    }
    free(probes);
    free(base);
    probes = NULL;
    base = NULL;
    nprobes = 0;
}

/* O(services of one server): routing asks this for every copy of every login. */
static struct probe *find_probe(const struct gw_conf_server *srv, const char *protocol)
{
    const struct gw_conf_service *svc = gw_config_service(srv, protocol);
    size_t i;

    if (svc == NULL || probes == NULL)
        return NULL;
    i = (size_t)(srv - hconf->servers);
    if (i >= hconf->nservers)
        return NULL;
    return &probes[base[i] + (size_t)(svc - srv->services)];
}

bool gw_health_up(const struct gw_conf_server *srv, const char *protocol)
{
    const struct probe *p = find_probe(srv, protocol);

    return p == NULL || p->up;
}

const char *gw_health_detail(const struct gw_conf_server *srv, const char *protocol)
{
    const struct probe *p = find_probe(srv, protocol);

    if (p == NULL || !hconf->health_enabled)
        return "not checked";
    if (p->up)
        return p->fail_run > 0 ? "up (failing)" : "up";
    return p->last_error[0] != '\0' ? p->last_error : "down";
}

const char *gw_backend_greeting(const char *server, const char *protocol)
{
    const struct gw_conf_server *srv = gw_config_server(hconf, server);
    const struct probe *p = srv != NULL ? find_probe(srv, protocol) : NULL;

    return p != NULL && p->greeting[0] != '\0' ? p->greeting : NULL;
}
