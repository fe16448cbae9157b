/*
 * HTTP session: one client connection, any number of requests on it.
 *
 * For each request: read the head (http_scan_head, bounded by
 * header_timeout), parse it (http_request_parse), then decide locally --
 * health page, 404 outside path_prefixes, anonymous prefix, or Basic
 * authentication against the directory (with a per-connection memo of the
 * credentials already proved) -- and route: the locator's answer for the
 * user's mailbox (or the mailbox a routing hint names, resolved through the
 * directory: a hint can only ever select one of the locator's own servers),
 * a legacy server for an old mailbox version, a 302 to another site, or an
 * error page. The exchange with the backend is http_proxy.c's.
 *
 * While a request is being decided or its response is on its way, the
 * client is paused: pipelined requests wait in the kernel and in our input
 * buffer, and are served in order afterwards.
 *
 * Lifetime: as in the POP3 plugin, every entry point (connection events,
 * lookup callbacks) holds a reference while it runs, so a session closed
 * deep inside a call chain is freed only when the outermost one returns.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <http_parser.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include "http.h"

static void http_session_release(struct http_session *s);
static void http_next_request(struct http_session *s);
static void http_authenticate(struct http_session *s);
static void http_route_target(struct http_session *s);

/* ---- small things -------------------------------------------------------- */

void http_mbox_set(struct http_mbox *m, const struct gw_mailbox *src)
{
    http_mbox_clear(m);
    m->user = gw_strdup(src->user != NULL ? src->user : "");
    m->database = gw_strdup(src->database != NULL ? src->database : "");
    m->site = src->site != NULL ? gw_strdup(src->site) : NULL;
    m->version = src->version;
}

void http_mbox_clear(struct http_mbox *m)
{
    free(m->user);
    free(m->database);
    free(m->site);
    memset(m, 0, sizeof(*m));
}

void http_mbox_view(const struct http_mbox *m, struct gw_mailbox *v)
{
    memset(v, 0, sizeof(*v));
    v->user = m->user;
    v->database = m->database;
    v->site = m->site;
    v->version = m->version;
}

/* Buffers of the initial size come from (and go back to) a small
   per-worker cache: a request allocating and freeing its 4 KiB at the top
   of the heap made glibc trim and grow it (brk) on every request. */
void http_buf_reserve(struct http_worker *w, struct http_buf *b)
{
    if (b->data != NULL)
        return;
    b->data = w->nbufs > 0 ? w->bufs[--w->nbufs] : gw_malloc(HTTP_IN_INITIAL);
    b->cap = HTTP_IN_INITIAL;
    b->start = b->end = 0;
}

/* Storage a buffer no longer uses: wiped (request heads carry credentials,
   nothing outlives its use), then back to the cache or freed. */
static void buf_recycle(struct http_worker *w, char *data, size_t cap)
{
    OPENSSL_cleanse(data, cap);
    if (cap == HTTP_IN_INITIAL && w != NULL && w->nbufs < HTTP_BUF_CACHE)
        w->bufs[w->nbufs++] = data;
    else
        free(data);
}

void http_buf_release(struct http_worker *w, struct http_buf *b)
{
    if (b->data == NULL)
        return;
    buf_recycle(w, b->data, b->cap);
    memset(b, 0, sizeof(*b));
}

/* Bytes of the current head are no longer needed (the backend has its own
   copy, or we answered): drop them so `in` starts with the body. */
void http_consume_head(struct http_session *s)
{
    if (s->head_len > 0) {
        http_buf_consume(&s->in, s->head_len);
        s->head_len = 0;
    }
}

static unsigned long long now_ms(void)
{
    return gw_now_ms();
}

/* HMAC-SHA256 under the worker's random key: what the connection remembers
   of credentials it proved, never the credentials themselves. */
static void memo_digest(const struct http_session *s, struct http_slice value,
                        unsigned char out[32])
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(s->worker->memo_mac);
    size_t outl = 0;

    if (ctx == NULL || EVP_MAC_init(ctx, NULL, 0, NULL) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)value.ptr, value.len) != 1 ||
        EVP_MAC_final(ctx, out, &outl, 32) != 1 || outl != 32)
        RAND_bytes(out, 32);   /* cannot hash: a digest nothing will match */
    EVP_MAC_CTX_free(ctx);
}

static void memo_forget(struct http_session *s)
{
    OPENSSL_cleanse(s->cred, sizeof(s->cred));
    s->cred_expires = 0;
}

/* ---- lifetime -------------------------------------------------------------- */

void http_session_ref(struct http_session *s)
{
    s->refs++;
}

static void http_session_free(struct http_session *s)
{
    http_buf_release(s->worker, &s->in);
    http_buf_release(s->worker, &s->rin);
    free(s->hdrs);
    http_mbox_clear(&s->mbox);
    http_mbox_clear(&s->hint_mbox);
    free(s->hint);
    OPENSSL_cleanse(s->cred, sizeof(s->cred));
    if (s->worker != NULL) {
        if (s->prev != NULL)
            s->prev->next = s->next;
        else
            s->worker->sessions = s->next;
        if (s->next != NULL)
            s->next->prev = s->prev;
        s->worker->nsessions--;
    }
    free(s);
}

void http_session_unref(struct http_session **sp)
{
    struct http_session *s = *sp;

    *sp = NULL;
    if (--s->refs == 0)
        http_session_free(s);
}

/* Drop everything but the client connection (the caller closes or relays
   it); the session becomes CLOSED and loses its "open" reference. */
static void http_session_release(struct http_session *s)
{
    struct http_session *open_ref = s;

    if (s->state == HTTP_S_CLOSED)
        return;
    s->state = HTTP_S_CLOSED;
    if (s->lookup != NULL)
        gw_lookup_cancel(&s->lookup);
    s->lookup_pending = false;
    http_proxy_abort(s);
    s->client = NULL;
    http_session_unref(&open_ref);
}

void http_client_abort(struct http_session *s)
{
    struct gw_conn *c = s->client;

    if (s->state == HTTP_S_CLOSED)
        return;
    if (c != NULL) {
        gw_conn_set_handler(c, NULL, NULL);
        gw_conn_close(c);
    }
    http_session_release(s);
}

void http_session_detach(struct http_session *s)
{
    http_session_release(s);
}

/* Close after what is queued has been written. */
static void http_client_finish(struct http_session *s)
{
    struct gw_conn *c = s->client;

    if (s->state == HTTP_S_CLOSED)
        return;
    gw_conn_set_handler(c, NULL, NULL);
    gw_conn_set_timeout(c, HTTP_CLOSE_FLUSH_MS);
    gw_conn_close_after_write(c);
    http_session_release(s);
}

/* ---- local answers --------------------------------------------------------- */

#define HTTP_PAGE_FMT                                               \
    "<!DOCTYPE html>\r\n<html><head><title>%u %s</title></head>" \
    "<body><h1>%u %s</h1></body></html>\r\n"

/* Whether the rest of this request's body can be read and dropped so the
   connection survives our early answer. */
static bool body_skippable(const struct http_session *s)
{
    if (s->req_state != HTTP_REQ_BODY)
        return true;
    /* the client waits for 100 Continue and may never send the body */
    if (s->expect_continue && !s->continue_sent)
        return false;
    if (s->req_body == HTTP_BODY_LENGTH && s->body_left > (uint64_t)s->conf->max_discard)
        return false;
    return true;
}

static void http_answer(struct http_session *s, unsigned status, const char *extra,
                        const char *body, size_t body_len, const char *ctype, bool close)
{
    char head[1024];
    int n;

    if (s->state == HTTP_S_CLOSED)
        return;
    if (s->resp_started) {
        /* a response head already went out: nothing sane left to say */
        http_client_abort(s);
        return;
    }
    http_proxy_abort(s);
    http_consume_head(s);
    if (!body_skippable(s))
        close = true;
    if (close)
        s->close_after = true;
    n = snprintf(head, sizeof(head),
                 "HTTP/1.1 %u %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s%s"
                 "Cache-Control: no-store\r\n\r\n",
                 status, http_status_reason(status), ctype, body_len, extra != NULL ? extra : "",
                 s->close_after ? "Connection: close\r\n"
                 : !s->client_11 ? "Connection: keep-alive\r\n" : "");
    if (n < 0 || (size_t)n >= sizeof(head) ||
        gw_conn_write(s->client, head, (size_t)n) < 0 ||
        (!s->head_method && body_len > 0 && gw_conn_write(s->client, body, body_len) < 0)) {
        http_client_abort(s);
        return;
    }
    if (s->close_after) {
        http_client_finish(s);
        return;
    }
    if (s->req_state == HTTP_REQ_BODY) {
        /* read and drop the rest of the body, then go on */
        s->state = HTTP_S_DISCARD;
        s->body_seen = 0;
        gw_conn_set_timeout(s->client, s->conf->body_timeout);
        gw_conn_resume(s->client);
        http_client_input(s);
        return;
    }
    http_next_request(s);
}

void http_respond(struct http_session *s, unsigned status, const char *extra, bool close)
{
    char body[512];
    int n;

    n = snprintf(body, sizeof(body), HTTP_PAGE_FMT, status, http_status_reason(status), status,
                 http_status_reason(status));
    if (n < 0)
        n = 0;
    http_answer(s, status, extra, body, (size_t)n, "text/html; charset=utf-8", close);
}

static void http_respond_retry(struct http_session *s, unsigned status)
{
    char extra[64];

    snprintf(extra, sizeof(extra), "Retry-After: %ld\r\n", s->conf->retry_after / 1000);
    http_respond(s, status, extra, false);
}

void http_respond_error(struct http_session *s, unsigned status)
{
    if (status == 503)
        http_respond_retry(s, status);
    else
        http_respond(s, status, NULL, false);
}

static void http_challenge(struct http_session *s)
{
    char extra[256];

    snprintf(extra, sizeof(extra), "WWW-Authenticate: Basic realm=\"%s\", charset=\"UTF-8\"\r\n",
             s->conf->realm != NULL ? s->conf->realm : HTTP_VIA_NAME);
    http_respond(s, 401, extra, false);
}

static void http_redirect(struct http_session *s, const char *base)
{
    char *extra = s->worker->scratch;
    size_t size = s->worker->scratch_size;
    long n;

    memcpy(extra, "Location: ", 10);
    n = http_redirect_url(base, s->req.path, s->req.query, extra + 10, size - 16);
    if (n < 0) {
        http_respond(s, 414, NULL, false);
        return;
    }
    memcpy(extra + 10 + n, "\r\n", 3);
    http_respond(s, 302, extra, false);
}

/* ---- health pages ------------------------------------------------------------ */

static void http_health_answer(struct http_session *s, bool ok)
{
    static const char body[] = "200 OK<br/>" HTTP_VIA_NAME "\r\n";

    if (ok)
        http_answer(s, 200, NULL, body, sizeof(body) - 1, "text/html; charset=utf-8", false);
    else
        http_respond_retry(s, 503);
}

void http_health_done(struct http_worker *w)
{
    struct http_session *s, *next;

    for (s = w->sessions; s != NULL; s = next) {
        next = s->next;
        if (s->state != HTTP_S_HEALTH)
            continue;
        http_session_ref(s);
        http_health_answer(s, w->health_dir_ok == 1);
        next = s->next;
        http_session_unref(&s);
    }
}

/* The worker is stopping: idle keep-alive connections are closed now (a
   client retries on a new connection, which another worker or the new
   generation accepts); requests in flight are answered, then closed. */
void http_sessions_drain(struct http_worker *w)
{
    struct http_session *s, *next;

    for (s = w->sessions; s != NULL; s = next) {
        http_session_ref(s);   /* keeps s, and so s->next, valid */
        if (s->state == HTTP_S_IDLE)
            http_client_abort(s);
        else
            s->close_after = true;
        next = s->next;
        http_session_unref(&s);
    }
}

static void http_health_probe_done(void *arg, enum gw_auth_result res, const struct gw_mailbox *m)
{
    struct http_worker *w = arg;

    w->health_lookup = NULL;
    w->health_dir_ok = res == GW_AUTH_OK ? 1 : 0;
    w->health_checked = now_ms();
    if (res != GW_AUTH_OK)
        gw_log(GW_LOG_WARN, NULL, "http: health probe: directory lookup of %s: %s",
               w->conf->health_user, gw_auth_result_str(res));
    http_health_done(w);
}

/* <prefix>/healthcheck.htm: 200 only when a backend is healthy and (for a
   prefix that needs authentication) the directory answers. */
static void http_health(struct http_session *s, bool anonymous)
{
    struct http_worker *w = s->worker;
    struct gw_route r;

    if (s->req.method != HTTP_GET && s->req.method != HTTP_HEAD) {
        http_respond(s, 405, "Allow: GET, HEAD\r\n", false);
        return;
    }
    if (gw_servers_for(HTTP_PROTOCOL, &r, 1) == 0) {
        http_health_answer(s, false);
        return;
    }
    if (anonymous || s->conf->health_user == NULL) {
        http_health_answer(s, true);
        return;
    }
    if (w->health_dir_ok >= 0 && now_ms() - w->health_checked < HTTP_HEALTH_CACHE_MS) {
        http_health_answer(s, w->health_dir_ok == 1);
        return;
    }
    s->state = HTTP_S_HEALTH;
    if (w->health_lookup == NULL) {
        struct gw_lookup *l = gw_resolve(s->conf->health_user, http_health_probe_done, w);
        /* the callback always comes from the loop, so l is live here */
        w->health_lookup = l;
    }
}

/* ---- dispatch ------------------------------------------------------------------ */

static bool http_anonymous_path(const struct http_session *s)
{
    for (size_t i = 0; i < s->worker->anonymous.n; i++)
        if (http_path_under(s->req.path, s->worker->anonymous.item[i]))
            return true;
    return false;
}

static void http_log_request(const struct http_session *s, const char *what)
{
    if (gw_log_enabled(GW_LOG_DEBUG))
        gw_log(GW_LOG_DEBUG, s->client, "%.*s %.*s: %s", (int)s->req.method_name.len,
               s->req.method_name.ptr, (int)(s->req.path.len > 200 ? 200 : s->req.path.len),
               s->req.path.ptr, what);
}

/* A complete, valid head: decide what to do with the request. */
static void http_dispatch(struct http_session *s)
{
    const struct http_request *req = &s->req;
    struct http_worker *w = s->worker;

    s->nrequests++;
    s->req_body = req->body;
    s->req_state = req->body == HTTP_BODY_NONE ? HTTP_REQ_DONE : HTTP_REQ_BODY;
    s->body_left = req->content_length;
    s->body_seen = 0;
    http_chunked_init(&s->req_ck);
    s->head_method = req->method == HTTP_HEAD;
    s->client_11 = req->version_minor == 1;
    s->websocket = req->websocket;
    s->expect_continue = req->expect_continue && req->body != HTTP_BODY_NONE;
    s->continue_sent = false;
    s->resp_started = false;
    s->close_after = !req->keep_alive || s->nrequests >= (unsigned long)s->conf->keepalive_requests ||
                     s->conf->keepalive_timeout == 0 || gw_draining();
    s->target = NULL;
    /* The client is not paused while we decide: what it sends meanwhile
       (its body, pipelined requests) waits in the core's input buffer,
       which stops reading when full -- and an EOF is seen at once. Pausing
       would cost an epoll_ctl per request. */
    gw_conn_set_timeout(s->client, s->conf->backend_timeout);

    if (s->conf->max_body_size > 0 && req->body == HTTP_BODY_LENGTH &&
        req->content_length > (uint64_t)s->conf->max_body_size) {
        gw_log(GW_LOG_INFO, s->client, "request body of %llu bytes refused (max_body_size)",
               (unsigned long long)req->content_length);
        http_respond(s, 413, NULL, true);
        return;
    }
    for (size_t i = 0; i < w->health.n; i++) {
        if (http_slice_eq(req->path, w->health_pages[i])) {
            bool anon = false;
            for (size_t k = 0; k < w->anonymous.n; k++)
                if (http_path_under(req->path, w->anonymous.item[k]))
                    anon = true;
            http_log_request(s, "health page");
            http_health(s, anon);
            return;
        }
    }
    if (w->paths.n > 0) {
        bool under = false;
        for (size_t i = 0; i < w->paths.n && !under; i++)
            under = http_path_under(req->path, w->paths.item[i]);
        if (!under) {
            http_log_request(s, "not under path_prefixes: 404");
            http_respond(s, 404, NULL, false);
            return;
        }
    }
    if (http_anonymous_path(s)) {
        http_log_request(s, "anonymous path");
        s->route_kind = HTTP_ROUTE_ANONYMOUS;
        http_proxy_start(s);
        return;
    }
    http_authenticate(s);
}

/* ---- authentication ------------------------------------------------------------ */

/* The mailbox named by a routing hint (header, then query), or NULL. Only
   a plain address-like token is taken. */
static bool http_hint(const struct http_session *s, struct http_slice *hint_r)
{
    const struct http_request *req = &s->req;
    struct http_slice v = {NULL, 0};
    int i;

    i = -1;
    if (s->conf->anchor_header != NULL && s->conf->anchor_header[0] != '\0')
        i = http_header_find(req->headers, req->nheaders, 0, s->conf->anchor_header);
    if (i >= 0)
        v = req->headers[i].value;
    else if (s->conf->anchor_query == NULL || s->conf->anchor_query[0] == '\0' ||
             !http_query_param(req->query, s->conf->anchor_query, &v))
        return false;
    if (http_slice_case_prefix(v, "SMTP:")) {
        v.ptr += 5;
        v.len -= 5;
    }
    if (v.len == 0 || v.len > HTTP_HINT_MAX)
        return false;
    for (size_t k = 0; k < v.len; k++) {
        unsigned char c = (unsigned char)v.ptr[k];
        if (c <= 0x20 || c >= 0x7f || c == '%' || c == '"' || c == '\\')
            return false;
    }
    *hint_r = v;
    return true;
}

static void http_hint_done(void *arg, enum gw_auth_result res, const struct gw_mailbox *mbox)
{
    struct http_session *s = arg;

    http_session_ref(s);
    s->lookup = NULL;
    s->lookup_pending = false;
    if (s->state != HTTP_S_HINT)
        goto out;
    s->hint_expires = now_ms() + (unsigned long long)(s->conf->credential_memo > 0
                                                          ? s->conf->credential_memo
                                                          : 1000);
    if (res == GW_AUTH_OK && mbox != NULL) {
        http_mbox_set(&s->hint_mbox, mbox);
        s->hint_ok = true;
        s->target = &s->hint_mbox;
    } else {
        gw_log(GW_LOG_INFO, s->client, "routing hint %s: %s; routing by the user's own mailbox",
               s->hint, gw_auth_result_str(res));
        s->hint_ok = false;
        s->target = &s->mbox;
    }
    http_route_target(s);
out:
    http_session_unref(&s);
}

/* Authenticated (s->mbox): find the target mailbox, then route. */
static void http_authenticated(struct http_session *s)
{
    struct http_slice hint;
    struct gw_lookup *l;

    s->target = &s->mbox;
    if (!http_hint(s, &hint) || (strlen(s->mbox.user) == hint.len &&
                                 strncasecmp(s->mbox.user, hint.ptr, hint.len) == 0)) {
        http_route_target(s);
        return;
    }
    if (s->hint != NULL && strlen(s->hint) == hint.len &&
        strncasecmp(s->hint, hint.ptr, hint.len) == 0 && s->hint_expires > now_ms()) {
        s->target = s->hint_ok ? &s->hint_mbox : &s->mbox;
        http_route_target(s);
        return;
    }
    free(s->hint);
    s->hint = gw_strndup(hint.ptr, hint.len);
    http_mbox_clear(&s->hint_mbox);
    s->hint_ok = false;
    s->state = HTTP_S_HINT;
    s->lookup_pending = true;
    l = gw_resolve(s->hint, http_hint_done, s);
    if (s->lookup_pending)
        s->lookup = l;
}

static void http_auth_done(void *arg, enum gw_auth_result res, const struct gw_mailbox *mbox)
{
    struct http_session *s = arg;

    http_session_ref(s);
    s->lookup = NULL;
    s->lookup_pending = false;
    if (s->state != HTTP_S_AUTH)
        goto out;
    switch (res) {
    case GW_AUTH_OK:
        if (mbox == NULL || mbox->database == NULL) {
            gw_log(GW_LOG_ERROR, s->client, "login failed: directory gave no mailbox");
            memo_forget(s);
            http_respond_retry(s, 503);
            break;
        }
        http_mbox_set(&s->mbox, mbox);
        gw_conn_set_user(s->client, s->mbox.user);
        if (s->conf->credential_memo > 0)
            s->cred_expires = now_ms() + (unsigned long long)s->conf->credential_memo;
        gw_log(GW_LOG_DEBUG, s->client, "credentials verified by the directory");
        http_authenticated(s);
        break;
    case GW_AUTH_UNKNOWN_USER:
    case GW_AUTH_BAD_PASSWORD:
    case GW_AUTH_DISABLED:
        /* one answer for all three: the client must not learn which */
        gw_log(GW_LOG_INFO, s->client, "login failed: %s", gw_auth_result_str(res));
        memo_forget(s);
        http_challenge(s);
        break;
    case GW_AUTH_THROTTLED:
        gw_log(GW_LOG_INFO, s->client, "login failed: %s", gw_auth_result_str(res));
        memo_forget(s);
        http_respond_retry(s, 503);
        break;
    case GW_AUTH_UNAVAILABLE:
    default:
        gw_log(GW_LOG_WARN, s->client, "login failed: %s", gw_auth_result_str(res));
        memo_forget(s);
        http_respond_retry(s, 503);
        break;
    }
out:
    http_session_unref(&s);
}

/* Basic credentials (RFC 7617), verified by the directory unless this
   connection proved the very same Authorization value recently. */
static void http_authenticate(struct http_session *s)
{
    const struct http_request *req = &s->req;
    unsigned char decoded[HTTP_USER_MAX + HTTP_PASSWORD_MAX + 8];
    struct http_slice b64, user, password;
    const char *error;
    char *u, *p;
    struct gw_lookup *l;
    long n;
    int i = http_header_find(req->headers, req->nheaders, 0, "Authorization");

    if (!gw_conn_plaintext_ok(s->client)) {
        /* no challenge: a browser must not be invited to send a password
           in the clear */
        http_log_request(s, "authentication needs TLS: 403");
        http_respond(s, 403, NULL, false);
        return;
    }
    if (i < 0 || http_basic_token(req->headers[i].value, &b64) != HTTP_PARSE_OK) {
        http_log_request(s, i < 0 ? "no credentials: 401" : "not Basic credentials: 401");
        http_challenge(s);
        return;
    }
    if (http_header_find(req->headers, req->nheaders, (size_t)i + 1, "Authorization") >= 0) {
        http_respond(s, 400, NULL, true);
        return;
    }
    {
        unsigned char digest[32];
        memo_digest(s, req->headers[i].value, digest);
        if (s->cred_expires > now_ms() && s->mbox.user != NULL &&
            CRYPTO_memcmp(digest, s->cred, 32) == 0) {
            OPENSSL_cleanse(digest, sizeof(digest));
            http_log_request(s, "credentials remembered by this connection");
            http_authenticated(s);
            return;
        }
        memo_forget(s);
        memcpy(s->cred, digest, 32);
        OPENSSL_cleanse(digest, sizeof(digest));
    }
    n = gw_base64_decode(b64.ptr, b64.len, decoded, sizeof(decoded));
    if (n < 0 || http_basic_split((const char *)decoded, (size_t)n, &user, &password, &error) !=
                     HTTP_PARSE_OK) {
        OPENSSL_cleanse(decoded, sizeof(decoded));
        memo_forget(s);
        gw_log(GW_LOG_INFO, s->client, "login failed: malformed Basic credentials");
        http_challenge(s);
        return;
    }
    u = gw_strndup(user.ptr, user.len);
    p = gw_strndup(password.ptr, password.len);
    OPENSSL_cleanse(decoded, sizeof(decoded));
    gw_conn_set_user(s->client, u);
    s->state = HTTP_S_AUTH;
    s->lookup_pending = true;
    l = gw_authenticate(s->client, u, p, http_auth_done, s);
    gw_free_secret(&p);
    free(u);
    if (s->lookup_pending)
        s->lookup = l;
}

/* ---- routing ------------------------------------------------------------------- */

static void http_route_target(struct http_session *s)
{
    struct gw_mailbox m;
    struct gw_route r;
    unsigned flags = 0;

    http_mbox_view(s->target, &m);
    if (s->conf->current_version > 0 && m.version < s->conf->current_version) {
        http_log_request(s, "legacy mailbox version");
        s->route_kind = HTTP_ROUTE_LEGACY;
        http_proxy_start(s);
        return;
    }
    /* Browsers follow a 302 with GET: only GET and HEAD are redirected to
       another site, anything else is proxied there. */
    if (s->conf->redirect_cross_site && s->target == &s->mbox &&
        (s->req.method == HTTP_GET || s->req.method == HTTP_HEAD) && !s->websocket)
        flags |= GW_ROUTE_ALLOW_REDIRECT;
    gw_route(&m, HTTP_PROTOCOL, flags, &r);
    switch (r.kind) {
    case GW_ROUTE_REDIRECT:
        gw_log(GW_LOG_INFO, s->client, "mailbox in site %s: redirect to %s",
               m.site != NULL ? m.site : "-", r.url);
        http_redirect(s, r.url);
        return;
    case GW_ROUTE_REFUSE:
        gw_log(GW_LOG_WARN, s->client, "no backend for database %s: %s", m.database,
               r.reason != NULL ? r.reason : "refused");
        http_respond_retry(s, 503);
        return;
    case GW_ROUTE_PROXY:
        break;
    }
    s->route_kind = HTTP_ROUTE_MAILBOX;
    s->routes[0] = r;
    s->nroutes = 1;
    http_proxy_start(s);
}

/* ---- reading requests ---------------------------------------------------------- */

void http_buf_ensure(struct http_worker *w, struct http_buf *b, size_t room)
{
    size_t len = http_buf_len(b), need = len + room, cap;
    char *n;

    if (b->data == NULL && need <= HTTP_IN_INITIAL) {
        http_buf_reserve(w, b);
        return;
    }
    if (b->data == NULL) {
        b->cap = need;
        b->data = gw_malloc(b->cap);
        b->start = b->end = 0;
        return;
    }
    if (b->start > 0 && b->cap - b->end < room) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
    }
    if (b->cap - b->end >= room)
        return;
    for (cap = b->cap; cap < need; cap *= 2)
        ;
    /* not realloc: the old bytes are wiped, as every buffer's are */
    n = gw_malloc(cap);
    memcpy(n, b->data, b->end);
    buf_recycle(w, b->data, b->cap);
    b->data = n;
    b->cap = cap;
}

/* Copy what the core buffered into `in` (HEAD: `in` holds no slices yet,
   so it may move and grow up to the head limit). Returns the bytes copied. */
static size_t http_fill(struct http_session *s)
{
    size_t limit = (size_t)s->conf->max_header_size + HTTP_IN_SLACK;
    const char *p;
    size_t room, n;

    if (gw_conn_pending(s->client) == 0)
        return 0;
    http_buf_reserve(s->worker, &s->in);
    if (s->in.end == s->in.cap) {
        /* compact first; grow (doubling) only up to the head limit */
        if (s->in.start > 0)
            http_buf_ensure(s->worker, &s->in, s->in.start);
        else if (s->in.cap < limit)
            http_buf_ensure(s->worker, &s->in, s->in.cap);
    }
    room = s->in.cap - s->in.end;
    if (room == 0)
        return 0;
    n = gw_conn_read_bytes(s->client, room, &p);
    if (n > 0) {
        memcpy(s->in.data + s->in.end, p, n);
        s->in.end += n;
    }
    return n;
}

/* IDLE or HEAD: take bytes, scan; dispatch a complete head. Returns true
   when the state changed (the caller loops). */
static bool http_head_step(struct http_session *s)
{
    const struct http_conf *conf = s->conf;
    struct http_limits lim;
    unsigned status = 400;
    const char *error = "";
    enum http_parse_result r;

    if (s->output_blocked)
        return false;
    if (gw_conn_unsent(s->client) > HTTP_HIGH_WATER) {
        /* a client that pipelines but does not read our answers */
        s->output_blocked = true;
        gw_conn_pause(s->client);
        gw_conn_notify_drained(s->client);
        return false;
    }
    for (;;) {
        size_t got = 0;

        if (s->in.data == NULL || s->scan.pos >= http_buf_len(&s->in))
            got = http_fill(s);
        if (http_buf_len(&s->in) == 0)
            return false;
        if (s->state == HTTP_S_IDLE) {
            s->state = HTTP_S_HEAD;
            gw_conn_set_timeout(s->client, conf->header_timeout);
        }
        lim.max_line = (size_t)conf->max_request_line;
        lim.max_head = (size_t)conf->max_header_size;
        lim.max_headers = (size_t)conf->max_headers;
        r = http_scan_head(&s->scan, s->in.data + s->in.start, http_buf_len(&s->in), &lim, &status,
                           &error);
        if (r == HTTP_PARSE_OK)
            break;
        if (r == HTTP_PARSE_BAD) {
            gw_log(GW_LOG_INFO, s->client, "bad request head: %s (%u)", error, status);
            s->client_11 = true;
            http_respond(s, status, NULL, true);
            return true;
        }
        if (got == 0 && gw_conn_pending(s->client) == 0)
            return false;   /* wait for more */
    }
    s->head_len = s->scan.pos;
    r = http_request_parse(s->in.data + s->in.start, &s->scan, s->hdrs, (size_t)conf->max_headers,
                           &s->req, &status, &error);
    if (r != HTTP_PARSE_OK) {
        gw_log(GW_LOG_INFO, s->client, "bad request: %s (%u)", error, status);
        s->client_11 = true;
        s->head_method = false;
        s->req_state = HTTP_REQ_NONE;
        http_respond(s, status, status == 405 ? "Allow: GET, HEAD, POST, PUT, DELETE, OPTIONS, "
                                                "PATCH\r\n" : NULL, true);
        return true;
    }
    http_dispatch(s);
    return true;
}

/* DISCARD: read and drop the rest of the body we answered early. */
static bool http_discard_step(struct http_session *s)
{
    for (;;) {
        const char *p;
        size_t n, used = 0;
        bool from_in = http_buf_len(&s->in) > 0;

        if (from_in) {
            p = s->in.data + s->in.start;
            n = http_buf_len(&s->in);
        } else {
            n = gw_conn_read_bytes(s->client, HTTP_READ_MAX, &p);
            if (n == 0)
                return false;
        }
        if (s->req_body == HTTP_BODY_LENGTH) {
            used = n < s->body_left ? n : (size_t)s->body_left;
            s->body_left -= used;
            s->body_seen += used;
            if (s->body_left == 0)
                s->req_state = HTTP_REQ_DONE;
        } else {
            while (used < n) {
                struct http_slice data;
                const char *error;
                size_t u;
                enum http_parse_result r =
                    http_chunked_parse(&s->req_ck, p + used, n - used, &u, &data, &error);
                used += u;
                s->body_seen += data.len;
                if (r == HTTP_PARSE_OK) {
                    s->req_state = HTTP_REQ_DONE;
                    break;
                }
                if (r == HTTP_PARSE_BAD) {
                    gw_log(GW_LOG_INFO, s->client, "bad chunked body: %s", error);
                    http_client_abort(s);
                    return false;
                }
                if (u == 0 && data.len == 0)
                    break;
            }
        }
        if (from_in) {
            http_buf_consume(&s->in, used);
        } else if (used < n) {
            /* the next request begins here (`in` is empty) */
            http_buf_ensure(s->worker, &s->in, n - used);
            memcpy(s->in.data + s->in.end, p + used, n - used);
            s->in.end += n - used;
        }
        if (s->body_seen > (uint64_t)s->conf->max_discard) {
            http_client_finish(s);
            return false;
        }
        gw_conn_set_timeout(s->client, s->conf->body_timeout);
        if (s->req_state == HTTP_REQ_DONE) {
            if (s->close_after) {
                http_client_finish(s);
                return false;
            }
            http_next_request(s);
            return true;
        }
    }
}

void http_client_input(struct http_session *s)
{
    if (s->in_input)
        return;   /* the outer loop goes on where this one would start */
    s->in_input = true;
    http_session_ref(s);
    for (;;) {
        bool again = false;

        switch (s->state) {
        case HTTP_S_IDLE:
        case HTTP_S_HEAD:
            again = http_head_step(s);
            break;
        case HTTP_S_PROXY:
            if (s->req_state == HTTP_REQ_BODY) {
                enum http_req_state before = s->req_state;
                http_proxy_request_body(s);
                again = s->state != HTTP_S_PROXY || s->req_state != before;
                /* once the body is read, the response decides what is next */
                if (s->state == HTTP_S_PROXY)
                    again = false;
            }
            break;
        case HTTP_S_DISCARD:
            again = http_discard_step(s);
            break;
        default:
            break;
        }
        if (!again || s->state == HTTP_S_CLOSED)
            break;
    }
    s->in_input = false;
    http_session_unref(&s);
}

/* The answer to the current request is complete (and, when proxied, the
   backend connection is settled): on to the next one. */
static void http_next_request(struct http_session *s)
{
    if (s->state == HTTP_S_CLOSED)
        return;
    http_consume_head(s);
    if (s->close_after) {
        http_client_finish(s);
        return;
    }
    s->state = HTTP_S_IDLE;
    s->req_state = HTTP_REQ_NONE;
    s->resp_state = HTTP_RESP_NONE;
    s->resp_started = false;
    s->target = NULL;
    http_scan_init(&s->scan, false);
    if (http_buf_len(&s->in) == 0)
        http_buf_release(s->worker, &s->in);   /* idle connections hold no buffer */
    /* a large body may have raised it; an empty core buffer is given back */
    gw_conn_set_input_limit(s->client, HTTP_INPUT_DEFAULT);
    gw_conn_set_timeout(s->client, s->conf->keepalive_timeout);
    gw_conn_resume(s->client);
    /* pipelined requests already buffered */
    http_client_input(s);
}

void http_exchange_done(struct http_session *s)
{
    if (s->state != HTTP_S_PROXY)
        return;
    if (s->req_state == HTTP_REQ_BODY) {
        /* the backend answered before the body was all read */
        http_consume_head(s);
        s->state = HTTP_S_DISCARD;
        s->body_seen = 0;
        s->resp_started = false;
        gw_conn_set_timeout(s->client, s->conf->body_timeout);
        gw_conn_resume(s->client);
        http_client_input(s);
        return;
    }
    http_next_request(s);
}

/* ---- client events ------------------------------------------------------------- */

static void http_client_timeout(struct http_session *s)
{
    switch (s->state) {
    case HTTP_S_IDLE:
        gw_log(GW_LOG_DEBUG, s->client, "keep-alive timeout");
        http_client_abort(s);
        break;
    case HTTP_S_HEAD:
        gw_log(GW_LOG_INFO, s->client, "request head not complete in time: 408");
        s->client_11 = true;
        http_respond(s, 408, NULL, true);
        break;
    case HTTP_S_AUTH:
    case HTTP_S_HINT:
    case HTTP_S_HEALTH:
    case HTTP_S_CONNECT:
        gw_log(GW_LOG_WARN, s->client, "request not routed in time: 504");
        http_respond(s, 504, NULL, true);
        break;
    case HTTP_S_PROXY:
        if (s->req_state == HTTP_REQ_BODY && !s->resp_started) {
            gw_log(GW_LOG_INFO, s->client, "request body stalled: 408");
            http_respond(s, 408, NULL, true);
        } else {
            gw_log(GW_LOG_INFO, s->client, "client stalled while %s; closing",
                   s->req_state == HTTP_REQ_BODY ? "sending its body" : "reading the response");
            http_client_abort(s);
        }
        break;
    case HTTP_S_DISCARD:
        http_client_abort(s);
        break;
    case HTTP_S_CLOSED:
        break;
    }
}

static void http_client_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct http_session *s = arg;

    http_session_ref(s);
    if (s->state == HTTP_S_CLOSED || c != s->client)
        goto out;
    switch (ev) {
    case GW_EV_READ:
        http_client_input(s);
        break;
    case GW_EV_EOF:
        if (gw_conn_pending(c) > 0)
            http_client_input(s);
        if (s->state == HTTP_S_CLOSED)
            break;
        switch (s->state) {
        case HTTP_S_IDLE:
        case HTTP_S_HEAD:
            if (http_buf_len(&s->in) > 0 && s->state == HTTP_S_HEAD)
                gw_log(GW_LOG_DEBUG, c, "client closed in the middle of a request head");
            http_client_abort(s);
            break;
        case HTTP_S_PROXY:
            if (s->req_state == HTTP_REQ_BODY) {
                gw_log(GW_LOG_INFO, c, "client closed while sending its body");
                http_client_abort(s);
            } else {
                /* half-closed after its request: answer, then close */
                s->close_after = true;
            }
            break;
        case HTTP_S_DISCARD:
            http_client_abort(s);
            break;
        default:
            s->close_after = true;
            break;
        }
        break;
    case GW_EV_TIMEOUT:
        http_client_timeout(s);
        break;
    case GW_EV_ERROR:
        gw_log(GW_LOG_DEBUG, c, "client connection error");
        http_client_abort(s);
        break;
    case GW_EV_DRAINED:
        if (s->state == HTTP_S_PROXY && s->resp_paused)
            http_proxy_client_drained(s);
        if (s->output_blocked) {
            s->output_blocked = false;
            if (s->state == HTTP_S_IDLE || s->state == HTTP_S_HEAD) {
                gw_conn_resume(s->client);
                http_client_input(s);
            }
        }
        break;
    case GW_EV_CONNECTED:
    case GW_EV_TLS_DONE:
        break;
    }
out:
    http_session_unref(&s);
}

/* ---- plugin hooks ---------------------------------------------------------------- */

void http_session_accept(struct gw_plugin_ctx *ctx, struct gw_conn *client)
{
    struct http_session *s = gw_calloc(1, sizeof(*s));

    s->conf = gw_plugin_conf(ctx);
    s->worker = gw_plugin_data(ctx);
    s->client = client;
    s->state = HTTP_S_IDLE;
    s->refs = 1;   /* open */
    s->client_11 = true;
    s->hdrs = gw_calloc((size_t)s->conf->max_headers, sizeof(*s->hdrs));
    http_scan_init(&s->scan, false);
    if (s->worker == NULL) {
        gw_log(GW_LOG_ERROR, client, "http: plugin not started");
        gw_conn_close(client);
        free(s->hdrs);
        free(s);
        return;
    }
    s->next = s->worker->sessions;
    if (s->next != NULL)
        s->next->prev = s;
    s->worker->sessions = s;
    s->worker->nsessions++;
    gw_conn_set_handler(client, http_client_event, s);
    gw_conn_set_timeout(client, s->conf->header_timeout);
    /* The client speaks first, but the core starts reading a new
       connection only once something is written or resumed. */
    gw_conn_pause(client);
    gw_conn_resume(client);
    if (gw_conn_pending(client) > 0)
        http_client_input(s);
}

void http_sessions_destroy_all(struct http_worker *w)
{
    struct http_session *s;

    while ((s = w->sessions) != NULL) {
        /* The core has closed and freed every connection before stop():
           forget them without touching them. No entry point runs now, so
           the open reference is the last. */
        s->client = NULL;
        s->connecting = NULL;
        if (s->be != NULL)
            s->be->conn = NULL;
        if (s->refs != 1 || s->state == HTTP_S_CLOSED) {
            s->refs = 1;
            s->state = HTTP_S_CLOSED;
            http_proxy_abort(s);
            http_session_unref(&s);
            continue;
        }
        http_session_release(s);
    }
}
