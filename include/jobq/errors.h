/*
 * jobq/errors.h: the one error type of the public API.
 *
 * Every public call that can fail returns a jobq_err: JOBQ_OK (0) on success, a
 * positive code otherwise. The same numbers travel on the wire in ERROR replies
 * (docs/PROTOCOL.md), so a code means the same thing in every process.
 * Numbers are stable: new codes are appended, never renumbered.
 */
#ifndef JOBQ_ERRORS_H
#define JOBQ_ERRORS_H

#ifdef __cplusplus
extern "C" {
#endif

typedef enum jobq_err {
    JOBQ_OK = 0,
    JOBQ_EINVAL = 1,        /* an argument is invalid */
    JOBQ_ENOMEM = 2,        /* out of memory (only where degradation is deliberate) */
    JOBQ_ETIMEDOUT = 3,     /* the timeout expired first */
    JOBQ_ECLOSED = 4,       /* the queue or connection is closed */
    JOBQ_EFULL = 5,         /* a bounded queue is full (non-blocking put) */
    JOBQ_EEMPTY = 6,        /* the queue is empty (non-blocking get) */
    JOBQ_EPROTO = 7,        /* a peer sent a malformed or illegal message */
    JOBQ_EVERSION = 8,      /* a peer speaks another protocol or format version */
    JOBQ_ETOOBIG = 9,       /* a payload, frame or name exceeds its limit */
    JOBQ_EURL = 10,         /* a URL could not be parsed or names an unknown scheme */
    JOBQ_ESYS = 11,         /* a system call failed; errno tells which */
    JOBQ_EDUPLICATE = 12,   /* a job with this id or unique key already exists */
    JOBQ_ENOTFOUND = 13,    /* no such job, queue or object */
    JOBQ_ESTALE = 14,       /* an ack or result for an attempt that no longer holds the lease */
    JOBQ_EFORBIDDEN = 15,   /* the principal may not do this */
    JOBQ_EQUEUEFULL = 16,   /* the broker refused a job: the queue is at its job or byte limit */
    JOBQ_ENOSPC = 17,       /* the journal is out of disk space */
    JOBQ_EIO = 18,          /* an I/O error (the journal is fail-stopped) */
    JOBQ_ESTATE = 19,       /* the call is not valid in this state (e.g. task_done overflow) */
    JOBQ_EUNSUPPORTED = 20, /* the transport or build does not support this */
    JOBQ_ECORRUPT = 21,     /* stored data failed its checksum or framing */
    JOBQ_EBUSY = 22,        /* the resource is locked or in use by another process */
    JOBQ_EAUTH = 23,        /* authentication failed */
    JOBQ_ERR_COUNT_ = 24    /* one past the last code; not an error */
} jobq_err;

/* Returns a static, human-readable description of err ("unknown error N" text for
 * codes outside the enum goes to a static buffer per thread). Never NULL. */
const char *jobq_strerror(int err);

/* Returns the stable symbolic name of err ("JOBQ_ETIMEDOUT"), or "JOBQ_E?" for
 * unknown codes. Used in logs, JSON output and the wire documentation. */
const char *jobq_errname(int err);

#ifdef __cplusplus
}
#endif
#endif
