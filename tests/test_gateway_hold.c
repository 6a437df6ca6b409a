/*
 * Holding a shard back (lib/gateway_hold.c, issue 13): a held shard
 * delivers no dispatch, not even one already read, and reading resumes in
 * order on release; a short hold is no zombie although no heartbeat ACK
 * can be read; a hold past one heartbeat interval leaves the connection
 * keeping the session (close 4000), does not reconnect while held, and
 * RESUMEs on release, the mock replaying what was never delivered.  A
 * client against the mock, the hold taken on its shard directly.
 */
#include "config.h"

#include "fixture.h"
#include "gateway.h"

static struct dgw_mock_config mock_config(uint32_t interval_ms) {
  struct dgw_mock_config mc;

  memset(&mc, 0, sizeof(mc));
  mc.heartbeat_interval_ms = interval_ms;
  return mc;
}

static void send_n(struct fx *f, int n) {
  struct dgw_mock_conn *conn = dgw_mock_last_conn(f->mock);

  assert_non_null(conn);
  for (int i = 0; i < n; i++)
    assert_int_equal(
        dgw_mock_conn_send_dispatch(conn, "MESSAGE_CREATE", "{\"m\":1}"),
        DGW_OK);
}

/* The seqs delivered are 1..n, each once, in order (READY is s 1;
 * RESUMED, which has no s of its own, aside). */
static void assert_seqs(const struct fx *f, int n) {
  int k = 0;

  for (int i = 0; i < f->nseen; i++) {
    if (strcmp(f->names[i], "RESUMED") == 0)
      continue;
    if (f->seqs[i] != k + 1)
      fail_msg("event %d (%s): s %lld, want %d", i, f->names[i],
               (long long)f->seqs[i], k + 1);
    k++;
  }
  assert_int_equal(k, n);
}

static uint64_t zombies(const struct dgw_gateway *gw) {
  struct dgw_shard_stats st;

  memset(&st, 0, sizeof(st));
  st.size = sizeof(st);
  assert_int_equal(dgw_gateway_stats(gw, &st), DGW_OK);
  return st.zombies;
}

/* Input: 5 dispatches sent while held, the hold lasting 0.8 heartbeat
 * intervals.  Without the hold they would be delivered at once; after it
 * they come in order and the connection stays (no disconnect, no zombie).
 * (Whether a beat's deadline falls inside so short a hold depends on when
 * its ACK arrives; the mock cannot delay ACKs, so the zombie exemption
 * itself is pinned by test_long_hold: zombies stay 0 there.) */
static void test_short_hold(void **state) {
  struct dgw_mock_config mc = mock_config(250);
  struct fx *f = fx_new(&mc);
  struct dgw_gateway *gw;

  (void)state;
  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(f->nseen, 1); /* READY */
  assert_int_equal(gateway_hold(gw), DGW_OK);
  assert_int_equal(gateway_holds(gw), 1);
  send_n(f, 5);
  run_for(f->base, 200);
  assert_int_equal(f->nseen, 1); /* nothing while held */
  assert_int_equal(gateway_release(gw), DGW_OK);
  assert_true(fx_wait_count(f, &f->nseen, 6, 5));
  assert_seqs(f, 6);
  assert_int_equal(f->out_of_order, 0);
  /* Beating goes on after the release. */
  run_for(f->base, 600);
  assert_int_equal(f->disconnects, 0);
  assert_int_equal(zombies(gw), 0);
  fx_free(f);
}

/* Holds count; a release without a hold is refused. */
static void test_holds_count(void **state) {
  struct dgw_mock_config mc = mock_config(30000);
  struct fx *f = fx_new(&mc);
  struct dgw_gateway *gw;

  (void)state;
  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(gateway_release(gw), DGW_ERR_STATE);
  assert_int_equal(gateway_hold(gw), DGW_OK);
  assert_int_equal(gateway_hold(gw), DGW_OK);
  send_n(f, 2);
  assert_int_equal(gateway_release(gw), DGW_OK);
  run_for(f->base, 100);
  assert_int_equal(f->nseen, 1); /* still one hold */
  assert_int_equal(gateway_release(gw), DGW_OK);
  assert_true(fx_wait_count(f, &f->nseen, 3, 5));
  assert_seqs(f, 3);
  assert_int_equal(gateway_release(gw), DGW_ERR_STATE);
  fx_free(f);
}

/* Input: 4 dispatches sent while held for 6 heartbeat intervals.  The
 * shard leaves with close 4000 keeping the session, makes no new
 * connection while held, and on release RESUMEs: the mock replays the 4,
 * delivered once each, in order.  Without the limit the shard would be
 * judged a zombie (counted) or hang on a dead connection; without the
 * "no reconnect while held" rule the replay would arrive while held. */
static void test_long_hold(void **state) {
  struct dgw_mock_config mc = mock_config(150);
  struct fx *f = fx_new(&mc);
  struct dgw_gateway *gw;
  int connecting;

  (void)state;
  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(gateway_hold(gw), DGW_OK);
  send_n(f, 4);
  assert_true(fx_wait_for(f, fx_has_disconnect, 5));
  assert_true(f->last_dc.will_resume);
  assert_non_null(strstr(f->last_dc_reason, "held back"));
  connecting = f->connecting;
  run_for(f->base, 900);
  assert_int_equal(f->connecting, connecting); /* no reconnect while held */
  assert_int_equal(f->nseen, 1);
  assert_true(f->ncloses >= 1);
  assert_int_equal(f->close_codes[f->ncloses - 1], 4000);
  assert_int_equal(zombies(gw), 0);
  assert_int_equal(gateway_release(gw), DGW_OK);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_true(fx_wait_count(f, &f->nseen, 6, 5)); /* RESUMED too */
  run_for(f->base, 100);
  assert_seqs(f, 5);
  assert_int_equal(f->out_of_order, 0);
  fx_free(f);
}

/* The plugin host's members (tests/plugins/holder.c): at s 3 the plugin
 * releases (not paused: a no-op), pauses twice (the second a no-op),
 * names a pointer that is no shard of the client (refused), and releases
 * twice from a timer 150 ms later.  Input: MESSAGE_CREATE s 2..6.  The
 * application sees s 2 and 3, nothing while paused, then 4-6 in order. */
static void test_plugin_hold(void **state) {
  struct fx *f = fx_new(NULL);
  char why[256], want[64];

  (void)state;
  fx_client_new(f);
  if (dgw_client_load_plugin(f->client, TEST_PLUGIN_DIR "/holder.so",
                             "{\"at\":3,\"ms\":150}", why,
                             sizeof(why)) != DGW_OK)
    fail_msg("loading holder: %s", why);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  send_n(f, 5);
  assert_true(fx_wait_count(f, &f->nseen, 3, 5));
  run_for(f->base, 80);
  assert_int_equal(f->nseen, 3); /* paused after s 3 */
  assert_true(fx_find_line(f, 0, "release before pause 0") >= 0);
  assert_true(fx_find_line(f, 0, "pause1 0") >= 0);
  assert_true(fx_find_line(f, 0, "pause2 0") >= 0);
  assert_true(fx_find_line(f, 0, "paused 1") >= 0);
  snprintf(want, sizeof(want), "pause foreign %d", DGW_ERR_INVALID_ARGUMENT);
  assert_true(fx_find_line(f, 0, want) >= 0);
  assert_true(fx_wait_count(f, &f->nseen, 6, 5));
  assert_seqs(f, 6);
  assert_true(fx_find_line(f, 0, "release1 0") >= 0);
  assert_true(fx_find_line(f, 0, "paused after release 0") >= 0);
  assert_true(fx_find_line(f, 0, "release2 0") >= 0);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_short_hold),
      cmocka_unit_test(test_holds_count),
      cmocka_unit_test(test_long_hold),
      cmocka_unit_test(test_plugin_hold),
  };
  ignore_sigpipe();
  return cmocka_run_group_tests_name("gateway_hold", tests, NULL, NULL);
}
