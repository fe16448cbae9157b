/*
 * POP3 parsing, pure: bytes in, tokens out. No I/O, no logging, no
 * allocation, and of the core only the pure SASL PLAIN decoder
 * (gateway/sasl.h, core/sasl.c) -- so unit tests and fuzzers call it
 * directly.
 *
 * The parser is line-based, not byte-resumable: the connection layer
 * (gw_conn_read_line) already frames lines, with its own hard limit, and
 * hands over one complete line without its CRLF. Every result points into
 * the caller's input; nothing here is NUL-terminated unless it says so.
 *
 * References: RFC 1939 (POP3), RFC 2449 (CAPA, RESP-CODES, line lengths),
 * RFC 3206 (AUTH and SYS response codes), RFC 4616 (SASL PLAIN),
 * RFC 5034 (POP3 SASL).
 */
#ifndef POP_PARSE_H
#define POP_PARSE_H

#include <stdbool.h>
#include <stddef.h>

#include "gateway/sasl.h"

/* RFC 1939: keywords are three or four characters. */
#define POP_KEYWORD_MAX 4
/* No POP3 command takes more than two arguments (TOP msg n, APOP name digest). */
#define POP_CMD_ARGS_MAX 2
/* RFC 2449: a command line is at most 255 octets including its CRLF. */
#define POP_LINE_MAX_RFC 255
/* SASL PLAIN limits: the core's (gateway/sasl.h). */
#define POP_SASL_ID_MAX GW_SASL_PLAIN_ID_MAX
#define POP_SASL_PASSWD_MAX GW_SASL_PLAIN_PASSWD_MAX

enum pop_parse_result {
    POP_PARSE_OK,
    POP_PARSE_BAD,       /* malformed; *error_r (static) says why, fit for "-ERR <why>" */
    POP_PARSE_TOO_LONG,  /* longer than the caller's limit */
    POP_PARSE_UNKNOWN,   /* well-formed, but not a command we know */
};

enum pop_cmd {
    /* AUTHORIZATION state */
    POP_CMD_USER,
    POP_CMD_PASS,
    POP_CMD_APOP,
    POP_CMD_AUTH,
    POP_CMD_CAPA,
    POP_CMD_STLS,
    POP_CMD_QUIT,
    /* TRANSACTION state: recognised so that they get "not logged in" */
    POP_CMD_NOOP,
    POP_CMD_STAT,
    POP_CMD_LIST,
    POP_CMD_RETR,
    POP_CMD_DELE,
    POP_CMD_RSET,
    POP_CMD_TOP,
    POP_CMD_UIDL,

    POP_CMD_COUNT
};

/* A run of bytes inside the caller's buffer. */
struct pop_slice {
    const char *ptr;
    size_t len;
};

struct pop_command {
    enum pop_cmd cmd;
    unsigned nargs;
    struct pop_slice args[POP_CMD_ARGS_MAX];
};

/*
 * Split one command line (without CRLF) into keyword and arguments.
 *
 * `max_len` counts the CRLF, as RFC 2449 does: a line of len + 2 > max_len
 * octets is POP_PARSE_TOO_LONG. Keywords are matched case-insensitively.
 * Arguments are separated by exactly one space; an empty argument (double
 * or trailing space) is malformed. PASS is the exception (RFC 1939 errata):
 * everything after "PASS " is the one argument, spaces included. Control
 * characters (NUL, CR, LF, other < 0x20, DEL) anywhere are malformed; octets
 * >= 0x80 are allowed in arguments (UTF-8 passwords and user names).
 * On POP_PARSE_OK, *cmd_r holds slices into `line`.
 */
enum pop_parse_result pop_command_parse(const char *line, size_t len, size_t max_len,
                                        struct pop_command *cmd_r, const char **error_r);

/* The canonical upper-case keyword of a command ("USER"). */
const char *pop_cmd_name(enum pop_cmd cmd);

/*
 * Decode a SASL PLAIN message (RFC 4616), already base64-decoded, with the
 * core's gw_sasl_plain_decode() (gateway/sasl.h: its rules and limits),
 * answering with POP3's error texts: POP_PARSE_TOO_LONG for a field over
 * its limit, POP_PARSE_BAD for the rest.
 */
struct pop_sasl_plain {
    struct pop_slice authzid;
    struct pop_slice authcid;
    struct pop_slice passwd;
};
enum pop_parse_result pop_sasl_plain_parse(const unsigned char *data, size_t len,
                                           struct pop_sasl_plain *plain_r, const char **error_r);

/*
 * A server status line: "+OK [text]", "-ERR [text]", or a SASL
 * continuation "+ [base64]" (RFC 5034; a bare "+" is accepted too).
 * On +OK/-ERR a leading RFC 2449 response code "[SYS/TEMP]" is split off
 * into `code` (without brackets); a malformed code is left in `text`.
 * Anything else is POP_PARSE_BAD.
 */
enum pop_status_kind {
    POP_STATUS_OK,
    POP_STATUS_ERR,
    POP_STATUS_CONT,
};
struct pop_status {
    enum pop_status_kind kind;
    struct pop_slice code;   /* "AUTH", "SYS/TEMP"; len 0 when absent */
    struct pop_slice text;   /* after the indicator and code, leading space skipped */
};
enum pop_parse_result pop_status_parse(const char *line, size_t len, struct pop_status *status_r);

/* Whether the response code's first level is `level`, case-insensitively:
   pop_status_code_is(st, "SYS") is true for "[SYS/TEMP]". */
bool pop_status_code_is(const struct pop_status *st, const char *level);

/*
 * One line of a multi-line CAPA response (RFC 2449). Returns true when the
 * line is the terminating "."; otherwise unstuffs a leading dot and sets
 * *name_r to the capability name (the first word) and *args_r to the rest.
 */
bool pop_capa_line(const char *line, size_t len, struct pop_slice *name_r,
                   struct pop_slice *args_r);

/* Case-insensitive comparison of a slice with a NUL-terminated word. */
bool pop_slice_eq(struct pop_slice s, const char *word);

#endif
