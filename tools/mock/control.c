#include "config.h"

/*
 * What tests and tools read from the mock and send through it directly:
 * the open connections, sequence numbers, sessions and counters; a payload
 * or a dispatch on demand; a dispatch added to a session.
 */

#include <string.h>

#include <json-c/json.h>

#include "mock_int.h"

size_t dgw_mock_conn_count(const struct dgw_mock *mock) {
  return mock != NULL ? mock->open_count : 0;
}

struct dgw_mock_conn *dgw_mock_last_conn(struct dgw_mock *mock) {
  return mock != NULL ? mock->open : NULL;
}

int dgw_mock_conn_send_json(struct dgw_mock_conn *conn, const char *json) {
  int rv;

  if (conn == NULL || json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!mock_conn_can_send(conn))
    return DGW_ERR_STATE;
  mock_conn_enter(conn);
  rv = mock_conn_send_payload(conn, json, strlen(json));
  mock_conn_leave(conn);
  return rv;
}

int dgw_mock_conn_send_dispatch(struct dgw_mock_conn *conn, const char *t,
                                const char *d_json) {
  int rv;

  if (conn == NULL || t == NULL || d_json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!mock_conn_can_send(conn))
    return DGW_ERR_STATE;
  mock_conn_enter(conn);
  rv = mock_conn_send_dispatch(conn, t, d_json);
  mock_conn_leave(conn);
  return rv;
}

int64_t dgw_mock_conn_seq(const struct dgw_mock_conn *conn) {
  if (conn == NULL)
    return 0;
  return conn->session != NULL ? conn->session->seq : conn->seq_unsessioned;
}

int dgw_mock_session_add_dispatch(struct dgw_mock *mock, const char *session_id,
                                  const char *t, const char *d_json) {
  struct mock_session *s;
  struct dgw_mock_conn *conn;
  json_object *d;
  int ok, rv;

  if (mock == NULL || t == NULL || t[0] == '\0' || d_json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  d = mock_json_parse_exact(d_json, strlen(d_json), &ok);
  json_object_put(d);
  if (!ok)
    return DGW_ERR_JSON;
  s = mock_session_lookup(mock, session_id);
  if (s == NULL || mock->freeing)
    return DGW_ERR_STATE;
  conn = s->conn;
  if (conn != NULL)
    mock_conn_enter(conn);
  rv = mock_session_dispatch(s, t, d_json, NULL);
  if (conn != NULL)
    mock_conn_leave(conn);
  return rv == MOCK_INTENTS_DROP ? DGW_OK : rv;
}

const char *dgw_mock_conn_session_id(const struct dgw_mock_conn *conn) {
  if (conn == NULL || conn->session == NULL)
    return NULL;
  return conn->session->id;
}

size_t dgw_mock_session_count(const struct dgw_mock *mock) {
  const struct mock_session *s;
  size_t n = 0;

  if (mock == NULL)
    return 0;
  for (s = mock->sessions; s != NULL; s = s->next)
    n++;
  return n;
}

int64_t dgw_mock_session_seq(const struct dgw_mock *mock,
                             const char *session_id) {
  const struct mock_session *s;

  if (mock == NULL)
    return -1;
  s = mock_session_lookup(mock, session_id);
  return s != NULL ? s->seq : -1;
}

void dgw_mock_get_stats(const struct dgw_mock *mock,
                        struct dgw_mock_stats *out) {
  if (out == NULL)
    return;
  if (mock == NULL) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = mock->stats;
}
