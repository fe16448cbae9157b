/*
 * A worker process: one libev loop serving every enabled protocol on the
 * listening sockets it inherited from the master. Single-threaded apart
 * from the password hashing thread; nothing here blocks.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "locator/health.h"

struct gw_worker gw_w;

static ev_signal sig_term, sig_int;
static ev_check reaper;
static ev_timer shutdown_timer;

/* ---- plugin context ---------------------------------------------------- */

const void *gw_plugin_conf(const struct gw_plugin_ctx *ctx)
{
    return ctx->proto->plugin_conf;
}

const char *gw_plugin_name(const struct gw_plugin_ctx *ctx)
{
    return ctx->proto->name;
}

void *gw_plugin_data(const struct gw_plugin_ctx *ctx)
{
    return ctx->data;
}

void gw_plugin_set_data(struct gw_plugin_ctx *ctx, void *data)
{
    ctx->data = data;
}

/* ---- timers ------------------------------------------------------------ */

struct gw_timer {
    ev_timer t;
    void (*cb)(void *arg);
    void *arg;
};

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw_timer *t = GW_CONTAINER_OF(w, struct gw_timer, t);

    (void)loop;
    (void)revents;
    t->cb(t->arg);
}

struct gw_timer *gw_timer_create(void (*cb)(void *arg), void *arg)
{
    struct gw_timer *t = gw_calloc(1, sizeof(*t));

    ev_init(&t->t, timer_cb);
    t->cb = cb;
    t->arg = arg;
    return t;
}

void gw_timer_start(struct gw_timer *t, long ms)
{
    ev_timer_stop(gw_w.loop, &t->t);
    ev_timer_set(&t->t, ms > 0 ? (double)ms / 1000.0 : 0.0, 0.0);
    ev_timer_start(gw_w.loop, &t->t);
}

void gw_timer_stop(struct gw_timer *t)
{
    ev_timer_stop(gw_w.loop, &t->t);
}

void gw_timer_destroy(struct gw_timer **tp)
{
    if (*tp == NULL)
        return;
    ev_timer_stop(gw_w.loop, &(*tp)->t);
    free(*tp);
    *tp = NULL;
}

unsigned long long gw_now_ms(void)
{
    return (unsigned long long)(ev_now(gw_w.loop) * 1000.0);
}

/* ---- datagrams --------------------------------------------------------- */

struct gw_datagram {
    int fd;
    const char *data;
    size_t len;
    struct sockaddr_storage from;
    socklen_t fromlen;
    struct gw_peer peer, local;
};

const char *gw_datagram_data(const struct gw_datagram *dg, size_t *len_r)
{
    *len_r = dg->len;
    return dg->data;
}

const struct gw_peer *gw_datagram_peer(const struct gw_datagram *dg)
{
    return &dg->peer;
}

const struct gw_peer *gw_datagram_local(const struct gw_datagram *dg)
{
    return &dg->local;
}

int gw_datagram_reply(struct gw_datagram *dg, const void *data, size_t len)
{
    ssize_t n = sendto(dg->fd, data, len, MSG_DONTWAIT, (const struct sockaddr *)&dg->from,
                       dg->fromlen);
    return n == (ssize_t)len ? 0 : -1;
}

void gw_datagram_return_path(const struct gw_datagram *dg, struct gw_return_path *rp)
{
    rp->fd = dg->fd;
    rp->addr = dg->from;
    rp->addrlen = dg->fromlen;
}

int gw_return_path_send(const struct gw_return_path *rp, const void *data, size_t len)
{
    ssize_t n = sendto(rp->fd, data, len, MSG_DONTWAIT, (const struct sockaddr *)&rp->addr,
                       rp->addrlen);
    return n == (ssize_t)len ? 0 : -1;
}

#define GW_DATAGRAM_MAX 65535
#define GW_DATAGRAMS_PER_EV 64

void gw_worker_datagrams(struct gw_listener *l)
{
    static char buf[GW_DATAGRAM_MAX + 1];
    struct gw_datagram dg;

    for (int i = 0; i < GW_DATAGRAMS_PER_EV; i++) {
        ssize_t n;

        memset(&dg, 0, sizeof(dg));
        dg.fromlen = sizeof(dg.from);
        n = recvfrom(l->fd, buf, GW_DATAGRAM_MAX, MSG_DONTWAIT, (struct sockaddr *)&dg.from,
                     &dg.fromlen);
        if (n < 0)
            return;
        buf[n] = '\0';
        dg.fd = l->fd;
        dg.data = buf;
        dg.len = (size_t)n;
        gw_sockaddr_to_peer(&dg.from, &dg.peer);
        dg.local = l->local; /* a wildcard bind reports the wildcard, as getsockname would */
        l->proto->plugin->datagram(l->pctx, &dg);
    }
}

/* ---- the loop ---------------------------------------------------------- */

bool gw_draining(void)
{
    return gw_w.stopping;
}

static void reap_cb(struct ev_loop *loop, ev_check *w, int revents)
{
    (void)w;
    (void)revents;
    gw_conn_reap();
    if (gw_w.stopping && gw_conn_count() == 0)
        ev_break(loop, EVBREAK_ALL);
}

static void shutdown_timeout_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    gw_log(GW_LOG_WARN, NULL, "shutdown timeout: closing %zu remaining connection(s)",
           gw_conn_count());
    gw_conn_close_all();
    ev_break(loop, EVBREAK_ALL);
}

static void stop_cb(struct ev_loop *loop, ev_signal *w, int revents)
{
    (void)revents;
    if (gw_w.stopping) {
        if (w->signum == SIGINT)
            return; /* a second ^C from the terminal: keep draining */
        return;
    }
    gw_w.stopping = true;
    gw_listeners_stop(gw_w.listeners, gw_w.nlisteners);
    gw_admin_stop();
    /* No new sessions will be routed: probes would only keep the drain
       waiting. Routing without them treats every service as up. */
    gw_health_stop();
    /* Let go of the sockets: after a reload that dropped an address, the
       kernel must stop accepting connections nobody will serve. */
    for (size_t i = 0; i < gw_w.nlisteners; i++) {
        if (gw_w.listeners[i].fd >= 0)
            close(gw_w.listeners[i].fd);
        gw_w.listeners[i].fd = -1;
    }
    /* Plugins close what only waits for more work (idle keep-alive). */
    for (size_t i = 0; i < gw_w.conf->nprotocols; i++)
        if (gw_w.conf->protocols[i].plugin->drain != NULL)
            gw_w.conf->protocols[i].plugin->drain(&gw_w.pctx[i]);
    gw_log(GW_LOG_INFO, NULL, "stopping: draining %zu connection(s) for up to %ld ms",
           gw_conn_count(), gw_w.conf->shutdown_timeout);
    if (gw_conn_count() == 0) {
        ev_break(loop, EVBREAK_ALL);
        return;
    }
    ev_timer_init(&shutdown_timer, shutdown_timeout_cb,
                  (double)gw_w.conf->shutdown_timeout / 1000.0, 0.0);
    ev_timer_start(loop, &shutdown_timer);
}

int gw_worker_run(struct gw_config *conf, struct gw_listener *ls, size_t nls, unsigned id)
{
    char *err = NULL;
    int rc = 0;

    memset(&gw_w, 0, sizeof(gw_w));
    gw_w.conf = conf;
    gw_w.listeners = ls;
    gw_w.nlisteners = nls;
    gw_w.id = id;
    gw_w.loop = ev_default_loop(EVFLAG_AUTO | EVFLAG_NOSIGMASK);
    if (gw_w.loop == NULL) {
        gw_log(GW_LOG_ERROR, NULL, "cannot create the event loop");
        return 1;
    }
    gw_log_set_worker(id);
    signal(SIGPIPE, SIG_IGN);
    srandom((unsigned)getpid() ^ (unsigned)ev_time());

    gw_w.client_ssl_ctx = gw_tls_client_ctx_create(conf, &err);
    if (gw_w.client_ssl_ctx == NULL)
        goto fail;
    if (gw_directory_init(conf, &err) < 0)
        goto fail_ssl;
    if (gw_locator_init(conf, &err) < 0)
        goto fail_dir;

    gw_w.pctx = gw_calloc(conf->nprotocols, sizeof(*gw_w.pctx));
    for (size_t i = 0; i < conf->nprotocols; i++) {
        gw_w.pctx[i].proto = &conf->protocols[i];
        if (conf->protocols[i].plugin->start != NULL &&
            conf->protocols[i].plugin->start(&gw_w.pctx[i]) < 0) {
            err = gw_strdup("plugin failed to start");
            for (size_t j = 0; j < i; j++)
                if (conf->protocols[j].plugin->stop != NULL)
                    conf->protocols[j].plugin->stop(&gw_w.pctx[j]);
            goto fail_loc;
        }
    }
    for (size_t i = 0; i < nls; i++)
        for (size_t j = 0; j < conf->nprotocols; j++)
            if (ls[i].proto == &conf->protocols[j])
                ls[i].pctx = &gw_w.pctx[j];

    ev_signal_init(&sig_term, stop_cb, SIGTERM);
    ev_signal_start(gw_w.loop, &sig_term);
    ev_signal_init(&sig_int, stop_cb, SIGINT);
    ev_signal_start(gw_w.loop, &sig_int);
    ev_unref(gw_w.loop);
    ev_unref(gw_w.loop);
    ev_check_init(&reaper, reap_cb);
    /* Lowest priority: run after every other callback of the iteration, so
       connections closed by them are freed (their sockets closed) now, not
       when some later event happens to wake the loop. */
    ev_set_priority(&reaper, EV_MINPRI);
    ev_check_start(gw_w.loop, &reaper);
    ev_unref(gw_w.loop);

    gw_listeners_start(ls, nls);
    gw_admin_start(conf, id);
    gw_log(GW_LOG_INFO, NULL, "worker %u serving %zu listener(s)", id, nls);
    ev_run(gw_w.loop, 0);

    gw_listeners_stop(ls, nls);
    gw_admin_stop();
    gw_health_stop();   /* its probes are connections: end them first */
    gw_conn_close_all();
    for (size_t i = 0; i < conf->nprotocols; i++)
        if (conf->protocols[i].plugin->stop != NULL)
            conf->protocols[i].plugin->stop(&gw_w.pctx[i]);
    gw_conn_reap();
    ev_ref(gw_w.loop);
    ev_check_stop(gw_w.loop, &reaper);
    ev_ref(gw_w.loop);
    ev_ref(gw_w.loop);
    ev_signal_stop(gw_w.loop, &sig_term);
    ev_signal_stop(gw_w.loop, &sig_int);
    ev_timer_stop(gw_w.loop, &shutdown_timer);
    gw_log(GW_LOG_INFO, NULL, "worker %u stopped", id);
    goto done;

fail_loc:
    rc = 1;
    free(gw_w.pctx);
    gw_w.pctx = NULL;
    gw_locator_deinit();
fail_dir:
    rc = 1;
    gw_directory_deinit();
fail_ssl:
    rc = 1;
    SSL_CTX_free(gw_w.client_ssl_ctx);
    gw_w.client_ssl_ctx = NULL;
fail:
    gw_log(GW_LOG_ERROR, NULL, "worker %u cannot start: %s", id, err ? err : "?");
    free(err);
    return 1;
done:
    free(gw_w.pctx);
    gw_locator_deinit();
    gw_directory_deinit();
    SSL_CTX_free(gw_w.client_ssl_ctx);
    ev_loop_destroy(gw_w.loop);
    return rc;
}
