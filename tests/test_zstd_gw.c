/*
 * zstd-stream end to end against the mock (ws:// and wss://), and the
 * shard's refusal of a frame that could only overflow the decompressor
 * (issue 15 item 5), through the shared fixture.
 */
#include "config.h"

#include "fixture.h"

#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

#include "payload.h"

#ifdef HAVE_ZSTD
static int three_seen(struct fx *f) {
  return f->nseen >= 3;
}

/* A client asking for zstd-stream, with a READY plus two dispatches (one
 * of `kib` KiB) queued in the mock. */
static struct fx *zstd_fx(struct dgw_mock_config *mc, size_t kib) {
  struct fx *f = fx_new(mc);
  char *big = malloc(kib * 1024 + 16);

  assert_non_null(big);
  assert_int_equal(dgw_options_set_compression(f->opt, "zstd-stream"), DGW_OK);
  dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"content\":\"one\"}");
  strcpy(big, "{\"content\":\"");
  memset(big + 12, 'z', kib * 1024);
  strcpy(big + 12 + kib * 1024, "\"}");
  dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", big);
  free(big);
  return f;
}

/* Input: compress zstd-stream over ws://, then a dropped connection.
 * Expected: the URL asks for zstd-stream, READY and both dispatches
 * arrive (the 300 KB one whole), and the new connection's fresh stream
 * resumes the session. */
static void test_zstd_plain(void **state) {
  struct fx *f = zstd_fx(NULL, 300);

  (void)state;
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_true(fx_wait_for(f, three_seen, 5));
  assert_true(fx_find_line(f, 0, "compress=zstd-stream") >= 0);
  assert_int_equal(f->disconnects, 0);
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
  fx_free(f);
}

/* Input: the same over wss://, and with every compressed payload split
 * into 7-byte messages (the big dispatch then 100 KiB: a zstd-stream
 * payload over one 128 KiB block cut exactly between its blocks cannot be
 * told from a whole one; Discord sends one payload per message, see
 * docs/transport.md).  Expected: the same events, none lost. */
static void test_zstd_tls_and_split(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;

  (void)state;
  mc.cert_file = cert_path("localhost.pem");
  mc.key_file = cert_path("localhost.key");
  f = zstd_fx(&mc, 300);
  assert_int_equal(dgw_options_set_ca_file(f->opt, cert_path("ca.pem")),
                   DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, three_seen, 5));
  assert_int_equal(f->disconnects, 0);
  fx_free(f);

  memset(&mc, 0, sizeof mc);
  mc.split_size = 7;
  f = zstd_fx(&mc, 100);
  fx_start(f);
  assert_true(fx_wait_for(f, three_seen, 5));
  assert_int_equal(f->disconnects, 0);
  fx_free(f);
}

/* Input: after READY over zstd-stream, one binary message that is no zstd
 * data.  Expected: the connection closes with DGW_ERR_INFLATE ("corrupt
 * zstd stream") and the session resumes (no second IDENTIFY). */
static void test_zstd_corrupt_resumes(void **state) {
  static const char junk[] = "\x07\x00\x00 this is not zstd";
  struct fx *f = zstd_fx(NULL, 300);

  (void)state;
  fx_start(f);
  assert_true(fx_wait_for(f, three_seen, 5));
  assert_int_equal(
      dgw_mock_conn_send_binary(dgw_mock_last_conn(f->mock), junk, 20), DGW_OK);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(f->last_dc.error, DGW_ERR_INFLATE);
  assert_true(fx_find_line(f, 0, "corrupt zstd stream") >= 0);
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
  fx_free(f);
}

#else
/* Input: a build without libzstd asked for zstd-stream.  Expected:
 * DGW_ERR_UNSUPPORTED, and the client keeps zlib-stream. */
static void test_zstd_unsupported(void **state) {
  struct fx *f = fx_new(NULL);

  (void)state;
  assert_int_equal(dgw_options_set_compression(f->opt, "zstd-stream"),
                   DGW_ERR_UNSUPPORTED);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_true(fx_find_line(f, 0, "compress=zlib-stream") >= 0);
  fx_free(f);
}
#endif

/* Input (issue 15 item 5): zlib-stream with a 1 MiB cap; after READY the
 * mock sends two binary messages of 900 KiB back to back, neither ending
 * a payload.  The inflater holds the first; the second could only
 * overflow the cap.  Expected: it is refused at its header (close 1009,
 * DGW_ERR_MESSAGE_TOO_LARGE, "refused at its header"), not read whole and
 * then refused by the inflater (DGW_ERR_INFLATE_LIMIT), and the session
 * resumes. */
static void test_second_near_cap_frame_refused(void **state) {
  struct fx *f = fx_new(NULL);
  size_t n = 900 * 1024;
  uint8_t *blob = malloc(n);
  struct dgw_mock_conn *conn;

  (void)state;
  assert_non_null(blob);
  memset(blob, 0x5a, n);
  assert_int_equal(dgw_options_set_max_payload(f->opt, 1024 * 1024), DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  conn = dgw_mock_last_conn(f->mock);
  assert_int_equal(dgw_mock_conn_send_binary(conn, blob, n), DGW_OK);
  assert_int_equal(dgw_mock_conn_send_binary(conn, blob, n), DGW_OK);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(f->last_dc.error, DGW_ERR_MESSAGE_TOO_LARGE);
  assert_non_null(strstr(f->last_dc_reason, "refused at its header"));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
  free(blob);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
#ifdef HAVE_ZSTD
      cmocka_unit_test(test_zstd_plain),
      cmocka_unit_test(test_zstd_tls_and_split),
      cmocka_unit_test(test_zstd_corrupt_resumes),
#else
      cmocka_unit_test(test_zstd_unsupported),
#endif
      cmocka_unit_test(test_second_near_cap_frame_refused),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
