/*
 * Integration tests: how fast a shard comes back (issue 20).  A connection
 * that reached READY or RESUMED and delivered events counts as a success,
 * so the next reconnect is immediate however many faults came before; a
 * server that drops every connection before any event still meets a
 * growing backoff.  (A minimal copy of the client-against-mock fixture;
 * the shared fixture replaces it later.)
 */
#include "config.h"

#include "harness.h"

#include <dgw/dgw.h>

#include "mock.h"

#define FAULTS 10
#define MAX_DISCONNECTS 32

struct fx {
  struct event_base *base;
  struct dgw_mock *mock;
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  struct dgw_client *client;
  int ready, resumed, disconnects;
  uint32_t retry_in_ms[MAX_DISCONNECTS];
  int since_up;       /* events delivered since the last READY/RESUMED */
  int64_t last_seq;   /* of the last event delivered */
  int out_of_order;   /* an s not above the previous one */
  int drop_on_resume; /* the mock drops each connection once RESUME is sent */
};

static void cb_state(struct dgw_gateway *gw, enum dgw_state from,
                     enum dgw_state to, void *ud) {
  struct fx *f = ud;

  (void)gw;
  (void)from;
  if (to == DGW_STATE_RESUMING && f->drop_on_resume)
    dgw_mock_drop_all(f->mock);
}

static void cb_ready(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;

  (void)gw;
  f->ready++;
  f->since_up = 0;
}

static void cb_resumed(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;

  (void)gw;
  f->resumed++;
  f->since_up = 0;
}

static void cb_disconnect(struct dgw_gateway *gw,
                          const struct dgw_disconnect *info, void *ud) {
  struct fx *f = ud;

  (void)gw;
  if (f->disconnects < MAX_DISCONNECTS)
    f->retry_in_ms[f->disconnects] = info->retry_in_ms;
  f->disconnects++;
}

static void cb_dispatch(struct dgw_gateway *gw, const struct dgw_event *ev,
                        void *ud) {
  struct fx *f = ud;
  const char *name = dgw_event_name(ev);

  (void)gw;
  if (strcmp(name, "READY") == 0 || strcmp(name, "RESUMED") == 0)
    return;
  if (dgw_event_seq(ev) <= f->last_seq)
    f->out_of_order++;
  f->last_seq = dgw_event_seq(ev);
  f->since_up++;
}

/* A mock streaming `events` scripted dispatches `gap_ms` apart after READY
 * (none when 0), and a started client with backoff base 1 s: slow enough
 * that a wrongly counted failure shows. */
static struct fx *fx_start(int events, uint32_t gap_ms, uint32_t base_ms,
                           uint32_t max_ms) {
  struct fx *f = calloc(1, sizeof(*f));
  struct dgw_mock_config mc;
  char url[128];
  int err = 0;

  assert_non_null(f);
  memset(&mc, 0, sizeof(mc));
  mc.heartbeat_interval_ms = 30000;
  mc.dispatch_interval_ms = gap_ms;
  mc.log = test_log;
  f->base = event_base_new();
  f->mock = dgw_mock_new(f->base, &mc, &err);
  if (f->mock == NULL)
    fail_msg("mock: %s", dgw_strerror(err));
  for (int i = 0; i < events; i++)
    assert_int_equal(
        dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"n\":1}"), DGW_OK);
  f->opt = dgw_options_new();
  assert_int_equal(dgw_options_set_token(f->opt, "t0ken"), DGW_OK);
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u",
           (unsigned)dgw_mock_port(f->mock));
  assert_int_equal(dgw_options_set_gateway_url(f->opt, url), DGW_OK);
  dgw_options_set_log(f->opt, test_log, NULL, DGW_LOG_DEBUG);
  dgw_options_set_identify_limits(f->opt, 1, 10);
  assert_int_equal(dgw_options_set_reconnect(f->opt, base_ms, max_ms, 60000),
                   DGW_OK);
  assert_int_equal(dgw_options_set_timeouts(f->opt,
                                            (uint32_t)(3000 * time_scale()),
                                            (uint32_t)(500 * time_scale())),
                   DGW_OK);
  f->cb = dgw_callbacks_new();
  dgw_callbacks_set_on_ready(f->cb, cb_ready);
  dgw_callbacks_set_on_resumed(f->cb, cb_resumed);
  dgw_callbacks_set_on_disconnect(f->cb, cb_disconnect);
  dgw_callbacks_set_on_dispatch(f->cb, cb_dispatch);
  dgw_callbacks_set_on_state(f->cb, cb_state);
  f->client = dgw_client_new(f->base, f->opt, f->cb, f, &err);
  if (f->client == NULL)
    fail_msg("client: %s", dgw_strerror(err));
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
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

/* Runs the loop until *counter >= n or the deadline; 1 when reached. */
static int wait_count(struct fx *f, const int *counter, int n, double seconds) {
  double end = deadline_ms(seconds);

  while (*counter < n && now_ms() < end)
    loop_once(f->base);
  return *counter >= n;
}

/* One resumable fault of kind `i`: op 7, a TCP drop, or a close code the
 * policy resumes after. */
static void fault(struct fx *f, int i) {
  static const uint16_t codes[] = {4000, 4001, 4002, 4005, 4008};
  struct dgw_mock_conn *conn = dgw_mock_last_conn(f->mock);

  assert_non_null(conn);
  switch (i % 4) {
  case 0:
    assert_int_equal(dgw_mock_conn_send_json(
                         conn, "{\"op\":7,\"d\":null,\"s\":null,\"t\":null}"),
                     DGW_OK);
    break;
  case 1:
    dgw_mock_drop_all(f->mock);
    break;
  case 2:
    assert_int_equal(dgw_mock_conn_send_json(conn,
                                             "{\"op\":9,\"d\":true,\"s\":null,"
                                             "\"t\":null}"),
                     DGW_OK);
    break;
  default:
    assert_int_equal(dgw_mock_close_all(f->mock, codes[(i / 4) % 5], "fault"),
                     DGW_OK);
  }
}

/* Ten resumable faults in a row, each after a RESUMED (or READY) that
 * delivered events: each reconnect is immediate, and the shard is back
 * streaming within a second every time; every event arrives once. */
static void test_faults_after_progress_reconnect_at_once(void **state) {
  struct fx *f = fx_start(20000, 2, 1000, 60000);

  (void)state;
  assert_true(wait_count(f, &f->ready, 1, 5));
  for (int i = 0; i < FAULTS; i++) {
    int target = f->resumed + 1;

    assert_true(wait_count(f, &f->since_up, 3, 5));
    fault(f, i);
    if (!wait_count(f, &f->disconnects, i + 1, 5))
      fail_msg("fault %d: no disconnect", i);
    if (f->retry_in_ms[i] != 0)
      fail_msg("fault %d: retry_in_ms %u after a session that delivered", i,
               f->retry_in_ms[i]);
    if (!wait_count(f, &f->resumed, target, 1.0))
      fail_msg("fault %d: not resumed within 1 s", i);
  }
  assert_int_equal(f->ready, 1); /* never a new session */
  assert_int_equal(f->resumed, FAULTS);
  assert_int_equal(f->out_of_order, 0);
  fx_free(f);
}

/* Nothing is ever delivered: the server drops each connection right
 * after RESUMED.  The delays grow as before (base 100 ms, cap 1600). */
static void test_no_progress_backs_off(void **state) {
  struct fx *f = fx_start(0, 0, 100, 1600);
  const int rounds = 6;

  (void)state;
  assert_true(wait_count(f, &f->ready, 1, 5));
  for (int i = 0; i < rounds; i++) {
    int target = f->resumed + 1;

    dgw_mock_drop_all(f->mock);
    if (!wait_count(f, &f->disconnects, i + 1, 5))
      fail_msg("round %d: no disconnect", i);
    if (!wait_count(f, &f->resumed, target, 10))
      fail_msg("round %d: no resume", i);
  }
  /* Equal jitter over 100, 200, 400, 800, 1600, 1600: never shorter than
   * the step before.  Issue 15: a fresh start that reached READY and
   * delivered nothing is not a success, so even the first loss waits (it
   * came back at once, 0 ms). */
  for (int i = 0; i < rounds; i++) {
    uint32_t step = 100u << i;

    if (step > 1600)
      step = 1600;
    if (f->retry_in_ms[i] < step / 2 || f->retry_in_ms[i] > step)
      fail_msg("round %d: retry_in_ms %u outside [%u, %u]", i,
               f->retry_in_ms[i], step / 2, step);
  }
  fx_free(f);
}

/* The server drops every connection right after HELLO (as soon as the
 * shard sent RESUME): after the loss of a session that streamed, which is
 * immediate, each attempt backs off more (base 100 ms, cap 1600). */
static void test_dropped_after_hello_backs_off(void **state) {
  struct fx *f = fx_start(20000, 2, 100, 1600);
  const int rounds = 6;

  (void)state;
  assert_true(wait_count(f, &f->ready, 1, 5));
  assert_true(wait_count(f, &f->since_up, 3, 5));
  f->drop_on_resume = 1;
  dgw_mock_drop_all(f->mock);
  if (!wait_count(f, &f->disconnects, rounds, 10))
    fail_msg("only %d disconnects", f->disconnects);
  assert_int_equal(f->retry_in_ms[0], 0);
  for (int i = 1; i < rounds; i++) {
    uint32_t step = 100u << (i - 1);

    if (step > 1600)
      step = 1600;
    if (f->retry_in_ms[i] < step / 2 || f->retry_in_ms[i] > step)
      fail_msg("attempt %d: retry_in_ms %u outside [%u, %u]", i,
               f->retry_in_ms[i], step / 2, step);
  }
  assert_int_equal(f->resumed, 0);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_faults_after_progress_reconnect_at_once),
      cmocka_unit_test(test_no_progress_backs_off),
      cmocka_unit_test(test_dropped_after_hello_backs_off),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
