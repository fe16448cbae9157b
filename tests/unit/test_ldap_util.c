/* Pure LDAP helpers: RFC 4515 escaping, filter templates, DNs, URIs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ldap/ldap_util.h"

static void test_escape_table(void **state)
{
    static const struct {
        const char *in;
        size_t len;
        const char *out;
    } cases[] = {
        {"alice", 5, "alice"},
        {"*", 1, "\\2a"},
        {"*)(uid=*", 8, "\\2a\\29\\28uid=\\2a"},
        {"a\\b", 3, "a\\5cb"},
        {"(x)", 3, "\\28x\\29"},
        {"a\0b", 3, "a\\00b"},
        {"tab\there", 8, "tab\\09here"},
        {"\xc3\xa9t\xc3\xa9", 5, "\\c3\\a9t\\c3\\a9"},   /* UTF-8: escaped too, still exact */
        {"\x7f", 1, "\\7f"},
        {"a.b-c_d@e+f", 11, "a.b-c_d@e+f"},
        {"", 0, ""},
    };
    char out[128];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        long n = gw_ldap_escape_value(cases[i].in, cases[i].len, out, sizeof(out));

        assert_int_equal(n, (long)strlen(cases[i].out));
        assert_string_equal(out, cases[i].out);
    }
}

/* Whatever the bytes, the escaped text never holds an unescaped
   metacharacter: every '\' starts exactly two hex digits. */
static void test_escape_random(void **state)
{
    char in[64], out[64 * 3 + 1];

    (void)state;
    srand(4515);
    for (int round = 0; round < 20000; round++) {
        size_t len = (size_t)(rand() % 64);
        long n;

        for (size_t i = 0; i < len; i++)
            in[i] = (char)(rand() % 256);
        n = gw_ldap_escape_value(in, len, out, sizeof(out));
        assert_true(n >= (long)len);
        for (long i = 0; i < n; i++) {
            assert_true(out[i] != '*' && out[i] != '(' && out[i] != ')' && out[i] != '\0');
            assert_true((unsigned char)out[i] >= 0x20 && (unsigned char)out[i] < 0x7f);
            if (out[i] == '\\') {
                assert_true(i + 2 < n || i + 2 == n);
                assert_non_null(strchr("0123456789abcdef", out[i + 1]));
                assert_non_null(strchr("0123456789abcdef", out[i + 2]));
                i += 2;
            }
        }
    }
}

static void test_escape_too_small(void **state)
{
    char out[8];

    (void)state;
    assert_int_equal(gw_ldap_escape_value("abcdefg", 7, out, sizeof(out)), 7);
    assert_int_equal(gw_ldap_escape_value("abcdefgh", 8, out, sizeof(out)), -1);
    assert_string_equal(out, "");
    /* an escape never gets cut in half */
    assert_int_equal(gw_ldap_escape_value("abcde*", 6, out, sizeof(out)), -1);
    assert_int_equal(gw_ldap_escape_value("x", 1, out, 0), -1);
}

static void test_expand(void **state)
{
    char out[256];
    const char *err = NULL;

    (void)state;
    assert_true(gw_ldap_filter_expand("(uid=%u)", "alice", out, sizeof(out), &err) > 0);
    assert_string_equal(out, "(uid=alice)");
    assert_true(gw_ldap_filter_expand("(|(uid=%u)(mail=%u@x))", "*)(a=*", out, sizeof(out),
                                      &err) > 0);
    assert_string_equal(out, "(|(uid=\\2a\\29\\28a=\\2a)(mail=\\2a\\29\\28a=\\2a@x))");
    assert_true(gw_ldap_filter_expand("(pct=100%%)(uid=%u)", "b", out, sizeof(out), &err) > 0);
    assert_string_equal(out, "(pct=100%)(uid=b)");
    assert_int_equal(gw_ldap_filter_expand("(uid=%s)", "b", out, sizeof(out), &err), -1);
    assert_non_null(strstr(err, "unknown %"));
    assert_int_equal(gw_ldap_filter_expand("(uid=%", "b", out, sizeof(out), &err), -1);
    /* too long: refused, never truncated into a shorter filter */
    {
        char big[200];

        memset(big, '*', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(gw_ldap_filter_expand("(uid=%u)", big, out, sizeof(out), &err), -1);
        assert_string_equal(out, "");
        assert_string_equal(err, "filter too long");
    }
}

static void test_template_check(void **state)
{
    static const struct {
        const char *tmpl;
        bool ok;
    } cases[] = {
        {"(uid=%u)", true},
        {"(&(objectClass=gwMailUser)(uid=%u))", true},
        {"(&(objectClass=gwMailUser)(|(uid=%u)(gwSipUri=%u)))", true},
        {"(cn=a\\29b)(", false},
        {"(cn=a\\29b%u)", true},
        {"uid=%u", false},
        {"(uid=%u", false},
        {"(uid=%u))", false},
        {"(uid=%u)(cn=x)", false},
        {"(uid=alice)", false},
        {"(uid=%d)", false},
        {"(uid=%%u)", false},
        {"", false},
    };
    const char *err;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        err = NULL;
        if ((gw_ldap_filter_template_check(cases[i].tmpl, &err) == 0) != cases[i].ok) {
            print_error("template %s: expected %s (%s)\n", cases[i].tmpl,
                        cases[i].ok ? "ok" : "an error", err ? err : "");
            fail();
        }
    }
}

static void test_dn(void **state)
{
    (void)state;
    assert_true(gw_ldap_dn_valid("uid=alice,ou=people,dc=example,dc=test"));
    assert_true(gw_ldap_dn_valid("cn=a\\,b,dc=x"));
    assert_false(gw_ldap_dn_valid(""));
    assert_false(gw_ldap_dn_valid(NULL));
    assert_false(gw_ldap_dn_valid("not a dn"));
    assert_false(gw_ldap_dn_valid("uid=alice,,dc=x"));

    assert_true(gw_ldap_dn_under("uid=alice,ou=people,dc=example,dc=test",
                                 "ou=people,dc=example,dc=test"));
    assert_true(gw_ldap_dn_under("UID=alice, OU=People,DC=Example,dc=test",
                                 "ou=people,dc=example,dc=test"));
    assert_true(gw_ldap_dn_under("ou=people,dc=example,dc=test", "ou=people,dc=example,dc=test"));
    assert_true(gw_ldap_dn_under("uid=x,dc=test", ""));
    assert_false(gw_ldap_dn_under("uid=alice,ou=other,dc=example,dc=test",
                                  "ou=people,dc=example,dc=test"));
    assert_false(gw_ldap_dn_under("dc=test", "ou=people,dc=example,dc=test"));
    /* a value that merely ends like the base is not under it */
    assert_false(gw_ldap_dn_under("uid=alice,ou=xpeople,dc=example,dc=test",
                                  "ou=people,dc=example,dc=test"));
    assert_false(gw_ldap_dn_under("", "dc=test"));
    assert_false(gw_ldap_dn_under("garbage", "dc=test"));
    assert_false(gw_ldap_dn_under("uid=a,dc=test", "garbage"));
}

static void test_disabled_values(void **state)
{
    (void)state;
    assert_false(gw_ldap_value_disables("FALSE", 5));
    assert_false(gw_ldap_value_disables("false", 5));
    assert_false(gw_ldap_value_disables("0", 1));
    assert_false(gw_ldap_value_disables("no", 2));
    assert_true(gw_ldap_value_disables("TRUE", 4));
    assert_true(gw_ldap_value_disables("1", 1));
    assert_true(gw_ldap_value_disables("000001010000Z", 13));   /* pwdAccountLockedTime */
    assert_true(gw_ldap_value_disables("FALSEX", 6));
}

static void test_uri(void **state)
{
    char *host = NULL;
    unsigned port = 0;
    bool ldaps = false;
    const char *err = NULL;

    (void)state;
    assert_int_equal(gw_ldap_uri_parse("ldap://127.0.0.1", &host, &port, &ldaps, &err), 0);
    assert_string_equal(host, "127.0.0.1");
    assert_int_equal(port, 389);
    assert_false(ldaps);
    free(host);
    assert_int_equal(gw_ldap_uri_parse("ldaps://ldap.example.test:1636/", &host, &port, &ldaps,
                                       &err), 0);
    assert_string_equal(host, "ldap.example.test");
    assert_int_equal(port, 1636);
    assert_true(ldaps);
    free(host);
    assert_int_equal(gw_ldap_uri_parse("ldaps://[::1]", &host, &port, &ldaps, &err), 0);
    assert_string_equal(host, "::1");
    assert_int_equal(port, 636);
    free(host);
    assert_int_equal(gw_ldap_uri_parse("ldapi:///", &host, &port, &ldaps, &err), -1);
    assert_int_equal(gw_ldap_uri_parse("http://x", &host, &port, &ldaps, &err), -1);
    assert_int_equal(gw_ldap_uri_parse("ldap://", &host, &port, &ldaps, &err), -1);
    assert_int_equal(gw_ldap_uri_parse("ldap://x/dc=example", &host, &port, &ldaps, &err), -1);
    assert_int_equal(gw_ldap_uri_parse("nonsense", &host, &port, &ldaps, &err), -1);
    assert_null(host);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_escape_table),   cmocka_unit_test(test_escape_random),
        cmocka_unit_test(test_escape_too_small), cmocka_unit_test(test_expand),
        cmocka_unit_test(test_template_check), cmocka_unit_test(test_dn),
        cmocka_unit_test(test_disabled_values), cmocka_unit_test(test_uri),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
