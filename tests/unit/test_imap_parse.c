/*
 * Unit tests of the IMAP parser (plugins/imap/imap_parse.c).
 *
 * Command cases are a table of input bytes and the expected results,
 * rendered as text. Every case is fed three ways -- all at once, one byte at
 * a time, and in seeded random splits -- and must give the same results each
 * way (Dovecot's trick: real TCP delivers bytes like that). Then the pure
 * helpers: response lines, capabilities, SASL PLAIN, ID, quoting, referral
 * URLs, and a random sweep that checks invariants on garbage.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/imap/imap_parse.h"
#include "gateway/gateway.h"   /* gw_log_sanitize() */

#define L(s) s, sizeof(s) - 1   /* literal with its length, NULs included */
#define RENDER_MAX 65536
#define SPLIT_ROUNDS 40

/* ---- rendering results ------------------------------------------------- */

static void put(char *out, size_t *o, const char *s, size_t len)
{
    for (size_t i = 0; i < len && *o + 5 < RENDER_MAX; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c < 0x20 || c >= 0x7f || c == '|')
            *o += (size_t)snprintf(out + *o, RENDER_MAX - *o, "\\x%02x", c);
        else
            out[(*o)++] = (char)c;
    }
    out[*o] = '\0';
}

static void puts_(char *out, size_t *o, const char *s)
{
    put(out, o, s, strlen(s));
}

/* One result as a line: "OK tag NAME A:atom Q:quoted L:literal ( )",
   "LIT", "BAD tag", "TOOLONG tag [fatal]" ("*" when no tag was read). */
static void render(const struct imap_parser *p, enum imap_parse_result r, char *out, size_t *o)
{
    static const char types[] = { [IMAP_ARG_ATOM] = 'A', [IMAP_ARG_QUOTED] = 'Q',
                                  [IMAP_ARG_LITERAL] = 'L' };

    if (*o > 0 && *o + 1 < RENDER_MAX) {
        out[(*o)++] = '|';   /* the separator, unescaped */
        out[*o] = '\0';
    }
    switch (r) {
    case IMAP_PARSE_MORE:
        puts_(out, o, "MORE");
        return;
    case IMAP_PARSE_LITERAL:
        puts_(out, o, "LIT");
        return;
    case IMAP_PARSE_BAD:
    case IMAP_PARSE_TOO_LONG:
        puts_(out, o, r == IMAP_PARSE_BAD ? "BAD " : "TOOLONG ");
        if (p->has_tag)
            put(out, o, p->tag.ptr, p->tag.len);
        else
            puts_(out, o, "*");
        if (p->fatal)
            puts_(out, o, " fatal");
        assert_non_null(p->error);
        return;
    case IMAP_PARSE_OK:
        break;
    }
    puts_(out, o, "OK ");
    put(out, o, p->tag.ptr, p->tag.len);
    puts_(out, o, " ");
    put(out, o, p->name.ptr, p->name.len);
    /* Results are NUL-terminated. */
    assert_int_equal(p->tag.ptr[p->tag.len], '\0');
    assert_int_equal(p->name.ptr[p->name.len], '\0');
    for (unsigned i = 0; i < p->nargs; i++) {
        const struct imap_arg *a = &p->args[i];
        char t[3] = { 0 };

        puts_(out, o, " ");
        if (a->type == IMAP_ARG_LIST_START) {
            puts_(out, o, "(");
            continue;
        }
        if (a->type == IMAP_ARG_LIST_END) {
            puts_(out, o, ")");
            continue;
        }
        t[0] = types[a->type];
        t[1] = ':';
        puts_(out, o, t);
        put(out, o, a->s.ptr, a->s.len);
        assert_int_equal(a->s.ptr[a->s.len], '\0');
    }
}

/* Feed `data` in pieces of the sizes `split` gives (NULL: all at once) and
   render every result; a trailing incomplete command renders as MORE. */
typedef size_t split_fn(void *state, size_t left);

static void run(const struct imap_parse_limits *lim, const char *data, size_t len,
                split_fn *split, void *st, char *out)
{
    static struct imap_parser p;   /* large: keep it off the stack */
    enum imap_parse_result r = IMAP_PARSE_MORE;
    size_t pos = 0, o = 0;

    out[0] = '\0';
    imap_parser_init(&p, lim);
    while (pos < len) {
        size_t end = pos + (split != NULL ? split(st, len - pos) : len - pos);

        /* Feed this piece until it is used up; results may come mid-piece. */
        while (pos < end) {
            size_t used = 0;

            r = imap_parser_feed(&p, data + pos, end - pos, &used);
            assert_true(used <= end - pos);
            pos += used;
            if (r == IMAP_PARSE_MORE) {
                assert_int_equal(pos, end);
                break;
            }
            assert_true(used > 0);
            render(&p, r, out, &o);
        }
    }
    /* An unfinished command at the end of the input. */
    if (r == IMAP_PARSE_LITERAL || (r == IMAP_PARSE_MORE && p.state != IMAP_S_LINE_START))
        render(&p, IMAP_PARSE_MORE, out, &o);
}

static size_t split_one(void *st, size_t left)
{
    (void)st;
    (void)left;
    return 1;
}

/* xorshift: the same splits on every run */
static size_t split_random(void *st, size_t left)
{
    uint32_t *x = st;
    size_t n;

    *x ^= *x << 13;
    *x ^= *x >> 17;
    *x ^= *x << 5;
    n = 1 + *x % 7;
    if (*x % 5 == 0)
        n = 1 + *x % 64;
    return n < left ? n : left;
}

static void check_all_splits(const struct imap_parse_limits *lim, const char *data, size_t len,
                             const char *expect, const char *label)
{
    static char whole[RENDER_MAX], piece[RENDER_MAX];

    run(lim, data, len, NULL, NULL, whole);
    if (strcmp(whole, expect) != 0)
        fail_msg("case %s:\n  expected %s\n  got      %s", label, expect, whole);
    run(lim, data, len, split_one, NULL, piece);
    if (strcmp(piece, expect) != 0)
        fail_msg("case %s, one byte at a time:\n  expected %s\n  got      %s", label, expect,
                 piece);
    for (uint32_t seed = 1; seed <= SPLIT_ROUNDS; seed++) {
        uint32_t x = seed * 2654435761u;
        run(lim, data, len, split_random, &x, piece);
        if (strcmp(piece, expect) != 0)
            fail_msg("case %s, random split seed %u:\n  expected %s\n  got      %s", label,
                     seed, expect, piece);
    }
}

/* ---- command cases ----------------------------------------------------- */

struct cmd_case {
    const char *in;
    size_t len;
    const char *expect;
};

static const struct imap_parse_limits normal = { 8192, 8192, 64 };
static const struct imap_parse_limits small = { 32, 16, 8 };

static const struct cmd_case cmd_cases[] = {
    /* basic shapes */
    { L("a NOOP\r\n"), "OK a NOOP" },
    { L("a noop\n"), "OK a noop" },
    { L("A001 CAPABILITY\r\n"), "OK A001 CAPABILITY" },
    { L("a] NOOP\r\n"), "OK a] NOOP" },
    { L("a LOGIN alice secret\r\n"), "OK a LOGIN A:alice A:secret" },
    { L("a LOGIN \"alice\" \"s e c r e t\"\r\n"), "OK a LOGIN Q:alice Q:s e c r e t" },
    { L("a LOGIN \"al\\\"ice\" \"p\\\\ss\"\r\n"), "OK a LOGIN Q:al\"ice Q:p\\ss" },
    { L("a LOGIN \"\" \"\"\r\n"), "OK a LOGIN Q: Q:" },
    { L("a LOGIN \"tab\there\" x\r\n"), "OK a LOGIN Q:tab\\x09here A:x" },
    { L("a LOGIN \"\xc3\xa9t\xc3\xa9\" x\r\n"), "OK a LOGIN Q:\\xc3\\xa9t\\xc3\\xa9 A:x" },
    { L("a LOGIN \xc3\xa9t\xc3\xa9 x\r\n"), "OK a LOGIN A:\\xc3\\xa9t\\xc3\\xa9 A:x" },
    { L("a LOGIN [x] \\Seen\r\n"), "OK a LOGIN A:[x] A:\\Seen" },
    /* literals: synchronizing, non-synchronizing, with any octet inside */
    { L("a LOGIN {5}\r\nalice {6}\r\nsecret\r\n"), "LIT|LIT|OK a LOGIN L:alice L:secret" },
    { L("a LOGIN {5+}\r\nalice {6+}\r\nsecret\r\n"), "OK a LOGIN L:alice L:secret" },
    { L("a LOGIN {5}\nalice \"pw\"\n"), "LIT|OK a LOGIN L:alice Q:pw" },
    { L("a LOGIN {4}\r\na\r\nb x\r\n"), "LIT|OK a LOGIN L:a\\x0d\\x0ab A:x" },
    { L("a LOGIN {3+}\r\n\0\"(\r\n"), "OK a LOGIN L:\\x00\"(" },
    { L("a LOGIN {0}\r\n {0+}\r\n\r\n"), "LIT|OK a LOGIN L: L:" },
    { L("a LOGIN {05}\r\nalice x\r\n"), "LIT|OK a LOGIN L:alice A:x" },
    { L("a X ({1}\r\na)\r\n"), "LIT|OK a X ( L:a )" },
    /* lists */
    { L("a ID (\"name\" \"Thunderbird\" \"version\" NIL)\r\n"),
      "OK a ID ( Q:name Q:Thunderbird Q:version A:NIL )" },
    { L("a ID NIL\r\n"), "OK a ID A:NIL" },
    { L("a X ()\r\n"), "OK a X ( )" },
    { L("a X (a (b) c) d\r\n"), "OK a X ( A:a ( A:b ) A:c ) A:d" },
    { L("a X (\"a\")(b)\r\n"), "BAD a" },
    { L("a X ((((((((a))))))))\r\n"), "OK a X ( ( ( ( ( ( ( ( A:a ) ) ) ) ) ) ) )" },
    { L("a X (((((((((a)))))))))\r\n"), "BAD a" },
    { L("a X (a\r\n"), "BAD a" },
    { L("a X a)\r\n"), "BAD a" },
    { L("a X )\r\n"), "BAD a" },
    /* pipelining, empty lines, spacing */
    { L("a CAPABILITY\r\nb NOOP\r\nc LOGOUT\r\n"), "OK a CAPABILITY|OK b NOOP|OK c LOGOUT" },
    { L("\r\n\r\n\na NOOP\r\n"), "OK a NOOP" },
    { L("\r\n"), "" },
    { L("a  NOOP\r\n"), "OK a NOOP" },
    { L("a NOOP \r\n"), "OK a NOOP" },
    { L("a LOGIN  alice   secret \r\n"), "OK a LOGIN A:alice A:secret" },
    { L("a NOOP"), "MORE" },
    { L("a LOGIN {5}\r\nali"), "LIT|MORE" },
    /* malformed: BAD with the tag if one was read */
    { L("a\r\n"), "BAD a" },
    { L("a \r\n"), "BAD a" },
    { L("+a NOOP\r\n"), "BAD *" },
    { L("* NOOP\r\n"), "BAD *" },
    { L(" a NOOP\r\n"), "BAD *" },
    { L("a\0b NOOP\r\n"), "BAD *" },
    { L("a(b NOOP\r\n"), "BAD *" },
    { L("a NO\0OP\r\n"), "BAD a" },
    { L("a NO\"OP\r\n"), "BAD a" },
    { L("a LOGIN \"abc\r\n"), "BAD a" },
    { L("a LOGIN \"a\0b\" x\r\n"), "BAD a" },
    { L("a LOGIN \"a\\b\" x\r\n"), "BAD a" },
    { L("a LOGIN al\0ice x\r\n"), "BAD a" },
    { L("a LOGIN al\x7fice x\r\n"), "BAD a" },
    { L("a X \"a\"b\r\n"), "BAD a" },
    { L("a X a{b\r\n"), "BAD a" },
    { L("a LOGIN {5x}\r\n"), "BAD a" },
    { L("a LOGIN {}\r\n"), "BAD a" },
    { L("a LOGIN {+}\r\n"), "BAD a" },
    { L("a LOGIN {5+x}\r\n"), "BAD a" },
    { L("a X (\"a\"\nb NOOP\n"), "BAD a|OK b NOOP" },
    { L("a LOGIN {5} \r\n"), "BAD a" },
    { L("a LOGIN {5}x\r\n"), "BAD a" },
    { L("a LOGIN {12345678901}\r\n"), "BAD a" },
    { L("a LOGIN {4294967296}\r\n"), "BAD a" },
    { L("a NOOP\rX\r\nb NOOP\r\n"), "BAD a|OK b NOOP" },
    { L("a NOOP\r\r\n"), "BAD a" },
    { L("a X \x01\r\nb NOOP\r\n"), "BAD a|OK b NOOP" },
    /* a bad line still announces its literals: octets skipped, not commands */
    { L("a X \x01 {9+}\r\nb NOOP\r\n c\r\nd NOOP\r\n"), "BAD a|OK d NOOP" },
    { L("a X \x01 {3}\r\nd NOOP\r\n"), "BAD a|OK d NOOP" },
    { L("a X \x01 {x}\r\nd NOOP\r\n"), "BAD a|OK d NOOP" },
    { L("a X (\r\n"), "BAD a" },
};

/* Cases under the small limits: line 32, literal 16, tag 8. */
static const struct cmd_case small_cases[] = {
    /* 32 octets with the CRLF pass, 33 do not */
    { L("a X 12345678901234567890123456\r\nb NOOP\r\n"),
      "OK a X A:12345678901234567890123456|OK b NOOP" },
    { L("a X 123456789012345678901234567\r\nb NOOP\r\n"), "TOOLONG a|OK b NOOP" },
    { L("a X 1234567890123456789012345678\nb NOOP\r\n"), "TOOLONG a|OK b NOOP" },
    { L("a X 1234567890123456789012345678901234567890\r\nb NOOP\r\n"), "TOOLONG a|OK b NOOP" },
    { L("abcdefgh NOOP\r\n"), "OK abcdefgh NOOP" },
    { L("abcdefghi NOOP\r\nb NOOP\r\n"), "TOOLONG *|OK b NOOP" },
    { L("a LOGIN {16}\r\n0123456789abcdef x\r\n"), "LIT|OK a LOGIN L:0123456789abcdef A:x" },
    { L("a LOGIN {17}\r\nb NOOP\r\n"), "TOOLONG a|OK b NOOP" },
    { L("a LOGIN {17+}\r\n"), "TOOLONG a fatal" },
    { L("a LOGIN {99999999+}\r\n"), "TOOLONG a fatal" },
    /* the literal's octets do not count as line length */
    { L("a LOGIN {16+}\r\n0123456789abcdef {16+}\r\n0123456789abcdef\r\n"),
      "OK a LOGIN L:0123456789abcdef L:0123456789abcdef" },
    { L("a X \x01 {17+}\r\n"), "TOOLONG a fatal" },
    { L("a X \x01 {16+}\r\n0123456789abcdef\r\nb NOOP\r\n"), "BAD a|OK b NOOP" },
    /* an over-long line is skipped through its end, however long */
    { L("a X 1234567890123456789012345678901234567890 {4+}\r\nab\r\n\r\nb NOOP\r\n"),
      "TOOLONG a|OK b NOOP" },
    { L("\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\r\nb NOOP\r\n"),
      "TOOLONG *|OK b NOOP" },
};

static void test_commands(void **state)
{
    char label[32];

    (void)state;
    for (size_t i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
        snprintf(label, sizeof(label), "cmd_cases[%zu]", i);
        check_all_splits(&normal, cmd_cases[i].in, cmd_cases[i].len, cmd_cases[i].expect, label);
    }
}

static void test_limits(void **state)
{
    char label[32];

    (void)state;
    for (size_t i = 0; i < sizeof(small_cases) / sizeof(small_cases[0]); i++) {
        snprintf(label, sizeof(label), "small_cases[%zu]", i);
        check_all_splits(&small, small_cases[i].in, small_cases[i].len, small_cases[i].expect,
                         label);
    }
}

/* Too many arguments, and a command that outgrows the arena. */
static void test_arena_and_args(void **state)
{
    static char in[IMAP_PARSE_ARENA * 3], expect[RENDER_MAX];
    size_t n = 0, e = 0;
    const struct imap_parse_limits lim = { 0, 0, 0 };

    (void)state;
    /* IMAP_ARGS_MAX atoms pass, one more is BAD. */
    n = (size_t)snprintf(in, sizeof(in), "a X");
    e = (size_t)snprintf(expect, sizeof(expect), "OK a X");
    for (int i = 0; i < IMAP_ARGS_MAX; i++) {
        n += (size_t)snprintf(in + n, sizeof(in) - n, " %d", i % 10);
        e += (size_t)snprintf(expect + e, sizeof(expect) - e, " A:%d", i % 10);
    }
    memcpy(in + n, "\r\n", 2);
    check_all_splits(&lim, in, n + 2, expect, "args max");
    memcpy(in + n, " x\r\nb NOOP\r\n", 12);
    check_all_splits(&lim, in, n + 12, "BAD a|OK b NOOP", "args max + 1");

    /* Too many arguments when the extra one is a literal: a synchronizing
       one ends the command, a non-synchronizing one is skipped. */
    memcpy(in + n, " {2}\r\nb NOOP\r\n", 14);
    check_all_splits(&lim, in, n + 14, "BAD a|OK b NOOP", "args max + sync literal");
    memcpy(in + n, " {2+}\r\nxy\r\nb NOOP\r\n", 19);
    check_all_splits(&lim, in, n + 19, "BAD a|OK b NOOP", "args max + nonsync literal");

    /* Literals filling the arena: the one that does not fit is refused. */
    n = (size_t)snprintf(in, sizeof(in), "a X");
    e = (size_t)snprintf(expect, sizeof(expect), "%s", "");
    for (int i = 0; i < 4; i++) {
        n += (size_t)snprintf(in + n, sizeof(in) - n, " {2000}\r\n");
        memset(in + n, 'a' + i, 2000);
        n += 2000;
        e += (size_t)snprintf(expect + e, sizeof(expect) - e, "LIT|");
    }
    n += (size_t)snprintf(in + n, sizeof(in) - n, " {200}\r\nb NOOP\r\n");
    e += (size_t)snprintf(expect + e, sizeof(expect) - e, "TOOLONG a|OK b NOOP");
    check_all_splits(&lim, in, n, expect, "arena full");

    /* One long atom that outgrows the arena. */
    n = (size_t)snprintf(in, sizeof(in), "a X ");
    memset(in + n, 'z', IMAP_PARSE_ARENA);
    n += IMAP_PARSE_ARENA;
    n += (size_t)snprintf(in + n, sizeof(in) - n, "\r\nb NOOP\r\n");
    {
        const struct imap_parse_limits lim2 = { IMAP_PARSE_ARENA * 2, 0, 0 };
        check_all_splits(&lim2, in, n, "TOOLONG a|OK b NOOP", "long atom");
    }
}

/* A refused synchronizing literal: the caller resets, the client never
   sends the octets, the next line is a new command. */
static void test_literal_refused(void **state)
{
    static struct imap_parser p;
    const struct imap_parse_limits lim = { 0, 0, 0 };
    const char *in = "a LOGIN {5}\r\nb NOOP\r\n";
    size_t used;

    (void)state;
    imap_parser_init(&p, &lim);
    assert_int_equal(imap_parser_feed(&p, in, strlen(in), &used), IMAP_PARSE_LITERAL);
    assert_int_equal(used, 13);
    assert_int_equal(imap_parser_literal_left(&p), 5);
    imap_parser_reset(&p);
    assert_int_equal(imap_parser_literal_left(&p), 0);
    assert_int_equal(imap_parser_feed(&p, in + used, strlen(in) - used, &used), IMAP_PARSE_OK);
    assert_true(imap_slice_eq(p.tag, "b"));
    assert_true(imap_slice_eq(p.name, "noop"));
}

/* Garbage of every kind: whatever comes in, the invariants hold and each
   split gives the same answer. */
static void test_random_sweep(void **state)
{
    static const char alphabet[] = "a1 *(){}+\"\\\r\n\0\x01\x80NOOP";
    static char in[512], a[RENDER_MAX], b[RENDER_MAX];
    uint32_t x = 12345;

    (void)state;
    for (int round = 0; round < 3000; round++) {
        size_t n = 1 + split_random(&x, 511);
        uint32_t y = x;

        n = (n * 7) % sizeof(in);
        for (size_t i = 0; i < n; i++) {
            (void)split_random(&x, 2);
            in[i] = alphabet[x % (sizeof(alphabet) - 1)];
        }
        run(&small, in, n, NULL, NULL, a);
        run(&small, in, n, split_one, NULL, b);
        if (strcmp(a, b) != 0)
            fail_msg("sweep round %d: whole %s, bytewise %s", round, a, b);
        run(&small, in, n, split_random, &y, b);
        if (strcmp(a, b) != 0)
            fail_msg("sweep round %d: whole %s, random %s", round, a, b);
    }
}

/* ---- responses --------------------------------------------------------- */

struct resp_case {
    const char *line;
    enum imap_parse_result res;
    enum imap_resp_kind kind;
    enum imap_resp_status status;
    const char *tag, *word, *code, *text;
};

static const struct resp_case resp_cases[] = {
    { "* OK [CAPABILITY IMAP4rev1 SASL-IR ID] Dovecot mbx1 ready.", IMAP_PARSE_OK,
      IMAP_RESP_UNTAGGED, IMAP_STATUS_OK, "", "OK", "CAPABILITY IMAP4rev1 SASL-IR ID",
      "Dovecot mbx1 ready." },
    { "* OK Ready", IMAP_PARSE_OK, IMAP_RESP_UNTAGGED, IMAP_STATUS_OK, "", "OK", "", "Ready" },
    { "* ok", IMAP_PARSE_OK, IMAP_RESP_UNTAGGED, IMAP_STATUS_OK, "", "ok", "", "" },
    { "* CAPABILITY IMAP4rev1 LITERAL+", IMAP_PARSE_OK, IMAP_RESP_UNTAGGED, IMAP_STATUS_NONE, "",
      "CAPABILITY", "", "IMAP4rev1 LITERAL+" },
    { "* BYE [UNAVAILABLE] Shutting down", IMAP_PARSE_OK, IMAP_RESP_UNTAGGED, IMAP_STATUS_BYE, "",
      "BYE", "UNAVAILABLE", "Shutting down" },
    { "* PREAUTH hi", IMAP_PARSE_OK, IMAP_RESP_UNTAGGED, IMAP_STATUS_PREAUTH, "", "PREAUTH", "",
      "hi" },
    { "* ID (\"name\" \"Dovecot\")", IMAP_PARSE_OK, IMAP_RESP_UNTAGGED, IMAP_STATUS_NONE, "", "ID",
      "", "(\"name\" \"Dovecot\")" },
    { "gw1 OK [CAPABILITY IMAP4rev1 IDLE] Logged in", IMAP_PARSE_OK, IMAP_RESP_TAGGED,
      IMAP_STATUS_OK, "gw1", "OK", "CAPABILITY IMAP4rev1 IDLE", "Logged in" },
    { "gw2 NO [AUTHENTICATIONFAILED] Authentication failed.", IMAP_PARSE_OK, IMAP_RESP_TAGGED,
      IMAP_STATUS_NO, "gw2", "NO", "AUTHENTICATIONFAILED", "Authentication failed." },
    { "gw2 BAD", IMAP_PARSE_OK, IMAP_RESP_TAGGED, IMAP_STATUS_BAD, "gw2", "BAD", "", "" },
    { "+ ", IMAP_PARSE_OK, IMAP_RESP_CONT, IMAP_STATUS_NONE, "", "", "", "" },
    { "+", IMAP_PARSE_OK, IMAP_RESP_CONT, IMAP_STATUS_NONE, "", "", "", "" },
    { "+ OK go", IMAP_PARSE_OK, IMAP_RESP_CONT, IMAP_STATUS_NONE, "", "", "", "OK go" },
    { "+x", IMAP_PARSE_BAD, 0, 0, NULL, NULL, NULL, NULL },
    { "", IMAP_PARSE_BAD, 0, 0, NULL, NULL, NULL, NULL },
    { "*", IMAP_PARSE_BAD, 0, 0, NULL, NULL, NULL, NULL },
    { "* ", IMAP_PARSE_BAD, 0, 0, NULL, NULL, NULL, NULL },
    { "*OK", IMAP_PARSE_BAD, 0, 0, NULL, NULL, NULL, NULL },
    { "gw1 PREAUTH x", IMAP_PARSE_BAD, 0, 0, NULL, NULL, NULL, NULL },
    { "gw1 FETCH x", IMAP_PARSE_BAD, 0, 0, NULL, NULL, NULL, NULL },
    { "gw1", IMAP_PARSE_BAD, 0, 0, NULL, NULL, NULL, NULL },
    { "g(w OK x", IMAP_PARSE_BAD, 0, 0, NULL, NULL, NULL, NULL },
    { "* OK [CAPABILITY IMAP4rev1 x", IMAP_PARSE_BAD, 0, 0, NULL, NULL, NULL, NULL },
};

static void assert_slice(struct imap_slice s, const char *want)
{
    if (s.len != strlen(want) || memcmp(s.ptr, want, s.len) != 0)
        fail_msg("slice '%.*s', expected '%s'", (int)s.len, s.ptr, want);
}

static void test_responses(void **state)
{
    struct imap_response r;

    (void)state;
    for (size_t i = 0; i < sizeof(resp_cases) / sizeof(resp_cases[0]); i++) {
        const struct resp_case *c = &resp_cases[i];
        enum imap_parse_result res = imap_response_parse(c->line, strlen(c->line), &r);

        if (res != c->res)
            fail_msg("response '%s': result %d, expected %d", c->line, res, c->res);
        if (res != IMAP_PARSE_OK)
            continue;
        assert_int_equal(r.kind, c->kind);
        assert_int_equal(r.status, c->status);
        assert_slice(r.tag, c->tag);
        assert_slice(r.word, c->word);
        assert_slice(r.code, c->code);
        assert_slice(r.text, c->text);
    }
    /* NUL, CR and LF inside a line are garbage. */
    assert_int_equal(imap_response_parse(L("* OK a\0b"), &r), IMAP_PARSE_BAD);
    assert_int_equal(imap_response_parse(L("* OK a\rb"), &r), IMAP_PARSE_BAD);

    assert_int_equal(imap_response_parse(L("* OK [CAPABILITY IMAP4rev1 ID] x"), &r), IMAP_PARSE_OK);
    assert_slice(imap_code_name(r.code), "CAPABILITY");
    assert_slice(imap_code_args(r.code), "IMAP4rev1 ID");
    assert_int_equal(imap_response_parse(L("* OK [ALERT] x"), &r), IMAP_PARSE_OK);
    assert_slice(imap_code_name(r.code), "ALERT");
    assert_slice(imap_code_args(r.code), "");
}

/* ---- capabilities ------------------------------------------------------ */

static void test_caps(void **state)
{
    struct { const char *in, *out; } cases[] = {
        /* Dovecot 2.3's pre-login list */
        { "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ AUTH=PLAIN AUTH=LOGIN",
          "IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+" },
        { "IMAP4rev1 SASL-IR LOGIN-REFERRALS ID ENABLE IDLE LITERAL+ STARTTLS LOGINDISABLED",
          "IMAP4rev1 SASL-IR ID ENABLE IDLE LITERAL+" },
        { "", "IMAP4rev1 SASL-IR ID" },
        { "imap4rev1 literal-", "IMAP4rev1 SASL-IR ID LITERAL-" },
        { "IMAP4rev2 IMAP4rev1 LITERAL- LITERAL+ UNAUTHENTICATE XAPPLEPUSHSERVICE",
          "IMAP4rev1 IMAP4rev2 SASL-IR ID LITERAL+" },
        { "IMAP4rev1  IDLE   ", "IMAP4rev1 SASL-IR ID IDLE" },
    };
    char out[256];
    struct imap_slice s;

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        s.ptr = cases[i].in;
        s.len = strlen(cases[i].in);
        assert_int_equal(imap_caps_prelogin(s, out, sizeof(out)), strlen(cases[i].out));
        assert_string_equal(out, cases[i].out);
    }
    s.ptr = "IMAP4rev1 IDLE";
    s.len = strlen(s.ptr);
    assert_int_equal(imap_caps_prelogin(s, out, 10), 0);
    assert_true(imap_caps_has(s, "idle"));
    assert_true(imap_caps_has(s, "IMAP4REV1"));
    assert_false(imap_caps_has(s, "IDL"));
    assert_false(imap_caps_has(s, "IMAP4rev1 IDLE"));
    s.len = 0;
    assert_false(imap_caps_has(s, "IDLE"));
}

/* ---- SASL PLAIN -------------------------------------------------------- */

static void test_sasl_plain(void **state)
{
    struct imap_sasl_plain pl;
    const char *err;
    char big[IMAP_SASL_PASSWD_MAX + 16];

    (void)state;
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"\0alice\0secret", 13, &pl, &err),
                     IMAP_PARSE_OK);
    assert_slice(pl.authcid, "alice");
    assert_slice(pl.passwd, "secret");
    assert_int_equal(pl.authzid.len, 0);
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"alice\0alice\0pw", 14, &pl, &err),
                     IMAP_PARSE_OK);
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"bob\0alice\0pw", 12, &pl, &err),
                     IMAP_PARSE_BAD);
    assert_non_null(err);
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"\0alice\0", 7, &pl, &err),
                     IMAP_PARSE_BAD);
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"\0\0pw", 4, &pl, &err),
                     IMAP_PARSE_BAD);
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"\0alice", 6, &pl, &err),
                     IMAP_PARSE_BAD);
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"\0a\0b\0c", 6, &pl, &err),
                     IMAP_PARSE_BAD);
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"", 0, &pl, &err),
                     IMAP_PARSE_BAD);
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"\0al\rice\0pw", 10, &pl, &err),
                     IMAP_PARSE_BAD);
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"\0alice\0p\nw", 10, &pl, &err),
                     IMAP_PARSE_BAD);
    /* spaces and 8-bit in passwords are fine */
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)"\0alice\0p w\xc3\xa9", 12, &pl,
                                           &err),
                     IMAP_PARSE_OK);
    big[0] = '\0';
    memcpy(big + 1, "alice", 5);
    big[6] = '\0';
    memset(big + 7, 'x', IMAP_SASL_PASSWD_MAX);
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)big, 7 + IMAP_SASL_PASSWD_MAX,
                                           &pl, &err),
                     IMAP_PARSE_OK);
    big[7 + IMAP_SASL_PASSWD_MAX] = 'x';
    assert_int_equal(imap_sasl_plain_parse((const unsigned char *)big, 8 + IMAP_SASL_PASSWD_MAX,
                                           &pl, &err),
                     IMAP_PARSE_BAD);
}

/* ---- ID ---------------------------------------------------------------- */

static enum imap_parse_result id_of(const char *line, struct imap_id_pair *pairs,
                                    unsigned *n)
{
    static struct imap_parser p;
    const struct imap_parse_limits lim = { 0, 0, 0 };
    const char *err;
    size_t used;

    imap_parser_init(&p, &lim);
    assert_int_equal(imap_parser_feed(&p, line, strlen(line), &used), IMAP_PARSE_OK);
    return imap_id_parse(p.args, p.nargs, pairs, IMAP_ID_PAIRS_MAX, n, &err);
}

static void test_id(void **state)
{
    struct imap_id_pair pairs[IMAP_ID_PAIRS_MAX];
    char line[2048];
    unsigned n;
    size_t o;

    (void)state;
    assert_int_equal(id_of("a ID NIL\r\n", pairs, &n), IMAP_PARSE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(id_of("a ID ()\r\n", pairs, &n), IMAP_PARSE_OK);
    assert_int_equal(n, 0);
    assert_int_equal(id_of("a ID (\"name\" \"Thunderbird\" \"os\" NIL)\r\n", pairs, &n),
                     IMAP_PARSE_OK);
    assert_int_equal(n, 2);
    assert_slice(pairs[0].field, "name");
    assert_slice(pairs[0].value, "Thunderbird");
    assert_slice(pairs[1].field, "os");
    assert_null(pairs[1].value.ptr);
    assert_int_equal(id_of("a ID (\"name\" {3+}\r\nabc)\r\n", pairs, &n), IMAP_PARSE_OK);
    assert_slice(pairs[0].value, "abc");
    assert_int_equal(id_of("a ID\r\n", pairs, &n), IMAP_PARSE_BAD);
    assert_int_equal(id_of("a ID (\"name\")\r\n", pairs, &n), IMAP_PARSE_BAD);
    assert_int_equal(id_of("a ID (\"name\" \"x\") x\r\n", pairs, &n), IMAP_PARSE_BAD);
    assert_int_equal(id_of("a ID (NIL \"x\")\r\n", pairs, &n), IMAP_PARSE_BAD);
    assert_int_equal(id_of("a ID (\"a\" (\"x\"))\r\n", pairs, &n), IMAP_PARSE_BAD);
    assert_int_equal(id_of("a ID \"name\"\r\n", pairs, &n), IMAP_PARSE_BAD);
    assert_int_equal(id_of("a ID (\"0123456789012345678901234567890\" \"x\")\r\n", pairs, &n),
                     IMAP_PARSE_BAD);
    /* 30 pairs pass, 31 do not */
    o = (size_t)snprintf(line, sizeof(line), "a ID (");
    for (int i = 0; i < IMAP_ID_PAIRS_MAX; i++)
        o += (size_t)snprintf(line + o, sizeof(line) - o, "%s\"f%d\" \"v\"", i ? " " : "", i);
    snprintf(line + o, sizeof(line) - o, ")\r\n");
    assert_int_equal(id_of(line, pairs, &n), IMAP_PARSE_OK);
    assert_int_equal(n, IMAP_ID_PAIRS_MAX);
    snprintf(line + o, sizeof(line) - o, " \"x\" \"y\")\r\n");
    assert_int_equal(id_of(line, pairs, &n), IMAP_PARSE_BAD);
}

/* ---- output helpers ---------------------------------------------------- */

static void test_quote(void **state)
{
    char out[32];

    (void)state;
    assert_int_equal(imap_quote(L("alice"), out, sizeof(out)), 7);
    assert_string_equal(out, "\"alice\"");
    assert_int_equal(imap_quote(L("a\"b\\c"), out, sizeof(out)), 9);
    assert_string_equal(out, "\"a\\\"b\\\\c\"");
    assert_int_equal(imap_quote(L(""), out, sizeof(out)), 2);
    assert_string_equal(out, "\"\"");
    assert_int_equal(imap_quote(L("a\rb"), out, sizeof(out)), 0);
    assert_int_equal(imap_quote(L("a\0b"), out, sizeof(out)), 0);
    assert_int_equal(imap_quote(L("abc"), out, 5), 0);
    assert_int_equal(imap_quote(L("abc"), out, 6), 5);
}

static void test_referral(void **state)
{
    struct { const char *url, *user, *out; } cases[] = {
        { "https://mail.b.example/owa", "alice", "imap://alice@mail.b.example/" },
        { "https://mail.b.example:8443/owa", "alice", "imap://alice@mail.b.example/" },
        { "https://mail.b.example", "a b@x;y", "imap://a%20b%40x%3By@mail.b.example/" },
        { "imap://imap.b.example:1143/", "alice", "imap://alice@imap.b.example:1143/" },
        { "IMAPS://imap.b.example/", "alice", "imaps://alice@imap.b.example/" },
        { "imap://olduser@imap.b.example", "alice", "imap://alice@imap.b.example/" },
        { "https://[2001:db8::1]:443/", "alice", "imap://alice@[2001:db8::1]/" },
        { "https://mail.b.example/", "\xc3\xa9", "imap://%C3%A9@mail.b.example/" },
    };
    char out[128];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        assert_int_equal(imap_referral_url(cases[i].url, cases[i].user, out, sizeof(out)),
                         strlen(cases[i].out));
        assert_string_equal(out, cases[i].out);
    }
    assert_int_equal(imap_referral_url("mail.b.example", "alice", out, sizeof(out)), 0);
    assert_int_equal(imap_referral_url("https:///x", "alice", out, sizeof(out)), 0);
    assert_int_equal(imap_referral_url("https://a b/", "alice", out, sizeof(out)), 0);
    assert_int_equal(imap_referral_url("https://mail.b.example/", "alice", out, 20), 0);
}

static void test_sanitize(void **state)
{
    char out[8];

    (void)state;
    assert_int_equal(gw_log_sanitize(L("a\0b\rc\x7f"), out, sizeof(out)), 6);
    assert_string_equal(out, "a?b?c?");
    assert_int_equal(gw_log_sanitize(L("0123456789"), out, sizeof(out)), 7);
    assert_string_equal(out, "0123456");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_commands),
        cmocka_unit_test(test_limits),
        cmocka_unit_test(test_arena_and_args),
        cmocka_unit_test(test_literal_refused),
        cmocka_unit_test(test_random_sweep),
        cmocka_unit_test(test_responses),
        cmocka_unit_test(test_caps),
        cmocka_unit_test(test_sasl_plain),
        cmocka_unit_test(test_id),
        cmocka_unit_test(test_quote),
        cmocka_unit_test(test_referral),
        cmocka_unit_test(test_sanitize),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
