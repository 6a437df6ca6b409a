/*
 * Integration test: a plugin reads fields of an event's d through the
 * host table's field getters (include/dgw/plugin.h, field_*), filled by
 * lib/plugin.c with the dgw_field_* functions of <dgw/field.h>.  The
 * recorder plugin (tests/plugins/recorder.c, config "field") reads one
 * JSON Pointer of each d with host->field_string and logs what it got;
 * events come from the mock gateway over loopback.
 */
#include "config.h"

#include "fixture.h"

#include <dgw/plugin.h>

#define REC_SUB TEST_PLUGIN_DIR "/rec_sub.so"

static int two_taken(struct fx *f) {
  return f->client != NULL && fx_stats(f).dispatches >= 3; /* READY + 2 */
}

/* Input: MESSAGE_CREATE with d {"id":"42","content":"hi \"you\" \u00e9"},
 * then one with no content.  The plugin must log the decoded string with
 * DGW_OK for the first and DGW_ERR_NOT_FOUND for the second; without the
 * host members (or with them NULL) it logs nothing or crashes.  No DOM is
 * built for either: the client's parse counter stays 0. */
static void test_plugin_reads_field_through_host(void **state) {
  struct fx *f = fx_new(NULL);
  char why[256];
  char want[128];

  (void)state;
  assert_int_equal(
      dgw_mock_add_dispatch(
          f->mock, "MESSAGE_CREATE",
          "{\"id\":\"42\",\"content\":\"hi \\\"you\\\" \\u00e9\"}"),
      DGW_OK);
  assert_int_equal(
      dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"id\":\"43\"}"),
      DGW_OK);
  dgw_callbacks_set_on_dispatch(f->cb, NULL);
  fx_client_new(f);
  assert_int_equal(
      dgw_client_load_plugin(f->client, REC_SUB,
                             "{\"id\":\"F\",\"subscribe\":[\"MESSAGE_CREATE\"],"
                             "\"field\":\"/content\"}",
                             why, sizeof(why)),
      DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, two_taken, 5));
  run_for(f->base, 30);

  assert_true(
      fx_find_line(f, 0, "rec F field /content 0 hi \"you\" \xc3\xa9") >= 0);
  snprintf(want, sizeof(want), "rec F field /content %d ", DGW_ERR_NOT_FOUND);
  assert_true(fx_find_line(f, 0, want) >= 0);
  assert_int_equal(fx_stats(f).parsed, 0);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plugin_reads_field_through_host),
  };
  return cmocka_run_group_tests_name("plugin_fields", tests, NULL, NULL);
}
