/* Unit tests: the router (lib/router.c) without a client or sockets:
 * routes built from handlers, dispatch order, the free guard, unknown
 * events dropped, and plugins (the test recorders) registered, fanned out
 * to and unloaded in order.  The owner is a fake plugins_host. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/event.h>

#include <dgw/dgw.h>
#include <dgw/plugin.h>

#include "plugin.h"
#include "router.h"

#define REC_NAMED TEST_PLUGIN_DIR "/rec_named.so"
#define REC_ALL TEST_PLUGIN_DIR "/rec_all.so"
#define REC_SUB TEST_PLUGIN_DIR "/rec_sub.so"
#define NOSYM TEST_PLUGIN_DIR "/nosym.so"

#define MAX_CALLS 16
#define MAX_LINES 32

/* The fake owner: records what the router and loader ask of it. */
struct owner {
  int freeing;
  int enters, leaves;
  enum dgw_log_level log_level;
  char lines[MAX_LINES][256];
  enum dgw_log_level levels[MAX_LINES];
  int nlines;
  int calls[MAX_CALLS]; /* handler tags, in call order */
  int ncalls;
  int free_at; /* the handler of this tag sets freeing (-1: none) */
};

static uint32_t own_shard_count(void *owner) {
  (void)owner;
  return 0;
}

static struct dgw_gateway *own_shard_at(void *owner, uint32_t index) {
  (void)owner;
  (void)index;
  return NULL;
}

static int own_log_enabled(void *owner, enum dgw_log_level level) {
  return level <= ((struct owner *)owner)->log_level;
}

static void own_log(void *owner, enum dgw_log_level level, const char *line) {
  struct owner *o = owner;

  if (o->nlines < MAX_LINES) {
    o->levels[o->nlines] = level;
    snprintf(o->lines[o->nlines++], sizeof(o->lines[0]), "%s", line);
  }
}

static int own_freeing(void *owner) {
  return ((struct owner *)owner)->freeing;
}

static void own_enter(void *owner) {
  ((struct owner *)owner)->enters++;
}

static int own_leave(void *owner) {
  ((struct owner *)owner)->leaves++;
  return 0;
}

static struct dgw_plugins *new_set(struct owner *o, struct event_base *base,
                                   int strict) {
  struct plugins_host host = {
      .client = NULL,
      .base = base,
      .owner = o,
      .strict = strict,
      .shard_count = own_shard_count,
      .shard_at = own_shard_at,
      .log_enabled = own_log_enabled,
      .log = own_log,
      .freeing = own_freeing,
      .enter = own_enter,
      .leave = own_leave,
  };
  struct dgw_plugins *ps;

  memset(o, 0, sizeof(*o));
  o->log_level = DGW_LOG_DEBUG;
  o->free_at = -1;
  ps = plugins_new(&host);
  assert_non_null(ps);
  return ps;
}

/* The index of the first log line containing `text`, or -1. */
static int find_line(const struct owner *o, const char *text) {
  for (int i = 0; i < o->nlines; i++)
    if (strstr(o->lines[i], text) != NULL)
      return i;
  return -1;
}

/* An in-process handler: user_data points at one of these. */
struct tag {
  struct owner *owner;
  int tag;
};

static void on_event(struct dgw_gateway *gw, const struct dgw_event *ev,
                     void *user_data) {
  struct tag *t = user_data;
  struct owner *o = t->owner;

  (void)gw;
  (void)ev;
  if (o->ncalls < MAX_CALLS)
    o->calls[o->ncalls++] = t->tag;
  if (t->tag == o->free_at)
    o->freeing = 1; /* the application freed the client in here */
}

/* Dispatches `name` and checks the handlers called, by tag, in order
 * (ending with -1); a NULL `want` means no route at all. */
static void expect_calls(struct dgw_plugins *ps, struct owner *o,
                         const char *name, const int *want) {
  const struct plugin_route *r = plugins_route(ps, name);
  int n = 0;

  if (want == NULL) {
    if (r != NULL)
      fail_msg("%s: routed, expected to be dropped", name);
    return;
  }
  if (r == NULL)
    fail_msg("%s: dropped, expected a route", name);
  o->ncalls = 0;
  plugins_dispatch(ps, r, NULL, NULL);
  while (want[n] >= 0)
    n++;
  if (o->ncalls != n)
    fail_msg("%s: %d handler(s) called, expected %d", name, o->ncalls, n);
  for (int i = 0; i < n; i++)
    if (o->calls[i] != want[i])
      fail_msg("%s: call %d went to handler %d, expected %d", name, i,
               o->calls[i], want[i]);
}

/* ------------------------------------------------------------ routes */

struct route_case {
  const char *event;
  const int *want; /* tags, -1 ended; NULL: dropped */
};

#define TAGS(...) ((const int[]){__VA_ARGS__, -1})

/* Handlers registered in this order; tag = index. */
static const char *const mixed[] = {"*", "MESSAGE_CREATE", "TYPING_START",
                                    "MESSAGE_CREATE", "*"};

static const struct route_case mixed_cases[] = {
    {"MESSAGE_CREATE", TAGS(0, 1, 3, 4)},
    {"TYPING_START", TAGS(0, 2, 4)},
    {"GUILD_CREATE", TAGS(0, 4)}, /* only the wildcards */
    {"", TAGS(0, 4)},
    {"message_create", TAGS(0, 4)}, /* names are case-sensitive */
};

static const char *const named[] = {"MESSAGE_CREATE", "TYPING_START",
                                    "MESSAGE_CREATE", "READY"};

static const struct route_case named_cases[] = {
    {"MESSAGE_CREATE", TAGS(0, 2)},
    {"TYPING_START", TAGS(1)},
    {"READY", TAGS(3)},
    {"GUILD_CREATE", NULL}, /* nobody wants it: dropped */
    {"", NULL},
    {"MESSAGE_CREATE_", NULL},
};

static void run_routes(const char *const *events, size_t nevents,
                       const struct route_case *cases, size_t ncases) {
  struct owner o;
  struct dgw_plugins *ps = new_set(&o, NULL, 0);
  struct tag tags[8];

  for (size_t i = 0; i < nevents; i++) {
    tags[i] = (struct tag){&o, (int)i};
    assert_int_equal(plugins_add_handler(ps, events[i], on_event, &tags[i]),
                     DGW_OK);
  }
  /* Nothing routes before the table is built. */
  assert_null(plugins_route(ps, events[0]));
  assert_int_equal(plugins_build_routes(ps), DGW_OK);
  assert_int_equal(plugins_build_routes(ps), DGW_OK); /* once is enough */
  for (size_t i = 0; i < ncases; i++)
    expect_calls(ps, &o, cases[i].event, cases[i].want);
  assert_int_equal(o.nlines, 0);
  plugins_free(ps);
}

static void test_routes_with_wildcards(void **state) {
  (void)state;
  run_routes(mixed, sizeof(mixed) / sizeof(mixed[0]), mixed_cases,
             sizeof(mixed_cases) / sizeof(mixed_cases[0]));
}

static void test_routes_named_only(void **state) {
  (void)state;
  run_routes(named, sizeof(named) / sizeof(named[0]), named_cases,
             sizeof(named_cases) / sizeof(named_cases[0]));
}

/* No handler at all: every event is dropped, and freeing is a no-op. */
static void test_empty_set(void **state) {
  struct owner o;
  struct dgw_plugins *ps = new_set(&o, NULL, 0);

  (void)state;
  assert_int_equal(plugins_build_routes(ps), DGW_OK);
  assert_null(plugins_route(ps, "MESSAGE_CREATE"));
  assert_null(plugins_route(NULL, "MESSAGE_CREATE"));
  assert_int_equal(plugins_count(ps), 0);
  assert_int_equal(plugins_refused(ps), 0);
  plugins_lifecycle(ps, NULL, DGW_LIFECYCLE_READY, NULL);
  plugins_free(ps);
  plugins_free(NULL);
}

/* --------------------------------------------------------- free guard */

/* A handler that frees the client ends the loop: later handlers of the
 * same event are not called, and nothing is while it stays so. */
static void test_dispatch_stops_when_freeing(void **state) {
  struct owner o;
  struct dgw_plugins *ps = new_set(&o, NULL, 0);
  struct tag tags[4];

  (void)state;
  for (int i = 0; i < 4; i++) {
    tags[i] = (struct tag){&o, i};
    assert_int_equal(plugins_add_handler(ps, i % 2 ? "*" : "MESSAGE_CREATE",
                                         on_event, &tags[i]),
                     DGW_OK);
  }
  assert_int_equal(plugins_build_routes(ps), DGW_OK);
  expect_calls(ps, &o, "MESSAGE_CREATE", TAGS(0, 1, 2, 3));
  o.free_at = 1;
  expect_calls(ps, &o, "MESSAGE_CREATE", TAGS(0, 1));
  assert_true(o.freeing);
  o.ncalls = 0;
  plugins_dispatch(ps, plugins_route(ps, "MESSAGE_CREATE"), NULL, NULL);
  assert_int_equal(o.ncalls, 0);
  plugins_free(ps);
}

/* ------------------------------------------------------- registering */

static void test_register_rules(void **state) {
  struct owner o;
  struct dgw_plugins *ps = new_set(&o, NULL, 0);
  struct tag t = {&o, 0};
  char long_name[200];
  char why[256];

  (void)state;
  memset(long_name, 'A', sizeof(long_name) - 1);
  long_name[sizeof(long_name) - 1] = '\0';
  assert_int_equal(plugins_add_handler(ps, "READY", NULL, &t),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(plugins_add_handler(ps, "", on_event, &t),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(plugins_add_handler(ps, NULL, on_event, &t),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(plugins_add_handler(ps, long_name, on_event, &t),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(plugins_add_handler(NULL, "READY", on_event, &t),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(plugins_load(ps, "", NULL, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(plugins_refused(ps), 0); /* not a refusal: no name */
  assert_int_equal(plugins_add_handler(ps, "READY", on_event, &t), DGW_OK);
  assert_int_equal(plugins_build_routes(ps), DGW_OK);
  /* The table is built: nothing more may be registered. */
  assert_int_equal(plugins_add_handler(ps, "READY", on_event, &t),
                   DGW_ERR_STATE);
  assert_int_equal(plugins_load(ps, REC_NAMED, NULL, why, sizeof(why)),
                   DGW_ERR_STATE);
  assert_non_null(strstr(why, "has started"));
  assert_int_equal(plugins_count(ps), 0);
  plugins_free(ps);
}

/* ------------------------------------------------------------ plugins */

/* Plugins are units like handlers: routed by what they want, told of
 * lifecycle in load order, unloaded in reverse; a refusal is counted and
 * logged, at ERROR when strict. */
static void test_plugins(void **state) {
  struct owner o;
  struct dgw_plugins *ps = new_set(&o, NULL, 0);
  struct dgw_plugin_info info;
  char why[512];
  int a, b;

  (void)state;
  assert_int_equal(
      plugins_load(ps, REC_NAMED, "{\"id\":\"a\"}", why, sizeof(why)), DGW_OK);
  assert_int_equal(plugins_load(ps, REC_SUB,
                                "{\"id\":\"b\",\"subscribe\":[\"READY\"]}", why,
                                sizeof(why)),
                   DGW_OK);
  assert_int_equal(plugins_load(ps, NOSYM, NULL, why, sizeof(why)),
                   DGW_ERR_PLUGIN);
  assert_non_null(strstr(why, "lacks the symbol"));
  assert_int_equal(plugins_refused(ps), 1);
  assert_int_equal(plugins_count(ps), 2);
  a = find_line(&o, "plugin refused: ");
  assert_true(a >= 0);
  assert_int_equal(o.levels[a], DGW_LOG_WARN);
  /* The loader prefixes a plugin's own lines with its name. */
  assert_true(find_line(&o, "plugin rec-named: rec a init") >= 0);
  assert_true(find_line(&o, "plugin rec-sub: rec b init") >= 0);
  assert_true(find_line(&o, "plugin rec-named 0.0.1 loaded from ") >= 0);

  assert_int_equal(plugins_info(ps, 1, &info, sizeof(info)), DGW_OK);
  assert_string_equal(info.name, "rec-sub");
  assert_int_equal(info.nevents, 1);
  assert_string_equal(info.events[0], "READY");
  assert_int_equal(plugins_info(ps, 2, &info, sizeof(info)),
                   DGW_ERR_INVALID_ARGUMENT);

  assert_int_equal(plugins_build_routes(ps), DGW_OK);
  assert_non_null(plugins_route(ps, "MESSAGE_CREATE")); /* a */
  assert_non_null(plugins_route(ps, "TYPING_START"));   /* a */
  assert_non_null(plugins_route(ps, "READY"));          /* b */
  assert_null(plugins_route(ps, "GUILD_CREATE"));

  o.nlines = 0;
  plugins_lifecycle(ps, NULL, DGW_LIFECYCLE_READY, NULL);
  a = find_line(&o, "rec a lifecycle ready");
  b = find_line(&o, "rec b lifecycle ready");
  assert_true(a >= 0 && b > a); /* load order */
  o.nlines = 0;
  o.freeing = 1;
  plugins_lifecycle(ps, NULL, DGW_LIFECYCLE_RESUMED, NULL);
  assert_int_equal(o.nlines, 0);
  o.freeing = 0;

  plugins_free(ps);
  a = find_line(&o, "rec a fini");
  b = find_line(&o, "rec b fini");
  assert_true(b >= 0 && a > b); /* reverse load order */
}

static void test_refusal_strict(void **state) {
  struct owner o;
  struct dgw_plugins *ps = new_set(&o, NULL, 1);
  int i;

  (void)state;
  assert_int_equal(plugins_load(ps, NOSYM, NULL, NULL, 0), DGW_ERR_PLUGIN);
  assert_int_equal(plugins_load(ps, REC_SUB, "{", NULL, 0), DGW_ERR_PLUGIN);
  assert_int_equal(plugins_refused(ps), 2);
  i = find_line(&o, "config is not valid JSON");
  assert_true(i >= 0);
  assert_int_equal(o.levels[i], DGW_LOG_ERROR);
  plugins_free(ps);
}

/* A plugin's timer enters the owner through enter()/leave(). */
static void test_plugin_timer_brackets(void **state) {
  struct event_base *base = event_base_new();
  struct timeval deadline = {5, 0};
  struct owner o;
  struct dgw_plugins *ps;

  (void)state;
  assert_non_null(base);
  ps = new_set(&o, base, 0);
  assert_int_equal(
      plugins_load(ps, REC_SUB, "{\"id\":\"t\",\"timer_ms\":1}", NULL, 0),
      DGW_OK);
  event_base_loopexit(base, &deadline); /* never hang */
  while (find_line(&o, "rec t tick 1") < 0 &&
         event_base_loop(base, EVLOOP_ONCE) == 0 && !event_base_got_exit(base))
    ;
  assert_true(find_line(&o, "rec t tick 1") >= 0);
  assert_int_equal(o.enters, 1);
  assert_int_equal(o.leaves, 1);
  plugins_free(ps);
  event_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_routes_with_wildcards),
      cmocka_unit_test(test_routes_named_only),
      cmocka_unit_test(test_empty_set),
      cmocka_unit_test(test_dispatch_stops_when_freeing),
      cmocka_unit_test(test_register_rules),
      cmocka_unit_test(test_plugins),
      cmocka_unit_test(test_refusal_strict),
      cmocka_unit_test(test_plugin_timer_brackets),
  };
  return cmocka_run_group_tests_name("router", tests, NULL, NULL);
}
