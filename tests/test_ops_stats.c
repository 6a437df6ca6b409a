/*
 * The operations counters of dgw_client_stats() / dgw_gateway_stats()
 * (issue 14) against the in-process mock: bytes and frames in, dispatches
 * by event name (bounded: an unknown name counts as "other"), closes by
 * code, heartbeat latency histogram, handler time, time since the last
 * event, and the fixed slot tables.
 */
#include "config.h"

#include <math.h>

#include "fixture.h"

static unsigned slot_of(const char *name) {
  for (unsigned i = 0; i < DGW_STATS_EVENT_NAMES; i++)
    if (dgw_stats_event_name(i) != NULL &&
        strcmp(dgw_stats_event_name(i), name) == 0)
      return i;
  return 9999;
}

static unsigned close_slot_of(int code) {
  for (unsigned i = 1; i < DGW_STATS_CLOSE_CODES; i++)
    if (dgw_stats_close_code(i) == code)
      return i;
  return 0;
}

static int has_latency(struct fx *f) {
  struct dgw_shard_stats sh;

  sh.size = sizeof(sh);
  dgw_gateway_stats(dgw_client_gateway(f->client, 0), &sh);
  return sh.latency_count >= 2;
}

static int closed_4000(struct fx *f) {
  return fx_stats(f).closes_by_code[close_slot_of(4000)] >= 1;
}

/* The slot tables: "other" first, known names found, spare slots NULL,
 * out of range refused; close codes and bucket bounds likewise. */
static void test_slot_tables(void **state) {
  (void)state;
  assert_string_equal(dgw_stats_event_name(0), "other");
  assert_true(slot_of("MESSAGE_CREATE") < DGW_STATS_EVENT_NAMES);
  assert_true(slot_of("READY") < DGW_STATS_EVENT_NAMES);
  assert_null(dgw_stats_event_name(DGW_STATS_EVENT_NAMES - 1));
  assert_null(dgw_stats_event_name(DGW_STATS_EVENT_NAMES + 5));
  assert_int_equal(dgw_stats_close_code(0), 0);
  assert_true(close_slot_of(4000) > 0);
  assert_true(close_slot_of(4004) > 0);
  assert_int_equal(dgw_stats_close_code(DGW_STATS_CLOSE_CODES), -1);
  assert_true(isinf(dgw_stats_latency_bound_ms(DGW_STATS_LATENCY_BUCKETS - 1)));
  assert_true(dgw_stats_latency_bound_ms(0) > 0);
  assert_true(dgw_stats_handler_bound_us(DGW_STATS_HANDLER_BUCKETS) < 0);
}

/* Events by name (two made-up names land in "other"), bytes, frames,
 * handler time, and a close by code 4000 counted once the mock closes the
 * connection. */
static void test_ops_counters(void **state) {
  struct dgw_mock_config mc = {0};
  struct dgw_client_stats s;
  struct fx *f;
  uint64_t hist = 0, before, closes;

  (void)state;
  mc.heartbeat_interval_ms = 30000; /* no zombie on a loaded machine */
  f = fx_new(&mc);
  for (int i = 0; i < 3; i++)
    dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"content\":\"hi\"}");
  dgw_mock_add_dispatch(f->mock, "MADE_UP_ONE", "{}");
  dgw_mock_add_dispatch(f->mock, "MADE_UP_TWO", "{}");
  fx_client_new(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(fx_wait_dispatches(f, 6, 5));
  s = fx_stats(f);
  assert_int_equal(s.dispatches_by_name[slot_of("MESSAGE_CREATE")], 3);
  assert_int_equal(s.dispatches_by_name[slot_of("READY")], 1);
  assert_int_equal(s.dispatches_by_name[0], 2); /* the made-up names */
  assert_true(s.frames_in >= 7); /* HELLO, READY, 5 events, ACKs */
  assert_true(s.bytes_wire > 0);
  assert_true(s.bytes_inflated >= s.bytes_wire);
  assert_int_equal(s.handled_by_name[slot_of("MESSAGE_CREATE")], 3);
  for (unsigned b = 0; b < DGW_STATS_HANDLER_BUCKETS; b++)
    hist += s.handler_hist[slot_of("MESSAGE_CREATE")][b];
  assert_int_equal(hist, 3);
  assert_true(s.ms_since_event >= 0 && s.ms_since_event < 5000);
  before = s.closes_by_code[close_slot_of(4000)];
  closes = s.closes; /* a slow run (valgrind) may have had a zombie */

  dgw_mock_close_all(f->mock, 4000, "test");
  assert_true(fx_wait_for(f, closed_4000, 10));
  s = fx_stats(f);
  assert_true(s.closes >= closes + 1);
  assert_int_equal(s.closes_by_code[close_slot_of(4000)], before + 1);
  assert_true(s.session_starts_left == -1 || s.session_starts_left >= 0);
  fx_free(f);
}

/* Heartbeats every 100 ms: the ACK latencies fill the histogram, whose
 * buckets add up to its count. */
static void test_ops_latency(void **state) {
  struct dgw_mock_config mc = {0};
  struct dgw_shard_stats sh;
  struct fx *f;
  uint64_t lat = 0;

  (void)state;
  mc.heartbeat_interval_ms = 100;
  f = fx_new(&mc);
  fx_client_new(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(fx_wait_for(f, has_latency, 10));
  assert_true(fx_stats(f).latency_ms_max >= 0);
  sh.size = sizeof(sh);
  assert_int_equal(dgw_gateway_stats(dgw_client_gateway(f->client, 0), &sh),
                   DGW_OK);
  for (unsigned b = 0; b < DGW_STATS_LATENCY_BUCKETS; b++)
    lat += sh.latency_hist[b];
  assert_int_equal(lat, sh.latency_count);
  assert_true(sh.latency_count >= 2);
  assert_true(sh.latency_sum_ms >= 0);

  fx_free(f);
}

/* Before anything happened: no event yet. */
static void test_ops_idle(void **state) {
  struct dgw_mock_config mc = {0};
  struct dgw_client_stats s;
  struct fx *f;

  (void)state;
  f = fx_new(&mc);
  fx_client_new(f);
  s = fx_stats(f);
  assert_int_equal(s.ms_since_event, -1);
  assert_true(s.latency_ms_max == DGW_LATENCY_UNKNOWN);
  assert_int_equal(s.frames_in, 0);
  fx_free(f);
}

static int two_ready(struct fx *f) {
  return f->ready >= 2;
}

/* Two shards, one IDENTIFY per 300 ms: the second waits in the identify
 * queue.  A send limit of 8 payloads per minute, 5 of them reserved
 * (heartbeats, IDENTIFY): of 6 commands at least 3 wait behind it, each
 * counted once and still queued. */
static void test_ops_waits(void **state) {
  struct dgw_mock_config mc = {0};
  struct dgw_client_stats s;
  struct fx *f;
  struct dgw_gateway *gw;
  static const char cmd[] = "{\"op\":3,\"d\":{\"since\":null,"
                            "\"activities\":[],\"status\":\"online\","
                            "\"afk\":false}}";

  (void)state;
  f = fx_new(&mc);
  assert_int_equal(dgw_options_set_shards(f->opt, 0, 2, 2), DGW_OK);
  assert_int_equal(dgw_options_set_identify_limits(f->opt, 1, 300), DGW_OK);
  assert_int_equal(dgw_options_set_send_limit(f->opt, 8, 60000, 16), DGW_OK);
  fx_client_new(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(fx_wait_for(f, two_ready, 10));
  s = fx_stats(f);
  assert_true(s.identify_waits >= 1);
  assert_int_equal(s.rate_limit_waits, 0);
  gw = dgw_client_gateway(f->client, 0);
  for (int i = 0; i < 6; i++)
    assert_int_equal(dgw_gateway_send_json(gw, cmd, sizeof(cmd) - 1), DGW_OK);
  s = fx_stats(f);
  assert_true(s.rate_limit_waits >= 3);
  assert_int_equal(s.commands_queued, s.rate_limit_waits);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_slot_tables), cmocka_unit_test(test_ops_counters),
      cmocka_unit_test(test_ops_latency), cmocka_unit_test(test_ops_idle),
      cmocka_unit_test(test_ops_waits),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
