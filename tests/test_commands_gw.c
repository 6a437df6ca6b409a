/*
 * Integration tests: gateway commands and the send rate limit against the
 * mock gateway over loopback (lib/command_api.c, lib/sender.c,
 * lib/requests.c).  The mock answers op 4, 8, 31 and 43 with their
 * dispatches and closes with 4008 when a connection goes over its budget.
 */
#include "config.h"

#include "fixture.h"

#include <time.h>

#include <json-c/json.h>

#include "payload.h"

/* ------------------------------------------- on top of the fixture */

/* The fixture with the GUILD_MEMBERS intent (members requests), the
 * GUILD_VOICE_STATES one (the mock, as Discord, sends VOICE_STATE_UPDATE
 * only with it) and `shards` shards. */
static struct fx *new_fixture(struct dgw_mock_config *mc, uint32_t shards) {
  struct fx *f = fx_new(mc);

  assert_int_equal(dgw_options_set_intents(f->opt, 513 | (1 << 1) | (1 << 7)),
                   DGW_OK);
  assert_int_equal(dgw_options_set_shards(f->opt, 0, shards, shards), DGW_OK);
  return f;
}

static int setup_one_shard(void **state) {
  *state = new_fixture(NULL, 1);
  return 0;
}

static int members_done(struct fx *f) {
  return f->members_done >= 1;
}
static int voice_done(struct fx *f) {
  return f->voice_done >= 1;
}

static struct json_object *last_d(struct fx *f, int op) {
  struct json_object *root = json_tokener_parse(f->last[op]);
  struct json_object *d = NULL;

  assert_non_null(root);
  assert_true(json_object_object_get_ex(root, "d", &d));
  json_object_get(d);
  json_object_put(root);
  return d;
}

static const char *str(struct json_object *o, const char *key) {
  struct json_object *v;

  assert_true(json_object_object_get_ex(o, key, &v));
  return json_object_get_string(v);
}

/* Sends `n` presence updates (op 3) through dgw_gateway_send_json(),
 * the first activity of each named by its number, 0 to n - 1. */
static void send_presences(struct dgw_gateway *gw, int n) {
  for (int i = 0; i < n; i++) {
    char json[160];

    snprintf(json, sizeof(json),
             "{\"op\":3,\"d\":{\"since\":null,\"activities\":[{\"name\":"
             "\"%d\",\"type\":0}],\"status\":\"online\",\"afk\":false}}",
             i);
    assert_int_equal(dgw_gateway_send_json(gw, json, strlen(json)), DGW_OK);
  }
}

/* The mock got exactly those names first, in order. */
static void expect_activities(struct fx *f, int n) {
  for (int i = 0; i < n; i++) {
    char want[16];

    snprintf(want, sizeof(want), "%d", i);
    assert_string_equal(f->activity[i], want);
  }
}

/* ------------------------------------------------------------ cases */

static int got_ops(struct fx *f) {
  return f->count[3] && f->count[4] && f->count[31] && f->count[43];
}

/* Each command's payload as the mock received it. */
static void test_command_payloads(void **state) {
  struct fx *f = *state;
  struct dgw_gateway *gw = fx_start(f);
  struct dgw_activity act = {"dgw tests", DGW_ACTIVITY_WATCHING, NULL, NULL};
  struct dgw_presence pres = {"dnd", 0, 0, &act, 1};
  const char *guilds[] = {"81384788765712384", "613425648685547541"};
  struct json_object *d, *v;
  char why[160];

  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(dgw_gateway_update_presence(gw, &pres, why, sizeof(why)),
                   DGW_OK);
  assert_int_equal(dgw_gateway_update_voice_state(gw, "81384788765712384", NULL,
                                                  1, 0, NULL, NULL, why,
                                                  sizeof(why)),
                   DGW_OK);
  assert_int_equal(
      dgw_gateway_request_soundboard_sounds(gw, guilds, 2, why, sizeof(why)),
      DGW_OK);
  assert_int_equal(dgw_gateway_request_channel_info(gw, "81384788765712384",
                                                    DGW_CHANNEL_INFO_ALL, why,
                                                    sizeof(why)),
                   DGW_OK);
  assert_true(fx_wait_for(f, got_ops, 5));

  d = last_d(f, 3);
  assert_string_equal(str(d, "status"), "dnd");
  assert_true(json_object_object_get_ex(d, "activities", &v));
  assert_string_equal(str(json_object_array_get_idx(v, 0), "name"),
                      "dgw tests");
  json_object_put(d);
  d = last_d(f, 4);
  assert_string_equal(str(d, "guild_id"), "81384788765712384");
  assert_true(json_object_object_get_ex(d, "channel_id", &v) && v == NULL);
  assert_true(json_object_object_get_ex(d, "self_mute", &v) &&
              json_object_get_boolean(v));
  json_object_put(d);
  d = last_d(f, 31);
  assert_true(json_object_object_get_ex(d, "guild_ids", &v));
  assert_int_equal(json_object_array_length(v), 2);
  json_object_put(d);
  d = last_d(f, 43);
  assert_string_equal(str(d, "guild_id"), "81384788765712384");
  assert_true(json_object_object_get_ex(d, "fields", &v));
  assert_int_equal(json_object_array_length(v), 2);
  json_object_put(d);

  /* Bad arguments are refused locally, with a reason, and sent nowhere. */
  assert_int_equal(dgw_gateway_update_voice_state(gw, "12ab", NULL, 0, 0, NULL,
                                                  NULL, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "snowflake"));
  assert_int_equal(
      dgw_gateway_request_channel_info(gw, "1", 0, why, sizeof(why)),
      DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(f->count[4], 1);
  assert_int_equal(f->count[43], 1);
}

/* All-members request: three chunks of at most 1000 gathered into one
 * result; a second one within 30 s is RATE_LIMITED and reported so. */
static void test_members_gathered_then_rate_limited(void **state) {
  struct fx *f = *state;
  struct dgw_gateway *gw = fx_start(f);
  struct dgw_member_request req = {
      "81384788765712384", "", 0, NULL, 0, 0, NULL};
  char nonce[33];
  struct json_object *v;

  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(
      dgw_gateway_request_members(gw, &req, fx_on_members, f, nonce, NULL, 0),
      DGW_OK);
  assert_int_equal(strlen(nonce), 16);
  assert_true(fx_wait_for(f, members_done, 5));
  assert_int_equal(f->members_err, DGW_OK);
  assert_string_equal(str(f->members_result, "nonce"), nonce);
  assert_true(json_object_object_get_ex(f->members_result, "chunk_count", &v));
  assert_int_equal(json_object_get_int(v), 3);
  assert_true(json_object_object_get_ex(f->members_result, "members", &v));
  assert_int_equal(json_object_array_length(v), 2500);

  f->members_done = 0;
  assert_int_equal(
      dgw_gateway_request_members(gw, &req, fx_on_members, f, NULL, NULL, 0),
      DGW_OK);
  assert_true(fx_wait_for(f, members_done, 5));
  assert_int_equal(f->members_err, DGW_ERR_RATE_LIMITED);
  assert_true(json_object_object_get_ex(f->members_result, "retry_after", &v));
  assert_true(json_object_get_double(v) > 0);
}

/* By user ids, with a given nonce: the ids that are not members come back
 * in not_found. */
static void test_members_by_ids(void **state) {
  struct fx *f = *state;
  struct dgw_gateway *gw = fx_start(f);
  const char *ids[] = {"2000000000000000001", "2000000000000000002",
                       "2999999999999999999"};
  struct dgw_member_request req = {"81384788765712384", NULL, 0, ids, 3, 1,
                                   "my-nonce"};
  struct json_object *v;

  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(
      dgw_gateway_request_members(gw, &req, fx_on_members, f, NULL, NULL, 0),
      DGW_OK);
  assert_true(fx_wait_for(f, members_done, 5));
  assert_int_equal(f->members_err, DGW_OK);
  assert_string_equal(str(f->members_result, "nonce"), "my-nonce");
  assert_true(json_object_object_get_ex(f->members_result, "members", &v));
  assert_int_equal(json_object_array_length(v), 2);
  assert_true(json_object_object_get_ex(f->members_result, "not_found", &v));
  assert_int_equal(json_object_array_length(v), 1);
}

/* The session is lost for good (fatal 4004) before the chunks come: the
 * requester hears DGW_ERR_SESSION_LOST. */
static void test_members_session_lost(void **state) {
  struct fx *f = *state;
  struct dgw_gateway *gw = fx_start(f);
  struct dgw_member_request req = {
      "81384788765712384", "", 0, NULL, 0, 0, NULL};

  assert_true(fx_wait_for(f, fx_is_ready, 5));
  f->fatal_on_op = DGW_OP_REQUEST_GUILD_MEMBERS;
  assert_int_equal(
      dgw_gateway_request_members(gw, &req, fx_on_members, f, NULL, NULL, 0),
      DGW_OK);
  assert_true(fx_wait_for(f, members_done, 5));
  assert_int_equal(f->members_err, DGW_ERR_SESSION_LOST);
  assert_null(f->members_result);
  assert_int_equal(dgw_gateway_state(gw), DGW_STATE_FATAL);
}

/* Joining voice: the state and server events are handed over together,
 * whichever comes first. */
static void test_voice_pair(void **state) {
  for (int order = 0; order < 2; order++) {
    struct dgw_mock_config mc = {0};
    struct fx *f;
    struct dgw_gateway *gw;

    (void)state;
    mc.voice_server_first = order;
    f = new_fixture(&mc, 1);
    gw = fx_start(f);
    assert_true(fx_wait_for(f, fx_is_ready, 5));
    assert_int_equal(dgw_gateway_update_voice_state(gw, "81384788765712384",
                                                    "81384788765712390", 0, 1,
                                                    fx_on_voice, f, NULL, 0),
                     DGW_OK);
    assert_true(fx_wait_for(f, voice_done, 5));
    assert_int_equal(f->voice_err, DGW_OK);
    assert_string_equal(str(f->voice_state, "channel_id"), "81384788765712390");
    assert_non_null(str(f->voice_state, "session_id"));
    assert_non_null(str(f->voice_server, "token"));
    assert_non_null(str(f->voice_server, "endpoint"));
    fx_free(f);
  }
}

/* 300 commands in a burst against a mock that closes with 4008 over its
 * budget (60 per 500 ms here, the same for the client): none is lost, all
 * arrive in order, no window ever holds more than the budget, and the
 * heartbeat keeps beating (a starved one would be a zombie disconnect). */
static int all_300(struct fx *f) {
  return f->nactivity >= 300;
}

static void test_burst_respects_limit(void **state) {
  struct dgw_mock_config mc = {0};
  struct dgw_mock_stats st;
  struct fx *f;
  struct dgw_gateway *gw;
  int beats_before;

  (void)state;
  mc.rate_budget = 60;
  /* The in-process mock stamps payloads when it gets round to reading
   * them, on the loop the client shares, so a batch read late looks
   * bunched: its window is a little shorter than the client's 500 ms. */
  mc.rate_window_ms = 450;
  mc.heartbeat_interval_ms = 100;
  f = new_fixture(&mc, 1);
  assert_int_equal(dgw_options_set_send_limit(f->opt, 60, 500, 512), DGW_OK);
  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  beats_before = f->count[DGW_OP_HEARTBEAT];
  send_presences(gw, 300);
  assert_true(dgw_gateway_queued(gw) > 0); /* the window held some back */
  assert_true(fx_wait_for(f, all_300, 20));
  expect_activities(f, 300);
  if (f->disconnects != 0)
    fail_msg("disconnected: error %d, close code %u", f->last_dc.error,
             (unsigned)f->last_dc.close_code);
  dgw_mock_get_stats(f->mock, &st);
  assert_true(st.max_in_window <= 60);
  assert_true(f->count[DGW_OP_HEARTBEAT] - beats_before >= 5);
  fx_free(f);
}

/* Commands queued behind the window when the connection drops are sent
 * once on the resumed connection. */
static int all_24(struct fx *f) {
  return f->nactivity >= 24;
}

static void test_queued_across_resume(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;
  struct dgw_gateway *gw;

  (void)state;
  mc.rate_budget = 20;
  mc.rate_window_ms = 60000;
  f = new_fixture(&mc, 1);
  assert_int_equal(dgw_options_set_send_limit(f->opt, 20, 60000, 64), DGW_OK);
  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  send_presences(gw, 24);
  run_for(f->base, 100);
  assert_true(f->nactivity < 24); /* 14 fit: 20 - 5 kept - IDENTIFY */
  assert_true(dgw_gateway_queued(gw) > 0);
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_true(fx_wait_for(f, all_24, 5));
  run_for(f->base, 100);
  assert_int_equal(f->nactivity, 24); /* each exactly once */
  expect_activities(f, 24);
  assert_int_equal(dgw_gateway_queued(gw), 0);
  fx_free(f);
}

/* close() fails queued commands back; a full queue refuses new ones. */
static int done_count;
static int done_err;

static void count_done(int result, void *ud) {
  (void)ud;
  done_count++;
  done_err = result;
}

static void test_queue_full_and_failed_back(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;
  struct dgw_gateway *gw;
  const char *json = "{\"op\":3,\"d\":{\"since\":null,\"activities\":[],"
                     "\"status\":\"online\",\"afk\":false}}";
  int rv = DGW_OK;
  int sent = 0;

  (void)state;
  mc.no_rate_limit = 1;
  f = new_fixture(&mc, 1);
  assert_int_equal(dgw_options_set_send_limit(f->opt, 10, 60000, 8), DGW_OK);
  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  while (rv == DGW_OK && sent < 100) {
    rv = dgw_gateway_send_json(gw, json, strlen(json));
    sent++;
  }
  assert_int_equal(rv, DGW_ERR_QUEUE_FULL);
  assert_int_equal(dgw_gateway_queued(gw), 8);
  (void)count_done;
  assert_int_equal(dgw_gateway_close(gw), DGW_OK);
  assert_int_equal(dgw_gateway_queued(gw), 0);
  assert_int_equal(dgw_gateway_send_json(gw, json, strlen(json)),
                   DGW_ERR_STATE);
  fx_free(f);
}

/* With two shards, a guild's commands go to (id >> 22) % 2. */
static void test_guild_routing(void **state) {
  struct fx *f = new_fixture(NULL, 2);

  (void)state;
  fx_start(f);
  /* 81384788765712384 >> 22 = 19403860698, even: shard 0. */
  assert_true(dgw_client_gateway_for_guild(f->client, "81384788765712384") ==
              dgw_client_gateway(f->client, 0));
  /* 613425648685547541 >> 22 = 146251520, even too; +2^22 flips it. */
  assert_true(dgw_client_gateway_for_guild(f->client, "613425648689741845") ==
              dgw_client_gateway(f->client, 1));
  assert_null(dgw_client_gateway_for_guild(f->client, "not-a-snowflake"));
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_command_payloads, setup_one_shard,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_members_gathered_then_rate_limited,
                                      setup_one_shard, fx_teardown),
      cmocka_unit_test_setup_teardown(test_members_by_ids, setup_one_shard,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_members_session_lost,
                                      setup_one_shard, fx_teardown),
      cmocka_unit_test(test_voice_pair),
      cmocka_unit_test(test_burst_respects_limit),
      cmocka_unit_test(test_queued_across_resume),
      cmocka_unit_test(test_queue_full_and_failed_back),
      cmocka_unit_test(test_guild_routing),
  };
  ignore_sigpipe();
  return cmocka_run_group_tests_name("commands_gw", tests, NULL, NULL);
}
