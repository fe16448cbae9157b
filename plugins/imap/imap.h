/*
 * IMAP plugin, private declarations shared by imap.c (descriptor and
 * configuration) and imap_session.c (the per-client state machine).
 */
#ifndef IMAP_H
#define IMAP_H

#include <stdbool.h>

#include "gateway/gateway.h"

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
    IMAP_FORWARD_PROXY,  /* PROXY protocol v2 header before the first byte */
    IMAP_FORWARD_NONE,
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
    char *forward;           /* "id", "proxy" or "none" */
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

#endif
