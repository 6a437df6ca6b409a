/*
 * Tests for lib/commands.c: snowflakes, shard routing, nonces, and every
 * command encoder, both the exact payload of a typical call (compared as
 * parsed JSON) and each argument it refuses, with the error and the
 * sentence that says why.
 */
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

#include "commands.h"
#include "payload.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define TWENTY_ONE_DIGITS "123456789012345678901"
#define TWO_TO_THE_64 "18446744073709551616"

/* Parses `expected` and the encoder's output and compares them as JSON
 * values, so key order and spacing do not matter; the output must also be
 * compact (no whitespace outside strings), as Discord's 4096 bytes count. */
static void assert_payload(const char *name, const char *out, size_t out_len,
                           const char *expected) {
  struct json_object *got, *want;

  if (out == NULL)
    fail_msg("case \"%s\": no output", name);
  assert_int_equal(strlen(out), out_len);
  got = json_tokener_parse(out);
  want = json_tokener_parse(expected);
  assert_non_null(want);
  if (got == NULL || !json_object_equal(got, want))
    fail_msg("case \"%s\":\n  got      %s\n  expected %s", name, out, expected);
  if (strchr(out, '\n') != NULL || strstr(out, "\": ") != NULL)
    fail_msg("case \"%s\": output is not compact: %s", name, out);
  json_object_put(got);
  json_object_put(want);
}

/* ---------------------------------------------------------------- */
/* Snowflakes and shard routing                                      */
/* ---------------------------------------------------------------- */

static const struct {
  const char *name;
  const char *text;
  int ok;
  uint64_t value;
} snowflakes[] = {
    {"one digit", "1", 1, 1},
    {"a guild id", "81384788765712384", 1, 81384788765712384ull},
    {"19 digits", "1234567890123456789", 1, 1234567890123456789ull},
    {"UINT64_MAX", "18446744073709551615", 1, UINT64_MAX},
    {"NULL", NULL, 0, 0},
    {"empty", "", 0, 0},
    {"letters", "abc", 0, 0},
    {"digits then letters", "12a", 0, 0},
    {"negative", "-1", 0, 0},
    {"plus sign", "+1", 0, 0},
    {"leading space", " 1", 0, 0},
    {"trailing space", "1 ", 0, 0},
    {"zero", "0", 0, 0},
    {"leading zero", "0123", 0, 0},
    {"21 digits", TWENTY_ONE_DIGITS, 0, 0},
    {"2^64", TWO_TO_THE_64, 0, 0},
    {"20 nines", "99999999999999999999", 0, 0},
    {"decimal point", "1.5", 0, 0},
};

static void test_snowflake_parse(void **state) {
  size_t i;

  (void)state;
  for (i = 0; i < ARRAY_LEN(snowflakes); i++) {
    uint64_t value = 777;
    int rc = dgw_snowflake_parse(snowflakes[i].text, &value);

    if (snowflakes[i].ok && (rc != DGW_OK || value != snowflakes[i].value))
      fail_msg("case \"%s\": rc %d, value %llu", snowflakes[i].name, rc,
               (unsigned long long)value);
    if (!snowflakes[i].ok && (rc != DGW_ERR_INVALID_ARGUMENT || value != 777))
      fail_msg("case \"%s\": accepted (rc %d) or touched the output",
               snowflakes[i].name, rc);
  }
  assert_int_equal(dgw_snowflake_parse("5", NULL), DGW_OK);
}

static const struct {
  const char *name;
  uint64_t guild_id;
  uint32_t shard_count;
  uint32_t expect;
} shard_routes[] = {
    {"docs guild, 16 shards", 81384788765712384ull, 16, 2},
    {"docs guild, 1 shard", 81384788765712384ull, 1, 0},
    {"voice example guild, 16 shards", 41771983423143937ull, 16, 6},
    {"soundboard example guild, 16 shards", 613425648685547541ull, 16, 8},
    {"soundboard example guild, 7 shards", 613425648685547541ull, 7, 5},
    {"UINT64_MAX, 1000 shards", UINT64_MAX, 1000, 103},
    {"an id below 2^22 is shard 0", 4194303, 16, 0},
    {"no shards", 81384788765712384ull, 0, 0},
};

static void test_shard_for_guild(void **state) {
  size_t i;

  (void)state;
  for (i = 0; i < ARRAY_LEN(shard_routes); i++) {
    uint32_t got = dgw_shard_for_guild(shard_routes[i].guild_id,
                                       shard_routes[i].shard_count);

    if (got != shard_routes[i].expect)
      fail_msg("case \"%s\": shard %u, expected %u", shard_routes[i].name, got,
               shard_routes[i].expect);
  }
}

/* ---------------------------------------------------------------- */
/* Nonces                                                            */
/* ---------------------------------------------------------------- */

struct fixed_random {
  unsigned char bytes[8];
  int calls;
  int fail;
};

static int fixed_rng(void *buf, size_t len, void *user_data) {
  struct fixed_random *r = user_data;

  r->calls++;
  if (r->fail)
    return -1;
  assert_int_equal(len, sizeof(r->bytes));
  memcpy(buf, r->bytes, len);
  return 0;
}

static void assert_hex_nonce(const char *nonce) {
  size_t i;

  assert_int_equal(strlen(nonce), DGW_NONCE_GENERATED_LEN);
  for (i = 0; i < DGW_NONCE_GENERATED_LEN; i++) {
    if (strchr("0123456789abcdef", nonce[i]) == NULL)
      fail_msg("nonce \"%s\" is not lower-case hex", nonce);
  }
}

static void test_nonce_generate(void **state) {
  struct fixed_random r = {
      {0x01, 0x23, 0x45, 0x67, 0x89, 0xab, 0xcd, 0xef}, 0, 0};
  char a[DGW_NONCE_GENERATED_LEN + 1], b[DGW_NONCE_GENERATED_LEN + 1];

  (void)state;
  assert_int_equal(dgw_nonce_generate(fixed_rng, &r, a), DGW_OK);
  assert_string_equal(a, "0123456789abcdef");
  assert_int_equal(r.calls, 1);
  /* OpenSSL's source: the format, and two in a row differ. */
  assert_int_equal(dgw_nonce_generate(NULL, NULL, a), DGW_OK);
  assert_int_equal(dgw_nonce_generate(NULL, NULL, b), DGW_OK);
  assert_hex_nonce(a);
  assert_hex_nonce(b);
  assert_string_not_equal(a, b);
  /* A failing source. */
  r.fail = 1;
  assert_int_equal(dgw_nonce_generate(fixed_rng, &r, a), DGW_ERR_IO);
  assert_string_equal(a, "");
  assert_int_equal(dgw_nonce_generate(NULL, NULL, NULL),
                   DGW_ERR_INVALID_ARGUMENT);
}

/* ---------------------------------------------------------------- */
/* Encoders: typical calls                                           */
/* ---------------------------------------------------------------- */

static const struct dgw_activity oxford = {"Save the Oxford Comma", 0, NULL,
                                           NULL};
static const struct dgw_activity full_activities[] = {
    {"Save the Oxford Comma", DGW_ACTIVITY_PLAYING, NULL, NULL},
    {"my stream", DGW_ACTIVITY_STREAMING, "live", "https://twitch.tv/dgw"},
    {NULL, DGW_ACTIVITY_CUSTOM, "\xc3\xa9t\xc3\xa9 \"quoted\" \xf0\x9f\x98\x80",
     NULL},
    {"Arena", DGW_ACTIVITY_COMPETING, NULL, NULL},
};

static const char *const three_guilds[] = {
    "613425648685547541", "81384788765712384", "41771983444115456"};
static const char *const two_users[] = {"80351110224678912",
                                        "1234567890123456789"};

/* Each typical call and its exact payload. */
enum command {
  CMD_PRESENCE,
  CMD_VOICE,
  CMD_MEMBERS,
  CMD_SOUNDBOARD,
  CMD_CHANNEL_INFO,
};

struct command_case {
  const char *name;
  enum command cmd;
  struct dgw_presence presence;
  const char *guild_id;   /* voice, channel info */
  const char *channel_id; /* voice */
  int self_mute, self_deaf;
  struct dgw_member_request members;
  const char *const *ids; /* soundboard */
  size_t id_count;
  unsigned fields; /* channel info */
  /* For typical calls: the payload.  For refusals: the error and a piece
   * of the sentence that says why. */
  const char *expect_json;
  int expect_rc;
  const char *why_contains;
};

static int run_command(const struct command_case *c, char **out,
                       size_t *out_len, char *nonce, char *why,
                       size_t why_size) {
  static struct fixed_random r = {
      {0xde, 0xad, 0xbe, 0xef, 0x00, 0x11, 0x22, 0x33}, 0, 0};

  switch (c->cmd) {
  case CMD_PRESENCE:
    return dgw_presence_encode(&c->presence, out, out_len, why, why_size);
  case CMD_VOICE:
    return dgw_voice_state_encode(c->guild_id, c->channel_id, c->self_mute,
                                  c->self_deaf, out, out_len, why, why_size);
  case CMD_MEMBERS:
    return dgw_member_request_encode(&c->members, fixed_rng, &r, nonce, out,
                                     out_len, why, why_size);
  case CMD_SOUNDBOARD:
    return dgw_soundboard_request_encode(c->ids, c->id_count, out, out_len, why,
                                         why_size);
  case CMD_CHANNEL_INFO:
    return dgw_channel_info_request_encode(c->guild_id, c->fields, out, out_len,
                                           why, why_size);
  }
  return -9999;
}

static const struct command_case typical[] = {
    {.name = "presence, the docs example",
     .cmd = CMD_PRESENCE,
     .presence = {"online", 91879201, 0, &oxford, 1},
     .expect_json =
         "{\"op\":3,\"d\":{\"since\":91879201,\"activities\":[{\"name\":"
         "\"Save the Oxford Comma\",\"type\":0}],\"status\":\"online\","
         "\"afk\":false}}"},
    {.name = "presence, all zeros: online, null since, no activity",
     .cmd = CMD_PRESENCE,
     .expect_json = "{\"op\":3,\"d\":{\"since\":null,\"activities\":[],"
                    "\"status\":\"online\",\"afk\":false}}"},
    {.name = "presence, idle and afk with every activity field",
     .cmd = CMD_PRESENCE,
     .presence = {"idle", 1700000000000ull, 1, full_activities, 4},
     .expect_json = "{\"op\":3,\"d\":{\"since\":1700000000000,\"activities\":["
                    "{\"name\":\"Save the Oxford Comma\",\"type\":0},"
                    "{\"name\":\"my stream\",\"type\":1,\"state\":\"live\","
                    "\"url\":\"https://twitch.tv/dgw\"},"
                    "{\"name\":\"Custom Status\",\"type\":4,\"state\":"
                    "\"\xc3\xa9t\xc3\xa9 \\\"quoted\\\" \xf0\x9f\x98\x80\"},"
                    "{\"name\":\"Arena\",\"type\":5}],"
                    "\"status\":\"idle\",\"afk\":true}}"},
    {.name = "presence, invisible",
     .cmd = CMD_PRESENCE,
     .presence = {"invisible", 0, 0, NULL, 0},
     .expect_json = "{\"op\":3,\"d\":{\"since\":null,\"activities\":[],"
                    "\"status\":\"invisible\",\"afk\":false}}"},
    {.name = "voice state, join (the docs example)",
     .cmd = CMD_VOICE,
     .guild_id = "41771983423143937",
     .channel_id = "127121515262115840",
     .expect_json = "{\"op\":4,\"d\":{\"guild_id\":\"41771983423143937\","
                    "\"channel_id\":\"127121515262115840\",\"self_mute\":"
                    "false,\"self_deaf\":false}}"},
    {.name = "voice state, leave, muted and deafened",
     .cmd = CMD_VOICE,
     .guild_id = "41771983423143937",
     .self_mute = 1,
     .self_deaf = 2,
     .expect_json = "{\"op\":4,\"d\":{\"guild_id\":\"41771983423143937\","
                    "\"channel_id\":null,\"self_mute\":true,\"self_deaf\":"
                    "true}}"},
    {.name = "members, every member (the docs example) with a nonce",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = "41771983444115456",
                 .query = "",
                 .limit = 0,
                 .nonce = "abc"},
     .expect_json = "{\"op\":8,\"d\":{\"guild_id\":\"41771983444115456\","
                    "\"query\":\"\",\"limit\":0,\"presences\":false,"
                    "\"nonce\":\"abc\"}}"},
    {.name = "members, prefix query, presences, generated nonce",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = "41771983444115456",
                 .query = "ab",
                 .limit = 100,
                 .presences = 1},
     .expect_json = "{\"op\":8,\"d\":{\"guild_id\":\"41771983444115456\","
                    "\"query\":\"ab\",\"limit\":100,\"presences\":true,"
                    "\"nonce\":\"deadbeef00112233\"}}"},
    {.name = "members, by user ids, 32-byte nonce",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = "41771983444115456",
                 .user_ids = two_users,
                 .user_id_count = 2,
                 .nonce = "0123456789abcdef0123456789abcdef"},
     .expect_json = "{\"op\":8,\"d\":{\"guild_id\":\"41771983444115456\","
                    "\"user_ids\":[\"80351110224678912\","
                    "\"1234567890123456789\"],\"presences\":false,"
                    "\"nonce\":\"0123456789abcdef0123456789abcdef\"}}"},
    {.name = "soundboard, three guilds",
     .cmd = CMD_SOUNDBOARD,
     .ids = three_guilds,
     .id_count = 3,
     .expect_json = "{\"op\":31,\"d\":{\"guild_ids\":[\"613425648685547541\","
                    "\"81384788765712384\",\"41771983444115456\"]}}"},
    {.name = "soundboard, one guild",
     .cmd = CMD_SOUNDBOARD,
     .ids = three_guilds,
     .id_count = 1,
     .expect_json =
         "{\"op\":31,\"d\":{\"guild_ids\":[\"613425648685547541\"]}}"},
    {.name = "channel info, both fields (the docs example)",
     .cmd = CMD_CHANNEL_INFO,
     .guild_id = "613425648685547541",
     .fields = DGW_CHANNEL_INFO_ALL,
     .expect_json = "{\"op\":43,\"d\":{\"guild_id\":\"613425648685547541\","
                    "\"fields\":[\"status\",\"voice_start_time\"]}}"},
    {.name = "channel info, status only",
     .cmd = CMD_CHANNEL_INFO,
     .guild_id = "613425648685547541",
     .fields = DGW_CHANNEL_INFO_STATUS,
     .expect_json = "{\"op\":43,\"d\":{\"guild_id\":\"613425648685547541\","
                    "\"fields\":[\"status\"]}}"},
    {.name = "channel info, voice_start_time only",
     .cmd = CMD_CHANNEL_INFO,
     .guild_id = "613425648685547541",
     .fields = DGW_CHANNEL_INFO_VOICE_START_TIME,
     .expect_json = "{\"op\":43,\"d\":{\"guild_id\":\"613425648685547541\","
                    "\"fields\":[\"voice_start_time\"]}}"},
};

static void test_encoders_typical(void **state) {
  size_t i;

  (void)state;
  for (i = 0; i < ARRAY_LEN(typical); i++) {
    char why[256] = "stale", nonce[DGW_NONCE_MAX + 1] = "stale";
    char *out = NULL;
    size_t out_len = 0;
    int rc = run_command(&typical[i], &out, &out_len, nonce, why, sizeof(why));

    if (rc != DGW_OK)
      fail_msg("case \"%s\": rc %d (%s)", typical[i].name, rc, why);
    assert_string_equal(why, "");
    assert_payload(typical[i].name, out, out_len, typical[i].expect_json);
    /* The nonce reported is the one sent. */
    if (typical[i].cmd == CMD_MEMBERS)
      assert_non_null(strstr(out, nonce));
    free(out);
  }
}

/* The nonce of a generated request is reported, and the same text is in
 * the payload; with OpenSSL's source it is 16 hex digits. */
static void test_member_request_generated_nonce(void **state) {
  static const struct dgw_member_request req = {
      .guild_id = "41771983444115456", .query = "", .limit = 0};
  char nonce[DGW_NONCE_MAX + 1], expect[128];
  struct json_object *parsed, *d, *n;
  char *out;
  size_t out_len;

  (void)state;
  assert_int_equal(dgw_member_request_encode(&req, NULL, NULL, nonce, &out,
                                             &out_len, NULL, 0),
                   DGW_OK);
  assert_hex_nonce(nonce);
  parsed = json_tokener_parse(out);
  assert_true(json_object_object_get_ex(parsed, "d", &d));
  assert_true(json_object_object_get_ex(d, "nonce", &n));
  assert_string_equal(json_object_get_string(n), nonce);
  snprintf(expect, sizeof(expect),
           "{\"op\":8,\"d\":{\"guild_id\":\"41771983444115456\",\"query\":"
           "\"\",\"limit\":0,\"presences\":false,\"nonce\":\"%s\"}}",
           nonce);
  assert_payload("generated nonce", out, out_len, expect);
  json_object_put(parsed);
  free(out);
  /* nonce_out may be NULL. */
  assert_int_equal(dgw_member_request_encode(&req, NULL, NULL, NULL, &out,
                                             &out_len, NULL, 0),
                   DGW_OK);
  free(out);
}

static void test_member_request_random_failure(void **state) {
  static const struct dgw_member_request req = {
      .guild_id = "41771983444115456", .query = "", .limit = 0};
  struct fixed_random r = {{0}, 0, 1};
  char nonce[DGW_NONCE_MAX + 1] = "stale", why[128];
  char *out = (char *)"stale";
  size_t out_len = 5;

  (void)state;
  assert_int_equal(dgw_member_request_encode(&req, fixed_rng, &r, nonce, &out,
                                             &out_len, why, sizeof(why)),
                   DGW_ERR_IO);
  assert_null(out);
  assert_int_equal(out_len, 0);
  assert_string_equal(nonce, "");
  assert_non_null(strstr(why, "random"));
  /* A given nonce needs no randomness. */
  r.calls = 0;
  {
    struct dgw_member_request given = req;

    given.nonce = "n1";
    assert_int_equal(dgw_member_request_encode(&given, fixed_rng, &r, nonce,
                                               &out, &out_len, why,
                                               sizeof(why)),
                     DGW_OK);
    assert_int_equal(r.calls, 0);
    assert_string_equal(nonce, "n1");
    free(out);
  }
}

/* dgw_presence_to_json builds the object alone, for IDENTIFY. */
static void test_presence_to_json(void **state) {
  static const struct dgw_presence p = {"dnd", 0, 0, &oxford, 1};
  static const struct dgw_presence bad = {"away", 0, 0, NULL, 0};
  struct json_object *obj, *want;
  char why[128];
  int err = 1;

  (void)state;
  obj = dgw_presence_to_json(&p, &err, why, sizeof(why));
  assert_non_null(obj);
  assert_int_equal(err, DGW_OK);
  assert_string_equal(why, "");
  want = json_tokener_parse(
      "{\"since\":null,\"activities\":[{\"name\":\"Save the Oxford Comma\","
      "\"type\":0}],\"status\":\"dnd\",\"afk\":false}");
  assert_true(json_object_equal(obj, want));
  json_object_put(obj);
  json_object_put(want);

  assert_null(dgw_presence_to_json(&bad, &err, why, sizeof(why)));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "status \"away\""));
  assert_null(dgw_presence_to_json(NULL, &err, NULL, 0));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
  assert_null(dgw_presence_to_json(NULL, NULL, NULL, 0));
}

/* ---------------------------------------------------------------- */
/* Encoders: every refusal                                           */
/* ---------------------------------------------------------------- */

static const char *two_hundred_guilds[200];
static const char *hundred_and_one_users[101];
static const char *hundred_users_bad_last[100];
static const char *const bad_third_guild[] = {"613425648685547541",
                                              "81384788765712384", "abc"};
static const char *const null_guild[] = {"613425648685547541", NULL};
static const struct dgw_activity type_7 = {"x", 7, NULL, NULL};
static const struct dgw_activity type_6 = {"x", 6, NULL, NULL};
static const struct dgw_activity type_negative = {"x", -1, NULL, NULL};
static const struct dgw_activity no_name = {NULL, DGW_ACTIVITY_WATCHING, NULL,
                                            NULL};
static const struct dgw_activity empty_name = {"", DGW_ACTIVITY_PLAYING, NULL,
                                               NULL};
static const struct dgw_activity bad_utf8_state[] = {
    {"ok", DGW_ACTIVITY_PLAYING, NULL, NULL},
    {"ok", DGW_ACTIVITY_CUSTOM, "\xc3\x28", NULL}};
static const struct dgw_activity surrogate_name = {"\xed\xa0\x80", 0, NULL,
                                                   NULL};
static const struct dgw_activity overlong_url = {"x", 1, NULL, "\xc0\xaf"};
static char huge_text[5000];

#define GUILD "41771983444115456"

static const struct command_case refusals[] = {
    /* Snowflakes, through voice state's guild_id. */
    {.name = "guild_id NULL",
     .cmd = CMD_VOICE,
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "guild_id is missing"},
    {.name = "guild_id empty",
     .cmd = CMD_VOICE,
     .guild_id = "",
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "guild_id is empty"},
    {.name = "guild_id letters",
     .cmd = CMD_VOICE,
     .guild_id = "abc",
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains =
         "guild_id \"abc\" is not a snowflake: decimal digits only"},
    {.name = "guild_id negative",
     .cmd = CMD_VOICE,
     .guild_id = "-1",
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "guild_id \"-1\" is not a snowflake"},
    {.name = "guild_id zero",
     .cmd = CMD_VOICE,
     .guild_id = "0",
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "guild_id is 0"},
    {.name = "guild_id leading zero",
     .cmd = CMD_VOICE,
     .guild_id = "0123",
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "leading zero"},
    {.name = "guild_id 21 digits",
     .cmd = CMD_VOICE,
     .guild_id = TWENTY_ONE_DIGITS,
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "guild_id is 21 digits long"},
    {.name = "guild_id 2^64",
     .cmd = CMD_VOICE,
     .guild_id = TWO_TO_THE_64,
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "does not fit in 64 bits"},
    {.name = "channel_id letters",
     .cmd = CMD_VOICE,
     .guild_id = GUILD,
     .channel_id = "x1",
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "channel_id \"x1\" is not a snowflake"},
    {.name = "channel_id empty (NULL, not \"\", means leave)",
     .cmd = CMD_VOICE,
     .guild_id = GUILD,
     .channel_id = "",
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "channel_id is empty"},

    /* Presence. */
    {.name = "status unknown",
     .cmd = CMD_PRESENCE,
     .presence = {"away", 0, 0, NULL, 0},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "status \"away\" is not one of"},
    {.name = "status empty",
     .cmd = CMD_PRESENCE,
     .presence = {"", 0, 0, NULL, 0},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "status \"\" is not one of"},
    {.name = "status in capitals",
     .cmd = CMD_PRESENCE,
     .presence = {"Online", 0, 0, NULL, 0},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "status \"Online\""},
    {.name = "activity type 7",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, 0, 0, &type_7, 1},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "activities[0].type 7"},
    {.name = "activity type 6 (hang status, users only)",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, 0, 0, &type_6, 1},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "activities[0].type 6"},
    {.name = "activity type -1",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, 0, 0, &type_negative, 1},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "activities[0].type -1"},
    {.name = "activity without a name",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, 0, 0, &no_name, 1},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "activities[0].name is missing"},
    {.name = "activity with an empty name",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, 0, 0, &empty_name, 1},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "activities[0].name is empty"},
    {.name = "activity state not UTF-8",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, 0, 0, bad_utf8_state, 2},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "activities[1].state is not valid UTF-8"},
    {.name = "activity name an encoded surrogate",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, 0, 0, &surrogate_name, 1},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "activities[0].name is not valid UTF-8"},
    {.name = "activity url overlong UTF-8",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, 0, 0, &overlong_url, 1},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "activities[0].url is not valid UTF-8"},
    {.name = "activities NULL with a count",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, 0, 0, NULL, 2},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "activities is NULL"},
    {.name = "since over INT64_MAX",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, (uint64_t)INT64_MAX + 1, 0, NULL, 0},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "since"},

    /* Request guild members. */
    {.name = "members, nonce of 33 bytes",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD,
                 .query = "",
                 .nonce = "0123456789abcdef0123456789abcdef0"},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "nonce is 33 bytes"},
    {.name = "members, empty nonce",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD, .query = "", .nonce = ""},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "nonce is 0 bytes"},
    {.name = "members, nonce not UTF-8",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD, .query = "", .nonce = "\xff"},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "nonce is not valid UTF-8"},
    {.name = "members, 101 user ids",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD,
                 .user_ids = hundred_and_one_users,
                 .user_id_count = 101},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "101 user_ids are too many"},
    {.name = "members, both query and user_ids",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD,
                 .query = "a",
                 .limit = 5,
                 .user_ids = two_users,
                 .user_id_count = 2},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "either query or user_ids, not both"},
    {.name = "members, neither query nor user_ids",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "give either a query or user_ids"},
    {.name = "members, user_ids with a zero count",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD, .user_ids = two_users},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "user_ids needs 1 to 100"},
    {.name = "members, limit 101",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD, .query = "a", .limit = 101},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "limit 101 is out of range"},
    {.name = "members, limit UINT32_MAX with an empty query",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD, .query = "", .limit = UINT32_MAX},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "limit 4294967295 is out of range"},
    {.name = "members, limit 0 with a prefix query",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD, .query = "ab", .limit = 0},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "limit 0 (every member) needs an empty query"},
    {.name = "members, a limit with user_ids",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD,
                 .user_ids = two_users,
                 .user_id_count = 2,
                 .limit = 10},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "limit 10 is only used with a query"},
    {.name = "members, a bad user id at the end",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD,
                 .user_ids = hundred_users_bad_last,
                 .user_id_count = 100},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "user_ids[99] \"-5\" is not a snowflake"},
    {.name = "members, bad guild_id",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = TWO_TO_THE_64, .query = ""},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "guild_id \"18446744073709551616\""},
    {.name = "members, query not UTF-8",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD, .query = "ab\x80", .limit = 3},
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "query is not valid UTF-8"},

    /* Soundboard. */
    {.name = "soundboard, no guilds",
     .cmd = CMD_SOUNDBOARD,
     .ids = three_guilds,
     .id_count = 0,
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "at least one guild id"},
    {.name = "soundboard, NULL list",
     .cmd = CMD_SOUNDBOARD,
     .id_count = 2,
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "at least one guild id"},
    {.name = "soundboard, third id letters",
     .cmd = CMD_SOUNDBOARD,
     .ids = bad_third_guild,
     .id_count = 3,
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "guild_ids[2] \"abc\""},
    {.name = "soundboard, second id NULL",
     .cmd = CMD_SOUNDBOARD,
     .ids = null_guild,
     .id_count = 2,
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "guild_ids[1] is missing"},

    /* Channel info. */
    {.name = "channel info, no fields",
     .cmd = CMD_CHANNEL_INFO,
     .guild_id = GUILD,
     .fields = 0,
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "fields 0x0"},
    {.name = "channel info, unknown field bit",
     .cmd = CMD_CHANNEL_INFO,
     .guild_id = GUILD,
     .fields = DGW_CHANNEL_INFO_STATUS | 4u,
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "fields 0x5"},
    {.name = "channel info, bad guild_id",
     .cmd = CMD_CHANNEL_INFO,
     .guild_id = "1 2",
     .fields = DGW_CHANNEL_INFO_ALL,
     .expect_rc = DGW_ERR_INVALID_ARGUMENT,
     .why_contains = "guild_id \"1 2\""},

    /* Size: arguments that are each fine but make the payload too large. */
    {.name = "presence, 5000-byte activity name",
     .cmd = CMD_PRESENCE,
     .presence = {NULL, 0, 0,
                  (const struct dgw_activity[]){{huge_text, 0, NULL, NULL}}, 1},
     .expect_rc = DGW_ERR_PAYLOAD_TOO_LARGE,
     .why_contains = "over Discord's limit of 4096"},
    {.name = "members, 5000-byte query",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD, .query = huge_text, .limit = 1},
     .expect_rc = DGW_ERR_PAYLOAD_TOO_LARGE,
     .why_contains = "over Discord's limit of 4096"},
    {.name = "soundboard, 200 guilds",
     .cmd = CMD_SOUNDBOARD,
     .ids = two_hundred_guilds,
     .id_count = 200,
     .expect_rc = DGW_ERR_PAYLOAD_TOO_LARGE,
     .why_contains = "over Discord's limit of 4096"},
    {.name = "soundboard, 150 guilds (control: still fits)",
     .cmd = CMD_SOUNDBOARD,
     .ids = two_hundred_guilds,
     .id_count = 150,
     .expect_rc = DGW_OK},
    {.name = "members, 100 user ids (control: the most allowed)",
     .cmd = CMD_MEMBERS,
     .members = {.guild_id = GUILD,
                 .user_ids = hundred_and_one_users,
                 .user_id_count = 100},
     .expect_rc = DGW_OK},
};

/* Valid 19-digit ids for the lists above (20 bytes each as JSON). */
static void fill_id_lists(void) {
  static char ids[200][24];
  size_t i;

  for (i = 0; i < 200; i++) {
    snprintf(ids[i], sizeof(ids[i]), "%llu",
             (unsigned long long)(1234567890123456789ull + i));
    two_hundred_guilds[i] = ids[i];
    if (i < 101)
      hundred_and_one_users[i] = ids[i];
    if (i < 100)
      hundred_users_bad_last[i] = ids[i];
  }
  hundred_users_bad_last[99] = "-5";
  memset(huge_text, 'x', sizeof(huge_text) - 1);
  huge_text[sizeof(huge_text) - 1] = '\0';
}

static void test_encoders_refuse(void **state) {
  size_t i;

  (void)state;
  fill_id_lists();
  for (i = 0; i < ARRAY_LEN(refusals); i++) {
    const struct command_case *c = &refusals[i];
    char why[256] = "stale", nonce[DGW_NONCE_MAX + 1] = "stale";
    char *out = (char *)"stale";
    size_t out_len = 99;
    int rc = run_command(c, &out, &out_len, nonce, why, sizeof(why));

    if (c->expect_rc == DGW_OK) {
      /* A control case: the same kind of input, still within bounds. */
      if (rc != DGW_OK)
        fail_msg("case \"%s\": rc %d (%s)", c->name, rc, why);
      free(out);
      continue;
    }
    if (rc != c->expect_rc)
      fail_msg("case \"%s\": rc %d (%s), expected %d", c->name, rc,
               rc == DGW_OK ? out : why, c->expect_rc);
    if (out != NULL || out_len != 0)
      fail_msg("case \"%s\": output not cleared on error", c->name);
    if (strstr(why, c->why_contains) == NULL)
      fail_msg("case \"%s\": why \"%s\" does not contain \"%s\"", c->name, why,
               c->why_contains);
    if (c->cmd == CMD_MEMBERS && nonce[0] != '\0')
      fail_msg("case \"%s\": nonce_out not cleared", c->name);
  }
}

/* Text arguments must be UTF-8 (RFC 3629); checked through a state. */
static const struct {
  const char *name;
  const char *text;
  int ok;
} utf8_cases[] = {
    {"ASCII", "plain", 1},
    {"2-byte", "\xc3\xa9", 1},
    {"3-byte", "\xe2\x82\xac", 1},
    {"4-byte", "\xf0\x9f\x98\x80", 1},
    {"U+10FFFF", "\xf4\x8f\xbf\xbf", 1},
    {"U+FFFF", "\xef\xbf\xbf", 1},
    {"lone continuation", "\x80", 0},
    {"truncated 2-byte", "a\xc3", 0},
    {"truncated 4-byte", "\xf0\x9f\x98", 0},
    {"overlong 2-byte", "\xc1\xbf", 0},
    {"overlong 3-byte", "\xe0\x80\xaf", 0},
    {"overlong 4-byte", "\xf0\x8f\xbf\xbf", 0},
    {"surrogate", "\xed\xbf\xbf", 0},
    {"above U+10FFFF", "\xf4\x90\x80\x80", 0},
    {"0xff", "\xff", 0},
};

static void test_utf8_checks(void **state) {
  size_t i;

  (void)state;
  for (i = 0; i < ARRAY_LEN(utf8_cases); i++) {
    struct dgw_activity a = {"n", DGW_ACTIVITY_CUSTOM, utf8_cases[i].text,
                             NULL};
    struct dgw_presence p = {NULL, 0, 0, &a, 1};
    struct json_object *obj;
    int err;

    obj = dgw_presence_to_json(&p, &err, NULL, 0);
    if ((obj != NULL) != utf8_cases[i].ok)
      fail_msg("case \"%s\": %s", utf8_cases[i].name,
               obj != NULL ? "accepted" : "refused");
    json_object_put(obj);
  }
}

/* The cap is exactly 4096 bytes of encoded payload. */
static void test_payload_size_boundary(void **state) {
  static char name[4200];
  struct dgw_activity a = {name, 0, NULL, NULL};
  struct dgw_presence p = {NULL, 0, 0, &a, 1};
  size_t base, want;
  char *out, why[128];
  size_t out_len;

  (void)state;
  memset(name, 'n', 10);
  name[10] = '\0';
  assert_int_equal(dgw_presence_encode(&p, &out, &out_len, NULL, 0), DGW_OK);
  base = out_len;
  free(out);
  want = 10 + (DGW_PAYLOAD_MAX_SEND - base);
  memset(name, 'n', want);
  name[want] = '\0';
  assert_int_equal(dgw_presence_encode(&p, &out, &out_len, why, sizeof(why)),
                   DGW_OK);
  assert_int_equal(out_len, DGW_PAYLOAD_MAX_SEND);
  free(out);
  name[want] = 'n';
  name[want + 1] = '\0';
  assert_int_equal(dgw_presence_encode(&p, &out, &out_len, why, sizeof(why)),
                   DGW_ERR_PAYLOAD_TOO_LARGE);
  assert_string_equal(why, "the payload is 4097 bytes encoded, over Discord's "
                           "limit of 4096");
  /* Escapes count as sent: 2049 quotes take 4098 bytes. */
  memset(name, '"', 2049);
  name[2049] = '\0';
  assert_int_equal(dgw_presence_encode(&p, &out, &out_len, why, sizeof(why)),
                   DGW_ERR_PAYLOAD_TOO_LARGE);
}

/* NULL outputs, NULL structs, and a why buffer too small or absent. */
static void test_encoder_plumbing(void **state) {
  static const struct dgw_presence p = {NULL, 0, 0, NULL, 0};
  char why[8], *out;
  size_t out_len;

  (void)state;
  assert_int_equal(dgw_presence_encode(&p, NULL, &out_len, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_presence_encode(&p, &out, NULL, NULL, 0),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_null(out);
  assert_int_equal(dgw_presence_encode(NULL, &out, &out_len, NULL, 0),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_member_request_encode(NULL, NULL, NULL, NULL, &out,
                                             &out_len, NULL, 0),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      dgw_voice_state_encode("abc", NULL, 0, 0, &out, &out_len, why, 0),
      DGW_ERR_INVALID_ARGUMENT);
  /* Truncated, still NUL-terminated. */
  assert_int_equal(dgw_voice_state_encode("abc", NULL, 0, 0, &out, &out_len,
                                          why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_string_equal(why, "guild_i");
}

/* ---------------------------------------------------------------- */
/* IDENTIFY, RESUME and HEARTBEAT, the session's own payloads         */
/* ---------------------------------------------------------------- */

static const struct {
  const char *name;
  struct dgw_identify_params params;
  const char *expected;
} identify_cases[] = {
    {"minimal",
     {"tok", 513, 0, 1, 0, NULL},
     "{\"op\":2,\"d\":{\"token\":\"tok\",\"properties\":{\"os\":\"linux\","
     "\"browser\":\"dgw\",\"device\":\"dgw\"},\"intents\":513,"
     "\"shard\":[0,1]}}"},
    {"large threshold and presence",
     {"tok", 0, 3, 8, 250, "{\"status\":\"idle\",\"afk\":false}"},
     "{\"op\":2,\"d\":{\"token\":\"tok\",\"properties\":{\"os\":\"linux\","
     "\"browser\":\"dgw\",\"device\":\"dgw\"},\"intents\":0,"
     "\"shard\":[3,8],\"large_threshold\":250,"
     "\"presence\":{\"status\":\"idle\",\"afk\":false}}}"},
    {"unparsable presence is sent as null",
     {"tok", 1, 0, 1, -1, "{"},
     "{\"op\":2,\"d\":{\"token\":\"tok\",\"properties\":{\"os\":\"linux\","
     "\"browser\":\"dgw\",\"device\":\"dgw\"},\"intents\":1,"
     "\"shard\":[0,1],\"presence\":null}}"},
    {"all intents, a high shard",
     {"a.b.c", UINT64_C(4294967295), 4294967294u, 4294967295u, 50, NULL},
     "{\"op\":2,\"d\":{\"token\":\"a.b.c\",\"properties\":{\"os\":"
     "\"linux\",\"browser\":\"dgw\",\"device\":\"dgw\"},"
     "\"intents\":4294967295,\"shard\":[4294967294,4294967295],"
     "\"large_threshold\":50}}"},
};

static void test_identify_encode(void **state) {
  struct dgw_identify_params p;
  char big[DGW_PAYLOAD_MAX_SEND + 8];
  char *out = NULL;
  size_t out_len = 0;
  char why[160];

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(identify_cases); i++) {
    assert_int_equal(dgw_identify_encode(&identify_cases[i].params, &out,
                                         &out_len, why, sizeof(why)),
                     DGW_OK);
    assert_payload(identify_cases[i].name, out, out_len,
                   identify_cases[i].expected);
    /* The key order is part of the wire format dgw always sent. */
    assert_true(strncmp(out, "{\"op\":2,\"d\":{\"token\":", 21) == 0);
    free(out);
  }
  assert_int_equal(dgw_identify_encode(NULL, &out, &out_len, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_null(out);
  assert_int_equal(out_len, 0);
  memset(&p, 0, sizeof(p));
  assert_int_equal(dgw_identify_encode(&p, &out, &out_len, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_string_equal(why, "the token must not be NULL");
  /* A token that makes the payload too large for Discord. */
  memset(big, 'x', sizeof(big) - 1);
  big[sizeof(big) - 1] = '\0';
  p.token = big;
  assert_int_equal(dgw_identify_encode(&p, &out, &out_len, why, sizeof(why)),
                   DGW_ERR_PAYLOAD_TOO_LARGE);
  assert_null(out);
  p.token = "t";
  assert_int_equal(dgw_identify_encode(&p, NULL, &out_len, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
}

static void test_resume_encode(void **state) {
  char *out = NULL;
  size_t out_len = 0;
  char why[160];

  (void)state;
  assert_int_equal(
      dgw_resume_encode("tok", "abc123", 42, &out, &out_len, why, sizeof(why)),
      DGW_OK);
  assert_string_equal(out, "{\"op\":6,\"d\":{\"token\":\"tok\",\"session_id\":"
                           "\"abc123\",\"seq\":42}}");
  assert_int_equal(out_len, strlen(out));
  free(out);
  assert_int_equal(
      dgw_resume_encode("tok", "s", 0, &out, &out_len, why, sizeof(why)),
      DGW_OK);
  assert_payload("seq 0", out, out_len,
                 "{\"op\":6,\"d\":{\"token\":\"tok\",\"session_id\":\"s\","
                 "\"seq\":0}}");
  free(out);
  assert_int_equal(dgw_resume_encode("tok", "s", INT64_MAX, &out, &out_len, why,
                                     sizeof(why)),
                   DGW_OK);
  assert_payload("seq INT64_MAX", out, out_len,
                 "{\"op\":6,\"d\":{\"token\":\"tok\",\"session_id\":\"s\","
                 "\"seq\":9223372036854775807}}");
  free(out);
  assert_int_equal(
      dgw_resume_encode(NULL, "s", 1, &out, &out_len, why, sizeof(why)),
      DGW_ERR_INVALID_ARGUMENT);
  assert_null(out);
  assert_int_equal(
      dgw_resume_encode("t", NULL, 1, &out, &out_len, why, sizeof(why)),
      DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      dgw_resume_encode("t", "s", -1, &out, &out_len, why, sizeof(why)),
      DGW_ERR_INVALID_ARGUMENT);
}

static void test_heartbeat_encode(void **state) {
  static const struct {
    int64_t seq;
    const char *expected;
  } cases[] = {
      {0, "{\"op\":1,\"d\":null}"},
      {-5, "{\"op\":1,\"d\":null}"},
      {1, "{\"op\":1,\"d\":1}"},
      {INT64_MAX, "{\"op\":1,\"d\":9223372036854775807}"},
  };
  char buf[48];

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(cases); i++) {
    int n = dgw_heartbeat_encode(cases[i].seq, buf, sizeof(buf));

    assert_string_equal(buf, cases[i].expected);
    assert_int_equal(n, (int)strlen(cases[i].expected));
  }
  assert_int_equal(dgw_heartbeat_encode(7, buf, 10), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_snowflake_parse),
      cmocka_unit_test(test_shard_for_guild),
      cmocka_unit_test(test_nonce_generate),
      cmocka_unit_test(test_encoders_typical),
      cmocka_unit_test(test_member_request_generated_nonce),
      cmocka_unit_test(test_member_request_random_failure),
      cmocka_unit_test(test_presence_to_json),
      cmocka_unit_test(test_encoders_refuse),
      cmocka_unit_test(test_utf8_checks),
      cmocka_unit_test(test_payload_size_boundary),
      cmocka_unit_test(test_encoder_plumbing),
      cmocka_unit_test(test_identify_encode),
      cmocka_unit_test(test_resume_encode),
      cmocka_unit_test(test_heartbeat_encode),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
