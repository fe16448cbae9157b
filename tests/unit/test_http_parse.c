/*
 * Unit tests of the HTTP parsing layer (plugins/http/http_parse.c): the head
 * scanner, request and response heads through http_parser plus our checks,
 * the strict chunked decoder, and the helpers that decide what skips
 * authentication (path prefixes) or where a redirect goes.
 *
 * Every request head is fed whole, one byte at a time and in seeded random
 * splits (the scanner is resumable, and TCP delivers bytes any way it
 * likes); every chunked body in every two-way split as well. The smuggling
 * classes of the issue (CL.TE, TE.CL, duplicate or differing CL, obs-fold,
 * NUL and bare CR/LF) each have rows, and a seeded mutation sweep checks the
 * invariants of whatever comes out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <http_parser.h>

#include "../../plugins/http/http_parse.h"

#define L(s) s, sizeof(s) - 1   /* literal with its length, NULs included */

static const struct http_limits default_limits = {8192, 65536, 100};

/* ---- feeding ------------------------------------------------------------ */

enum split_mode { WHOLE, BYTES, RANDOM };

/* Scan msg[0..len) as it would arrive in pieces; returns the scanner's
   final answer (OK, BAD or MORE when the input ran out). */
static enum http_parse_result scan_split(struct http_scan *sc, const char *msg, size_t len,
                                         enum split_mode mode, unsigned seed,
                                         const struct http_limits *lim, unsigned *status,
                                         const char **error)
{
    size_t have = 0;
    enum http_parse_result r = HTTP_PARSE_MORE;

    srand(seed);
    while (have < len) {
        size_t step = mode == WHOLE ? len : mode == BYTES ? 1 : 1 + (size_t)rand() % 7;
        have = have + step > len ? len : have + step;
        r = http_scan_head(sc, msg, have, lim, status, error);
        if (r != HTTP_PARSE_MORE)
            break;
    }
    return r;
}

/* ---- requests ------------------------------------------------------------ */

struct req_case {
    const char *msg;
    size_t len;
    enum http_parse_result res;   /* OK or BAD */
    unsigned status;              /* BAD: expected status */
    enum http_body body;
    uint64_t clen;
    int keep_alive;               /* OK: expected flag */
    const char *path, *query, *authority;
    unsigned flags;               /* OK: expectations below */
    const struct http_limits *lim;
};
#define F_WS 0x1
#define F_EXPECT 0x2

static const struct http_limits small_line = {32, 65536, 100};
static const struct http_limits few_headers = {8192, 65536, 3};
static const struct http_limits small_head = {8192, 64, 100};

#define OKREQ(m, body, clen, ka, path, query, auth, flags) \
    { L(m), HTTP_PARSE_OK, 0, body, clen, ka, path, query, auth, flags, NULL }
#define BADREQ(m, status) { L(m), HTTP_PARSE_BAD, status, 0, 0, 0, NULL, NULL, NULL, 0, NULL }
#define BADREQ_LIM(m, status, lim) { L(m), HTTP_PARSE_BAD, status, 0, 0, 0, NULL, NULL, NULL, 0, lim }

static const struct req_case req_cases[] = {
    OKREQ("GET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BODY_NONE, 0, 1, "/", NULL, NULL, 0),
    OKREQ("GET /owa/?x=1&User=bob HTTP/1.1\r\nHost: mail.example\r\n\r\n", HTTP_BODY_NONE, 0, 1,
          "/owa/", "x=1&User=bob", NULL, 0),
    OKREQ("GET /a? HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BODY_NONE, 0, 1, "/a", "", NULL, 0),
    OKREQ("\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BODY_NONE, 0, 1, "/", NULL, NULL, 0),
    OKREQ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", HTTP_BODY_LENGTH, 5, 1,
          "/x", NULL, NULL, 0),
    OKREQ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", HTTP_BODY_NONE, 0, 1, "/x",
          NULL, NULL, 0),
    OKREQ("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 9999999999999999999\r\n\r\n",
          HTTP_BODY_LENGTH, 9999999999999999999ull, 1, "/x", NULL, NULL, 0),
    OKREQ("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n", HTTP_BODY_CHUNKED,
          0, 1, "/x", NULL, NULL, 0),
    OKREQ("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked \r\n\r\n",
          HTTP_BODY_CHUNKED, 0, 1, "/x", NULL, NULL, 0),
    OKREQ("GET / HTTP/1.0\r\n\r\n", HTTP_BODY_NONE, 0, 0, "/", NULL, NULL, 0),
    OKREQ("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n", HTTP_BODY_NONE, 0, 1, "/", NULL,
          NULL, 0),
    OKREQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", HTTP_BODY_NONE, 0, 0, "/",
          NULL, NULL, 0),
    OKREQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, x-foo\r\nX-Foo: 1\r\n\r\n",
          HTTP_BODY_NONE, 0, 1, "/", NULL, NULL, 0),
    OKREQ("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
          HTTP_BODY_NONE, 0, 1, "/ws", NULL, NULL, F_WS),
    OKREQ("GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\nUpgrade: h2c\r\n"
          "HTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n",
          HTTP_BODY_NONE, 0, 1, "/", NULL, NULL, 0),
    OKREQ("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-Continue\r\n\r\n",
          HTTP_BODY_LENGTH, 3, 1, "/x", NULL, NULL, F_EXPECT),
    OKREQ("PUT /x HTTP/1.0\r\nContent-Length: 3\r\nExpect: whatever\r\n\r\n", HTTP_BODY_LENGTH, 3,
          0, "/x", NULL, NULL, 0),
    OKREQ("GET http://other.example:8080/p?q HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BODY_NONE, 0, 1,
          "/p", "q", "other.example:8080", 0),
    OKREQ("GET HTTPS://other.example HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BODY_NONE, 0, 1, "/",
          NULL, "other.example", 0),
    OKREQ("GET http://[::1]:81/x HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BODY_NONE, 0, 1, "/x", NULL,
          "[::1]:81", 0),
    OKREQ("GET http://[::1]/x HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BODY_NONE, 0, 1, "/x", NULL,
          "[::1]", 0),
    OKREQ("OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", HTTP_BODY_NONE, 0, 1, "*", NULL, NULL, 0),
    OKREQ("GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\nX-Empty:\r\nX-B: \t b c \t\r\n\r\n",
          HTTP_BODY_NONE, 0, 1, "/", NULL, NULL, 0),
    OKREQ("DELETE /x HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", HTTP_BODY_NONE, 0, 1, "/x", NULL, NULL,
          0),

    /* request smuggling: CL.TE, TE.CL, TE.TE, CL.CL */
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
           400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
           400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked"
           "\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n",
           400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\tchunked\r\n X: y\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: xchunked\r\n\r\n", 501),
    BADREQ("POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n", 400),
    BADREQ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
    /* obs-fold, whitespace, NUL, bare CR and LF */
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\n Host: a\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\0c\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\nX-\0A: b\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7f\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\nHost: a\n\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\n\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\n\rX", 400),
    BADREQ("GET / HTTP/1.1\rHost: a\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\n: a\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nX(a): b\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost\r\n\r\n", 400),
    BADREQ("\r\n\r\n\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    /* the request line */
    BADREQ("GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET /a\x80 HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET  / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1 \r\nHost: a\r\n\r\n", 400),
    BADREQ(" GET / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET /\r\n\r\n", 400),
    BADREQ("GET / http/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1x\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET / HTTP/2.0\r\nHost: a\r\n\r\n", 505),
    BADREQ("GET / HTTP/1.2\r\nHost: a\r\n\r\n", 505),
    BADREQ("GET / HTTP/0.9\r\nHost: a\r\n\r\n", 400),
    BADREQ("CONNECT a.example:443 HTTP/1.1\r\nHost: a.example:443\r\n\r\n", 501),
    BADREQ("TRACE / HTTP/1.1\r\nHost: a\r\n\r\n", 405),
    BADREQ("FOO / HTTP/1.1\r\nHost: a\r\n\r\n", 501),
    BADREQ("G@T / HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET * HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET http://user@evil.example/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    BADREQ("GET ftp://a.example/ HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    /* Host */
    BADREQ("GET / HTTP/1.1\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a\r\nhost: a\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: u@b\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost: a b\r\n\r\n", 400),
    BADREQ("GET / HTTP/1.1\r\nHost:\r\n\r\n", 400),
    /* Expect, Upgrade */
    BADREQ("PUT / HTTP/1.1\r\nHost: a\r\nExpect: 200-ok\r\n\r\n", 417),
    BADREQ("POST /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
           400),
    BADREQ("GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
           "Content-Length: 3\r\n\r\n", 400),
    /* limits */
    BADREQ_LIM("GET /aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa HTTP/1.1\r\nHost: a\r\n\r\n", 414,
               &small_line),
    BADREQ_LIM("GET / HTTP/1.1\r\nHost: a\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", 431, &few_headers),
    BADREQ_LIM("GET / HTTP/1.1\r\nHost: a\r\nCookie: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n",
               431, &small_head),
};

static void check_request(const struct req_case *c, enum split_mode mode, unsigned seed)
{
    const struct http_limits *lim = c->lim != NULL ? c->lim : &default_limits;
    struct http_header headers[HTTP_MAX_HEADERS_LIMIT];
    struct http_request req;
    struct http_scan sc;
    unsigned status = 0;
    const char *error = NULL;
    enum http_parse_result r;

    http_scan_init(&sc, false);
    r = scan_split(&sc, c->msg, c->len, mode, seed, lim, &status, &error);
    if (r == HTTP_PARSE_OK) {
        assert_true(sc.pos <= c->len);
        r = http_request_parse(c->msg, &sc, headers, lim->max_headers, &req, &status, &error);
    }
    if (r != c->res || (r == HTTP_PARSE_BAD && status != c->status)) {
        print_message("case: %.*s\nmode %d: result %d status %u (%s), expected %d %u\n",
                      (int)c->len, c->msg, mode, r, status, error ? error : "-", c->res,
                      c->status);
        fail();
    }
    if (r != HTTP_PARSE_OK)
        return;
    assert_int_equal(sc.pos, c->len);
    assert_int_equal(req.body, c->body);
    if (c->body == HTTP_BODY_LENGTH)
        assert_true(req.content_length == c->clen);
    assert_int_equal(req.keep_alive, c->keep_alive);
    assert_int_equal(req.websocket, (c->flags & F_WS) != 0);
    assert_int_equal(req.expect_continue, (c->flags & F_EXPECT) != 0);
    assert_true(http_slice_eq(req.path, c->path));
    if (c->query == NULL)
        assert_null(req.query.ptr);
    else
        assert_true(req.query.ptr != NULL && req.query.len == strlen(c->query) &&
                    memcmp(req.query.ptr, c->query, req.query.len) == 0);
    if (c->authority == NULL)
        assert_null(req.authority.ptr);
    else
        assert_true(http_slice_eq(req.authority, c->authority));
    assert_int_equal(req.nheaders, sc.nheaders);
    for (size_t i = 0; i < req.nheaders; i++) {
        assert_true(req.headers[i].name.ptr >= c->msg &&
                    req.headers[i].name.ptr + req.headers[i].name.len <= c->msg + c->len);
        assert_true(req.headers[i].value.ptr >= c->msg &&
                    req.headers[i].value.ptr + req.headers[i].value.len <= c->msg + c->len);
    }
}

static void test_requests(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
        check_request(&req_cases[i], WHOLE, 0);
        check_request(&req_cases[i], BYTES, 0);
        for (unsigned seed = 1; seed <= 20; seed++)
            check_request(&req_cases[i], RANDOM, seed);
    }
}

static void test_request_fields(void **state)
{
    static const char msg[] = "POST /ews/exchange.asmx HTTP/1.1\r\nHost: mail.example\r\n"
                              "Authorization: Basic YWxpY2U6c2VjcmV0\r\nX-A:  spaced  \r\n"
                              "Content-Length: 12\r\n\r\nbody follows";
    struct http_header headers[16];
    struct http_request req;
    struct http_scan sc;
    unsigned status;
    const char *error;
    int i;

    (void)state;
    http_scan_init(&sc, false);
    assert_int_equal(http_scan_head(&sc, msg, sizeof(msg) - 1, &default_limits, &status, &error),
                     HTTP_PARSE_OK);
    /* the scanner stops at the end of the head; the body is not its business */
    assert_int_equal(sc.pos, sizeof(msg) - 1 - 12);
    assert_int_equal(http_request_parse(msg, &sc, headers, 16, &req, &status, &error),
                     HTTP_PARSE_OK);
    assert_int_equal(req.method, HTTP_POST);
    assert_true(http_slice_eq(req.method_name, "POST"));
    assert_true(http_slice_eq(req.target, "/ews/exchange.asmx"));
    assert_int_equal(req.nheaders, 4);
    assert_int_equal(req.host, 0);
    i = http_header_find(req.headers, req.nheaders, 0, "x-a");
    assert_int_equal(i, 2);
    assert_true(http_slice_eq(req.headers[i].value, "spaced"));
    i = http_header_find(req.headers, req.nheaders, 0, "authorization");
    assert_true(i >= 0);
    {
        struct http_slice b64;
        assert_int_equal(http_basic_token(req.headers[i].value, &b64), HTTP_PARSE_OK);
        assert_true(b64.len == 16 && memcmp(b64.ptr, "YWxpY2U6c2VjcmV0", 16) == 0);
    }
    assert_int_equal(req.version_major, 1);
    assert_int_equal(req.version_minor, 1);
}

/* A scanner that failed keeps failing, and one that finished keeps its
   answer, whatever it is fed next. */
static void test_scan_sticky(void **state)
{
    static const char bad[] = "GET / HTTP/1.1\r\nX: a\rb\r\n\r\n";
    static const char good[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /next";
    struct http_scan sc;
    unsigned status;
    const char *error;

    (void)state;
    http_scan_init(&sc, false);
    assert_int_equal(http_scan_head(&sc, bad, sizeof(bad) - 1, &default_limits, &status, &error),
                     HTTP_PARSE_BAD);
    assert_int_equal(http_scan_head(&sc, bad, sizeof(bad) - 1, &default_limits, &status, &error),
                     HTTP_PARSE_BAD);
    http_scan_init(&sc, false);
    assert_int_equal(http_scan_head(&sc, good, 10, &default_limits, &status, &error),
                     HTTP_PARSE_MORE);
    assert_int_equal(http_scan_head(&sc, good, sizeof(good) - 1, &default_limits, &status, &error),
                     HTTP_PARSE_OK);
    assert_int_equal(sc.pos, 27);
    assert_int_equal(http_scan_head(&sc, good, sizeof(good) - 1, &default_limits, &status, &error),
                     HTTP_PARSE_OK);
    assert_int_equal(sc.pos, 27);
}

/* The limits are exact: a head of exactly max_head bytes passes, one more
   does not; likewise the request line. */
static void test_scan_limits_exact(void **state)
{
    static const char msg[] = "GET /abc HTTP/1.1\r\nHost: a\r\n\r\n";   /* line 17, head 30 */
    struct http_limits lim;
    struct http_scan sc;
    unsigned status;
    const char *error;

    (void)state;
    lim = (struct http_limits){17, 30, 1};
    http_scan_init(&sc, false);
    assert_int_equal(http_scan_head(&sc, msg, sizeof(msg) - 1, &lim, &status, &error),
                     HTTP_PARSE_OK);
    lim = (struct http_limits){16, 30, 1};
    http_scan_init(&sc, false);
    assert_int_equal(http_scan_head(&sc, msg, sizeof(msg) - 1, &lim, &status, &error),
                     HTTP_PARSE_BAD);
    assert_int_equal(status, 414);
    lim = (struct http_limits){17, 29, 1};
    http_scan_init(&sc, false);
    assert_int_equal(http_scan_head(&sc, msg, sizeof(msg) - 1, &lim, &status, &error),
                     HTTP_PARSE_BAD);
    assert_int_equal(status, 431);
    lim = (struct http_limits){17, 30, 0};
    http_scan_init(&sc, false);
    assert_int_equal(http_scan_head(&sc, msg, sizeof(msg) - 1, &lim, &status, &error),
                     HTTP_PARSE_BAD);
    assert_int_equal(status, 431);
}

/* ---- responses ---------------------------------------------------------- */

struct resp_case {
    const char *msg;
    size_t len;
    bool head_request;
    enum http_parse_result res;
    unsigned status;
    enum http_body body;
    uint64_t clen;
    int keep_alive;
};

static const struct resp_case resp_cases[] = {
    { L("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n"), false, HTTP_PARSE_OK, 200,
      HTTP_BODY_LENGTH, 5, 1 },
    { L("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), false, HTTP_PARSE_OK, 200,
      HTTP_BODY_NONE, 0, 1 },
    { L("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"), false, HTTP_PARSE_OK, 200,
      HTTP_BODY_CHUNKED, 0, 1 },
    { L("HTTP/1.1 200 OK\r\n\r\n"), false, HTTP_PARSE_OK, 200, HTTP_BODY_EOF, 0, 0 },
    { L("HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 1\r\n\r\n"), false,
      HTTP_PARSE_OK, 200, HTTP_BODY_LENGTH, 1, 0 },
    { L("HTTP/1.0 200 OK\r\nContent-Length: 1\r\n\r\n"), false, HTTP_PARSE_OK, 200,
      HTTP_BODY_LENGTH, 1, 0 },
    { L("HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 1\r\n\r\n"), false,
      HTTP_PARSE_OK, 200, HTTP_BODY_LENGTH, 1, 1 },
    { L("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"), false, HTTP_PARSE_OK, 204,
      HTTP_BODY_NONE, 5, 1 },
    { L("HTTP/1.1 304 Not Modified\r\nTransfer-Encoding: chunked\r\n\r\n"), false, HTTP_PARSE_OK,
      304, HTTP_BODY_NONE, 0, 1 },
    { L("HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"), true, HTTP_PARSE_OK, 200,
      HTTP_BODY_NONE, 1000, 1 },
    { L("HTTP/1.1 100 Continue\r\n\r\n"), false, HTTP_PARSE_OK, 100, HTTP_BODY_NONE, 0, 1 },
    { L("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"),
      false, HTTP_PARSE_OK, 101, HTTP_BODY_NONE, 0, 1 },
    { L("HTTP/1.1 200\r\nContent-Length: 0\r\n\r\n"), false, HTTP_PARSE_OK, 200, HTTP_BODY_NONE,
      0, 1 },
    { L("HTTP/1.1 404 Not \xe9 Found\tx\r\nContent-Length: 0\r\n\r\n"), false, HTTP_PARSE_OK, 404,
      HTTP_BODY_NONE, 0, 1 },
    { L("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n"), false,
      HTTP_PARSE_BAD, 0, 0, 0, 0 },
    { L("HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n"), false,
      HTTP_PARSE_BAD, 0, 0, 0, 0 },
    { L("HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n"), false, HTTP_PARSE_BAD, 0, 0, 0, 0 },
    { L("HTTP/2 200 OK\r\n\r\n"), false, HTTP_PARSE_BAD, 0, 0, 0, 0 },
    { L("HTTP/1.1 20 OK\r\n\r\n"), false, HTTP_PARSE_BAD, 0, 0, 0, 0 },
    { L("HTTP/1.1 200OK\r\n\r\n"), false, HTTP_PARSE_BAD, 0, 0, 0, 0 },
    { L("HTTP/1.1 600 X\r\n\r\n"), false, HTTP_PARSE_BAD, 0, 0, 0, 0 },
    { L("HTTP/1.1 099 X\r\n\r\n"), false, HTTP_PARSE_BAD, 0, 0, 0, 0 },
    { L("ICY 200 OK\r\n\r\n"), false, HTTP_PARSE_BAD, 0, 0, 0, 0 },
    { L("HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n"), false, HTTP_PARSE_BAD, 0, 0, 0, 0 },
    { L("\r\nHTTP/1.1 200 OK\r\n\r\n"), false, HTTP_PARSE_BAD, 0, 0, 0, 0 },
};

static void test_responses(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
        const struct resp_case *c = &resp_cases[i];
        for (int mode = WHOLE; mode <= RANDOM; mode++) {
            struct http_header headers[32];
            struct http_response resp;
            struct http_scan sc;
            unsigned status;
            const char *error = NULL;
            enum http_parse_result r;

            http_scan_init(&sc, true);
            r = scan_split(&sc, c->msg, c->len, (enum split_mode)mode, (unsigned)i,
                           &default_limits, &status, &error);
            if (r == HTTP_PARSE_OK)
                r = http_response_parse(c->msg, &sc, c->head_request, headers, 32, &resp, &error);
            if (r != c->res) {
                print_message("case %zu: %.*s: result %d (%s)\n", i, (int)c->len, c->msg, r,
                              error ? error : "-");
                fail();
            }
            if (r != HTTP_PARSE_OK)
                continue;
            assert_int_equal(resp.status, c->status);
            assert_int_equal(resp.body, c->body);
            assert_true(resp.content_length == c->clen);
            assert_int_equal(resp.keep_alive, c->keep_alive);
        }
    }
}

/* ---- chunked bodies ----------------------------------------------------- */

struct chunk_case {
    const char *in;
    size_t len;
    enum http_parse_result res;
    const char *data;      /* decoded (OK) */
    size_t dlen;
    size_t used;           /* OK: bytes up to the end of the body */
};

#define CHUNK_OK(in, data, used) { L(in), HTTP_PARSE_OK, L(data), used }
#define CHUNK_BAD(in) { L(in), HTTP_PARSE_BAD, NULL, 0, 0 }

static const struct chunk_case chunk_cases[] = {
    CHUNK_OK("5\r\nhello\r\n0\r\n\r\n", "hello", 15),
    CHUNK_OK("5;ext=1\r\nhello\r\n6 ; a=\"b\"\r\n world\r\n0\r\n\r\n", "hello world", 40),
    CHUNK_OK("A\r\n0123456789\r\n0\r\n\r\n", "0123456789", 20),
    CHUNK_OK("a\r\n0123456789\r\n0\r\n\r\n", "0123456789", 20),
    CHUNK_OK("000005\r\nhello\r\n0\r\n\r\n", "hello", 20),
    CHUNK_OK("0\r\n\r\n", "", 5),
    CHUNK_OK("0\r\n\r\nGET / HTTP/1.1\r\n", "", 5),
    CHUNK_OK("5\r\nhello\r\n0\r\nX-T: 1\r\nY:2\r\n\r\nnext", "hello", 28),
    CHUNK_OK("1\r\n\0\r\n1\r\n\r\r\n0\r\n\r\n", "\0\r", 17),
    CHUNK_BAD("0x5\r\nhello\r\n0\r\n\r\n"),
    CHUNK_BAD("+5\r\nhello\r\n0\r\n\r\n"),
    CHUNK_BAD("-1\r\nx\r\n0\r\n\r\n"),
    CHUNK_BAD(" 5\r\nhello\r\n0\r\n\r\n"),
    CHUNK_BAD("5 x\r\nhello\r\n0\r\n\r\n"),
    CHUNK_BAD("5\nhello\r\n0\r\n\r\n"),
    CHUNK_BAD("5\rhello\r\n0\r\n\r\n"),
    CHUNK_BAD("5\r\nhelloX\r\n0\r\n\r\n"),
    CHUNK_BAD("5\r\nhello\n0\r\n\r\n"),
    CHUNK_BAD("5\r\nhello\r\r0\r\n\r\n"),
    CHUNK_BAD("g\r\n"),
    CHUNK_BAD("\r\n"),
    CHUNK_BAD("11111111111111111\r\n"),
    CHUNK_BAD("5;a\x01\r\nhello\r\n0\r\n\r\n"),
    CHUNK_BAD("5;a\nhello\r\n0\r\n\r\n"),
    CHUNK_BAD("0\r\nX: 1\r\n y\r\n\r\n"),
    CHUNK_BAD("0\r\nX: 1\n\r\n"),
    CHUNK_BAD("0\r\nX: a\0b\r\n\r\n"),
    CHUNK_BAD("0\r\nX : a\r\n\r\n"),
    CHUNK_BAD("0\r\n\rX"),
    CHUNK_BAD("0\r\n\n"),
};

/* Decode in[0..len) delivered as pieces cut at `cuts` (ascending, may be
   empty); appends data to out. Returns the result and *end the offset
   where the body ended. */
static enum http_parse_result chunk_feed(const char *in, size_t len, const size_t *cuts,
                                         size_t ncuts, char *out, size_t *outlen, size_t *end)
{
    struct http_chunked ck;
    size_t off = 0;
    enum http_parse_result r = HTTP_PARSE_MORE;

    http_chunked_init(&ck);
    *outlen = 0;
    for (size_t k = 0; k <= ncuts && r == HTTP_PARSE_MORE; k++) {
        size_t stop = k < ncuts ? cuts[k] : len;
        /* each piece is its own buffer, so an overread shows up under ASan */
        size_t plen = stop - off;
        char *piece = malloc(plen > 0 ? plen : 1);
        size_t p = 0;

        memcpy(piece, in + off, plen);
        while (p < plen || plen == 0) {
            struct http_slice data;
            const char *error;
            size_t used;

            r = http_chunked_parse(&ck, piece + p, plen - p, &used, &data, &error);
            assert_true(used <= plen - p);
            if (data.len > 0) {
                assert_true(data.ptr >= piece + p && data.ptr + data.len <= piece + p + used);
                memcpy(out + *outlen, data.ptr, data.len);
                *outlen += data.len;
            }
            p += used;
            if (r != HTTP_PARSE_MORE || plen == 0)
                break;
            if (used == 0 && data.len == 0)
                break;
        }
        free(piece);
        if (r == HTTP_PARSE_OK)
            *end = off + p;
        off = stop;
    }
    return r;
}

static void check_chunk(const struct chunk_case *c, const size_t *cuts, size_t ncuts)
{
    char out[256];
    size_t outlen = 0, end = 0;
    enum http_parse_result r = chunk_feed(c->in, c->len, cuts, ncuts, out, &outlen, &end);

    if (r != c->res) {
        print_message("chunk case %.*s: result %d, expected %d (%zu cuts, first %zu)\n",
                      (int)c->len, c->in, r, c->res, ncuts, ncuts > 0 ? cuts[0] : 0);
        fail();
    }
    if (r == HTTP_PARSE_OK) {
        assert_int_equal(outlen, c->dlen);
        if (c->dlen > 0)
            assert_memory_equal(out, c->data, c->dlen);
        assert_int_equal(end, c->used);
    }
}

static void test_chunked(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(chunk_cases) / sizeof(chunk_cases[0]); i++) {
        const struct chunk_case *c = &chunk_cases[i];
        size_t cuts[256];

        check_chunk(c, NULL, 0);
        /* every two-way split */
        for (size_t k = 1; k < c->len; k++) {
            cuts[0] = k;
            check_chunk(c, cuts, 1);
        }
        /* one byte at a time */
        for (size_t k = 1; k < c->len && k < 256; k++)
            cuts[k - 1] = k;
        check_chunk(c, cuts, c->len - 1);
    }
}

/* Reading more after the end or after an error changes nothing. */
static void test_chunked_sticky(void **state)
{
    struct http_chunked ck;
    struct http_slice data;
    const char *error;
    size_t used;

    (void)state;
    http_chunked_init(&ck);
    assert_int_equal(http_chunked_parse(&ck, L("0\r\n\r\n"), &used, &data, &error), HTTP_PARSE_OK);
    assert_int_equal(http_chunked_parse(&ck, L("5\r\nhello"), &used, &data, &error),
                     HTTP_PARSE_OK);
    assert_int_equal(used, 0);
    http_chunked_init(&ck);
    assert_int_equal(http_chunked_parse(&ck, L("z"), &used, &data, &error), HTTP_PARSE_BAD);
    assert_int_equal(http_chunked_parse(&ck, L("0\r\n\r\n"), &used, &data, &error),
                     HTTP_PARSE_BAD);
}

/* A 64-bit size is accepted and counted down without overflow. */
static void test_chunked_large(void **state)
{
    struct http_chunked ck;
    struct http_slice data;
    const char *error;
    size_t used;
    char buf[20];

    (void)state;
    http_chunked_init(&ck);
    assert_int_equal(http_chunked_parse(&ck, L("ffffffffffffffff\r\n"), &used, &data, &error),
                     HTTP_PARSE_MORE);
    assert_true(ck.remaining == UINT64_MAX);
    assert_int_equal(http_chunked_parse(&ck, L("abc"), &used, &data, &error), HTTP_PARSE_MORE);
    assert_int_equal(data.len, 3);
    assert_true(ck.remaining == UINT64_MAX - 3);
    assert_int_equal(http_chunk_header(buf, 0x1f), 4);
    assert_memory_equal(buf, "1f\r\n", 4);
    assert_int_equal(http_chunk_header(buf, UINT64_MAX), 18);
}

/* ---- helpers ------------------------------------------------------------ */

static struct http_slice S(const char *s)
{
    struct http_slice x = {s, strlen(s)};
    return x;
}

static void test_paths(void **state)
{
    static const struct {
        const char *path, *prefix;
        bool ambiguous, under;
    } cases[] = {
        {"/autodiscover/autodiscover.xml", "/autodiscover", false, true},
        {"/Autodiscover/Autodiscover.xml", "/autodiscover", false, true},
        {"/autodiscover", "/autodiscover", false, true},
        {"/autodiscoverX", "/autodiscover", false, false},
        {"/autodiscover/", "/autodiscover/", false, true},
        {"/autodiscover", "/autodiscover/", false, false},
        {"/owa", "/autodiscover", false, false},
        {"/autodiscover/../owa/", "/autodiscover", true, false},
        {"/autodiscover/./x", "/autodiscover", true, false},
        {"/autodiscover/..", "/autodiscover", true, false},
        {"/autodiscover/%2e%2e/owa", "/autodiscover", true, false},
        {"/autodiscover/%2E./owa", "/autodiscover", true, false},
        {"/autodiscover/..%2fowa", "/autodiscover", true, false},
        {"/autodiscover%2f..%2fowa", "/autodiscover", true, false},
        {"/autodiscover/..\\owa", "/autodiscover", true, false},
        {"/autodiscover;/../owa", "/autodiscover", true, false},
        {"/autodiscover//x", "/autodiscover", true, false},
        {"/autodiscover/%25%32%65", "/autodiscover", true, false},
        {"/autodiscover/%00", "/autodiscover", true, false},
        {"/autodiscover/%zz", "/autodiscover", true, false},
        {"/autodiscover/%4", "/autodiscover", true, false},
        {"/autodiscover/a%20b", "/autodiscover", false, true},
        {"/autodiscover/...", "/autodiscover", false, true},
        {"/autodiscover/.well", "/autodiscover", false, true},
        {"*", "/", true, false},
        {"", "/", true, false},
        {"/", "/", false, true},
        {"/x", "/", false, true},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        if (http_path_ambiguous(S(cases[i].path)) != cases[i].ambiguous ||
            http_path_under(S(cases[i].path), cases[i].prefix) != cases[i].under) {
            print_message("path %s prefix %s\n", cases[i].path, cases[i].prefix);
            fail();
        }
    }
    assert_false(http_path_under(S("/x"), ""));
}

static void test_query(void **state)
{
    struct http_slice v, q = S("Cmd=Sync&User=bob&DeviceId=x&empty&e2=");
    struct http_slice none = {NULL, 0};

    (void)state;
    assert_true(http_query_param(q, "user", &v));
    assert_true(http_slice_eq(v, "bob"));
    assert_true(http_query_param(q, "Cmd", &v));
    assert_true(http_slice_eq(v, "Sync"));
    assert_true(http_query_param(q, "empty", &v));
    assert_int_equal(v.len, 0);
    assert_true(http_query_param(q, "e2", &v));
    assert_int_equal(v.len, 0);
    assert_false(http_query_param(q, "Use", &v));
    assert_false(http_query_param(q, "DeviceIdX", &v));
    assert_false(http_query_param(none, "User", &v));
}

static void test_basic(void **state)
{
    struct http_slice b64, user, pw;
    const char *error;

    (void)state;
    assert_int_equal(http_basic_token(S("Basic YWxpY2U6c2VjcmV0"), &b64), HTTP_PARSE_OK);
    assert_true(http_slice_eq(b64, "YWxpY2U6c2VjcmV0"));
    assert_int_equal(http_basic_token(S("basic   YQ=="), &b64), HTTP_PARSE_OK);
    assert_true(http_slice_eq(b64, "YQ=="));
    assert_int_equal(http_basic_token(S("Basic"), &b64), HTTP_PARSE_BAD);
    assert_int_equal(http_basic_token(S("Basic "), &b64), HTTP_PARSE_BAD);
    assert_int_equal(http_basic_token(S("BasicYQ=="), &b64), HTTP_PARSE_BAD);
    assert_int_equal(http_basic_token(S("Bearer abc"), &b64), HTTP_PARSE_BAD);
    assert_int_equal(http_basic_token(S("Basic YQ== x"), &b64), HTTP_PARSE_BAD);
    assert_int_equal(http_basic_token(S("Basic Y!=="), &b64), HTTP_PARSE_BAD);

    assert_int_equal(http_basic_split(L("alice:secret"), &user, &pw, &error), HTTP_PARSE_OK);
    assert_true(http_slice_eq(user, "alice"));
    assert_true(pw.len == 6 && memcmp(pw.ptr, "secret", 6) == 0);
    assert_int_equal(http_basic_split(L("alice:se:cr:et"), &user, &pw, &error), HTTP_PARSE_OK);
    assert_true(pw.len == 8 && memcmp(pw.ptr, "se:cr:et", 8) == 0);
    assert_int_equal(http_basic_split(L("alice:"), &user, &pw, &error), HTTP_PARSE_OK);
    assert_int_equal(pw.len, 0);
    assert_int_equal(http_basic_split(L("alice"), &user, &pw, &error), HTTP_PARSE_BAD);
    assert_int_equal(http_basic_split(L(":pw"), &user, &pw, &error), HTTP_PARSE_BAD);
    assert_int_equal(http_basic_split(L("al\nice:pw"), &user, &pw, &error), HTTP_PARSE_BAD);
    assert_int_equal(http_basic_split(L("al\0ice:pw"), &user, &pw, &error), HTTP_PARSE_BAD);
    assert_int_equal(http_basic_split(L("alice:p\0w"), &user, &pw, &error), HTTP_PARSE_BAD);
    {
        char big[HTTP_USER_MAX + 10];
        memset(big, 'a', sizeof(big));
        big[HTTP_USER_MAX + 1] = ':';
        assert_int_equal(http_basic_split(big, sizeof(big), &user, &pw, &error), HTTP_PARSE_BAD);
        big[HTTP_USER_MAX] = ':';
        assert_int_equal(http_basic_split(big, HTTP_USER_MAX + 1, &user, &pw, &error),
                         HTTP_PARSE_OK);
    }
}

static void test_redirect(void **state)
{
    char out[128];
    struct http_slice none = {NULL, 0};

    (void)state;
    assert_int_equal(http_redirect_url("https://b.example", S("/owa/"), S("a=1"), out, sizeof(out)),
                     26);
    assert_string_equal(out, "https://b.example/owa/?a=1");
    assert_true(http_redirect_url("https://b.example/", S("/owa/"), none, out, sizeof(out)) > 0);
    assert_string_equal(out, "https://b.example/owa/");
    assert_true(http_redirect_url("https://b.example/", S("/"), S(""), out, sizeof(out)) > 0);
    assert_string_equal(out, "https://b.example/?");
    assert_int_equal(http_redirect_url("https://b.example", S("/owa/"), none, out, 23), 22);
    assert_int_equal(http_redirect_url("https://b.example", S("/owa/"), none, out, 22), -1);
}

static void test_lists(void **state)
{
    struct http_slice item;
    size_t pos = 0;
    int n = 0;

    (void)state;
    assert_true(http_list_has(S("keep-alive, Upgrade"), "upgrade"));
    assert_true(http_list_has(S(" ,, close ,"), "close"));
    assert_false(http_list_has(S("closed"), "close"));
    assert_false(http_list_has(S(""), "close"));
    while (http_list_next(S("a, ,b,,c "), &pos, &item))
        n++;
    assert_int_equal(n, 3);
    assert_true(http_hop_by_hop(S("transfer-encoding")));
    assert_true(http_hop_by_hop(S("Keep-Alive")));
    assert_false(http_hop_by_hop(S("Authorization")));
    assert_string_equal(http_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(http_status_reason(799), "Unknown");
}

/* ---- robustness --------------------------------------------------------- */

/* Mutate valid heads at random (seeded): whatever the result, it must be
   one of the three, in bounds, and a complete head must parse without
   touching memory outside it (ASan watches). */
static void test_mutations(void **state)
{
    static const char *const seeds[] = {
        "POST /x?y=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\n",
        "GET http://h:1/p HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "PUT / HTTP/1.0\r\nTransfer-Encoding: chunked\r\nExpect: 100-continue\r\n\r\n",
    };
    static const char alphabet[] = "\r\n :\t\0\x7f\x80,;-/?#@[]%0aA";
    struct http_header headers[16];

    (void)state;
    srand(12345);
    for (int iter = 0; iter < 20000; iter++) {
        const char *seed = seeds[iter % 3];
        size_t len = strlen(seed);
        char *msg = malloc(len);
        struct http_limits lim = {64 + (size_t)(rand() % 64), 40 + (size_t)(rand() % 120),
                                  1 + (size_t)(rand() % 6)};
        struct http_scan sc;
        struct http_request req;
        struct http_response resp;
        unsigned status;
        const char *error;
        enum http_parse_result r;

        memcpy(msg, seed, len);
        for (int m = rand() % 4; m >= 0; m--)
            msg[rand() % len] = alphabet[rand() % (sizeof(alphabet) - 1)];
        http_scan_init(&sc, iter % 7 == 0);
        r = scan_split(&sc, msg, len, RANDOM, (unsigned)iter, &lim, &status, &error);
        assert_true(r == HTTP_PARSE_OK || r == HTTP_PARSE_BAD || r == HTTP_PARSE_MORE);
        if (r == HTTP_PARSE_BAD)
            assert_true(status == 400 || status == 414 || status == 431 || status == 502);
        if (r == HTTP_PARSE_OK) {
            /* copy the head alone so nothing past it is readable */
            char *head = malloc(sc.pos);
            assert_true(sc.pos <= len && sc.pos <= lim.max_head);
            memcpy(head, msg, sc.pos);
            if (sc.response) {
                (void)http_response_parse(head, &sc, false, headers, 16, &resp, &error);
            } else {
                r = http_request_parse(head, &sc, headers, 16, &req, &status, &error);
                if (r == HTTP_PARSE_OK) {
                    assert_true(req.path.len > 0);
                    assert_true(req.body != HTTP_BODY_EOF);
                    (void)http_path_ambiguous(req.path);
                }
            }
            free(head);
        }
        free(msg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_requests),
        cmocka_unit_test(test_request_fields),
        cmocka_unit_test(test_scan_sticky),
        cmocka_unit_test(test_scan_limits_exact),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_chunked),
        cmocka_unit_test(test_chunked_sticky),
        cmocka_unit_test(test_chunked_large),
        cmocka_unit_test(test_paths),
        cmocka_unit_test(test_query),
        cmocka_unit_test(test_basic),
        cmocka_unit_test(test_redirect),
        cmocka_unit_test(test_lists),
        cmocka_unit_test(test_mutations),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
