/* tests/unit/test_core_heap.c: the broker core's binary min-heap with positions. */
#include "broker/core_heap.h"
#include "jobq_test.h"

#include <stdlib.h>

typedef struct node {
    int64_t key;
    uint32_t pos;
    int in;
} node_t;

static int
s_less(const void *a, const void *b)
{
    return ((const node_t *)a)->key < ((const node_t *)b)->key;
}

static void
s_setpos(void *e, uint32_t pos)
{
    ((node_t *)e)->pos = pos;
}

static void
s_check_positions(const core_heap_t *h)
{
    ck_assert(core_heap_valid(h));
    uint32_t wrong = 0;
    for (uint32_t i = 0; i < h->len; i++)
        wrong += ((node_t *)h->items[i])->pos != i;
    ck_assert_uint_eq(wrong, 0);
}

START_TEST(test_pop_returns_elements_in_key_order)
{
    enum { N = 5000 };
    node_t *n = calloc(N, sizeof *n);
    core_heap_t h;
    core_heap_init(&h, s_less, s_setpos);
    ck_assert_ptr_null(core_heap_top(&h));
    srand(1);
    for (int i = 0; i < N; i++) {
        n[i].key = rand() % 1000;
        core_heap_push(&h, &n[i]);
    }
    s_check_positions(&h);
    int64_t last = -1;
    int unordered = 0;
    for (int i = 0; i < N; i++) {
        node_t *e = core_heap_pop(&h);
        unordered += e->key < last;
        last = e->key;
    }
    ck_assert_int_eq(unordered, 0);
    ck_assert_ptr_null(core_heap_pop(&h));
    ck_assert_ptr_null(h.items); /* an emptied heap gives its memory back */
    core_heap_fini(&h);
    free(n);
}
END_TEST

START_TEST(test_remove_and_update_by_position_keep_the_order)
{
    enum { N = 2000, OPS = 20000 };
    node_t *n = calloc(N, sizeof *n);
    core_heap_t h;
    core_heap_init(&h, s_less, s_setpos);
    srand(2);
    for (int op = 0; op < OPS; op++) {
        node_t *e = &n[rand() % N];
        int what = rand() % 3;
        if (!e->in) {
            e->key = rand() % 500;
            core_heap_push(&h, e);
            e->in = 1;
        } else if (what == 0) {
            core_heap_remove(&h, e->pos);
            e->in = 0;
        } else {
            e->key = rand() % 500;
            core_heap_update(&h, e->pos);
        }
        if (op % 101 == 0)
            s_check_positions(&h);
    }
    s_check_positions(&h);
    /* The top is the minimum of what is in. */
    int64_t min = INT64_MAX;
    for (int i = 0; i < N; i++)
        if (n[i].in && n[i].key < min)
            min = n[i].key;
    if (h.len)
        ck_assert_int_eq(((node_t *)core_heap_top(&h))->key, min);
    core_heap_fini(&h);
    free(n);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("core_heap");
    TCase *tc = tcase_create("core_heap");
    tcase_add_test(tc, test_pop_returns_elements_in_key_order);
    tcase_add_test(tc, test_remove_and_update_by_position_keep_the_order);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
