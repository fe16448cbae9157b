/*
 * The PROXY protocol, version 2 (haproxy's proxy-protocol.txt, section 2.2),
 * as a sender: the header that tells a backend listener with `haproxy = yes`
 * (Dovecot) or `accept-proxy` (HAProxy, Postfix...) who the client is.
 */
#include <arpa/inet.h>
#include <string.h>

#include "core.h"

static const unsigned char proxy_v2_sig[12] = {0x0d, 0x0a, 0x0d, 0x0a, 0x00, 0x0d,
                                               0x0a, 0x51, 0x55, 0x49, 0x54, 0x0a};

/* LOCAL: the backend uses the connection's own addresses (health probes, or
   a client and a local address of different families). */
static size_t proxy_v2_local(unsigned char *out)
{
    out[12] = 0x20; /* version 2, LOCAL */
    out[13] = 0x00; /* UNSPEC */
    out[14] = out[15] = 0;
    return 16;
}

size_t gw_proxy_v2_header(const struct gw_peer *src, const struct gw_peer *dst,
                          unsigned char out[GW_PROXY_V2_MAX])
{
    unsigned char a[16], b[16];
    size_t alen;

    memcpy(out, proxy_v2_sig, sizeof(proxy_v2_sig));
    if (src == NULL || dst == NULL)
        return proxy_v2_local(out);
    if (inet_pton(AF_INET, src->addr, a) == 1 && inet_pton(AF_INET, dst->addr, b) == 1) {
        out[13] = 0x11; /* TCP over IPv4 */
        alen = 4;
    } else if (inet_pton(AF_INET6, src->addr, a) == 1 && inet_pton(AF_INET6, dst->addr, b) == 1) {
        out[13] = 0x21; /* TCP over IPv6 */
        alen = 16;
    } else {
        return proxy_v2_local(out);
    }
    out[12] = 0x21; /* version 2, PROXY */
    out[14] = 0;
    out[15] = (unsigned char)(2 * alen + 4);
    memcpy(out + 16, a, alen);
    memcpy(out + 16 + alen, b, alen);
    out[16 + 2 * alen] = (unsigned char)(src->port >> 8);
    out[17 + 2 * alen] = (unsigned char)(src->port & 0xff);
    out[18 + 2 * alen] = (unsigned char)(dst->port >> 8);
    out[19 + 2 * alen] = (unsigned char)(dst->port & 0xff);
    return 20 + 2 * alen;
}
