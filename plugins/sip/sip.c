/*
 * SIP plugin: descriptor, configuration keys, per-worker start/stop.
 * What is answered to each request is in sip_session.c, transactions in
 * sip_txn.c, TCP/TLS framing in sip_stream.c, the parser in sip_parse.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "sip.h"

#define SIP_MS_SECOND 1000L
#define SIP_MS_HOUR (3600L * SIP_MS_SECOND)

static const struct gw_conf_key sip_conf_keys[] = {
    { "pilot_numbers", GW_CONF_STRING, offsetof(struct sip_conf, pilot_numbers), NULL, 0, 0,
      "comma-separated subscriber access numbers: redirected to any healthy server, round robin" },
    { "trusted_peers", GW_CONF_STRING, offsetof(struct sip_conf, trusted_peers), NULL, 0, 0,
      "comma-separated networks (CIDR) allowed to send requests; unset: everyone" },
    { "rate_limit", GW_CONF_INT, offsetof(struct sip_conf, rate_limit), "0", 0, 1000000,
      "requests per second accepted from one source address (0: no limit)" },
    { "alternative_contacts", GW_CONF_BOOL, offsetof(struct sip_conf, alternative_contacts),
      "false", 0, 0, "add Contacts with lower q-values for the other healthy copies' servers" },
    { "max_message", GW_CONF_SIZE, offsetof(struct sip_conf, max_message), "8k", 1024, 65535,
      "largest message accepted, headers and body; larger gets 513" },
    { "max_transactions", GW_CONF_INT, offsetof(struct sip_conf, max_transactions), "65536",
      16, 10000000, "server transactions kept per worker (retransmissions, ACK, CANCEL)" },
    { "retry_after", GW_CONF_DURATION, offsetof(struct sip_conf, retry_after), "30s",
      SIP_MS_SECOND, SIP_MS_HOUR, "Retry-After of 480/503 when nothing can take the call" },
    { "message_timeout", GW_CONF_DURATION, offsetof(struct sip_conf, message_timeout), "30s",
      SIP_MS_SECOND, SIP_MS_HOUR, "time to receive one whole message on TCP/TLS" },
    { "idle_timeout", GW_CONF_DURATION, offsetof(struct sip_conf, idle_timeout), "10m",
      SIP_MS_SECOND, 24 * SIP_MS_HOUR, "TCP/TLS connection without a message is closed" },
    GW_CONF_END,
};

/* A pilot number: what a Request-URI user part may be (RFC 3261 user
   characters, no escapes), so a typo is caught at configuration time. */
static bool pilot_ok(const char *s, size_t n)
{
    if (n == 0 || n >= SIP_PILOT_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];

        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              strchr("+-_.!~*'()&=$/?", c) != NULL))
            return false;
    }
    return true;
}

static int parse_pilots(struct sip_conf *conf, const char *list, const char **error_r)
{
    const char *p = list;

    conf->npilots = 0;
    while (*p != '\0') {
        const char *start, *end;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        start = p;
        while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        end = p;
        if (!pilot_ok(start, (size_t)(end - start))) {
            *error_r = "protocols.sip.pilot_numbers: each number must be 1-31 characters a "
                       "user part may hold (digits, letters, +-_.!~*'()&=$/?)";
            return -1;
        }
        if (conf->npilots == SIP_PILOTS_MAX) {
            *error_r = "protocols.sip.pilot_numbers: more than 64 numbers";
            return -1;
        }
        memcpy(conf->pilots[conf->npilots], start, (size_t)(end - start));
        conf->pilots[conf->npilots][end - start] = '\0';
        conf->npilots++;
    }
    return 0;
}

static int sip_configure(void *conf_v, const char **error_r)
{
    struct sip_conf *conf = conf_v;

    if (conf->pilot_numbers != NULL && parse_pilots(conf, conf->pilot_numbers, error_r) < 0)
        return -1;
    if (conf->trusted_peers != NULL && sip_trusted_parse(conf, conf->trusted_peers, error_r) < 0)
        return -1;
    /* One secret for every worker: a retransmission that another worker
       receives gets the same To-tag. */
    if (getrandom(conf->secret, sizeof(conf->secret), 0) != (ssize_t)sizeof(conf->secret)) {
        *error_r = "protocols.sip: no randomness for the To-tag secret";
        return -1;
    }
    return 0;
}

/* Nothing to do: the timer firing is what wakes the loop (see waker). */
static void sip_wake_cb(void *arg)
{
    (void)arg;
}

static int sip_start(struct gw_plugin_ctx *ctx)
{
    struct sip_worker *w = gw_calloc(1, sizeof(*w));

    w->ctx = ctx;
    w->conf = gw_plugin_conf(ctx);
    if (w->conf->rate_limit > 0)
        w->rates = gw_calloc(SIP_RATE_SLOTS, sizeof(*w->rates));
    /* a response copies at most the request's headers, plus our own */
    w->scratch_cap = 2 * (size_t)w->conf->max_message + SIP_REPLY_SLACK * (SIP_CONTACTS_MAX + 2);
    w->scratch = gw_malloc(w->scratch_cap);
    w->waker = gw_timer_create(sip_wake_cb, w);
    if (sip_txn_table_init(w) < 0) {
        gw_timer_destroy(&w->waker);
        free(w->scratch);
        free(w->rates);
        free(w);
        return -1;
    }
    gw_plugin_set_data(ctx, w);
    return 0;
}

static void sip_drain(struct gw_plugin_ctx *ctx)
{
    struct sip_worker *w = gw_plugin_data(ctx);

    if (w != NULL)
        sip_streams_drain(w);
}

static void sip_stop(struct gw_plugin_ctx *ctx)
{
    struct sip_worker *w = gw_plugin_data(ctx);

    if (w == NULL)
        return;
    sip_streams_destroy_all(w);
    sip_txn_table_deinit(w);
    gw_timer_destroy(&w->waker);
    gw_plugin_set_data(ctx, NULL);
    free(w->scratch);
    free(w->rates);
    free(w);
}

GW_EXPORT const struct gw_plugin gw_plugin = {
    .abi = GW_PLUGIN_ABI,
    .signature = GW_BUILD_SIGNATURE,
    .name = SIP_PROTOCOL,
    .conf_size = sizeof(struct sip_conf),
    .conf_keys = sip_conf_keys,
    .configure = sip_configure,
    .start = sip_start,
    .accept = sip_stream_accept,
    .stop = sip_stop,
    .datagram = sip_datagram,
    .drain = sip_drain,
};
