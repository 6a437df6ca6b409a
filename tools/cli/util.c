/*
 * What every dgw subcommand shares: number parsing and the log line format.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cli.h"

int cli_parse_number(const char *s, unsigned long long max,
                     unsigned long long *out) {
  char *end;
  unsigned long long v;

  if (s == NULL || s[0] < '0' || s[0] > '9')
    return -1;
  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || *end != '\0' || v > max)
    return -1;
  *out = v;
  return 0;
}

static void put_line(enum dgw_log_level level, const char *message) {
  char stamp[32];
  struct timespec ts;
  struct tm tm;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  /* One fprintf per line, so lines from one process never interleave. */
  fprintf(stderr, "%s.%03ldZ dgw: %s: %s\n", stamp, ts.tv_nsec / 1000000L,
          dgw_log_level_name(level), message);
}

void cli_log(enum dgw_log_level level, const char *message, void *user_data) {
  const enum dgw_log_level *max = user_data;

  if (max != NULL && level > *max)
    return;
  put_line(level, message);
}

void cli_say(enum dgw_log_level level, const char *fmt, ...) {
  char line[1024];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  put_line(level, line);
}

int cli_log_level(const char *name) {
  static const enum dgw_log_level levels[] = {DGW_LOG_ERROR, DGW_LOG_WARN,
                                              DGW_LOG_INFO, DGW_LOG_DEBUG};

  for (size_t i = 0; name != NULL && i < sizeof(levels) / sizeof(levels[0]);
       i++)
    if (strcmp(name, dgw_log_level_name(levels[i])) == 0)
      return (int)levels[i];
  return -1;
}
