/* The PROXY protocol v2 header the core sends to haproxy=yes backends,
   byte for byte against haproxy's proxy-protocol.txt, section 2.2. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "core.h"

static const unsigned char sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                      0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

static void test_ipv4(void **state)
{
    struct gw_peer src = {.addr = "192.0.2.10", .port = 51234};
    struct gw_peer dst = {.addr = "198.51.100.1", .port = 993};
    unsigned char out[GW_PROXY_V2_MAX];
    const unsigned char want[] = {0x21, 0x11, 0x00, 12,  192, 0, 2, 10, 198, 51, 100, 1,
                                  0xc8, 0x22, 0x03, 0xe1};

    (void)state;
    assert_int_equal(gw_proxy_v2_header(&src, &dst, out), 28);
    assert_memory_equal(out, sig, sizeof(sig));
    assert_memory_equal(out + 12, want, sizeof(want));
}

static void test_ipv6(void **state)
{
    struct gw_peer src = {.addr = "2001:db8::1", .port = 1},
                   dst = {.addr = "2001:db8::2", .port = 143};
    unsigned char out[GW_PROXY_V2_MAX];

    (void)state;
    assert_int_equal(gw_proxy_v2_header(&src, &dst, out), 52);
    assert_int_equal(out[12], 0x21);
    assert_int_equal(out[13], 0x21);
    assert_int_equal(out[15], 36);
    assert_int_equal(out[16], 0x20); /* 2001:db8::1 */
    assert_int_equal(out[31], 0x01);
    assert_int_equal(out[47], 0x02); /* 2001:db8::2 */
    assert_int_equal(out[48], 0);    /* source port 1 */
    assert_int_equal(out[49], 1);
    assert_int_equal(out[50], 0);    /* destination port 143 */
    assert_int_equal(out[51], 143);
}

/* Health probes, and a client and local address of different families
   (an IPv4 client on a dual-stack socket not mapped): LOCAL, no addresses. */
static void test_local(void **state)
{
    struct gw_peer v4 = {.addr = "192.0.2.10", .port = 1}, v6 = {.addr = "::1", .port = 2};
    unsigned char out[GW_PROXY_V2_MAX];
    const unsigned char local[] = {0x20, 0x00, 0x00, 0x00};

    (void)state;
    assert_int_equal(gw_proxy_v2_header(NULL, NULL, out), 16);
    assert_memory_equal(out, sig, sizeof(sig));
    assert_memory_equal(out + 12, local, sizeof(local));
    assert_int_equal(gw_proxy_v2_header(&v4, &v6, out), 16);
    assert_memory_equal(out + 12, local, sizeof(local));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_ipv4),
        cmocka_unit_test(test_ipv6),
        cmocka_unit_test(test_local),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
