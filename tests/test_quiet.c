/*
 * Quiet shards give their zlib window back (issue 17, item 3;
 * lib/gateway_quiet.c over dgw_inflate_sleep()): the client against the
 * mock gateway on loopback, heartbeats every 50 ms (scaled by
 * DGW_TEST_TIME_SCALE, as every wait).  A shard with no
 * dispatch for quiet_ms packs its window at a heartbeat ACK and restores
 * it for the next message; the events after a sleep arrive whole and in
 * order, also when they refer back into the packed window.  Each case
 * says which input and what it expects.  No case asserts a speed.
 */
#include "config.h"

#include "fixture.h"

#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

#include "payload.h"

/* 2,000 bytes of pseudo-random letters: deflate can only match them
 * whole, from the window. */
static void random_text(char *out, size_t len, unsigned seed) {
  size_t i;

  for (i = 0; i < len; i++) {
    seed = seed * 1103515245u + 12345u;
    out[i] = (char)('a' + (seed >> 16) % 26);
  }
  out[len] = '\0';
}

/* The last MESSAGE_CREATE's d, as the application saw it. */
static char last_d[4096];
static size_t last_d_len;

static void keep_d(struct fx *f, struct dgw_gateway *gw,
                   const struct dgw_event *ev) {
  const char *d;
  size_t len;

  (void)f;
  (void)gw;
  if (strcmp(dgw_event_name(ev), "MESSAGE_CREATE") != 0)
    return;
  d = dgw_event_data(ev, &len);
  assert_true(len < sizeof last_d);
  memcpy(last_d, d, len);
  last_d[len] = '\0';
  last_d_len = len;
}

static struct dgw_shard_stats shard_stats(struct fx *f) {
  struct dgw_shard_stats st;

  memset(&st, 0, sizeof st);
  st.size = sizeof st;
  assert_int_equal(dgw_gateway_stats(dgw_client_gateway(f->client, 0), &st),
                   DGW_OK);
  return st;
}

static int asleep(struct fx *f) {
  return shard_stats(f).window_asleep == 1;
}

static int up_and_streaming(struct fx *f) {
  return fx_is_ready(f) && f->nseen >= 1;
}

static int seen_want(struct fx *f) {
  return f->nseen >= f->want;
}

static int beats_want(struct fx *f) {
  return f->nbeats >= f->want;
}

/* A client whose shard sleeps after `quiet_ms`, heartbeats every 50 ms. */
static struct fx *quiet_fx(uint32_t quiet_ms) {
  struct dgw_mock_config mc = {0};
  struct fx *f;

  /* Scaled: under valgrind a 50 ms beat would read as zombied. */
  mc.heartbeat_interval_ms = (uint32_t)(50 * time_scale());
  f = fx_new(&mc);
  assert_int_equal(dgw_options_set_quiet_sleep(f->opt, quiet_ms), DGW_OK);
  f->on_dispatch = keep_d;
  return f;
}

/* Sends MESSAGE_CREATE {"content":"<text>"} and waits for it. */
static void send_message(struct fx *f, const char *text) {
  char d[3000];

  snprintf(d, sizeof d, "{\"content\":\"%s\"}", text);
  f->want = f->nseen + 1;
  assert_int_equal(dgw_mock_conn_send_dispatch(dgw_mock_last_conn(f->mock),
                                               "MESSAGE_CREATE", d),
                   DGW_OK);
  assert_true(fx_wait_for(f, seen_want, 5));
  assert_string_equal(last_d, d);
  assert_int_equal(last_d_len, strlen(d));
}

/*
 * Input: quiet_ms 1, READY, then nothing but heartbeats;
 * then a message of 2,000 random letters, quiet again, and the same
 * letters once more (the stream refers back into the packed window).
 * Expected: the shard is asleep after an ACK (window_sleeps >= 1, a
 * packed window of fewer than 32 KiB), each message arrives with its
 * exact d and wakes the window, the second message compresses to a
 * back-reference that resolves, the connection is never lost, events stay
 * in order, and the client's sums agree with the shard's.
 */
static void test_sleeps_and_wakes(void **state) {
  struct fx *f = quiet_fx(1);
  struct dgw_shard_stats st;
  struct dgw_client_stats cs;
  char text[2001];

  (void)state;
  fx_start(f);
  assert_true(fx_wait_for(f, up_and_streaming, 5));
  assert_true(fx_wait_for(f, asleep, 5));
  st = shard_stats(f);
  assert_true(st.window_sleeps >= 1);
  assert_true(st.window_saved_bytes > 0 && st.window_saved_bytes < 32768);

  random_text(text, 2000, 7);
  send_message(f, text);
  assert_true(shard_stats(f).window_wakes >= 1);
  assert_true(fx_wait_for(f, asleep, 5));
  send_message(f, text);
  assert_true(fx_wait_for(f, asleep, 5));

  st = shard_stats(f);
  assert_true(st.window_sleeps >= 2);
  assert_true(st.window_wakes >= 2);
  if (f->disconnects != 0)
    fail_msg("lost the connection: %s", f->last_dc_reason);
  assert_int_equal(f->out_of_order, 0);
  cs = fx_stats(f);
  assert_int_equal(cs.windows_asleep, 1);
  assert_int_equal(cs.window_sleeps, st.window_sleeps);
  assert_int_equal(cs.window_saved_bytes, st.window_saved_bytes);
  fx_free(f);
}

/*
 * Input: quiet_ms 0 (off), twelve heartbeats with no dispatch.
 * Expected: the window never sleeps (window_sleeps 0, not asleep).
 */
static void test_off(void **state) {
  struct fx *f = quiet_fx(0);
  struct dgw_shard_stats st;

  (void)state;
  fx_start(f);
  assert_true(fx_wait_for(f, up_and_streaming, 5));
  f->want = f->nbeats + 12;
  assert_true(fx_wait_for(f, beats_want, 5));
  st = shard_stats(f);
  assert_int_equal(st.window_sleeps, 0);
  assert_int_equal(st.window_asleep, 0);
  assert_int_equal(fx_stats(f).windows_asleep, 0);
  fx_free(f);
}

/*
 * Input: quiet_ms 400 and a dispatch every 40 ms for 800 ms while
 * heartbeats come every 50 ms; then no more dispatches.
 * Expected: no sleep while the dispatches flow (no ACK finds 400 ms
 * without one), a sleep once they stop.
 */
static void test_busy_shard_stays_awake(void **state) {
  struct fx *f = quiet_fx((uint32_t)(400 * time_scale()));
  char text[16];
  int i;

  (void)state;
  fx_start(f);
  assert_true(fx_wait_for(f, up_and_streaming, 5));
  for (i = 0; i < 20; i++) {
    snprintf(text, sizeof text, "busy %d", i);
    send_message(f, text);
    run_for(f->base, (int)(40 * time_scale()));
    assert_int_equal(shard_stats(f).window_sleeps, 0);
  }
  assert_true(f->nbeats >= 4);
  assert_true(fx_wait_for(f, asleep, 5));
  fx_free(f);
}

/*
 * Input: quiet_ms 1; asleep, then the mock drops the connection; the
 * shard RESUMEs on a new connection with a new zlib stream, and a message
 * follows.
 * Expected: the packed window of the old stream is not used for the new
 * one: RESUMED and the message arrive intact, then the shard sleeps
 * again.
 */
static void test_reconnect_while_asleep(void **state) {
  struct fx *f = quiet_fx(1);

  (void)state;
  fx_start(f);
  assert_true(fx_wait_for(f, up_and_streaming, 5));
  assert_true(fx_wait_for(f, asleep, 5));
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  send_message(f, "after the resume");
  assert_true(fx_wait_for(f, asleep, 5));
  assert_int_equal(f->count[DGW_OP_RESUME], 1);
  assert_int_equal(f->out_of_order, 0);
  fx_free(f);
}

#ifdef HAVE_ZSTD
/*
 * Input: compress zstd-stream, quiet_ms 1, twelve heartbeats.
 * Expected: a zstd window is not packed (window_sleeps 0).
 */
static void test_zstd_not_packed(void **state) {
  struct fx *f = quiet_fx(1);

  (void)state;
  assert_int_equal(dgw_options_set_compression(f->opt, "zstd-stream"), DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, up_and_streaming, 5));
  f->want = f->nbeats + 12;
  assert_true(fx_wait_for(f, beats_want, 5));
  assert_int_equal(shard_stats(f).window_sleeps, 0);
  fx_free(f);
}
#endif

/* Input: dgw_options_set_quiet_sleep with NULL options or more than a
 * day.  Expected: DGW_ERR_INVALID_ARGUMENT. */
static void test_option_bounds(void **state) {
  struct dgw_options *opt = dgw_options_new();

  (void)state;
  assert_non_null(opt);
  assert_int_equal(dgw_options_set_quiet_sleep(NULL, 1),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_quiet_sleep(opt, DGW_QUIET_SLEEP_MAX_MS + 1),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_quiet_sleep(opt, DGW_QUIET_SLEEP_MAX_MS),
                   DGW_OK);
  assert_int_equal(dgw_options_set_quiet_sleep(opt, 0), DGW_OK);
  dgw_options_free(opt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_sleeps_and_wakes),
      cmocka_unit_test(test_off),
      cmocka_unit_test(test_busy_shard_stays_awake),
      cmocka_unit_test(test_reconnect_while_asleep),
#ifdef HAVE_ZSTD
      cmocka_unit_test(test_zstd_not_packed),
#endif
      cmocka_unit_test(test_option_bounds),
  };

  return cmocka_run_group_tests_name("quiet", tests, NULL, NULL);
}
