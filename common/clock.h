/* common/clock.h: monotonic and wall time. Units are in the names. */
#ifndef JOBQ_COMMON_CLOCK_H
#define JOBQ_COMMON_CLOCK_H

#include <stdint.h>
#include <time.h>

/* Milliseconds / microseconds / nanoseconds on CLOCK_MONOTONIC. */
int64_t jobq_now_ms(void);
int64_t jobq_now_us(void);
int64_t jobq_now_ns(void);
/* Milliseconds since the Unix epoch (CLOCK_REALTIME), for records shown to people. */
int64_t jobq_wall_ms(void);
/* Returns the absolute CLOCK_MONOTONIC deadline timeout_ms from now; a negative
 * timeout means "forever" and gives INT64_MAX. */
int64_t jobq_deadline_ms(int64_t timeout_ms);
/* Milliseconds left until deadline_ms (0 if past, -1 if deadline_ms is INT64_MAX). */
int64_t jobq_remaining_ms(int64_t deadline_ms);
/* Fills ts with a relative timespec of ms milliseconds. */
void jobq_ms_to_timespec(int64_t ms, struct timespec *ts);

#endif
