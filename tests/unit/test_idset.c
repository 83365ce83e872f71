/* tests/unit/test_idset.c: producer/idset against a plain array under random
 * adds and deletes with colliding ids (deletes shift runs back), and
 * idset_some going round every member in repeated calls. */
#include "producer/idset.h"
#include "jobq_test.h"

#include <stdlib.h>
#include <string.h>

#define NIDS 3000

static jobq_id_t
s_id(uint32_t k)
{
    jobq_id_t id;
    memset(&id, 0, sizeof id);
    id.b[0] = (uint8_t)(k & 7); /* few distinct first bytes: many collisions */
    memcpy(id.b + 8, &k, sizeof k);
    id.b[15] = 1; /* never the zero id */
    return id;
}

START_TEST(test_random_adds_and_deletes_agree_with_an_array)
{
    idset_t s;
    memset(&s, 0, sizeof s);
    static unsigned char in[NIDS];
    size_t count = 0;
    srand(7);
    for (int step = 0; step < 200000; step++) {
        uint32_t k = (uint32_t)rand() % NIDS;
        jobq_id_t id = s_id(k);
        if (rand() % 3) {
            idset_add(&s, &id);
            count += !in[k];
            in[k] = 1;
        } else {
            ck_assert_int_eq(idset_del(&s, &id), in[k]);
            count -= in[k];
            in[k] = 0;
        }
        ck_assert_uint_eq(s.count, count);
    }
    for (uint32_t k = 0; k < NIDS; k++) { /* every member is found, nothing else */
        jobq_id_t id = s_id(k);
        ck_assert_int_eq(idset_del(&s, &id), in[k]);
    }
    ck_assert_uint_eq(s.count, 0);
    jobq_id_t zero;
    memset(&zero, 0, sizeof zero);
    idset_add(&s, &zero);
    ck_assert_uint_eq(s.count, 0);
    idset_fini(&s);
}
END_TEST

START_TEST(test_some_goes_round_every_member_in_chunks)
{
    idset_t s;
    memset(&s, 0, sizeof s);
    for (uint32_t k = 0; k < 1000; k++) {
        jobq_id_t id = s_id(k);
        idset_add(&s, &id);
    }
    static unsigned char got[1000];
    size_t cursor = 0, total = 0;
    jobq_id_t out[300];
    while (total < 1000) {
        size_t n = idset_some(&s, &cursor, out, 300);
        ck_assert_uint_gt(n, 0);
        for (size_t i = 0; i < n && total < 1000; i++, total++) { /* one round: 1000 ids */
            uint32_t k;
            memcpy(&k, out[i].b + 8, sizeof k);
            ck_assert_uint_lt(k, 1000);
            ck_assert_msg(!got[k], "id %u twice in one round", k);
            got[k] = 1;
        }
    }
    ck_assert_uint_eq(total, 1000);
    idset_fini(&s);
    ck_assert_uint_eq(idset_some(&s, &cursor, out, 300), 0);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("idset");
    TCase *tc = tcase_create("idset");
    tcase_add_test(tc, test_random_adds_and_deletes_agree_with_an_array);
    tcase_add_test(tc, test_some_goes_round_every_member_in_chunks);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
