/*
 * Who may talk to the redirect server: the trusted_peers allowlist (session
 * border controllers, PBXs) and a per-source request rate limit, both
 * checked before a byte of the message is parsed.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "sip.h"

static int cidr_parse(const char *s, size_t n, struct sip_cidr *c)
{
    char tmp[64];
    char *slash;
    unsigned long bits;

    if (n == 0 || n >= sizeof(tmp))
        return -1;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    slash = strchr(tmp, '/');
    if (slash != NULL)
        *slash = '\0';
    memset(c, 0, sizeof(*c));
    if (inet_pton(AF_INET, tmp, c->addr) == 1) {
        c->family = AF_INET;
        bits = 32;
    } else if (inet_pton(AF_INET6, tmp, c->addr) == 1) {
        c->family = AF_INET6;
        bits = 128;
    } else {
        return -1;
    }
    if (slash != NULL) {
        char *end;
        unsigned long b = strtoul(slash + 1, &end, 10);

        if (slash[1] == '\0' || *end != '\0' || b > bits)
            return -1;
        bits = b;
    }
    c->bits = (unsigned)bits;
    return 0;
}

int sip_trusted_parse(struct sip_conf *conf, const char *list, const char **error_r)
{
    const char *p = list;

    conf->ntrusted = 0;
    while (*p != '\0') {
        const char *start;

        while (*p == ' ' || *p == '\t' || *p == ',')
            p++;
        if (*p == '\0')
            break;
        start = p;
        while (*p != '\0' && *p != ',' && *p != ' ' && *p != '\t')
            p++;
        if (conf->ntrusted == SIP_TRUSTED_MAX) {
            *error_r = "protocols.sip.trusted_peers: more than 64 networks";
            return -1;
        }
        if (cidr_parse(start, (size_t)(p - start), &conf->trusted[conf->ntrusted]) < 0) {
            *error_r = "protocols.sip.trusted_peers: expected addresses or networks like "
                       "10.0.0.0/8 or 2001:db8::/32, separated by commas";
            return -1;
        }
        conf->ntrusted++;
    }
    if (conf->ntrusted == 0) {
        *error_r = "protocols.sip.trusted_peers: empty (leave it unset to trust everyone)";
        return -1;
    }
    return 0;
}

static bool prefix_match(const unsigned char *a, const unsigned char *b, unsigned bits)
{
    unsigned full = bits / 8, rest = bits % 8;

    if (memcmp(a, b, full) != 0)
        return false;
    if (rest == 0)
        return true;
    return ((a[full] ^ b[full]) & (0xff << (8 - rest))) == 0;
}

/* A textual address as bytes; an IPv4-mapped IPv6 address counts as IPv4. */
static int addr_bytes(const char *addr, unsigned char out[16])
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

    memset(out, 0, 16);
    if (inet_pton(AF_INET, addr, out) == 1)
        return AF_INET;
    if (inet_pton(AF_INET6, addr, out) != 1)
        return -1;
    if (memcmp(out, mapped, sizeof(mapped)) == 0) {
        memmove(out, out + 12, 4);
        memset(out + 4, 0, 12);
        return AF_INET;
    }
    return AF_INET6;
}

bool sip_peer_trusted(const struct sip_conf *conf, const char *addr)
{
    unsigned char a[16];
    int family;

    if (conf->ntrusted == 0)
        return true;
    family = addr_bytes(addr, a);
    for (unsigned i = 0; i < conf->ntrusted; i++) {
        const struct sip_cidr *c = &conf->trusted[i];

        if (c->family == family && prefix_match(a, c->addr, c->bits))
            return true;
    }
    return false;
}

/* A fixed table probed from the address hash: a flood from many addresses
   reuses the slots of sources not seen this second instead of growing. */
bool sip_rate_ok(struct sip_worker *w, const char *addr)
{
    unsigned long long now = gw_now_ms() / 1000;
    struct sip_rate_slot *victim = NULL;
    unsigned char a[16];
    int family;
    uint64_t h;

    if (w->conf->rate_limit <= 0 || w->rates == NULL)
        return true;
    family = addr_bytes(addr, a);
    h = sip_hash(w, a, sizeof(a));
    for (unsigned i = 0; i < SIP_RATE_PROBE; i++) {
        struct sip_rate_slot *s = &w->rates[(h + i) & (SIP_RATE_SLOTS - 1)];

        if (s->family == family && memcmp(s->addr, a, sizeof(a)) == 0) {
            if (s->second != now) {
                s->second = now;
                s->count = 0;
            }
            return ++s->count <= (unsigned long)w->conf->rate_limit;
        }
        if (victim == NULL || s->second < victim->second)
            victim = s;
    }
    if (victim->second == now && victim->family != 0) {
        /* every probed slot is busy this second: the source is not counted
           (a spread flood), which errs on the side of serving */
        return true;
    }
    victim->family = family;
    memcpy(victim->addr, a, sizeof(a));
    victim->second = now;
    victim->count = 1;
    return 1 <= w->conf->rate_limit;
}
