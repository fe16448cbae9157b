/*
 * gatewayctl: talk to a running gatewayd through its admin sockets.
 *
 *   gatewayctl -c gateway.yaml COMMAND...     (reads admin.socket from the file)
 *   gatewayctl -s /run/gatewayd/admin COMMAND...
 *
 * The command goes to every worker ("<socket>.0", ".1", ...), since each
 * keeps its own view; answers are printed per worker. Exit status 0 when
 * every worker answered without "error:", 1 otherwise, 2 on usage errors.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "config.h"

#define CTL_TIMEOUT_MS 10000
#define CTL_MAX_WORKERS 64

/* Send cmd to one socket and print the answer up to the "." line.
   Returns 0 ok, 1 error answer, -1 cannot connect. */
static int ask(const char *path, const char *cmd, unsigned id, bool many)
{
    struct sockaddr_un sa;
    char buf[4096], line[1024];
    size_t ll = 0;
    int fd, rc = 0;

    memset(&sa, 0, sizeof(sa));
    sa.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sa.sun_path))
        return -1;
    strcpy(sa.sun_path, path);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    if (write(fd, cmd, strlen(cmd)) < 0 || write(fd, "\n", 1) < 0) {
        close(fd);
        return -1;
    }
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;

        if (poll(&p, 1, CTL_TIMEOUT_MS) <= 0) {
            fprintf(stderr, "gatewayctl: worker %u did not answer in time\n", id);
            rc = 1;
            break;
        }
        n = read(fd, buf, sizeof(buf));
        if (n <= 0) {
            rc = 1;
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] != '\n') {
                if (ll + 1 < sizeof(line))
                    line[ll++] = buf[i];
                continue;
            }
            line[ll] = '\0';
            ll = 0;
            if (strcmp(line, ".") == 0)
                goto done;
            if (strncmp(line, "error:", 6) == 0)
                rc = 1;
            if (many)
                printf("worker %u: %s\n", id, line);
            else
                printf("%s\n", line);
        }
    }
done:
    close(fd);
    return rc;
}

int main(int argc, char **argv)
{
    const char *file = NULL, *sock = NULL;
    struct gw_config *conf = NULL;
    char cmd[1024] = "";
    unsigned answered = 0;
    int opt, rc = 0;

    while ((opt = getopt(argc, argv, "c:s:h")) != -1) {
        if (opt == 'c')
            file = optarg;
        else if (opt == 's')
            sock = optarg;
        else {
            fprintf(stderr, "usage: gatewayctl (-c gateway.yaml | -s SOCKET) COMMAND...\n"
                            "commands: show | drain SERVER | undrain SERVER |\n"
                            "          switchover DATABASE SERVER | explain USER PROTOCOL\n");
            return opt == 'h' ? 0 : 2;
        }
    }
    if (optind >= argc || (file == NULL && sock == NULL)) {
        fprintf(stderr, "usage: gatewayctl (-c gateway.yaml | -s SOCKET) COMMAND...\n");
        return 2;
    }
    for (int i = optind; i < argc; i++) {
        if (strlen(cmd) + strlen(argv[i]) + 2 >= sizeof(cmd)) {
            fprintf(stderr, "gatewayctl: command too long\n");
            return 2;
        }
        if (i > optind)
            strcat(cmd, " ");
        strcat(cmd, argv[i]);
    }
    if (sock == NULL) {
        char *errors = NULL;
        FILE *f = fopen(file, "r");
        char *data = NULL;
        size_t len = 0;
        if (f == NULL) {
            fprintf(stderr, "gatewayctl: %s: %s\n", file, strerror(errno));
            return 2;
        }
        {
            FILE *m = open_memstream(&data, &len);
            int ch;
            while ((ch = fgetc(f)) != EOF)
                fputc(ch, m);
            fclose(m);
        }
        fclose(f);
        if (gw_config_parse(file, data, len, GW_CONFIG_NO_PLUGINS, &conf, &errors) < 0) {
            fprintf(stderr, "%s\n", errors != NULL ? errors : "configuration error");
            free(errors);
            free(data);
            return 2;
        }
        free(data);
        if (conf->admin_socket == NULL) {
            fprintf(stderr, "gatewayctl: %s has no admin.socket\n", file);
            gw_config_free(&conf);
            return 2;
        }
        sock = conf->admin_socket;
    }
    {
        unsigned nworkers = 0;
        char path[256];
        /* count the workers first so single-worker output stays plain */
        for (unsigned id = 0; id < CTL_MAX_WORKERS; id++) {
            snprintf(path, sizeof(path), "%s.%u", sock, id);
            if (access(path, F_OK) == 0)
                nworkers = id + 1;
        }
        for (unsigned id = 0; id < nworkers; id++) {
            int r;
            snprintf(path, sizeof(path), "%s.%u", sock, id);
            r = ask(path, cmd, id, nworkers > 1);
            if (r < 0) {
                fprintf(stderr, "gatewayctl: cannot reach worker %u at %s\n", id, path);
                rc = 1;
                continue;
            }
            answered++;
            if (r > 0)
                rc = 1;
        }
    }
    if (answered == 0) {
        fprintf(stderr, "gatewayctl: no gatewayd answers at %s.N\n", sock);
        rc = 1;
    }
    gw_config_free(&conf);
    return rc;
}
