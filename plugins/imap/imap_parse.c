/*
 * IMAP parsing: client commands (resumable), backend response lines, and
 * the pure helpers of the session. See imap_parse.h for the contracts.
 * This file must build and run without the core, but for the core's pure
 * SASL PLAIN decoder (core/sasl.c).
 */
#include "imap_parse.h"

#include <string.h>

#include "gateway/sasl.h"

/* RFC 3501: number fits 32 bits. */
#define IMAP_NUMBER_MAX 4294967295ull

static const struct imap_slice imap_empty = { "", 0 };

/* ---- character classes ----------------------------------------------- */

/* ASCII only: the locale must not change what a keyword is. */
static char imap_upper(char c)
{
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

static bool imap_is_ctl(unsigned char c)
{
    return c < 0x20 || c == 0x7f;
}

static bool imap_is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

/* tag = 1*<any ASTRING-CHAR except "+">: 7-bit, no CTL, SP or specials
   other than "]". */
static bool imap_is_tag_char(unsigned char c)
{
    if (c <= 0x20 || c >= 0x7f)
        return false;
    return c != '(' && c != ')' && c != '{' && c != '%' && c != '*' && c != '"' && c != '\\' &&
           c != '+';
}

/* Command names are atoms; every IMAP command and extension spells them
   with letters, digits and a few punctuation marks. */
static bool imap_is_name_char(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || imap_is_digit(c) || c == '-' ||
           c == '_' || c == '.';
}

/* Argument atoms, liberally: anything but CTL, SP and the characters that
   start or end another token. "\" (flags), "%" and "*" (patterns), "]"
   (ASTRING-CHAR) and 8-bit octets (UTF-8 user names typed as atoms) pass. */
static bool imap_is_atom_char(unsigned char c)
{
    if (imap_is_ctl(c) || c == ' ')
        return false;
    return c != '(' && c != ')' && c != '{' && c != '"';
}

bool imap_slice_eq(struct imap_slice s, const char *word)
{
    size_t i;

    for (i = 0; i < s.len; i++) {
        if (word[i] == '\0' || imap_upper(s.ptr[i]) != imap_upper(word[i]))
            return false;
    }
    return word[i] == '\0';
}

/* ---- the command parser ---------------------------------------------- */

/*
 * States (enum imap_parse_state), one line each:
 *   LINE_START    before a command; empty lines are skipped
 *   TAG           in the tag
 *   NAME_START    after the tag's space, before the command name
 *   NAME          in the command name
 *   AFTER_TOKEN   after a quoted string, literal or ")": SP, ")" or CRLF
 *   ARG_START     after a space: the next argument (or CRLF)
 *   ATOM          in an atom
 *   QUOTED        in a quoted string
 *   QUOTED_ESC    after a backslash in a quoted string
 *   LIT_LEN       after "{": the digits
 *   LIT_PLUS      after "{n+": the "}"
 *   LIT_CRLF      after "}": CR or LF
 *   LIT_LF        after "}" CR: LF
 *   LIT_DATA      the literal's octets
 *   END_LF        after the final CR: LF
 *   SKIP*         after an error: through the end of the line, recognizing a
 *                 literal announced at a line end so its octets are skipped
 *                 too rather than taken as commands
 *   DONE          a result was returned; the next feed starts over
 */

static void imap_parser_clear(struct imap_parser *p)
{
    p->state = IMAP_S_LINE_START;
    p->tag = imap_empty;
    p->name = imap_empty;
    p->nargs = 0;
    p->has_tag = false;
    p->error = NULL;
    p->fatal = false;
    p->skip_result = IMAP_PARSE_BAD;
    p->line_len = 0;
    p->used = 0;
    p->tok = 0;
    p->lit_len = 0;
    p->lit_digits = 0;
    p->lit_nonsync = false;
    p->depth = 0;
}

void imap_parser_init(struct imap_parser *p, const struct imap_parse_limits *limits)
{
    p->limits = *limits;
    if (p->limits.max_line == 0)
        p->limits.max_line = IMAP_PARSE_ARENA;
    if (p->limits.max_literal == 0)
        p->limits.max_literal = IMAP_PARSE_ARENA;
    if (p->limits.max_tag == 0)
        p->limits.max_tag = IMAP_PARSE_ARENA;
    imap_parser_clear(p);
}

void imap_parser_reset(struct imap_parser *p)
{
    imap_parser_clear(p);
}

uint64_t imap_parser_literal_left(const struct imap_parser *p)
{
    if (p->state == IMAP_S_LIT_DATA || p->state == IMAP_S_SKIP_LIT_DATA)
        return p->lit_len;
    return 0;
}

/* Give up on this command: remember why, skip to the end of its line. */
static void imap_fail(struct imap_parser *p, enum imap_parse_result res, const char *error)
{
    p->error = error;
    p->skip_result = res;
    p->state = IMAP_S_SKIP;
}

/* Start a token in the arena: there must be room for at least its NUL. */
static bool imap_tok_start(struct imap_parser *p)
{
    if (p->used >= IMAP_PARSE_ARENA) {
        imap_fail(p, IMAP_PARSE_TOO_LONG, "Command too long.");
        return false;
    }
    p->tok = p->used;
    return true;
}

/* Append one octet to the current token, keeping room for its NUL. */
static bool imap_tok_put(struct imap_parser *p, unsigned char c)
{
    if (p->used + 1 >= IMAP_PARSE_ARENA) {
        imap_fail(p, IMAP_PARSE_TOO_LONG, "Command too long.");
        return false;
    }
    p->arena[p->used++] = (char)c;
    return true;
}

static struct imap_slice imap_tok_end(struct imap_parser *p)
{
    struct imap_slice s = { p->arena + p->tok, p->used - p->tok };

    p->arena[p->used++] = '\0';
    return s;
}

/* Reserve the next argument slot. */
static struct imap_arg *imap_arg_new(struct imap_parser *p, enum imap_arg_type type)
{
    struct imap_arg *a;

    if (p->nargs >= IMAP_ARGS_MAX) {
        imap_fail(p, IMAP_PARSE_BAD, "Too many arguments.");
        return NULL;
    }
    a = &p->args[p->nargs++];
    a->type = type;
    a->s = imap_empty;
    return a;
}

static void imap_arg_end(struct imap_parser *p)
{
    p->args[p->nargs - 1].s = imap_tok_end(p);
}

/* ")" in ARG_START or AFTER_TOKEN. */
static void imap_list_close(struct imap_parser *p)
{
    if (p->depth == 0) {
        imap_fail(p, IMAP_PARSE_BAD, "Unbalanced parentheses.");
        return;
    }
    if (imap_arg_new(p, IMAP_ARG_LIST_END) == NULL)
        return;
    p->depth--;
    p->state = IMAP_S_AFTER_TOKEN;
}

/* Start a literal: its header's LF was just consumed. Returns the result to
   report now, or IMAP_PARSE_MORE to go on. */
static enum imap_parse_result imap_literal_start(struct imap_parser *p)
{
    p->line_len = 0;
    if (p->lit_len > p->limits.max_literal || p->used + p->lit_len + 1 > IMAP_PARSE_ARENA) {
        p->error = "Literal too big.";
        p->fatal = p->lit_nonsync;
        p->state = IMAP_S_DONE;
        return IMAP_PARSE_TOO_LONG;
    }
    if (p->nargs >= IMAP_ARGS_MAX) {
        p->error = "Too many arguments.";
        if (!p->lit_nonsync) {
            p->state = IMAP_S_DONE;
            return IMAP_PARSE_BAD;
        }
        /* Its octets are coming: skip them, then the rest of the line. */
        p->skip_result = IMAP_PARSE_BAD;
        p->state = p->lit_len > 0 ? IMAP_S_SKIP_LIT_DATA : IMAP_S_SKIP;
        return IMAP_PARSE_MORE;
    }
    (void)imap_arg_new(p, IMAP_ARG_LITERAL);
    p->tok = p->used;
    if (p->lit_len == 0) {
        imap_arg_end(p);
        p->state = IMAP_S_AFTER_TOKEN;
    } else {
        p->state = IMAP_S_LIT_DATA;
    }
    return p->lit_nonsync ? IMAP_PARSE_MORE : IMAP_PARSE_LITERAL;
}

/* A literal announced at the end of a line being skipped. */
static enum imap_parse_result imap_skip_literal(struct imap_parser *p)
{
    p->line_len = 0;
    if (!p->lit_nonsync) {
        /* The client waits for "+" before sending anything: the command
           ends here. */
        p->state = IMAP_S_DONE;
        return p->skip_result;
    }
    if (p->lit_len > p->limits.max_literal) {
        p->error = "Literal too big.";
        p->fatal = true;
        p->state = IMAP_S_DONE;
        return IMAP_PARSE_TOO_LONG;
    }
    p->state = p->lit_len > 0 ? IMAP_S_SKIP_LIT_DATA : IMAP_S_SKIP;
    return IMAP_PARSE_MORE;
}

/* The final LF of a command. */
static enum imap_parse_result imap_finish(struct imap_parser *p)
{
    if (p->depth > 0) {
        imap_fail(p, IMAP_PARSE_BAD, "Unbalanced parentheses.");
        return IMAP_PARSE_MORE;   /* the LF is processed again, in SKIP */
    }
    p->line_len = 0;
    p->state = IMAP_S_DONE;
    return IMAP_PARSE_OK;
}

static bool imap_counts_line(enum imap_parse_state st)
{
    return st < IMAP_S_LIT_DATA || st == IMAP_S_END_LF;
}

/* Accumulate one digit of a literal length; false when it is not a valid
   32-bit number any more. */
static bool imap_lit_digit(struct imap_parser *p, unsigned char c)
{
    if (++p->lit_digits > IMAP_LITERAL_DIGITS_MAX)
        return false;
    p->lit_len = p->lit_len * 10 + (uint64_t)(c - '0');
    return p->lit_len <= IMAP_NUMBER_MAX;
}

enum imap_parse_result imap_parser_feed(struct imap_parser *p, const void *data, size_t len,
                                        size_t *consumed_r)
{
    const unsigned char *d = data;
    enum imap_parse_result res = IMAP_PARSE_MORE;
    bool again = false;   /* the current octet is being processed a second time */
    size_t i = 0;

    if (p->state == IMAP_S_DONE)
        imap_parser_clear(p);

    while (i < len) {
        unsigned char c = d[i];

        if (p->state == IMAP_S_LIT_DATA || p->state == IMAP_S_SKIP_LIT_DATA) {
            size_t n = len - i;

            if (n > p->lit_len)
                n = (size_t)p->lit_len;
            if (p->state == IMAP_S_LIT_DATA) {
                memcpy(p->arena + p->used, d + i, n);
                p->used += n;
            }
            p->lit_len -= n;
            i += n;
            if (p->lit_len == 0) {
                if (p->state == IMAP_S_LIT_DATA) {
                    imap_arg_end(p);
                    p->state = IMAP_S_AFTER_TOKEN;
                } else {
                    p->state = IMAP_S_SKIP;
                }
            }
            continue;
        }
        if (!again && imap_counts_line(p->state) && ++p->line_len > p->limits.max_line) {
            imap_fail(p, IMAP_PARSE_TOO_LONG, "Line too long.");
            again = true;
            continue;
        }
        again = false;

        switch (p->state) {
        case IMAP_S_LINE_START:
            if (c == '\r' || c == '\n') {
                if (c == '\n')
                    p->line_len = 0;
                break;
            }
            if (!imap_is_tag_char(c)) {
                imap_fail(p, IMAP_PARSE_BAD, "Invalid tag.");
                again = true;
                continue;
            }
            p->tok = 0;
            p->used = 0;
            (void)imap_tok_put(p, c);
            p->state = IMAP_S_TAG;
            break;

        case IMAP_S_TAG:
            if (imap_is_tag_char(c)) {
                if (p->used - p->tok >= p->limits.max_tag) {
                    imap_fail(p, IMAP_PARSE_TOO_LONG, "Tag too long.");
                    again = true;
                    continue;
                }
                (void)imap_tok_put(p, c);
                break;
            }
            if (c == ' ' || c == '\r' || c == '\n') {
                p->tag = imap_tok_end(p);
                p->has_tag = true;
                if (c == ' ') {
                    p->state = IMAP_S_NAME_START;
                    break;
                }
                imap_fail(p, IMAP_PARSE_BAD, "Missing command.");
                again = true;
                continue;
            }
            imap_fail(p, IMAP_PARSE_BAD, "Invalid tag.");
            again = true;
            continue;

        case IMAP_S_NAME_START:
            if (c == ' ')
                break;
            if (!imap_is_name_char(c)) {
                imap_fail(p, IMAP_PARSE_BAD,
                          c == '\r' || c == '\n' ? "Missing command." : "Invalid command name.");
                again = true;
                continue;
            }
            if (imap_tok_start(p) && imap_tok_put(p, c))
                p->state = IMAP_S_NAME;
            break;

        case IMAP_S_NAME:
            if (imap_is_name_char(c)) {
                (void)imap_tok_put(p, c);
                break;
            }
            if (c == ' ' || c == '\r' || c == '\n') {
                p->name = imap_tok_end(p);
                if (c == ' ') {
                    p->state = IMAP_S_ARG_START;
                    break;
                }
                p->state = IMAP_S_END_LF;
                if (c == '\n') {
                    res = imap_finish(p);
                    if (res != IMAP_PARSE_MORE) {
                        i++;
                        goto out;
                    }
                    again = true;
                    continue;
                }
                break;
            }
            imap_fail(p, IMAP_PARSE_BAD, "Invalid command name.");
            again = true;
            continue;

        case IMAP_S_ARG_START:
            if (c == ' ')
                break;
            if (c == '"') {
                if (imap_arg_new(p, IMAP_ARG_QUOTED) != NULL && imap_tok_start(p))
                    p->state = IMAP_S_QUOTED;
                break;
            }
            if (c == '{') {
                p->lit_len = 0;
                p->lit_digits = 0;
                p->lit_nonsync = false;
                p->state = IMAP_S_LIT_LEN;
                break;
            }
            if (c == '(') {
                if (p->depth >= IMAP_LIST_DEPTH) {
                    imap_fail(p, IMAP_PARSE_BAD, "Lists nested too deeply.");
                    break;
                }
                if (imap_arg_new(p, IMAP_ARG_LIST_START) != NULL)
                    p->depth++;
                break;
            }
            if (imap_is_atom_char(c)) {
                if (imap_arg_new(p, IMAP_ARG_ATOM) != NULL && imap_tok_start(p) &&
                    imap_tok_put(p, c))
                    p->state = IMAP_S_ATOM;
                break;
            }
            /* ")", CR, LF (a trailing space is tolerated) */
            p->state = IMAP_S_AFTER_TOKEN;
            if (c == ')' || c == '\r' || c == '\n') {
                again = true;
                continue;
            }
            imap_fail(p, IMAP_PARSE_BAD, "Invalid characters in command.");
            again = true;
            continue;

        case IMAP_S_AFTER_TOKEN:
            if (c == ' ') {
                p->state = IMAP_S_ARG_START;
                break;
            }
            if (c == ')') {
                imap_list_close(p);
                break;
            }
            if (c == '\r') {
                p->state = IMAP_S_END_LF;
                break;
            }
            if (c == '\n') {
                res = imap_finish(p);
                if (res != IMAP_PARSE_MORE) {
                    i++;
                    goto out;
                }
                again = true;
                continue;
            }
            imap_fail(p, IMAP_PARSE_BAD, "Missing space between arguments.");
            again = true;
            continue;

        case IMAP_S_ATOM:
            if (imap_is_atom_char(c)) {
                (void)imap_tok_put(p, c);
                break;
            }
            imap_arg_end(p);
            p->state = IMAP_S_AFTER_TOKEN;
            if (c == '{')
                imap_fail(p, IMAP_PARSE_BAD, "Invalid characters in atom.");
            again = true;
            continue;

        case IMAP_S_QUOTED:
            if (c == '"') {
                imap_arg_end(p);
                p->state = IMAP_S_AFTER_TOKEN;
                break;
            }
            if (c == '\\') {
                p->state = IMAP_S_QUOTED_ESC;
                break;
            }
            if (c == '\0' || c == '\r' || c == '\n') {
                imap_fail(p, IMAP_PARSE_BAD, "Invalid characters in quoted string.");
                again = true;
                continue;
            }
            (void)imap_tok_put(p, c);
            break;

        case IMAP_S_QUOTED_ESC:
            if (c == '"' || c == '\\') {
                if (imap_tok_put(p, c))
                    p->state = IMAP_S_QUOTED;
                break;
            }
            imap_fail(p, IMAP_PARSE_BAD, "Invalid escape in quoted string.");
            again = true;
            continue;

        case IMAP_S_LIT_LEN:
            if (imap_is_digit(c)) {
                if (!imap_lit_digit(p, c))
                    imap_fail(p, IMAP_PARSE_BAD, "Invalid literal length.");
                break;
            }
            if (p->lit_digits > 0 && (c == '+' || c == '}')) {
                p->lit_nonsync = c == '+';
                p->state = c == '+' ? IMAP_S_LIT_PLUS : IMAP_S_LIT_CRLF;
                break;
            }
            imap_fail(p, IMAP_PARSE_BAD, "Invalid literal.");
            again = true;
            continue;

        case IMAP_S_LIT_PLUS:
            if (c == '}') {
                p->state = IMAP_S_LIT_CRLF;
                break;
            }
            imap_fail(p, IMAP_PARSE_BAD, "Invalid literal.");
            again = true;
            continue;

        case IMAP_S_LIT_CRLF:
        case IMAP_S_LIT_LF:
            if (c == '\r' && p->state == IMAP_S_LIT_CRLF) {
                p->state = IMAP_S_LIT_LF;
                break;
            }
            if (c == '\n') {
                res = imap_literal_start(p);
                if (res != IMAP_PARSE_MORE) {
                    i++;
                    goto out;
                }
                break;
            }
            imap_fail(p, IMAP_PARSE_BAD, "A literal must end its line.");
            again = true;
            continue;

        case IMAP_S_END_LF:
            if (c == '\n') {
                res = imap_finish(p);
                if (res != IMAP_PARSE_MORE) {
                    i++;
                    goto out;
                }
                again = true;
                continue;
            }
            imap_fail(p, IMAP_PARSE_BAD, "Invalid characters in command.");
            again = true;
            continue;

        case IMAP_S_SKIP:
            if (c == '\n') {
                p->line_len = 0;
                p->state = IMAP_S_DONE;
                res = p->skip_result;
                i++;
                goto out;
            }
            if (c == '{') {
                p->lit_len = 0;
                p->lit_digits = 0;
                p->lit_nonsync = false;
                p->state = IMAP_S_SKIP_LIT_LEN;
            }
            break;

        case IMAP_S_SKIP_LIT_LEN:
            if (imap_is_digit(c) && imap_lit_digit(p, c))
                break;
            if (p->lit_digits > 0 && p->lit_len <= IMAP_NUMBER_MAX && (c == '+' || c == '}')) {
                p->lit_nonsync = c == '+';
                p->state = c == '+' ? IMAP_S_SKIP_LIT_PLUS : IMAP_S_SKIP_LIT_CRLF;
                break;
            }
            p->state = IMAP_S_SKIP;
            again = true;
            continue;

        case IMAP_S_SKIP_LIT_PLUS:
            if (c == '}') {
                p->state = IMAP_S_SKIP_LIT_CRLF;
                break;
            }
            p->state = IMAP_S_SKIP;
            again = true;
            continue;

        case IMAP_S_SKIP_LIT_CRLF:
        case IMAP_S_SKIP_LIT_LF:
            if (c == '\r' && p->state == IMAP_S_SKIP_LIT_CRLF) {
                p->state = IMAP_S_SKIP_LIT_LF;
                break;
            }
            if (c == '\n') {
                res = imap_skip_literal(p);
                if (res != IMAP_PARSE_MORE) {
                    i++;
                    goto out;
                }
                break;
            }
            p->state = IMAP_S_SKIP;
            again = true;
            continue;

        case IMAP_S_LIT_DATA:
        case IMAP_S_SKIP_LIT_DATA:
        case IMAP_S_DONE:
            /* LIT_DATA is handled above; DONE only after a result. */
            break;
        }
        i++;
    }
out:
    *consumed_r = i;
    return res;
}

/* ---- backend responses ----------------------------------------------- */

static const struct {
    const char *word;
    enum imap_resp_status status;
} imap_status_words[] = {
    { "OK", IMAP_STATUS_OK },   { "NO", IMAP_STATUS_NO },   { "BAD", IMAP_STATUS_BAD },
    { "PREAUTH", IMAP_STATUS_PREAUTH }, { "BYE", IMAP_STATUS_BYE },
};

static enum imap_resp_status imap_status_of(struct imap_slice w)
{
    for (size_t i = 0; i < sizeof(imap_status_words) / sizeof(imap_status_words[0]); i++) {
        if (imap_slice_eq(w, imap_status_words[i].word))
            return imap_status_words[i].status;
    }
    return IMAP_STATUS_NONE;
}

/* The word starting at *pos, up to a space or the end; *pos moves past one
   following space. */
static struct imap_slice imap_next_word(const char *line, size_t len, size_t *pos)
{
    struct imap_slice w = { line + *pos, 0 };

    while (*pos < len && line[*pos] != ' ') {
        (*pos)++;
        w.len++;
    }
    if (*pos < len)
        (*pos)++;
    return w;
}

static struct imap_slice imap_rest(const char *line, size_t len, size_t pos)
{
    struct imap_slice s = { line + pos, pos < len ? len - pos : 0 };

    return s;
}

/* After a status word: an optional "[code]" and the text. */
static enum imap_parse_result imap_resp_text(const char *line, size_t len, size_t pos,
                                             struct imap_response *r)
{
    if (pos < len && line[pos] == '[') {
        const char *close = memchr(line + pos, ']', len - pos);

        if (close == NULL)
            return IMAP_PARSE_BAD;
        r->code.ptr = line + pos + 1;
        r->code.len = (size_t)(close - (line + pos + 1));
        pos = (size_t)(close - line) + 1;
        if (pos < len && line[pos] == ' ')
            pos++;
    }
    r->text = imap_rest(line, len, pos);
    return IMAP_PARSE_OK;
}

enum imap_parse_result imap_response_parse(const char *line, size_t len, struct imap_response *r)
{
    size_t pos = 0;

    memset(r, 0, sizeof(*r));
    r->tag = r->word = r->code = r->text = imap_empty;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];
        if (c == '\0' || c == '\r' || c == '\n')
            return IMAP_PARSE_BAD;
    }
    if (len == 0)
        return IMAP_PARSE_BAD;
    if (line[0] == '+') {
        if (len > 1 && line[1] != ' ')
            return IMAP_PARSE_BAD;
        r->kind = IMAP_RESP_CONT;
        r->text = imap_rest(line, len, len > 1 ? 2 : 1);
        return IMAP_PARSE_OK;
    }
    if (line[0] == '*') {
        if (len < 3 || line[1] != ' ')
            return IMAP_PARSE_BAD;
        r->kind = IMAP_RESP_UNTAGGED;
        pos = 2;
    } else {
        r->kind = IMAP_RESP_TAGGED;
        r->tag = imap_next_word(line, len, &pos);
        for (size_t i = 0; i < r->tag.len; i++) {
            if (!imap_is_tag_char((unsigned char)r->tag.ptr[i]))
                return IMAP_PARSE_BAD;
        }
    }
    r->word = imap_next_word(line, len, &pos);
    if (r->word.len == 0)
        return IMAP_PARSE_BAD;
    r->status = imap_status_of(r->word);
    if (r->status == IMAP_STATUS_NONE) {
        if (r->kind == IMAP_RESP_TAGGED)
            return IMAP_PARSE_BAD;
        r->text = imap_rest(line, len, pos);
        return IMAP_PARSE_OK;
    }
    if (r->kind == IMAP_RESP_TAGGED && r->status != IMAP_STATUS_OK &&
        r->status != IMAP_STATUS_NO && r->status != IMAP_STATUS_BAD)
        return IMAP_PARSE_BAD;
    return imap_resp_text(line, len, pos, r);
}

struct imap_slice imap_code_name(struct imap_slice code)
{
    size_t pos = 0;

    return imap_next_word(code.ptr, code.len, &pos);
}

struct imap_slice imap_code_args(struct imap_slice code)
{
    size_t pos = 0;

    (void)imap_next_word(code.ptr, code.len, &pos);
    return imap_rest(code.ptr, code.len, pos);
}

/* ---- capabilities ---------------------------------------------------- */

bool imap_caps_has(struct imap_slice caps, const char *cap)
{
    size_t pos = 0;

    while (pos < caps.len) {
        struct imap_slice w = imap_next_word(caps.ptr, caps.len, &pos);
        if (w.len > 0 && imap_slice_eq(w, cap))
            return true;
    }
    return false;
}

/* Append " word" (or "word" at the start); false when it does not fit. */
static bool imap_append_word(char *out, size_t outsize, size_t *len, const char *word)
{
    size_t wl = strlen(word), need = wl + (*len > 0 ? 1 : 0);

    if (*len + need + 1 > outsize)
        return false;
    if (*len > 0)
        out[(*len)++] = ' ';
    memcpy(out + *len, word, wl);
    *len += wl;
    out[*len] = '\0';
    return true;
}

size_t imap_caps_prelogin(struct imap_slice caps, char *out, size_t outsize)
{
    /* In announcement order; `always` ones are the gateway's own. */
    static const struct {
        const char *cap;
        bool always;
    } list[] = {
        { "IMAP4rev1", true }, { "IMAP4rev2", false }, { "SASL-IR", true }, { "ID", true },
        { "ENABLE", false },   { "IDLE", false },      { "LITERAL+", false },
    };
    size_t len = 0;

    if (outsize == 0)
        return 0;
    out[0] = '\0';
    for (size_t i = 0; i < sizeof(list) / sizeof(list[0]); i++) {
        if (!list[i].always && !imap_caps_has(caps, list[i].cap))
            continue;
        if (!imap_append_word(out, outsize, &len, list[i].cap))
            return 0;
    }
    /* LITERAL- only when the backend has no LITERAL+. */
    if (!imap_caps_has(caps, "LITERAL+") && imap_caps_has(caps, "LITERAL-") &&
        !imap_append_word(out, outsize, &len, "LITERAL-"))
        return 0;
    return len;
}

/* ---- SASL PLAIN ------------------------------------------------------ */

/* RFC 4616 is decoded by the core; the protocol's error texts are ours.
   Indexed by enum gw_sasl_plain_result. */
static const char *const imap_sasl_plain_errors[] = {
    [GW_SASL_PLAIN_OK] = NULL,
    [GW_SASL_PLAIN_MALFORMED] = "Invalid PLAIN message.",
    [GW_SASL_PLAIN_NO_AUTHCID] = "Empty user name or password.",
    [GW_SASL_PLAIN_NO_PASSWD] = "Empty user name or password.",
    [GW_SASL_PLAIN_TOO_LONG] = "User name or password too long.",
    [GW_SASL_PLAIN_BAD_CHARS] = "Invalid characters in PLAIN message.",
    [GW_SASL_PLAIN_AUTHZID] = "Authorization identity must be the authentication identity.",
};

static struct imap_slice imap_slice_of(struct gw_sasl_field f)
{
    struct imap_slice s = { f.ptr, f.len };

    return s;
}

enum imap_parse_result imap_sasl_plain_parse(const unsigned char *data, size_t len,
                                             struct imap_sasl_plain *plain_r,
                                             const char **error_r)
{
    struct gw_sasl_plain plain;
    enum gw_sasl_plain_result res;
    const char *core_error;

    memset(plain_r, 0, sizeof(*plain_r));
    res = gw_sasl_plain_decode(data, len, &plain, &core_error);
    *error_r = imap_sasl_plain_errors[res];
    if (res != GW_SASL_PLAIN_OK)
        return IMAP_PARSE_BAD;
    plain_r->authzid = imap_slice_of(plain.authzid);
    plain_r->authcid = imap_slice_of(plain.authcid);
    plain_r->passwd = imap_slice_of(plain.passwd);
    return IMAP_PARSE_OK;
}

/* ---- ID -------------------------------------------------------------- */

static bool imap_arg_is_nil(const struct imap_arg *a)
{
    return a->type == IMAP_ARG_ATOM && imap_slice_eq(a->s, "NIL");
}

static bool imap_arg_is_string(const struct imap_arg *a)
{
    /* Atoms are tolerated where a string belongs. */
    return a->type == IMAP_ARG_QUOTED || a->type == IMAP_ARG_LITERAL ||
           (a->type == IMAP_ARG_ATOM && !imap_arg_is_nil(a));
}

enum imap_parse_result imap_id_parse(const struct imap_arg *args, unsigned nargs,
                                     struct imap_id_pair *pairs_r, unsigned max,
                                     unsigned *npairs_r, const char **error_r)
{
    unsigned i, n = 0;

    *npairs_r = 0;
    *error_r = NULL;
    if (nargs == 1 && imap_arg_is_nil(&args[0]))
        return IMAP_PARSE_OK;
    if (nargs < 2 || args[0].type != IMAP_ARG_LIST_START ||
        args[nargs - 1].type != IMAP_ARG_LIST_END || (nargs - 2) % 2 != 0) {
        *error_r = "Invalid ID parameters.";
        return IMAP_PARSE_BAD;
    }
    if ((nargs - 2) / 2 > IMAP_ID_PAIRS_MAX) {
        *error_r = "Too many ID parameters.";
        return IMAP_PARSE_BAD;
    }
    for (i = 1; i + 1 < nargs - 1; i += 2) {
        const struct imap_arg *f = &args[i], *v = &args[i + 1];

        if (!imap_arg_is_string(f) || !(imap_arg_is_string(v) || imap_arg_is_nil(v))) {
            *error_r = "Invalid ID parameters.";
            return IMAP_PARSE_BAD;
        }
        if (f->s.len > IMAP_ID_FIELD_MAX || v->s.len > IMAP_ID_VALUE_MAX) {
            *error_r = "ID parameter too long.";
            return IMAP_PARSE_BAD;
        }
        if (n < max) {
            pairs_r[n].field = f->s;
            if (imap_arg_is_nil(v)) {
                pairs_r[n].value.ptr = NULL;
                pairs_r[n].value.len = 0;
            } else {
                pairs_r[n].value = v->s;
            }
            n++;
        }
    }
    *npairs_r = n;
    return IMAP_PARSE_OK;
}

/* ---- output helpers -------------------------------------------------- */

size_t imap_quote(const char *in, size_t len, char *out, size_t outsize)
{
    size_t o = 0;

    if (outsize < 3)
        return 0;
    out[o++] = '"';
    for (size_t i = 0; i < len; i++) {
        char c = in[i];

        if (c == '\0' || c == '\r' || c == '\n')
            return 0;
        if (c == '"' || c == '\\') {
            if (o + 1 >= outsize)
                return 0;
            out[o++] = '\\';
        }
        if (o + 1 >= outsize)
            return 0;
        out[o++] = c;
    }
    if (o + 2 > outsize)
        return 0;
    out[o++] = '"';
    out[o] = '\0';
    return o;
}

/* RFC 5092 achar, less what needs no encoding trouble: unreserved,
   sub-delims-sh, "&" and "=". Everything else is percent-encoded, ";" and
   "@" in particular. */
static bool imap_url_char_ok(unsigned char c)
{
    if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || imap_is_digit(c))
        return true;
    return c != '\0' && strchr("-._~!$'()*+,&=", c) != NULL;
}

static bool imap_url_host_ok(struct imap_slice h)
{
    if (h.len == 0)
        return false;
    for (size_t i = 0; i < h.len; i++) {
        unsigned char c = (unsigned char)h.ptr[i];
        if (imap_is_ctl(c) || c == ' ' || c == '"' || c == '\\' || c == '/' || c == '@' ||
            c >= 0x80)
            return false;
    }
    return true;
}

/* A bounded output: writes stop at the end, `overflow` records it. */
struct imap_out {
    char *buf;
    size_t size, len;
    bool overflow;
};

static void imap_out_put(struct imap_out *o, char c)
{
    if (o->len + 1 >= o->size) {
        o->overflow = true;
        return;
    }
    o->buf[o->len++] = c;
}

static void imap_out_str(struct imap_out *o, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++)
        imap_out_put(o, s[i]);
}

size_t imap_referral_url(const char *site_url, const char *user, char *out, size_t outsize)
{
    static const char hex[] = "0123456789ABCDEF";
    const char *sep = strstr(site_url, "://"), *auth, *end, *at;
    struct imap_out o = { out, outsize, 0, false };
    struct imap_slice scheme, host;
    bool imap_scheme;

    if (sep == NULL || outsize == 0)
        return 0;
    scheme.ptr = site_url;
    scheme.len = (size_t)(sep - site_url);
    imap_scheme = imap_slice_eq(scheme, "imap") || imap_slice_eq(scheme, "imaps");
    auth = sep + 3;
    end = auth + strcspn(auth, "/?#");
    /* Drop any userinfo. */
    for (at = end; at > auth && at[-1] != '@'; at--)
        ;
    host.ptr = at;
    host.len = (size_t)(end - at);
    if (!imap_scheme) {
        /* Another protocol's port means nothing for IMAP. */
        if (host.len > 0 && host.ptr[0] == '[') {
            const char *close = memchr(host.ptr, ']', host.len);
            if (close != NULL)
                host.len = (size_t)(close + 1 - host.ptr);
        } else {
            const char *colon = memchr(host.ptr, ':', host.len);
            if (colon != NULL)
                host.len = (size_t)(colon - host.ptr);
        }
    }
    if (!imap_url_host_ok(host))
        return 0;

    if (imap_scheme) {
        for (size_t i = 0; i < scheme.len; i++) {
            char c = scheme.ptr[i];
            imap_out_put(&o, (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c);
        }
    } else {
        imap_out_str(&o, "imap", 4);
    }
    imap_out_str(&o, "://", 3);
    for (const unsigned char *u = (const unsigned char *)user; *u != '\0'; u++) {
        if (imap_url_char_ok(*u)) {
            imap_out_put(&o, (char)*u);
        } else {
            imap_out_put(&o, '%');
            imap_out_put(&o, hex[*u >> 4]);
            imap_out_put(&o, hex[*u & 0x0f]);
        }
    }
    imap_out_put(&o, '@');
    imap_out_str(&o, host.ptr, host.len);
    imap_out_put(&o, '/');
    if (o.overflow)
        return 0;
    out[o.len] = '\0';
    return o.len;
}
