/*
 * The LDAP directory source.
 *
 * A lookup is one search on the worker's search pool (service-bound
 * connections) with the login name substituted into the configured filter,
 * RFC 4515-escaped; for gw_authenticate() it is followed by a simple bind
 * as the entry found, on the separate bind pool, so that users' binds never
 * change the identity the searches run as. Everything is asynchronous
 * (core/ldap/ldap_conn.c); every request has the configured timeout.
 *
 * Outcomes: no entry -> unknown user; more than one -> unknown user and a
 * warning (the filter is ambiguous); bind refused with invalidCredentials
 * -> bad password; the disabled attribute set -> account disabled (only
 * said after the password was right, so that it reveals nothing to a
 * guesser); timeouts, no server, unexpected result codes -> unavailable.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "../ldap/ldap_conn.h"
#include "../ldap/ldap_util.h"

#define SEARCH_INFLIGHT  32u    /* searches outstanding per connection */
#define QUEUE_MAX        4096u  /* requests waiting for a connection, per pool */

struct ldap_req {
    struct gw_lookup *l;
    struct gw_ldap_op *op;
    char *password;            /* wiped when freed */
    char *dn;
    unsigned nentries;
    bool disabled, bad_entry, has_db;
    struct gw_dir_record rec;
};

static const struct gw_conf_ldap *lconf;
static struct gw_ldap_pool *search_pool, *bind_pool;
static const char *attrs[8];

static int ldap_src_init(const struct gw_config *conf, char **error_r)
{
    const struct gw_conf_ldap *l = &conf->dir_ldap;
    struct gw_ldap_pool_conf pc;
    size_t n = 0;

    lconf = l;
    memset(&pc, 0, sizeof(pc));
    pc.name = "directory";
    pc.uris = l->conn.uris;
    pc.nuris = l->conn.nuris;
    pc.starttls = l->conn.starttls;
    pc.verify = l->conn.verify;
    pc.ca_file = l->conn.ca_file;
    pc.bind_dn = l->conn.bind_dn;
    pc.bind_password = l->conn.bind_password;
    pc.connect_timeout_ms = l->conn.connect_timeout;
    pc.backoff_min_ms = l->conn.backoff_min;
    pc.backoff_max_ms = l->conn.backoff_max;
    pc.connections = (unsigned)l->conn.connections;
    pc.max_inflight = SEARCH_INFLIGHT;
    pc.max_queue = QUEUE_MAX;
    search_pool = gw_ldap_pool_create(&pc, error_r);
    if (search_pool == NULL)
        return -1;
    /* Users' binds: anonymous until each bind, one at a time per connection. */
    pc.name = "directory binds";
    pc.bind_dn = NULL;
    pc.bind_password = NULL;
    pc.connections = (unsigned)l->bind_connections;
    pc.max_inflight = 1;
    pc.share_with = search_pool;
    bind_pool = gw_ldap_pool_create(&pc, error_r);
    if (bind_pool == NULL) {
        gw_ldap_pool_destroy(&search_pool);
        return -1;
    }
    memset(attrs, 0, sizeof(attrs));
    {
        const char *names[] = {l->attrs.login, l->attrs.database, l->attrs.version,
                               l->attrs.site, l->attrs.sip_uri, l->attrs.extension,
                               l->attrs.disabled};

        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
            if (names[i] != NULL)
                attrs[n++] = names[i];
    }
    attrs[n] = NULL;
    return 0;
}

static void ldap_src_deinit(void)
{
    gw_ldap_pool_destroy(&bind_pool);
    gw_ldap_pool_destroy(&search_pool);
    lconf = NULL;
}

static void req_free(struct ldap_req *r)
{
    gw_ldap_op_cancel(&r->op);
    gw_free_secret(&r->password);
    if (r->dn != NULL)
        ldap_memfree(r->dn);
    OPENSSL_cleanse(&r->rec, sizeof(r->rec));
    free(r);
}

static void finish(struct ldap_req *r, enum gw_auth_result res)
{
    struct gw_lookup *l = r->l;
    struct gw_dir_record rec = r->rec;

    r->op = NULL;    /* finished: nothing to cancel */
    l->source_data = NULL;
    req_free(r);
    gw_dir_done(l, res, res == GW_AUTH_OK ? &rec : NULL);
}

/* The first value of attribute `name` into buf; false when absent (or
   when it does not fit, with a warning). */
static bool get_value(LDAP *ld, LDAPMessage *entry, const char *name, const char *dn, char *buf,
                      size_t size)
{
    struct berval **v;
    bool ok = false;

    buf[0] = '\0';
    if (name == NULL)
        return false;
    v = ldap_get_values_len(ld, entry, name);
    if (v == NULL || v[0] == NULL)
        goto out;
    if (v[0]->bv_len >= size || memchr(v[0]->bv_val, '\0', v[0]->bv_len) != NULL) {
        gw_log(GW_LOG_WARN, NULL, "ldap directory: %s: %s is longer than %zu bytes or has a NUL",
               dn, name, size - 1);
        goto out;
    }
    memcpy(buf, v[0]->bv_val, v[0]->bv_len);
    buf[v[0]->bv_len] = '\0';
    ok = true;
out:
    ldap_value_free_len(v);
    return ok;
}

static void read_entry(struct ldap_req *r, LDAP *ld, LDAPMessage *entry)
{
    const struct gw_conf_ldap_attrs *a = &lconf->attrs;
    struct gw_dir_record *rec = &r->rec;
    char buf[64];

    r->dn = ldap_get_dn(ld, entry);
    /* Never bind with an empty DN (an anonymous bind "succeeds"), nor as
       an entry outside the configured subtree. */
    if (r->dn == NULL || !gw_ldap_dn_under(r->dn, lconf->base)) {
        gw_log(GW_LOG_WARN, NULL, "ldap directory: entry '%s' for %s is not under the base '%s'",
               r->dn != NULL ? r->dn : "", r->l->key, lconf->base);
        r->bad_entry = true;
        return;
    }
    if (!get_value(ld, entry, a->login, r->dn, rec->user, sizeof(rec->user)))
        snprintf(rec->user, sizeof(rec->user), "%s", r->l->key);
    r->has_db = get_value(ld, entry, a->database, r->dn, rec->database, sizeof(rec->database));
    rec->version = (int)lconf->default_version;
    if (get_value(ld, entry, a->version, r->dn, buf, sizeof(buf))) {
        char *end;
        long v = strtol(buf, &end, 10);

        if (*end == '\0' && end != buf && v >= 1 && v <= 99)
            rec->version = (int)v;
        else
            gw_log(GW_LOG_WARN, NULL, "ldap directory: %s: %s '%s' is not a version (1-99)",
                   r->dn, a->version, buf);
    }
    get_value(ld, entry, a->site, r->dn, rec->site, sizeof(rec->site));
    get_value(ld, entry, a->sip_uri, r->dn, rec->sip_uri, sizeof(rec->sip_uri));
    get_value(ld, entry, a->extension, r->dn, rec->extension, sizeof(rec->extension));
    if (get_value(ld, entry, a->disabled, r->dn, buf, sizeof(buf)))
        r->disabled = gw_ldap_value_disables(buf, strlen(buf));
    if (!r->has_db) {
        gw_log(GW_LOG_WARN, NULL, "ldap directory: %s has no %s: no mailbox to route to", r->dn,
               a->database);
        r->bad_entry = true;
    }
}

static void bind_cb(void *arg, enum gw_ldap_err err, LDAP *ld, LDAPMessage *msg, bool final)
{
    struct ldap_req *r = arg;
    int rc = LDAP_OTHER;
    char *text = NULL;

    if (!final)
        return;
    r->op = NULL;
    if (err != GW_LDAP_OK) {
        gw_log(GW_LOG_WARN, NULL, "ldap directory: bind as %s for %s: %s", r->dn, r->l->key,
               gw_ldap_err_str(err));
        finish(r, GW_AUTH_UNAVAILABLE);
        return;
    }
    if (ldap_parse_result(ld, msg, &rc, NULL, &text, NULL, NULL, 0) != LDAP_SUCCESS)
        rc = LDAP_OTHER;
    switch (rc) {
    case LDAP_SUCCESS:
        finish(r, r->disabled ? GW_AUTH_DISABLED : GW_AUTH_OK);
        break;
    case LDAP_INVALID_CREDENTIALS:
        finish(r, GW_AUTH_BAD_PASSWORD);
        break;
    default:
        gw_log(GW_LOG_WARN, NULL, "ldap directory: bind as %s for %s: %s%s%s", r->dn, r->l->key,
               ldap_err2string(rc), text != NULL && text[0] != '\0' ? ": " : "",
               text != NULL ? text : "");
        finish(r, GW_AUTH_UNAVAILABLE);
        break;
    }
    ldap_memfree(text);
}

static void search_done(struct ldap_req *r, LDAP *ld, LDAPMessage *msg)
{
    int rc = LDAP_OTHER;
    char *text = NULL;

    if (ldap_parse_result(ld, msg, &rc, NULL, &text, NULL, NULL, 0) != LDAP_SUCCESS)
        rc = LDAP_OTHER;
    if (rc != LDAP_SUCCESS && !(rc == LDAP_SIZELIMIT_EXCEEDED && r->nentries > 1)) {
        gw_log(rc == LDAP_NO_SUCH_OBJECT ? GW_LOG_ERROR : GW_LOG_WARN, NULL,
               "ldap directory: search for %s under '%s': %s%s%s", r->l->key, lconf->base,
               ldap_err2string(rc), text != NULL && text[0] != '\0' ? ": " : "",
               text != NULL ? text : "");
        ldap_memfree(text);
        finish(r, GW_AUTH_UNAVAILABLE);
        return;
    }
    ldap_memfree(text);
    if (r->nentries == 0) {
        finish(r, GW_AUTH_UNKNOWN_USER);
        return;
    }
    if (r->nentries > 1) {
        gw_log(GW_LOG_WARN, NULL, "ldap directory: %s matches more than one entry: refused "
               "(make the filter or the attribute unique)", r->l->key);
        finish(r, GW_AUTH_UNKNOWN_USER);
        return;
    }
    if (r->bad_entry) {
        finish(r, GW_AUTH_UNKNOWN_USER);
        return;
    }
    if (r->password == NULL) {
        finish(r, r->disabled ? GW_AUTH_DISABLED : GW_AUTH_OK);
        return;
    }
    r->op = gw_ldap_bind(bind_pool, r->dn, r->password, lconf->conn.timeout, bind_cb, r);
}

static void search_cb(void *arg, enum gw_ldap_err err, LDAP *ld, LDAPMessage *msg, bool final)
{
    struct ldap_req *r = arg;

    if (final)
        r->op = NULL;
    if (err != GW_LDAP_OK) {
        gw_log(GW_LOG_WARN, NULL, "ldap directory: search for %s: %s", r->l->key,
               gw_ldap_err_str(err));
        finish(r, GW_AUTH_UNAVAILABLE);
        return;
    }
    switch (ldap_msgtype(msg)) {
    case LDAP_RES_SEARCH_ENTRY:
        if (++r->nentries == 1)
            read_entry(r, ld, msg);
        return;
    case LDAP_RES_SEARCH_REFERENCE:
    case LDAP_RES_INTERMEDIATE:
        return;
    default:
        if (final)
            search_done(r, ld, msg);
        return;
    }
}

static void ldap_src_start(struct gw_lookup *l, const char *key, const char *password)
{
    char filter[GW_LDAP_FILTER_MAX];
    const char *err = NULL;
    size_t klen = strlen(key);
    struct ldap_req *r;

    /* No name this long exists; and an empty one matches nothing useful. */
    if (klen == 0 || klen > GW_LDAP_LOGIN_MAX ||
        gw_ldap_filter_expand(password != NULL ? lconf->user_filter : lconf->resolve_filter, key,
                              filter, sizeof(filter), &err) < 0) {
        gw_dir_done(l, GW_AUTH_UNKNOWN_USER, NULL);
        return;
    }
    /* An empty password would make a simple bind "unauthenticated", which
       servers may accept (RFC 4513 5.1.2): never send one. */
    if (password != NULL && password[0] == '\0') {
        gw_dir_done(l, GW_AUTH_BAD_PASSWORD, NULL);
        return;
    }
    r = gw_calloc(1, sizeof(*r));
    r->l = l;
    r->password = password != NULL ? gw_strdup(password) : NULL;
    l->source_data = r;
    r->op = gw_ldap_search(search_pool, lconf->base, lconf->scope, filter, attrs, 2, NULL,
                           lconf->conn.timeout, 0, search_cb, r);
}

static void ldap_src_cancel(struct gw_lookup *l)
{
    struct ldap_req *r = l->source_data;

    if (r == NULL)
        return;
    l->source_data = NULL;
    req_free(r);
}

const struct gw_dir_driver gw_dir_ldap = {
    .name = "ldap",
    .init = ldap_src_init,
    .deinit = ldap_src_deinit,
    .start = ldap_src_start,
    .cancel = ldap_src_cancel,
};
