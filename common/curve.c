/*
 * common/curve.c: CURVE key files and socket setup (see curve.h).
 *
 * Every file is opened with O_NOFOLLOW|O_CLOEXEC and checked through fstat
 * on the open descriptor, so a file swapped between check and read is never
 * read. Buffers that held a secret are wiped before they go out of scope.
 */
#include "common/curve.h"
#include "jobq/errors.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zmq.h>

#define S_FILE_MAX 4096 /* a key file is a few lines */

static int __attribute__((format(printf, 4, 5)))
s_why(int code, char *why, size_t why_len, const char *fmt, ...)
{
    if (why && why_len) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why, why_len, fmt, ap);
        va_end(ap);
    }
    return code;
}

void
jobq_curve_wipe(void *p, size_t n)
{
    volatile unsigned char *v = p;
    while (n--)
        *v++ = 0;
}

/* 1 if s[0..40) is a Z85 key that decodes. */
static int
s_z85_ok(const char *s)
{
    uint8_t bin[32];
    char tmp[JOBQ_Z85_KEY_LEN + 1];
    memcpy(tmp, s, JOBQ_Z85_KEY_LEN);
    tmp[JOBQ_Z85_KEY_LEN] = '\0';
    int ok = strlen(tmp) == JOBQ_Z85_KEY_LEN && zmq_z85_decode(bin, tmp) != NULL;
    jobq_curve_wipe(bin, sizeof bin);
    jobq_curve_wipe(tmp, sizeof tmp);
    return ok;
}

/* Writes text to path, created exclusively with mode. */
static int
s_write_new(const char *path, const char *text, mode_t mode, char *why, size_t why_len)
{
    int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        return s_why(errno == EEXIST ? JOBQ_EDUPLICATE : JOBQ_ESYS, why, why_len,
                     "cannot create %s: %s%s", path, strerror(errno),
                     errno == EEXIST ? " (refusing to overwrite a key)" : "");
    size_t len = strlen(text);
    int ok = fchmod(fd, mode) == 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok) {
        unlink(path);
        return s_why(JOBQ_ESYS, why, why_len, "cannot write %s: %s", path, strerror(e));
    }
    return JOBQ_OK;
}

int
jobq_curve_keygen(const char *base, char *why, size_t why_len)
{
    char kpath[4096], ppath[4096], text[256];
    if (snprintf(kpath, sizeof kpath, "%s.key", base) >= (int)sizeof kpath ||
        snprintf(ppath, sizeof ppath, "%s.pub", base) >= (int)sizeof ppath)
        return s_why(JOBQ_ETOOBIG, why, why_len, "key name too long");
    if (!zmq_has("curve"))
        return s_why(JOBQ_EUNSUPPORTED, why, why_len, "this libzmq has no CURVE support");
    jobq_curve_pair_t kp;
    if (zmq_curve_keypair(kp.pub, kp.sec) != 0)
        return s_why(JOBQ_ESYS, why, why_len, "zmq_curve_keypair: %s", zmq_strerror(errno));
    snprintf(text, sizeof text,
             "# jobq CURVE key pair: keep this file secret (mode 0600).\n"
             "# Give %s.pub to the other side.\n"
             "public %s\nsecret %s\n",
             base, kp.pub, kp.sec);
    int rc = s_write_new(kpath, text, 0600, why, why_len);
    jobq_curve_wipe(text, sizeof text);
    if (rc == JOBQ_OK) {
        snprintf(text, sizeof text, "%s\n", kp.pub);
        rc = s_write_new(ppath, text, 0644, why, why_len);
        if (rc != JOBQ_OK)
            unlink(kpath);
    }
    jobq_curve_wipe(&kp, sizeof kp);
    return rc;
}

int
jobq_curve_check_dir(const char *dir, char *why, size_t why_len)
{
    struct stat st;
    if (stat(dir, &st) != 0)
        return s_why(errno == ENOENT ? JOBQ_ENOTFOUND : JOBQ_ESYS, why, why_len, "%s: %s", dir,
                     strerror(errno));
    if (!S_ISDIR(st.st_mode))
        return s_why(JOBQ_EFORBIDDEN, why, why_len, "%s is not a directory", dir);
    if ((st.st_uid != getuid() && st.st_uid != 0) || (st.st_mode & 022))
        return s_why(JOBQ_EFORBIDDEN, why, why_len,
                     "%s must belong to you and not be group- or world-writable (mode %03o)", dir,
                     (unsigned)(st.st_mode & 0777));
    return JOBQ_OK;
}

/* Checks the directory that holds path. */
static int
s_check_parent(const char *path, char *why, size_t why_len)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, sizeof dir, ".");
    else if (slash == dir)
        dir[1] = '\0';
    else
        *slash = '\0';
    return jobq_curve_check_dir(dir, why, why_len);
}

/* Reads path (O_NOFOLLOW) into buf; with secret, checks owner and mode on
 * the open descriptor first. Returns a jobq_err. */
static int
s_read_file(const char *path, int secret, char *buf, size_t cap, char *why, size_t why_len)
{
    int fd = open(path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0 && errno == ELOOP)
        return s_why(JOBQ_EFORBIDDEN, why, why_len,
                     "key file %s is a symlink: name the file itself", path);
    if (fd < 0)
        return s_why(errno == ENOENT ? JOBQ_ENOTFOUND : JOBQ_ESYS, why, why_len,
                     "cannot open key file %s: %s", path, strerror(errno));
    struct stat st;
    int rc = JOBQ_OK;
    if (fstat(fd, &st) != 0)
        rc = s_why(JOBQ_ESYS, why, why_len, "%s: %s", path, strerror(errno));
    else if (!S_ISREG(st.st_mode))
        rc = s_why(JOBQ_EFORBIDDEN, why, why_len, "%s is not a regular file", path);
    else if (secret && st.st_uid != getuid())
        rc = s_why(JOBQ_EFORBIDDEN, why, why_len, "secret key %s belongs to another user", path);
    else if (secret && (st.st_mode & 077))
        rc = s_why(JOBQ_EFORBIDDEN, why, why_len,
                   "secret key %s is accessible by group or others (mode %03o): chmod 600 it", path,
                   (unsigned)(st.st_mode & 0777));
    ssize_t n = 0;
    if (rc == JOBQ_OK && (n = read(fd, buf, cap - 1)) < 0)
        rc = s_why(JOBQ_ESYS, why, why_len, "cannot read %s: %s", path, strerror(errno));
    close(fd);
    buf[n > 0 ? n : 0] = '\0';
    return rc;
}

/* Finds "word <Z85>" (or, when word is NULL, a bare Z85 line) in text and
 * copies the key into out. Returns 0 or -1. */
static int
s_find_key(const char *text, const char *word, char *out)
{
    size_t wl = word ? strlen(word) : 0;
    for (const char *l = text; l && *l; l = strchr(l, '\n'), l = l ? l + 1 : NULL) {
        const char *k = l;
        if (word) {
            if (strncmp(l, word, wl) != 0 || (l[wl] != ' ' && l[wl] != '\t'))
                continue;
            k = l + wl;
            while (*k == ' ' || *k == '\t')
                k++;
        }
        size_t n = strcspn(k, " \t\r\n");
        if (n == JOBQ_Z85_KEY_LEN && s_z85_ok(k)) {
            memcpy(out, k, JOBQ_Z85_KEY_LEN);
            out[JOBQ_Z85_KEY_LEN] = '\0';
            return 0;
        }
    }
    return -1;
}

int
jobq_curve_load_secret(const char *path, jobq_curve_pair_t *kp, char *why, size_t why_len)
{
    char text[S_FILE_MAX], derived[JOBQ_Z85_KEY_LEN + 1];
    memset(kp, 0, sizeof *kp);
    int rc = s_check_parent(path, why, why_len);
    if (rc == JOBQ_OK)
        rc = s_read_file(path, 1, text, sizeof text, why, why_len);
    if (rc == JOBQ_OK &&
        (s_find_key(text, "secret", kp->sec) != 0 || s_find_key(text, "public", kp->pub) != 0))
        rc = s_why(JOBQ_ECORRUPT, why, why_len,
                   "%s is not a jobq key file (want 'public Z85' and 'secret Z85' lines; "
                   "make one with jobq keygen)",
                   path);
    if (rc == JOBQ_OK && (zmq_curve_public(derived, kp->sec) != 0 || strcmp(derived, kp->pub) != 0))
        rc = s_why(JOBQ_ECORRUPT, why, why_len, "%s: the public key does not match the secret",
                   path);
    jobq_curve_wipe(text, sizeof text);
    if (rc != JOBQ_OK)
        jobq_curve_wipe(kp, sizeof *kp);
    return rc;
}

int
jobq_curve_load_public(const char *path, char *z85, char *why, size_t why_len)
{
    char text[S_FILE_MAX];
    int rc = s_read_file(path, 0, text, sizeof text, why, why_len);
    if (rc == JOBQ_OK && s_find_key(text, "public", z85) != 0 && s_find_key(text, NULL, z85) != 0)
        rc = s_why(JOBQ_ECORRUPT, why, why_len,
                   "%s holds no public key (want one 40-character Z85 line)", path);
    jobq_curve_wipe(text, sizeof text); /* it may have been a .key file */
    return rc;
}

int
jobq_curve_check_client(const char *key_file, const char *server_pub, char *why, size_t why_len)
{
    if (!key_file || !server_pub)
        return s_why(JOBQ_EINVAL, why, why_len,
                     "CURVE needs both a key file (--curve-key) and the server's public key "
                     "file (--curve-server)");
    jobq_curve_pair_t kp;
    char spub[JOBQ_Z85_KEY_LEN + 1];
    int rc = jobq_curve_load_secret(key_file, &kp, why, why_len);
    jobq_curve_wipe(&kp, sizeof kp);
    if (rc == JOBQ_OK)
        rc = jobq_curve_load_public(server_pub, spub, why, why_len);
    return rc;
}

int
jobq_curve_client_setup(void *sock, const char *key_file, const char *server_pub, char *why,
                        size_t why_len)
{
    jobq_curve_pair_t kp;
    char spub[JOBQ_Z85_KEY_LEN + 1];
    int rc = jobq_curve_load_secret(key_file, &kp, why, why_len);
    if (rc == JOBQ_OK)
        rc = jobq_curve_load_public(server_pub, spub, why, why_len);
    if (rc == JOBQ_OK &&
        (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, spub, JOBQ_Z85_KEY_LEN) != 0 ||
         zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, kp.pub, JOBQ_Z85_KEY_LEN) != 0 ||
         zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, kp.sec, JOBQ_Z85_KEY_LEN) != 0))
        rc = s_why(JOBQ_ESYS, why, why_len, "CURVE options refused: %s", zmq_strerror(errno));
    jobq_curve_wipe(&kp, sizeof kp);
    return rc;
}

int
jobq_curve_server_setup(void *sock, const char *z85_secret)
{
    int one = 1;
    if (zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, JOBQ_CURVE_ZAP_DOMAIN,
                       strlen(JOBQ_CURVE_ZAP_DOMAIN)) != 0 ||
        zmq_setsockopt(sock, ZMQ_ZAP_ENFORCE_DOMAIN, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SERVER, &one, sizeof one) != 0 ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z85_secret, JOBQ_Z85_KEY_LEN) != 0)
        return -1;
    return 0;
}

void *
jobq_curve_monitor(void *ctx, void *sock, const char *ep)
{
    if (zmq_socket_monitor(sock, ep,
                           ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
                               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL) != 0)
        return NULL;
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    if (mon && zmq_connect(mon, ep) != 0) {
        zmq_close(mon);
        mon = NULL;
    }
    if (!mon)
        zmq_socket_monitor(sock, NULL, 0);
    return mon;
}

int
jobq_curve_handshake_failed(void *mon)
{
    /* Events are [uint16 event + uint32 value][endpoint] pairs; every event
     * asked for in jobq_curve_monitor is a failure. */
    int failed = 0, first = 1;
    zmq_msg_t f;
    zmq_msg_init(&f);
    while (mon && zmq_msg_recv(&f, mon, ZMQ_DONTWAIT) >= 0) {
        if (first && zmq_msg_size(&f) == 6)
            failed = 1;
        first = !zmq_msg_more(&f);
    }
    zmq_msg_close(&f);
    return failed;
}
