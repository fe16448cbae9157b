/* The ldap locator's pure parts: RFC 4533 codecs, the copies attribute. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "locator/ldap_sync.h"

static const unsigned char U1[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
static const unsigned char U2[16] = {0xff, 0, 0xee, 0, 0xdd, 0, 0xcc, 0, 0xbb, 0, 0xaa, 0, 9, 8, 7, 6};

static void test_request(void **state)
{
    struct berval v, cookie = {12, "rid=000,csn="}, got;
    int mode;
    bool hint;
    /* RFC 4533 2.2, refreshAndPersist without a cookie: 30 03 0a 01 03 */
    static const unsigned char plain[] = {0x30, 0x03, 0x0a, 0x01, 0x03};

    (void)state;
    assert_int_equal(gw_sync_request_encode(LDAP_SYNC_REFRESH_AND_PERSIST, NULL, false, &v), 0);
    assert_int_equal(v.bv_len, sizeof(plain));
    assert_memory_equal(v.bv_val, plain, sizeof(plain));
    ber_memfree(v.bv_val);

    assert_int_equal(gw_sync_request_encode(LDAP_SYNC_REFRESH_ONLY, &cookie, true, &v), 0);
    assert_int_equal(gw_sync_request_decode(&v, &mode, &got, &hint), 0);
    assert_int_equal(mode, LDAP_SYNC_REFRESH_ONLY);
    assert_true(hint);
    assert_int_equal(got.bv_len, cookie.bv_len);
    assert_memory_equal(got.bv_val, cookie.bv_val, cookie.bv_len);
    ber_memfree(got.bv_val);
    ber_memfree(v.bv_val);
}

static void test_state(void **state)
{
    struct berval v, cookie = {3, "abc"}, got;
    unsigned char uuid[16];
    int st;

    (void)state;
    assert_int_equal(gw_sync_state_encode(LDAP_SYNC_MODIFY, U1, &cookie, &v), 0);
    assert_int_equal(gw_sync_state_decode(&v, &st, uuid, &got), 0);
    assert_int_equal(st, LDAP_SYNC_MODIFY);
    assert_memory_equal(uuid, U1, 16);
    assert_int_equal(got.bv_len, 3);
    ber_memfree(got.bv_val);
    ber_memfree(v.bv_val);

    assert_int_equal(gw_sync_state_encode(LDAP_SYNC_DELETE, U2, NULL, &v), 0);
    assert_int_equal(gw_sync_state_decode(&v, &st, uuid, &got), 0);
    assert_int_equal(st, LDAP_SYNC_DELETE);
    assert_memory_equal(uuid, U2, 16);
    assert_int_equal(got.bv_len, 0);
    ber_memfree(v.bv_val);

    /* garbage and truncation are refused */
    {
        struct berval bad = {3, "\x30\x05\x0a"};
        assert_int_equal(gw_sync_state_decode(&bad, &st, uuid, &got), -1);
    }
}

static void roundtrip(const struct gw_sync_info *in, struct gw_sync_info *out)
{
    struct berval v;

    assert_int_equal(gw_sync_info_encode(in, &v), 0);
    assert_int_equal(gw_sync_info_decode(&v, out), 0);
    ber_memfree(v.bv_val);
}

static void test_info(void **state)
{
    struct gw_sync_info in, out;
    struct berval ids[2] = {{16, (char *)U1}, {16, (char *)U2}};

    (void)state;
    memset(&in, 0, sizeof(in));
    in.kind = GW_SYNC_NEW_COOKIE;
    in.cookie = (struct berval){4, "c001"};
    roundtrip(&in, &out);
    assert_int_equal(out.kind, GW_SYNC_NEW_COOKIE);
    assert_memory_equal(out.cookie.bv_val, "c001", 4);
    gw_sync_info_free(&out);

    memset(&in, 0, sizeof(in));
    in.kind = GW_SYNC_REFRESH_PRESENT;
    in.refresh_done = true;          /* default: not encoded */
    roundtrip(&in, &out);
    assert_int_equal(out.kind, GW_SYNC_REFRESH_PRESENT);
    assert_true(out.refresh_done);
    assert_int_equal(out.cookie.bv_len, 0);
    gw_sync_info_free(&out);

    in.kind = GW_SYNC_REFRESH_DELETE;
    in.refresh_done = false;
    in.cookie = (struct berval){2, "zz"};
    roundtrip(&in, &out);
    assert_int_equal(out.kind, GW_SYNC_REFRESH_DELETE);
    assert_false(out.refresh_done);
    assert_int_equal(out.cookie.bv_len, 2);
    gw_sync_info_free(&out);

    memset(&in, 0, sizeof(in));
    in.kind = GW_SYNC_ID_SET;
    in.refresh_deletes = true;
    in.uuids = ids;
    in.nuuids = 2;
    roundtrip(&in, &out);
    assert_int_equal(out.kind, GW_SYNC_ID_SET);
    assert_true(out.refresh_deletes);
    assert_int_equal(out.nuuids, 2);
    assert_memory_equal(out.uuids[1].bv_val, U2, 16);
    gw_sync_info_free(&out);

    {
        struct berval bad = {2, "\x05\x00"};
        assert_int_equal(gw_sync_info_decode(&bad, &out), -1);
    }
}

static void test_done(void **state)
{
    /* SEQUENCE { cookie "ab", refreshDeletes TRUE } */
    static const unsigned char v1[] = {0x30, 0x07, 0x04, 0x02, 'a', 'b', 0x01, 0x01, 0xff};
    struct berval v = {sizeof(v1), (char *)v1}, cookie;
    bool dels;

    (void)state;
    assert_int_equal(gw_sync_done_decode(&v, &cookie, &dels), 0);
    assert_true(dels);
    assert_int_equal(cookie.bv_len, 2);
    ber_memfree(cookie.bv_val);
}

static int parse(const char *const *vals, size_t n, char ***c, size_t *nc, const char **err)
{
    struct berval bv[8], *p[8];

    for (size_t i = 0; i < n; i++) {
        bv[i].bv_val = (char *)vals[i];
        bv[i].bv_len = strlen(vals[i]);
        p[i] = &bv[i];
    }
    return gw_copies_parse((const struct berval *const *)p, n, c, nc, err);
}

static void test_copies(void **state)
{
    char **c;
    size_t n;
    const char *err = NULL;

    (void)state;
    {   /* numeric prefix orders, whatever order the server returns values in */
        const char *v[] = {"2 mbx2", "10 mbx3", "1 mbx1"};
        assert_int_equal(parse(v, 3, &c, &n, &err), 0);
        assert_int_equal(n, 3);
        assert_string_equal(c[0], "mbx1");
        assert_string_equal(c[1], "mbx2");
        assert_string_equal(c[2], "mbx3");
        gw_copies_free(c, n);
    }
    {   /* "N:server", a comma list after the numbered ones, duplicates once */
        const char *v[] = {"mbxa, mbxb", "2:mbx2", "1:mbx1", "3 mbx1"};
        assert_int_equal(parse(v, 4, &c, &n, &err), 0);
        assert_int_equal(n, 4);
        assert_string_equal(c[0], "mbx1");
        assert_string_equal(c[1], "mbx2");
        assert_string_equal(c[2], "mbxa");
        assert_string_equal(c[3], "mbxb");
        gw_copies_free(c, n);
    }
    {   /* equal preferences keep the order they came in */
        const char *v[] = {"1 b", "1 a"};
        assert_int_equal(parse(v, 2, &c, &n, &err), 0);
        assert_string_equal(c[0], "b");
        gw_copies_free(c, n);
    }
    {
        const char *v[] = {"1"};
        assert_int_equal(parse(v, 1, &c, &n, &err), -1);
        assert_null(c);
    }
    {
        const char *v[] = {"1x mbx1"};
        assert_int_equal(parse(v, 1, &c, &n, &err), -1);
    }
    {
        const char *v[] = {"mbx1,,mbx2"};
        assert_int_equal(parse(v, 1, &c, &n, &err), -1);
    }
    {
        const char *v[] = {"1 bad name"};
        assert_int_equal(parse(v, 1, &c, &n, &err), -1);
    }
    assert_int_equal(parse(NULL, 0, &c, &n, &err), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_request), cmocka_unit_test(test_state),
        cmocka_unit_test(test_info),    cmocka_unit_test(test_done),
        cmocka_unit_test(test_copies),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
