/*
 * The client-against-mock fixture (see fixture.h): the recorders behind
 * the client's callbacks and the mock's hooks, and the setup they share.
 */
#include "config.h"

#include "fixture.h"

#include <json-c/json.h>

#include "client.h"
#include "payload.h"
#include "router.h"

/* --- the client's log --- */

static void fx_log(enum dgw_log_level level, const char *msg, void *ud) {
  test_log(level, msg, NULL);
  fx_log_line(ud, msg);
}

void fx_log_line(struct fx *f, const char *line) {
  if (f->nlines < FX_MAX_LINES)
    f->lines[f->nlines++] = strdup(line);
}

int fx_find_line(struct fx *f, int from, const char *needle) {
  for (int i = from; i < f->nlines; i++)
    if (strstr(f->lines[i], needle) != NULL)
      return i;
  return -1;
}

int fx_count_lines(struct fx *f, const char *needle) {
  int n = 0;

  for (int i = 0; i < f->nlines; i++)
    if (strstr(f->lines[i], needle) != NULL)
      n++;
  return n;
}

/* --- application callbacks --- */

static void cb_state(struct dgw_gateway *gw, enum dgw_state from,
                     enum dgw_state to, void *ud) {
  struct fx *f = ud;
  (void)gw;
  (void)from;
  if (f->nstates < 256)
    f->state_log[f->nstates++] = to;
  if (to == DGW_STATE_HELLO && f->hello_ms == 0)
    f->hello_ms = now_ms();
  if (to == DGW_STATE_RESUMING && f->drop_on_resuming)
    dgw_mock_drop_all(f->mock);
}

static void cb_connecting(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->connecting++;
}

static void cb_ready(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;

  f->ready++;
  f->since_up = 0;
  if (f->close_on_ready)
    assert_int_equal(dgw_gateway_close(gw), DGW_OK);
}

static void cb_resumed(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->resumed++;
  f->since_up = 0;
}

static void cb_disconnect(struct dgw_gateway *gw,
                          const struct dgw_disconnect *info, void *ud) {
  struct fx *f = ud;
  f->disconnects++;
  f->last_dc = *info;
  snprintf(f->last_dc_reason, sizeof(f->last_dc_reason), "%s", info->reason);
  f->last_dc.reason = f->last_dc_reason;
  if (f->nretry < 64)
    f->retry_delays[f->nretry++] = info->retry_in_ms;
  if (f->terminate_in_dc)
    assert_int_equal(dgw_gateway_terminate(gw), DGW_OK);
}

static void cb_fatal(struct dgw_gateway *gw, uint16_t code, const char *meaning,
                     void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->fatal++;
  f->fatal_code = code;
  snprintf(f->fatal_meaning, sizeof(f->fatal_meaning), "%s", meaning);
}

static void cb_dispatch(struct dgw_gateway *gw, const struct dgw_event *ev,
                        void *ud) {
  struct fx *f = ud;
  size_t len;
  const char *d = dgw_event_data(ev, &len);

  assert_non_null(d);
  assert_int_equal(dgw_event_shard(ev), dgw_gateway_shard_id(gw));
  if (f->nseen < FX_MAX_SEEN) {
    f->seqs[f->nseen] = dgw_event_seq(ev);
    snprintf(f->names[f->nseen], sizeof(f->names[0]), "%s", dgw_event_name(ev));
  }
  f->nseen++;
  if (strcmp(dgw_event_name(ev), "READY") != 0 &&
      strcmp(dgw_event_name(ev), "RESUMED") != 0) {
    if (dgw_event_seq(ev) <= f->last_seq)
      f->out_of_order++;
    f->last_seq = dgw_event_seq(ev);
    f->since_up++;
  }
  if (f->on_dispatch != NULL)
    f->on_dispatch(f, gw, ev);
  if (f->free_on_seq && dgw_event_seq(ev) == f->free_on_seq) {
    dgw_client_free(f->client);
    f->client = NULL;
  }
}

void fx_on_members(struct dgw_gateway *gw, int error,
                   struct json_object *result, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->members_done++;
  f->members_err = error;
  json_object_put(f->members_result);
  f->members_result = json_object_get(result);
}

void fx_on_voice(struct dgw_gateway *gw, int error, struct json_object *st,
                 struct json_object *sv, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->voice_done++;
  f->voice_err = error;
  json_object_put(f->voice_state);
  json_object_put(f->voice_server);
  f->voice_state = json_object_get(st);
  f->voice_server = json_object_get(sv);
}

/* --- mock hooks --- */

static void record_resume(struct fx *f, const char *json, size_t len) {
  struct dgw_envelope env;
  struct json_object *d, *v;

  assert_int_equal(dgw_envelope_peek(json, len, &env), DGW_OK);
  d = dgw_payload_parse(env.d, env.d_len, NULL);
  assert_non_null(d);
  assert_true(json_object_object_get_ex(d, "seq", &v));
  f->resume_seq = json_object_get_int64(v);
  assert_true(json_object_object_get_ex(d, "session_id", &v));
  snprintf(f->resume_session, sizeof(f->resume_session), "%s",
           json_object_get_string(v));
  json_object_put(d);
}

static void record_beat(struct fx *f, const char *json, size_t len) {
  struct dgw_envelope env;

  if (f->nbeats >= FX_MAX_BEATS)
    return;
  assert_int_equal(dgw_envelope_peek(json, len, &env), DGW_OK);
  f->beat_ms[f->nbeats] = now_ms();
  snprintf(f->beat_d[f->nbeats], sizeof(f->beat_d[0]), "%.*s", (int)env.d_len,
           env.d);
  f->nbeats++;
}

/* The name of the first activity of an op 3, when it has one. */
static void record_activity(struct fx *f, const char *json) {
  struct json_object *root = json_tokener_parse(json);
  struct json_object *d, *acts, *name;

  if (f->nactivity < FX_MAX_ACTIVITY && root != NULL &&
      json_object_object_get_ex(root, "d", &d) &&
      json_object_object_get_ex(d, "activities", &acts) &&
      json_object_array_length(acts) > 0 &&
      json_object_object_get_ex(json_object_array_get_idx(acts, 0), "name",
                                &name))
    snprintf(f->activity[f->nactivity++], sizeof(f->activity[0]), "%s",
             json_object_get_string(name));
  json_object_put(root);
}

static void mk_payload(struct dgw_mock *m, struct dgw_mock_conn *conn, int op,
                       const char *json, size_t len, void *ud) {
  struct fx *f = ud;

  (void)m;
  if (op < 0 || op >= FX_MAX_OP)
    return;
  f->count[op]++;
  snprintf(f->last[op], sizeof(f->last[0]), "%.*s", (int)len, json);
  if (op != DGW_OP_HEARTBEAT && f->nsent < FX_MAX_SENT)
    f->sent_ops[f->nsent++] = op;
  switch (op) {
  case DGW_OP_HEARTBEAT:
    record_beat(f, json, len);
    break;
  case DGW_OP_IDENTIFY:
    if (f->op9_on_identify)
      dgw_mock_conn_send_json(conn,
                              "{\"op\":9,\"d\":false,\"s\":null,\"t\":null}");
    break;
  case DGW_OP_RESUME:
    record_resume(f, json, len);
    break;
  case DGW_OP_PRESENCE_UPDATE:
    record_activity(f, f->last[op]);
    break;
  default:
    break;
  }
  if (f->fatal_on_op != 0 && op == f->fatal_on_op)
    dgw_mock_conn_close(conn, 4004, "Authentication failed");
}

static void mk_close(struct dgw_mock *m, struct dgw_mock_conn *conn, int code,
                     void *ud) {
  struct fx *f = ud;
  (void)m;
  (void)conn;
  if (f->ncloses < 64)
    f->close_codes[f->ncloses++] = code;
}

/* --- life cycle --- */

struct fx *fx_new(struct dgw_mock_config *mc) {
  struct fx *f = calloc(1, sizeof(*f));
  struct dgw_mock_config def = {0};
  char url[128];
  int err = 0;

  assert_non_null(f);
  f->base = event_base_new();
  if (mc == NULL)
    mc = &def;
  if (mc->heartbeat_interval_ms == 0)
    mc->heartbeat_interval_ms = 30000;
  mc->log = test_log;
  mc->hooks.on_payload = mk_payload;
  mc->hooks.on_close = mk_close;
  mc->user_data = f;
  f->mock = dgw_mock_new(f->base, mc, &err);
  if (f->mock == NULL)
    fail_msg("mock: %s", dgw_strerror(err));

  f->opt = dgw_options_new();
  assert_int_equal(dgw_options_set_token(f->opt, "t0ken.SECRET"), DGW_OK);
  /* Every intent: the mock filters dispatches by intents as Discord does,
   * and the tests push bare events ("{}": DMs, for the filter) of any
   * kind; tests/test_mock_intents.c tests the filter itself. */
  assert_int_equal(dgw_options_set_intents(f->opt, DGW_INTENTS_ALL), DGW_OK);
  snprintf(url, sizeof(url), "%s://%s:%u", mc->cert_file ? "wss" : "ws",
           mc->cert_file ? "localhost" : "127.0.0.1",
           (unsigned)dgw_mock_port(f->mock));
  assert_int_equal(dgw_options_set_gateway_url(f->opt, url), DGW_OK);
  dgw_options_set_log(f->opt, fx_log, f, DGW_LOG_DEBUG);
  /* Re-IDENTIFY quickly: the 5 s identify window is tested on its own. */
  dgw_options_set_identify_limits(f->opt, 1, 10);
  assert_int_equal(dgw_options_set_reconnect(f->opt, 20, 200, 60000), DGW_OK);
  assert_int_equal(dgw_options_set_invalid_session_wait(f->opt, 30, 60),
                   DGW_OK);
  assert_int_equal(dgw_options_set_timeouts(f->opt,
                                            (uint32_t)(3000 * time_scale()),
                                            (uint32_t)(500 * time_scale())),
                   DGW_OK);

  f->cb = dgw_callbacks_new();
  dgw_callbacks_set_on_state(f->cb, cb_state);
  dgw_callbacks_set_on_connecting(f->cb, cb_connecting);
  dgw_callbacks_set_on_ready(f->cb, cb_ready);
  dgw_callbacks_set_on_resumed(f->cb, cb_resumed);
  dgw_callbacks_set_on_disconnect(f->cb, cb_disconnect);
  dgw_callbacks_set_on_fatal(f->cb, cb_fatal);
  dgw_callbacks_set_on_dispatch(f->cb, cb_dispatch);
  return f;
}

void fx_client_new(struct fx *f) {
  int err = 0;

  f->client = dgw_client_new(f->base, f->opt, f->cb, f, &err);
  if (f->client == NULL)
    fail_msg("client: %s", dgw_strerror(err));
}

struct dgw_gateway *fx_start(struct fx *f) {
  if (f->client == NULL)
    fx_client_new(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  return dgw_client_gateway(f->client, 0);
}

void fx_free(struct fx *f) {
  if (f == NULL)
    return;
  dgw_client_free(f->client);
  dgw_mock_free(f->mock);
  dgw_options_free(f->opt);
  dgw_callbacks_free(f->cb);
  json_object_put(f->members_result);
  json_object_put(f->voice_state);
  json_object_put(f->voice_server);
  event_base_free(f->base);
  for (int i = 0; i < f->nlines; i++)
    free(f->lines[i]);
  free(f);
}

int fx_setup(void **state) {
  *state = fx_new(NULL);
  return 0;
}

int fx_teardown(void **state) {
  fx_free(*state);
  *state = NULL;
  return 0;
}

/* --- waiting --- */

struct fx_wait {
  struct fx *f;
  int (*pred)(struct fx *);
};

static int fx_wait_pred(void *arg) {
  struct fx_wait *w = arg;

  return w->pred(w->f);
}

int fx_wait_for(struct fx *f, int (*pred)(struct fx *), double seconds) {
  struct fx_wait w = {f, pred};

  return loop_until(f->base, fx_wait_pred, &w, seconds);
}

struct fx_count {
  const int *counter;
  int n;
};

static int fx_count_pred(void *arg) {
  struct fx_count *c = arg;

  return *c->counter >= c->n;
}

int fx_wait_count(struct fx *f, const int *counter, int n, double seconds) {
  struct fx_count c = {counter, n};

  return loop_until(f->base, fx_count_pred, &c, seconds);
}

struct fx_dispatches {
  const struct fx *f;
  uint64_t n;
};

static int fx_dispatches_pred(void *arg) {
  struct fx_dispatches *d = arg;

  return fx_stats(d->f).dispatches >= d->n;
}

int fx_wait_dispatches(struct fx *f, uint64_t n, double seconds) {
  struct fx_dispatches d = {f, n};

  return loop_until(f->base, fx_dispatches_pred, &d, seconds);
}

void fx_ready_resume_fatal(struct fx *f) {
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  dgw_mock_conn_close(dgw_mock_last_conn(f->mock), 4004, "bad token");
  assert_true(fx_wait_for(f, fx_has_fatal, 5));
}

int fx_is_ready(struct fx *f) {
  return f->ready >= 1;
}

int fx_is_resumed(struct fx *f) {
  return f->resumed >= 1;
}

int fx_has_fatal(struct fx *f) {
  return f->fatal >= 1;
}

int fx_has_disconnect(struct fx *f) {
  return f->disconnects >= 1;
}

int fx_is_closed(struct fx *f) {
  return f->client != NULL &&
         dgw_gateway_state(dgw_client_gateway(f->client, 0)) ==
             DGW_STATE_CLOSED;
}

int fx_client_gone(struct fx *f) {
  return f->client == NULL;
}

/* --- the client's internals, read here only --- */

struct dgw_client_stats fx_stats(const struct fx *f) {
  struct dgw_client_stats st;

  assert_non_null(f->client);
  memset(&st, 0, sizeof(st));
  st.size = sizeof(st);
  assert_int_equal(dgw_client_stats(f->client, &st), DGW_OK);
  return st;
}

size_t fx_plugins_refused(const struct fx *f) {
  assert_non_null(f->client);
  return plugins_refused(f->client->plugins);
}
