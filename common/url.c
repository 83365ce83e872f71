/* common/url.c: URL parsing; see common/url.h for the grammar. */
#include "common/url.h"
#include "jobq/errors.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int __attribute__((format(printf, 3, 4)))
s_fail(char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return JOBQ_EURL;
}

static int
s_name_ok(const char *s, size_t len)
{
    if (len == 0 || len > JOBQ_URL_NAME_MAX)
        return 0;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return 0;
    }
    return !(len <= 2 && s[0] == '.' && (len == 1 || s[1] == '.'));
}

static int
s_parse_params(const char *q, jobq_url_t *url, char *why, size_t why_len)
{
    while (*q) {
        const char *amp = strchr(q, '&');
        size_t len = amp ? (size_t)(amp - q) : strlen(q);
        const char *eq = memchr(q, '=', len);
        if (!eq || eq == q)
            return s_fail(why, why_len, "query parameter '%.*s' is not key=value", (int)len, q);
        size_t klen = (size_t)(eq - q), vlen = len - klen - 1;
        if (url->nparams == JOBQ_URL_PARAMS_MAX)
            return s_fail(why, why_len, "more than %d query parameters", JOBQ_URL_PARAMS_MAX);
        if (klen >= sizeof url->keys[0] || vlen >= sizeof url->values[0])
            return s_fail(why, why_len, "query parameter '%.*s' is too long", (int)len, q);
        memcpy(url->keys[url->nparams], q, klen);
        memcpy(url->values[url->nparams], eq + 1, vlen);
        url->nparams++;
        q += len + (amp ? 1 : 0);
    }
    return JOBQ_OK;
}

static int
s_parse_local(const char *rest, jobq_url_t *url, char *why, size_t why_len)
{
    const char *qm = strchr(rest, '?');
    size_t len = qm ? (size_t)(qm - rest) : strlen(rest);
    if (len == 0)
        return s_fail(why, why_len, "%s:// needs a NAME", jobq_url_scheme_name(url->scheme));
    if (!s_name_ok(rest, len))
        return s_fail(why, why_len,
                      "bad %s name '%.*s': use 1-%d characters of A-Z a-z 0-9 . _ - (no '/')",
                      jobq_url_scheme_name(url->scheme), (int)len, rest, JOBQ_URL_NAME_MAX);
    memcpy(url->name, rest, len);
    url->name[len] = '\0';
    return qm ? s_parse_params(qm + 1, url, why, why_len) : JOBQ_OK;
}

static int
s_parse_tcp(const char *rest, jobq_url_t *url, char *why, size_t why_len)
{
    const char *colon;
    size_t hlen;
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        if (!close)
            return s_fail(why, why_len, "tcp:// IPv6 host is missing its ']'");
        hlen = (size_t)(close - rest - 1);
        memcpy(url->host, rest + 1, hlen < sizeof url->host ? hlen : 0);
        colon = close + 1;
        if (*colon != ':')
            return s_fail(why, why_len, "tcp:// needs HOST:PORT (no ':' after ']')");
    } else {
        colon = strrchr(rest, ':');
        if (!colon)
            return s_fail(why, why_len, "tcp:// needs HOST:PORT, got '%s'", rest);
        hlen = (size_t)(colon - rest);
        if (memchr(rest, ':', hlen))
            return s_fail(why, why_len, "tcp:// IPv6 hosts must be in brackets: [::1]:PORT");
        if (hlen < sizeof url->host)
            memcpy(url->host, rest, hlen);
    }
    if (hlen == 0)
        return s_fail(why, why_len, "tcp:// host is empty");
    if (hlen >= sizeof url->host)
        return s_fail(why, why_len, "tcp:// host is longer than 255 bytes");
    url->host[hlen] = '\0';
    for (size_t i = 0; i < hlen; i++)
        if (url->host[i] <= ' ' || url->host[i] == '/' || url->host[i] == '?')
            return s_fail(why, why_len, "tcp:// host '%s' has a bad character", url->host);
    const char *port = colon + 1;
    if (strcmp(port, "*") == 0) {
        url->port = 0;
    } else {
        char *end;
        long p = *port ? strtol(port, &end, 10) : -1;
        if (*port == '\0' || *end != '\0' || p < 0 || p > 65535 || *port == '+' || *port == '-')
            return s_fail(why, why_len, "tcp:// port '%s' is not a number from 1 to 65535 or *",
                          port);
        url->port = (int)p;
    }
    if (strchr(url->host, ':'))
        snprintf(url->endpoint, sizeof url->endpoint, "tcp://[%s]:%s", url->host,
                 url->port ? port : "*");
    else
        snprintf(url->endpoint, sizeof url->endpoint, "tcp://%s:%s", url->host,
                 url->port ? port : "*");
    return JOBQ_OK;
}

static int
s_parse_ipc(const char *rest, jobq_url_t *url, char *why, size_t why_len)
{
    size_t len = strlen(rest);
    if (len == 0)
        return s_fail(why, why_len, "ipc:// needs a PATH");
    if (len > JOBQ_URL_IPC_PATH_MAX)
        return s_fail(why, why_len, "ipc:// path is %zu bytes; the limit is %d", len,
                      JOBQ_URL_IPC_PATH_MAX);
    memcpy(url->path, rest, len + 1);
    snprintf(url->endpoint, sizeof url->endpoint, "ipc://%s", rest);
    return JOBQ_OK;
}

int
jobq_url_parse(const char *text, jobq_url_t *url, char *why, size_t why_len)
{
    static const struct {
        const char *prefix;
        jobq_url_scheme scheme;
    } schemes[] = {{"shm://", JOBQ_URL_SHM},
                   {"mq://", JOBQ_URL_MQ},
                   {"tcp://", JOBQ_URL_TCP},
                   {"ipc://", JOBQ_URL_IPC}};
    memset(url, 0, sizeof *url);
    if (why && why_len)
        why[0] = '\0';
    if (!text || !*text)
        return s_fail(why, why_len, "empty URL");
    if (strlen(text) >= JOBQ_URL_MAX)
        return s_fail(why, why_len, "URL longer than %d bytes", JOBQ_URL_MAX - 1);
    for (size_t i = 0; i < sizeof schemes / sizeof schemes[0]; i++) {
        size_t plen = strlen(schemes[i].prefix);
        if (strncmp(text, schemes[i].prefix, plen) != 0)
            continue;
        url->scheme = schemes[i].scheme;
        const char *rest = text + plen;
        switch (url->scheme) {
        case JOBQ_URL_SHM:
        case JOBQ_URL_MQ:
            return s_parse_local(rest, url, why, why_len);
        case JOBQ_URL_TCP:
            return s_parse_tcp(rest, url, why, why_len);
        case JOBQ_URL_IPC:
            return s_parse_ipc(rest, url, why, why_len);
        }
    }
    const char *sep = strstr(text, "://");
    if (sep)
        return s_fail(why, why_len, "unknown scheme '%.*s': use shm://, mq://, tcp:// or ipc://",
                      (int)(sep - text), text);
    return s_fail(why, why_len,
                  "'%s' has no scheme: use shm://NAME, mq://NAME, tcp://HOST:PORT "
                  "or ipc://PATH",
                  text);
}

const char *
jobq_url_param(const jobq_url_t *url, const char *key)
{
    for (int i = 0; i < url->nparams; i++)
        if (strcmp(url->keys[i], key) == 0)
            return url->values[i];
    return NULL;
}

const char *
jobq_url_scheme_name(jobq_url_scheme scheme)
{
    static const char *const names[] = {"shm", "mq", "tcp", "ipc"};
    return (unsigned)scheme < 4 ? names[scheme] : "?";
}
