/*
 * The generic half of the configuration loader: collecting errors with their
 * position, walking libyaml nodes, and parsing typed scalars. The schema of
 * gateway.yaml lives in config.c; plugin keys go through the same
 * gw_cfg_value() as the core's own, so every error reads alike:
 *
 *   gateway.yaml:42:7: protocols.pop.login_timeout: must be between 1s and 1h
 *
 * Internal to core/config*.c.
 */
#ifndef GW_CORE_CONFIG_YAML_H
#define GW_CORE_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <yaml.h>

#include "config.h"

#define GW_CFG_MAX_FILE   (4u * 1024u * 1024u) /* bigger gateway.yaml files are refused */
#define GW_CFG_MAX_ERRORS 100u     /* errors listed; the rest are only counted */
#define GW_CFG_MAX_MSG    1024u    /* one error message, truncated beyond */
#define GW_CFG_PATH_MAX   256u     /* "protocols.pop.listen[0].certificates[1].cert" */

/* One load in progress. */
struct gw_cfg {
    const char *file;          /* as given, for messages */
    char *dir;                 /* directory of file, or NULL: relative paths stay as written */
    yaml_document_t *doc;
    unsigned flags;            /* GW_CONFIG_* */
    char *errors;              /* lines joined with '\n' */
    size_t errlen, errcap;
    unsigned nerrors;          /* all errors, including those not listed */
};

/* ---- errors --------------------------------------------------------- */

/* Position of a node, 1-based. */
struct gw_conf_pos gw_cfg_pos(const yaml_node_t *n);
/* Record "FILE:LINE:COL: message" (just "FILE: message" when pos.line is 0).
   Control characters in the message are replaced so one error is one line. */
void gw_cfg_error(struct gw_cfg *c, struct gw_conf_pos pos, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* The collected errors as a malloc'ed string (owned by the caller), with a
   last line counting the errors that were not listed. */
char *gw_cfg_errors_take(struct gw_cfg *c);

/* ---- nodes ---------------------------------------------------------- */

yaml_node_t *gw_cfg_node(const struct gw_cfg *c, int index);
/* A plain "", "~" or "null" scalar: a key written without a value. */
bool gw_cfg_is_null(const yaml_node_t *n);
/* "a mapping", "a list", "a string", "null": for "expected X, got Y". */
const char *gw_cfg_kind(const yaml_node_t *n);
/* The text of a scalar node (NUL-terminated by libyaml), else NULL. */
const char *gw_cfg_text(const yaml_node_t *n);
/* A key path for messages, truncated to fit: truncation only shortens a
   message. Returns buf. */
const char *gw_cfg_pathf(char *buf, size_t size, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* path + "." + key into buf (just key when path is empty); returns buf. */
const char *gw_cfg_join(char *buf, size_t size, const char *path, const char *key);

/*
 * Check that `n` is a mapping (null counts as an empty one) whose keys are
 * scalars, without duplicates and, when `known` (NULL-terminated) is given,
 * all in `known`. Every problem is reported; returns false only when `n` is
 * not a mapping at all, so that the caller skips it.
 */
bool gw_cfg_map(struct gw_cfg *c, const yaml_node_t *n, const char *path,
                const char *const *known);
/* Number of pairs of a mapping (0 for anything else). */
size_t gw_cfg_map_len(const yaml_node_t *n);
/* The value of `key` in mapping `map`, or NULL when absent (or map is not
   a mapping). */
yaml_node_t *gw_cfg_get(const struct gw_cfg *c, const yaml_node_t *map, const char *key);
/* Like gw_cfg_get, but a missing or null value is reported as
   "PATH: missing required key 'KEY'" at `owner`, and NULL returned. */
yaml_node_t *gw_cfg_require(struct gw_cfg *c, const yaml_node_t *map, const char *path,
                            const char *key, struct gw_conf_pos owner);

/* ---- values --------------------------------------------------------- */

/*
 * Parse scalar `n` (full key path `path` for messages) as `type` into *out:
 * bool * for GW_CONF_BOOL, long * for INT/DURATION/SIZE (within [min, max]),
 * char ** for STRING (the previous string is freed; null gives NULL).
 * Returns 0, or -1 after reporting the error.
 */
int gw_cfg_value(struct gw_cfg *c, const yaml_node_t *n, const char *path,
                 enum gw_conf_type type, long min, long max, void *out);
/*
 * The same on text, as if written as a plain YAML scalar (a plugin's
 * defaults). Returns 0, or -1 with the reason in err.
 */
int gw_cfg_parse_text(const char *text, enum gw_conf_type type, long min, long max, void *out,
                      char *err, size_t errsize);

/* Look `key` up in `map` and, when present, parse it into *out; when absent
   *out keeps the caller's default. Returns 0, or -1 (reported). */
int gw_cfg_get_value(struct gw_cfg *c, const yaml_node_t *map, const char *path,
                     const char *key, enum gw_conf_type type, long min, long max, void *out);
/* One of `names` (NULL-terminated); *out gets its index. Same rules. */
int gw_cfg_get_enum(struct gw_cfg *c, const yaml_node_t *map, const char *path, const char *key,
                    const char *const *names, int *out);
/* A file name, resolved against the directory of the configuration file
   and checked readable ("unreadable WHAT 'PATH': reason"). */
int gw_cfg_get_file(struct gw_cfg *c, const yaml_node_t *map, const char *path, const char *key,
                    const char *what, char **out);

/* `p` resolved against the configuration file's directory; malloc'ed. */
char *gw_cfg_resolve(const struct gw_cfg *c, const char *p);

/* "1h", "30s", "1500ms"; "64k", "10M", "1000": how ranges are shown. */
void gw_cfg_format(enum gw_conf_type type, long v, char *buf, size_t size);

#endif
