/*
 * Unit tests of the SIP parser and response builder (plugins/sip/sip_parse.c,
 * sip_reply.c): table-driven. Every framing case is also fed one byte at a
 * time and in random splits, as TCP may deliver it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/sip/sip_parse.h"
#include "../../plugins/sip/sip_reply.h"

#define RANDOM_SPLITS 200

static bool slice_is(struct sip_slice s, const char *want)
{
    return s.len == strlen(want) && (s.len == 0 || memcmp(s.ptr, want, s.len) == 0);
}

#define assert_slice(s, want)                                                          \
    do {                                                                               \
        if (!slice_is((s), (want)))                                                    \
            fail_msg("%s: got '%.*s', want '%s'", #s, (int)(s).len,                    \
                     (s).ptr ? (s).ptr : "", (want));                                  \
    } while (0)

/* A tiny deterministic generator, so that a failure can be replayed. */
static uint32_t rng_state;
static uint32_t rng(void)
{
    rng_state = rng_state * 1103515245u + 12345u;
    return rng_state >> 8;
}

/* ---- framing ---------------------------------------------------------------- */

#define INV_HEAD                                                                      \
    "INVITE sip:alice@gw.example SIP/2.0\r\n"                                        \
    "Via: SIP/2.0/TCP 10.0.0.1:5060;branch=z9hG4bK776asdhds\r\n"                      \
    "Max-Forwards: 70\r\n"                                                            \
    "To: <sip:alice@gw.example>\r\n"                                                  \
    "From: \"Bob\" <sip:bob@example.com>;tag=1928301774\r\n"                           \
    "Call-ID: a84b4c76e66710@pc33\r\n"                                                \
    "CSeq: 314159 INVITE\r\n"

struct frame_case {
    const char *name;
    const char *in;
    size_t max_header;
    enum sip_parse_result result;
    size_t skip, header_len, body_len;
    bool ping;
    const char *error;
};

static const struct frame_case frame_cases[] = {
    {"no body", INV_HEAD "Content-Length: 0\r\n\r\n", 8192, SIP_PARSE_OK, 0,
     sizeof(INV_HEAD "Content-Length: 0\r\n\r\n") - 1, 0, false, NULL},
    {"body", INV_HEAD "Content-Length: 4\r\n\r\nv=0\n", 8192, SIP_PARSE_OK, 0,
     sizeof(INV_HEAD "Content-Length: 4\r\n\r\n") - 1, 4, false, NULL},
    {"compact l and blanks", INV_HEAD "l :  12 \r\n\r\n", 8192, SIP_PARSE_OK, 0,
     sizeof(INV_HEAD "l :  12 \r\n\r\n") - 1, 12, false, NULL},
    {"lower-case name", INV_HEAD "content-length:3\r\n\r\n", 8192, SIP_PARSE_OK, 0,
     sizeof(INV_HEAD "content-length:3\r\n\r\n") - 1, 3, false, NULL},
    {"bare LF", "OPTIONS sip:x SIP/2.0\nContent-Length: 0\n\n", 8192, SIP_PARSE_OK, 0, 41, 0,
     false, NULL},
    {"leading CRLF skipped", "\r\nOPTIONS sip:x SIP/2.0\r\nContent-Length: 0\r\n\r\n", 8192,
     SIP_PARSE_OK, 2, 44, 0, false, NULL},
    {"ping", "\r\n\r\n", 8192, SIP_PARSE_OK, 4, 0, 0, true, NULL},
    {"ping, bare LF", "\n\n", 8192, SIP_PARSE_OK, 2, 0, 0, true, NULL},
    {"not Content-Length", INV_HEAD "Content-Lengthy: 5\r\nl: 0\r\n\r\n", 8192, SIP_PARSE_OK, 0,
     sizeof(INV_HEAD "Content-Lengthy: 5\r\nl: 0\r\n\r\n") - 1, 0, false, NULL},
    {"same length twice", INV_HEAD "l: 0\r\nContent-Length: 0\r\n\r\n", 8192, SIP_PARSE_OK, 0,
     sizeof(INV_HEAD "l: 0\r\nContent-Length: 0\r\n\r\n") - 1, 0, false, NULL},
    {"missing Content-Length", INV_HEAD "\r\n", 8192, SIP_PARSE_BAD, 0, 0, 0, false,
     "Missing Content-Length"},
    {"bad Content-Length", INV_HEAD "Content-Length: 1x\r\n\r\n", 8192, SIP_PARSE_BAD, 0, 0, 0,
     false, "Bad Content-Length"},
    {"negative Content-Length", INV_HEAD "Content-Length: -1\r\n\r\n", 8192, SIP_PARSE_BAD, 0, 0,
     0, false, "Bad Content-Length"},
    {"huge Content-Length", INV_HEAD "Content-Length: 12345678901\r\n\r\n", 8192, SIP_PARSE_BAD,
     0, 0, 0, false, "Bad Content-Length"},
    {"conflicting Content-Length", INV_HEAD "l: 1\r\nContent-Length: 2\r\n\r\n", 8192,
     SIP_PARSE_BAD, 0, 0, 0, false, "Bad Content-Length"},
    {"headers too long", INV_HEAD "Content-Length: 0\r\n\r\n", 64, SIP_PARSE_TOO_LONG, 0, 0, 0,
     false, "Message Too Large"},
    {"line without end too long", "INVITE sip:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
     32, SIP_PARSE_TOO_LONG, 0, 0, 0, false, "Message Too Large"},
};

/* Feed `in` cut at the given points; the framer must say MORE until every
   byte is there, then give the same answer as for the whole. */
static void frame_split(const struct frame_case *c, const size_t *cuts, size_t ncuts)
{
    size_t len = strlen(c->in), have = 0;
    struct sip_framer f;
    struct sip_frame fr;
    const char *err = NULL;
    enum sip_parse_result r = SIP_PARSE_MORE;

    sip_framer_init(&f);
    for (size_t i = 0; i <= ncuts; i++) {
        have = i < ncuts ? cuts[i] : len;
        r = sip_frame(&f, c->in, have, c->max_header, &fr, &err);
        if (r != SIP_PARSE_MORE)
            break;
    }
    if (r != c->result)
        fail_msg("%s: result %d after %zu of %zu bytes, want %d", c->name, r, have, len,
                 c->result);
    if (r == SIP_PARSE_OK) {
        /* a message is complete once its header block is; the body may follow */
        assert_int_equal(fr.skip, c->skip);
        assert_int_equal(fr.header_len, c->header_len);
        assert_int_equal(fr.body_len, c->body_len);
        assert_int_equal(fr.ping, c->ping);
    } else if (c->error != NULL) {
        assert_string_equal(err, c->error);
    }
}

static void test_frame_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(frame_cases) / sizeof(frame_cases[0]); i++) {
        const struct frame_case *c = &frame_cases[i];
        size_t len = strlen(c->in);
        size_t *cuts = calloc(len + 1, sizeof(*cuts));

        /* whole */
        frame_split(c, NULL, 0);
        /* one byte at a time */
        for (size_t k = 0; k < len; k++)
            cuts[k] = k + 1;
        frame_split(c, cuts, len > 0 ? len - 1 : 0);
        /* random splits */
        for (int n = 0; n < RANDOM_SPLITS; n++) {
            size_t ncuts = 0, pos = 0;

            rng_state = (uint32_t)(i * 7919 + (size_t)n);
            while (pos < len) {
                pos += 1 + rng() % 97;
                if (pos < len)
                    cuts[ncuts++] = pos;
            }
            frame_split(c, cuts, ncuts);
        }
        free(cuts);
    }
}

/* Several messages back to back, as one TCP stream delivers them, split at
   random: framing then parsing must find each one. */
static void test_frame_pipeline(void **state)
{
    static const char *const msgs[] = {
        INV_HEAD "Content-Length: 0\r\n\r\n",
        "\r\n\r\n",
        "OPTIONS sip:gw SIP/2.0\r\nVia: SIP/2.0/TCP h;branch=z9hG4bK1\r\nFrom: <sip:a@b>;tag=1\r\n"
        "To: <sip:gw>\r\nCall-ID: o1\r\nCSeq: 1 OPTIONS\r\nContent-Length: 5\r\n\r\nhello",
        INV_HEAD "Content-Length: 3\r\n\r\nabc",
    };
    static const bool pings[] = {false, true, false, false};
    char stream[4096];
    size_t total = 0;

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        memcpy(stream + total, msgs[i], strlen(msgs[i]));
        total += strlen(msgs[i]);
    }
    for (int n = 0; n < RANDOM_SPLITS; n++) {
        char buf[4096];
        size_t blen = 0, fed = 0, found = 0;
        struct sip_framer f;

        rng_state = (uint32_t)n;
        sip_framer_init(&f);
        while (fed < total || blen > 0) {
            struct sip_frame fr;
            const char *err;
            enum sip_parse_result r;

            if (fed < total) {
                size_t k = 1 + rng() % 61;
                if (k > total - fed)
                    k = total - fed;
                memcpy(buf + blen, stream + fed, k);
                blen += k;
                fed += k;
            }
            for (;;) {
                size_t mlen;

                r = sip_frame(&f, buf, blen, 8192, &fr, &err);
                if (r != SIP_PARSE_OK)
                    break;
                mlen = fr.ping ? fr.skip : fr.skip + fr.header_len + fr.body_len;
                if (mlen > blen)
                    break;   /* body not all there yet */
                assert_true(found < 4);
                assert_int_equal(fr.ping, pings[found]);
                if (!fr.ping) {
                    struct sip_msg m;
                    assert_int_equal(sip_msg_parse(buf + fr.skip, fr.header_len + fr.body_len,
                                                   true, &m, &err), SIP_PARSE_OK);
                    assert_int_equal(mlen, strlen(msgs[found]));
                    assert_int_equal(m.body.len, fr.body_len);
                }
                found++;
                memmove(buf, buf + mlen, blen - mlen);
                blen -= mlen;
                sip_framer_init(&f);
            }
            assert_int_equal(r == SIP_PARSE_BAD || r == SIP_PARSE_TOO_LONG, false);
            if (fed == total && r != SIP_PARSE_OK)
                break;
        }
        assert_int_equal(found, 4);
        assert_int_equal(blen, 0);
    }
}

/* ---- messages --------------------------------------------------------------- */

struct msg_case {
    const char *name;
    const char *in;
    bool stream;
    enum sip_parse_result result;
    const char *error;          /* for BAD */
    /* checked when not NULL / nonzero */
    const char *method, *ruri, *call_id, *from_tag, *to_tag, *branch, *via_host, *diversion;
    unsigned long cseq;
    unsigned nvia, via_port;
    bool rport_empty;
    const char *via_rest;
    long body_len;              /* -1: not checked */
};

#define BASIC(method, extra)                                                        \
    method " sip:alice@gw SIP/2.0\r\n"                                             \
    "Via: SIP/2.0/UDP 192.0.2.1:5070;branch=z9hG4bKabc\r\n"                          \
    "From: <sip:bob@x>;tag=ft\r\nTo: <sip:alice@gw>\r\nCall-ID: cid\r\n"            \
    "CSeq: 7 " method "\r\n" extra

#define BAD(n, input, strm, err) \
    {.name = (n), .in = (input), .stream = (strm), .result = SIP_PARSE_BAD, .error = (err), \
     .body_len = -1}

static const struct msg_case msg_cases[] = {
    {.name = "invite", .in = INV_HEAD "Content-Length: 0\r\n\r\n", .stream = true,
     .result = SIP_PARSE_OK, .method = "INVITE", .ruri = "sip:alice@gw.example",
     .call_id = "a84b4c76e66710@pc33", .from_tag = "1928301774", .to_tag = "",
     .branch = "z9hG4bK776asdhds", .via_host = "10.0.0.1", .cseq = 314159, .nvia = 1,
     .via_port = 5060, .via_rest = "", .body_len = 0},
    {.name = "compact forms, folding, rport",
     .in = "OPTIONS sip:gw SIP/2.0\r\n"
           "v: SIP/2.0/UDP [2001:db8::1]:5080 ;rport;branch=z9hG4bKx1, SIP/2.0/TCP p2;branch=z9hG4bKp\r\n"
           "v: SIP/2.0/UDP p3\r\n"
           "f: Bob\r\n <sip:bob@x>;tag=aa\r\n"
           "t: sip:gw;tag=bb\r\n"
           "i: c2\r\n"
           "CSeq:  2\t OPTIONS\r\n\r\n",
     .result = SIP_PARSE_OK, .method = "OPTIONS", .ruri = "sip:gw", .call_id = "c2",
     .from_tag = "aa", .to_tag = "bb", .branch = "z9hG4bKx1", .via_host = "[2001:db8::1]",
     .cseq = 2, .nvia = 2, .via_port = 5080, .rport_empty = true,
     .via_rest = "SIP/2.0/TCP p2;branch=z9hG4bKp", .body_len = 0},
    {.name = "diversion",
     .in = BASIC("INVITE", "Diversion: <sip:carol@x>;reason=no-answer, <sip:dan@x>\r\n"
                           "Diversion: <sip:eve@x>\r\n\r\n"),
     .result = SIP_PARSE_OK, .method = "INVITE",
     .diversion = "<sip:carol@x>;reason=no-answer, <sip:dan@x>", .cseq = 7, .nvia = 1,
     .via_port = 5070, .body_len = 0},
    {.name = "datagram body to the end", .in = BASIC("INVITE", "\r\nv=0\r\n"),
     .result = SIP_PARSE_OK, .body_len = 5},
    {.name = "datagram extra bytes dropped", .in = BASIC("INVITE", "l: 2\r\n\r\nv=0\r\n"),
     .result = SIP_PARSE_OK, .body_len = 2},
    {.name = "response", .in = "SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\n\r\n",
     .result = SIP_PARSE_OK, .nvia = 1, .body_len = -1},
    {.name = "unknown method", .in = BASIC("FOO", "\r\n"), .result = SIP_PARSE_OK,
     .method = "FOO", .body_len = -1},
    {.name = "CSeq matches the method", .in = BASIC("INVITE", "\r\n"), .result = SIP_PARSE_OK,
     .body_len = -1},
    BAD("body shorter than Content-Length", BASIC("INVITE", "Content-Length: 10\r\n\r\nv=0\r\n"),
        false, "Content-Length Larger Than Body"),
    BAD("stream without Content-Length", BASIC("INVITE", "\r\n"), true, "Missing Content-Length"),
    BAD("missing Call-ID",
        "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h;branch=z9hG4bK1\r\nFrom: <sip:x@y>;tag=1\r\n"
        "To: <sip:a@b>\r\nCSeq: 1 INVITE\r\n\r\n", false, "Missing Call-ID"),
    BAD("missing Via",
        "INVITE sip:a@b SIP/2.0\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\nCall-ID: c\r\n"
        "CSeq: 1 INVITE\r\n\r\n", false, "Missing Via"),
    BAD("missing From tag",
        "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>\r\nTo: <sip:a@b>\r\n"
        "Call-ID: c\r\nCSeq: 1 INVITE\r\n\r\n", false, "Missing From Tag"),
    BAD("CSeq other method",
        "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n"
        "Call-ID: c\r\nCSeq: 1 ACK\r\n\r\n", false, "CSeq Method Mismatch"),
    BAD("CSeq too big",
        "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n"
        "Call-ID: c\r\nCSeq: 2147483648 INVITE\r\n\r\n", false, "Bad CSeq"),
    BAD("CSeq without method",
        "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nFrom: <sip:x@y>;tag=1\r\nTo: <sip:a@b>\r\n"
        "Call-ID: c\r\nCSeq: 12\r\n\r\n", false, "Bad CSeq"),
    BAD("bad Content-Length", BASIC("INVITE", "Content-Length: abc\r\n\r\n"), false,
        "Bad Content-Length"),
    BAD("two Content-Lengths", BASIC("INVITE", "l: 0\r\nContent-Length: 1\r\n\r\nx"), false,
        "Bad Content-Length"),
    BAD("duplicate To", BASIC("INVITE", "To: <sip:x@y>\r\n\r\n"), false, "Duplicate To"),
    BAD("bad Max-Forwards", BASIC("INVITE", "Max-Forwards: 1000\r\n\r\n"), false,
        "Bad Max-Forwards"),
    BAD("bad Via", "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.1/UDP h\r\nFrom: <sip:x@y>;tag=1\r\n"
        "To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n", false, "Bad Via"),
    BAD("Via port 0", "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h:0\r\nFrom: <sip:x@y>;tag=1\r\n"
        "To: <sip:a@b>\r\nCall-ID: c\r\nCSeq: 1 INVITE\r\n\r\n", false, "Bad Via"),
    BAD("version", "INVITE sip:a@b SIP/3.0\r\nVia: SIP/2.0/UDP h\r\n\r\n", false, SIP_ERR_VERSION),
    BAD("no version", "INVITE sip:a@b\r\n\r\n", false, "Bad Request Line"),
    BAD("bad method", "INV@TE sip:a@b SIP/2.0\r\n\r\n", false, "Bad Method"),
    BAD("NUL in a header", "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nX: a\0b\r\n\r\n", false,
        "Bad Header"),
    BAD("header without colon", BASIC("INVITE", "Nonsense\r\n\r\n"), false, "Bad Header"),
    BAD("no blank line", "INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n", false,
        "Incomplete Header"),
    BAD("empty", "", false, "Bad Start Line"),
    BAD("bad status", "SIP/2.0 20 OK\r\n\r\n", false, "Bad Status Line"),
};

static void check_msg(const struct msg_case *c, size_t len)
{
    struct sip_msg m;
    const char *err = NULL;
    enum sip_parse_result r = sip_msg_parse(c->in, len, c->stream, &m, &err);

    if (r != c->result)
        fail_msg("%s: result %d (%s), want %d", c->name, r, err ? err : "", c->result);
    if (r != SIP_PARSE_OK) {
        if (c->error != NULL && strcmp(err, c->error) != 0)
            fail_msg("%s: error '%s', want '%s'", c->name, err, c->error);
        return;
    }
    if (c->method)
        assert_slice(m.method_name, c->method);
    if (c->ruri)
        assert_slice(m.ruri, c->ruri);
    if (c->call_id)
        assert_slice(m.call_id, c->call_id);
    if (c->from_tag)
        assert_slice(m.from_tag, c->from_tag);
    if (c->to_tag)
        assert_slice(m.to_tag, c->to_tag);
    if (c->branch)
        assert_slice(m.top_via.branch, c->branch);
    if (c->via_host)
        assert_slice(m.top_via.host, c->via_host);
    if (c->diversion)
        assert_slice(m.diversion, c->diversion);
    if (c->via_rest)
        assert_slice(m.top_via.rest, c->via_rest);
    if (c->cseq)
        assert_int_equal(m.cseq_num, c->cseq);
    if (c->nvia)
        assert_int_equal(m.nvia, c->nvia);
    if (c->via_port)
        assert_int_equal(m.top_via.port, c->via_port);
    if (c->via_host)
        assert_int_equal(m.top_via.rport_empty, c->rport_empty);
    if (c->body_len > 0)
        assert_int_equal(m.body.len, (size_t)c->body_len);
}

static void test_msg_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(msg_cases) / sizeof(msg_cases[0]); i++) {
        const struct msg_case *c = &msg_cases[i];
        size_t len = strlen(c->in);

        if (strcmp(c->name, "NUL in a header") == 0)
            len = sizeof("INVITE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\nX: a\0b\r\n\r\n") - 1;
        check_msg(c, len);
    }
}

/* Every prefix of a valid message must parse without reading past it
   (ASan checks), and never as OK unless it is the whole header block. */
static void test_msg_prefixes(void **state)
{
    const char *in = BASIC("INVITE", "Diversion: \"A, B\" <sip:x@y;user=phone>;r=1\r\n"
                                     "Content-Length: 4\r\n\r\nv=0\n");
    size_t len = strlen(in);

    (void)state;
    for (size_t n = 0; n < len; n++) {
        char *copy = malloc(n > 0 ? n : 1);
        struct sip_msg m;
        const char *err;

        memcpy(copy, in, n);
        (void)sip_msg_parse(copy, n, false, &m, &err);
        (void)sip_msg_parse(copy, n, true, &m, &err);
        free(copy);
    }
}

/* ---- URIs and header values ----------------------------------------------- */

static void test_uri(void **state)
{
    static const struct {
        const char *uri;
        enum sip_parse_result r;
        enum sip_scheme scheme;
        const char *user, *host, *key;   /* key NULL: sip_uri_user_key fails */
    } cases[] = {
        {"sip:alice@gw.example", SIP_PARSE_OK, SIP_SCHEME_SIP, "alice", "gw.example", "alice"},
        {"SIPS:bob:secret@[2001:db8::1]:5061;transport=tls", SIP_PARSE_OK, SIP_SCHEME_SIPS, "bob",
         "[2001:db8::1]", "bob"},
        {"sip:4001;phone-context=+1555@gw;user=phone", SIP_PARSE_OK, SIP_SCHEME_SIP,
         "4001;phone-context=+1555", "gw", "4001"},
        {"sip:al%69ce@gw", SIP_PARSE_OK, SIP_SCHEME_SIP, "al%69ce", "gw", "alice"},
        {"sip:a%00b@gw", SIP_PARSE_OK, SIP_SCHEME_SIP, "a%00b", "gw", NULL},
        {"sip:a%4@gw", SIP_PARSE_OK, SIP_SCHEME_SIP, "a%4", "gw", NULL},
        {"sip:gw.example:5060", SIP_PARSE_OK, SIP_SCHEME_SIP, "", "gw.example", NULL},
        {"sip:5000@gw?subject=x@y", SIP_PARSE_OK, SIP_SCHEME_SIP, "5000", "gw", "5000"},
        {"tel:+1-555-(123).4567;ext=1", SIP_PARSE_OK, SIP_SCHEME_TEL, "+1-555-(123).4567", "",
         "+15551234567"},
        {"mailto:a@b", SIP_PARSE_OK, SIP_SCHEME_OTHER, "", "", NULL},
        {"sip:", SIP_PARSE_BAD, SIP_SCHEME_SIP, "", "", NULL},
        {"sip:a@", SIP_PARSE_BAD, SIP_SCHEME_SIP, "", "", NULL},
        {"sip:a b@c", SIP_PARSE_BAD, SIP_SCHEME_OTHER, "", "", NULL},
        {"alice", SIP_PARSE_BAD, SIP_SCHEME_OTHER, "", "", NULL},
        {"", SIP_PARSE_BAD, SIP_SCHEME_OTHER, "", "", NULL},
        {"sip:a@[::1", SIP_PARSE_BAD, SIP_SCHEME_SIP, "", "", NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sip_slice s = {cases[i].uri, strlen(cases[i].uri)};
        struct sip_uri u;
        char key[SIP_KEY_MAX];
        long n;

        if (sip_uri_parse(s, &u) != cases[i].r)
            fail_msg("%s: parse result", cases[i].uri);
        if (cases[i].r != SIP_PARSE_OK)
            continue;
        assert_int_equal(u.scheme, cases[i].scheme);
        assert_slice(u.user, cases[i].user);
        assert_slice(u.host, cases[i].host);
        n = sip_uri_user_key(&u, key, sizeof(key));
        if (cases[i].key == NULL) {
            if (n >= 0)
                fail_msg("%s: key '%s', want none", cases[i].uri, key);
        } else {
            if (n < 0)
                fail_msg("%s: no key", cases[i].uri);
            assert_string_equal(key, cases[i].key);
        }
    }
}

static void test_name_addr(void **state)
{
    static const struct {
        const char *value;
        enum sip_parse_result r;
        const char *uri, *tag;
    } cases[] = {
        {"<sip:a@b>;tag=x", SIP_PARSE_OK, "sip:a@b", "x"},
        {"\"A <b>; c\" <sip:a@b;lr>;tag=y;foo", SIP_PARSE_OK, "sip:a@b;lr", "y"},
        {"Bob Smith <sip:bob@b>", SIP_PARSE_OK, "sip:bob@b", NULL},
        {"sip:a@b;tag=z", SIP_PARSE_OK, "sip:a@b", "z"},
        {"sip:a@b ; TAG = \"q\"", SIP_PARSE_OK, "sip:a@b", "\"q\""},
        {"<sip:a@b;tag=inuri>", SIP_PARSE_OK, "sip:a@b;tag=inuri", NULL},
        {"<sip:a@b>, <sip:c@d>;tag=n", SIP_PARSE_OK, "sip:a@b", NULL},
        {"\"unterminated <sip:a@b>", SIP_PARSE_BAD, NULL, NULL},
        {"<sip:a@b", SIP_PARSE_BAD, NULL, NULL},
        {"<>", SIP_PARSE_BAD, NULL, NULL},
        {"", SIP_PARSE_BAD, NULL, NULL},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct sip_slice v = {cases[i].value, strlen(cases[i].value)}, uri, tag;
        bool has_tag = sip_header_param(v, "tag", &tag);

        if (sip_name_addr_uri(v, &uri) != cases[i].r)
            fail_msg("'%s': result", cases[i].value);
        if (cases[i].r == SIP_PARSE_OK)
            assert_slice(uri, cases[i].uri);
        if (cases[i].tag == NULL) {
            if (cases[i].r == SIP_PARSE_OK && has_tag)
                fail_msg("'%s': unexpected tag", cases[i].value);
        } else {
            assert_true(has_tag);
            assert_slice(tag, cases[i].tag);
        }
    }
}

/* ---- responses -------------------------------------------------------------- */

static void test_reply_302(void **state)
{
    const char *req =
        "INVITE sip:4001@gw SIP/2.0\r\n"
        "Via: SIP/2.0/UDP client.example:5070;rport;branch=z9hG4bKa1, SIP/2.0/UDP p1;branch=z9hG4bKp1\r\n"
        "Via: SIP/2.0/TCP p2;branch=z9hG4bKp2\r\n"
        "From: <sip:bob@x>;tag=ft\r\nTo: <sip:4001@gw>\r\nCall-ID: cid\r\nCSeq: 7 INVITE\r\n"
        "Content-Length: 0\r\n\r\n";
    const char *want =
        "SIP/2.0 302 Moved Temporarily\r\n"
        "Via: SIP/2.0/UDP client.example:5070;rport=40000;branch=z9hG4bKa1;received=192.0.2.7\r\n"
        "Via: SIP/2.0/UDP p1;branch=z9hG4bKp1\r\n"
        "Via: SIP/2.0/TCP p2;branch=z9hG4bKp2\r\n"
        "From: <sip:bob@x>;tag=ft\r\n"
        "To: <sip:4001@gw>;tag=00000000deadbeef\r\n"
        "Call-ID: cid\r\n"
        "CSeq: 7 INVITE\r\n"
        "Contact: <sip:alice@127.0.0.1:5062;transport=udp>;q=1.0\r\n"
        "Contact: <sip:a%20b%3C@[::1]:5063;transport=tls>;q=0.9\r\n"
        "Server: gatewayd\r\n"
        "Content-Length: 0\r\n\r\n";
    struct sip_msg m;
    const char *err;
    char buf[2048], tag[SIP_TAG_LEN + 1];
    struct sip_out o;
    size_t n;

    (void)state;
    assert_int_equal(sip_msg_parse(req, strlen(req), false, &m, &err), SIP_PARSE_OK);
    sip_reply_tag(0xdeadbeefULL, tag);
    sip_out_init(&o, buf, sizeof(buf));
    sip_reply_status(&o, 302, NULL);
    sip_reply_head(&o, &m, "192.0.2.7", 40000, tag);
    sip_reply_contact(&o, "alice", "127.0.0.1", 5062, "udp", 1000);
    sip_reply_contact(&o, "a b<", "::1", 5063, "tls", 900);
    n = sip_reply_end(&o, "gatewayd");
    assert_int_equal(n, strlen(want));
    assert_memory_equal(buf, want, n);

    /* the response parses back as a response with the same Vias */
    assert_int_equal(sip_msg_parse(buf, n, true, &m, &err), SIP_PARSE_OK);
    assert_false(m.request);
    assert_int_equal(m.status, 302);
    assert_int_equal(m.nvia, 3);
}

static void test_reply_received(void **state)
{
    static const struct {
        const char *via;
        const char *addr;
        unsigned port;
        const char *want;
    } cases[] = {
        /* same host, no rport: unchanged */
        {"SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1", "10.0.0.1", 5060,
         "Via: SIP/2.0/UDP 10.0.0.1:5060;branch=z9hG4bK1\r\n"},
        /* other host: received */
        {"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1", "10.0.0.9", 5060,
         "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;received=10.0.0.9\r\n"},
        /* rport asked: filled, and received even for the same host */
        {"SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;rport", "10.0.0.1", 1234,
         "Via: SIP/2.0/UDP 10.0.0.1;branch=z9hG4bK1;rport=1234;received=10.0.0.1\r\n"},
        /* IPv6 in brackets equals the bare address */
        {"SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1", "::1", 5060,
         "Via: SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1\r\n"},
        /* received already there: left alone */
        {"SIP/2.0/UDP h;received=1.2.3.4;branch=z9hG4bK1", "10.0.0.9", 5060,
         "Via: SIP/2.0/UDP h;received=1.2.3.4;branch=z9hG4bK1\r\n"},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char req[512], buf[1024];
        struct sip_msg m;
        struct sip_out o;
        const char *err;
        int n = snprintf(req, sizeof(req),
                         "OPTIONS sip:gw SIP/2.0\r\nVia: %s\r\nFrom: <sip:a@b>;tag=1\r\n"
                         "To: <sip:gw>;tag=2\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n",
                         cases[i].via);

        assert_int_equal(sip_msg_parse(req, (size_t)n, false, &m, &err), SIP_PARSE_OK);
        sip_out_init(&o, buf, sizeof(buf));
        sip_reply_head(&o, &m, cases[i].addr, cases[i].port, "tttt");
        assert_false(o.overflow);
        if (o.len < strlen(cases[i].want) || memcmp(buf, cases[i].want, strlen(cases[i].want)) != 0)
            fail_msg("case %zu: got\n%.*s", i, (int)o.len, buf);
        /* the request's To tag is kept, ours not added */
        assert_non_null(strstr(buf, "To: <sip:gw>;tag=2\r\n"));
        assert_null(strstr(buf, "tttt"));
    }
}

static void test_reply_overflow(void **state)
{
    char buf[40];
    struct sip_out o;

    (void)state;
    sip_out_init(&o, buf, sizeof(buf));
    sip_reply_status(&o, 513, NULL);
    sip_reply_contact(&o, "someone-with-a-long-name", "host.example", 5060, "tcp", -1);
    assert_true(o.overflow);
    assert_int_equal(sip_reply_end(&o, NULL), 0);
    assert_string_equal(sip_reason(487), "Request Terminated");
    assert_string_equal(sip_reason(599), "Server Error");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frame_table),
        cmocka_unit_test(test_frame_pipeline),
        cmocka_unit_test(test_msg_table),
        cmocka_unit_test(test_msg_prefixes),
        cmocka_unit_test(test_uri),
        cmocka_unit_test(test_name_addr),
        cmocka_unit_test(test_reply_302),
        cmocka_unit_test(test_reply_received),
        cmocka_unit_test(test_reply_overflow),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
