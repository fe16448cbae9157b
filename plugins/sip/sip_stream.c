/*
 * SIP over TCP and TLS (TLS is done by the core before accept): bytes are
 * taken from the connection into one buffer per connection, framed by
 * sip_frame() (blank line, then Content-Length bytes of body), and each
 * complete message is handed to sip_handle().
 *
 * Limits: a message (headers and body) may be max_message bytes. A larger
 * header block loses the framing: 513 (when its start can be read) and the
 * connection is closed. A larger body behind a readable header block gets
 * 513 and is skipped, and the connection goes on. A missing or bad
 * Content-Length gets 400 and a close (RFC 3261 18.3). A partial message
 * must complete within message_timeout; a connection without a message for
 * idle_timeout is closed.
 *
 * While SIP_STREAM_PENDING_MAX lookups are running for one connection its
 * further messages wait (in the buffer, then in the kernel). Closing and
 * resuming are deferred to a zero timer, so that no transaction callback
 * ever runs into a stream freed under it.
 */
#include <stdlib.h>
#include <string.h>

#include "sip.h"

struct sip_stream {
    struct sip_worker *w;
    struct gw_conn *c;
    struct sip_stream *prev, *next;    /* w->streams */
    struct sip_dest dest;
    char *buf;                         /* the current message so far; NULL when empty */
    size_t len, cap;                   /* max_message + 4: room to terminate a cut header block */
    struct sip_framer fr;
    size_t discard;                    /* body bytes of an oversized message to drop */
    struct sip_txn *txns;              /* transactions answering here */
    unsigned pending;                  /* of which still waiting for their lookup */
    struct gw_timer *later;            /* deferred processing or destruction */
    bool closed;                       /* gw_conn_close() called; destroy later */
    bool eof;                          /* the client closed its side */
    bool timeout_partial;              /* the armed timeout is message_timeout */
};

static void stream_process(struct sip_stream *s);

/* conn_alive: false at plugin stop, when the worker has already closed and
   freed every connection. */
static void stream_destroy(struct sip_stream *s, bool conn_alive)
{
    struct sip_worker *w = s->w;

    while (s->txns != NULL) {
        struct sip_txn *t = s->txns;
        sip_txn_destroy(&t);   /* unlinks itself */
    }
    if (!s->closed && conn_alive)
        gw_conn_close(s->c);
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        w->streams = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    gw_timer_destroy(&s->later);
    free(s->buf);
    free(s);
}

static void later_cb(void *arg)
{
    struct sip_stream *s = arg;

    if (s->closed) {
        stream_destroy(s, true);
        return;
    }
    stream_process(s);
}

static void defer(struct sip_stream *s)
{
    gw_timer_start(s->later, 0);
}

/* Close now (no more events), free on the next loop iteration. */
static void stream_close(struct sip_stream *s, bool flush)
{
    if (s->closed)
        return;
    s->closed = true;
    if (flush) {
        gw_conn_set_timeout(s->c, SIP_CLOSE_FLUSH_MS);
        gw_conn_close_after_write(s->c);
    } else {
        gw_conn_close(s->c);
    }
    defer(s);
}

void sip_stream_send(struct sip_stream *s, const char *data, size_t len)
{
    if (s->closed)
        return;
    if (gw_conn_write(s->c, data, len) < 0) {
        gw_log(GW_LOG_WARN, s->c, "client does not read its responses: closing");
        stream_close(s, false);
    }
}

void sip_stream_txn_link(struct sip_stream *s, struct sip_txn *t)
{
    t->sprev = NULL;
    t->snext = s->txns;
    if (s->txns != NULL)
        s->txns->sprev = t;
    s->txns = t;
    if (t->state == SIP_TXN_PROCEEDING && t->invite)
        s->pending++;
}

void sip_stream_txn_unlink(struct sip_txn *t)
{
    struct sip_stream *s = t->dest.stream;

    if (s == NULL || t->dest.tp == SIP_TP_UDP)
        return;
    if (t->sprev != NULL)
        t->sprev->snext = t->snext;
    else if (s->txns == t)
        s->txns = t->snext;
    if (t->snext != NULL)
        t->snext->sprev = t->sprev;
    t->snext = t->sprev = NULL;
    if (t->state == SIP_TXN_PROCEEDING && t->invite && s->pending > 0)
        s->pending--;
    t->dest.stream = NULL;
}

void sip_stream_lookup_done(struct sip_stream *s)
{
    if (s->pending > 0)
        s->pending--;
    if (s->eof && s->pending == 0) {
        stream_close(s, true);   /* the last answer is on its way */
        return;
    }
    if (!s->closed && s->pending == SIP_STREAM_PENDING_MAX - 1) {
        gw_conn_resume(s->c);
        defer(s);   /* messages already buffered here */
    }
}

/* Timeouts: message_timeout while a message is partly received, otherwise
   idle_timeout; re-armed only when switching, or after a message. */
static void arm_timeout(struct sip_stream *s, bool partial, bool force)
{
    if (!force && partial == s->timeout_partial)
        return;
    s->timeout_partial = partial;
    gw_conn_set_timeout(s->c, partial ? s->w->conf->message_timeout : s->w->conf->idle_timeout);
}

static void consume(struct sip_stream *s, size_t n)
{
    if (n >= s->len) {
        s->len = 0;
        free(s->buf);
        s->buf = NULL;
    } else {
        memmove(s->buf, s->buf + n, s->len - n);
        s->len -= n;
    }
    sip_framer_init(&s->fr);
}

/* The header block is unusable (too long, or a bad Content-Length): hand
   its complete lines, terminated, to `answer` so that the client learns
   why before the connection is closed. */
static void answer_broken(struct sip_stream *s, bool too_long)
{
    size_t start = s->fr.skip, end;

    if (s->fr.header_len > 0) {
        end = start + s->fr.header_len;
    } else {
        end = s->fr.line_start > start ? s->fr.line_start : s->len;
        if (end + 2 > s->cap)
            end = s->cap - 2;
        memcpy(s->buf + end, "\r\n", 2);   /* cap keeps room for it */
        end += 2;
    }
    if (too_long)
        sip_handle_too_large(s->w, s->buf + start, end - start, &s->dest);
    else
        sip_handle(s->w, s->buf + start, end - start, &s->dest);   /* 400 with the reason */
}

/* Frame and handle what is buffered. Returns false when the connection is
   closing. */
static bool frame_buffered(struct sip_stream *s)
{
    while (s->len > 0 && !s->closed && s->pending < SIP_STREAM_PENDING_MAX) {
        size_t max = (size_t)s->w->conf->max_message;
        struct sip_frame f;
        const char *err = NULL;
        enum sip_parse_result r = sip_frame(&s->fr, s->buf, s->len, max, &f, &err);
        unsigned long suppressed;
        size_t total;

        switch (r) {
        case SIP_PARSE_MORE:
            if (s->fr.skip > 0)
                consume(s, s->fr.skip);   /* keep the whole room for the message */
            return true;
        case SIP_PARSE_TOO_LONG:
        case SIP_PARSE_BAD:
            gw_log(GW_LOG_INFO, s->c, "%s: closing", err);
            answer_broken(s, r == SIP_PARSE_TOO_LONG);
            stream_close(s, true);
            return false;
        case SIP_PARSE_OK:
            break;
        }
        if (f.ping) {
            /* RFC 5626 4.4.1: answer a CRLFCRLF ping with a CRLF pong */
            sip_stream_send(s, "\r\n", 2);
            consume(s, f.skip);
            continue;
        }
        if (f.header_len + f.body_len > max) {
            size_t have = s->len - f.skip - f.header_len;

            sip_handle_too_large(s->w, s->buf + f.skip, f.header_len, &s->dest);
            if (have >= f.body_len) {
                consume(s, f.skip + f.header_len + f.body_len);
            } else {
                s->discard = f.body_len - have;
                consume(s, s->len);
            }
            continue;
        }
        total = f.skip + f.header_len + f.body_len;
        if (s->len < total) {
            if (f.skip > 0)
                consume(s, f.skip);   /* room for the whole body */
            return true;
        }
        if (!sip_rate_ok(s->w, s->dest.peer.addr)) {
            if (sip_log_allowed(&s->w->log_rate, &suppressed))
                gw_log(GW_LOG_WARN, s->c, "%s over rate_limit (%ld/s): closing",
                       s->dest.peer.addr, s->w->conf->rate_limit);
            stream_close(s, false);
            return false;
        }
        sip_handle(s->w, s->buf + f.skip, f.header_len + f.body_len, &s->dest);
        consume(s, total);
        arm_timeout(s, false, true);
    }
    return !s->closed;
}

/* Take bytes from the connection while there is room, framing as we go. */
static void stream_process(struct sip_stream *s)
{
    if (!frame_buffered(s))
        return;
    while (!s->closed && s->pending < SIP_STREAM_PENDING_MAX) {
        const char *data;
        size_t n;

        if (s->discard > 0) {
            n = gw_conn_read_bytes(s->c, s->discard, &data);
            if (n == 0)
                break;
            s->discard -= n;
            continue;
        }
        if (s->buf == NULL)
            s->buf = gw_malloc(s->cap);
        n = gw_conn_read_bytes(s->c, s->cap - 4 - s->len, &data);
        if (n == 0)
            break;
        memcpy(s->buf + s->len, data, n);
        s->len += n;
        if (!frame_buffered(s))
            return;
    }
    if (s->closed)
        return;
    if (s->pending >= SIP_STREAM_PENDING_MAX)
        gw_conn_pause(s->c);
    if (s->len == 0 && s->buf != NULL) {
        free(s->buf);
        s->buf = NULL;
    }
    arm_timeout(s, s->len > 0 || s->discard > 0, false);
}

static void stream_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct sip_stream *s = arg;

    (void)c;
    switch (ev) {
    case GW_EV_READ:
        stream_process(s);
        break;
    case GW_EV_EOF:
        if (s->eof)
            break;
        stream_process(s);
        s->eof = true;
        if (!s->closed) {
            if (s->len > 0)
                gw_log(GW_LOG_INFO, s->c, "connection closed inside a message");
            /* answer what is being looked up, then close */
            if (s->pending == 0)
                stream_close(s, true);
        }
        break;
    case GW_EV_TIMEOUT:
        gw_log(GW_LOG_INFO, s->c, "%s: closing",
               s->timeout_partial ? "message not completed in time" : "idle");
        stream_close(s, false);
        break;
    case GW_EV_ERROR:
        stream_close(s, false);
        break;
    default:
        break;
    }
}

void sip_stream_accept(struct gw_plugin_ctx *ctx, struct gw_conn *client)
{
    struct sip_worker *w = gw_plugin_data(ctx);
    const struct gw_peer *peer = gw_conn_peer(client);
    unsigned long suppressed;
    struct sip_stream *s;

    if (w == NULL) {
        gw_conn_close(client);
        return;
    }
    if (!sip_peer_trusted(w->conf, peer->addr)) {
        if (sip_log_allowed(&w->log_untrusted, &suppressed))
            gw_log(GW_LOG_WARN, client, "connection from %s: not in trusted_peers "
                   "(%lu more refused since the last line)", peer->addr, suppressed);
        gw_conn_close(client);
        /* the core frees closed connections only when the loop wakes */
        gw_timer_start(w->waker, 0);
        return;
    }
    s = gw_calloc(1, sizeof(*s));
    s->w = w;
    s->c = client;
    s->cap = (size_t)w->conf->max_message + 4;
    s->dest.tp = gw_conn_is_tls(client) ? SIP_TP_TLS : SIP_TP_TCP;
    s->dest.stream = s;
    s->dest.peer = *peer;
    s->later = gw_timer_create(later_cb, s);
    sip_framer_init(&s->fr);
    s->next = w->streams;
    if (w->streams != NULL)
        w->streams->prev = s;
    w->streams = s;
    gw_conn_set_handler(client, stream_event, s);
    arm_timeout(s, false, true);
    gw_log(GW_LOG_DEBUG, client, "connection over %s", s->dest.tp == SIP_TP_TLS ? "tls" : "tcp");
    /* The core starts watching for input only once the plugin writes (the
       other protocols greet first); in SIP the client speaks first.
       pause+resume starts the watcher, and feeds a read event for bytes
       already buffered behind the TLS handshake. */
    gw_conn_pause(client);
    gw_conn_resume(client);
}

/* The worker is stopping: a stream with nothing in progress closes now (its
   client reconnects to another worker or the next generation); one whose
   requests are still being looked up closes once they are answered, as if
   the client had closed its side. */
void sip_streams_drain(struct sip_worker *w)
{
    struct sip_stream *s, *next;

    for (s = w->streams; s != NULL; s = next) {
        next = s->next;   /* closing only defers the destruction */
        if (s->closed)
            continue;
        if (s->pending == 0 && s->len == 0)
            stream_close(s, true);
        else
            s->eof = true;
    }
}

void sip_streams_destroy_all(struct sip_worker *w)
{
    /* called from stop(): the worker closed and freed the connections */
    while (w->streams != NULL)
        stream_destroy(w->streams, false);
}
