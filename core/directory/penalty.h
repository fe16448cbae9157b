/*
 * Failed-login penalties, after Dovecot's auth penalty: each failure of a
 * key (a client address, a user name) counts; from the `after`-th failure
 * on, the answer is delayed by `delay`, doubling per failure up to
 * `max_delay`; at `lockout` failures the key is locked for `lockout_time`
 * (every login answered "throttled", even with the right password). A
 * success, or `window` without a failure, forgets the count.
 *
 * Pure: the caller keeps one struct gw_penalty per key and passes the
 * time; core/directory/directory.c keeps them in bounded LRU tables.
 */
#ifndef GW_CORE_PENALTY_H
#define GW_CORE_PENALTY_H

#include <stdbool.h>

struct gw_penalty_conf {
    long after;                /* failures before delays start; 0: no delays */
    long delay;                /* ms at the first penalised failure */
    long max_delay;            /* ms */
    long lockout;              /* failures that lock the key; 0: never */
    long lockout_time;         /* ms */
    long window;               /* ms without a failure that forgets the count */
};

struct gw_penalty {
    unsigned long count;
    unsigned long long last_ms;          /* time of the last failure */
    unsigned long long locked_until_ms;  /* 0: not locked */
};

/* Whether the key is locked out at now_ms. */
bool gw_penalty_locked(const struct gw_penalty_conf *conf, const struct gw_penalty *p,
                       unsigned long long now_ms);
/* Count a failure at now_ms. Returns the extra delay (ms) for answering
   it; *locked_r (may be NULL) is set when this failure started a lockout. */
long gw_penalty_fail(const struct gw_penalty_conf *conf, struct gw_penalty *p,
                     unsigned long long now_ms, bool *locked_r);
/* When the entry can be forgotten (for the table's expiry). */
unsigned long long gw_penalty_expires(const struct gw_penalty_conf *conf,
                                      const struct gw_penalty *p);

#endif
