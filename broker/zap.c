/*
 * broker/zap.c: the ZAP handler actor (see zap.h).
 *
 * Threads: zap_start creates both ends of an inproc PAIR pipe and the REP
 * socket in the caller's thread, then hands the REP socket and one pipe end
 * to the new thread (pthread_create is the memory barrier ZeroMQ asks for
 * when a socket changes threads). After that only the thread touches them;
 * the caller keeps the other pipe end and sends "$TERM" on it to stop.
 * The allow-list is read-only after start; the counters are atomics.
 */
#include "broker/zap.h"
#include "common/alloc.h"
#include "common/clock.h"
#include "common/curve.h"
#include "common/fault.h"
#include "common/log.h"
#include "jobq/errors.h"

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <zmq.h>

#define S_PRINCIPAL_MAX 64
#define S_FRAMES_MAX 8 /* a CURVE ZAP request has 7 frames */

typedef struct s_entry {
    char name[S_PRINCIPAL_MAX + 1];
    uint8_t key[32];
} s_entry_t;

struct zap {
    void *rep, *pipe_mine, *pipe_theirs;
    pthread_t thread;
    int started;
    s_entry_t *keys;
    uint32_t nkeys;
    atomic_uint_fast64_t allowed, denied;
    int64_t log_sec;     /* the second the denial log budget is for */
    uint32_t logged;     /* denials logged in log_sec */
    uint64_t suppressed; /* denials not logged since the last one logged */
};

#define S_LOG_PER_SEC 10 /* denials logged per second; a flood of handshakes is counted */

static int __attribute__((format(printf, 4, 5)))
s_why(int code, char *why, size_t why_len, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, why_len, fmt, ap);
    va_end(ap);
    return code;
}

/* 1 if name[0..n) is a valid principal. */
static int
s_principal_ok(const char *name, size_t n)
{
    if (n == 0 || n > S_PRINCIPAL_MAX || name[0] == '.')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return 1;
}

/* Adds DIR/file to the list when it is a PRINCIPAL.pub. */
static int
s_load_one(zap_t *z, const char *dir, const char *file, uint32_t *cap, char *why, size_t why_len)
{
    size_t n = strlen(file);
    if (n <= 4 || strcmp(file + n - 4, ".pub") != 0)
        return JOBQ_OK;
    if (!s_principal_ok(file, n - 4)) {
        LOG_WARN("zap: ignoring %s/%s: a principal is 1-%d characters of A-Z a-z 0-9 . _ -", dir,
                 file, S_PRINCIPAL_MAX);
        return JOBQ_OK;
    }
    char path[4096], z85[JOBQ_Z85_KEY_LEN + 1];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    int rc = jobq_curve_load_public(path, z85, why, why_len);
    if (rc != JOBQ_OK)
        return rc;
    if (z->nkeys == *cap) {
        *cap = *cap ? *cap * 2 : 16;
        z->keys = jobq_realloc(z->keys, *cap * sizeof *z->keys);
    }
    s_entry_t *e = &z->keys[z->nkeys++];
    memcpy(e->name, file, n - 4);
    e->name[n - 4] = '\0';
    zmq_z85_decode(e->key, z85);
    return JOBQ_OK;
}

static int
s_load(zap_t *z, const char *dir, char *why, size_t why_len)
{
    int rc = jobq_curve_check_dir(dir, why, why_len);
    if (rc != JOBQ_OK)
        return rc;
    DIR *d = opendir(dir);
    if (!d)
        return s_why(JOBQ_ESYS, why, why_len, "cannot read %s: %s", dir, strerror(errno));
    uint32_t cap = 0;
    struct dirent *de;
    while (rc == JOBQ_OK && (de = readdir(d)) != NULL)
        rc = s_load_one(z, dir, de->d_name, &cap, why, why_len);
    closedir(d);
    if (rc == JOBQ_OK && z->nkeys == 0)
        LOG_WARN("zap: no PRINCIPAL.pub files in %s: no client will be admitted", dir);
    return rc;
}

static const s_entry_t *
s_lookup(const zap_t *z, const void *key, size_t len)
{
    if (len != 32)
        return NULL;
    for (uint32_t i = 0; i < z->nkeys; i++)
        if (memcmp(z->keys[i].key, key, 32) == 0)
            return &z->keys[i];
    return NULL;
}

/* Sends the reply frames: "1.0", request id, status, text, user id, "". */
static void
s_reply(void *rep, zmq_msg_t *reqid, const char *status, const char *text, const char *user)
{
    zmq_send(rep, "1.0", 3, ZMQ_SNDMORE);
    zmq_send(rep, zmq_msg_data(reqid), zmq_msg_size(reqid), ZMQ_SNDMORE);
    zmq_send(rep, status, strlen(status), ZMQ_SNDMORE);
    zmq_send(rep, text, strlen(text), ZMQ_SNDMORE);
    zmq_send(rep, user, strlen(user), ZMQ_SNDMORE);
    zmq_send(rep, "", 0, 0);
}

/* 1 if frame f holds exactly the text s. */
static int
s_is(zmq_msg_t *f, const char *s)
{
    return zmq_msg_size(f) == strlen(s) && memcmp(zmq_msg_data(f), s, strlen(s)) == 0;
}

/* Logs a denial, at most S_LOG_PER_SEC a second (the rest are counted and
 * reported with the next one logged). */
static void
s_log_denial(zap_t *z, const char *addr, const char *text, const char *pub)
{
    int64_t sec = jobq_now_ms() / 1000;
    if (sec != z->log_sec) {
        z->log_sec = sec;
        z->logged = 0;
    }
    if (z->logged >= S_LOG_PER_SEC) {
        z->suppressed++;
        return;
    }
    z->logged++;
    LOG_NOTICE("zap: denied %s (status 400, %s): public key %s%s", addr, text, pub,
               z->suppressed ? " (and earlier denials not logged: see stats zap_denied)" : "");
    z->suppressed = 0;
}

/* Reads one request (every frame) and answers it. */
static void
s_handle(zap_t *z)
{
    zmq_msg_t f[S_FRAMES_MAX];
    int n = 0, more = 1;
    while (more) {
        zmq_msg_t tmp;
        zmq_msg_init(&tmp);
        if (zmq_msg_recv(&tmp, z->rep, 0) < 0) {
            zmq_msg_close(&tmp);
            break;
        }
        more = zmq_msg_more(&tmp);
        if (n < S_FRAMES_MAX) {
            zmq_msg_init(&f[n]);
            zmq_msg_move(&f[n++], &tmp);
        }
        zmq_msg_close(&tmp);
    }
    if (n >= 2) {
        /* [0] version [1] request id [2] domain [3] address [4] routing id
         * [5] mechanism [6] credentials (CURVE: the 32-byte public key) */
        char addr[64] = "?", pub[JOBQ_Z85_KEY_LEN + 1] = "?";
        if (n > 3)
            snprintf(addr, sizeof addr, "%.*s", (int)zmq_msg_size(&f[3]),
                     (const char *)zmq_msg_data(&f[3]));
        const s_entry_t *e = NULL;
        const char *text = "malformed request";
        if (n == 7 && s_is(&f[0], "1.0") && s_is(&f[5], "CURVE")) {
            if (zmq_msg_size(&f[6]) == 32)
                zmq_z85_encode(pub, zmq_msg_data(&f[6]), 32);
            e = s_is(&f[2], JOBQ_CURVE_ZAP_DOMAIN) ? s_lookup(z, zmq_msg_data(&f[6]), 32) : NULL;
            text = s_is(&f[2], JOBQ_CURVE_ZAP_DOMAIN) ? "key not allowed" : "wrong domain";
        } else if (n > 5) {
            text = "only CURVE is accepted";
        }
        if (e) {
            atomic_fetch_add(&z->allowed, 1);
            LOG_INFO("zap: admitted %s as principal %s", addr, e->name);
            s_reply(z->rep, &f[1], "200", "OK", e->name);
        } else {
            atomic_fetch_add(&z->denied, 1);
            s_log_denial(z, addr, text, pub);
            s_reply(z->rep, &f[1], "400", text, "");
        }
    }
    for (int i = 0; i < n; i++)
        zmq_msg_close(&f[i]);
}

static void *
s_main(void *arg)
{
    zap_t *z = arg;
    int stalled = 0;
    for (;;) {
        zmq_pollitem_t it[2] = {{z->pipe_theirs, 0, ZMQ_POLLIN, 0}, {z->rep, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(it, stalled ? 1 : 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (it[0].revents & ZMQ_POLLIN)
            break; /* $TERM */
        if (!(it[1].revents & ZMQ_POLLIN))
            continue;
        if (JOBQ_FAULT_CHECK("zap.stall")) {
            LOG_WARN("zap: fault zap.stall: answering no more requests");
            stalled = 1;
            continue;
        }
        s_handle(z);
    }
    int zero = 0;
    zmq_setsockopt(z->rep, ZMQ_LINGER, &zero, sizeof zero);
    zmq_close(z->rep);
    zmq_close(z->pipe_theirs);
    return NULL;
}

static void
s_free(zap_t *z)
{
    jobq_free(z->keys);
    jobq_free(z);
}

int
zap_start(void *ctx, const char *dir, zap_t **out, char *why, size_t why_len)
{
    *out = NULL;
    zap_t *z = jobq_calloc(1, sizeof *z);
    int rc = s_load(z, dir, why, why_len);
    if (rc != JOBQ_OK) {
        s_free(z);
        return rc;
    }
    if (JOBQ_FAULT_CHECK("zap.off")) {
        LOG_WARN("zap: fault zap.off: no ZAP handler (every CURVE handshake must fail)");
        *out = z;
        return JOBQ_OK;
    }
    char pipe_ep[64];
    snprintf(pipe_ep, sizeof pipe_ep, "inproc://jobq-zap-pipe-%p", (void *)z);
    z->rep = zmq_socket(ctx, ZMQ_REP);
    z->pipe_mine = zmq_socket(ctx, ZMQ_PAIR);
    z->pipe_theirs = zmq_socket(ctx, ZMQ_PAIR);
    if (!z->rep || !z->pipe_mine || !z->pipe_theirs || zmq_bind(z->pipe_mine, pipe_ep) != 0 ||
        zmq_connect(z->pipe_theirs, pipe_ep) != 0)
        rc = s_why(JOBQ_ESYS, why, why_len, "zap: %s", zmq_strerror(errno));
    else if (zmq_bind(z->rep, JOBQ_CURVE_ZAP_ENDPOINT) != 0)
        rc = s_why(errno == EADDRINUSE ? JOBQ_EBUSY : JOBQ_ESYS, why, why_len,
                   "zap: cannot bind %s: %s", JOBQ_CURVE_ZAP_ENDPOINT, zmq_strerror(errno));
    else if (pthread_create(&z->thread, NULL, s_main, z) != 0)
        rc = s_why(JOBQ_ESYS, why, why_len, "zap: cannot start its thread");
    if (rc != JOBQ_OK) {
        void *socks[3] = {z->rep, z->pipe_mine, z->pipe_theirs};
        for (int i = 0; i < 3; i++)
            if (socks[i])
                zmq_close(socks[i]);
        s_free(z);
        return rc;
    }
    z->started = 1;
    LOG_INFO("zap: %u principals allowed from %s", z->nkeys, dir);
    *out = z;
    return JOBQ_OK;
}

uint32_t
zap_principals(const zap_t *z)
{
    return z->nkeys;
}

void
zap_counts(const zap_t *z, uint64_t *allowed, uint64_t *denied)
{
    *allowed = atomic_load(&((zap_t *)z)->allowed);
    *denied = atomic_load(&((zap_t *)z)->denied);
}

void
zap_stop(zap_t **self_p)
{
    if (!self_p || !*self_p)
        return;
    zap_t *z = *self_p;
    if (z->started) {
        zmq_send(z->pipe_mine, "$TERM", 5, 0);
        pthread_join(z->thread, NULL);
        zmq_close(z->pipe_mine);
    }
    s_free(z);
    *self_p = NULL;
}
