/*
 * Integration tests: gateway commands and the send rate limit against the
 * mock gateway over loopback (lib/command_api.c, lib/sender.c,
 * lib/requests.c).  The mock answers op 4, 8, 31 and 43 with their
 * dispatches and closes with 4008 when a connection goes over its budget.
 */
#include "config.h"

#include "harness.h"

#include <time.h>

#include <json-c/json.h>

#include "client.h"
#include "mock.h"
#include "payload.h"

#define MAX_SEEN 1024

struct fx {
  struct event_base *base;
  struct dgw_mock *mock;
  struct dgw_client *client;
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  int ready, resumed, disconnects;
  struct dgw_disconnect last_dc;
  /* the mock's view: the last payload of each op, op 3 activity names */
  char last[64][4200];
  int count[64];
  char names[MAX_SEEN][16];
  int nnames;
  int beats;
  /* answers */
  int members_done, members_err;
  struct json_object *members_result;
  int voice_done, voice_err;
  struct json_object *voice_state, *voice_server;
  int close_on_op8; /* the mock closes 4004 when op 8 arrives */
};

static int wait_for(struct fx *f, int (*pred)(struct fx *), double seconds) {
  double end = deadline_ms(seconds);

  while (!pred(f) && now_ms() < end)
    loop_once(f->base);
  return pred(f);
}

static void cb_ready(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->ready++;
}

static void cb_resumed(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->resumed++;
}

static void cb_disconnect(struct dgw_gateway *gw,
                          const struct dgw_disconnect *info, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->disconnects++;
  f->last_dc = *info;
  f->last_dc.reason = NULL;
}

static void mk_payload(struct dgw_mock *m, struct dgw_mock_conn *conn, int op,
                       const char *json, size_t len, void *ud) {
  struct fx *f = ud;

  (void)m;
  if (op < 0 || op >= 64)
    return;
  f->count[op]++;
  snprintf(f->last[op], sizeof(f->last[0]), "%.*s", (int)len, json);
  if (op == DGW_OP_HEARTBEAT)
    f->beats++;
  if (op == DGW_OP_PRESENCE_UPDATE && f->nnames < MAX_SEEN) {
    struct json_object *root = json_tokener_parse(f->last[op]);
    struct json_object *d, *acts, *name;

    if (root != NULL && json_object_object_get_ex(root, "d", &d) &&
        json_object_object_get_ex(d, "activities", &acts) &&
        json_object_array_length(acts) > 0 &&
        json_object_object_get_ex(json_object_array_get_idx(acts, 0), "name",
                                  &name))
      snprintf(f->names[f->nnames++], sizeof(f->names[0]), "%s",
               json_object_get_string(name));
    json_object_put(root);
  }
  if (op == DGW_OP_REQUEST_GUILD_MEMBERS && f->close_on_op8)
    dgw_mock_conn_close(conn, 4004, "Authentication failed");
}

static struct fx *fx_new(struct dgw_mock_config *mc, uint32_t shards) {
  struct fx *f = calloc(1, sizeof(*f));
  struct dgw_mock_config def = {0};
  char url[128];
  int err = 0;

  f->base = event_base_new();
  if (mc == NULL)
    mc = &def;
  if (mc->heartbeat_interval_ms == 0)
    mc->heartbeat_interval_ms = 30000;
  mc->log = test_log;
  mc->hooks.on_payload = mk_payload;
  mc->user_data = f;
  f->mock = dgw_mock_new(f->base, mc, &err);
  if (f->mock == NULL)
    fail_msg("mock: %s", dgw_strerror(err));
  f->opt = dgw_options_new();
  dgw_options_set_token(f->opt, "t0ken");
  dgw_options_set_intents(f->opt, 513 | (1 << 1));
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u",
           (unsigned)dgw_mock_port(f->mock));
  dgw_options_set_gateway_url(f->opt, url);
  dgw_options_set_log(f->opt, test_log, NULL, DGW_LOG_DEBUG);
  /* Re-IDENTIFY quickly: the 5 s identify window is tested on its own. */
  dgw_options_set_identify_limits(f->opt, 1, 10);
  dgw_options_set_reconnect(f->opt, 20, 200, 60000);
  dgw_options_set_shards(f->opt, 0, shards, shards);
  f->cb = dgw_callbacks_new();
  dgw_callbacks_set_on_ready(f->cb, cb_ready);
  dgw_callbacks_set_on_resumed(f->cb, cb_resumed);
  dgw_callbacks_set_on_disconnect(f->cb, cb_disconnect);
  return f;
}

static struct dgw_gateway *fx_start(struct fx *f) {
  int err = 0;

  f->client = dgw_client_new(f->base, f->opt, f->cb, f, &err);
  if (f->client == NULL)
    fail_msg("client: %s", dgw_strerror(err));
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  return dgw_client_gateway(f->client, 0);
}

static void fx_free(struct fx *f) {
  dgw_client_free(f->client);
  dgw_mock_free(f->mock);
  dgw_options_free(f->opt);
  dgw_callbacks_free(f->cb);
  json_object_put(f->members_result);
  json_object_put(f->voice_state);
  json_object_put(f->voice_server);
  event_base_free(f->base);
  free(f);
}

static int is_ready(struct fx *f) {
  return f->ready >= 1;
}
static int is_resumed(struct fx *f) {
  return f->resumed >= 1;
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

/* ------------------------------------------------------------ cases */

static int got_ops(struct fx *f) {
  return f->count[3] && f->count[4] && f->count[31] && f->count[43];
}

/* Each command's payload as the mock received it. */
static void test_command_payloads(void **state) {
  struct fx *f = fx_new(NULL, 1);
  struct dgw_gateway *gw = fx_start(f);
  struct dgw_activity act = {"dgw tests", DGW_ACTIVITY_WATCHING, NULL, NULL};
  struct dgw_presence pres = {"dnd", 0, 0, &act, 1};
  const char *guilds[] = {"81384788765712384", "613425648685547541"};
  struct json_object *d, *v;
  char why[160];

  (void)state;
  assert_true(wait_for(f, is_ready, 5));
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
  assert_true(wait_for(f, got_ops, 5));

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
  fx_free(f);
}

static void on_members(struct dgw_gateway *gw, int error,
                       struct json_object *result, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->members_done++;
  f->members_err = error;
  json_object_put(f->members_result);
  f->members_result = json_object_get(result);
}

/* All-members request: three chunks of at most 1000 gathered into one
 * result; a second one within 30 s is RATE_LIMITED and reported so. */
static void test_members_gathered_then_rate_limited(void **state) {
  struct fx *f = fx_new(NULL, 1);
  struct dgw_gateway *gw = fx_start(f);
  struct dgw_member_request req = {
      "81384788765712384", "", 0, NULL, 0, 0, NULL};
  char nonce[33];
  struct json_object *v;

  (void)state;
  assert_true(wait_for(f, is_ready, 5));
  assert_int_equal(
      dgw_gateway_request_members(gw, &req, on_members, f, nonce, NULL, 0),
      DGW_OK);
  assert_int_equal(strlen(nonce), 16);
  assert_true(wait_for(f, members_done, 5));
  assert_int_equal(f->members_err, DGW_OK);
  assert_string_equal(str(f->members_result, "nonce"), nonce);
  assert_true(json_object_object_get_ex(f->members_result, "chunk_count", &v));
  assert_int_equal(json_object_get_int(v), 3);
  assert_true(json_object_object_get_ex(f->members_result, "members", &v));
  assert_int_equal(json_object_array_length(v), 2500);

  f->members_done = 0;
  assert_int_equal(
      dgw_gateway_request_members(gw, &req, on_members, f, NULL, NULL, 0),
      DGW_OK);
  assert_true(wait_for(f, members_done, 5));
  assert_int_equal(f->members_err, DGW_ERR_RATE_LIMITED);
  assert_true(json_object_object_get_ex(f->members_result, "retry_after", &v));
  assert_true(json_object_get_double(v) > 0);
  fx_free(f);
}

/* By user ids, with a given nonce: the ids that are not members come back
 * in not_found. */
static void test_members_by_ids(void **state) {
  struct fx *f = fx_new(NULL, 1);
  struct dgw_gateway *gw = fx_start(f);
  const char *ids[] = {"2000000000000000001", "2000000000000000002",
                       "2999999999999999999"};
  struct dgw_member_request req = {"81384788765712384", NULL, 0, ids, 3, 1,
                                   "my-nonce"};
  struct json_object *v;

  (void)state;
  assert_true(wait_for(f, is_ready, 5));
  assert_int_equal(
      dgw_gateway_request_members(gw, &req, on_members, f, NULL, NULL, 0),
      DGW_OK);
  assert_true(wait_for(f, members_done, 5));
  assert_int_equal(f->members_err, DGW_OK);
  assert_string_equal(str(f->members_result, "nonce"), "my-nonce");
  assert_true(json_object_object_get_ex(f->members_result, "members", &v));
  assert_int_equal(json_object_array_length(v), 2);
  assert_true(json_object_object_get_ex(f->members_result, "not_found", &v));
  assert_int_equal(json_object_array_length(v), 1);
  fx_free(f);
}

/* The session is lost for good (fatal 4004) before the chunks come: the
 * requester hears DGW_ERR_SESSION_LOST. */
static void test_members_session_lost(void **state) {
  struct fx *f = fx_new(NULL, 1);
  struct dgw_gateway *gw = fx_start(f);
  struct dgw_member_request req = {
      "81384788765712384", "", 0, NULL, 0, 0, NULL};

  (void)state;
  assert_true(wait_for(f, is_ready, 5));
  f->close_on_op8 = 1;
  assert_int_equal(
      dgw_gateway_request_members(gw, &req, on_members, f, NULL, NULL, 0),
      DGW_OK);
  assert_true(wait_for(f, members_done, 5));
  assert_int_equal(f->members_err, DGW_ERR_SESSION_LOST);
  assert_null(f->members_result);
  assert_int_equal(dgw_gateway_state(gw), DGW_STATE_FATAL);
  fx_free(f);
}

static void on_voice(struct dgw_gateway *gw, int error, struct json_object *st,
                     struct json_object *sv, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->voice_done++;
  f->voice_err = error;
  f->voice_state = json_object_get(st);
  f->voice_server = json_object_get(sv);
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
    f = fx_new(&mc, 1);
    gw = fx_start(f);
    assert_true(wait_for(f, is_ready, 5));
    assert_int_equal(dgw_gateway_update_voice_state(gw, "81384788765712384",
                                                    "81384788765712390", 0, 1,
                                                    on_voice, f, NULL, 0),
                     DGW_OK);
    assert_true(wait_for(f, voice_done, 5));
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
  return f->nnames >= 300;
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
  f = fx_new(&mc, 1);
  assert_int_equal(dgw_options_set_send_limit(f->opt, 60, 500, 512), DGW_OK);
  gw = fx_start(f);
  assert_true(wait_for(f, is_ready, 5));
  beats_before = f->beats;
  for (int i = 0; i < 300; i++) {
    char json[160];

    snprintf(json, sizeof(json),
             "{\"op\":3,\"d\":{\"since\":null,\"activities\":[{\"name\":"
             "\"%d\",\"type\":0}],\"status\":\"online\",\"afk\":false}}",
             i);
    assert_int_equal(dgw_gateway_send_json(gw, json, strlen(json)), DGW_OK);
  }
  assert_true(dgw_gateway_queued(gw) > 0); /* the window held some back */
  assert_true(wait_for(f, all_300, 20));
  for (int i = 0; i < 300; i++) {
    char want[16];

    snprintf(want, sizeof(want), "%d", i);
    assert_string_equal(f->names[i], want);
  }
  if (f->disconnects != 0)
    fail_msg("disconnected: error %d, close code %u", f->last_dc.error,
             (unsigned)f->last_dc.close_code);
  dgw_mock_get_stats(f->mock, &st);
  assert_true(st.max_in_window <= 60);
  assert_true(f->beats - beats_before >= 5);
  fx_free(f);
}

/* Commands queued behind the window when the connection drops are sent
 * once on the resumed connection. */
static int all_24(struct fx *f) {
  return f->nnames >= 24;
}

static void test_queued_across_resume(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;
  struct dgw_gateway *gw;

  (void)state;
  mc.rate_budget = 20;
  mc.rate_window_ms = 60000;
  f = fx_new(&mc, 1);
  assert_int_equal(dgw_options_set_send_limit(f->opt, 20, 60000, 64), DGW_OK);
  gw = fx_start(f);
  assert_true(wait_for(f, is_ready, 5));
  for (int i = 0; i < 24; i++) {
    char json[160];

    snprintf(json, sizeof(json),
             "{\"op\":3,\"d\":{\"since\":null,\"activities\":[{\"name\":"
             "\"%d\",\"type\":0}],\"status\":\"online\",\"afk\":false}}",
             i);
    assert_int_equal(dgw_gateway_send_json(gw, json, strlen(json)), DGW_OK);
  }
  run_for(f->base, 100);
  assert_true(f->nnames < 24); /* 14 fit: 20 - 5 kept - IDENTIFY */
  assert_true(dgw_gateway_queued(gw) > 0);
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  assert_true(wait_for(f, is_resumed, 5));
  assert_true(wait_for(f, all_24, 5));
  run_for(f->base, 100);
  assert_int_equal(f->nnames, 24); /* each exactly once */
  for (int i = 0; i < 24; i++) {
    char want[16];

    snprintf(want, sizeof(want), "%d", i);
    assert_string_equal(f->names[i], want);
  }
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
  f = fx_new(&mc, 1);
  assert_int_equal(dgw_options_set_send_limit(f->opt, 10, 60000, 8), DGW_OK);
  gw = fx_start(f);
  assert_true(wait_for(f, is_ready, 5));
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
  struct fx *f = fx_new(NULL, 2);

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
      cmocka_unit_test(test_command_payloads),
      cmocka_unit_test(test_members_gathered_then_rate_limited),
      cmocka_unit_test(test_members_by_ids),
      cmocka_unit_test(test_members_session_lost),
      cmocka_unit_test(test_voice_pair),
      cmocka_unit_test(test_burst_respects_limit),
      cmocka_unit_test(test_queued_across_resume),
      cmocka_unit_test(test_queue_full_and_failed_back),
      cmocka_unit_test(test_guild_routing),
  };
  ignore_sigpipe();
  return cmocka_run_group_tests_name("commands_gw", tests, NULL, NULL);
}
