/*
 * SIP parsing: the stream framer, the message parser and URI helpers.
 * Pure (see sip_parse.h): every loop is bounded by the input length, and
 * nothing reads before a slice's start or at its end.
 */
#include <string.h>

#include "sip_parse.h"

const char SIP_ERR_VERSION[] = "Version Not Supported";

/* ---- characters ---------------------------------------------------------- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static bool is_alpha(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static char lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

static bool is_ctl(char c)
{
    return (unsigned char)c < 0x20 || c == 0x7f;
}

/* RFC 3261 25.1 token characters. */
static bool is_token(char c)
{
    return is_alpha(c) || is_digit(c) || (c != '\0' && strchr("-.!%*_+`'~", c) != NULL);
}

static bool is_wsp(char c)
{
    return c == ' ' || c == '\t';
}

bool sip_slice_eq(struct sip_slice s, const char *word)
{
    size_t n = strlen(word);

    if (s.len != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (lower(s.ptr[i]) != lower(word[i]))
            return false;
    }
    return true;
}

static struct sip_slice slice(const char *p, const char *end)
{
    struct sip_slice s = {p, (size_t)(end - p)};
    return s;
}

/* Skip linear white space: blanks, and line ends followed by a blank (a
   folded header line). A line end not followed by a blank is not LWS. */
static const char *skip_lws(const char *p, const char *end)
{
    while (p < end) {
        if (is_wsp(*p)) {
            p++;
        } else if (*p == '\r' && p + 2 < end && p[1] == '\n' && is_wsp(p[2])) {
            p += 3;
        } else if (*p == '\n' && p + 1 < end && is_wsp(p[1])) {
            p += 2;
        } else {
            break;
        }
    }
    return p;
}

/* Trim LWS on both ends. */
static struct sip_slice trim(struct sip_slice s)
{
    const char *p = skip_lws(s.ptr, s.ptr + s.len), *end = s.ptr + s.len;

    while (end > p && (is_wsp(end[-1]) || end[-1] == '\r' || end[-1] == '\n'))
        end--;
    return slice(p, end);
}

/* Past a quoted string starting at p (which is '"'); NULL if unterminated. */
static const char *skip_quoted(const char *p, const char *end)
{
    for (p++; p < end; p++) {
        if (*p == '\\') {
            if (++p >= end)
                return NULL;
        } else if (*p == '"') {
            return p + 1;
        }
    }
    return NULL;
}

/* Decimal digits into *v; at most max_digits; returns the end or NULL. */
static const char *parse_uint(const char *p, const char *end, unsigned max_digits,
                              unsigned long *v)
{
    const char *start = p;

    *v = 0;
    while (p < end && is_digit(*p)) {
        if ((unsigned)(p - start) >= max_digits)
            return NULL;
        *v = *v * 10 + (unsigned long)(*p - '0');
        p++;
    }
    return p == start ? NULL : p;
}

size_t sip_sanitize(const char *in, size_t len, char *out, size_t outsize)
{
    size_t n = len < outsize - 1 ? len : outsize - 1;

    for (size_t i = 0; i < n; i++)
        out[i] = is_ctl(in[i]) ? '?' : in[i];
    out[n] = '\0';
    return n;
}

/* ---- framing ------------------------------------------------------------- */

enum framer_state {
    FR_START,    /* skipping CR/LF before the start line */
    FR_LINES,    /* inside the start line or the headers */
    FR_DONE,     /* header block complete */
};

void sip_framer_init(struct sip_framer *f)
{
    memset(f, 0, sizeof(*f));
    f->state = FR_START;
    f->content_length = -1;
}

/* Header name `name` (case-insensitively) at the start of a line, then
   optional blanks and ':'; returns what follows the colon or NULL. */
static const char *header_is(const char *p, const char *end, const char *name)
{
    size_t n = strlen(name);

    if ((size_t)(end - p) < n)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        if (lower(p[i]) != name[i])
            return NULL;
    }
    p += n;
    while (p < end && is_wsp(*p))
        p++;
    return p < end && *p == ':' ? p + 1 : NULL;
}

/* A Content-Length value on its own line: blanks, digits, blanks. */
static long content_length_value(const char *p, const char *end)
{
    unsigned long v;

    while (p < end && is_wsp(*p))
        p++;
    p = parse_uint(p, end, SIP_CONTENT_LENGTH_DIGITS, &v);
    if (p == NULL)
        return -1;
    while (p < end && is_wsp(*p))
        p++;
    return p == end ? (long)v : -1;
}

static enum sip_parse_result frame_line(struct sip_framer *f, const char *buf, size_t eol,
                                        const char **error_r)
{
    const char *p = buf + f->line_start, *end = buf + eol, *v;
    long cl;

    if (end > p && end[-1] == '\r')
        end--;
    if (p == end) {
        f->header_len = eol + 1 - f->skip;
        f->state = FR_DONE;
        if (f->content_length < 0) {
            *error_r = "Missing Content-Length";
            return SIP_PARSE_BAD;
        }
        return SIP_PARSE_OK;
    }
    if (f->line_start == f->skip)
        return SIP_PARSE_MORE;   /* the start line */
    v = header_is(p, end, "content-length");
    if (v == NULL)
        v = header_is(p, end, "l");
    if (v == NULL)
        return SIP_PARSE_MORE;
    cl = content_length_value(v, end);
    if (cl < 0 || (f->content_length >= 0 && cl != f->content_length)) {
        *error_r = "Bad Content-Length";
        return SIP_PARSE_BAD;
    }
    f->content_length = cl;
    return SIP_PARSE_MORE;
}

enum sip_parse_result sip_frame(struct sip_framer *f, const char *buf, size_t len,
                                size_t max_header, struct sip_frame *frame_r,
                                const char **error_r)
{
    enum sip_parse_result r;

    memset(frame_r, 0, sizeof(*frame_r));
    while (f->state == FR_START && f->pos < len) {
        char c = buf[f->pos];

        if (c != '\r' && c != '\n') {
            f->state = FR_LINES;
            f->skip = f->pos;
            f->line_start = f->pos;
            break;
        }
        f->pos++;
        if (c == '\n' && ++f->line_ends == 2) {
            frame_r->skip = f->pos;
            frame_r->ping = true;
            return SIP_PARSE_OK;
        }
    }
    while (f->state == FR_LINES && f->pos < len) {
        const char *nl = memchr(buf + f->pos, '\n', len - f->pos);
        size_t eol = nl != NULL ? (size_t)(nl - buf) : len;

        if (eol - f->skip >= max_header) {
            *error_r = "Message Too Large";
            return SIP_PARSE_TOO_LONG;
        }
        if (nl == NULL) {
            f->pos = len;
            break;
        }
        f->pos = eol + 1;
        r = frame_line(f, buf, eol, error_r);
        f->line_start = f->pos;
        if (r == SIP_PARSE_BAD)
            return r;
    }
    if (f->state != FR_DONE)
        return SIP_PARSE_MORE;
    if (f->content_length < 0) {
        *error_r = "Missing Content-Length";
        return SIP_PARSE_BAD;
    }
    frame_r->skip = f->skip;
    frame_r->header_len = f->header_len;
    frame_r->body_len = (size_t)f->content_length;
    return SIP_PARSE_OK;
}

/* ---- URIs and header values ---------------------------------------------- */

enum sip_parse_result sip_uri_parse(struct sip_slice s, struct sip_uri *uri_r)
{
    const char *p, *end, *colon, *at, *h;

    memset(uri_r, 0, sizeof(*uri_r));
    if (s.ptr == NULL)
        return SIP_PARSE_BAD;
    p = s.ptr;
    end = p + s.len;
    colon = s.len > 0 ? memchr(p, ':', s.len) : NULL;
    if (colon == NULL || colon == p)
        return SIP_PARSE_BAD;
    for (const char *q = p; q < end; q++) {
        if (is_ctl(*q) || *q == ' ')
            return SIP_PARSE_BAD;
    }
    if (sip_slice_eq(slice(p, colon), "sip"))
        uri_r->scheme = SIP_SCHEME_SIP;
    else if (sip_slice_eq(slice(p, colon), "sips"))
        uri_r->scheme = SIP_SCHEME_SIPS;
    else if (sip_slice_eq(slice(p, colon), "tel"))
        uri_r->scheme = SIP_SCHEME_TEL;
    else
        return SIP_PARSE_OK;
    p = colon + 1;
    if (uri_r->scheme == SIP_SCHEME_TEL) {
        const char *semi = memchr(p, ';', (size_t)(end - p));

        uri_r->user = slice(p, semi != NULL ? semi : end);
        return uri_r->user.len > 0 ? SIP_PARSE_OK : SIP_PARSE_BAD;
    }
    /* Headers ('?') never hold the userinfo; '@' ends it. */
    {
        const char *qm = memchr(p, '?', (size_t)(end - p));
        if (qm != NULL)
            end = qm;
    }
    at = NULL;
    for (const char *q = p; q < end; q++) {
        if (*q == '@')
            at = q;
    }
    h = p;
    if (at != NULL) {
        const char *pw = memchr(p, ':', (size_t)(at - p));

        uri_r->user = slice(p, pw != NULL ? pw : at);
        h = at + 1;
    }
    if (h < end && *h == '[') {
        const char *rb = memchr(h, ']', (size_t)(end - h));

        if (rb == NULL)
            return SIP_PARSE_BAD;
        uri_r->host = slice(h, rb + 1);
    } else {
        const char *q = h;

        while (q < end && *q != ':' && *q != ';')
            q++;
        uri_r->host = slice(h, q);
    }
    return uri_r->host.len > 0 ? SIP_PARSE_OK : SIP_PARSE_BAD;
}

enum sip_parse_result sip_name_addr_uri(struct sip_slice value, struct sip_slice *uri_r)
{
    const char *p, *end, *q;

    if (value.ptr == NULL)
        return SIP_PARSE_BAD;
    p = value.ptr;
    end = p + value.len;
    p = skip_lws(p, end);
    /* name-addr: an optional display name (quoted or tokens), then <uri> */
    for (q = p; q < end; q++) {
        if (*q == '"') {
            q = skip_quoted(q, end);
            if (q == NULL)
                return SIP_PARSE_BAD;
            q--;
        } else if (*q == '<') {
            const char *gt = memchr(q + 1, '>', (size_t)(end - q - 1));

            if (gt == NULL)
                return SIP_PARSE_BAD;
            *uri_r = trim(slice(q + 1, gt));
            return uri_r->len > 0 ? SIP_PARSE_OK : SIP_PARSE_BAD;
        } else if (*q == ',' || *q == ';') {
            break;
        }
    }
    /* addr-spec: the URI runs to the first ';', ',' or blank */
    for (q = p; q < end && *q != ';' && *q != ',' && !is_wsp(*q) && *q != '\r' && *q != '\n';
         q++) {
        if (*q == '"')
            return SIP_PARSE_BAD;
    }
    *uri_r = slice(p, q);
    return uri_r->len > 0 ? SIP_PARSE_OK : SIP_PARSE_BAD;
}

bool sip_header_param(struct sip_slice value, const char *name, struct sip_slice *value_r)
{
    const char *p, *end, *params = NULL;
    bool angle = false;

    if (value.ptr == NULL)
        return false;
    p = value.ptr;
    end = p + value.len;
    /* Find where the header parameters start: after '>' for a name-addr,
       at the first ';' for an addr-spec. */
    for (const char *q = p; q < end; q++) {
        if (*q == '"') {
            q = skip_quoted(q, end);
            if (q == NULL)
                return false;
            q--;
        } else if (*q == '<') {
            angle = true;
            q = memchr(q, '>', (size_t)(end - q));
            if (q == NULL)
                return false;
            params = q + 1;
            break;
        } else if (*q == ';' || *q == ',') {
            break;
        }
    }
    if (!angle)
        params = memchr(p, ';', value.len);
    if (params == NULL)
        return false;
    p = params;
    while (p < end) {
        const char *n, *ne, *v, *ve;

        p = skip_lws(p, end);
        if (p >= end || *p != ';')
            return false;   /* ',' (next value) or junk ends the list */
        p = skip_lws(p + 1, end);
        n = p;
        while (p < end && is_token(*p))
            p++;
        ne = p;
        p = skip_lws(p, end);
        v = ve = p;
        if (p < end && *p == '=') {
            p = skip_lws(p + 1, end);
            v = p;
            if (p < end && *p == '"') {
                p = skip_quoted(p, end);
                if (p == NULL)
                    return false;
            } else {
                while (p < end && (is_token(*p) || *p == ':' || *p == '[' || *p == ']'))
                    p++;
            }
            ve = p;
        }
        if (ne > n && sip_slice_eq(slice(n, ne), name)) {
            *value_r = slice(v, ve);
            return true;
        }
        if (ne == n)
            return false;
    }
    return false;
}

static int hex_val(char c)
{
    if (is_digit(c))
        return c - '0';
    c = lower(c);
    return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

long sip_uri_user_key(const struct sip_uri *uri, char *out, size_t outsize)
{
    const char *p, *end;
    size_t n = 0;

    if (outsize == 0 || uri->user.ptr == NULL || uri->user.len == 0)
        return -1;
    p = uri->user.ptr;
    end = p + uri->user.len;
    if (uri->scheme != SIP_SCHEME_TEL) {
        const char *semi = p != NULL ? memchr(p, ';', uri->user.len) : NULL;
        if (semi != NULL)
            end = semi;
    }
    for (; p < end; p++) {
        char c = *p;

        if (c == '%') {
            int hi, lo;

            if (end - p < 3 || (hi = hex_val(p[1])) < 0 || (lo = hex_val(p[2])) < 0)
                return -1;
            c = (char)(hi * 16 + lo);
            p += 2;
        } else if (uri->scheme == SIP_SCHEME_TEL && strchr("-.()", c) != NULL) {
            continue;
        }
        if (c == '\0' || is_ctl(c) || n + 1 >= outsize)
            return -1;
        out[n++] = c;
    }
    out[n] = '\0';
    return n > 0 ? (long)n : -1;
}

/* ---- messages ------------------------------------------------------------ */

enum sip_method sip_method_from(struct sip_slice s)
{
    static const struct {
        const char *name;
        enum sip_method m;
    } methods[] = {
        {"INVITE", SIP_METHOD_INVITE},   {"ACK", SIP_METHOD_ACK},
        {"CANCEL", SIP_METHOD_CANCEL},   {"OPTIONS", SIP_METHOD_OPTIONS},
        {"BYE", SIP_METHOD_BYE},         {"REGISTER", SIP_METHOD_REGISTER},
    };

    for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
        if (s.len == strlen(methods[i].name) && memcmp(s.ptr, methods[i].name, s.len) == 0)
            return methods[i].m;
    }
    return SIP_METHOD_OTHER;
}

/* "SIP/2.0" case-insensitively; another SIP/x.y is a version error. */
static enum sip_parse_result check_version(struct sip_slice v, const char **error_r)
{
    if (sip_slice_eq(v, "SIP/2.0"))
        return SIP_PARSE_OK;
    if (v.len > 4 && sip_slice_eq(slice(v.ptr, v.ptr + 4), "SIP/")) {
        *error_r = SIP_ERR_VERSION;
        return SIP_PARSE_BAD;
    }
    *error_r = "Bad Start Line";
    return SIP_PARSE_BAD;
}

static enum sip_parse_result parse_start_line(const char *p, const char *end, struct sip_msg *m,
                                              const char **error_r)
{
    const char *sp1, *sp2;

    for (const char *q = p; q < end; q++) {
        if (is_ctl(*q) && *q != '\t') {
            *error_r = "Bad Start Line";
            return SIP_PARSE_BAD;
        }
    }
    sp1 = memchr(p, ' ', (size_t)(end - p));
    if (sp1 == NULL || sp1 == p) {
        *error_r = "Bad Start Line";
        return SIP_PARSE_BAD;
    }
    if (end - p > 4 && sip_slice_eq(slice(p, p + 4), "SIP/")) {
        unsigned long code;
        const char *q;

        m->request = false;
        if (check_version(slice(p, sp1), error_r) != SIP_PARSE_OK)
            return SIP_PARSE_BAD;
        q = parse_uint(sp1 + 1, end, 3, &code);
        if (q == NULL || q - (sp1 + 1) != 3 || code < 100 || (q < end && *q != ' ')) {
            *error_r = "Bad Status Line";
            return SIP_PARSE_BAD;
        }
        m->status = (unsigned)code;
        return SIP_PARSE_OK;
    }
    m->request = true;
    for (const char *q = p; q < sp1; q++) {
        if (!is_token(*q)) {
            *error_r = "Bad Method";
            return SIP_PARSE_BAD;
        }
    }
    m->method_name = slice(p, sp1);
    m->method = sip_method_from(m->method_name);
    sp2 = memchr(sp1 + 1, ' ', (size_t)(end - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1 || memchr(sp2 + 1, ' ', (size_t)(end - sp2 - 1)) != NULL) {
        *error_r = "Bad Request Line";
        return SIP_PARSE_BAD;
    }
    m->ruri = slice(sp1 + 1, sp2);
    return check_version(slice(sp2 + 1, end), error_r);
}

/* via-params after sent-by: ;name[=value] ... up to ',' or the end. */
static enum sip_parse_result parse_via_params(const char *p, const char *end, struct sip_via *v,
                                              const char **error_r)
{
    while (p < end) {
        const char *n, *ne, *val = NULL, *ve = NULL;

        p = skip_lws(p, end);
        if (p >= end)
            break;
        if (*p == ',') {
            v->rest = trim(slice(p + 1, end));
            break;
        }
        if (*p != ';')
            goto bad;
        p = skip_lws(p + 1, end);
        n = p;
        while (p < end && is_token(*p))
            p++;
        ne = p;
        if (ne == n)
            goto bad;
        p = skip_lws(p, end);
        if (p < end && *p == '=') {
            p = skip_lws(p + 1, end);
            val = p;
            if (p < end && *p == '"') {
                p = skip_quoted(p, end);
                if (p == NULL)
                    goto bad;
            } else {
                while (p < end && (is_token(*p) || *p == ':' || *p == '[' || *p == ']'))
                    p++;
            }
            ve = p;
            if (ve == val)
                goto bad;
        }
        if (sip_slice_eq(slice(n, ne), "branch")) {
            if (val == NULL)
                goto bad;
            v->branch = slice(val, ve);
        } else if (sip_slice_eq(slice(n, ne), "rport")) {
            v->rport = slice(n, val != NULL ? ve : ne);
            v->rport_empty = val == NULL;
        } else if (sip_slice_eq(slice(n, ne), "received")) {
            v->has_received = true;
        }
    }
    v->value = trim(slice(v->value.ptr, v->rest.len > 0 ? v->rest.ptr : end));
    if (v->rest.len > 0) {
        /* drop the comma and blanks before it from the first value */
        const char *e = v->value.ptr + v->value.len;
        while (e > v->value.ptr && (e[-1] == ',' || is_wsp(e[-1]) || e[-1] == '\r' ||
                                    e[-1] == '\n'))
            e--;
        v->value.len = (size_t)(e - v->value.ptr);
    }
    return SIP_PARSE_OK;
bad:
    *error_r = "Bad Via";
    return SIP_PARSE_BAD;
}

/* SIP / 2.0 / transport LWS sent-by *(;param) */
static enum sip_parse_result parse_via(struct sip_slice value, struct sip_via *v,
                                       const char **error_r)
{
    const char *p = value.ptr, *end = value.ptr + value.len, *t;
    static const char *const parts[] = {"SIP", "2.0"};

    memset(v, 0, sizeof(*v));
    v->value = value;
    for (size_t i = 0; i < 2; i++) {
        t = p;
        while (p < end && (is_token(*p)))
            p++;
        if (!sip_slice_eq(slice(t, p), parts[i]))
            goto bad;
        p = skip_lws(p, end);
        if (p >= end || *p != '/')
            goto bad;
        p = skip_lws(p + 1, end);
    }
    t = p;
    while (p < end && is_token(*p))
        p++;
    if (p == t)
        goto bad;
    v->transport = slice(t, p);
    if (skip_lws(p, end) == p)
        goto bad;
    p = skip_lws(p, end);
    t = p;
    if (p < end && *p == '[') {
        const char *rb = memchr(p, ']', (size_t)(end - p));

        if (rb == NULL)
            goto bad;
        for (const char *q = p + 1; q < rb; q++) {
            if (!(is_digit(*q) || hex_val(*q) >= 0 || *q == ':' || *q == '.'))
                goto bad;
        }
        p = rb + 1;
    } else {
        while (p < end && (is_alpha(*p) || is_digit(*p) || *p == '-' || *p == '.'))
            p++;
    }
    if (p == t)
        goto bad;
    v->host = slice(t, p);
    p = skip_lws(p, end);
    if (p < end && *p == ':') {
        unsigned long port;

        p = parse_uint(skip_lws(p + 1, end), end, 5, &port);
        if (p == NULL || port == 0 || port > 65535)
            goto bad;
        v->port = (unsigned)port;
    }
    return parse_via_params(p, end, v, error_r);
bad:
    *error_r = "Bad Via";
    return SIP_PARSE_BAD;
}

static enum sip_parse_result parse_cseq(struct sip_msg *m, const char **error_r)
{
    const char *p = m->cseq.ptr, *end = m->cseq.ptr + m->cseq.len, *t;
    unsigned long num;

    p = parse_uint(p, end, 10, &num);
    if (p == NULL || num > SIP_CSEQ_MAX || skip_lws(p, end) == p)
        goto bad;
    p = skip_lws(p, end);
    t = p;
    while (p < end && is_token(*p))
        p++;
    if (p == t || p != end)
        goto bad;
    m->cseq_num = num;
    m->cseq_method_name = slice(t, p);
    m->cseq_method = sip_method_from(m->cseq_method_name);
    return SIP_PARSE_OK;
bad:
    *error_r = "Bad CSeq";
    return SIP_PARSE_BAD;
}

/* Which header a name is (full and compact forms, RFC 3261 7.3.3). */
enum hdr {
    HDR_OTHER, HDR_VIA, HDR_FROM, HDR_TO, HDR_CALL_ID, HDR_CSEQ, HDR_MAX_FORWARDS,
    HDR_CONTENT_LENGTH, HDR_DIVERSION, HDR_REQUIRE,
};

static enum hdr header_kind(struct sip_slice name)
{
    static const struct {
        const char *name;
        enum hdr h;
    } names[] = {
        {"via", HDR_VIA},   {"v", HDR_VIA},       {"from", HDR_FROM},
        {"f", HDR_FROM},    {"to", HDR_TO},       {"t", HDR_TO},
        {"call-id", HDR_CALL_ID}, {"i", HDR_CALL_ID}, {"cseq", HDR_CSEQ},
        {"max-forwards", HDR_MAX_FORWARDS},       {"content-length", HDR_CONTENT_LENGTH},
        {"l", HDR_CONTENT_LENGTH}, {"diversion", HDR_DIVERSION}, {"require", HDR_REQUIRE},
    };

    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (sip_slice_eq(name, names[i].name))
            return names[i].h;
    }
    return HDR_OTHER;
}

static enum sip_parse_result set_once(struct sip_slice *field, struct sip_slice value,
                                      const char *dup_error, const char **error_r)
{
    if (field->ptr != NULL) {
        *error_r = dup_error;
        return SIP_PARSE_BAD;
    }
    *field = value;
    return SIP_PARSE_OK;
}

static enum sip_parse_result header(struct sip_msg *m, struct sip_slice name,
                                    struct sip_slice value, const char **error_r)
{
    unsigned long v;
    const char *q;

    switch (header_kind(name)) {
    case HDR_VIA:
        if (m->nvia == SIP_VIA_MAX) {
            *error_r = "Too Many Via Headers";
            return SIP_PARSE_BAD;
        }
        if (value.len == 0) {
            *error_r = "Bad Via";
            return SIP_PARSE_BAD;
        }
        m->via[m->nvia++] = value;
        return m->nvia == 1 ? parse_via(value, &m->top_via, error_r) : SIP_PARSE_OK;
    case HDR_FROM:
        return set_once(&m->from, value, "Duplicate From", error_r);
    case HDR_TO:
        return set_once(&m->to, value, "Duplicate To", error_r);
    case HDR_CALL_ID:
        if (value.len == 0) {
            *error_r = "Bad Call-ID";
            return SIP_PARSE_BAD;
        }
        for (size_t i = 0; i < value.len; i++) {
            if (is_ctl(value.ptr[i]) || value.ptr[i] == ' ') {
                *error_r = "Bad Call-ID";
                return SIP_PARSE_BAD;
            }
        }
        return set_once(&m->call_id, value, "Duplicate Call-ID", error_r);
    case HDR_CSEQ:
        if (set_once(&m->cseq, value, "Duplicate CSeq", error_r) != SIP_PARSE_OK)
            return SIP_PARSE_BAD;
        return parse_cseq(m, error_r);
    case HDR_MAX_FORWARDS:
        q = parse_uint(value.ptr, value.ptr + value.len, 3, &v);
        if (q == NULL || q != value.ptr + value.len || v > 255) {
            *error_r = "Bad Max-Forwards";
            return SIP_PARSE_BAD;
        }
        m->max_forwards = (long)v;
        return SIP_PARSE_OK;
    case HDR_CONTENT_LENGTH:
        q = parse_uint(value.ptr, value.ptr + value.len, SIP_CONTENT_LENGTH_DIGITS, &v);
        if (q == NULL || q != value.ptr + value.len ||
            (m->content_length >= 0 && (long)v != m->content_length)) {
            *error_r = "Bad Content-Length";
            return SIP_PARSE_BAD;
        }
        m->content_length = (long)v;
        return SIP_PARSE_OK;
    case HDR_DIVERSION:
        if (m->diversion.ptr == NULL)
            m->diversion = value;
        return SIP_PARSE_OK;
    case HDR_REQUIRE:
        if (m->require.ptr == NULL)
            m->require = value;
        return SIP_PARSE_OK;
    case HDR_OTHER:
        break;
    }
    return SIP_PARSE_OK;
}

/* Checks on a request whose headers all parsed. */
static enum sip_parse_result check_request(struct sip_msg *m, const char **error_r)
{
    struct sip_slice uri;

    if (m->nvia == 0) {
        *error_r = "Missing Via";
        return SIP_PARSE_BAD;
    }
    if (m->from.ptr == NULL) {
        *error_r = "Missing From";
        return SIP_PARSE_BAD;
    }
    if (m->to.ptr == NULL) {
        *error_r = "Missing To";
        return SIP_PARSE_BAD;
    }
    if (m->call_id.ptr == NULL) {
        *error_r = "Missing Call-ID";
        return SIP_PARSE_BAD;
    }
    if (m->cseq.ptr == NULL) {
        *error_r = "Missing CSeq";
        return SIP_PARSE_BAD;
    }
    if (m->cseq_method_name.len != m->method_name.len ||
        memcmp(m->cseq_method_name.ptr, m->method_name.ptr, m->method_name.len) != 0) {
        *error_r = "CSeq Method Mismatch";
        return SIP_PARSE_BAD;
    }
    if (sip_name_addr_uri(m->from, &uri) != SIP_PARSE_OK) {
        *error_r = "Bad From";
        return SIP_PARSE_BAD;
    }
    if (sip_name_addr_uri(m->to, &uri) != SIP_PARSE_OK) {
        *error_r = "Bad To";
        return SIP_PARSE_BAD;
    }
    if (m->from_tag.len == 0) {
        *error_r = "Missing From Tag";
        return SIP_PARSE_BAD;
    }
    return SIP_PARSE_OK;
}

enum sip_parse_result sip_msg_parse(const char *buf, size_t len, bool stream,
                                    struct sip_msg *m, const char **error_r)
{
    const char *p = buf, *end = buf + len, *eol;
    const char *first_err = NULL;
    enum sip_parse_result r;

    memset(m, 0, sizeof(*m));
    m->max_forwards = -1;
    m->content_length = -1;
    *error_r = "Bad Request";
    /* RFC 3261 7.5: CRLFs before the start line are ignored. */
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    eol = memchr(p, '\n', (size_t)(end - p));
    if (eol == NULL) {
        *error_r = "Bad Start Line";
        return SIP_PARSE_BAD;
    }
    r = parse_start_line(p, eol > p && eol[-1] == '\r' ? eol - 1 : eol, m, error_r);
    if (r != SIP_PARSE_OK) {
        /* Another SIP version is answered 505: read the headers for it. */
        if (*error_r != SIP_ERR_VERSION || !m->request)
            return r;
        first_err = SIP_ERR_VERSION;
    }
    p = eol + 1;
    /* Header lines, each with its continuation lines, up to the blank
       line. A bad header does not stop the walk: the others are still
       needed to answer 400, and the first error is the one reported. */
    for (;;) {
        const char *line = p, *colon, *ne, *vend;
        const char *err = NULL;

        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL) {
            *error_r = "Incomplete Header";
            return SIP_PARSE_BAD;
        }
        if (eol == p || (eol == p + 1 && *p == '\r')) {
            p = eol + 1;
            break;
        }
        /* extend over folded lines */
        while (eol + 1 < end && is_wsp(eol[1])) {
            eol = memchr(eol + 1, '\n', (size_t)(end - eol - 1));
            if (eol == NULL) {
                *error_r = "Incomplete Header";
                return SIP_PARSE_BAD;
            }
        }
        vend = eol > line && eol[-1] == '\r' ? eol - 1 : eol;
        p = eol + 1;
        if (++m->nheaders > SIP_HEADERS_MAX) {
            *error_r = "Too Many Headers";
            return SIP_PARSE_BAD;
        }
        if (is_wsp(*line))
            err = "Bad Header";   /* a continuation with nothing to continue */
        for (const char *q = line; q < vend && err == NULL; q++) {
            if (*q == '\r' ? !(q + 1 < vend && q[1] == '\n')
                : *q == '\n' ? !(q + 1 < vend && is_wsp(q[1]))
                : is_ctl(*q) && *q != '\t')
                err = "Bad Header";
        }
        ne = line;
        while (ne < vend && is_token(*ne))
            ne++;
        colon = skip_lws(ne, vend);
        if (err == NULL && (ne == line || colon >= vend || *colon != ':'))
            err = "Bad Header";
        if (err == NULL &&
            header(m, slice(line, ne), trim(slice(colon + 1, vend)), &err) == SIP_PARSE_OK)
            err = NULL;
        if (err != NULL && first_err == NULL)
            first_err = err;
    }
    m->header_len = (size_t)(p - buf);
    if (m->request) {
        sip_header_param(m->from, "tag", &m->from_tag);
        sip_header_param(m->to, "tag", &m->to_tag);
    }
    if (first_err != NULL) {
        *error_r = first_err;
        return SIP_PARSE_BAD;
    }
    if (m->content_length < 0) {
        if (stream) {
            *error_r = "Missing Content-Length";
            return SIP_PARSE_BAD;
        }
        m->body = slice(p, end);
    } else if ((size_t)m->content_length > (size_t)(end - p)) {
        *error_r = "Content-Length Larger Than Body";
        return SIP_PARSE_BAD;
    } else {
        m->body = slice(p, p + m->content_length);
    }
    if (!m->request)
        return SIP_PARSE_OK;
    return check_request(m, error_r);
}
