/*
 * jobq/job.h: the one job model shared by every transport.
 *
 * A job is bytes plus a queue name and options; a result is what a worker
 * reported for one attempt of a job. Both records are plain values: the string
 * and byte fields are (pointer, length) slices that the record does NOT own.
 * Whoever fills a record owns the memory its slices point to and keeps it alive
 * while the record is used (a decoded frame owns the slices of the records it
 * returns; see common/wire.h).
 *
 * Job states and the transitions between them (drawn once here and in
 * docs/PROTOCOL.md; the broker core has one function per arrow):
 *
 *            submit(delay>0)          due
 *   (new) ----------------> DELAYED ------> READY <------------------------+
 *     |                                      |  ^                           |
 *     | submit(delay=0)                      |  | lease expired / worker    |
 *     +------------------------------------> |  | died / released / retry   |
 *                                    reserve v  |  (with backoff: DELAYED)  |
 *                                         RESERVED                          |
 *                                         |      |                          |
 *                            complete ok  |      | attempts exhausted       | kick
 *                                         v      v or bury                  |
 *                                       DONE    DEAD -----------------------+
 */
#ifndef JOBQ_JOB_H
#define JOBQ_JOB_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Limits every transport enforces (the broker may be configured lower). */
#define JOBQ_QUEUE_NAME_MAX 200          /* bytes in a queue name (beanstalkd's limit) */
#define JOBQ_UNIQUE_KEY_MAX 200          /* bytes in a unique key */
#define JOBQ_PAYLOAD_MAX (1024u * 1024u) /* bytes in a payload or a result output */
#define JOBQ_ERROR_TEXT_MAX 1024         /* bytes of error text in a result */

#define JOBQ_PRIORITY_DEFAULT 1024u /* lower runs first; FIFO within a priority */
#define JOBQ_TTR_DEFAULT_MS 30000u  /* lease (time to run) when none is given */
#define JOBQ_ATTEMPTS_DEFAULT 1u    /* max attempts when none is given (no retries) */

/* A 128-bit job id. All-zero means "not assigned yet" (the transport assigns
 * one). Producers may choose ids so that a retried submit is idempotent. */
typedef struct jobq_id {
    uint8_t b[16];
} jobq_id_t;

#define JOBQ_ID_HEX_LEN 32 /* characters in the text form, without the NUL */

typedef enum jobq_job_state {
    JOBQ_STATE_DELAYED = 0,
    JOBQ_STATE_READY = 1,
    JOBQ_STATE_RESERVED = 2,
    JOBQ_STATE_DONE = 3,
    JOBQ_STATE_DEAD = 4
} jobq_job_state;

typedef struct jobq_job {
    jobq_id_t id;
    const char *queue; /* queue name, not NUL-terminated; see queue_len */
    uint32_t queue_len;
    const void *payload; /* may be NULL when payload_len is 0 */
    uint32_t payload_len;
    uint32_t priority;     /* lower runs first */
    uint64_t delay_ms;     /* not handed out before submit time + delay_ms */
    uint32_t ttr_ms;       /* lease length for each attempt */
    uint32_t max_attempts; /* total attempts, first included; >= 1 */
    uint32_t attempt;      /* 0 before the first delivery, then 1, 2, ... */
    const char *unique;    /* optional unique key (NULL when unique_len is 0) */
    uint32_t unique_len;
    uint32_t backoff_ms; /* broker: delay before the first retry of this job, doubling up to the
                            broker's --backoff-max, +-jitter; 0 = the broker's --backoff-base.
                            Local queues retry at once and ignore it. */
} jobq_job_t;

/* How an attempt ended. DONE and FAILED come from the handler's verdict,
 * CRASHED from the worker dying (signal or lost), TIMEDOUT from a time limit,
 * DEAD is the final state after the last attempt failed. */
typedef enum jobq_status {
    JOBQ_STATUS_DONE = 0,
    JOBQ_STATUS_FAILED = 1,
    JOBQ_STATUS_CRASHED = 2,
    JOBQ_STATUS_TIMEDOUT = 3,
    JOBQ_STATUS_DEAD = 4
} jobq_status;
#define JOBQ_STATUS_COUNT_ 5

typedef struct jobq_result {
    jobq_id_t id;
    uint32_t attempt; /* the attempt this result is for (the lease fence) */
    jobq_status status;
    int32_t exit_code; /* handler's exit code, 0 when none */
    int32_t signal;    /* signal that ended the handler, 0 when none */
    uint64_t duration_us;
    const void *output; /* result bytes (may be NULL when output_len is 0) */
    uint32_t output_len;
    const char *error; /* error text, not NUL-terminated (NULL when error_len is 0) */
    uint32_t error_len;
} jobq_result_t;

/* Fills job with the defaults above: no id, queue "default", empty payload. */
void jobq_job_init(jobq_job_t *job);

/* Fills res with a zero id, status DONE and no output. */
void jobq_result_init(jobq_result_t *res);

/* Returns JOBQ_OK if job obeys the limits above (queue name 1..200 bytes of
 * [A-Za-z0-9-+/;.$_()], payload and unique key within bounds, max_attempts >= 1),
 * else JOBQ_EINVAL or JOBQ_ETOOBIG. When why is not NULL it is set to a static
 * text naming the field at fault. */
int jobq_job_validate(const jobq_job_t *job, const char **why);

/* Returns 1 if name[0..len) is a valid queue name, else 0. */
int jobq_queue_name_valid(const char *name, size_t len);

/* Writes a fresh random id (getrandom, then a counter mix) into id. */
void jobq_id_generate(jobq_id_t *id);

/* Returns 1 if id is all zero. */
int jobq_id_is_zero(const jobq_id_t *id);

/* Writes the 32 lowercase hex digits of id plus a NUL into out (33 bytes). */
void jobq_id_format(const jobq_id_t *id, char out[JOBQ_ID_HEX_LEN + 1]);

/* Parses 32 hex digits (either case) into id. Returns JOBQ_OK or JOBQ_EINVAL. */
int jobq_id_parse(const char *text, jobq_id_t *id);

/* Static names for states ("ready") and statuses ("done"). */
const char *jobq_state_name(jobq_job_state state);
const char *jobq_status_name(jobq_status status);

#ifdef __cplusplus
}
#endif
#endif
