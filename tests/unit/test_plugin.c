/*
 * A protocol plugin for the config loader's tests: "dummy", with one key of
 * each type. Built three ways:
 *   (default)             a valid plugin;
 *   -DDUMMY_BAD_ABI       its descriptor claims the next ABI number;
 *   -DDUMMY_NO_DESCRIPTOR no gw_plugin symbol at all.
 * It never calls into the core, so it loads into any executable.
 */
#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include "gateway/plugin.h"

#include "test_plugin.h"

static const struct gw_conf_key dummy_conf_keys[] = {
    {"flag", GW_CONF_BOOL, offsetof(struct dummy_conf, flag), "false", 0, 0, "a switch"},
    {"count", GW_CONF_INT, offsetof(struct dummy_conf, count), "3", 1, 100, "a number"},
    {"login_timeout", GW_CONF_DURATION, offsetof(struct dummy_conf, login_timeout), "30s", 1000,
     3600000, "a deadline"},
    {"max_line", GW_CONF_SIZE, offsetof(struct dummy_conf, max_line), "8k", 512, 1048576,
     "a limit"},
    {"greeting", GW_CONF_STRING, offsetof(struct dummy_conf, greeting), "hello", 0, 0, "a text"},
    {"banner", GW_CONF_STRING, offsetof(struct dummy_conf, banner), NULL, 0, 0, "no default"},
    /* Shared with the core's protocols.<name>.idle_timeout. */
    {"idle_timeout", GW_CONF_DURATION, offsetof(struct dummy_conf, idle_timeout), "10m", 1000,
     86400000, "shared"},
    GW_CONF_END,
};

static int dummy_configure(void *conf, const char **error_r)
{
    const struct dummy_conf *dc = conf;

    /* A cross-key rule, to test refusals by configure(). */
    if (dc->flag && dc->greeting != NULL && strcmp(dc->greeting, "forbidden") == 0) {
        *error_r = "greeting 'forbidden' is not allowed with flag";
        return -1;
    }
    return 0;
}

static void dummy_accept(struct gw_plugin_ctx *ctx, struct gw_conn *client)
{
    (void)ctx;
    (void)client;
}

/* Without the descriptor, the same struct under another name: the object
   is otherwise a perfectly normal library. */
#ifdef DUMMY_NO_DESCRIPTOR
#define DUMMY_DESCRIPTOR dummy_misnamed_descriptor
#else
#define DUMMY_DESCRIPTOR gw_plugin
#endif

GW_EXPORT const struct gw_plugin DUMMY_DESCRIPTOR = {
#ifdef DUMMY_BAD_ABI
    .abi = GW_PLUGIN_ABI + 1,
#else
    .abi = GW_PLUGIN_ABI,
#endif
    .signature = GW_BUILD_SIGNATURE,
    .name = "dummy",
    .conf_size = sizeof(struct dummy_conf),
    .conf_keys = dummy_conf_keys,
    .configure = dummy_configure,
    .accept = dummy_accept,
};
