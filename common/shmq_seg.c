/*
 * common/shmq_seg.c: the shared segment of a shm:// queue: its geometry, its
 * creation, attachment and replacement, and the process identities and
 * checksums the rest of shmq relies on.
 *
 * Life cycle of a named segment (object "/jobq-UID-NAME", file
 * /dev/shm/jobq-UID-NAME, mode 0600, owned by the caller's uid):
 *
 *   1. Attach: shm_open without O_CREAT; fstat (owner and mode), pread the
 *      header and check magic, version, struct sizes, the "ready" word and the
 *      geometry, recomputed from the stored limits, against the file size.
 *      Only then is it mapped and trusted.
 *   2. Create (absent, with JOBQ_QUEUE_CREATE): the segment is built under a
 *      temporary name "/jobq-UID-NAME~tmp~PID~RAND" (O_CREAT|O_EXCL, 0600),
 *      fully initialised, "ready" written last, and only then linked to the
 *      final name with link(2), which fails if another creator won the race
 *      (then we attach to theirs). A creator killed half-way leaves only a
 *      temporary name, never a half-initialised queue under the real one;
 *      creators remove temporaries of dead processes. '~' cannot occur in a
 *      queue NAME, so a temporary is never mistaken for a queue.
 *   3. Replace (present but stale: garbage, another version, never ready,
 *      wrong size), with CREATE only: build a temporary as in 2, then, holding
 *      flock(LOCK_EX) on the stale object, check that the final name still
 *      refers to that same inode and rename(2) the temporary over it. Two
 *      replacers serialise on the flock; the loser sees a new inode and
 *      attaches to the winner's segment. Without CREATE a stale object makes
 *      open fail with JOBQ_EVERSION (other layout version) or JOBQ_ECORRUPT.
 *   4. An object owned by another uid, or readable by group or others, is
 *      refused with JOBQ_EFORBIDDEN and never replaced.
 *
 * Anonymous segments are MAP_SHARED|MAP_ANONYMOUS and initialised the same way.
 */
#include "common/shmq.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/fault.h"
#include "common/log.h"
#include "jobq/errors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#if defined(__x86_64__)
#include <nmmintrin.h>
#endif

#define S_SHM_DIR "/dev/shm"
#define S_TMP_MARK "~tmp~"
#define S_OBJ_MAX 256  /* an object name ("/jobq-UID-NAME" is at most 217 bytes) */
#define S_PATH_MAX 288 /* S_SHM_DIR + an object name */

/* ---- identity and liveness --------------------------------------------- */

static shmq_self_t s_me;
static int s_me_ok;
static int s_proc = -1; /* 1: /proc/PID/stat is readable here */
static pthread_once_t s_me_once = PTHREAD_ONCE_INIT;

static void
s_me_child(void)
{
    __atomic_store_n(&s_me_ok, 0, __ATOMIC_RELAXED);
}

static void
s_me_register(void)
{
    pthread_atfork(NULL, NULL, s_me_child);
    s_proc = access("/proc/self/stat", R_OK) == 0;
}

int
shmq_proc_stat(pid_t pid, uint64_t *start, int *zombie)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    int saved = errno;
    close(fd);
    if (n <= 0) {
        errno = n < 0 ? saved : ENOENT; /* empty: the process went away while we read */
        return -1;
    }
    buf[n] = '\0';
    /* comm (field 2) may hold spaces and parentheses: fields resume after the last ')'. */
    char *p = strrchr(buf, ')');
    if (!p || p[1] != ' ' || !p[2]) {
        errno = EINVAL;
        return -1;
    }
    *zombie = p[2] == 'Z' || p[2] == 'X' || p[2] == 'x';
    p += 2; /* field 3, the state */
    for (int field = 3; field < 22; field++) {
        p = strchr(p, ' ');
        if (!p) {
            errno = EINVAL;
            return -1;
        }
        p++;
    }
    *start = strtoull(p, NULL, 10);
    return 0;
}

shmq_self_t
shmq_self(void)
{
    if (!__atomic_load_n(&s_me_ok, __ATOMIC_ACQUIRE)) {
        pthread_once(&s_me_once, s_me_register);
        shmq_self_t me = {getpid(), 0};
        int zombie;
        if (!s_proc || shmq_proc_stat(me.pid, &me.start, &zombie) != 0)
            me.start = 0;
        s_me = me; /* threads racing here write the same value */
        __atomic_store_n(&s_me_ok, 1, __ATOMIC_RELEASE);
    }
    return s_me;
}

int
shmq_dead(pid_t pid, uint64_t start)
{
    uint64_t now_start;
    int zombie;
    if (pid <= 0)
        return 1;
    pthread_once(&s_me_once, s_me_register);
    if (s_proc) {
        if (shmq_proc_stat(pid, &now_start, &zombie) == 0)
            return zombie || (start != 0 && now_start != start);
        if (errno == ENOENT || errno == ESRCH)
            return 1;
    }
    return kill(pid, 0) == -1 && errno == ESRCH;
}

/* ---- crc32c ------------------------------------------------------------- */

static uint32_t s_crc_table[256];
static int s_crc_hw;
static int s_crc_ready; /* set once the table and s_crc_hw are filled */
static pthread_once_t s_crc_once = PTHREAD_ONCE_INIT;

static void
s_crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82f63b78u : c >> 1;
        s_crc_table[i] = c;
    }
#if defined(__x86_64__)
    s_crc_hw = __builtin_cpu_supports("sse4.2");
#endif
    __atomic_store_n(&s_crc_ready, 1, __ATOMIC_RELEASE);
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t
s_crc_sse42(uint32_t crc, const uint8_t *p, size_t len)
{
    uint64_t c = crc;
    for (; len >= 8; p += 8, len -= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        c = _mm_crc32_u64(c, w);
    }
    uint32_t c32 = (uint32_t)c;
    for (; len; p++, len--)
        c32 = _mm_crc32_u8(c32, *p);
    return c32;
}
#endif

uint32_t
shmq_crc32c(uint32_t crc, const void *data, size_t len)
{
    const uint8_t *p = data;
    if (!__atomic_load_n(&s_crc_ready, __ATOMIC_ACQUIRE))
        pthread_once(&s_crc_once, s_crc_init);
    crc = ~crc;
#if defined(__x86_64__)
    if (s_crc_hw)
        return ~s_crc_sse42(crc, p, len);
#endif
    for (; len; p++, len--)
        crc = s_crc_table[(crc ^ *p) & 0xff] ^ (crc >> 8);
    return ~crc;
}

/* ---- geometry ----------------------------------------------------------- */

static uint64_t
s_align(uint64_t x, uint64_t a)
{
    return (x + a - 1) / a * a;
}

/* Lays out one channel from off; returns the offset after it. */
static uint64_t
s_chan_layout(shmq_chan_t *c, uint32_t cap_items, uint32_t spare, uint64_t max_bytes, uint64_t off)
{
    uint64_t payload_chunks = (max_bytes + SHMQ_CHUNK - 1) / SHMQ_CHUNK;
    c->cap_items = cap_items;
    c->ring_cap = cap_items + spare;
    c->max_bytes = max_bytes;
    /* One chunk of rounding loss per chunked record, up to doubling the arena. */
    c->nchunks =
        (uint32_t)(payload_chunks + (c->ring_cap < payload_chunks ? c->ring_cap : payload_chunks));
    c->off_ring = s_align(off, 64);
    c->off_slots = s_align(c->off_ring + 4ull * c->ring_cap, 64);
    c->off_next = s_align(c->off_slots + sizeof(shmq_slot_t) * c->ring_cap, 64);
    c->off_chunks = s_align(c->off_next + 4ull * c->nchunks, 4096);
    return c->off_chunks + (uint64_t)SHMQ_CHUNK * c->nchunks;
}

/* Fills the geometry of h from opts (zeros mean the documented defaults).
 * Returns JOBQ_OK or JOBQ_EINVAL. */
static int
s_geometry(const jobq_queue_opts_t *opts, shmq_hdr_t *h)
{
    uint32_t items = opts->max_items ? opts->max_items : 1024;
    uint64_t bytes = opts->max_bytes ? opts->max_bytes : 64ull << 20;
    uint32_t results = opts->result_items ? opts->result_items : items;
    if (items > SHMQ_MAX_ITEMS || results > SHMQ_MAX_ITEMS || bytes > SHMQ_MAX_BYTES)
        return JOBQ_EINVAL;
    memset(h, 0, sizeof *h);
    h->magic = SHMQ_MAGIC;
    h->version = SHMQ_VERSION;
    h->hdr_size = sizeof(shmq_hdr_t);
    h->slot_size = sizeof(shmq_slot_t);
    h->max_items = items;
    h->max_bytes = bytes;
    h->result_items = results;
    h->inflight_cap = items > SHMQ_MIN_INFLIGHT ? items : SHMQ_MIN_INFLIGHT;
    uint64_t off = s_align(sizeof(shmq_hdr_t), 64);
    off = s_chan_layout(&h->ch[SHMQ_ITEMS], items, h->inflight_cap, bytes, off);
    off = s_chan_layout(&h->ch[SHMQ_RESULTS], results, h->inflight_cap, bytes, off);
    h->seg_size = s_align(off, 4096);
    return JOBQ_OK;
}

/* Checks a header read from an existing object of file_size bytes. Returns
 * JOBQ_OK, JOBQ_EVERSION or JOBQ_ECORRUPT, with the reason in *why. */
static int
s_validate(const shmq_hdr_t *h, uint64_t file_size, const char **why)
{
    shmq_hdr_t g;
    if (h->magic != SHMQ_MAGIC) {
        *why = "bad magic (not a jobq shm queue)";
        return JOBQ_ECORRUPT;
    }
    if (h->version != SHMQ_VERSION || h->hdr_size != sizeof(shmq_hdr_t) ||
        h->slot_size != sizeof(shmq_slot_t)) {
        *why = "another layout version";
        return JOBQ_EVERSION;
    }
    if (h->ready != SHMQ_READY) {
        *why = "never finished initialising";
        return JOBQ_ECORRUPT;
    }
    jobq_queue_opts_t o = {0, h->max_items, h->max_bytes, h->result_items};
    if (s_geometry(&o, &g) != JOBQ_OK || g.seg_size != h->seg_size || h->seg_size != file_size ||
        g.inflight_cap != h->inflight_cap ||
        memcmp(&g.ch[0], &h->ch[0], offsetof(shmq_chan_t, head)) != 0 ||
        memcmp(&g.ch[1], &h->ch[1], offsetof(shmq_chan_t, head)) != 0) {
        *why = "geometry does not match its size";
        return JOBQ_ECORRUPT;
    }
    return JOBQ_OK;
}

/* ---- mapping and initialisation ----------------------------------------- */

static shmq_t *
s_handle(void *base, size_t size)
{
    shmq_t *q = jobq_calloc(1, sizeof *q);
    q->base = base;
    q->size = size;
    q->h = base;
    for (int i = 0; i < 2; i++) {
        shmq_chan_t *c = &q->h->ch[i];
        q->v[i].c = c;
        q->v[i].ring = (uint32_t *)(q->base + c->off_ring);
        q->v[i].slots = (shmq_slot_t *)(q->base + c->off_slots);
        q->v[i].next = (uint32_t *)(q->base + c->off_next);
        q->v[i].chunks = (uint8_t *)(q->base + c->off_chunks);
    }
    return q;
}

/* Initialises a zeroed mapping from the geometry in g; "ready" goes last. */
static int
s_init(void *base, const shmq_hdr_t *g)
{
    shmq_hdr_t *h = base;
    pthread_mutexattr_t ma;
    memcpy(h, g, sizeof *h);
    h->ready = 0;
    if (getrandom(&h->nonce, sizeof h->nonce, 0) != (ssize_t)sizeof h->nonce)
        h->nonce = (uint64_t)jobq_now_ns() ^ ((uint64_t)getpid() << 40);
    shmq_self_t me = shmq_self();
    h->creator_pid = me.pid;
    h->creator_start = me.start;
    for (int i = 0; i < 2; i++) {
        h->ch[i].free_slot = h->ch[i].free_chunk = SHMQ_NIL;
        h->ch[i].held_head = h->ch[i].held_tail = SHMQ_NIL;
    }
    if (pthread_mutexattr_init(&ma) != 0)
        return -1;
    int rc = pthread_mutexattr_setpshared(&ma, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutexattr_setrobust(&ma, PTHREAD_MUTEX_ROBUST);
    if (rc == 0)
        rc = pthread_mutex_init(&h->lock, &ma);
    pthread_mutexattr_destroy(&ma);
    if (rc != 0) {
        errno = rc;
        return -1;
    }
    JOBQ_FAULT("shmq.create.init");
    __atomic_store_n(&h->ready, SHMQ_READY, __ATOMIC_RELEASE);
    return 0;
}

int
shmq_seg_anon(const jobq_queue_opts_t *opts, shmq_t **out)
{
    shmq_hdr_t g;
    int rc = s_geometry(opts, &g);
    if (rc != JOBQ_OK)
        return rc;
    void *base = mmap(NULL, g.seg_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) {
        LOG_WARN("mmap of %llu bytes: %s", (unsigned long long)g.seg_size, strerror(errno));
        return JOBQ_ESYS;
    }
    if (s_init(base, &g) != 0) {
        munmap(base, g.seg_size);
        return JOBQ_ESYS;
    }
    *out = s_handle(base, g.seg_size);
    return JOBQ_OK;
}

void
shmq_seg_close(shmq_t *q)
{
    if (!q)
        return;
    munmap(q->base, q->size);
    jobq_free(q->rbuf);
    jobq_free(q);
}

/* ---- named segments ------------------------------------------------------ */

int
shmq_object_name(const char *name, char *out, size_t out_len)
{
    int n = snprintf(out, out_len, "/jobq-%u-%s", (unsigned)geteuid(), name);
    return n < 0 || (size_t)n >= out_len ? -1 : 0;
}

/* Checks fd's owner, mode and header; maps it on success. */
static int
s_attach_fd(int fd, shmq_t **out, const char **why)
{
    struct stat st;
    shmq_hdr_t h;
    if (fstat(fd, &st) != 0)
        return JOBQ_ESYS;
    if (st.st_uid != geteuid() || (st.st_mode & 077) != 0) {
        *why = "owned by another user or open to group/others";
        return JOBQ_EFORBIDDEN;
    }
    if ((uint64_t)st.st_size < sizeof h || pread(fd, &h, sizeof h, 0) != (ssize_t)sizeof h) {
        *why = "shorter than a header";
        return JOBQ_ECORRUPT;
    }
    int rc = s_validate(&h, (uint64_t)st.st_size, why);
    if (rc != JOBQ_OK)
        return rc;
    void *base = mmap(NULL, (size_t)st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (base == MAP_FAILED)
        return JOBQ_ESYS;
    *out = s_handle(base, (size_t)st.st_size);
    return JOBQ_OK;
}

/* Removes temporaries of obj left by creators that died. */
static void
s_remove_dead_temps(const char *obj)
{
    char prefix[S_OBJ_MAX];
    if (snprintf(prefix, sizeof prefix, "%s" S_TMP_MARK, obj + 1) >= (int)sizeof prefix)
        return;
    size_t plen = strlen(prefix);
    DIR *d = opendir(S_SHM_DIR);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (strncmp(e->d_name, prefix, plen) != 0)
            continue;
        long pid = strtol(e->d_name + plen, NULL, 10);
        if (pid > 0 && kill((pid_t)pid, 0) == -1 && errno == ESRCH) {
            char tmp[S_PATH_MAX];
            if (snprintf(tmp, sizeof tmp, "/%s", e->d_name) < (int)sizeof tmp)
                shm_unlink(tmp);
        }
    }
    closedir(d);
}

/* Moves the temporary over the final name: link (absent) or, holding a flock
 * on the stale object, rename if the name still refers to it. Returns 0,
 * 1 (lost a race: retry), or -1 (errno). */
static int
s_publish(const char *tmp, const char *obj, int stale_fd)
{
    char tpath[S_PATH_MAX], opath[S_PATH_MAX];
    if (snprintf(tpath, sizeof tpath, S_SHM_DIR "%s", tmp) >= (int)sizeof tpath ||
        snprintf(opath, sizeof opath, S_SHM_DIR "%s", obj) >= (int)sizeof opath) {
        errno = ENAMETOOLONG;
        return -1;
    }
    if (stale_fd < 0) {
        if (link(tpath, opath) == 0)
            return 0;
        return errno == EEXIST ? 1 : -1;
    }
    struct stat a, b;
    if (flock(stale_fd, LOCK_EX) != 0)
        return -1;
    int rc = 1;
    if (fstat(stale_fd, &a) == 0 && stat(opath, &b) == 0 && a.st_ino == b.st_ino &&
        a.st_dev == b.st_dev)
        rc = rename(tpath, opath) == 0 ? 0 : -1;
    flock(stale_fd, LOCK_UN);
    return rc;
}

/* Builds a new segment under a temporary name and publishes it as obj.
 * Returns JOBQ_OK, JOBQ_EDUPLICATE (lost the race: attach instead) or an error. */
static int
s_create(const char *obj, const jobq_queue_opts_t *opts, int stale_fd, shmq_t **out)
{
    shmq_hdr_t g;
    char tmp[S_OBJ_MAX];
    uint32_t rnd = 0;
    int rc = s_geometry(opts, &g);
    if (rc != JOBQ_OK)
        return rc;
    struct statvfs vfs;
    if (statvfs(S_SHM_DIR, &vfs) == 0 && (uint64_t)vfs.f_bavail * vfs.f_frsize < g.seg_size) {
        LOG_WARN("%s has less than the %llu bytes a queue of these limits needs", S_SHM_DIR,
                 (unsigned long long)g.seg_size);
        errno = ENOSPC;
        return JOBQ_ESYS;
    }
    s_remove_dead_temps(obj);
    (void)getrandom(&rnd, sizeof rnd, 0);
    if (snprintf(tmp, sizeof tmp, "%s" S_TMP_MARK "%d~%08x", obj, (int)getpid(), rnd) >=
        (int)sizeof tmp)
        return JOBQ_EURL;
    int fd = shm_open(tmp, O_RDWR | O_CREAT | O_EXCL, 0600);
    if (fd < 0)
        return JOBQ_ESYS;
    void *base = MAP_FAILED;
    if (fchmod(fd, 0600) == 0 && ftruncate(fd, (off_t)g.seg_size) == 0)
        base = mmap(NULL, g.seg_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int pub = -1;
    if (base != MAP_FAILED && s_init(base, &g) == 0)
        pub = s_publish(tmp, obj, stale_fd);
    int saved = errno;
    close(fd);
    shm_unlink(tmp); /* after link or rename the final name keeps the object alive */
    if (pub != 0) {
        if (base != MAP_FAILED)
            munmap(base, g.seg_size);
        errno = saved;
        return pub == 1 ? JOBQ_EDUPLICATE : JOBQ_ESYS;
    }
    *out = s_handle(base, g.seg_size);
    return JOBQ_OK;
}

int
shmq_seg_open(const char *name, const jobq_queue_opts_t *opts, shmq_t **out)
{
    char obj[S_OBJ_MAX];
    const char *why = "";
    int create = (opts->flags & JOBQ_QUEUE_CREATE) != 0;
    int excl = create && (opts->flags & JOBQ_QUEUE_EXCL);
    if (shmq_object_name(name, obj, sizeof obj) != 0)
        return JOBQ_EURL;
    for (int attempt = 0; attempt < 16; attempt++) {
        int fd = shm_open(obj, O_RDWR, 0);
        if (fd < 0 && errno != ENOENT)
            return errno == EACCES ? JOBQ_EFORBIDDEN : JOBQ_ESYS;
        if (fd < 0) {
            if (!create)
                return JOBQ_ENOTFOUND;
            int rc = s_create(obj, opts, -1, out);
            if (rc != JOBQ_EDUPLICATE)
                return rc;
            continue; /* another creator won: attach to theirs */
        }
        int rc = s_attach_fd(fd, out, &why);
        if (rc == JOBQ_OK) {
            close(fd);
            if (excl) {
                shmq_seg_close(*out);
                *out = NULL;
                return JOBQ_EDUPLICATE;
            }
            return JOBQ_OK;
        }
        if (rc == JOBQ_ECORRUPT || rc == JOBQ_EVERSION) {
            LOG_WARN("shm object %s is stale: %s%s", obj, why, create ? "; replacing it" : "");
            if (create) {
                rc = s_create(obj, opts, fd, out);
                close(fd);
                if (rc == JOBQ_EDUPLICATE)
                    continue; /* someone replaced it first */
                return rc;
            }
        }
        close(fd);
        return rc;
    }
    return JOBQ_EBUSY;
}
