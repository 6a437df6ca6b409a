/*
 * The container walks of the one JSON scanner (lib/jsonscan.h): the
 * validating walk with its bit stack, the bracket-counting step over a
 * container, and the few helpers too cold to inline.
 */
#include "config.h"

#include "jsonscan.h"

typedef jsonscan_cursor cursor;

jsonscan_cursor jsonscan_skip_container(jsonscan_cursor p, jsonscan_cursor end,
                                        unsigned depth, unsigned max_depth) {
  uint64_t objects[JSONSCAN_DEPTH_LIMIT / 64 + 1] = {0};
  const unsigned base = depth;
  int integer;

  if (max_depth > JSONSCAN_DEPTH_LIMIT)
    max_depth = JSONSCAN_DEPTH_LIMIT;

value:
  p = jsonscan_skip_ws(p, end);
  if (p == end)
    return NULL;
  switch (*p) {
  case '"':
    p = jsonscan_skip_string(p + 1, end);
    break;
  case '{':
  case '[':
    if (depth >= max_depth)
      return NULL;
    depth++;
    if (*p == '{')
      objects[depth / 64] |= UINT64_C(1) << (depth % 64);
    else
      objects[depth / 64] &= ~(UINT64_C(1) << (depth % 64));
    p = jsonscan_skip_ws(p + 1, end);
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
    p = jsonscan_skip_literal(p, end, "true", 4);
    break;
  case 'f':
    p = jsonscan_skip_literal(p, end, "false", 5);
    break;
  case 'n':
    p = jsonscan_skip_literal(p, end, "null", 4);
    break;
  default:
    if (*p != '-' && !jsonscan_is_digit(*p))
      return NULL;
    p = jsonscan_scan_number(p, end, &integer);
    break;
  }
  if (p == NULL)
    return NULL;

  /* A value is complete: close containers or go on to the next element. */
  for (;;) {
    int in_object;

    if (depth == base)
      return p;
    p = jsonscan_skip_ws(p, end);
    if (p == end)
      return NULL;
    in_object = (int)(objects[depth / 64] >> (depth % 64) & 1);
    if (*p == ',') {
      p = jsonscan_skip_ws(p + 1, end);
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
  p = jsonscan_skip_string(p + 1, end);
  if (p == NULL)
    return NULL;
  p = jsonscan_skip_ws(p, end);
  if (p == end || *p != ':')
    return NULL;
  p++;
  goto value;
}

#if JSONSCAN_SSE2
/* Bits of the 64 bytes in v[0..3] that equal c. */
JSONSCAN_HOT uint64_t block_eq(const __m128i v[4], char c) {
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
 * With SSE2, 64 bytes at a time: the bytes inside strings are found from
 * the quotes by a prefix XOR, once the rare quote behind an odd run of
 * backslashes is dropped; the brackets are looked at one by one only in a
 * block that may close the container.
 */
jsonscan_cursor jsonscan_skip_nested(jsonscan_cursor p, jsonscan_cursor end) {
  const cursor start = p;
  uint64_t open = 0;
  int in_string = 0;

#if JSONSCAN_SSE2
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

jsonscan_cursor jsonscan_unescape(jsonscan_cursor p, jsonscan_cursor end,
                                  unsigned *cp) {
  unsigned low;

  if (end - p < 2)
    return NULL;
  switch (p[1]) {
  case '"':
  case '\\':
  case '/':
    *cp = p[1];
    return p + 2;
  case 'b':
    *cp = '\b';
    return p + 2;
  case 'f':
    *cp = '\f';
    return p + 2;
  case 'n':
    *cp = '\n';
    return p + 2;
  case 'r':
    *cp = '\r';
    return p + 2;
  case 't':
    *cp = '\t';
    return p + 2;
  case 'u':
    break;
  default:
    return NULL;
  }
  if (!jsonscan_read_hex4(p + 2, end, cp))
    return NULL;
  p += 6;
  if (*cp >= 0xD800 && *cp <= 0xDBFF) {
    if (end - p >= 6 && p[0] == '\\' && p[1] == 'u' &&
        jsonscan_read_hex4(p + 2, end, &low) && low >= 0xDC00 &&
        low <= 0xDFFF) {
      *cp = 0x10000 + ((*cp - 0xD800) << 10) + (low - 0xDC00);
      return p + 6;
    }
    *cp = JSONSCAN_LONE_SURROGATE;
  } else if (*cp >= 0xDC00 && *cp <= 0xDFFF) {
    *cp = JSONSCAN_LONE_SURROGATE;
  }
  return p;
}

size_t jsonscan_utf8_encode(unsigned cp, unsigned char buf[4]) {
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

int jsonscan_integer_magnitude(jsonscan_cursor p, jsonscan_cursor end,
                               uint64_t limit, uint64_t *magnitude) {
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
