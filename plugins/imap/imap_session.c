/*
 * IMAP session: the not-authenticated state toward the client (RFC 3501 and
 * 9051, STARTTLS, LOGIN, AUTHENTICATE PLAIN with SASL-IR, ID, LITERAL+), the
 * directory lookup, a login referral or the login to the backend on the
 * client's behalf. Once the backend accepts the login the client gets a
 * tagged OK with the backend's capabilities, and client and backend are
 * handed to the core's relay; this file forgets them.
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
#include <arpa/inet.h>
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
/* Our tags toward the backend: "gw" and a counter. */
#define IMAP_BE_TAG_MAX 16
/* The parts of a backend login separated by continuation requests:
   "LOGIN {u}" / "user {p}" / "pass", or "AUTHENTICATE PLAIN" / response. */
#define IMAP_BE_PARTS_MAX 3
/* PROXY protocol v2 header: 16 octets and two IPv6 addresses and ports. */
#define IMAP_PROXY_V2_MAX 52

enum imap_state {
    IMAP_STATE_NOT_AUTH,        /* reading commands from the client */
    IMAP_STATE_SASL_CONT,       /* sent "+ " to AUTHENTICATE PLAIN; reading the response line */
    IMAP_STATE_STARTTLS_FLUSH,  /* answered STARTTLS; waiting for it to be written, client paused */
    IMAP_STATE_TLS_HANDSHAKE,   /* client TLS handshake in progress */
    IMAP_STATE_AUTHENTICATING,  /* directory lookup in flight; client paused */
    IMAP_STATE_BACKEND,         /* logging in to the backend (be_state); client paused */
    IMAP_STATE_CLOSED,          /* client closed or relayed; freed when the last reference goes */
};

/* Each "sent X" state waits for the backend's answer to X. */
enum imap_be_state {
    IMAP_BE_NONE,            /* no backend connection */
    IMAP_BE_CONNECTING,      /* connect (and implicit TLS) in progress */
    IMAP_BE_GREETING,        /* connected; waiting for the "* OK" greeting */
    IMAP_BE_STARTTLS,        /* sent STARTTLS; waiting for its tagged OK */
    IMAP_BE_TLS,             /* TLS handshake with the backend in progress */
    IMAP_BE_CAPABILITY,      /* sent CAPABILITY before login; waiting for its tagged OK */
    IMAP_BE_ID,              /* sent ID, the login pipelined behind it; waiting for ID's answer */
    IMAP_BE_CONT,            /* sent the login up to a point that needs a "+" continuation */
    IMAP_BE_LOGIN,           /* sent the whole login; waiting for its tagged answer */
    IMAP_BE_POST_CAPABILITY, /* logged in, no capabilities seen; sent CAPABILITY */
};

static const char *const imap_be_state_names[] = {
    [IMAP_BE_NONE] = "idle",
    [IMAP_BE_CONNECTING] = "connecting",
    [IMAP_BE_GREETING] = "waiting for the greeting",
    [IMAP_BE_STARTTLS] = "starting TLS",
    [IMAP_BE_TLS] = "in the TLS handshake",
    [IMAP_BE_CAPABILITY] = "asking for capabilities",
    [IMAP_BE_ID] = "sending ID",
    [IMAP_BE_CONT] = "waiting for a continuation",
    [IMAP_BE_LOGIN] = "logging in",
    [IMAP_BE_POST_CAPABILITY] = "asking for capabilities after login",
};

enum imap_method {
    IMAP_METHOD_LOGIN,
    IMAP_METHOD_PLAIN,
};

struct imap_session {
    struct imap_session *next, *prev;  /* the worker's live sessions */
    struct imap_worker *worker;        /* NULL if the plugin was not started */
    const struct imap_conf *conf;
    struct gw_conn *client;
    struct gw_conn *upstream;
    struct gw_lookup *lookup;
    enum imap_state state;
    enum imap_be_state be_state;
    enum imap_method method;
    unsigned refs;                     /* 1 while open, +1 per entry point running */
    unsigned long bad_commands;
    unsigned be_tagno;                 /* last backend tag number used */
    bool lookup_pending;               /* gw_authenticate() called, callback not yet */
    bool in_input;                     /* inside imap_client_input(): do not recurse */
    bool output_blocked;               /* paused until the client reads our replies */
    bool client_eof;                   /* the client closed its side */
    bool be_caps_known;                /* be_caps holds the backend's pre-login list */
    char *tag;                         /* the client's tag of the login in flight */
    char *user;                        /* as the client gave it */
    char *password;                    /* secret: wiped once sent to the backend */
    char *login_user;                  /* canonical name from the directory */
    char *client_id;                   /* the client's ID pairs, encoded, or NULL */
    char *be_caps;                     /* the backend's capabilities (pre-login) */
    char *be_post_caps;                /* ... and after login, from "* CAPABILITY" */
    char *be_parts[IMAP_BE_PARTS_MAX]; /* secret: the login, split at continuations */
    unsigned be_nparts, be_next_part;
    char be_expect[IMAP_BE_TAG_MAX];   /* the tag whose answer we wait for */
    char be_login_tag[IMAP_BE_TAG_MAX];
    struct imap_parser parser;         /* last: it holds an 8 KiB arena */
};

typedef void imap_cmd_func(struct imap_session *s, const struct imap_parser *p);

static void imap_client_input(struct imap_session *s);
static void imap_backend_prelogin(struct imap_session *s);
static void imap_upstream_event(struct gw_conn *c, enum gw_conn_event ev, void *arg);

/* ---- lifetime ---------------------------------------------------------- */

static void imap_session_ref(struct imap_session *s)
{
    s->refs++;
}

static void imap_backend_forget(struct imap_session *s)
{
    for (unsigned i = 0; i < IMAP_BE_PARTS_MAX; i++)
        gw_free_secret(&s->be_parts[i]);
    s->be_nparts = s->be_next_part = 0;
    free(s->be_caps);
    s->be_caps = NULL;
    free(s->be_post_caps);
    s->be_post_caps = NULL;
    s->be_caps_known = false;
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

static void imap_session_unref(struct imap_session **sp)
{
    struct imap_session *s = *sp;

    *sp = NULL;
    if (--s->refs == 0)
        imap_session_free(s);
}

static void imap_backend_close(struct imap_session *s)
{
    if (s->upstream != NULL) {
        gw_conn_set_handler(s->upstream, NULL, NULL);
        gw_conn_close(s->upstream);
        s->upstream = NULL;
    }
    s->be_state = IMAP_BE_NONE;
    imap_backend_forget(s);
}

/* Drop everything but the client connection; the session becomes CLOSED
   and loses its "open" reference. */
static void imap_session_release(struct imap_session *s)
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
static int imap_reply(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int imap_reply(struct imap_session *s, const char *fmt, ...)
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
static void imap_login_failed(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void imap_login_failed(struct imap_session *s, const char *fmt, ...)
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

/* ---- backend login ----------------------------------------------------- */

static void imap_backend_wait(struct imap_session *s, enum imap_be_state st)
{
    s->be_state = st;
    gw_conn_set_timeout(s->upstream, s->conf->backend_timeout);
}

/* The backend failed (unreachable, timeout, garbage): log why, tell the
   client to try later, stay not authenticated. */
static void imap_backend_fail(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void imap_backend_fail(struct imap_session *s, const char *fmt, ...)
{
    char why[512];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    gw_log(GW_LOG_WARN, s->upstream != NULL ? s->upstream : s->client,
           "login failed: user=%s: backend %s: %s", s->login_user != NULL ? s->login_user : "?",
           s->upstream != NULL ? gw_upstream_server(s->upstream) : "-", why);
    imap_login_failed(s, "NO [UNAVAILABLE] Backend unavailable, try again later.");
}

static void imap_backend_fail_line(struct imap_session *s, const char *what, const char *line,
                                   size_t len)
{
    char excerpt[IMAP_LOG_EXCERPT + 1];

    gw_log_sanitize(line, len, excerpt, sizeof(excerpt));
    imap_backend_fail(s, "%s while %s: \"%s\"", what, imap_be_state_names[s->be_state], excerpt);
}

/* The next backend tag into `tag`. */
static void imap_be_next_tag(struct imap_session *s, char *tag)
{
    snprintf(tag, IMAP_BE_TAG_MAX, "gw%u", ++s->be_tagno);
}

/* Send a command with a new tag, which becomes the one we wait for. */
static int imap_backend_command(struct imap_session *s, const char *command)
{
    imap_be_next_tag(s, s->be_expect);
    if (gw_conn_printf(s->upstream, "%s %s\r\n", s->be_expect, command) < 0) {
        imap_backend_fail(s, "cannot send %s", command);
        return -1;
    }
    return 0;
}

/* Whether a string can go into a quoted string for any backend: printable
   7-bit only (8-bit quoted strings are an IMAP4rev2/UTF8 matter). */
static bool imap_quotable7(const char *s)
{
    for (size_t i = 0; s[i] != '\0'; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f)
            return false;
    }
    return true;
}

/* Append to a growing secret buffer (wiped before it is freed). */
struct imap_buf {
    char *data;
    size_t len, size;
};

static void imap_buf_add(struct imap_buf *b, const char *data, size_t len)
{
    if (b->len + len + 1 > b->size) {
        size_t size = (b->len + len + 1) * 2;
        char *n = gw_malloc(size);

        if (b->data != NULL) {
            memcpy(n, b->data, b->len);
            explicit_bzero(b->data, b->size);
            free(b->data);
        }
        b->data = n;
        b->size = size;
    }
    memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

static void imap_buf_str(struct imap_buf *b, const char *s)
{
    imap_buf_add(b, s, strlen(s));
}

/* The login part being built is complete: it waits for a "+" after it. */
static void imap_buf_to_part(struct imap_session *s, struct imap_buf *b)
{
    s->be_parts[s->be_nparts++] = b->data;
    b->data = NULL;
    b->len = b->size = 0;
}

/* One LOGIN argument: quoted, LITERAL+, or a synchronizing literal that
   ends the current part. */
static void imap_login_arg(struct imap_session *s, struct imap_buf *b, const char *arg,
                           bool literal_plus)
{
    size_t len = strlen(arg);
    char num[32];

    if (imap_quotable7(arg)) {
        char *q = gw_malloc(2 * len + 3);
        size_t qlen = imap_quote(arg, len, q, 2 * len + 3);

        imap_buf_add(b, q, qlen);
        explicit_bzero(q, 2 * len + 3);
        free(q);
        return;
    }
    snprintf(num, sizeof(num), "{%zu%s}\r\n", len, literal_plus ? "+" : "");
    imap_buf_str(b, num);
    if (!literal_plus)
        imap_buf_to_part(s, b);
    imap_buf_add(b, arg, len);
}

/* Split the login into parts separated by continuation requests:
   AUTHENTICATE PLAIN when the backend offers it (any octet is safe in
   base64), LOGIN otherwise. Wipes the password. Returns -1 on failure. */
static int imap_build_login(struct imap_session *s)
{
    struct imap_slice caps = { s->be_caps != NULL ? s->be_caps : "", 0 };
    const struct imap_conf *conf = s->conf;
    struct imap_buf b = { NULL, 0, 0 };
    char *name, *b64;
    const char *password;

    caps.len = strlen(caps.ptr);
    if (conf->master_user != NULL) {
        name = gw_strfmt("%s%s%s", s->login_user, conf->master_separator, conf->master_user);
        password = conf->master_password;
    } else {
        name = gw_strdup(s->login_user);
        password = s->password;
    }
    imap_be_next_tag(s, s->be_login_tag);
    s->be_nparts = s->be_next_part = 0;
    if (imap_caps_has(caps, "AUTH=PLAIN")) {
        /* RFC 4616 with an empty authzid. */
        size_t size = gw_sasl_plain_encoded_size(0, strlen(name), strlen(password));

        b64 = gw_malloc(size);
        if (gw_sasl_plain_encode(NULL, name, password, b64, size) < 0) {
            free(b64);
            free(name);
            return -1;
        }
        imap_buf_str(&b, s->be_login_tag);
        imap_buf_str(&b, " AUTHENTICATE PLAIN");
        if (imap_caps_has(caps, "SASL-IR")) {
            imap_buf_str(&b, " ");
        } else {
            imap_buf_str(&b, "\r\n");
            imap_buf_to_part(s, &b);
        }
        imap_buf_str(&b, b64);
        explicit_bzero(b64, size);
        free(b64);
    } else {
        bool lplus = imap_caps_has(caps, "LITERAL+");

        imap_buf_str(&b, s->be_login_tag);
        imap_buf_str(&b, " LOGIN ");
        imap_login_arg(s, &b, name, lplus);
        imap_buf_str(&b, " ");
        imap_login_arg(s, &b, password, lplus);
    }
    imap_buf_str(&b, "\r\n");
    imap_buf_to_part(s, &b);
    free(name);
    gw_free_secret(&s->password);
    return 0;
}

/* Send the next part of the login. */
static int imap_backend_send_part(struct imap_session *s)
{
    char **part = &s->be_parts[s->be_next_part++];
    int ret = gw_conn_write(s->upstream, *part, strlen(*part));

    gw_free_secret(part);
    if (ret < 0)
        imap_backend_fail(s, "cannot send the login");
    return ret;
}

/* After the ID answer (or without ID): wait for a "+" or the answer. */
static void imap_backend_login_sent(struct imap_session *s)
{
    memcpy(s->be_expect, s->be_login_tag, sizeof(s->be_expect));
    imap_backend_wait(s, s->be_next_part < s->be_nparts ? IMAP_BE_CONT : IMAP_BE_LOGIN);
}

/* The ID command with the client's address, then the client's own pairs. */
static char *imap_id_command(const struct imap_session *s, const char *tag)
{
    const struct gw_peer *peer = gw_conn_peer(s->client), *local = gw_conn_local(s->client);

    return gw_strfmt("%s ID (\"x-originating-ip\" \"%s\" \"x-originating-port\" \"%u\" "
                     "\"x-connected-ip\" \"%s\" \"x-connected-port\" \"%u\"%s%s)\r\n",
                     tag, peer->addr, peer->port, local->addr, local->port,
                     s->client_id != NULL ? " " : "", s->client_id != NULL ? s->client_id : "");
}

/* The pre-login capabilities are known: learn them, then send ID (if so
   configured) and the login pipelined behind it. */
static void imap_backend_prelogin(struct imap_session *s)
{
    struct imap_slice caps;

    if (!s->be_caps_known) {
        if (imap_backend_command(s, "CAPABILITY") == 0)
            imap_backend_wait(s, IMAP_BE_CAPABILITY);
        return;
    }
    caps.ptr = s->be_caps != NULL ? s->be_caps : "";
    caps.len = strlen(caps.ptr);
    if (s->worker != NULL && caps.len > 0)
        (void)imap_caps_prelogin(caps, s->worker->caps, sizeof(s->worker->caps));
    if (imap_caps_has(caps, "LOGINDISABLED") && !imap_caps_has(caps, "AUTH=PLAIN")) {
        imap_backend_fail(s, "the backend refuses plaintext logins (LOGINDISABLED); configure "
                             "tls: starttls or implicit for it");
        return;
    }
    if (imap_build_login(s) < 0) {
        imap_backend_fail(s, "cannot encode the login");
        return;
    }
    if (imap_conf_forward(s->conf) == IMAP_FORWARD_ID) {
        char *id;
        int ret;

        imap_be_next_tag(s, s->be_expect);
        id = imap_id_command(s, s->be_expect);
        ret = gw_conn_write(s->upstream, id, strlen(id));
        free(id);
        if (ret < 0) {
            imap_backend_fail(s, "cannot send ID");
            return;
        }
        if (imap_backend_send_part(s) == 0)
            imap_backend_wait(s, IMAP_BE_ID);
        return;
    }
    if (imap_backend_send_part(s) == 0)
        imap_backend_login_sent(s);
}

/* Response codes of a refused login that are meant for the client
   (RFC 5530); anything else is a disagreement between directory and
   backend, shown as a temporary failure. */
static bool imap_code_for_client(struct imap_slice name)
{
    static const char *const codes[] = {
        "AUTHENTICATIONFAILED", "AUTHORIZATIONFAILED", "EXPIRED", "PRIVACYREQUIRED",
        "CONTACTADMIN", "UNAVAILABLE", "INUSE", "LIMIT", "SERVERBUG", NULL,
    };

    for (size_t i = 0; codes[i] != NULL; i++) {
        if (imap_slice_eq(name, codes[i]))
            return true;
    }
    return false;
}

static void imap_backend_refused(struct imap_session *s, const struct imap_response *r,
                                 const char *line, size_t len)
{
    char text[IMAP_LOG_EXCERPT + 1], code[64];
    struct imap_slice name = imap_code_name(r->code);

    gw_log_sanitize(line, len, text, sizeof(text));
    gw_log(GW_LOG_INFO, s->upstream, "login failed: user=%s: backend %s refused: %s",
           s->login_user, gw_upstream_server(s->upstream), text);
    if (r->status == IMAP_STATUS_NO && imap_code_for_client(name)) {
        gw_log_sanitize(name.ptr, name.len, code, sizeof(code));
        gw_log_sanitize(r->text.ptr, r->text.len, text, sizeof(text));
        imap_login_failed(s, "NO [%s] %s", code, text[0] != '\0' ? text : "Login failed.");
        return;
    }
    imap_login_failed(s, "NO [UNAVAILABLE] Backend login failed, try again later.");
}

/* Logged in: answer the client's login with the backend's capabilities,
   hand both sides to the relay. */
static void imap_backend_done(struct imap_session *s, const char *text)
{
    struct gw_conn *client = s->client, *up = s->upstream;
    long idle_timeout = s->conf->idle_timeout;
    int ret;

    gw_log(GW_LOG_INFO, client, "login ok: user=%s method=%s backend=%s", s->login_user,
           s->method == IMAP_METHOD_PLAIN ? "AUTHENTICATE PLAIN" : "LOGIN",
           gw_upstream_server(up));
    if (s->be_post_caps != NULL)
        ret = imap_reply(s, "%s OK [CAPABILITY %s] %s", s->tag, s->be_post_caps, text);
    else
        ret = imap_reply(s, "%s OK %s", s->tag, text);
    if (ret < 0)
        return;
    s->upstream = NULL;
    s->be_state = IMAP_BE_NONE;
    gw_conn_set_handler(client, NULL, NULL);
    gw_conn_set_handler(up, NULL, NULL);
    gw_conn_set_timeout(client, 0);
    gw_conn_set_timeout(up, 0);
    gw_conn_resume(client);
    imap_session_release(s);
    /* Commands the client pipelined after its login are still buffered
       and go to the backend first. */
    gw_relay(client, up, idle_timeout);
}

/* The backend's answer to the login. */
static void imap_backend_login_answer(struct imap_session *s, const struct imap_response *r,
                                      const char *line, size_t len)
{
    char text[IMAP_LOG_EXCERPT + 1];

    if (r->status != IMAP_STATUS_OK) {
        imap_backend_refused(s, r, line, len);
        return;
    }
    if (imap_slice_eq(imap_code_name(r->code), "CAPABILITY")) {
        struct imap_slice caps = imap_code_args(r->code);

        free(s->be_post_caps);
        s->be_post_caps = gw_strndup(caps.ptr, caps.len);
    }
    if (s->be_post_caps == NULL) {
        /* A backend that does not volunteer them: ask (RFC 3501 lets the
           client assume nothing after login, but clients do). */
        if (imap_backend_command(s, "CAPABILITY") == 0)
            imap_backend_wait(s, IMAP_BE_POST_CAPABILITY);
        return;
    }
    gw_log_sanitize(r->text.ptr, r->text.len, text, sizeof(text));
    imap_backend_done(s, text[0] != '\0' ? text : "Logged in.");
}

static void imap_backend_untagged(struct imap_session *s, const struct imap_response *r,
                                  const char *line, size_t len)
{
    if (r->status == IMAP_STATUS_BYE) {
        imap_backend_fail_line(s, "disconnected", line, len);
        return;
    }
    if (r->status == IMAP_STATUS_NONE && imap_slice_eq(r->word, "CAPABILITY")) {
        char **dst = s->be_state == IMAP_BE_LOGIN || s->be_state == IMAP_BE_POST_CAPABILITY
                         ? &s->be_post_caps
                         : &s->be_caps;

        free(*dst);
        *dst = gw_strndup(r->text.ptr, r->text.len);
        if (dst == &s->be_caps)
            s->be_caps_known = true;
    }
    /* Other untagged data (ID, OK notes) is of no interest. */
}

static void imap_backend_greeting(struct imap_session *s, const struct imap_response *r,
                                  const char *line, size_t len)
{
    if (r->kind != IMAP_RESP_UNTAGGED || r->status != IMAP_STATUS_OK) {
        imap_backend_fail_line(s, r->status == IMAP_STATUS_PREAUTH ? "PREAUTH greeting"
                                                                   : "bad greeting",
                               line, len);
        return;
    }
    if (imap_slice_eq(imap_code_name(r->code), "CAPABILITY")) {
        struct imap_slice caps = imap_code_args(r->code);

        s->be_caps = gw_strndup(caps.ptr, caps.len);
        s->be_caps_known = true;
    }
    if (gw_upstream_tls(s->upstream) == GW_TLS_STARTTLS) {
        if (imap_backend_command(s, "STARTTLS") == 0)
            imap_backend_wait(s, IMAP_BE_STARTTLS);
        return;
    }
    imap_backend_prelogin(s);
}

static void imap_backend_line(struct imap_session *s, const char *line, size_t len)
{
    struct imap_response r;

    if (imap_response_parse(line, len, &r) != IMAP_PARSE_OK) {
        imap_backend_fail_line(s, "unexpected answer", line, len);
        return;
    }
    if (s->be_state == IMAP_BE_GREETING) {
        imap_backend_greeting(s, &r, line, len);
        return;
    }
    if (r.kind == IMAP_RESP_UNTAGGED) {
        imap_backend_untagged(s, &r, line, len);
        return;
    }
    if (r.kind == IMAP_RESP_CONT) {
        if (s->be_state != IMAP_BE_CONT) {
            imap_backend_fail_line(s, "unexpected continuation", line, len);
            return;
        }
        if (imap_backend_send_part(s) == 0)
            imap_backend_login_sent(s);
        return;
    }
    if (!imap_slice_eq(r.tag, s->be_expect)) {
        imap_backend_fail_line(s, "unexpected tag", line, len);
        return;
    }
    switch (s->be_state) {
    case IMAP_BE_STARTTLS:
        if (r.status != IMAP_STATUS_OK) {
            imap_backend_fail_line(s, "STARTTLS refused", line, len);
            return;
        }
        imap_backend_wait(s, IMAP_BE_TLS);
        if (gw_conn_starttls_client(s->upstream) < 0)
            imap_backend_fail(s, "TLS is not available toward this backend");
        return;
    case IMAP_BE_CAPABILITY:
        if (r.status != IMAP_STATUS_OK || !s->be_caps_known) {
            imap_backend_fail_line(s, "no capabilities", line, len);
            return;
        }
        imap_backend_prelogin(s);
        return;
    case IMAP_BE_ID:
        if (r.status != IMAP_STATUS_OK) {
            char text[IMAP_LOG_EXCERPT + 1];

            gw_log_sanitize(line, len, text, sizeof(text));
            gw_log(GW_LOG_WARN, s->upstream, "backend %s refused ID: %s",
                   gw_upstream_server(s->upstream), text);
        }
        imap_backend_login_sent(s);
        return;
    case IMAP_BE_CONT:
    case IMAP_BE_LOGIN:
        imap_backend_login_answer(s, &r, line, len);
        return;
    case IMAP_BE_POST_CAPABILITY:
        /* Logged in either way; without a list the client asks itself. */
        imap_backend_done(s, "Logged in.");
        return;
    case IMAP_BE_NONE:
    case IMAP_BE_CONNECTING:
    case IMAP_BE_GREETING:
    case IMAP_BE_TLS:
        break;
    }
}

static bool imap_be_reads_lines(enum imap_be_state st)
{
    return st != IMAP_BE_NONE && st != IMAP_BE_CONNECTING && st != IMAP_BE_TLS;
}

static void imap_backend_input(struct imap_session *s)
{
    const char *line;
    size_t len;
    int ret;

    while (s->state == IMAP_STATE_BACKEND && imap_be_reads_lines(s->be_state)) {
        ret = gw_conn_read_line(s->upstream, &line, &len);
        if (ret == 0)
            return;
        if (ret == GW_ERR_EOF) {
            imap_backend_fail(s, "connection closed while %s", imap_be_state_names[s->be_state]);
            return;
        }
        if (ret < 0) {
            imap_backend_fail(s, "over-long line while %s", imap_be_state_names[s->be_state]);
            return;
        }
        imap_backend_line(s, line, len);
    }
}

/* PROXY protocol v2 (haproxy's proxy-protocol.txt, section 2.2): PROXY
   command over TCP with the client's and our addresses, or LOCAL when they
   are not of one family. Returns the header's length. */
static size_t imap_proxy_v2(const struct gw_peer *src, const struct gw_peer *dst,
                            unsigned char *out)
{
    static const unsigned char sig[12] = { 0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                           0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a };
    unsigned char a[16], b[16];
    size_t alen = 0;

    memcpy(out, sig, sizeof(sig));
    out[12] = 0x21;   /* version 2, PROXY */
    if (inet_pton(AF_INET, src->addr, a) == 1 && inet_pton(AF_INET, dst->addr, b) == 1) {
        out[13] = 0x11;   /* TCP over IPv4 */
        alen = 4;
    } else if (inet_pton(AF_INET6, src->addr, a) == 1 && inet_pton(AF_INET6, dst->addr, b) == 1) {
        out[13] = 0x21;   /* TCP over IPv6 */
        alen = 16;
    } else {
        out[12] = 0x20;   /* version 2, LOCAL: the backend uses the connection's own addresses */
        out[13] = 0x00;
        out[14] = out[15] = 0;
        return 16;
    }
    out[14] = 0;
    out[15] = (unsigned char)(2 * alen + 4);
    memcpy(out + 16, a, alen);
    memcpy(out + 16 + alen, b, alen);
    out[16 + 2 * alen] = (unsigned char)(src->port >> 8);
    out[17 + 2 * alen] = (unsigned char)(src->port & 0xff);
    out[18 + 2 * alen] = (unsigned char)(dst->port >> 8);
    out[19 + 2 * alen] = (unsigned char)(dst->port & 0xff);
    return 20 + 2 * alen;
}

static void imap_backend_connected(struct imap_session *s)
{
    if (imap_conf_forward(s->conf) == IMAP_FORWARD_PROXY) {
        unsigned char hdr[IMAP_PROXY_V2_MAX];
        size_t n;

        if (gw_upstream_tls(s->upstream) == GW_TLS_IMPLICIT) {
            /* The core has finished the TLS handshake by now; the header
               had to come before it. */
            gw_log(GW_LOG_ERROR, s->upstream,
                   "forward: proxy is not possible toward an implicit-TLS backend (%s); use "
                   "tls: starttls or none for it, or forward: id",
                   gw_upstream_server(s->upstream));
            imap_backend_fail(s, "cannot send the PROXY header");
            return;
        }
        n = imap_proxy_v2(gw_conn_peer(s->client), gw_conn_local(s->client), hdr);
        if (gw_conn_write(s->upstream, hdr, n) < 0) {
            imap_backend_fail(s, "cannot send the PROXY header");
            return;
        }
    }
    imap_backend_wait(s, IMAP_BE_GREETING);
    imap_backend_input(s);
}

static void imap_upstream_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct imap_session *s = arg;

    imap_session_ref(s);
    if (s->state != IMAP_STATE_BACKEND)
        goto out;
    /* gw_upstream_connect() may report before it has returned. */
    if (s->upstream == NULL && s->be_state == IMAP_BE_CONNECTING)
        s->upstream = c;
    if (c != s->upstream)
        goto out;

    switch (ev) {
    case GW_EV_CONNECTED:
        if (s->be_state == IMAP_BE_CONNECTING)
            imap_backend_connected(s);
        break;
    case GW_EV_READ:
        imap_backend_input(s);
        break;
    case GW_EV_EOF:
        /* Lines before the EOF still count; then GW_ERR_EOF fails. */
        if (imap_be_reads_lines(s->be_state))
            imap_backend_input(s);
        else
            imap_backend_fail(s, "connection closed while %s", imap_be_state_names[s->be_state]);
        break;
    case GW_EV_TIMEOUT:
        imap_backend_fail(s, "timed out while %s", imap_be_state_names[s->be_state]);
        break;
    case GW_EV_ERROR:
        imap_backend_fail(s, "%s", s->be_state == IMAP_BE_CONNECTING ? "cannot connect"
                                   : s->be_state == IMAP_BE_TLS      ? "TLS handshake failed"
                                                                     : "I/O error");
        break;
    case GW_EV_TLS_DONE:
        if (s->be_state == IMAP_BE_TLS) {
            /* RFC 3501 6.2.1: what was learnt before TLS is void. */
            free(s->be_caps);
            s->be_caps = NULL;
            s->be_caps_known = false;
            imap_backend_prelogin(s);
        }
        break;
    case GW_EV_DRAINED:
        break;
    }
out:
    imap_session_unref(&s);
}

static void imap_backend_start(struct imap_session *s, const struct gw_mailbox *mbox)
{
    const char *error = NULL;
    struct gw_conn *up;

    s->state = IMAP_STATE_BACKEND;
    s->be_state = IMAP_BE_CONNECTING;
    up = gw_upstream_connect(s->client, mbox, IMAP_PROTOCOL, imap_upstream_event, s, &error);
    if (up == NULL) {
        if (s->state == IMAP_STATE_BACKEND && s->be_state == IMAP_BE_CONNECTING) {
            gw_log(GW_LOG_WARN, s->client, "login failed: user=%s: no backend: %s",
                   s->login_user, error != NULL ? error : "unknown reason");
            imap_login_failed(s, "NO [UNAVAILABLE] No server available, try again later.");
        }
        return;
    }
    /* No timer of ours while connecting: the core's connection timer bounds
       the connect (upstream.connect_timeout) and polls the locator while a
       login is held during a switchover (locator.hold_down). */
    if (s->state == IMAP_STATE_BACKEND && s->be_state == IMAP_BE_CONNECTING)
        s->upstream = up;
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
               s->state == IMAP_STATE_BACKEND ? imap_be_state_names[s->be_state]
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
