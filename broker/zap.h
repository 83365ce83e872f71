/*
 * broker/zap.h: the broker's ZAP handler (ZeroMQ RFC 27): an actor thread
 * with a REP socket bound to inproc://zeromq.zap.01 in the broker's ZeroMQ
 * context that admits a CURVE client only when its public key is in the
 * allow-list directory, answering 200 with the principal as User-Id, and
 * 400 otherwise (logged, with the client's address and public key; never a
 * secret).
 *
 * Allow-list: every regular file DIR/PRINCIPAL.pub (jobq keygen's format)
 * names one principal. PRINCIPAL is 1-64 characters of [A-Za-z0-9._-]; other
 * files are ignored, a malformed .pub file refuses to start. The directory
 * must not be group- or world-writable. It is read once, at start.
 *
 * Fail-closed: the broker's CURVE sockets set ZMQ_ZAP_ENFORCE_DOMAIN, so
 * when this thread is absent, stalled or gone every handshake fails. The
 * fault points "zap.off" (CHECK: zap_start binds nothing and starts no
 * thread) and "zap.stall[:N]" (CHECK: from the N-th request on, the thread
 * answers nothing) let tests prove it (common/fault.h).
 */
#ifndef JOBQ_BROKER_ZAP_H
#define JOBQ_BROKER_ZAP_H

#include <stddef.h>
#include <stdint.h>

typedef struct zap zap_t;

/* Loads the allow-list in dir, binds the ZAP endpoint in ctx and starts the
 * thread. Must run before any CURVE socket of ctx binds. On success *out
 * owns the handler (zap_stop); on failure *out is NULL and why says why.
 * Returns JOBQ_OK, JOBQ_EFORBIDDEN (directory permissions), JOBQ_ECORRUPT (a
 * bad .pub file), JOBQ_ENOTFOUND, JOBQ_EBUSY (the ZAP endpoint is taken) or
 * JOBQ_ESYS. */
int zap_start(void *ctx, const char *dir, zap_t **out, char *why, size_t why_len);

/* Number of principals in the allow-list. */
uint32_t zap_principals(const zap_t *z);

/* Handshakes admitted and denied so far (read from another thread). */
void zap_counts(const zap_t *z, uint64_t *allowed, uint64_t *denied);

/* Stops the thread ($TERM on its pipe), closes its sockets and frees it.
 * Call before the context is terminated. NULL-safe; sets *self_p to NULL. */
void zap_stop(zap_t **self_p);

#endif
