/*
 * Integration tests for plugins (lib/plugin.c, include/dgw/plugin.h) and
 * the event routing: real shared objects loaded with dlopen, events from
 * the mock gateway over loopback.
 *
 * The test plugins (tests/plugins/) share nothing with this program: they
 * report what they see through the host's logger, and the fixture's log
 * sink keeps every line.  In-process handlers write lines of the same
 * shape into the same list, so one list shows the order of everyone.
 */
#include "config.h"

#include "fixture.h"

#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include <dgw/plugin.h>

#include "client.h"
#include "payload.h"
#include "plugin.h"
#include "router.h"

#define REC_NAMED TEST_PLUGIN_DIR "/rec_named.so"
#define REC_ALL TEST_PLUGIN_DIR "/rec_all.so"
#define REC_SUB TEST_PLUGIN_DIR "/rec_sub.so"
#define NOSYM TEST_PLUGIN_DIR "/nosym.so"
#define BADABI TEST_PLUGIN_DIR "/badabi.so"
#define SMALL TEST_PLUGIN_DIR "/small.so"
#define LOG_PLUGIN SHIPPED_PLUGIN_DIR "/log/.libs/log.so"
#define STATS_PLUGIN SHIPPED_PLUGIN_DIR "/stats/.libs/stats.so"

/* ------------------------------------------- on top of the fixture */

/* The records ("rec ...") containing `kind`, in order, each cut to what
 * follows "rec ". */
static int records(struct fx *f, const char *kind, const char **out, int max) {
  int n = 0;

  for (int i = 0; i < f->nlines && n < max; i++) {
    const char *r = strstr(f->lines[i], "rec ");

    if (r != NULL && strstr(r, kind) != NULL)
      out[n++] = r;
  }
  return n;
}

/* The dispatch records are exactly `want` (each a prefix of its record),
 * in order. */
static void expect_dispatches(struct fx *f, const char *const *want) {
  const char *got[256];
  int n = records(f, " dispatch ", got, 256);
  int i;

  for (i = 0; want[i] != NULL; i++) {
    if (i >= n)
      fail_msg("record %d missing: wanted \"%s\"", i, want[i]);
    if (strncmp(got[i], want[i], strlen(want[i])) != 0)
      fail_msg("record %d is \"%s\", wanted \"%s\"", i, got[i], want[i]);
  }
  if (n != i)
    fail_msg("%d records, wanted %d; extra: \"%s\"", n, i, got[i]);
}

/* Writes a record like the recorder's, as handler `id`. */
static void record(struct fx *f, const char *id, const struct dgw_event *ev) {
  char line[256];
  size_t len;
  const char *d = dgw_event_data(ev, &len);

  snprintf(line, sizeof(line), "rec %s dispatch %s %lld %u %.*s", id,
           dgw_event_name(ev), (long long)dgw_event_seq(ev),
           (unsigned)dgw_event_shard(ev), (int)len, d);
  fx_log_line(f, line);
}

/* The application's on_dispatch, as the fixture's hook: a record like
 * the plugins', as "app". */
static void app_record(struct fx *f, struct dgw_gateway *gw,
                       const struct dgw_event *ev) {
  (void)gw;
  record(f, "app", ev);
}

/* The same, and the application asks for the parsed d. */
static void app_record_json(struct fx *f, struct dgw_gateway *gw,
                            const struct dgw_event *ev) {
  char line[128];

  app_record(f, gw, ev);
  snprintf(line, sizeof(line), "rec app json %lld %p",
           (long long)dgw_event_seq(ev), (void *)dgw_event_json(ev));
  fx_log_line(f, line);
}

static void handler_h(struct dgw_gateway *gw, const struct dgw_event *ev,
                      void *ud) {
  struct fx *f = ud;

  (void)gw;
  record(f, "H", ev);
  if (f->free_on_seq && dgw_event_seq(ev) == f->free_on_seq) {
    dgw_client_free(f->client);
    f->client = NULL;
  }
}

static void handler_i(struct dgw_gateway *gw, const struct dgw_event *ev,
                      void *ud) {
  (void)gw;
  record(ud, "I", ev);
}

/* The script every session gets after READY (s 1): s 2..6. */
static void add_script(struct fx *f) {
  assert_int_equal(dgw_mock_add_dispatch(f->mock, "GUILD_CREATE", "{\"g\":1}"),
                   DGW_OK);
  assert_int_equal(
      dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"m\":1}"), DGW_OK);
  assert_int_equal(dgw_mock_add_dispatch(f->mock, "TYPING_START", "{\"t\":1}"),
                   DGW_OK);
  assert_int_equal(
      dgw_mock_add_dispatch(f->mock, "MESSAGE_CREATE", "{\"m\":2}"), DGW_OK);
  assert_int_equal(
      dgw_mock_add_dispatch(f->mock, "PRESENCE_UPDATE", "{\"p\":1}"), DGW_OK);
}

/* The fixture with the script, and a client (not started) so that
 * plugins can be loaded.  `app_dispatch`: the application has an
 * on_dispatch callback (app_record); otherwise none, so that events
 * nobody wants are dropped. */
static struct fx *new_fixture(struct dgw_mock_config *mc, int app_dispatch) {
  struct fx *f = fx_new(mc);

  add_script(f);
  if (app_dispatch)
    f->on_dispatch = app_record;
  else
    dgw_callbacks_set_on_dispatch(f->cb, NULL);
  fx_client_new(f);
  return f;
}

static int setup_plugin(void **state) {
  *state = new_fixture(NULL, 0);
  return 0;
}

static int setup_plugin_app(void **state) {
  *state = new_fixture(NULL, 1);
  return 0;
}

/* Loads a plugin that must load. */
static void load(struct fx *f, const char *path, const char *config) {
  char why[512];
  int rv = dgw_client_load_plugin(f->client, path, config, why, sizeof(why));

  if (rv != DGW_OK)
    fail_msg("loading %s: %s (%s)", path, dgw_strerror(rv), why);
}

/* All six dispatches of the script went through the client. */
static int all_taken(struct fx *f) {
  return f->client != NULL && fx_stats(f).dispatches >= 6;
}

static void run_script(struct fx *f) {
  fx_start(f);
  assert_true(fx_wait_for(f, all_taken, 5));
  run_for(f->base, 30);
}

/* ------------------------------------------------------- delivery */

/* A plugin naming two events in its descriptor gets exactly those, with
 * the whole event view; the others are dropped without a parse. */
static void test_plugin_receives_its_events(void **state) {
  struct fx *f = *state;
  static const char *const want[] = {
      "rec A dispatch MESSAGE_CREATE 3 0 {\"m\":1}",
      "rec A dispatch TYPING_START 4 0 {\"t\":1}",
      "rec A dispatch MESSAGE_CREATE 5 0 {\"m\":2}",
      NULL,
  };

  load(f, REC_NAMED, "{\"id\":\"A\"}");
  assert_true(fx_find_line(f, 0, "plugin rec-named: rec A init") >= 0);
  assert_true(fx_find_line(f, 0, "plugin rec-named 0.0.1 loaded") >= 0);
  run_script(f);
  expect_dispatches(f, want);
  assert_int_equal(fx_stats(f).dispatches, 6);
  assert_int_equal(fx_stats(f).dropped, 3); /* READY, GUILD, PRESENCE */
  assert_int_equal(fx_stats(f).parsed, 0);
  dgw_client_free(f->client);
  f->client = NULL;
  assert_true(fx_find_line(f, 0, "rec A fini") >= 0);
}

/* "*" gets every event, READY included, in sequence order. */
static void test_plugin_wildcard(void **state) {
  struct fx *f = *state;
  static const char *const want[] = {
      "rec W dispatch READY 1 0 {",
      "rec W dispatch GUILD_CREATE 2 0 {\"g\":1}",
      "rec W dispatch MESSAGE_CREATE 3 0 {\"m\":1}",
      "rec W dispatch TYPING_START 4 0 {\"t\":1}",
      "rec W dispatch MESSAGE_CREATE 5 0 {\"m\":2}",
      "rec W dispatch PRESENCE_UPDATE 6 0 {\"p\":1}",
      NULL,
  };

  load(f, REC_ALL, "{\"id\":\"W\"}");
  run_script(f);
  expect_dispatches(f, want);
  assert_int_equal(fx_stats(f).dropped, 0);
}

/* A plugin may subscribe from init (events named in its config); not
 * afterwards. */
static void test_plugin_subscribes_in_init(void **state) {
  struct fx *f = *state;
  static const char *const want[] = {
      "rec S dispatch GUILD_CREATE 2 0 {\"g\":1}",
      "rec S dispatch PRESENCE_UPDATE 6 0 {\"p\":1}",
      NULL,
  };
  char line[64];

  load(f, REC_SUB,
       "{\"id\":\"S\",\"subscribe\":[\"GUILD_CREATE\",\"PRESENCE_UPDATE\","
       "\"GUILD_CREATE\"],\"late_subscribe\":1}");
  load(f, REC_SUB, "{\"id\":\"N\"}"); /* subscribes to nothing */
  run_script(f);
  expect_dispatches(f, want);
  snprintf(line, sizeof(line), "rec S late-subscribe %d", DGW_ERR_STATE);
  assert_true(fx_find_line(f, 0, line) >= 0);
}

/* dgw_client_plugin_info() reports each loaded plugin as loaded: its
 * descriptor, its path, and the events it wanted (from the descriptor, or
 * subscribed in init); a refused one is not counted; an older caller's
 * smaller struct gets only its fields. */
static void test_plugin_info(void **state) {
  struct fx *f = *state;
  struct dgw_plugin_info info;
  struct {
    const char *name;
    const char *version;
  } old;
  char why[256];

  assert_int_equal(dgw_client_plugin_count(f->client), 0);
  load(f, REC_NAMED, "{\"id\":\"A\"}");
  assert_int_equal(
      dgw_client_load_plugin(f->client, NOSYM, NULL, why, sizeof(why)),
      DGW_ERR_PLUGIN);
  load(f, REC_SUB, "{\"id\":\"S\",\"subscribe\":[\"GUILD_CREATE\"]}");
  load(f, REC_ALL, "{\"id\":\"W\"}");
  assert_int_equal(dgw_client_plugin_count(f->client), 3);

  assert_int_equal(dgw_client_plugin_info(f->client, 0, &info, sizeof(info)),
                   DGW_OK);
  assert_string_equal(info.name, "rec-named");
  assert_string_equal(info.version, "0.0.1");
  assert_string_equal(info.path, REC_NAMED);
  assert_int_equal(info.abi, DGW_PLUGIN_ABI);
  assert_int_equal(info.all_events, 0);
  assert_int_equal(info.nevents, 2);
  assert_string_equal(info.events[0], "MESSAGE_CREATE");
  assert_string_equal(info.events[1], "TYPING_START");

  assert_int_equal(dgw_client_plugin_info(f->client, 1, &info, sizeof(info)),
                   DGW_OK);
  assert_string_equal(info.path, REC_SUB);
  assert_int_equal(info.nevents, 1);
  assert_string_equal(info.events[0], "GUILD_CREATE");

  assert_int_equal(dgw_client_plugin_info(f->client, 2, &info, sizeof(info)),
                   DGW_OK);
  assert_string_equal(info.name, "rec-all");
  assert_int_equal(info.all_events, 1);
  assert_int_equal(info.nevents, 0);

  memset(&old, 0, sizeof(old));
  assert_int_equal(dgw_client_plugin_info(f->client, 0,
                                          (struct dgw_plugin_info *)&old,
                                          sizeof(old)),
                   DGW_OK);
  assert_string_equal(old.name, "rec-named");
  assert_string_equal(old.version, "0.0.1");

  assert_int_equal(dgw_client_plugin_info(f->client, 3, &info, sizeof(info)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_client_plugin_info(f->client, 0, NULL, sizeof(info)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_client_plugin_count(NULL), 0);
}

/* One event, many handlers: on_dispatch first, then plugins and
 * in-process handlers in the order they were loaded or registered. */
static void test_handlers_in_load_order(void **state) {
  struct fx *f = new_fixture(NULL, 1);
  static const char *const want[] = {
      "rec app dispatch READY 1",
      "rec B dispatch READY 1",
      "rec I dispatch READY 1",

      "rec app dispatch GUILD_CREATE 2",
      "rec B dispatch GUILD_CREATE 2",
      "rec I dispatch GUILD_CREATE 2",

      "rec app dispatch MESSAGE_CREATE 3",
      "rec A dispatch MESSAGE_CREATE 3",
      "rec H dispatch MESSAGE_CREATE 3",
      "rec B dispatch MESSAGE_CREATE 3",
      "rec I dispatch MESSAGE_CREATE 3",

      "rec app dispatch TYPING_START 4",
      "rec A dispatch TYPING_START 4",
      "rec B dispatch TYPING_START 4",
      "rec I dispatch TYPING_START 4",

      "rec app dispatch MESSAGE_CREATE 5",
      "rec A dispatch MESSAGE_CREATE 5",
      "rec H dispatch MESSAGE_CREATE 5",
      "rec B dispatch MESSAGE_CREATE 5",
      "rec I dispatch MESSAGE_CREATE 5",

      "rec app dispatch PRESENCE_UPDATE 6",
      "rec B dispatch PRESENCE_UPDATE 6",
      "rec I dispatch PRESENCE_UPDATE 6",
      NULL,
  };
  static const char *const reversed[] = {
      "rec B dispatch READY 1",           "rec B dispatch GUILD_CREATE 2",
      "rec B dispatch MESSAGE_CREATE 3",  "rec A dispatch MESSAGE_CREATE 3",
      "rec B dispatch TYPING_START 4",    "rec A dispatch TYPING_START 4",
      "rec B dispatch MESSAGE_CREATE 5",  "rec A dispatch MESSAGE_CREATE 5",
      "rec B dispatch PRESENCE_UPDATE 6", NULL,
  };

  (void)state;
  load(f, REC_NAMED, "{\"id\":\"A\"}");
  assert_int_equal(
      dgw_client_on_event(f->client, "MESSAGE_CREATE", handler_h, f), DGW_OK);
  load(f, REC_ALL, "{\"id\":\"B\"}");
  assert_int_equal(dgw_client_on_event(f->client, "*", handler_i, f), DGW_OK);
  run_script(f);
  expect_dispatches(f, want);
  fx_free(f);

  /* The same two plugins loaded the other way round. */
  f = new_fixture(NULL, 0);
  load(f, REC_ALL, "{\"id\":\"B\"}");
  load(f, REC_NAMED, "{\"id\":\"A\"}");
  run_script(f);
  expect_dispatches(f, reversed);
  fx_free(f);
}

/* ------------------------------------------------------- laziness */

/* Three handlers of the same events ask for the parsed d: it is parsed
 * once per event and all three get the same tree. */
static void test_parse_once_per_event(void **state) {
  struct fx *f = *state;
  const char *a[16];
  const char *b[16];
  const char *app[16];
  int na, nb, napp;

  f->on_dispatch = app_record_json;
  load(f, REC_NAMED, "{\"id\":\"A\",\"parse\":1}");
  load(f, REC_ALL, "{\"id\":\"B\",\"parse\":1}");
  run_script(f);
  /* Every event reached a parsing handler: one parse each, not three. */
  assert_int_equal(fx_stats(f).dispatches, 6);
  assert_int_equal(fx_stats(f).parsed, 6);

  na = records(f, "rec A json ", a, 16);
  nb = records(f, "rec B json ", b, 16);
  napp = records(f, "rec app json ", app, 16);
  assert_int_equal(na, 3);
  assert_int_equal(nb, 6);
  assert_int_equal(napp, 6);
  /* "rec A json 3 0x..." and "rec B json 3 0x...": the same pointer. */
  assert_string_equal(strchr(a[0] + 11, ' '),
                      strchr(strstr(b[2], " json 3 ") + 6, ' '));
  assert_string_equal(strchr(app[2] + 13, ' '), strchr(a[0] + 11, ' '));
  assert_true(strstr(a[0], "(nil)") == NULL);
}

/* Nobody asks for the tree: nothing is parsed.  Nobody wants an event at
 * all: it is dropped after the peek; READY still makes the session. */
static void test_no_parse_without_subscriber(void **state) {
  struct fx *f = new_fixture(NULL, 0);

  (void)state;
  load(f, REC_NAMED, "{\"id\":\"A\"}");
  assert_int_equal(dgw_client_on_event(f->client, "TYPING_START", handler_i, f),
                   DGW_OK);
  run_script(f);
  assert_int_equal(fx_count_lines(f, " dispatch "), 4);
  assert_int_equal(fx_stats(f).parsed, 0);
  assert_int_equal(fx_stats(f).dropped, 3);
  fx_free(f);

  /* No plugin, no handler, no on_dispatch. */
  f = new_fixture(NULL, 0);
  run_script(f);
  assert_int_equal(f->ready, 1);
  assert_non_null(dgw_gateway_session_id(dgw_client_gateway(f->client, 0)));
  assert_int_equal(fx_stats(f).dispatches, 6);
  assert_int_equal(fx_stats(f).dropped, 6);
  assert_int_equal(fx_stats(f).parsed, 0);
  fx_free(f);
}

/* ------------------------------------------------------- refusals */

struct refusal {
  const char *what;
  const char *path;   /* NULL: the text file made by the test */
  const char *config; /* may be NULL */
  const char *reason; /* must appear in why and in the log */
};

static void test_refusals(void **state) {
  static const struct refusal cases[] = {
      {"missing file", "/nonexistent/dir/plugin.so", NULL, "file missing"},
      {"missing by name", "no-such-plugin", NULL, "file missing"},
      {"not a shared object", NULL, NULL, "not a loadable shared object"},
      {"a directory", TEST_PLUGIN_DIR, NULL, "not a loadable shared object"},
      {"no symbol", NOSYM, NULL, "lacks the symbol dgw_plugin_describe"},
      {"other ABI", BADABI, NULL, "other plugin ABI (built for 2, this dgw"},
      {"too small", SMALL, NULL, "descriptor too small"},
      {"init fails", REC_SUB, "{\"fail_init\":7}", "init failed (returned 7)"},
      {"bad config", REC_ALL, "{\"id\":", "config is not valid JSON"},
  };
  char text[] = "/tmp/dgw-test-plugin-XXXXXX";
  int fd = mkstemp(text);

  (void)state;
  assert_true(fd >= 0);
  assert_true(write(fd, "this is a text file\n", 20) == 20);
  close(fd);
  setenv(DGW_PLUGIN_PATH_ENV, TEST_PLUGIN_DIR, 1);
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct fx *f = new_fixture(NULL, 0);
    const char *path = cases[i].path != NULL ? cases[i].path : text;
    char why[512] = "untouched";
    char tiny[8];
    int rv;

    rv = dgw_client_load_plugin(f->client, path, cases[i].config, why,
                                sizeof(why));
    if (rv != DGW_ERR_PLUGIN || strstr(why, cases[i].reason) == NULL)
      fail_msg("%s: %d, \"%s\"", cases[i].what, rv, why);
    print_message("# %s: %s\n", cases[i].what, why);
    assert_true(fx_find_line(f, 0, "plugin refused: ") >= 0);
    assert_true(fx_find_line(f, 0, cases[i].reason) >= 0);
    assert_int_equal(fx_plugins_refused(f), 1);
    /* A short buffer gets a cut, terminated message; none is fine too. */
    rv = dgw_client_load_plugin(f->client, path, cases[i].config, tiny,
                                sizeof(tiny));
    assert_int_equal(rv, DGW_ERR_PLUGIN);
    assert_int_equal(strlen(tiny), sizeof(tiny) - 1);
    assert_int_equal(
        dgw_client_load_plugin(f->client, path, cases[i].config, NULL, 0),
        DGW_ERR_PLUGIN);
    fx_free(f);
  }
  unsetenv(DGW_PLUGIN_PATH_ENV);
  unlink(text);
  assert_string_equal(dgw_strerror(DGW_ERR_PLUGIN), "plugin refused");
}

/* Not strict: a refused plugin is left out and the others work.  Strict:
 * the client refuses to start and connects nowhere. */
static void test_strict_and_not(void **state) {
  struct fx *f = new_fixture(NULL, 0);
  struct dgw_mock_stats ms;
  char why[256];

  (void)state;
  assert_int_equal(dgw_client_load_plugin(f->client, "/nonexistent/a.so", NULL,
                                          why, sizeof(why)),
                   DGW_ERR_PLUGIN);
  load(f, REC_ALL, "{\"id\":\"W\"}");
  run_script(f);
  assert_int_equal(fx_count_lines(f, "rec W dispatch "), 6);
  fx_free(f);

  f = new_fixture(NULL, 0);
  assert_int_equal(dgw_options_set_plugins_strict(f->opt, 1), DGW_OK);
  dgw_client_free(f->client);
  f->client = dgw_client_new(f->base, f->opt, f->cb, f, NULL);
  assert_non_null(f->client);
  load(f, REC_ALL, "{\"id\":\"W\"}");
  assert_int_equal(
      dgw_client_load_plugin(f->client, NOSYM, NULL, why, sizeof(why)),
      DGW_ERR_PLUGIN);
  assert_int_equal(dgw_client_start(f->client), DGW_ERR_PLUGIN);
  assert_true(fx_find_line(f, 0, "not starting: 1 plugin(s) refused") >= 0);
  run_for(f->base, 100);
  dgw_mock_get_stats(f->mock, &ms);
  assert_int_equal(ms.connections, 0);
  assert_int_equal(dgw_gateway_state(dgw_client_gateway(f->client, 0)),
                   DGW_STATE_IDLE);
  fx_free(f);

  /* Strict with every plugin good starts as usual. */
  f = new_fixture(NULL, 0);
  assert_int_equal(dgw_options_set_plugins_strict(f->opt, 1), DGW_OK);
  dgw_client_free(f->client);
  f->client = dgw_client_new(f->base, f->opt, f->cb, f, NULL);
  load(f, REC_ALL, "{\"id\":\"W\"}");
  run_script(f);
  assert_int_equal(fx_count_lines(f, "rec W dispatch "), 6);
  fx_free(f);
  assert_int_equal(dgw_options_set_plugins_strict(NULL, 1),
                   DGW_ERR_INVALID_ARGUMENT);
}

/* Names are looked up as NAME.so in $DGW_PLUGIN_PATH, then in the
 * installed directory; a path is used as is. */
static void touch(const char *dir, const char *file) {
  char path[512];
  FILE *fp;

  snprintf(path, sizeof(path), "%s/%s", dir, file);
  fp = fopen(path, "w");
  assert_non_null(fp);
  fclose(fp);
}

static void test_search_path(void **state) {
  char d1[] = "/tmp/dgw-test-path1-XXXXXX";
  char d2[] = "/tmp/dgw-test-path2-XXXXXX";
  char sp[128];
  char out[512];
  char expect[512];
  char why[512];
  struct fx *f;

  (void)state;
  assert_non_null(mkdtemp(d1));
  assert_non_null(mkdtemp(d2));
  touch(d1, "p.so");
  touch(d2, "p.so");
  touch(d2, "q.so");

  /* The search path comes first, in its order; empty entries skipped. */
  snprintf(sp, sizeof(sp), "%s:%s", d1, d2);
  assert_int_equal(plugins_resolve("p", sp, d2, out, sizeof(out), why, 512),
                   DGW_OK);
  snprintf(expect, sizeof(expect), "%s/p.so", d1);
  assert_string_equal(out, expect);
  snprintf(sp, sizeof(sp), "::/nonexistent:%s:", d2);
  assert_int_equal(plugins_resolve("p", sp, d1, out, sizeof(out), why, 512),
                   DGW_OK);
  snprintf(expect, sizeof(expect), "%s/p.so", d2);
  assert_string_equal(out, expect);
  /* "NAME.so" is not doubled; the install dir is the fallback. */
  assert_int_equal(
      plugins_resolve("q.so", "/nonexistent", d2, out, sizeof(out), why, 512),
      DGW_OK);
  snprintf(expect, sizeof(expect), "%s/q.so", d2);
  assert_string_equal(out, expect);
  assert_int_equal(plugins_resolve("q", NULL, d2, out, sizeof(out), why, 512),
                   DGW_OK);
  assert_string_equal(out, expect);
  /* Not found: says where it looked. */
  assert_int_equal(plugins_resolve("q", d1, NULL, out, sizeof(out), why, 512),
                   DGW_ERR_PLUGIN);
  assert_non_null(strstr(why, "file missing"));
  assert_non_null(strstr(why, "DGW_PLUGIN_PATH"));
  assert_non_null(strstr(why, d1));
  /* A path (with '/') is not searched. */
  assert_int_equal(
      plugins_resolve("./p.so", d1, d1, out, sizeof(out), why, 512),
      DGW_ERR_PLUGIN);
  assert_int_equal(plugins_resolve("", d1, d1, out, sizeof(out), why, 512),
                   DGW_ERR_INVALID_ARGUMENT);

  /* And through the client, from the environment. */
  f = new_fixture(NULL, 0);
  snprintf(sp, sizeof(sp), "%s:%s", d1, TEST_PLUGIN_DIR);
  setenv(DGW_PLUGIN_PATH_ENV, sp, 1);
  load(f, "rec_all", "{\"id\":\"X\"}");
  load(f, "rec_named.so", "{\"id\":\"Y\"}");
  unsetenv(DGW_PLUGIN_PATH_ENV);
  run_script(f);
  assert_int_equal(fx_count_lines(f, "rec X dispatch "), 6);
  assert_int_equal(fx_count_lines(f, "rec Y dispatch "), 3);
  fx_free(f);

  snprintf(out, sizeof(out), "%s/p.so", d1);
  unlink(out);
  snprintf(out, sizeof(out), "%s/p.so", d2);
  unlink(out);
  snprintf(out, sizeof(out), "%s/q.so", d2);
  unlink(out);
  rmdir(d1);
  rmdir(d2);
}

/* ------------------------------------------------------- host API */

/* A plugin sends a gateway command from its handler: the gateway gets
 * it (op 3, a presence update) on the shard the event came from. */
static int two_sent(struct fx *f) {
  int n = 0;

  for (int i = 0; i < f->nsent; i++)
    n += f->sent_ops[i] == DGW_OP_PRESENCE_UPDATE;
  return n >= 2;
}

static void test_plugin_sends_command(void **state) {
  struct fx *f = *state;

  load(f, REC_NAMED,
       "{\"id\":\"A\",\"send_on\":\"MESSAGE_CREATE\",\"send\":\"{\\\"op\\\":3,"
       "\\\"d\\\":{\\\"since\\\":null,\\\"activities\\\":[],\\\"status\\\":"
       "\\\"idle\\\",\\\"afk\\\":false}}\"}");
  load(f, REC_ALL,
       "{\"id\":\"B\",\"send_on\":\"TYPING_START\",\"send\":\"not json\"}");
  run_script(f);
  assert_true(fx_wait_for(f, two_sent, 3));
  assert_int_equal(fx_count_lines(f, "rec A sent 0"), 2);
  assert_true(fx_find_line(f, 0, "rec B sent -302") >= 0); /* DGW_ERR_JSON */
  assert_int_equal(f->sent_ops[0], DGW_OP_IDENTIFY);
}

/* A plugin uses a typed command from the host table: update_presence is
 * checked like the public call (a bad status is refused with a reason)
 * and otherwise goes out under the rate limit. */
static void test_plugin_typed_command(void **state) {
  struct fx *f = *state;

  load(f, REC_NAMED,
       "{\"id\":\"A\",\"presence_on\":\"MESSAGE_CREATE\","
       "\"presence_status\":\"idle\"}");
  load(f, REC_ALL,
       "{\"id\":\"B\",\"presence_on\":\"TYPING_START\","
       "\"presence_status\":\"sleepy\"}");
  run_script(f);
  assert_true(fx_wait_for(f, two_sent, 3));
  assert_int_equal(fx_count_lines(f, "rec A presence 0 "), 2);
  assert_true(fx_find_line(f, 0, "rec B presence -1 ") >= 0); /* refused */
}

/* A plugin stops the client from its handler: the event in hand reaches
 * the handlers after it, nothing later reaches anyone, and the shard
 * closes with 1000. */
static void test_plugin_stops_client(void **state) {
  struct fx *f = *state;
  static const char *const want[] = {
      "rec app dispatch READY 1",
      "rec app dispatch GUILD_CREATE 2",
      "rec B dispatch GUILD_CREATE 2",
      "rec app dispatch MESSAGE_CREATE 3",
      "rec A dispatch MESSAGE_CREATE 3",
      "rec B dispatch MESSAGE_CREATE 3",
      NULL,
  };

  load(f, REC_NAMED, "{\"id\":\"A\",\"stop_on\":\"MESSAGE_CREATE\"}");
  load(f, REC_SUB,
       "{\"id\":\"B\",\"subscribe\":[\"GUILD_CREATE\","
       "\"MESSAGE_CREATE\",\"TYPING_START\"]}");
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_closed, 5));
  run_for(f->base, 100);
  expect_dispatches(f, want);
  assert_true(fx_find_line(f, 0, "plugin rec-named: stops the client") >= 0);
  assert_true(f->ncloses >= 1);
  assert_int_equal(f->close_codes[0], 1000);
}

/* fini runs in reverse load order when the client is freed. */
static void test_fini_reverse_order(void **state) {
  struct fx *f = new_fixture(NULL, 0);
  const char *fini[8];

  (void)state;
  load(f, REC_NAMED, "{\"id\":\"A\"}");
  load(f, REC_ALL, "{\"id\":\"B\"}");
  load(f, REC_SUB, "{\"id\":\"C\"}");
  run_script(f);
  dgw_client_free(f->client);
  f->client = NULL;
  assert_int_equal(records(f, " fini", fini, 8), 3);
  assert_string_equal(fini[0], "rec C fini");
  assert_string_equal(fini[1], "rec B fini");
  assert_string_equal(fini[2], "rec A fini");
  fx_free(f);

  /* A client freed without ever starting unloads its plugins too. */
  f = new_fixture(NULL, 0);
  load(f, REC_SUB, "{\"id\":\"D\"}");
  dgw_client_free(f->client);
  f->client = NULL;
  assert_int_equal(fx_count_lines(f, "rec D fini"), 1);
  fx_free(f);
}

/* The lifecycle hook: ready, then a dropped connection and its resume,
 * then a fatal close code. */
static void test_lifecycle_hook(void **state) {
  struct fx *f = *state;
  const char *life[8];
  int n;

  load(f, REC_SUB, "{\"id\":\"L\"}");
  fx_ready_resume_fatal(f);
  n = records(f, " lifecycle ", life, 8);
  assert_int_equal(n, 5);
  assert_string_equal(life[0], "rec L lifecycle ready 0");
  assert_string_equal(life[1], "rec L lifecycle disconnected 0");
  assert_string_equal(life[2], "rec L lifecycle resumed 0");
  assert_string_equal(life[3], "rec L lifecycle disconnected 4004");
  assert_string_equal(life[4], "rec L lifecycle fatal 4004");
}

/* Timers on the client's loop: a one-shot fires once; a repeating one
 * fires until it removes itself from its own callback; one still pending
 * is removed when the plugin is unloaded. */
static void test_plugin_timers(void **state) {
  struct fx *f = *state;

  load(f, REC_SUB, "{\"id\":\"O\",\"timer_ms\":5}");
  load(f, REC_SUB, "{\"id\":\"R\",\"timer_ms\":5,\"timer_repeat\":1}");
  load(f, REC_SUB, "{\"id\":\"P\",\"timer_ms\":600000,\"timer_repeat\":1}");
  run_for(f->base, 150);
  assert_int_equal(fx_count_lines(f, "rec O tick "), 1);
  assert_int_equal(fx_count_lines(f, "rec R tick "), 3);
  assert_true(fx_find_line(f, 0, "rec R tick 3") >= 0);
  assert_int_equal(fx_count_lines(f, "rec P tick "), 0);
}

/* ------------------------------------------ in-process handlers */

static void test_in_process_handlers(void **state) {
  struct fx *f = *state;
  char name[200];
  char why[1024];

  memset(name, 'X', sizeof(name));
  name[128] = '\0';
  assert_int_equal(dgw_client_on_event(f->client, "MESSAGE_CREATE", NULL, f),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_client_on_event(f->client, "", handler_h, f),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_client_on_event(f->client, name, handler_h, f),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_client_on_event(NULL, "READY", handler_h, f),
                   DGW_ERR_INVALID_ARGUMENT);
  name[127] = '\0'; /* 127 bytes is the longest name */
  assert_int_equal(dgw_client_on_event(f->client, name, handler_i, f), DGW_OK);
  assert_int_equal(
      dgw_client_on_event(f->client, "MESSAGE_CREATE", handler_h, f), DGW_OK);
  assert_int_equal(dgw_client_on_event(f->client, "READY", handler_h, f),
                   DGW_OK);
  run_script(f);
  assert_int_equal(fx_count_lines(f, "rec H dispatch "), 3);
  assert_int_equal(fx_count_lines(f, "rec I dispatch "), 0);
  /* Too late for both kinds. */
  assert_int_equal(dgw_client_on_event(f->client, "*", handler_h, f),
                   DGW_ERR_STATE);
  assert_int_equal(
      dgw_client_load_plugin(f->client, REC_ALL, NULL, why, sizeof(why)),
      DGW_ERR_STATE);
  assert_non_null(strstr(why, "before dgw_client_start()"));
  assert_int_equal(dgw_client_load_plugin(f->client, NULL, NULL, NULL, 0),
                   DGW_ERR_INVALID_ARGUMENT);
}

/* A handler frees the client: the handlers after it are not called for
 * that event, and the plugins' fini still runs. */
static void test_free_client_in_handler(void **state) {
  struct fx *f = *state;

  f->free_on_seq = 3;
  assert_int_equal(dgw_client_on_event(f->client, "*", handler_h, f), DGW_OK);
  load(f, REC_ALL, "{\"id\":\"B\"}");
  fx_start(f);
  assert_true(fx_wait_for(f, fx_client_gone, 5));
  run_for(f->base, 50);
  assert_int_equal(fx_count_lines(f, "rec H dispatch "), 3);
  assert_int_equal(fx_count_lines(f, "rec B dispatch "), 2);
  assert_int_equal(fx_count_lines(f, "rec B fini"), 1);
}

/* The routing table with many names, probed directly (no network): each
 * name gets its own handler and the "*" ones, in order; other names get
 * only the "*" ones; with no "*" handler they get nothing. */
struct calls {
  int order[8];
  int n;
};

struct tagged {
  struct calls *calls;
  int tag;
};

static void tag_handler(struct dgw_gateway *gw, const struct dgw_event *ev,
                        void *ud) {
  struct tagged *t = ud;

  (void)gw;
  (void)ev;
  if (t->calls->n < 8)
    t->calls->order[t->calls->n++] = t->tag;
}

static void test_routing_table(void **state) {
  enum { NAMES = 300 };
  struct event_base *base = event_base_new();
  struct dgw_options *opt = dgw_options_new();
  struct calls calls;
  static struct tagged tags[NAMES + 2];
  char name[32];

  (void)state;
  for (int round = 0; round < 2; round++) {
    struct dgw_client *c;

    dgw_options_set_token(opt, "x");
    c = dgw_client_new(base, opt, NULL, NULL, NULL);
    assert_non_null(c);
    if (round == 0) {
      tags[NAMES] = (struct tagged){&calls, -1};
      assert_int_equal(dgw_client_on_event(c, "*", tag_handler, &tags[NAMES]),
                       DGW_OK);
    }
    for (int i = 0; i < NAMES; i++) {
      snprintf(name, sizeof(name), "EVENT_%d", i);
      tags[i] = (struct tagged){&calls, i};
      assert_int_equal(dgw_client_on_event(c, name, tag_handler, &tags[i]),
                       DGW_OK);
    }
    assert_int_equal(plugins_build_routes(c->plugins), DGW_OK);
    for (int i = 0; i < NAMES; i++) {
      const struct plugin_route *r;

      snprintf(name, sizeof(name), "EVENT_%d", i);
      r = plugins_route(c->plugins, name);
      assert_non_null(r);
      memset(&calls, 0, sizeof(calls));
      plugins_dispatch(c->plugins, r, NULL, NULL);
      if (round == 0) {
        assert_int_equal(calls.n, 2);
        assert_int_equal(calls.order[0], -1); /* registered first */
        assert_int_equal(calls.order[1], i);
      } else {
        assert_int_equal(calls.n, 1);
        assert_int_equal(calls.order[0], i);
      }
    }
    if (round == 0) {
      memset(&calls, 0, sizeof(calls));
      plugins_dispatch(c->plugins, plugins_route(c->plugins, "EVENT_300"), NULL,
                       NULL);
      assert_int_equal(calls.n, 1);
      assert_int_equal(calls.order[0], -1);
    } else {
      assert_null(plugins_route(c->plugins, "EVENT_300"));
      assert_null(plugins_route(c->plugins, ""));
    }
    dgw_client_free(c);
  }
  dgw_options_free(opt);
  event_base_free(base);
}

/* ------------------------------------------------- shipped plugins */

static char *read_file(const char *path) {
  FILE *fp = fopen(path, "r");
  char *buf = calloc(1, 65536);
  size_t n;

  assert_non_null(fp);
  n = fread(buf, 1, 65535, fp);
  buf[n] = '\0';
  fclose(fp);
  return buf;
}

/* log: the chosen events, one JSON line each, d exactly as sent; a
 * second instance with no filter writes everything, odd names and
 * multi-line d included. */
static void test_log_plugin(void **state) {
  struct fx *f = *state;
  char file1[] = "/tmp/dgw-test-log1-XXXXXX";
  char file2[] = "/tmp/dgw-test-log2-XXXXXX";
  char config[256];
  char *text;
  char *line;
  char *save = NULL;
  int n = 0;
  static const int64_t seqs[] = {3, 4, 5};
  static const char *const names[] = {"MESSAGE_CREATE", "TYPING_START",
                                      "MESSAGE_CREATE"};
  static const char *const ds[] = {"{\"m\":1}", "{\"t\":1}", "{\"m\":2}"};

  close(mkstemp(file1));
  close(mkstemp(file2));
  assert_int_equal(dgw_mock_add_dispatch(f->mock, "ODD\"NAME\\",
                                         "{\n  \"x\": [1, \"a\\nb\"]\n}"),
                   DGW_OK);
  snprintf(config, sizeof(config),
           "{\"path\":\"%s\",\"events\":[\"MESSAGE_CREATE\",\"TYPING_START\"]}",
           file1);
  load(f, LOG_PLUGIN, config);
  snprintf(config, sizeof(config), "{\"path\":\"%s\"}", file2);
  load(f, LOG_PLUGIN, config);
  run_script(f);
  run_for(f->base, 50);
  dgw_client_free(f->client); /* fini closes the files */
  f->client = NULL;

  text = read_file(file1);
  for (line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    struct json_object *o = json_tokener_parse(line);
    struct json_object *v;

    assert_non_null(o);
    assert_true(n < 3);
    assert_true(json_object_object_get_ex(o, "shard", &v));
    assert_int_equal(json_object_get_int(v), 0);
    assert_true(json_object_object_get_ex(o, "seq", &v));
    assert_int_equal(json_object_get_int64(v), seqs[n]);
    assert_true(json_object_object_get_ex(o, "t", &v));
    assert_string_equal(json_object_get_string(v), names[n]);
    assert_non_null(strstr(line, ds[n])); /* d as sent, not re-encoded */
    json_object_put(o);
    n++;
  }
  assert_int_equal(n, 3);
  free(text);
  /* The lines are a script dgw-mock can replay. */
  assert_int_equal(dgw_mock_load_script(f->mock, file1), DGW_OK);

  text = read_file(file2);
  n = 0;
  save = NULL;
  for (line = strtok_r(text, "\n", &save); line != NULL;
       line = strtok_r(NULL, "\n", &save)) {
    struct json_object *o = json_tokener_parse(line);
    struct json_object *v;

    assert_non_null(o);
    if (n == 6) {
      assert_true(json_object_object_get_ex(o, "t", &v));
      assert_string_equal(json_object_get_string(v), "ODD\"NAME\\");
      assert_true(json_object_object_get_ex(o, "d", &v));
      v = json_object_object_get(v, "x");
      assert_int_equal(json_object_array_length(v), 2);
      assert_string_equal(
          json_object_get_string(json_object_array_get_idx(v, 1)), "a\nb");
    }
    json_object_put(o);
    n++;
  }
  assert_int_equal(n, 7); /* READY, the five, the odd one */
  free(text);
  unlink(file1);
  unlink(file2);
}

/* log refuses a config it cannot follow (init fails, with a reason in the
 * log). */
static void test_log_plugin_bad_config(void **state) {
  static const char *const configs[] = {
      "[]",
      "{\"path\":5}",
      "{\"events\":\"MESSAGE_CREATE\"}",
      "{\"events\":[\"\"]}",
      "{\"path\":\"/nonexistent/dir/events.jsonl\"}",
  };

  (void)state;
  for (size_t i = 0; i < sizeof(configs) / sizeof(configs[0]); i++) {
    struct fx *f = new_fixture(NULL, 0);
    char why[512];

    assert_int_equal(dgw_client_load_plugin(f->client, LOG_PLUGIN, configs[i],
                                            why, sizeof(why)),
                     DGW_ERR_PLUGIN);
    assert_non_null(strstr(why, "init failed"));
    assert_true(fx_find_line(f, 0, "plugin log: ") >= 0);
    fx_free(f);
  }
}

/* stats: reports through the logger on its timer: counts per name,
 * resumes and reconnects, latency per shard. */
static int stats_complete(struct fx *f) {
  int latency = 0;

  for (int i = 0; i < f->nlines; i++)
    if (strstr(f->lines[i], "plugin stats: latency: shard 0 ") != NULL &&
        strstr(f->lines[i], " ms") != NULL)
      latency = 1;
  return latency && fx_find_line(f, 0, "MESSAGE_CREATE=2 ") >= 0 &&
         fx_find_line(f, 0, "resumes 1, reconnects 1") >= 0;
}

static void test_stats_plugin(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;
  char why[256];

  (void)state;
  mc.heartbeat_interval_ms = 50; /* the least the client accepts */
  f = new_fixture(&mc, 0);
  load(f, STATS_PLUGIN, "{\"interval_ms\":30}");
  run_script(f);
  dgw_mock_conn_drop(dgw_mock_last_conn(f->mock));
  assert_true(fx_wait_for(f, fx_is_resumed, 5));
  if (!fx_wait_for(f, stats_complete, 5)) {
    for (int i = 0; i < f->nlines; i++)
      if (strstr(f->lines[i], "plugin stats") != NULL)
        print_message("# %s\n", f->lines[i]);
    fail_msg("no complete report");
  }
  assert_true(fx_find_line(f, 0, "plugin stats: by name: ") >= 0);
  assert_true(fx_find_line(f, 0, "GUILD_CREATE=1") >= 0);
  assert_true(fx_find_line(f, 0, "/s), bytes in ") >= 0);
  fx_free(f);

  f = new_fixture(NULL, 0);
  assert_int_equal(dgw_client_load_plugin(f->client, STATS_PLUGIN,
                                          "{\"interval_ms\":1}", why,
                                          sizeof(why)),
                   DGW_ERR_PLUGIN);
  assert_true(fx_find_line(f, 0, "interval_ms") >= 0);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_plugin_receives_its_events,
                                      setup_plugin, fx_teardown),
      cmocka_unit_test_setup_teardown(test_plugin_wildcard, setup_plugin,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_plugin_subscribes_in_init,
                                      setup_plugin, fx_teardown),
      cmocka_unit_test_setup_teardown(test_plugin_info, setup_plugin,
                                      fx_teardown),
      cmocka_unit_test(test_handlers_in_load_order),
      cmocka_unit_test_setup_teardown(test_parse_once_per_event,
                                      setup_plugin_app, fx_teardown),
      cmocka_unit_test(test_no_parse_without_subscriber),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_strict_and_not),
      cmocka_unit_test(test_search_path),
      cmocka_unit_test_setup_teardown(test_plugin_sends_command, setup_plugin,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_plugin_typed_command, setup_plugin,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_plugin_stops_client,
                                      setup_plugin_app, fx_teardown),
      cmocka_unit_test(test_fini_reverse_order),
      cmocka_unit_test_setup_teardown(test_lifecycle_hook, setup_plugin,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_plugin_timers, setup_plugin,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_in_process_handlers, setup_plugin,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_free_client_in_handler, setup_plugin,
                                      fx_teardown),
      cmocka_unit_test(test_routing_table),
      cmocka_unit_test_setup_teardown(test_log_plugin, setup_plugin,
                                      fx_teardown),
      cmocka_unit_test(test_log_plugin_bad_config),
      cmocka_unit_test(test_stats_plugin),
  };
  ignore_sigpipe();
  unsetenv(DGW_PLUGIN_PATH_ENV);
  return cmocka_run_group_tests_name("plugin", tests, NULL, NULL);
}
