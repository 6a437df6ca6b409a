#include "config.h"

/*
 * Discord's REST, as much as bot libraries need to log in, reply and be
 * tested offline, answered on the gateway's own port with Discord's
 * shapes, status codes and error bodies (see docs/mock.md for the list):
 * the session calls (users/@me, oauth2/applications/@me, gateway,
 * gateway/bot), application commands kept in memory, messages (created,
 * edited, deleted, reacted to: each also dispatched to the shard of its
 * guild, as Discord does), typing, and the callbacks of the interactions
 * the mock sent.  Routes are matched under /api/v10, /api/v9 and /api (and
 * bare); /_mock/ is the control API (ctl.c).  Every route but GET /gateway,
 * interaction callbacks and webhooks (their token is in the path) needs
 * "Authorization: Bot <token>" (401 otherwise).
 */

#include <ctype.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include <json-c/json.h>

#include "mock_int.h"

#define MAX_SEGS 10

struct rest_call {
  struct dgw_mock_conn *conn;
  struct dgw_mock *mock;
  const struct mock_http_req *req;
  const char *seg[MAX_SEGS];
  size_t nseg;
  char segbuf[512];
  const char *bucket;
};

static int seg_is(const struct rest_call *c, size_t i, const char *s) {
  return i < c->nseg && strcmp(c->seg[i], s) == 0;
}

/* Records and answers; `body` (taken over) NULL means no body. */
static void reply(struct rest_call *c, int status, json_object *body) {
  mock_world_record_rest(c->mock, c->req, status);
  mock_log(c->mock, DGW_LOG_DEBUG, "conn %lu: %s %s: %d", c->conn->id,
           c->req->method, c->req->path, status);
  mock_http_reply(c->conn, status,
                  body != NULL ? json_object_to_json_string_ext(
                                     body, JSON_C_TO_STRING_PLAIN |
                                               JSON_C_TO_STRING_NOSLASHESCAPE)
                               : NULL,
                  c->bucket);
  json_object_put(body);
}

static void reply_error(struct rest_call *c, int status, int code,
                        const char *message) {
  json_object *e = json_object_new_object();

  if (e != NULL) {
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(e, "code", json_object_new_int(code));
  }
  reply(c, status, e);
}

/* 400 "Invalid Form Body" (code 50035) for `field`, as Discord answers a
 * missing or mistyped field: {"errors": {field: {"_errors": [...]}}}. */
static void reply_form_error(struct rest_call *c, const char *field,
                             const char *code, const char *message) {
  json_object *e = json_object_new_object(), *errors, *f, *list, *one;

  if (e == NULL || (errors = json_object_new_object()) == NULL ||
      (f = json_object_new_object()) == NULL ||
      (list = json_object_new_array()) == NULL ||
      (one = json_object_new_object()) == NULL) {
    json_object_put(e);
    reply_error(c, 400, 50035, "Invalid Form Body");
    return;
  }
  json_object_object_add(one, "code", json_object_new_string(code));
  json_object_object_add(one, "message", json_object_new_string(message));
  json_object_array_add(list, one);
  json_object_object_add(f, "_errors", list);
  json_object_object_add(errors, field, f);
  json_object_object_add(e, "code", json_object_new_int(50035));
  json_object_object_add(e, "errors", errors);
  json_object_object_add(e, "message",
                         json_object_new_string("Invalid Form Body"));
  reply(c, 400, e);
}

/* The request body as a JSON object, or NULL after answering 400 (Discord:
 * 50109 "The request body contains invalid JSON."). */
static json_object *body_object(struct rest_call *c) {
  json_object *body;
  int ok;

  if (c->req->body_len == 0)
    return json_object_new_object();
  body = mock_json_parse_exact(c->req->body, c->req->body_len, &ok);
  if (!ok || !json_object_is_type(body, json_type_object)) {
    json_object_put(body);
    reply_error(c, 400, 50109, "The request body contains invalid JSON.");
    return NULL;
  }
  return body;
}

static int is_snowflake(const char *s) {
  size_t n = strlen(s);

  if (n == 0 || n > 20)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (!isdigit((unsigned char)s[i]))
      return 0;
  return 1;
}

/* Decodes %XX escapes of `in` into `out` (emoji in reaction routes). */
static void percent_decode(const char *in, char *out, size_t out_size) {
  size_t o = 0;

  for (; *in != '\0' && o + 1 < out_size; in++) {
    if (in[0] == '%' && isxdigit((unsigned char)in[1]) &&
        isxdigit((unsigned char)in[2])) {
      char hex[3] = {in[1], in[2], '\0'};
      out[o++] = (char)strtol(hex, NULL, 16);
      in += 2;
    } else {
      out[o++] = *in;
    }
  }
  out[o] = '\0';
}

/* ---------------------------------------------------------------- messages */

json_object *mock_message_create(struct dgw_mock *mock, const char *channel_id,
                                 json_object *author, json_object *body,
                                 json_object *extra) {
  static const char *const copied[] = {
      "content",           "embeds", "tts",          "nonce", "components",
      "message_reference", "flags",  "sticker_items"};
  const char *guild = mock_world_channel_guild(mock, channel_id);
  char id[24], gid[24];
  json_object *m, *v, *flags;

  mock_world_snowflake(mock, id);
  if (guild != NULL)
    snprintf(gid, sizeof gid, "%s", guild);
  m = mock_shape_message(id, channel_id, guild != NULL ? gid : NULL, author,
                         "");
  if (m == NULL)
    return NULL;
  for (size_t i = 0; body != NULL && i < sizeof copied / sizeof copied[0]; i++)
    if (json_object_object_get_ex(body, copied[i], &v) && v != NULL)
      json_object_object_add(m, copied[i], json_object_get(v));
  if (extra != NULL) {
    json_object_object_foreach(extra, key, val) {
      json_object_object_add(m, key, json_object_get(val));
    }
  }
  json_object_get(m);
  if (mock_world_put_message(mock, m) != 0) {
    json_object_put(m);
    return NULL;
  }
  json_object_put(m); /* the world's reference stays */
  if (!json_object_object_get_ex(m, "flags", &flags) ||
      (json_object_get_int64(flags) & 64) == 0) /* not EPHEMERAL */
    mock_world_dispatch(mock, guild != NULL ? gid : NULL, "MESSAGE_CREATE",
                        mock_json_plain(m));
  return m;
}

/* Checks a message body as Discord does: content a string of at most 2000
 * characters, embeds an array of at most 10, and something to send. */
static int check_message_body(struct rest_call *c, json_object *body,
                              int create) {
  json_object *content, *embeds, *v;
  int has = 0;

  if (json_object_object_get_ex(body, "content", &content) && content != NULL) {
    if (!json_object_is_type(content, json_type_string)) {
      reply_form_error(c, "content", "BASE_TYPE_STRING", "Must be a string.");
      return -1;
    }
    if (json_object_get_string_len(content) > 2000) {
      reply_form_error(c, "content", "BASE_TYPE_MAX_LENGTH",
                       "Must be 2000 or fewer in length.");
      return -1;
    }
    has |= json_object_get_string_len(content) > 0;
  }
  if (json_object_object_get_ex(body, "embeds", &embeds) && embeds != NULL) {
    if (!json_object_is_type(embeds, json_type_array) ||
        json_object_array_length(embeds) > 10) {
      reply_form_error(c, "embeds", "BASE_TYPE_ARRAY",
                       "Must be an array of at most 10 embeds.");
      return -1;
    }
    has |= json_object_array_length(embeds) > 0;
  }
  has |= json_object_object_get_ex(body, "components", &v) && v != NULL &&
         json_object_is_type(v, json_type_array) &&
         json_object_array_length(v) > 0;
  has |= json_object_object_get_ex(body, "sticker_ids", &v) && v != NULL;
  if (create && !has) {
    reply_error(c, 400, 50006, "Cannot send an empty message");
    return -1;
  }
  return 0;
}

/* The message `mid` of channel `cid`, or NULL after answering 404. */
static json_object *find_message(struct rest_call *c, const char *cid,
                                 const char *mid) {
  json_object *m = mock_world_message(c->mock, mid), *ch;

  if (m == NULL || !json_object_object_get_ex(m, "channel_id", &ch) ||
      strcmp(json_object_get_string(ch), cid) != 0) {
    reply_error(c, 404, 10008, "Unknown Message");
    return NULL;
  }
  return m;
}

static const char *guild_of(json_object *m, char out[24]) {
  json_object *g;

  if (!json_object_object_get_ex(m, "guild_id", &g))
    return NULL;
  snprintf(out, 24, "%s", json_object_get_string(g));
  return out;
}

static void route_messages(struct rest_call *c, const char *cid) {
  const char *method = c->req->method;
  json_object *body, *m;

  if (strcmp(method, "POST") == 0) {
    if ((body = body_object(c)) == NULL)
      return;
    if (check_message_body(c, body, 1) == 0) {
      m = mock_message_create(c->mock, cid,
                              mock_shape_user(MOCK_USER_ID, "dgw-mock", 1),
                              body, NULL);
      if (m == NULL)
        reply_error(c, 500, 0, "500: Internal Server Error");
      else
        reply(c, 200, json_object_get(m));
    }
    json_object_put(body);
  } else if (strcmp(method, "GET") == 0) {
    reply(c, 200, json_object_new_array()); /* history: not kept by channel */
  } else {
    reply_error(c, 405, 0, "405: Method Not Allowed");
  }
}

static void route_message(struct rest_call *c, const char *cid,
                          const char *mid) {
  const char *method = c->req->method;
  json_object *m, *body, *d;
  char gid[24], now[40];
  const char *guild;

  if ((m = find_message(c, cid, mid)) == NULL)
    return;
  guild = guild_of(m, gid);
  if (strcmp(method, "GET") == 0) {
    reply(c, 200, json_object_get(m));
  } else if (strcmp(method, "PATCH") == 0) {
    if ((body = body_object(c)) == NULL)
      return;
    if (check_message_body(c, body, 0) == 0) {
      static const char *const edited[] = {"content", "embeds", "components",
                                           "flags"};
      json_object *v;

      for (size_t i = 0; i < sizeof edited / sizeof edited[0]; i++)
        if (json_object_object_get_ex(body, edited[i], &v) && v != NULL)
          json_object_object_add(m, edited[i], json_object_get(v));
      mock_shape_now(now);
      json_object_object_add(m, "edited_timestamp",
                             json_object_new_string(now));
      mock_world_dispatch(c->mock, guild, "MESSAGE_UPDATE", mock_json_plain(m));
      reply(c, 200, json_object_get(m));
    }
    json_object_put(body);
  } else if (strcmp(method, "DELETE") == 0) {
    if ((d = json_object_new_object()) != NULL) {
      json_object_object_add(d, "id", json_object_new_string(mid));
      json_object_object_add(d, "channel_id", json_object_new_string(cid));
      if (guild != NULL)
        json_object_object_add(d, "guild_id", json_object_new_string(guild));
      mock_world_dispatch(c->mock, guild, "MESSAGE_DELETE", mock_json_plain(d));
      json_object_put(d);
    }
    mock_world_delete_message(c->mock, mid);
    reply(c, 204, NULL);
  } else {
    reply_error(c, 405, 0, "405: Method Not Allowed");
  }
}

/* PUT/DELETE .../messages/{mid}/reactions/{emoji}/@me */
static void route_reaction(struct rest_call *c, const char *cid,
                           const char *mid, const char *emoji_enc) {
  int add = strcmp(c->req->method, "PUT") == 0;
  json_object *m, *d, *emoji;
  char name[128], gid[24], *colon;
  const char *guild;

  if (!add && strcmp(c->req->method, "DELETE") != 0) {
    reply_error(c, 405, 0, "405: Method Not Allowed");
    return;
  }
  if ((m = find_message(c, cid, mid)) == NULL)
    return;
  guild = guild_of(m, gid);
  percent_decode(emoji_enc, name, sizeof name);
  if (name[0] == '\0') {
    reply_error(c, 400, 10014, "Unknown Emoji");
    return;
  }
  d = json_object_new_object();
  emoji = json_object_new_object();
  if (d == NULL || emoji == NULL) {
    json_object_put(d);
    json_object_put(emoji);
    reply_error(c, 500, 0, "500: Internal Server Error");
    return;
  }
  colon = strchr(name, ':'); /* a custom emoji: name:id */
  if (colon != NULL) {
    *colon = '\0';
    json_object_object_add(emoji, "id", json_object_new_string(colon + 1));
  } else {
    json_object_object_add(emoji, "id", NULL);
  }
  json_object_object_add(emoji, "name", json_object_new_string(name));
  json_object_object_add(d, "user_id", json_object_new_string(MOCK_USER_ID));
  json_object_object_add(d, "channel_id", json_object_new_string(cid));
  json_object_object_add(d, "message_id", json_object_new_string(mid));
  if (guild != NULL) {
    char now[40];
    mock_shape_now(now);
    json_object_object_add(d, "guild_id", json_object_new_string(guild));
    if (add)
      json_object_object_add(d, "member",
                             mock_shape_member(mock_shape_bot_user(), now));
  }
  json_object_object_add(d, "emoji", emoji);
  if (add) {
    json_object_object_add(d, "burst", json_object_new_boolean(0));
    json_object_object_add(d, "type", json_object_new_int(0));
  }
  mock_world_dispatch(c->mock, guild,
                      add ? "MESSAGE_REACTION_ADD" : "MESSAGE_REACTION_REMOVE",
                      mock_json_plain(d));
  json_object_put(d);
  reply(c, 204, NULL);
}

static void route_channel(struct rest_call *c) {
  const char *cid = c->seg[1];

  if (!is_snowflake(cid)) {
    reply_form_error(c, "channel_id", "NUMBER_TYPE_COERCE",
                     "Value is not snowflake.");
  } else if (c->nseg == 2) {
    json_object *ch = mock_shape_channel(cid);
    if (strcmp(c->req->method, "GET") != 0)
      reply_error(c, 405, 0, "405: Method Not Allowed");
    else if (ch == NULL)
      reply_error(c, 404, 10003, "Unknown Channel");
    else
      reply(c, 200, ch);
  } else if (c->nseg == 3 && strcmp(c->seg[2], "typing") == 0) {
    if (strcmp(c->req->method, "POST") == 0)
      reply(c, 204, NULL);
    else
      reply_error(c, 405, 0, "405: Method Not Allowed");
  } else if (c->nseg == 3 && strcmp(c->seg[2], "messages") == 0) {
    route_messages(c, cid);
  } else if (c->nseg == 4 && strcmp(c->seg[2], "messages") == 0) {
    route_message(c, cid, c->seg[3]);
  } else if (c->nseg == 7 && strcmp(c->seg[2], "messages") == 0 &&
             strcmp(c->seg[4], "reactions") == 0 &&
             strcmp(c->seg[6], "@me") == 0) {
    route_reaction(c, cid, c->seg[3], c->seg[5]);
  } else {
    reply_error(c, 404, 0, "404: Not Found");
  }
}

/* ------------------------------------------------------ application commands
 */

/* Whether command `cmd` belongs to the scope (guild id or NULL: global). */
static int in_scope(json_object *cmd, const char *guild) {
  json_object *g;
  int has = json_object_object_get_ex(cmd, "guild_id", &g) && g != NULL;

  if (guild == NULL)
    return !has;
  return has && strcmp(json_object_get_string(g), guild) == 0;
}

/* A full command from the posted `in`, keeping the id of a command of the
 * same name in `old` (array, may be NULL); NULL after answering 400. */
static json_object *command_from(struct rest_call *c, json_object *in,
                                 json_object *old, const char *guild,
                                 size_t index, int many) {
  json_object *cmd, *name, *desc, *type, *v;
  char id[24], field[40];
  int64_t t = 1;

  if (!json_object_is_type(in, json_type_object)) {
    snprintf(field, sizeof field, "%zu", index);
    reply_form_error(c, many ? field : "_", "DICT_TYPE_CONVERT",
                     "Only dictionaries may be used in a DictType");
    return NULL;
  }
  if (json_object_object_get_ex(in, "type", &type) && type != NULL)
    t = json_object_get_int64(type);
  snprintf(field, sizeof field, many ? "%zu.name" : "name", index);
  if (!json_object_object_get_ex(in, "name", &name) ||
      !json_object_is_type(name, json_type_string) ||
      json_object_get_string_len(name) < 1 ||
      json_object_get_string_len(name) > 32) {
    reply_form_error(c, field, "BASE_TYPE_REQUIRED", "This field is required");
    return NULL;
  }
  snprintf(field, sizeof field, many ? "%zu.description" : "description",
           index);
  if (t == 1 && (!json_object_object_get_ex(in, "description", &desc) ||
                 !json_object_is_type(desc, json_type_string) ||
                 json_object_get_string_len(desc) > 100)) {
    reply_form_error(c, field, "BASE_TYPE_REQUIRED", "This field is required");
    return NULL;
  }
  id[0] = '\0';
  for (size_t i = 0; old != NULL && i < json_object_array_length(old); i++) {
    json_object *o = json_object_array_get_idx(old, i), *on, *oid;
    if (in_scope(o, guild) && json_object_object_get_ex(o, "name", &on) &&
        strcmp(json_object_get_string(on), json_object_get_string(name)) == 0 &&
        json_object_object_get_ex(o, "id", &oid))
      snprintf(id, sizeof id, "%s", json_object_get_string(oid));
  }
  if (id[0] == '\0')
    mock_world_snowflake(c->mock, id);
  if ((cmd = json_object_new_object()) == NULL)
    return NULL;
  json_object_object_add(cmd, "id", json_object_new_string(id));
  json_object_object_add(cmd, "application_id",
                         json_object_new_string(MOCK_USER_ID));
  json_object_object_add(cmd, "version", json_object_new_string(id));
  json_object_object_add(cmd, "type", json_object_new_int64(t));
  json_object_object_add(cmd, "name", json_object_get(name));
  json_object_object_add(cmd, "name_localizations", NULL);
  json_object_object_add(cmd, "description",
                         json_object_object_get_ex(in, "description", &v) &&
                                 v != NULL
                             ? json_object_get(v)
                             : json_object_new_string(""));
  json_object_object_add(cmd, "description_localizations", NULL);
  json_object_object_add(cmd, "options",
                         json_object_object_get_ex(in, "options", &v) &&
                                 v != NULL
                             ? json_object_get(v)
                             : json_object_new_array());
  json_object_object_add(
      cmd, "default_member_permissions",
      json_object_object_get_ex(in, "default_member_permissions", &v)
          ? json_object_get(v)
          : NULL);
  json_object_object_add(cmd, "dm_permission", json_object_new_boolean(1));
  json_object_object_add(cmd, "nsfw", json_object_new_boolean(0));
  json_object_object_add(cmd, "contexts", NULL);
  if (guild != NULL)
    json_object_object_add(cmd, "guild_id", json_object_new_string(guild));
  return cmd;
}

/* /applications/{app}[/guilds/{gid}]/commands[/{cid}] */
static void route_commands(struct rest_call *c, const char *guild,
                           const char *cmd_id) {
  const char *method = c->req->method;
  json_object *all = mock_world_commands(c->mock), *out, *body, *cmd;

  if (all == NULL || (out = json_object_new_array()) == NULL) {
    reply_error(c, 500, 0, "500: Internal Server Error");
    return;
  }
  if (cmd_id != NULL) { /* one command: GET or DELETE */
    for (size_t i = 0; i < json_object_array_length(all); i++) {
      json_object *o = json_object_array_get_idx(all, i), *oid;
      if (!in_scope(o, guild) || !json_object_object_get_ex(o, "id", &oid) ||
          strcmp(json_object_get_string(oid), cmd_id) != 0)
        continue;
      json_object_put(out);
      if (strcmp(method, "DELETE") == 0) {
        json_object_array_del_idx(all, i, 1);
        reply(c, 204, NULL);
      } else {
        reply(c, 200, json_object_get(o));
      }
      return;
    }
    json_object_put(out);
    reply_error(c, 404, 10063, "Unknown application command");
    return;
  }
  if (strcmp(method, "GET") == 0) {
    for (size_t i = 0; i < json_object_array_length(all); i++)
      if (in_scope(json_object_array_get_idx(all, i), guild))
        json_object_array_add(
            out, json_object_get(json_object_array_get_idx(all, i)));
    reply(c, 200, out);
    return;
  }
  if (strcmp(method, "PUT") != 0 && strcmp(method, "POST") != 0) {
    json_object_put(out);
    reply_error(c, 405, 0, "405: Method Not Allowed");
    return;
  }
  {
    int ok;
    body = mock_json_parse_exact(c->req->body, c->req->body_len, &ok);
    if (!ok || body == NULL) {
      json_object_put(body);
      json_object_put(out);
      reply_error(c, 400, 50109, "The request body contains invalid JSON.");
      return;
    }
  }
  if (strcmp(method, "PUT") == 0) { /* bulk overwrite of the scope */
    json_object *next = json_object_new_array();
    if (!json_object_is_type(body, json_type_array) || next == NULL) {
      json_object_put(next);
      reply_form_error(c, "_", "BASE_TYPE_ARRAY", "Must be an array.");
      goto out;
    }
    for (size_t i = 0; i < json_object_array_length(body); i++) {
      cmd =
          command_from(c, json_object_array_get_idx(body, i), all, guild, i, 1);
      if (cmd == NULL) {
        json_object_put(next);
        goto out;
      }
      json_object_array_add(out, json_object_get(cmd));
      json_object_array_add(next, cmd);
    }
    for (size_t i = 0; i < json_object_array_length(all); i++)
      if (!in_scope(json_object_array_get_idx(all, i), guild))
        json_object_array_add(
            next, json_object_get(json_object_array_get_idx(all, i)));
    mock_world_set_commands(c->mock, next);
    reply(c, 200, out);
    out = NULL;
  } else { /* POST: create or replace one by name */
    if ((cmd = command_from(c, body, all, guild, 0, 0)) == NULL)
      goto out;
    for (size_t i = json_object_array_length(all); i-- > 0;) {
      json_object *o = json_object_array_get_idx(all, i), *a, *b;
      if (in_scope(o, guild) && json_object_object_get_ex(o, "id", &a) &&
          json_object_object_get_ex(cmd, "id", &b) &&
          strcmp(json_object_get_string(a), json_object_get_string(b)) == 0)
        json_object_array_del_idx(all, i, 1);
    }
    json_object_array_add(all, json_object_get(cmd));
    reply(c, 201, cmd);
  }
out:
  json_object_put(out);
  json_object_put(body);
}

/* -------------------------------------------------------- interactions */

/* A message of the bot answering interaction `inter` (id `iid`): created
 * from `data` in its channel with `type` (20: the reply, 0: a follow-up),
 * interaction metadata and webhook_id, and dispatched. Borrowed, or NULL. */
static json_object *interaction_message(struct rest_call *c, json_object *inter,
                                        const char *iid, json_object *data,
                                        int type) {
  json_object *extra = json_object_new_object(), *meta, *v, *m;
  json_object *name = NULL, *user = NULL, *member;

  if (extra == NULL)
    return NULL;
  if (json_object_object_get_ex(inter, "data", &v))
    json_object_object_get_ex(v, "name", &name);
  if (json_object_object_get_ex(inter, "member", &member))
    json_object_object_get_ex(member, "user", &user);
  else
    json_object_object_get_ex(inter, "user", &user);
  json_object_object_add(extra, "type", json_object_new_int(type));
  json_object_object_add(extra, "application_id",
                         json_object_new_string(MOCK_USER_ID));
  json_object_object_add(extra, "webhook_id",
                         json_object_new_string(MOCK_USER_ID));
  if ((meta = json_object_new_object()) != NULL) {
    json_object_object_add(meta, "id", json_object_new_string(iid));
    json_object_object_add(meta, "type", json_object_new_int(2));
    json_object_object_add(meta, "name", json_object_get(name));
    json_object_object_add(meta, "user", json_object_get(user));
    json_object_object_add(extra, "interaction", meta);
  }
  json_object_object_get_ex(inter, "channel_id", &v);
  m = mock_message_create(c->mock, json_object_get_string(v),
                          mock_shape_user(MOCK_USER_ID, "dgw-mock", 1), data,
                          extra);
  json_object_put(extra);
  return m;
}

/* /webhooks/{app}/{token}[/messages/{mid|@original}]: follow-ups and edits
 * of the answer to an interaction the mock sent (by its token). */
static void route_webhook(struct rest_call *c) {
  const char *method = c->req->method, *mid;
  json_object *inter = mock_world_interaction_by_token(c->mock, c->seg[2]);
  json_object *body, *v, *m;
  char iid[24];

  if (inter == NULL || !seg_is(c, 1, MOCK_USER_ID)) {
    reply_error(c, 404, 10015, "Unknown Webhook");
    return;
  }
  json_object_object_get_ex(inter, "id", &v);
  snprintf(iid, sizeof iid, "%s", json_object_get_string(v));
  if (c->nseg == 3) { /* POST: a follow-up message */
    if (strcmp(method, "POST") != 0) {
      reply_error(c, 405, 0, "405: Method Not Allowed");
      return;
    }
    if ((body = body_object(c)) == NULL)
      return;
    if (check_message_body(c, body, 1) == 0) {
      m = interaction_message(c, inter, iid, body, 0);
      if (m != NULL)
        reply(c, 200, json_object_get(m));
      else
        reply_error(c, 500, 0, "500: Internal Server Error");
    }
    json_object_put(body);
    return;
  }
  mid = c->seg[4];
  if (strcmp(mid, "@original") == 0) {
    if (!json_object_object_get_ex(inter, "_response_id", &v)) {
      reply_error(c, 404, 10008, "Unknown Message");
      return;
    }
    mid = json_object_get_string(v);
  }
  if ((m = mock_world_message(c->mock, mid)) == NULL) {
    reply_error(c, 404, 10008, "Unknown Message");
    return;
  }
  json_object_object_get_ex(m, "channel_id", &v);
  {
    char cid[24];

    snprintf(cid, sizeof cid, "%s", json_object_get_string(v));
    if (strcmp(method, "PATCH") == 0) {
      json_object_object_add(m, "flags", json_object_new_int(0)); /* loaded */
    }
    route_message(c, cid, mid);
  }
}

/* POST /interactions/{id}/{token}/callback */
static void route_callback(struct rest_call *c) {
  json_object *inter, *body, *type, *data = NULL, *v, *m = NULL;
  char with[8];
  int64_t t;

  if (strcmp(c->req->method, "POST") != 0) {
    reply_error(c, 405, 0, "405: Method Not Allowed");
    return;
  }
  inter = mock_world_interaction(c->mock, c->seg[1], c->seg[2]);
  if (inter == NULL) {
    reply_error(c, 404, 10062, "Unknown interaction");
    return;
  }
  if (json_object_object_get_ex(inter, "_answered", &v)) {
    reply_error(c, 400, 40060, "Interaction has already been acknowledged.");
    return;
  }
  if ((body = body_object(c)) == NULL)
    return;
  if (!json_object_object_get_ex(body, "type", &type) ||
      !mock_json_is_int(type) ||
      ((t = json_object_get_int64(type)) != 4 && t != 5 && t != 6 && t != 7 &&
       t != 9)) {
    reply_form_error(c, "type", "BASE_TYPE_CHOICES",
                     "Value must be one of {4, 5, 6, 7, 9}.");
    json_object_put(body);
    return;
  }
  json_object_object_get_ex(body, "data", &data);
  if (t == 4 && (data == NULL || check_message_body(c, data, 1) != 0)) {
    if (data == NULL)
      reply_error(c, 400, 50006, "Cannot send an empty message");
    json_object_put(body);
    return;
  }
  json_object_object_add(inter, "_answered", json_object_new_int64(t));
  if (t == 4 || t == 5) { /* 5: the "thinking..." message (LOADING) */
    json_object *loading = NULL;

    if (t == 5 && (loading = json_object_new_object()) != NULL)
      json_object_object_add(loading, "flags", json_object_new_int(128));
    m = interaction_message(c, inter, c->seg[1], t == 4 ? data : loading, 20);
    json_object_put(loading);
    if (m != NULL && json_object_object_get_ex(m, "id", &v))
      json_object_object_add(inter, "_response_id", json_object_get(v));
  }
  if (mock_http_query(c->req->query, "with_response", with, sizeof with) &&
      strcmp(with, "true") == 0) {
    json_object *r = json_object_new_object(), *i = json_object_new_object(),
                *res = json_object_new_object();
    if (r != NULL && i != NULL && res != NULL) {
      json_object_object_add(i, "id", json_object_new_string(c->seg[1]));
      json_object_object_add(i, "type", json_object_new_int(2));
      json_object_object_add(i, "response_message_loading",
                             json_object_new_boolean(t == 5));
      json_object_object_add(i, "response_message_ephemeral",
                             json_object_new_boolean(0));
      json_object_object_add(res, "type", json_object_new_int64(t));
      if (m != NULL)
        json_object_object_add(res, "message", json_object_get(m));
      json_object_object_add(r, "interaction", i);
      json_object_object_add(r, "resource", res);
      reply(c, 200, r);
    } else {
      json_object_put(r);
      json_object_put(i);
      json_object_put(res);
      reply_error(c, 500, 0, "500: Internal Server Error");
    }
  } else {
    reply(c, 204, NULL);
  }
  json_object_put(body);
}

/* --------------------------------------------------------------- routing */

static int authorized(const struct dgw_mock *mock, const char *auth) {
  if (strncmp(auth, "Bot ", 4) != 0 || auth[4] == '\0')
    return 0;
  return mock->token == NULL || strcmp(auth + 4, mock->token) == 0;
}

static void route_gateway(struct rest_call *c, int bot) {
  struct dgw_mock *mock = c->mock;
  json_object *o = json_object_new_object(), *limit;
  uint64_t used = mock->stats.identifies;

  if (o == NULL) {
    reply_error(c, 500, 0, "500: Internal Server Error");
    return;
  }
  json_object_object_add(o, "url", json_object_new_string(mock->resume_url));
  if (bot) {
    json_object_object_add(o, "shards",
                           json_object_new_int64(mock->cfg.rest_shards
                                                     ? mock->cfg.rest_shards
                                                     : 1));
    if ((limit = json_object_new_object()) != NULL) {
      json_object_object_add(limit, "total", json_object_new_int(1000));
      json_object_object_add(
          limit, "remaining",
          json_object_new_int64(used < 1000 ? (int64_t)(1000 - used) : 0));
      json_object_object_add(limit, "reset_after",
                             json_object_new_int64(86400000));
      json_object_object_add(
          limit, "max_concurrency",
          json_object_new_int64(mock->cfg.rest_max_concurrency
                                    ? mock->cfg.rest_max_concurrency
                                    : 1));
    }
    json_object_object_add(o, "session_start_limit", limit);
  }
  mock_log(mock, DGW_LOG_INFO, "conn %lu: GET /gateway%s: %s", c->conn->id,
           bot ? "/bot" : "", mock_json_plain(o));
  reply(c, 200, o);
}

/* Splits the route (after the /api[/vN] prefix) into segments. */
static void split_route(struct rest_call *c, const char *path) {
  char *p, *save = NULL;

  size_t n = strlen(path);

  if (n >= sizeof c->segbuf)
    n = sizeof c->segbuf - 1;
  memcpy(c->segbuf, path, n);
  c->segbuf[n] = '\0';
  c->nseg = 0;
  for (p = strtok_r(c->segbuf, "/", &save); p != NULL && c->nseg < MAX_SEGS;
       p = strtok_r(NULL, "/", &save)) {
    /* discord.js encodes the '@' of @me and @original. */
    if (strcmp(p, "%40me") == 0 || strcmp(p, "%40original") == 0) {
      p += 2;
      *p = '@';
    }
    c->seg[c->nseg++] = p;
  }
}

static void route(struct rest_call *c) {
  const char *path = c->req->path, *method = c->req->method;
  int get = strcmp(method, "GET") == 0;

  if (strncmp(path, "/api/v", 6) == 0 && isdigit((unsigned char)path[6])) {
    path += 6;
    while (isdigit((unsigned char)*path))
      path++;
  } else if (strncmp(path, "/api/", 5) == 0) {
    path += 4;
  }
  split_route(c, path);
  c->bucket = c->nseg > 0 ? c->seg[0] : "root";
  c->mock->stats.rest_requests++;
  if (c->nseg == 1 && seg_is(c, 0, "gateway") && get) {
    route_gateway(c, 0);
    return;
  }
  /* Interaction callbacks and webhooks authenticate by their token in the
   * path, as on Discord. */
  if (!seg_is(c, 0, "interactions") && !seg_is(c, 0, "webhooks") &&
      !authorized(c->mock, c->req->auth)) {
    mock_log(c->mock, DGW_LOG_INFO, "conn %lu: %s %s: 401", c->conn->id, method,
             c->req->path);
    reply_error(c, 401, 0, "401: Unauthorized");
    return;
  }
  if (mock_ratelimit_check(c->conn, c->req, path, c->seg, c->nseg))
    return; /* 429: not performed */
  if (c->nseg == 2 && seg_is(c, 0, "gateway") && seg_is(c, 1, "bot") && get) {
    route_gateway(c, 1);
  } else if (c->nseg == 2 && seg_is(c, 0, "users") && get) {
    if (seg_is(c, 1, "@me") || seg_is(c, 1, MOCK_USER_ID))
      reply(c, 200, mock_shape_bot_user());
    else if (seg_is(c, 1, MOCK_USER2_ID))
      reply(c, 200, mock_shape_user(MOCK_USER2_ID, "alice", 0));
    else
      reply_error(c, 404, 10013, "Unknown User");
  } else if (get && ((c->nseg == 3 && seg_is(c, 0, "oauth2") &&
                      seg_is(c, 1, "applications") && seg_is(c, 2, "@me")) ||
                     (c->nseg == 2 && seg_is(c, 0, "applications") &&
                      seg_is(c, 1, "@me")))) {
    reply(c, 200, mock_shape_application(0));
  } else if (c->nseg >= 3 && seg_is(c, 0, "applications") &&
             (seg_is(c, 2, "commands") || seg_is(c, 2, "guilds"))) {
    if (!seg_is(c, 1, MOCK_USER_ID))
      reply_error(c, 404, 10002, "Unknown Application");
    else if (c->nseg <= 4 && seg_is(c, 2, "commands"))
      route_commands(c, NULL, c->nseg == 4 ? c->seg[3] : NULL);
    else if ((c->nseg == 5 || c->nseg == 6) && seg_is(c, 4, "commands"))
      route_commands(c, c->seg[3], c->nseg == 6 ? c->seg[5] : NULL);
    else
      reply_error(c, 404, 0, "404: Not Found");
  } else if (c->nseg >= 2 && seg_is(c, 0, "channels")) {
    route_channel(c);
  } else if (c->nseg == 4 && seg_is(c, 0, "interactions") &&
             seg_is(c, 3, "callback")) {
    route_callback(c);
  } else if (seg_is(c, 0, "webhooks") &&
             (c->nseg == 3 || (c->nseg == 5 && seg_is(c, 3, "messages")))) {
    route_webhook(c);
  } else if (c->nseg == 2 && seg_is(c, 0, "guilds") && get) {
    if (seg_is(c, 1, MOCK_GUILD_ID))
      reply(c, 200, mock_shape_guild_create());
    else
      reply_error(c, 404, 10004, "Unknown Guild");
  } else {
    reply_error(c, 404, 0, "404: Not Found");
  }
}

int mock_rest_serve(struct dgw_mock_conn *conn, const char *buf, size_t len) {
  struct evbuffer *in = bufferevent_get_input(conn->bev);
  struct mock_http_req req;
  struct rest_call c;
  size_t all = evbuffer_get_length(in), total = 0;
  const char *p;
  int rv;

  (void)buf;
  (void)len;
  p = (const char *)evbuffer_pullup(in, (ev_ssize_t)all);
  if (p == NULL)
    return 0;
  rv = mock_http_parse(p, all, &req, &total);
  if (rv == -2)
    return 0; /* a WebSocket upgrade */
  if (rv == 0) {
    /* Without a whole header block the upgrade path judges (and waits). */
    int headers = 0;
    for (size_t i = 0; i + 3 < all && !headers; i++)
      headers = memcmp(p + i, "\r\n\r\n", 4) == 0;
    return headers;
  }
  memset(&c, 0, sizeof c);
  c.conn = conn;
  c.mock = conn->mock;
  c.req = &req;
  if (rv == -1) {
    mock_http_reply(conn, 400,
                    "{\"message\": \"400: Bad Request\", \"code\": 0}", NULL);
    return 1;
  }
  if (rv == -3) {
    mock_http_reply(conn, 413,
                    "{\"message\": \"413: Request entity too large\", "
                    "\"code\": 40005}",
                    NULL);
    return 1;
  }
  if (strncmp(req.path, "/_mock/", 7) == 0)
    mock_ctl_serve(conn, &req, req.path + 7);
  else
    route(&c);
  evbuffer_drain(in, total);
  return 1;
}
