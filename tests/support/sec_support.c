/*
 * tests/support/sec_support.c: key files, CURVE brokers and raw CURVE
 * clients for the security tests; see sec_support.h.
 */
#include "sec_support.h"

#include "common/curve.h"
#include "jobq/errors.h"
#include "net_support.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int64_t
ss_now_ms(void)
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

const char *
ss_path(const ss_env_t *e, const char *name, const char *ext, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s.%s", e->dir, name, ext);
    return buf;
}

/* Copies file from to to (small files). */
static int
s_copy(const char *from, const char *to)
{
    char buf[4096];
    int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_EXCL, 0644);
    ssize_t n = in >= 0 ? read(in, buf, sizeof buf) : -1;
    int ok = n > 0 && out >= 0 && write(out, buf, (size_t)n) == n;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    return ok ? 0 : -1;
}

int
ss_env_init(ss_env_t *e)
{
    static const char *const names[] = {"broker", "alice", "bob", "mallory"};
    char base[300], why[256], a[320], b[400];
    snprintf(e->dir, sizeof e->dir, "/tmp/jobq-sec-%d-XXXXXX", (int)getpid());
    if (!mkdtemp(e->dir))
        return -1;
    for (size_t i = 0; i < 4; i++) {
        snprintf(base, sizeof base, "%s/%s", e->dir, names[i]);
        if (jobq_curve_keygen(base, why, sizeof why) != JOBQ_OK) {
            fprintf(stderr, "keygen: %s\n", why);
            return -1;
        }
    }
    snprintf(e->clients, sizeof e->clients, "%s/clients", e->dir);
    if (mkdir(e->clients, 0700) != 0)
        return -1;
    for (size_t i = 1; i < 3; i++) {
        snprintf(b, sizeof b, "%s/%s.pub", e->clients, names[i]);
        if (s_copy(ss_path(e, names[i], "pub", a, sizeof a), b) != 0)
            return -1;
    }
    return 0;
}

static int
s_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void
ss_env_fini(ss_env_t *e)
{
    if (e->dir[0])
        nftw(e->dir, s_rm, 16, FTW_DEPTH | FTW_PHYS);
}

int
ss_wait_ge(const char *url, const char *key, long long want, int64_t timeout_ms)
{
    int64_t deadline = ss_now_ms() + timeout_ms;
    do {
        if (ns_stat(url, key) >= want)
            return 0;
        s_nap_ms(20);
    } while (ss_now_ms() < deadline);
    return -1;
}

static pid_t
s_spawn(const char *const *args, const char *out, const char *err, const char *fault)
{
    const char *bin = getenv("JOBQ_BIN");
    const char *argv[64] = {bin};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    pid_t parent = getpid();
    fflush(NULL);
    pid_t pid = fork();
    if (pid != 0)
        return pid;
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    int o = open(out ? out : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    int e = open(err ? err : "/dev/null", O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (o < 0 || e < 0)
        _exit(127);
    dup2(o, STDOUT_FILENO);
    dup2(e, STDERR_FILENO);
    if (fault)
        setenv("JOBQ_FAULT", fault, 1);
    else
        unsetenv("JOBQ_FAULT");
    if (!getenv("JOBQ_LOG"))
        setenv("JOBQ_LOG", "info", 1);
    execv(bin, (char *const *)argv);
    _exit(127);
}

static int
s_reap(pid_t pid, int64_t timeout_ms)
{
    int64_t deadline = ss_now_ms() + timeout_ms;
    int st;
    for (;;) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid)
            return st;
        if (r < 0 && errno != EINTR)
            return -1;
        if (ss_now_ms() >= deadline) {
            kill(pid, SIGKILL);
            waitpid(pid, &st, 0);
            return -1;
        }
        s_nap_ms(10);
    }
}

int
ss_run(const char *const *args, const char *out, const char *err, int64_t timeout_ms)
{
    pid_t pid = s_spawn(args, out, err, NULL);
    if (pid < 0)
        return -1;
    int st = s_reap(pid, timeout_ms);
    return st >= 0 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Reads the "listening on" lines of path: waits for want of them, copies
 * the tcp one. */
static int
s_wait_lines(ss_broker_t *b, int want, int64_t deadline)
{
    char buf[2048];
    while (ss_now_ms() < deadline) {
        int st;
        if (waitpid(b->pid, &st, WNOHANG) == b->pid) {
            b->pid = -1;
            return -1;
        }
        int fd = open(b->out, O_RDONLY);
        ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
        if (fd >= 0)
            close(fd);
        buf[n > 0 ? n : 0] = '\0';
        int lines = 0;
        for (char *p = buf; (p = strstr(p, "listening on ")) && strchr(p, '\n'); p++) {
            lines++;
            if (strncmp(p + 13, "tcp://", 6) == 0)
                sscanf(p + 13, "%127s", b->tcp);
        }
        if (lines >= want)
            return 0;
        s_nap_ms(10);
    }
    return -1;
}

int
ss_broker_start(ss_broker_t *b, const ss_env_t *e, int curve, const char *fault,
                const char *const *args)
{
    static int seq;
    char key[320];
    memset(b, 0, sizeof *b);
    seq++;
    snprintf(b->ipc, sizeof b->ipc, "ipc://%s/b-%d.sock", e->dir, seq);
    snprintf(b->err, sizeof b->err, "%s/broker-%d.err", e->dir, seq);
    snprintf(b->out, sizeof b->out, "%s/broker-%d.out", e->dir, seq);
    const char *argv[64] = {"broker", "-l", "tcp://127.0.0.1:0", "-l", b->ipc};
    size_t n = 5;
    if (curve) {
        argv[n++] = "--curve-key";
        argv[n++] = ss_path(e, "broker", "key", key, sizeof key);
        argv[n++] = "--curve-clients";
        argv[n++] = e->clients;
    }
    for (size_t i = 0; args && args[i] && n < 63; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    b->pid = s_spawn(argv, b->out, b->err, fault);
    if (b->pid < 0 || s_wait_lines(b, 2, ss_now_ms() + 10000) != 0) {
        ss_broker_stop(b);
        return -1;
    }
    return 0;
}

int
ss_broker_stop(ss_broker_t *b)
{
    if (b->pid <= 0)
        return -1;
    kill(b->pid, SIGTERM);
    int st = s_reap(b->pid, 5000);
    b->pid = -1;
    return st;
}

void *
ss_dealer(void *ctx, const ss_env_t *e, const char *url, const char *key, const char *server,
          const char *rid)
{
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int zero = 0, hs = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_HANDSHAKE_IVL, &hs, sizeof hs);
    if (rid)
        zmq_setsockopt(s, ZMQ_ROUTING_ID, rid, strlen(rid));
    if (key) {
        char kp[320], sp[320], why[256];
        int rc = jobq_curve_client_setup(s, ss_path(e, key, "key", kp, sizeof kp),
                                         ss_path(e, server, "pub", sp, sizeof sp), why, sizeof why);
        if (rc != JOBQ_OK) {
            fprintf(stderr, "curve setup: %s\n", why);
            abort();
        }
    }
    if (zmq_connect(s, url) != 0)
        abort();
    return s;
}

int
ss_send(void *sock, wire_msg_t *m)
{
    wire_buf_t b = {0};
    int rc = wire_encode(m, &b);
    if (rc == JOBQ_OK && zmq_send(sock, b.data, b.len, ZMQ_DONTWAIT) < 0)
        rc = -1;
    wire_buf_fini(&b);
    return rc == JOBQ_OK ? 0 : -1;
}

int
ss_recv(void *sock, zmq_msg_t *frame, wire_msg_t *m, int64_t timeout_ms)
{
    int64_t deadline = ss_now_ms() + timeout_ms;
    wire_msg_init(m, (wire_type)0);
    for (;;) {
        int64_t left = deadline - ss_now_ms();
        zmq_pollitem_t it = {.socket = sock, .events = ZMQ_POLLIN};
        if (left <= 0 || zmq_poll(&it, 1, (long)left) <= 0)
            return JOBQ_ETIMEDOUT;
        zmq_msg_close(frame);
        zmq_msg_init(frame);
        if (zmq_msg_recv(frame, sock, ZMQ_DONTWAIT) < 0)
            continue;
        wire_msg_fini(m);
        int rc = wire_decode(m, zmq_msg_data(frame), zmq_msg_size(frame), 0);
        if (rc != JOBQ_OK || m->type != WIRE_HEARTBEAT)
            return rc;
    }
}

int
ss_hello(void *sock, int role, const char *name, int64_t timeout_ms)
{
    wire_msg_t h, w;
    wire_msg_init(&h, WIRE_HELLO);
    h.fields = WIRE_F_ROLE | WIRE_F_NAME | WIRE_F_HB;
    h.role = (uint32_t)role;
    h.hb_ms = 5000;
    h.name = (wire_str_t){name, (uint32_t)strlen(name)};
    if (ss_send(sock, &h) != 0)
        return JOBQ_ESYS;
    zmq_msg_t f;
    zmq_msg_init(&f);
    int rc = ss_recv(sock, &f, &w, timeout_ms);
    if (rc == JOBQ_OK && w.type != WIRE_WELCOME)
        rc = w.type == WIRE_ERROR ? (int)w.code : JOBQ_EPROTO;
    wire_msg_fini(&w);
    zmq_msg_close(&f);
    return rc;
}

int
ss_file_has(const char *path, const char *needle)
{
    static char buf[1 << 20];
    int fd = open(path, O_RDONLY);
    if (fd < 0)
        return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return strstr(buf, needle) != NULL;
}

int
ss_secret_of(const char *key_path, char *out)
{
    char buf[1024];
    int fd = open(key_path, O_RDONLY);
    ssize_t n = fd >= 0 ? read(fd, buf, sizeof buf - 1) : -1;
    if (fd >= 0)
        close(fd);
    if (n <= 0)
        return -1;
    buf[n] = '\0';
    const char *s = strstr(buf, "\nsecret ");
    if (!s || strlen(s) < 8 + 40)
        return -1;
    memcpy(out, s + 8, 40);
    out[40] = '\0';
    return 0;
}
