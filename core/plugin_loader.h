/* Loading protocol plugins with dlopen(), refusing any that do not fit. */
#ifndef GW_CORE_PLUGIN_LOADER_H
#define GW_CORE_PLUGIN_LOADER_H

#include "gateway/plugin.h"

/*
 * Load the shared object at `path` and check its descriptor: present,
 * same ABI number and build signature as this gatewayd, name equal to
 * `expect_name`. Returns 0 with *plugin_r and *handle_r, or -1 with
 * *error_r, a malloc'ed message naming the file ("plugin ./pop.so: ABI 2,
 * gatewayd expects 1").
 */
int gw_plugin_load(const char *path, const char *expect_name,
                   const struct gw_plugin **plugin_r, void **handle_r, char **error_r);
void gw_plugin_unload(void **handle);

#endif
