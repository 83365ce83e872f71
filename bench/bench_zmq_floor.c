/*
 * bench/bench_zmq_floor.c: the latency floor of W2's shape over ZeroMQ, with
 * no broker logic at all, to put jobq's W2 (bench_broker -w W2) in context.
 *
 * W2 is four messages per round: producer -> broker -> worker -> broker ->
 * producer. This program forks a "broker" that only forwards (a ROUTER that
 * sends whatever a producer says to the worker, and whatever the worker says
 * back to the producer) and an echoing worker (a DEALER), and measures the
 * producer's round trips (a DEALER) with the same 16-byte payload: every cost
 * left is libzmq's (its I/O threads, the kernel, the scheduler). It also
 * measures a bare DEALER -> ROUTER -> DEALER echo (two messages per round).
 *
 *   bench_zmq_floor [-t tcp|ipc] [-l ROUNDS]
 *
 * Prints p50/p99/p99.9 for both, and one JSON object per result.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

static double
s_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e6 + (double)ts.tv_nsec / 1e3;
}

static void
s_die(const char *what)
{
    fprintf(stderr, "bench_zmq_floor: %s: %s\n", what, zmq_strerror(zmq_errno()));
    exit(1);
}

/* The forwarding "broker": frames from the worker (identity "W") go to the
 * producer ("P") and the other way round. Runs until killed. */
static void
s_forwarder(const char *ep)
{
    void *ctx = zmq_ctx_new(), *r = zmq_socket(ctx, ZMQ_ROUTER);
    if (zmq_bind(r, ep) != 0)
        s_die("bind");
    for (;;) {
        char id[16], body[256];
        int il = zmq_recv(r, id, sizeof id, 0);
        int bl = zmq_recv(r, body, sizeof body, 0);
        if (il < 1 || bl < 0)
            continue;
        const char *to = id[0] == 'W' ? "P" : "W";
        zmq_send(r, to, 1, ZMQ_SNDMORE);
        zmq_send(r, body, (size_t)bl, 0);
    }
}

/* A ROUTER that echoes each message to its sender (the two-message floor). */
static void
s_echo_router(const char *ep)
{
    void *ctx = zmq_ctx_new(), *r = zmq_socket(ctx, ZMQ_ROUTER);
    if (zmq_bind(r, ep) != 0)
        s_die("bind");
    for (;;) {
        char id[16], body[256];
        int il = zmq_recv(r, id, sizeof id, 0);
        int bl = zmq_recv(r, body, sizeof body, 0);
        if (il < 1 || bl < 0)
            continue;
        zmq_send(r, id, (size_t)il, ZMQ_SNDMORE);
        zmq_send(r, body, (size_t)bl, 0);
    }
}

/* The worker: a DEALER named "W" that sends back what it receives. */
static void
s_worker(const char *ep)
{
    void *ctx = zmq_ctx_new(), *d = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(d, ZMQ_ROUTING_ID, "W", 1);
    if (zmq_connect(d, ep) != 0)
        s_die("connect");
    zmq_send(d, "hello", 5, 0); /* lets the forwarder learn the route */
    for (;;) {
        char body[256];
        int n = zmq_recv(d, body, sizeof body, 0);
        if (n >= 0)
            zmq_send(d, body, (size_t)n, 0);
    }
}

static int
s_cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Round trips of a DEALER named "P" against ep; prints the percentiles. */
static void
s_measure(const char *what, const char *ep, const char *transport, long rounds)
{
    void *ctx = zmq_ctx_new(), *d = zmq_socket(ctx, ZMQ_DEALER);
    zmq_setsockopt(d, ZMQ_ROUTING_ID, "P", 1);
    if (zmq_connect(d, ep) != 0)
        s_die("connect");
    double *lat = calloc((size_t)rounds, sizeof *lat);
    char buf[256];
    for (long i = -1000; i < rounds; i++) {
        double t0 = s_now_us();
        zmq_send(d, "0123456789abcdef", 16, 0);
        if (zmq_recv(d, buf, sizeof buf, 0) < 0)
            s_die("recv");
        if (i >= 0)
            lat[i] = s_now_us() - t0;
    }
    qsort(lat, (size_t)rounds, sizeof *lat, s_cmp);
    double p50 = lat[rounds / 2], p99 = lat[rounds * 99 / 100], p999 = lat[rounds * 999 / 1000];
    printf("%-26s %-4s %7ld  p50 %.0f us  p99 %.0f us  p99.9 %.0f us\n", what, transport, rounds,
           p50, p99, p999);
    printf("{\"workload\":\"W2-floor\",\"system\":\"%s-%s\",\"n\":%ld,\"p50_us\":%.1f,"
           "\"p99_us\":%.1f,\"p999_us\":%.1f}\n",
           what, transport, rounds, p50, p99, p999);
    free(lat);
    zmq_close(d);
    zmq_ctx_term(ctx);
}

int
main(int argc, char **argv)
{
    const char *transport = "tcp";
    long rounds = 20000;
    int c;
    while ((c = getopt(argc, argv, "t:l:")) != -1) {
        if (c == 't')
            transport = optarg;
        else if (c == 'l')
            rounds = atol(optarg);
        else
            return fprintf(stderr, "usage: bench_zmq_floor [-t tcp|ipc] [-l ROUNDS]\n"), 2;
    }
    if (rounds < 100 || (strcmp(transport, "tcp") && strcmp(transport, "ipc")))
        return fprintf(stderr, "bench_zmq_floor: bad option value\n"), 2;
    char ep1[128], ep2[128];
    int ipc = strcmp(transport, "ipc") == 0;
    snprintf(ep1, sizeof ep1, ipc ? "ipc:///tmp/jobq-floor-%d-a" : "tcp://127.0.0.1:%d",
             ipc ? (int)getpid() : 20000 + (int)(getpid() % 20000));
    snprintf(ep2, sizeof ep2, ipc ? "ipc:///tmp/jobq-floor-%d-b" : "tcp://127.0.0.1:%d",
             ipc ? (int)getpid() : 40001 + (int)(getpid() % 20000));
    pid_t kids[3];
    if ((kids[0] = fork()) == 0)
        s_forwarder(ep1);
    if ((kids[1] = fork()) == 0)
        s_worker(ep1);
    if ((kids[2] = fork()) == 0)
        s_echo_router(ep2);
    usleep(300 * 1000); /* the binds and the worker's hello */
    s_measure("zmq-2-messages-echo", ep2, transport, rounds);
    s_measure("zmq-4-messages-forwarded", ep1, transport, rounds);
    for (int i = 0; i < 3; i++) {
        kill(kids[i], SIGKILL);
        waitpid(kids[i], NULL, 0);
    }
    return 0;
}
