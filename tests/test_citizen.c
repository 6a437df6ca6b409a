/*
 * Issue 18, "a good citizen of an existing libevent program": what dgw
 * puts on, borrows from and leaves behind on the application's
 * event_base.  Each test names its input and the error it expects.
 */
#include "config.h"

#include "fixture.h"

#include <dlfcn.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/ssl.h>

#include "payload.h"

/* --- the loop contract --- */

static int dump_event(const struct event_base *base, const struct event *ev,
                      void *arg) {
  Dl_info info;
  void *fn = (void *)event_get_callback(ev);

  (void)base;
  (void)arg;
  memset(&info, 0, sizeof(info));
  dladdr(fn, &info);
  fprintf(stderr, "# left on the base: fd %d events 0x%x cb %s+%#lx (%s)\n",
          (int)event_get_fd(ev), (unsigned)event_get_events(ev),
          info.dli_sname ? info.dli_sname : "?",
          (unsigned long)((char *)fn - (char *)info.dli_fbase),
          info.dli_fname ? info.dli_fname : "?");
  return 0;
}

/* Runs the loop without blocking until nothing is added on it any more,
 * for at most `seconds` (scaled); returns how many events stay added,
 * after printing each. */
static int drain_to_zero(struct event_base *base, double seconds) {
  double end = deadline_ms(seconds);
  int n;

  while ((n = event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED)) > 0 &&
         now_ms() < end) {
    event_base_loop(base, EVLOOP_NONBLOCK);
    usleep(2000);
  }
  if (n > 0)
    event_base_foreach_event(base, dump_event, NULL);
  return n;
}

/* The real check: event_base_dispatch() returns by itself.  No event of
 * the test's keeps it alive; SIGALRM (default action: the test dies)
 * stops a hang. */
static void dispatch_returns(struct event_base *base) {
  alarm((unsigned)(20 * time_scale()));
  assert_int_equal(event_base_dispatch(base), 1); /* 1: no events */
  alarm(0);
}

/* Input: a mock that closes 4004 when IDENTIFY arrives (refused token).
 * Expected: the shard is FATAL, and once the mock is gone nothing of
 * dgw's is left added on the base: event_base_dispatch() returns 1. */
static void test_loop_ends_after_fatal(void **state) {
  struct fx *f = *state;

  f->fatal_on_op = DGW_OP_IDENTIFY;
  fx_start(f);
  assert_true(fx_wait_for(f, fx_has_fatal, 5));
  assert_int_equal(f->fatal_code, 4004);
  dgw_mock_free(f->mock);
  f->mock = NULL;
  assert_int_equal(drain_to_zero(f->base, 5), 0);
  dispatch_returns(f->base);
}

/* Input: a READY shard, then dgw_client_stop().  Expected: CLOSED and an
 * empty base. */
static void test_loop_ends_after_stop(void **state) {
  struct fx *f = *state;

  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  dgw_client_stop(f->client);
  assert_true(fx_wait_for(f, fx_is_closed, 5));
  dgw_mock_free(f->mock);
  f->mock = NULL;
  assert_int_equal(drain_to_zero(f->base, 5), 0);
  dispatch_returns(f->base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_loop_ends_after_fatal, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_loop_ends_after_stop, fx_setup,
                                      fx_teardown),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
