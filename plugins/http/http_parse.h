/*
 * HTTP/1.1 message heads and bodies, pure: bytes in, tokens out. No I/O, no
 * logging, no allocation, no core symbols -- unit tests and the fuzzer call
 * it directly.
 *
 * Three layers, used in this order on every message:
 *
 *  1. http_scan_head(): our own byte-resumable scanner. It finds the end of
 *     the head and enforces what the Node.js http_parser (Debian builds it in
 *     its non-strict mode) lets through: NUL, bare CR, bare LF, control
 *     characters and non-ASCII in the start line, whitespace in or after a
 *     field name, obs-fold; and the limits (start line -> 414, header count
 *     and head size -> 431).
 *  2. http_request_parse() / http_response_parse(): the scanned head through
 *     http_parser (method, target, version, Content-Length and
 *     Transfer-Encoding semantics, keep-alive, Upgrade), plus the semantic
 *     checks it lacks: one Host, one Content-Length, Transfer-Encoding exactly
 *     "chunked" and only once, Expect, the target forms.
 *  3. http_chunked_parse(): our own strict chunked decoder. http_parser's
 *     takes "5\rX" as a chunk-size line (it swallows the byte after a bare
 *     CR) and accepts obs-fold, bare LF and control characters in trailers;
 *     since chunked framing is exactly where request smuggling lives, bodies
 *     are decoded here and re-encoded by the caller.
 *
 * Results point into the caller's buffer; nothing is NUL-terminated unless
 * it says so. Errors come with the HTTP status to answer and a static reason.
 *
 * References: RFC 9110 (semantics), RFC 9112 (HTTP/1.1), RFC 7617 (Basic),
 * RFC 6455 (WebSocket opening handshake).
 */
#ifndef HTTP_PARSE_H
#define HTTP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum http_parse_result {
    HTTP_PARSE_MORE,  /* consumed everything given; more input needed */
    HTTP_PARSE_OK,    /* complete */
    HTTP_PARSE_BAD,   /* malformed or over a limit: *status_r and *error_r say how */
};

/* A run of bytes inside the caller's buffer. ptr is NULL when absent. */
struct http_slice {
    const char *ptr;
    size_t len;
};

/* Hard upper bounds for the configurable limits. */
#define HTTP_MAX_HEADERS_LIMIT 1000
#define HTTP_LEADING_CRLF_MAX 4      /* empty lines tolerated before a request line */
#define HTTP_CHUNK_LINE_MAX 4096     /* chunk-size line with extensions */
#define HTTP_TRAILER_MAX 16384       /* whole trailer section */

/* ---- 1. the head scanner ----------------------------------------------- */

struct http_limits {
    size_t max_line;      /* start line octets without CRLF; over it: 414 (request) */
    size_t max_head;      /* whole head with every CRLF; over it: 431 */
    size_t max_headers;   /* field lines; over it: 431 (at most HTTP_MAX_HEADERS_LIMIT) */
};

/* Scanner state; zero it (or http_scan_init) before the first byte of a
   message. `response` selects the status-line rules. */
struct http_scan {
    unsigned state;
    bool response;
    size_t pos;           /* bytes of the buffer examined so far */
    size_t start;         /* offset of the start line (after empty lines) */
    size_t line_start;    /* offset of the line being scanned */
    size_t line0_len;     /* start line length without CRLF, once known */
    size_t nheaders;      /* field lines seen */
};

void http_scan_init(struct http_scan *sc, bool response);

/*
 * Scan buf[0..len), where buf holds the message from its first byte and
 * grows between calls (bytes already scanned must not change). Returns
 * MORE, or OK when the head is complete: it is buf[0..sc->pos) (the empty
 * lines before the start line included), or BAD with *status_r 400, 414 or
 * 431 (for responses the caller answers 502 whatever the status).
 */
enum http_parse_result http_scan_head(struct http_scan *sc, const char *buf, size_t len,
                                      const struct http_limits *lim, unsigned *status_r,
                                      const char **error_r);

/* ---- 2. heads ---------------------------------------------------------- */

struct http_header {
    struct http_slice name;
    struct http_slice value;   /* without leading and trailing whitespace */
};

enum http_body {
    HTTP_BODY_NONE,       /* no body */
    HTTP_BODY_LENGTH,     /* Content-Length bytes */
    HTTP_BODY_CHUNKED,    /* chunked transfer coding */
    HTTP_BODY_EOF,        /* responses only: until the backend closes */
};

/* Connection header tokens we act on. */
#define HTTP_CONN_CLOSE      0x1
#define HTTP_CONN_KEEP_ALIVE 0x2
#define HTTP_CONN_UPGRADE    0x4
#define HTTP_CONN_OTHER      0x8   /* names of further hop-by-hop headers */

struct http_request {
    unsigned method;              /* enum http_method of <http_parser.h> */
    struct http_slice method_name;
    struct http_slice target;     /* as received */
    struct http_slice path;       /* origin-form path ("*" for asterisk-form) */
    struct http_slice query;      /* after '?', ptr NULL without one */
    struct http_slice authority;  /* absolute-form host[:port], ptr NULL otherwise */
    unsigned version_major, version_minor;
    struct http_header *headers;  /* the caller's array */
    size_t nheaders;
    enum http_body body;          /* NONE, LENGTH or CHUNKED */
    uint64_t content_length;      /* HTTP_BODY_LENGTH */
    unsigned connection;          /* HTTP_CONN_* seen in Connection */
    bool keep_alive;              /* the client wants the connection kept */
    bool websocket;               /* GET with Upgrade: websocket, Connection: upgrade */
    bool expect_continue;         /* Expect: 100-continue */
    int host;                     /* index of the Host header, -1 if none */
};

/*
 * Parse a head that http_scan_head() accepted (buf[0..sc->pos)). headers
 * (max_headers entries, at least sc->nheaders) receives the fields, in
 * order. BAD: *status_r is 400, 405 (TRACE), 417 (Expect), 501 (CONNECT,
 * unknown method or transfer coding) or 505 (HTTP version).
 */
enum http_parse_result http_request_parse(const char *buf, const struct http_scan *sc,
                                          struct http_header *headers, size_t max_headers,
                                          struct http_request *req, unsigned *status_r,
                                          const char **error_r);

struct http_response {
    unsigned status;
    struct http_slice reason;
    unsigned version_major, version_minor;
    struct http_header *headers;
    size_t nheaders;
    enum http_body body;
    uint64_t content_length;      /* with a Content-Length header (HEAD, 304 too) */
    bool has_content_length;
    unsigned connection;          /* HTTP_CONN_* */
    bool keep_alive;              /* the backend keeps the connection */
};

/*
 * Parse a response head (a scanner in response mode accepted it).
 * head_request: the request was HEAD (no body whatever the headers say).
 * BAD means the backend is broken: the caller answers 502.
 */
enum http_parse_result http_response_parse(const char *buf, const struct http_scan *sc,
                                           bool head_request, struct http_header *headers,
                                           size_t max_headers, struct http_response *resp,
                                           const char **error_r);

/* ---- 3. chunked bodies ------------------------------------------------- */

struct http_chunked {
    unsigned state;
    uint64_t remaining;   /* data bytes left in the current chunk */
    unsigned digits;
    size_t line;          /* bytes of the current size or trailer line */
    size_t trailer;       /* bytes of the trailer section */
};

void http_chunked_init(struct http_chunked *ck);

/*
 * Decode from in[0..len). *used_r says how many bytes were consumed; when
 * data_r->len > 0 those end with chunk data the caller forwards (the rest
 * of the consumed bytes were framing). Call again with the remainder.
 * Returns MORE (more input or another call needed), OK once the last chunk
 * and the trailer section are complete (*used_r stops right after them), or
 * BAD with *error_r.
 */
enum http_parse_result http_chunked_parse(struct http_chunked *ck, const char *in, size_t len,
                                          size_t *used_r, struct http_slice *data_r,
                                          const char **error_r);

/* Write "<hex size>\r\n" into buf (at least HTTP_CHUNK_HEADER_MAX bytes);
   returns its length. */
#define HTTP_CHUNK_HEADER_MAX 20
size_t http_chunk_header(char *buf, uint64_t size);

/* ---- helpers ------------------------------------------------------------ */

/* Case-insensitive comparison of a slice with a NUL-terminated string. */
bool http_slice_eq(struct http_slice s, const char *str);
bool http_slice_case_prefix(struct http_slice s, const char *prefix);

/* Next token of a comma-separated list (empty elements skipped); *pos is
   an offset into list. Returns false at the end. */
bool http_list_next(struct http_slice list, size_t *pos, struct http_slice *item_r);
/* Whether the comma-separated list holds token (case-insensitive). */
bool http_list_has(struct http_slice list, const char *token);

/* Index of the first header with this name (case-insensitive) at or after
   `from`, or -1. */
int http_header_find(const struct http_header *h, size_t n, size_t from, const char *name);

/*
 * Path prefix matching for the decisions that skip authentication
 * (anonymous paths, health pages). The match is case-insensitive and on a
 * segment boundary: "/autodiscover" matches "/autodiscover",
 * "/Autodiscover/x.xml" but not "/autodiscoverX". A path that a backend
 * might normalise into another one -- dot segments, backslashes,
 * percent-encoded '.', '/', '\' or '%', an empty segment, a ';' parameter --
 * never matches: it is ambiguous, and ambiguity must cost authentication.
 */
bool http_path_ambiguous(struct http_slice path);
bool http_path_under(struct http_slice path, const char *prefix);

/* The value of query parameter `name` (case-insensitive name), raw. */
bool http_query_param(struct http_slice query, const char *name, struct http_slice *value_r);

/* Split a decoded Basic credential "user:password" (RFC 7617). BAD when
   there is no colon, the user is empty or holds control characters, or a
   part exceeds its bound. */
#define HTTP_USER_MAX 255
#define HTTP_PASSWORD_MAX 1024
enum http_parse_result http_basic_split(const char *decoded, size_t len, struct http_slice *user_r,
                                        struct http_slice *password_r, const char **error_r);

/* The base64 part of "Basic <b64>" (scheme case-insensitive), or BAD. */
enum http_parse_result http_basic_token(struct http_slice value, struct http_slice *b64_r);

/*
 * Build "base + path [? query]" for a cross-site redirect into out
 * (NUL-terminated). base is an absolute http(s) URL; a trailing '/' on it is
 * not doubled. Returns the length, or -1 when out is too small.
 */
long http_redirect_url(const char *base, struct http_slice path, struct http_slice query,
                       char *out, size_t outsize);

/* Reason phrase of a status code we send ("Bad Request"), or "Unknown". */
const char *http_status_reason(unsigned status);

/* Whether a header name is hop-by-hop by definition (RFC 9110 7.6.1). */
bool http_hop_by_hop(struct http_slice name);

/* RFC 9110 token characters. */
bool http_is_tchar(unsigned char c);

#endif
