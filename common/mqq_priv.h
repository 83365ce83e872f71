/*
 * common/mqq_priv.h: limits and object names of the mq:// transport (common/mqq*.c),
 * shared with its tests. Nothing here is public API.
 *
 * One mq:// queue NAME is three system objects, all owned by the calling uid,
 * created with O_EXCL and mode 0600:
 *   /dev/shm/jobq-mq-UID-NAME      the state segment (counts, in-flight table)
 *   mqueue   /jobq-mq-UID-NAME     the jobs message queue
 *   mqueue   /jobq-mq-UID-NAME:r   the results message queue (':' never occurs in NAME)
 */
#ifndef JOBQ_COMMON_MQQ_PRIV_H
#define JOBQ_COMMON_MQQ_PRIV_H

#include "common/url.h"

#define MQQ_MSGSIZE 8192u  /* bytes per POSIX mq message (msgsize_max on Linux by default) */
#define MQQ_DEPTH_MAX 10u  /* messages per mq (msg_max on Linux by default; no way up here) */
#define MQQ_SLOTS 256u     /* in-flight table: items held or being received at once */
#define MQQ_JOB_HDR 48u    /* bytes of the header in front of each job's payload */
#define MQQ_RESULT_HDR 64u /* bytes of the header in front of each result's output + error */
/* The largest job payload mq:// carries: 8192 - 48 = 8144 bytes. */
#define MQQ_PAYLOAD_MAX (MQQ_MSGSIZE - MQQ_JOB_HDR)
/* The largest output_len + error_len of one result: 8192 - 64 = 8128 bytes. */
#define MQQ_RESULT_MAX (MQQ_MSGSIZE - MQQ_RESULT_HDR)
#define MQQ_SLICE_MS 100 /* longest single sleep: waiters recheck close, orphans, dead peers */

#define MQQ_OBJ_NAME_MAX (JOBQ_URL_NAME_MAX + 32)

typedef struct mqq_names {
    char seg[MQQ_OBJ_NAME_MAX];     /* shm_open name of the state segment */
    char jobs[MQQ_OBJ_NAME_MAX];    /* mq_open name of the jobs queue */
    char results[MQQ_OBJ_NAME_MAX]; /* mq_open name of the results queue */
} mqq_names_t;

/* Fills out with the object names of queue NAME for the calling uid. */
void mqq_names(const char *name, mqq_names_t *out);

#endif
