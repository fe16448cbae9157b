/* gatewayd: command line, configuration check, start. */
#include <getopt.h>
#include <sys/resource.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"
#include "master.h"

/* Each session holds two sockets (and a pipe pair during bulk transfers):
   the default soft limit of 1024 descriptors would cap a worker at a few
   hundred sessions. Raise it to the hard limit, as nginx's
   worker_rlimit_nofile does. */
static void raise_fd_limit(void)
{
    struct rlimit rl;

    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static void usage(FILE *f)
{
    fprintf(f, "usage: gatewayd [-t] -c FILE\n"
               "  -c FILE  configuration (gateway.yaml)\n"
               "  -t       check the configuration and plugins, then exit (0 ok, 1 errors)\n"
               "  -V       print the version\n");
}

int main(int argc, char **argv)
{
    const char *file = NULL;
    bool test_only = false;
    struct gw_config *conf = NULL;
    struct gw_listener *ls = NULL;
    size_t nls = 0;
    char *errors = NULL;
    int opt, rc;

    while ((opt = getopt(argc, argv, "c:thV")) != -1) {
        switch (opt) {
        case 'c':
            file = optarg;
            break;
        case 't':
            test_only = true;
            break;
        case 'V':
            printf("gatewayd %s\n", GW_VERSION);
            return 0;
        case 'h':
            usage(stdout);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (file == NULL || optind != argc) {
        usage(stderr);
        return 2;
    }
    gw_log_init(GW_LOG_INFO, "master");
    if (gw_config_load(file, &conf, &errors) < 0) {
        fprintf(stderr, "%s\n", errors != NULL ? errors : "configuration error");
        free(errors);
        return 1;
    }
    gw_log_init(conf->log_level, "master");
    raise_fd_limit();

    if (test_only) {
        /* Certificates and keys must load, as they will at start. */
        size_t total = 0;
        for (size_t i = 0; i < conf->nprotocols; i++)
            total += conf->protocols[i].nlisteners;
        ls = gw_calloc(total, sizeof(*ls));
        for (size_t i = 0; i < conf->nprotocols; i++)
            for (size_t j = 0; j < conf->protocols[i].nlisteners; j++) {
                ls[nls].conf = &conf->protocols[i].listeners[j];
                ls[nls].proto = &conf->protocols[i];
                nls++;
            }
        rc = gw_listeners_tls(ls, nls, file, &errors);
        if (rc < 0) {
            fprintf(stderr, "%s\n", errors);
            free(errors);
        } else {
            printf("%s: configuration ok\n", file);
        }
        for (size_t i = 0; i < nls; i++)
            gw_tls_server_ctx_free(ls[i].ssl_ctx);
        free(ls);
        gw_config_free(&conf);
        return rc < 0 ? 1 : 0;
    }

    if (gw_listeners_open(conf, NULL, 0, &ls, &nls, &errors) < 0 ||
        gw_listeners_tls(ls, nls, file, &errors) < 0) {
        fprintf(stderr, "%s\n", errors);
        free(errors);
        gw_config_free(&conf);
        return 1;
    }
    rc = gw_master_run(file, conf, ls, nls);
    return rc;
}
