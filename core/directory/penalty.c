/* Failed-login penalties: see penalty.h. */
#include <string.h>

#include "penalty.h"

bool gw_penalty_locked(const struct gw_penalty_conf *conf, const struct gw_penalty *p,
                       unsigned long long now_ms)
{
    (void)conf;
    return p->locked_until_ms > now_ms;
}

long gw_penalty_fail(const struct gw_penalty_conf *conf, struct gw_penalty *p,
                     unsigned long long now_ms, bool *locked_r)
{
    long d;

    if (locked_r != NULL)
        *locked_r = false;
    /* A quiet spell forgets the past, but never shortens a lockout. */
    if (p->count > 0 && now_ms >= p->last_ms + (unsigned long long)conf->window &&
        p->locked_until_ms <= now_ms)
        memset(p, 0, sizeof(*p));
    p->count++;
    p->last_ms = now_ms;
    if (conf->lockout > 0 && p->count >= (unsigned long)conf->lockout &&
        p->locked_until_ms <= now_ms) {
        p->locked_until_ms = now_ms + (unsigned long long)conf->lockout_time;
        if (locked_r != NULL)
            *locked_r = true;
    }
    if (conf->after <= 0 || p->count < (unsigned long)conf->after)
        return 0;
    d = conf->delay;
    for (unsigned long i = (unsigned long)conf->after; i < p->count && d < conf->max_delay; i++)
        d *= 2;
    return d > conf->max_delay ? conf->max_delay : d;
}

unsigned long long gw_penalty_expires(const struct gw_penalty_conf *conf,
                                      const struct gw_penalty *p)
{
    unsigned long long t = p->last_ms + (unsigned long long)conf->window;

    return p->locked_until_ms > t ? p->locked_until_ms : t;
}
