/*
 * libFuzzer harness for the gateway.yaml loader (core/config.c and
 * core/config_yaml.c): any bytes must give either a configuration or a list
 * of FILE:LINE:COL errors, never a crash, a leak or a hang. Plugins are not
 * loaded (GW_CONFIG_NO_PLUGINS): dlopen is not what is being fuzzed.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct gw_config *conf = NULL;
    char *errors = NULL;

    if (gw_config_parse("fuzz.yaml", (const char *)data, size, GW_CONFIG_NO_PLUGINS, &conf,
                        &errors) == 0)
        gw_config_free(&conf);
    free(errors);
    return 0;
}
