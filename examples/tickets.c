/*
 * examples/tickets.c: N buyers race for the last 2 tickets, twice.
 *
 * Round 1, the naive office: the ticket count is a plain int in shared memory
 * and each buyer (a forked process) does read - check - write:
 *
 *     left = office->tickets;        (read: every buyer sees 2)
 *     ... network delay ...          (meanwhile the others read 2 as well)
 *     if (left > 0)                  (check: true for everyone)
 *         office->tickets = left - 1 (write: 1, 1, 1, ... "sold!")
 *
 * Nothing makes "read, check, write" one step, so buyers interleave between
 * the read and the write and each sells "the last ticket but one": the
 * office oversells (usually every buyer gets a ticket). This is the ticket
 * race of the multiprocessing lesson that seeded jobq; Python's answer there
 * is a Lock around the whole read-check-write.
 *
 * Round 2, the queue: the 2 tickets are items on a jobq queue, and buying is
 * jobq_queue_get(tickets, 0), which checks that a ticket is there and takes it
 * as one step under the queue's lock. A pool of N forked workers serves the N
 * buy requests with a C callback; exactly 2 buyers get a seat, never more,
 * however the delays fall. The lock is a robust process-shared mutex: a buyer
 * killed while holding it does not block the others (the next one repairs the
 * queue), and a buyer killed after taking a ticket but before task_done gets
 * its ticket handed back to the queue instead of losing it.
 *
 *   ./tickets [BUYERS]      (default 6, 3 to 64)
 * Exits 0 when the queue round sold exactly 2 tickets.
 */
#define _DEFAULT_SOURCE
#include <jobq/jobq.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define TICKETS 2

/* A "network delay" of 5-30 ms that differs between buyers. */
static void
s_network_delay(unsigned salt)
{
    unsigned h = (unsigned)getpid() * 2654435761u ^ salt * 40503u;
    struct timespec ts = {0, (long)(5 + h % 26) * 1000000L};
    nanosleep(&ts, NULL);
}

/* ---- round 1: read - check - write on a shared int ----------------------- */

typedef struct office {
    volatile int tickets; /* what buyers read and write, without a lock */
    volatile int sold;    /* for the tally only (written once per buyer) */
} office_t;

static int
s_naive_round(int buyers)
{
    office_t *office =
        mmap(NULL, sizeof *office, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (office == MAP_FAILED)
        return -1;
    office->tickets = TICKETS;
    fflush(stdout);
    for (int i = 1; i <= buyers; i++) {
        if (fork() != 0)
            continue;
        int left = office->tickets; /* read */
        s_network_delay((unsigned)i);
        if (left > 0) {                 /* check */
            office->tickets = left - 1; /* write: the others did the same */
            __atomic_add_fetch(&office->sold, 1, __ATOMIC_SEQ_CST);
            printf("  buyer %d bought a ticket (saw %d left)\n", i, left);
        } else {
            printf("  buyer %d: sold out\n", i);
        }
        fflush(stdout);
        _exit(0);
    }
    while (wait(NULL) > 0)
        ;
    int sold = office->sold;
    munmap(office, sizeof *office);
    return sold;
}

/* ---- round 2: the tickets are queue items ---------------------------------- */

/* The pool's handler: one buy request per job, the payload names the buyer.
 * arg is the tickets queue (anonymous, inherited by the forked workers). */
static int
s_buy(const jobq_job_t *job, jobq_output_t *out, void *arg)
{
    jobq_queue_t *tickets = arg;
    char line[160];
    int n;
    s_network_delay(job->payload_len ? ((const unsigned char *)job->payload)[0] : 0u);
    jobq_item_t seat;
    if (jobq_queue_get(tickets, &seat, 0) == JOBQ_OK) { /* check and take: one step */
        n = snprintf(line, sizeof line, "%.*s bought %.*s", (int)job->payload_len,
                     (const char *)job->payload, (int)seat.payload_len, (const char *)seat.payload);
        jobq_queue_task_done(tickets, &seat); /* sold: the ticket is gone for good */
        jobq_item_fini(&seat);
    } else {
        n = snprintf(line, sizeof line, "%.*s: sold out", (int)job->payload_len,
                     (const char *)job->payload);
    }
    return jobq_output_append(out, line, (size_t)n) == JOBQ_OK ? 0 : 1;
}

static int
s_queue_round(int buyers)
{
    jobq_queue_t *tickets = NULL, *requests = NULL;
    jobq_pool_t *pool = NULL;
    if (jobq_queue_new_anon(NULL, &tickets) != JOBQ_OK ||
        jobq_queue_new_anon(NULL, &requests) != JOBQ_OK)
        return -1;
    jobq_queue_put_bytes(tickets, "seat 12A", 8, NULL, -1);
    jobq_queue_put_bytes(tickets, "seat 12B", 8, NULL, -1);

    jobq_pool_opts_t o;
    jobq_pool_opts_init(&o);
    o.queue = requests;
    o.workers = (unsigned)buyers; /* one worker per buyer: they all race */
    o.fn = s_buy;
    o.fn_arg = tickets;
    if (jobq_pool_new(&o, &pool) != JOBQ_OK || jobq_pool_start(pool) != JOBQ_OK)
        return -1;
    for (int i = 1; i <= buyers; i++) {
        char name[32];
        int n = snprintf(name, sizeof name, "buyer %d", i);
        jobq_queue_put_bytes(requests, name, (size_t)n, NULL, -1);
    }
    int sold = 0;
    for (int i = 0; i < buyers; i++) {
        jobq_result_t res;
        if (jobq_queue_get_result(requests, &res, 10000) != JOBQ_OK)
            break;
        char line[160];
        snprintf(line, sizeof line, "%.*s", (int)res.output_len, (const char *)res.output);
        printf("  %s\n", line);
        sold += strstr(line, " bought ") != NULL;
    }
    for (int i = 0; i < buyers; i++) /* one sentinel per worker */
        jobq_queue_put_sentinel(requests, -1);
    jobq_pool_report_t rep;
    jobq_pool_wait(pool, -1, &rep);
    jobq_pool_destroy(&pool);
    jobq_queue_destroy(&requests);
    jobq_queue_destroy(&tickets);
    return sold;
}

int
main(int argc, char **argv)
{
    int buyers = argc > 1 ? atoi(argv[1]) : 6;
    if (buyers < 3 || buyers > 64) {
        fprintf(stderr, "usage: tickets [BUYERS 3-64]\n");
        return 2;
    }
    printf("round 1: %d buyers, %d tickets, read-check-write on a shared int\n", buyers, TICKETS);
    int naive = s_naive_round(buyers);
    printf("  => %d tickets sold%s\n\n", naive,
           naive > TICKETS ? ": OVERSOLD (the race between read and write)" : "");

    printf("round 2: %d buyers, %d tickets as items on a jobq queue\n", buyers, TICKETS);
    int sold = s_queue_round(buyers);
    if (sold < 0) {
        fprintf(stderr, "could not set up the queue round\n");
        return 1;
    }
    printf("  => %d tickets sold%s\n", sold, sold == TICKETS ? ": exactly the 2 there were" : "");
    return sold == TICKETS ? 0 : 1;
}
