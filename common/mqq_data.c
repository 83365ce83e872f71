/*
 * common/mqq_data.c: the data path of the mq:// transport (common/mqq.c): put, get,
 * task_done, join, size and the results channel, and the ops table. Slots move through
 * the in-flight table of common/mqq_reclaim.c; types are in common/mqq_int.h.
 *
 * Invariants relied on here: put, get and task_done take no lock (only a reclaim pass
 * does); a put counts before it sends and uncounts before it waits; an item is handed
 * to the caller only once its slot is HELD.
 *
 * Waiting. There are no pthread condition variables: join sleeps on a futex word in the
 * segment (done_seq), at most 100 ms at a time, and task_done wakes it only when a
 * joiner has raised join_flag.
 * Getters wait in mq_timedreceive (CLOCK_REALTIME deadlines) in slices of at most
 * 100 ms and recheck the closed flag and the orphans between slices.
 *
 * close() sets a flag in the segment: later puts get JOBQ_ECLOSED (sentinels are still
 * allowed); a getter gets JOBQ_ECLOSED once the mq is empty and no item that could come
 * back (an orphan, or an item held by another process) remains.
 *
 * Fault points (common/fault.h): mqq.get.claimed (slot RECEIVING, before mq_receive),
 * mqq.get.received (mq_receive returned, slot not yet HELD), mqq.put.counted (put
 * counted, not yet sent).
 *
 * Known windows: a producer killed between counting a put and entering mq_timedsend
 * (a few instructions) leaves unfinished one too high. A wall-clock step backwards can
 * stretch one mq_timedreceive slice.
 */
#include "common/clock.h"
#include "common/fault.h"
#include "common/futex.h"
#include "common/log.h"
#include "common/mqq_int.h"
#include "jobq/errors.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <string.h>
#include <time.h>

/* Absolute CLOCK_REALTIME time ms from now; ms <= 0 gives a time in the past. */
static void
s_abs_realtime(int64_t ms, struct timespec *ts)
{
    if (ms <= 0) {
        ts->tv_sec = 0;
        ts->tv_nsec = 0;
        return;
    }
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += (time_t)(ms / 1000);
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

/* The next sleep before deadline_ms: at most MQQ_SLICE_MS. */
static int64_t
s_slice(int64_t deadline_ms)
{
    int64_t left = jobq_remaining_ms(deadline_ms);
    return (left < 0 || left > MQQ_SLICE_MS) ? MQQ_SLICE_MS : left;
}

/* ---- the queue operations --------------------------------------------------------- */

static uint32_t
s_curmsgs(mqq_t *q)
{
    struct mq_attr a;
    return mq_getattr(q->jobs, &a) == 0 ? (uint32_t)a.mq_curmsgs : 0;
}

/* Closed queue, as seen by getter pid: 1 if nothing is left that it could still get
 * (the mq is empty, no orphan, no item that another process holds and could die with). */
static int
s_drained(mqq_t *q, pid_t pid)
{
    if (s_curmsgs(q) != 0)
        return 0;
    uint32_t hw = atomic_load(&q->seg->slot_hw);
    for (uint32_t i = 0; i < hw; i++) {
        uint64_t w = atomic_load(&q->seg->slots[i].word);
        unsigned st = W_STATE(w);
        if (st == S_ORPHAN || st == S_ADOPTING)
            return 0;
        if (W_PID(w) != (pid & 0x3fffff) &&
            (st == S_HELD || (st == S_RECEIVING && mqq_job_valid_(q->seg->bufs[i], 0))))
            return 0;
    }
    return 1;
}

static int
s_put(void *impl, jobq_job_t *job, int sentinel, int64_t timeout_ms)
{
    mqq_t *q = impl;
    mqq_seg_t *seg = q->seg;
    uint32_t len = sentinel ? 0 : job->payload_len;
    if (!sentinel) {
        if ((len && !job->payload) || job->max_attempts < 1 || job->ttr_ms < 1)
            return JOBQ_EINVAL;
        if (len > MQQ_PAYLOAD_MAX) {
            LOG_WARN("mq://%s: payload of %u bytes is over the mq:// limit of %u bytes (one "
                     "POSIX mq message of %u bytes minus a %u-byte header); use shm:// for "
                     "larger payloads",
                     q->name, len, MQQ_PAYLOAD_MAX, MQQ_MSGSIZE, MQQ_JOB_HDR);
            return JOBQ_ETOOBIG;
        }
    }
    if (jobq_id_is_zero(&job->id))
        jobq_id_generate(&job->id);
    alignas(8) unsigned char buf[MQQ_MSGSIZE];
    mqq_job_hdr_t h = {.magic = MQQ_MSG_MAGIC,
                       .kind = sentinel ? MQQ_KIND_SENTINEL : MQQ_KIND_JOB,
                       .hdr_len = MQQ_JOB_HDR,
                       .len = len,
                       .id = job->id,
                       .attempt = sentinel ? 1 : job->attempt + 1,
                       .max_attempts = sentinel ? 1 : job->max_attempts,
                       .ttr_ms = job->ttr_ms};
    h.check = mqq_check_(&h, sizeof h, job->payload, len);
    memcpy(buf, &h, sizeof h);
    if (len)
        memcpy(buf + sizeof h, job->payload, len);

    static const struct timespec past = {0, 0};
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    for (;;) {
        if (!sentinel && atomic_load(&seg->closed))
            return JOBQ_ECLOSED;
        if (atomic_load_explicit(&q->full, memory_order_relaxed)) {
            struct pollfd pfd = {.fd = (int)q->jobs, .events = POLLOUT};
            poll(&pfd, 1, (int)s_slice(deadline));
        }
        atomic_fetch_add(&seg->puts, 1);
        JOBQ_FAULT("mqq.put.counted");
        if (mq_timedsend(q->jobs, (const char *)buf, sizeof h + len, 0, &past) == 0) {
            atomic_store_explicit(&q->full, 0, memory_order_relaxed);
            return JOBQ_OK;
        }
        int err = errno;
        atomic_fetch_sub(&seg->puts, 1);
        mqq_wake_joiners_(seg);
        if (err == EINTR)
            continue;
        if (err != ETIMEDOUT && err != EAGAIN) {
            LOG_WARN("mq://%s: mq_timedsend: %s", q->name, strerror(err));
            return JOBQ_ESYS;
        }
        atomic_store_explicit(&q->full, 1, memory_order_relaxed);
        if (jobq_remaining_ms(deadline) == 0)
            return timeout_ms == 0 ? JOBQ_EFULL : JOBQ_ETIMEDOUT;
    }
}

static int
s_get(void *impl, jobq_item_t *item, int64_t timeout_ms)
{
    mqq_t *q = impl;
    mqq_seg_t *seg = q->seg;
    uint64_t start;
    pid_t pid = mqq_self_(q, &start);
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    uint32_t si = MQQ_NONE;
    int rc, scan = 0;
    for (;;) {
        if ((scan || atomic_load_explicit(&seg->orphans, memory_order_relaxed)) &&
            mqq_adopt_(q, pid, start, item) == 0) {
            rc = JOBQ_OK;
            break;
        }
        scan = 0;
        if (si == MQQ_NONE && (si = mqq_claim_(q, pid, start)) == MQQ_NONE) {
            if (jobq_remaining_ms(deadline) == 0)
                return timeout_ms == 0 ? JOBQ_EEMPTY : JOBQ_ETIMEDOUT;
            mqq_lazy_reclaim_(q); /* every slot is busy: wait for one */
            mqq_sleep_ms_(5);
            scan = 1;
            continue;
        }
        JOBQ_FAULT("mqq.get.claimed");
        struct timespec abs;
        s_abs_realtime(s_slice(deadline), &abs);
        ssize_t n = mq_timedreceive(q->jobs, (char *)seg->bufs[si], MQQ_MSGSIZE, NULL, &abs);
        if (n >= 0) {
            JOBQ_FAULT("mqq.get.received");
            if (mqq_take_(q, si, (size_t)n, pid, item) == 0)
                return JOBQ_OK;
            continue;
        }
        int err = errno;
        if (err == EINTR)
            continue;
        if (err != ETIMEDOUT && err != EAGAIN) {
            LOG_WARN("mq://%s: mq_timedreceive: %s", q->name, strerror(err));
            rc = JOBQ_ESYS;
            break;
        }
        if (atomic_load(&seg->closed) && s_drained(q, pid)) {
            rc = JOBQ_ECLOSED;
            break;
        }
        if (jobq_remaining_ms(deadline) == 0) {
            rc = timeout_ms == 0 ? JOBQ_EEMPTY : JOBQ_ETIMEDOUT;
            break;
        }
        mqq_lazy_reclaim_(q);
        scan = 1;
    }
    if (si != MQQ_NONE)
        mqq_release_(q, si, pid);
    return rc;
}

static int
s_task_done(void *impl, const jobq_item_t *item)
{
    mqq_t *q = impl;
    mqq_seg_t *seg = q->seg;
    if (item) {
        uint64_t si = (item->token >> 40) - 1;
        if (item->token == 0 || si >= MQQ_SLOTS)
            return JOBQ_ESTATE;
        uint64_t w = atomic_load(&seg->slots[si].word);
        if (W_STATE(w) != S_HELD ||
            (W_DONE(w) & TOKEN_DONE_MASK) != (item->token & TOKEN_DONE_MASK))
            return JOBQ_ESTATE;
        return mqq_finish_(q, (uint32_t)si, w) == 0 ? JOBQ_OK : JOBQ_ESTATE;
    }
    uint64_t start;
    pid_t pid = mqq_self_(q, &start) & 0x3fffff;
    for (;;) { /* the oldest item this process holds */
        uint32_t best = MQQ_NONE, hw = atomic_load(&seg->slot_hw);
        uint64_t best_seq = UINT64_MAX, best_w = 0;
        for (uint32_t i = 0; i < hw; i++) {
            uint64_t w = atomic_load(&seg->slots[i].word);
            uint64_t seq = atomic_load(&seg->slots[i].seq);
            if (W_STATE(w) == S_HELD && W_PID(w) == pid && seq < best_seq) {
                best = i;
                best_seq = seq;
                best_w = w;
            }
        }
        if (best == MQQ_NONE)
            return JOBQ_ESTATE;
        if (mqq_finish_(q, best, best_w) == 0)
            return JOBQ_OK;
    }
}

static size_t
s_unfinished(void *impl)
{
    mqq_t *q = impl;
    uint64_t done = 0;
    uint32_t hw = atomic_load(&q->seg->slot_hw);
    for (uint32_t i = 0; i < hw; i++) /* done first, puts last: never a false zero */
        done += W_DONE(atomic_load(&q->seg->slots[i].word));
    uint64_t puts = atomic_load(&q->seg->puts);
    return puts > done ? (size_t)(puts - done) : 0;
}

static int
s_join(void *impl, int64_t timeout_ms)
{
    mqq_t *q = impl;
    mqq_seg_t *seg = q->seg;
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    for (;;) {
        uint32_t seq = atomic_load(&seg->done_seq);
        atomic_store(&seg->join_flag, 1);
        if (s_unfinished(q) == 0)
            return JOBQ_OK;
        if (jobq_remaining_ms(deadline) == 0)
            return JOBQ_ETIMEDOUT;
        mqq_lazy_reclaim_(q);
        jobq_futex_wait((uint32_t *)&seg->done_seq, seq, s_slice(deadline));
    }
}

static int
s_close(void *impl)
{
    mqq_t *q = impl;
    atomic_store(&q->seg->closed, 1);
    return JOBQ_OK;
}

static size_t
s_size(void *impl)
{
    mqq_t *q = impl;
    size_t n = s_curmsgs(q);
    uint32_t hw = atomic_load(&q->seg->slot_hw);
    for (uint32_t i = 0; i < hw; i++) {
        unsigned st = W_STATE(atomic_load(&q->seg->slots[i].word));
        n += st == S_ORPHAN || st == S_ADOPTING;
    }
    return n;
}

static int
s_full(void *impl)
{
    mqq_t *q = impl;
    struct mq_attr a;
    return mq_getattr(q->jobs, &a) == 0 && a.mq_curmsgs >= a.mq_maxmsg;
}

static int
s_reclaim(void *impl, pid_t pid, int sig)
{
    return mqq_reclaim_pass_(impl, pid > 0 ? pid : 0, sig, 0);
}

/* Sends one result (header fields filled but magic, kind, lengths and check) with
 * output hdr->output_len bytes and error hdr->error_len bytes. */
int
mqq_send_result_(mqq_t *q, const mqq_res_hdr_t *hdr, const void *out, const void *err,
                 int64_t timeout_ms)
{
    alignas(8) unsigned char buf[MQQ_MSGSIZE];
    mqq_res_hdr_t h = *hdr;
    size_t olen = h.output_len, elen = h.error_len;
    h.magic = MQQ_MSG_MAGIC;
    h.kind = MQQ_KIND_RESULT;
    h.hdr_len = MQQ_RESULT_HDR;
    h.check = 0;
    if (olen)
        memcpy(buf + sizeof h, out, olen);
    if (elen)
        memcpy(buf + sizeof h + olen, err, elen);
    h.check = mqq_check_(&h, sizeof h, buf + sizeof h, olen + elen);
    memcpy(buf, &h, sizeof h);
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    for (;;) {
        struct timespec abs;
        int r;
        if (timeout_ms < 0) {
            r = mq_send(q->results, (const char *)buf, sizeof h + olen + elen, 0);
        } else {
            s_abs_realtime(jobq_remaining_ms(deadline), &abs);
            r = mq_timedsend(q->results, (const char *)buf, sizeof h + olen + elen, 0, &abs);
        }
        if (r == 0)
            return JOBQ_OK;
        if (errno == EINTR)
            continue;
        if (errno == ETIMEDOUT || errno == EAGAIN)
            return timeout_ms == 0 ? JOBQ_EFULL : JOBQ_ETIMEDOUT;
        LOG_WARN("mq://%s: sending a result: %s", q->name, strerror(errno));
        return JOBQ_ESYS;
    }
}

static int
s_put_result(void *impl, const jobq_result_t *res, int64_t timeout_ms)
{
    mqq_t *q = impl;
    if ((res->output_len && !res->output) || (res->error_len && !res->error) ||
        (unsigned)res->status >= JOBQ_STATUS_COUNT_)
        return JOBQ_EINVAL;
    uint64_t total = (uint64_t)res->output_len + res->error_len;
    if (total > MQQ_RESULT_MAX) {
        LOG_WARN("mq://%s: result of %llu bytes (output %u + error %u) is over the mq:// "
                 "limit of %u bytes; report a FAILED result with a short error instead, or "
                 "use shm://",
                 q->name, (unsigned long long)total, res->output_len, res->error_len,
                 MQQ_RESULT_MAX);
        return JOBQ_ETOOBIG;
    }
    mqq_res_hdr_t h = {.output_len = res->output_len,
                       .id = res->id,
                       .attempt = res->attempt,
                       .status = (uint32_t)res->status,
                       .exit_code = res->exit_code,
                       .signal = res->signal,
                       .duration_us = res->duration_us,
                       .error_len = res->error_len};
    return mqq_send_result_(q, &h, res->output, res->error, timeout_ms);
}

/* Returns 1 if buf[0..n) is a well-formed result message. */
static int
s_result_valid(const unsigned char *buf, size_t n)
{
    mqq_res_hdr_t h;
    if (n < sizeof h)
        return 0;
    memcpy(&h, buf, sizeof h);
    if (h.magic != MQQ_MSG_MAGIC || h.kind != MQQ_KIND_RESULT || h.hdr_len != MQQ_RESULT_HDR ||
        (uint64_t)h.output_len + h.error_len != n - sizeof h || h.status >= JOBQ_STATUS_COUNT_)
        return 0;
    uint32_t want = h.check;
    h.check = 0;
    return mqq_check_(&h, sizeof h, buf + sizeof h, n - sizeof h) == want;
}

static int
s_get_result(void *impl, jobq_result_t *res, int64_t timeout_ms)
{
    mqq_t *q = impl;
    int64_t deadline = jobq_deadline_ms(timeout_ms);
    int rc = JOBQ_ESYS;
    pthread_mutex_lock(&q->res_mu);
    for (;;) {
        struct timespec abs;
        s_abs_realtime(s_slice(deadline), &abs);
        ssize_t n = mq_timedreceive(q->results, (char *)q->res_buf, MQQ_MSGSIZE, NULL, &abs);
        if (n >= 0 && s_result_valid(q->res_buf, (size_t)n)) {
            mqq_res_hdr_t h;
            memcpy(&h, q->res_buf, sizeof h);
            jobq_result_init(res);
            res->id = h.id;
            res->attempt = h.attempt;
            res->status = (jobq_status)h.status;
            res->exit_code = h.exit_code;
            res->signal = h.signal;
            res->duration_us = h.duration_us;
            res->output_len = h.output_len;
            res->output = h.output_len ? q->res_buf + sizeof h : NULL;
            res->error_len = h.error_len;
            res->error = h.error_len ? (const char *)q->res_buf + sizeof h + h.output_len : NULL;
            rc = JOBQ_OK;
            break;
        }
        if (n >= 0) {
            LOG_WARN("mq://%s: dropped a malformed %zd-byte result", q->name, n);
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno != ETIMEDOUT && errno != EAGAIN) {
            LOG_WARN("mq://%s: receiving a result: %s", q->name, strerror(errno));
            break;
        }
        if (jobq_remaining_ms(deadline) == 0) {
            rc = timeout_ms == 0 ? JOBQ_EEMPTY : JOBQ_ETIMEDOUT;
            break;
        }
        mqq_lazy_reclaim_(q);
    }
    pthread_mutex_unlock(&q->res_mu);
    return rc;
}

const jobq_queue_ops_t mqq_ops_ = {
    .put = s_put,
    .get = s_get,
    .task_done = s_task_done,
    .join = s_join,
    .close = s_close,
    .size = s_size,
    .full = s_full,
    .unfinished = s_unfinished,
    .reclaim = s_reclaim,
    .put_result = s_put_result,
    .get_result = s_get_result,
    .destroy = mqq_destroy_,
};
