/*
 * imapload: a small IMAP load generator for the gatewayd benchmarks
 * (bench/imap/run.py), in the style of bench/pop/popload.c.
 *
 * One thread, one epoll loop, N concurrent connections to one host:port
 * (the loop, the connections, the common options and the statistics are
 * bench/loadgen.c's, shared with popload).
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
#include "loadgen.h"

#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <unistd.h>

enum state {
    ST_IDLE = LG_IDLE,              /* not connected; (re)connect at the deadline */
    ST_CONNECTING = LG_CONNECTING,  /* connect() in progress */
    ST_GREETING = LG_GREETING,      /* waiting for the server's "* OK" */
    ST_LOGIN,                       /* LOGIN sent */
    ST_SELECT,                      /* SELECT INBOX sent */
    ST_LOGOUT,                      /* LOGOUT sent: its tagged OK ends a cycle */
    ST_FETCH,                       /* FETCH sent, its answer being read */
    ST_HOLD,                        /* logged in and selected, idle (hold mode) */
    ST_DONE,                        /* hold mode: given up on this connection */
};

static const char *const state_names[] = {
    "idle", "connect", "greeting", "LOGIN", "SELECT", "LOGOUT", "FETCH", "hold", "done",
};

#define LINE_MAX_LEN 8192

struct imap_conn {
    struct lg_conn base;
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

/* ---- options of imapload's own ---- */

static unsigned opt_fetch;          /* 0: not FETCH mode */
static int opt_hold;
static unsigned opt_parallel = 100; /* hold: connections in the login phase at once */
static double opt_ramp = 60.0;      /* hold: give up completing the ramp after this */
static int opt_hash;

/* ---- results ---- */

static uint64_t n_fetches, n_bytes, n_held, n_held_ready;
static uint64_t last_literal, last_hash;
static unsigned n_logging_in;       /* hold: connections between connect and ST_HOLD */

static int ready;                   /* hold: the ramp is over */
static uint64_t t_ready;            /* hold: ns, when it was */
static int stdin_open;              /* hold: its end of file ends the hold */

static struct imap_conn *imap_conn(struct lg_conn *c)
{
    return lg_container_of(c, struct imap_conn, base);
}

static int in_login_phase(const struct imap_conn *c)
{
    return c->base.fd >= 0 && c->base.st >= ST_CONNECTING && c->base.st <= ST_SELECT;
}

static void imap_opened(struct lg_conn *lc)
{
    struct imap_conn *c = imap_conn(lc);
    c->linelen = 0;
    c->ctaillen = 0;
    c->cont = 0;
    c->lit_left = 0;
    c->taglen = 0;
    if (opt_hold)
        n_logging_in++;
}

static void imap_closing(struct lg_conn *lc)
{
    struct imap_conn *c = imap_conn(lc);
    if (opt_hold && in_login_phase(c))
        n_logging_in--;
    c->linelen = 0;
    c->ctaillen = 0;
    c->cont = 0;
    c->lit_left = 0;
}

static int imap_lost(struct lg_conn *c)
{
    if (opt_hold && c->st == ST_HOLD)
        n_held--;
    if (opt_hold && ready) {
        c->st = ST_DONE;        /* after the ramp a lost session stays lost */
        c->deadline = UINT64_MAX;
        return 1;
    }
    return 0;
}

static void send_cmd(struct imap_conn *c, enum state next, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_cmd(struct imap_conn *c, enum state next, const char *fmt, ...)
{
    c->seq++;
    int t = snprintf(c->tag, sizeof c->tag, "t%u", c->seq);
    c->taglen = (size_t)t;
    va_list ap;
    va_start(ap, fmt);
    lg_vsend(&c->base, next, c->tag, fmt, ap);
    va_end(ap);
}

/* The tagged completion of the command in flight (line without CRLF). */
static void on_tagged(struct imap_conn *c, const char *line)
{
    const char *st = line + c->taglen + 1;
    if (strncmp(st, "OK", 2) != 0 || (st[2] != ' ' && st[2] != '\0')) {
        lg_conn_error(&c->base, "answer %.200s", line);
        return;
    }
    switch (c->base.st) {
    case ST_LOGIN:
        send_cmd(c, ST_SELECT, "SELECT INBOX\r\n");
        break;
    case ST_SELECT:
        if (opt_fetch) {
            send_cmd(c, ST_FETCH, "FETCH %u BODY.PEEK[]\r\n", opt_fetch);
        } else if (opt_hold) {
            c->base.st = ST_HOLD;
            c->base.deadline = UINT64_MAX;
            n_logging_in--;
            n_held++;
        } else {
            send_cmd(c, ST_LOGOUT, "LOGOUT\r\n");
        }
        break;
    case ST_LOGOUT:
        lg_cycle_done(&c->base);
        break;
    case ST_FETCH:
        if (lg_now_ns() <= lg_t_end)
            n_fetches++;
        if (!lg_stopping)
            send_cmd(c, ST_FETCH, "FETCH %u BODY.PEEK[]\r\n", opt_fetch);
        break;
    default:
        lg_conn_error(&c->base, "unexpected tagged answer %.200s", line);
        break;
    }
}

/* A complete logical line (without CRLF; for a line with literals, only its
   first physical line, and cont says there were literals). */
static void on_line(struct imap_conn *c, const char *line, int had_literal)
{
    if (c->base.st == ST_GREETING) {
        if (strncmp(line, "* OK", 4) != 0) {
            lg_conn_error(&c->base, "greeting %.200s", line);
            return;
        }
        send_cmd(c, ST_LOGIN, "LOGIN %s%u %s%u\r\n", lg_opt.user_prefix, lg_user_no(&c->base),
                 lg_opt.pass_prefix, lg_user_no(&c->base));
        return;
    }
    if (!had_literal && c->taglen > 0 && strncmp(line, c->tag, c->taglen) == 0 &&
        line[c->taglen] == ' ') {
        on_tagged(c, line);
        return;
    }
    if (line[0] == '*') {
        if (strncmp(line, "* BYE", 5) == 0 && c->base.st != ST_LOGOUT) {
            lg_conn_error(&c->base, "%.200s", line);
            return;
        }
        return;     /* untagged data: ignored */
    }
    if (line[0] == '+') {
        lg_conn_error(&c->base, "unexpected continuation request %.200s", line);
        return;
    }
    if (c->base.st == ST_HOLD)
        return;
    lg_conn_error(&c->base, "unexpected line %.200s", line);
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
static void on_bytes(struct imap_conn *c, const unsigned char *p, size_t n)
{
    unsigned gen = c->base.gen;
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
                lg_conn_error(&c->base, "answer line too long");
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
        if (c->base.gen != gen || c->base.fd < 0)
            return;
    }
}

static void imap_readable(struct lg_conn *lc)
{
    unsigned gen = lc->gen;
    for (;;) {
        long r = lg_recv(lc, rbuf, sizeof rbuf);
        if (r <= 0)
            return;
        if (lc->st == ST_FETCH && lg_now_ns() <= lg_t_end)
            n_bytes += (uint64_t)r;
        on_bytes(imap_conn(lc), rbuf, (size_t)r);
        if (lc->gen != gen || lc->fd < 0)
            return;     /* closed (and maybe restarted): this read is consumed */
        if ((size_t)r < sizeof rbuf)
            return;     /* level-triggered: epoll says when there is more */
    }
}

/* ---- hold mode ---- */

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

static void imap_setup(void)
{
    raise_nofile(lg_opt.conns);
    /* Hold mode: errors count for as long as the sessions are held, and
       standard input's end of file ends the hold. */
    lg_errors_after_end = opt_hold;
    if (opt_hold) {
        struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
        if (epoll_ctl(lg_epoll_fd(), EPOLL_CTL_ADD, 0, &ev) == 0)
            stdin_open = 1;
    }
}

static void imap_input(void)
{
    char b[256];
    ssize_t r = read(0, b, sizeof b);
    if (r <= 0 && !(r < 0 && errno == EINTR)) {
        epoll_ctl(lg_epoll_fd(), EPOLL_CTL_DEL, 0, NULL);
        stdin_open = 0;
        if (ready)
            lg_stopping = 1;
    }
}

static int imap_may_connect(void)
{
    return !opt_hold || n_logging_in < opt_parallel;
}

/* Every session is in (or the ramp time is over): give up on what is
   still logging in and say so on stdout. */
static void hold_ready(uint64_t now)
{
    ready = 1;
    t_ready = now;
    n_held_ready = n_held;
    for (unsigned i = 0; i < lg_opt.conns; i++) {
        struct lg_conn *c = lg_conn_at(i);
        if (c->st != ST_HOLD) {
            if (c->fd >= 0)
                lg_conn_error(c, "not logged in after the ramp (%.0fs)", opt_ramp);
            c->st = ST_DONE;
            c->deadline = UINT64_MAX;
        }
    }
    printf("ready held=%llu errors=%llu elapsed=%.2f\n",
           (unsigned long long)n_held, (unsigned long long)lg_errors,
           (double)(now - lg_t_start) / 1e9);
    fflush(stdout);
}

static int imap_tick(uint64_t now)
{
    if (!opt_hold)
        return now >= lg_t_end;
    if (!ready && (n_held == lg_opt.conns || now >= lg_t_start + (uint64_t)(opt_ramp * 1e9))) {
        hold_ready(now);
        if (!stdin_open)
            return 1;
    }
    return ready && now >= lg_t_end && now - t_ready >= (uint64_t)(lg_opt.duration * 1e9);
}

/* ---- report and options ---- */

static int imap_report(void)
{
    double elapsed = (double)(lg_t_end - lg_t_start) / 1e9;
    if (opt_fetch) {
        printf("bytes=%llu fetches=%llu errors=%llu mb_per_sec=%.1f literal=%llu",
               (unsigned long long)n_bytes, (unsigned long long)n_fetches,
               (unsigned long long)lg_errors, (double)n_bytes / elapsed / 1e6,
               (unsigned long long)last_literal);
        if (opt_hash)
            printf(" literal_hash=%016llx", (unsigned long long)last_hash);
        printf(" elapsed=%.2f\n", elapsed);
        return n_fetches > 0;
    }
    if (opt_hold) {
        elapsed = (double)(lg_now_ns() - lg_t_start) / 1e9;
        printf("held=%llu held_at_end=%llu errors=%llu elapsed=%.2f\n",
               (unsigned long long)n_held_ready, (unsigned long long)n_held,
               (unsigned long long)lg_errors, elapsed);
        return n_held > 0;
    }
    return lg_report_cycles();
}

static const struct option imap_long_opts[] = {
    {"fetch", required_argument, NULL, 'F'},
    {"hash", no_argument, NULL, 'k'},
    {"hold", no_argument, NULL, 'o'},
    {"parallel", required_argument, NULL, 'P'},
    {"ramp", required_argument, NULL, 'R'},
    {NULL, 0, NULL, 0},
};

static void imap_option(int ch, const char *arg)
{
    switch (ch) {
    case 'F':
        opt_fetch = (unsigned)lg_parse_ulong(arg, "message number", 1000000);
        if (opt_fetch == 0)
            lg_die("bad message number: 0");
        break;
    case 'k': opt_hash = 1; break;
    case 'o': opt_hold = 1; break;
    case 'P': opt_parallel = (unsigned)lg_parse_ulong(arg, "parallel logins", 100000); break;
    case 'R': opt_ramp = lg_parse_double(arg, "ramp time"); break;
    }
}

static int imap_options_ok(void)
{
    return opt_parallel != 0 && !(opt_fetch && opt_hold);
}

const struct lg_proto lg_generator = {
    .name = "imapload",
    .server = "IMAP",
    .state_names = state_names,
    .conn_size = sizeof(struct imap_conn),
    .max_conns = 100000,
    .duration_note = "; hold: longest hold",
    .usage = "  -F, --fetch N           FETCH mode: log in once, FETCH N BODY.PEEK[] repeatedly\n"
             "  -k, --hash              FETCH mode: hash the literals (FNV-1a 64)\n"
             "  -o, --hold              hold mode: log in, SELECT, stay idle until stdin closes\n"
             "  -P, --parallel N        hold mode: logins in flight at once (100)\n"
             "  -R, --ramp SEC          hold mode: print ready after this at the latest (60)\n",
    .short_opts = "F:koP:R:",
    .long_opts = imap_long_opts,
    .option = imap_option,
    .options_ok = imap_options_ok,
    .setup = imap_setup,
    .may_connect = imap_may_connect,
    .opened = imap_opened,
    .closing = imap_closing,
    .lost = imap_lost,
    .readable = imap_readable,
    .input = imap_input,
    .tick = imap_tick,
    .report = imap_report,
};
