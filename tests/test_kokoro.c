/* Unit tests: the heartbeat (lib/kokoro.c) on a private event loop.  The
 * schedule is checked by the kokoro's own arithmetic, not by waiting. */
#include "config.h"

#include "harness.h"

#include "kokoro.h"

struct beats {
  int beats;
  int zombies;
  struct dgw_kokoro *k;
  int ack_each; /* ACK every beat at once */
  int done;
};

static void on_beat(void *ud) {
  struct beats *b = ud;

  b->beats++;
  if (b->beats >= 10)
    b->done = 1;
  if (b->ack_each)
    dgw_kokoro_ack(b->k);
}

static void on_zombie(void *ud) {
  struct beats *b = ud;

  b->zombies++;
  b->done = 1;
}

static const struct dgw_kokoro_callbacks kcb = {on_beat, on_zombie};

/* The first beat is due after interval * jitter: jitter 0.25 of 40 s is
 * 10 s, jitter 0 is at once; a bad jitter counts as 0. */
static void test_first_beat_jitter(void **state) {
  struct event_base *base = event_base_new();
  struct beats b = {0};
  uint64_t due;

  (void)state;
  b.k = dgw_kokoro_new(base, &kcb, &b);
  dgw_kokoro_start(b.k, 40000, 0.25);
  due = dgw_kokoro_due_in_ms(b.k);
  assert_true(due <= 10000 && due >= 9900);
  dgw_kokoro_start(b.k, 40000, 0.999);
  due = dgw_kokoro_due_in_ms(b.k);
  assert_true(due <= 39960 && due >= 39800);
  dgw_kokoro_start(b.k, 40000, 7.0);
  assert_int_equal(dgw_kokoro_due_in_ms(b.k), 0);
  dgw_kokoro_stop(b.k);
  assert_int_equal(dgw_kokoro_due_in_ms(b.k), 0);
  assert_int_equal(b.beats, 0);
  dgw_kokoro_free(b.k);
  event_base_free(base);
}

/* Beats repeat every interval while ACKed; after a beat the next is a
 * whole interval away. */
static void test_beats_repeat_while_acked(void **state) {
  struct event_base *base = event_base_new();
  struct beats b = {0};

  (void)state;
  b.ack_each = 1;
  b.k = dgw_kokoro_new(base, &kcb, &b);
  dgw_kokoro_start(b.k, 5, 0.0);
  assert_true(run_until(base, &b.done, 10));
  assert_int_equal(b.zombies, 0);
  assert_int_equal(dgw_kokoro_beats(b.k), 10);
  assert_true(dgw_kokoro_due_in_ms(b.k) <= 5);
  assert_true(dgw_kokoro_latency_ms(b.k) >= 0.0);
  dgw_kokoro_free(b.k);
  event_base_free(base);
}

/* No ACK before the next beat is due: zombie, once, and the kokoro stops
 * itself. */
static void test_zombie(void **state) {
  struct event_base *base = event_base_new();
  struct beats b = {0};

  (void)state;
  b.k = dgw_kokoro_new(base, &kcb, &b);
  dgw_kokoro_start(b.k, 5, 0.0);
  assert_true(run_until(base, &b.done, 5));
  assert_int_equal(b.beats, 1); /* the first, never ACKed */
  assert_int_equal(b.zombies, 1);
  assert_int_equal(dgw_kokoro_due_in_ms(b.k), 0);
  run_for(base, 30);
  assert_int_equal(b.zombies, 1);
  assert_true(dgw_kokoro_latency_ms(b.k) < 0); /* never measured */
  dgw_kokoro_free(b.k);
  event_base_free(base);
}

/* A requested beat goes out at once and restarts the interval, so its ACK
 * has a whole interval; an ACK nobody asked for changes nothing. */
static void test_beat_now_and_stray_ack(void **state) {
  struct event_base *base = event_base_new();
  struct beats b = {0};

  (void)state;
  b.k = dgw_kokoro_new(base, &kcb, &b);
  dgw_kokoro_ack(b.k); /* stopped: ignored */
  assert_true(dgw_kokoro_latency_ms(b.k) < 0);
  dgw_kokoro_start(b.k, 60000, 0.1);
  assert_true(dgw_kokoro_due_in_ms(b.k) <= 6000);
  dgw_kokoro_beat_now(b.k);
  assert_int_equal(b.beats, 1);
  assert_true(dgw_kokoro_due_in_ms(b.k) > 59000);
  dgw_kokoro_ack(b.k);
  assert_true(dgw_kokoro_latency_ms(b.k) >= 0);
  dgw_kokoro_ack(b.k); /* a second ACK for the same beat: ignored */
  dgw_kokoro_free(b.k);
  event_base_free(base);
}

/* poll() runs a beat that is due though its timer has not fired (the loop
 * was busy); it does nothing when none is due. */
static void test_poll(void **state) {
  struct event_base *base = event_base_new();
  struct beats b = {0};

  (void)state;
  b.ack_each = 1;
  b.k = dgw_kokoro_new(base, &kcb, &b);
  dgw_kokoro_start(b.k, 60000, 0.0); /* due now */
  dgw_kokoro_poll(b.k);
  assert_int_equal(b.beats, 1);
  dgw_kokoro_poll(b.k); /* next one is a minute away */
  assert_int_equal(b.beats, 1);
  dgw_kokoro_free(b.k);
  event_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_first_beat_jitter),
      cmocka_unit_test(test_beats_repeat_while_acked),
      cmocka_unit_test(test_zombie),
      cmocka_unit_test(test_beat_now_and_stray_ack),
      cmocka_unit_test(test_poll),
  };
  return cmocka_run_group_tests_name("kokoro", tests, NULL, NULL);
}
