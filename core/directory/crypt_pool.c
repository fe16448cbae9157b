/*
 * Password hash verification off the event loop.
 *
 * crypt(3) is deliberately slow (sha512crypt ~1 ms, yescrypt tens of ms):
 * run on the loop it would stall every session of the worker. One thread
 * per worker takes jobs from a queue and hands results back through an
 * ev_async; the loop thread owns every job before and after.
 */
#include <crypt.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "../core.h"
#include "crypt_pool.h"

#define GW_CRYPT_QUEUE_MAX 4096  /* jobs waiting; beyond this, refuse (overload) */

struct gw_crypt_job {
    struct gw_crypt_job *next;
    char *password;
    char *hash;
    bool ok, cancelled;
    gw_crypt_cb *cb;
    void *arg;
};

static pthread_t thread;
static pthread_mutex_t mtx = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static struct gw_crypt_job *todo_head, *todo_tail, *done_head;
static size_t queued;
static bool running, quit;
static ev_async done_async;

static void job_free(struct gw_crypt_job *j)
{
    gw_free_secret(&j->password);
    free(j->hash);
    free(j);
}

static void *crypt_thread(void *arg)
{
    struct crypt_data *cd = gw_calloc(1, sizeof(*cd));

    (void)arg;
    pthread_mutex_lock(&mtx);
    for (;;) {
        struct gw_crypt_job *j;

        while (todo_head == NULL && !quit)
            pthread_cond_wait(&cond, &mtx);
        if (quit)
            break;
        j = todo_head;
        todo_head = j->next;
        if (todo_head == NULL)
            todo_tail = NULL;
        pthread_mutex_unlock(&mtx);

        {
            const char *h = crypt_r(j->password, j->hash, cd);
            size_t hl = strlen(j->hash);
            /* crypt_r returns "*0"/"*1" or NULL on failure: never equal. */
            j->ok = h != NULL && h[0] != '*' && strlen(h) == hl && CRYPTO_memcmp(h, j->hash, hl) == 0;
            OPENSSL_cleanse(cd, sizeof(*cd));
        }

        pthread_mutex_lock(&mtx);
        j->next = done_head;
        done_head = j;
        ev_async_send(gw_w.loop, &done_async);
    }
    pthread_mutex_unlock(&mtx);
    free(cd);
    return NULL;
}

static void done_cb(struct ev_loop *loop, ev_async *w, int revents)
{
    struct gw_crypt_job *list;

    (void)loop;
    (void)w;
    (void)revents;
    pthread_mutex_lock(&mtx);
    list = done_head;
    done_head = NULL;
    pthread_mutex_unlock(&mtx);
    while (list != NULL) {
        struct gw_crypt_job *j = list;
        list = j->next;
        queued--;
        if (!j->cancelled)
            j->cb(j->arg, j->ok);
        job_free(j);
    }
}

int gw_crypt_pool_start(void)
{
    if (running)
        return 0;
    ev_async_init(&done_async, done_cb);
    ev_async_start(gw_w.loop, &done_async);
    /* The loop must not wait on this watcher alone at shutdown. */
    ev_unref(gw_w.loop);
    quit = false;
    if (pthread_create(&thread, NULL, crypt_thread, NULL) != 0)
        return -1;
    running = true;
    return 0;
}

void gw_crypt_pool_stop(void)
{
    if (!running)
        return;
    pthread_mutex_lock(&mtx);
    quit = true;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mtx);
    pthread_join(thread, NULL);
    running = false;
    ev_ref(gw_w.loop);
    ev_async_stop(gw_w.loop, &done_async);
    while (todo_head != NULL) {
        struct gw_crypt_job *j = todo_head;
        todo_head = j->next;
        job_free(j);
    }
    todo_tail = NULL;
    while (done_head != NULL) {
        struct gw_crypt_job *j = done_head;
        done_head = j->next;
        job_free(j);
    }
    queued = 0;
}

struct gw_crypt_job *gw_crypt_verify(const char *password, const char *hash, gw_crypt_cb *cb,
                                     void *arg)
{
    struct gw_crypt_job *j;

    if (!running || queued >= GW_CRYPT_QUEUE_MAX)
        return NULL;
    j = gw_calloc(1, sizeof(*j));
    j->password = gw_strdup(password);
    j->hash = gw_strdup(hash);
    j->cb = cb;
    j->arg = arg;
    queued++;
    pthread_mutex_lock(&mtx);
    if (todo_tail != NULL)
        todo_tail->next = j;
    else
        todo_head = j;
    todo_tail = j;
    pthread_cond_signal(&cond);
    pthread_mutex_unlock(&mtx);
    return j;
}

void gw_crypt_cancel(struct gw_crypt_job *j)
{
    /* The job may be running in the thread: only the loop frees it, when
       its result comes back, so marking is enough (and race-free, as the
       thread never reads this flag). */
    j->cancelled = true;
}
