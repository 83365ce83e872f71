/*
 * producer/idset.c: the id set of idset.h. Invariants: cap is 0 or a power of
 * two; count < cap / 2 after every add; every member sits in the run of
 * non-empty slots that starts at its home slot (so a lookup stops at the
 * first empty slot, and a delete shifts the run back to keep that true).
 */
#include "producer/idset.h"
#include "common/alloc.h"

#include <string.h>

static size_t
s_home(const idset_t *s, const jobq_id_t *id)
{
    uint64_t a, b;
    memcpy(&a, id->b, 8);
    memcpy(&b, id->b + 8, 8);
    uint64_t h = (a ^ (b * 0x9E3779B97F4A7C15ull)) * 0xBF58476D1CE4E5B9ull;
    return (size_t)(h >> 17) & (s->cap - 1);
}

static int
s_zero(const jobq_id_t *id)
{
    static const jobq_id_t zero;
    return memcmp(id, &zero, sizeof zero) == 0;
}

static size_t
s_find(const idset_t *s, const jobq_id_t *id, int *found)
{
    size_t i = s_home(s, id);
    while (!s_zero(&s->slots[i])) {
        if (memcmp(&s->slots[i], id, sizeof *id) == 0) {
            *found = 1;
            return i;
        }
        i = (i + 1) & (s->cap - 1);
    }
    *found = 0;
    return i;
}

static void
s_grow(idset_t *s)
{
    idset_t n = {jobq_calloc(s->cap ? s->cap * 2 : 64, sizeof(jobq_id_t)), s->cap ? s->cap * 2 : 64,
                 0};
    for (size_t i = 0; i < s->cap; i++)
        if (!s_zero(&s->slots[i]))
            idset_add(&n, &s->slots[i]);
    jobq_free(s->slots);
    *s = n;
}

void
idset_add(idset_t *s, const jobq_id_t *id)
{
    if (s_zero(id))
        return;
    if ((s->count + 1) * 2 > s->cap)
        s_grow(s);
    int found;
    size_t i = s_find(s, id, &found);
    if (found)
        return;
    s->slots[i] = *id;
    s->count++;
}

int
idset_del(idset_t *s, const jobq_id_t *id)
{
    if (!s->count || s_zero(id))
        return 0;
    int found;
    size_t i = s_find(s, id, &found);
    if (!found)
        return 0;
    size_t mask = s->cap - 1;
    for (size_t j = (i + 1) & mask; !s_zero(&s->slots[j]); j = (j + 1) & mask) {
        size_t h = s_home(s, &s->slots[j]);
        /* j's member may move to the hole at i unless its home lies in (i, j]. */
        if (((j - h) & mask) >= ((j - i) & mask)) {
            s->slots[i] = s->slots[j];
            i = j;
        }
    }
    memset(&s->slots[i], 0, sizeof s->slots[i]);
    s->count--;
    return 1;
}

size_t
idset_some(const idset_t *s, size_t *cursor, jobq_id_t *out, size_t max)
{
    size_t n = 0;
    for (size_t k = 0; k < s->cap && n < max; k++) {
        size_t i = (*cursor + k) & (s->cap - 1);
        if (!s_zero(&s->slots[i]))
            out[n++] = s->slots[i];
        if (n == max || k + 1 == s->cap)
            *cursor = (i + 1) & (s->cap - 1);
    }
    return n;
}

void
idset_fini(idset_t *s)
{
    jobq_free(s->slots);
    memset(s, 0, sizeof *s);
}
