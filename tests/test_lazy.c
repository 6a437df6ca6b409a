/*
 * Lazy connect (issue 17, item 3; lib/gateway_lazy.c, the identify
 * queue's early()): a shard with no session opens its connection only
 * when its identify turn is near; a shard with a session connects at once.
 * The queue's unit tests run on a private loop; the client's against the
 * mock gateway on loopback, counting the connections the mock holds
 * against the IDENTIFYs it has read.  No test asserts a speed: spacing is
 * asserted as a lower bound only (timers never fire early).
 */
#include "config.h"

#include "harness.h"

#include <unistd.h>

#include <json-c/json.h>

#include "identify.h"
#include "mock.h"
#include "payload.h"

/* ------------------------------------------------------ the queue */

struct calls {
  double near_at[8], grant_at[8];
  int nears, grants;
  int requested[8];
  int grant_unasked;     /* a grant before the shard's request() */
  int max_woken_waiting; /* woken, not yet granted, at once */
  int done;
  struct dgw_identify_queue *q;
  struct event *connect[8]; /* the shard "connects": request() */
};

struct shard_ev {
  struct calls *c;
  int i;
};

/* The shard is connected (HELLO): it asks, keeping its place. */
static void q_connected(evutil_socket_t fd, short what, void *arg) {
  struct shard_ev *s = arg;

  (void)fd;
  (void)what;
  s->c->requested[s->i] = 1;
  s->c->q->request(s->c->q, (void *)(intptr_t)(s->i + 1), 0);
}

static void q_near(void *shard, void *ud) {
  struct calls *c = ud;
  int i = (int)(intptr_t)shard - 1;

  c->near_at[i] = now_ms();
  c->nears++;
  if (c->nears - c->grants > c->max_woken_waiting)
    c->max_woken_waiting = c->nears - c->grants;
  event_active(c->connect[i], EV_TIMEOUT, 0); /* never inside the queue */
}

static void q_grant(void *shard, void *ud) {
  struct calls *c = ud;
  int i = (int)(intptr_t)shard - 1;

  c->grant_at[i] = now_ms();
  if (!c->requested[i])
    c->grant_unasked = 1;
  c->grants++;
  /* Written at once: the bucket's window starts now. */
  c->q->sent(c->q, shard, (uint32_t)i);
  if (c->grants == 4)
    c->done = 1;
}

static struct shard_ev shard_evs[8];

static void calls_init(struct calls *c, struct event_base *base) {
  memset(c, 0, sizeof(*c));
  for (int i = 0; i < 8; i++) {
    shard_evs[i].c = c;
    shard_evs[i].i = i;
    c->connect[i] = event_new(base, -1, 0, q_connected, &shard_evs[i]);
  }
}

static void calls_free(struct calls *c) {
  for (int i = 0; i < 8; i++)
    event_free(c->connect[i]);
}

/* Input: 4 early shards in one bucket, window 200 ms, lead 60 ms; each
 * asks (request()) once woken.  The first is woken at once; each next one
 * no sooner than (window - lead) after the previous write; none is
 * granted before it asked; never more than one woken shard waits for its
 * grant.  Without early() (NULL member) lazy connect cannot work. */
static void test_queue_wakes_near_the_turn(void **state) {
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {1, 200, -1, 0, 0};
  struct calls c;

  (void)state;
  calls_init(&c, base);
  c.q = dgw_identify_local_new(base, &lim, q_grant, &c, NULL, NULL);
  assert_non_null(c.q);
  assert_non_null(c.q->early);
  for (int i = 0; i < 4; i++)
    assert_int_equal(
        c.q->early(c.q, (void *)(intptr_t)(i + 1), 0, 60, q_near, &c), 0);
  assert_int_equal(c.nears, 1);  /* the first, at once */
  assert_int_equal(c.grants, 0); /* not before it asks */
  assert_true(run_until(base, &c.done, 10));
  assert_int_equal(c.nears, 4);
  assert_false(c.grant_unasked);
  assert_int_equal(c.max_woken_waiting, 1);
  for (int i = 1; i < 4; i++) {
    assert_true(c.near_at[i] - c.grant_at[i - 1] >= 200 - 60 - 1);
    assert_true(c.grant_at[i] - c.grant_at[i - 1] >= 199);
  }
  c.q->destroy(c.q);
  calls_free(&c);
  event_base_free(base);
}

/* A cancelled early shard is neither woken nor granted; a NULL near() is
 * refused (-1: the caller connects and asks as before). */
static void test_queue_cancel_early(void **state) {
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {1, 50, -1, 0, 0};
  struct calls c;

  (void)state;
  calls_init(&c, base);
  c.q = dgw_identify_local_new(base, &lim, q_grant, &c, NULL, NULL);
  assert_int_equal(c.q->early(c.q, (void *)1, 0, 10, NULL, NULL), -1);
  assert_int_equal(c.q->early(c.q, (void *)1, 0, 10, q_near, &c), 0);
  assert_int_equal(c.q->early(c.q, (void *)2, 0, 10, q_near, &c), 0);
  assert_int_equal(c.q->early(c.q, (void *)3, 0, 10, q_near, &c), 0);
  assert_int_equal(c.q->early(c.q, (void *)4, 0, 10, q_near, &c), 0);
  assert_int_equal(c.q->early(c.q, (void *)5, 0, 10, q_near, &c), 0);
  c.q->cancel(c.q, (void *)2);
  assert_true(run_until(base, &c.done, 10));
  run_for(base, 150);
  assert_int_equal(c.grants, 4);
  assert_int_equal(c.nears, 4);
  assert_int_equal(c.near_at[1], 0); /* shard 2: never woken */
  assert_int_equal(c.grant_at[1], 0);
  assert_false(c.grant_unasked);
  c.q->destroy(c.q);
  calls_free(&c);
  event_base_free(base);
}

static void silent_near(void *shard, void *ud) {
  (void)shard;
  (*(int *)ud)++;
}

/* An early shard that was woken but has not asked yet (still connecting)
 * is granted nothing, and the shard behind it waits too: input, early
 * shard 1 (never asks during 3 windows of 30 ms) then shard 2 asking at
 * once.  Then shard 1 asks: it goes first, 2 a window later. */
static void test_queue_waits_for_the_early_head(void **state) {
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {1, 30, -1, 0, 0};
  struct calls c;
  int woken = 0;

  (void)state;
  calls_init(&c, base);
  c.q = dgw_identify_local_new(base, &lim, q_grant, &c, NULL, NULL);
  assert_int_equal(c.q->early(c.q, (void *)1, 0, 10, silent_near, &woken), 0);
  assert_int_equal(woken, 1);
  c.requested[1] = 1;
  c.q->request(c.q, (void *)2, 0);
  run_for(base, 100);
  assert_int_equal(c.grants, 0);
  c.requested[0] = 1;
  c.q->request(c.q, (void *)1, 0);
  assert_int_equal(c.grants, 1);
  assert_true(c.grant_at[0] > 0);
  c.done = 0;
  for (int i = 0; i < 100 && c.grants < 2; i++)
    run_for(base, 10 * (int)time_scale());
  assert_int_equal(c.grants, 2);
  assert_true(c.grant_at[1] - c.grant_at[0] >= 29);
  assert_int_equal(woken, 1); /* near() once */
  assert_false(c.grant_unasked);
  c.q->destroy(c.q);
  calls_free(&c);
  event_base_free(base);
}

/* ------------------------------------------- the client and the mock */

struct watch {
  struct dgw_mock *mock;
  int identifies; /* IDENTIFYs the mock has read */
  double identify_at[16];
  int resumes;
  double resume_at;
  int opens;
  double open_at[16];
  /* The most connections open at once beyond those that have
   * identified or resumed: shards holding a socket while they wait. */
  int max_waiting;
  int ready, resumed;
};

static void note(struct watch *w) {
  int waiting = (int)dgw_mock_conn_count(w->mock) - w->identifies - w->resumes;

  if (waiting > w->max_waiting)
    w->max_waiting = waiting;
}

static void w_open(struct dgw_mock *m, struct dgw_mock_conn *conn,
                   const char *pq, void *ud) {
  struct watch *w = ud;

  (void)m;
  (void)conn;
  (void)pq;
  if (w->opens < 16)
    w->open_at[w->opens] = now_ms();
  w->opens++;
  note(w);
}

static void w_payload(struct dgw_mock *m, struct dgw_mock_conn *conn, int op,
                      const char *json, size_t len, void *ud) {
  struct watch *w = ud;

  (void)m;
  (void)conn;
  (void)json;
  (void)len;
  if (op == DGW_OP_IDENTIFY) {
    if (w->identifies < 16)
      w->identify_at[w->identifies] = now_ms();
    w->identifies++;
  } else if (op == DGW_OP_RESUME) {
    if (w->resumes++ == 0)
      w->resume_at = now_ms();
  }
  note(w);
}

static void w_ready(struct dgw_gateway *gw, void *ud) {
  struct watch *w = ud;

  (void)gw;
  w->ready++;
}

static void w_resumed(struct dgw_gateway *gw, void *ud) {
  struct watch *w = ud;

  (void)gw;
  w->resumed++;
}

struct run {
  struct event_base *base;
  struct dgw_mock *mock;
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  struct watch w;
};

static void run_setup(struct run *r) {
  struct dgw_mock_config mc = {0};
  char url[64];
  int err = 0;

  memset(r, 0, sizeof(*r));
  r->base = event_base_new();
  mc.hooks.on_open = w_open;
  mc.hooks.on_payload = w_payload;
  mc.user_data = &r->w;
  mc.heartbeat_interval_ms = 30000;
  r->mock = dgw_mock_new(r->base, &mc, &err);
  assert_non_null(r->mock);
  r->w.mock = r->mock;
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u",
           (unsigned)dgw_mock_port(r->mock));
  r->opt = dgw_options_new();
  r->cb = dgw_callbacks_new();
  dgw_options_set_token(r->opt, "t");
  dgw_options_set_gateway_url(r->opt, url);
  dgw_callbacks_set_on_ready(r->cb, w_ready);
  dgw_callbacks_set_on_resumed(r->cb, w_resumed);
}

static void run_teardown(struct run *r) {
  dgw_mock_free(r->mock);
  dgw_options_free(r->opt);
  dgw_callbacks_free(r->cb);
  event_base_free(r->base);
}

static struct dgw_client *start(struct run *r) {
  int err = 0;
  struct dgw_client *c = dgw_client_new(r->base, r->opt, r->cb, &r->w, &err);

  assert_non_null(c);
  assert_int_equal(dgw_client_start(c), DGW_OK);
  return c;
}

static int all_up(void *arg) {
  struct watch *w = arg;

  return w->ready + w->resumed >= 6;
}

static int all_up_1(void *arg) {
  struct watch *w = arg;

  return w->ready + w->resumed >= 1;
}

static int all_up_3(void *arg) {
  struct watch *w = arg;

  return w->ready + w->resumed >= 3;
}

/* Input: 6 shards, max_concurrency 1, window 150 ms, lazy connect with a
 * 60 ms lead (both times DGW_TEST_TIME_SCALE).  The mock never holds more than
 * 2 connections that have not identified (the one whose turn is near, and at
 * most one whose IDENTIFY it has not read yet); every shard reaches READY, one
 * IDENTIFY each, a window apart.  Without lazy connect all 6 connect at once
 * and 5 wait with a socket (see test_client_eager). */
static void test_client_lazy(void **state) {
  struct run r;
  struct dgw_client *c;
  struct dgw_client_stats st = {.size = sizeof(st)};
  double min_gap = time_scale() > 1 ? 0 : 90; /* see test_identify.c */

  (void)state;
  run_setup(&r);
  dgw_options_set_shards(r.opt, 0, 6, 6);
  /* Scaled under valgrind: a slower connection only means fewer
   * sockets held early, but the bound below should not lean on timing. */
  dgw_options_set_identify_limits(r.opt, 1, (uint32_t)(150 * time_scale()));
  assert_int_equal(
      dgw_options_set_lazy_connect(r.opt, 1, (uint32_t)(60 * time_scale())),
      DGW_OK);
  c = start(&r);
  assert_true(loop_until(r.base, all_up, &r.w, 30));
  print_message("lazy: at most %d connection(s) waiting without IDENTIFY\n",
                r.w.max_waiting);
  assert_int_equal(r.w.ready, 6);
  assert_int_equal(r.w.identifies, 6);
  assert_int_equal(r.w.opens, 6); /* one connection each, none wasted */
  assert_true(r.w.max_waiting >= 1);
  assert_true(r.w.max_waiting <= 2);
  for (int i = 1; i < 6; i++)
    assert_true(r.w.identify_at[i] - r.w.identify_at[i - 1] >= min_gap);
  /* Shard k connects after shard k-1's IDENTIFY, not at the start. */
  for (int i = 1; i < 6; i++)
    assert_true(r.w.open_at[i] >= r.w.identify_at[i - 1]);
  assert_int_equal(dgw_client_stats(c, &st), DGW_OK);
  assert_int_equal(st.identifies, 6);
  assert_int_equal(st.shards_ready, 6);
  dgw_client_free(c);
  run_for(r.base, 20);
  run_teardown(&r);
}

/* The same with lazy connect off: every shard connects at once and waits
 * for its turn holding a socket (the behaviour before issue 17 item 3). */
static void test_client_eager(void **state) {
  struct run r;
  struct dgw_client *c;

  (void)state;
  run_setup(&r);
  dgw_options_set_shards(r.opt, 0, 6, 6);
  dgw_options_set_identify_limits(r.opt, 1, (uint32_t)(300 * time_scale()));
  assert_int_equal(dgw_options_set_lazy_connect(r.opt, 0, 0), DGW_OK);
  c = start(&r);
  assert_true(loop_until(r.base, all_up, &r.w, 60));
  print_message("eager: %d connection(s) waiting without IDENTIFY\n",
                r.w.max_waiting);
  assert_int_equal(r.w.identifies, 6);
  assert_true(r.w.max_waiting >= 4);
  dgw_client_free(c);
  run_for(r.base, 20);
  run_teardown(&r);
}

/* A shard with a session connects at once and RESUMEs; the others wait
 * for their identify turn without a socket.  Input: shard 2 of 3 saved
 * its session (a first client, stopped for a restart); a second client
 * runs shards 0-2 with a window of 1 s (scaled), lead 100 ms.  Shard 2's
 * RESUME reaches the mock before shard 1 (whose turn is a window after
 * shard 0's IDENTIFY) has even connected. */
static void test_resume_connects_at_once(void **state) {
  struct run r;
  struct dgw_client *c;
  char path[] = "/tmp/dgw-lazy-XXXXXX";
  int fd = mkstemp(path);
  uint32_t restored = 0;

  (void)state;
  assert_true(fd >= 0);
  close(fd);
  run_setup(&r);
  dgw_options_set_shards(r.opt, 2, 1, 3);
  c = start(&r);
  assert_true(loop_until(r.base, all_up_1, &r.w, 10));
  assert_int_equal(dgw_client_stop_for_restart(c), DGW_OK);
  run_for(r.base, 100);
  assert_int_equal(dgw_client_save_sessions(c, path, NULL, 0), DGW_OK);
  dgw_client_free(c);
  run_for(r.base, 20);

  memset(&r.w, 0, sizeof(r.w));
  r.w.mock = r.mock;
  dgw_options_set_shards(r.opt, 0, 3, 3);
  dgw_options_set_identify_limits(r.opt, 1, (uint32_t)(1000 * time_scale()));
  assert_int_equal(dgw_options_set_lazy_connect(r.opt, 1, 100), DGW_OK);
  {
    int err = 0;

    c = dgw_client_new(r.base, r.opt, r.cb, &r.w, &err);
    assert_non_null(c);
  }
  assert_int_equal(dgw_client_restore_sessions(c, path, &restored, NULL, 0),
                   DGW_OK);
  assert_int_equal(restored, 1);
  assert_int_equal(dgw_client_start(c), DGW_OK);
  assert_true(loop_until(r.base, all_up_3, &r.w, 30));
  assert_int_equal(r.w.resumed, 1);
  assert_int_equal(r.w.ready, 2);
  assert_int_equal(r.w.identifies, 2);
  assert_int_equal(r.w.resumes, 1);
  assert_int_equal(r.w.opens, 3);
  /* Connections 0 and 1 opened at the start (shard 0, whose turn is now,
   * and shard 2, resuming); the third, shard 1, after shard 0's IDENTIFY
   * and after shard 2's RESUME. */
  assert_true(r.w.resume_at < r.w.open_at[2]);
  assert_true(r.w.identify_at[0] <= r.w.open_at[2]);
  assert_true(r.w.max_waiting <= 2);
  dgw_client_free(c);
  run_for(r.base, 20);
  unlink(path);
  run_teardown(&r);
}

/* Bad input: a NULL options object, or a lead above
 * DGW_LAZY_LEAD_MAX_MS, is DGW_ERR_INVALID_ARGUMENT. */
static void test_option_bad_input(void **state) {
  struct dgw_options *opt = dgw_options_new();

  (void)state;
  assert_int_equal(dgw_options_set_lazy_connect(NULL, 1, 0),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      dgw_options_set_lazy_connect(opt, 1, DGW_LAZY_LEAD_MAX_MS + 1),
      DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_lazy_connect(opt, 1, DGW_LAZY_LEAD_MAX_MS),
                   DGW_OK);
  assert_int_equal(dgw_options_set_lazy_connect(opt, 0, 0), DGW_OK);
  dgw_options_free(opt);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_queue_wakes_near_the_turn),
      cmocka_unit_test(test_queue_cancel_early),
      cmocka_unit_test(test_queue_waits_for_the_early_head),
      cmocka_unit_test(test_client_lazy),
      cmocka_unit_test(test_client_eager),
      cmocka_unit_test(test_resume_connects_at_once),
      cmocka_unit_test(test_option_bad_input),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests_name("lazy", tests, NULL, NULL);
}
