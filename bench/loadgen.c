/*
 * loadgen: the epoll loop, connections, options and statistics the
 * benchmark load generators share (see loadgen.h).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "loadgen.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct lg_options lg_opt = {
    .host = "127.0.0.1",
    .conns = 50,
    .duration = 5.0,
    .user_prefix = "user",
    .pass_prefix = "pw",
    .nusers = 50,
    .timeout = 10.0,
    .max_errors = -1,
};

uint64_t lg_t_start, lg_t_end;
int lg_stopping;
uint64_t lg_errors;
uint64_t lg_cycles;
int lg_errors_after_end;

static const struct lg_proto *proto;
static unsigned n_error_reports;
static int epfd;
static struct sockaddr_in target;
static unsigned char *conns;        /* opt.conns structs of proto->conn_size */

/* After an error a connection waits this long before it reconnects, so
   that a refusing target does not spin the loop. */
#define RECONNECT_BACKOFF_NS 10000000ull

/* Latency histogram of login cycles: 10 us buckets up to 5 s. */
#define HIST_STEP_NS 10000ull
#define HIST_BUCKETS 500000u
static uint32_t *hist;
static uint64_t hist_count;

uint64_t lg_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

uint64_t lg_step_deadline(uint64_t now)
{
    return now + (uint64_t)(lg_opt.timeout * 1e9);
}

void lg_die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", proto->name);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

double lg_parse_double(const char *s, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v <= 0)
        lg_die("bad %s: %s", what, s);
    return v;
}

unsigned long lg_parse_ulong(const char *s, const char *what, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || *s == '\0' || *s == '-' || v > max)
        lg_die("bad %s: %s", what, s);
    return v;
}

unsigned lg_user_no(const struct lg_conn *c)
{
    return lg_opt.first + c->idx % lg_opt.nusers;
}

struct lg_conn *lg_conn_at(unsigned i)
{
    return (struct lg_conn *)(void *)(conns + (size_t)i * proto->conn_size);
}

int lg_epoll_fd(void)
{
    return epfd;
}

/* ---- connections ---- */

/* Closes c's socket; c keeps its state. */
static void conn_close(struct lg_conn *c)
{
    proto->closing(c);
    if (c->fd >= 0) {
        close(c->fd);   /* also removes it from the epoll set */
        c->fd = -1;
    }
    c->gen++;
}

void lg_conn_error(struct lg_conn *c, const char *fmt, ...)
{
    uint64_t now = lg_now_ns();
    if (!lg_stopping && (lg_errors_after_end || now < lg_t_end)) {
        lg_errors++;
        if (n_error_reports < 5 || lg_opt.verbose) {
            va_list ap;
            va_start(ap, fmt);
            fprintf(stderr, "%s: conn %u (%s): ", proto->name, c->idx, proto->state_names[c->st]);
            vfprintf(stderr, fmt, ap);
            fputc('\n', stderr);
            va_end(ap);
            if (++n_error_reports == 5 && !lg_opt.verbose)
                fprintf(stderr, "%s: (further errors not shown)\n", proto->name);
        }
    }
    conn_close(c);
    if (proto->lost && proto->lost(c))
        return;
    c->st = LG_IDLE;
    c->deadline = now + RECONNECT_BACKOFF_NS;
}

/* Opens (connects) c now. */
static void conn_start(struct lg_conn *c, uint64_t now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->st = LG_CONNECTING;
        lg_conn_error(c, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->cycle_start = now;
    c->deadline = lg_step_deadline(now);
    proto->opened(c);
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (connect(fd, (struct sockaddr *)&target, sizeof target) == 0) {
        c->st = LG_GREETING;
    } else if (errno == EINPROGRESS) {
        c->st = LG_CONNECTING;
        ev.events = EPOLLOUT;
    } else {
        c->st = LG_CONNECTING;
        lg_conn_error(c, "connect: %s", strerror(errno));
        return;
    }
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        lg_conn_error(c, "epoll_ctl: %s", strerror(errno));
}

/* A non-blocking connect() finished: from now on wait for the greeting. */
static void conn_connected(struct lg_conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        lg_conn_error(c, "connect: %s", strerror(err));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        lg_conn_error(c, "epoll_ctl: %s", strerror(errno));
        return;
    }
    c->st = LG_GREETING;
}

int lg_vsend(struct lg_conn *c, int next, const char *prefix, const char *fmt, va_list ap)
{
    char buf[512];
    int n = 0;
    if (prefix[0] != '\0')
        n = snprintf(buf, sizeof buf, "%s ", prefix);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        lg_conn_error(c, "command too long");
        return -1;
    }
    /* A few bytes on a socket whose send buffer is empty: written at once. */
    ssize_t w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w != n) {
        lg_conn_error(c, "send: %s", w < 0 ? strerror(errno) : "short write");
        return -1;
    }
    c->st = next;
    c->deadline = lg_step_deadline(lg_now_ns());
    return 0;
}

long lg_recv(struct lg_conn *c, void *buf, size_t size)
{
    for (;;) {
        ssize_t r = recv(c->fd, buf, size, 0);
        if (r > 0)
            return (long)r;
        if (r == 0) {
            lg_conn_error(c, "connection closed by the server");
            return -1;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK)
            return 0;
        if (errno != EINTR) {
            lg_conn_error(c, "recv: %s", strerror(errno));
            return -1;
        }
    }
}

/* ---- statistics ---- */

void lg_cycle_done(struct lg_conn *c)
{
    uint64_t now = lg_now_ns();
    conn_close(c);
    if (now <= lg_t_end) {
        lg_cycles++;
        uint64_t b = (now - c->cycle_start) / HIST_STEP_NS;
        hist[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
        hist_count++;
    }
    c->st = LG_IDLE;
    if (!lg_stopping)
        conn_start(c, now);
}

static double hist_pct(double q)
{
    if (hist_count == 0)
        return 0.0;
    uint64_t want = (uint64_t)(q * (double)hist_count);
    if (want >= hist_count)
        want = hist_count - 1;
    uint64_t acc = 0;
    for (unsigned i = 0; i < HIST_BUCKETS; i++) {
        acc += hist[i];
        if (acc > want)
            return (double)(i * HIST_STEP_NS + HIST_STEP_NS / 2) / 1e6;
    }
    return (double)(HIST_BUCKETS * HIST_STEP_NS) / 1e6;
}

int lg_report_cycles(void)
{
    double elapsed = (double)(lg_t_end - lg_t_start) / 1e9;
    printf("cycles=%llu errors=%llu per_sec=%.1f p50_ms=%.2f p99_ms=%.2f elapsed=%.2f\n",
           (unsigned long long)lg_cycles, (unsigned long long)lg_errors,
           (double)lg_cycles / elapsed, hist_pct(0.50), hist_pct(0.99), elapsed);
    return lg_cycles > 0;
}

/* ---- options ---- */

static const struct option common_long_opts[] = {
    {"host", required_argument, NULL, 'H'},
    {"port", required_argument, NULL, 'p'},
    {"conns", required_argument, NULL, 'c'},
    {"duration", required_argument, NULL, 'd'},
    {"user-prefix", required_argument, NULL, 'u'},
    {"pass-prefix", required_argument, NULL, 'w'},
    {"nusers", required_argument, NULL, 'n'},
    {"first", required_argument, NULL, 'f'},
    {"timeout", required_argument, NULL, 't'},
    {"max-errors", required_argument, NULL, 'e'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
};
#define COMMON_SHORT_OPTS "H:p:c:d:u:w:n:f:t:e:vh"
#define N_COMMON_OPTS (sizeof common_long_opts / sizeof common_long_opts[0])

static void usage(FILE *f)
{
    fprintf(f,
            "usage: %s -p PORT [options]\n"
            "  -H, --host ADDR         IPv4 address of the target (127.0.0.1)\n"
            "  -p, --port PORT         %s port of the target (required)\n"
            "  -c, --conns N           concurrent connections (50)\n"
            "  -d, --duration SEC      measuring time in seconds (5)%s\n"
            "  -u, --user-prefix S     user name = S<number> (user)\n"
            "  -w, --pass-prefix S     password  = S<number> (pw)\n"
            "  -n, --nusers N          numbers first .. first+N-1, connection i\n"
            "                          uses first + i %% N (50)\n"
            "  -f, --first N           first user number (0)\n"
            "%s"
            "  -t, --timeout SEC       per-step timeout (10)\n"
            "  -e, --max-errors N      exit 1 when more errors than N\n"
            "  -v, --verbose           report every error\n",
            proto->name, proto->server, proto->duration_note, proto->usage);
}

/* The common options and the generator's own, for getopt_long. */
static struct option *all_long_opts(void)
{
    size_t n = 0;
    while (proto->long_opts[n].name != NULL)
        n++;
    struct option *all = calloc(N_COMMON_OPTS + n + 1, sizeof *all);
    if (all == NULL)
        lg_die("out of memory");
    memcpy(all, common_long_opts, sizeof common_long_opts);
    memcpy(all + N_COMMON_OPTS, proto->long_opts, n * sizeof *all);
    return all;
}

static void common_option(int ch, const char *arg)
{
    switch (ch) {
    case 'H': lg_opt.host = arg; break;
    case 'p': lg_opt.port = (int)lg_parse_ulong(arg, "port", 65535); break;
    case 'c':
        lg_opt.conns = (unsigned)lg_parse_ulong(arg, "connection count", proto->max_conns);
        break;
    case 'd': lg_opt.duration = lg_parse_double(arg, "duration"); break;
    case 'u': lg_opt.user_prefix = arg; break;
    case 'w': lg_opt.pass_prefix = arg; break;
    case 'n': lg_opt.nusers = (unsigned)lg_parse_ulong(arg, "user count", 1000000); break;
    case 'f': lg_opt.first = (unsigned)lg_parse_ulong(arg, "first user", 1000000); break;
    case 't': lg_opt.timeout = lg_parse_double(arg, "timeout"); break;
    case 'e':
        lg_opt.max_errors = (long long)lg_parse_ulong(arg, "error count", 1ul << 40);
        break;
    case 'v': lg_opt.verbose = 1; break;
    default: proto->option(ch, arg); break;
    }
}

/* Returns -1 to exit 0 (--help), 0 to run, 2 on a usage error. */
static int parse_options(int argc, char **argv)
{
    struct option *longopts = all_long_opts();
    char shortopts[128];
    snprintf(shortopts, sizeof shortopts, "%s%s", COMMON_SHORT_OPTS, proto->short_opts);
    int ch, ret = 0;
    while (ret == 0 && (ch = getopt_long(argc, argv, shortopts, longopts, NULL)) != -1) {
        if (ch == 'h') {
            usage(stdout);
            ret = -1;
        } else if (ch == '?') {
            usage(stderr);
            ret = 2;
        } else {
            common_option(ch, optarg);
        }
    }
    free(longopts);
    if (ret == 0 && (optind != argc || lg_opt.port == 0 || lg_opt.conns == 0 ||
                     lg_opt.nusers == 0 || (proto->options_ok && !proto->options_ok()))) {
        usage(stderr);
        ret = 2;
    }
    return ret;
}

/* ---- the loop ---- */

/* Idle connections whose time has come connect; the others have missed
   their step's deadline. */
static void expire(uint64_t now)
{
    for (unsigned i = 0; i < lg_opt.conns; i++) {
        struct lg_conn *c = lg_conn_at(i);
        if (now < c->deadline)
            continue;
        if (c->st == LG_IDLE) {
            if (proto->may_connect && !proto->may_connect())
                continue;
            conn_start(c, now);
        } else {
            lg_conn_error(c, "timed out after %.1fs", lg_opt.timeout);
        }
    }
}

static void dispatch(const struct epoll_event *ev)
{
    struct lg_conn *c = ev->data.ptr;
    if (c == NULL) {
        proto->input();
        return;
    }
    if (c->fd < 0)
        return;
    if (c->st == LG_CONNECTING)
        conn_connected(c);
    else if (ev->events & (EPOLLIN | EPOLLERR | EPOLLHUP))
        proto->readable(c);
}

static int run_is_over(uint64_t now)
{
    return proto->tick ? proto->tick(now) : now >= lg_t_end;
}

int main(int argc, char **argv)
{
    proto = &lg_generator;
    int ret = parse_options(argc, argv);
    if (ret != 0)
        return ret < 0 ? 0 : ret;
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)lg_opt.port);
    if (inet_pton(AF_INET, lg_opt.host, &target.sin_addr) != 1)
        lg_die("bad IPv4 address: %s", lg_opt.host);

    signal(SIGPIPE, SIG_IGN);
    hist = calloc(HIST_BUCKETS, sizeof *hist);
    conns = calloc(lg_opt.conns, proto->conn_size);
    /* one more: standard input, for a generator that watches it */
    struct epoll_event *evs = calloc(lg_opt.conns + 1, sizeof *evs);
    if (!hist || !conns || !evs)
        lg_die("out of memory");
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        lg_die("epoll_create1: %s", strerror(errno));
    if (proto->setup)
        proto->setup();

    lg_t_start = lg_now_ns();
    lg_t_end = lg_t_start + (uint64_t)(lg_opt.duration * 1e9);
    for (unsigned i = 0; i < lg_opt.conns; i++) {
        struct lg_conn *c = lg_conn_at(i);
        c->fd = -1;
        c->idx = i;
        c->st = LG_IDLE;
        c->deadline = lg_t_start;
    }
    expire(lg_t_start);

    while (!lg_stopping) {
        int n = epoll_wait(epfd, evs, (int)lg_opt.conns + 1, 20);
        if (n < 0 && errno != EINTR)
            lg_die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++)
            dispatch(&evs[i]);
        uint64_t now = lg_now_ns();
        if (run_is_over(now)) {
            lg_stopping = 1;
            break;
        }
        expire(now);
    }
    for (unsigned i = 0; i < lg_opt.conns; i++)
        conn_close(lg_conn_at(i));

    int ok = proto->report();
    fflush(stdout);
    ok = ok && (lg_opt.max_errors < 0 || (long long)lg_errors <= lg_opt.max_errors);
    free(evs);
    free(conns);
    free(hist);
    close(epfd);
    return ok ? 0 : 1;
}
