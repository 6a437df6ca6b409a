#include "config.h"

/*
 * Fault knobs, so tests can provoke every failure a client must survive:
 * a close with any code, connections dropped at once, in the middle of a
 * frame or all together, lost dispatches, withheld heartbeat ACKs, a
 * server heartbeat request, an invalidated session (op 9), a listener
 * that goes away, a READY that announces another resume URL.  (Op 7
 * before HELLO, a late HELLO, a wrong accept key, split and fragmented
 * payloads are settings of struct dgw_mock_config.)
 */

#include <stdio.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/listener.h>

#include <wslay/wslay.h>

#include "mock_int.h"

/* Length of the 1000-byte frame header drop_midframe() announces. */
#define MOCK_MIDFRAME_LEN 1000

/* ----------------------------------------------------------- one connection */

int dgw_mock_conn_close(struct dgw_mock_conn *conn, uint16_t code,
                        const char *reason) {
  int rv;

  if (conn == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!mock_conn_can_send(conn))
    return DGW_ERR_STATE;
  mock_conn_enter(conn);
  rv = mock_conn_close(conn, code, reason);
  mock_conn_leave(conn);
  return rv;
}

void dgw_mock_conn_drop(struct dgw_mock_conn *conn) {
  if (conn == NULL || conn->state == CONN_DEAD)
    return;
  mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: dropping", conn->id);
  mock_conn_end(conn, END_DROP);
}

void dgw_mock_conn_drop_midframe(struct dgw_mock_conn *conn) {
  unsigned char frame[4 + MOCK_MIDFRAME_LEN / 2];

  if (conn == NULL || conn->state == CONN_DEAD || conn->doomed != END_NONE)
    return;
  /* wslay has written whole frames only, so this starts at a boundary. */
  frame[0] = (unsigned char)(0x80 | (conn->compress ? WSLAY_BINARY_FRAME
                                                    : WSLAY_TEXT_FRAME));
  frame[1] = 126;
  frame[2] = (unsigned char)(MOCK_MIDFRAME_LEN >> 8);
  frame[3] = (unsigned char)(MOCK_MIDFRAME_LEN & 0xff);
  memset(frame + 4, ' ', sizeof frame - 4);
  frame[4] = '{';
  bufferevent_write(conn->bev, frame, sizeof frame);
  mock_log(conn->mock, DGW_LOG_DEBUG,
           "conn %lu: dropping in the middle of a frame", conn->id);
  mock_conn_end(conn, END_MIDFRAME);
}

int dgw_mock_conn_send_raw(struct dgw_mock_conn *conn, const void *bytes,
                           size_t len) {
  if (conn == NULL || (bytes == NULL && len > 0))
    return DGW_ERR_INVALID_ARGUMENT;
  if (!mock_conn_can_send(conn) || conn->bev == NULL)
    return DGW_ERR_STATE;
  /* wslay has written whole frames only, so this starts at a boundary. */
  return bufferevent_write(conn->bev, bytes, len) == 0 ? DGW_OK : DGW_ERR_NOMEM;
}

void dgw_mock_conn_lose_next(struct dgw_mock_conn *conn, unsigned n) {
  if (conn != NULL)
    conn->lose_next = n;
}

void dgw_mock_set_ack(struct dgw_mock *mock, int on) {
  if (mock != NULL)
    mock->ack = on != 0;
}

int dgw_mock_conn_request_heartbeat(struct dgw_mock_conn *conn) {
  int rv;

  if (conn == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!mock_conn_can_send(conn))
    return DGW_ERR_STATE;
  mock_conn_enter(conn);
  rv = mock_conn_send_op(conn, 1, "null");
  mock_conn_leave(conn);
  return rv;
}

int dgw_mock_invalidate_session(struct dgw_mock *mock, const char *session_id) {
  struct mock_session *s;
  struct dgw_mock_conn *conn;

  if (mock == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  s = mock_session_lookup(mock, session_id);
  if (s == NULL || mock->freeing)
    return DGW_ERR_STATE;
  conn = s->conn;
  mock_log(mock, DGW_LOG_DEBUG, "session %s invalidated", s->id);
  mock_session_free(mock, s); /* the connection stays, unauthenticated */
  if (conn != NULL && mock_conn_can_send(conn)) {
    mock_conn_enter(conn);
    mock_conn_send_op(conn, 9, "false");
    mock_conn_leave(conn);
  }
  return DGW_OK;
}

/* --------------------------------------------------------- every connection */

/* The first connection in `head` a bulk operation has not dealt with yet:
 * hooks run by each step may end any connection, so every step starts the
 * walk again; each one leaves its connection closing or doomed. */
static struct dgw_mock_conn *conn_first_live(struct dgw_mock_conn *head,
                                             int want_open) {
  struct dgw_mock_conn *conn;

  for (conn = head; conn != NULL; conn = conn->next) {
    if (conn->doomed != END_NONE || conn->state == CONN_DEAD)
      continue;
    if (!want_open || mock_conn_can_send(conn))
      return conn;
  }
  return NULL;
}

int dgw_mock_close_all(struct dgw_mock *mock, uint16_t code,
                       const char *reason) {
  struct dgw_mock_conn *conn;

  if (mock == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (mock->freeing)
    return DGW_ERR_STATE;
  while ((conn = conn_first_live(mock->open, 1)) != NULL) {
    mock_conn_enter(conn);
    if (mock_conn_close(conn, code, reason) != DGW_OK)
      mock_conn_end(conn, END_DROP);
    mock_conn_leave(conn);
  }
  while ((conn = conn_first_live(mock->pending, 0)) != NULL)
    mock_conn_end(conn, END_DROP);
  return DGW_OK;
}

void dgw_mock_drop_all(struct dgw_mock *mock) {
  struct dgw_mock_conn *conn;

  if (mock == NULL || mock->freeing)
    return;
  mock_log(mock, DGW_LOG_DEBUG, "dropping every connection");
  while ((conn = conn_first_live(mock->open, 0)) != NULL ||
         (conn = conn_first_live(mock->pending, 0)) != NULL)
    mock_conn_end(conn, END_DROP);
}

int dgw_mock_set_listening(struct dgw_mock *mock, int on) {
  int rv;

  if (mock == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (mock->freeing)
    return DGW_ERR_STATE;
  if (!on) {
    if (mock->listener != NULL) {
      /* Closing the socket makes the kernel refuse new connects (a
       * disabled evconnlistener would still complete them). */
      evconnlistener_free(mock->listener);
      mock->listener = NULL;
      mock_log(mock, DGW_LOG_DEBUG, "stopped listening on port %u",
               (unsigned)mock->port);
    }
    return DGW_OK;
  }
  if (mock->listener != NULL)
    return DGW_OK;
  rv = mock_listen(mock, mock->port);
  if (rv == DGW_OK)
    mock_log(mock, DGW_LOG_DEBUG, "listening again on port %u",
             (unsigned)mock->port);
  return rv;
}

void dgw_mock_set_ready_resume_url(struct dgw_mock *mock, const char *url) {
  snprintf(mock->ready_resume_url, sizeof(mock->ready_resume_url), "%s",
           url != NULL ? url : "");
}
