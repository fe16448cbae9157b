/*
 * Building SIP responses, pure: writes into the caller's buffer, no I/O, no
 * allocation, no core symbols (unit-tested with the parser).
 *
 * A response is assembled in order: sip_reply_status(), sip_reply_head()
 * (the header fields RFC 3261 8.2.6.2 says to copy from the request), any
 * extra header fields, then sip_reply_end(). Writing never overruns: once
 * the buffer is full `overflow` is set and later writes are ignored.
 */
#ifndef SIP_REPLY_H
#define SIP_REPLY_H

#include <stdbool.h>
#include <stddef.h>

#include "sip_parse.h"

/* A response fits easily: copied headers are bounded by the request, which
   is bounded by max_message. */
#define SIP_TAG_LEN 16   /* hex digits of a To-tag we add (64 bits) */

struct sip_out {
    char *buf;
    size_t len, cap;
    bool overflow;
};

void sip_out_init(struct sip_out *o, char *buf, size_t cap);
void sip_out_mem(struct sip_out *o, const void *p, size_t n);
void sip_out_str(struct sip_out *o, const char *s);
void sip_out_slice(struct sip_out *o, struct sip_slice s);
void sip_out_uint(struct sip_out *o, unsigned long v);

/* The standard reason phrase of a status code ("Moved Temporarily"). */
const char *sip_reason(unsigned code);

/* "SIP/2.0 <code> <reason>\r\n"; reason NULL for the standard phrase.
   The reason is sanitized (control characters become '?'). */
void sip_reply_status(struct sip_out *o, unsigned code, const char *reason);

/*
 * The header fields copied from the request: every Via in order, the top
 * one with received= (when the sent-by host is not src_addr, or rport was
 * asked for) and rport=src_port filled in when it was empty (RFC 3261
 * 18.2.1, RFC 3581); From; To, with ";tag=<to_tag>" added when the request's
 * To has no tag and to_tag is not NULL; Call-ID; CSeq. Fields the request
 * lacks are left out (a 400 for a request missing them).
 */
void sip_reply_head(struct sip_out *o, const struct sip_msg *m, const char *src_addr,
                    unsigned src_port, const char *to_tag);

/*
 * "Contact: <sip:USER@HOST:PORT;transport=T>[;q=0.N]\r\n". The user is
 * escaped as RFC 3261 25.1 requires; an IPv6 host is bracketed. `q` in
 * thousandths (1000 = 1.0), or < 0 for none. transport NULL: no parameter.
 */
void sip_reply_contact(struct sip_out *o, const char *user, const char *host, unsigned port,
                       const char *transport, int q);

/* "Server: ..." when server is not NULL, "Content-Length: 0" and the blank
   line. Returns the total length, or 0 if the buffer overflowed. */
size_t sip_reply_end(struct sip_out *o, const char *server);

/* The To-tag for a request's responses, from a 64-bit hash: SIP_TAG_LEN
   lower-case hex digits and a NUL into out (SIP_TAG_LEN + 1 bytes). */
void sip_reply_tag(unsigned long long hash, char *out);

#endif
