/*
 * IMAP parsing, pure: bytes in, tokens out. No I/O, no logging, no
 * allocation, and of the core only the pure SASL PLAIN decoder
 * (gateway/sasl.h, core/sasl.c) -- unit tests and the fuzzer call it
 * directly.
 *
 * Two parsers:
 *
 *  - imap_parser: client commands, resumable byte by byte. A command is
 *    "tag SP name [SP args] CRLF" where the arguments are atoms, quoted
 *    strings (with \" and \\ escapes), literals -- synchronizing {n} and
 *    non-synchronizing {n+} (RFC 7888) -- and parenthesized lists. Any split
 *    of the input gives the same result, so the session may feed whatever
 *    arrived. Argument contents are copied into a fixed arena inside the
 *    parser, so results stay valid after the input buffer is gone.
 *
 *  - imap_response_parse(): one backend response line (the session reads
 *    lines; before login a backend sends nothing else).
 *
 * Plus the small pure helpers the session needs: capability lists, SASL
 * PLAIN, ID parameters, quoting, login referral URLs.
 *
 * References: RFC 3501 and 9051 (IMAP4rev1, rev2), RFC 7888 (LITERAL+ and
 * LITERAL-), RFC 2971 (ID), RFC 4959 (SASL-IR), RFC 4616 (PLAIN),
 * RFC 2221 (login referrals), RFC 5092 (IMAP URL), RFC 5530 (response codes).
 */
#ifndef IMAP_PARSE_H
#define IMAP_PARSE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "gateway/sasl.h"

/* Bytes of one command's tag, name and argument contents (each stored with
   a terminating NUL). A command that does not fit is "too long". */
#define IMAP_PARSE_ARENA 8192
/* Argument tokens per command, list brackets included: enough for ID's 30
   field/value pairs (RFC 2971) in one list. */
#define IMAP_ARGS_MAX 64
/* Nesting of parenthesized lists. */
#define IMAP_LIST_DEPTH 8
/* RFC 3501: number = 1*DIGIT fitting 32 bits. */
#define IMAP_LITERAL_DIGITS_MAX 10
/* RFC 2971 limits on ID parameters. */
#define IMAP_ID_PAIRS_MAX 30
#define IMAP_ID_FIELD_MAX 30
#define IMAP_ID_VALUE_MAX 1024
/* SASL PLAIN limits: the core's (gateway/sasl.h). */
#define IMAP_SASL_ID_MAX GW_SASL_PLAIN_ID_MAX
#define IMAP_SASL_PASSWD_MAX GW_SASL_PLAIN_PASSWD_MAX

enum imap_parse_result {
    IMAP_PARSE_MORE,     /* all input consumed; the command is not complete yet */
    IMAP_PARSE_OK,       /* one command parsed, through its final CRLF */
    IMAP_PARSE_LITERAL,  /* a synchronizing literal {n} was announced (its CRLF consumed):
                            answer "+ ..." and feed its n bytes, or refuse the command */
    IMAP_PARSE_BAD,      /* malformed command, consumed through the end of its line */
    IMAP_PARSE_TOO_LONG, /* a line, literal, tag or the whole command exceeded a limit */
};

/* A run of bytes. Parser results are NUL-terminated (len excludes it). */
struct imap_slice {
    const char *ptr;
    size_t len;
};

enum imap_arg_type {
    IMAP_ARG_ATOM,        /* includes NIL and numbers; the session decides */
    IMAP_ARG_QUOTED,      /* unescaped contents */
    IMAP_ARG_LITERAL,     /* raw contents (may hold any octet, NUL included) */
    IMAP_ARG_LIST_START,  /* "(" */
    IMAP_ARG_LIST_END,    /* ")" */
};

struct imap_arg {
    enum imap_arg_type type;
    struct imap_slice s;  /* empty for the list brackets */
};

struct imap_parse_limits {
    size_t max_line;      /* octets of one line, CRLF included */
    size_t max_literal;   /* octets of one literal */
    size_t max_tag;       /* octets of the tag */
};

/* Internal states; see imap_parse.c. */
enum imap_parse_state {
    IMAP_S_LINE_START,
    IMAP_S_TAG,
    IMAP_S_NAME_START,
    IMAP_S_NAME,
    IMAP_S_AFTER_TOKEN,
    IMAP_S_ARG_START,
    IMAP_S_ATOM,
    IMAP_S_QUOTED,
    IMAP_S_QUOTED_ESC,
    IMAP_S_LIT_LEN,
    IMAP_S_LIT_PLUS,
    IMAP_S_LIT_CRLF,
    IMAP_S_LIT_LF,
    IMAP_S_LIT_DATA,
    IMAP_S_END_LF,
    IMAP_S_SKIP,
    IMAP_S_SKIP_LIT_LEN,
    IMAP_S_SKIP_LIT_PLUS,
    IMAP_S_SKIP_LIT_CRLF,
    IMAP_S_SKIP_LIT_LF,
    IMAP_S_SKIP_LIT_DATA,
    IMAP_S_DONE,
};

/*
 * The command parser. Embed it (it holds the arena) and call
 * imap_parser_init() once; then feed bytes.
 *
 * Results, valid from an IMAP_PARSE_OK until the next feed or reset:
 *   tag, name      the command's tag and name (name as sent; compare
 *                  case-insensitively)
 *   args[nargs]    the arguments in order, lists flattened with brackets
 * After IMAP_PARSE_BAD or IMAP_PARSE_TOO_LONG:
 *   error          static text fit for "<tag> BAD <error>"
 *   has_tag, tag   whether a complete tag was read before the error (else
 *                  answer with "*")
 *   fatal          (TOO_LONG only) a non-synchronizing literal over the
 *                  limit: its bytes are on their way and cannot be told from
 *                  commands; the caller must close the connection
 */
struct imap_parser {
    struct imap_parse_limits limits;
    enum imap_parse_state state;

    struct imap_slice tag, name;
    struct imap_arg args[IMAP_ARGS_MAX];
    unsigned nargs;
    bool has_tag;
    const char *error;
    bool fatal;

    /* work state */
    enum imap_parse_result skip_result; /* what to report at the end of a skipped line */
    size_t line_len;         /* octets of the current line so far */
    size_t used;             /* arena octets used */
    size_t tok;              /* arena offset where the current token starts */
    uint64_t lit_len;        /* literal length being read, then octets left */
    unsigned lit_digits;
    bool lit_nonsync;
    unsigned depth;          /* open lists */
    char arena[IMAP_PARSE_ARENA];
};

/* Set limits and reset. Limits of 0 mean "the arena size". */
void imap_parser_init(struct imap_parser *p, const struct imap_parse_limits *limits);
/* Forget the current command; the next byte starts a new one. */
void imap_parser_reset(struct imap_parser *p);

/*
 * Feed `len` bytes. Returns after consuming all of them (IMAP_PARSE_MORE)
 * or at the end of a command or literal announcement (any other result);
 * *consumed_r says how many were used, the rest belong to what follows.
 * After OK, BAD or TOO_LONG the next feed starts a new command by itself.
 * Empty lines between commands are skipped silently.
 */
enum imap_parse_result imap_parser_feed(struct imap_parser *p, const void *data, size_t len,
                                        size_t *consumed_r);

/* Literal octets still expected (0 when not inside a literal). A caller
   that reads lines should read exactly this many raw octets instead. */
uint64_t imap_parser_literal_left(const struct imap_parser *p);

/* ---- slices ------------------------------------------------------------ */

/* Case-insensitive (ASCII) comparison with a NUL-terminated word. */
bool imap_slice_eq(struct imap_slice s, const char *word);

/* ---- backend responses ------------------------------------------------- */

enum imap_resp_kind {
    IMAP_RESP_UNTAGGED,  /* "* ..." */
    IMAP_RESP_TAGGED,    /* "tag ..." */
    IMAP_RESP_CONT,      /* "+ ..." (or a bare "+") */
};

enum imap_resp_status {
    IMAP_STATUS_NONE,    /* untagged data ("* CAPABILITY ...", "* ID ...") */
    IMAP_STATUS_OK,
    IMAP_STATUS_NO,
    IMAP_STATUS_BAD,
    IMAP_STATUS_PREAUTH,
    IMAP_STATUS_BYE,
};

struct imap_response {
    enum imap_resp_kind kind;
    enum imap_resp_status status;
    struct imap_slice tag;   /* TAGGED only */
    struct imap_slice word;  /* the status word, or the untagged data's first word */
    struct imap_slice code;  /* inside "[...]" after a status word, without brackets; len 0 if none */
    struct imap_slice text;  /* the rest: human text, data arguments, or the continuation */
};

/*
 * Split one response line (without CRLF). A tagged line must carry
 * OK/NO/BAD; untagged lines may be status (OK/NO/BAD/PREAUTH/BYE) or data.
 * Returns IMAP_PARSE_OK or IMAP_PARSE_BAD (garbage, control characters).
 * Slices point into `line`.
 */
enum imap_parse_result imap_response_parse(const char *line, size_t len, struct imap_response *r);

/* The first word of a response code ("CAPABILITY" of "CAPABILITY IMAP4rev1
   ...") and what follows it, space skipped. */
struct imap_slice imap_code_name(struct imap_slice code);
struct imap_slice imap_code_args(struct imap_slice code);

/* ---- capabilities ------------------------------------------------------ */

/* Whether a space-separated capability list holds `cap` (case-insensitive). */
bool imap_caps_has(struct imap_slice caps, const char *cap);

/*
 * The capabilities the gateway announces before login, learned from a
 * backend's pre-login list: IMAP4rev1 first, then what the gateway handles
 * itself before login (SASL-IR, ID, and the backend's LITERAL+ or LITERAL-
 * so that clients keep a truthful promise after login), then the backend's
 * post-login promises that are safe to repeat (IMAP4rev2, ENABLE, IDLE).
 * Everything that depends on this connection (STARTTLS, LOGINDISABLED,
 * AUTH=, LOGIN-REFERRALS) and everything else is dropped: the caller adds
 * its own. Writes a NUL-terminated list; returns its length, or 0 when
 * `outsize` is too small.
 */
size_t imap_caps_prelogin(struct imap_slice backend_caps, char *out, size_t outsize);

/* ---- SASL PLAIN -------------------------------------------------------- */

/*
 * Decode a SASL PLAIN message (RFC 4616), already base64-decoded, with the
 * core's gw_sasl_plain_decode() (gateway/sasl.h: its rules and limits),
 * answering IMAP_PARSE_BAD with IMAP's error texts.
 */
struct imap_sasl_plain {
    struct imap_slice authzid, authcid, passwd;
};
enum imap_parse_result imap_sasl_plain_parse(const unsigned char *data, size_t len,
                                             struct imap_sasl_plain *plain_r,
                                             const char **error_r);

/* ---- ID (RFC 2971) ------------------------------------------------------ */

struct imap_id_pair {
    struct imap_slice field;
    struct imap_slice value;   /* ptr NULL for NIL */
};

/*
 * Check the arguments of an ID command: NIL, or one list of field/value
 * pairs (strings; values may be NIL). Fields over IMAP_ID_FIELD_MAX or values
 * over IMAP_ID_VALUE_MAX octets, or more than IMAP_ID_PAIRS_MAX pairs, are
 * malformed. Writes at most `max` pairs and their count. IMAP_PARSE_OK or
 * IMAP_PARSE_BAD with *error_r.
 */
enum imap_parse_result imap_id_parse(const struct imap_arg *args, unsigned nargs,
                                     struct imap_id_pair *pairs_r, unsigned max,
                                     unsigned *npairs_r, const char **error_r);

/* ---- output helpers ---------------------------------------------------- */

/*
 * Write `in` as an IMAP quoted string (with the quotes) into `out` and
 * NUL-terminate. Returns the length, or 0 when it cannot be quoted (NUL,
 * CR or LF inside: send a literal) or `outsize` is too small.
 */
size_t imap_quote(const char *in, size_t len, char *out, size_t outsize);

/*
 * A login referral URL (RFC 2221, RFC 5092) for `user` from a site's
 * external URL: an imap:// or imaps:// URL keeps its scheme, host and port;
 * any other (https://mail.example.com/owa) gives imap://<host>/ on the
 * standard port. The user name is percent-encoded.
 * "https://mail.b.example/owa", "a b@x" -> "imap://a%20b%40x@mail.b.example/".
 * Returns the length written (NUL-terminated), or 0 when the URL has no
 * host or `outsize` is too small.
 */
size_t imap_referral_url(const char *site_url, const char *user, char *out, size_t outsize);

#endif
