/*
 * Unit tests of the POP3 parser (plugins/pop/pop_parse.c): command lines,
 * SASL PLAIN messages, server status lines, CAPA lines, sanitizing.
 *
 * The parser is line-based (the connection layer frames lines), so instead
 * of feeding bytes in every split we test what can reach it inside a line:
 * embedded NUL/CR/LF and other controls, empty and over-long lines, case,
 * spacing -- plus a seeded random sweep that checks the invariants every
 * result must keep whatever the input.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "../../plugins/pop/pop_parse.h"
#include "gateway/gateway.h"   /* gw_log_sanitize() */

#define L(s) s, sizeof(s) - 1   /* literal with its length, NULs included */

/* ---- command lines ------------------------------------------------------ */

struct cmd_case {
    const char *line;
    size_t len;
    size_t max;
    enum pop_parse_result res;
    enum pop_cmd cmd;
    unsigned nargs;
    const char *arg0, *arg1;
};

static const struct cmd_case cmd_cases[] = {
    { L("USER alice"), 255, POP_PARSE_OK, POP_CMD_USER, 1, "alice", NULL },
    { L("user alice"), 255, POP_PARSE_OK, POP_CMD_USER, 1, "alice", NULL },
    { L("UsEr Alice"), 255, POP_PARSE_OK, POP_CMD_USER, 1, "Alice", NULL },
    { L("USER \xc3\xb1o\xc3\xb1o"), 255, POP_PARSE_OK, POP_CMD_USER, 1, "\xc3\xb1o\xc3\xb1o", NULL },
    { L("USER"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("USER "), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("USER a b"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("USER  a"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("USER a "), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("USER\tbob"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    /* PASS: the rest of the line, spaces included (RFC 1939 errata). */
    { L("PASS secret"), 255, POP_PARSE_OK, POP_CMD_PASS, 1, "secret", NULL },
    { L("pass two words "), 255, POP_PARSE_OK, POP_CMD_PASS, 1, "two words ", NULL },
    { L("PASS  lead"), 255, POP_PARSE_OK, POP_CMD_PASS, 1, " lead", NULL },
    { L("PASS "), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("PASS"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("PASS se\0cret"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("PASS secret\r"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("PASS a\nUSER b"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("AUTH"), 255, POP_PARSE_OK, POP_CMD_AUTH, 0, NULL, NULL },
    { L("auth plain"), 255, POP_PARSE_OK, POP_CMD_AUTH, 1, "plain", NULL },
    { L("AUTH PLAIN AGFsaWNlAHNlY3JldA=="), 255, POP_PARSE_OK, POP_CMD_AUTH, 2, "PLAIN",
      "AGFsaWNlAHNlY3JldA==" },
    { L("AUTH PLAIN ="), 255, POP_PARSE_OK, POP_CMD_AUTH, 2, "PLAIN", "=" },
    { L("AUTH PLAIN a b"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("CAPA"), 255, POP_PARSE_OK, POP_CMD_CAPA, 0, NULL, NULL },
    { L("capa"), 255, POP_PARSE_OK, POP_CMD_CAPA, 0, NULL, NULL },
    { L("CAPA x"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("CAPA "), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("STLS"), 255, POP_PARSE_OK, POP_CMD_STLS, 0, NULL, NULL },
    { L("stls"), 255, POP_PARSE_OK, POP_CMD_STLS, 0, NULL, NULL },
    { L("QUIT"), 255, POP_PARSE_OK, POP_CMD_QUIT, 0, NULL, NULL },
    { L("Quit"), 255, POP_PARSE_OK, POP_CMD_QUIT, 0, NULL, NULL },
    { L("NOOP"), 255, POP_PARSE_OK, POP_CMD_NOOP, 0, NULL, NULL },
    { L("APOP"), 255, POP_PARSE_OK, POP_CMD_APOP, 0, NULL, NULL },
    { L("APOP mrose c4c9334bac560ecc979e58001b3e22fb"), 255, POP_PARSE_OK, POP_CMD_APOP, 2,
      "mrose", "c4c9334bac560ecc979e58001b3e22fb" },
    { L("STAT"), 255, POP_PARSE_OK, POP_CMD_STAT, 0, NULL, NULL },
    { L("LIST"), 255, POP_PARSE_OK, POP_CMD_LIST, 0, NULL, NULL },
    { L("LIST 2"), 255, POP_PARSE_OK, POP_CMD_LIST, 1, "2", NULL },
    { L("RETR 1"), 255, POP_PARSE_OK, POP_CMD_RETR, 1, "1", NULL },
    { L("RETR"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("DELE 1"), 255, POP_PARSE_OK, POP_CMD_DELE, 1, "1", NULL },
    { L("RSET"), 255, POP_PARSE_OK, POP_CMD_RSET, 0, NULL, NULL },
    { L("TOP 1 10"), 255, POP_PARSE_OK, POP_CMD_TOP, 2, "1", "10" },
    { L("top 1"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("TOP 1 10 3"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("UIDL"), 255, POP_PARSE_OK, POP_CMD_UIDL, 0, NULL, NULL },
    /* unknown keywords */
    { L("FOO"), 255, POP_PARSE_UNKNOWN, 0, 0, NULL, NULL },
    { L("USERS alice"), 255, POP_PARSE_UNKNOWN, 0, 0, NULL, NULL },
    { L("US alice"), 255, POP_PARSE_UNKNOWN, 0, 0, NULL, NULL },
    { L("XCLIENT ADDR=10.0.0.1 PORT=1"), 255, POP_PARSE_UNKNOWN, 0, 0, NULL, NULL },
    { L("\xc3\x9cSER a"), 255, POP_PARSE_UNKNOWN, 0, 0, NULL, NULL },
    /* empty, spacing, controls */
    { L(""), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L(" "), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L(" USER a"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("\0"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("USER a\0b"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("US\0ER a"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("USER a\rb"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("USER a\r"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("\x7f"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    { L("QUIT\x1b[2J"), 255, POP_PARSE_BAD, 0, 0, NULL, NULL },
    /* length: the limit counts the CRLF that was stripped */
    { L("USER abcdef"), 13, POP_PARSE_OK, POP_CMD_USER, 1, "abcdef", NULL },
    { L("USER abcdefg"), 13, POP_PARSE_TOO_LONG, 0, 0, NULL, NULL },
    { L("QUIT"), 5, POP_PARSE_TOO_LONG, 0, 0, NULL, NULL },
    { L("QUIT"), 3, POP_PARSE_TOO_LONG, 0, 0, NULL, NULL },
    { L(""), 1, POP_PARSE_TOO_LONG, 0, 0, NULL, NULL },
    { L(""), 0, POP_PARSE_TOO_LONG, 0, 0, NULL, NULL },
    /* an over-long line is TOO_LONG even when it is also malformed */
    { L("USER \0\0\0\0\0\0\0\0"), 10, POP_PARSE_TOO_LONG, 0, 0, NULL, NULL },
};

static void assert_slice(struct pop_slice s, const char *expect)
{
    assert_non_null(expect);
    assert_int_equal(s.len, strlen(expect));
    assert_memory_equal(s.ptr, expect, s.len);
}

static void test_command_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(cmd_cases) / sizeof(cmd_cases[0]); i++) {
        const struct cmd_case *c = &cmd_cases[i];
        struct pop_command cmd;
        const char *error = NULL;
        enum pop_parse_result res;

        print_message("case %zu: %.*s\n", i, (int)c->len, c->line);
        res = pop_command_parse(c->line, c->len, c->max, &cmd, &error);
        assert_int_equal(res, c->res);
        if (res != POP_PARSE_OK) {
            /* every refusal has a printable reason for "-ERR <reason>" */
            assert_non_null(error);
            assert_true(strlen(error) > 0);
            continue;
        }
        assert_int_equal(cmd.cmd, c->cmd);
        assert_int_equal(cmd.nargs, c->nargs);
        if (c->nargs > 0)
            assert_slice(cmd.args[0], c->arg0);
        if (c->nargs > 1)
            assert_slice(cmd.args[1], c->arg1);
    }
}

/* The RFC 2449 limit: 253 octets + CRLF = 255 fits, one more does not. */
static void test_command_rfc_limit(void **state)
{
    char line[300];
    struct pop_command cmd;
    const char *error;

    (void)state;
    memcpy(line, "PASS ", 5);
    memset(line + 5, 'x', sizeof(line) - 5);
    assert_int_equal(pop_command_parse(line, POP_LINE_MAX_RFC - 2, POP_LINE_MAX_RFC, &cmd, &error),
                     POP_PARSE_OK);
    assert_int_equal(cmd.args[0].len, POP_LINE_MAX_RFC - 2 - 5);
    assert_int_equal(pop_command_parse(line, POP_LINE_MAX_RFC - 1, POP_LINE_MAX_RFC, &cmd, &error),
                     POP_PARSE_TOO_LONG);
    /* a larger configured limit lets it through */
    assert_int_equal(pop_command_parse(line, sizeof(line), 8192, &cmd, &error), POP_PARSE_OK);
}

static void test_command_names(void **state)
{
    unsigned i;

    (void)state;
    for (i = 0; i < POP_CMD_COUNT; i++) {
        const char *name = pop_cmd_name((enum pop_cmd)i);
        struct pop_command cmd;
        const char *error;

        /* every table entry round-trips through the parser */
        assert_true(strlen(name) >= 3 && strlen(name) <= POP_KEYWORD_MAX);
        if (pop_command_parse(name, strlen(name), 255, &cmd, &error) == POP_PARSE_OK)
            assert_int_equal(cmd.cmd, i);
    }
    assert_string_equal(pop_cmd_name(POP_CMD_COUNT), "?");
}

/* ---- SASL PLAIN --------------------------------------------------------- */

struct plain_case {
    const char *data;
    size_t len;
    enum pop_parse_result res;
    const char *authzid, *authcid, *passwd;
};

static const struct plain_case plain_cases[] = {
    { L("\0alice\0secret"), POP_PARSE_OK, "", "alice", "secret" },
    { L("alice\0alice\0secret"), POP_PARSE_OK, "alice", "alice", "secret" },
    { L("\0alice\0pass word"), POP_PARSE_OK, "", "alice", "pass word" },
    { L("\0alice@example.com\0p\xc3\xa4ss"), POP_PARSE_OK, "", "alice@example.com", "p\xc3\xa4ss" },
    { L("\0alice\0tab\tin password"), POP_PARSE_OK, "", "alice", "tab\tin password" },
    { L("bob\0alice\0secret"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("Alice\0alice\0secret"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("alice\0secret"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("\0alice\0sec\0ret"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("\0alice\0secret\0"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L(""), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("\0"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("\0\0"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("\0\0secret"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("\0alice\0"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("\0ali\rce\0pw"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("\0ali ce\0pw"), POP_PARSE_OK, "", "ali ce", "pw" },
    { L("\0alice\x1b\0pw"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("x\ny\0x\ny\0pw"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("\0alice\0pw\r\nDELE 1"), POP_PARSE_BAD, NULL, NULL, NULL },
    { L("\0alice\0pw\n"), POP_PARSE_BAD, NULL, NULL, NULL },
};

static void test_sasl_plain_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(plain_cases) / sizeof(plain_cases[0]); i++) {
        const struct plain_case *c = &plain_cases[i];
        struct pop_sasl_plain plain;
        const char *error = NULL;
        enum pop_parse_result res;

        print_message("plain case %zu\n", i);
        res = pop_sasl_plain_parse((const unsigned char *)c->data, c->len, &plain, &error);
        assert_int_equal(res, c->res);
        if (res != POP_PARSE_OK) {
            assert_non_null(error);
            continue;
        }
        assert_slice(plain.authzid, c->authzid);
        assert_slice(plain.authcid, c->authcid);
        assert_slice(plain.passwd, c->passwd);
    }
}

static void test_sasl_plain_limits(void **state)
{
    unsigned char buf[2 + POP_SASL_ID_MAX + 1 + POP_SASL_PASSWD_MAX + 1];
    struct pop_sasl_plain plain;
    const char *error;
    size_t ulen, plen;

    (void)state;
    for (ulen = POP_SASL_ID_MAX; ulen <= POP_SASL_ID_MAX + 1; ulen++) {
        buf[0] = '\0';
        memset(buf + 1, 'u', ulen);
        buf[1 + ulen] = '\0';
        memcpy(buf + 2 + ulen, "pw", 2);
        assert_int_equal(pop_sasl_plain_parse(buf, 2 + ulen + 2, &plain, &error),
                         ulen <= POP_SASL_ID_MAX ? POP_PARSE_OK : POP_PARSE_TOO_LONG);
    }
    for (plen = POP_SASL_PASSWD_MAX; plen <= POP_SASL_PASSWD_MAX + 1; plen++) {
        memcpy(buf, "\0u\0", 3);
        memset(buf + 3, 'p', plen);
        assert_int_equal(pop_sasl_plain_parse(buf, 3 + plen, &plain, &error),
                         plen <= POP_SASL_PASSWD_MAX ? POP_PARSE_OK : POP_PARSE_TOO_LONG);
    }
}

/* ---- status lines -------------------------------------------------------- */

struct status_case {
    const char *line;
    size_t len;
    enum pop_parse_result res;
    enum pop_status_kind kind;
    const char *code;   /* "" when none */
    const char *text;
};

static const struct status_case status_cases[] = {
    { L("+OK"), POP_PARSE_OK, POP_STATUS_OK, "", "" },
    { L("+OK "), POP_PARSE_OK, POP_STATUS_OK, "", "" },
    { L("+OK Dovecot ready."), POP_PARSE_OK, POP_STATUS_OK, "", "Dovecot ready." },
    { L("+OK [XCLIENT] Dovecot ready."), POP_PARSE_OK, POP_STATUS_OK, "XCLIENT", "Dovecot ready." },
    { L("+OK Logged in."), POP_PARSE_OK, POP_STATUS_OK, "", "Logged in." },
    { L("-ERR"), POP_PARSE_OK, POP_STATUS_ERR, "", "" },
    { L("-ERR [AUTH] Authentication failed."), POP_PARSE_OK, POP_STATUS_ERR, "AUTH",
      "Authentication failed." },
    { L("-ERR [AUTH]"), POP_PARSE_OK, POP_STATUS_ERR, "AUTH", "" },
    { L("-ERR [SYS/TEMP] Try later"), POP_PARSE_OK, POP_STATUS_ERR, "SYS/TEMP", "Try later" },
    { L("-ERR [IN-USE] Mailbox locked"), POP_PARSE_OK, POP_STATUS_ERR, "IN-USE", "Mailbox locked" },
    { L("-ERR [LOGIN-DELAY] wait"), POP_PARSE_OK, POP_STATUS_ERR, "LOGIN-DELAY", "wait" },
    { L("-ERR [AUTH Authentication failed."), POP_PARSE_OK, POP_STATUS_ERR, "",
      "[AUTH Authentication failed." },
    { L("-ERR []"), POP_PARSE_OK, POP_STATUS_ERR, "", "[]" },
    { L("-ERR [SYS/] x"), POP_PARSE_OK, POP_STATUS_ERR, "", "[SYS/] x" },
    { L("-ERR [/TEMP] x"), POP_PARSE_OK, POP_STATUS_ERR, "", "[/TEMP] x" },
    { L("-ERR [A B] x"), POP_PARSE_OK, POP_STATUS_ERR, "", "[A B] x" },
    { L("-ERR No such user"), POP_PARSE_OK, POP_STATUS_ERR, "", "No such user" },
    { L("+ "), POP_PARSE_OK, POP_STATUS_CONT, "", "" },
    { L("+"), POP_PARSE_OK, POP_STATUS_CONT, "", "" },
    { L("+ dGVzdA=="), POP_PARSE_OK, POP_STATUS_CONT, "", "dGVzdA==" },
    { L("+OKAY"), POP_PARSE_BAD, 0, NULL, NULL },
    { L("+ok"), POP_PARSE_BAD, 0, NULL, NULL },
    { L("-ERROR"), POP_PARSE_BAD, 0, NULL, NULL },
    { L("-err no"), POP_PARSE_BAD, 0, NULL, NULL },
    { L("OK"), POP_PARSE_BAD, 0, NULL, NULL },
    { L(""), POP_PARSE_BAD, 0, NULL, NULL },
    { L("* OK IMAP4rev1"), POP_PARSE_BAD, 0, NULL, NULL },
    { L("220 smtp ready"), POP_PARSE_BAD, 0, NULL, NULL },
    { L("\0+OK"), POP_PARSE_BAD, 0, NULL, NULL },
};

static void test_status_table(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(status_cases) / sizeof(status_cases[0]); i++) {
        const struct status_case *c = &status_cases[i];
        struct pop_status st;
        enum pop_parse_result res;

        print_message("status case %zu: %.*s\n", i, (int)c->len, c->line);
        res = pop_status_parse(c->line, c->len, &st);
        assert_int_equal(res, c->res);
        if (res != POP_PARSE_OK)
            continue;
        assert_int_equal(st.kind, c->kind);
        assert_slice(st.code, c->code);
        assert_slice(st.text, c->text);
    }
}

static void test_status_codes(void **state)
{
    struct pop_status st;

    (void)state;
    assert_int_equal(pop_status_parse(L("-ERR [SYS/TEMP] x"), &st), POP_PARSE_OK);
    assert_true(pop_status_code_is(&st, "SYS"));
    assert_true(pop_status_code_is(&st, "sys"));
    assert_false(pop_status_code_is(&st, "TEMP"));
    assert_false(pop_status_code_is(&st, "SYS/TEMP"));
    assert_false(pop_status_code_is(&st, "AUTH"));
    assert_int_equal(pop_status_parse(L("-ERR [AUTH] x"), &st), POP_PARSE_OK);
    assert_true(pop_status_code_is(&st, "AUTH"));
    assert_false(pop_status_code_is(&st, "AUT"));
    assert_false(pop_status_code_is(&st, "AUTHX"));
    assert_int_equal(pop_status_parse(L("-ERR AUTH failed"), &st), POP_PARSE_OK);
    assert_false(pop_status_code_is(&st, "AUTH"));
    assert_int_equal(pop_status_parse(L("+OK [XCLIENT] hi"), &st), POP_PARSE_OK);
    assert_true(pop_status_code_is(&st, "XCLIENT"));
}

/* ---- CAPA lines, slices, sanitize ---------------------------------------- */

static void test_capa_lines(void **state)
{
    struct pop_slice name, args;

    (void)state;
    assert_true(pop_capa_line(L("."), &name, &args));
    assert_false(pop_capa_line(L("XCLIENT"), &name, &args));
    assert_true(pop_slice_eq(name, "xclient"));
    assert_int_equal(args.len, 0);
    assert_false(pop_capa_line(L("SASL PLAIN LOGIN"), &name, &args));
    assert_slice(name, "SASL");
    assert_slice(args, "PLAIN LOGIN");
    assert_false(pop_capa_line(L("..odd"), &name, &args));
    assert_slice(name, ".odd");
    assert_false(pop_capa_line(L(""), &name, &args));
    assert_int_equal(name.len, 0);
    assert_false(pop_capa_line(L(". "), &name, &args));
}

static void test_slice_eq(void **state)
{
    struct pop_slice s = { "PLAIN", 5 };

    (void)state;
    assert_true(pop_slice_eq(s, "PLAIN"));
    assert_true(pop_slice_eq(s, "plain"));
    assert_false(pop_slice_eq(s, "PLAI"));
    assert_false(pop_slice_eq(s, "PLAINX"));
    s.len = 0;
    assert_true(pop_slice_eq(s, ""));
    assert_false(pop_slice_eq(s, "P"));
}

static void test_sanitize(void **state)
{
    char out[8];

    (void)state;
    assert_int_equal(gw_log_sanitize(L("a\x01" "b\r\n\x7f"), out, sizeof(out)), 6);
    assert_string_equal(out, "a?b???");
    assert_int_equal(gw_log_sanitize(L("0123456789"), out, sizeof(out)), 7);
    assert_string_equal(out, "0123456");
    assert_int_equal(gw_log_sanitize(L("\0x"), out, sizeof(out)), 2);
    assert_memory_equal(out, "?x", 3);
    assert_int_equal(gw_log_sanitize(L("abc"), out, 1), 0);
    assert_string_equal(out, "");
    assert_int_equal(gw_log_sanitize(L("\xc3\xa4"), out, sizeof(out)), 2);
    assert_string_equal(out, "\xc3\xa4");
}

/* ---- invariants on random input ------------------------------------------ */

static uint32_t rnd_state = 0x2545f491u;
static uint32_t rnd(void)
{
    rnd_state ^= rnd_state << 13;
    rnd_state ^= rnd_state >> 17;
    rnd_state ^= rnd_state << 5;
    return rnd_state;
}

static void assert_inside(struct pop_slice s, const char *buf, size_t len)
{
    if (s.len == 0)
        return;
    assert_true(s.ptr >= buf && s.ptr + s.len <= buf + len);
}

/* Random lines drawn mostly from POP3-ish bytes: whatever comes in,
   results stay inside the input, an accepted line holds no control byte,
   and arguments never contain the separator except PASS's. */
static void test_random_invariants(void **state)
{
    static const char alphabet[] = "USERPASAUTHCAPQITLSop+-K [ ]/=\r\n\t\0\x7f\xc3";
    char buf[64];
    unsigned iter;
    size_t len, i, j;

    (void)state;
    for (iter = 0; iter < 200000; iter++) {
        struct pop_command cmd;
        struct pop_status st;
        struct pop_sasl_plain plain;
        const char *error;

        len = rnd() % sizeof(buf);
        for (i = 0; i < len; i++)
            buf[i] = alphabet[rnd() % (sizeof(alphabet) - 1)];

        if (pop_command_parse(buf, len, 1 + rnd() % 80, &cmd, &error) == POP_PARSE_OK) {
            assert_true(cmd.nargs <= POP_CMD_ARGS_MAX);
            for (i = 0; i < len; i++)
                assert_true((unsigned char)buf[i] >= 0x20 && buf[i] != 0x7f);
            for (j = 0; j < cmd.nargs; j++) {
                assert_inside(cmd.args[j], buf, len);
                if (cmd.cmd != POP_CMD_PASS) {
                    assert_true(cmd.args[j].len > 0);
                    assert_null(memchr(cmd.args[j].ptr, ' ', cmd.args[j].len));
                }
            }
        } else {
            assert_non_null(error);
        }
        if (pop_status_parse(buf, len, &st) == POP_PARSE_OK) {
            assert_inside(st.code, buf, len);
            assert_inside(st.text, buf, len);
        }
        if (pop_sasl_plain_parse((const unsigned char *)buf, len, &plain, &error) == POP_PARSE_OK) {
            assert_inside(plain.authcid, buf, len);
            assert_inside(plain.passwd, buf, len);
            assert_true(plain.authcid.len > 0 && plain.passwd.len > 0);
            assert_null(memchr(plain.passwd.ptr, '\n', plain.passwd.len));
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_command_table),
        cmocka_unit_test(test_command_rfc_limit),
        cmocka_unit_test(test_command_names),
        cmocka_unit_test(test_sasl_plain_table),
        cmocka_unit_test(test_sasl_plain_limits),
        cmocka_unit_test(test_status_table),
        cmocka_unit_test(test_status_codes),
        cmocka_unit_test(test_capa_lines),
        cmocka_unit_test(test_slice_eq),
        cmocka_unit_test(test_sanitize),
        cmocka_unit_test(test_random_invariants),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
