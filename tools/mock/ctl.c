#include "config.h"

/*
 * The control API test suites drive the mock with, over plain HTTP on the
 * mock's own port under /_mock/ (a path no Discord route uses; no
 * Authorization needed).  Bodies and answers are JSON; docs/mock.md has a
 * curl example for each:
 *
 *   GET  /_mock/state         sessions, connections, counters, ids
 *   POST /_mock/messages      a user's message: MESSAGE_CREATE to its shard
 *   POST /_mock/interactions  a slash command: INTERACTION_CREATE
 *   POST /_mock/events        any dispatch {t, d, guild_id?}
 *   GET  /_mock/sent          what the bot sent (gateway and REST)
 *   POST /_mock/close         close connections with {code, reason?, shard?}
 *   POST /_mock/cut           drop connections (network cut) {down_ms?}
 *   POST /_mock/acks          {on: false} withholds heartbeat ACKs
 *   POST /_mock/invalidate    op 9 for {session_id?}
 *   POST /_mock/ratelimit     429 the next {count} REST requests (ratelimit.c)
 *   POST /_mock/reset         forget messages, commands, interactions, the
 *                             record; ACKs on again
 *
 * Also the built-in guild's GUILD_CREATE after READY.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <json-c/json.h>

#include "clock.h"
#include "mock_int.h"

static void ctl_reply(struct dgw_mock_conn *conn, int status, json_object *o) {
  mock_http_reply(conn, status,
                  o != NULL ? json_object_to_json_string_ext(
                                  o, JSON_C_TO_STRING_PLAIN |
                                         JSON_C_TO_STRING_NOSLASHESCAPE)
                            : NULL,
                  NULL);
  json_object_put(o);
}

static void ctl_error(struct dgw_mock_conn *conn, int status,
                      const char *message) {
  json_object *e = json_object_new_object();

  if (e != NULL) {
    json_object_object_add(e, "message", json_object_new_string(message));
    json_object_object_add(e, "code", json_object_new_int(0));
  }
  ctl_reply(conn, status, e);
}

/* A string member of `o`, or `fallback`. */
static const char *str_or(json_object *o, const char *key,
                          const char *fallback) {
  json_object *v;

  if (o != NULL && json_object_object_get_ex(o, key, &v) &&
      json_object_is_type(v, json_type_string))
    return json_object_get_string(v);
  return fallback;
}

static int64_t int_or(json_object *o, const char *key, int64_t fallback) {
  json_object *v;

  if (o != NULL && json_object_object_get_ex(o, key, &v) && mock_json_is_int(v))
    return json_object_get_int64(v);
  return fallback;
}

/* The author of an injected message or interaction: body.author (or
 * .user) {id, username, bot?}, or "alice" of the built-in guild. */
static json_object *author_of(json_object *body) {
  json_object *a;

  if ((json_object_object_get_ex(body, "author", &a) ||
       json_object_object_get_ex(body, "user", &a)) &&
      json_object_is_type(a, json_type_object))
    return mock_shape_user(
        str_or(a, "id", MOCK_USER2_ID), str_or(a, "username", "alice"),
        json_object_get_boolean(json_object_object_get(a, "bot")));
  return mock_shape_user(MOCK_USER2_ID, "alice", 0);
}

/* The channel of an injected message or interaction (default: the built-in
 * guild's #general); a guild_id given with it is remembered. */
static const char *channel_of(struct dgw_mock *mock, json_object *body) {
  const char *cid = str_or(body, "channel_id", MOCK_CHANNEL_ID);
  const char *gid = str_or(body, "guild_id", NULL);

  if (gid != NULL)
    mock_world_learn_channel(mock, cid, gid);
  return cid;
}

static void ctl_message(struct dgw_mock_conn *conn, json_object *body) {
  struct dgw_mock *mock = conn->mock;
  json_object *m, *content;

  if (!json_object_object_get_ex(body, "content", &content) ||
      !json_object_is_type(content, json_type_string)) {
    ctl_error(conn, 400, "content (a string) is required");
    return;
  }
  m = mock_message_create(mock, channel_of(mock, body), author_of(body), body,
                          NULL);
  if (m == NULL)
    ctl_error(conn, 500, "out of memory");
  else
    ctl_reply(conn, 200, json_object_get(m));
}

/* The id of the registered command `name`, or a fresh snowflake. */
static void command_id(struct dgw_mock *mock, const char *name, char out[24]) {
  json_object *all = mock_world_commands(mock);

  for (size_t i = 0; all != NULL && i < json_object_array_length(all); i++) {
    json_object *c = json_object_array_get_idx(all, i), *n, *id;
    if (json_object_object_get_ex(c, "name", &n) &&
        strcmp(json_object_get_string(n), name) == 0 &&
        json_object_object_get_ex(c, "id", &id)) {
      snprintf(out, 24, "%s", json_object_get_string(id));
      return;
    }
  }
  mock_world_snowflake(mock, out);
}

static void ctl_interaction(struct dgw_mock_conn *conn, json_object *body) {
  struct dgw_mock *mock = conn->mock;
  const char *name = str_or(body, "name", NULL), *cid, *guild;
  json_object *d, *data, *v, *member, *channel;
  char id[24], cmd[24], token[80], rnd[33], now[40], gid[24];

  if (name == NULL) {
    ctl_error(conn, 400, "name (the command's name) is required");
    return;
  }
  cid = channel_of(mock, body);
  guild = mock_world_channel_guild(mock, cid);
  if (guild != NULL)
    snprintf(gid, sizeof gid, "%s", guild);
  mock_world_snowflake(mock, id);
  command_id(mock, name, cmd);
  mock_random_id(rnd);
  snprintf(token, sizeof token, "mock-interaction-token-%s", rnd);
  mock_shape_now(now);
  if ((d = json_object_new_object()) == NULL ||
      (data = json_object_new_object()) == NULL) {
    json_object_put(d);
    ctl_error(conn, 500, "out of memory");
    return;
  }
  json_object_object_add(data, "id", json_object_new_string(cmd));
  json_object_object_add(data, "name", json_object_new_string(name));
  json_object_object_add(
      data, "type", json_object_new_int64(int_or(body, "command_type", 1)));
  json_object_object_add(data, "options",
                         json_object_object_get_ex(body, "options", &v)
                             ? json_object_get(v)
                             : json_object_new_array());
  if (guild != NULL)
    json_object_object_add(data, "guild_id", json_object_new_string(gid));
  json_object_object_add(d, "id", json_object_new_string(id));
  json_object_object_add(d, "application_id",
                         json_object_new_string(MOCK_USER_ID));
  json_object_object_add(d, "type",
                         json_object_new_int64(int_or(body, "type", 2)));
  json_object_object_add(d, "data", data);
  json_object_object_add(d, "channel_id", json_object_new_string(cid));
  channel = mock_shape_channel(cid);
  if (channel == NULL && (channel = json_object_new_object()) != NULL) {
    json_object_object_add(channel, "id", json_object_new_string(cid));
    json_object_object_add(channel, "type",
                           json_object_new_int(guild != NULL ? 0 : 1));
  }
  json_object_object_add(d, "channel", channel);
  if (guild != NULL) {
    json_object_object_add(d, "guild_id", json_object_new_string(gid));
    member = mock_shape_member(author_of(body), now);
    if (member != NULL)
      json_object_object_add(member, "permissions",
                             json_object_new_string("2248473465835073"));
    json_object_object_add(d, "member", member);
    json_object_object_add(d, "guild_locale", json_object_new_string("en-US"));
  } else {
    json_object_object_add(d, "user", author_of(body));
  }
  json_object_object_add(d, "token", json_object_new_string(token));
  json_object_object_add(d, "version", json_object_new_int(1));
  json_object_object_add(d, "app_permissions",
                         json_object_new_string("2248473465835073"));
  json_object_object_add(d, "locale", json_object_new_string("en-US"));
  json_object_object_add(d, "entitlements", json_object_new_array());
  json_object_object_add(d, "authorizing_integration_owners",
                         json_object_new_object());
  json_object_object_add(d, "context", json_object_new_int(guild ? 0 : 1));
  json_object_object_add(d, "attachment_size_limit",
                         json_object_new_int(10485760));
  mock_world_dispatch(mock, guild != NULL ? gid : NULL, "INTERACTION_CREATE",
                      mock_json_plain(d));
  if (mock_world_put_interaction(mock, json_object_get(d)) != 0) {
    json_object_put(d);
    ctl_error(conn, 500, "out of memory");
    return;
  }
  ctl_reply(conn, 200, d);
}

static void ctl_event(struct dgw_mock_conn *conn, json_object *body) {
  const char *t = str_or(body, "t", NULL),
             *sid = str_or(body, "session_id", NULL);
  json_object *d, *o;
  int n;

  if (t == NULL || t[0] == '\0' || !json_object_object_get_ex(body, "d", &d)) {
    ctl_error(conn, 400, "t (a string) and d are required");
    return;
  }
  if (sid != NULL)
    n = dgw_mock_session_add_dispatch(conn->mock, sid, t,
                                      d != NULL ? mock_json_plain(d)
                                                : "null") == DGW_OK
            ? 1
            : 0;
  else
    n = mock_world_dispatch(conn->mock, str_or(body, "guild_id", NULL), t,
                            d != NULL ? mock_json_plain(d) : "null");
  if ((o = json_object_new_object()) != NULL)
    json_object_object_add(o, "sessions", json_object_new_int(n));
  ctl_reply(conn, 200, o);
}

/* Closes (code != 0) or drops the open connections, of one shard when
 * shard >= 0.  Returns how many. */
static int each_open(struct dgw_mock *mock, int64_t shard, int code,
                     const char *reason) {
  struct dgw_mock_conn *c, *next;
  int n = 0;

  for (c = mock->open; c != NULL; c = next) {
    next = c->next;
    if (shard >= 0 && (c->session == NULL || c->session->shard_id != shard))
      continue;
    if (code != 0) {
      if (dgw_mock_conn_close(c, (uint16_t)code, reason) == DGW_OK)
        n++;
    } else {
      dgw_mock_conn_drop(c);
      n++;
    }
  }
  return n;
}

static void relisten_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_mock *mock = arg;

  (void)fd;
  (void)what;
  if (dgw_mock_set_listening(mock, 1) != DGW_OK)
    mock_log(mock, DGW_LOG_ERROR, "cut: cannot listen again");
}

static void ctl_close(struct dgw_mock_conn *conn, json_object *body, int cut) {
  struct dgw_mock *mock = conn->mock;
  int64_t code = int_or(body, "code", 4000), down = int_or(body, "down_ms", 0);
  int64_t shard = int_or(body, "shard", -1);
  json_object *o;
  int n;

  if (!cut && (code < 1000 || code > 4999 || code == 1005 || code == 1006)) {
    ctl_error(conn, 400, "code must be a close code 1000..4999");
    return;
  }
  n = each_open(mock, shard, cut ? 0 : (int)code,
                str_or(body, "reason", "closed by the control API"));
  if (cut && down > 0) {
    struct timeval tv = dgw_timeval_ms((uint32_t)down);
    if (mock->relisten_timer == NULL)
      mock->relisten_timer = evtimer_new(mock->base, relisten_cb, mock);
    if (mock->relisten_timer == NULL ||
        dgw_mock_set_listening(mock, 0) != DGW_OK) {
      ctl_error(conn, 500, "cannot stop listening");
      return;
    }
    evtimer_add(mock->relisten_timer, &tv);
  }
  if ((o = json_object_new_object()) != NULL)
    json_object_object_add(o, "connections", json_object_new_int(n));
  ctl_reply(conn, 200, o);
}

static json_object *stats_json(const struct dgw_mock_stats *st) {
  json_object *o = json_object_new_object();

  if (o == NULL)
    return NULL;
#define STAT(f)                                                                \
  json_object_object_add(o, #f, json_object_new_int64((int64_t)st->f))
  STAT(connections);
  STAT(identifies);
  STAT(resumes);
  STAT(resumes_ok);
  STAT(heartbeats);
  STAT(acks_sent);
  STAT(dispatches_sent);
  STAT(commands);
  STAT(rest_requests);
  STAT(rest_rate_limited);
#undef STAT
  return o;
}

static void ctl_state(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  json_object *o = json_object_new_object(), *list;
  struct mock_session *s;

  if (o == NULL || (list = json_object_new_array()) == NULL) {
    json_object_put(o);
    ctl_error(conn, 500, "out of memory");
    return;
  }
  for (s = mock->sessions; s != NULL; s = s->next) {
    json_object *e = json_object_new_object();
    if (e == NULL)
      continue;
    json_object_object_add(e, "session_id", json_object_new_string(s->id));
    json_object_object_add(e, "shard", json_object_new_int64(s->shard_id));
    json_object_object_add(e, "shard_count",
                           json_object_new_int64(s->shard_count));
    json_object_object_add(e, "seq", json_object_new_int64(s->seq));
    json_object_object_add(e, "attached",
                           json_object_new_boolean(s->conn != NULL));
    json_object_array_add(list, e);
  }
  json_object_object_add(o, "url", json_object_new_string(mock->resume_url));
  json_object_object_add(o, "guild_id", json_object_new_string(MOCK_GUILD_ID));
  json_object_object_add(o, "channel_id",
                         json_object_new_string(MOCK_CHANNEL_ID));
  json_object_object_add(o, "bot_id", json_object_new_string(MOCK_USER_ID));
  json_object_object_add(o, "connections",
                         json_object_new_int64((int64_t)mock->open_count));
  json_object_object_add(o, "sessions", list);
  json_object_object_add(o, "stats", stats_json(&mock->stats));
  json_object_object_add(o, "ratelimit", mock_ratelimit_json(mock));
  ctl_reply(conn, 200, o);
}

void mock_ctl_serve(struct dgw_mock_conn *conn, const struct mock_http_req *req,
                    const char *path) {
  struct dgw_mock *mock = conn->mock;
  int post = strcmp(req->method, "POST") == 0;
  json_object *body = NULL;
  int ok = 1;

  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: control %s /_mock/%s", conn->id,
           req->method, path);
  if (strcmp(req->method, "GET") == 0) {
    if (strcmp(path, "state") == 0) {
      ctl_state(conn);
    } else if (strcmp(path, "sent") == 0) {
      json_object *sent = mock_world_sent(mock);
      ctl_reply(conn, 200,
                sent != NULL ? json_object_get(sent)
                             : json_object_new_object());
    } else {
      ctl_error(conn, 404, "404: Not Found");
    }
    return;
  }
  if (!post) {
    ctl_error(conn, 405, "405: Method Not Allowed");
    return;
  }
  if (req->body_len > 0)
    body = mock_json_parse_exact(req->body, req->body_len, &ok);
  else
    body = json_object_new_object();
  if (!ok || body == NULL || !json_object_is_type(body, json_type_object)) {
    json_object_put(body);
    ctl_error(conn, 400, "the body must be a JSON object");
    return;
  }
  if (strcmp(path, "messages") == 0) {
    ctl_message(conn, body);
  } else if (strcmp(path, "interactions") == 0) {
    ctl_interaction(conn, body);
  } else if (strcmp(path, "events") == 0) {
    ctl_event(conn, body);
  } else if (strcmp(path, "close") == 0) {
    ctl_close(conn, body, 0);
  } else if (strcmp(path, "cut") == 0) {
    ctl_close(conn, body, 1);
  } else if (strcmp(path, "acks") == 0) {
    json_object *on;
    dgw_mock_set_ack(mock, !json_object_object_get_ex(body, "on", &on) ||
                               json_object_get_boolean(on));
    ctl_reply(conn, 200, json_object_new_object());
  } else if (strcmp(path, "invalidate") == 0) {
    if (dgw_mock_invalidate_session(mock, str_or(body, "session_id", NULL)) !=
        DGW_OK)
      ctl_error(conn, 404, "no such session");
    else
      ctl_reply(conn, 200, json_object_new_object());
  } else if (strcmp(path, "ratelimit") == 0) {
    mock_ratelimit_ctl(conn, body);
  } else if (strcmp(path, "reset") == 0) {
    mock_world_reset(mock);
    mock_ratelimit_reset(mock);
    dgw_mock_set_ack(mock, 1);
    ctl_reply(conn, 200, json_object_new_object());
  } else {
    ctl_error(conn, 404, "404: Not Found");
  }
  json_object_put(body);
}

void mock_conn_send_builtin_guild(struct dgw_mock_conn *conn) {
  json_object *g;

  if (!conn->mock->cfg.builtin_guild || conn->session == NULL ||
      !mock_world_on_shard(conn->session, MOCK_GUILD_ID))
    return;
  if ((g = mock_shape_guild_create()) == NULL)
    return;
  mock_conn_send_dispatch(conn, "GUILD_CREATE", mock_json_plain(g));
  json_object_put(g);
}
