/*
 * broker/core_tab.c: the open-addressing pointer table (see core_tab.h for the
 * slot layout and the invariants).
 *
 * Lookups land on random slots, so with millions of entries each one misses
 * the cache and, with 4 KiB pages, the TLB too; on a virtual machine a TLB
 * miss costs more than the cache miss (bench/bench_core.c, W5). Slot arrays of
 * S_HUGE_MIN bytes or more are therefore advised to use transparent huge
 * pages (one madvise per resize; a refusal is harmless).
 */
#include "broker/core_tab.h"
#include "common/alloc.h"
#include "common/log.h"

#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define S_HUGE_MIN (4u << 20)

#define S_PTR_MASK ((UINT64_C(1) << 48) - 1)
#define S_FP_SHIFT 48
#define S_DIST_SHIFT 56
#define S_DIST_MAX 255u
#define S_MIN_CAP 16u

static inline uint64_t
s_fp(uint64_t hash)
{
    return (hash >> 56) << S_FP_SHIFT;
}

static inline uint32_t
s_dist(uint64_t slot)
{
    return (uint32_t)(slot >> S_DIST_SHIFT);
}

static inline void *
s_ptr(uint64_t slot)
{
    return (void *)(uintptr_t)(slot & S_PTR_MASK);
}

/* Robin Hood placement of one entry (pointer | fingerprint). Returns 0 when
 * everything is placed, or the entry left homeless when a probe distance would
 * pass S_DIST_MAX (the caller grows the table and places it again). */
static uint64_t
s_place(core_tab_t *t, uint64_t hash, uint64_t entry)
{
    uint32_t mask = t->cap - 1, i = (uint32_t)hash & mask, d = 0;
    for (;;) {
        uint64_t s = t->slots[i];
        if (s == 0) {
            t->slots[i] = entry | ((uint64_t)d << S_DIST_SHIFT);
            return 0;
        }
        if (s_dist(s) < d) { /* take from the rich: swap and carry the other */
            t->slots[i] = entry | ((uint64_t)d << S_DIST_SHIFT);
            entry = s & ~(UINT64_C(0xff) << S_DIST_SHIFT);
            d = s_dist(s);
        }
        i = (i + 1) & mask;
        if (++d > S_DIST_MAX)
            return entry;
    }
}

/* Allocates cap zeroed slots, advising huge pages for a large array. */
static uint64_t *
s_slots_new(uint32_t cap)
{
    size_t bytes = (size_t)cap * sizeof(uint64_t);
    uint64_t *slots = jobq_calloc(cap, sizeof *slots);
#ifdef MADV_HUGEPAGE
    if (bytes >= S_HUGE_MIN) {
        uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
        uintptr_t lo = ((uintptr_t)slots + page - 1) & ~(page - 1);
        uintptr_t hi = ((uintptr_t)slots + bytes) & ~(page - 1);
        if (hi > lo)
            (void)madvise((void *)lo, hi - lo, MADV_HUGEPAGE);
    }
#endif
    return slots;
}

/* Moves every element into a new array of cap slots (doubling again in the
 * practically impossible case that a probe run overflows). */
static void
s_rehash(core_tab_t *t, uint32_t cap)
{
    uint64_t *old = t->slots;
    uint32_t oldcap = t->cap;
    for (;;) {
        JOBQ_ASSERT(cap >= S_MIN_CAP && cap <= (UINT32_C(1) << 31));
        t->slots = s_slots_new(cap);
        t->cap = cap;
        uint32_t i = 0;
        for (; i < oldcap; i++) {
            if (!old[i])
                continue;
            void *p = s_ptr(old[i]);
            uint64_t h = t->hash(p, t->ctx);
            if (s_place(t, h, (uint64_t)(uintptr_t)p | s_fp(h)) != 0)
                break;
        }
        if (i == oldcap)
            break;
        /* A probe run over 255 slots at a low load means colliding hashes (a
         * broken hash function), not bad luck: stop instead of doubling forever. */
        JOBQ_ASSERT((uint64_t)t->count * 16 >= cap);
        jobq_free(t->slots);
        cap *= 2;
    }
    jobq_free(old);
}

void
core_tab_init(core_tab_t *t, core_tab_hash_fn hash, const void *ctx)
{
    memset(t, 0, sizeof *t);
    t->hash = hash;
    t->ctx = ctx;
}

void
core_tab_fini(core_tab_t *t)
{
    jobq_free(t->slots);
    t->slots = NULL;
    t->cap = 0;
    t->count = 0;
}

void *
core_tab_find(const core_tab_t *t, uint64_t hash, core_tab_eq_fn eq, const void *key)
{
    if (t->count == 0)
        return NULL;
    uint32_t mask = t->cap - 1, i = (uint32_t)hash & mask, d = 0;
    uint64_t fp = s_fp(hash);
    for (;; i = (i + 1) & mask, d++) {
        uint64_t s = t->slots[i];
        if (s == 0 || s_dist(s) < d)
            return NULL;
        if ((s & (UINT64_C(0xff) << S_FP_SHIFT)) == fp && eq(s_ptr(s), key))
            return s_ptr(s);
    }
}

void
core_tab_insert(core_tab_t *t, uint64_t hash, void *elem)
{
    uintptr_t p = (uintptr_t)elem;
    JOBQ_ASSERT(p != 0 && (p & ~(uintptr_t)S_PTR_MASK) == 0);
    if (t->cap == 0 || (uint64_t)(t->count + 1) * 4 > (uint64_t)t->cap * 3)
        s_rehash(t, t->cap ? t->cap * 2 : S_MIN_CAP);
    uint64_t left = s_place(t, hash, (uint64_t)p | s_fp(hash));
    while (left != 0) {
        JOBQ_ASSERT((uint64_t)t->count * 16 >= t->cap); /* see s_rehash */
        s_rehash(t, t->cap * 2);
        void *q = s_ptr(left);
        uint64_t h = t->hash(q, t->ctx);
        left = s_place(t, h, (uint64_t)(uintptr_t)q | s_fp(h));
    }
    t->count++;
}

/* Returns the slot index of elem, or -1. */
static int64_t
s_slot_of(const core_tab_t *t, uint64_t hash, const void *elem)
{
    if (t->count == 0)
        return -1;
    uint32_t mask = t->cap - 1, i = (uint32_t)hash & mask, d = 0;
    for (;; i = (i + 1) & mask, d++) {
        uint64_t s = t->slots[i];
        if (s == 0 || s_dist(s) < d)
            return -1;
        if (s_ptr(s) == elem)
            return i;
    }
}

int
core_tab_remove(core_tab_t *t, uint64_t hash, const void *elem)
{
    int64_t at = s_slot_of(t, hash, elem);
    if (at < 0)
        return -1;
    uint32_t mask = t->cap - 1, i = (uint32_t)at;
    for (;;) { /* backward shift: pull the rest of the run one slot closer to home */
        uint32_t j = (i + 1) & mask;
        uint64_t s = t->slots[j];
        if (s == 0 || s_dist(s) == 0) {
            t->slots[i] = 0;
            break;
        }
        t->slots[i] = s - (UINT64_C(1) << S_DIST_SHIFT);
        i = j;
    }
    t->count--;
    if (t->count == 0) {
        core_tab_fini(t);
    } else if (t->cap > S_MIN_CAP && t->count < t->cap / 8) {
        s_rehash(t, t->cap / 2);
    }
    return 0;
}

int
core_tab_replace(core_tab_t *t, uint64_t hash, const void *old, void *elem)
{
    uintptr_t p = (uintptr_t)elem;
    JOBQ_ASSERT(p != 0 && (p & ~(uintptr_t)S_PTR_MASK) == 0);
    int64_t at = s_slot_of(t, hash, old);
    if (at < 0)
        return -1;
    t->slots[at] = (t->slots[at] & ~S_PTR_MASK) | p;
    return 0;
}

void *
core_tab_next(const core_tab_t *t, uint32_t *cursor)
{
    while (*cursor < t->cap) {
        uint64_t s = t->slots[(*cursor)++];
        if (s)
            return s_ptr(s);
    }
    return NULL;
}

int
core_tab_valid(const core_tab_t *t)
{
    uint32_t n = 0, mask = t->cap - 1;
    for (uint32_t i = 0; i < t->cap; i++) {
        uint64_t s = t->slots[i];
        if (!s)
            continue;
        n++;
        uint64_t h = t->hash(s_ptr(s), t->ctx);
        if ((((uint32_t)h + s_dist(s)) & mask) != i)
            return 0;
        if ((s & (UINT64_C(0xff) << S_FP_SHIFT)) != s_fp(h))
            return 0;
        uint64_t next = t->slots[(i + 1) & mask];
        if (next && s_dist(next) > s_dist(s) + 1)
            return 0;
    }
    if (n != t->count)
        return 0;
    return t->cap == 0 || (uint64_t)t->count * 4 <= (uint64_t)t->cap * 3;
}
