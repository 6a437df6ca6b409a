/*
 * The one JSON scanner of dgw, shared by the envelope peek (lib/payload.c)
 * and the field getters (lib/field.c): RFC 8259 text read forwards over a
 * [p, end) range that need not be NUL-terminated, never past `end`,
 * without a DOM and without recursion.  The helpers every string and
 * value goes through are static inline here so both callers get them
 * inlined; the container walks are in lib/jsonscan.c.  Internal to dgw.
 *
 * Every function returns the byte after what it read, or NULL when the
 * text breaks the grammar or ends first.
 */
#ifndef DGW_JSONSCAN_H
#define DGW_JSONSCAN_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* Word-at-a-time string scanning needs the first byte in memory to be the
 * least significant one, and a count-trailing-zeros builtin. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) &&                            \
    __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define JSONSCAN_WORDS 1
#else
#define JSONSCAN_WORDS 0
#endif

/* Sixteen bytes at a time where SSE2 is part of the baseline (x86-64). */
#if defined(__SSE2__) && JSONSCAN_WORDS
#include <emmintrin.h>
#define JSONSCAN_SSE2 1
#else
#define JSONSCAN_SSE2 0
#endif

/* For the helpers called once per string or value on the hot paths. */
#if defined(__GNUC__)
#define JSONSCAN_HOT static inline __attribute__((always_inline))
#else
#define JSONSCAN_HOT static inline
#endif

/* The deepest max_depth jsonscan_skip_container() accepts (the size of its
 * bit stack); the envelope peek's DGW_JSON_MAX_DEPTH. */
#define JSONSCAN_DEPTH_LIMIT 512

/* What jsonscan_unescape() stores for a \u escape of a surrogate that is
 * not paired with one of the other half (above every code point). */
#define JSONSCAN_LONE_SURROGATE 0x110000u

typedef const unsigned char *jsonscan_cursor;

JSONSCAN_HOT int jsonscan_is_digit(unsigned char c) {
  return (unsigned)(c - '0') < 10;
}

/* Skips JSON whitespace only: space, tab, LF, CR. */
JSONSCAN_HOT jsonscan_cursor jsonscan_skip_ws(jsonscan_cursor p,
                                              jsonscan_cursor end) {
  while (p < end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
    p++;
  return p;
}

/*
 * Returns the first byte in [p, end) that ends a plain run inside a string
 * ('"', '\\' or a control byte), or end.
 */
JSONSCAN_HOT jsonscan_cursor jsonscan_find_string_stop(jsonscan_cursor p,
                                                       jsonscan_cursor end) {
#if JSONSCAN_SSE2
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
#if JSONSCAN_WORDS
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

/* Reads four hex digits at p into *value; returns 1, or 0 when they are
 * not there. */
JSONSCAN_HOT int jsonscan_read_hex4(jsonscan_cursor p, jsonscan_cursor end,
                                    unsigned *value) {
  unsigned v = 0;
  int i;

  if (end - p < 4)
    return 0;
  for (i = 0; i < 4; i++) {
    unsigned char c = p[i];

    if (jsonscan_is_digit(c))
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

/* p is just past an opening quote: validates the string (its escapes by
 * the grammar) and returns just past the closing quote. */
JSONSCAN_HOT jsonscan_cursor jsonscan_skip_string(jsonscan_cursor p,
                                                  jsonscan_cursor end) {
  unsigned unused;

  for (;;) {
    p = jsonscan_find_string_stop(p, end);
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
      if (!jsonscan_read_hex4(p + 2, end, &unused))
        return NULL;
      p += 6;
      break;
    default:
      return NULL;
    }
  }
}

/*
 * p is at '-' or a digit.  Returns the end of the number, or NULL when it
 * breaks -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?; *integer says
 * whether it had neither fraction nor exponent.
 */
JSONSCAN_HOT jsonscan_cursor jsonscan_scan_number(jsonscan_cursor p,
                                                  jsonscan_cursor end,
                                                  int *integer) {
  *integer = 1;
  if (*p == '-')
    p++;
  if (p == end)
    return NULL;
  if (*p == '0') {
    p++;
  } else if (jsonscan_is_digit(*p)) {
    do
      p++;
    while (p < end && jsonscan_is_digit(*p));
  } else {
    return NULL;
  }
  if (p < end && *p == '.') {
    *integer = 0;
    p++;
    if (p == end || !jsonscan_is_digit(*p))
      return NULL;
    do
      p++;
    while (p < end && jsonscan_is_digit(*p));
  }
  if (p < end && (*p == 'e' || *p == 'E')) {
    *integer = 0;
    p++;
    if (p < end && (*p == '+' || *p == '-'))
      p++;
    if (p == end || !jsonscan_is_digit(*p))
      return NULL;
    do
      p++;
    while (p < end && jsonscan_is_digit(*p));
  }
  return p;
}

/* The literal `word` (`len` bytes: true, false, null) at p. */
JSONSCAN_HOT jsonscan_cursor jsonscan_skip_literal(jsonscan_cursor p,
                                                   jsonscan_cursor end,
                                                   const char *word,
                                                   size_t len) {
  if ((size_t)(end - p) < len || memcmp(p, word, len) != 0)
    return NULL;
  return p + len;
}

/*
 * p is at the '{' or '[' of a container that opens inside `depth` others.
 * Validates it whole and returns the byte after it; NULL also when it
 * would open a container at a depth beyond `max_depth` (at most
 * JSONSCAN_DEPTH_LIMIT).  The kind of each open container is kept in a bit
 * stack (1 = object), never on the C stack, so hostile nesting cannot
 * exhaust it.
 */
jsonscan_cursor jsonscan_skip_container(jsonscan_cursor p, jsonscan_cursor end,
                                        unsigned depth, unsigned max_depth);

/*
 * Validates the value at p (not whitespace, not end) that sits inside
 * `depth` open containers, nesting at most to `max_depth`; returns the
 * byte after it.  Scalars are read here, so the common case never sets up
 * the bit stack.
 */
JSONSCAN_HOT jsonscan_cursor jsonscan_skip_value(jsonscan_cursor p,
                                                 jsonscan_cursor end,
                                                 unsigned depth,
                                                 unsigned max_depth) {
  int integer;

  switch (*p) {
  case '"':
    return jsonscan_skip_string(p + 1, end);
  case '{':
  case '[':
    return jsonscan_skip_container(p, end, depth, max_depth);
  case 't':
    return jsonscan_skip_literal(p, end, "true", 4);
  case 'f':
    return jsonscan_skip_literal(p, end, "false", 5);
  case 'n':
    return jsonscan_skip_literal(p, end, "null", 4);
  }
  if (*p != '-' && !jsonscan_is_digit(*p))
    return NULL;
  return jsonscan_scan_number(p, end, &integer);
}

/*
 * p is at the '{' or '[' of a container.  Returns the byte after its
 * matching close, or NULL when the text ends first.  Only its quotes are
 * paired (a backslash escapes the next byte) and its brackets counted,
 * whatever their kind: the text is stepped over, not validated.  Where
 * SSE2 is there, 64 bytes at a time.
 */
jsonscan_cursor jsonscan_skip_nested(jsonscan_cursor p, jsonscan_cursor end);

/*
 * p is at a backslash inside a string.  Decodes the escape into the code
 * point *cp and returns the byte after it, or NULL when it is malformed.
 * A high surrogate followed by an escaped low one is read as the pair;
 * any other surrogate stores JSONSCAN_LONE_SURROGATE (a malformed escape
 * after a high surrogate is left for the next call to refuse).
 */
jsonscan_cursor jsonscan_unescape(jsonscan_cursor p, jsonscan_cursor end,
                                  unsigned *cp);

/* Writes code point `cp` (below 0x110000) as UTF-8 into buf; returns its
 * length, 1 to 4. */
size_t jsonscan_utf8_encode(unsigned cp, unsigned char buf[4]);

/*
 * [p, end) is the digits of a validated integer without its sign.  Stores
 * its value in *magnitude and returns 1, or returns 0 when it exceeds
 * `limit`.
 */
int jsonscan_integer_magnitude(jsonscan_cursor p, jsonscan_cursor end,
                               uint64_t limit, uint64_t *magnitude);

#endif /* DGW_JSONSCAN_H */
