/* Pure LDAP helpers: see ldap_util.h. */
#include <sys/time.h>
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ldap_util.h"

long gw_ldap_escape_value(const char *value, size_t len, char *out, size_t outsize)
{
    static const char hex[] = "0123456789abcdef";
    size_t n = 0;

    if (outsize == 0)
        return -1;
    for (size_t i = 0; i < len; i++) {
        unsigned char ch = (unsigned char)value[i];
        bool esc = ch == '*' || ch == '(' || ch == ')' || ch == '\\' || ch < 0x20 ||
                   ch >= 0x7f;

        if (n + (esc ? 3 : 1) >= outsize) {
            out[0] = '\0';
            return -1;
        }
        if (esc) {
            out[n++] = '\\';
            out[n++] = hex[ch >> 4];
            out[n++] = hex[ch & 0xf];
        } else {
            out[n++] = (char)ch;
        }
    }
    out[n] = '\0';
    return (long)n;
}

long gw_ldap_filter_expand(const char *tmpl, const char *value, char *out, size_t outsize,
                           const char **error_r)
{
    size_t n = 0;

    if (outsize == 0) {
        *error_r = "filter too long";
        return -1;
    }
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (*p != '%') {
            if (n + 1 >= outsize)
                goto too_long;
            out[n++] = *p;
            continue;
        }
        p++;
        if (*p == '%') {
            if (n + 1 >= outsize)
                goto too_long;
            out[n++] = '%';
        } else if (*p == 'u') {
            long m = gw_ldap_escape_value(value, strlen(value), out + n, outsize - n);

            if (m < 0)
                goto too_long;
            n += (size_t)m;
        } else {
            out[0] = '\0';
            *error_r = "unknown % sequence in filter (only %u and %% are known)";
            return -1;
        }
    }
    out[n] = '\0';
    return (long)n;
too_long:
    out[0] = '\0';
    *error_r = "filter too long";
    return -1;
}

int gw_ldap_filter_template_check(const char *tmpl, const char **error_r)
{
    int depth = 0;
    bool has_u = false, closed = false;
    size_t len = strlen(tmpl);

    if (len == 0 || tmpl[0] != '(' || tmpl[len - 1] != ')') {
        *error_r = "must be one filter in parentheses, e.g. (uid=%u)";
        return -1;
    }
    for (const char *p = tmpl; *p != '\0'; p++) {
        if (closed) {
            *error_r = "text after the end of the filter";
            return -1;
        }
        switch (*p) {
        case '\\':
            /* an escaped octet \XX in the template: never a parenthesis */
            if (p[1] == '\0' || p[2] == '\0') {
                *error_r = "incomplete \\XX escape";
                return -1;
            }
            p += 2;
            break;
        case '(':
            depth++;
            break;
        case ')':
            if (--depth < 0) {
                *error_r = "unbalanced parentheses";
                return -1;
            }
            closed = depth == 0;
            break;
        case '%':
            if (p[1] == 'u') {
                has_u = true;
            } else if (p[1] != '%') {
                *error_r = "unknown % sequence (only %u and %% are known)";
                return -1;
            }
            p++;
            break;
        default:
            break;
        }
    }
    if (depth != 0) {
        *error_r = "unbalanced parentheses";
        return -1;
    }
    if (!has_u) {
        *error_r = "must contain %u (the login name)";
        return -1;
    }
    return 0;
}

static LDAPDN parse_dn(const char *dn)
{
    LDAPDN d = NULL;

    if (ldap_str2dn(dn, &d, LDAP_DN_FORMAT_LDAPV3) != LDAP_SUCCESS)
        return NULL;
    return d;
}

static size_t dn_len(LDAPDN d)
{
    size_t n = 0;

    while (d != NULL && d[n] != NULL)
        n++;
    return n;
}

static bool bv_equal_nocase(const struct berval *a, const struct berval *b)
{
    return a->bv_len == b->bv_len && strncasecmp(a->bv_val, b->bv_val, a->bv_len) == 0;
}

static bool rdn_equal(LDAPRDN a, LDAPRDN b)
{
    size_t i;

    /* Multi-valued RDNs are compared in written order: good enough for
       deciding containment, never more permissive. */
    for (i = 0; a[i] != NULL && b[i] != NULL; i++) {
        if (!bv_equal_nocase(&a[i]->la_attr, &b[i]->la_attr) ||
            !bv_equal_nocase(&a[i]->la_value, &b[i]->la_value))
            return false;
    }
    return a[i] == NULL && b[i] == NULL;
}

bool gw_ldap_dn_valid(const char *dn)
{
    LDAPDN d;
    bool ok;

    if (dn == NULL || dn[0] == '\0')
        return false;
    d = parse_dn(dn);
    ok = d != NULL && dn_len(d) > 0;
    ldap_dnfree(d);
    return ok;
}

bool gw_ldap_dn_under(const char *dn, const char *base)
{
    LDAPDN d, b = NULL;
    size_t nd, nb;
    bool ok = false;

    if (dn == NULL || dn[0] == '\0')
        return false;
    d = parse_dn(dn);
    if (d == NULL)
        return false;
    if (base != NULL && base[0] != '\0') {
        b = parse_dn(base);
        if (b == NULL)
            goto out;
    }
    nd = dn_len(d);
    nb = dn_len(b);
    if (nd == 0 || nb > nd)
        goto out;
    ok = true;
    for (size_t i = 0; i < nb && ok; i++)
        ok = rdn_equal(d[nd - 1 - i], b[nb - 1 - i]);
out:
    ldap_dnfree(d);
    ldap_dnfree(b);
    return ok;
}

bool gw_ldap_value_disables(const char *value, size_t len)
{
    static const char *const no[] = {"FALSE", "0", "no", "off", NULL};

    for (size_t i = 0; no[i] != NULL; i++) {
        if (strlen(no[i]) == len && strncasecmp(value, no[i], len) == 0)
            return false;
    }
    return true;
}

int gw_ldap_uri_parse(const char *uri, char **host_r, unsigned *port_r, bool *ldaps_r,
                      const char **error_r)
{
    LDAPURLDesc *u = NULL;
    int ok = -1;

    *host_r = NULL;
    if (ldap_url_parse(uri, &u) != LDAP_URL_SUCCESS) {
        *error_r = "not an LDAP URL (expected ldap://host[:port] or ldaps://host[:port])";
        return -1;
    }
    if (strcasecmp(u->lud_scheme, "ldap") != 0 && strcasecmp(u->lud_scheme, "ldaps") != 0) {
        *error_r = "scheme must be ldap:// or ldaps:// (ldapi:// is not supported)";
    } else if (u->lud_host == NULL || u->lud_host[0] == '\0') {
        *error_r = "must name a host";
    } else if ((u->lud_dn != NULL && u->lud_dn[0] != '\0') || u->lud_attrs != NULL ||
               u->lud_filter != NULL || u->lud_exts != NULL) {
        *error_r = "must be just scheme://host[:port] (put the search base in base:)";
    } else {
        *ldaps_r = strcasecmp(u->lud_scheme, "ldaps") == 0;
        *port_r = u->lud_port > 0 ? (unsigned)u->lud_port : (*ldaps_r ? 636u : 389u);
        *host_r = strdup(u->lud_host);
        ok = *host_r != NULL ? 0 : -1;
        if (ok < 0)
            *error_r = "out of memory";
    }
    ldap_free_urldesc(u);
    return ok;
}
