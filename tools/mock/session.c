#include "config.h"

/*
 * Gateway sessions.  IDENTIFY makes one; it lives on the mock, not on a
 * connection: its id, its sequence numbers, the history of the dispatches
 * it sent (for a RESUME's replay) and its position in the script stay when
 * the connection ends, and a RESUME on another connection picks them up.
 *
 * Every dispatch of a session goes through mock_session_dispatch(): the
 * session's intents decide whether it gets the dispatch at all (and what
 * of a message it reads, intents.c), then it
 * takes the next sequence number and enters the history first, and only
 * then is it written to the attached connection (if any, and unless that
 * connection is told to lose it).  The history is thus the truth a replay
 * works from.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <json-c/json.h>

#include "clock.h"
#include "mock_int.h"

/* Dispatches kept per session for a later resume replay. */
#define MOCK_DEFAULT_HISTORY_MAX 1024
/* How long a detached session stays resumable. */
#define MOCK_DEFAULT_SESSION_TTL_MS 180000u
/* Sessions kept after their connection ended (oldest dropped first). */
#define MOCK_DETACHED_SESSIONS_MAX 32

/* A dispatch as it was sent, kept for resume replay. */
struct mock_sent {
  struct mock_sent *next;
  int64_t seq;
  char *json;
};

/* ----------------------------------------------------------------- sessions */

static void session_expire_cb(evutil_socket_t fd, short what, void *arg) {
  struct mock_session *s = arg;

  (void)fd;
  (void)what;
  if (s->conn != NULL)
    return;
  mock_log(s->mock, DGW_LOG_DEBUG, "session %s expired", s->id);
  mock_session_free(s->mock, s);
}

/* A new session, first in the list (the newest); NULL when out of
 * memory. */
static struct mock_session *session_new(struct dgw_mock *mock,
                                        const char *token) {
  struct mock_session *s = calloc(1, sizeof *s);

  if (s == NULL)
    return NULL;
  s->mock = mock;
  s->token = mock_strdup(token);
  s->expire_timer = evtimer_new(mock->base, session_expire_cb, s);
  if (s->token == NULL || s->expire_timer == NULL) {
    if (s->expire_timer != NULL)
      event_free(s->expire_timer);
    free(s->token);
    free(s);
    return NULL;
  }
  mock_random_id(s->id);
  s->next = mock->sessions;
  if (mock->sessions != NULL)
    mock->sessions->prev = s;
  mock->sessions = s;
  return s;
}

/* Unlinks and frees a session; an attached connection stays open, without
 * a session. */
void mock_session_free(struct dgw_mock *mock, struct mock_session *s) {
  struct mock_sent *sent, *next;

  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    mock->sessions = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  if (s->conn != NULL) {
    s->conn->session = NULL;
    s->conn->authenticated = 0;
    if (s->conn->dispatch_timer != NULL)
      evtimer_del(s->conn->dispatch_timer);
  }
  for (sent = s->history; sent != NULL; sent = next) {
    next = sent->next;
    free(sent->json);
    free(sent);
  }
  event_free(s->expire_timer);
  free(s->member_rates);
  free(s->token);
  free(s);
}

/* Appends `sent` (its seq and json set) to the history, dropping the
 * oldest entries beyond cfg.history_max. */
static void session_keep(struct mock_session *s, struct mock_sent *sent) {
  size_t max = s->mock->cfg.history_max != 0 ? s->mock->cfg.history_max
                                             : MOCK_DEFAULT_HISTORY_MAX;

  sent->next = NULL;
  if (s->history_tail != NULL)
    s->history_tail->next = sent;
  else
    s->history = sent;
  s->history_tail = sent;
  s->history_len++;
  while (s->history_len > max) {
    struct mock_sent *old = s->history;
    s->history = old->next;
    free(old->json);
    free(old);
    s->history_len--;
  }
}

static struct mock_session *session_find(const struct dgw_mock *mock,
                                         const char *id) {
  struct mock_session *s;

  for (s = mock->sessions; s != NULL; s = s->next)
    if (strcmp(s->id, id) == 0)
      return s;
  return NULL;
}

/* `id`, or the newest session when `id` is NULL. */
struct mock_session *mock_session_lookup(const struct dgw_mock *mock,
                                         const char *id) {
  if (id == NULL)
    return mock->sessions;
  return session_find(mock, id);
}

/*
 * Detaches the connection's session.  A client that closed first with
 * 1000/1001 ends the session (protocol §4.2; an echo of the mock's own
 * close is not the client's choice); otherwise it stays resumable for
 * session_ttl_ms, up to cfg.detached_max (MOCK_DETACHED_SESSIONS_MAX) of
 * them.
 */
void mock_session_detach(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  struct mock_session *s = conn->session, *last_detached = NULL;
  uint32_t ttl = mock->cfg.session_ttl_ms != 0 ? mock->cfg.session_ttl_ms
                                               : MOCK_DEFAULT_SESSION_TTL_MS;
  struct timeval tv = dgw_timeval_ms(ttl);
  size_t detached = 0;

  if (s == NULL)
    return;
  s->conn = NULL;
  conn->session = NULL;
  if (conn->client_closed && !conn->mock_closed_first &&
      (conn->client_code == 1000 || conn->client_code == 1001)) {
    mock_log(mock, DGW_LOG_DEBUG, "session %s ended by close %d", s->id,
             conn->client_code);
    mock_session_free(mock, s);
    return;
  }
  if (mock->freeing)
    return;
  evtimer_add(s->expire_timer, &tv);
  for (s = mock->sessions; s != NULL; s = s->next) {
    if (s->conn == NULL) {
      detached++;
      last_detached = s;
    }
  }
  if (detached > (mock->cfg.detached_max != 0 ? mock->cfg.detached_max
                                              : MOCK_DETACHED_SESSIONS_MAX) &&
      last_detached != NULL)
    mock_session_free(mock, last_detached);
}

/* Attaches `conn` to `s` (which must have no connection). */
static void session_attach(struct mock_session *s, struct dgw_mock_conn *conn) {
  evtimer_del(s->expire_timer);
  s->conn = conn;
  conn->session = s;
  conn->authenticated = 1;
}

/* --------------------------------------------------------------- dispatches */

/* The text of a dispatch payload; NULL when out of memory.  `d_json` is
 * copied, not formatted: printf would make two passes over what can be a
 * 60 KB GUILD_CREATE, for every session. */
static char *dispatch_json(const char *t, int64_t seq, const char *d_json) {
  json_object *name = json_object_new_string(t);
  size_t head_len, d_len = strlen(d_json);
  char *head, *json;

  if (name == NULL)
    return NULL;
  head = mock_asprintf("{\"t\":%s,\"s\":%lld,\"op\":0,\"d\":",
                       mock_json_plain(name), (long long)seq);
  json_object_put(name);
  if (head == NULL)
    return NULL;
  head_len = strlen(head);
  json = realloc(head, head_len + d_len + 2);
  if (json == NULL) {
    free(head);
    return NULL;
  }
  memcpy(json + head_len, d_json, d_len);
  json[head_len + d_len] = '}';
  json[head_len + d_len + 1] = '\0';
  return json;
}

/* Writes one dispatch payload to the connection, or swallows it while the
 * connection is told to lose dispatches. */
static int conn_write_dispatch(struct dgw_mock_conn *conn, const char *json,
                               const char *t, int64_t seq) {
  int rv;

  if (conn->lose_next > 0) {
    conn->lose_next--;
    mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: lost dispatch %s s=%lld",
             conn->id, t, (long long)seq);
    return DGW_OK;
  }
  rv = mock_conn_send_payload(conn, json, strlen(json));
  if (rv != DGW_OK)
    return rv;
  conn->mock->stats.dispatches_sent++;
  mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: sent dispatch %s s=%lld",
           conn->id, t, (long long)seq);
  return DGW_OK;
}

/*
 * Gives a dispatch the session's next sequence number, keeps it in the
 * history, then sends it to the attached connection if that one can take
 * it.  Returns DGW_OK once the dispatch is in the history (DGW_ERR_NOMEM
 * otherwise); *send_rv (optional) gets the outcome of the send, DGW_OK
 * when nothing was to be sent.  The caller keeps the connection entered.
 */
int mock_session_dispatch(struct mock_session *s, const char *t,
                          const char *d_json, int *send_rv) {
  struct mock_sent *sent;
  char *own_d = NULL, *json = NULL;
  int rv = mock_intents_filter(s, t, d_json, &own_d);

  if (rv == MOCK_INTENTS_DROP) {
    mock_log(s->mock, DGW_LOG_DEBUG,
             "session %s: intents %lld leave out dispatch %s", s->id,
             (long long)s->intents, t);
    if (send_rv != NULL)
      *send_rv = DGW_OK;
    return MOCK_INTENTS_DROP;
  }
  if (rv == MOCK_INTENTS_SEND)
    json = dispatch_json(t, s->seq + 1, own_d != NULL ? own_d : d_json);
  free(own_d);
  rv = DGW_OK;
  if (json == NULL || (sent = malloc(sizeof *sent)) == NULL) {
    free(json);
    if (send_rv != NULL)
      *send_rv = DGW_ERR_NOMEM;
    return DGW_ERR_NOMEM;
  }
  sent->seq = ++s->seq;
  sent->json = json;
  session_keep(s, sent); /* cfg.history_max >= 1: `sent` stays */
  if (s->conn != NULL && mock_conn_can_send(s->conn))
    rv = conn_write_dispatch(s->conn, json, t, s->seq);
  else
    mock_log(s->mock, DGW_LOG_DEBUG, "session %s: kept dispatch %s s=%lld",
             s->id, t, (long long)s->seq);
  if (send_rv != NULL)
    *send_rv = rv;
  return DGW_OK;
}

int mock_conn_send_dispatch(struct dgw_mock_conn *conn, const char *t,
                            const char *d_json) {
  char *json;
  int rv;

  if (!mock_conn_can_send(conn))
    return DGW_ERR_STATE;
  if (conn->session != NULL) {
    int send_rv;
    rv = mock_session_dispatch(conn->session, t, d_json, &send_rv);
    return rv == DGW_OK || rv == MOCK_INTENTS_DROP ? send_rv : rv;
  }
  /* Before IDENTIFY: the connection counts on its own, nothing is kept. */
  json = dispatch_json(t, conn->seq_unsessioned + 1, d_json);
  if (json == NULL)
    return DGW_ERR_NOMEM;
  rv = conn_write_dispatch(conn, json, t, conn->seq_unsessioned + 1);
  free(json);
  if (rv == DGW_OK)
    conn->seq_unsessioned++;
  return rv;
}

/* ------------------------------------------------------ IDENTIFY and RESUME */

static int conn_send_ready(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  struct mock_session *s = conn->session;
  json_object *d = json_object_new_object();
  json_object *user, *guilds, *app, *trace;
  struct mock_dispatch *disp;
  int bad = 0, rv;

  if (d == NULL)
    return DGW_ERR_NOMEM;
  bad |= mock_json_add(d, "v", json_object_new_int(conn->version));
  user = mock_shape_bot_user();
  bad |= mock_json_add(d, "user", user);
  bad |= mock_json_add(d, "user_settings", json_object_new_object());
  bad |= mock_json_add(d, "private_channels", json_object_new_array());
  bad |= mock_json_add(d, "relationships", json_object_new_array());
  bad |= mock_json_add(d, "presences", json_object_new_array());
  bad |= mock_json_add(d, "guild_join_requests", json_object_new_array());
  bad |= mock_json_add(d, "geo_ordered_rtc_regions", json_object_new_array());
  /* Every scripted GUILD_CREATE is one unavailable guild in READY. */
  if ((guilds = json_object_new_array()) != NULL) {
    if (mock->cfg.builtin_guild && mock_world_on_shard(s, MOCK_GUILD_ID)) {
      json_object *g = json_object_new_object();
      if (g != NULL) {
        bad |= mock_json_add(g, "id", json_object_new_string(MOCK_GUILD_ID));
        bad |= mock_json_add(g, "unavailable", json_object_new_boolean(1));
      }
      bad |= mock_json_append(guilds, g);
    }
    for (disp = mock->script; disp != NULL; disp = disp->next) {
      json_object *g;
      if (disp->guild_id == NULL || (g = json_object_new_object()) == NULL)
        continue;
      bad |= mock_json_add(g, "id", json_object_get(disp->guild_id));
      bad |= mock_json_add(g, "unavailable", json_object_new_boolean(1));
      bad |= mock_json_append(guilds, g);
    }
  }
  bad |= mock_json_add(d, "guilds", guilds);
  bad |= mock_json_add(d, "session_id", json_object_new_string(s->id));
  bad |= mock_json_add(d, "resume_gateway_url",
                       json_object_new_string(mock->ready_resume_url[0] != '\0'
                                                  ? mock->ready_resume_url
                                                  : mock->resume_url));
  if (s->shard_count > 0) {
    json_object *shard = json_object_new_array();
    if (shard != NULL) {
      bad |= mock_json_append(shard, json_object_new_int64(s->shard_id));
      bad |= mock_json_append(shard, json_object_new_int64(s->shard_count));
    }
    bad |= mock_json_add(d, "shard", shard);
  }
  app = mock_shape_application(1);
  if (app != NULL)
    bad |= mock_json_add(app, "flags",
                         json_object_new_int64(mock_intents_privileged_flags(
                             mock->cfg.privileged_denied)));
  bad |= mock_json_add(d, "application", app);
  bad |= mock_json_add(d, "session_type", json_object_new_string("normal"));
  if ((trace = json_object_new_array()) != NULL)
    bad |= mock_json_append(trace, json_object_new_string("dgw-mock"));
  bad |= mock_json_add(d, "_trace", trace);
  if (bad) {
    json_object_put(d);
    return DGW_ERR_NOMEM;
  }
  rv = mock_conn_send_dispatch(conn, "READY", mock_json_plain(d));
  json_object_put(d);
  return rv;
}

/* Checks IDENTIFY's d.token; closes 4004 and returns -1 when wrong. */
static int conn_check_token(struct dgw_mock_conn *conn, json_object *d) {
  const char *want = conn->mock->token;
  json_object *token;

  if (!json_object_object_get_ex(d, "token", &token) ||
      !json_object_is_type(token, json_type_string) ||
      json_object_get_string_len(token) == 0 ||
      (want != NULL && strcmp(json_object_get_string(token), want) != 0)) {
    mock_conn_close(conn, 4004, "Authentication failed");
    return -1;
  }
  return 0;
}

void mock_conn_handle_identify(struct dgw_mock_conn *conn, json_object *root) {
  struct dgw_mock *mock = conn->mock;
  json_object *d, *intents, *shard, *props;
  int64_t shard_id = 0, shard_count = 0, bits = 0;
  struct mock_session *s;

  mock->stats.identifies++;
  if (conn->authenticated) {
    mock_conn_close(conn, 4005, "Already authenticated");
    return;
  }
  if (!json_object_object_get_ex(root, "d", &d) ||
      !json_object_is_type(d, json_type_object) ||
      (json_object_object_get_ex(d, "properties", &props) &&
       !json_object_is_type(props, json_type_object))) {
    mock_conn_close(conn, 4001, "Invalid identify payload");
    return;
  }
  if (conn_check_token(conn, d) != 0)
    return;
  if (!json_object_object_get_ex(d, "intents", &intents) ||
      !mock_json_is_int(intents) ||
      (bits = json_object_get_int64(intents)) < 0 ||
      (bits & ~MOCK_INTENTS_ALL) != 0) {
    mock_conn_close(conn, 4013, "Invalid intent(s)");
    return;
  }
  if ((bits & MOCK_INTENTS_PRIVILEGED & (int64_t)mock->cfg.privileged_denied) !=
      0) {
    mock_log(mock, DGW_LOG_DEBUG,
             "conn %lu: intents %lld ask for a privileged intent the app "
             "has not enabled",
             conn->id, (long long)bits);
    mock_conn_close(conn, 4014, "Disallowed intent(s)");
    return;
  }
  if (json_object_object_get_ex(d, "shard", &shard) && shard != NULL) {
    json_object *a, *b;
    if (!json_object_is_type(shard, json_type_array) ||
        json_object_array_length(shard) != 2 ||
        !mock_json_is_int(a = json_object_array_get_idx(shard, 0)) ||
        !mock_json_is_int(b = json_object_array_get_idx(shard, 1)) ||
        (shard_id = json_object_get_int64(a)) < 0 ||
        (shard_count = json_object_get_int64(b)) <= shard_id) {
      mock_conn_close(conn, 4010, "Invalid shard");
      return;
    }
  }
  s = session_new(mock,
                  json_object_get_string(json_object_object_get(d, "token")));
  if (s == NULL) {
    mock_conn_end(conn, END_DROP);
    return;
  }
  s->intents = bits;
  s->shard_id = shard_id;
  s->shard_count = shard_count;
  session_attach(s, conn);
  /* Dispatches sent before IDENTIFY do not count toward the session. */
  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: identified, session %s", conn->id,
           s->id);
  if (conn_send_ready(conn) != DGW_OK)
    return;
  mock_conn_send_builtin_guild(conn);
  mock_conn_script_continue(conn);
}

/*
 * RESUME (protocol §5.5, §13.6): attach this connection to the session,
 * replay what the client missed with the original sequence numbers (plus
 * cfg.replay_overlap it already had), send RESUMED, go on with the script.
 * What cannot be resumed gets op 9 d:false on an open connection.
 */
void mock_conn_handle_resume(struct dgw_mock_conn *conn, json_object *root) {
  struct dgw_mock *mock = conn->mock;
  struct dgw_mock_conn *old;
  json_object *d, *sid, *seqv, *token;
  struct mock_session *s;
  struct mock_sent *sent;
  int64_t seq, from;
  uint32_t overlap = mock->cfg.replay_overlap;

  mock->stats.resumes++;
  if (conn->authenticated) {
    mock_conn_close(conn, 4005, "Already authenticated");
    return;
  }
  if (!json_object_object_get_ex(root, "d", &d) ||
      !json_object_is_type(d, json_type_object) ||
      !json_object_object_get_ex(d, "session_id", &sid) ||
      !json_object_is_type(sid, json_type_string) ||
      !json_object_object_get_ex(d, "seq", &seqv) ||
      (seqv != NULL && !mock_json_is_int(seqv))) {
    mock_conn_close(conn, 4001, "Invalid resume payload");
    return;
  }
  if (conn_check_token(conn, d) != 0)
    return;
  s = session_find(mock, json_object_get_string(sid));
  if (s == NULL) {
    mock_log(mock, DGW_LOG_DEBUG,
             "conn %lu: resume of an unknown, expired or invalidated "
             "session, op 9",
             conn->id);
    mock_conn_send_op(conn, 9, "false");
    return;
  }
  json_object_object_get_ex(d, "token", &token);
  if (strcmp(json_object_get_string(token), s->token) != 0) {
    mock_conn_close(conn, 4004, "Authentication failed");
    return;
  }
  seq = seqv != NULL ? json_object_get_int64(seqv) : 0;
  if (seq < 0 || seq > s->seq) {
    mock_log(mock, DGW_LOG_DEBUG,
             "conn %lu: resume of session %s at seq %lld, beyond %lld",
             conn->id, s->id, (long long)seq, (long long)s->seq);
    mock_conn_close(conn, 4007, "Invalid seq");
    return;
  }
  /* The history has no gaps: its first entry tells what is still there. */
  if (seq < s->seq && (s->history == NULL || s->history->seq > seq + 1)) {
    mock_log(mock, DGW_LOG_DEBUG,
             "conn %lu: resume of session %s at seq %lld, older than the "
             "history, op 9",
             conn->id, s->id, (long long)seq);
    mock_conn_send_op(conn, 9, "false");
    return;
  }

  /* The session's old connection may still look alive to the mock (a
   * zombie the client gave up on): it loses the session and is dropped,
   * once this handler is done with the session. */
  old = s->conn;
  if (old != NULL) {
    mock_log(mock, DGW_LOG_DEBUG, "conn %lu: session %s taken over, dropping",
             old->id, s->id);
    old->session = NULL;
    old->authenticated = 0;
    s->conn = NULL;
    if (old->dispatch_timer != NULL)
      evtimer_del(old->dispatch_timer);
    mock_conn_enter(old);
    mock_conn_end(old, END_DROP);
  }
  session_attach(s, conn);
  mock->stats.resumes_ok++;
  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: resumed session %s at seq %lld/%lld",
           conn->id, s->id, (long long)seq, (long long)s->seq);

  /* The overlap never reaches READY (s 1): Discord does not replay it. */
  from = seq > (int64_t)overlap + 1 ? seq - (int64_t)overlap : 1;
  for (sent = s->history; sent != NULL && mock_conn_can_send(conn);
       sent = sent->next) {
    if (sent->seq > from)
      conn_write_dispatch(conn, sent->json, "(replay)", sent->seq);
  }
  if (mock_conn_can_send(conn) &&
      mock_session_dispatch(s, "RESUMED", "{\"_trace\":" MOCK_TRACE "}",
                            NULL) == DGW_OK)
    mock_conn_script_continue(conn);
  if (old != NULL)
    mock_conn_leave(old);
}
