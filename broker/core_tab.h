/*
 * broker/core_tab.h: an open-addressing hash table of pointers, the index
 * behind the broker core's lookups (jobs and results by id, queues by name,
 * unique keys, priority levels, workers by handle).
 *
 * The table stores element pointers only; keys live inside the elements.
 * Each slot is one 64-bit word: the pointer in the low 48 bits, an 8-bit
 * fingerprint of the element's hash in bits 48-55 and its probe distance from
 * its home slot in bits 56-63. Empty slots are 0. So a slot costs 8 bytes
 * (PERFORMANCE.md W3), a lookup compares fingerprints before it dereferences
 * an element, and a deletion shifts the following cluster back without
 * rehashing anything (Robin Hood linear probing with backward-shift deletion).
 *
 * Invariants: the capacity is 0 or a power of two >= 16; the load stays at or
 * below 3/4 (the table doubles first); every element sits at its home slot
 * plus its recorded distance, and along a probe run distances never drop by
 * more than one from slot to slot (the Robin Hood order); an element is in the
 * table at most once (the caller checks before inserting).
 * Element pointers must have their top 16 bits clear (true of every heap
 * pointer on x86-64 and arm64 Linux); the low bits are free for the caller's
 * own tags. The table never owns its elements.
 */
#ifndef JOBQ_BROKER_CORE_TAB_H
#define JOBQ_BROKER_CORE_TAB_H

#include <stddef.h>
#include <stdint.h>

/* Returns the hash of an element stored in the table; called when the table
 * grows or shrinks. ctx is the pointer given to core_tab_init. */
typedef uint64_t (*core_tab_hash_fn)(const void *elem, const void *ctx);
/* Returns 1 if elem has the key the caller is looking for, else 0. */
typedef int (*core_tab_eq_fn)(const void *elem, const void *key);

typedef struct core_tab {
    uint64_t *slots;
    uint32_t cap;   /* slots: 0 or a power of two */
    uint32_t count; /* elements */
    core_tab_hash_fn hash;
    const void *ctx;
} core_tab_t;

/* Initialises an empty table that allocates nothing until the first insert. */
void core_tab_init(core_tab_t *t, core_tab_hash_fn hash, const void *ctx);

/* Frees the slot array (not the elements) and leaves t empty and reusable. */
void core_tab_fini(core_tab_t *t);

/* Returns the element with this hash for which eq(elem, key) is 1, or NULL. */
void *core_tab_find(const core_tab_t *t, uint64_t hash, core_tab_eq_fn eq, const void *key);

/* Adds elem under hash (which must equal t->hash(elem)). elem must not be in
 * the table already. Grows the table as needed (aborts on OOM). */
void core_tab_insert(core_tab_t *t, uint64_t hash, void *elem);

/* Removes elem (found by pointer identity under hash). Returns 0, or -1 if elem
 * is not in the table. May shrink the table. */
int core_tab_remove(core_tab_t *t, uint64_t hash, const void *elem);

/* Puts elem in the slot of old (same hash, so same key). Returns 0, or -1 if
 * old is not in the table. */
int core_tab_replace(core_tab_t *t, uint64_t hash, const void *old, void *elem);

/* Iteration: set *cursor to 0, then call until it returns NULL. The table must
 * not change during the walk. Order is unspecified. */
void *core_tab_next(const core_tab_t *t, uint32_t *cursor);

/* Asks the CPU to start loading the slot where a lookup of hash begins, so
 * that lookups of a batch of keys overlap their cache misses. */
static inline void
core_tab_prefetch(const core_tab_t *t, uint64_t hash)
{
    if (t->cap)
        __builtin_prefetch(&t->slots[(uint32_t)hash & (t->cap - 1)]);
}

/* Returns 1 if every element sits where its hash and distance say and the
 * Robin Hood order holds (for invariant checks), else 0. */
int core_tab_valid(const core_tab_t *t);

#endif
