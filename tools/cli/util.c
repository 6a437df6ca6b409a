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

int cli_log_json;

/* `s` as the inside of a JSON string (at most `max` bytes of it). */
static void put_escaped(char *out, size_t size, const char *s, size_t max) {
  size_t o = 0;

  for (size_t i = 0; s[i] != '\0' && i < max && o + 7 < size; i++) {
    unsigned char c = (unsigned char)s[i];

    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20) {
      o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
    } else {
      out[o++] = (char)c;
    }
  }
  out[o] = '\0';
}

/* One JSON object: ts, level, msg, and what the message names: "shard N:"
 * at its start, a close code ("code NNNN"), a URL (ws://, wss://,
 * http://, https://). */
static void put_json(const char *stamp, enum dgw_log_level level,
                     const char *message) {
  char msg[2048], url[600], extra[700] = "";
  const char *p;
  unsigned long n;
  char *end;
  size_t len = 0;

  put_escaped(msg, sizeof(msg), message, 1024);
  if (strncmp(message, "shard ", 6) == 0 &&
      (n = strtoul(message + 6, &end, 10), end != message + 6) && *end == ':')
    len +=
        (size_t)snprintf(extra + len, sizeof(extra) - len, ",\"shard\":%lu", n);
  if ((p = strstr(message, "code ")) != NULL &&
      (n = strtoul(p + 5, &end, 10), end == p + 9) && n >= 1000 && n <= 4999)
    len += (size_t)snprintf(extra + len, sizeof(extra) - len,
                            ",\"close_code\":%lu", n);
  if ((p = strstr(message, "ws://")) != NULL ||
      (p = strstr(message, "wss://")) != NULL ||
      (p = strstr(message, "http://")) != NULL ||
      (p = strstr(message, "https://")) != NULL) {
    size_t ulen = strcspn(p, " ,;)\"'");

    if (ulen > 0 && p[ulen - 1] == ':')
      ulen--; /* "cannot reach URL: cause" */
    put_escaped(url, sizeof(url), p, ulen < 512 ? ulen : 512);
    snprintf(extra + len, sizeof(extra) - len, ",\"url\":\"%s\"", url);
  }
  fprintf(stderr, "{\"ts\":\"%s\",\"level\":\"%s\"%s,\"msg\":\"%s\"}\n", stamp,
          dgw_log_level_name(level), extra, msg);
}

static void put_line(enum dgw_log_level level, const char *message) {
  char stamp[32];
  struct timespec ts;
  struct tm tm;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
  if (cli_log_json) {
    char full[48];

    snprintf(full, sizeof(full), "%s.%03ldZ", stamp, ts.tv_nsec / 1000000L);
    put_json(full, level, message);
    return;
  }
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
