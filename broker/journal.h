/*
 * broker/journal.h: the broker's append-only journal (docs/JOURNAL.md).
 *
 * A directory of segment files seg-SEQ.jrn (a 32-byte header with magic and
 * format version, then records framed as length + type + header CRC32C +
 * body CRC32C + body, 8-byte aligned) and a lock file. The journal listens to
 * the core's change hook (broker/core.h) and appends one record per state
 * change to an in-memory buffer; the reactor writes the buffer out with
 * journal_write / journal_commit, the latter also syncing per the policy:
 *
 *   always    fdatasync at every commit that wrote something (group commit:
 *             the reactor commits once per pass, then sends the acks)
 *   batch:MS  write at every commit; fdatasync when the oldest unsynced
 *             write is MS old (journal_due_ms gives the deadline for the poll)
 *   never     write only; the kernel syncs when it likes
 *
 * Opening replays every segment into the core (journal_read.c), then writes a
 * snapshot of the live state into a new segment and deletes the old ones; the
 * same snapshot bounds the journal's size while it runs (compaction, when the
 * segments hold more than 2x the live state plus one segment).
 *
 * Failure behaviour: journal_admit refuses submits (JOBQ_ENOSPC) when the
 * disk cannot take their records plus a reserve for finishing every live job
 * (the space is preallocated with fallocate, so the records of existing jobs
 * still fit); an fdatasync or write error other than ENOSPC fail-stops the
 * journal (JOBQ_EIO from then on, never retried). Not thread-safe: the
 * reactor thread owns it.
 */
#ifndef JOBQ_BROKER_JOURNAL_H
#define JOBQ_BROKER_JOURNAL_H

#include "broker/core.h"

#include <stddef.h>
#include <stdint.h>

typedef struct journal journal_t;

typedef enum journal_policy {
    JOURNAL_ALWAYS = 0,
    JOURNAL_BATCH = 1,
    JOURNAL_NEVER = 2
} journal_policy;

#define JOURNAL_BATCH_DEFAULT_MS 50
#define JOURNAL_SEGMENT_DEFAULT (64u * 1024u * 1024u) /* bytes before a new segment */
#define JOURNAL_SEGMENT_MIN (64u * 1024u)

typedef struct journal_opts {
    const char *dir;       /* created 0700 when missing */
    journal_policy policy; /* when to fdatasync */
    int64_t batch_ms;      /* JOURNAL_BATCH: longest time a write stays unsynced */
    uint64_t segment_bytes;
    int recover; /* truncate at a checksum failure instead of refusing to start */
} journal_opts_t;

typedef struct journal_stats {
    journal_policy policy;
    int64_t batch_ms;
    uint64_t bytes;    /* bytes in the segments now */
    uint64_t segments; /* segment files now */
    uint64_t syncs;    /* fdatasync calls */
    uint64_t writes;   /* write calls */
    uint64_t records;  /* records appended since start (snapshots included) */
    uint64_t compactions;
    uint64_t refused_nospace; /* journal_admit refusals */
    uint64_t replayed;        /* records read at start */
    int failed;               /* 0, or the jobq_err that fail-stopped it */
    uint64_t segment;         /* SEQ of the current segment (the one being appended to) */
    uint64_t synced_offset;   /* its bytes known to be on disk (fdatasync returned): a power
                                 loss keeps at least this prefix (0: none of it yet) */
} journal_stats_t;

/* Fills opts with the defaults: policy batch:50, 64 MiB segments, no dir. */
void journal_opts_init(journal_opts_t *opts);

/* Parses "always", "never", "batch" or "batch:MS" into *policy and *batch_ms.
 * Returns 0 or -1. */
int journal_policy_parse(const char *text, journal_policy *policy, int64_t *batch_ms);

/* Opens the journal directory, locks it, replays it into core (which should
 * be empty), writes a snapshot segment, deletes the replayed segments and
 * installs the core hook. now_ms is the core's clock. Returns JOBQ_OK with
 * *out set; JOBQ_EBUSY when another process holds the lock ("journal
 * locked"); JOBQ_ECORRUPT for a checksum failure before the tail (why names
 * the file and offset) unless opts->recover; JOBQ_EVERSION for a segment with
 * a bad header or an unknown format version (left untouched); JOBQ_EFORBIDDEN
 * for a symlink or a file of another kind where a journal file belongs;
 * JOBQ_ESYS otherwise. why gets a one-line reason. */
int journal_open(const journal_opts_t *opts, core_t *core, int64_t now_ms, journal_t **out,
                 char *why, size_t why_len);

/* Writes and syncs what is buffered, removes the core hook, closes the files
 * and releases the lock. NULL-safe; sets *self_p to NULL. */
void journal_close(journal_t **self_p);

/* Says whether submits whose records take about bytes can be accepted now:
 * JOBQ_OK, JOBQ_ENOSPC (no room for them plus the reserve of live jobs), or
 * JOBQ_EIO once fail-stopped. */
int journal_admit(journal_t *j, uint64_t bytes);

/* The journal's logical end (bytes appended so far), for journal_rewind. */
uint64_t journal_mark(const journal_t *j);

/* Forgets the records appended after mark (written or not): the caller took
 * back the changes they describe (core_unsubmit). */
void journal_rewind(journal_t *j, uint64_t mark);

/* Writes what is buffered (no sync). Returns JOBQ_OK, JOBQ_ENOSPC (nothing
 * lost: the records stay buffered) or JOBQ_EIO (fail-stopped). */
int journal_write(journal_t *j);

/* Writes what is buffered and syncs per the policy (always: now; batch: when
 * due). Then compacts when the segments outgrew the live state. Returns
 * JOBQ_OK when everything appended so far may be acknowledged, JOBQ_ENOSPC
 * when records are still buffered, JOBQ_EIO once fail-stopped. */
int journal_commit(journal_t *j, int64_t now_ms);

/* When the batch policy next needs a sync (monotonic ms), or CORE_FOREVER. */
int64_t journal_due_ms(const journal_t *j);

/* 1 when the journal has fail-stopped. */
int journal_failed(const journal_t *j);

void journal_stats(const journal_t *j, journal_stats_t *st);

/* Bytes the SUBMIT record of a job with these lengths takes (framing
 * included), for journal_admit. */
uint64_t journal_submit_size(uint32_t queue_len, uint32_t unique_len, uint32_t payload_len);

/* The policy's name: "always", "batch" or "never". */
const char *journal_policy_name(journal_policy p);

/* ---- reading (journal_read.c) -------------------------------------------- */

/* How a segment scan ended. */
typedef struct journal_scan {
    uint64_t records; /* valid records */
    uint64_t end;     /* offset after the last valid record */
    uint64_t bad_at;  /* JOBQ_ECORRUPT: offset of the first bad record */
    int torn;         /* 1 when bytes after end were ignored as a torn or zero tail */
} journal_scan_t;

/* Called for each valid record; returns 0 to go on. */
typedef int (*journal_record_fn)(void *arg, unsigned type, const unsigned char *body, uint32_t len);

/* Scans a segment image (header included) of len bytes, calling fn for each
 * record up to the first invalid one. Returns JOBQ_OK (end of data, torn or
 * zero tail included: see scan->torn), JOBQ_EVERSION for a bad header or
 * version, JOBQ_ECORRUPT when a bad record is followed by a valid one
 * (scan->bad_at). Never reads outside [data, data + len). */
int journal_scan_buf(const unsigned char *data, size_t len, journal_record_fn fn, void *arg,
                     journal_scan_t *scan);

/* A replay: records applied to a table of jobs and results, then loaded into
 * a core. */
typedef struct journal_replay journal_replay_t;

journal_replay_t *journal_replay_new(void);
void journal_replay_destroy(journal_replay_t **self_p);

/* The journal_record_fn that applies a record to the replay table (arg is
 * the journal_replay_t). Malformed bodies are skipped and counted. */
int journal_replay_record(void *arg, unsigned type, const unsigned char *body, uint32_t len);

/* Loads the table into core: live jobs (leased ones as READY with the
 * attempt counted), retained results, pauses. Times are converted from wall
 * clock (now_wall_ms) to the core's clock (now_ms). Returns the number of jobs
 * and results that the core refused (logged). */
uint64_t journal_replay_load(journal_replay_t *rp, core_t *core, int64_t now_ms,
                             int64_t now_wall_ms);

/* Jobs and results in the table now. */
void journal_replay_counts(const journal_replay_t *rp, uint64_t *jobs, uint64_t *results);

#endif
