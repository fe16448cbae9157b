/*
 * The static directory: users in gateway.yaml with crypt(3) hashes.
 * Lookups by name, SIP URI user or extension go through sorted indexes;
 * password checks run on the crypt pool thread.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "crypt_pool.h"
#include "directory.h"

struct index_entry {
    const char *key;
    const struct gw_conf_user *user;
};

static struct index_entry *idx;
static size_t nidx;
static const struct gw_config *sconf;

static int cmp_entry(const void *a, const void *b)
{
    return strcmp(((const struct index_entry *)a)->key, ((const struct index_entry *)b)->key);
}

static int static_init(const struct gw_config *conf, char **error_r)
{
    sconf = conf;
    idx = gw_calloc(conf->nusers * 3 + 1, sizeof(*idx));
    nidx = 0;
    for (size_t i = 0; i < conf->nusers; i++) {
        const struct gw_conf_user *u = &conf->users[i];
        idx[nidx++] = (struct index_entry){u->name, u};
        if (u->sip_uri != NULL && strcmp(u->sip_uri, u->name) != 0)
            idx[nidx++] = (struct index_entry){u->sip_uri, u};
        if (u->extension != NULL)
            idx[nidx++] = (struct index_entry){u->extension, u};
    }
    qsort(idx, nidx, sizeof(*idx), cmp_entry);
    if (gw_crypt_pool_start() < 0) {
        *error_r = gw_strdup("cannot start the password hashing thread");
        return -1;
    }
    return 0;
}

static void static_deinit(void)
{
    gw_crypt_pool_stop();
    free(idx);
    idx = NULL;
    nidx = 0;
}

static const struct gw_conf_user *find(const char *key, bool name_only)
{
    struct index_entry k = {key, NULL};
    const struct index_entry *e = bsearch(&k, idx, nidx, sizeof(*idx), cmp_entry);

    if (e == NULL)
        return NULL;
    if (name_only && strcmp(e->user->name, key) != 0)
        return NULL;
    return e->user;
}

static void fill_record(const struct gw_conf_user *u, struct gw_dir_record *r)
{
    const char *site = u->site;

    memset(r, 0, sizeof(*r));
    snprintf(r->user, sizeof(r->user), "%s", u->name);
    snprintf(r->database, sizeof(r->database), "%s", u->database);
    if (site == NULL) {
        /* the site of the database's active copy */
        const struct gw_conf_database *db = gw_config_database(sconf, u->database);
        const struct gw_conf_server *srv =
            db != NULL && db->active != NULL ? gw_config_server(sconf, db->active) : NULL;
        site = srv != NULL ? srv->site : NULL;
    }
    if (site != NULL)
        snprintf(r->site, sizeof(r->site), "%s", site);
    if (u->sip_uri != NULL)
        snprintf(r->sip_uri, sizeof(r->sip_uri), "%s", u->sip_uri);
    if (u->extension != NULL)
        snprintf(r->extension, sizeof(r->extension), "%s", u->extension);
    r->version = u->version;
}

static void verified(void *arg, bool ok)
{
    struct gw_lookup *l = arg;
    const struct gw_conf_user *u = find(l->key, true);
    struct gw_dir_record rec;

    l->source_data = NULL;
    if (u == NULL) {
        gw_dir_done(l, GW_AUTH_UNKNOWN_USER, NULL);
        return;
    }
    if (!ok) {
        gw_dir_done(l, GW_AUTH_BAD_PASSWORD, NULL);
        return;
    }
    if (u->disabled) {
        gw_dir_done(l, GW_AUTH_DISABLED, NULL);
        return;
    }
    fill_record(u, &rec);
    gw_dir_done(l, GW_AUTH_OK, &rec);
}

static void static_start(struct gw_lookup *l, const char *key, const char *password)
{
    const struct gw_conf_user *u = find(key, password != NULL);
    struct gw_dir_record rec;

    if (u == NULL) {
        gw_dir_done(l, GW_AUTH_UNKNOWN_USER, NULL);
        return;
    }
    if (password == NULL) {
        if (u->disabled) {
            gw_dir_done(l, GW_AUTH_DISABLED, NULL);
            return;
        }
        fill_record(u, &rec);
        gw_dir_done(l, GW_AUTH_OK, &rec);
        return;
    }
    l->source_data = gw_crypt_verify(password, u->password_hash, verified, l);
    if (l->source_data == NULL) {
        gw_log(GW_LOG_WARN, NULL, "password hashing queue full: refusing login of %s", key);
        gw_dir_done(l, GW_AUTH_UNAVAILABLE, NULL);
    }
}

static void static_cancel(struct gw_lookup *l)
{
    if (l->source_data != NULL)
        gw_crypt_cancel(l->source_data);
    l->source_data = NULL;
}

const struct gw_dir_driver gw_dir_static = {
    .name = "static",
    .init = static_init,
    .deinit = static_deinit,
    .start = static_start,
    .cancel = static_cancel,
};
