/*
 * The ldap locator source: see ldap_source.h and docs/ldap/README.md.
 *
 * RFC 4533 is driven by hand on the worker loop (ldap_sync_init() blocks):
 * one search with the Sync Request Control (refreshAndPersist, the last
 * cookie when there is one), flagged GW_LDAP_OP_PERSISTENT so the pool
 * reports a lost connection instead of re-sending it. Entries carry a Sync
 * State Control (add/modify/delete/present, the entryUUID); Sync Info
 * messages carry cookies, the end of the present or delete phase and ID
 * sets. Entries not named during a present phase, or during any refresh
 * started without a cookie, are gone. On failure the search starts again
 * after locator.ldap.retry with the cookie; until then routing keeps the
 * last known map. A server that refuses the control (no syncprov, AD) is
 * read with a full search every locator.ldap.refresh instead.
 */
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ldap_source.h"
#include "ldap_sync.h"
#include "../ldap/ldap_conn.h"

struct ldb {
    struct gw_conf_database d; /* every string owned */
    char *dn;
    unsigned char uuid[16];
    bool has_uuid;
    bool from_dir;             /* false: a seed from gateway.yaml */
    bool seen;                 /* named during the current refresh */
};

enum ls_state { LS_START, LS_REFRESH, LS_PERSIST, LS_POLL, LS_DOWN };
static const char *const state_names[] = {"starting", "refreshing", "synced (persistent search)",
                                          "polling", "unavailable (last known map)"};

struct gw_locldap_write {
    struct gw_ldap_op *op;
    char *database, *server;
    gw_locldap_write_cb *cb;
    void *arg;
};

static struct {
    const struct gw_config *conf;
    const struct gw_conf_loc_ldap *lc;
    struct gw_ldap_pool *pool;
    struct gw_ldap_op *op;
    struct ldb **dbs;
    size_t ndbs;
    struct berval cookie;
    bool nosync;               /* the server refused the sync control */
    bool full;                 /* this refresh started without a cookie */
    bool loaded;               /* a refresh has completed once */
    enum ls_state state;
    ev_timer timer;
    ev_timer keepalive;        /* while synced: is the server still answering? */
    struct gw_ldap_op *ka_op;
    char error[160];
} ls;

static void start_search(void);
static void lost(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static struct ldb **grow(struct ldb **a, size_t n)
{
    struct ldb **p = realloc(a, n * sizeof(*a));

    if (p == NULL)
        abort();
    return p;
}

/* ---- the map ------------------------------------------------------------- */

static void ldb_free(struct ldb *b)
{
    free(b->d.name);
    gw_copies_free(b->d.copies, b->d.ncopies);
    free(b->d.active);
    free(b->dn);
    free(b);
}

static struct ldb *find_name(const char *name)
{
    for (size_t i = 0; i < ls.ndbs; i++)
        if (strcmp(ls.dbs[i]->d.name, name) == 0)
            return ls.dbs[i];
    return NULL;
}

static struct ldb *find_uuid(const unsigned char *uuid)
{
    for (size_t i = 0; i < ls.ndbs; i++)
        if (ls.dbs[i]->has_uuid && memcmp(ls.dbs[i]->uuid, uuid, 16) == 0)
            return ls.dbs[i];
    return NULL;
}

static void remove_at(size_t i, const char *why)
{
    gw_log(GW_LOG_WARN, NULL, "locator: database %s %s", ls.dbs[i]->d.name, why);
    ldb_free(ls.dbs[i]);
    ls.dbs[i] = ls.dbs[--ls.ndbs];
}

static void remove_uuid(const unsigned char *uuid)
{
    for (size_t i = 0; i < ls.ndbs; i++)
        if (ls.dbs[i]->has_uuid && memcmp(ls.dbs[i]->uuid, uuid, 16) == 0) {
            remove_at(i, "removed from the directory");
            return;
        }
}

static void mark_seen(const unsigned char *uuid)
{
    struct ldb *b = find_uuid(uuid);

    if (b != NULL)
        b->seen = true;
}

/* Entries of the directory that the last full refresh did not name. */
static void sweep(void)
{
    for (size_t i = 0; i < ls.ndbs;)
        if (ls.dbs[i]->from_dir && !ls.dbs[i]->seen)
            remove_at(i, "no longer in the directory");
        else
            i++;
}

static void clear_seen(void)
{
    for (size_t i = 0; i < ls.ndbs; i++)
        ls.dbs[i]->seen = false;
}

/* The configured server's own spelling (LDAP compares names without case). */
static char *server_name(const char *s, const char *database)
{
    const struct gw_config *conf = ls.conf;

    for (size_t i = 0; i < conf->nservers; i++)
        if (strcasecmp(conf->servers[i].name, s) == 0)
            return gw_strdup(conf->servers[i].name);
    gw_log(GW_LOG_WARN, NULL, "locator: database %s names server %s, which is not in "
           "locator.servers: ignored for routing", database, s);
    return gw_strdup(s);
}

/* Set the active copy; a move goes the way of an operator's switchover. */
static void set_active(struct ldb *b, const char *server, bool announce)
{
    char *old = b->d.active;

    if (old != NULL && strcmp(old, server) == 0)
        return;
    b->d.active = gw_strdup(server);
    if (old != NULL && announce)
        gw_locator_moved(b->d.name, old, b->d.active);
    free(old);
}

static void upsert(const unsigned char *uuid, const char *dn, const char *name, char **copies,
                   size_t ncopies, const char *active)
{
    struct ldb *b = uuid != NULL ? find_uuid(uuid) : NULL;
    char *act;

    if (b == NULL)
        b = find_name(name);
    if (b == NULL) {
        b = gw_calloc(1, sizeof(*b));
        b->d.name = gw_strdup(name);
        ls.dbs = grow(ls.dbs, ls.ndbs + 1);
        ls.dbs[ls.ndbs++] = b;
    } else if (strcmp(b->d.name, name) != 0) {
        gw_log(GW_LOG_WARN, NULL, "locator: database %s renamed %s", b->d.name, name);
        free(b->d.name);
        b->d.name = gw_strdup(name);
    }
    if (uuid != NULL) {
        memcpy(b->uuid, uuid, 16);
        b->has_uuid = true;
    }
    b->from_dir = true;
    b->seen = true;
    free(b->dn);
    b->dn = gw_strdup(dn);
    gw_copies_free(b->d.copies, b->d.ncopies);
    b->d.copies = copies;
    b->d.ncopies = ncopies;
    act = server_name(active != NULL ? active : copies[0], name);
    set_active(b, act, true);
    free(act);
}

static char *first_value(LDAP *ld, LDAPMessage *e, const char *attr)
{
    struct berval **v = ldap_get_values_len(ld, e, attr);
    char *s = NULL;

    if (v != NULL && v[0] != NULL && memchr(v[0]->bv_val, '\0', v[0]->bv_len) == NULL) {
        s = gw_malloc(v[0]->bv_len + 1);
        memcpy(s, v[0]->bv_val, v[0]->bv_len);
        s[v[0]->bv_len] = '\0';
    }
    ldap_value_free_len(v);
    return s;
}

static void entry_values(LDAP *ld, LDAPMessage *e, const unsigned char *uuid)
{
    const struct gw_conf_loc_ldap *lc = ls.lc;
    char *dn = ldap_get_dn(ld, e);
    char *name = first_value(ld, e, lc->attr_name);
    char *active = first_value(ld, e, lc->attr_active);
    struct berval **vals = ldap_get_values_len(ld, e, lc->attr_copies);
    char **copies = NULL;
    size_t n = 0, nvals = 0;
    const char *err = NULL;

    while (vals != NULL && vals[nvals] != NULL)
        nvals++;
    if (name == NULL || dn == NULL) {
        gw_log(GW_LOG_WARN, NULL, "locator: entry %s has no %s: ignored", dn ? dn : "?",
               lc->attr_name);
    } else if (gw_copies_parse((const struct berval *const *)vals, nvals, &copies, &n, &err) < 0) {
        gw_log(GW_LOG_WARN, NULL, "locator: database %s (%s): %s: %s; keeping what was known",
               name, dn, lc->attr_copies, err);
        if (uuid != NULL)
            mark_seen(uuid);
    } else {
        for (size_t i = 0; i < n; i++) {
            char *canon = server_name(copies[i], name);
            free(copies[i]);
            copies[i] = canon;
        }
        upsert(uuid, dn, name, copies, n, active);
    }
    ldap_value_free_len(vals);
    ldap_memfree(dn);
    free(name);
    free(active);
}

static void set_cookie(const struct berval *c)
{
    if (c->bv_len == 0)
        return;
    free(ls.cookie.bv_val);
    ls.cookie.bv_val = gw_malloc(c->bv_len);
    memcpy(ls.cookie.bv_val, c->bv_val, c->bv_len);
    ls.cookie.bv_len = c->bv_len;
}

static void clear_cookie(void)
{
    free(ls.cookie.bv_val);
    ls.cookie.bv_val = NULL;
    ls.cookie.bv_len = 0;
}

/* ---- the search ------------------------------------------------------------ */

static void arm(long ms)
{
    ev_timer_stop(gw_w.loop, &ls.timer);
    ev_timer_set(&ls.timer, (double)ms / 1000.0, 0.0);
    ev_timer_start(gw_w.loop, &ls.timer);
}

/* A persistent search is silent while nothing changes, so a server that
   stopped answering (hung, SIGSTOPped, a dropped route without RST) would
   go unnoticed and every change missed. Every keepalive interval, read the
   root DSE (base scope, no attributes): no answer within the operation
   timeout fails the connection, which ends the persistent search too, and
   the search starts again from its cookie. */
static void keepalive_cb(void *arg, enum gw_ldap_err err, LDAP *ld, LDAPMessage *msg,
                         bool final)
{
    (void)arg;
    (void)ld;
    (void)msg;
    if (final)
        ls.ka_op = NULL;
    if (err != GW_LDAP_OK && ls.state == LS_PERSIST)
        lost("keepalive: %s", gw_ldap_err_str(err));
}

static void keepalive_timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    static const char *const no_attrs[] = {"1.1", NULL};

    (void)loop;
    (void)w;
    (void)revents;
    if (ls.state != LS_PERSIST || ls.ka_op != NULL)
        return;
    ls.ka_op = gw_ldap_search(ls.pool, "", LDAP_SCOPE_BASE, "(objectClass=*)", no_attrs, 0,
                              NULL, ls.lc->conn.timeout, 0, keepalive_cb, NULL);
}

static void refresh_done(void)
{
    bool first = !ls.loaded;

    ls.loaded = true;
    ls.state = LS_PERSIST;
    ls.error[0] = '\0';
    if (ls.op != NULL)
        gw_ldap_op_set_timeout(ls.op, 0);
    if (ls.lc->keepalive > 0 && !ev_is_active(&ls.keepalive)) {
        ev_timer_set(&ls.keepalive, (double)ls.lc->keepalive / 1000.0,
                     (double)ls.lc->keepalive / 1000.0);
        ev_timer_start(gw_w.loop, &ls.keepalive);
    }
    gw_log(first ? GW_LOG_INFO : GW_LOG_DEBUG, NULL,
           "locator: %zu database(s) from the directory, following changes", ls.ndbs);
}

static void on_entry(LDAP *ld, LDAPMessage *msg)
{
    LDAPControl **ctrls = NULL;
    LDAPControl *st;
    unsigned char uuid[16];
    struct berval cookie;
    int state;

    if (ls.nosync) {
        entry_values(ld, msg, NULL);
        return;
    }
    if (ldap_get_entry_controls(ld, msg, &ctrls) != LDAP_SUCCESS ||
        (st = ldap_control_find(LDAP_CONTROL_SYNC_STATE, ctrls, NULL)) == NULL ||
        gw_sync_state_decode(&st->ldctl_value, &state, uuid, &cookie) < 0) {
        gw_log(GW_LOG_WARN, NULL, "locator: an entry without a valid sync state: ignored");
        ldap_controls_free(ctrls);
        return;
    }
    ldap_controls_free(ctrls);
    switch (state) {
    case LDAP_SYNC_DELETE:
        remove_uuid(uuid);
        break;
    case LDAP_SYNC_PRESENT:
        mark_seen(uuid);
        break;
    default:
        entry_values(ld, msg, uuid);
        break;
    }
    set_cookie(&cookie);
    ber_memfree(cookie.bv_val);
}

static void on_info(LDAP *ld, LDAPMessage *msg)
{
    char *oid = NULL;
    struct berval *data = NULL;
    struct gw_sync_info info;

    if (ldap_parse_intermediate(ld, msg, &oid, &data, NULL, 0) != LDAP_SUCCESS)
        return;
    if (oid == NULL || strcmp(oid, LDAP_SYNC_INFO) != 0 || data == NULL ||
        gw_sync_info_decode(data, &info) < 0) {
        ldap_memfree(oid);
        ber_bvfree(data);
        return;
    }
    ldap_memfree(oid);
    ber_bvfree(data);
    set_cookie(&info.cookie);
    switch (info.kind) {
    case GW_SYNC_NEW_COOKIE:
        break;
    case GW_SYNC_REFRESH_PRESENT:
        sweep();   /* the end of a present phase: what was not named is gone */
        clear_seen();
        if (info.refresh_done)
            refresh_done();
        break;
    case GW_SYNC_REFRESH_DELETE:
        if (ls.full)
            sweep();
        clear_seen();
        if (info.refresh_done)
            refresh_done();
        break;
    case GW_SYNC_ID_SET:
        for (size_t i = 0; i < info.nuuids; i++) {
            if (info.refresh_deletes)
                remove_uuid((const unsigned char *)info.uuids[i].bv_val);
            else
                mark_seen((const unsigned char *)info.uuids[i].bv_val);
        }
        break;
    }
    gw_sync_info_free(&info);
}

static void lost(const char *fmt, ...)
{
    va_list ap;
    bool was = ls.state != LS_DOWN;

    va_start(ap, fmt);
    vsnprintf(ls.error, sizeof(ls.error), fmt, ap);
    va_end(ap);
    if (was)
        gw_log(GW_LOG_WARN, NULL, "locator: directory search failed (%s); routing with the "
               "last known map, trying again every %ld ms", ls.error, ls.lc->retry);
    ls.state = LS_DOWN;
    arm(ls.lc->retry);
}

static void on_result(LDAP *ld, LDAPMessage *msg)
{
    int rc = LDAP_OTHER;
    char *text = NULL;
    LDAPControl **ctrls = NULL;

    if (ldap_parse_result(ld, msg, &rc, NULL, &text, NULL, &ctrls, 0) != LDAP_SUCCESS)
        rc = LDAP_OTHER;
    if (rc == LDAP_SUCCESS) {
        LDAPControl *done = ldap_control_find(LDAP_CONTROL_SYNC_DONE, ctrls, NULL);
        struct berval cookie;
        bool dels;

        if (done != NULL && gw_sync_done_decode(&done->ldctl_value, &cookie, &dels) == 0) {
            set_cookie(&cookie);
            ber_memfree(cookie.bv_val);
        }
        if (ls.full)
            sweep();
        clear_seen();
        if (ls.nosync) {
            if (!ls.loaded)
                gw_log(GW_LOG_INFO, NULL, "locator: %zu database(s) from the directory, "
                       "read again every %ld ms", ls.ndbs, ls.lc->refresh);
            ls.loaded = true;
            ls.state = LS_POLL;
            ls.error[0] = '\0';
            arm(ls.lc->refresh);
        } else {
            lost("the server ended the persistent search");
        }
    } else if (rc == LDAP_SYNC_REFRESH_REQUIRED) {
        gw_log(GW_LOG_INFO, NULL, "locator: the directory asks for a full refresh");
        clear_cookie();
        arm(0);
    } else if (!ls.nosync && (rc == LDAP_UNAVAILABLE_CRITICAL_EXTENSION ||
                              rc == LDAP_UNWILLING_TO_PERFORM || rc == LDAP_PROTOCOL_ERROR)) {
        gw_log(GW_LOG_WARN, NULL, "locator: the directory offers no content synchronization "
               "(%s): reading it every %ld ms instead", ldap_err2string(rc), ls.lc->refresh);
        ls.nosync = true;
        clear_cookie();
        arm(0);
    } else {
        lost("%s%s%s", ldap_err2string(rc), text != NULL && text[0] ? ": " : "",
             text != NULL ? text : "");
    }
    ldap_memfree(text);
    ldap_controls_free(ctrls);
}

static void search_cb(void *arg, enum gw_ldap_err err, LDAP *ld, LDAPMessage *msg, bool final)
{
    (void)arg;
    if (final)
        ls.op = NULL;
    if (err != GW_LDAP_OK) {
        lost("%s", gw_ldap_err_str(err));
        return;
    }
    switch (ldap_msgtype(msg)) {
    case LDAP_RES_SEARCH_ENTRY:
        on_entry(ld, msg);
        break;
    case LDAP_RES_INTERMEDIATE:
        on_info(ld, msg);
        break;
    case LDAP_RES_SEARCH_RESULT:
        on_result(ld, msg);
        break;
    default:
        break;
    }
}

static void start_search(void)
{
    const struct gw_conf_loc_ldap *lc = ls.lc;
    const char *attrs[] = {lc->attr_name, lc->attr_copies, lc->attr_active, NULL};

    gw_ldap_op_cancel(&ls.op);
    clear_seen();
    if (!lc->sync)
        ls.nosync = true;
    if (ls.nosync) {
        ls.full = true;
        ls.op = gw_ldap_search(ls.pool, lc->base, lc->scope, lc->filter, attrs, 0, NULL,
                               lc->conn.timeout, 0, search_cb, NULL);
    } else {
        struct berval value;
        LDAPControl ctrl, *ctrls[2] = {&ctrl, NULL};

        if (gw_sync_request_encode(LDAP_SYNC_REFRESH_AND_PERSIST, &ls.cookie, false, &value) < 0) {
            lost("cannot encode the sync request");
            return;
        }
        ctrl.ldctl_oid = (char *)LDAP_CONTROL_SYNC;
        ctrl.ldctl_value = value;
        ctrl.ldctl_iscritical = 1;
        ls.full = ls.cookie.bv_len == 0;
        if (ls.state != LS_DOWN)
            ls.state = LS_REFRESH;
        ls.op = gw_ldap_search(ls.pool, lc->base, lc->scope, lc->filter, attrs, 0, ctrls,
                               lc->conn.timeout, GW_LDAP_OP_PERSISTENT, search_cb, NULL);
        ber_memfree(value.bv_val);
    }
}

static void timer_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)loop;
    (void)w;
    (void)revents;
    start_search();
}

/* ---- public ------------------------------------------------------------------ */

int gw_locldap_start(const struct gw_config *conf, char **error_r)
{
    const struct gw_conf_loc_ldap *lc = &conf->loc_ldap;
    struct gw_ldap_pool_conf pc;

    memset(&ls, 0, sizeof(ls));
    ls.conf = conf;
    ls.lc = lc;
    /* gateway.yaml's databases, if any, until the directory names them */
    for (size_t i = 0; i < conf->ndatabases; i++) {
        const struct gw_conf_database *cd = &conf->databases[i];
        struct ldb *b = gw_calloc(1, sizeof(*b));

        b->d.name = gw_strdup(cd->name);
        b->d.copies = gw_calloc(cd->ncopies, sizeof(char *));
        for (size_t c = 0; c < cd->ncopies; c++)
            b->d.copies[c] = gw_strdup(cd->copies[c]);
        b->d.ncopies = cd->ncopies;
        b->d.active = gw_strdup(cd->active);
        ls.dbs = grow(ls.dbs, ls.ndbs + 1);
        ls.dbs[ls.ndbs++] = b;
    }
    memset(&pc, 0, sizeof(pc));
    pc.name = "locator";
    pc.uris = lc->conn.uris;
    pc.nuris = lc->conn.nuris;
    pc.starttls = lc->conn.starttls;
    pc.verify = lc->conn.verify;
    pc.ca_file = lc->conn.ca_file;
    pc.bind_dn = lc->conn.bind_dn;
    pc.bind_password = lc->conn.bind_password;
    pc.connect_timeout_ms = lc->conn.connect_timeout;
    pc.backoff_min_ms = lc->conn.backoff_min;
    pc.backoff_max_ms = lc->conn.backoff_max;
    pc.connections = (unsigned)lc->conn.connections;
    pc.max_inflight = 8;
    pc.max_queue = 64;
    ls.pool = gw_ldap_pool_create(&pc, error_r);
    if (ls.pool == NULL)
        return -1;
    ev_timer_init(&ls.timer, timer_cb, 0.0, 0.0);
    ev_init(&ls.keepalive, keepalive_timer_cb);
    ls.state = LS_START;
    start_search();
    return 0;
}

void gw_locldap_stop(void)
{
    if (ls.pool == NULL && ls.dbs == NULL)
        return;
    if (gw_w.loop != NULL) {
        ev_timer_stop(gw_w.loop, &ls.timer);
        ev_timer_stop(gw_w.loop, &ls.keepalive);
    }
    gw_ldap_op_cancel(&ls.ka_op);
    gw_ldap_op_cancel(&ls.op);
    gw_ldap_pool_destroy(&ls.pool);
    for (size_t i = 0; i < ls.ndbs; i++)
        ldb_free(ls.dbs[i]);
    free(ls.dbs);
    clear_cookie();
    memset(&ls, 0, sizeof(ls));
}

const struct gw_conf_database *gw_locldap_database(const char *name)
{
    struct ldb *b = name != NULL ? find_name(name) : NULL;

    return b != NULL ? &b->d : NULL;
}

void gw_locldap_describe(FILE *f)
{
    for (size_t i = 0; i < ls.ndbs; i++) {
        const struct gw_conf_database *d = &ls.dbs[i]->d;

        fprintf(f, "database %s active %s copies", d->name, d->active);
        for (size_t c = 0; c < d->ncopies; c++)
            fprintf(f, " %s", d->copies[c]);
        fputc('\n', f);
    }
    fprintf(f, "ldap: %s%s%s\n", state_names[ls.state], ls.error[0] ? ": " : "", ls.error);
}

static void write_cb(void *arg, enum gw_ldap_err err, LDAP *ld, LDAPMessage *msg, bool final)
{
    struct gw_locldap_write *w = arg;
    char reason[200];
    const char *error = NULL;

    if (!final)
        return;
    w->op = NULL;
    if (err != GW_LDAP_OK) {
        snprintf(reason, sizeof(reason), "directory write failed: %s", gw_ldap_err_str(err));
        error = reason;
    } else {
        int rc = LDAP_OTHER;
        char *text = NULL;

        if (ldap_parse_result(ld, msg, &rc, NULL, &text, NULL, NULL, 0) != LDAP_SUCCESS)
            rc = LDAP_OTHER;
        if (rc != LDAP_SUCCESS) {
            snprintf(reason, sizeof(reason), "directory write refused: %s%s%s",
                     ldap_err2string(rc), text != NULL && text[0] ? ": " : "",
                     text != NULL ? text : "");
            error = reason;
        }
        ldap_memfree(text);
    }
    if (error == NULL) {
        struct ldb *b = find_name(w->database);

        gw_log(GW_LOG_WARN, NULL, "locator: database %s: active server set to %s in the "
               "directory by operator", w->database, w->server);
        if (b != NULL)
            set_active(b, w->server, true);
    }
    w->cb(w->arg, error);
    free(w->database);
    free(w->server);
    free(w);
}

struct gw_locldap_write *gw_locldap_switchover(const char *database, const char *server,
                                               gw_locldap_write_cb *cb, void *arg,
                                               const char **error_r)
{
    struct ldb *b = find_name(database);
    const char *name = NULL;
    struct gw_locldap_write *w;

    if (b == NULL) {
        *error_r = "no such database";
        return NULL;
    }
    if (b->dn == NULL) {
        *error_r = "database not (yet) known from the directory";
        return NULL;
    }
    for (size_t c = 0; c < b->d.ncopies; c++)
        if (strcmp(b->d.copies[c], server) == 0)
            name = b->d.copies[c];
    if (name == NULL) {
        *error_r = "server holds no copy of that database";
        return NULL;
    }
    w = gw_calloc(1, sizeof(*w));
    w->database = gw_strdup(database);
    w->server = gw_strdup(name);
    w->cb = cb;
    w->arg = arg;
    w->op = gw_ldap_modify_replace(ls.pool, b->dn, ls.lc->attr_active, name,
                                   ls.lc->conn.timeout, write_cb, w);
    return w;
}

void gw_locldap_write_cancel(struct gw_locldap_write **wp)
{
    struct gw_locldap_write *w = *wp;

    if (w == NULL)
        return;
    *wp = NULL;
    gw_ldap_op_cancel(&w->op);
    free(w->database);
    free(w->server);
    free(w);
}
