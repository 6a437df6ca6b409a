#include "config.h"

/*
 * Small helpers the whole mock uses: its log line, heap strings, strict
 * JSON parsing and building with json-c, a monotonic clock, random ids.
 */

#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>
#include <openssl/rand.h>

#include "clock.h"
#include "mock_int.h"

void mock_log(const struct dgw_mock *mock, enum dgw_log_level level,
              const char *fmt, ...) {
  char line[512];
  va_list ap;

  if (mock->cfg.log == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  mock->cfg.log(level, line, mock->cfg.log_user_data);
}

char *mock_strdup(const char *s) {
  size_t len;
  char *copy;

  if (s == NULL)
    return NULL;
  len = strlen(s);
  copy = malloc(len + 1);
  if (copy != NULL)
    memcpy(copy, s, len + 1);
  return copy;
}

char *mock_asprintf(const char *fmt, ...) {
  va_list ap;
  int len;
  char *s;

  va_start(ap, fmt);
  len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (len < 0)
    return NULL;
  s = malloc((size_t)len + 1);
  if (s == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)len + 1, fmt, ap);
  va_end(ap);
  return s;
}

/*
 * Parses exactly `len` bytes of `text` as one strict JSON value (trailing
 * whitespace allowed).  Returns the value (caller puts it), or NULL with
 * *ok = 0 when it does not parse.  A literal null parses to NULL, *ok = 1.
 */
json_object *mock_json_parse_exact(const char *text, size_t len, int *ok) {
  json_tokener *tok;
  json_object *obj;
  size_t end;

  *ok = 0;
  if (len > INT_MAX)
    return NULL;
  tok = json_tokener_new();
  if (tok == NULL)
    return NULL;
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  obj = json_tokener_parse_ex(tok, text, (int)len);
  end = json_tokener_get_parse_end(tok);
  if (obj == NULL && json_tokener_get_error(tok) == json_tokener_continue) {
    /* A bare number is only known complete at the end of the input, which
     * the tokener was given whole. */
    obj = json_tokener_parse_ex(tok, "", 1);
    end = len;
  }
  if (json_tokener_get_error(tok) != json_tokener_success) {
    json_object_put(obj);
    json_tokener_free(tok);
    return NULL;
  }
  json_tokener_free(tok);
  for (; end < len; end++) {
    char c = text[end];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      json_object_put(obj);
      return NULL;
    }
  }
  *ok = 1;
  return obj;
}

/* Adds `value` under `key`; frees it and returns -1 on failure. */
int mock_json_add(json_object *obj, const char *key, json_object *value) {
  if (value == NULL)
    return -1;
  if (json_object_object_add(obj, key, value) != 0) {
    json_object_put(value);
    return -1;
  }
  return 0;
}

int mock_json_append(json_object *array, json_object *value) {
  if (value == NULL)
    return -1;
  if (json_object_array_add(array, value) != 0) {
    json_object_put(value);
    return -1;
  }
  return 0;
}

const char *mock_json_plain(json_object *obj) {
  return json_object_to_json_string_ext(
      obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Whether `obj` is a JSON integer (not a float, not a string). */
int mock_json_is_int(json_object *obj) {
  return obj != NULL && json_object_is_type(obj, json_type_int);
}

/* Milliseconds on a monotonic clock. */
uint64_t mock_now_ms(void) {
  return dgw_monotonic_ms();
}

void mock_random_id(char id[33]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[16];
  size_t i;

  if (RAND_bytes(raw, (int)sizeof raw) != 1) {
    /* The id only has to be unlikely to repeat within one test run. */
    unsigned long x = (unsigned long)time(NULL) ^ (unsigned long)clock() ^
                      (unsigned long)(uintptr_t)id;
    for (i = 0; i < sizeof raw; i++) {
      x = x * 6364136223846793005UL + 1442695040888963407UL;
      raw[i] = (unsigned char)(x >> 33);
    }
  }
  for (i = 0; i < sizeof raw; i++) {
    id[2 * i] = hex[raw[i] >> 4];
    id[2 * i + 1] = hex[raw[i] & 0x0f];
  }
  id[32] = '\0';
}
