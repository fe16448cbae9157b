/*
 * IMAP plugin, private declarations shared by imap.c (descriptor and
 * configuration), imap_session.c (the per-client state machine) and
 * imap_backend.c (the login to the backend).
 */
#ifndef IMAP_H
#define IMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/gateway.h"
#include "imap_parse.h"

/* The protocol name: protocols.imap in gateway.yaml, services.imap on servers. */
#define IMAP_PROTOCOL "imap"

#define IMAP_DEFAULT_GREETING "gatewayd ready."
#define IMAP_GREETING_MAX 200

/* Before any backend was contacted: what Dovecot 2.3 announces, filtered
   (imap_caps_prelogin) to what the gateway handles before login. */
#define IMAP_DEFAULT_BACKEND_CAPS "IMAP4rev1 ENABLE IDLE LITERAL+"

/* Limits that are not configuration keys: sizes of what we build. */
#define IMAP_CAPS_MAX 2048           /* a capability list we keep or announce */
#define IMAP_USER_MAX 255            /* login names (RFC 4616 authcid bound) */
#define IMAP_PASSWORD_MAX 1024       /* passwords (RFC 4616 passwd bound we use) */
#define IMAP_SASL_LINE_MAX 4096      /* a client's AUTHENTICATE response line */
#define IMAP_LOG_EXCERPT 160         /* bytes of a peer's line quoted in a log */
#define IMAP_CLOSE_FLUSH_MS 5000     /* writing the last reply before closing */
#define IMAP_OUTPUT_HIGH_WATER 16384 /* stop reading commands while this much is unsent */

/* How the backend learns the client's address. */
enum imap_forward {
    IMAP_FORWARD_ID,     /* IMAP ID with x-originating-ip and friends (Dovecot) */
    IMAP_FORWARD_NONE,   /* nothing (or the core's PROXY v2 header: proxy_protocol
                            on the server's imap service) */
};

/* protocols.imap in gateway.yaml; filled by the core from imap_conf_keys. */
struct imap_conf {
    char *greeting;          /* "* OK [CAPABILITY ...] <greeting>" */
    long login_timeout;      /* ms from accept until logged in to the backend */
    long backend_timeout;    /* ms for each step of the backend login */
    long idle_timeout;       /* ms a relayed session may be silent (IDLE: >= 30 min) */
    long max_bad_commands;   /* the Nth bad command closes the connection */
    long max_line;           /* command line octets, CRLF included */
    long max_literal;        /* octets of one literal before login */
    long max_tag;            /* octets of a command tag */
    char *forward;           /* "id" or "none" */
    bool referral;           /* RFC 2221 login referrals to other sites */
    char *master_user;       /* log in to backends as "<user><sep><master_user>" */
    char *master_password;
    char *master_separator;  /* default "*" (Dovecot's auth_master_user_separator) */
};

/* How often the pre-login capabilities are re-read from the health checks'
   greetings (gw_backend_greeting) at most. */
#define IMAP_CAPS_REFRESH_MS 1000
/* Servers looked at for a greeting with capabilities. */
#define IMAP_CAPS_SERVERS 16

/* Per-worker plugin data: the live sessions, so stop() can free them, and
   the pre-login capabilities learned from backends: from the greetings the
   health checks read, and from every backend login. */
struct imap_session;
struct imap_worker {
    struct imap_session *sessions;
    unsigned long nsessions;
    char caps[IMAP_CAPS_MAX];          /* imap_caps_prelogin() of a backend's list */
    unsigned long long caps_checked;   /* gw_now_ms() of the last health-check look */
};

/* imap.c */
enum imap_forward imap_conf_forward(const struct imap_conf *conf);

/* imap_session.c */
void imap_session_accept(struct gw_plugin_ctx *ctx, struct gw_conn *client);
/* At worker stop (the core has freed every connection): cancel every
   lookup and free every session of this worker. */
void imap_sessions_destroy_all(struct imap_worker *w);

/* ---- the session, shared by imap_session.c and imap_backend.c ---------- */

/* Our tags toward the backend: "gw" and a counter. */
#define IMAP_BE_TAG_MAX 16
/* The parts of a backend login separated by continuation requests:
   "LOGIN {u}" / "user {p}" / "pass", or "AUTHENTICATE PLAIN" / response. */
#define IMAP_BE_PARTS_MAX 3

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

/* imap_session.c: the client side and the session's lifetime.
   Entry points hold a reference while they run (imap_session_ref); the
   last imap_session_unref() frees the session and NULLs *sp.
   imap_session_release() drops everything but the client connection: the
   session becomes CLOSED and loses its "open" reference. */
void imap_session_ref(struct imap_session *s);
void imap_session_unref(struct imap_session **sp);
void imap_session_release(struct imap_session *s);
/* One or more reply lines to the client; the final CRLF is added. Returns
   -1 (and the session is closed) when the client does not read its output. */
int imap_reply(struct imap_session *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A login failed: close the backend, answer the login's tag (or "*") with
   the text ("NO [...] ..."), forget the credentials, and go on with the
   commands the client pipelined meanwhile, not authenticated. */
void imap_login_failed(struct imap_session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* A growing buffer (a login, ID pairs): the old storage is wiped when it
   grows; the owner frees `data`, wiping it first when it holds a secret.
   Start from { NULL, 0, 0 }. */
struct imap_buf {
    char *data;
    size_t len, size;
};
void imap_buf_add(struct imap_buf *b, const char *data, size_t len);
void imap_buf_str(struct imap_buf *b, const char *s);

/* imap_backend.c: the login to the backend.
   imap_backend_start: the directory accepted the login (s->login_user and
   s->password set, s->state AUTHENTICATING): connect to the mailbox's
   backend and log in there. Ends with the client's login answered and both
   connections relayed (the session released), or imap_login_failed().
   imap_backend_close: close the backend connection, if any, and forget
   what was learnt from it (imap_backend_forget: the login parts, wiped, and
   the backend's capabilities).
   imap_backend_state_name: what the backend login is doing, for logs. */
void imap_backend_start(struct imap_session *s, const struct gw_mailbox *mbox);
void imap_backend_close(struct imap_session *s);
void imap_backend_forget(struct imap_session *s);
const char *imap_backend_state_name(enum imap_be_state st);

#endif
