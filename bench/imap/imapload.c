/*
 * imapload: a small IMAP load generator for the gatewayd benchmarks
 * (bench/imap/run.py), in the style of bench/pop/popload.c.
 *
 * One thread, one epoll loop, N concurrent connections to one host:port.
 *
 * Login mode (default): each connection loops
 *     connect, greeting, LOGIN u p, SELECT INBOX, LOGOUT, close
 * and imapload counts the cycles completed (and errors) within the duration.
 *
 * FETCH mode (--fetch N): each connection connects, logs in and selects
 * INBOX once, then sends FETCH N BODY.PEEK[] again and again, reading each
 * answer (the message comes as one literal) up to the tagged OK; imapload
 * counts the bytes received within the duration.
 *
 * Hold mode (--hold): each connection connects, logs in, selects INBOX and
 * then stays idle. At most --parallel connections are in the login phase at
 * once. When every connection is logged in (or --ramp seconds have passed)
 * imapload prints "ready held=.. errors=.. elapsed=.." on stdout and then
 * holds the sessions until standard input reaches end of file or the
 * duration (-d) has passed; then it closes them and prints the final line.
 *
 * One command at a time per connection (no pipelining), as mail clients do.
 * Connection i logs in as <user-prefix><first + i % nusers> with the
 * password <pass-prefix><same number>, so that N connections spread over
 * several mailboxes. Names and passwords are sent as atoms.
 *
 * Responses are read as IMAP answers: lines, and literals {n} announced at
 * the end of a line, whose octets are skipped (counted, and hashed with
 * --hash); a logical line continues after its literals. An answer ends with
 * the line that starts with the command's tag, which must say OK.
 *
 * Output, one line on stdout:
 *   login: cycles=.. errors=.. per_sec=.. p50_ms=.. p99_ms=.. elapsed=..
 *   fetch: bytes=.. fetches=.. errors=.. mb_per_sec=.. literal=.. [literal_hash=..] elapsed=..
 *   hold:  held=.. held_at_end=.. errors=.. elapsed=..  (after the "ready" line)
 * (MB = 10^6 bytes; literal: size of the last complete FETCH literal;
 * literal_hash: its FNV-1a 64-bit hash, hex). Exit status 0 when at least
 * one cycle, FETCH or session completed and the error count is at most
 * --max-errors (default: unlimited), 1 otherwise, 2 on usage errors.
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
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

enum state {
    ST_IDLE,        /* not connected; (re)connect at c->deadline */
    ST_CONNECTING,
    ST_GREETING,
    ST_LOGIN,
    ST_SELECT,
    ST_LOGOUT,
    ST_FETCH,
    ST_HOLD,        /* logged in and selected, idle (hold mode) */
    ST_DONE,        /* hold mode: given up on this connection */
};

static const char *const state_names[] = {
    "idle", "connect", "greeting", "LOGIN", "SELECT", "LOGOUT", "FETCH", "hold", "done",
};

#define LINE_MAX_LEN 8192

struct conn {
    int fd;
    unsigned idx;
    unsigned gen;           /* bumped on every close: detects a close in a callback */
    enum state st;
    uint64_t deadline;      /* ns: the current step must finish by then */
    uint64_t cycle_start;   /* ns: start of the login cycle */
    unsigned seq;           /* tag number */
    char tag[16];           /* tag of the command in flight */
    size_t taglen;
    char line[LINE_MAX_LEN];/* first physical line of the logical line being read */
    size_t linelen;
    int cont;               /* the logical line continues after a literal */
    char ctail[32];         /* end of the physical line read after a literal */
    size_t ctaillen;
    uint64_t lit_left;      /* octets of the current literal still to come */
    uint64_t lit_size;      /* its announced size */
    uint64_t lit_hash;      /* FNV-1a over its octets (--hash) */
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
static unsigned opt_fetch;          /* 0: not FETCH mode */
static int opt_hold;
static unsigned opt_parallel = 100; /* hold: connections in the login phase at once */
static double opt_ramp = 60.0;      /* hold: give up completing the ramp after this */
static int opt_hash;
static double opt_timeout = 10.0;   /* per step */
static long long opt_max_errors = -1;
static int opt_verbose;

/* ---- results ---- */

static uint64_t n_cycles, n_errors, n_fetches, n_bytes, n_held, n_held_ready;
static uint64_t last_literal, last_hash;
static unsigned n_error_reports;
static unsigned n_logging_in;       /* hold: connections between connect and ST_HOLD */

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
    fputs("imapload: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(2);
}

static int epfd;
static struct sockaddr_in target;
static uint64_t t_start, t_end;
static int stopping;
static int ready;                   /* hold: the ramp is over */

static void conn_start(struct conn *c, uint64_t now);

static int in_login_phase(const struct conn *c)
{
    return c->fd >= 0 && c->st >= ST_CONNECTING && c->st <= ST_SELECT;
}

static void conn_close(struct conn *c)
{
    if (opt_hold && in_login_phase(c))
        n_logging_in--;
    if (c->fd >= 0) {
        close(c->fd);   /* also removes it from the epoll set */
        c->fd = -1;
    }
    c->gen++;
    c->linelen = 0;
    c->ctaillen = 0;
    c->cont = 0;
    c->lit_left = 0;
}

static void conn_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void conn_error(struct conn *c, const char *fmt, ...)
{
    uint64_t now = now_ns();
    if (!stopping && (opt_hold || now < t_end)) {
        n_errors++;
        if (n_error_reports < 5 || opt_verbose) {
            va_list ap;
            va_start(ap, fmt);
            fprintf(stderr, "imapload: conn %u (%s): ", c->idx, state_names[c->st]);
            vfprintf(stderr, fmt, ap);
            fputc('\n', stderr);
            va_end(ap);
            if (++n_error_reports == 5 && !opt_verbose)
                fputs("imapload: (further errors not shown)\n", stderr);
        }
    }
    if (opt_hold && c->st == ST_HOLD)
        n_held--;
    conn_close(c);
    if (opt_hold && ready) {
        c->st = ST_DONE;        /* after the ramp a lost session stays lost */
        c->deadline = UINT64_MAX;
        return;
    }
    /* Back off a little so a refusing target does not spin the loop. */
    c->st = ST_IDLE;
    c->deadline = now + 10000000ull;
}

static void send_cmd(struct conn *c, enum state next, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_cmd(struct conn *c, enum state next, const char *fmt, ...)
{
    char buf[512];
    c->seq++;
    int t = snprintf(c->tag, sizeof c->tag, "t%u", c->seq);
    c->taglen = (size_t)t;
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(buf, sizeof buf, "%s ", c->tag);
    n += vsnprintf(buf + n, sizeof buf - (size_t)n, fmt, ap);
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
    c->deadline = now_ns() + (uint64_t)(opt_timeout * 1e9);
}

static unsigned user_no(const struct conn *c)
{
    return opt_first + c->idx % opt_nusers;
}

/* The tagged completion of the command in flight (line without CRLF). */
static void on_tagged(struct conn *c, const char *line)
{
    const char *st = line + c->taglen + 1;
    if (strncmp(st, "OK", 2) != 0 || (st[2] != ' ' && st[2] != '\0')) {
        conn_error(c, "answer %.200s", line);
        return;
    }
    switch (c->st) {
    case ST_LOGIN:
        send_cmd(c, ST_SELECT, "SELECT INBOX\r\n");
        break;
    case ST_SELECT:
        if (opt_fetch) {
            send_cmd(c, ST_FETCH, "FETCH %u BODY.PEEK[]\r\n", opt_fetch);
        } else if (opt_hold) {
            c->st = ST_HOLD;
            c->deadline = UINT64_MAX;
            n_logging_in--;
            n_held++;
        } else {
            send_cmd(c, ST_LOGOUT, "LOGOUT\r\n");
        }
        break;
    case ST_LOGOUT: {
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
    case ST_FETCH:
        if (now_ns() <= t_end)
            n_fetches++;
        if (!stopping)
            send_cmd(c, ST_FETCH, "FETCH %u BODY.PEEK[]\r\n", opt_fetch);
        break;
    default:
        conn_error(c, "unexpected tagged answer %.200s", line);
        break;
    }
}

/* A complete logical line (without CRLF; for a line with literals, only its
   first physical line, and cont says there were literals). */
static void on_line(struct conn *c, const char *line, int had_literal)
{
    if (c->st == ST_GREETING) {
        if (strncmp(line, "* OK", 4) != 0) {
            conn_error(c, "greeting %.200s", line);
            return;
        }
        send_cmd(c, ST_LOGIN, "LOGIN %s%u %s%u\r\n", opt_user_prefix, user_no(c),
                 opt_pass_prefix, user_no(c));
        return;
    }
    if (!had_literal && c->taglen > 0 && strncmp(line, c->tag, c->taglen) == 0 &&
        line[c->taglen] == ' ') {
        on_tagged(c, line);
        return;
    }
    if (line[0] == '*') {
        if (strncmp(line, "* BYE", 5) == 0 && c->st != ST_LOGOUT) {
            conn_error(c, "%.200s", line);
            return;
        }
        return;     /* untagged data: ignored */
    }
    if (line[0] == '+') {
        conn_error(c, "unexpected continuation request %.200s", line);
        return;
    }
    if (c->st == ST_HOLD)
        return;
    conn_error(c, "unexpected line %.200s", line);
}

/* Does the physical line s (len octets, CRLF removed) end with "{n}"? */
static int ends_with_literal(const char *s, size_t len, uint64_t *n_r)
{
    if (len < 3 || s[len - 1] != '}')
        return 0;
    size_t j = len - 1;
    uint64_t n = 0, mult = 1;
    int digits = 0;
    while (j > 0 && s[j - 1] >= '0' && s[j - 1] <= '9') {
        if (++digits > 18)
            return 0;
        j--;
        n += (uint64_t)(s[j] - '0') * mult;
        mult *= 10;
    }
    if (digits == 0 || j == 0 || s[j - 1] != '{')
        return 0;
    *n_r = n;
    return 1;
}

static unsigned char rbuf[256 * 1024];

/* Bytes of an answer: lines and literals. The first physical line of a
   logical line is kept in c->line; of the physical lines after a literal
   only the last octets are kept (c->ctail), to see whether another literal
   is announced at their end. */
static void on_bytes(struct conn *c, const unsigned char *p, size_t n)
{
    unsigned gen = c->gen;
    size_t off = 0;
    while (off < n) {
        if (c->lit_left > 0) {
            size_t k = n - off;
            if ((uint64_t)k > c->lit_left)
                k = (size_t)c->lit_left;
            if (opt_hash) {
                uint64_t h = c->lit_hash;
                for (size_t i = 0; i < k; i++) {
                    h ^= p[off + i];
                    h *= 0x100000001b3ull;
                }
                c->lit_hash = h;
            }
            c->lit_left -= k;
            off += k;
            if (c->lit_left == 0) {
                last_literal = c->lit_size;
                last_hash = c->lit_hash;
            }
            continue;
        }
        const unsigned char *nl = memchr(p + off, '\n', n - off);
        size_t seg = nl ? (size_t)(nl - (p + off)) + 1 : n - off;
        char *s;
        size_t len;
        if (!c->cont) {
            if (c->linelen + seg >= sizeof c->line) {
                conn_error(c, "answer line too long");
                return;
            }
            memcpy(c->line + c->linelen, p + off, seg);
            c->linelen += seg;
            s = c->line;
            len = c->linelen;
        } else {
            size_t keep = sizeof c->ctail - 1;
            if (seg >= keep) {
                memcpy(c->ctail, p + off + seg - keep, keep);
                c->ctaillen = keep;
            } else {
                if (c->ctaillen + seg > keep) {
                    size_t drop = c->ctaillen + seg - keep;
                    memmove(c->ctail, c->ctail + drop, c->ctaillen - drop);
                    c->ctaillen -= drop;
                }
                memcpy(c->ctail + c->ctaillen, p + off, seg);
                c->ctaillen += seg;
            }
            s = c->ctail;
            len = c->ctaillen;
        }
        off += seg;
        if (!nl)
            continue;
        /* A physical line is complete: strip CRLF. */
        len--;
        if (len > 0 && s[len - 1] == '\r')
            len--;
        s[len] = '\0';
        uint64_t lit;
        if (ends_with_literal(s, len, &lit)) {
            c->cont = 1;            /* c->line keeps the first physical line */
            c->ctaillen = 0;
            c->lit_left = c->lit_size = lit;
            c->lit_hash = 0xcbf29ce484222325ull;
            if (lit == 0) {
                last_literal = 0;
                last_hash = c->lit_hash;
            }
            continue;
        }
        int had_literal = c->cont;
        c->linelen = 0;
        c->ctaillen = 0;
        c->cont = 0;
        on_line(c, c->line, had_literal);
        if (c->gen != gen || c->fd < 0)
            return;
    }
}

static void on_readable(struct conn *c)
{
    unsigned gen = c->gen;
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
        if (c->st == ST_FETCH && now_ns() <= t_end)
            n_bytes += (uint64_t)r;
        on_bytes(c, rbuf, (size_t)r);
        if (c->gen != gen || c->fd < 0)
            return;     /* closed (and maybe restarted): this read is consumed */
        if ((size_t)r < sizeof rbuf)
            return;     /* level-triggered: epoll says when there is more */
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
    c->ctaillen = 0;
    c->cont = 0;
    c->lit_left = 0;
    c->taglen = 0;
    if (opt_hold)
        n_logging_in++;
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
    fputs("usage: imapload -p PORT [options]\n"
          "  -H, --host ADDR         IPv4 address of the target (127.0.0.1)\n"
          "  -p, --port PORT         IMAP port of the target (required)\n"
          "  -c, --conns N           concurrent connections (50)\n"
          "  -d, --duration SEC      measuring time in seconds (5); hold: longest hold\n"
          "  -u, --user-prefix S     user name = S<number> (user)\n"
          "  -w, --pass-prefix S     password  = S<number> (pw)\n"
          "  -n, --nusers N          numbers first .. first+N-1, connection i\n"
          "                          uses first + i % N (50)\n"
          "  -f, --first N           first user number (0)\n"
          "  -F, --fetch N           FETCH mode: log in once, FETCH N BODY.PEEK[] repeatedly\n"
          "  -k, --hash              FETCH mode: hash the literals (FNV-1a 64)\n"
          "  -o, --hold              hold mode: log in, SELECT, stay idle until stdin closes\n"
          "  -P, --parallel N        hold mode: logins in flight at once (100)\n"
          "  -R, --ramp SEC          hold mode: print ready after this at the latest (60)\n"
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

static void raise_nofile(unsigned need)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
        return;
    rlim_t want = (rlim_t)need + 64;
    if (rl.rlim_cur >= want)
        return;
    rl.rlim_cur = want <= rl.rlim_max ? want : rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < want)
        fprintf(stderr, "imapload: open file limit %llu < %llu: some connections will fail\n",
                (unsigned long long)rl.rlim_cur, (unsigned long long)want);
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
        {"fetch", required_argument, NULL, 'F'},
        {"hash", no_argument, NULL, 'k'},
        {"hold", no_argument, NULL, 'o'},
        {"parallel", required_argument, NULL, 'P'},
        {"ramp", required_argument, NULL, 'R'},
        {"timeout", required_argument, NULL, 't'},
        {"max-errors", required_argument, NULL, 'e'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "H:p:c:d:u:w:n:f:F:koP:R:t:e:vh", longopts, NULL)) != -1) {
        switch (ch) {
        case 'H': opt_host = optarg; break;
        case 'p': opt_port = (int)parse_ulong(optarg, "port", 65535); break;
        case 'c': opt_conns = (unsigned)parse_ulong(optarg, "connection count", 100000); break;
        case 'd': opt_duration = parse_double(optarg, "duration"); break;
        case 'u': opt_user_prefix = optarg; break;
        case 'w': opt_pass_prefix = optarg; break;
        case 'n': opt_nusers = (unsigned)parse_ulong(optarg, "user count", 1000000); break;
        case 'f': opt_first = (unsigned)parse_ulong(optarg, "first user", 1000000); break;
        case 'F':
            opt_fetch = (unsigned)parse_ulong(optarg, "message number", 1000000);
            if (opt_fetch == 0)
                die("bad message number: 0");
            break;
        case 'k': opt_hash = 1; break;
        case 'o': opt_hold = 1; break;
        case 'P': opt_parallel = (unsigned)parse_ulong(optarg, "parallel logins", 100000); break;
        case 'R': opt_ramp = parse_double(optarg, "ramp time"); break;
        case 't': opt_timeout = parse_double(optarg, "timeout"); break;
        case 'e': opt_max_errors = (long long)parse_ulong(optarg, "error count", 1ul << 40); break;
        case 'v': opt_verbose = 1; break;
        case 'h': usage(stdout); return 0;
        default: usage(stderr); return 2;
        }
    }
    if (optind != argc || opt_port == 0 || opt_conns == 0 || opt_nusers == 0 ||
        opt_parallel == 0 || (opt_fetch && opt_hold)) {
        usage(stderr);
        return 2;
    }
    memset(&target, 0, sizeof target);
    target.sin_family = AF_INET;
    target.sin_port = htons((uint16_t)opt_port);
    if (inet_pton(AF_INET, opt_host, &target.sin_addr) != 1)
        die("bad IPv4 address: %s", opt_host);

    signal(SIGPIPE, SIG_IGN);
    raise_nofile(opt_conns);
    hist = calloc(HIST_BUCKETS, sizeof *hist);
    struct conn *conns = calloc(opt_conns, sizeof *conns);
    struct epoll_event *evs = calloc(opt_conns + 1, sizeof *evs);
    if (!hist || !conns || !evs)
        die("out of memory");
    epfd = epoll_create1(EPOLL_CLOEXEC);
    if (epfd < 0)
        die("epoll_create1: %s", strerror(errno));
    /* Hold mode: standard input's end of file ends the hold. */
    int stdin_open = 0;
    if (opt_hold) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (epoll_ctl(epfd, EPOLL_CTL_ADD, 0, &ev) == 0)
            stdin_open = 1;
    }

    t_start = now_ns();
    t_end = t_start + (uint64_t)(opt_duration * 1e9);
    uint64_t t_ramp_end = t_start + (uint64_t)(opt_ramp * 1e9);
    uint64_t t_ready = 0;
    for (unsigned i = 0; i < opt_conns; i++) {
        conns[i].fd = -1;
        conns[i].idx = i;
        conns[i].st = ST_IDLE;
        conns[i].deadline = t_start;
        if (!opt_hold)
            conn_start(&conns[i], t_start);
    }

    while (!stopping) {
        int n = epoll_wait(epfd, evs, (int)opt_conns + 1, 20);
        if (n < 0 && errno != EINTR)
            die("epoll_wait: %s", strerror(errno));
        for (int i = 0; i < n; i++) {
            struct conn *c = evs[i].data.ptr;
            if (c == NULL) {
                char b[256];
                ssize_t r = read(0, b, sizeof b);
                if (r <= 0 && !(r < 0 && errno == EINTR)) {
                    epoll_ctl(epfd, EPOLL_CTL_DEL, 0, NULL);
                    stdin_open = 0;
                    if (ready)
                        stopping = 1;
                }
                continue;
            }
            if (c->fd < 0)
                continue;
            if (c->st == ST_CONNECTING)
                on_writable(c);
            else if (evs[i].events & (EPOLLIN | EPOLLERR | EPOLLHUP))
                on_readable(c);
        }
        uint64_t now = now_ns();
        if (opt_hold) {
            if (!ready && (n_held == opt_conns || now >= t_ramp_end)) {
                ready = 1;
                t_ready = now;
                n_held_ready = n_held;
                /* Give up on what is still logging in. */
                for (unsigned i = 0; i < opt_conns; i++) {
                    struct conn *c = &conns[i];
                    if (c->st != ST_HOLD) {
                        if (c->fd >= 0)
                            conn_error(c, "not logged in after the ramp (%.0fs)", opt_ramp);
                        c->st = ST_DONE;
                        c->deadline = UINT64_MAX;
                    }
                }
                printf("ready held=%llu errors=%llu elapsed=%.2f\n",
                       (unsigned long long)n_held, (unsigned long long)n_errors,
                       (double)(now - t_start) / 1e9);
                fflush(stdout);
                if (!stdin_open)
                    stopping = 1;
            }
            if (ready && now >= t_end && now - t_ready >= (uint64_t)(opt_duration * 1e9))
                stopping = 1;
        } else if (now >= t_end) {
            stopping = 1;
            break;
        }
        for (unsigned i = 0; i < opt_conns; i++) {
            struct conn *c = &conns[i];
            if (now < c->deadline)
                continue;
            if (c->st == ST_IDLE) {
                if (opt_hold && n_logging_in >= opt_parallel)
                    continue;
                conn_start(c, now);
            } else if (c->st != ST_HOLD && c->st != ST_DONE) {
                conn_error(c, "timed out after %.1fs", opt_timeout);
            }
        }
    }
    uint64_t held_at_end = n_held;
    for (unsigned i = 0; i < opt_conns; i++)
        conn_close(&conns[i]);

    double elapsed = (double)(t_end - t_start) / 1e9;
    int ok;
    if (opt_fetch) {
        printf("bytes=%llu fetches=%llu errors=%llu mb_per_sec=%.1f literal=%llu",
               (unsigned long long)n_bytes, (unsigned long long)n_fetches,
               (unsigned long long)n_errors, (double)n_bytes / elapsed / 1e6,
               (unsigned long long)last_literal);
        if (opt_hash)
            printf(" literal_hash=%016llx", (unsigned long long)last_hash);
        printf(" elapsed=%.2f\n", elapsed);
        ok = n_fetches > 0;
    } else if (opt_hold) {
        elapsed = (double)(now_ns() - t_start) / 1e9;
        printf("held=%llu held_at_end=%llu errors=%llu elapsed=%.2f\n",
               (unsigned long long)n_held_ready, (unsigned long long)held_at_end,
               (unsigned long long)n_errors, elapsed);
        ok = held_at_end > 0;
    } else {
        printf("cycles=%llu errors=%llu per_sec=%.1f p50_ms=%.2f p99_ms=%.2f elapsed=%.2f\n",
               (unsigned long long)n_cycles, (unsigned long long)n_errors,
               (double)n_cycles / elapsed, hist_pct(0.50), hist_pct(0.99), elapsed);
        ok = n_cycles > 0;
    }
    fflush(stdout);
    ok = ok && (opt_max_errors < 0 || (long long)n_errors <= opt_max_errors);
    free(evs);
    free(conns);
    free(hist);
    close(epfd);
    return ok ? 0 : 1;
}
