/*
 * broker/core_heap.h: a binary min-heap of pointers with position tracking,
 * for the broker core's delay heap, lease heap and per-queue priority levels.
 *
 * The order comes from a less() callback over the elements; each element
 * learns its index through setpos() whenever it moves, so an element can be
 * removed or re-keyed in O(log n) given its recorded position (beanstalkd's
 * heap.c does the same). Invariants: items[0..len) are the elements, each
 * element's recorded position is its index, and no child is less than its
 * parent. The heap never owns its elements.
 */
#ifndef JOBQ_BROKER_CORE_HEAP_H
#define JOBQ_BROKER_CORE_HEAP_H

#include <stdint.h>

typedef int (*core_heap_less_fn)(const void *a, const void *b);
typedef void (*core_heap_setpos_fn)(void *elem, uint32_t pos);

typedef struct core_heap {
    void **items;
    uint32_t len, cap;
    core_heap_less_fn less;
    core_heap_setpos_fn setpos;
} core_heap_t;

/* Initialises an empty heap; nothing is allocated until the first push. */
void core_heap_init(core_heap_t *h, core_heap_less_fn less, core_heap_setpos_fn setpos);

/* Frees the item array (not the elements). */
void core_heap_fini(core_heap_t *h);

/* Adds elem (aborts on OOM). O(log n). */
void core_heap_push(core_heap_t *h, void *elem);

/* Returns the least element, or NULL when the heap is empty. */
static inline void *
core_heap_top(const core_heap_t *h)
{
    return h->len ? h->items[0] : 0;
}

/* Removes and returns the least element, or NULL when empty. O(log n). */
void *core_heap_pop(core_heap_t *h);

/* Removes the element at position pos (< len). O(log n). */
void core_heap_remove(core_heap_t *h, uint32_t pos);

/* Restores the order after the key of the element at pos changed. O(log n). */
void core_heap_update(core_heap_t *h, uint32_t pos);

/* Returns 1 if no child is less than its parent, else 0 (for invariant checks). */
int core_heap_valid(const core_heap_t *h);

#endif
