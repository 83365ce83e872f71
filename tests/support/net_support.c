/*
 * tests/support/net_support.c: brokers on a chosen URL, `jobq` children,
 * bounded reaping and STATS for the network tests; see net_support.h.
 */
#include "net_support.h"

#include "common/wire.h"
#include "jobq/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static int64_t
s_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void
s_nap_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

int
ns_tempdir(char *dir, size_t len)
{
    snprintf(dir, len, "/tmp/jobq-net-%d-XXXXXX", (int)getpid());
    return mkdtemp(dir) ? 0 : -1;
}

/* Forks and execs $JOBQ_BIN argv with stdout to out_fd (or a file). */
static pid_t
s_fork_exec(const char *const *argv, int out_fd, const char *out, const char *err)
{
    const char *bin = getenv("JOBQ_BIN");
    if (!bin)
        return -1;
    const char *full[64] = {bin};
    size_t n = 1;
    for (size_t i = 0; argv[i] && n < 63; i++)
        full[n++] = argv[i];
    full[n] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL); /* a failed test must not leave it running */
    if (getppid() != parent)
        _exit(127);
    int o =
        out_fd >= 0 ? out_fd : open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0)
        _exit(127);
    dup2(o, STDOUT_FILENO);
    dup2(e, STDERR_FILENO);
    execv(bin, (char *const *)full);
    _exit(127);
}

static int
s_wait_listening(int fd, int64_t deadline)
{
    char line[1024];
    size_t len = 0;
    for (;;) {
        int64_t left = deadline - s_now_ms();
        struct pollfd pfd = {.fd = fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        ssize_t n = read(fd, line + len, sizeof line - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        line[len] = '\0';
        const char *at = strstr(line, "listening on ");
        if (at && strchr(at, '\n'))
            return 0;
        if (len == sizeof line - 1)
            return -1;
    }
}

int
ns_broker_start(ns_broker_t *b, const char *url, const char *const *args)
{
    int fds[2];
    memset(b, 0, sizeof *b);
    b->pid = -1;
    b->out_fd = -1;
    snprintf(b->url, sizeof b->url, "%s", url);
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    const char *argv[64] = {"broker", "--listen", url};
    size_t n = 3;
    for (size_t i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    b->pid = s_fork_exec(argv, fds[1], NULL, NULL);
    close(fds[1]);
    b->out_fd = fds[0];
    if (b->pid < 0 || s_wait_listening(b->out_fd, s_now_ms() + 10000) != 0) {
        ns_broker_stop(b, SIGKILL, 1000);
        return -1;
    }
    return 0;
}

int
ns_broker_stop(ns_broker_t *b, int sig, int64_t timeout_ms)
{
    int status = -1;
    if (b->pid > 0) {
        kill(b->pid, sig);
        status = ns_reap(b->pid, timeout_ms);
        b->pid = -1;
    }
    if (b->out_fd >= 0)
        close(b->out_fd);
    b->out_fd = -1;
    return status;
}

pid_t
ns_spawn(const char *const *argv, const char *out, const char *err)
{
    return s_fork_exec(argv, -1, out, err);
}

int
ns_reap(pid_t pid, int64_t timeout_ms)
{
    int status;
    int64_t deadline = s_now_ms() + timeout_ms;
    for (;;) {
        pid_t got = waitpid(pid, &status, WNOHANG);
        if (got == pid)
            return status;
        if (got < 0 && errno != EINTR)
            return -1;
        if (s_now_ms() >= deadline)
            break;
        s_nap_ms(5); /* reaping poll, not a readiness wait */
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    return -1;
}

/* Sends m on sock and waits up to 2 s for a reply of type want into buf (the
 * raw frame). Returns the frame's length or -1. */
static long
s_call(void *sock, wire_msg_t *m, zmq_msg_t *reply, int want)
{
    wire_buf_t out = {0};
    int ok = wire_encode(m, &out) == JOBQ_OK && zmq_send(sock, out.data, out.len, 0) >= 0;
    wire_buf_fini(&out);
    int64_t deadline = s_now_ms() + 2000;
    while (ok) {
        zmq_pollitem_t it = {sock, 0, ZMQ_POLLIN, 0};
        long left = (long)(deadline - s_now_ms());
        if (left <= 0 || zmq_poll(&it, 1, left) <= 0)
            return -1;
        if (zmq_msg_recv(reply, sock, 0) < 0)
            return -1;
        wire_msg_t r;
        if (wire_decode(&r, zmq_msg_data(reply), zmq_msg_size(reply), 0) != JOBQ_OK)
            continue;
        int type = r.type;
        wire_msg_fini(&r);
        if (type == want)
            return (long)zmq_msg_size(reply);
        if (type == WIRE_ERROR)
            return -1;
    }
    return -1;
}

long
ns_stats(const char *url, char *buf, size_t cap)
{
    void *ctx = zmq_ctx_new(), *sock = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0;
    long len = -1;
    zmq_msg_t reply;
    zmq_msg_init(&reply);
    zmq_setsockopt(sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(sock, url) == 0) {
        wire_msg_t m;
        wire_msg_init(&m, WIRE_HELLO);
        m.fields = WIRE_F_ROLE | WIRE_F_NAME;
        m.role = WIRE_ROLE_ADMIN;
        m.name = (wire_str_t){"test-stats", 10};
        if (s_call(sock, &m, &reply, WIRE_WELCOME) > 0) {
            wire_msg_init(&m, WIRE_STATS);
            m.fields = WIRE_F_REQ;
            m.req = 1;
            if (s_call(sock, &m, &reply, WIRE_STATS_REPLY) > 0) {
                wire_msg_t r;
                wire_decode(&r, zmq_msg_data(&reply), zmq_msg_size(&reply), 0);
                len = r.data.len < cap ? (long)r.data.len : (long)cap - 1;
                memcpy(buf, r.data.ptr, (size_t)len);
                buf[len] = '\0';
                wire_msg_fini(&r);
            }
        }
    }
    zmq_msg_close(&reply);
    zmq_close(sock);
    zmq_ctx_term(ctx);
    return len;
}

long long
ns_stat(const char *url, const char *key)
{
    static char buf[1 << 20];
    long len = ns_stats(url, buf, sizeof buf);
    if (len < 0)
        return -1;
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    const char *at = strstr(buf, pat);
    return at ? strtoll(at + strlen(pat), NULL, 10) : -1;
}

int
ns_wait_stat(const char *url, const char *key, long long want, int64_t timeout_ms)
{
    int64_t deadline = s_now_ms() + timeout_ms;
    for (;;) {
        if (ns_stat(url, key) == want)
            return 0;
        if (s_now_ms() >= deadline)
            return -1;
        s_nap_ms(10); /* polling a condition against a deadline */
    }
}

long
ns_read_file(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return -1;
    size_t len = 0;
    ssize_t n;
    while (len + 1 < cap && (n = read(fd, buf + len, cap - 1 - len)) > 0)
        len += (size_t)n;
    close(fd);
    buf[len] = '\0';
    return (long)len;
}

void
ns_job(jobq_job_t *job, const char *q, const char *text, uint32_t ttr_ms, uint32_t max_attempts)
{
    jobq_job_init(job);
    job->queue = q;
    job->queue_len = (uint32_t)strlen(q);
    job->payload = text;
    job->payload_len = (uint32_t)strlen(text);
    if (ttr_ms)
        job->ttr_ms = ttr_ms;
    if (max_attempts)
        job->max_attempts = max_attempts;
}

jobq_pool_t *
ns_pool_start(const char *url, unsigned workers, const char *builtin, uint32_t hb_ms,
              uint32_t prefetch)
{
    static const char *queues[] = {"q"};
    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.url = url;
    o.workers = workers;
    o.builtin = builtin;
    o.heartbeat_ms = hb_ms;
    if (prefetch)
        o.prefetch = prefetch;
    o.queues = queues;
    o.nqueues = 1;
    jobq_pool_t *pool = NULL;
    if (jobq_pool_new(&o, &pool) != JOBQ_OK)
        return NULL;
    if (jobq_pool_start(pool) != JOBQ_OK) {
        jobq_pool_destroy(&pool);
        return NULL;
    }
    return pool;
}
