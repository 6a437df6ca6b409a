/*
 * redis-streams' RESP writer (resp.h): the bytes hiredis's
 * redisFormatCommandArgv would write, into a buffer the caller owns.
 */
#include "config.h"

#include <string.h>

#include "resp.h"

/* Decimal digits of `v`. */
static size_t digits(size_t v) {
  size_t n = 1;

  while (v >= 10) {
    v /= 10;
    n++;
  }
  return n;
}

/* Writes `v` in decimal at `p`; returns the byte after it. */
static char *put_num(char *p, size_t v) {
  size_t n = digits(v);

  for (size_t i = n; i > 0; i--) {
    p[i - 1] = (char)('0' + v % 10);
    v /= 10;
  }
  return p + n;
}

size_t resp_size(int argc, const size_t *len) {
  size_t n = 1 + digits((size_t)argc) + 2;

  for (int i = 0; i < argc; i++)
    n += 1 + digits(len[i]) + 2 + len[i] + 2;
  return n;
}

size_t resp_write(char *out, int argc, const char *const *argv,
                  const size_t *len) {
  char *p = out;

  *p++ = '*';
  p = put_num(p, (size_t)argc);
  *p++ = '\r';
  *p++ = '\n';
  for (int i = 0; i < argc; i++) {
    *p++ = '$';
    p = put_num(p, len[i]);
    *p++ = '\r';
    *p++ = '\n';
    if (len[i] > 0)
      memcpy(p, argv[i], len[i]);
    p += len[i];
    *p++ = '\r';
    *p++ = '\n';
  }
  return (size_t)(p - out);
}
