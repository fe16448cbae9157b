/* Allocation that never returns NULL, secret wiping, base64. */
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core.h"

static void oom(size_t n)
{
    /* Out of memory: say so and stop rather than limp on with half a state. */
    char msg[96];
    int len = snprintf(msg, sizeof(msg), "gatewayd: out of memory allocating %zu bytes\n", n);
    if (len > 0 && write(2, msg, (size_t)len) < 0) {
        /* nothing more we can do */
    }
    abort();
}

void *gw_malloc(size_t n)
{
    void *p = malloc(n == 0 ? 1 : n);
    if (p == NULL)
        oom(n);
    return p;
}

void *gw_calloc(size_t n, size_t size)
{
    void *p = calloc(n == 0 ? 1 : n, size == 0 ? 1 : size);
    if (p == NULL)
        oom(n * size);
    return p;
}

char *gw_strdup(const char *s)
{
    return gw_strndup(s, strlen(s));
}

char *gw_strndup(const char *s, size_t n)
{
    char *p = gw_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *gw_strfmt(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    int n;

    va_start(ap, fmt);
    n = vasprintf(&s, fmt, ap);
    va_end(ap);
    if (n < 0)
        oom(0);
    return s;
}

void gw_free_secret(char **s)
{
    if (*s == NULL)
        return;
    OPENSSL_cleanse(*s, strlen(*s));
    free(*s);
    *s = NULL;
}

long gw_base64_decode(const char *in, size_t inlen, unsigned char *out, size_t outsize)
{
    EVP_ENCODE_CTX *ctx;
    int n1 = 0, n2 = 0;

    /* EVP_DecodeUpdate tolerates whitespace and needs 3/4 of the input. */
    if (inlen % 4 != 0 || (inlen / 4) * 3 > outsize || inlen > 0x7fffffff)
        return -1;
    for (size_t i = 0; i < inlen; i++) {
        unsigned char ch = (unsigned char)in[i];
        if (!((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
              ch == '+' || ch == '/' || ch == '='))
            return -1;
    }
    ctx = EVP_ENCODE_CTX_new();
    if (ctx == NULL)
        return -1;
    EVP_DecodeInit(ctx);
    if (EVP_DecodeUpdate(ctx, out, &n1, (const unsigned char *)in, (int)inlen) < 0 ||
        EVP_DecodeFinal(ctx, out + n1, &n2) < 0) {
        EVP_ENCODE_CTX_free(ctx);
        return -1;
    }
    EVP_ENCODE_CTX_free(ctx);
    return (long)n1 + n2;
}

long gw_base64_encode(const unsigned char *in, size_t inlen, char *out, size_t outsize)
{
    size_t need = ((inlen + 2) / 3) * 4;

    if (need + 1 > outsize || inlen > 0x3fffffff)
        return -1;
    return (long)EVP_EncodeBlock((unsigned char *)out, in, (int)inlen);
}
