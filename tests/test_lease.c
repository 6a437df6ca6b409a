/* Unit tests: the lease core (lib/lease.c) from tables, no Redis, no
 * loop: each row is a sequence of times and what the core must decide. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "lease.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

static struct dgw_lease_config cfg_of(uint32_t lease, uint32_t margin) {
  struct dgw_lease_config in = {lease, margin, 0, 0};
  struct dgw_lease_config out;

  dgw_lease_config_resolve(&in, &out);
  return out;
}

/* The defaults: margin lease/5 (at least 100, below the lease), renew
 * every lease/3, retry 250 ms (at most the renew period). */
static void test_config_defaults(void **state) {
  static const struct {
    uint32_t lease, margin, want_margin, want_renew, want_retry;
  } rows[] = {
      {15000, 0, 3000, 5000, 250},
      {3000, 0, 600, 1000, 250},
      {300, 0, 100, 100, 100},
      {1000, 2000, 500, 333, 250}, /* a margin past the lease: halved */
  };

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
    struct dgw_lease_config c = cfg_of(rows[i].lease, rows[i].margin);

    assert_int_equal(c.margin_ms, rows[i].want_margin);
    assert_int_equal(c.renew_ms, rows[i].want_renew);
    assert_int_equal(c.retry_ms, rows[i].want_retry);
  }
}

/* The deadline counts from when a renew was SENT, never from its reply:
 * acquire sent at `acq`, a renew sent at `sent` and answered at `answer`;
 * the lease (3000, margin 600) runs until sent + 2400.  Counting from the
 * reply would give answer + 2400 and outlive the Redis key. */
static void test_deadline_from_send_time(void **state) {
  static const struct {
    uint64_t acq, sent, answer, want_until, want_next;
  } rows[] = {
      {1000, 2000, 2010, 4400, 3000},
      {1000, 2000, 2900, 4400, 3000}, /* a slow reply: still 4400 */
      {1000, 2000, 9000, 4400, 3000}, /* a reply after a pause: past due */
  };
  struct dgw_lease_config c = cfg_of(3000, 600);

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
    struct dgw_lease l;

    memset(&l, 0, sizeof(l));
    dgw_lease_acquired(&l, &c, rows[i].acq, 7);
    assert_int_equal(l.valid_until, rows[i].acq + 2400);
    assert_int_equal(l.token, 7);
    assert_false(dgw_lease_renew_due(&l, rows[i].acq + 999));
    assert_true(dgw_lease_renew_due(&l, rows[i].acq + 1000));
    dgw_lease_renew_sent(&l, rows[i].sent);
    assert_false(dgw_lease_renew_due(&l, rows[i].sent + 5000)); /* in flight */
    dgw_lease_renew_answered(&l, &c, 1, rows[i].answer);
    assert_int_equal(l.valid_until, rows[i].want_until);
    assert_int_equal(l.next_renew, rows[i].want_next);
    assert_int_equal(dgw_lease_may_send(&l, rows[i].answer),
                     rows[i].answer < rows[i].want_until);
    assert_int_equal(dgw_lease_expired(&l, rows[i].answer),
                     rows[i].answer >= rows[i].want_until);
  }
}

/* A Redis outage: renews fail (no answer) from t=1000 on, retried every
 * 250 ms; the shard runs until the acquire's deadline (2400) and not a
 * millisecond longer.  An outage shorter than that (Redis back at 2000)
 * loses nothing. */
static void test_outage_shorter_and_longer(void **state) {
  struct dgw_lease_config c = cfg_of(3000, 600);
  struct dgw_lease l;
  uint64_t t;

  (void)state;
  memset(&l, 0, sizeof(l));
  dgw_lease_acquired(&l, &c, 0, 1);
  for (t = 1000; t < 2400; t += 10) {
    if (dgw_lease_renew_due(&l, t)) {
      dgw_lease_renew_sent(&l, t);
      dgw_lease_renew_failed(&l, &c, t + 5);
      assert_int_equal(l.next_renew, t + 5 + 250);
    }
    assert_true(dgw_lease_may_send(&l, t));
  }
  assert_false(dgw_lease_may_send(&l, 2400));
  assert_true(dgw_lease_expired(&l, 2400));
  assert_int_equal(dgw_lease_left(&l, 2400), 0);
  assert_int_equal(dgw_lease_left(&l, 2000), 400);

  /* Shorter: the renew sent at 2000 succeeds: runs on to 4400. */
  memset(&l, 0, sizeof(l));
  dgw_lease_acquired(&l, &c, 0, 1);
  dgw_lease_renew_sent(&l, 1000);
  dgw_lease_renew_failed(&l, &c, 1010);
  dgw_lease_renew_sent(&l, 2000);
  dgw_lease_renew_answered(&l, &c, 1, 2020);
  assert_true(dgw_lease_may_send(&l, 4399));
  assert_false(dgw_lease_may_send(&l, 4400));
}

/* A pause (SIGSTOP, VM freeze): no timer ran between 500 and 60000.  The
 * first question on waking, whatever it is (a write, a timer), finds the
 * lease gone; a renew answered OK after the pause resurrects nothing
 * past its send time + lease - margin.  A renew refused by the script
 * (another holder) loses the lease at once; an answer after the lease was
 * dropped changes nothing. */
static void test_pause_and_refusal(void **state) {
  struct dgw_lease_config c = cfg_of(3000, 600);
  struct dgw_lease l;

  (void)state;
  memset(&l, 0, sizeof(l));
  dgw_lease_acquired(&l, &c, 0, 1);
  assert_true(dgw_lease_may_send(&l, 500));
  dgw_lease_renew_sent(&l, 500); /* sent just before the pause */
  assert_false(dgw_lease_may_send(&l, 60000));
  assert_true(dgw_lease_expired(&l, 60000));
  dgw_lease_renew_answered(&l, &c, 1, 60001);
  assert_false(dgw_lease_may_send(&l, 60001));

  memset(&l, 0, sizeof(l));
  dgw_lease_acquired(&l, &c, 0, 2);
  dgw_lease_renew_sent(&l, 1000);
  dgw_lease_renew_answered(&l, &c, 0, 1010);
  assert_false(l.held);
  assert_false(dgw_lease_may_send(&l, 1010));
  assert_false(dgw_lease_expired(&l, 1010)); /* not held: nothing to close */

  memset(&l, 0, sizeof(l));
  dgw_lease_acquired(&l, &c, 0, 3);
  dgw_lease_renew_sent(&l, 1000);
  dgw_lease_lost(&l); /* dropped while the renew was in flight */
  dgw_lease_renew_answered(&l, &c, 1, 1010);
  assert_false(l.held);
}

/* Fair shares: total / members, the first total % members one more. */
static void test_fair_share(void **state) {
  static const struct {
    uint32_t total, members, rank, want;
  } rows[] = {
      {16, 3, 0, 6},  {16, 3, 1, 5}, {16, 3, 2, 5}, {16, 4, 3, 4},
      {16, 1, 0, 16}, {2, 3, 2, 0},  {2, 3, 1, 1},  {5, 0, 0, 0},
  };

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(rows); i++)
    assert_int_equal(
        dgw_lease_fair_share(rows[i].total, rows[i].members, rows[i].rank),
        rows[i].want);
}

/* Plans: a member below its share claims free shards from its own
 * starting point; one above hands over its highest ones; one at its
 * share does nothing. */
static void test_plan(void **state) {
  uint8_t mine[16], taken[16];
  uint32_t claim[16], release[16];
  uint32_t nc, nr;

  (void)state;
  /* Rank 1 of 3, nothing held, shards 0..5 taken by rank 0: claims 5 from
   * shard 5 (= 1 * 16 / 3) on, skipping the taken ones. */
  memset(mine, 0, sizeof(mine));
  memset(taken, 0, sizeof(taken));
  for (int i = 0; i < 6; i++)
    taken[i] = 1;
  dgw_lease_plan(16, 3, 1, mine, taken, claim, &nc, release, &nr);
  assert_int_equal(nc, 5);
  assert_int_equal(nr, 0);
  for (uint32_t k = 0; k < nc; k++)
    assert_int_equal(claim[k], 6 + k);

  /* Rank 0 of 4 holding 8 (0..7): hands over 7, 6, 5, 4. */
  memset(mine, 0, sizeof(mine));
  for (int i = 0; i < 8; i++)
    mine[i] = taken[i] = 1;
  dgw_lease_plan(16, 4, 0, mine, taken, claim, &nc, release, &nr);
  assert_int_equal(nc, 0);
  assert_int_equal(nr, 4);
  assert_int_equal(release[0], 7);
  assert_int_equal(release[3], 4);

  /* At its share (4 of 16 with 4 members): nothing. */
  memset(mine, 0, sizeof(mine));
  for (int i = 0; i < 4; i++)
    mine[i] = 1;
  dgw_lease_plan(16, 4, 2, mine, taken, claim, &nc, release, &nr);
  assert_int_equal(nc, 0);
  assert_int_equal(nr, 0);

  /* Everything taken by others: nothing to claim even below the share. */
  memset(mine, 0, sizeof(mine));
  memset(taken, 1, sizeof(taken));
  dgw_lease_plan(16, 2, 1, mine, taken, claim, &nc, release, &nr);
  assert_int_equal(nc, 0);
  assert_int_equal(nr, 0);
}

/* Where a new holder RESUMEs: never past the stream's stored position of
 * the same session; another session's position (or none) says nothing. */
static void test_resume_seq(void **state) {
  static const struct {
    const char *sid;
    int64_t seq;
    const char *stored_sid;
    int64_t stored_seq;
    int64_t want;
  } t[] = {
      {"A", 100, NULL, 0, 100},  /* no stream writer: the session's seq */
      {"A", 100, "A", 40, 40},   /* the stream lags: resume from it */
      {"A", 100, "A", 100, 100}, /* caught up */
      {"A", 100, "A", 130, 100}, /* the stream is ahead: the script skips */
      {"A", 100, "B", 40, 100},  /* another session's position */
      {"A", 100, "A", -1, 100},  /* a malformed position is ignored */
      {"A", 0, "A", 0, 0},       /* nothing delivered yet */
  };

  (void)state;
  for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++)
    assert_int_equal(dgw_lease_resume_seq(t[i].sid, t[i].seq, t[i].stored_sid,
                                          t[i].stored_seq),
                     t[i].want);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_config_defaults),
      cmocka_unit_test(test_deadline_from_send_time),
      cmocka_unit_test(test_outage_shorter_and_longer),
      cmocka_unit_test(test_pause_and_refusal),
      cmocka_unit_test(test_fair_share),
      cmocka_unit_test(test_plan),
      cmocka_unit_test(test_resume_seq),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
