/*
 * broker/journal_sync.c: the batch policy's sync helper: one thread that runs
 * fdatasync for the journal so that the reactor does not wait for the disk
 * (with batch:MS the acks never wait for a sync; only the promise "synced
 * within MS" does). The reactor asks for a sync of (fd, logical end); the
 * thread reports how far it synced, and the first error, which the journal
 * turns into a fail-stop. A lock and a condition variable inside the object
 * guard its few fields (STYLE.md 12: the lock lives in the object it guards).
 *
 * Invariant: the fd of a request stays open until jrn_syncer_wait_idle has
 * returned (the journal calls it before closing a segment).
 */
#include "broker/journal_int.h"
#include "common/alloc.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>

struct jrn_syncer {
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int fd;         /* of the pending request */
    uint64_t want;  /* logical end asked for */
    uint64_t done;  /* logical end synced */
    uint64_t syncs; /* fdatasync calls made */
    int err;        /* errno of the first failure, or 0 */
    int busy, stop;
};

static void *
s_main(void *arg)
{
    jrn_syncer_t *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (!s->stop && (s->want <= s->done || s->err))
            pthread_cond_wait(&s->cv, &s->mu);
        if (s->stop)
            break;
        uint64_t target = s->want;
        int fd = s->fd;
        s->busy = 1;
        pthread_mutex_unlock(&s->mu);
        int rc = fdatasync(fd);
        int err = rc == 0 ? 0 : errno;
        pthread_mutex_lock(&s->mu);
        s->busy = 0;
        s->syncs++;
        if (err)
            s->err = err;
        else if (target > s->done)
            s->done = target;
        pthread_cond_broadcast(&s->cv);
    }
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

jrn_syncer_t *
jrn_syncer_new(void)
{
    jrn_syncer_t *s = jobq_calloc(1, sizeof *s);
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    if (pthread_create(&s->thread, NULL, s_main, s) != 0) {
        pthread_cond_destroy(&s->cv);
        pthread_mutex_destroy(&s->mu);
        jobq_free(s);
        return NULL;
    }
    return s;
}

void
jrn_syncer_destroy(jrn_syncer_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    jrn_syncer_t *s = *self_p;
    pthread_mutex_lock(&s->mu);
    s->stop = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->thread, NULL);
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    jobq_free(s);
    *self_p = NULL;
}

void
jrn_syncer_request(jrn_syncer_t *s, int fd, uint64_t upto)
{
    pthread_mutex_lock(&s->mu);
    while (s->busy && s->fd != fd) /* a sync of the previous segment still runs */
        pthread_cond_wait(&s->cv, &s->mu);
    s->fd = fd;
    if (upto > s->want)
        s->want = upto;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

void
jrn_syncer_wait_idle(jrn_syncer_t *s)
{
    pthread_mutex_lock(&s->mu);
    while (s->busy || (s->want > s->done && !s->err))
        pthread_cond_wait(&s->cv, &s->mu);
    pthread_mutex_unlock(&s->mu);
}

void
jrn_syncer_poll(jrn_syncer_t *s, uint64_t *done, int *err, uint64_t *syncs)
{
    pthread_mutex_lock(&s->mu);
    *done = s->done;
    *err = s->err;
    *syncs = s->syncs;
    pthread_mutex_unlock(&s->mu);
}
