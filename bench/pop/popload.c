/*
 * popload: a small POP3 load generator for the gatewayd benchmarks.
 *
 * One thread, one epoll loop, N concurrent connections to one host:port
 * (the loop, the connections, the common options and the statistics are
 * bench/loadgen.c's, shared with imapload).
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
#include "loadgen.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

enum state {
    ST_IDLE = LG_IDLE,              /* not connected; reconnect at the deadline (backoff) */
    ST_CONNECTING = LG_CONNECTING,  /* connect() in progress */
    ST_GREETING = LG_GREETING,      /* waiting for the server's +OK */
    ST_USER,                        /* USER sent */
    ST_PASS,                        /* PASS sent */
    ST_STAT,                        /* STAT sent (login mode) */
    ST_QUIT,                        /* QUIT sent: its +OK ends a cycle */
    ST_RETR,                        /* RETR sent, its multi-line answer being read */
};

static const char *const state_names[] = {
    "idle", "connect", "greeting", "USER", "PASS", "STAT", "QUIT", "RETR",
};

struct pop_conn {
    struct lg_conn base;
    char line[1024];        /* single-line answer being read */
    size_t linelen;
    unsigned char tail[4];  /* RETR: last bytes of the answer so far */
    size_t taillen;
    uint64_t resp_bytes;    /* RETR: bytes of the current answer */
    uint64_t status_len;    /* RETR: length of its status line with CRLF, 0: unknown */
};

static unsigned opt_retr;           /* 0: login mode */

static uint64_t n_retrs, n_bytes;
static uint64_t last_body;  /* RETR: bytes after the status line of the last answer */

static struct pop_conn *pop_conn(struct lg_conn *c)
{
    return lg_container_of(c, struct pop_conn, base);
}

/* Connected or closing: no answer is half read. */
static void pop_reset(struct lg_conn *lc)
{
    struct pop_conn *c = pop_conn(lc);
    c->linelen = 0;
    c->taillen = 0;
    c->resp_bytes = 0;
}

static void send_cmd(struct pop_conn *c, enum state next, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void send_cmd(struct pop_conn *c, enum state next, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    lg_vsend(&c->base, next, "", fmt, ap);
    va_end(ap);
}

/* A complete single-line answer (without CRLF) arrived in state c->base.st. */
static void on_line(struct pop_conn *c, const char *line)
{
    if (strncmp(line, "+OK", 3) != 0) {
        lg_conn_error(&c->base, "answer %.200s", line);
        return;
    }
    switch (c->base.st) {
    case ST_GREETING:
        send_cmd(c, ST_USER, "USER %s%u\r\n", lg_opt.user_prefix, lg_user_no(&c->base));
        break;
    case ST_USER:
        send_cmd(c, ST_PASS, "PASS %s%u\r\n", lg_opt.pass_prefix, lg_user_no(&c->base));
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
    case ST_QUIT:
        lg_cycle_done(&c->base);
        break;
    default:
        lg_conn_error(&c->base, "unexpected line");
        break;
    }
}

/* RETR answer bytes: look for the final "\r\n.\r\n" (also across reads). */
static void on_retr_data(struct pop_conn *c, const unsigned char *p, size_t n)
{
    static const char term[] = "\r\n.\r\n";
    if (c->resp_bytes == 0 && n > 0 && p[0] != '+') {
        size_t l = 0;
        while (l < n && l < 200 && p[l] != '\r' && p[l] != '\n')
            l++;
        lg_conn_error(&c->base, "answer %.*s", (int)l, (const char *)p);
        return;
    }
    if (c->resp_bytes == 0) {
        const unsigned char *nl = memchr(p, '\n', n);
        c->status_len = nl ? (uint64_t)(nl - p + 1) : 0;
    }
    c->resp_bytes += n;
    if (lg_now_ns() <= lg_t_end)
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
            lg_conn_error(&c->base, "%zu bytes after the end of the RETR answer", after);
            return;
        }
        if (lg_now_ns() <= lg_t_end)
            n_retrs++;
        if (c->status_len)
            last_body = c->resp_bytes - c->status_len;
        c->resp_bytes = 0;
        c->taillen = 0;
        if (!lg_stopping)
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
    c->base.deadline = lg_step_deadline(lg_now_ns());
}

static unsigned char rbuf[256 * 1024];

static void pop_readable(struct lg_conn *lc)
{
    struct pop_conn *c = pop_conn(lc);
    for (;;) {
        long r = lg_recv(lc, rbuf, sizeof rbuf);
        if (r <= 0)
            return;
        if (lc->st == ST_RETR) {
            on_retr_data(c, rbuf, (size_t)r);
            if (lc->fd < 0 || lc->st != ST_RETR)
                return;
            continue;
        }
        /* Single-line answers: collect up to CRLF. */
        size_t off = 0;
        while (off < (size_t)r) {
            unsigned char ch = rbuf[off++];
            if (c->linelen + 1 >= sizeof c->line) {
                lg_conn_error(lc, "answer line too long");
                return;
            }
            c->line[c->linelen++] = (char)ch;
            if (ch == '\n') {
                size_t l = c->linelen - 1;
                if (l > 0 && c->line[l - 1] == '\r')
                    l--;
                c->line[l] = '\0';
                if (off != (size_t)r) {
                    lg_conn_error(lc, "unexpected data after an answer line");
                    return;
                }
                c->linelen = 0;     /* the next answer starts afresh */
                on_line(c, c->line);
                /* on_line may have closed and restarted the connection;
                 * either way this read is consumed. */
                return;
            }
        }
    }
}

static int pop_report(void)
{
    if (!opt_retr)
        return lg_report_cycles();
    double elapsed = (double)(lg_t_end - lg_t_start) / 1e9;
    printf("bytes=%llu retrs=%llu errors=%llu mb_per_sec=%.1f answer_body=%llu elapsed=%.2f\n",
           (unsigned long long)n_bytes, (unsigned long long)n_retrs,
           (unsigned long long)lg_errors, (double)n_bytes / elapsed / 1e6,
           (unsigned long long)last_body, elapsed);
    return n_retrs > 0;
}

static const struct option pop_long_opts[] = {
    {"retr", required_argument, NULL, 'r'},
    {NULL, 0, NULL, 0},
};

static void pop_option(int ch, const char *arg)
{
    (void)ch;   /* 'r', popload's only option of its own */
    opt_retr = (unsigned)lg_parse_ulong(arg, "message number", 1000000);
    if (opt_retr == 0)
        lg_die("bad message number: 0");
}

const struct lg_proto lg_generator = {
    .name = "popload",
    .server = "POP3",
    .state_names = state_names,
    .conn_size = sizeof(struct pop_conn),
    .max_conns = 10000,
    .duration_note = "",
    .usage = "  -r, --retr N            RETR mode: log in once, RETR message N repeatedly\n",
    .short_opts = "r:",
    .long_opts = pop_long_opts,
    .option = pop_option,
    .opened = pop_reset,
    .closing = pop_reset,
    .readable = pop_readable,
    .report = pop_report,
};
