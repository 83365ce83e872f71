/* tests/unit/test_handler.c: handler_run with the built-ins, C callbacks and
 * real --exec commands (real fork, pipes, signals and process groups). */
#include "jobq/job.h"
#include "jobq/worker.h"
#include "jobq_test.h"
#include "worker/handler.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* ---- helpers ------------------------------------------------------------------ */

static void
s_job(jobq_job_t *job, const void *payload, size_t len)
{
    jobq_job_init(job);
    jobq_id_generate(&job->id);
    job->queue = "emails";
    job->queue_len = 6;
    job->payload = payload;
    job->payload_len = (uint32_t)len;
    job->attempt = 1;
}

/* Runs one attempt of payload through h; returns handler_run's code. */
static int
s_run(handler_t *h, const char *payload, size_t len, uint32_t limit_ms, jobq_output_t *out,
      jobq_result_t *res)
{
    jobq_job_t job;
    s_job(&job, payload, len);
    return handler_run(h, &job, "emails", limit_ms, out, res);
}

/* Runs one attempt of the --exec command cmd. */
static int
s_exec(const char *cmd, const char *payload, size_t len, uint32_t limit_ms, jobq_output_t *out,
       jobq_result_t *res)
{
    handler_t *h = handler_new_exec(cmd);
    int rc = s_run(h, payload, len, limit_ms, out, res);
    handler_destroy(&h);
    ck_assert_ptr_null(h);
    return rc;
}

static void
s_assert_output(const jobq_result_t *res, const char *want)
{
    size_t n = strlen(want);
    ck_assert_msg(res->output_len == n && (n == 0 || memcmp(res->output, want, n) == 0),
                  "output is \"%.*s\" (%u bytes), expected \"%s\"", (int)res->output_len,
                  res->output ? (const char *)res->output : "", (unsigned)res->output_len, want);
}

static void
s_assert_error_has(const jobq_result_t *res, const char *part)
{
    ck_assert_msg(res->error_len > 0, "no error text, expected one with \"%s\"", part);
    char text[JOBQ_ERROR_TEXT_MAX + 1];
    memcpy(text, res->error, res->error_len);
    text[res->error_len] = '\0';
    ck_assert_msg(strstr(text, part) != NULL, "error text \"%s\" lacks \"%s\"", text, part);
}

/* Waits up to ms for pid to end; returns 0 and its status, or -1. */
static int
s_wait_bounded(pid_t pid, int ms, int *status)
{
    for (int waited = 0; waited <= ms; waited += 5) {
        pid_t r = waitpid(pid, status, WNOHANG);
        if (r == pid)
            return 0;
        if (r < 0 && errno != EINTR)
            return -1;
        usleep(5000);
    }
    return -1;
}

static void
s_assert_no_children(void)
{
    errno = 0;
    ck_assert_int_eq(waitpid(-1, NULL, WNOHANG), -1);
    ck_assert_int_eq(errno, ECHILD);
}

/* ---- built-ins ------------------------------------------------------------------ */

START_TEST(test_echo_returns_the_payload_and_fills_the_result)
{
    handler_t *h = handler_new_builtin("echo");
    ck_assert_ptr_nonnull(h);
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    jobq_job_t job;
    s_job(&job, "hello\0world", 11);
    job.attempt = 4;
    ck_assert_int_eq(handler_run(h, &job, "emails", 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_int_eq(memcmp(&res.id, &job.id, sizeof job.id), 0);
    ck_assert_int_eq(res.attempt, 4);
    ck_assert_int_eq(res.output_len, 11);
    ck_assert_int_eq(memcmp(res.output, "hello\0world", 11), 0);
    ck_assert_ptr_eq(res.output, jobq_output_data(out));
    ck_assert_ptr_null(res.error);
    ck_assert_int_eq(res.error_len, 0);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert_int_eq(res.signal, 0);

    /* The next run starts from an empty output. */
    ck_assert_int_eq(s_run(h, "", 0, 0, out, &res), 0);
    ck_assert_int_eq(res.output_len, 0);
    ck_assert_ptr_null(res.output);
    jobq_output_destroy(&out);
    handler_destroy(&h);
}
END_TEST

START_TEST(test_upper_uppercases_ascii_letters_only)
{
    handler_t *h = handler_new_builtin("upper");
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    const char in[] = "Hello, w\0rld! caf\xc3\xa9 az{}`";
    const char want[] = "HELLO, W\0RLD! CAF\xc3\xa9 AZ{}`";
    ck_assert_int_eq(s_run(h, in, sizeof in - 1, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_int_eq(res.output_len, sizeof want - 1);
    ck_assert_int_eq(memcmp(res.output, want, sizeof want - 1), 0);

    /* Longer than its 4 KiB chunk. */
    size_t n = 10000;
    char *big = malloc(n);
    ck_assert_ptr_nonnull(big);
    for (size_t i = 0; i < n; i++)
        big[i] = (char)('a' + i % 26);
    ck_assert_int_eq(s_run(h, big, n, 0, out, &res), 0);
    ck_assert_int_eq(res.output_len, n);
    size_t wrong = 0;
    for (size_t i = 0; i < n; i++)
        wrong += ((const char *)res.output)[i] != 'A' + (int)(i % 26);
    ck_assert_int_eq(wrong, 0);
    free(big);
    jobq_output_destroy(&out);
    handler_destroy(&h);
}
END_TEST

START_TEST(test_md5_builtin_prints_32_lowercase_hex_digits)
{
    static const char *const vec[][2] = {
        {"", "d41d8cd98f00b204e9800998ecf8427e"},
        {"abc", "900150983cd24fb0d6963f7d28e17f72"},
        {"message digest", "f96b697d7cb7938d525a2f31aaf161d0"},
        {"12345678901234567890123456789012345678901234567890123456789012345678901234567890",
         "57edf4a22be3c955ac49da2e2107b67a"},
    };
    handler_t *h = handler_new_builtin("md5");
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    for (size_t i = 0; i < sizeof vec / sizeof vec[0]; i++) {
        ck_assert_int_eq(s_run(h, vec[i][0], strlen(vec[i][0]), 0, out, &res), 0);
        ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
        s_assert_output(&res, vec[i][1]);
    }
    jobq_output_destroy(&out);
    handler_destroy(&h);
}
END_TEST

START_TEST(test_sleep_waits_the_payload_milliseconds)
{
    handler_t *h = handler_new_builtin("sleep");
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_run(h, "120", 3, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_ge(res.duration_us, 120000);
    ck_assert_uint_lt(res.duration_us, 5000000);
    ck_assert_int_eq(res.output_len, 0);

    /* Blanks around the number, as a line from a file has, are fine; a limit
     * longer than the sleep does not cut it. */
    ck_assert_int_eq(s_run(h, " 30\n", 4, 1000, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_ge(res.duration_us, 30000);
    jobq_output_destroy(&out);
    handler_destroy(&h);
}
END_TEST

START_TEST(test_sleep_ends_timedout_at_the_time_limit)
{
    handler_t *h = handler_new_builtin("sleep");
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_run(h, "10000", 5, 150, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_TIMEDOUT);
    ck_assert_uint_ge(res.duration_us, 150000);
    ck_assert_uint_lt(res.duration_us, 3000000);
    s_assert_error_has(&res, "time limit of 150 ms");
    jobq_output_destroy(&out);
    handler_destroy(&h);
}
END_TEST

START_TEST(test_sleep_rejects_a_bad_number)
{
    static const char *const bad[] = {"abc", "", "-5", "12x", "1 2", "99999999999", "0x10"};
    handler_t *h = handler_new_builtin("sleep");
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        ck_assert_int_eq(s_run(h, bad[i], strlen(bad[i]), 0, out, &res), 0);
        ck_assert_msg(res.status == JOBQ_STATUS_FAILED, "\"%s\" accepted", bad[i]);
        ck_assert_int_eq(res.exit_code, 1);
        s_assert_error_has(&res, "sleep: the payload must be a whole number of milliseconds");
        ck_assert_uint_lt(res.duration_us, 1000000);
    }
    jobq_output_destroy(&out);
    handler_destroy(&h);
}
END_TEST

START_TEST(test_fail_builtin_always_fails_with_exit_code_1)
{
    handler_t *h = handler_new_builtin("fail");
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_run(h, "x", 1, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(res.exit_code, 1);
    ck_assert_int_eq(res.error_len, strlen("fail: the built-in always fails"));
    ck_assert_int_eq(memcmp(res.error, "fail: the built-in always fails", res.error_len), 0);
    jobq_output_destroy(&out);
    handler_destroy(&h);
}
END_TEST

START_TEST(test_crash_builtin_kills_the_calling_process_with_sigabrt)
{
    pid_t pid = fork();
    ck_assert_int_ge(pid, 0);
    if (pid == 0) {
        struct rlimit no_core = {0, 0};
        setrlimit(RLIMIT_CORE, &no_core);
        handler_t *h = handler_new_builtin("crash");
        jobq_output_t *out = jobq_output_new(0);
        jobq_result_t res;
        s_run(h, "x", 1, 0, out, &res);
        _exit(0); /* not reached if crash works */
    }
    int st;
    ck_assert_int_eq(s_wait_bounded(pid, 10000, &st), 0);
    ck_assert_msg(WIFSIGNALED(st) && WTERMSIG(st) == SIGABRT, "crash child ended with status %#x",
                  st);
}
END_TEST

START_TEST(test_unknown_builtin_gives_null_and_the_list_names_all)
{
    ck_assert_ptr_null(handler_new_builtin("nope"));
    ck_assert_ptr_null(handler_new_builtin(""));
    ck_assert_ptr_null(handler_new_builtin(NULL));
    ck_assert_str_eq(handler_builtin_list(), "echo, upper, md5, sleep, fail, crash");
    static const char *const names[] = {"echo", "upper", "md5", "sleep", "fail", "crash"};
    for (size_t i = 0; i < 6; i++) {
        handler_t *h = handler_new_builtin(names[i]);
        ck_assert_ptr_nonnull(h);
        handler_destroy(&h);
    }
    handler_t *none = NULL;
    handler_destroy(&none);
}
END_TEST

/* ---- C callbacks ---------------------------------------------------------------- */

/* Appends the payload, sets an error text, and returns *(int *)arg. */
static int
s_callback(const jobq_job_t *job, jobq_output_t *out, void *arg)
{
    jobq_output_append(out, job->payload, job->payload_len);
    int rc = *(int *)arg;
    if (rc != 0)
        jobq_output_set_error(out, "callback said no");
    return rc;
}

START_TEST(test_callback_verdicts_map_to_statuses)
{
    int verdict = 0;
    handler_t *h = handler_new_callback(s_callback, &verdict);
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;

    ck_assert_int_eq(s_run(h, "ok", 2, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    s_assert_output(&res, "ok");
    ck_assert_ptr_null(res.error);

    verdict = 7;
    ck_assert_int_eq(s_run(h, "seven", 5, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(res.exit_code, 7);
    s_assert_output(&res, "seven");
    s_assert_error_has(&res, "callback said no");

    verdict = -3;
    ck_assert_int_eq(s_run(h, "neg", 3, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(res.exit_code, 1);
    jobq_output_destroy(&out);
    handler_destroy(&h);
}
END_TEST

START_TEST(test_output_over_the_limit_is_never_done)
{
    int verdict = 0;
    handler_t *h = handler_new_callback(s_callback, &verdict);
    jobq_output_t *out = jobq_output_new(4);
    jobq_result_t res;
    ck_assert_int_eq(s_run(h, "0123456789", 10, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(res.exit_code, 0);
    s_assert_error_has(&res, "output truncated at 0 bytes");
    handler_destroy(&h);

    /* A built-in keeps exactly the bytes that fit. */
    h = handler_new_builtin("echo");
    ck_assert_int_eq(s_run(h, "0123456789", 10, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_FAILED);
    s_assert_output(&res, "0123");
    s_assert_error_has(&res, "output truncated at 4 bytes");
    jobq_output_destroy(&out);
    handler_destroy(&h);
}
END_TEST

/* ---- --exec --------------------------------------------------------------------- */

START_TEST(test_exec_payload_reaches_stdin_byte_exact)
{
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    static const char in[] = "a\0b\nc\0";
    ck_assert_int_eq(s_exec("cat", in, sizeof in - 1, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_int_eq(res.output_len, sizeof in - 1);
    ck_assert_int_eq(memcmp(res.output, in, sizeof in - 1), 0);
    ck_assert_ptr_null(res.error);

    /* An empty payload is an immediate EOF. */
    ck_assert_int_eq(s_exec("wc -c", NULL, 0, 0, out, &res), 0);
    s_assert_output(&res, "0\n");
    jobq_output_destroy(&out);
    s_assert_no_children();
}
END_TEST

START_TEST(test_exec_streams_one_mib_both_ways_without_deadlock)
{
    size_t n = JOBQ_PAYLOAD_MAX;
    unsigned char *in = malloc(n);
    ck_assert_ptr_nonnull(in);
    for (size_t i = 0; i < n; i++)
        in[i] = (unsigned char)((i * 2654435761u) >> 13);
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_exec("cat", (const char *)in, n, 20000, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_int_eq(res.output_len, n);
    ck_assert_int_eq(memcmp(res.output, in, n), 0);

    ck_assert_int_eq(s_exec("md5sum", (const char *)in, n, 20000, out, &res), 0);
    handler_t *md5 = handler_new_builtin("md5");
    jobq_output_t *out2 = jobq_output_new(0);
    jobq_result_t res2;
    s_run(md5, (const char *)in, n, 0, out2, &res2);
    ck_assert_int_ge(res.output_len, 32);
    ck_assert_int_eq(memcmp(res.output, res2.output, 32), 0);
    handler_destroy(&md5);
    jobq_output_destroy(&out2);
    jobq_output_destroy(&out);
    free(in);
    s_assert_no_children();
}
END_TEST

START_TEST(test_exec_exit_codes_map_to_statuses)
{
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_exec("printf out; exit 0", NULL, 0, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_int_eq(res.exit_code, 0);
    s_assert_output(&res, "out");

    ck_assert_int_eq(s_exec("printf partial; exit 3", NULL, 0, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(res.exit_code, 3);
    ck_assert_int_eq(res.signal, 0);
    s_assert_output(&res, "partial");
    s_assert_error_has(&res, "command exited with code 3");

    ck_assert_int_eq(s_exec("exit 255", NULL, 0, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(res.exit_code, 255);

    ck_assert_int_eq(s_exec("no-such-command-jobq 2>/dev/null", NULL, 0, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(res.exit_code, 127);
    jobq_output_destroy(&out);
    s_assert_no_children();
}
END_TEST

START_TEST(test_exec_killed_by_a_signal_reports_crashed)
{
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_exec("kill -9 $$", NULL, 0, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_CRASHED);
    ck_assert_int_eq(res.signal, 9);
    s_assert_error_has(&res, "killed by signal 9 (SIGKILL)");

    ck_assert_int_eq(s_exec("kill -TERM $$", NULL, 0, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_CRASHED);
    ck_assert_int_eq(res.signal, SIGTERM);
    jobq_output_destroy(&out);
    s_assert_no_children();
}
END_TEST

START_TEST(test_exec_sets_the_job_variables_in_the_environment)
{
    setenv("JOBQ_QUEUE", "stale", 1);
    setenv("JOBQ_TEST_MARK", "kept", 1);
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    jobq_job_t job;
    s_job(&job, "", 0);
    job.attempt = 3;
    handler_t *h = handler_new_exec("printf '%s|%s|%s|%s|' \"$JOBQ_JOB_ID\" \"$JOBQ_QUEUE\" "
                                    "\"$JOBQ_ATTEMPT\" \"$JOBQ_TEST_MARK\"; "
                                    "env | grep -c '^JOBQ_QUEUE='");
    ck_assert_int_eq(handler_run(h, &job, "emails", 0, out, &res), 0);
    char hex[JOBQ_ID_HEX_LEN + 1], want[128];
    jobq_id_format(&job.id, hex);
    snprintf(want, sizeof want, "%s|emails|3|kept|1\n", hex);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    s_assert_output(&res, want);

    /* Without a queue argument the job's own queue is used. */
    job.queue = "reports";
    job.queue_len = 7;
    ck_assert_int_eq(handler_run(h, &job, NULL, 0, out, &res), 0);
    snprintf(want, sizeof want, "%s|reports|3|kept|1\n", hex);
    s_assert_output(&res, want);
    handler_destroy(&h);
    jobq_output_destroy(&out);
    s_assert_no_children();
}
END_TEST

/* Asserts that SIGPIPE is neither pending nor (unless was_blocked) blocked. */
static void
s_assert_sigpipe_clean(int was_blocked)
{
    sigset_t pending, mask;
    sigpending(&pending);
    ck_assert_int_eq(sigismember(&pending, SIGPIPE), 0);
    pthread_sigmask(SIG_SETMASK, NULL, &mask);
    ck_assert_int_eq(sigismember(&mask, SIGPIPE), was_blocked);
}

START_TEST(test_exec_command_ignoring_stdin_neither_blocks_nor_kills_the_worker)
{
    size_t n = JOBQ_PAYLOAD_MAX;
    char *in = calloc(1, n);
    ck_assert_ptr_nonnull(in);
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    /* SIGPIPE has its default action here: a stray one would kill the test. */
    ck_assert_int_eq(s_exec("true", in, n, 10000, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    s_assert_sigpipe_clean(0);

    ck_assert_int_eq(s_exec("exec 0<&-; sleep 0.2; echo done", in, n, 10000, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    s_assert_output(&res, "done\n");
    s_assert_sigpipe_clean(0);

    ck_assert_int_eq(s_exec("sleep 0.2", in, n, 10000, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_lt(res.duration_us, 5000000);

    /* A caller that blocks SIGPIPE itself keeps it blocked, with nothing pending. */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    ck_assert_int_eq(s_exec("true", in, n, 10000, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    s_assert_sigpipe_clean(1);
    free(in);
    jobq_output_destroy(&out);
    s_assert_no_children();
}
END_TEST

START_TEST(test_exec_output_over_the_limit_is_bounded_and_reported)
{
    jobq_output_t *out = jobq_output_new(1000);
    jobq_result_t res;
    ck_assert_int_eq(s_exec("head -c 3000000 /dev/zero", NULL, 0, 20000, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(res.exit_code, 0);
    ck_assert_int_eq(res.output_len, 1000);
    ck_assert_int_eq(res.error_len, strlen("output truncated at 1000 bytes"));
    s_assert_error_has(&res, "output truncated at 1000 bytes");

    /* The error of a failing command comes first. */
    ck_assert_int_eq(s_exec("head -c 5000 /dev/zero; exit 4", NULL, 0, 20000, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_FAILED);
    ck_assert_int_eq(res.exit_code, 4);
    s_assert_error_has(&res, "command exited with code 4; output truncated at 1000 bytes");
    jobq_output_destroy(&out);
    s_assert_no_children();
}
END_TEST

START_TEST(test_exec_time_limit_kills_the_whole_process_group)
{
    /* As a subreaper, this process inherits the orphaned grandchild and can
     * check that it died. */
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_exec("sleep 30 & echo $!; wait", NULL, 0, 300, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_TIMEDOUT);
    ck_assert_int_eq(res.signal, SIGTERM);
    ck_assert_uint_ge(res.duration_us, 300000);
    ck_assert_uint_lt(res.duration_us, 5000000);
    s_assert_error_has(&res, "time limit of 300 ms reached");
    ck_assert_int_gt(res.output_len, 0);
    pid_t grandchild = (pid_t)strtol(res.output, NULL, 10);
    ck_assert_int_gt(grandchild, 1);
    int st;
    ck_assert_int_eq(s_wait_bounded(grandchild, 5000, &st), 0);
    ck_assert(WIFSIGNALED(st));
    jobq_output_destroy(&out);
    s_assert_no_children();
}
END_TEST

START_TEST(test_exec_command_ignoring_sigterm_gets_sigkill_after_the_grace)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_exec("trap '' TERM; sleep 10", NULL, 0, 200, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_TIMEDOUT);
    ck_assert_int_eq(res.signal, SIGKILL);
    ck_assert_uint_ge(res.duration_us, 300000); /* limit + grace of limit / 2 */
    ck_assert_uint_lt(res.duration_us, 3000000);
    s_assert_error_has(&res, "SIGKILL");
    /* The sleep was in the group: reap it as the subreaper. */
    int st;
    pid_t p;
    for (int i = 0; i < 400 && (p = waitpid(-1, &st, WNOHANG)) >= 0; i++)
        if (p == 0)
            usleep(5000);
    s_assert_no_children();
    jobq_output_destroy(&out);
}
END_TEST

START_TEST(test_exec_ends_when_the_shell_exits_even_if_a_leftover_holds_stdout)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_exec("sleep 30 & echo $!", NULL, 0, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_lt(res.duration_us, 5000000);
    pid_t leftover = (pid_t)strtol(res.output, NULL, 10);
    ck_assert_int_gt(leftover, 1);
    int st;
    ck_assert_int_eq(s_wait_bounded(leftover, 5000, &st), 0);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    jobq_output_destroy(&out);
    s_assert_no_children();
}
END_TEST

START_TEST(test_exec_measures_duration_on_the_monotonic_clock)
{
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_exec("sleep 0.1", NULL, 0, 0, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    ck_assert_uint_ge(res.duration_us, 100000);
    ck_assert_uint_lt(res.duration_us, 5000000);
    jobq_output_destroy(&out);
}
END_TEST

START_TEST(test_exec_leaves_no_zombies)
{
    static const char *const cmds[] = {"true", "exit 2", "kill -9 $$", "cat", "sleep 5"};
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    for (int round = 0; round < 4; round++)
        for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
            ck_assert_int_eq(s_exec(cmds[i], "payload", 7, 100, out, &res), 0);
    s_assert_no_children();
    jobq_output_destroy(&out);
}
END_TEST

START_TEST(test_exec_passes_only_stdio_fds_to_the_command)
{
    int leak[2];
    ck_assert_int_eq(pipe(leak), 0); /* inheritable on purpose */
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    ck_assert_int_eq(s_exec("ls /proc/$$/fd", "x", 1, 5000, out, &res), 0);
    ck_assert_int_eq(res.status, JOBQ_STATUS_DONE);
    s_assert_output(&res, "0\n1\n2\n");
    close(leak[0]);
    close(leak[1]);
    jobq_output_destroy(&out);
}
END_TEST

START_TEST(test_exec_starts_with_default_signals_and_an_empty_mask)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGINT, SIG_IGN);
    signal(SIGPIPE, SIG_IGN);
    jobq_output_t *out = jobq_output_new(0);
    jobq_result_t res;
    /* exec: grep replaces the shell and reads its own mask. Reading the shell's
     * /proc/$$/status from a forked grep races with dash, which blocks every
     * signal while it waits for its child. */
    ck_assert_int_eq(
        s_exec("exec grep -E '^Sig(Blk|Ign)' /proc/self/status", NULL, 0, 5000, out, &res), 0);
    s_assert_output(&res, "SigBlk:\t0000000000000000\nSigIgn:\t0000000000000000\n");
    jobq_output_destroy(&out);
}
END_TEST

START_TEST(test_exec_child_dies_with_its_worker)
{
    ck_assert_int_eq(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0), 0);
    char path[128], cmd[512];
    snprintf(path, sizeof path, "/tmp/jobq_test_handler_%d_pid", (int)getpid());
    unlink(path);
    snprintf(cmd, sizeof cmd, "echo $$ > %s.tmp && mv %s.tmp %s && exec sleep 30", path, path,
             path);
    pid_t worker = fork();
    ck_assert_int_ge(worker, 0);
    if (worker == 0) {
        jobq_output_t *out = jobq_output_new(0);
        jobq_result_t res;
        s_exec(cmd, NULL, 0, 0, out, &res);
        _exit(0);
    }
    /* Wait (bounded) for the command to say who it is. */
    pid_t shell = 0;
    for (int i = 0; i < 1000 && shell <= 0; i++) {
        FILE *f = fopen(path, "r");
        if (f) {
            int v = 0;
            if (fscanf(f, "%d", &v) == 1)
                shell = v;
            fclose(f);
        }
        if (shell <= 0)
            usleep(5000);
    }
    unlink(path);
    ck_assert_int_gt(shell, 1);
    /* Once the shell has become sleep, its mv has ended: only it can be orphaned. */
    char comm_path[64], comm[32] = "";
    snprintf(comm_path, sizeof comm_path, "/proc/%d/comm", (int)shell);
    for (int i = 0; i < 1000 && strcmp(comm, "sleep\n") != 0; i++) {
        FILE *f = fopen(comm_path, "r");
        if (f) {
            if (!fgets(comm, sizeof comm, f))
                comm[0] = '\0';
            fclose(f);
        }
        if (strcmp(comm, "sleep\n") != 0)
            usleep(5000);
    }
    ck_assert_str_eq(comm, "sleep\n");
    kill(worker, SIGKILL);
    int st;
    ck_assert_int_eq(s_wait_bounded(worker, 5000, &st), 0);
    /* The command was reparented to us (subreaper) and died of PDEATHSIG. */
    ck_assert_int_eq(s_wait_bounded(shell, 5000, &st), 0);
    ck_assert(WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL);
    s_assert_no_children();
}
END_TEST

/* One thread's share of test_exec_runs_concurrently_in_threads. */
typedef struct s_thread_arg {
    int index;
    int failures;
} s_thread_arg_t;

static void *
s_thread_main(void *p)
{
    s_thread_arg_t *a = p;
    jobq_output_t *out = jobq_output_new(0);
    handler_t *cat = handler_new_exec("cat");
    handler_t *fds = handler_new_exec("ls /proc/$$/fd");
    for (int i = 0; i < 15; i++) {
        char payload[64];
        int n = snprintf(payload, sizeof payload, "thread %d run %d", a->index, i);
        jobq_result_t res;
        if (s_run(cat, payload, (size_t)n, 10000, out, &res) != 0 ||
            res.status != JOBQ_STATUS_DONE || res.output_len != (uint32_t)n ||
            memcmp(res.output, payload, (size_t)n) != 0)
            a->failures++;
        if (s_run(fds, "", 0, 10000, out, &res) != 0 || res.output_len != 6 ||
            memcmp(res.output, "0\n1\n2\n", 6) != 0)
            a->failures++;
    }
    handler_destroy(&cat);
    handler_destroy(&fds);
    jobq_output_destroy(&out);
    return NULL;
}

START_TEST(test_exec_runs_concurrently_in_threads_without_leaking_fds)
{
    pthread_t t[3];
    s_thread_arg_t args[3];
    for (int i = 0; i < 3; i++) {
        args[i] = (s_thread_arg_t){.index = i};
        ck_assert_int_eq(pthread_create(&t[i], NULL, s_thread_main, &args[i]), 0);
    }
    for (int i = 0; i < 3; i++) {
        pthread_join(t[i], NULL);
        ck_assert_int_eq(args[i].failures, 0);
    }
    s_assert_no_children();
}
END_TEST

int
main(void)
{
    Suite *s = suite_create("handler");
    TCase *b = tcase_create("builtin");
    tcase_set_timeout(b, 20);
    tcase_add_test(b, test_echo_returns_the_payload_and_fills_the_result);
    tcase_add_test(b, test_upper_uppercases_ascii_letters_only);
    tcase_add_test(b, test_md5_builtin_prints_32_lowercase_hex_digits);
    tcase_add_test(b, test_sleep_waits_the_payload_milliseconds);
    tcase_add_test(b, test_sleep_ends_timedout_at_the_time_limit);
    tcase_add_test(b, test_sleep_rejects_a_bad_number);
    tcase_add_test(b, test_fail_builtin_always_fails_with_exit_code_1);
    tcase_add_test(b, test_crash_builtin_kills_the_calling_process_with_sigabrt);
    tcase_add_test(b, test_unknown_builtin_gives_null_and_the_list_names_all);
    suite_add_tcase(s, b);

    TCase *c = tcase_create("callback");
    tcase_set_timeout(c, 20);
    tcase_add_test(c, test_callback_verdicts_map_to_statuses);
    tcase_add_test(c, test_output_over_the_limit_is_never_done);
    suite_add_tcase(s, c);

    TCase *e = tcase_create("exec");
    tcase_set_timeout(e, 30);
    tcase_add_test(e, test_exec_payload_reaches_stdin_byte_exact);
    tcase_add_test(e, test_exec_streams_one_mib_both_ways_without_deadlock);
    tcase_add_test(e, test_exec_exit_codes_map_to_statuses);
    tcase_add_test(e, test_exec_killed_by_a_signal_reports_crashed);
    tcase_add_test(e, test_exec_sets_the_job_variables_in_the_environment);
    tcase_add_test(e, test_exec_command_ignoring_stdin_neither_blocks_nor_kills_the_worker);
    tcase_add_test(e, test_exec_output_over_the_limit_is_bounded_and_reported);
    tcase_add_test(e, test_exec_time_limit_kills_the_whole_process_group);
    tcase_add_test(e, test_exec_command_ignoring_sigterm_gets_sigkill_after_the_grace);
    tcase_add_test(e, test_exec_ends_when_the_shell_exits_even_if_a_leftover_holds_stdout);
    tcase_add_test(e, test_exec_measures_duration_on_the_monotonic_clock);
    tcase_add_test(e, test_exec_leaves_no_zombies);
    tcase_add_test(e, test_exec_passes_only_stdio_fds_to_the_command);
    tcase_add_test(e, test_exec_starts_with_default_signals_and_an_empty_mask);
    tcase_add_test(e, test_exec_child_dies_with_its_worker);
    tcase_add_test(e, test_exec_runs_concurrently_in_threads_without_leaking_fds);
    suite_add_tcase(s, e);
    return jobq_test_run(s);
}
