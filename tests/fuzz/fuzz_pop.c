/*
 * libFuzzer harness for the POP3 parser (plugins/pop/pop_parse.c): each
 * input is split into lines as the connection layer would deliver them and
 * every line goes through the command parser, the SASL PLAIN decoder, the
 * status-line parser and the CAPA line parser, which between them see every
 * byte a client or a backend controls.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "../../plugins/pop/pop_parse.h"
#include "gateway/gateway.h"   /* gw_log_sanitize() */

static void one_line(const char *line, size_t len)
{
    struct pop_command cmd;
    struct pop_sasl_plain plain;
    struct pop_status st;
    struct pop_slice name, args;
    const char *err = NULL;
    char clean[300];

    (void)pop_command_parse(line, len, 255, &cmd, &err);
    (void)pop_command_parse(line, len, 8192, &cmd, &err);
    (void)pop_sasl_plain_parse((const unsigned char *)line, len, &plain, &err);
    if (pop_status_parse(line, len, &st) == POP_PARSE_OK)
        (void)pop_status_code_is(&st, "SYS");
    (void)pop_capa_line(line, len, &name, &args);
    (void)gw_log_sanitize(line, len, clean, sizeof(clean));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *p = (const char *)data, *end = p + size;

    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        size_t len = nl != NULL ? (size_t)(nl - p) : (size_t)(end - p);
        size_t l = len;
        if (l > 0 && p[l - 1] == '\r')
            l--;
        one_line(p, l);
        p += len + (nl != NULL ? 1 : 0);
    }
    return 0;
}
