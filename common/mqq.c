/*
 * common/mqq.c: the mq:// transport of the local JoinableQueue (include/jobq/queue.h)
 * over POSIX message queues, with the bookkeeping in a small shared-memory segment.
 * This file holds naming, open, create, attach, the stale-set check and rebuild, unlink and
 * destroy; the data path (put, get, task_done, join, results) is in common/mqq_data.c,
 * the in-flight table and the reclaim of dead holders in common/mqq_reclaim.c, and the
 * shared types (message headers, state segment, handle) in common/mqq_int.h.
 *
 * Objects (common/mqq_priv.h): the jobs mq, the results mq and the state segment,
 * named after the uid and NAME, created O_EXCL with mode 0600. The segment is the
 * creation lock: whoever creates it creates the two mqs, then publishes the segment's
 * magic last. An attacher that finds a segment with a bad magic or size, one whose
 * creator died before publishing (or that stays unpublished for a second), or an mq
 * that is missing or has other attributes, calls the set stale: with CREATE it unlinks
 * and rebuilds it, without CREATE the open fails with JOBQ_ECORRUPT and a log line.
 *
 * Limits (this machine has no CAP_SYS_RESOURCE: msg_max 10, msgsize_max 8192):
 *   - Every item is one message of at most 8192 bytes: a 48-byte header (magic, kind,
 *     checksum, length, id, attempt, max attempts, ttr) and the payload, so a payload
 *     may be at most MQQ_PAYLOAD_MAX = 8144 bytes. A larger one gets JOBQ_ETOOBIG from
 *     put and a LOG_WARN naming the limit: never truncation.
 *   - A result is a 64-byte header plus output and error text, together at most
 *     MQQ_RESULT_MAX = 8128 bytes; put_result refuses more with JOBQ_ETOOBIG.
 *   - Capacity is min(max_items, 10, /proc/sys/fs/mqueue/msg_max) items (10 here), and
 *     the same for the results channel; max_bytes is not used (the mq bounds bytes).
 *   - Each queue charges 2 x depth x 8 KiB to the uid's RLIMIT_MSGQUEUE (800 KiB
 *     here): about four mq:// queues per uid can exist at once.
 *   - At most MQQ_SLOTS (256) items can be held (taken, not yet task_done) at once
 *     across all processes; a get beyond that waits like a get on an empty queue.
 *
 * Invariants relied on here: the segment's magic is published last, after both mqs
 * exist, so an attacher that sees MQQ_SEG_MAGIC may use the whole set; an unpublished
 * segment is stale once its creator is dead or after MQQ_INIT_WAIT_MS.
 *
 * Fault point (common/fault.h): mqq.create.init (segment and mqs made, magic not yet
 * published).
 */
#include "common/alloc.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "common/mqq_int.h"
#include "jobq/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static long
s_sysctl(const char *path, long dflt)
{
    char buf[32];
    long v = dflt;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        ssize_t n = read(fd, buf, sizeof buf - 1);
        if (n > 0) {
            buf[n] = '\0';
            v = strtol(buf, NULL, 10);
        }
        close(fd);
    }
    return v > 0 ? v : dflt;
}

void
mqq_names(const char *name, mqq_names_t *out)
{
    unsigned uid = (unsigned)geteuid();
    snprintf(out->seg, sizeof out->seg, "/jobq-mq-%u-%s", uid, name);
    snprintf(out->jobs, sizeof out->jobs, "/jobq-mq-%u-%s", uid, name);
    snprintf(out->results, sizeof out->results, "/jobq-mq-%u-%s:r", uid, name);
}

/* ---- open, create, attach, unlink ------------------------------------------------- */

static void
s_detach(mqq_t *q)
{
    if (q->seg)
        munmap(q->seg, sizeof *q->seg);
    if (q->jobs != (mqd_t)-1)
        mq_close(q->jobs);
    if (q->results != (mqd_t)-1)
        mq_close(q->results);
    q->seg = NULL;
    q->jobs = q->results = (mqd_t)-1;
}

void
mqq_destroy_(void *impl)
{
    mqq_t *q = impl;
    s_detach(q);
    pthread_mutex_destroy(&q->res_mu);
    jobq_free(q);
}

static void
s_unlink_names(const mqq_names_t *n)
{
    shm_unlink(n->seg);
    mq_unlink(n->jobs);
    mq_unlink(n->results);
}

static int __attribute__((format(printf, 2, 3))) s_stale(mqq_t *q, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(q->why, sizeof q->why, fmt, ap);
    va_end(ap);
    return MQQ_STALE;
}

/* Explains a failed mq_open (err) of an mq with depth messages. */
static void
s_mq_open_failed(mqq_t *q, const char *obj, int err, unsigned depth)
{
    struct rlimit rl = {0, 0};
    getrlimit(RLIMIT_MSGQUEUE, &rl);
    if (err == EMFILE)
        LOG_WARN("mq://%s: mq_open(%s): the uid's POSIX mq memory limit (RLIMIT_MSGQUEUE, "
                 "%llu bytes) is used up; each mq:// queue takes 2 x %u x %u bytes: unlink "
                 "unused queues or use shm://",
                 q->name, obj, (unsigned long long)rl.rlim_cur, depth, MQQ_MSGSIZE);
    else if (err == EINVAL)
        LOG_WARN("mq://%s: mq_open(%s) with %u messages of %u bytes refused; this system "
                 "allows %ld messages of %ld bytes (/proc/sys/fs/mqueue/msg_max, msgsize_max)",
                 q->name, obj, depth, MQQ_MSGSIZE, s_sysctl("/proc/sys/fs/mqueue/msg_max", 10),
                 s_sysctl("/proc/sys/fs/mqueue/msgsize_max", 8192));
    else
        LOG_WARN("mq://%s: mq_open(%s): %s", q->name, obj, strerror(err));
}

/* Checks that mq d is ours, private and shaped as the segment says. */
static int
s_check_mq(mqq_t *q, mqd_t d, const char *obj, unsigned depth)
{
    struct mq_attr a;
    struct stat st;
    if (mq_getattr(d, &a) < 0 || fstat((int)d, &st) < 0)
        return JOBQ_ESYS;
    if (st.st_uid != geteuid() || (st.st_mode & 077)) {
        LOG_WARN("mq://%s: %s is not private to this user (uid %u, mode %o): refusing it", q->name,
                 obj, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
        return JOBQ_EFORBIDDEN;
    }
    if (a.mq_maxmsg != (long)depth || a.mq_msgsize != MQQ_MSGSIZE)
        return s_stale(q, "%s holds %ld messages of %ld bytes, not %u of %u", obj, a.mq_maxmsg,
                       a.mq_msgsize, depth, MQQ_MSGSIZE);
    return JOBQ_OK;
}

/* Opens both mqs of an attached segment. */
static int
s_open_mqs(mqq_t *q, const mqq_names_t *n)
{
    q->jobs = mq_open(n->jobs, O_RDWR | O_CLOEXEC);
    if (q->jobs == (mqd_t)-1)
        return errno == ENOENT ? s_stale(q, "%s is missing", n->jobs) : JOBQ_ESYS;
    q->results = mq_open(n->results, O_RDWR | O_CLOEXEC);
    if (q->results == (mqd_t)-1)
        return errno == ENOENT ? s_stale(q, "%s is missing", n->results) : JOBQ_ESYS;
    int rc = s_check_mq(q, q->jobs, n->jobs, q->seg->depth);
    return rc ? rc : s_check_mq(q, q->results, n->results, q->seg->res_depth);
}

/* Waits (bounded) until the segment on fd is published; maps it into q->seg. */
static int
s_map_existing(mqq_t *q, int fd)
{
    int64_t give_up = jobq_now_ms() + MQQ_INIT_WAIT_MS;
    struct stat st;
    for (;;) {
        if (fstat(fd, &st) < 0)
            return JOBQ_ESYS;
        if (st.st_uid != geteuid() || (st.st_mode & 077)) {
            LOG_WARN("mq://%s: state segment is not private to this user (uid %u, mode %o)",
                     q->name, (unsigned)st.st_uid, (unsigned)(st.st_mode & 0777));
            return JOBQ_EFORBIDDEN;
        }
        if ((uint64_t)st.st_size == sizeof(mqq_seg_t))
            break;
        if ((uint64_t)st.st_size > sizeof(mqq_seg_t) || jobq_now_ms() >= give_up)
            return s_stale(q, "state segment has %lld bytes, not %zu", (long long)st.st_size,
                           sizeof(mqq_seg_t));
        mqq_sleep_ms_(5);
    }
    mqq_seg_t *seg =
        mmap(NULL, sizeof *seg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    if (seg == MAP_FAILED)
        return JOBQ_ESYS;
    q->seg = seg;
    for (;;) {
        uint64_t magic = atomic_load_explicit(&seg->magic, memory_order_acquire);
        if (magic == MQQ_SEG_MAGIC)
            break;
        if (magic != 0)
            return s_stale(q, "state segment has a bad magic number");
        pid_t creator = atomic_load(&seg->creator_pid);
        if (creator && !mqq_alive_(creator, atomic_load(&seg->creator_start)))
            return s_stale(q, "its creator (pid %d) died before finishing it", (int)creator);
        if (jobq_now_ms() >= give_up)
            return s_stale(q, "state segment never finished initialising");
        mqq_sleep_ms_(5);
    }
    if (seg->version != MQQ_SEG_VERSION || seg->nslots != MQQ_SLOTS || seg->size != sizeof *seg ||
        seg->msgsize != MQQ_MSGSIZE || seg->depth < 1 || seg->depth > MQQ_DEPTH_MAX ||
        seg->res_depth < 1 || seg->res_depth > MQQ_DEPTH_MAX)
        return s_stale(q, "state segment has another layout (version %u)", seg->version);
    return JOBQ_OK;
}

/* Attaches to an existing queue. Returns JOBQ_OK, JOBQ_ENOTFOUND, MQQ_STALE (q->why
 * says why), JOBQ_EFORBIDDEN or JOBQ_ESYS; on failure q holds nothing. */
static int
s_attach(mqq_t *q, const mqq_names_t *n)
{
    int fd = shm_open(n->seg, O_RDWR | O_NOFOLLOW | O_CLOEXEC, 0);
    if (fd < 0) {
        if (errno == ENOENT)
            return JOBQ_ENOTFOUND;
        LOG_WARN("mq://%s: shm_open(%s): %s", q->name, n->seg, strerror(errno));
        return JOBQ_ESYS;
    }
    int rc = s_map_existing(q, fd);
    close(fd);
    if (rc == JOBQ_OK)
        rc = s_open_mqs(q, n);
    if (rc != JOBQ_OK)
        s_detach(q);
    return rc;
}

/* Creates one mq (replacing a leftover of the same name once). */
static mqd_t
s_create_mq(mqq_t *q, const char *obj, unsigned depth)
{
    struct mq_attr a = {.mq_maxmsg = depth, .mq_msgsize = MQQ_MSGSIZE};
    for (int tries = 0; tries < 2; tries++) {
        mqd_t d = mq_open(obj, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600, &a);
        if (d != (mqd_t)-1)
            return d;
        if (errno != EEXIST)
            break;
        LOG_NOTICE("mq://%s: removing %s left by a crashed run", q->name, obj);
        mq_unlink(obj);
    }
    s_mq_open_failed(q, obj, errno, depth);
    return (mqd_t)-1;
}

static void
s_init_segment(mqq_seg_t *seg, unsigned depth, unsigned res_depth)
{
    pthread_mutexattr_t ma;
    atomic_store(&seg->creator_start, mqq_proc_start_(getpid()));
    atomic_store(&seg->creator_pid, getpid());
    seg->version = MQQ_SEG_VERSION;
    seg->nslots = MQQ_SLOTS;
    seg->size = sizeof *seg;
    seg->depth = depth;
    seg->res_depth = res_depth;
    seg->msgsize = MQQ_MSGSIZE;
    pthread_mutexattr_init(&ma);
    pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    pthread_mutex_init(&seg->mu, &ma);
    pthread_mutexattr_destroy(&ma);
}

/* Creates a new queue. Returns JOBQ_OK, MQQ_EXISTS or JOBQ_ESYS. */
static int
s_create(mqq_t *q, const mqq_names_t *n, const jobq_queue_opts_t *opts)
{
    unsigned limit = (unsigned)s_sysctl("/proc/sys/fs/mqueue/msg_max", MQQ_DEPTH_MAX);
    unsigned cap = limit < MQQ_DEPTH_MAX ? limit : MQQ_DEPTH_MAX;
    unsigned depth = opts->max_items ? opts->max_items : 1024;
    unsigned res_depth = opts->result_items ? opts->result_items : depth;
    if (depth > cap)
        LOG_INFO("mq://%s: capacity is %u items: max_items %u is clamped to the POSIX mq depth "
                 "limit",
                 q->name, cap, depth);
    depth = depth < cap ? depth : cap;
    res_depth = res_depth < cap ? res_depth : cap;
    int fd = shm_open(n->seg, O_RDWR | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return MQQ_EXISTS;
        LOG_WARN("mq://%s: shm_open(%s): %s", q->name, n->seg, strerror(errno));
        return JOBQ_ESYS;
    }
    mqq_seg_t *seg = MAP_FAILED;
    if (fchmod(fd, 0600) == 0 && ftruncate(fd, (off_t)sizeof *seg) == 0)
        seg = mmap(NULL, sizeof *seg, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_POPULATE, fd, 0);
    int err = errno;
    close(fd);
    if (seg == MAP_FAILED) {
        LOG_WARN("mq://%s: creating %s: %s", q->name, n->seg, strerror(err));
        shm_unlink(n->seg);
        return JOBQ_ESYS;
    }
    q->seg = seg;
    s_init_segment(seg, depth, res_depth);
    q->jobs = s_create_mq(q, n->jobs, depth);
    if (q->jobs != (mqd_t)-1)
        q->results = s_create_mq(q, n->results, res_depth);
    if (q->results == (mqd_t)-1) {
        s_detach(q);
        s_unlink_names(n);
        return JOBQ_ESYS;
    }
    JOBQ_FAULT("mqq.create.init");
    atomic_store_explicit(&seg->magic, MQQ_SEG_MAGIC, memory_order_release);
    return JOBQ_OK;
}

static int
s_open_create(mqq_t *q, const mqq_names_t *n, const jobq_queue_opts_t *opts)
{
    for (int tries = 0; tries < 5; tries++) {
        int rc = s_create(q, n, opts);
        if (rc != MQQ_EXISTS)
            return rc;
        rc = s_attach(q, n);
        if (rc == JOBQ_OK && (opts->flags & JOBQ_QUEUE_EXCL)) {
            s_detach(q);
            return JOBQ_EDUPLICATE;
        }
        if (rc == MQQ_STALE) {
            LOG_NOTICE("mq://%s: replacing a stale queue (%s)", q->name, q->why);
            s_unlink_names(n);
            continue;
        }
        if (rc != JOBQ_ENOTFOUND)
            return rc;
    }
    LOG_WARN("mq://%s: the queue's objects kept changing while opening it", q->name);
    return JOBQ_EBUSY;
}

int
mqq_open(const jobq_url_t *url, const jobq_queue_opts_t *opts, const jobq_queue_ops_t **ops,
         void **impl)
{
    mqq_names_t n;
    pthread_once(&s_once, mqq_register_atfork_);
    mqq_names(url->name, &n);
    mqq_t *q = jobq_calloc(1, sizeof *q);
    q->jobs = q->results = (mqd_t)-1;
    snprintf(q->name, sizeof q->name, "%s", url->name);
    pthread_mutex_init(&q->res_mu, NULL);
    int rc;
    if (opts->flags & JOBQ_QUEUE_CREATE) {
        rc = s_open_create(q, &n, opts);
    } else {
        rc = s_attach(q, &n);
        if (rc == MQQ_STALE) {
            LOG_WARN("mq://%s: the queue's objects are stale or damaged (%s); open it with "
                     "JOBQ_QUEUE_CREATE to replace it, or unlink it",
                     q->name, q->why);
            rc = JOBQ_ECORRUPT;
        }
    }
    if (rc != JOBQ_OK) {
        mqq_destroy_(q);
        return rc;
    }
    *ops = &mqq_ops_;
    *impl = q;
    return JOBQ_OK;
}

int
mqq_unlink(const jobq_url_t *url)
{
    mqq_names_t n;
    int found = 0, failed = 0;
    mqq_names(url->name, &n);
    if (shm_unlink(n.seg) == 0)
        found = 1;
    else if (errno != ENOENT)
        failed = errno;
    if (mq_unlink(n.jobs) == 0)
        found = 1;
    else if (errno != ENOENT)
        failed = errno;
    if (mq_unlink(n.results) == 0)
        found = 1;
    else if (errno != ENOENT)
        failed = errno;
    if (failed) {
        LOG_WARN("mq://%s: unlink: %s", url->name, strerror(failed));
        return JOBQ_ESYS;
    }
    return found ? JOBQ_OK : JOBQ_ENOTFOUND;
}
