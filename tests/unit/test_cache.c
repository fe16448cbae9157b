/* The bounded LRU cache. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "cache.h"

static void test_put_get_replace(void **state)
{
    struct gw_cache *c = gw_cache_create(4, sizeof(int));
    unsigned long long exp = 0;
    int v = 1;
    const int *got;

    (void)state;
    gw_cache_put(c, "alice", &v, 100);
    got = gw_cache_get(c, "alice", &exp);
    assert_non_null(got);
    assert_int_equal(*got, 1);
    assert_int_equal(exp, 100);
    v = 2;
    gw_cache_put(c, "alice", &v, 200);
    got = gw_cache_get(c, "alice", &exp);
    assert_int_equal(*got, 2);
    assert_int_equal(exp, 200);
    assert_int_equal(gw_cache_count(c), 1);
    assert_null(gw_cache_get(c, "bob", NULL));
    gw_cache_remove(c, "alice");
    assert_null(gw_cache_get(c, "alice", NULL));
    assert_int_equal(gw_cache_count(c), 0);
    gw_cache_destroy(&c);
    assert_null(c);
}

static void test_lru_eviction(void **state)
{
    struct gw_cache *c = gw_cache_create(3, sizeof(int));
    char key[16];

    (void)state;
    for (int i = 0; i < 3; i++) {
        snprintf(key, sizeof(key), "u%d", i);
        gw_cache_put(c, key, &i, 1);
    }
    /* touch u0 so u1 is the least recently used */
    assert_non_null(gw_cache_get(c, "u0", NULL));
    {
        int v = 9;
        gw_cache_put(c, "u3", &v, 1);
    }
    assert_int_equal(gw_cache_count(c), 3);
    assert_null(gw_cache_get(c, "u1", NULL));
    assert_non_null(gw_cache_get(c, "u0", NULL));
    assert_non_null(gw_cache_get(c, "u2", NULL));
    assert_non_null(gw_cache_get(c, "u3", NULL));
    gw_cache_destroy(&c);
}

static void test_many(void **state)
{
    struct gw_cache *c = gw_cache_create(1000, sizeof(int));
    char key[16];

    (void)state;
    for (int i = 0; i < 5000; i++) {
        snprintf(key, sizeof(key), "k%d", i);
        gw_cache_put(c, key, &i, (unsigned long long)i);
    }
    assert_int_equal(gw_cache_count(c), 1000);
    for (int i = 4000; i < 5000; i++) {
        const int *v;
        snprintf(key, sizeof(key), "k%d", i);
        v = gw_cache_get(c, key, NULL);
        assert_non_null(v);
        assert_int_equal(*v, i);
    }
    assert_null(gw_cache_get(c, "k3999", NULL));
    gw_cache_destroy(&c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_put_get_replace),
        cmocka_unit_test(test_lru_eviction),
        cmocka_unit_test(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
