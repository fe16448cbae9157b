/*
 * loadgen: what the benchmark load generators (bench/pop/popload.c,
 * bench/imap/imapload.c) share.
 *
 * One thread, one epoll loop, N concurrent connections to one IPv4
 * host:port. The shared part owns the connections' sockets and deadlines,
 * the options every generator has (-H -p -c -d -u -w -n -f -t -e -v),
 * error counting, the latency histogram of login cycles, and main(). A
 * generator describes its protocol in one constant struct lg_proto named
 * lg_generator (its states, its own options, what to do when bytes arrive).
 *
 * A connection is a struct lg_conn at the start of the generator's own
 * connection struct (lg_container_of gets back to it). Its state is the
 * generator's enum, whose first three values are LG_IDLE, LG_CONNECTING
 * and LG_GREETING; the loop connects idle connections when their deadline
 * comes and times out the others at theirs.
 */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define lg_container_of(ptr, type, member) \
    ((type *)(void *)((char *)(ptr) - offsetof(type, member)))

enum {
    LG_IDLE,        /* not connected; (re)connect at deadline */
    LG_CONNECTING,  /* connect() in progress */
    LG_GREETING,    /* connected, the server's greeting not read yet */
};

struct lg_conn {
    int fd;                 /* -1: closed */
    unsigned idx;           /* 0 .. conns-1: picks the user */
    unsigned gen;           /* bumped on every close: a callback can tell the connection went away */
    int st;                 /* the generator's state */
    uint64_t deadline;      /* ns: the current step must finish by then */
    uint64_t cycle_start;   /* ns: when the connection was opened */
};

/* The options every generator takes. */
struct lg_options {
    const char *host;
    int port;
    unsigned conns;
    double duration;        /* seconds */
    const char *user_prefix;
    const char *pass_prefix;
    unsigned nusers;
    unsigned first;
    double timeout;         /* seconds, per step */
    long long max_errors;   /* -1: unlimited */
    int verbose;
};

struct lg_proto {
    const char *name;                   /* "popload": starts every message */
    const char *server;                 /* "POP3": whose port -p is */
    const char *const *state_names;     /* for error messages, by state */
    size_t conn_size;                   /* the generator's connection struct */
    unsigned max_conns;                 /* -c at most */
    const char *duration_note;          /* appended to -d's line of the usage */
    const char *usage;                  /* usage lines of its own options */
    const char *short_opts;             /* getopt letters of its own options */
    const struct option *long_opts;     /* its long options, ending with {0} */
    /* One of its options; exits through lg_die() on a bad value. */
    void (*option)(int ch, const char *arg);
    /* Optional: 0 when the options given do not go together. */
    int (*options_ok)(void);
    /* Optional: once the loop exists, before the first connection. */
    void (*setup)(void);
    /* Optional: 0 leaves idle connections waiting (the loop asks again). */
    int (*may_connect)(void);
    /* A socket was just made for c: read its answers afresh. */
    void (*opened)(struct lg_conn *c);
    /* c is about to be closed, its fd still open: drop what was being read. */
    void (*closing)(struct lg_conn *c);
    /* Optional: after an error closed c; 1 when the generator keeps it
       closed, 0 to reconnect after a short backoff. */
    int (*lost)(struct lg_conn *c);
    /* c's socket is readable (or has failed). */
    void (*readable)(struct lg_conn *c);
    /* Optional: standard input is readable (setup registered it with
       lg_epoll_fd() and a NULL pointer). */
    void (*input)(void);
    /* Optional: after each turn of the loop; 1 ends the run. Default: the
       duration is over. */
    int (*tick)(uint64_t now);
    /* Prints the result line; 1 when some work completed. */
    int (*report)(void);
};

extern struct lg_options lg_opt;
extern uint64_t lg_t_start, lg_t_end;   /* ns: the measuring window */
extern int lg_stopping;                 /* the run is over: no new work */
extern uint64_t lg_errors;
extern uint64_t lg_cycles;              /* login cycles completed in the window */
/* Count errors after the window too (hold mode: the duration is no window). */
extern int lg_errors_after_end;

/* The generator: loadgen.c's main() parses the options, runs the loop until
   tick says so and prints the report; its exit status is 0 when some work
   completed and the errors are within --max-errors, 1 otherwise, 2 on
   usage errors. */
extern const struct lg_proto lg_generator;

uint64_t lg_now_ns(void);
/* now + the per-step timeout. */
uint64_t lg_step_deadline(uint64_t now);
void lg_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
double lg_parse_double(const char *s, const char *what);
unsigned long lg_parse_ulong(const char *s, const char *what, unsigned long max);

/* The user number of connection c: first + idx % nusers. */
unsigned lg_user_no(const struct lg_conn *c);
/* The i-th connection. */
struct lg_conn *lg_conn_at(unsigned i);
int lg_epoll_fd(void);

/* Counts and reports an error of c (the first five, or all with -v), closes
   it and lets it reconnect after a short backoff (unless the generator's
   lost() keeps it). */
void lg_conn_error(struct lg_conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Sends one command, "<prefix> <fmt...>" (no prefix when it is empty), in
   one write, and moves c to state next with a fresh step deadline. Returns
   0, or -1 after lg_conn_error(). */
int lg_vsend(struct lg_conn *c, int next, const char *prefix, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));
/* recv() into buf: > 0 bytes read, 0 when there is nothing more for now,
   -1 after lg_conn_error() (the server closed, or an error). */
long lg_recv(struct lg_conn *c, void *buf, size_t size);
/* A login cycle of c ended with its logout answer: counted (with its
   latency) when within the window; c is closed and opened again. */
void lg_cycle_done(struct lg_conn *c);
/* Prints "cycles= errors= per_sec= p50_ms= p99_ms= elapsed="; returns 1
   when a cycle completed. */
int lg_report_cycles(void);

#endif
