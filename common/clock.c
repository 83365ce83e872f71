/* common/clock.c: clock helpers. */
#include "common/clock.h"

static int64_t
s_ns(clockid_t id)
{
    struct timespec ts;
    clock_gettime(id, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t
jobq_now_ns(void)
{
    return s_ns(CLOCK_MONOTONIC);
}

int64_t
jobq_now_us(void)
{
    return s_ns(CLOCK_MONOTONIC) / 1000;
}

int64_t
jobq_now_ms(void)
{
    return s_ns(CLOCK_MONOTONIC) / 1000000;
}

int64_t
jobq_wall_ms(void)
{
    return s_ns(CLOCK_REALTIME) / 1000000;
}

int64_t
jobq_deadline_ms(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return INT64_MAX;
    return jobq_now_ms() + timeout_ms;
}

int64_t
jobq_remaining_ms(int64_t deadline_ms)
{
    if (deadline_ms == INT64_MAX)
        return -1;
    int64_t left = deadline_ms - jobq_now_ms();
    return left > 0 ? left : 0;
}

void
jobq_ms_to_timespec(int64_t ms, struct timespec *ts)
{
    ts->tv_sec = (time_t)(ms / 1000);
    ts->tv_nsec = (long)(ms % 1000) * 1000000L;
}
