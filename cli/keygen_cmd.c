/*
 * cli/keygen_cmd.c: `jobq keygen NAME`: writes a fresh CURVE key pair to
 * NAME.key (public and secret, mode 0600) and NAME.pub (public, 0644), both
 * created exclusively (an existing file or symlink is never overwritten).
 * common/curve.h describes the formats.
 *
 * Exit codes: 0 written, 1 could not write (a file exists, I/O error,
 * no CURVE in libzmq), 2 bad usage.
 */
#include "cli/commands.h"
#include "common/curve.h"
#include "jobq/errors.h"

#include <stdio.h>
#include <string.h>

int keygen_main(int argc, char **argv);

int
keygen_main(int argc, char **argv)
{
    if (argc != 2 || argv[1][0] == '-' || argv[1][0] == '\0')
        return jobq_cli_usage_error("keygen", "want one NAME");
    char why[512];
    int rc = jobq_curve_keygen(argv[1], why, sizeof why);
    if (rc != JOBQ_OK) {
        fprintf(stderr, "jobq keygen: %s\n", why);
        return JOBQ_EXIT_FAIL;
    }
    printf("wrote %s.key (secret, keep it private) and %s.pub (public)\n", argv[1], argv[1]);
    return JOBQ_EXIT_OK;
}
