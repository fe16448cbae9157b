/*
 * ldapbench: directory lookups per second through gatewayd's own directory
 * front and LDAP source (core/directory, core/ldap), on one libev loop like
 * a worker, without any protocol in front.
 *
 *   ldapbench -c gateway.yaml [-u PREFIX] [-w PASSPREFIX] [-n NUSERS]
 *             [-C CONCURRENCY] [-d SECONDS] [-W WARMUP_SECONDS]
 *
 * Lookup i authenticates <PREFIX><i mod n> with <PASSPREFIX><i mod n>;
 * CONCURRENCY lookups are outstanding at any time. Whether they are
 * "cached" or not is the configuration's auth.cache_ttl (0s: every lookup
 * is a search and a bind on slapd). Prints one line:
 *   lookups= errors= per_sec= p50_us= p99_us= elapsed=
 * Built by bench/ldap/run.py against <build>/libgwcore.a.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

#define MAX_SAMPLES 2000000u

struct slot {
    struct gw_lookup *l;
    double started;
    unsigned idx;
};

static const char *prefix = "user", *pwprefix = "pw";
static unsigned nusers = 50, concurrency = 16, next_user;
static double seconds = 5, warmup = 1;
static bool measuring, stopping;
static unsigned long done_count, errors;
static double *samples;
static size_t nsamples;
static struct slot *slots;
static ev_timer phase;

static void start_one(struct slot *s);

static void lookup_cb(void *arg, enum gw_auth_result res, const struct gw_mailbox *m)
{
    struct slot *s = arg;
    double t = ev_time();

    (void)m;
    s->l = NULL;
    if (measuring) {
        done_count++;
        if (res != GW_AUTH_OK) {
            if (errors < 5)
                fprintf(stderr, "ldapbench: %s%u: %s\n", prefix, s->idx, gw_auth_result_str(res));
            errors++;
        }
        if (nsamples < MAX_SAMPLES)
            samples[nsamples++] = t - s->started;
    }
    if (!stopping)
        start_one(s);
}

static void start_one(struct slot *s)
{
    char user[128], pw[128];

    s->idx = next_user++ % nusers;
    snprintf(user, sizeof(user), "%s%u", prefix, s->idx);
    snprintf(pw, sizeof(pw), "%s%u", pwprefix, s->idx);
    s->started = ev_time();
    s->l = gw_authenticate(NULL, user, pw, lookup_cb, s);
}

static void phase_cb(struct ev_loop *loop, ev_timer *w, int revents)
{
    (void)w;
    (void)revents;
    if (!measuring) {
        measuring = true;
        ev_timer_set(&phase, seconds, 0);
        ev_timer_start(loop, &phase);
        return;
    }
    stopping = true;
    ev_break(loop, EVBREAK_ALL);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;

    return x < y ? -1 : x > y;
}

static char *read_all(const char *file, size_t *len_r)
{
    FILE *f = fopen(file, "rb");
    char *buf;
    long n;

    if (f == NULL || fseek(f, 0, SEEK_END) != 0 || (n = ftell(f)) < 0) {
        perror(file);
        exit(2);
    }
    rewind(f);
    buf = gw_malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        perror(file);
        exit(2);
    }
    fclose(f);
    buf[n] = '\0';
    *len_r = (size_t)n;
    return buf;
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    struct gw_config *conf = NULL;
    char *errs = NULL, *data;
    size_t len;
    double t0, elapsed;
    int opt;

    while ((opt = getopt(argc, argv, "c:u:w:n:C:d:W:")) != -1) {
        switch (opt) {
        case 'c': file = optarg; break;
        case 'u': prefix = optarg; break;
        case 'w': pwprefix = optarg; break;
        case 'n': nusers = (unsigned)atoi(optarg); break;
        case 'C': concurrency = (unsigned)atoi(optarg); break;
        case 'd': seconds = atof(optarg); break;
        case 'W': warmup = atof(optarg); break;
        default:
            fprintf(stderr, "usage: ldapbench -c gateway.yaml [-u P] [-w P] [-n N] [-C N] "
                            "[-d S] [-W S]\n");
            return 2;
        }
    }
    if (file == NULL || nusers == 0 || concurrency == 0)
        return 2;
    gw_log_init(GW_LOG_WARN, "ldapbench");
    data = read_all(file, &len);
    if (gw_config_parse(file, data, len, GW_CONFIG_NO_PLUGINS, &conf, &errs) < 0) {
        fprintf(stderr, "%s\n", errs);
        return 2;
    }
    free(data);
    gw_w.loop = ev_default_loop(0);
    gw_w.conf = conf;
    if (gw_directory_init(conf, &errs) < 0) {
        fprintf(stderr, "ldapbench: %s\n", errs);
        return 2;
    }
    samples = gw_calloc(MAX_SAMPLES, sizeof(*samples));
    slots = gw_calloc(concurrency, sizeof(*slots));
    for (unsigned i = 0; i < concurrency; i++)
        start_one(&slots[i]);
    ev_timer_init(&phase, phase_cb, warmup, 0);
    ev_timer_start(gw_w.loop, &phase);
    t0 = ev_time();
    ev_run(gw_w.loop, 0);
    elapsed = ev_time() - t0 - warmup;
    for (unsigned i = 0; i < concurrency; i++)
        gw_lookup_cancel(&slots[i].l);
    qsort(samples, nsamples, sizeof(*samples), cmp_double);
    printf("lookups=%lu errors=%lu per_sec=%.0f p50_us=%.0f p99_us=%.0f elapsed=%.2f\n",
           done_count, errors, (double)done_count / elapsed,
           nsamples ? samples[nsamples / 2] * 1e6 : 0.0,
           nsamples ? samples[nsamples * 99 / 100] * 1e6 : 0.0, elapsed);
    gw_directory_deinit();
    gw_config_free(&conf);
    free(samples);
    free(slots);
    return errors > 0 ? 1 : 0;
}
