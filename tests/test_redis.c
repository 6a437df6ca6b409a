/*
 * The Redis layer (lib/redis.c, lib/redis_url.c) against a real
 * redis-server the test starts itself (tests/redis_server.c): URL forms
 * good and bad, up/down callbacks, commands, EVALSHA's fallback to EVAL,
 * reconnect after a kill, AUTH failure, an unreachable server at start,
 * and redis_free from inside a callback.
 */
#include "config.h"

#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "redis.h"
#include "redis_server.h"

/* ------------------------------------------------------------------ URLs */

static void test_url_good(void **state) {
  struct redis_addr a;
  char why[256];
  char desc[512];

  (void)state;
  assert_int_equal(redis_url_parse("redis://localhost", &a, why, sizeof(why)),
                   0);
  assert_false(a.is_unix);
  assert_string_equal(a.host, "localhost");
  assert_int_equal(a.port, 6379);
  assert_int_equal(a.db, 0);
  assert_string_equal(a.password, "");

  assert_int_equal(redis_url_parse("redis://:s3cr%2Ft@10.0.0.1:7000/3", &a, why,
                                   sizeof(why)),
                   0);
  assert_string_equal(a.host, "10.0.0.1");
  assert_int_equal(a.port, 7000);
  assert_int_equal(a.db, 3);
  assert_string_equal(a.user, "");
  assert_string_equal(a.password, "s3cr/t");
  redis_addr_describe(&a, desc, sizeof(desc));
  assert_string_equal(desc, "redis://10.0.0.1:7000/3"); /* no password */

  assert_int_equal(
      redis_url_parse("REDIS://bot:pw@[::1]:6380/", &a, why, sizeof(why)), 0);
  assert_string_equal(a.host, "::1");
  assert_int_equal(a.port, 6380);
  assert_string_equal(a.user, "bot");
  assert_string_equal(a.password, "pw");
  redis_addr_describe(&a, desc, sizeof(desc));
  assert_string_equal(desc, "redis://bot@[::1]:6380/0");

  assert_int_equal(
      redis_url_parse("unix:///run/redis/redis.sock", &a, why, sizeof(why)), 0);
  assert_true(a.is_unix);
  assert_string_equal(a.path, "/run/redis/redis.sock");
  assert_int_equal(a.db, 0);

  assert_int_equal(redis_url_parse("unix:///tmp/r.sock?db=2&password=a%26b"
                                   "&user=u",
                                   &a, why, sizeof(why)),
                   0);
  assert_string_equal(a.path, "/tmp/r.sock");
  assert_int_equal(a.db, 2);
  assert_string_equal(a.password, "a&b");
  assert_string_equal(a.user, "u");
  redis_addr_describe(&a, desc, sizeof(desc));
  assert_string_equal(desc, "unix:///tmp/r.sock?db=2&user=u");
}

/* Each bad URL is refused with a sentence naming the fault. */
static void test_url_bad(void **state) {
  static const struct {
    const char *url, *says;
  } bad[] = {
      {"", "empty"},
      {"http://localhost", "must start with redis:// or unix://"},
      {"rediss://localhost", "TLS"},
      {"localhost:6379", "must start with"},
      {"redis://", "no host"},
      {"redis://:pw@", "no host"},
      {"redis://host:0", "port must be a number from 1 to 65535"},
      {"redis://host:65536", "port"},
      {"redis://host:abc", "\"abc\""},
      {"redis://host:", "port"},
      {"redis://host/db1", "database number"},
      {"redis://host/1/2", "database number"},
      {"redis://host?db=1", "takes no query"},
      {"redis://pw@host", "needs a ':'"},
      {"redis://:p%zz@host", "bad %-escape"},
      {"redis://:p%00@host", "bad %-escape"},
      {"redis://[::1", "'[' without ']'"},
      {"redis://[::1]x", "junk after ']'"},
      {"unix://relative.sock", "absolute path"},
      {"unix:///tmp/r.sock?db=x", "db must be a number"},
      {"unix:///tmp/r.sock?dbx=1", "unknown query item \"dbx\""},
      {"unix:///tmp/r.sock?db", "has no '='"},
  };
  char long_path[200];

  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct redis_addr a;
    char why[256] = "";

    if (redis_url_parse(bad[i].url, &a, why, sizeof(why)) != -1 ||
        strstr(why, bad[i].says) == NULL) {
      print_error("URL \"%s\": why \"%s\", wanted it to say \"%s\"\n",
                  bad[i].url, why, bad[i].says);
      fail();
    }
  }
  memset(long_path, 'a', sizeof(long_path));
  memcpy(long_path, "unix:///", 8);
  long_path[sizeof(long_path) - 1] = '\0';
  {
    struct redis_addr a;
    char why[256] = "";

    assert_int_equal(redis_url_parse(long_path, &a, why, sizeof(why)), -1);
    assert_non_null(strstr(why, "longer than 107 bytes"));
  }
}

/* -------------------------------------------------------- a live server */

struct conn {
  int ups, downs;
  char down_cause[256];
  int replies, errors;
  long long last_int;
  char last_str[256];
  char last_err[256];
};

static void on_up(struct dgw_redis *r, void *ud) {
  struct conn *c = ud;

  (void)r;
  c->ups++;
}

static void on_down(struct dgw_redis *r, const char *cause, void *ud) {
  struct conn *c = ud;

  (void)r;
  c->downs++;
  snprintf(c->down_cause, sizeof(c->down_cause), "%s", cause);
}

static const struct redis_callbacks conn_cb = {on_up, on_down};

static void on_reply(struct dgw_redis *r, redisReply *reply, const char *err,
                     void *ud) {
  struct conn *c = ud;

  (void)r;
  if (err != NULL) {
    c->errors++;
    snprintf(c->last_err, sizeof(c->last_err), "%s", err);
  } else {
    c->replies++;
    if (reply->type == REDIS_REPLY_INTEGER)
      c->last_int = reply->integer;
    else if (reply->type == REDIS_REPLY_STRING ||
             reply->type == REDIS_REPLY_STATUS)
      snprintf(c->last_str, sizeof(c->last_str), "%.*s", (int)reply->len,
               reply->str);
  }
}

static int is_up(void *arg) {
  return ((struct conn *)arg)->ups > 0;
}

/* Connects to a fresh server: on_up once, then SET/GET/INCR answer. */
static void test_up_and_commands(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct conn c = {0};
  struct dgw_redis *r;
  const char *set[] = {"SET", "k", "v\0x"};
  size_t setlen[] = {3, 1, 3};

  (void)state;
  assert_non_null(srv);
  r = redis_new(base, redis_server_url(srv), &conn_cb, &c, test_log, NULL, NULL,
                0);
  assert_non_null(r);
  assert_false(redis_is_up(r));
  /* Not up yet: refused, no callback. */
  assert_int_equal(redis_command(r, on_reply, &c, "PING"), -1);
  assert_true(loop_until(base, is_up, &c, 5));
  assert_true(redis_is_up(r));
  assert_int_equal(redis_command_argv(r, on_reply, &c, 3, set, setlen), 0);
  assert_int_equal(redis_command(r, on_reply, &c, "GET %s", "k"), 0);
  assert_int_equal(c.replies, 0); /* never inside the call */
  while (c.replies < 2)
    loop_once(base);
  assert_int_equal(c.last_str[0], 'v');
  assert_int_equal(redis_command(r, on_reply, &c, "STRLEN k"), 0);
  assert_int_equal(redis_command(r, on_reply, &c, "NOSUCHCOMMAND"), 0);
  while (c.replies + c.errors < 4)
    loop_once(base);
  assert_int_equal(c.last_int, 3);
  assert_int_equal(c.errors, 1);
  assert_non_null(strstr(c.last_err, "unknown command"));
  assert_int_equal(c.ups, 1);
  assert_int_equal(c.downs, 0);
  redis_free(r);
  event_base_free(base);
  redis_server_free(srv);
}

/* A log sink that keeps the lines (and prints them when verbose). */
struct logs {
  char lines[32][512];
  enum dgw_log_level level[32];
  int n;
};

static void keep_log(enum dgw_log_level level, const char *msg, void *ud) {
  struct logs *l = ud;

  test_log(level, msg, NULL);
  if (l->n < 32) {
    l->level[l->n] = level;
    snprintf(l->lines[l->n++], sizeof(l->lines[0]), "%s", msg);
  }
}

/* A command's callback count, for the exactly-once promise. */
struct call {
  int calls;
  int got_reply;
  char err[256];
};

static void on_call(struct dgw_redis *r, redisReply *reply, const char *err,
                    void *ud) {
  struct call *c = ud;

  (void)r;
  c->calls++;
  c->got_reply = reply != NULL;
  if (getenv("DGW_TEST_VERBOSE") != NULL)
    fprintf(stderr, "# reply type %d err %s\n", reply ? reply->type : -1,
            err ? err : "-");
  snprintf(c->err, sizeof(c->err), "%s", err != NULL ? err : "");
}

static int calls_done(void *arg) {
  return ((struct call *)arg)->calls > 0;
}

static int ups_2(void *arg) {
  return ((struct conn *)arg)->ups >= 2;
}

static int is_down(void *arg) {
  return ((struct conn *)arg)->downs > 0;
}

/* redis_eval: EVALSHA, then after SCRIPT FLUSH (what a restarted Redis
 * forgets) the same call still answers: the NOSCRIPT fallback sent EVAL,
 * which loads the script again (SCRIPT EXISTS says 1). */
static void test_eval_fallback(void **state) {
  static struct redis_script incr_by =
      REDIS_SCRIPT("return redis.call('INCRBY', KEYS[1], ARGV[1])");
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct conn c = {0};
  struct dgw_redis *r;
  const char *args[] = {"counter", "5"};
  char out[128];

  (void)state;
  assert_non_null(srv);
  r = redis_new(base, redis_server_url(srv), &conn_cb, &c, test_log, NULL, NULL,
                0);
  assert_true(loop_until(base, is_up, &c, 5));
  /* The first EVALSHA meets an empty cache: NOSCRIPT, then EVAL. */
  assert_int_equal(redis_eval(r, &incr_by, 1, 2, args, NULL, on_reply, &c), 0);
  while (c.replies + c.errors < 1)
    loop_once(base);
  assert_int_equal(c.errors, 0);
  assert_int_equal(c.last_int, 5);
  assert_int_equal(strlen(incr_by.sha1), 40);
  {
    const char *exists[] = {"SCRIPT", "EXISTS", incr_by.sha1};
    const char *flush[] = {"SCRIPT", "FLUSH"};

    assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 3, exists), 0);
    assert_string_equal(out, "*1"); /* an array; its item read below */
    assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 2, flush), 0);
    assert_string_equal(out, "+OK");
  }
  assert_int_equal(redis_eval(r, &incr_by, 1, 2, args, NULL, on_reply, &c), 0);
  while (c.replies + c.errors < 2)
    loop_once(base);
  assert_int_equal(c.errors, 0);
  assert_int_equal(c.last_int, 10);
  /* A script error is an error reply, not a retry loop. */
  {
    static struct redis_script bad = REDIS_SCRIPT("return redis.call('NOPE')");

    assert_int_equal(redis_eval(r, &bad, 0, 0, NULL, NULL, on_reply, &c), 0);
    while (c.replies + c.errors < 3)
      loop_once(base);
    assert_int_equal(c.errors, 1);
    assert_non_null(strstr(c.last_err, "Unknown Redis command"));
  }
  redis_free(r);
  event_base_free(base);
  redis_server_free(srv);
}

/* The server is killed with commands in flight (a BLPOP parked on the
 * server and a GET): each callback runs exactly once with "connection
 * lost", on_down once; after a restart the handle is up again (on_up a
 * second time) and commands work. */
static void test_reconnect_after_kill(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct conn c = {0};
  struct call blpop = {0}, get = {0}, after = {0};
  struct logs logs = {0};
  struct dgw_redis *r;

  (void)state;
  assert_non_null(srv);
  r = redis_new(base, redis_server_url(srv), &conn_cb, &c, keep_log, &logs,
                NULL, 0);
  redis_set_timeouts(r, 0, 60000, 200);
  assert_true(loop_until(base, is_up, &c, 5));
  assert_int_equal(redis_command(r, on_call, &blpop, "BLPOP nolist 30"), 0);
  /* Queued behind the BLPOP on the same connection: pending too. */
  assert_int_equal(redis_command(r, on_call, &get, "GET nokey"), 0);
  run_for(base, 50);
  assert_int_equal(get.calls, 0);
  assert_int_equal(redis_server_kill(srv), 0);
  assert_true(loop_until(base, is_down, &c, 5));
  assert_int_equal(blpop.calls, 1);
  assert_false(blpop.got_reply);
  assert_non_null(strstr(blpop.err, "connection lost"));
  assert_int_equal(get.calls, 1);
  assert_non_null(strstr(get.err, "connection lost"));
  assert_non_null(strstr(c.down_cause, "connection lost"));
  assert_false(redis_is_up(r));
  assert_int_equal(redis_command(r, on_call, &after, "PING"), -1);
  run_for(base, 300); /* a few failed attempts against no server */
  assert_true(redis_failures(r) >= 1);
  assert_int_equal(redis_server_restart(srv), 0);
  assert_true(loop_until(base, ups_2, &c, 5));
  assert_int_equal(c.downs, 1);
  assert_int_equal(redis_command(r, on_call, &after, "PING"), 0);
  assert_true(loop_until(base, calls_done, &after, 5));
  assert_int_equal(after.calls, 1);
  assert_true(after.got_reply);
  /* Nothing called twice meanwhile. */
  assert_int_equal(blpop.calls, 1);
  assert_int_equal(get.calls, 1);
  /* The loss was logged as a warning naming the URL. */
  assert_true(logs.n >= 1);
  assert_int_equal(logs.level[0], DGW_LOG_WARN);
  assert_non_null(strstr(logs.lines[0], redis_server_url(srv)));
  redis_free(r);
  event_base_free(base);
  redis_server_free(srv);
}

/* A stopped (SIGSTOP) server keeps its socket open: the command timeout
 * drops the connection ("no reply within 200 ms"), and after SIGCONT the
 * handle reconnects. */
static void test_command_timeout_on_stopped_server(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct conn c = {0};
  struct call ping = {0};
  struct dgw_redis *r;

  (void)state;
  assert_non_null(srv);
  r = redis_new(base, redis_server_url(srv), &conn_cb, &c, test_log, NULL, NULL,
                0);
  redis_set_timeouts(r, 200, 200, 100);
  assert_true(loop_until(base, is_up, &c, 5));
  assert_int_equal(redis_server_pause(srv), 0);
  assert_int_equal(redis_command(r, on_call, &ping, "PING"), 0);
  assert_true(loop_until(base, is_down, &c, 5));
  assert_int_equal(ping.calls, 1);
  assert_non_null(strstr(ping.err, "no reply within 200 ms"));
  assert_non_null(strstr(c.down_cause, "no reply within 200 ms"));
  run_for(base, 300); /* connects time out against a stopped server */
  assert_true(redis_failures(r) >= 1);
  assert_non_null(strstr(redis_last_error(r), "not connected within 200 ms"));
  assert_int_equal(redis_server_resume(srv), 0);
  assert_true(loop_until(base, ups_2, &c, 10));
  assert_int_equal(ping.calls, 1);
  redis_free(r);
  event_base_free(base);
  redis_server_free(srv);
}

/* A server with --requirepass: no password is "PING failed: NOAUTH ...",
 * a wrong one "AUTH failed: WRONGPASS ...", both error-level log lines
 * naming the URL without the password, never up; the right one is up. */
static void test_auth(void **state) {
  const char *extra[] = {"--requirepass", "s3cret", NULL};
  struct redis_server *srv = redis_server_start(extra);
  struct event_base *base = event_base_new();
  char url[512];

  (void)state;
  assert_non_null(srv);
  for (int i = 0; i < 3; i++) {
    struct conn c = {0};
    struct logs logs = {0};
    struct dgw_redis *r;
    static const char *const pw[] = {"", "?password=wrong", "?password=s3cret"};

    snprintf(url, sizeof(url), "%s%s", redis_server_url(srv), pw[i]);
    r = redis_new(base, url, &conn_cb, &c, keep_log, &logs, NULL, 0);
    assert_non_null(r);
    if (i == 2) {
      assert_true(loop_until(base, is_up, &c, 5));
    } else {
      run_for(base, 300);
      assert_int_equal(c.ups, 0);
      assert_true(logs.n >= 1);
      assert_int_equal(logs.level[0], DGW_LOG_ERROR);
      assert_non_null(strstr(logs.lines[0], i == 0 ? "PING failed: NOAUTH"
                                                   : "AUTH failed: WRONGPASS"));
      assert_non_null(strstr(logs.lines[0], redis_server_socket(srv)));
      assert_null(strstr(logs.lines[0], "wrong"));
      assert_true(redis_failures(r) >= 2); /* retried */
      assert_int_equal(logs.n, 1);         /* but said once */
    }
    redis_free(r);
  }
  event_base_free(base);
  redis_server_free(srv);
}

/* An ACL user (unix:///...?user=bot&password=pw) logs in as that user,
 * and ?db=3 SELECTs database 3. */
static void test_acl_user_and_db(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  const char *acl[] = {"ACL", "SETUSER", "bot", "on",
                       ">pw", "~*",      "&*",  "+@all"};
  struct conn c = {0};
  struct dgw_redis *r;
  char url[512], out[64];

  (void)state;
  assert_non_null(srv);
  assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 8, acl), 0);
  assert_string_equal(out, "+OK");
  snprintf(url, sizeof(url), "%s?user=bot&password=pw&db=3",
           redis_server_url(srv));
  r = redis_new(base, url, &conn_cb, &c, test_log, NULL, NULL, 0);
  assert_true(loop_until(base, is_up, &c, 5));
  assert_int_equal(redis_command(r, on_reply, &c, "ACL WHOAMI"), 0);
  assert_int_equal(redis_command(r, on_reply, &c, "SET indb3 yes"), 0);
  while (c.replies + c.errors < 2)
    loop_once(base);
  assert_int_equal(c.errors, 0);
  {
    const char *sel[] = {"GET", "indb3"};

    /* The default connection is on db 0: the key is not there. */
    assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 2, sel), 0);
    assert_string_equal(out, "$-1");
  }
  redis_free(r);
  event_base_free(base);
  redis_server_free(srv);
}

/* Unreachable at start (a killed server's socket: connection refused):
 * one warn line naming the URL and the cause, then retries with backoff
 * (several attempts in a second, not hundreds); up once the server is
 * back, with an info line counting the failures. */
static void test_unreachable_at_start(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct conn c = {0};
  struct logs logs = {0};
  struct dgw_redis *r;
  uint64_t tries;

  (void)state;
  assert_non_null(srv);
  assert_int_equal(redis_server_kill(srv), 0);
  r = redis_new(base, redis_server_url(srv), &conn_cb, &c, keep_log, &logs,
                NULL, 0);
  assert_int_equal(logs.n, 0); /* nothing inside redis_new */
  run_for(base, 1000);
  tries = redis_failures(r);
  assert_true(tries >= 3);  /* 50, 100, 200, 400 ms (jittered) ... */
  assert_true(tries <= 15); /* ... not a busy loop */
  assert_int_equal(logs.n, 1);
  assert_int_equal(logs.level[0], DGW_LOG_WARN);
  assert_non_null(strstr(logs.lines[0], redis_server_url(srv)));
  assert_non_null(strstr(logs.lines[0], "refused"));
  assert_int_equal(c.ups, 0);
  assert_int_equal(c.downs, 0); /* never up, so never down */
  assert_int_equal(redis_server_restart(srv), 0);
  assert_true(loop_until(base, is_up, &c, 5));
  assert_int_equal(logs.n, 2);
  assert_int_equal(logs.level[1], DGW_LOG_INFO);
  assert_non_null(strstr(logs.lines[1], "failed attempts"));
  assert_int_equal(redis_failures(r), 0);
  redis_free(r);
  event_base_free(base);
  redis_server_free(srv);
}

/* A listener that never answers (a unix socket nobody accepts on): the
 * connect timeout fires ("not connected within 150 ms"). */
static void test_connect_timeout(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct conn c = {0};
  struct logs logs = {0};
  struct dgw_redis *r;

  (void)state;
  assert_non_null(srv);
  assert_int_equal(redis_server_pause(srv), 0);
  r = redis_new(base, redis_server_url(srv), &conn_cb, &c, keep_log, &logs,
                NULL, 0);
  redis_set_timeouts(r, 150, 0, 0);
  run_for(base, 400);
  assert_int_equal(c.ups, 0);
  assert_true(logs.n >= 1);
  assert_non_null(strstr(logs.lines[0], "not connected within 150 ms"));
  assert_int_equal(redis_server_resume(srv), 0);
  assert_true(loop_until(base, is_up, &c, 5));
  redis_free(r);
  event_base_free(base);
  redis_server_free(srv);
}

/* redis_free inside a reply callback, with two more commands pending:
 * each of them is called back once, "the Redis handle was freed", and
 * nothing touches the freed handle afterwards (valgrind checks). */
struct freer {
  struct dgw_redis *r;
  struct call *others;
  int n_others_at_free;
};

static void free_in_reply(struct dgw_redis *r, redisReply *reply,
                          const char *err, void *ud) {
  struct freer *f = ud;

  (void)reply;
  (void)err;
  redis_free(r);
  f->n_others_at_free = f->others[0].calls + f->others[1].calls;
  f->r = NULL;
}

static void test_free_inside_callback(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  struct conn c = {0};
  struct call others[2] = {{0}, {0}};
  struct freer f = {NULL, others, -1};

  (void)state;
  assert_non_null(srv);
  f.r = redis_new(base, redis_server_url(srv), &conn_cb, &c, test_log, NULL,
                  NULL, 0);
  assert_true(loop_until(base, is_up, &c, 5));
  assert_int_equal(redis_command(f.r, free_in_reply, &f, "PING"), 0);
  assert_int_equal(redis_command(f.r, on_call, &others[0], "BLPOP x 10"), 0);
  assert_int_equal(redis_command(f.r, on_call, &others[1], "BLPOP y 10"), 0);
  while (f.r != NULL)
    loop_once(base);
  /* Inside a callback the free waits for it to return; then the others
   * are called back. */
  assert_int_equal(f.n_others_at_free, 0);
  run_for(base, 100);
  for (int i = 0; i < 2; i++) {
    assert_int_equal(others[i].calls, 1);
    assert_string_equal(others[i].err, "the Redis handle was freed");
  }
  assert_int_equal(c.downs, 0); /* a free is no "down" */
  event_base_free(base);
  redis_server_free(srv);
}

/* redis_free inside on_down (the server killed) and inside on_up. */
static void free_on_down(struct dgw_redis *r, const char *cause, void *ud) {
  (void)cause;
  redis_free(r);
  *(int *)ud = 1;
}

static void free_on_up(struct dgw_redis *r, void *ud) {
  redis_free(r);
  *(int *)ud = 1;
}

static void test_free_inside_up_and_down(void **state) {
  struct redis_server *srv = redis_server_start(NULL);
  struct event_base *base = event_base_new();
  const struct redis_callbacks down_cb = {NULL, free_on_down};
  const struct redis_callbacks up_cb = {free_on_up, NULL};
  struct call pending = {0};
  int freed = 0;
  struct dgw_redis *r;

  (void)state;
  assert_non_null(srv);
  r = redis_new(base, redis_server_url(srv), &up_cb, &freed, test_log, NULL,
                NULL, 0);
  assert_true(run_until(base, &freed, 5 * time_scale()));
  freed = 0;
  r = redis_new(base, redis_server_url(srv), &down_cb, &freed, test_log, NULL,
                NULL, 0);
  while (!redis_is_up(r))
    loop_once(base);
  assert_int_equal(redis_command(r, on_call, &pending, "BLPOP z 10"), 0);
  run_for(base, 50);
  redis_server_kill(srv);
  assert_true(run_until(base, &freed, 5 * time_scale()));
  assert_int_equal(pending.calls, 1);
  run_for(base, 100);
  assert_int_equal(pending.calls, 1);
  event_base_free(base);
  redis_server_free(srv);
}

/* TCP: a server also listening on a free loopback port; redis://127.0.0.1:
 * PORT/2 comes up on database 2.  A closed port is "Connection refused". */
static void test_tcp(void **state) {
  struct sockaddr_in sa = {0};
  socklen_t len = sizeof(sa);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  char port[16], url[128], out[64];
  const char *extra[] = {"--port", port, "--bind", "127.0.0.1", NULL};
  struct redis_server *srv;
  struct event_base *base = event_base_new();
  struct conn c = {0};
  struct logs logs = {0};
  struct dgw_redis *r;

  (void)state;
  /* A free port: bound by the kernel's choice, then released. */
  sa.sin_family = AF_INET;
  sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
  close(fd);
  snprintf(port, sizeof(port), "%d", ntohs(sa.sin_port));
  srv = redis_server_start(extra);
  assert_non_null(srv);
  snprintf(url, sizeof(url), "redis://127.0.0.1:%s/2", port);
  r = redis_new(base, url, &conn_cb, &c, test_log, NULL, NULL, 0);
  assert_true(loop_until(base, is_up, &c, 5));
  assert_string_equal(redis_describe(r), url);
  assert_int_equal(redis_command(r, on_reply, &c, "SET tcpkey 1"), 0);
  while (c.replies + c.errors < 1)
    loop_once(base);
  assert_int_equal(c.errors, 0);
  {
    const char *sel[] = {"GET", "tcpkey"};

    assert_int_equal(redis_server_cmd(srv, out, sizeof(out), 2, sel), 0);
    assert_string_equal(out, "$-1"); /* not in db 0 */
  }
  redis_free(r);
  /* A host name is resolved on the loop (evdns reads /etc/hosts). */
  snprintf(url, sizeof(url), "redis://localhost:%s/2", port);
  c.ups = 0;
  r = redis_new(base, url, &conn_cb, &c, test_log, NULL, NULL, 0);
  assert_true(loop_until(base, is_up, &c, 5));
  redis_free(r);
  snprintf(url, sizeof(url), "redis://127.0.0.1:%s/2", port);
  redis_server_kill(srv);
  r = redis_new(base, url, &conn_cb, &c, keep_log, &logs, NULL, 0);
  run_for(base, 200);
  assert_true(logs.n >= 1);
  assert_non_null(strstr(logs.lines[0], url));
  assert_non_null(strstr(logs.lines[0], "Connection refused"));
  redis_free(r);
  event_base_free(base);
  redis_server_free(srv);
}

/* A name that does not resolve: the attempt fails with a warn line naming
 * the URL (the cause is "cannot resolve ..." or, when no DNS server
 * answers, the connect timeout), and the loop is never blocked meanwhile
 * (hiredis's own getaddrinfo() would hold it for the resolver's timeout). */
static void test_unresolvable_host(void **state) {
  struct event_base *base = event_base_new();
  struct conn c = {0};
  struct logs logs = {0};
  struct dgw_redis *r;
  const char *url = "redis://no-such-host.invalid:6379";
  double t0, longest = 0;

  (void)state;
  r = redis_new(base, url, &conn_cb, &c, keep_log, &logs, NULL, 0);
  redis_set_timeouts(r, 300, 0, 0);
  t0 = now_ms();
  while (now_ms() - t0 < 1000) {
    double t = now_ms();

    loop_once(base); /* back within 20 ms unless something blocks */
    if (now_ms() - t > longest)
      longest = now_ms() - t;
  }
  assert_int_equal(c.ups, 0);
  assert_true(logs.n >= 1);
  assert_non_null(strstr(logs.lines[0], url));
  assert_true(strstr(logs.lines[0], "cannot resolve no-such-host.invalid") !=
                  NULL ||
              strstr(logs.lines[0], "not connected within 300 ms") != NULL);
  if (longest > 250 * time_scale())
    fail_msg("the loop was blocked for %.0f ms", longest);
  redis_free(r);
  /* A lookup may be in flight (a retry every 300 ms): its cancellation,
   * then the resolver's release, come from the loop, as dgw.h asks the
   * application to allow for.  Passes until nothing is left, with a
   * deadline (ASan saw the evdns request leaked without them). */
  t0 = now_ms();
  while (event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED |
                                             EVENT_BASE_COUNT_ACTIVE) > 0 &&
         now_ms() - t0 < 1000 * time_scale())
    event_base_loop(base, EVLOOP_NONBLOCK);
  assert_int_equal(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED |
                                                       EVENT_BASE_COUNT_ACTIVE),
                   0);
  event_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_good),
      cmocka_unit_test(test_url_bad),
      cmocka_unit_test(test_up_and_commands),
      cmocka_unit_test(test_eval_fallback),
      cmocka_unit_test(test_reconnect_after_kill),
      cmocka_unit_test(test_command_timeout_on_stopped_server),
      cmocka_unit_test(test_auth),
      cmocka_unit_test(test_acl_user_and_db),
      cmocka_unit_test(test_unreachable_at_start),
      cmocka_unit_test(test_connect_timeout),
      cmocka_unit_test(test_free_inside_callback),
      cmocka_unit_test(test_free_inside_up_and_down),
      cmocka_unit_test(test_tcp),
      cmocka_unit_test(test_unresolvable_host),
  };
  ignore_sigpipe();
  return cmocka_run_group_tests_name("redis", tests, NULL, NULL);
}
