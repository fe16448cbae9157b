/* The one buffer type: bounded, lazily allocated, released when idle. */
#include <stdlib.h>
#include <string.h>

#include "core.h"

void gw_buf_init(struct gw_buf *b, size_t limit)
{
    memset(b, 0, sizeof(*b));
    b->limit = limit;
}

size_t gw_buf_len(const struct gw_buf *b)
{
    return b->end - b->start;
}

char *gw_buf_space(struct gw_buf *b, size_t *room_r)
{
    size_t len = gw_buf_len(b);

    if (b->data == NULL) {
        /* Start small: most lines and greetings are short. */
        b->cap = b->limit < 2048 ? b->limit : 2048;
        b->data = gw_malloc(b->cap);
        b->start = b->end = 0;
    }
    if (b->end == b->cap && b->start > 0) {
        memmove(b->data, b->data + b->start, len);
        b->start = 0;
        b->end = len;
    }
    if (b->end == b->cap && b->cap < b->limit) {
        size_t ncap = b->cap * 2 > b->limit ? b->limit : b->cap * 2;
        /* Not realloc: the old block may hold a password line, and must be
           wiped before it goes back to the allocator. */
        char *n = gw_malloc(ncap);
        memcpy(n, b->data, b->end);
        OPENSSL_cleanse(b->data, b->cap);
        free(b->data);
        b->data = n;
        b->cap = ncap;
    }
    *room_r = b->cap - b->end;
    return b->data + b->end;
}

int gw_buf_append(struct gw_buf *b, const void *data, size_t len)
{
    size_t room;

    if (gw_buf_len(b) + len > b->limit)
        return -1;
    while (len > 0) {
        char *p = gw_buf_space(b, &room);
        size_t n = len < room ? len : room;
        if (n == 0)
            return -1;
        memcpy(p, data, n);
        b->end += n;
        data = (const char *)data + n;
        len -= n;
    }
    return 0;
}

void gw_buf_consume(struct gw_buf *b, size_t n)
{
    b->start += n;
    if (b->start >= b->end)
        b->start = b->end = 0;
}

void gw_buf_release(struct gw_buf *b)
{
    /* Buffers carry credentials before login: never free them unwiped. */
    if (b->data != NULL)
        OPENSSL_cleanse(b->data, b->cap);
    free(b->data);
    b->data = NULL;
    b->start = b->end = b->cap = 0;
}
