/*
 * redis-streams' command streams: one command's `d` read into the
 * arguments of the shard's checked call and sent (docs/streams.md, the
 * table of ops).  The rest of the machinery is in commands.c and
 * command_writer.c.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <json-c/json.h>

#include "commands.h"

#define MAX_ACTIVITIES 16
#define MAX_IDS 100

/* ------------------------------------------------------------ parsing */

static int bad(char *why, size_t n, const char *field, const char *what) {
  snprintf(why, n, "d.%s must be %s", field, what);
  return -1;
}

static struct json_object *member(struct json_object *d, const char *k) {
  struct json_object *v = NULL;

  json_object_object_get_ex(d, k, &v);
  return v;
}

static int opt_string(struct json_object *d, const char *k, const char **out,
                      char *why, size_t n) {
  struct json_object *v = member(d, k);

  *out = NULL;
  if (v == NULL || json_object_is_type(v, json_type_null))
    return 0;
  if (!json_object_is_type(v, json_type_string))
    return bad(why, n, k, "a string");
  *out = json_object_get_string(v);
  return 0;
}

static int opt_bool(struct json_object *d, const char *k, int *out, char *why,
                    size_t n) {
  struct json_object *v = member(d, k);

  *out = 0;
  if (v == NULL)
    return 0;
  if (!json_object_is_type(v, json_type_boolean))
    return bad(why, n, k, "true or false");
  *out = json_object_get_boolean(v);
  return 0;
}

/* An array of at most `max` strings into `out`; 0 or -1. */
static int string_array(struct json_object *d, const char *k, const char **out,
                        size_t max, size_t *count, char *why, size_t n) {
  struct json_object *v = member(d, k);

  *count = 0;
  if (v == NULL)
    return 0;
  if (!json_object_is_type(v, json_type_array) ||
      json_object_array_length(v) > max)
    return bad(why, n, k, "an array of at most 100 strings");
  for (size_t i = 0; i < json_object_array_length(v); i++) {
    struct json_object *s = json_object_array_get_idx(v, i);

    if (!json_object_is_type(s, json_type_string))
      return bad(why, n, k, "an array of strings (snowflakes as strings)");
    out[(*count)++] = json_object_get_string(s);
  }
  return 0;
}

int command_send(const struct dgw_plugin_host *h, struct dgw_gateway *gw,
                 const char *op, const char *raw, size_t raw_len,
                 struct json_object *d, dgw_sent_fn on_sent,
                 dgw_members_fn on_members, void *ud, const char **code,
                 char *why, size_t n) {
  const char *ids[MAX_IDS];
  size_t count;
  int rv;

  *code = "invalid_argument";
  if (strcmp(op, "raw") == 0) {
    rv = h->gateway_send_json_cb(gw, raw, raw_len, on_sent, ud);
    if (rv != DGW_OK)
      snprintf(why, n, "the payload was refused: %s", h->strerror(rv));
  } else if (strcmp(op, "presence") == 0) {
    struct dgw_presence_args a;
    struct dgw_activity acts[MAX_ACTIVITIES];
    struct json_object *v = member(d, "since"), *list = member(d, "activities");

    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    memset(acts, 0, sizeof(acts));
    if (opt_string(d, "status", &a.presence.status, why, n) < 0 ||
        opt_bool(d, "afk", &a.presence.afk, why, n) < 0)
      return DGW_ERR_INVALID_ARGUMENT;
    if (v != NULL && !json_object_is_type(v, json_type_null)) {
      if (!json_object_is_type(v, json_type_int) ||
          json_object_get_int64(v) < 0)
        return bad(why, n, "since", "null or ms since the epoch"),
               DGW_ERR_INVALID_ARGUMENT;
      a.presence.since_ms = (uint64_t)json_object_get_int64(v);
    }
    if (list != NULL) {
      if (!json_object_is_type(list, json_type_array) ||
          json_object_array_length(list) > MAX_ACTIVITIES)
        return bad(why, n, "activities", "an array of at most 16 objects"),
               DGW_ERR_INVALID_ARGUMENT;
      for (size_t i = 0; i < json_object_array_length(list); i++) {
        struct json_object *o = json_object_array_get_idx(list, i), *t;

        if (!json_object_is_type(o, json_type_object))
          return bad(why, n, "activities", "an array of objects"),
                 DGW_ERR_INVALID_ARGUMENT;
        t = member(o, "type");
        if (opt_string(o, "name", &acts[i].name, why, n) < 0 ||
            opt_string(o, "state", &acts[i].state, why, n) < 0 ||
            opt_string(o, "url", &acts[i].url, why, n) < 0)
          return DGW_ERR_INVALID_ARGUMENT;
        if (t != NULL && !json_object_is_type(t, json_type_int))
          return bad(why, n, "activities[].type", "an integer"),
                 DGW_ERR_INVALID_ARGUMENT;
        acts[i].type = t != NULL ? (int)json_object_get_int(t) : 0;
      }
      a.presence.activities = acts;
      a.presence.activity_count = json_object_array_length(list);
    }
    a.on_sent = on_sent;
    a.sent_user_data = ud;
    rv = h->update_presence_args(gw, &a, why, n);
  } else if (strcmp(op, "voice_state") == 0) {
    struct dgw_voice_state_args a;

    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    if (opt_string(d, "guild_id", &a.guild_id, why, n) < 0 ||
        opt_string(d, "channel_id", &a.channel_id, why, n) < 0 ||
        opt_bool(d, "self_mute", &a.self_mute, why, n) < 0 ||
        opt_bool(d, "self_deaf", &a.self_deaf, why, n) < 0)
      return DGW_ERR_INVALID_ARGUMENT;
    a.on_sent = on_sent;
    a.sent_user_data = ud;
    rv = h->update_voice_state_args(gw, &a, why, n);
  } else if (strcmp(op, "request_members") == 0) {
    struct dgw_member_request_args a;
    struct json_object *v = member(d, "limit");

    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    if (opt_string(d, "guild_id", &a.request.guild_id, why, n) < 0 ||
        opt_string(d, "query", &a.request.query, why, n) < 0 ||
        opt_string(d, "nonce", &a.request.nonce, why, n) < 0 ||
        opt_bool(d, "presences", &a.request.presences, why, n) < 0 ||
        string_array(d, "user_ids", ids, MAX_IDS, &count, why, n) < 0)
      return DGW_ERR_INVALID_ARGUMENT;
    if (v != NULL) {
      if (!json_object_is_type(v, json_type_int) ||
          json_object_get_int64(v) < 0 || json_object_get_int64(v) > 100)
        return bad(why, n, "limit", "an integer from 0 to 100"),
               DGW_ERR_INVALID_ARGUMENT;
      a.request.limit = (uint32_t)json_object_get_int64(v);
    }
    if (count > 0) {
      a.request.user_ids = ids;
      a.request.user_id_count = count;
    }
    a.on_members = on_members;
    a.members_user_data = ud;
    a.on_sent = on_sent;
    a.sent_user_data = ud;
    rv = h->request_members_args(gw, &a, why, n);
  } else if (strcmp(op, "soundboard") == 0) {
    struct dgw_soundboard_args a;

    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    if (string_array(d, "guild_ids", ids, MAX_IDS, &count, why, n) < 0)
      return DGW_ERR_INVALID_ARGUMENT;
    a.guild_ids = ids;
    a.count = count;
    a.on_sent = on_sent;
    a.sent_user_data = ud;
    rv = h->request_soundboard_sounds_args(gw, &a, why, n);
  } else if (strcmp(op, "channel_info") == 0) {
    struct dgw_channel_info_args a;
    const char *fields[8];

    memset(&a, 0, sizeof(a));
    a.size = sizeof(a);
    if (opt_string(d, "guild_id", &a.guild_id, why, n) < 0 ||
        string_array(d, "fields", fields, 8, &count, why, n) < 0)
      return DGW_ERR_INVALID_ARGUMENT;
    for (size_t i = 0; i < count; i++) {
      if (strcmp(fields[i], "status") == 0)
        a.fields |= DGW_CHANNEL_INFO_STATUS;
      else if (strcmp(fields[i], "voice_start_time") == 0)
        a.fields |= DGW_CHANNEL_INFO_VOICE_START_TIME;
      else
        return bad(why, n, "fields", "\"status\" and/or \"voice_start_time\""),
               DGW_ERR_INVALID_ARGUMENT;
    }
    a.on_sent = on_sent;
    a.sent_user_data = ud;
    rv = h->request_channel_info_args(gw, &a, why, n);
  } else {
    *code = "unknown_op";
    snprintf(why, n,
             "op \"%s\" is not presence, voice_state, request_members, "
             "soundboard, channel_info or raw",
             op);
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if (rv == DGW_ERR_PAYLOAD_TOO_LARGE)
    *code = "too_large";
  else if (rv == DGW_ERR_QUEUE_FULL)
    *code = "queue_full";
  return rv;
}
