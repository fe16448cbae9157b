/* Health checks of every (server, service) pair, per worker. */
#ifndef GW_CORE_HEALTH_H
#define GW_CORE_HEALTH_H

#include <stdbool.h>

#include "../config.h"

/* Start probing (when locator.health.enabled) / stop and free. */
void gw_health_start(const struct gw_config *conf);
void gw_health_stop(void);
/* Whether the service is up as far as the probes know (true when
   unchecked). */
bool gw_health_up(const struct gw_conf_server *srv, const char *protocol);
/* A word for operators: "up", "not checked", or why it is down. */
const char *gw_health_detail(const struct gw_conf_server *srv, const char *protocol);

#endif
