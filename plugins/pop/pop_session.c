/*
 * POP3 session: the AUTHORIZATION state toward the client (RFC 1939, 2449,
 * 2595, 3206, 5034), the directory lookup, and the login to the backend on
 * the client's behalf. Once the backend says +OK the client and backend are
 * handed to the core's relay and this file forgets them.
 *
 * Lifetime: a session lives from accept until the client is closed or
 * relayed. Entry points (connection events, the lookup callback) hold a
 * reference while they run, so a session closed deep inside a call chain is
 * freed only when the outermost entry point returns -- the same deferred
 * freeing the core applies to connections.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "pop.h"
#include "pop_parse.h"

/* Decoded size of the longest SASL line we accept. */
#define POP_SASL_DECODED_MAX ((POP_SASL_LINE_LIMIT / 4) * 3 + 3)

enum pop_state {
    POP_STATE_AUTHORIZATION,  /* reading commands from the client */
    POP_STATE_SASL_CONT,      /* sent "+ " to AUTH PLAIN; reading the client's base64 line */
    POP_STATE_STLS_FLUSH,     /* answered STLS +OK; waiting for it to be written, client paused */
    POP_STATE_TLS_HANDSHAKE,  /* client TLS handshake in progress */
    POP_STATE_AUTHENTICATING, /* directory lookup in flight; client paused */
    POP_STATE_BACKEND,        /* logging in to the backend (be_state); client paused */
    POP_STATE_CLOSED,         /* client closed or relayed; freed when the last reference goes */
};

/* Each "sent X" state waits for the backend's answer to X. */
enum pop_be_state {
    POP_BE_NONE,       /* no backend connection */
    POP_BE_CONNECTING, /* connect (and implicit TLS) in progress */
    POP_BE_GREETING,   /* connected; waiting for the +OK greeting */
    POP_BE_STLS,       /* sent STLS; waiting for +OK */
    POP_BE_TLS,        /* TLS handshake with the backend in progress */
    POP_BE_CAPA,       /* sent CAPA (to learn XCLIENT); waiting for the status line */
    POP_BE_CAPA_LIST,  /* reading capability lines until "." */
    POP_BE_XCLIENT,    /* sent XCLIENT; waiting for +OK */
    POP_BE_AUTH,       /* sent AUTH PLAIN without initial response; waiting for "+ " */
    POP_BE_USER,       /* sent USER; waiting for +OK */
    POP_BE_PASS,       /* sent PASS or the PLAIN response; waiting for the login answer */
};

static const char *const pop_be_state_names[] = {
    [POP_BE_NONE] = "idle",
    [POP_BE_CONNECTING] = "connecting",
    [POP_BE_GREETING] = "waiting for the greeting",
    [POP_BE_STLS] = "starting TLS",
    [POP_BE_TLS] = "in the TLS handshake",
    [POP_BE_CAPA] = "asking for capabilities",
    [POP_BE_CAPA_LIST] = "reading capabilities",
    [POP_BE_XCLIENT] = "sending XCLIENT",
    [POP_BE_AUTH] = "starting AUTH PLAIN",
    [POP_BE_USER] = "sending USER",
    [POP_BE_PASS] = "logging in",
};

struct pop_session {
    struct pop_session *next, *prev;  /* the worker's live sessions */
    struct pop_worker *worker;        /* NULL if the plugin was not started */
    const struct pop_conf *conf;
    struct gw_conn *client;
    struct gw_conn *upstream;
    struct gw_lookup *lookup;
    enum pop_state state;
    enum pop_be_state be_state;
    unsigned refs;                    /* 1 while open, +1 per entry point running */
    unsigned long bad_commands;
    unsigned be_capa_lines;
    bool lookup_pending;              /* gw_authenticate() called, callback not yet */
    bool in_input;                    /* inside pop_client_input(): do not recurse */
    bool output_blocked;              /* paused until the client reads our replies */
    bool sasl;                        /* client used AUTH PLAIN (else USER/PASS) */
    bool be_xclient;                  /* the backend offers XCLIENT */
    char *user;                       /* from USER or the PLAIN authcid */
    char *password;                   /* secret: wiped as soon as it is sent */
    char *login_user;                 /* canonical name from the directory */
};

typedef void pop_cmd_func(struct pop_session *s, const struct pop_command *cmd);

static void pop_client_input(struct pop_session *s);
static void pop_client_drained(struct pop_session *s);
static void pop_backend_prelogin(struct pop_session *s, bool capa_known);

/* ---- lifetime ---------------------------------------------------------- */

static void pop_session_ref(struct pop_session *s)
{
    s->refs++;
}

static void pop_session_free(struct pop_session *s)
{
    gw_free_secret(&s->password);
    free(s->user);
    free(s->login_user);
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

static void pop_session_unref(struct pop_session **sp)
{
    struct pop_session *s = *sp;

    *sp = NULL;
    if (--s->refs == 0)
        pop_session_free(s);
}

/* Forget the credentials of the current login attempt. */
static void pop_forget_login(struct pop_session *s)
{
    gw_free_secret(&s->password);
    free(s->user);
    s->user = NULL;
    free(s->login_user);
    s->login_user = NULL;
}

static void pop_backend_close(struct pop_session *s)
{
    if (s->upstream != NULL) {
        gw_conn_set_handler(s->upstream, NULL, NULL);
        gw_conn_close(s->upstream);
        s->upstream = NULL;
    }
    s->be_state = POP_BE_NONE;
}

/* Drop everything but the client connection; the session becomes CLOSED
   and loses its "open" reference. */
static void pop_session_release(struct pop_session *s)
{
    struct pop_session *open_ref;

    if (s->state == POP_STATE_CLOSED)
        return;
    s->state = POP_STATE_CLOSED;
    if (s->lookup != NULL)
        gw_lookup_cancel(&s->lookup);
    s->lookup_pending = false;
    pop_backend_close(s);
    pop_forget_login(s);
    s->client = NULL;
    open_ref = s;
    pop_session_unref(&open_ref);
}

/* Close the client at once (I/O error, abuse, shutdown). */
static void pop_client_abort(struct pop_session *s)
{
    struct gw_conn *c = s->client;

    if (s->state == POP_STATE_CLOSED)
        return;
    if (c != NULL) {
        gw_conn_set_handler(c, NULL, NULL);
        gw_conn_close(c);
    }
    pop_session_release(s);
}

/* Write `reply` (if not NULL), then close the client. */
static void pop_client_finish(struct pop_session *s, const char *reply)
{
    struct gw_conn *c = s->client;

    if (s->state == POP_STATE_CLOSED)
        return;
    if (reply != NULL && gw_conn_printf(c, "%s\r\n", reply) < 0) {
        pop_client_abort(s);
        return;
    }
    gw_conn_set_handler(c, NULL, NULL);
    /* The login deadline may have passed already: bound the last write. */
    gw_conn_set_timeout(c, POP_CLOSE_FLUSH_MS);
    gw_conn_close_after_write(c);
    pop_session_release(s);
}

/* ---- replies ----------------------------------------------------------- */

/* One reply line; CRLF is added. Returns -1 (and the session is closed)
   when the client does not read its output. */
static int pop_reply(struct pop_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int pop_reply(struct pop_session *s, const char *fmt, ...)
{
    char buf[POP_REPLY_MAX];
    va_list ap;
    int n;

    if (s->state == POP_STATE_CLOSED)
        return -1;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf) - 2, fmt, ap);
    va_end(ap);
    if (n < 0)
        n = 0;
    if ((size_t)n > sizeof(buf) - 3)
        n = (int)(sizeof(buf) - 3);
    buf[n++] = '\r';
    buf[n++] = '\n';
    if (gw_conn_write(s->client, buf, (size_t)n) < 0) {
        gw_log(GW_LOG_INFO, s->client, "disconnected: client does not read its replies");
        pop_client_abort(s);
        return -1;
    }
    return 0;
}

static void pop_bad_command(struct pop_session *s, const char *error)
{
    if (++s->bad_commands >= (unsigned long)s->conf->max_bad_commands) {
        gw_log(GW_LOG_INFO, s->client, "disconnected: too many bad commands");
        pop_client_finish(s, "-ERR Too many bad commands.");
        return;
    }
    (void)pop_reply(s, "-ERR %s", error);
}

static void pop_plaintext_refused(struct pop_session *s)
{
    gw_log(GW_LOG_INFO, s->client, "login refused: plaintext authentication on a non-secure connection");
    (void)pop_reply(s, "-ERR [AUTH] Plaintext authentication disallowed on non-secure (SSL/TLS) "
                       "connections.");
}

/* Back to AUTHORIZATION after a failed login: answer, then go on with the
   commands the client pipelined meanwhile. */
static void pop_login_failed(struct pop_session *s, const char *reply)
{
    if (s->state == POP_STATE_CLOSED)
        return;
    pop_backend_close(s);
    pop_forget_login(s);
    s->state = POP_STATE_AUTHORIZATION;
    if (pop_reply(s, "%s", reply) < 0)
        return;
    gw_conn_resume(s->client);
    pop_client_input(s);
}

/* ---- backend login ----------------------------------------------------- */

static void pop_backend_wait(struct pop_session *s, enum pop_be_state st)
{
    s->be_state = st;
    gw_conn_set_timeout(s->upstream, s->conf->backend_timeout);
}

/* The backend failed (unreachable, timeout, garbage): log why, tell the
   client to try later, stay in AUTHORIZATION. */
static void pop_backend_fail(struct pop_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void pop_backend_fail(struct pop_session *s, const char *fmt, ...)
{
    char why[POP_REPLY_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    /* The connection's log context already names the user and backend;
       the server is repeated because it is what operators grep for. */
    gw_log(GW_LOG_WARN, s->upstream != NULL ? s->upstream : s->client,
           "login failed: backend %s: %s",
           s->upstream != NULL ? gw_upstream_server(s->upstream) : "-", why);
    pop_login_failed(s, "-ERR [SYS/TEMP] Backend unavailable, try again later.");
}

static void pop_backend_fail_line(struct pop_session *s, const char *what, const char *line,
                                  size_t len)
{
    char excerpt[POP_LOG_EXCERPT + 1];

    gw_log_sanitize(line, len, excerpt, sizeof(excerpt));
    pop_backend_fail(s, "%s while %s: \"%s\"", what, pop_be_state_names[s->be_state], excerpt);
}

/* A command was queued to the backend with result `ret` (of
   gw_conn_printf): wait for its answer in state `next`, or fail. */
static int pop_backend_sent(struct pop_session *s, int ret, enum pop_be_state next)
{
    if (ret < 0) {
        pop_backend_fail(s, "cannot send a command while %s", pop_be_state_names[s->be_state]);
        return -1;
    }
    pop_backend_wait(s, next);
    return 0;
}

/* Send the PLAIN response line (RFC 4616 with an empty authzid) and forget
   the password. */
static void pop_backend_send_plain(struct pop_session *s, bool with_command)
{
    size_t size = gw_sasl_plain_encoded_size(0, strlen(s->login_user), strlen(s->password));
    char *b64 = gw_malloc(size);
    int ret;

    if (gw_sasl_plain_encode(NULL, s->login_user, s->password, b64, size) < 0) {
        free(b64);
        pop_backend_fail(s, "cannot encode the PLAIN response");
        return;
    }
    if (with_command)
        ret = gw_conn_printf(s->upstream, "AUTH PLAIN %s\r\n", b64);
    else
        ret = gw_conn_printf(s->upstream, "%s\r\n", b64);
    explicit_bzero(b64, size);
    free(b64);
    gw_free_secret(&s->password);
    (void)pop_backend_sent(s, ret, POP_BE_PASS);
}

static void pop_backend_login(struct pop_session *s)
{
    size_t b64len;

    if (!s->sasl) {
        (void)pop_backend_sent(s, gw_conn_printf(s->upstream, "USER %s\r\n", s->login_user),
                               POP_BE_USER);
        return;
    }
    /* RFC 5034: the initial response goes on the AUTH line only if the
       line stays within 255 octets; otherwise wait for the "+ ". */
    b64len = gw_sasl_plain_encoded_size(0, strlen(s->login_user), strlen(s->password)) - 1;
    if (b64len + sizeof("AUTH PLAIN \r\n") - 1 <= POP_LINE_MAX_RFC) {
        pop_backend_send_plain(s, true);
        return;
    }
    (void)pop_backend_sent(s, gw_conn_printf(s->upstream, "AUTH PLAIN\r\n"), POP_BE_AUTH);
}

/* XCLIENT (if configured and offered), then the login. */
static void pop_backend_prelogin(struct pop_session *s, bool capa_known)
{
    const struct gw_peer *peer;

    if (!s->conf->xclient) {
        pop_backend_login(s);
        return;
    }
    if (s->be_xclient) {
        peer = gw_conn_peer(s->client);
        gw_log(GW_LOG_DEBUG, s->upstream, "forwarding the client address with XCLIENT");
        (void)pop_backend_sent(s,
                               gw_conn_printf(s->upstream, "XCLIENT ADDR=%s PORT=%u\r\n",
                                              peer->addr, peer->port),
                               POP_BE_XCLIENT);
        return;
    }
    if (!capa_known) {
        s->be_capa_lines = 0;
        (void)pop_backend_sent(s, gw_conn_printf(s->upstream, "CAPA\r\n"), POP_BE_CAPA);
        return;
    }
    gw_log(GW_LOG_WARN, s->upstream,
           "xclient is enabled but backend %s does not offer XCLIENT (is this gateway in its "
           "login_trusted_networks?); logging in without it",
           gw_upstream_server(s->upstream));
    pop_backend_login(s);
}

/* The backend said -ERR (or something else) to USER, PASS or AUTH. */
static void pop_backend_refused(struct pop_session *s, const struct pop_status *st,
                                const char *line, size_t len)
{
    char text[POP_REPLY_MAX - 2];

    gw_log_sanitize(line, len, text, sizeof(text));
    gw_log(GW_LOG_INFO, s->upstream, "login failed: backend %s refused: %s",
           gw_upstream_server(s->upstream), text);
    /* Response codes meant for the client (RFC 2449, 3206) pass through;
       anything else is a disagreement between directory and backend. */
    if (st != NULL && st->kind == POP_STATUS_ERR &&
        (pop_status_code_is(st, "AUTH") || pop_status_code_is(st, "SYS") ||
         pop_status_code_is(st, "IN-USE") || pop_status_code_is(st, "LOGIN-DELAY")))
        pop_login_failed(s, text);
    else
        pop_login_failed(s, "-ERR [SYS/TEMP] Backend login failed, try again later.");
}

/* Logged in: pass the backend's +OK on, hand both sides to the relay. */
static void pop_backend_done(struct pop_session *s, const char *line, size_t len)
{
    struct gw_conn *client = s->client, *up = s->upstream;

    gw_log(GW_LOG_INFO, client, "login ok: method=%s", s->sasl ? "AUTH PLAIN" : "USER");
    /* one write, so the client's +OK leaves in one segment */
    if (gw_conn_printf(client, "%.*s\r\n", (int)len, line) < 0) {
        pop_client_abort(s);
        return;
    }
    s->upstream = NULL;
    s->be_state = POP_BE_NONE;
    gw_conn_set_handler(client, NULL, NULL);
    gw_conn_set_handler(up, NULL, NULL);
    gw_conn_set_timeout(client, 0);
    gw_conn_set_timeout(up, 0);
    pop_session_release(s);
    /* Commands the client pipelined after its login are still buffered
       and go to the backend first; the relay also lifts our pause. */
    gw_relay(client, up, 0);
}

static void pop_backend_line(struct pop_session *s, const char *line, size_t len)
{
    struct pop_status st;
    struct pop_slice name, args;
    int ret;

    if (s->be_state == POP_BE_CAPA_LIST) {
        if (pop_capa_line(line, len, &name, &args)) {
            pop_backend_prelogin(s, true);
            return;
        }
        if (pop_slice_eq(name, "XCLIENT"))
            s->be_xclient = true;
        if (++s->be_capa_lines > POP_BACKEND_CAPA_LINES)
            pop_backend_fail(s, "more than %d CAPA lines", POP_BACKEND_CAPA_LINES);
        return;
    }
    if (pop_status_parse(line, len, &st) != POP_PARSE_OK) {
        pop_backend_fail_line(s, "unexpected answer", line, len);
        return;
    }
    switch (s->be_state) {
    case POP_BE_GREETING:
        if (st.kind != POP_STATUS_OK) {
            pop_backend_fail_line(s, "bad greeting", line, len);
            return;
        }
        /* Dovecot announces XCLIENT in the greeting to trusted peers. */
        s->be_xclient = pop_status_code_is(&st, "XCLIENT");
        if (gw_upstream_tls(s->upstream) == GW_TLS_STARTTLS) {
            (void)pop_backend_sent(s, gw_conn_printf(s->upstream, "STLS\r\n"), POP_BE_STLS);
            return;
        }
        pop_backend_prelogin(s, false);
        return;
    case POP_BE_STLS:
        if (st.kind != POP_STATUS_OK) {
            pop_backend_fail_line(s, "STLS refused", line, len);
            return;
        }
        pop_backend_wait(s, POP_BE_TLS);
        if (gw_conn_starttls_client(s->upstream) < 0)
            pop_backend_fail(s, "TLS is not available toward this backend");
        return;
    case POP_BE_CAPA:
        if (st.kind == POP_STATUS_OK)
            pop_backend_wait(s, POP_BE_CAPA_LIST);
        else
            pop_backend_prelogin(s, true);
        return;
    case POP_BE_XCLIENT:
        if (st.kind != POP_STATUS_OK) {
            pop_backend_fail_line(s, "XCLIENT refused", line, len);
            return;
        }
        pop_backend_login(s);
        return;
    case POP_BE_AUTH:
        if (st.kind != POP_STATUS_CONT) {
            pop_backend_refused(s, &st, line, len);
            return;
        }
        pop_backend_send_plain(s, false);
        return;
    case POP_BE_USER:
        if (st.kind != POP_STATUS_OK) {
            pop_backend_refused(s, &st, line, len);
            return;
        }
        ret = gw_conn_printf(s->upstream, "PASS %s\r\n", s->password);
        gw_free_secret(&s->password);
        (void)pop_backend_sent(s, ret, POP_BE_PASS);
        return;
    case POP_BE_PASS:
        if (st.kind == POP_STATUS_OK)
            pop_backend_done(s, line, len);
        else if (st.kind == POP_STATUS_CONT)
            pop_backend_fail_line(s, "unexpected SASL challenge", line, len);
        else
            pop_backend_refused(s, &st, line, len);
        return;
    case POP_BE_NONE:
    case POP_BE_CONNECTING:
    case POP_BE_TLS:
    case POP_BE_CAPA_LIST:
        break;
    }
}

static bool pop_be_reads_lines(enum pop_be_state st)
{
    return st != POP_BE_NONE && st != POP_BE_CONNECTING && st != POP_BE_TLS;
}

static void pop_backend_input(struct pop_session *s)
{
    const char *line;
    size_t len;
    int ret;

    while (s->state == POP_STATE_BACKEND && pop_be_reads_lines(s->be_state)) {
        ret = gw_conn_read_line(s->upstream, &line, &len);
        if (ret == 0)
            return;
        if (ret == GW_ERR_EOF) {
            pop_backend_fail(s, "connection closed while %s", pop_be_state_names[s->be_state]);
            return;
        }
        if (ret < 0) {
            pop_backend_fail(s, "over-long line while %s", pop_be_state_names[s->be_state]);
            return;
        }
        pop_backend_line(s, line, len);
    }
}

static void pop_upstream_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct pop_session *s = arg;

    pop_session_ref(s);
    if (s->state != POP_STATE_BACKEND)
        goto out;
    /* gw_upstream_connect() may report before it has returned. */
    if (s->upstream == NULL && s->be_state == POP_BE_CONNECTING)
        s->upstream = c;
    if (c != s->upstream)
        goto out;

    switch (ev) {
    case GW_EV_CONNECTED:
        if (s->be_state == POP_BE_CONNECTING) {
            pop_backend_wait(s, POP_BE_GREETING);
            pop_backend_input(s);
        }
        break;
    case GW_EV_READ:
        pop_backend_input(s);
        break;
    case GW_EV_EOF:
        /* Lines before the EOF still count; then GW_ERR_EOF fails. */
        if (pop_be_reads_lines(s->be_state))
            pop_backend_input(s);
        else
            pop_backend_fail(s, "connection closed while %s", pop_be_state_names[s->be_state]);
        break;
    case GW_EV_TIMEOUT:
        pop_backend_fail(s, "timed out while %s", pop_be_state_names[s->be_state]);
        break;
    case GW_EV_ERROR:
        pop_backend_fail(s, "%s", s->be_state == POP_BE_CONNECTING ? "cannot connect"
                                  : s->be_state == POP_BE_TLS      ? "TLS handshake failed"
                                                                   : "I/O error");
        break;
    case GW_EV_TLS_DONE:
        if (s->be_state == POP_BE_TLS) {
            /* RFC 2595: what was learnt before TLS is void, except the
               greeting's XCLIENT mark, which reflects our address. */
            pop_backend_prelogin(s, false);
        }
        break;
    case GW_EV_DRAINED:
        break;
    }
out:
    pop_session_unref(&s);
}

static void pop_backend_start(struct pop_session *s, const struct gw_mailbox *mbox)
{
    const char *error = NULL, *name = mbox->user != NULL ? mbox->user : s->user;
    struct gw_conn *up;
    size_t i;

    /* It goes into a command line to the backend: no CR/LF, and no space
       in "USER name". */
    for (i = 0; name[i] != '\0'; i++) {
        if ((unsigned char)name[i] < 0x20 || name[i] == 0x7f || (name[i] == ' ' && !s->sasl)) {
            gw_log(GW_LOG_ERROR, s->client, "directory returned an unusable user name for %s",
                   s->user);
            pop_login_failed(s, "-ERR [SYS/TEMP] Backend unavailable, try again later.");
            return;
        }
    }
    s->login_user = gw_strdup(name);
    gw_conn_set_user(s->client, s->login_user);
    s->state = POP_STATE_BACKEND;
    s->be_state = POP_BE_CONNECTING;
    s->be_xclient = false;
    up = gw_upstream_connect(s->client, mbox, POP_PROTOCOL, pop_upstream_event, s, &error);
    if (up == NULL) {
        if (s->state == POP_STATE_BACKEND && s->be_state == POP_BE_CONNECTING) {
            gw_log(GW_LOG_WARN, s->client, "login failed: no backend: %s",
                   error != NULL ? error : "unknown reason");
            pop_login_failed(s, "-ERR [SYS/TEMP] No server available, try again later.");
        }
        return;
    }
    if (s->state == POP_STATE_BACKEND && s->be_state == POP_BE_CONNECTING) {
        s->upstream = up;
        pop_backend_wait(s, POP_BE_CONNECTING);
    }
}

/* ---- directory --------------------------------------------------------- */

static void pop_auth_done(void *arg, enum gw_auth_result res, const struct gw_mailbox *mbox)
{
    struct pop_session *s = arg;
    const char *method;

    pop_session_ref(s);
    s->lookup = NULL;
    s->lookup_pending = false;
    if (s->state != POP_STATE_AUTHENTICATING)
        goto out;

    method = s->sasl ? "AUTH PLAIN" : "USER";
    switch (res) {
    case GW_AUTH_OK:
        if (mbox != NULL) {
            pop_backend_start(s, mbox);
            break;
        }
        gw_log(GW_LOG_ERROR, s->client, "login failed: user=%s: directory gave no mailbox",
               s->user);
        pop_login_failed(s, "-ERR [SYS/TEMP] Authentication service unavailable, try again "
                            "later.");
        break;
    case GW_AUTH_UNKNOWN_USER:
    case GW_AUTH_BAD_PASSWORD:
    case GW_AUTH_DISABLED:
        /* One text for all three: the client must not learn which. */
        gw_log(GW_LOG_INFO, s->client, "login failed: user=%s method=%s: %s", s->user, method,
               gw_auth_result_str(res));
        pop_login_failed(s, "-ERR [AUTH] Authentication failed.");
        break;
    case GW_AUTH_THROTTLED:
        gw_log(GW_LOG_INFO, s->client, "login failed: user=%s method=%s: %s", s->user, method,
               gw_auth_result_str(res));
        pop_login_failed(s, "-ERR [SYS/TEMP] Too many failed logins, try again later.");
        break;
    case GW_AUTH_UNAVAILABLE:
    default:
        gw_log(GW_LOG_WARN, s->client, "login failed: user=%s method=%s: %s", s->user, method,
               gw_auth_result_str(res));
        pop_login_failed(s, "-ERR [SYS/TEMP] Authentication service unavailable, try again "
                            "later.");
        break;
    }
out:
    pop_session_unref(&s);
}

/* s->user and s->password are set: look them up, client paused meanwhile. */
static void pop_login_start(struct pop_session *s, bool sasl)
{
    struct gw_lookup *l;

    s->sasl = sasl;
    s->state = POP_STATE_AUTHENTICATING;
    gw_conn_pause(s->client);
    s->lookup_pending = true;
    l = gw_authenticate(s->client, s->user, s->password, pop_auth_done, s);
    if (!s->lookup_pending)
        return;   /* answered already; the handle is void */
    if (l == NULL) {
        pop_auth_done(s, GW_AUTH_UNAVAILABLE, NULL);
        return;
    }
    s->lookup = l;
}

/* ---- commands ---------------------------------------------------------- */

static bool pop_stls_available(const struct pop_session *s)
{
    return gw_conn_tls_mode(s->client) == GW_TLS_STARTTLS && !gw_conn_is_tls(s->client);
}

static void pop_cmd_capa(struct pop_session *s, const struct pop_command *cmd)
{
    bool plain = gw_conn_plaintext_ok(s->client);

    (void)pop_reply(s, "+OK Capability list follows\r\n"
                       "TOP\r\n"
                       "UIDL\r\n"
                       "RESP-CODES\r\n"
                       "AUTH-RESP-CODE\r\n"
                       "PIPELINING\r\n"
                       "%s%s"
                       "IMPLEMENTATION gatewayd\r\n"
                       ".",
                    plain ? "USER\r\nSASL PLAIN\r\n" : "",
                    pop_stls_available(s) ? "STLS\r\n" : "");
}

static void pop_cmd_stls(struct pop_session *s, const struct pop_command *cmd)
{
    if (gw_conn_is_tls(s->client)) {
        (void)pop_reply(s, "-ERR TLS is already active.");
        return;
    }
    if (!pop_stls_available(s)) {
        (void)pop_reply(s, "-ERR STLS is not available on this port.");
        return;
    }
    pop_forget_login(s);
    s->state = POP_STATE_STLS_FLUSH;
    if (pop_reply(s, "+OK Begin TLS negotiation now.") < 0)
        return;
    /* Read nothing more as plaintext; the handshake starts once the +OK
       is on the wire (pop_client_drained). */
    gw_conn_pause(s->client);
    if (gw_conn_unsent(s->client) == 0)
        pop_client_drained(s);
    else
        gw_conn_notify_drained(s->client);
}

static void pop_cmd_user(struct pop_session *s, const struct pop_command *cmd)
{
    if (!gw_conn_plaintext_ok(s->client)) {
        pop_plaintext_refused(s);
        return;
    }
    if (cmd->args[0].len > POP_USER_MAX) {
        (void)pop_reply(s, "-ERR User name too long.");
        return;
    }
    pop_forget_login(s);
    s->user = gw_strndup(cmd->args[0].ptr, cmd->args[0].len);
    (void)pop_reply(s, "+OK");
}

static void pop_cmd_pass(struct pop_session *s, const struct pop_command *cmd)
{
    if (!gw_conn_plaintext_ok(s->client)) {
        pop_plaintext_refused(s);
        return;
    }
    if (s->user == NULL) {
        (void)pop_reply(s, "-ERR No user name given.");
        return;
    }
    gw_free_secret(&s->password);
    s->password = gw_strndup(cmd->args[0].ptr, cmd->args[0].len);
    pop_login_start(s, false);
}

static void pop_cmd_apop(struct pop_session *s, const struct pop_command *cmd)
{
    (void)pop_reply(s, "-ERR APOP is not supported.");
}

/* A PLAIN response, base64 ("=" is the empty response). */
static void pop_sasl_plain(struct pop_session *s, const char *b64, size_t len)
{
    unsigned char buf[POP_SASL_DECODED_MAX];
    struct pop_sasl_plain plain;
    const char *error;
    long n = 0;

    if (!(len == 1 && b64[0] == '='))
        n = gw_base64_decode(b64, len, buf, sizeof(buf));
    if (n < 0) {
        explicit_bzero(buf, sizeof(buf));
        pop_bad_command(s, "Invalid base64 data.");
        return;
    }
    if (pop_sasl_plain_parse(buf, (size_t)n, &plain, &error) != POP_PARSE_OK) {
        explicit_bzero(buf, sizeof(buf));
        pop_bad_command(s, error);
        return;
    }
    pop_forget_login(s);
    s->user = gw_strndup(plain.authcid.ptr, plain.authcid.len);
    s->password = gw_strndup(plain.passwd.ptr, plain.passwd.len);
    explicit_bzero(buf, sizeof(buf));
    pop_login_start(s, true);
}

static void pop_cmd_auth(struct pop_session *s, const struct pop_command *cmd)
{
    bool plain = gw_conn_plaintext_ok(s->client);

    if (cmd->nargs == 0) {
        /* Mechanism discovery as Outlook does it (pre-RFC 5034). */
        (void)pop_reply(s, "+OK\r\n%s.", plain ? "PLAIN\r\n" : "");
        return;
    }
    if (!pop_slice_eq(cmd->args[0], "PLAIN")) {
        (void)pop_reply(s, "-ERR Unsupported authentication mechanism.");
        return;
    }
    if (!plain) {
        pop_plaintext_refused(s);
        return;
    }
    pop_forget_login(s);
    if (cmd->nargs == 2) {
        pop_sasl_plain(s, cmd->args[1].ptr, cmd->args[1].len);
        return;
    }
    s->state = POP_STATE_SASL_CONT;
    (void)pop_reply(s, "+ ");
}

/* The line after "+ " to AUTH PLAIN. */
static void pop_sasl_response(struct pop_session *s, const char *line, size_t len)
{
    s->state = POP_STATE_AUTHORIZATION;
    if (len == 1 && line[0] == '*') {
        (void)pop_reply(s, "-ERR Authentication cancelled.");
        return;
    }
    if (len > (size_t)s->conf->max_sasl_line - 2) {
        pop_bad_command(s, "Line too long.");
        return;
    }
    pop_sasl_plain(s, line, len);
}

static void pop_cmd_quit(struct pop_session *s, const struct pop_command *cmd)
{
    pop_client_finish(s, "+OK Logging out.");
}

/* TRANSACTION-state commands, NOOP included (RFC 1939). */
static void pop_cmd_not_logged_in(struct pop_session *s, const struct pop_command *cmd)
{
    pop_bad_command(s, "Not logged in.");
}

static pop_cmd_func *const pop_cmd_handlers[POP_CMD_COUNT] = {
    [POP_CMD_USER] = pop_cmd_user,
    [POP_CMD_PASS] = pop_cmd_pass,
    [POP_CMD_APOP] = pop_cmd_apop,
    [POP_CMD_AUTH] = pop_cmd_auth,
    [POP_CMD_CAPA] = pop_cmd_capa,
    [POP_CMD_STLS] = pop_cmd_stls,
    [POP_CMD_QUIT] = pop_cmd_quit,
    [POP_CMD_NOOP] = pop_cmd_not_logged_in,
    [POP_CMD_STAT] = pop_cmd_not_logged_in,
    [POP_CMD_LIST] = pop_cmd_not_logged_in,
    [POP_CMD_RETR] = pop_cmd_not_logged_in,
    [POP_CMD_DELE] = pop_cmd_not_logged_in,
    [POP_CMD_RSET] = pop_cmd_not_logged_in,
    [POP_CMD_TOP] = pop_cmd_not_logged_in,
    [POP_CMD_UIDL] = pop_cmd_not_logged_in,
};

static void pop_command(struct pop_session *s, const char *line, size_t len)
{
    struct pop_command cmd;
    const char *error;

    if (pop_command_parse(line, len, (size_t)s->conf->max_line, &cmd, &error) != POP_PARSE_OK) {
        pop_bad_command(s, error);
        return;
    }
    pop_cmd_handlers[cmd.cmd](s, &cmd);
}

/* Handle every complete line buffered, in order, until the session has to
   wait (lookup, backend, TLS) or the client has too much unread output. */
static void pop_client_input(struct pop_session *s)
{
    const char *line;
    size_t len;
    int ret;

    if (s->in_input)
        return;   /* the outer loop goes on where this one would start */
    s->in_input = true;
    while (s->state == POP_STATE_AUTHORIZATION || s->state == POP_STATE_SASL_CONT) {
        if (gw_conn_unsent(s->client) > POP_OUTPUT_HIGH_WATER) {
            s->output_blocked = true;
            gw_conn_pause(s->client);
            gw_conn_notify_drained(s->client);
            break;
        }
        ret = gw_conn_read_line(s->client, &line, &len);
        if (ret == 0)
            break;
        if (ret == GW_ERR_EOF) {
            gw_log(GW_LOG_DEBUG, s->client, "client disconnected before login");
            pop_client_finish(s, NULL);
            break;
        }
        if (ret == GW_ERR_TOO_LONG) {
            s->state = POP_STATE_AUTHORIZATION;   /* also ends an AUTH exchange */
            pop_bad_command(s, "Line too long.");
            continue;
        }
        if (ret < 0) {
            pop_client_abort(s);
            break;
        }
        if (s->state == POP_STATE_SASL_CONT)
            pop_sasl_response(s, line, len);
        else
            pop_command(s, line, len);
    }
    /* s is still referenced by the entry point that called us. */
    s->in_input = false;
}

/* ---- client events ----------------------------------------------------- */

static void pop_client_timeout(struct pop_session *s)
{
    switch (s->state) {
    case POP_STATE_AUTHENTICATING:
    case POP_STATE_BACKEND:
        gw_log(GW_LOG_WARN, s->client, "disconnected: login timeout while %s",
               s->state == POP_STATE_BACKEND ? pop_be_state_names[s->be_state]
                                             : "authenticating");
        pop_client_finish(s, "-ERR [SYS/TEMP] Login timed out, try again later.");
        break;
    case POP_STATE_STLS_FLUSH:
    case POP_STATE_TLS_HANDSHAKE:
        gw_log(GW_LOG_INFO, s->client, "disconnected: login timeout during STLS");
        pop_client_abort(s);
        break;
    case POP_STATE_AUTHORIZATION:
    case POP_STATE_SASL_CONT:
        gw_log(GW_LOG_INFO, s->client, "disconnected: login timeout");
        pop_client_finish(s, "-ERR Disconnected for inactivity.");
        break;
    case POP_STATE_CLOSED:
        break;
    }
}

static void pop_client_drained(struct pop_session *s)
{
    if (s->state == POP_STATE_STLS_FLUSH) {
        s->state = POP_STATE_TLS_HANDSHAKE;
        gw_conn_resume(s->client);
        if (gw_conn_starttls(s->client) < 0) {
            gw_log(GW_LOG_ERROR, s->client, "STLS: TLS is not available on this connection");
            pop_client_abort(s);
        }
        return;
    }
    if (s->output_blocked) {
        s->output_blocked = false;
        if (s->state == POP_STATE_AUTHORIZATION || s->state == POP_STATE_SASL_CONT) {
            gw_conn_resume(s->client);
            pop_client_input(s);
        }
    }
}

static void pop_client_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct pop_session *s = arg;

    pop_session_ref(s);
    if (s->state == POP_STATE_CLOSED || c != s->client)
        goto out;

    switch (ev) {
    case GW_EV_READ:
        /* While waiting, lines stay buffered for later. */
        pop_client_input(s);
        break;
    case GW_EV_EOF:
        if (s->state == POP_STATE_STLS_FLUSH || s->state == POP_STATE_TLS_HANDSHAKE) {
            pop_client_abort(s);
            break;
        }
        /* While a login is in flight we finish it (bounded by the
           timeouts): a client may half-close after pipelining its
           commands and still read the answers. */
        pop_client_input(s);
        break;
    case GW_EV_TIMEOUT:
        pop_client_timeout(s);
        break;
    case GW_EV_ERROR:
        gw_log(GW_LOG_DEBUG, c, "client connection error before login");
        pop_client_abort(s);
        break;
    case GW_EV_TLS_DONE:
        if (s->state == POP_STATE_TLS_HANDSHAKE) {
            /* RFC 2595: a fresh start; nothing from before TLS is kept. */
            s->state = POP_STATE_AUTHORIZATION;
            pop_forget_login(s);
            pop_client_input(s);
        }
        break;
    case GW_EV_DRAINED:
        pop_client_drained(s);
        break;
    case GW_EV_CONNECTED:
        break;
    }
out:
    pop_session_unref(&s);
}

/* ---- plugin hooks ------------------------------------------------------ */

void pop_session_accept(struct gw_plugin_ctx *ctx, struct gw_conn *client)
{
    struct pop_session *s = gw_calloc(1, sizeof(*s));
    const char *greeting;

    s->conf = gw_plugin_conf(ctx);
    s->worker = gw_plugin_data(ctx);
    s->client = client;
    s->state = POP_STATE_AUTHORIZATION;
    s->refs = 1;   /* open */
    if (s->worker != NULL) {
        s->next = s->worker->sessions;
        if (s->next != NULL)
            s->next->prev = s;
        s->worker->sessions = s;
        s->worker->nsessions++;
    }
    greeting = s->conf->greeting != NULL ? s->conf->greeting : POP_DEFAULT_GREETING;

    pop_session_ref(s);
    gw_conn_set_handler(client, pop_client_event, s);
    gw_conn_set_timeout(client, s->conf->login_timeout);
    (void)pop_reply(s, "+OK %s ready.", greeting);
    pop_session_unref(&s);
}

void pop_sessions_destroy_all(struct pop_worker *w)
{
    struct pop_session *s;

    while ((s = w->sessions) != NULL) {
        /* The worker has closed and freed every connection before calling
           stop(): forget ours without touching them. Lookups are still
           valid (the directory goes after the plugins) and are cancelled.
           No entry point is running, so the open reference is the last. */
        s->client = NULL;
        s->upstream = NULL;
        if (s->refs != 1 || s->state == POP_STATE_CLOSED) {
            if (s->lookup != NULL)
                gw_lookup_cancel(&s->lookup);
            s->refs = 1;
            s->state = POP_STATE_CLOSED;
            pop_session_unref(&s);
            continue;
        }
        pop_session_release(s);
    }
}
