/* Unit tests: the heartbeat (lib/kokoro.c) on a private event loop.  The
 * schedule is checked by the kokoro's own arithmetic, not by waiting. */
#include "config.h"

#include "harness.h"

#include <time.h>

#include "clock.h"
#include "kokoro.h"

struct beats {
  int beats;
  int zombies;
  struct dgw_kokoro *k;
  int ack_each;      /* ACK every beat at once */
  int ack_in_zombie; /* the owner finds the ACK waiting unread */
  int revived;       /* dgw_kokoro_revive() said 1 */
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
  if (b->ack_in_zombie)
    dgw_kokoro_ack(b->k);
  b->revived += dgw_kokoro_revive(b->k);
}

/* Blocks the thread (not the loop's timers: they just fire late), as a
 * busy handler does. */
static void stall_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0)
    ;
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
  assert_int_equal(b.revived, 0);
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

/* Input: the loop stalls 150 ms with a 50 ms interval while a beat waits
 * for its ACK.  The late timer credits the lateness (capped at one
 * interval) instead of calling a zombie; the ACK that arrives afterwards
 * counts.  Without the credit: a zombie at the first late firing. */
static void test_lateness_credit(void **state) {
  struct event_base *base = event_base_new();
  struct beats b = {0};

  (void)state;
  b.k = dgw_kokoro_new(base, &kcb, &b);
  dgw_kokoro_start(b.k, 50, 0.0);
  run_for(base, 5); /* the first beat, at once */
  assert_int_equal(b.beats, 1);
  stall_ms(150);
  run_for(base, 10); /* the timer fires 100 ms late */
  assert_int_equal(b.zombies, 0);
  assert_true(dgw_kokoro_late_max_ms(b.k) >= 90);
  assert_true(dgw_kokoro_due_in_ms(b.k) > 0); /* the extended deadline */
  assert_true(dgw_kokoro_due_in_ms(b.k) <= 50);
  dgw_kokoro_ack(b.k); /* the ACK turns up once the loop runs */
  run_for(base, 70);   /* the extended deadline: ACKed, so the next beat */
  assert_int_equal(b.beats, 2);
  assert_int_equal(b.zombies, 0);
  dgw_kokoro_free(b.k);
  event_base_free(base);
}

/* Input: a connection that never ACKs, on a loop that stalled far longer
 * than the interval.  The credit is capped at one interval, so the zombie
 * is still called one interval after the late check (two intervals after
 * the deadline at most, counting the stall itself as the loop's). */
static void test_credit_capped(void **state) {
  struct event_base *base = event_base_new();
  struct beats b = {0};
  uint64_t t0;

  (void)state;
  b.k = dgw_kokoro_new(base, &kcb, &b);
  dgw_kokoro_start(b.k, 40, 0.0);
  run_for(base, 5);
  stall_ms(300);
  t0 = dgw_monotonic_ms();
  assert_true(run_until(base, &b.done, 2.0));
  assert_int_equal(b.zombies, 1);
  assert_int_equal(b.revived, 0);
  assert_true(dgw_monotonic_ms() - t0 < 40 + 200); /* one interval + slack */
  assert_true(dgw_monotonic_ms() - t0 >= 35);      /* not at once */
  dgw_kokoro_free(b.k);
  event_base_free(base);
}

/* Input: at the deadline the owner reads its socket and finds the ACK
 * there.  dgw_kokoro_revive() says 1 and the beats go on; no zombie. */
static void test_revive_when_ack_waiting(void **state) {
  struct event_base *base = event_base_new();
  struct beats b = {0};
  int never = 0;

  (void)state;
  b.ack_in_zombie = 1;
  b.k = dgw_kokoro_new(base, &kcb, &b);
  dgw_kokoro_start(b.k, 5, 0.0);
  assert_true(run_until(base, &b.done, 2.0));
  assert_int_equal(b.revived, 1);
  assert_true(b.beats >= 2); /* revive sent the next beat at once */
  run_until(base, &never, 0.05);
  assert_true(b.beats >= 3); /* and beating goes on */
  assert_int_equal(b.revived, b.zombies);
  dgw_kokoro_free(b.k);
  event_base_free(base);
}

/* Input: a beat un-ACKed and overdue while the loop is inside a burst of
 * messages (poll).  poll does not judge it (the ACK may sit unread behind
 * the burst, our beat may not even have left); the timer does, later.
 * Before issue 19 this poll called the zombie. */
static void test_poll_does_not_judge(void **state) {
  struct event_base *base = event_base_new();
  struct beats b = {0};

  (void)state;
  b.k = dgw_kokoro_new(base, &kcb, &b);
  dgw_kokoro_start(b.k, 20, 0.0);
  run_for(base, 5);
  assert_int_equal(b.beats, 1);
  stall_ms(30);
  dgw_kokoro_poll(b.k);
  assert_int_equal(b.zombies, 0);
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
      cmocka_unit_test(test_lateness_credit),
      cmocka_unit_test(test_credit_capped),
      cmocka_unit_test(test_revive_when_ack_waiting),
      cmocka_unit_test(test_poll_does_not_judge),
  };
  return cmocka_run_group_tests_name("kokoro", tests, NULL, NULL);
}
