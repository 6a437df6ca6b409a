/*
 * Tests for the zstd-stream decompressor (lib/zstd_stream.c) and the
 * transport-compression seam (lib/decomp.c).  The compressed input is made
 * with libzstd's own compressor the way Discord sends it: one ZSTD_CCtx per
 * connection, ZSTD_e_flush after each payload, never ZSTD_e_end; it is fed
 * whole, split at every point and byte by byte, and corrupted.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <zstd.h>

#include <dgw/dgw.h>

#include "decomp.h"
#include "inflate.h"
#include "zstd_stream.h"

/* ------------------------------------------------------------ fixtures */

/* Compresses `len` bytes as the next payload of `cc`'s stream, ended with
 * `end` (ZSTD_e_flush as Discord does, or ZSTD_e_end).  Returns malloc'd
 * bytes, their count in `*out_len`. */
static uint8_t *zflush(ZSTD_CCtx *cc, const void *data, size_t len,
                       ZSTD_EndDirective end, size_t *out_len) {
  size_t cap = ZSTD_compressBound(len) + 64;
  uint8_t *buf = malloc(cap);
  ZSTD_inBuffer in = {data, len, 0};
  ZSTD_outBuffer out = {buf, cap, 0};
  size_t left;

  assert_non_null(buf);
  do {
    left = ZSTD_compressStream2(cc, &out, &in, end);
    assert_false(ZSTD_isError(left));
  } while (left != 0);
  *out_len = out.pos;
  return buf;
}

static ZSTD_CCtx *cctx(int level) {
  ZSTD_CCtx *cc = ZSTD_createCCtx();

  assert_non_null(cc);
  assert_false(
      ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_compressionLevel, level)));
  return cc;
}

static struct dgw_decomp *zd_new(size_t max) {
  int err = -1;
  struct dgw_decomp *d = dgw_decomp_new(DGW_COMPRESSION_ZSTD, max, &err);

  assert_non_null(d);
  assert_int_equal(err, DGW_OK);
  return d;
}

/* A JSON-ish payload of about `len` bytes, different for each `seed`. */
static char *payload(size_t len, unsigned seed) {
  char *p = malloc(len + 1);
  size_t i = 0;

  assert_non_null(p);
  while (i < len) {
    int n = snprintf(p + i, len + 1 - i,
                     "{\"op\":0,\"t\":\"MESSAGE_CREATE\",\"s\":%u,\"d\":{"
                     "\"content\":\"hello %u\"}}",
                     seed, (unsigned)(i * 7 + seed));
    if (n < 0)
      break;
    i += (size_t)n < len + 1 - i ? (size_t)n : len - i;
    seed = seed * 1103515245u + 12345u;
  }
  p[len] = '\0';
  return p;
}

static void push_expect(struct dgw_decomp *d, const uint8_t *msg, size_t len,
                        const char *want, size_t want_len) {
  const char *out = NULL;
  size_t out_len = 0;

  assert_int_equal(dgw_decomp_push(d, msg, len, &out, &out_len), DGW_OK);
  assert_int_equal(out_len, want_len);
  assert_memory_equal(out, want, want_len);
  assert_int_equal(out[out_len], '\0');
}

static void push_again(struct dgw_decomp *d, const uint8_t *msg, size_t len) {
  const char *out = (const char *)1;
  size_t out_len = 1;

  assert_int_equal(dgw_decomp_push(d, msg, len, &out, &out_len), DGW_ERR_AGAIN);
  assert_null(out);
  assert_int_equal(out_len, 0);
}

static void push_error(struct dgw_decomp *d, const uint8_t *msg, size_t len,
                       int error) {
  const char *out = (const char *)1;
  size_t out_len = 1;

  assert_int_equal(dgw_decomp_push(d, msg, len, &out, &out_len), error);
  assert_null(out);
  assert_int_equal(out_len, 0);
}

/* ------------------------------------------------------------- tests */

/* Input: three payloads (small, 200 KB, small) through one stream, one
 * message each.  Expected: each comes out whole, NUL-terminated, and the
 * counters add up. */
static void test_good_stream(void **state) {
  ZSTD_CCtx *cc = cctx(3);
  struct dgw_decomp *d = zd_new(0);
  size_t lens[3] = {60, 200000, 300};
  uint64_t zin = 0, out = 0;

  (void)state;
  for (unsigned i = 0; i < 3; i++) {
    char *p = payload(lens[i], i);
    size_t zlen;
    uint8_t *z = zflush(cc, p, lens[i], ZSTD_e_flush, &zlen);

    push_expect(d, z, zlen, p, lens[i]);
    dgw_decomp_done(d);
    zin += zlen;
    out += lens[i];
    free(z);
    free(p);
  }
  assert_int_equal(dgw_decomp_bytes_in(d), zin);
  assert_int_equal(dgw_decomp_bytes_out(d), out);
  assert_int_equal(dgw_decomp_room(d), DGW_INFLATE_DEFAULT_MAX);
  dgw_decomp_free(d);
  ZSTD_freeCCtx(cc);
}

/* Input: the second payload of a stream split into two messages at every
 * byte, then the third payload byte by byte.  Expected: every cut gives
 * DGW_ERR_AGAIN (a message cut inside a block or a block header is not a
 * payload) and the last piece the whole payload. */
static void test_split_across_messages(void **state) {
  char *p1 = payload(40, 1), *p2 = payload(3000, 2), *p3 = payload(500, 3);
  size_t z1len, z2len, z3len;
  ZSTD_CCtx *cc = cctx(3);
  uint8_t *z1 = zflush(cc, p1, 40, ZSTD_e_flush, &z1len);
  uint8_t *z2 = zflush(cc, p2, 3000, ZSTD_e_flush, &z2len);
  uint8_t *z3 = zflush(cc, p3, 500, ZSTD_e_flush, &z3len);

  (void)state;
  for (size_t cut = 1; cut < z2len; cut++) {
    struct dgw_decomp *d = zd_new(0);

    push_expect(d, z1, z1len, p1, 40);
    push_again(d, z2, cut);
    push_expect(d, z2 + cut, z2len - cut, p2, 3000);
    dgw_decomp_free(d);
  }
  {
    struct dgw_decomp *d = zd_new(0);

    /* The very first message cut after every byte too (frame header). */
    for (size_t i = 0; i + 1 < z1len; i++)
      push_again(d, z1 + i, 1);
    push_expect(d, z1 + z1len - 1, 1, p1, 40);
    push_expect(d, z2, z2len, p2, 3000);
    for (size_t i = 0; i + 1 < z3len; i++)
      push_again(d, z3 + i, 1);
    push_expect(d, z3 + z3len - 1, 1, p3, 500);
    dgw_decomp_free(d);
  }
  free(z1);
  free(z2);
  free(z3);
  free(p1);
  free(p2);
  free(p3);
  ZSTD_freeCCtx(cc);
}

/* Input: a payload ended with ZSTD_e_end (the frame ends), then one of a
 * new frame.  Expected: both come out; an ended frame is a payload end. */
static void test_frame_end_then_new_frame(void **state) {
  ZSTD_CCtx *cc = cctx(1);
  char *p = payload(100, 5);
  size_t zlen, z2len;
  uint8_t *z = zflush(cc, p, 100, ZSTD_e_end, &zlen);
  uint8_t *z2 = zflush(cc, p, 100, ZSTD_e_flush, &z2len);
  struct dgw_decomp *d = zd_new(0);

  (void)state;
  push_expect(d, z, zlen, p, 100);
  push_expect(d, z2, z2len, p, 100);
  dgw_decomp_free(d);
  free(z);
  free(z2);
  free(p);
  ZSTD_freeCCtx(cc);
}

/* Input: (a) bytes that are no zstd frame; (b) a good first payload, then
 * a block header with the reserved block type 3.  Expected:
 * DGW_ERR_INFLATE, sticky (a good message after it is refused the same
 * way) until dgw_decomp_reset(), after which a new stream decodes. */
static void test_corrupt(void **state) {
  static const uint8_t junk[] = "not a zstd stream at all";
  static const uint8_t bad_block[] = {0x07, 0x00, 0x00, 'x', 'y'};
  ZSTD_CCtx *cc = cctx(3);
  char *p = payload(300, 9);
  size_t zlen;
  uint8_t *z = zflush(cc, p, 300, ZSTD_e_flush, &zlen);
  struct dgw_decomp *d = zd_new(0);

  (void)state;
  push_error(d, junk, sizeof junk, DGW_ERR_INFLATE);
  push_error(d, z, zlen, DGW_ERR_INFLATE);
  assert_string_equal(dgw_decomp_corrupt_why(d), "corrupt zstd stream");
  dgw_decomp_reset(d);
  push_expect(d, z, zlen, p, 300);
  push_error(d, bad_block, sizeof bad_block, DGW_ERR_INFLATE);
  dgw_decomp_free(d);
  free(z);
  free(p);
  ZSTD_freeCCtx(cc);
}

/* Input: with a 64 KiB cap, a payload of exactly the cap, one of cap + 1
 * (highly compressible: a bomb in miniature), and a stream declaring a
 * 32 MiB window.  Expected: the first passes; the second fails with
 * DGW_ERR_INFLATE_LIMIT (and stays failed); the window too. */
static void test_oversize(void **state) {
  size_t cap = 64 * 1024;
  char *big = malloc(cap + 1);
  ZSTD_CCtx *cc = cctx(3);
  size_t zlen, z2len, z3len;
  uint8_t *z, *z2, *z3;
  struct dgw_decomp *d = zd_new(cap);

  (void)state;
  assert_non_null(big);
  memset(big, 'a', cap + 1);
  z = zflush(cc, big, cap, ZSTD_e_flush, &zlen);
  z2 = zflush(cc, big, cap + 1, ZSTD_e_flush, &z2len);
  assert_true(z2len < 100);
  push_expect(d, z, zlen, big, cap);
  push_error(d, z2, z2len, DGW_ERR_INFLATE_LIMIT);
  push_error(d, z, zlen, DGW_ERR_INFLATE_LIMIT);
  dgw_decomp_free(d);

  ZSTD_freeCCtx(cc);
  cc = cctx(3);
  assert_false(ZSTD_isError(ZSTD_CCtx_setParameter(cc, ZSTD_c_windowLog, 25)));
  z3 = zflush(cc, big, 1000, ZSTD_e_flush, &z3len);
  d = zd_new(0);
  push_error(d, z3, z3len, DGW_ERR_INFLATE_LIMIT);
  dgw_decomp_free(d);
  free(z);
  free(z2);
  free(z3);
  free(big);
  ZSTD_freeCCtx(cc);
}

/* Input: a good stream, reset, then the same stream again (a new
 * connection).  Expected: the second run decodes from its frame header;
 * an empty message is DGW_ERR_AGAIN and changes nothing. */
static void test_reset_and_empty(void **state) {
  ZSTD_CCtx *cc = cctx(3);
  char *p = payload(1000, 4);
  size_t zlen;
  uint8_t *z = zflush(cc, p, 1000, ZSTD_e_flush, &zlen);
  struct dgw_decomp *d = zd_new(0);

  (void)state;
  push_again(d, NULL, 0);
  push_expect(d, z, zlen, p, 1000);
  dgw_decomp_reset(d);
  push_again(d, z, 0);
  push_expect(d, z, zlen, p, 1000);
  dgw_decomp_free(d);
  free(z);
  free(p);
  ZSTD_freeCCtx(cc);
}

/* Input: NULL objects and arguments.  Expected: DGW_ERR_INVALID_ARGUMENT,
 * no crash; NULL is a no-op for free, reset, done. */
static void test_invalid_arguments(void **state) {
  struct dgw_decomp *d = zd_new(0);
  const char *out;
  size_t out_len;
  int err = 0;

  (void)state;
  assert_int_equal(dgw_decomp_push(NULL, NULL, 0, &out, &out_len),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_decomp_push(d, NULL, 3, &out, &out_len),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_decomp_push(d, (const uint8_t *)"x", 1, NULL, &out_len),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_null(dgw_decomp_new(7, 0, &err));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
  dgw_decomp_free(NULL);
  dgw_decomp_reset(NULL);
  dgw_decomp_done(NULL);
  assert_int_equal(dgw_decomp_bytes_in(NULL), 0);
  dgw_decomp_free(d);
}

/* Input: the names and the option.  Expected: the three names parse (zstd
 * only when built with it: DGW_ERR_UNSUPPORTED otherwise, the choice
 * kept), others are refused; the URL query follows the kind. */
static void test_names_and_option(void **state) {
  struct dgw_options *opt = dgw_options_new();
  int kind = -1;

  (void)state;
  assert_int_equal(dgw_compression_parse("zlib-stream", &kind), DGW_OK);
  assert_int_equal(kind, DGW_COMPRESSION_ZLIB);
  assert_int_equal(dgw_compression_parse("none", &kind), DGW_OK);
  assert_int_equal(kind, DGW_COMPRESSION_NONE);
  assert_int_equal(dgw_compression_parse("zstd-stream", &kind), DGW_OK);
  assert_int_equal(kind, DGW_COMPRESSION_ZSTD);
  assert_int_equal(dgw_compression_parse("gzip", &kind),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_compression_parse(NULL, &kind),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_string_equal(dgw_compression_query(DGW_COMPRESSION_ZSTD),
                      "&compress=zstd-stream");
  assert_string_equal(dgw_compression_query(DGW_COMPRESSION_ZLIB),
                      "&compress=zlib-stream");
  assert_string_equal(dgw_compression_query(DGW_COMPRESSION_NONE), "");
  assert_string_equal(dgw_compression_name(DGW_COMPRESSION_ZSTD),
                      "zstd-stream");
  assert_non_null(opt);
  assert_int_equal(dgw_options_set_compression(opt, "zstd-stream"), DGW_OK);
  assert_int_equal(dgw_options_set_compression(opt, "zlib"),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_compression(NULL, "none"),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_string_equal(dgw_strerror(DGW_ERR_UNSUPPORTED),
                      "not supported by this build");
  dgw_options_free(opt);
}

/* Input: a zlib-stream decompressor given 1,000 bytes that do not end a
 * payload (no 00 00 FF FF) under a 4,096-byte cap.  Expected: it holds
 * them, and dgw_decomp_room() says 3,096 more may come (issue 15: the
 * next frame is judged at its header against this); a completed payload
 * gives the whole cap back. */
static void test_zlib_room(void **state) {
  uint8_t held[1000];
  int err;
  struct dgw_decomp *d = dgw_decomp_new(DGW_COMPRESSION_ZLIB, 4096, &err);

  (void)state;
  assert_non_null(d);
  assert_string_equal(dgw_decomp_corrupt_why(d), "corrupt zlib stream");
  memset(held, 0x11, sizeof held);
  push_again(d, held, sizeof held);
  assert_int_equal(dgw_decomp_room(d), 4096 - 1000);
  dgw_decomp_reset(d);
  assert_int_equal(dgw_decomp_room(d), 4096);
  dgw_decomp_free(d);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_stream),
      cmocka_unit_test(test_split_across_messages),
      cmocka_unit_test(test_frame_end_then_new_frame),
      cmocka_unit_test(test_corrupt),
      cmocka_unit_test(test_oversize),
      cmocka_unit_test(test_reset_and_empty),
      cmocka_unit_test(test_invalid_arguments),
      cmocka_unit_test(test_names_and_option),
      cmocka_unit_test(test_zlib_room),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
