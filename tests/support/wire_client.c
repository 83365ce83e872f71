/*
 * tests/support/wire_client.c: a raw DEALER client of the broker and a real
 * `jobq broker` child for tests; see wire_client.h.
 */
#include "wire_client.h"

#include "jobq/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

struct wc {
    void *ctx, *sock;
    uint32_t hb_ms;
    int autohb, keep_hb;
    int64_t last_send_ms;
    zmq_msg_t frame; /* the last received frame: decoded messages point into it */
    wire_buf_t buf;
};

int64_t
wc_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

wc_t *
wc_connect(const char *url)
{
    wc_t *c = calloc(1, sizeof *c);
    if (!c)
        abort();
    int zero = 0;
    c->ctx = zmq_ctx_new();
    c->sock = zmq_socket(c->ctx, ZMQ_DEALER);
    zmq_setsockopt(c->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (!c->sock || zmq_connect(c->sock, url) != 0) {
        fprintf(stderr, "wc_connect %s: %s\n", url, zmq_strerror(errno));
        abort();
    }
    zmq_msg_init(&c->frame);
    c->last_send_ms = wc_now_ms();
    return c;
}

void
wc_close(wc_t **c_p)
{
    if (!c_p || !*c_p)
        return;
    wc_t *c = *c_p;
    zmq_msg_close(&c->frame);
    zmq_close(c->sock);
    zmq_ctx_term(c->ctx);
    wire_buf_fini(&c->buf);
    free(c);
    *c_p = NULL;
}

int
wc_send(wc_t *c, wire_msg_t *m)
{
    c->buf.len = 0;
    if (wire_encode(m, &c->buf) != JOBQ_OK) {
        fprintf(stderr, "wc_send: encode %s: %s\n", wire_type_name(m->type), m->error);
        return -1;
    }
    if (zmq_send(c->sock, c->buf.data, c->buf.len, 0) < 0)
        return -1;
    c->last_send_ms = wc_now_ms();
    return 0;
}

int
wc_send_frames(wc_t *c, const void *const *frames, const size_t *lens, size_t nframes)
{
    for (size_t i = 0; i < nframes; i++)
        if (zmq_send(c->sock, frames[i], lens[i], i + 1 < nframes ? ZMQ_SNDMORE : 0) < 0)
            return -1;
    c->last_send_ms = wc_now_ms();
    return 0;
}

void
wc_set_autohb(wc_t *c, int on)
{
    c->autohb = on;
}

void
wc_keep_heartbeats(wc_t *c, int on)
{
    c->keep_hb = on;
}

static void
s_heartbeat(wc_t *c)
{
    wire_msg_t h;
    wire_msg_init(&h, WIRE_HEARTBEAT);
    wc_send(c, &h);
}

int
wc_recv(wc_t *c, wire_msg_t *m, int64_t timeout_ms)
{
    int64_t deadline = wc_now_ms() + timeout_ms;
    wire_msg_init(m, 0);
    for (;;) {
        int64_t now = wc_now_ms(), wait = deadline - now;
        if (c->autohb && c->hb_ms) {
            int64_t due = c->last_send_ms + c->hb_ms / 2;
            if (now >= due) {
                s_heartbeat(c);
                due = now + c->hb_ms / 2;
            }
            if (due - now < wait)
                wait = due - now;
        }
        if (deadline - now <= 0)
            return JOBQ_ETIMEDOUT;
        zmq_pollitem_t it = {.socket = c->sock, .events = ZMQ_POLLIN};
        if (zmq_poll(&it, 1, (long)(wait > 0 ? wait : 0)) <= 0)
            continue;
        zmq_msg_close(&c->frame);
        zmq_msg_init(&c->frame);
        if (zmq_msg_recv(&c->frame, c->sock, ZMQ_DONTWAIT) < 0)
            continue;
        int rc = wire_decode(m, zmq_msg_data(&c->frame), zmq_msg_size(&c->frame), 0);
        if (rc != JOBQ_OK)
            return rc;
        if (m->type != WIRE_HEARTBEAT || c->keep_hb)
            return JOBQ_OK;
        wire_msg_fini(m);
    }
}

int
wc_recv_type(wc_t *c, wire_type type, wire_msg_t *m, int64_t timeout_ms)
{
    int64_t deadline = wc_now_ms() + timeout_ms;
    for (;;) {
        int64_t left = deadline - wc_now_ms();
        int rc = wc_recv(c, m, left > 0 ? left : 0);
        if (rc != JOBQ_OK || m->type == type)
            return rc;
        wire_msg_fini(m);
    }
}

int
wc_hello(wc_t *c, int role, uint32_t hb_ms, const char *name)
{
    wire_msg_t h, w;
    wire_msg_init(&h, WIRE_HELLO);
    h.fields = WIRE_F_ROLE | (hb_ms ? WIRE_F_HB : 0) | (name ? WIRE_F_NAME : 0);
    h.role = (uint32_t)role;
    h.hb_ms = hb_ms;
    if (name)
        h.name = (wire_str_t){name, (uint32_t)strlen(name)};
    if (wc_send(c, &h) != 0)
        return JOBQ_ESYS;
    int rc = wc_recv(c, &w, 5000);
    if (rc != JOBQ_OK)
        return rc;
    if (w.type == WIRE_WELCOME) {
        c->hb_ms = w.hb_ms;
        c->autohb = 1;
    } else {
        rc = w.type == WIRE_ERROR ? (int)w.code : JOBQ_EPROTO;
    }
    wire_msg_fini(&w);
    return rc;
}

int
wc_submit(wc_t *c, uint64_t req, const char *q, const char *const *payloads, size_t n,
          uint32_t ttr_ms, uint32_t max_attempts, const jobq_id_t *ids)
{
    jobq_job_t *jobs = calloc(n ? n : 1, sizeof *jobs);
    if (!jobs)
        abort();
    for (size_t i = 0; i < n; i++) {
        jobq_job_init(&jobs[i]);
        jobs[i].queue = q;
        jobs[i].queue_len = (uint32_t)strlen(q);
        jobs[i].payload = payloads[i];
        jobs[i].payload_len = (uint32_t)strlen(payloads[i]);
        if (ttr_ms)
            jobs[i].ttr_ms = ttr_ms;
        if (max_attempts)
            jobs[i].max_attempts = max_attempts;
        if (ids)
            jobs[i].id = ids[i];
    }
    wire_msg_t m;
    wire_msg_init(&m, WIRE_SUBMIT);
    m.fields = WIRE_F_REQ | WIRE_F_JOBS;
    m.req = req;
    m.jobs = jobs;
    m.njobs = (uint32_t)n;
    int rc = wc_send(c, &m);
    free(jobs);
    return rc;
}

int
wc_ready(wc_t *c, uint32_t credit, const char *q)
{
    wire_msg_t m;
    wire_str_t qs = {q, q ? (uint32_t)strlen(q) : 0};
    wire_msg_init(&m, WIRE_READY);
    m.fields = WIRE_F_CREDIT | (q ? WIRE_F_QUEUES : 0);
    m.credit = credit;
    m.queues = &qs;
    m.nqueues = q ? 1 : 0;
    return wc_send(c, &m);
}

int
wc_result(wc_t *c, const jobq_id_t *id, uint32_t attempt, jobq_status st, const char *out)
{
    jobq_result_t r;
    jobq_result_init(&r);
    r.id = *id;
    r.attempt = attempt;
    r.status = st;
    r.output = out;
    r.output_len = out ? (uint32_t)strlen(out) : 0;
    wire_msg_t m;
    wire_msg_init(&m, WIRE_RESULT);
    m.fields = WIRE_F_RESULTS;
    m.results = &r;
    m.nresults = 1;
    return wc_send(c, &m);
}

/* ---- the broker process -------------------------------------------------- */

/* Reads the child's stdout until a "listening on" line, within the deadline. */
static int
s_wait_listening(wc_broker_t *b, int64_t deadline)
{
    char line[1024];
    size_t len = 0;
    for (;;) {
        int64_t left = deadline - wc_now_ms();
        struct pollfd pfd = {.fd = b->out_fd, .events = POLLIN};
        if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
            return -1;
        ssize_t n = read(b->out_fd, line + len, sizeof line - 1 - len);
        if (n <= 0)
            return -1;
        len += (size_t)n;
        line[len] = '\0';
        if (strstr(line, "listening on ") && strchr(strstr(line, "listening on "), '\n'))
            return 0;
        if (len == sizeof line - 1)
            return -1;
    }
}

int
wc_broker_start(wc_broker_t *b, const char *const *args)
{
    const char *bin = getenv("JOBQ_BIN");
    memset(b, 0, sizeof *b);
    b->pid = -1;
    if (!bin)
        return -1;
    snprintf(b->dir, sizeof b->dir, "/tmp/jobq-wc-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(b->dir))
        return -1;
    snprintf(b->url, sizeof b->url, "ipc://%s/broker.sock", b->dir);
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0)
        return -1;
    const char *argv[64] = {bin, "broker", "--listen", b->url};
    size_t n = 4;
    for (size_t i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    b->pid = fork();
    if (b->pid == 0) { /* a failed test ends its process: the broker must not outlive it */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        dup2(fds[1], STDOUT_FILENO);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    b->out_fd = fds[0];
    if (b->pid < 0 || s_wait_listening(b, wc_now_ms() + 10000) != 0) {
        wc_broker_stop(b, 2000);
        return -1;
    }
    return 0;
}

int
wc_broker_alive(wc_broker_t *b)
{
    int st;
    if (b->pid <= 0 || kill(b->pid, 0) != 0)
        return 0;
    return waitpid(b->pid, &st, WNOHANG) == 0;
}

int
wc_broker_stop(wc_broker_t *b, int64_t timeout_ms)
{
    int status = -1;
    if (b->pid > 0) {
        kill(b->pid, SIGTERM);
        int64_t deadline = wc_now_ms() + timeout_ms;
        pid_t got = 0;
        while ((got = waitpid(b->pid, &status, WNOHANG)) == 0 && wc_now_ms() < deadline) {
            struct timespec ts = {0, 5 * 1000000L}; /* reaping poll, not a readiness wait */
            nanosleep(&ts, NULL);
        }
        if (got == 0) {
            kill(b->pid, SIGKILL);
            waitpid(b->pid, &status, 0);
            status = -1;
        }
        b->pid = -1;
    }
    if (b->out_fd > 0)
        close(b->out_fd);
    b->out_fd = -1;
    if (b->dir[0]) {
        char path[400];
        snprintf(path, sizeof path, "%s/broker.sock", b->dir);
        unlink(path);
        rmdir(b->dir);
        b->dir[0] = '\0';
    }
    return status;
}

long long
wc_json_num(const char *json, size_t len, const char *key)
{
    char pat[128];
    snprintf(pat, sizeof pat, "\"%s\":", key);
    size_t pl = strlen(pat);
    for (size_t i = 0; i + pl < len; i++)
        if (memcmp(json + i, pat, pl) == 0)
            return strtoll(json + i + pl, NULL, 10);
    return -1;
}
