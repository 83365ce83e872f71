/*
 * tests/unit/test_journal.c: the broker journal in-process (broker/journal.h)
 * with real files in a temp dir (RELIABILITY.md §3.3): every prefix of a
 * journal of ~200 mixed records recovers exactly the records it holds; a
 * flipped bit before the last record is found at its record's offset; a
 * zero-filled tail is the end; a bad header or version refuses and leaves the
 * file alone; replaying twice gives the same state, with leased jobs READY and
 * their attempt counted; the lock keeps a second opener out; files are 0600
 * and the directory 0700 under umask 000; a symlinked segment is refused;
 * compaction keeps the journal within 4x live data + 2 segments under churn;
 * a DEAD job keeps its exit code and signal across replays.
 */
#include "broker/core.h"
#include "broker/journal.h"
#include "common/clock.h"
#include "jobq/log.h"
#include "jobq_test.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define W1 101u
#define REC_HDR 16u
#define SEG_HDR 32u

static char s_dir[256];

static void
s_mkdir(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/jobq-tj-%d-XXXXXX", (int)getpid());
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    strcat(s_dir, "/j");
}

static void
s_rmdir(void)
{
    DIR *d = opendir(s_dir);
    struct dirent *e;
    char p[512];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        snprintf(p, sizeof p, "%s/%s", s_dir, e->d_name);
        unlink(p);
    }
    if (d)
        closedir(d);
    rmdir(s_dir);
    *strrchr(s_dir, '/') = '\0';
    rmdir(s_dir);
}

static core_t *
s_core(void)
{
    core_config_t cfg;
    core_config_init(&cfg);
    cfg.seed = 42;
    cfg.backoff_base_ms = 3600000; /* failed jobs stay DELAYED across the reopen */
    cfg.backoff_max_ms = 3600000;
    core_t *c = core_new(&cfg);
    ck_assert_ptr_nonnull(c);
    return c;
}

static journal_t *
s_open(core_t *c, int64_t now, uint64_t segment)
{
    journal_opts_t o;
    journal_opts_init(&o);
    o.dir = s_dir;
    o.policy = JOURNAL_ALWAYS;
    if (segment)
        o.segment_bytes = segment;
    journal_t *j = NULL;
    char why[512];
    int rc = journal_open(&o, c, now, &j, why, sizeof why);
    ck_assert_msg(rc == JOBQ_OK, "journal_open: %s", why);
    return j;
}

/* Path of the only segment file. */
static void
s_segment(char *out, size_t len)
{
    DIR *d = opendir(s_dir);
    struct dirent *e;
    int n = 0;
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "seg-", 4) == 0) {
            snprintf(out, len, "%s/%s", s_dir, e->d_name);
            n++;
        }
    closedir(d);
    ck_assert_int_eq(n, 1);
}

static unsigned char *
s_read(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    ck_assert_ptr_nonnull(f);
    fseek(f, 0, SEEK_END);
    *len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(*len + 1);
    ck_assert_uint_eq(fread(b, 1, *len, f), *len);
    fclose(f);
    return b;
}

static jobq_id_t
s_submit(core_t *c, const char *q, const char *payload, uint64_t delay, const char *unique,
         uint32_t max_attempts, int64_t now)
{
    jobq_job_t job;
    jobq_job_init(&job);
    job.queue = q;
    job.queue_len = (uint32_t)strlen(q);
    job.payload = payload;
    job.payload_len = (uint32_t)strlen(payload);
    job.delay_ms = delay;
    job.max_attempts = max_attempts;
    job.backoff_ms = payload[strlen(payload) - 1] == '3' ? 250 : 0; /* some with their own */
    if (unique) {
        job.unique = unique;
        job.unique_len = (uint32_t)strlen(unique);
    }
    jobq_id_t id;
    ck_assert_jobq_ok(core_submit(c, &job, 7, now, &id, NULL));
    return id;
}

static void
s_complete(core_t *c, const core_job_view_t *v, jobq_status st, const char *out, int64_t now)
{
    jobq_result_t r;
    jobq_result_init(&r);
    r.id = v->id;
    r.attempt = v->attempt;
    r.status = st;
    r.output = out;
    r.output_len = (uint32_t)strlen(out);
    ck_assert_jobq_ok(core_complete(c, W1, &r, now));
}

/* About 200 records of every type: submits (delayed, unique, several
 * queues), deliveries, DONE, FAILED (retry with backoff), DEAD, releases,
 * kicks, deletes, a pause; leaves jobs in every state, one RESERVED. */
static void
s_workload(core_t *c, journal_t *j, int64_t *now)
{
    static const char *const qs[] = {"a", "b", "c"};
    char p[64], u[32];
    for (int i = 0; i < 60; i++) {
        snprintf(p, sizeof p, "payload %d", i);
        snprintf(u, sizeof u, "key%d", i);
        s_submit(c, qs[i % 3], p, i % 7 == 0 ? 100000 : 0, i % 5 == 0 ? u : NULL, 1 + i % 3, *now);
        *now += 1;
    }
    ck_assert_jobq_ok(journal_commit(j, *now));
    ck_assert_jobq_ok(core_worker_credit(c, W1, 1000, *now));
    core_name_t names[3] = {{"a", 1}, {"b", 1}, {"c", 1}};
    core_job_view_t v[40];
    size_t n = 0;
    ck_assert_jobq_ok(core_reserve(c, W1, names, 3, *now, 40, v, &n));
    ck_assert_uint_eq(n, 40);
    for (size_t i = 0; i < 39; i++) { /* the last stays RESERVED */
        *now += 1;
        if (i % 4 == 0)
            s_complete(c, &v[i], JOBQ_STATUS_DONE, "ok", *now);
        else if (i % 4 == 1)
            s_complete(c, &v[i], JOBQ_STATUS_FAILED, "", *now);
        else if (i % 4 == 2)
            s_complete(c, &v[i], JOBQ_STATUS_DEAD, "", *now);
        else
            ck_assert_jobq_ok(core_release(c, W1, &v[i].id, v[i].attempt, i % 8 ? 0 : 5000, *now));
    }
    ck_assert_jobq_ok(journal_commit(j, *now));
    uint64_t k = 0;
    ck_assert_jobq_ok(core_kick(c, "a", 1, 2, *now, &k));
    core_job_view_t dead[4];
    ck_assert_jobq_ok(core_list(c, "b", 1, JOBQ_STATE_DEAD, 4, dead, &n));
    if (n)
        ck_assert_jobq_ok(core_delete(c, &dead[0].id, *now));
    core_job_view_t ready[4];
    ck_assert_jobq_ok(core_list(c, "c", 1, JOBQ_STATE_READY, 4, ready, &n));
    ck_assert_uint_ge(n, 2);
    ck_assert_jobq_ok(core_delete(c, &ready[0].id, *now));
    ck_assert_jobq_ok(core_bury(c, &ready[1].id, JOBQ_STATUS_DEAD, "by hand", 7, *now));
    ck_assert_jobq_ok(core_pause(c, "b", 1, CORE_FOREVER, *now));
    ck_assert_jobq_ok(journal_commit(j, *now));
}

static int
s_cmp_line(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* A sorted text dump of the core: every job (RESERVED shown as READY with
 * the attempt counted: what a restart gives) and every retained result. */
static char *
s_dump(core_t *c)
{
    size_t cap = 1 << 20, len = 0;
    char *out = calloc(1, cap);
    char **lines = calloc(4096, sizeof *lines);
    size_t n = 0;
    uint32_t cur = 0;
    core_job_view_t v;
    while (core_job_next(c, &cur, &v)) {
        char *l = malloc(512);
        unsigned st = v.state == JOBQ_STATE_RESERVED ? JOBQ_STATE_READY : v.state;
        unsigned used = v.attempts_used + (v.state == JOBQ_STATE_RESERVED);
        if (v.state == JOBQ_STATE_RESERVED && used >= v.max_attempts) {
            st = JOBQ_STATE_DEAD; /* its last attempt crashed with the broker */
            v.error = "the broker stopped while the job ran";
            v.error_len = (uint32_t)strlen(v.error);
        }
        snprintf(l, 512, "J %016llx%016llx %.*s st=%u used=%u bo=%u p=%.*s u=%.*s err=%.*s",
                 (unsigned long long)((const uint64_t *)&v.id)[0],
                 (unsigned long long)((const uint64_t *)&v.id)[1], (int)v.queue_len, v.queue, st,
                 used, v.backoff_ms, (int)v.payload_len, (const char *)v.payload, (int)v.unique_len,
                 v.unique ? v.unique : "", (int)v.error_len, v.error ? v.error : "");
        lines[n++] = l;
    }
    cur = 0;
    core_result_view_t r;
    const void *u;
    uint32_t ul;
    while (core_result_next(c, &cur, &r, &u, &ul)) {
        char *l = malloc(512);
        snprintf(l, 512, "R %016llx%016llx %.*s st=%u last=%u out=%.*s err=%.*s u=%.*s",
                 (unsigned long long)((const uint64_t *)&r.id)[0],
                 (unsigned long long)((const uint64_t *)&r.id)[1], (int)r.queue_len, r.queue,
                 r.status, r.last_status, (int)r.output_len, r.output ? (const char *)r.output : "",
                 (int)r.error_len, r.error ? r.error : "", (int)ul, u ? (const char *)u : "");
        lines[n++] = l;
    }
    qsort(lines, n, sizeof *lines, s_cmp_line);
    for (size_t i = 0; i < n; i++) {
        len += (size_t)snprintf(out + len, cap - len, "%s\n", lines[i]);
        free(lines[i]);
    }
    core_queue_stats_t qs;
    if (core_queue_stats(c, "b", 1, &qs) == JOBQ_OK)
        snprintf(out + len, cap - len, "paused b=%d\n", qs.paused);
    free(lines);
    return out;
}

/* Asserts two dumps are equal, naming the first line that differs. */
static void
s_same(const char *got, const char *want)
{
    size_t i = 0;
    while (got[i] && got[i] == want[i])
        i++;
    if (!got[i] && !want[i])
        return;
    if (getenv("JOBQ_LOG"))
        fprintf(stderr, "GOT:\n%s\nWANT:\n%s\n", got, want);
    while (i > 0 && got[i - 1] != '\n')
        i--;
    ck_abort_msg("dumps differ at:\n got  %.150s\n want %.150s", got + i, want + i);
}

/* Writes a journal with the workload; returns the dump of the core. */
static char *
s_make_journal(void)
{
    core_t *c = s_core();
    int64_t now = jobq_now_ms();
    journal_t *j = s_open(c, now, 0);
    s_workload(c, j, &now);
    char *d = s_dump(c);
    journal_close(&j);
    core_destroy(&c);
    return d;
}

/* Offsets where each record ends, from a full scan. */
typedef struct ends {
    size_t off, n;
    size_t at[4096];    /* where record i's body ends */
    size_t start[4096]; /* where record i starts */
} ends_t;

static int
s_on_rec(void *arg, unsigned type, const unsigned char *body, uint32_t len)
{
    ends_t *e = arg;
    (void)type;
    (void)body;
    e->start[e->n] = e->off;
    e->at[e->n++] = e->off + REC_HDR + len; /* the padding may be cut */
    e->off += (REC_HDR + len + 7u) & ~7u;
    return 0;
}

START_TEST(test_replay_restores_the_same_state_and_twice_is_idempotent)
{
    s_mkdir();
    char *want = s_make_journal();
    core_t *c2 = s_core();
    journal_t *j2 = s_open(c2, jobq_now_ms(), 0);
    char *got = s_dump(c2);
    s_same(got, want);
    const char *why = NULL;
    ck_assert_msg(core_check(c2, &why) == 0, "%s", why);
    core_stats_t st;
    core_stats(c2, &st);
    ck_assert_uint_eq(st.reserved, 0); /* the leased job is READY again */
    journal_close(&j2);
    core_t *c3 = s_core();
    journal_t *j3 = s_open(c3, jobq_now_ms(), 0);
    char *again = s_dump(c3);
    s_same(again, got);
    journal_close(&j3);
    core_destroy(&c2);
    core_destroy(&c3);
    free(want);
    free(got);
    free(again);
    s_rmdir();
}
END_TEST

/* Completes v's attempt with st and the handler's exit code and signal. */
static void
s_finish(core_t *c, const core_job_view_t *v, jobq_status st, int32_t code, int32_t sig,
         const char *err, int64_t now)
{
    jobq_result_t r;
    jobq_result_init(&r);
    r.id = v->id;
    r.attempt = v->attempt;
    r.status = st;
    r.exit_code = code;
    r.signal = sig;
    r.duration_us = 1234567;
    r.error = err;
    r.error_len = (uint32_t)strlen(err);
    ck_assert_jobq_ok(core_complete(c, W1, &r, now));
}

START_TEST(test_a_dead_job_keeps_its_exit_code_and_signal_across_replay)
{
    s_mkdir();
    core_t *c = s_core();
    int64_t now = jobq_now_ms();
    journal_t *j = s_open(c, now, 0);
    jobq_id_t failed = s_submit(c, "d", "exits 3", 0, NULL, 1, now);
    jobq_id_t killed = s_submit(c, "d", "killed", 0, "k1", 1, now);
    ck_assert_jobq_ok(core_worker_credit(c, W1, 10, now));
    core_name_t names[1] = {{"d", 1}};
    core_job_view_t v[2];
    size_t n = 0;
    ck_assert_jobq_ok(core_reserve(c, W1, names, 1, now, 2, v, &n));
    ck_assert_uint_eq(n, 2);
    for (size_t i = 0; i < n; i++) {
        if (memcmp(&v[i].id, &failed, sizeof failed) == 0)
            s_finish(c, &v[i], JOBQ_STATUS_FAILED, 3, 0, "exit status 3", now + 5);
        else
            s_finish(c, &v[i], JOBQ_STATUS_CRASHED, 0, 9, "killed by signal 9", now + 5);
    }
    ck_assert_jobq_ok(journal_commit(j, now + 5));
    journal_close(&j);
    core_destroy(&c);

    for (int round = 0; round < 2; round++) { /* the snapshot keeps them too */
        core_t *c2 = s_core();
        journal_t *j2 = s_open(c2, jobq_now_ms(), 0);
        core_job_view_t a, b;
        ck_assert_jobq_ok(core_peek(c2, &failed, &a));
        ck_assert_int_eq(a.state, JOBQ_STATE_DEAD);
        ck_assert_int_eq(a.last_status, JOBQ_STATUS_FAILED);
        ck_assert_int_eq(a.exit_code, 3);
        ck_assert_int_eq(a.signal, 0);
        ck_assert_uint_eq(a.error_len, strlen("exit status 3"));
        ck_assert_int_eq(memcmp(a.error, "exit status 3", a.error_len), 0);
        ck_assert_jobq_ok(core_peek(c2, &killed, &b));
        ck_assert_int_eq(b.state, JOBQ_STATE_DEAD);
        ck_assert_int_eq(b.last_status, JOBQ_STATUS_CRASHED);
        ck_assert_int_eq(b.exit_code, 0);
        ck_assert_int_eq(b.signal, 9);
        ck_assert_uint_eq(b.error_len, strlen("killed by signal 9"));
        ck_assert_int_eq(memcmp(b.error, "killed by signal 9", b.error_len), 0);
        const char *why = NULL;
        ck_assert_msg(core_check(c2, &why) == 0, "%s", why);
        journal_close(&j2);
        core_destroy(&c2);
    }
    s_rmdir();
}
END_TEST

START_TEST(test_every_prefix_recovers_exactly_the_whole_records_in_it)
{
    s_mkdir();
    free(s_make_journal());
    char path[512];
    s_segment(path, sizeof path);
    size_t len;
    unsigned char *b = s_read(path, &len);
    ends_t *e = calloc(1, sizeof *e);
    e->off = SEG_HDR;
    journal_scan_t sc;
    ck_assert_jobq_ok(journal_scan_buf(b, len, s_on_rec, e, &sc));
    ck_assert_uint_ge(e->n, 140);
    ck_assert_uint_eq(sc.end, len);
    ck_assert_int_eq(sc.torn, 0);
    size_t step = len / 2000 + 1;
    for (size_t l = 0; l <= len; l += (l < 64 ? 1 : step)) {
        int rc = journal_scan_buf(b, l, NULL, NULL, &sc);
        if (l < SEG_HDR) {
            ck_assert_int_eq(rc, JOBQ_EVERSION);
            continue;
        }
        ck_assert_msg(rc == JOBQ_OK, "prefix %zu: %s", l, jobq_errname(rc));
        size_t want = 0;
        while (want < e->n && e->at[want] <= l)
            want++;
        ck_assert_msg(sc.records == want, "prefix %zu: %llu records, want %zu", l,
                      (unsigned long long)sc.records, want);
        if (l % 10 == 0) { /* and the replay of the prefix loads cleanly */
            journal_replay_t *rp = journal_replay_new();
            journal_scan_buf(b, l, journal_replay_record, rp, &sc);
            core_t *c = s_core();
            journal_replay_load(rp, c, 100, 100);
            const char *why = NULL;
            ck_assert_msg(core_check(c, &why) == 0, "%s", why);
            core_destroy(&c);
            journal_replay_destroy(&rp);
        }
    }
    free(e);
    free(b);
    s_rmdir();
}
END_TEST

START_TEST(test_a_flipped_bit_before_the_last_record_is_found_at_its_record)
{
    s_mkdir();
    free(s_make_journal());
    char path[512];
    s_segment(path, sizeof path);
    size_t len;
    unsigned char *b = s_read(path, &len);
    ends_t *e = calloc(1, sizeof *e);
    e->off = SEG_HDR;
    journal_scan_t sc;
    ck_assert_jobq_ok(journal_scan_buf(b, len, s_on_rec, e, &sc));
    srand(1234);
    for (int t = 0; t < 200; t++) {
        size_t k = (size_t)rand() % (e->n - 1); /* not the last record */
        size_t start = e->start[k];
        size_t bit = (start + (size_t)rand() % (e->start[k + 1] - start)) * 8 + (size_t)rand() % 8;
        b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
        int rc = journal_scan_buf(b, len, NULL, NULL, &sc);
        ck_assert_msg(rc == JOBQ_ECORRUPT, "trial %d: bit %zu of record %zu: %s", t, bit, k,
                      jobq_errname(rc));
        ck_assert_uint_eq(sc.bad_at, start);
        ck_assert_uint_eq(sc.records, k);
        b[bit / 8] ^= (unsigned char)(1u << (bit % 8));
    }
    free(e);
    free(b);
    s_rmdir();
}
END_TEST

START_TEST(test_a_zero_filled_tail_is_the_end_of_data)
{
    s_mkdir();
    char *want = s_make_journal();
    char path[512];
    s_segment(path, sizeof path);
    size_t len;
    unsigned char *b = s_read(path, &len);
    int fd = open(path, O_WRONLY | O_APPEND);
    static unsigned char zeros[1 << 20];
    ck_assert_int_eq(write(fd, zeros, sizeof zeros), (int)sizeof zeros);
    close(fd);
    core_t *c = s_core();
    journal_t *j = s_open(c, jobq_now_ms(), 0);
    char *got = s_dump(c);
    s_same(got, want);
    journal_close(&j);
    core_destroy(&c);
    free(got);
    free(want);
    free(b);
    s_rmdir();
}
END_TEST

START_TEST(test_a_bad_magic_or_version_refuses_and_leaves_the_file_alone)
{
    for (int which = 0; which < 2; which++) {
        s_mkdir();
        free(s_make_journal());
        char path[512];
        s_segment(path, sizeof path);
        size_t len;
        unsigned char *b = s_read(path, &len);
        if (which == 0)
            b[0] = 'X';
        else
            b[8] = 99; /* version 99 (the header CRC fails too) */
        FILE *f = fopen(path, "wb");
        fwrite(b, 1, len, f);
        fclose(f);
        core_t *c = s_core();
        journal_opts_t o;
        journal_opts_init(&o);
        o.dir = s_dir;
        journal_t *j = NULL;
        char why[512];
        ck_assert_int_eq(journal_open(&o, c, 1000, &j, why, sizeof why), JOBQ_EVERSION);
        ck_assert_ptr_null(j);
        ck_assert_ptr_nonnull(strstr(why, "seg-"));
        size_t len2;
        unsigned char *b2 = s_read(path, &len2);
        ck_assert_uint_eq(len2, len);
        ck_assert_int_eq(memcmp(b, b2, len), 0);
        free(b);
        free(b2);
        core_destroy(&c);
        s_rmdir();
    }
}
END_TEST

START_TEST(test_recover_truncates_at_a_bad_record_and_keeps_the_prefix)
{
    s_mkdir();
    free(s_make_journal());
    char path[512];
    s_segment(path, sizeof path);
    size_t len;
    unsigned char *b = s_read(path, &len);
    ends_t *e = calloc(1, sizeof *e);
    e->off = SEG_HDR;
    journal_scan_t sc;
    journal_scan_buf(b, len, s_on_rec, e, &sc);
    size_t k = e->n / 2, start = e->start[k];
    b[start + REC_HDR] ^= 0x10; /* a body byte of record k */
    FILE *f = fopen(path, "wb");
    fwrite(b, 1, len, f);
    fclose(f);
    core_t *c = s_core();
    journal_opts_t o;
    journal_opts_init(&o);
    o.dir = s_dir;
    journal_t *j = NULL;
    char why[512], off[32];
    ck_assert_int_eq(journal_open(&o, c, 1000, &j, why, sizeof why), JOBQ_ECORRUPT);
    snprintf(off, sizeof off, "offset %zu", start);
    ck_assert_msg(strstr(why, off) != NULL, "%s", why);
    o.recover = 1;
    ck_assert_jobq_ok(journal_open(&o, c, 1000, &j, why, sizeof why));
    journal_stats_t st;
    journal_stats(j, &st);
    ck_assert_uint_eq(st.replayed, k); /* exactly the records before the bad one */
    journal_close(&j);
    core_destroy(&c);
    free(e);
    free(b);
    s_rmdir();
}
END_TEST

START_TEST(test_a_second_opener_finds_the_journal_locked)
{
    s_mkdir();
    core_t *c = s_core(), *c2 = s_core();
    journal_t *j = s_open(c, 1000, 0), *j2 = NULL;
    journal_opts_t o;
    journal_opts_init(&o);
    o.dir = s_dir;
    char why[512];
    ck_assert_int_eq(journal_open(&o, c2, 1000, &j2, why, sizeof why), JOBQ_EBUSY);
    ck_assert_ptr_nonnull(strstr(why, "journal locked"));
    journal_close(&j);
    ck_assert_jobq_ok(journal_open(&o, c2, 1000, &j2, why, sizeof why));
    journal_close(&j2);
    core_destroy(&c);
    core_destroy(&c2);
    s_rmdir();
}
END_TEST

START_TEST(test_files_are_0600_and_the_directory_0700_under_umask_000)
{
    umask(0);
    s_mkdir();
    core_t *c = s_core();
    journal_t *j = s_open(c, 1000, 0);
    struct stat sb;
    ck_assert_int_eq(stat(s_dir, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0700);
    char path[512];
    snprintf(path, sizeof path, "%s/lock", s_dir);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0600);
    s_segment(path, sizeof path);
    ck_assert_int_eq(stat(path, &sb), 0);
    ck_assert_uint_eq(sb.st_mode & 0777, 0600);
    journal_close(&j);
    core_destroy(&c);
    s_rmdir();
}
END_TEST

START_TEST(test_a_symlink_under_a_segment_name_is_refused)
{
    s_mkdir();
    free(s_make_journal());
    char link[512];
    snprintf(link, sizeof link, "%s/seg-00000000000000ff.jrn", s_dir);
    ck_assert_int_eq(symlink("/etc/passwd", link), 0);
    core_t *c = s_core();
    journal_opts_t o;
    journal_opts_init(&o);
    o.dir = s_dir;
    journal_t *j = NULL;
    char why[512];
    ck_assert_int_eq(journal_open(&o, c, 1000, &j, why, sizeof why), JOBQ_EFORBIDDEN);
    ck_assert_ptr_nonnull(strstr(why, "seg-00000000000000ff.jrn"));
    core_destroy(&c);
    s_rmdir();
}
END_TEST

START_TEST(test_compaction_keeps_the_journal_within_4x_live_plus_2_segments_under_churn)
{
    s_mkdir();
    core_t *c = s_core();
    int64_t now = 1000;
    uint64_t seg = 64 * 1024;
    journal_t *j = s_open(c, now, seg);
    char p[128];
    memset(p, 'x', sizeof p - 1);
    p[sizeof p - 1] = '\0';
    for (int i = 0; i < 2000; i++)
        s_submit(c, "q", p, 0, NULL, 5, now);
    ck_assert_jobq_ok(journal_commit(j, now));
    ck_assert_jobq_ok(core_worker_credit(c, W1, 500, now));
    core_name_t q = {"q", 1};
    core_job_view_t *v = calloc(500, sizeof *v);
    uint64_t max_seen = 0;
    journal_stats_t st;
    for (int round = 0; round < 200; round++) {
        size_t n = 0;
        now += 10;
        ck_assert_jobq_ok(core_reserve(c, W1, &q, 1, now, 500, v, &n));
        for (size_t i = 0; i < n; i++) /* back with a short delay: churn */
            ck_assert_jobq_ok(core_release(c, W1, &v[i].id, v[i].attempt, 5, now));
        core_tick(c, now + 6);
        ck_assert_jobq_ok(journal_commit(j, now));
        journal_stats(j, &st);
        max_seen = st.bytes > max_seen ? st.bytes : max_seen;
        core_stats_t cs;
        core_stats(c, &cs);
        uint64_t live = cs.bytes + cs.jobs * 128;
        ck_assert_msg(st.bytes <= 4 * live + 2 * seg, "round %d: %llu bytes, live %llu", round,
                      (unsigned long long)st.bytes, (unsigned long long)live);
    }
    ck_assert_uint_gt(st.compactions, 3);
    ck_assert_uint_le(max_seen, 4 * (2000 * (128 + 127)) + 2 * seg);
    free(v);
    journal_close(&j);
    core_destroy(&c);
    s_rmdir();
}
END_TEST

int
main(void)
{
    if (getenv("JOBQ_LOG"))
        jobq_log_set(jobq_log_stderr, NULL, JOBQ_LOG_DEBUG);
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("journal");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_replay_restores_the_same_state_and_twice_is_idempotent);
    tcase_add_test(tc, test_a_dead_job_keeps_its_exit_code_and_signal_across_replay);
    tcase_add_test(tc, test_every_prefix_recovers_exactly_the_whole_records_in_it);
    tcase_add_test(tc, test_a_flipped_bit_before_the_last_record_is_found_at_its_record);
    tcase_add_test(tc, test_a_zero_filled_tail_is_the_end_of_data);
    tcase_add_test(tc, test_a_bad_magic_or_version_refuses_and_leaves_the_file_alone);
    tcase_add_test(tc, test_recover_truncates_at_a_bad_record_and_keeps_the_prefix);
    tcase_add_test(tc, test_a_second_opener_finds_the_journal_locked);
    tcase_add_test(tc, test_files_are_0600_and_the_directory_0700_under_umask_000);
    tcase_add_test(tc, test_a_symlink_under_a_segment_name_is_refused);
    tcase_add_test(tc,
                   test_compaction_keeps_the_journal_within_4x_live_plus_2_segments_under_churn);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
