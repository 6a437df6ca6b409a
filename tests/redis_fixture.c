/* See redis_fixture.h. */
#include "config.h"

#include "redis_fixture.h"

redisContext *rfx_connect(const struct redis_server *srv) {
  redisContext *c = redisConnectUnix(redis_server_socket(srv));

  assert_non_null(c);
  assert_int_equal(c->err, 0);
  return c;
}

long long rfx_integer(const struct redis_server *srv, const char *command,
                      const char *key, long long otherwise) {
  redisContext *c = rfx_connect(srv);
  redisReply *r = redisCommand(c, "%s %s", command, key);
  long long v =
      r != NULL && r->type == REDIS_REPLY_INTEGER ? r->integer : otherwise;

  freeReplyObject(r);
  redisFree(c);
  return v;
}

void rfx_load_streams(struct fx *f, const char *config) {
  char why[512];
  int rv = dgw_client_load_plugin(f->client, STREAMS_PLUGIN, config, why,
                                  sizeof(why));

  if (rv != DGW_OK)
    fail_msg("loading redis-streams: %s (%s)", dgw_strerror(rv), why);
}

const char *rfx_python(void) {
  const char *python = getenv("DGW_TEST_PYTHON");
  char cmd[1024];

  if (python == NULL)
    python = "/usr/bin/python3";
  snprintf(cmd, sizeof(cmd), "%s -c 'import redis' 2>/dev/null", python);
  if (system(cmd) != 0)
    fail_msg("%s cannot import redis: apt-get install python3-redis (or set "
             "DGW_TEST_PYTHON)",
             python);
  return python;
}

void rfx_expect_refused(const struct rfx_refusal *bad, size_t n) {
  for (size_t i = 0; i < n; i++) {
    struct fx *f = fx_new(NULL);
    char why[512];

    fx_client_new(f);
    assert_int_not_equal(dgw_client_load_plugin(f->client, STREAMS_PLUGIN,
                                                bad[i].config, why,
                                                sizeof(why)),
                         DGW_OK);
    if (fx_find_line(f, 0, bad[i].says) < 0)
      fail_msg("config %s: no log line saying \"%s\"", bad[i].config,
               bad[i].says);
    fx_free(f);
  }
}
