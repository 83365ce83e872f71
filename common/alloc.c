/* common/alloc.c: allocation wrappers that abort with file:line on OOM. */
#include "common/alloc.h"
#include "common/log.h"

#include <stdlib.h>
#include <string.h>

static void
s_oom(size_t n, const char *file, int line)
{
    jobq_log_at(JOBQ_LOG_ERR, file, line, "alloc", "out of memory allocating %zu bytes", n);
    abort();
}

void *
jobq_malloc_at(size_t n, const char *file, int line)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        s_oom(n, file, line);
    return p;
}

void *
jobq_calloc_at(size_t count, size_t n, const char *file, int line)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        s_oom(count * n, file, line);
    return p;
}

void *
jobq_realloc_at(void *p, size_t n, const char *file, int line)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        s_oom(n, file, line);
    return q;
}

char *
jobq_strndup_at(const char *s, size_t n, const char *file, int line)
{
    size_t len = strnlen(s, n);
    char *d = jobq_malloc_at(len + 1, file, line);
    memcpy(d, s, len);
    d[len] = '\0';
    return d;
}

void *
jobq_memdup_at(const void *p, size_t n, const char *file, int line)
{
    void *d = jobq_malloc_at(n, file, line);
    if (n)
        memcpy(d, p, n);
    return d;
}

void
jobq_free(void *p)
{
    free(p);
}
