/*
 * Gateway payloads: the envelope peek, d parsing and payload encoding.
 *
 * The peek is a non-recursive JSON validator on the scanner of
 * lib/jsonscan.h (shared with the field getters).  Only the envelope's own
 * members are looked at; every other value, `d` included, is validated by
 * jsonscan_skip_value(), which keeps the kind of each open container in a
 * bit stack so a hostile payload cannot exhaust the C stack.
 */
#include "config.h"

#include "payload.h"

#include "jsonscan.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <dgw/dgw.h>

/* Flags set by decode_string(). */
#define DECODED_TRUNCATED 1u /* did not fit in the output buffer */
#define DECODED_NUL 2u       /* contained U+0000 */

/* The envelope member a key names. */
enum envelope_key { KEY_OTHER, KEY_OP, KEY_D, KEY_S, KEY_T };

/* What the last occurrence of an envelope member held. */
enum member_state { MEMBER_ABSENT, MEMBER_NULL, MEMBER_OK, MEMBER_BAD };

typedef jsonscan_cursor cursor;

/* The scanner's bit stack must hold the deepest nesting allowed here. */
typedef char depth_fits_the_bit_stack[DGW_JSON_MAX_DEPTH <= JSONSCAN_DEPTH_LIMIT
                                          ? 1
                                          : -1];

static void append(char *out, size_t cap, size_t *n, unsigned *flags,
                   const void *src, size_t len);
static void append_utf8(char *out, size_t cap, size_t *n, unsigned *flags,
                        unsigned cp);
static cursor decode_string(cursor p, cursor end, char *out, size_t cap,
                            size_t *out_len, unsigned *flags);
static enum envelope_key key_kind(const char *key, size_t len, unsigned flags);
static cursor peek_op(cursor p, cursor end, struct dgw_envelope *env,
                      enum member_state *state);
static cursor peek_seq(cursor p, cursor end, struct dgw_envelope *env,
                       enum member_state *state);
static cursor peek_name(cursor p, cursor end, struct dgw_envelope *env,
                        enum member_state *state);
static cursor skip_value(cursor p, cursor end, unsigned depth);
static int is_ws_only(const char *p, size_t len);

/* Appends len bytes to out (capacity cap, *n used) or flags truncation. */
static void append(char *out, size_t cap, size_t *n, unsigned *flags,
                   const void *src, size_t len) {
  if (len > cap - *n) {
    *flags |= DECODED_TRUNCATED;
    return;
  }
  if (len > 0)
    memcpy(out + *n, src, len);
  *n += len;
}

static void append_utf8(char *out, size_t cap, size_t *n, unsigned *flags,
                        unsigned cp) {
  unsigned char buf[4];

  append(out, cap, n, flags, buf, jsonscan_utf8_encode(cp, buf));
}

/*
 * Decodes the string whose opening quote is just before p into out (cap
 * bytes, no NUL added).  Sets *out_len to the bytes written and *flags to
 * DECODED_* bits; after DECODED_TRUNCATED the contents are meaningless, but
 * the string is still validated to its end.  Returns just past the closing
 * quote, or NULL on a syntax error.
 */
static cursor decode_string(cursor p, cursor end, char *out, size_t cap,
                            size_t *out_len, unsigned *flags) {
  size_t n = 0;

  *flags = 0;
  for (;;) {
    cursor stop = jsonscan_find_string_stop(p, end);
    unsigned cp;

    append(out, cap, &n, flags, p, (size_t)(stop - p));
    p = stop;
    if (p == end)
      return NULL;
    if (*p == '"') {
      *out_len = n;
      return p + 1;
    }
    if (*p != '\\')
      return NULL; /* a raw control byte */
    /* An unpaired surrogate becomes U+FFFD, as json-c does. */
    p = jsonscan_unescape(p, end, &cp);
    if (p == NULL)
      return NULL;
    if (cp == JSONSCAN_LONE_SURROGATE)
      cp = 0xFFFD;
    if (cp == 0)
      *flags |= DECODED_NUL;
    append_utf8(out, cap, &n, flags, cp);
  }
}

/* The values inside the envelope sit in one open container. */
static cursor skip_value(cursor p, cursor end, unsigned depth) {
  return jsonscan_skip_value(p, end, depth, DGW_JSON_MAX_DEPTH);
}

static enum envelope_key key_kind(const char *key, size_t len, unsigned flags) {
  if (flags != 0)
    return KEY_OTHER;
  if (len == 2 && key[0] == 'o' && key[1] == 'p')
    return KEY_OP;
  if (len != 1)
    return KEY_OTHER;
  switch (key[0]) {
  case 'd':
    return KEY_D;
  case 's':
    return KEY_S;
  case 't':
    return KEY_T;
  }
  return KEY_OTHER;
}

/* The peek_* functions read one envelope member's value at p (not at end)
 * and return the byte after it, or NULL on a syntax error; a value of the
 * wrong type or range is still validated, then marked MEMBER_BAD. */

static cursor peek_op(cursor p, cursor end, struct dgw_envelope *env,
                      enum member_state *state) {
  cursor q;
  int integer, negative;
  uint64_t magnitude;

  if (*p != '-' && !jsonscan_is_digit(*p)) {
    *state = MEMBER_BAD;
    return skip_value(p, end, 1);
  }
  q = jsonscan_scan_number(p, end, &integer);
  if (q == NULL)
    return NULL;
  negative = *p == '-';
  if (integer && jsonscan_integer_magnitude(p + negative, q,
                                            negative ? (uint64_t)INT_MAX + 1
                                                     : (uint64_t)INT_MAX,
                                            &magnitude)) {
    env->op = negative ? (int)-(int64_t)magnitude : (int)magnitude;
    *state = MEMBER_OK;
  } else {
    *state = MEMBER_BAD;
  }
  return q;
}

static cursor peek_seq(cursor p, cursor end, struct dgw_envelope *env,
                       enum member_state *state) {
  cursor q;
  int integer, negative;
  uint64_t magnitude;

  if (*p == 'n') {
    *state = MEMBER_NULL;
    return jsonscan_skip_literal(p, end, "null", 4);
  }
  if (*p != '-' && !jsonscan_is_digit(*p)) {
    *state = MEMBER_BAD;
    return skip_value(p, end, 1);
  }
  q = jsonscan_scan_number(p, end, &integer);
  if (q == NULL)
    return NULL;
  /* Only "-0" survives a limit of 0 among negative numbers. */
  negative = *p == '-';
  if (integer && jsonscan_integer_magnitude(p + negative, q,
                                            negative ? 0 : (uint64_t)INT64_MAX,
                                            &magnitude)) {
    env->seq = (int64_t)magnitude;
    *state = MEMBER_OK;
  } else {
    *state = MEMBER_BAD;
  }
  return q;
}

static cursor peek_name(cursor p, cursor end, struct dgw_envelope *env,
                        enum member_state *state) {
  cursor q;
  unsigned flags;

  if (*p == 'n') {
    *state = MEMBER_NULL;
    return jsonscan_skip_literal(p, end, "null", 4);
  }
  if (*p != '"') {
    *state = MEMBER_BAD;
    return skip_value(p, end, 1);
  }
  q = decode_string(p + 1, end, env->name, DGW_EVENT_NAME_MAX, &env->name_len,
                    &flags);
  *state = flags == 0 ? MEMBER_OK : MEMBER_BAD;
  return q;
}

int dgw_envelope_peek(const char *json, size_t len, struct dgw_envelope *env) {
  enum member_state op = MEMBER_ABSENT, seq = MEMBER_ABSENT;
  enum member_state name = MEMBER_ABSENT;
  cursor p, end;

  if (env == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  memset(env, 0, sizeof *env);
  env->d = NULL;
  if (json == NULL)
    return len == 0 ? DGW_ERR_JSON : DGW_ERR_INVALID_ARGUMENT;

  p = (cursor)json;
  end = p + len;
  p = jsonscan_skip_ws(p, end);
  if (p == end || *p != '{')
    goto fail;
  p = jsonscan_skip_ws(p + 1, end);
  if (p < end && *p == '}') {
    p++;
  } else {
    for (;;) {
      char key[2];
      size_t key_len = 0;
      unsigned flags;
      cursor value;

      if (p == end || *p != '"')
        goto fail;
      p = decode_string(p + 1, end, key, sizeof key, &key_len, &flags);
      if (p == NULL)
        goto fail;
      p = jsonscan_skip_ws(p, end);
      if (p == end || *p != ':')
        goto fail;
      p = jsonscan_skip_ws(p + 1, end);
      if (p == end)
        goto fail;
      switch (key_kind(key, key_len, flags)) {
      case KEY_OP:
        p = peek_op(p, end, env, &op);
        break;
      case KEY_S:
        p = peek_seq(p, end, env, &seq);
        break;
      case KEY_T:
        p = peek_name(p, end, env, &name);
        break;
      case KEY_D:
        value = p;
        p = skip_value(p, end, 1);
        if (p != NULL) {
          env->d = (const char *)value;
          env->d_len = (size_t)(p - value);
        }
        break;
      case KEY_OTHER:
        p = skip_value(p, end, 1);
        break;
      }
      if (p == NULL)
        goto fail;
      p = jsonscan_skip_ws(p, end);
      if (p == end)
        goto fail;
      if (*p == '}') {
        p++;
        break;
      }
      if (*p != ',')
        goto fail;
      p = jsonscan_skip_ws(p + 1, end);
    }
  }
  if (jsonscan_skip_ws(p, end) != end)
    goto fail;
  if (op != MEMBER_OK || seq == MEMBER_BAD || name == MEMBER_BAD)
    goto fail;

  env->has_seq = seq == MEMBER_OK;
  if (!env->has_seq)
    env->seq = 0;
  env->has_name = name == MEMBER_OK;
  if (!env->has_name)
    env->name_len = 0;
  env->name[env->name_len] = '\0';
  return DGW_OK;

fail:
  memset(env, 0, sizeof *env);
  env->d = NULL;
  return DGW_ERR_JSON;
}

static int is_ws_only(const char *p, size_t len) {
  return jsonscan_skip_ws((cursor)p, (cursor)p + len) == (cursor)p + len;
}

struct json_tokener *dgw_payload_tokener_new(void) {
  /* json-c counts the value inside the deepest container as a level, so
   * DGW_JSON_MAX_DEPTH admits DGW_JSON_MAX_DEPTH - 1 nested containers:
   * exactly what the peek allows inside the envelope. */
  return json_tokener_new_ex(DGW_JSON_MAX_DEPTH);
}

struct json_object *dgw_payload_parse_with(struct json_tokener *tok,
                                           const char *text, size_t len,
                                           int *err) {
  struct json_tokener *own = NULL;
  struct json_object *obj;
  enum json_tokener_error jerr;
  size_t off = 0;
  int unused;

  if (err == NULL)
    err = &unused;
  if (text == NULL) {
    *err = len == 0 ? DGW_OK : DGW_ERR_INVALID_ARGUMENT;
    return NULL;
  }
  if (tok == NULL && (tok = own = dgw_payload_tokener_new()) == NULL) {
    *err = DGW_ERR_NOMEM;
    return NULL;
  }
  json_tokener_reset(tok);
  /* json-c takes an int length: feed huge texts in pieces. */
  do {
    size_t piece = len - off > INT_MAX ? (size_t)INT_MAX : len - off;

    obj = json_tokener_parse_ex(tok, text + off, (int)piece);
    jerr = json_tokener_get_error(tok);
    off +=
        jerr == json_tokener_continue ? piece : json_tokener_get_parse_end(tok);
  } while (jerr == json_tokener_continue && off < len);
  if (jerr == json_tokener_continue) {
    /* A number or literal at the very end of the text waits for a
     * terminator; end the input with a NUL as json_tokener_parse() does. */
    obj = json_tokener_parse_ex(tok, "", 1);
    jerr = json_tokener_get_error(tok);
  }
  json_tokener_reset(tok); /* drop what a failed parse left half-built */
  if (own != NULL)         /* json-c's free does not take NULL */
    json_tokener_free(own);
  if (jerr != json_tokener_success || !is_ws_only(text + off, len - off)) {
    json_object_put(obj);
    *err = DGW_ERR_JSON;
    return NULL;
  }
  *err = DGW_OK;
  return obj;
}

struct json_object *dgw_payload_parse(const char *text, size_t len, int *err) {
  return dgw_payload_parse_with(NULL, text, len, err);
}

int dgw_payload_encode(int op, struct json_object *d, size_t max_len,
                       char **out, size_t *out_len) {
  struct json_object *payload, *op_obj;
  const char *text;
  size_t text_len;
  char *copy;
  int rc;

  if (out == NULL || out_len == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  *out = NULL;
  *out_len = 0;

  payload = json_object_new_object();
  if (payload == NULL)
    return DGW_ERR_NOMEM;
  op_obj = json_object_new_int(op);
  if (op_obj == NULL || json_object_object_add(payload, "op", op_obj) != 0) {
    json_object_put(op_obj);
    rc = DGW_ERR_NOMEM;
    goto out;
  }
  /* The payload holds its own reference to d while it lives. */
  if (json_object_object_add(payload, "d", json_object_get(d)) != 0) {
    json_object_put(d);
    rc = DGW_ERR_NOMEM;
    goto out;
  }
  text = json_object_to_json_string_length(
      payload, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
      &text_len);
  if (text == NULL) {
    rc = DGW_ERR_NOMEM;
    goto out;
  }
  if (max_len != 0 && text_len > max_len) {
    rc = DGW_ERR_PAYLOAD_TOO_LARGE;
    goto out;
  }
  copy = malloc(text_len + 1);
  if (copy == NULL) {
    rc = DGW_ERR_NOMEM;
    goto out;
  }
  memcpy(copy, text, text_len + 1);
  *out = copy;
  *out_len = text_len;
  rc = DGW_OK;
out:
  json_object_put(payload);
  return rc;
}

const char *dgw_op_name(int op) {
  switch (op) {
  case DGW_OP_DISPATCH:
    return "DISPATCH";
  case DGW_OP_HEARTBEAT:
    return "HEARTBEAT";
  case DGW_OP_IDENTIFY:
    return "IDENTIFY";
  case DGW_OP_PRESENCE_UPDATE:
    return "PRESENCE_UPDATE";
  case DGW_OP_VOICE_STATE_UPDATE:
    return "VOICE_STATE_UPDATE";
  case DGW_OP_RESUME:
    return "RESUME";
  case DGW_OP_RECONNECT:
    return "RECONNECT";
  case DGW_OP_REQUEST_GUILD_MEMBERS:
    return "REQUEST_GUILD_MEMBERS";
  case DGW_OP_INVALID_SESSION:
    return "INVALID_SESSION";
  case DGW_OP_HELLO:
    return "HELLO";
  case DGW_OP_HEARTBEAT_ACK:
    return "HEARTBEAT_ACK";
  case DGW_OP_REQUEST_SOUNDBOARD_SOUNDS:
    return "REQUEST_SOUNDBOARD_SOUNDS";
  case DGW_OP_REQUEST_CHANNEL_INFO:
    return "REQUEST_CHANNEL_INFO";
  }
  return "UNKNOWN";
}

int64_t dgw_payload_recover_seq(const char *json, size_t len) {
  struct json_tokener *tok = json_tokener_new_ex(4096);
  struct json_object *root = NULL;
  struct json_object *op;
  struct json_object *s;
  int64_t seq = -1;

  if (tok != NULL && json != NULL && len < (size_t)INT32_MAX) {
    root = json_tokener_parse_ex(tok, json, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
      json_object_put(root);
      root = NULL;
    }
  }
  json_tokener_free(tok);
  if (root != NULL && json_object_object_get_ex(root, "op", &op) &&
      json_object_get_int(op) == DGW_OP_DISPATCH &&
      json_object_object_get_ex(root, "s", &s) &&
      json_object_is_type(s, json_type_int))
    seq = json_object_get_int64(s);
  json_object_put(root);
  return seq;
}
