/*
 * broker/journal_int.h: the journal's on-disk format, shared by journal.c
 * (writer), journal_rec.c (record encoding) and journal_read.c (reader).
 * All integers are little-endian. docs/JOURNAL.md describes the same layout.
 *
 * Segment header (32 bytes):
 *   0  magic "JOBQJRNL"   8  u32 version   12 u32 header size (32)
 *   16 u64 segment seq    24 u32 crc32c of bytes 0..23   28 u32 zero
 * Record (8-byte aligned; JRN_REC_HDR bytes of header, then the body, then
 * zero padding to the next multiple of 8):
 *   0 u32 body length   4 u8 type   5..7 zero   8 u32 crc32c of bytes 0..7
 *   12 u32 crc32c of the body
 */
#ifndef JOBQ_BROKER_JOURNAL_INT_H
#define JOBQ_BROKER_JOURNAL_INT_H

#include "broker/journal.h"

#include <string.h>

#define JRN_MAGIC "JOBQJRNL"
#define JRN_VERSION 1u /* bump on any change of the header, framing or a body */
#define JRN_SEG_HDR 32u
#define JRN_REC_HDR 16u
#define JRN_REC_MAX (4u * 1024u * 1024u) /* largest body accepted */
#define JRN_ALIGN(n) (((n) + 7u) & ~(uint64_t)7u)
#define JRN_RESERVE_PER_JOB 512u /* bytes kept free per live job for its completion */

/* Record types. */
enum {
    JRN_SUBMIT = 1, /* a job, whole: id, submitter, times, limits, state, queue, key, payload */
    JRN_STATE = 2,  /* id moved to READY, DELAYED (ready at) or RESERVED (attempt) */
    JRN_DONE = 3,   /* id finished: its result (the job is gone) */
    JRN_DEAD = 4,   /* id went DEAD: its result (the job stays, in the dead set) */
    JRN_DELETE = 5, /* id deleted (at wall time) */
    JRN_FORGET = 6, /* the retained result of id was dropped */
    JRN_PAUSE = 7,  /* queue paused until (wall ms, INT64_MAX: until resumed; 0: resumed) */
    JRN_TYPE_MAX_ = 7
};

/* Fixed parts of the bodies (bytes), before the variable fields. */
#define JRN_SUBMIT_FIXED                                                                           \
    64u /* id16 sub8 ready8 prio4 ttr4 max4 att4 used4 st1 ql1 ul1 0 plen4 backoff4 */
#define JRN_STATE_FIXED 36u /* id16 ready8 att4 used4 st1 0 0 0 */
#define JRN_RESULT_FIXED                                                                           \
    72u /* id16 sub8 fin8 dur8 exit4 sig4 att4 st1 last1 ql1 ul1 del1 000 olen4 elen4 */
#define JRN_DELETE_LEN 24u /* id16 wall8 */
#define JRN_FORGET_LEN 16u
#define JRN_PAUSE_FIXED 16u /* until8 ql1 0*7 */

static inline void
jrn_put32(unsigned char *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline void
jrn_put64(unsigned char *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (unsigned char)(v >> (8 * i));
}

static inline uint32_t
jrn_get32(const unsigned char *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static inline uint64_t
jrn_get64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

/* A growable byte buffer of records. */
typedef struct jrn_buf {
    unsigned char *p;
    size_t len, cap;
} jrn_buf_t;

/* Appends a framed record of type with body len bytes, returning where the
 * body goes (the caller fills it, then calls jrn_rec_seal). */
unsigned char *jrn_rec_begin(jrn_buf_t *b, unsigned type, uint32_t len);
/* Computes the checksums of the record that starts at offset at. */
void jrn_rec_seal(jrn_buf_t *b, size_t at);
/* Writes a segment header for seq into out (JRN_SEG_HDR bytes). */
void jrn_seg_header(unsigned char *out, uint64_t seq);

/* Encoders of one record each (journal_rec.c). off_ms converts the core's
 * clock to wall clock (wall = mono + off_ms; CORE_FOREVER stays INT64_MAX). */
void jrn_enc_submit(jrn_buf_t *b, const core_job_view_t *v, int64_t off_ms);
void jrn_enc_state(jrn_buf_t *b, const core_job_view_t *v, int64_t off_ms);
void jrn_enc_result(jrn_buf_t *b, unsigned type, const core_result_view_t *r, const void *unique,
                    uint32_t unique_len, int64_t off_ms);
void jrn_enc_id(jrn_buf_t *b, unsigned type, const jobq_id_t *id, int64_t wall_ms);
void jrn_enc_pause(jrn_buf_t *b, const char *q, uint32_t qlen, int64_t until_ms, int64_t off_ms);

/* The batch policy's sync thread (journal_sync.c). */
typedef struct jrn_syncer jrn_syncer_t;
/* Starts the thread; NULL if it cannot be created (the journal then syncs
 * inline). */
jrn_syncer_t *jrn_syncer_new(void);
/* Stops and joins the thread (after the sync that runs), frees; NULL-safe. */
void jrn_syncer_destroy(jrn_syncer_t **self_p);
/* Asks for fdatasync(fd) covering the logical end upto (returns at once). */
void jrn_syncer_request(jrn_syncer_t *s, int fd, uint64_t upto);
/* Returns once no sync runs or is pending (or one failed). */
void jrn_syncer_wait_idle(jrn_syncer_t *s);
/* How far it synced, the errno of its first failure (0: none), its fdatasync calls. */
void jrn_syncer_poll(jrn_syncer_t *s, uint64_t *done, int *err, uint64_t *syncs);

/* Size of a SUBMIT record (framing included) of a job with these lengths. */
uint64_t jrn_submit_size(uint32_t queue_len, uint32_t unique_len, uint32_t payload_len);

#endif
