/* Password hash verification on a helper thread (per worker). */
#ifndef GW_CORE_CRYPT_POOL_H
#define GW_CORE_CRYPT_POOL_H

#include <stdbool.h>

struct gw_crypt_job;
typedef void gw_crypt_cb(void *arg, bool ok);

/* Start/stop the worker's hashing thread (after fork, on the worker). */
int gw_crypt_pool_start(void);
void gw_crypt_pool_stop(void);
/* Queue a check of password against a crypt(3) hash; cb runs on the loop.
   Returns NULL when the queue is full (overload: treat as unavailable). */
struct gw_crypt_job *gw_crypt_verify(const char *password, const char *hash, gw_crypt_cb *cb,
                                     void *arg);
/* The callback will not be called; the job is freed when it completes. */
void gw_crypt_cancel(struct gw_crypt_job *job);

#endif
