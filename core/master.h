#ifndef GW_CORE_MASTER_H
#define GW_CORE_MASTER_H

#include "core.h"

/* Fork the workers and supervise them until SIGTERM/SIGINT; SIGHUP reloads
   `file`. Takes ownership of conf and ls. Returns the process exit code. */
int gw_master_run(const char *file, struct gw_config *conf, struct gw_listener *ls, size_t nls);

#endif
