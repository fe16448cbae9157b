#include "plugin_loader.h"
#include "core.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int gw_plugin_load(const char *path, const char *expect_name,
                   const struct gw_plugin **plugin_r, void **handle_r, char **error_r)
{
    const struct gw_plugin *p;
    void *h;

    /* RTLD_NOW: an unresolved symbol must fail here, at load, not mid-session. */
    h = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (h == NULL) {
        *error_r = gw_strfmt("plugin %s: cannot load: %s", path, dlerror());
        return -1;
    }
    p = dlsym(h, "gw_plugin");
    if (p == NULL) {
        *error_r = gw_strfmt("plugin %s: no gw_plugin descriptor (not a gatewayd plugin)", path);
        goto fail;
    }
    if (p->abi != GW_PLUGIN_ABI) {
        *error_r = gw_strfmt("plugin %s: ABI %u, gatewayd expects %u", path, p->abi,
                             (unsigned)GW_PLUGIN_ABI);
        goto fail;
    }
    if (p->signature != GW_BUILD_SIGNATURE) {
        *error_r = gw_strfmt("plugin %s: build signature %u, gatewayd expects %u "
                             "(built for another word size or OpenSSL)",
                             path, p->signature, (unsigned)GW_BUILD_SIGNATURE);
        goto fail;
    }
    if (p->name == NULL || strcmp(p->name, expect_name) != 0) {
        *error_r = gw_strfmt("plugin %s: implements protocol \"%s\", configured as \"%s\"", path,
                             p->name != NULL ? p->name : "(none)", expect_name);
        goto fail;
    }
    if (p->accept == NULL && p->datagram == NULL) {
        *error_r = gw_strfmt("plugin %s: has neither accept nor datagram hook", path);
        goto fail;
    }
    *plugin_r = p;
    *handle_r = h;
    return 0;
fail:
    dlclose(h);
    return -1;
}

void gw_plugin_unload(void **handle)
{
    if (*handle != NULL)
        dlclose(*handle);
    *handle = NULL;
}
