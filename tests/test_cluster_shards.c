/*
 * Integration tests: a managed client (lib/client_shards.h) against the
 * mock.  The owner (here the test, later the cluster) takes a shard, with
 * or without a stored session, releases it and gets its final session
 * back, and fences every write.  Each test says what it feeds and what
 * would break without the code under test.
 */
#include "config.h"

#include <string.h>

#include "client.h"
#include "client_shards.h"
#include "fixture.h"
#include "payload.h"

#define EVENTS 40

/* What the release reported, and whether the fence vetoes. */
struct owner {
  int released;
  char session[64];
  int64_t seq;
  int has_session;
  int veto;
  int vetoed; /* writes the fence refused */
};

static struct owner own;

static int fence(void *data, uint32_t shard_id) {
  struct owner *o = data;

  (void)shard_id;
  if (o->veto)
    o->vetoed++;
  return !o->veto;
}

static void released(struct dgw_client *c, uint32_t shard_id,
                     const struct client_shard_session *s, void *data) {
  struct owner *o = data;

  (void)c;
  assert_int_equal(shard_id, 0);
  o->released++;
  o->has_session = s->session_id != NULL;
  snprintf(o->session, sizeof(o->session), "%s",
           s->session_id != NULL ? s->session_id : "");
  o->seq = s->seq;
}

static int is_released(struct fx *f) {
  (void)f;
  return own.released > 0;
}

static int got_events(struct fx *f) {
  return f->since_up >= f->want;
}

static int all_events(struct fx *f) {
  return f->last_seq >= f->want;
}

/* A managed client against a mock streaming EVENTS dispatches 5 ms apart;
 * nothing starts on dgw_client_start(). */
static struct fx *managed_start(void) {
  struct dgw_mock_config mc = {0};
  struct fx *f;

  memset(&own, 0, sizeof(own));
  mc.dispatch_interval_ms = 5;
  f = fx_new(&mc);
  for (int i = 0; i < EVENTS; i++)
    assert_int_equal(
        dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"n\":1}"), DGW_OK);
  fx_client_new(f);
  assert_int_equal(client_shards_manage(f->client, fence, &own), DGW_OK);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  /* Managed: the client connects nothing on its own. */
  run_for(f->base, 100);
  assert_int_equal(f->connecting, 0);
  assert_int_equal(client_shard_taken(f->client, 0), 0);
  return f;
}

/* Take (IDENTIFY), release mid-stream (session and last seq handed back,
 * closed with 4000, not 1000), events added while nobody holds the shard,
 * take again with the stored session: RESUME (not IDENTIFY) at that seq,
 * and every event arrives exactly once, in order.  Without the release
 * waiting for CLOSED the seq handed back could be short of the events
 * delivered (repeats); with a 1000 close the RESUME would be refused. */
static void test_take_release_take_resumes(void **state) {
  struct fx *f = managed_start();
  struct client_shard_session ss;
  char sid[64];
  int64_t seq;

  (void)state;
  assert_int_equal(client_shard_take(f->client, 0, NULL), DGW_OK);
  assert_int_equal(client_shard_take(f->client, 0, NULL), DGW_ERR_STATE);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  f->want = 10;
  assert_true(fx_wait_for(f, got_events, 5));
  assert_int_equal(client_shard_release(f->client, 0, released, &own), DGW_OK);
  assert_true(fx_wait_for(f, is_released, 5));
  assert_int_equal(own.released, 1);
  assert_true(own.has_session);
  assert_int_equal(own.seq, f->last_seq); /* the last seq this process saw */
  assert_true(own.seq < EVENTS + 1);      /* released mid-stream */
  assert_int_equal(f->ncloses, 1);
  assert_int_equal(f->close_codes[0], 4000);
  assert_int_equal(client_shard_taken(f->client, 0), 0);
  snprintf(sid, sizeof(sid), "%s", own.session);
  seq = own.seq;
  /* Nobody holds it: these wait in the session's history. */
  for (int i = 0; i < 5; i++)
    assert_int_equal(dgw_mock_session_add_dispatch(f->mock, sid, "TYPING_START",
                                                   "{\"w\":1}"),
                     DGW_OK);
  run_for(f->base, 50);

  ss.session_id = sid;
  ss.seq = seq;
  ss.resume_url = NULL;
  assert_int_equal(client_shard_take(f->client, 0, &ss), DGW_OK);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
  assert_int_equal(f->count[DGW_OP_RESUME], 1);
  assert_int_equal(f->resume_seq, seq);
  assert_string_equal(f->resume_session, sid);
  /* READY's own seq, the script, the 5 added: all once, in order. */
  f->want = EVENTS + 1 + 5;
  assert_true(fx_wait_for(f, all_events, 10));
  assert_int_equal(f->out_of_order, 0);
  {
    int64_t next = 0;

    for (int i = 0; i < f->nseen && i < FX_MAX_SEEN; i++) {
      if (f->seqs[i] == 0)
        continue; /* RESUMED has no s */
      if (next != 0)
        assert_int_equal(f->seqs[i], next);
      next = f->seqs[i] + 1;
    }
    assert_int_equal(next, EVENTS + 1 + 5 + 1);
  }
  fx_free(f);
}

/* The fence: once it says no, the shard writes nothing (the mock asks for
 * a heartbeat and gets none; a command does not go out), and a drop ends
 * the connection with no close frame.  Without the check in the shard's
 * write path the heartbeat would reach the mock. */
static void test_fence_and_drop(void **state) {
  struct fx *f = managed_start();
  struct dgw_mock_conn *conn;
  int beats;

  (void)state;
  assert_int_equal(client_shard_take(f->client, 0, NULL), DGW_OK);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  conn = dgw_mock_last_conn(f->mock);
  assert_non_null(conn);
  assert_int_equal(dgw_mock_conn_request_heartbeat(conn), DGW_OK);
  f->want = f->nbeats + 1;
  assert_true(fx_wait_count(f, &f->nbeats, f->want, 5));
  own.veto = 1;
  beats = f->nbeats;
  assert_int_equal(dgw_mock_conn_request_heartbeat(conn), DGW_OK);
  dgw_gateway_send_json(dgw_client_gateway(f->client, 0),
                        "{\"op\":3,\"d\":{\"status\":\"idle\",\"since\":0,"
                        "\"activities\":[],\"afk\":false}}",
                        strlen("{\"op\":3,\"d\":{\"status\":\"idle\",\"since\":"
                               "0,\"activities\":[],\"afk\":false}}"));
  run_for(f->base, 300);
  assert_int_equal(f->nbeats, beats);
  assert_int_equal(f->count[DGW_OP_PRESENCE_UPDATE], 0);
  assert_true(own.vetoed >= 1);
  assert_int_equal(client_shard_drop(f->client, 0), DGW_OK);
  assert_int_equal(client_shard_taken(f->client, 0), 0);
  assert_int_equal(dgw_gateway_state(dgw_client_gateway(f->client, 0)),
                   DGW_STATE_IDLE);
  run_for(f->base, 200);
  assert_int_equal(dgw_mock_conn_count(f->mock), 0);
  for (int i = 0; i < f->ncloses; i++)
    assert_int_equal(f->close_codes[i], 0); /* no close frame from us */
  assert_int_equal(f->count[DGW_OP_RESUME], 0);
  fx_free(f);
}

/* Releasing a shard never taken reports at once, with no session; a shard
 * the client does not have is refused. */
static void test_release_idle_and_bad_shard(void **state) {
  struct fx *f = managed_start();

  (void)state;
  assert_int_equal(client_shard_release(f->client, 0, released, &own), DGW_OK);
  assert_true(fx_wait_for(f, is_released, 5));
  assert_false(own.has_session);
  assert_int_equal(client_shard_take(f->client, 7, NULL),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(client_shard_release(f->client, 7, released, &own),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(f->connecting, 0);
  fx_free(f);
}

/* dgw_options_set_cluster(): a malformed Redis URL is DGW_ERR_URL, a bad
 * name or lease DGW_ERR_INVALID_ARGUMENT, NULL turns it off; built
 * without hiredis every call is DGW_ERR_UNSUPPORTED. */
static void test_cluster_option(void **state) {
  struct dgw_options *opt = dgw_options_new();

  (void)state;
#ifdef HAVE_HIREDIS
  assert_int_equal(dgw_options_set_cluster(opt, "http://x", "bot", 0),
                   DGW_ERR_URL);
  assert_int_equal(dgw_options_set_cluster(opt, "unix:///x", "a b", 0),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_cluster(opt, "unix:///x", "bot", 5),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      dgw_options_set_cluster(opt, "redis://:pw@h:1/2", "b-1.x", 0), DGW_OK);
  assert_int_equal(dgw_options_set_cluster(opt, NULL, NULL, 0), DGW_OK);
#else
  assert_int_equal(dgw_options_set_cluster(opt, "unix:///x", "bot", 0),
                   DGW_ERR_UNSUPPORTED);
#endif
  assert_int_equal(dgw_options_set_cluster(NULL, "unix:///x", "bot", 0),
                   DGW_ERR_INVALID_ARGUMENT);
  dgw_options_free(opt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_take_release_take_resumes),
      cmocka_unit_test(test_fence_and_drop),
      cmocka_unit_test(test_release_idle_and_bad_shard),
      cmocka_unit_test(test_cluster_option),
  };

  ignore_sigpipe(); /* a killed redis-server or peer: EPIPE, not death */
  return cmocka_run_group_tests(tests, NULL, NULL);
}
