/*
 * Lookups: gw_authenticate() and gw_resolve() for the plugins.
 *
 * A verified credential is cached per worker as a keyed hash of the user
 * name and password (HMAC-SHA256 under a random per-process key): the clear
 * password is never kept, and a keep-alive client or a reconnecting mail
 * app costs no second directory round trip or crypt(3). A failed
 * verification drops the entry. Failures are answered after
 * auth.failure_delay, which slows down guessing without blocking anyone.
 *
 * Besides the credentials, per worker and bounded (LRU):
 *  - found mailboxes by key (gw_resolve), for auth.cache_ttl;
 *  - unknown keys, for auth.negative_ttl, so a mistyped or made-up name
 *    does not cost a directory search per attempt;
 *  - failed-login counts per client address and per user name
 *    (penalty.h): a growing extra delay, then a temporary lockout;
 *  - stale-if-error: when the source says the directory is unavailable, a
 *    user whose credential (or, for gw_resolve, whose mailbox) is cached
 *    is still served up to auth.stale_if_error past the entry's expiry,
 *    with a warning in the log. Nobody else gets in.
 */
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "penalty.h"
#include "../cache.h"

#define PENALTY_TABLE_MIN 1000u   /* entries per penalty table, whatever cache_size */

struct cred_entry {
    unsigned char digest[32];
    struct gw_dir_record rec;
};

struct neg_entry {
    char unused;
};

static const struct gw_dir_driver *source;
static const struct gw_config *dconf;
static struct gw_cache *cred_cache;
static struct gw_cache *lookup_cache;   /* key -> struct gw_dir_record */
static struct gw_cache *neg_cache;      /* "a:"/"r:" + key -> unknown */
static struct gw_cache *pen_users, *pen_addrs;
static struct gw_penalty_conf pen_user_conf, pen_addr_conf;
static unsigned char cred_key[32];
static EVP_MAC *mac;
static EVP_MAC_CTX *mac_template;

const char *gw_auth_result_str(enum gw_auth_result r)
{
    switch (r) {
    case GW_AUTH_OK: return "ok";
    case GW_AUTH_UNKNOWN_USER: return "unknown user";
    case GW_AUTH_BAD_PASSWORD: return "bad password";
    case GW_AUTH_DISABLED: return "account disabled";
    case GW_AUTH_UNAVAILABLE: return "directory unavailable";
    case GW_AUTH_THROTTLED: return "throttled";
    }
    return "?";
}

int gw_directory_init(const struct gw_config *conf, char **error_r)
{
    switch (conf->dir_source) {
    case GW_DIR_STATIC:
        return gw_directory_init_driver(conf, &gw_dir_static, error_r);
    case GW_DIR_LDAP:
        return gw_directory_init_driver(conf, &gw_dir_ldap, error_r);
    }
    *error_r = gw_strdup("directory source not available in this build");
    return -1;
}

int gw_directory_init_driver(const struct gw_config *conf, const struct gw_dir_driver *driver,
                             char **error_r)
{
    size_t pen_size;

    dconf = conf;
    source = driver;
    if (RAND_bytes(cred_key, sizeof(cred_key)) != 1) {
        *error_r = gw_strdup("no randomness for the credential cache key");
        return -1;
    }
    {
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                               OSSL_PARAM_construct_end()};
        mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        mac_template = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
        if (mac_template == NULL ||
            EVP_MAC_init(mac_template, cred_key, sizeof(cred_key), params) != 1) {
            *error_r = gw_strdup("cannot set up HMAC-SHA256 for the credential cache");
            return -1;
        }
    }
    cred_cache = gw_cache_create((size_t)conf->auth_cache_size, sizeof(struct cred_entry));
    lookup_cache = gw_cache_create((size_t)conf->auth_cache_size, sizeof(struct gw_dir_record));
    neg_cache = gw_cache_create((size_t)conf->auth_cache_size, sizeof(struct neg_entry));
    pen_size = (size_t)conf->auth_cache_size > PENALTY_TABLE_MIN ? (size_t)conf->auth_cache_size
                                                                 : PENALTY_TABLE_MIN;
    pen_users = gw_cache_create(pen_size, sizeof(struct gw_penalty));
    pen_addrs = gw_cache_create(pen_size, sizeof(struct gw_penalty));
    pen_user_conf = (struct gw_penalty_conf){
        .after = conf->penalty_after, .delay = conf->penalty_delay,
        .max_delay = conf->penalty_max_delay, .lockout = conf->penalty_lockout_user,
        .lockout_time = conf->penalty_lockout_time, .window = conf->penalty_window,
    };
    pen_addr_conf = pen_user_conf;
    pen_addr_conf.lockout = conf->penalty_lockout_ip;
    return source->init(conf, error_r);
}

void gw_directory_deinit(void)
{
    if (source != NULL)
        source->deinit();
    gw_cache_destroy(&cred_cache);
    gw_cache_destroy(&lookup_cache);
    gw_cache_destroy(&neg_cache);
    gw_cache_destroy(&pen_users);
    gw_cache_destroy(&pen_addrs);
    EVP_MAC_CTX_free(mac_template);
    EVP_MAC_free(mac);
    mac_template = NULL;
    mac = NULL;
    OPENSSL_cleanse(cred_key, sizeof(cred_key));
    source = NULL;
}

static void lookup_free(struct gw_lookup *l)
{
    ev_timer_stop(gw_w.loop, &l->deliver);
    OPENSSL_cleanse(l->digest, sizeof(l->digest));
    free(l->key);
    free(l);
}

static void deliver_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    struct gw_lookup *l = GW_CONTAINER_OF(w, struct gw_lookup, deliver);
    struct gw_mailbox m;

    (void)loop;
    (void)revents;
    memset(&m, 0, sizeof(m));
    if (l->res == GW_AUTH_OK) {
        m.user = l->rec.user;
        m.database = l->rec.database;
        m.version = l->rec.version;
        m.site = l->rec.site[0] != '\0' ? l->rec.site : NULL;
        m.sip_uri = l->rec.sip_uri[0] != '\0' ? l->rec.sip_uri : NULL;
        m.extension = l->rec.extension[0] != '\0' ? l->rec.extension : NULL;
    }
    l->cb(l->arg, l->res, l->res == GW_AUTH_OK ? &m : NULL);
    lookup_free(l);
}

/* Hand the result to the plugin from the loop (never from inside the
   plugin's own call), failures after the configured delay. */
static void schedule(struct gw_lookup *l)
{
    double delay = 0.0;

    if (l->verify && l->res != GW_AUTH_OK && l->res != GW_AUTH_UNAVAILABLE)
        delay = (double)(dconf->auth_failure_delay + l->extra_delay) / 1000.0;
    ev_timer_init(&l->deliver, deliver_cb, delay, 0.0);
    if (delay <= 0.0) {
        /* Pending now: runs after the current callback, in this loop
           iteration (a zero timer would cost a poll without sleeping: one
           epoll_wait per cached login). Stopping the timer cancels it. */
        ev_feed_event(gw_w.loop, &l->deliver, EV_TIMER);
        return;
    }
    ev_timer_start(gw_w.loop, &l->deliver);
}

/* ---- caches ------------------------------------------------------------ */

/* Unknown login names (a:) and unknown resolve keys (r:) apart: a
   resolve also matches SIP URIs and extensions. Malloc'ed. */
static char *neg_key(bool verify, const char *key)
{
    return gw_strfmt("%c:%s", verify ? 'a' : 'r', key);
}

static bool neg_hit(bool verify, const char *key)
{
    char *k = neg_key(verify, key);
    unsigned long long expires = 0;
    bool hit = gw_cache_get(neg_cache, k, &expires) != NULL && expires > gw_now_ms();

    free(k);
    return hit;
}

/* ---- penalties ---------------------------------------------------------- */

static struct gw_penalty penalty_get(struct gw_cache *t, const char *key)
{
    const struct gw_penalty *p = key[0] != '\0' ? gw_cache_get(t, key, NULL) : NULL;
    struct gw_penalty none = {0, 0, 0};

    return p != NULL ? *p : none;
}

static bool penalty_locked(const struct gw_lookup *l)
{
    unsigned long long now = gw_now_ms();
    struct gw_penalty u = penalty_get(pen_users, l->key), a = penalty_get(pen_addrs, l->peer);

    return gw_penalty_locked(&pen_user_conf, &u, now) ||
           gw_penalty_locked(&pen_addr_conf, &a, now);
}

/* Count a failed login against one key; returns the extra delay. */
static long penalty_fail_one(struct gw_cache *t, const struct gw_penalty_conf *pc,
                             const char *key, const char *what)
{
    struct gw_penalty p;
    unsigned long long now = gw_now_ms();
    bool locked;
    long d;

    if (key[0] == '\0')
        return 0;
    p = penalty_get(t, key);
    d = gw_penalty_fail(pc, &p, now, &locked);
    gw_cache_put(t, key, &p, gw_penalty_expires(pc, &p));
    if (locked)
        gw_log(GW_LOG_WARN, NULL, "%s %s locked out for %ld s after %lu failed logins", what, key,
               pc->lockout_time / 1000, p.count);
    return d;
}

/* Penalties and caches follow the outcome of a password check. */
static void account(struct gw_lookup *l)
{
    long du, da;

    if (!l->verify)
        return;
    switch (l->res) {
    case GW_AUTH_OK:
        gw_cache_remove(pen_users, l->key);
        if (l->peer[0] != '\0')
            gw_cache_remove(pen_addrs, l->peer);
        break;
    case GW_AUTH_UNKNOWN_USER:
    case GW_AUTH_BAD_PASSWORD:
    case GW_AUTH_DISABLED:
        du = penalty_fail_one(pen_users, &pen_user_conf, l->key, "user");
        da = penalty_fail_one(pen_addrs, &pen_addr_conf, l->peer, "client");
        l->extra_delay = du > da ? du : da;
        break;
    case GW_AUTH_UNAVAILABLE:
    case GW_AUTH_THROTTLED:
        break;
    }
}

/* The directory is unavailable: serve what the cache knows about this
   user, if it is not older than the stale window. */
static bool serve_stale(struct gw_lookup *l)
{
    unsigned long long now = gw_now_ms(), expires = 0;
    const struct gw_dir_record *rec = NULL;

    if (dconf->auth_stale_ttl <= 0)
        return false;
    if (l->verify) {
        const struct cred_entry *e = gw_cache_get(cred_cache, l->key, &expires);

        if (e != NULL && CRYPTO_memcmp(e->digest, l->digest, 32) == 0)
            rec = &e->rec;
    } else {
        rec = gw_cache_get(lookup_cache, l->key, &expires);
    }
    if (rec == NULL || now > expires + (unsigned long long)dconf->auth_stale_ttl)
        return false;
    l->rec = *rec;
    gw_log(GW_LOG_WARN, NULL,
           "directory unavailable: serving %s from the cache (stale for %llu s; "
           "auth.stale_if_error allows %ld s)",
           l->key, now > expires ? (now - expires) / 1000 : 0, dconf->auth_stale_ttl / 1000);
    return true;
}

void gw_dir_done(struct gw_lookup *l, enum gw_auth_result res, const struct gw_dir_record *rec)
{
    unsigned long long now = gw_now_ms();
    char *nk;

    l->source_busy = false;
    l->res = res;
    if (res == GW_AUTH_OK && rec != NULL)
        l->rec = *rec;
    nk = neg_key(l->verify, l->key);
    switch (res) {
    case GW_AUTH_OK:
        if (l->verify) {
            struct cred_entry e;

            memcpy(e.digest, l->digest, sizeof(e.digest));
            e.rec = l->rec;
            gw_cache_put(cred_cache, l->key, &e,
                         now + (unsigned long long)dconf->auth_cache_ttl);
            OPENSSL_cleanse(&e, sizeof(e));
        }
        gw_cache_put(lookup_cache, l->key, &l->rec,
                     now + (unsigned long long)dconf->auth_cache_ttl);
        gw_cache_remove(neg_cache, nk);
        break;
    case GW_AUTH_UNKNOWN_USER:
        if (dconf->auth_negative_ttl > 0) {
            struct neg_entry e = {0};

            gw_cache_put(neg_cache, nk, &e, now + (unsigned long long)dconf->auth_negative_ttl);
        }
        gw_cache_remove(lookup_cache, l->key);
        if (l->verify)
            gw_cache_remove(cred_cache, l->key);
        break;
    case GW_AUTH_BAD_PASSWORD:
    case GW_AUTH_DISABLED:
        if (l->verify)
            gw_cache_remove(cred_cache, l->key);
        if (res == GW_AUTH_DISABLED)
            gw_cache_remove(lookup_cache, l->key);
        break;
    case GW_AUTH_UNAVAILABLE:
        if (serve_stale(l))
            l->res = GW_AUTH_OK;
        break;
    case GW_AUTH_THROTTLED:
        break;
    }
    free(nk);
    if (l->res != GW_AUTH_OK && l->res != GW_AUTH_UNAVAILABLE)
        gw_log(GW_LOG_DEBUG, NULL, "lookup of %s: %s", l->key, gw_auth_result_str(l->res));
    account(l);
    schedule(l);
}

/* HMAC-SHA256 under the per-process key of user NUL password. */
static void cred_digest(const char *user, const char *password, unsigned char out[32])
{
    EVP_MAC_CTX *ctx = EVP_MAC_CTX_dup(mac_template);
    unsigned char zero = 0;
    size_t outl = 32;

    if (ctx == NULL || EVP_MAC_init(ctx, NULL, 0, NULL) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)user, strlen(user)) != 1 ||
        EVP_MAC_update(ctx, &zero, 1) != 1 ||
        EVP_MAC_update(ctx, (const unsigned char *)password, strlen(password)) != 1 ||
        EVP_MAC_final(ctx, out, &outl, 32) != 1) {
        /* cannot hash: make the digest unmatchable so the cache is bypassed */
        RAND_bytes(out, 32);
    }
    EVP_MAC_CTX_free(ctx);
}

static struct gw_lookup *lookup_new(const char *key, gw_lookup_cb *cb, void *arg)
{
    struct gw_lookup *l = gw_calloc(1, sizeof(*l));

    l->cb = cb;
    l->arg = arg;
    l->key = gw_strdup(key);
    ev_init(&l->deliver, deliver_cb);
    return l;
}

struct gw_lookup *gw_authenticate(struct gw_conn *c, const char *user, const char *password,
                                  gw_lookup_cb *cb, void *arg)
{
    struct gw_lookup *l = lookup_new(user, cb, arg);
    const struct cred_entry *e;
    unsigned long long expires = 0;

    l->verify = true;
    if (c != NULL)
        memcpy(l->peer, gw_conn_peer(c)->addr, sizeof(l->peer));
    l->peer[sizeof(l->peer) - 1] = '\0';
    if (penalty_locked(l)) {
        /* Even the right password: the point is to stop the guessing. */
        l->res = GW_AUTH_THROTTLED;
        schedule(l);
        return l;
    }
    cred_digest(user, password, l->digest);
    e = gw_cache_get(cred_cache, user, &expires);
    if (e != NULL && expires > gw_now_ms() && CRYPTO_memcmp(e->digest, l->digest, 32) == 0) {
        l->res = GW_AUTH_OK;
        l->rec = e->rec;
        account(l);
        schedule(l);
        return l;
    }
    if (neg_hit(true, user)) {
        l->res = GW_AUTH_UNKNOWN_USER;
        gw_log(GW_LOG_DEBUG, NULL, "lookup of %s: %s (cached)", user, gw_auth_result_str(l->res));
        account(l);
        schedule(l);
        return l;
    }
    l->source_busy = true;
    source->start(l, user, password);
    return l;
}

struct gw_lookup *gw_resolve(const char *key, gw_lookup_cb *cb, void *arg)
{
    struct gw_lookup *l = lookup_new(key, cb, arg);
    const struct gw_dir_record *rec;
    unsigned long long expires = 0;

    rec = gw_cache_get(lookup_cache, key, &expires);
    if (rec != NULL && expires > gw_now_ms()) {
        l->res = GW_AUTH_OK;
        l->rec = *rec;
        schedule(l);
        return l;
    }
    if (neg_hit(false, key)) {
        l->res = GW_AUTH_UNKNOWN_USER;
        schedule(l);
        return l;
    }
    l->source_busy = true;
    source->start(l, key, NULL);
    return l;
}

void gw_lookup_cancel(struct gw_lookup **lp)
{
    struct gw_lookup *l = *lp;

    if (l == NULL)
        return;
    *lp = NULL;
    if (l->source_busy && source->cancel != NULL)
        source->cancel(l);
    lookup_free(l);
}
