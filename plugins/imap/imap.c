/*
 * IMAP plugin: descriptor, configuration keys, per-worker start/stop.
 * The session state machine is in imap_session.c, the parser in
 * imap_parse.c.
 */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "gateway/gateway.h"
#include "imap.h"
#include "imap_parse.h"

#define IMAP_MS_SECOND 1000L
#define IMAP_MS_MINUTE (60L * IMAP_MS_SECOND)
#define IMAP_MS_HOUR (60L * IMAP_MS_MINUTE)
#define IMAP_MS_DAY (24L * IMAP_MS_HOUR)

static const struct gw_conf_key imap_conf_keys[] = {
    { "greeting", GW_CONF_STRING, offsetof(struct imap_conf, greeting), IMAP_DEFAULT_GREETING, 0,
      0, "text of the greeting: \"* OK [CAPABILITY ...] <greeting>\"" },
    { "login_timeout", GW_CONF_DURATION, offsetof(struct imap_conf, login_timeout), "60s",
      IMAP_MS_SECOND, IMAP_MS_HOUR, "time from connect until logged in, else disconnected" },
    { "backend_timeout", GW_CONF_DURATION, offsetof(struct imap_conf, backend_timeout), "30s",
      IMAP_MS_SECOND, 10 * IMAP_MS_MINUTE, "time for each step of the backend login" },
    /* Shared with the core (same YAML value); declared here for its IMAP
       default: RFC 3501 5.4 wants at least 30 minutes, IDLE clients renew
       every 29. */
    { "idle_timeout", GW_CONF_DURATION, offsetof(struct imap_conf, idle_timeout), "31m",
      IMAP_MS_SECOND, IMAP_MS_DAY, "a logged-in session silent this long is closed" },
    { "max_bad_commands", GW_CONF_INT, offsetof(struct imap_conf, max_bad_commands), "10", 1, 100,
      "bad commands before disconnect" },
    { "max_line", GW_CONF_SIZE, offsetof(struct imap_conf, max_line), "8192", 512, 8192,
      "longest command line in octets, CRLF included (RFC 7162 suggests 8192)" },
    { "max_literal", GW_CONF_SIZE, offsetof(struct imap_conf, max_literal), "4096", 256, 8192,
      "longest literal before login (user names, passwords, ID values)" },
    { "max_tag", GW_CONF_SIZE, offsetof(struct imap_conf, max_tag), "64", 8, 1024,
      "longest command tag in octets" },
    { "forward", GW_CONF_STRING, offsetof(struct imap_conf, forward), "id", 0, 0,
      "how backends learn the client address in IMAP: id (IMAP ID x-originating-ip) or none "
      "(the PROXY protocol is proxy_protocol on the server's imap service)" },
    { "referral", GW_CONF_BOOL, offsetof(struct imap_conf, referral), "false", 0, 0,
      "refer clients of mailboxes in other sites with an external_url (RFC 2221)" },
    { "master_user", GW_CONF_STRING, offsetof(struct imap_conf, master_user), NULL, 0, 0,
      "log in to backends as <user><master_separator><master_user>" },
    { "master_password", GW_CONF_STRING, offsetof(struct imap_conf, master_password), NULL, 0, 0,
      "the master user's password" },
    { "master_separator", GW_CONF_STRING, offsetof(struct imap_conf, master_separator), "*", 0, 0,
      "separator of user and master user (Dovecot's auth_master_user_separator)" },
    GW_CONF_END,
};

static const char *const imap_forward_names[] = {
    [IMAP_FORWARD_ID] = "id",
    [IMAP_FORWARD_NONE] = "none",
};

enum imap_forward imap_conf_forward(const struct imap_conf *conf)
{
    for (size_t i = 0; i < sizeof(imap_forward_names) / sizeof(imap_forward_names[0]); i++) {
        if (conf->forward != NULL && strcmp(conf->forward, imap_forward_names[i]) == 0)
            return (enum imap_forward)i;
    }
    return IMAP_FORWARD_ID;
}

static bool imap_has_ctl_or_space(const char *s)
{
    for (size_t i = 0; s[i] != '\0'; i++) {
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return true;
    }
    return false;
}

static int imap_configure(void *conf_v, const char **error_r)
{
    const struct imap_conf *conf = conf_v;
    const char *g = conf->greeting;
    bool forward_ok = false;

    if (g != NULL) {
        if (strlen(g) > IMAP_GREETING_MAX) {
            *error_r = "greeting: longer than 200 characters";
            return -1;
        }
        for (size_t i = 0; g[i] != '\0'; i++) {
            if ((unsigned char)g[i] < 0x20 || g[i] == 0x7f) {
                *error_r = "greeting: must not contain control characters";
                return -1;
            }
        }
    }
    for (size_t i = 0; i < sizeof(imap_forward_names) / sizeof(imap_forward_names[0]); i++) {
        if (conf->forward != NULL && strcmp(conf->forward, imap_forward_names[i]) == 0)
            forward_ok = true;
    }
    if (conf->forward != NULL && strcmp(conf->forward, "proxy") == 0) {
        *error_r = "forward: proxy is now set per backend: proxy_protocol: true on the imap "
                   "service of each server whose listener expects it (and forward: none)";
        return -1;
    }
    if (!forward_ok) {
        *error_r = "forward: must be id or none";
        return -1;
    }
    if ((conf->master_user != NULL) != (conf->master_password != NULL)) {
        *error_r = "master_user and master_password go together";
        return -1;
    }
    if (conf->master_user != NULL) {
        if (conf->master_user[0] == '\0' || imap_has_ctl_or_space(conf->master_user) ||
            strlen(conf->master_user) > IMAP_USER_MAX / 2) {
            *error_r = "master_user: must be a non-empty name without spaces or control "
                       "characters";
            return -1;
        }
        if (conf->master_separator == NULL || conf->master_separator[0] == '\0' ||
            imap_has_ctl_or_space(conf->master_separator) || strlen(conf->master_separator) > 8) {
            *error_r = "master_separator: must be 1 to 8 characters without spaces";
            return -1;
        }
        if (conf->master_password[0] == '\0' ||
            strlen(conf->master_password) > IMAP_PASSWORD_MAX ||
            strpbrk(conf->master_password, "\r\n") != NULL) {
            *error_r = "master_password: must be 1 to 1024 characters on one line";
            return -1;
        }
    }
    return 0;
}

static int imap_start(struct gw_plugin_ctx *ctx)
{
    struct imap_worker *w = gw_calloc(1, sizeof(*w));
    struct imap_slice def = { IMAP_DEFAULT_BACKEND_CAPS, sizeof(IMAP_DEFAULT_BACKEND_CAPS) - 1 };

    (void)imap_caps_prelogin(def, w->caps, sizeof(w->caps));
    gw_plugin_set_data(ctx, w);
    return 0;
}

static void imap_stop(struct gw_plugin_ctx *ctx)
{
    struct imap_worker *w = gw_plugin_data(ctx);

    if (w == NULL)
        return;
    imap_sessions_destroy_all(w);
    gw_plugin_set_data(ctx, NULL);
    free(w);
}

GW_EXPORT const struct gw_plugin gw_plugin = {
    .abi = GW_PLUGIN_ABI,
    .signature = GW_BUILD_SIGNATURE,
    .name = IMAP_PROTOCOL,
    .conf_size = sizeof(struct imap_conf),
    .conf_keys = imap_conf_keys,
    .configure = imap_configure,
    .start = imap_start,
    .accept = imap_session_accept,
    .stop = imap_stop,
    .flags = GW_PLUGIN_SERVER_FIRST,
    .alpn = "imap",
};
