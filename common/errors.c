/* common/errors.c: texts and names for jobq_err codes, and the version string. */
#include "jobq/errors.h"
#include "jobq/version.h"

#include <stdio.h>

static const struct {
    const char *name;
    const char *text;
} s_errors[JOBQ_ERR_COUNT_] = {
    [JOBQ_OK] = {"JOBQ_OK", "success"},
    [JOBQ_EINVAL] = {"JOBQ_EINVAL", "invalid argument"},
    [JOBQ_ENOMEM] = {"JOBQ_ENOMEM", "out of memory"},
    [JOBQ_ETIMEDOUT] = {"JOBQ_ETIMEDOUT", "timed out"},
    [JOBQ_ECLOSED] = {"JOBQ_ECLOSED", "queue or connection closed"},
    [JOBQ_EFULL] = {"JOBQ_EFULL", "queue is full"},
    [JOBQ_EEMPTY] = {"JOBQ_EEMPTY", "queue is empty"},
    [JOBQ_EPROTO] = {"JOBQ_EPROTO", "protocol error: malformed or illegal message"},
    [JOBQ_EVERSION] = {"JOBQ_EVERSION", "unsupported protocol or format version"},
    [JOBQ_ETOOBIG] = {"JOBQ_ETOOBIG", "too big: a payload, frame or name exceeds its limit"},
    [JOBQ_EURL] = {"JOBQ_EURL", "bad URL"},
    [JOBQ_ESYS] = {"JOBQ_ESYS", "system call failed"},
    [JOBQ_EDUPLICATE] = {"JOBQ_EDUPLICATE", "duplicate job id or unique key"},
    [JOBQ_ENOTFOUND] = {"JOBQ_ENOTFOUND", "not found"},
    [JOBQ_ESTALE] = {"JOBQ_ESTALE", "stale lease: the attempt no longer holds the job"},
    [JOBQ_EFORBIDDEN] = {"JOBQ_EFORBIDDEN", "forbidden for this principal"},
    [JOBQ_EQUEUEFULL] = {"JOBQ_EQUEUEFULL", "queue is at its job or byte limit"},
    [JOBQ_ENOSPC] = {"JOBQ_ENOSPC", "no space left for the journal"},
    [JOBQ_EIO] = {"JOBQ_EIO", "I/O error"},
    [JOBQ_ESTATE] = {"JOBQ_ESTATE", "operation not valid in this state"},
    [JOBQ_EUNSUPPORTED] = {"JOBQ_EUNSUPPORTED", "not supported by this transport or build"},
    [JOBQ_ECORRUPT] = {"JOBQ_ECORRUPT", "data is corrupt"},
    [JOBQ_EBUSY] = {"JOBQ_EBUSY", "resource busy or locked"},
    [JOBQ_EAUTH] = {"JOBQ_EAUTH", "authentication failed"},
};

const char *
jobq_strerror(int err)
{
    static _Thread_local char unknown[32];
    if (err >= 0 && err < JOBQ_ERR_COUNT_ && s_errors[err].text)
        return s_errors[err].text;
    snprintf(unknown, sizeof unknown, "unknown error %d", err);
    return unknown;
}

const char *
jobq_errname(int err)
{
    if (err >= 0 && err < JOBQ_ERR_COUNT_ && s_errors[err].name)
        return s_errors[err].name;
    return "JOBQ_E?";
}

const char *
jobq_version(void)
{
#define S_STR2(x) #x
#define S_STR(x) S_STR2(x)
    return S_STR(JOBQ_VERSION_MAJOR) "." S_STR(JOBQ_VERSION_MINOR) "." S_STR(JOBQ_VERSION_PATCH);
}
