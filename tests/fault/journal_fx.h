/*
 * tests/fault/journal_fx.h: the fixture shared by the journal fault tests
 * (test_journal_crash.c, test_journal_faults.c): a temp dir with a broker
 * socket and a journal dir, a `jobq broker --journal` started through
 * net_support.h or under strace with a fault injected, and job helpers.
 */
#ifndef JOBQ_TESTS_JOURNAL_FX_H
#define JOBQ_TESTS_JOURNAL_FX_H

#include "broker/journal.h"
#include "jobq/errors.h"
#include "jobq/pool.h"
#include "jobq/producer.h"
#include "jobq_test.h"
#include "net_support.h"
#include "wire_client.h"
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

typedef struct fx {
    char dir[256];
    char url[320];
    char jdir[320];
    char policy[32];
    ns_broker_t broker;
    pid_t strace; /* a broker run under strace, or 0 */
} fx_t;

static inline void
s_nap(int64_t ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static inline void
fx_init(fx_t *f, const char *policy)
{
    memset(f, 0, sizeof *f);
    ck_assert_int_eq(ns_tempdir(f->dir, sizeof f->dir), 0);
    snprintf(f->url, sizeof f->url, "ipc://%s/b.sock", f->dir);
    snprintf(f->jdir, sizeof f->jdir, "%s/j", f->dir);
    snprintf(f->policy, sizeof f->policy, "%s", policy);
}

static inline int
fx_start(fx_t *f, const char *extra)
{
    const char *args[] = {"--journal", f->jdir, "--fsync", f->policy, extra, NULL};
    return ns_broker_start(&f->broker, f->url, args);
}

static inline void
fx_rm(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char p[1100];
    while (d && (e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        if (snprintf(p, sizeof p, "%s/%s", dir, e->d_name) >= (int)sizeof p)
            continue;
        if (unlink(p) != 0)
            fx_rm(p);
    }
    if (d)
        closedir(d);
    rmdir(dir);
}

/* SIGKILLs a broker run under strace (its pid is in the journal's lock
 * file: killing strace alone would leave the broker running), reaps strace. */
static inline void
s_kill_traced(fx_t *f)
{
    char path[400], buf[32];
    snprintf(path, sizeof path, "%s/lock", f->jdir);
    if (ns_read_file(path, buf, sizeof buf) > 0 && atoi(buf) > 1)
        kill((pid_t)atoi(buf), SIGKILL);
    ns_reap(f->strace, 5000);
    f->strace = 0;
}

static inline void
fx_fini(fx_t *f)
{
    if (f->broker.pid > 0)
        ns_broker_stop(&f->broker, SIGKILL, 5000);
    if (f->strace > 0)
        s_kill_traced(f);
    fx_rm(f->dir);
}

static inline int
s_have_strace(void)
{
    return system("strace -V >/dev/null 2>&1") == 0;
}

/* Starts the broker under strace with the given -e options; waits for its
 * "listening on" line in DIR/st.out. Returns 0 or -1. */
static inline int
s_strace_broker(fx_t *f, const char *trace, const char *inject)
{
    char out[400], err[400];
    snprintf(out, sizeof out, "%s/st.out", f->dir);
    snprintf(err, sizeof err, "%s/st.err", f->dir);
    const char *bin = getenv("JOBQ_BIN");
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0) {
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        dup2(o, 1);
        dup2(e, 2);
        execlp("strace", "strace", "-o", "/dev/null", "-e", trace, "-e", inject, bin, "broker",
               "--listen", f->url, "--journal", f->jdir, "--fsync", f->policy, (char *)NULL);
        _exit(127);
    }
    f->strace = pid;
    for (int i = 0; i < 1000; i++) {
        char buf[4096];
        if (ns_read_file(out, buf, sizeof buf) > 0 && strstr(buf, "listening on"))
            return 0;
        if (waitpid(pid, NULL, WNOHANG) == pid) {
            f->strace = 0;
            return -1;
        }
        s_nap(10);
    }
    return -1;
}

static inline void
s_jobs(jobq_job_t *jobs, size_t n, char (*texts)[32], const char *tag)
{
    for (size_t i = 0; i < n; i++) {
        snprintf(texts[i], 32, "%s-%zu", tag, i);
        ns_job(&jobs[i], "q", texts[i], 0, 0);
    }
}

/* The path of the newest segment. */
static inline void
s_last_segment(const fx_t *f, char *out, size_t len)
{
    DIR *d = opendir(f->jdir);
    struct dirent *e;
    char best[256] = "";
    while ((e = readdir(d)) != NULL)
        if (strncmp(e->d_name, "seg-", 4) == 0 && strcmp(e->d_name, best) > 0)
            snprintf(best, sizeof best, "%s", e->d_name);
    closedir(d);
    ck_assert_str_ne(best, "");
    snprintf(out, len, "%s/%s", f->jdir, best);
}

#endif
