/*
 * broker/core_fifo.h: a FIFO ring of pointers that also allows removal from
 * the middle, for the broker core's ready lists (one per priority level),
 * dead sets and result retention.
 *
 * Positions are absolute 32-bit counters (the slot is position & (cap - 1)),
 * so growing or shrinking the ring moves no element to a new position; each
 * element learns its position through setpos() when pushed and whenever a
 * compaction moves it. Removing from the middle leaves a hole; holes at
 * either end are dropped at once, and the ring compacts when holes outnumber
 * live elements three to one, so memory stays linear in the live count.
 *
 * Invariants: live == number of non-NULL slots in [head, tail); when live > 0
 * the slots at head and tail - 1 are live; tail - head <= cap; cap is 0 or a
 * power of two. The ring never owns its elements.
 */
#ifndef JOBQ_BROKER_CORE_FIFO_H
#define JOBQ_BROKER_CORE_FIFO_H

#include <stdint.h>

typedef void (*core_fifo_setpos_fn)(void *elem, uint32_t pos);

typedef struct core_fifo {
    void **slots;
    uint32_t cap;  /* slots: 0 or a power of two */
    uint32_t head; /* position of the oldest element */
    uint32_t tail; /* position after the newest element */
    uint32_t live; /* elements (holes not counted) */
    core_fifo_setpos_fn setpos;
} core_fifo_t;

/* Initialises an empty ring; nothing is allocated until the first push. */
void core_fifo_init(core_fifo_t *f, core_fifo_setpos_fn setpos);

/* Frees the slots (not the elements). */
void core_fifo_fini(core_fifo_t *f);

/* Appends elem at the back and tells it its position (aborts on OOM). */
void core_fifo_push(core_fifo_t *f, void *elem);

/* Returns the oldest element, or NULL when empty. */
static inline void *
core_fifo_front(const core_fifo_t *f)
{
    return f->live ? f->slots[f->head & (f->cap - 1)] : 0;
}

/* Removes and returns the oldest element, or NULL when empty. */
void *core_fifo_pop(core_fifo_t *f);

/* Removes the element at pos, which must hold one. */
void core_fifo_remove(core_fifo_t *f, uint32_t pos);

/* Returns the element at pos, or NULL for a hole or a position outside the ring. */
void *core_fifo_at(const core_fifo_t *f, uint32_t pos);

/* Iteration from oldest to newest: set *cursor = f->head, then call until it
 * returns NULL. The ring must not change during the walk. */
void *core_fifo_next(const core_fifo_t *f, uint32_t *cursor);

#endif
