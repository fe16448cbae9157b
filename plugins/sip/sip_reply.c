/*
 * Building SIP responses (see sip_reply.h).
 */
#include <stdio.h>
#include <string.h>

#include "sip_reply.h"

void sip_out_init(struct sip_out *o, char *buf, size_t cap)
{
    o->buf = buf;
    o->len = 0;
    o->cap = cap;
    o->overflow = false;
}

void sip_out_mem(struct sip_out *o, const void *p, size_t n)
{
    if (o->overflow || n > o->cap - o->len) {
        o->overflow = true;
        return;
    }
    if (n > 0)
        memcpy(o->buf + o->len, p, n);
    o->len += n;
}

void sip_out_str(struct sip_out *o, const char *s)
{
    sip_out_mem(o, s, strlen(s));
}

void sip_out_slice(struct sip_out *o, struct sip_slice s)
{
    sip_out_mem(o, s.ptr, s.len);
}

void sip_out_uint(struct sip_out *o, unsigned long v)
{
    char tmp[24];
    int n = snprintf(tmp, sizeof(tmp), "%lu", v);

    sip_out_mem(o, tmp, (size_t)n);
}

const char *sip_reason(unsigned code)
{
    switch (code) {
    case 100: return "Trying";
    case 200: return "OK";
    case 302: return "Moved Temporarily";
    case 400: return "Bad Request";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 416: return "Unsupported URI Scheme";
    case 420: return "Bad Extension";
    case 480: return "Temporarily Unavailable";
    case 481: return "Call/Transaction Does Not Exist";
    case 487: return "Request Terminated";
    case 500: return "Server Internal Error";
    case 503: return "Service Unavailable";
    case 505: return "Version Not Supported";
    case 513: return "Message Too Large";
    }
    return code < 200 ? "Trying" : code < 300 ? "OK" : code < 400 ? "Redirect"
         : code < 500 ? "Client Error" : code < 600 ? "Server Error" : "Global Failure";
}

void sip_reply_status(struct sip_out *o, unsigned code, const char *reason)
{
    char clean[128];

    sip_out_str(o, "SIP/2.0 ");
    sip_out_uint(o, code);
    sip_out_str(o, " ");
    if (reason == NULL)
        reason = sip_reason(code);
    sip_sanitize(reason, strlen(reason), clean, sizeof(clean));
    sip_out_str(o, clean);
    sip_out_str(o, "\r\n");
}

/* The sent-by host names this address: equal once IPv6 brackets are
   dropped (case-insensitively, for hex digits). */
static bool same_host(struct sip_slice host, const char *addr)
{
    if (host.len >= 2 && host.ptr[0] == '[' && host.ptr[host.len - 1] == ']') {
        host.ptr++;
        host.len -= 2;
    }
    return sip_slice_eq(host, addr);
}

static void top_via(struct sip_out *o, const struct sip_via *v, const char *src_addr,
                    unsigned src_port)
{
    const char *p = v->value.ptr, *end = v->value.ptr + v->value.len;
    bool add_received = !v->has_received && src_addr != NULL &&
                        (v->rport.len > 0 || !same_host(v->host, src_addr));

    sip_out_str(o, "Via: ");
    if (v->rport_empty && src_port != 0 && v->rport.ptr >= p && v->rport.ptr + v->rport.len <= end) {
        const char *after = v->rport.ptr + v->rport.len;

        sip_out_mem(o, p, (size_t)(after - p));
        sip_out_str(o, "=");
        sip_out_uint(o, src_port);
        sip_out_mem(o, after, (size_t)(end - after));
    } else {
        sip_out_slice(o, v->value);
    }
    if (add_received) {
        sip_out_str(o, ";received=");
        sip_out_str(o, src_addr);
    }
    sip_out_str(o, "\r\n");
    if (v->rest.len > 0) {
        sip_out_str(o, "Via: ");
        sip_out_slice(o, v->rest);
        sip_out_str(o, "\r\n");
    }
}

static void field(struct sip_out *o, const char *name, struct sip_slice value)
{
    if (value.ptr == NULL)
        return;
    sip_out_str(o, name);
    sip_out_slice(o, value);
    sip_out_str(o, "\r\n");
}

void sip_reply_head(struct sip_out *o, const struct sip_msg *m, const char *src_addr,
                    unsigned src_port, const char *to_tag)
{
    if (m->nvia > 0) {
        if (m->top_via.value.ptr != NULL)
            top_via(o, &m->top_via, src_addr, src_port);
        else
            field(o, "Via: ", m->via[0]);
    }
    for (unsigned i = 1; i < m->nvia; i++)
        field(o, "Via: ", m->via[i]);
    field(o, "From: ", m->from);
    if (m->to.ptr != NULL) {
        sip_out_str(o, "To: ");
        sip_out_slice(o, m->to);
        if (m->to_tag.len == 0 && to_tag != NULL) {
            sip_out_str(o, ";tag=");
            sip_out_str(o, to_tag);
        }
        sip_out_str(o, "\r\n");
    }
    field(o, "Call-ID: ", m->call_id);
    field(o, "CSeq: ", m->cseq);
}

/* RFC 3261 25.1: user = 1*( unreserved / escaped / user-unreserved ) */
static bool user_char(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c != '\0' && strchr("-_.!~*'()&=+$,;?/", c) != NULL);
}

void sip_reply_contact(struct sip_out *o, const char *user, const char *host, unsigned port,
                       const char *transport, int q)
{
    static const char hex[] = "0123456789ABCDEF";

    sip_out_str(o, "Contact: <sip:");
    for (const unsigned char *u = (const unsigned char *)user; *u != '\0'; u++) {
        if (user_char(*u)) {
            sip_out_mem(o, u, 1);
        } else {
            char esc[3] = {'%', hex[*u >> 4], hex[*u & 15]};
            sip_out_mem(o, esc, 3);
        }
    }
    sip_out_str(o, "@");
    if (strchr(host, ':') != NULL && host[0] != '[') {
        sip_out_str(o, "[");
        sip_out_str(o, host);
        sip_out_str(o, "]");
    } else {
        sip_out_str(o, host);
    }
    if (port != 0) {
        sip_out_str(o, ":");
        sip_out_uint(o, port);
    }
    if (transport != NULL) {
        sip_out_str(o, ";transport=");
        sip_out_str(o, transport);
    }
    sip_out_str(o, ">");
    if (q >= 0) {
        char tmp[16];
        int n;

        if (q >= 1000) {
            n = snprintf(tmp, sizeof(tmp), ";q=1.0");
        } else {
            n = snprintf(tmp, sizeof(tmp), ";q=0.%03d", q);
            /* RFC 3261 qvalue: at most three decimals; drop trailing zeros */
            while (n > 6 && tmp[n - 1] == '0')
                n--;
        }
        sip_out_mem(o, tmp, (size_t)n);
    }
    sip_out_str(o, "\r\n");
}

size_t sip_reply_end(struct sip_out *o, const char *server)
{
    if (server != NULL) {
        sip_out_str(o, "Server: ");
        sip_out_str(o, server);
        sip_out_str(o, "\r\n");
    }
    sip_out_str(o, "Content-Length: 0\r\n\r\n");
    return o->overflow ? 0 : o->len;
}

void sip_reply_tag(unsigned long long hash, char *out)
{
    static const char hex[] = "0123456789abcdef";

    for (int i = SIP_TAG_LEN - 1; i >= 0; i--) {
        out[i] = hex[hash & 15];
        hash >>= 4;
    }
    out[SIP_TAG_LEN] = '\0';
}
