/*
 * Gateway command encoders.  Each one validates everything first, then
 * builds `d` with json-c and serializes the payload with
 * dgw_payload_encode(); the size cap is checked here so the error can say
 * how large the payload came out.
 */
#include "config.h"

#include "commands.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "payload.h"
#include "why.h"

/* Why a string is not a snowflake. */
enum snowflake_fault {
  SNOWFLAKE_OK,
  SNOWFLAKE_MISSING,
  SNOWFLAKE_EMPTY,
  SNOWFLAKE_NOT_DIGITS,
  SNOWFLAKE_TOO_LONG,
  SNOWFLAKE_LEADING_ZERO,
  SNOWFLAKE_ZERO,
  SNOWFLAKE_OVERFLOW,
};

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* The longest piece of a caller's string quoted in an error sentence. */
#define QUOTE_MAX 24

static const char *const presence_statuses[] = {
    "online", "dnd", "idle", "invisible", "offline",
};

static const struct {
  unsigned bit;
  const char *name;
} channel_info_fields[] = {
    {DGW_CHANNEL_INFO_STATUS, "status"},
    {DGW_CHANNEL_INFO_VOICE_START_TIME, "voice_start_time"},
};

static enum snowflake_fault snowflake_check(const char *s, uint64_t *out);
static int check_snowflake(const char *field, const char *s, char *why,
                           size_t why_size);
static int utf8_valid(const char *s);
static int check_text(const char *field, const char *s, char *why,
                      size_t why_size);
static int add(struct json_object *obj, const char *key,
               struct json_object *value);
static int add_null(struct json_object *obj, const char *key);
static int add_string(struct json_object *obj, const char *key,
                      const char *value);
static int append(struct json_object *array, struct json_object *value);
static struct json_object *string_array(const char *const *strings,
                                        size_t count);
static int check_presence(const struct dgw_presence *p, char *why,
                          size_t why_size);
static struct json_object *build_activity(const struct dgw_activity *a);
static struct json_object *build_presence(const struct dgw_presence *p);
static int check_member_request(const struct dgw_member_request *r, char *why,
                                size_t why_size);
static struct json_object *
build_member_request(const struct dgw_member_request *r, const char *nonce);
static int start_output(char **out, size_t *out_len, char *why,
                        size_t why_size);
static int encode(int op, struct json_object *d, char **out, size_t *out_len,
                  char *why, size_t why_size);

static enum snowflake_fault snowflake_check(const char *s, uint64_t *out) {
  uint64_t value = 0;
  size_t n;

  if (s == NULL)
    return SNOWFLAKE_MISSING;
  if (s[0] == '\0')
    return SNOWFLAKE_EMPTY;
  for (n = 0; s[n] != '\0'; n++) {
    if (s[n] < '0' || s[n] > '9')
      return SNOWFLAKE_NOT_DIGITS;
  }
  if (n > DGW_SNOWFLAKE_MAX_DIGITS)
    return SNOWFLAKE_TOO_LONG;
  if (s[0] == '0')
    return n == 1 ? SNOWFLAKE_ZERO : SNOWFLAKE_LEADING_ZERO;
  for (n = 0; s[n] != '\0'; n++) {
    unsigned digit = (unsigned)(s[n] - '0');

    if (value > (UINT64_MAX - digit) / 10)
      return SNOWFLAKE_OVERFLOW;
    value = value * 10 + digit;
  }
  if (out != NULL)
    *out = value;
  return SNOWFLAKE_OK;
}

int dgw_snowflake_parse(const char *s, uint64_t *out) {
  return snowflake_check(s, out) == SNOWFLAKE_OK ? DGW_OK
                                                 : DGW_ERR_INVALID_ARGUMENT;
}

/* Names `field` in the sentence; a string that passed the digit and length
 * checks is at most 20 digits and quoted whole. */
static int check_snowflake(const char *field, const char *s, char *why,
                           size_t why_size) {
  switch (snowflake_check(s, NULL)) {
  case SNOWFLAKE_OK:
    return DGW_OK;
  case SNOWFLAKE_MISSING:
    dgw_set_why(why, why_size, "%s is missing", field);
    break;
  case SNOWFLAKE_EMPTY:
    dgw_set_why(why, why_size,
                "%s is empty; a snowflake is 1 to %d decimal digits", field,
                DGW_SNOWFLAKE_MAX_DIGITS);
    break;
  case SNOWFLAKE_NOT_DIGITS:
    dgw_set_why(why, why_size,
                "%s \"%.*s\" is not a snowflake: decimal digits only", field,
                QUOTE_MAX, s);
    break;
  case SNOWFLAKE_TOO_LONG:
    dgw_set_why(why, why_size,
                "%s is %zu digits long; a snowflake has at most %d", field,
                strlen(s), DGW_SNOWFLAKE_MAX_DIGITS);
    break;
  case SNOWFLAKE_LEADING_ZERO:
    dgw_set_why(why, why_size,
                "%s \"%s\" is not a snowflake: it has a leading zero", field,
                s);
    break;
  case SNOWFLAKE_ZERO:
    dgw_set_why(why, why_size, "%s is 0; a snowflake is greater than 0", field);
    break;
  case SNOWFLAKE_OVERFLOW:
    dgw_set_why(why, why_size,
                "%s \"%s\" is not a snowflake: it does not fit in 64 bits",
                field, s);
    break;
  }
  return DGW_ERR_INVALID_ARGUMENT;
}

uint32_t dgw_shard_for_guild(uint64_t guild_id, uint32_t shard_count) {
  if (shard_count == 0)
    return 0;
  return (uint32_t)((guild_id >> 22) % shard_count);
}

/* RFC 3629: no overlong forms, no surrogates, nothing above U+10FFFF. */
static int utf8_valid(const char *s) {
  const unsigned char *p = (const unsigned char *)s;

  while (*p != '\0') {
    unsigned c = *p++, need, cp, min;

    if (c < 0x80)
      continue;
    if (c >= 0xc2 && c <= 0xdf)
      need = 1;
    else if (c >= 0xe0 && c <= 0xef)
      need = 2;
    else if (c >= 0xf0 && c <= 0xf4)
      need = 3;
    else
      return 0;
    min = need == 1 ? 0x80u : need == 2 ? 0x800u : 0x10000u;
    cp = c & (0x3fu >> need);
    for (; need > 0; need--) {
      if ((*p & 0xc0) != 0x80)
        return 0; /* also stops at the NUL */
      cp = (cp << 6) | (*p++ & 0x3fu);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
  }
  return 1;
}

static int check_text(const char *field, const char *s, char *why,
                      size_t why_size) {
  if (utf8_valid(s))
    return DGW_OK;
  dgw_set_why(why, why_size, "%s is not valid UTF-8", field);
  return DGW_ERR_INVALID_ARGUMENT;
}

/* Adds `value`, a new reference consumed even on failure, to `obj`; a NULL
 * `value` is the failed allocation that made it. */
static int add(struct json_object *obj, const char *key,
               struct json_object *value) {
  if (value == NULL || json_object_object_add(obj, key, value) != 0) {
    json_object_put(value);
    return DGW_ERR_NOMEM;
  }
  return DGW_OK;
}

static int add_null(struct json_object *obj, const char *key) {
  return json_object_object_add(obj, key, NULL) == 0 ? DGW_OK : DGW_ERR_NOMEM;
}

static int add_string(struct json_object *obj, const char *key,
                      const char *value) {
  return add(obj, key, json_object_new_string(value));
}

/* Appends `value`, as add(). */
static int append(struct json_object *array, struct json_object *value) {
  if (value == NULL || json_object_array_add(array, value) != 0) {
    json_object_put(value);
    return DGW_ERR_NOMEM;
  }
  return DGW_OK;
}

/* A new array of the `count` strings at `strings`; NULL without memory. */
static struct json_object *string_array(const char *const *strings,
                                        size_t count) {
  struct json_object *array = json_object_new_array();
  size_t i;

  if (array == NULL)
    return NULL;
  for (i = 0; i < count; i++) {
    if (append(array, json_object_new_string(strings[i])) != DGW_OK) {
      json_object_put(array);
      return NULL;
    }
  }
  return array;
}

int dgw_nonce_generate(dgw_random_fn rng, void *rng_data,
                       char out[DGW_NONCE_GENERATED_LEN + 1]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char bytes[DGW_NONCE_GENERATED_LEN / 2];
  size_t i;
  int ok;

  if (out == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  out[0] = '\0';
  if (rng != NULL)
    ok = rng(bytes, sizeof(bytes), rng_data) == 0;
  else
    ok = RAND_bytes(bytes, (int)sizeof(bytes)) == 1;
  if (!ok)
    return DGW_ERR_IO;
  for (i = 0; i < sizeof(bytes); i++) {
    out[2 * i] = hex[bytes[i] >> 4];
    out[2 * i + 1] = hex[bytes[i] & 0x0f];
  }
  out[DGW_NONCE_GENERATED_LEN] = '\0';
  return DGW_OK;
}

static int check_presence(const struct dgw_presence *p, char *why,
                          size_t why_size) {
  char field[48];
  size_t i;
  int rc;

  if (p == NULL) {
    dgw_set_why(why, why_size, "presence is missing");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if (p->status != NULL) {
    for (i = 0; i < ARRAY_LEN(presence_statuses); i++) {
      if (strcmp(p->status, presence_statuses[i]) == 0)
        break;
    }
    if (i == ARRAY_LEN(presence_statuses)) {
      dgw_set_why(why, why_size,
                  "status \"%.*s\" is not one of online, dnd, idle, invisible, "
                  "offline",
                  QUOTE_MAX, p->status);
      return DGW_ERR_INVALID_ARGUMENT;
    }
  }
  if (p->since_ms > (uint64_t)INT64_MAX) {
    dgw_set_why(why, why_size, "since %" PRIu64 " ms is out of range",
                p->since_ms);
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if (p->activities == NULL && p->activity_count > 0) {
    dgw_set_why(why, why_size, "activities is NULL but activity_count is %zu",
                p->activity_count);
    return DGW_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < p->activity_count; i++) {
    const struct dgw_activity *a = &p->activities[i];

    if (a->type < DGW_ACTIVITY_PLAYING || a->type > DGW_ACTIVITY_COMPETING) {
      dgw_set_why(why, why_size,
                  "activities[%zu].type %d is not an activity type a bot may "
                  "set (0 to 5)",
                  i, a->type);
      return DGW_ERR_INVALID_ARGUMENT;
    }
    if (a->name == NULL && a->type != DGW_ACTIVITY_CUSTOM) {
      dgw_set_why(why, why_size, "activities[%zu].name is missing", i);
      return DGW_ERR_INVALID_ARGUMENT;
    }
    if (a->name != NULL && a->name[0] == '\0') {
      dgw_set_why(why, why_size, "activities[%zu].name is empty", i);
      return DGW_ERR_INVALID_ARGUMENT;
    }
    snprintf(field, sizeof(field), "activities[%zu].name", i);
    if (a->name != NULL &&
        (rc = check_text(field, a->name, why, why_size)) != DGW_OK)
      return rc;
    snprintf(field, sizeof(field), "activities[%zu].state", i);
    if (a->state != NULL &&
        (rc = check_text(field, a->state, why, why_size)) != DGW_OK)
      return rc;
    snprintf(field, sizeof(field), "activities[%zu].url", i);
    if (a->url != NULL &&
        (rc = check_text(field, a->url, why, why_size)) != DGW_OK)
      return rc;
  }
  return DGW_OK;
}

static struct json_object *build_activity(const struct dgw_activity *a) {
  struct json_object *obj = json_object_new_object();
  const char *name = a->name != NULL ? a->name : DGW_CUSTOM_STATUS_NAME;

  if (obj == NULL)
    return NULL;
  if (add_string(obj, "name", name) != DGW_OK ||
      add(obj, "type", json_object_new_int(a->type)) != DGW_OK ||
      (a->state != NULL && add_string(obj, "state", a->state) != DGW_OK) ||
      (a->url != NULL && add_string(obj, "url", a->url) != DGW_OK)) {
    json_object_put(obj);
    return NULL;
  }
  return obj;
}

/* Builds a checked presence; NULL only without memory. */
static struct json_object *build_presence(const struct dgw_presence *p) {
  struct json_object *obj = json_object_new_object(), *activities;
  size_t i;

  if (obj == NULL)
    return NULL;
  if ((p->since_ms == 0
           ? add_null(obj, "since")
           : add(obj, "since", json_object_new_int64((int64_t)p->since_ms))) !=
      DGW_OK)
    goto fail;
  activities = json_object_new_array();
  if (add(obj, "activities", activities) != DGW_OK)
    goto fail;
  for (i = 0; i < p->activity_count; i++) {
    if (append(activities, build_activity(&p->activities[i])) != DGW_OK)
      goto fail;
  }
  if (add_string(obj, "status", p->status != NULL ? p->status : "online") !=
          DGW_OK ||
      add(obj, "afk", json_object_new_boolean(p->afk != 0)) != DGW_OK)
    goto fail;
  return obj;
fail:
  json_object_put(obj);
  return NULL;
}

struct json_object *dgw_presence_to_json(const struct dgw_presence *presence,
                                         int *err, char *why, size_t why_size) {
  struct json_object *obj;
  int rc;

  dgw_set_why(why, why_size, "%s", "");
  rc = check_presence(presence, why, why_size);
  obj = rc == DGW_OK ? build_presence(presence) : NULL;
  if (rc == DGW_OK && obj == NULL) {
    rc = DGW_ERR_NOMEM;
    dgw_set_why(why, why_size, "out of memory building the presence");
  }
  if (err != NULL)
    *err = rc;
  return obj;
}

/* Clears the outputs every encoder sets, and checks them. */
static int start_output(char **out, size_t *out_len, char *why,
                        size_t why_size) {
  dgw_set_why(why, why_size, "%s", "");
  if (out != NULL)
    *out = NULL;
  if (out_len != NULL)
    *out_len = 0;
  if (out == NULL || out_len == NULL) {
    dgw_set_why(why, why_size, "out and out_len must not be NULL");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  return DGW_OK;
}

/* Serializes {"op":op,"d":d}, consuming the reference to `d`; a NULL `d`
 * here means json-c ran out of memory building it. */
static int encode(int op, struct json_object *d, char **out, size_t *out_len,
                  char *why, size_t why_size) {
  char *text;
  size_t len;
  int rc;

  if (d == NULL) {
    dgw_set_why(why, why_size, "out of memory building the payload");
    return DGW_ERR_NOMEM;
  }
  rc = dgw_payload_encode(op, d, 0, &text, &len);
  json_object_put(d);
  if (rc != DGW_OK) {
    dgw_set_why(why, why_size, "out of memory encoding the payload");
    return rc;
  }
  if (len > DGW_PAYLOAD_MAX_SEND) {
    free(text);
    dgw_set_why(why, why_size,
                "the payload is %zu bytes encoded, over Discord's limit of %d",
                len, DGW_PAYLOAD_MAX_SEND);
    return DGW_ERR_PAYLOAD_TOO_LARGE;
  }
  *out = text;
  *out_len = len;
  return DGW_OK;
}

int dgw_presence_encode(const struct dgw_presence *presence, char **out,
                        size_t *out_len, char *why, size_t why_size) {
  int rc;

  if ((rc = start_output(out, out_len, why, why_size)) != DGW_OK ||
      (rc = check_presence(presence, why, why_size)) != DGW_OK)
    return rc;
  return encode(DGW_OP_PRESENCE_UPDATE, build_presence(presence), out, out_len,
                why, why_size);
}

int dgw_voice_state_encode(const char *guild_id, const char *channel_id,
                           int self_mute, int self_deaf, char **out,
                           size_t *out_len, char *why, size_t why_size) {
  struct json_object *d;
  int rc;

  if ((rc = start_output(out, out_len, why, why_size)) != DGW_OK ||
      (rc = check_snowflake("guild_id", guild_id, why, why_size)) != DGW_OK)
    return rc;
  if (channel_id != NULL &&
      (rc = check_snowflake("channel_id", channel_id, why, why_size)) != DGW_OK)
    return rc;
  d = json_object_new_object();
  if (d != NULL &&
      (add_string(d, "guild_id", guild_id) != DGW_OK ||
       (channel_id != NULL ? add_string(d, "channel_id", channel_id)
                           : add_null(d, "channel_id")) != DGW_OK ||
       add(d, "self_mute", json_object_new_boolean(self_mute != 0)) != DGW_OK ||
       add(d, "self_deaf", json_object_new_boolean(self_deaf != 0)) !=
           DGW_OK)) {
    json_object_put(d);
    d = NULL;
  }
  return encode(DGW_OP_VOICE_STATE_UPDATE, d, out, out_len, why, why_size);
}

static int check_member_request(const struct dgw_member_request *r, char *why,
                                size_t why_size) {
  char field[32];
  size_t i, len;
  int rc;

  if (r == NULL) {
    dgw_set_why(why, why_size, "request is missing");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if ((rc = check_snowflake("guild_id", r->guild_id, why, why_size)) != DGW_OK)
    return rc;
  if (r->query != NULL && (r->user_ids != NULL || r->user_id_count > 0)) {
    dgw_set_why(why, why_size,
                "give either query or user_ids, not both (Discord takes one)");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if (r->query != NULL) {
    if ((rc = check_text("query", r->query, why, why_size)) != DGW_OK)
      return rc;
    if (r->limit > DGW_MEMBER_REQUEST_MAX_LIMIT) {
      dgw_set_why(why, why_size,
                  "limit %" PRIu32 " is out of range: 0 to %d with a query",
                  r->limit, DGW_MEMBER_REQUEST_MAX_LIMIT);
      return DGW_ERR_INVALID_ARGUMENT;
    }
    if (r->limit == 0 && r->query[0] != '\0') {
      dgw_set_why(
          why, why_size,
          "limit 0 (every member) needs an empty query; give a limit of "
          "1 to %d with query \"%.*s\"",
          DGW_MEMBER_REQUEST_MAX_LIMIT, QUOTE_MAX, r->query);
      return DGW_ERR_INVALID_ARGUMENT;
    }
  } else {
    if (r->user_ids == NULL || r->user_id_count == 0) {
      if (r->user_ids == NULL && r->user_id_count == 0)
        dgw_set_why(why, why_size, "give either a query or user_ids");
      else
        dgw_set_why(why, why_size,
                    "user_ids needs 1 to %d ids and a matching user_id_count",
                    DGW_MEMBER_REQUEST_MAX_USER_IDS);
      return DGW_ERR_INVALID_ARGUMENT;
    }
    if (r->user_id_count > DGW_MEMBER_REQUEST_MAX_USER_IDS) {
      dgw_set_why(why, why_size, "%zu user_ids are too many; at most %d",
                  r->user_id_count, DGW_MEMBER_REQUEST_MAX_USER_IDS);
      return DGW_ERR_INVALID_ARGUMENT;
    }
    if (r->limit != 0) {
      dgw_set_why(why, why_size,
                  "limit %" PRIu32 " is only used with a query; leave it 0 "
                  "with user_ids",
                  r->limit);
      return DGW_ERR_INVALID_ARGUMENT;
    }
    for (i = 0; i < r->user_id_count; i++) {
      snprintf(field, sizeof(field), "user_ids[%zu]", i);
      if ((rc = check_snowflake(field, r->user_ids[i], why, why_size)) !=
          DGW_OK)
        return rc;
    }
  }
  if (r->nonce != NULL) {
    len = strlen(r->nonce);
    if (len == 0 || len > DGW_NONCE_MAX) {
      dgw_set_why(why, why_size,
                  "nonce is %zu bytes; it must be 1 to %d (or NULL to have one "
                  "generated)",
                  len, DGW_NONCE_MAX);
      return DGW_ERR_INVALID_ARGUMENT;
    }
    if ((rc = check_text("nonce", r->nonce, why, why_size)) != DGW_OK)
      return rc;
  }
  return DGW_OK;
}

/* Builds a checked request's d; NULL only without memory. */
static struct json_object *
build_member_request(const struct dgw_member_request *r, const char *nonce) {
  struct json_object *d = json_object_new_object();

  if (d == NULL)
    return NULL;
  if (add_string(d, "guild_id", r->guild_id) != DGW_OK)
    goto fail;
  if (r->query != NULL) {
    if (add_string(d, "query", r->query) != DGW_OK ||
        add(d, "limit", json_object_new_int((int32_t)r->limit)) != DGW_OK)
      goto fail;
  } else if (add(d, "user_ids", string_array(r->user_ids, r->user_id_count)) !=
             DGW_OK) {
    goto fail;
  }
  if (add(d, "presences", json_object_new_boolean(r->presences != 0)) !=
          DGW_OK ||
      add_string(d, "nonce", nonce) != DGW_OK)
    goto fail;
  return d;
fail:
  json_object_put(d);
  return NULL;
}

int dgw_member_request_encode(const struct dgw_member_request *request,
                              dgw_random_fn rng, void *rng_data,
                              char nonce_out[DGW_NONCE_MAX + 1], char **out,
                              size_t *out_len, char *why, size_t why_size) {
  char generated[DGW_NONCE_GENERATED_LEN + 1];
  const char *nonce;
  int rc;

  if (nonce_out != NULL)
    nonce_out[0] = '\0';
  if ((rc = start_output(out, out_len, why, why_size)) != DGW_OK ||
      (rc = check_member_request(request, why, why_size)) != DGW_OK)
    return rc;
  nonce = request->nonce;
  if (nonce == NULL) {
    if ((rc = dgw_nonce_generate(rng, rng_data, generated)) != DGW_OK) {
      dgw_set_why(why, why_size, "the random source failed to make a nonce");
      return rc;
    }
    nonce = generated;
  }
  rc =
      encode(DGW_OP_REQUEST_GUILD_MEMBERS, build_member_request(request, nonce),
             out, out_len, why, why_size);
  if (rc == DGW_OK && nonce_out != NULL)
    memcpy(nonce_out, nonce, strlen(nonce) + 1);
  return rc;
}

int dgw_soundboard_request_encode(const char *const *guild_ids, size_t count,
                                  char **out, size_t *out_len, char *why,
                                  size_t why_size) {
  struct json_object *d;
  char field[32];
  size_t i;
  int rc;

  if ((rc = start_output(out, out_len, why, why_size)) != DGW_OK)
    return rc;
  if (guild_ids == NULL || count == 0) {
    dgw_set_why(why, why_size, "guild_ids needs at least one guild id");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  for (i = 0; i < count; i++) {
    snprintf(field, sizeof(field), "guild_ids[%zu]", i);
    if ((rc = check_snowflake(field, guild_ids[i], why, why_size)) != DGW_OK)
      return rc;
  }
  d = json_object_new_object();
  if (d != NULL &&
      add(d, "guild_ids", string_array(guild_ids, count)) != DGW_OK) {
    json_object_put(d);
    d = NULL;
  }
  return encode(DGW_OP_REQUEST_SOUNDBOARD_SOUNDS, d, out, out_len, why,
                why_size);
}

int dgw_channel_info_request_encode(const char *guild_id, unsigned fields,
                                    char **out, size_t *out_len, char *why,
                                    size_t why_size) {
  const char *names[ARRAY_LEN(channel_info_fields)];
  struct json_object *d;
  size_t i, n;
  int rc;

  if ((rc = start_output(out, out_len, why, why_size)) != DGW_OK ||
      (rc = check_snowflake("guild_id", guild_id, why, why_size)) != DGW_OK)
    return rc;
  if (fields == 0 || (fields & ~(unsigned)DGW_CHANNEL_INFO_ALL) != 0) {
    dgw_set_why(why, why_size,
                "fields 0x%x must be a non-empty set of "
                "DGW_CHANNEL_INFO_STATUS and DGW_CHANNEL_INFO_VOICE_START_TIME",
                fields);
    return DGW_ERR_INVALID_ARGUMENT;
  }
  for (i = 0, n = 0; i < ARRAY_LEN(channel_info_fields); i++) {
    if ((fields & channel_info_fields[i].bit) != 0)
      names[n++] = channel_info_fields[i].name;
  }
  d = json_object_new_object();
  if (d != NULL && (add_string(d, "guild_id", guild_id) != DGW_OK ||
                    add(d, "fields", string_array(names, n)) != DGW_OK)) {
    json_object_put(d);
    d = NULL;
  }
  return encode(DGW_OP_REQUEST_CHANNEL_INFO, d, out, out_len, why, why_size);
}

/* Serializes a payload that holds the token: like encode(), but every
 * copy of the text we free is wiped first. */
static int encode_secret(int op, struct json_object *d, char **out,
                         size_t *out_len, char *why, size_t why_size) {
  char *text = NULL;
  size_t len = 0;
  int rc;

  if (d == NULL) {
    dgw_set_why(why, why_size, "out of memory building the payload");
    return DGW_ERR_NOMEM;
  }
  rc = dgw_payload_encode(op, d, 0, &text, &len);
  json_object_put(d);
  if (rc != DGW_OK) {
    dgw_set_why(why, why_size, "out of memory encoding the payload");
    return rc;
  }
  if (len > DGW_PAYLOAD_MAX_SEND) {
    OPENSSL_cleanse(text, len);
    free(text);
    dgw_set_why(why, why_size,
                "the payload is %zu bytes encoded, over Discord's limit of %d",
                len, DGW_PAYLOAD_MAX_SEND);
    return DGW_ERR_PAYLOAD_TOO_LARGE;
  }
  *out = text;
  *out_len = len;
  return DGW_OK;
}

int dgw_identify_encode(const struct dgw_identify_params *params, char **out,
                        size_t *out_len, char *why, size_t why_size) {
  struct json_object *d;
  struct json_object *props;
  struct json_object *shard;
  int rc;

  if ((rc = start_output(out, out_len, why, why_size)) != DGW_OK)
    return rc;
  if (params == NULL || params->token == NULL) {
    dgw_set_why(why, why_size, "the token must not be NULL");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  d = json_object_new_object();
  props = params->properties_json != NULL
              ? json_tokener_parse(params->properties_json)
              : json_object_new_object();
  shard = json_object_new_array();
  if (params->properties_json == NULL && props != NULL &&
      (add_string(props, "os", "linux") != DGW_OK ||
       add_string(props, "browser", "dgw") != DGW_OK ||
       add_string(props, "device", "dgw") != DGW_OK)) {
    json_object_put(props);
    props = NULL;
  }
  if (shard != NULL &&
      (append(shard, json_object_new_int64(params->shard_id)) != DGW_OK ||
       append(shard, json_object_new_int64(params->shard_total)) != DGW_OK)) {
    json_object_put(shard);
    shard = NULL;
  }
  /* Same key order as ever: token first, presence last.  add() consumes
   * what it is given, even on failure. */
  rc = d != NULL ? add_string(d, "token", params->token) : DGW_ERR_NOMEM;
  if (rc == DGW_OK)
    rc = add(d, "properties", props);
  else
    json_object_put(props);
  if (rc == DGW_OK)
    rc = add(d, "intents", json_object_new_int64((int64_t)params->intents));
  if (rc == DGW_OK)
    rc = add(d, "shard", shard);
  else
    json_object_put(shard);
  if (rc == DGW_OK && params->large_threshold > 0)
    rc =
        add(d, "large_threshold", json_object_new_int(params->large_threshold));
  if (rc == DGW_OK && params->presence_json != NULL &&
      json_object_object_add(d, "presence",
                             json_tokener_parse(params->presence_json)) != 0)
    rc = DGW_ERR_NOMEM;
  if (rc != DGW_OK) {
    json_object_put(d);
    d = NULL;
  }
  return encode_secret(DGW_OP_IDENTIFY, d, out, out_len, why, why_size);
}

int dgw_resume_encode(const char *token, const char *session_id, int64_t seq,
                      char **out, size_t *out_len, char *why, size_t why_size) {
  struct json_object *d;
  int rc;

  if ((rc = start_output(out, out_len, why, why_size)) != DGW_OK)
    return rc;
  if (token == NULL || session_id == NULL || seq < 0) {
    dgw_set_why(why, why_size,
                "token and session_id must not be NULL, seq not negative");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  d = json_object_new_object();
  if (d != NULL && (add_string(d, "token", token) != DGW_OK ||
                    add_string(d, "session_id", session_id) != DGW_OK ||
                    add(d, "seq", json_object_new_int64(seq)) != DGW_OK)) {
    json_object_put(d);
    d = NULL;
  }
  return encode_secret(DGW_OP_RESUME, d, out, out_len, why, why_size);
}

int dgw_heartbeat_encode(int64_t seq, char *buf, size_t size) {
  int n;

  if (seq > 0)
    n = snprintf(buf, size, "{\"op\":1,\"d\":%lld}", (long long)seq);
  else
    n = snprintf(buf, size, "{\"op\":1,\"d\":null}");
  return n > 0 && (size_t)n < size ? n : -1;
}
