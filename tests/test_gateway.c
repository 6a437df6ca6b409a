/*
 * Integration tests: the gateway session (lib/gateway.c, lib/kokoro.c,
 * lib/client.c) against the mock gateway over loopback.  Each case names
 * the fault it provokes and what the shard must do about it.
 */
#include "config.h"

#include "fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "client.h"
#include "payload.h"

/* ------------------------------------------- on top of the fixture */

static int two_ready(struct fx *f) {
  return f->ready >= 2;
}
static int two_resumed(struct fx *f) {
  return f->resumed >= 2;
}

/* The application saw exactly seq 1..n, each once, in order. */
static void assert_exactly_once(struct fx *f, int64_t n) {
  int64_t expect = 1;

  for (int i = 0; i < f->nseen; i++) {
    if (f->seqs[i] != expect)
      fail_msg("event %d: seq %lld (%s), expected %lld", i,
               (long long)f->seqs[i], f->names[i], (long long)expect);
    expect++;
    /* RESUMED carries the next seq too; it is an event like the others. */
  }
  assert_int_equal(expect - 1, n);
}

/* ------------------------------------------------------------ cases */

/* IDENTIFY carries the token, intents, properties naming dgw, the shard,
 * large_threshold and the initial presence; READY gives the session. */
static void test_identify_fields(void **state) {
  struct fx *f = *state;
  struct dgw_gateway *gw;
  struct json_object *root, *d, *v, *p;

  assert_int_equal(dgw_options_set_large_threshold(f->opt, 250), DGW_OK);
  assert_int_equal(dgw_options_set_presence_json(
                       f->opt,
                       "{\"status\":\"dnd\",\"activities\":[],\"since\":null,"
                       "\"afk\":false}"),
                   DGW_OK);
  gw = fx_start(f);
  assert_int_equal(dgw_gateway_state(gw), DGW_STATE_CONNECTING);
  assert_true(fx_wait_for(f, fx_is_ready, 5));

  root = json_tokener_parse(f->last[DGW_OP_IDENTIFY]);
  assert_non_null(root);
  assert_true(json_object_object_get_ex(root, "d", &d));
  assert_true(json_object_object_get_ex(d, "token", &v));
  assert_string_equal(json_object_get_string(v), "t0ken.SECRET");
  assert_true(json_object_object_get_ex(d, "intents", &v));
  assert_true((uint64_t)json_object_get_int64(v) == DGW_INTENTS_ALL);
  assert_true(json_object_object_get_ex(d, "properties", &p));
  assert_true(json_object_object_get_ex(p, "os", &v));
  assert_string_equal(json_object_get_string(v), "linux");
  assert_true(json_object_object_get_ex(p, "browser", &v));
  assert_string_equal(json_object_get_string(v), "dgw");
  assert_true(json_object_object_get_ex(p, "device", &v));
  assert_string_equal(json_object_get_string(v), "dgw");
  assert_true(json_object_object_get_ex(d, "shard", &v));
  assert_int_equal(json_object_array_length(v), 2);
  assert_int_equal(json_object_get_int(json_object_array_get_idx(v, 0)), 0);
  assert_int_equal(json_object_get_int(json_object_array_get_idx(v, 1)), 1);
  assert_true(json_object_object_get_ex(d, "large_threshold", &v));
  assert_int_equal(json_object_get_int(v), 250);
  assert_true(json_object_object_get_ex(d, "presence", &p));
  assert_true(json_object_object_get_ex(p, "status", &v));
  assert_string_equal(json_object_get_string(v), "dnd");
  json_object_put(root);

  assert_int_equal(dgw_gateway_state(gw), DGW_STATE_READY);
  assert_non_null(dgw_gateway_session_id(gw));
  assert_int_equal(strlen(dgw_gateway_session_id(gw)), 32);
  assert_non_null(dgw_gateway_resume_url(gw));
  assert_int_equal(strncmp(dgw_gateway_resume_url(gw), "ws://", 5), 0);
  assert_int_equal(dgw_gateway_sequence(gw), 1);
  assert_int_equal(dgw_gateway_shard_id(gw), 0);
  assert_true(dgw_gateway_client(gw) == f->client);
  assert_int_equal(f->nseen, 1);
  assert_string_equal(f->names[0], "READY");
  /* States went connecting -> hello -> identifying -> ready. */
  assert_true(f->nstates >= 4);
  assert_int_equal(f->state_log[0], DGW_STATE_CONNECTING);
  assert_int_equal(f->state_log[1], DGW_STATE_HELLO);
  assert_int_equal(f->state_log[2], DGW_STATE_IDENTIFYING);
  assert_int_equal(f->state_log[3], DGW_STATE_READY);
}

/* Heartbeats: the first comes after HELLO within one interval (jitter),
 * later ones one interval apart and never early; d is the last sequence.
 * The latency is unknown until the first ACK, then measured.  Bounds, not
 * exact times: this must hold on a loaded machine and under valgrind. */
static int five_beats(struct fx *f) {
  return f->nbeats >= 5;
}

static void test_heartbeat_cadence(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;
  struct dgw_gateway *gw;

  (void)state;
  mc.heartbeat_interval_ms = 100;
  f = fx_new(&mc);
  gw = fx_start(f);
  assert_true(dgw_gateway_latency(gw) == DGW_LATENCY_UNKNOWN);
  assert_true(fx_wait_for(f, five_beats, 20));
  assert_true(f->hello_ms > 0);
  /* interval * jitter after HELLO, jitter in [0,1): never more than an
   * interval, plus generous scheduling slack. */
  assert_true(f->beat_ms[0] - f->hello_ms < 100 + 2000);
  for (int i = 1; i < f->nbeats; i++) {
    double gap = f->beat_ms[i] - f->beat_ms[i - 1];

    if (gap < 90) /* timers never fire early */
      fail_msg("beats %d and %d only %.1f ms apart", i - 1, i, gap);
  }
  /* The beat before READY may carry null; after READY (s=1), d is 1. */
  assert_true(f->ready == 1);
  assert_string_equal(f->beat_d[f->nbeats - 1], "1");
  assert_true(strcmp(f->beat_d[0], "null") == 0 ||
              strcmp(f->beat_d[0], "1") == 0);
  assert_true(dgw_gateway_latency(gw) >= 0.0);
  fx_free(f);
}

/* The gateway asks for a heartbeat (op 1): one goes out at once, although
 * the interval is an hour (so the jittered first beat is almost surely
 * not due during the test: 2 s of 3600). */
static int want_beats(struct fx *f) {
  return f->nbeats >= f->want;
}

static void test_server_requested_heartbeat(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;

  (void)state;
  mc.heartbeat_interval_ms = 3600000;
  f = fx_new(&mc);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  f->want = f->nbeats + 1;
  assert_int_equal(dgw_mock_conn_request_heartbeat(dgw_mock_last_conn(f->mock)),
                   DGW_OK);
  assert_true(fx_wait_for(f, want_beats, 2));
  assert_string_equal(f->beat_d[f->nbeats - 1], "1");
  run_for(f->base, 100);
  assert_int_equal(f->disconnects, 0); /* the ACK came, no zombie */
  fx_free(f);
}

/* The mock stops ACKing: the next beat finds the last one un-ACKed, the
 * shard drops the zombie with a non-1000 code and RESUMEs with its session
 * and sequence. */
static void test_zombie_resumes(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;
  struct dgw_gateway *gw;
  char session[64];

  (void)state;
  mc.heartbeat_interval_ms = 80;
  f = fx_new(&mc);
  assert_int_equal(dgw_mock_add_dispatch(f->mock, "GUILD_CREATE", "{}"),
                   DGW_OK);
  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  run_for(f->base, 100);
  snprintf(session, sizeof(session), "%s", dgw_gateway_session_id(gw));
  dgw_mock_set_ack(f->mock, 0);
  assert_true(fx_wait_for(f, fx_has_disconnect, 3));
  assert_int_equal(f->last_dc.error, DGW_ERR_TIMEOUT);
  assert_true(f->last_dc.will_resume);
  assert_non_null(strstr(f->last_dc.reason, "zombie"));
  dgw_mock_set_ack(f->mock, 1);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_string_equal(f->resume_session, session);
  assert_int_equal(f->resume_seq, 2);
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
  /* The zombie was closed with a code that keeps the session. */
  run_for(f->base, 100);
  assert_true(f->ncloses >= 1);
  assert_true(f->close_codes[0] != 1000 && f->close_codes[0] != 1001);
  assert_exactly_once(f, 3); /* READY, GUILD_CREATE, RESUMED */
  assert_string_equal(f->names[2], "RESUMED");
  fx_free(f);
}

/* READY and the GUILD_CREATE after it: up and delivered, a success. */
static int ready_and_streaming(struct fx *f) {
  return fx_is_ready(f) && f->nseen >= 2;
}

/* op 7 RECONNECT: leave, come back, RESUME. */
static void test_op7_reconnect(void **state) {
  struct fx *f = *state;
  struct dgw_gateway *gw;

  gw = fx_start(f);
  /* Issue 15: a fresh start that only reached READY is not yet a success
   * and would back off; wait until it delivered an event. */
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(dgw_mock_conn_send_dispatch(dgw_mock_last_conn(f->mock),
                                               "TYPING_START", "{}"),
                   DGW_OK);
  assert_true(fx_wait_for(f, ready_and_streaming, 5));
  assert_int_equal(
      dgw_mock_conn_send_json(dgw_mock_last_conn(f->mock),
                              "{\"op\":7,\"d\":null,\"s\":null,\"t\":null}"),
      DGW_OK);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
  assert_int_equal(f->count[DGW_OP_RESUME], 1);
  assert_int_equal(f->last_dc.error, DGW_OK);
  assert_true(f->last_dc.will_resume);
  assert_int_equal(f->last_dc.retry_in_ms, 0); /* healthy: straight back */
  assert_int_equal(dgw_gateway_state(gw), DGW_STATE_READY);
  run_for(f->base, 100);
  assert_int_equal(f->close_codes[0], 4000);
}

/* op 7 before HELLO (the gateway may send it first): with no session yet
 * the shard reconnects and IDENTIFYs. */
static void test_op7_before_hello(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;

  (void)state;
  mc.reconnect_before_hello = 1;
  f = fx_new(&mc);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(f->disconnects, 1);
  assert_false(f->last_dc.will_resume);
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
  assert_int_equal(f->count[DGW_OP_RESUME], 0);
  assert_int_equal(f->connecting, 2);
  fx_free(f);
}

/* A gateway that upgrades but never says HELLO: the shard gives up on
 * that connection after the connect timeout and tries again. */
static void test_no_hello_times_out(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;
  uint32_t timeout = (uint32_t)(200 * time_scale());

  (void)state;
  mc.hello_delay_ms = timeout * 10;
  f = fx_new(&mc);
  assert_int_equal(dgw_options_set_timeouts(f->opt, timeout, timeout), DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_has_disconnect, 5));
  assert_int_equal(f->last_dc.error, DGW_ERR_TIMEOUT);
  assert_non_null(strstr(f->last_dc.reason, "no HELLO"));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 0);
  fx_free(f);
}

/* op 9 with d=true: RESUME. */
static void test_op9_resumable(void **state) {
  struct fx *f = *state;

  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  dgw_mock_conn_send_json(dgw_mock_last_conn(f->mock),
                          "{\"op\":9,\"d\":true,\"s\":null,\"t\":null}");
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
}

/* op 9 with d=false: forget the session, wait the (shortened) random
 * delay, IDENTIFY anew; the new session numbers from 1 again. */
static void test_op9_not_resumable(void **state) {
  struct fx *f = *state;
  struct dgw_gateway *gw;
  char first[64];
  double t0;

  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  snprintf(first, sizeof(first), "%s", dgw_gateway_session_id(gw));
  t0 = now_ms();
  dgw_mock_conn_send_json(dgw_mock_last_conn(f->mock),
                          "{\"op\":9,\"d\":false,\"s\":null,\"t\":null}");
  assert_true(fx_wait_for(f, fx_has_disconnect, 2));
  assert_int_equal(f->last_dc.action, DGW_CLOSE_NEW_SESSION);
  assert_false(f->last_dc.will_resume);
  assert_true(f->last_dc.retry_in_ms >= 30 && f->last_dc.retry_in_ms <= 60);
  assert_true(fx_wait_for(f, two_ready, 5));
  /* The wait happened (a new session at once would take a few ms).  Not
   * ">= 30": libevent arms the timer from its cached loop time, which can
   * be older than this clock's t0, so the timer may end a little before
   * 30 ms of now_ms() (seen once on a loaded machine). */
  assert_true(now_ms() - t0 >= 20);
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 2);
  assert_int_equal(f->count[DGW_OP_RESUME], 0);
  assert_string_not_equal(dgw_gateway_session_id(gw), first);
  assert_int_equal(dgw_gateway_sequence(gw), 1);
}

/* The default op 9 wait is Discord's 1-5 s. */
static void test_op9_default_wait(void **state) {
  struct dgw_options *opt = dgw_options_new();

  (void)state;
  assert_int_equal(opt->invalid_min_ms, 1000);
  assert_int_equal(opt->invalid_max_ms, 5000);
  dgw_options_free(opt);
}

struct close_case {
  uint16_t code;
  enum dgw_close_action action;
};

/* Every close code of the policy table, after READY. */
static void test_close_code_policy(void **state) {
  static const struct close_case cases[] = {
      {4000, DGW_CLOSE_RESUME},      {4001, DGW_CLOSE_RESUME},
      {4002, DGW_CLOSE_RESUME},      {4003, DGW_CLOSE_RESUME},
      {4004, DGW_CLOSE_FATAL},       {4005, DGW_CLOSE_RESUME},
      {4006, DGW_CLOSE_NEW_SESSION}, {4007, DGW_CLOSE_NEW_SESSION},
      {4008, DGW_CLOSE_RESUME},      {4009, DGW_CLOSE_NEW_SESSION},
      {4010, DGW_CLOSE_FATAL},       {4011, DGW_CLOSE_FATAL},
      {4012, DGW_CLOSE_FATAL},       {4013, DGW_CLOSE_FATAL},
      {4014, DGW_CLOSE_FATAL},       {1000, DGW_CLOSE_RESUME},
      {1001, DGW_CLOSE_RESUME},      {4999, DGW_CLOSE_RESUME},
  };

  (void)state;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct fx *f = fx_new(NULL);
    struct dgw_gateway *gw = fx_start(f);

    assert_true(fx_wait_for(f, fx_is_ready, 5));
    assert_int_equal(
        dgw_mock_conn_close(dgw_mock_last_conn(f->mock), cases[i].code, "test"),
        DGW_OK);
    assert_true(fx_wait_for(f, fx_has_disconnect, 3));
    assert_int_equal(f->last_dc.error, DGW_ERR_CLOSED);
    assert_int_equal(f->last_dc.close_code, cases[i].code);
    if (f->last_dc.action != cases[i].action)
      fail_msg("code %u: action %d", (unsigned)cases[i].code,
               (int)f->last_dc.action);
    switch (cases[i].action) {
    case DGW_CLOSE_FATAL:
      assert_true(fx_wait_for(f, fx_has_fatal, 1));
      assert_int_equal(f->fatal_code, cases[i].code);
      assert_string_equal(f->fatal_meaning, dgw_close_code_name(cases[i].code));
      assert_int_equal(dgw_gateway_state(gw), DGW_STATE_FATAL);
      run_for(f->base, 150); /* nothing may reconnect */
      assert_int_equal(f->connecting, 1);
      assert_null(dgw_gateway_session_id(gw));
      break;
    case DGW_CLOSE_NEW_SESSION:
      assert_false(f->last_dc.will_resume);
      assert_true(fx_wait_for(f, two_ready, 5));
      assert_int_equal(f->count[DGW_OP_IDENTIFY], 2);
      assert_int_equal(f->count[DGW_OP_RESUME], 0);
      break;
    case DGW_CLOSE_RESUME:
      assert_true(f->last_dc.will_resume);
      assert_true(fx_wait_for(f, fx_is_resumed, 5));
      assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
      break;
    }
    fx_free(f);
  }
}

/* The TCP connection drops in the middle of a frame: resume. */
static void test_drop_midframe_resumes(void **state) {
  struct fx *f = *state;

  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  dgw_mock_conn_drop_midframe(dgw_mock_last_conn(f->mock));
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(f->last_dc.error, DGW_ERR_CONNECTION_LOST);
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
}

/* Several faults in a row while events flow: dispatches lost in flight,
 * events generated while the shard is away, and a server that replays a
 * few events the shard already has.  The handler sees every sequence
 * number exactly once, in order. */
static int seen_all(struct fx *f) {
  return f->nseen > 0 && f->seqs[f->nseen - 1] >= 20 && f->resumed >= 3;
}

static void test_exactly_once_across_resumes(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;
  struct dgw_gateway *gw;

  (void)state;
  mc.replay_overlap = 3;
  f = fx_new(&mc);
  for (int i = 0; i < 4; i++)
    dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"n\":1}");
  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  run_for(f->base, 50); /* READY + 4: seq 5 */
  assert_int_equal(dgw_gateway_sequence(gw), 5);

  /* Fault 1: two dispatches lost in flight, then the TCP connection. */
  dgw_mock_conn_lose_next(dgw_mock_last_conn(f->mock), 2);
  dgw_mock_session_add_dispatch(f->mock, NULL, "TYPING_START", "{}");
  dgw_mock_session_add_dispatch(f->mock, NULL, "TYPING_START", "{}");
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  /* Events that happen while the shard is away. */
  dgw_mock_session_add_dispatch(f->mock, NULL, "PRESENCE_UPDATE", "{}");
  /* replays 6, 7, 8, RESUMED 9 */
  assert_true(fx_wait_for(f, fx_is_resumed, 5));

  /* Fault 2: an unknown event name, then op 7. */
  dgw_mock_session_add_dispatch(f->mock, NULL, "SOMETHING_NEW_2031",
                                "{\"x\":[1,2,3]}");
  dgw_mock_conn_send_json(dgw_mock_last_conn(f->mock),
                          "{\"op\":7,\"d\":null,\"s\":null,\"t\":null}");
  for (int i = 0; i < 3; i++)
    dgw_mock_session_add_dispatch(f->mock, NULL, "MESSAGE_CREATE", "{}");
  assert_true(fx_wait_for(f, two_resumed, 5));

  /* Fault 3: a close with a resumable code while more events queue up. */
  dgw_mock_conn_close(dgw_mock_last_conn(f->mock), 4000, "shake");
  for (int i = 0; i < 5; i++)
    dgw_mock_session_add_dispatch(f->mock, NULL, "MESSAGE_CREATE", "{}");
  assert_true(fx_wait_for(f, seen_all, 5));
  run_for(f->base, 50);

  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
  assert_int_equal(f->count[DGW_OP_RESUME], 3);
  assert_exactly_once(f, dgw_gateway_sequence(gw));
  assert_int_equal(dgw_gateway_sequence(gw),
                   dgw_mock_session_seq(f->mock, NULL));
  /* The unknown event was passed on like any other. */
  for (int i = 0; i < f->nseen; i++)
    if (strcmp(f->names[i], "SOMETHING_NEW_2031") == 0)
      goto found;
  fail_msg("the unknown event was not delivered");
found:
  fx_free(f);
}

/* The gateway refuses the resume (op 9 false): fall back to IDENTIFY on
 * the configured gateway URL. */
static void test_resume_refused_identifies(void **state) {
  struct fx *f = *state;
  struct dgw_gateway *gw;

  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  dgw_mock_invalidate_session(f->mock, NULL);
  assert_true(fx_wait_for(f, fx_has_disconnect, 3));
  assert_true(fx_wait_for(f, two_ready, 5));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 2);
  assert_int_equal(dgw_gateway_state(gw), DGW_STATE_READY);

  /* And when the session is dropped while the shard is away. */
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  dgw_mock_invalidate_session(f->mock, NULL);
  f->ready = 0;
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 3);
  assert_int_equal(f->count[DGW_OP_RESUME], 1); /* tried, refused */
}

/* A gateway URL that refuses connections: the shard goes offline and the
 * waits between attempts grow toward the cap. */
static int six_retries(struct fx *f) {
  return f->nretry >= 6;
}

static void test_backoff_growth(void **state) {
  struct fx *f = *state;
  struct sockaddr_in sin = {0};
  socklen_t slen = sizeof(sin);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  char url[64];
  struct dgw_gateway *gw;

  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  getsockname(fd, (struct sockaddr *)&sin, &slen);
  close(fd);
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u", ntohs(sin.sin_port));
  assert_int_equal(dgw_options_set_gateway_url(f->opt, url), DGW_OK);
  gw = fx_start(f);
  assert_true(fx_wait_for(f, six_retries, 5));
  assert_int_equal(f->last_dc.error, DGW_ERR_CONNECT);
  assert_int_equal(dgw_gateway_state(gw), DGW_STATE_OFFLINE);
  /* Issue 15: a fresh start never had a success, so even the first retry
   * backs off (it was immediate, 0 ms): retry k waits within
   * [step/2, step], step = 20 ms * 2^k, capped at 200 ms. */
  for (int k = 0; k < 6; k++) {
    uint32_t step = 20u << k;

    if (step > 200)
      step = 200;
    if (f->retry_delays[k] < step / 2 || f->retry_delays[k] > step)
      fail_msg("retry %d waited %u ms, expected %u..%u", k, f->retry_delays[k],
               step / 2, step);
  }
  assert_int_equal(f->ready, 0);
}

/* close() ends the session with 1000 and stays down; terminate() keeps it
 * and resumes. */
static void test_close_and_terminate(void **state) {
  struct fx *f = *state;
  struct dgw_gateway *gw;

  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(dgw_gateway_terminate(gw), DGW_OK);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(dgw_gateway_close(gw), DGW_OK);
  assert_int_equal(dgw_gateway_state(gw), DGW_STATE_CLOSING);
  assert_true(fx_wait_for(f, fx_is_closed, 3));
  assert_null(dgw_gateway_session_id(gw));
  run_for(f->base, 100);
  assert_int_equal(f->close_codes[f->ncloses - 1], 1000);
  assert_int_equal(f->connecting, 2);
  assert_int_equal(dgw_gateway_close(gw), DGW_ERR_STATE);
  assert_int_equal(dgw_gateway_terminate(gw), DGW_ERR_STATE);
  assert_int_equal(dgw_gateway_send_json(gw, "{\"op\":3,\"d\":{}}", 15),
                   DGW_ERR_STATE);
}

/* The application frees the client from inside on_dispatch: no crash, no
 * leak, no further callback. */
static void test_free_client_in_callback(void **state) {
  struct fx *f = *state;

  for (int i = 0; i < 3; i++)
    dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{}");
  f->free_on_seq = 2;
  fx_start(f);
  assert_true(fx_wait_for(f, fx_client_gone, 5));
  run_for(f->base, 100);
  assert_int_equal(f->nseen, 2);
}

/* close() from inside on_ready. */
static void test_close_in_callback(void **state) {
  struct fx *f = *state;

  f->close_on_ready = 1;
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_closed, 5));
  assert_int_equal(f->disconnects, 0);
}

/* A message that is not gateway JSON is a protocol error: resume. */
static void test_garbage_payload_resumes(void **state) {
  struct fx *f = *state;

  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  dgw_mock_conn_send_json(dgw_mock_last_conn(f->mock), "this is not JSON");
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(f->last_dc.error, DGW_ERR_JSON);
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
}

/* Text frames (compress off) and wss:// both work end to end. */
static void test_text_frames_and_tls(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;

  (void)state;
  f = fx_new(NULL);
  assert_int_equal(dgw_options_set_compress(f->opt, 0), DGW_OK);
  dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"a\":1}");
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  run_for(f->base, 50);
  assert_int_equal(f->nseen, 2);
  fx_free(f);

  mc.cert_file = cert_path("localhost.pem");
  mc.key_file = cert_path("localhost.key");
  f = fx_new(&mc);
  assert_int_equal(dgw_options_set_ca_file(f->opt, cert_path("ca.pem")),
                   DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(
      strncmp(dgw_gateway_resume_url(dgw_client_gateway(f->client, 0)),
              "wss://", 6),
      0);
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  fx_free(f);
}

/* A dispatch beyond the peek's limits (a 200-byte event name) is skipped
 * with its sequence number kept; the shard neither resumes nor loops. */
static int want_disconnects(struct fx *f) {
  return f->disconnects >= f->want;
}

static int three_ready(struct fx *f) {
  return f->ready >= 3;
}

static int seq_at_least_4(struct fx *f) {
  return f->nseen > 0 && f->seqs[f->nseen - 1] >= 4;
}

static int seq3(struct fx *f) {
  return f->nseen > 0 && f->seqs[f->nseen - 1] >= 3;
}

static void test_oversized_event_name_skipped(void **state) {
  struct fx *f = *state;
  char name[201];

  memset(name, 'X', 200);
  name[200] = '\0';
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(
      dgw_mock_conn_send_dispatch(dgw_mock_last_conn(f->mock), name, "{}"),
      DGW_OK);
  assert_int_equal(dgw_mock_conn_send_dispatch(dgw_mock_last_conn(f->mock),
                                               "MESSAGE_CREATE", "{}"),
                   DGW_OK);
  assert_true(fx_wait_for(f, seq3, 5));
  assert_int_equal(f->disconnects, 0);
  assert_int_equal(f->nseen, 2); /* READY (1) and MESSAGE_CREATE (3) */
  assert_int_equal(f->seqs[1], 3);
}

/* Garbage that comes back on every connection at the same sequence: after
 * three resumes the shard starts a new session instead of looping. */
static void test_poisoned_stream_new_session(void **state) {
  struct fx *f = *state;

  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  for (int i = 0; i < 3; i++) {
    if (i > 0) /* garbage again on the resumed connection, same s */
      assert_true(fx_wait_for(f, fx_is_resumed, 5));
    f->resumed = 0;
    f->want = f->disconnects + 1;
    dgw_mock_conn_send_json(dgw_mock_last_conn(f->mock), "garbage");
    assert_true(fx_wait_for(f, want_disconnects, 5));
    assert_int_equal(f->last_dc.error, DGW_ERR_JSON);
  }
  assert_int_equal(f->last_dc.action, DGW_CLOSE_NEW_SESSION);
  assert_true(fx_wait_for(f, two_ready, 5));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 2);
  assert_int_equal(f->count[DGW_OP_RESUME], 2);
}

/* A gateway that answers every IDENTIFY with op 9: the waits grow with
 * the backoff instead of staying at 1-5 s, so the daily identify budget
 * is not burned. */
static int eight_retries(struct fx *f) {
  return f->nretry >= 8;
}

static void test_op9_storm_backs_off(void **state) {
  struct fx *f = *state;

  f->op9_on_identify = 1;
  fx_start(f);
  assert_true(fx_wait_for(f, eight_retries, 10));
  assert_int_equal(f->ready, 0);
  /* The op 9 wait is 30-60 ms here; backoff base 20 ms, cap 200 ms. */
  for (int k = 0; k < 8; k++)
    assert_true(f->retry_delays[k] >= 30);
  assert_true(f->retry_delays[7] >= 100); /* the backoff took over */
}

/* terminate() from inside on_disconnect: one disconnect, reconnect now. */
static void test_terminate_in_on_disconnect(void **state) {
  struct fx *f = *state;

  f->terminate_in_dc = 1;
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  dgw_mock_conn_close(dgw_mock_last_conn(f->mock), 4000, "x");
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(f->disconnects, 1);
  assert_int_equal(f->connecting, 2);
}

/* A wss:// session whose READY offers a ws:// resume URL: the token must
 * not go out in clear, so the URL is ignored (with a warning) and the
 * resume uses the configured wss:// URL. */
static void test_resume_url_downgrade_refused(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;
  struct dgw_gateway *gw;
  char url[64];

  (void)state;
  mc.cert_file = cert_path("localhost.pem");
  mc.key_file = cert_path("localhost.key");
  f = fx_new(&mc);
  assert_int_equal(dgw_options_set_ca_file(f->opt, cert_path("ca.pem")),
                   DGW_OK);
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u",
           (unsigned)dgw_mock_port(f->mock));
  dgw_mock_set_ready_resume_url(f->mock, url);
  gw = fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_null(dgw_gateway_resume_url(gw));
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  /* Had it used ws:// against the TLS port, the upgrade would fail. */
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
  fx_free(f);
}

/* Save and restore: a client stops for a restart (close 4000, session
 * kept), saves its session, and a new client RESUMEs it, getting the
 * events of the gap exactly once; no IDENTIFY is spent.  A file whose
 * session the gateway forgot just falls back to IDENTIFY. */
static void test_save_and_restore(void **state) {
  struct fx *f = *state;
  char path[] = "/tmp/dgw-sessions-XXXXXX";
  int fd = mkstemp(path);
  uint32_t restored = 99;
  char why[256];
  int err = 0;

  assert_true(fd >= 0);
  close(fd);
  for (int i = 0; i < 3; i++)
    dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{}");
  fx_start(f);
  assert_true(fx_wait_for(f, seq_at_least_4, 5));
  assert_int_equal(dgw_client_stop_for_restart(f->client), DGW_OK);
  assert_true(fx_wait_for(f, fx_is_closed, 5));
  run_for(f->base, 50);
  assert_int_equal(f->close_codes[f->ncloses - 1], 4000);
  assert_int_equal(dgw_client_save_sessions(f->client, path, why, sizeof(why)),
                   DGW_OK);
  dgw_client_free(f->client);
  /* Two events happen while the bot restarts. */
  dgw_mock_session_add_dispatch(f->mock, NULL, "MESSAGE_CREATE", "{}");
  dgw_mock_session_add_dispatch(f->mock, NULL, "TYPING_START", "{}");

  f->nseen = 0;
  f->ready = 0;
  f->client = dgw_client_new(f->base, f->opt, f->cb, f, &err);
  assert_non_null(f->client);
  assert_int_equal(
      dgw_client_restore_sessions(f->client, path, &restored, why, sizeof(why)),
      DGW_OK);
  assert_int_equal(restored, 1);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_int_equal(dgw_client_restore_sessions(f->client, path, NULL, NULL, 0),
                   DGW_ERR_STATE);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  run_for(f->base, 50);
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1); /* only the first client's */
  assert_int_equal(f->resume_seq, 4);
  assert_int_equal(f->nseen, 3); /* 5, 6 and RESUMED 7 */
  assert_int_equal(f->seqs[0], 5);
  assert_int_equal(f->seqs[1], 6);
  assert_int_equal(f->seqs[2], 7);

  /* The same file once the gateway forgot the session: IDENTIFY. */
  dgw_client_free(f->client);
  dgw_mock_invalidate_session(f->mock, NULL);
  f->client = dgw_client_new(f->base, f->opt, f->cb, f, &err);
  assert_int_equal(
      dgw_client_restore_sessions(f->client, path, &restored, why, sizeof(why)),
      DGW_OK);
  assert_int_equal(restored, 1);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 2);
  unlink(path);

  /* Files that are not session files say so. */
  dgw_client_free(f->client);
  f->client = dgw_client_new(f->base, f->opt, f->cb, f, &err);
  assert_int_equal(dgw_client_restore_sessions(f->client,
                                               "/nonexistent/dgw.json",
                                               &restored, why, sizeof(why)),
                   DGW_ERR_IO);
  assert_non_null(strstr(why, "/nonexistent/dgw.json"));
  assert_int_equal(dgw_client_restore_sessions(f->client, cert_path("ca.pem"),
                                               &restored, why, sizeof(why)),
                   DGW_ERR_JSON);
}

/* The network goes away for every shard (the gateway stops listening):
 * the client goes offline as a whole, one shard probes with backoff while
 * the others wait, and when the gateway is back all of them return,
 * resuming. */
static int network_events[2];
static int conn_per_shard[4];

static void cb_network(struct dgw_client *c, int online, void *ud) {
  (void)c;
  (void)ud;
  network_events[online]++;
}

static void cb_connecting_count(struct dgw_gateway *gw, void *ud) {
  (void)ud;
  conn_per_shard[dgw_gateway_shard_id(gw)]++;
}

static int offline_now(struct fx *f) {
  return dgw_client_is_offline(f->client);
}

static int three_resumed(struct fx *f) {
  return f->resumed >= 3;
}

static void test_client_offline_and_back(void **state) {
  struct fx *f = *state;
  int before[3];
  int probing = 0;

  memset(network_events, 0, sizeof(network_events));
  memset(conn_per_shard, 0, sizeof(conn_per_shard));
  dgw_options_set_shards(f->opt, 0, 3, 3);
  dgw_callbacks_set_on_network(f->cb, cb_network);
  dgw_callbacks_set_on_connecting(f->cb, cb_connecting_count);
  fx_start(f);
  f->want = 0;
  while (f->ready < 3 && fx_wait_for(f, three_ready, 5) == 0)
    break;
  assert_int_equal(f->ready, 3);

  assert_int_equal(dgw_mock_set_listening(f->mock, 0), DGW_OK);
  dgw_mock_drop_all(f->mock);
  assert_true(fx_wait_for(f, offline_now, 5));
  assert_int_equal(network_events[0], 1);
  for (int i = 0; i < 3; i++)
    before[i] = conn_per_shard[i];
  run_for(f->base, 400);
  for (int i = 0; i < 3; i++)
    if (conn_per_shard[i] > before[i])
      probing++;
  assert_int_equal(probing, 1); /* one probe, not three storms */
  assert_true(dgw_client_is_offline(f->client));

  assert_int_equal(dgw_mock_set_listening(f->mock, 1), DGW_OK);
  assert_true(fx_wait_for(f, three_resumed, 5));
  assert_false(dgw_client_is_offline(f->client));
  assert_int_equal(network_events[1], 1);
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 3); /* nothing re-identified */
}

/* Options refuse bad values with the documented errors. */
static void test_options_validation(void **state) {
  struct dgw_options *o = dgw_options_new();
  struct event_base *base = event_base_new();
  int err = 0;

  (void)state;
  assert_int_equal(dgw_options_set_token(o, ""), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_token(o, "a\"b"), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_gateway_url(o, "http://x"), DGW_ERR_URL);
  assert_int_equal(dgw_options_set_gateway_url(o, "wss://x/?v=9"), DGW_ERR_URL);
  assert_int_equal(dgw_options_set_shards(o, 2, 1, 2),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_shards(o, 0, 0, 2),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_large_threshold(o, 49),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_presence_json(o, "[1]"), DGW_ERR_JSON);
  assert_int_equal(dgw_options_set_presence_json(o, "{bad"), DGW_ERR_JSON);
  {
    struct dgw_presence bad = {"asleep", 0, 0, NULL, 0};
    struct dgw_activity act = {"tests", DGW_ACTIVITY_PLAYING, NULL, NULL};
    struct dgw_presence good = {"idle", 0, 1, &act, 1};
    char why[128] = "";

    assert_int_equal(dgw_options_set_presence(o, &bad, why, sizeof(why)),
                     DGW_ERR_INVALID_ARGUMENT);
    assert_non_null(strstr(why, "status"));
    assert_int_equal(dgw_options_set_presence(o, &good, why, sizeof(why)),
                     DGW_OK);
    assert_non_null(strstr(o->presence_json, "\"status\":\"idle\""));
    assert_non_null(strstr(o->presence_json, "\"name\":\"tests\""));
  }
  /* No token: the client refuses to exist. */
  assert_null(dgw_client_new(base, o, NULL, NULL, &err));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
  /* A CA file that does not exist: DGW_ERR_TLS. */
  assert_int_equal(dgw_options_set_token(o, "x"), DGW_OK);
  assert_int_equal(dgw_options_set_ca_file(o, "/nonexistent/ca.pem"), DGW_OK);
  assert_null(dgw_client_new(base, o, NULL, NULL, &err));
  assert_int_equal(err, DGW_ERR_TLS);
  dgw_options_free(o);
  event_base_free(base);
}

/* The token never appears in a log line, whatever happens. */
static char logged[65536];
static size_t logged_len;

static void capture_log(enum dgw_log_level level, const char *msg, void *ud) {
  size_t n = strlen(msg);

  (void)level;
  (void)ud;
  if (logged_len + n + 1 < sizeof(logged)) {
    memcpy(logged + logged_len, msg, n);
    logged_len += n;
    logged[logged_len++] = '\n';
    logged[logged_len] = '\0';
  }
}

static void test_token_not_logged(void **state) {
  struct fx *f = *state;

  logged_len = 0;
  logged[0] = '\0';
  dgw_options_set_log(f->opt, capture_log, NULL, DGW_LOG_DEBUG);
  fx_ready_resume_fatal(f);
  assert_true(logged_len > 0);
  assert_null(strstr(logged, "SECRET"));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_identify_fields, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_heartbeat_cadence),
      cmocka_unit_test(test_server_requested_heartbeat),
      cmocka_unit_test(test_zombie_resumes),
      cmocka_unit_test_setup_teardown(test_op7_reconnect, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_op7_before_hello),
      cmocka_unit_test(test_no_hello_times_out),
      cmocka_unit_test_setup_teardown(test_op9_resumable, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_op9_not_resumable, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_op9_default_wait),
      cmocka_unit_test(test_close_code_policy),
      cmocka_unit_test_setup_teardown(test_drop_midframe_resumes, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_exactly_once_across_resumes),
      cmocka_unit_test_setup_teardown(test_resume_refused_identifies, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_backoff_growth, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_close_and_terminate, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_free_client_in_callback, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_close_in_callback, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_garbage_payload_resumes, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_text_frames_and_tls),
      cmocka_unit_test_setup_teardown(test_oversized_event_name_skipped,
                                      fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_poisoned_stream_new_session,
                                      fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_op9_storm_backs_off, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_terminate_in_on_disconnect, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_resume_url_downgrade_refused),
      cmocka_unit_test_setup_teardown(test_save_and_restore, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_client_offline_and_back, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_options_validation),
      cmocka_unit_test_setup_teardown(test_token_not_logged, fx_setup,
                                      fx_teardown),
  };
  ignore_sigpipe();
  return cmocka_run_group_tests_name("gateway", tests, NULL, NULL);
}
