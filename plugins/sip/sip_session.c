/*
 * The redirect server: what to answer to each request, whatever transport
 * it came on.
 *
 *   INVITE   find the called user (the first Diversion's target, else the
 *            Request-URI user; pilot numbers go to any healthy server),
 *            look up the mailbox, find the server of its active copy:
 *            302 with a Contact there. Runs in a server transaction so a
 *            retransmission is answered with the same bytes, no new lookup.
 *   ACK      ends the INVITE transaction (absorbed, never answered).
 *   CANCEL   200, and 487 to the INVITE while its lookup is still running;
 *            481 when there is no such INVITE.
 *   OPTIONS  200 with Allow (keep-alives of session border controllers).
 *   other    405 with Allow.
 *
 * Responses that depend only on the request (OPTIONS, 405, 400...) are sent
 * without keeping state: the To-tag is a keyed hash of the request's
 * dialog identifiers, so a retransmission -- even one received by another
 * worker -- gets identical bytes.
 */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sip.h"
#include "sip_reply.h"

static const char *tp_name(enum sip_transport tp)
{
    return tp == SIP_TP_UDP ? "udp" : tp == SIP_TP_TCP ? "tcp" : "tls";
}

bool sip_log_allowed(struct sip_log_throttle *th, unsigned long *suppressed_r)
{
    unsigned long long now = gw_now_ms();

    if (now < th->next_ms) {
        th->suppressed++;
        return false;
    }
    *suppressed_r = th->suppressed;
    th->suppressed = 0;
    th->next_ms = now + 1000;
    return true;
}

void sip_send(struct sip_worker *w, const struct sip_dest *to, const char *data, size_t len)
{
    (void)w;
    if (to->tp == SIP_TP_UDP) {
        if (gw_return_path_send(&to->rp, data, len) < 0)
            gw_log(GW_LOG_DEBUG, NULL, "sip: cannot send %zu bytes to %s:%u over udp", len,
                   to->peer.addr, to->peer.port);
        return;
    }
    if (to->stream != NULL)
        sip_stream_send(to->stream, data, len);
}

/* RFC 3261 18.2.2 (and RFC 3581): a response over UDP goes to the source
   address, and to the source port only if the client asked with rport;
   otherwise to the port in the top Via (5060 when it has none). */
static void response_port(struct sip_dest *d, const struct sip_msg *m)
{
    unsigned port;

    if (d->tp != SIP_TP_UDP || m->top_via.rport.len > 0 || m->top_via.transport.len == 0)
        return;
    port = m->top_via.port != 0 ? m->top_via.port : SIP_DEFAULT_PORT;
    if (d->rp.addr.ss_family == AF_INET)
        ((struct sockaddr_in *)&d->rp.addr)->sin_port = htons((uint16_t)port);
    else if (d->rp.addr.ss_family == AF_INET6)
        ((struct sockaddr_in6 *)&d->rp.addr)->sin6_port = htons((uint16_t)port);
}

/* The To-tag of our responses to this request: Call-ID, From tag and the
   branch (or CSeq number) identify the transaction. */
static void make_tag(struct sip_worker *w, const struct sip_msg *m, char tag[SIP_TAG_LEN + 1])
{
    uint64_t h = sip_hash(w, m->call_id.ptr, m->call_id.len);

    h ^= sip_hash(w, m->from_tag.ptr, m->from_tag.len) * 31;
    if (m->top_via.branch.len > 0)
        h ^= sip_hash(w, m->top_via.branch.ptr, m->top_via.branch.len) * 131;
    else
        h ^= m->cseq_num * 0x9e3779b97f4a7c15ULL;
    sip_reply_tag(h, tag);
}

/* Start a response in w->scratch: status line and copied headers. */
static void reply_begin(struct sip_worker *w, struct sip_out *o, const struct sip_msg *m,
                        const struct sip_dest *d, unsigned code, const char *reason)
{
    char tag[SIP_TAG_LEN + 1];

    make_tag(w, m, tag);
    sip_out_init(o, w->scratch, w->scratch_cap);
    sip_reply_status(o, code, reason);
    sip_reply_head(o, m, d->peer.addr, d->peer.port, code > 100 ? tag : NULL);
}

static void reply_send(struct sip_worker *w, struct sip_out *o, const struct sip_dest *d)
{
    size_t n = sip_reply_end(o, SIP_SERVER_HEADER);

    if (n == 0) {
        gw_log(GW_LOG_WARN, NULL, "sip: response to %s:%u does not fit in %zu bytes", d->peer.addr,
               d->peer.port, w->scratch_cap);
        return;
    }
    sip_send(w, d, o->buf, n);
}

static void reply_simple(struct sip_worker *w, const struct sip_msg *m, const struct sip_dest *d,
                         unsigned code, const char *reason)
{
    struct sip_out o;

    reply_begin(w, &o, m, d, code, reason);
    if (code == 405 || code == 200)
        sip_out_str(&o, "Allow: " SIP_ALLOW "\r\n");
    if (code == 200 && m->method == SIP_METHOD_OPTIONS)
        sip_out_str(&o, "Accept: application/sdp\r\n");
    if (code == 503 || code == 480) {
        sip_out_str(&o, "Retry-After: ");
        sip_out_uint(&o, (unsigned long)(w->conf->retry_after / 1000));
        sip_out_str(&o, "\r\n");
    }
    reply_send(w, &o, d);
}

/* ---- transactions --------------------------------------------------------- */

/* The final response of an INVITE (or CANCEL) transaction: sent now, kept
   for retransmissions (timer G on UDP) until the ACK or timer H. */
static void txn_complete(struct sip_txn *t, struct sip_out *o)
{
    struct sip_worker *w = t->w;
    unsigned long long now = gw_now_ms();
    size_t n = sip_reply_end(o, SIP_SERVER_HEADER);
    struct sip_stream *stream = t->dest.stream;
    bool was_pending = t->state == SIP_TXN_PROCEEDING && t->invite;

    free(t->head);
    t->head = NULL;
    t->head_len = 0;
    t->state = SIP_TXN_COMPLETED;
    if (n == 0) {
        gw_log(GW_LOG_WARN, NULL, "sip: response to %s:%u does not fit in %zu bytes",
               t->dest.peer.addr, t->dest.peer.port, w->scratch_cap);
    } else {
        t->resp = gw_malloc(n);
        memcpy(t->resp, o->buf, n);
        t->resp_len = n;
        sip_send(w, &t->dest, t->resp, t->resp_len);
    }
    t->expires = now + (unsigned long long)(t->invite ? SIP_TIMER_H_MS : SIP_TIMER_J_MS);
    if (t->dest.tp == SIP_TP_UDP && t->invite && t->resp != NULL) {
        t->g_interval = SIP_T1_MS;
        sip_txn_schedule(t, now + (unsigned long long)SIP_T1_MS);
    } else {
        t->g_interval = 0;
        sip_txn_schedule(t, t->expires);
    }
    if (was_pending && stream != NULL)
        sip_stream_lookup_done(stream);
}

/* Start the final response of a transaction: status line and the header
   fields copied when the request arrived. */
static void txn_reply_begin(struct sip_txn *t, struct sip_out *o, unsigned code)
{
    struct sip_worker *w = t->w;

    sip_out_init(o, w->scratch, w->scratch_cap);
    sip_reply_status(o, code, NULL);
    sip_out_mem(o, t->head, t->head_len);
}

void sip_txn_timeout(struct sip_worker *w, struct sip_txn *t)
{
    unsigned long long now = gw_now_ms(), next;

    if (now >= t->expires) {
        if (t->invite)
            gw_log(GW_LOG_DEBUG, NULL, "sip: no ACK from %s:%u for the response about %s",
                   t->dest.peer.addr, t->dest.peer.port, t->user);
        sip_txn_destroy(&t);
        return;
    }
    next = t->expires;
    if (t->g_interval > 0 && t->resp != NULL) {
        /* timer G: retransmit the final response; the next interval is
           doubled, up to T2 (RFC 3261 17.2.1) */
        sip_send(w, &t->dest, t->resp, t->resp_len);
        t->g_interval = t->g_interval * 2 < SIP_T2_MS ? t->g_interval * 2 : SIP_T2_MS;
        if (now + (unsigned long long)t->g_interval < next)
            next = now + (unsigned long long)t->g_interval;
    }
    sip_txn_schedule(t, next);
}

/* ---- INVITE --------------------------------------------------------------- */

/* The user part the directory knows the user by, for the Contact. */
static void contact_user(const struct gw_mailbox *mb, const char *fallback, char *out, size_t size)
{
    const char *s = mb->sip_uri, *at;
    size_t n;

    if (s != NULL && s[0] != '\0') {
        if (strncmp(s, "sips:", 5) == 0)
            s += 5;
        else if (strncmp(s, "sip:", 4) == 0)
            s += 4;
        at = strchr(s, '@');
        n = at != NULL ? (size_t)(at - s) : strlen(s);
        if (n > 0) {
            snprintf(out, size, "%.*s", (int)n, s);
            return;
        }
    }
    if (mb->extension != NULL && mb->extension[0] != '\0')
        snprintf(out, size, "%s", mb->extension);
    else if (mb->user != NULL && mb->user[0] != '\0')
        snprintf(out, size, "%s", mb->user);
    else
        snprintf(out, size, "%s", fallback);
}

static const char *contact_transport(const struct gw_route *r, const struct sip_dest *d)
{
    if (r->tls == GW_TLS_IMPLICIT)
        return "tls";
    return d->tp == SIP_TP_UDP ? "udp" : "tcp";
}

static void redirect(struct sip_txn *t, const char *user, const struct gw_route *routes, size_t n)
{
    struct sip_out o;

    txn_reply_begin(t, &o, 302);
    for (size_t i = 0; i < n; i++) {
        /* q 1.0 for the active copy, then 0.9, 0.8... in preference order */
        int q = n == 1 ? -1 : 1000 - (int)i * 100 < 100 ? 100 : 1000 - (int)i * 100;

        sip_reply_contact(&o, user, routes[i].host, routes[i].port,
                          contact_transport(&routes[i], &t->dest), q);
    }
    txn_complete(t, &o);
}

static void refuse(struct sip_txn *t, unsigned code)
{
    struct sip_out o;

    txn_reply_begin(t, &o, code);
    if (code == 480 || code == 503) {
        sip_out_str(&o, "Retry-After: ");
        sip_out_uint(&o, (unsigned long)(t->w->conf->retry_after / 1000));
        sip_out_str(&o, "\r\n");
    }
    txn_complete(t, &o);
}

static void log_unavailable(struct sip_worker *w, const struct sip_txn *t, const char *what)
{
    unsigned long suppressed;

    if (!sip_log_allowed(&w->log_unavailable, &suppressed))
        return;
    gw_log(GW_LOG_WARN, NULL, "sip: INVITE from %s:%u for %s: %s%s", t->dest.peer.addr,
           t->dest.peer.port, t->user, what,
           suppressed > 0 ? " (and more calls refused, not logged)" : "");
}

static void lookup_done(void *arg, enum gw_auth_result res, const struct gw_mailbox *mb)
{
    struct sip_txn *t = arg;
    struct sip_worker *w = t->w;
    struct gw_route routes[SIP_CONTACTS_MAX];
    char user[SIP_KEY_MAX];
    size_t n = 0;

    t->lookup = NULL;
    switch (res) {
    case GW_AUTH_OK:
        break;
    case GW_AUTH_UNKNOWN_USER:
    case GW_AUTH_DISABLED:
    case GW_AUTH_BAD_PASSWORD:
        gw_log(GW_LOG_INFO, NULL, "sip: INVITE from %s:%u for %s: 404 (%s)", t->dest.peer.addr,
               t->dest.peer.port, t->user, gw_auth_result_str(res));
        refuse(t, 404);
        return;
    case GW_AUTH_UNAVAILABLE:
    case GW_AUTH_THROTTLED:
        log_unavailable(w, t, "503: directory unavailable");
        refuse(t, 503);
        return;
    }
    gw_route(mb, SIP_PROTOCOL, 0, &routes[0]);
    if (routes[0].kind != GW_ROUTE_PROXY) {
        char why[256];

        snprintf(why, sizeof(why), "480: %s", routes[0].reason != NULL ? routes[0].reason
                                              : "no server for the mailbox");
        log_unavailable(w, t, why);
        refuse(t, 480);
        return;
    }
    n = 1;
    if (w->conf->alternative_contacts) {
        struct gw_route all[SIP_CONTACTS_MAX];
        size_t m = gw_route_all(mb, SIP_PROTOCOL, all, SIP_CONTACTS_MAX);

        for (size_t i = 0; i < m && n < SIP_CONTACTS_MAX; i++) {
            if (strcmp(all[i].server, routes[0].server) != 0)
                routes[n++] = all[i];
        }
    }
    contact_user(mb, t->user, user, sizeof(user));
    gw_log(GW_LOG_INFO, NULL, "sip: INVITE from %s:%u for %s: 302 to %s (%s:%u)%s",
           t->dest.peer.addr, t->dest.peer.port, t->user, routes[0].server, routes[0].host,
           routes[0].port, n > 1 ? " and alternatives" : "");
    redirect(t, user, routes, n);
}

static bool is_pilot(const struct sip_conf *conf, const char *user)
{
    for (unsigned i = 0; i < conf->npilots; i++) {
        if (strcmp(conf->pilots[i], user) == 0)
            return true;
    }
    return false;
}

/* Subscriber access: any healthy server will do; spread them round robin. */
static void pilot_redirect(struct sip_worker *w, struct sip_txn *t)
{
    struct gw_route servers[SIP_SERVERS_MAX];
    size_t n = gw_servers_for(SIP_PROTOCOL, servers, SIP_SERVERS_MAX);
    size_t i;

    if (n == 0) {
        log_unavailable(w, t, "480: no healthy server offers sip (pilot number)");
        refuse(t, 480);
        return;
    }
    i = w->rr++ % n;
    gw_log(GW_LOG_INFO, NULL, "sip: INVITE from %s:%u for pilot %s: 302 to %s (%s:%u)",
           t->dest.peer.addr, t->dest.peer.port, t->user, servers[i].server, servers[i].host,
           servers[i].port);
    redirect(t, t->user, &servers[i], 1);
}

/* Resend what the transaction has: the final response, or 100 Trying
   while the lookup runs (RFC 3261 17.2.1). */
static void txn_retransmission(struct sip_worker *w, struct sip_txn *t)
{
    struct sip_out o;

    if (t->state == SIP_TXN_COMPLETED) {
        if (t->resp != NULL)
            sip_send(w, &t->dest, t->resp, t->resp_len);
        return;
    }
    sip_out_init(&o, w->scratch, w->scratch_cap);
    sip_reply_status(&o, 100, NULL);
    sip_out_mem(&o, t->head, t->head_len);
    reply_send(w, &o, &t->dest);
}

static void handle_invite(struct sip_worker *w, const struct sip_msg *m, const struct sip_dest *d)
{
    char key[SIP_TXN_KEY_MAX], user[SIP_KEY_MAX], tag[SIP_TAG_LEN + 1];
    size_t keylen = sip_txn_key(m, SIP_METHOD_INVITE, key, sizeof(key));
    bool diverted = m->diversion.ptr != NULL;
    struct sip_slice target = m->ruri;
    struct sip_uri uri;
    struct sip_txn *t;
    struct sip_out o;
    unsigned long suppressed;

    if (keylen == 0) {
        reply_simple(w, m, d, 400, "Branch Or Call-ID Too Long");
        return;
    }
    t = sip_txn_find(w, key, keylen);
    if (t != NULL) {
        /* A retransmission: the same answer, never a second lookup. The
           first copy may have come over another transport or peer port;
           the transaction answers where the request came from first. */
        txn_retransmission(w, t);
        return;
    }
    if (sip_uri_parse(m->ruri, &uri) != SIP_PARSE_OK) {
        reply_simple(w, m, d, 400, "Bad Request-URI");
        return;
    }
    if (uri.scheme == SIP_SCHEME_OTHER) {
        reply_simple(w, m, d, 416, NULL);
        return;
    }
    if (m->require.ptr != NULL) {
        /* RFC 3261 8.2.2.3: we support no extension */
        reply_begin(w, &o, m, d, 420, NULL);
        sip_out_str(&o, "Unsupported: ");
        sip_out_slice(&o, m->require);
        sip_out_str(&o, "\r\n");
        reply_send(w, &o, d);
        return;
    }
    if (diverted) {
        /* RFC 5806: the first Diversion names the user the call was for
           (call answering: leave a message for them) */
        if (sip_name_addr_uri(m->diversion, &target) != SIP_PARSE_OK ||
            sip_uri_parse(target, &uri) != SIP_PARSE_OK) {
            reply_simple(w, m, d, 400, "Bad Diversion");
            return;
        }
        if (uri.scheme == SIP_SCHEME_OTHER) {
            reply_simple(w, m, d, 416, NULL);
            return;
        }
    }
    if (sip_uri_user_key(&uri, user, sizeof(user)) < 0) {
        gw_log(GW_LOG_INFO, NULL, "sip: INVITE from %s:%u: 404 (no user in the %s)", d->peer.addr,
               d->peer.port, diverted ? "Diversion" : "Request-URI");
        reply_simple(w, m, d, 404, NULL);
        return;
    }
    t = sip_txn_create(w, key, keylen);
    if (t == NULL) {
        if (sip_log_allowed(&w->log_full, &suppressed))
            gw_log(GW_LOG_WARN, NULL, "sip: %ld transactions waiting for lookups: answering 503 "
                   "(max_transactions)%s", w->conf->max_transactions,
                   suppressed > 0 ? " (repeated)" : "");
        reply_simple(w, m, d, 503, NULL);
        return;
    }
    t->invite = true;
    t->state = SIP_TXN_PROCEEDING;
    t->dest = *d;
    snprintf(t->user, sizeof(t->user), "%s", user);
    make_tag(w, m, tag);
    sip_out_init(&o, w->scratch, w->scratch_cap);
    sip_reply_head(&o, m, d->peer.addr, d->peer.port, tag);
    t->head = gw_malloc(o.len > 0 ? o.len : 1);
    memcpy(t->head, o.buf, o.len);
    t->head_len = o.overflow ? 0 : o.len;
    if (d->tp != SIP_TP_UDP)
        sip_stream_txn_link(d->stream, t);
    if (!diverted && is_pilot(w->conf, user)) {
        pilot_redirect(w, t);
        return;
    }
    t->lookup = gw_resolve(user, lookup_done, t);
}

/* ---- ACK, CANCEL ---------------------------------------------------------- */

static void handle_ack(struct sip_worker *w, const struct sip_msg *m)
{
    char key[SIP_TXN_KEY_MAX];
    size_t keylen = sip_txn_key(m, SIP_METHOD_ACK, key, sizeof(key));
    struct sip_txn *t = keylen > 0 ? sip_txn_find(w, key, keylen) : NULL;

    /* An ACK for a 2xx would be end to end; we never send one. A stray ACK
       (or a retransmitted one after the transaction ended) is dropped. */
    if (t != NULL && t->state == SIP_TXN_COMPLETED)
        sip_txn_destroy(&t);
}

static void handle_cancel(struct sip_worker *w, const struct sip_msg *m, const struct sip_dest *d)
{
    char key[SIP_TXN_KEY_MAX];
    size_t keylen = sip_txn_key(m, SIP_METHOD_CANCEL, key, sizeof(key));
    struct sip_txn *t, *c;
    struct sip_out o;
    unsigned code;

    if (keylen == 0) {
        reply_simple(w, m, d, 400, "Branch Or Call-ID Too Long");
        return;
    }
    c = sip_txn_find(w, key, keylen);
    if (c != NULL) {
        txn_retransmission(w, c);
        return;
    }
    /* the INVITE it cancels has the same branch (RFC 3261 9.1) */
    key[1] = 'I';
    t = sip_txn_find(w, key, keylen);
    code = t != NULL ? 200 : 481;
    if (t != NULL && t->state == SIP_TXN_PROCEEDING) {
        gw_lookup_cancel(&t->lookup);
        gw_log(GW_LOG_INFO, NULL, "sip: INVITE from %s:%u for %s: cancelled (487)",
               t->dest.peer.addr, t->dest.peer.port, t->user);
        refuse(t, 487);
    }
    key[1] = 'C';
    c = d->tp == SIP_TP_UDP ? sip_txn_create(w, key, keylen) : NULL;
    if (c == NULL) {
        reply_simple(w, m, d, code, NULL);
        return;
    }
    c->dest = *d;
    c->state = SIP_TXN_PROCEEDING;
    snprintf(c->user, sizeof(c->user), "(CANCEL)");
    reply_begin(w, &o, m, d, code, NULL);
    txn_complete(c, &o);
}

/* ---- entry points --------------------------------------------------------- */

void sip_handle(struct sip_worker *w, const char *data, size_t len, const struct sip_dest *from)
{
    struct sip_msg m;
    const char *err = NULL;
    enum sip_parse_result r = sip_msg_parse(data, len, from->tp != SIP_TP_UDP, &m, &err);
    struct sip_dest d = *from;

    if (!m.request || m.top_via.value.ptr == NULL) {
        /* a response (we send no requests), garbage, or no Via to answer to */
        gw_log(GW_LOG_DEBUG, NULL, "sip: ignored %zu bytes from %s:%u over %s (%s)", len,
               d.peer.addr, d.peer.port, tp_name(d.tp), r == SIP_PARSE_OK ? "a response" : err);
        return;
    }
    response_port(&d, &m);
    if (r != SIP_PARSE_OK) {
        char method[32];

        sip_sanitize(m.method_name.ptr, m.method_name.len, method, sizeof(method));
        gw_log(GW_LOG_INFO, NULL, "sip: bad %s from %s:%u over %s: %s", method, d.peer.addr,
               d.peer.port, tp_name(d.tp), err);
        if (m.method != SIP_METHOD_ACK)
            reply_simple(w, &m, &d, err == SIP_ERR_VERSION ? 505 : 400,
                         err == SIP_ERR_VERSION ? NULL : err);
        return;
    }
    switch (m.method) {
    case SIP_METHOD_INVITE:
        handle_invite(w, &m, &d);
        break;
    case SIP_METHOD_ACK:
        handle_ack(w, &m);
        break;
    case SIP_METHOD_CANCEL:
        handle_cancel(w, &m, &d);
        break;
    case SIP_METHOD_OPTIONS:
        reply_simple(w, &m, &d, 200, NULL);
        break;
    default:
        reply_simple(w, &m, &d, 405, NULL);
        break;
    }
}

void sip_handle_too_large(struct sip_worker *w, const char *headers, size_t len,
                          const struct sip_dest *from)
{
    struct sip_msg m;
    const char *err;
    struct sip_dest d = *from;

    sip_msg_parse(headers, len, false, &m, &err);
    gw_log(GW_LOG_INFO, NULL, "sip: message of more than %ld bytes from %s:%u over %s: 513",
           w->conf->max_message, d.peer.addr, d.peer.port, tp_name(d.tp));
    if (!m.request || m.top_via.value.ptr == NULL || m.method == SIP_METHOD_ACK)
        return;
    response_port(&d, &m);
    reply_simple(w, &m, &d, 513, NULL);
}

static bool only_line_ends(const char *p, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (p[i] != '\r' && p[i] != '\n')
            return false;
    }
    return true;
}

void sip_datagram(struct gw_plugin_ctx *ctx, struct gw_datagram *dg)
{
    struct sip_worker *w = gw_plugin_data(ctx);
    const struct gw_peer *peer = gw_datagram_peer(dg);
    unsigned long suppressed;
    struct sip_dest d;
    const char *data;
    size_t len;

    if (w == NULL)
        return;
    data = gw_datagram_data(dg, &len);
    if (!sip_peer_trusted(w->conf, peer->addr)) {
        if (sip_log_allowed(&w->log_untrusted, &suppressed))
            gw_log(GW_LOG_WARN, NULL, "sip: dropped a datagram from %s:%u: not in trusted_peers "
                   "(%lu more dropped since the last line)", peer->addr, peer->port, suppressed);
        return;
    }
    if (only_line_ends(data, len))
        return;   /* CRLF keep-alive */
    if (!sip_rate_ok(w, peer->addr)) {
        if (sip_log_allowed(&w->log_rate, &suppressed))
            gw_log(GW_LOG_WARN, NULL, "sip: %s over rate_limit (%ld/s): dropping its requests "
                   "(%lu more dropped since the last line)", peer->addr, w->conf->rate_limit,
                   suppressed);
        return;
    }
    memset(&d, 0, sizeof(d));
    d.tp = SIP_TP_UDP;
    gw_datagram_return_path(dg, &d.rp);
    d.peer = *peer;
    if (len > (size_t)w->conf->max_message) {
        sip_handle_too_large(w, data, len, &d);
        return;
    }
    sip_handle(w, data, len, &d);
}
