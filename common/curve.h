/*
 * common/curve.h: CURVE key files (written by `jobq keygen`, read by the
 * broker and every client) and the socket options that use them.
 *
 * File formats (docs/SECURITY.md "Key files"):
 *   NAME.pub  one line: the 40-character Z85 public key, then a newline.
 *   NAME.key  "# jobq CURVE key pair ..." comment lines, then
 *             "public <Z85>" and "secret <Z85>" lines. Mode 0600; the broker
 *             and the clients refuse a secret file readable or writable by
 *             group or others, or kept in a group- or world-writable
 *             directory. A .key file holds the public half too, so a client
 *             needs one file for its own identity.
 * A public-key reader also accepts a .key file (it takes the public line),
 * so the broker's .key can stand in for its .pub on the same machine.
 *
 * Invariants: secret keys live only in caller-provided buffers, which the
 * setsockopt helpers zero before returning; nothing here logs a key.
 */
#ifndef JOBQ_COMMON_CURVE_H
#define JOBQ_COMMON_CURVE_H

#include <stddef.h>

#define JOBQ_Z85_KEY_LEN 40          /* characters of a Z85 CURVE key */
#define JOBQ_CURVE_ZAP_DOMAIN "jobq" /* ZMQ_ZAP_DOMAIN of every CURVE socket */
#define JOBQ_CURVE_ZAP_ENDPOINT "inproc://zeromq.zap.01"

#ifndef ZMQ_ZAP_ENFORCE_DOMAIN
#define ZMQ_ZAP_ENFORCE_DOMAIN 93 /* draft in Debian's header; the 4.3 library accepts it */
#endif

/* A key pair in Z85, each NUL-terminated. Zero it with jobq_curve_wipe. */
typedef struct jobq_curve_pair {
    char pub[JOBQ_Z85_KEY_LEN + 1];
    char sec[JOBQ_Z85_KEY_LEN + 1];
} jobq_curve_pair_t;

/* Writes a fresh key pair to base.key (0600, O_CREAT|O_EXCL|O_NOFOLLOW, so an
 * existing file or symlink is refused) and base.pub (0644, same flags). On
 * failure nothing is left behind. Returns JOBQ_OK, JOBQ_EDUPLICATE (a file
 * exists), JOBQ_EUNSUPPORTED (no CURVE in libzmq) or JOBQ_ESYS; why gets the
 * reason. */
int jobq_curve_keygen(const char *base, char *why, size_t why_len);

/* Loads a secret key file into *kp after checking its mode (no group/other
 * bits), owner (the caller) and directory (not group- or world-writable),
 * and that its public line matches the secret. Returns JOBQ_OK,
 * JOBQ_EFORBIDDEN (permissions), JOBQ_ECORRUPT (format), JOBQ_ENOTFOUND or
 * JOBQ_ESYS, with a reason in why that never contains key material. */
int jobq_curve_load_secret(const char *path, jobq_curve_pair_t *kp, char *why, size_t why_len);

/* Loads a public key file (a .pub, or the public line of a .key) into
 * z85[JOBQ_Z85_KEY_LEN + 1]. Returns JOBQ_OK, JOBQ_ECORRUPT, JOBQ_ENOTFOUND or
 * JOBQ_ESYS with a reason in why. */
int jobq_curve_load_public(const char *path, char *z85, char *why, size_t why_len);

/* Checks that dir is a directory owned by the caller (or root) and not
 * group- or world-writable. Returns JOBQ_OK, JOBQ_EFORBIDDEN or JOBQ_ESYS. */
int jobq_curve_check_dir(const char *dir, char *why, size_t why_len);

/* Checks that key_file and server_pub (both required) can be loaded, as
 * jobq_curve_client_setup will at each connect; nothing is kept. Returns
 * JOBQ_OK, JOBQ_EINVAL (one of them missing) or a load error, with a reason
 * in why. */
int jobq_curve_check_client(const char *key_file, const char *server_pub, char *why,
                            size_t why_len);

/* Makes sock a CURVE client of the server whose public key is in server_pub
 * file, with the identity in key_file. Both files are read here; the key
 * buffers are zeroed before returning. Returns JOBQ_OK or a load error
 * (reason in why), or JOBQ_ESYS when libzmq refused an option. */
int jobq_curve_client_setup(void *sock, const char *key_file, const char *server_pub, char *why,
                            size_t why_len);

/* Makes sock a CURVE server with secret key z85_secret, ZAP domain "jobq"
 * and domain enforcement (so that no ZAP handler means no admission).
 * Returns 0 or -1 (errno from libzmq). */
int jobq_curve_server_setup(void *sock, const char *z85_secret);

/* Watches sock's handshake failures: returns a PAIR socket in ctx that
 * receives them (through the inproc endpoint ep, unique per call), or NULL.
 * The caller closes it (after zmq_socket_monitor(sock, NULL, 0)) before sock. */
void *jobq_curve_monitor(void *ctx, void *sock, const char *ep);

/* 1 if the monitor mon reported a failed handshake since the last call (a
 * refused CURVE key, or a server key that is not the server's), else 0.
 * Never blocks. */
int jobq_curve_handshake_failed(void *mon);

/* Zeroes n bytes at p in a way the compiler keeps. */
void jobq_curve_wipe(void *p, size_t n);

#endif
