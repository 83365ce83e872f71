/*
 * jobq/log.h: the library is silent unless the application installs a logger.
 *
 * Binaries (the jobq command) install a logger that writes to stderr; embedded
 * users may install their own or leave the default, which drops everything.
 */
#ifndef JOBQ_LOG_H
#define JOBQ_LOG_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum jobq_log_level {
    JOBQ_LOG_ERR = 0,
    JOBQ_LOG_WARN = 1,
    JOBQ_LOG_NOTICE = 2,
    JOBQ_LOG_INFO = 3,
    JOBQ_LOG_DEBUG = 4
} jobq_log_level;

/* A log sink. msg is NUL-terminated and valid only during the call; file, line
 * and func name the call site. Must be thread-safe if jobq is used from threads. */
typedef void (*jobq_log_fn)(jobq_log_level level, const char *file, int line, const char *func,
                            const char *msg, void *arg);

/* Installs fn (NULL restores the silent default) and the most verbose level that
 * reaches it. Not thread-safe: call before starting jobq threads. */
void jobq_log_set(jobq_log_fn fn, void *arg, jobq_log_level max_level);

/* A ready-made sink that writes "jobq[pid]: LEVEL message" lines to stderr. */
void jobq_log_stderr(jobq_log_level level, const char *file, int line, const char *func,
                     const char *msg, void *arg);

/* Parses "err", "warn", "notice", "info" or "debug"; returns -1 for anything else. */
int jobq_log_level_parse(const char *name);

#ifdef __cplusplus
}
#endif
#endif
