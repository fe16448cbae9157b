/*
 * The directory front (core/directory/directory.c) with a fake source:
 * credential cache, negative cache, mailbox cache, stale-if-error and
 * failed-login penalties; and the pure penalty arithmetic (penalty.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "core.h"
#include "directory/directory.h"
#include "directory/penalty.h"

/* ---- pure penalties ----------------------------------------------------- */

static void test_penalty_delays(void **state)
{
    struct gw_penalty_conf pc = {.after = 3, .delay = 1000, .max_delay = 15000, .lockout = 0,
                                 .lockout_time = 60000, .window = 900000};
    struct gw_penalty p = {0, 0, 0};
    static const long expect[] = {0, 0, 1000, 2000, 4000, 8000, 15000, 15000};

    (void)state;
    for (size_t i = 0; i < sizeof(expect) / sizeof(expect[0]); i++)
        assert_int_equal(gw_penalty_fail(&pc, &p, 1000 + i, NULL), expect[i]);
    assert_false(gw_penalty_locked(&pc, &p, 2000));
    /* a quiet window forgets everything */
    assert_int_equal(gw_penalty_fail(&pc, &p, 1000 + 7 + 900000, NULL), 0);
    assert_int_equal(p.count, 1);
    pc.after = 0;
    for (int i = 0; i < 50; i++)
        assert_int_equal(gw_penalty_fail(&pc, &p, 5000000, NULL), 0);
}

static void test_penalty_lockout(void **state)
{
    struct gw_penalty_conf pc = {.after = 0, .delay = 0, .max_delay = 0, .lockout = 3,
                                 .lockout_time = 1000, .window = 100};
    struct gw_penalty p = {0, 0, 0};
    bool locked;

    (void)state;
    gw_penalty_fail(&pc, &p, 10, &locked);
    assert_false(locked);
    gw_penalty_fail(&pc, &p, 20, &locked);
    assert_false(locked);
    gw_penalty_fail(&pc, &p, 30, &locked);
    assert_true(locked);
    assert_true(gw_penalty_locked(&pc, &p, 31));
    assert_true(gw_penalty_locked(&pc, &p, 1029));
    assert_false(gw_penalty_locked(&pc, &p, 1030));
    /* the window (100 ms) is shorter than the lockout: a failure during
       the lockout does not reset the count nor shorten it */
    gw_penalty_fail(&pc, &p, 500, &locked);
    assert_false(locked);
    assert_true(gw_penalty_locked(&pc, &p, 1029));
    assert_int_equal(gw_penalty_expires(&pc, &p), 1030);
    /* after it, a quiet window starts over */
    gw_penalty_fail(&pc, &p, 2000, &locked);
    assert_int_equal(p.count, 1);
    assert_false(gw_penalty_locked(&pc, &p, 2001));
}

/* ---- the front, with a fake source --------------------------------------- */

struct fake_user {
    const char *name, *password, *database;
    bool disabled;
};
static const struct fake_user fake_users[] = {
    {"alice", "pw-alice", "db1", false},
    {"bob", "pw-bob", "db2", false},
    {"carol", "pw-carol", "db1", true},
};
static bool fake_up = true;
static int fake_calls;

static int fake_init(const struct gw_config *conf, char **error_r)
{
    (void)conf;
    (void)error_r;
    return 0;
}

static void fake_deinit(void)
{
}

static void fake_start(struct gw_lookup *l, const char *key, const char *password)
{
    struct gw_dir_record rec;

    fake_calls++;
    if (!fake_up) {
        gw_dir_done(l, GW_AUTH_UNAVAILABLE, NULL);
        return;
    }
    for (size_t i = 0; i < sizeof(fake_users) / sizeof(fake_users[0]); i++) {
        const struct fake_user *u = &fake_users[i];

        if (strcmp(u->name, key) != 0)
            continue;
        if (password != NULL && strcmp(password, u->password) != 0) {
            gw_dir_done(l, GW_AUTH_BAD_PASSWORD, NULL);
            return;
        }
        if (u->disabled) {
            gw_dir_done(l, GW_AUTH_DISABLED, NULL);
            return;
        }
        memset(&rec, 0, sizeof(rec));
        snprintf(rec.user, sizeof(rec.user), "%s", u->name);
        snprintf(rec.database, sizeof(rec.database), "%s", u->database);
        rec.version = 15;
        gw_dir_done(l, GW_AUTH_OK, &rec);
        return;
    }
    gw_dir_done(l, GW_AUTH_UNKNOWN_USER, NULL);
}

static const struct gw_dir_driver fake_driver = {
    .name = "fake", .init = fake_init, .deinit = fake_deinit, .start = fake_start,
};

static struct gw_config conf;

struct answer {
    bool done;
    enum gw_auth_result res;
    char database[64];
};

static void answer_cb(void *arg, enum gw_auth_result res, const struct gw_mailbox *m)
{
    struct answer *a = arg;

    a->done = true;
    a->res = res;
    snprintf(a->database, sizeof(a->database), "%s", m != NULL ? m->database : "");
}

static void wait_answer(struct answer *a)
{
    for (int i = 0; i < 1000 && !a->done; i++)
        ev_run(gw_w.loop, EVRUN_ONCE);
    assert_true(a->done);
}

static enum gw_auth_result auth_from(const char *addr, const char *user, const char *password)
{
    struct answer a = {0};
    struct gw_conn c;

    memset(&c, 0, sizeof(c));
    snprintf(c.peer.addr, sizeof(c.peer.addr), "%s", addr);
    gw_authenticate(&c, user, password, answer_cb, &a);
    assert_false(a.done);     /* never answered from inside the call */
    wait_answer(&a);
    return a.res;
}

static enum gw_auth_result auth(const char *user, const char *password)
{
    return auth_from("192.0.2.1", user, password);
}

static enum gw_auth_result resolve(const char *key)
{
    struct answer a = {0};

    gw_resolve(key, answer_cb, &a);
    wait_answer(&a);
    return a.res;
}

static void sleep_ms(long ms)
{
    usleep((useconds_t)ms * 1000);
    ev_now_update(gw_w.loop);
}

static int setup(void **state)
{
    (void)state;
    memset(&conf, 0, sizeof(conf));
    conf.auth_failure_delay = 0;
    conf.auth_cache_ttl = 60000;
    conf.auth_negative_ttl = 60000;
    conf.auth_cache_size = 100;
    conf.auth_stale_ttl = 60000;
    conf.penalty_after = 0;
    conf.penalty_lockout_user = 0;
    conf.penalty_lockout_ip = 0;
    conf.penalty_lockout_time = 1000;
    conf.penalty_window = 60000;
    fake_up = true;
    fake_calls = 0;
    return 0;
}

static void start(void)
{
    char *err = NULL;

    if (gw_w.loop == NULL)
        gw_w.loop = ev_default_loop(0);
    ev_now_update(gw_w.loop);
    assert_int_equal(gw_directory_init_driver(&conf, &fake_driver, &err), 0);
}

static int teardown(void **state)
{
    (void)state;
    gw_directory_deinit();
    return 0;
}

static void test_credential_cache(void **state)
{
    (void)state;
    start();
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_OK);
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_OK);
    assert_int_equal(fake_calls, 1);
    /* another password is never answered from the cache */
    assert_int_equal(auth("alice", "guess"), GW_AUTH_BAD_PASSWORD);
    assert_int_equal(fake_calls, 2);
    /* ... and the failure dropped the entry */
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_OK);
    assert_int_equal(fake_calls, 3);
    assert_int_equal(auth("carol", "pw-carol"), GW_AUTH_DISABLED);
    assert_int_equal(auth("carol", "pw-carol"), GW_AUTH_DISABLED);
    assert_int_equal(fake_calls, 5);
}

static void test_cache_ttl(void **state)
{
    (void)state;
    conf.auth_cache_ttl = 30;
    start();
    assert_int_equal(auth("bob", "pw-bob"), GW_AUTH_OK);
    assert_int_equal(auth("bob", "pw-bob"), GW_AUTH_OK);
    assert_int_equal(fake_calls, 1);
    sleep_ms(40);
    assert_int_equal(auth("bob", "pw-bob"), GW_AUTH_OK);
    assert_int_equal(fake_calls, 2);
}

static void test_negative_cache(void **state)
{
    (void)state;
    conf.auth_negative_ttl = 30;
    start();
    assert_int_equal(auth("ghost", "x"), GW_AUTH_UNKNOWN_USER);
    assert_int_equal(auth("ghost", "y"), GW_AUTH_UNKNOWN_USER);
    assert_int_equal(resolve("ghost"), GW_AUTH_UNKNOWN_USER);   /* separate: r: */
    assert_int_equal(resolve("ghost"), GW_AUTH_UNKNOWN_USER);
    assert_int_equal(fake_calls, 2);
    sleep_ms(40);
    assert_int_equal(auth("ghost", "x"), GW_AUTH_UNKNOWN_USER);
    assert_int_equal(fake_calls, 3);
}

static void test_resolve_cache(void **state)
{
    (void)state;
    start();
    assert_int_equal(resolve("bob"), GW_AUTH_OK);
    assert_int_equal(resolve("bob"), GW_AUTH_OK);
    assert_int_equal(fake_calls, 1);
}

static void test_stale_if_error(void **state)
{
    (void)state;
    conf.auth_cache_ttl = 20;
    start();
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_OK);
    assert_int_equal(resolve("bob"), GW_AUTH_OK);
    sleep_ms(30);
    fake_up = false;
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_OK);          /* stale, served */
    assert_int_equal(auth("alice", "guess"), GW_AUTH_UNAVAILABLE);    /* not another password */
    assert_int_equal(auth("bob", "pw-bob"), GW_AUTH_UNAVAILABLE);     /* never verified */
    assert_int_equal(resolve("bob"), GW_AUTH_OK);
    assert_int_equal(resolve("alice"), GW_AUTH_OK);
    assert_int_equal(resolve("carol"), GW_AUTH_UNAVAILABLE);
    fake_up = true;
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_OK);
}

static void test_stale_window(void **state)
{
    (void)state;
    conf.auth_cache_ttl = 10;
    conf.auth_stale_ttl = 20;
    start();
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_OK);
    sleep_ms(40);
    fake_up = false;
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_UNAVAILABLE);
}

static void test_stale_off(void **state)
{
    (void)state;
    conf.auth_cache_ttl = 10;
    conf.auth_stale_ttl = 0;
    start();
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_OK);
    sleep_ms(20);
    fake_up = false;
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_UNAVAILABLE);
}

static void test_user_lockout(void **state)
{
    (void)state;
    conf.penalty_lockout_user = 3;
    conf.penalty_lockout_time = 50;
    start();
    /* a success in between forgets the failures */
    assert_int_equal(auth("alice", "g1"), GW_AUTH_BAD_PASSWORD);
    assert_int_equal(auth("alice", "g2"), GW_AUTH_BAD_PASSWORD);
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_OK);
    assert_int_equal(auth("alice", "g3"), GW_AUTH_BAD_PASSWORD);
    assert_int_equal(auth("alice", "g4"), GW_AUTH_BAD_PASSWORD);
    assert_int_equal(auth("alice", "g5"), GW_AUTH_BAD_PASSWORD);
    fake_calls = 0;
    /* locked: even the right password, even cached, from anywhere */
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_THROTTLED);
    assert_int_equal(auth_from("198.51.100.7", "alice", "pw-alice"), GW_AUTH_THROTTLED);
    assert_int_equal(fake_calls, 0);
    assert_int_equal(auth("bob", "pw-bob"), GW_AUTH_OK);
    sleep_ms(60);
    assert_int_equal(auth("alice", "pw-alice"), GW_AUTH_OK);
}

static void test_address_lockout(void **state)
{
    (void)state;
    conf.penalty_lockout_ip = 2;
    conf.penalty_lockout_time = 50;
    start();
    assert_int_equal(auth_from("203.0.113.9", "u1", "x"), GW_AUTH_UNKNOWN_USER);
    assert_int_equal(auth_from("203.0.113.9", "u2", "x"), GW_AUTH_UNKNOWN_USER);
    assert_int_equal(auth_from("203.0.113.9", "alice", "pw-alice"), GW_AUTH_THROTTLED);
    assert_int_equal(auth_from("203.0.113.10", "alice", "pw-alice"), GW_AUTH_OK);
    sleep_ms(60);
    assert_int_equal(auth_from("203.0.113.9", "alice", "pw-alice"), GW_AUTH_OK);
}

static void test_growing_delay(void **state)
{
    double t0, t1;

    (void)state;
    conf.penalty_after = 2;
    conf.penalty_delay = 40;
    conf.penalty_max_delay = 60;
    start();
    t0 = ev_time();
    assert_int_equal(auth("bob", "g1"), GW_AUTH_BAD_PASSWORD);
    t1 = ev_time();
    assert_true(t1 - t0 < 0.03);
    assert_int_equal(auth("bob", "g2"), GW_AUTH_BAD_PASSWORD);
    t0 = ev_time();
    assert_true(t0 - t1 >= 0.035);
    assert_int_equal(auth("bob", "g3"), GW_AUTH_BAD_PASSWORD);
    t1 = ev_time();
    assert_true(t1 - t0 >= 0.055);     /* 80 ms capped to 60 */
    assert_true(t1 - t0 < 0.5);
    /* successes are never delayed */
    assert_int_equal(auth("bob", "pw-bob"), GW_AUTH_OK);
    assert_true(ev_time() - t1 < 0.03);
}

static void test_cancel(void **state)
{
    struct answer a = {0};
    struct gw_lookup *l;

    (void)state;
    start();
    l = gw_authenticate(NULL, "alice", "pw-alice", answer_cb, &a);
    gw_lookup_cancel(&l);
    assert_null(l);
    for (int i = 0; i < 5; i++)
        ev_run(gw_w.loop, EVRUN_NOWAIT);
    assert_false(a.done);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_penalty_delays),
        cmocka_unit_test(test_penalty_lockout),
        cmocka_unit_test_setup_teardown(test_credential_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cache_ttl, setup, teardown),
        cmocka_unit_test_setup_teardown(test_negative_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resolve_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_if_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_window, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stale_off, setup, teardown),
        cmocka_unit_test_setup_teardown(test_user_lockout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_address_lockout, setup, teardown),
        cmocka_unit_test_setup_teardown(test_growing_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
    };

    gw_log_init(GW_LOG_ERROR, "test");
    return cmocka_run_group_tests(tests, NULL, NULL);
}
