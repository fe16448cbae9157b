/*
 * The byte pump between a client and its backend after login.
 *
 * Each direction reads into one per-worker scratch buffer and writes
 * straight on; only bytes the destination could not take are copied into
 * its output buffer, and while any are queued the source is not read
 * (backpressure). An idle session therefore holds no buffer at all: two
 * connection structs and this one.
 *
 * EOF from one side becomes a half-close (shutdown SHUT_WR, or TLS
 * close_notify) towards the other once its queue is empty; the relay ends
 * when both directions are shut, on any error, or after the idle timeout.
 */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"

struct gw_relay {
    struct gw_conn *a, *b;      /* client, upstream */
    ev_timer idle;
    long idle_ms;
    bool done;
};

static char scratch[GW_RELAY_CHUNK];

static void relay_end(struct gw_relay *r, const char *why)
{
    struct gw_conn *a = r->a, *b = r->b;

    if (r->done)
        return;
    r->done = true;
    ev_timer_stop(gw_w.loop, &r->idle);
    if (why != NULL)
        gw_log(GW_LOG_DEBUG, a, "relay ended: %s", why);
    a->relay = NULL;
    b->relay = NULL;
    gw_conn_close(a);
    gw_conn_close(b);
    free(r);
}

void gw_relay_conn_closed(struct gw_conn *c)
{
    /* One side was closed from outside (worker exit): end the pair. */
    struct gw_relay *r = c->relay;

    if (r != NULL)
        relay_end(r, "connection closed");
}

static struct gw_conn *other(struct gw_relay *r, struct gw_conn *c)
{
    return c == r->a ? r->b : r->a;
}

static void set_watcher(ev_io *w, bool on)
{
    if (on && !ev_is_active(w))
        ev_io_start(gw_w.loop, w);
    else if (!on && ev_is_active(w))
        ev_io_stop(gw_w.loop, w);
}

static void relay_watchers(struct gw_relay *r)
{
    struct gw_conn *cs[2] = {r->a, r->b};

    for (int i = 0; i < 2; i++) {
        struct gw_conn *c = cs[i], *o = other(r, c);
        bool rd = (!c->eof && gw_buf_len(&o->out) == 0) || c->ssl_want_read;
        bool wr = gw_buf_len(&c->out) > 0 || c->ssl_want_write;
        set_watcher(&c->rio, rd);
        set_watcher(&c->wio, wr);
    }
}

static void half_close(struct gw_conn *dst)
{
    if (dst->shut_wr)
        return;
    dst->shut_wr = true;
    if (dst->ssl != NULL)
        SSL_shutdown(dst->ssl); /* close_notify; its answer is not awaited */
    shutdown(dst->fd, SHUT_WR);
}

/* Move bytes src -> dst until src is empty, dst is full, or the fairness
   bound. Returns -1 when the relay must end. */
static int pump(struct gw_relay *r, struct gw_conn *src, struct gw_conn *dst)
{
    bool moved = false;

    if (gw_buf_len(&dst->out) > 0) {
        if (gw_conn_flush(dst) < 0)
            return -1;
        if (gw_buf_len(&dst->out) > 0)
            return 0;
        moved = true;
    }
    for (int i = 0; !src->eof && i < GW_RELAY_READS_PER_EV; i++) {
        ssize_t n = src->tp->recv(src, scratch, sizeof(scratch));
        ssize_t w;

        if (n == GW_IO_AGAIN)
            break;
        if (n == GW_IO_ERROR)
            return -1;
        if (n == 0) {
            src->eof = true;
            break;
        }
        moved = true;
        w = dst->tp->send(dst, scratch, (size_t)n);
        if (w == GW_IO_ERROR)
            return -1;
        if (w == GW_IO_AGAIN)
            w = 0;
        if (w < n) {
            if (gw_buf_append(&dst->out, scratch + w, (size_t)(n - w)) < 0)
                return -1; /* cannot happen: n <= chunk < limit */
            break;
        }
        if (i == GW_RELAY_READS_PER_EV - 1 && src->ssl != NULL && SSL_pending(src->ssl) > 0)
            ev_feed_event(gw_w.loop, &src->rio, EV_READ); /* decrypted bytes wait */
    }
    if (src->eof && gw_buf_len(&dst->out) == 0)
        half_close(dst);
    if (moved && r->idle_ms > 0)
        ev_timer_again(gw_w.loop, &r->idle);
    return 0;
}

static void relay_step(struct gw_relay *r, struct gw_conn *c, int revents)
{
    struct gw_conn *o = other(r, c);

    if ((revents & EV_WRITE) != 0 || c->ssl_want_write) {
        /* c can take more: flush its queue and read what waited for it */
        if (pump(r, o, c) < 0) {
            relay_end(r, "write error");
            return;
        }
    }
    if ((revents & EV_READ) != 0 || c->ssl_want_read) {
        if (pump(r, c, o) < 0) {
            relay_end(r, "read error");
            return;
        }
    }
    /* Both directions shut and flushed: done. */
    if (r->a->eof && r->b->eof && gw_buf_len(&r->a->out) == 0 && gw_buf_len(&r->b->out) == 0) {
        relay_end(r, NULL);
        return;
    }
    relay_watchers(r);
}

void gw_relay_io(struct gw_conn *c, int revents)
{
    struct gw_relay *r = c->relay;

    if (r != NULL)
        relay_step(r, c, revents);
}

void gw_relay_timeout(struct gw_conn *c)
{
    (void)c; /* relays use their own idle timer */
}

static void relay_idle_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw_relay *r = GW_CONTAINER_OF(w, struct gw_relay, idle);

    (void)loop;
    (void)revents;
    gw_log(GW_LOG_INFO, r->a, "idle for %ld ms, closing", r->idle_ms);
    relay_end(r, "idle timeout");
}

void gw_relay(struct gw_conn *client, struct gw_conn *upstream, long idle_timeout_ms)
{
    struct gw_relay *r = gw_calloc(1, sizeof(*r));
    struct gw_conn *cs[2] = {client, upstream};

    r->a = client;
    r->b = upstream;
    r->idle_ms = idle_timeout_ms;
    if (r->idle_ms <= 0 && client->listener != NULL)
        r->idle_ms = client->listener->proto->idle_timeout;
    ev_init(&r->idle, relay_idle_cb);
    if (r->idle_ms > 0) {
        r->idle.repeat = (double)r->idle_ms / 1000.0;
        ev_timer_again(gw_w.loop, &r->idle);
    }
    for (int i = 0; i < 2; i++) {
        struct gw_conn *c = cs[i], *o = cs[1 - i];
        ev_timer_stop(gw_w.loop, &c->timer);
        c->mode = GW_MODE_RELAY;
        c->relay = r;
        c->handler = NULL;
        c->paused = false;
        /* bytes the session had read but not used go to the other side */
        if (gw_buf_len(&c->in) > 0 && gw_buf_append(&o->out, c->in.data + c->in.start,
                                                     gw_buf_len(&c->in)) < 0) {
            relay_end(r, "pipelined data over the limit");
            return;
        }
        gw_buf_release(&c->in);
    }
    if (client->upstream != NULL)
        gw_upstream_destroy(client);
    if (upstream->upstream != NULL)
        gw_upstream_destroy(upstream);
    for (int i = 0; i < 2; i++) {
        if (gw_conn_flush(cs[i]) < 0) {
            relay_end(r, "write error");
            return;
        }
    }
    /* TLS may hold decrypted bytes no readiness event will announce. */
    for (int i = 0; i < 2; i++)
        if (cs[i]->ssl != NULL && SSL_pending(cs[i]->ssl) > 0)
            ev_feed_event(gw_w.loop, &cs[i]->rio, EV_READ);
    relay_watchers(r);
}
