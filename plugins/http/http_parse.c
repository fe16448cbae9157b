/*
 * HTTP/1.1 parsing, pure (see http_parse.h for the three layers and why
 * they are split between http_parser and our own code).
 */
#include <http_parser.h>
#include <stdio.h>
#include <string.h>

#include "http_parse.h"

/* ---- character classes ------------------------------------------------- */

bool http_is_tchar(unsigned char c)
{
    /* RFC 9110 5.6.2: "!#$%&'*+-.^_`|~" DIGIT ALPHA */
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static unsigned char http_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + 32) : c;
}

static int http_hexval(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = http_lower(c);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

bool http_slice_eq(struct http_slice s, const char *str)
{
    size_t n = strlen(str);

    if (s.ptr == NULL || s.len != n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (http_lower((unsigned char)s.ptr[i]) != http_lower((unsigned char)str[i]))
            return false;
    return true;
}

bool http_slice_case_prefix(struct http_slice s, const char *prefix)
{
    size_t n = strlen(prefix);

    if (s.ptr == NULL || s.len < n)
        return false;
    for (size_t i = 0; i < n; i++)
        if (http_lower((unsigned char)s.ptr[i]) != http_lower((unsigned char)prefix[i]))
            return false;
    return true;
}

static struct http_slice http_trim(const char *p, size_t len)
{
    struct http_slice s;

    while (len > 0 && (p[0] == ' ' || p[0] == '\t')) {
        p++;
        len--;
    }
    while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
        len--;
    s.ptr = p;
    s.len = len;
    return s;
}

/* ---- 1. the head scanner ----------------------------------------------- */

enum http_scan_state {
    SC_LEAD,         /* before the start line: empty lines tolerated (requests) */
    SC_LEAD_LF,      /* CR of such an empty line seen; LF must follow */
    SC_LINE0,        /* in the start line */
    SC_LINE0_LF,     /* CR after the start line seen; LF must follow */
    SC_FIELD_START,  /* first byte of a field line, or of the final empty line */
    SC_NAME,         /* in a field name */
    SC_VALUE,        /* after the colon */
    SC_VALUE_LF,     /* CR after a field value seen; LF must follow */
    SC_END_LF,       /* CR of the final empty line seen; LF must follow */
    SC_DONE,         /* head complete */
    SC_FAILED,       /* reported BAD once; stays so */
};

void http_scan_init(struct http_scan *sc, bool response)
{
    memset(sc, 0, sizeof(*sc));
    sc->response = response;
    sc->state = SC_LEAD;
}

static enum http_parse_result scan_fail(struct http_scan *sc, unsigned status, const char *why,
                                        unsigned *status_r, const char **error_r)
{
    sc->state = SC_FAILED;
    *status_r = status;
    *error_r = why;
    return HTTP_PARSE_BAD;
}

/* A byte allowed in the start line: requests are ASCII visible characters
   and single spaces (the target may not carry raw non-ASCII); a response's
   reason phrase may also hold HT and obs-text. */
static bool line0_byte_ok(const struct http_scan *sc, unsigned char c)
{
    if (c >= 0x21 && c <= 0x7e)
        return true;
    if (c == ' ')
        return true;
    if (sc->response && (c == '\t' || c >= 0x80))
        return true;
    return false;
}

enum http_parse_result http_scan_head(struct http_scan *sc, const char *buf, size_t len,
                                      const struct http_limits *lim, unsigned *status_r,
                                      const char **error_r)
{
    size_t max_headers = lim->max_headers < HTTP_MAX_HEADERS_LIMIT ? lim->max_headers
                                                                   : HTTP_MAX_HEADERS_LIMIT;

    if (sc->state == SC_DONE)
        return HTTP_PARSE_OK;
    if (sc->state == SC_FAILED)
        return scan_fail(sc, 400, "malformed head", status_r, error_r);

    for (; sc->pos < len; sc->pos++) {
        unsigned char c = (unsigned char)buf[sc->pos];

        if (sc->state == SC_LINE0 && c != '\r' && sc->pos - sc->start >= lim->max_line)
            return scan_fail(sc, sc->response ? 502 : 414,
                             sc->response ? "status line too long" : "request line too long",
                             status_r, error_r);
        if (sc->pos >= lim->max_head)
            return scan_fail(sc, 431, "header section too large", status_r, error_r);

        switch ((enum http_scan_state)sc->state) {
        case SC_LEAD:
            if (c == '\r' && !sc->response) {
                if (sc->pos / 2 >= HTTP_LEADING_CRLF_MAX)
                    return scan_fail(sc, 400, "too many empty lines", status_r, error_r);
                sc->state = SC_LEAD_LF;
                break;
            }
            sc->start = sc->pos;
            sc->line_start = sc->pos;
            sc->state = SC_LINE0;
            if (!line0_byte_ok(sc, c) || c == ' ')
                return scan_fail(sc, 400, "invalid start of message", status_r, error_r);
            break;
        case SC_LEAD_LF:
            if (c != '\n')
                return scan_fail(sc, 400, "bare CR", status_r, error_r);
            sc->state = SC_LEAD;
            break;
        case SC_LINE0:
            if (c == '\r') {
                sc->line0_len = sc->pos - sc->start;
                sc->state = SC_LINE0_LF;
                break;
            }
            if (c == '\n')
                return scan_fail(sc, 400, "bare LF in the start line", status_r, error_r);
            if (!line0_byte_ok(sc, c))
                return scan_fail(sc, 400, "invalid character in the start line", status_r,
                                 error_r);
            break;
        case SC_LINE0_LF:
            if (c != '\n')
                return scan_fail(sc, 400, "bare CR in the start line", status_r, error_r);
            sc->state = SC_FIELD_START;
            sc->line_start = sc->pos + 1;
            break;
        case SC_FIELD_START:
            if (c == '\r') {
                sc->state = SC_END_LF;
                break;
            }
            if (c == ' ' || c == '\t')
                return scan_fail(sc, 400, "obsolete line folding", status_r, error_r);
            if (c == ':')
                return scan_fail(sc, 400, "empty field name", status_r, error_r);
            if (c == '\n')
                return scan_fail(sc, 400, "bare LF", status_r, error_r);
            if (!http_is_tchar(c))
                return scan_fail(sc, 400, "invalid character in a field name", status_r,
                                 error_r);
            if (++sc->nheaders > max_headers)
                return scan_fail(sc, 431, "too many header fields", status_r, error_r);
            sc->state = SC_NAME;
            break;
        case SC_NAME:
            if (c == ':') {
                sc->state = SC_VALUE;
                break;
            }
            if (c == ' ' || c == '\t')
                return scan_fail(sc, 400, "whitespace in a field name", status_r, error_r);
            if (!http_is_tchar(c))
                return scan_fail(sc, 400, "invalid character in a field name", status_r,
                                 error_r);
            break;
        case SC_VALUE:
            if (c == '\r') {
                sc->state = SC_VALUE_LF;
                break;
            }
            if (c == '\n')
                return scan_fail(sc, 400, "bare LF", status_r, error_r);
            if (c == '\0')
                return scan_fail(sc, 400, "NUL in a field value", status_r, error_r);
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return scan_fail(sc, 400, "control character in a field value", status_r,
                                 error_r);
            break;
        case SC_VALUE_LF:
            if (c != '\n')
                return scan_fail(sc, 400, "bare CR in a field value", status_r, error_r);
            sc->state = SC_FIELD_START;
            sc->line_start = sc->pos + 1;
            break;
        case SC_END_LF:
            if (c != '\n')
                return scan_fail(sc, 400, "bare CR", status_r, error_r);
            sc->state = SC_DONE;
            sc->pos++;
            return HTTP_PARSE_OK;
        case SC_DONE:
        case SC_FAILED:
            break;
        }
    }
    return HTTP_PARSE_MORE;
}

/* ---- 2. heads ---------------------------------------------------------- */

/* Split the scanned field lines into headers[]. The scanner guarantees
   "name:value CRLF" lines with a token name. */
static size_t split_headers(const char *buf, const struct http_scan *sc,
                            struct http_header *headers, size_t max_headers)
{
    const char *p = buf + sc->start + sc->line0_len + 2;
    const char *end = buf + sc->pos - 2;   /* the final CRLF */
    size_t n = 0;

    while (p < end && n < max_headers) {
        const char *eol = memchr(p, '\r', (size_t)(end - p));
        const char *colon;

        if (eol == NULL)
            eol = end;
        colon = memchr(p, ':', (size_t)(eol - p));
        if (colon == NULL)
            break;   /* cannot happen after the scanner */
        headers[n].name.ptr = p;
        headers[n].name.len = (size_t)(colon - p);
        headers[n].value = http_trim(colon + 1, (size_t)(eol - colon - 1));
        n++;
        p = eol + 2;
    }
    return n;
}

int http_header_find(const struct http_header *h, size_t n, size_t from, const char *name)
{
    for (size_t i = from; i < n; i++)
        if (http_slice_eq(h[i].name, name))
            return (int)i;
    return -1;
}

bool http_list_next(struct http_slice list, size_t *pos, struct http_slice *item_r)
{
    while (*pos < list.len) {
        const char *p = list.ptr + *pos;
        const char *comma = memchr(p, ',', list.len - *pos);
        size_t len = comma != NULL ? (size_t)(comma - p) : list.len - *pos;

        *pos += len + (comma != NULL ? 1 : 0);
        *item_r = http_trim(p, len);
        if (item_r->len > 0)
            return true;
    }
    return false;
}

bool http_list_has(struct http_slice list, const char *token)
{
    struct http_slice item;
    size_t pos = 0;

    while (http_list_next(list, &pos, &item))
        if (http_slice_eq(item, token))
            return true;
    return false;
}

/* Connection tokens of every Connection header. */
static unsigned connection_tokens(const struct http_header *h, size_t n)
{
    unsigned flags = 0;

    for (int i = http_header_find(h, n, 0, "Connection"); i >= 0;
         i = http_header_find(h, n, (size_t)i + 1, "Connection")) {
        struct http_slice item;
        size_t pos = 0;

        while (http_list_next(h[i].value, &pos, &item)) {
            if (http_slice_eq(item, "close"))
                flags |= HTTP_CONN_CLOSE;
            else if (http_slice_eq(item, "keep-alive"))
                flags |= HTTP_CONN_KEEP_ALIVE;
            else if (http_slice_eq(item, "upgrade"))
                flags |= HTTP_CONN_UPGRADE;
            else
                flags |= HTTP_CONN_OTHER;
        }
    }
    return flags;
}

/* Content-Length: exactly one header of 1 to 19 digits (so no overflow). */
static int content_length(const struct http_header *h, size_t n, bool *present_r,
                          uint64_t *len_r, const char **error_r)
{
    int i = http_header_find(h, n, 0, "Content-Length");
    uint64_t v = 0;

    *present_r = i >= 0;
    if (i < 0)
        return 0;
    if (http_header_find(h, n, (size_t)i + 1, "Content-Length") >= 0) {
        *error_r = "repeated Content-Length";
        return -1;
    }
    if (h[i].value.len == 0 || h[i].value.len > 19) {
        *error_r = "invalid Content-Length";
        return -1;
    }
    for (size_t k = 0; k < h[i].value.len; k++) {
        unsigned char c = (unsigned char)h[i].value.ptr[k];
        if (c < '0' || c > '9') {
            *error_r = "invalid Content-Length";
            return -1;
        }
        v = v * 10 + (uint64_t)(c - '0');
    }
    *len_r = v;
    return 0;
}

/* Transfer-Encoding: 0 absent, 1 exactly "chunked" once, -1 anything else
   (*unsupported_r: a well-formed list we do not implement). */
static int transfer_encoding(const struct http_header *h, size_t n, bool *unsupported_r,
                             const char **error_r)
{
    int i = http_header_find(h, n, 0, "Transfer-Encoding");

    *unsupported_r = false;
    if (i < 0)
        return 0;
    if (http_header_find(h, n, (size_t)i + 1, "Transfer-Encoding") >= 0) {
        *error_r = "repeated Transfer-Encoding";
        return -1;
    }
    if (http_slice_eq(h[i].value, "chunked"))
        return 1;
    {
        struct http_slice item;
        size_t pos = 0;
        bool tokens = true, any = false;

        while (http_list_next(h[i].value, &pos, &item)) {
            any = true;
            for (size_t k = 0; k < item.len; k++)
                if (!http_is_tchar((unsigned char)item.ptr[k]))
                    tokens = false;
        }
        *unsupported_r = tokens && any;
    }
    *error_r = *unsupported_r ? "unsupported transfer coding" : "invalid Transfer-Encoding";
    return -1;
}

/* Host: reg-name, IPv4 or IP-literal, optional port. */
static bool host_valid(struct http_slice v)
{
    if (v.len == 0)
        return false;
    for (size_t i = 0; i < v.len; i++) {
        unsigned char c = (unsigned char)v.ptr[i];
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
            continue;
        if (strchr("-._~!$&'()*+,;=:[]%", c) == NULL || c == '\0')
            return false;
    }
    return true;
}

struct http_exec {
    const char *url;
    size_t url_len;
    bool headers_done;
    unsigned method;
    unsigned short major, minor;
    unsigned status;
};

static int exec_on_url(http_parser *p, const char *at, size_t len)
{
    struct http_exec *x = p->data;

    if (x->url == NULL)
        x->url = at;
    x->url_len = (size_t)(at + len - x->url);
    return 0;
}

static int exec_on_headers_complete(http_parser *p)
{
    struct http_exec *x = p->data;

    x->headers_done = true;
    x->method = p->method;
    x->major = p->http_major;
    x->minor = p->http_minor;
    x->status = p->status_code;
    return 0;
}

/* Run http_parser over the head only; its body states are never entered
   with data (bodies are ours). Returns the parser's error. */
static enum http_errno exec_head(enum http_parser_type type, const char *buf, size_t len,
                                 struct http_exec *x)
{
    http_parser_settings settings;
    http_parser parser;
    size_t n;

    http_parser_settings_init(&settings);
    settings.on_url = exec_on_url;
    settings.on_headers_complete = exec_on_headers_complete;
    http_parser_init(&parser, type);
    parser.data = x;
    memset(x, 0, sizeof(*x));
    n = http_parser_execute(&parser, &settings, buf, len);
    if (HTTP_PARSER_ERRNO(&parser) == HPE_OK && (n != len || !x->headers_done))
        return HPE_UNKNOWN;
    return HTTP_PARSER_ERRNO(&parser);
}

static enum http_parse_result req_fail(unsigned status, const char *why, unsigned *status_r,
                                       const char **error_r)
{
    *status_r = status;
    *error_r = why;
    return HTTP_PARSE_BAD;
}

/* "METHOD SP target SP HTTP/d.d", single spaces. */
static bool request_line_shape(const char *line, size_t len, struct http_slice *method_r,
                               struct http_slice *target_r)
{
    const char *sp1 = memchr(line, ' ', len), *sp2;

    if (sp1 == NULL || sp1 == line)
        return false;
    sp2 = memchr(sp1 + 1, ' ', (size_t)(line + len - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1)
        return false;
    if (line + len - sp2 - 1 != 8 || memcmp(sp2 + 1, "HTTP/", 5) != 0 || sp2[6] < '0' ||
        sp2[6] > '9' || sp2[7] != '.' || sp2[8] < '0' || sp2[8] > '9')
        return false;
    for (const char *p = line; p < sp1; p++)
        if (!http_is_tchar((unsigned char)*p))
            return false;
    method_r->ptr = line;
    method_r->len = (size_t)(sp1 - line);
    target_r->ptr = sp1 + 1;
    target_r->len = (size_t)(sp2 - sp1 - 1);
    return true;
}

/* Split the target into path, query and (absolute-form) authority. */
static enum http_parse_result request_target(struct http_request *req, unsigned *status_r,
                                             const char **error_r)
{
    struct http_parser_url u;
    const char *t = req->target.ptr;

    if (req->target.len == 1 && t[0] == '*') {
        if (req->method != HTTP_OPTIONS)
            return req_fail(400, "asterisk-form is for OPTIONS only", status_r, error_r);
        req->path = req->target;
        return HTTP_PARSE_OK;
    }
    if (t[0] != '/' && !http_slice_case_prefix(req->target, "http://") &&
        !http_slice_case_prefix(req->target, "https://"))
        return req_fail(400, "invalid request target", status_r, error_r);
    if (memchr(t, '#', req->target.len) != NULL)
        return req_fail(400, "fragment in the request target", status_r, error_r);
    http_parser_url_init(&u);
    if (req->target.len > UINT16_MAX || http_parser_parse_url(t, req->target.len, 0, &u) != 0)
        return req_fail(400, "invalid request target", status_r, error_r);
    if (t[0] != '/') {
        /* absolute-form: the authority replaces Host (RFC 9112 3.2.2) */
        if ((u.field_set & (1 << UF_HOST)) == 0 || (u.field_set & (1 << UF_USERINFO)) != 0)
            return req_fail(400, "invalid authority in the request target", status_r, error_r);
        req->authority.ptr = t + u.field_data[UF_HOST].off;
        req->authority.len = u.field_data[UF_HOST].len;
        if ((u.field_set & (1 << UF_PORT)) != 0)
            req->authority.len = (size_t)(u.field_data[UF_PORT].off + u.field_data[UF_PORT].len -
                                          u.field_data[UF_HOST].off);
        if (req->authority.ptr > t && req->authority.ptr[-1] == '[') {
            /* IPv6 literal: keep the brackets */
            req->authority.ptr--;
            req->authority.len += (u.field_set & (1 << UF_PORT)) != 0 ? 1 : 2;
            if (req->authority.ptr + req->authority.len > t + req->target.len)
                return req_fail(400, "invalid authority in the request target", status_r,
                                error_r);
        }
        if (!host_valid(req->authority))
            return req_fail(400, "invalid authority in the request target", status_r, error_r);
    }
    if ((u.field_set & (1 << UF_PATH)) != 0) {
        req->path.ptr = t + u.field_data[UF_PATH].off;
        req->path.len = u.field_data[UF_PATH].len;
    } else {
        static const char slash[] = "/";
        req->path.ptr = slash;
        req->path.len = 1;
    }
    if ((u.field_set & (1 << UF_QUERY)) != 0) {
        req->query.ptr = t + u.field_data[UF_QUERY].off;
        req->query.len = u.field_data[UF_QUERY].len;
    } else if (req->path.ptr + req->path.len < t + req->target.len &&
               req->path.ptr[req->path.len] == '?') {
        /* "/path?" : an empty query */
        req->query.ptr = req->path.ptr + req->path.len + 1;
        req->query.len = 0;
    }
    return HTTP_PARSE_OK;
}

enum http_parse_result http_request_parse(const char *buf, const struct http_scan *sc,
                                          struct http_header *headers, size_t max_headers,
                                          struct http_request *req, unsigned *status_r,
                                          const char **error_r)
{
    const char *line = buf + sc->start;
    struct http_exec x;
    enum http_errno err, framing_err = HPE_OK;
    enum http_parse_result r;
    bool has_cl, unsupported;
    int te, i;

    memset(req, 0, sizeof(*req));
    req->host = -1;
    req->headers = headers;
    if (sc->nheaders > max_headers)
        return req_fail(431, "too many header fields", status_r, error_r);
    if (!request_line_shape(line, sc->line0_len, &req->method_name, &req->target))
        return req_fail(400, "malformed request line", status_r, error_r);
    req->nheaders = split_headers(buf, sc, headers, max_headers);

    err = exec_head(HTTP_REQUEST, line, sc->pos - sc->start, &x);
    switch (err) {
    case HPE_OK:
    case HPE_PAUSED:
        break;
    case HPE_INVALID_METHOD:
        /* a token we do not know (request_line_shape checked it is one) */
        return req_fail(501, "method not implemented", status_r, error_r);
    case HPE_UNEXPECTED_CONTENT_LENGTH:
    case HPE_INVALID_CONTENT_LENGTH:
    case HPE_INVALID_TRANSFER_ENCODING:
        /* framing: our own checks below say precisely what is wrong; if
           they find nothing, the parser's verdict stands */
        framing_err = err;
        break;
    case HPE_HEADER_OVERFLOW:
        return req_fail(431, "header section too large", status_r, error_r);
    default:
        return req_fail(400, http_errno_description(err), status_r, error_r);
    }
    if (framing_err != HPE_OK) {
        bool has_cl_, unsupported_;
        uint64_t cl_;
        int te_;

        if (content_length(headers, req->nheaders, &has_cl_, &cl_, error_r) < 0)
            return req_fail(400, *error_r, status_r, error_r);
        te_ = transfer_encoding(headers, req->nheaders, &unsupported_, error_r);
        if (te_ != 0 && has_cl_)
            return req_fail(400, "Content-Length with Transfer-Encoding", status_r, error_r);
        if (te_ < 0)
            return req_fail(unsupported_ ? 501 : 400, *error_r, status_r, error_r);
        return req_fail(400, http_errno_description(framing_err), status_r, error_r);
    }
    req->method = x.method;
    req->version_major = x.major;
    req->version_minor = x.minor;
    if (x.url != NULL && (x.url != req->target.ptr || x.url_len != req->target.len))
        return req_fail(400, "malformed request line", status_r, error_r);
    if (req->version_major != 1)
        return req_fail(req->version_major == 0 ? 400 : 505, "HTTP version not supported",
                        status_r, error_r);
    if (req->version_minor > 1)
        return req_fail(505, "HTTP version not supported", status_r, error_r);
    if (req->method == HTTP_CONNECT)
        return req_fail(501, "CONNECT is not supported", status_r, error_r);
    if (req->method == HTTP_TRACE)
        return req_fail(405, "TRACE is not allowed", status_r, error_r);

    r = request_target(req, status_r, error_r);
    if (r != HTTP_PARSE_OK)
        return r;

    /* Host: exactly one in HTTP/1.1, at most one in 1.0 (RFC 9112 3.2) */
    req->host = http_header_find(headers, req->nheaders, 0, "Host");
    if (req->host >= 0 && http_header_find(headers, req->nheaders, (size_t)req->host + 1, "Host") >= 0)
        return req_fail(400, "repeated Host", status_r, error_r);
    if (req->host < 0 && req->version_minor == 1)
        return req_fail(400, "missing Host", status_r, error_r);
    if (req->host >= 0 && !host_valid(headers[req->host].value))
        return req_fail(400, "invalid Host", status_r, error_r);

    /* framing: RFC 9112 6.1-6.3, and stricter than it allows */
    if (content_length(headers, req->nheaders, &has_cl, &req->content_length, error_r) < 0)
        return req_fail(400, *error_r, status_r, error_r);
    te = transfer_encoding(headers, req->nheaders, &unsupported, error_r);
    if (te != 0 && has_cl)
        return req_fail(400, "Content-Length with Transfer-Encoding", status_r, error_r);
    if (te != 0 && req->version_minor == 0)
        return req_fail(400, "Transfer-Encoding in an HTTP/1.0 request", status_r, error_r);
    if (te < 0)
        return req_fail(unsupported ? 501 : 400, *error_r, status_r, error_r);
    if (te == 1)
        req->body = HTTP_BODY_CHUNKED;
    else if (has_cl && req->content_length > 0)
        req->body = HTTP_BODY_LENGTH;

    req->connection = connection_tokens(headers, req->nheaders);
    if (req->version_minor == 1)
        req->keep_alive = (req->connection & HTTP_CONN_CLOSE) == 0;
    else
        req->keep_alive = (req->connection & HTTP_CONN_KEEP_ALIVE) != 0 &&
                          (req->connection & HTTP_CONN_CLOSE) == 0;

    /* Expect (RFC 9110 10.1.1): ignored in 1.0; only 100-continue known */
    i = http_header_find(headers, req->nheaders, 0, "Expect");
    if (i >= 0 && req->version_minor == 1) {
        if (!http_slice_eq(headers[i].value, "100-continue") ||
            http_header_find(headers, req->nheaders, (size_t)i + 1, "Expect") >= 0)
            return req_fail(417, "unsupported expectation", status_r, error_r);
        req->expect_continue = true;
    }

    /* WebSocket opening handshake (RFC 6455 4.1); other upgrades (h2c)
       are ignored: their headers are hop-by-hop and dropped. */
    i = http_header_find(headers, req->nheaders, 0, "Upgrade");
    if (i >= 0 && (req->connection & HTTP_CONN_UPGRADE) != 0 &&
        http_list_has(headers[i].value, "websocket")) {
        if (req->method != HTTP_GET || req->version_minor != 1)
            return req_fail(400, "WebSocket upgrade needs GET and HTTP/1.1", status_r, error_r);
        if (req->body != HTTP_BODY_NONE)
            return req_fail(400, "WebSocket upgrade with a body", status_r, error_r);
        req->websocket = true;
    }
    return HTTP_PARSE_OK;
}

enum http_parse_result http_response_parse(const char *buf, const struct http_scan *sc,
                                           bool head_request, struct http_header *headers,
                                           size_t max_headers, struct http_response *resp,
                                           const char **error_r)
{
    const char *line = buf + sc->start;
    struct http_exec x;
    enum http_errno err;
    bool unsupported;
    int te;

    memset(resp, 0, sizeof(*resp));
    resp->headers = headers;
    if (sc->nheaders > max_headers) {
        *error_r = "too many header fields";
        return HTTP_PARSE_BAD;
    }
    /* "HTTP/d.d SP 3DIGIT [SP reason]" */
    if (sc->line0_len < 12 || memcmp(line, "HTTP/", 5) != 0 || line[8] != ' ' ||
        (sc->line0_len > 12 && line[12] != ' ')) {
        *error_r = "malformed status line";
        return HTTP_PARSE_BAD;
    }
    resp->nheaders = split_headers(buf, sc, headers, max_headers);
    err = exec_head(HTTP_RESPONSE, line, sc->pos - sc->start, &x);
    if (err != HPE_OK && err != HPE_PAUSED) {
        *error_r = http_errno_description(err);
        return HTTP_PARSE_BAD;
    }
    resp->status = x.status;
    resp->version_major = x.major;
    resp->version_minor = x.minor;
    if (resp->version_major != 1 || resp->version_minor > 1 || resp->status < 100 ||
        resp->status > 599) {
        *error_r = "unsupported version or status";
        return HTTP_PARSE_BAD;
    }
    if (sc->line0_len > 13) {
        resp->reason.ptr = line + 13;
        resp->reason.len = sc->line0_len - 13;
    }
    if (content_length(headers, resp->nheaders, &resp->has_content_length,
                       &resp->content_length, error_r) < 0)
        return HTTP_PARSE_BAD;
    te = transfer_encoding(headers, resp->nheaders, &unsupported, error_r);
    if (te != 0 && resp->has_content_length) {
        *error_r = "Content-Length with Transfer-Encoding";
        return HTTP_PARSE_BAD;
    }
    resp->connection = connection_tokens(headers, resp->nheaders);
    if (head_request || resp->status < 200 || resp->status == 204 || resp->status == 304) {
        resp->body = HTTP_BODY_NONE;
    } else if (te < 0) {
        return HTTP_PARSE_BAD;
    } else if (te == 1) {
        resp->body = HTTP_BODY_CHUNKED;
    } else if (resp->has_content_length) {
        resp->body = resp->content_length > 0 ? HTTP_BODY_LENGTH : HTTP_BODY_NONE;
    } else {
        resp->body = HTTP_BODY_EOF;
    }
    if (resp->version_minor == 1)
        resp->keep_alive = (resp->connection & HTTP_CONN_CLOSE) == 0;
    else
        resp->keep_alive = (resp->connection & HTTP_CONN_KEEP_ALIVE) != 0 &&
                           (resp->connection & HTTP_CONN_CLOSE) == 0;
    if (resp->body == HTTP_BODY_EOF)
        resp->keep_alive = false;
    return HTTP_PARSE_OK;
}

/* ---- 3. chunked bodies ------------------------------------------------- */

enum http_chunk_state {
    CK_SIZE,          /* hex digits of the chunk size */
    CK_SIZE_WS,       /* whitespace after the size: only ';' may follow */
    CK_EXT,           /* chunk extension, up to CR */
    CK_SIZE_LF,       /* CR after the size line seen; LF must follow */
    CK_DATA,          /* chunk data */
    CK_DATA_CR,       /* after the data: CR must follow */
    CK_DATA_LF,       /* CR after the data seen; LF must follow */
    CK_TRAILER_START, /* first byte of a trailer field, or of the final empty line */
    CK_TRAILER_NAME,  /* in a trailer field name */
    CK_TRAILER_VALUE, /* after the colon */
    CK_TRAILER_LF,    /* CR after a trailer field seen; LF must follow */
    CK_END_LF,        /* CR of the final empty line seen; LF must follow */
    CK_DONE,          /* body complete */
    CK_FAILED,        /* reported BAD once; stays so */
};

void http_chunked_init(struct http_chunked *ck)
{
    memset(ck, 0, sizeof(*ck));
    ck->state = CK_SIZE;
}

static enum http_parse_result ck_fail(struct http_chunked *ck, const char *why,
                                      const char **error_r)
{
    ck->state = CK_FAILED;
    *error_r = why;
    return HTTP_PARSE_BAD;
}

enum http_parse_result http_chunked_parse(struct http_chunked *ck, const char *in, size_t len,
                                          size_t *used_r, struct http_slice *data_r,
                                          const char **error_r)
{
    size_t i = 0;

    data_r->ptr = NULL;
    data_r->len = 0;
    *used_r = 0;
    if (ck->state == CK_DONE)
        return HTTP_PARSE_OK;
    if (ck->state == CK_FAILED) {
        *error_r = "malformed chunked body";
        return HTTP_PARSE_BAD;
    }
    while (i < len) {
        unsigned char c = (unsigned char)in[i];
        int hex;

        switch ((enum http_chunk_state)ck->state) {
        case CK_SIZE:
            hex = http_hexval(c);
            if (hex >= 0) {
                if (ck->digits >= 16)
                    return ck_fail(ck, "chunk size too large", error_r);
                ck->remaining = (ck->remaining << 4) | (uint64_t)hex;
                ck->digits++;
                break;
            }
            if (ck->digits == 0)
                return ck_fail(ck, "invalid chunk size", error_r);
            if (c == '\r')
                ck->state = CK_SIZE_LF;
            else if (c == ';')
                ck->state = CK_EXT;
            else if (c == ' ' || c == '\t')
                ck->state = CK_SIZE_WS;
            else
                return ck_fail(ck, "invalid chunk size", error_r);
            break;
        case CK_SIZE_WS:
            if (c == ';')
                ck->state = CK_EXT;
            else if (c != ' ' && c != '\t')
                return ck_fail(ck, "invalid chunk size", error_r);
            break;
        case CK_EXT:
            if (c == '\r') {
                ck->state = CK_SIZE_LF;
                break;
            }
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return ck_fail(ck, "control character in a chunk extension", error_r);
            break;
        case CK_SIZE_LF:
            if (c != '\n')
                return ck_fail(ck, "bare CR after the chunk size", error_r);
            ck->line = 0;
            if (ck->remaining == 0) {
                ck->state = CK_TRAILER_START;
                break;
            }
            ck->state = CK_DATA;
            i++;
            *used_r = i;
            return HTTP_PARSE_MORE;
        case CK_DATA: {
            size_t n = len - i;
            if ((uint64_t)n > ck->remaining)
                n = (size_t)ck->remaining;
            data_r->ptr = in + i;
            data_r->len = n;
            ck->remaining -= n;
            if (ck->remaining == 0)
                ck->state = CK_DATA_CR;
            *used_r = i + n;
            return HTTP_PARSE_MORE;
        }
        case CK_DATA_CR:
            if (c != '\r')
                return ck_fail(ck, "chunk data longer than its size", error_r);
            ck->state = CK_DATA_LF;
            break;
        case CK_DATA_LF:
            if (c != '\n')
                return ck_fail(ck, "bare CR after chunk data", error_r);
            ck->state = CK_SIZE;
            ck->digits = 0;
            ck->remaining = 0;
            ck->line = 0;
            i++;
            continue;   /* the line counter starts with the next size line */
        case CK_TRAILER_START:
            if (c == '\r') {
                ck->state = CK_END_LF;
                break;
            }
            if (c == ' ' || c == '\t')
                return ck_fail(ck, "obsolete line folding in the trailer", error_r);
            if (!http_is_tchar(c))
                return ck_fail(ck, "invalid trailer field", error_r);
            ck->state = CK_TRAILER_NAME;
            break;
        case CK_TRAILER_NAME:
            if (c == ':')
                ck->state = CK_TRAILER_VALUE;
            else if (!http_is_tchar(c))
                return ck_fail(ck, "invalid trailer field", error_r);
            break;
        case CK_TRAILER_VALUE:
            if (c == '\r')
                ck->state = CK_TRAILER_LF;
            else if ((c < 0x20 && c != '\t') || c == 0x7f)
                return ck_fail(ck, "control character in the trailer", error_r);
            break;
        case CK_TRAILER_LF:
            if (c != '\n')
                return ck_fail(ck, "bare CR in the trailer", error_r);
            ck->state = CK_TRAILER_START;
            break;
        case CK_END_LF:
            if (c != '\n')
                return ck_fail(ck, "bare CR after the last chunk", error_r);
            ck->state = CK_DONE;
            *used_r = i + 1;
            return HTTP_PARSE_OK;
        case CK_DONE:
        case CK_FAILED:
            break;
        }
        /* bounds on the framing lines */
        if (ck->state == CK_SIZE || ck->state == CK_SIZE_WS || ck->state == CK_EXT ||
            ck->state == CK_SIZE_LF) {
            if (++ck->line > HTTP_CHUNK_LINE_MAX)
                return ck_fail(ck, "chunk size line too long", error_r);
        } else if (ck->state >= CK_TRAILER_START && ck->state <= CK_END_LF) {
            if (++ck->trailer > HTTP_TRAILER_MAX)
                return ck_fail(ck, "trailer section too large", error_r);
        }
        i++;
    }
    *used_r = i;
    return HTTP_PARSE_MORE;
}

size_t http_chunk_header(char *buf, uint64_t size)
{
    int n = snprintf(buf, HTTP_CHUNK_HEADER_MAX, "%llx\r\n", (unsigned long long)size);

    return n > 0 ? (size_t)n : 0;
}

/* ---- helpers ------------------------------------------------------------ */

bool http_path_ambiguous(struct http_slice path)
{
    const char *p = path.ptr, *end = path.ptr + path.len;

    if (path.len == 0 || p[0] != '/')
        return true;
    for (const char *q = p; q < end; q++) {
        switch (*q) {
        case '\\':
        case ';':
            return true;
        case '%': {
            int hi, lo, v;
            if (end - q < 3)
                return true;
            hi = http_hexval((unsigned char)q[1]);
            lo = http_hexval((unsigned char)q[2]);
            if (hi < 0 || lo < 0)
                return true;
            v = hi * 16 + lo;
            if (v == '.' || v == '/' || v == '\\' || v == '%' || v == ';' || v < 0x20 ||
                v >= 0x7f)
                return true;
            break;
        }
        case '/': {
            /* the segment after this slash: empty, "." or ".." */
            const char *s = q + 1, *e = s;
            while (e < end && *e != '/')
                e++;
            if (e == s && e < end)
                return true;   /* "//" */
            if ((e - s == 1 && s[0] == '.') || (e - s == 2 && s[0] == '.' && s[1] == '.'))
                return true;
            break;
        }
        default:
            break;
        }
    }
    return false;
}

bool http_path_under(struct http_slice path, const char *prefix)
{
    size_t n = strlen(prefix);

    if (n == 0 || http_path_ambiguous(path) || !http_slice_case_prefix(path, prefix))
        return false;
    if (prefix[n - 1] == '/' || path.len == n)
        return true;
    return path.ptr[n] == '/';
}

bool http_query_param(struct http_slice query, const char *name, struct http_slice *value_r)
{
    size_t pos = 0, nlen = strlen(name);

    if (query.ptr == NULL)
        return false;
    while (pos < query.len) {
        const char *p = query.ptr + pos;
        const char *amp = memchr(p, '&', query.len - pos);
        size_t len = amp != NULL ? (size_t)(amp - p) : query.len - pos;
        const char *eq = memchr(p, '=', len);
        struct http_slice key = {p, eq != NULL ? (size_t)(eq - p) : len};

        pos += len + (amp != NULL ? 1 : 0);
        if (key.len == nlen && http_slice_eq(key, name)) {
            value_r->ptr = eq != NULL ? eq + 1 : p + len;
            value_r->len = eq != NULL ? (size_t)(p + len - eq - 1) : 0;
            return true;
        }
    }
    return false;
}

enum http_parse_result http_basic_token(struct http_slice value, struct http_slice *b64_r)
{
    size_t i = 6;

    if (!http_slice_case_prefix(value, "Basic") || value.len < 7 ||
        (value.ptr[5] != ' ' && value.ptr[5] != '\t'))
        return HTTP_PARSE_BAD;
    while (i < value.len && (value.ptr[i] == ' ' || value.ptr[i] == '\t'))
        i++;
    if (i == value.len)
        return HTTP_PARSE_BAD;
    b64_r->ptr = value.ptr + i;
    b64_r->len = value.len - i;
    for (size_t k = 0; k < b64_r->len; k++) {
        unsigned char c = (unsigned char)b64_r->ptr[k];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '+' || c == '/' || c == '='))
            return HTTP_PARSE_BAD;
    }
    return HTTP_PARSE_OK;
}

enum http_parse_result http_basic_split(const char *decoded, size_t len, struct http_slice *user_r,
                                        struct http_slice *password_r, const char **error_r)
{
    const char *colon = memchr(decoded, ':', len);

    if (colon == NULL) {
        *error_r = "no colon in the credentials";
        return HTTP_PARSE_BAD;
    }
    user_r->ptr = decoded;
    user_r->len = (size_t)(colon - decoded);
    password_r->ptr = colon + 1;
    password_r->len = len - user_r->len - 1;
    if (user_r->len == 0) {
        *error_r = "empty user name";
        return HTTP_PARSE_BAD;
    }
    if (user_r->len > HTTP_USER_MAX || password_r->len > HTTP_PASSWORD_MAX) {
        *error_r = "credentials too long";
        return HTTP_PARSE_BAD;
    }
    for (size_t i = 0; i < user_r->len; i++) {
        unsigned char c = (unsigned char)decoded[i];
        if (c < 0x20 || c == 0x7f) {
            *error_r = "control character in the user name";
            return HTTP_PARSE_BAD;
        }
    }
    for (size_t i = 0; i < password_r->len; i++) {
        if (password_r->ptr[i] == '\0') {
            *error_r = "NUL in the password";
            return HTTP_PARSE_BAD;
        }
    }
    return HTTP_PARSE_OK;
}

long http_redirect_url(const char *base, struct http_slice path, struct http_slice query,
                       char *out, size_t outsize)
{
    size_t blen = strlen(base), plen = path.len, need;
    const char *p = path.ptr;

    if (blen > 0 && base[blen - 1] == '/' && plen > 0 && p[0] == '/') {
        p++;
        plen--;
    }
    need = blen + plen + (query.ptr != NULL ? 1 + query.len : 0);
    if (need + 1 > outsize)
        return -1;
    memcpy(out, base, blen);
    memcpy(out + blen, p, plen);
    if (query.ptr != NULL) {
        out[blen + plen] = '?';
        memcpy(out + blen + plen + 1, query.ptr, query.len);
    }
    out[need] = '\0';
    return (long)need;
}

const char *http_status_reason(unsigned status)
{
    switch (status) {
    case 100: return "Continue";
    case 101: return "Switching Protocols";
    case 200: return "OK";
    case 204: return "No Content";
    case 301: return "Moved Permanently";
    case 302: return "Found";
    case 304: return "Not Modified";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 403: return "Forbidden";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 411: return "Length Required";
    case 413: return "Content Too Large";
    case 414: return "URI Too Long";
    case 417: return "Expectation Failed";
    case 429: return "Too Many Requests";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 502: return "Bad Gateway";
    case 503: return "Service Unavailable";
    case 504: return "Gateway Timeout";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
    }
}

bool http_hop_by_hop(struct http_slice name)
{
    static const char *const hop[] = {"Connection", "Keep-Alive", "Proxy-Connection", "TE",
                                      "Trailer", "Transfer-Encoding", "Upgrade"};

    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (http_slice_eq(name, hop[i]))
            return true;
    return false;
}
