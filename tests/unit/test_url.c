/* tests/unit/test_url.c: URL parsing, good and bad, with messages that name the fault. */
#include "common/url.h"
#include "jobq_test.h"

#include <string.h>

static jobq_url_t u;
static char why[256];

START_TEST(test_shm_name_parses)
{
    ck_assert_jobq_ok(jobq_url_parse("shm://jobs", &u, why, sizeof why));
    ck_assert_int_eq(u.scheme, JOBQ_URL_SHM);
    ck_assert_str_eq(u.name, "jobs");
}
END_TEST

START_TEST(test_mq_name_with_params_parses)
{
    ck_assert_jobq_ok(jobq_url_parse("mq://a.b_c-1?capacity=8&x=y", &u, why, sizeof why));
    ck_assert_int_eq(u.scheme, JOBQ_URL_MQ);
    ck_assert_str_eq(u.name, "a.b_c-1");
    ck_assert_str_eq(jobq_url_param(&u, "capacity"), "8");
    ck_assert_str_eq(jobq_url_param(&u, "x"), "y");
    ck_assert_ptr_null(jobq_url_param(&u, "nope"));
}
END_TEST

START_TEST(test_tcp_host_port_parses)
{
    ck_assert_jobq_ok(jobq_url_parse("tcp://127.0.0.1:7711", &u, why, sizeof why));
    ck_assert_int_eq(u.scheme, JOBQ_URL_TCP);
    ck_assert_str_eq(u.host, "127.0.0.1");
    ck_assert_int_eq(u.port, 7711);
    ck_assert_str_eq(u.endpoint, "tcp://127.0.0.1:7711");
}
END_TEST

START_TEST(test_tcp_ipv6_and_wildcards_parse)
{
    ck_assert_jobq_ok(jobq_url_parse("tcp://[::1]:80", &u, why, sizeof why));
    ck_assert_str_eq(u.host, "::1");
    ck_assert_str_eq(u.endpoint, "tcp://[::1]:80");
    ck_assert_jobq_ok(jobq_url_parse("tcp://*:*", &u, why, sizeof why));
    ck_assert_int_eq(u.port, 0);
    ck_assert_str_eq(u.endpoint, "tcp://*:*");
    ck_assert_jobq_ok(jobq_url_parse("tcp://localhost:0", &u, why, sizeof why));
    ck_assert_int_eq(u.port, 0);
}
END_TEST

START_TEST(test_ipc_path_parses)
{
    ck_assert_jobq_ok(jobq_url_parse("ipc:///tmp/jobq.sock", &u, why, sizeof why));
    ck_assert_int_eq(u.scheme, JOBQ_URL_IPC);
    ck_assert_str_eq(u.path, "/tmp/jobq.sock");
    ck_assert_str_eq(u.endpoint, "ipc:///tmp/jobq.sock");
}
END_TEST

static const struct {
    const char *url;
    const char *says; /* a fragment the error must contain */
} s_bad[] = {
    {"", "empty"},
    {"jobs", "no scheme"},
    {"http://x", "unknown scheme 'http'"},
    {"shm://", "needs a NAME"},
    {"shm://a/b", "bad shm name"},
    {"shm://..", "bad shm name"},
    {"mq://sp ace", "bad mq name"},
    {"shm://x?novalue", "not key=value"},
    {"tcp://host", "HOST:PORT"},
    {"tcp://:80", "host is empty"},
    {"tcp://h:70000", "port '70000'"},
    {"tcp://h:-1", "port '-1'"},
    {"tcp://h:12x", "port '12x'"},
    {"tcp://h:", "port ''"},
    {"tcp://::1:80", "brackets"},
    {"tcp://[::1", "missing its ']'"},
    {"ipc://", "needs a PATH"},
};

START_TEST(test_bad_url_is_refused_with_a_reason)
{
    int rc = jobq_url_parse(s_bad[_i].url, &u, why, sizeof why);
    ck_assert_msg(rc == JOBQ_EURL, "'%s' was accepted", s_bad[_i].url);
    ck_assert_msg(strstr(why, s_bad[_i].says) != NULL, "'%s': message '%s' lacks '%s'",
                  s_bad[_i].url, why, s_bad[_i].says);
}
END_TEST

START_TEST(test_overlong_inputs_are_refused)
{
    char big[700];
    memset(big, 'a', sizeof big);
    memcpy(big, "shm://", 6);
    big[6 + 201] = '\0';
    ck_assert_int_eq(jobq_url_parse(big, &u, why, sizeof why), JOBQ_EURL);
    memcpy(big, "ipc://", 6);
    big[6 + 108] = '\0';
    ck_assert_int_eq(jobq_url_parse(big, &u, why, sizeof why), JOBQ_EURL);
    ck_assert_ptr_nonnull(strstr(why, "limit is 107"));
    big[sizeof big - 1] = '\0';
    ck_assert_int_eq(jobq_url_parse(big, &u, why, sizeof why), JOBQ_EURL);
    ck_assert_int_eq(jobq_url_parse(NULL, &u, NULL, 0), JOBQ_EURL);
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("url");
    TCase *tc = tcase_create("parse");
    tcase_add_test(tc, test_shm_name_parses);
    tcase_add_test(tc, test_mq_name_with_params_parses);
    tcase_add_test(tc, test_tcp_host_port_parses);
    tcase_add_test(tc, test_tcp_ipv6_and_wildcards_parse);
    tcase_add_test(tc, test_ipc_path_parses);
    tcase_add_loop_test(tc, test_bad_url_is_refused_with_a_reason, 0,
                        (int)(sizeof s_bad / sizeof s_bad[0]));
    tcase_add_test(tc, test_overlong_inputs_are_refused);
    suite_add_tcase(s, tc);
    return jobq_test_run(s);
}
