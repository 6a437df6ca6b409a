/*
 * The JSON log lines of `dgw run` ("log_format": "json", tools/cli/util.c):
 * each line must be one JSON object whatever the message holds (quotes,
 * backslashes, control bytes, bytes that are not UTF-8 from a peer's close
 * reason), with ts, level and msg, and shard, close_code and url when the
 * message names them.  stderr goes to a temporary file and every line is
 * parsed back with json-c.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "cli.h"

/* Runs `say` with stderr sent to a file; returns the line it wrote
 * parsed, or NULL (a test failure) when it is not one JSON object. */
static struct json_object *line_of(enum dgw_log_level level, const char *msg) {
  char path[] = "/tmp/dgw-ops-log.XXXXXX";
  int fd = mkstemp(path);
  int saved = dup(2);
  char buf[8192];
  struct json_object *o;
  FILE *f;
  size_t n;

  assert_true(fd >= 0 && saved >= 0);
  fflush(stderr);
  assert_true(dup2(fd, 2) == 2);
  cli_log_json = 1;
  cli_say(level, "%s", msg);
  fflush(stderr);
  cli_log_json = 0;
  dup2(saved, 2);
  close(saved);
  close(fd);
  f = fopen(path, "r");
  assert_non_null(f);
  n = fread(buf, 1, sizeof(buf) - 1, f);
  fclose(f);
  unlink(path);
  buf[n] = '\0';
  /* exactly one line */
  assert_true(n > 0 && buf[n - 1] == '\n');
  assert_null(memchr(buf, '\n', n - 1));
  o = json_tokener_parse(buf);
  assert_non_null(o);
  assert_true(json_object_is_type(o, json_type_object));
  return o;
}

static const char *str(struct json_object *o, const char *key) {
  struct json_object *v;

  if (!json_object_object_get_ex(o, key, &v))
    return NULL;
  return json_object_get_string(v);
}

static int64_t num(struct json_object *o, const char *key) {
  struct json_object *v;

  if (!json_object_object_get_ex(o, key, &v))
    return -1;
  return json_object_get_int64(v);
}

/* Plain message: ts, level, msg; no shard, no url. */
static void test_plain(void **state) {
  struct json_object *o = line_of(DGW_LOG_INFO, "stopped (exit status 0)");

  (void)state;
  assert_string_equal(str(o, "level"), "info");
  assert_string_equal(str(o, "msg"), "stopped (exit status 0)");
  assert_non_null(str(o, "ts"));
  assert_int_equal(strlen(str(o, "ts")), 24); /* 2026-12-03T11:34:51.315Z */
  assert_null(str(o, "shard"));
  assert_null(str(o, "url"));
  json_object_put(o);
}

/* The fields a message names: shard, close code, URL (its trailing colon
 * is not part of it). */
static void test_fields(void **state) {
  struct json_object *o =
      line_of(DGW_LOG_WARN, "shard 3: cannot reach wss://gw.example:443/x: "
                            "peer closed with code 4004 (auth)");

  (void)state;
  assert_int_equal(num(o, "shard"), 3);
  assert_int_equal(num(o, "close_code"), 4004);
  assert_string_equal(str(o, "url"), "wss://gw.example:443/x");
  assert_string_equal(str(o, "level"), "warn");
  json_object_put(o);
}

/* Hostile bytes: quotes, backslashes, control bytes, DEL, invalid and
 * overlong UTF-8, a surrogate; valid UTF-8 kept as it is. */
static void test_escaping(void **state) {
  const char *msg = "q\"b\\c\x01\x1f\x7f|\xff|\xc0\xaf|\xed\xa0\x80|\xe2\x82"
                    "|é€😀|";
  struct json_object *o = line_of(DGW_LOG_ERROR, msg);

  (void)state;
  assert_string_equal(str(o, "msg"), "q\"b\\c\x01\x1f\x7f|?|??|???|??|é€😀|");
  json_object_put(o);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain),
      cmocka_unit_test(test_fields),
      cmocka_unit_test(test_escaping),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
