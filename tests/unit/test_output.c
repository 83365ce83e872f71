/* tests/unit/test_output.c: the bounded result buffer of include/jobq/worker.h. */
#include "jobq/job.h"
#include "jobq/worker.h"
#include "jobq_test.h"

#include <stdlib.h>
#include <string.h>

START_TEST(test_appends_concatenate_in_order)
{
    jobq_output_t *out = jobq_output_new(0);
    ck_assert_int_eq(jobq_output_len(out), 0);
    ck_assert_ptr_nonnull(jobq_output_data(out));
    ck_assert_jobq_ok(jobq_output_append(out, "hello", 5));
    ck_assert_jobq_ok(jobq_output_append(out, ", ", 2));
    ck_assert_jobq_ok(jobq_output_append(out, "w\0rld", 5));
    ck_assert_int_eq(jobq_output_len(out), 12);
    ck_assert_int_eq(memcmp(jobq_output_data(out), "hello, w\0rld", 12), 0);
    ck_assert_int_eq(jobq_output_truncated(out), 0);
    jobq_output_destroy(&out);
    ck_assert_ptr_null(out);
}
END_TEST

START_TEST(test_default_limit_is_the_payload_limit)
{
    jobq_output_t *out = jobq_output_new(0);
    char *big = calloc(1, JOBQ_PAYLOAD_MAX + 1);
    ck_assert_ptr_nonnull(big);
    ck_assert_jobq_ok(jobq_output_append(out, big, JOBQ_PAYLOAD_MAX));
    ck_assert_int_eq(jobq_output_len(out), JOBQ_PAYLOAD_MAX);
    ck_assert_jobq_err(jobq_output_append(out, "x", 1), JOBQ_ETOOBIG);
    ck_assert_int_eq(jobq_output_len(out), JOBQ_PAYLOAD_MAX);
    ck_assert_int_eq(jobq_output_truncated(out), 1);
    free(big);
    jobq_output_destroy(&out);
}
END_TEST

START_TEST(test_refused_append_is_all_or_nothing)
{
    jobq_output_t *out = jobq_output_new(10);
    ck_assert_jobq_ok(jobq_output_append(out, "123456", 6));
    ck_assert_jobq_err(jobq_output_append(out, "abcde", 5), JOBQ_ETOOBIG);
    ck_assert_int_eq(jobq_output_len(out), 6);
    ck_assert_int_eq(memcmp(jobq_output_data(out), "123456", 6), 0);
    ck_assert_int_eq(jobq_output_truncated(out), 1);
    /* What still fits goes in; the truncated mark stays until a reset. */
    ck_assert_jobq_ok(jobq_output_append(out, "abcd", 4));
    ck_assert_int_eq(jobq_output_len(out), 10);
    ck_assert_int_eq(memcmp(jobq_output_data(out), "123456abcd", 10), 0);
    ck_assert_int_eq(jobq_output_truncated(out), 1);
    ck_assert_jobq_ok(jobq_output_append(out, NULL, 0));
    jobq_output_destroy(&out);
}
END_TEST

START_TEST(test_reset_empties_and_clears_marks_but_keeps_limit)
{
    jobq_output_t *out = jobq_output_new(4);
    ck_assert_jobq_ok(jobq_output_append(out, "abcd", 4));
    ck_assert_jobq_err(jobq_output_append(out, "e", 1), JOBQ_ETOOBIG);
    jobq_output_set_error(out, "boom");
    jobq_output_reset(out);
    ck_assert_int_eq(jobq_output_len(out), 0);
    ck_assert_int_eq(jobq_output_truncated(out), 0);
    ck_assert_str_eq(jobq_output_error(out), "");
    ck_assert_jobq_ok(jobq_output_append(out, "wxyz", 4));
    ck_assert_jobq_err(jobq_output_append(out, "!", 1), JOBQ_ETOOBIG);
    ck_assert_int_eq(memcmp(jobq_output_data(out), "wxyz", 4), 0);
    jobq_output_destroy(&out);
}
END_TEST

START_TEST(test_growth_keeps_every_byte)
{
    jobq_output_t *out = jobq_output_new(100000);
    int refused = 0, wrong = 0;
    for (int i = 0; i < 100000; i++) {
        unsigned char c = (unsigned char)(i * 7);
        refused += jobq_output_append(out, &c, 1) != JOBQ_OK;
    }
    ck_assert_int_eq(refused, 0);
    ck_assert_int_eq(jobq_output_len(out), 100000);
    const unsigned char *d = jobq_output_data(out);
    for (int i = 0; i < 100000; i++)
        wrong += d[i] != (unsigned char)(i * 7);
    ck_assert_int_eq(wrong, 0);
    ck_assert_jobq_err(jobq_output_append(out, "x", 1), JOBQ_ETOOBIG);
    jobq_output_destroy(&out);
}
END_TEST

START_TEST(test_error_text_is_copied_truncated_and_clearable)
{
    jobq_output_t *out = jobq_output_new(0);
    ck_assert_str_eq(jobq_output_error(out), "");
    char text[64];
    strcpy(text, "first");
    jobq_output_set_error(out, text);
    strcpy(text, "changed");
    ck_assert_str_eq(jobq_output_error(out), "first");

    char *big = malloc(3000);
    ck_assert_ptr_nonnull(big);
    memset(big, 'e', 2999);
    big[2999] = '\0';
    jobq_output_set_error(out, big);
    ck_assert_int_eq(strlen(jobq_output_error(out)), JOBQ_ERROR_TEXT_MAX);

    /* A two-byte UTF-8 letter straddling the limit is dropped whole. */
    memset(big, 'e', JOBQ_ERROR_TEXT_MAX - 1);
    memcpy(big + JOBQ_ERROR_TEXT_MAX - 1, "\xc3\xa9tail", 7);
    jobq_output_set_error(out, big);
    ck_assert_int_eq(strlen(jobq_output_error(out)), JOBQ_ERROR_TEXT_MAX - 1);

    jobq_output_set_error(out, NULL);
    ck_assert_str_eq(jobq_output_error(out), "");
    free(big);
    jobq_output_destroy(&out);
}
END_TEST

START_TEST(test_destroy_is_null_safe)
{
    jobq_output_t *out = NULL;
    jobq_output_destroy(&out);
    ck_assert_ptr_null(out);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("output");
    TCase *tc = tcase_create("output");
    tcase_set_timeout(tc, 20);
    tcase_add_test(tc, test_appends_concatenate_in_order);
    tcase_add_test(tc, test_default_limit_is_the_payload_limit);
    tcase_add_test(tc, test_refused_append_is_all_or_nothing);
    tcase_add_test(tc, test_reset_empties_and_clears_marks_but_keeps_limit);
    tcase_add_test(tc, test_growth_keeps_every_byte);
    tcase_add_test(tc, test_error_text_is_copied_truncated_and_clearable);
    tcase_add_test(tc, test_destroy_is_null_safe);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
