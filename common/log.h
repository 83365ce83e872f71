/*
 * common/log.h: internal logging macros over the public sink of jobq/log.h.
 *
 * The level is checked before the arguments are evaluated, so a disabled
 * DEBUG line costs one comparison. Capture errno before calling anything else
 * when a message should mention it (JOBQ_WARN_ERRNO does this for you).
 */
#ifndef JOBQ_COMMON_LOG_H
#define JOBQ_COMMON_LOG_H

#include "jobq/log.h"

extern int jobq_log_level_max_; /* most verbose level that reaches the sink; -1 = silent */

void jobq_log_at(jobq_log_level level, const char *file, int line, const char *func,
                 const char *fmt, ...) __attribute__((format(printf, 5, 6)));

#define JOBQ_LOG_(lvl, ...)                                                                        \
    do {                                                                                           \
        if ((int)(lvl) <= jobq_log_level_max_)                                                     \
            jobq_log_at((lvl), __FILE__, __LINE__, __func__, __VA_ARGS__);                         \
    } while (0)

#define LOG_ERR(...) JOBQ_LOG_(JOBQ_LOG_ERR, __VA_ARGS__)
#define LOG_WARN(...) JOBQ_LOG_(JOBQ_LOG_WARN, __VA_ARGS__)
#define LOG_NOTICE(...) JOBQ_LOG_(JOBQ_LOG_NOTICE, __VA_ARGS__)
#define LOG_INFO(...) JOBQ_LOG_(JOBQ_LOG_INFO, __VA_ARGS__)
#define LOG_DEBUG(...) JOBQ_LOG_(JOBQ_LOG_DEBUG, __VA_ARGS__)

/* Internal invariant check: logs file:line and aborts. Never use on input that
 * came from a peer, a file or a user. */
#define JOBQ_ASSERT(cond)                                                                          \
    do {                                                                                           \
        if (!(cond))                                                                               \
            jobq_assert_fail(#cond, __FILE__, __LINE__, __func__);                                 \
    } while (0)

_Noreturn void jobq_assert_fail(const char *expr, const char *file, int line, const char *func);

#endif
