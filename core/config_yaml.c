/*
 * Configuration loading, the generic half: errors with positions, libyaml
 * node helpers, typed scalars (bool, integer, duration, size, string), and
 * the exported duration/size/address parsers. See config_yaml.h.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config_yaml.h"

/* ---- errors --------------------------------------------------------- */

struct gw_conf_pos gw_cfg_pos(const yaml_node_t *n)
{
    struct gw_conf_pos pos = {0, 0};

    if (n != NULL) {
        pos.line = (unsigned)n->start_mark.line + 1;
        pos.col = (unsigned)n->start_mark.column + 1;
    }
    return pos;
}

static void errors_append(struct gw_cfg *c, const char *s, size_t n)
{
    size_t need = c->errlen + n + 2; /* separator and NUL */

    if (need > c->errcap) {
        size_t cap = c->errcap < 512 ? 512 : c->errcap;
        char *p;

        while (cap < need)
            cap *= 2;
        p = gw_malloc(cap);
        if (c->errlen > 0)
            memcpy(p, c->errors, c->errlen);
        free(c->errors);
        c->errors = p;
        c->errcap = cap;
    }
    if (c->errlen > 0)
        c->errors[c->errlen++] = '\n';
    memcpy(c->errors + c->errlen, s, n);
    c->errlen += n;
    c->errors[c->errlen] = '\0';
}

void gw_cfg_error(struct gw_cfg *c, struct gw_conf_pos pos, const char *fmt, ...)
{
    char msg[GW_CFG_MAX_MSG], line[GW_CFG_MAX_MSG + 64];
    va_list ap;
    int n;

    c->nerrors++;
    if (c->nerrors > GW_CFG_MAX_ERRORS)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    if (pos.line == 0)
        n = snprintf(line, sizeof(line), "%s: %s", c->file, msg);
    else
        n = snprintf(line, sizeof(line), "%s:%u:%u: %s", c->file, pos.line, pos.col, msg);
    if (n < 0)
        return;
    if ((size_t)n >= sizeof(line))
        n = (int)sizeof(line) - 1;
    /* Values quoted in messages come from the file: one error, one line. */
    for (int i = 0; i < n; i++) {
        if ((unsigned char)line[i] < 0x20 || line[i] == 0x7f)
            line[i] = '?';
    }
    errors_append(c, line, (size_t)n);
}

char *gw_cfg_errors_take(struct gw_cfg *c)
{
    char *s;

    if (c->nerrors > GW_CFG_MAX_ERRORS) {
        char line[GW_CFG_MAX_MSG];
        int n = snprintf(line, sizeof(line), "%s: %u more errors not shown", c->file,
                         c->nerrors - GW_CFG_MAX_ERRORS);
        if (n > 0)
            errors_append(c, line, (size_t)n < sizeof(line) ? (size_t)n : sizeof(line) - 1);
    }
    s = c->errors != NULL ? c->errors : gw_strdup("");
    c->errors = NULL;
    c->errlen = c->errcap = 0;
    return s;
}

/* ---- nodes ---------------------------------------------------------- */

yaml_node_t *gw_cfg_node(const struct gw_cfg *c, int index)
{
    return yaml_document_get_node(c->doc, index);
}

bool gw_cfg_is_null(const yaml_node_t *n)
{
    const char *s;

    if (n == NULL || n->type != YAML_SCALAR_NODE || n->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    s = (const char *)n->data.scalar.value;
    return s[0] == '\0' || strcmp(s, "~") == 0 || strcmp(s, "null") == 0 ||
           strcmp(s, "Null") == 0 || strcmp(s, "NULL") == 0;
}

const char *gw_cfg_kind(const yaml_node_t *n)
{
    if (n == NULL || gw_cfg_is_null(n))
        return "null";
    switch (n->type) {
    case YAML_MAPPING_NODE:
        return "a mapping";
    case YAML_SEQUENCE_NODE:
        return "a list";
    case YAML_SCALAR_NODE:
        return "a string";
    default:
        return "nothing";
    }
}

const char *gw_cfg_text(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)n->data.scalar.value;
}

const char *gw_cfg_pathf(char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(buf, size, fmt, ap);
    va_end(ap);
    return buf;
}

const char *gw_cfg_join(char *buf, size_t size, const char *path, const char *key)
{
    if (path[0] == '\0')
        return gw_cfg_pathf(buf, size, "%s", key);
    return gw_cfg_pathf(buf, size, "%s.%s", path, key);
}

size_t gw_cfg_map_len(const yaml_node_t *n)
{
    if (n == NULL || n->type != YAML_MAPPING_NODE)
        return 0;
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

struct key_ref {
    const char *text;
    size_t index;
    const yaml_node_t *node;
};

static int key_ref_cmp(const void *a, const void *b)
{
    const struct key_ref *x = a, *y = b;
    int r = strcmp(x->text, y->text);

    if (r != 0)
        return r;
    return x->index < y->index ? -1 : x->index > y->index;
}

bool gw_cfg_map(struct gw_cfg *c, const yaml_node_t *n, const char *path,
                const char *const *known)
{
    struct key_ref *refs;
    size_t nrefs = 0, len;

    if (n == NULL || gw_cfg_is_null(n))
        return true;
    if (n->type != YAML_MAPPING_NODE) {
        gw_cfg_error(c, gw_cfg_pos(n), "%s: expected a mapping, got %s",
                     path[0] != '\0' ? path : "top level", gw_cfg_kind(n));
        return false;
    }
    len = gw_cfg_map_len(n);
    if (len == 0)
        return true;
    refs = gw_calloc(len, sizeof(*refs));
    for (size_t i = 0; i < len; i++) {
        const yaml_node_t *k = gw_cfg_node(c, n->data.mapping.pairs.start[i].key);
        const char *text = gw_cfg_text(k);

        if (text == NULL) {
            gw_cfg_error(c, gw_cfg_pos(k), "%s: keys must be strings, got %s",
                         path[0] != '\0' ? path : "top level", gw_cfg_kind(k));
            continue;
        }
        if (known != NULL) {
            const char *const *kn;

            for (kn = known; *kn != NULL && strcmp(*kn, text) != 0; kn++)
                ;
            if (*kn == NULL) {
                if (path[0] == '\0')
                    gw_cfg_error(c, gw_cfg_pos(k), "unknown top-level key '%s'", text);
                else
                    gw_cfg_error(c, gw_cfg_pos(k), "unknown key '%s' in %s", text, path);
            }
        }
        refs[nrefs].text = text;
        refs[nrefs].index = i;
        refs[nrefs].node = k;
        nrefs++;
    }
    /* Sorted, a duplicate is next to its first occurrence: users maps can be
       large, and YAML says a duplicate key is an error, not an override. */
    qsort(refs, nrefs, sizeof(*refs), key_ref_cmp);
    for (size_t i = 1; i < nrefs; i++) {
        if (strcmp(refs[i].text, refs[i - 1].text) == 0) {
            if (path[0] == '\0')
                gw_cfg_error(c, gw_cfg_pos(refs[i].node), "duplicate top-level key '%s'",
                             refs[i].text);
            else
                gw_cfg_error(c, gw_cfg_pos(refs[i].node), "duplicate key '%s' in %s",
                             refs[i].text, path);
        }
    }
    free(refs);
    return true;
}

yaml_node_t *gw_cfg_get(const struct gw_cfg *c, const yaml_node_t *map, const char *key)
{
    size_t len = gw_cfg_map_len(map);

    for (size_t i = 0; i < len; i++) {
        const yaml_node_pair_t *p = &map->data.mapping.pairs.start[i];
        const char *text = gw_cfg_text(gw_cfg_node(c, p->key));

        if (text != NULL && strcmp(text, key) == 0)
            return gw_cfg_node(c, p->value);
    }
    return NULL;
}

yaml_node_t *gw_cfg_require(struct gw_cfg *c, const yaml_node_t *map, const char *path,
                            const char *key, struct gw_conf_pos owner)
{
    yaml_node_t *v = gw_cfg_get(c, map, key);

    if (v == NULL || gw_cfg_is_null(v)) {
        gw_cfg_error(c, owner, "%s: missing required key '%s'", path, key);
        return NULL;
    }
    return v;
}

/* ---- exported parsers ----------------------------------------------- */

/* Digits only, no sign, no overflow past LONG_MAX. Returns the first byte
   after the digits, or NULL. */
static const char *parse_digits(const char *s, long *v_r)
{
    long v = 0;

    if (*s < '0' || *s > '9')
        return NULL;
    for (; *s >= '0' && *s <= '9'; s++) {
        int d = *s - '0';

        if (v > (LONG_MAX - d) / 10)
            return NULL;
        v = v * 10 + d;
    }
    *v_r = v;
    return s;
}

int gw_parse_duration(const char *s, long *ms_r)
{
    static const struct {
        const char *unit;
        long ms;
    } units[] = {
        {"", 1000}, {"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000},
    };
    const char *end;
    long v;

    if (s == NULL || (end = parse_digits(s, &v)) == NULL)
        return -1;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcmp(end, units[i].unit) == 0) {
            if (v > LONG_MAX / units[i].ms)
                return -1;
            *ms_r = v * units[i].ms;
            return 0;
        }
    }
    return -1;
}

int gw_parse_size(const char *s, long *bytes_r)
{
    const char *end;
    long v, mult;

    if (s == NULL || (end = parse_digits(s, &v)) == NULL)
        return -1;
    if (end[0] == '\0')
        mult = 1;
    else if (end[1] != '\0')
        return -1;
    else if (end[0] == 'k' || end[0] == 'K')
        mult = 1024L;
    else if (end[0] == 'm' || end[0] == 'M')
        mult = 1024L * 1024;
    else if (end[0] == 'g' || end[0] == 'G')
        mult = 1024L * 1024 * 1024;
    else
        return -1;
    if (v > LONG_MAX / mult)
        return -1;
    *bytes_r = v * mult;
    return 0;
}

int gw_parse_address(const char *s, struct sockaddr_storage *ss, socklen_t *len_r)
{
    char host[INET6_ADDRSTRLEN + 1];
    const char *colon, *hend;
    long port;
    const char *pend;
    size_t hlen;
    bool v6;

    if (s == NULL)
        return -1;
    v6 = s[0] == '[';
    if (v6) {
        hend = strchr(s, ']');
        if (hend == NULL || hend[1] != ':')
            return -1;
        colon = hend + 1;
        s++;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return -1;
        hend = colon;
        /* A bare IPv6 literal is ambiguous with its port: brackets needed. */
        if (memchr(s, ':', (size_t)(hend - s)) != NULL)
            return -1;
    }
    hlen = (size_t)(hend - s);
    if (hlen == 0 || hlen >= sizeof(host))
        return -1;
    memcpy(host, s, hlen);
    host[hlen] = '\0';
    pend = parse_digits(colon + 1, &port);
    if (pend == NULL || *pend != '\0' || port < 1 || port > 65535)
        return -1;

    memset(ss, 0, sizeof(*ss));
    if (v6) {
        struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)ss;

        if (inet_pton(AF_INET6, host, &sin6->sin6_addr) != 1)
            return -1;
        sin6->sin6_family = AF_INET6;
        sin6->sin6_port = htons((uint16_t)port);
        *len_r = sizeof(*sin6);
    } else {
        struct sockaddr_in *sin = (struct sockaddr_in *)ss;

        if (strcmp(host, "*") == 0)
            sin->sin_addr.s_addr = htonl(INADDR_ANY);
        else if (inet_pton(AF_INET, host, &sin->sin_addr) != 1)
            return -1;
        sin->sin_family = AF_INET;
        sin->sin_port = htons((uint16_t)port);
        *len_r = sizeof(*sin);
    }
    return 0;
}

/* ---- values --------------------------------------------------------- */

void gw_cfg_format(enum gw_conf_type type, long v, char *buf, size_t size)
{
    static const struct {
        long mult;
        const char *unit;
    } dur[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}},
      sz[] = {{1024L * 1024 * 1024, "G"}, {1024L * 1024, "M"}, {1024, "k"}};

    if (type == GW_CONF_DURATION) {
        if (v == 0) {
            snprintf(buf, size, "0s");
            return;
        }
        for (size_t i = 0; i < sizeof(dur) / sizeof(dur[0]); i++) {
            if (v % dur[i].mult == 0) {
                snprintf(buf, size, "%ld%s", v / dur[i].mult, dur[i].unit);
                return;
            }
        }
        snprintf(buf, size, "%ldms", v);
        return;
    }
    if (type == GW_CONF_SIZE && v != 0) {
        for (size_t i = 0; i < sizeof(sz) / sizeof(sz[0]); i++) {
            if (v % sz[i].mult == 0) {
                snprintf(buf, size, "%ld%s", v / sz[i].mult, sz[i].unit);
                return;
            }
        }
    }
    snprintf(buf, size, "%ld", v);
}

static const char *type_desc(enum gw_conf_type type)
{
    switch (type) {
    case GW_CONF_BOOL:
        return "true or false";
    case GW_CONF_INT:
        return "an integer";
    case GW_CONF_DURATION:
        return "a duration";
    case GW_CONF_SIZE:
        return "a size";
    case GW_CONF_STRING:
        return "a string";
    }
    return "a value";
}

static int parse_bool(const char *s, bool *b_r)
{
    static const char *const yes[] = {"true", "yes", "on"}, *const no[] = {"false", "no", "off"};

    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *b_r = true;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *b_r = false;
            return 0;
        }
    }
    return -1;
}

static int parse_long(const char *s, long *v_r)
{
    const char *end;
    bool neg = s[0] == '-';

    end = parse_digits(neg ? s + 1 : s, v_r);
    if (end == NULL || *end != '\0')
        return -1;
    if (neg)
        *v_r = -*v_r;
    return 0;
}

int gw_cfg_parse_text(const char *text, enum gw_conf_type type, long min, long max, void *out,
                      char *err, size_t errsize)
{
    char lo[32], hi[32];
    long v;

    switch (type) {
    case GW_CONF_BOOL:
        if (parse_bool(text, out) < 0) {
            snprintf(err, errsize, "expected true or false, got '%s'", text);
            return -1;
        }
        return 0;
    case GW_CONF_STRING: {
        char **sp = out;

        free(*sp);
        *sp = gw_strdup(text);
        return 0;
    }
    case GW_CONF_INT:
        if (parse_long(text, &v) < 0) {
            snprintf(err, errsize, "expected an integer, got '%s'", text);
            return -1;
        }
        break;
    case GW_CONF_DURATION:
        if (gw_parse_duration(text, &v) < 0) {
            snprintf(err, errsize, "invalid duration '%s' (expected e.g. 250ms, 30s, 5m, 1h, 2d)",
                     text);
            return -1;
        }
        break;
    case GW_CONF_SIZE:
        if (gw_parse_size(text, &v) < 0) {
            snprintf(err, errsize, "invalid size '%s' (expected e.g. 512, 64k, 10M, 1G)", text);
            return -1;
        }
        break;
    default:
        snprintf(err, errsize, "unknown key type %d", (int)type);
        return -1;
    }
    if (v < min || v > max) {
        gw_cfg_format(type, min, lo, sizeof(lo));
        gw_cfg_format(type, max, hi, sizeof(hi));
        snprintf(err, errsize, "must be between %s and %s", lo, hi);
        return -1;
    }
    *(long *)out = v;
    return 0;
}

int gw_cfg_value(struct gw_cfg *c, const yaml_node_t *n, const char *path,
                 enum gw_conf_type type, long min, long max, void *out)
{
    char err[GW_CFG_MAX_MSG];
    const char *text = gw_cfg_text(n);

    if (text == NULL || (type != GW_CONF_STRING && gw_cfg_is_null(n))) {
        gw_cfg_error(c, gw_cfg_pos(n), "%s: expected %s, got %s", path, type_desc(type),
                     gw_cfg_kind(n));
        return -1;
    }
    if (strlen(text) != n->data.scalar.length) {
        gw_cfg_error(c, gw_cfg_pos(n), "%s: contains a NUL byte", path);
        return -1;
    }
    if (type == GW_CONF_STRING && gw_cfg_is_null(n)) {
        char **sp = out;

        free(*sp);
        *sp = NULL;
        return 0;
    }
    if (gw_cfg_parse_text(text, type, min, max, out, err, sizeof(err)) < 0) {
        gw_cfg_error(c, gw_cfg_pos(n), "%s: %s", path, err);
        return -1;
    }
    return 0;
}

int gw_cfg_get_value(struct gw_cfg *c, const yaml_node_t *map, const char *path,
                     const char *key, enum gw_conf_type type, long min, long max, void *out)
{
    char kpath[GW_CFG_PATH_MAX];
    yaml_node_t *v = gw_cfg_get(c, map, key);

    if (v == NULL)
        return 0;
    return gw_cfg_value(c, v, gw_cfg_join(kpath, sizeof(kpath), path, key), type, min, max, out);
}

int gw_cfg_get_enum(struct gw_cfg *c, const yaml_node_t *map, const char *path, const char *key,
                    const char *const *names, int *out)
{
    char kpath[GW_CFG_PATH_MAX], list[GW_CFG_MAX_MSG / 2];
    yaml_node_t *v = gw_cfg_get(c, map, key);
    const char *text = gw_cfg_text(v);
    size_t len = 0;

    if (v == NULL)
        return 0;
    gw_cfg_join(kpath, sizeof(kpath), path, key);
    if (text == NULL || gw_cfg_is_null(v)) {
        gw_cfg_error(c, gw_cfg_pos(v), "%s: expected a string, got %s", kpath, gw_cfg_kind(v));
        return -1;
    }
    for (int i = 0; names[i] != NULL; i++) {
        if (strcmp(names[i], text) == 0) {
            *out = i;
            return 0;
        }
    }
    list[0] = '\0';
    for (int i = 0; names[i] != NULL && len < sizeof(list); i++) {
        int n = snprintf(list + len, sizeof(list) - len, "%s%s", i > 0 ? ", " : "", names[i]);
        if (n < 0)
            break;
        len += (size_t)n;
    }
    gw_cfg_error(c, gw_cfg_pos(v), "%s: must be one of %s, got '%s'", kpath, list, text);
    return -1;
}

char *gw_cfg_resolve(const struct gw_cfg *c, const char *p)
{
    size_t dlen, plen;
    char *s;

    if (p[0] == '/' || c->dir == NULL)
        return gw_strdup(p);
    dlen = strlen(c->dir);
    plen = strlen(p);
    s = gw_malloc(dlen + plen + 2);
    memcpy(s, c->dir, dlen);
    s[dlen] = '/';
    memcpy(s + dlen + 1, p, plen + 1);
    return s;
}

int gw_cfg_get_file(struct gw_cfg *c, const yaml_node_t *map, const char *path, const char *key,
                    const char *what, char **out)
{
    char kpath[GW_CFG_PATH_MAX];
    yaml_node_t *v = gw_cfg_get(c, map, key);
    char *s = NULL;

    if (v == NULL)
        return 0;
    gw_cfg_join(kpath, sizeof(kpath), path, key);
    if (gw_cfg_value(c, v, kpath, GW_CONF_STRING, 0, 0, &s) < 0)
        return -1;
    free(*out);
    *out = NULL;
    if (s == NULL)
        return 0;
    *out = gw_cfg_resolve(c, s);
    free(s);
    if (access(*out, R_OK) < 0) {
        gw_cfg_error(c, gw_cfg_pos(v), "%s: unreadable %s '%s': %s", kpath, what, *out,
                     strerror(errno));
        return -1;
    }
    return 0;
}
