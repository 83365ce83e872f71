/*
 * tests/support/jobq_test.h: small helpers shared by the check suites.
 */
#ifndef JOBQ_TEST_H
#define JOBQ_TEST_H

#include "jobq/errors.h"

#include <check.h>
#include <stddef.h>

/* Asserts that expr returned JOBQ_OK, printing jobq_strerror otherwise. */
#define ck_assert_jobq_ok(expr)                                                                    \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        ck_assert_msg(rc_ == JOBQ_OK, "%s failed: %s (%s)", #expr, jobq_errname(rc_),              \
                      jobq_strerror(rc_));                                                         \
    } while (0)

/* Asserts that expr returned the jobq_err code want. */
#define ck_assert_jobq_err(expr, want)                                                             \
    do {                                                                                           \
        int rc_ = (expr);                                                                          \
        ck_assert_msg(rc_ == (want), "%s returned %s, expected %s", #expr, jobq_errname(rc_),      \
                      jobq_errname(want));                                                         \
    } while (0)

/* Runs `$JOBQ_BIN ARGS...` (args NULL-terminated) with its stdout captured in
 * out (NUL-terminated, at most outlen - 1 bytes). Returns the exit status, or
 * -1 when it did not exit normally. Bounded by alarm(10). */
int jobq_test_cmd(char *out, size_t outlen, const char *const *args);

/* Removes /dev/shm objects jobq-UID-TAG-PID-... whose PID no longer exists
 * (left by an earlier run of a suite that failed half-way). */
void jobq_test_remove_stale_shm(const char *tag);

/* Runs the suite with CK_FORK and returns the process exit status. */
int jobq_test_run(Suite *s);

#endif
