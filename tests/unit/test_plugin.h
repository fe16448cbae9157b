/* The configuration struct of the "dummy" test plugin (test_plugin.c). */
#ifndef GW_TEST_PLUGIN_H
#define GW_TEST_PLUGIN_H

#include <stdbool.h>

struct dummy_conf {
    bool flag;
    long count;
    long login_timeout;   /* ms */
    long max_line;        /* bytes */
    char *greeting;
    char *banner;
    long idle_timeout;    /* ms */
};

#endif
