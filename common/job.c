/*
 * common/job.c: the job and result records: defaults, validation, ids.
 * The records are plain values; see include/jobq/job.h for ownership.
 */
#include "jobq/job.h"
#include "jobq/errors.h"

#include <pthread.h>
#include <stdatomic.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

void
jobq_job_init(jobq_job_t *job)
{
    memset(job, 0, sizeof *job);
    job->queue = "default";
    job->queue_len = 7;
    job->priority = JOBQ_PRIORITY_DEFAULT;
    job->ttr_ms = JOBQ_TTR_DEFAULT_MS;
    job->max_attempts = JOBQ_ATTEMPTS_DEFAULT;
}

void
jobq_result_init(jobq_result_t *res)
{
    memset(res, 0, sizeof *res);
    res->status = JOBQ_STATUS_DONE;
}

int
jobq_queue_name_valid(const char *name, size_t len)
{
    static const char extra[] = "-+/;.$_()";
    if (!name || len == 0 || len > JOBQ_QUEUE_NAME_MAX || name[0] == '-')
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = name[i];
        int ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                 (c != '\0' && strchr(extra, c) != NULL);
        if (!ok)
            return 0;
    }
    return 1;
}

int
jobq_job_validate(const jobq_job_t *job, const char **why)
{
    const char *dummy;
    if (!why)
        why = &dummy;
    *why = NULL;
    if (job->queue_len > JOBQ_QUEUE_NAME_MAX) {
        *why = "queue: name longer than 200 bytes";
        return JOBQ_ETOOBIG;
    }
    if (!jobq_queue_name_valid(job->queue, job->queue_len)) {
        *why = "queue: name must be 1-200 bytes of A-Z a-z 0-9 - + / ; . $ _ ( ) and not start "
               "with -";
        return JOBQ_EINVAL;
    }
    if (job->payload_len > JOBQ_PAYLOAD_MAX) {
        *why = "payload: larger than 1 MiB";
        return JOBQ_ETOOBIG;
    }
    if (job->payload_len && !job->payload) {
        *why = "payload: NULL with a non-zero length";
        return JOBQ_EINVAL;
    }
    if (job->unique_len > JOBQ_UNIQUE_KEY_MAX) {
        *why = "unique: key longer than 200 bytes";
        return JOBQ_ETOOBIG;
    }
    if (job->unique_len && !job->unique) {
        *why = "unique: NULL with a non-zero length";
        return JOBQ_EINVAL;
    }
    if (job->max_attempts < 1) {
        *why = "max_attempts: must be at least 1";
        return JOBQ_EINVAL;
    }
    if (job->ttr_ms < 1) {
        *why = "ttr: must be at least 1 ms";
        return JOBQ_EINVAL;
    }
    return JOBQ_OK;
}

static _Atomic unsigned s_id_fork_gen = 1;
static pthread_once_t s_id_once = PTHREAD_ONCE_INIT;

static void
s_id_after_fork(void)
{
    s_id_fork_gen++;
}

static void
s_id_register(void)
{
    pthread_atfork(NULL, NULL, s_id_after_fork);
}

void
jobq_id_generate(jobq_id_t *id)
{
    /* 64 random bits fixed per process (re-drawn after fork), then a 64-bit
     * counter mixed with time: unique without a system call per id. */
    static _Thread_local uint64_t seed, counter;
    static _Thread_local unsigned seed_gen;
    pthread_once(&s_id_once, s_id_register);
    unsigned gen = s_id_fork_gen;
    if (seed_gen != gen || seed == 0) {
        pid_t pid = getpid();
        uint64_t r[2] = {0, 0};
        if (getrandom(r, sizeof r, 0) != (ssize_t)sizeof r) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            r[0] = ((uint64_t)ts.tv_sec << 32) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)pid << 17);
            r[1] = (uint64_t)(uintptr_t)&ts;
        }
        seed = r[0] | 1;
        counter = r[1];
        seed_gen = gen;
    }
    uint64_t c = ++counter;
    /* splitmix64 of the counter makes ids look random but stay unique per seed. */
    uint64_t z = c + 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    memcpy(id->b, &seed, 8);
    memcpy(id->b + 8, &z, 8);
}

int
jobq_id_is_zero(const jobq_id_t *id)
{
    static const jobq_id_t zero;
    return memcmp(id, &zero, sizeof zero) == 0;
}

void
jobq_id_format(const jobq_id_t *id, char out[JOBQ_ID_HEX_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    for (int i = 0; i < 16; i++) {
        out[2 * i] = hex[id->b[i] >> 4];
        out[2 * i + 1] = hex[id->b[i] & 15];
    }
    out[JOBQ_ID_HEX_LEN] = '\0';
}

static int
s_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
jobq_id_parse(const char *text, jobq_id_t *id)
{
    if (!text || strlen(text) != JOBQ_ID_HEX_LEN)
        return JOBQ_EINVAL;
    for (int i = 0; i < 16; i++) {
        int hi = s_hexval(text[2 * i]), lo = s_hexval(text[2 * i + 1]);
        if (hi < 0 || lo < 0)
            return JOBQ_EINVAL;
        id->b[i] = (uint8_t)(hi << 4 | lo);
    }
    return JOBQ_OK;
}

const char *
jobq_state_name(jobq_job_state state)
{
    static const char *const names[] = {"delayed", "ready", "reserved", "done", "dead"};
    return (unsigned)state < 5 ? names[state] : "?";
}

const char *
jobq_status_name(jobq_status status)
{
    static const char *const names[] = {"done", "failed", "crashed", "timedout", "dead"};
    return (unsigned)status < JOBQ_STATUS_COUNT_ ? names[status] : "?";
}
