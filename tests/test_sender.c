/*
 * Unit tests: one shard's outbound path (lib/sender.c) on a private event
 * loop, with a write function that records what left and can fail on
 * demand.  Windows are short (a 200 ms window is 230 ms with the sender's
 * slack), so the drain timer is exercised for real.
 */
#include "config.h"

#include "harness.h"

#include "sender.h"

#define MAX_WRITES 512

/* What the sender wrote, and what it told the done callbacks. */
struct rec {
  struct event_base *base;
  struct dgw_sender *s;
  int nwrites;
  char writes[MAX_WRITES][32];
  double write_ms[MAX_WRITES];
  int write_error; /* returned by the write function when not 0 */
  int ndone;
  int done_result[MAX_WRITES];
  int done_tag[MAX_WRITES];
  int queue_in_done; /* a done callback queues "more" once */
};

static int rec_write(void *ud, const char *json, size_t len) {
  struct rec *r = ud;

  if (r->write_error != 0)
    return r->write_error;
  assert_true(r->nwrites < MAX_WRITES);
  snprintf(r->writes[r->nwrites], sizeof(r->writes[0]), "%.*s", (int)len, json);
  r->write_ms[r->nwrites] = now_ms();
  r->nwrites++;
  return DGW_OK;
}

/* The record of the running case (`user_data` of a done callback is the
 * command's tag). */
static struct rec *current;

/* `user_data` carries a tag: the index of the command. */
static void rec_done(int result, void *ud) {
  struct rec *r = current;

  assert_true(r->ndone < MAX_WRITES);
  r->done_result[r->ndone] = result;
  r->done_tag[r->ndone] = (int)(intptr_t)ud;
  r->ndone++;
  if (r->queue_in_done && result == DGW_OK) {
    r->queue_in_done = 0;
    assert_int_equal(
        dgw_sender_command(r->s, "more", 4, rec_done, (void *)(intptr_t)1000),
        DGW_OK);
  }
}

static struct rec *rec_new(uint32_t budget, uint32_t window_ms,
                           uint32_t reserved, size_t capacity) {
  struct rec *r = calloc(1, sizeof(*r));
  int err = 0;

  assert_non_null(r);
  r->base = event_base_new();
  r->s = dgw_sender_new(r->base, budget, window_ms, reserved, capacity,
                        rec_write, r, &err);
  assert_non_null(r->s);
  current = r;
  return r;
}

static void rec_free(struct rec *r) {
  dgw_sender_free(r->s);
  event_base_free(r->base);
  free(r);
  current = NULL;
}

/* Queues command number `tag`, its text "c<tag>". */
static int command(struct rec *r, int tag) {
  char json[16];
  int n = snprintf(json, sizeof(json), "c%d", tag);

  return dgw_sender_command(r->s, json, (size_t)n, rec_done,
                            (void *)(intptr_t)tag);
}

/* Runs the loop until `n` writes happened or `seconds` passed. */
static int wait_writes(struct rec *r, int n, double seconds) {
  double end = deadline_ms(seconds);

  while (r->nwrites < n && now_ms() < end)
    loop_once(r->base);
  return r->nwrites >= n;
}

/* ------------------------------------------------------------- cases */

/* Bad limits are refused with the limiter's or the queue's error. */
static void test_new_errors(void **state) {
  struct event_base *base = event_base_new();
  int err = 0;

  (void)state;
  assert_null(dgw_sender_new(base, 10, 1000, 10, 0, rec_write, NULL, &err));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT); /* reserved >= budget */
  err = 0;
  assert_null(dgw_sender_new(base, DGW_RATELIMIT_MAX_BUDGET + 1, 1000, 1, 0,
                             rec_write, NULL, &err));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
  err = 0;
  assert_null(dgw_sender_new(base, 10, 1000, 2, DGW_SENDQ_MAX_CAPACITY + 1,
                             rec_write, NULL, &err));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
  /* 0s are the defaults: 120 per 60 s, 5 reserved, 256 queued. */
  {
    struct rec *r = rec_new(0, 0, 0, 0);

    dgw_sender_set_ready(r->s, 1);
    for (int i = 0; i < 120; i++)
      assert_int_equal(command(r, i), DGW_OK);
    assert_int_equal(r->nwrites, 115);
    assert_int_equal(dgw_sender_queued(r->s), 5);
    assert_int_equal(dgw_sender_in_window(r->s), 115);
    rec_free(r);
  }
  dgw_sender_free(NULL);
  event_base_free(base);
}

/* Before READY commands wait, in order; READY sends them, each `done`
 * once with DGW_OK after its write. */
static void test_not_ready_queues(void **state) {
  struct rec *r = rec_new(10, 200, 2, 0);

  (void)state;
  for (int i = 0; i < 3; i++)
    assert_int_equal(command(r, i), DGW_OK);
  run_for(r->base, 20);
  assert_int_equal(r->nwrites, 0);
  assert_int_equal(r->ndone, 0);
  assert_int_equal(dgw_sender_queued(r->s), 3);
  dgw_sender_set_ready(r->s, 1);
  assert_int_equal(r->nwrites, 3); /* at once, inside set_ready */
  for (int i = 0; i < 3; i++) {
    char want[8];

    snprintf(want, sizeof(want), "c%d", i);
    assert_string_equal(r->writes[i], want);
    assert_int_equal(r->done_tag[i], i);
    assert_int_equal(r->done_result[i], DGW_OK);
  }
  assert_int_equal(dgw_sender_queued(r->s), 0);
  /* Ready and room: straight out, `done` before the call returns. */
  assert_int_equal(command(r, 3), DGW_OK);
  assert_int_equal(r->nwrites, 4);
  assert_int_equal(r->ndone, 4);
  /* No longer ready: held again. */
  dgw_sender_set_ready(r->s, 0);
  assert_int_equal(command(r, 4), DGW_OK);
  run_for(r->base, 20);
  assert_int_equal(r->nwrites, 4);
  assert_int_equal(dgw_sender_queued(r->s), 1);
  rec_free(r);
}

/* Commands get budget - reserved sends per window; the rest wait and
 * drain, in order, once the window (with its slack) has moved on. */
static void test_budget_and_window(void **state) {
  struct rec *r = rec_new(10, 200, 2, 0);
  double first;

  (void)state;
  dgw_sender_set_ready(r->s, 1);
  first = now_ms();
  for (int i = 0; i < 12; i++)
    assert_int_equal(command(r, i), DGW_OK);
  assert_int_equal(r->nwrites, 8);
  assert_int_equal(dgw_sender_queued(r->s), 4);
  assert_int_equal(dgw_sender_in_window(r->s), 8);
  assert_true(wait_writes(r, 12, 5 * time_scale()));
  for (int i = 0; i < 12; i++) {
    char want[8];

    snprintf(want, sizeof(want), "c%d", i);
    assert_string_equal(r->writes[i], want);
    assert_int_equal(r->done_tag[i], i);
  }
  /* Not one before the window of 200 ms + 5% + 20 ms moved past the
   * first send. */
  assert_true(r->write_ms[8] - first >= 230 - 5);
  assert_int_equal(dgw_sender_queued(r->s), 0);
  rec_free(r);
}

/* Heartbeats and IDENTIFY/RESUME go out at once on the reserved slots,
 * ready or not and past a full queue; when even those are gone nothing is
 * written and DGW_ERR_QUEUE_FULL says so. */
static void test_send_now_uses_reserve(void **state) {
  struct rec *r = rec_new(10, 60000, 2, 0);

  (void)state;
  dgw_sender_set_ready(r->s, 1);
  for (int i = 0; i < 10; i++)
    assert_int_equal(command(r, i), DGW_OK);
  assert_int_equal(r->nwrites, 8);
  assert_int_equal(dgw_sender_queued(r->s), 2);
  assert_int_equal(dgw_sender_send_now(r->s, DGW_SEND_HEARTBEAT, "hb", 2),
                   DGW_OK);
  dgw_sender_set_ready(r->s, 0);
  assert_int_equal(dgw_sender_send_now(r->s, DGW_SEND_CONTROL, "id", 2),
                   DGW_OK);
  assert_int_equal(r->nwrites, 10);
  assert_string_equal(r->writes[8], "hb");
  assert_string_equal(r->writes[9], "id");
  assert_int_equal(dgw_sender_send_now(r->s, DGW_SEND_HEARTBEAT, "hb", 2),
                   DGW_ERR_QUEUE_FULL);
  assert_int_equal(r->nwrites, 10);
  /* A write error is handed back as is. */
  dgw_sender_new_connection(r->s);
  r->write_error = DGW_ERR_CONNECTION_LOST;
  assert_int_equal(dgw_sender_send_now(r->s, DGW_SEND_HEARTBEAT, "hb", 2),
                   DGW_ERR_CONNECTION_LOST);
  rec_free(r);
}

/* The queue holds `capacity` commands; one more is refused with
 * DGW_ERR_QUEUE_FULL and its `done` never runs. */
static void test_queue_cap(void **state) {
  struct rec *r = rec_new(10, 200, 2, 4);

  (void)state;
  for (int i = 0; i < 4; i++)
    assert_int_equal(command(r, i), DGW_OK);
  assert_int_equal(command(r, 4), DGW_ERR_QUEUE_FULL);
  assert_int_equal(dgw_sender_queued(r->s), 4);
  dgw_sender_set_ready(r->s, 1);
  assert_int_equal(r->nwrites, 4);
  assert_int_equal(r->ndone, 4);
  for (int i = 0; i < 4; i++)
    assert_int_not_equal(r->done_tag[i], 4);
  rec_free(r);
}

/* The queue grows past its first allocation (8) in order, up to a large
 * capacity. */
static void test_queue_growth(void **state) {
  struct rec *r = rec_new(400, 200, 2, 300);

  (void)state;
  for (int i = 0; i < 300; i++)
    assert_int_equal(command(r, i), DGW_OK);
  assert_int_equal(command(r, 300), DGW_ERR_QUEUE_FULL);
  dgw_sender_set_ready(r->s, 1);
  assert_int_equal(r->nwrites, 300);
  for (int i = 0; i < 300; i++)
    assert_int_equal(r->done_tag[i], i);
  rec_free(r);
}

/* fail_all fails every queued command back, once each, with the error;
 * nothing goes out afterwards. */
static void test_fail_all(void **state) {
  struct rec *r = rec_new(10, 200, 2, 0);

  (void)state;
  for (int i = 0; i < 5; i++)
    assert_int_equal(command(r, i), DGW_OK);
  dgw_sender_fail_all(r->s, DGW_ERR_SESSION_LOST);
  assert_int_equal(r->ndone, 5);
  for (int i = 0; i < 5; i++) {
    assert_int_equal(r->done_tag[i], i);
    assert_int_equal(r->done_result[i], DGW_ERR_SESSION_LOST);
  }
  assert_int_equal(dgw_sender_queued(r->s), 0);
  dgw_sender_set_ready(r->s, 1);
  run_for(r->base, 20);
  assert_int_equal(r->nwrites, 0);
  assert_int_equal(r->ndone, 5);
  rec_free(r);
}

/* Freeing drops what is queued without a callback. */
static void test_free_is_silent(void **state) {
  struct rec *r = rec_new(10, 200, 2, 0);

  (void)state;
  for (int i = 0; i < 3; i++)
    assert_int_equal(command(r, i), DGW_OK);
  dgw_sender_free(r->s);
  r->s = NULL;
  assert_int_equal(r->ndone, 0);
  rec_free(r);
}

/* A write that fails keeps the command queued (the connection is
 * going); it goes out, once, when a later drain can write. */
static void test_write_error_keeps_command(void **state) {
  struct rec *r = rec_new(10, 200, 2, 0);

  (void)state;
  dgw_sender_set_ready(r->s, 1);
  r->write_error = DGW_ERR_CONNECTION_LOST;
  assert_int_equal(command(r, 0), DGW_OK);
  assert_int_equal(r->ndone, 0);
  assert_int_equal(dgw_sender_queued(r->s), 1);
  r->write_error = 0;
  dgw_sender_new_connection(r->s);
  assert_int_equal(dgw_sender_in_window(r->s), 0);
  dgw_sender_set_ready(r->s, 1);
  assert_int_equal(r->nwrites, 1);
  assert_int_equal(r->ndone, 1);
  assert_int_equal(r->done_result[0], DGW_OK);
  rec_free(r);
}

/* A new connection forgets the window: a full window's worth of commands
 * waiting goes out as soon as the new session is ready. */
static void test_new_connection_resets_window(void **state) {
  struct rec *r = rec_new(10, 60000, 2, 0);

  (void)state;
  dgw_sender_set_ready(r->s, 1);
  for (int i = 0; i < 12; i++)
    assert_int_equal(command(r, i), DGW_OK);
  assert_int_equal(r->nwrites, 8);
  dgw_sender_new_connection(r->s);
  run_for(r->base, 20);
  assert_int_equal(r->nwrites, 8); /* not ready on the new connection */
  dgw_sender_set_ready(r->s, 1);
  assert_int_equal(r->nwrites, 12);
  assert_string_equal(r->writes[11], "c11");
  rec_free(r);
}

/* A `done` callback may queue more: it goes out behind the rest. */
static void test_done_may_queue(void **state) {
  struct rec *r = rec_new(10, 200, 2, 0);

  (void)state;
  for (int i = 0; i < 3; i++)
    assert_int_equal(command(r, i), DGW_OK);
  r->queue_in_done = 1;
  dgw_sender_set_ready(r->s, 1);
  assert_true(wait_writes(r, 4, 2 * time_scale()));
  assert_string_equal(r->writes[0], "c0");
  assert_string_equal(r->writes[1], "c1");
  assert_string_equal(r->writes[2], "c2");
  assert_string_equal(r->writes[3], "more");
  assert_int_equal(r->done_tag[3], 1000);
  rec_free(r);
}

/* HELLO's interval sizes the reserve: every beat of a window plus 2,
 * never below the configured reserve, never above half the budget; the
 * commands get the rest. */
static void test_heartbeat_interval_reserve(void **state) {
  static const struct {
    uint32_t interval_ms;
    int commands; /* that go straight out of 120 in 60 s (63,020 ms) */
  } table[] = {
      {41250, 115}, /* 1 + 1 + 2 = 4 < 5: the default stays */
      {10000, 111}, /* 6 + 1 + 2 = 9 */
      {1000, 60},   /* 63 + 1 + 2 = 66: capped at half */
      {0, 115},     /* no interval: the default */
  };

  (void)state;
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    struct rec *r = rec_new(0, 0, 0, 0);

    assert_int_equal(
        dgw_sender_set_heartbeat_interval(r->s, table[i].interval_ms), DGW_OK);
    dgw_sender_set_ready(r->s, 1);
    for (int j = 0; j < 120; j++)
      assert_int_equal(command(r, j), DGW_OK);
    if (r->nwrites != table[i].commands)
      fail_msg("interval %u: %d commands, want %d",
               (unsigned)table[i].interval_ms, r->nwrites, table[i].commands);
    /* The reserve is still there for the heartbeat. */
    assert_int_equal(dgw_sender_send_now(r->s, DGW_SEND_HEARTBEAT, "hb", 2),
                     DGW_OK);
    rec_free(r);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_errors),
      cmocka_unit_test(test_not_ready_queues),
      cmocka_unit_test(test_budget_and_window),
      cmocka_unit_test(test_send_now_uses_reserve),
      cmocka_unit_test(test_queue_cap),
      cmocka_unit_test(test_queue_growth),
      cmocka_unit_test(test_fail_all),
      cmocka_unit_test(test_free_is_silent),
      cmocka_unit_test(test_write_error_keeps_command),
      cmocka_unit_test(test_new_connection_resets_window),
      cmocka_unit_test(test_done_may_queue),
      cmocka_unit_test(test_heartbeat_interval_reserve),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
