#include "config.h"

/*
 * What the mock's REST and control API keep in memory: the messages
 * created (so they can be edited, deleted, reacted to), the application
 * commands, the interactions the mock sent (so their callbacks can be
 * checked), and a record of what the bot sent (gateway payloads other than
 * heartbeats, REST calls).  Also the one way REST and the control API
 * reach bots: a dispatch to every session of the shard a guild belongs to
 * (shard = (guild_id >> 22) % shard_count, Discord's formula).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <json-c/json.h>

#include "clock.h"
#include "mock_int.h"

#define DISCORD_EPOCH_MS UINT64_C(1420070400000)
#define RECORD_MAX 1000 /* entries kept per record list (the oldest go) */

struct mock_world {
  uint64_t counter;
  json_object *messages;     /* id -> message */
  json_object *commands;     /* array */
  json_object *interactions; /* id -> interaction d */
  json_object *sent;         /* {"gateway": [], "rest": []} */
  json_object *channels;     /* channel id -> guild id (learned) */
  char guild[24];            /* the last answer of channel_guild */
};

static struct mock_world *world(struct dgw_mock *mock) {
  struct mock_world *w = mock->world;

  if (w != NULL)
    return w;
  if ((w = calloc(1, sizeof *w)) == NULL)
    return NULL;
  w->messages = json_object_new_object();
  w->commands = json_object_new_array();
  w->interactions = json_object_new_object();
  w->sent = json_object_new_object();
  w->channels = json_object_new_object();
  if (w->sent != NULL) {
    json_object_object_add(w->sent, "gateway", json_object_new_array());
    json_object_object_add(w->sent, "rest", json_object_new_array());
  }
  if (w->messages == NULL || w->commands == NULL || w->interactions == NULL ||
      w->sent == NULL || w->channels == NULL) {
    json_object_put(w->channels);
    json_object_put(w->messages);
    json_object_put(w->commands);
    json_object_put(w->interactions);
    json_object_put(w->sent);
    free(w);
    return NULL;
  }
  mock->world = w;
  return w;
}

void mock_world_free(struct dgw_mock *mock) {
  struct mock_world *w = mock->world;

  if (w == NULL)
    return;
  json_object_put(w->messages);
  json_object_put(w->commands);
  json_object_put(w->interactions);
  json_object_put(w->sent);
  json_object_put(w->channels);
  free(w);
  mock->world = NULL;
}

void mock_world_reset(struct dgw_mock *mock) {
  uint64_t counter = mock->world != NULL ? mock->world->counter : 0;

  mock_world_free(mock);
  if (world(mock) != NULL)
    mock->world->counter = counter;
}

void mock_world_snowflake(struct dgw_mock *mock, char out[24]) {
  struct mock_world *w = world(mock);
  struct timeval tv;
  uint64_t ms, n = 0;

  gettimeofday(&tv, NULL);
  ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)tv.tv_usec / 1000;
  if (w != NULL)
    n = ++w->counter;
  snprintf(out, 24, "%" PRIu64,
           (uint64_t)(((ms - DISCORD_EPOCH_MS) << 22) | (n & 0x3fffff)));
}

int mock_world_on_shard(const struct mock_session *s, const char *guild_id) {
  uint64_t gid = guild_id != NULL ? strtoull(guild_id, NULL, 10) : 0;
  int64_t shard = 0;

  if (s->shard_count > 0)
    shard = (int64_t)((gid >> 22) % (uint64_t)s->shard_count);
  return shard == s->shard_id;
}

int mock_world_dispatch(struct dgw_mock *mock, const char *guild_id,
                        const char *t, const char *d_json) {
  struct mock_session *s, *next;
  int n = 0;

  if (mock->freeing)
    return 0;
  for (s = mock->sessions; s != NULL; s = next) {
    struct dgw_mock_conn *conn = s->conn;

    next = s->next;
    if (!mock_world_on_shard(s, guild_id))
      continue;
    if (conn != NULL)
      mock_conn_enter(conn);
    if (mock_session_dispatch(s, t, d_json, NULL) == DGW_OK)
      n++;
    if (conn != NULL)
      mock_conn_leave(conn);
  }
  return n;
}

int mock_world_put_message(struct dgw_mock *mock, json_object *msg) {
  struct mock_world *w = world(mock);
  json_object *id;

  if (w == NULL || !json_object_object_get_ex(msg, "id", &id)) {
    json_object_put(msg);
    return -1;
  }
  return json_object_object_add(w->messages, json_object_get_string(id), msg);
}

json_object *mock_world_message(struct dgw_mock *mock, const char *id) {
  struct mock_world *w = world(mock);
  json_object *m;

  if (w == NULL || !json_object_object_get_ex(w->messages, id, &m))
    return NULL;
  return m;
}

int mock_world_delete_message(struct dgw_mock *mock, const char *id) {
  if (mock_world_message(mock, id) == NULL)
    return -1;
  json_object_object_del(mock->world->messages, id);
  return 0;
}

json_object *mock_world_commands(struct dgw_mock *mock) {
  struct mock_world *w = world(mock);

  return w != NULL ? w->commands : NULL;
}

void mock_world_set_commands(struct dgw_mock *mock, json_object *arr) {
  struct mock_world *w = world(mock);

  if (w == NULL) {
    json_object_put(arr);
    return;
  }
  json_object_put(w->commands);
  w->commands = arr;
}

int mock_world_put_interaction(struct dgw_mock *mock, json_object *inter) {
  struct mock_world *w = world(mock);
  json_object *id;

  if (w == NULL || !json_object_object_get_ex(inter, "id", &id)) {
    json_object_put(inter);
    return -1;
  }
  return json_object_object_add(w->interactions, json_object_get_string(id),
                                inter);
}

json_object *mock_world_interaction(struct dgw_mock *mock, const char *id,
                                    const char *token) {
  struct mock_world *w = world(mock);
  json_object *inter, *tok;

  if (w == NULL || !json_object_object_get_ex(w->interactions, id, &inter) ||
      !json_object_object_get_ex(inter, "token", &tok) ||
      strcmp(json_object_get_string(tok), token) != 0)
    return NULL;
  return inter;
}

json_object *mock_world_interaction_by_token(struct dgw_mock *mock,
                                             const char *token) {
  struct mock_world *w = world(mock);

  if (w == NULL)
    return NULL;
  json_object_object_foreach(w->interactions, id, inter) {
    json_object *tok;

    (void)id;
    if (json_object_object_get_ex(inter, "token", &tok) &&
        strcmp(json_object_get_string(tok), token) == 0)
      return inter;
  }
  return NULL;
}

/* Appends `entry` (taken over) to record list `name`, dropping the oldest
 * beyond RECORD_MAX. */
static void record(struct dgw_mock *mock, const char *name,
                   json_object *entry) {
  struct mock_world *w = world(mock);
  json_object *list;

  if (w == NULL || entry == NULL ||
      !json_object_object_get_ex(w->sent, name, &list)) {
    json_object_put(entry);
    return;
  }
  if (json_object_array_length(list) >= RECORD_MAX)
    json_object_array_del_idx(list, 0, 1);
  if (json_object_array_add(list, entry) != 0)
    json_object_put(entry);
}

void mock_world_record_gateway(struct dgw_mock_conn *conn, int op,
                               const char *json, size_t len) {
  struct mock_session *s = conn->session;
  json_object *e, *payload, *d, *sh;
  int ok;
  int64_t shard = s != NULL ? s->shard_id : 0;

  if (op == 1) /* heartbeats: counted in the stats, not recorded */
    return;
  if ((e = json_object_new_object()) == NULL)
    return;
  payload = mock_json_parse_exact(json, len, &ok);
  /* An IDENTIFY is recorded before its session exists: its own d.shard. */
  if (op == 2 && ok && json_object_object_get_ex(payload, "d", &d) &&
      json_object_object_get_ex(d, "shard", &sh) &&
      json_object_is_type(sh, json_type_array) &&
      json_object_array_length(sh) >= 1)
    shard = json_object_get_int64(json_object_array_get_idx(sh, 0));
  json_object_object_add(e, "conn", json_object_new_int64((int64_t)conn->id));
  json_object_object_add(e, "shard", json_object_new_int64(shard));
  json_object_object_add(e, "op", json_object_new_int(op));
  /* When it arrived (the mock's monotonic clock, ms): tests compare the
   * times of IDENTIFYs of one bucket. */
  json_object_object_add(e, "at_ms",
                         json_object_new_int64((int64_t)dgw_monotonic_ms()));
  json_object_object_add(
      e, "payload", ok ? payload : json_object_new_string_len(json, (int)len));
  record(conn->mock, "gateway", e);
}

void mock_world_record_rest(struct dgw_mock *mock,
                            const struct mock_http_req *req, int status) {
  json_object *e = json_object_new_object(), *body = NULL;
  int ok = 0;

  if (e == NULL)
    return;
  json_object_object_add(e, "method", json_object_new_string(req->method));
  json_object_object_add(e, "path", json_object_new_string(req->path));
  json_object_object_add(e, "query", json_object_new_string(req->query));
  if (req->body_len > 0)
    body = mock_json_parse_exact(req->body, req->body_len, &ok);
  if (req->body_len > 0 && !ok)
    body = json_object_new_string_len(req->body, (int)req->body_len);
  json_object_object_add(e, "body", body);
  json_object_object_add(e, "status", json_object_new_int(status));
  record(mock, "rest", e);
}

json_object *mock_world_sent(struct dgw_mock *mock) {
  struct mock_world *w = world(mock);

  return w != NULL ? w->sent : NULL;
}

void mock_world_learn_channel(struct dgw_mock *mock, const char *channel_id,
                              const char *guild_id) {
  struct mock_world *w = world(mock);

  if (w != NULL)
    json_object_object_add(w->channels, channel_id,
                           json_object_new_string(guild_id));
}

const char *mock_world_channel_guild(struct dgw_mock *mock,
                                     const char *channel_id) {
  struct mock_world *w = world(mock);
  const struct mock_dispatch *disp;
  const char *g = mock_shape_channel_guild(channel_id);
  json_object *v;

  if (g != NULL || w == NULL)
    return g;
  if (json_object_object_get_ex(w->channels, channel_id, &v)) {
    snprintf(w->guild, sizeof w->guild, "%s", json_object_get_string(v));
    return w->guild;
  }
  /* A scripted GUILD_CREATE that lists the channel. */
  for (disp = mock->script; disp != NULL; disp = disp->next) {
    json_object *d, *chans;
    int ok, found = 0;

    if (disp->guild_id == NULL)
      continue;
    d = mock_json_parse_exact(disp->d_json, strlen(disp->d_json), &ok);
    if (d != NULL && json_object_object_get_ex(d, "channels", &chans) &&
        json_object_is_type(chans, json_type_array))
      for (size_t i = 0; i < json_object_array_length(chans); i++) {
        json_object *c = json_object_array_get_idx(chans, i), *id;
        if (json_object_object_get_ex(c, "id", &id) &&
            strcmp(json_object_get_string(id), channel_id) == 0)
          found = 1;
      }
    json_object_put(d);
    if (found) {
      snprintf(w->guild, sizeof w->guild, "%s",
               json_object_get_string(disp->guild_id));
      return w->guild;
    }
  }
  return NULL;
}
