/*
 * Tests for lib/field.c: JSON Pointer getters over raw JSON text, without
 * a DOM.  json-c (through dgw_payload_parse) is the reference.
 *
 * Every input is copied into a malloc'd buffer of exactly its length, with
 * no NUL after it, so AddressSanitizer and valgrind catch any read past the
 * end.
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
#include <dgw/field.h>

#include "field.h"
#include "payload.h"

/* ------------------------------------------------------------ samples */

static const char message_create[] =
    "{\"type\":0,\"tts\":false,\"timestamp\":\"2026-12-03T08:15:42.123000+00:"
    "00\",\"referenced_message\":null,\"pinned\":false,\"nonce\":"
    "\"1313131313131313131\",\"mentions\":[{\"username\":\"alice\","
    "\"public_flags\":64,\"id\":\"80351110224678912\",\"global_name\":"
    "\"Alice \\u2728\",\"discriminator\":\"0\",\"avatar\":"
    "\"a_1269e74af4df7417b13759eae50c83dc\"},{\"username\":\"bob\","
    "\"public_flags\":0,\"id\":\"80351110224678913\",\"global_name\":null,"
    "\"discriminator\":\"0\",\"avatar\":null}],\"mention_roles\":[],"
    "\"mention_everyone\":false,\"member\":{\"roles\":[\"41771983423143936\","
    "\"41771983423143937\"],\"premium_since\":null,\"pending\":false,"
    "\"nick\":\"{not} [json]\",\"mute\":false,\"joined_at\":\"2021-03-04T05:"
    "06:07.000000+00:00\",\"flags\":0,\"deaf\":false,\"communication_"
    "disabled_until\":null,\"avatar\":null},\"id\":\"1313131313131313132\","
    "\"flags\":0,\"embeds\":[{\"type\":\"rich\",\"title\":\"He said \\\"hi\\\""
    "\",\"fields\":[{\"value\":\"a\\\\b}]\",\"name\":\"path\",\"inline\":"
    "true}],\"color\":16711680,\"description\":\"line1\\nline2\\ttab \\/ "
    "slash\"}],\"edited_timestamp\":null,\"content\":\"hello \\\"world\\\" "
    "{[ \\\\ ]} \\ud83d\\ude00 caf\\u00e9 \\u20ac\",\"components\":[],"
    "\"channel_id\":\"1039485012345678901\",\"author\":{\"username\":"
    "\"carol\",\"public_flags\":0,\"id\":\"1024907412345678901\",\"global_"
    "name\":\"Carol\",\"discriminator\":\"0\",\"clan\":null,\"avatar_"
    "decoration_data\":null,\"avatar\":\"b2a6536641da18f4a63b23ba4e7b5fe0\"},"
    "\"attachments\":[{\"width\":1024,\"url\":\"https://cdn.discordapp.com/"
    "attachments/1/2/a.png?ex=6750&is=674f&hm=abc\",\"size\":123456,"
    "\"proxy_url\":\"https://media.discordapp.net/attachments/1/2/a.png\","
    "\"id\":\"1313131313131313133\",\"height\":768,\"filename\":\"a.png\","
    "\"content_type\":\"image/png\",\"ephemeral\":false,\"duration_secs\":"
    "3.25,\"waveform\":\"\"}],\"guild_id\":\"197038439483310086\"}";

static const char guild_create[] =
    "{\"id\":\"197038439483310086\",\"name\":\"dgw \\u00e9quipe\","
    "\"icon\":null,\"owner_id\":\"80351110224678912\",\"afk_timeout\":300,"
    "\"verification_level\":1,\"default_message_notifications\":0,"
    "\"explicit_content_filter\":2,\"features\":[\"COMMUNITY\",\"NEWS\"],"
    "\"mfa_level\":0,\"system_channel_id\":null,\"large\":false,"
    "\"unavailable\":false,\"member_count\":3,\"joined_at\":\"2024-01-01T00:"
    "00:00.000000+00:00\",\"max_members\":500000,\"premium_tier\":2,"
    "\"premium_subscription_count\":7,\"preferred_locale\":\"en-US\","
    "\"nsfw_level\":0,\"roles\":[{\"id\":\"197038439483310086\",\"name\":"
    "\"@everyone\",\"color\":0,\"hoist\":false,\"position\":0,"
    "\"permissions\":\"2248473465835073\",\"managed\":false,\"mentionable\":"
    "false,\"flags\":0},{\"id\":\"41771983423143936\",\"name\":\"mods/"
    "admins ~ all\",\"color\":3447003,\"hoist\":true,\"position\":1,"
    "\"permissions\":\"18446744073709551615\",\"managed\":false,"
    "\"mentionable\":true,\"tags\":{\"premium_subscriber\":null}}],"
    "\"emojis\":[],\"stickers\":[],\"channels\":[{\"id\":"
    "\"1039485012345678901\",\"type\":0,\"name\":\"general\",\"position\":0,"
    "\"parent_id\":null,\"topic\":\"Say \\\"hi\\\" {here}\",\"nsfw\":false,"
    "\"rate_limit_per_user\":0,\"permission_overwrites\":[{\"id\":"
    "\"197038439483310086\",\"type\":0,\"allow\":\"0\",\"deny\":"
    "\"1024\"}]},{\"id\":\"1039485012345678902\",\"type\":2,\"name\":"
    "\"voice\",\"bitrate\":64000,\"user_limit\":0,\"rtc_region\":null}],"
    "\"threads\":[],\"members\":[{\"user\":{\"id\":\"80351110224678912\","
    "\"username\":\"alice\",\"bot\":false},\"roles\":[],\"joined_at\":"
    "\"2024-01-01T00:00:00.000000+00:00\",\"deaf\":false,\"mute\":false}],"
    "\"voice_states\":[],\"presences\":[{\"user\":{\"id\":"
    "\"80351110224678912\"},\"status\":\"online\",\"activities\":[{\"name\":"
    "\"Custom Status\",\"type\":4,\"state\":\"\\ud83c\\udf89 shipping\","
    "\"created_at\":1733212345678}],\"client_status\":{\"desktop\":"
    "\"online\"}}],\"stage_instances\":[],\"guild_scheduled_events\":[],"
    "\"soundboard_sounds\":[],\"weird keys\":{\"a/b\":1,\"m~n\":2,\"~1\":3,"
    "\"\":4,\" \":5,\"\\u0041\":6,\"caf\\u00e9\":7},\"numbers\":[0,-0,1.5,"
    "-2.5e-3,1E+2,9223372036854775807,-9223372036854775808,"
    "9223372036854775808,18446744073709551615,18446744073709551616,"
    "123456789012345678901234567890,1e308,-1e-300,0.1]}";

static const char ready[] =
    " \r\n{ \"v\" : 10 ,\t\"user_settings\" : { } , \"user\" : { \"verified\" "
    ": true , \"username\" : \"dgw-test\" , \"mfa_enabled\" : false , \"id\" "
    ": \"1234567890123456789\" , \"email\" : null , \"bot\" : true } , "
    "\"session_id\" : \"0123456789abcdef\" , \"resume_gateway_url\" : "
    "\"wss:\\/\\/gateway-us-east1-b.discord.gg\" , \"guilds\" : [ { "
    "\"unavailable\" : true , \"id\" : \"1111111111111111111\" } , { "
    "\"unavailable\" : true , \"id\" : \"2222222222222222222\" } ] , "
    "\"shard\" : [ 0 , 1 ] , \"_trace\" : [ \"[\\\"gateway-prd\\\",{\\\""
    "micros\\\":43725}]\" ] , \"application\" : { \"id\" : "
    "\"1234567890123456789\" , \"flags\" : 565248 } } \t\r\n";

static const char *const samples[] = {message_create, guild_create, ready};

/* ------------------------------------------------------------ helpers */

static char *copy_exact(const char *text, size_t len) {
  char *buf = malloc(len > 0 ? len : 1);

  assert_non_null(buf);
  if (len > 0)
    memcpy(buf, text, len);
  return buf;
}

/* The getters on an exact-length copy of `text`. */
struct doc {
  char *buf;
  size_t len;
};

static struct doc doc_new(const char *text) {
  struct doc d;

  d.len = strlen(text);
  d.buf = copy_exact(text, d.len);
  return d;
}

static void expect_str(const char *text, const char *pointer, const char *want,
                       size_t want_len) {
  struct doc d = doc_new(text);
  char buf[256];
  size_t n = 0;
  int rc = dgw_field_string(d.buf, d.len, pointer, buf, sizeof buf, &n);

  if (rc != DGW_OK)
    fail_msg("%s in %s: rc %d", pointer, text, rc);
  assert_int_equal(n, want_len);
  assert_memory_equal(buf, want, want_len);
  assert_int_equal(buf[n], '\0');
  free(d.buf);
}

static int64_t int64_of(const char *text, const char *pointer, int *rc) {
  struct doc d = doc_new(text);
  int64_t v = 12345;

  *rc = dgw_field_int64(d.buf, d.len, pointer, &v);
  free(d.buf);
  return v;
}

static uint64_t uint64_of(const char *text, const char *pointer, int *rc) {
  struct doc d = doc_new(text);
  uint64_t v = 12345;

  *rc = dgw_field_uint64(d.buf, d.len, pointer, &v);
  free(d.buf);
  return v;
}

/* The code every getter returns for `pointer` in `text`, when they agree
 * (not-found, json and argument errors do not depend on the getter). */
static int common_rc(const char *text, size_t len, const char *pointer) {
  char *buf = copy_exact(text, len);
  const char *raw;
  size_t raw_len, n;
  int64_t i;
  uint64_t u;
  double dv;
  int b, rc, rc2;
  char sbuf[8];
  enum dgw_field_type type;

  rc = dgw_field_raw(buf, len, pointer, &raw, &raw_len);
  rc2 = dgw_field_type(buf, len, pointer, &type);
  assert_int_equal(rc2, rc);
  rc2 = dgw_field_present(buf, len, pointer);
  assert_int_equal(rc2, rc == DGW_OK ? 1 : rc == DGW_ERR_NOT_FOUND ? 0 : rc);
  if (rc != DGW_OK) {
    assert_int_equal(dgw_field_int64(buf, len, pointer, &i), rc);
    assert_int_equal(dgw_field_uint64(buf, len, pointer, &u), rc);
    assert_int_equal(dgw_field_double(buf, len, pointer, &dv), rc);
    assert_int_equal(dgw_field_bool(buf, len, pointer, &b), rc);
    assert_int_equal(dgw_field_null(buf, len, pointer), rc);
    assert_int_equal(dgw_field_string(buf, len, pointer, sbuf, sizeof sbuf, &n),
                     rc);
    assert_int_equal(dgw_field_count(buf, len, pointer, &n), rc);
  }
  free(buf);
  return rc;
}

static int rc_of(const char *text, const char *pointer) {
  return common_rc(text, strlen(text), pointer);
}

/* ------------------------------------------------------- simple cases */

/* The getters' errors are dgw errors: each has its own sentence. */
static void test_error_names(void **state) {
  const int codes[] = {DGW_ERR_NOT_FOUND, DGW_ERR_TYPE, DGW_ERR_RANGE,
                       DGW_ERR_BUFFER_TOO_SMALL};

  (void)state;
  for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++)
    assert_string_not_equal(dgw_strerror(codes[i]), "unknown error");
}

static void test_types(void **state) {
  const char *t = "{\"s\":\"x\",\"i\":-42,\"f\":2.5,\"t\":true,\"F\":false,"
                  "\"n\":null,\"a\":[1,2,3],\"o\":{}}";
  struct doc d = doc_new(t);
  enum dgw_field_type type;
  double dv;
  int b, rc;
  size_t n;

  (void)state;
  expect_str(t, "/s", "x", 1);
  assert_int_equal(int64_of(t, "/i", &rc), -42);
  assert_int_equal(rc, DGW_OK);
  assert_int_equal(dgw_field_double(d.buf, d.len, "/f", &dv), DGW_OK);
  assert_true(dv == 2.5);
  assert_int_equal(dgw_field_double(d.buf, d.len, "/i", &dv), DGW_OK);
  assert_true(dv == -42.0);
  assert_int_equal(dgw_field_bool(d.buf, d.len, "/t", &b), DGW_OK);
  assert_int_equal(b, 1);
  assert_int_equal(dgw_field_bool(d.buf, d.len, "/F", &b), DGW_OK);
  assert_int_equal(b, 0);
  assert_int_equal(dgw_field_null(d.buf, d.len, "/n"), DGW_OK);
  assert_int_equal(dgw_field_null(d.buf, d.len, "/F"), DGW_ERR_TYPE);
  assert_int_equal(dgw_field_count(d.buf, d.len, "/a", &n), DGW_OK);
  assert_int_equal(n, 3);
  assert_int_equal(dgw_field_count(d.buf, d.len, "/o", &n), DGW_ERR_TYPE);
  assert_int_equal(dgw_field_present(d.buf, d.len, "/n"), 1);
  assert_int_equal(dgw_field_present(d.buf, d.len, "/x"), 0);

  static const struct {
    const char *pointer;
    enum dgw_field_type type;
  } types[] = {
      {"/s", DGW_FIELD_STRING}, {"/i", DGW_FIELD_NUMBER},
      {"/f", DGW_FIELD_NUMBER}, {"/t", DGW_FIELD_BOOL},
      {"/F", DGW_FIELD_BOOL},   {"/n", DGW_FIELD_NULL},
      {"/a", DGW_FIELD_ARRAY},  {"/o", DGW_FIELD_OBJECT},
      {"", DGW_FIELD_OBJECT},
  };
  for (size_t k = 0; k < sizeof types / sizeof types[0]; k++) {
    assert_int_equal(dgw_field_type(d.buf, d.len, types[k].pointer, &type),
                     DGW_OK);
    assert_int_equal(type, types[k].type);
  }

  /* Wrong types. */
  int64_t i;
  uint64_t u;
  char buf[8];
  assert_int_equal(dgw_field_int64(d.buf, d.len, "/s", &i), DGW_ERR_TYPE);
  assert_int_equal(dgw_field_int64(d.buf, d.len, "/f", &i), DGW_ERR_TYPE);
  assert_int_equal(dgw_field_int64(d.buf, d.len, "/n", &i), DGW_ERR_TYPE);
  assert_int_equal(dgw_field_uint64(d.buf, d.len, "/t", &u), DGW_ERR_TYPE);
  assert_int_equal(dgw_field_uint64(d.buf, d.len, "/s", &u), DGW_ERR_TYPE);
  assert_int_equal(dgw_field_double(d.buf, d.len, "/s", &dv), DGW_ERR_TYPE);
  assert_int_equal(dgw_field_bool(d.buf, d.len, "/n", &b), DGW_ERR_TYPE);
  assert_int_equal(dgw_field_bool(d.buf, d.len, "/i", &b), DGW_ERR_TYPE);
  assert_int_equal(dgw_field_string(d.buf, d.len, "/n", buf, sizeof buf, &n),
                   DGW_ERR_TYPE);
  assert_int_equal(dgw_field_string(d.buf, d.len, "/a", buf, sizeof buf, &n),
                   DGW_ERR_TYPE);
  free(d.buf);
}

static void test_raw(void **state) {
  const char *t = "{ \"a\" : [ 1 , { \"b\" : \"c\\\"\" } ] , \"n\" : -1.5e3 }";
  struct doc d = doc_new(t);
  const char *raw;
  size_t n;

  (void)state;
  assert_int_equal(dgw_field_raw(d.buf, d.len, "/a", &raw, &n), DGW_OK);
  assert_int_equal(n, strlen("[ 1 , { \"b\" : \"c\\\"\" } ]"));
  assert_memory_equal(raw, "[ 1 , { \"b\" : \"c\\\"\" } ]", n);
  assert_int_equal(dgw_field_raw(d.buf, d.len, "/a/1/b", &raw, &n), DGW_OK);
  assert_int_equal(n, 5);
  assert_memory_equal(raw, "\"c\\\"\"", 5);
  assert_int_equal(dgw_field_raw(d.buf, d.len, "/n", &raw, &n), DGW_OK);
  assert_int_equal(n, 6);
  assert_memory_equal(raw, "-1.5e3", 6);
  assert_int_equal(dgw_field_raw(d.buf, d.len, "", &raw, &n), DGW_OK);
  assert_ptr_equal(raw, d.buf);
  assert_int_equal(n, d.len);
  free(d.buf);

  /* A scalar document, with whitespace around it. */
  d = doc_new("  \"x\"\n");
  assert_int_equal(dgw_field_raw(d.buf, d.len, "", &raw, &n), DGW_OK);
  assert_int_equal(n, 3);
  assert_ptr_equal(raw, d.buf + 2);
  assert_int_equal(dgw_field_raw(d.buf, d.len, "/0", &raw, &n),
                   DGW_ERR_NOT_FOUND);
  free(d.buf);
}

static void test_string_escapes(void **state) {
  (void)state;
  expect_str("{\"s\":\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"}", "/s", "\"\\/\b\f\n\r\t",
             8);
  expect_str("[\"\\u0041\\u00e9\\u20AC\"]", "/0", "A\xc3\xa9\xe2\x82\xac", 6);
  /* U+1F600 from its surrogate pair; U+10FFFF, the highest. */
  expect_str("[\"\\ud83d\\ude00\"]", "/0", "\xf0\x9f\x98\x80", 4);
  expect_str("[\"\\uDBFF\\uDFFF\"]", "/0", "\xf4\x8f\xbf\xbf", 4);
  /* U+1DA20 after a 2-byte escape (json-c 0.16 reads this pair as U+FFFD;
   * the field fuzzer found the difference). */
  expect_str("[\"\\u00e9\\ud836\\ude20\\n\"]", "/0",
             "\xc3\xa9\xf0\x9d\xa8\xa0\n", 7);
  expect_str("[\"a\\u0000b\"]", "/0", "a\0b", 3);
  expect_str("[\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"]", "/0",
             "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 11);
  expect_str("[\"\"]", "/0", "", 0);
  /* Raw UTF-8 passes through untouched. */
  expect_str("[\"caf\xc3\xa9\"]", "/0", "caf\xc3\xa9", 5);

  /* Unpaired surrogates are an error, in every position. */
  assert_int_equal(rc_of("[\"\\ud83d\"]", "/0"), DGW_OK);
  static const char *const lone[] = {
      "[\"\\ud83d\"]",        "[\"\\ude00\"]",        "[\"a\\ud83dx\"]",
      "[\"\\ud83d\\u0041\"]", "[\"\\ud83d\\ud83d\"]", "[\"\\ude00\\ud83d\"]",
      "[\"\\ud83d\\n\"]",
  };
  for (size_t k = 0; k < sizeof lone / sizeof lone[0]; k++) {
    struct doc d = doc_new(lone[k]);
    char buf[32];
    const char *s;
    size_t n;

    assert_int_equal(dgw_field_string(d.buf, d.len, "/0", buf, sizeof buf, &n),
                     DGW_ERR_JSON);
    assert_int_equal(
        dgw_field_string_view(d.buf, d.len, "/0", buf, sizeof buf, &s, &n),
        DGW_ERR_JSON);
    free(d.buf);
  }

  /* Invalid escapes make the text invalid. */
  static const char *const bad[] = {
      "[\"\\x\"]",  "[\"\\u12\"]", "[\"\\u12g4\"]", "[\"\\U0041\"]",
      "[\"\\\"]",   "[\"\\'\"]",   "[\"\\0\"]",     "[\"a\tb\"]",
      "[\"a\nb\"]", "[\"\x01\"]",
  };
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++)
    if (rc_of(bad[k], "/0") != DGW_ERR_JSON)
      fail_msg("%s accepted", bad[k]);
}

static void test_string_buffer(void **state) {
  const char *t = "{\"plain\":\"hello\",\"esc\":\"h\\u00e9llo\",\"e\":\"\"}";
  struct doc d = doc_new(t);
  char buf[16];
  const char *s = NULL;
  size_t n = 0;

  (void)state;
  /* Length query, then exact fit, then one byte short. */
  assert_int_equal(dgw_field_string(d.buf, d.len, "/esc", NULL, 0, &n),
                   DGW_ERR_BUFFER_TOO_SMALL);
  assert_int_equal(n, 6);
  assert_int_equal(dgw_field_string(d.buf, d.len, "/esc", buf, 7, &n), DGW_OK);
  assert_string_equal(buf, "h\xc3\xa9llo");
  n = 0;
  assert_int_equal(dgw_field_string(d.buf, d.len, "/esc", buf, 6, &n),
                   DGW_ERR_BUFFER_TOO_SMALL);
  assert_int_equal(n, 6);
  assert_int_equal(dgw_field_string(d.buf, d.len, "/e", NULL, 0, &n),
                   DGW_ERR_BUFFER_TOO_SMALL);
  assert_int_equal(n, 0);
  assert_int_equal(dgw_field_string(d.buf, d.len, "/e", buf, 1, &n), DGW_OK);
  assert_int_equal(n, 0);
  assert_string_equal(buf, "");
  assert_int_equal(dgw_field_string(d.buf, d.len, "/e", NULL, 1, &n),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_field_string(d.buf, d.len, "/e", buf, 1, NULL),
                   DGW_ERR_INVALID_ARGUMENT);

  /* The view borrows a plain string, decodes one with escapes. */
  assert_int_equal(
      dgw_field_string_view(d.buf, d.len, "/plain", NULL, 0, &s, &n), DGW_OK);
  assert_ptr_equal(s, d.buf + 10);
  assert_int_equal(n, 5);
  s = NULL;
  assert_int_equal(dgw_field_string_view(d.buf, d.len, "/esc", NULL, 0, &s, &n),
                   DGW_ERR_BUFFER_TOO_SMALL);
  assert_null(s);
  assert_int_equal(n, 6);
  assert_int_equal(
      dgw_field_string_view(d.buf, d.len, "/esc", buf, sizeof buf, &s, &n),
      DGW_OK);
  assert_ptr_equal(s, buf);
  assert_int_equal(n, 6);
  assert_memory_equal(s, "h\xc3\xa9llo", 7);
  assert_int_equal(dgw_field_string_view(d.buf, d.len, "/e", NULL, 0, &s, &n),
                   DGW_OK);
  assert_int_equal(n, 0);
  free(d.buf);
}

static void test_int64(void **state) {
  static const struct {
    const char *json;
    int rc;
    int64_t value;
  } cases[] = {
      {"[0]", DGW_OK, 0},
      {"[-0]", DGW_OK, 0},
      {"[7]", DGW_OK, 7},
      {"[-7]", DGW_OK, -7},
      {"[9223372036854775807]", DGW_OK, INT64_MAX},
      {"[-9223372036854775808]", DGW_OK, INT64_MIN},
      {"[9223372036854775808]", DGW_ERR_RANGE, 0},
      {"[-9223372036854775809]", DGW_ERR_RANGE, 0},
      {"[99999999999999999999999]", DGW_ERR_RANGE, 0},
      {"[1.0]", DGW_ERR_TYPE, 0},
      {"[1e3]", DGW_ERR_TYPE, 0},
      {"[1E+3]", DGW_ERR_TYPE, 0},
      {"[-0.0]", DGW_ERR_TYPE, 0},
      {"[\"7\"]", DGW_ERR_TYPE, 0},
      {"[true]", DGW_ERR_TYPE, 0},
      {"[null]", DGW_ERR_TYPE, 0},
      {"[[]]", DGW_ERR_TYPE, 0},
      {"[01]", DGW_ERR_JSON, 0},
      {"[+1]", DGW_ERR_JSON, 0},
      {"[-]", DGW_ERR_JSON, 0},
      {"[1.]", DGW_ERR_JSON, 0},
      {"[.5]", DGW_ERR_JSON, 0},
      {"[1e]", DGW_ERR_JSON, 0},
      {"[0x10]", DGW_ERR_JSON, 0},
      {"[NaN]", DGW_ERR_JSON, 0},
      {"[Infinity]", DGW_ERR_JSON, 0},
  };

  (void)state;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int rc;
    int64_t v = int64_of(cases[k].json, "/0", &rc);

    if (rc != cases[k].rc)
      fail_msg("%s: rc %d, want %d", cases[k].json, rc, cases[k].rc);
    if (rc == DGW_OK)
      assert_true(v == cases[k].value);
    else
      assert_true(v == 12345); /* untouched */
  }
}

static void test_uint64(void **state) {
  static const struct {
    const char *json;
    int rc;
    uint64_t value;
  } cases[] = {
      {"[\"0\"]", DGW_OK, 0},
      {"[\"1024907412345678901\"]", DGW_OK, UINT64_C(1024907412345678901)},
      {"[\"18446744073709551615\"]", DGW_OK, UINT64_MAX},
      {"[\"18446744073709551616\"]", DGW_ERR_RANGE, 0},
      {"[\"99999999999999999999\"]", DGW_ERR_RANGE, 0},
      {"[\"100000000000000000000\"]", DGW_ERR_RANGE, 0},
      {"[\"\"]", DGW_ERR_TYPE, 0},
      {"[\"01\"]", DGW_ERR_TYPE, 0},
      {"[\"-1\"]", DGW_ERR_TYPE, 0},
      {"[\"+1\"]", DGW_ERR_TYPE, 0},
      {"[\" 1\"]", DGW_ERR_TYPE, 0},
      {"[\"1 \"]", DGW_ERR_TYPE, 0},
      {"[\"1.0\"]", DGW_ERR_TYPE, 0},
      {"[\"12a\"]", DGW_ERR_TYPE, 0},
      {"[\"\\u0031\"]", DGW_ERR_TYPE, 0},
      {"[0]", DGW_OK, 0},
      {"[-0]", DGW_OK, 0},
      {"[42]", DGW_OK, 42},
      {"[18446744073709551615]", DGW_OK, UINT64_MAX},
      {"[18446744073709551616]", DGW_ERR_RANGE, 0},
      {"[-1]", DGW_ERR_RANGE, 0},
      {"[1.5]", DGW_ERR_TYPE, 0},
      {"[-1.5]", DGW_ERR_TYPE, 0},
      {"[1e2]", DGW_ERR_TYPE, 0},
      {"[null]", DGW_ERR_TYPE, 0},
      {"[false]", DGW_ERR_TYPE, 0},
      {"[{}]", DGW_ERR_TYPE, 0},
  };

  (void)state;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    int rc;
    uint64_t v = uint64_of(cases[k].json, "/0", &rc);

    if (rc != cases[k].rc)
      fail_msg("%s: rc %d, want %d", cases[k].json, rc, cases[k].rc);
    if (rc == DGW_OK)
      assert_true(v == cases[k].value);
    else
      assert_true(v == 12345);
  }
}

static void test_double(void **state) {
  static const struct {
    const char *json;
    double value;
  } cases[] = {
      {"[0]", 0.0},
      {"[-0.0]", -0.0},
      {"[1.5]", 1.5},
      {"[-2.5e-3]", -2.5e-3},
      {"[1E+2]", 100.0},
      {"[1e308]", 1e308},
      {"[0.1]", 0.1},
      {"[1234567890123456789012345678901234567890123456789012345678901234567"
       "890.5]",
       1234567890123456789012345678901234567890123456789012345678901234567890.5},
  };

  (void)state;
  for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
    struct doc d = doc_new(cases[k].json);
    double v;

    assert_int_equal(dgw_field_double(d.buf, d.len, "/0", &v), DGW_OK);
    assert_true(v == cases[k].value);
    free(d.buf);
  }
}

/* --------------------------------------------------------- pointers */

static void test_pointer_syntax(void **state) {
  const char *t = "{\"a/b\":1,\"m~n\":2,\"~1\":3,\"\":4,\" \":5,\"~\":6,"
                  "\"/\":7,\"x\":{\"\":{\"\":8}},\"~01\":9}";
  int rc;

  (void)state;
  assert_int_equal(int64_of(t, "/a~1b", &rc), 1);
  assert_int_equal(rc, DGW_OK);
  assert_int_equal(int64_of(t, "/m~0n", &rc), 2);
  assert_int_equal(int64_of(t, "/~01", &rc), 3); /* "~1", not "/" */
  assert_int_equal(int64_of(t, "/", &rc), 4);
  assert_int_equal(int64_of(t, "/ ", &rc), 5);
  assert_int_equal(int64_of(t, "/~0", &rc), 6);
  assert_int_equal(int64_of(t, "/~1", &rc), 7);
  assert_int_equal(int64_of(t, "/x//", &rc), 8);
  assert_int_equal(int64_of(t, "/~001", &rc), 9);
  assert_int_equal(rc, DGW_OK);
  assert_int_equal(rc_of(t, "/a/b"), DGW_ERR_NOT_FOUND);
  assert_int_equal(rc_of(t, "/m~n"), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(rc_of(t, "/~"), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(rc_of(t, "/~2"), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(rc_of(t, "a"), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(rc_of(t, "#/a"), DGW_ERR_INVALID_ARGUMENT);
  /* A bad pointer is refused before the text is looked at. */
  assert_int_equal(rc_of("{", "/~"), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(rc_of("{", "/a"), DGW_ERR_JSON);

  /* Keys compare decoded. */
  assert_int_equal(int64_of("{\"\\u0061\\/\":1}", "/a~1", &rc), 1);
  assert_int_equal(rc, DGW_OK);
  assert_int_equal(int64_of("{\"caf\\u00e9\":1}", "/caf\xc3\xa9", &rc), 1);
  assert_int_equal(rc, DGW_OK);
  assert_int_equal(int64_of("{\"\\ud83d\\ude00\":1}", "/\xf0\x9f\x98\x80", &rc),
                   1);
  assert_int_equal(rc, DGW_OK);
  /* An unpaired surrogate in a key reads as U+FFFD, as json-c stores it. */
  assert_int_equal(int64_of("{\"\\ud83dx\":1}", "/\xef\xbf\xbdx", &rc), 1);
  assert_int_equal(rc, DGW_OK);
  assert_int_equal(int64_of("{\"a\\u0000b\":1}", "/a", &rc), 12345);
  assert_int_equal(rc, DGW_ERR_NOT_FOUND);
  /* Prefixes are not matches. */
  assert_int_equal(rc_of("{\"ab\":1}", "/a"), DGW_ERR_NOT_FOUND);
  assert_int_equal(rc_of("{\"a\":1}", "/ab"), DGW_ERR_NOT_FOUND);
  assert_int_equal(rc_of("{\"a\\u0062\":1}", "/a"), DGW_ERR_NOT_FOUND);
  assert_int_equal(rc_of("{\"a\\u0062\":1}", "/abc"), DGW_ERR_NOT_FOUND);
  assert_int_equal(rc_of("{\"a~b\":1}", "/a~0"), DGW_ERR_NOT_FOUND);

  /* Arguments. */
  int64_t v;
  assert_int_equal(dgw_field_int64(NULL, 1, "", &v), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_field_int64(NULL, 0, "", &v), DGW_ERR_JSON);
  assert_int_equal(dgw_field_int64("1", 1, NULL, &v), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_field_int64("1", 1, "", NULL), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_field_present(NULL, 0, "/a"), DGW_ERR_JSON);
}

static void test_array_index(void **state) {
  const char *t = "[10,11,12,13,14,15,16,17,18,19,20,21]";
  int rc;

  (void)state;
  assert_int_equal(int64_of(t, "/0", &rc), 10);
  assert_int_equal(int64_of(t, "/11", &rc), 21);
  assert_int_equal(rc, DGW_OK);
  static const char *const none[] = {
      "/12",
      "/-",
      "/01",
      "/00",
      "/+1",
      "/-1",
      "/1a",
      "/ 1",
      "/1 ",
      "/",
      "/0x1",
      "/1e1",
      "/~01",
      "/18446744073709551616",
      "/99999999999999999999999999",
  };
  for (size_t k = 0; k < sizeof none / sizeof none[0]; k++)
    if (rc_of(t, none[k]) != DGW_ERR_NOT_FOUND)
      fail_msg("%s found", none[k]);
  assert_int_equal(rc_of("[]", "/0"), DGW_ERR_NOT_FOUND);
  assert_int_equal(int64_of("[[],[[5]]]", "/1/0/0", &rc), 5);
  assert_int_equal(rc, DGW_OK);
  /* Through a scalar, into an object with an index. */
  assert_int_equal(rc_of("[1]", "/0/0"), DGW_ERR_NOT_FOUND);
  assert_int_equal(rc_of("[\"ab\"]", "/0/0"), DGW_ERR_NOT_FOUND);
  assert_int_equal(rc_of("{\"0\":1}", "/0"), DGW_OK);
  assert_int_equal(rc_of("{\"01\":1}", "/01"), DGW_OK);
  assert_int_equal(rc_of("{\"-\":1}", "/-"), DGW_OK);
}

/* ------------------------------------------------ structure, duplicates */

static void test_nested_skipping(void **state) {
  /* Strings full of structure bytes on the way to the target. */
  const char *t =
      "{\"a\":\"}\",\"b\":\"]\",\"c\":\"{\\\"x\\\":1}\",\"d\":\"\\\\\","
      "\"e\":\"\\\\\\\"\",\"f\":[{\"g\":[\"}]\",{\"h\":\"\\\\\"}]}],"
      "\"k\":{\"k\":{\"k\":\"deep\"}},\"z\":\"end\"}";
  int rc;

  (void)state;
  expect_str(t, "/z", "end", 3);
  expect_str(t, "/k/k/k", "deep", 4);
  expect_str(t, "/f/0/g/1/h", "\\", 1);
  expect_str(t, "/e", "\\\"", 2);
  expect_str(t, "/c", "{\"x\":1}", 7);
  assert_int_equal(rc_of(t, "/c/x"), DGW_ERR_NOT_FOUND);
  assert_int_equal(rc_of(t, "/k/x"), DGW_ERR_NOT_FOUND);
  (void)rc;

  /* Depth: 511 nested arrays are accepted, 512 are not. */
  char *deep = malloc(2 * 512 + 1);
  assert_non_null(deep);
  for (size_t levels = 510; levels <= 512; levels++) {
    memset(deep, '[', levels);
    memset(deep + levels, ']', levels);
    rc = common_rc(deep, 2 * levels, "");
    assert_int_equal(rc, levels <= DGW_FIELD_MAX_DEPTH ? DGW_OK : DGW_ERR_JSON);
    rc = common_rc(deep, 2 * levels, "/0/0/0");
    assert_int_equal(rc, levels <= DGW_FIELD_MAX_DEPTH ? DGW_OK : DGW_ERR_JSON);
  }
  free(deep);
}

static void test_duplicates(void **state) {
  int rc;

  (void)state;
  /* The last occurrence wins, as in json-c. */
  assert_int_equal(int64_of("{\"a\":1,\"a\":2}", "/a", &rc), 2);
  assert_int_equal(rc, DGW_OK);
  assert_int_equal(int64_of("{\"a\":1,\"b\":0,\"a\":3,\"c\":0}", "/a", &rc), 3);
  assert_int_equal(int64_of("{\"a\":{\"x\":1},\"a\":{\"y\":2}}", "/a/y", &rc),
                   2);
  assert_int_equal(rc_of("{\"a\":{\"x\":1},\"a\":{\"y\":2}}", "/a/x"),
                   DGW_ERR_NOT_FOUND);
  /* Escaped and plain spellings of one key are duplicates. */
  assert_int_equal(int64_of("{\"a\":1,\"\\u0061\":4}", "/a", &rc), 4);
  assert_int_equal(int64_of("{\"\\u0061\":1,\"a\":5}", "/a", &rc), 5);
  /* The winner's type counts. */
  assert_int_equal(int64_of("{\"a\":1,\"a\":\"x\"}", "/a", &rc), 12345);
  assert_int_equal(rc, DGW_ERR_TYPE);
  assert_int_equal(rc_of("{\"a\":1,\"a\":null}", "/a"), DGW_OK);
  /* A later malformed member spoils an earlier match. */
  assert_int_equal(rc_of("{\"a\":1,\"b\":tru}", "/a"), DGW_ERR_JSON);
  assert_int_equal(rc_of("{\"a\":{\"b\":1,\"c\":[}}", "/a/b"), DGW_ERR_JSON);
  assert_int_equal(rc_of("[1,2,x]", "/0"), DGW_ERR_JSON);
  assert_int_equal(rc_of("{\"a\":[1,2]} x", "/a/0"), DGW_ERR_JSON);
}

static void test_whitespace(void **state) {
  const char *t =
      " \t\r\n{ \t\r\n\"a\" \t\r\n: \t\r\n[ \t\r\n1 \t\r\n, "
      "\t\r\n{ \"b\" :\"x\" } \t\r\n] \t\r\n, \"c\" : true } \t\r\n";
  const char *raw;
  size_t n;
  int rc;

  (void)state;
  assert_int_equal(int64_of(t, "/a/0", &rc), 1);
  assert_int_equal(rc, DGW_OK);
  expect_str(t, "/a/1/b", "x", 1);
  struct doc d = doc_new(t);
  assert_int_equal(dgw_field_raw(d.buf, d.len, "/a/1", &raw, &n), DGW_OK);
  assert_int_equal(n, strlen("{ \"b\" :\"x\" }"));
  free(d.buf);
  /* Only JSON whitespace. */
  assert_int_equal(rc_of("\v{}", ""), DGW_ERR_JSON);
  assert_int_equal(rc_of("{}\f", ""), DGW_ERR_JSON);
  assert_int_equal(rc_of("{\"a\":\xc2\xa0"
                         "1}",
                         "/a"),
                   DGW_ERR_JSON);
  assert_int_equal(rc_of("", ""), DGW_ERR_JSON);
  assert_int_equal(rc_of("   ", "/a"), DGW_ERR_JSON);
}

static void test_malformed(void **state) {
  static const char *const bad[] = {
      "{",        "}",     "{\"a\"}",     "{\"a\":}",   "{\"a\":1,}", "[1,]",
      "[,1]",     "{,}",   "{\"a\" 1}",   "{'a':1}",    "{a:1}",      "[1 2]",
      "[1]]",     "[[1]",  "{\"a\":1}}",  "[tru]",      "[nul]",      "[True]",
      "[1]/*c*/", "[\"a]", "{\"a\":[}",   "{\"a\":{]}", "[}",         "{]",
      "1 2",      "[1]x",  "\"a\" \"b\"", "[--1]",      "[1.e3]",     "nulll",
  };

  (void)state;
  for (size_t k = 0; k < sizeof bad / sizeof bad[0]; k++) {
    if (rc_of(bad[k], "") != DGW_ERR_JSON)
      fail_msg("%s accepted", bad[k]);
    /* Where the fault lies beside the path, a lookup may miss it. */
    int rc = rc_of(bad[k], "/a");
    if (rc != DGW_ERR_JSON && rc != DGW_ERR_NOT_FOUND)
      fail_msg("%s accepted for /a", bad[k]);
    rc = rc_of(bad[k], "/0");
    if (rc != DGW_ERR_JSON && rc != DGW_ERR_NOT_FOUND)
      fail_msg("%s accepted for /0", bad[k]);
  }
}

/* What is checked: the containers on the path member by member, the value
 * read whole, the text around the outermost value; what lies beside the
 * path only has its strings checked and its brackets counted. */
static void test_beside_the_path(void **state) {
  const char *t = "{\"a\":[1,,2],\"b\":1,\"c\":{\"d\":[}],\"e\":{\"f\":x}}";
  int rc;

  (void)state;
  assert_int_equal(int64_of(t, "/b", &rc), 1);
  assert_int_equal(rc, DGW_OK);
  assert_int_equal(rc_of(t, "/a"), DGW_ERR_JSON);
  assert_int_equal(rc_of(t, "/a/0"), DGW_ERR_JSON);
  assert_int_equal(rc_of(t, "/c"), DGW_ERR_JSON);
  assert_int_equal(rc_of(t, "/c/d"), DGW_ERR_JSON);
  assert_int_equal(rc_of(t, "/e"), DGW_ERR_JSON);
  assert_int_equal(rc_of(t, "/e/f"), DGW_ERR_JSON);
  assert_int_equal(rc_of(t, ""), DGW_ERR_JSON);
  /* Unbalanced beside the path is still an error; a bad escape is not
   * seen there. */
  assert_int_equal(rc_of("{\"a\":[[1],\"b\":1}", "/b"), DGW_ERR_JSON);
  assert_int_equal(rc_of("{\"a\":[\"\\x\"],\"b\":1}", "/b"), DGW_OK);
  assert_int_equal(rc_of("{\"a\":[\"\\\"]\"],\"b\":1}", "/b"), DGW_OK);
  assert_int_equal(rc_of("{\"a\":[\"\\\\\"],\"b\":1}", "/b"), DGW_OK);
  assert_int_equal(rc_of("{\"a\":[\"]\"],\"b\":1}", "/b"), DGW_OK);
  /* A container on the path must close with its own kind. */
  assert_int_equal(rc_of("{\"a\":[1}]}", "/a/0"), DGW_ERR_JSON);
  assert_int_equal(rc_of("{\"a\":{\"b\":1]}", "/a/b"), DGW_ERR_JSON);
}

/* Every proper prefix of every sample is an error, never a crash. */
static void test_truncated(void **state) {
  static const char *const pointers[] = {
      "",
      "/channel_id",
      "/author/id",
      "/content",
      "/mentions/1/id",
      "/roles/1/tags",
      "/guilds/1/id",
      "/numbers/13",
      "/nope",
  };

  (void)state;
  for (size_t s = 0; s < sizeof samples / sizeof samples[0]; s++) {
    size_t len = strlen(samples[s]);

    /* ready ends with whitespace: only cut inside the value. */
    while (len > 0 && strchr(" \t\r\n", samples[s][len - 1]) != NULL)
      len--;
    for (size_t cut = 0; cut < len; cut++) {
      const size_t count = sizeof pointers / sizeof pointers[0];
      char *buf = copy_exact(samples[s], cut);
      int rc;

      /* Every getter for one pointer in turn, presence for all. */
      rc = common_rc(samples[s], cut, pointers[cut % count]);
      if (rc != DGW_ERR_JSON)
        fail_msg("sample %zu cut at %zu, %s: rc %d", s, cut,
                 pointers[cut % count], rc);
      for (size_t k = 0; k < count; k++) {
        rc = dgw_field_present(buf, cut, pointers[k]);
        if (rc != DGW_ERR_JSON)
          fail_msg("sample %zu cut at %zu, %s: rc %d", s, cut, pointers[k], rc);
      }
      free(buf);
    }
  }
}

/* ------------------------------------------------ differential, json-c */

static void append_token(char *pointer, size_t cap, const char *key) {
  size_t n = strlen(pointer);

  assert_true(n + 1 < cap);
  pointer[n++] = '/';
  for (; *key != '\0'; key++) {
    assert_true(n + 3 < cap);
    if (*key == '~') {
      pointer[n++] = '~';
      pointer[n++] = '0';
    } else if (*key == '/') {
      pointer[n++] = '~';
      pointer[n++] = '1';
    } else {
      pointer[n++] = *key;
    }
  }
  pointer[n] = '\0';
}

/* Checks every getter at `pointer` against json-c's node `obj`. */
static void check_node(const struct doc *d, const char *pointer,
                       struct json_object *obj, size_t *visited) {
  enum dgw_field_type type;
  const char *raw;
  size_t raw_len, n;
  int err, b;
  int64_t i;
  uint64_t u;
  double dv;
  char sbuf[1024];

  (*visited)++;
  assert_int_equal(dgw_field_present(d->buf, d->len, pointer), 1);
  assert_int_equal(dgw_field_type(d->buf, d->len, pointer, &type), DGW_OK);
  assert_int_equal(dgw_field_raw(d->buf, d->len, pointer, &raw, &raw_len),
                   DGW_OK);
  /* The raw span parses to an equal value. */
  struct json_object *again = dgw_payload_parse(raw, raw_len, &err);
  assert_int_equal(err, DGW_OK);
  if (!json_object_equal(again, obj))
    fail_msg("%s: raw span [%.*s] differs", pointer, (int)raw_len, raw);
  json_object_put(again);

  switch (json_object_get_type(obj)) {
  case json_type_null:
    assert_int_equal(type, DGW_FIELD_NULL);
    assert_int_equal(dgw_field_null(d->buf, d->len, pointer), DGW_OK);
    break;
  case json_type_boolean:
    assert_int_equal(type, DGW_FIELD_BOOL);
    assert_int_equal(dgw_field_bool(d->buf, d->len, pointer, &b), DGW_OK);
    assert_int_equal(b, json_object_get_boolean(obj));
    break;
  case json_type_double:
    assert_int_equal(type, DGW_FIELD_NUMBER);
    assert_int_equal(dgw_field_double(d->buf, d->len, pointer, &dv), DGW_OK);
    assert_true(dv == json_object_get_double(obj));
    assert_int_equal(dgw_field_int64(d->buf, d->len, pointer, &i),
                     DGW_ERR_TYPE);
    break;
  case json_type_int:
    assert_int_equal(type, DGW_FIELD_NUMBER);
    assert_int_equal(dgw_field_double(d->buf, d->len, pointer, &dv), DGW_OK);
    if (dgw_field_int64(d->buf, d->len, pointer, &i) == DGW_OK) {
      assert_true(i == json_object_get_int64(obj));
      assert_true(dv == json_object_get_double(obj));
    } else if (dgw_field_uint64(d->buf, d->len, pointer, &u) == DGW_OK) {
      /* Beyond INT64_MAX: json-c keeps those unsigned. */
      assert_true(u == json_object_get_uint64(obj));
      assert_true(u > (uint64_t)INT64_MAX);
      assert_true(dv == json_object_get_double(obj));
    } else {
      /* Beyond both: json-c clamps, dgw refuses with DGW_ERR_RANGE. */
      assert_int_equal(dgw_field_uint64(d->buf, d->len, pointer, &u),
                       DGW_ERR_RANGE);
      assert_true(json_object_get_uint64(obj) == UINT64_MAX ||
                  json_object_get_int64(obj) == INT64_MIN);
    }
    break;
  case json_type_string: {
    const char *s = json_object_get_string(obj);
    int slen = json_object_get_string_len(obj);
    const char *view;

    assert_int_equal(type, DGW_FIELD_STRING);
    assert_int_equal(
        dgw_field_string(d->buf, d->len, pointer, sbuf, sizeof sbuf, &n),
        DGW_OK);
    assert_int_equal(n, (size_t)slen);
    assert_memory_equal(sbuf, s, n);
    assert_int_equal(dgw_field_string_view(d->buf, d->len, pointer, sbuf,
                                           sizeof sbuf, &view, &n),
                     DGW_OK);
    assert_int_equal(n, (size_t)slen);
    assert_memory_equal(view, s, n);
    /* A string of canonical digits reads as a uint64 like strtoull. */
    if (slen > 0 && slen <= 19 && strspn(s, "0123456789") == (size_t)slen &&
        (s[0] != '0' || slen == 1)) {
      assert_int_equal(dgw_field_uint64(d->buf, d->len, pointer, &u), DGW_OK);
      assert_true(u == strtoull(s, NULL, 10));
    }
    break;
  }
  case json_type_array: {
    size_t len = json_object_array_length(obj);

    assert_int_equal(type, DGW_FIELD_ARRAY);
    assert_int_equal(dgw_field_count(d->buf, d->len, pointer, &n), DGW_OK);
    assert_int_equal(n, len);
    for (size_t k = 0; k < len; k++) {
      char sub[512], index[24];

      snprintf(index, sizeof index, "%zu", k);
      snprintf(sub, sizeof sub, "%s", pointer);
      append_token(sub, sizeof sub, index);
      check_node(d, sub, json_object_array_get_idx(obj, k), visited);
    }
    /* One past the end is absent. */
    char past[512], index[24];
    snprintf(index, sizeof index, "%zu", len);
    snprintf(past, sizeof past, "%s", pointer);
    append_token(past, sizeof past, index);
    assert_int_equal(dgw_field_present(d->buf, d->len, past), 0);
    break;
  }
  case json_type_object: {
    assert_int_equal(type, DGW_FIELD_OBJECT);
    json_object_object_foreach(obj, key, child) {
      char sub[512];

      snprintf(sub, sizeof sub, "%s", pointer);
      append_token(sub, sizeof sub, key);
      check_node(d, sub, child, visited);
    }
    char absent[512];
    snprintf(absent, sizeof absent, "%s", pointer);
    append_token(absent, sizeof absent, "no such key");
    assert_int_equal(dgw_field_present(d->buf, d->len, absent), 0);
    break;
  }
  }
}

static void differential(const char *text, size_t min_nodes) {
  struct doc d = doc_new(text);
  int err;
  struct json_object *root = dgw_payload_parse(d.buf, d.len, &err);
  size_t visited = 0;

  assert_int_equal(err, DGW_OK);
  check_node(&d, "", root, &visited);
  if (visited < min_nodes)
    fail_msg("visited %zu nodes, want %zu", visited, min_nodes);
  json_object_put(root);
  free(d.buf);
}

static void test_differential_samples(void **state) {
  (void)state;
  differential(message_create, 75);
  differential(guild_create, 120);
  differential(ready, 25);
  differential("{\"a\":1,\"a\":{\"b\":[1,{\"c\":2},\"x\"]},\"b\":2,\"b\":null}",
               6);
  differential("[[],{},[[{}]],\"\",0,-0,1.5e1]", 10);
}

/* Escaped quotes and runs of backslashes at every offset of the 64-byte
 * blocks the skip beside the path works in, with brackets in strings. */
static void test_skip_block_edges(void **state) {
  static const char *const escapes[] = {
      "\\\"", "\\\\", "\\\\\\\"", "\\\\\\\\", "\\u005c", "\\/",
  };
  char text[1024], filler[160];

  (void)state;
  for (size_t e = 0; e < sizeof escapes / sizeof escapes[0]; e++)
    for (size_t off = 0; off < 140; off++) {
      memset(filler, 'x', off);
      filler[off] = '\0';
      snprintf(
          text, sizeof text,
          "{\"a\":[\"%s%s]}[{\",{\"k\":\"%s%s\\\"\"},[[]]],\"b\":[1,{\"c\":"
          "\"%s%s\"}],\"z\":2}",
          filler, escapes[e], escapes[e], filler, filler, escapes[e]);
      differential(text, 10);
    }
}

/* What a MESSAGE_CREATE handler reads, with the values it must see. */
static void test_message_create_fields(void **state) {
  struct doc d = doc_new(message_create);
  uint64_t channel, author, mention;
  const char *content;
  char buf[128];
  size_t n;

  (void)state;
  assert_int_equal(dgw_field_uint64(d.buf, d.len, "/channel_id", &channel),
                   DGW_OK);
  assert_true(channel == UINT64_C(1039485012345678901));
  assert_int_equal(dgw_field_uint64(d.buf, d.len, "/author/id", &author),
                   DGW_OK);
  assert_true(author == UINT64_C(1024907412345678901));
  assert_int_equal(dgw_field_uint64(d.buf, d.len, "/mentions/1/id", &mention),
                   DGW_OK);
  assert_true(mention == UINT64_C(80351110224678913));
  assert_int_equal(dgw_field_string_view(d.buf, d.len, "/content", buf,
                                         sizeof buf, &content, &n),
                   DGW_OK);
  assert_int_equal(n, strlen("hello \"world\" {[ \\ ]} \xf0\x9f\x98\x80 "
                             "caf\xc3\xa9 \xe2\x82\xac"));
  assert_memory_equal(content,
                      "hello \"world\" {[ \\ ]} \xf0\x9f\x98\x80 "
                      "caf\xc3\xa9 \xe2\x82\xac",
                      n);
  assert_int_equal(dgw_field_null(d.buf, d.len, "/referenced_message"), DGW_OK);
  assert_int_equal(dgw_field_present(d.buf, d.len, "/member/nick"), 1);
  free(d.buf);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_error_names),
      cmocka_unit_test(test_types),
      cmocka_unit_test(test_raw),
      cmocka_unit_test(test_string_escapes),
      cmocka_unit_test(test_string_buffer),
      cmocka_unit_test(test_int64),
      cmocka_unit_test(test_uint64),
      cmocka_unit_test(test_double),
      cmocka_unit_test(test_pointer_syntax),
      cmocka_unit_test(test_array_index),
      cmocka_unit_test(test_nested_skipping),
      cmocka_unit_test(test_duplicates),
      cmocka_unit_test(test_whitespace),
      cmocka_unit_test(test_malformed),
      cmocka_unit_test(test_beside_the_path),
      cmocka_unit_test(test_truncated),
      cmocka_unit_test(test_differential_samples),
      cmocka_unit_test(test_skip_block_edges),
      cmocka_unit_test(test_message_create_fields),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
