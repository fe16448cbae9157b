/*
 * Connecting to the backend that holds a mailbox's active copy.
 *
 * The route comes from the locator; a refused or timed-out connect marks
 * the server suspect (so the locator stops choosing it for a while) and the
 * next copy is tried, at most conf->connect_retries more times, before the
 * plugin hears of any failure.
 */
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"

struct gw_upstream {
    struct gw_conn *client;
    char *database, *site, *user;
    int version;
    const char *protocol;
    gw_conn_handler *h;
    void *arg;
    unsigned attempts;
    bool fixed;                 /* connect to route only; no other copy */
    bool probe;                 /* a health probe: quiet, no suspect marking */
    bool holding;               /* waiting for a healthy copy (hold-down) */
    bool awaiting_greeting;     /* connected; the backend has not spoken yet */
    bool server_first;          /* the protocol's plugin says its backends greet */
    long timeout_ms;            /* connect timeout */
    unsigned long long hold_until;
    struct gw_route route;      /* points into the worker's config */
    char last_error[160];
};

#define GW_HOLD_POLL_MS 100   /* how often a held login asks the locator again */

static const char *upstream_sni(const struct gw_upstream *u);

void gw_upstream_destroy(struct gw_conn *c)
{
    struct gw_upstream *u = c->upstream;

    if (u == NULL)
        return;
    c->upstream = NULL;
    free(u->database);
    free(u->site);
    free(u->user);
    free(u);
}

enum gw_tls_mode gw_upstream_tls(const struct gw_conn *up)
{
    return up->upstream != NULL ? up->upstream->route.tls : GW_TLS_NONE;
}

const char *gw_upstream_server(const struct gw_conn *up)
{
    /* "-" before any server was chosen: callers print it */
    return up->server != NULL ? up->server : "-";
}

bool gw_upstream_greeting_pending(const struct gw_conn *up)
{
    return up->upstream != NULL && up->upstream->awaiting_greeting;
}

const char *gw_upstream_database(const struct gw_conn *up)
{
    return up->upstream != NULL ? up->upstream->database : NULL;
}

/* Start a non-blocking connect to host:port. Returns the socket, or -1 with
   errno set (a refused loopback port fails right here). */
static int start_connect(const char *host, unsigned port, char *err, size_t errsize)
{
    struct addrinfo hints, *res = NULL;
    char portstr[8];
    int fd = -1, rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    /* Numeric only: a name lookup would block the worker. Names are
       resolved when the configuration is loaded. */
    hints.ai_flags = AI_NUMERICHOST | AI_NUMERICSERV;
    snprintf(portstr, sizeof(portstr), "%u", port);
    rc = getaddrinfo(host, portstr, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(err, errsize, "bad backend address %s: %s", host, gai_strerror(rc));
        errno = EINVAL;
        return -1;
    }
    fd = socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(err, errsize, "socket: %s", strerror(errno));
        freeaddrinfo(res);
        return -1;
    }
    {
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    }
    if (connect(fd, res->ai_addr, res->ai_addrlen) < 0 && errno != EINPROGRESS) {
        int e = errno;
        snprintf(err, errsize, "connect to %s:%u: %s", host, port, strerror(e));
        close(fd);
        freeaddrinfo(res);
        errno = e;
        return -1;
    }
    freeaddrinfo(res);
    return fd;
}

static void fill_mailbox(const struct gw_upstream *u, struct gw_mailbox *m)
{
    memset(m, 0, sizeof(*m));
    m->user = u->user;
    m->database = u->database;
    m->site = u->site;
    m->version = u->version;
}

/* No copy can serve right now. A login may wait up to locator.hold_down
   for one to become healthy (a failover costs a pause, not an error):
   park the connection and ask the locator again every GW_HOLD_POLL_MS.
   Returns 0 when parked, -1 when the wait is over or not allowed. */
static int upstream_hold(struct gw_conn *c)
{
    struct gw_upstream *u = c->upstream;
    unsigned long long now = gw_now_ms();

    if (u->fixed || u->probe || gw_w.conf->hold_down <= 0 || u->database == NULL ||
        gw_locator_database(u->database) == NULL)
        goto no;
    if (u->hold_until == 0) {
        u->hold_until = now + (unsigned long long)gw_w.conf->hold_down;
        gw_log(GW_LOG_INFO, c, "no copy of %s can serve now; holding the login up to %ld ms",
               u->database, gw_w.conf->hold_down);
    }
    if (now >= u->hold_until)
        goto no;
    u->holding = true;
    c->mode = GW_MODE_CONNECT;
    /* no socket while held: a failed attempt's must not wake us */
    ev_io_stop(gw_w.loop, &c->rio);
    ev_io_stop(gw_w.loop, &c->wio);
    if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        c->tp = &gw_transport_plain;
    }
    ev_timer_stop(gw_w.loop, &c->timer);
    ev_timer_set(&c->timer, GW_HOLD_POLL_MS / 1000.0, 0.0);
    ev_timer_start(gw_w.loop, &c->timer);
    gw_conn_update_io(c);
    return 0;
no:
    return -1;
}

/* Route and start connecting; tries further copies while connects fail
   synchronously. Returns 0 with c->fd connecting, or -1 (error in
   u->last_error). */
static int upstream_try(struct gw_conn *c)
{
    struct gw_upstream *u = c->upstream;
    struct gw_mailbox m;

    fill_mailbox(u, &m);
    while (u->attempts <= (unsigned)gw_w.conf->connect_retries) {
        int fd;

        if (u->fixed && u->attempts > 0)
            return -1;
        if (!u->fixed)
            gw_route(&m, u->protocol, 0, &u->route);
        if (u->route.kind != GW_ROUTE_PROXY) {
            if (u->attempts == 0 || u->last_error[0] == '\0')
                snprintf(u->last_error, sizeof(u->last_error), "%s",
                         u->route.reason != NULL ? u->route.reason : "no route");
            return upstream_hold(c);
        }
        u->attempts++;
        c->server = u->route.server;
        if (u->client != NULL)
            u->client->server = u->route.server;
        fd = start_connect(u->route.host, u->route.port, u->last_error, sizeof(u->last_error));
        if (fd >= 0) {
            /* a retry: the old socket's watchers must not stay armed */
            ev_io_stop(gw_w.loop, &c->rio);
            ev_io_stop(gw_w.loop, &c->wio);
            if (c->fd >= 0)
                close(c->fd);
            c->fd = fd;
            c->eof = c->error = false;
            gw_buf_consume(&c->in, gw_buf_len(&c->in));
            ev_io_set(&c->rio, fd, EV_READ);
            ev_io_set(&c->wio, fd, EV_WRITE);
            c->mode = GW_MODE_CONNECT;
            /* A plaintext backend that greets: wake once, for the greeting,
               instead of once for the connect and once more for the greeting.
               (Errors wake a read watcher too.) */
            c->connect_by_read = !u->probe && u->route.tls != GW_TLS_IMPLICIT &&
                                 !u->route.proxy_protocol && u->server_first;
            ev_timer_stop(gw_w.loop, &c->timer);
            ev_timer_set(&c->timer, (double)u->timeout_ms / 1000.0, 0.0);
            ev_timer_start(gw_w.loop, &c->timer);
            gw_conn_update_io(c);
            return 0;
        }
        if (u->probe)
            return -1;
        /* while a login is held, its repeated attempts are not news */
        gw_log(u->hold_until != 0 ? GW_LOG_DEBUG : GW_LOG_WARN, c, "%s", u->last_error);
        gw_locator_mark_suspect(u->route.server, u->protocol, u->last_error);
    }
    /* Every copy tried has failed, maybe before the health checks could
       notice (all copies died at once): wait like for an unhealthy one. */
    return upstream_hold(c);
}

static void upstream_fail(struct gw_conn *c)
{
    struct gw_upstream *u = c->upstream;

    if (!u->probe)
        gw_log(GW_LOG_WARN, c, "no backend reachable for database %s after %u attempt(s): %s",
           u->database != NULL ? u->database : "-", u->attempts, u->last_error);
    c->mode = GW_MODE_SESSION;
    c->error = true;
    u->awaiting_greeting = false;
    ev_timer_stop(gw_w.loop, &c->timer);
    gw_conn_set_handler(c, u->h, u->arg);
    gw_conn_update_io(c);
    gw_conn_emit(c, GW_EV_ERROR);
}

/* The current attempt failed: mark, then try the next copy or give up. */
static void upstream_retry(struct gw_conn *c, const char *why)
{
    struct gw_upstream *u = c->upstream;

    snprintf(u->last_error, sizeof(u->last_error), "%s:%u: %s", u->route.host, u->route.port, why);
    if (!u->probe) {
        gw_log(u->hold_until != 0 ? GW_LOG_DEBUG : GW_LOG_WARN, c, "backend %s failed: %s",
               u->route.server, u->last_error);
        gw_locator_mark_suspect(u->route.server, u->protocol, why);
    }
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
        c->tp = &gw_transport_plain;
    }
    if (upstream_try(c) < 0)
        upstream_fail(c);
}

static bool server_first(const char *protocol)
{
    for (size_t i = 0; i < gw_w.conf->nprotocols; i++)
        if (strcmp(gw_w.conf->protocols[i].name, protocol) == 0)
            return gw_w.conf->protocols[i].plugin != NULL &&
                   (gw_w.conf->protocols[i].plugin->flags & GW_PLUGIN_SERVER_FIRST) != 0;
    return false;
}

/* The handler while waiting for a server-first backend's greeting. */
static void greeting_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct gw_upstream *u = c->upstream;

    (void)arg;
    if (ev == GW_EV_READ && gw_conn_pending(c) > 0) {
        u->awaiting_greeting = false;
        gw_conn_set_timeout(c, 0);
        gw_conn_set_handler(c, u->h, u->arg);
        gw_conn_ready(c);
        gw_conn_emit(c, GW_EV_CONNECTED);
        if (!c->closed && c->mode == GW_MODE_SESSION && c->handler == u->h &&
            gw_conn_pending(c) > 0)
            gw_conn_emit(c, GW_EV_READ);
        return;
    }
    if (ev == GW_EV_READ)
        return;
    upstream_retry(c, ev == GW_EV_TIMEOUT ? "no greeting in time" : "closed before greeting");
}

/* Connected (and TLS done): tell the plugin, or first wait for the
   greeting of a backend that speaks first. */
static void upstream_ready(struct gw_conn *c)
{
    struct gw_upstream *u = c->upstream;

    if (!u->probe && u->server_first) {
        /* arm the greeting deadline before the flag that defers plugin timeouts */
        gw_conn_set_timeout(c, u->timeout_ms);
        u->awaiting_greeting = true;
        gw_conn_set_handler(c, greeting_event, NULL);
        gw_conn_update_io(c);
        return;
    }
    gw_conn_ready(c);
    gw_conn_emit(c, GW_EV_CONNECTED);
}

/* The PROXY v2 header goes first, before TLS and before the greeting a
   haproxy=yes listener holds back until it has it. Probes send LOCAL.
   Returns -1 when the socket did not take the whole header at once. */
static int upstream_send_proxy(struct gw_conn *c)
{
    struct gw_upstream *u = c->upstream;
    unsigned char hdr[GW_PROXY_V2_MAX];
    size_t n;
    ssize_t w;

    if (u->client != NULL)
        n = gw_proxy_v2_header(gw_conn_peer(u->client), gw_conn_local(u->client), hdr);
    else
        n = gw_proxy_v2_header(NULL, NULL, hdr);
    /* a fresh connection's send buffer is empty: all or nothing */
    w = send(c->fd, hdr, n, MSG_NOSIGNAL);
    return w == (ssize_t)n ? 0 : -1;
}

static void upstream_connected(struct gw_conn *c)
{
    struct gw_upstream *u = c->upstream;

    ev_timer_stop(gw_w.loop, &c->timer);
    if (u->route.proxy_protocol && upstream_send_proxy(c) < 0) {
        upstream_retry(c, "cannot send the PROXY header");
        return;
    }
    if (u->route.tls == GW_TLS_IMPLICIT) {
        const char *sni = upstream_sni(u);
        if (gw_conn_tls_start(c, gw_w.client_ssl_ctx, false, sni,
                              sni != NULL ? sni : u->route.host) < 0)
            upstream_retry(c, "cannot start TLS");
        return;
    }
    c->mode = GW_MODE_SESSION;
    gw_conn_update_io(c);
    upstream_ready(c);
}

static const char *upstream_sni(const struct gw_upstream *u)
{
    const struct gw_conf_server *srv = gw_config_server(gw_w.conf, u->route.server);
    const struct gw_conf_service *svc = srv != NULL ? gw_config_service(srv, u->protocol) : NULL;

    return svc != NULL ? svc->sni : NULL;
}

int gw_conn_starttls_client(struct gw_conn *c)
{
    struct gw_upstream *u = c->upstream;
    const char *sni;

    if (u == NULL || c->ssl != NULL)
        return -1;
    sni = upstream_sni(u);
    return gw_conn_tls_start(c, gw_w.client_ssl_ctx, false, sni, sni != NULL ? sni : u->route.host);
}

void gw_upstream_handshake_done(struct gw_conn *c, bool ok)
{
    struct gw_upstream *u = c->upstream;

    if (u == NULL) {
        gw_conn_emit(c, ok ? GW_EV_TLS_DONE : GW_EV_ERROR);
        return;
    }
    if (c->mode == GW_MODE_SESSION && u->route.tls != GW_TLS_IMPLICIT) {
        /* STARTTLS negotiated by the plugin */
        gw_conn_ready(c);
        gw_conn_emit(c, ok ? GW_EV_TLS_DONE : GW_EV_ERROR);
        return;
    }
    if (!ok) {
        c->error = false;
        upstream_retry(c, "TLS handshake failed");
        return;
    }
    upstream_ready(c);
}

void gw_upstream_io(struct gw_conn *c, int revents)
{
    int err = 0;
    socklen_t len = sizeof(err);

    if (revents == 0 && c->upstream->holding) {
        c->upstream->holding = false;
        c->upstream->attempts = 0; /* a new round over the copies */
        if (upstream_try(c) < 0)
            upstream_fail(c);
        return;
    }
    if (revents == 0) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        /* waiting by read, a connected socket means a silent backend */
        upstream_retry(c, c->connect_by_read &&
                                  getpeername(c->fd, (struct sockaddr *)&ss, &sl) == 0
                              ? "no greeting in time"
                              : "connect timed out");
        return;
    }
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err == EINPROGRESS)
        return;
    if (err != 0) {
        /* Waiting by read, a reset means the backend accepted and then
           dropped us: the same event the greeting wait reports as such. */
        upstream_retry(c, c->connect_by_read && err == ECONNRESET ? "closed before greeting"
                                                                   : strerror(err));
        return;
    }
    upstream_connected(c);
    /* the greeting that woke us is waiting: read it in this iteration */
    if (!c->closed && c->connect_by_read && ev_is_active(&c->rio))
        ev_feed_event(gw_w.loop, &c->rio, EV_READ);
}

static struct gw_conn *upstream_new(struct gw_conn *client, const char *protocol,
                                    gw_conn_handler *h, void *arg)
{
    struct gw_conn *c = gw_conn_create(-1, protocol);
    struct gw_upstream *u = gw_calloc(1, sizeof(*u));

    u->client = client;
    u->protocol = protocol;
    u->server_first = server_first(protocol);
    u->h = h;
    u->arg = arg;
    u->timeout_ms = gw_w.conf->connect_timeout;
    c->upstream = u;
    c->client = client;
    gw_conn_set_handler(c, h, arg);
    return c;
}

static struct gw_conn *upstream_start(struct gw_conn *c, const char **error_r)
{
    static char errbuf[160];
    struct gw_upstream *u = c->upstream;

    if (upstream_try(c) < 0) {
        snprintf(errbuf, sizeof(errbuf), "%s", u->last_error);
        gw_log(GW_LOG_WARN, u->client, "cannot connect for %s (database %s): %s", u->protocol,
               u->database != NULL ? u->database : "-", errbuf);
        gw_conn_close(c);
        *error_r = errbuf;
        return NULL;
    }
    return c;
}

struct gw_conn *gw_upstream_connect(struct gw_conn *client, const struct gw_mailbox *mbox,
                                    const char *protocol, gw_conn_handler *h, void *arg,
                                    const char **error_r)
{
    struct gw_conn *c = upstream_new(client, protocol, h, arg);
    struct gw_upstream *u = c->upstream;

    u->database = gw_strdup(mbox->database);
    u->site = mbox->site != NULL ? gw_strdup(mbox->site) : NULL;
    u->user = gw_strdup(mbox->user);
    u->version = mbox->version;
    return upstream_start(c, error_r);
}

struct gw_conn *gw_upstream_connect_route(struct gw_conn *client, const struct gw_route *route,
                                          const char *protocol, gw_conn_handler *h, void *arg,
                                          const char **error_r)
{
    struct gw_conn *c;

    if (route->kind != GW_ROUTE_PROXY) {
        *error_r = "route is not a proxy route";
        return NULL;
    }
    c = upstream_new(client, protocol, h, arg);
    c->upstream->fixed = true;
    c->upstream->route = *route;
    return upstream_start(c, error_r);
}

struct gw_conn *gw_upstream_probe(const struct gw_route *route, const char *protocol,
                                  long timeout_ms, gw_conn_handler *h, void *arg)
{
    struct gw_conn *c = upstream_new(NULL, protocol, h, arg);

    c->upstream->fixed = true;
    c->upstream->probe = true;
    c->upstream->timeout_ms = timeout_ms;
    c->upstream->route = *route;
    if (upstream_try(c) < 0) {
        gw_conn_close(c);
        return NULL;
    }
    return c;
}
