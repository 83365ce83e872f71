/*
 * worker/output.c: the bounded, growable result buffer a handler appends to.
 *
 * Invariants: len <= cap <= limit; data is NULL only while cap is 0; error is
 * always NUL-terminated with error_len < sizeof error; truncated is set by the
 * first append refused for the limit and cleared only by a reset. An append is
 * all or nothing, so a refused append leaves the bytes already there intact.
 */
#include "jobq/errors.h"
#include "jobq/worker.h"

#include "common/alloc.h"
#include "common/log.h"

#include <string.h>

#define S_MIN_CAP 256 /* first allocation, bytes */

struct jobq_output {
    char *data;
    size_t len;   /* bytes appended since the last reset */
    size_t cap;   /* bytes allocated at data */
    size_t limit; /* most bytes len may reach */
    int truncated;
    size_t error_len;
    char error[JOBQ_ERROR_TEXT_MAX + 1];
};

jobq_output_t *
jobq_output_new(size_t limit)
{
    jobq_output_t *out = jobq_calloc(1, sizeof *out);
    out->limit = limit ? limit : JOBQ_PAYLOAD_MAX;
    return out;
}

void
jobq_output_destroy(jobq_output_t **out_p)
{
    JOBQ_ASSERT(out_p);
    jobq_output_t *out = *out_p;
    if (!out)
        return;
    jobq_free(out->data);
    jobq_free(out);
    *out_p = NULL;
}

void
jobq_output_reset(jobq_output_t *out)
{
    JOBQ_ASSERT(out);
    out->len = 0;
    out->truncated = 0;
    out->error_len = 0;
    out->error[0] = '\0';
}

/* Grows data so that it holds at least need bytes (need <= limit): doubling,
 * capped at the limit, so a full 1 MiB output costs about 12 reallocations. */
static void
s_reserve(jobq_output_t *out, size_t need)
{
    if (need <= out->cap)
        return;
    size_t cap = out->cap ? out->cap : S_MIN_CAP;
    while (cap < need)
        cap = cap > out->limit / 2 ? out->limit : cap * 2;
    if (cap > out->limit)
        cap = out->limit;
    out->data = jobq_realloc(out->data, cap);
    out->cap = cap;
}

int
jobq_output_append(jobq_output_t *out, const void *data, size_t len)
{
    JOBQ_ASSERT(out);
    if (len == 0)
        return JOBQ_OK;
    if (!data)
        return JOBQ_EINVAL;
    if (len > out->limit - out->len) {
        out->truncated = 1;
        return JOBQ_ETOOBIG;
    }
    s_reserve(out, out->len + len);
    memcpy(out->data + out->len, data, len);
    out->len += len;
    return JOBQ_OK;
}

void
jobq_output_set_error(jobq_output_t *out, const char *text)
{
    JOBQ_ASSERT(out);
    size_t n = text ? strlen(text) : 0;
    if (n > JOBQ_ERROR_TEXT_MAX) {
        n = JOBQ_ERROR_TEXT_MAX;
        /* Do not cut a UTF-8 sequence: back up over continuation bytes. */
        while (n > 0 && ((unsigned char)text[n] & 0xC0) == 0x80)
            n--;
    }
    if (n)
        memcpy(out->error, text, n);
    out->error[n] = '\0';
    out->error_len = n;
}

const void *
jobq_output_data(const jobq_output_t *out)
{
    JOBQ_ASSERT(out);
    return out->data ? out->data : "";
}

size_t
jobq_output_len(const jobq_output_t *out)
{
    JOBQ_ASSERT(out);
    return out->len;
}

const char *
jobq_output_error(const jobq_output_t *out)
{
    JOBQ_ASSERT(out);
    return out->error;
}

int
jobq_output_truncated(const jobq_output_t *out)
{
    JOBQ_ASSERT(out);
    return out->truncated;
}
