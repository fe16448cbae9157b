/*
 * IMAP session: the not-authenticated state toward the client (RFC 3501 and
 * 9051, STARTTLS, LOGIN, AUTHENTICATE PLAIN with SASL-IR, ID, LITERAL+), the
 * directory lookup, then a login referral or the login to the backend on
 * the client's behalf (imap_backend.c). Once the backend accepts the login
 * the client gets a tagged OK with the backend's capabilities, and client
 * and backend are handed to the core's relay; the session forgets them.
 *
 * Client input is read a line at a time (gw_conn_read_line) and literal
 * octets exactly (gw_conn_read_bytes), and fed to the resumable parser: so
 * nothing past the current command is ever taken from the connection, and
 * whatever a client pipelines behind its login reaches the backend through
 * the relay untouched.
 *
 * Lifetime: a session lives from accept until the client is closed or
 * relayed. Entry points (connection events, the lookup callback) hold a
 * reference while they run, so a session closed deep inside a call chain is
 * freed only when the outermost entry point returns.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "imap.h"
#include "imap_parse.h"

/* Decoded size of the longest AUTHENTICATE response we accept. */
#define IMAP_SASL_DECODED_MAX ((IMAP_SASL_LINE_MAX / 4) * 3 + 3)
/* ID pairs we add for the backend (x-originating-ip/-port, x-connected-ip/-port). */
#define IMAP_ID_OWN_PAIRS 4

typedef void imap_cmd_func(struct imap_session *s, const struct imap_parser *p);

static void imap_client_input(struct imap_session *s);

/* ---- lifetime ---------------------------------------------------------- */

void imap_session_ref(struct imap_session *s)
{
    s->refs++;
}

/* Forget the credentials of the current login attempt. */
static void imap_forget_login(struct imap_session *s)
{
    gw_free_secret(&s->password);
    free(s->user);
    s->user = NULL;
    free(s->login_user);
    s->login_user = NULL;
    free(s->tag);
    s->tag = NULL;
}

static void imap_session_free(struct imap_session *s)
{
    imap_forget_login(s);
    imap_backend_forget(s);
    free(s->client_id);
    if (s->worker != NULL) {
        if (s->prev != NULL)
            s->prev->next = s->next;
        else
            s->worker->sessions = s->next;
        if (s->next != NULL)
            s->next->prev = s->prev;
        s->worker->nsessions--;
    }
    explicit_bzero(&s->parser, sizeof(s->parser));   /* it held the password */
    free(s);
}

void imap_session_unref(struct imap_session **sp)
{
    struct imap_session *s = *sp;

    *sp = NULL;
    if (--s->refs == 0)
        imap_session_free(s);
}

/* Drop everything but the client connection; the session becomes CLOSED
   and loses its "open" reference. */
void imap_session_release(struct imap_session *s)
{
    if (s->state == IMAP_STATE_CLOSED)
        return;
    s->state = IMAP_STATE_CLOSED;
    if (s->lookup != NULL)
        gw_lookup_cancel(&s->lookup);
    s->lookup_pending = false;
    imap_backend_close(s);
    imap_forget_login(s);
    s->client = NULL;
    imap_session_unref(&(struct imap_session *){ s });
}

/* Close the client at once (I/O error, abuse, shutdown). */
static void imap_client_abort(struct imap_session *s)
{
    struct gw_conn *c = s->client;

    if (s->state == IMAP_STATE_CLOSED)
        return;
    if (c != NULL) {
        gw_conn_set_handler(c, NULL, NULL);
        gw_conn_close(c);
    }
    imap_session_release(s);
}

/* Write `last` (if not NULL; CRLF added), then close the client. */
static void imap_client_finish(struct imap_session *s, const char *last)
{
    struct gw_conn *c = s->client;

    if (s->state == IMAP_STATE_CLOSED)
        return;
    if (last != NULL && gw_conn_printf(c, "%s\r\n", last) < 0) {
        imap_client_abort(s);
        return;
    }
    gw_conn_set_handler(c, NULL, NULL);
    /* The login deadline may have passed already: bound the last write. */
    gw_conn_set_timeout(c, IMAP_CLOSE_FLUSH_MS);
    gw_conn_close_after_write(c);
    imap_session_release(s);
}

/* ---- replies ----------------------------------------------------------- */

/* One or more reply lines; the final CRLF is added. Returns -1 (and the
   session is closed) when the client does not read its output. */
int imap_reply(struct imap_session *s, const char *fmt, ...)
{
    char small[1024], *buf = small;
    va_list ap;
    int n, ret;

    if (s->state == IMAP_STATE_CLOSED)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(small, sizeof(small) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n >= sizeof(small) - 2) {
        buf = gw_malloc((size_t)n + 3);
        va_start(ap, fmt);
        vsnprintf(buf, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    buf[n++] = '\r';
    buf[n++] = '\n';
    ret = gw_conn_write(s->client, buf, (size_t)n);
    if (buf != small)
        free(buf);
    if (ret < 0) {
        gw_log(GW_LOG_INFO, s->client, "disconnected: client does not read its replies");
        imap_client_abort(s);
        return -1;
    }
    return 0;
}

/* A tag fit for a reply: the parser's, or "*" when none could be read. */
static const char *imap_tag_of(const struct imap_parser *p)
{
    return p->has_tag ? p->tag.ptr : "*";
}

/* A malformed or refused command: BAD, and the Nth one ends the session. */
static void imap_bad(struct imap_session *s, const char *tag, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void imap_bad(struct imap_session *s, const char *tag, const char *fmt, ...)
{
    char text[256];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    if (++s->bad_commands >= (unsigned long)s->conf->max_bad_commands) {
        gw_log(GW_LOG_INFO, s->client, "disconnected: too many bad commands");
        if (imap_reply(s, "%s BAD %s", tag, text) == 0)
            imap_client_finish(s, "* BYE Too many invalid commands.");
        return;
    }
    (void)imap_reply(s, "%s BAD %s", tag, text);
}

static bool imap_starttls_available(const struct imap_session *s)
{
    return gw_conn_tls_mode(s->client) == GW_TLS_STARTTLS && !gw_conn_is_tls(s->client);
}

/* Learn the pre-login capabilities from the greeting a health check last
   read from a healthy IMAP server, at most once per IMAP_CAPS_REFRESH_MS
   (backend logins refresh them too, see imap_backend_prelogin). */
static const char *imap_worker_caps(struct imap_worker *w)
{
    unsigned long long now = gw_now_ms();
    struct gw_route routes[IMAP_CAPS_SERVERS];
    size_t n;

    if (w->caps_checked != 0 && now - w->caps_checked < IMAP_CAPS_REFRESH_MS)
        return w->caps;
    w->caps_checked = now;
    n = gw_servers_for(IMAP_PROTOCOL, routes, IMAP_CAPS_SERVERS);
    for (size_t i = 0; i < n; i++) {
        const char *greeting = gw_backend_greeting(routes[i].server, IMAP_PROTOCOL);
        struct imap_response r;
        char caps[IMAP_CAPS_MAX];

        if (greeting == NULL ||
            imap_response_parse(greeting, strlen(greeting), &r) != IMAP_PARSE_OK ||
            r.kind != IMAP_RESP_UNTAGGED || r.status != IMAP_STATUS_OK ||
            !imap_slice_eq(imap_code_name(r.code), "CAPABILITY"))
            continue;
        if (imap_caps_prelogin(imap_code_args(r.code), caps, sizeof(caps)) > 0)
            memcpy(w->caps, caps, sizeof(w->caps));
        break;
    }
    return w->caps;
}

/* The capabilities of this connection right now, before login. */
static void imap_caps(const struct imap_session *s, char *buf, size_t size)
{
    const char *base = s->worker != NULL ? imap_worker_caps(s->worker) : "IMAP4rev1 SASL-IR ID";

    snprintf(buf, size, "%s%s%s%s", base, s->conf->referral ? " LOGIN-REFERRALS" : "",
             imap_starttls_available(s) ? " STARTTLS" : "",
             gw_conn_plaintext_ok(s->client) ? " AUTH=PLAIN" : " LOGINDISABLED");
}

static void imap_privacy_required(struct imap_session *s, const char *tag)
{
    gw_log(GW_LOG_INFO, s->client,
           "login refused: plaintext authentication on a non-secure connection");
    (void)imap_reply(s, "%s NO [PRIVACYREQUIRED] Plaintext authentication disallowed on "
                        "non-secure (SSL/TLS) connections.",
                     tag);
}

/* Back to not-authenticated after a failed login: answer the login's tag,
   then go on with the commands the client pipelined meanwhile. */
void imap_login_failed(struct imap_session *s, const char *fmt, ...)
{
    char text[512];
    va_list ap;
    int ret;

    if (s->state == IMAP_STATE_CLOSED)
        return;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    imap_backend_close(s);
    s->state = IMAP_STATE_NOT_AUTH;
    ret = imap_reply(s, "%s %s", s->tag != NULL ? s->tag : "*", text);
    imap_forget_login(s);
    if (ret < 0)
        return;
    gw_conn_resume(s->client);
    imap_client_input(s);
}

/* RFC 2221: the mailbox lives in a site with an external URL. Returns true
   when the client was referred there. */
static bool imap_try_referral(struct imap_session *s, const struct gw_mailbox *mbox)
{
    struct gw_route route;
    char url[512];

    if (!s->conf->referral)
        return false;
    gw_route(mbox, IMAP_PROTOCOL, GW_ROUTE_ALLOW_REDIRECT, &route);
    if (route.kind != GW_ROUTE_REDIRECT || route.url == NULL)
        return false;
    if (imap_referral_url(route.url, s->user, url, sizeof(url)) == 0) {
        gw_log(GW_LOG_WARN, s->client,
               "cannot make an IMAP referral from external_url %s of site %s; proxying",
               route.url, mbox->site != NULL ? mbox->site : "-");
        return false;
    }
    gw_log(GW_LOG_INFO, s->client, "login referred: user=%s site=%s to %s", s->login_user,
           mbox->site != NULL ? mbox->site : "-", url);
    imap_login_failed(s, "NO [REFERRAL %s] Your mailbox is served at %s", url, url);
    return true;
}

/* ---- directory --------------------------------------------------------- */

static bool imap_name_ok(const char *name)
{
    for (size_t i = 0; name[i] != '\0'; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f)
            return false;
    }
    return name[0] != '\0';
}

static void imap_auth_done(void *arg, enum gw_auth_result res, const struct gw_mailbox *mbox)
{
    struct imap_session *s = arg;
    const char *method;

    imap_session_ref(s);
    s->lookup = NULL;
    s->lookup_pending = false;
    if (s->state != IMAP_STATE_AUTHENTICATING)
        goto out;

    method = s->method == IMAP_METHOD_PLAIN ? "AUTHENTICATE PLAIN" : "LOGIN";
    switch (res) {
    case GW_AUTH_OK:
        if (mbox == NULL || !imap_name_ok(mbox->user != NULL ? mbox->user : s->user)) {
            gw_log(GW_LOG_ERROR, s->client,
                   "login failed: user=%s: directory gave no usable mailbox", s->user);
            imap_login_failed(s, "NO [UNAVAILABLE] Authentication service unavailable, try "
                                 "again later.");
            break;
        }
        s->login_user = gw_strdup(mbox->user != NULL ? mbox->user : s->user);
        gw_conn_set_user(s->client, s->login_user);
        if (imap_try_referral(s, mbox))
            break;
        imap_backend_start(s, mbox);
        break;
    case GW_AUTH_UNKNOWN_USER:
    case GW_AUTH_BAD_PASSWORD:
    case GW_AUTH_DISABLED:
        /* One text for all three: the client must not learn which. */
        gw_log(GW_LOG_INFO, s->client, "login failed: user=%s method=%s: %s", s->user, method,
               gw_auth_result_str(res));
        imap_login_failed(s, "NO [AUTHENTICATIONFAILED] Authentication failed.");
        break;
    case GW_AUTH_THROTTLED:
        gw_log(GW_LOG_INFO, s->client, "login failed: user=%s method=%s: %s", s->user, method,
               gw_auth_result_str(res));
        imap_login_failed(s, "NO [UNAVAILABLE] Too many failed logins, try again later.");
        break;
    case GW_AUTH_UNAVAILABLE:
    default:
        gw_log(GW_LOG_WARN, s->client, "login failed: user=%s method=%s: %s", s->user, method,
               gw_auth_result_str(res));
        imap_login_failed(s, "NO [UNAVAILABLE] Authentication service unavailable, try again "
                             "later.");
        break;
    }
out:
    imap_session_unref(&s);
}

/* Take the credentials (copied) and look them up, client paused meanwhile. */
static void imap_login_start(struct imap_session *s, const char *tag, struct imap_slice user,
                             struct imap_slice password, enum imap_method method)
{
    struct gw_lookup *l;

    imap_forget_login(s);
    s->tag = gw_strdup(tag);
    s->user = gw_strndup(user.ptr, user.len);
    s->password = gw_strndup(password.ptr, password.len);
    s->method = method;
    /* The parser's arena held the password (LOGIN) or the PLAIN response
       (SASL-IR); the copies are in the session now. */
    explicit_bzero(s->parser.arena, sizeof(s->parser.arena));
    s->state = IMAP_STATE_AUTHENTICATING;
    gw_conn_pause(s->client);
    s->lookup_pending = true;
    l = gw_authenticate(s->client, s->user, s->password, imap_auth_done, s);
    if (!s->lookup_pending)
        return;   /* answered already; the handle is void */
    if (l == NULL) {
        imap_auth_done(s, GW_AUTH_UNAVAILABLE, NULL);
        return;
    }
    s->lookup = l;
}

/* ---- commands ---------------------------------------------------------- */

static bool imap_arg_is_string(const struct imap_arg *a)
{
    return a->type == IMAP_ARG_ATOM || a->type == IMAP_ARG_QUOTED || a->type == IMAP_ARG_LITERAL;
}

static void imap_cmd_capability(struct imap_session *s, const struct imap_parser *p)
{
    char caps[IMAP_CAPS_MAX + 64];

    if (p->nargs != 0) {
        imap_bad(s, p->tag.ptr, "CAPABILITY takes no arguments.");
        return;
    }
    imap_caps(s, caps, sizeof(caps));
    (void)imap_reply(s, "* CAPABILITY %s\r\n%s OK Pre-login capabilities listed, post-login "
                        "capabilities have more.",
                     caps, p->tag.ptr);
}

static void imap_cmd_noop(struct imap_session *s, const struct imap_parser *p)
{
    if (p->nargs != 0) {
        imap_bad(s, p->tag.ptr, "NOOP takes no arguments.");
        return;
    }
    (void)imap_reply(s, "%s OK NOOP completed.", p->tag.ptr);
}

static void imap_cmd_logout(struct imap_session *s, const struct imap_parser *p)
{
    if (p->nargs != 0) {
        imap_bad(s, p->tag.ptr, "LOGOUT takes no arguments.");
        return;
    }
    if (imap_reply(s, "* BYE Logging out.\r\n%s OK Logout completed.", p->tag.ptr) == 0)
        imap_client_finish(s, NULL);
}

/* Keep the client's ID pairs for the backend, encoded, without x- fields
   (those are ours to set: a client must not choose its own
   x-originating-ip). */
static void imap_keep_client_id(struct imap_session *s, const struct imap_id_pair *pairs,
                                unsigned n)
{
    struct imap_buf b = { NULL, 0, 0 };
    unsigned kept = 0;

    free(s->client_id);
    s->client_id = NULL;
    for (unsigned i = 0; i < n && kept < IMAP_ID_PAIRS_MAX - IMAP_ID_OWN_PAIRS; i++) {
        char field[2 * IMAP_ID_FIELD_MAX + 3], value[2 * IMAP_ID_VALUE_MAX + 3];
        const struct imap_id_pair *pr = &pairs[i];

        if (pr->field.len >= 2 && (pr->field.ptr[0] == 'x' || pr->field.ptr[0] == 'X') &&
            pr->field.ptr[1] == '-')
            continue;
        if (imap_quote(pr->field.ptr, pr->field.len, field, sizeof(field)) == 0)
            continue;
        if (pr->value.ptr == NULL ||
            imap_quote(pr->value.ptr, pr->value.len, value, sizeof(value)) == 0)
            snprintf(value, sizeof(value), "NIL");
        if (b.len > 0)
            imap_buf_str(&b, " ");
        imap_buf_str(&b, field);
        imap_buf_str(&b, " ");
        imap_buf_str(&b, value);
        kept++;
    }
    s->client_id = b.data;
}

static void imap_cmd_id(struct imap_session *s, const struct imap_parser *p)
{
    struct imap_id_pair pairs[IMAP_ID_PAIRS_MAX];
    const char *error;
    unsigned n;

    if (imap_id_parse(p->args, p->nargs, pairs, IMAP_ID_PAIRS_MAX, &n, &error) !=
        IMAP_PARSE_OK) {
        imap_bad(s, p->tag.ptr, "%s", error);
        return;
    }
    imap_keep_client_id(s, pairs, n);
    (void)imap_reply(s, "* ID (\"name\" \"gatewayd\")\r\n%s OK ID completed.", p->tag.ptr);
}

static void imap_cmd_starttls(struct imap_session *s, const struct imap_parser *p)
{
    if (p->nargs != 0) {
        imap_bad(s, p->tag.ptr, "STARTTLS takes no arguments.");
        return;
    }
    if (gw_conn_is_tls(s->client)) {
        (void)imap_reply(s, "%s BAD TLS is already active.", p->tag.ptr);
        return;
    }
    if (!imap_starttls_available(s)) {
        (void)imap_reply(s, "%s BAD STARTTLS is not available on this port.", p->tag.ptr);
        return;
    }
    imap_forget_login(s);
    s->state = IMAP_STATE_STARTTLS_FLUSH;
    if (imap_reply(s, "%s OK Begin TLS negotiation now.", p->tag.ptr) < 0)
        return;
    /* Read nothing more as plaintext; the handshake starts once the OK is
       on the wire (GW_EV_DRAINED). */
    gw_conn_pause(s->client);
    gw_conn_notify_drained(s->client);
}

static void imap_cmd_login(struct imap_session *s, const struct imap_parser *p)
{
    const struct imap_arg *u = &p->args[0], *pw = &p->args[1];

    if (p->nargs != 2 || !imap_arg_is_string(u) || !imap_arg_is_string(pw)) {
        imap_bad(s, p->tag.ptr, "LOGIN needs a user name and a password.");
        return;
    }
    if (!gw_conn_plaintext_ok(s->client)) {
        imap_privacy_required(s, p->tag.ptr);
        return;
    }
    if (u->s.len == 0 || u->s.len > IMAP_USER_MAX || pw->s.len == 0 ||
        pw->s.len > IMAP_PASSWORD_MAX) {
        (void)imap_reply(s, "%s NO [AUTHENTICATIONFAILED] Authentication failed.", p->tag.ptr);
        return;
    }
    if (!imap_name_ok(u->s.ptr) || u->s.len != strlen(u->s.ptr) ||
        memchr(pw->s.ptr, '\0', pw->s.len) != NULL || memchr(pw->s.ptr, '\r', pw->s.len) != NULL ||
        memchr(pw->s.ptr, '\n', pw->s.len) != NULL) {
        imap_bad(s, p->tag.ptr, "Invalid characters in user name or password.");
        return;
    }
    imap_login_start(s, p->tag.ptr, u->s, pw->s, IMAP_METHOD_LOGIN);
}

/* A PLAIN response, base64 ("=" is the empty response). */
static void imap_sasl_plain(struct imap_session *s, const char *tag, const char *b64, size_t len)
{
    unsigned char buf[IMAP_SASL_DECODED_MAX];
    struct imap_sasl_plain plain;
    const char *error;
    long n = 0;

    if (len > IMAP_SASL_LINE_MAX) {
        imap_bad(s, tag, "Authentication response too long.");
        return;
    }
    if (!(len == 1 && b64[0] == '='))
        n = gw_base64_decode(b64, len, buf, sizeof(buf));
    if (n < 0) {
        explicit_bzero(buf, sizeof(buf));
        imap_bad(s, tag, "Invalid base64 data.");
        return;
    }
    if (imap_sasl_plain_parse(buf, (size_t)n, &plain, &error) != IMAP_PARSE_OK) {
        explicit_bzero(buf, sizeof(buf));
        imap_bad(s, tag, "%s", error);
        return;
    }
    imap_login_start(s, tag, plain.authcid, plain.passwd, IMAP_METHOD_PLAIN);
    explicit_bzero(buf, sizeof(buf));
}

static void imap_cmd_authenticate(struct imap_session *s, const struct imap_parser *p)
{
    const struct imap_arg *mech = &p->args[0], *ir = &p->args[1];

    if (p->nargs < 1 || p->nargs > 2 || mech->type != IMAP_ARG_ATOM ||
        (p->nargs == 2 && ir->type != IMAP_ARG_ATOM)) {
        imap_bad(s, p->tag.ptr, "AUTHENTICATE needs a mechanism.");
        return;
    }
    if (!imap_slice_eq(mech->s, "PLAIN")) {
        (void)imap_reply(s, "%s NO Unsupported authentication mechanism.", p->tag.ptr);
        return;
    }
    if (!gw_conn_plaintext_ok(s->client)) {
        imap_privacy_required(s, p->tag.ptr);
        return;
    }
    if (p->nargs == 2) {
        /* RFC 4959 SASL-IR */
        imap_sasl_plain(s, p->tag.ptr, ir->s.ptr, ir->s.len);
        return;
    }
    imap_forget_login(s);
    s->tag = gw_strdup(p->tag.ptr);
    s->state = IMAP_STATE_SASL_CONT;
    (void)imap_reply(s, "+ ");
}

/* The line after "+ " to AUTHENTICATE. */
static void imap_sasl_response(struct imap_session *s, const char *line, size_t len)
{
    char *tag = s->tag;

    s->tag = NULL;
    s->state = IMAP_STATE_NOT_AUTH;
    if (len == 1 && line[0] == '*')
        (void)imap_reply(s, "%s BAD Authentication cancelled.", tag);   /* RFC 3501 6.2.2 */
    else
        imap_sasl_plain(s, tag, line, len);
    free(tag);
}

/* Commands of the authenticated and selected states: recognised so that a
   client that skipped the login hears so. */
static const char *const imap_later_cmds[] = {
    "SELECT", "EXAMINE", "CREATE", "DELETE", "RENAME", "SUBSCRIBE", "UNSUBSCRIBE", "LIST",
    "LSUB", "STATUS", "APPEND", "CHECK", "CLOSE", "UNSELECT", "EXPUNGE", "SEARCH", "FETCH",
    "STORE", "COPY", "MOVE", "UID", "IDLE", "ENABLE", "NAMESPACE", "GETQUOTA", "GETQUOTAROOT",
    "SETQUOTA", "GETACL", "SETACL", "MYRIGHTS", "LISTRIGHTS", "GETMETADATA", "SETMETADATA",
    "NOTIFY", "COMPRESS", "SORT", "THREAD", "ESEARCH", NULL,
};

static const struct {
    const char *name;
    imap_cmd_func *func;
    bool literals;   /* may carry literals before login */
} imap_cmds[] = {
    { "CAPABILITY", imap_cmd_capability, false },
    { "NOOP", imap_cmd_noop, false },
    { "LOGOUT", imap_cmd_logout, false },
    { "ID", imap_cmd_id, true },
    { "STARTTLS", imap_cmd_starttls, false },
    { "LOGIN", imap_cmd_login, true },
    { "AUTHENTICATE", imap_cmd_authenticate, false },
};

static int imap_cmd_index(struct imap_slice name)
{
    for (size_t i = 0; i < sizeof(imap_cmds) / sizeof(imap_cmds[0]); i++) {
        if (imap_slice_eq(name, imap_cmds[i].name))
            return (int)i;
    }
    return -1;
}

static void imap_unknown_command(struct imap_session *s, const struct imap_parser *p)
{
    for (size_t i = 0; imap_later_cmds[i] != NULL; i++) {
        if (imap_slice_eq(p->name, imap_later_cmds[i])) {
            imap_bad(s, p->tag.ptr, "Not logged in.");
            return;
        }
    }
    imap_bad(s, p->tag.ptr, "Unknown command.");
}

/* A synchronizing literal was announced: invite it, or refuse the command
   before the client sends its octets. */
static void imap_literal_announced(struct imap_session *s)
{
    const struct imap_parser *p = &s->parser;
    int i = imap_cmd_index(p->name);

    /* A refused command ends here: the client sends no octets without
       our "+". The parser is reset after the reply (it holds the tag). */
    if (i < 0 || !imap_cmds[i].literals) {
        if (i < 0)
            imap_unknown_command(s, p);
        else
            imap_bad(s, p->tag.ptr, "Invalid arguments.");
        imap_parser_reset(&s->parser);
        return;
    }
    if (imap_cmds[i].func == imap_cmd_login && !gw_conn_plaintext_ok(s->client)) {
        /* Before the password is sent in the clear. */
        imap_privacy_required(s, p->tag.ptr);
        imap_parser_reset(&s->parser);
        return;
    }
    (void)imap_reply(s, "+ Ready for literal data.");
}

static void imap_command(struct imap_session *s)
{
    const struct imap_parser *p = &s->parser;
    int i = imap_cmd_index(p->name);

    if (i < 0) {
        imap_unknown_command(s, p);
        return;
    }
    imap_cmds[i].func(s, p);
}

/* A parser result other than MORE. */
static void imap_parsed(struct imap_session *s, enum imap_parse_result res)
{
    const struct imap_parser *p = &s->parser;

    switch (res) {
    case IMAP_PARSE_OK:
        imap_command(s);
        break;
    case IMAP_PARSE_LITERAL:
        imap_literal_announced(s);
        break;
    case IMAP_PARSE_BAD:
        imap_bad(s, imap_tag_of(p), "%s", p->error);
        break;
    case IMAP_PARSE_TOO_LONG:
        if (p->fatal) {
            gw_log(GW_LOG_INFO, s->client, "disconnected: non-synchronizing literal too big");
            if (imap_reply(s, "%s BAD [TOOBIG] %s", imap_tag_of(p), p->error) == 0)
                imap_client_finish(s, "* BYE [TOOBIG] Literal too big.");
            break;
        }
        imap_bad(s, imap_tag_of(p), "%s%s",
                 strcmp(p->error, "Literal too big.") == 0 ? "[TOOBIG] " : "", p->error);
        break;
    case IMAP_PARSE_MORE:
        break;
    }
}

/* Feed the parser the next line or literal octets. Returns 1 when input was
   used, 0 when more must arrive, -1 when the session ended. */
static int imap_client_read(struct imap_session *s)
{
    uint64_t left = imap_parser_literal_left(&s->parser);
    enum imap_parse_result res;
    const char *data;
    size_t len, used;
    int ret;

    if (left > 0) {
        len = gw_conn_read_bytes(s->client, left, &data);
        if (len == 0)
            return s->client_eof ? -1 : 0;
        res = imap_parser_feed(&s->parser, data, len, &used);
        imap_parsed(s, res);
        return 1;
    }
    ret = gw_conn_read_line(s->client, &data, &len);
    if (ret == 0)
        return 0;
    if (ret == GW_ERR_EOF)
        return -1;
    if (ret == GW_ERR_TOO_LONG) {
        /* Longer than the connection's buffer: gone before we saw it. */
        imap_parser_reset(&s->parser);
        imap_bad(s, "*", "Line too long.");
        return 1;
    }
    if (ret < 0)
        return -1;
    res = imap_parser_feed(&s->parser, data, len, &used);
    if (res == IMAP_PARSE_MORE)
        res = imap_parser_feed(&s->parser, "\r\n", 2, &used);
    imap_parsed(s, res);
    return 1;
}

/* Handle everything buffered, in order, until the session has to wait
   (lookup, backend, TLS) or the client has too much unread output. */
static void imap_client_input(struct imap_session *s)
{
    const char *line;
    size_t len;
    int ret;

    if (s->in_input)
        return;   /* the outer loop goes on where this one would start */
    s->in_input = true;
    while (s->state == IMAP_STATE_NOT_AUTH || s->state == IMAP_STATE_SASL_CONT) {
        if (gw_conn_unsent(s->client) > IMAP_OUTPUT_HIGH_WATER) {
            s->output_blocked = true;
            gw_conn_pause(s->client);
            gw_conn_notify_drained(s->client);
            break;
        }
        if (s->state == IMAP_STATE_NOT_AUTH) {
            ret = imap_client_read(s);
            if (ret == 0)
                break;
            if (ret < 0) {
                gw_log(GW_LOG_DEBUG, s->client, "client disconnected before login");
                imap_client_finish(s, NULL);
                break;
            }
            continue;
        }
        ret = gw_conn_read_line(s->client, &line, &len);
        if (ret == 0)
            break;
        if (ret == GW_ERR_TOO_LONG) {
            char *tag = s->tag;

            s->tag = NULL;
            s->state = IMAP_STATE_NOT_AUTH;
            imap_bad(s, tag != NULL ? tag : "*", "Line too long.");
            free(tag);
            continue;
        }
        if (ret < 0) {
            gw_log(GW_LOG_DEBUG, s->client, "client disconnected before login");
            imap_client_finish(s, NULL);
            break;
        }
        imap_sasl_response(s, line, len);
    }
    /* s is still referenced by the entry point that called us. */
    s->in_input = false;
}

/* ---- client events ----------------------------------------------------- */

static void imap_client_timeout(struct imap_session *s)
{
    switch (s->state) {
    case IMAP_STATE_AUTHENTICATING:
    case IMAP_STATE_BACKEND:
        gw_log(GW_LOG_WARN, s->client, "disconnected: login timeout while %s",
               s->state == IMAP_STATE_BACKEND ? imap_backend_state_name(s->be_state)
                                              : "authenticating");
        if (imap_reply(s, "%s NO [UNAVAILABLE] Login timed out, try again later.",
                       s->tag != NULL ? s->tag : "*") == 0)
            imap_client_finish(s, "* BYE Login timed out.");
        break;
    case IMAP_STATE_STARTTLS_FLUSH:
    case IMAP_STATE_TLS_HANDSHAKE:
        gw_log(GW_LOG_INFO, s->client, "disconnected: login timeout during STARTTLS");
        imap_client_abort(s);
        break;
    case IMAP_STATE_NOT_AUTH:
    case IMAP_STATE_SASL_CONT:
        gw_log(GW_LOG_INFO, s->client, "disconnected: login timeout");
        imap_client_finish(s, "* BYE Disconnected for inactivity.");
        break;
    case IMAP_STATE_CLOSED:
        break;
    }
}

static void imap_client_drained(struct imap_session *s)
{
    if (s->state == IMAP_STATE_STARTTLS_FLUSH) {
        s->state = IMAP_STATE_TLS_HANDSHAKE;
        gw_conn_resume(s->client);
        if (gw_conn_starttls(s->client) < 0) {
            gw_log(GW_LOG_ERROR, s->client, "STARTTLS: TLS is not available on this connection");
            imap_client_abort(s);
        }
        return;
    }
    if (s->output_blocked) {
        s->output_blocked = false;
        if (s->state == IMAP_STATE_NOT_AUTH || s->state == IMAP_STATE_SASL_CONT) {
            gw_conn_resume(s->client);
            imap_client_input(s);
        }
    }
}

static void imap_client_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct imap_session *s = arg;

    imap_session_ref(s);
    if (s->state == IMAP_STATE_CLOSED || c != s->client)
        goto out;

    switch (ev) {
    case GW_EV_READ:
        /* While waiting, input stays buffered for later. */
        imap_client_input(s);
        break;
    case GW_EV_EOF:
        s->client_eof = true;
        if (s->state == IMAP_STATE_STARTTLS_FLUSH || s->state == IMAP_STATE_TLS_HANDSHAKE) {
            imap_client_abort(s);
            break;
        }
        /* While a login is in flight we finish it (bounded by the
           timeouts): a client may half-close after pipelining its
           commands and still read the answers. */
        imap_client_input(s);
        break;
    case GW_EV_TIMEOUT:
        imap_client_timeout(s);
        break;
    case GW_EV_ERROR:
        gw_log(GW_LOG_DEBUG, c, "client connection error before login");
        imap_client_abort(s);
        break;
    case GW_EV_TLS_DONE:
        if (s->state == IMAP_STATE_TLS_HANDSHAKE) {
            /* RFC 3501 6.2.1: a fresh start; nothing from before TLS is
               kept (the core has discarded pipelined plaintext). */
            s->state = IMAP_STATE_NOT_AUTH;
            imap_forget_login(s);
            free(s->client_id);
            s->client_id = NULL;
            imap_parser_reset(&s->parser);
            imap_client_input(s);
        }
        break;
    case GW_EV_DRAINED:
        imap_client_drained(s);
        break;
    case GW_EV_CONNECTED:
        break;
    }
out:
    imap_session_unref(&s);
}

/* ---- plugin hooks ------------------------------------------------------ */

void imap_session_accept(struct gw_plugin_ctx *ctx, struct gw_conn *client)
{
    struct imap_session *s = gw_calloc(1, sizeof(*s));
    struct imap_parse_limits limits;
    char caps[IMAP_CAPS_MAX + 64];

    s->conf = gw_plugin_conf(ctx);
    s->worker = gw_plugin_data(ctx);
    s->client = client;
    s->state = IMAP_STATE_NOT_AUTH;
    s->refs = 1;   /* open */
    if (s->worker != NULL) {
        s->next = s->worker->sessions;
        if (s->next != NULL)
            s->next->prev = s;
        s->worker->sessions = s;
        s->worker->nsessions++;
    }
    limits.max_line = (size_t)s->conf->max_line;
    limits.max_literal = (size_t)s->conf->max_literal;
    limits.max_tag = (size_t)s->conf->max_tag;
    imap_parser_init(&s->parser, &limits);

    imap_session_ref(s);
    gw_conn_set_handler(client, imap_client_event, s);
    gw_conn_set_timeout(client, s->conf->login_timeout);
    imap_caps(s, caps, sizeof(caps));
    (void)imap_reply(s, "* OK [CAPABILITY %s] %s", caps,
                     s->conf->greeting != NULL ? s->conf->greeting : IMAP_DEFAULT_GREETING);
    imap_session_unref(&s);
}

void imap_sessions_destroy_all(struct imap_worker *w)
{
    struct imap_session *s;

    /* At worker stop the core has closed and freed every connection
       already (plugin.h: stop() never touches a gw_conn): forget them,
       cancel lookups, free the sessions. No entry point is running, so the
       open reference is the last and dropping it unlinks the session. */
    while ((s = w->sessions) != NULL) {
        if (s->lookup != NULL)
            gw_lookup_cancel(&s->lookup);
        s->lookup_pending = false;
        s->client = NULL;
        s->upstream = NULL;
        s->state = IMAP_STATE_CLOSED;
        s->refs = 1;
        imap_session_unref(&s);
    }
}
