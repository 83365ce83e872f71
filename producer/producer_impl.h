/*
 * producer/producer_impl.h: the transport table behind include/jobq/producer.h,
 * and the result store every transport shares.
 */
#ifndef JOBQ_PRODUCER_IMPL_H
#define JOBQ_PRODUCER_IMPL_H

#include "common/url.h"
#include "jobq/producer.h"

/* A result copied out of a transport, owned by the store. */
typedef struct presult {
    struct presult *next;
    jobq_result_t res; /* slices point into data[] */
    char data[];
} presult_t;

#define PSTORE_SEEN_MAX 65536u /* result ids remembered to drop duplicates */

/* The ids of the last PSTORE_SEEN_MAX results stored: a ring with a chained
 * hash index (allocated on the first push). */
typedef struct pseen {
    jobq_id_t *ring;
    int32_t *next, *buckets; /* chains of ring positions by id hash; -1 ends */
    uint32_t head, count;
} pseen_t;

/* FIFO of results that arrived and were not taken yet. */
typedef struct pstore {
    presult_t *head, *tail;
    presult_t *taken; /* the last result handed out (freed on the next take) */
    size_t count;
    pseen_t seen;
} pstore_t;

/* Copies res (and its output and error bytes) to the tail of the store,
 * unless a result for the same id was stored recently (one of the last
 * PSTORE_SEEN_MAX): a job has one result, and a copy that arrives twice (a
 * push and a WAIT reply, or again after a broker restart) is dropped. */
void pstore_push(pstore_t *st, const jobq_result_t *res);
/* Moves the result for id (or the oldest one when id is NULL) into *out and
 * returns 1, or returns 0 when there is none. out's slices stay valid until
 * the next take or pstore_fini. */
int pstore_take(pstore_t *st, const jobq_id_t *id, jobq_result_t *out);
void pstore_fini(pstore_t *st);

typedef struct producer_ops {
    int (*submit_batch)(void *impl, jobq_job_t *jobs, size_t n, int *codes, int64_t timeout_ms);
    /* Receives results into st until one for id arrives (id NULL: any) or the
     * deadline passes. Returns JOBQ_OK (something arrived), JOBQ_ETIMEDOUT. */
    int (*pump)(void *impl, pstore_t *st, const jobq_id_t *id, int64_t deadline_ms);
    int (*join)(void *impl, const char *queue, int64_t timeout_ms);
    int (*stop_workers)(void *impl, const char *queue, unsigned n);
    void (*destroy)(void *impl);
} producer_ops_t;

int producer_local_open(const jobq_url_t *url, const jobq_producer_opts_t *opts,
                        const producer_ops_t **ops, void **impl);
int producer_broker_open(const jobq_url_t *url, const jobq_producer_opts_t *opts,
                         const producer_ops_t **ops, void **impl);

#endif
