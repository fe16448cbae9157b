/*
 * SASL PLAIN (RFC 4616) decoding and encoding; see gateway/sasl.h.
 * Pure: the protocol parsers call it and are fuzzed with it, so this file
 * needs nothing of the core but gw_base64_encode() (core/mem.c).
 */
#include <openssl/crypto.h>
#include <stdbool.h>
#include <string.h>

#include "gateway/gateway.h"
#include "gateway/sasl.h"

/* Raw octets encoded at a time: a multiple of 3, so that the base64 of
   consecutive chunks is the base64 of the whole message. */
#define GW_SASL_ENCODE_CHUNK 96

static const char *const gw_sasl_plain_errors[] = {
    [GW_SASL_PLAIN_OK] = NULL,
    [GW_SASL_PLAIN_MALFORMED] = "Malformed PLAIN message.",
    [GW_SASL_PLAIN_NO_AUTHCID] = "Missing user name.",
    [GW_SASL_PLAIN_NO_PASSWD] = "Missing password.",
    [GW_SASL_PLAIN_TOO_LONG] = "User name or password too long.",
    [GW_SASL_PLAIN_BAD_CHARS] = "Invalid characters in PLAIN message.",
    [GW_SASL_PLAIN_AUTHZID] = "Authorization identity must be empty or the user name.",
};

static bool gw_sasl_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool gw_sasl_has_ctl(struct gw_sasl_field f)
{
    for (size_t i = 0; i < f.len; i++) {
        if (gw_sasl_is_ctl((unsigned char)f.ptr[i]))
            return true;
    }
    return false;
}

static bool gw_sasl_has_crlf(struct gw_sasl_field f)
{
    return memchr(f.ptr, '\r', f.len) != NULL || memchr(f.ptr, '\n', f.len) != NULL;
}

/* The checks, in the order the result enum lists them; fields of *out may be
   set on failure (the caller clears them). */
static enum gw_sasl_plain_result gw_sasl_plain_check(const unsigned char *msg, size_t len,
                                                     struct gw_sasl_plain *out)
{
    const char *s = (const char *)msg;
    const char *nul1, *nul2;

    nul1 = len > 0 ? memchr(s, '\0', len) : NULL;
    nul2 = nul1 != NULL ? memchr(nul1 + 1, '\0', len - (size_t)(nul1 + 1 - s)) : NULL;
    if (nul1 == NULL || nul2 == NULL ||
        memchr(nul2 + 1, '\0', len - (size_t)(nul2 + 1 - s)) != NULL)
        return GW_SASL_PLAIN_MALFORMED;
    out->authzid.ptr = s;
    out->authzid.len = (size_t)(nul1 - s);
    out->authcid.ptr = nul1 + 1;
    out->authcid.len = (size_t)(nul2 - (nul1 + 1));
    out->passwd.ptr = nul2 + 1;
    out->passwd.len = len - (size_t)(nul2 + 1 - s);

    if (out->authcid.len == 0)
        return GW_SASL_PLAIN_NO_AUTHCID;
    if (out->passwd.len == 0)
        return GW_SASL_PLAIN_NO_PASSWD;
    if (out->authzid.len > GW_SASL_PLAIN_ID_MAX || out->authcid.len > GW_SASL_PLAIN_ID_MAX ||
        out->passwd.len > GW_SASL_PLAIN_PASSWD_MAX)
        return GW_SASL_PLAIN_TOO_LONG;
    if (gw_sasl_has_ctl(out->authzid) || gw_sasl_has_ctl(out->authcid) ||
        gw_sasl_has_crlf(out->passwd))
        return GW_SASL_PLAIN_BAD_CHARS;
    if (out->authzid.len > 0 &&
        (out->authzid.len != out->authcid.len ||
         memcmp(out->authzid.ptr, out->authcid.ptr, out->authcid.len) != 0))
        return GW_SASL_PLAIN_AUTHZID;
    return GW_SASL_PLAIN_OK;
}

enum gw_sasl_plain_result gw_sasl_plain_decode(const unsigned char *msg, size_t len,
                                               struct gw_sasl_plain *out,
                                               const char **error_r)
{
    enum gw_sasl_plain_result res;

    memset(out, 0, sizeof(*out));
    res = gw_sasl_plain_check(msg, len, out);
    if (res != GW_SASL_PLAIN_OK)
        memset(out, 0, sizeof(*out));
    *error_r = gw_sasl_plain_errors[res];
    return res;
}

size_t gw_sasl_plain_encoded_size(size_t authzid_len, size_t authcid_len, size_t passwd_len)
{
    size_t raw = authzid_len + 1 + authcid_len + 1 + passwd_len;

    return 4 * ((raw + 2) / 3) + 1;
}

/* The raw message on its way to base64: octets collect in `chunk`, which is
   encoded to out[pos...] whenever it is full, and once more at the end. */
struct gw_sasl_encoder {
    unsigned char chunk[GW_SASL_ENCODE_CHUNK];
    size_t fill;
    char *out;
    size_t outsize, pos;
};

/* Encode what the chunk holds. Returns -1 when `out` is too small (not
   reached after the caller's size check). */
static int gw_sasl_flush(struct gw_sasl_encoder *e)
{
    long n;

    if (e->fill == 0)
        return 0;
    n = gw_base64_encode(e->chunk, e->fill, e->out + e->pos, e->outsize - e->pos);
    e->fill = 0;
    if (n < 0)
        return -1;
    e->pos += (size_t)n;
    return 0;
}

/* Append raw octets, encoding each chunk as it fills. */
static int gw_sasl_put(struct gw_sasl_encoder *e, const char *data, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        e->chunk[e->fill++] = (unsigned char)data[i];
        if (e->fill == sizeof(e->chunk) && gw_sasl_flush(e) < 0)
            return -1;
    }
    return 0;
}

long gw_sasl_plain_encode(const char *authzid, const char *authcid, const char *passwd,
                          char *out, size_t outsize)
{
    struct gw_sasl_encoder e;
    size_t zlen = authzid != NULL ? strlen(authzid) : 0;
    size_t clen = strlen(authcid), plen = strlen(passwd);
    int ret;

    if (outsize < gw_sasl_plain_encoded_size(zlen, clen, plen))
        return -1;
    e.fill = 0;
    e.out = out;
    e.outsize = outsize;
    e.pos = 0;
    ret = gw_sasl_put(&e, authzid != NULL ? authzid : "", zlen);
    if (ret == 0)
        ret = gw_sasl_put(&e, "", 1);
    if (ret == 0)
        ret = gw_sasl_put(&e, authcid, clen);
    if (ret == 0)
        ret = gw_sasl_put(&e, "", 1);
    if (ret == 0)
        ret = gw_sasl_put(&e, passwd, plen);
    if (ret == 0)
        ret = gw_sasl_flush(&e);
    OPENSSL_cleanse(e.chunk, sizeof(e.chunk));
    if (ret < 0) {
        OPENSSL_cleanse(out, outsize);
        return -1;
    }
    out[e.pos] = '\0';
    return (long)e.pos;
}
