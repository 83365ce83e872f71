/*
 * common/futex.h: waiting on a 32-bit word in shared memory (Linux futex).
 *
 * These are the process-shared forms (no FUTEX_PRIVATE_FLAG): the word may live
 * in a MAP_SHARED mapping seen by several processes at different addresses.
 * A futex keeps no state of its own, so a waiter killed while it sleeps leaves
 * nothing behind that could block a later waker (unlike a process-shared
 * pthread_cond_t on glibc 2.36: RELIABILITY.md §0 item 4).
 */
#ifndef JOBQ_COMMON_FUTEX_H
#define JOBQ_COMMON_FUTEX_H

#include <stdint.h>

/* Sleeps while *word == expected, for at most timeout_ms (negative: no limit).
 * Returns 0 when woken or when *word already differed, ETIMEDOUT, or EINTR.
 * Spurious returns are possible: callers re-check their condition. */
int jobq_futex_wait(uint32_t *word, uint32_t expected, int64_t timeout_ms);

/* Wakes up to n waiters sleeping on word (INT32_MAX: all). Returns how many. */
int jobq_futex_wake(uint32_t *word, int n);

/* A hint to the CPU inside a spin loop (PAUSE on x86). */
static inline void
jobq_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
