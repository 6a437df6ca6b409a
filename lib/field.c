/*
 * Fields without a DOM: JSON Pointer lookups over raw JSON text.
 *
 * The scanner is the one of lib/jsonscan.h, shared with the envelope peek
 * (lib/payload.c): a non-recursive validator that keeps the kind of each
 * open container in a bit stack, and scans strings sixteen or eight bytes
 * at a time for the only bytes that matter inside them.  A lookup checks
 * the containers on the path member by member (a later duplicate key wins,
 * so an object is always read to its end), steps over the containers
 * beside the path by counting brackets (jsonscan_skip_nested), and checks
 * the value it returns whole.
 */
#include "config.h"

#include "field.h"

#include "jsonscan.h"

#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

/* Numbers up to this many bytes are converted from a stack copy. */
#define NUMBER_STACK_MAX 63

typedef jsonscan_cursor cursor;

/* The scanner's bit stack must hold the deepest nesting allowed here. */
typedef char
    depth_fits_the_bit_stack[DGW_FIELD_MAX_DEPTH <= JSONSCAN_DEPTH_LIMIT ? 1
                                                                         : -1];

/* One reference token of a pointer, as written (with its ~ escapes). */
struct token {
  const unsigned char *p;
  size_t len;
  int tilde; /* contains an escape, so bytes differ from the raw text */
};

/* Where a value sits: [start, end), start never at whitespace. */
struct span {
  cursor start;
  cursor end;
};

static cursor skip_value(cursor p, cursor end, unsigned depth);
static cursor skip_member(cursor p, cursor end, unsigned depth);
JSONSCAN_HOT int token_eat(const struct token *t, size_t *pos,
                           const void *bytes, size_t n);
static cursor match_key(cursor p, cursor end, const struct token *t,
                        int *match);
static int token_index(const struct token *t, size_t *index);
static cursor find_member(cursor p, cursor end, unsigned depth,
                          const struct token *t, struct span *found);
static cursor find_element(cursor p, cursor end, unsigned depth,
                           const struct token *t, struct span *found);
static int check_pointer(const char *pointer, size_t len);
static void append(char *out, size_t cap, size_t *n, const void *src,
                   size_t len);
static int decode_string(cursor p, cursor end, char *out, size_t cap,
                         size_t *out_len);
static int find_value(const char *json, size_t len, const char *pointer,
                      struct span *v);

/* Validates the value at p (not whitespace, not end) inside `depth`
 * open containers. */
static cursor skip_value(cursor p, cursor end, unsigned depth) {
  return jsonscan_skip_value(p, end, depth, DGW_FIELD_MAX_DEPTH);
}

/* A member value of a container on the path (p not at end): scalars are
 * validated, containers stepped over. */
static cursor skip_member(cursor p, cursor end, unsigned depth) {
  if (*p == '{' || *p == '[')
    return jsonscan_skip_nested(p, end);
  return skip_value(p, end, depth);
}

/*
 * Matches the next `n` decoded key bytes against token `t` from raw offset
 * *pos; returns 1 and advances *pos when they match.
 */
JSONSCAN_HOT int token_eat(const struct token *t, size_t *pos,
                           const void *bytes, size_t n) {
  const unsigned char *b = bytes;
  size_t i;

  if (!t->tilde) {
    if (n > t->len - *pos || memcmp(t->p + *pos, b, n) != 0)
      return 0;
    *pos += n;
    return 1;
  }
  for (i = 0; i < n; i++) {
    unsigned char c;

    if (*pos >= t->len)
      return 0;
    c = t->p[*pos];
    if (c == '~') { /* check_pointer() made sure a 0 or 1 follows */
      c = t->p[*pos + 1] == '0' ? '~' : '/';
      *pos += 2;
    } else {
      *pos += 1;
    }
    if (c != b[i])
      return 0;
  }
  return 1;
}

/*
 * p is just past the opening quote of a key.  Validates the key, sets
 * *match to whether it equals token t once both are decoded, and returns
 * just past the closing quote, or NULL.  An unpaired surrogate decodes to
 * U+FFFD, as json-c stores it.
 */
static cursor match_key(cursor p, cursor end, const struct token *t,
                        int *match) {
  size_t pos = 0;
  int ok = 1;

  for (;;) {
    cursor stop = jsonscan_find_string_stop(p, end);
    unsigned char buf[4];
    unsigned cp;

    if (stop == end || *stop < 0x20)
      return NULL;
    if (ok)
      ok = token_eat(t, &pos, p, (size_t)(stop - p));
    p = stop;
    if (*p == '"') {
      *match = ok && pos == t->len;
      return p + 1;
    }
    p = jsonscan_unescape(p, end, &cp);
    if (p == NULL)
      return NULL;
    if (cp == JSONSCAN_LONE_SURROGATE)
      cp = 0xFFFD;
    if (ok)
      ok = token_eat(t, &pos, buf, jsonscan_utf8_encode(cp, buf));
  }
}

/* Reads token t as an array index: "0" or [1-9][0-9]*, fitting size_t. */
static int token_index(const struct token *t, size_t *index) {
  size_t v = 0, i;

  if (t->len == 0 || t->tilde || (t->p[0] == '0' && t->len > 1))
    return 0;
  for (i = 0; i < t->len; i++) {
    unsigned digit = (unsigned)(t->p[i] - '0');

    if (digit > 9 || v > (SIZE_MAX - digit) / 10)
      return 0;
    v = v * 10 + digit;
  }
  *index = v;
  return 1;
}

/*
 * p is at the '{' of an object that opens inside `depth` containers.  Scans
 * all its members (a later duplicate wins) and records in *found the span
 * of the value of the last member named t (found->start NULL when none).
 * Returns the byte after the object, or NULL when it is malformed.  Even
 * a valid object is scanned whole: a later duplicate key wins.
 */
static cursor find_member(cursor p, cursor end, unsigned depth,
                          const struct token *t, struct span *found) {
  found->start = NULL;
  p = jsonscan_skip_ws(p + 1, end);
  if (p < end && *p == '}')
    return p + 1;
  for (;;) {
    cursor value;
    int match;

    if (p == end || *p != '"')
      return NULL;
    p = match_key(p + 1, end, t, &match);
    if (p == NULL)
      return NULL;
    p = jsonscan_skip_ws(p, end);
    if (p == end || *p != ':')
      return NULL;
    value = p = jsonscan_skip_ws(p + 1, end);
    if (p == end)
      return NULL;
    p = skip_member(p, end, depth + 1);
    if (p == NULL)
      return NULL;
    if (match) {
      found->start = value;
      found->end = p;
    }
    p = jsonscan_skip_ws(p, end);
    if (p == end)
      return NULL;
    if (*p == '}')
      return p + 1;
    if (*p != ',')
      return NULL;
    p = jsonscan_skip_ws(p + 1, end);
  }
}

/* As find_member() for the array at p ('['): the element whose index
 * token t names. */
static cursor find_element(cursor p, cursor end, unsigned depth,
                           const struct token *t, struct span *found) {
  size_t want = 0, i = 0;
  int indexed = token_index(t, &want);

  found->start = NULL;
  p = jsonscan_skip_ws(p + 1, end);
  if (p < end && *p == ']')
    return p + 1;
  for (;; i++) {
    cursor value = p;

    if (p == end)
      return NULL;
    p = skip_member(p, end, depth + 1);
    if (p == NULL)
      return NULL;
    if (indexed && i == want) {
      found->start = value;
      found->end = p;
    }
    p = jsonscan_skip_ws(p, end);
    if (p == end)
      return NULL;
    if (*p == ']')
      return p + 1;
    if (*p != ',')
      return NULL;
    p = jsonscan_skip_ws(p + 1, end);
  }
}

/* "" or '/'-separated tokens whose every '~' is followed by '0' or '1'. */
static int check_pointer(const char *pointer, size_t len) {
  size_t i;

  if (len > 0 && pointer[0] != '/')
    return 0;
  for (i = 0; i < len; i++)
    if (pointer[i] == '~' &&
        (i + 1 == len || (pointer[i + 1] != '0' && pointer[i + 1] != '1')))
      return 0;
  return 1;
}

int dgw_field_find(const char *json, size_t len, const char *pointer,
                   size_t pointer_len, const char **value, size_t *value_len) {
  cursor p, end, after;
  const unsigned char *ptr = (const unsigned char *)pointer;
  const unsigned char *ptr_end = ptr + pointer_len;
  struct span cur;
  unsigned depth = 0;

  if ((json == NULL && len != 0) || pointer == NULL || value == NULL ||
      value_len == NULL || !check_pointer(pointer, pointer_len))
    return DGW_ERR_INVALID_ARGUMENT;
  if (json == NULL)
    return DGW_ERR_JSON;

  end = (cursor)json + len;
  p = jsonscan_skip_ws((cursor)json, end);
  if (p == end)
    return DGW_ERR_JSON;
  cur.start = p;
  cur.end = end; /* the outermost value is not delimited yet */

  /* Each round checks the container `cur` member by member and steps to
   * the value the next token names.  The outermost value must be followed
   * by whitespace only; an inner container must end where the skip over
   * it in its parent ended (so its brackets match in kind too). */
  while (ptr < ptr_end) {
    struct token t;
    struct span next = {NULL, NULL};

    t.p = ++ptr; /* past the '/' */
    while (ptr < ptr_end && *ptr != '/')
      ptr++;
    t.len = (size_t)(ptr - t.p);
    t.tilde = memchr(t.p, '~', t.len) != NULL;

    if (*cur.start == '{' || *cur.start == '[') {
      if (depth >= DGW_FIELD_MAX_DEPTH)
        return DGW_ERR_JSON;
      if (*cur.start == '{')
        after = find_member(cur.start, cur.end, depth, &t, &next);
      else
        after = find_element(cur.start, cur.end, depth, &t, &next);
    } else {
      after = depth == 0 ? skip_value(cur.start, end, 0) : cur.end;
    }
    if (after == NULL ||
        (depth == 0 ? jsonscan_skip_ws(after, end) != end : after != cur.end))
      return DGW_ERR_JSON;
    if (next.start == NULL) /* also: a scalar has no members */
      return DGW_ERR_NOT_FOUND;
    cur = next;
    depth++;
  }
  /* The value read is checked whole; a scalar inside a container was when
   * its container was scanned. */
  if (depth > 0 && *cur.start != '{' && *cur.start != '[')
    after = cur.end;
  else
    after = skip_value(cur.start, cur.end, depth);
  if (after == NULL ||
      (depth == 0 ? jsonscan_skip_ws(after, end) != end : after != cur.end))
    return DGW_ERR_JSON;
  *value = (const char *)cur.start;
  *value_len = (size_t)(after - cur.start);
  return DGW_OK;
}

static int find_value(const char *json, size_t len, const char *pointer,
                      struct span *v) {
  const char *value;
  size_t value_len;
  int rc;

  if (pointer == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rc = dgw_field_find(json, len, pointer, strlen(pointer), &value, &value_len);
  if (rc != DGW_OK)
    return rc;
  v->start = (cursor)value;
  v->end = v->start + value_len;
  return DGW_OK;
}

/* Appends len bytes to out (capacity cap) when they fit; counts them in *n
 * either way, so *n ends as the length needed. */
static void append(char *out, size_t cap, size_t *n, const void *src,
                   size_t len) {
  if (*n <= cap && len <= cap - *n && len > 0)
    memcpy(out + *n, src, len);
  *n += len;
}

/*
 * Decodes the valid string just past the opening quote at p (ending before
 * end) into out (cap bytes, no NUL added) and sets *out_len to the decoded
 * length, which exceeds cap when it did not fit.  Returns DGW_OK or
 * DGW_ERR_JSON for an unpaired surrogate.
 */
static int decode_string(cursor p, cursor end, char *out, size_t cap,
                         size_t *out_len) {
  size_t n = 0;

  for (;;) {
    cursor stop = jsonscan_find_string_stop(p, end);
    unsigned char buf[4];
    unsigned cp;

    append(out, cap, &n, p, (size_t)(stop - p));
    p = stop;
    if (p == end || *p == '"') {
      *out_len = n;
      return DGW_OK;
    }
    /* The text was validated: p is at a backslash with a whole escape. */
    p = jsonscan_unescape(p, end, &cp);
    if (p == NULL || cp == JSONSCAN_LONE_SURROGATE)
      return DGW_ERR_JSON;
    append(out, cap, &n, buf, jsonscan_utf8_encode(cp, buf));
  }
}

int dgw_field_present(const char *json, size_t len, const char *pointer) {
  struct span v;
  int rc = find_value(json, len, pointer, &v);

  if (rc == DGW_OK)
    return 1;
  return rc == DGW_ERR_NOT_FOUND ? 0 : rc;
}

int dgw_field_type(const char *json, size_t len, const char *pointer,
                   enum dgw_field_type *type) {
  struct span v;
  int rc;

  if (type == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rc = find_value(json, len, pointer, &v);
  if (rc != DGW_OK)
    return rc;
  switch (*v.start) {
  case 'n':
    *type = DGW_FIELD_NULL;
    break;
  case 't':
  case 'f':
    *type = DGW_FIELD_BOOL;
    break;
  case '"':
    *type = DGW_FIELD_STRING;
    break;
  case '[':
    *type = DGW_FIELD_ARRAY;
    break;
  case '{':
    *type = DGW_FIELD_OBJECT;
    break;
  default:
    *type = DGW_FIELD_NUMBER;
    break;
  }
  return DGW_OK;
}

int dgw_field_raw(const char *json, size_t len, const char *pointer,
                  const char **out, size_t *out_len) {
  struct span v;
  int rc;

  if (out == NULL || out_len == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rc = find_value(json, len, pointer, &v);
  if (rc != DGW_OK)
    return rc;
  *out = (const char *)v.start;
  *out_len = (size_t)(v.end - v.start);
  return DGW_OK;
}

int dgw_field_string(const char *json, size_t len, const char *pointer,
                     char *buf, size_t size, size_t *out_len) {
  struct span v;
  size_t n;
  int rc;

  if (out_len == NULL || (buf == NULL && size != 0))
    return DGW_ERR_INVALID_ARGUMENT;
  rc = find_value(json, len, pointer, &v);
  if (rc != DGW_OK)
    return rc;
  if (*v.start != '"')
    return DGW_ERR_TYPE;
  rc = decode_string(v.start + 1, v.end - 1, buf, size > 0 ? size - 1 : 0, &n);
  if (rc != DGW_OK)
    return rc;
  *out_len = n;
  if (n >= size)
    return DGW_ERR_BUFFER_TOO_SMALL;
  buf[n] = '\0';
  return DGW_OK;
}

int dgw_field_string_view(const char *json, size_t len, const char *pointer,
                          char *buf, size_t size, const char **out,
                          size_t *out_len) {
  struct span v;
  cursor body;
  int rc;

  if (out == NULL || out_len == NULL || (buf == NULL && size != 0))
    return DGW_ERR_INVALID_ARGUMENT;
  rc = find_value(json, len, pointer, &v);
  if (rc != DGW_OK)
    return rc;
  if (*v.start != '"')
    return DGW_ERR_TYPE;
  body = v.start + 1;
  if (jsonscan_find_string_stop(body, v.end - 1) == v.end - 1) {
    *out = (const char *)body;
    *out_len = (size_t)(v.end - 1 - body);
    return DGW_OK;
  }
  rc = dgw_field_string(json, len, pointer, buf, size, out_len);
  if (rc == DGW_OK)
    *out = buf;
  return rc;
}

int dgw_field_int64(const char *json, size_t len, const char *pointer,
                    int64_t *out) {
  struct span v;
  uint64_t magnitude;
  int rc, integer, negative;

  if (out == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rc = find_value(json, len, pointer, &v);
  if (rc != DGW_OK)
    return rc;
  if (*v.start != '-' && !jsonscan_is_digit(*v.start))
    return DGW_ERR_TYPE;
  jsonscan_scan_number(v.start, v.end, &integer);
  if (!integer)
    return DGW_ERR_TYPE;
  negative = *v.start == '-';
  if (!jsonscan_integer_magnitude(
          v.start + negative, v.end,
          negative ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &magnitude))
    return DGW_ERR_RANGE;
  /* -(INT64_MAX + 1) without overflow: negate in unsigned arithmetic. */
  *out = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
  return DGW_OK;
}

int dgw_field_uint64(const char *json, size_t len, const char *pointer,
                     uint64_t *out) {
  struct span v;
  cursor digits;
  uint64_t value;
  int rc, integer;

  if (out == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rc = find_value(json, len, pointer, &v);
  if (rc != DGW_OK)
    return rc;
  if (*v.start == '"') {
    cursor p = digits = v.start + 1;

    while (p < v.end - 1 && jsonscan_is_digit(*p))
      p++;
    if (p != v.end - 1 || p == digits || (*digits == '0' && p - digits > 1))
      return DGW_ERR_TYPE;
    if (!jsonscan_integer_magnitude(digits, p, UINT64_MAX, &value))
      return DGW_ERR_RANGE;
    *out = value;
    return DGW_OK;
  }
  if (*v.start != '-' && !jsonscan_is_digit(*v.start))
    return DGW_ERR_TYPE;
  jsonscan_scan_number(v.start, v.end, &integer);
  if (!integer)
    return DGW_ERR_TYPE;
  if (*v.start == '-') {
    if (v.end - v.start != 2 || v.start[1] != '0')
      return DGW_ERR_RANGE;
    *out = 0;
    return DGW_OK;
  }
  if (!jsonscan_integer_magnitude(v.start, v.end, UINT64_MAX, &value))
    return DGW_ERR_RANGE;
  *out = value;
  return DGW_OK;
}

int dgw_field_double(const char *json, size_t len, const char *pointer,
                     double *out) {
  char stack[NUMBER_STACK_MAX + 1];
  char *text = stack;
  struct span v;
  size_t n;
  int rc;

  if (out == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rc = find_value(json, len, pointer, &v);
  if (rc != DGW_OK)
    return rc;
  if (*v.start != '-' && !jsonscan_is_digit(*v.start))
    return DGW_ERR_TYPE;
  /* strtod() needs a NUL after the number, and json may have none. */
  n = (size_t)(v.end - v.start);
  if (n > NUMBER_STACK_MAX && (text = malloc(n + 1)) == NULL)
    return DGW_ERR_NOMEM;
  memcpy(text, v.start, n);
  text[n] = '\0';
  *out = strtod(text, NULL);
  if (text != stack)
    free(text);
  return DGW_OK;
}

int dgw_field_bool(const char *json, size_t len, const char *pointer,
                   int *out) {
  struct span v;
  int rc;

  if (out == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rc = find_value(json, len, pointer, &v);
  if (rc != DGW_OK)
    return rc;
  if (*v.start != 't' && *v.start != 'f')
    return DGW_ERR_TYPE;
  *out = *v.start == 't';
  return DGW_OK;
}

int dgw_field_null(const char *json, size_t len, const char *pointer) {
  struct span v;
  int rc = find_value(json, len, pointer, &v);

  if (rc != DGW_OK)
    return rc;
  return *v.start == 'n' ? DGW_OK : DGW_ERR_TYPE;
}

int dgw_field_count(const char *json, size_t len, const char *pointer,
                    size_t *out) {
  struct span v;
  size_t n = 0;
  cursor p;
  int rc;

  if (out == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rc = find_value(json, len, pointer, &v);
  if (rc != DGW_OK)
    return rc;
  if (*v.start != '[')
    return DGW_ERR_TYPE;
  /* Valid already: count the elements, skipping each whole. */
  p = jsonscan_skip_ws(v.start + 1, v.end);
  while (*p != ']') {
    p = skip_value(p, v.end, 1);
    n++;
    p = jsonscan_skip_ws(p, v.end);
    if (*p == ',')
      p = jsonscan_skip_ws(p + 1, v.end);
  }
  *out = n;
  return DGW_OK;
}
