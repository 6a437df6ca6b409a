/*
 * Integration tests: the members of a cluster must agree on the shard
 * range, the shard total and the lease (lib/cluster_agree.h), on a
 * private redis-server (tests/redis_server.h) against one in-process mock.
 * Members share the test's loop; a "crash" frees a member without a word
 * to Redis, so its membership must expire.  Every wait has a deadline
 * (scaled by DGW_TEST_TIME_SCALE); nothing asserts a timing.
 *
 * Without the check, the member with other numbers joins the membership:
 * the first member hands shards over to it, and it IDENTIFYs with its own
 * shard tuple; every test below then fails.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client.h"
#include "client_shards.h"
#include "fixture.h"
#include "payload.h"
#include "redis_server.h"

#define MAX_SHARDS 32
#define MAX_MEMBERS 3
#define LEASE_MS ((uint32_t)(2000 * time_scale()))
#define EVENTS 2000

struct member {
  struct dgw_client *c;
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  int n;
  uint32_t count; /* its shards: 0..count-1 of count */
  int fatal;      /* on_client_fatal calls */
  int fatal_error;
  char why[600];     /* on_client_fatal's sentence */
  char refusal[600]; /* its ERROR line "...refusing to run shards..." */
};

struct world {
  struct event_base *base;
  struct dgw_mock *mock;
  struct redis_server *redis;
  struct member m[MAX_MEMBERS];
  int identify_total[MAX_SHARDS + 1]; /* IDENTIFYs per shard total sent */
  int verbose;
};

static struct world w;

static void member_log(enum dgw_log_level level, const char *msg, void *ud) {
  struct member *m = ud;

  if (level == DGW_LOG_ERROR && strstr(msg, "refusing to run shards") != NULL)
    snprintf(m->refusal, sizeof(m->refusal), "%s", msg);
  if (w.verbose)
    fprintf(stderr, "[m%d] %s\n", m->n, msg);
}

static void on_client_fatal(struct dgw_client *c, int error, const char *why,
                            void *ud) {
  struct member *m = ud;

  (void)c;
  m->fatal++;
  m->fatal_error = error;
  snprintf(m->why, sizeof(m->why), "%s", why);
}

static void mock_payload(struct dgw_mock *m, struct dgw_mock_conn *conn, int op,
                         const char *json, size_t len, void *ud) {
  const char *p;

  (void)m;
  (void)conn;
  (void)len;
  (void)ud;
  if (op == DGW_OP_IDENTIFY && (p = strstr(json, "\"shard\":[")) != NULL &&
      (p = strchr(p, ',')) != NULL) {
    int total = atoi(p + 1);

    if (total >= 0 && total <= MAX_SHARDS)
      w.identify_total[total]++;
  }
}

/* Member i with shards 0..count-1 of count and leases of lease_ms. */
static void member_start(int i, uint32_t count, uint32_t lease_ms) {
  struct member *m = &w.m[i];
  char url[128];
  int err = 0;

  m->n = i;
  m->count = count;
  m->opt = dgw_options_new();
  m->cb = dgw_callbacks_new();
  assert_int_equal(dgw_options_set_token(m->opt, "t0ken.SECRET"), DGW_OK);
  assert_int_equal(dgw_options_set_intents(m->opt, 513), DGW_OK);
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u",
           (unsigned)dgw_mock_port(w.mock));
  assert_int_equal(dgw_options_set_gateway_url(m->opt, url), DGW_OK);
  assert_int_equal(dgw_options_set_shards(m->opt, 0, count, count), DGW_OK);
  dgw_options_set_log(m->opt, member_log, m, DGW_LOG_DEBUG);
  dgw_options_set_identify_limits(m->opt, 16, 100);
  assert_int_equal(dgw_options_set_reconnect(m->opt, 20, 200, 60000), DGW_OK);
  assert_int_equal(dgw_options_set_cluster(m->opt, redis_server_url(w.redis),
                                           "agreebot", lease_ms),
                   DGW_OK);
  dgw_callbacks_set_on_client_fatal(m->cb, on_client_fatal);
  m->c = dgw_client_new(w.base, m->opt, m->cb, m, &err);
  if (m->c == NULL)
    fail_msg("client: %s", dgw_strerror(err));
  assert_int_equal(dgw_client_start(m->c), DGW_OK);
}

/* A crash: no handover, no membership removal. */
static void member_crash(int i) {
  dgw_client_free(w.m[i].c);
  w.m[i].c = NULL;
}

static void member_free(int i) {
  dgw_client_free(w.m[i].c);
  dgw_options_free(w.m[i].opt);
  dgw_callbacks_free(w.m[i].cb);
  memset(&w.m[i], 0, sizeof(w.m[i]));
}

/* Shards member i holds (taken), and of those READY. */
static int taken_in(int i) {
  int n = 0;

  for (uint32_t s = 0; w.m[i].c != NULL && s < w.m[i].count; s++)
    n += client_shard_taken(w.m[i].c, s) != 0;
  return n;
}

static int ready_in(int i) {
  int n = 0;

  for (uint32_t s = 0; w.m[i].c != NULL && s < w.m[i].count; s++)
    if (client_shard_taken(w.m[i].c, s) &&
        dgw_gateway_state(dgw_client_gateway(w.m[i].c, s)) == DGW_STATE_READY)
      n++;
  return n;
}

static int all_in_m0(void *arg) {
  (void)arg;
  return ready_in(0) == (int)w.m[0].count;
}

static int shared_by_m0_m1(void *arg) {
  (void)arg;
  return ready_in(0) > 0 && ready_in(1) > 0 &&
         ready_in(0) + ready_in(1) == (int)w.m[0].count;
}

static int shared_by_m1_m2(void *arg) {
  (void)arg;
  return ready_in(1) > 0 && ready_in(2) > 0 &&
         ready_in(1) + ready_in(2) == (int)w.m[1].count;
}

static int m1_fatal(void *arg) {
  (void)arg;
  return w.m[1].fatal > 0;
}

static int all_in_m2(void *arg) {
  (void)arg;
  return ready_in(2) == (int)w.m[2].count;
}

/* The Redis reply's first line for one command (":N", a bulk string...). */
static const char *redis1(const char *a0, const char *a1, const char *a2) {
  static char out[256];
  const char *argv[3] = {a0, a1, a2};

  if (redis_server_cmd(w.redis, out, sizeof(out), a2 != NULL ? 3 : 2, argv) !=
      0)
    snprintf(out, sizeof(out), "(no answer)");
  return out;
}

/* No live entry in the members zset (expired ones stay until a beat
 * prunes them): the score is the expiry in Redis's clock. */
static int no_member_left(void *arg) {
  static const char *const argv[] = {
      "EVAL",
      "local t = redis.call('TIME')\n"
      "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
      "return redis.call('ZCOUNT', KEYS[1], '(' .. now, '+inf')",
      "1", "dgw:{agreebot}:members"};
  char out[64];

  (void)arg;
  return redis_server_cmd(w.redis, out, sizeof(out), 4, argv) == 0 &&
         strcmp(out, ":0") == 0;
}

static int setup(void **state) {
  struct dgw_mock_config mc = {0};
  int err = 0;

  (void)state;
  memset(&w, 0, sizeof(w));
  w.verbose = getenv("DGW_TEST_VERBOSE") != NULL;
  w.redis = redis_server_start(NULL);
  if (w.redis == NULL)
    fail_msg("redis-server could not be started (see above)");
  w.base = event_base_new();
  mc.heartbeat_interval_ms = 1000;
  mc.dispatch_interval_ms = 10;
  mc.detached_max = 64;
  mc.history_max = 100000;
  mc.hooks.on_payload = mock_payload;
  mc.log = test_log;
  w.mock = dgw_mock_new(w.base, &mc, &err);
  if (w.mock == NULL)
    fail_msg("mock: %s", dgw_strerror(err));
  for (int i = 0; i < EVENTS; i++)
    assert_int_equal(
        dgw_mock_add_dispatch(w.mock, "MESSAGE_CREATE", "{\"n\":1}"), DGW_OK);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  for (int i = 0; i < MAX_MEMBERS; i++)
    member_free(i);
  /* One more pass before the base goes (dgw.h, dgw_client_free): once
   * under valgrind a shard's bufferevent with a deferred callback still
   * queued at the free outlived it (30 KiB "definitely lost" when the
   * base was freed at once). */
  run_for(w.base, 50);
  dgw_mock_free(w.mock);
  event_base_free(w.base);
  redis_server_free(w.redis);
  return 0;
}

/* Two members with the same numbers share the 16 shards, and the config
 * stored is theirs; a rolling restart (one leaves cleanly, another with
 * the same numbers joins while the second still runs) is accepted too. */
static void test_same_numbers_share(void **state) {
  (void)state;
  member_start(0, 16, LEASE_MS);
  assert_true(loop_until(w.base, all_in_m0, NULL, 20));
  member_start(1, 16, LEASE_MS);
  assert_true(loop_until(w.base, shared_by_m0_m1, NULL, 20));
  assert_int_equal(w.m[0].fatal + w.m[1].fatal, 0);
  assert_string_equal(redis1("HGET", "dgw:{agreebot}:config", "total"), "16");
  assert_string_equal(redis1("HGET", "dgw:{agreebot}:config", "count"), "16");
  assert_string_equal(redis1("HGET", "dgw:{agreebot}:config", "first"), "0");
  /* Rolling restart: m0 leaves (handover), m2 joins with the same. */
  dgw_client_stop(w.m[0].c);
  member_start(2, 16, LEASE_MS);
  assert_true(loop_until(w.base, shared_by_m1_m2, NULL, 20));
  assert_int_equal(w.m[1].fatal + w.m[2].fatal, 0);
  assert_int_equal(w.identify_total[16] > 0, 1);
  assert_int_equal(w.identify_total[32], 0);
}

/* A second member with another shard total (32, not 16) is refused: no
 * membership, no lease, the ERROR names both sides, on_client_fatal says
 * DGW_ERR_INVALID_ARGUMENT, and the first member keeps all 16 READY with
 * no 32-tuple IDENTIFY anywhere.  Once the first is gone (a crash: its
 * membership expires), a member with the new numbers is accepted, the
 * config becomes its own, and it runs all 32. */
static void test_other_total_refused_then_accepted(void **state) {
  (void)state;
  member_start(0, 16, LEASE_MS);
  assert_true(loop_until(w.base, all_in_m0, NULL, 20));
  member_start(1, 32, LEASE_MS);
  assert_true(loop_until(w.base, m1_fatal, NULL, 10));
  assert_int_equal(w.m[1].fatal, 1);
  assert_int_equal(w.m[1].fatal_error, DGW_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(w.m[1].refusal, "this member has shards 0-31 of 32"));
  assert_non_null(strstr(w.m[1].refusal, "the cluster has shards 0-15 of 16"));
  assert_non_null(strstr(w.m[1].why, "0-31 of 32"));
  /* Two lease scans and more later: still nothing taken, m0 unaffected. */
  run_for(w.base, (int)(1500 * time_scale()));
  assert_int_equal(taken_in(1), 0);
  assert_int_equal(ready_in(0), 16);
  assert_int_equal(w.m[0].fatal, 0);
  assert_string_equal(redis1("ZCARD", "dgw:{agreebot}:members", NULL), ":1");
  assert_string_equal(redis1("HGET", "dgw:{agreebot}:config", "total"), "16");
  assert_int_equal(w.identify_total[32], 0);
  assert_int_equal(w.identify_total[16], 16);

  /* Stop everything; once the crashed member's entry expired, the new
   * numbers are the cluster's. */
  member_crash(0);
  member_free(1);
  assert_true(
      loop_until(w.base, no_member_left, NULL, 2 * LEASE_MS / 1000.0 + 5));
  member_start(2, 32, LEASE_MS);
  assert_true(loop_until(w.base, all_in_m2, NULL, 20 + LEASE_MS / 1000.0));
  assert_int_equal(w.m[2].fatal, 0);
  assert_string_equal(redis1("HGET", "dgw:{agreebot}:config", "total"), "32");
  assert_int_equal(w.identify_total[32], 32);
}

/* Another lease_ms with the same shards is refused the same way. */
static void test_other_lease_refused(void **state) {
  (void)state;
  member_start(0, 16, LEASE_MS);
  assert_true(loop_until(w.base, all_in_m0, NULL, 20));
  member_start(1, 16, LEASE_MS + 1000);
  assert_true(loop_until(w.base, m1_fatal, NULL, 10));
  assert_non_null(strstr(w.m[1].refusal, "lease_ms"));
  {
    char mine[64], theirs[64];

    snprintf(mine, sizeof(mine), "0-15 of 16, lease_ms %u",
             (unsigned)(LEASE_MS + 1000));
    snprintf(theirs, sizeof(theirs), "0-15 of 16, lease_ms %u",
             (unsigned)LEASE_MS);
    assert_non_null(strstr(w.m[1].refusal, mine));
    assert_non_null(strstr(w.m[1].refusal, theirs));
  }
  run_for(w.base, (int)(1500 * time_scale()));
  assert_int_equal(taken_in(1), 0);
  assert_int_equal(ready_in(0), 16);
  assert_int_equal(w.m[0].fatal, 0);
  assert_string_equal(redis1("ZCARD", "dgw:{agreebot}:members", NULL), ":1");
}

static int both_fatal(void *arg) {
  (void)arg;
  return w.m[0].fatal > 0 && w.m[1].fatal > 0;
}

static int none_taken(void *arg) {
  (void)arg;
  return taken_in(0) == 0 && taken_in(1) == 0;
}

/* Running members refused at a later beat (the config in Redis replaced
 * behind their backs, as the race after Redis lost its keys can do): each
 * drops every shard it held, and says so through on_client_fatal; nothing
 * runs afterwards.  Without the drop they would keep running shards the
 * cluster's numbers do not have. */
static void test_refused_while_running(void **state) {
  static const char *const argv[] = {"HSET", "dgw:{agreebot}:config", "total",
                                     "32"};
  char out[64];

  (void)state;
  member_start(0, 16, LEASE_MS);
  assert_true(loop_until(w.base, all_in_m0, NULL, 20));
  member_start(1, 16, LEASE_MS);
  assert_true(loop_until(w.base, shared_by_m0_m1, NULL, 20));
  assert_int_equal(redis_server_cmd(w.redis, out, sizeof(out), 4, argv), 0);
  assert_true(loop_until(w.base, both_fatal, NULL, 10));
  assert_int_equal(w.m[0].fatal_error, DGW_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(w.m[0].refusal, "the cluster has shards 0-15 of 32"));
  assert_true(loop_until(w.base, none_taken, NULL, 5));
  run_for(w.base, (int)(1500 * time_scale()));
  assert_int_equal(taken_in(0) + taken_in(1), 0);
  assert_int_equal(ready_in(0) + ready_in(1), 0);
  assert_int_equal(w.m[0].fatal, 1);
  assert_int_equal(w.m[1].fatal, 1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_same_numbers_share, setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_total_refused_then_accepted,
                                      setup, teardown),
      cmocka_unit_test_setup_teardown(test_other_lease_refused, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_refused_while_running, setup,
                                      teardown),
  };

  ignore_sigpipe(); /* a killed redis-server or peer: EPIPE, not death */
  return cmocka_run_group_tests(tests, NULL, NULL);
}
