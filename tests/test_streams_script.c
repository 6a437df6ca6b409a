/*
 * The redis-streams plugin's exactly-once script, unit by unit: the plugin
 * is loaded with dlopen and driven through a host table of the test's own
 * (a cluster named "u", a lease and a session the test chooses per event,
 * events the test makes), against a private redis-server whose lease and
 * token keys the test sets as a cluster would.  No gateway, no cluster:
 * each case is one event and one look at the stream and the position.
 *
 *   - stored: the lease is ours, the (session, s) is new -> XADD and the
 *     position dgw:{u}:stored:0 becomes (session, s);
 *   - a duplicate (s not newer in the same session) is skipped;
 *   - fenced: the lease names another member, or it is missing and a newer
 *     token was handed out -> refused, nothing written;
 *   - the lease key missing with our token still the last -> stored (a
 *     Redis that lost its keys);
 *   - an unwanted READY moves only the position to the new session, and
 *     so does the plugin's timer for events that went by unwanted;
 *   - "name" other than the cluster's is a config error.
 * The counters come out in the plugin's exit line.
 */
#include "config.h"

#include <dlfcn.h>

#include "harness.h"

#include <dgw/plugin.h>
#include <hiredis/hiredis.h>

#include "redis_server.h"

#define STREAMS_PLUGIN                                                         \
  SHIPPED_PLUGIN_DIR "/redis-streams/.libs/redis-streams.so"

/* The test's event: what the host's event_* members read. */
struct dgw_event {
  const char *t;
  int64_t s;
  const char *d;
};

static struct {
  dgw_plugin_timer_fn timer_fn; /* the plugin's repeating timer */
  void *timer_arg;
  int shards;  /* 1: the host has one shard (for the timer's look) */
  int64_t seq; /* its gateway_sequence */
  char member[64];
  uint64_t token;
  const char *sid;
  char logs[8192];
} fake;

static void h_log(const struct dgw_plugin_host *h, enum dgw_log_level level,
                  const char *fmt, ...) {
  va_list ap;
  size_t n = strlen(fake.logs);

  (void)h;
  (void)level;
  va_start(ap, fmt);
  if (n + 2 < sizeof(fake.logs)) {
    vsnprintf(fake.logs + n, sizeof(fake.logs) - n - 1, fmt, ap);
    strcat(fake.logs, "\n");
  }
  va_end(ap);
  if (getenv("DGW_TEST_VERBOSE") != NULL)
    fprintf(stderr, "# %s", fake.logs + n);
}

static int h_subscribe(const struct dgw_plugin_host *h, const char *name) {
  (void)h;
  (void)name;
  return DGW_OK;
}

static uint32_t h_shard_count(const struct dgw_plugin_host *h) {
  (void)h;
  return (uint32_t)fake.shards;
}

static struct dgw_gateway *h_gateway_at(const struct dgw_plugin_host *h,
                                        uint32_t i) {
  (void)h;
  return i == 0 && fake.shards > 0 ? (struct dgw_gateway *)&fake : NULL;
}

static uint32_t h_gateway_shard_id(const struct dgw_gateway *gw) {
  (void)gw;
  return 0;
}

static int64_t h_gateway_sequence(const struct dgw_gateway *gw) {
  (void)gw;
  return fake.seq;
}

static struct dgw_plugin_timer *h_timer_add(const struct dgw_plugin_host *h,
                                            uint32_t ms, int repeat,
                                            dgw_plugin_timer_fn fn, void *arg) {
  (void)h;
  (void)ms;
  (void)repeat;
  fake.timer_fn = fn;
  fake.timer_arg = arg;
  return (struct dgw_plugin_timer *)&fake;
}

static const char *h_event_name(const struct dgw_event *e) {
  return e->t;
}

static int64_t h_event_seq(const struct dgw_event *e) {
  return e->s;
}

static uint32_t h_event_shard(const struct dgw_event *e) {
  (void)e;
  return 0;
}

static const char *h_event_data(const struct dgw_event *e, size_t *len) {
  *len = strlen(e->d);
  return e->d;
}

static int h_field_string(const char *json, size_t len, const char *pointer,
                          char *buf, size_t size, size_t *out_len) {
  (void)json;
  (void)len;
  (void)pointer;
  (void)buf;
  (void)size;
  (void)out_len;
  return DGW_ERR_NOT_FOUND;
}

static int h_hold(const struct dgw_plugin_host *h, struct dgw_gateway *gw) {
  (void)h;
  (void)gw;
  return DGW_OK;
}

static const char *h_cluster_name(const struct dgw_plugin_host *h) {
  (void)h;
  return "u";
}

static int h_cluster_lease(const struct dgw_plugin_host *h, uint32_t shard,
                           char *member, size_t size, uint64_t *token) {
  (void)h;
  (void)shard;
  snprintf(member, size, "%s", fake.member);
  *token = fake.token;
  return DGW_OK;
}

static const char *h_session_id(const struct dgw_gateway *gw) {
  (void)gw;
  return fake.sid;
}

struct ctx {
  struct redis_server *srv;
  struct event_base *base;
  void *so;
  const struct dgw_plugin *p;
  struct dgw_plugin_host host;
  void *state;
};

static int plugin_init(struct ctx *x, const char *config) {
  memset(&x->host, 0, sizeof(x->host));
  x->host.size = (uint32_t)sizeof(x->host);
  x->host.abi = DGW_PLUGIN_ABI;
  x->host.base = x->base;
  x->host.config_json = config;
  x->host.log = h_log;
  x->host.subscribe = h_subscribe;
  x->host.shard_count = h_shard_count;
  x->host.gateway_at = h_gateway_at;
  x->host.gateway_shard_id = h_gateway_shard_id;
  x->host.gateway_sequence = h_gateway_sequence;
  x->host.timer_add = h_timer_add;
  x->host.event_name = h_event_name;
  x->host.event_seq = h_event_seq;
  x->host.event_shard = h_event_shard;
  x->host.event_data = h_event_data;
  x->host.strerror = dgw_strerror;
  x->host.field_string = h_field_string;
  x->host.gateway_pause = h_hold;
  x->host.gateway_release = h_hold;
  x->host.cluster_name = h_cluster_name;
  x->host.cluster_lease = h_cluster_lease;
  x->host.gateway_session_id = h_session_id;
  x->state = NULL;
  return x->p->init(&x->host, config, &x->state);
}

static void redis(struct ctx *x, char *out, size_t len, int argc, ...) {
  const char *argv[8];
  va_list ap;

  va_start(ap, argc);
  for (int i = 0; i < argc && i < 8; i++)
    argv[i] = va_arg(ap, const char *);
  va_end(ap);
  assert_int_equal(redis_server_cmd(x->srv, out, len, argc, argv), 0);
}

static long long xlen(struct ctx *x) {
  char out[64];

  redis(x, out, sizeof(out), 2, "XLEN", "dgw:{u}:events");
  return atoll(out + 1);
}

/* The stored position as "sid seq". */
static void position(struct ctx *x, char *out, size_t len) {
  char sid[128], seq[32];

  redis(x, sid, sizeof(sid), 3, "HGET", "dgw:{u}:stored:0", "sid");
  redis(x, seq, sizeof(seq), 3, "HGET", "dgw:{u}:stored:0", "seq");
  snprintf(out, len, "%s %s", sid, seq);
}

static int evals_sent;

/* EVALs Redis has run (INFO commandstats). */
static int evals_run(struct ctx *x) {
  redisContext *c = redisConnectUnix(redis_server_socket(x->srv));
  redisReply *r;
  const char *p;
  int n = 0;

  assert_non_null(c);
  assert_int_equal(c->err, 0);
  r = redisCommand(c, "INFO commandstats");
  if (r != NULL && r->type == REDIS_REPLY_STRING &&
      (p = strstr(r->str, "cmdstat_eval:calls=")) != NULL)
    n = atoi(p + 19);
  freeReplyObject(r);
  redisFree(c);
  return n;
}

/* The loop until Redis has run `sent` more scripts (5 s, scaled) and a
 * few passes more for the replies to reach the plugin. */
static void settle(struct ctx *x, int sent) {
  double end = deadline_ms(5);

  evals_sent += sent;
  while (evals_run(x) < evals_sent && now_ms() < end)
    loop_once(x->base);
  assert_int_equal(evals_run(x), evals_sent);
  for (int i = 0; i < 5; i++)
    loop_once(x->base);
}

/* One event under (member, token, sid), then settle. */
static void dispatch(struct ctx *x, const char *t, int64_t s, const char *sid,
                     const char *member, uint64_t token) {
  struct dgw_event ev = {t, s, "{\"n\":1}"};

  snprintf(fake.member, sizeof(fake.member), "%s", member);
  fake.token = token;
  fake.sid = sid;
  x->p->on_dispatch(x->state, (struct dgw_gateway *)&ev, &ev);
  settle(x, 1);
}

static void test_script(void **state) {
  struct ctx x;
  char out[256], pos[256];

  (void)state;
  memset(&x, 0, sizeof(x));
  memset(&fake, 0, sizeof(fake));
  x.srv = redis_server_start(NULL);
  assert_non_null(x.srv);
  x.base = event_base_new();
  x.so = dlopen(STREAMS_PLUGIN, RTLD_NOW | RTLD_LOCAL);
  assert_non_null(x.so);
  x.p = ((dgw_plugin_describe_fn)dlsym(x.so, DGW_PLUGIN_DESCRIBE_SYMBOL))();
  snprintf(out, sizeof(out),
           "{\"redis\":\"%s\",\"events\":[\"MESSAGE_CREATE\"]}",
           redis_server_url(x.srv));
  assert_int_equal(plugin_init(&x, out), 0);

  /* Ours: lease "m1 1", token 1. */
  redis(&x, out, sizeof(out), 3, "SET", "dgw:{u}:lease:0", "m1 1");
  redis(&x, out, sizeof(out), 3, "SET", "dgw:{u}:token:0", "1");
  for (int s = 2; s <= 4; s++)
    dispatch(&x, "MESSAGE_CREATE", s, "A", "m1", 1);
  assert_int_equal(xlen(&x), 3);
  position(&x, pos, sizeof(pos));
  assert_string_equal(pos, "A 4");

  /* A replay of s 3 (after a RESUME): skipped; s 5 stored. */
  dispatch(&x, "MESSAGE_CREATE", 3, "A", "m1", 1);
  assert_int_equal(xlen(&x), 3);
  dispatch(&x, "MESSAGE_CREATE", 5, "A", "m1", 1);
  assert_int_equal(xlen(&x), 4);

  /* Another member holds the lease: fenced, the position stays. */
  redis(&x, out, sizeof(out), 3, "SET", "dgw:{u}:lease:0", "m2 2");
  dispatch(&x, "MESSAGE_CREATE", 6, "A", "m1", 1);
  assert_int_equal(xlen(&x), 4);
  position(&x, pos, sizeof(pos));
  assert_string_equal(pos, "A 5");
  assert_non_null(strstr(fake.logs, "FENCED shard held by m2 2"));

  /* The lease key gone (expired, or Redis lost it) and no newer token:
   * still ours to write; the next holder's acquire reads the position. */
  redis(&x, out, sizeof(out), 2, "DEL", "dgw:{u}:lease:0");
  dispatch(&x, "MESSAGE_CREATE", 6, "A", "m1", 1);
  assert_int_equal(xlen(&x), 5);
  assert_non_null(strstr(fake.logs, "stored while its lease key is missing"));

  /* A newer token handed out (an acquire incremented it): fenced. */
  redis(&x, out, sizeof(out), 3, "SET", "dgw:{u}:token:0", "3");
  dispatch(&x, "MESSAGE_CREATE", 7, "A", "m1", 1);
  assert_int_equal(xlen(&x), 5); /* counted below (logged once a kind) */

  /* The new holder (token 3) gets a new session B: its READY is not
   * wanted but moves the position; its s 2 is then stored, s 1 of it is
   * not newer. */
  redis(&x, out, sizeof(out), 3, "SET", "dgw:{u}:lease:0", "m3 3");
  dispatch(&x, "READY", 1, "B", "m3", 3);
  assert_int_equal(xlen(&x), 5);
  position(&x, pos, sizeof(pos));
  assert_string_equal(pos, "B 1");
  dispatch(&x, "MESSAGE_CREATE", 2, "B", "m3", 3);
  assert_int_equal(xlen(&x), 6);
  position(&x, pos, sizeof(pos));
  assert_string_equal(pos, "B 2");
  dispatch(&x, "MESSAGE_CREATE", 2, "B", "m3", 3);
  assert_int_equal(xlen(&x), 6);

  /* The shard delivered up to s 9 events nobody wanted and nothing of it
   * waits: the timer moves the position to 9 (one script), and not again
   * while the seq stays. */
  assert_non_null(fake.timer_fn);
  fake.shards = 1;
  fake.seq = 9;
  fake.timer_fn(fake.timer_arg);
  settle(&x, 1);
  position(&x, pos, sizeof(pos));
  assert_string_equal(pos, "B 9");
  assert_int_equal(xlen(&x), 6);
  fake.timer_fn(fake.timer_arg);
  settle(&x, 0);
  /* A replay of s 5 after that is skipped. */
  dispatch(&x, "MESSAGE_CREATE", 5, "B", "m3", 3);
  assert_int_equal(xlen(&x), 6);
  fake.shards = 0;

  x.p->fini(x.state);
  /* 5 stored + 1 (B 2), 3 skipped (A 3, B 2, B 5), 2 fenced. */
  assert_non_null(strstr(fake.logs, "6 events stored, 0 dropped"));
  assert_non_null(strstr(fake.logs, "exactly-once: 3 skipped as already "
                                    "stored, 2 fenced, 1 stored with the "
                                    "lease key missing, 0 stored without"));

  /* "name" other than the cluster's: refused, naming it. */
  fake.logs[0] = '\0';
  snprintf(out, sizeof(out), "{\"redis\":\"%s\",\"name\":\"other\"}",
           redis_server_url(x.srv));
  assert_int_not_equal(plugin_init(&x, out), 0);
  assert_non_null(strstr(fake.logs, "\"name\" must be the cluster's name "
                                    "\"u\""));
  /* The cluster's own name is fine. */
  snprintf(out, sizeof(out), "{\"redis\":\"%s\",\"name\":\"u\"}",
           redis_server_url(x.srv));
  assert_int_equal(plugin_init(&x, out), 0);
  x.p->fini(x.state);

  dlclose(x.so);
  event_base_free(x.base);
  redis_server_free(x.srv);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_script),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
