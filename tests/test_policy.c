/* Unit tests: the close-code policy table and the reconnect backoff
 * (lib/policy.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dgw/dgw.h>

#include "policy.h"

struct close_case {
  int code;
  enum dgw_close_action action;
  const char *name;
};

/* The whole gateway table of gateway-protocol.md section 4.1, plus the
 * historical 4006 and a few standard codes. */
static const struct close_case cases[] = {
    {4000, DGW_CLOSE_RESUME, "Unknown error"},
    {4001, DGW_CLOSE_RESUME, "Unknown opcode"},
    {4002, DGW_CLOSE_RESUME, "Decode error"},
    /* Issue 15: a payload before IDENTIFY leaves the session alive; input
     * 4003, resume (was a new session, which spent an IDENTIFY). */
    {4003, DGW_CLOSE_RESUME, "Not authenticated"},
    {4004, DGW_CLOSE_FATAL, "Authentication failed"},
    {4005, DGW_CLOSE_RESUME, "Already authenticated"},
    {4006, DGW_CLOSE_NEW_SESSION, "Session no longer valid"},
    {4007, DGW_CLOSE_NEW_SESSION, "Invalid seq"},
    {4008, DGW_CLOSE_RESUME, "Rate limited"},
    {4009, DGW_CLOSE_NEW_SESSION, "Session timed out"},
    {4010, DGW_CLOSE_FATAL, "Invalid shard"},
    {4011, DGW_CLOSE_FATAL, "Sharding required"},
    {4012, DGW_CLOSE_FATAL, "Invalid API version"},
    {4013, DGW_CLOSE_FATAL, "Invalid intent(s)"},
    {4014, DGW_CLOSE_FATAL, "Disallowed intent(s)"},
    {1000, DGW_CLOSE_RESUME, "Normal closure"},
    {1001, DGW_CLOSE_RESUME, "Going away"},
    {1011, DGW_CLOSE_RESUME, "Internal server error"},
};

static void test_close_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    if (dgw_close_code_action(cases[i].code) != cases[i].action)
      fail_msg("code %d: wrong action", cases[i].code);
    assert_string_equal(dgw_close_code_name(cases[i].code), cases[i].name);
  }
}

/* Codes nobody documents, and no code at all, resume. */
static void test_unknown_codes_resume(void **state) {
  static const int unknown[] = {0, 1, 999, 3000, 4015, 4999, 65535, -1};

  (void)state;
  for (size_t i = 0; i < sizeof(unknown) / sizeof(unknown[0]); i++)
    assert_int_equal(dgw_close_code_action(unknown[i]), DGW_CLOSE_RESUME);
  assert_string_equal(dgw_close_code_name(0), "no close code");
  assert_string_equal(dgw_close_code_name(4999), "unknown close code");
}

/* The step doubles per attempt up to the cap; with equal jitter each
 * delay lies in [step/2, step]. */
static void test_backoff_growth_and_bounds(void **state) {
  (void)state;
  assert_int_equal(dgw_backoff_ms(0, 1000, 60000, 0.0), 500);
  assert_int_equal(dgw_backoff_ms(0, 1000, 60000, 0.999999), 999);
  assert_int_equal(dgw_backoff_ms(1, 1000, 60000, 0.0), 1000);
  assert_int_equal(dgw_backoff_ms(2, 1000, 60000, 0.0), 2000);
  assert_int_equal(dgw_backoff_ms(5, 1000, 60000, 0.0), 16000);
  /* Capped: 2^6 s = 64 s > 60 s. */
  assert_int_equal(dgw_backoff_ms(6, 1000, 60000, 0.0), 30000);
  assert_true(dgw_backoff_ms(6, 1000, 60000, 0.999) <= 60000);
  /* Huge attempt counts neither overflow nor pass the cap. */
  assert_int_equal(dgw_backoff_ms(1000000, 1000, 60000, 0.0), 30000);
  assert_true(dgw_backoff_ms(UINT32_MAX, 1000, UINT32_MAX, 0.5) <= UINT32_MAX);
  for (uint32_t a = 0; a < 20; a++)
    for (int r = 0; r < 10; r++) {
      uint32_t d = dgw_backoff_ms(a, 250, 8000, r / 10.0);
      uint64_t step = 250ull << (a < 10 ? a : 10);

      if (step > 8000)
        step = 8000;
      assert_true(d >= step / 2 && d <= step);
    }
}

/* Out-of-range randomness is clamped rather than trusted. */
static void test_backoff_bad_random(void **state) {
  (void)state;
  assert_int_equal(dgw_backoff_ms(0, 1000, 60000, -3.0), 750);
  assert_int_equal(dgw_backoff_ms(0, 1000, 60000, 1.0), 750);
  assert_int_equal(dgw_backoff_ms(0, 1000, 60000, __builtin_nan("")), 750);
}

/* The op 9 wait: within [min, max] inclusive, both ends reachable. */
static void test_uniform_wait(void **state) {
  (void)state;
  assert_int_equal(dgw_uniform_ms(1000, 5000, 0.0), 1000);
  assert_int_equal(dgw_uniform_ms(1000, 5000, 0.99999999), 5000);
  assert_int_equal(dgw_uniform_ms(1000, 5000, 0.5), 3000);
  assert_int_equal(dgw_uniform_ms(7, 7, 0.3), 7);
  assert_int_equal(dgw_uniform_ms(9, 3, 0.3), 9);
  assert_int_equal(dgw_uniform_ms(0, 100, 2.0), 50);
  /* The widest range does not wrap around. */
  assert_true(dgw_uniform_ms(0, UINT32_MAX, 0.5) > 2000000000u);
  for (int i = 0; i < 1000; i++) {
    uint32_t w = dgw_uniform_ms(1000, 5000, dgw_random01());
    assert_true(w >= 1000 && w <= 5000);
  }
}

/* The CSPRNG gives values in [0,1) that are not all the same. */
static void test_random01(void **state) {
  double min = 1.0, max = 0.0;

  (void)state;
  for (int i = 0; i < 1000; i++) {
    double r = dgw_random01();

    assert_true(r >= 0.0 && r < 1.0);
    if (r < min)
      min = r;
    if (r > max)
      max = r;
  }
  assert_true(min < 0.1 && max > 0.9);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_close_table),
      cmocka_unit_test(test_unknown_codes_resume),
      cmocka_unit_test(test_backoff_growth_and_bounds),
      cmocka_unit_test(test_backoff_bad_random),
      cmocka_unit_test(test_uniform_wait),
      cmocka_unit_test(test_random01),
  };
  return cmocka_run_group_tests_name("policy", tests, NULL, NULL);
}
