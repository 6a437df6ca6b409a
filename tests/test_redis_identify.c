/*
 * The identify queue shared through Redis (lib/identify_redis.c): two
 * queues on two Redis handles in one process stand for two dgw processes,
 * against a real redis-server the test starts (tests/redis_server.c).
 * Windows are small (100-300 ms) to keep it fast.  Spacing is measured on
 * the client: a grant's reply latency is the only jitter, so gaps are
 * asserted as window minus 15 ms.
 */
#include "config.h"

#include "harness.h"

#include "identify_redis.h"
#include "redis.h"
#include "redis_server.h"

#define SLACK_MS 15.0

struct grants {
  int shard[64];
  double at[64];
  int n;
};

static void on_grant(void *shard, void *ud) {
  struct grants *g = ud;

  if (g->n < 64) {
    g->shard[g->n] = (int)(intptr_t)shard;
    g->at[g->n++] = now_ms();
  }
}

struct logs {
  char lines[16][512];
  int n;
};

static void keep_log(enum dgw_log_level level, const char *msg, void *ud) {
  struct logs *l = ud;

  test_log(level, msg, NULL);
  if (l->n < 16)
    snprintf(l->lines[l->n++], sizeof(l->lines[0]), "%s", msg);
}

static int count_lines(const struct logs *l, const char *needle) {
  int n = 0;

  for (int i = 0; i < l->n; i++)
    n += strstr(l->lines[i], needle) != NULL;
  return n;
}

/* One "process": a Redis handle and a queue on it. */
struct proc {
  struct dgw_redis *r;
  struct dgw_identify_queue *q;
  struct logs logs;
};

static void proc_start(struct proc *p, struct event_base *base,
                       const struct redis_server *srv, const char *name,
                       const struct dgw_identify_limits *lim,
                       struct grants *g) {
  memset(p, 0, sizeof(*p));
  p->r = redis_new(base, redis_server_url(srv), NULL, NULL, keep_log, &p->logs,
                   NULL, 0);
  assert_non_null(p->r);
  redis_set_timeouts(p->r, 0, 0, 200);
  while (!redis_is_up(p->r))
    loop_once(base);
  p->q = dgw_identify_redis_new(base, p->r, name, lim, on_grant, g, keep_log,
                                &p->logs);
  assert_non_null(p->q);
}

static void proc_stop(struct proc *p) {
  if (p->q != NULL)
    p->q->destroy(p->q);
  redis_free(p->r);
  p->q = NULL;
  p->r = NULL;
}

static void request(struct proc *p, int shard) {
  p->q->request(p->q, (void *)(intptr_t)shard, (uint32_t)shard);
}

struct until_n {
  const struct grants *g;
  int n;
};

static int reached(void *arg) {
  const struct until_n *u = arg;

  return u->g->n >= u->n;
}

static void wait_grants(struct event_base *base, const struct grants *g, int n,
                        double seconds) {
  struct until_n u = {g, n};

  if (!loop_until(base, reached, &u, seconds)) {
    print_error("%d grants of %d within %.1f s\n", g->n, n, seconds);
    fail();
  }
}

/* max_concurrency 1, window 200 ms, three shards in each of two queues:
 * all six granted, each at least a window after the one before, whichever
 * queue it came from. */
static void test_one_bucket_across_queues(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {1, 200, -1, 0, 0};
  struct grants g = {0};
  struct proc a, b;
  int from_a = 0;

  (void)state;
  assert_non_null(srv);
  proc_start(&a, base, srv, "bot1", &lim, &g);
  proc_start(&b, base, srv, "bot1", &lim, &g);
  for (int i = 0; i < 3; i++) {
    request(&a, 2 * i);
    request(&b, 2 * i + 1);
  }
  assert_int_equal(g.n, 0); /* never inside request() */
  wait_grants(base, &g, 6, 10);
  for (int i = 1; i < 6; i++)
    if (g.at[i] - g.at[i - 1] < 200 - SLACK_MS) {
      print_error("grants %d and %d only %.1f ms apart\n", i - 1, i,
                  g.at[i] - g.at[i - 1]);
      fail();
    }
  for (int i = 0; i < 6; i++)
    from_a += g.shard[i] % 2 == 0;
  assert_int_equal(from_a, 3);
  assert_int_equal(dgw_identify_redis_granted(a.q), 3);
  assert_int_equal(dgw_identify_redis_granted(b.q), 3);
  proc_stop(&a);
  proc_stop(&b);
  event_base_free(base);
  redis_server_free(srv);
}

/* Fair order: requests made 40 ms apart, alternating between the queues,
 * are granted in request order (the oldest waiter wins). */
static void test_fair_order(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {1, 100, -1, 0, 0};
  struct grants g = {0};
  struct proc a, b;

  (void)state;
  assert_non_null(srv);
  proc_start(&a, base, srv, "fair", &lim, &g);
  proc_start(&b, base, srv, "fair", &lim, &g);
  for (int i = 0; i < 6; i++) {
    request(i % 2 == 0 ? &b : &a, i);
    run_for(base, 40);
  }
  wait_grants(base, &g, 6, 10);
  for (int i = 0; i < 6; i++)
    assert_int_equal(g.shard[i], i);
  proc_stop(&a);
  proc_stop(&b);
  event_base_free(base);
  redis_server_free(srv);
}

/* max_concurrency 4, window 1000 ms: shards 0-3 (four buckets) from two
 * queues all go within a fraction of the window. */
static void test_buckets_in_parallel(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {4, 1000, -1, 0, 0};
  struct grants g = {0};
  struct proc a, b;

  (void)state;
  assert_non_null(srv);
  proc_start(&a, base, srv, "par", &lim, &g);
  proc_start(&b, base, srv, "par", &lim, &g);
  request(&a, 0);
  request(&a, 1);
  request(&b, 2);
  request(&b, 3);
  wait_grants(base, &g, 4, 10);
  assert_true(g.at[3] - g.at[0] < 500);
  /* A fifth shard of bucket 0 waits for the window. */
  request(&b, 4);
  wait_grants(base, &g, 5, 10);
  assert_true(g.at[4] - g.at[0] >= 1000 - SLACK_MS);
  proc_stop(&a);
  proc_stop(&b);
  event_base_free(base);
  redis_server_free(srv);
}

/* The daily budget is shared: 3 session starts left, resetting in 1.5 s,
 * four shards over two queues: three go, the fourth waits for the reset
 * (logged once), and the counter then holds total - 1. */
static void test_budget_shared(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {2, 100, 3, 1500, 10};
  struct grants g = {0};
  struct proc a, b;
  const char *get[] = {"GET", "dgw:{budget}:identify:budget"};
  char out[64];
  double start = now_ms();

  (void)state;
  assert_non_null(srv);
  proc_start(&a, base, srv, "budget", &lim, &g);
  proc_start(&b, base, srv, "budget", &lim, &g);
  request(&a, 0);
  request(&a, 1);
  request(&b, 2);
  request(&b, 3);
  wait_grants(base, &g, 3, 10);
  run_for(base, 600);
  assert_int_equal(g.n, 3);
  assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 2, get), 0);
  assert_string_equal(out, "0");
  assert_int_equal(
      count_lines(&a.logs, "budget") + count_lines(&b.logs, "budget"), 1);
  wait_grants(base, &g, 4, 10);
  assert_true(g.at[3] - start >= 1500 - SLACK_MS);
  assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 2, get), 0);
  assert_string_equal(out, "9");
  proc_stop(&a);
  proc_stop(&b);
  event_base_free(base);
  redis_server_free(srv);
}

/* A process dies: (1) queue A, holding the grant of bucket 0 and first in
 * line for the next, is destroyed: B, behind it, is granted one window
 * after A's grant (the grant expired by itself; A left the line).  (2) A
 * waiter left in Redis by a killed process (its line entry old, last seen
 * now) blocks B only until it goes stale (800 ms here). */
static void test_dead_waiters(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {1, 200, -1, 0, 0};
  struct grants g = {0};
  struct proc a, b;
  char out[64];
  double t;

  (void)state;
  assert_non_null(srv);
  proc_start(&a, base, srv, "dead", &lim, &g);
  proc_start(&b, base, srv, "dead", &lim, &g);
  request(&a, 0);
  wait_grants(base, &g, 1, 10);
  request(&a, 2);
  run_for(base, 30);
  request(&b, 4);
  run_for(base, 30);
  a.q->destroy(a.q);
  a.q = NULL;
  wait_grants(base, &g, 2, 10);
  assert_int_equal(g.shard[1], 4);
  assert_true(g.at[1] - g.at[0] >= 200 - SLACK_MS);
  assert_true(g.at[1] - g.at[0] < 600);

  /* (2): a dead process's entry, first in line and seen just now. */
  {
    const char *inject[] = {
        "EVAL",
        "local t = redis.call('TIME')\n"
        "local now = t[1] * 1000 + math.floor(t[2] / 1000)\n"
        "redis.call('ZADD', KEYS[1], now - 60000, ARGV[1])\n"
        "redis.call('ZADD', KEYS[2], now, ARGV[1])\n"
        "return 1",
        "2",
        "dgw:{dead}:identify:line:0",
        "dgw:{dead}:identify:seen:0",
        "deadhost:1:0:1"};

    run_for(base, 250); /* the window of the last grant ends */
    assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 6, inject), 0);
    assert_string_equal(out, ":1");
  }
  dgw_identify_redis_set_timing(b.q, 0, 800);
  t = now_ms();
  request(&b, 6);
  run_for(base, 500);
  assert_int_equal(g.n, 2); /* the dead one is still first */
  wait_grants(base, &g, 3, 10);
  assert_true(g.at[2] - t >= 800 - SLACK_MS);
  assert_true(g.at[2] - t < 2500);
  proc_stop(&a);
  proc_stop(&b);
  event_base_free(base);
  redis_server_free(srv);
}

/* Redis restarts mid-wait.  (1) Killed and restarted at once right after
 * a grant: the data is gone, yet the next grant still comes a full window
 * later (the epoch key is missing, so every bucket holds one window).
 * (2) Down for 600 ms: no grant meanwhile, one log line, and the waiters
 * are granted once it is back. */
static void test_redis_restart_mid_wait(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {1, 300, -1, 0, 0};
  struct grants g = {0};
  struct proc a;

  (void)state;
  assert_non_null(srv);
  proc_start(&a, base, srv, "restart", &lim, &g);
  request(&a, 0);
  request(&a, 1);
  request(&a, 2);
  wait_grants(base, &g, 1, 10);
  assert_int_equal(redis_server_restart(srv), 0);
  wait_grants(base, &g, 2, 10);
  assert_true(g.at[1] - g.at[0] >= 300 - SLACK_MS);

  a.logs.n = 0;
  assert_int_equal(redis_server_kill(srv), 0);
  run_for(base, 600);
  assert_int_equal(g.n, 2);
  assert_int_equal(count_lines(&a.logs, "identify: Redis"), 1);
  assert_int_equal(redis_server_restart(srv), 0);
  wait_grants(base, &g, 3, 10);
  assert_int_equal(g.shard[2], 2);
  assert_int_equal(count_lines(&a.logs, "unavailable"), 1);
  assert_int_equal(count_lines(&a.logs, "is back"), 1);
  proc_stop(&a);
  event_base_free(base);
  redis_server_free(srv);
}

/* Cancel: a cancelled waiter is never granted and leaves the line, so the
 * next one goes one window after the last grant. */
static void test_cancel(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {1, 150, -1, 0, 0};
  struct grants g = {0};
  struct proc a, b;

  (void)state;
  assert_non_null(srv);
  proc_start(&a, base, srv, "cancel", &lim, &g);
  proc_start(&b, base, srv, "cancel", &lim, &g);
  request(&a, 0);
  wait_grants(base, &g, 1, 10);
  request(&a, 1);
  run_for(base, 20);
  request(&b, 2);
  run_for(base, 20);
  a.q->cancel(a.q, (void *)(intptr_t)1);
  wait_grants(base, &g, 2, 10);
  assert_int_equal(g.shard[1], 2);
  run_for(base, 400);
  assert_int_equal(g.n, 2);
  proc_stop(&a);
  proc_stop(&b);
  event_base_free(base);
  redis_server_free(srv);
}

/* A grant already on its way when its shard cancels is given back: the
 * TRY is held by a stopped server, the shard cancels, the server resumes
 * and grants; the queue never calls grant for it, deletes the bucket key
 * and returns the budget unit, so the next shard goes at once. */
static void test_cancel_in_flight_gives_back(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct dgw_identify_limits lim = {1, 1000, 50, 3600000, 100};
  struct grants g = {0};
  struct proc a;
  const char *get_bucket[] = {"GET", "dgw:{giveback}:identify:bucket:0"};
  const char *get_budget[] = {"GET", "dgw:{giveback}:identify:budget"};
  char out[64];

  (void)state;
  assert_non_null(srv);
  proc_start(&a, base, srv, "giveback", &lim, &g);
  request(&a, 0);
  wait_grants(base, &g, 1, 10);
  run_for(base, 1050); /* the window ends */
  assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 2, get_budget), 0);
  assert_string_equal(out, "49");
  assert_int_equal(redis_server_pause(srv), 0);
  request(&a, 1);
  run_for(base, 50); /* its TRY is out, unanswered */
  a.q->cancel(a.q, (void *)(intptr_t)1);
  assert_int_equal(redis_server_resume(srv), 0);
  run_for(base, 200); /* well within the 1 s window it was granted */
  assert_int_equal(g.n, 1);
  assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 2, get_bucket), 0);
  assert_string_equal(out, "$-1");
  assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 2, get_budget), 0);
  assert_string_equal(out, "49");
  proc_stop(&a);
  event_base_free(base);
  redis_server_free(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_one_bucket_across_queues),
      cmocka_unit_test(test_fair_order),
      cmocka_unit_test(test_buckets_in_parallel),
      cmocka_unit_test(test_budget_shared),
      cmocka_unit_test(test_dead_waiters),
      cmocka_unit_test(test_redis_restart_mid_wait),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_cancel_in_flight_gives_back),
  };
  ignore_sigpipe();
  return cmocka_run_group_tests_name("redis_identify", tests, NULL, NULL);
}
