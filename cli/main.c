/*
 * cli/main.c: the `jobq` executable, a thin dispatcher over each part's
 * NAME_main(argc, argv). The table below is the whole command set.
 */
#include "cli/commands.h"
#include "jobq/log.h"
#include "jobq/version.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int s_help_main(int argc, char **argv);
static int s_version_main(int argc, char **argv);

static const jobq_command_t s_commands[] = {
    {"help", s_help_main, "show help for jobq or one command",
     "usage: jobq help [COMMAND]\n"
     "\n"
     "Without COMMAND, lists the commands; with it, prints that command's usage.\n"},
    {"version", s_version_main, "print the jobq version",
     "usage: jobq version\n"
     "\n"
     "Prints the version of jobq and of the protocol it speaks.\n"},
};
#define S_NCOMMANDS (sizeof s_commands / sizeof s_commands[0])

const jobq_command_t *
jobq_cli_find(const char *name)
{
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        if (strcmp(s_commands[i].name, name) == 0)
            return &s_commands[i];
    return NULL;
}

int
jobq_cli_usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    const jobq_command_t *c = jobq_cli_find(cmd);
    fprintf(stderr, "jobq %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    if (c)
        fputs(c->usage, stderr);
    return JOBQ_EXIT_USAGE;
}

void
jobq_cli_log_init(void)
{
    const char *env = getenv("JOBQ_LOG");
    int level = env ? jobq_log_level_parse(env) : JOBQ_LOG_NOTICE;
    jobq_log_set(jobq_log_stderr, NULL, level < 0 ? JOBQ_LOG_NOTICE : (jobq_log_level)level);
}

static void
s_print_overview(FILE *out)
{
    fprintf(out, "usage: jobq [--help] [--version] COMMAND [ARGS...]\n\n"
                 "jobq hands jobs to pools of workers and collects their results,\n"
                 "over shm://NAME, mq://NAME, tcp://HOST:PORT or ipc://PATH.\n\n"
                 "Commands:\n");
    for (size_t i = 0; i < S_NCOMMANDS; i++)
        fprintf(out, "  %-14s %s\n", s_commands[i].name, s_commands[i].summary);
    fprintf(out, "\nRun 'jobq help COMMAND' or 'jobq COMMAND --help' for a command's options.\n"
                 "Exit status: 0 success, 1 a job or operation failed, 2 bad usage.\n"
                 "Environment: JOBQ_URL (default URL), JOBQ_LOG (err|warn|notice|info|debug).\n");
}

static int
s_help_main(int argc, char **argv)
{
    if (argc < 2) {
        s_print_overview(stdout);
        return JOBQ_EXIT_OK;
    }
    if (argc > 2)
        return jobq_cli_usage_error("help", "too many arguments");
    const jobq_command_t *c = jobq_cli_find(argv[1]);
    if (!c) {
        fprintf(stderr, "jobq help: unknown command '%s'\n", argv[1]);
        s_print_overview(stderr);
        return JOBQ_EXIT_USAGE;
    }
    fputs(c->usage, stdout);
    return JOBQ_EXIT_OK;
}

static int
s_version_main(int argc, char **argv)
{
    (void)argv;
    if (argc > 1)
        return jobq_cli_usage_error("version", "takes no arguments");
    printf("jobq %s (protocol %d)\n", jobq_version(), 1);
    return JOBQ_EXIT_OK;
}

int
main(int argc, char **argv)
{
    if (argc < 2) {
        s_print_overview(stderr);
        return JOBQ_EXIT_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0)
        return s_help_main(1, argv + 1);
    if (strcmp(name, "--version") == 0 || strcmp(name, "-V") == 0)
        return s_version_main(1, argv + 1);
    const jobq_command_t *c = jobq_cli_find(name);
    if (!c) {
        fprintf(stderr, "jobq: unknown command '%s'\n\n", name);
        s_print_overview(stderr);
        return JOBQ_EXIT_USAGE;
    }
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            fputs(c->usage, stdout);
            return JOBQ_EXIT_OK;
        }
    }
    jobq_cli_log_init();
    return c->main(argc - 1, argv + 1);
}
