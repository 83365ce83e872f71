/* tests/unit/test_job.c: job record defaults, validation, ids and names. */
#include "jobq/job.h"
#include "jobq_test.h"

#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

START_TEST(test_init_gives_documented_defaults)
{
    jobq_job_t j;
    jobq_job_init(&j);
    ck_assert_int_eq(j.priority, JOBQ_PRIORITY_DEFAULT);
    ck_assert_int_eq(j.ttr_ms, JOBQ_TTR_DEFAULT_MS);
    ck_assert_int_eq(j.max_attempts, 1);
    ck_assert_int_eq(j.queue_len, 7);
    ck_assert_int_eq(memcmp(j.queue, "default", 7), 0);
    ck_assert(jobq_id_is_zero(&j.id));
    ck_assert_jobq_ok(jobq_job_validate(&j, NULL));
}
END_TEST

START_TEST(test_validate_names_the_bad_field)
{
    jobq_job_t j;
    const char *why;
    char big[300];
    memset(big, 'q', sizeof big);

    jobq_job_init(&j);
    j.queue = "bad name";
    j.queue_len = 8;
    ck_assert_jobq_err(jobq_job_validate(&j, &why), JOBQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "queue"));

    jobq_job_init(&j);
    j.queue = big;
    j.queue_len = 201;
    ck_assert_jobq_err(jobq_job_validate(&j, &why), JOBQ_ETOOBIG);

    jobq_job_init(&j);
    j.payload = big;
    j.payload_len = JOBQ_PAYLOAD_MAX + 1;
    ck_assert_jobq_err(jobq_job_validate(&j, &why), JOBQ_ETOOBIG);
    ck_assert_ptr_nonnull(strstr(why, "payload"));

    jobq_job_init(&j);
    j.max_attempts = 0;
    ck_assert_jobq_err(jobq_job_validate(&j, &why), JOBQ_EINVAL);
    ck_assert_ptr_nonnull(strstr(why, "max_attempts"));

    jobq_job_init(&j);
    j.unique = big;
    j.unique_len = 201;
    ck_assert_jobq_err(jobq_job_validate(&j, &why), JOBQ_ETOOBIG);
}
END_TEST

START_TEST(test_queue_names_follow_beanstalkd_rules)
{
    ck_assert(jobq_queue_name_valid("emails", 6));
    ck_assert(jobq_queue_name_valid("a-b+c/d;e.f$g_h(i)", 18));
    ck_assert(!jobq_queue_name_valid("-lead", 5));
    ck_assert(!jobq_queue_name_valid("", 0));
    ck_assert(!jobq_queue_name_valid("nul\0x", 5));
    ck_assert(!jobq_queue_name_valid("tab\t", 4));
}
END_TEST

START_TEST(test_ids_round_trip_through_hex)
{
    jobq_id_t a, b;
    char hex[JOBQ_ID_HEX_LEN + 1];
    jobq_id_generate(&a);
    jobq_id_format(&a, hex);
    ck_assert_int_eq(strlen(hex), 32);
    ck_assert_jobq_ok(jobq_id_parse(hex, &b));
    ck_assert_int_eq(memcmp(&a, &b, sizeof a), 0);
    ck_assert_jobq_err(jobq_id_parse("xyz", &b), JOBQ_EINVAL);
    ck_assert_jobq_err(jobq_id_parse("0123456789abcdef0123456789abcdeg", &b), JOBQ_EINVAL);
    ck_assert_jobq_ok(jobq_id_parse("0123456789ABCDEF0123456789abcdef", &b));
}
END_TEST

static int
s_cmp_id(const void *a, const void *b)
{
    return memcmp(a, b, sizeof(jobq_id_t));
}

START_TEST(test_ids_are_unique_across_fork)
{
    int fds[2];
    jobq_id_t mine[1000], theirs[1000];
    ck_assert_int_eq(pipe(fds), 0);
    jobq_id_generate(&mine[0]); /* seed the parent before forking */
    pid_t pid = fork();
    if (pid == 0) {
        for (int i = 0; i < 1000; i++)
            jobq_id_generate(&theirs[i]);
        ssize_t w = write(fds[1], theirs, sizeof theirs);
        _exit(w == (ssize_t)sizeof theirs ? 0 : 1);
    }
    for (int i = 1; i < 1000; i++)
        jobq_id_generate(&mine[i]);
    size_t got = 0;
    while (got < sizeof theirs) {
        ssize_t r = read(fds[0], (char *)theirs + got, sizeof theirs - got);
        ck_assert_int_gt(r, 0);
        got += (size_t)r;
    }
    int st;
    waitpid(pid, &st, 0);
    static jobq_id_t all[2000];
    memcpy(all, mine, sizeof mine);
    memcpy(all + 1000, theirs, sizeof theirs);
    qsort(all, 2000, sizeof all[0], s_cmp_id);
    int dups = 0, zeros = 0;
    for (int i = 0; i < 2000; i++) {
        zeros += jobq_id_is_zero(&all[i]);
        dups += i > 0 && memcmp(&all[i - 1], &all[i], 16) == 0;
    }
    ck_assert_int_eq(zeros, 0);
    ck_assert_int_eq(dups, 0);
}
END_TEST

START_TEST(test_state_and_status_names)
{
    ck_assert_str_eq(jobq_state_name(JOBQ_STATE_RESERVED), "reserved");
    ck_assert_str_eq(jobq_state_name((jobq_job_state)99), "?");
    ck_assert_str_eq(jobq_status_name(JOBQ_STATUS_CRASHED), "crashed");
    ck_assert_str_eq(jobq_status_name((jobq_status)-1), "?");
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("job");
    TCase *tc = tcase_create("job");
    tcase_add_test(tc, test_init_gives_documented_defaults);
    tcase_add_test(tc, test_validate_names_the_bad_field);
    tcase_add_test(tc, test_queue_names_follow_beanstalkd_rules);
    tcase_add_test(tc, test_ids_round_trip_through_hex);
    tcase_add_test(tc, test_ids_are_unique_across_fork);
    tcase_add_test(tc, test_state_and_status_names);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
