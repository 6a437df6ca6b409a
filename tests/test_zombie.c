/*
 * Integration tests of issue 19 against the in-process mock: what counts
 * as a zombie.  A busy loop must not mistake its own lateness for a dead
 * connection (a handler that blocks the loop longer than the heartbeat
 * interval while ACKs keep coming: no zombie), and a connection that
 * truly stopped ACKing is still dropped within two intervals and resumed.
 */
#include "config.h"

#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fixture.h"
#include "payload.h"
#include "ws.h"

#define BEAT_MS 200

/* Blocks the thread, as a handler doing slow work does. */
static void stall_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0)
    ;
}

static int stalls;

/* Each STALL event blocks the loop for 1.5 intervals. */
static void stall_on_dispatch(struct fx *f, struct dgw_gateway *gw,
                              const struct dgw_event *ev) {
  (void)f;
  (void)gw;
  if (strcmp(dgw_event_name(ev), "STALL") == 0) {
    stall_ms(BEAT_MS * 3 / 2);
    stalls++;
  }
}

static int three_stalls(struct fx *f) {
  (void)f;
  return stalls >= 3;
}

static struct dgw_client_stats client_stats(struct fx *f) {
  struct dgw_client_stats st;

  memset(&st, 0, sizeof(st));
  st.size = sizeof(st);
  assert_int_equal(dgw_client_stats(f->client, &st), DGW_OK);
  return st;
}

/*
 * Input: three events arrive together and the handler blocks the loop
 * 300 ms on each, with a 200 ms heartbeat interval; the mock ACKs every
 * beat at once.  After the first, the due beat goes out; after the second
 * that beat is overdue and its ACK unread (or not even asked for yet: our
 * beat was still in the output buffer).  Expected: no zombie, no
 * reconnect, the beats keep being ACKed.  Before issue 19: "no heartbeat
 * ACK before the next beat: zombied connection" after the second event.
 */
static void test_busy_handler_is_no_zombie(void **state) {
  struct dgw_mock_config mc = {0};
  struct dgw_client_stats st;
  struct dgw_mock_stats ms;
  struct fx *f;
  int i;

  (void)state;
  stalls = 0;
  mc.heartbeat_interval_ms = BEAT_MS;
  f = fx_new(&mc);
  f->on_dispatch = stall_on_dispatch;
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  run_for(f->base, BEAT_MS); /* a beat or two, ACKed */
  for (i = 0; i < 3; i++)
    assert_int_equal(
        dgw_mock_session_add_dispatch(f->mock, NULL, "STALL", "{}"), DGW_OK);
  assert_true(fx_wait_for(f, three_stalls, 5));
  run_for(f->base, 3 * BEAT_MS); /* the credited deadlines run out */
  st = client_stats(f);
  assert_int_equal(st.zombies, 0);
  assert_int_equal(st.reconnects, 0);
  assert_int_equal(f->disconnects, 0);
  dgw_mock_get_stats(f->mock, &ms);
  assert_int_equal(ms.connections, 1);
  assert_true(ms.acks_sent >= 3);
  fx_free(f);
}

/*
 * Input: the mock stops ACKing (its no-ack fault) on an idle loop with a
 * 200 ms interval.  Expected: the zombie is declared within two intervals
 * of the last ACK (plus scheduling slack), counted in the stats, and the
 * shard RESUMEs its session (no second IDENTIFY) once ACKs come back.
 */
static void test_no_ack_is_zombie_within_two_intervals(void **state) {
  struct dgw_mock_config mc = {0};
  struct dgw_client_stats st;
  struct fx *f;
  uint64_t t0, took;

  (void)state;
  mc.heartbeat_interval_ms = BEAT_MS;
  f = fx_new(&mc);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  run_for(f->base, BEAT_MS);
  dgw_mock_set_ack(f->mock, 0);
  t0 = dgw_monotonic_ms();
  assert_true(fx_wait_for(f, fx_has_disconnect, 3));
  took = dgw_monotonic_ms() - t0;
  assert_true(took <= 2 * BEAT_MS + 100);
  assert_int_equal(f->last_dc.error, DGW_ERR_TIMEOUT);
  assert_non_null(strstr(f->last_dc.reason, "zombie"));
  assert_true(f->last_dc.will_resume);
  dgw_mock_set_ack(f->mock, 1);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  st = client_stats(f);
  assert_int_equal(st.zombies, 1);
  assert_int_equal(f->count[DGW_OP_IDENTIFY], 1);
  assert_int_equal(f->count[DGW_OP_RESUME], 1);
  fx_free(f);
}

#define PACED_SHARDS 40
#define PACED_MAX 4

static int in_flight, peak_in_flight;

static int connecting_state(enum dgw_state s) {
  return s == DGW_STATE_CONNECTING || s == DGW_STATE_HELLO ||
         s == DGW_STATE_RESUMING;
}

/* Counts the shards between "connecting" and the end of their handshake. */
static void count_in_flight(struct dgw_gateway *gw, enum dgw_state from,
                            enum dgw_state to, void *ud) {
  (void)gw;
  (void)ud;
  in_flight += connecting_state(to) - connecting_state(from);
  if (in_flight > peak_in_flight)
    peak_in_flight = in_flight;
}

static int all_ready(struct fx *f) {
  return f->ready >= PACED_SHARDS;
}

static int all_resumed(struct fx *f) {
  return f->resumed >= PACED_SHARDS;
}

/*
 * Input: 40 shards, at most 4 connection attempts in flight
 * (dgw_options_set_max_connecting), every connection cut at once by the
 * mock (a network cut; the sessions survive).  Expected: all 40 come
 * back and RESUME, never more than 4 between "connecting" and RESUMED at
 * a time, no IDENTIFY, no zombie.  Without pacing all 40 reconnect at
 * once (issue 20: a connection that delivered reconnects without delay).
 */
static void test_mass_resume_is_paced(void **state) {
  struct dgw_mock_stats before, after;
  struct dgw_client_stats st;
  struct fx *f;

  struct dgw_mock_config mc = {0};

  (void)state;
  in_flight = peak_in_flight = 0;
  mc.detached_max = PACED_SHARDS; /* every session stays resumable */
  f = fx_new(&mc);
  assert_int_equal(
      dgw_options_set_shards(f->opt, 0, PACED_SHARDS, PACED_SHARDS), DGW_OK);
  assert_int_equal(dgw_options_set_max_connecting(f->opt, PACED_MAX), DGW_OK);
  dgw_callbacks_set_on_state(f->cb, count_in_flight);
  fx_start(f);
  assert_true(fx_wait_for(f, all_ready, 20));
  assert_int_equal(in_flight, 0);
  assert_true(peak_in_flight <= PACED_MAX + PACED_SHARDS); /* start: HELLO
                                                      waits for IDENTIFY */
  peak_in_flight = 0;
  dgw_mock_get_stats(f->mock, &before);
  dgw_mock_drop_all(f->mock);
  assert_true(fx_wait_for(f, all_resumed, 20));
  dgw_mock_get_stats(f->mock, &after);
  assert_true(peak_in_flight <= PACED_MAX);
  assert_true(peak_in_flight >= 2); /* paced, not serialised */
  assert_int_equal(after.identifies, before.identifies);
  assert_int_equal(after.resumes_ok - before.resumes_ok, PACED_SHARDS);
  memset(&st, 0, sizeof(st));
  st.size = sizeof(st);
  assert_int_equal(dgw_client_stats(f->client, &st), DGW_OK);
  assert_int_equal(st.resumes, PACED_SHARDS);
  assert_int_equal(st.zombies, 0);
  assert_int_equal(st.shards_ready, PACED_SHARDS);
  fx_free(f);
}

/* Input: dgw_options_set_max_connecting() out of range.  Expected:
 * DGW_ERR_INVALID_ARGUMENT; 0 (no limit) and 1 are fine. */
static void test_max_connecting_option(void **state) {
  struct dgw_options *opt = dgw_options_new();

  (void)state;
  assert_int_equal(dgw_options_set_max_connecting(NULL, 4),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_max_connecting(opt, 65537),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_max_connecting(opt, 0), DGW_OK);
  assert_int_equal(dgw_options_set_max_connecting(opt, 1), DGW_OK);
  dgw_options_free(opt);
}

struct raw {
  int opened, messages, closed;
};

static void raw_open(struct dgw_ws *ws, void *ud) {
  (void)ws;
  ((struct raw *)ud)->opened = 1;
}

static void raw_message(struct dgw_ws *ws, int binary, const uint8_t *data,
                        size_t len, void *ud) {
  (void)ws;
  (void)binary;
  (void)data;
  (void)len;
  ((struct raw *)ud)->messages++;
}

static void raw_close(struct dgw_ws *ws, int err, void *ud) {
  (void)ws;
  (void)err;
  ((struct raw *)ud)->closed = 1;
}

/*
 * Input: a message that has reached the client's socket but that the loop
 * has not read yet (the mock wrote it in this loop turn).  Expected:
 * dgw_ws_read_waiting() delivers it at once, before the loop turns again.
 * That is the look a shard takes before it calls a connection a zombie.
 */
static void test_read_waiting_delivers_unread(void **state) {
  static const struct dgw_ws_callbacks cb = {raw_open, raw_message, raw_close};
  struct dgw_ws_config cfg;
  struct raw r = {0, 0, 0};
  struct dgw_ws *ws;
  struct fx *f;
  char url[80];
  int err = 0, turns;

  (void)state;
  f = fx_new(NULL);
  memset(&cfg, 0, sizeof(cfg));
  ws = dgw_ws_new(f->base, &cfg, &cb, &r, &err);
  assert_non_null(ws);
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u/?v=10&encoding=json",
           (unsigned)dgw_mock_port(f->mock));
  assert_int_equal(dgw_ws_connect(ws, url), DGW_OK);
  for (turns = 0; turns < 2000 && r.messages < 1; turns++)
    event_base_loop(f->base, EVLOOP_ONCE); /* open, then HELLO */
  assert_true(r.opened);
  assert_int_equal(r.messages, 1);
  assert_int_equal(dgw_mock_conn_send_json(dgw_mock_last_conn(f->mock),
                                           "{\"op\":11,\"d\":null}"),
                   DGW_OK);
  /* One turn: the mock writes; the client's read event can only fire in a
   * later turn. */
  event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
  if (r.messages == 1) {
    usleep(2000); /* loopback delivery */
    dgw_ws_read_waiting(ws);
  }
  assert_int_equal(r.messages, 2);
  assert_false(r.closed);
  dgw_ws_free(ws);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_busy_handler_is_no_zombie),
      cmocka_unit_test(test_no_ack_is_zombie_within_two_intervals),
      cmocka_unit_test(test_mass_resume_is_paced),
      cmocka_unit_test(test_max_connecting_option),
      cmocka_unit_test(test_read_waiting_delivers_unread),
  };
  return cmocka_run_group_tests_name("zombie", tests, NULL, NULL);
}
