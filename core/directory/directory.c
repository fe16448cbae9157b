/*
 * Lookups: gw_authenticate() and gw_resolve() for the plugins.
 *
 * A verified credential is cached per worker as a keyed hash of the user
 * name and password (HMAC-SHA256 under a random per-process key): the clear
 * password is never kept, and a keep-alive client or a reconnecting mail
 * app costs no second directory round trip or crypt(3). A failed
 * verification drops the entry. Failures are answered after
 * auth.failure_delay, which slows down guessing without blocking anyone.
 */
#include <openssl/evp.h>
#include <openssl/core_names.h>
#include <openssl/params.h>
#include <openssl/rand.h>
#include <stdlib.h>
#include <string.h>

#include "directory.h"
#include "../cache.h"

struct cred_entry {
    unsigned char digest[32];
    struct gw_dir_record rec;
};

static const struct gw_dir_driver *source;
static const struct gw_config *dconf;
static struct gw_cache *cred_cache;
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
    dconf = conf;
    switch (conf->dir_source) {
    case GW_DIR_STATIC:
        source = &gw_dir_static;
        break;
    default:
        *error_r = gw_strdup("directory source not available in this build");
        return -1;
    }
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
    return source->init(conf, error_r);
}

void gw_directory_deinit(void)
{
    if (source != NULL)
        source->deinit();
    gw_cache_destroy(&cred_cache);
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
        delay = (double)dconf->auth_failure_delay / 1000.0;
    ev_timer_init(&l->deliver, deliver_cb, delay, 0.0);
    ev_timer_start(gw_w.loop, &l->deliver);
}

void gw_dir_done(struct gw_lookup *l, enum gw_auth_result res, const struct gw_dir_record *rec)
{
    l->source_busy = false;
    l->res = res;
    if (res == GW_AUTH_OK && rec != NULL)
        l->rec = *rec;
    if (l->verify) {
        if (res == GW_AUTH_OK) {
            struct cred_entry e;
            memcpy(e.digest, l->digest, sizeof(e.digest));
            e.rec = l->rec;
            gw_cache_put(cred_cache, l->key, &e, gw_now_ms() + (unsigned long long)dconf->auth_cache_ttl);
            OPENSSL_cleanse(&e, sizeof(e));
        } else if (res == GW_AUTH_BAD_PASSWORD || res == GW_AUTH_DISABLED) {
            gw_cache_remove(cred_cache, l->key);
        }
    }
    if (res != GW_AUTH_OK && res != GW_AUTH_UNAVAILABLE)
        gw_log(GW_LOG_DEBUG, NULL, "lookup of %s: %s", l->key, gw_auth_result_str(res));
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
    cred_digest(user, password, l->digest);
    e = gw_cache_get(cred_cache, user, &expires);
    if (e != NULL && expires > gw_now_ms() && CRYPTO_memcmp(e->digest, l->digest, 32) == 0) {
        l->res = GW_AUTH_OK;
        l->rec = e->rec;
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
