/*
 * Keep-alive pool of idle backend connections, per worker.
 *
 * Bounded per server (backend_keepalive), per connection in requests
 * (backend_keepalive_requests) and in idle time (backend_keepalive_timeout).
 * An idle connection is still read from: anything it delivers -- EOF (the
 * backend closed it), an error, or bytes nobody asked for -- drops it, so a
 * request is rarely sent on a connection the backend has already closed
 * (the session retries once when that race is lost).
 *
 * Most recently used first: it is the least likely to have been closed by
 * the backend's own idle timer.
 */
#include <stdlib.h>
#include <string.h>

#include "http.h"

struct http_pool_server {
    struct http_pool_server *next;
    char *name;
    struct http_backend *idle;   /* most recently used first */
    size_t nidle;
};

struct http_pool {
    struct http_pool_server *servers;
    long per_server;
    long idle_ms;
    long max_requests;
    size_t total;
};

struct http_pool *http_pool_create(long per_server, long idle_ms, long max_requests)
{
    struct http_pool *p = gw_calloc(1, sizeof(*p));

    p->per_server = per_server;
    p->idle_ms = idle_ms;
    p->max_requests = max_requests;
    return p;
}

struct http_backend *http_backend_create(struct gw_conn *conn)
{
    struct http_backend *be = gw_calloc(1, sizeof(*be));
    const char *server = gw_upstream_server(conn);

    be->conn = conn;
    be->server = gw_strdup(server != NULL ? server : "?");
    return be;
}

void http_backend_destroy(struct http_backend **bep)
{
    struct http_backend *be = *bep;

    if (be == NULL)
        return;
    *bep = NULL;
    if (be->conn != NULL) {
        gw_conn_set_handler(be->conn, NULL, NULL);
        gw_conn_close(be->conn);
    }
    free(be->server);
    free(be);
}

static struct http_pool_server *pool_server(struct http_pool *p, const char *name, bool create)
{
    struct http_pool_server *ps;

    for (ps = p->servers; ps != NULL; ps = ps->next)
        if (strcmp(ps->name, name) == 0)
            return ps;
    if (!create)
        return NULL;
    ps = gw_calloc(1, sizeof(*ps));
    ps->name = gw_strdup(name);
    ps->next = p->servers;
    p->servers = ps;
    return ps;
}

static void pool_unlink(struct http_pool *p, struct http_backend *be)
{
    struct http_pool_server *ps = pool_server(p, be->server, false);

    if (ps == NULL)
        return;
    if (be->prev != NULL)
        be->prev->next = be->next;
    else
        ps->idle = be->next;
    if (be->next != NULL)
        be->next->prev = be->prev;
    be->next = be->prev = NULL;
    be->pool = NULL;
    ps->nidle--;
    p->total--;
}

/* Anything happening on an idle connection ends it. */
static void pool_event(struct gw_conn *c, enum gw_conn_event ev, void *arg)
{
    struct http_backend *be = arg;

    if (ev == GW_EV_DRAINED || be->pool == NULL)
        return;
    if (ev == GW_EV_READ && gw_conn_pending(c) > 0)
        gw_log(GW_LOG_INFO, NULL, "http: backend %s sent %zu unexpected bytes on an idle "
               "connection; dropped", be->server, gw_conn_pending(c));
    else if (gw_log_enabled(GW_LOG_DEBUG))
        gw_log(GW_LOG_DEBUG, NULL, "http: idle connection to backend %s %s", be->server,
               ev == GW_EV_TIMEOUT ? "timed out" : "closed");
    pool_unlink(be->pool, be);
    http_backend_destroy(&be);
}

void http_pool_put(struct http_pool *p, struct http_backend *be)
{
    struct http_pool_server *ps;

    if (p == NULL || be->requests >= (unsigned long)p->max_requests || gw_draining()) {
        http_backend_destroy(&be);
        return;
    }
    ps = pool_server(p, be->server, true);
    if (ps->nidle >= (size_t)p->per_server) {
        http_backend_destroy(&be);
        return;
    }
    be->pool = p;
    be->prev = NULL;
    be->next = ps->idle;
    if (ps->idle != NULL)
        ps->idle->prev = be;
    ps->idle = be;
    ps->nidle++;
    p->total++;
    gw_conn_set_handler(be->conn, pool_event, be);
    gw_conn_set_timeout(be->conn, p->idle_ms);
    /* read, so that the backend closing it is noticed */
    gw_conn_resume(be->conn);
}

struct http_backend *http_pool_take(struct http_pool *p, const char *server)
{
    struct http_pool_server *ps;
    struct http_backend *be;

    if (p == NULL || (ps = pool_server(p, server, false)) == NULL || ps->idle == NULL)
        return NULL;
    be = ps->idle;
    pool_unlink(p, be);
    gw_conn_set_handler(be->conn, NULL, NULL);
    gw_conn_set_timeout(be->conn, 0);
    return be;
}

/* The worker is stopping: idle backend connections would only keep it
   waiting for shutdown_timeout. */
void http_pool_drain(struct http_pool *p)
{
    if (p == NULL)
        return;
    for (struct http_pool_server *ps = p->servers; ps != NULL; ps = ps->next) {
        while (ps->idle != NULL) {
            struct http_backend *be = ps->idle;
            pool_unlink(p, be);
            http_backend_destroy(&be);
        }
    }
}

size_t http_pool_idle(const struct http_pool *p)
{
    return p != NULL ? p->total : 0;
}

void http_pool_destroy(struct http_pool **pp)
{
    struct http_pool *p = *pp;

    if (p == NULL)
        return;
    *pp = NULL;
    while (p->servers != NULL) {
        struct http_pool_server *ps = p->servers;
        p->servers = ps->next;
        while (ps->idle != NULL) {
            struct http_backend *be = ps->idle;
            ps->idle = be->next;
            be->pool = NULL;
            be->conn = NULL;   /* closed and freed by the core already */
            http_backend_destroy(&be);
        }
        free(ps->name);
        free(ps);
    }
    free(p);
}
