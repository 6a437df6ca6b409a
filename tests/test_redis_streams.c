/*
 * The redis-streams plugin (plugins/redis-streams/) in a client against
 * the mock gateway, storing into a private redis-server: the entry format
 * (t, s, shard, session, d as the exact bytes the client received), the
 * per-event layout and MAXLEN trimming, at-least-once across a Redis
 * restart, and config errors.  Read back with hiredis's blocking API.
 */
#include "config.h"

#include "redis_fixture.h"

/* What the application saw: each event's raw d, by seq. */
static char seen_d[64][256];
/* The seqs of the MESSAGE_CREATEs the application saw. */
static unsigned char mc_seen[4096];

static void keep_d(struct fx *f, struct dgw_gateway *gw,
                   const struct dgw_event *ev) {
  size_t len;
  const char *d = dgw_event_data(ev, &len);
  int64_t s = dgw_event_seq(ev);

  (void)f;
  (void)gw;
  if (s >= 0 && s < (int64_t)sizeof(mc_seen) &&
      strcmp(dgw_event_name(ev), "MESSAGE_CREATE") == 0)
    mc_seen[s] = 1;
  if (s >= 0 && s < 64)
    snprintf(seen_d[s], sizeof(seen_d[s]), "%.*s", (int)len, d);
}

static long long xlen(const struct redis_server *srv, const char *key) {
  return rfx_integer(srv, "XLEN", key, -1);
}

/* Runs the loop until `key` holds at least n entries or 5 s (scaled). */
static int wait_xlen(struct fx *f, const struct redis_server *srv,
                     const char *key, long long n) {
  double end = deadline_ms(5);

  while (now_ms() < end) {
    long long have = xlen(srv, key);

    if (have >= n)
      return 1;
    if (getenv("DGW_TEST_VERBOSE") != NULL)
      fprintf(stderr, "# %s: %lld entries\n", key, have);
    run_for(f->base, 20);
  }
  return 0;
}

/* The value of `field` in a stream entry's field array, or NULL. */
static const redisReply *field(const redisReply *fields, const char *name) {
  for (size_t i = 0; i + 1 < fields->elements; i += 2)
    if (strcmp(fields->element[i]->str, name) == 0)
      return fields->element[i + 1];
  return NULL;
}

static struct fx *start_with(const struct redis_server *srv, const char *extra,
                             struct dgw_mock_config *mc) {
  struct fx *f = fx_new(mc);
  char config[1024];

  f->on_dispatch = keep_d;
  assert_int_equal(dgw_mock_add_dispatch(f->mock, "GUILD_CREATE", "{\"g\":1}"),
                   DGW_OK);
  assert_int_equal(
      dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE",
                            "{\"content\":\"h\\u00e9 \\\"q\\\"\",\"n\":1.50}"),
      DGW_OK);
  assert_int_equal(dgw_mock_add_dispatch(f->mock, "TYPING_START", "{\"t\":1}"),
                   DGW_OK);
  assert_int_equal(
      dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"m\":2}"), DGW_OK);
  assert_int_equal(
      dgw_mock_add_dispatch(f->mock, "PRESENCE_UPDATE", "{\"p\":1}"), DGW_OK);
  fx_client_new(f);
  snprintf(config, sizeof(config), "{\"redis\":\"%s\",\"name\":\"t\"%s}",
           redis_server_url(srv), extra);
  rfx_load_streams(f, config);
  fx_start(f);
  return f;
}

static struct fx *start(const struct redis_server *srv, const char *extra) {
  return start_with(srv, extra, NULL);
}

/* One stream of the two wanted events: three entries in seq order, each
 * with t, s, shard, the session id the mock gave and d byte for byte as
 * the client received it. */
static void test_entries(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *f;
  redisContext *c;
  redisReply *r;
  static const char *const want_t[] = {"MESSAGE_CREATE", "TYPING_START",
                                       "MESSAGE_CREATE"};
  static const char *const want_s[] = {"3", "4", "5"};
  const char *session;

  (void)state;
  assert_non_null(srv);
  f = start(srv, ",\"events\":[\"MESSAGE_CREATE\",\"TYPING_START\"]");
  assert_true(wait_xlen(f, srv, "dgw:{t}:events", 3));
  run_for(f->base, 50);
  assert_int_equal(xlen(srv, "dgw:{t}:events"), 3);
  session = dgw_mock_conn_session_id(dgw_mock_last_conn(f->mock));
  assert_non_null(session);
  c = rfx_connect(srv);
  r = redisCommand(c, "XRANGE dgw:{t}:events - +");
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  assert_int_equal(r->elements, 3);
  for (size_t i = 0; i < 3; i++) {
    const redisReply *fields = r->element[i]->element[1];
    int s = atoi(want_s[i]);

    assert_string_equal(field(fields, "t")->str, want_t[i]);
    assert_string_equal(field(fields, "s")->str, want_s[i]);
    assert_string_equal(field(fields, "shard")->str, "0");
    assert_string_equal(field(fields, "session")->str, session);
    assert_int_equal(field(fields, "d")->len, strlen(seen_d[s]));
    assert_memory_equal(field(fields, "d")->str, seen_d[s], strlen(seen_d[s]));
  }
  /* The odd bytes of the first message were kept as they came. */
  assert_non_null(
      strstr(field(r->element[0]->element[1], "d")->str, "\\u00e9 \\\"q\\\""));
  freeReplyObject(r);
  redisFree(c);
  fx_free(f);
  redis_server_free(srv);
}

/* A client storing MESSAGE_CREATE and TYPING_START, its 3 entries in
 * the stream, then a duplicate XADD of (session, s 4) such as a resend
 * after a lost reply makes.  Sets *session to the mock's session id. */
static struct fx *start_with_duplicate(const struct redis_server *srv,
                                       const char **session) {
  struct fx *f =
      start(srv, ",\"events\":[\"MESSAGE_CREATE\",\"TYPING_START\"]");
  redisContext *c;
  redisReply *r;

  assert_true(wait_xlen(f, srv, "dgw:{t}:events", 3));
  *session = dgw_mock_conn_session_id(dgw_mock_last_conn(f->mock));
  c = rfx_connect(srv);
  r = redisCommand(c,
                   "XADD dgw:{t}:events * t TYPING_START s 4 shard 0 "
                   "session %s d {\"t\":1}",
                   *session);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  freeReplyObject(r);
  redisFree(c);
  return f;
}

/* Runs the worker command line `cmd`: all acknowledged, it prints nothing
 * and exits non-zero (exit 1: nothing within its wait). */
static void expect_nothing(const char *cmd) {
  char line[1024];
  FILE *p = popen(cmd, "r");

  assert_non_null(p);
  assert_null(fgets(line, sizeof(line), p));
  assert_int_not_equal(pclose(p), 0);
}

/* The Python worker (plugins/redis-streams/worker.py, Debian's
 * python3-redis) reads the stream in a consumer group: every event once,
 * a duplicate XADD of (session, s) (what a resend after a lost reply
 * makes) skipped, and all acknowledged (a second run finds nothing). */
static void test_python_worker(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  const char *python;
  struct fx *f;
  char cmd[2048], line[1024];
  const char *session;
  FILE *p;
  int n = 0, st;

  (void)state;
  assert_non_null(srv);
  python = rfx_python();
  f = start_with_duplicate(srv, &session);
  snprintf(cmd, sizeof(cmd),
           "timeout -k 5 %d %s %s --url %s --name t --group g --count 3 "
           "--timeout 5",
           (int)(30 * time_scale()), python, WORKER_PY, redis_server_url(srv));
  p = popen(cmd, "r");
  assert_non_null(p);
  while (fgets(line, sizeof(line), p) != NULL) {
    static const char *const want[] = {"\"t\": \"MESSAGE_CREATE\", \"s\": 3",
                                       "\"t\": \"TYPING_START\", \"s\": 4",
                                       "\"t\": \"MESSAGE_CREATE\", \"s\": 5"};

    if (n >= 3 || strstr(line, want[n]) == NULL ||
        strstr(line, session) == NULL)
      fail_msg("worker line %d: %s", n, line);
    n++;
  }
  st = pclose(p);
  assert_int_equal(n, 3);
  assert_int_equal(st, 0);
  /* All acknowledged: the group has nothing pending, a new run gets
   * nothing. */
  snprintf(cmd, sizeof(cmd),
           "timeout -k 5 %d %s %s --url %s --name t --group g --count 1 "
           "--timeout 0.3",
           (int)(30 * time_scale()), python, WORKER_PY, redis_server_url(srv));
  expect_nothing(cmd);
  fx_free(f);
  redis_server_free(srv);
}

/* The C worker (plugins/redis-streams/worker.c, hiredis): the same as the
 * Python one, with its own line format. */
static void test_c_worker(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *f;
  char cmd[2048], line[1024], want[256];
  const char *session;
  FILE *p;
  int n = 0;
  static const char *const want_t[] = {"MESSAGE_CREATE", "TYPING_START",
                                       "MESSAGE_CREATE"};

  (void)state;
  assert_non_null(srv);
  f = start_with_duplicate(srv, &session);
  snprintf(cmd, sizeof(cmd),
           "timeout -k 5 %d %s --socket %s --name t --group g --count 3 "
           "--timeout 5",
           (int)(30 * time_scale()), WORKER_C, redis_server_socket(srv));
  p = popen(cmd, "r");
  assert_non_null(p);
  while (fgets(line, sizeof(line), p) != NULL) {
    if (n >= 3)
      fail_msg("extra worker line: %s", line);
    snprintf(want, sizeof(want), "t=%s s=%d shard=0 session=%s d=%s\n",
             want_t[n], n + 3, session, seen_d[n + 3]);
    assert_string_equal(line, want);
    n++;
  }
  assert_int_equal(pclose(p), 0);
  assert_int_equal(n, 3);
  snprintf(cmd, sizeof(cmd),
           "timeout -k 5 %d %s --socket %s --name t --group g --count 1 "
           "--timeout 0.3",
           (int)(30 * time_scale()), WORKER_C, redis_server_socket(srv));
  expect_nothing(cmd);
  fx_free(f);
  redis_server_free(srv);
}

/* layout per-event: one stream per event name; maxlen 1 trims (MAXLEN ~
 * keeps at least the newest entry; approximate trimming may keep more). */
static void test_per_event_layout(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *f;

  (void)state;
  assert_non_null(srv);
  f = start(srv, ",\"layout\":\"per-event\",\"maxlen\":1000");
  assert_true(wait_xlen(f, srv, "dgw:{t}:events:PRESENCE_UPDATE", 1));
  assert_int_equal(xlen(srv, "dgw:{t}:events:READY"), 1);
  assert_int_equal(xlen(srv, "dgw:{t}:events:GUILD_CREATE"), 1);
  assert_int_equal(xlen(srv, "dgw:{t}:events:MESSAGE_CREATE"), 2);
  assert_int_equal(xlen(srv, "dgw:{t}:events:TYPING_START"), 1);
  assert_int_equal(xlen(srv, "dgw:{t}:events"), 0);
  fx_free(f);
  redis_server_free(srv);
}

/* Redis stopped, then killed mid-stream: the XADDs in flight when the
 * connection died and the events that come while it is down are stored
 * once it is back (the restarted Redis is empty: it holds exactly those,
 * in order). */
static void test_redis_restart(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *f;
  redisContext *c;
  redisReply *r;
  struct dgw_mock_conn *conn;

  (void)state;
  assert_non_null(srv);
  f = start(srv, ",\"events\":[\"MESSAGE_CREATE\"]");
  assert_true(wait_xlen(f, srv, "dgw:{t}:events", 2));
  /* A stopped server: the XADDs of s 7-9 go out and get no reply... */
  assert_int_equal(redis_server_pause(srv), 0);
  conn = dgw_mock_last_conn(f->mock);
  for (int i = 0; i < 3; i++)
    assert_int_equal(
        dgw_mock_conn_send_dispatch(conn, "MESSAGE_CREATE", "{\"late\":1}"),
        DGW_OK);
  run_for(f->base, 100);
  /* ... then it dies: they failed in flight and must be sent again; s 10
   * and 11 come while it is gone. */
  assert_int_equal(redis_server_kill(srv), 0);
  run_for(f->base, 50);
  for (int i = 0; i < 2; i++)
    assert_int_equal(
        dgw_mock_conn_send_dispatch(conn, "MESSAGE_CREATE", "{\"late\":2}"),
        DGW_OK);
  run_for(f->base, 200);
  assert_true(fx_find_line(f, 0, "Redis down") >= 0);
  assert_int_equal(redis_server_restart(srv), 0);
  assert_true(wait_xlen(f, srv, "dgw:{t}:events", 5));
  c = rfx_connect(srv);
  r = redisCommand(c, "XRANGE dgw:{t}:events - +");
  assert_int_equal(r->elements, 5);
  for (size_t i = 0; i < 5; i++) {
    char want[8];

    snprintf(want, sizeof(want), "%zu", 7 + i);
    assert_string_equal(field(r->element[i]->element[1], "s")->str, want);
  }
  freeReplyObject(r);
  redisFree(c);
  fx_free(f);
  redis_server_free(srv);
}

/* The most bytes the plugin held, from its last release line ("... peak
 * N bytes held)"), or -1. */
static long long peak_held(struct fx *f) {
  const char *p;
  int i = -1, at;

  while ((at = fx_find_line(f, i + 1, "releasing the shards (peak")) >= 0)
    i = at;
  if (i < 0 || (p = strstr(f->lines[i], "(peak ")) == NULL)
    return -1;
  return atoll(p + 6);
}

/* The resident set of this process (client, mock and all), in KiB. */
static long rss_kib(void) {
  FILE *fp = fopen("/proc/self/status", "r");
  char line[256];
  long kib = -1;

  if (fp == NULL)
    return -1;
  while (fgets(line, sizeof(line), fp) != NULL)
    if (strncmp(line, "VmRSS:", 6) == 0)
      kib = atol(line + 6);
  fclose(fp);
  return kib;
}

/* Input: Redis killed while 30 events come and max_buffer_bytes is 4096
 * (a few entries of ~450 bytes).  The plugin pauses the shard rather than
 * drop (the old plugin dropped ~23 of the 30), says so, never holds more
 * than the bound, and once Redis is back releases it: all 30 are stored
 * (the restarted Redis is empty: it holds exactly them, in order). */
static void test_buffer_bound_pauses(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *f;
  struct dgw_mock_conn *conn;
  redisContext *c;
  redisReply *r;

  (void)state;
  assert_non_null(srv);
  f = start(srv, ",\"events\":[\"MESSAGE_CREATE\"],\"max_buffer_bytes\":4096");
  assert_true(wait_xlen(f, srv, "dgw:{t}:events", 2));
  assert_int_equal(redis_server_kill(srv), 0);
  run_for(f->base, 50);
  conn = dgw_mock_last_conn(f->mock);
  for (int i = 0; i < 30; i++)
    assert_int_equal(
        dgw_mock_conn_send_dispatch(conn, "MESSAGE_CREATE", "{\"x\":1}"),
        DGW_OK);
  run_for(f->base, 200);
  assert_int_equal(fx_count_lines(f, "pausing the shards"), 1);
  assert_int_equal(fx_count_lines(f, "dropping events"), 0);
  assert_int_equal(redis_server_restart(srv), 0);
  assert_true(wait_xlen(f, srv, "dgw:{t}:events", 30));
  run_for(f->base, 100);
  c = rfx_connect(srv);
  r = redisCommand(c, "XRANGE dgw:{t}:events - +");
  assert_int_equal(r->elements, 30);
  for (size_t i = 0; i < 30; i++) {
    char want[8];

    snprintf(want, sizeof(want), "%zu", 7 + i);
    assert_string_equal(field(r->element[i]->element[1], "s")->str, want);
  }
  freeReplyObject(r);
  redisFree(c);
  assert_true(fx_count_lines(f, "releasing the shards") >= 1);
  assert_true(peak_held(f) > 0 && peak_held(f) <= 4096);
  fx_free(f);
  redis_server_free(srv);
}

/* Input: the mock streams MESSAGE_CREATEs (heartbeat interval 300 ms)
 * while Redis is stopped (SIGSTOP) for 1.5 s, five intervals, then
 * continued.  The plugin pauses the shard; the pause outlasts the
 * heartbeat, so the shard leaves keeping its session and RESUMEs once
 * Redis drained; the mock replays.  The stream holds every s sent, at
 * least once, duplicates (if any) only as the same (session, s); the
 * plugin held at most max_buffer_bytes, and the process's RSS stays flat
 * (under 16 MiB of growth while ~1,500 events of 600 bytes go by). */
static void test_outage_longer_than_heartbeat(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct dgw_mock_config mc;
  struct fx *f;
  redisContext *c;
  redisReply *r;
  char body[600];
  static unsigned char got[4096];
  int sent = 0, dups = 0;
  long rss0, rss1;
  double t0, end;
  int stopped = 0, continued = 0;
  const char *session;

  (void)state;
  assert_non_null(srv);
  memset(&mc, 0, sizeof(mc));
  /* Scaled, as the outage below, so that a slow instrumented run keeps
   * the same proportions (and its beats within the send budget). */
  mc.heartbeat_interval_ms = (uint32_t)(300 * time_scale());
  memset(got, 0, sizeof(got));
  memset(mc_seen, 0, sizeof(mc_seen));
  snprintf(body, sizeof(body), "{\"pad\":\"%0500d\"}", 0);
  f = start_with(
      srv, ",\"events\":[\"MESSAGE_CREATE\"],\"max_buffer_bytes\":65536", &mc);
  assert_true(wait_xlen(f, srv, "dgw:{t}:events", 2));
  session = dgw_mock_conn_session_id(dgw_mock_last_conn(f->mock));
  assert_non_null(session);
  sent = 2; /* s 3 and 4 of the script: the MESSAGE_CREATEs */
  rss0 = rss_kib();
  t0 = now_ms();
  end = t0 + 3500 * time_scale();
  while (now_ms() < end) {
    double t = now_ms() - t0;
    struct dgw_mock_conn *conn = dgw_mock_last_conn(f->mock);

    if (!stopped && t > 500 * time_scale()) {
      assert_int_equal(redis_server_pause(srv), 0);
      stopped = 1;
    }
    if (stopped && !continued && t > 2000 * time_scale()) {
      assert_int_equal(redis_server_resume(srv), 0);
      continued = 1;
    }
    /* Only on a connection that carries the session (one still in HELLO
     * counts on its own and keeps nothing for a replay). */
    if (conn != NULL && dgw_mock_conn_session_id(conn) == NULL)
      conn = NULL;
    for (int i = 0; i < 5 && conn != NULL && sent < 3000; i++)
      if (dgw_mock_conn_send_dispatch(conn, "MESSAGE_CREATE", body) == DGW_OK)
        sent++;
    run_for(f->base, 10);
  }
  assert_true(continued);
  /* Everything sent reaches the stream (the script's s 3 and 5, then the
   * ones sent here); wait until it is all there and nothing more comes. */
  {
    double wait_end = deadline_ms(15);
    long long want = sent;

    long long n = -1, before;

    /* Until all are there (duplicates count too) and nothing more comes. */
    do {
      before = n;
      run_for(f->base, 200);
      n = xlen(srv, "dgw:{t}:events");
    } while (now_ms() < wait_end && (n < want || n != before));
  }
  rss1 = rss_kib();
  c = rfx_connect(srv);
  r = redisCommand(c, "XRANGE dgw:{t}:events - +");
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_ARRAY);
  for (size_t i = 0; i < r->elements; i++) {
    const redisReply *fields = r->element[i]->element[1];
    long s = atol(field(fields, "s")->str);

    assert_string_equal(field(fields, "session")->str, session);
    assert_true(s > 0 && s < (long)sizeof(got));
    if (got[s]++) {
      dups++;
      if (getenv("DGW_TEST_VERBOSE") != NULL)
        print_message("# dup s %ld at entry %zu\n", s, i);
    }
    if (getenv("DGW_TEST_VERBOSE") != NULL && i > 0 &&
        atol(field(r->element[i - 1]->element[1], "s")->str) + 1 != s)
      print_message("# entry %zu: s %ld after %s\n", i, s,
                    field(r->element[i - 1]->element[1], "s")->str);
  }
  {
    /* The wanted seqs: those of the MESSAGE_CREATEs the application saw
     * (the mock's RESUMED takes a seq too), each sent once. */
    int have = 0, missing = 0, seen = 0;

    for (long s = 0; s < (long)sizeof(mc_seen); s++) {
      if (!mc_seen[s])
        continue;
      seen++;
      if (got[s])
        have++;
      else if (missing++ < 5)
        print_message("# s %ld missing\n", s);
    }
    if (missing > 0) {
      print_message("# sent %d, app last seq %lld, nseen %d, xlen %lld\n", sent,
                    (long long)f->last_seq, f->nseen,
                    xlen(srv, "dgw:{t}:events"));
      run_for(f->base, 2000);
      print_message("# 2 s later: xlen %lld\n", xlen(srv, "dgw:{t}:events"));
    }
    if (missing > 0)
      for (int i = 0; i < f->nlines; i++)
        if (strstr(f->lines[i], "DEBUG") == NULL)
          print_message("# log: %s\n", f->lines[i]);
    assert_int_equal(missing, 0);
    assert_int_equal(seen, sent);
    assert_int_equal(have, sent);
  }
  freeReplyObject(r);
  redisFree(c);
  print_message("# %d events, %d duplicates, %d pauses, peak %lld bytes held, "
                "RSS %ld -> %ld KiB, %d resumes\n",
                sent, dups, fx_count_lines(f, "pausing the shards"),
                peak_held(f), rss0, rss1, f->resumed);
  assert_true(fx_count_lines(f, "pausing the shards") >= 1);
  assert_true(f->resumed >= 1); /* the pause outlasted the heartbeat */
  assert_true(peak_held(f) > 0 && peak_held(f) <= 65536);
  /* Not under valgrind (DGW_TEST_TIME_SCALE > 1): its own bookkeeping is
   * most of the RSS there (23 MB of "growth" in one run). */
  if (rss0 > 0 && rss1 > 0 && time_scale() <= 1.0)
    assert_true(rss1 - rss0 < 16 * 1024);
  fx_free(f);
  redis_server_free(srv);
}

/* Config errors refuse the plugin with a line naming the fault. */
static void test_bad_config(void **state) {
  static const struct rfx_refusal bad[] = {
      {"{}", "\"redis\" (a Redis URL) is required"},
      {"{\"redis\":\"http://x\"}", "must start with redis:// or unix://"},
      {"{\"redis\":\"unix:///x\",\"colour\":1}", "unknown key \"colour\""},
      {"{\"redis\":\"unix:///x\",\"layout\":\"many\"}", "\"layout\" must be"},
      {"{\"redis\":\"unix:///x\",\"maxlen\":-1}", "\"maxlen\" must be"},
      {"{\"redis\":\"unix:///x\",\"name\":\"a{b}\"}", "\"name\" must be"},
      {"[1]", "must be a JSON object"},
  };

  (void)state;
  rfx_expect_refused(bad, sizeof(bad) / sizeof(bad[0]));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_entries),
      cmocka_unit_test(test_python_worker),
      cmocka_unit_test(test_c_worker),
      cmocka_unit_test(test_per_event_layout),
      cmocka_unit_test(test_redis_restart),
      cmocka_unit_test(test_buffer_bound_pauses),
      cmocka_unit_test(test_outage_longer_than_heartbeat),
      cmocka_unit_test(test_bad_config),
  };
  ignore_sigpipe();
  if (getenv("DGW_TEST_FILTER") != NULL) /* one test, e.g. under valgrind */
    cmocka_set_test_filter(getenv("DGW_TEST_FILTER"));
  return cmocka_run_group_tests_name("redis_streams", tests, NULL, NULL);
}
