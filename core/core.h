/*
 * Core-internal declarations shared between core/ files. Plugins never see
 * this header; their contract is include/gateway/.
 */
#ifndef GW_CORE_H
#define GW_CORE_H

#include <ev.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "gateway/gateway.h"

#define GW_CONTAINER_OF(ptr, type, member) ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

/* ---- limits (named, one place) --------------------------------------- */

#define GW_LINE_BUF_SIZE      8192u    /* input buffer before relay: longest line + slack */
#define GW_OUT_BUF_LIMIT      (256u * 1024u) /* output queued for a slow peer before refusing */
#define GW_RELAY_CHUNK        (64u * 1024u)  /* one read in the relay */
#define GW_RELAY_READS_PER_EV 16       /* reads per readiness event, for fairness */
#define GW_RELAY_SPLICE_MIN   (16u * 1024u) /* a read this large: splice the next */
#define GW_RELAY_PIPE_POOL    32       /* empty pipes a worker keeps for splice */
#define GW_ALPN_MAX           256      /* a plugin's ALPN ids, wire format */
#define GW_TLS_HANDSHAKE_MS   10000    /* a TLS handshake must finish in this time */

/* ---- buffers --------------------------------------------------------- */

/* One buffer type: bytes live in data[start, end); cap is the allocation,
   limit the most it may ever hold. Storage is allocated on first use and
   released with gw_buf_release() so idle connections hold none. */
struct gw_buf {
    char *data;
    size_t start, end, cap, limit;
};
void gw_buf_init(struct gw_buf *b, size_t limit);
size_t gw_buf_len(const struct gw_buf *b);
/* Free space at the end, compacting/allocating as needed (up to limit).
   Returns a pointer and sets *room_r (0 when the buffer is at its limit). */
char *gw_buf_space(struct gw_buf *b, size_t *room_r);
/* Append; returns -1 when it would exceed the limit. */
int gw_buf_append(struct gw_buf *b, const void *data, size_t len);
void gw_buf_consume(struct gw_buf *b, size_t n);
void gw_buf_release(struct gw_buf *b);

/* ---- connections ----------------------------------------------------- */

struct gw_listener;
struct gw_relay;
struct gw_upstream;

/* How a connection's bytes move: plain socket or TLS. Return > 0 bytes,
   0 EOF (recv only), GW_IO_AGAIN, or GW_IO_ERROR. */
#define GW_IO_AGAIN (-1)
#define GW_IO_ERROR (-2)
struct gw_transport {
    const char *name;
    ssize_t (*recv)(struct gw_conn *c, void *buf, size_t len);
    ssize_t (*send)(struct gw_conn *c, const void *buf, size_t len);
};

enum gw_conn_mode {
    GW_MODE_SESSION,   /* buffered, events to the plugin's handler */
    GW_MODE_CONNECT,   /* outgoing connect in progress */
    GW_MODE_HANDSHAKE, /* TLS handshake in progress */
    GW_MODE_RELAY,     /* owned by the relay */
};

struct gw_conn {
    int fd;
    enum gw_conn_mode mode;
    const struct gw_transport *tp;
    SSL *ssl;
    bool ssl_server;            /* handshake as server */
    bool ssl_want_write;        /* last SSL op wants the fd writable */
    bool ssl_want_read;         /* last SSL op wants the fd readable */

    ev_io rio, wio;
    ev_timer timer;

    struct gw_buf in, out;
    bool eof, error, closed, paused, discarding, notify_drained, close_after_write;
    bool shut_wr;               /* we sent our FIN (half-close) */
    bool connect_by_read;       /* connecting to a backend that speaks first: its
                                   greeting, not writability, says connected */
    long deferred_timeout;      /* set by the plugin while connecting: applied when ready */

    gw_conn_handler *handler;
    void *arg;

    struct gw_peer peer, local;  /* read with gw_conn_peer/_local: filled on first use */
    bool peer_set, local_set;
    const struct gw_listener *listener;   /* client side */
    struct gw_upstream *upstream;         /* upstream side */
    struct gw_relay *relay;
    const char *protocol;                 /* for log context */
    char *user;
    const char *server;                   /* backend server name, for logs */
    struct gw_conn *client;               /* upstream: the client it serves */

    struct gw_conn *next, *prev;          /* worker's list of live connections */
    struct gw_conn *next_closed;
};

/* Create a connection around a connected, non-blocking socket. */
struct gw_conn *gw_conn_create(int fd, const char *protocol);
/* PROXY protocol v2 header with the client's (src) and the address it
   reached (dst), or LOCAL when either is NULL or they differ in family.
   Returns its length. */
#define GW_PROXY_V2_MAX 52
size_t gw_proxy_v2_header(const struct gw_peer *src, const struct gw_peer *dst,
                          unsigned char out[GW_PROXY_V2_MAX]);

/* An address as text and port, for logs, the directory and the plugins. */
void gw_sockaddr_to_peer(const struct sockaddr_storage *ss, struct gw_peer *p);
/* Recompute which watchers must be active. */
void gw_conn_update_io(struct gw_conn *c);
/* The connection has become usable by its plugin (connected, greeted,
   TLS done): apply the timeout the plugin asked for meanwhile. */
void gw_conn_ready(struct gw_conn *c);
/* Deliver an event to the handler (no-op after close). */
void gw_conn_emit(struct gw_conn *c, enum gw_conn_event ev);
/* Try to write the output buffer; returns -1 on a fatal error. */
int gw_conn_flush(struct gw_conn *c);
/* Start the TLS handshake on c with ctx (server or client side). */
int gw_conn_tls_start(struct gw_conn *c, SSL_CTX *ctx, bool server, const char *sni,
                      const char *verify_host);
/* Free connections closed during this loop iteration. */
void gw_conn_reap(void);
/* Number of live connections in this worker. */
size_t gw_conn_count(void);
/* Close every live connection (worker exit). */
void gw_conn_close_all(void);

/* A health probe: connect to route like an upstream, with `timeout_ms` for
   the connect, no retry, no suspect marking and no log lines. NULL when the
   connect failed at once. */
struct gw_conn *gw_upstream_probe(const struct gw_route *route, const char *protocol,
                                  long timeout_ms, gw_conn_handler *h, void *arg);

/* Whether the core is still waiting for a server-first backend's greeting. */
bool gw_upstream_greeting_pending(const struct gw_conn *up);
/* The mailbox database an upstream was routed for (NULL for fixed routes). */
const char *gw_upstream_database(const struct gw_conn *up);

/* Buffered I/O entry points of connection modes, called by conn.c's io
   callback. */
void gw_relay_io(struct gw_conn *c, int revents);
void gw_relay_timeout(struct gw_conn *c);
void gw_upstream_io(struct gw_conn *c, int revents);
void gw_upstream_handshake_done(struct gw_conn *c, bool ok);
void gw_upstream_destroy(struct gw_conn *c);
void gw_relay_conn_closed(struct gw_conn *c);

/* ---- TLS ------------------------------------------------------------- */

extern const struct gw_transport gw_transport_plain;
extern const struct gw_transport gw_transport_tls;

/* Server context for a listener: certificates (first default, others by
   SNI), minimum version, ciphers, client-certificate policy. */
/* alpn: the plugin's comma-separated ALPN ids, or NULL for none. */
SSL_CTX *gw_tls_server_ctx_create(const struct gw_conf_listener *l, const char *alpn,
                                  char **error_r);
void gw_tls_server_ctx_free(SSL_CTX *ctx);
/* Client context for backends: verification per the upstream config. */
SSL_CTX *gw_tls_client_ctx_create(const struct gw_config *conf, char **error_r);
/* The SSL error queue as one string, for log lines; clears it. */
const char *gw_tls_error_string(void);

/* ---- listeners ------------------------------------------------------- */

struct gw_listener {
    const struct gw_conf_listener *conf;
    struct gw_conf_protocol *proto;
    struct gw_plugin_ctx *pctx;
    int fd;
    SSL_CTX *ssl_ctx;
    ev_io io;
    long active;               /* connections accepted and still open */
    struct gw_peer local;      /* the bound address (wildcard when bound to any) */
    bool local_specific;       /* bound to one address: it is every connection's local one */
    bool paused_full;          /* max_connections reached */
};

/* Bind every listener of every enabled protocol (in the master, before
   forking); a socket of `old` (the running generation, on reload) with the
   same address and transport is shared instead of bound again. Returns 0,
   or -1 with *error_r. */
int gw_listeners_open(struct gw_config *conf, const struct gw_listener *old, size_t nold,
                      struct gw_listener **ls_r, size_t *n_r, char **error_r);
/* Free TLS contexts, close sockets, free the array. */
void gw_listeners_close(struct gw_listener **ls, size_t n);
/* Build TLS contexts (master; also used by -t). */
int gw_listeners_tls(struct gw_listener *ls, size_t n, const char *file, char **error_r);
void gw_listeners_start(struct gw_listener *ls, size_t n);
void gw_listeners_stop(struct gw_listener *ls, size_t n);
void gw_listener_conn_closed(const struct gw_listener *l);

/* ---- worker ---------------------------------------------------------- */

struct gw_plugin_ctx {
    struct gw_conf_protocol *proto;
    void *data;
};

struct gw_worker {
    struct ev_loop *loop;
    struct gw_config *conf;
    struct gw_listener *listeners;
    size_t nlisteners;
    struct gw_plugin_ctx *pctx;   /* one per protocol */
    SSL_CTX *client_ssl_ctx;
    bool stopping;
    unsigned id;
};
/* The worker this process is (one per process). */
extern struct gw_worker gw_w;

int gw_worker_run(struct gw_config *conf, struct gw_listener *ls, size_t nls, unsigned id);

/* ---- directory and locator ------------------------------------------- */

int gw_directory_init(const struct gw_config *conf, char **error_r);
void gw_directory_deinit(void);
int gw_locator_init(const struct gw_config *conf, char **error_r);
void gw_locator_deinit(void);
/* Connect-failure feedback: the server refused or timed out. */
void gw_locator_mark_suspect(const char *server, const char *protocol, const char *why);
/* A health probe succeeded: the server is no longer suspect. */
void gw_locator_clear_suspect(const char *server);
/* Operator actions (admin socket). Return 0, or -1 with *error_r. */
int gw_locator_drain(const char *server, bool drain, const char **error_r);
int gw_locator_set_active(const char *database, const char *server, const char **error_r);
/* A database as this worker's locator knows it (gateway.yaml, or the
   directory with the ldap source), or NULL. Valid until the loop runs. */
const struct gw_conf_database *gw_locator_database(const char *name);
/* The database's active server as this worker sees it now. */
const char *gw_locator_active(const struct gw_conf_database *db);
/* One text block describing databases, their active copy, and every
   server's health per service; malloc'ed. */
char *gw_locator_describe(void);
/* Close, spread over `window_ms`, the relayed sessions of `database` that
   are on another server than `server`. Returns how many were scheduled. */
size_t gw_relay_close_moved(const char *database, const char *server, long window_ms);

/* The pure routing decision. `state` gives per-server health as the
   locator sees it; the function reads nothing else. */
struct gw_server_state {
    const struct gw_conf_server *conf;
    bool down;                 /* health checks failed */
    bool suspect;              /* recent connect failure */
    bool drain;                /* no new sessions */
};
struct gw_route_input {
    const struct gw_config *conf;
    const struct gw_server_state *servers;   /* parallel to conf->servers */
    const char *database;
    const char *site;          /* mailbox site, or NULL */
    const char *protocol;
    unsigned flags;            /* GW_ROUTE_ALLOW_REDIRECT */
    const char *skip_server;   /* already tried, or NULL */
    const char *active;        /* the database's active server now, or NULL for
                                  the configured one */
    const struct gw_conf_database *db; /* the database as the locator knows it (e.g.
                                  from LDAP), or NULL: looked up in conf */
};
/* Fills *route_r; reason strings are written to buf when refusing. */
void gw_route_decide(const struct gw_route_input *in, struct gw_route *route_r, char *buf,
                     size_t bufsize);

/* ---- admin socket ---------------------------------------------------- */

/* Listen on "<admin.socket>.<id>" when configured (worker). */
int gw_admin_start(const struct gw_config *conf, unsigned id);
void gw_admin_stop(void);

/* ---- log ------------------------------------------------------------- */

void gw_log_init(enum gw_log_level level, const char *ident);
void gw_log_set_worker(unsigned id);
/* Log without connection context but with a free-form prefix. */
void gw_logv(enum gw_log_level level, const struct gw_conn *c, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#endif
