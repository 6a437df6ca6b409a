/*
 * Tests for lib/payload.c: the envelope peek, d parsing, payload encoding
 * and opcode names.  json-c serves as the reference parser.
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

#include "payload.h"

/* A peeked input that owns its exactly-sized copy (env.d points into it). */
struct peeked {
  char *buf;
  size_t len;
  int rc;
  struct dgw_envelope env;
};

static const char hello_frame[] =
    "{\"t\":null,\"s\":null,\"op\":10,\"d\":{\"heartbeat_interval\":41250,"
    "\"_trace\":[\"[\\\"gateway-prd-us-east1-b-0568\\\",{\\\"micros\\\":0.0}"
    "]\"]}}";

static const char ready_frame[] =
    "{\"t\":\"READY\",\"s\":1,\"op\":0,\"d\":{\"v\":10,\"user_settings\":{},"
    "\"user\":{\"verified\":true,\"username\":\"dgw-test\",\"mfa_enabled\":"
    "false,\"id\":\"1234567890123456789\",\"flags\":0,\"email\":null,"
    "\"discriminator\":\"0\",\"bot\":true,\"avatar\":null},"
    "\"session_type\":\"normal\",\"session_id\":"
    "\"0123456789abcdef0123456789abcdef\",\"resume_gateway_url\":"
    "\"wss://gateway-us-east1-b.discord.gg\",\"relationships\":[],"
    "\"private_channels\":[],\"presences\":[],\"guilds\":[{\"unavailable\":"
    "true,\"id\":\"1111111111111111111\"},{\"unavailable\":true,\"id\":"
    "\"2222222222222222222\"}],\"guild_join_requests\":[],"
    "\"geo_ordered_rtc_regions\":[\"us-east\",\"us-central\"],"
    "\"application\":{\"id\":\"1234567890123456789\",\"flags\":565248},"
    "\"_trace\":[\"[\\\"gateway-prd-us-east1-b-0568\\\",{\\\"micros\\\":"
    "43725,\\\"calls\\\":[]}]\"],\"shard\":[0,1]}}";

static const char message_frame[] =
    "{\"op\":0,\"s\":42,\"t\":\"MESSAGE_CREATE\",\"d\":{\"id\":"
    "\"1100000000000000001\",\"content\":\"braces }{][ and \\\"quotes\\\" "
    "\\\\ \\/ \\u0041 \\ud83d\\ude00\",\"mentions\":[],\"tts\":false,"
    "\"embeds\":[{\"fields\":[{\"name\":\"a\",\"value\":\"b\",\"inline\":"
    "true}]}],\"nonce\":-12.5e-3,\"flags\":0,\"pinned\":false}}";

static const char *const valid_frames[] = {
    hello_frame,
    ready_frame,
    message_frame,
    "{\"op\":11}",
    "{\"op\":7,\"d\":null}",
    "{\"op\":9,\"d\":false}",
    "{\"op\":1,\"d\":251}",
    "{\"t\":\"RESUMED\",\"s\":9,\"op\":0,\"d\":{\"_trace\":[\"x\"]}}",
    " \r\n\t{ \"op\" : 0 , \"d\" : [ 1 , -0.5E+3 , { } , [ ] , \"\" ] , \"s\" "
    ": 3 , \"t\" : \"X\" } \n",
};

static char *copy_exact(const char *text, size_t len) {
  char *buf = malloc(len > 0 ? len : 1);

  assert_non_null(buf);
  if (len > 0)
    memcpy(buf, text, len);
  return buf;
}

static void peek_bytes(struct peeked *pk, const char *text, size_t len) {
  pk->len = len;
  pk->buf = copy_exact(text, len);
  pk->rc = dgw_envelope_peek(pk->buf, len, &pk->env);
}

static void peek_text(struct peeked *pk, const char *text) {
  peek_bytes(pk, text, strlen(text));
}

static void peeked_free(struct peeked *pk) {
  free(pk->buf);
  pk->buf = NULL;
}

static void assert_d_span(const struct dgw_envelope *env, const char *want) {
  assert_non_null(env->d);
  assert_int_equal(env->d_len, strlen(want));
  assert_memory_equal(env->d, want, env->d_len);
}

/* Peeks `len` bytes of `text` and expects DGW_ERR_JSON and a zeroed env. */
static void expect_json_error_bytes(const char *text, size_t len) {
  struct peeked pk;

  peek_bytes(&pk, text, len);
  if (pk.rc != DGW_ERR_JSON)
    fail_msg("expected DGW_ERR_JSON, got %d for input [%.*s]", pk.rc, (int)len,
             text);
  assert_null(pk.env.d);
  assert_int_equal(pk.env.d_len, 0);
  assert_int_equal(pk.env.has_name, 0);
  assert_int_equal(pk.env.has_seq, 0);
  peeked_free(&pk);
}

static void expect_json_error(const char *text) {
  expect_json_error_bytes(text, strlen(text));
}

/* Peeks `text` and expects DGW_OK. */
static void expect_ok(struct peeked *pk, const char *text) {
  peek_text(pk, text);
  if (pk->rc != DGW_OK)
    fail_msg("expected DGW_OK, got %d for input [%s]", pk->rc, text);
}

/*
 * Parses a whole document with json-c the way dgw_payload_parse() does,
 * allowing one more level for the envelope.  Returns 1 and the object, or
 * 0 when json-c refuses the text.
 */
static int json_c_parse_document(const char *buf, size_t len,
                                 struct json_object **out) {
  struct json_tokener *tok = json_tokener_new_ex(DGW_JSON_MAX_DEPTH + 1);
  struct json_object *obj;
  enum json_tokener_error jerr;
  size_t end;

  assert_non_null(tok);
  obj = json_tokener_parse_ex(tok, buf, (int)len);
  jerr = json_tokener_get_error(tok);
  end = json_tokener_get_parse_end(tok);
  if (jerr == json_tokener_continue) {
    obj = json_tokener_parse_ex(tok, "", 1);
    jerr = json_tokener_get_error(tok);
    end = len;
  }
  json_tokener_free(tok);
  for (; jerr == json_tokener_success && end < len; end++) {
    if (!strchr(" \t\r\n", buf[end]) || buf[end] == '\0')
      jerr = json_tokener_error_parse_unexpected;
  }
  if (jerr != json_tokener_success) {
    json_object_put(obj);
    return 0;
  }
  *out = obj;
  return 1;
}

/*
 * Checks a successful peek of buf against json-c's reading of the same
 * document: json-c must accept it, and op, s, t and d must agree (the d
 * span parsed by dgw_payload_parse() equals json-c's "d").
 */
static void check_against_json_c(const char *buf, size_t len,
                                 const struct dgw_envelope *env) {
  struct json_object *doc = NULL, *v, *d;
  int err = 1;

  if (!json_c_parse_document(buf, len, &doc))
    fail_msg("peek accepted what json-c refuses: [%.*s]", (int)len, buf);
  assert_true(json_object_is_type(doc, json_type_object));

  assert_true(json_object_object_get_ex(doc, "op", &v));
  assert_true(json_object_is_type(v, json_type_int));
  assert_true(json_object_get_int64(v) == env->op);

  if (env->has_seq) {
    assert_true(json_object_object_get_ex(doc, "s", &v));
    assert_true(json_object_is_type(v, json_type_int));
    assert_true(json_object_get_int64(v) == env->seq);
  } else if (json_object_object_get_ex(doc, "s", &v)) {
    assert_null(v);
  }

  if (env->has_name) {
    assert_true(json_object_object_get_ex(doc, "t", &v));
    assert_true(json_object_is_type(v, json_type_string));
    assert_int_equal((size_t)json_object_get_string_len(v), env->name_len);
    assert_memory_equal(json_object_get_string(v), env->name, env->name_len);
    assert_int_equal(env->name[env->name_len], '\0');
  } else if (json_object_object_get_ex(doc, "t", &v)) {
    assert_null(v);
  }

  if (env->d == NULL) {
    assert_false(json_object_object_get_ex(doc, "d", &v));
  } else {
    assert_true(env->d >= buf && env->d + env->d_len <= buf + len);
    assert_true(json_object_object_get_ex(doc, "d", &v));
    d = dgw_payload_parse(env->d, env->d_len, &err);
    assert_int_equal(err, DGW_OK);
    assert_true(json_object_equal(d, v));
    json_object_put(d);
  }
  json_object_put(doc);
}

/* The HELLO frame from the protocol doc (keys t, s, op, d; "s":null,
 * "t":null; _trace inside d) -> DGW_OK, op 10, no seq, no name. */
static void test_hello_frame(void **state) {
  struct peeked pk;

  (void)state;
  expect_ok(&pk, hello_frame);
  assert_int_equal(pk.env.op, DGW_OP_HELLO);
  assert_int_equal(pk.env.has_seq, 0);
  assert_int_equal(pk.env.seq, 0);
  assert_int_equal(pk.env.has_name, 0);
  assert_int_equal(pk.env.name_len, 0);
  assert_string_equal(pk.env.name, "");
  assert_d_span(&pk.env, "{\"heartbeat_interval\":41250,\"_trace\":[\"[\\\""
                         "gateway-prd-us-east1-b-0568\\\",{\\\"micros\\\":0.0}"
                         "]\"]}");
  check_against_json_c(pk.buf, pk.len, &pk.env);
  peeked_free(&pk);
}

/* A READY-like dispatch (t "READY", s 1, nested d) -> DGW_OK. */
static void test_ready_dispatch(void **state) {
  struct peeked pk;
  const char *d;

  (void)state;
  expect_ok(&pk, ready_frame);
  assert_int_equal(pk.env.op, DGW_OP_DISPATCH);
  assert_int_equal(pk.env.has_seq, 1);
  assert_true(pk.env.seq == 1);
  assert_int_equal(pk.env.has_name, 1);
  assert_string_equal(pk.env.name, "READY");
  assert_int_equal(pk.env.name_len, 5);
  /* d runs from after "d": to just before the envelope's final } */
  d = strstr(ready_frame, "\"d\":") + 4;
  assert_int_equal(pk.env.d_len, strlen(d) - 1);
  assert_memory_equal(pk.env.d, d, pk.env.d_len);
  check_against_json_c(pk.buf, pk.len, &pk.env);
  peeked_free(&pk);
}

/* {"op":11} (heartbeat ACK without d) -> DGW_OK, d == NULL, d_len 0; and
 * dgw_payload_parse(NULL, 0) reads the absent d as null (NULL, DGW_OK). */
static void test_heartbeat_ack_without_d(void **state) {
  struct peeked pk;
  int err = 1;

  (void)state;
  expect_ok(&pk, "{\"op\":11}");
  assert_int_equal(pk.env.op, DGW_OP_HEARTBEAT_ACK);
  assert_null(pk.env.d);
  assert_int_equal(pk.env.d_len, 0);
  assert_null(dgw_payload_parse(pk.env.d, pk.env.d_len, &err));
  assert_int_equal(err, DGW_OK);
  peeked_free(&pk);
}

/* {"op":7,"d":null} -> DGW_OK, d span is the text "null". */
static void test_reconnect_d_null(void **state) {
  struct peeked pk;
  int err = 1;

  (void)state;
  expect_ok(&pk, "{\"op\":7,\"d\":null}");
  assert_int_equal(pk.env.op, DGW_OP_RECONNECT);
  assert_d_span(&pk.env, "null");
  assert_null(dgw_payload_parse(pk.env.d, pk.env.d_len, &err));
  assert_int_equal(err, DGW_OK);
  peeked_free(&pk);
}

/* {"op":9,"d":false} -> DGW_OK, d span "false", parses to boolean false. */
static void test_invalid_session_d_false(void **state) {
  struct peeked pk;
  struct json_object *d;
  int err = 1;

  (void)state;
  expect_ok(&pk, "{\"op\":9,\"d\":false}");
  assert_int_equal(pk.env.op, DGW_OP_INVALID_SESSION);
  assert_d_span(&pk.env, "false");
  d = dgw_payload_parse(pk.env.d, pk.env.d_len, &err);
  assert_int_equal(err, DGW_OK);
  assert_true(json_object_is_type(d, json_type_boolean));
  assert_false(json_object_get_boolean(d));
  json_object_put(d);
  peeked_free(&pk);
}

/* All 24 orders of op/d/s/t in one dispatch -> DGW_OK with identical
 * results. */
static void test_key_order_permutations(void **state) {
  static const char *const members[4] = {
      "\"op\":0", "\"d\":{\"id\":\"1\",\"content\":\"}{\"}", "\"s\":42",
      "\"t\":\"MESSAGE_CREATE\""};
  int a, b, c, e, count = 0;

  (void)state;
  for (a = 0; a < 4; a++)
    for (b = 0; b < 4; b++)
      for (c = 0; c < 4; c++)
        for (e = 0; e < 4; e++) {
          char text[256];
          struct peeked pk;

          if (a == b || a == c || a == e || b == c || b == e || c == e)
            continue;
          snprintf(text, sizeof text, "{%s,%s,%s,%s}", members[a], members[b],
                   members[c], members[e]);
          expect_ok(&pk, text);
          assert_int_equal(pk.env.op, 0);
          assert_true(pk.env.has_seq && pk.env.seq == 42);
          assert_string_equal(pk.env.name, "MESSAGE_CREATE");
          assert_d_span(&pk.env, "{\"id\":\"1\",\"content\":\"}{\"}");
          check_against_json_c(pk.buf, pk.len, &pk.env);
          peeked_free(&pk);
          count++;
        }
  assert_int_equal(count, 24);
}

/* Strings inside d with \" \\ \/ \u0041, a surrogate pair, a lone
 * surrogate and braces "{}[]" -> DGW_OK, the d span ends at the real end. */
static void test_escapes_in_d(void **state) {
  static const char *const ds[] = {
      "{\"a\":\"\\\" \\\\ \\/ \\u0041\",\"b\":\"{}[]\",\"c\":[\"]\"]}",
      "[\"\\ud83d\\ude00\",\"\\ud800\",\"\\uDC00x\",\"\\b\\f\\n\\r\\t\"]",
      "\"}\\\\\"",
      "{\"\\\"}\":\"\\\\\"}",
  };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof ds / sizeof ds[0]; i++) {
    char text[256];
    struct peeked pk;

    snprintf(text, sizeof text, "{\"op\":0,\"d\":%s,\"s\":1}", ds[i]);
    expect_ok(&pk, text);
    assert_d_span(&pk.env, ds[i]);
    check_against_json_c(pk.buf, pk.len, &pk.env);
    peeked_free(&pk);
  }
}

/* Escaped t values -> DGW_OK with the decoded name; "a\u0000b" and a high
 * surrogate followed by a malformed escape -> DGW_ERR_JSON. */
static void test_escaped_name(void **state) {
  static const struct {
    const char *t;
    const char *name;
  } cases[] = {
      {"MESSAGE\\u005fCREATE", "MESSAGE_CREATE"},
      {"\\u004D\\u0045", "ME"},
      {"\\u00e9", "\xC3\xA9"},
      {"\\u20AC", "\xE2\x82\xAC"},
      {"\\ud83d\\ude00", "\xF0\x9F\x98\x80"},
      {"\\ud800", "\xEF\xBF\xBD"},   /* lone high -> U+FFFD */
      {"\\udc00x", "\xEF\xBF\xBDx"}, /* lone low -> U+FFFD */
      {"\\ud800\\u0041", "\xEF\xBF\xBD"
                         "A"}, /* high, then no low */
      {"\\ud800\\ud800\\udc00", "\xEF\xBF\xBD\xF0\x90\x80\x80"},
      {"\\\"\\\\\\/\\b\\f\\n\\r\\t", "\"\\/\b\f\n\r\t"},
      {"", ""},
      {"\xC3\xA9", "\xC3\xA9"}, /* raw UTF-8 is copied */
  };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char text[256];
    struct peeked pk;

    snprintf(text, sizeof text, "{\"op\":0,\"t\":\"%s\"}", cases[i].t);
    expect_ok(&pk, text);
    assert_int_equal(pk.env.has_name, 1);
    assert_int_equal(pk.env.name_len, strlen(cases[i].name));
    assert_string_equal(pk.env.name, cases[i].name);
    check_against_json_c(pk.buf, pk.len, &pk.env);
    peeked_free(&pk);
  }
  expect_json_error("{\"op\":0,\"t\":\"a\\u0000b\"}");
  expect_json_error("{\"op\":0,\"t\":\"\\ud800\\uZZZZ\"}");
  expect_json_error("{\"op\":0,\"t\":\"\\ud800\\u00\"}");
}

/* Keys spelled with escapes ("\u006fp", "\u0074") count as op and t; a key
 * "op\u0000" is not op, so that input -> DGW_ERR_JSON (missing op). */
static void test_escaped_keys(void **state) {
  struct peeked pk;

  (void)state;
  expect_ok(&pk, "{\"\\u006fp\":3,\"\\u0074\":\"X\",\"\\u0064\":[]}");
  assert_int_equal(pk.env.op, 3);
  assert_string_equal(pk.env.name, "X");
  assert_d_span(&pk.env, "[]");
  check_against_json_c(pk.buf, pk.len, &pk.env);
  peeked_free(&pk);
  expect_json_error("{\"op\\u0000\":3}");
  expect_json_error("{\"o\":3,\"opp\":3,\"OP\":3}");
}

/* Builds {"op":0,"d":<levels nested arrays or objects>}; the innermost
 * holds a 1 when `scalar`, else it is empty.  Caller frees. */
static char *nested_payload(size_t levels, int objects, int scalar,
                            size_t *len) {
  const char *open = objects ? "{\"k\":" : "[";
  size_t open_len = strlen(open), n = 0, i;
  size_t cap = 32 + levels * (open_len + 1) + 4;
  char *buf = malloc(cap);

  assert_non_null(buf);
  memcpy(buf + n, "{\"op\":0,\"d\":", 12);
  n += 12;
  for (i = 0; i < levels; i++) {
    /* an object's innermost level needs a value: use {} when empty */
    if (objects && i + 1 == levels && !scalar) {
      memcpy(buf + n, "{", 1);
      n += 1;
    } else {
      memcpy(buf + n, open, open_len);
      n += open_len;
    }
  }
  if (scalar)
    buf[n++] = '1';
  for (i = 0; i < levels; i++)
    buf[n++] = objects ? '}' : ']';
  buf[n++] = '}';
  *len = n;
  return buf;
}

/* d nested DGW_JSON_MAX_DEPTH - 1 levels (arrays, objects, with and
 * without a scalar inside) -> DGW_OK, and the d span parses with
 * dgw_payload_parse(). */
static void test_depth_within_limit(void **state) {
  int objects, scalar;

  (void)state;
  for (objects = 0; objects < 2; objects++)
    for (scalar = 0; scalar < 2; scalar++) {
      size_t len;
      char *text =
          nested_payload(DGW_JSON_MAX_DEPTH - 1, objects, scalar, &len);
      struct peeked pk;

      peek_bytes(&pk, text, len);
      assert_int_equal(pk.rc, DGW_OK);
      assert_int_equal(pk.env.d_len, len - 13);
      check_against_json_c(pk.buf, pk.len, &pk.env);
      peeked_free(&pk);
      free(text);
    }
}

/* d nested DGW_JSON_MAX_DEPTH levels (one over, counting the envelope) and
 * a million unclosed '[' -> DGW_ERR_JSON without exhausting the stack. */
static void test_depth_over_limit(void **state) {
  int objects, scalar;
  size_t huge = 1000000, len;
  char *text;

  (void)state;
  for (objects = 0; objects < 2; objects++)
    for (scalar = 0; scalar < 2; scalar++) {
      text = nested_payload(DGW_JSON_MAX_DEPTH, objects, scalar, &len);
      expect_json_error_bytes(text, len);
      free(text);
    }
  text = malloc(huge);
  assert_non_null(text);
  memcpy(text, "{\"op\":0,\"d\":", 12);
  memset(text + 12, '[', huge - 12);
  expect_json_error_bytes(text, huge);
  free(text);
}

/* No op: {}, {"d":null}, {"s":1,"t":"X","d":{"op":1}} (op only inside d)
 * -> DGW_ERR_JSON. */
static void test_missing_op(void **state) {
  (void)state;
  expect_json_error("{}");
  expect_json_error("{\"d\":null}");
  expect_json_error("{\"s\":1,\"t\":\"X\",\"d\":{\"op\":1}}");
}

/* op as string, float, exponent, out of int range, bool, null, array,
 * object -> DGW_ERR_JSON; INT_MAX, INT_MIN, -1 and -0 -> DGW_OK. */
static void test_op_types(void **state) {
  static const char *const bad[] = {
      "\"1\"",
      "1.0",
      "1e1",
      "1E0",
      "2147483648",
      "-2147483649",
      "99999999999999999999999",
      "true",
      "null",
      "[]",
      "{}",
  };
  static const struct {
    const char *text;
    int op;
  } good[] = {
      {"2147483647", 2147483647},
      {"-2147483648", -2147483647 - 1},
      {"-1", -1},
      {"-0", 0},
      {"43", 43},
  };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[128];

    snprintf(text, sizeof text, "{\"op\":%s,\"d\":null}", bad[i]);
    expect_json_error(text);
  }
  for (i = 0; i < sizeof good / sizeof good[0]; i++) {
    char text[128];
    struct peeked pk;

    snprintf(text, sizeof text, "{\"op\":%s}", good[i].text);
    expect_ok(&pk, text);
    assert_int_equal(pk.env.op, good[i].op);
    peeked_free(&pk);
  }
}

/* s negative, float, exponent, string, bool, array, object or over
 * INT64_MAX -> DGW_ERR_JSON; 0, INT64_MAX, -0 (value 0) and null
 * -> DGW_OK. */
static void test_seq_types(void **state) {
  static const char *const bad[] = {
      "-1",
      "1.5",
      "1e3",
      "\"1\"",
      "true",
      "[]",
      "{}",
      "9223372036854775808",
      "-9223372036854775808",
  };
  static const struct {
    const char *text;
    int has_seq;
    int64_t seq;
  } good[] = {
      {"0", 1, 0},
      {"9223372036854775807", 1, INT64_MAX},
      {"-0", 1, 0},
      {"null", 0, 0},
  };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    char text[128];

    snprintf(text, sizeof text, "{\"op\":0,\"s\":%s}", bad[i]);
    expect_json_error(text);
  }
  for (i = 0; i < sizeof good / sizeof good[0]; i++) {
    char text[128];
    struct peeked pk;

    snprintf(text, sizeof text, "{\"op\":0,\"s\":%s}", good[i].text);
    expect_ok(&pk, text);
    assert_int_equal(pk.env.has_seq, good[i].has_seq);
    assert_true(pk.env.seq == good[i].seq);
    check_against_json_c(pk.buf, pk.len, &pk.env);
    peeked_free(&pk);
  }
}

/* t as number, bool, array, object -> DGW_ERR_JSON. */
static void test_name_types(void **state) {
  (void)state;
  expect_json_error("{\"op\":0,\"t\":1}");
  expect_json_error("{\"op\":0,\"t\":true}");
  expect_json_error("{\"op\":0,\"t\":[\"READY\"]}");
  expect_json_error("{\"op\":0,\"t\":{\"a\":\"READY\"}}");
}

/* t of DGW_EVENT_NAME_MAX bytes (plain, or ending in a 2-byte escape)
 * -> DGW_OK; one byte more, or a very long t -> DGW_ERR_JSON. */
static void test_name_too_long(void **state) {
  char name[2048], text[2200];
  struct peeked pk;

  (void)state;
  memset(name, 'A', DGW_EVENT_NAME_MAX);
  name[DGW_EVENT_NAME_MAX] = '\0';
  snprintf(text, sizeof text, "{\"op\":0,\"t\":\"%s\"}", name);
  expect_ok(&pk, text);
  assert_int_equal(pk.env.name_len, DGW_EVENT_NAME_MAX);
  assert_string_equal(pk.env.name, name);
  peeked_free(&pk);

  /* 125 plain bytes + \u00e9 (2 bytes) = 127 */
  memcpy(name + DGW_EVENT_NAME_MAX - 2, "\\u00e9", 7);
  snprintf(text, sizeof text, "{\"op\":0,\"t\":\"%s\"}", name);
  expect_ok(&pk, text);
  assert_int_equal(pk.env.name_len, DGW_EVENT_NAME_MAX);
  peeked_free(&pk);

  /* 126 plain bytes + \u00e9 = 128 */
  memset(name, 'A', sizeof name);
  memcpy(name + DGW_EVENT_NAME_MAX - 1, "\\u00e9", 7);
  snprintf(text, sizeof text, "{\"op\":0,\"t\":\"%s\"}", name);
  expect_json_error(text);

  memset(name, 'A', sizeof name);
  name[DGW_EVENT_NAME_MAX + 1] = '\0';
  snprintf(text, sizeof text, "{\"op\":0,\"t\":\"%s\"}", name);
  expect_json_error(text);

  memset(name, 'A', sizeof name);
  name[sizeof name - 1] = '\0';
  snprintf(text, sizeof text, "{\"op\":0,\"t\":\"%s\"}", name);
  expect_json_error(text);
}

/* Duplicate keys: the last occurrence wins, as in json-c: a later d moves
 * the span, a later null clears t and s, a later good op repairs a bad one
 * -> DGW_OK; a later bad op -> DGW_ERR_JSON. */
static void test_duplicate_keys(void **state) {
  struct peeked pk;

  (void)state;
  expect_ok(&pk, "{\"op\":1,\"d\":{\"a\":1},\"op\":2,\"d\":[2]}");
  assert_int_equal(pk.env.op, 2);
  assert_d_span(&pk.env, "[2]");
  check_against_json_c(pk.buf, pk.len, &pk.env);
  peeked_free(&pk);

  expect_ok(&pk, "{\"op\":0,\"t\":\"READY\",\"s\":5,\"t\":null,\"s\":null}");
  assert_int_equal(pk.env.has_name, 0);
  assert_string_equal(pk.env.name, "");
  assert_int_equal(pk.env.has_seq, 0);
  assert_true(pk.env.seq == 0);
  check_against_json_c(pk.buf, pk.len, &pk.env);
  peeked_free(&pk);

  expect_ok(&pk, "{\"op\":\"x\",\"t\":7,\"s\":-1,\"op\":4,\"t\":\"B\","
                 "\"s\":6}");
  assert_int_equal(pk.env.op, 4);
  assert_string_equal(pk.env.name, "B");
  assert_true(pk.env.has_seq && pk.env.seq == 6);
  check_against_json_c(pk.buf, pk.len, &pk.env);
  peeked_free(&pk);

  expect_json_error("{\"op\":1,\"op\":1.5}");
  expect_json_error("{\"op\":1,\"t\":\"A\",\"t\":2}");
}

/* JSON whitespace (space, tab, CR, LF) around every token -> DGW_OK;
 * form feed or vertical tab as whitespace -> DGW_ERR_JSON. */
static void test_whitespace_everywhere(void **state) {
  struct peeked pk;

  (void)state;
  expect_ok(&pk, " \t\r\n{ \t\r\n\"op\" \n: 0 ,\r\"d\"\t:\n{ \"a\" : [ 1 , "
                 "2 , { } , [ ] ] , \"b\" : \"\" } , \"s\" : 3 , \"t\" : "
                 "\"X\" } \r\n\t ");
  assert_int_equal(pk.env.op, 0);
  assert_d_span(&pk.env, "{ \"a\" : [ 1 , 2 , { } , [ ] ] , \"b\" : \"\" }");
  assert_true(pk.env.seq == 3);
  assert_string_equal(pk.env.name, "X");
  check_against_json_c(pk.buf, pk.len, &pk.env);
  peeked_free(&pk);
  expect_json_error("\f{\"op\":0}");
  expect_json_error("{\"op\":0,\v\"d\":1}");
  expect_json_error("{\"op\":0}\f");
}

/* Anything but whitespace after the object -> DGW_ERR_JSON. */
static void test_trailing_garbage(void **state) {
  (void)state;
  expect_json_error("{\"op\":1}x");
  expect_json_error("{\"op\":1}{}");
  expect_json_error("{\"op\":1},");
  expect_json_error("{\"op\":1}}");
  expect_json_error("{\"op\":1} 1");
  expect_json_error_bytes("{\"op\":1}\0", 9);
}

/* Empty and whitespace-only input, NULL with length 0 -> DGW_ERR_JSON;
 * NULL env, or NULL text with a length -> DGW_ERR_INVALID_ARGUMENT. */
static void test_empty_input(void **state) {
  struct dgw_envelope env;

  (void)state;
  expect_json_error_bytes("", 0);
  expect_json_error(" \r\n\t");
  assert_int_equal(dgw_envelope_peek(NULL, 0, &env), DGW_ERR_JSON);
  assert_int_equal(dgw_envelope_peek(NULL, 3, &env), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_envelope_peek("{\"op\":1}", 8, NULL),
                   DGW_ERR_INVALID_ARGUMENT);
}

/* Top-level array, string, number, literal -> DGW_ERR_JSON. */
static void test_not_an_object(void **state) {
  (void)state;
  expect_json_error("[{\"op\":1}]");
  expect_json_error("\"{\\\"op\\\":1}\"");
  expect_json_error("1");
  expect_json_error("null");
  expect_json_error("\xEF\xBB\xBF{\"op\":1}"); /* a BOM is not JSON */
}

/* Malformed JSON of every kind inside an otherwise good envelope
 * -> DGW_ERR_JSON. */
static void test_bad_syntax(void **state) {
  static const char *const bad[] = {
      "{\"op\":1,}",
      "{\"op\":1,,\"d\":1}",
      "{,\"op\":1}",
      "{\"op\" 1}",
      "{\"op\":1 \"d\":1}",
      "{'op':1}",
      "{op:1}",
      "{\"op\":01}",
      "{\"op\":1,\"d\":01}",
      "{\"op\":1,\"d\":-01}",
      "{\"op\":1,\"d\":1.}",
      "{\"op\":1,\"d\":.5}",
      "{\"op\":1,\"d\":+1}",
      "{\"op\":1,\"d\":1e}",
      "{\"op\":1,\"d\":1e+}",
      "{\"op\":1,\"d\":1.e5}",
      "{\"op\":1,\"d\":-}",
      "{\"op\":1,\"d\":--1}",
      "{\"op\":1,\"d\":0x10}",
      "{\"op\":1,\"d\":NaN}",
      "{\"op\":1,\"d\":Infinity}",
      "{\"op\":1,\"d\":-Infinity}",
      "{\"op\":1,\"d\":tru}",
      "{\"op\":1,\"d\":True}",
      "{\"op\":1,\"d\":nul}",
      "{\"op\":1,\"d\":nulll}",
      "{\"op\":1,\"d\":falsey}",
      "{\"op\":1,\"d\":\"\\x\"}",
      "{\"op\":1,\"d\":\"\\u12G4\"}",
      "{\"op\":1,\"d\":\"\\u12\"}",
      "{\"op\":1,\"d\":\"\\U0041\"}",
      "{\"op\":1,\"d\":\"\\'\"}",
      "{\"op\":1,\"d\":\"a\tb\"}",
      "{\"op\":1,\"d\":\"a\nb\"}",
      "{\"op\":1,\"d\":\"a\x1f\"}",
      "{\"op\":1,\"d\":'a'}",
      "{\"op\":1,\"d\":\"unterminated}",
      "{\"op\":1,\"d\":[1,]}",
      "{\"op\":1,\"d\":[,1]}",
      "{\"op\":1,\"d\":[1 2]}",
      "{\"op\":1,\"d\":[1:2]}",
      "{\"op\":1,\"d\":{\"a\"}}",
      "{\"op\":1,\"d\":{\"a\":}}",
      "{\"op\":1,\"d\":{\"a\" 1}}",
      "{\"op\":1,\"d\":{,}}",
      "{\"op\":1,\"d\":{\"a\":1,}}",
      "{\"op\":1,\"d\":{1:1}}",
      "{\"op\":1,\"d\":[}",
      "{\"op\":1,\"d\":{]}",
      "{\"op\":1,\"d\":{\"a\":1]}",
      "{\"op\":1,\"d\":[1}]",
      "{\"op\":1,\"d\":/*c*/1}",
      "{\"op\":1,\"d\":1//c\n}",
      "{\"op\":1,\"d\":}",
      "{\"op\":1,\"d\"}",
      "{\"op\":1,\"d\":1 1}",
      "{\"op\":1,\"t\":\"a\tb\"}",
      "{\"op\":1,\"t\":\"\\q\"}",
      "{\"op\":1,\"s\":nul}",
      "{\"op\":1,\"s\":1.}",
      "{\"op\":1,\"t\":nul}",
      "{\"op\":1.e}",
      "{\"o\np\":1}",
      "{\"op\":1",
      "{\"op\":1,",
      "{\"op\"",
      "{",
      "}",
  };
  size_t i;

  (void)state;
  for (i = 0; i < sizeof bad / sizeof bad[0]; i++)
    expect_json_error(bad[i]);
  /* a raw NUL inside a string, in d and in t */
  expect_json_error_bytes("{\"op\":1,\"d\":\"a\0b\"}", 18);
  expect_json_error_bytes("{\"op\":1,\"t\":\"a\0b\"}", 18);
}

/* Every proper prefix of each valid frame (copied into an exactly-sized
 * buffer) -> DGW_ERR_JSON; the whole frame -> DGW_OK. */
static void test_truncated_prefixes(void **state) {
  size_t i, n;

  (void)state;
  for (i = 0; i < sizeof valid_frames / sizeof valid_frames[0]; i++) {
    const char *frame = valid_frames[i];
    size_t len = strlen(frame);
    struct peeked pk;

    /* trailing whitespace would make a shorter prefix valid */
    while (len > 0 && strchr(" \t\r\n", frame[len - 1]))
      len--;
    for (n = 0; n < len; n++)
      expect_json_error_bytes(frame, n);
    peek_bytes(&pk, frame, len);
    assert_int_equal(pk.rc, DGW_OK);
    check_against_json_c(pk.buf, pk.len, &pk.env);
    peeked_free(&pk);
  }
}

/* The d span of every valid frame parsed with dgw_payload_parse() equals
 * json-c's "d" of the whole document (json_object_equal). */
static void test_d_span_matches_json_c(void **state) {
  size_t i;

  (void)state;
  for (i = 0; i < sizeof valid_frames / sizeof valid_frames[0]; i++) {
    struct peeked pk;

    expect_ok(&pk, valid_frames[i]);
    check_against_json_c(pk.buf, pk.len, &pk.env);
    peeked_free(&pk);
  }
}

static uint64_t rng_next(uint64_t *s) {
  /* xorshift64* */
  *s ^= *s >> 12;
  *s ^= *s << 25;
  *s ^= *s >> 27;
  return *s * UINT64_C(2685821657736338717);
}

static size_t rng_below(uint64_t *s, size_t n) {
  return n == 0 ? 0 : (size_t)(rng_next(s) % n);
}

/* Applies one random edit (flip a bit, overwrite, insert or delete a byte,
 * duplicate or drop a span) to buf (length *len, capacity cap). */
static void mutate(uint64_t *rng, char *buf, size_t *len, size_t cap) {
  static const char interesting[] = "{}[]\":,\\ \t\n0123456789-+.eEtrufalsn"
                                    "u\x01\x7f\x80\xff";
  size_t pos = rng_below(rng, *len + 1), span;
  char c = rng_below(rng, 4) == 0
               ? (char)rng_next(rng)
               : interesting[rng_below(rng, sizeof interesting - 1)];

  switch (rng_below(rng, 6)) {
  case 0: /* flip one bit */
    if (pos < *len)
      buf[pos] = (char)(buf[pos] ^ (1 << rng_below(rng, 8)));
    break;
  case 1: /* overwrite */
    if (pos < *len)
      buf[pos] = c;
    break;
  case 2: /* insert */
    if (*len < cap) {
      memmove(buf + pos + 1, buf + pos, *len - pos);
      buf[pos] = c;
      (*len)++;
    }
    break;
  case 3: /* delete */
    if (pos < *len) {
      memmove(buf + pos, buf + pos + 1, *len - pos - 1);
      (*len)--;
    }
    break;
  case 4: /* duplicate a span */
    span = rng_below(rng, 16);
    if (pos + span <= *len && *len + span <= cap) {
      memmove(buf + pos + span, buf + pos, *len - pos);
      (*len) += span;
    }
    break;
  default: /* drop a span */
    span = rng_below(rng, 16);
    if (pos + span <= *len) {
      memmove(buf + pos, buf + pos + span, *len - pos - span);
      (*len) -= span;
    }
    break;
  }
}

/* 20000 seeded random mutations of the valid frames: the peek never
 * crashes or reads out of bounds, and whenever it returns DGW_OK json-c
 * accepts the document and agrees on op, s, t and d.  Set
 * PAYLOAD_FUZZ_SEED to try other seeds. */
static void test_random_mutations(void **state) {
  const char *seed_env = getenv("PAYLOAD_FUZZ_SEED");
  uint64_t rng = seed_env ? strtoull(seed_env, NULL, 0) : UINT64_C(20240611);
  int i, accepted = 0, refused = 0;
  enum { iterations = 20000 };

  (void)state;
  if (rng == 0)
    rng = 1;
  for (i = 0; i < iterations; i++) {
    const char *frame = valid_frames[rng_below(&rng, sizeof valid_frames /
                                                         sizeof *valid_frames)];
    char work[4096];
    size_t len = strlen(frame);
    int edits = 1 + (int)rng_below(&rng, 3), k;
    struct peeked pk;

    memcpy(work, frame, len);
    for (k = 0; k < edits; k++)
      mutate(&rng, work, &len, sizeof work);
    peek_bytes(&pk, work, len);
    if (pk.rc == DGW_OK) {
      accepted++;
      check_against_json_c(pk.buf, pk.len, &pk.env);
    } else {
      assert_int_equal(pk.rc, DGW_ERR_JSON);
      refused++;
    }
    peeked_free(&pk);
  }
  /* both outcomes must be exercised for the test to mean anything */
  assert_true(accepted > iterations / 50);
  assert_true(refused > iterations / 2);
}

/* dgw_payload_parse on exactly-sized, non-NUL-terminated texts: a bare
 * number, literals, surrounding whitespace -> a value and DGW_OK; empty,
 * unfinished, two values, trailing garbage or NUL -> NULL and DGW_ERR_JSON;
 * NULL text with a length -> DGW_ERR_INVALID_ARGUMENT; err may be NULL. */
static void test_payload_parse(void **state) {
  static const char *const bad[] = {"",     " ",     "{",   "[1", "1 2",
                                    "[1]x", "\"abc", "nul", "-"};
  struct json_object *obj;
  char *buf;
  int err;
  size_t i;

  (void)state;
  buf = copy_exact("123", 3);
  obj = dgw_payload_parse(buf, 3, &err);
  assert_int_equal(err, DGW_OK);
  assert_true(json_object_is_type(obj, json_type_int));
  assert_int_equal(json_object_get_int(obj), 123);
  json_object_put(obj);
  free(buf);

  buf = copy_exact(" {\"a\":[true,null]} \n", 20);
  obj = dgw_payload_parse(buf, 20, &err);
  assert_int_equal(err, DGW_OK);
  assert_true(json_object_is_type(obj, json_type_object));
  json_object_put(obj);
  free(buf);

  buf = copy_exact("true", 4);
  obj = dgw_payload_parse(buf, 4, NULL);
  assert_true(json_object_get_boolean(obj));
  json_object_put(obj);
  free(buf);

  buf = copy_exact("null", 4);
  err = 1;
  assert_null(dgw_payload_parse(buf, 4, &err));
  assert_int_equal(err, DGW_OK);
  free(buf);

  for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    size_t len = strlen(bad[i]);

    buf = copy_exact(bad[i], len);
    err = 0;
    assert_null(dgw_payload_parse(buf, len, &err));
    assert_int_equal(err, DGW_ERR_JSON);
    free(buf);
  }
  buf = copy_exact("1\0", 2);
  assert_null(dgw_payload_parse(buf, 2, &err));
  assert_int_equal(err, DGW_ERR_JSON);
  free(buf);

  err = 1;
  assert_null(dgw_payload_parse(NULL, 0, &err));
  assert_int_equal(err, DGW_OK);
  assert_null(dgw_payload_parse(NULL, 3, &err));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
}

/* Strings are scanned sixteen or eight bytes at a time: a byte that ends
 * or breaks a string is found at every offset and string length, and the
 * bytes around the thresholds (0x1f, 0x20, 0x7f, 0x80, 0xff) are judged
 * one by one. */
static void test_string_scan_boundaries(void **state) {
  static const struct {
    const char *ins; /* inserted into a run of 'a' */
    size_t len;
    int ok;
  } marks[] = {
      {"\x1f", 1, 0}, {"\x01", 1, 0},    {"\"", 1, 0},   {"\\", 1, 0},
      {" ", 1, 1},    {"\x7f", 1, 1},    {"\x80", 1, 1}, {"\xff", 1, 1},
      {"\\n", 2, 1},  {"\\u00e9", 6, 1},
  };
  char buf[128];

  (void)state;
  for (size_t m = 0; m < sizeof marks / sizeof marks[0]; m++) {
    for (size_t total = 0; total <= 40; total++) {
      for (size_t at = 0; at <= total; at++) {
        struct dgw_envelope env;
        size_t n = 0;
        int rv;

        n += (size_t)snprintf(buf, sizeof buf, "{\"op\":0,\"d\":\"");
        memset(buf + n, 'a', at);
        n += at;
        memcpy(buf + n, marks[m].ins, marks[m].len);
        n += marks[m].len;
        memset(buf + n, 'a', total - at);
        n += total - at;
        memcpy(buf + n, "\"}", 2);
        n += 2;
        rv = dgw_envelope_peek(buf, n, &env);
        if (marks[m].ok) {
          assert_int_equal(rv, DGW_OK);
          assert_int_equal(env.d_len, total + marks[m].len + 2);
        } else {
          assert_int_equal(rv, DGW_ERR_JSON);
        }
      }
    }
  }
}

/* dgw_payload_parse_with() reuses one tokener: results are the same as
 * with a fresh one, also right after a failed or unfinished parse. */
static void test_payload_parse_with_reused_tokener(void **state) {
  static const char *const texts[] = {
      "{\"a\":[1,2,{\"b\":\"c\"}]}",
      "[1",
      "{\"a\":",
      "123",
      "\"x\"",
      "1 2",
      "{\"a\":[true,null,-1.5e3]}",
      "nul",
      "[[[[]]]]",
      "  null  ",
  };
  struct json_tokener *tok = dgw_payload_tokener_new();

  (void)state;
  assert_non_null(tok);
  for (int round = 0; round < 2; round++) {
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
      size_t len = strlen(texts[i]);
      char *buf = copy_exact(texts[i], len);
      int err_fresh = 7, err_reused = 7;
      struct json_object *fresh = dgw_payload_parse(buf, len, &err_fresh);
      struct json_object *reused =
          dgw_payload_parse_with(tok, buf, len, &err_reused);

      assert_int_equal(err_reused, err_fresh);
      assert_true(json_object_equal(fresh, reused));
      json_object_put(fresh);
      json_object_put(reused);
      free(buf);
    }
  }
  json_tokener_free(tok);
}

/* dgw_payload_parse on DGW_JSON_MAX_DEPTH nested arrays around a scalar
 * (deeper than any d the peek accepts) -> NULL and DGW_ERR_JSON. */
static void test_payload_parse_too_deep(void **state) {
  size_t len;
  char *text = nested_payload(DGW_JSON_MAX_DEPTH, 0, 1, &len);
  int err = 0;

  (void)state;
  /* skip {"op":0,"d": and the final } */
  assert_null(dgw_payload_parse(text + 12, len - 13, &err));
  assert_int_equal(err, DGW_ERR_JSON);
  free(text);
}

/* Encoding op 1 with d NULL -> exactly {"op":1,"d":null}; op 1 with an
 * int -> {"op":1,"d":251}; the borrowed d keeps its reference count. */
static void test_encode_heartbeat(void **state) {
  struct json_object *d;
  char *out;
  size_t len;

  (void)state;
  assert_int_equal(dgw_payload_encode(DGW_OP_HEARTBEAT, NULL,
                                      DGW_PAYLOAD_MAX_SEND, &out, &len),
                   DGW_OK);
  assert_string_equal(out, "{\"op\":1,\"d\":null}");
  assert_int_equal(len, strlen(out));
  free(out);

  d = json_object_new_int64(251);
  assert_non_null(d);
  assert_int_equal(
      dgw_payload_encode(DGW_OP_HEARTBEAT, d, DGW_PAYLOAD_MAX_SEND, &out, &len),
      DGW_OK);
  assert_string_equal(out, "{\"op\":1,\"d\":251}");
  free(out);
  /* still ours: exactly one put frees it (ASan/valgrind check) */
  assert_int_equal(json_object_put(d), 1);
}

/* A d with a URL -> slashes are not escaped ("wss://..." verbatim). */
static void test_encode_no_slash_escape(void **state) {
  static const char url[] = "wss://gateway.discord.gg/?v=10&encoding=json";
  struct json_object *d = json_object_new_object();
  char *out;
  size_t len;

  (void)state;
  assert_non_null(d);
  json_object_object_add(d, "url", json_object_new_string(url));
  assert_int_equal(dgw_payload_encode(DGW_OP_RESUME, d, 0, &out, &len), DGW_OK);
  assert_string_equal(out, "{\"op\":6,\"d\":{\"url\":\"wss://gateway.discord."
                           "gg/?v=10&encoding=json\"}}");
  assert_null(strstr(out, "\\/"));
  free(out);
  json_object_put(d);
}

/* A payload of exactly 4096 bytes -> DGW_OK; 4097 bytes
 * -> DGW_ERR_PAYLOAD_TOO_LARGE with *out NULL; the same with no limit
 * (max_len 0) -> DGW_OK; NULL out -> DGW_ERR_INVALID_ARGUMENT. */
static void test_encode_too_large(void **state) {
  /* {"op":3,"d":"<n bytes>"} is n + 15 bytes */
  char body[DGW_PAYLOAD_MAX_SEND];
  struct json_object *d;
  char *out = (char *)1;
  size_t len = 1, n = DGW_PAYLOAD_MAX_SEND - 15;

  (void)state;
  memset(body, 'x', n);
  d = json_object_new_string_len(body, (int)n);
  assert_int_equal(dgw_payload_encode(DGW_OP_PRESENCE_UPDATE, d,
                                      DGW_PAYLOAD_MAX_SEND, &out, &len),
                   DGW_OK);
  assert_int_equal(len, DGW_PAYLOAD_MAX_SEND);
  free(out);
  json_object_put(d);

  memset(body, 'x', n + 1);
  d = json_object_new_string_len(body, (int)n + 1);
  out = (char *)1;
  assert_int_equal(dgw_payload_encode(DGW_OP_PRESENCE_UPDATE, d,
                                      DGW_PAYLOAD_MAX_SEND, &out, &len),
                   DGW_ERR_PAYLOAD_TOO_LARGE);
  assert_null(out);
  assert_int_equal(len, 0);
  assert_int_equal(dgw_payload_encode(DGW_OP_PRESENCE_UPDATE, d, 0, &out, &len),
                   DGW_OK);
  assert_int_equal(len, DGW_PAYLOAD_MAX_SEND + 1);
  free(out);
  json_object_put(d);

  assert_int_equal(dgw_payload_encode(1, NULL, 0, NULL, &len),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_payload_encode(1, NULL, 0, &out, NULL),
                   DGW_ERR_INVALID_ARGUMENT);
}

/* An encoded payload peeks back to the same op and d. */
static void test_encode_round_trip(void **state) {
  struct json_object *d, *back;
  struct peeked pk;
  char *out;
  size_t len;
  int err;

  (void)state;
  d = json_tokener_parse("{\"token\":\"t\",\"session_id\":\"abc\",\"seq\":"
                         "1337,\"list\":[1,2.5,\"\\u00e9\\\"\"]}");
  assert_non_null(d);
  assert_int_equal(
      dgw_payload_encode(DGW_OP_RESUME, d, DGW_PAYLOAD_MAX_SEND, &out, &len),
      DGW_OK);
  peek_bytes(&pk, out, len);
  assert_int_equal(pk.rc, DGW_OK);
  assert_int_equal(pk.env.op, DGW_OP_RESUME);
  back = dgw_payload_parse(pk.env.d, pk.env.d_len, &err);
  assert_int_equal(err, DGW_OK);
  assert_true(json_object_equal(back, d));
  json_object_put(back);
  peeked_free(&pk);
  free(out);
  json_object_put(d);
}

/* Every opcode's name; 5, 12, -1, 44 and INT_MIN -> "UNKNOWN". */
static void test_op_name(void **state) {
  static const struct {
    int op;
    const char *name;
  } cases[] = {
      {DGW_OP_DISPATCH, "DISPATCH"},
      {DGW_OP_HEARTBEAT, "HEARTBEAT"},
      {DGW_OP_IDENTIFY, "IDENTIFY"},
      {DGW_OP_PRESENCE_UPDATE, "PRESENCE_UPDATE"},
      {DGW_OP_VOICE_STATE_UPDATE, "VOICE_STATE_UPDATE"},
      {DGW_OP_RESUME, "RESUME"},
      {DGW_OP_RECONNECT, "RECONNECT"},
      {DGW_OP_REQUEST_GUILD_MEMBERS, "REQUEST_GUILD_MEMBERS"},
      {DGW_OP_INVALID_SESSION, "INVALID_SESSION"},
      {DGW_OP_HELLO, "HELLO"},
      {DGW_OP_HEARTBEAT_ACK, "HEARTBEAT_ACK"},
      {DGW_OP_REQUEST_SOUNDBOARD_SOUNDS, "REQUEST_SOUNDBOARD_SOUNDS"},
      {DGW_OP_REQUEST_CHANNEL_INFO, "REQUEST_CHANNEL_INFO"},
      {5, "UNKNOWN"},
      {12, "UNKNOWN"},
      {-1, "UNKNOWN"},
      {44, "UNKNOWN"},
      {-2147483647 - 1, "UNKNOWN"},
  };
  size_t i;

  (void)state;
  assert_int_equal(DGW_OP_REQUEST_SOUNDBOARD_SOUNDS, 31);
  assert_int_equal(DGW_OP_REQUEST_CHANNEL_INFO, 43);
  for (i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_string_equal(dgw_op_name(cases[i].op), cases[i].name);
}

/* A dispatch the peek refuses but json-c reads keeps its s; anything
 * else is -1. */
static void test_recover_seq(void **state) {
  char name[200];
  char json[400];

  (void)state;
  memset(name, 'A', sizeof(name) - 1);
  name[sizeof(name) - 1] = '\0'; /* over DGW_EVENT_NAME_MAX */
  snprintf(json, sizeof(json), "{\"op\":0,\"s\":42,\"t\":\"%s\",\"d\":{}}",
           name);
  assert_int_equal(dgw_payload_recover_seq(json, strlen(json)), 42);
  assert_int_equal(dgw_payload_recover_seq("{\"op\":11,\"s\":42}", 17), -1);
  assert_int_equal(dgw_payload_recover_seq("{\"op\":0,\"s\":\"42\"}", 19), -1);
  assert_int_equal(dgw_payload_recover_seq("{\"op\":0,\"s\":42", 15), -1);
  assert_int_equal(dgw_payload_recover_seq(NULL, 0), -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_recover_seq),
      cmocka_unit_test(test_hello_frame),
      cmocka_unit_test(test_ready_dispatch),
      cmocka_unit_test(test_heartbeat_ack_without_d),
      cmocka_unit_test(test_reconnect_d_null),
      cmocka_unit_test(test_invalid_session_d_false),
      cmocka_unit_test(test_key_order_permutations),
      cmocka_unit_test(test_escapes_in_d),
      cmocka_unit_test(test_escaped_name),
      cmocka_unit_test(test_escaped_keys),
      cmocka_unit_test(test_depth_within_limit),
      cmocka_unit_test(test_depth_over_limit),
      cmocka_unit_test(test_missing_op),
      cmocka_unit_test(test_op_types),
      cmocka_unit_test(test_seq_types),
      cmocka_unit_test(test_name_types),
      cmocka_unit_test(test_name_too_long),
      cmocka_unit_test(test_duplicate_keys),
      cmocka_unit_test(test_whitespace_everywhere),
      cmocka_unit_test(test_trailing_garbage),
      cmocka_unit_test(test_empty_input),
      cmocka_unit_test(test_not_an_object),
      cmocka_unit_test(test_bad_syntax),
      cmocka_unit_test(test_truncated_prefixes),
      cmocka_unit_test(test_d_span_matches_json_c),
      cmocka_unit_test(test_random_mutations),
      cmocka_unit_test(test_payload_parse),
      cmocka_unit_test(test_string_scan_boundaries),
      cmocka_unit_test(test_payload_parse_with_reused_tokener),
      cmocka_unit_test(test_payload_parse_too_deep),
      cmocka_unit_test(test_encode_heartbeat),
      cmocka_unit_test(test_encode_no_slash_escape),
      cmocka_unit_test(test_encode_too_large),
      cmocka_unit_test(test_encode_round_trip),
      cmocka_unit_test(test_op_name),
  };

  return cmocka_run_group_tests_name("payload", tests, NULL, NULL);
}
