/*
 * Asynchronous LDAP connections: see ldap_conn.h for the contract.
 *
 * A connection goes DOWN -> CONNECTING -> [TLS] -> [STARTTLS -> TLS] ->
 * [BINDING] -> READY. One ev_timer per connection bounds the whole way to
 * READY (connect_timeout) or, in DOWN, waits for the next server to leave
 * its backoff. Each operation has its own ev_timer: its deadline, or a
 * zero delay to deliver a failure from the loop rather than from inside
 * the caller.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../core.h"
#include "ldap_conn.h"
#include "ldap_util.h"

#include <openldap.h>

#define FAILBACK_CHECK_S   1.0    /* how often idle connections look for a better server */
#define SHORT_LIVED_S      1.0    /* a connection lost sooner counts as a server failure */
#define REASON_MAX         256

enum conn_state {
    CONN_DOWN,       /* no socket: waiting for a server to leave its backoff */
    CONN_CONNECTING, /* TCP connect in progress */
    CONN_TLS,        /* TLS handshake in progress (ldaps://, or after StartTLS) */
    CONN_STARTTLS,   /* StartTLS extended request sent, waiting for its answer */
    CONN_BINDING,    /* service bind sent, waiting for its answer */
    CONN_READY,      /* serving requests */
};

struct server {
    char *uri;
    char *host;
    unsigned port;
    bool ldaps;
    bool resolved;
    struct sockaddr_storage addr;
    socklen_t addrlen;
    unsigned fails;            /* consecutive failures */
    double down_until;         /* loop time; 0 = usable */
};

struct op_list {
    struct gw_ldap_op *head, *tail;
    size_t n;
};

struct conn {
    struct gw_ldap_pool *pool;
    enum conn_state state;
    int server;                /* index into pool->servers, -1 when DOWN */
    int fd;                    /* owned by ld once ld exists */
    SSL *ssl;
    LDAP *ld;
    int internal_msgid;        /* StartTLS or service bind in flight */
    ev_io io;
    ev_timer timer;
    struct op_list inflight;
    double ready_since;
    unsigned gen;              /* bumped on every close: stale loops stop */
    bool dispatching;          /* inside conn_read: closing is deferred */
    bool broken;               /* close once dispatching is over */
    bool broken_penalize;
    char broken_reason[REASON_MAX];
};

struct gw_ldap_pool {
    char *name;
    struct server *servers;    /* owned unless `peer` lent them */
    size_t nservers;
    struct gw_ldap_pool *peer; /* shares the servers' state (search and bind pools) */
    bool servers_lent;
    bool starttls, verify;
    char *bind_dn, *bind_password;
    long connect_timeout_ms, backoff_min_ms, backoff_max_ms;
    unsigned max_inflight, max_queue;
    SSL_CTX *ssl_ctx;
    struct conn *conns;
    unsigned nconns;
    struct op_list queue;
    ev_timer maint;
    bool destroying;           /* conn_close requeues every op, persistent too */
};

enum op_kind { OP_SEARCH, OP_BIND, OP_MODIFY };

struct gw_ldap_op {
    struct gw_ldap_pool *pool;
    struct conn *conn;         /* NULL while queued or failing */
    struct gw_ldap_op *prev, *next;
    bool queued;
    enum op_kind kind;
    char *base, *filter, **attrs;
    int scope, sizelimit;
    LDAPControl **ctrls;
    char *dn, *password;
    char *mod_attr, *mod_value;  /* OP_MODIFY: replace mod_attr with mod_value */
    unsigned flags;
    int msgid;
    ev_timer timer;
    enum gw_ldap_err pending;  /* set: the timer delivers this failure */
    const char *server_uri;
    gw_ldap_op_cb *cb;
    void *arg;
};

static void conn_connect(struct conn *c);
static void conn_fail(struct conn *c, bool penalize, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void pool_kick(struct gw_ldap_pool *p);

const char *gw_ldap_err_str(enum gw_ldap_err err)
{
    switch (err) {
    case GW_LDAP_OK: return "ok";
    case GW_LDAP_TIMEOUT: return "timed out";
    case GW_LDAP_DOWN: return "no LDAP server available";
    case GW_LDAP_OVERLOAD: return "too many LDAP requests waiting";
    case GW_LDAP_LOCAL: return "request could not be encoded";
    }
    return "?";
}

static double now(void)
{
    return ev_now(gw_w.loop);
}

/* ---- lists ------------------------------------------------------------ */

static void list_append(struct op_list *l, struct gw_ldap_op *op)
{
    op->next = NULL;
    op->prev = l->tail;
    if (l->tail != NULL)
        l->tail->next = op;
    else
        l->head = op;
    l->tail = op;
    l->n++;
}

static void list_prepend(struct op_list *l, struct gw_ldap_op *op)
{
    op->prev = NULL;
    op->next = l->head;
    if (l->head != NULL)
        l->head->prev = op;
    else
        l->tail = op;
    l->head = op;
    l->n++;
}

static void list_remove(struct op_list *l, struct gw_ldap_op *op)
{
    if (op->prev != NULL)
        op->prev->next = op->next;
    else
        l->head = op->next;
    if (op->next != NULL)
        op->next->prev = op->prev;
    else
        l->tail = op->prev;
    op->prev = op->next = NULL;
    l->n--;
}

/* ---- TLS under libldap: a Sockbuf I/O layer over an OpenSSL session ---- */

static int sbi_setup(Sockbuf_IO_Desc *sbiod, void *arg)
{
    sbiod->sbiod_pvt = arg;
    return 0;
}

static int sbi_remove(Sockbuf_IO_Desc *sbiod)
{
    /* the SSL belongs to the connection, freed after ldap_unbind_ext */
    sbiod->sbiod_pvt = NULL;
    return 0;
}

static int sbi_ctrl(Sockbuf_IO_Desc *sbiod, int opt, void *arg)
{
    SSL *ssl = sbiod->sbiod_pvt;

    /* Decrypted bytes waiting in OpenSSL: the descriptor will not become
       readable for them, so libldap must be told to read now. */
    if (opt == LBER_SB_OPT_DATA_READY && ssl != NULL && SSL_pending(ssl) > 0)
        return 1;
    return LBER_SBIOD_CTRL_NEXT(sbiod, opt, arg);
}

static ber_slen_t sbi_io_result(SSL *ssl, int n)
{
    switch (SSL_get_error(ssl, n)) {
    case SSL_ERROR_WANT_READ:
    case SSL_ERROR_WANT_WRITE:
        errno = EWOULDBLOCK;
        return -1;
    case SSL_ERROR_ZERO_RETURN:
        return 0;
    default:
        ERR_clear_error();
        errno = ECONNRESET;
        return -1;
    }
}

static ber_slen_t sbi_read(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
    SSL *ssl = sbiod->sbiod_pvt;
    int n;

    if (ssl == NULL) {
        errno = EBADF;
        return -1;
    }
    n = SSL_read(ssl, buf, len > 0x7fffffff ? 0x7fffffff : (int)len);
    return n > 0 ? n : sbi_io_result(ssl, n);
}

static ber_slen_t sbi_write(Sockbuf_IO_Desc *sbiod, void *buf, ber_len_t len)
{
    SSL *ssl = sbiod->sbiod_pvt;
    int n;

    if (ssl == NULL) {
        errno = EBADF;
        return -1;
    }
    n = SSL_write(ssl, buf, len > 0x7fffffff ? 0x7fffffff : (int)len);
    return n > 0 ? n : sbi_io_result(ssl, n);
}

static int sbi_close(Sockbuf_IO_Desc *sbiod)
{
    (void)sbiod;
    return 0;   /* the provider layer below closes the descriptor */
}

static Sockbuf_IO tls_sbio = {
    .sbi_setup = sbi_setup,
    .sbi_remove = sbi_remove,
    .sbi_ctrl = sbi_ctrl,
    .sbi_read = sbi_read,
    .sbi_write = sbi_write,
    .sbi_close = sbi_close,
};

/* ---- operations: delivery and freeing ---------------------------------- */

static void op_free(struct gw_ldap_op *op)
{
    ev_timer_stop(gw_w.loop, &op->timer);
    free(op->base);
    free(op->filter);
    if (op->attrs != NULL) {
        for (size_t i = 0; op->attrs[i] != NULL; i++)
            free(op->attrs[i]);
        free(op->attrs);
    }
    ldap_controls_free(op->ctrls);
    free(op->dn);
    free(op->mod_attr);
    free(op->mod_value);
    gw_free_secret(&op->password);
    free(op);
}

/* Detach the op from wherever it is (queue or connection). */
static void op_detach(struct gw_ldap_op *op)
{
    if (op->queued) {
        list_remove(&op->pool->queue, op);
        op->queued = false;
    } else if (op->conn != NULL) {
        list_remove(&op->conn->inflight, op);
        op->conn = NULL;
    }
}

/* Call the owner's callback with a failure and free the op. */
static void op_finish_err(struct gw_ldap_op *op, enum gw_ldap_err err)
{
    gw_ldap_op_cb *cb = op->cb;
    void *arg = op->arg;

    op_detach(op);
    op_free(op);
    cb(arg, err, NULL, NULL, true);
}

/* Deliver a failure from the loop, never from inside the caller. */
static void op_fail_later(struct gw_ldap_op *op, enum gw_ldap_err err)
{
    op_detach(op);
    op->pending = err;
    ev_timer_stop(gw_w.loop, &op->timer);
    ev_timer_set(&op->timer, 0.0, 0.0);
    ev_timer_start(gw_w.loop, &op->timer);
}

static void op_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw_ldap_op *op = GW_CONTAINER_OF(w, struct gw_ldap_op, timer);
    struct conn *c = op->conn;

    (void)loop;
    (void)revents;
    if (op->pending != GW_LDAP_OK) {
        op_finish_err(op, op->pending);
        return;
    }
    if (c != NULL) {
        struct gw_ldap_pool *p = c->pool;

        op_detach(op);
        if (c->ld != NULL)
            ldap_abandon_ext(c->ld, op->msgid, NULL, NULL);
        /* The server took too long: stop sending it work for a while. */
        conn_fail(c, true, "no answer to a %s within the timeout; trying %s",
                  op->kind == OP_BIND ? "bind" : op->kind == OP_MODIFY ? "modify" : "search",
                  p->nservers > 1 ? "the next server" : "again after a pause");
    }
    op_finish_err(op, GW_LDAP_TIMEOUT);
}

static struct gw_ldap_op *op_new(struct gw_ldap_pool *p, enum op_kind kind, long timeout_ms,
                                 unsigned flags, gw_ldap_op_cb *cb, void *arg)
{
    struct gw_ldap_op *op = gw_calloc(1, sizeof(*op));

    op->pool = p;
    op->kind = kind;
    op->flags = flags;
    op->cb = cb;
    op->arg = arg;
    op->msgid = -1;
    ev_timer_init(&op->timer, op_timer_cb, timeout_ms > 0 ? (double)timeout_ms / 1000.0 : 0.0,
                  0.0);
    if (timeout_ms > 0)
        ev_timer_start(gw_w.loop, &op->timer);
    return op;
}

static void op_submit(struct gw_ldap_op *op)
{
    struct gw_ldap_pool *p = op->pool;

    if (p->queue.n >= p->max_queue) {
        op_fail_later(op, GW_LDAP_OVERLOAD);
        return;
    }
    list_append(&p->queue, op);
    op->queued = true;
    pool_kick(p);
}

/* ---- servers ------------------------------------------------------------ */

/* A server failed: connections of this pool and of its peer that still
   use it are moved elsewhere now, their requests sent again, rather than
   each waiting for its own timeout against a hung server. */
static void evict_server(struct gw_ldap_pool *p, int idx)
{
    for (unsigned i = 0; p != NULL && i < p->nconns; i++) {
        struct conn *c = &p->conns[i];

        if (c->server == idx && c->state != CONN_DOWN && !c->broken)
            conn_fail(c, false, "server marked as failing");
    }
}

static void server_failed(struct gw_ldap_pool *p, int idx, const char *reason)
{
    struct server *s = &p->servers[idx];
    long backoff = p->backoff_min_ms;

    s->fails++;
    for (unsigned i = 1; i < s->fails && backoff < p->backoff_max_ms; i++)
        backoff *= 2;
    if (backoff > p->backoff_max_ms)
        backoff = p->backoff_max_ms;
    s->down_until = now() + (double)backoff / 1000.0;
    gw_log(GW_LOG_WARN, NULL, "ldap %s: %s: %s; not used for %ld ms", p->name, s->uri, reason,
           backoff);
    evict_server(p, idx);
    evict_server(p->peer, idx);
}

static void server_ok(struct gw_ldap_pool *p, int idx)
{
    struct server *s = &p->servers[idx];

    if (s->fails > 0)
        gw_log(GW_LOG_INFO, NULL, "ldap %s: %s is answering again", p->name, s->uri);
    s->fails = 0;
    s->down_until = 0;
}

/* The most preferred server usable now, or -1 (*wait_r: seconds until one
   leaves its backoff, when any can). */
static int best_server(const struct gw_ldap_pool *p, double *wait_r)
{
    double t = now(), wait = -1;

    for (size_t i = 0; i < p->nservers; i++) {
        const struct server *s = &p->servers[i];

        if (!s->resolved)
            continue;
        if (s->down_until <= t)
            return (int)i;
        if (wait < 0 || s->down_until - t < wait)
            wait = s->down_until - t;
    }
    if (wait_r != NULL)
        *wait_r = wait;
    return -1;
}

/* ---- connections -------------------------------------------------------- */

static void conn_io_set(struct conn *c, int events)
{
    if (c->io.events == events && ev_is_active(&c->io))
        return;
    ev_io_stop(gw_w.loop, &c->io);
    if (c->fd < 0 || events == 0)
        return;
    ev_io_set(&c->io, c->fd, events);
    ev_io_start(gw_w.loop, &c->io);
}

/* Release the socket, TLS and libldap handle; requests in flight are sent
   again elsewhere (persistent ones fail). */
static void conn_close(struct conn *c)
{
    struct gw_ldap_op *op;

    c->gen++;
    ev_io_stop(gw_w.loop, &c->io);
    ev_timer_stop(gw_w.loop, &c->timer);
    if (c->ld != NULL) {
        /* Sends an unbind (non-blocking socket) and closes the descriptor. */
        ldap_unbind_ext(c->ld, NULL, NULL);
        c->ld = NULL;
        c->fd = -1;
    } else if (c->fd >= 0) {
        close(c->fd);
        c->fd = -1;
    }
    if (c->ssl != NULL) {
        SSL_free(c->ssl);
        c->ssl = NULL;
    }
    c->internal_msgid = -1;
    c->state = CONN_DOWN;
    c->broken = false;
    /* Oldest first back to the head of the queue, in their order. */
    while ((op = c->inflight.tail) != NULL) {
        list_remove(&c->inflight, op);
        op->conn = NULL;
        if ((op->flags & GW_LDAP_OP_PERSISTENT) != 0 && !c->pool->destroying) {
            op->pending = GW_LDAP_DOWN;
            ev_timer_stop(gw_w.loop, &op->timer);
            ev_timer_set(&op->timer, 0.0, 0.0);
            ev_timer_start(gw_w.loop, &op->timer);
            continue;
        }
        op->msgid = -1;
        list_prepend(&c->pool->queue, op);
        op->queued = true;
    }
}

static void conn_fail(struct conn *c, bool penalize, const char *fmt, ...)
{
    struct gw_ldap_pool *p = c->pool;
    char reason[REASON_MAX];
    va_list ap;
    int server = c->server;

    va_start(ap, fmt);
    vsnprintf(reason, sizeof(reason), fmt, ap);
    va_end(ap);
    if (c->dispatching) {
        /* conn_read is using ld: finish there. */
        if (!c->broken) {
            c->broken = true;
            c->broken_penalize = penalize;
            snprintf(c->broken_reason, sizeof(c->broken_reason), "%s", reason);
        }
        return;
    }
    /* Closed first, so that server_failed() does not evict it again. */
    conn_close(c);
    if (server >= 0) {
        if (penalize)
            server_failed(p, server, reason);
        else
            gw_log(GW_LOG_INFO, NULL, "ldap %s: %s: %s; reconnecting", p->name,
                   p->servers[server].uri, reason);
    }
    conn_connect(c);
    pool_kick(p);
}

static void conn_ready(struct conn *c)
{
    c->state = CONN_READY;
    c->ready_since = now();
    ev_timer_stop(gw_w.loop, &c->timer);
    conn_io_set(c, EV_READ);
    server_ok(c->pool, c->server);
    gw_log(GW_LOG_DEBUG, NULL, "ldap %s: connected to %s", c->pool->name,
           c->pool->servers[c->server].uri);
    pool_kick(c->pool);
}

static void conn_after_tls(struct conn *c)
{
    struct gw_ldap_pool *p = c->pool;
    struct berval cred;
    int rc;

    if (p->bind_dn == NULL) {
        conn_ready(c);
        return;
    }
    cred.bv_val = p->bind_password;
    cred.bv_len = strlen(p->bind_password);
    rc = ldap_sasl_bind(c->ld, p->bind_dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL,
                        &c->internal_msgid);
    if (rc != LDAP_SUCCESS) {
        conn_fail(c, true, "cannot send the service bind: %s", ldap_err2string(rc));
        return;
    }
    c->state = CONN_BINDING;
    conn_io_set(c, EV_READ);
}

/* Hand the connected (and, for ldaps://, encrypted) socket to libldap. */
static int conn_ldap_start(struct conn *c)
{
    struct server *s = &c->pool->servers[c->server];
    int version = LDAP_VERSION3, rc;

    rc = ldap_init_fd(c->fd, LDAP_PROTO_TCP, s->uri, &c->ld);
    if (rc != LDAP_SUCCESS) {
        conn_fail(c, true, "ldap_init_fd: %s", ldap_err2string(rc));
        return -1;
    }
    ldap_set_option(c->ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(c->ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    return 0;
}

static int conn_push_tls(struct conn *c)
{
    Sockbuf *sb = NULL;

    if (ldap_get_option(c->ld, LDAP_OPT_SOCKBUF, &sb) != LDAP_OPT_SUCCESS || sb == NULL ||
        ber_sockbuf_add_io(sb, &tls_sbio, LBER_SBIOD_LEVEL_TRANSPORT, c->ssl) != 0) {
        conn_fail(c, true, "cannot install TLS under libldap");
        return -1;
    }
    return 0;
}

static void conn_tls_step(struct conn *c)
{
    int rc = SSL_connect(c->ssl);

    if (rc == 1) {
        if (c->ld == NULL && conn_ldap_start(c) < 0)
            return;
        if (conn_push_tls(c) < 0)
            return;
        conn_after_tls(c);
        return;
    }
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        conn_io_set(c, EV_READ);
        return;
    case SSL_ERROR_WANT_WRITE:
        conn_io_set(c, EV_WRITE);
        return;
    default: {
        long vr = SSL_get_verify_result(c->ssl);

        if (vr != X509_V_OK)
            conn_fail(c, true, "TLS handshake: certificate not trusted: %s",
                      X509_verify_cert_error_string(vr));
        else
            conn_fail(c, true, "TLS handshake failed: %s", gw_tls_error_string());
        return;
    }
    }
}

static void conn_tls_start(struct conn *c)
{
    struct gw_ldap_pool *p = c->pool;
    struct server *s = &p->servers[c->server];
    struct in6_addr a6;
    struct in_addr a4;
    bool ip = inet_pton(AF_INET, s->host, &a4) == 1 || inet_pton(AF_INET6, s->host, &a6) == 1;

    c->ssl = SSL_new(p->ssl_ctx);
    if (c->ssl == NULL || SSL_set_fd(c->ssl, c->fd) != 1) {
        conn_fail(c, false, "cannot start TLS: %s", gw_tls_error_string());
        return;
    }
    if (p->verify) {
        if (ip)
            X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(c->ssl), s->host);
        else
            SSL_set1_host(c->ssl, s->host);
    }
    if (!ip)
        SSL_set_tlsext_host_name(c->ssl, s->host);
    SSL_set_connect_state(c->ssl);
    c->state = CONN_TLS;
    conn_tls_step(c);
}

/* TCP is up: TLS first for ldaps://, else StartTLS or straight on. */
static void conn_tcp_up(struct conn *c)
{
    struct gw_ldap_pool *p = c->pool;
    struct server *s = &p->servers[c->server];
    int rc;

    if (s->ldaps) {
        conn_tls_start(c);
        return;
    }
    if (conn_ldap_start(c) < 0)
        return;
    if (!p->starttls) {
        conn_after_tls(c);
        return;
    }
    rc = ldap_extended_operation(c->ld, LDAP_EXOP_START_TLS, NULL, NULL, NULL,
                                 &c->internal_msgid);
    if (rc != LDAP_SUCCESS) {
        conn_fail(c, true, "cannot send StartTLS: %s", ldap_err2string(rc));
        return;
    }
    c->state = CONN_STARTTLS;
    conn_io_set(c, EV_READ);
}

static void conn_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct conn *c = GW_CONTAINER_OF(w, struct conn, timer);

    (void)loop;
    (void)revents;
    switch (c->state) {
    case CONN_DOWN:
        conn_connect(c);
        pool_kick(c->pool);
        return;
    case CONN_CONNECTING:
        conn_fail(c, true, "connect timed out");
        return;
    case CONN_TLS:
        conn_fail(c, true, "TLS handshake timed out");
        return;
    case CONN_STARTTLS:
        conn_fail(c, true, "no answer to StartTLS");
        return;
    case CONN_BINDING:
        conn_fail(c, true, "no answer to the service bind");
        return;
    case CONN_READY:
        return;
    }
}

/*
 * Open a connection to the best usable server. A connect that fails at
 * once moves on to the next server; when none is usable the connection
 * waits (DOWN) until the first backoff ends.
 */
static void conn_connect(struct conn *c)
{
    struct gw_ldap_pool *p = c->pool;

    for (size_t attempt = 0; attempt <= p->nservers; attempt++) {
        double wait = -1;
        int idx = best_server(p, &wait);
        struct server *s;
        int fd, one = 1;

        if (idx < 0) {
            c->state = CONN_DOWN;
            c->server = -1;
            if (wait >= 0) {
                ev_timer_set(&c->timer, wait < 0.01 ? 0.01 : wait, 0.0);
                ev_timer_start(gw_w.loop, &c->timer);
            }
            return;
        }
        s = &p->servers[idx];
        c->server = idx;
        fd = socket(s->addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            server_failed(p, idx, strerror(errno));
            continue;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (connect(fd, (const struct sockaddr *)&s->addr, s->addrlen) < 0 &&
            errno != EINPROGRESS) {
            char why[128];

            snprintf(why, sizeof(why), "connect: %s", strerror(errno));
            close(fd);
            server_failed(p, idx, why);
            continue;
        }
        c->fd = fd;
        c->state = CONN_CONNECTING;
        ev_timer_set(&c->timer, (double)p->connect_timeout_ms / 1000.0, 0.0);
        ev_timer_start(gw_w.loop, &c->timer);
        conn_io_set(c, EV_WRITE);
        return;
    }
    c->state = CONN_DOWN;
    c->server = -1;
}

static void conn_internal_result(struct conn *c, LDAPMessage *msg)
{
    int err = LDAP_OTHER, rc;
    char *text = NULL;
    enum conn_state st = c->state;

    rc = ldap_parse_result(c->ld, msg, &err, NULL, &text, NULL, NULL, 0);
    c->internal_msgid = -1;
    if (rc != LDAP_SUCCESS)
        err = rc;
    if (st == CONN_STARTTLS) {
        if (err != LDAP_SUCCESS) {
            conn_fail(c, true, "StartTLS refused: %s%s%s", ldap_err2string(err),
                      text != NULL && text[0] != '\0' ? ": " : "", text != NULL ? text : "");
        } else {
            Sockbuf *sb = NULL;

            /* Nothing may follow the StartTLS answer in clear text. */
            if (ldap_get_option(c->ld, LDAP_OPT_SOCKBUF, &sb) == LDAP_OPT_SUCCESS &&
                sb != NULL && ber_sockbuf_ctrl(sb, LBER_SB_OPT_DATA_READY, NULL) > 0)
                conn_fail(c, true, "clear text after the StartTLS answer");
            else
                conn_tls_start(c);
        }
    } else if (st == CONN_BINDING) {
        if (err == LDAP_SUCCESS) {
            conn_ready(c);
        } else {
            /* Wrong service credentials are a configuration error: say so
               loudly, but keep retrying (someone may be fixing it). */
            gw_log(GW_LOG_ERROR, NULL, "ldap %s: %s: service bind as %s failed: %s%s%s",
                   c->pool->name, c->pool->servers[c->server].uri, c->pool->bind_dn,
                   ldap_err2string(err), text != NULL && text[0] != '\0' ? ": " : "",
                   text != NULL ? text : "");
            conn_fail(c, true, "service bind failed");
        }
    }
    ldap_memfree(text);
}

static struct gw_ldap_op *find_inflight(struct conn *c, int msgid)
{
    for (struct gw_ldap_op *op = c->inflight.head; op != NULL; op = op->next)
        if (op->msgid == msgid)
            return op;
    return NULL;
}

static void conn_dispatch(struct conn *c, LDAPMessage *msg)
{
    int type = ldap_msgtype(msg);
    struct gw_ldap_op *op = find_inflight(c, ldap_msgid(msg));
    bool final;

    if (op == NULL)
        return;   /* cancelled meanwhile */
    final = type != LDAP_RES_SEARCH_ENTRY && type != LDAP_RES_SEARCH_REFERENCE &&
            type != LDAP_RES_INTERMEDIATE;
    if (final) {
        gw_ldap_op_cb *cb = op->cb;
        void *arg = op->arg;

        op_detach(op);
        op_free(op);
        cb(arg, GW_LDAP_OK, c->ld, msg, true);
        pool_kick(c->pool);
    } else {
        op->cb(op->arg, GW_LDAP_OK, c->ld, msg, false);
    }
}

/*
 * Read every complete message. ldap_result() with a zero timeout can
 * return 0 after reading a message into libldap's queue without handing
 * it out (its poll budget is spent): only two zeros in a row mean that
 * nothing is left.
 */
static void conn_read(struct conn *c)
{
    unsigned gen = c->gen;
    int zeros = 0;

    c->dispatching = true;
    while (zeros < 2 && !c->broken) {
        struct timeval zero = {0, 0};
        LDAPMessage *msg = NULL;
        int rc = ldap_result(c->ld, LDAP_RES_ANY, LDAP_MSG_ONE, &zero, &msg);

        if (rc < 0) {
            int err = LDAP_SERVER_DOWN;
            bool young = c->state != CONN_READY || now() - c->ready_since < SHORT_LIVED_S;

            ldap_get_option(c->ld, LDAP_OPT_RESULT_CODE, &err);
            c->dispatching = false;
            conn_fail(c, young, "connection lost: %s", ldap_err2string(err));
            return;
        }
        if (rc == 0) {
            zeros++;
            continue;
        }
        zeros = 0;
        if (c->state == CONN_READY)
            conn_dispatch(c, msg);
        else if (ldap_msgid(msg) == c->internal_msgid)
            conn_internal_result(c, msg);
        ldap_msgfree(msg);
        if (c->gen != gen)
            return;    /* closed and reconnecting: conn_fail ran outside dispatch */
        if (c->state != CONN_READY && c->state != CONN_BINDING && c->state != CONN_STARTTLS)
            break;     /* now in the TLS handshake */
    }
    c->dispatching = false;
    if (c->broken) {
        c->broken = false;
        conn_fail(c, c->broken_penalize, "%s", c->broken_reason);
    }
}

static void conn_io_cb(struct ev_loop *loop, ev_io *w, int revents)
{
    struct conn *c = GW_CONTAINER_OF(w, struct conn, io);

    (void)loop;
    (void)revents;
    switch (c->state) {
    case CONN_CONNECTING: {
        int err = 0;
        socklen_t len = sizeof(err);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
            err = errno;
        if (err != 0) {
            conn_fail(c, true, "connect: %s", strerror(err));
            return;
        }
        conn_tcp_up(c);
        return;
    }
    case CONN_TLS:
        conn_tls_step(c);
        return;
    case CONN_STARTTLS:
    case CONN_BINDING:
    case CONN_READY:
        conn_read(c);
        return;
    case CONN_DOWN:
        conn_io_set(c, 0);
        return;
    }
}

/* Send op on c (READY, with room). */
static void conn_send(struct conn *c, struct gw_ldap_op *op)
{
    int rc;

    list_append(&c->inflight, op);
    op->conn = c;
    op->server_uri = c->pool->servers[c->server].uri;
    if (op->kind == OP_SEARCH) {
        rc = ldap_search_ext(c->ld, op->base, op->scope, op->filter, op->attrs, 0, op->ctrls,
                             NULL, NULL, op->sizelimit, &op->msgid);
    } else if (op->kind == OP_MODIFY) {
        char *vals[] = {op->mod_value, NULL};
        LDAPMod mod = {LDAP_MOD_REPLACE, op->mod_attr, {.modv_strvals = vals}};
        LDAPMod *mods[] = {&mod, NULL};

        rc = ldap_modify_ext(c->ld, op->dn, mods, NULL, NULL, &op->msgid);
    } else {
        struct berval cred = {strlen(op->password), op->password};

        rc = ldap_sasl_bind(c->ld, op->dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, &op->msgid);
    }
    if (rc == LDAP_SUCCESS)
        return;
    if (rc == LDAP_SERVER_DOWN || rc == LDAP_CONNECT_ERROR || rc == LDAP_UNAVAILABLE) {
        /* the op goes back to the queue with the others */
        conn_fail(c, false, "cannot send a request: %s", ldap_err2string(rc));
        return;
    }
    gw_log(GW_LOG_WARN, NULL, "ldap %s: request refused by libldap: %s", c->pool->name,
           ldap_err2string(rc));
    op_fail_later(op, GW_LDAP_LOCAL);
}

/* ---- pool ----------------------------------------------------------------- */

static bool pool_live(const struct gw_ldap_pool *p)
{
    for (unsigned i = 0; i < p->nconns; i++)
        if (p->conns[i].state != CONN_DOWN && !p->conns[i].broken)
            return true;
    return false;
}

/* Send what waits, as far as connections have room; fail everything that
   waits when no server can be reached at all. */
static void pool_kick(struct gw_ldap_pool *p)
{
    while (p->queue.head != NULL) {
        struct conn *best = NULL;
        struct gw_ldap_op *op;

        for (unsigned i = 0; i < p->nconns; i++) {
            struct conn *c = &p->conns[i];

            if (c->state == CONN_READY && !c->broken && c->inflight.n < p->max_inflight &&
                (best == NULL || c->inflight.n < best->inflight.n))
                best = c;
        }
        if (best == NULL)
            break;
        op = p->queue.head;
        list_remove(&p->queue, op);
        op->queued = false;
        conn_send(best, op);
    }
    if (p->queue.head != NULL && !pool_live(p)) {
        while (p->queue.head != NULL)
            op_fail_later(p->queue.head, GW_LDAP_DOWN);
    }
}

/* Idle connections on a less preferred server move back to a better one
   whose backoff is over (one at a time, so the others keep serving). */
static void maint_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw_ldap_pool *p = GW_CONTAINER_OF(w, struct gw_ldap_pool, maint);
    int best = best_server(p, NULL);

    (void)loop;
    (void)revents;
    if (best < 0)
        return;
    for (unsigned i = 0; i < p->nconns; i++) {
        enum conn_state st = p->conns[i].state;

        if (st != CONN_READY && st != CONN_DOWN)
            return;   /* a connection is already on its way somewhere */
    }
    for (unsigned i = 0; i < p->nconns; i++) {
        struct conn *c = &p->conns[i];

        if (c->state == CONN_READY && c->server > best && c->inflight.n == 0) {
            gw_log(GW_LOG_INFO, NULL, "ldap %s: moving a connection from %s back to %s",
                   p->name, p->servers[c->server].uri, p->servers[best].uri);
            conn_close(c);
            conn_connect(c);
            return;
        }
    }
}

static int resolve(struct server *s, char **error_r)
{
    struct addrinfo hints, *res = NULL;
    char port[8];
    int rc;

    memset(&hints, 0, sizeof(hints));
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    snprintf(port, sizeof(port), "%u", s->port);
    rc = getaddrinfo(s->host, port, &hints, &res);
    if (rc != 0) {
        *error_r = gw_strfmt("%s: cannot resolve %s: %s", s->uri, s->host, gai_strerror(rc));
        return -1;
    }
    memcpy(&s->addr, res->ai_addr, res->ai_addrlen);
    s->addrlen = res->ai_addrlen;
    s->resolved = true;
    freeaddrinfo(res);
    return 0;
}

static SSL_CTX *client_ctx(const struct gw_ldap_pool_conf *conf, char **error_r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        *error_r = gw_strfmt("cannot create a TLS context: %s", gw_tls_error_string());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (conf->verify) {
        int ok = conf->ca_file != NULL ? SSL_CTX_load_verify_locations(ctx, conf->ca_file, NULL)
                                       : SSL_CTX_set_default_verify_paths(ctx);

        if (ok != 1) {
            *error_r = gw_strfmt("cannot load CA file %s: %s",
                                 conf->ca_file != NULL ? conf->ca_file : "(system)",
                                 gw_tls_error_string());
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    } else {
        SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
    }
    return ctx;
}

struct gw_ldap_pool *gw_ldap_pool_create(const struct gw_ldap_pool_conf *conf, char **error_r)
{
    struct gw_ldap_pool *p = gw_calloc(1, sizeof(*p));
    bool tls = conf->starttls, any = false;
    char *first_error = NULL;

    p->name = gw_strdup(conf->name);
    p->starttls = conf->starttls;
    p->verify = conf->verify;
    p->bind_dn = conf->bind_dn != NULL ? gw_strdup(conf->bind_dn) : NULL;
    p->bind_password = conf->bind_password != NULL ? gw_strdup(conf->bind_password) : NULL;
    if (p->bind_dn != NULL && p->bind_password == NULL)
        p->bind_password = gw_strdup("");
    p->connect_timeout_ms = conf->connect_timeout_ms > 0 ? conf->connect_timeout_ms : 5000;
    p->backoff_min_ms = conf->backoff_min_ms > 0 ? conf->backoff_min_ms : 1000;
    p->backoff_max_ms = conf->backoff_max_ms >= p->backoff_min_ms ? conf->backoff_max_ms
                                                                  : p->backoff_min_ms;
    p->max_inflight = conf->max_inflight > 0 ? conf->max_inflight : 1;
    p->max_queue = conf->max_queue > 0 ? conf->max_queue : 1024;
    if (conf->share_with != NULL) {
        /* the same URIs: one view of which servers are failing */
        p->servers = conf->share_with->servers;
        p->nservers = conf->share_with->nservers;
        p->servers_lent = true;
        p->peer = conf->share_with;
        conf->share_with->peer = p;
        for (size_t i = 0; i < p->nservers; i++) {
            tls = tls || p->servers[i].ldaps;
            any = any || p->servers[i].resolved;
        }
    }
    if (!p->servers_lent) {
        p->servers = gw_calloc(conf->nuris, sizeof(*p->servers));
        p->nservers = conf->nuris;
    }
    for (size_t i = 0; i < conf->nuris && !p->servers_lent; i++) {
        struct server *s = &p->servers[i];
        const char *err = NULL;
        char *rerr = NULL;

        s->uri = gw_strdup(conf->uris[i]);
        if (gw_ldap_uri_parse(s->uri, &s->host, &s->port, &s->ldaps, &err) < 0) {
            if (first_error == NULL)
                first_error = gw_strfmt("%s: %s", s->uri, err);
            continue;
        }
        tls = tls || s->ldaps;
        if (resolve(s, &rerr) < 0) {
            gw_log(GW_LOG_ERROR, NULL, "ldap %s: %s", p->name, rerr);
            if (first_error == NULL)
                first_error = rerr;
            else
                free(rerr);
            continue;
        }
        any = true;
    }
    if (!any) {
        *error_r = first_error != NULL ? first_error : gw_strdup("no LDAP URI");
        first_error = NULL;
        goto fail;
    }
    free(first_error);
    if (tls) {
        p->ssl_ctx = client_ctx(conf, error_r);
        if (p->ssl_ctx == NULL)
            goto fail;
    }
    p->nconns = conf->connections > 0 ? conf->connections : 1;
    p->conns = gw_calloc(p->nconns, sizeof(*p->conns));
    for (unsigned i = 0; i < p->nconns; i++) {
        struct conn *c = &p->conns[i];

        c->pool = p;
        c->fd = -1;
        c->server = -1;
        c->internal_msgid = -1;
        ev_init(&c->io, conn_io_cb);
        ev_init(&c->timer, conn_timer_cb);
        conn_connect(c);
    }
    ev_timer_init(&p->maint, maint_cb, FAILBACK_CHECK_S, FAILBACK_CHECK_S);
    ev_timer_start(gw_w.loop, &p->maint);
    return p;

fail:
    free(first_error);
    {
        struct gw_ldap_pool *tmp = p;
        gw_ldap_pool_destroy(&tmp);
    }
    return NULL;
}

void gw_ldap_pool_destroy(struct gw_ldap_pool **pp)
{
    struct gw_ldap_pool *p = *pp;

    if (p == NULL)
        return;
    *pp = NULL;
    p->destroying = true;
    if (p->conns != NULL)
        ev_timer_stop(gw_w.loop, &p->maint);
    for (unsigned i = 0; i < p->nconns; i++) {
        struct conn *c = &p->conns[i];

        c->dispatching = false;
        conn_close(c);   /* in-flight ops go to the queue */
    }
    while (p->queue.head != NULL) {
        struct gw_ldap_op *op = p->queue.head;

        op_detach(op);
        op_free(op);
    }
    free(p->conns);
    if (p->peer != NULL) {
        /* the peer keeps (or takes back) the servers */
        p->peer->peer = NULL;
        if (!p->servers_lent)
            p->peer->servers_lent = false;
    } else {
        for (size_t i = 0; i < p->nservers; i++) {
            free(p->servers[i].uri);
            free(p->servers[i].host);
        }
        free(p->servers);
    }
    SSL_CTX_free(p->ssl_ctx);
    free(p->name);
    free(p->bind_dn);
    gw_free_secret(&p->bind_password);
    free(p);
}

bool gw_ldap_pool_ready(const struct gw_ldap_pool *p)
{
    for (unsigned i = 0; i < p->nconns; i++)
        if (p->conns[i].state == CONN_READY && !p->conns[i].broken)
            return true;
    return false;
}

/* ---- operations: public ------------------------------------------------- */

struct gw_ldap_op *gw_ldap_search(struct gw_ldap_pool *p, const char *base, int scope,
                                  const char *filter, const char *const *attrs, int sizelimit,
                                  LDAPControl *const *ctrls, long timeout_ms, unsigned flags,
                                  gw_ldap_op_cb *cb, void *arg)
{
    struct gw_ldap_op *op = op_new(p, OP_SEARCH, timeout_ms, flags, cb, arg);

    op->base = gw_strdup(base);
    op->scope = scope;
    op->filter = gw_strdup(filter);
    op->sizelimit = sizelimit;
    if (attrs != NULL) {
        size_t n = 0;

        while (attrs[n] != NULL)
            n++;
        op->attrs = gw_calloc(n + 1, sizeof(*op->attrs));
        for (size_t i = 0; i < n; i++)
            op->attrs[i] = gw_strdup(attrs[i]);
    }
    if (ctrls != NULL && ctrls[0] != NULL) {
        op->ctrls = ldap_controls_dup((LDAPControl *const *)ctrls);
        if (op->ctrls == NULL) {
            op_fail_later(op, GW_LDAP_LOCAL);
            return op;
        }
    }
    op_submit(op);
    return op;
}

struct gw_ldap_op *gw_ldap_bind(struct gw_ldap_pool *p, const char *dn, const char *password,
                                long timeout_ms, gw_ldap_op_cb *cb, void *arg)
{
    struct gw_ldap_op *op = op_new(p, OP_BIND, timeout_ms, 0, cb, arg);

    op->dn = gw_strdup(dn);
    op->password = gw_strdup(password);
    op_submit(op);
    return op;
}

struct gw_ldap_op *gw_ldap_modify_replace(struct gw_ldap_pool *p, const char *dn,
                                          const char *attr, const char *value, long timeout_ms,
                                          gw_ldap_op_cb *cb, void *arg)
{
    struct gw_ldap_op *op = op_new(p, OP_MODIFY, timeout_ms, 0, cb, arg);

    op->dn = gw_strdup(dn);
    op->mod_attr = gw_strdup(attr);
    op->mod_value = gw_strdup(value);
    op_submit(op);
    return op;
}

void gw_ldap_op_cancel(struct gw_ldap_op **opp)
{
    struct gw_ldap_op *op = *opp;
    struct gw_ldap_pool *p;
    struct conn *c;

    if (op == NULL)
        return;
    *opp = NULL;
    p = op->pool;
    c = op->conn;
    op_detach(op);
    if (c != NULL && c->ld != NULL && op->msgid >= 0)
        ldap_abandon_ext(c->ld, op->msgid, NULL, NULL);
    op_free(op);
    if (c != NULL)
        pool_kick(p);
}

void gw_ldap_op_set_timeout(struct gw_ldap_op *op, long timeout_ms)
{
    if (op->pending != GW_LDAP_OK)
        return;
    ev_timer_stop(gw_w.loop, &op->timer);
    if (timeout_ms > 0) {
        ev_timer_set(&op->timer, (double)timeout_ms / 1000.0, 0.0);
        ev_timer_start(gw_w.loop, &op->timer);
    }
}

const char *gw_ldap_op_server(const struct gw_ldap_op *op)
{
    return op->server_uri;
}
