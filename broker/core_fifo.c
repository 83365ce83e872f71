/*
 * broker/core_fifo.c: the FIFO ring with holes (see core_fifo.h).
 */
#include "broker/core_fifo.h"
#include "common/alloc.h"
#include "common/log.h"

#include <string.h>

#define S_MIN_CAP 16u

void
core_fifo_init(core_fifo_t *f, core_fifo_setpos_fn setpos)
{
    memset(f, 0, sizeof *f);
    f->setpos = setpos;
}

void
core_fifo_fini(core_fifo_t *f)
{
    jobq_free(f->slots);
    f->slots = NULL;
    f->cap = 0;
    f->head = f->tail;
    f->live = 0;
}

/* Copies [head, tail) into a ring of cap slots; positions do not change. */
static void
s_resize(core_fifo_t *f, uint32_t cap)
{
    JOBQ_ASSERT(cap >= f->tail - f->head && cap <= (UINT32_C(1) << 31));
    void **slots = jobq_calloc(cap, sizeof *slots);
    for (uint32_t p = f->head; p != f->tail; p++)
        slots[p & (cap - 1)] = f->slots[p & (f->cap - 1)];
    jobq_free(f->slots);
    f->slots = slots;
    f->cap = cap;
}

/* Moves the live elements down over the holes, telling each its new position. */
static void
s_compact(core_fifo_t *f)
{
    uint32_t mask = f->cap - 1, w = f->head;
    for (uint32_t p = f->head; p != f->tail; p++) {
        void *e = f->slots[p & mask];
        if (!e)
            continue;
        if (w != p) {
            f->slots[w & mask] = e;
            f->slots[p & mask] = NULL;
            f->setpos(e, w);
        }
        w++;
    }
    f->tail = w;
}

/* Drops holes at both ends, then compacts or shrinks when the ring is mostly empty. */
static void
s_tidy(core_fifo_t *f)
{
    if (f->live == 0) { /* keep a small ring: queues empty and refill all the time */
        f->head = f->tail;
        if (f->cap > S_MIN_CAP)
            s_resize(f, S_MIN_CAP);
        return;
    }
    uint32_t mask = f->cap - 1;
    while (!f->slots[f->head & mask])
        f->head++;
    while (!f->slots[(f->tail - 1) & mask])
        f->tail--;
    uint32_t span = f->tail - f->head;
    if (span > 4u * f->live + 16u)
        s_compact(f);
    span = f->tail - f->head;
    if (f->cap > S_MIN_CAP && span <= f->cap / 4)
        s_resize(f, f->cap / 2);
}

void
core_fifo_push(core_fifo_t *f, void *elem)
{
    JOBQ_ASSERT(elem != NULL);
    if (f->tail - f->head == f->cap) {
        if (f->cap && f->live <= f->cap / 2)
            s_compact(f);
        else
            s_resize(f, f->cap ? f->cap * 2 : S_MIN_CAP);
    }
    f->slots[f->tail & (f->cap - 1)] = elem;
    f->setpos(elem, f->tail);
    f->tail++;
    f->live++;
}

void *
core_fifo_pop(core_fifo_t *f)
{
    if (f->live == 0)
        return NULL;
    void *e = f->slots[f->head & (f->cap - 1)];
    core_fifo_remove(f, f->head);
    return e;
}

void
core_fifo_remove(core_fifo_t *f, uint32_t pos)
{
    JOBQ_ASSERT(f->live > 0 && pos - f->head < f->tail - f->head);
    void **slot = &f->slots[pos & (f->cap - 1)];
    JOBQ_ASSERT(*slot != NULL);
    *slot = NULL;
    f->live--;
    s_tidy(f);
}

void *
core_fifo_at(const core_fifo_t *f, uint32_t pos)
{
    if (f->cap == 0 || pos - f->head >= f->tail - f->head)
        return NULL;
    return f->slots[pos & (f->cap - 1)];
}

void *
core_fifo_next(const core_fifo_t *f, uint32_t *cursor)
{
    while (f->cap && *cursor - f->head < f->tail - f->head) {
        void *e = f->slots[(*cursor)++ & (f->cap - 1)];
        if (e)
            return e;
    }
    return NULL;
}
