/*
 * Gateway payloads: the envelope peek, d parsing and payload encoding.
 *
 * The peek is a hand-written, non-recursive JSON validator.  Only the
 * envelope's own members are looked at; every other value, `d` included, is
 * skipped by skip_value(), which keeps the kind of each open container in a
 * bit stack so a hostile payload cannot exhaust the C stack.  Strings are
 * scanned eight bytes at a time for the only bytes that matter inside them:
 * '"', '\\' and control bytes.
 */
#include "config.h"

#include "payload.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <dgw/dgw.h>

/* Word-at-a-time string scanning needs the first byte in memory to be the
 * least significant one, and a count-trailing-zeros builtin. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) &&                            \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SCAN_WORDS 1
#else
#define SCAN_WORDS 0
#endif

/* Sixteen bytes at a time where SSE2 is part of the baseline (x86-64). */
#if defined(__SSE2__) && SCAN_WORDS
#include <emmintrin.h>
#define SCAN_SSE2 1
#else
#define SCAN_SSE2 0
#endif

/* Flags set by decode_string(). */
#define DECODED_TRUNCATED 1u /* did not fit in the output buffer */
#define DECODED_NUL 2u       /* contained U+0000 */

/* The envelope member a key names. */
enum envelope_key { KEY_OTHER, KEY_OP, KEY_D, KEY_S, KEY_T };

/* What the last occurrence of an envelope member held. */
enum member_state { MEMBER_ABSENT, MEMBER_NULL, MEMBER_OK, MEMBER_BAD };

typedef const unsigned char *cursor;

static int is_digit(unsigned char c);
static cursor skip_ws(cursor p, cursor end);
static cursor find_string_stop(cursor p, cursor end);
static cursor skip_escape(cursor p, cursor end);
static cursor skip_string(cursor p, cursor end);
static int read_hex4(cursor p, cursor end, unsigned *value);
static void append(char *out, size_t cap, size_t *n, unsigned *flags,
                   const void *src, size_t len);
static void append_utf8(char *out, size_t cap, size_t *n, unsigned *flags,
                        unsigned cp);
static cursor decode_string(cursor p, cursor end, char *out, size_t cap,
                            size_t *out_len, unsigned *flags);
static cursor scan_number(cursor p, cursor end, int *integer);
static cursor skip_literal(cursor p, cursor end, const char *word, size_t len);
static cursor skip_value(cursor p, cursor end, unsigned depth);
static int integer_magnitude(cursor p, cursor end, uint64_t limit,
                             uint64_t *magnitude);
static enum envelope_key key_kind(const char *key, size_t len, unsigned flags);
static cursor peek_op(cursor p, cursor end, struct dgw_envelope *env,
                      enum member_state *state);
static cursor peek_seq(cursor p, cursor end, struct dgw_envelope *env,
                       enum member_state *state);
static cursor peek_name(cursor p, cursor end, struct dgw_envelope *env,
                        enum member_state *state);
static int is_ws_only(const char *p, size_t len);

static int is_digit(unsigned char c) {
  return (unsigned)(c - '0') < 10;
}

/* JSON whitespace only: space, tab, LF, CR. */
static cursor skip_ws(cursor p, cursor end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

/*
 * Returns the first byte in [p, end) that ends a plain run inside a string
 * ('"', '\\' or a control byte), or end.
 */
static cursor find_string_stop(cursor p, cursor end) {
#if SCAN_SSE2
  /* A byte stops the run when it is '"', '\\', or below 0x20 (it equals
   * its own minimum with 0x1f). */
  const __m128i quote16 = _mm_set1_epi8('"');
  const __m128i backslash16 = _mm_set1_epi8('\\');
  const __m128i control16 = _mm_set1_epi8(0x1f);

  while (end - p >= 16) {
    __m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);
    __m128i hit = _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(v, quote16),
                                            _mm_cmpeq_epi8(v, backslash16)),
                               _mm_cmpeq_epi8(_mm_min_epu8(v, control16), v));
    unsigned mask = (unsigned)_mm_movemask_epi8(hit);

    if (mask != 0)
      return p + __builtin_ctz(mask);
    p += 16;
  }
#endif
#if SCAN_WORDS
  const uint64_t ones = UINT64_C(0x0101010101010101);
  const uint64_t highs = UINT64_C(0x8080808080808080);

  /* The classic "has a zero byte" test applied to w ^ '"', w ^ '\\' and
   * w - 0x20: the lowest flagged byte is always a real hit (borrows only
   * create false hits above it), so its index is exact. */
  while (end - p >= 8) {
    uint64_t w, quote, backslash, mask;

    memcpy(&w, p, sizeof w);
    quote = w ^ (ones * '"');
    backslash = w ^ (ones * '\\');
    mask = (((quote - ones) & ~quote) | ((backslash - ones) & ~backslash) |
            ((w - ones * 0x20) & ~w)) &
           highs;
    if (mask != 0)
      return p + (__builtin_ctzll(mask) >> 3);
    p += 8;
  }
#endif
  while (p < end && *p != '"' && *p != '\\' && *p >= 0x20)
    p++;
  return p;
}

/* p is at a backslash; returns the byte after the escape or NULL. */
static cursor skip_escape(cursor p, cursor end) {
  unsigned unused;

  if (end - p < 2)
    return NULL;
  switch (p[1]) {
  case '"':
  case '\\':
  case '/':
  case 'b':
  case 'f':
  case 'n':
  case 'r':
  case 't':
    return p + 2;
  case 'u':
    return read_hex4(p + 2, end, &unused) ? p + 6 : NULL;
  }
  return NULL;
}

/* p is just past an opening quote; returns just past the closing quote. */
static cursor skip_string(cursor p, cursor end) {
  for (;;) {
    p = find_string_stop(p, end);
    if (p == end)
      return NULL;
    if (*p == '"')
      return p + 1;
    if (*p != '\\')
      return NULL; /* a raw control byte */
    p = skip_escape(p, end);
    if (p == NULL)
      return NULL;
  }
}

static int read_hex4(cursor p, cursor end, unsigned *value) {
  unsigned v = 0;
  int i;

  if (end - p < 4)
    return 0;
  for (i = 0; i < 4; i++) {
    unsigned char c = p[i];

    if (is_digit(c))
      v = v << 4 | (unsigned)(c - '0');
    else if (c >= 'a' && c <= 'f')
      v = v << 4 | (unsigned)(c - 'a' + 10);
    else if (c >= 'A' && c <= 'F')
      v = v << 4 | (unsigned)(c - 'A' + 10);
    else
      return 0;
  }
  *value = v;
  return 1;
}

/* Appends len bytes to out (capacity cap, *n used) or flags truncation. */
static void append(char *out, size_t cap, size_t *n, unsigned *flags,
                   const void *src, size_t len) {
  if (len > cap - *n) {
    *flags |= DECODED_TRUNCATED;
    return;
  }
  if (len > 0)
    memcpy(out + *n, src, len);
  *n += len;
}

static void append_utf8(char *out, size_t cap, size_t *n, unsigned *flags,
                        unsigned cp) {
  unsigned char buf[4];
  size_t len;

  if (cp < 0x80) {
    buf[0] = (unsigned char)cp;
    len = 1;
  } else if (cp < 0x800) {
    buf[0] = (unsigned char)(0xC0 | cp >> 6);
    buf[1] = (unsigned char)(0x80 | (cp & 0x3F));
    len = 2;
  } else if (cp < 0x10000) {
    buf[0] = (unsigned char)(0xE0 | cp >> 12);
    buf[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    buf[2] = (unsigned char)(0x80 | (cp & 0x3F));
    len = 3;
  } else {
    buf[0] = (unsigned char)(0xF0 | cp >> 18);
    buf[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
    buf[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    buf[3] = (unsigned char)(0x80 | (cp & 0x3F));
    len = 4;
  }
  append(out, cap, n, flags, buf, len);
}

/*
 * Decodes the string whose opening quote is just before p into out (cap
 * bytes, no NUL added).  Sets *out_len to the bytes written and *flags to
 * DECODED_* bits; after DECODED_TRUNCATED the contents are meaningless, but
 * the string is still validated to its end.  Returns just past the closing
 * quote, or NULL on a syntax error.
 */
static cursor decode_string(cursor p, cursor end, char *out, size_t cap,
                            size_t *out_len, unsigned *flags) {
  size_t n = 0;

  *flags = 0;
  for (;;) {
    cursor stop = find_string_stop(p, end);
    unsigned cp, low;
    char c;

    append(out, cap, &n, flags, p, (size_t)(stop - p));
    p = stop;
    if (p == end)
      return NULL;
    if (*p == '"') {
      *out_len = n;
      return p + 1;
    }
    if (*p != '\\' || end - p < 2)
      return NULL;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
      c = (char)p[1];
      break;
    case 'b':
      c = '\b';
      break;
    case 'f':
      c = '\f';
      break;
    case 'n':
      c = '\n';
      break;
    case 'r':
      c = '\r';
      break;
    case 't':
      c = '\t';
      break;
    case 'u':
      if (!read_hex4(p + 2, end, &cp))
        return NULL;
      p += 6;
      /* Pair a high surrogate with a following low one; anything else
       * unpaired becomes U+FFFD, as json-c does.  A malformed escape after
       * a high surrogate is left for the next round to reject. */
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
            read_hex4(p + 2, end, &low) && low >= 0xDC00 && low <= 0xDFFF) {
          cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
          p += 6;
        } else {
          cp = 0xFFFD;
        }
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        cp = 0xFFFD;
      }
      if (cp == 0)
        *flags |= DECODED_NUL;
      append_utf8(out, cap, &n, flags, cp);
      continue;
    default:
      return NULL;
    }
    append(out, cap, &n, flags, &c, 1);
    p += 2;
  }
}

/*
 * p is at '-' or a digit.  Returns the end of the number or NULL when it
 * breaks the grammar -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?;
 * *integer says whether it had neither fraction nor exponent.
 */
static cursor scan_number(cursor p, cursor end, int *integer) {
  *integer = 1;
  if (*p == '-')
    p++;
  if (p == end)
    return NULL;
  if (*p == '0') {
    p++;
  } else if (is_digit(*p)) {
    do
      p++;
    while (p < end && is_digit(*p));
  } else {
    return NULL;
  }
  if (p < end && *p == '.') {
    *integer = 0;
    p++;
    if (p == end || !is_digit(*p))
      return NULL;
    do
      p++;
    while (p < end && is_digit(*p));
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    *integer = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    if (p == end || !is_digit(*p))
      return NULL;
    do
      p++;
    while (p < end && is_digit(*p));
  }
  return p;
}

static cursor skip_literal(cursor p, cursor end, const char *word, size_t len) {
  if ((size_t)(end - p) < len || memcmp(p, word, len) != 0)
    return NULL;
  return p + len;
}

/*
 * Validates one JSON value starting at p (whitespace allowed before it)
 * that sits inside `depth` open containers, and returns the byte after it,
 * or NULL.  Containers opened here are tracked in a bit stack (1 = object)
 * indexed by depth, never by recursion.
 */
static cursor skip_value(cursor p, cursor end, unsigned depth) {
  uint64_t objects[DGW_JSON_MAX_DEPTH / 64 + 1] = {0};
  const unsigned base = depth;
  int integer;

value:
  p = skip_ws(p, end);
  if (p == end)
    return NULL;
  switch (*p) {
  case '"':
    p = skip_string(p + 1, end);
    break;
  case '{':
    if (depth >= DGW_JSON_MAX_DEPTH)
      return NULL;
    depth++;
    objects[depth / 64] |= UINT64_C(1) << (depth % 64);
    p = skip_ws(p + 1, end);
    if (p < end && *p == '}') {
      depth--;
      p++;
      break;
    }
    goto member;
  case '[':
    if (depth >= DGW_JSON_MAX_DEPTH)
      return NULL;
    depth++;
    objects[depth / 64] &= ~(UINT64_C(1) << (depth % 64));
    p = skip_ws(p + 1, end);
    if (p < end && *p == ']') {
      depth--;
      p++;
      break;
    }
    goto value;
  case 't':
    p = skip_literal(p, end, "true", 4);
    break;
  case 'f':
    p = skip_literal(p, end, "false", 5);
    break;
  case 'n':
    p = skip_literal(p, end, "null", 4);
    break;
  default:
    if (*p != '-' && !is_digit(*p))
      return NULL;
    p = scan_number(p, end, &integer);
    break;
  }
  if (p == NULL)
    return NULL;

  /* A value is complete: close containers or go on to the next element. */
  for (;;) {
    int in_object;

    if (depth == base)
      return p;
    p = skip_ws(p, end);
    if (p == end)
      return NULL;
    in_object = (int)(objects[depth / 64] >> (depth % 64) & 1);
    if (*p == ',') {
      p = skip_ws(p + 1, end);
      if (in_object)
        goto member;
      goto value;
    }
    if (*p != (in_object ? '}' : ']'))
      return NULL;
    depth--;
    p++;
  }

member:
  if (p == end || *p != '"')
    return NULL;
  p = skip_string(p + 1, end);
  if (p == NULL)
    return NULL;
  p = skip_ws(p, end);
  if (p == end || *p != ':')
    return NULL;
  p++;
  goto value;
}

/*
 * [p, end) is the digits of a validated integer without its sign.  Stores
 * its value in *magnitude and returns 1, or returns 0 when it exceeds
 * `limit`.
 */
static int integer_magnitude(cursor p, cursor end, uint64_t limit,
                             uint64_t *magnitude) {
  uint64_t v = 0;

  for (; p < end; p++) {
    unsigned digit = (unsigned)(*p - '0');

    if (digit > limit || v > (limit - digit) / 10)
      return 0;
    v = v * 10 + digit;
  }
  *magnitude = v;
  return 1;
}

static enum envelope_key key_kind(const char *key, size_t len, unsigned flags) {
  if (flags != 0)
    return KEY_OTHER;
  if (len == 2 && key[0] == 'o' && key[1] == 'p')
    return KEY_OP;
  if (len != 1)
    return KEY_OTHER;
  switch (key[0]) {
  case 'd':
    return KEY_D;
  case 's':
    return KEY_S;
  case 't':
    return KEY_T;
  }
  return KEY_OTHER;
}

/* The peek_* functions read one envelope member's value at p (not at end)
 * and return the byte after it, or NULL on a syntax error; a value of the
 * wrong type or range is still validated, then marked MEMBER_BAD. */

static cursor peek_op(cursor p, cursor end, struct dgw_envelope *env,
                      enum member_state *state) {
  cursor q;
  int integer, negative;
  uint64_t magnitude;

  if (*p != '-' && !is_digit(*p)) {
    *state = MEMBER_BAD;
    return skip_value(p, end, 1);
  }
  q = scan_number(p, end, &integer);
  if (q == NULL)
    return NULL;
  negative = *p == '-';
  if (integer &&
      integer_magnitude(p + negative, q,
                        negative ? (uint64_t)INT_MAX + 1 : (uint64_t)INT_MAX,
                        &magnitude)) {
    env->op = negative ? (int)-(int64_t)magnitude : (int)magnitude;
    *state = MEMBER_OK;
  } else {
    *state = MEMBER_BAD;
  }
  return q;
}

static cursor peek_seq(cursor p, cursor end, struct dgw_envelope *env,
                       enum member_state *state) {
  cursor q;
  int integer, negative;
  uint64_t magnitude;

  if (*p == 'n') {
    *state = MEMBER_NULL;
    return skip_literal(p, end, "null", 4);
  }
  if (*p != '-' && !is_digit(*p)) {
    *state = MEMBER_BAD;
    return skip_value(p, end, 1);
  }
  q = scan_number(p, end, &integer);
  if (q == NULL)
    return NULL;
  /* Only "-0" survives a limit of 0 among negative numbers. */
  negative = *p == '-';
  if (integer &&
      integer_magnitude(p + negative, q, negative ? 0 : (uint64_t)INT64_MAX,
                        &magnitude)) {
    env->seq = (int64_t)magnitude;
    *state = MEMBER_OK;
  } else {
    *state = MEMBER_BAD;
  }
  return q;
}

static cursor peek_name(cursor p, cursor end, struct dgw_envelope *env,
                        enum member_state *state) {
  cursor q;
  unsigned flags;

  if (*p == 'n') {
    *state = MEMBER_NULL;
    return skip_literal(p, end, "null", 4);
  }
  if (*p != '"') {
    *state = MEMBER_BAD;
    return skip_value(p, end, 1);
  }
  q = decode_string(p + 1, end, env->name, DGW_EVENT_NAME_MAX, &env->name_len,
                    &flags);
  *state = flags == 0 ? MEMBER_OK : MEMBER_BAD;
  return q;
}

int dgw_envelope_peek(const char *json, size_t len, struct dgw_envelope *env) {
  enum member_state op = MEMBER_ABSENT, seq = MEMBER_ABSENT;
  enum member_state name = MEMBER_ABSENT;
  cursor p, end;

  if (env == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  memset(env, 0, sizeof *env);
  env->d = NULL;
  if (json == NULL)
    return len == 0 ? DGW_ERR_JSON : DGW_ERR_INVALID_ARGUMENT;

  p = (cursor)json;
  end = p + len;
  p = skip_ws(p, end);
  if (p == end || *p != '{')
    goto fail;
  p = skip_ws(p + 1, end);
  if (p < end && *p == '}') {
    p++;
  } else {
    for (;;) {
      char key[2];
      size_t key_len = 0;
      unsigned flags;
      cursor value;

      if (p == end || *p != '"')
        goto fail;
      p = decode_string(p + 1, end, key, sizeof key, &key_len, &flags);
      if (p == NULL)
        goto fail;
      p = skip_ws(p, end);
      if (p == end || *p != ':')
        goto fail;
      p = skip_ws(p + 1, end);
      if (p == end)
        goto fail;
      switch (key_kind(key, key_len, flags)) {
      case KEY_OP:
        p = peek_op(p, end, env, &op);
        break;
      case KEY_S:
        p = peek_seq(p, end, env, &seq);
        break;
      case KEY_T:
        p = peek_name(p, end, env, &name);
        break;
      case KEY_D:
        value = p;
        p = skip_value(p, end, 1);
        if (p != NULL) {
          env->d = (const char *)value;
          env->d_len = (size_t)(p - value);
        }
        break;
      case KEY_OTHER:
        p = skip_value(p, end, 1);
        break;
      }
      if (p == NULL)
        goto fail;
      p = skip_ws(p, end);
      if (p == end)
        goto fail;
      if (*p == '}') {
        p++;
        break;
      }
      if (*p != ',')
        goto fail;
      p = skip_ws(p + 1, end);
    }
  }
  if (skip_ws(p, end) != end)
    goto fail;
  if (op != MEMBER_OK || seq == MEMBER_BAD || name == MEMBER_BAD)
    goto fail;

  env->has_seq = seq == MEMBER_OK;
  if (!env->has_seq)
    env->seq = 0;
  env->has_name = name == MEMBER_OK;
  if (!env->has_name)
    env->name_len = 0;
  env->name[env->name_len] = '\0';
  return DGW_OK;

fail:
  memset(env, 0, sizeof *env);
  env->d = NULL;
  return DGW_ERR_JSON;
}

static int is_ws_only(const char *p, size_t len) {
  return skip_ws((cursor)p, (cursor)p + len) == (cursor)p + len;
}

struct json_tokener *dgw_payload_tokener_new(void) {
  /* json-c counts the value inside the deepest container as a level, so
   * DGW_JSON_MAX_DEPTH admits DGW_JSON_MAX_DEPTH - 1 nested containers:
   * exactly what the peek allows inside the envelope. */
  return json_tokener_new_ex(DGW_JSON_MAX_DEPTH);
}

struct json_object *dgw_payload_parse_with(struct json_tokener *tok,
                                           const char *text, size_t len,
                                           int *err) {
  struct json_tokener *own = NULL;
  struct json_object *obj;
  enum json_tokener_error jerr;
  size_t off = 0;
  int unused;

  if (err == NULL)
    err = &unused;
  if (text == NULL) {
    *err = len == 0 ? DGW_OK : DGW_ERR_INVALID_ARGUMENT;
    return NULL;
  }
  if (tok == NULL && (tok = own = dgw_payload_tokener_new()) == NULL) {
    *err = DGW_ERR_NOMEM;
    return NULL;
  }
  json_tokener_reset(tok);
  /* json-c takes an int length: feed huge texts in pieces. */
  do {
    size_t piece = len - off > INT_MAX ? (size_t)INT_MAX : len - off;

    obj = json_tokener_parse_ex(tok, text + off, (int)piece);
    jerr = json_tokener_get_error(tok);
    off +=
        jerr == json_tokener_continue ? piece : json_tokener_get_parse_end(tok);
  } while (jerr == json_tokener_continue && off < len);
  if (jerr == json_tokener_continue) {
    /* A number or literal at the very end of the text waits for a
     * terminator; end the input with a NUL as json_tokener_parse() does. */
    obj = json_tokener_parse_ex(tok, "", 1);
    jerr = json_tokener_get_error(tok);
  }
  json_tokener_reset(tok); /* drop what a failed parse left half-built */
  if (own != NULL)         /* json-c's free does not take NULL */
    json_tokener_free(own);
  if (jerr != json_tokener_success || !is_ws_only(text + off, len - off)) {
    json_object_put(obj);
    *err = DGW_ERR_JSON;
    return NULL;
  }
  *err = DGW_OK;
  return obj;
}

struct json_object *dgw_payload_parse(const char *text, size_t len, int *err) {
  return dgw_payload_parse_with(NULL, text, len, err);
}

int dgw_payload_encode(int op, struct json_object *d, size_t max_len,
                       char **out, size_t *out_len) {
  struct json_object *payload, *op_obj;
  const char *text;
  size_t text_len;
  char *copy;
  int rc;

  if (out == NULL || out_len == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  *out = NULL;
  *out_len = 0;

  payload = json_object_new_object();
  if (payload == NULL)
    return DGW_ERR_NOMEM;
  op_obj = json_object_new_int(op);
  if (op_obj == NULL || json_object_object_add(payload, "op", op_obj) != 0) {
    json_object_put(op_obj);
    rc = DGW_ERR_NOMEM;
    goto out;
  }
  /* The payload holds its own reference to d while it lives. */
  if (json_object_object_add(payload, "d", json_object_get(d)) != 0) {
    json_object_put(d);
    rc = DGW_ERR_NOMEM;
    goto out;
  }
  text = json_object_to_json_string_length(
      payload, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
      &text_len);
  if (text == NULL) {
    rc = DGW_ERR_NOMEM;
    goto out;
  }
  if (max_len != 0 && text_len > max_len) {
    rc = DGW_ERR_PAYLOAD_TOO_LARGE;
    goto out;
  }
  copy = malloc(text_len + 1);
  if (copy == NULL) {
    rc = DGW_ERR_NOMEM;
    goto out;
  }
  memcpy(copy, text, text_len + 1);
  *out = copy;
  *out_len = text_len;
  rc = DGW_OK;
out:
  json_object_put(payload);
  return rc;
}

const char *dgw_op_name(int op) {
  switch (op) {
  case DGW_OP_DISPATCH:
    return "DISPATCH";
  case DGW_OP_HEARTBEAT:
    return "HEARTBEAT";
  case DGW_OP_IDENTIFY:
    return "IDENTIFY";
  case DGW_OP_PRESENCE_UPDATE:
    return "PRESENCE_UPDATE";
  case DGW_OP_VOICE_STATE_UPDATE:
    return "VOICE_STATE_UPDATE";
  case DGW_OP_RESUME:
    return "RESUME";
  case DGW_OP_RECONNECT:
    return "RECONNECT";
  case DGW_OP_REQUEST_GUILD_MEMBERS:
    return "REQUEST_GUILD_MEMBERS";
  case DGW_OP_INVALID_SESSION:
    return "INVALID_SESSION";
  case DGW_OP_HELLO:
    return "HELLO";
  case DGW_OP_HEARTBEAT_ACK:
    return "HEARTBEAT_ACK";
  case DGW_OP_REQUEST_SOUNDBOARD_SOUNDS:
    return "REQUEST_SOUNDBOARD_SOUNDS";
  case DGW_OP_REQUEST_CHANNEL_INFO:
    return "REQUEST_CHANNEL_INFO";
  }
  return "UNKNOWN";
}
