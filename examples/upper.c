/*
 * examples/upper.c: a small uppercase service on a named shared-memory queue.
 *
 *   upper                     the demo: serve shm://upper-demo-PID in a child
 *                             process, ask it three questions, stop it
 *   upper serve URL [PROCS]   serve URL (shm://NAME or mq://NAME) with a pool of
 *                             PROCS forked workers (default 2) running a C
 *                             callback, until it takes PROCS sentinels or gets
 *                             SIGTERM/SIGINT; prints the pool's report
 *   upper ask URL TEXT...     puts one job per TEXT, prints each answer
 *   upper stop URL N          puts N sentinels: the service's workers finish
 *                             what is queued before them, then exit
 *
 * Any process of the same user can ask: the queue is a named object (mode
 * 0600) and every job's result comes back on the queue's results channel.
 * That channel is shared by everyone asking, so `ask` matches answers to its
 * questions by job id; this sketch assumes one asker at a time.
 */
#define _DEFAULT_SOURCE
#include <jobq/jobq.h>

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/* The service: runs in each forked worker, once per job. */
static int
s_upper(const jobq_job_t *job, jobq_output_t *out, void *arg)
{
    (void)arg;
    const unsigned char *p = job->payload;
    char chunk[256];
    for (uint32_t i = 0; i < job->payload_len;) {
        size_t n = 0;
        for (; n < sizeof chunk && i < job->payload_len; n++, i++)
            chunk[n] = (char)(p[i] >= 'a' && p[i] <= 'z' ? p[i] - 'a' + 'A' : p[i]);
        if (jobq_output_append(out, chunk, n) != JOBQ_OK)
            return 1; /* too big: the job fails */
    }
    return 0;
}

/* ---- serve: the pool, stopped by sentinels or by a signal ---------------- */

static jobq_pool_t *volatile s_pool;
static volatile sig_atomic_t s_signals;

/* jobq_pool_stop is async-signal-safe: a signal handler may call it. The
 * first signal lets the current jobs finish, the second stops at once. */
static void
s_on_signal(int sig)
{
    (void)sig;
    s_signals++;
    jobq_pool_stop(s_pool, s_signals > 1);
}

static int
s_serve(const char *url, unsigned procs)
{
    jobq_queue_t *q = NULL;
    jobq_queue_opts_t qo = {.flags = JOBQ_QUEUE_CREATE};
    int rc = jobq_queue_open(url, &qo, &q); /* the service may start before any client */
    jobq_queue_destroy(&q);
    jobq_pool_opts_t o;
    jobq_pool_t *pool = NULL;
    jobq_pool_opts_init(&o);
    o.url = url; /* each worker opens its own handle */
    o.workers = procs;
    o.fn = s_upper;
    if (rc == JOBQ_OK)
        rc = jobq_pool_new(&o, &pool);
    if (rc == JOBQ_OK)
        rc = jobq_pool_start(pool);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "upper: cannot serve %s: %s\n", url, jobq_strerror(rc));
        jobq_pool_destroy(&pool);
        return 1;
    }
    s_pool = pool;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = s_on_signal;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    printf("upper: serving %s with %u workers\n", url, procs);
    fflush(stdout);

    jobq_pool_report_t rep;
    char text[512];
    jobq_pool_wait(pool, -1, &rep);
    s_pool = NULL;
    jobq_pool_report_format(&rep, 0, text, sizeof text);
    printf("upper: stopped; %s\n", text);
    fflush(stdout); /* the demo's server child ends with _exit */
    jobq_pool_destroy(&pool);
    return 0;
}

/* ---- the client -------------------------------------------------------------- */

static int
s_ask(const char *url, int n, char **texts)
{
    jobq_queue_t *q = NULL;
    jobq_queue_opts_t qo = {.flags = JOBQ_QUEUE_CREATE};
    int rc = jobq_queue_open(url, &qo, &q);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "upper: cannot open %s: %s\n", url, jobq_strerror(rc));
        return 1;
    }
    jobq_id_t *ids = calloc((size_t)n, sizeof *ids);
    for (int i = 0; i < n && rc == JOBQ_OK; i++)
        rc = jobq_queue_put_bytes(q, texts[i], strlen(texts[i]), &ids[i], 5000);
    int answered = 0;
    while (rc == JOBQ_OK && answered < n) {
        jobq_result_t res;
        rc = jobq_queue_get_result(q, &res, 10000);
        for (int i = 0; rc == JOBQ_OK && i < n; i++) {
            if (memcmp(&res.id, &ids[i], sizeof res.id) != 0)
                continue;
            printf("%s -> %.*s\n", texts[i], (int)res.output_len, (const char *)res.output);
            answered++;
        }
    }
    if (rc != JOBQ_OK)
        fprintf(stderr, "upper: %d of %d answers: %s\n", answered, n, jobq_strerror(rc));
    free(ids);
    jobq_queue_destroy(&q);
    return answered == n ? 0 : 1;
}

static int
s_stop(const char *url, int n)
{
    jobq_queue_t *q = NULL;
    int rc = jobq_queue_open(url, NULL, &q);
    for (int i = 0; rc == JOBQ_OK && i < n; i++)
        rc = jobq_queue_put_sentinel(q, 5000);
    jobq_queue_destroy(&q);
    if (rc != JOBQ_OK)
        fprintf(stderr, "upper: stop %s: %s\n", url, jobq_strerror(rc));
    return rc == JOBQ_OK ? 0 : 1;
}

/* ---- the demo: all three in one run ------------------------------------------ */

static int
s_demo(void)
{
    char url[64];
    char *questions[] = {"hello", "jobq", "shared memory, no broker"};
    snprintf(url, sizeof url, "shm://upper-demo-%d", (int)getpid());
    jobq_queue_t *q = NULL;
    jobq_queue_opts_t qo = {.flags = JOBQ_QUEUE_CREATE | JOBQ_QUEUE_EXCL};
    int rc = jobq_queue_open(url, &qo, &q);
    jobq_queue_destroy(&q);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "upper: cannot create %s: %s\n", url, jobq_strerror(rc));
        return 1;
    }
    fflush(stdout);
    pid_t server = fork();
    if (server == 0)
        _exit(s_serve(url, 2));
    int failed = server < 0 || s_ask(url, 3, questions) != 0;
    failed |= s_stop(url, 2);
    int status = 0;
    if (server > 0)
        waitpid(server, &status, 0);
    jobq_queue_unlink(url);
    return failed || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}

int
main(int argc, char **argv)
{
    if (argc == 1)
        return s_demo();
    if (argc >= 3 && strcmp(argv[1], "serve") == 0)
        return s_serve(argv[2], argc > 3 ? (unsigned)atoi(argv[3]) : 2);
    if (argc >= 4 && strcmp(argv[1], "ask") == 0)
        return s_ask(argv[2], argc - 3, argv + 3);
    if (argc == 4 && strcmp(argv[1], "stop") == 0)
        return s_stop(argv[2], atoi(argv[3]));
    fprintf(stderr, "usage: upper | upper serve URL [PROCS] | upper ask URL TEXT... | "
                    "upper stop URL N\n");
    return 2;
}
