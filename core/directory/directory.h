/*
 * The directory front: caching, failure delay and cancellation around a
 * source (static table or LDAP) that verifies passwords and finds mailboxes.
 */
#ifndef GW_CORE_DIRECTORY_H
#define GW_CORE_DIRECTORY_H

#include "../core.h"

/* A mailbox record as sources produce it and the cache keeps it. */
struct gw_dir_record {
    char user[128];
    char database[64];
    char site[64];
    char sip_uri[128];
    char extension[32];
    int version;
};

struct gw_dir_driver {
    const char *name;
    int (*init)(const struct gw_config *conf, char **error_r);
    void (*deinit)(void);
    /* Verify key/password (password != NULL) or just find key. The source
       calls gw_dir_done() exactly once, possibly before start returns,
       unless cancel() is called first. Per-lookup state: l->source_data. */
    void (*start)(struct gw_lookup *l, const char *key, const char *password);
    void (*cancel)(struct gw_lookup *l);
};

struct gw_lookup {
    gw_lookup_cb *cb;
    void *arg;
    char *key;
    unsigned char digest[32];  /* keyed hash of key+password, for the cache */
    bool verify;
    bool source_busy;          /* the source has not called gw_dir_done yet */
    enum gw_auth_result res;
    struct gw_dir_record rec;
    ev_timer deliver;
    void *source_data;
    char peer[46];
    long extra_delay;          /* ms of failed-login penalty added to the failure delay */
};

void gw_dir_done(struct gw_lookup *l, enum gw_auth_result res, const struct gw_dir_record *rec);

extern const struct gw_dir_driver gw_dir_static;
extern const struct gw_dir_driver gw_dir_ldap;

/* gw_directory_init() with a given source (unit tests use a fake one). */
int gw_directory_init_driver(const struct gw_config *conf, const struct gw_dir_driver *driver,
                             char **error_r);

#endif
