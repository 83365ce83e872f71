/* tests/unit/test_core_tab.c: the broker core's open-addressing pointer table. */
#include "broker/core_tab.h"
#include "jobq_test.h"

#include <stdlib.h>
#include <string.h>

typedef struct item {
    uint64_t key;
    int alive;
} item_t;

static uint64_t
s_hash_key(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    return k ^ (k >> 33);
}

static uint64_t
s_hash(const void *elem, const void *ctx)
{
    (void)ctx;
    return s_hash_key(((const item_t *)elem)->key);
}

static int
s_eq(const void *elem, const void *key)
{
    return ((const item_t *)elem)->key == *(const uint64_t *)key;
}

static item_t *
s_find(const core_tab_t *t, uint64_t key)
{
    return core_tab_find(t, s_hash_key(key), s_eq, &key);
}

START_TEST(test_empty_table_finds_nothing_and_allocates_nothing)
{
    core_tab_t t;
    core_tab_init(&t, s_hash, NULL);
    ck_assert_ptr_null(s_find(&t, 1));
    ck_assert_ptr_null(t.slots);
    uint32_t cur = 0;
    ck_assert_ptr_null(core_tab_next(&t, &cur));
    ck_assert(core_tab_valid(&t));
    core_tab_fini(&t);
}
END_TEST

START_TEST(test_inserted_items_are_found_and_removed_ones_are_not)
{
    enum { N = 20000 };
    item_t *items = calloc(N, sizeof *items);
    core_tab_t t;
    core_tab_init(&t, s_hash, NULL);
    for (int i = 0; i < N; i++) {
        items[i].key = (uint64_t)i * 7919u + 3;
        core_tab_insert(&t, s_hash_key(items[i].key), &items[i]);
    }
    ck_assert_uint_eq(t.count, N);
    ck_assert(core_tab_valid(&t));
    ck_assert_uint_le((uint64_t)t.count * 4, (uint64_t)t.cap * 3);
    int missing = 0;
    for (int i = 0; i < N; i++)
        missing += s_find(&t, items[i].key) != &items[i];
    ck_assert_int_eq(missing, 0);
    ck_assert_ptr_null(s_find(&t, 1));
    /* Remove every other item: the rest stay reachable, the removed are gone. */
    for (int i = 0; i < N; i += 2)
        ck_assert_int_eq(core_tab_remove(&t, s_hash_key(items[i].key), &items[i]), 0);
    ck_assert_int_eq(core_tab_remove(&t, s_hash_key(items[0].key), &items[0]), -1);
    ck_assert(core_tab_valid(&t));
    int wrong = 0;
    for (int i = 0; i < N; i++)
        wrong += s_find(&t, items[i].key) != (i % 2 ? &items[i] : NULL);
    ck_assert_int_eq(wrong, 0);
    /* Iteration visits each remaining item once. */
    uint32_t cur = 0, seen = 0;
    item_t *it;
    while ((it = core_tab_next(&t, &cur)) != NULL) {
        wrong += it->alive;
        it->alive = 1;
        seen++;
    }
    ck_assert_int_eq(wrong, 0);
    ck_assert_uint_eq(seen, N / 2);
    core_tab_fini(&t);
    free(items);
}
END_TEST

START_TEST(test_table_shrinks_when_emptied)
{
    enum { N = 4096 };
    item_t *items = calloc(N, sizeof *items);
    core_tab_t t;
    core_tab_init(&t, s_hash, NULL);
    for (int i = 0; i < N; i++) {
        items[i].key = (uint64_t)i;
        core_tab_insert(&t, s_hash_key(items[i].key), &items[i]);
    }
    uint32_t big = t.cap;
    for (int i = 0; i < N - 10; i++)
        core_tab_remove(&t, s_hash_key(items[i].key), &items[i]);
    ck_assert_uint_lt(t.cap, big / 64);
    ck_assert(core_tab_valid(&t));
    for (int i = N - 10; i < N; i++)
        core_tab_remove(&t, s_hash_key(items[i].key), &items[i]);
    ck_assert_uint_eq(t.count, 0);
    ck_assert_ptr_null(t.slots);
    core_tab_fini(&t);
    free(items);
}
END_TEST

START_TEST(test_replace_keeps_the_slot_and_changes_the_element)
{
    item_t a = {42, 0}, b = {42, 1};
    core_tab_t t;
    core_tab_init(&t, s_hash, NULL);
    core_tab_insert(&t, s_hash_key(42), &a);
    ck_assert_int_eq(core_tab_replace(&t, s_hash_key(42), &a, &b), 0);
    ck_assert_ptr_eq(s_find(&t, 42), &b);
    ck_assert_int_eq(core_tab_replace(&t, s_hash_key(42), &a, &b), -1);
    ck_assert_uint_eq(t.count, 1);
    core_tab_fini(&t);
}
END_TEST

/* Low-quality hashes that put many keys in one home slot still work (long
 * probe runs), as long as the keys' hashes differ somewhere. */
static uint64_t
s_clustered_hash_key(uint64_t k)
{
    return (s_hash_key(k) & ~UINT64_C(0xffffff)) | (k % 8); /* 8 home slots at most */
}

static uint64_t
s_clustered_hash(const void *elem, const void *ctx)
{
    (void)ctx;
    return s_clustered_hash_key(((const item_t *)elem)->key);
}

START_TEST(test_clustered_hashes_keep_the_table_consistent)
{
    enum { N = 200 };
    item_t items[N];
    core_tab_t t;
    core_tab_init(&t, s_clustered_hash, NULL);
    for (int i = 0; i < N; i++) {
        items[i] = (item_t){(uint64_t)i, 0};
        core_tab_insert(&t, s_clustered_hash_key(items[i].key), &items[i]);
        ck_assert(core_tab_valid(&t));
    }
    for (int i = 0; i < N; i++) {
        uint64_t k = items[i].key;
        ck_assert_ptr_eq(core_tab_find(&t, s_clustered_hash_key(k), s_eq, &k), &items[i]);
    }
    for (int i = 0; i < N; i += 3) {
        core_tab_remove(&t, s_clustered_hash_key(items[i].key), &items[i]);
        ck_assert(core_tab_valid(&t));
    }
    for (int i = 0; i < N; i++) {
        uint64_t k = items[i].key;
        ck_assert_ptr_eq(core_tab_find(&t, s_clustered_hash_key(k), s_eq, &k),
                         i % 3 ? &items[i] : NULL);
    }
    core_tab_fini(&t);
}
END_TEST

START_TEST(test_random_inserts_and_removes_match_a_reference)
{
    enum { N = 3000, OPS = 60000 };
    item_t *items = calloc(N, sizeof *items);
    core_tab_t t;
    core_tab_init(&t, s_hash, NULL);
    srand(7);
    for (int i = 0; i < N; i++)
        items[i].key = ((uint64_t)rand() << 31) ^ (uint64_t)rand() ^ ((uint64_t)i << 50);
    uint32_t live = 0;
    int wrong = 0;
    for (int op = 0; op < OPS; op++) {
        item_t *it = &items[rand() % N];
        uint64_t h = s_hash_key(it->key);
        if (it->alive) {
            ck_assert_int_eq(core_tab_remove(&t, h, it), 0);
            live--;
        } else {
            core_tab_insert(&t, h, it);
            live++;
        }
        it->alive = !it->alive;
        wrong += s_find(&t, it->key) != (it->alive ? it : NULL);
        if (op % 997 == 0)
            ck_assert(core_tab_valid(&t));
    }
    ck_assert_int_eq(wrong, 0);
    ck_assert_uint_eq(t.count, live);
    ck_assert(core_tab_valid(&t));
    core_tab_fini(&t);
    free(items);
}
END_TEST

/* A table past 4 MiB of slots takes the huge-page path; it must behave the same. */
START_TEST(test_large_table_stays_consistent)
{
    enum { N = 700000 };
    item_t *items = calloc(N, sizeof *items);
    core_tab_t t;
    core_tab_init(&t, s_hash, NULL);
    for (int i = 0; i < N; i++) {
        items[i].key = (uint64_t)i * 2654435761u;
        core_tab_insert(&t, s_hash_key(items[i].key), &items[i]);
    }
    ck_assert_uint_ge((uint64_t)t.cap * sizeof(uint64_t), 4u << 20);
    int missing = 0;
    for (int i = 0; i < N; i++)
        missing += s_find(&t, items[i].key) != &items[i];
    ck_assert_int_eq(missing, 0);
    ck_assert(core_tab_valid(&t));
    core_tab_fini(&t);
    free(items);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("core_tab");
    TCase *tc = tcase_create("core_tab");
    tcase_add_test(tc, test_empty_table_finds_nothing_and_allocates_nothing);
    tcase_add_test(tc, test_inserted_items_are_found_and_removed_ones_are_not);
    tcase_add_test(tc, test_table_shrinks_when_emptied);
    tcase_add_test(tc, test_replace_keeps_the_slot_and_changes_the_element);
    tcase_add_test(tc, test_clustered_hashes_keep_the_table_consistent);
    tcase_add_test(tc, test_random_inserts_and_removes_match_a_reference);
    tcase_add_test(tc, test_large_table_stays_consistent);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
