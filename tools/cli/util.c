/*
 * What every dgw subcommand shares: number parsing and the log line format.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <signal.h>
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

/* The length of the valid UTF-8 sequence at `s` (at most `left` bytes),
 * or 0 when it is not one (RFC 3629: no overlongs, no surrogates). */
static size_t utf8_len(const unsigned char *s, size_t left) {
  unsigned char c = s[0];
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;

  if (c >= 0xC2 && c <= 0xDF)
    n = 2;
  else if (c >= 0xE0 && c <= 0xEF)
    n = 3;
  else if (c >= 0xF0 && c <= 0xF4)
    n = 4;
  else
    return 0;
  if (c == 0xE0)
    lo = 0xA0;
  else if (c == 0xED)
    hi = 0x9F;
  else if (c == 0xF0)
    lo = 0x90;
  else if (c == 0xF4)
    hi = 0x8F;
  if (n > left || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t i = 2; i < n; i++)
    if (s[i] < 0x80 || s[i] > 0xBF)
      return 0;
  return n;
}

/* `s` as the inside of a JSON string (at most `max` bytes of it): quotes,
 * backslashes and control bytes escaped, bytes that are not UTF-8 (a
 * peer's close reason may hold anything) replaced by '?'. */
static void put_escaped(char *out, size_t size, const char *s, size_t max) {
  size_t o = 0, len = strnlen(s, max);

  for (size_t i = 0; i < len && o + 7 < size; i++) {
    unsigned char c = (unsigned char)s[i];
    size_t n;

    if (c == '"' || c == '\\') {
      out[o++] = '\\';
      out[o++] = (char)c;
    } else if (c < 0x20 || c == 0x7f) {
      o += (size_t)snprintf(out + o, size - o, "\\u%04x", c);
    } else if (c < 0x80) {
      out[o++] = (char)c;
    } else if ((n = utf8_len((const unsigned char *)s + i, len - i)) > 0 &&
               o + n + 7 < size) {
      memcpy(out + o, s + i, n);
      o += n;
      i += n - 1;
    } else {
      out[o++] = '?';
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

/* Sets SIGINT and SIGTERM to SIG_IGN.  Called before our evsignal events
 * are added: libevent saves the action it finds and restores it when the
 * events are freed, so the teardown after the loop ignores a repeated stop
 * signal (timeout(1) sends one to the child and one to its process group)
 * instead of dying by the default action (exit 143). */
void cli_ignore_stop_signals(void) {
  signal(SIGINT, SIG_IGN);
  signal(SIGTERM, SIG_IGN);
}
