/*
 * common/queue_impl.h: the transport table behind include/jobq/queue.h.
 *
 * common/queue.c parses the URL and forwards each public call to the ops of
 * the transport (shmq.c for shm:// and anonymous queues, mqq.c for mq://).
 * Adding a local transport means one new file with an *_open function and a
 * row in queue.c. Arguments are already checked for NULL by queue.c; the
 * semantics of each op are those of the public function of the same name.
 */
#ifndef JOBQ_COMMON_QUEUE_IMPL_H
#define JOBQ_COMMON_QUEUE_IMPL_H

#include "common/url.h"
#include "jobq/queue.h"

typedef struct jobq_queue_ops {
    int (*put)(void *impl, jobq_job_t *job, int sentinel, int64_t timeout_ms);
    int (*get)(void *impl, jobq_item_t *item, int64_t timeout_ms);
    int (*task_done)(void *impl, const jobq_item_t *item);
    int (*join)(void *impl, int64_t timeout_ms);
    int (*close)(void *impl);
    size_t (*size)(void *impl);
    int (*full)(void *impl);
    size_t (*unfinished)(void *impl);
    int (*reclaim)(void *impl, pid_t pid, int sig);
    int (*put_result)(void *impl, const jobq_result_t *res, int64_t timeout_ms);
    int (*get_result)(void *impl, jobq_result_t *res, int64_t timeout_ms);
    void (*destroy)(void *impl); /* detach and free impl */
} jobq_queue_ops_t;

/* Each transport's constructors: on success set *ops and *impl and return JOBQ_OK. */
int shmq_open(const jobq_url_t *url, const jobq_queue_opts_t *opts, const jobq_queue_ops_t **ops,
              void **impl);
int shmq_new_anon(const jobq_queue_opts_t *opts, const jobq_queue_ops_t **ops, void **impl);
int shmq_unlink(const jobq_url_t *url);
int mqq_open(const jobq_url_t *url, const jobq_queue_opts_t *opts, const jobq_queue_ops_t **ops,
             void **impl);
int mqq_unlink(const jobq_url_t *url);

/* The sig of a reclaim (ops->reclaim) whose holder its supervisor SIGKILLed at
 * a hard time limit: this bit plus the limit in ms (low 30 bits, clamped).
 * Set only by jobq_queue_reclaim_timedout; transports store it as they store
 * a signal and turn it into a result with queue_reclaim_verdict. */
#define QUEUE_RECLAIM_HARD 0x40000000
#define QUEUE_RECLAIM_MS_MASK 0x3fffffff

/* The verdict of a reclaimed item whose attempts are used up, from the sig
 * its reclaim was given: for a hard time limit, JOBQ_STATUS_TIMEDOUT with
 * *signal SIGKILL and "hard time limit N s exceeded ..." written to text
 * (len bytes, NUL-terminated), returning the text's length; otherwise
 * JOBQ_STATUS_CRASHED with *signal = sig, and -1 (the caller writes its own). */
int queue_reclaim_verdict(int sig, pid_t holder, uint32_t *status, int *signal, char *text,
                          size_t len);

#endif
