/*
 * gateway.yaml: the schema.
 *
 * The document is walked section by section in a fixed order, whatever the
 * order in the file, so that what a section refers to is known when it is
 * used: sites, then the locator (servers name sites, databases name
 * servers), then the directory (users name databases and sites), then the
 * protocols (which load their plugins to learn their keys). Each entry is
 * kept even when it has errors, so that one mistake is reported once and not
 * again by everything that refers to it. Every error is collected; none
 * stops the walk. docs/configuration.md is the reference for every key.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "config_yaml.h"
#include "ldap/ldap_util.h"
#include "plugin_loader.h"

/* ---- limits and defaults (docs/configuration.md lists them) ----------- */

#define MS_SECOND 1000L
#define MS_MINUTE (60 * MS_SECOND)
#define MS_HOUR   (60 * MS_MINUTE)
#define MS_DAY    (24 * MS_HOUR)

#define WORKERS_MAX              64
#define SHUTDOWN_TIMEOUT_DEFAULT (10 * MS_SECOND)
#define SHUTDOWN_TIMEOUT_MAX     MS_HOUR
#define FAILURE_DELAY_DEFAULT    (2 * MS_SECOND)
#define FAILURE_DELAY_MAX        MS_MINUTE
#define CACHE_TTL_DEFAULT        (5 * MS_MINUTE)
#define NEGATIVE_TTL_DEFAULT     (30 * MS_SECOND)
#define CACHE_TTL_MAX            MS_DAY
#define CACHE_SIZE_DEFAULT       10000L
#define CACHE_SIZE_MAX           10000000L
#define CONNECT_TIMEOUT_DEFAULT  (5 * MS_SECOND)
#define CONNECT_TIMEOUT_MIN      100L
#define CONNECT_TIMEOUT_MAX      (5 * MS_MINUTE)
#define RETRIES_DEFAULT          1L
#define RETRIES_MAX              8L
#define IDLE_TIMEOUT_DEFAULT     (10 * MS_MINUTE)
#define IDLE_TIMEOUT_MIN         MS_SECOND
#define IDLE_TIMEOUT_MAX         MS_DAY
#define MAX_CONNECTIONS_MAX      1000000L
#define USER_VERSION_DEFAULT     15L
#define USER_VERSION_MAX         99L
#define PORT_MAX                 65535L
#define NAME_MAX_LEN             32u   /* protocol and service names */
#define HEALTH_INTERVAL_DEFAULT  (2 * MS_SECOND)
#define HEALTH_INTERVAL_MIN      100L
#define HEALTH_INTERVAL_MAX      MS_HOUR
#define HEALTH_TIMEOUT_DEFAULT   (1 * MS_SECOND)
#define HEALTH_TIMEOUT_MIN       50L
#define HEALTH_TIMEOUT_MAX       MS_MINUTE
#define HEALTH_RISE_DEFAULT      2L
#define HEALTH_FALL_DEFAULT      2L
#define HEALTH_COUNT_MAX         100L
#define HOLD_DOWN_DEFAULT        (3 * MS_SECOND)
#define HOLD_DOWN_MAX            MS_MINUTE
#define MOVE_CLOSE_DEFAULT       (30 * MS_SECOND)
#define MOVE_CLOSE_MAX           MS_HOUR

static const char *const top_keys[] = {
    "workers", "plugin_dir", "log_level", "shutdown_timeout", "local_site", "auth",
    "upstream", "directory", "locator", "sites", "protocols", "admin", NULL,
};
static const char *const health_keys[] = {
    "enabled", "interval", "timeout", "rise", "fall", "http_path", NULL,
};
static const char *const admin_keys[] = {"socket", NULL};
static const char *const auth_keys[] = {
    "failure_delay", "cache_ttl", "negative_ttl", "cache_size", "stale_if_error", "penalty",
    NULL,
};
static const char *const upstream_keys[] = {
    "connect_timeout", "retries", "verify", "ca_file", NULL,
};
static const char *const site_keys[] = {"external_url", NULL};
static const char *const locator_keys[] = {
    "source", "servers", "databases", "ldap", "health", "hold_down", "move_close_window", NULL,
};
static const char *const server_keys[] = {"address", "site", "drain", "services", NULL};
static const char *const service_keys[] = {"port", "tls", "sni", "proxy_protocol", NULL};
static const char *const database_keys[] = {"copies", "active", NULL};
static const char *const directory_keys[] = {"source", "users", "ldap", NULL};
static const char *const user_keys[] = {
    "password", "database", "version", "site", "sip_uri", "extension", "disabled", NULL,
};
static const char *const listen_keys[] = {
    "address", "transport", "tls", "allow_plaintext", "max_connections", "tls_min_version",
    "ciphers", "certificates", "require_client_cert", "client_ca_file", NULL,
};
static const char *const cert_keys[] = {"cert", "key", NULL};

/* Keys of protocols.<name> that belong to the core. A plugin may declare
   idle_timeout too (it then gets the same value); the others are reserved. */
static const char *const protocol_reserved_keys[] = {"enabled", "plugin", "listen", NULL};
#define PROTOCOL_SHARED_KEY "idle_timeout"

/* Indexes are the enum values. */
static const char *const log_level_names[] = {"error", "warn", "info", "debug", NULL};
static const char *const tls_names[] = {"none", "starttls", "implicit", NULL};
static const char *const source_names[] = {"static", "ldap", NULL};
static const char *const transport_names[] = {"tcp", "udp", NULL};
static const char *const tls_version_names[] = {"1.2", "1.3", NULL};

/* ---- helpers -------------------------------------------------------- */

static void *alloc_array(size_t n, size_t size)
{
    return n == 0 ? NULL : gw_calloc(n, size);
}

static bool in_list(const char *const *list, const char *s)
{
    for (; *list != NULL; list++) {
        if (strcmp(*list, s) == 0)
            return true;
    }
    return false;
}

/* Protocol and service names end up in file names and log lines. */
static bool valid_name(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (; *s != '\0'; s++) {
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    }
    return true;
}

/* A crypt(3) hash with an id the system's libcrypt verifies: MD5, SHA-256,
   SHA-512, yescrypt, bcrypt. A clear-text password here is a mistake. */
static bool crypt_hash_ok(const char *h)
{
    static const char *const ids[] = {"1", "5", "6", "y", "2b", "2y", NULL};

    if (h[0] != '$')
        return false;
    for (size_t i = 0; ids[i] != NULL; i++) {
        size_t n = strlen(ids[i]);

        if (strncmp(h + 1, ids[i], n) == 0 && h[1 + n] == '$' && h[2 + n] != '\0')
            return strpbrk(h, " \t:") == NULL;
    }
    return false;
}

/* A string-valued key that must name a site of the sites: section. */
static void get_site(struct gw_cfg *c, const struct gw_config *conf, const yaml_node_t *map,
                     const char *path, char **site_r)
{
    if (gw_cfg_get_value(c, map, path, "site", GW_CONF_STRING, 0, 0, site_r) < 0)
        return;
    if (*site_r != NULL && gw_config_site(conf, *site_r) == NULL) {
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, map, "site")),
                     "%s.site: unknown site '%s' (not in sites)", path, *site_r);
    }
}

/* ---- auth.stale_if_error, auth.penalty, directory.ldap ----------------- */

#define STALE_DEFAULT            MS_HOUR
#define PENALTY_AFTER_DEFAULT    3L
#define PENALTY_DELAY_DEFAULT    MS_SECOND
#define PENALTY_MAX_DEFAULT      (15 * MS_SECOND)
#define PENALTY_MAX_MAX          (5 * MS_MINUTE)
#define LOCKOUT_USER_DEFAULT     10L
#define LOCKOUT_IP_DEFAULT       100L
#define LOCKOUT_TIME_DEFAULT     (5 * MS_MINUTE)
#define PENALTY_WINDOW_DEFAULT   (15 * MS_MINUTE)
#define PENALTY_COUNT_MAX        1000000L
#define LDAP_TIMEOUT_DEFAULT     (5 * MS_SECOND)
#define LDAP_TIMEOUT_MIN         100L
#define LDAP_TIMEOUT_MAX         MS_MINUTE
#define LDAP_BACKOFF_MIN_DEFAULT MS_SECOND
#define LDAP_BACKOFF_MAX_DEFAULT (30 * MS_SECOND)
#define LDAP_CONNECTIONS_DEFAULT 2L
#define LDAP_CONNECTIONS_MAX     64L
#define LDAP_URIS_MAX            16u
#define LDAP_PASSWORD_MAX        1024u  /* bytes in bind_password_file */
#define LDAP_NAME_MAX            64u    /* an attribute name */

static const char *const penalty_keys[] = {
    "after", "delay", "max_delay", "lockout_user", "lockout_ip", "lockout_time", "window", NULL,
};
/* directory.ldap: the connection keys (shared with a future locator.ldap)
   and the directory's own. */
static const char *const dir_ldap_keys[] = {
    "uris", "starttls", "verify", "ca_file", "bind_dn", "bind_password_file", "timeout",
    "connect_timeout", "backoff_min", "backoff_max", "connections",
    "base", "scope", "user_filter", "resolve_filter", "attributes", "bind_connections",
    "default_version", NULL,
};
static const char *const ldap_attr_keys[] = {
    "login", "database", "version", "site", "sip_uri", "extension", "disabled", NULL,
};
/* Indexes are LDAP_SCOPE_BASE, _ONELEVEL, _SUBTREE. */
static const char *const scope_names[] = {"base", "one", "sub", NULL};

/* Defaults fit docs/ldap/gateway.schema. */
#define LDAP_USER_FILTER_DEFAULT    "(&(objectClass=gwMailUser)(uid=%u))"
#define LDAP_RESOLVE_FILTER_DEFAULT \
    "(&(objectClass=gwMailUser)(|(uid=%u)(gwSipUri=%u)(gwExtension=%u)))"

static void auth_extra_defaults(struct gw_config *conf)
{
    conf->auth_stale_ttl = STALE_DEFAULT;
    conf->penalty_after = PENALTY_AFTER_DEFAULT;
    conf->penalty_delay = PENALTY_DELAY_DEFAULT;
    conf->penalty_max_delay = PENALTY_MAX_DEFAULT;
    conf->penalty_lockout_user = LOCKOUT_USER_DEFAULT;
    conf->penalty_lockout_ip = LOCKOUT_IP_DEFAULT;
    conf->penalty_lockout_time = LOCKOUT_TIME_DEFAULT;
    conf->penalty_window = PENALTY_WINDOW_DEFAULT;
}

/* auth.stale_if_error and auth.penalty (auth is a mapping here). */
static void parse_auth_extra(struct gw_cfg *c, const yaml_node_t *auth, struct gw_config *conf)
{
    const yaml_node_t *v;

    gw_cfg_get_value(c, auth, "auth", "stale_if_error", GW_CONF_DURATION, 0, CACHE_TTL_MAX,
                     &conf->auth_stale_ttl);
    v = gw_cfg_get(c, auth, "penalty");
    if (v == NULL || !gw_cfg_map(c, v, "auth.penalty", penalty_keys))
        return;
    gw_cfg_get_value(c, v, "auth.penalty", "after", GW_CONF_INT, 0, PENALTY_COUNT_MAX,
                     &conf->penalty_after);
    gw_cfg_get_value(c, v, "auth.penalty", "delay", GW_CONF_DURATION, 0, PENALTY_MAX_MAX,
                     &conf->penalty_delay);
    gw_cfg_get_value(c, v, "auth.penalty", "max_delay", GW_CONF_DURATION, 0, PENALTY_MAX_MAX,
                     &conf->penalty_max_delay);
    gw_cfg_get_value(c, v, "auth.penalty", "lockout_user", GW_CONF_INT, 0, PENALTY_COUNT_MAX,
                     &conf->penalty_lockout_user);
    gw_cfg_get_value(c, v, "auth.penalty", "lockout_ip", GW_CONF_INT, 0, PENALTY_COUNT_MAX,
                     &conf->penalty_lockout_ip);
    gw_cfg_get_value(c, v, "auth.penalty", "lockout_time", GW_CONF_DURATION, MS_SECOND, MS_DAY,
                     &conf->penalty_lockout_time);
    gw_cfg_get_value(c, v, "auth.penalty", "window", GW_CONF_DURATION, MS_SECOND, MS_DAY,
                     &conf->penalty_window);
    if (conf->penalty_max_delay < conf->penalty_delay)
        gw_cfg_error(c, gw_cfg_pos(v), "auth.penalty: max_delay must not be below delay");
}

/* The first line of the file: a secret, never echoed in a message. */
static char *read_secret_file(struct gw_cfg *c, const yaml_node_t *at, const char *path,
                              const char *file)
{
    char buf[LDAP_PASSWORD_MAX + 2];
    size_t len = 0;
    ssize_t n;
    int fd = open(file, O_RDONLY | O_CLOEXEC);
    char *s = NULL;

    if (fd < 0) {
        gw_cfg_error(c, gw_cfg_pos(at), "%s: cannot read '%s': %s", path, file, strerror(errno));
        return NULL;
    }
    while (len < sizeof(buf) - 1 && (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            gw_cfg_error(c, gw_cfg_pos(at), "%s: cannot read '%s': %s", path, file,
                         strerror(errno));
            goto out;
        }
        len += (size_t)n;
    }
    buf[len] = '\0';
    if (len > LDAP_PASSWORD_MAX) {
        gw_cfg_error(c, gw_cfg_pos(at), "%s: '%s' is longer than %u bytes", path, file,
                     LDAP_PASSWORD_MAX);
        goto out;
    }
    if (memchr(buf, '\0', len) != NULL) {
        gw_cfg_error(c, gw_cfg_pos(at), "%s: '%s' contains a NUL byte", path, file);
        goto out;
    }
    /* One line: what follows a newline (an editor's final one) is not part of it. */
    buf[strcspn(buf, "\r\n")] = '\0';
    if (buf[0] == '\0') {
        gw_cfg_error(c, gw_cfg_pos(at), "%s: '%s' is empty", path, file);
        goto out;
    }
    s = gw_strdup(buf);
out:
    OPENSSL_cleanse(buf, sizeof(buf));
    close(fd);
    return s;
}

static void parse_ldap_uris(struct gw_cfg *c, const yaml_node_t *n, const char *path,
                            struct gw_conf_ldap_conn *lc)
{
    char upath[GW_CFG_PATH_MAX];
    size_t count = 1;

    gw_cfg_join(upath, sizeof(upath), path, "uris");
    if (n->type == YAML_SEQUENCE_NODE)
        count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    else if (gw_cfg_text(n) == NULL || gw_cfg_is_null(n)) {
        gw_cfg_error(c, gw_cfg_pos(n), "%s: expected a URI or a list of URIs, got %s", upath,
                     gw_cfg_kind(n));
        return;
    }
    if (count == 0 || count > LDAP_URIS_MAX) {
        gw_cfg_error(c, gw_cfg_pos(n), "%s: must list between 1 and %u URIs", upath,
                     LDAP_URIS_MAX);
        return;
    }
    lc->uris = gw_calloc(count, sizeof(*lc->uris));
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item =
            n->type == YAML_SEQUENCE_NODE ? gw_cfg_node(c, n->data.sequence.items.start[i]) : n;
        const char *text = gw_cfg_text(item), *err = NULL;
        char *host = NULL;
        unsigned port;
        bool ldaps;

        if (text == NULL || gw_cfg_is_null(item)) {
            gw_cfg_error(c, gw_cfg_pos(item), "%s[%zu]: expected a URI, got %s", upath, i,
                         gw_cfg_kind(item));
            continue;
        }
        if (gw_ldap_uri_parse(text, &host, &port, &ldaps, &err) < 0) {
            gw_cfg_error(c, gw_cfg_pos(item), "%s: '%s': %s", upath, text, err);
            continue;
        }
        free(host);
        lc->uris[lc->nuris++] = gw_strdup(text);
    }
}

/* The connection keys of an ldap: section (map is a mapping). locator.ldap
   is meant to go through here too. */
static void parse_ldap_conn(struct gw_cfg *c, const yaml_node_t *map, const char *path,
                            struct gw_conf_pos owner, struct gw_conf_ldap_conn *lc)
{
    const yaml_node_t *n;
    char *pwfile = NULL;
    char p[GW_CFG_PATH_MAX];

    lc->verify = true;
    lc->timeout = LDAP_TIMEOUT_DEFAULT;
    lc->connect_timeout = LDAP_TIMEOUT_DEFAULT;
    lc->backoff_min = LDAP_BACKOFF_MIN_DEFAULT;
    lc->backoff_max = LDAP_BACKOFF_MAX_DEFAULT;
    lc->connections = LDAP_CONNECTIONS_DEFAULT;

    n = gw_cfg_require(c, map, path, "uris", owner);
    if (n != NULL)
        parse_ldap_uris(c, n, path, lc);
    gw_cfg_get_value(c, map, path, "starttls", GW_CONF_BOOL, 0, 0, &lc->starttls);
    gw_cfg_get_value(c, map, path, "verify", GW_CONF_BOOL, 0, 0, &lc->verify);
    gw_cfg_get_file(c, map, path, "ca_file", "CA file", &lc->ca_file);
    if (gw_cfg_get_value(c, map, path, "bind_dn", GW_CONF_STRING, 0, 0, &lc->bind_dn) == 0 &&
        lc->bind_dn != NULL && !gw_ldap_dn_valid(lc->bind_dn))
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, map, "bind_dn")), "%s: not a valid DN: '%s'",
                     gw_cfg_join(p, sizeof(p), path, "bind_dn"), lc->bind_dn);
    n = gw_cfg_get(c, map, "bind_password_file");
    if (gw_cfg_get_value(c, map, path, "bind_password_file", GW_CONF_STRING, 0, 0, &pwfile) ==
            0 &&
        pwfile != NULL) {
        char *resolved = gw_cfg_resolve(c, pwfile);

        lc->bind_password = read_secret_file(c, n, gw_cfg_join(p, sizeof(p), path,
                                                                "bind_password_file"),
                                             resolved);
        free(resolved);
    }
    if (lc->bind_dn != NULL && pwfile == NULL)
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, map, "bind_dn")),
                     "%s: bind_dn needs bind_password_file", path);
    if (lc->bind_dn == NULL && pwfile != NULL)
        gw_cfg_error(c, gw_cfg_pos(n), "%s: bind_password_file needs bind_dn", path);
    free(pwfile);
    gw_cfg_get_value(c, map, path, "timeout", GW_CONF_DURATION, LDAP_TIMEOUT_MIN,
                     LDAP_TIMEOUT_MAX, &lc->timeout);
    gw_cfg_get_value(c, map, path, "connect_timeout", GW_CONF_DURATION, LDAP_TIMEOUT_MIN,
                     LDAP_TIMEOUT_MAX, &lc->connect_timeout);
    gw_cfg_get_value(c, map, path, "backoff_min", GW_CONF_DURATION, LDAP_TIMEOUT_MIN, MS_HOUR,
                     &lc->backoff_min);
    gw_cfg_get_value(c, map, path, "backoff_max", GW_CONF_DURATION, LDAP_TIMEOUT_MIN, MS_HOUR,
                     &lc->backoff_max);
    if (lc->backoff_max < lc->backoff_min)
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, map, "backoff_max")),
                     "%s: must not be below backoff_min",
                     gw_cfg_join(p, sizeof(p), path, "backoff_max"));
    gw_cfg_get_value(c, map, path, "connections", GW_CONF_INT, 1, LDAP_CONNECTIONS_MAX,
                     &lc->connections);
}

static void get_ldap_filter(struct gw_cfg *c, const yaml_node_t *map, const char *path,
                            const char *key, const char *def, char **out)
{
    const char *err = NULL;
    char p[GW_CFG_PATH_MAX];

    *out = gw_strdup(def);
    if (gw_cfg_get_value(c, map, path, key, GW_CONF_STRING, 0, 0, out) < 0)
        return;
    if (*out == NULL)
        *out = gw_strdup(def);
    else if (gw_ldap_filter_template_check(*out, &err) < 0)
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, map, key)), "%s: %s",
                     gw_cfg_join(p, sizeof(p), path, key), err);
}

/* RFC 4512 attribute descriptions: a letter, then letters, digits, '-';
   or a numeric OID. Options (;binary) are not needed here. */
static bool ldap_attr_name_ok(const char *s)
{
    size_t n = strlen(s);

    if (n == 0 || n > LDAP_NAME_MAX)
        return false;
    if (s[0] >= '0' && s[0] <= '9')
        return strspn(s, "0123456789.") == n && s[n - 1] != '.' && strstr(s, "..") == NULL;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];

        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
              (i > 0 && ((ch >= '0' && ch <= '9') || ch == '-'))))
            return false;
    }
    return true;
}

static void parse_ldap_attrs(struct gw_cfg *c, const yaml_node_t *map, const char *path,
                             struct gw_conf_ldap_attrs *a)
{
    struct {
        const char *key, *def;
        char **field;
    } t[] = {
        {"login", "uid", &a->login},
        {"database", "gwMailboxDatabase", &a->database},
        {"version", "gwMailboxVersion", &a->version},
        {"site", "gwSite", &a->site},
        {"sip_uri", "gwSipUri", &a->sip_uri},
        {"extension", "gwExtension", &a->extension},
        {"disabled", "gwAccountDisabled", &a->disabled},
    };
    char apath[GW_CFG_PATH_MAX];
    bool ok;

    gw_cfg_join(apath, sizeof(apath), path, "attributes");
    ok = map == NULL || gw_cfg_map(c, map, apath, ldap_attr_keys);
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        char p[GW_CFG_PATH_MAX];

        *t[i].field = gw_strdup(t[i].def);
        if (map == NULL || !ok ||
            gw_cfg_get_value(c, map, apath, t[i].key, GW_CONF_STRING, 0, 0, t[i].field) < 0)
            continue;
        if (*t[i].field == NULL) {
            /* null: this information is not in the directory */
            if (strcmp(t[i].key, "login") == 0 || strcmp(t[i].key, "database") == 0)
                gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, map, t[i].key)),
                             "%s: required", gw_cfg_join(p, sizeof(p), apath, t[i].key));
        } else if (!ldap_attr_name_ok(*t[i].field)) {
            gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, map, t[i].key)),
                         "%s: not an attribute name: '%s'",
                         gw_cfg_join(p, sizeof(p), apath, t[i].key), *t[i].field);
        }
    }
}

static void parse_dir_ldap(struct gw_cfg *c, const yaml_node_t *dir, struct gw_config *conf)
{
    static const char path[] = "directory.ldap";
    const yaml_node_t *map = gw_cfg_get(c, dir, "ldap"), *n;
    struct gw_conf_ldap *l = &conf->dir_ldap;
    int scope = 2;

    if (map == NULL || gw_cfg_is_null(map)) {
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, dir, "source")),
                     "directory.source: source ldap needs a directory.ldap section");
        return;
    }
    if (!gw_cfg_map(c, map, path, dir_ldap_keys))
        return;
    parse_ldap_conn(c, map, path, gw_cfg_pos(map), &l->conn);
    n = gw_cfg_require(c, map, path, "base", gw_cfg_pos(map));
    if (n != NULL && gw_cfg_get_value(c, map, path, "base", GW_CONF_STRING, 0, 0, &l->base) == 0 &&
        l->base != NULL && l->base[0] != '\0' && !gw_ldap_dn_valid(l->base))
        gw_cfg_error(c, gw_cfg_pos(n), "directory.ldap.base: not a valid DN: '%s'", l->base);
    if (l->base == NULL)
        l->base = gw_strdup("");
    if (gw_cfg_get_enum(c, map, path, "scope", scope_names, &scope) == 0)
        l->scope = scope;
    else
        l->scope = 2;
    get_ldap_filter(c, map, path, "user_filter", LDAP_USER_FILTER_DEFAULT, &l->user_filter);
    get_ldap_filter(c, map, path, "resolve_filter", LDAP_RESOLVE_FILTER_DEFAULT,
                    &l->resolve_filter);
    parse_ldap_attrs(c, gw_cfg_get(c, map, "attributes"), path, &l->attrs);
    l->bind_connections = LDAP_CONNECTIONS_DEFAULT;
    gw_cfg_get_value(c, map, path, "bind_connections", GW_CONF_INT, 1, LDAP_CONNECTIONS_MAX,
                     &l->bind_connections);
    l->default_version = USER_VERSION_DEFAULT;
    gw_cfg_get_value(c, map, path, "default_version", GW_CONF_INT, 1, USER_VERSION_MAX,
                     &l->default_version);
}

static void ldap_conn_free(struct gw_conf_ldap_conn *lc)
{
    for (size_t i = 0; i < lc->nuris; i++)
        free(lc->uris[i]);
    free(lc->uris);
    free(lc->ca_file);
    free(lc->bind_dn);
    gw_free_secret(&lc->bind_password);
}

static void ldap_conf_free(struct gw_conf_ldap *l)
{
    ldap_conn_free(&l->conn);
    free(l->base);
    free(l->user_filter);
    free(l->resolve_filter);
    free(l->attrs.login);
    free(l->attrs.database);
    free(l->attrs.version);
    free(l->attrs.site);
    free(l->attrs.sip_uri);
    free(l->attrs.extension);
    free(l->attrs.disabled);
    memset(l, 0, sizeof(*l));
}

/* ---- top level, auth, upstream -------------------------------------- */

static void parse_globals(struct gw_cfg *c, const yaml_node_t *root, struct gw_config *conf)
{
    yaml_node_t *v;
    int level = conf->log_level;
    char *dir = NULL;

    v = gw_cfg_get(c, root, "workers");
    if (v != NULL) {
        const char *text = gw_cfg_text(v);

        if (text != NULL && strcmp(text, "auto") == 0)
            conf->workers = 0;
        else
            gw_cfg_value(c, v, "workers", GW_CONF_INT, 1, WORKERS_MAX, &conf->workers);
    }
    if (gw_cfg_get_value(c, root, "", "plugin_dir", GW_CONF_STRING, 0, 0, &dir) == 0 &&
        dir != NULL) {
        if (dir[0] == '\0') {
            gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, root, "plugin_dir")),
                         "plugin_dir: must not be empty");
        } else {
            free(conf->plugin_dir);
            conf->plugin_dir = gw_cfg_resolve(c, dir);
        }
    }
    free(dir);
    if (gw_cfg_get_enum(c, root, "", "log_level", log_level_names, &level) == 0)
        conf->log_level = (enum gw_log_level)level;
    gw_cfg_get_value(c, root, "", "shutdown_timeout", GW_CONF_DURATION, 0, SHUTDOWN_TIMEOUT_MAX,
                     &conf->shutdown_timeout);

    v = gw_cfg_get(c, root, "auth");
    if (gw_cfg_map(c, v, "auth", auth_keys)) {
        gw_cfg_get_value(c, v, "auth", "failure_delay", GW_CONF_DURATION, 0, FAILURE_DELAY_MAX,
                         &conf->auth_failure_delay);
        gw_cfg_get_value(c, v, "auth", "cache_ttl", GW_CONF_DURATION, 0, CACHE_TTL_MAX,
                         &conf->auth_cache_ttl);
        gw_cfg_get_value(c, v, "auth", "negative_ttl", GW_CONF_DURATION, 0, CACHE_TTL_MAX,
                         &conf->auth_negative_ttl);
        gw_cfg_get_value(c, v, "auth", "cache_size", GW_CONF_INT, 0, CACHE_SIZE_MAX,
                         &conf->auth_cache_size);
        parse_auth_extra(c, v, conf);
    }

    v = gw_cfg_get(c, root, "admin");
    if (v != NULL && gw_cfg_map(c, v, "admin", admin_keys)) {
        char *sock = NULL;
        if (gw_cfg_get_value(c, v, "admin", "socket", GW_CONF_STRING, 0, 0, &sock) == 0 &&
            sock != NULL) {
            if (sock[0] == '\0' || strlen(sock) > 90)
                gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, v, "socket")),
                             "admin.socket: must be a path of 1 to 90 characters");
            free(conf->admin_socket);
            conf->admin_socket = gw_cfg_resolve(c, sock);
            free(sock);
        }
    }

    v = gw_cfg_get(c, root, "upstream");
    if (gw_cfg_map(c, v, "upstream", upstream_keys)) {
        gw_cfg_get_value(c, v, "upstream", "connect_timeout", GW_CONF_DURATION,
                         CONNECT_TIMEOUT_MIN, CONNECT_TIMEOUT_MAX, &conf->connect_timeout);
        gw_cfg_get_value(c, v, "upstream", "retries", GW_CONF_INT, 0, RETRIES_MAX,
                         &conf->connect_retries);
        gw_cfg_get_value(c, v, "upstream", "verify", GW_CONF_BOOL, 0, 0, &conf->upstream_verify);
        gw_cfg_get_file(c, v, "upstream", "ca_file", "CA file", &conf->upstream_ca_file);
    }
}

/* ---- sites ---------------------------------------------------------- */

static void parse_sites(struct gw_cfg *c, const yaml_node_t *root, struct gw_config *conf)
{
    const yaml_node_t *sites = gw_cfg_get(c, root, "sites");
    size_t n;

    if (!gw_cfg_map(c, sites, "sites", NULL))
        return;
    n = gw_cfg_map_len(sites);
    conf->sites = alloc_array(n, sizeof(*conf->sites));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pair = &sites->data.mapping.pairs.start[i];
        const yaml_node_t *k = gw_cfg_node(c, pair->key), *v = gw_cfg_node(c, pair->value);
        const char *name = gw_cfg_text(k);
        struct gw_conf_site *s;
        char path[GW_CFG_PATH_MAX];

        if (name == NULL)
            continue;
        s = &conf->sites[conf->nsites++];
        s->name = gw_strdup(name);
        s->pos = gw_cfg_pos(k);
        gw_cfg_pathf(path, sizeof(path), "sites.%s", name);
        if (!gw_cfg_map(c, v, path, site_keys))
            continue;
        if (gw_cfg_get_value(c, v, path, "external_url", GW_CONF_STRING, 0, 0,
                             &s->external_url) == 0 &&
            s->external_url != NULL && strncmp(s->external_url, "http://", 7) != 0 &&
            strncmp(s->external_url, "https://", 8) != 0) {
            gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, v, "external_url")),
                         "%s.external_url: must start with http:// or https://", path);
        }
    }
}

/* ---- locator -------------------------------------------------------- */

static void parse_services(struct gw_cfg *c, const yaml_node_t *map, const char *spath,
                           struct gw_conf_server *srv)
{
    char path[GW_CFG_PATH_MAX];
    size_t n;

    gw_cfg_join(path, sizeof(path), spath, "services");
    if (!gw_cfg_map(c, map, path, NULL))
        return;
    n = gw_cfg_map_len(map);
    srv->services = alloc_array(n, sizeof(*srv->services));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
        const yaml_node_t *k = gw_cfg_node(c, pair->key), *v = gw_cfg_node(c, pair->value);
        const char *name = gw_cfg_text(k);
        char vpath[GW_CFG_PATH_MAX];
        struct gw_conf_service *svc;
        long portv = 0;
        int tls = GW_TLS_NONE;

        if (name == NULL)
            continue;
        if (!valid_name(name)) {
            gw_cfg_error(c, gw_cfg_pos(k),
                         "%s: invalid protocol name '%s' (a-z, 0-9, '_', '-'; at most %u)", path,
                         name, NAME_MAX_LEN);
            continue;
        }
        svc = &srv->services[srv->nservices++];
        svc->protocol = gw_strdup(name);
        svc->pos = gw_cfg_pos(k);
        gw_cfg_pathf(vpath, sizeof(vpath), "%s.%s", path, name);
        if (!gw_cfg_map(c, v, vpath, service_keys))
            continue;
        if (gw_cfg_require(c, v, vpath, "port", svc->pos) != NULL &&
            gw_cfg_get_value(c, v, vpath, "port", GW_CONF_INT, 1, PORT_MAX, &portv) == 0)
            svc->port = (unsigned)portv;
        if (gw_cfg_get_enum(c, v, vpath, "tls", tls_names, &tls) == 0)
            svc->tls = (enum gw_tls_mode)tls;
        gw_cfg_get_value(c, v, vpath, "sni", GW_CONF_STRING, 0, 0, &svc->sni);
        gw_cfg_get_value(c, v, vpath, "proxy_protocol", GW_CONF_BOOL, 0, 0,
                         &svc->proxy_protocol);
    }
}

static void parse_servers(struct gw_cfg *c, const yaml_node_t *map, struct gw_config *conf)
{
    size_t n;

    if (!gw_cfg_map(c, map, "locator.servers", NULL))
        return;
    n = gw_cfg_map_len(map);
    conf->servers = alloc_array(n, sizeof(*conf->servers));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
        const yaml_node_t *k = gw_cfg_node(c, pair->key), *v = gw_cfg_node(c, pair->value);
        const char *name = gw_cfg_text(k);
        char path[GW_CFG_PATH_MAX];
        struct gw_conf_server *srv;
        const yaml_node_t *addr;

        if (name == NULL)
            continue;
        srv = &conf->servers[conf->nservers++];
        srv->name = gw_strdup(name);
        srv->pos = gw_cfg_pos(k);
        gw_cfg_pathf(path, sizeof(path), "locator.servers.%s", name);
        if (!gw_cfg_map(c, v, path, server_keys))
            continue;
        addr = gw_cfg_require(c, v, path, "address", srv->pos);
        if (addr != NULL)
            gw_cfg_get_value(c, v, path, "address", GW_CONF_STRING, 0, 0, &srv->address);
        get_site(c, conf, v, path, &srv->site);
        gw_cfg_get_value(c, v, path, "drain", GW_CONF_BOOL, 0, 0, &srv->drain);
        parse_services(c, gw_cfg_get(c, v, "services"), path, srv);
    }
}

static void parse_copies(struct gw_cfg *c, const struct gw_config *conf, const yaml_node_t *list,
                         const char *dpath, struct gw_conf_database *db)
{
    char path[GW_CFG_PATH_MAX];
    size_t n;

    gw_cfg_join(path, sizeof(path), dpath, "copies");
    if (list->type != YAML_SEQUENCE_NODE) {
        gw_cfg_error(c, gw_cfg_pos(list), "%s: expected a list of server names, got %s", path,
                     gw_cfg_kind(list));
        return;
    }
    n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (n == 0) {
        gw_cfg_error(c, gw_cfg_pos(list), "%s: must name at least one server", path);
        return;
    }
    db->copies = gw_calloc(n, sizeof(*db->copies));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = gw_cfg_node(c, list->data.sequence.items.start[i]);
        const char *name = gw_cfg_text(item);
        bool dup = false;

        if (name == NULL || gw_cfg_is_null(item)) {
            gw_cfg_error(c, gw_cfg_pos(item), "%s[%zu]: expected a server name, got %s", path, i,
                         gw_cfg_kind(item));
            continue;
        }
        for (size_t j = 0; j < db->ncopies && !dup; j++)
            dup = strcmp(db->copies[j], name) == 0;
        if (dup) {
            gw_cfg_error(c, gw_cfg_pos(item), "%s[%zu]: server '%s' is listed twice", path, i,
                         name);
            continue;
        }
        if (gw_config_server(conf, name) == NULL)
            gw_cfg_error(c, gw_cfg_pos(item), "%s[%zu]: unknown server '%s' (not in "
                         "locator.servers)", path, i, name);
        db->copies[db->ncopies++] = gw_strdup(name);
    }
}

static void parse_databases(struct gw_cfg *c, const yaml_node_t *map, struct gw_config *conf)
{
    size_t n;

    if (!gw_cfg_map(c, map, "locator.databases", NULL))
        return;
    n = gw_cfg_map_len(map);
    conf->databases = alloc_array(n, sizeof(*conf->databases));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
        const yaml_node_t *k = gw_cfg_node(c, pair->key), *v = gw_cfg_node(c, pair->value);
        const char *name = gw_cfg_text(k);
        char path[GW_CFG_PATH_MAX];
        struct gw_conf_database *db;
        const yaml_node_t *copies;

        if (name == NULL)
            continue;
        db = &conf->databases[conf->ndatabases++];
        db->name = gw_strdup(name);
        db->pos = gw_cfg_pos(k);
        gw_cfg_pathf(path, sizeof(path), "locator.databases.%s", name);
        if (!gw_cfg_map(c, v, path, database_keys))
            continue;
        copies = gw_cfg_require(c, v, path, "copies", db->pos);
        if (copies != NULL)
            parse_copies(c, conf, copies, path, db);
        if (gw_cfg_get_value(c, v, path, "active", GW_CONF_STRING, 0, 0, &db->active) < 0)
            continue;
        if (db->active != NULL) {
            bool found = false;

            for (size_t j = 0; j < db->ncopies && !found; j++)
                found = strcmp(db->copies[j], db->active) == 0;
            if (!found)
                gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, v, "active")),
                             "%s.active: '%s' is not one of the copies", path, db->active);
        } else if (db->ncopies > 0) {
            db->active = gw_strdup(db->copies[0]);
        }
    }
}

static void parse_health(struct gw_cfg *c, const yaml_node_t *h, struct gw_config *conf)
{
    char *path = NULL;

    if (h == NULL || !gw_cfg_map(c, h, "locator.health", health_keys))
        return;
    gw_cfg_get_value(c, h, "locator.health", "enabled", GW_CONF_BOOL, 0, 0,
                     &conf->health_enabled);
    gw_cfg_get_value(c, h, "locator.health", "interval", GW_CONF_DURATION, HEALTH_INTERVAL_MIN,
                     HEALTH_INTERVAL_MAX, &conf->health_interval);
    gw_cfg_get_value(c, h, "locator.health", "timeout", GW_CONF_DURATION, HEALTH_TIMEOUT_MIN,
                     HEALTH_TIMEOUT_MAX, &conf->health_timeout);
    gw_cfg_get_value(c, h, "locator.health", "rise", GW_CONF_INT, 1, HEALTH_COUNT_MAX,
                     &conf->health_rise);
    gw_cfg_get_value(c, h, "locator.health", "fall", GW_CONF_INT, 1, HEALTH_COUNT_MAX,
                     &conf->health_fall);
    if (gw_cfg_get_value(c, h, "locator.health", "http_path", GW_CONF_STRING, 0, 0, &path) == 0 &&
        path != NULL) {
        if (path[0] != '/' || strpbrk(path, " \r\n\t") != NULL)
            gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, h, "http_path")),
                         "locator.health.http_path: must be an absolute path without spaces");
        free(conf->health_http_path);
        conf->health_http_path = path;
    }
    if (conf->health_timeout >= conf->health_interval)
        gw_cfg_error(c, gw_cfg_pos(h), "locator.health: timeout must be shorter than interval");
}

/* locator.ldap: the connection keys (parse_ldap_conn) and the locator's own. */
static const char *const loc_ldap_keys[] = {
    "uris", "starttls", "verify", "ca_file", "bind_dn", "bind_password_file", "timeout",
    "connect_timeout", "backoff_min", "backoff_max", "connections",
    "base", "scope", "filter", "attributes", "sync", "refresh", "retry", "keepalive", NULL,
};
static const char *const loc_ldap_attr_keys[] = {"name", "copies", "active", NULL};

/* One balanced filter in parentheses (libldap checks the rest when it
   encodes the search). */
static bool loc_filter_ok(const char *f)
{
    size_t len = strlen(f);
    int depth = 0;

    if (len < 3 || f[0] != '(' || f[len - 1] != ')')
        return false;
    for (size_t i = 0; i < len; i++) {
        if (f[i] == '(')
            depth++;
        else if (f[i] == ')' && --depth == 0 && i != len - 1)
            return false;
        if (depth < 0)
            return false;
    }
    return depth == 0;
}

static void parse_loc_ldap(struct gw_cfg *c, const yaml_node_t *loc, struct gw_config *conf)
{
    static const char path[] = "locator.ldap";
    const yaml_node_t *map = gw_cfg_get(c, loc, "ldap"), *n, *a;
    struct gw_conf_loc_ldap *l = &conf->loc_ldap;
    int scope = 2;

    l->scope = 2;
    l->sync = true;
    l->refresh = 60 * MS_SECOND;
    l->retry = MS_SECOND;
    l->keepalive = 30 * MS_SECOND;
    l->filter = gw_strdup("(objectClass=gwDatabase)");
    l->attr_name = gw_strdup("cn");
    l->attr_copies = gw_strdup("gwDatabaseCopy");
    l->attr_active = gw_strdup("gwActiveServer");
    if (map == NULL || gw_cfg_is_null(map)) {
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, loc, "source")),
                     "locator.source: source ldap needs a locator.ldap section");
        return;
    }
    if (!gw_cfg_map(c, map, path, loc_ldap_keys))
        return;
    parse_ldap_conn(c, map, path, gw_cfg_pos(map), &l->conn);
    n = gw_cfg_require(c, map, path, "base", gw_cfg_pos(map));
    if (n != NULL && gw_cfg_get_value(c, map, path, "base", GW_CONF_STRING, 0, 0, &l->base) == 0 &&
        l->base != NULL && l->base[0] != '\0' && !gw_ldap_dn_valid(l->base))
        gw_cfg_error(c, gw_cfg_pos(n), "locator.ldap.base: not a valid DN: '%s'", l->base);
    if (l->base == NULL)
        l->base = gw_strdup("");
    if (gw_cfg_get_enum(c, map, path, "scope", scope_names, &scope) == 0)
        l->scope = scope;
    if (gw_cfg_get_value(c, map, path, "filter", GW_CONF_STRING, 0, 0, &l->filter) == 0) {
        if (l->filter == NULL)
            l->filter = gw_strdup("(objectClass=gwDatabase)");
        else if (!loc_filter_ok(l->filter))
            gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, map, "filter")),
                         "locator.ldap.filter: must be one filter in parentheses, e.g. "
                         "(objectClass=gwDatabase)");
    }
    a = gw_cfg_get(c, map, "attributes");
    if (a != NULL && gw_cfg_map(c, a, "locator.ldap.attributes", loc_ldap_attr_keys)) {
        struct {
            const char *key;
            char **field;
        } t[] = {{"name", &l->attr_name}, {"copies", &l->attr_copies}, {"active", &l->attr_active}};

        for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
            char *v = NULL;

            if (gw_cfg_get_value(c, a, "locator.ldap.attributes", t[i].key, GW_CONF_STRING, 0, 0,
                                 &v) < 0 || v == NULL)
                continue;
            if (!ldap_attr_name_ok(v)) {
                gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, a, t[i].key)),
                             "locator.ldap.attributes.%s: not an attribute name: '%s'", t[i].key,
                             v);
                free(v);
                continue;
            }
            free(*t[i].field);
            *t[i].field = v;
        }
    }
    gw_cfg_get_value(c, map, path, "sync", GW_CONF_BOOL, 0, 0, &l->sync);
    gw_cfg_get_value(c, map, path, "refresh", GW_CONF_DURATION, MS_SECOND, MS_DAY, &l->refresh);
    gw_cfg_get_value(c, map, path, "retry", GW_CONF_DURATION, 50, MS_HOUR, &l->retry);
    gw_cfg_get_value(c, map, path, "keepalive", GW_CONF_DURATION, 0, MS_HOUR, &l->keepalive);
}

static void loc_ldap_free(struct gw_conf_loc_ldap *l)
{
    ldap_conn_free(&l->conn);
    free(l->base);
    free(l->filter);
    free(l->attr_name);
    free(l->attr_copies);
    free(l->attr_active);
}

static void parse_locator(struct gw_cfg *c, const yaml_node_t *root, struct gw_config *conf)
{
    const yaml_node_t *loc = gw_cfg_get(c, root, "locator");
    int source = GW_LOC_STATIC;

    if (!gw_cfg_map(c, loc, "locator", locator_keys))
        return;
    if (gw_cfg_get_enum(c, loc, "locator", "source", source_names, &source) < 0)
        return;
    conf->loc_source = (enum gw_loc_source)source;
    if (conf->loc_source == GW_LOC_LDAP)
        parse_loc_ldap(c, loc, conf);
    parse_servers(c, gw_cfg_get(c, loc, "servers"), conf);
    parse_databases(c, gw_cfg_get(c, loc, "databases"), conf);
    parse_health(c, gw_cfg_get(c, loc, "health"), conf);
    gw_cfg_get_value(c, loc, "locator", "hold_down", GW_CONF_DURATION, 0, HOLD_DOWN_MAX,
                     &conf->hold_down);
    gw_cfg_get_value(c, loc, "locator", "move_close_window", GW_CONF_DURATION, 0,
                     MOVE_CLOSE_MAX, &conf->move_close_window);
}

/* ---- directory ------------------------------------------------------ */

static void parse_user(struct gw_cfg *c, const struct gw_config *conf, const yaml_node_t *v,
                       const char *path, struct gw_conf_user *u)
{
    const yaml_node_t *n;
    long version = USER_VERSION_DEFAULT;

    u->version = (int)version;
    if (!gw_cfg_map(c, v, path, user_keys))
        return;
    n = gw_cfg_require(c, v, path, "password", u->pos);
    if (n != NULL && gw_cfg_get_value(c, v, path, "password", GW_CONF_STRING, 0, 0,
                                      &u->password_hash) == 0 &&
        !crypt_hash_ok(u->password_hash)) {
        /* Never echo the value: it may be a clear-text password. */
        gw_cfg_error(c, gw_cfg_pos(n), "%s.password: not a crypt(3) hash (expected $6$..., "
                     "$5$..., $y$..., $2b$..., $1$...)", path);
    }
    n = gw_cfg_require(c, v, path, "database", u->pos);
    if (n != NULL &&
        gw_cfg_get_value(c, v, path, "database", GW_CONF_STRING, 0, 0, &u->database) == 0 &&
        conf->loc_source == GW_LOC_STATIC && gw_config_database(conf, u->database) == NULL) {
        gw_cfg_error(c, gw_cfg_pos(n), "%s.database: unknown database '%s' (not in "
                     "locator.databases)", path, u->database);
    }
    if (gw_cfg_get_value(c, v, path, "version", GW_CONF_INT, 1, USER_VERSION_MAX, &version) == 0)
        u->version = (int)version;
    get_site(c, conf, v, path, &u->site);
    gw_cfg_get_value(c, v, path, "sip_uri", GW_CONF_STRING, 0, 0, &u->sip_uri);
    gw_cfg_get_value(c, v, path, "extension", GW_CONF_STRING, 0, 0, &u->extension);
    gw_cfg_get_value(c, v, path, "disabled", GW_CONF_BOOL, 0, 0, &u->disabled);
}

struct user_ref {
    const char *value;
    size_t index;
};

static int user_ref_cmp(const void *a, const void *b)
{
    const struct user_ref *x = a, *y = b;
    int r = strcmp(x->value, y->value);

    if (r != 0)
        return r;
    return x->index < y->index ? -1 : x->index > y->index;
}

/* gw_resolve() finds a user by SIP URI or extension: each must name one
   user. Sorted rather than compared pairwise: directories can be large. */
static void check_unique(struct gw_cfg *c, const struct gw_config *conf, size_t offset,
                         const char *key)
{
    struct user_ref *refs = alloc_array(conf->nusers, sizeof(*refs));
    size_t n = 0;

    for (size_t i = 0; i < conf->nusers; i++) {
        const char *value = *(char *const *)((const char *)&conf->users[i] + offset);

        if (value != NULL) {
            refs[n].value = value;
            refs[n].index = i;
            n++;
        }
    }
    if (n > 1)
        qsort(refs, n, sizeof(*refs), user_ref_cmp);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(refs[i].value, refs[i - 1].value) == 0) {
            const struct gw_conf_user *u = &conf->users[refs[i].index];

            gw_cfg_error(c, u->pos, "directory.users.%s.%s: '%s' is already used by user '%s'",
                         u->name, key, refs[i].value, conf->users[refs[i - 1].index].name);
        }
    }
    free(refs);
}

static void parse_directory(struct gw_cfg *c, const yaml_node_t *root, struct gw_config *conf)
{
    const yaml_node_t *dir = gw_cfg_get(c, root, "directory"), *users;
    int source = GW_DIR_STATIC;
    size_t n;

    if (!gw_cfg_map(c, dir, "directory", directory_keys))
        return;
    if (gw_cfg_get_enum(c, dir, "directory", "source", source_names, &source) < 0)
        return;
    conf->dir_source = (enum gw_dir_source)source;
    if (conf->dir_source == GW_DIR_LDAP) {
        parse_dir_ldap(c, dir, conf);
        return;
    }
    users = gw_cfg_get(c, dir, "users");
    if (!gw_cfg_map(c, users, "directory.users", NULL))
        return;
    n = gw_cfg_map_len(users);
    conf->users = alloc_array(n, sizeof(*conf->users));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pair = &users->data.mapping.pairs.start[i];
        const yaml_node_t *k = gw_cfg_node(c, pair->key);
        const char *name = gw_cfg_text(k);
        char path[GW_CFG_PATH_MAX];
        struct gw_conf_user *u;

        if (name == NULL)
            continue;
        u = &conf->users[conf->nusers++];
        u->name = gw_strdup(name);
        u->pos = gw_cfg_pos(k);
        gw_cfg_pathf(path, sizeof(path), "directory.users.%s", name);
        parse_user(c, conf, gw_cfg_node(c, pair->value), path, u);
    }
    check_unique(c, conf, offsetof(struct gw_conf_user, sip_uri), "sip_uri");
    check_unique(c, conf, offsetof(struct gw_conf_user, extension), "extension");
}

/* ---- listeners ------------------------------------------------------ */

static void parse_certificates(struct gw_cfg *c, const yaml_node_t *list, const char *lpath,
                               struct gw_conf_listener *l)
{
    char path[GW_CFG_PATH_MAX];
    size_t n;

    gw_cfg_join(path, sizeof(path), lpath, "certificates");
    if (list->type != YAML_SEQUENCE_NODE) {
        gw_cfg_error(c, gw_cfg_pos(list), "%s: expected a list of {cert, key}, got %s", path,
                     gw_cfg_kind(list));
        return;
    }
    n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    l->certs = alloc_array(n, sizeof(*l->certs));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_t *item = gw_cfg_node(c, list->data.sequence.items.start[i]);
        struct gw_conf_cert *cert = &l->certs[l->ncerts++];
        char cpath[GW_CFG_PATH_MAX];

        cert->pos = gw_cfg_pos(item);
        gw_cfg_pathf(cpath, sizeof(cpath), "%s[%zu]", path, i);
        if (!gw_cfg_map(c, item, cpath, cert_keys))
            continue;
        if (gw_cfg_require(c, item, cpath, "cert", cert->pos) != NULL)
            gw_cfg_get_file(c, item, cpath, "cert", "certificate", &cert->cert_file);
        if (gw_cfg_require(c, item, cpath, "key", cert->pos) != NULL)
            gw_cfg_get_file(c, item, cpath, "key", "private key", &cert->key_file);
    }
}

static void parse_listener(struct gw_cfg *c, const yaml_node_t *n, const char *path,
                           struct gw_conf_listener *l)
{
    const yaml_node_t *v;
    int transport = 0, tls = GW_TLS_NONE, version = 0;

    l->pos = gw_cfg_pos(n);
    l->tls_min_version = gw_strdup(tls_version_names[0]);
    if (!gw_cfg_map(c, n, path, listen_keys))
        return;
    if (gw_cfg_require(c, n, path, "address", l->pos) != NULL &&
        gw_cfg_get_value(c, n, path, "address", GW_CONF_STRING, 0, 0, &l->address) == 0 &&
        gw_parse_address(l->address, &l->addr, &l->addrlen) < 0) {
        l->addrlen = 0;
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, n, "address")),
                     "%s.address: bad address '%s' (expected IPv4:port, [IPv6]:port or *:port)",
                     path, l->address);
    }
    if (gw_cfg_get_enum(c, n, path, "transport", transport_names, &transport) == 0)
        l->udp = transport == 1;
    if (gw_cfg_get_enum(c, n, path, "tls", tls_names, &tls) == 0)
        l->tls = (enum gw_tls_mode)tls;
    gw_cfg_get_value(c, n, path, "allow_plaintext", GW_CONF_BOOL, 0, 0, &l->allow_plaintext);
    gw_cfg_get_value(c, n, path, "max_connections", GW_CONF_INT, 0, MAX_CONNECTIONS_MAX,
                     &l->max_connections);
    if (gw_cfg_get_enum(c, n, path, "tls_min_version", tls_version_names, &version) == 0) {
        free(l->tls_min_version);
        l->tls_min_version = gw_strdup(tls_version_names[version]);
    }
    gw_cfg_get_value(c, n, path, "ciphers", GW_CONF_STRING, 0, 0, &l->ciphers);
    v = gw_cfg_get(c, n, "certificates");
    if (v != NULL && !gw_cfg_is_null(v))
        parse_certificates(c, v, path, l);
    gw_cfg_get_value(c, n, path, "require_client_cert", GW_CONF_BOOL, 0, 0,
                     &l->require_client_cert);
    gw_cfg_get_file(c, n, path, "client_ca_file", "client CA file", &l->client_ca_file);

    if (l->udp && l->tls != GW_TLS_NONE) {
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, n, "tls")),
                     "%s.tls: TLS is not available on udp listeners", path);
    } else if (l->tls != GW_TLS_NONE && l->ncerts == 0) {
        gw_cfg_error(c, l->pos, "%s: tls: %s needs at least one entry in certificates", path,
                     tls_names[l->tls]);
    }
    if (l->require_client_cert && l->client_ca_file == NULL)
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, n, "require_client_cert")),
                     "%s.require_client_cert: needs client_ca_file", path);
}

static void parse_listeners(struct gw_cfg *c, const yaml_node_t *map, const char *ppath,
                            struct gw_conf_protocol *p)
{
    const yaml_node_t *list = gw_cfg_get(c, map, "listen");
    char path[GW_CFG_PATH_MAX];
    size_t n;

    gw_cfg_join(path, sizeof(path), ppath, "listen");
    if (list == NULL || gw_cfg_is_null(list)) {
        gw_cfg_error(c, p->pos, "%s: no listen addresses (listen: is missing)", ppath);
        return;
    }
    if (list->type != YAML_SEQUENCE_NODE) {
        gw_cfg_error(c, gw_cfg_pos(list), "%s: expected a list, got %s", path, gw_cfg_kind(list));
        return;
    }
    n = (size_t)(list->data.sequence.items.top - list->data.sequence.items.start);
    if (n == 0) {
        gw_cfg_error(c, gw_cfg_pos(list), "%s: no listen addresses (listen: is empty)", ppath);
        return;
    }
    p->listeners = gw_calloc(n, sizeof(*p->listeners));
    for (size_t i = 0; i < n; i++) {
        char lpath[GW_CFG_PATH_MAX];

        gw_cfg_pathf(lpath, sizeof(lpath), "%s[%zu]", path, i);
        parse_listener(c, gw_cfg_node(c, list->data.sequence.items.start[i]), lpath,
                       &p->listeners[p->nlisteners++]);
    }
}

static bool same_address(const struct gw_conf_listener *a, const struct gw_conf_listener *b)
{
    if (a->addrlen == 0 || a->addrlen != b->addrlen || a->udp != b->udp ||
        a->addr.ss_family != b->addr.ss_family)
        return false;
    if (a->addr.ss_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)&a->addr, *y = (const void *)&b->addr;

        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    } else {
        const struct sockaddr_in6 *x = (const void *)&a->addr, *y = (const void *)&b->addr;

        return x->sin6_port == y->sin6_port &&
               memcmp(&x->sin6_addr, &y->sin6_addr, sizeof(x->sin6_addr)) == 0;
    }
}

/* Two listeners on one address and transport cannot both bind. */
static void check_listen_duplicates(struct gw_cfg *c, const struct gw_config *conf)
{
    for (size_t pi = 0; pi < conf->nprotocols; pi++) {
        const struct gw_conf_protocol *p = &conf->protocols[pi];

        for (size_t li = 0; li < p->nlisteners; li++) {
            const struct gw_conf_listener *l = &p->listeners[li];
            bool found = false;

            for (size_t qi = 0; qi <= pi && !found; qi++) {
                const struct gw_conf_protocol *q = &conf->protocols[qi];
                size_t end = qi == pi ? li : q->nlisteners;

                for (size_t mi = 0; mi < end && !found; mi++) {
                    if (same_address(l, &q->listeners[mi])) {
                        found = true;
                        gw_cfg_error(c, l->pos,
                                     "protocols.%s.listen[%zu]: %s/%s is already used by "
                                     "protocols.%s.listen[%zu]",
                                     p->name, li, l->address, l->udp ? "udp" : "tcp", q->name,
                                     mi);
                    }
                }
            }
        }
    }
}

/* ---- protocols and their plugins ------------------------------------ */

static size_t key_size(enum gw_conf_type type)
{
    switch (type) {
    case GW_CONF_BOOL:
        return sizeof(bool);
    case GW_CONF_INT:
    case GW_CONF_DURATION:
    case GW_CONF_SIZE:
        return sizeof(long);
    case GW_CONF_STRING:
        return sizeof(char *);
    }
    return 0;
}

/* The plugin's key table is trusted to describe its struct, but a wrong
   offset would write outside it: refuse a table that cannot be right. */
static int check_key_table(struct gw_cfg *c, const struct gw_conf_protocol *p, const char *path)
{
    const struct gw_plugin *pl = p->plugin;
    int ret = 0;

    for (const struct gw_conf_key *k = pl->conf_keys; k != NULL && k->name != NULL; k++) {
        size_t size = key_size(k->type);

        if (size == 0 || k->offset > pl->conf_size || size > pl->conf_size - k->offset ||
            k->offset % size != 0) {
            gw_cfg_error(c, p->pos, "%s: plugin %s: key '%s' has a bad type or offset "
                         "(plugin bug)", path, p->plugin_path, k->name);
            ret = -1;
        } else if (k->type != GW_CONF_BOOL && k->type != GW_CONF_STRING && k->min > k->max) {
            gw_cfg_error(c, p->pos, "%s: plugin %s: key '%s' has min > max (plugin bug)", path,
                         p->plugin_path, k->name);
            ret = -1;
        } else if (in_list(protocol_reserved_keys, k->name)) {
            gw_cfg_error(c, p->pos, "%s: plugin %s: key '%s' is reserved for the core "
                         "(plugin bug)", path, p->plugin_path, k->name);
            ret = -1;
        }
    }
    return ret;
}

static const struct gw_conf_key *find_key(const struct gw_plugin *pl, const char *name)
{
    for (const struct gw_conf_key *k = pl->conf_keys; k != NULL && k->name != NULL; k++) {
        if (strcmp(k->name, name) == 0)
            return k;
    }
    return NULL;
}

/* shared_ok: the core parsed idle_timeout without error (a bad value is
   reported once, by the core). */
static void parse_plugin_keys(struct gw_cfg *c, const yaml_node_t *map, const char *path,
                              struct gw_conf_protocol *p, bool shared_ok)
{
    const struct gw_plugin *pl = p->plugin;
    unsigned errors = c->nerrors;
    size_t n = gw_cfg_map_len(map);

    if (check_key_table(c, p, path) < 0)
        return;
    p->plugin_conf = pl->conf_size > 0 ? gw_calloc(1, pl->conf_size) : NULL;

    for (const struct gw_conf_key *k = pl->conf_keys; k != NULL && k->name != NULL; k++) {
        char err[GW_CFG_MAX_MSG];

        if (k->def != NULL &&
            gw_cfg_parse_text(k->def, k->type, k->min, k->max, (char *)p->plugin_conf + k->offset,
                              err, sizeof(err)) < 0)
            gw_cfg_error(c, p->pos, "%s: plugin %s: default '%s' of key '%s': %s (plugin bug)",
                         path, p->plugin_path, k->def, k->name, err);
    }
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
        const yaml_node_t *kn = gw_cfg_node(c, pair->key);
        const char *name = gw_cfg_text(kn);
        const struct gw_conf_key *k;
        char kpath[GW_CFG_PATH_MAX];

        if (name == NULL)
            continue;
        k = find_key(pl, name);
        if (k != NULL && !shared_ok && strcmp(name, PROTOCOL_SHARED_KEY) == 0)
            continue;
        if (k == NULL) {
            if (!in_list(protocol_reserved_keys, name) && strcmp(name, PROTOCOL_SHARED_KEY) != 0)
                gw_cfg_error(c, gw_cfg_pos(kn), "unknown key '%s' in %s", name, path);
            continue;
        }
        gw_cfg_value(c, gw_cfg_node(c, pair->value), gw_cfg_join(kpath, sizeof(kpath), path, name),
                     k->type, k->min, k->max, (char *)p->plugin_conf + k->offset);
    }
    /* Cross-key checks only make sense on values that parsed. */
    if (pl->configure != NULL && c->nerrors == errors) {
        const char *err = NULL;

        if (pl->configure(p->plugin_conf, &err) < 0)
            gw_cfg_error(c, p->pos, "%s: %s", path, err != NULL ? err : "refused by the plugin");
    }
}

static char *plugin_path(struct gw_cfg *c, const struct gw_config *conf, const char *name,
                         const char *plugin)
{
    const char *base = plugin != NULL ? plugin : name;
    size_t len;
    char *s;

    if (plugin != NULL && strchr(plugin, '/') != NULL)
        return gw_cfg_resolve(c, plugin);
    len = strlen(conf->plugin_dir) + strlen(base) + sizeof("/.so");
    s = gw_malloc(len);
    snprintf(s, len, "%s/%s.so", conf->plugin_dir, base);
    return s;
}

/* Returns false when the protocol is disabled (or unusable): the caller
   then drops the entry. */
static bool parse_protocol(struct gw_cfg *c, const struct gw_config *conf, const yaml_node_t *k,
                           const yaml_node_t *v, struct gw_conf_protocol *p)
{
    const char *name = gw_cfg_text(k);
    char path[GW_CFG_PATH_MAX], *plugin = NULL, *err = NULL;
    bool enabled = true, shared_ok;

    if (!valid_name(name)) {
        gw_cfg_error(c, gw_cfg_pos(k),
                     "protocols: invalid protocol name '%s' (a-z, 0-9, '_', '-'; at most %u)",
                     name, NAME_MAX_LEN);
        return false;
    }
    gw_cfg_pathf(path, sizeof(path), "protocols.%s", name);
    if (!gw_cfg_map(c, v, path, NULL))
        return false;
    if (gw_cfg_get_value(c, v, path, "enabled", GW_CONF_BOOL, 0, 0, &enabled) < 0 || !enabled)
        return false;
    p->name = gw_strdup(name);
    p->pos = gw_cfg_pos(k);
    p->idle_timeout = IDLE_TIMEOUT_DEFAULT;

    if (gw_cfg_get_value(c, v, path, "plugin", GW_CONF_STRING, 0, 0, &plugin) == 0 &&
        plugin != NULL && plugin[0] == '\0') {
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, v, "plugin")), "%s.plugin: must not be empty",
                     path);
        free(plugin);
        plugin = NULL;
    }
    p->plugin_path = plugin_path(c, conf, name, plugin);
    free(plugin);

    parse_listeners(c, v, path, p);
    shared_ok = gw_cfg_get_value(c, v, path, PROTOCOL_SHARED_KEY, GW_CONF_DURATION,
                                 IDLE_TIMEOUT_MIN, IDLE_TIMEOUT_MAX, &p->idle_timeout) == 0;

    if ((c->flags & GW_CONFIG_NO_PLUGINS) != 0)
        return true;
    if (gw_plugin_load(p->plugin_path, name, &p->plugin, &p->dl_handle, &err) < 0) {
        gw_cfg_error(c, p->pos, "%s: %s", path, err != NULL ? err : "cannot load plugin");
        free(err);
        p->plugin = NULL;
        return true;
    }
    parse_plugin_keys(c, v, path, p, shared_ok);
    return true;
}

static void protocol_free(struct gw_conf_protocol *p);

static void parse_protocols(struct gw_cfg *c, const yaml_node_t *root, struct gw_config *conf)
{
    const yaml_node_t *map = gw_cfg_get(c, root, "protocols");
    size_t n;

    if (!gw_cfg_map(c, map, "protocols", NULL))
        return;
    n = gw_cfg_map_len(map);
    conf->protocols = alloc_array(n, sizeof(*conf->protocols));
    for (size_t i = 0; i < n; i++) {
        const yaml_node_pair_t *pair = &map->data.mapping.pairs.start[i];
        const yaml_node_t *k = gw_cfg_node(c, pair->key);
        struct gw_conf_protocol *p = &conf->protocols[conf->nprotocols];

        if (gw_cfg_text(k) == NULL)
            continue;
        if (parse_protocol(c, conf, k, gw_cfg_node(c, pair->value), p))
            conf->nprotocols++;
        else
            protocol_free(p);
    }
    if (conf->nprotocols == 0) {
        gw_cfg_error(c, gw_cfg_pos(map != NULL ? map : root),
                     "protocols: no protocol is enabled");
        return;
    }
    check_listen_duplicates(c, conf);
}

/* ---- the document --------------------------------------------------- */

static void parse_root(struct gw_cfg *c, const yaml_node_t *root, struct gw_config *conf)
{
    if (!gw_cfg_map(c, root, "", top_keys))
        return;
    parse_globals(c, root, conf);
    parse_sites(c, root, conf);
    if (gw_cfg_get_value(c, root, "", "local_site", GW_CONF_STRING, 0, 0, &conf->local_site) ==
            0 &&
        conf->local_site != NULL && gw_config_site(conf, conf->local_site) == NULL) {
        gw_cfg_error(c, gw_cfg_pos(gw_cfg_get(c, root, "local_site")),
                     "local_site: unknown site '%s' (not in sites)", conf->local_site);
    }
    parse_locator(c, root, conf);
    parse_directory(c, root, conf);
    parse_protocols(c, root, conf);
}

static void yaml_error(struct gw_cfg *c, const yaml_parser_t *parser, const char *data,
                       size_t len)
{
    struct gw_conf_pos pos;

    if (parser->error == YAML_MEMORY_ERROR) {
        gw_cfg_error(c, (struct gw_conf_pos){0, 0}, "out of memory while parsing");
        return;
    }
    if (parser->error == YAML_READER_ERROR) {
        /* The reader gives a byte offset, not a mark. */
        pos.line = 1;
        pos.col = 1;
        for (size_t i = 0; i < parser->problem_offset && i < len; i++) {
            if (data[i] == '\n') {
                pos.line++;
                pos.col = 1;
            } else {
                pos.col++;
            }
        }
        gw_cfg_error(c, pos, "YAML error: %s", parser->problem);
        return;
    }
    pos.line = (unsigned)parser->problem_mark.line + 1;
    pos.col = (unsigned)parser->problem_mark.column + 1;
    if (parser->context != NULL)
        gw_cfg_error(c, pos, "YAML syntax error: %s: %s", parser->context,
                     parser->problem != NULL ? parser->problem : "?");
    else
        gw_cfg_error(c, pos, "YAML syntax error: %s",
                     parser->problem != NULL ? parser->problem : "?");
}

static char *dir_of(const char *file)
{
    const char *slash = strrchr(file, '/');

    return slash == NULL ? NULL : gw_strndup(file, (size_t)(slash - file));
}

static struct gw_config *config_create(const char *file)
{
    struct gw_config *conf = gw_calloc(1, sizeof(*conf));

    conf->file = gw_strdup(file);
    conf->workers = 0;
    conf->plugin_dir = gw_strdup(GW_PLUGIN_DIR_DEFAULT);
    conf->log_level = GW_LOG_INFO;
    conf->shutdown_timeout = SHUTDOWN_TIMEOUT_DEFAULT;
    conf->auth_failure_delay = FAILURE_DELAY_DEFAULT;
    conf->auth_cache_ttl = CACHE_TTL_DEFAULT;
    conf->auth_negative_ttl = NEGATIVE_TTL_DEFAULT;
    conf->auth_cache_size = CACHE_SIZE_DEFAULT;
    conf->connect_timeout = CONNECT_TIMEOUT_DEFAULT;
    conf->connect_retries = RETRIES_DEFAULT;
    conf->upstream_verify = true;
    conf->dir_source = GW_DIR_STATIC;
    conf->loc_source = GW_LOC_STATIC;
    conf->health_enabled = true;
    conf->health_interval = HEALTH_INTERVAL_DEFAULT;
    conf->health_timeout = HEALTH_TIMEOUT_DEFAULT;
    conf->health_rise = HEALTH_RISE_DEFAULT;
    conf->health_fall = HEALTH_FALL_DEFAULT;
    conf->health_http_path = gw_strdup("/");
    conf->hold_down = HOLD_DOWN_DEFAULT;
    conf->move_close_window = MOVE_CLOSE_DEFAULT;
    auth_extra_defaults(conf);
    return conf;
}

int gw_config_parse(const char *file, const char *data, size_t len, unsigned flags,
                    struct gw_config **conf_r, char **errors_r)
{
    struct gw_cfg c;
    yaml_parser_t parser;
    yaml_document_t doc, extra;
    struct gw_config *conf = NULL;

    *conf_r = NULL;
    *errors_r = NULL;
    memset(&c, 0, sizeof(c));
    c.file = file;
    c.flags = flags;
    if (len > GW_CFG_MAX_FILE) {
        gw_cfg_error(&c, (struct gw_conf_pos){0, 0}, "larger than %u bytes", GW_CFG_MAX_FILE);
        goto fail;
    }
    c.dir = dir_of(file);
    if (!yaml_parser_initialize(&parser)) {
        gw_cfg_error(&c, (struct gw_conf_pos){0, 0}, "out of memory");
        goto fail;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)data, len);
    if (!yaml_parser_load(&parser, &doc)) {
        yaml_error(&c, &parser, data, len);
        goto fail_parser;
    }
    c.doc = &doc;

    /* One document per file: a second one would be silently ignored. */
    if (!yaml_parser_load(&parser, &extra)) {
        yaml_error(&c, &parser, data, len);
    } else {
        if (yaml_document_get_root_node(&extra) != NULL)
            gw_cfg_error(&c, gw_cfg_pos(yaml_document_get_root_node(&extra)),
                         "only one YAML document is allowed");
        yaml_document_delete(&extra);
    }

    conf = config_create(file);
    parse_root(&c, yaml_document_get_root_node(&doc), conf);
    yaml_document_delete(&doc);
    yaml_parser_delete(&parser);
    if (c.nerrors > 0)
        goto fail;
    free(c.dir);
    *conf_r = conf;
    return 0;

fail_parser:
    yaml_parser_delete(&parser);
fail:
    gw_config_free(&conf);
    free(c.dir);
    *errors_r = gw_cfg_errors_take(&c);
    return -1;
}

/* Read the whole file, refusing more than GW_CFG_MAX_FILE bytes. */
static int read_file(const char *file, char **data_r, size_t *len_r, const char **error_r)
{
    size_t len = 0, cap = 64 * 1024;
    char *data;
    int fd;

    fd = open(file, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        *error_r = strerror(errno);
        return -1;
    }
    data = gw_malloc(cap);
    for (;;) {
        ssize_t n;

        if (len == cap) {
            char *bigger;

            if (cap > GW_CFG_MAX_FILE) {
                *error_r = "file too large";
                goto fail;
            }
            bigger = gw_malloc(cap * 2);
            memcpy(bigger, data, len);
            free(data);
            data = bigger;
            cap *= 2;
        }
        n = read(fd, data + len, cap - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            *error_r = strerror(errno);
            goto fail;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    *data_r = data;
    *len_r = len;
    return 0;
fail:
    free(data);
    close(fd);
    return -1;
}

int gw_config_load(const char *file, struct gw_config **conf_r, char **errors_r)
{
    const char *error;
    char *data;
    size_t len;
    int ret;

    *conf_r = NULL;
    *errors_r = NULL;
    if (read_file(file, &data, &len, &error) < 0) {
        struct gw_cfg c;

        memset(&c, 0, sizeof(c));
        c.file = file;
        gw_cfg_error(&c, (struct gw_conf_pos){0, 0}, "cannot read: %s", error);
        *errors_r = gw_cfg_errors_take(&c);
        return -1;
    }
    ret = gw_config_parse(file, data, len, 0, conf_r, errors_r);
    free(data);
    return ret;
}

/* ---- lookups and freeing -------------------------------------------- */

const struct gw_conf_server *gw_config_server(const struct gw_config *conf, const char *name)
{
    for (size_t i = 0; i < conf->nservers; i++) {
        if (strcmp(conf->servers[i].name, name) == 0)
            return &conf->servers[i];
    }
    return NULL;
}

const struct gw_conf_database *gw_config_database(const struct gw_config *conf, const char *name)
{
    for (size_t i = 0; i < conf->ndatabases; i++) {
        if (strcmp(conf->databases[i].name, name) == 0)
            return &conf->databases[i];
    }
    return NULL;
}

const struct gw_conf_site *gw_config_site(const struct gw_config *conf, const char *name)
{
    for (size_t i = 0; i < conf->nsites; i++) {
        if (strcmp(conf->sites[i].name, name) == 0)
            return &conf->sites[i];
    }
    return NULL;
}

const struct gw_conf_service *gw_config_service(const struct gw_conf_server *srv,
                                                const char *protocol)
{
    for (size_t i = 0; i < srv->nservices; i++) {
        if (strcmp(srv->services[i].protocol, protocol) == 0)
            return &srv->services[i];
    }
    return NULL;
}

static void listener_free(struct gw_conf_listener *l)
{
    for (size_t i = 0; i < l->ncerts; i++) {
        free(l->certs[i].cert_file);
        free(l->certs[i].key_file);
    }
    free(l->certs);
    free(l->address);
    free(l->tls_min_version);
    free(l->ciphers);
    free(l->client_ca_file);
}

static void protocol_free(struct gw_conf_protocol *p)
{
    for (size_t i = 0; i < p->nlisteners; i++)
        listener_free(&p->listeners[i]);
    free(p->listeners);
    /* The key table lives in the plugin: free its strings before dlclose. */
    if (p->plugin != NULL && p->plugin_conf != NULL) {
        for (const struct gw_conf_key *k = p->plugin->conf_keys; k != NULL && k->name != NULL;
             k++) {
            if (k->type == GW_CONF_STRING)
                free(*(char **)(void *)((char *)p->plugin_conf + k->offset));
        }
    }
    free(p->plugin_conf);
    p->plugin = NULL;
    gw_plugin_unload(&p->dl_handle);
    free(p->name);
    free(p->plugin_path);
    memset(p, 0, sizeof(*p));
}

void gw_config_free(struct gw_config **confp)
{
    struct gw_config *conf = *confp;

    if (conf == NULL)
        return;
    for (size_t i = 0; i < conf->nprotocols; i++)
        protocol_free(&conf->protocols[i]);
    free(conf->protocols);
    for (size_t i = 0; i < conf->nusers; i++) {
        struct gw_conf_user *u = &conf->users[i];

        free(u->name);
        gw_free_secret(&u->password_hash);
        free(u->database);
        free(u->site);
        free(u->sip_uri);
        free(u->extension);
    }
    free(conf->users);
    ldap_conf_free(&conf->dir_ldap);
    loc_ldap_free(&conf->loc_ldap);
    for (size_t i = 0; i < conf->nservers; i++) {
        struct gw_conf_server *s = &conf->servers[i];

        for (size_t j = 0; j < s->nservices; j++) {
            free(s->services[j].protocol);
            free(s->services[j].sni);
        }
        free(s->services);
        free(s->name);
        free(s->address);
        free(s->site);
    }
    free(conf->servers);
    free(conf->health_http_path);
    free(conf->admin_socket);
    for (size_t i = 0; i < conf->ndatabases; i++) {
        struct gw_conf_database *d = &conf->databases[i];

        for (size_t j = 0; j < d->ncopies; j++)
            free(d->copies[j]);
        free(d->copies);
        free(d->name);
        free(d->active);
    }
    free(conf->databases);
    for (size_t i = 0; i < conf->nsites; i++) {
        free(conf->sites[i].name);
        free(conf->sites[i].external_url);
    }
    free(conf->sites);
    free(conf->file);
    free(conf->plugin_dir);
    free(conf->local_site);
    free(conf->upstream_ca_file);
    free(*confp);
    *confp = NULL;
}
