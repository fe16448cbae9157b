/*
 * POP3 plugin: descriptor, configuration keys, per-worker start/stop.
 * The session state machine is in pop_session.c, the parser in pop_parse.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "pop.h"

#define POP_MS_SECOND 1000L
#define POP_MS_HOUR (3600L * POP_MS_SECOND)

static const struct gw_conf_key pop_conf_keys[] = {
    { "greeting", GW_CONF_STRING, offsetof(struct pop_conf, greeting), POP_DEFAULT_GREETING, 0, 0,
      "text of the greeting: \"+OK <greeting> ready.\"" },
    { "login_timeout", GW_CONF_DURATION, offsetof(struct pop_conf, login_timeout), "60s",
      POP_MS_SECOND, POP_MS_HOUR, "time from connect until logged in, else disconnected" },
    { "backend_timeout", GW_CONF_DURATION, offsetof(struct pop_conf, backend_timeout), "30s",
      POP_MS_SECOND, 10 * 60 * POP_MS_SECOND, "time for each step of the backend login" },
    { "max_bad_commands", GW_CONF_INT, offsetof(struct pop_conf, max_bad_commands), "10", 1, 100,
      "bad commands before disconnect" },
    { "max_line", GW_CONF_SIZE, offsetof(struct pop_conf, max_line), "255", 64, 8192,
      "longest command line in octets, CRLF included (RFC 2449: 255)" },
    { "max_sasl_line", GW_CONF_SIZE, offsetof(struct pop_conf, max_sasl_line), "2048", 256,
      POP_SASL_LINE_LIMIT, "longest AUTH continuation line in octets, CRLF included" },
    { "xclient", GW_CONF_BOOL, offsetof(struct pop_conf, xclient), "false", 0, 0,
      "send XCLIENT ADDR/PORT to backends that offer it (Dovecot login_trusted_networks)" },
    GW_CONF_END,
};

static int pop_configure(void *conf_v, const char **error_r)
{
    const struct pop_conf *conf = conf_v;
    const char *g = conf->greeting;
    size_t i;

    if (g == NULL)
        return 0;   /* the default applies */
    if (strlen(g) > POP_GREETING_MAX) {
        *error_r = "greeting: longer than 200 characters";
        return -1;
    }
    for (i = 0; g[i] != '\0'; i++) {
        if ((unsigned char)g[i] < 0x20 || g[i] == 0x7f) {
            *error_r = "greeting: must not contain control characters";
            return -1;
        }
    }
    return 0;
}

static int pop_start(struct gw_plugin_ctx *ctx)
{
    struct pop_worker *w = gw_calloc(1, sizeof(*w));

    gw_plugin_set_data(ctx, w);
    return 0;
}

static void pop_stop(struct gw_plugin_ctx *ctx)
{
    struct pop_worker *w = gw_plugin_data(ctx);

    if (w == NULL)
        return;
    pop_sessions_destroy_all(w);
    gw_plugin_set_data(ctx, NULL);
    free(w);
}

GW_EXPORT const struct gw_plugin gw_plugin = {
    .abi = GW_PLUGIN_ABI,
    .signature = GW_BUILD_SIGNATURE,
    .name = POP_PROTOCOL,
    .conf_size = sizeof(struct pop_conf),
    .conf_keys = pop_conf_keys,
    .configure = pop_configure,
    .start = pop_start,
    .accept = pop_session_accept,
    .stop = pop_stop,
    /* The backend greets first: the core fails over a backend that accepts
       but never greets, and GW_EV_CONNECTED comes with the greeting. */
    .flags = GW_PLUGIN_SERVER_FIRST,
    .alpn = "pop3",
};
