/*
 * Unit tests: the request tracker (lib/requests.c) fed dispatches by
 * hand.  requests.c reads an event only through dgw_event_name(),
 * dgw_event_data() (the field getters look at d without a DOM first) and
 * dgw_event_json(); this program defines the three over its own event, so
 * no gateway (and no socket) is linked in.  The tracker has no timers: a
 * request ends when its answer is complete, when RATE_LIMITED refuses it,
 * when it is cancelled or replaced, or by fail_all.
 */
#include "config.h"

#include "harness.h"

#include <json-c/json.h>

#include "requests.h"

/* ------------------------------------------------------ a fake event */

struct dgw_event {
  const char *name;
  struct json_object *d;
};

static int json_reads; /* how often requests.c asked for the parsed d */

const char *dgw_event_name(const struct dgw_event *ev) {
  return ev->name;
}

struct json_object *dgw_event_json(const struct dgw_event *ev) {
  json_reads++;
  return ev->d;
}

/* d's text, as json-c writes the event's DOM (cached inside it). */
const char *dgw_event_data(const struct dgw_event *ev, size_t *len) {
  return json_object_to_json_string_length(ev->d, JSON_C_TO_STRING_PLAIN, len);
}

#define SELF "100"
static struct dgw_gateway *const GW = (struct dgw_gateway *)(uintptr_t)0x1234;

/* Hands one dispatch `name` with d = `json` to the tracker. */
static void observe(struct dgw_requests *r, const char *name,
                    const char *json) {
  struct dgw_event ev = {name, json_tokener_parse(json)};

  assert_non_null(ev.d);
  dgw_requests_observe(r, GW, &ev, SELF);
  json_object_put(ev.d);
}

/* ------------------------------------------------------ recorders */

struct answer {
  int calls;
  int error;
  char result[1024]; /* members: the result; voice: state + " | " + server */
  struct dgw_gateway *gw;
};

static void on_members(struct dgw_gateway *gw, int error,
                       struct json_object *result, void *ud) {
  struct answer *a = ud;

  a->calls++;
  a->error = error;
  a->gw = gw;
  snprintf(a->result, sizeof(a->result), "%s",
           result != NULL
               ? json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN)
               : "(null)");
}

static void on_voice(struct dgw_gateway *gw, int error,
                     struct json_object *state, struct json_object *server,
                     void *ud) {
  struct answer *a = ud;

  a->calls++;
  a->error = error;
  a->gw = gw;
  snprintf(a->result, sizeof(a->result), "%s | %s",
           state != NULL
               ? json_object_to_json_string_ext(state, JSON_C_TO_STRING_PLAIN)
               : "(null)",
           server != NULL
               ? json_object_to_json_string_ext(server, JSON_C_TO_STRING_PLAIN)
               : "(null)");
}

/* ------------------------------------------------------------- cases */

/* Three chunks of one request are gathered, in order, into one result,
 * handed over once, after the last. */
static void test_member_chunks(void **state) {
  struct dgw_requests *r = dgw_requests_new();
  struct answer a = {0};

  (void)state;
  assert_int_equal(dgw_requests_add_members(r, "n1", "7", on_members, &a),
                   DGW_OK);
  assert_int_equal(dgw_requests_pending(r), 1);
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"guild_id\":\"7\",\"nonce\":\"n1\",\"chunk_index\":0,"
          "\"chunk_count\":3,\"members\":[{\"id\":1},{\"id\":2}]}");
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"guild_id\":\"7\",\"nonce\":\"n1\",\"chunk_index\":1,"
          "\"chunk_count\":3,\"members\":[{\"id\":3}],\"not_found\":[\"9\"]}");
  assert_int_equal(a.calls, 0);
  assert_int_equal(dgw_requests_pending(r), 1);
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"guild_id\":\"7\",\"nonce\":\"n1\",\"chunk_index\":2,"
          "\"chunk_count\":3,\"members\":[{\"id\":4}],"
          "\"presences\":[{\"user\":{\"id\":4}}]}");
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.error, DGW_OK);
  assert_ptr_equal(a.gw, GW);
  assert_string_equal(
      a.result, "{\"guild_id\":\"7\",\"nonce\":\"n1\",\"chunk_count\":3,"
                "\"members\":[{\"id\":1},{\"id\":2},{\"id\":3},{\"id\":4}],"
                "\"not_found\":[\"9\"],"
                "\"presences\":[{\"user\":{\"id\":4}}]}");
  assert_int_equal(dgw_requests_pending(r), 0);
  /* A late duplicate finds nobody. */
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"guild_id\":\"7\",\"nonce\":\"n1\",\"chunk_count\":3}");
  assert_int_equal(a.calls, 1);
  dgw_requests_free(r);
}

/* Chunks are matched by nonce only: another nonce, or none, is somebody
 * else's; two requests for the same guild interleave without mixing. */
static void test_member_nonce_matching(void **state) {
  struct dgw_requests *r = dgw_requests_new();
  struct answer a = {0}, b = {0};

  (void)state;
  assert_int_equal(dgw_requests_add_members(r, "na", "7", on_members, &a),
                   DGW_OK);
  assert_int_equal(dgw_requests_add_members(r, "nb", "7", on_members, &b),
                   DGW_OK);
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"guild_id\":\"7\",\"chunk_count\":1,\"members\":[{\"id\":0}]}");
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"guild_id\":\"7\",\"nonce\":\"other\",\"chunk_count\":1}");
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"guild_id\":\"7\",\"nonce\":5,\"chunk_count\":1}");
  assert_int_equal(a.calls + b.calls, 0);
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"guild_id\":\"7\",\"nonce\":\"nb\",\"chunk_count\":2,"
          "\"members\":[{\"id\":20}]}");
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"guild_id\":\"7\",\"nonce\":\"na\",\"chunk_count\":1,"
          "\"members\":[{\"id\":10}]}");
  assert_int_equal(a.calls, 1);
  assert_non_null(strstr(a.result, "\"members\":[{\"id\":10}]"));
  assert_int_equal(b.calls, 0);
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"guild_id\":\"7\",\"nonce\":\"nb\",\"chunk_count\":2,"
          "\"members\":[{\"id\":21}]}");
  assert_int_equal(b.calls, 1);
  assert_non_null(strstr(b.result, "\"members\":[{\"id\":20},{\"id\":21}]"));
  assert_int_equal(dgw_requests_pending(r), 0);
  dgw_requests_free(r);
}

/* A chunk without chunk_count (or 0) completes the request by itself; a
 * request without a callback completes silently. */
static void test_member_single_chunk(void **state) {
  struct dgw_requests *r = dgw_requests_new();
  struct answer a = {0};

  (void)state;
  assert_int_equal(dgw_requests_add_members(r, "n1", "7", on_members, &a),
                   DGW_OK);
  assert_int_equal(dgw_requests_add_members(r, "n2", "7", NULL, NULL), DGW_OK);
  observe(r, "GUILD_MEMBERS_CHUNK", "{\"nonce\":\"n1\"}");
  assert_int_equal(a.calls, 1);
  assert_string_equal(a.result,
                      "{\"guild_id\":\"7\",\"nonce\":\"n1\",\"chunk_count\":0,"
                      "\"members\":[],\"not_found\":[],\"presences\":[]}");
  observe(r, "GUILD_MEMBERS_CHUNK", "{\"nonce\":\"n2\",\"chunk_count\":1}");
  assert_int_equal(dgw_requests_pending(r), 0);
  dgw_requests_free(r);
}

/* RATE_LIMITED for opcode 8 fails the request it names (by nonce, else
 * by guild) with DGW_ERR_RATE_LIMITED and the event's d; for another
 * opcode it is not ours. */
static void test_member_rate_limited(void **state) {
  struct dgw_requests *r = dgw_requests_new();
  struct answer a = {0}, b = {0};

  (void)state;
  assert_int_equal(dgw_requests_add_members(r, "na", "7", on_members, &a),
                   DGW_OK);
  assert_int_equal(dgw_requests_add_members(r, "nb", "8", on_members, &b),
                   DGW_OK);
  observe(r, "RATE_LIMITED",
          "{\"opcode\":3,\"retry_after\":1.5,\"meta\":{\"nonce\":\"na\"}}");
  assert_int_equal(a.calls, 0);
  observe(r, "RATE_LIMITED",
          "{\"opcode\":8,\"retry_after\":1.5,"
          "\"meta\":{\"guild_id\":\"7\",\"nonce\":\"na\"}}");
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.error, DGW_ERR_RATE_LIMITED);
  assert_non_null(strstr(a.result, "\"retry_after\":1.5"));
  observe(r, "RATE_LIMITED",
          "{\"opcode\":8,\"retry_after\":2,\"meta\":{\"guild_id\":\"8\"}}");
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.error, DGW_ERR_RATE_LIMITED);
  assert_int_equal(dgw_requests_pending(r), 0);
  dgw_requests_free(r);
}

/* A cancelled member request is forgotten without a callback; cancelling
 * an unknown nonce is harmless. */
static void test_member_cancel(void **state) {
  struct dgw_requests *r = dgw_requests_new();
  struct answer a = {0};

  (void)state;
  assert_int_equal(dgw_requests_add_members(r, "n1", "7", on_members, &a),
                   DGW_OK);
  dgw_requests_cancel_members(r, "nope");
  assert_int_equal(dgw_requests_pending(r), 1);
  dgw_requests_cancel_members(r, "n1");
  assert_int_equal(dgw_requests_pending(r), 0);
  observe(r, "GUILD_MEMBERS_CHUNK", "{\"nonce\":\"n1\",\"chunk_count\":1}");
  assert_int_equal(a.calls, 0);
  dgw_requests_free(r);
}

/* The voice pair comes in either order and is handed over once both are
 * there; another user's state, another guild's server and a state without
 * a known self are not ours. */
static void test_voice_pair(void **state) {
  static const char *state_json =
      "{\"guild_id\":\"7\",\"user_id\":\"" SELF "\",\"session_id\":\"s\"}";
  static const char *server_json =
      "{\"guild_id\":\"7\",\"token\":\"t\",\"endpoint\":\"e\"}";
  (void)state;
  for (int server_first = 0; server_first < 2; server_first++) {
    struct dgw_requests *r = dgw_requests_new();
    struct answer a = {0};

    assert_int_equal(dgw_requests_add_voice(r, GW, "7", on_voice, &a), DGW_OK);
    observe(r, "VOICE_STATE_UPDATE",
            "{\"guild_id\":\"7\",\"user_id\":\"555\",\"session_id\":\"x\"}");
    observe(r, "VOICE_SERVER_UPDATE",
            "{\"guild_id\":\"8\",\"token\":\"u\",\"endpoint\":\"f\"}");
    observe(r, "VOICE_STATE_UPDATE", "{\"user_id\":\"" SELF "\"}");
    observe(r, server_first ? "VOICE_SERVER_UPDATE" : "VOICE_STATE_UPDATE",
            server_first ? server_json : state_json);
    assert_int_equal(a.calls, 0);
    assert_int_equal(dgw_requests_pending(r), 1);
    observe(r, server_first ? "VOICE_STATE_UPDATE" : "VOICE_SERVER_UPDATE",
            server_first ? state_json : server_json);
    assert_int_equal(a.calls, 1);
    assert_int_equal(a.error, DGW_OK);
    assert_ptr_equal(a.gw, GW);
    assert_string_equal(a.result,
                        "{\"guild_id\":\"7\",\"user_id\":\"" SELF
                        "\",\"session_id\":\"s\"} | "
                        "{\"guild_id\":\"7\",\"token\":\"t\",\"endpoint\":"
                        "\"e\"}");
    assert_int_equal(dgw_requests_pending(r), 0);
    dgw_requests_free(r);
  }
}

/* Without the bot's id (no READY yet) no voice state can be ours. */
static void test_voice_needs_self(void **state) {
  struct dgw_requests *r = dgw_requests_new();
  struct answer a = {0};
  struct dgw_event ev = {"VOICE_STATE_UPDATE",
                         json_tokener_parse("{\"guild_id\":\"7\","
                                            "\"user_id\":\"" SELF "\"}")};
  struct dgw_event sv = {"VOICE_SERVER_UPDATE",
                         json_tokener_parse("{\"guild_id\":\"7\"}")};

  (void)state;
  assert_int_equal(dgw_requests_add_voice(r, GW, "7", on_voice, &a), DGW_OK);
  dgw_requests_observe(r, GW, &ev, NULL);
  dgw_requests_observe(r, GW, &sv, NULL);
  assert_int_equal(a.calls, 0);
  dgw_requests_observe(r, GW, &ev, SELF);
  assert_int_equal(a.calls, 1);
  json_object_put(ev.d);
  json_object_put(sv.d);
  dgw_requests_free(r);
}

/* A newer voice request for the guild replaces the older, which is failed
 * with DGW_ERR_STATE at once; other guilds are untouched. */
static void test_voice_replaced(void **state) {
  struct dgw_requests *r = dgw_requests_new();
  struct answer old = {0}, now = {0}, other = {0};

  (void)state;
  assert_int_equal(dgw_requests_add_voice(r, GW, "7", on_voice, &old), DGW_OK);
  assert_int_equal(dgw_requests_add_voice(r, GW, "8", on_voice, &other),
                   DGW_OK);
  observe(r, "VOICE_SERVER_UPDATE", "{\"guild_id\":\"7\",\"token\":\"a\"}");
  assert_int_equal(dgw_requests_add_voice(r, GW, "7", on_voice, &now), DGW_OK);
  assert_int_equal(old.calls, 1);
  assert_int_equal(old.error, DGW_ERR_STATE);
  assert_string_equal(old.result, "(null) | (null)");
  assert_int_equal(dgw_requests_pending(r), 2);
  /* The half the old one had is not carried over. */
  observe(r, "VOICE_STATE_UPDATE",
          "{\"guild_id\":\"7\",\"user_id\":\"" SELF "\"}");
  assert_int_equal(now.calls, 0);
  observe(r, "VOICE_SERVER_UPDATE", "{\"guild_id\":\"7\",\"token\":\"b\"}");
  assert_int_equal(now.calls, 1);
  assert_non_null(strstr(now.result, "\"token\":\"b\""));
  assert_int_equal(other.calls, 0);
  assert_int_equal(dgw_requests_pending(r), 1);
  dgw_requests_free(r); /* `other` is dropped without a call */
  assert_int_equal(other.calls, 0);
}

/* fail_all calls every waiter once with the error and empties the table;
 * a callback may start a new request, which stays. */
static struct dgw_requests *refill_table;

static void on_members_refill(struct dgw_gateway *gw, int error,
                              struct json_object *result, void *ud) {
  on_members(gw, error, result, ud);
  assert_int_equal(
      dgw_requests_add_members(refill_table, "again", "7", NULL, NULL), DGW_OK);
}

static void test_fail_all(void **state) {
  struct dgw_requests *r = dgw_requests_new();
  struct answer m1 = {0}, m2 = {0}, v1 = {0};

  (void)state;
  refill_table = r;
  assert_int_equal(dgw_requests_add_members(r, "n1", "7", on_members, &m1),
                   DGW_OK);
  assert_int_equal(
      dgw_requests_add_members(r, "n2", "7", on_members_refill, &m2), DGW_OK);
  assert_int_equal(dgw_requests_add_voice(r, GW, "7", on_voice, &v1), DGW_OK);
  observe(r, "GUILD_MEMBERS_CHUNK", "{\"nonce\":\"n1\",\"chunk_count\":2}");
  dgw_requests_fail_all(r, GW, DGW_ERR_SESSION_LOST);
  assert_int_equal(m1.calls, 1);
  assert_int_equal(m1.error, DGW_ERR_SESSION_LOST);
  assert_string_equal(m1.result, "(null)");
  assert_int_equal(m2.calls, 1);
  assert_int_equal(v1.calls, 1);
  assert_int_equal(v1.error, DGW_ERR_SESSION_LOST);
  assert_int_equal(dgw_requests_pending(r), 1); /* "again" */
  dgw_requests_fail_all(r, GW, DGW_ERR_SESSION_LOST);
  assert_int_equal(dgw_requests_pending(r), 0);
  assert_int_equal(m1.calls + m2.calls + v1.calls, 3);
  dgw_requests_free(r);
}

/* The event is parsed only when something waits for its kind. */
static void test_parses_only_when_waiting(void **state) {
  struct dgw_requests *r = dgw_requests_new();
  struct answer a = {0};

  (void)state;
  json_reads = 0;
  observe(r, "GUILD_MEMBERS_CHUNK", "{\"nonce\":\"n1\"}");
  observe(r, "VOICE_STATE_UPDATE", "{\"guild_id\":\"7\"}");
  observe(r, "MESSAGE_CREATE", "{}");
  assert_int_equal(json_reads, 0);
  assert_int_equal(dgw_requests_add_voice(r, GW, "7", on_voice, &a), DGW_OK);
  observe(r, "GUILD_MEMBERS_CHUNK", "{\"nonce\":\"n1\"}"); /* no members */
  observe(r, "MESSAGE_CREATE", "{}");
  assert_int_equal(json_reads, 0);
  observe(r, "VOICE_SERVER_UPDATE", "{\"guild_id\":\"7\"}");
  assert_int_equal(json_reads, 1);
  dgw_requests_free(r);
  dgw_requests_free(NULL);
}

/* Input: with a voice request for guild 7 and a member request "na"
 * waiting, events that cannot answer them (another user's voice state,
 * another guild's voice server, a chunk of another nonce or of none, a
 * RATE_LIMITED for another opcode).  None may be parsed: the tracker reads
 * their nonce, guild_id, user_id or opcode with the field getters first
 * (without that, each costs a dgw_event_json()).  The matching ones still
 * are parsed and answer. */
static void test_parses_only_what_may_answer(void **state) {
  struct dgw_requests *r = dgw_requests_new();
  struct answer v = {0}, m = {0};

  (void)state;
  assert_int_equal(dgw_requests_add_voice(r, GW, "7", on_voice, &v), DGW_OK);
  assert_int_equal(dgw_requests_add_members(r, "na", "7", on_members, &m),
                   DGW_OK);
  json_reads = 0;
  observe(r, "VOICE_STATE_UPDATE", "{\"guild_id\":\"7\",\"user_id\":\"200\"}");
  observe(r, "VOICE_STATE_UPDATE",
          "{\"guild_id\":\"8\",\"user_id\":\"" SELF "\"}");
  observe(r, "VOICE_STATE_UPDATE", "{\"guild_id\":\"7\"}");
  observe(r, "VOICE_SERVER_UPDATE", "{\"guild_id\":\"8\"}");
  observe(r, "VOICE_SERVER_UPDATE", "{\"guild_id\":7}");
  observe(r, "GUILD_MEMBERS_CHUNK", "{\"nonce\":\"other\",\"chunk_count\":1}");
  observe(r, "GUILD_MEMBERS_CHUNK", "{\"chunk_count\":1}");
  observe(r, "RATE_LIMITED", "{\"opcode\":4,\"meta\":{\"nonce\":\"na\"}}");
  assert_int_equal(json_reads, 0);
  assert_int_equal(v.calls + m.calls, 0);

  observe(r, "VOICE_STATE_UPDATE",
          "{\"guild_id\":\"7\",\"user_id\":\"" SELF "\",\"session_id\":\"s\"}");
  observe(r, "VOICE_SERVER_UPDATE", "{\"guild_id\":\"7\",\"token\":\"k\"}");
  observe(r, "GUILD_MEMBERS_CHUNK",
          "{\"nonce\":\"n\\u0061\",\"chunk_count\":1}");
  assert_int_equal(json_reads, 3);
  assert_int_equal(v.calls, 1);
  assert_int_equal(m.calls, 1);
  assert_int_equal(dgw_requests_pending(r), 0);
  dgw_requests_free(r);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_member_chunks),
      cmocka_unit_test(test_member_nonce_matching),
      cmocka_unit_test(test_member_single_chunk),
      cmocka_unit_test(test_member_rate_limited),
      cmocka_unit_test(test_member_cancel),
      cmocka_unit_test(test_voice_pair),
      cmocka_unit_test(test_voice_needs_self),
      cmocka_unit_test(test_voice_replaced),
      cmocka_unit_test(test_fail_all),
      cmocka_unit_test(test_parses_only_when_waiting),
      cmocka_unit_test(test_parses_only_what_may_answer),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
