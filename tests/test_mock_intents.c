/*
 * Integration tests: the mock gateway sends each session only the
 * dispatches its IDENTIFY intents cover, empties what MESSAGE_CONTENT gates,
 * and closes 4014 for privileged intents the app has not enabled
 * (tools/mock/intents.c, protocol §10).
 *
 * Each test runs dgw clients ("bots") with different intents against one
 * in-process mock, pushes the same dispatch into each one's session with
 * dgw_mock_session_add_dispatch(), and looks at what each bot was handed.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include <dgw/dgw.h>

#include "fixture.h"

#define BOT_MAX_SEEN 64
#define BOT_USER_ID "1000000000000000001" /* the mock's bot user */
#define GUILD_ID "1200000000000000001"
#define CHANNEL_ID "1200000000000000011"

#define GUILDS (1u << 0)
#define GUILD_MEMBERS (1u << 1)
#define GUILD_PRESENCES (1u << 8)
#define GUILD_MESSAGES (1u << 9)
#define DIRECT_MESSAGES (1u << 12)
#define MESSAGE_CONTENT (1u << 15)

/* One client with its own intents, and what it was handed. */
struct bot {
  struct dgw_client *client;
  int ready, fatal;
  uint16_t fatal_code;
  char session[64];
  int64_t app_flags; /* READY's application.flags, -1 when absent */
  int n;
  char names[BOT_MAX_SEEN][40];
  int64_t seqs[BOT_MAX_SEEN];
  char *data[BOT_MAX_SEEN]; /* each d as text */
};

static void bot_ready(struct dgw_gateway *gw, void *ud) {
  struct bot *b = ud;

  snprintf(b->session, sizeof b->session, "%s", dgw_gateway_session_id(gw));
  b->ready = 1;
}

static void bot_fatal(struct dgw_gateway *gw, uint16_t code,
                      const char *meaning, void *ud) {
  struct bot *b = ud;

  (void)gw;
  (void)meaning;
  b->fatal = 1;
  b->fatal_code = code;
}

static void bot_dispatch(struct dgw_gateway *gw, const struct dgw_event *ev,
                         void *ud) {
  struct bot *b = ud;
  size_t len;
  const char *d = dgw_event_data(ev, &len);

  (void)gw;
  if (strcmp(dgw_event_name(ev), "READY") == 0) {
    json_object *root = json_tokener_parse(d), *app, *flags;
    b->app_flags = -1;
    if (json_object_object_get_ex(root, "application", &app) &&
        json_object_object_get_ex(app, "flags", &flags))
      b->app_flags = json_object_get_int64(flags);
    json_object_put(root);
  }
  if (b->n >= BOT_MAX_SEEN)
    return;
  snprintf(b->names[b->n], sizeof b->names[0], "%s", dgw_event_name(ev));
  b->seqs[b->n] = dgw_event_seq(ev);
  b->data[b->n] = strndup(d, len);
  b->n++;
}

/* Starts a bot with `intents` on f's mock. */
static void bot_start(struct fx *f, struct bot *b, uint64_t intents) {
  struct dgw_callbacks *cb = dgw_callbacks_new();
  int err = 0;

  memset(b, 0, sizeof *b);
  assert_non_null(cb);
  dgw_callbacks_set_on_ready(cb, bot_ready);
  dgw_callbacks_set_on_fatal(cb, bot_fatal);
  dgw_callbacks_set_on_dispatch(cb, bot_dispatch);
  assert_int_equal(dgw_options_set_intents(f->opt, intents), DGW_OK);
  b->client = dgw_client_new(f->base, f->opt, cb, b, &err);
  dgw_callbacks_free(cb);
  if (b->client == NULL)
    fail_msg("client: %s", dgw_strerror(err));
  assert_int_equal(dgw_client_start(b->client), DGW_OK);
}

static void bot_free(struct bot *b) {
  dgw_client_free(b->client);
  b->client = NULL;
  for (int i = 0; i < b->n; i++)
    free(b->data[i]);
  b->n = 0;
}

static int bot_is_ready(void *arg) {
  return ((struct bot *)arg)->ready;
}
static int bot_is_fatal(void *arg) {
  return ((struct bot *)arg)->fatal;
}

static void bot_wait_ready(struct fx *f, struct bot *b) {
  assert_true(loop_until(f->base, bot_is_ready, b, 10));
}

/* The index of the first event named `t` the bot saw, or -1. */
static int bot_find(const struct bot *b, const char *t) {
  for (int i = 0; i < b->n; i++)
    if (strcmp(b->names[i], t) == 0)
      return i;
  return -1;
}

struct wait_event {
  struct bot *b;
  const char *t;
};

static int bot_has(void *arg) {
  struct wait_event *w = arg;
  return bot_find(w->b, w->t) >= 0;
}

static void bot_wait_event(struct fx *f, struct bot *b, const char *t) {
  struct wait_event w = {b, t};
  if (!loop_until(f->base, bot_has, &w, 10))
    fail_msg("the bot never got %s", t);
}

/* Pushes dispatch `t` with `d` into the bot's session. */
static void push(struct fx *f, const struct bot *b, const char *t,
                 const char *d) {
  assert_int_equal(dgw_mock_session_add_dispatch(f->mock, b->session, t, d),
                   DGW_OK);
}

/* The value of d's string `key` in the bot's event `i`; "" when absent. */
static void field(const struct bot *b, int i, const char *key, char *out,
                  size_t size) {
  json_object *d = json_tokener_parse(b->data[i]), *v;

  out[0] = '\0';
  if (json_object_object_get_ex(d, key, &v))
    snprintf(out, size, "%s",
             json_object_is_type(v, json_type_string)
                 ? json_object_get_string(v)
                 : json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
  json_object_put(d);
}

static const char guild_msg[] =
    "{\"id\":\"5000000000000000001\",\"guild_id\":\"" GUILD_ID
    "\",\"channel_id\":\"" CHANNEL_ID "\",\"content\":\"secret plans\","
    "\"author\":{\"id\":\"1300000000000000001\",\"username\":\"alice\"},"
    "\"mentions\":[],\"embeds\":[{\"title\":\"e\"}],"
    "\"attachments\":[{\"id\":\"1\",\"filename\":\"a.txt\"}],"
    "\"components\":[{\"type\":1,\"components\":[]}],"
    "\"poll\":{\"question\":{\"text\":\"q\"}}}";

static const char dm_msg[] =
    "{\"id\":\"5000000000000000002\",\"channel_id\":\"1400000000000000001\","
    "\"content\":\"a private word\",\"author\":{\"id\":\"1300000000000000001\","
    "\"username\":\"alice\"},\"mentions\":[],\"embeds\":[{\"title\":\"e\"}]}";

/*
 * Input: bot A identifies with GUILDS only, bot B with GUILDS |
 * GUILD_MESSAGES; both sessions get a guild MESSAGE_CREATE, then a
 * CHANNEL_CREATE.  Result: B gets both (seqs READY+1, READY+2); A gets only
 * the CHANNEL_CREATE, with seq READY+1 (the message took no seq), and the
 * mock's seq for A's session is READY+1 too.
 */
static void test_guild_message_needs_guild_messages(void **state) {
  struct fx *f = fx_new(NULL);
  struct bot a, b;
  static const char channel[] =
      "{\"id\":\"1200000000000000013\",\"guild_id\":\"" GUILD_ID
      "\",\"type\":0,\"name\":\"new\"}";
  int i;

  (void)state;
  bot_start(f, &a, GUILDS);
  bot_wait_ready(f, &a);
  bot_start(f, &b, GUILDS | GUILD_MESSAGES);
  bot_wait_ready(f, &b);
  assert_int_equal(a.seqs[0], 1); /* READY */
  assert_int_equal(b.seqs[0], 1);

  push(f, &a, "MESSAGE_CREATE", guild_msg);
  push(f, &b, "MESSAGE_CREATE", guild_msg);
  push(f, &a, "CHANNEL_CREATE", channel);
  push(f, &b, "CHANNEL_CREATE", channel);
  bot_wait_event(f, &a, "CHANNEL_CREATE");
  bot_wait_event(f, &b, "CHANNEL_CREATE");

  assert_int_equal(bot_find(&a, "MESSAGE_CREATE"), -1);
  i = bot_find(&a, "CHANNEL_CREATE");
  assert_int_equal(a.seqs[i], 2);
  assert_int_equal(dgw_mock_session_seq(f->mock, a.session), 2);

  i = bot_find(&b, "MESSAGE_CREATE");
  assert_true(i >= 0);
  assert_int_equal(b.seqs[i], 2);
  assert_int_equal(b.seqs[bot_find(&b, "CHANNEL_CREATE")], 3);
  bot_free(&a);
  bot_free(&b);
  fx_free(f);
}

/*
 * Input: a MESSAGE_CREATE without guild_id (a DM), then an event name the
 * mock does not know ("DGW_TEST_MARKER"), into the sessions of bot A
 * (GUILDS | GUILD_MESSAGES) and bot B (DIRECT_MESSAGES).  Result: only B
 * gets the DM; both get the marker, A's with seq 2, B's with seq 3.
 */
static void test_dm_needs_direct_messages(void **state) {
  struct fx *f = fx_new(NULL);
  struct bot a, b;
  int i;

  (void)state;
  bot_start(f, &a, GUILDS | GUILD_MESSAGES);
  bot_wait_ready(f, &a);
  bot_start(f, &b, DIRECT_MESSAGES);
  bot_wait_ready(f, &b);

  push(f, &a, "MESSAGE_CREATE", dm_msg);
  push(f, &b, "MESSAGE_CREATE", dm_msg);
  push(f, &a, "DGW_TEST_MARKER", "{}");
  push(f, &b, "DGW_TEST_MARKER", "{}");
  bot_wait_event(f, &a, "DGW_TEST_MARKER");
  bot_wait_event(f, &b, "DGW_TEST_MARKER");

  assert_int_equal(bot_find(&a, "MESSAGE_CREATE"), -1);
  assert_int_equal(a.seqs[bot_find(&a, "DGW_TEST_MARKER")], 2);
  i = bot_find(&b, "MESSAGE_CREATE");
  assert_true(i >= 0);
  assert_int_equal(b.seqs[i], 2);
  assert_int_equal(b.seqs[bot_find(&b, "DGW_TEST_MARKER")], 3);
  bot_free(&a);
  bot_free(&b);
  fx_free(f);
}

/*
 * Input: a bot with no intents at all (0) gets an unknown event name, an
 * INTERACTION_CREATE and a guild MESSAGE_CREATE pushed.  Result: it gets
 * the first two (seqs 2 and 3), never the message: unknown and "always
 * sent" events pass every filter.
 */
static void test_unknown_and_always_events_pass(void **state) {
  struct fx *f = fx_new(NULL);
  struct bot a;

  (void)state;
  bot_start(f, &a, 0);
  bot_wait_ready(f, &a);
  push(f, &a, "MESSAGE_CREATE", guild_msg);
  push(f, &a, "SOAK_CUSTOM_EVENT", "{\"n\":1}");
  push(f, &a, "INTERACTION_CREATE",
       "{\"id\":\"6000000000000000001\",\"type\":2,\"token\":\"x\","
       "\"guild_id\":\"" GUILD_ID "\"}");
  bot_wait_event(f, &a, "INTERACTION_CREATE");
  assert_int_equal(a.seqs[bot_find(&a, "SOAK_CUSTOM_EVENT")], 2);
  assert_int_equal(a.seqs[bot_find(&a, "INTERACTION_CREATE")], 3);
  assert_int_equal(bot_find(&a, "MESSAGE_CREATE"), -1);
  bot_free(&a);
  fx_free(f);
}

/*
 * Input: a bot with GUILDS only (no GUILD_MEMBERS) gets, in order: a
 * GUILD_MEMBER_UPDATE of another user, one of its own member, a
 * THREAD_MEMBERS_UPDATE adding another user, one adding the bot, and a
 * marker.  Result: only its own member update (seq 2), the thread update
 * that adds it (seq 3) and the marker (seq 4); the others never come.
 */
static void test_own_member_and_thread_rules(void **state) {
  struct fx *f = fx_new(NULL);
  struct bot a;
  int i;

  (void)state;
  bot_start(f, &a, GUILDS);
  bot_wait_ready(f, &a);
  push(f, &a, "GUILD_MEMBER_UPDATE",
       "{\"guild_id\":\"" GUILD_ID "\",\"user\":{\"id\":"
       "\"1300000000000000001\"},\"roles\":[]}");
  push(f, &a, "GUILD_MEMBER_UPDATE",
       "{\"guild_id\":\"" GUILD_ID "\",\"user\":{\"id\":\"" BOT_USER_ID
       "\"},\"roles\":[\"own\"]}");
  push(f, &a, "THREAD_MEMBERS_UPDATE",
       "{\"id\":\"7\",\"guild_id\":\"" GUILD_ID "\",\"member_count\":2,"
       "\"added_members\":[{\"id\":\"7\",\"user_id\":"
       "\"1300000000000000001\"}]}");
  push(f, &a, "THREAD_MEMBERS_UPDATE",
       "{\"id\":\"7\",\"guild_id\":\"" GUILD_ID "\",\"member_count\":3,"
       "\"added_members\":[{\"id\":\"7\",\"user_id\":\"" BOT_USER_ID "\"}]}");
  push(f, &a, "DGW_TEST_MARKER", "{}");
  bot_wait_event(f, &a, "DGW_TEST_MARKER");
  assert_int_equal(a.n, 4); /* READY and the three */
  i = bot_find(&a, "GUILD_MEMBER_UPDATE");
  assert_int_equal(a.seqs[i], 2);
  assert_non_null(strstr(a.data[i], "\"own\""));
  i = bot_find(&a, "THREAD_MEMBERS_UPDATE");
  assert_int_equal(a.seqs[i], 3);
  assert_non_null(strstr(a.data[i], BOT_USER_ID));
  assert_int_equal(a.seqs[bot_find(&a, "DGW_TEST_MARKER")], 4);
  bot_free(&a);
  fx_free(f);
}

/*
 * Input: bot A (GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES, no
 * MESSAGE_CONTENT) and bot B (the same plus MESSAGE_CONTENT) each get: a
 * guild message with content, embeds, attachments, components and a poll;
 * a guild message that mentions the bot; one the bot wrote; a DM; and a
 * MESSAGE_UPDATE of the first.  Result: A's first message and its update
 * have content "" and [] for the three arrays, and no poll; A's mention,
 * own message and DM keep their content; B keeps everything.
 */
static void test_message_content_stripped_without_intent(void **state) {
  struct fx *f = fx_new(NULL);
  struct bot a, b;
  struct bot *bots[2] = {&a, &b};
  static const char mention_msg[] =
      "{\"id\":\"5000000000000000003\",\"guild_id\":\"" GUILD_ID
      "\",\"channel_id\":\"" CHANNEL_ID "\",\"content\":\"<@" BOT_USER_ID
      "> hello\",\"author\":{\"id\":\"1300000000000000001\"},"
      "\"mentions\":[{\"id\":\"" BOT_USER_ID "\",\"username\":\"dgw-mock\"}],"
      "\"embeds\":[{\"title\":\"e\"}]}";
  static const char own_msg[] =
      "{\"id\":\"5000000000000000004\",\"guild_id\":\"" GUILD_ID
      "\",\"channel_id\":\"" CHANNEL_ID "\",\"content\":\"mine\","
      "\"author\":{\"id\":\"" BOT_USER_ID "\"},\"mentions\":[]}";
  char v[256];
  int i;

  (void)state;
  bot_start(f, &a, GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES);
  bot_wait_ready(f, &a);
  bot_start(f, &b, GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES | MESSAGE_CONTENT);
  bot_wait_ready(f, &b);
  for (i = 0; i < 2; i++) {
    push(f, bots[i], "MESSAGE_CREATE", guild_msg);
    push(f, bots[i], "MESSAGE_CREATE", mention_msg);
    push(f, bots[i], "MESSAGE_CREATE", own_msg);
    push(f, bots[i], "MESSAGE_CREATE", dm_msg);
    push(f, bots[i], "MESSAGE_UPDATE", guild_msg);
    bot_wait_event(f, bots[i], "MESSAGE_UPDATE");
    assert_int_equal(bots[i]->n, 6); /* READY and the five */
  }

  /* A: the plain guild message, then its update, emptied. */
  for (i = 1; i <= 5; i += 4) {
    field(&a, i, "content", v, sizeof v);
    assert_string_equal(v, "");
    field(&a, i, "embeds", v, sizeof v);
    assert_string_equal(v, "[]");
    field(&a, i, "attachments", v, sizeof v);
    assert_string_equal(v, "[]");
    field(&a, i, "components", v, sizeof v);
    assert_string_equal(v, "[]");
    field(&a, i, "poll", v, sizeof v);
    assert_string_equal(v, "");
    field(&a, i, "id", v, sizeof v); /* the rest is untouched */
    assert_string_equal(v, "5000000000000000001");
  }
  field(&a, 2, "content", v, sizeof v);
  assert_string_equal(v, "<@" BOT_USER_ID "> hello");
  field(&a, 2, "embeds", v, sizeof v);
  assert_string_equal(v, "[{\"title\":\"e\"}]");
  field(&a, 3, "content", v, sizeof v);
  assert_string_equal(v, "mine");
  field(&a, 4, "content", v, sizeof v);
  assert_string_equal(v, "a private word");

  /* B: everything as pushed. */
  for (i = 1; i <= 5; i += 4) {
    field(&b, i, "content", v, sizeof v);
    assert_string_equal(v, "secret plans");
    field(&b, i, "embeds", v, sizeof v);
    assert_string_equal(v, "[{\"title\":\"e\"}]");
    field(&b, i, "poll", v, sizeof v);
    assert_string_equal(v, "{\"question\":{\"text\":\"q\"}}");
  }
  bot_free(&a);
  bot_free(&b);
  fx_free(f);
}

/*
 * Input: a mock whose app has MESSAGE_CONTENT off (cfg.privileged_denied);
 * bot A asks for GUILDS | MESSAGE_CONTENT, bot B for GUILDS |
 * GUILD_MEMBERS | GUILD_PRESENCES.  Result: A stops on close 4014; B gets
 * READY, whose application.flags has GATEWAY_PRESENCE (1<<12) and
 * GATEWAY_GUILD_MEMBERS (1<<14) but not GATEWAY_MESSAGE_CONTENT (1<<18).
 */
static void test_disallowed_privileged_intent_4014(void **state) {
  struct dgw_mock_config mc = {0};
  struct fx *f;
  struct bot a, b;

  (void)state;
  mc.privileged_denied = MESSAGE_CONTENT;
  f = fx_new(&mc);
  bot_start(f, &a, GUILDS | MESSAGE_CONTENT);
  assert_true(loop_until(f->base, bot_is_fatal, &a, 10));
  assert_int_equal(a.fatal_code, 4014);
  assert_false(a.ready);

  bot_start(f, &b, GUILDS | GUILD_MEMBERS | GUILD_PRESENCES);
  bot_wait_ready(f, &b);
  assert_false(b.fatal);
  assert_int_equal(b.app_flags, (1 << 12) | (1 << 14));
  bot_free(&a);
  bot_free(&b);
  fx_free(f);
}

/*
 * Input: the default mock config; a bot asks for every privileged intent
 * (GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT) with GUILDS.  Result:
 * READY, no 4014, and application.flags has all three GATEWAY_* flags.
 */
static void test_default_allows_privileged(void **state) {
  struct fx *f = fx_new(NULL);
  struct bot a;

  (void)state;
  bot_start(f, &a, GUILDS | GUILD_MEMBERS | GUILD_PRESENCES | MESSAGE_CONTENT);
  bot_wait_ready(f, &a);
  assert_false(a.fatal);
  assert_int_equal(a.app_flags, (1 << 12) | (1 << 14) | (1 << 18));
  bot_free(&a);
  fx_free(f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_guild_message_needs_guild_messages),
      cmocka_unit_test(test_dm_needs_direct_messages),
      cmocka_unit_test(test_unknown_and_always_events_pass),
      cmocka_unit_test(test_own_member_and_thread_rules),
      cmocka_unit_test(test_message_content_stripped_without_intent),
      cmocka_unit_test(test_disallowed_privileged_intent_4014),
      cmocka_unit_test(test_default_allows_privileged),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
