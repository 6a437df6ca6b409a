/*
 * redis-streams' command streams (plugins/redis-streams/commands.c and
 * command_writer.c, docs/streams.md) in a client against the mock gateway
 * and a private redis-server: bad commands each get their own error reply
 * and the stream goes on; commands reach the mock through the shard's sender; a
 * member request is answered with its chunks gathered; reading starts
 * after the acknowledged id; and the two example workers (worker.py on
 * python3-redis, worker.c on hiredis) answer every "!ping" of a scripted
 * run with a presence update the mock records.
 */
#include "config.h"

#include "redis_fixture.h"
#define CMDS "dgw:{t}:commands:0"

/* XADDs a command to stream `key` (fields as name, value pairs,
 * NULL-terminated) and returns its entry id in `id_out`. */
static void vxadd(const struct redis_server *srv, const char *key, char *id_out,
                  size_t n, va_list ap) {
  redisContext *c = rfx_connect(srv);
  const char *argv[32];
  size_t len[32];
  int argc = 0;
  const char *s;
  redisReply *r;

  argv[argc++] = "XADD";
  argv[argc++] = key;
  argv[argc++] = "*";
  while ((s = va_arg(ap, const char *)) != NULL && argc < 32)
    argv[argc++] = s;
  for (int i = 0; i < argc; i++)
    len[i] = strlen(argv[i]);
  r = redisCommandArgv(c, argc, argv, len);
  assert_non_null(r);
  assert_int_equal(r->type, REDIS_REPLY_STRING);
  if (id_out != NULL)
    snprintf(id_out, n, "%s", r->str);
  freeReplyObject(r);
  redisFree(c);
}

/* vxadd() to shard 0's stream. */
static void xadd(const struct redis_server *srv, char *id_out, size_t n, ...) {
  va_list ap;

  va_start(ap, n);
  vxadd(srv, CMDS, id_out, n, ap);
  va_end(ap);
}

/* vxadd() to `key`, without the entry id. */
static void xadd_to(const struct redis_server *srv, const char *key, ...) {
  va_list ap;

  va_start(ap, key);
  vxadd(srv, key, NULL, 0, ap);
  va_end(ap);
}

/* The value of `name` in the first entry of stream `key`, copied into
 * `out` ("" when absent); returns 1 when the stream has an entry. */
static int reply_field(const struct redis_server *srv, const char *key,
                       const char *name, char *out, size_t n) {
  redisContext *c = rfx_connect(srv);
  redisReply *r = redisCommand(c, "XRANGE %s - + COUNT 1", key);
  int have = 0;

  out[0] = '\0';
  if (r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1) {
    const redisReply *f = r->element[0]->element[1];

    have = 1;
    for (size_t i = 0; i + 1 < f->elements; i += 2)
      if (strcmp(f->element[i]->str, name) == 0)
        snprintf(out, n, "%s", f->element[i + 1]->str);
  }
  freeReplyObject(r);
  redisFree(c);
  return have;
}

static long long ttl_ms(const struct redis_server *srv, const char *key) {
  return rfx_integer(srv, "PTTL", key, -3);
}

static void get_string(const struct redis_server *srv, const char *key,
                       char *out, size_t n) {
  redisContext *c = rfx_connect(srv);
  redisReply *r = redisCommand(c, "GET %s", key);

  snprintf(out, n, "%s",
           r != NULL && r->type == REDIS_REPLY_STRING ? r->str : "");
  freeReplyObject(r);
  redisFree(c);
}

/* Runs the loop until `key` has an entry or 10 s (scaled) pass. */
static int wait_reply(struct fx *f, const struct redis_server *srv,
                      const char *key) {
  double end = deadline_ms(10);
  char v[8];

  while (now_ms() < end) {
    if (reply_field(srv, key, "status", v, sizeof(v)))
      return 1;
    run_for(f->base, 20);
  }
  return 0;
}

/* The number of op 3 payloads whose first activity is `name`. */
static int activity_seen(const struct fx *f, const char *name) {
  int n = 0;

  for (int i = 0; i < f->nactivity && i < FX_MAX_ACTIVITY; i++)
    n += strcmp(f->activity[i], name) == 0;
  return n;
}

/* A client of one shard with the plugin reading its command stream,
 * READY.  `script` adds the mock's dispatches (may be NULL). */
static struct fx *start_with(const struct redis_server *srv,
                             void (*script)(struct fx *),
                             struct dgw_mock_config *mc) {
  struct fx *f = fx_new(mc);
  char config[1024];

  if (script != NULL)
    script(f);
  fx_client_new(f);
  snprintf(config, sizeof(config),
           "{\"redis\":\"%s\",\"name\":\"t\",\"commands\":true,"
           "\"events\":[\"MESSAGE_CREATE\"],\"reply_ttl_ms\":60000}",
           redis_server_url(srv));
  rfx_load_streams(f, config);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  return f;
}

static struct fx *start(const struct redis_server *srv,
                        void (*script)(struct fx *)) {
  return start_with(srv, script, NULL);
}

#define PRESENCE(name)                                                         \
  "{\"status\":\"idle\",\"since\":null,\"afk\":false,\"activities\":[{"        \
  "\"name\":\"" name "\",\"type\":0}]}"

/* Input: one bad command of each kind, then a good one, in shard 0's
 * stream.  Each bad one gets an error reply naming its fault (the one
 * without an id under its entry id); the good one after them is sent
 * (the mock records its presence) and answered ok; the acknowledged id
 * is the last entry's: the stream is not stuck. */
static void test_bad_commands(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *f;
  char big[5200], no_id[48], last[48], key[128], v[512];
  static const struct {
    const char *id, *error;
  } want[] = {
      {"c-op", "unknown_op"},        {"c-json", "invalid_json"},
      {"c-big", "too_large"},        {"c-shard", "wrong_shard"},
      {"c-arg", "invalid_argument"}, {"c-nod", "invalid_json"},
  };

  (void)state;
  assert_non_null(srv);
  f = start(srv, NULL);
  memset(big, 0, sizeof(big));
  snprintf(big, sizeof(big), "{\"op\":3,\"d\":\"%05000d\"}", 0);
  xadd(srv, NULL, 0, "id", "c-op", "op", "dance", "d", "{}", NULL);
  xadd(srv, NULL, 0, "id", "c-json", "op", "presence", "d",
       "{\"status\":", NULL);
  xadd(srv, NULL, 0, "id", "c-big", "op", "raw", "d", big, NULL);
  xadd(srv, NULL, 0, "id", "c-shard", "op", "presence", "shard", "3", "d",
       PRESENCE("wrong"), NULL);
  xadd(srv, no_id, sizeof(no_id), "op", "presence", "d", PRESENCE("noid"),
       NULL);
  xadd(srv, NULL, 0, "id", "c-arg", "op", "presence", "d",
       "{\"status\":\"sleepy\"}", NULL);
  xadd(srv, NULL, 0, "id", "c-nod", "op", "presence", NULL);
  xadd(srv, last, sizeof(last), "id", "c-good", "op", "presence", "d",
       PRESENCE("after-bad"), NULL);
  assert_true(wait_reply(f, srv, "dgw:{t}:replies:c-good"));
  for (size_t i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
    snprintf(key, sizeof(key), "dgw:{t}:replies:%s", want[i].id);
    if (!reply_field(srv, key, "error", v, sizeof(v)))
      fail_msg("no reply to %s", want[i].id);
    if (strcmp(v, want[i].error) != 0)
      fail_msg("reply to %s: error \"%s\", want \"%s\"", want[i].id, v,
               want[i].error);
    assert_true(reply_field(srv, key, "status", v, sizeof(v)));
    assert_string_equal(v, "error");
    assert_true(reply_field(srv, key, "why", v, sizeof(v)));
    assert_true(strlen(v) > 0);
  }
  /* The dgw check's own words for the bad status. */
  assert_true(reply_field(srv, "dgw:{t}:replies:c-arg", "why", v, sizeof(v)));
  assert_non_null(strstr(v, "status"));
  /* No id: the reply is under the entry id. */
  snprintf(key, sizeof(key), "dgw:{t}:replies:%s", no_id);
  assert_true(reply_field(srv, key, "error", v, sizeof(v)));
  assert_string_equal(v, "missing_id");
  /* The good one went out, once; the bad ones did not. */
  assert_true(
      reply_field(srv, "dgw:{t}:replies:c-good", "status", v, sizeof(v)));
  assert_string_equal(v, "ok");
  assert_int_equal(activity_seen(f, "after-bad"), 1);
  assert_int_equal(activity_seen(f, "wrong"), 0);
  assert_int_equal(activity_seen(f, "noid"), 0);
  /* Acknowledged up to the last entry; replies expire. */
  run_for(f->base, 100);
  get_string(srv, CMDS ":acked", v, sizeof(v));
  assert_string_equal(v, last);
  assert_true(ttl_ms(srv, "dgw:{t}:replies:c-good") > 0);
  assert_true(ttl_ms(srv, "dgw:{t}:replies:c-good") <= 60000);
  fx_free(f);
  redis_server_free(srv);
}

/* request_members: the reply carries the chunks gathered (the mock's
 * members whose name starts with "user1", limit 3); channel_info and
 * soundboard are sent (ok) and their answers come as events. */
static void test_request_members(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *f;
  char v[4096];

  (void)state;
  assert_non_null(srv);
  f = start(srv, NULL);
  xadd(srv, NULL, 0, "id", "m1", "op", "request_members", "d",
       "{\"guild_id\":\"81384788765712384\",\"query\":\"user1\",\"limit\":3}",
       NULL);
  xadd(srv, NULL, 0, "id", "ci", "op", "channel_info", "d",
       "{\"guild_id\":\"81384788765712384\",\"fields\":[\"status\"]}", NULL);
  xadd(srv, NULL, 0, "id", "sb", "op", "soundboard", "d",
       "{\"guild_ids\":[\"81384788765712384\"]}", NULL);
  assert_true(wait_reply(f, srv, "dgw:{t}:replies:m1"));
  assert_true(wait_reply(f, srv, "dgw:{t}:replies:sb"));
  assert_true(reply_field(srv, "dgw:{t}:replies:m1", "status", v, sizeof(v)));
  assert_string_equal(v, "ok");
  assert_true(reply_field(srv, "dgw:{t}:replies:m1", "result", v, sizeof(v)));
  assert_non_null(strstr(v, "\"chunk_count\":1"));
  assert_non_null(strstr(v, "\"username\":\"user1\""));
  assert_true(reply_field(srv, "dgw:{t}:replies:ci", "status", v, sizeof(v)));
  assert_string_equal(v, "ok");
  assert_true(reply_field(srv, "dgw:{t}:replies:sb", "status", v, sizeof(v)));
  assert_string_equal(v, "ok");
  assert_int_equal(f->count[8], 1);
  assert_int_equal(f->count[43], 1);
  assert_int_equal(f->count[31], 1);
  fx_free(f);
  redis_server_free(srv);
}

/* A takeover: the stream holds two commands and the acknowledged id is
 * the first's (a previous process sent it).  The new process sends only
 * the second, then acknowledges it. */
static void test_resume_after_acked(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *f;
  char first[48], second[48], v[64];
  redisContext *c;
  redisReply *r;

  (void)state;
  assert_non_null(srv);
  xadd(srv, first, sizeof(first), "id", "old", "op", "presence", "d",
       PRESENCE("old"), NULL);
  xadd(srv, second, sizeof(second), "id", "new", "op", "presence", "d",
       PRESENCE("new"), NULL);
  c = rfx_connect(srv);
  r = redisCommand(c, "SET %s %s", CMDS ":acked", first);
  freeReplyObject(r);
  redisFree(c);
  f = start(srv, NULL);
  assert_true(wait_reply(f, srv, "dgw:{t}:replies:new"));
  run_for(f->base, 300);
  assert_int_equal(activity_seen(f, "new"), 1);
  assert_int_equal(activity_seen(f, "old"), 0);
  assert_false(reply_field(srv, "dgw:{t}:replies:old", "status", v, sizeof(v)));
  get_string(srv, CMDS ":acked", v, sizeof(v));
  assert_string_equal(v, second);
  fx_free(f);
  redis_server_free(srv);
}

/* A send budget of 10 per 500 ms (5 of them reserved for heartbeats and
 * IDENTIFY/RESUME: 5 commands per window). */
static void small_budget(struct fx *f) {
  assert_int_equal(dgw_options_set_send_limit(f->opt, 10, 500, 256), DGW_OK);
}

/* Input: 12 presence commands at once with 5 command slots per 500 ms.
 * They go through the shard's limiter, not around it: all 12 reach the
 * mock and are answered ok, the mock (its window a little shorter, as it
 * stamps arrival) never saw more than 10 payloads in a window and never
 * closed 4008, and the last one left at least two windows after the
 * first. */
static void test_rate_limit_respected(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct dgw_mock_config mc;
  struct dgw_mock_stats ms;
  struct fx *f;
  char key[64], v[16];
  double t0;

  (void)state;
  assert_non_null(srv);
  memset(&mc, 0, sizeof(mc));
  mc.rate_budget = 10;
  mc.rate_window_ms = 450;
  f = start_with(srv, small_budget, &mc);
  t0 = now_ms();
  for (int i = 0; i < 12; i++) {
    snprintf(key, sizeof(key), "r%d", i);
    xadd(srv, NULL, 0, "id", key, "op", "presence", "d", PRESENCE("rl"), NULL);
  }
  for (int i = 0; i < 12; i++) {
    snprintf(key, sizeof(key), "dgw:{t}:replies:r%d", i);
    assert_true(wait_reply(f, srv, key));
    assert_true(reply_field(srv, key, "status", v, sizeof(v)));
    assert_string_equal(v, "ok");
  }
  assert_int_equal(activity_seen(f, "rl"), 12);
  assert_true(now_ms() - t0 >= 2 * 450);
  dgw_mock_get_stats(f->mock, &ms);
  assert_int_equal(ms.rate_limit_closes, 0);
  assert_true(ms.max_in_window <= 10);
  print_message("# 12 commands in %.0f ms, at most %llu payloads in a window\n",
                now_ms() - t0, (unsigned long long)ms.max_in_window);
  fx_free(f);
  redis_server_free(srv);
}

/* Compares two stream entry ids "MS-SEQ": <0, 0 or >0. */
static int id_cmp(const char *a, const char *b) {
  unsigned long long am = 0, as = 0, bm = 0, bs = 0;

  sscanf(a, "%llu-%llu", &am, &as);
  sscanf(b, "%llu-%llu", &bm, &bs);
  if (am != bm)
    return am < bm ? -1 : 1;
  return as < bs ? -1 : as > bs;
}

/* 1 when entry `id` is still in stream `key`. */
static int entry_exists(redisContext *c, const char *key, const char *id) {
  redisReply *r = redisCommand(c, "XRANGE %s %s %s", key, id, id);
  int have = r != NULL && r->type == REDIS_REPLY_ARRAY && r->elements == 1;

  freeReplyObject(r);
  return have;
}

static long long stream_len(redisContext *c, const char *key) {
  redisReply *r = redisCommand(c, "XLEN %s", key);
  long long n = r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : -1;

  freeReplyObject(r);
  return n;
}

#define NTRIM 20

/* Input: 20 presence commands at once with 5 command slots per 500 ms
 * (about 2 s to send them all).  While they go, every 20 ms: each entry
 * after the acknowledged id is still in the stream (trimming never
 * removes a command not yet acknowledged), and the stream gets shorter
 * than 20 before the last one is acknowledged (trimmed as it goes, once
 * a second).  At the end only the last entry (the acknowledged id) is
 * left, and all 20 were sent. */
static void test_acked_commands_trimmed(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct dgw_mock_config mc;
  struct fx *f;
  char ids[NTRIM][48], key[64], acked[64];
  int shrank_early = 0, checks = 0;
  long long len = -1;
  redisContext *c;
  double end;

  (void)state;
  assert_non_null(srv);
  memset(&mc, 0, sizeof(mc));
  mc.rate_budget = 10;
  mc.rate_window_ms = 450;
  f = start_with(srv, small_budget, &mc);
  for (int i = 0; i < NTRIM; i++) {
    snprintf(key, sizeof(key), "tr%d", i);
    xadd(srv, ids[i], sizeof(ids[i]), "id", key, "op", "presence", "d",
         PRESENCE("tr"), NULL);
  }
  c = rfx_connect(srv);
  end = deadline_ms(15);
  while (now_ms() < end) {
    get_string(srv, CMDS ":acked", acked, sizeof(acked));
    len = stream_len(c, CMDS);
    for (int i = 0; i < NTRIM; i++)
      if (acked[0] == '\0' || id_cmp(ids[i], acked) > 0) {
        if (!entry_exists(c, CMDS, ids[i]))
          fail_msg("entry %s (not acknowledged; acked %s) was trimmed", ids[i],
                   acked);
        checks++;
      }
    if (acked[0] != '\0' && id_cmp(acked, ids[NTRIM - 1]) < 0 && len < NTRIM)
      shrank_early = 1;
    if (strcmp(acked, ids[NTRIM - 1]) == 0 && len == 1)
      break;
    run_for(f->base, 20);
  }
  assert_string_equal(acked, ids[NTRIM - 1]);
  assert_int_equal(len, 1);
  assert_true(entry_exists(c, CMDS, ids[NTRIM - 1]));
  assert_true(shrank_early);
  assert_int_equal(activity_seen(f, "tr"), NTRIM);
  print_message("# %d checks of unacknowledged entries, all kept\n", checks);
  redisFree(c);
  fx_free(f);
  redis_server_free(srv);
}

/* Config errors of the command streams refuse the plugin with a line
 * naming the fault. */
static void test_bad_config(void **state) {
  static const struct rfx_refusal bad[] = {
      {"{\"redis\":\"unix:///x\",\"commands\":1}",
       "\"commands\" must be true or false"},
      {"{\"redis\":\"unix:///x\",\"reply_ttl_ms\":5}",
       "\"reply_ttl_ms\" must be"},
  };

  (void)state;
  rfx_expect_refused(bad, sizeof(bad) / sizeof(bad[0]));
}

/* A send budget of 10 per 10 s: a few commands (the budget less the
 * reserve and what IDENTIFY used), then the queue waits. */
static void slow_budget(struct fx *f) {
  assert_int_equal(dgw_options_set_send_limit(f->opt, 10, 10000, 256), DGW_OK);
}

/* Input: 7 presence commands with a few command slots per 10 s; once the
 * slots are used, the next command waits in the shard's queue, and the
 * gateway ends the session (4004, fatal).  The waiting one gets error
 * session_lost and is acknowledged; the one after it was never taken
 * from Redis (the shard is no longer READY here): no reply, not
 * acknowledged, left for whichever process runs the shard next. */
static void test_session_lost(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *f;
  struct dgw_gateway *gw;
  char key[64], v[64], entry[7][48];
  double end;
  int k = 0;

  (void)state;
  assert_non_null(srv);
  f = start(srv, slow_budget);
  gw = dgw_client_gateway(f->client, 0);
  for (int i = 0; i < 7; i++) {
    snprintf(key, sizeof(key), "q%d", i);
    xadd(srv, entry[i], sizeof(entry[i]), "id", key, "op", "presence", "d",
         PRESENCE("q"), NULL);
  }
  end = deadline_ms(10);
  while (now_ms() < end && dgw_gateway_queued(gw) == 0)
    run_for(f->base, 20);
  assert_int_equal(dgw_gateway_queued(gw), 1);
  run_for(f->base, 100); /* the replies of those written */
  while (k < 7) {
    snprintf(key, sizeof(key), "dgw:{t}:replies:q%d", k);
    if (!reply_field(srv, key, "status", v, sizeof(v)))
      break;
    assert_string_equal(v, "ok");
    k++;
  }
  assert_true(k >= 1 && k <= 5);
  assert_int_equal(activity_seen(f, "q"), k);
  assert_int_equal(
      dgw_mock_conn_close(dgw_mock_last_conn(f->mock), 4004, "bad token"),
      DGW_OK);
  snprintf(key, sizeof(key), "dgw:{t}:replies:q%d", k);
  assert_true(wait_reply(f, srv, key));
  assert_true(reply_field(srv, key, "error", v, sizeof(v)));
  assert_string_equal(v, "session_lost");
  run_for(f->base, 300);
  snprintf(key, sizeof(key), "dgw:{t}:replies:q%d", k + 1);
  assert_false(reply_field(srv, key, "status", v, sizeof(v)));
  get_string(srv, CMDS ":acked", v, sizeof(v));
  assert_string_equal(v, entry[k]);
  assert_int_equal(activity_seen(f, "q"), k);
  print_message("# %d commands written, the next one session_lost\n", k);
  fx_free(f);
  redis_server_free(srv);
}

/* Input: the connection drops; a command XADDed right then.  It is sent
 * once the shard RESUMEd (no error: commands wait for the shard), and
 * answered ok. */
static void test_waits_for_resume(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *f;
  char v[16];

  (void)state;
  assert_non_null(srv);
  f = start(srv, NULL);
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  xadd(srv, NULL, 0, "id", "after-drop", "op", "presence", "d",
       PRESENCE("after-drop"), NULL);
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  assert_true(wait_reply(f, srv, "dgw:{t}:replies:after-drop"));
  assert_true(
      reply_field(srv, "dgw:{t}:replies:after-drop", "status", v, sizeof(v)));
  assert_string_equal(v, "ok");
  assert_int_equal(activity_seen(f, "after-drop"), 1);
  fx_free(f);
  redis_server_free(srv);
}

/* The GUILD_MEMBERS intent, for all-members requests. */
static void members_intent(struct fx *f) {
  assert_int_equal(dgw_options_set_intents(f->opt, 513 | (1 << 1)), DGW_OK);
}

/* Input: two all-members requests for one guild in a row.  The first is
 * answered with every member (5, one chunk); the mock answers the second
 * RATE_LIMITED, and its reply is error rate_limited with Discord's
 * retry_after in result. */
static void test_members_rate_limited(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct dgw_mock_config mc;
  struct fx *f;
  char v[4096];
  static const char all[] =
      "{\"guild_id\":\"81384788765712384\",\"query\":\"\",\"limit\":0}";

  (void)state;
  assert_non_null(srv);
  memset(&mc, 0, sizeof(mc));
  mc.members_per_guild = 5;
  f = start_with(srv, members_intent, &mc);
  xadd(srv, NULL, 0, "id", "all1", "op", "request_members", "d", all, NULL);
  xadd(srv, NULL, 0, "id", "all2", "op", "request_members", "d", all, NULL);
  assert_true(wait_reply(f, srv, "dgw:{t}:replies:all1"));
  assert_true(wait_reply(f, srv, "dgw:{t}:replies:all2"));
  assert_true(reply_field(srv, "dgw:{t}:replies:all1", "result", v, sizeof(v)));
  assert_non_null(strstr(v, "\"username\":\"user4\""));
  assert_true(reply_field(srv, "dgw:{t}:replies:all2", "error", v, sizeof(v)));
  assert_string_equal(v, "rate_limited");
  assert_true(reply_field(srv, "dgw:{t}:replies:all2", "result", v, sizeof(v)));
  assert_non_null(strstr(v, "retry_after"));
  fx_free(f);
  redis_server_free(srv);
}

/* Input: shard 0's commands key is a string, not a stream.  The plugin
 * says so once, naming Redis's error, not on every retry (one each
 * 100 ms). */
static void test_commands_key_not_a_stream(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  redisContext *c;
  redisReply *r;
  struct fx *f;

  (void)state;
  assert_non_null(srv);
  c = rfx_connect(srv);
  r = redisCommand(c, "SET %s oops", CMDS);
  freeReplyObject(r);
  redisFree(c);
  f = start(srv, NULL);
  run_for(f->base, 600);
  assert_int_equal(fx_count_lines(f, "XREAD refused: WRONGTYPE"), 1);
  fx_free(f);
  redis_server_free(srv);
}

static void two_shards(struct fx *f) {
  assert_int_equal(dgw_options_set_shards(f->opt, 0, 2, 2), DGW_OK);
}

/* Runs the loop until both shards are READY or 5 s (scaled). */
static int both_ready(struct fx *f) {
  return f->ready >= 2;
}

/* Two shards, two processes one after the other (a takeover): process A
 * reads both streams and sends each command on its own shard (the reply
 * names it); A stops; commands XADDed while nobody runs the shards wait
 * in Redis; process B, on a fresh gateway, sends exactly those: nothing
 * A sent is sent again, nothing is skipped. */
static void test_two_shards_takeover(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct fx *a, *b;
  char v[32];

  (void)state;
  assert_non_null(srv);
  a = start(srv, two_shards);
  assert_true(fx_wait_for(a, both_ready, 5));
  xadd_to(srv, "dgw:{t}:commands:0", "id", "s0-a", "op", "presence", "shard",
          "0", "d", PRESENCE("s0-a"), NULL);
  xadd_to(srv, "dgw:{t}:commands:1", "id", "s1-a", "op", "presence", "shard",
          "1", "d", PRESENCE("s1-a"), NULL);
  assert_true(wait_reply(a, srv, "dgw:{t}:replies:s0-a"));
  assert_true(wait_reply(a, srv, "dgw:{t}:replies:s1-a"));
  assert_true(reply_field(srv, "dgw:{t}:replies:s0-a", "shard", v, sizeof(v)));
  assert_string_equal(v, "0");
  assert_true(reply_field(srv, "dgw:{t}:replies:s1-a", "shard", v, sizeof(v)));
  assert_string_equal(v, "1");
  assert_int_equal(activity_seen(a, "s0-a"), 1);
  assert_int_equal(activity_seen(a, "s1-a"), 1);
  run_for(a->base, 100); /* the acknowledgements are written */
  fx_free(a);
  xadd_to(srv, "dgw:{t}:commands:0", "id", "s0-b", "op", "presence", "d",
          PRESENCE("s0-b"), NULL);
  xadd_to(srv, "dgw:{t}:commands:1", "id", "s1-b", "op", "presence", "d",
          PRESENCE("s1-b"), NULL);
  b = start(srv, two_shards);
  assert_true(fx_wait_for(b, both_ready, 5));
  assert_true(wait_reply(b, srv, "dgw:{t}:replies:s0-b"));
  assert_true(wait_reply(b, srv, "dgw:{t}:replies:s1-b"));
  run_for(b->base, 300);
  assert_int_equal(activity_seen(b, "s0-b"), 1);
  assert_int_equal(activity_seen(b, "s1-b"), 1);
  assert_int_equal(activity_seen(b, "s0-a"), 0);
  assert_int_equal(activity_seen(b, "s1-a"), 0);
  assert_int_equal(b->count[3], 2);
  fx_free(b);
  redis_server_free(srv);
}

#define NMSG 8 /* messages of the scripted run; every other one a !ping */

static void ping_script(struct fx *f) {
  for (int i = 0; i < NMSG; i++) {
    char id[32];
    char *m;

    snprintf(id, sizeof(id), "9000%02d", i);
    m = dgw_mock_message_json(id, "555", "81384788765712384", "777", "alice",
                              i % 2 == 0 ? "!ping" : "hello");
    assert_non_null(m);
    assert_int_equal(dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", m),
                     DGW_OK);
    free(m);
  }
}

/* Runs a worker (its command line `cmd`, stdout to `out`) while the loop
 * runs, until the mock saw the presences "PONG-9000NN" of every ping, or
 * 30 s (scaled).  Returns the worker's exit status. */
static int run_worker(struct fx *f, const char *cmd, const char *pong,
                      const char *out) {
  char full[2048], name[32];
  double end = deadline_ms(30);
  int got = 0, st;
  FILE *p;

  snprintf(full, sizeof(full), "%s >%s 2>&1", cmd, out);
  p = popen(full, "w");
  assert_non_null(p);
  while (now_ms() < end && got < NMSG / 2) {
    run_for(f->base, 20);
    got = 0;
    for (int i = 0; i < NMSG; i += 2) {
      snprintf(name, sizeof(name), "%s-9000%02d", pong, i);
      got += activity_seen(f, name) > 0;
    }
  }
  st = pclose(p);
  for (int i = 0; i < NMSG; i += 2) {
    snprintf(name, sizeof(name), "%s-9000%02d", pong, i);
    if (activity_seen(f, name) != 1)
      fail_msg("%s: presence %s seen %d times", cmd, name,
               activity_seen(f, name));
  }
  return st;
}

/* Counts lines of `path` holding `needle`. */
static int count_in(const char *path, const char *needle) {
  FILE *fp = fopen(path, "r");
  char line[4096];
  int n = 0;

  assert_non_null(fp);
  while (fgets(line, sizeof(line), fp) != NULL)
    n += strstr(line, needle) != NULL;
  fclose(fp);
  return n;
}

/* The two example workers, each in its own consumer group, against a
 * scripted run of 8 messages (4 "!ping"): each prints every message once
 * and answers each ping with a presence update that reaches the mock,
 * once (8 op 3 in all, well within 120 per 60 s), each answered ok. */
static void test_workers_answer_pings(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  const char *python;
  char cmd[2048], dir[] = "/tmp/dgw-cmds-XXXXXX", out[300], key[128], v[16];
  struct fx *f;

  (void)state;
  assert_non_null(srv);
  assert_non_null(mkdtemp(dir));
  python = rfx_python();
  f = start(srv, ping_script);
  snprintf(out, sizeof(out), "%s/py.out", dir);
  snprintf(cmd, sizeof(cmd),
           "timeout -k 5 %d %s %s --url %s --name t --group py --consumer "
           "w1 --count %d --timeout 5 --shards 1 --pong py",
           (int)(30 * time_scale()), python, WORKER_PY, redis_server_url(srv),
           NMSG);
  assert_int_equal(run_worker(f, cmd, "py", out), 0);
  assert_int_equal(count_in(out, "\"t\": \"MESSAGE_CREATE\""), NMSG);
  assert_int_equal(count_in(out, "command ping-w1-"), NMSG / 2);
  snprintf(out, sizeof(out), "%s/c.out", dir);
  snprintf(cmd, sizeof(cmd),
           "timeout -k 5 %d %s --socket %s --name t --group c --consumer w2 "
           "--count %d --timeout 5 --shards 1 --pong c",
           (int)(30 * time_scale()), WORKER_C, redis_server_socket(srv), NMSG);
  assert_int_equal(run_worker(f, cmd, "c", out), 0);
  assert_int_equal(count_in(out, "t=MESSAGE_CREATE"), NMSG);
  assert_int_equal(count_in(out, "command ping-w2-"), NMSG / 2);
  for (int i = 0; i < NMSG; i += 2) {
    snprintf(key, sizeof(key), "dgw:{t}:replies:ping-w1-9000%02d", i);
    assert_true(wait_reply(f, srv, key));
    assert_true(reply_field(srv, key, "status", v, sizeof(v)));
    assert_string_equal(v, "ok");
    snprintf(key, sizeof(key), "dgw:{t}:replies:ping-w2-9000%02d", i);
    assert_true(wait_reply(f, srv, key));
    assert_true(reply_field(srv, key, "status", v, sizeof(v)));
    assert_string_equal(v, "ok");
  }
  assert_int_equal(f->count[3], NMSG);
  fx_free(f);
  snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
  assert_int_equal(system(cmd), 0);
  redis_server_free(srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bad_commands),
      cmocka_unit_test(test_request_members),
      cmocka_unit_test(test_resume_after_acked),
      cmocka_unit_test(test_workers_answer_pings),
      cmocka_unit_test(test_rate_limit_respected),
      cmocka_unit_test(test_acked_commands_trimmed),
      cmocka_unit_test(test_two_shards_takeover),
      cmocka_unit_test(test_session_lost),
      cmocka_unit_test(test_waits_for_resume),
      cmocka_unit_test(test_members_rate_limited),
      cmocka_unit_test(test_commands_key_not_a_stream),
      cmocka_unit_test(test_bad_config),
  };
  ignore_sigpipe();
  if (getenv("DGW_TEST_FILTER") != NULL) /* one test, e.g. under valgrind */
    cmocka_set_test_filter(getenv("DGW_TEST_FILTER"));
  return cmocka_run_group_tests_name("redis_commands", tests, NULL, NULL);
}
