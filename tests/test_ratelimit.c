/*
 * Tests for lib/ratelimit.c: the sliding-window send limiter (budget,
 * reserved slots, classes, next_ms, reset, a randomized check of every
 * window) and the bounded send queue (order, capacity, clear).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dgw/dgw.h>

#include "ratelimit.h"

#define W DGW_RATELIMIT_DEFAULT_WINDOW_MS
#define BUDGET DGW_RATELIMIT_DEFAULT_BUDGET
#define RESERVED DGW_RATELIMIT_DEFAULT_RESERVED

static struct dgw_ratelimit *new_limiter(uint32_t budget, uint64_t window_ms,
                                         uint32_t reserved) {
  int err = 1;
  struct dgw_ratelimit *rl =
      dgw_ratelimit_new(budget, window_ms, reserved, &err);

  assert_non_null(rl);
  assert_int_equal(err, DGW_OK);
  return rl;
}

static struct dgw_ratelimit *new_default(void) {
  return new_limiter(BUDGET, W, RESERVED);
}

/* ---------------------------------------------------------------- */
/* Configuration                                                     */
/* ---------------------------------------------------------------- */

static const struct {
  const char *name;
  uint32_t budget;
  uint64_t window_ms;
  uint32_t reserved;
} bad_configs[] = {
    {"budget 0", 0, 60000, 0},
    {"budget over the max", DGW_RATELIMIT_MAX_BUDGET + 1, 60000, 0},
    {"reserved == budget", 120, 60000, 120},
    {"reserved > budget", 120, 60000, 121},
    {"window 0", 120, 0, 3},
};

static void test_new_refuses_bad_config(void **state) {
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad_configs) / sizeof(bad_configs[0]); i++) {
    int err = 0;
    struct dgw_ratelimit *rl =
        dgw_ratelimit_new(bad_configs[i].budget, bad_configs[i].window_ms,
                          bad_configs[i].reserved, &err);

    if (rl != NULL || err != DGW_ERR_INVALID_ARGUMENT)
      fail_msg("case \"%s\": expected NULL and DGW_ERR_INVALID_ARGUMENT, got "
               "%p and %d",
               bad_configs[i].name, (void *)rl, err);
  }
  /* err may be NULL; the largest budget and reserved = budget - 1 work. */
  assert_null(dgw_ratelimit_new(0, 1, 0, NULL));
  dgw_ratelimit_free(new_limiter(DGW_RATELIMIT_MAX_BUDGET, 1, 0));
  dgw_ratelimit_free(new_limiter(2, 1, 1));
  dgw_ratelimit_free(NULL);
}

/* ---------------------------------------------------------------- */
/* The budget and its exact boundary                                 */
/* ---------------------------------------------------------------- */

/* 120 sends spread over 1.19 s pass; the 121st waits until the first
 * leaves the window, to the millisecond, and so on for the next ones. */
static void test_budget_boundary(void **state) {
  struct dgw_ratelimit *rl = new_default();
  const uint64_t t0 = 5000;
  uint32_t i;

  (void)state;
  for (i = 0; i < BUDGET; i++)
    assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, t0 + i * 10), 1);
  assert_int_equal(dgw_ratelimit_in_window(rl, t0 + 1190), BUDGET);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, t0 + 1190), 0);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_CONTROL, t0 + W - 1), 0);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, t0 + W - 1), 0);
  /* The send at t0 stops counting at exactly t0 + W. */
  assert_int_equal(dgw_ratelimit_in_window(rl, t0 + W), BUDGET - 1);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, t0 + W), 1);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, t0 + W), 0);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, t0 + W + 9), 0);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, t0 + W + 10), 1);
  /* Much later everything has left the window. */
  assert_int_equal(dgw_ratelimit_in_window(rl, t0 + 10 * W), 0);
  dgw_ratelimit_free(rl);
}

/* ---------------------------------------------------------------- */
/* Classes                                                           */
/* ---------------------------------------------------------------- */

/* Commands stop at budget - reserved; heartbeats and control payloads
 * still get the reserved slots, and nothing gets more than the budget. */
static void test_reserved_slots(void **state) {
  struct dgw_ratelimit *rl = new_default();
  uint32_t i;

  (void)state;
  for (i = 0; i < BUDGET - RESERVED; i++)
    assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 100 + i), 1);
  assert_int_equal(dgw_ratelimit_in_window(rl, 1000), BUDGET - RESERVED);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 1000), 0);
  assert_int_equal(dgw_ratelimit_available(rl, DGW_SEND_COMMAND, 1000), 0);
  assert_int_equal(dgw_ratelimit_available(rl, DGW_SEND_HEARTBEAT, 1000),
                   RESERVED);
  for (i = 0; i < RESERVED; i++) {
    assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, 2000 + i), 1);
    assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 2000 + i), 0);
  }
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, 3000), 0);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_CONTROL, 3000), 0);
  /* Commands come back only when the window holds fewer than
   * budget - reserved sends: after the first RESERVED + 1 have left. */
  assert_int_equal(
      dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 100 + RESERVED - 1 + W), 0);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 100 + RESERVED + W),
                   1);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 100 + RESERVED + W),
                   0);
  dgw_ratelimit_free(rl);
}

/* IDENTIFY/RESUME may use the whole budget, like heartbeats. */
static void test_control_class(void **state) {
  struct dgw_ratelimit *rl = new_default();
  uint32_t i;

  (void)state;
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_CONTROL, 0), 1);
  for (i = 1; i < BUDGET - RESERVED; i++)
    assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, i), 1);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 500), 0);
  for (i = 0; i < RESERVED; i++)
    assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_CONTROL, 500), 1);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_CONTROL, 500), 0);
  assert_int_equal(dgw_ratelimit_next_ms(rl, DGW_SEND_CONTROL, 500), W);
  dgw_ratelimit_free(rl);

  /* An unknown class is held to the command limit. */
  rl = new_default();
  for (i = 0; i < BUDGET - RESERVED; i++)
    assert_int_equal(dgw_ratelimit_try(rl, (enum dgw_send_class)7, 0), 1);
  assert_int_equal(dgw_ratelimit_try(rl, (enum dgw_send_class)7, 0), 0);
  assert_int_equal(dgw_ratelimit_available(rl, DGW_SEND_HEARTBEAT, 0),
                   RESERVED);
  dgw_ratelimit_free(rl);
}

/* ---------------------------------------------------------------- */
/* next_ms                                                           */
/* ---------------------------------------------------------------- */

/* A limiter of budget 4, reserved 1 (commands get 3), window 1000, with
 * `sends` heartbeats already sent at 10, 20, 30, 40. */
static const struct {
  const char *name;
  uint32_t sends;
  enum dgw_send_class cls;
  uint64_t now;
  uint64_t expect;
  int waits; /* 1 when `expect` is a wait, so expect - 1 must be refused */
} next_cases[] = {
    {"empty limiter: now", 0, DGW_SEND_COMMAND, 5, 5, 0},
    {"command at budget-reserved: oldest + W", 3, DGW_SEND_COMMAND, 35, 1010,
     1},
    {"heartbeat with room: now", 3, DGW_SEND_HEARTBEAT, 35, 35, 0},
    {"heartbeat, full: oldest + W", 4, DGW_SEND_HEARTBEAT, 45, 1010, 1},
    {"control, full: oldest + W", 4, DGW_SEND_CONTROL, 45, 1010, 1},
    {"command, full: second oldest + W", 4, DGW_SEND_COMMAND, 45, 1020, 1},
    {"command, oldest gone: next oldest + W", 4, DGW_SEND_COMMAND, 1010, 1020,
     1},
    {"command at its own boundary: now", 4, DGW_SEND_COMMAND, 1020, 1020, 0},
    {"heartbeat at its own boundary: now", 4, DGW_SEND_HEARTBEAT, 1010, 1010,
     0},
    {"command much later: now", 4, DGW_SEND_COMMAND, 5000, 5000, 0},
    {"clock went back, full: oldest + W", 4, DGW_SEND_HEARTBEAT, 0, 1010, 1},
    {"clock went back, room: the last send's time", 3, DGW_SEND_HEARTBEAT, 0,
     30, 0},
};

static void test_next_ms(void **state) {
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(next_cases) / sizeof(next_cases[0]); i++) {
    struct dgw_ratelimit *rl = new_limiter(4, 1000, 1);
    uint64_t got;
    uint32_t k;

    for (k = 1; k <= next_cases[i].sends; k++)
      assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, 10 * k), 1);
    got = dgw_ratelimit_next_ms(rl, next_cases[i].cls, next_cases[i].now);
    if (got != next_cases[i].expect)
      fail_msg("case \"%s\": next_ms %llu, expected %llu", next_cases[i].name,
               (unsigned long long)got,
               (unsigned long long)next_cases[i].expect);
    /* The promise holds: refused a millisecond before, allowed then. */
    if (next_cases[i].waits &&
        dgw_ratelimit_available(rl, next_cases[i].cls, got - 1) != 0)
      fail_msg("case \"%s\": already allowed at %llu", next_cases[i].name,
               (unsigned long long)(got - 1));
    if (dgw_ratelimit_try(rl, next_cases[i].cls, got) != 1)
      fail_msg("case \"%s\": refused at next_ms %llu", next_cases[i].name,
               (unsigned long long)got);
    dgw_ratelimit_free(rl);
  }
}

/* ---------------------------------------------------------------- */
/* Reset                                                             */
/* ---------------------------------------------------------------- */

static void test_reset(void **state) {
  struct dgw_ratelimit *rl = new_default();
  uint32_t i;

  (void)state;
  for (i = 0; i < BUDGET; i++)
    assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_HEARTBEAT, 1000), 1);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_CONTROL, 1001), 0);
  dgw_ratelimit_reset(rl);
  assert_int_equal(dgw_ratelimit_in_window(rl, 1001), 0);
  assert_int_equal(dgw_ratelimit_next_ms(rl, DGW_SEND_COMMAND, 1001), 1001);
  /* A new connection gets the whole budget again, with the same split. */
  for (i = 0; i < BUDGET - RESERVED; i++)
    assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 1001), 1);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 1001), 0);
  /* After a reset the clock may restart lower (a different clock base). */
  dgw_ratelimit_reset(rl);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 3), 1);
  assert_int_equal(dgw_ratelimit_next_ms(rl, DGW_SEND_COMMAND, 3), 3);
  dgw_ratelimit_free(rl);
}

/* ---------------------------------------------------------------- */
/* Randomized: every window of every run holds at most the budget    */
/* ---------------------------------------------------------------- */

/* xorshift64*: deterministic across platforms, unlike rand(). */
static uint64_t next_random(uint64_t *s) {
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * 2685821657736338717ull;
}

struct sent {
  uint64_t t;
  int command;
};

/* The reference count: sends among the first `n` (sorted by time, all at
 * or before `at`) that still count at `at`, i.e. with t + window > at. */
static uint32_t count_at(const struct sent *s, size_t n, uint64_t at,
                         uint64_t window) {
  size_t lo = 0, hi = n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;

    if (s[mid].t + window > at)
      hi = mid;
    else
      lo = mid + 1;
  }
  return (uint32_t)(n - lo);
}

static const struct {
  const char *name;
  uint64_t seed;
  uint32_t budget;
  uint64_t window_ms;
  uint32_t reserved;
  uint64_t max_gap_ms;      /* gaps are uniform in [0, max_gap_ms) ... */
  unsigned burst_per_mille; /* ... or 0 (a burst) this often */
} random_cases[] = {
    {"discord defaults, busy", 1, 120, 60000, 5, 1000, 300},
    {"discord defaults, bursty", 0x5eed, 120, 60000, 5, 4000, 800},
    {"discord defaults, at the limit", 42, 120, 60000, 5, 1000, 0},
    {"small window", 7, 10, 1000, 3, 200, 500},
    {"no reserve", 99, 8, 500, 0, 100, 200},
};

#define RANDOM_SENDS 10000

static void test_randomized_windows(void **state) {
  size_t c;

  (void)state;
  for (c = 0; c < sizeof(random_cases) / sizeof(random_cases[0]); c++) {
    const uint64_t window = random_cases[c].window_ms;
    const uint32_t budget = random_cases[c].budget;
    const uint32_t command_limit = budget - random_cases[c].reserved;
    struct dgw_ratelimit *rl =
        new_limiter(budget, window, random_cases[c].reserved);
    struct sent *sent = calloc(RANDOM_SENDS, sizeof(*sent));
    uint64_t seed = random_cases[c].seed, now = 1000;
    size_t n = 0, attempt, i, j, refused = 0;
    uint32_t fullest = 0;

    assert_non_null(sent);
    for (attempt = 0; attempt < RANDOM_SENDS; attempt++) {
      uint64_t r = next_random(&seed);
      enum dgw_send_class cls = (enum dgw_send_class)(r % 3);
      uint32_t limit = cls == DGW_SEND_COMMAND ? command_limit : budget;
      uint32_t live = count_at(sent, n, now, window);
      int allowed;

      /* next_ms agrees with the reference count before the attempt. */
      uint64_t next = dgw_ratelimit_next_ms(rl, cls, now);
      if (live < limit) {
        assert_int_equal(next, now);
      } else {
        assert_true(next > now);
        assert_true(count_at(sent, n, next - 1, window) >= limit);
        assert_true(count_at(sent, n, next, window) < limit);
      }
      assert_int_equal(dgw_ratelimit_in_window(rl, now), live);

      allowed = dgw_ratelimit_try(rl, cls, now);
      if (allowed != (live < limit))
        fail_msg("case \"%s\", attempt %zu at %llu: try %d with %u live, "
                 "limit %u",
                 random_cases[c].name, attempt, (unsigned long long)now,
                 allowed, live, limit);
      if (allowed) {
        sent[n].t = now;
        sent[n].command = cls == DGW_SEND_COMMAND;
        n++;
      } else {
        refused++;
      }
      if ((next_random(&seed) % 1000) >= random_cases[c].burst_per_mille)
        now += next_random(&seed) % random_cases[c].max_gap_ms;
    }

    /* Every window [t_i, t_i + W) starting at a send: any window holds
     * no more than the one starting at its first send. */
    for (i = 0; i < n; i++) {
      uint32_t count = 0, commands = 0;

      for (j = i; j < n && sent[j].t - sent[i].t < window; j++) {
        count++;
        commands += (uint32_t)sent[j].command;
      }
      if (count > fullest)
        fullest = count;
      if (count > budget || commands > command_limit)
        fail_msg("case \"%s\": window at %llu holds %u sends (%u commands)",
                 random_cases[c].name, (unsigned long long)sent[i].t, count,
                 commands);
    }
    /* The run must actually have pressed against the limit. */
    if (refused == 0 || fullest != budget)
      fail_msg("case \"%s\": %zu refused, fullest window %u: the limit was "
               "never reached",
               random_cases[c].name, refused, fullest);
    free(sent);
    dgw_ratelimit_free(rl);
  }
}

/* A clock that goes backwards never lets more than the budget through. */
static void test_clock_backwards(void **state) {
  struct dgw_ratelimit *rl = new_limiter(3, 1000, 0);

  (void)state;
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 5000), 1);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 100), 1);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 50), 1);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 0), 0);
  assert_int_equal(dgw_ratelimit_next_ms(rl, DGW_SEND_COMMAND, 0), 6000);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 5999), 0);
  assert_int_equal(dgw_ratelimit_try(rl, DGW_SEND_COMMAND, 6000), 1);
  dgw_ratelimit_free(rl);
}

/* ---------------------------------------------------------------- */
/* The send queue                                                    */
/* ---------------------------------------------------------------- */

static struct dgw_sendq *new_queue(size_t capacity) {
  int err = 1;
  struct dgw_sendq *q = dgw_sendq_new(capacity, &err);

  assert_non_null(q);
  assert_int_equal(err, DGW_OK);
  return q;
}

static int push_text(struct dgw_sendq *q, const char *text,
                     dgw_send_done_fn done, void *user_data) {
  return dgw_sendq_push(q, text, strlen(text), done, user_data);
}

static void test_sendq_fifo(void **state) {
  static const char *const texts[] = {
      "{\"op\":3,\"d\":1}", "{\"op\":4,\"d\":2}", "{\"op\":8,\"d\":3}",
      "{\"op\":31,\"d\":4}", "{\"op\":43,\"d\":5}"};
  struct dgw_sendq *q = new_queue(DGW_SENDQ_DEFAULT_CAPACITY);
  struct dgw_sendq_entry e;
  const struct dgw_sendq_entry *head;
  int tags[5];
  size_t i;

  (void)state;
  assert_int_equal(dgw_sendq_capacity(q), DGW_SENDQ_DEFAULT_CAPACITY);
  assert_null(dgw_sendq_peek(q));
  for (i = 0; i < 5; i++) {
    char buf[32];

    /* The queue copies: the caller's buffer may change right after. */
    snprintf(buf, sizeof(buf), "%s", texts[i]);
    assert_int_equal(push_text(q, buf, NULL, &tags[i]), DGW_OK);
    memset(buf, 'x', sizeof(buf) - 1);
  }
  assert_int_equal(dgw_sendq_length(q), 5);
  for (i = 0; i < 5; i++) {
    head = dgw_sendq_peek(q);
    assert_non_null(head);
    assert_string_equal(head->json, texts[i]);
    assert_int_equal(head->len, strlen(texts[i]));
    assert_ptr_equal(head->user_data, &tags[i]);
    if (i % 2 == 0) {
      assert_int_equal(dgw_sendq_pop(q, NULL), DGW_OK);
    } else {
      /* Moved out: the caller owns the text now. */
      assert_int_equal(dgw_sendq_pop(q, &e), DGW_OK);
      assert_string_equal(e.json, texts[i]);
      assert_ptr_equal(e.user_data, &tags[i]);
      free(e.json);
    }
  }
  assert_int_equal(dgw_sendq_length(q), 0);
  assert_null(dgw_sendq_peek(q));
  memset(&e, 0xff, sizeof(e));
  assert_int_equal(dgw_sendq_pop(q, &e), DGW_ERR_AGAIN);
  assert_null(e.json);
  assert_int_equal(dgw_sendq_pop(q, NULL), DGW_ERR_AGAIN);
  dgw_sendq_free(q);
}

static void test_sendq_capacity(void **state) {
  struct dgw_sendq *q = new_queue(3);
  char text[16];
  int i;

  (void)state;
  assert_int_equal(push_text(q, "a", NULL, NULL), DGW_OK);
  assert_int_equal(push_text(q, "b", NULL, NULL), DGW_OK);
  assert_int_equal(push_text(q, "c", NULL, NULL), DGW_OK);
  assert_int_equal(push_text(q, "d", NULL, NULL), DGW_SENDQ_ERR_FULL);
  assert_int_equal(dgw_sendq_length(q), 3);
  /* Wrap around the ring many times; order holds throughout. */
  for (i = 0; i < 20; i++) {
    assert_int_equal(dgw_sendq_pop(q, NULL), DGW_OK);
    snprintf(text, sizeof(text), "n%d", i);
    assert_int_equal(push_text(q, text, NULL, NULL), DGW_OK);
    assert_int_equal(push_text(q, "x", NULL, NULL), DGW_SENDQ_ERR_FULL);
  }
  assert_string_equal(dgw_sendq_peek(q)->json, "n17");
  assert_int_equal(dgw_sendq_pop(q, NULL), DGW_OK);
  assert_string_equal(dgw_sendq_peek(q)->json, "n18");
  dgw_sendq_free(q); /* frees what is left, no leak under valgrind */
}

/* The ring grows while wrapped (head in the middle), keeps FIFO order
 * through every doubling up to the full capacity, and after a drained
 * burst starts small again, still in order. */
static void test_sendq_grows_in_order(void **state) {
  struct dgw_sendq *q = new_queue(300);
  char text[16];
  int next_in = 0, next_out = 0;

  (void)state;
  assert_int_equal(dgw_sendq_slots(q), 0); /* nothing until a command waits */
  for (int round = 0; round < 2; round++) {
    size_t last_slots;

    /* Wrap the first slots: push 5, pop 3, then fill to capacity. */
    for (int i = 0; i < 5; i++, next_in++) {
      snprintf(text, sizeof(text), "c%d", next_in);
      assert_int_equal(push_text(q, text, NULL, NULL), DGW_OK);
    }
    for (int i = 0; i < 3; i++, next_out++) {
      snprintf(text, sizeof(text), "c%d", next_out);
      assert_string_equal(dgw_sendq_peek(q)->json, text);
      assert_int_equal(dgw_sendq_pop(q, NULL), DGW_OK);
    }
    assert_int_equal(dgw_sendq_slots(q), 8);
    last_slots = 8;
    while (dgw_sendq_length(q) < 300) {
      snprintf(text, sizeof(text), "c%d", next_in++);
      assert_int_equal(push_text(q, text, NULL, NULL), DGW_OK);
      /* Doubling, never past the capacity, and only when full. */
      if (dgw_sendq_slots(q) != last_slots) {
        assert_true(dgw_sendq_slots(q) == 300 ||
                    dgw_sendq_slots(q) == 2 * last_slots);
        assert_int_equal(dgw_sendq_length(q), last_slots + 1);
        last_slots = dgw_sendq_slots(q);
      }
    }
    assert_int_equal(dgw_sendq_slots(q), 300);
    assert_int_equal(push_text(q, "over", NULL, NULL), DGW_SENDQ_ERR_FULL);
    while (dgw_sendq_length(q) > 0) {
      snprintf(text, sizeof(text), "c%d", next_out++);
      assert_string_equal(dgw_sendq_peek(q)->json, text);
      assert_int_equal(dgw_sendq_pop(q, NULL), DGW_OK);
    }
    assert_null(dgw_sendq_peek(q));
    assert_int_equal(dgw_sendq_slots(q), 0); /* the burst's ring is gone */
  }
  assert_int_equal(next_in, next_out);
  dgw_sendq_free(q);
}

static const struct {
  const char *name;
  size_t capacity;
} bad_capacities[] = {
    {"capacity 0", 0},
    {"capacity over the max", DGW_SENDQ_MAX_CAPACITY + 1},
};

static void test_sendq_bad_arguments(void **state) {
  struct dgw_sendq *q = new_queue(2);
  size_t i;

  (void)state;
  for (i = 0; i < sizeof(bad_capacities) / sizeof(bad_capacities[0]); i++) {
    int err = 0;

    if (dgw_sendq_new(bad_capacities[i].capacity, &err) != NULL ||
        err != DGW_ERR_INVALID_ARGUMENT)
      fail_msg("case \"%s\": accepted", bad_capacities[i].name);
  }
  assert_int_equal(dgw_sendq_push(NULL, "x", 1, NULL, NULL),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_sendq_push(q, NULL, 1, NULL, NULL),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_sendq_push(q, "x", 0, NULL, NULL),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_sendq_length(q), 0);
  /* Bytes are copied as given, a NUL added after them. */
  assert_int_equal(dgw_sendq_push(q, "abcdef", 3, NULL, NULL), DGW_OK);
  assert_string_equal(dgw_sendq_peek(q)->json, "abc");
  dgw_sendq_free(q);
  dgw_sendq_free(NULL);
  dgw_sendq_clear(NULL, DGW_ERR_CLOSED);
}

/* What the completion callbacks saw. */
struct completions {
  struct dgw_sendq *q;
  int calls[8];
  int results[8];
  int order[8];
  int n;
  int push_from_callback; /* index whose callback pushes a new command */
};

struct done_arg {
  struct completions *log;
  int index;
};

static void record_done(int result, void *user_data) {
  struct done_arg *arg = user_data;
  struct completions *log = arg->log;

  log->calls[arg->index]++;
  log->results[arg->index] = result;
  log->order[log->n++] = arg->index;
  if (arg->index == log->push_from_callback)
    assert_int_equal(push_text(log->q, "late", NULL, NULL), DGW_OK);
}

static void test_sendq_clear_calls_each_once(void **state) {
  struct completions log;
  struct done_arg args[5];
  struct dgw_sendq *q = new_queue(8);
  int i;

  (void)state;
  memset(&log, 0, sizeof(log));
  log.q = q;
  log.push_from_callback = 2;
  for (i = 0; i < 5; i++) {
    args[i].log = &log;
    args[i].index = i;
    /* Entry 3 has no callback: it is freed silently. */
    assert_int_equal(
        push_text(q, "{\"op\":3}", i == 3 ? NULL : record_done, &args[i]),
        DGW_OK);
  }
  /* The first one was sent already: the gateway pops it and reports. */
  assert_int_equal(dgw_sendq_pop(q, NULL), DGW_OK);
  record_done(DGW_OK, &args[0]);

  dgw_sendq_clear(q, DGW_ERR_CONNECTION_LOST);
  assert_int_equal(log.n, 4);
  assert_int_equal(log.calls[0], 1);
  assert_int_equal(log.results[0], DGW_OK);
  for (i = 1; i < 5; i++) {
    assert_int_equal(log.calls[i], i == 3 ? 0 : 1);
    if (i != 3)
      assert_int_equal(log.results[i], DGW_ERR_CONNECTION_LOST);
  }
  /* Oldest first. */
  assert_int_equal(log.order[1], 1);
  assert_int_equal(log.order[2], 2);
  assert_int_equal(log.order[3], 4);
  /* The command pushed from a callback stays queued, not failed. */
  assert_int_equal(dgw_sendq_length(q), 1);
  assert_string_equal(dgw_sendq_peek(q)->json, "late");
  /* A second clear finds nothing of the first batch. */
  log.push_from_callback = -1;
  dgw_sendq_clear(q, DGW_ERR_CLOSED);
  assert_int_equal(log.n, 4);
  assert_int_equal(dgw_sendq_length(q), 0);
  dgw_sendq_free(q);
}

/* Freeing never calls callbacks (clear first to fail them back). */
static void test_sendq_free_is_silent(void **state) {
  struct completions log;
  struct done_arg arg;
  struct dgw_sendq *q = new_queue(4);

  (void)state;
  memset(&log, 0, sizeof(log));
  log.push_from_callback = -1;
  arg.log = &log;
  arg.index = 0;
  assert_int_equal(push_text(q, "{}", record_done, &arg), DGW_OK);
  dgw_sendq_free(q);
  assert_int_equal(log.n, 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_new_refuses_bad_config),
      cmocka_unit_test(test_budget_boundary),
      cmocka_unit_test(test_reserved_slots),
      cmocka_unit_test(test_control_class),
      cmocka_unit_test(test_next_ms),
      cmocka_unit_test(test_reset),
      cmocka_unit_test(test_randomized_windows),
      cmocka_unit_test(test_clock_backwards),
      cmocka_unit_test(test_sendq_fifo),
      cmocka_unit_test(test_sendq_capacity),
      cmocka_unit_test(test_sendq_grows_in_order),
      cmocka_unit_test(test_sendq_bad_arguments),
      cmocka_unit_test(test_sendq_clear_calls_each_once),
      cmocka_unit_test(test_sendq_free_is_silent),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
