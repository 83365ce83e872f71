/*
 * common/url.h: parsing of the transport URLs every jobq entry point accepts.
 *
 *   shm://NAME[?k=v&...]   NAME: 1-200 bytes of [A-Za-z0-9._-]
 *   mq://NAME[?k=v&...]    same NAME rules
 *   tcp://HOST:PORT        HOST: name, IPv4, [IPv6] or * (bind only); PORT 1-65535 or * / 0 (bind)
 *   ipc://PATH             PATH: 1-107 bytes (the sun_path limit)
 *
 * A bad URL yields JOBQ_EURL and a message that names what is wrong.
 */
#ifndef JOBQ_COMMON_URL_H
#define JOBQ_COMMON_URL_H

#include <stddef.h>
#include <stdint.h>

typedef enum jobq_url_scheme {
    JOBQ_URL_SHM = 0,
    JOBQ_URL_MQ = 1,
    JOBQ_URL_TCP = 2,
    JOBQ_URL_IPC = 3
} jobq_url_scheme;

#define JOBQ_URL_MAX 512
#define JOBQ_URL_NAME_MAX 200
#define JOBQ_URL_IPC_PATH_MAX 107
#define JOBQ_URL_PARAMS_MAX 8

typedef struct jobq_url {
    jobq_url_scheme scheme;
    char name[JOBQ_URL_NAME_MAX + 1];     /* shm/mq NAME */
    char host[256];                       /* tcp HOST without brackets; "*" = any */
    int port;                             /* tcp port; 0 = any (bind only) */
    char path[JOBQ_URL_IPC_PATH_MAX + 1]; /* ipc PATH */
    char endpoint[JOBQ_URL_MAX];          /* tcp/ipc: the ZeroMQ endpoint string */
    int nparams;                          /* shm/mq query parameters */
    char keys[JOBQ_URL_PARAMS_MAX][32];
    char values[JOBQ_URL_PARAMS_MAX][64];
} jobq_url_t;

/* Parses text into url. Returns JOBQ_OK, or JOBQ_EURL with a NUL-terminated
 * explanation in why (why may be NULL). url is fully overwritten. */
int jobq_url_parse(const char *text, jobq_url_t *url, char *why, size_t why_len);

/* Returns the value of query parameter key, or NULL if absent. */
const char *jobq_url_param(const jobq_url_t *url, const char *key);

/* Returns "shm", "mq", "tcp" or "ipc". */
const char *jobq_url_scheme_name(jobq_url_scheme scheme);

#endif
