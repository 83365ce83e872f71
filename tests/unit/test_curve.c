/* tests/unit/test_curve.c: CURVE key files: keygen, loading, the permission
 * and format checks, and that error texts never carry key material. */
#include "common/curve.h"
#include "jobq_test.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

static char s_dir[256], s_base[300], s_key[320], s_pub[320], why[512];

static void
s_setup(void)
{
    snprintf(s_dir, sizeof s_dir, "/tmp/jobq-curve-%d-XXXXXX", (int)getpid());
    ck_assert_ptr_nonnull(mkdtemp(s_dir));
    snprintf(s_base, sizeof s_base, "%s/k", s_dir);
    snprintf(s_key, sizeof s_key, "%s.key", s_base);
    snprintf(s_pub, sizeof s_pub, "%s.pub", s_base);
}

static void
s_teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", s_dir);
    ck_assert_int_eq(system(cmd), 0);
}

static void
s_write(const char *path, const char *text, mode_t mode)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
    ck_assert_int_ge(fd, 0);
    ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
    close(fd);
    chmod(path, mode);
}

START_TEST(test_keygen_writes_a_pair_that_loads_back)
{
    ck_assert_jobq_ok(jobq_curve_keygen(s_base, why, sizeof why));
    jobq_curve_pair_t kp;
    char pub[JOBQ_Z85_KEY_LEN + 1], derived[JOBQ_Z85_KEY_LEN + 1];
    ck_assert_jobq_ok(jobq_curve_load_secret(s_key, &kp, why, sizeof why));
    ck_assert_jobq_ok(jobq_curve_load_public(s_pub, pub, why, sizeof why));
    ck_assert_str_eq(kp.pub, pub);
    ck_assert_int_eq(zmq_curve_public(derived, kp.sec), 0);
    ck_assert_str_eq(derived, pub);
    ck_assert_jobq_ok(jobq_curve_load_public(s_key, pub, why, sizeof why)); /* a .key will do */
    ck_assert_str_eq(kp.pub, pub);
    struct stat st;
    ck_assert_int_eq(stat(s_key, &st), 0);
    ck_assert_int_eq(st.st_mode & 0777, 0600);
}
END_TEST

START_TEST(test_keygen_never_overwrites)
{
    ck_assert_jobq_ok(jobq_curve_keygen(s_base, why, sizeof why));
    ck_assert_jobq_err(jobq_curve_keygen(s_base, why, sizeof why), JOBQ_EDUPLICATE);
    unlink(s_key); /* .pub still there: nothing new is left behind */
    ck_assert_jobq_err(jobq_curve_keygen(s_base, why, sizeof why), JOBQ_EDUPLICATE);
    ck_assert_int_ne(access(s_key, F_OK), 0);
}
END_TEST

START_TEST(test_a_secret_key_readable_by_others_is_refused_without_leaking_it)
{
    ck_assert_jobq_ok(jobq_curve_keygen(s_base, why, sizeof why));
    jobq_curve_pair_t kp;
    ck_assert_jobq_ok(jobq_curve_load_secret(s_key, &kp, why, sizeof why));
    char sec[JOBQ_Z85_KEY_LEN + 1];
    memcpy(sec, kp.sec, sizeof sec);
    ck_assert_int_eq(chmod(s_key, 0640), 0);
    ck_assert_jobq_err(jobq_curve_load_secret(s_key, &kp, why, sizeof why), JOBQ_EFORBIDDEN);
    ck_assert_ptr_nonnull(strstr(why, "chmod 600"));
    ck_assert_ptr_null(strstr(why, sec));
    ck_assert_int_eq(kp.sec[0], 0); /* wiped on failure */
}
END_TEST

START_TEST(test_a_key_in_a_group_writable_directory_is_refused)
{
    ck_assert_jobq_ok(jobq_curve_keygen(s_base, why, sizeof why));
    ck_assert_int_eq(chmod(s_dir, 0770), 0);
    jobq_curve_pair_t kp;
    ck_assert_jobq_err(jobq_curve_load_secret(s_key, &kp, why, sizeof why), JOBQ_EFORBIDDEN);
    ck_assert_ptr_nonnull(strstr(why, "group- or world-writable"));
    ck_assert_jobq_err(jobq_curve_check_dir(s_dir, why, sizeof why), JOBQ_EFORBIDDEN);
}
END_TEST

START_TEST(test_a_symlinked_key_is_refused)
{
    ck_assert_jobq_ok(jobq_curve_keygen(s_base, why, sizeof why));
    char link[400];
    snprintf(link, sizeof link, "%s/link.key", s_dir);
    ck_assert_int_eq(symlink(s_key, link), 0);
    jobq_curve_pair_t kp;
    ck_assert_jobq_err(jobq_curve_load_secret(link, &kp, why, sizeof why), JOBQ_EFORBIDDEN);
}
END_TEST

START_TEST(test_malformed_and_mismatched_key_files_are_refused)
{
    jobq_curve_pair_t kp, other;
    char pub[JOBQ_Z85_KEY_LEN + 1];
    s_write(s_key, "public abc\nsecret def\n", 0600);
    ck_assert_jobq_err(jobq_curve_load_secret(s_key, &kp, why, sizeof why), JOBQ_ECORRUPT);
    s_write(s_pub, "not a key\n", 0644);
    ck_assert_jobq_err(jobq_curve_load_public(s_pub, pub, why, sizeof why), JOBQ_ECORRUPT);
    ck_assert_int_eq(zmq_curve_keypair(kp.pub, kp.sec), 0);
    ck_assert_int_eq(zmq_curve_keypair(other.pub, other.sec), 0);
    char text[200];
    snprintf(text, sizeof text, "public %s\nsecret %s\n", other.pub, kp.sec);
    s_write(s_key, text, 0600);
    ck_assert_jobq_err(jobq_curve_load_secret(s_key, &kp, why, sizeof why), JOBQ_ECORRUPT);
    ck_assert_ptr_nonnull(strstr(why, "does not match"));
    ck_assert_jobq_err(jobq_curve_check_client(s_key, NULL, why, sizeof why), JOBQ_EINVAL);
    ck_assert_jobq_err(jobq_curve_load_public("/nonexistent/x.pub", pub, why, sizeof why),
                       JOBQ_ENOTFOUND);
}
END_TEST

static Suite *
s_suite(void)
{
    Suite *s = suite_create("curve");
    TCase *tc = tcase_create("keys");
    tcase_add_checked_fixture(tc, s_setup, s_teardown);
    tcase_add_test(tc, test_keygen_writes_a_pair_that_loads_back);
    tcase_add_test(tc, test_keygen_never_overwrites);
    tcase_add_test(tc, test_a_secret_key_readable_by_others_is_refused_without_leaking_it);
    tcase_add_test(tc, test_a_key_in_a_group_writable_directory_is_refused);
    tcase_add_test(tc, test_a_symlinked_key_is_refused);
    tcase_add_test(tc, test_malformed_and_mismatched_key_files_are_refused);
    suite_add_tcase(s, tc);
    return s;
}

int
main(void)
{
    return jobq_test_run(s_suite());
}
