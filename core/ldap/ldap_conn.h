/*
 * Asynchronous LDAP for a worker loop: a small pool of connections to one
 * directory service, given as URIs in preference order.
 *
 * Nothing here blocks. The layer makes the TCP connection itself
 * (non-blocking, with a timeout), does TLS itself with OpenSSL (ldaps://,
 * or StartTLS sent as an asynchronous extended operation) and only then
 * hands the socket to libldap with ldap_init_fd(), with the TLS session
 * pushed under libldap as a Sockbuf I/O layer. libldap therefore only
 * encodes requests and decodes responses: its own connect and TLS code
 * (which poll and wait, and are GnuTLS on Debian) is never used. Replies
 * are read with ldap_result() and a zero timeout when the descriptor's
 * ev_io says it is readable; every operation has an ev_timer.
 *
 * Host names in URIs are resolved once, when the pool is created (worker
 * start), not on the serving path.
 *
 * Failover: each connection uses the first URI that is not backing off.
 * A failed connect, TLS handshake or service bind, or a request that gets
 * no answer in time, puts that URI in backoff (doubling from backoff_min
 * to backoff_max) and the connection moves on to the next URI. A
 * connection on a less preferred URI moves back, when idle, once a better
 * URI's backoff has expired. While no server can be reached at all,
 * requests fail at once with GW_LDAP_DOWN instead of waiting out their
 * timeout.
 *
 * Requests that were sent on a connection that is lost are sent again on
 * another one (searches and binds are idempotent), within their own
 * timeout, unless they are GW_LDAP_OP_PERSISTENT.
 *
 * Everything is per worker and single-threaded.
 */
#ifndef GW_LDAP_CONN_H
#define GW_LDAP_CONN_H

#include <sys/time.h>
#include <ldap.h>
#include <stdbool.h>
#include <stddef.h>

struct gw_ldap_pool;
struct gw_ldap_op;

struct gw_ldap_pool_conf {
    const char *name;                /* for log lines: "directory", "directory binds" */
    char *const *uris;               /* ldap://host[:port] or ldaps://host[:port] */
    size_t nuris;
    bool starttls;                   /* StartTLS on ldap:// URIs (ldaps:// is always TLS) */
    bool verify;                     /* verify the server certificate and name */
    const char *ca_file;             /* NULL: the system store */
    const char *bind_dn;             /* service bind after connecting, or NULL (anonymous) */
    const char *bind_password;
    long connect_timeout_ms;         /* TCP + TLS + service bind */
    long backoff_min_ms, backoff_max_ms;
    unsigned connections;            /* pool size, >= 1 */
    unsigned max_inflight;           /* requests per connection; 1 for user binds */
    unsigned max_queue;              /* requests waiting for a connection */
    struct gw_ldap_pool *share_with; /* same URIs: share which servers are failing
                                        (uris is then ignored); destroy this pool first */
};

/* Copies everything in conf; starts connecting at once. Must be called on
   the worker (gw_w.loop set). Returns NULL with *error_r (malloc'ed) on a
   bad configuration (no URI resolves, CA file unreadable). */
struct gw_ldap_pool *gw_ldap_pool_create(const struct gw_ldap_pool_conf *conf, char **error_r);
/* Closes every connection. Operations still pending are dropped without
   their callbacks: owners cancel theirs first. NULLs *pool. */
void gw_ldap_pool_destroy(struct gw_ldap_pool **pool);
/* Whether a connection is ready to send right now. */
bool gw_ldap_pool_ready(const struct gw_ldap_pool *pool);

enum gw_ldap_err {
    GW_LDAP_OK,         /* msg is a message of the operation */
    GW_LDAP_TIMEOUT,    /* no answer within the operation's timeout */
    GW_LDAP_DOWN,       /* no server reachable, or the connection was lost (persistent ops) */
    GW_LDAP_OVERLOAD,   /* too many requests waiting */
    GW_LDAP_LOCAL,      /* libldap refused to encode the request (e.g. a bad filter) */
};
const char *gw_ldap_err_str(enum gw_ldap_err err);

/*
 * Called for each message of an operation: search entries, references and
 * intermediate responses (final false), then its result (final true). On
 * failure without a result, called once with err != GW_LDAP_OK, msg NULL,
 * final true. msg and ld (for ldap_get_dn, ldap_get_values_len,
 * ldap_parse_result...) are valid during the call only; msg is freed
 * after it. After a final call the op handle is gone. The callback may
 * start and cancel operations, including cancelling this one from a
 * non-final call.
 */
typedef void gw_ldap_op_cb(void *arg, enum gw_ldap_err err, LDAP *ld, LDAPMessage *msg,
                           bool final);

/* Never re-sent on another connection: the owner gets GW_LDAP_DOWN when
   its connection is lost and starts again (RFC 4533 with its cookie). */
#define GW_LDAP_OP_PERSISTENT 0x1

/*
 * Start a search. Strings, attrs (NULL-terminated, or NULL for all) and
 * ctrls (deep-copied with ldap_controls_dup) are copied. timeout_ms covers
 * waiting for a connection and for the whole answer; 0 means none (only
 * for persistent searches). Never returns NULL: failures come through cb,
 * from the loop.
 */
struct gw_ldap_op *gw_ldap_search(struct gw_ldap_pool *pool, const char *base, int scope,
                                  const char *filter, const char *const *attrs, int sizelimit,
                                  LDAPControl *const *ctrls, long timeout_ms, unsigned flags,
                                  gw_ldap_op_cb *cb, void *arg);
/* Simple bind as dn with password (copied, wiped when done). The result
   message is an LDAP_RES_BIND: see ldap_parse_result(). */
struct gw_ldap_op *gw_ldap_bind(struct gw_ldap_pool *pool, const char *dn, const char *password,
                                long timeout_ms, gw_ldap_op_cb *cb, void *arg);
/* Replace every value of attr in the entry dn with one value, as the
   service account (the LDAP locator's switchover). Re-sent on another
   connection like a search: replacing with the same value is idempotent.
   The result message is an LDAP_RES_MODIFY: see ldap_parse_result(). */
struct gw_ldap_op *gw_ldap_modify_replace(struct gw_ldap_pool *pool, const char *dn,
                                          const char *attr, const char *value, long timeout_ms,
                                          gw_ldap_op_cb *cb, void *arg);
/* Abandon: the callback is never called again. NULLs *op; NULL is fine. */
void gw_ldap_op_cancel(struct gw_ldap_op **op);
/* Re-arm the operation's timeout from now (0: none), e.g. when a
   refreshAndPersist search has finished its refresh phase. */
void gw_ldap_op_set_timeout(struct gw_ldap_op *op, long timeout_ms);
/* The URI the operation was last sent to, or NULL: for log lines. */
const char *gw_ldap_op_server(const struct gw_ldap_op *op);

#endif
