/* tests/unit/test_core_fifo.c: the broker core's FIFO ring with removal from the middle. */
#include "broker/core_fifo.h"
#include "jobq_test.h"

#include <stdlib.h>

typedef struct node {
    int id;
    uint32_t pos;
    int in;
} node_t;

static void
s_setpos(void *e, uint32_t pos)
{
    ((node_t *)e)->pos = pos;
}

/* Every live element is at its recorded position, in push order. (Plain
 * comparisons in the loop: check's ck_assert costs a system call each.) */
static void
s_check(const core_fifo_t *f, int expect_live)
{
    uint32_t cur = f->head, n = 0;
    node_t *e;
    int last = -1, misplaced = 0, unordered = 0;
    while ((e = core_fifo_next(f, &cur)) != NULL) {
        misplaced += core_fifo_at(f, e->pos) != e;
        unordered += e->id <= last;
        last = e->id;
        n++;
    }
    ck_assert_int_eq(misplaced, 0);
    ck_assert_int_eq(unordered, 0);
    ck_assert_uint_eq(n, f->live);
    ck_assert_int_eq((int)f->live, expect_live);
    ck_assert_uint_le(f->tail - f->head, f->cap);
}

START_TEST(test_pop_returns_elements_in_push_order)
{
    enum { N = 1000 };
    node_t n[N];
    core_fifo_t f;
    core_fifo_init(&f, s_setpos);
    ck_assert_ptr_null(core_fifo_front(&f));
    for (int i = 0; i < N; i++) {
        n[i].id = i;
        core_fifo_push(&f, &n[i]);
    }
    s_check(&f, N);
    for (int i = 0; i < N; i++)
        ck_assert_int_eq(((node_t *)core_fifo_pop(&f))->id, i);
    ck_assert_ptr_null(core_fifo_pop(&f));
    ck_assert_uint_le(f.cap, 16);
    core_fifo_fini(&f);
}
END_TEST

START_TEST(test_removed_elements_are_skipped_and_memory_follows_the_live_count)
{
    enum { N = 100000 };
    node_t *n = calloc(N, sizeof *n);
    core_fifo_t f;
    core_fifo_init(&f, s_setpos);
    for (int i = 0; i < N; i++) {
        n[i].id = i;
        core_fifo_push(&f, &n[i]);
    }
    /* Remove all but every 100th from the middle: the ring compacts and shrinks. */
    for (int i = 1; i < N; i++)
        if (i % 100)
            core_fifo_remove(&f, n[i].pos);
    s_check(&f, N / 100);
    ck_assert_uint_le(f.cap, 4096);
    for (int i = 0; i < N; i += 100)
        ck_assert_int_eq(((node_t *)core_fifo_pop(&f))->id, i);
    ck_assert_uint_eq(f.live, 0);
    core_fifo_fini(&f);
    free(n);
}
END_TEST

START_TEST(test_random_pushes_pops_and_removes_keep_positions_right)
{
    enum { N = 3000, OPS = 50000 };
    node_t *n = calloc(N, sizeof *n);
    core_fifo_t f;
    core_fifo_init(&f, s_setpos);
    srand(3);
    int next_id = 0, live = 0;
    for (int op = 0; op < OPS; op++) {
        node_t *e = &n[rand() % N];
        int what = rand() % 4;
        if (!e->in) {
            e->id = next_id++; /* ids grow with push order */
            core_fifo_push(&f, e);
            e->in = 1;
            live++;
        } else if (what == 0) {
            node_t *front = core_fifo_pop(&f);
            front->in = 0;
            live--;
        } else {
            core_fifo_remove(&f, e->pos);
            e->in = 0;
            live--;
        }
        if (op % 97 == 0)
            s_check(&f, live);
    }
    s_check(&f, live);
    core_fifo_fini(&f);
    free(n);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("core_fifo");
    TCase *tc = tcase_create("core_fifo");
    tcase_add_test(tc, test_pop_returns_elements_in_push_order);
    tcase_add_test(tc, test_removed_elements_are_skipped_and_memory_follows_the_live_count);
    tcase_add_test(tc, test_random_pushes_pops_and_removes_keep_positions_right);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
