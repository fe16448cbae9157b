/*
 * libFuzzer harness for the SIP parser and response builder
 * (plugins/sip/sip_parse.c, sip_reply.c).
 *
 * One input is used three ways: as a datagram (sip_msg_parse), as a TCP
 * stream cut into pieces whose sizes come from the input itself (sip_frame,
 * then sip_msg_parse on every framed message), and -- when it parses as a
 * request -- through the URI helpers and the response builder, exactly as
 * the plugin does for an INVITE.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../plugins/sip/sip_parse.h"
#include "../../plugins/sip/sip_reply.h"

#define MAX_MESSAGE 8192

static void use_request(const struct sip_msg *m)
{
    static char out[4 * MAX_MESSAGE];
    char key[SIP_KEY_MAX], tag[SIP_TAG_LEN + 1];
    struct sip_slice uri, param;
    struct sip_uri u;
    struct sip_out o;

    if (sip_uri_parse(m->ruri, &u) == SIP_PARSE_OK)
        (void)sip_uri_user_key(&u, key, sizeof(key));
    if (m->diversion.ptr != NULL && sip_name_addr_uri(m->diversion, &uri) == SIP_PARSE_OK &&
        sip_uri_parse(uri, &u) == SIP_PARSE_OK)
        (void)sip_uri_user_key(&u, key, sizeof(key));
    (void)sip_header_param(m->to, "tag", &param);
    sip_reply_tag((uint64_t)m->cseq_num * 2654435761u, tag);
    sip_out_init(&o, out, sizeof(out));
    sip_reply_status(&o, 302, NULL);
    sip_reply_head(&o, m, "192.0.2.1", 5060, tag);
    sip_reply_contact(&o, key, "::1", 5062, "tls", 900);
    (void)sip_reply_end(&o, "gatewayd");
}

static void parse_one(const char *p, size_t n, bool stream)
{
    struct sip_msg m;
    const char *err;

    if (sip_msg_parse(p, n, stream, &m, &err) == SIP_PARSE_OK && m.request)
        use_request(&m);
    else if (m.request && m.top_via.value.ptr != NULL)
        use_request(&m);   /* the plugin answers 400 from a partial parse too */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* An exact-size copy, so ASan sees any read past the end. */
    char *buf = malloc(size > 0 ? size : 1);
    struct sip_framer f;
    size_t start = 0, have = 0, step = 0;

    if (buf == NULL)
        return 0;
    memcpy(buf, data, size);
    parse_one(buf, size, false);

    sip_framer_init(&f);
    while (start < size) {
        struct sip_frame fr;
        const char *err;
        enum sip_parse_result r;

        /* deliver the stream in pieces of 1..16 bytes chosen by the input */
        have += 1 + (size_t)(data[step++ % size] & 15);
        if (start + have > size)
            have = size - start;
        r = sip_frame(&f, buf + start, have, MAX_MESSAGE, &fr, &err);
        if (r == SIP_PARSE_MORE) {
            if (start + have == size)
                break;
            continue;
        }
        if (r != SIP_PARSE_OK)
            break;
        if (fr.ping) {
            start += fr.skip;
        } else {
            size_t mlen = fr.header_len + fr.body_len;

            if (fr.skip + mlen > have) {
                if (start + fr.skip + mlen > size)
                    break;   /* the body never arrives */
                have = fr.skip + mlen;
            }
            parse_one(buf + start + fr.skip, mlen, true);
            start += fr.skip + mlen;
        }
        have = 0;
        sip_framer_init(&f);
    }
    free(buf);
    return 0;
}
