/*
 * common/alloc.h: the one allocation policy of jobq.
 *
 * Running out of memory is not recoverable for a job queue that must not lose
 * jobs silently, so these wrappers log the call site and abort() instead of
 * returning NULL; call sites carry no NULL checks. The places that degrade
 * gracefully (a broker refusing a submit with QUEUE_FULL) do it deliberately
 * by limits, before allocating.
 */
#ifndef JOBQ_COMMON_ALLOC_H
#define JOBQ_COMMON_ALLOC_H

#include <stddef.h>

#define jobq_malloc(n) jobq_malloc_at((n), __FILE__, __LINE__)
#define jobq_calloc(c, n) jobq_calloc_at((c), (n), __FILE__, __LINE__)
#define jobq_realloc(p, n) jobq_realloc_at((p), (n), __FILE__, __LINE__)
#define jobq_strdup(s) jobq_strndup_at((s), (size_t)-1, __FILE__, __LINE__)
#define jobq_strndup(s, n) jobq_strndup_at((s), (n), __FILE__, __LINE__)
#define jobq_memdup(p, n) jobq_memdup_at((p), (n), __FILE__, __LINE__)

void *jobq_malloc_at(size_t n, const char *file, int line);
void *jobq_calloc_at(size_t count, size_t n, const char *file, int line);
void *jobq_realloc_at(void *p, size_t n, const char *file, int line);
/* Copies at most n bytes of s and adds a NUL. Caller owns the result. */
char *jobq_strndup_at(const char *s, size_t n, const char *file, int line);
/* Copies n bytes of p (n may be 0). Caller owns the result. */
void *jobq_memdup_at(const void *p, size_t n, const char *file, int line);
void jobq_free(void *p);

#endif
