/*
 * The master process: owns the configuration and the listening sockets,
 * forks the workers, restarts a worker that dies, reloads on SIGHUP, and on
 * SIGTERM/SIGINT tells the workers to drain and waits for them (bounded).
 *
 * It runs no event loop: signals are blocked and taken synchronously with
 * sigtimedwait(), which keeps this process trivially correct.
 *
 * Reload: the new gateway.yaml is read and checked completely first; if it
 * has any error the running generation stays and the errors are logged. If
 * it is good, a new generation of workers starts on the listeners (sockets
 * with an unchanged address are shared, not bound again, so no connection
 * is refused in between) and the old workers are told to drain: no
 * established session is dropped by a reload.
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
#define GW_MAX_RETIRED 256       /* old workers still draining after reloads */
#define GW_RESPAWN_MIN_MS 1000   /* a worker that keeps dying is restarted at most this often */

/* One configuration with its sockets and the workers serving it. */
struct generation {
    struct gw_config *conf;
    struct gw_listener *ls;
    size_t nls;
    long alive;                 /* workers of this generation still running */
    struct generation *next;    /* older generations, still draining */
};

struct worker_slot {
    pid_t pid;
    unsigned long long started_ms;
    struct generation *gen;
};

static struct generation *current, *retired_gens;
static struct worker_slot slots[GW_MAX_WORKERS];
static struct worker_slot retired[GW_MAX_RETIRED];
static long nworkers;
static sigset_t oldmask;

static unsigned long long mono_ms(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (unsigned long long)ts.tv_sec * 1000ull + (unsigned long long)ts.tv_nsec / 1000000ull;
}

static void spawn(struct worker_slot *slot, struct generation *gen, unsigned id)
{
    pid_t pid;

    fflush(NULL);
    slot->started_ms = mono_ms();
    slot->gen = gen;
    pid = fork();
    if (pid < 0) {
        gw_log(GW_LOG_ERROR, NULL, "fork: %s", strerror(errno));
        slot->pid = 0;
        return;
    }
    if (pid == 0) {
        int rc;
        sigprocmask(SIG_SETMASK, &oldmask, NULL);
        rc = gw_worker_run(gen->conf, gen->ls, gen->nls, id);
        /* exit(), not _exit(): leak checkers and OpenSSL's cleanup run at
           exit, and the master flushed its stdio before forking. */
        exit(rc);
    }
    slot->pid = pid;
    gen->alive++;
}

static void generation_free(struct generation **genp)
{
    struct generation *gen = *genp;

    gw_listeners_close(&gen->ls, gen->nls);
    gw_config_free(&gen->conf);
    free(gen);
    *genp = NULL;
}

static long workers_wanted(const struct gw_config *conf)
{
    long n = conf->workers;

    if (n <= 0) {
        long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
        n = ncpu > 0 ? ncpu : 1;
    }
    return n > GW_MAX_WORKERS ? GW_MAX_WORKERS : n;
}

static void reload(const char *file)
{
    struct generation *gen;
    struct gw_config *conf = NULL;
    struct gw_listener *ls = NULL;
    size_t nls = 0;
    char *errors = NULL;
    long n;

    gw_log(GW_LOG_INFO, NULL, "SIGHUP: reloading %s", file);
    if (gw_config_load(file, &conf, &errors) < 0) {
        char *save = NULL;
        gw_log(GW_LOG_ERROR, NULL, "reload refused, keeping the running configuration");
        for (char *line = strtok_r(errors, "\n", &save); line != NULL;
             line = strtok_r(NULL, "\n", &save))
            gw_log(GW_LOG_ERROR, NULL, "%s", line);
        free(errors);
        return;
    }
    if (gw_listeners_open(conf, current->ls, current->nls, &ls, &nls, &errors) < 0 ||
        gw_listeners_tls(ls, nls, file, &errors) < 0) {
        gw_log(GW_LOG_ERROR, NULL, "reload refused, keeping the running configuration: %s",
               errors != NULL ? errors : "?");
        free(errors);
        gw_listeners_close(&ls, nls);
        gw_config_free(&conf);
        return;
    }
    gen = gw_calloc(1, sizeof(*gen));
    gen->conf = conf;
    gen->ls = ls;
    gen->nls = nls;

    /* Retire the running workers: they drain while the new ones serve. */
    for (long i = 0; i < nworkers; i++) {
        if (slots[i].pid <= 0)
            continue;
        for (size_t k = 0; k < GW_MAX_RETIRED; k++) {
            if (retired[k].pid == 0) {
                retired[k] = slots[i];
                break;
            }
        }
        kill(slots[i].pid, SIGTERM);
        slots[i].pid = 0;
    }
    /* The old generation's sockets that the new one did not take over are
       closed here and by its draining workers, so the kernel stops
       completing handshakes on addresses nobody will serve any more. */
    for (size_t i = 0; i < current->nls; i++) {
        bool kept = false;
        for (size_t j = 0; j < nls; j++)
            if (ls[j].conf->udp == current->ls[i].conf->udp &&
                ls[j].conf->addrlen == current->ls[i].conf->addrlen &&
                memcmp(&ls[j].conf->addr, &current->ls[i].conf->addr, ls[j].conf->addrlen) == 0)
                kept = true;
        if (!kept && current->ls[i].fd >= 0) {
            close(current->ls[i].fd);
            current->ls[i].fd = -1;
        }
    }
    current->next = retired_gens;
    retired_gens = current;
    current = gen;

    n = workers_wanted(conf);
    for (long i = 0; i < n; i++)
        spawn(&slots[i], current, (unsigned)i);
    nworkers = n;
    gw_log_init(conf->log_level, "master");
    gw_log(GW_LOG_INFO, NULL, "reloaded: %ld worker(s), %zu listener(s)", n, nls);
}

/* Free the generations none of whose workers is left. */
static void collect_generations(void)
{
    struct generation **pp = &retired_gens;

    while (*pp != NULL) {
        if ((*pp)->alive == 0) {
            struct generation *dead = *pp;
            *pp = dead->next;
            generation_free(&dead);
        } else {
            pp = &(*pp)->next;
        }
    }
}

static void reaped(pid_t pid, int status, bool stopping, int *exit_code)
{
    for (long i = 0; i < nworkers; i++) {
        if (slots[i].pid != pid)
            continue;
        slots[i].pid = 0;
        slots[i].gen->alive--;
        if (!stopping) {
            if (WIFSIGNALED(status))
                gw_log(GW_LOG_ERROR, NULL, "worker %ld (pid %d) killed by signal %d", i, (int)pid,
                       WTERMSIG(status));
            else
                gw_log(GW_LOG_ERROR, NULL, "worker %ld (pid %d) exited with status %d", i,
                       (int)pid, WEXITSTATUS(status));
        } else if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
            *exit_code = 1;
        }
        return;
    }
    for (size_t k = 0; k < GW_MAX_RETIRED; k++) {
        if (retired[k].pid == pid) {
            retired[k].pid = 0;
            retired[k].gen->alive--;
            if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                gw_log(GW_LOG_WARN, NULL, "retired worker (pid %d) ended abnormally", (int)pid);
            return;
        }
    }
}

static void signal_all(int sig)
{
    for (long i = 0; i < nworkers; i++)
        if (slots[i].pid > 0)
            kill(slots[i].pid, sig);
    for (size_t k = 0; k < GW_MAX_RETIRED; k++)
        if (retired[k].pid > 0)
            kill(retired[k].pid, sig);
}

int gw_master_run(const char *file, struct gw_config *conf, struct gw_listener *ls, size_t nls)
{
    sigset_t set;
    bool stopping = false;
    unsigned long long stop_deadline = 0;
    int exit_code = 0;

    current = gw_calloc(1, sizeof(*current));
    current->conf = conf;
    current->ls = ls;
    current->nls = nls;
    nworkers = workers_wanted(conf);

    sigemptyset(&set);
    sigaddset(&set, SIGCHLD);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    sigprocmask(SIG_BLOCK, &set, &oldmask);
    signal(SIGPIPE, SIG_IGN);

    for (long i = 0; i < nworkers; i++)
        spawn(&slots[i], current, (unsigned)i);
    gw_log(GW_LOG_INFO, NULL, "gatewayd %s started: %ld worker(s), %zu listener(s)", GW_VERSION,
           nworkers, nls);

    for (;;) {
        struct timespec ts = {0, 200 * 1000000L};
        siginfo_t si;
        int sig = sigtimedwait(&set, &si, &ts);
        long alive = 0;
        pid_t pid;
        int status;

        if ((sig == SIGTERM || sig == SIGINT) && !stopping) {
            long drain_ms = current->conf->shutdown_timeout;
            stopping = true;
            stop_deadline = mono_ms() + (unsigned long long)drain_ms + 2000ull;
            gw_log(GW_LOG_INFO, NULL, "%s: stopping workers", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            signal_all(SIGTERM);
        } else if (sig == SIGHUP && !stopping) {
            reload(file);
        }

        while ((pid = waitpid(-1, &status, WNOHANG)) > 0)
            reaped(pid, status, stopping, &exit_code);
        collect_generations();

        for (long i = 0; i < nworkers; i++) {
            if (slots[i].pid > 0) {
                alive++;
            } else if (!stopping && mono_ms() - slots[i].started_ms >= GW_RESPAWN_MIN_MS) {
                spawn(&slots[i], current, (unsigned)i);
                if (slots[i].pid > 0)
                    alive++;
            }
        }
        for (size_t k = 0; k < GW_MAX_RETIRED; k++)
            if (retired[k].pid > 0)
                alive++;
        if (stopping && alive == 0)
            break;
        if (stopping && mono_ms() > stop_deadline) {
            gw_log(GW_LOG_ERROR, NULL, "workers did not stop in time: killing them");
            signal_all(SIGKILL);
            stop_deadline = mono_ms() + 5000;
            exit_code = 1;
        }
    }
    collect_generations();
    generation_free(&current);
    gw_log(GW_LOG_INFO, NULL, "gatewayd stopped");
    return exit_code;
}
