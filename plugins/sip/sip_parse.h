/*
 * SIP parsing, pure: bytes in, tokens out. No I/O, no logging, no
 * allocation, no core symbols -- so unit tests and fuzzers call it directly.
 *
 * Two layers:
 *  - the stream framer (sip_framer_*): finds where one message ends in a
 *    byte stream (TCP, TLS) by its blank line and Content-Length, resumably,
 *    however the bytes were split by the network;
 *  - the message parser (sip_msg_parse): one complete message (a datagram,
 *    or what the framer delimited) into the slices the redirect server needs.
 *
 * Every result points into the caller's buffer; nothing is NUL-terminated
 * unless it says so. Line ends may be CRLF or a bare LF; header lines may be
 * folded (RFC 3261 7.3.1).
 *
 * References: RFC 3261 (SIP), RFC 3581 (rport), RFC 3966 (tel URI),
 * RFC 5626 (CRLF keep-alive), RFC 5806 (Diversion).
 */
#ifndef SIP_PARSE_H
#define SIP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

enum sip_parse_result {
    SIP_PARSE_MORE,      /* need more bytes (framer only) */
    SIP_PARSE_OK,
    SIP_PARSE_BAD,       /* malformed; *error_r (static) is fit for a 400 reason phrase */
    SIP_PARSE_TOO_LONG,  /* over the caller's limit: 513 */
};

/* Bounds of what we parse. A message beyond them is refused, not truncated. */
#define SIP_HEADERS_MAX 128        /* header lines in one message */
#define SIP_VIA_MAX 32             /* Via header lines (each may hold several values) */
#define SIP_CONTENT_LENGTH_DIGITS 9
#define SIP_CSEQ_MAX 2147483647UL  /* RFC 3261 8.1.1.5: less than 2**31 */
#define SIP_KEY_MAX 128            /* a decoded user part, NUL included */

/* A run of bytes inside the caller's buffer. */
struct sip_slice {
    const char *ptr;
    size_t len;
};

/* ---- stream framing ----------------------------------------------------- */

/* Resumable state: the caller keeps every byte of the current message in
   one buffer and calls sip_frame() again with the longer buffer. */
struct sip_framer {
    unsigned state;        /* enum in sip_parse.c */
    size_t pos;            /* bytes of the buffer already scanned */
    size_t line_start;     /* offset of the current header line */
    size_t skip;           /* CR/LF bytes before the start line */
    unsigned line_ends;    /* LFs among them (two make a keep-alive ping) */
    size_t header_len;     /* once the blank line was seen */
    long content_length;   /* -1 while not seen */
};

struct sip_frame {
    size_t skip;           /* leading CR/LF bytes to drop before the message */
    size_t header_len;     /* start line and headers, blank line included */
    size_t body_len;       /* Content-Length */
    bool ping;             /* a CRLFCRLF keep-alive (RFC 5626): answer CRLF;
                              skip says how many bytes it took */
};

void sip_framer_init(struct sip_framer *f);

/*
 * Scan buf[0..len) (the current message so far, from its first byte; the
 * caller only ever appends) for the end of the header block and its
 * Content-Length.
 *
 * Returns SIP_PARSE_MORE (keep the bytes, call again with more),
 * SIP_PARSE_OK (*frame_r says where the message is: buf[skip..skip +
 * header_len + body_len); the body may not be buffered yet -- the caller
 * waits for it; bytes after it belong to the next message; reset the framer
 * with sip_framer_init before the next), SIP_PARSE_TOO_LONG (the header block
 * is longer than max_header bytes: framing is lost) or SIP_PARSE_BAD (no or
 * a bad Content-Length: RFC 3261 18.3 makes it mandatory on streams;
 * *error_r says why).
 */
enum sip_parse_result sip_frame(struct sip_framer *f, const char *buf, size_t len,
                                size_t max_header, struct sip_frame *frame_r,
                                const char **error_r);

/* ---- messages ----------------------------------------------------------- */

enum sip_method {
    SIP_METHOD_OTHER,
    SIP_METHOD_INVITE,
    SIP_METHOD_ACK,
    SIP_METHOD_CANCEL,
    SIP_METHOD_OPTIONS,
    SIP_METHOD_BYE,
    SIP_METHOD_REGISTER,
};

/* The first value of the top Via header. */
struct sip_via {
    struct sip_slice value;      /* the whole via-parm, "SIP/2.0/UDP h:p;branch=..." */
    struct sip_slice transport;  /* "UDP", "TCP", "TLS", ... */
    struct sip_slice host;       /* sent-by host, IPv6 with its brackets */
    unsigned port;               /* sent-by port, 0 when absent */
    struct sip_slice branch;     /* value of branch=, len 0 when absent */
    struct sip_slice rport;      /* the "rport" parameter (name and any value), len 0 if absent */
    bool rport_empty;            /* rport without a value: the server fills it in */
    bool has_received;           /* a received= parameter is present */
    struct sip_slice rest;       /* further values of the same header line after the comma */
};

struct sip_msg {
    bool request;                /* false: a response */
    enum sip_method method;
    struct sip_slice method_name;
    struct sip_slice ruri;       /* Request-URI */
    unsigned status;             /* responses */

    struct sip_slice via[SIP_VIA_MAX];   /* values of the Via header lines, in order */
    unsigned nvia;
    struct sip_via top_via;

    struct sip_slice from, to, call_id, cseq;  /* header values, trimmed */
    struct sip_slice from_tag, to_tag;          /* len 0 when absent */
    unsigned long cseq_num;
    enum sip_method cseq_method;
    struct sip_slice cseq_method_name;
    long max_forwards;           /* -1 when absent */
    long content_length;         /* -1 when absent */
    struct sip_slice diversion;  /* the first Diversion header's first value */
    struct sip_slice require;    /* the first Require header's value */

    size_t header_len;           /* start line and headers, blank line included */
    struct sip_slice body;
    unsigned nheaders;
};

/*
 * Parse one complete message. For a datagram (stream == false) a missing
 * Content-Length means "the rest of the datagram"; bytes beyond
 * Content-Length are dropped (RFC 3261 18.3); a body shorter than
 * Content-Length is BAD. On streams the framer already delimited the
 * message and Content-Length is mandatory.
 *
 * Requests: Via, From, To, Call-ID and CSeq are mandatory; CSeq's method
 * must be the request's; From must carry a tag. A message that fails these
 * checks after its headers were read returns SIP_PARSE_BAD with every
 * field that did parse still set (enough, often, to build the 400).
 * SIP versions other than 2.0 give SIP_PARSE_BAD with *error_r set to
 * SIP_ERR_VERSION.
 */
enum sip_parse_result sip_msg_parse(const char *buf, size_t len, bool stream,
                                    struct sip_msg *msg_r, const char **error_r);
extern const char SIP_ERR_VERSION[];

/* The method named by a token (case-sensitive, as RFC 3261 7.1 says). */
enum sip_method sip_method_from(struct sip_slice name);

/* ---- URIs --------------------------------------------------------------- */

enum sip_scheme { SIP_SCHEME_OTHER, SIP_SCHEME_SIP, SIP_SCHEME_SIPS, SIP_SCHEME_TEL };

struct sip_uri {
    enum sip_scheme scheme;
    struct sip_slice user;       /* sip/sips: userinfo before '@' without password; tel: the number */
    struct sip_slice host;       /* sip/sips only */
};

/* Split a URI. SIP_PARSE_BAD for an empty URI or a sip/sips URI without a
   host. Other schemes parse as SIP_SCHEME_OTHER with empty user and host. */
enum sip_parse_result sip_uri_parse(struct sip_slice s, struct sip_uri *uri_r);

/* The URI of a name-addr or addr-spec header value (From, To, Contact,
   Diversion): `"Name" <uri>;params`, `<uri>`, or `uri;params`. */
enum sip_parse_result sip_name_addr_uri(struct sip_slice value, struct sip_slice *uri_r);

/*
 * A directory key from a URI's user part: percent-decoded, user parameters
 * (";phone-context=...") dropped; for tel: URIs also the visual separators
 * "-.()" of RFC 3966. NUL-terminated in out. Returns the length, or -1 when
 * the result is empty, holds a control character or does not fit.
 */
long sip_uri_user_key(const struct sip_uri *uri, char *out, size_t outsize);

/* A header parameter's value (";tag=" in From/To), outside quotes and <>.
   Returns false when absent. Parameter names compare case-insensitively. */
bool sip_header_param(struct sip_slice value, const char *name, struct sip_slice *value_r);

/* Case-insensitive comparison of a slice with a NUL-terminated word. */
bool sip_slice_eq(struct sip_slice s, const char *word);

/*
 * Copy at most outsize - 1 bytes of `in` for a log line or reason phrase,
 * replacing control characters and DEL with '?', and NUL-terminate.
 * Returns the length written. outsize must be > 0.
 */
size_t sip_sanitize(const char *in, size_t len, char *out, size_t outsize);

#endif
