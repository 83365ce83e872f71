/*
 * cli/commands.h: the subcommand table of the `jobq` executable.
 *
 * Each part (producer/, worker/, broker/) implements its subcommands in a
 * *_cmd.c file as `int NAME_main(int argc, char **argv)` (argv[0] is the
 * subcommand name) and adds one row to the table in cli/main.c.
 * Exit codes: 0 success, 1 a job or operation failed, 2 bad usage.
 */
#ifndef JOBQ_CLI_COMMANDS_H
#define JOBQ_CLI_COMMANDS_H

#define JOBQ_EXIT_OK 0
#define JOBQ_EXIT_FAIL 1
#define JOBQ_EXIT_USAGE 2

typedef struct jobq_command {
    const char *name;
    int (*main)(int argc, char **argv);
    const char *summary; /* one line for `jobq --help` */
    const char *usage;   /* the full text for `jobq help NAME` and `NAME --help` */
} jobq_command_t;

/* Prints cmd's usage to stderr and returns JOBQ_EXIT_USAGE; for bad flags. */
int jobq_cli_usage_error(const char *cmd, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Returns the table row for name, or NULL. */
const jobq_command_t *jobq_cli_find(const char *name);

/* Installs the stderr logger at the level in $JOBQ_LOG (default "notice"). */
void jobq_cli_log_init(void);

/* Removes --curve-key FILE and --curve-server FILE (also --opt=FILE) from
 * argv[1..*argc), up to a "--", remembering them; returns 0 or a usage exit
 * code for a missing FILE. Does nothing unless cmd is a client subcommand. */
int jobq_cli_curve_extract(const char *cmd, int *argc, char **argv);

/* The CURVE files for a client command: the option, else $JOBQ_CURVE_KEY /
 * $JOBQ_CURVE_SERVER, else NULL (no CURVE). The strings are argv's or the
 * environment's. */
const char *jobq_cli_curve_key(void);
const char *jobq_cli_curve_server(void);

#endif
