/*
 * common/fault.h: named fault points for crash tests (RELIABILITY.md §3.0).
 *
 * JOBQ_FAULT("shmq.put.locked") placed in code does nothing unless the
 * environment variable JOBQ_FAULT names that point: "name" kills the process
 * with SIGKILL at the first pass, "name:N" at the N-th pass (passes are
 * counted per process). JOBQ_FAULT_CHECK(name) is the same test without the
 * kill: it returns 1 at the chosen pass, for error paths a test wants to force.
 *
 * The variable is read once per process, at the first fault point reached,
 * and again in a child after fork() (so a test child may setenv() between
 * fork and its first call); jobq_fault_reload() re-reads it on demand. When
 * the variable is unset a fault point costs one load and one compare.
 *
 * Fault points of the shm:// queue (keep this list current; common/mqq*.c list
 * the mq:// points at their tops):
 *   shmq.put.locked         put: slot and room taken, inside the lock, not committed
 *   shmq.put.reserved       put of a chunked payload: reserved, lock dropped, before copying
 *   shmq.get.locked         get: ring head popped, inside the lock, not committed
 *   shmq.get.after_take     get: item recorded as taken, lock dropped, before returning
 *   shmq.task_done.locked   task_done: slot being freed, inside the lock
 *   shmq.reclaim.locked     reclaim of a dead holder's item, inside the lock
 *   shmq.result.locked      put_result: inside the lock, not committed
 *   shmq.get_result.locked  get_result: inside the lock, not committed
 *   shmq.repair             repair of a dead owner's section, half-way through the undo log
 *   shmq.create.init        creation of a named queue, before the header is marked ready
 *   shmq.repair.refuse      (CHECK only) the repair reports failure: the queue becomes
 *                           unrecoverable and every call returns JOBQ_ECORRUPT
 */
#ifndef JOBQ_COMMON_FAULT_H
#define JOBQ_COMMON_FAULT_H

/* 0: not read yet in this process, 1: unset or malformed, 2: armed. */
extern int jobq_fault_state_;

/* Returns 1 when the armed fault point is name and this pass is the chosen one. */
int jobq_fault_hit(const char *name);

/* Kills the calling process with SIGKILL. Never returns. */
_Noreturn void jobq_fault_kill(const char *name);

/* Forgets the parsed variable and the pass counter; the next fault point reads
 * JOBQ_FAULT again. */
void jobq_fault_reload(void);

#define JOBQ_FAULT_CHECK(name) (jobq_fault_state_ != 1 && jobq_fault_hit(name))

#define JOBQ_FAULT(name)                                                                           \
    do {                                                                                           \
        if (JOBQ_FAULT_CHECK(name))                                                                \
            jobq_fault_kill(name);                                                                 \
    } while (0)

#endif
