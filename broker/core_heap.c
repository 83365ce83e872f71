/*
 * broker/core_heap.c: the binary min-heap with position tracking (see
 * core_heap.h). The array doubles when full and halves when three quarters
 * empty, so its memory follows the number of elements.
 */
#include "broker/core_heap.h"
#include "common/alloc.h"
#include "common/log.h"

#include <string.h>

#define S_MIN_CAP 16u

void
core_heap_init(core_heap_t *h, core_heap_less_fn less, core_heap_setpos_fn setpos)
{
    memset(h, 0, sizeof *h);
    h->less = less;
    h->setpos = setpos;
}

void
core_heap_fini(core_heap_t *h)
{
    jobq_free(h->items);
    h->items = NULL;
    h->len = h->cap = 0;
}

static inline void
s_set(core_heap_t *h, uint32_t i, void *e)
{
    h->items[i] = e;
    h->setpos(e, i);
}

/* Moves the element at i up until its parent is not greater. Returns its new index. */
static uint32_t
s_sift_up(core_heap_t *h, uint32_t i)
{
    void *e = h->items[i];
    while (i > 0) {
        uint32_t parent = (i - 1) / 2;
        if (!h->less(e, h->items[parent]))
            break;
        s_set(h, i, h->items[parent]);
        i = parent;
    }
    s_set(h, i, e);
    return i;
}

static void
s_sift_down(core_heap_t *h, uint32_t i)
{
    void *e = h->items[i];
    for (;;) {
        uint32_t c = 2 * i + 1;
        if (c >= h->len)
            break;
        if (c + 1 < h->len && h->less(h->items[c + 1], h->items[c]))
            c++;
        if (!h->less(h->items[c], e))
            break;
        s_set(h, i, h->items[c]);
        i = c;
    }
    s_set(h, i, e);
}

void
core_heap_push(core_heap_t *h, void *elem)
{
    if (h->len == h->cap) {
        JOBQ_ASSERT(h->cap < (UINT32_C(1) << 31));
        h->cap = h->cap ? h->cap * 2 : S_MIN_CAP;
        h->items = jobq_realloc(h->items, (size_t)h->cap * sizeof *h->items);
    }
    h->items[h->len] = elem;
    s_sift_up(h, h->len++);
}

static void
s_maybe_shrink(core_heap_t *h)
{
    if (h->len == 0) {
        core_heap_fini(h);
    } else if (h->cap > S_MIN_CAP && h->len < h->cap / 4) {
        h->cap /= 2;
        h->items = jobq_realloc(h->items, (size_t)h->cap * sizeof *h->items);
    }
}

void
core_heap_remove(core_heap_t *h, uint32_t pos)
{
    JOBQ_ASSERT(pos < h->len);
    void *last = h->items[--h->len];
    if (pos < h->len) {
        h->items[pos] = last;
        core_heap_update(h, pos);
    }
    s_maybe_shrink(h);
}

void *
core_heap_pop(core_heap_t *h)
{
    if (h->len == 0)
        return NULL;
    void *top = h->items[0];
    core_heap_remove(h, 0);
    return top;
}

void
core_heap_update(core_heap_t *h, uint32_t pos)
{
    JOBQ_ASSERT(pos < h->len);
    if (s_sift_up(h, pos) == pos)
        s_sift_down(h, pos);
}

int
core_heap_valid(const core_heap_t *h)
{
    for (uint32_t i = 1; i < h->len; i++)
        if (h->less(h->items[i], h->items[(i - 1) / 2]))
            return 0;
    return 1;
}
