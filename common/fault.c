/*
 * common/fault.c: the JOBQ_FAULT environment switch of common/fault.h.
 *
 * State is per process: the parsed name, the pass it fires at and the passes
 * seen so far. A pthread_atfork child handler resets it, so a forked child
 * reads the variable afresh (tests set it between fork and the faulting call).
 * Threads may race on the pass counter; fault tests drive one thread.
 */
#include "common/fault.h"
#include "common/log.h"

#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

#define S_NAME_MAX 64

int jobq_fault_state_;
static char s_name[S_NAME_MAX];
static unsigned long s_at;     /* the pass that fires, 1-based */
static unsigned long s_passes; /* passes through the armed point so far */
static pthread_once_t s_once = PTHREAD_ONCE_INIT;

static void
s_child_reset(void)
{
    jobq_fault_state_ = 0;
}

static void
s_register(void)
{
    pthread_atfork(NULL, NULL, s_child_reset);
}

static void
s_load(void)
{
    pthread_once(&s_once, s_register);
    const char *env = getenv("JOBQ_FAULT");
    s_passes = 0;
    s_at = 1;
    s_name[0] = '\0';
    if (!env || !*env) {
        jobq_fault_state_ = 1;
        return;
    }
    const char *colon = strchr(env, ':');
    size_t len = colon ? (size_t)(colon - env) : strlen(env);
    if (len == 0 || len >= sizeof s_name) {
        jobq_fault_state_ = 1;
        return;
    }
    if (colon) {
        char *end;
        unsigned long n = strtoul(colon + 1, &end, 10);
        if (*end != '\0' || n == 0) {
            jobq_fault_state_ = 1;
            return;
        }
        s_at = n;
    }
    memcpy(s_name, env, len);
    s_name[len] = '\0';
    jobq_fault_state_ = 2;
}

int
jobq_fault_hit(const char *name)
{
    if (jobq_fault_state_ == 0)
        s_load();
    if (jobq_fault_state_ != 2 || strcmp(name, s_name) != 0)
        return 0;
    return ++s_passes == s_at;
}

void
jobq_fault_kill(const char *name)
{
    LOG_DEBUG("fault point %s: SIGKILL", name);
    raise(SIGKILL);
    abort(); /* not reached: SIGKILL cannot be caught */
}

void
jobq_fault_reload(void)
{
    jobq_fault_state_ = 0;
}
