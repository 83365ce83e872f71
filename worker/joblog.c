/*
 * worker/joblog.c: the GNU parallel-style job log (worker/joblog.h).
 *
 * Invariants:
 *   1. Each line is written with one fwrite and flushed, so a run killed
 *      half-way leaves whole lines (a torn last line is ignored on reading).
 *   2. A log's index keeps, per Seq, the last line seen for it: a resumed run
 *      appends to the same file, so a later line supersedes an earlier one.
 */
#include "worker/joblog.h"
#include "common/alloc.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define S_HEADER "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n"

struct joblog {
    FILE *f;
};

typedef struct s_entry {
    char *cmd; /* NULL: no line for this Seq */
    int ok;    /* Exitval 0 and Signal 0 */
} s_entry_t;

struct joblog_index {
    s_entry_t *e; /* indexed by Seq */
    size_t n;
};

/* The Command column of an input: tabs, CR and LF become spaces. Caller frees. */
static char *
s_command(const void *in, size_t len)
{
    char *c = jobq_malloc(len + 1);
    for (size_t i = 0; i < len; i++) {
        char ch = ((const char *)in)[i];
        c[i] = ch == '\t' || ch == '\n' || ch == '\r' || ch == '\0' ? ' ' : ch;
    }
    c[len] = '\0';
    return c;
}

joblog_t *
joblog_open(const char *path)
{
    FILE *f = fopen(path, "ae");
    if (!f)
        return NULL;
    struct stat st;
    if (fstat(fileno(f), &st) == 0 && st.st_size == 0) {
        fputs(S_HEADER, f);
        fflush(f);
    }
    joblog_t *jl = jobq_calloc(1, sizeof *jl);
    jl->f = f;
    return jl;
}

int
joblog_write(joblog_t *jl, long long seq, int64_t start_ms, const jobq_result_t *res,
             const void *in, size_t len)
{
    int exitval = res->exit_code;
    if (res->status != JOBQ_STATUS_DONE && exitval == 0 && res->signal == 0)
        exitval = 1; /* failed without an exit code (timed out cooperatively, refused) */
    if (res->status != JOBQ_STATUS_DONE && exitval == 0 && res->signal)
        exitval = -1; /* GNU parallel's value for a job killed by a signal */
    char *cmd = s_command(in, len);
    char head[256];
    int n = snprintf(head, sizeof head, "%lld\t:\t%lld.%03d\t%.3f\t%zu\t%u\t%d\t%d\t", seq,
                     (long long)(start_ms / 1000), (int)(start_ms % 1000),
                     (double)res->duration_us / 1e6, len, (unsigned)res->output_len, exitval,
                     (int)res->signal);
    size_t clen = strlen(cmd);
    char *line = jobq_malloc((size_t)n + clen + 2);
    memcpy(line, head, (size_t)n);
    memcpy(line + n, cmd, clen);
    line[(size_t)n + clen] = '\n';
    size_t total = (size_t)n + clen + 1;
    int rc = fwrite(line, 1, total, jl->f) == total && fflush(jl->f) == 0 ? 0 : -1;
    jobq_free(line);
    jobq_free(cmd);
    return rc;
}

void
joblog_close(joblog_t **jl_p)
{
    if (!jl_p || !*jl_p)
        return;
    fclose((*jl_p)->f);
    jobq_free(*jl_p);
    *jl_p = NULL;
}

/* Parses one line into its Seq, ok flag and Command; returns 0 or -1. */
static int
s_parse_line(char *line, long long *seq, int *ok, char **cmd)
{
    char *f[9];
    int k = 0;
    f[k++] = line;
    for (char *p = line; *p && k < 9; p++)
        if (*p == '\t') {
            *p = '\0';
            f[k++] = p + 1;
        }
    if (k < 9)
        return -1;
    char *end;
    errno = 0;
    *seq = strtoll(f[0], &end, 10);
    if (errno || end == f[0] || *end || *seq < 1 || *seq > (1LL << 40))
        return -1;
    *ok = strcmp(f[6], "0") == 0 && strcmp(f[7], "0") == 0;
    *cmd = f[8];
    return 0;
}

joblog_index_t *
joblog_index_load(const char *path)
{
    joblog_index_t *ix = jobq_calloc(1, sizeof *ix);
    FILE *f = fopen(path, "re");
    if (!f)
        return errno == ENOENT ? ix : (jobq_free(ix), NULL);
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while ((len = getline(&line, &cap, f)) >= 0) {
        if (len == 0 || line[len - 1] != '\n')
            continue; /* a torn last line (invariant 1) */
        line[len - 1] = '\0';
        long long seq;
        int ok;
        char *cmd;
        if (s_parse_line(line, &seq, &ok, &cmd) != 0)
            continue; /* the header, or not ours */
        if ((size_t)seq >= ix->n) {
            size_t n = ix->n ? ix->n : 64;
            while (n <= (size_t)seq)
                n *= 2;
            ix->e = jobq_realloc(ix->e, n * sizeof *ix->e);
            memset(ix->e + ix->n, 0, (n - ix->n) * sizeof *ix->e);
            ix->n = n;
        }
        jobq_free(ix->e[seq].cmd); /* invariant 2 */
        ix->e[seq].cmd = jobq_strdup(cmd);
        ix->e[seq].ok = ok;
    }
    free(line);
    fclose(f);
    return ix;
}

int
joblog_index_skip(const joblog_index_t *ix, long long seq, const void *in, size_t len,
                  int failed_too)
{
    if (!ix || seq < 1 || (size_t)seq >= ix->n || !ix->e[seq].cmd)
        return 0;
    const s_entry_t *e = &ix->e[seq];
    if (!e->ok && !failed_too)
        return 0;
    char *cmd = s_command(in, len);
    int same = strcmp(cmd, e->cmd) == 0;
    jobq_free(cmd);
    return same;
}

void
joblog_index_free(joblog_index_t *ix)
{
    if (!ix)
        return;
    for (size_t i = 0; i < ix->n; i++)
        jobq_free(ix->e[i].cmd);
    jobq_free(ix->e);
    jobq_free(ix);
}
