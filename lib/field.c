/*
 * Fields without a DOM: JSON Pointer lookups over raw JSON text.
 *
 * The scanner is the envelope peek's (lib/payload.c): a non-recursive
 * validator that keeps the kind of each open container in a bit stack, and
 * scans strings sixteen or eight bytes at a time for the only bytes that
 * matter inside them.  A lookup checks the containers on the path member by
 * member (a later duplicate key wins, so an object is always read to its
 * end), steps over the containers beside the path by counting brackets
 * sixteen bytes at a time, and checks the value it returns whole.
 */
#include "config.h"

#include "field.h"

#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

#if defined(__GNUC__) && defined(__BYTE_ORDER__) &&                            \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define SCAN_WORDS 1
#else
#define SCAN_WORDS 0
#endif

#if defined(__SSE2__) && SCAN_WORDS
#include <emmintrin.h>
#define SCAN_SSE2 1
#else
#define SCAN_SSE2 0
#endif

/* For the few helpers called once per string or block on the hot path. */
#if defined(__GNUC__)
#define HOT_INLINE inline __attribute__((always_inline))
#else
#define HOT_INLINE inline
#endif

/* Numbers up to this many bytes are converted from a stack copy. */
#define NUMBER_STACK_MAX 63

typedef const unsigned char *cursor;

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

static int is_digit(unsigned char c);
static cursor skip_ws(cursor p, cursor end);
static HOT_INLINE cursor find_string_stop(cursor p, cursor end);
static int read_hex4(cursor p, cursor end, unsigned *value);
static cursor skip_string(cursor p, cursor end);
static cursor scan_number(cursor p, cursor end, int *integer);
static cursor skip_literal(cursor p, cursor end, const char *word, size_t len);
static cursor skip_container(cursor p, cursor end, unsigned depth);
static cursor skip_value(cursor p, cursor end, unsigned depth);
static cursor skip_nested(cursor p, cursor end);
static cursor skip_member(cursor p, cursor end, unsigned depth);
static HOT_INLINE int token_eat(const struct token *t, size_t *pos,
                                const void *bytes, size_t n);
static size_t utf8_encode(unsigned cp, unsigned char buf[4]);
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
static int integer_magnitude(cursor p, cursor end, uint64_t limit,
                             uint64_t *magnitude);
static int find_value(const char *json, size_t len, const char *pointer,
                      struct span *v);

static int is_digit(unsigned char c) {
  return (unsigned)(c - '0') < 10;
}

static cursor skip_ws(cursor p, cursor end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

/* The first byte in [p, end) that is '"', '\\' or a control byte, or end. */
static HOT_INLINE cursor find_string_stop(cursor p, cursor end) {
#if SCAN_SSE2
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

  /* "Has a zero byte" on w ^ '"', w ^ '\\' and w - 0x20: the lowest flagged
   * byte is always a real hit, so its index is exact. */
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

/* p is just past an opening quote; returns just past the closing quote. */
static cursor skip_string(cursor p, cursor end) {
  unsigned unused;

  for (;;) {
    p = find_string_stop(p, end);
    if (p == end || *p < 0x20)
      return NULL;
    if (*p == '"')
      return p + 1;
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
      p += 2;
      break;
    case 'u':
      if (!read_hex4(p + 2, end, &unused))
        return NULL;
      p += 6;
      break;
    default:
      return NULL;
    }
  }
}

/*
 * p is at '-' or a digit.  Returns the end of the number or NULL when it
 * breaks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; *integer says
 * whether it had neither fraction nor exponent.
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
 * p is at '{' or '[' of a container that opens inside `depth` others.
 * Validates it whole and returns the byte after it, or NULL.  The kind of
 * each open container is kept in a bit stack (1 = object), never on the C
 * stack.
 */
static cursor skip_container(cursor p, cursor end, unsigned depth) {
  uint64_t objects[DGW_FIELD_MAX_DEPTH / 64 + 1] = {0};
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
  case '[':
    if (depth >= DGW_FIELD_MAX_DEPTH)
      return NULL;
    depth++;
    if (*p == '{')
      objects[depth / 64] |= UINT64_C(1) << (depth % 64);
    else
      objects[depth / 64] &= ~(UINT64_C(1) << (depth % 64));
    p = skip_ws(p + 1, end);
    if (p < end && (*p == '}' || *p == ']')) {
      if (*p != (objects[depth / 64] >> (depth % 64) & 1 ? '}' : ']'))
        return NULL;
      depth--;
      p++;
      break;
    }
    if (objects[depth / 64] >> (depth % 64) & 1)
      goto member;
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
 * Validates the value at p (not whitespace, not end) that sits inside
 * `depth` open containers; returns the byte after it or NULL.  Scalars
 * are handled here so the common case never sets up the bit stack.
 */
static cursor skip_value(cursor p, cursor end, unsigned depth) {
  int integer;

  switch (*p) {
  case '"':
    return skip_string(p + 1, end);
  case '{':
  case '[':
    return skip_container(p, end, depth);
  case 't':
    return skip_literal(p, end, "true", 4);
  case 'f':
    return skip_literal(p, end, "false", 5);
  case 'n':
    return skip_literal(p, end, "null", 4);
  }
  if (*p != '-' && !is_digit(*p))
    return NULL;
  return scan_number(p, end, &integer);
}

#if SCAN_SSE2
/* Bits of the 64 bytes in v[0..3] that equal c. */
static HOT_INLINE uint64_t block_eq(const __m128i v[4], char c) {
  const __m128i c16 = _mm_set1_epi8(c);

  return (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v[0], c16)) |
         (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v[1], c16))
             << 16 |
         (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v[2], c16))
             << 32 |
         (uint64_t)(unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v[3], c16)) << 48;
}

/* The number of bits set in x (no popcnt instruction in the baseline). */
static unsigned bit_count(uint64_t x) {
  x = x - (x >> 1 & UINT64_C(0x5555555555555555));
  x = (x & UINT64_C(0x3333333333333333)) +
      (x >> 2 & UINT64_C(0x3333333333333333));
  x = (x + (x >> 4)) & UINT64_C(0x0f0f0f0f0f0f0f0f);
  return (unsigned)((x * UINT64_C(0x0101010101010101)) >> 56);
}

/* Bit i set when an odd number of the bits 0..i of x are. */
static uint64_t prefix_xor(uint64_t x) {
  x ^= x << 1;
  x ^= x << 2;
  x ^= x << 4;
  x ^= x << 8;
  x ^= x << 16;
  x ^= x << 32;
  return x;
}
#endif

/*
 * p is at the '{' or '[' of a container beside the path.  Returns the byte
 * after its matching close, or NULL when the text ends first.  Only its
 * quotes are paired (a backslash escapes the next byte) and its brackets
 * counted, whatever their kind: what lies beside the path is stepped
 * over, not read.  Where SSE2 is there, 64 bytes at a time: the bytes
 * inside strings are found from the quotes by a prefix XOR, once the rare
 * quote behind an odd run of backslashes is dropped; the brackets are
 * looked at one by one only in a block that may close the container.
 */
static cursor skip_nested(cursor p, cursor end) {
  const cursor start = p;
  uint64_t open = 0;
  int in_string = 0;

#if SCAN_SSE2
  while (end - p >= 64) {
    __m128i v[4], low[4];
    uint64_t quotes, backslashes, strings, opens, closes, brackets, maybe;
    int i;

    for (i = 0; i < 4; i++) {
      v[i] = _mm_loadu_si128((const __m128i *)(const void *)(p + 16 * i));
      /* '[' | 0x20 is '{' and ']' | 0x20 is '}'; no other byte maps there */
      low[i] = _mm_or_si128(v[i], _mm_set1_epi8(0x20));
    }
    quotes = block_eq(v, '"');
    backslashes = block_eq(v, '\\');
    /* A quote right after a backslash is escaped when the run of
     * backslashes before it is odd.  In valid JSON the run lies inside a
     * string, so after `start`; in any text the look back stops there. */
    maybe =
        quotes & (backslashes << 1 | (uint64_t)(p > start && p[-1] == '\\'));
    for (; maybe != 0; maybe &= maybe - 1) {
      int at = __builtin_ctzll(maybe);
      cursor q = p + at;
      size_t run = 0;

      while (q > start && q[-1] == '\\') {
        q--;
        run++;
      }
      if (run & 1)
        quotes &= ~(UINT64_C(1) << at);
    }
    strings = prefix_xor(quotes) ^ (in_string ? ~UINT64_C(0) : 0);
    in_string = (int)(strings >> 63);
    opens = block_eq(low, '{') & ~strings;
    closes = block_eq(low, '}') & ~strings;
    if (bit_count(closes) < open) {
      open += bit_count(opens);
      open -= bit_count(closes);
      p += 64;
      continue;
    }
    for (brackets = opens | closes; brackets != 0; brackets &= brackets - 1) {
      int at = __builtin_ctzll(brackets);

      if (opens >> at & 1)
        open++;
      else if (--open == 0)
        return p + at + 1;
    }
    p += 64;
  }
  /* The byte loop goes on from here; an escape whose backslash ended the
   * last block was taken care of above, so start the loop consistent. */
  if (in_string && p > start && p < end && p[-1] == '\\') {
    cursor q = p;
    size_t run = 0;

    while (q > start && q[-1] == '\\') {
      q--;
      run++;
    }
    if (run & 1)
      p++; /* this byte is escaped */
  }
#endif
  for (; p < end; p++) {
    if (in_string) {
      if (*p == '\\')
        p++;
      else if (*p == '"')
        in_string = 0;
    } else if (*p == '"') {
      in_string = 1;
    } else if ((*p | 0x20) == '{') {
      open++;
    } else if ((*p | 0x20) == '}' && --open == 0) {
      return p + 1;
    }
  }
  return NULL;
}

/* A member value of a container on the path (p not at end): scalars are
 * validated, containers stepped over. */
static cursor skip_member(cursor p, cursor end, unsigned depth) {
  if (*p == '{' || *p == '[')
    return skip_nested(p, end);
  return skip_value(p, end, depth);
}

/*
 * Matches the next `n` decoded key bytes against token `t` from raw offset
 * *pos; returns 1 and advances *pos when they match.
 */
static HOT_INLINE int token_eat(const struct token *t, size_t *pos,
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

static size_t utf8_encode(unsigned cp, unsigned char buf[4]) {
  if (cp < 0x80) {
    buf[0] = (unsigned char)cp;
    return 1;
  }
  if (cp < 0x800) {
    buf[0] = (unsigned char)(0xC0 | cp >> 6);
    buf[1] = (unsigned char)(0x80 | (cp & 0x3F));
    return 2;
  }
  if (cp < 0x10000) {
    buf[0] = (unsigned char)(0xE0 | cp >> 12);
    buf[1] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
    buf[2] = (unsigned char)(0x80 | (cp & 0x3F));
    return 3;
  }
  buf[0] = (unsigned char)(0xF0 | cp >> 18);
  buf[1] = (unsigned char)(0x80 | (cp >> 12 & 0x3F));
  buf[2] = (unsigned char)(0x80 | (cp >> 6 & 0x3F));
  buf[3] = (unsigned char)(0x80 | (cp & 0x3F));
  return 4;
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
    cursor stop = find_string_stop(p, end);
    unsigned char buf[4];
    unsigned cp, low;
    size_t n;

    if (stop == end || *stop < 0x20)
      return NULL;
    if (ok)
      ok = token_eat(t, &pos, p, (size_t)(stop - p));
    p = stop;
    if (*p == '"') {
      *match = ok && pos == t->len;
      return p + 1;
    }
    if (end - p < 2)
      return NULL;
    switch (p[1]) {
    case '"':
    case '\\':
    case '/':
      buf[0] = p[1];
      break;
    case 'b':
      buf[0] = '\b';
      break;
    case 'f':
      buf[0] = '\f';
      break;
    case 'n':
      buf[0] = '\n';
      break;
    case 'r':
      buf[0] = '\r';
      break;
    case 't':
      buf[0] = '\t';
      break;
    case 'u':
      if (!read_hex4(p + 2, end, &cp))
        return NULL;
      p += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF && end - p >= 6 && p[0] == '\\' &&
          p[1] == 'u' && read_hex4(p + 2, end, &low) && low >= 0xDC00 &&
          low <= 0xDFFF) {
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        p += 6;
      } else if (cp >= 0xD800 && cp <= 0xDFFF) {
        cp = 0xFFFD;
      }
      n = utf8_encode(cp, buf);
      if (ok)
        ok = token_eat(t, &pos, buf, n);
      continue;
    default:
      return NULL;
    }
    if (ok)
      ok = token_eat(t, &pos, buf, 1);
    p += 2;
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
  p = skip_ws(p + 1, end);
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
    p = skip_ws(p, end);
    if (p == end || *p != ':')
      return NULL;
    value = p = skip_ws(p + 1, end);
    if (p == end)
      return NULL;
    p = skip_member(p, end, depth + 1);
    if (p == NULL)
      return NULL;
    if (match) {
      found->start = value;
      found->end = p;
    }
    p = skip_ws(p, end);
    if (p == end)
      return NULL;
    if (*p == '}')
      return p + 1;
    if (*p != ',')
      return NULL;
    p = skip_ws(p + 1, end);
  }
}

/* As find_member() for the array at p ('['): the element whose index
 * token t names. */
static cursor find_element(cursor p, cursor end, unsigned depth,
                           const struct token *t, struct span *found) {
  size_t want = 0, i = 0;
  int indexed = token_index(t, &want);

  found->start = NULL;
  p = skip_ws(p + 1, end);
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
    p = skip_ws(p, end);
    if (p == end)
      return NULL;
    if (*p == ']')
      return p + 1;
    if (*p != ',')
      return NULL;
    p = skip_ws(p + 1, end);
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
  p = skip_ws((cursor)json, end);
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
        (depth == 0 ? skip_ws(after, end) != end : after != cur.end))
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
      (depth == 0 ? skip_ws(after, end) != end : after != cur.end))
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
    cursor stop = find_string_stop(p, end);
    unsigned char buf[4];
    unsigned cp, low;

    append(out, cap, &n, p, (size_t)(stop - p));
    p = stop;
    if (p == end || *p == '"') {
      *out_len = n;
      return DGW_OK;
    }
    /* The text was validated: p is at a backslash with a whole escape. */
    switch (p[1]) {
    case 'b':
      buf[0] = '\b';
      break;
    case 'f':
      buf[0] = '\f';
      break;
    case 'n':
      buf[0] = '\n';
      break;
    case 'r':
      buf[0] = '\r';
      break;
    case 't':
      buf[0] = '\t';
      break;
    case 'u':
      read_hex4(p + 2, end, &cp);
      p += 6;
      if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (end - p < 6 || p[0] != '\\' || p[1] != 'u' ||
            !read_hex4(p + 2, end, &low) || low < 0xDC00 || low > 0xDFFF)
          return DGW_ERR_JSON;
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        p += 6;
      } else if (cp >= 0xDC00 && cp <= 0xDFFF) {
        return DGW_ERR_JSON;
      }
      append(out, cap, &n, buf, utf8_encode(cp, buf));
      continue;
    default: /* '"', '\\', '/' */
      buf[0] = p[1];
      break;
    }
    append(out, cap, &n, buf, 1);
    p += 2;
  }
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

    if (v > (limit - digit) / 10 || digit > limit)
      return 0;
    v = v * 10 + digit;
  }
  *magnitude = v;
  return 1;
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
  if (find_string_stop(body, v.end - 1) == v.end - 1) {
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
  if (*v.start != '-' && !is_digit(*v.start))
    return DGW_ERR_TYPE;
  scan_number(v.start, v.end, &integer);
  if (!integer)
    return DGW_ERR_TYPE;
  negative = *v.start == '-';
  if (!integer_magnitude(
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

    while (p < v.end - 1 && is_digit(*p))
      p++;
    if (p != v.end - 1 || p == digits || (*digits == '0' && p - digits > 1))
      return DGW_ERR_TYPE;
    if (!integer_magnitude(digits, p, UINT64_MAX, &value))
      return DGW_ERR_RANGE;
    *out = value;
    return DGW_OK;
  }
  if (*v.start != '-' && !is_digit(*v.start))
    return DGW_ERR_TYPE;
  scan_number(v.start, v.end, &integer);
  if (!integer)
    return DGW_ERR_TYPE;
  if (*v.start == '-') {
    if (v.end - v.start != 2 || v.start[1] != '0')
      return DGW_ERR_RANGE;
    *out = 0;
    return DGW_OK;
  }
  if (!integer_magnitude(v.start, v.end, UINT64_MAX, &value))
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
  if (*v.start != '-' && !is_digit(*v.start))
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
  p = skip_ws(v.start + 1, v.end);
  while (*p != ']') {
    p = skip_value(p, v.end, 1);
    n++;
    p = skip_ws(p, v.end);
    if (*p == ',')
      p = skip_ws(p + 1, v.end);
  }
  *out = n;
  return DGW_OK;
}
