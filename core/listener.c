/*
 * Listening sockets: bound by the master before the workers fork (so every
 * worker accepts on the same sockets), accepted on by each worker's loop.
 * Implicit-TLS connections are handed to the plugin only after their
 * handshake, so protocol code always starts with a greeting.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"

/* One accept per readiness event, as nginx does without multi_accept: the
   listener is level-triggered, so a backlog is reported again at once, and
   a loop would end every burst, even a burst of one, with an accept4 that
   fails with EAGAIN (one system call more per connection at low load). */
#define GW_ACCEPTS_PER_EV 1
#define GW_LISTEN_BACKLOG 1024

void gw_worker_datagrams(struct gw_listener *l);

/* A socket of the running generation bound to the same address and
   transport, to be shared rather than bound again (reload). */
static int reusable_fd(const struct gw_conf_listener *lc, const struct gw_listener *old, size_t nold)
{
    for (size_t i = 0; i < nold; i++)
        if (old[i].conf->udp == lc->udp && old[i].conf->addrlen == lc->addrlen &&
            memcmp(&old[i].conf->addr, &lc->addr, lc->addrlen) == 0)
            return fcntl(old[i].fd, F_DUPFD_CLOEXEC, 0);
    return -1;
}

int gw_listeners_open(struct gw_config *conf, const struct gw_listener *old, size_t nold,
                      struct gw_listener **ls_r, size_t *n_r, char **error_r)
{
    size_t total = 0, n = 0;
    struct gw_listener *ls;

    for (size_t i = 0; i < conf->nprotocols; i++)
        total += conf->protocols[i].nlisteners;
    ls = gw_calloc(total, sizeof(*ls));
    for (size_t i = 0; i < conf->nprotocols; i++) {
        struct gw_conf_protocol *p = &conf->protocols[i];
        for (size_t j = 0; j < p->nlisteners; j++) {
            struct gw_conf_listener *lc = &p->listeners[j];
            struct gw_listener *l = &ls[n];
            int one = 1;
            int type = lc->udp ? SOCK_DGRAM : SOCK_STREAM;

            l->conf = lc;
            l->proto = p;
            l->fd = reusable_fd(lc, old, nold);
            if (l->fd >= 0) {
                n++;
                continue;
            }
            l->fd = socket(lc->addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
            if (l->fd < 0) {
                *error_r = gw_strfmt("%s:%u:%u: protocols.%s.listen: socket: %s", conf->file,
                                   lc->pos.line, lc->pos.col, p->name, strerror(errno));
                goto fail;
            }
            n++;
            setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
            if (lc->addr.ss_family == AF_INET6)
                setsockopt(l->fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
            if (bind(l->fd, (const struct sockaddr *)&lc->addr, lc->addrlen) < 0) {
                *error_r = gw_strfmt("%s:%u:%u: protocols.%s.listen: cannot bind %s: %s",
                                   conf->file, lc->pos.line, lc->pos.col, p->name, lc->address,
                                   strerror(errno));
                goto fail;
            }
            if (!lc->udp && listen(l->fd, GW_LISTEN_BACKLOG) < 0) {
                *error_r = gw_strfmt("%s:%u:%u: protocols.%s.listen: cannot listen on %s: %s",
                                   conf->file, lc->pos.line, lc->pos.col, p->name, lc->address,
                                   strerror(errno));
                goto fail;
            }
        }
    }
    *ls_r = ls;
    *n_r = n;
    return 0;
fail:
    for (size_t k = 0; k < n; k++)
        close(ls[k].fd);
    free(ls);
    return -1;
}

int gw_listeners_tls(struct gw_listener *ls, size_t n, const char *file, char **error_r)
{
    for (size_t i = 0; i < n; i++) {
        const struct gw_conf_listener *lc = ls[i].conf;
        char *e = NULL;

        if (lc->tls == GW_TLS_NONE || lc->udp)
            continue;
        ls[i].ssl_ctx = gw_tls_server_ctx_create(
            lc, ls[i].proto->plugin != NULL ? ls[i].proto->plugin->alpn : NULL, &e);
        if (ls[i].ssl_ctx == NULL) {
            *error_r = gw_strfmt("%s:%u:%u: protocols.%s.listen: %s", file, lc->pos.line, lc->pos.col,
                               ls[i].proto->name, e ? e : "TLS error");
            free(e);
            return -1;
        }
    }
    return 0;
}

static void tls_accepted(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct gw_listener *l = arg;

    if (ev == GW_EV_TLS_DONE) {
        gw_conn_set_handler(c, NULL, NULL);
        l->proto->plugin->accept(l->pctx, c);
        return;
    }
    gw_conn_close(c);
}

static void accept_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct gw_listener *l = GW_CONTAINER_OF(w, struct gw_listener, io);

    (void)loop;
    (void)revents;
    if (l->conf->udp) {
        gw_worker_datagrams(l);
        return;
    }
    for (int i = 0; i < GW_ACCEPTS_PER_EV; i++) {
        struct gw_conn *c;
        struct sockaddr_storage ss;
        socklen_t ss_len;
        int fd;

        if (l->conf->max_connections > 0 && l->active >= l->conf->max_connections) {
            /* Full: stop accepting until a connection closes; the kernel
               backlog holds the rest. */
            ev_io_stop(gw_w.loop, &l->io);
            l->paused_full = true;
            gw_log(GW_LOG_WARN, NULL, "%s listener %s: max_connections (%ld) reached",
                   l->proto->name, l->conf->address, l->conf->max_connections);
            return;
        }
        ss_len = sizeof(ss);
        fd = accept4(l->fd, (struct sockaddr *)&ss, &ss_len, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE)
                gw_log(GW_LOG_ERROR, NULL, "accept on %s: %s", l->conf->address, strerror(errno));
            return;
        }
        c = gw_conn_create(fd, l->proto->name);
        c->listener = l;
        l->active++;
        gw_sockaddr_to_peer(&ss, &c->peer);
        c->peer_set = true;
        if (l->conf->tls == GW_TLS_IMPLICIT) {
            gw_conn_set_handler(c, tls_accepted, l);
            if (gw_conn_tls_start(c, l->ssl_ctx, true, NULL, NULL) < 0)
                gw_conn_close(c);
            continue;
        }
        l->proto->plugin->accept(l->pctx, c);
    }
}

void gw_listener_conn_closed(const struct gw_listener *cl)
{
    struct gw_listener *l = (struct gw_listener *)cl;

    l->active--;
    if (l->paused_full && !gw_w.stopping) {
        l->paused_full = false;
        ev_io_start(gw_w.loop, &l->io);
    }
}

/* Bound to any address (0.0.0.0, ::): each connection's local address is
   its own, asked of the kernel when wanted. */
static bool addr_is_wildcard(const struct sockaddr_storage *ss)
{
    if (ss->ss_family == AF_INET)
        return ((const struct sockaddr_in *)ss)->sin_addr.s_addr == htonl(INADDR_ANY);
    if (ss->ss_family == AF_INET6)
        return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)ss)->sin6_addr);
    return true;
}

void gw_listeners_start(struct gw_listener *ls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);

        memset(&ss, 0, sizeof(ss));
        if (getsockname(ls[i].fd, (struct sockaddr *)&ss, &len) == 0) {
            gw_sockaddr_to_peer(&ss, &ls[i].local);
            ls[i].local_specific = !addr_is_wildcard(&ss);
        }
        ev_io_init(&ls[i].io, accept_cb, ls[i].fd, EV_READ);
        ev_io_start(gw_w.loop, &ls[i].io);
    }
}

void gw_listeners_stop(struct gw_listener *ls, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (ev_is_active(&ls[i].io))
            ev_io_stop(gw_w.loop, &ls[i].io);
        ls[i].paused_full = false;
    }
}

void gw_listeners_close(struct gw_listener **lsp, size_t n)
{
    struct gw_listener *ls = *lsp;

    if (ls == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        gw_tls_server_ctx_free(ls[i].ssl_ctx);
        if (ls[i].fd >= 0)
            close(ls[i].fd);
    }
    free(ls);
    *lsp = NULL;
}
