/*
 * dgw: the program a bot operator runs.  `dgw COMMAND [ARGS]`; each
 * command has its own --help.  See docs/cli.md.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "config_cluster.h"

static const struct {
  const char *name;
  int (*fn)(int argc, char **argv);
  const char *summary;
} commands[] = {
    {"run", cmd_run, "run a bot from a JSON config file"},
    {"record", cmd_record,
     "run a bot and write every event it receives as JSON lines"},
    {"demo", cmd_demo,
     "see dgw work against a mock gateway in this process (no token, no "
     "network)"},
    {"mock", cmd_mock, "serve a mock Discord gateway, or replay a recording"},
    {"cluster", cmd_cluster,
     "show a cluster's members and who holds which shard (cluster status)"},
    {"check-plugin", cmd_check_plugin,
     "load a plugin and report what it is, or why it is refused"},
};
#define NCOMMANDS (sizeof(commands) / sizeof(commands[0]))

static void usage(FILE *out) {
  fputs("usage: dgw COMMAND [ARGS]...\n"
        "       dgw --help | --version\n"
        "\n"
        "A Discord gateway client on libevent.  Commands:\n\n",
        out);
  for (size_t i = 0; i < NCOMMANDS; i++)
    fprintf(out, "  %-14s %s\n", commands[i].name, commands[i].summary);
  fputs("\n"
        "`dgw COMMAND --help` or `dgw help COMMAND` tells more, `man dgw`\n"
        "all.  Exit status: 0 done (or stopped by SIGINT/SIGTERM), 1 runtime\n"
        "failure, 2 usage error, 3 bad configuration, 4 Discord refused the\n"
        "bot (token, intents).\n",
        out);
}

int main(int argc, char **argv) {
  /* A peer vanishing while we write must not kill the process. */
  signal(SIGPIPE, SIG_IGN);
  if (argc < 2) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (strcmp(argv[1], "help") == 0 && argc >= 3) {
    /* `dgw help COMMAND` is `dgw COMMAND --help`. */
    static char help[] = "--help";
    char *args[] = {argv[2], help, NULL};

    for (size_t i = 0; i < NCOMMANDS; i++)
      if (strcmp(argv[2], commands[i].name) == 0)
        return commands[i].fn(2, args);
    fprintf(stderr, "dgw: no command '%s'; try 'dgw --help'\n", argv[2]);
    return CLI_EXIT_USAGE;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return CLI_EXIT_OK;
  }
  if (strcmp(argv[1], "--version") == 0) {
    printf("dgw %s (library %s)\n", DGW_VERSION, dgw_version());
    return CLI_EXIT_OK;
  }
  for (size_t i = 0; i < NCOMMANDS; i++)
    if (strcmp(argv[1], commands[i].name) == 0)
      return commands[i].fn(argc - 1, argv + 1);
  fprintf(stderr, "dgw: unknown command '%s'; try 'dgw --help'\n", argv[1]);
  return CLI_EXIT_USAGE;
}
