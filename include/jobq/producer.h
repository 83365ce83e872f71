/*
 * jobq/producer.h: one producer API over every transport.
 *
 *   shm://NAME, mq://NAME   a local JoinableQueue (jobq/queue.h) on this machine
 *   tcp://HOST:PORT         a jobq broker over ZeroMQ
 *   ipc://PATH              a jobq broker over a Unix socket
 *
 * Open by URL; submit one job or a batch and get ids; wait for a job's result
 * with a timeout, or take results as they arrive; join a queue; close. A
 * submit returns only once the transport has accepted the job (the broker
 * confirmed it), so a job that submit reported as accepted is never lost by a
 * producer that closes right after.
 *
 * Results: the producer keeps results that arrive for its jobs until they are
 * taken by jobq_producer_wait or jobq_producer_next_result. On the local
 * transports there is one results channel per queue: run one waiting producer
 * per queue (results for jobs this handle did not submit are kept too, and
 * handed out by next_result).
 */
#ifndef JOBQ_PRODUCER_H
#define JOBQ_PRODUCER_H

#include "jobq/job.h"

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct jobq_producer jobq_producer_t;

typedef struct jobq_producer_opts {
    int64_t connect_timeout_ms; /* broker: how long open() waits for the handshake; 0 = 5000 */
    int64_t retry_timeout_ms;   /* broker: resend an unconfirmed request after this; 0 = 2500 */
    uint32_t max_items;         /* local: capacity when the queue is created; 0 = default */
    int no_results;             /* broker, 1: the broker does not push results to this producer;
                                   jobq_producer_wait still fetches them (WAIT), next_result gets
                                   none */
    const char *curve_key;      /* broker, CURVE: this client's key pair file (`jobq keygen`'s
                                   NAME.key, mode 0600); NULL = no CURVE. Borrowed during open
                                   only: the path is copied */
    const char *curve_server;   /* broker, CURVE: the broker's public key file (NAME.pub) */
} jobq_producer_opts_t;

/* Opens a producer on url (creating a local queue if it does not exist). opts
 * may be NULL. On success *out owns a new handle (jobq_producer_destroy); on
 * failure *out is NULL. Errors: JOBQ_EURL, JOBQ_ETIMEDOUT (no broker answered),
 * JOBQ_EVERSION, JOBQ_ESYS; with CURVE, JOBQ_EAUTH (the broker refused our key,
 * or the server key is not the broker's), and for a key file
 * that cannot be used gives JOBQ_EFORBIDDEN (unsafe permissions), JOBQ_ECORRUPT,
 * JOBQ_ENOTFOUND or JOBQ_EINVAL (only one of the two files), reason logged. */
int jobq_producer_open(const char *url, const jobq_producer_opts_t *opts, jobq_producer_t **out);

/* Closes the handle and frees it. NULL-safe; sets *p_p to NULL. */
void jobq_producer_destroy(jobq_producer_t **p_p);

/* Submits one job and returns once it is accepted. A zero job->id is replaced
 * by the assigned id (written back). The payload is copied before returning.
 * Returns JOBQ_OK; JOBQ_EDUPLICATE (an existing job has this id or unique key:
 * job->id is set to that job's id); JOBQ_EQUEUEFULL / JOBQ_EFULL;
 * JOBQ_ETIMEDOUT; JOBQ_EINVAL / JOBQ_ETOOBIG (the job breaks a limit). */
int jobq_producer_submit(jobq_producer_t *p, jobq_job_t *job, int64_t timeout_ms);

/* Submits n jobs as one batch where the transport allows. codes (may be NULL)
 * receives one jobq_err per job. Returns JOBQ_OK when every job was accepted,
 * else the first failure's code. Ids are written back as for submit. */
int jobq_producer_submit_batch(jobq_producer_t *p, jobq_job_t *jobs, size_t n, int *codes,
                               int64_t timeout_ms);

/* Waits for the result of job id. res's slices point into storage owned by p,
 * valid until the next wait/next_result call on p. Returns JOBQ_OK,
 * JOBQ_ETIMEDOUT, JOBQ_ENOTFOUND (the broker knows no such job or forgot its
 * result). */
int jobq_producer_wait(jobq_producer_t *p, const jobq_id_t *id, jobq_result_t *res,
                       int64_t timeout_ms);

/* Takes the next result that arrived for any job of this producer, in arrival
 * order. On a broker, after a reconnection (e.g. a broker restart) it also
 * asks the broker every 200 ms for the results of jobs accepted before it,
 * which the broker no longer pushes to this handle. Same ownership as wait. Returns JOBQ_OK,
 * JOBQ_ETIMEDOUT, or JOBQ_EEMPTY for timeout 0 and nothing pending. */
int jobq_producer_next_result(jobq_producer_t *p, jobq_result_t *res, int64_t timeout_ms);

/* Blocks until every job submitted to queue (by anyone) so far is finished.
 * Local transports ignore queue (the URL is the queue; NULL is fine).
 * Returns JOBQ_OK or JOBQ_ETIMEDOUT. */
int jobq_producer_join(jobq_producer_t *p, const char *queue, int64_t timeout_ms);

/* Asks workers to stop after their current job: on a local queue, puts n
 * sentinels; on a broker, the broker sends one to each connected worker of
 * queue (NULL = all queues) and n is ignored. Returns JOBQ_OK or an error. */
int jobq_producer_stop_workers(jobq_producer_t *p, const char *queue, unsigned n);

#ifdef __cplusplus
}
#endif
#endif
