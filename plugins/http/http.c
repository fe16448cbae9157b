/*
 * HTTP plugin: descriptor, configuration keys, per-worker start/stop.
 * The client side is in http_session.c, the backend exchange in
 * http_proxy.c, the keep-alive pool in http_pool.c, parsing in http_parse.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#include "http.h"

#define HTTP_MS_SECOND 1000L
#define HTTP_MS_HOUR (3600L * HTTP_MS_SECOND)
#define HTTP_KIB 1024L
#define HTTP_MIB (1024L * 1024L)

#define K(field) offsetof(struct http_conf, field)

static const struct gw_conf_key http_conf_keys[] = {
    { "max_request_line", GW_CONF_SIZE, K(max_request_line), "8k", 256, 64 * HTTP_KIB,
      "longest request line in octets; longer gets 414" },
    { "max_header_size", GW_CONF_SIZE, K(max_header_size), "32k", HTTP_KIB, 64 * HTTP_KIB,
      "largest request head in octets (request line and fields); larger gets 431" },
    { "max_headers", GW_CONF_INT, K(max_headers), "100", 8, HTTP_MAX_HEADERS_LIMIT,
      "most header fields in a request; more gets 431" },
    { "max_body_size", GW_CONF_SIZE, K(max_body_size), "0", 0, 1L << 50,
      "largest request body in octets, 0 for no limit; larger gets 413" },
    { "max_response_header_size", GW_CONF_SIZE, K(max_response_header_size), "64k", HTTP_KIB,
      64 * HTTP_KIB, "largest backend response head; larger gets the client a 502" },
    { "header_timeout", GW_CONF_DURATION, K(header_timeout), "30s", HTTP_MS_SECOND, HTTP_MS_HOUR,
      "time from the first byte of a request head to its end; then 408" },
    { "keepalive_timeout", GW_CONF_DURATION, K(keepalive_timeout), "75s", 0, HTTP_MS_HOUR,
      "how long a client connection may idle between requests; 0 closes after each" },
    { "keepalive_requests", GW_CONF_INT, K(keepalive_requests), "1000", 1, 1000000,
      "requests served on one client connection before it is closed" },
    { "body_timeout", GW_CONF_DURATION, K(body_timeout), "60s", HTTP_MS_SECOND, HTTP_MS_HOUR,
      "time without progress while a body moves (either way)" },
    { "backend_timeout", GW_CONF_DURATION, K(backend_timeout), "60s", HTTP_MS_SECOND,
      HTTP_MS_HOUR, "time for a backend's response head (then 504), and idle in its body" },
    { "backend_keepalive", GW_CONF_INT, K(backend_keepalive), "16", 0, 1024,
      "idle connections kept per backend server and worker; 0 disables the pool" },
    { "backend_keepalive_timeout", GW_CONF_DURATION, K(backend_keepalive_timeout), "30s",
      HTTP_MS_SECOND, HTTP_MS_HOUR, "how long an idle pooled backend connection is kept" },
    { "backend_keepalive_requests", GW_CONF_INT, K(backend_keepalive_requests), "1000", 1,
      1000000, "requests sent on one backend connection before it is closed" },
    { "credential_memo", GW_CONF_DURATION, K(credential_memo), "60s", 0, HTTP_MS_HOUR,
      "how long a connection skips the lookup for the credentials it proved; 0 = every request" },
    { "max_discard", GW_CONF_SIZE, K(max_discard), "1M", 0, 1024 * HTTP_MIB,
      "request body octets read and dropped to keep a connection after an early answer" },
    { "retry_after", GW_CONF_DURATION, K(retry_after), "30s", HTTP_MS_SECOND, 24 * HTTP_MS_HOUR,
      "Retry-After sent with 503" },
    { "current_version", GW_CONF_INT, K(current_version), "0", 0, 1000000,
      "mailboxes of a lower version are proxied to legacy_servers; 0 disables" },
    { "realm", GW_CONF_STRING, K(realm), "gatewayd", 0, 0, "Basic authentication realm" },
    { "anonymous_paths", GW_CONF_STRING, K(anonymous_paths), NULL, 0, 0,
      "comma-separated path prefixes served without authentication by any healthy server" },
    { "health_prefixes", GW_CONF_STRING, K(health_prefixes), NULL, 0, 0,
      "comma-separated path prefixes whose <prefix>/healthcheck.htm the gateway answers" },
    { "health_user", GW_CONF_STRING, K(health_user), NULL, 0, 0,
      "user resolved to probe the directory for health pages (none: not probed)" },
    { "path_prefixes", GW_CONF_STRING, K(path_prefixes), NULL, 0, 0,
      "comma-separated path prefixes served at all (others get 404); absent = every path" },
    { "legacy_servers", GW_CONF_STRING, K(legacy_servers), NULL, 0, 0,
      "comma-separated servers for mailboxes below current_version" },
    { "anchor_header", GW_CONF_STRING, K(anchor_header), "X-AnchorMailbox", 0, 0,
      "request header naming the mailbox to route to (after authentication); empty = off" },
    { "anchor_query", GW_CONF_STRING, K(anchor_query), "User", 0, 0,
      "query parameter naming the mailbox to route to (ActiveSync); empty = off" },
    { "user_header", GW_CONF_STRING, K(user_header), NULL, 0, 0,
      "header that carries the verified user name to backends (stripped from clients)" },
    { "redirect_cross_site", GW_CONF_BOOL, K(redirect_cross_site), "true", 0, 0,
      "send mailboxes of another site with an external_url there with a 302" },
    { "trust_forwarded", GW_CONF_BOOL, K(trust_forwarded), "false", 0, 0,
      "keep and extend the client's X-Forwarded-For and Forwarded (behind a trusted proxy)" },
    { "forwarded", GW_CONF_BOOL, K(forwarded), "false", 0, 0,
      "also send an RFC 7239 Forwarded header" },
    GW_CONF_END,
};

#undef K

/* ---- lists -------------------------------------------------------------- */

/* Split a comma-separated value into owned, trimmed items. Returns -1 when
   there are more than HTTP_LIST_MAX or an item is empty. */
static int http_list_split(const char *value, struct http_list *l)
{
    struct http_slice item, all;
    size_t pos = 0;

    memset(l, 0, sizeof(*l));
    if (value == NULL)
        return 0;
    all.ptr = value;
    all.len = strlen(value);
    while (http_list_next(all, &pos, &item)) {
        if (l->n == HTTP_LIST_MAX)
            return -1;
        l->item[l->n++] = gw_strndup(item.ptr, item.len);
    }
    return 0;
}

static void http_list_free(struct http_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        free(l->item[i]);
    l->n = 0;
}

/* ---- configure ---------------------------------------------------------- */

static bool printable(const char *s, const char *forbidden)
{
    for (; *s != '\0'; s++)
        if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f ||
            (forbidden != NULL && strchr(forbidden, *s) != NULL))
            return false;
    return true;
}

static bool token(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s != '\0'; s++)
        if (!http_is_tchar((unsigned char)*s))
            return false;
    return true;
}

/* A list of path prefixes: each "/..." without query, fragment or anything
   a backend could normalise differently. */
static const char *check_prefixes(const char *value, const char *bad_msg, const char *many_msg)
{
    struct http_list l;
    const char *err = NULL;

    if (value == NULL)
        return NULL;
    if (http_list_split(value, &l) < 0) {
        err = many_msg;
        goto out;
    }
    if (l.n == 0)
        err = bad_msg;
    for (size_t i = 0; i < l.n && err == NULL; i++) {
        struct http_slice p = {l.item[i], strlen(l.item[i])};
        if (p.len > 1 && l.item[i][p.len - 1] == '/')
            p.len--;   /* "/autodiscover/" is checked as "/autodiscover" */
        if (p.len > 200 || l.item[i][0] != '/' || !printable(l.item[i], "?#%") ||
            (p.len > 1 && http_path_ambiguous(p)))
            err = bad_msg;
    }
out:
    http_list_free(&l);
    return err;
}

static int http_configure(void *conf_v, const char **error_r)
{
    const struct http_conf *conf = conf_v;
    const char *err = NULL;
    struct http_list l;

    if (conf->realm != NULL) {
        /* it goes into a quoted-string: no quotes, backslashes or controls */
        bool ok = conf->realm[0] != '\0' && strlen(conf->realm) <= 100;
        for (const char *p = conf->realm; ok && *p != '\0'; p++)
            if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f || *p == '"' || *p == '\\')
                ok = false;
        if (!ok) {
            *error_r = "protocols.http.realm: 1 to 100 printable ASCII characters, no quotes "
                       "or backslashes";
            return -1;
        }
    }
    err = check_prefixes(conf->anonymous_paths,
                         "protocols.http.anonymous_paths: each prefix must be a plain path "
                         "starting with '/' (no '?', '#', '%', dot segments or '//')",
                         "protocols.http.anonymous_paths: at most 32 prefixes");
    if (err == NULL)
        err = check_prefixes(conf->health_prefixes,
                             "protocols.http.health_prefixes: each prefix must be a plain path "
                             "starting with '/' (no '?', '#', '%', dot segments or '//')",
                             "protocols.http.health_prefixes: at most 32 prefixes");
    if (err == NULL)
        err = check_prefixes(conf->path_prefixes,
                             "protocols.http.path_prefixes: each prefix must be a plain path "
                             "starting with '/' (no '?', '#', '%', dot segments or '//')",
                             "protocols.http.path_prefixes: at most 32 prefixes");
    if (err != NULL) {
        *error_r = err;
        return -1;
    }
    if (conf->legacy_servers != NULL) {
        int rc = http_list_split(conf->legacy_servers, &l);
        size_t n = l.n;
        http_list_free(&l);
        if (rc < 0 || n == 0) {
            *error_r = "protocols.http.legacy_servers: 1 to 32 server names, comma-separated";
            return -1;
        }
        if (conf->current_version <= 0) {
            *error_r = "protocols.http.legacy_servers: needs current_version";
            return -1;
        }
    } else if (conf->current_version > 0) {
        *error_r = "protocols.http.current_version: needs legacy_servers";
        return -1;
    }
    if (conf->anchor_header != NULL && conf->anchor_header[0] != '\0' &&
        !token(conf->anchor_header)) {
        *error_r = "protocols.http.anchor_header: must be a header name";
        return -1;
    }
    if (conf->user_header != NULL && !token(conf->user_header)) {
        *error_r = "protocols.http.user_header: must be a header name";
        return -1;
    }
    if (conf->anchor_query != NULL && conf->anchor_query[0] != '\0' &&
        !printable(conf->anchor_query, "&=#?%")) {
        *error_r = "protocols.http.anchor_query: must be a plain parameter name";
        return -1;
    }
    if (conf->health_user != NULL && (conf->health_user[0] == '\0' ||
                                      strlen(conf->health_user) > HTTP_USER_MAX ||
                                      !printable(conf->health_user, NULL))) {
        *error_r = "protocols.http.health_user: must be a user name";
        return -1;
    }
    return 0;
}

/* ---- start / stop -------------------------------------------------------- */

static int http_start(struct gw_plugin_ctx *ctx)
{
    const struct http_conf *conf = gw_plugin_conf(ctx);
    struct http_worker *w = gw_calloc(1, sizeof(*w));
    size_t head_max = (size_t)(conf->max_header_size > conf->max_response_header_size
                                   ? conf->max_header_size
                                   : conf->max_response_header_size);

    w->conf = conf;
    if (http_list_split(conf->anonymous_paths, &w->anonymous) < 0 ||
        http_list_split(conf->health_prefixes, &w->health) < 0 ||
        http_list_split(conf->path_prefixes, &w->paths) < 0 ||
        http_list_split(conf->legacy_servers, &w->legacy) < 0) {
        gw_log(GW_LOG_ERROR, NULL, "http: cannot split the configured lists");
        goto fail;
    }
    for (size_t i = 0; i < w->health.n; i++) {
        const char *p = w->health.item[i];
        size_t n = strlen(p);
        if (n > 0 && p[n - 1] == '/')
            n--;
        w->health_pages[i] = gw_strfmt("%.*s/healthcheck.htm", (int)n, p);
    }
    if (conf->backend_keepalive > 0)
        w->pool = http_pool_create(conf->backend_keepalive, conf->backend_keepalive_timeout,
                                   conf->backend_keepalive_requests);
    /* heads we forward: the largest we accept plus what we add */
    w->scratch_size = head_max + HTTP_IN_SLACK + HTTP_HEAD_EXTRA;
    w->scratch = gw_malloc(w->scratch_size);
    w->rhdrs = gw_calloc((size_t)conf->max_headers, sizeof(*w->rhdrs));
    w->health_dir_ok = -1;
    {
        unsigned char key[HTTP_MEMO_KEY];
        char digest[] = "SHA256";
        OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string("digest", digest, 0),
                               OSSL_PARAM_construct_end()};
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);

        w->memo_mac = mac != NULL ? EVP_MAC_CTX_new(mac) : NULL;
        EVP_MAC_free(mac);   /* the context keeps its own reference */
        if (RAND_bytes(key, sizeof(key)) != 1 || w->memo_mac == NULL ||
            EVP_MAC_init(w->memo_mac, key, sizeof(key), params) != 1) {
            OPENSSL_cleanse(key, sizeof(key));
            gw_log(GW_LOG_ERROR, NULL, "http: cannot set up the credential memo (HMAC-SHA256)");
            goto fail;
        }
        OPENSSL_cleanse(key, sizeof(key));
    }
    gw_plugin_set_data(ctx, w);
    return 0;

fail:
    for (size_t i = 0; i < HTTP_LIST_MAX; i++)
        free(w->health_pages[i]);
    http_list_free(&w->anonymous);
    http_list_free(&w->health);
    http_list_free(&w->paths);
    http_list_free(&w->legacy);
    http_pool_destroy(&w->pool);
    EVP_MAC_CTX_free(w->memo_mac);
    free(w->scratch);
    free(w->rhdrs);
    free(w);
    return -1;
}

static void http_drain(struct gw_plugin_ctx *ctx)
{
    struct http_worker *w = gw_plugin_data(ctx);

    if (w != NULL) {
        http_sessions_drain(w);
        http_pool_drain(w->pool);
    }
}

static void http_stop(struct gw_plugin_ctx *ctx)
{
    struct http_worker *w = gw_plugin_data(ctx);

    if (w == NULL)
        return;
    http_sessions_destroy_all(w);
    if (w->health_lookup != NULL)
        gw_lookup_cancel(&w->health_lookup);
    http_pool_destroy(&w->pool);
    for (size_t i = 0; i < HTTP_LIST_MAX; i++)
        free(w->health_pages[i]);
    http_list_free(&w->anonymous);
    http_list_free(&w->health);
    http_list_free(&w->paths);
    http_list_free(&w->legacy);
    free(w->scratch);
    free(w->rhdrs);
    while (w->nbufs > 0)
        free(w->bufs[--w->nbufs]);
    EVP_MAC_CTX_free(w->memo_mac);
    gw_plugin_set_data(ctx, NULL);
    free(w);
}

GW_EXPORT const struct gw_plugin gw_plugin = {
    .abi = GW_PLUGIN_ABI,
    .signature = GW_BUILD_SIGNATURE,
    .name = HTTP_PROTOCOL,
    .conf_size = sizeof(struct http_conf),
    .conf_keys = http_conf_keys,
    .configure = http_configure,
    .start = http_start,
    .accept = http_session_accept,
    .stop = http_stop,
    .alpn = "http/1.1",
    .drain = http_drain,
};
