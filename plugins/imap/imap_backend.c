/*
 * IMAP login to the backend, on the client's behalf, once the directory has
 * accepted the client's login (imap_session.c): connect to the backend that
 * holds the mailbox, with the client's address ahead in a PROXY v2 header
 * if so configured; read the greeting; STARTTLS when the backend is
 * configured so; learn the pre-login capabilities (from the greeting or
 * CAPABILITY); log in -- AUTHENTICATE PLAIN when offered, with SASL-IR if
 * possible, else LOGIN with quoted strings or literals -- as the user or as
 * the configured master user, behind an ID with the client's address (and
 * the client's own ID pairs) when forward is "id"; learn the post-login
 * capabilities (from the tagged OK or CAPABILITY); then answer the client's
 * login with them and hand both connections to the core's relay.
 *
 * Any failure answers the client's login (imap_login_failed) and closes the
 * backend connection; the client stays not authenticated and may try again.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "imap.h"
#include "imap_parse.h"

/* PROXY protocol v2 header: 16 octets and two IPv6 addresses and ports. */

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

static void imap_backend_prelogin(struct imap_session *s);
static void imap_upstream_event(struct gw_conn *c, enum gw_conn_event ev, void *arg);

const char *imap_backend_state_name(enum imap_be_state st)
{
    return imap_be_state_names[st];
}

/* ---- lifetime ---------------------------------------------------------- */

void imap_backend_forget(struct imap_session *s)
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

void imap_backend_close(struct imap_session *s)
{
    if (s->upstream != NULL) {
        gw_conn_set_handler(s->upstream, NULL, NULL);
        gw_conn_close(s->upstream);
        s->upstream = NULL;
    }
    s->be_state = IMAP_BE_NONE;
    imap_backend_forget(s);
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

/* Append to a growing secret buffer (wiped before it is grown or freed). */
void imap_buf_add(struct imap_buf *b, const char *data, size_t len)
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

void imap_buf_str(struct imap_buf *b, const char *s)
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

/* Send the next part of the login, behind `prefix` (the ID command) in
   the same write when there is one: one segment, one wake-up of the
   backend and, for its answers, of this worker. */
static int imap_backend_send_part(struct imap_session *s, const char *prefix)
{
    char **part = &s->be_parts[s->be_next_part++];
    int ret;

    if (prefix != NULL) {
        char *both = gw_strfmt("%s%s", prefix, *part);
        ret = gw_conn_write(s->upstream, both, strlen(both));
        gw_free_secret(&both);
    } else {
        ret = gw_conn_write(s->upstream, *part, strlen(*part));
    }
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
        ret = imap_backend_send_part(s, id);
        free(id);
        if (ret == 0)
            imap_backend_wait(s, IMAP_BE_ID);
        return;
    }
    if (imap_backend_send_part(s, NULL) == 0)
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
        if (imap_backend_send_part(s, NULL) == 0)
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

static void imap_backend_connected(struct imap_session *s)
{
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

void imap_backend_start(struct imap_session *s, const struct gw_mailbox *mbox)
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
