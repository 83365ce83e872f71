/* common/log.c: the log sink (silent by default) and the stderr sink for binaries. */
#include "common/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

int jobq_log_level_max_ = -1;
static jobq_log_fn s_fn;
static void *s_arg;

void
jobq_log_set(jobq_log_fn fn, void *arg, jobq_log_level max_level)
{
    s_fn = fn;
    s_arg = arg;
    jobq_log_level_max_ = fn ? (int)max_level : -1;
}

void
jobq_log_at(jobq_log_level level, const char *file, int line, const char *func, const char *fmt,
            ...)
{
    char msg[1024];
    va_list ap;
    if (!s_fn || (int)level > jobq_log_level_max_)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    s_fn(level, file, line, func, msg, s_arg);
}

static const char *const s_level_names[] = {"err", "warn", "notice", "info", "debug"};

void
jobq_log_stderr(jobq_log_level level, const char *file, int line, const char *func, const char *msg,
                void *arg)
{
    const char *name = (unsigned)level < 5 ? s_level_names[level] : "?";
    if (level <= JOBQ_LOG_WARN)
        fprintf(stderr, "jobq[%d]: %s: %s (%s:%d %s)\n", (int)getpid(), name, msg, file, line,
                func);
    else
        fprintf(stderr, "jobq[%d]: %s: %s\n", (int)getpid(), name, msg);
}

int
jobq_log_level_parse(const char *name)
{
    for (int i = 0; i < 5; i++)
        if (strcasecmp(name, s_level_names[i]) == 0)
            return i;
    return -1;
}

void
jobq_assert_fail(const char *expr, const char *file, int line, const char *func)
{
    /* An assertion is a bug in jobq itself: say where, even when no sink is set. */
    fprintf(stderr, "jobq: assertion failed: %s (%s:%d %s)\n", expr, file, line, func);
    abort();
}
