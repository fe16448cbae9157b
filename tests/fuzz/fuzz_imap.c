/*
 * libFuzzer harness for plugins/imap/imap_parse.c.
 *
 * The first input byte picks the limits and a split seed; the rest is a
 * client stream. It is parsed twice -- all at once, and in pieces of sizes
 * drawn from the seed -- and the two runs must give the same results (a
 * resumable parser must not care where TCP cut the bytes). Every result is
 * checked for its invariants and handed to the helpers that consume parser
 * output (ID, quoting, referral URLs, SASL PLAIN); every line of the input is
 * also parsed as a backend response and a capability list.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/imap/imap_parse.h"
#include "gateway/gateway.h"   /* gw_log_sanitize() */

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            __builtin_trap();                                                                      \
    } while (0)

static struct imap_parser parser;   /* large: off the stack */

static uint64_t fnv(uint64_t h, const void *data, size_t len)
{
    const unsigned char *d = data;

    for (size_t i = 0; i < len; i++) {
        h ^= d[i];
        h *= 1099511628211ull;
    }
    return h;
}

static void check_slice(struct imap_slice s)
{
    FUZZ_CHECK(s.ptr != NULL);
    FUZZ_CHECK(s.ptr[s.len] == '\0');
}

/* Invariants of one result, its digest, and the helpers fed with it. */
static uint64_t digest(const struct imap_parser *p, enum imap_parse_result r, uint64_t h)
{
    h = fnv(h, &r, sizeof(r));
    if (r == IMAP_PARSE_BAD || r == IMAP_PARSE_TOO_LONG) {
        FUZZ_CHECK(p->error != NULL);
        FUZZ_CHECK(!p->fatal || r == IMAP_PARSE_TOO_LONG);
        h = fnv(h, &p->fatal, sizeof(p->fatal));
        h = fnv(h, &p->has_tag, sizeof(p->has_tag));
        if (p->has_tag) {
            check_slice(p->tag);
            FUZZ_CHECK(p->tag.len > 0 && p->tag.len <= p->limits.max_tag);
            h = fnv(h, p->tag.ptr, p->tag.len);
        }
        return h;
    }
    if (r != IMAP_PARSE_OK)
        return h;

    check_slice(p->tag);
    check_slice(p->name);
    FUZZ_CHECK(p->tag.len > 0 && p->name.len > 0);
    FUZZ_CHECK(p->nargs <= IMAP_ARGS_MAX);
    h = fnv(h, p->tag.ptr, p->tag.len + 1);
    h = fnv(h, p->name.ptr, p->name.len + 1);
    {
        int depth = 0;

        for (unsigned i = 0; i < p->nargs; i++) {
            const struct imap_arg *a = &p->args[i];
            char q[64];

            h = fnv(h, &a->type, sizeof(a->type));
            check_slice(a->s);
            h = fnv(h, a->s.ptr, a->s.len);
            if (a->type == IMAP_ARG_LIST_START)
                depth++;
            else if (a->type == IMAP_ARG_LIST_END)
                depth--;
            FUZZ_CHECK(depth >= 0 && depth <= IMAP_LIST_DEPTH);
            if (a->type == IMAP_ARG_LITERAL)
                FUZZ_CHECK(a->s.len <= p->limits.max_literal);
            (void)imap_quote(a->s.ptr, a->s.len, q, sizeof(q));
            (void)imap_referral_url(a->s.ptr, a->s.ptr, q, sizeof(q));
        }
        FUZZ_CHECK(depth == 0);
    }
    {
        struct imap_id_pair pairs[IMAP_ID_PAIRS_MAX];
        unsigned n;
        const char *err;

        if (imap_id_parse(p->args, p->nargs, pairs, IMAP_ID_PAIRS_MAX, &n, &err) ==
            IMAP_PARSE_OK) {
            FUZZ_CHECK(n <= IMAP_ID_PAIRS_MAX);
            for (unsigned i = 0; i < n; i++)
                FUZZ_CHECK(pairs[i].field.len <= IMAP_ID_FIELD_MAX &&
                           pairs[i].value.len <= IMAP_ID_VALUE_MAX);
        } else {
            FUZZ_CHECK(err != NULL);
        }
    }
    if (p->nargs > 0) {
        struct imap_sasl_plain pl;
        const char *err;
        const struct imap_arg *a = &p->args[p->nargs - 1];

        if (imap_sasl_plain_parse((const unsigned char *)a->s.ptr, a->s.len, &pl, &err) ==
            IMAP_PARSE_OK)
            FUZZ_CHECK(pl.authcid.len > 0 && pl.passwd.len > 0);
    }
    return h;
}

/* Parse `data` in pieces; returns the digest of every result in order. */
static uint64_t run(const struct imap_parse_limits *lim, const uint8_t *data, size_t len,
                    uint32_t seed)
{
    uint64_t h = 14695981039346656037ull;
    size_t pos = 0;

    imap_parser_init(&parser, lim);
    while (pos < len) {
        size_t end = len;

        if (seed != 0) {
            seed ^= seed << 13;
            seed ^= seed >> 17;
            seed ^= seed << 5;
            end = pos + 1 + seed % 97;
            if (end > len)
                end = len;
        }
        while (pos < end) {
            size_t used = 0;
            enum imap_parse_result r = imap_parser_feed(&parser, data + pos, end - pos, &used);

            FUZZ_CHECK(used <= end - pos);
            pos += used;
            if (r == IMAP_PARSE_MORE) {
                FUZZ_CHECK(pos == end);
                break;
            }
            FUZZ_CHECK(used > 0);
            h = digest(&parser, r, h);
            if (r == IMAP_PARSE_LITERAL)
                FUZZ_CHECK(imap_parser_literal_left(&parser) > 0 ||
                           parser.state == IMAP_S_AFTER_TOKEN);
        }
    }
    return h;
}

static void fuzz_lines(const uint8_t *data, size_t len)
{
    const char *s = (const char *)data, *end = s + len;

    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        size_t l = nl != NULL ? (size_t)(nl - s) : (size_t)(end - s);
        struct imap_response r;
        char caps[512];

        if (l > 0 && s[l - 1] == '\r')
            l--;
        if (imap_response_parse(s, l, &r) == IMAP_PARSE_OK) {
            struct imap_slice name = imap_code_name(r.code), args = imap_code_args(r.code);

            FUZZ_CHECK(r.word.len > 0 || r.kind == IMAP_RESP_CONT);
            FUZZ_CHECK(name.len <= r.code.len && args.len <= r.code.len);
            (void)imap_caps_has(args, "IMAP4rev1");
            (void)imap_caps_prelogin(args, caps, sizeof(caps));
            (void)imap_caps_prelogin(r.text, caps, 16);
        }
        {
            struct imap_slice all = { s, l };
            char log[80];

            if (imap_caps_prelogin(all, caps, sizeof(caps)) > 0)
                FUZZ_CHECK(strncmp(caps, "IMAP4rev1", 9) == 0);
            FUZZ_CHECK(gw_log_sanitize(s, l, log, sizeof(log)) < sizeof(log));
        }
        s = nl != NULL ? nl + 1 : end;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const struct imap_parse_limits limits[4] = {
        { 0, 0, 0 },           /* everything up to the arena */
        { 8192, 4096, 64 },    /* the plugin's defaults */
        { 64, 16, 8 },         /* small: limits reached often */
        { 512, 0, 2 },
    };
    uint32_t seed;
    uint64_t whole, split;

    if (size < 1)
        return 0;
    seed = (uint32_t)data[0] * 2654435761u + 1u;
    whole = run(&limits[data[0] & 3], data + 1, size - 1, 0);
    split = run(&limits[data[0] & 3], data + 1, size - 1, seed);
    FUZZ_CHECK(whole == split);
    fuzz_lines(data + 1, size - 1);
    return 0;
}
