/*
 * One connection layer for every plugin: buffered, limited, timed,
 * non-blocking I/O over plain TCP or TLS. Protocol code never knows whether
 * the bytes are encrypted; STARTTLS swaps the transport underneath.
 *
 * Events are delivered to one handler per connection. Closing is deferred:
 * after gw_conn_close() no further event is delivered and the memory is freed
 * once the current callback has returned.
 */
#ifndef GW_CONN_H
#define GW_CONN_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/socket.h>
#include <sys/types.h>

struct gw_conn;

enum gw_conn_event {
    GW_EV_READ,       /* new bytes are in the input buffer (or EOF follows) */
    GW_EV_EOF,        /* the peer closed its side; input may still hold bytes */
    GW_EV_TIMEOUT,    /* the timer set with gw_conn_set_timeout() expired */
    GW_EV_ERROR,      /* I/O or TLS error; the connection is unusable */
    GW_EV_CONNECTED,  /* outgoing connection (and its implicit TLS) is up */
    GW_EV_TLS_DONE,   /* gw_conn_starttls*() finished successfully */
    GW_EV_DRAINED,    /* the output buffer was fully written (if asked) */
};

typedef void gw_conn_handler(struct gw_conn *c, enum gw_conn_event ev, void *arg);

/* Who is on the other side of a connection or datagram: textual address
   ("127.0.0.1", "::1") and port. */
struct gw_peer {
    char addr[46];
    unsigned port;
};

/* Set the event handler. Until one is set, events are dropped. */
void gw_conn_set_handler(struct gw_conn *c, gw_conn_handler *h, void *arg);

/* Arm (ms > 0) or disarm (ms == 0) the connection's timer; any read or
   write progress does NOT restart it: this is the caller's deadline.
   Re-arming replaces the previous deadline. While the core is still
   connecting an upstream (connect, implicit TLS, waiting for a greeting)
   or doing a handshake, its own timers bound that; a deadline set meanwhile
   starts when the connection is handed to the plugin. */
void gw_conn_set_timeout(struct gw_conn *c, long ms);

/*
 * Reading. The input buffer has a hard limit fixed at creation
 * (limits.line or the listener's buffer size).
 *
 * gw_conn_read_line: returns 1 and a line without its CRLF (or bare LF)
 *   when a complete line is buffered; the pointer stays valid until the next
 *   read call or return to the loop. Returns 0 when more bytes are needed,
 *   GW_ERR_TOO_LONG once when the buffer is full without a line end (the
 *   rest of that line is then discarded silently as it arrives, up to and
 *   including its end), GW_ERR_EOF at end of input.
 * gw_conn_read_bytes: takes up to `max` buffered bytes; returns the count
 *   (0: none buffered yet), pointer valid as above.
 * gw_conn_pending: bytes buffered but not yet taken.
 */
#define GW_ERR_TOO_LONG (-2)
#define GW_ERR_EOF      (-3)
int gw_conn_read_line(struct gw_conn *c, const char **line_r, size_t *len_r);
/* Change the input buffer's limit (default 8 KiB), e.g. larger for bulk
   bodies: fewer, bigger reads. Clamped to [1 KiB, GW_CONN_INPUT_MAX] and
   never below what is buffered now. Memory is still only taken as bytes
   arrive, and given back when the buffer is empty and released. */
#define GW_CONN_INPUT_MAX (1024u * 1024u)
void gw_conn_set_input_limit(struct gw_conn *c, size_t limit);
size_t gw_conn_read_bytes(struct gw_conn *c, size_t max, const char **data_r);
size_t gw_conn_pending(const struct gw_conn *c);

/* Stop / resume reading from the socket (backpressure, or while a lookup
   is in flight so pipelined input waits in the kernel). */
void gw_conn_pause(struct gw_conn *c);
void gw_conn_resume(struct gw_conn *c);

/*
 * Writing: appends to the output buffer and flushes as the socket allows.
 * Returns 0, or -1 when the output limit would be exceeded (the caller
 * should treat the peer as abusive and close).
 * gw_conn_notify_drained: deliver GW_EV_DRAINED once output is empty.
 */
int gw_conn_write(struct gw_conn *c, const void *data, size_t len);
int gw_conn_printf(struct gw_conn *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
size_t gw_conn_unsent(const struct gw_conn *c);
void gw_conn_notify_drained(struct gw_conn *c);

/*
 * TLS. gw_conn_starttls (server side, with the listener's certificates) and
 * gw_conn_starttls_client (to a backend) discard any buffered plaintext
 * input first -- anything a peer pipelined after STARTTLS must never be
 * taken as if it came over TLS -- then deliver GW_EV_TLS_DONE or GW_EV_ERROR.
 * Returns -1 when TLS is not available on this connection.
 */
int gw_conn_starttls(struct gw_conn *c);
int gw_conn_starttls_client(struct gw_conn *c);
bool gw_conn_is_tls(const struct gw_conn *c);

/* Facts about the connection. */
const struct gw_peer *gw_conn_peer(const struct gw_conn *c);
const struct gw_peer *gw_conn_local(const struct gw_conn *c);
/* For client connections: the listener's TLS mode and options. */
enum gw_tls_mode {
    GW_TLS_NONE,      /* plaintext only */
    GW_TLS_STARTTLS,  /* plaintext, upgradable (STLS / STARTTLS) */
    GW_TLS_IMPLICIT,  /* TLS from the first byte */
};
enum gw_tls_mode gw_conn_tls_mode(const struct gw_conn *c);
/* Whether plaintext authentication is allowed right now on this connection:
   true when it is TLS, or its listener has allow_plaintext set. */
bool gw_conn_plaintext_ok(const struct gw_conn *c);

/* Log context: the user and the backend this session is about. Copied. */
void gw_conn_set_user(struct gw_conn *c, const char *user);
const char *gw_conn_user(const struct gw_conn *c);

/* Deferred close; safe to call more than once and from any callback. */
void gw_conn_close(struct gw_conn *c);
/* Write what is buffered (bounded by the connection's timeout), then close. */
void gw_conn_close_after_write(struct gw_conn *c);

/*
 * Datagrams (UDP listeners). Valid only during the plugin's datagram hook.
 */
struct gw_datagram;
const char *gw_datagram_data(const struct gw_datagram *dg, size_t *len_r);
const struct gw_peer *gw_datagram_peer(const struct gw_datagram *dg);
const struct gw_peer *gw_datagram_local(const struct gw_datagram *dg);
int gw_datagram_reply(struct gw_datagram *dg, const void *data, size_t len);

/* To answer later (after an asynchronous lookup), keep the return path:
   the receiving socket (alive as long as the worker) and the peer address. */
struct gw_return_path {
    int fd;
    struct sockaddr_storage addr;
    socklen_t addrlen;
};
void gw_datagram_return_path(const struct gw_datagram *dg, struct gw_return_path *rp_r);
int gw_return_path_send(const struct gw_return_path *rp, const void *data, size_t len);

#endif
