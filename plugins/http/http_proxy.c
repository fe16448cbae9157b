/*
 * The exchange with a backend: get a connection (the pool, or a new one
 * through the core's upstream, which fails over to the next copy), send the
 * request head we rebuild from the parsed one, stream the request body,
 * read the response head, send the client the one we rebuild, stream the
 * response body, and settle the backend connection (back to the pool when
 * it can be reused).
 *
 * Nothing the client sent is forwarded as raw bytes: heads are rebuilt
 * field by field (hop-by-hop fields dropped, our own added) and chunked
 * bodies are decoded by our strict decoder and re-encoded, so the backend
 * parses exactly the message we parsed -- the request-smuggling rule.
 * Content-Length bodies are copied as they come.
 *
 * Memory is bounded whatever the body size: a source is read only while its
 * destination holds less than HTTP_HIGH_WATER unsent; beyond that the
 * source is paused until the destination drains (GW_EV_DRAINED).
 *
 * Backend connections are opened with no client attached (NULL): a pooled
 * connection outlives the client it was opened for, and the core would
 * otherwise keep a pointer to that client for its log lines. Our own log
 * lines name the client and the backend.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>

#include "http.h"

static void http_backend_event(struct gw_conn *c, enum gw_conn_event ev, void *arg);
static void http_response_input(struct http_session *s);
static void http_send_request(struct http_session *s);

static const char continue_line[] = "HTTP/1.1 100 Continue\r\n\r\n";

/* ---- assembling output ---------------------------------------------------- */

struct http_out {
    char *p;
    size_t len, cap;
    bool full;
};

static void out_init(struct http_out *o, struct http_worker *w)
{
    o->p = w->scratch;
    o->cap = w->scratch_size;
    o->len = 0;
    o->full = false;
}

static void out_add(struct http_out *o, const void *d, size_t n)
{
    if (o->full || o->cap - o->len < n) {
        o->full = true;
        return;
    }
    memcpy(o->p + o->len, d, n);
    o->len += n;
}

static void out_str(struct http_out *o, const char *s)
{
    out_add(o, s, strlen(s));
}

static void out_slice(struct http_out *o, struct http_slice s)
{
    out_add(o, s.ptr, s.len);
}

static void out_fmt(struct http_out *o, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void out_fmt(struct http_out *o, const char *fmt, ...)
{
    va_list ap;
    int n;

    if (o->full)
        return;
    va_start(ap, fmt);
    n = vsnprintf(o->p + o->len, o->cap - o->len, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= o->cap - o->len) {
        o->full = true;
        return;
    }
    o->len += (size_t)n;
}

static const char *http_backend_name(const struct http_session *s)
{
    if (s->be != NULL)
        return s->be->server;
    if (s->nroutes > 0 && s->route_next > 0)
        return s->routes[s->route_next - 1].server;
    return "-";
}

/* ---- ending ------------------------------------------------------------- */

void http_proxy_abort(struct http_session *s)
{
    if (s->connecting != NULL) {
        gw_conn_set_handler(s->connecting, NULL, NULL);
        gw_conn_close(s->connecting);
        s->connecting = NULL;
    }
    if (s->be != NULL)
        http_backend_destroy(&s->be);
    http_buf_release(s->worker, &s->rin);
    s->resp_paused = false;
    s->req_paused = false;
    s->resp_state = HTTP_RESP_NONE;
}

/* The backend failed: log why, answer the client if we still can. */
static void http_proxy_fail(struct http_session *s, unsigned status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void http_proxy_fail(struct http_session *s, unsigned status, const char *fmt, ...)
{
    char why[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    gw_log(GW_LOG_WARN, s->client, "backend %s: %s", http_backend_name(s), why);
    http_proxy_abort(s);
    if (s->resp_started) {
        http_client_abort(s);
        return;
    }
    http_respond_error(s, status);
}

/* ---- getting a backend connection ------------------------------------------ */

static void http_attach(struct http_session *s, struct http_backend *be, bool reused)
{
    s->be = be;
    be->requests++;
    s->be_reused = reused;
    s->be_broken = false;
    s->be_eof = false;
    s->resp_paused = false;
    s->resp_state = HTTP_RESP_HEAD;
    http_scan_init(&s->rscan, true);
    gw_conn_set_handler(be->conn, http_backend_event, s);
}

static bool http_take_pooled(struct http_session *s, const char *server)
{
    struct http_backend *be;

    if (s->be_retried || (be = http_pool_take(s->worker->pool, server)) == NULL)
        return false;
    http_attach(s, be, true);
    http_send_request(s);
    return true;
}

static void http_connect_mailbox(struct http_session *s)
{
    struct gw_mailbox m;
    const char *error = NULL;
    struct gw_conn *up;

    http_mbox_view(s->target, &m);
    up = gw_upstream_connect(NULL, &m, HTTP_PROTOCOL, http_backend_event, s, &error);
    if (up == NULL) {
        gw_log(GW_LOG_WARN, s->client, "no backend for database %s: %s", m.database,
               error != NULL ? error : "refused");
        http_proxy_abort(s);
        http_respond_error(s, 503);
        return;
    }
    s->connecting = up;
}

/* Anonymous and legacy requests: the next candidate server. */
static void http_try_next_route(struct http_session *s)
{
    while (s->route_next < s->nroutes) {
        const struct gw_route *r = &s->routes[s->route_next++];
        const char *error = NULL;
        struct gw_conn *up;

        if (http_take_pooled(s, r->server))
            return;
        up = gw_upstream_connect_route(NULL, r, HTTP_PROTOCOL, http_backend_event, s, &error);
        if (up != NULL) {
            s->connecting = up;
            return;
        }
        gw_log(GW_LOG_WARN, s->client, "backend %s: %s", r->server,
               error != NULL ? error : "cannot connect");
    }
    gw_log(GW_LOG_WARN, s->client, "no %s server available for this request",
           s->route_kind == HTTP_ROUTE_LEGACY ? "legacy" : "healthy");
    http_proxy_abort(s);
    http_respond_error(s, 503);
}

static bool http_is_legacy(const struct http_session *s, const char *server)
{
    for (size_t i = 0; i < s->worker->legacy.n; i++)
        if (strcmp(s->worker->legacy.item[i], server) == 0)
            return true;
    return false;
}

/* Every healthy server offering http (legacy: only the legacy ones),
   starting at a rotating position. */
static void http_collect_routes(struct http_session *s)
{
    struct gw_route all[HTTP_SERVERS_MAX];
    size_t n = gw_servers_for(HTTP_PROTOCOL, all, HTTP_SERVERS_MAX), k = 0, start;

    for (size_t i = 0; i < n; i++) {
        bool legacy = http_is_legacy(s, all[i].server);
        if ((s->route_kind == HTTP_ROUTE_LEGACY) != legacy)
            continue;
        all[k++] = all[i];
    }
    s->nroutes = k;
    s->route_next = 0;
    if (k == 0)
        return;
    start = (size_t)(s->worker->rr++ % k);
    for (size_t i = 0; i < k; i++)
        s->routes[i] = all[(start + i) % k];
}

void http_proxy_start(struct http_session *s)
{
    s->state = HTTP_S_CONNECT;
    s->be_retried = false;
    s->resp_state = HTTP_RESP_NONE;
    if (s->route_kind == HTTP_ROUTE_MAILBOX) {
        s->route_next = 1;
        if (http_take_pooled(s, s->routes[0].server))
            return;
        http_connect_mailbox(s);
        return;
    }
    http_collect_routes(s);
    http_try_next_route(s);
}

/* A pooled connection turned out closed before it answered: once, and only
   while the request can be sent again (no body), on a new connection. */
static bool http_retry_fresh(struct http_session *s)
{
    if (!s->be_reused || s->be_retried || s->req_body != HTTP_BODY_NONE || s->resp_started ||
        http_buf_len(&s->rin) > 0 || s->head_len == 0)
        return false;
    gw_log(GW_LOG_DEBUG, s->client, "pooled connection to backend %s was closed; retrying",
           s->be->server);
    http_backend_destroy(&s->be);
    http_buf_release(s->worker, &s->rin);
    s->be_retried = true;
    s->state = HTTP_S_CONNECT;
    s->resp_state = HTTP_RESP_NONE;
    if (s->route_kind == HTTP_ROUTE_MAILBOX) {
        http_connect_mailbox(s);
    } else {
        const char *error = NULL;
        struct gw_conn *up = gw_upstream_connect_route(NULL, &s->routes[s->route_next - 1],
                                                       HTTP_PROTOCOL, http_backend_event, s,
                                                       &error);
        if (up == NULL) {
            http_try_next_route(s);
            return true;
        }
        s->connecting = up;
    }
    return true;
}

/* ---- the request head ---------------------------------------------------- */

/* Whether `name` is listed in a Connection header (and so hop-by-hop). */
static bool http_connection_lists(const struct http_request *req, struct http_slice name)
{
    if ((req->connection & HTTP_CONN_OTHER) == 0)
        return false;
    for (int i = http_header_find(req->headers, req->nheaders, 0, "Connection"); i >= 0;
         i = http_header_find(req->headers, req->nheaders, (size_t)i + 1, "Connection")) {
        struct http_slice item;
        size_t pos = 0;
        while (http_list_next(req->headers[i].value, &pos, &item))
            if (item.len == name.len && strncasecmp(item.ptr, name.ptr, name.len) == 0)
                return true;
    }
    return false;
}

static void out_addr(struct http_out *o, const struct gw_peer *p, bool port)
{
    bool v6 = strchr(p->addr, ':') != NULL;

    if (port)
        out_fmt(o, v6 ? "[%s]:%u" : "%s:%u", p->addr, p->port);
    else
        out_str(o, p->addr);
}

static bool http_printable(const char *s)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s < 0x20 || *s == 0x7f)
            return false;
    return true;
}

/* The head we send to the backend. */
static void http_build_request(struct http_session *s, struct http_out *o)
{
    const struct http_request *req = &s->req;
    const struct http_conf *conf = s->conf;
    const struct gw_peer *peer = gw_conn_peer(s->client);
    bool tls = gw_conn_is_tls(s->client);
    bool xff = false, fwd = false, via = false;

    out_slice(o, req->method_name);
    out_add(o, " ", 1);
    out_slice(o, req->path);
    if (req->query.ptr != NULL) {
        out_add(o, "?", 1);
        out_slice(o, req->query);
    }
    out_str(o, " HTTP/1.1\r\nHost: ");
    if (req->authority.ptr != NULL)
        out_slice(o, req->authority);
    else if (req->host >= 0)
        out_slice(o, req->headers[req->host].value);
    else
        out_addr(o, gw_conn_local(s->client), true);
    out_str(o, "\r\n");

    for (size_t i = 0; i < req->nheaders; i++) {
        const struct http_header *h = &req->headers[i];
        if (http_hop_by_hop(h->name) || http_slice_eq(h->name, "Host") ||
            http_slice_eq(h->name, "Content-Length") || http_slice_eq(h->name, "Expect") ||
            http_slice_eq(h->name, "Proxy-Authorization") ||
            http_slice_eq(h->name, "X-Forwarded-Proto") ||
            http_slice_eq(h->name, "X-Forwarded-Host") ||
            (conf->user_header != NULL && http_slice_eq(h->name, conf->user_header)) ||
            http_connection_lists(req, h->name))
            continue;
        if (http_slice_eq(h->name, "X-Forwarded-For") || http_slice_eq(h->name, "Forwarded") ||
            http_slice_eq(h->name, "Via"))
            continue;   /* merged below */
        out_slice(o, h->name);
        out_add(o, ": ", 2);
        out_slice(o, h->value);
        out_add(o, "\r\n", 2);
    }

    /* X-Forwarded-For, Forwarded: the client's chain only when trusted */
    out_str(o, "X-Forwarded-For: ");
    for (size_t i = 0; conf->trust_forwarded && i < req->nheaders; i++) {
        if (http_slice_eq(req->headers[i].name, "X-Forwarded-For") &&
            req->headers[i].value.len > 0) {
            out_slice(o, req->headers[i].value);
            out_str(o, ", ");
            xff = true;
        }
    }
    (void)xff;
    out_addr(o, peer, false);
    out_str(o, tls ? "\r\nX-Forwarded-Proto: https\r\n" : "\r\nX-Forwarded-Proto: http\r\n");
    if (conf->forwarded) {
        out_str(o, "Forwarded: ");
        for (size_t i = 0; conf->trust_forwarded && i < req->nheaders; i++) {
            if (http_slice_eq(req->headers[i].name, "Forwarded") &&
                req->headers[i].value.len > 0) {
                out_slice(o, req->headers[i].value);
                out_str(o, ", ");
                fwd = true;
            }
        }
        (void)fwd;
        out_str(o, "for=\"");
        if (strchr(peer->addr, ':') != NULL)
            out_fmt(o, "[%s]", peer->addr);
        else
            out_str(o, peer->addr);
        out_str(o, tls ? "\";proto=https" : "\";proto=http");
        if (req->authority.ptr != NULL || req->host >= 0) {
            out_str(o, ";host=\"");
            out_slice(o, req->authority.ptr != NULL ? req->authority
                                                    : req->headers[req->host].value);
            out_str(o, "\"");
        }
        out_str(o, "\r\n");
    }
    out_str(o, "Via: ");
    for (size_t i = 0; i < req->nheaders; i++) {
        if (http_slice_eq(req->headers[i].name, "Via") && req->headers[i].value.len > 0) {
            out_slice(o, req->headers[i].value);
            out_str(o, ", ");
            via = true;
        }
    }
    (void)via;
    out_str(o, req->version_minor == 1 ? "1.1 " HTTP_VIA_NAME "\r\n" : "1.0 " HTTP_VIA_NAME "\r\n");
    if (conf->user_header != NULL && s->route_kind != HTTP_ROUTE_ANONYMOUS &&
        s->mbox.user != NULL && http_printable(s->mbox.user))
        out_fmt(o, "%s: %s\r\n", conf->user_header, s->mbox.user);

    switch (s->req_body) {
    case HTTP_BODY_LENGTH:
        out_fmt(o, "Content-Length: %llu\r\n", (unsigned long long)req->content_length);
        break;
    case HTTP_BODY_CHUNKED:
        out_str(o, "Transfer-Encoding: chunked\r\n");
        break;
    default:
        if (http_header_find(req->headers, req->nheaders, 0, "Content-Length") >= 0)
            out_str(o, "Content-Length: 0\r\n");
        break;
    }
    if (s->websocket) {
        int u = http_header_find(req->headers, req->nheaders, 0, "Upgrade");
        out_str(o, "Connection: Upgrade\r\nUpgrade: ");
        out_slice(o, req->headers[u].value);
        out_str(o, "\r\n");
    }
    out_str(o, "\r\n");
}

/* The backend connection is up (new or pooled): send the request. */
static void http_send_request(struct http_session *s)
{
    struct http_out o;
    size_t take = 0;

    if (gw_upstream_tls(s->be->conn) == GW_TLS_STARTTLS) {
        gw_log(GW_LOG_ERROR, s->client, "backend %s: its http service says tls: starttls; "
               "HTTP backends take none or implicit", s->be->server);
        http_proxy_fail(s, 502, "misconfigured TLS mode");
        return;
    }
    out_init(&o, s->worker);
    http_build_request(s, &o);
    /* the first body bytes go in the same write */
    if (!o.full && s->req_state == HTTP_REQ_BODY && s->req_body == HTTP_BODY_LENGTH) {
        size_t avail = http_buf_len(&s->in) - s->head_len, room = o.cap - o.len;
        take = avail < room ? avail : room;
        if ((uint64_t)take > s->body_left)
            take = (size_t)s->body_left;
        out_add(&o, s->in.data + s->in.start + s->head_len, take);
    }
    if (o.full) {
        gw_log(GW_LOG_WARN, s->client, "request head too large to forward");
        http_proxy_abort(s);
        http_respond(s, 431, NULL, true);
        return;
    }
    if (gw_conn_write(s->be->conn, o.p, o.len) < 0) {
        http_proxy_fail(s, 502, "cannot send the request");
        return;
    }
    s->state = HTTP_S_PROXY;
    gw_conn_set_timeout(s->be->conn, s->conf->backend_timeout);
    if (gw_log_enabled(GW_LOG_DEBUG))
        gw_log(GW_LOG_DEBUG, s->client, "%.*s %.*s -> backend %s%s", (int)s->req.method_name.len,
               s->req.method_name.ptr, (int)(s->req.path.len > 200 ? 200 : s->req.path.len),
               s->req.path.ptr, s->be->server, s->be_reused ? " (pooled)" : "");
    if (s->req_state != HTTP_REQ_BODY) {
        /* the head stays until the exchange ends: a stale pooled connection
           is retried with it */
        gw_conn_set_timeout(s->client, 0);
        return;
    }
    http_consume_head(s);
    http_buf_consume(&s->in, take);
    s->body_left -= take;
    s->body_seen += take;
    if (s->req_body == HTTP_BODY_LENGTH && s->body_left == 0) {
        s->req_state = HTTP_REQ_DONE;
        gw_conn_set_timeout(s->client, 0);
        return;
    }
    if (s->req_body == HTTP_BODY_CHUNKED || s->body_left > HTTP_BULK_BODY)
        gw_conn_set_input_limit(s->client, HTTP_INPUT_BULK);
    if (s->expect_continue && s->client_11 && !s->continue_sent) {
        s->continue_sent = true;
        if (gw_conn_write(s->client, continue_line, sizeof(continue_line) - 1) < 0) {
            http_client_abort(s);
            return;
        }
    }
    gw_conn_set_timeout(s->client, s->conf->body_timeout);
    gw_conn_resume(s->client);
    http_client_input(s);
}

/* ---- the request body ------------------------------------------------------ */

static int http_write_chunk(struct gw_conn *c, struct http_worker *w, const char *data, size_t n)
{
    char hdr[HTTP_CHUNK_HEADER_MAX];
    size_t hl = http_chunk_header(hdr, n);

    if (hl + n + 2 <= w->scratch_size) {
        memcpy(w->scratch, hdr, hl);
        memcpy(w->scratch + hl, data, n);
        memcpy(w->scratch + hl + n, "\r\n", 2);
        return gw_conn_write(c, w->scratch, hl + n + 2);
    }
    if (gw_conn_write(c, hdr, hl) < 0 || gw_conn_write(c, data, n) < 0)
        return -1;
    return gw_conn_write(c, "\r\n", 2);
}

/* A bad request body: answer if nothing went out yet, else drop both. */
static void http_body_error(struct http_session *s, unsigned status, const char *why)
{
    gw_log(GW_LOG_INFO, s->client, "request body refused: %s", why);
    http_proxy_abort(s);
    if (s->resp_started) {
        http_client_abort(s);
        return;
    }
    s->req_state = HTTP_REQ_NONE;   /* the rest of it cannot be skipped */
    http_respond(s, status, NULL, true);
}

/* Forward body bytes p[0..n); returns the bytes used (the request ended
   there when fewer than n), or -1 when the session failed. */
static long http_body_feed(struct http_session *s, const char *p, size_t n)
{
    struct gw_conn *be = s->be->conn;
    uint64_t max = (uint64_t)s->conf->max_body_size;

    if (s->req_body == HTTP_BODY_LENGTH) {
        size_t take = (uint64_t)n < s->body_left ? n : (size_t)s->body_left;
        if (gw_conn_write(be, p, take) < 0) {
            http_proxy_fail(s, 502, "cannot send the request body");
            return -1;
        }
        s->body_left -= take;
        s->body_seen += take;
        if (s->body_left == 0)
            s->req_state = HTTP_REQ_DONE;
        return (long)take;
    }
    {
        size_t off = 0;
        while (off < n) {
            struct http_slice data;
            const char *error;
            size_t used;
            enum http_parse_result r =
                http_chunked_parse(&s->req_ck, p + off, n - off, &used, &data, &error);

            off += used;
            if (data.len > 0) {
                s->body_seen += data.len;
                if (max > 0 && s->body_seen > max) {
                    http_body_error(s, 413, "larger than max_body_size");
                    return -1;
                }
                if (http_write_chunk(be, s->worker, data.ptr, data.len) < 0) {
                    http_proxy_fail(s, 502, "cannot send the request body");
                    return -1;
                }
            }
            if (r == HTTP_PARSE_OK) {
                if (gw_conn_write(be, "0\r\n\r\n", 5) < 0) {
                    http_proxy_fail(s, 502, "cannot send the request body");
                    return -1;
                }
                s->req_state = HTTP_REQ_DONE;
                break;
            }
            if (r == HTTP_PARSE_BAD) {
                http_body_error(s, 400, error);
                return -1;
            }
            if (used == 0 && data.len == 0)
                break;
        }
        return (long)off;
    }
}

void http_proxy_request_body(struct http_session *s)
{
    while (s->state == HTTP_S_PROXY && s->req_state == HTTP_REQ_BODY && s->be != NULL) {
        const char *p;
        size_t n;
        long used;
        bool from_in = http_buf_len(&s->in) > 0;

        if (gw_conn_unsent(s->be->conn) > HTTP_HIGH_WATER) {
            s->req_paused = true;
            gw_conn_pause(s->client);
            gw_conn_notify_drained(s->be->conn);
            return;
        }
        if (from_in) {
            p = s->in.data + s->in.start;
            n = http_buf_len(&s->in);
        } else {
            n = gw_conn_read_bytes(s->client, HTTP_READ_MAX, &p);
            if (n == 0)
                return;
        }
        used = http_body_feed(s, p, n);
        if (used < 0)
            return;
        if (from_in) {
            http_buf_consume(&s->in, (size_t)used);
        } else if ((size_t)used < n) {
            /* pipelined: the next request begins here (`in` is empty) */
            http_buf_ensure(s->worker, &s->in, n - (size_t)used);
            memcpy(s->in.data + s->in.end, p + used, n - (size_t)used);
            s->in.end += n - (size_t)used;
        }
        gw_conn_set_timeout(s->client, s->conf->body_timeout);
    }
    if (s->state == HTTP_S_PROXY && s->req_state == HTTP_REQ_DONE) {
        /* back to the default input limit (the buffer is given back when
           empty); pipelined requests wait in it until this one is answered */
        gw_conn_set_input_limit(s->client, HTTP_INPUT_DEFAULT);
        if (!s->resp_paused)
            gw_conn_set_timeout(s->client, 0);
        if (s->resp_state == HTTP_RESP_DONE)
            http_response_input(s);
    }
}

/* ---- the response head ------------------------------------------------------ */

static void http_build_response(struct http_session *s, const struct http_response *resp,
                                struct http_out *o)
{
    out_fmt(o, "HTTP/1.1 %u ", resp->status);
    if (resp->reason.len > 0)
        out_slice(o, resp->reason);
    else
        out_str(o, http_status_reason(resp->status));
    out_str(o, "\r\n");
    for (size_t i = 0; i < resp->nheaders; i++) {
        const struct http_header *h = &resp->headers[i];
        bool listed = false;
        if (http_slice_eq(h->name, "Content-Length"))
            continue;
        if (http_hop_by_hop(h->name) && !(resp->status == 101 && http_slice_eq(h->name, "Upgrade")))
            continue;
        if ((resp->connection & HTTP_CONN_OTHER) != 0) {
            for (int c = http_header_find(resp->headers, resp->nheaders, 0, "Connection");
                 c >= 0 && !listed;
                 c = http_header_find(resp->headers, resp->nheaders, (size_t)c + 1, "Connection")) {
                struct http_slice item;
                size_t pos = 0;
                while (http_list_next(resp->headers[c].value, &pos, &item))
                    if (item.len == h->name.len &&
                        strncasecmp(item.ptr, h->name.ptr, item.len) == 0)
                        listed = true;
            }
        }
        if (listed)
            continue;
        out_slice(o, h->name);
        out_add(o, ": ", 2);
        out_slice(o, h->value);
        out_add(o, "\r\n", 2);
    }
    if (resp->status == 101) {
        out_str(o, "Connection: Upgrade\r\n\r\n");
        return;
    }
    if (resp->status < 200) {
        out_str(o, "\r\n");
        return;
    }
    switch (s->resp_body) {
    case HTTP_BODY_LENGTH:
        out_fmt(o, "Content-Length: %llu\r\n", (unsigned long long)resp->content_length);
        break;
    case HTTP_BODY_NONE:
        /* HEAD and 304 describe the body they do not carry; 204 has none */
        if (resp->has_content_length && resp->status != 204)
            out_fmt(o, "Content-Length: %llu\r\n", (unsigned long long)resp->content_length);
        break;
    default:
        if (s->resp_chunk_out)
            out_str(o, "Transfer-Encoding: chunked\r\n");
        break;
    }
    if (s->close_after)
        out_str(o, "Connection: close\r\n");
    else if (!s->client_11)
        out_str(o, "Connection: keep-alive\r\n");
    out_str(o, "\r\n");
}

/* 101 to a WebSocket request: pass the answer on, then both connections
   to the core's byte pump. */
static void http_websocket(struct http_session *s, const struct http_response *resp,
                           size_t head_len)
{
    struct gw_conn *client = s->client, *up = s->be->conn;
    struct http_out o;

    out_init(&o, s->worker);
    http_build_response(s, resp, &o);
    if (o.full || gw_conn_write(client, o.p, o.len) < 0) {
        http_proxy_fail(s, 502, "cannot forward the 101 answer");
        return;
    }
    http_buf_consume(&s->rin, head_len);
    http_consume_head(s);
    if ((http_buf_len(&s->rin) > 0 &&
         gw_conn_write(client, s->rin.data + s->rin.start, http_buf_len(&s->rin)) < 0) ||
        (http_buf_len(&s->in) > 0 && gw_conn_write(up, s->in.data + s->in.start, http_buf_len(&s->in)) < 0)) {
        http_proxy_fail(s, 502, "cannot forward WebSocket data");
        return;
    }
    gw_log(GW_LOG_INFO, client, "WebSocket to backend %s", s->be->server);
    s->be->conn = NULL;
    http_backend_destroy(&s->be);
    gw_conn_set_handler(client, NULL, NULL);
    gw_conn_set_handler(up, NULL, NULL);
    gw_conn_set_timeout(client, 0);
    gw_conn_set_timeout(up, 0);
    http_session_detach(s);
    gw_relay(client, up, 0);
}

/* A complete response head is at the start of rin. */
static void http_response_head(struct http_session *s)
{
    struct http_response resp;
    const char *error = "";
    size_t head_len = s->rscan.pos;
    struct http_out o;
    size_t take = 0;

    if (http_response_parse(s->rin.data + s->rin.start, &s->rscan, s->head_method,
                            s->worker->rhdrs, (size_t)s->conf->max_headers, &resp,
                            &error) != HTTP_PARSE_OK) {
        http_proxy_fail(s, 502, "invalid response head: %s", error);
        return;
    }
    if (resp.status == 101) {
        if (!s->websocket) {
            http_proxy_fail(s, 502, "101 to a request that asked for no upgrade");
            return;
        }
        http_websocket(s, &resp, head_len);
        return;
    }
    if (resp.status < 200) {
        /* interim: ours replaces 100; others go to HTTP/1.1 clients */
        if (resp.status != 100 && s->client_11) {
            out_init(&o, s->worker);
            http_build_response(s, &resp, &o);
            if (!o.full && gw_conn_write(s->client, o.p, o.len) < 0) {
                http_client_abort(s);
                return;
            }
        }
        http_buf_consume(&s->rin, head_len);
        http_scan_init(&s->rscan, true);
        return;
    }
    s->resp_status = resp.status;
    s->resp_body = resp.body;
    s->resp_left = resp.content_length;
    http_chunked_init(&s->resp_ck);
    s->resp_keep_alive = resp.keep_alive;
    if (!resp.keep_alive)
        s->be_broken = true;
    s->resp_chunk_out = false;
    if (resp.body == HTTP_BODY_CHUNKED || resp.body == HTTP_BODY_EOF) {
        if (s->client_11)
            s->resp_chunk_out = true;
        else
            s->close_after = true;   /* the end of the body is our close */
    }
    if (s->websocket)
        s->close_after = true;       /* the upgrade was refused */
    out_init(&o, s->worker);
    http_build_response(s, &resp, &o);
    if (o.full) {
        http_proxy_fail(s, 502, "response head too large to forward");
        return;
    }
    /* the first body bytes go in the same write */
    if (resp.body == HTTP_BODY_LENGTH) {
        size_t avail = http_buf_len(&s->rin) - head_len, room = o.cap - o.len;
        take = avail < room ? avail : room;
        if ((uint64_t)take > s->resp_left)
            take = (size_t)s->resp_left;
        out_add(&o, s->rin.data + s->rin.start + head_len, take);
    }
    if (gw_conn_write(s->client, o.p, o.len) < 0) {
        http_client_abort(s);
        return;
    }
    s->resp_started = true;
    http_buf_consume(&s->rin, head_len + take);
    s->resp_left -= take;
    if (resp.body == HTTP_BODY_NONE || (resp.body == HTTP_BODY_LENGTH && s->resp_left == 0)) {
        s->resp_state = HTTP_RESP_DONE;
        if (http_buf_len(&s->rin) > 0)
            s->be_broken = true;   /* bytes after the response: do not reuse */
    } else {
        s->resp_state = HTTP_RESP_BODY;
        /* bigger reads for a large body: fewer reads, writes and wakeups */
        if (resp.body != HTTP_BODY_LENGTH || s->resp_left > HTTP_BULK_BODY)
            gw_conn_set_input_limit(s->be->conn, HTTP_INPUT_BULK);
    }
    if (gw_log_enabled(GW_LOG_DEBUG))
        gw_log(GW_LOG_DEBUG, s->client, "backend %s answered %u", s->be->server, resp.status);
}

/* ---- the response body -------------------------------------------------------- */

static int http_client_data(struct http_session *s, const char *p, size_t n)
{
    if (n == 0)
        return 0;
    if (s->resp_chunk_out)
        return http_write_chunk(s->client, s->worker, p, n);
    return gw_conn_write(s->client, p, n);
}

/* Forward response body bytes p[0..n); returns the bytes used or -1. */
static long http_resp_feed(struct http_session *s, const char *p, size_t n)
{
    if (s->resp_body == HTTP_BODY_LENGTH) {
        size_t take = (uint64_t)n < s->resp_left ? n : (size_t)s->resp_left;
        if (http_client_data(s, p, take) < 0)
            return -1;
        s->resp_left -= take;
        if (s->resp_left == 0)
            s->resp_state = HTTP_RESP_DONE;
        return (long)take;
    }
    if (s->resp_body == HTTP_BODY_EOF) {
        if (http_client_data(s, p, n) < 0)
            return -1;
        return (long)n;
    }
    {
        size_t off = 0;
        while (off < n) {
            struct http_slice data;
            const char *error;
            size_t used;
            enum http_parse_result r =
                http_chunked_parse(&s->resp_ck, p + off, n - off, &used, &data, &error);

            off += used;
            if (http_client_data(s, data.ptr, data.len) < 0)
                return -1;
            if (r == HTTP_PARSE_OK) {
                if (s->resp_chunk_out && gw_conn_write(s->client, "0\r\n\r\n", 5) < 0)
                    return -1;
                s->resp_state = HTTP_RESP_DONE;
                break;
            }
            if (r == HTTP_PARSE_BAD) {
                gw_log(GW_LOG_WARN, s->client, "backend %s: malformed chunked body: %s",
                       s->be->server, error);
                return -1;
            }
            if (used == 0 && data.len == 0)
                break;
        }
        return (long)off;
    }
}

/* The backend closed while its body was flowing. */
static void http_resp_eof(struct http_session *s)
{
    if (s->resp_body == HTTP_BODY_EOF) {
        if (s->resp_chunk_out && gw_conn_write(s->client, "0\r\n\r\n", 5) < 0) {
            http_client_abort(s);
            return;
        }
        s->resp_state = HTTP_RESP_DONE;
        s->be_broken = true;
        return;
    }
    gw_log(GW_LOG_WARN, s->client, "backend %s closed the connection in the middle of the "
           "response body", s->be->server);
    http_client_abort(s);
}

static void http_response_body(struct http_session *s)
{
    while (s->state == HTTP_S_PROXY && s->resp_state == HTTP_RESP_BODY) {
        const char *p;
        size_t n;
        long used;
        bool from_rin = http_buf_len(&s->rin) > 0;

        if (gw_conn_unsent(s->client) > HTTP_HIGH_WATER) {
            s->resp_paused = true;
            gw_conn_pause(s->be->conn);
            gw_conn_notify_drained(s->client);
            gw_conn_set_timeout(s->client, s->conf->body_timeout);
            return;
        }
        if (from_rin) {
            p = s->rin.data + s->rin.start;
            n = http_buf_len(&s->rin);
        } else {
            n = gw_conn_read_bytes(s->be->conn, HTTP_READ_MAX, &p);
            if (n == 0) {
                if (s->be_eof)
                    http_resp_eof(s);
                return;
            }
        }
        used = http_resp_feed(s, p, n);
        if (used < 0) {
            http_client_abort(s);
            return;
        }
        if (from_rin)
            http_buf_consume(&s->rin, (size_t)used);
        if ((size_t)used < n)
            s->be_broken = true;   /* bytes after the response: do not reuse */
        gw_conn_set_timeout(s->be->conn, s->conf->backend_timeout);
    }
}

/* ---- settling ------------------------------------------------------------------ */

static void http_finish_exchange(struct http_session *s)
{
    struct http_backend *be = s->be;
    bool reuse = be != NULL && !s->be_broken && !s->be_eof && s->resp_keep_alive &&
                 http_buf_len(&s->rin) == 0 && gw_conn_pending(be->conn) == 0 &&
                 s->req_state == HTTP_REQ_DONE;

    s->be = NULL;
    if (be != NULL) {
        if (reuse) {
            /* back to the default: the (empty) buffer is given back */
            gw_conn_set_input_limit(be->conn, HTTP_INPUT_DEFAULT);
            gw_conn_set_timeout(be->conn, 0);
            gw_conn_set_handler(be->conn, NULL, NULL);
            http_pool_put(s->worker->pool, be);   /* with no pool: closed */
        } else {
            http_backend_destroy(&be);
        }
    }
    http_buf_release(s->worker, &s->rin);
    s->resp_paused = false;
    s->req_paused = false;
    s->resp_state = HTTP_RESP_DONE;
    http_exchange_done(s);
}

static void http_response_input(struct http_session *s)
{
    struct http_limits lim;

    lim.max_line = (size_t)s->conf->max_response_header_size;
    lim.max_head = (size_t)s->conf->max_response_header_size;
    lim.max_headers = (size_t)s->conf->max_headers;
    http_session_ref(s);
    while (s->state == HTTP_S_PROXY && s->be != NULL) {
        if (s->resp_state == HTTP_RESP_HEAD) {
            unsigned status;
            const char *error = "";
            size_t got = 0;
            enum http_parse_result r;

            if (s->rscan.pos >= http_buf_len(&s->rin) && gw_conn_pending(s->be->conn) > 0) {
                const char *p;
                size_t room;
                if (s->rin.data == NULL)
                    http_buf_reserve(s->worker, &s->rin);
                if (s->rin.end == s->rin.cap)
                    http_buf_ensure(s->worker, &s->rin, s->rin.cap);
                room = s->rin.cap - s->rin.end;
                got = gw_conn_read_bytes(s->be->conn, room, &p);
                memcpy(s->rin.data + s->rin.end, p, got);
                s->rin.end += got;
            }
            if (http_buf_len(&s->rin) == 0) {
                if (s->be_eof && !http_retry_fresh(s))
                    http_proxy_fail(s, 502, "closed the connection before answering");
                break;
            }
            r = http_scan_head(&s->rscan, s->rin.data + s->rin.start, http_buf_len(&s->rin), &lim,
                               &status, &error);
            if (r == HTTP_PARSE_BAD) {
                http_proxy_fail(s, 502, "invalid response head: %s", error);
                break;
            }
            if (r == HTTP_PARSE_MORE) {
                if (got == 0) {
                    if (s->be_eof)
                        http_proxy_fail(s, 502, "closed the connection in the response head");
                    break;
                }
                continue;
            }
            http_response_head(s);
        } else if (s->resp_state == HTTP_RESP_BODY) {
            http_response_body(s);
            if (s->resp_state == HTTP_RESP_BODY)
                break;
        } else if (s->resp_state == HTTP_RESP_DONE) {
            http_finish_exchange(s);
            break;
        } else {
            break;
        }
    }
    http_session_unref(&s);
}

void http_proxy_client_drained(struct http_session *s)
{
    s->resp_paused = false;
    if (s->be == NULL)
        return;
    gw_conn_resume(s->be->conn);
    gw_conn_set_timeout(s->client, s->req_state == HTTP_REQ_BODY ? s->conf->body_timeout : 0);
    http_response_input(s);
}

/* ---- backend events ------------------------------------------------------------ */

static void http_backend_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct http_session *s = arg;

    http_session_ref(s);
    if (s->state == HTTP_S_CLOSED)
        goto out;
    if (c == s->connecting) {
        switch (ev) {
        case GW_EV_CONNECTED:
            s->connecting = NULL;
            http_attach(s, http_backend_create(c), false);
            http_send_request(s);
            break;
        case GW_EV_ERROR:
        case GW_EV_EOF:
        case GW_EV_TIMEOUT:
            s->connecting = NULL;
            gw_conn_set_handler(c, NULL, NULL);
            gw_conn_close(c);
            if (s->route_kind == HTTP_ROUTE_MAILBOX) {
                /* the core tried the other copies already */
                gw_log(GW_LOG_WARN, s->client, "no backend reachable for database %s",
                       s->target != NULL && s->target->database ? s->target->database : "-");
                http_respond_error(s, 503);
            } else {
                http_try_next_route(s);
            }
            break;
        default:
            break;
        }
        goto out;
    }
    if (s->be == NULL || c != s->be->conn)
        goto out;
    switch (ev) {
    case GW_EV_READ:
        http_response_input(s);
        break;
    case GW_EV_EOF:
        s->be_eof = true;
        http_response_input(s);
        break;
    case GW_EV_ERROR:
        s->be_eof = true;
        s->be_broken = true;
        if (s->resp_state == HTTP_RESP_HEAD && http_buf_len(&s->rin) == 0 && http_retry_fresh(s))
            break;
        if (s->resp_state == HTTP_RESP_BODY && s->resp_body == HTTP_BODY_EOF) {
            http_response_input(s);
            break;
        }
        http_proxy_fail(s, 502, "connection error");
        break;
    case GW_EV_TIMEOUT:
        if (s->resp_state == HTTP_RESP_HEAD)
            http_proxy_fail(s, 504, "no response within backend_timeout");
        else
            http_proxy_fail(s, 502, "stalled in the response body");
        break;
    case GW_EV_DRAINED:
        if (s->req_paused) {
            s->req_paused = false;
            gw_conn_resume(s->client);
            http_client_input(s);
        }
        break;
    case GW_EV_CONNECTED:
    case GW_EV_TLS_DONE:
        break;
    }
out:
    http_session_unref(&s);
}
