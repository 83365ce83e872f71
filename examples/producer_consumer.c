/*
 * examples/producer_consumer.c: the canonical JoinableQueue pattern, as in
 * Python's multiprocessing docs, with forked consumers:
 *
 *   q = JoinableQueue()
 *   consumers = [Process(target=consume, args=(q,)) for _ in range(N)]
 *   for item in items: q.put(item)
 *   q.join()                  # every item has been task_done()
 *   for _ in consumers: q.put(None)   # one sentinel (poison pill) each
 *   for c in consumers: c.join()
 *
 * Beyond Python, each consumer sends a result back on the queue's results
 * channel, and a consumer that dies holding an item does not make join()
 * hang: its item is handed out again (see jobq/queue.h).
 *
 *   ./producer_consumer [CONSUMERS [ITEMS]]     (default 4 consumers, 20 items)
 *
 * Each item is a number n; a consumer answers with the length of n's Collatz
 * sequence (how many steps until 1) and its own pid.
 */
#define _DEFAULT_SOURCE
#include <jobq/jobq.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static int
s_collatz_steps(long n)
{
    int steps = 0;
    while (n > 1) {
        n = n % 2 ? 3 * n + 1 : n / 2;
        steps++;
    }
    return steps;
}

/* A consumer: get, work, put the result, task_done; stop at the sentinel. */
static int
s_consume(jobq_queue_t *q)
{
    for (;;) {
        jobq_item_t item;
        int rc = jobq_queue_get(q, &item, -1);
        if (rc != JOBQ_OK) {
            fprintf(stderr, "consumer %d: get: %s\n", (int)getpid(), jobq_strerror(rc));
            return 1;
        }
        if (item.sentinel) { /* the poison pill: acknowledge it and stop */
            jobq_queue_task_done(q, &item);
            jobq_item_fini(&item);
            return 0;
        }
        char text[32], answer[96];
        size_t len = item.payload_len < sizeof text - 1 ? item.payload_len : sizeof text - 1;
        memcpy(text, item.payload, len);
        text[len] = '\0';
        int n = snprintf(answer, sizeof answer, "%s takes %d steps (consumer %d)", text,
                         s_collatz_steps(atol(text)), (int)getpid());

        jobq_result_t res;
        jobq_result_init(&res);
        res.id = item.id;
        res.attempt = item.attempt;
        res.output = answer;
        res.output_len = (uint32_t)n;
        jobq_queue_put_result(q, &res, -1); /* before task_done: join() implies results */
        jobq_queue_task_done(q, &item);
        jobq_item_fini(&item);
    }
}

int
main(int argc, char **argv)
{
    int consumers = argc > 1 ? atoi(argv[1]) : 4;
    int items = argc > 2 ? atoi(argv[2]) : 20;
    if (consumers < 1 || consumers > 64 || items < 0 || items > 1000) {
        fprintf(stderr, "usage: producer_consumer [CONSUMERS 1-64 [ITEMS 0-1000]]\n");
        return 2;
    }
    /* An anonymous queue: children forked from now on share it. Its results
     * channel holds 1024 results, more than ITEMS, so the producer may read
     * them after join(); a producer of unbounded batches reads as it puts
     * (see `jobq run`). */
    jobq_queue_t *q = NULL;
    int rc = jobq_queue_new_anon(NULL, &q);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "queue: %s\n", jobq_strerror(rc));
        return 1;
    }
    pid_t pids[64];
    fflush(stdout); /* or the children would inherit, and print again, buffered output */
    for (int i = 0; i < consumers; i++) {
        pids[i] = fork();
        if (pids[i] < 0) {
            perror("fork");
            return 1;
        }
        if (pids[i] == 0)
            _exit(s_consume(q));
    }

    for (int i = 1; i <= items; i++) {
        char text[32];
        int n = snprintf(text, sizeof text, "%d", 1000 + i);
        jobq_queue_put_bytes(q, text, (size_t)n, NULL, -1);
    }
    jobq_queue_join(q, -1); /* every item taken and task_done */
    printf("all %d items done; results:\n", items);
    for (int i = 0; i < items; i++) {
        jobq_result_t res;
        if (jobq_queue_get_result(q, &res, 1000) != JOBQ_OK)
            break;
        printf("  %.*s\n", (int)res.output_len, (const char *)res.output);
    }

    for (int i = 0; i < consumers; i++)
        jobq_queue_put_sentinel(q, -1);
    int failed = 0;
    for (int i = 0; i < consumers; i++) {
        int status;
        waitpid(pids[i], &status, 0);
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    }
    printf("%d consumers stopped by sentinels, %d failed\n", consumers, failed);
    jobq_queue_destroy(&q);
    return failed ? 1 : 0;
}
