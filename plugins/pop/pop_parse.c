/*
 * POP3 parsing: command lines, SASL PLAIN messages, server status lines.
 * Pure (see pop_parse.h): this file must build and run without the core,
 * but for the core's pure SASL PLAIN decoder (core/sasl.c).
 */
#include "pop_parse.h"

#include <string.h>

#include "gateway/sasl.h"

/* How a command's arguments are split. */
struct pop_cmd_syntax {
    const char *name;
    enum pop_cmd cmd;
    unsigned char min_args, max_args;
    bool rest_of_line;   /* the one argument is everything after "KEY " */
};

/* Indexed by enum pop_cmd; looked up by keyword. */
static const struct pop_cmd_syntax pop_cmd_table[POP_CMD_COUNT] = {
    [POP_CMD_USER] = { "USER", POP_CMD_USER, 1, 1, false },
    [POP_CMD_PASS] = { "PASS", POP_CMD_PASS, 1, 1, true },
    [POP_CMD_APOP] = { "APOP", POP_CMD_APOP, 0, 2, false },
    [POP_CMD_AUTH] = { "AUTH", POP_CMD_AUTH, 0, 2, false },
    [POP_CMD_CAPA] = { "CAPA", POP_CMD_CAPA, 0, 0, false },
    [POP_CMD_STLS] = { "STLS", POP_CMD_STLS, 0, 0, false },
    [POP_CMD_QUIT] = { "QUIT", POP_CMD_QUIT, 0, 0, false },
    [POP_CMD_NOOP] = { "NOOP", POP_CMD_NOOP, 0, 0, false },
    [POP_CMD_STAT] = { "STAT", POP_CMD_STAT, 0, 0, false },
    [POP_CMD_LIST] = { "LIST", POP_CMD_LIST, 0, 1, false },
    [POP_CMD_RETR] = { "RETR", POP_CMD_RETR, 1, 1, false },
    [POP_CMD_DELE] = { "DELE", POP_CMD_DELE, 1, 1, false },
    [POP_CMD_RSET] = { "RSET", POP_CMD_RSET, 0, 0, false },
    [POP_CMD_TOP] = { "TOP", POP_CMD_TOP, 2, 2, false },
    [POP_CMD_UIDL] = { "UIDL", POP_CMD_UIDL, 0, 1, false },
};

/* ASCII only: the locale must not change what a keyword is. */
static char pop_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

static bool pop_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

bool pop_slice_eq(struct pop_slice s, const char *word)
{
    size_t i;

    for (i = 0; i < s.len; i++) {
        if (word[i] == '\0' || pop_upper(s.ptr[i]) != pop_upper(word[i]))
            return false;
    }
    return word[i] == '\0';
}

const char *pop_cmd_name(enum pop_cmd cmd)
{
    if ((unsigned)cmd >= POP_CMD_COUNT)
        return "?";
    return pop_cmd_table[cmd].name;
}

static const struct pop_cmd_syntax *pop_cmd_lookup(struct pop_slice kw)
{
    size_t i;

    if (kw.len > POP_KEYWORD_MAX)
        return NULL;
    for (i = 0; i < POP_CMD_COUNT; i++) {
        if (pop_slice_eq(kw, pop_cmd_table[i].name))
            return &pop_cmd_table[i];
    }
    return NULL;
}

enum pop_parse_result pop_command_parse(const char *line, size_t len, size_t max_len,
                                        struct pop_command *cmd_r, const char **error_r)
{
    const struct pop_cmd_syntax *syn;
    struct pop_slice kw;
    size_t i, start;

    memset(cmd_r, 0, sizeof(*cmd_r));
    *error_r = NULL;

    /* The limit counts the CRLF the connection layer has stripped. */
    if (len > max_len || max_len - len < 2) {
        *error_r = "Line too long.";
        return POP_PARSE_TOO_LONG;
    }
    if (len == 0) {
        *error_r = "Empty command.";
        return POP_PARSE_BAD;
    }
    for (i = 0; i < len; i++) {
        if (pop_is_ctl((unsigned char)line[i])) {
            *error_r = "Invalid characters in command.";
            return POP_PARSE_BAD;
        }
    }

    kw.ptr = line;
    for (i = 0; i < len && line[i] != ' '; i++)
        ;
    kw.len = i;
    if (kw.len == 0) {
        *error_r = "Empty command.";
        return POP_PARSE_BAD;
    }
    syn = pop_cmd_lookup(kw);
    if (syn == NULL) {
        *error_r = "Unknown command.";
        return POP_PARSE_UNKNOWN;
    }
    cmd_r->cmd = syn->cmd;

    if (i == len)
        goto check_arity;
    i++;   /* the one separating space */

    if (syn->rest_of_line) {
        cmd_r->args[0].ptr = line + i;
        cmd_r->args[0].len = len - i;
        cmd_r->nargs = 1;
        goto check_arity;
    }
    for (;;) {
        start = i;
        while (i < len && line[i] != ' ')
            i++;
        if (i == start) {
            *error_r = "Invalid spacing in command.";
            return POP_PARSE_BAD;
        }
        if (cmd_r->nargs == syn->max_args) {
            *error_r = "Too many arguments.";
            return POP_PARSE_BAD;
        }
        cmd_r->args[cmd_r->nargs].ptr = line + start;
        cmd_r->args[cmd_r->nargs].len = i - start;
        cmd_r->nargs++;
        if (i == len)
            break;
        i++;
    }

check_arity:
    if (cmd_r->nargs < syn->min_args || (syn->rest_of_line && cmd_r->args[0].len == 0)) {
        *error_r = "Missing argument.";
        return POP_PARSE_BAD;
    }
    return POP_PARSE_OK;
}

/* RFC 4616 is decoded by the core; the protocol's error texts are ours.
   Indexed by enum gw_sasl_plain_result. */
static const char *const pop_sasl_plain_errors[] = {
    [GW_SASL_PLAIN_OK] = NULL,
    [GW_SASL_PLAIN_MALFORMED] = "Malformed PLAIN authentication data.",
    [GW_SASL_PLAIN_NO_AUTHCID] = "Missing user name.",
    [GW_SASL_PLAIN_NO_PASSWD] = "Missing password.",
    [GW_SASL_PLAIN_TOO_LONG] = "Authentication data too long.",
    [GW_SASL_PLAIN_BAD_CHARS] = "Invalid characters in authentication data.",
    [GW_SASL_PLAIN_AUTHZID] = "Authorization identity must be empty or equal the user name.",
};

static struct pop_slice pop_slice_of(struct gw_sasl_field f)
{
    struct pop_slice s = { f.ptr, f.len };

    return s;
}

enum pop_parse_result pop_sasl_plain_parse(const unsigned char *data, size_t len,
                                           struct pop_sasl_plain *plain_r, const char **error_r)
{
    struct gw_sasl_plain plain;
    enum gw_sasl_plain_result res;
    const char *core_error;

    memset(plain_r, 0, sizeof(*plain_r));
    res = gw_sasl_plain_decode(data, len, &plain, &core_error);
    *error_r = pop_sasl_plain_errors[res];
    if (res == GW_SASL_PLAIN_TOO_LONG)
        return POP_PARSE_TOO_LONG;
    if (res != GW_SASL_PLAIN_OK)
        return POP_PARSE_BAD;
    plain_r->authzid = pop_slice_of(plain.authzid);
    plain_r->authcid = pop_slice_of(plain.authcid);
    plain_r->passwd = pop_slice_of(plain.passwd);
    return POP_PARSE_OK;
}

/* RFC 2449: rchar = %x21-2E / %x30-5C / %x5E-7F (no '/', ']', space, CTL). */
static bool pop_is_rchar(unsigned char c)
{
    return c >= 0x21 && c <= 0x7f && c != '/' && c != ']';
}

/* Length of a well-formed "[level/level...]" at s, or 0. */
static size_t pop_resp_code_len(const char *s, size_t len)
{
    size_t i = 1, level_start;

    if (len < 3 || s[0] != '[')
        return 0;
    for (;;) {
        level_start = i;
        while (i < len && pop_is_rchar((unsigned char)s[i]))
            i++;
        if (i == level_start || i == len)
            return 0;
        if (s[i] == ']')
            return i + 1;
        if (s[i] != '/')
            return 0;
        i++;
    }
}

enum pop_parse_result pop_status_parse(const char *line, size_t len, struct pop_status *status_r)
{
    size_t i, clen;

    memset(status_r, 0, sizeof(*status_r));
    if (len >= 3 && memcmp(line, "+OK", 3) == 0 && (len == 3 || line[3] == ' ')) {
        status_r->kind = POP_STATUS_OK;
        i = 3;
    } else if (len >= 4 && memcmp(line, "-ERR", 4) == 0 && (len == 4 || line[4] == ' ')) {
        status_r->kind = POP_STATUS_ERR;
        i = 4;
    } else if (len >= 1 && line[0] == '+' && (len == 1 || line[1] == ' ')) {
        status_r->kind = POP_STATUS_CONT;
        status_r->text.ptr = line + (len > 1 ? 2 : 1);
        status_r->text.len = len > 1 ? len - 2 : 0;
        return POP_PARSE_OK;
    } else {
        return POP_PARSE_BAD;
    }
    if (i < len)
        i++;   /* the space */
    clen = pop_resp_code_len(line + i, len - i);
    if (clen != 0) {
        status_r->code.ptr = line + i + 1;
        status_r->code.len = clen - 2;
        i += clen;
        if (i < len && line[i] == ' ')
            i++;
    }
    status_r->text.ptr = line + i;
    status_r->text.len = len - i;
    return POP_PARSE_OK;
}

bool pop_status_code_is(const struct pop_status *st, const char *level)
{
    struct pop_slice first = st->code;
    const char *slash;

    if (first.len == 0)
        return false;
    slash = memchr(first.ptr, '/', first.len);
    if (slash != NULL)
        first.len = (size_t)(slash - first.ptr);
    return pop_slice_eq(first, level);
}

bool pop_capa_line(const char *line, size_t len, struct pop_slice *name_r,
                   struct pop_slice *args_r)
{
    size_t i;

    if (len == 1 && line[0] == '.')
        return true;
    if (len >= 1 && line[0] == '.') {
        line++;
        len--;
    }
    for (i = 0; i < len && line[i] != ' '; i++)
        ;
    name_r->ptr = line;
    name_r->len = i;
    if (i < len)
        i++;
    args_r->ptr = line + i;
    args_r->len = len - i;
    return false;
}
