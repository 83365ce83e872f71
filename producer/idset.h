/*
 * producer/idset.h: a set of job ids (open addressing, linear probing,
 * backward-shift deletion): the broker producer's jobs that were accepted and
 * whose result has not arrived yet. The zero id is never a member.
 */
#ifndef JOBQ_PRODUCER_IDSET_H
#define JOBQ_PRODUCER_IDSET_H

#include "jobq/job.h"

#include <stddef.h>
#include <stdint.h>

typedef struct idset {
    jobq_id_t *slots; /* cap slots, zero id = empty */
    size_t cap, count;
} idset_t;

/* Adds id (ignored when zero or present). */
void idset_add(idset_t *s, const jobq_id_t *id);
/* Removes id; returns 1 if it was there, else 0. */
int idset_del(idset_t *s, const jobq_id_t *id);
/* Copies up to max members into out, starting at slot *cursor (which it
 * advances, wrapping, so that repeated calls go round every member).
 * Returns how many were copied. */
size_t idset_some(const idset_t *s, size_t *cursor, jobq_id_t *out, size_t max);
/* Frees the slots; the set is empty and usable again. */
void idset_fini(idset_t *s);

#endif
