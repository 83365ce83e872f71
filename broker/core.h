/*
 * broker/core.h: the broker's scheduling core. Named queues with priorities,
 * delays, leases fenced by (job id, attempt), retries with backoff, dead sets,
 * unique keys, result retention and join counts, all as plain data structures:
 * no sockets, no I/O, no threads, no clock. Every call that needs the time
 * takes now_ms (CLOCK_MONOTONIC milliseconds, from 0); time never goes back
 * inside the core (a now_ms smaller than one seen before counts as the
 * largest seen).
 *
 * Who calls it: the reactor (broker/reactor.c) decodes a frame, calls the
 * core, drains core_event_next() and encodes replies; it polls with the
 * timeout that core_tick() returns (no fixed tick). For a frame of many jobs
 * or results, core_submit_batch and core_complete_batch do the same as one
 * call per item but overlap the index lookups (at millions of queued jobs
 * each one is a cache miss: bench/bench_core.c, W5). A journal replays state
 * changes through the same calls (see "Replay" below).
 *
 * The job states and their transitions are drawn in include/jobq/job.h; the
 * table of transition -> function is at the top of broker/core.c.
 *
 * Identities: jobs by jobq_id_t; workers and submitters by opaque uint64
 * handles the reactor chooses (a connection number, say); queues by name
 * (pointer, length). Every argument that could come from a peer is checked
 * and answered with a jobq_err; nothing a peer sends reaches an assert. The
 * core checks a queue name's length (1..JOBQ_QUEUE_NAME_MAX) and that its
 * pointer is set; its character set is the caller's job (jobq_queue_name_valid).
 *
 * Lifetimes: views (core_job_view_t, core_result_view_t) point into core
 * memory and stay valid until the next call that changes the core (any call
 * but core_peek, core_result, core_list, the stats calls, core_queue_unfinished,
 * core_next_deadline and core_check). Queue names in events and stats stay
 * valid until core_destroy (queues are never removed).
 *
 * Semantics (decided here, relied on by the reactor and docs/PROTOCOL.md):
 *  1. Order: lower priority numbers first; FIFO within a priority by the time
 *     a job became READY, so a retried, expired, released or kicked job goes
 *     to the back of its priority. Jobs due in the same millisecond become
 *     READY in an unspecified order.
 *  2. Reserve over several queues takes the lowest priority number among the
 *     queues' first jobs; queues whose first jobs tie take turns.
 *  3. attempt is the delivery counter and the lease fence: +1 at each reserve,
 *     never smaller. Attempts *used* (checked against max_attempts) leave out
 *     voluntary returns (core_release, CORE_RELEASE_GRACEFUL) and the
 *     deliveries before the last kick. A failure that leaves used >=
 *     max_attempts buries the job.
 *  4. A FAILED/CRASHED/TIMEDOUT report from the worker retries after an
 *     exponential backoff with jitter (DELAYED; straight to READY when the
 *     backoff is 0). An expired lease (TIMEDOUT) or a lost worker (CRASHED)
 *     puts the job back to READY at once. Jobs that went DEAD keep how the
 *     last attempt ended (status, exit code, signal, error text), so crashes
 *     and failures are told apart.
 *  5. Join: unfinished = DELAYED + READY + RESERVED jobs of the queue. DEAD
 *     counts as finished (it will not run again unless kicked; a kick makes it
 *     unfinished again) and so does a deleted job.
 *  6. Results: DONE stores the worker's result; DEAD stores a result with
 *     status DEAD (output dropped, error text kept). Each is announced once by
 *     a CORE_EV_RESULT event; core_take_result marks it delivered; both
 *     core_result and a duplicate submit still find it until retention (count,
 *     bytes, age) drops it. The result of a DEAD job stays while the job is in
 *     the dead set; kicking the job discards it, deleting the job starts its
 *     retention. Deleting a DELAYED or READY job stores a DEAD result with the
 *     error "deleted" so that a waiting submitter learns of it.
 *  7. Unique keys are scoped per queue: while the key's job is DELAYED, READY
 *     or RESERVED, or DEAD, or its result is retained, a submit with the same
 *     key returns that job's id with JOBQ_EDUPLICATE.
 *  8. Limits: max_jobs and max_bytes (payload + unique key) count every job of
 *     a queue that is not finished DONE (DEAD jobs included: they hold memory).
 *
 * Replay (for the journal): core_submit honours a client-chosen id, the
 * attempt count (0 <= attempt < max_attempts) and the delay, so a job is
 * restored with one submit; a restored job with no attempts left is submitted
 * then buried with core_bury; core_kick_job, core_delete, core_pause replay
 * as they are. A job that was RESERVED when the broker stopped is restored as
 * READY with the attempts it had used (RELIABILITY.md P8).
 */
#ifndef JOBQ_BROKER_CORE_H
#define JOBQ_BROKER_CORE_H

#include "jobq/errors.h"
#include "jobq/job.h"

#include <stddef.h>
#include <stdint.h>

typedef struct core core_t;

/* Limits and defaults (RELIABILITY.md S5). */
#define CORE_MAX_QUEUES_DEFAULT 1000u
#define CORE_MAX_JOBS_DEFAULT 100000u
#define CORE_MAX_BYTES_DEFAULT (256u * 1024u * 1024u)
#define CORE_BACKOFF_BASE_DEFAULT_MS 1000   /* first retry after about 1 s */
#define CORE_BACKOFF_MAX_DEFAULT_MS 3600000 /* doubling up to 1 h */
#define CORE_BACKOFF_JITTER_DEFAULT_PCT 20u /* each delay drawn within +-20% */
#define CORE_RESULTS_MAX_DEFAULT 100000u    /* retained results */
#define CORE_RESULT_BYTES_DEFAULT (256u * 1024u * 1024u)
#define CORE_RESULT_AGE_DEFAULT_MS 3600000 /* results kept 1 h */
#define CORE_QUEUES_LIMIT 32767u           /* most queues a core can be configured for */
#define CORE_ATTEMPTS_MAX 65535u           /* most max_attempts (and deliveries) per job */
#define CORE_DELAY_MAX_MS (INT64_C(10) * 366 * 24 * 3600 * 1000) /* about 10 years */
#define CORE_RESERVE_QUEUES_MAX 256u                             /* queue names in one reserve */
#define CORE_FOREVER INT64_MAX /* pause until resumed; "no deadline" */

typedef struct core_config {
    uint32_t max_queues;         /* queues created on first use, then refused */
    uint32_t max_jobs;           /* per queue */
    uint64_t max_bytes;          /* per queue: payload + unique key bytes */
    int64_t backoff_base_ms;     /* delay after the first failed attempt; 0 = retry at once */
    int64_t backoff_max_ms;      /* cap of the doubling delay (before jitter) */
    uint32_t backoff_jitter_pct; /* 0..100: delay * (1 +- pct/100), uniform */
    uint32_t results_max;        /* retained results (DEAD jobs' results not counted) */
    uint64_t result_bytes_max;   /* retained result bytes (output + error + key) */
    int64_t result_age_ms;       /* how long a result is kept after it is stored */
    uint64_t seed;               /* hash and jitter seed; 0 = a random one */
} core_config_t;

/* A queue name slice (not NUL-terminated). */
typedef struct core_name {
    const char *ptr;
    uint32_t len;
} core_name_t;

/* Why a worker's jobs are handed back by core_release_worker. */
typedef enum core_release_reason {
    CORE_RELEASE_LOST = 0,    /* heartbeat lost or connection gone: a crashed attempt */
    CORE_RELEASE_DIED = 1,    /* the worker process died: a crashed attempt */
    CORE_RELEASE_GRACEFUL = 2 /* the worker handed unstarted jobs back: costs no attempt */
} core_release_reason;

/* A job as the core shows it (peek, list, reserve). */
typedef struct core_job_view {
    jobq_id_t id;
    jobq_job_state state;
    const char *queue; /* core-owned, valid until core_destroy */
    uint32_t queue_len;
    const void *payload; /* NULL once the job is DONE */
    uint32_t payload_len;
    const char *unique; /* NULL when the job has no unique key */
    uint32_t unique_len;
    uint32_t priority;
    uint32_t ttr_ms;
    uint32_t max_attempts;
    uint32_t attempt;       /* deliveries so far: the fence of the current or last lease */
    uint32_t attempts_used; /* counted against max_attempts (see semantics 3) */
    uint32_t backoff_ms;    /* the job's own first-retry delay; 0 = the core's */
    uint64_t submitter;
    int64_t since_ms;    /* when it entered its state (DONE/DEAD: finished; DELAYED: 0) */
    int64_t ready_at_ms; /* DELAYED: when it becomes READY; else 0 */
    int64_t deadline_ms; /* RESERVED: when the lease runs out; else 0 */
    uint64_t worker;     /* RESERVED: the lease holder; else 0 */
    /* DEAD and DONE: how the last attempt ended. */
    jobq_status last_status;
    int32_t exit_code;
    int32_t signal;
    const char *error;
    uint32_t error_len;
} core_job_view_t;

/* A stored result. status is DONE or DEAD; last_status tells how the last
 * attempt ended (DONE, FAILED, CRASHED, TIMEDOUT, or DEAD for a bury or delete). */
typedef struct core_result_view {
    jobq_id_t id;
    uint64_t submitter;
    const char *queue;
    uint32_t queue_len;
    jobq_status status;
    jobq_status last_status;
    int32_t exit_code;
    int32_t signal;
    uint32_t attempts; /* attempts used */
    uint64_t duration_us;
    const void *output; /* NULL when output_len is 0 */
    uint32_t output_len;
    const char *error; /* NULL when error_len is 0 */
    uint32_t error_len;
    int64_t finished_ms;
    int delivered; /* 1 once core_take_result returned it */
} core_result_view_t;

typedef enum core_event_type {
    CORE_EV_RESULT = 1, /* a result is stored for id: send it to submitter */
    CORE_EV_JOIN = 2,   /* queue's unfinished count reached 0: answer its joins */
    CORE_EV_READY = 3,  /* queue has jobs to hand out again (none could be before) */
    CORE_EV_EXPIRED = 4 /* core_tick expired worker's lease on id (attempt TIMEDOUT): the
                           worker may be frozen or too slow, so the reactor hands it nothing
                           more until it is heard from again (RELIABILITY.md 3.1) */
} core_event_type;

/* One event. An expired lease emits EXPIRED first, then whatever the job's
 * move to READY or DEAD emits (READY, RESULT, JOIN). */
typedef struct core_event {
    core_event_type type;
    jobq_id_t id;       /* RESULT, EXPIRED */
    uint64_t submitter; /* RESULT */
    uint64_t worker;    /* EXPIRED: the handle of the worker whose lease ran out; else 0 */
    const char *queue;  /* all types; core-owned, valid until core_destroy */
    uint32_t queue_len;
} core_event_t;

typedef struct core_queue_stats {
    const char *name; /* core-owned */
    uint32_t name_len;
    uint64_t ready, delayed, reserved, dead; /* jobs in each state now */
    uint64_t unfinished;                     /* ready + delayed + reserved */
    uint64_t jobs, bytes;                    /* counted against max_jobs, max_bytes */
    uint64_t submitted;                      /* jobs accepted */
    uint64_t done;                           /* jobs finished DONE */
    uint64_t completed;                      /* worker reports accepted (any status) */
    uint64_t failed;  /* failed attempts: reports, expired leases, lost workers */
    uint64_t retried; /* failed attempts that went back with attempts left */
    uint64_t buried;  /* times a job went DEAD */
    uint64_t expired; /* leases that ran out */
    uint64_t released, kicked, deleted;
    int paused;
    int64_t paused_until_ms; /* CORE_FOREVER until resumed */
} core_queue_stats_t;

typedef struct core_worker_stats {
    uint64_t worker;
    uint32_t credit; /* jobs it may hold */
    uint32_t held;   /* jobs it holds */
    uint64_t delivered, done, failed, extended, released;
    int64_t last_ms; /* last call that named this worker */
} core_worker_stats_t;

typedef struct core_stats {
    uint32_t queues, workers;
    uint64_t jobs, bytes; /* every job the core holds, and their payload + key bytes */
    uint64_t delayed, reserved;
    uint64_t results, result_bytes; /* retained results */
    uint64_t dead_results;          /* results held by DEAD jobs */
    uint64_t submitted, duplicates, refused_full, done, buried;
} core_stats_t;

/* Fills cfg with the defaults above (seed 0). */
void core_config_init(core_config_t *cfg);

/* Returns a new, empty core configured by cfg (NULL means the defaults), or
 * NULL if cfg is out of range (max_queues 0 or over CORE_QUEUES_LIMIT, a zero
 * max_jobs/max_bytes, negative times, jitter over 100, cap below base).
 * The caller owns the core. */
core_t *core_new(const core_config_t *cfg);

/* Frees the core and every job, result and worker in it; sets *self_p to NULL.
 * NULL-safe. Emits no events. */
void core_destroy(core_t **self_p);

/* Accepts job (copied: the core keeps nothing of the caller's memory) for
 * submitter. A zero id gets a fresh one (random per core, then a counter mix). job->delay_ms > 0
 * makes it DELAYED until now + delay, else READY. Returns JOBQ_OK with *id_out set; JOBQ_EDUPLICATE
 * with *id_out and *state_out naming the existing job when the id, or the unique key in this queue,
 * is taken (state DONE or DEAD when only its result remains); JOBQ_EQUEUEFULL when the queue is at
 * max_jobs or would pass max_bytes, or a new queue would pass max_queues; JOBQ_EINVAL or
 * JOBQ_ETOOBIG for a bad field. id_out and state_out may be NULL. */
int core_submit(core_t *core, const jobq_job_t *job, uint64_t submitter, int64_t now_ms,
                jobq_id_t *id_out, jobq_job_state *state_out);

/* Submits jobs[0..n) for submitter exactly as n calls of core_submit at
 * now_ms would, but overlaps their index lookups (the broker receives jobs in
 * batches; at millions of queued jobs each lookup is a cache miss). rcs[i]
 * gets job i's code; ids_out[i] and states_out[i] (both arrays may be NULL)
 * what core_submit would set. */
void core_submit_batch(core_t *core, const jobq_job_t *jobs, size_t n, uint64_t submitter,
                       int64_t now_ms, int *rcs, jobq_id_t *ids_out, jobq_job_state *states_out);

/* Sets how many jobs worker may hold at once (creating the worker on first
 * use). Lowering it below what the worker holds takes nothing back; reserve
 * just hands out no more until it is under. Returns JOBQ_OK. */
int core_worker_credit(core_t *core, uint64_t worker, uint32_t credit, int64_t now_ms);

/* Hands worker up to max READY jobs from the named queues (unknown or paused
 * queues are skipped), never more than its credit allows: each becomes
 * RESERVED with attempt + 1 and a lease until now + ttr. out (room for max
 * views) receives them in hand-out order; *nout their number. Returns JOBQ_OK
 * (possibly with 0 jobs); JOBQ_ENOTFOUND for a worker never given credit;
 * JOBQ_EINVAL for a bad name or more than CORE_RESERVE_QUEUES_MAX queues. */
int core_reserve(core_t *core, uint64_t worker, const core_name_t *queues, size_t nqueues,
                 int64_t now_ms, size_t max, core_job_view_t *out, size_t *nout);

/* Records worker's result for (res->id, res->attempt). DONE finishes the job;
 * FAILED, CRASHED and TIMEDOUT retry it with backoff while attempts remain,
 * else bury it; DEAD buries it at once. Returns JOBQ_OK; JOBQ_ENOTFOUND for an
 * unknown id; JOBQ_ESTALE when that attempt no longer holds the lease (an old
 * attempt, a second report, a job not RESERVED); JOBQ_EFORBIDDEN when another
 * worker holds it; JOBQ_EINVAL/JOBQ_ETOOBIG for a malformed result. The result's
 * bytes are copied. */
int core_complete(core_t *core, uint64_t worker, const jobq_result_t *res, int64_t now_ms);

/* Records res[0..n) from worker exactly as n calls of core_complete at now_ms
 * would, overlapping their index lookups; rcs[i] gets result i's code. */
void core_complete_batch(core_t *core, uint64_t worker, const jobq_result_t *res, size_t n,
                         int64_t now_ms, int *rcs);

/* Renews the lease of (id, attempt) held by worker to now + ttr_ms (0: the
 * job's own ttr). Same fencing errors as core_complete. *deadline_out (may be
 * NULL) gets the new deadline. */
int core_extend(core_t *core, uint64_t worker, const jobq_id_t *id, uint32_t attempt,
                uint32_t ttr_ms, int64_t now_ms, int64_t *deadline_out);

/* worker gives (id, attempt) back without running it: READY at once, or
 * DELAYED for delay_ms. Costs no attempt. Same fencing errors as
 * core_complete; JOBQ_EINVAL for a delay over CORE_DELAY_MAX_MS. */
int core_release(core_t *core, uint64_t worker, const jobq_id_t *id, uint32_t attempt,
                 uint64_t delay_ms, int64_t now_ms);

/* Hands back every job worker holds and forgets the worker (credit and
 * counters). LOST and DIED count a crashed attempt: READY at once while
 * attempts remain, else DEAD; GRACEFUL costs no attempt. *nreleased (may be
 * NULL) gets the number of jobs. Returns JOBQ_OK or JOBQ_ENOTFOUND. */
int core_release_worker(core_t *core, uint64_t worker, int64_t now_ms, core_release_reason reason,
                        size_t *nreleased);

/* Promotes DELAYED jobs that are due, expires leases whose deadline has
 * passed (a TIMEDOUT attempt: READY at once, or DEAD when used up; each
 * expiry emits CORE_EV_EXPIRED naming the job and its worker), ends
 * timed pauses and drops results past retention. Returns the next time
 * anything is due (ms), or CORE_FOREVER: the reactor polls until then. */
int64_t core_tick(core_t *core, int64_t now_ms);

/* Returns what core_tick would return, without changing anything. */
int64_t core_next_deadline(const core_t *core);

/* Moves up to n of the queue's DEAD jobs, oldest first, back to READY with
 * their used attempts reset. *kicked (may be NULL) gets how many. Returns
 * JOBQ_OK or JOBQ_ENOTFOUND for an unknown queue. */
int core_kick(core_t *core, const char *queue, uint32_t queue_len, uint64_t n, int64_t now_ms,
              uint64_t *kicked);

/* Moves the DEAD job id back to READY with its used attempts reset. Returns
 * JOBQ_OK, JOBQ_ENOTFOUND, or JOBQ_ESTATE when the job is not DEAD. */
int core_kick_job(core_t *core, const jobq_id_t *id, int64_t now_ms);

/* Buries a DELAYED or READY job (an operator's bury, or a journal restoring a
 * job with no attempts left) with last_status and error text (copied; may be
 * NULL when error_len is 0). Returns JOBQ_OK, JOBQ_ENOTFOUND, JOBQ_ESTATE for a
 * RESERVED or DEAD job, JOBQ_EINVAL/JOBQ_ETOOBIG for bad arguments. */
int core_bury(core_t *core, const jobq_id_t *id, jobq_status last_status, const char *error,
              uint32_t error_len, int64_t now_ms);

/* Removes job id in any state but RESERVED (see semantics 6), or the retained
 * result of a finished one. Returns JOBQ_OK, JOBQ_ENOTFOUND, or JOBQ_ESTATE for
 * a RESERVED job (its holder must finish or release it first). */
int core_delete(core_t *core, const jobq_id_t *id, int64_t now_ms);

/* Stops handing out jobs of queue (created on first use) until until_ms, or
 * until core_resume when until_ms is CORE_FOREVER; until_ms <= now resumes.
 * Returns JOBQ_OK, JOBQ_EINVAL, or JOBQ_EQUEUEFULL when a new queue would pass
 * max_queues. */
int core_pause(core_t *core, const char *queue, uint32_t queue_len, int64_t until_ms,
               int64_t now_ms);

/* Lifts a pause. Returns JOBQ_OK (also when not paused), JOBQ_ENOTFOUND, JOBQ_EINVAL. */
int core_resume(core_t *core, const char *queue, uint32_t queue_len, int64_t now_ms);

/* Sets *count to the queue's unfinished jobs (semantics 5); 0 for a queue never
 * used. Returns JOBQ_OK or JOBQ_EINVAL. */
int core_queue_unfinished(const core_t *core, const char *queue, uint32_t queue_len,
                          uint64_t *count);

/* Copies the oldest undrained event into *ev and returns 1, or returns 0 when
 * none is left. The reactor drains events after every call that changes the
 * core; they accumulate until drained. */
int core_event_next(core_t *core, core_event_t *ev);

/* Fills *view with the stored result of id. Returns JOBQ_OK or JOBQ_ENOTFOUND
 * (no result, or dropped by retention). */
int core_result(const core_t *core, const jobq_id_t *id, core_result_view_t *view);

/* Like core_result, and marks the result delivered (view->delivered shows the
 * state before this call). The result stays retained. */
int core_take_result(core_t *core, const jobq_id_t *id, core_result_view_t *view);

/* Fills *view with job id: a live job, or a finished one whose result is
 * retained (state DONE or DEAD, no payload). Returns JOBQ_OK or JOBQ_ENOTFOUND. */
int core_peek(const core_t *core, const jobq_id_t *id, core_job_view_t *view);

/* Fills out with up to max jobs of the queue in state: READY in hand-out
 * order, DEAD oldest first (kick order), DELAYED in no particular order (the
 * soonest first). *nout gets the number. Returns JOBQ_OK (0 jobs for an unknown
 * queue), or JOBQ_EINVAL for another state or a bad name. */
int core_list(const core_t *core, const char *queue, uint32_t queue_len, jobq_job_state state,
              size_t max, core_job_view_t *out, size_t *nout);

/* Per-queue counters. Returns JOBQ_OK, JOBQ_ENOTFOUND or JOBQ_EINVAL. */
int core_queue_stats(const core_t *core, const char *queue, uint32_t queue_len,
                     core_queue_stats_t *st);

/* Number of queues, and the stats of the i-th (0 <= i < count; creation order). */
uint32_t core_queue_count(const core_t *core);
int core_queue_stats_at(const core_t *core, uint32_t i, core_queue_stats_t *st);

/* Per-worker counters. Returns JOBQ_OK or JOBQ_ENOTFOUND. */
int core_worker_stats(const core_t *core, uint64_t worker, core_worker_stats_t *st);

/* Copies the ids of up to max jobs that worker holds (in the order it got
 * them; the order changes as leases end) into ids; returns how many (0 for an
 * unknown worker). */
uint32_t core_worker_jobs(const core_t *core, uint64_t worker, jobq_id_t *ids, uint32_t max);

/* Number of workers, and the stats of the i-th (order changes as workers leave). */
uint32_t core_worker_count(const core_t *core);
int core_worker_stats_at(const core_t *core, uint32_t i, core_worker_stats_t *st);

/* Totals over the whole core. */
void core_stats(const core_t *core, core_stats_t *st);

/* Checks every invariant (each job in exactly the structure its state names,
 * heap and FIFO orders, positions, counters, indexes). O(everything): for
 * tests. Returns 0, or -1 with *why (may be NULL) set to a static text. */
int core_check(const core_t *core, const char **why);

/* ---- journal support (broker/core_journal.c) ------------------------------ */

/* What a change hook is told: every job state change that a journal must
 * record, after it happened. DELAYED -> READY on time and a timed pause that
 * runs out are not reported (a journal keeps their wall-clock times). */
typedef enum core_change_kind {
    CORE_CH_SUBMIT = 1, /* job accepted (READY or DELAYED): job */
    CORE_CH_STATE = 2,  /* job moved to READY, DELAYED or RESERVED: job */
    CORE_CH_DONE = 3,   /* job finished DONE: res, unique (the job is gone) */
    CORE_CH_DEAD = 4,   /* job went DEAD: job and res, unique */
    CORE_CH_DELETE = 5, /* job id deleted (a DEAD result "deleted" or its own is kept) */
    CORE_CH_FORGET = 6, /* the retained result of id was dropped */
    CORE_CH_PAUSE = 7   /* queue paused until until_ms (CORE_FOREVER), or resumed (0) */
} core_change_kind;

/* One change. The views point into core memory, valid during the hook only. */
typedef struct core_change {
    core_change_kind kind;
    jobq_id_t id;
    const core_job_view_t *job;    /* SUBMIT, STATE, DEAD; else NULL */
    const core_result_view_t *res; /* DONE, DEAD; else NULL */
    const void *unique;            /* DONE, DEAD: the job's unique key (NULL: none) */
    uint32_t unique_len;
    const char *queue; /* PAUSE */
    uint32_t queue_len;
    int64_t until_ms; /* PAUSE */
} core_change_t;

/* Called after each change; must not call back into the core. */
typedef void (*core_hook_fn)(void *arg, const core_change_t *ch);

/* Installs hook (NULL removes it). At most one hook. */
void core_set_hook(core_t *core, core_hook_fn hook, void *arg);

/* Takes back a job that core_submit accepted in this same call sequence
 * (READY or DELAYED, nothing else happened to it) as if it had never been
 * submitted: no result, no hook call (a journal that could not record the
 * submit). Returns JOBQ_OK, JOBQ_ENOTFOUND or JOBQ_ESTATE. */
int core_unsubmit(core_t *core, const jobq_id_t *id);

/* Restores a finished job's retained result (journal replay): v gives the
 * id, queue, submitter, status and the rest, finished_ms its time (monotonic,
 * may be in the past); unique (copied, may be NULL) is the job's unique key.
 * Returns JOBQ_OK, JOBQ_EDUPLICATE when the id or key is taken, JOBQ_EINVAL,
 * JOBQ_ETOOBIG, or JOBQ_EQUEUEFULL for a queue past max_queues. */
int core_restore_result(core_t *core, const core_result_view_t *v, const void *unique,
                        uint32_t unique_len, int64_t now_ms);

/* Sets the delivery counter (the lease fence) and the attempts used of a
 * live job that is not RESERVED (journal replay: core_submit restores used
 * attempts only, and below max_attempts). Returns JOBQ_OK, JOBQ_ENOTFOUND,
 * JOBQ_ESTATE for a RESERVED job, JOBQ_EINVAL when used > attempt or attempt
 * is over CORE_ATTEMPTS_MAX. */
int core_restore_attempts(core_t *core, const jobq_id_t *id, uint32_t attempt, uint32_t used);

/* Gives the DEAD job id the exit code, signal, duration and finish time
 * (monotonic) of the attempt that buried it (journal replay: core_bury keeps
 * only the status and error text). Returns JOBQ_OK, JOBQ_ENOTFOUND, or
 * JOBQ_ESTATE when the job is not DEAD. */
int core_restore_dead_outcome(core_t *core, const jobq_id_t *id, int32_t exit_code, int32_t signal,
                              uint64_t duration_us, int64_t finished_ms);

/* Iterates every live job (any state, RESERVED included) with *cursor = 0 at
 * the start: fills *view and returns 1, or returns 0 at the end. The core must
 * not change during the iteration. */
int core_job_next(const core_t *core, uint32_t *cursor, core_job_view_t *view);

/* Iterates every retained result of a finished job (not those held by DEAD
 * jobs) like core_job_next; *unique and *unique_len get its unique key. */
int core_result_next(const core_t *core, uint32_t *cursor, core_result_view_t *view,
                     const void **unique, uint32_t *unique_len);

#endif
