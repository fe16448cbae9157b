/*
 * One log path: a line per event on stderr, with the connection's context
 * (worker, protocol, client address, user, backend) added here so that every
 * plugin's lines read alike. Each line is written with one write(2) so lines
 * from several workers never interleave.
 */
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "core.h"

static enum gw_log_level log_level = GW_LOG_INFO;
static char log_ident[32] = "master";

static const char *const level_names[] = {"error", "warn", "info", "debug"};

void gw_log_init(enum gw_log_level level, const char *ident)
{
    log_level = level;
    if (ident != NULL)
        snprintf(log_ident, sizeof(log_ident), "%s", ident);
}

void gw_log_set_worker(unsigned id)
{
    snprintf(log_ident, sizeof(log_ident), "worker%u", id);
}

bool gw_log_enabled(enum gw_log_level level)
{
    return level <= log_level;
}

size_t gw_log_sanitize(const char *in, size_t len, char *out, size_t outsize)
{
    size_t n;

    if (outsize == 0)
        return 0;
    n = len < outsize - 1 ? len : outsize - 1;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)in[i];
        out[i] = (c < 0x20 || c == 0x7f) ? '?' : (char)c;
    }
    out[n] = '\0';
    return n;
}

void gw_logv(enum gw_log_level level, const struct gw_conn *c, const char *fmt, va_list ap)
{
    char line[2048];
    size_t len = 0;
    struct timeval tv;
    struct tm tm;
    int n;

    if (!gw_log_enabled(level))
        return;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    n = snprintf(line, sizeof(line), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ %-5s %s:", tm.tm_year + 1900,
                 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
                 (int)(tv.tv_usec / 1000), level_names[level], log_ident);
    len = n > 0 ? (size_t)n : 0;
    if (c != NULL) {
        const struct gw_conn *cl = c->client != NULL ? c->client : c;
        /* A client's address is known from its accept; a connection of the
           gateway's own without a client (a health probe) shows none. Not
           gw_conn_peer(): no system call for a log line, and log.c stands
           alone in the fuzz harnesses. */
        n = snprintf(line + len, sizeof(line) - len, " %s %s:%u", c->protocol ? c->protocol : "-",
                     cl->peer_set ? cl->peer.addr : "-", cl->peer_set ? cl->peer.port : 0u);
        len += n > 0 ? (size_t)n : 0;
        if (cl->user != NULL && len + 8 < sizeof(line)) {
            memcpy(line + len, " user=", 6);
            len += 6;
            /* A client must not forge log lines with CR/LF in a user name. */
            len += gw_log_sanitize(cl->user, strlen(cl->user), line + len, sizeof(line) - len);
        }
        if (c->server != NULL && len + 10 < sizeof(line)) {
            n = snprintf(line + len, sizeof(line) - len, " backend=%s", c->server);
            len += n > 0 ? (size_t)n : 0;
        }
        if (len + 2 < sizeof(line)) {
            line[len++] = ':';
        }
    }
    if (len + 1 < sizeof(line)) {
        char msg[1536];
        line[len++] = ' ';
        vsnprintf(msg, sizeof(msg), fmt, ap);
        len += gw_log_sanitize(msg, strlen(msg), line + len, sizeof(line) - len - 1);
    }
    if (len >= sizeof(line) - 1)
        len = sizeof(line) - 2;
    line[len++] = '\n';
    if (write(2, line, len) < 0) {
        /* stderr gone: nothing sensible to do */
    }
}

void gw_log(enum gw_log_level level, const struct gw_conn *c, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    gw_logv(level, c, fmt, ap);
    va_end(ap);
}
