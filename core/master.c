/*
 * The master process: owns the configuration and the listening sockets,
 * forks the workers, restarts a worker that dies, and on SIGTERM/SIGINT
 * tells the workers to drain and waits for them (bounded).
 *
 * It runs no event loop: signals are blocked and taken synchronously with
 * sigtimedwait(), which keeps this process trivially correct.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "core.h"
#include "master.h"

#define GW_MAX_WORKERS 64
#define GW_RESPAWN_MIN_MS 1000   /* a worker that keeps dying is restarted at most this often */

struct worker_slot {
    pid_t pid;
    unsigned long long started_ms;
};

static unsigned long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
}

static pid_t spawn(struct gw_config *conf, struct gw_listener *ls, size_t nls, unsigned id,
                   const sigset_t *oldmask)
{
    pid_t pid;

    fflush(NULL);
    pid = fork();

    if (pid < 0) {
        gw_log(GW_LOG_ERROR, NULL, "fork: %s", strerror(errno));
        return -1;
    }
    if (pid == 0) {
        int rc;
        sigprocmask(SIG_SETMASK, oldmask, NULL);
        rc = gw_worker_run(conf, ls, nls, id);
        /* exit(), not _exit(): leak checkers and OpenSSL's cleanup run at
           exit, and the master flushed its stdio before forking. */
        exit(rc);
    }
    return pid;
}

int gw_master_run(struct gw_config *conf, struct gw_listener *ls, size_t nls)
{
    struct worker_slot slots[GW_MAX_WORKERS];
    sigset_t set, oldmask;
    long nworkers = conf->workers;
    bool stopping = false;
    unsigned long long stop_deadline = 0;
    int exit_code = 0;

    if (nworkers <= 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        nworkers = ncpu > 0 ? ncpu : 1;
    }
    if (nworkers > GW_MAX_WORKERS)
        nworkers = GW_MAX_WORKERS;
    memset(slots, 0, sizeof(slots));

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &oldmask);
    signal(SIGPIPE, SIG_IGN);

    for (long i = 0; i < nworkers; i++) {
        slots[i].pid = spawn(conf, ls, nls, (unsigned)i, &oldmask);
        slots[i].started_ms = mono_ms();
    }
    gw_log(GW_LOG_INFO, NULL, "gatewayd %s started: %ld worker(s), %zu listener(s)", GW_VERSION,
           nworkers, nls);

    for (;;) {
        struct timespec ts = {0, 200 * 1000000L};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);
        long alive = 0;
        pid_t pid;
        int status;

        if (sig == SIGTERM || sig == SIGINT) {
            if (!stopping) {
                stopping = true;
                stop_deadline = mono_ms() + (unsigned long long)conf->shutdown_timeout + 2000ull;
                gw_log(GW_LOG_INFO, NULL, "%s: stopping workers", sig == SIGTERM ? "SIGTERM" : "SIGINT");
                for (long i = 0; i < nworkers; i++)
                    if (slots[i].pid > 0)
                        kill(slots[i].pid, SIGTERM);
            }
        } else if (sig == SIGHUP) {
            gw_log(GW_LOG_WARN, NULL, "SIGHUP: configuration reload is not supported yet; "
                                      "restart gatewayd to apply changes");
        }

        /* Reap whatever exited. */
        while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
            for (long i = 0; i < nworkers; i++) {
                if (slots[i].pid != pid)
                    continue;
                slots[i].pid = 0;
                if (!stopping) {
                    if (WIFSIGNALED(status))
                        gw_log(GW_LOG_ERROR, NULL, "worker %ld (pid %d) killed by signal %d", i,
                               (int)pid, WTERMSIG(status));
                    else
                        gw_log(GW_LOG_ERROR, NULL, "worker %ld (pid %d) exited with status %d", i,
                               (int)pid, WEXITSTATUS(status));
                } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                    exit_code = 1;
                }
            }
        }

        for (long i = 0; i < nworkers; i++) {
            if (slots[i].pid > 0) {
                alive++;
            } else if (!stopping && mono_ms() - slots[i].started_ms >= GW_RESPAWN_MIN_MS) {
                slots[i].pid = spawn(conf, ls, nls, (unsigned)i, &oldmask);
                slots[i].started_ms = mono_ms();
                if (slots[i].pid > 0)
                    alive++;
            }
        }
        if (stopping && alive == 0)
            break;
        if (stopping && mono_ms() > stop_deadline) {
            gw_log(GW_LOG_ERROR, NULL, "workers did not stop in time: killing them");
            for (long i = 0; i < nworkers; i++)
                if (slots[i].pid > 0)
                    kill(slots[i].pid, SIGKILL);
            stop_deadline = mono_ms() + 5000;
            exit_code = 1;
        }
    }
    gw_log(GW_LOG_INFO, NULL, "gatewayd stopped");
    return exit_code;
}
