/*
 * broker/journal.c: the journal's writer: the directory and its lock, segment
 * files, the record buffer fed by the core's change hook, write + fdatasync
 * per policy, preallocation for the disk-full rule, snapshots (at open and as
 * compaction) and fail-stop. See journal.h for the contract and
 * docs/JOURNAL.md for the format and the failure behaviour.
 *
 * Invariants: synced <= written <= written + buf.len (logical byte counts over
 * the journal's life); every byte below `written` is in the current segment at
 * woff - (written - x) or in an older segment; a snapshot segment is synced
 * (and the directory too) before any older segment is unlinked; once `failed`
 * is set nothing is written, synced or acknowledged again.
 */
#include "broker/journal_int.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/log.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_PREALLOC_CHUNK (1u << 20) /* fallocate grows the segment by at least this */

struct journal {
    journal_opts_t opts;
    char dir[4096];
    core_t *core;
    int dirfd, lockfd, fd;
    uint64_t seq;       /* current segment */
    uint64_t woff;      /* next write offset in the current segment */
    uint64_t alloc_end; /* preallocated up to here (UINT64_MAX: no preallocation) */
    uint64_t *old;      /* seqs of older segments still on disk */
    size_t nold;
    uint64_t old_bytes;
    jrn_buf_t buf;
    uint64_t written, synced; /* logical byte counts */
    int64_t unsynced_since;   /* monotonic ms of the first unsynced write, or CORE_FOREVER */
    int64_t off_ms;           /* wall - monotonic, refreshed at each commit */
    int failed;
    jrn_syncer_t *syncer; /* batch policy: fdatasync off the reactor thread */
    uint64_t bg_syncs;    /* the syncer's fdatasync calls already counted */
    journal_stats_t st;
};

static int __attribute__((format(printf, 4, 5)))
s_why(int code, char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

void
journal_opts_init(journal_opts_t *o)
{
    memset(o, 0, sizeof *o);
    o->policy = JOURNAL_BATCH;
    o->batch_ms = JOURNAL_BATCH_DEFAULT_MS;
    o->segment_bytes = JOURNAL_SEGMENT_DEFAULT;
}

int
journal_policy_parse(const char *t, journal_policy *policy, int64_t *batch_ms)
{
    if (!t)
        return -1;
    if (strcmp(t, "always") == 0 || strcmp(t, "never") == 0) {
        *policy = t[0] == 'a' ? JOURNAL_ALWAYS : JOURNAL_NEVER;
        return 0;
    }
    if (strcmp(t, "batch") == 0) {
        *policy = JOURNAL_BATCH;
        *batch_ms = JOURNAL_BATCH_DEFAULT_MS;
        return 0;
    }
    if (strncmp(t, "batch:", 6) != 0 || t[6] < '0' || t[6] > '9')
        return -1;
    char *end;
    errno = 0;
    long long v = strtoll(t + 6, &end, 10);
    if (errno || (*end && strcmp(end, "ms") != 0) || v < 1 || v > 3600000)
        return -1;
    *policy = JOURNAL_BATCH;
    *batch_ms = v;
    return 0;
}

const char *
journal_policy_name(journal_policy p)
{
    return p == JOURNAL_ALWAYS ? "always" : p == JOURNAL_NEVER ? "never" : "batch";
}

static void
s_seg_name(char *out, size_t len, uint64_t seq)
{
    snprintf(out, len, "seg-%016" PRIx64 ".jrn", seq);
}

/* ---- the change hook ------------------------------------------------------ */

static void
s_on_change(void *arg, const core_change_t *ch)
{
    journal_t *j = arg;
    switch (ch->kind) {
    case CORE_CH_SUBMIT:
        jrn_enc_submit(&j->buf, ch->job, j->off_ms);
        break;
    case CORE_CH_STATE:
        jrn_enc_state(&j->buf, ch->job, j->off_ms);
        break;
    case CORE_CH_DONE:
    case CORE_CH_DEAD:
        jrn_enc_result(&j->buf, ch->kind == CORE_CH_DONE ? JRN_DONE : JRN_DEAD, ch->res, ch->unique,
                       ch->unique_len, j->off_ms);
        break;
    case CORE_CH_DELETE:
    case CORE_CH_FORGET:
        jrn_enc_id(&j->buf, ch->kind == CORE_CH_DELETE ? JRN_DELETE : JRN_FORGET, &ch->id,
                   jobq_wall_ms());
        break;
    case CORE_CH_PAUSE:
        jrn_enc_pause(&j->buf, ch->queue, ch->queue_len, ch->until_ms, j->off_ms);
        break;
    }
    j->st.records++;
}

/* ---- writing and syncing -------------------------------------------------- */

static int
s_fail(journal_t *j, const char *what, int err)
{
    if (!j->failed)
        LOG_ERR("journal: %s failed (%s): fail-stop, no more acknowledgements", what,
                strerror(err));
    j->failed = JOBQ_EIO;
    j->st.failed = JOBQ_EIO;
    return JOBQ_EIO;
}

int
journal_write(journal_t *j)
{
    if (j->failed)
        return JOBQ_EIO;
    size_t done = 0;
    while (done < j->buf.len) {
        ssize_t n = pwrite(j->fd, j->buf.p + done, j->buf.len - done, (off_t)j->woff);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            int err = errno;
            memmove(j->buf.p, j->buf.p + done, j->buf.len - done);
            j->buf.len -= done;
            if (err == ENOSPC || err == EDQUOT) {
                LOG_WARN("journal: write: %s", strerror(err));
                return JOBQ_ENOSPC;
            }
            return s_fail(j, "write", err);
        }
        j->st.writes++;
        if (j->unsynced_since == CORE_FOREVER)
            j->unsynced_since = jobq_now_ms();
        done += (size_t)n;
        j->woff += (uint64_t)n;
        j->written += (uint64_t)n;
    }
    j->buf.len = 0;
    return JOBQ_OK;
}

static int
s_sync(journal_t *j)
{
    if (j->synced == j->written)
        return JOBQ_OK;
    if (fdatasync(j->fd) != 0)
        return s_fail(j, "fdatasync", errno);
    j->st.syncs++;
    j->synced = j->written;
    j->unsynced_since = CORE_FOREVER;
    return JOBQ_OK;
}

/* Takes in what the sync thread did: how far it synced, or its failure. */
static int
s_poll(journal_t *j)
{
    if (!j->syncer)
        return j->failed ? JOBQ_EIO : JOBQ_OK;
    uint64_t done, syncs;
    int err;
    jrn_syncer_poll(j->syncer, &done, &err, &syncs);
    j->st.syncs += syncs - j->bg_syncs;
    j->bg_syncs = syncs;
    if (err)
        return s_fail(j, "fdatasync", err);
    if (done > j->synced && done <= j->written)
        j->synced = done;
    return j->failed ? JOBQ_EIO : JOBQ_OK;
}

uint64_t
journal_mark(const journal_t *j)
{
    return j->written + j->buf.len;
}

void
journal_rewind(journal_t *j, uint64_t mark)
{
    if (mark >= j->written) {
        if (mark - j->written <= j->buf.len)
            j->buf.len = (size_t)(mark - j->written);
        return;
    }
    JOBQ_ASSERT(mark >= j->synced);
    j->woff -= j->written - mark;
    j->written = mark;
    j->buf.len = 0;
    if (ftruncate(j->fd, (off_t)j->woff) != 0) {
        s_fail(j, "ftruncate", errno);
        return;
    }
    if (j->alloc_end != UINT64_MAX)
        j->alloc_end = j->woff;
}

int
journal_admit(journal_t *j, uint64_t bytes)
{
    if (s_poll(j) != JOBQ_OK)
        return JOBQ_EIO;
    if (j->alloc_end == UINT64_MAX)
        return JOBQ_OK;
    core_stats_t cs;
    core_stats(j->core, &cs);
    uint64_t need = j->woff + j->buf.len + bytes + cs.jobs * JRN_RESERVE_PER_JOB;
    if (need <= j->alloc_end)
        return JOBQ_OK;
    uint64_t end = (need + S_PREALLOC_CHUNK) & ~(uint64_t)(S_PREALLOC_CHUNK - 1);
    int rc = posix_fallocate(j->fd, (off_t)j->alloc_end, (off_t)(end - j->alloc_end));
    if (rc == 0) {
        j->alloc_end = end;
        return JOBQ_OK;
    }
    if (rc == EOPNOTSUPP || rc == ENOSYS || rc == EINVAL) {
        LOG_NOTICE("journal: no preallocation on this file system (%s)", strerror(rc));
        j->alloc_end = UINT64_MAX;
        return JOBQ_OK;
    }
    if (j->st.refused_nospace++ % 1000 == 0)
        LOG_WARN("journal: no room for new jobs (%s): submits refused", strerror(rc));
    return rc == ENOSPC || rc == EDQUOT ? JOBQ_ENOSPC : JOBQ_ENOSPC;
}

int64_t
journal_due_ms(const journal_t *j)
{
    if (j->failed || j->opts.policy != JOURNAL_BATCH || j->synced == j->written ||
        j->unsynced_since == CORE_FOREVER)
        return CORE_FOREVER;
    return j->unsynced_since + j->opts.batch_ms;
}

int
journal_failed(const journal_t *j)
{
    return j->failed != 0;
}

void
journal_stats(const journal_t *j, journal_stats_t *st)
{
    *st = j->st;
    st->policy = j->opts.policy;
    st->batch_ms = j->opts.batch_ms;
    st->bytes = j->old_bytes + j->woff;
    st->segments = j->nold + 1;
    uint64_t synced = j->synced;
    if (j->syncer) { /* fresher than j->synced, which s_poll updates at commits */
        uint64_t done, syncs;
        int err;
        jrn_syncer_poll(j->syncer, &done, &err, &syncs);
        if (!err && done > synced && done <= j->written)
            synced = done;
    }
    st->segment = j->seq;
    st->synced_offset = j->written - synced <= j->woff ? j->woff - (j->written - synced) : 0;
}

/* ---- segments and snapshots ----------------------------------------------- */

/* Closes the current segment (trimming its preallocated tail) and opens
 * segment seq with its header written. Returns JOBQ_OK or JOBQ_EIO. */
static int
s_new_segment(journal_t *j, uint64_t seq, int keep_old)
{
    if (j->fd >= 0) {
        if (j->syncer)
            jrn_syncer_wait_idle(j->syncer);
        if (ftruncate(j->fd, (off_t)j->woff) != 0 && !j->failed)
            LOG_WARN("journal: trimming segment: %s", strerror(errno));
        close(j->fd);
        j->fd = -1;
        if (keep_old) {
            j->old = jobq_realloc(j->old, (j->nold + 1) * sizeof *j->old);
            j->old[j->nold++] = j->seq;
            j->old_bytes += j->woff;
        }
    }
    char name[64];
    s_seg_name(name, sizeof name, seq);
    int fd = openat(j->dirfd, name, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return s_fail(j, "creating a segment", errno);
    unsigned char h[JRN_SEG_HDR];
    jrn_seg_header(h, seq);
    if (pwrite(fd, h, sizeof h, 0) != (ssize_t)sizeof h) {
        int err = errno ? errno : EIO;
        close(fd);
        return s_fail(j, "writing a segment header", err);
    }
    j->fd = fd;
    j->seq = seq;
    j->woff = JRN_SEG_HDR;
    j->written += JRN_SEG_HDR;
    j->unsynced_since = jobq_now_ms();
    if (j->alloc_end != UINT64_MAX)
        j->alloc_end = JRN_SEG_HDR;
    return JOBQ_OK;
}

/* Appends the whole live state of the core to the buffer. */
static void
s_snapshot_records(journal_t *j)
{
    uint32_t cur = 0;
    core_job_view_t v;
    while (core_job_next(j->core, &cur, &v)) {
        jrn_enc_submit(&j->buf, &v, j->off_ms);
        j->st.records++;
        core_result_view_t r;
        if (v.state == JOBQ_STATE_DEAD && core_result(j->core, &v.id, &r) == JOBQ_OK) {
            jrn_enc_result(&j->buf, JRN_DEAD, &r, v.unique, v.unique_len, j->off_ms);
            j->st.records++;
        }
    }
    cur = 0;
    core_result_view_t r;
    const void *u;
    uint32_t ul;
    while (core_result_next(j->core, &cur, &r, &u, &ul)) {
        jrn_enc_result(&j->buf, JRN_DONE, &r, u, ul, j->off_ms);
        j->st.records++;
    }
    for (uint32_t i = 0; i < core_queue_count(j->core); i++) {
        core_queue_stats_t qs;
        if (core_queue_stats_at(j->core, i, &qs) == JOBQ_OK && qs.paused) {
            jrn_enc_pause(&j->buf, qs.name, qs.name_len, qs.paused_until_ms, j->off_ms);
            j->st.records++;
        }
    }
}

/* Writes a snapshot into a new segment, syncs it and the directory, then
 * unlinks every older segment. Returns JOBQ_OK or JOBQ_EIO. */
static int
s_snapshot(journal_t *j)
{
    int rc = journal_write(j);
    if (rc == JOBQ_OK)
        rc = s_sync(j);
    if (rc != JOBQ_OK)
        return JOBQ_EIO;
    rc = s_new_segment(j, j->seq + 1, 1);
    if (rc != JOBQ_OK)
        return rc;
    s_snapshot_records(j);
    if (journal_write(j) != JOBQ_OK || s_sync(j) != JOBQ_OK)
        return s_fail(j, "writing a snapshot", errno ? errno : EIO);
    if (fsync(j->dirfd) != 0)
        return s_fail(j, "syncing the journal directory", errno);
    for (size_t i = 0; i < j->nold; i++) {
        char name[64];
        s_seg_name(name, sizeof name, j->old[i]);
        if (unlinkat(j->dirfd, name, 0) != 0 && errno != ENOENT)
            LOG_WARN("journal: removing %s: %s", name, strerror(errno));
    }
    j->nold = 0;
    j->old_bytes = 0;
    if (fsync(j->dirfd) != 0)
        return s_fail(j, "syncing the journal directory", errno);
    j->st.compactions++;
    return JOBQ_OK;
}

/* Compacts when the segments hold more than twice the live state plus one
 * segment (the bound is 4x live + 2 segments: docs/JOURNAL.md); else starts a
 * new segment when the current one is full. */
static int
s_maintain(journal_t *j)
{
    core_stats_t cs;
    core_stats(j->core, &cs);
    uint64_t live = cs.bytes + cs.result_bytes + (cs.jobs + cs.results) * 128u;
    uint64_t total = j->old_bytes + j->woff;
    if (total > 2 * live + j->opts.segment_bytes)
        return s_snapshot(j);
    if (j->woff >= j->opts.segment_bytes) {
        if (s_sync(j) != JOBQ_OK)
            return JOBQ_EIO;
        int rc = s_new_segment(j, j->seq + 1, 1);
        if (rc == JOBQ_OK && fsync(j->dirfd) != 0)
            return s_fail(j, "syncing the journal directory", errno);
        return rc;
    }
    return JOBQ_OK;
}

int
journal_commit(journal_t *j, int64_t now_ms)
{
    if (s_poll(j) != JOBQ_OK)
        return JOBQ_EIO;
    j->off_ms = jobq_wall_ms() - jobq_now_ms();
    int wrc = journal_write(j);
    if (wrc == JOBQ_EIO)
        return JOBQ_EIO;
    int due = j->opts.policy == JOURNAL_ALWAYS ||
              (j->opts.policy == JOURNAL_BATCH && j->unsynced_since != CORE_FOREVER &&
               now_ms - j->unsynced_since >= j->opts.batch_ms);
    if (due && j->opts.policy == JOURNAL_BATCH && j->syncer) {
        jrn_syncer_request(j->syncer, j->fd, j->written); /* the reactor goes on */
        j->unsynced_since = CORE_FOREVER;
    } else if (due && s_sync(j) != JOBQ_OK) {
        return JOBQ_EIO;
    }
    if (wrc == JOBQ_OK && s_maintain(j) != JOBQ_OK)
        return JOBQ_EIO;
    return JOBQ_OK;
}

/* ---- open and replay ------------------------------------------------------ */

static int
s_cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Lists the segment seqs in the directory, sorted; refuses symlinks and
 * non-regular files under a segment name. */
static int
s_list(journal_t *j, uint64_t **out, size_t *n, char *why, size_t why_len)
{
    *out = NULL;
    *n = 0;
    int fd = dup(j->dirfd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return s_why(JOBQ_ESYS, why, why_len, "cannot list %s: %s", j->dir, strerror(errno));
    }
    rewinddir(d);
    struct dirent *e;
    int rc = JOBQ_OK;
    while (rc == JOBQ_OK && (e = readdir(d)) != NULL) {
        uint64_t seq;
        char tail[8] = "";
        if (strncmp(e->d_name, "seg-", 4) != 0 || strlen(e->d_name) != 24 ||
            sscanf(e->d_name, "seg-%16" SCNx64 "%7s", &seq, tail) != 2 || strcmp(tail, ".jrn"))
            continue;
        struct stat sb;
        if (fstatat(j->dirfd, e->d_name, &sb, AT_SYMLINK_NOFOLLOW) != 0 || !S_ISREG(sb.st_mode)) {
            rc = s_why(JOBQ_EFORBIDDEN, why, why_len,
                       "journal %s/%s is not a regular file (a symlink?): refusing it", j->dir,
                       e->d_name);
            break;
        }
        *out = jobq_realloc(*out, (*n + 1) * sizeof **out);
        (*out)[(*n)++] = seq;
    }
    closedir(d);
    if (*n)
        qsort(*out, *n, sizeof **out, s_cmp_u64);
    return rc;
}

/* Replays one segment into rp. */
static int
s_replay_one(journal_t *j, journal_replay_t *rp, uint64_t seq, int last, char *why, size_t why_len)
{
    char name[64];
    s_seg_name(name, sizeof name, seq);
    int fd = openat(j->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat sb;
    if (fd < 0 || fstat(fd, &sb) != 0) {
        int err = errno;
        if (fd >= 0)
            close(fd);
        return s_why(JOBQ_ESYS, why, why_len, "cannot open %s/%s: %s", j->dir, name, strerror(err));
    }
    size_t len = (size_t)sb.st_size;
    if (len == 0 && last) { /* created, header never written: a crash at creation */
        close(fd);
        LOG_NOTICE("journal: %s/%s is empty: ignored", j->dir, name);
        return JOBQ_OK;
    }
    void *map = len ? mmap(NULL, len, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
    close(fd);
    if (map == MAP_FAILED)
        return s_why(JOBQ_EVERSION, why, why_len,
                     "journal %s/%s has no valid header: not a jobq journal or another format "
                     "version (left untouched)",
                     j->dir, name);
    journal_scan_t sc;
    int rc = journal_scan_buf(map, len, journal_replay_record, rp, &sc);
    munmap(map, len);
    j->st.replayed += sc.records;
    if (rc == JOBQ_EVERSION)
        return s_why(JOBQ_EVERSION, why, why_len,
                     "journal %s/%s has a bad header or an unknown format version (left "
                     "untouched)",
                     j->dir, name);
    if (rc == JOBQ_ECORRUPT && !j->opts.recover)
        return s_why(JOBQ_ECORRUPT, why, why_len,
                     "journal %s/%s is corrupt at offset %" PRIu64
                     " (a checksum failure before the tail): start with --recover to truncate "
                     "it there",
                     j->dir, name, sc.bad_at);
    if (rc == JOBQ_ECORRUPT) {
        int wfd = openat(j->dirfd, name, O_WRONLY | O_NOFOLLOW | O_CLOEXEC);
        if (wfd < 0 || ftruncate(wfd, (off_t)sc.bad_at) != 0 || fdatasync(wfd) != 0) {
            int err = errno;
            if (wfd >= 0)
                close(wfd);
            return s_why(JOBQ_ESYS, why, why_len, "cannot truncate %s/%s: %s", j->dir, name,
                         strerror(err));
        }
        close(wfd);
        LOG_WARN("journal: --recover: truncated %s/%s at offset %" PRIu64 " (%zu bytes dropped)",
                 j->dir, name, sc.bad_at, len - (size_t)sc.bad_at);
    } else if (sc.torn) {
        LOG_NOTICE("journal: ignored a torn or zero-filled tail of %s/%s at offset %" PRIu64
                   " (%zu bytes)",
                   j->dir, name, sc.end, len - (size_t)sc.end);
    }
    return JOBQ_OK;
}

/* Creates or checks the directory and takes the lock. */
static int
s_open_dir(journal_t *j, char *why, size_t why_len)
{
    if (mkdir(j->dir, 0700) != 0 && errno != EEXIST)
        return s_why(JOBQ_ESYS, why, why_len, "cannot create %s: %s", j->dir, strerror(errno));
    struct stat sb;
    if (lstat(j->dir, &sb) != 0 || !S_ISDIR(sb.st_mode))
        return s_why(JOBQ_EFORBIDDEN, why, why_len, "journal %s is not a directory (a symlink?)",
                     j->dir);
    j->dirfd = open(j->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (j->dirfd < 0)
        return s_why(JOBQ_ESYS, why, why_len, "cannot open %s: %s", j->dir, strerror(errno));
    j->lockfd = openat(j->dirfd, "lock", O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (j->lockfd < 0)
        return s_why(errno == ELOOP ? JOBQ_EFORBIDDEN : JOBQ_ESYS, why, why_len,
                     "cannot open %s/lock: %s", j->dir, strerror(errno));
    if (flock(j->lockfd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(j->lockfd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        return s_why(JOBQ_EBUSY, why, why_len, "journal locked: %s is used by another broker%s%s",
                     j->dir, pid[0] ? ", pid " : "", pid);
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(j->lockfd, 0) != 0 || pwrite(j->lockfd, pid, (size_t)n, 0) != n)
        LOG_WARN("journal: cannot write %s/lock: %s", j->dir, strerror(errno));
    return JOBQ_OK;
}

static int
s_replay_all(journal_t *j, int64_t now_ms, char *why, size_t why_len)
{
    uint64_t *seqs;
    size_t n;
    int rc = s_list(j, &seqs, &n, why, why_len);
    journal_replay_t *rp = journal_replay_new();
    for (size_t i = 0; rc == JOBQ_OK && i < n; i++)
        rc = s_replay_one(j, rp, seqs[i], i + 1 == n, why, why_len);
    if (rc == JOBQ_OK) {
        uint64_t jobs, results;
        journal_replay_counts(rp, &jobs, &results);
        uint64_t refused = journal_replay_load(rp, j->core, now_ms, jobq_wall_ms());
        if (n)
            LOG_NOTICE("journal: replayed %" PRIu64 " records from %zu segments: %" PRIu64
                       " jobs, %" PRIu64 " results (%" PRIu64 " refused)",
                       j->st.replayed, n, jobs, results, refused);
        j->old = seqs;
        j->nold = n;
        j->seq = n ? seqs[n - 1] : 0;
        seqs = NULL;
    }
    jobq_free(seqs);
    journal_replay_destroy(&rp);
    return rc;
}

int
journal_open(const journal_opts_t *opts, core_t *core, int64_t now_ms, journal_t **out, char *why,
             size_t why_len)
{
    *out = NULL;
    if (!opts || !opts->dir || !*opts->dir || strlen(opts->dir) >= sizeof((journal_t *)0)->dir ||
        opts->segment_bytes < JOURNAL_SEGMENT_MIN)
        return s_why(JOBQ_EINVAL, why, why_len, "bad journal options");
    journal_t *j = jobq_calloc(1, sizeof *j);
    j->opts = *opts;
    snprintf(j->dir, sizeof j->dir, "%s", opts->dir);
    j->opts.dir = j->dir;
    j->core = core;
    j->dirfd = j->lockfd = j->fd = -1;
    j->unsynced_since = CORE_FOREVER;
    j->off_ms = jobq_wall_ms() - jobq_now_ms();
    int rc = s_open_dir(j, why, why_len);
    if (rc == JOBQ_OK)
        rc = s_replay_all(j, now_ms, why, why_len);
    if (rc == JOBQ_OK && s_snapshot(j) != JOBQ_OK)
        rc = s_why(JOBQ_ESYS, why, why_len, "cannot write a journal segment in %s: %s", j->dir,
                   strerror(errno));
    if (rc != JOBQ_OK) {
        journal_close(&j);
        return rc;
    }
    j->st.compactions = 0;
    if (j->opts.policy == JOURNAL_BATCH)
        j->syncer = jrn_syncer_new();
    core_set_hook(core, s_on_change, j);
    *out = j;
    return JOBQ_OK;
}

void
journal_close(journal_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    journal_t *j = *self_p;
    if (j->core)
        core_set_hook(j->core, NULL, NULL);
    if (j->syncer) {
        jrn_syncer_wait_idle(j->syncer);
        s_poll(j);
        jrn_syncer_destroy(&j->syncer);
    }
    if (j->fd >= 0) {
        if (!j->failed && journal_write(j) == JOBQ_OK)
            s_sync(j);
        if (ftruncate(j->fd, (off_t)j->woff) != 0 && !j->failed)
            LOG_WARN("journal: trimming segment: %s", strerror(errno));
        close(j->fd);
    }
    if (j->lockfd >= 0)
        close(j->lockfd); /* releases the lock */
    if (j->dirfd >= 0)
        close(j->dirfd);
    jobq_free(j->old);
    jobq_free(j->buf.p);
    jobq_free(j);
    *self_p = NULL;
}
