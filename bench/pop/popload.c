/*
 * popload: a small POP3 load generator for the gatewayd benchmarks.
 *
 * One thread, one epoll loop, N concurrent connections to one host:port.
 *
 * Login mode (default): each connection loops
 *     connect, greeting, USER u, PASS p, STAT, QUIT, close
 * and popload counts the cycles completed (and errors) within the duration.
 *
 * RETR mode (--retr N): each connection connects and logs in once, then sends
 * RETR N again and again, reading each multi-line answer up to its final
 * "\r\n.\r\n"; popload counts the bytes received within the duration.
 *
 * One command at a time per connection (no pipelining), as mail clients do.
 * Connection i logs in as <user-prefix><first + i % nusers> with the password
 * <pass-prefix><same number>, so that N connections spread over several
 * mailboxes.
 *
 * Output, one line on stdout:
 *   login: cycles=.. errors=.. per_sec=.. p50_ms=.. p99_ms=.. elapsed=..
 *   retr:  bytes=.. retrs=.. errors=.. mb_per_sec=.. answer_body=.. elapsed=..
 * (MB = 10^6 bytes; answer_body: bytes after the status line of the last
 * complete RETR answer, i.e. the dot-stuffed message plus ".\r\n"). Exit status 0 when at least one cycle or RETR completed
 * and the error count is at most --max-errors (default: unlimited), 1
 * otherwise, 2 on usage errors.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state {
    ST_IDLE,        /* not connected; reconnect at c->deadline (backoff) */
    ST_CONNECTING,
    ST_GREETING,
    ST_USER,
    ST_PASS,
    ST_STAT,
    ST_QUIT,
    ST_RETR,
};

static const char *const state_names[] = {
    "idle", "connect", "greeting", "USER", "PASS", "STAT", "QUIT", "RETR",
};

struct conn {
    int fd;
    unsigned idx;
    enum state st;
    uint64_t deadline;      /* ns: the current step must finish by then */
    uint64_t cycle_start;   /* ns: start of the login cycle */
    char line[1024];        /* single-line answer being read */
    size_t linelen;
    unsigned char tail[4];  /* RETR: last bytes of the answer so far */
    size_t taillen;
    uint64_t resp_bytes;    /* RETR: bytes of the current answer */
    uint64_t status_len;    /* RETR: length of its status line with CRLF, 0: unknown */
};

/* ---- options ---- */

static const char *opt_host = "127.0.0.1";
static int opt_port;
static unsigned opt_conns = 50;
static double opt_duration = 5.0;
static const char *opt_user_prefix = "user";
static const char *opt_pass_prefix = "pw";
static unsigned opt_nusers = 50;
static unsigned opt_first;
static unsigned opt_retr;           /* 0: login mode */
static double opt_timeout = 10.0;   /* per step */
static long long opt_max_errors = -1;
static int opt_verbose;

/* ---- results ---- */

static uint64_t n_cycles, n_errors, n_retrs, n_bytes;
static uint64_t last_body;  /* RETR: bytes after the status line of the last answer */
static unsigned n_error_reports;

/* Latency histogram of login cycles: 10 us buckets up to 5 s. */
#define HIST_STEP_NS 10000ull
#define HIST_BUCKETS 500000u
static uint32_t *hist;
static uint64_t hist_count;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("popload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int epfd;
static struct sockaddr_in target;
static uint64_t t_start, t_end;
static int stopping;

static void conn_start(struct conn *c, uint64_t now);

static void conn_close(struct conn *c)
{
    if (c->fd >= 0) {
        close(c->fd);   /* also removes it from the epoll set */
        c->fd = -1;
    }
    c->linelen = 0;
    c->taillen = 0;
    c->resp_bytes = 0;
}

static void conn_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_error(struct conn *c, const char *fmt, ...)
{
    uint64_t now = now_ns();
    if (!stopping && now < t_end) {
        n_errors++;
        if (n_error_reports < 5 || opt_verbose) {
            va_list ap;
            va_start(ap, fmt);
            fprintf(stderr, "popload: conn %u (%s): ", c->idx, state_names[c->st]);
            vfprintf(stderr, fmt, ap);
            fputc('\n', stderr);
            va_end(ap);
            if (++n_error_reports == 5 && !opt_verbose)
                fputs("popload: (further errors not shown)\n", stderr);
        }
    }
    conn_close(c);
    /* Back off a little so a refusing target does not spin the loop. */
    c->st = ST_IDLE;
    c->deadline = now + 10000000ull;
}

static void send_cmd(struct conn *c, enum state next, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_cmd(struct conn *c, enum state next, const char *fmt, ...)
{
    char buf[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof buf) {
        conn_error(c, "command too long");
        return;
    }
    /* A few bytes on a socket whose send buffer is empty: written at once. */
    ssize_t w = send(c->fd, buf, (size_t)n, MSG_NOSIGNAL);
    if (w != n) {
        conn_error(c, "send: %s", w < 0 ? strerror(errno) : "short write");
        return;
    }
    c->st = next;
    c->linelen = 0;
    c->deadline = now_ns() + (uint64_t)(opt_timeout * 1e9);
}

static unsigned user_no(const struct conn *c)
{
    return opt_first + c->idx % opt_nusers;
}

/* A complete single-line answer (without CRLF) arrived in state c->st. */
static void on_line(struct conn *c, const char *line)
{
    if (strncmp(line, "+OK", 3) != 0) {
        conn_error(c, "answer %.200s", line);
        return;
    }
    switch (c->st) {
    case ST_GREETING:
        send_cmd(c, ST_USER, "USER %s%u\r\n", opt_user_prefix, user_no(c));
        break;
    case ST_USER:
        send_cmd(c, ST_PASS, "PASS %s%u\r\n", opt_pass_prefix, user_no(c));
        break;
    case ST_PASS:
        if (opt_retr) {
            send_cmd(c, ST_RETR, "RETR %u\r\n", opt_retr);
        } else {
            send_cmd(c, ST_STAT, "STAT\r\n");
        }
        break;
    case ST_STAT:
        send_cmd(c, ST_QUIT, "QUIT\r\n");
        break;
    case ST_QUIT: {
        uint64_t now = now_ns();
        conn_close(c);
        if (now <= t_end) {
            n_cycles++;
            uint64_t b = (now - c->cycle_start) / HIST_STEP_NS;
            hist[b < HIST_BUCKETS ? b : HIST_BUCKETS - 1]++;
            hist_count++;
        }
        c->st = ST_IDLE;
        if (!stopping)
            conn_start(c, now);
        break;
    }
    default:
        conn_error(c, "unexpected line");
        break;
    }
}

/* RETR answer bytes: look for the final "\r\n.\r\n" (also across reads). */
static void on_retr_data(struct conn *c, const unsigned char *p, size_t n)
{
    static const char term[] = "\r\n.\r\n";
    if (c->resp_bytes == 0 && n > 0 && p[0] != '+') {
        size_t l = 0;
        while (l < n && l < 200 && p[l] != '\r' && p[l] != '\n')
            l++;
        conn_error(c, "answer %.*s", (int)l, (const char *)p);
        return;
    }
    if (c->resp_bytes == 0) {
        const unsigned char *nl = memchr(p, '\n', n);
        c->status_len = nl ? (uint64_t)(nl - p + 1) : 0;
    }
    c->resp_bytes += n;
    if (now_ns() <= t_end)
        n_bytes += n;
    int done = 0;
    size_t after = 0;   /* bytes of p after the terminator */
    /* Boundary: the terminator may start in the saved tail. */
    if (c->taillen > 0) {
        unsigned char win[8];
        size_t k = n < 4 ? n : 4;
        memcpy(win, c->tail, c->taillen);
        memcpy(win + c->taillen, p, k);
        const unsigned char *m = memmem(win, c->taillen + k, term, 5);
        if (m) {
            done = 1;
            after = n - (size_t)(m + 5 - win - (ptrdiff_t)c->taillen);
        }
    }
    if (!done) {
        const unsigned char *m = memmem(p, n, term, 5);
        if (m) {
            done = 1;
            after = n - (size_t)(m + 5 - p);
        }
    }
    if (done) {
        if (after != 0) {
            conn_error(c, "%zu bytes after the end of the RETR answer", after);
            return;
        }
        if (now_ns() <= t_end)
            n_retrs++;
        if (c->status_len)
            last_body = c->resp_bytes - c->status_len;
        c->resp_bytes = 0;
        c->taillen = 0;
        if (!stopping)
            send_cmd(c, ST_RETR, "RETR %u\r\n", opt_retr);
        return;
    }
    /* Keep the last 4 bytes (of tail + p) for the next read. */
    if (n >= 4) {
        memcpy(c->tail, p + n - 4, 4);
        c->taillen = 4;
    } else {
        unsigned char win[8];
        memcpy(win, c->tail, c->taillen);
        memcpy(win + c->taillen, p, n);
        size_t tot = c->taillen + n;
        size_t keep = tot < 4 ? tot : 4;
        memcpy(c->tail, win + tot - keep, keep);
        c->taillen = keep;
    }
    c->deadline = now_ns() + (uint64_t)(opt_timeout * 1e9);
}

static unsigned char rbuf[256 * 1024];

static void on_readable(struct conn *c)
{
    for (;;) {
        ssize_t r = recv(c->fd, rbuf, sizeof rbuf, 0);
        if (r < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if (errno == EINTR)
                continue;
            conn_error(c, "recv: %s", strerror(errno));
            return;
        }
        if (r == 0) {
            conn_error(c, "connection closed by the server");
            return;
        }
        if (c->st == ST_RETR) {
            on_retr_data(c, rbuf, (size_t)r);
            if (c->fd < 0 || c->st != ST_RETR)
                return;
            continue;
        }
        /* Single-line answers: collect up to CRLF. */
        size_t off = 0;
        while (off < (size_t)r) {
            unsigned char ch = rbuf[off++];
            if (c->linelen + 1 >= sizeof c->line) {
                conn_error(c, "answer line too long");
                return;
            }
            c->line[c->linelen++] = (char)ch;
            if (ch == '\n') {
                size_t l = c->linelen - 1;
                if (l > 0 && c->line[l - 1] == '\r')
                    l--;
                c->line[l] = '\0';
                if (off != (size_t)r) {
                    conn_error(c, "unexpected data after an answer line");
                    return;
                }
                on_line(c, c->line);
                /* on_line may have closed and restarted the connection;
                 * either way this read is consumed. */
                return;
            }
        }
    }
}

static void conn_start(struct conn *c, uint64_t now)
{
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        c->st = ST_CONNECTING;
        conn_error(c, "socket: %s", strerror(errno));
        return;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->fd = fd;
    c->cycle_start = now;
    c->deadline = now + (uint64_t)(opt_timeout * 1e9);
    c->linelen = 0;
    c->taillen = 0;
    c->resp_bytes = 0;
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (connect(fd, (struct sockaddr *)&target, sizeof target) == 0) {
        c->st = ST_GREETING;
    } else if (errno == EINPROGRESS) {
        c->st = ST_CONNECTING;
        ev.events = EPOLLOUT;
    } else {
        c->st = ST_CONNECTING;
        conn_error(c, "connect: %s", strerror(errno));
        return;
    }
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        conn_error(c, "epoll_ctl: %s", strerror(errno));
}

static void on_writable(struct conn *c)
{
    int err = 0;
    socklen_t len = sizeof err;
    if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0)
        err = errno;
    if (err != 0) {
        conn_error(c, "connect: %s", strerror(err));
        return;
    }
    struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
    if (epoll_ctl(epfd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        conn_error(c, "epoll_ctl: %s", strerror(errno));
        return;
    }
    c->st = ST_GREETING;
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

static void usage(FILE *f)
{
    fputs("usage: popload -p PORT [options]\n"
          "  -H, --host ADDR         IPv4 address of the target (127.0.0.1)\n"
          "  -p, --port PORT         POP3 port of the target (required)\n"
          "  -c, --conns N           concurrent connections (50)\n"
          "  -d, --duration SEC      measuring time in seconds (5)\n"
          "  -u, --user-prefix S     user name = S<number> (user)\n"
          "  -w, --pass-prefix S     password  = S<number> (pw)\n"
          "  -n, --nusers N          numbers first .. first+N-1, connection i\n"
          "                          uses first + i % N (50)\n"
          "  -f, --first N           first user number (0)\n"
          "  -r, --retr N            RETR mode: log in once, RETR message N repeatedly\n"
          "  -t, --timeout SEC       per-step timeout (10)\n"
          "  -e, --max-errors N      exit 1 when more errors than N\n"
          "  -v, --verbose           report every error\n",
          f);
}

static double parse_double(const char *s, const char *what)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || *end || v <= 0)
        die("bad %s: %s", what, s);
    return v;
}

static unsigned long parse_ulong(const char *s, const char *what, unsigned long max)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(s, &end, 10);
    if (errno || *end || *s == '\0' || *s == '-' || v > max)
        die("bad %s: %s", what, s);
    return v;
}

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"host", required_argument, NULL, 'H'},
        {"port", required_argument, NULL, 'p'},
        {"conns", required_argument, NULL, 'c'},
        {"duration", required_argument, NULL, 'd'},
        {"user-prefix", required_argument, NULL, 'u'},
        {"pass-prefix", required_argument, NULL, 'w'},
        {"nusers", required_argument, NULL, 'n'},
        {"first", required_argument, NULL, 'f'},
        {"retr", required_argument, NULL, 'r'},
        {"timeout", required_argument, NULL, 't'},
        {"max-errors", required_argument, NULL, 'e'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "H:p:c:d:u:w:n:f:r:t:e:vh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'H': opt_host = optarg; break;
        case 'p': opt_port = (int)parse_ulong(optarg, "port", 65535); break;
        case 'c': opt_conns = (unsigned)parse_ulong(optarg, "connection count", 10000); break;
        case 'd': opt_duration = parse_double(optarg, "duration"); break;
        case 'u': opt_user_prefix = optarg; break;
        case 'w': opt_pass_prefix = optarg; break;
        case 'n': opt_nusers = (unsigned)parse_ulong(optarg, "user count", 1000000); break;
        case 'f': opt_first = (unsigned)parse_ulong(optarg, "first user", 1000000); break;
        case 'r':
            opt_retr = (unsigned)parse_ulong(optarg, "message number", 1000000);
            if (opt_retr == 0)
                die("bad message number: 0");
            break;
        case 't': opt_timeout = parse_double(optarg, "timeout"); break;
        case 'e': opt_max_errors = (long long)parse_ulong(optarg, "error count", 1ul << 40); break;
        case 'v': opt_verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || opt_port == 0 || opt_conns == 0 || opt_nusers == 0) {
        usage(stderr);
        return 2;
    }
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)opt_port);
    if (inet_pton(AF_INET, opt_host, &target.sin_addr) != 1)
        die("bad IPv4 address: %s", opt_host);

    signal(SIGPIPE, SIG_IGN);
    hist = calloc(HIST_BUCKETS, sizeof *hist);
    struct conn *conns = calloc(opt_conns, sizeof *conns);
    struct epoll_event *evs = calloc(opt_conns, sizeof *evs);
    if (!hist || !conns || !evs)
        die("out of memory");
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1: %s", strerror(errno));

    t_start = now_ns();
    t_end = t_start + (uint64_t)(opt_duration * 1e9);
    for (unsigned i = 0; i < opt_conns; i++) {
        conns[i].fd = -1;
        conns[i].idx = i;
        conn_start(&conns[i], t_start);
    }

    while (!stopping) {
        int n = epoll_wait(epfd, evs, (int)opt_conns, 20);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c->fd < 0)
                continue;
            if (c->st == ST_CONNECTING)
                on_writable(c);
            else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
        }
        uint64_t now = now_ns();
        if (now >= t_end) {
            stopping = 1;
            break;
        }
        for (unsigned i = 0; i < opt_conns; i++) {
            struct conn *c = &conns[i];
            if (now < c->deadline)
                continue;
            if (c->st == ST_IDLE)
                conn_start(c, now);
            else
                conn_error(c, "timed out after %.1fs", opt_timeout);
        }
    }
    for (unsigned i = 0; i < opt_conns; i++)
        conn_close(&conns[i]);

    double elapsed = (double)(t_end - t_start) / 1e9;
    if (opt_retr) {
        printf("bytes=%llu retrs=%llu errors=%llu mb_per_sec=%.1f answer_body=%llu elapsed=%.2f\n",
               (unsigned long long)n_bytes, (unsigned long long)n_retrs,
               (unsigned long long)n_errors, (double)n_bytes / elapsed / 1e6,
               (unsigned long long)last_body, elapsed);
    } else {
        printf("cycles=%llu errors=%llu per_sec=%.1f p50_ms=%.2f p99_ms=%.2f elapsed=%.2f\n",
               (unsigned long long)n_cycles, (unsigned long long)n_errors,
               (double)n_cycles / elapsed, hist_pct(0.50), hist_pct(0.99), elapsed);
    }
    fflush(stdout);
    int ok = (opt_retr ? n_retrs : n_cycles) > 0 &&
             (opt_max_errors < 0 || (long long)n_errors <= opt_max_errors);
    free(evs);
    free(conns);
    free(hist);
    close(epfd);
    return ok ? 0 : 1;
}
