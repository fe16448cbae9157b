/*
 * The typed configuration, as read from gateway.yaml by gw_config_load().
 * Every string is owned by the struct gw_config (freed by gw_config_free).
 * Durations are milliseconds, sizes bytes. docs/configuration.md documents
 * every key.
 */
#ifndef GW_CORE_CONFIG_H
#define GW_CORE_CONFIG_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/gateway.h"

struct gw_plugin;

/* Where a value came from, for error messages: gateway.yaml:LINE:COL. */
struct gw_conf_pos {
    unsigned line, col;
};

struct gw_conf_cert {
    char *cert_file;           /* PEM chain, leaf first */
    char *key_file;
    struct gw_conf_pos pos;
};

struct gw_conf_listener {
    char *address;             /* as written: "127.0.0.1:110", "[::1]:110", "*:110" */
    struct sockaddr_storage addr;
    socklen_t addrlen;
    bool udp;                  /* transport: udp (datagram plugins only) */
    enum gw_tls_mode tls;
    bool allow_plaintext;      /* plaintext auth allowed without TLS */
    long max_connections;      /* per worker; 0 = unlimited */
    char *tls_min_version;     /* "1.2" (default) or "1.3" */
    char *ciphers;             /* OpenSSL cipher list for TLS <= 1.2, or NULL */
    struct gw_conf_cert *certs; /* first is the default; others chosen by SNI */
    size_t ncerts;
    bool require_client_cert;
    char *client_ca_file;
    struct gw_conf_pos pos;
};

struct gw_conf_protocol {
    char *name;                /* key under protocols: */
    char *plugin_path;         /* resolved path of the shared object */
    struct gw_conf_listener *listeners;
    size_t nlisteners;
    long idle_timeout;         /* relay idle timeout, ms */
    void *plugin_conf;         /* struct of the plugin's conf_size, filled from its keys */
    const struct gw_plugin *plugin; /* set by the loader */
    void *dl_handle;
    struct gw_conf_pos pos;
};

struct gw_conf_user {
    char *name;
    char *password_hash;       /* crypt(3): $6$..., $y$..., $5$... */
    char *database;
    int version;
    char *site;                /* NULL: the database's server site */
    char *sip_uri;
    char *extension;
    bool disabled;
    struct gw_conf_pos pos;
};

struct gw_conf_service {
    char *protocol;            /* "pop", "imap", "http", "sip" */
    unsigned port;
    enum gw_tls_mode tls;
    char *sni;                 /* server name sent to the backend, or NULL */
    bool proxy_protocol;       /* the listener wants a PROXY v2 header first */
    struct gw_conf_pos pos;
};

struct gw_conf_server {
    char *name;
    char *address;             /* host name or IP literal */
    char *site;
    bool drain;
    struct gw_conf_service *services;
    size_t nservices;
    struct gw_conf_pos pos;
};

struct gw_conf_database {
    char *name;
    char **copies;             /* server names in activation preference order */
    size_t ncopies;
    char *active;              /* server name; defaults to copies[0] */
    struct gw_conf_pos pos;
};

struct gw_conf_site {
    char *name;
    char *external_url;        /* NULL: no redirect to this site */
    struct gw_conf_pos pos;
};

enum gw_dir_source { GW_DIR_STATIC, GW_DIR_LDAP };
enum gw_loc_source { GW_LOC_STATIC, GW_LOC_LDAP };

/* How to reach an LDAP service: shared by directory.ldap and, later,
   locator.ldap (core/ldap/ldap_conn.h turns it into a pool). */
struct gw_conf_ldap_conn {
    char **uris;               /* ldap://host[:port], ldaps://host[:port]; preference order */
    size_t nuris;
    bool starttls;             /* StartTLS on ldap:// URIs */
    bool verify;               /* verify the server certificate and name */
    char *ca_file;             /* NULL: the system store */
    char *bind_dn;             /* service bind DN, or NULL: anonymous */
    char *bind_password;       /* read from bind_password_file; a secret */
    long timeout;              /* ms: one request, including waiting for a connection */
    long connect_timeout;      /* ms: TCP + TLS + service bind */
    long backoff_min, backoff_max; /* ms a failing server is left alone, doubling */
    long connections;          /* search connections per worker */
};

/* Attribute names in the user's entry (directory.ldap.attributes). */
struct gw_conf_ldap_attrs {
    char *login;               /* canonical login name (uid) */
    char *database;
    char *version;
    char *site;
    char *sip_uri;
    char *extension;
    char *disabled;
};

struct gw_conf_ldap {
    struct gw_conf_ldap_conn conn;
    char *base;                /* search base DN */
    int scope;                 /* LDAP_SCOPE_BASE (0), ONELEVEL (1), SUBTREE (2) */
    char *user_filter;         /* template with %u: the login name, RFC 4515-escaped */
    char *resolve_filter;      /* template with %u: name, SIP URI user or extension */
    struct gw_conf_ldap_attrs attrs;
    long bind_connections;     /* connections for users' binds per worker */
    long default_version;      /* when the entry has no version attribute */
};

/* locator.ldap: database entries (their copies and active server). */
struct gw_conf_loc_ldap {
    struct gw_conf_ldap_conn conn;
    char *base;                /* search base DN */
    int scope;                 /* LDAP_SCOPE_* */
    char *filter;              /* the database entries */
    char *attr_name;           /* database name (cn) */
    char *attr_copies;         /* "PREFERENCE SERVER" values (gwDatabaseCopy) */
    char *attr_active;         /* active server (gwActiveServer) */
    bool sync;                 /* RFC 4533 refreshAndPersist when the server offers it */
    long refresh;              /* ms between full searches without sync (the TTL) */
    long retry;                /* ms before a lost search is started again */
    long keepalive;            /* ms between probes of a quiet persistent search; 0: none */
};

struct gw_config {
    char *file;                /* path as given, for messages */
    long workers;              /* 0 = auto (one per core) */
    char *plugin_dir;
    enum gw_log_level log_level;
    long shutdown_timeout;     /* ms: drain time on SIGTERM */
    char *local_site;          /* this gateway's site, or NULL */

    /* auth: */
    long auth_failure_delay;   /* ms before a failed login is answered */
    long auth_cache_ttl;       /* ms a verified credential is trusted */
    long auth_negative_ttl;    /* ms an unknown user is remembered */
    long auth_cache_size;      /* entries per worker */
    long auth_stale_ttl;       /* ms past expiry a cached user is served while the
                                  directory is unavailable (0: never) */
    /* auth.penalty: failed logins per client address and per user name */
    long penalty_after;        /* failures before the delay starts growing (0: off) */
    long penalty_delay;        /* ms added at the first penalised failure, doubling */
    long penalty_max_delay;    /* ms: cap of the added delay */
    long penalty_lockout_user; /* failures of one user name before a lockout (0: never) */
    long penalty_lockout_ip;   /* failures from one address before a lockout (0: never) */
    long penalty_lockout_time; /* ms a lockout lasts */
    long penalty_window;       /* ms without a failure after which the count is forgotten */

    /* upstream: */
    long connect_timeout;      /* ms */
    long connect_retries;      /* further copies tried after a failure */
    bool upstream_verify;      /* verify backend certificates */
    char *upstream_ca_file;    /* NULL: system store */

    enum gw_dir_source dir_source;
    struct gw_conf_user *users;
    size_t nusers;
    struct gw_conf_ldap dir_ldap;  /* source: ldap */

    enum gw_loc_source loc_source;
    struct gw_conf_server *servers;
    size_t nservers;
    struct gw_conf_database *databases;
    size_t ndatabases;
    struct gw_conf_site *sites;
    size_t nsites;
    struct gw_conf_loc_ldap loc_ldap; /* locator source: ldap */

    struct gw_conf_protocol *protocols;
    size_t nprotocols;

    /* locator.health: probes per server and service */
    bool health_enabled;
    long health_interval;      /* ms between probes of one service */
    long health_timeout;       /* ms a probe may take */
    long health_rise;          /* consecutive successes to come up */
    long health_fall;          /* consecutive failures to go down */
    char *health_http_path;    /* GET path for http services */
    long hold_down;            /* ms a login waits for a healthy copy */
    long move_close_window;    /* ms over which sessions on a moved copy are closed */

    /* admin: */
    char *admin_socket;        /* unix socket path prefix (".N" per worker), or NULL */
};

/*
 * Read and validate `file`. Plugins are loaded here (their conf keys are
 * needed to parse protocols.<name>), with gw_plugin_load().
 * On success returns 0 and *conf_r. On failure returns -1 and *errors_r, a
 * malloc'ed string of one "FILE:LINE:COL: message" line per error (lines
 * separated by '\n', no newline after the last; past 100 errors, a last
 * line counts the rest). Every error in the file is reported, not only the first.
 */
int gw_config_load(const char *file, struct gw_config **conf_r, char **errors_r);

/* Flags of gw_config_parse(). */
#define GW_CONFIG_NO_PLUGINS 0x1  /* don't dlopen plugins; their keys are not checked
                                     (fuzzing, tests of the core alone) */
/*
 * The same on a YAML text already in memory; `file` names it in messages
 * and relative paths are resolved against its directory.
 */
int gw_config_parse(const char *file, const char *data, size_t len, unsigned flags,
                    struct gw_config **conf_r, char **errors_r);
void gw_config_free(struct gw_config **conf);

/* Parse "30s", "5m", "250ms", "1h", "2d", or a bare number of seconds. */
int gw_parse_duration(const char *s, long *ms_r);
/* Parse "64k", "10M", "1G", or a bare number of bytes (k = 1024). */
int gw_parse_size(const char *s, long *bytes_r);
/* Parse "127.0.0.1:110", "[::1]:110", "*:110" (all IPv4), "[::]:110". */
int gw_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len_r);

/* Lookups by name (linear; config sizes are small or called off the hot path). */
const struct gw_conf_server *gw_config_server(const struct gw_config *conf, const char *name);
const struct gw_conf_database *gw_config_database(const struct gw_config *conf, const char *name);
const struct gw_conf_site *gw_config_site(const struct gw_config *conf, const char *name);
const struct gw_conf_service *gw_config_service(const struct gw_conf_server *srv, const char *protocol);

#endif
