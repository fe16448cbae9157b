/*
 * SASL PLAIN (RFC 4616), for every plugin that takes or sends a login:
 * decoding a client's message and encoding one for a backend. Pure: no I/O,
 * no logging, no allocation, no state -- the protocol parsers call the
 * decoder and are unit-tested and fuzzed with it (core/sasl.c, which needs
 * gw_base64_encode() from core/mem.c).
 *
 * Included by gateway/gateway.h; a pure parser may include it alone.
 */
#ifndef GW_SASL_H
#define GW_SASL_H

#include <stddef.h>

/* RFC 4616 requires accepting 255 octets for each identity; passwords may
   be longer (passphrases), up to this bound. */
#define GW_SASL_PLAIN_ID_MAX 255
#define GW_SASL_PLAIN_PASSWD_MAX 1024

/* A run of bytes inside the caller's message (not NUL-terminated). */
struct gw_sasl_field {
    const char *ptr;
    size_t len;
};

/* The three fields of a PLAIN message. */
struct gw_sasl_plain {
    struct gw_sasl_field authzid;   /* empty, or equal to authcid */
    struct gw_sasl_field authcid;
    struct gw_sasl_field passwd;
};

/* Why a message was refused, in the order the checks are made: a plugin
   maps these to its protocol's own error texts. */
enum gw_sasl_plain_result {
    GW_SASL_PLAIN_OK = 0,
    GW_SASL_PLAIN_MALFORMED,   /* not exactly two NULs */
    GW_SASL_PLAIN_NO_AUTHCID,  /* empty authcid */
    GW_SASL_PLAIN_NO_PASSWD,   /* empty passwd */
    GW_SASL_PLAIN_TOO_LONG,    /* an identity over GW_SASL_PLAIN_ID_MAX or the
                                  password over GW_SASL_PLAIN_PASSWD_MAX octets */
    GW_SASL_PLAIN_BAD_CHARS,   /* a control character (C0, DEL) in an identity,
                                  or CR or LF in the password */
    GW_SASL_PLAIN_AUTHZID,     /* authzid neither empty nor equal to authcid */
};

/*
 * Decode a PLAIN message, already base64-decoded:
 * [authzid] NUL authcid NUL passwd. Exactly two NULs; authcid and passwd
 * non-empty; identities up to GW_SASL_PLAIN_ID_MAX, passwd up to
 * GW_SASL_PLAIN_PASSWD_MAX octets. An authzid that is non-empty and differs
 * from authcid is refused: the gateway does not act on behalf of other
 * users. Control characters are refused in the identities, CR and LF in the
 * password (it is relayed to backends inside command lines); spaces and
 * 8-bit octets are fine (UTF-8).
 *
 * `msg` may be NULL when `len` is 0. On GW_SASL_PLAIN_OK, *out holds
 * fields pointing into `msg` (the caller wipes `msg` when done); otherwise
 * *out is zeroed. *error_r is set to a static English text for every result
 * other than OK (NULL on OK), for callers without texts of their own.
 */
enum gw_sasl_plain_result gw_sasl_plain_decode(const unsigned char *msg, size_t len,
                                               struct gw_sasl_plain *out,
                                               const char **error_r);

/* The buffer size gw_sasl_plain_encode() needs for fields of these lengths:
   the base64 text and its terminating NUL. */
size_t gw_sasl_plain_encoded_size(size_t authzid_len, size_t authcid_len, size_t passwd_len);

/*
 * Encode authzid NUL authcid NUL passwd in base64 into `out` and
 * NUL-terminate it. `authzid` may be NULL (empty). No limits are applied:
 * the fields are C strings the caller has already checked. The raw message
 * is only ever built in a small stack buffer, wiped before returning.
 * Returns the length written (without the NUL), or -1 when `outsize` is
 * smaller than gw_sasl_plain_encoded_size(); nothing of the message is left
 * in `out` then. The caller wipes `out` once it is sent: it holds the
 * password.
 */
long gw_sasl_plain_encode(const char *authzid, const char *authcid, const char *passwd,
                          char *out, size_t outsize);

#endif
