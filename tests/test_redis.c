/*
 * The Redis layer (lib/redis.c, lib/redis_url.c) against a real
 * redis-server the test starts itself (tests/redis_server.c): URL forms
 * good and bad, up/down callbacks, commands, EVALSHA's fallback to EVAL,
 * reconnect after a kill, AUTH failure, an unreachable server at start,
 * and redis_free from inside a callback.
 */
#include "config.h"

#include "harness.h"

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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_url_good),
      cmocka_unit_test(test_url_bad),
      cmocka_unit_test(test_up_and_commands),
  };
  ignore_sigpipe();
  return cmocka_run_group_tests_name("redis", tests, NULL, NULL);
}
