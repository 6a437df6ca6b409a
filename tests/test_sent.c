/*
 * Integration tests of issue 18's command completion against the
 * in-process mock: dgw_gateway_send_json_cb() completes every accepted
 * command exactly once, written (at once or from the drain timer) or
 * dropped with its reason (a fatal close, dgw_client_stop(),
 * dgw_client_stop_for_restart(), dgw_client_free()), and a completion may
 * free the client.
 */
#include "config.h"

#include <stddef.h>
#include <string.h>

#include "fixture.h"

#define PRESENCE                                                               \
  "{\"op\":3,\"d\":{\"since\":null,\"activities\":[],\"status\":\"online\","   \
  "\"afk\":false}}"
#define MAX_CMDS 64

/* What the completions saw: per command (its user data is its index),
 * how often and with which outcome. */
struct sent_log {
  struct fx *f;
  int calls[MAX_CMDS];
  enum dgw_send_outcome outcome[MAX_CMDS];
  int order[MAX_CMDS]; /* indexes in completion order */
  int n;
  int free_at;    /* free the client in the completion of this index */
  int resend;     /* completions try to send again: the result */
  int resend_rv;  /* ... of the last try */
  int in_free;    /* 1 while the test's dgw_client_free() runs */
  int freed_seen; /* FREED completions that ran inside it */
};

static struct sent_log lg;

static void on_sent(struct dgw_gateway *gw, enum dgw_send_outcome outcome,
                    void *ud) {
  int i = (int)(intptr_t)ud;

  assert_non_null(gw);
  assert_true(i >= 0 && i < MAX_CMDS);
  lg.calls[i]++;
  lg.outcome[i] = outcome;
  lg.order[lg.n++] = i;
  if (outcome == DGW_SEND_FREED && lg.in_free)
    lg.freed_seen++;
  if (lg.resend)
    lg.resend_rv = dgw_gateway_send_json_cb(gw, PRESENCE, strlen(PRESENCE),
                                            on_sent, (void *)(intptr_t)63);
  if (i == lg.free_at) {
    dgw_client_free(lg.f->client);
    lg.f->client = NULL;
  }
}

/* A client whose commands get `budget` slots per `window_ms` (half of the
 * budget, at most, is kept for heartbeats): the rest queue. */
static struct fx *sent_new(uint32_t budget, uint32_t window_ms) {
  struct fx *f = fx_new(NULL);

  memset(&lg, 0, sizeof(lg));
  lg.f = f;
  lg.free_at = -1;
  assert_int_equal(dgw_options_set_send_limit(f->opt, budget, window_ms, 256),
                   DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  return f;
}

static int send_n(struct fx *f, int from, int n) {
  struct dgw_gateway *gw = dgw_client_gateway(f->client, 0);
  int i;

  for (i = from; i < from + n; i++)
    if (dgw_gateway_send_json_cb(gw, PRESENCE, strlen(PRESENCE), on_sent,
                                 (void *)(intptr_t)i) != DGW_OK)
      return i - from;
  return n;
}

static int all_completed(void *arg) {
  return lg.n >= *(int *)arg;
}

static void wait_completed(struct fx *f, int n, double seconds) {
  assert_true(loop_until(f->base, all_completed, &n, seconds));
}

/* Each of commands [0, n) completed exactly once with `outcome`, in
 * order. */
static void assert_each(int n, enum dgw_send_outcome outcome) {
  int i;

  assert_int_equal(lg.n, n);
  for (i = 0; i < n; i++) {
    assert_int_equal(lg.calls[i], 1);
    assert_int_equal(lg.outcome[i], outcome);
    assert_int_equal(lg.order[i], i);
  }
}

/*
 * Input: 12 commands on a shard whose window allows 5 commands per 400 ms.
 * Expected: the first 5 complete WRITTEN before their call returns, the
 * other 7 from the drain timer as the window moves, each once, in order;
 * the mock got all 12.  Without the completion there was no way to learn
 * when a queued command left.
 */
static void test_written_at_once_and_from_the_queue(void **state) {
  struct fx *f;

  (void)state;
  f = sent_new(10, 400);
  assert_int_equal(send_n(f, 0, 12), 12);
  assert_true(lg.n >= 1 && lg.n < 12); /* some at once, some queued */
  assert_int_equal(lg.outcome[0], DGW_SEND_WRITTEN);
  wait_completed(f, 12, 10);
  assert_each(12, DGW_SEND_WRITTEN);
  assert_int_equal(dgw_gateway_queued(dgw_client_gateway(f->client, 0)), 0);
  run_for(f->base, 100);
  assert_int_equal(f->count[3], 12);
  fx_free(f);
}

/* Refused commands (bad JSON, a closed shard) get no completion. */
static void test_refused_gets_none(void **state) {
  struct fx *f;
  struct dgw_gateway *gw;

  (void)state;
  f = sent_new(10, 60000);
  gw = dgw_client_gateway(f->client, 0);
  assert_int_equal(dgw_gateway_send_json_cb(gw, "{nope", 5, on_sent, NULL),
                   DGW_ERR_JSON);
  dgw_client_stop(f->client);
  assert_int_equal(
      dgw_gateway_send_json_cb(gw, PRESENCE, strlen(PRESENCE), on_sent, NULL),
      DGW_ERR_STATE);
  run_for(f->base, 100);
  assert_int_equal(lg.n, 0);
  fx_free(f);
}

/* Queues 8 commands behind a 60 s window: returns how many went out at
 * once (completed WRITTEN already). */
static int queue_behind(struct fx *f) {
  int at_once;

  assert_int_equal(send_n(f, 0, 8), 8);
  at_once = lg.n;
  assert_true(at_once < 8);
  assert_int_equal(dgw_gateway_queued(dgw_client_gateway(f->client, 0)),
                   (size_t)(8 - at_once));
  return at_once;
}

static void assert_dropped(int at_once, enum dgw_send_outcome why) {
  int i;

  assert_int_equal(lg.n, 8);
  for (i = 0; i < 8; i++) {
    assert_int_equal(lg.calls[i], 1);
    assert_int_equal(lg.order[i], i);
    assert_int_equal(lg.outcome[i], i < at_once ? DGW_SEND_WRITTEN : why);
  }
}

/* Input: the gateway closes 4004 (fatal) while commands wait.  Expected:
 * each waiting one completes SESSION_LOST, once, in order. */
static void test_dropped_on_session_loss(void **state) {
  struct fx *f;
  int at_once;

  (void)state;
  f = sent_new(10, 60000);
  at_once = queue_behind(f);
  dgw_mock_conn_close(dgw_mock_last_conn(f->mock), 4004, "bad token");
  assert_true(fx_wait_for(f, fx_has_fatal, 5));
  assert_dropped(at_once, DGW_SEND_SESSION_LOST);
  assert_string_equal(dgw_send_outcome_name(DGW_SEND_SESSION_LOST),
                      "session lost");
  fx_free(f);
}

/* Input: a resume while commands wait.  Expected: the resume keeps them
 * (no completion before it), and they go out on the new connection's
 * fresh window: each completes WRITTEN, once, in order. */
static void test_kept_across_resume(void **state) {
  struct fx *f;
  int at_once;

  (void)state;
  f = sent_new(10, 60000);
  at_once = queue_behind(f);
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  assert_int_equal(lg.n, at_once);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  wait_completed(f, 8, 5);
  assert_each(8, DGW_SEND_WRITTEN);
  fx_free(f);
}

/* dgw_client_stop() drops them CLOSED. */
static void test_dropped_on_stop(void **state) {
  struct fx *f;
  int at_once;

  (void)state;
  f = sent_new(10, 60000);
  at_once = queue_behind(f);
  dgw_client_stop(f->client);
  assert_dropped(at_once, DGW_SEND_CLOSED);
  assert_string_equal(dgw_send_outcome_name(DGW_SEND_CLOSED), "shard closed");
  fx_free(f);
}

/* dgw_client_stop_for_restart() drops them RESTART. */
static void test_dropped_on_restart(void **state) {
  struct fx *f;
  int at_once;

  (void)state;
  f = sent_new(10, 60000);
  at_once = queue_behind(f);
  assert_int_equal(dgw_client_stop_for_restart(f->client), DGW_OK);
  assert_dropped(at_once, DGW_SEND_RESTART);
  fx_free(f);
}

/*
 * Input: dgw_client_free() while commands wait; each completion tries to
 * send again.  Expected: each waiting one completes FREED inside the free
 * call, once; the new sends are refused (DGW_ERR_STATE) and get no
 * completion.  Before: sender_free dropped them without a word.
 */
static void test_dropped_at_free(void **state) {
  struct fx *f;
  int at_once;

  (void)state;
  f = sent_new(10, 60000);
  at_once = queue_behind(f);
  lg.resend = 1;
  lg.in_free = 1;
  dgw_client_free(f->client);
  lg.in_free = 0;
  f->client = NULL;
  assert_dropped(at_once, DGW_SEND_FREED);
  assert_int_equal(lg.freed_seen, 8 - at_once);
  assert_int_equal(lg.resend_rv, DGW_ERR_STATE);
  assert_int_equal(lg.calls[63], 0);
  fx_free(f);
}

/*
 * Input: the completion of a command written from the drain timer frees
 * the client (and the drain timer would go on with the next one).
 * Expected: no use after free (valgrind), the commands after it complete
 * FREED inside that free, each once.  Before: the drain timer ran outside
 * the client's guard, so the free destroyed the sender under it.
 */
static void test_completion_frees_client_from_the_timer(void **state) {
  struct fx *f;
  int i, at_once;

  (void)state;
  f = sent_new(10, 300);
  assert_int_equal(send_n(f, 0, 12), 12);
  at_once = lg.n;
  assert_true(at_once < 11);
  lg.free_at = at_once + 1; /* the second from the queue */
  assert_true(fx_wait_for(f, fx_client_gone, 10));
  run_for(f->base, 50);
  assert_int_equal(lg.n, 12);
  for (i = 0; i < 12; i++) {
    assert_int_equal(lg.calls[i], 1);
    assert_int_equal(lg.order[i], i);
    assert_int_equal(lg.outcome[i],
                     i <= at_once + 1 ? DGW_SEND_WRITTEN : DGW_SEND_FREED);
  }
  fx_free(f);
}

/* Input: the completion of a command written at once (inside
 * dgw_gateway_send_json_cb) frees the client.  Expected: the call returns
 * DGW_OK and the client is gone after it, with no use after free. */
static void test_completion_frees_client_inside_the_call(void **state) {
  struct fx *f;

  (void)state;
  f = sent_new(10, 60000);
  lg.free_at = 0;
  assert_int_equal(send_n(f, 0, 1), 1);
  assert_null(f->client);
  assert_int_equal(lg.calls[0], 1);
  assert_int_equal(lg.outcome[0], DGW_SEND_WRITTEN);
  fx_free(f);
}

/* Input: a FREED completion frees the client again.  Expected: nothing
 * more happens (no double free), every command still completes once. */
static void test_free_inside_freed_completion(void **state) {
  struct fx *f;
  struct dgw_client *c;
  int at_once;

  (void)state;
  f = sent_new(10, 60000);
  at_once = queue_behind(f);
  lg.free_at = at_once; /* the first one dropped frees again */
  c = f->client;
  dgw_client_free(c);
  f->client = NULL;
  assert_dropped(at_once, DGW_SEND_FREED);
  fx_free(f);
}

/* ------------------------------------------- growable argument structs */

static int has_members(struct fx *f) {
  return f->members_done > 0;
}

static int has_voice(struct fx *f) {
  return f->voice_done > 0;
}

/*
 * Input: each of the five commands through its size-first struct, with a
 * completion.  Expected: each is accepted, completes WRITTEN once, and
 * reaches the mock (ops 3, 4, 8, 31, 43); the member request's nonce comes
 * back in nonce_out and its chunks through on_members, the voice pair
 * through on_voice.
 */
static void test_args_structs(void **state) {
  static const char *const guilds[] = {"81384788765712384"};
  struct dgw_activity act = {"soaking", DGW_ACTIVITY_PLAYING, NULL, NULL};
  struct dgw_presence_args pa = {sizeof pa};
  struct dgw_voice_state_args va = {sizeof va};
  struct dgw_member_request_args ma = {sizeof ma};
  struct dgw_soundboard_args sa = {sizeof sa};
  struct dgw_channel_info_args ca = {sizeof ca};
  struct dgw_gateway *gw;
  char nonce[DGW_NONCE_SIZE] = "x";
  char why[128] = "";
  struct fx *f;

  (void)state;
  f = sent_new(120, 60000);
  gw = dgw_client_gateway(f->client, 0);
  pa.presence.status = "idle";
  pa.presence.activities = &act;
  pa.presence.activity_count = 1;
  pa.on_sent = on_sent;
  pa.sent_user_data = (void *)(intptr_t)0;
  assert_int_equal(dgw_gateway_update_presence_args(gw, &pa, why, sizeof why),
                   DGW_OK);
  va.guild_id = guilds[0];
  va.channel_id = "41771983423143937";
  va.on_voice = fx_on_voice;
  va.voice_user_data = f;
  va.on_sent = on_sent;
  va.sent_user_data = (void *)(intptr_t)1;
  assert_int_equal(
      dgw_gateway_update_voice_state_args(gw, &va, why, sizeof why), DGW_OK);
  ma.request.guild_id = guilds[0];
  ma.request.query = "user1";
  ma.request.limit = 5;
  ma.on_members = fx_on_members;
  ma.members_user_data = f;
  ma.nonce_out = nonce;
  ma.on_sent = on_sent;
  ma.sent_user_data = (void *)(intptr_t)2;
  assert_int_equal(dgw_gateway_request_members_args(gw, &ma, why, sizeof why),
                   DGW_OK);
  assert_int_equal(strlen(nonce), 16);
  sa.guild_ids = guilds;
  sa.count = 1;
  sa.on_sent = on_sent;
  sa.sent_user_data = (void *)(intptr_t)3;
  assert_int_equal(
      dgw_gateway_request_soundboard_sounds_args(gw, &sa, why, sizeof why),
      DGW_OK);
  ca.guild_id = guilds[0];
  ca.fields = DGW_CHANNEL_INFO_ALL;
  ca.on_sent = on_sent;
  ca.sent_user_data = (void *)(intptr_t)4;
  assert_int_equal(
      dgw_gateway_request_channel_info_args(gw, &ca, why, sizeof why), DGW_OK);
  assert_each(5, DGW_SEND_WRITTEN);
  assert_true(fx_wait_for(f, has_members, 5));
  assert_int_equal(f->members_err, DGW_OK);
  assert_true(fx_wait_for(f, has_voice, 5));
  assert_int_equal(f->voice_err, DGW_OK);
  assert_int_equal(f->count[3], 1);
  assert_string_equal(f->activity[0], "soaking");
  assert_int_equal(f->count[4], 1);
  assert_int_equal(f->count[8], 1);
  assert_int_equal(f->count[31], 1);
  assert_int_equal(f->count[43], 1);
  fx_free(f);
}

/*
 * Input: a struct from an older header (size ends before on_sent, while
 * the memory after holds a completion), one from a newer header (size
 * past the end, the extra bytes garbage), a size below the first members,
 * and NULL.  Expected: the first two are accepted and the first gets no
 * completion (dgw read only `size` bytes); the last two are refused with
 * DGW_ERR_INVALID_ARGUMENT and a reason, and nothing is sent.
 */
static void test_args_sizes(void **state) {
  struct {
    struct dgw_channel_info_args a;
    unsigned char newer[32];
  } big;
  struct dgw_channel_info_args ca;
  struct dgw_gateway *gw;
  char why[128] = "";
  struct fx *f;

  (void)state;
  f = sent_new(120, 60000);
  gw = dgw_client_gateway(f->client, 0);
  memset(&ca, 0, sizeof ca);
  ca.size = offsetof(struct dgw_channel_info_args, on_sent);
  ca.guild_id = "81384788765712384";
  ca.fields = DGW_CHANNEL_INFO_STATUS;
  ca.on_sent = on_sent; /* beyond `size`: must not be read */
  ca.sent_user_data = (void *)(intptr_t)0;
  assert_int_equal(
      dgw_gateway_request_channel_info_args(gw, &ca, why, sizeof why), DGW_OK);
  memset(&big, 0xa5, sizeof big);
  big.a.size = sizeof big;
  big.a.guild_id = "81384788765712384";
  big.a.fields = DGW_CHANNEL_INFO_STATUS;
  big.a.on_sent = on_sent;
  big.a.sent_user_data = (void *)(intptr_t)1;
  assert_int_equal(
      dgw_gateway_request_channel_info_args(gw, &big.a, why, sizeof why),
      DGW_OK);
  assert_int_equal(lg.n, 1);
  assert_int_equal(lg.calls[0], 0);
  assert_int_equal(lg.calls[1], 1);
  ca.size = sizeof(size_t);
  assert_int_equal(
      dgw_gateway_request_channel_info_args(gw, &ca, why, sizeof why),
      DGW_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "size"));
  assert_int_equal(
      dgw_gateway_request_channel_info_args(gw, NULL, why, sizeof why),
      DGW_ERR_INVALID_ARGUMENT);
  run_for(f->base, 100);
  assert_int_equal(f->count[43], 2);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_written_at_once_and_from_the_queue),
      cmocka_unit_test(test_refused_gets_none),
      cmocka_unit_test(test_dropped_on_session_loss),
      cmocka_unit_test(test_kept_across_resume),
      cmocka_unit_test(test_dropped_on_stop),
      cmocka_unit_test(test_dropped_on_restart),
      cmocka_unit_test(test_dropped_at_free),
      cmocka_unit_test(test_completion_frees_client_from_the_timer),
      cmocka_unit_test(test_completion_frees_client_inside_the_call),
      cmocka_unit_test(test_free_inside_freed_completion),
      cmocka_unit_test(test_args_structs),
      cmocka_unit_test(test_args_sizes),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
