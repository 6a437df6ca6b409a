/*
 * Tests for lib/inflate.c, the zlib-stream decompressor.  Every case builds
 * its compressed input with zlib's own deflate the way Discord does (one
 * deflateInit per connection, Z_SYNC_FLUSH after each payload) and feeds it
 * in different splits, comparing the output with the original bytes.
 */
#include "config.h"

#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST
#include <zlib.h>

#include <cmocka.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <dgw/dgw.h>

#include "inflate.h"

static const uint8_t suffix[4] = {0x00, 0x00, 0xff, 0xff};

/* ------------------------------------------------------------ fixtures */

/* The server side of one connection: a deflate stream. */
struct deflater {
  z_stream zs;
};

static void deflater_init(struct deflater *d, int level) {
  memset(d, 0, sizeof *d);
  assert_int_equal(deflateInit(&d->zs, level), Z_OK);
}

static void deflater_end(struct deflater *d) {
  deflateEnd(&d->zs);
}

/*
 * Compresses `len` bytes at `data` as the next payload and ends it with
 * `flush` (Z_SYNC_FLUSH as Discord does, or Z_FINISH).  Returns malloc'd
 * bytes, their count in `*out_len`.
 */
static uint8_t *deflater_flush(struct deflater *d, const void *data, size_t len,
                               int flush, size_t *out_len) {
  size_t cap = len / 2 + 64;
  size_t used = 0;
  uint8_t *buf = malloc(cap);
  int rc;

  assert_non_null(buf);
  assert_true(len <= UINT_MAX);
  d->zs.next_in = data;
  d->zs.avail_in = (uInt)len;
  do {
    if (used == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    d->zs.next_out = buf + used;
    d->zs.avail_out = (uInt)(cap - used);
    rc = deflate(&d->zs, flush);
    assert_true(rc == Z_OK || rc == Z_BUF_ERROR || rc == Z_STREAM_END);
    used = cap - d->zs.avail_out;
  } while (d->zs.avail_out == 0);
  assert_int_equal(d->zs.avail_in, 0);
  *out_len = used;
  return buf;
}

/* One payload as Discord sends it: the bytes end with 00 00 FF FF. */
static uint8_t *deflater_payload(struct deflater *d, const void *data,
                                 size_t len, size_t *out_len) {
  uint8_t *buf = deflater_flush(d, data, len, Z_SYNC_FLUSH, out_len);

  assert_true(*out_len >= 4);
  assert_memory_equal(buf + *out_len - 4, suffix, 4);
  return buf;
}

static uint32_t lcg_next(uint32_t *state) {
  *state = *state * 1103515245u + 12345u;
  return *state >> 8;
}

/*
 * A GUILD_CREATE-like JSON text of at least `min_len` bytes: member objects
 * with pseudo-random snowflakes and hashes, so it compresses about as well
 * as real traffic.  `seed` varies the content.  Returns malloc'd text.
 */
static char *make_json(size_t min_len, uint32_t seed, size_t *len) {
  size_t cap = min_len + 1024;
  char *buf = malloc(cap);
  size_t used;
  uint32_t rnd = seed;
  unsigned i;
  int n;

  assert_non_null(buf);
  n = snprintf(buf, cap,
               "{\"t\":\"GUILD_CREATE\",\"s\":%u,\"op\":0,\"d\":{\"id\":"
               "\"81384788765712384\",\"name\":\"guild %u\",\"members\":[",
               seed, seed);
  assert_true(n > 0);
  used = (size_t)n;
  for (i = 0; used < min_len; i++) {
    char item[512];

    n = snprintf(item, sizeof item,
                 "%s{\"user\":{\"id\":\"%u%09u\",\"username\":\"user_%u\","
                 "\"global_name\":null,\"avatar\":\"%08x%08x%08x%08x\","
                 "\"discriminator\":\"0\"},\"roles\":[\"%u%09u\"],"
                 "\"joined_at\":\"2021-%02u-%02uT%02u:%02u:%02u.000000+00:00\","
                 "\"deaf\":false,\"mute\":false,\"flags\":0}",
                 i == 0 ? "" : ",", 1000000 + lcg_next(&rnd) % 9000000,
                 lcg_next(&rnd) % 1000000000, i, lcg_next(&rnd), lcg_next(&rnd),
                 lcg_next(&rnd), lcg_next(&rnd),
                 1000000 + lcg_next(&rnd) % 9000000,
                 lcg_next(&rnd) % 1000000000, 1 + lcg_next(&rnd) % 12,
                 1 + lcg_next(&rnd) % 28, lcg_next(&rnd) % 24,
                 lcg_next(&rnd) % 60, lcg_next(&rnd) % 60);
    assert_true(n > 0 && (size_t)n < sizeof item);
    if (used + (size_t)n + 4 > cap) {
      cap = (used + (size_t)n + 4) * 2;
      buf = realloc(buf, cap);
      assert_non_null(buf);
    }
    memcpy(buf + used, item, (size_t)n);
    used += (size_t)n;
  }
  memcpy(buf + used, "]}}", 4);
  *len = used + 3;
  return buf;
}

static struct dgw_inflate *inflate_new(size_t max_output) {
  int err = -1;
  struct dgw_inflate *z = dgw_inflate_new(max_output, &err);

  assert_non_null(z);
  assert_int_equal(err, DGW_OK);
  return z;
}

/* Compares a payload with the expected bytes without dumping megabytes. */
static void assert_payload(const char *out, size_t out_len,
                           const void *expected, size_t expected_len) {
  assert_non_null(out);
  assert_int_equal(out_len, expected_len);
  if (memcmp(out, expected, expected_len) != 0) {
    size_t i = 0;

    while (out[i] == ((const char *)expected)[i])
      i++;
    fail_msg("payload differs from the original at byte %zu", i);
  }
  assert_int_equal(out[out_len], '\0');
}

/* Pushes one message that must not complete a payload. */
static void push_again(struct dgw_inflate *z, const uint8_t *msg, size_t len) {
  const char *out = (const char *)1;
  size_t out_len = 1;

  assert_int_equal(dgw_inflate_push(z, msg, len, &out, &out_len),
                   DGW_ERR_AGAIN);
  assert_null(out);
  assert_int_equal(out_len, 0);
}

/* Pushes one message that must complete the payload `expected`. */
static void push_expect(struct dgw_inflate *z, const uint8_t *msg, size_t len,
                        const void *expected, size_t expected_len) {
  const char *out = NULL;
  size_t out_len = 0;

  assert_int_equal(dgw_inflate_push(z, msg, len, &out, &out_len), DGW_OK);
  assert_payload(out, out_len, expected, expected_len);
}

/* Pushes one message that must fail with `error`. */
static void push_error(struct dgw_inflate *z, const uint8_t *msg, size_t len,
                       int error) {
  const char *out = (const char *)1;
  size_t out_len = 1;

  assert_int_equal(dgw_inflate_push(z, msg, len, &out, &out_len), error);
  assert_null(out);
  assert_int_equal(out_len, 0);
}

/* Index just past the first 00 00 FF FF that does not end `buf`, or 0. */
static size_t find_inner_suffix(const uint8_t *buf, size_t len) {
  size_t i;

  for (i = 0; i + 4 < len; i++)
    if (memcmp(buf + i, suffix, 4) == 0)
      return i + 4;
  return 0;
}

/* ---------------------------------------------------------------- cases */

/* One JSON payload in one message (the fast path): DGW_OK, same bytes. */
static void test_single_payload(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t json_len, zlen;
  char *json = make_json(3000, 1, &json_len);
  uint8_t *zbuf;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  assert_true(zlen < json_len);
  push_expect(z, zbuf, zlen, json, json_len);

  free(zbuf);
  free(json);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * Five payloads on one stream, the later ones repeating the first: their
 * compressed form is a back-reference into the earlier payload, so only a
 * decompressor that keeps its context across messages gets them right.
 * Expects DGW_OK and the original bytes for each.
 */
static void test_payloads_share_context(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t json_len, first_len = 0;
  char *json = make_json(4000, 7, &json_len);
  int i;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  for (i = 0; i < 5; i++) {
    size_t zlen;
    uint8_t *zbuf;

    /* Alternate the opening so payloads are not all identical. */
    json[7] = (char)('A' + i);
    zbuf = deflater_payload(&d, json, json_len, &zlen);
    if (i == 0)
      first_len = zlen;
    else
      assert_true(zlen * 10 < first_len); /* refers back to payload 0 */
    push_expect(z, zbuf, zlen, json, json_len);
    free(zbuf);
  }

  free(json);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * The middle of three payloads split into two messages at every possible
 * point.  The first part must give DGW_ERR_AGAIN, the second DGW_OK with
 * the original bytes; the payloads around it must be unaffected.
 */
static void test_split_at_every_point(void **state) {
  struct deflater d;
  size_t len[3], zlen[3], i, split;
  char *json[3];
  uint8_t *zbuf[3];

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  for (i = 0; i < 3; i++) {
    json[i] = make_json(1500, (uint32_t)(100 + i), &len[i]);
    zbuf[i] = deflater_payload(&d, json[i], len[i], &zlen[i]);
  }
  for (split = 1; split < zlen[1]; split++) {
    struct dgw_inflate *z = inflate_new(0);

    push_expect(z, zbuf[0], zlen[0], json[0], len[0]);
    push_again(z, zbuf[1], split);
    push_expect(z, zbuf[1] + split, zlen[1] - split, json[1], len[1]);
    push_expect(z, zbuf[2], zlen[2], json[2], len[2]);
    dgw_inflate_free(z);
  }

  for (i = 0; i < 3; i++) {
    free(zbuf[i]);
    free(json[i]);
  }
  deflater_end(&d);
}

/*
 * A payload sent one byte per message: DGW_ERR_AGAIN for every byte but the
 * last, then DGW_OK with the original bytes.
 */
static void test_split_into_single_bytes(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t json_len, zlen, i;
  char *json = make_json(2000, 3, &json_len);
  uint8_t *zbuf;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  for (i = 0; i + 1 < zlen; i++)
    push_again(z, zbuf + i, 1);
  push_expect(z, zbuf + zlen - 1, 1, json, json_len);

  free(zbuf);
  free(json);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * Eight 200 KB payloads on one stream, each cut into pseudo-random chunks of
 * 1..5000 bytes: DGW_ERR_AGAIN until each payload's last chunk, which gives
 * DGW_OK and the original bytes.
 */
static void test_split_random_chunks(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  uint32_t rnd = 42;
  int p;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  for (p = 0; p < 8; p++) {
    size_t json_len, zlen, pos = 0;
    char *json = make_json(200000, (uint32_t)p, &json_len);
    uint8_t *zbuf = deflater_payload(&d, json, json_len, &zlen);

    for (;;) {
      size_t chunk = 1 + lcg_next(&rnd) % 5000;

      if (chunk >= zlen - pos)
        break;
      push_again(z, zbuf + pos, chunk);
      pos += chunk;
    }
    push_expect(z, zbuf + pos, zlen - pos, json, json_len);
    free(zbuf);
    free(json);
  }

  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * Sends the second payload of a stream with its 00 00 FF FF suffix split:
 * the first message carries the body and `in_body` suffix bytes, then one
 * message per entry of `pieces`.  Every message but the last must give
 * DGW_ERR_AGAIN, the last DGW_OK with the original bytes.
 */
static void check_suffix_split(size_t in_body, const size_t *pieces,
                               size_t npieces) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t len1, len2, zlen1, zlen2, pos, i;
  char *json1 = make_json(800, 11, &len1);
  char *json2 = make_json(800, 12, &len2);
  uint8_t *zbuf1, *zbuf2;

  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf1 = deflater_payload(&d, json1, len1, &zlen1);
  zbuf2 = deflater_payload(&d, json2, len2, &zlen2);
  push_expect(z, zbuf1, zlen1, json1, len1);

  pos = zlen2 - 4 + in_body;
  push_again(z, zbuf2, pos);
  for (i = 0; i + 1 < npieces; i++) {
    push_again(z, zbuf2 + pos, pieces[i]);
    pos += pieces[i];
  }
  assert_int_equal(pos + pieces[npieces - 1], zlen2);
  push_expect(z, zbuf2 + pos, pieces[npieces - 1], json2, len2);

  free(zbuf1);
  free(zbuf2);
  free(json1);
  free(json2);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/* "...00" then "00 FF FF". */
static void test_suffix_split_1_3(void **state) {
  static const size_t pieces[] = {3};

  (void)state;
  check_suffix_split(1, pieces, 1);
}

/* "...00 00" then "FF FF". */
static void test_suffix_split_2_2(void **state) {
  static const size_t pieces[] = {2};

  (void)state;
  check_suffix_split(2, pieces, 1);
}

/* "...00 00 FF" then "FF". */
static void test_suffix_split_3_1(void **state) {
  static const size_t pieces[] = {1};

  (void)state;
  check_suffix_split(3, pieces, 1);
}

/* The body alone, then "00", "00", "FF", "FF" as four messages. */
static void test_suffix_split_1_1_1_1(void **state) {
  static const size_t pieces[] = {1, 1, 1, 1};

  (void)state;
  check_suffix_split(0, pieces, 4);
}

/*
 * A stored (level 0) payload whose data contains 00 00 FF FF, split right
 * after those bytes: the first message ends with the suffix, but inside a
 * deflate block, so it is data.  Expects DGW_ERR_AGAIN, then DGW_OK with
 * the whole payload once the real flush arrives, then a normal payload.
 */
static void test_suffix_inside_stored_data(void **state) {
  static const uint8_t data[] = {'{',  '"',  'b', '"', ':', '"', 0x00, 0x00,
                                 0xff, 0xff, 'x', 'y', 'z', '"', '}'};
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t zlen, zlen2, split;
  uint8_t *zbuf, *zbuf2;

  (void)state;
  deflater_init(&d, Z_NO_COMPRESSION);
  zbuf = deflater_payload(&d, data, sizeof data, &zlen);
  split = find_inner_suffix(zbuf, zlen);
  assert_true(split > 0);

  push_again(z, zbuf, split);
  /* A message without the suffix while the payload is half inflated. */
  push_again(z, zbuf + split, 1);
  push_expect(z, zbuf + split + 1, zlen - split - 1, data, sizeof data);
  assert_int_equal(dgw_inflate_bytes_out(z), sizeof data);

  zbuf2 = deflater_payload(&d, "{\"op\":11}", 9, &zlen2);
  push_expect(z, zbuf2, zlen2, "{\"op\":11}", 9);

  free(zbuf);
  free(zbuf2);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * Empty messages (len 0, msg NULL): DGW_ERR_AGAIN on a fresh object and in
 * the middle of a split payload, which then completes with DGW_OK; they add
 * nothing to the byte counter.
 */
static void test_empty_message(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t json_len, zlen;
  char *json = make_json(1000, 5, &json_len);
  uint8_t *zbuf;

  (void)state;
  push_again(z, NULL, 0);
  assert_int_equal(dgw_inflate_bytes_in(z), 0);

  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  push_again(z, zbuf, zlen / 2);
  push_again(z, NULL, 0);
  push_again(z, zbuf + zlen / 2, 0);
  push_expect(z, zbuf + zlen / 2, zlen - zlen / 2, json, json_len);
  assert_int_equal(dgw_inflate_bytes_in(z), zlen);

  free(zbuf);
  free(json);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * Empty payloads: a flush with no data at the start of the stream (zlib
 * header and an empty stored block), and a bare empty stored block
 * 00 00 00 FF FF between two payloads (zlib's deflate will not flush twice
 * in a row, so that one is written by hand).  Each gives DGW_OK with length
 * 0 and a NUL at out[0]; the payloads around them are unaffected.
 */
static void test_empty_payload(void **state) {
  static const uint8_t empty_block[] = {0x00, 0x00, 0x00, 0xff, 0xff};
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  const char *out = NULL;
  size_t out_len = 1, zlen;
  uint8_t *zbuf;
  int i;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  for (i = 0; i < 2; i++) {
    if (i == 0) {
      zbuf = deflater_payload(&d, "", 0, &zlen);
      assert_int_equal(dgw_inflate_push(z, zbuf, zlen, &out, &out_len), DGW_OK);
      free(zbuf);
    } else {
      assert_int_equal(
          dgw_inflate_push(z, empty_block, sizeof empty_block, &out, &out_len),
          DGW_OK);
    }
    assert_non_null(out);
    assert_int_equal(out_len, 0);
    assert_int_equal(out[0], '\0');

    zbuf = deflater_payload(&d, "{\"op\":11}", 9, &zlen);
    push_expect(z, zbuf, zlen, "{\"op\":11}", 9);
    free(zbuf);
  }
  assert_int_equal(dgw_inflate_bytes_out(z), 18);

  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * A long payload then a short one: the short one must be NUL-terminated at
 * its own length (no stale bytes of the long one), usable as a C string.
 */
static void test_nul_termination(void **state) {
  static const char small[] = "{\"op\":11,\"d\":null}";
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  const char *out = NULL;
  size_t json_len, zlen, out_len = 0;
  char *json = make_json(5000, 9, &json_len);
  uint8_t *zbuf;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  assert_int_equal(dgw_inflate_push(z, zbuf, zlen, &out, &out_len), DGW_OK);
  assert_int_equal(out_len, json_len);
  assert_int_equal(strlen(out), json_len);
  free(zbuf);

  zbuf = deflater_payload(&d, small, strlen(small), &zlen);
  assert_int_equal(dgw_inflate_push(z, zbuf, zlen, &out, &out_len), DGW_OK);
  assert_int_equal(out_len, strlen(small));
  assert_int_equal(out[out_len], '\0');
  assert_string_equal(out, small);
  free(zbuf);

  free(json);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * Three payloads; the block header of the middle one (the first byte after
 * the previous flush) is flipped to the invalid block type 3.  Expects
 * DGW_OK, then DGW_ERR_INFLATE; the valid third payload and an empty
 * message still give DGW_ERR_INFLATE (failed state, no retry on stale
 * bytes) and are not counted; after a reset a fresh stream works.
 */
static void test_corrupt_block_type_is_sticky(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t len[3], zlen[3], i;
  char *json[3];
  uint8_t *zbuf[3];

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  for (i = 0; i < 3; i++) {
    json[i] = make_json(1000, (uint32_t)(20 + i), &len[i]);
    zbuf[i] = deflater_payload(&d, json[i], len[i], &zlen[i]);
  }
  zbuf[1][0] |= 0x06;

  push_expect(z, zbuf[0], zlen[0], json[0], len[0]);
  push_error(z, zbuf[1], zlen[1], DGW_ERR_INFLATE);
  push_error(z, zbuf[2], zlen[2], DGW_ERR_INFLATE);
  push_error(z, NULL, 0, DGW_ERR_INFLATE);
  assert_int_equal(dgw_inflate_bytes_in(z), zlen[0] + zlen[1]);
  assert_int_equal(dgw_inflate_bytes_out(z), len[0]);
  deflater_end(&d);

  dgw_inflate_reset(z);
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  for (i = 0; i < 3; i++) {
    free(zbuf[i]);
    zbuf[i] = deflater_payload(&d, json[i], len[i], &zlen[i]);
    push_expect(z, zbuf[i], zlen[i], json[i], len[i]);
  }

  for (i = 0; i < 3; i++) {
    free(zbuf[i]);
    free(json[i]);
  }
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * A first message whose zlib header byte is changed (78 -> 79, header check
 * fails), sent split in two so it goes through the buffer: DGW_ERR_AGAIN,
 * DGW_ERR_INFLATE, and DGW_ERR_INFLATE again for the next push.
 */
static void test_corrupt_header(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t json_len, zlen;
  char *json = make_json(1000, 30, &json_len);
  uint8_t *zbuf;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  assert_int_equal(zbuf[0], 0x78);
  zbuf[0] = 0x79;
  push_again(z, zbuf, 10);
  push_error(z, zbuf + 10, zlen - 10, DGW_ERR_INFLATE);
  zbuf[0] = 0x78;
  push_error(z, zbuf, zlen, DGW_ERR_INFLATE);

  free(zbuf);
  free(json);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * dgw reads the zlib header itself (lib/inflate.c inflates raw): every
 * window size a server may announce (windowBits 9..15, CINFO 1..7) works
 * for two payloads; headers inflate() would refuse are DGW_ERR_INFLATE:
 * CINFO 8 (a 64 KiB window), CM 7, a wrong FCHECK (0x78 0x9D), and each
 * header also when its two bytes come in separate messages.
 */
static void test_header_fields(void **state) {
  static const uint8_t bad[][2] = {{0x88, 0x1c}, {0x77, 0x09}, {0x78, 0x9d}};
  size_t json_len;
  char *json = make_json(3000, 31, &json_len);

  (void)state;
  for (int bits = 9; bits <= 15; bits++) {
    struct deflater d;
    struct dgw_inflate *z = inflate_new(0);
    const char *out;
    size_t out_len, zlen;
    uint8_t *zbuf;

    memset(&d, 0, sizeof d);
    assert_int_equal(
        deflateInit2(&d.zs, 6, Z_DEFLATED, bits, 8, Z_DEFAULT_STRATEGY), Z_OK);
    for (int k = 0; k < 2; k++) {
      zbuf = deflater_payload(&d, json, json_len, &zlen);
      if (k == 0)
        assert_int_equal(zbuf[0] >> 4, bits - 8); /* CINFO */
      assert_int_equal(dgw_inflate_push(z, zbuf, zlen, &out, &out_len), DGW_OK);
      assert_payload(out, out_len, json, json_len);
      free(zbuf);
    }
    deflater_end(&d);
    dgw_inflate_free(z);
  }
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    for (int split = 0; split < 2; split++) {
      struct dgw_inflate *z = inflate_new(0);
      uint8_t msg[6] = {bad[i][0], bad[i][1], 0x00, 0x00, 0xff, 0xff};

      assert_true((bad[i][0] * 256 + bad[i][1]) % 31 == 0 || bad[i][1] == 0x9d);
      if (split) {
        push_again(z, msg, 1);
        push_error(z, msg + 1, sizeof msg - 1, DGW_ERR_INFLATE);
      } else {
        push_error(z, msg, sizeof msg, DGW_ERR_INFLATE);
      }
      dgw_inflate_free(z);
    }
  }
  free(json);
}

/*
 * A stored (level 0) payload after a good one, with the length check word
 * (NLEN) of its stored block flipped in the middle of the stream: expects
 * DGW_ERR_INFLATE ("invalid stored block lengths").
 */
static void test_corrupt_stored_lengths(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t len1, len2, zlen1, zlen2;
  char *json1 = make_json(600, 31, &len1);
  char *json2 = make_json(600, 32, &len2);
  uint8_t *zbuf1, *zbuf2;

  (void)state;
  deflater_init(&d, Z_NO_COMPRESSION);
  zbuf1 = deflater_payload(&d, json1, len1, &zlen1);
  zbuf2 = deflater_payload(&d, json2, len2, &zlen2);
  /* Byte 0: block header, 1-2: LEN, 3-4: NLEN = ~LEN. */
  assert_int_equal(zbuf2[1] | zbuf2[2] << 8, len2);
  assert_int_equal(zbuf2[3] ^ 0xff, zbuf2[1]);
  zbuf2[3] ^= 0x10;

  push_expect(z, zbuf1, zlen1, json1, len1);
  push_error(z, zbuf2, zlen2, DGW_ERR_INFLATE);

  free(zbuf1);
  free(zbuf2);
  free(json1);
  free(json2);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * Bytes that are not zlib but end with 00 00 FF FF: as the first message
 * (header check fails) and after a good payload (0xFF bytes: invalid block
 * type).  Both give DGW_ERR_INFLATE.
 */
static void test_garbage_with_suffix(void **state) {
  static const uint8_t text[] = "this is not zlib\x00\x00\xff\xff";
  uint8_t ones[20];
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t zlen;
  uint8_t *zbuf;

  (void)state;
  push_error(z, text, sizeof text - 1, DGW_ERR_INFLATE);
  dgw_inflate_free(z);

  z = inflate_new(0);
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, "{\"op\":10}", 9, &zlen);
  push_expect(z, zbuf, zlen, "{\"op\":10}", 9);
  memset(ones, 0xff, sizeof ones);
  memcpy(ones + sizeof ones - 4, suffix, 4);
  push_error(z, ones, sizeof ones, DGW_ERR_INFLATE);
  push_error(z, ones, sizeof ones, DGW_ERR_INFLATE);

  free(zbuf);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * A stream made with a preset dictionary (zlib header FDICT set): Discord
 * never uses one, so inflate's Z_NEED_DICT gives DGW_ERR_INFLATE.
 */
static void test_preset_dictionary(void **state) {
  static const char dict[] = "\"op\":0,\"t\":\"MESSAGE_CREATE\"";
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t json_len, zlen;
  char *json = make_json(500, 33, &json_len);
  uint8_t *zbuf;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  assert_int_equal(
      deflateSetDictionary(&d.zs, (const Bytef *)dict, (uInt)strlen(dict)),
      Z_OK);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  assert_int_equal(zbuf[1] & 0x20, 0x20); /* FDICT */
  push_error(z, zbuf, zlen, DGW_ERR_INFLATE);

  free(zbuf);
  free(json);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * The server ends the zlib stream (Z_FINISH) and sends 00 00 FF FF after
 * the end: a stream end is never valid on a Discord connection, so
 * DGW_ERR_INFLATE.  Checked with the end and the bytes after it in one
 * message, and in two messages (the end alone gives DGW_ERR_AGAIN: it has
 * no suffix).
 */
static void test_stream_end_is_error(void **state) {
  struct deflater d;
  struct dgw_inflate *z;
  size_t zlen1, zlen2, pass;
  uint8_t *zbuf1, *zbuf2;

  (void)state;
  for (pass = 0; pass < 2; pass++) {
    z = inflate_new(0);
    deflater_init(&d, Z_DEFAULT_COMPRESSION);
    zbuf1 = deflater_payload(&d, "{\"op\":10}", 9, &zlen1);
    zbuf2 = deflater_flush(&d, "{\"op\":11}", 9, Z_FINISH, &zlen2);
    zbuf2 = realloc(zbuf2, zlen2 + 4);
    assert_non_null(zbuf2);
    memcpy(zbuf2 + zlen2, suffix, 4);

    push_expect(z, zbuf1, zlen1, "{\"op\":10}", 9);
    if (pass == 0) {
      push_error(z, zbuf2, zlen2 + 4, DGW_ERR_INFLATE);
    } else {
      push_again(z, zbuf2, zlen2);
      push_error(z, zbuf2 + zlen2, 4, DGW_ERR_INFLATE);
    }

    free(zbuf1);
    free(zbuf2);
    deflater_end(&d);
    dgw_inflate_free(z);
  }
}

/*
 * With a 1000-byte cap: three payloads of exactly 1000 bytes give DGW_OK
 * (the cap is per payload, not cumulative); a 1001-byte payload gives
 * DGW_ERR_INFLATE_LIMIT, and so does the next push.
 */
static void test_output_cap_boundary(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(1000);
  size_t json_len, zlen;
  char *json = make_json(1100, 40, &json_len);
  uint8_t *zbuf;
  int i;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  for (i = 0; i < 3; i++) {
    json[20] = (char)('0' + i);
    zbuf = deflater_payload(&d, json, 1000, &zlen);
    push_expect(z, zbuf, zlen, json, 1000);
    free(zbuf);
  }
  zbuf = deflater_payload(&d, json, 1001, &zlen);
  push_error(z, zbuf, zlen, DGW_ERR_INFLATE_LIMIT);
  free(zbuf);
  zbuf = deflater_payload(&d, json, 10, &zlen);
  push_error(z, zbuf, zlen, DGW_ERR_INFLATE_LIMIT);
  assert_int_equal(dgw_inflate_bytes_out(z), 3000);

  free(zbuf);
  free(json);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * A decompression bomb: 10 MB of zeros compress to a few KB.  With a 1 MiB
 * cap it gives DGW_ERR_INFLATE_LIMIT, both as one message and split in
 * three; nothing is delivered; after a reset a fresh stream works.
 */
static void test_output_cap_bomb(void **state) {
  const size_t bomb_len = 10 * 1000 * 1000;
  struct deflater d;
  struct dgw_inflate *z = inflate_new(1024 * 1024);
  uint8_t *zeros = calloc(1, bomb_len);
  size_t zlen, zlen2;
  uint8_t *zbuf, *zbuf2;

  (void)state;
  assert_non_null(zeros);
  deflater_init(&d, 9);
  zbuf = deflater_payload(&d, zeros, bomb_len, &zlen);
  assert_true(zlen < 20000);
  push_error(z, zbuf, zlen, DGW_ERR_INFLATE_LIMIT);
  assert_int_equal(dgw_inflate_bytes_out(z), 0);

  dgw_inflate_reset(z);
  push_again(z, zbuf, zlen / 3);
  push_again(z, zbuf + zlen / 3, zlen / 3);
  push_error(z, zbuf + 2 * (zlen / 3), zlen - 2 * (zlen / 3),
             DGW_ERR_INFLATE_LIMIT);
  deflater_end(&d);

  dgw_inflate_reset(z);
  deflater_init(&d, 9);
  zbuf2 = deflater_payload(&d, zeros, 1024 * 1024, &zlen2);
  push_expect(z, zbuf2, zlen2, zeros, 1024 * 1024);

  free(zbuf);
  free(zbuf2);
  free(zeros);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * Messages without a suffix pile up: with a 4096-byte cap, four 1000-byte
 * messages give DGW_ERR_AGAIN, the fifth (5000 bytes buffered) gives
 * DGW_ERR_INFLATE_LIMIT without inflating anything, and so does the next.
 */
static void test_buffered_input_cap(void **state) {
  uint8_t chunk[1000];
  struct dgw_inflate *z = inflate_new(4096);
  int i;

  (void)state;
  memset(chunk, 'A', sizeof chunk);
  for (i = 0; i < 4; i++)
    push_again(z, chunk, sizeof chunk);
  push_error(z, chunk, sizeof chunk, DGW_ERR_INFLATE_LIMIT);
  push_error(z, chunk, sizeof chunk, DGW_ERR_INFLATE_LIMIT);
  dgw_inflate_free(z);
}

/*
 * The input cap at its edge, with a stored (incompressible) payload whose
 * compressed size S exceeds its 1000 decompressed bytes.  Split in two:
 * cap S gives DGW_OK, cap S - 1 gives DGW_ERR_INFLATE_LIMIT at the second
 * message.  As one message (nothing buffered) cap S - 1 gives DGW_OK: only
 * the output cap applies there.
 */
static void test_buffered_input_cap_boundary(void **state) {
  struct deflater d;
  struct dgw_inflate *z;
  size_t json_len, zlen;
  char *json = make_json(1000, 41, &json_len);
  uint8_t *zbuf;

  (void)state;
  deflater_init(&d, Z_NO_COMPRESSION);
  zbuf = deflater_payload(&d, json, 1000, &zlen);
  assert_true(zlen > 1000);

  z = inflate_new(zlen);
  push_again(z, zbuf, zlen / 2);
  push_expect(z, zbuf + zlen / 2, zlen - zlen / 2, json, 1000);
  dgw_inflate_free(z);

  z = inflate_new(zlen - 1);
  push_again(z, zbuf, zlen / 2);
  push_error(z, zbuf + zlen / 2, zlen - zlen / 2, DGW_ERR_INFLATE_LIMIT);
  dgw_inflate_free(z);

  z = inflate_new(zlen - 1);
  push_expect(z, zbuf, zlen, json, 1000);
  dgw_inflate_free(z);

  free(zbuf);
  free(json);
  deflater_end(&d);
}

/*
 * A 6 MB READY-sized JSON payload under the default cap (max_output 0):
 * DGW_OK and byte-for-byte equal, as one message and on a second
 * connection in 64 KiB messages; small payloads after it on the same
 * stream (after the big buffers are released) still decode.
 */
static void test_large_payload_default_cap(void **state) {
  static const char small[] = "{\"op\":11}";
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t json_len, zlen, pos, i;
  char *json = make_json(6 * 1000 * 1000, 50, &json_len);
  uint8_t *zbuf;
  int conn;

  (void)state;
  for (conn = 0; conn < 2; conn++) {
    deflater_init(&d, Z_DEFAULT_COMPRESSION);
    zbuf = deflater_payload(&d, json, json_len, &zlen);
    if (conn == 0) {
      push_expect(z, zbuf, zlen, json, json_len);
    } else {
      for (pos = 0; zlen - pos > 65536; pos += 65536)
        push_again(z, zbuf + pos, 65536);
      push_expect(z, zbuf + pos, zlen - pos, json, json_len);
    }
    free(zbuf);
    for (i = 0; i < 3; i++) {
      zbuf = deflater_payload(&d, small, strlen(small), &zlen);
      push_expect(z, zbuf, zlen, small, strlen(small));
      free(zbuf);
    }
    deflater_end(&d);
    dgw_inflate_reset(z);
  }

  free(json);
  dgw_inflate_free(z);
}

/* Bytes of heap in use, or -1 where glibc's mallinfo2 is missing. */
static long heap_used(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
  struct mallinfo2 mi = mallinfo2();

  return (long)(mi.uordblks + mi.hblkhd);
#else
  return -1;
#endif
}

/*
 * dgw_inflate_done() after a 1 MB payload gives its output buffer back at
 * once (not at the next push); the stream goes on as before.  During a
 * payload still being assembled (the suffix was data inside a block), it
 * keeps the part inflated so far.
 */
static void test_done_releases_output(void **state) {
  static const uint8_t data[] = {'{',  '"',  'b', '"', ':', '"', 0x00, 0x00,
                                 0xff, 0xff, 'x', 'y', 'z', '"', '}'};
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  size_t json_len, zlen, split;
  char *json = make_json(1000 * 1000, 7, &json_len);
  uint8_t *zbuf;
  long base, grown;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  base = heap_used();
  push_expect(z, zbuf, zlen, json, json_len);
  free(zbuf);
  grown = heap_used();
  dgw_inflate_done(z);
  /* Only where mallinfo2 sees our allocations (not under ASan or
   * valgrind, which bring their own allocator). */
  if (base >= 0 && grown - base >= (long)json_len)
    assert_true(grown - heap_used() >= (long)json_len);
  dgw_inflate_done(z); /* twice is harmless */
  zbuf = deflater_payload(&d, "{\"op\":11}", 9, &zlen);
  push_expect(z, zbuf, zlen, "{\"op\":11}", 9);
  free(zbuf);
  deflater_end(&d);

  /* Half a payload survives. */
  dgw_inflate_reset(z);
  deflater_init(&d, Z_NO_COMPRESSION);
  zbuf = deflater_payload(&d, data, sizeof data, &zlen);
  split = find_inner_suffix(zbuf, zlen);
  assert_true(split > 0);
  push_again(z, zbuf, split);
  dgw_inflate_done(z);
  push_expect(z, zbuf + split, zlen - split, data, sizeof data);
  free(zbuf);
  deflater_end(&d);
  dgw_inflate_done(NULL);
  free(json);
  dgw_inflate_free(z);
}

/*
 * max_output 0 means 64 MiB: a zero bomb of DGW_INFLATE_DEFAULT_MAX + 1
 * bytes gives DGW_ERR_INFLATE_LIMIT.
 */
static void test_default_cap_is_64_mib(void **state) {
  const size_t n = DGW_INFLATE_DEFAULT_MAX + 1;
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  uint8_t *zeros = calloc(1, n);
  size_t zlen;
  uint8_t *zbuf;

  (void)state;
  assert_int_equal(DGW_INFLATE_DEFAULT_MAX, 64 * 1024 * 1024);
  assert_non_null(zeros);
  deflater_init(&d, 1);
  zbuf = deflater_payload(&d, zeros, n, &zlen);
  push_error(z, zbuf, zlen, DGW_ERR_INFLATE_LIMIT);

  free(zbuf);
  free(zeros);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/*
 * Two independent connections.  On the first, a payload is delivered and
 * the next one is half buffered; after the reset the second stream (which
 * starts with its own zlib header) gives DGW_OK for both of its payloads:
 * the stale bytes were dropped and the context is fresh.  A reset while a
 * payload is half inflated (suffix inside stored data) works the same.
 */
static void test_reset_between_streams(void **state) {
  static const uint8_t stored[] = {'a', 0x00, 0x00, 0xff, 0xff, 'b'};
  struct deflater a, b, c;
  struct dgw_inflate *z = inflate_new(0);
  size_t la1, la2, lb1, lb2, za1, za2, zb1, zb2, zc, split;
  char *a1 = make_json(3000, 60, &la1);
  char *a2 = make_json(3000, 61, &la2);
  char *b1 = make_json(3000, 62, &lb1);
  char *b2 = make_json(3000, 63, &lb2);
  uint8_t *za1buf, *za2buf, *zb1buf, *zb2buf, *zcbuf;

  (void)state;
  deflater_init(&a, Z_DEFAULT_COMPRESSION);
  deflater_init(&b, Z_BEST_COMPRESSION);
  deflater_init(&c, Z_NO_COMPRESSION);
  za1buf = deflater_payload(&a, a1, la1, &za1);
  za2buf = deflater_payload(&a, a2, la2, &za2);
  zb1buf = deflater_payload(&b, b1, lb1, &zb1);
  zb2buf = deflater_payload(&b, b2, lb2, &zb2);
  zcbuf = deflater_payload(&c, stored, sizeof stored, &zc);

  push_expect(z, za1buf, za1, a1, la1);
  push_again(z, za2buf, za2 / 2);
  dgw_inflate_reset(z);
  push_expect(z, zb1buf, zb1, b1, lb1);
  push_expect(z, zb2buf, zb2, b2, lb2);

  dgw_inflate_reset(z);
  split = find_inner_suffix(zcbuf, zc);
  assert_true(split > 0);
  push_again(z, zcbuf, split);
  dgw_inflate_reset(z);
  push_expect(z, za1buf, za1, a1, la1);
  push_expect(z, za2buf, za2, a2, la2);

  free(za1buf);
  free(za2buf);
  free(zb1buf);
  free(zb2buf);
  free(zcbuf);
  free(a1);
  free(a2);
  free(b1);
  free(b2);
  deflater_end(&a);
  deflater_end(&b);
  deflater_end(&c);
  dgw_inflate_free(z);
}

/*
 * bytes_in and bytes_out over split and whole payloads, a reset (which does
 * not clear them) and a second stream: they equal the compressed and
 * decompressed totals.
 */
static void test_byte_counters(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  uint64_t total_in = 0, total_out = 0;
  int conn, i;

  (void)state;
  assert_int_equal(dgw_inflate_bytes_in(z), 0);
  assert_int_equal(dgw_inflate_bytes_out(z), 0);
  for (conn = 0; conn < 2; conn++) {
    deflater_init(&d, Z_DEFAULT_COMPRESSION);
    for (i = 0; i < 4; i++) {
      size_t json_len, zlen;
      char *json =
          make_json(2000 + 1000 * (size_t)i, (uint32_t)(70 + i), &json_len);
      uint8_t *zbuf = deflater_payload(&d, json, json_len, &zlen);

      if (i % 2 == 1) {
        push_again(z, zbuf, zlen - 3);
        push_expect(z, zbuf + zlen - 3, 3, json, json_len);
      } else {
        push_expect(z, zbuf, zlen, json, json_len);
      }
      total_in += zlen;
      total_out += json_len;
      assert_int_equal(dgw_inflate_bytes_in(z), total_in);
      assert_int_equal(dgw_inflate_bytes_out(z), total_out);
      free(zbuf);
      free(json);
    }
    deflater_end(&d);
    dgw_inflate_reset(z);
    assert_int_equal(dgw_inflate_bytes_in(z), total_in);
    assert_int_equal(dgw_inflate_bytes_out(z), total_out);
  }
  assert_int_equal(dgw_inflate_bytes_in(NULL), 0);
  assert_int_equal(dgw_inflate_bytes_out(NULL), 0);
  dgw_inflate_free(z);
}

/*
 * NULL object, NULL out pointers or a NULL message with a length give
 * DGW_ERR_INVALID_ARGUMENT and leave the object usable; free and reset
 * accept NULL; dgw_inflate_new accepts a NULL err.
 */
static void test_invalid_arguments(void **state) {
  struct deflater d;
  struct dgw_inflate *z = dgw_inflate_new(0, NULL);
  const char *out = NULL;
  size_t out_len = 0, zlen;
  uint8_t *zbuf;

  (void)state;
  assert_non_null(z);
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, "{\"op\":10}", 9, &zlen);

  assert_int_equal(dgw_inflate_push(NULL, zbuf, zlen, &out, &out_len),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_inflate_push(z, zbuf, zlen, NULL, &out_len),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_inflate_push(z, zbuf, zlen, &out, NULL),
                   DGW_ERR_INVALID_ARGUMENT);
  push_error(z, NULL, 5, DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_inflate_bytes_in(z), 0);
  push_expect(z, zbuf, zlen, "{\"op\":10}", 9);

  dgw_inflate_free(NULL);
  dgw_inflate_reset(NULL);
  free(zbuf);
  deflater_end(&d);
  dgw_inflate_free(z);
}

/* ------------------------------------------------------- quiet sleeps */

/* `len` bytes of pseudo-random hex: text deflate can only match whole. */
static char *random_hex(size_t len, uint32_t seed) {
  char *buf = malloc(len + 1);
  uint32_t rnd = seed;
  size_t i;

  assert_non_null(buf);
  for (i = 0; i < len; i++)
    buf[i] = "0123456789abcdef"[lcg_next(&rnd) & 15];
  buf[len] = '\0';
  return buf;
}

static struct dgw_inflate_sleeper *sleeper_new(void) {
  struct dgw_inflate_sleeper *s = dgw_inflate_sleeper_new();

  assert_non_null(s);
  return s;
}

/*
 * Forty payloads, the window packed after every one: each next payload
 * inflates to its original bytes.  One of them repeats 2,000 random bytes
 * sent about 30 KiB before, so the stream refers back almost the whole
 * window across the sleep; a never-sleeping inflater sees the same.  One
 * sleeper serves both objects (it is shared per thread).
 */
static void test_sleep_between_payloads(void **state) {
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  struct dgw_inflate *awake = inflate_new(0);
  struct dgw_inflate_sleeper *s = sleeper_new();
  char *marker = random_hex(2000, 99);
  char *filler = random_hex(28 * 1024, 98);
  size_t far_len = 2000 + 28 * 1024;
  char *far = malloc(far_len);
  int i;

  (void)state;
  assert_non_null(far);
  memcpy(far, marker, 2000);
  memcpy(far + 2000, filler, 28 * 1024);
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  for (i = 0; i < 40; i++) {
    size_t json_len, zlen;
    char *json = i == 20   ? far
                 : i == 21 ? marker
                           : make_json(2000, 200u + (uint32_t)i, &json_len);
    uint8_t *zbuf;

    if (i == 20)
      json_len = far_len;
    else if (i == 21)
      json_len = 2000;
    zbuf = deflater_payload(&d, json, json_len, &zlen);
    if (i == 21) /* a back-reference, not the bytes again */
      assert_true(zlen < 100);
    push_expect(z, zbuf, zlen, json, json_len);
    push_expect(awake, zbuf, zlen, json, json_len);
    assert_int_equal(dgw_inflate_asleep(z), 0);
    assert_int_equal(dgw_inflate_sleep(z, s), DGW_OK);
    assert_int_equal(dgw_inflate_asleep(z), 1);
    assert_true(dgw_inflate_saved_bytes(z) > 0);
    if (i != 20) /* JSON history packs well below the 32 KiB window */
      assert_true(dgw_inflate_saved_bytes(z) < 16 * 1024);
    assert_int_equal(dgw_inflate_sleep(z, s), DGW_OK); /* twice: no-op */
    free(zbuf);
    if (i != 20 && i != 21)
      free(json);
  }
  assert_int_equal(dgw_inflate_bytes_out(z), dgw_inflate_bytes_out(awake));

  free(far);
  free(marker);
  free(filler);
  deflater_end(&d);
  dgw_inflate_free(z); /* asleep: frees the packed window */
  dgw_inflate_free(awake);
  dgw_inflate_sleeper_free(s);
}

/*
 * Where the stream cannot sleep, dgw_inflate_sleep() says DGW_ERR_AGAIN
 * and leaves it whole: half a payload in; half the zlib header in; a
 * failed object; a window smaller than 32 KiB (CINFO 2).  An object that
 * has read nothing sleeps (its state goes) and wakes as a new stream.
 */
static void test_sleep_refused(void **state) {
  static const uint8_t garbage[] = {0x78, 0x9c, 0xff, 0x00, 0x00, 0xff, 0xff};
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  struct dgw_inflate_sleeper *s = sleeper_new();
  size_t json_len, zlen;
  char *json = make_json(5000, 300, &json_len);
  uint8_t *zbuf;

  (void)state;
  assert_int_equal(dgw_inflate_sleep(NULL, s), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_inflate_sleep(z, NULL), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_inflate_asleep(NULL), 0);
  assert_int_equal(dgw_inflate_saved_bytes(NULL), 0);

  /* Nothing read yet. */
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_OK);
  assert_int_equal(dgw_inflate_saved_bytes(z), 0);
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  /* Half the header, then the rest. */
  push_again(z, zbuf, 1);
  assert_int_equal(dgw_inflate_asleep(z), 0);
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_ERR_AGAIN);
  /* Half the payload. */
  push_again(z, zbuf + 1, zlen / 2);
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_ERR_AGAIN);
  assert_int_equal(dgw_inflate_asleep(z), 0);
  push_expect(z, zbuf + 1 + zlen / 2, zlen - 1 - zlen / 2, json, json_len);
  free(zbuf);
  deflater_end(&d);

  /* Failed. */
  dgw_inflate_reset(z);
  push_error(z, garbage, sizeof garbage, DGW_ERR_INFLATE);
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_ERR_AGAIN);

  /* A 1 KiB window. */
  dgw_inflate_reset(z);
  memset(&d, 0, sizeof d);
  assert_int_equal(
      deflateInit2(&d.zs, 6, Z_DEFLATED, 10, 8, Z_DEFAULT_STRATEGY), Z_OK);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  push_expect(z, zbuf, zlen, json, json_len);
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_ERR_AGAIN);
  free(zbuf);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  push_expect(z, zbuf, zlen, json, json_len);
  free(zbuf);
  deflater_end(&d);

  free(json);
  dgw_inflate_free(z);
  dgw_inflate_sleeper_free(s);
  dgw_inflate_sleeper_free(NULL);
}

/*
 * A new connection while asleep: the packed window of the old stream is
 * dropped and the next stream starts fresh (its own header).  Corrupt
 * bytes after a sleep fail the object as always, until the reset.
 */
static void test_sleep_reset_and_corrupt(void **state) {
  static const uint8_t bad_block[] = {0xff, 0xff, 0x00, 0x00, 0xff, 0xff};
  struct deflater a, b;
  struct dgw_inflate *z = inflate_new(0);
  struct dgw_inflate_sleeper *s = sleeper_new();
  size_t l1, l2, z1, z2, z3;
  char *j1 = make_json(6000, 400, &l1);
  char *j2 = make_json(6000, 401, &l2);
  uint8_t *b1, *b2, *b3;

  (void)state;
  deflater_init(&a, Z_DEFAULT_COMPRESSION);
  deflater_init(&b, Z_BEST_SPEED);
  b1 = deflater_payload(&a, j1, l1, &z1);
  b2 = deflater_payload(&b, j2, l2, &z2);
  b3 = deflater_payload(&b, j1, l1, &z3);

  push_expect(z, b1, z1, j1, l1);
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_OK);
  dgw_inflate_reset(z);
  assert_int_equal(dgw_inflate_saved_bytes(z), 0);
  push_expect(z, b2, z2, j2, l2);
  assert_int_equal(dgw_inflate_asleep(z), 0);
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_OK);
  push_expect(z, b3, z3, j1, l1);

  assert_int_equal(dgw_inflate_sleep(z, s), DGW_OK);
  push_error(z, bad_block, sizeof bad_block, DGW_ERR_INFLATE);
  push_error(z, b1, z1, DGW_ERR_INFLATE); /* sticky */
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_ERR_AGAIN);
  dgw_inflate_reset(z);
  push_expect(z, b1, z1, j1, l1);

  free(b1);
  free(b2);
  free(b3);
  free(j1);
  free(j2);
  deflater_end(&a);
  deflater_end(&b);
  dgw_inflate_free(z);
  dgw_inflate_sleeper_free(s);
}

/*
 * A quiet shard's cycle: woken by a heartbeat ACK only, it packs again by
 * appending the ACK's bytes raw to the packed window it woke from (the
 * packed size grows by the ACK plus a 5-byte stored-block header), and
 * packs the window anew once 4 KiB were appended.  Three hundred such
 * cycles, then a payload that refers back to 2,000 random bytes sent
 * before them all: every payload is the original, as with a stream that
 * never slept.
 */
static void test_sleep_appends(void **state) {
  static const char ack[] = "{\"t\":null,\"s\":null,\"op\":11,\"d\":null}";
  struct deflater d;
  struct dgw_inflate *z = inflate_new(0);
  struct dgw_inflate *awake = inflate_new(0);
  struct dgw_inflate_sleeper *s = sleeper_new();
  char *marker = random_hex(2000, 77);
  size_t json_len, zlen, last = 0;
  char *json = make_json(14000, 600, &json_len);
  uint8_t *zbuf;
  int i, appended = 0, repacked = 0;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, marker, 2000, &zlen);
  push_expect(z, zbuf, zlen, marker, 2000);
  push_expect(awake, zbuf, zlen, marker, 2000);
  free(zbuf);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  push_expect(z, zbuf, zlen, json, json_len);
  push_expect(awake, zbuf, zlen, json, json_len);
  free(zbuf);
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_OK);
  last = dgw_inflate_saved_bytes(z);
  for (i = 0; i < 300; i++) {
    size_t now;

    zbuf = deflater_payload(&d, ack, sizeof ack - 1, &zlen);
    push_expect(z, zbuf, zlen, ack, sizeof ack - 1);
    push_expect(awake, zbuf, zlen, ack, sizeof ack - 1);
    free(zbuf);
    assert_int_equal(dgw_inflate_sleep(z, s), DGW_OK);
    now = dgw_inflate_saved_bytes(z);
    if (now == last + 5 + sizeof ack - 1)
      appended++;
    else
      repacked++;
    last = now;
  }
  print_message("%d appended, %d packed anew\n", appended, repacked);
  /* 4 KiB of ACKs (40 bytes each) between repacks. */
  assert_true(appended >= 250);
  assert_true(repacked >= 2 && repacked <= 5);
  zbuf = deflater_payload(&d, marker, 2000, &zlen);
  assert_true(zlen < 100); /* a back-reference past the ACKs */
  push_expect(z, zbuf, zlen, marker, 2000);
  push_expect(awake, zbuf, zlen, marker, 2000);
  free(zbuf);
  /* Woken by a large payload, the stream packs anew. */
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_OK);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  push_expect(z, zbuf, zlen, json, json_len);
  free(zbuf);
  assert_int_equal(dgw_inflate_sleep(z, s), DGW_OK);
  assert_true(dgw_inflate_saved_bytes(z) < 16 * 1024);
  zbuf = deflater_payload(&d, ack, sizeof ack - 1, &zlen);
  push_expect(z, zbuf, zlen, ack, sizeof ack - 1);
  free(zbuf);

  free(json);
  free(marker);
  deflater_end(&d);
  dgw_inflate_free(z);
  dgw_inflate_free(awake);
  dgw_inflate_sleeper_free(s);
}

/* RssAnon of this process in KiB (Linux), or -1. */
static long rss_anon_kb(void) {
  FILE *fp = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;

  if (fp == NULL)
    return -1;
  while (fgets(line, sizeof line, fp) != NULL)
    if (sscanf(line, "RssAnon: %ld kB", &kb) == 1)
      break;
  fclose(fp);
  return kb;
}

/*
 * What a sleep gives back.  zlib's 7 KiB state goes back to malloc (where
 * mallinfo2 sees our allocations: not under ASan or valgrind).  The
 * 32 KiB window, which zlib got on pages of its own, goes to the
 * sleeper's spares (four at most) and the next stream that wakes takes it
 * from there; windows beyond four, and the spares when the sleeper is
 * freed, are unmapped: resident anonymous memory drops by 32 KiB each
 * (where /proc/self/status tells, with glibc's malloc).
 */
static void test_sleep_frees_window(void **state) {
  struct deflater d;
  struct dgw_inflate_sleeper *s = sleeper_new();
  struct dgw_inflate *z[6];
  size_t json_len, zlen;
  char *json = make_json(40000, 500, &json_len);
  uint8_t *zbuf;
  long h0, h1 = 0, h2 = 0, h3, rss_held, rss_freed;
  size_t packed;
  int i, glibc;

  (void)state;
  deflater_init(&d, Z_DEFAULT_COMPRESSION);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  for (i = 0; i < 6; i++) {
    z[i] = inflate_new(0);
    push_expect(z[i], zbuf, zlen, json, json_len);
    dgw_inflate_done(z[i]);
    assert_int_equal(dgw_inflate_window_mapped(z[i]), 1);
  }
  h0 = heap_used();
  for (i = 0; i < 6; i++) {
    if (i == 5)
      h2 = heap_used();
    assert_int_equal(dgw_inflate_sleep(z[i], s), DGW_OK);
    assert_int_equal(dgw_inflate_window_mapped(z[i]), 0);
    assert_int_equal(dgw_inflate_sleeper_spares(s), i < 4 ? i + 1 : 4);
    if (i == 0)
      h1 = heap_used();
  }
  h3 = heap_used();
  packed = dgw_inflate_saved_bytes(z[5]);
  /* Where malloc is glibc's own, the first sleep shows the sleeper's
   * deflate stream (about 256 KiB); under ASan or valgrind nothing. */
  glibc = h0 >= 0 && h1 - h0 >= 128 * 1024;
  /* A wake takes a spare; the same stream goes on. */
  free(zbuf);
  zbuf = deflater_payload(&d, json, json_len, &zlen);
  push_expect(z[5], zbuf, zlen, json, json_len);
  assert_int_equal(dgw_inflate_window_mapped(z[5]), 1);
  assert_int_equal(dgw_inflate_sleeper_spares(s), 3);
  for (i = 0; i < 6; i++)
    dgw_inflate_free(z[i]);
  assert_int_equal(dgw_inflate_sleeper_spares(s), 4);
  rss_held = rss_anon_kb();
  dgw_inflate_sleeper_free(s);
  rss_freed = rss_anon_kb();
  print_message("one sleep: heap %+ld bytes (packed window %zu); RssAnon "
                "with four spares %ld KiB, after %ld KiB\n",
                h3 - h2, packed, rss_held, rss_freed);
  if (glibc) {
    /* zlib's 7 KiB state went, the packed window came. */
    assert_true(h3 - h2 <= (long)packed - 7 * 1024 + 512);
    if (rss_held >= 0)
      assert_true(rss_held - rss_freed >= 4 * 32 - 4);
  }
  free(zbuf);
  free(json);
  deflater_end(&d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_single_payload),
      cmocka_unit_test(test_done_releases_output),
      cmocka_unit_test(test_payloads_share_context),
      cmocka_unit_test(test_split_at_every_point),
      cmocka_unit_test(test_split_into_single_bytes),
      cmocka_unit_test(test_split_random_chunks),
      cmocka_unit_test(test_suffix_split_1_3),
      cmocka_unit_test(test_suffix_split_2_2),
      cmocka_unit_test(test_suffix_split_3_1),
      cmocka_unit_test(test_suffix_split_1_1_1_1),
      cmocka_unit_test(test_suffix_inside_stored_data),
      cmocka_unit_test(test_empty_message),
      cmocka_unit_test(test_empty_payload),
      cmocka_unit_test(test_nul_termination),
      cmocka_unit_test(test_corrupt_block_type_is_sticky),
      cmocka_unit_test(test_corrupt_header),
      cmocka_unit_test(test_header_fields),
      cmocka_unit_test(test_corrupt_stored_lengths),
      cmocka_unit_test(test_garbage_with_suffix),
      cmocka_unit_test(test_preset_dictionary),
      cmocka_unit_test(test_stream_end_is_error),
      cmocka_unit_test(test_output_cap_boundary),
      cmocka_unit_test(test_output_cap_bomb),
      cmocka_unit_test(test_buffered_input_cap),
      cmocka_unit_test(test_buffered_input_cap_boundary),
      cmocka_unit_test(test_large_payload_default_cap),
      cmocka_unit_test(test_default_cap_is_64_mib),
      cmocka_unit_test(test_reset_between_streams),
      cmocka_unit_test(test_byte_counters),
      cmocka_unit_test(test_invalid_arguments),
      cmocka_unit_test(test_sleep_between_payloads),
      cmocka_unit_test(test_sleep_refused),
      cmocka_unit_test(test_sleep_reset_and_corrupt),
      cmocka_unit_test(test_sleep_appends),
      cmocka_unit_test(test_sleep_frees_window),
  };

  return cmocka_run_group_tests_name("inflate", tests, NULL, NULL);
}
