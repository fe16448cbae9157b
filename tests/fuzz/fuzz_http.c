/*
 * libFuzzer harness for plugins/http/http_parse.c (with Debian's http_parser
 * underneath): the request path of the HTTP plugin, as a client stream.
 *
 * The first input byte picks the limits, request or response mode and a
 * split seed; the rest is the stream. Each message head is scanned twice --
 * all at once and in pieces drawn from the seed -- and both runs must agree
 * (the scanner is resumable: TCP decides where bytes are cut). A complete
 * head is parsed from a copy of exactly its bytes (so ASan sees any read past
 * it); its body is skipped (Content-Length) or decoded twice by the chunked
 * decoder, whole and split, with the same data and the same end; then the
 * next pipelined message follows. The helpers the session feeds with parser
 * output (path prefixes, query, Basic, redirects) run on every result.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/http/http_parse.h"

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

#define FUZZ_MESSAGES 8

static struct http_header headers[HTTP_MAX_HEADERS_LIMIT];

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *d = data;

    for (size_t i = 0; i < len; i++) {
        h ^= d[i];
        h *= 1099511628211ull;
    }
    return h;
}

static uint32_t next_rand(uint32_t *s)
{
    *s = *s * 1103515245u + 12345u;
    return *s >> 16;
}

static void check_slice(struct http_slice s, const char *base, size_t len)
{
    if (s.ptr == NULL)
        return;
    if (s.len == 1 && s.ptr[0] == '/' && (s.ptr < base || s.ptr >= base + len))
        return;   /* the static "/" of an absolute-form target without a path */
    FUZZ_CHECK(s.ptr >= base && s.ptr + s.len <= base + len);
}

/* Scan the head at data[0..len): whole, then in pieces; both must agree. */
static enum http_parse_result scan(const uint8_t *data, size_t len, bool response,
                                   const struct http_limits *lim, uint32_t seed,
                                   struct http_scan *sc_r, unsigned *status_r)
{
    struct http_scan split;
    unsigned status2 = 0;
    const char *error = NULL, *error2 = NULL;
    enum http_parse_result r, r2 = HTTP_PARSE_MORE;
    size_t have = 0;

    http_scan_init(sc_r, response);
    r = http_scan_head(sc_r, (const char *)data, len, lim, status_r, &error);
    http_scan_init(&split, response);
    while (have < len) {
        have += 1 + next_rand(&seed) % 13;
        if (have > len)
            have = len;
        r2 = http_scan_head(&split, (const char *)data, have, lim, &status2, &error2);
        if (r2 != HTTP_PARSE_MORE)
            break;
    }
    FUZZ_CHECK(r == r2);
    if (r == HTTP_PARSE_OK) {
        FUZZ_CHECK(sc_r->pos == split.pos && sc_r->pos <= len && sc_r->pos <= lim->max_head);
        FUZZ_CHECK(sc_r->nheaders == split.nheaders && sc_r->nheaders <= lim->max_headers);
    }
    if (r == HTTP_PARSE_BAD) {
        FUZZ_CHECK(*status_r == status2 && error != NULL);
        FUZZ_CHECK(*status_r == 400 || *status_r == 414 || *status_r == 431 || *status_r == 502);
    }
    return r;
}

/* Decode a chunked body whole and split; returns the bytes it took, or 0
   when it is incomplete or bad. */
static size_t chunked(const uint8_t *data, size_t len, uint32_t seed)
{
    struct http_chunked a, b;
    struct http_slice d;
    const char *error;
    uint64_t ha = 1469598103934665603ull, hb = ha;
    size_t off = 0, used, end_a = 0, end_b = 0;
    enum http_parse_result ra = HTTP_PARSE_MORE, rb = HTTP_PARSE_MORE;

    http_chunked_init(&a);
    while (off < len) {
        ra = http_chunked_parse(&a, (const char *)data + off, len - off, &used, &d, &error);
        FUZZ_CHECK(used <= len - off);
        if (d.len > 0) {
            FUZZ_CHECK(d.ptr >= (const char *)data + off && d.ptr + d.len <= (const char *)data + off + used);
            ha = fnv(ha, d.ptr, d.len);
        }
        off += used;
        if (ra != HTTP_PARSE_MORE)
            break;
        if (used == 0 && d.len == 0)
            break;
    }
    end_a = off;
    http_chunked_init(&b);
    off = 0;
    while (off < len && rb == HTTP_PARSE_MORE) {
        size_t piece = 1 + next_rand(&seed) % 9;
        size_t p = 0;
        char *copy;

        if (piece > len - off)
            piece = len - off;
        copy = malloc(piece);
        memcpy(copy, data + off, piece);
        while (p < piece) {
            rb = http_chunked_parse(&b, copy + p, piece - p, &used, &d, &error);
            if (d.len > 0)
                hb = fnv(hb, d.ptr, d.len);
            p += used;
            if (rb != HTTP_PARSE_MORE || (used == 0 && d.len == 0))
                break;
        }
        free(copy);
        off += p;
        if (rb != HTTP_PARSE_MORE)
            break;
    }
    end_b = off;
    FUZZ_CHECK(ra == rb);
    if (ra == HTTP_PARSE_OK) {
        FUZZ_CHECK(ha == hb && end_a == end_b);
        return end_a;
    }
    return 0;
}

static void helpers(const struct http_request *req)
{
    struct http_slice v, user, pw;
    const char *error;
    char out[512];
    int i;

    (void)http_path_ambiguous(req->path);
    if (http_path_under(req->path, "/autodiscover"))
        FUZZ_CHECK(!http_path_ambiguous(req->path));
    (void)http_query_param(req->query, "User", &v);
    (void)http_redirect_url("https://b.example/", req->path, req->query, out, sizeof(out));
    i = http_header_find(req->headers, req->nheaders, 0, "Authorization");
    if (i >= 0 && http_basic_token(req->headers[i].value, &v) == HTTP_PARSE_OK)
        (void)http_basic_split(v.ptr, v.len, &user, &pw, &error);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct http_limits lim;
    uint32_t seed;
    bool response;

    if (size < 1)
        return 0;
    lim.max_line = 16 + (size_t)(data[0] & 0x0f) * 64;
    lim.max_head = 64 + (size_t)(data[0] & 0x30) * 128;
    lim.max_headers = 1 + (data[0] >> 6) * 20;
    response = (data[0] & 0x80) && (data[0] & 0x01);
    seed = data[0];
    data++;
    size--;

    for (int m = 0; m < FUZZ_MESSAGES && size > 0; m++) {
        struct http_scan sc;
        unsigned status = 0;
        const char *error = NULL;
        char *head;
        size_t body = 0;

        if (scan(data, size, response, &lim, seed + (uint32_t)m, &sc, &status) != HTTP_PARSE_OK)
            break;
        head = malloc(sc.pos);
        memcpy(head, data, sc.pos);
        if (response) {
            struct http_response resp;
            if (http_response_parse(head, &sc, (m & 1) != 0, headers, lim.max_headers, &resp,
                                    &error) == HTTP_PARSE_OK) {
                FUZZ_CHECK(resp.status >= 100 && resp.status <= 599);
                for (size_t i = 0; i < resp.nheaders; i++) {
                    check_slice(resp.headers[i].name, head, sc.pos);
                    check_slice(resp.headers[i].value, head, sc.pos);
                }
                if (resp.body == HTTP_BODY_EOF)
                    FUZZ_CHECK(!resp.keep_alive);
            }
            free(head);
            break;
        } else {
            struct http_request req;
            enum http_parse_result r =
                http_request_parse(head, &sc, headers, lim.max_headers, &req, &status, &error);
            if (r != HTTP_PARSE_OK) {
                FUZZ_CHECK(status >= 400 && status <= 505 && error != NULL);
                free(head);
                break;
            }
            FUZZ_CHECK(req.nheaders == sc.nheaders);
            FUZZ_CHECK(req.body != HTTP_BODY_EOF);
            FUZZ_CHECK(!(req.websocket && req.body != HTTP_BODY_NONE));
            check_slice(req.target, head, sc.pos);
            check_slice(req.path, head, sc.pos);
            check_slice(req.query, head, sc.pos);
            check_slice(req.authority, head, sc.pos);
            for (size_t i = 0; i < req.nheaders; i++) {
                check_slice(req.headers[i].name, head, sc.pos);
                check_slice(req.headers[i].value, head, sc.pos);
            }
            helpers(&req);
            data += sc.pos;
            size -= sc.pos;
            if (req.body == HTTP_BODY_LENGTH) {
                if (req.content_length > size) {
                    free(head);
                    break;
                }
                body = (size_t)req.content_length;
            } else if (req.body == HTTP_BODY_CHUNKED) {
                body = chunked(data, size, seed);
                if (body == 0) {
                    free(head);
                    break;
                }
            }
            data += body;
            size -= body;
        }
        free(head);
    }
    return 0;
}
