/*
 * common/wire_fast.h: the direct job and result map paths of the codec,
 * private to common/wire.c (common/wire_fast.c says what they accept).
 */
#ifndef JOBQ_COMMON_WIRE_FAST_H
#define JOBQ_COMMON_WIRE_FAST_H

#include "common/wire.h"
#include "jobq/job.h"

#include <msgpack.h>
#include <stdint.h>

/* Decodes job map o into j (initialised by the caller). Returns 1, or 0 when
 * the map is not plainly valid (then j is partly written: re-initialise it).
 * (qok, qok_len) carries the last queue name found valid in the frame. */
int wire_dec_job_fast_(const msgpack_object *o, jobq_job_t *j, const char **qok, uint32_t *qok_len);

/* Decodes result map o into r (initialised by the caller). Returns 1 or 0, as
 * wire_dec_job_fast_. */
int wire_dec_result_fast_(const msgpack_object *o, jobq_result_t *r);

/* Appends job j as a map to pk and returns 1, or returns 0 having written
 * nothing when a field is not plainly valid. (qok, qok_len) caches the last
 * queue name found valid. */
int wire_enc_job_fast_(wire_buf_t *pk, const jobq_job_t *j, const void **qok, uint32_t *qok_len);

/* Appends result r as a map to pk and returns 1, or 0 having written nothing. */
int wire_enc_result_fast_(wire_buf_t *pk, const jobq_result_t *r);

#endif
