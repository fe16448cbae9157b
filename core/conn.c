/*
 * Connections: non-blocking buffered I/O over a transport (plain or TLS),
 * events to one handler, deferred close.
 *
 * A connection is in one mode at a time (see enum gw_conn_mode): the
 * plugin's session (buffered, line reader), an outgoing connect, a TLS
 * handshake, or the relay. Only the mode's code touches the watchers.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>

#include "core.h"

static struct gw_conn *live_head;
static struct gw_conn *closed_head;
static size_t live_count;

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents);
static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents);

/* ---- plain transport -------------------------------------------------- */

static ssize_t plain_recv(struct gw_conn *c, void *buf, size_t len)
{
    ssize_t n = recv(c->fd, buf, len, 0);

    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return GW_IO_AGAIN;
    return GW_IO_ERROR;
}

static ssize_t plain_send(struct gw_conn *c, const void *buf, size_t len)
{
    ssize_t n = send(c->fd, buf, len, MSG_NOSIGNAL);

    if (n >= 0)
        return n;
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
        return GW_IO_AGAIN;
    return GW_IO_ERROR;
}

const struct gw_transport gw_transport_plain = {"plain", plain_recv, plain_send};

/* ---- life cycle ------------------------------------------------------- */

void gw_sockaddr_to_peer(const struct sockaddr_storage *ss, struct gw_peer *p)
{
    p->addr[0] = '\0';
    p->port = 0;
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)ss;
        inet_ntop(AF_INET, &in->sin_addr, p->addr, sizeof(p->addr));
        p->port = ntohs(in->sin_port);
    } else if (ss->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)ss;
        inet_ntop(AF_INET6, &in6->sin6_addr, p->addr, sizeof(p->addr));
        p->port = ntohs(in6->sin6_port);
    }
}

struct gw_conn *gw_conn_create(int fd, const char *protocol)
{
    struct gw_conn *c = gw_calloc(1, sizeof(*c));
    int one = 1;

    c->fd = fd;
    c->mode = GW_MODE_SESSION;
    c->tp = &gw_transport_plain;
    c->protocol = protocol;
    gw_buf_init(&c->in, GW_LINE_BUF_SIZE);
    gw_buf_init(&c->out, GW_OUT_BUF_LIMIT);
    /* Protocol replies are small and latency matters more than packet count.
       (An upstream gets its socket, and this option, when it connects.) */
    if (fd >= 0)
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ev_io_init(&c->rio, conn_io_cb, fd, EV_READ);
    ev_io_init(&c->wio, conn_io_cb, fd, EV_WRITE);
    c->rio.data = c;
    c->wio.data = c;
    ev_init(&c->timer, conn_timer_cb);
    c->timer.data = c;

    c->next = live_head;
    if (live_head != NULL)
        live_head->prev = c;
    live_head = c;
    live_count++;
    return c;
}

size_t gw_conn_count(void)
{
    return live_count;
}

void gw_conn_set_handler(struct gw_conn *c, gw_conn_handler *h, void *arg)
{
    c->handler = h;
    c->arg = arg;
    /* A handler means "ready for events": a client that speaks first
       (HTTP, SIP) must be read before the plugin ever writes. */
    if (h != NULL)
        gw_conn_update_io(c);
}

void gw_conn_emit(struct gw_conn *c, enum gw_conn_event ev)
{
    if (!c->closed && c->handler != NULL)
        c->handler(c, ev, c->arg);
}

void gw_conn_close(struct gw_conn *c)
{
    if (c == NULL || c->closed)
        return;
    c->closed = true;
    ev_io_stop(gw_w.loop, &c->rio);
    ev_io_stop(gw_w.loop, &c->wio);
    ev_timer_stop(gw_w.loop, &c->timer);
    if (c->upstream != NULL)
        gw_upstream_destroy(c);
    if (c->relay != NULL)
        gw_relay_conn_closed(c);
    if (c->listener != NULL) {
        gw_listener_conn_closed(c->listener);
        c->listener = NULL;
    }
    /* unlink from the live list now; free after the callback returns */
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        live_head = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    live_count--;
    c->next_closed = closed_head;
    closed_head = c;
}

void gw_conn_close_after_write(struct gw_conn *c)
{
    if (c->closed)
        return;
    if (gw_buf_len(&c->out) == 0) {
        gw_conn_close(c);
        return;
    }
    c->close_after_write = true;
    c->paused = true;
    if (!ev_is_active(&c->timer)) {
        ev_timer_set(&c->timer, 10.0, 0.0);
        ev_timer_start(gw_w.loop, &c->timer);
    }
    gw_conn_update_io(c);
}

static void conn_free(struct gw_conn *c)
{
    if (c->ssl != NULL) {
        /* A quiet shutdown: we are closing, not negotiating. */
        SSL_set_quiet_shutdown(c->ssl, 1);
        SSL_free(c->ssl);
    }
    if (c->fd >= 0)
        close(c->fd);
    gw_buf_release(&c->in);
    gw_buf_release(&c->out);
    free(c->user);
    free(c);
}

void gw_conn_reap(void)
{
    while (closed_head != NULL) {
        struct gw_conn *c = closed_head;
        closed_head = c->next_closed;
        conn_free(c);
    }
}

void gw_conn_close_all(void)
{
    while (live_head != NULL)
        gw_conn_close(live_head);
    gw_conn_reap();
}

/* ---- watchers --------------------------------------------------------- */

static void set_watcher(ev_io *w, bool on)
{
    if (on && !ev_is_active(w))
        ev_io_start(gw_w.loop, w);
    else if (!on && ev_is_active(w))
        ev_io_stop(gw_w.loop, w);
}

void gw_conn_update_io(struct gw_conn *c)
{
    bool want_read = false, want_write = false;

    if (c->closed || c->fd < 0)
        return; /* an upstream before its first connect, or a held login */
    switch (c->mode) {
    case GW_MODE_SESSION:
        want_read = !c->paused && !c->eof && !c->error &&
                    (c->in.data == NULL || gw_buf_len(&c->in) < c->in.limit);
        want_write = gw_buf_len(&c->out) > 0;
        /* TLS may need the other direction to make progress. */
        if (c->ssl_want_write)
            want_write = true;
        if (c->ssl_want_read)
            want_read = true;
        break;
    case GW_MODE_CONNECT:
        /* no socket while a login is held */
        want_read = c->fd >= 0 && c->connect_by_read;
        want_write = c->fd >= 0 && !c->connect_by_read;
        break;
    case GW_MODE_HANDSHAKE:
        want_read = c->ssl_want_read;
        want_write = c->ssl_want_write;
        break;
    case GW_MODE_RELAY:
        return; /* the relay manages its own watchers */
    }
    set_watcher(&c->rio, want_read);
    set_watcher(&c->wio, want_write);
}

/* ---- session mode I/O ------------------------------------------------- */

int gw_conn_flush(struct gw_conn *c)
{
    while (gw_buf_len(&c->out) > 0) {
        ssize_t n = c->tp->send(c, c->out.data + c->out.start, gw_buf_len(&c->out));
        if (n == GW_IO_AGAIN)
            return 0;
        if (n < 0) {
            c->error = true;
            return -1;
        }
        gw_buf_consume(&c->out, (size_t)n);
    }
    /* Nothing queued: give the memory back, idle sessions hold no buffers. */
    gw_buf_release(&c->out);
    return 0;
}

/* Read what the socket has into the input buffer. Returns true when new
   bytes arrived. Sets eof/error. */
static bool conn_fill(struct gw_conn *c)
{
    bool got = false;

    for (;;) {
        size_t room;
        char *p = gw_buf_space(&c->in, &room);
        ssize_t n;

        if (room == 0)
            break;
        n = c->tp->recv(c, p, room);
        if (n == GW_IO_AGAIN)
            break;
        if (n < 0) {
            c->error = true;
            break;
        }
        if (n == 0) {
            c->eof = true;
            break;
        }
        c->in.end += (size_t)n;
        got = true;
        if ((size_t)n < room && c->ssl == NULL)
            break; /* a short read: the socket is empty */
    }
    return got;
}

static void conn_session_io(struct gw_conn *c, int revents)
{
    if ((gw_buf_len(&c->out) > 0 || c->ssl_want_write) && gw_conn_flush(c) < 0) {
        if (c->close_after_write)
            gw_conn_close(c);
        else
            gw_conn_emit(c, GW_EV_ERROR);
        return;
    }
    if (gw_buf_len(&c->out) == 0) {
        if (c->close_after_write) {
            gw_conn_close(c);
            return;
        }
        if (c->notify_drained) {
            c->notify_drained = false;
            gw_conn_emit(c, GW_EV_DRAINED);
            if (c->closed || c->mode != GW_MODE_SESSION)
                return;
        }
    }
    if (c->error) {
        gw_conn_emit(c, GW_EV_ERROR);
        return;
    }
    if (((revents & EV_READ) != 0 || c->ssl != NULL) && !c->paused && !c->eof) {
        bool got = conn_fill(c);
        bool eof = c->eof, err = c->error;
        if (got || gw_buf_len(&c->in) > 0) {
            gw_conn_emit(c, GW_EV_READ);
            if (c->closed || c->mode != GW_MODE_SESSION)
                return;
        }
        if (err) {
            gw_conn_emit(c, GW_EV_ERROR);
            return;
        }
        if (eof) {
            gw_conn_emit(c, GW_EV_EOF);
            return;
        }
    }
    gw_conn_update_io(c);
}

/* ---- TLS handshake ---------------------------------------------------- */

static void conn_handshake_step(struct gw_conn *c)
{
    int rc = c->ssl_server ? SSL_accept(c->ssl) : SSL_connect(c->ssl);

    c->ssl_want_read = c->ssl_want_write = false;
    if (rc == 1) {
        c->mode = GW_MODE_SESSION;
        ev_timer_stop(gw_w.loop, &c->timer);
        c->tp = &gw_transport_tls;
        gw_conn_update_io(c);
        if (c->upstream != NULL) {
            gw_upstream_handshake_done(c, true);
        } else {
            gw_conn_ready(c);
            gw_conn_emit(c, GW_EV_TLS_DONE);
        }
        return;
    }
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        c->ssl_want_read = true;
        gw_conn_update_io(c);
        return;
    case SSL_ERROR_WANT_WRITE:
        c->ssl_want_write = true;
        gw_conn_update_io(c);
        return;
    default:
        gw_log(GW_LOG_INFO, c, "TLS handshake failed: %s", gw_tls_error_string());
        c->error = true;
        c->mode = GW_MODE_SESSION;
        ev_timer_stop(gw_w.loop, &c->timer);
        if (c->upstream != NULL)
            gw_upstream_handshake_done(c, false);
        else
            gw_conn_emit(c, GW_EV_ERROR);
        return;
    }
}

int gw_conn_tls_start(struct gw_conn *c, SSL_CTX *ctx, bool server, const char *sni,
                      const char *verify_host)
{
    if (ctx == NULL || c->ssl != NULL)
        return -1;
    c->ssl = SSL_new(ctx);
    if (c->ssl == NULL)
        return -1;
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_app_data(c->ssl, c);
    c->ssl_server = server;
    if (!server) {
        if (sni != NULL)
            SSL_set_tlsext_host_name(c->ssl, sni);
        if (verify_host != NULL) {
            struct in6_addr a6;
            struct in_addr a4;
            X509_VERIFY_PARAM *vp = SSL_get0_param(c->ssl);
            if (inet_pton(AF_INET, verify_host, &a4) == 1 ||
                inet_pton(AF_INET6, verify_host, &a6) == 1)
                X509_VERIFY_PARAM_set1_ip_asc(vp, verify_host);
            else
                SSL_set1_host(c->ssl, verify_host);
        }
    }
    /* Whatever plaintext was buffered before the handshake must never be
       read as if it had come over TLS (CVE-2011-0411 class). */
    gw_buf_consume(&c->in, gw_buf_len(&c->in));
    c->discarding = false;
    c->mode = GW_MODE_HANDSHAKE;
    ev_timer_stop(gw_w.loop, &c->timer);
    ev_timer_set(&c->timer, GW_TLS_HANDSHAKE_MS / 1000.0, 0.0);
    ev_timer_start(gw_w.loop, &c->timer);
    conn_handshake_step(c);
    return 0;
}

int gw_conn_starttls(struct gw_conn *c)
{
    if (c->listener == NULL || c->listener->ssl_ctx == NULL || c->ssl != NULL)
        return -1;
    /* The STARTTLS answer must reach the client in plaintext first. */
    if (gw_conn_flush(c) < 0 || gw_buf_len(&c->out) > 0) {
        /* A client that does not read our answer: give up on it. */
        return -1;
    }
    return gw_conn_tls_start(c, c->listener->ssl_ctx, true, NULL, NULL);
}

bool gw_conn_is_tls(const struct gw_conn *c)
{
    return c->ssl != NULL && c->mode != GW_MODE_HANDSHAKE;
}

/* ---- callbacks -------------------------------------------------------- */

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct gw_conn *c = w->data;

    (void)loop;
    if (c->closed)
        return;
    switch (c->mode) {
    case GW_MODE_SESSION:
        conn_session_io(c, revents);
        break;
    case GW_MODE_CONNECT:
        gw_upstream_io(c, revents);
        break;
    case GW_MODE_HANDSHAKE:
        conn_handshake_step(c);
        break;
    case GW_MODE_RELAY:
        gw_relay_io(c, revents);
        break;
    }
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw_conn *c = w->data;

    (void)loop;
    (void)revents;
    if (c->closed)
        return;
    if (c->close_after_write) {
        gw_conn_close(c);
        return;
    }
    switch (c->mode) {
    case GW_MODE_SESSION:
        gw_conn_emit(c, GW_EV_TIMEOUT);
        break;
    case GW_MODE_CONNECT:
        gw_upstream_io(c, 0); /* 0: the connect timed out */
        break;
    case GW_MODE_HANDSHAKE:
        gw_log(GW_LOG_INFO, c, "TLS handshake timed out");
        c->error = true;
        c->mode = GW_MODE_SESSION;
        if (c->upstream != NULL)
            gw_upstream_handshake_done(c, false);
        else
            gw_conn_emit(c, GW_EV_ERROR);
        break;
    case GW_MODE_RELAY:
        gw_relay_timeout(c);
        break;
    }
}

/* ---- public API ------------------------------------------------------- */

void gw_conn_set_timeout(struct gw_conn *c, long ms)
{
    if (c->closed || c->close_after_write)
        return;
    if (c->mode == GW_MODE_CONNECT || c->mode == GW_MODE_HANDSHAKE ||
        (c->upstream != NULL && gw_upstream_greeting_pending(c))) {
        /* The core's own timer bounds connecting, the handshake and the
           greeting; the plugin's deadline starts when those are over. */
        c->deferred_timeout = ms;
        return;
    }
    ev_timer_stop(gw_w.loop, &c->timer);
    if (ms > 0) {
        ev_timer_set(&c->timer, (double)ms / 1000.0, 0.0);
        ev_timer_start(gw_w.loop, &c->timer);
    }
}

void gw_conn_ready(struct gw_conn *c)
{
    long ms = c->deferred_timeout;

    if (ms != 0 && c->mode == GW_MODE_SESSION) {
        c->deferred_timeout = 0;
        gw_conn_set_timeout(c, ms);
    }
}

int gw_conn_read_line(struct gw_conn *c, const char **line_r, size_t *len_r)
{
    for (;;) {
        size_t len = gw_buf_len(&c->in);
        char *p = c->in.data != NULL ? c->in.data + c->in.start : NULL;
        char *nl = len > 0 ? memchr(p, '\n', len) : NULL;

        if (c->discarding) {
            if (nl == NULL) {
                gw_buf_consume(&c->in, len);
                gw_conn_update_io(c);
                return c->eof ? GW_ERR_EOF : 0;
            }
            gw_buf_consume(&c->in, (size_t)(nl - p) + 1);
            c->discarding = false;
            continue;
        }
        if (nl != NULL) {
            size_t l = (size_t)(nl - p);
            gw_buf_consume(&c->in, l + 1);
            if (l > 0 && p[l - 1] == '\r')
                l--;
            p[l] = '\0';
            *line_r = p;
            *len_r = l;
            return 1;
        }
        if (len >= c->in.limit) {
            gw_buf_consume(&c->in, len);
            c->discarding = true;
            gw_conn_update_io(c);
            return GW_ERR_TOO_LONG;
        }
        return c->eof ? GW_ERR_EOF : 0;
    }
}

size_t gw_conn_read_bytes(struct gw_conn *c, size_t max, const char **data_r)
{
    size_t len = gw_buf_len(&c->in);

    if (len > max)
        len = max;
    if (len == 0)
        return 0;
    *data_r = c->in.data + c->in.start;
    gw_buf_consume(&c->in, len);
    gw_conn_update_io(c);
    return len;
}

void gw_conn_set_input_limit(struct gw_conn *c, size_t limit)
{
    if (limit < 1024)
        limit = 1024;
    if (limit > GW_CONN_INPUT_MAX)
        limit = GW_CONN_INPUT_MAX;
    if (limit < gw_buf_len(&c->in))
        limit = gw_buf_len(&c->in);
    if (c->in.data != NULL && c->in.cap > limit) {
        /* shrinking: start over with a smaller allocation if empty */
        if (gw_buf_len(&c->in) == 0)
            gw_buf_release(&c->in);
        else
            limit = c->in.cap;
    }
    c->in.limit = limit;
    gw_conn_update_io(c);
}

size_t gw_conn_pending(const struct gw_conn *c)
{
    return gw_buf_len(&c->in);
}

void gw_conn_pause(struct gw_conn *c)
{
    c->paused = true;
    gw_conn_update_io(c);
}

void gw_conn_resume(struct gw_conn *c)
{
    if (c->closed || !c->paused || c->close_after_write)
        return;
    c->paused = false;
    gw_conn_update_io(c);
    /* Lines that arrived while paused are already buffered: deliver them
       from the loop, not from inside the caller's stack. */
    if (gw_buf_len(&c->in) > 0 || (c->ssl != NULL && SSL_pending(c->ssl) > 0))
        ev_feed_event(gw_w.loop, &c->rio, EV_READ);
}

int gw_conn_write(struct gw_conn *c, const void *data, size_t len)
{
    if (c->closed || c->error)
        return -1;
    /* Nothing queued: send straight from the caller's bytes and queue only
       what the socket did not take (no copy on the common path). */
    if (c->mode == GW_MODE_SESSION && gw_buf_len(&c->out) == 0 && !c->ssl_want_write &&
        c->fd >= 0 && len > 0) {
        ssize_t n = c->tp->send(c, data, len);
        if (n == GW_IO_ERROR) {
            c->error = true;
            ev_feed_event(gw_w.loop, &c->wio, EV_WRITE); /* report from the loop */
            return 0;
        }
        if (n > 0) {
            data = (const char *)data + n;
            len -= (size_t)n;
        }
        if (len == 0)
            return 0;
    }
    if (gw_buf_append(&c->out, data, len) < 0)
        return -1;
    if (c->mode == GW_MODE_SESSION) {
        if (gw_conn_flush(c) < 0) {
            /* report from the loop, not from inside the caller */
            ev_feed_event(gw_w.loop, &c->wio, EV_WRITE);
            return 0;
        }
        gw_conn_update_io(c);
    }
    return 0;
}

int gw_conn_printf(struct gw_conn *c, const char *fmt, ...)
{
    char small[512];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small), fmt, ap);
    va_end(ap);
    if (n < 0)
        return -1;
    if ((size_t)n < sizeof(small))
        return gw_conn_write(c, small, (size_t)n);
    {
        char *big = gw_malloc((size_t)n + 1);
        int rc;
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        rc = gw_conn_write(c, big, (size_t)n);
        free(big);
        return rc;
    }
}

size_t gw_conn_unsent(const struct gw_conn *c)
{
    return gw_buf_len(&c->out);
}

void gw_conn_notify_drained(struct gw_conn *c)
{
    if (gw_buf_len(&c->out) == 0) {
        ev_feed_event(gw_w.loop, &c->wio, EV_WRITE);
    }
    c->notify_drained = true;
}

/* Addresses are asked of the kernel only when someone wants them: a
   relayed upstream's never are, and the accept gave the client's. */
static void addr_from_kernel(int fd, int (*get)(int, struct sockaddr *, socklen_t *),
                             struct gw_peer *p, bool *set)
{
    struct sockaddr_storage ss;
    socklen_t len = sizeof(ss);

    if (*set || fd < 0)
        return;
    memset(&ss, 0, sizeof(ss));
    if (get(fd, (struct sockaddr *)&ss, &len) == 0) {
        gw_sockaddr_to_peer(&ss, p);
        *set = true;
    }
}

const struct gw_peer *gw_conn_peer(const struct gw_conn *c)
{
    struct gw_conn *m = (struct gw_conn *)c; /* a cache, not a change */

    addr_from_kernel(m->fd, getpeername, &m->peer, &m->peer_set);
    return &c->peer;
}

const struct gw_peer *gw_conn_local(const struct gw_conn *c)
{
    struct gw_conn *m = (struct gw_conn *)c;

    if (!m->local_set && m->listener != NULL && m->listener->local_specific) {
        m->local = m->listener->local;
        m->local_set = true;
    }
    addr_from_kernel(m->fd, getsockname, &m->local, &m->local_set);
    return &c->local;
}

enum gw_tls_mode gw_conn_tls_mode(const struct gw_conn *c)
{
    return c->listener != NULL ? c->listener->conf->tls : GW_TLS_NONE;
}

bool gw_conn_plaintext_ok(const struct gw_conn *c)
{
    if (gw_conn_is_tls(c))
        return true;
    return c->listener != NULL && c->listener->conf->allow_plaintext;
}

void gw_conn_set_user(struct gw_conn *c, const char *user)
{
    free(c->user);
    c->user = user != NULL ? gw_strdup(user) : NULL;
}

const char *gw_conn_user(const struct gw_conn *c)
{
    return c->user;
}
