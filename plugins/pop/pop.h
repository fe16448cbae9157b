/*
 * POP3 plugin, private declarations shared by pop.c (descriptor and
 * configuration) and pop_session.c (the per-client state machine).
 */
#ifndef POP_H
#define POP_H

#include <stdbool.h>

#include "gateway/gateway.h"

/* The protocol name: protocols.pop in gateway.yaml, services.pop on servers. */
#define POP_PROTOCOL "pop"

#define POP_DEFAULT_GREETING "gatewayd POP3"
/* The greeting text must leave room in a 512-octet response (RFC 2449). */
#define POP_GREETING_MAX 200

/* Limits that are not configuration keys: fixed by the RFCs or by the
   size of the replies we build. */
#define POP_REPLY_MAX 512            /* RFC 2449: responses up to 512 octets, CRLF included */
#define POP_USER_MAX 255             /* login names (RFC 4616 authcid bound) */
#define POP_SASL_LINE_LIMIT 8192     /* upper bound of max_sasl_line, sizes a stack buffer */
#define POP_BACKEND_CAPA_LINES 64    /* CAPA lines read from a backend before giving up */
#define POP_LOG_EXCERPT 160          /* bytes of a peer's line quoted in a log */
#define POP_CLOSE_FLUSH_MS 5000      /* writing the last reply before closing */
#define POP_OUTPUT_HIGH_WATER 16384  /* stop reading commands while this much is unsent */

/* protocols.pop in gateway.yaml; filled by the core from pop_conf_keys. */
struct pop_conf {
    char *greeting;          /* "+OK <greeting> ready." */
    long login_timeout;      /* ms from accept until logged in to the backend */
    long backend_timeout;    /* ms for each step of the backend login */
    long max_bad_commands;   /* the Nth bad command closes the connection */
    long max_line;           /* command line octets, CRLF included (RFC 2449: 255) */
    long max_sasl_line;      /* AUTH continuation line octets, CRLF included */
    bool xclient;            /* forward the client address with XCLIENT */
};

/* Per-worker plugin data: the live sessions, so stop() can free them. */
struct pop_session;
struct pop_worker {
    struct pop_session *sessions;
    unsigned long nsessions;
};

/* pop_session.c */
void pop_session_accept(struct gw_plugin_ctx *ctx, struct gw_conn *client);
/* Cancel every lookup, close every connection and free every session of
   this worker (plugin stop). */
void pop_sessions_destroy_all(struct pop_worker *w);

#endif
