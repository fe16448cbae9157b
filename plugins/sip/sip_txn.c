/*
 * Server transactions (RFC 3261 17.2), per worker: a hash table keyed by
 * branch, sent-by and method, a creation-order list to evict the oldest
 * when the table is full, and one binary heap of deadlines driving a
 * single worker timer -- a timer per transaction would cost an allocation
 * and a libev watcher each at thousands of calls per second.
 *
 * The hash is SipHash-2-4 under a random secret so that a peer choosing
 * branch values cannot pile every transaction into one chain.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sip.h"

/* ---- SipHash-2-4 -------------------------------------------------------- */

#define ROTL(x, b) (uint64_t)(((x) << (b)) | ((x) >> (64 - (b))))

static uint64_t load64(const unsigned char *p)
{
    uint64_t v = 0;

    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void sip_round(uint64_t v[4])
{
    v[0] += v[1];
    v[1] = ROTL(v[1], 13);
    v[1] ^= v[0];
    v[0] = ROTL(v[0], 32);
    v[2] += v[3];
    v[3] = ROTL(v[3], 16);
    v[3] ^= v[2];
    v[0] += v[3];
    v[3] = ROTL(v[3], 21);
    v[3] ^= v[0];
    v[2] += v[1];
    v[1] = ROTL(v[1], 17);
    v[1] ^= v[2];
    v[2] = ROTL(v[2], 32);
}

uint64_t sip_hash(const struct sip_worker *w, const void *data, size_t len)
{
    const unsigned char *p = data, *k = w->conf->secret;
    uint64_t k0 = load64(k), k1 = load64(k + 8);
    uint64_t v[4] = {k0 ^ 0x736f6d6570736575ULL, k1 ^ 0x646f72616e646f6dULL,
                     k0 ^ 0x6c7967656e657261ULL, k1 ^ 0x7465646279746573ULL};
    uint64_t b = (uint64_t)len << 56, m;
    size_t i;

    for (i = 0; i + 8 <= len; i += 8) {
        m = load64(p + i);
        v[3] ^= m;
        sip_round(v);
        sip_round(v);
        v[0] ^= m;
    }
    for (size_t j = 0; i + j < len; j++)
        b |= (uint64_t)p[i + j] << (8 * j);
    v[3] ^= b;
    sip_round(v);
    sip_round(v);
    v[0] ^= b;
    v[2] ^= 0xff;
    for (int r = 0; r < 4; r++)
        sip_round(v);
    return v[0] ^ v[1] ^ v[2] ^ v[3];
}

/* ---- keys --------------------------------------------------------------- */

static void put(char *out, size_t outsize, size_t *n, const char *p, size_t len)
{
    if (len == 0)
        return;
    if (*n + len > outsize) {
        *n = outsize + 1;   /* mark overflow */
        return;
    }
    memcpy(out + *n, p, len);
    *n += len;
}

size_t sip_txn_key(const struct sip_msg *m, enum sip_method method, char *out, size_t outsize)
{
    const struct sip_via *v = &m->top_via;
    char cls = method == SIP_METHOD_CANCEL ? 'C' : method == SIP_METHOD_INVITE ||
               method == SIP_METHOD_ACK ? 'I' : 'N';
    size_t n = 0;

    if (v->branch.len > 7 && memcmp(v->branch.ptr, "z9hG4bK", 7) == 0) {
        char port[8];
        int pl = snprintf(port, sizeof(port), ":%u|", v->port);

        put(out, outsize, &n, "B", 1);
        put(out, outsize, &n, &cls, 1);
        put(out, outsize, &n, v->branch.ptr, v->branch.len);
        put(out, outsize, &n, "|", 1);
        put(out, outsize, &n, v->host.ptr, v->host.len);
        put(out, outsize, &n, port, (size_t)pl);
    } else {
        /* RFC 2543 peers: Call-ID, CSeq number, From tag and the top Via
           (the To tag of an ACK is ours, so it is not part of the key) */
        char num[16];
        int nl = snprintf(num, sizeof(num), "|%lu|", m->cseq_num);

        put(out, outsize, &n, "C", 1);
        put(out, outsize, &n, &cls, 1);
        put(out, outsize, &n, m->call_id.ptr, m->call_id.len);
        put(out, outsize, &n, num, (size_t)nl);
        put(out, outsize, &n, m->from_tag.ptr, m->from_tag.len);
        put(out, outsize, &n, "|", 1);
        put(out, outsize, &n, v->value.ptr, v->value.len);
    }
    return n > outsize ? 0 : n;
}

/* ---- the deadline heap -------------------------------------------------- */

static void heap_set(struct sip_worker *w, size_t i, struct sip_txn *t)
{
    w->heap[i] = t;
    t->heap_idx = i;
}

static void heap_up(struct sip_worker *w, size_t i)
{
    struct sip_txn *t = w->heap[i];

    while (i > 0) {
        size_t parent = (i - 1) / 2;

        if (w->heap[parent]->deadline <= t->deadline)
            break;
        heap_set(w, i, w->heap[parent]);
        i = parent;
    }
    heap_set(w, i, t);
}

static void heap_down(struct sip_worker *w, size_t i)
{
    struct sip_txn *t = w->heap[i];

    for (;;) {
        size_t c = 2 * i + 1;

        if (c >= w->heap_len)
            break;
        if (c + 1 < w->heap_len && w->heap[c + 1]->deadline < w->heap[c]->deadline)
            c++;
        if (w->heap[c]->deadline >= t->deadline)
            break;
        heap_set(w, i, w->heap[c]);
        i = c;
    }
    heap_set(w, i, t);
}

static void heap_remove(struct sip_worker *w, struct sip_txn *t)
{
    size_t i = t->heap_idx;
    struct sip_txn *last;

    if (i == SIZE_MAX)
        return;
    t->heap_idx = SIZE_MAX;
    last = w->heap[--w->heap_len];
    if (i == w->heap_len)
        return;
    heap_set(w, i, last);
    heap_up(w, i);
    heap_down(w, last->heap_idx);
}

static void heap_push(struct sip_worker *w, struct sip_txn *t)
{
    if (w->heap_len == w->heap_cap) {
        size_t cap = w->heap_cap == 0 ? 256 : w->heap_cap * 2;
        struct sip_txn **h = realloc(w->heap, cap * sizeof(*h));

        if (h == NULL) {
            gw_log(GW_LOG_ERROR, NULL, "sip: out of memory for %zu transaction timers", cap);
            abort();
        }
        w->heap = h;
        w->heap_cap = cap;
    }
    w->heap[w->heap_len] = t;
    t->heap_idx = w->heap_len++;
    heap_up(w, t->heap_idx);
}

/* Keep the one worker timer armed for the earliest deadline. */
static void rearm(struct sip_worker *w)
{
    unsigned long long now = gw_now_ms(), at;

    if (w->heap_len == 0) {
        if (w->timer_at != 0)
            gw_timer_stop(w->timer);
        w->timer_at = 0;
        return;
    }
    at = w->heap[0]->deadline;
    if (at == w->timer_at)
        return;
    w->timer_at = at;
    gw_timer_start(w->timer, at > now ? (long)(at - now) : 1);
}

static void timer_cb(void *arg)
{
    struct sip_worker *w = arg;
    unsigned long long now = gw_now_ms();

    w->timer_at = 0;
    while (w->heap_len > 0 && w->heap[0]->deadline <= now) {
        struct sip_txn *t = w->heap[0];

        heap_remove(w, t);
        t->deadline = 0;
        sip_txn_timeout(w, t);   /* reschedules or destroys t */
    }
    rearm(w);
}

void sip_txn_schedule(struct sip_txn *t, unsigned long long deadline)
{
    struct sip_worker *w = t->w;

    heap_remove(w, t);
    t->deadline = deadline;
    if (deadline != 0)
        heap_push(w, t);
    rearm(w);
}

/* ---- the table ---------------------------------------------------------- */

int sip_txn_table_init(struct sip_worker *w)
{
    size_t n = 64;

    while (n < (size_t)w->conf->max_transactions && n < ((size_t)1 << 24))
        n *= 2;
    w->buckets = gw_calloc(n, sizeof(*w->buckets));
    w->nbuckets = n;
    w->timer = gw_timer_create(timer_cb, w);
    return 0;
}

void sip_txn_table_deinit(struct sip_worker *w)
{
    while (w->oldest != NULL) {
        struct sip_txn *t = w->oldest;
        sip_txn_destroy(&t);
    }
    gw_timer_destroy(&w->timer);
    free(w->buckets);
    free(w->heap);
    w->buckets = NULL;
    w->heap = NULL;
    w->heap_len = w->heap_cap = 0;
}

struct sip_txn *sip_txn_find(struct sip_worker *w, const char *key, size_t keylen)
{
    uint64_t h = sip_hash(w, key, keylen);

    for (struct sip_txn *t = w->buckets[h & (w->nbuckets - 1)]; t != NULL; t = t->hnext) {
        if (t->hash == h && t->keylen == keylen && memcmp(t->key, key, keylen) == 0)
            return t;
    }
    return NULL;
}

struct sip_txn *sip_txn_create(struct sip_worker *w, const char *key, size_t keylen)
{
    struct sip_txn *t;
    size_t b;

    if (w->ntxn >= (size_t)w->conf->max_transactions) {
        /* Evict the oldest transaction that is only waiting for an ACK or
           absorbing retransmissions: forgetting it costs at most a second
           lookup for a late retransmission. One still waiting for its
           lookup must get its answer. */
        struct sip_txn *victim = w->oldest;

        while (victim != NULL && victim->state != SIP_TXN_COMPLETED)
            victim = victim->newer;
        if (victim == NULL)
            return NULL;
        sip_txn_destroy(&victim);
    }
    t = gw_calloc(1, sizeof(*t) + keylen + 1);
    t->w = w;
    t->heap_idx = SIZE_MAX;
    t->hash = sip_hash(w, key, keylen);
    t->keylen = keylen;
    memcpy(t->key, key, keylen);
    b = t->hash & (w->nbuckets - 1);
    t->hnext = w->buckets[b];
    w->buckets[b] = t;
    t->older = w->newest;
    if (w->newest != NULL)
        w->newest->newer = t;
    else
        w->oldest = t;
    w->newest = t;
    w->ntxn++;
    return t;
}

void sip_txn_destroy(struct sip_txn **tp)
{
    struct sip_txn *t = *tp, **pp;
    struct sip_worker *w;

    if (t == NULL)
        return;
    *tp = NULL;
    w = t->w;
    gw_lookup_cancel(&t->lookup);
    sip_stream_txn_unlink(t);
    for (pp = &w->buckets[t->hash & (w->nbuckets - 1)]; *pp != NULL; pp = &(*pp)->hnext) {
        if (*pp == t) {
            *pp = t->hnext;
            break;
        }
    }
    if (t->older != NULL)
        t->older->newer = t->newer;
    else
        w->oldest = t->newer;
    if (t->newer != NULL)
        t->newer->older = t->older;
    else
        w->newest = t->older;
    w->ntxn--;
    if (t->heap_idx != SIZE_MAX) {
        heap_remove(w, t);
        rearm(w);
    }
    free(t->head);
    free(t->resp);
    free(t);
}
