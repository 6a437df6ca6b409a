/* Gathering the dispatches that answer member and voice requests. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <dgw/field.h>

#include "requests.h"

/* What a look at one string field of d without a DOM told. */
enum peeked { PEEK_UNSURE, PEEK_ABSENT, PEEK_STRING };

struct member_wait {
  struct member_wait *next;
  char *nonce;
  char *guild_id;
  dgw_members_fn fn;
  void *user_data;
  struct json_object *members, *not_found, *presences;
  int64_t chunk_count;
  int64_t seen;
};

struct voice_wait {
  struct voice_wait *next;
  char *guild_id;
  dgw_voice_fn fn;
  void *user_data;
  struct json_object *state, *server;
};

struct dgw_requests {
  struct member_wait *members;
  struct voice_wait *voices;
};

static void free_member(struct member_wait *w) {
  free(w->nonce);
  free(w->guild_id);
  json_object_put(w->members);
  json_object_put(w->not_found);
  json_object_put(w->presences);
  free(w);
}

static void free_voice(struct voice_wait *w) {
  free(w->guild_id);
  json_object_put(w->state);
  json_object_put(w->server);
  free(w);
}

struct dgw_requests *dgw_requests_new(void) {
  return calloc(1, sizeof(struct dgw_requests));
}

void dgw_requests_free(struct dgw_requests *r) {
  if (r == NULL)
    return;
  while (r->members != NULL) {
    struct member_wait *w = r->members;

    r->members = w->next;
    free_member(w);
  }
  while (r->voices != NULL) {
    struct voice_wait *w = r->voices;

    r->voices = w->next;
    free_voice(w);
  }
  free(r);
}

int dgw_requests_add_members(struct dgw_requests *r, const char *nonce,
                             const char *guild_id, dgw_members_fn fn,
                             void *user_data) {
  struct member_wait *w = calloc(1, sizeof(*w));

  if (w == NULL)
    return DGW_ERR_NOMEM;
  w->nonce = strdup(nonce);
  w->guild_id = strdup(guild_id);
  w->members = json_object_new_array();
  w->not_found = json_object_new_array();
  w->presences = json_object_new_array();
  if (w->nonce == NULL || w->guild_id == NULL || w->members == NULL ||
      w->not_found == NULL || w->presences == NULL) {
    free_member(w);
    return DGW_ERR_NOMEM;
  }
  w->fn = fn;
  w->user_data = user_data;
  w->next = r->members;
  r->members = w;
  return DGW_OK;
}

/* Unlinks the voice wait for `guild_id`, if any. */
static struct voice_wait *take_voice(struct dgw_requests *r,
                                     const char *guild_id) {
  for (struct voice_wait **p = &r->voices; *p != NULL; p = &(*p)->next)
    if (strcmp((*p)->guild_id, guild_id) == 0) {
      struct voice_wait *w = *p;

      *p = w->next;
      return w;
    }
  return NULL;
}

int dgw_requests_add_voice(struct dgw_requests *r, struct dgw_gateway *gw,
                           const char *guild_id, dgw_voice_fn fn,
                           void *user_data) {
  struct voice_wait *w = calloc(1, sizeof(*w));
  struct voice_wait *old;

  if (w == NULL || (w->guild_id = strdup(guild_id)) == NULL) {
    free(w);
    return DGW_ERR_NOMEM;
  }
  w->fn = fn;
  w->user_data = user_data;
  old = take_voice(r, guild_id);
  w->next = r->voices;
  r->voices = w;
  if (old != NULL) {
    if (old->fn != NULL)
      old->fn(gw, DGW_ERR_STATE, NULL, NULL, old->user_data);
    free_voice(old);
  }
  return DGW_OK;
}

static const char *get_string(struct json_object *o, const char *key) {
  struct json_object *v;

  if (o != NULL && json_object_object_get_ex(o, key, &v) &&
      json_object_is_type(v, json_type_string))
    return json_object_get_string(v);
  return NULL;
}

/* Appends the elements of array `key` of `d` to `into`. */
static void append_all(struct json_object *into, struct json_object *d,
                       const char *key) {
  struct json_object *a;

  if (!json_object_object_get_ex(d, key, &a) ||
      !json_object_is_type(a, json_type_array))
    return;
  for (size_t i = 0; i < json_object_array_length(a); i++)
    json_object_array_add(into,
                          json_object_get(json_object_array_get_idx(a, i)));
}

static struct member_wait *
take_member(struct dgw_requests *r, const char *nonce, const char *guild_id) {
  for (struct member_wait **p = &r->members; *p != NULL; p = &(*p)->next) {
    struct member_wait *w = *p;

    if ((nonce != NULL && strcmp(w->nonce, nonce) == 0) ||
        (nonce == NULL && guild_id != NULL &&
         strcmp(w->guild_id, guild_id) == 0)) {
      *p = w->next;
      return w;
    }
  }
  return NULL;
}

void dgw_requests_cancel_members(struct dgw_requests *r, const char *nonce) {
  struct member_wait *w = take_member(r, nonce, NULL);

  if (w != NULL)
    free_member(w);
}

static void on_chunk(struct dgw_requests *r, struct dgw_gateway *gw,
                     struct json_object *d) {
  const char *nonce = get_string(d, "nonce");
  struct member_wait *w;
  struct json_object *v;
  struct json_object *result;

  if (nonce == NULL || (w = take_member(r, nonce, NULL)) == NULL)
    return; /* somebody else's request (or none) */
  append_all(w->members, d, "members");
  append_all(w->not_found, d, "not_found");
  append_all(w->presences, d, "presences");
  if (json_object_object_get_ex(d, "chunk_count", &v))
    w->chunk_count = json_object_get_int64(v);
  w->seen++;
  if (w->seen < w->chunk_count) {
    w->next = r->members; /* more to come */
    r->members = w;
    return;
  }
  result = json_object_new_object();
  json_object_object_add(result, "guild_id",
                         json_object_new_string(w->guild_id));
  json_object_object_add(result, "nonce", json_object_new_string(w->nonce));
  json_object_object_add(result, "chunk_count",
                         json_object_new_int64(w->chunk_count));
  json_object_object_add(result, "members", json_object_get(w->members));
  json_object_object_add(result, "not_found", json_object_get(w->not_found));
  json_object_object_add(result, "presences", json_object_get(w->presences));
  if (w->fn != NULL)
    w->fn(gw, DGW_OK, result, w->user_data);
  json_object_put(result);
  free_member(w);
}

static void on_rate_limited(struct dgw_requests *r, struct dgw_gateway *gw,
                            struct json_object *d) {
  struct json_object *op;
  struct json_object *meta = NULL;
  struct member_wait *w;

  if (!json_object_object_get_ex(d, "opcode", &op) ||
      json_object_get_int(op) != 8)
    return;
  json_object_object_get_ex(d, "meta", &meta);
  w = take_member(r, get_string(meta, "nonce"), get_string(meta, "guild_id"));
  if (w == NULL)
    return;
  if (w->fn != NULL)
    w->fn(gw, DGW_ERR_RATE_LIMITED, d, w->user_data);
  free_member(w);
}

static void on_voice(struct dgw_requests *r, struct dgw_gateway *gw,
                     struct json_object *d, int is_server,
                     const char *self_id) {
  const char *guild = get_string(d, "guild_id");
  struct voice_wait *w;

  if (guild == NULL)
    return;
  if (!is_server) {
    const char *user = get_string(d, "user_id");

    if (self_id == NULL || user == NULL || strcmp(user, self_id) != 0)
      return; /* another member's voice state */
  }
  if ((w = take_voice(r, guild)) == NULL)
    return;
  if (is_server) {
    json_object_put(w->server);
    w->server = json_object_get(d);
  } else {
    json_object_put(w->state);
    w->state = json_object_get(d);
  }
  if (w->state == NULL || w->server == NULL) {
    w->next = r->voices;
    r->voices = w;
    return;
  }
  if (w->fn != NULL)
    w->fn(gw, DGW_OK, w->state, w->server, w->user_data);
  free_voice(w);
}

/*
 * Reads the string member `pointer` of the event's d with the field
 * getters into buf, as get_string() would see it on the DOM: PEEK_STRING
 * (NUL-terminated; strcmp() stops at a decoded U+0000 as it does on
 * json-c's string), PEEK_ABSENT when d has no such string (absent, another
 * type, d not an object: get_string() returns NULL), or PEEK_UNSURE when
 * only the DOM can tell (too long for buf, an unpaired surrogate).
 */
static enum peeked peek_string(const struct dgw_event *ev, const char *pointer,
                               char *buf, size_t size) {
  size_t len, n;
  const char *d = dgw_event_data(ev, &len);
  int rc;

  if (d == NULL)
    return PEEK_ABSENT; /* absent d: the DOM is NULL too */
  rc = dgw_field_string(d, len, pointer, buf, size, &n);
  if (rc == DGW_OK)
    return PEEK_STRING;
  return rc == DGW_ERR_NOT_FOUND || rc == DGW_ERR_TYPE ? PEEK_ABSENT
                                                       : PEEK_UNSURE;
}

/* Whether a member chunk may be for one of our requests: its nonce
 * (read without a DOM) is one we wait for, or could not be read. */
static int chunk_wanted(const struct dgw_requests *r,
                        const struct dgw_event *ev) {
  char nonce[64];

  switch (peek_string(ev, "/nonce", nonce, sizeof(nonce))) {
  case PEEK_ABSENT:
    return 0;
  case PEEK_UNSURE:
    return 1;
  case PEEK_STRING:
    break;
  }
  for (const struct member_wait *w = r->members; w != NULL; w = w->next)
    if (strcmp(w->nonce, nonce) == 0)
      return 1;
  return 0;
}

/* Whether a voice event may answer one of our requests: a guild we wait
 * for and, for a voice state, the bot's own user (both read without a
 * DOM; 1 when either could not be read). */
static int voice_wanted(const struct dgw_requests *r,
                        const struct dgw_event *ev, int is_server,
                        const char *self_id) {
  char guild[128], user[128];
  const struct voice_wait *w;

  if (!is_server) {
    if (self_id == NULL)
      return 0;
    switch (peek_string(ev, "/user_id", user, sizeof(user))) {
    case PEEK_ABSENT:
      return 0;
    case PEEK_UNSURE:
      return 1;
    case PEEK_STRING:
      if (strcmp(user, self_id) != 0)
        return 0; /* another member's voice state */
      break;
    }
  }
  switch (peek_string(ev, "/guild_id", guild, sizeof(guild))) {
  case PEEK_ABSENT:
    return 0;
  case PEEK_UNSURE:
    return 1;
  case PEEK_STRING:
    break;
  }
  for (w = r->voices; w != NULL; w = w->next)
    if (strcmp(w->guild_id, guild) == 0)
      return 1;
  return 0;
}

/* Whether a RATE_LIMITED event may be about op 8: its opcode, read
 * without a DOM, is 8 or not a plain integer (json-c's get_int decides). */
static int rate_limit_wanted(const struct dgw_event *ev) {
  size_t len;
  const char *d = dgw_event_data(ev, &len);
  int64_t op;
  int rc;

  if (d == NULL)
    return 0;
  rc = dgw_field_int64(d, len, "/opcode", &op);
  if (rc == DGW_ERR_NOT_FOUND || (rc == DGW_OK && op != 8))
    return 0;
  return 1;
}

/* Each event is first looked at without a DOM (dgw_field_*): only one
 * that may answer a waiting request is parsed, through the event's
 * cached view. */
void dgw_requests_observe(struct dgw_requests *r, struct dgw_gateway *gw,
                          const struct dgw_event *ev, const char *self_id) {
  const char *name = dgw_event_name(ev);
  struct json_object *d;

  if (r->members != NULL && strcmp(name, "GUILD_MEMBERS_CHUNK") == 0) {
    if (chunk_wanted(r, ev) && (d = dgw_event_json(ev)) != NULL)
      on_chunk(r, gw, d);
  } else if (r->members != NULL && strcmp(name, "RATE_LIMITED") == 0) {
    if (rate_limit_wanted(ev) && (d = dgw_event_json(ev)) != NULL)
      on_rate_limited(r, gw, d);
  } else if (r->voices != NULL && (strcmp(name, "VOICE_STATE_UPDATE") == 0 ||
                                   strcmp(name, "VOICE_SERVER_UPDATE") == 0)) {
    int is_server = strcmp(name, "VOICE_SERVER_UPDATE") == 0;

    if (voice_wanted(r, ev, is_server, self_id) &&
        (d = dgw_event_json(ev)) != NULL)
      on_voice(r, gw, d, is_server, self_id);
  }
}

void dgw_requests_fail_all(struct dgw_requests *r, struct dgw_gateway *gw,
                           int error) {
  struct member_wait *m = r->members;
  struct voice_wait *v = r->voices;

  /* Detach first: a callback may start new requests. */
  r->members = NULL;
  r->voices = NULL;
  while (m != NULL) {
    struct member_wait *next = m->next;

    if (m->fn != NULL)
      m->fn(gw, error, NULL, m->user_data);
    free_member(m);
    m = next;
  }
  while (v != NULL) {
    struct voice_wait *next = v->next;

    if (v->fn != NULL)
      v->fn(gw, error, NULL, NULL, v->user_data);
    free_voice(v);
    v = next;
  }
}

size_t dgw_requests_pending(const struct dgw_requests *r) {
  size_t n = 0;

  for (const struct member_wait *m = r->members; m != NULL; m = m->next)
    n++;
  for (const struct voice_wait *v = r->voices; v != NULL; v = v->next)
    n++;
  return n;
}
