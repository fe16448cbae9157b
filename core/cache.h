/*
 * A bounded LRU map from string keys to fixed-size values with an expiry
 * time, per worker (no locking). Used for verified credentials and
 * directory results.
 */
#ifndef GW_CORE_CACHE_H
#define GW_CORE_CACHE_H

#include <stddef.h>

struct gw_cache;

/* max_entries > 0; value_size bytes are copied in and out. */
struct gw_cache *gw_cache_create(size_t max_entries, size_t value_size);
void gw_cache_destroy(struct gw_cache **cache);
/* Store (replacing any entry for key); evicts the least recently used
   entry when full. */
void gw_cache_put(struct gw_cache *cache, const char *key, const void *value,
                  unsigned long long expires_ms);
/* Returns the value (valid until the next put/remove) and its expiry, or
   NULL. Expired entries are still returned (callers may serve stale data);
   check *expires_r against the clock. A hit makes the entry most recent. */
const void *gw_cache_get(struct gw_cache *cache, const char *key, unsigned long long *expires_r);
void gw_cache_remove(struct gw_cache *cache, const char *key);
size_t gw_cache_count(const struct gw_cache *cache);

#endif
