/*
 * Unit tests of the core's pure SASL PLAIN helpers and log sanitizing
 * (core/sasl.c, core/log.c; gateway/sasl.h, gateway/gateway.h).
 *
 * Decoding is a table of messages and the expected result and fields; the
 * limits are probed at their edges. Encoding is checked against known
 * base64 and, across the encoder's chunk boundaries, against a one-shot
 * gw_base64_encode() of the same message; every decodable message must
 * survive encode -> base64 decode -> decode unchanged.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "gateway/gateway.h"
#include "gateway/sasl.h"

#define L(s) s, sizeof(s) - 1   /* literal with its length, NULs included */

static void assert_field(struct gw_sasl_field f, const char *want)
{
    assert_int_equal(f.len, strlen(want));
    if (f.len > 0)
        assert_memory_equal(f.ptr, want, f.len);
}

/* ---- decoding ------------------------------------------------------------- */

struct decode_case {
    const char *msg;
    size_t len;
    enum gw_sasl_plain_result res;
    const char *authzid, *authcid, *passwd;   /* on GW_SASL_PLAIN_OK */
};

static const struct decode_case decode_cases[] = {
    /* well-formed */
    { L("\0alice\0secret"), GW_SASL_PLAIN_OK, "", "alice", "secret" },
    { L("alice\0alice\0pw"), GW_SASL_PLAIN_OK, "alice", "alice", "pw" },
    { L("\0ali ce\0pw"), GW_SASL_PLAIN_OK, "", "ali ce", "pw" },
    { L("\0alice\0p w\xc3\xa9"), GW_SASL_PLAIN_OK, "", "alice", "p w\xc3\xa9" },
    { L("\0\xc3\xa4lice\0pw"), GW_SASL_PLAIN_OK, "", "\xc3\xa4lice", "pw" },
    { L("\0alice\0p\tw\x7f"), GW_SASL_PLAIN_OK, "", "alice", "p\tw\x7f" },
    /* not exactly two NULs */
    { L(""), GW_SASL_PLAIN_MALFORMED, NULL, NULL, NULL },
    { L("\0"), GW_SASL_PLAIN_MALFORMED, NULL, NULL, NULL },
    { L("alice"), GW_SASL_PLAIN_MALFORMED, NULL, NULL, NULL },
    { L("\0alice"), GW_SASL_PLAIN_MALFORMED, NULL, NULL, NULL },
    { L("alice\0secret"), GW_SASL_PLAIN_MALFORMED, NULL, NULL, NULL },
    { L("\0a\0b\0c"), GW_SASL_PLAIN_MALFORMED, NULL, NULL, NULL },
    { L("\0alice\0sec\0ret"), GW_SASL_PLAIN_MALFORMED, NULL, NULL, NULL },
    { L("\0alice\0secret\0"), GW_SASL_PLAIN_MALFORMED, NULL, NULL, NULL },
    { L("\0\0\0"), GW_SASL_PLAIN_MALFORMED, NULL, NULL, NULL },
    /* empty fields */
    { L("\0\0"), GW_SASL_PLAIN_NO_AUTHCID, NULL, NULL, NULL },
    { L("\0\0secret"), GW_SASL_PLAIN_NO_AUTHCID, NULL, NULL, NULL },
    { L("alice\0\0secret"), GW_SASL_PLAIN_NO_AUTHCID, NULL, NULL, NULL },
    { L("\0alice\0"), GW_SASL_PLAIN_NO_PASSWD, NULL, NULL, NULL },
    /* characters */
    { L("\0ali\rce\0pw"), GW_SASL_PLAIN_BAD_CHARS, NULL, NULL, NULL },
    { L("\0alice\x1b\0pw"), GW_SASL_PLAIN_BAD_CHARS, NULL, NULL, NULL },
    { L("\0alice\x7f\0pw"), GW_SASL_PLAIN_BAD_CHARS, NULL, NULL, NULL },
    { L("x\ny\0x\ny\0pw"), GW_SASL_PLAIN_BAD_CHARS, NULL, NULL, NULL },
    { L("a\tb\0alice\0pw"), GW_SASL_PLAIN_BAD_CHARS, NULL, NULL, NULL },
    { L("\0alice\0p\nw"), GW_SASL_PLAIN_BAD_CHARS, NULL, NULL, NULL },
    { L("\0alice\0pw\r\nDELE 1"), GW_SASL_PLAIN_BAD_CHARS, NULL, NULL, NULL },
    { L("\0alice\0pw\n"), GW_SASL_PLAIN_BAD_CHARS, NULL, NULL, NULL },
    /* acting for someone else */
    { L("bob\0alice\0secret"), GW_SASL_PLAIN_AUTHZID, NULL, NULL, NULL },
    { L("Alice\0alice\0secret"), GW_SASL_PLAIN_AUTHZID, NULL, NULL, NULL },
    { L("alic\0alice\0secret"), GW_SASL_PLAIN_AUTHZID, NULL, NULL, NULL },
    { L("alicee\0alice\0secret"), GW_SASL_PLAIN_AUTHZID, NULL, NULL, NULL },
};

static void test_decode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        const struct decode_case *c = &decode_cases[i];
        struct gw_sasl_plain plain;
        const char *error = "unset";
        enum gw_sasl_plain_result res;

        print_message("decode case %zu\n", i);
        res = gw_sasl_plain_decode((const unsigned char *)c->msg, c->len, &plain, &error);
        assert_int_equal(res, c->res);
        if (res != GW_SASL_PLAIN_OK) {
            assert_non_null(error);
            /* Nothing of a refused message is handed out. */
            assert_null(plain.authzid.ptr);
            assert_null(plain.authcid.ptr);
            assert_null(plain.passwd.ptr);
            assert_int_equal(plain.authzid.len + plain.authcid.len + plain.passwd.len, 0);
            continue;
        }
        assert_null(error);
        assert_field(plain.authzid, c->authzid);
        assert_field(plain.authcid, c->authcid);
        assert_field(plain.passwd, c->passwd);
        /* The fields point into the message. */
        assert_true(plain.passwd.ptr >= c->msg && plain.passwd.ptr + plain.passwd.len <=
                                                       c->msg + c->len);
    }
}

static void test_decode_empty_null(void **state)
{
    struct gw_sasl_plain plain;
    const char *error;

    (void)state;
    assert_int_equal(gw_sasl_plain_decode(NULL, 0, &plain, &error), GW_SASL_PLAIN_MALFORMED);
    assert_non_null(error);
}

/* Each limit accepts its bound and refuses one octet more. */
struct limit_case {
    size_t zlen, clen, plen;
    enum gw_sasl_plain_result res;
};

static const struct limit_case limit_cases[] = {
    { 0, GW_SASL_PLAIN_ID_MAX, 2, GW_SASL_PLAIN_OK },
    { 0, GW_SASL_PLAIN_ID_MAX + 1, 2, GW_SASL_PLAIN_TOO_LONG },
    { GW_SASL_PLAIN_ID_MAX, GW_SASL_PLAIN_ID_MAX, 2, GW_SASL_PLAIN_OK },
    { GW_SASL_PLAIN_ID_MAX + 1, GW_SASL_PLAIN_ID_MAX + 1, 2, GW_SASL_PLAIN_TOO_LONG },
    { 0, 1, GW_SASL_PLAIN_PASSWD_MAX, GW_SASL_PLAIN_OK },
    { 0, 1, GW_SASL_PLAIN_PASSWD_MAX + 1, GW_SASL_PLAIN_TOO_LONG },
    { 1, 1, GW_SASL_PLAIN_PASSWD_MAX + 1, GW_SASL_PLAIN_TOO_LONG },
};

static void test_decode_limits(void **state)
{
    unsigned char buf[2 * (GW_SASL_PLAIN_ID_MAX + 1) + GW_SASL_PLAIN_PASSWD_MAX + 3];

    (void)state;
    for (size_t i = 0; i < sizeof(limit_cases) / sizeof(limit_cases[0]); i++) {
        const struct limit_case *c = &limit_cases[i];
        struct gw_sasl_plain plain;
        const char *error;
        size_t len = 0;

        print_message("limit case %zu\n", i);
        memset(buf + len, 'u', c->zlen);
        len += c->zlen;
        buf[len++] = '\0';
        memset(buf + len, 'u', c->clen);
        len += c->clen;
        buf[len++] = '\0';
        memset(buf + len, 'p', c->plen);
        len += c->plen;
        assert_int_equal(gw_sasl_plain_decode(buf, len, &plain, &error), c->res);
        if (c->res == GW_SASL_PLAIN_OK)
            assert_int_equal(plain.passwd.len, c->plen);
    }
}

static enum gw_sasl_plain_result decode(const char *msg, size_t len)
{
    struct gw_sasl_plain plain;
    const char *error;

    return gw_sasl_plain_decode((const unsigned char *)msg, len, &plain, &error);
}

/* A message that breaks several rules reports the first check's reason. */
static void test_decode_order(void **state)
{
    unsigned char buf[GW_SASL_PLAIN_ID_MAX + 16];
    struct gw_sasl_plain plain;
    const char *error;

    (void)state;
    /* too long beats bad characters and a foreign authzid */
    buf[0] = 'x';
    buf[1] = '\0';
    memset(buf + 2, '\r', GW_SASL_PLAIN_ID_MAX + 1);
    buf[GW_SASL_PLAIN_ID_MAX + 3] = '\0';
    buf[GW_SASL_PLAIN_ID_MAX + 4] = 'p';
    assert_int_equal(gw_sasl_plain_decode(buf, GW_SASL_PLAIN_ID_MAX + 5, &plain, &error),
                     GW_SASL_PLAIN_TOO_LONG);
    /* empty authcid beats empty password and bad characters */
    assert_int_equal(decode(L("\r\0\0")), GW_SASL_PLAIN_NO_AUTHCID);
    /* empty password beats bad characters and a foreign authzid */
    assert_int_equal(decode(L("b\rb\0alice\0")), GW_SASL_PLAIN_NO_PASSWD);
    /* bad characters beat a foreign authzid */
    assert_int_equal(decode(L("bob\0al\nice\0pw")), GW_SASL_PLAIN_BAD_CHARS);
}

/* ---- encoding ------------------------------------------------------------- */

struct encode_case {
    const char *authzid, *authcid, *passwd;
    const char *b64;
};

static const struct encode_case encode_cases[] = {
    { NULL, "alice", "secret", "AGFsaWNlAHNlY3JldA==" },
    { "", "alice", "secret", "AGFsaWNlAHNlY3JldA==" },
    { "alice", "alice", "pw", "YWxpY2UAYWxpY2UAcHc=" },
    { NULL, "a", "b", "AGEAYg==" },
};

static void test_encode_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(encode_cases) / sizeof(encode_cases[0]); i++) {
        const struct encode_case *c = &encode_cases[i];
        size_t zlen = c->authzid != NULL ? strlen(c->authzid) : 0;
        size_t size = gw_sasl_plain_encoded_size(zlen, strlen(c->authcid), strlen(c->passwd));
        char out[64];

        print_message("encode case %zu\n", i);
        assert_int_equal(size, strlen(c->b64) + 1);
        assert_int_equal(gw_sasl_plain_encode(c->authzid, c->authcid, c->passwd, out, size),
                         (long)strlen(c->b64));
        assert_string_equal(out, c->b64);
        /* One octet short: refused, nothing written. */
        memset(out, 'X', sizeof(out));
        assert_int_equal(gw_sasl_plain_encode(c->authzid, c->authcid, c->passwd, out, size - 1),
                         -1);
        for (size_t j = 0; j < sizeof(out); j++)
            assert_int_equal(out[j], 'X');
    }
}

/* Build authzid NUL authcid NUL passwd of the given lengths. */
static size_t raw_message(unsigned char *raw, char *z, size_t zlen, char *c, size_t clen, char *p,
                          size_t plen)
{
    size_t len = 0;

    memset(z, 'z', zlen);
    z[zlen] = '\0';
    memset(c, 'c', clen);
    c[clen] = '\0';
    for (size_t i = 0; i < plen; i++)
        p[i] = (char)(0x20 + i % 0x5f);
    p[plen] = '\0';
    memcpy(raw + len, z, zlen);
    len += zlen;
    raw[len++] = '\0';
    memcpy(raw + len, c, clen);
    len += clen;
    raw[len++] = '\0';
    memcpy(raw + len, p, plen);
    return len + plen;
}

/* Every length around the encoder's chunk boundaries, and far beyond the
   decoder's limits (encoding applies none): the same text as one
   gw_base64_encode() of the whole message. */
static void test_encode_lengths(void **state)
{
    enum { MAXP = 5000 };
    static unsigned char raw[2 * 300 + MAXP + 2];
    static char z[300], c[300], p[MAXP + 1], want[sizeof(raw) * 2], got[sizeof(raw) * 2];
    static const size_t plens[] = { 1, 2, 3, 90, 91, 92, 93, 94, 95, 96, 97, 98, 186, 187, 188,
                                    189, 190, 191, 192, 193, 1024, 1025, MAXP };

    (void)state;
    for (size_t zi = 0; zi < 3; zi++) {
        for (size_t ci = 1; ci <= 257; ci += 64) {
            for (size_t pi = 0; pi < sizeof(plens) / sizeof(plens[0]); pi++) {
                size_t zlen = zi, clen = ci, plen = plens[pi];
                size_t len = raw_message(raw, z, zlen, c, clen, p, plen);
                size_t size = gw_sasl_plain_encoded_size(zlen, clen, plen);
                long n = gw_base64_encode(raw, len, want, sizeof(want));

                assert_true(n > 0);
                assert_int_equal(size, (size_t)n + 1);
                assert_int_equal(gw_sasl_plain_encode(zlen > 0 ? z : NULL, c, p, got, size), n);
                assert_string_equal(got, want);
            }
        }
    }
}

/* Whatever decodes comes back the same through encode and base64. */
static void test_round_trip(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(decode_cases) / sizeof(decode_cases[0]); i++) {
        const struct decode_case *c = &decode_cases[i];
        struct gw_sasl_plain plain, again;
        const char *error;
        char z[64], u[64], pw[64], b64[256];
        unsigned char raw[256];
        long n;

        if (c->res != GW_SASL_PLAIN_OK)
            continue;
        assert_int_equal(gw_sasl_plain_decode((const unsigned char *)c->msg, c->len, &plain,
                                              &error),
                         GW_SASL_PLAIN_OK);
        memcpy(z, plain.authzid.ptr, plain.authzid.len);
        z[plain.authzid.len] = '\0';
        memcpy(u, plain.authcid.ptr, plain.authcid.len);
        u[plain.authcid.len] = '\0';
        memcpy(pw, plain.passwd.ptr, plain.passwd.len);
        pw[plain.passwd.len] = '\0';
        n = gw_sasl_plain_encode(z, u, pw, b64, sizeof(b64));
        assert_true(n > 0);
        n = gw_base64_decode(b64, (size_t)n, raw, sizeof(raw));
        assert_int_equal(n, (long)c->len);
        assert_memory_equal(raw, c->msg, c->len);
        assert_int_equal(gw_sasl_plain_decode(raw, (size_t)n, &again, &error), GW_SASL_PLAIN_OK);
        assert_int_equal(again.passwd.len, plain.passwd.len);
    }
}

/* ---- log sanitizing ------------------------------------------------------- */

struct sanitize_case {
    const char *in;
    size_t len;
    size_t outsize;
    const char *out;   /* NUL-terminated result */
};

static const struct sanitize_case sanitize_cases[] = {
    { L("plain text"), 32, "plain text" },
    { L("a\x01" "b\r\n\x7f"), 8, "a?b???" },
    { L("a\0b\rc\x7f"), 8, "a?b?c?" },
    { L("\0x"), 8, "?x" },
    { L("0123456789"), 8, "0123456" },
    { L("01234567"), 8, "0123456" },
    { L("0123456"), 8, "0123456" },
    { L("abc"), 1, "" },
    { L(""), 4, "" },
    { L("\xc3\xa4\x80\xff"), 8, "\xc3\xa4\x80\xff" },
    { L("\t tab"), 8, "? tab" },
    { L("* OK [x]\r\n"), 16, "* OK [x]??" },
};

static void test_sanitize_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(sanitize_cases) / sizeof(sanitize_cases[0]); i++) {
        const struct sanitize_case *c = &sanitize_cases[i];
        char out[64];

        print_message("sanitize case %zu\n", i);
        memset(out, 'X', sizeof(out));
        assert_int_equal(gw_log_sanitize(c->in, c->len, out, c->outsize), strlen(c->out));
        assert_string_equal(out, c->out);
        /* Nothing is written past outsize. */
        for (size_t j = c->outsize; j < sizeof(out); j++)
            assert_int_equal(out[j], 'X');
    }
}

static void test_sanitize_zero_size(void **state)
{
    char out[1] = { 'X' };

    (void)state;
    assert_int_equal(gw_log_sanitize("abc", 3, out, 0), 0);
    assert_int_equal(out[0], 'X');
    assert_int_equal(gw_log_sanitize(NULL, 0, out, 1), 0);
    assert_int_equal(out[0], '\0');
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode_table),
        cmocka_unit_test(test_decode_empty_null),
        cmocka_unit_test(test_decode_limits),
        cmocka_unit_test(test_decode_order),
        cmocka_unit_test(test_encode_table),
        cmocka_unit_test(test_encode_lengths),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_sanitize_table),
        cmocka_unit_test(test_sanitize_zero_size),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
