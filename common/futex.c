/* common/futex.c: the futex system calls behind common/futex.h. */
#include "common/futex.h"
#include "common/clock.h"

#include <errno.h>
#include <linux/futex.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

int
jobq_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ms)
{
    struct timespec ts, *tsp = NULL;
    if (timeout_ms >= 0) {
        jobq_ms_to_timespec(timeout_ms, &ts);
        tsp = &ts;
    }
    if (syscall(SYS_futex, word, FUTEX_WAIT, expected, tsp, NULL, 0) == 0)
        return 0;
    if (errno == EAGAIN)
        return 0; /* the word had already changed */
    return errno == ETIMEDOUT ? ETIMEDOUT : EINTR;
}

int
jobq_futex_wake(uint32_t *word, int n)
{
    long rc = syscall(SYS_futex, word, FUTEX_WAKE, n, NULL, NULL, 0);
    return rc < 0 ? 0 : (int)rc;
}
