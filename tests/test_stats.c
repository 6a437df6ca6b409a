/*
 * Integration tests: dgw_client_stats() and dgw_gateway_stats() against
 * the in-process mock gateway.  The counters are read through the public
 * calls only, never from the client's struct.
 */
#include "config.h"

#include "fixture.h"

#define SCRIPTED 5

/* Each event's `d` is parsed by the application (dgw_event_json). */
static void parse_each(struct fx *f, struct dgw_gateway *gw,
                       const struct dgw_event *ev) {
  (void)f;
  (void)gw;
  assert_non_null(dgw_event_json(ev));
}

/* A mock with SCRIPTED events after READY, heartbeats every `hb_ms`, and
 * a client pointed at it (created, not started); without on_dispatch
 * unless `with_on_dispatch`. */
static struct fx *stats_new(uint32_t hb_ms, int with_on_dispatch) {
  struct dgw_mock_config mc = {0};
  struct fx *f;

  mc.heartbeat_interval_ms = hb_ms;
  f = fx_new(&mc);
  for (int i = 0; i < SCRIPTED; i++)
    assert_int_equal(dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE",
                                           "{\"content\":\"hi\"}"),
                     DGW_OK);
  if (!with_on_dispatch)
    dgw_callbacks_set_on_dispatch(f->cb, NULL);
  fx_client_new(f);
  return f;
}

static int has_zombie(struct fx *f) {
  return fx_stats(f).zombies >= 1;
}

/* READY and the scripted events, each parsed once by on_dispatch. */
static void test_stats_after_ready(void **state) {
  struct fx *f = stats_new(30000, 1);
  struct dgw_client_stats s;
  struct dgw_shard_stats sh;

  (void)state;
  s = fx_stats(f);
  assert_int_equal(s.shards, 1);
  assert_int_equal(s.dispatches, 0);
  assert_int_equal(s.shards_ready, 0);
  f->on_dispatch = parse_each;
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(fx_wait_dispatches(f, 1 + SCRIPTED, 5));
  s = fx_stats(f);
  assert_int_equal(s.dispatches, 1 + SCRIPTED);
  assert_int_equal(s.dropped, 0);
  assert_int_equal(s.parsed, 1 + SCRIPTED);
  assert_int_equal(s.shards_ready, 1);
  assert_int_equal(s.identifies, 1);
  assert_int_equal(s.reconnects, 0);
  assert_int_equal(s.resumes, 0);
  assert_int_equal(s.zombies, 0);
  assert_int_equal(s.commands_queued, 0);

  memset(&sh, 0, sizeof(sh));
  sh.size = sizeof(sh);
  assert_int_equal(dgw_gateway_stats(dgw_client_gateway(f->client, 0), &sh),
                   DGW_OK);
  assert_int_equal(sh.shard_id, 0);
  assert_int_equal(sh.state, DGW_STATE_READY);
  assert_int_equal(sh.dispatches, 1 + SCRIPTED);
  assert_int_equal(sh.identifies, 1);
  fx_free(f);
}

/* Without on_dispatch, handler, plugin or request, every event is dropped
 * unparsed. */
static void test_stats_dropped(void **state) {
  struct fx *f = stats_new(30000, 0);
  struct dgw_client_stats s;

  (void)state;
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(fx_wait_dispatches(f, 1 + SCRIPTED, 5));
  s = fx_stats(f);
  assert_int_equal(s.dropped, s.dispatches);
  assert_int_equal(s.parsed, 0);
  fx_free(f);
}

/* The mock stops answering heartbeats: the zombie check leaves the
 * connection, the shard reconnects and resumes. */
static void test_stats_zombie_resume(void **state) {
  struct fx *f = stats_new(150, 1);
  struct dgw_client_stats s;

  (void)state;
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(fx_wait_dispatches(f, 1 + SCRIPTED, 5));
  dgw_mock_set_ack(f->mock, 0);
  fx_wait_for(f, has_zombie, 5);
  dgw_mock_set_ack(f->mock, 1);
  fx_wait_count(f, &f->resumed, 1, 5);
  s = fx_stats(f);
  assert_true(s.zombies >= 1);
  assert_true(s.reconnects >= 1);
  assert_true(s.resumes >= 1);
  assert_int_equal(s.identifies, 1);
  assert_int_equal(f->ready, 1);
  fx_free(f);
}

/* An older, shorter struct gets only the members it has; bad arguments
 * are refused. */
static void test_stats_size_contract(void **state) {
  struct fx *f = stats_new(30000, 1);
  struct dgw_client_stats s;
  struct dgw_shard_stats sh;
  struct dgw_gateway *gw = dgw_client_gateway(f->client, 0);

  (void)state;
  memset(&s, 0xAB, sizeof(s));
  s.size = offsetof(struct dgw_client_stats, parsed);
  assert_int_equal(dgw_client_stats(f->client, &s), DGW_OK);
  assert_int_equal(s.size, offsetof(struct dgw_client_stats, parsed));
  assert_int_equal(s.dispatches, 0);
  assert_int_equal(s.dropped, 0);
  assert_int_equal(s.shards, 0xABABABABu); /* beyond the caller's size */
  s.size = sizeof(s) + 64; /* a newer header: we fill what we have */
  assert_int_equal(dgw_client_stats(f->client, &s), DGW_OK);
  assert_int_equal(s.shards, 1);
  assert_int_equal(s.size, sizeof(s) + 64);
  s.size = 0;
  assert_int_equal(dgw_client_stats(f->client, &s), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_client_stats(NULL, &s), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_client_stats(f->client, NULL), DGW_ERR_INVALID_ARGUMENT);

  memset(&sh, 0xAB, sizeof(sh));
  sh.size = offsetof(struct dgw_shard_stats, dispatches);
  assert_int_equal(dgw_gateway_stats(gw, &sh), DGW_OK);
  assert_int_equal(sh.state, DGW_STATE_IDLE);
  assert_int_equal(sh.dispatches, 0xABABABABABABABABull);
  sh.size = sizeof(sh);
  assert_int_equal(dgw_gateway_stats(gw, &sh), DGW_OK);
  assert_true(sh.latency_ms == DGW_LATENCY_UNKNOWN);
  assert_int_equal(dgw_gateway_stats(NULL, &sh), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_gateway_stats(gw, NULL), DGW_ERR_INVALID_ARGUMENT);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_stats_after_ready),
      cmocka_unit_test(test_stats_dropped),
      cmocka_unit_test(test_stats_zombie_resume),
      cmocka_unit_test(test_stats_size_contract),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
