/*
 * HTTP plugin, private declarations shared by its files:
 *
 *   http.c          descriptor, configuration keys, per-worker start/stop
 *   http_session.c  the client side: request heads, authentication, routing
 *                   decisions, local answers (errors, redirects, health pages)
 *   http_proxy.c    the exchange with a backend: request head and body out,
 *                   response head and body back, WebSocket hand-off
 *   http_pool.c     per-worker keep-alive pool of idle backend connections
 *   http_parse.c    pure parsing (no core symbols)
 */
#ifndef HTTP_H
#define HTTP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openssl/types.h>

#include "gateway/gateway.h"
#include "http_parse.h"

/* The protocol name: protocols.http in gateway.yaml, services.http on servers. */
#define HTTP_PROTOCOL "http"
/* What we call ourselves in Via and in our own pages. */
#define HTTP_VIA_NAME "gatewayd"

/* Limits that are not configuration keys. */
#define HTTP_HIGH_WATER (64u * 1024u)  /* stop reading a source while its destination has this
                                          much unsent (the core refuses beyond 256 KiB) */
#define HTTP_IN_SLACK (16u * 1024u)    /* input buffers: the head limit plus this, so a body's
                                          first bytes and a pipelined head fit behind a head */
#define HTTP_IN_INITIAL 4096u          /* input buffers start this small and grow */
#define HTTP_BUF_CACHE 256             /* free initial-size buffers kept per worker */
#define HTTP_READ_MAX (256u * 1024u)   /* bytes taken from the core per read */
#define HTTP_INPUT_DEFAULT 8192u       /* the core's input buffer limit for connections */
#define HTTP_INPUT_BULK (64u * 1024u)  /* ... raised while a large body streams in */
#define HTTP_BULK_BODY (16u * 1024u)   /* a body larger than this (or chunked) is large */
#define HTTP_HEAD_EXTRA 2048u          /* room for the headers we add to a forwarded head */
#define HTTP_LIST_MAX 32               /* entries of a comma-separated key */
#define HTTP_SERVERS_MAX 64            /* candidate servers considered per request */
#define HTTP_HINT_MAX 320              /* routing hint (a mailbox address) */
#define HTTP_CLOSE_FLUSH_MS 5000       /* writing a last answer before closing */
#define HTTP_HEALTH_CACHE_MS 2000      /* a directory probe for health pages is reused this long */
#define HTTP_MEMO_KEY 32               /* per-worker key of the credential memo */

/* protocols.http in gateway.yaml; filled by the core from http_conf_keys. */
struct http_conf {
    long max_request_line;       /* request line octets; over it 414 */
    long max_header_size;        /* request head octets; over it 431 */
    long max_headers;            /* header fields per head; over it 431 */
    long max_body_size;          /* request body octets; 0 = unlimited; over it 413 */
    long max_response_header_size; /* backend response head octets; over it 502 */
    long header_timeout;         /* ms from the first byte of a head to its end */
    long keepalive_timeout;      /* ms a client connection may idle between requests */
    long keepalive_requests;     /* requests per client connection */
    long body_timeout;           /* ms without progress while a body moves */
    long backend_timeout;        /* ms for the backend's response head, and idle in its body */
    long backend_keepalive;      /* idle pooled connections per backend server; 0 = no pool */
    long backend_keepalive_timeout; /* ms an idle pooled connection is kept */
    long backend_keepalive_requests; /* requests per backend connection */
    long credential_memo;        /* ms a connection remembers its verified credentials; 0 = off */
    long max_discard;            /* request body octets read and dropped after an early answer */
    long retry_after;            /* ms, sent as Retry-After seconds with 503 */
    long current_version;        /* mailboxes below this version go to legacy_servers; 0 = off */
    char *realm;                 /* Basic realm */
    char *anonymous_paths;       /* prefixes served without authentication, by any server */
    char *health_prefixes;       /* <prefix>/healthcheck.htm answered locally */
    char *health_user;           /* resolved to probe the directory for health pages */
    char *path_prefixes;         /* only these are served (404 otherwise); NULL = all */
    char *legacy_servers;        /* servers for mailboxes below current_version */
    char *anchor_header;         /* routing hint header ("X-AnchorMailbox"); "" = off */
    char *anchor_query;          /* routing hint query parameter ("User"); "" = off */
    char *user_header;           /* header carrying the verified user to backends, or NULL */
    bool redirect_cross_site;    /* 302 to the mailbox site's external_url */
    bool trust_forwarded;        /* keep and extend the client's X-Forwarded-For/Forwarded */
    bool forwarded;              /* also send RFC 7239 Forwarded */
};

/* A comma-separated key, split at start(). */
struct http_list {
    size_t n;
    char *item[HTTP_LIST_MAX];
};

/* An owned copy of a mailbox record. */
struct http_mbox {
    char *user;
    char *database;
    char *site;
    int version;
};
void http_mbox_set(struct http_mbox *m, const struct gw_mailbox *src);
void http_mbox_clear(struct http_mbox *m);
void http_mbox_view(const struct http_mbox *m, struct gw_mailbox *view_r);

/* ---- backends and the pool (http_pool.c) ------------------------------- */

struct http_pool;
struct http_backend {
    struct gw_conn *conn;
    char *server;                /* the locator's server name (owned copy) */
    unsigned long requests;      /* exchanges started on this connection */
    struct http_pool *pool;      /* set while idle in the pool */
    struct http_backend *next, *prev;
};

struct http_pool *http_pool_create(long per_server, long idle_ms, long max_requests);
/* At worker stop only: the core has freed every connection already, so the
   pooled ones are forgotten, not closed. */
void http_pool_destroy(struct http_pool **pool);
/* An idle connection to `server` (most recently used first), or NULL. The
   caller sets the connection's handler. */
struct http_backend *http_pool_take(struct http_pool *pool, const char *server);
/* Keep an idle connection for reuse (or close it when the pool for its
   server is full, or it has served its requests). Takes ownership. */
void http_pool_put(struct http_pool *pool, struct http_backend *be);
/* Wrap a connected upstream connection. */
struct http_backend *http_backend_create(struct gw_conn *conn);
/* Close the connection and free; NULLs the pointer. */
void http_backend_destroy(struct http_backend **be);
size_t http_pool_idle(const struct http_pool *pool);
void http_pool_drain(struct http_pool *pool);

/* ---- per worker --------------------------------------------------------- */

struct http_session;
struct http_worker {
    const struct http_conf *conf;
    struct http_session *sessions;
    unsigned long nsessions;
    struct http_pool *pool;
    struct http_list anonymous, health, paths, legacy;
    char *health_pages[HTTP_LIST_MAX];   /* "<prefix>/healthcheck.htm" */
    unsigned long rr;                    /* round robin over servers */
    char *scratch;                       /* building heads (synchronous use only) */
    size_t scratch_size;
    struct http_header *rhdrs;           /* response head fields (synchronous use only) */
    char *bufs[HTTP_BUF_CACHE];          /* free HTTP_IN_INITIAL buffers */
    size_t nbufs;
    EVP_MAC_CTX *memo_mac;               /* HMAC-SHA256 under a random per-worker key */
    /* health pages: the last directory probe */
    struct gw_lookup *health_lookup;
    int health_dir_ok;                   /* -1 unknown, 0 down, 1 up */
    unsigned long long health_checked;
};

/* ---- sessions ------------------------------------------------------------ */

/* A simple bounded buffer: bytes live in data[start, end). */
struct http_buf {
    char *data;
    size_t start, end, cap;
};

static inline size_t http_buf_len(const struct http_buf *b)
{
    return b->end - b->start;
}

/* n bytes used from the front; an emptied buffer starts over at 0. */
static inline void http_buf_consume(struct http_buf *b, size_t n)
{
    b->start += n;
    if (b->start >= b->end)
        b->start = b->end = 0;
}

enum http_state {
    HTTP_S_IDLE,      /* waiting for the first byte of a request (keep-alive timer) */
    HTTP_S_HEAD,      /* reading a request head (header deadline) */
    HTTP_S_AUTH,      /* verifying credentials; client paused */
    HTTP_S_HINT,      /* resolving a routing hint; client paused */
    HTTP_S_HEALTH,    /* health page waits for the directory probe; client paused */
    HTTP_S_CONNECT,   /* waiting for a backend connection; client paused */
    HTTP_S_PROXY,     /* exchange with the backend (req_state, resp_state) */
    HTTP_S_DISCARD,   /* answered early; reading and dropping the rest of the body */
    HTTP_S_CLOSED,    /* client gone or relayed; freed when the last reference goes */
};

enum http_req_state {
    HTTP_REQ_NONE,    /* no request in flight */
    HTTP_REQ_BODY,    /* head sent (or answered); body bytes still to come */
    HTTP_REQ_DONE,    /* whole request read */
};

enum http_resp_state {
    HTTP_RESP_NONE,   /* no backend exchange */
    HTTP_RESP_HEAD,   /* request sent (or being sent); reading the response head */
    HTTP_RESP_BODY,   /* response head forwarded; body flowing */
    HTTP_RESP_DONE,   /* response complete */
};

/* How the request reached its backend, for retries and logs. */
enum http_route_kind {
    HTTP_ROUTE_MAILBOX,   /* the user's (or hinted) mailbox: gw_upstream_connect */
    HTTP_ROUTE_ANONYMOUS, /* anonymous path: any healthy server */
    HTTP_ROUTE_LEGACY,    /* downlevel mailbox: a legacy server */
};

struct http_session {
    struct http_session *next, *prev;   /* the worker's live sessions */
    struct http_worker *worker;
    const struct http_conf *conf;
    struct gw_conn *client;
    enum http_state state;
    unsigned refs;                      /* 1 while open, +1 per entry point running */
    bool in_input;                      /* inside http_client_input(): no recursion */
    bool output_blocked;                /* next request waits for the client to read */
    bool close_after;                   /* close once the current answer is written */

    struct http_buf in;                 /* client bytes not used yet */
    struct http_scan scan;
    struct http_header *hdrs;           /* conf->max_headers entries */
    struct http_request req;            /* slices into `in` until the head is consumed */
    size_t head_len;                    /* bytes of `in` the current head occupies */
    unsigned long nrequests;

    /* the request being served */
    enum http_req_state req_state;
    bool head_method;                   /* HEAD: no response body */
    bool websocket;
    bool client_11;                     /* HTTP/1.1 client (chunked, 1xx allowed) */
    bool continue_sent;                 /* 100 Continue written */
    bool expect_continue;
    uint64_t body_left;                 /* HTTP_BODY_LENGTH: bytes to come */
    enum http_body req_body;
    struct http_chunked req_ck;
    uint64_t body_seen;                 /* body bytes so far (max_body_size, max_discard) */
    bool discarding_long;               /* DISCARD: over max_discard; close when answered */

    /* authentication */
    struct gw_lookup *lookup;
    bool lookup_pending;
    struct http_mbox mbox;              /* the verified user's mailbox */
    unsigned char cred[32];             /* HMAC of the Authorization value that verified */
    unsigned long long cred_expires;    /* 0: nothing remembered */
    char *hint;                         /* last routing hint resolved on this connection */
    struct http_mbox hint_mbox;
    bool hint_ok;
    unsigned long long hint_expires;
    struct http_mbox *target;           /* where this request goes: &mbox or &hint_mbox */

    /* the backend exchange */
    enum http_route_kind route_kind;
    struct gw_route routes[HTTP_SERVERS_MAX]; /* candidates (anonymous, legacy) */
    size_t nroutes, route_next, route_tries;
    struct gw_conn *connecting;         /* upstream connection not yet connected */
    struct http_backend *be;
    bool be_reused;                     /* came from the pool: may be stale */
    bool be_retried;
    bool be_broken;                     /* not reusable after this exchange */
    bool be_eof;
    enum http_resp_state resp_state;
    struct http_buf rin;                /* backend bytes not used yet */
    struct http_scan rscan;
    unsigned resp_status;
    enum http_body resp_body;
    uint64_t resp_left;
    struct http_chunked resp_ck;
    bool resp_chunk_out;                /* re-chunk the body toward the client */
    bool resp_keep_alive;               /* the backend keeps the connection */
    bool resp_paused;                   /* backend paused: the client has too much unsent */
    bool req_paused;                    /* client paused: the backend has too much unsent */
    bool resp_started;                  /* a response head went to the client */
};

/* http_session.c */
void http_session_accept(struct gw_plugin_ctx *ctx, struct gw_conn *client);
/* At worker stop: free every session (their connections are gone). */
void http_sessions_destroy_all(struct http_worker *w);
void http_sessions_drain(struct http_worker *w);
void http_session_ref(struct http_session *s);
void http_session_unref(struct http_session **sp);
/* Answer with our own small page; closes afterwards when `close` or when
   the rest of the request cannot be skipped. extra: header lines with
   their CRLFs, or NULL. */
void http_respond(struct http_session *s, unsigned status, const char *extra, bool close);
/* The same page; 503 carries Retry-After. */
void http_respond_error(struct http_session *s, unsigned status);
/* Close the client at once. */
void http_client_abort(struct http_session *s);
/* The session lets go of its client (handed to the relay): CLOSED. */
void http_session_detach(struct http_session *s);
/* The current head's bytes are no longer needed: `in` starts with what
   follows it. */
void http_consume_head(struct http_session *s);
/* The exchange is over (response complete, request read): next request. */
void http_exchange_done(struct http_session *s);
/* Read and process what the client sent, per the state. */
void http_client_input(struct http_session *s);
/* Buffers: HTTP_IN_INITIAL bytes from the worker's cache; growing (only
   while no slice points into the buffer) compacts, then doubles; releasing
   wipes the bytes and returns a small buffer to the cache. */
void http_buf_reserve(struct http_worker *w, struct http_buf *b);
void http_buf_ensure(struct http_worker *w, struct http_buf *b, size_t room);
void http_buf_release(struct http_worker *w, struct http_buf *b);
/* Whether the worker's health directory probe is up (for health pages). */
void http_health_done(struct http_worker *w);

/* http_proxy.c */
/* Route and connect (or take from the pool) for s->target / routes. */
void http_proxy_start(struct http_session *s);
/* Forward request body bytes the client sent (HTTP_S_PROXY, REQ_BODY). */
void http_proxy_request_body(struct http_session *s);
/* Drop the backend side of the session (not reusable). */
void http_proxy_abort(struct http_session *s);
/* The client read enough of what we queued: resume the response. */
void http_proxy_client_drained(struct http_session *s);

#endif
