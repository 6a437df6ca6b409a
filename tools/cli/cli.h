/*
 * The dgw program: one binary, a subcommand each (run, record, demo, mock,
 * check-plugin).  Shared declarations of tools/dgw/.
 */
#ifndef DGW_CLI_H
#define DGW_CLI_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

/* Exit statuses scripts can rely on (docs/cli.md). */
#define CLI_EXIT_OK 0      /* done, or stopped by SIGINT/SIGTERM */
#define CLI_EXIT_RUNTIME 1 /* failed while running (cannot listen, loop) */
#define CLI_EXIT_USAGE 2   /* bad command line */
#define CLI_EXIT_CONFIG                                                        \
  3 /* bad config file, token variable unset, a                                \
       plugin refused */
#define CLI_EXIT_REFUSED                                                       \
  4 /* Discord refused the bot for good: token                                 \
       (401, 4004), intents (4013, 4014), shards */

int cmd_run(int argc, char **argv);
int cmd_record(int argc, char **argv);
int cmd_demo(int argc, char **argv);
int cmd_mock(int argc, char **argv);
int cmd_check_plugin(int argc, char **argv);

/* Parses a decimal number in [0, max]; -1 when `s` is not one. */
int cli_parse_number(const char *s, unsigned long long max,
                     unsigned long long *out);

/* The log sink of every subcommand: "2026-11-27T23:40:01Z dgw: LEVEL: msg"
 * on stderr, for levels up to the one `user_data` points to (an enum
 * dgw_log_level). */
void cli_log(enum dgw_log_level level, const char *message, void *user_data);

/* 1: cli_log and cli_say write one JSON object a line ("log_format":
 * "json" of dgw run) instead of text. */
extern int cli_log_json;

/* A line of the program's own on stderr, with the same prefix as cli_log. */
void cli_say(enum dgw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The level named `name` ("error", "warn", "info", "debug"); -1 if none. */
int cli_log_level(const char *name);

/* SIGINT and SIGTERM ignored, before the evsignal events are added: once
 * they are freed (libevent restores what it found), a repeated stop signal
 * during the teardown is ignored instead of killing the process. */
void cli_ignore_stop_signals(void);

#endif /* DGW_CLI_H */
