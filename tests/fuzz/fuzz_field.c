/*
 * libFuzzer harness for the field getters (lib/field.c), differential
 * against json-c.
 *
 * Input: a JSON Pointer, a NUL byte, then the JSON text (without a NUL,
 * the whole input is the text and the pointer is "").  Every getter is
 * called with that pointer on an exact-length copy of the text: none may
 * crash or read past it.  When json-c in strict mode accepts the text, the
 * getters must agree with its DOM at that pointer and at every pointer of
 * the DOM's first nodes; where json-c refuses, they need only not crash
 * (a lookup checks the path, not what lies beside it).
 *
 * Known, documented differences, not reported: json-c (even strict)
 * accepts raw control bytes inside strings and numbers such as "-01" (an
 * independent RFC 8259 check below must accept the text too), decodes an
 * unpaired surrogate to U+FFFD, cuts keys at "\u0000", and clamps
 * integers beyond 64 bits; dgw refuses or reports those
 * (docs/fields.md).  json-c 0.16 also decodes some valid surrogate pairs
 * to U+FFFD ("\ud836\ude20", U+1DA20, comes out as EF BF BD while
 * "\ud83d\ude00" is right), so a text holding a pair is only checked for
 * not crashing; tests/test_field.c checks how pairs decode.
 *
 * Build (from a configured tree):
 *   clang -g -O1 -fsanitize=fuzzer,address,undefined -I. -Iinclude -Ilib \
 *     tests/fuzz/fuzz_field.c lib/field.c lib/jsonscan.c \
 *     $(pkg-config --cflags --libs json-c)
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* memmem */
#endif
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <dgw/dgw.h>
#include <dgw/field.h>

#include "field.h"

/* Pointers checked per input beside the one in it. */
#define MAX_NODES 64
#define MAX_POINTER 512

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond)) {                                                             \
      fprintf(stderr, "field fuzz: %s failed at line %d, pointer [%s]\n",      \
              #cond, __LINE__, pointer);                                       \
      abort();                                                                 \
    }                                                                          \
  } while (0)

/*
 * An independent RFC 8259 check, recursive and written plainly, so that a
 * text counts as valid only when json-c (strict) and this agree: json-c
 * alone takes "-01" and raw control bytes in strings.
 */
struct rfc {
  const char *p, *end;
};

static int rfc_value(struct rfc *r, int depth);

static void rfc_ws(struct rfc *r) {
  while (r->p < r->end &&
         (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
    r->p++;
}

static int rfc_digits(struct rfc *r) {
  const char *start = r->p;

  while (r->p < r->end && *r->p >= '0' && *r->p <= '9')
    r->p++;
  return r->p > start;
}

static int rfc_string(struct rfc *r) {
  r->p++; /* the quote */
  while (r->p < r->end) {
    unsigned char c = (unsigned char)*r->p++;

    if (c == '"')
      return 1;
    if (c < 0x20)
      return 0;
    if (c == '\\') {
      if (r->p == r->end)
        return 0;
      c = (unsigned char)*r->p++;
      if (c == 'u') {
        for (int i = 0; i < 4; i++, r->p++)
          if (r->p == r->end ||
              strchr("0123456789abcdefABCDEF", *r->p) == NULL || *r->p == '\0')
            return 0;
      } else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
        return 0;
      }
    }
  }
  return 0;
}

static int rfc_value(struct rfc *r, int depth) {
  rfc_ws(r);
  if (r->p == r->end)
    return 0;
  switch (*r->p) {
  case '"':
    return rfc_string(r);
  case '{':
  case '[': {
    char close = *r->p == '{' ? '}' : ']';

    if (depth >= DGW_FIELD_MAX_DEPTH)
      return 0;
    r->p++;
    rfc_ws(r);
    if (r->p < r->end && *r->p == close) {
      r->p++;
      return 1;
    }
    for (;;) {
      if (close == '}') {
        rfc_ws(r);
        if (r->p == r->end || *r->p != '"' || !rfc_string(r))
          return 0;
        rfc_ws(r);
        if (r->p == r->end || *r->p++ != ':')
          return 0;
      }
      if (!rfc_value(r, depth + 1))
        return 0;
      rfc_ws(r);
      if (r->p == r->end)
        return 0;
      if (*r->p == close) {
        r->p++;
        return 1;
      }
      if (*r->p++ != ',')
        return 0;
    }
  }
  }
  for (const char *const *w =
           (const char *const[]){"true", "false", "null", NULL};
       *w != NULL; w++) {
    size_t n = strlen(*w);

    if ((size_t)(r->end - r->p) >= n && memcmp(r->p, *w, n) == 0) {
      r->p += n;
      return 1;
    }
  }
  if (*r->p == '-')
    r->p++;
  if (r->p == r->end)
    return 0;
  if (*r->p == '0')
    r->p++;
  else if (!rfc_digits(r))
    return 0;
  if (r->p < r->end && *r->p == '.') {
    r->p++;
    if (!rfc_digits(r))
      return 0;
  }
  if (r->p < r->end && (*r->p == 'e' || *r->p == 'E')) {
    r->p++;
    if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
      r->p++;
    if (!rfc_digits(r))
      return 0;
  }
  return 1;
}

static int rfc_text(const char *text, size_t len) {
  struct rfc r = {text, text + len};

  if (!rfc_value(&r, 0))
    return 0;
  rfc_ws(&r);
  return r.p == r.end;
}

/* Whether the text holds an escaped surrogate pair, "\uD8xx\uDCxx" to
 * "\uDBxx\uDFxx" (json-c cannot be trusted to decode one). */
static int has_surrogate_pair(const char *text, size_t len) {
  for (size_t i = 0; i + 12 <= len; i++)
    if (text[i] == '\\' && text[i + 1] == 'u' &&
        (text[i + 2] == 'd' || text[i + 2] == 'D') &&
        strchr("89abAB", text[i + 3]) != NULL && text[i + 3] != '\0' &&
        text[i + 6] == '\\' && text[i + 7] == 'u' &&
        (text[i + 8] == 'd' || text[i + 8] == 'D') &&
        strchr("cdefCDEF", text[i + 9]) != NULL && text[i + 9] != '\0')
      return 1;
  return 0;
}

/* json-c in strict mode, with the depth dgw accepts; NULL when refused.
 * A text json-c takes but RFC 8259 does not ("-01", a raw tab in a
 * string) counts as refused. */
static struct json_object *reference_parse(const char *text, size_t len,
                                           int *ok) {
  struct json_tokener *tok = json_tokener_new_ex(DGW_FIELD_MAX_DEPTH + 1);
  struct json_object *obj;
  enum json_tokener_error jerr;
  size_t off;

  *ok = 0;
  if (tok == NULL || len > (size_t)INT32_MAX) {
    if (tok != NULL)
      json_tokener_free(tok);
    return NULL;
  }
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
  obj = json_tokener_parse_ex(tok, text, (int)len);
  jerr = json_tokener_get_error(tok);
  off = jerr == json_tokener_continue ? len : json_tokener_get_parse_end(tok);
  if (jerr == json_tokener_continue) {
    obj = json_tokener_parse_ex(tok, "", 1);
    jerr = json_tokener_get_error(tok);
  }
  json_tokener_free(tok);
  if (jerr != json_tokener_success) {
    json_object_put(obj);
    return NULL;
  }
  for (; off < len; off++)
    if (strchr(" \t\r\n", text[off]) == NULL || text[off] == '\0') {
      json_object_put(obj);
      return NULL;
    }
  if (!rfc_text(text, len)) {
    json_object_put(obj);
    return NULL;
  }
  *ok = 1;
  return obj;
}

/* Resolves an RFC 6901 pointer on json-c's DOM: 1 found (*out, which is
 * NULL for JSON null), 0 not found, -1 not a valid pointer. */
static int reference_resolve(struct json_object *root, const char *pointer,
                             struct json_object **out) {
  size_t n = strlen(pointer);
  char *token = malloc(n + 1);
  struct json_object *cur = root;
  const char *p = pointer;

  if (token == NULL)
    abort();
  if (n > 0 && pointer[0] != '/') {
    free(token);
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (pointer[i] == '~' && pointer[i + 1] != '0' && pointer[i + 1] != '1') {
      free(token);
      return -1;
    }
  while (*p == '/') {
    size_t t = 0;

    for (p++; *p != '\0' && *p != '/'; p++) {
      if (*p == '~') {
        token[t++] = p[1] == '0' ? '~' : '/';
        p++;
      } else {
        token[t++] = *p;
      }
    }
    token[t] = '\0';
    if (json_object_is_type(cur, json_type_object)) {
      if (!json_object_object_get_ex(cur, token, &cur)) {
        free(token);
        return 0;
      }
    } else if (json_object_is_type(cur, json_type_array)) {
      size_t index = 0;

      if (t == 0 || (token[0] == '0' && t > 1) || t > 18 ||
          strspn(token, "0123456789") != t) {
        free(token);
        return 0;
      }
      index = strtoull(token, NULL, 10);
      if (index >= json_object_array_length(cur)) {
        free(token);
        return 0;
      }
      cur = json_object_array_get_idx(cur, index);
    } else {
      free(token);
      return 0;
    }
  }
  free(token);
  *out = cur;
  return 1;
}

/* Calls every getter; returns dgw_field_raw()'s code. */
static int call_all(const char *buf, size_t len, const char *pointer) {
  char small[16], *big;
  const char *raw, *view;
  size_t raw_len, n, need = 0;
  enum dgw_field_type type;
  int64_t i;
  uint64_t u;
  double d;
  int b, rc, rc2;

  rc = dgw_field_raw(buf, len, pointer, &raw, &raw_len);
  CHECK(dgw_field_present(buf, len, pointer) == (rc == DGW_OK ? 1
                                                 : rc == DGW_ERR_NOT_FOUND
                                                     ? 0
                                                     : rc));
  rc2 = dgw_field_type(buf, len, pointer, &type);
  CHECK(rc2 == rc);
  if (rc == DGW_OK) {
    CHECK(raw >= buf && raw + raw_len <= buf + len && raw_len > 0);
  }
  (void)dgw_field_int64(buf, len, pointer, &i);
  (void)dgw_field_uint64(buf, len, pointer, &u);
  (void)dgw_field_double(buf, len, pointer, &d);
  (void)dgw_field_bool(buf, len, pointer, &b);
  (void)dgw_field_null(buf, len, pointer);
  (void)dgw_field_count(buf, len, pointer, &n);
  rc2 = dgw_field_string(buf, len, pointer, small, sizeof small, &need);
  if (rc2 == DGW_ERR_BUFFER_TOO_SMALL) {
    big = malloc(need + 1);
    if (big == NULL)
      abort();
    CHECK(dgw_field_string(buf, len, pointer, big, need + 1, &n) == DGW_OK);
    CHECK(n == need && big[n] == '\0');
    CHECK(dgw_field_string_view(buf, len, pointer, big, need + 1, &view, &n) ==
          DGW_OK);
    CHECK(n == need);
    free(big);
  } else if (rc2 == DGW_OK) {
    CHECK(need < sizeof small && small[need] == '\0');
  }
  return rc;
}

/* The getters at `pointer` against json-c's node (found by the pointer). */
static void compare(const char *buf, size_t len, const char *pointer,
                    struct json_object *node) {
  const char *raw;
  size_t raw_len, n;
  int rc = call_all(buf, len, pointer);
  int64_t i;
  uint64_t u;
  double d;
  int b;

  CHECK(rc == DGW_OK);
  CHECK(dgw_field_raw(buf, len, pointer, &raw, &raw_len) == DGW_OK);
  {
    struct json_tokener *tok = json_tokener_new_ex(DGW_FIELD_MAX_DEPTH + 1);
    struct json_object *again;

    json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
    again = json_tokener_parse_ex(tok, raw, (int)raw_len);
    if (json_tokener_get_error(tok) == json_tokener_continue)
      again = json_tokener_parse_ex(tok, "", 1);
    CHECK(json_tokener_get_error(tok) == json_tokener_success);
    CHECK(json_object_equal(again, node));
    json_object_put(again);
    json_tokener_free(tok);
  }
  switch (json_object_get_type(node)) {
  case json_type_null:
    CHECK(dgw_field_null(buf, len, pointer) == DGW_OK);
    break;
  case json_type_boolean:
    CHECK(dgw_field_bool(buf, len, pointer, &b) == DGW_OK);
    CHECK(b == json_object_get_boolean(node));
    break;
  case json_type_double:
    CHECK(dgw_field_double(buf, len, pointer, &d) == DGW_OK);
    CHECK(d == json_object_get_double(node) ||
          (d != d &&
           json_object_get_double(node) != json_object_get_double(node)));
    CHECK(dgw_field_int64(buf, len, pointer, &i) == DGW_ERR_TYPE);
    break;
  case json_type_int:
    if (dgw_field_int64(buf, len, pointer, &i) == DGW_OK) {
      CHECK(i == json_object_get_int64(node));
    } else if (dgw_field_uint64(buf, len, pointer, &u) == DGW_OK) {
      CHECK(u == json_object_get_uint64(node) && u > (uint64_t)INT64_MAX);
    } else {
      CHECK(dgw_field_uint64(buf, len, pointer, &u) == DGW_ERR_RANGE);
      CHECK(json_object_get_uint64(node) == UINT64_MAX ||
            json_object_get_int64(node) == INT64_MIN);
    }
    break;
  case json_type_string: {
    const char *s = json_object_get_string(node);
    size_t slen = (size_t)json_object_get_string_len(node);
    char *out = malloc(slen + 1);
    int src;

    if (out == NULL)
      abort();
    src = dgw_field_string(buf, len, pointer, out, slen + 1, &n);
    if (src == DGW_ERR_JSON && memmem(s, slen, "\xef\xbf\xbd", 3) != NULL) {
      free(out); /* an unpaired surrogate json-c replaced */
      break;
    }
    CHECK(src == DGW_OK);
    CHECK(n == slen && memcmp(out, s, n) == 0);
    free(out);
    break;
  }
  case json_type_array:
    CHECK(dgw_field_count(buf, len, pointer, &n) == DGW_OK);
    CHECK(n == json_object_array_length(node));
    break;
  case json_type_object:
    CHECK(dgw_field_count(buf, len, pointer, &n) == DGW_ERR_TYPE);
    break;
  }
}

/* Compares the pointers of the DOM's first MAX_NODES nodes, depth first. */
static void walk(const char *buf, size_t len, char *pointer, size_t at,
                 struct json_object *node, int *budget) {
  if (*budget <= 0)
    return;
  (*budget)--;
  compare(buf, len, pointer, node);
  if (json_object_is_type(node, json_type_array)) {
    for (size_t i = 0; i < json_object_array_length(node); i++) {
      int w = snprintf(pointer + at, MAX_POINTER - at, "/%zu", i);

      if (w < 0 || (size_t)w >= MAX_POINTER - at)
        break;
      walk(buf, len, pointer, at + (size_t)w,
           json_object_array_get_idx(node, i), budget);
    }
  } else if (json_object_is_type(node, json_type_object)) {
    json_object_object_foreach(node, key, child) {
      size_t w = at;

      if (w + 1 >= MAX_POINTER)
        break;
      pointer[w++] = '/';
      for (const char *k = key; *k != '\0' && w + 3 < MAX_POINTER; k++) {
        if (*k == '~' || *k == '/') {
          pointer[w++] = '~';
          pointer[w++] = *k == '~' ? '0' : '1';
        } else {
          pointer[w++] = *k;
        }
      }
      if (w + 3 >= MAX_POINTER)
        break;
      pointer[w] = '\0';
      walk(buf, len, pointer, w, child, budget);
    }
  }
  pointer[at] = '\0';
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const uint8_t *nul = memchr(data, '\0', size);
  char *pointer, *buf;
  size_t plen = nul != NULL ? (size_t)(nul - data) : 0;
  const uint8_t *text = nul != NULL ? nul + 1 : data;
  size_t len = size - (size_t)(text - data);
  struct json_object *root, *node;
  int accepted, found;

  pointer = malloc(plen + 1);
  buf = malloc(len > 0 ? len : 1);
  if (pointer == NULL || buf == NULL)
    abort();
  memcpy(pointer, data, plen);
  pointer[plen] = '\0';
  if (len > 0)
    memcpy(buf, text, len);

  call_all(buf, len, pointer);
  root = reference_parse(buf, len, &accepted);
  /* json-c cuts keys at \u0000: no key can be compared then; and it
   * misreads some surrogate pairs (see the top). */
  if (accepted && memmem(buf, len, "\\u0000", 6) == NULL &&
      !has_surrogate_pair(buf, len)) {
    char walk_pointer[MAX_POINTER] = "";
    int budget = MAX_NODES;

    found = reference_resolve(root, pointer, &node);
    if (found < 0)
      CHECK(call_all(buf, len, pointer) == DGW_ERR_INVALID_ARGUMENT);
    else if (found == 0) {
      int rc = call_all(buf, len, pointer);

      CHECK(rc == DGW_ERR_NOT_FOUND);
    } else {
      compare(buf, len, pointer, node);
    }
    walk(buf, len, walk_pointer, 0, root, &budget);
  }
  json_object_put(root);
  free(pointer);
  free(buf);
  return 0;
}
