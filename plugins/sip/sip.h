/*
 * SIP plugin, private declarations shared by its files:
 *   sip.c          descriptor, configuration keys, per-worker start/stop
 *   sip_session.c  what to answer to each request (redirect server logic)
 *   sip_txn.c      the server transaction table and its RFC 3261 timers
 *   sip_stream.c   TCP and TLS connections: framing by Content-Length
 *   sip_limit.c    trusted peers and the per-source rate limit
 *   sip_parse.c    the pure parser; sip_reply.c the pure response builder
 *
 * gatewayd never proxies a call: like the call router of Exchange's Client
 * Access role it answers an INVITE with "302 Moved Temporarily" to the SIP
 * service of the server that holds the called user's active mailbox copy.
 */
#ifndef SIP_H
#define SIP_H

#include <stdbool.h>
#include <stdint.h>

#include "gateway/gateway.h"
#include "sip_parse.h"

/* The protocol name: protocols.sip in gateway.yaml, services.sip on servers. */
#define SIP_PROTOCOL "sip"
#define SIP_SERVER_HEADER "gatewayd"
#define SIP_ALLOW "INVITE, ACK, CANCEL, OPTIONS"

/* RFC 3261 17 timer values (table 4). */
#define SIP_T1_MS 500L
#define SIP_T2_MS 4000L
#define SIP_TIMER_H_MS (64 * SIP_T1_MS)   /* wait for the ACK of a final response */
#define SIP_TIMER_J_MS (64 * SIP_T1_MS)   /* absorb retransmitted CANCELs (UDP) */

/* Limits that are not configuration keys. */
#define SIP_PILOTS_MAX 64           /* pilot numbers */
#define SIP_PILOT_LEN 32            /* bytes of one pilot number, NUL included */
#define SIP_TRUSTED_MAX 64          /* networks in trusted_peers */
#define SIP_CONTACTS_MAX 8          /* Contacts in one 302 (alternative_contacts) */
#define SIP_SERVERS_MAX 256         /* servers considered for pilot numbers */
#define SIP_STREAM_PENDING_MAX 32   /* lookups in flight per connection before it is paused */
#define SIP_RATE_SLOTS 4096         /* sources tracked by the rate limit, per worker */
#define SIP_RATE_PROBE 8            /* slots probed for one source */
#define SIP_REPLY_SLACK 1024        /* room in a response beyond the copied headers */
#define SIP_LOG_EXCERPT 96          /* bytes of a peer's value quoted in a log line */
#define SIP_CLOSE_FLUSH_MS 5000     /* writing the last response before closing */
#define SIP_TXN_KEY_MAX 1024        /* a longer branch or Call-ID is refused (400) */
#define SIP_DEFAULT_PORT 5060       /* sent-by without a port (RFC 3261 18.2.2) */

/* One network of trusted_peers. */
struct sip_cidr {
    int family;                 /* AF_INET or AF_INET6 */
    unsigned bits;
    unsigned char addr[16];
};

/* protocols.sip in gateway.yaml: keys filled by the core from sip_conf_keys,
   the rest derived from them by sip_configure() (in the master, before the
   workers fork, so every worker sees the same values). */
struct sip_conf {
    char *pilot_numbers;        /* "5000,5001": subscriber access, any healthy server */
    char *trusted_peers;        /* "10.0.0.0/8, ::1": only these may send requests */
    long rate_limit;            /* requests per second per source address; 0: no limit */
    bool alternative_contacts;  /* further Contacts for the other copies, lower q */
    long max_message;           /* bytes of one message: larger is 513 */
    long max_transactions;      /* server transactions kept per worker */
    long retry_after;           /* ms; Retry-After of 503 and 480 */
    long message_timeout;       /* ms to receive one whole message on a stream */
    long idle_timeout;          /* ms without a message on a stream (shared key) */

    /* derived */
    char pilots[SIP_PILOTS_MAX][SIP_PILOT_LEN];
    unsigned npilots;
    struct sip_cidr trusted[SIP_TRUSTED_MAX];
    unsigned ntrusted;
    unsigned char secret[16];   /* keys the To-tag and transaction hashes */
};

enum sip_transport { SIP_TP_UDP, SIP_TP_TCP, SIP_TP_TLS };

struct sip_stream;
struct sip_txn;

/* Where a response goes: a datagram return path or a connection. */
struct sip_dest {
    enum sip_transport tp;
    struct gw_return_path rp;     /* UDP */
    struct sip_stream *stream;    /* TCP/TLS */
    struct gw_peer peer;          /* for log lines */
};

/* A log line at most once a second per kind, with a count of the others. */
struct sip_log_throttle {
    unsigned long long next_ms;
    unsigned long suppressed;
};

struct sip_rate_slot {
    unsigned char addr[16];
    int family;
    unsigned long long second;   /* the second `count` is for */
    unsigned long count;
};

/* Per-worker plugin data. */
struct sip_worker {
    struct gw_plugin_ctx *ctx;
    const struct sip_conf *conf;

    /* transactions (sip_txn.c) */
    struct sip_txn **buckets;
    size_t nbuckets;              /* a power of two */
    size_t ntxn;
    struct sip_txn *oldest, *newest;   /* creation order, for eviction */
    struct sip_txn **heap;        /* by deadline */
    size_t heap_len, heap_cap;
    struct gw_timer *timer;
    unsigned long long timer_at;  /* when `timer` fires, 0 when stopped */

    char *scratch;                /* where responses are built */
    size_t scratch_cap;
    struct sip_stream *streams;   /* open TCP/TLS connections */
    struct gw_timer *waker;       /* 0 ms: let the core reap a connection we closed */
    unsigned long rr;             /* round robin of pilot numbers */
    struct sip_rate_slot *rates;  /* SIP_RATE_SLOTS, when rate_limit > 0 */

    struct sip_log_throttle log_untrusted, log_rate, log_unavailable, log_full;
};

/* ---- sip_session.c ---- */

/* The descriptor's datagram hook: one UDP datagram. */
void sip_datagram(struct gw_plugin_ctx *ctx, struct gw_datagram *dg);

/* Handle one complete message from `from` (a datagram or a framed stream
   message). Responses are sent, stored or deferred as needed. */
void sip_handle(struct sip_worker *w, const char *data, size_t len, const struct sip_dest *from);
/* Answer an oversized message with 513 if its headers can be read. */
void sip_handle_too_large(struct sip_worker *w, const char *headers, size_t len,
                          const struct sip_dest *from);
/* Send bytes to a destination (datagram or connection). */
void sip_send(struct sip_worker *w, const struct sip_dest *to, const char *data, size_t len);
/* A transaction timer fired (sip_txn.c calls this): retransmit or expire. */
void sip_txn_timeout(struct sip_worker *w, struct sip_txn *t);
/* Log at most once a second for this throttle; returns whether to log and
   the number suppressed since the last line. */
bool sip_log_allowed(struct sip_log_throttle *th, unsigned long *suppressed_r);

/* ---- sip_txn.c ---- */

enum sip_txn_state {
    SIP_TXN_PROCEEDING,   /* INVITE: the directory lookup is in flight */
    SIP_TXN_COMPLETED,    /* final response sent: retransmit it, wait for ACK */
};

struct sip_txn {
    struct sip_worker *w;
    struct sip_txn *hnext;              /* hash chain */
    struct sip_txn *older, *newer;      /* creation order */
    struct sip_txn *snext, *sprev;      /* the stream's transactions */
    size_t heap_idx;                    /* position in w->heap, SIZE_MAX if none */
    unsigned long long deadline;        /* next timer (G, H or J), 0 if none */
    unsigned long long expires;         /* timer H / J */
    long g_interval;                    /* next timer G interval, 0: no retransmission */
    enum sip_txn_state state;
    bool invite;
    struct sip_dest dest;
    struct gw_lookup *lookup;
    char *head;                         /* copied header fields (PROCEEDING) */
    size_t head_len;
    char *resp;                         /* the final response (COMPLETED) */
    size_t resp_len;
    char user[SIP_KEY_MAX];             /* the called user as looked up */
    uint64_t hash;
    size_t keylen;
    char key[];                         /* see sip_txn_key() */
};

/* The transaction key of a request (RFC 3261 17.2.3): branch, sent-by and
   method (ACK counts as INVITE) when the branch has the RFC 3261 magic
   cookie, else the RFC 2543 fields. Written to out; returns the length, 0
   when it does not fit. */
size_t sip_txn_key(const struct sip_msg *m, enum sip_method method, char *out, size_t outsize);
/* SipHash-2-4 of data under the configured secret. */
uint64_t sip_hash(const struct sip_worker *w, const void *data, size_t len);

int sip_txn_table_init(struct sip_worker *w);
void sip_txn_table_deinit(struct sip_worker *w);
struct sip_txn *sip_txn_find(struct sip_worker *w, const char *key, size_t keylen);
/* A new transaction, or NULL when the table is full of transactions still
   waiting for their lookup (the oldest completed one is evicted first). */
struct sip_txn *sip_txn_create(struct sip_worker *w, const char *key, size_t keylen);
/* Cancel its lookup, unlink from everything, free. NULLs *tp. */
void sip_txn_destroy(struct sip_txn **tp);
/* Arm the transaction's timer for `deadline` (absolute ms); 0 disarms. */
void sip_txn_schedule(struct sip_txn *t, unsigned long long deadline);

/* ---- sip_stream.c ---- */

void sip_stream_accept(struct gw_plugin_ctx *ctx, struct gw_conn *client);
/* Queue bytes on the connection; closes it if the output limit is hit. */
void sip_stream_send(struct sip_stream *s, const char *data, size_t len);
/* A transaction answering on this stream finished its lookup. */
void sip_stream_lookup_done(struct sip_stream *s);
void sip_stream_txn_link(struct sip_stream *s, struct sip_txn *t);
void sip_stream_txn_unlink(struct sip_txn *t);
/* Free every stream of the worker at plugin stop (the worker has already
   closed and freed their connections: they are not touched). */
void sip_streams_destroy_all(struct sip_worker *w);
void sip_streams_drain(struct sip_worker *w);

/* ---- sip_limit.c ---- */

/* Parse "10.0.0.0/8, 192.0.2.1, ::1/128" into conf->trusted. */
int sip_trusted_parse(struct sip_conf *conf, const char *list, const char **error_r);
/* Whether a textual peer address may send requests (true without a list). */
bool sip_peer_trusted(const struct sip_conf *conf, const char *addr);
/* Count a request from addr; false when over rate_limit this second. */
bool sip_rate_ok(struct sip_worker *w, const char *addr);

#endif
