/*
 * TLS with OpenSSL: the transport operations that replace plain recv/send
 * once a handshake is done, and the server and client contexts.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "core.h"

const char *gw_tls_error_string(void)
{
    static char buf[256];
    unsigned long e = ERR_get_error();

    if (e == 0)
        return "no detail";
    ERR_error_string_n(e, buf, sizeof(buf));
    ERR_clear_error();
    return buf;
}

static ssize_t tls_io_result(struct gw_conn *c, int rc)
{
    switch (SSL_get_error(c->ssl, rc)) {
    case SSL_ERROR_WANT_READ:
        c->ssl_want_read = true;
        return GW_IO_AGAIN;
    case SSL_ERROR_WANT_WRITE:
        c->ssl_want_write = true;
        return GW_IO_AGAIN;
    case SSL_ERROR_ZERO_RETURN:
        return 0; /* close_notify: a clean EOF */
    case SSL_ERROR_SYSCALL:
        if (errno == EAGAIN || errno == EINTR)
            return GW_IO_AGAIN;
        ERR_clear_error();
        /* EOF without close_notify: treat as EOF for recv, as the peer is
           gone either way; OpenSSL 3 reports it as SSL_ERROR_SSL. */
        return GW_IO_ERROR;
    default:
        ERR_clear_error();
        return GW_IO_ERROR;
    }
}

static ssize_t tls_recv(struct gw_conn *c, void *buf, size_t len)
{
    int rc;

    c->ssl_want_read = c->ssl_want_write = false;
    ERR_clear_error();
    rc = SSL_read(c->ssl, buf, len > 0x7fffffff ? 0x7fffffff : (int)len);
    if (rc > 0)
        return rc;
    {
        ssize_t r = tls_io_result(c, rc);
        /* Waiting for more ciphertext is the normal state of a reader;
           only a write-wait must be remembered. */
        c->ssl_want_read = false;
        return r;
    }
}

static ssize_t tls_send(struct gw_conn *c, const void *buf, size_t len)
{
    int rc;

    c->ssl_want_read = c->ssl_want_write = false;
    ERR_clear_error();
    rc = SSL_write(c->ssl, buf, len > 0x7fffffff ? 0x7fffffff : (int)len);
    if (rc > 0)
        return rc;
    {
        ssize_t r = tls_io_result(c, rc);
        /* A write waiting for writability is what wio is for. */
        c->ssl_want_write = false;
        return r;
    }
}

const struct gw_transport gw_transport_tls = {"tls", tls_recv, tls_send};

/* ---- server contexts -------------------------------------------------- */

static int ctx_index = -1;

/* SNI: pick the certificate whose names match the requested host. The
   listener's contexts are chained through ex_data: slot 0 holds the array. */
struct sni_set {
    SSL_CTX **ctxs;
    size_t n;
    unsigned char alpn[GW_ALPN_MAX];  /* wire format: length-prefixed ids */
    unsigned alpn_len;
};

/* RFC 7301 3.2: choose one of ours among the client's, or refuse with
   no_application_protocol; a client that offers none is served as before. */
static int alpn_cb(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                   const unsigned char *in, unsigned inlen, void *arg)
{
    const struct sni_set *set = arg;
    unsigned char *sel = NULL;

    (void)ssl;
    if (SSL_select_next_proto(&sel, outlen, set->alpn, set->alpn_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = sel;
    return SSL_TLSEXT_ERR_OK;
}

/* "http/1.1,h2" -> "\x08http/1.1\x02h2". Returns the length, or -1 when an
   id is empty or longer than 255 or the whole does not fit. */
static int alpn_wire(const char *list, unsigned char *out, size_t cap)
{
    size_t n = 0;

    while (*list != '\0') {
        size_t len = strcspn(list, ",");
        if (len == 0 || len > 255 || n + 1 + len > cap)
            return -1;
        out[n++] = (unsigned char)len;
        memcpy(out + n, list, len);
        n += len;
        list += len;
        if (*list == ',')
            list++;
    }
    return (int)n;
}

static int sni_cb(SSL *ssl, int *alert, void *arg)
{
    struct sni_set *set = arg;
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);

    (void)alert;
    if (name == NULL)
        return SSL_TLSEXT_ERR_NOACK;
    for (size_t i = 0; i < set->n; i++) {
        X509 *x = SSL_CTX_get0_certificate(set->ctxs[i]);
        if (x != NULL && X509_check_host(x, name, 0, 0, NULL) == 1) {
            if (i > 0)
                SSL_set_SSL_CTX(ssl, set->ctxs[i]);
            return SSL_TLSEXT_ERR_OK;
        }
    }
    return SSL_TLSEXT_ERR_OK; /* default certificate */
}

static SSL_CTX *one_server_ctx(const struct gw_conf_listener *l, const struct gw_conf_cert *cert,
                               char **error_r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    int minv = TLS1_2_VERSION;

    if (ctx == NULL) {
        *error_r = gw_strfmt("cannot create TLS context: %s", gw_tls_error_string());
        return NULL;
    }
    if (l->tls_min_version != NULL && strcmp(l->tls_min_version, "1.3") == 0)
        minv = TLS1_3_VERSION;
    SSL_CTX_set_min_proto_version(ctx, minv);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_CIPHER_SERVER_PREFERENCE |
                                 SSL_OP_NO_COMPRESSION | SSL_OP_IGNORE_UNEXPECTED_EOF);
    /* Partial writes and moving buffers: the relay retries from another
       buffer than the one first offered. Release buffers of idle sessions. */
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (l->ciphers != NULL && SSL_CTX_set_cipher_list(ctx, l->ciphers) != 1) {
        *error_r = gw_strfmt("invalid cipher list \"%s\"", l->ciphers);
        goto fail;
    }
    if (SSL_CTX_use_certificate_chain_file(ctx, cert->cert_file) != 1) {
        *error_r = gw_strfmt("cannot load certificate %s: %s", cert->cert_file, gw_tls_error_string());
        goto fail;
    }
    if (SSL_CTX_use_PrivateKey_file(ctx, cert->key_file, SSL_FILETYPE_PEM) != 1) {
        *error_r = gw_strfmt("cannot load key %s: %s", cert->key_file, gw_tls_error_string());
        goto fail;
    }
    if (SSL_CTX_check_private_key(ctx) != 1) {
        *error_r = gw_strfmt("key %s does not match certificate %s", cert->key_file, cert->cert_file);
        goto fail;
    }
    if (l->require_client_cert) {
        if (l->client_ca_file == NULL ||
            SSL_CTX_load_verify_locations(ctx, l->client_ca_file, NULL) != 1) {
            *error_r = gw_strfmt("cannot load client CA file %s",
                               l->client_ca_file ? l->client_ca_file : "(none)");
            goto fail;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    }
    return ctx;
fail:
    SSL_CTX_free(ctx);
    return NULL;
}

SSL_CTX *gw_tls_server_ctx_create(const struct gw_conf_listener *l, const char *alpn,
                                  char **error_r)
{
    struct sni_set *set;
    int alpn_len = 0;

    if (l->ncerts == 0) {
        *error_r = gw_strfmt("TLS listener without certificates");
        return NULL;
    }
    set = gw_calloc(1, sizeof(*set));
    if (alpn != NULL && (alpn_len = alpn_wire(alpn, set->alpn, sizeof(set->alpn))) < 0) {
        *error_r = gw_strfmt("plugin ALPN list \"%s\" is invalid", alpn);
        free(set);
        return NULL;
    }
    set->alpn_len = (unsigned)alpn_len;
    set->ctxs = gw_calloc(l->ncerts, sizeof(*set->ctxs));
    for (size_t i = 0; i < l->ncerts; i++) {
        set->ctxs[i] = one_server_ctx(l, &l->certs[i], error_r);
        if (set->ctxs[i] == NULL) {
            for (size_t j = 0; j < i; j++)
                SSL_CTX_free(set->ctxs[j]);
            free(set->ctxs);
            free(set);
            return NULL;
        }
        set->n++;
        /* every context of the set: SNI may switch to any of them */
        if (set->alpn_len > 0)
            SSL_CTX_set_alpn_select_cb(set->ctxs[i], alpn_cb, set);
    }
    if (ctx_index < 0)
        ctx_index = SSL_CTX_get_ex_new_index(0, NULL, NULL, NULL, NULL);
    SSL_CTX_set_ex_data(set->ctxs[0], ctx_index, set);
    if (set->n > 1) {
        SSL_CTX_set_tlsext_servername_callback(set->ctxs[0], sni_cb);
        SSL_CTX_set_tlsext_servername_arg(set->ctxs[0], set);
    }
    return set->ctxs[0];
}

void gw_tls_server_ctx_free(SSL_CTX *ctx)
{
    struct sni_set *set;

    if (ctx == NULL)
        return;
    set = ctx_index >= 0 ? SSL_CTX_get_ex_data(ctx, ctx_index) : NULL;
    if (set == NULL) {
        SSL_CTX_free(ctx);
        return;
    }
    for (size_t i = 0; i < set->n; i++)
        SSL_CTX_free(set->ctxs[i]);
    free(set->ctxs);
    free(set);
}

SSL_CTX *gw_tls_client_ctx_create(const struct gw_config *conf, char **error_r)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

    if (ctx == NULL) {
        *error_r = gw_strfmt("cannot create TLS client context: %s", gw_tls_error_string());
        return NULL;
    }
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    /* A peer that closes without close_notify has still closed. */
    SSL_CTX_set_options(ctx, SSL_OP_IGNORE_UNEXPECTED_EOF | SSL_OP_NO_RENEGOTIATION);
    SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              SSL_MODE_RELEASE_BUFFERS);
    if (conf->upstream_verify) {
        int ok = conf->upstream_ca_file != NULL
                     ? SSL_CTX_load_verify_locations(ctx, conf->upstream_ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
        if (ok != 1) {
            *error_r = gw_strfmt("cannot load CA file %s: %s",
                               conf->upstream_ca_file ? conf->upstream_ca_file : "(system)",
                               gw_tls_error_string());
            SSL_CTX_free(ctx);
            return NULL;
        }
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
    }
    return ctx;
}
