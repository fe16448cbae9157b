/*
 * The byte pump between a client and its backend after login.
 *
 * Each direction reads into one per-worker scratch buffer and writes
 * straight on; only bytes the destination could not take are copied into
 * its output buffer, and while any are queued the source is not read
 * (backpressure). An idle session therefore holds no buffer at all: two
 * connection structs and this one.
 *
 * Between two plaintext sockets a direction whose last read was large
 * (GW_RELAY_SPLICE_MIN) moves its next bytes with splice(2) through a pipe
 * borrowed from the worker's pool, so bulk transfers (RETR, FETCH, large
 * HTTP bodies) never pass through user space.
 *
 * EOF from one side becomes a half-close (shutdown SHUT_WR, or TLS
 * close_notify) towards the other once its queue is empty; the relay ends
 * when both directions are shut, on any error, or after the idle timeout.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core.h"

/* One direction's splice state. A direction holds a pipe only while bytes
   sit in it (its destination was full); between readiness events the pipe
   goes back to the worker's pool, so idle sessions hold no descriptors. */
struct relay_dir {
    int pipe[2];                /* -1 when no pipe is held */
    size_t in_pipe;             /* bytes spliced in but not yet out */
    bool bulk;                  /* the last read was large: splice the next one */
};

struct gw_relay {
    struct gw_conn *a, *b;      /* client, upstream */
    struct relay_dir dir[2];    /* a->b, b->a */
    ev_timer idle;
    long idle_ms;
    bool done;
    char *database;             /* the mailbox database, for moves */
    ev_timer move_close;        /* armed when the database's active copy moved */
    struct gw_relay *next, *prev;
};

static struct gw_relay *relays;  /* every live relay of this worker */

static char scratch[GW_RELAY_CHUNK];

/* Empty pipes kept for the next bulk transfer, as HAProxy keeps its pipe
   pool: taking one costs no system call, and creating and closing a pipe
   for every burst would cost three. */
static int pipe_pool[GW_RELAY_PIPE_POOL][2];
static size_t pipe_pool_len;

static struct relay_dir *dir_of(struct gw_relay *r, struct gw_conn *src)
{
    return src == r->a ? &r->dir[0] : &r->dir[1];
}

/* Bulk data between two plaintext sockets moves through a pipe with
   splice(2), never through user space. Returns false when no pipe can be
   had (out of descriptors): the caller copies instead. */
static bool pipe_get(struct relay_dir *d, struct gw_conn *src, struct gw_conn *dst)
{
    if (d->pipe[0] >= 0)
        return true;
    if (src->ssl != NULL || dst->ssl != NULL)
        return false;
    if (pipe_pool_len > 0) {
        pipe_pool_len--;
        d->pipe[0] = pipe_pool[pipe_pool_len][0];
        d->pipe[1] = pipe_pool[pipe_pool_len][1];
        return true;
    }
    if (pipe2(d->pipe, O_NONBLOCK | O_CLOEXEC) < 0) {
        d->pipe[0] = d->pipe[1] = -1;
        return false;
    }
    return true;
}

/* Give the pipe back: to the pool when it is empty and the pool has room,
   else closed (a pipe with bytes in it belongs to a dead relay). */
static void pipe_put(struct relay_dir *d)
{
    if (d->pipe[0] < 0)
        return;
    if (d->in_pipe == 0 && pipe_pool_len < GW_RELAY_PIPE_POOL) {
        pipe_pool[pipe_pool_len][0] = d->pipe[0];
        pipe_pool[pipe_pool_len][1] = d->pipe[1];
        pipe_pool_len++;
    } else {
        close(d->pipe[0]);
        close(d->pipe[1]);
    }
    d->pipe[0] = d->pipe[1] = -1;
    d->in_pipe = 0;
}

/* Move what sits in the pipe to dst. Returns -1 on error. */
static int pipe_drain(struct relay_dir *d, struct gw_conn *dst)
{
    while (d->in_pipe > 0) {
        ssize_t w = splice(d->pipe[0], NULL, dst->fd, NULL, d->in_pipe,
                           SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
        if (w < 0)
            return errno == EAGAIN || errno == EINTR ? 0 : -1;
        d->in_pipe -= (size_t)w;
    }
    return 0;
}

static void relay_end(struct gw_relay *r, const char *why)
{
    struct gw_conn *a = r->a, *b = r->b;

    if (r->done)
        return;
    r->done = true;
    ev_timer_stop(gw_w.loop, &r->idle);
    ev_timer_stop(gw_w.loop, &r->move_close);
    if (r->prev != NULL)
        r->prev->next = r->next;
    else
        relays = r->next;
    if (r->next != NULL)
        r->next->prev = r->prev;
    free(r->database);
    pipe_put(&r->dir[0]);
    pipe_put(&r->dir[1]);
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
        bool rd = (!c->eof && gw_buf_len(&o->out) == 0 && dir_of(r, c)->in_pipe == 0) ||
                  c->ssl_want_read;
        bool wr = gw_buf_len(&c->out) > 0 || dir_of(r, o)->in_pipe > 0 || c->ssl_want_write;
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
    struct relay_dir *d = dir_of(r, src);
    bool moved = false;

    if (d->in_pipe > 0) {
        size_t before = d->in_pipe;
        if (pipe_drain(d, dst) < 0)
            return -1;
        moved = d->in_pipe < before;
        if (d->in_pipe > 0)
            goto out;
    }
    if (gw_buf_len(&dst->out) > 0) {
        if (gw_conn_flush(dst) < 0)
            return -1;
        if (gw_buf_len(&dst->out) > 0)
            return 0;
        moved = true;
    }
    for (int i = 0; !src->eof && i < GW_RELAY_READS_PER_EV; i++) {
        ssize_t n, w;

        if (d->bulk && pipe_get(d, src, dst)) {
            n = splice(src->fd, NULL, d->pipe[1], NULL, GW_RELAY_CHUNK,
                       SPLICE_F_NONBLOCK | SPLICE_F_MOVE);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                break;
            if (n < 0)
                return -1;
            if (n == 0) {
                src->eof = true;
                break;
            }
            moved = true;
            d->in_pipe = (size_t)n;
            d->bulk = (size_t)n >= GW_RELAY_SPLICE_MIN;
            if (pipe_drain(d, dst) < 0)
                return -1;
            if (d->in_pipe > 0)
                break; /* dst is full: the pipe waits with it */
            if ((size_t)n < GW_RELAY_CHUNK)
                break; /* the socket is empty: no read for EAGAIN */
            continue;
        }
        n = src->tp->recv(src, scratch, sizeof(scratch));
        if (n == GW_IO_AGAIN)
            break;
        if (n == GW_IO_ERROR)
            return -1;
        if (n == 0) {
            src->eof = true;
            break;
        }
        moved = true;
        d->bulk = (size_t)n >= GW_RELAY_SPLICE_MIN && src->ssl == NULL && dst->ssl == NULL;
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
        if ((size_t)n < sizeof(scratch) && src->ssl == NULL)
            break; /* a short read emptied the socket: don't ask again for EAGAIN
                      (level-triggered epoll reports whatever arrives next) */
        if (i == GW_RELAY_READS_PER_EV - 1 && src->ssl != NULL && SSL_pending(src->ssl) > 0)
            ev_feed_event(gw_w.loop, &src->rio, EV_READ); /* decrypted bytes wait */
    }
    if (d->in_pipe == 0)
        pipe_put(d); /* idle between events: back to the pool */
    /* src is done: tell dst. When dst is done too, the relay ends right
       after this and the close sends the FIN; a shutdown first would cost a
       system call for nothing (one per POP3 or IMAP logout). */
    if (src->eof && gw_buf_len(&dst->out) == 0 && d->in_pipe == 0 && !dst->eof)
        half_close(dst);
out:
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
    if (r->a->eof && r->b->eof && gw_buf_len(&r->a->out) == 0 && gw_buf_len(&r->b->out) == 0 &&
        r->dir[0].in_pipe == 0 && r->dir[1].in_pipe == 0) {
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

static void move_close_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw_relay *r = GW_CONTAINER_OF(w, struct gw_relay, move_close);

    (void)loop;
    (void)revents;
    gw_log(GW_LOG_INFO, r->b, "closing: the active copy of %s moved", r->database);
    relay_end(r, "active copy moved");
}

size_t gw_relay_close_moved(const char *database, const char *server, long window_ms)
{
    size_t n = 0;

    for (struct gw_relay *r = relays; r != NULL; r = r->next) {
        double delay;
        if (r->database == NULL || strcmp(r->database, database) != 0 || r->b->server == NULL ||
            strcmp(r->b->server, server) == 0 || ev_is_active(&r->move_close))
            continue;
        /* Spread the reconnections over the window so thousands of clients
           do not arrive at the new copy in the same second. */
        delay = window_ms > 0 ? (double)(random() % window_ms) / 1000.0 : 0.0;
        ev_timer_set(&r->move_close, delay, 0.0);
        ev_timer_start(gw_w.loop, &r->move_close);
        n++;
    }
    return n;
}

void gw_relay(struct gw_conn *client, struct gw_conn *upstream, long idle_timeout_ms)
{
    struct gw_relay *r = gw_calloc(1, sizeof(*r));
    struct gw_conn *cs[2] = {client, upstream};

    r->a = client;
    r->b = upstream;
    r->dir[0].pipe[0] = r->dir[0].pipe[1] = -1;
    r->dir[1].pipe[0] = r->dir[1].pipe[1] = -1;
    ev_init(&r->move_close, move_close_cb);
    if (upstream->upstream != NULL && gw_upstream_database(upstream) != NULL)
        r->database = gw_strdup(gw_upstream_database(upstream));
    r->next = relays;
    if (relays != NULL)
        relays->prev = r;
    relays = r;
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
