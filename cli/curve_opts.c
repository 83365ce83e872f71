/*
 * cli/curve_opts.c: the CURVE options shared by every client subcommand
 * (submit, wait, join, stop-workers, worker, stats, pause, resume, kick,
 * delete, peek, broker-stop): --curve-key FILE (this client's key pair,
 * `jobq keygen`'s NAME.key) and --curve-server FILE (the broker's NAME.pub),
 * defaulting to $JOBQ_CURVE_KEY and $JOBQ_CURVE_SERVER.
 *
 * cli/main.c takes them out of argv before the subcommand parses its own
 * options (scanning up to a "--"), so each command only passes
 * jobq_cli_curve_key() / jobq_cli_curve_server() on to the library. The
 * environment is read here, by the CLI, never by the library. `jobq broker`
 * parses its own --curve-key (its server key), so main.c skips it.
 */
#include "cli/commands.h"

#include <stdlib.h>
#include <string.h>

static const char *s_key, *s_server;

/* Takes "--NAME VALUE" or "--NAME=VALUE" at argv[*i]; returns 1 if it was
 * one (value in *out, *i moved past it), 0 if not, -1 if the value is
 * missing. */
static int
s_take(const char *name, char **argv, int argc, int *i, const char **out)
{
    size_t n = strlen(name);
    const char *a = argv[*i];
    if (strncmp(a, name, n) != 0)
        return 0;
    if (a[n] == '=') {
        *out = a + n + 1;
        *i += 1;
        return 1;
    }
    if (a[n] != '\0')
        return 0;
    if (*i + 1 >= argc)
        return -1;
    *out = argv[*i + 1];
    *i += 2;
    return 1;
}

/* The subcommands that talk to a broker as a client. */
static const char *const s_clients[] = {"submit", "wait",   "join",  "stop-workers",
                                        "worker", "stats",  "pause", "resume",
                                        "kick",   "delete", "peek",  "broker-stop"};

int
jobq_cli_curve_extract(const char *cmd, int *argc, char **argv)
{
    int out = 1, i = 1, client = 0;
    for (size_t k = 0; k < sizeof s_clients / sizeof s_clients[0]; k++)
        client |= strcmp(cmd, s_clients[k]) == 0;
    if (!client)
        return 0;
    while (i < *argc) {
        if (strcmp(argv[i], "--") == 0) {
            while (i < *argc)
                argv[out++] = argv[i++];
            break;
        }
        int k = s_take("--curve-key", argv, *argc, &i, &s_key);
        if (k == 0)
            k = s_take("--curve-server", argv, *argc, &i, &s_server);
        if (k < 0)
            return jobq_cli_usage_error(cmd, "%s wants a file", argv[i]);
        if (k == 0)
            argv[out++] = argv[i++];
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

const char *
jobq_cli_curve_key(void)
{
    const char *e = getenv("JOBQ_CURVE_KEY");
    return s_key ? s_key : e && *e ? e : NULL;
}

const char *
jobq_cli_curve_server(void)
{
    const char *e = getenv("JOBQ_CURVE_SERVER");
    return s_server ? s_server : e && *e ? e : NULL;
}
