/*
 * The services the core gives every plugin: directory lookups, routing,
 * upstream connections, the relay, and logging. All asynchronous: a call
 * starts the work and a callback delivers the result on the same worker loop.
 * A plugin includes only this header.
 */
#ifndef GW_GATEWAY_H
#define GW_GATEWAY_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#include "gateway/conn.h"
#include "gateway/plugin.h"
#include "gateway/sasl.h"

/* ---- logging -------------------------------------------------------- */

enum gw_log_level { GW_LOG_ERROR, GW_LOG_WARN, GW_LOG_INFO, GW_LOG_DEBUG };

/* One log line, with the connection's context (protocol, client address,
   user, backend) added by the core when `c` is not NULL. Never pass a secret. */
void gw_log(enum gw_log_level level, const struct gw_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
bool gw_log_enabled(enum gw_log_level level);

/* Make a peer's bytes fit for a log line or an error text: copy at most
   outsize - 1 octets of `in` (any octet, NUL included) to `out`, replacing
   control characters (C0 and DEL) with '?', keeping 8-bit octets (UTF-8),
   and NUL-terminate. Returns the length written; with outsize 0, nothing
   is written. Pure. */
size_t gw_log_sanitize(const char *in, size_t len, char *out, size_t outsize);

/* ---- memory --------------------------------------------------------- */

/* Allocation that aborts with a log line on exhaustion. */
void *gw_malloc(size_t n);
void *gw_calloc(size_t n, size_t size);
char *gw_strdup(const char *s);
char *gw_strndup(const char *s, size_t n);
/* printf into a new allocation (never NULL). */
char *gw_strfmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Wipe a secret (OPENSSL_cleanse) and free it; NULLs the pointer. */
void gw_free_secret(char **s);

/* ---- directory ------------------------------------------------------ */

/* A user's mailbox as the directory knows it. Strings are owned by the
   core and valid until the callback returns (copy what you keep). */
struct gw_mailbox {
    const char *user;        /* canonical login name */
    const char *database;    /* mailbox database */
    int version;             /* mailbox version (e.g. 15) */
    const char *site;        /* site the database lives in, or NULL */
    const char *sip_uri;     /* SIP URI user part, or NULL */
    const char *extension;   /* telephone extension, or NULL */
};

enum gw_auth_result {
    GW_AUTH_OK,
    GW_AUTH_UNKNOWN_USER,
    GW_AUTH_BAD_PASSWORD,
    GW_AUTH_DISABLED,
    GW_AUTH_UNAVAILABLE,     /* directory down, slow or misconfigured */
    GW_AUTH_THROTTLED,       /* too many failures for this user or address */
};
const char *gw_auth_result_str(enum gw_auth_result r);

struct gw_lookup;
/* mbox is NULL unless res == GW_AUTH_OK. */
typedef void gw_lookup_cb(void *arg, enum gw_auth_result res, const struct gw_mailbox *mbox);

/*
 * Verify user/password and find the mailbox. Failures are delivered after
 * the configured auth failure delay. `c` (may be NULL) gives the client
 * address for penalties and log context. The password is copied and wiped.
 * Returns a handle to cancel with gw_lookup_cancel() (e.g. when the client
 * goes away); the callback is then never called. The handle is invalid
 * once the callback has been called.
 */
struct gw_lookup *gw_authenticate(struct gw_conn *c, const char *user, const char *password,
                                  gw_lookup_cb *cb, void *arg);

/* Find a mailbox without a password: by login name, SIP URI user or
   extension (whichever matches first). */
struct gw_lookup *gw_resolve(const char *key, gw_lookup_cb *cb, void *arg);
void gw_lookup_cancel(struct gw_lookup **l);

/* ---- routing -------------------------------------------------------- */

enum gw_route_kind {
    GW_ROUTE_PROXY,     /* connect to host:port */
    GW_ROUTE_REDIRECT,  /* send the client to url */
    GW_ROUTE_REFUSE,    /* temporary failure (reason says why) */
};

struct gw_route {
    enum gw_route_kind kind;
    const char *server;      /* server name, for logs */
    const char *host;        /* address to connect to */
    unsigned port;
    enum gw_tls_mode tls;    /* how to speak to the backend */
    bool proxy_protocol;     /* the core sends a PROXY v2 header first */
    const char *url;         /* REDIRECT: base URL of the other site */
    const char *reason;      /* REFUSE: why, for the log */
};

/* Where a new session for this mailbox and protocol goes, right now.
   With GW_ROUTE_ALLOW_REDIRECT, a mailbox in another site that has an
   external URL gives GW_ROUTE_REDIRECT; otherwise it is proxied.
   Pointers are valid until the worker returns to its loop. */
#define GW_ROUTE_ALLOW_REDIRECT 0x1
void gw_route(const struct gw_mailbox *mbox, const char *protocol, unsigned flags,
              struct gw_route *route_r);

/* Every server that could serve this mailbox for `protocol` right now, best
   first (the same order gw_route() would try them). Returns how many were
   written to routes_r (at most max). For SIP's alternative Contacts. */
size_t gw_route_all(const struct gw_mailbox *mbox, const char *protocol,
                    struct gw_route *routes_r, size_t max);

/* Every healthy, non-draining server offering `protocol`, in configuration
   order (for pilot numbers and anonymous requests: the caller spreads load,
   e.g. round robin). Returns the count written (at most max). */
size_t gw_servers_for(const char *protocol, struct gw_route *routes_r, size_t max);

/* The last greeting line the health checks read from `server`'s service
   for `protocol` (e.g. an IMAP "* OK [CAPABILITY ...]"), or NULL. */
const char *gw_backend_greeting(const char *server, const char *protocol);

/* ---- upstream ------------------------------------------------------- */

/*
 * Connect to the backend that holds the mailbox's active copy for
 * `protocol`: route, connect (with the configured timeout), implicit TLS
 * when the server is configured so. On refusal or timeout the server is
 * marked suspect and the next copy is tried, within bounds. Delivers
 * GW_EV_CONNECTED (then gw_upstream_tls() says whether the plugin must
 * still negotiate STARTTLS in its protocol) or GW_EV_ERROR to `h`.
 * On immediate failure returns NULL and sets *error_r (route refused).
 * The returned connection is logged with the client's context.
 */
struct gw_conn *gw_upstream_connect(struct gw_conn *client, const struct gw_mailbox *mbox,
                                    const char *protocol, gw_conn_handler *h, void *arg,
                                    const char **error_r);
/* Connect to one given server (from gw_servers_for() or gw_route()), with
   no retry elsewhere: for requests that are not tied to a mailbox. The route's
   strings must stay valid (those from the locator do). Events as above. */
struct gw_conn *gw_upstream_connect_route(struct gw_conn *client, const struct gw_route *route,
                                          const char *protocol, gw_conn_handler *h, void *arg,
                                          const char **error_r);

/* The TLS mode configured for the backend this upstream goes to. */
enum gw_tls_mode gw_upstream_tls(const struct gw_conn *upstream);
/* The backend server's name (for log lines and greetings). */
const char *gw_upstream_server(const struct gw_conn *upstream);

/*
 * Hand both connections to the core's byte pump: bytes already buffered on
 * either side are forwarded first, then data flows both ways with
 * backpressure and half-close, until both sides are done or the idle
 * timeout (ms, 0 = the protocol's default) expires. The core owns and closes
 * both connections from here on; the plugin must forget them.
 */
void gw_relay(struct gw_conn *client, struct gw_conn *upstream, long idle_timeout_ms);

/* ---- timers -------------------------------------------------------- */

/* A one-shot timer on the worker loop. */
struct gw_timer;
struct gw_timer *gw_timer_create(void (*cb)(void *arg), void *arg);
void gw_timer_start(struct gw_timer *t, long ms);   /* (re)arm */
void gw_timer_stop(struct gw_timer *t);
void gw_timer_destroy(struct gw_timer **t);
/* Monotonic milliseconds of the worker loop (cheap: cached per iteration). */
unsigned long long gw_now_ms(void);

/* The worker is draining (see gw_plugin.drain): a keep-alive protocol
   answers the request in flight and closes instead of waiting for more. */
bool gw_draining(void);

/* ---- base64 (SASL) ---------------------------------------------------- */

/* Decode into out (size outsize); returns the decoded length or -1. */
long gw_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outsize);
/* Encode; returns the encoded length (without NUL) or -1 if out is small. */
long gw_base64_encode(const unsigned char *in, size_t inlen, char *out, size_t outsize);

#endif
