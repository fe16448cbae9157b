/*
 * RFC 4533 control and message codecs, and the copies attribute parser,
 * for the LDAP locator source (see ldap_sync.h). Pure functions.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "ldap_sync.h"

#define UUID_LEN 16

static BerElement *reader(const struct berval *value)
{
    return ber_init((struct berval *)value);
}

static int flatten(BerElement *ber, struct berval *out)
{
    int rc = ber_flatten2(ber, out, 1);

    ber_free(ber, 1);
    return rc == 0 ? 0 : -1;
}

int gw_sync_request_encode(int mode, const struct berval *cookie, bool reload_hint,
                           struct berval *out)
{
    BerElement *ber = ber_alloc_t(LBER_USE_DER);

    out->bv_val = NULL;
    out->bv_len = 0;
    if (ber == NULL)
        return -1;
    if (ber_printf(ber, "{e", (ber_int_t)mode) < 0 ||
        (cookie != NULL && cookie->bv_len > 0 && ber_printf(ber, "O", cookie) < 0) ||
        (reload_hint && ber_printf(ber, "b", (ber_int_t)1) < 0) || ber_printf(ber, "N}") < 0) {
        ber_free(ber, 1);
        return -1;
    }
    return flatten(ber, out);
}

static int gw_sync_request_decode_ber(BerElement *ber, int *mode_r, struct berval *cookie_r,
                           bool *reload_hint_r)
{
    ber_int_t mode, hint = 0;
    ber_len_t len;

    cookie_r->bv_val = NULL;
    cookie_r->bv_len = 0;
    *reload_hint_r = false;
    if (ber_scanf(ber, "{e", &mode) == LBER_ERROR)
        return -1;
    if (ber_peek_tag(ber, &len) == LBER_OCTETSTRING && ber_scanf(ber, "o", cookie_r) == LBER_ERROR)
        return -1;
    if (ber_peek_tag(ber, &len) == LBER_BOOLEAN && ber_scanf(ber, "b", &hint) == LBER_ERROR)
        goto fail;
    *mode_r = (int)mode;
    *reload_hint_r = hint != 0;
    return 0;
fail:
    ber_memfree(cookie_r->bv_val);
    cookie_r->bv_val = NULL;
    cookie_r->bv_len = 0;
    return -1;
}

static int gw_sync_state_decode_ber(BerElement *ber, int *state_r, unsigned char uuid_r[16],
                         struct berval *cookie_r)
{
    ber_int_t state;
    struct berval uuid = {0, NULL};
    ber_len_t len;

    cookie_r->bv_val = NULL;
    cookie_r->bv_len = 0;
    if (ber_scanf(ber, "{em", &state, &uuid) == LBER_ERROR || uuid.bv_len != UUID_LEN)
        return -1;
    if (state < LDAP_SYNC_PRESENT || state > LDAP_SYNC_DELETE)
        return -1;
    memcpy(uuid_r, uuid.bv_val, UUID_LEN);
    if (ber_peek_tag(ber, &len) == LBER_OCTETSTRING && ber_scanf(ber, "o", cookie_r) == LBER_ERROR)
        return -1;
    *state_r = (int)state;
    return 0;
}

int gw_sync_state_encode(int state, const unsigned char uuid[16], const struct berval *cookie,
                         struct berval *out)
{
    BerElement *ber = ber_alloc_t(LBER_USE_DER);
    struct berval u = {UUID_LEN, (char *)uuid};

    out->bv_val = NULL;
    out->bv_len = 0;
    if (ber == NULL)
        return -1;
    if (ber_printf(ber, "{eO", (ber_int_t)state, &u) < 0 ||
        (cookie != NULL && cookie->bv_len > 0 && ber_printf(ber, "O", cookie) < 0) ||
        ber_printf(ber, "N}") < 0) {
        ber_free(ber, 1);
        return -1;
    }
    return flatten(ber, out);
}

void gw_sync_info_free(struct gw_sync_info *info)
{
    ber_memfree(info->cookie.bv_val);
    info->cookie.bv_val = NULL;
    info->cookie.bv_len = 0;
    for (size_t i = 0; i < info->nuuids; i++)
        ber_memfree(info->uuids[i].bv_val);
    ber_memfree(info->uuids);
    info->uuids = NULL;
    info->nuuids = 0;
}

static int gw_sync_info_decode_ber(BerElement *ber, struct gw_sync_info *info)
{
    ber_len_t len;
    ber_tag_t tag = ber_peek_tag(ber, &len);
    ber_int_t b;

    memset(info, 0, sizeof(*info));
    switch (tag) {
    case LDAP_TAG_SYNC_NEW_COOKIE:
        info->kind = GW_SYNC_NEW_COOKIE;
        if (ber_scanf(ber, "o", &info->cookie) == LBER_ERROR)
            goto fail;
        return 0;
    case LDAP_TAG_SYNC_REFRESH_DELETE:
    case LDAP_TAG_SYNC_REFRESH_PRESENT:
        info->kind = tag == LDAP_TAG_SYNC_REFRESH_DELETE ? GW_SYNC_REFRESH_DELETE
                                                          : GW_SYNC_REFRESH_PRESENT;
        info->refresh_done = true;
        if (ber_scanf(ber, "{") == LBER_ERROR)
            goto fail;
        if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE &&
            ber_scanf(ber, "o", &info->cookie) == LBER_ERROR)
            goto fail;
        if (ber_peek_tag(ber, &len) == LDAP_TAG_REFRESHDONE) {
            if (ber_scanf(ber, "b", &b) == LBER_ERROR)
                goto fail;
            info->refresh_done = b != 0;
        }
        return 0;
    case LDAP_TAG_SYNC_ID_SET: {
        BerVarray set = NULL;

        info->kind = GW_SYNC_ID_SET;
        if (ber_scanf(ber, "{") == LBER_ERROR)
            goto fail;
        if (ber_peek_tag(ber, &len) == LDAP_TAG_SYNC_COOKIE &&
            ber_scanf(ber, "o", &info->cookie) == LBER_ERROR)
            goto fail;
        if (ber_peek_tag(ber, &len) == LDAP_TAG_REFRESHDELETES) {
            if (ber_scanf(ber, "b", &b) == LBER_ERROR)
                goto fail;
            info->refresh_deletes = b != 0;
        }
        if (ber_scanf(ber, "[W]", &set) == LBER_ERROR)
            goto fail;
        info->uuids = set;
        while (set != NULL && set[info->nuuids].bv_val != NULL)
            info->nuuids++;
        for (size_t i = 0; i < info->nuuids; i++)
            if (set[i].bv_len != UUID_LEN)
                goto fail;
        return 0;
    }
    default:
        return -1;
    }
fail:
    gw_sync_info_free(info);
    return -1;
}

int gw_sync_info_encode(const struct gw_sync_info *info, struct berval *out)
{
    BerElement *ber = ber_alloc_t(LBER_USE_DER);
    bool cookie = info->cookie.bv_len > 0;
    int rc = 0;

    out->bv_val = NULL;
    out->bv_len = 0;
    if (ber == NULL)
        return -1;
    switch (info->kind) {
    case GW_SYNC_NEW_COOKIE:
        rc = ber_printf(ber, "tO", LDAP_TAG_SYNC_NEW_COOKIE, &info->cookie);
        break;
    case GW_SYNC_REFRESH_DELETE:
    case GW_SYNC_REFRESH_PRESENT:
        rc = ber_printf(ber, "t{", info->kind == GW_SYNC_REFRESH_DELETE
                                       ? LDAP_TAG_SYNC_REFRESH_DELETE
                                       : LDAP_TAG_SYNC_REFRESH_PRESENT);
        if (rc >= 0 && cookie)
            rc = ber_printf(ber, "O", &info->cookie);
        if (rc >= 0 && !info->refresh_done)
            rc = ber_printf(ber, "b", (ber_int_t)0);
        if (rc >= 0)
            rc = ber_printf(ber, "N}");
        break;
    case GW_SYNC_ID_SET: {
        struct berval *set = calloc(info->nuuids + 1, sizeof(*set));

        if (set == NULL) {
            rc = -1;
            break;
        }
        for (size_t i = 0; i < info->nuuids; i++)
            set[i] = info->uuids[i];
        rc = ber_printf(ber, "t{", LDAP_TAG_SYNC_ID_SET);
        if (rc >= 0 && cookie)
            rc = ber_printf(ber, "O", &info->cookie);
        if (rc >= 0 && info->refresh_deletes)
            rc = ber_printf(ber, "b", (ber_int_t)1);
        if (rc >= 0)
            rc = ber_printf(ber, "[W]N}", set);
        free(set);
        break;
    }
    }
    if (rc < 0) {
        ber_free(ber, 1);
        return -1;
    }
    return flatten(ber, out);
}

static int gw_sync_done_decode_ber(BerElement *ber, struct berval *cookie_r,
                        bool *refresh_deletes_r)
{
    ber_len_t len;
    ber_int_t b = 0;

    cookie_r->bv_val = NULL;
    cookie_r->bv_len = 0;
    *refresh_deletes_r = false;
    if (ber_scanf(ber, "{") == LBER_ERROR)
        return -1;
    if (ber_peek_tag(ber, &len) == LBER_OCTETSTRING && ber_scanf(ber, "o", cookie_r) == LBER_ERROR)
        return -1;
    if (ber_peek_tag(ber, &len) == LBER_BOOLEAN && ber_scanf(ber, "b", &b) == LBER_ERROR) {
        ber_memfree(cookie_r->bv_val);
        cookie_r->bv_val = NULL;
        cookie_r->bv_len = 0;
        return -1;
    }
    *refresh_deletes_r = b != 0;
    return 0;
}

/* ---- copies ------------------------------------------------------------ */

#define COPIES_MAX 64
#define SERVER_NAME_MAX 63

struct copy {
    unsigned long pref;
    size_t seq;
    char name[SERVER_NAME_MAX + 1];
};

static int copy_cmp(const void *a, const void *b)
{
    const struct copy *x = a, *y = b;

    if (x->pref != y->pref)
        return x->pref < y->pref ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static bool name_ok(const char *s, size_t n)
{
    if (n == 0 || n > SERVER_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!(isalnum((unsigned char)s[i]) || s[i] == '-' || s[i] == '_' || s[i] == '.'))
            return false;
    return true;
}

static int add_copy(struct copy *t, size_t *n, unsigned long pref, const char *s, size_t len,
                    const char **error_r)
{
    while (len > 0 && isspace((unsigned char)*s)) {
        s++;
        len--;
    }
    while (len > 0 && isspace((unsigned char)s[len - 1]))
        len--;
    if (!name_ok(s, len)) {
        *error_r = "a copy names no valid server";
        return -1;
    }
    if (*n >= COPIES_MAX) {
        *error_r = "too many copies";
        return -1;
    }
    t[*n].pref = pref;
    t[*n].seq = *n;
    memcpy(t[*n].name, s, len);
    t[*n].name[len] = '\0';
    (*n)++;
    return 0;
}

int gw_copies_parse(const struct berval *const *vals, size_t nvals, char ***copies_r,
                    size_t *n_r, const char **error_r)
{
    struct copy t[COPIES_MAX];
    size_t n = 0, out = 0;
    char **copies;

    *copies_r = NULL;
    *n_r = 0;
    for (size_t v = 0; v < nvals; v++) {
        const char *s = vals[v]->bv_val, *end = s + vals[v]->bv_len;

        if (memchr(s, '\0', vals[v]->bv_len) != NULL) {
            *error_r = "a value contains a NUL byte";
            return -1;
        }
        while (s < end && isspace((unsigned char)*s))
            s++;
        if (s < end && isdigit((unsigned char)*s)) {
            unsigned long pref = 0;

            while (s < end && isdigit((unsigned char)*s)) {
                if (pref > 1000000) {
                    *error_r = "preference out of range";
                    return -1;
                }
                pref = pref * 10 + (unsigned long)(*s - '0');
                s++;
            }
            if (s < end && *s == ':')
                s++;
            else if (s < end && isspace((unsigned char)*s))
                s++;
            else {
                *error_r = "expected \"PREFERENCE SERVER\"";
                return -1;
            }
            if (add_copy(t, &n, pref, s, (size_t)(end - s), error_r) < 0)
                return -1;
        } else {
            /* "mbx1,mbx2": in order, after the numbered ones */
            while (s <= end) {
                const char *comma = memchr(s, ',', (size_t)(end - s));
                const char *stop = comma != NULL ? comma : end;

                if (add_copy(t, &n, ~0UL, s, (size_t)(stop - s), error_r) < 0)
                    return -1;
                s = stop + 1;
            }
        }
    }
    if (n == 0) {
        *error_r = "no copies";
        return -1;
    }
    qsort(t, n, sizeof(t[0]), copy_cmp);
    copies = calloc(n, sizeof(*copies));
    if (copies == NULL) {
        *error_r = "out of memory";
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        bool dup = false;

        for (size_t j = 0; j < out && !dup; j++)
            dup = strcmp(copies[j], t[i].name) == 0;
        if (dup)
            continue;
        copies[out] = strdup(t[i].name);
        if (copies[out] == NULL) {
            gw_copies_free(copies, out);
            *error_r = "out of memory";
            return -1;
        }
        out++;
    }
    *copies_r = copies;
    *n_r = out;
    return 0;
}

void gw_copies_free(char **copies, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(copies[i]);
    free(copies);
}

/* ---- decoders: public wrappers (ber_init copies the value) -------------- */

#define DECODE(call)                                                                           \
    do {                                                                                       \
        BerElement *ber = reader(value);                                                       \
        int rc_;                                                                               \
        if (ber == NULL)                                                                       \
            return -1;                                                                         \
        rc_ = call;                                                                            \
        ber_free(ber, 1);                                                                      \
        return rc_;                                                                            \
    } while (0)

int gw_sync_request_decode(const struct berval *value, int *mode_r, struct berval *cookie_r,
                           bool *reload_hint_r)
{
    cookie_r->bv_val = NULL;
    cookie_r->bv_len = 0;
    DECODE(gw_sync_request_decode_ber(ber, mode_r, cookie_r, reload_hint_r));
}

int gw_sync_state_decode(const struct berval *value, int *state_r, unsigned char uuid_r[16],
                         struct berval *cookie_r)
{
    cookie_r->bv_val = NULL;
    cookie_r->bv_len = 0;
    DECODE(gw_sync_state_decode_ber(ber, state_r, uuid_r, cookie_r));
}

int gw_sync_info_decode(const struct berval *value, struct gw_sync_info *info)
{
    memset(info, 0, sizeof(*info));
    DECODE(gw_sync_info_decode_ber(ber, info));
}

int gw_sync_done_decode(const struct berval *value, struct berval *cookie_r,
                        bool *refresh_deletes_r)
{
    cookie_r->bv_val = NULL;
    cookie_r->bv_len = 0;
    DECODE(gw_sync_done_decode_ber(ber, cookie_r, refresh_deletes_r));
}
