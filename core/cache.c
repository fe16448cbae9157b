#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "core.h"

struct entry {
    struct entry *hnext;           /* hash chain */
    struct entry *lprev, *lnext;   /* LRU list, head = most recent */
    unsigned long long expires;
    unsigned hash;
    char *key;
    unsigned char value[];
};

struct gw_cache {
    struct entry **buckets;
    size_t nbuckets, count, max, value_size;
    struct entry *head, *tail;
};

static unsigned hash_str(const char *s)
{
    /* FNV-1a: keys are user names and digests; adversarial collisions only
       cost a longer chain in a bounded table. */
    unsigned h = 2166136261u;
    for (; *s != '\0'; s++)
        h = (h ^ (unsigned char)*s) * 16777619u;
    return h;
}

struct gw_cache *gw_cache_create(size_t max_entries, size_t value_size)
{
    struct gw_cache *c = gw_calloc(1, sizeof(*c));

    c->max = max_entries > 0 ? max_entries : 1;
    c->nbuckets = 16;
    while (c->nbuckets < c->max && c->nbuckets < (1u << 24))
        c->nbuckets <<= 1;
    c->buckets = gw_calloc(c->nbuckets, sizeof(*c->buckets));
    c->value_size = value_size;
    return c;
}

static void lru_unlink(struct gw_cache *c, struct entry *e)
{
    if (e->lprev != NULL)
        e->lprev->lnext = e->lnext;
    else
        c->head = e->lnext;
    if (e->lnext != NULL)
        e->lnext->lprev = e->lprev;
    else
        c->tail = e->lprev;
    e->lprev = e->lnext = NULL;
}

static void lru_push(struct gw_cache *c, struct entry *e)
{
    e->lnext = c->head;
    e->lprev = NULL;
    if (c->head != NULL)
        c->head->lprev = e;
    c->head = e;
    if (c->tail == NULL)
        c->tail = e;
}

static struct entry **find(struct gw_cache *c, const char *key, unsigned h)
{
    struct entry **pp = &c->buckets[h & (c->nbuckets - 1)];

    for (; *pp != NULL; pp = &(*pp)->hnext)
        if ((*pp)->hash == h && strcmp((*pp)->key, key) == 0)
            return pp;
    return pp;
}

static void entry_free(struct gw_cache *c, struct entry *e)
{
    OPENSSL_cleanse(e->value, c->value_size);
    free(e->key);
    free(e);
}

static void remove_entry(struct gw_cache *c, struct entry **pp)
{
    struct entry *e = *pp;

    *pp = e->hnext;
    lru_unlink(c, e);
    c->count--;
    entry_free(c, e);
}

void gw_cache_put(struct gw_cache *c, const char *key, const void *value, unsigned long long expires)
{
    unsigned h = hash_str(key);
    struct entry **pp = find(c, key, h);
    struct entry *e = *pp;

    if (e != NULL) {
        memcpy(e->value, value, c->value_size);
        e->expires = expires;
        lru_unlink(c, e);
        lru_push(c, e);
        return;
    }
    if (c->count >= c->max && c->tail != NULL) {
        struct entry *old = c->tail;
        remove_entry(c, find(c, old->key, old->hash));
        pp = find(c, key, h); /* the chain may have changed */
    }
    e = gw_calloc(1, sizeof(*e) + c->value_size);
    e->key = gw_strdup(key);
    e->hash = h;
    e->expires = expires;
    memcpy(e->value, value, c->value_size);
    e->hnext = NULL;
    *pp = e;
    lru_push(c, e);
    c->count++;
}

const void *gw_cache_get(struct gw_cache *c, const char *key, unsigned long long *expires_r)
{
    struct entry *e = *find(c, key, hash_str(key));

    if (e == NULL)
        return NULL;
    lru_unlink(c, e);
    lru_push(c, e);
    if (expires_r != NULL)
        *expires_r = e->expires;
    return e->value;
}

void gw_cache_remove(struct gw_cache *c, const char *key)
{
    struct entry **pp = find(c, key, hash_str(key));

    if (*pp != NULL)
        remove_entry(c, pp);
}

size_t gw_cache_count(const struct gw_cache *c)
{
    return c->count;
}

void gw_cache_destroy(struct gw_cache **cp)
{
    struct gw_cache *c = *cp;

    if (c == NULL)
        return;
    while (c->head != NULL) {
        struct entry *e = c->head;
        c->head = e->lnext;
        entry_free(c, e);
    }
    free(c->buckets);
    free(c);
    *cp = NULL;
}
