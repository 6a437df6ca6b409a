#include "config.h"

/*
 * Commands (protocol §11, §13.10): ops 3, 4, 8, 31 and 43, accepted after
 * IDENTIFY or RESUME.  Each is checked against the rules at the top of
 * mock.h and answered with ordinary dispatches of the session
 * (mock_session_dispatch()), which take sequence numbers and are replayed
 * by a RESUME.
 */

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "mock_int.h"

/* Defaults of the config and fixed answers. */
#define MOCK_DEFAULT_MEMBERS 2500u
#define MOCK_DEFAULT_CHUNK_SIZE 1000u
#define MOCK_DEFAULT_MEMBER_RATE_MS 30000u
#define MOCK_MEMBER_ID_BASE UINT64_C(2000000000000000000)
#define MOCK_MAX_USER_IDS 100 /* user_ids per op 8 */
#define MOCK_QUERY_MAX 100    /* members a prefix query returns */
#define MOCK_NONCE_MAX 32     /* bytes of a nonce Discord echoes */
#define MOCK_INFO_CHANNEL_ID "3000000000000000001"
#define MOCK_CHANNEL_STATUS "mock status"
#define MOCK_VOICE_START_TIME 1764201600
#define MOCK_SOUND_ID_BASE UINT64_C(4000000000000000000)
#define MOCK_SOUNDS_PER_GUILD 2
#define MOCK_VOICE_ENDPOINT "voice.mock.invalid:443"

/* When an all-members request (op 8) for a guild was last served. */
struct mock_member_rate {
  uint64_t guild_id;
  uint64_t at_ms;
};

/* --------------------------------------------------------------------- JSON */

/*
 * Reads a snowflake: a string of 1 to 20 digits or a JSON integer >= 0,
 * at most UINT64_MAX.  Returns 0, or -1 when `v` is not one.
 */
static int json_snowflake(json_object *v, uint64_t *out) {
  if (mock_json_is_int(v)) {
    if (json_object_get_int64(v) < 0)
      return -1;
    *out = json_object_get_uint64(v);
    return 0;
  }
  if (v != NULL && json_object_is_type(v, json_type_string)) {
    const char *str = json_object_get_string(v);
    int len = json_object_get_string_len(v), i;
    uint64_t x = 0;

    if (len <= 0 || len > 20)
      return -1;
    for (i = 0; i < len; i++) {
      unsigned digit;
      if (str[i] < '0' || str[i] > '9')
        return -1;
      digit = (unsigned)(str[i] - '0');
      if (x > (UINT64_MAX - digit) / 10)
        return -1;
      x = x * 10 + digit;
    }
    *out = x;
    return 0;
  }
  return -1;
}

/* A snowflake as a JSON string; NULL when out of memory. */
static json_object *json_new_snowflake(uint64_t id) {
  char text[24];

  snprintf(text, sizeof text, "%" PRIu64, id);
  return json_object_new_string(text);
}

/* Whether `v` is a string (when `allow_null`, or null). */
static int json_is_string(json_object *v, int allow_null) {
  if (v == NULL)
    return allow_null;
  return json_object_is_type(v, json_type_string);
}

static int json_is_bool(json_object *v) {
  return v != NULL && json_object_is_type(v, json_type_boolean);
}

/* `d.key` as a snowflake: 0, or -1 when missing or not one. */
static int json_get_snowflake(json_object *d, const char *key, uint64_t *out) {
  json_object *v;

  if (!json_object_object_get_ex(d, key, &v))
    return -1;
  return json_snowflake(v, out);
}

/*
 * Makes `d` (consumed, may be NULL) a dispatch `t` of the session.  `bad`
 * says building `d` ran out of memory.  Returns DGW_OK once the dispatch
 * is in the history, DGW_ERR_NOMEM otherwise.
 */
static int session_dispatch_obj(struct mock_session *s, const char *t,
                                json_object *d, int bad) {
  const char *text;
  int rv;

  if (d == NULL || bad) {
    json_object_put(d);
    return DGW_ERR_NOMEM;
  }
  text = mock_json_plain(d);
  rv = text != NULL ? mock_session_dispatch(s, t, text, NULL) : DGW_ERR_NOMEM;
  json_object_put(d);
  return rv == MOCK_INTENTS_DROP ? DGW_OK : rv; /* VOICE_STATE_UPDATE */
}

/* ------------------------------------------------------------ op 3 and op 4 */

/* op 3 (protocol §11.1): all four fields, with their types. */
static int cmd_presence(json_object *d) {
  static const char *const statuses[] = {"online", "dnd", "idle", "invisible",
                                         "offline"};
  json_object *v, *acts;
  const char *status;
  size_t i, n;
  int known = 0;

  if (!json_object_object_get_ex(d, "since", &v) ||
      (v != NULL && (!mock_json_is_int(v) || json_object_get_int64(v) < 0)))
    return DGW_ERR_INVALID_ARGUMENT;
  if (!json_object_object_get_ex(d, "afk", &v) || !json_is_bool(v))
    return DGW_ERR_INVALID_ARGUMENT;
  if (!json_object_object_get_ex(d, "status", &v) || !json_is_string(v, 0))
    return DGW_ERR_INVALID_ARGUMENT;
  status = json_object_get_string(v);
  for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
    known |= strcmp(status, statuses[i]) == 0;
  if (!known)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!json_object_object_get_ex(d, "activities", &acts) || acts == NULL ||
      !json_object_is_type(acts, json_type_array))
    return DGW_ERR_INVALID_ARGUMENT;
  n = json_object_array_length(acts);
  for (i = 0; i < n; i++) {
    json_object *a = json_object_array_get_idx(acts, i);
    int64_t type;
    if (a == NULL || !json_object_is_type(a, json_type_object) ||
        !json_object_object_get_ex(a, "name", &v) || !json_is_string(v, 0) ||
        !json_object_object_get_ex(a, "type", &v) || !mock_json_is_int(v))
      return DGW_ERR_INVALID_ARGUMENT;
    type = json_object_get_int64(v);
    if (type < 0 || type > 5)
      return DGW_ERR_INVALID_ARGUMENT;
    if ((json_object_object_get_ex(a, "state", &v) && !json_is_string(v, 1)) ||
        (json_object_object_get_ex(a, "url", &v) && !json_is_string(v, 1)))
      return DGW_ERR_INVALID_ARGUMENT;
  }
  return DGW_OK;
}

static json_object *voice_state_d(const struct mock_session *s, uint64_t guild,
                                  int has_channel, uint64_t channel,
                                  int self_mute, int self_deaf) {
  json_object *d = json_object_new_object(), *member, *user;
  int bad = 0;

  if (d == NULL)
    return NULL;
  bad |= mock_json_add(d, "guild_id", json_new_snowflake(guild));
  if (has_channel)
    bad |= mock_json_add(d, "channel_id", json_new_snowflake(channel));
  else if (json_object_object_add(d, "channel_id", NULL) != 0)
    bad = -1;
  bad |= mock_json_add(d, "user_id", json_object_new_string(MOCK_USER_ID));
  bad |= mock_json_add(d, "session_id", json_object_new_string(s->id));
  bad |= mock_json_add(d, "deaf", json_object_new_boolean(0));
  bad |= mock_json_add(d, "mute", json_object_new_boolean(0));
  bad |= mock_json_add(d, "self_deaf", json_object_new_boolean(self_deaf));
  bad |= mock_json_add(d, "self_mute", json_object_new_boolean(self_mute));
  bad |= mock_json_add(d, "self_video", json_object_new_boolean(0));
  bad |= mock_json_add(d, "suppress", json_object_new_boolean(0));
  if (json_object_object_add(d, "request_to_speak_timestamp", NULL) != 0)
    bad = -1;
  if ((member = json_object_new_object()) != NULL) {
    if ((user = json_object_new_object()) != NULL) {
      bad |= mock_json_add(user, "id", json_object_new_string(MOCK_USER_ID));
      bad |=
          mock_json_add(user, "username", json_object_new_string("dgw-mock"));
      bad |= mock_json_add(user, "bot", json_object_new_boolean(1));
    }
    bad |= mock_json_add(member, "user", user);
    bad |= mock_json_add(member, "roles", json_object_new_array());
    bad |= mock_json_add(member, "deaf", json_object_new_boolean(0));
    bad |= mock_json_add(member, "mute", json_object_new_boolean(0));
  }
  bad |= mock_json_add(d, "member", member);
  if (bad) {
    json_object_put(d);
    return NULL;
  }
  return d;
}

static json_object *voice_server_d(uint64_t guild) {
  json_object *d = json_object_new_object();
  char token[12 + 33];
  int bad = 0;

  if (d == NULL)
    return NULL;
  memcpy(token, "voice-token-", 12);
  mock_random_id(token + 12);
  bad |= mock_json_add(d, "token", json_object_new_string(token));
  bad |= mock_json_add(d, "guild_id", json_new_snowflake(guild));
  bad |=
      mock_json_add(d, "endpoint", json_object_new_string(MOCK_VOICE_ENDPOINT));
  if (bad) {
    json_object_put(d);
    return NULL;
  }
  return d;
}

/* op 4 (protocol §11.2): VOICE_STATE_UPDATE, and VOICE_SERVER_UPDATE
 * unless the bot leaves. */
static int cmd_voice_state(struct dgw_mock *mock, struct mock_session *s,
                           json_object *d) {
  json_object *v;
  uint64_t guild, channel = 0;
  int has_channel, self_mute, self_deaf, rv, i;

  if (json_get_snowflake(d, "guild_id", &guild) != 0 ||
      !json_object_object_get_ex(d, "channel_id", &v))
    return DGW_ERR_INVALID_ARGUMENT;
  has_channel = v != NULL;
  if (has_channel && json_snowflake(v, &channel) != 0)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!json_object_object_get_ex(d, "self_mute", &v) || !json_is_bool(v))
    return DGW_ERR_INVALID_ARGUMENT;
  self_mute = json_object_get_boolean(v);
  if (!json_object_object_get_ex(d, "self_deaf", &v) || !json_is_bool(v))
    return DGW_ERR_INVALID_ARGUMENT;
  self_deaf = json_object_get_boolean(v);
  for (i = 0; i < 2; i++) {
    int server = (i == 0) == (mock->cfg.voice_server_first != 0);
    if (server && !has_channel)
      continue;
    if (server)
      rv = session_dispatch_obj(s, "VOICE_SERVER_UPDATE", voice_server_d(guild),
                                0);
    else
      rv = session_dispatch_obj(
          s, "VOICE_STATE_UPDATE",
          voice_state_d(s, guild, has_channel, channel, self_mute, self_deaf),
          0);
    if (rv != DGW_OK)
      return rv;
  }
  return DGW_OK;
}

/* --------------------------------------------------------------------- op 8 */

/* The members an op 8 request gets. */
struct member_result {
  int all;        /* every member: 0 .. count - 1 */
  uint32_t count; /* members of the guild */
  int by_ids;     /* a user_ids request: not_found goes in chunk 0 */
  uint32_t idx[MOCK_QUERY_MAX > MOCK_MAX_USER_IDS ? MOCK_QUERY_MAX
                                                  : MOCK_MAX_USER_IDS];
  size_t n; /* used of idx (unless `all`) */
  uint64_t not_found[MOCK_MAX_USER_IDS];
  size_t n_not_found;
};

static char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/*
 * Fills r->idx with the members whose username "user<i>" starts with `q`
 * (ASCII case-insensitively), lowest i first, at most `cap`.  The i that
 * start with the digits D are D, then D0..D9, D00..D99, ...: ranges that
 * ascend, so no member list is ever built.
 */
static void members_query(struct member_result *r, const char *q, size_t qlen,
                          size_t cap) {
  static const char prefix[] = "user";
  uint64_t d = 0, lo, span, x;
  size_t i;

  for (i = 0; i < qlen && i < 4; i++)
    if (ascii_lower(q[i]) != prefix[i])
      return;
  if (qlen <= 4) {
    for (x = 0; x < r->count && r->n < cap; x++)
      r->idx[r->n++] = (uint32_t)x;
    return;
  }
  q += 4;
  qlen -= 4;
  if (qlen > 10 || (q[0] == '0' && qlen > 1))
    return; /* more digits than a uint32_t, or a leading zero */
  for (i = 0; i < qlen; i++) {
    if (q[i] < '0' || q[i] > '9')
      return;
    d = d * 10 + (uint64_t)(q[i] - '0');
  }
  for (lo = d, span = 1; lo < r->count && r->n < cap; lo *= 10, span *= 10) {
    for (x = lo; x < lo + span && x < r->count && r->n < cap; x++)
      r->idx[r->n++] = (uint32_t)x;
    if (d == 0)
      break; /* "user0": only member 0 */
  }
}

/* Sorts the requested user ids into members and not_found, each once. */
static int members_by_ids(struct member_result *r, json_object *ids) {
  size_t i, j, n = 1;
  int single = !json_object_is_type(ids, json_type_array);

  if (!single) {
    n = json_object_array_length(ids);
    if (n > MOCK_MAX_USER_IDS)
      return DGW_ERR_INVALID_ARGUMENT;
  }
  r->by_ids = 1;
  for (i = 0; i < n; i++) {
    json_object *v = single ? ids : json_object_array_get_idx(ids, i);
    uint64_t id;
    int seen = 0;

    if (json_snowflake(v, &id) != 0)
      return DGW_ERR_INVALID_ARGUMENT;
    if (id >= MOCK_MEMBER_ID_BASE && id - MOCK_MEMBER_ID_BASE < r->count) {
      uint32_t m = (uint32_t)(id - MOCK_MEMBER_ID_BASE);
      for (j = 0; j < r->n; j++)
        seen |= r->idx[j] == m;
      if (!seen)
        r->idx[r->n++] = m;
    } else {
      for (j = 0; j < r->n_not_found; j++)
        seen |= r->not_found[j] == id;
      if (!seen)
        r->not_found[r->n_not_found++] = id;
    }
  }
  return DGW_OK;
}

static json_object *member_obj(uint64_t i) {
  json_object *m = json_object_new_object(), *user;
  char name[32];
  int bad = 0;

  if (m == NULL)
    return NULL;
  snprintf(name, sizeof name, "user%" PRIu64, i);
  if ((user = json_object_new_object()) != NULL) {
    bad |=
        mock_json_add(user, "id", json_new_snowflake(MOCK_MEMBER_ID_BASE + i));
    bad |= mock_json_add(user, "username", json_object_new_string(name));
  }
  bad |= mock_json_add(m, "user", user);
  if (bad) {
    json_object_put(m);
    return NULL;
  }
  return m;
}

/* GUILD_MEMBERS_CHUNK dispatches of at most cfg.chunk_size members; one,
 * empty, when nothing matched. */
static int member_chunks(struct dgw_mock *mock, struct mock_session *s,
                         uint64_t guild, const struct member_result *r,
                         const char *nonce, int presences) {
  uint64_t size = mock->cfg.chunk_size != 0 ? mock->cfg.chunk_size
                                            : MOCK_DEFAULT_CHUNK_SIZE;
  uint64_t total = r->all ? r->count : r->n;
  uint64_t chunks = total == 0 ? 1 : (total + size - 1) / size, k, p;
  size_t i;

  for (k = 0; k < chunks; k++) {
    json_object *d = json_object_new_object(), *members, *nf;
    int bad = 0, rv;

    if (d == NULL)
      return DGW_ERR_NOMEM;
    bad |= mock_json_add(d, "guild_id", json_new_snowflake(guild));
    if ((members = json_object_new_array()) != NULL) {
      for (p = k * size; !bad && p < total && p < (k + 1) * size; p++)
        bad |= mock_json_append(members, member_obj(r->all ? p : r->idx[p]));
    }
    bad |= mock_json_add(d, "members", members);
    bad |= mock_json_add(d, "chunk_index", json_object_new_int64((int64_t)k));
    bad |=
        mock_json_add(d, "chunk_count", json_object_new_int64((int64_t)chunks));
    if (k == 0 && r->by_ids) {
      if ((nf = json_object_new_array()) != NULL) {
        for (i = 0; i < r->n_not_found; i++)
          bad |= mock_json_append(nf, json_new_snowflake(r->not_found[i]));
      }
      bad |= mock_json_add(d, "not_found", nf);
    }
    if (presences)
      bad |= mock_json_add(d, "presences", json_object_new_array());
    if (nonce != NULL)
      bad |= mock_json_add(d, "nonce", json_object_new_string(nonce));
    rv = session_dispatch_obj(s, "GUILD_MEMBERS_CHUNK", d, bad);
    if (rv != DGW_OK)
      return rv;
  }
  return DGW_OK;
}

/*
 * The all-members rate of a session (protocol §6.4): returns 0 and
 * remembers now when `guild` may be served, the milliseconds left (>= 1)
 * when it may not, -1 when out of memory.
 */
static int64_t session_member_rate(struct mock_session *s, uint64_t guild) {
  uint64_t rate = s->mock->cfg.member_rate_ms != 0
                      ? s->mock->cfg.member_rate_ms
                      : MOCK_DEFAULT_MEMBER_RATE_MS;
  uint64_t now = mock_now_ms();
  size_t i, kept = 0;

  for (i = 0; i < s->member_rates_len; i++)
    if (now - s->member_rates[i].at_ms < rate)
      s->member_rates[kept++] = s->member_rates[i];
  s->member_rates_len = kept;
  for (i = 0; i < kept; i++)
    if (s->member_rates[i].guild_id == guild)
      return (int64_t)(rate - (now - s->member_rates[i].at_ms));
  if (s->member_rates_len == s->member_rates_cap) {
    size_t cap = s->member_rates_cap != 0 ? s->member_rates_cap * 2 : 8;
    struct mock_member_rate *p;
    if (cap > SIZE_MAX / sizeof *p ||
        (p = realloc(s->member_rates, cap * sizeof *p)) == NULL)
      return -1;
    s->member_rates = p;
    s->member_rates_cap = cap;
  }
  s->member_rates[s->member_rates_len].guild_id = guild;
  s->member_rates[s->member_rates_len].at_ms = now;
  s->member_rates_len++;
  return 0;
}

static int member_rate_limited(struct dgw_mock *mock, struct mock_session *s,
                               uint64_t guild, const char *nonce,
                               int64_t wait_ms) {
  json_object *d = json_object_new_object(), *meta;
  char secs[32];
  int bad = 0;

  if (d == NULL)
    return DGW_ERR_NOMEM;
  snprintf(secs, sizeof secs, "%" PRId64 ".%03" PRId64, wait_ms / 1000,
           wait_ms % 1000);
  bad |= mock_json_add(d, "opcode", json_object_new_int(8));
  bad |=
      mock_json_add(d, "retry_after",
                    json_object_new_double_s((double)wait_ms / 1000.0, secs));
  if ((meta = json_object_new_object()) != NULL) {
    bad |= mock_json_add(meta, "guild_id", json_new_snowflake(guild));
    if (nonce != NULL)
      bad |= mock_json_add(meta, "nonce", json_object_new_string(nonce));
  }
  bad |= mock_json_add(d, "meta", meta);
  mock->stats.rate_limited++;
  return session_dispatch_obj(s, "RATE_LIMITED", d, bad);
}

/* op 8 (protocol §11.3, §6.4). */
static int cmd_members(struct dgw_mock *mock, struct mock_session *s,
                       json_object *d) {
  struct member_result *r;
  json_object *v, *ids, *query;
  const char *nonce = NULL;
  uint64_t guild;
  int presences = 0, rv = DGW_OK;

  if (json_get_snowflake(d, "guild_id", &guild) != 0)
    return DGW_ERR_INVALID_ARGUMENT;
  if (json_object_object_get_ex(d, "presences", &v) && v != NULL) {
    if (!json_is_bool(v))
      return DGW_ERR_INVALID_ARGUMENT;
    presences = json_object_get_boolean(v);
  }
  /* An invalid nonce is dropped silently, not refused. */
  if (json_object_object_get_ex(d, "nonce", &v) && json_is_string(v, 0) &&
      json_object_get_string_len(v) >= 1 &&
      json_object_get_string_len(v) <= MOCK_NONCE_MAX)
    nonce = json_object_get_string(v);
  if ((r = calloc(1, sizeof *r)) == NULL)
    return DGW_ERR_NOMEM;
  r->count = mock->cfg.members_per_guild != 0 ? mock->cfg.members_per_guild
                                              : MOCK_DEFAULT_MEMBERS;
  if (json_object_object_get_ex(d, "user_ids", &ids) && ids != NULL) {
    rv = members_by_ids(r, ids);
  } else if (json_object_object_get_ex(d, "query", &query) &&
             json_is_string(query, 0) &&
             json_object_object_get_ex(d, "limit", &v) && mock_json_is_int(v) &&
             json_object_get_int64(v) >= 0) {
    int64_t limit = json_object_get_int64(v);
    int qlen = json_object_get_string_len(query);

    if (qlen == 0 && limit == 0) {
      int64_t wait = session_member_rate(s, guild);
      if (wait < 0)
        rv = DGW_ERR_NOMEM;
      else if (wait > 0)
        rv = member_rate_limited(mock, s, guild, nonce, wait);
      else
        r->all = 1;
      if (wait != 0) {
        free(r);
        return rv;
      }
    } else {
      members_query(r, json_object_get_string(query), (size_t)qlen,
                    limit == 0 || limit > MOCK_QUERY_MAX ? MOCK_QUERY_MAX
                                                         : (size_t)limit);
    }
  } else {
    rv = DGW_ERR_INVALID_ARGUMENT; /* neither user_ids nor query + limit */
  }
  if (rv == DGW_OK)
    rv = member_chunks(mock, s, guild, r, nonce, presences);
  free(r);
  return rv;
}

/* ---------------------------------------------------------- op 31 and op 43 */

/* op 31 (protocol §11.4): one SOUNDBOARD_SOUNDS per guild, in order. */
static int cmd_soundboard(struct mock_session *s, json_object *d) {
  json_object *ids;
  size_t i, n;
  uint64_t guild;
  int k;

  if (!json_object_object_get_ex(d, "guild_ids", &ids) || ids == NULL ||
      !json_object_is_type(ids, json_type_array))
    return DGW_ERR_INVALID_ARGUMENT;
  n = json_object_array_length(ids);
  for (i = 0; i < n; i++)
    if (json_snowflake(json_object_array_get_idx(ids, i), &guild) != 0)
      return DGW_ERR_INVALID_ARGUMENT;
  for (i = 0; i < n; i++) {
    json_object *out = json_object_new_object(), *sounds;
    int bad = 0, rv;

    json_snowflake(json_object_array_get_idx(ids, i), &guild);
    if (out == NULL)
      return DGW_ERR_NOMEM;
    bad |= mock_json_add(out, "guild_id", json_new_snowflake(guild));
    if ((sounds = json_object_new_array()) != NULL) {
      for (k = 1; k <= MOCK_SOUNDS_PER_GUILD; k++) {
        json_object *snd = json_object_new_object();
        char name[24];
        snprintf(name, sizeof name, "sound%d", k);
        if (snd != NULL) {
          bad |= mock_json_add(
              snd, "sound_id",
              json_new_snowflake(MOCK_SOUND_ID_BASE + (uint64_t)k));
          bad |= mock_json_add(snd, "name", json_object_new_string(name));
          bad |= mock_json_add(snd, "volume",
                               json_object_new_double_s(1.0, "1.0"));
          if (json_object_object_add(snd, "emoji_id", NULL) != 0 ||
              json_object_object_add(snd, "emoji_name", NULL) != 0)
            bad = -1;
          bad |= mock_json_add(snd, "guild_id", json_new_snowflake(guild));
          bad |= mock_json_add(snd, "available", json_object_new_boolean(1));
        }
        bad |= mock_json_append(sounds, snd);
      }
    }
    bad |= mock_json_add(out, "soundboard_sounds", sounds);
    rv = session_dispatch_obj(s, "SOUNDBOARD_SOUNDS", out, bad);
    if (rv != DGW_OK)
      return rv;
  }
  return DGW_OK;
}

/* op 43 (protocol §11.5): one CHANNEL_INFO with the fields asked for. */
static int cmd_channel_info(struct mock_session *s, json_object *d) {
  json_object *fields, *out, *channels, *ch;
  uint64_t guild;
  size_t i, n;
  int want_status = 0, want_start = 0, bad = 0;

  if (json_get_snowflake(d, "guild_id", &guild) != 0 ||
      !json_object_object_get_ex(d, "fields", &fields) || fields == NULL ||
      !json_object_is_type(fields, json_type_array))
    return DGW_ERR_INVALID_ARGUMENT;
  n = json_object_array_length(fields);
  for (i = 0; i < n; i++) {
    json_object *f = json_object_array_get_idx(fields, i);
    const char *name;
    if (!json_is_string(f, 0))
      return DGW_ERR_INVALID_ARGUMENT;
    name = json_object_get_string(f);
    if (strcmp(name, "status") == 0)
      want_status = 1;
    else if (strcmp(name, "voice_start_time") == 0)
      want_start = 1;
    else
      return DGW_ERR_INVALID_ARGUMENT;
  }
  if ((out = json_object_new_object()) == NULL)
    return DGW_ERR_NOMEM;
  bad |= mock_json_add(out, "guild_id", json_new_snowflake(guild));
  if ((channels = json_object_new_array()) != NULL) {
    if ((ch = json_object_new_object()) != NULL) {
      bad |=
          mock_json_add(ch, "id", json_object_new_string(MOCK_INFO_CHANNEL_ID));
      if (want_status)
        bad |= mock_json_add(ch, "status",
                             json_object_new_string(MOCK_CHANNEL_STATUS));
      if (want_start)
        bad |= mock_json_add(ch, "voice_start_time",
                             json_object_new_int64(MOCK_VOICE_START_TIME));
    }
    bad |= mock_json_append(channels, ch);
  }
  bad |= mock_json_add(out, "channels", channels);
  return session_dispatch_obj(s, "CHANNEL_INFO", out, bad);
}

/* ----------------------------------------------------------------- dispatch */

/* Ops 3, 4, 8, 31, 43: checks d, answers with dispatches of the session. */
void mock_conn_handle_command(struct dgw_mock_conn *conn, int op,
                              json_object *root) {
  struct dgw_mock *mock = conn->mock;
  struct mock_session *s = conn->session;
  json_object *d;
  const char *what;
  char reason[64];
  int rv;

  switch (op) {
  case 3:
    what = "presence update";
    break;
  case 4:
    what = "voice state update";
    break;
  case 8:
    what = "request guild members";
    break;
  case 31:
    what = "request soundboard sounds";
    break;
  default:
    what = "request channel info";
    break;
  }
  if (!conn->authenticated || s == NULL) {
    mock_conn_close(conn, 4003, "Not authenticated");
    return;
  }
  if (!json_object_object_get_ex(root, "d", &d) || d == NULL ||
      !json_object_is_type(d, json_type_object)) {
    rv = DGW_ERR_INVALID_ARGUMENT;
  } else {
    switch (op) {
    case 3:
      rv = cmd_presence(d);
      break;
    case 4:
      rv = cmd_voice_state(mock, s, d);
      break;
    case 8:
      rv = cmd_members(mock, s, d);
      break;
    case 31:
      rv = cmd_soundboard(s, d);
      break;
    default:
      rv = cmd_channel_info(s, d);
      break;
    }
  }
  if (rv == DGW_OK) {
    mock->stats.commands++;
    mock_log(mock, DGW_LOG_DEBUG, "conn %lu: %s (op %d) done", conn->id, what,
             op);
  } else if (rv == DGW_ERR_INVALID_ARGUMENT) {
    snprintf(reason, sizeof reason, "Invalid %s payload", what);
    mock_conn_close(conn, 4001, reason);
  } else {
    mock_log(mock, DGW_LOG_WARN, "conn %lu: out of memory answering op %d",
             conn->id, op);
    mock_conn_end(conn, END_DROP);
  }
}
