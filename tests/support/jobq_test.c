/* tests/support/jobq_test.c: the shared runner for check suites. */
#include "jobq_test.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

int
jobq_test_run(Suite *s)
{
    SRunner *sr = srunner_create(s);
    srunner_set_fork_status(sr, CK_FORK);
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

/* Runs `$JOBQ_BIN ARGS...` with its stdout in out (NUL-terminated); returns the
 * exit status, or -1. Bounded by alarm(10). */
int
jobq_test_cmd(char *out, size_t outlen, const char *const *args)
{
    const char *bin = getenv("JOBQ_BIN");
    const char *argv[24] = {bin};
    size_t n = 1;
    for (size_t i = 0; args[i] && n < 23; i++)
        argv[n++] = args[i];
    argv[n] = NULL;
    int fds[2];
    ck_assert_int_eq(pipe(fds), 0);
    pid_t pid = fork();
    if (pid == 0) {
        dup2(fds[1], 1);
        close(fds[0]);
        execv(bin, (char *const *)argv);
        _exit(127);
    }
    close(fds[1]);
    size_t len = 0;
    ssize_t k;
    alarm(10);
    while (len + 1 < outlen && (k = read(fds[0], out + len, outlen - 1 - len)) > 0)
        len += (size_t)k;
    out[len] = '\0';
    close(fds[0]);
    int st;
    waitpid(pid, &st, 0);
    alarm(0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

/* Removes /dev/shm objects named jobq-UID-TAG-PID-... whose PID is gone: what
 * an earlier run of a suite left behind when it failed half-way. */
void
jobq_test_remove_stale_shm(const char *tag)
{
    char prefix[64];
    snprintf(prefix, sizeof prefix, "jobq-%u-%s-", (unsigned)geteuid(), tag);
    DIR *d = opendir("/dev/shm");
    for (struct dirent *e; d && (e = readdir(d)) != NULL;) {
        const char *pid = strncmp(e->d_name, prefix, strlen(prefix))
                              ? NULL
                              : strchr(e->d_name + strlen(prefix), '-');
        if (pid && kill((pid_t)atoi(pid + 1), 0) != 0 && errno == ESRCH) {
            char obj[300];
            snprintf(obj, sizeof obj, "/%s", e->d_name);
            shm_unlink(obj);
        }
    }
    if (d)
        closedir(d);
}
