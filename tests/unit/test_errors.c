/* tests/unit/test_errors.c: every error code has a distinct text and name. */
#include "jobq_test.h"

#include <string.h>

START_TEST(test_every_code_has_a_distinct_text_and_name)
{
    for (int i = 0; i < JOBQ_ERR_COUNT_; i++) {
        const char *t = jobq_strerror(i), *n = jobq_errname(i);
        ck_assert_ptr_nonnull(t);
        ck_assert_msg(strncmp(t, "unknown", 7) != 0, "code %d has no text", i);
        ck_assert_msg(strncmp(n, "JOBQ_", 5) == 0 && strcmp(n, "JOBQ_E?") != 0,
                      "code %d has no name", i);
        for (int j = 0; j < i; j++) {
            ck_assert_str_ne(t, jobq_strerror(j));
            ck_assert_str_ne(n, jobq_errname(j));
        }
    }
}
END_TEST

START_TEST(test_unknown_codes_are_described_not_crashed_on)
{
    ck_assert_str_eq(jobq_strerror(9999), "unknown error 9999");
    ck_assert_str_eq(jobq_strerror(-3), "unknown error -3");
    ck_assert_str_eq(jobq_errname(JOBQ_ERR_COUNT_), "JOBQ_E?");
}
END_TEST

START_TEST(test_codes_keep_their_wire_numbers)
{
    /* These numbers travel on the wire (docs/PROTOCOL.md): never renumber. */
    ck_assert_int_eq(JOBQ_OK, 0);
    ck_assert_int_eq(JOBQ_ETIMEDOUT, 3);
    ck_assert_int_eq(JOBQ_EPROTO, 7);
    ck_assert_int_eq(JOBQ_ESTALE, 14);
    ck_assert_int_eq(JOBQ_EQUEUEFULL, 16);
    ck_assert_str_eq(jobq_errname(JOBQ_ESTALE), "JOBQ_ESTALE");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("errors");
    TCase *tc = tcase_create("errors");
    tcase_add_test(tc, test_every_code_has_a_distinct_text_and_name);
    tcase_add_test(tc, test_unknown_codes_are_described_not_crashed_on);
    tcase_add_test(tc, test_codes_keep_their_wire_numbers);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
