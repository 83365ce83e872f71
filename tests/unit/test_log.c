/* tests/unit/test_log.c: the library is silent by default; an installed sink gets leveled lines. */
#include "common/log.h"
#include "jobq_test.h"

#include <stdio.h>
#include <string.h>

static int s_calls;
static char s_last[256];
static jobq_log_level s_level;

static void
s_sink(jobq_log_level level, const char *file, int line, const char *func, const char *msg,
       void *arg)
{
    s_calls++;
    s_level = level;
    snprintf(s_last, sizeof s_last, "%s", msg);
    *(int *)arg += 1;
}

static int
s_side_effect(int *n)
{
    return ++*n;
}

START_TEST(test_silent_by_default_and_args_not_evaluated)
{
    int evaluated = 0;
    LOG_ERR("boom %d", s_side_effect(&evaluated));
    ck_assert_int_eq(evaluated, 0);
}
END_TEST

START_TEST(test_sink_receives_messages_up_to_its_level)
{
    int count = 0, evaluated = 0;
    jobq_log_set(s_sink, &count, JOBQ_LOG_NOTICE);
    LOG_WARN("disk %s at %d%%", "sda", 97);
    ck_assert_int_eq(s_calls, 1);
    ck_assert_int_eq(s_level, JOBQ_LOG_WARN);
    ck_assert_str_eq(s_last, "disk sda at 97%");
    LOG_DEBUG("hidden %d", s_side_effect(&evaluated));
    ck_assert_int_eq(s_calls, 1);
    ck_assert_int_eq(evaluated, 0);
    jobq_log_set(NULL, NULL, JOBQ_LOG_DEBUG);
    LOG_ERR("dropped");
    ck_assert_int_eq(count, 1);
}
END_TEST

START_TEST(test_level_names_parse)
{
    ck_assert_int_eq(jobq_log_level_parse("debug"), JOBQ_LOG_DEBUG);
    ck_assert_int_eq(jobq_log_level_parse("WARN"), JOBQ_LOG_WARN);
    ck_assert_int_eq(jobq_log_level_parse("loud"), -1);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("log");
    TCase *tc = tcase_create("log");
    tcase_add_test(tc, test_silent_by_default_and_args_not_evaluated);
    tcase_add_test(tc, test_sink_receives_messages_up_to_its_level);
    tcase_add_test(tc, test_level_names_parse);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
