/*
 * Pure LDAP helpers: RFC 4515 filter escaping and template expansion, DN
 * checks, attribute value parsing. No I/O, no allocation beyond what is
 * documented: unit-tested and safe to call from the config loader.
 */
#ifndef GW_LDAP_UTIL_H
#define GW_LDAP_UTIL_H

#include <stdbool.h>
#include <stddef.h>

#define GW_LDAP_LOGIN_MAX  256u    /* longest login name ever looked up (bytes) */
#define GW_LDAP_FILTER_MAX 2048u   /* longest filter sent after expansion */

/*
 * Escape `len` bytes of `value` as an RFC 4515 assertion value into out
 * (size outsize, NUL-terminated): '*', '(', ')', '\', NUL, control
 * characters and every byte >= 0x80 become \XX, so no input can add a
 * wildcard or close the filter early. Returns the length written, or -1
 * when out is too small (nothing usable is left in out then).
 */
long gw_ldap_escape_value(const char *value, size_t len, char *out, size_t outsize);

/*
 * Expand a filter template: each "%u" becomes the escaped `value`, "%%" a
 * '%'. Any other '%' sequence is an error, and so is a result longer than
 * outsize - 1. Returns the length, or -1 with *error_r (static string).
 */
long gw_ldap_filter_expand(const char *tmpl, const char *value, char *out, size_t outsize,
                           const char **error_r);

/*
 * Check a filter template as the config loader does: it must contain %u
 * at least once, use no other % sequence, and be one parenthesised,
 * balanced filter (escaped parentheses are not counted). Returns 0 or -1
 * with *error_r.
 */
int gw_ldap_filter_template_check(const char *tmpl, const char **error_r);

/* A syntactically valid, non-empty LDAPv3 DN (RFC 4514). */
bool gw_ldap_dn_valid(const char *dn);

/*
 * Whether `dn` is `base` or lies below it, comparing normalised DNs
 * (attribute types and values compared case-insensitively, as for the
 * usual directory-string attributes). An empty base contains every DN.
 * False when either does not parse.
 */
bool gw_ldap_dn_under(const char *dn, const char *base);

/*
 * An account-disabled attribute value: FALSE, false, 0, no, off (any case)
 * mean enabled; anything else present means disabled (so that e.g.
 * pwdAccountLockedTime can be mapped too).
 */
bool gw_ldap_value_disables(const char *value, size_t len);

/* A URI this build connects to: ldap://host[:port] or ldaps://host[:port],
   without DN, attributes or extensions. Sets host (malloc'ed), port and
   whether TLS is implicit. Returns 0 or -1 with *error_r. */
int gw_ldap_uri_parse(const char *uri, char **host_r, unsigned *port_r, bool *ldaps_r,
                      const char **error_r);

#endif
