/*
 * Integration tests: dgw_client_stats() and dgw_gateway_stats() against
 * the in-process mock gateway.  The counters are read through the public
 * calls only, never from the client's struct.  (A minimal copy of the
 * client-against-mock fixture; the shared fixture replaces it later.)
 */
#include "config.h"

#include "harness.h"

#include <dgw/dgw.h>

#include "mock.h"

#define SCRIPTED 5

struct fx {
  struct event_base *base;
  struct dgw_mock *mock;
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  struct dgw_client *client;
  int ready, resumed, dispatches;
  int parse; /* on_dispatch calls dgw_event_json() */
};

static void cb_ready(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;

  (void)gw;
  f->ready++;
}

static void cb_resumed(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;

  (void)gw;
  f->resumed++;
}

static void cb_dispatch(struct dgw_gateway *gw, const struct dgw_event *ev,
                        void *ud) {
  struct fx *f = ud;

  (void)gw;
  f->dispatches++;
  if (f->parse)
    assert_non_null(dgw_event_json(ev));
}

/* A mock with SCRIPTED events after READY, heartbeats every `hb_ms`, and
 * a client pointed at it (created, not started). */
static struct fx *fx_new(uint32_t hb_ms, int with_on_dispatch) {
  struct fx *f = calloc(1, sizeof(*f));
  struct dgw_mock_config mc;
  char url[128];
  int err = 0;

  assert_non_null(f);
  memset(&mc, 0, sizeof(mc));
  mc.heartbeat_interval_ms = hb_ms;
  mc.log = test_log;
  f->base = event_base_new();
  f->mock = dgw_mock_new(f->base, &mc, &err);
  if (f->mock == NULL)
    fail_msg("mock: %s", dgw_strerror(err));
  for (int i = 0; i < SCRIPTED; i++)
    assert_int_equal(dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE",
                                           "{\"content\":\"hi\"}"),
                     DGW_OK);
  f->opt = dgw_options_new();
  assert_int_equal(dgw_options_set_token(f->opt, "t0ken"), DGW_OK);
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u",
           (unsigned)dgw_mock_port(f->mock));
  assert_int_equal(dgw_options_set_gateway_url(f->opt, url), DGW_OK);
  dgw_options_set_log(f->opt, test_log, NULL, DGW_LOG_DEBUG);
  dgw_options_set_identify_limits(f->opt, 1, 10);
  assert_int_equal(dgw_options_set_reconnect(f->opt, 20, 200, 60000), DGW_OK);
  assert_int_equal(dgw_options_set_timeouts(f->opt,
                                            (uint32_t)(3000 * time_scale()),
                                            (uint32_t)(500 * time_scale())),
                   DGW_OK);
  f->cb = dgw_callbacks_new();
  dgw_callbacks_set_on_ready(f->cb, cb_ready);
  dgw_callbacks_set_on_resumed(f->cb, cb_resumed);
  if (with_on_dispatch)
    dgw_callbacks_set_on_dispatch(f->cb, cb_dispatch);
  f->client = dgw_client_new(f->base, f->opt, f->cb, f, &err);
  if (f->client == NULL)
    fail_msg("client: %s", dgw_strerror(err));
  return f;
}

static void fx_free(struct fx *f) {
  dgw_client_free(f->client);
  dgw_mock_free(f->mock);
  dgw_options_free(f->opt);
  dgw_callbacks_free(f->cb);
  event_base_free(f->base);
  free(f);
}

static struct dgw_client_stats client_stats(struct fx *f) {
  struct dgw_client_stats s;

  memset(&s, 0, sizeof(s));
  s.size = sizeof(s);
  assert_int_equal(dgw_client_stats(f->client, &s), DGW_OK);
  assert_int_equal(s.size, sizeof(s));
  return s;
}

/* Runs the loop until the client delivered `n` events, or the deadline. */
static int wait_dispatches(struct fx *f, uint64_t n, double seconds) {
  double end = deadline_ms(seconds);

  while (client_stats(f).dispatches < n && now_ms() < end)
    loop_once(f->base);
  return client_stats(f).dispatches >= n;
}

/* READY and the scripted events, each parsed once by on_dispatch. */
static void test_stats_after_ready(void **state) {
  struct fx *f = fx_new(30000, 1);
  struct dgw_client_stats s;
  struct dgw_shard_stats sh;

  (void)state;
  s = client_stats(f);
  assert_int_equal(s.shards, 1);
  assert_int_equal(s.dispatches, 0);
  assert_int_equal(s.shards_ready, 0);
  f->parse = 1;
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_dispatches(f, 1 + SCRIPTED, 5));
  s = client_stats(f);
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
  struct fx *f = fx_new(30000, 0);
  struct dgw_client_stats s;

  (void)state;
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_dispatches(f, 1 + SCRIPTED, 5));
  s = client_stats(f);
  assert_int_equal(s.dropped, s.dispatches);
  assert_int_equal(s.parsed, 0);
  fx_free(f);
}

/* The mock stops answering heartbeats: the zombie check leaves the
 * connection, the shard reconnects and resumes. */
static void test_stats_zombie_resume(void **state) {
  struct fx *f = fx_new(150, 1);
  struct dgw_client_stats s;
  double end;

  (void)state;
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_dispatches(f, 1 + SCRIPTED, 5));
  dgw_mock_set_ack(f->mock, 0);
  end = deadline_ms(5);
  while (client_stats(f).zombies < 1 && now_ms() < end)
    loop_once(f->base);
  dgw_mock_set_ack(f->mock, 1);
  end = deadline_ms(5);
  while (f->resumed < 1 && now_ms() < end)
    loop_once(f->base);
  s = client_stats(f);
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
  struct fx *f = fx_new(30000, 1);
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
