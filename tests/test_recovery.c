/*
 * Integration tests: how fast a shard comes back (issue 20).  A connection
 * that reached READY or RESUMED and delivered events counts as a success,
 * so the next reconnect is immediate however many faults came before; a
 * server that drops every connection before any event still meets a
 * growing backoff.
 */
#include "config.h"

#include "fixture.h"

#define FAULTS 10

/* A mock streaming `events` scripted dispatches `gap_ms` apart after READY
 * (none when 0), and a started client whose backoff runs from `base_ms`
 * to `max_ms`. */
static struct fx *recovery_start(int events, uint32_t gap_ms, uint32_t base_ms,
                                 uint32_t max_ms) {
  struct dgw_mock_config mc = {0};
  struct fx *f;

  mc.dispatch_interval_ms = gap_ms;
  f = fx_new(&mc);
  for (int i = 0; i < events; i++)
    assert_int_equal(
        dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"n\":1}"), DGW_OK);
  assert_int_equal(dgw_options_set_reconnect(f->opt, base_ms, max_ms, 60000),
                   DGW_OK);
  fx_start(f);
  return f;
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
  struct fx *f = recovery_start(20000, 2, 1000, 60000);

  (void)state;
  assert_true(fx_wait_count(f, &f->ready, 1, 5));
  for (int i = 0; i < FAULTS; i++) {
    int target = f->resumed + 1;

    assert_true(fx_wait_count(f, &f->since_up, 3, 5));
    fault(f, i);
    if (!fx_wait_count(f, &f->disconnects, i + 1, 5))
      fail_msg("fault %d: no disconnect", i);
    if (f->retry_delays[i] != 0)
      fail_msg("fault %d: retry_in_ms %u after a session that delivered", i,
               f->retry_delays[i]);
    if (!fx_wait_count(f, &f->resumed, target, 1.0))
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
  struct fx *f = recovery_start(0, 0, 100, 1600);
  const int rounds = 6;

  (void)state;
  assert_true(fx_wait_count(f, &f->ready, 1, 5));
  for (int i = 0; i < rounds; i++) {
    int target = f->resumed + 1;

    dgw_mock_drop_all(f->mock);
    if (!fx_wait_count(f, &f->disconnects, i + 1, 5))
      fail_msg("round %d: no disconnect", i);
    if (!fx_wait_count(f, &f->resumed, target, 10))
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
    if (f->retry_delays[i] < step / 2 || f->retry_delays[i] > step)
      fail_msg("round %d: retry_in_ms %u outside [%u, %u]", i,
               f->retry_delays[i], step / 2, step);
  }
  fx_free(f);
}

/* The server drops every connection right after HELLO (as soon as the
 * shard sent RESUME): after the loss of a session that streamed, which is
 * immediate, each attempt backs off more (base 100 ms, cap 1600). */
static void test_dropped_after_hello_backs_off(void **state) {
  struct fx *f = recovery_start(20000, 2, 100, 1600);
  const int rounds = 6;

  (void)state;
  assert_true(fx_wait_count(f, &f->ready, 1, 5));
  assert_true(fx_wait_count(f, &f->since_up, 3, 5));
  f->drop_on_resuming = 1;
  dgw_mock_drop_all(f->mock);
  if (!fx_wait_count(f, &f->disconnects, rounds, 10))
    fail_msg("only %d disconnects", f->disconnects);
  assert_int_equal(f->retry_delays[0], 0);
  for (int i = 1; i < rounds; i++) {
    uint32_t step = 100u << (i - 1);

    if (step > 1600)
      step = 1600;
    if (f->retry_delays[i] < step / 2 || f->retry_delays[i] > step)
      fail_msg("attempt %d: retry_in_ms %u outside [%u, %u]", i,
               f->retry_delays[i], step / 2, step);
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
