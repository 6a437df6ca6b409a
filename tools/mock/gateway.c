#include "config.h"

/*
 * The gateway protocol on one open connection (protocol §13): what the
 * connection gets first (HELLO, a late HELLO, or op 7), the client's send
 * rate limit (close 4008), and each client payload: parsed, shown to
 * hooks.on_payload, checked, and handed by its opcode to the heartbeat
 * handler here, to IDENTIFY and RESUME in session.c or to commands.c.
 */

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <json-c/json.h>

#include "clock.h"
#include "mock_int.h"

#define MOCK_DEFAULT_HEARTBEAT_MS 41250u
/* Largest client payload Discord accepts (protocol §6.3). */
#define MOCK_MAX_PAYLOAD 4096
/* Send rate limit (protocol §6.1). */
#define MOCK_DEFAULT_RATE_WINDOW_MS 60000u
#define MOCK_DEFAULT_RATE_BUDGET 120u
/* Stamps a connection keeps at least, for stats.max_in_window when the
 * count goes past the budget (limit off); beyond, it saturates. */
#define MOCK_RATE_TRACK_MAX 65536u

/* -------------------------------------------------------------------- HELLO */

static void conn_send_hello(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  char *hello =
      mock_asprintf("{\"heartbeat_interval\":%lu,\"_trace\":" MOCK_TRACE "}",
                    (unsigned long)(mock->cfg.heartbeat_interval_ms != 0
                                        ? mock->cfg.heartbeat_interval_ms
                                        : MOCK_DEFAULT_HEARTBEAT_MS));

  if (hello == NULL) {
    mock_conn_end(conn, END_DROP);
    return;
  }
  mock_conn_send_op(conn, 10, hello);
  free(hello);
}

void mock_hello_timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_mock_conn *conn = arg;

  (void)fd;
  (void)what;
  mock_conn_enter(conn);
  if (mock_conn_can_send(conn))
    conn_send_hello(conn);
  mock_conn_leave(conn);
}

void mock_conn_greet(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;

  if (mock->cfg.reconnect_before_hello && !mock->reconnect_sent) {
    mock->reconnect_sent = 1;
    mock_log(mock, DGW_LOG_DEBUG, "conn %lu: op 7 instead of HELLO", conn->id);
    mock_conn_send_op(conn, 7, "null");
  } else if (mock->cfg.hello_delay_ms > 0 && conn->hello_timer != NULL) {
    uint32_t ms = mock->cfg.hello_delay_ms;
    struct timeval tv = dgw_timeval_ms(ms);
    evtimer_add(conn->hello_timer, &tv);
  } else {
    conn_send_hello(conn);
  }
}

/* ---------------------------------------------------------- send rate limit */

/*
 * Stamps one client payload into the connection's sliding window of
 * cfg.rate_window_ms and returns how many the window now holds, this one
 * included; 0 when out of memory.  The ring holds up to
 * max(budget + 1, MOCK_RATE_TRACK_MAX) stamps, so the 4008 decision is
 * exact; past that (limit off) the oldest stamp is forgotten and the count
 * saturates.  Updates stats.max_in_window.
 */
static size_t conn_rate_count(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  uint64_t window = mock->cfg.rate_window_ms != 0 ? mock->cfg.rate_window_ms
                                                  : MOCK_DEFAULT_RATE_WINDOW_MS;
  uint64_t budget = mock->cfg.rate_budget != 0 ? mock->cfg.rate_budget
                                               : MOCK_DEFAULT_RATE_BUDGET;
  uint64_t ceiling =
      budget + 1 > MOCK_RATE_TRACK_MAX ? budget + 1 : MOCK_RATE_TRACK_MAX;
  uint64_t now = mock_now_ms();

  if (ceiling > SIZE_MAX / sizeof *conn->rate_stamps)
    ceiling = SIZE_MAX / sizeof *conn->rate_stamps;
  while (conn->rate_len > 0 &&
         now - conn->rate_stamps[conn->rate_head] >= window) {
    conn->rate_head = (conn->rate_head + 1) % conn->rate_cap;
    conn->rate_len--;
  }
  if (conn->rate_len == conn->rate_cap) {
    if (conn->rate_cap >= ceiling) {
      conn->rate_head = (conn->rate_head + 1) % conn->rate_cap;
      conn->rate_len--;
    } else {
      size_t cap = conn->rate_cap != 0 ? conn->rate_cap * 2 : 64, i;
      uint64_t *p;

      if (cap > ceiling)
        cap = (size_t)ceiling;
      p = malloc(cap * sizeof *p);
      if (p == NULL)
        return 0;
      for (i = 0; i < conn->rate_len; i++)
        p[i] = conn->rate_stamps[(conn->rate_head + i) % conn->rate_cap];
      free(conn->rate_stamps);
      conn->rate_stamps = p;
      conn->rate_cap = cap;
      conn->rate_head = 0;
    }
  }
  conn->rate_stamps[(conn->rate_head + conn->rate_len) % conn->rate_cap] = now;
  conn->rate_len++;
  if (conn->rate_len > mock->stats.max_in_window)
    mock->stats.max_in_window = conn->rate_len;
  return conn->rate_len;
}

/* ----------------------------------------------------------------- payloads */

static void conn_handle_heartbeat(struct dgw_mock_conn *conn,
                                  json_object *root) {
  json_object *d;

  conn->mock->stats.heartbeats++;
  if (!json_object_object_get_ex(root, "d", &d) ||
      (d != NULL && !mock_json_is_int(d))) {
    mock_conn_close(conn, 4001, "Invalid heartbeat payload");
    return;
  }
  if (!conn->mock->ack) {
    mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: heartbeat not ACKed",
             conn->id);
    return;
  }
  if (mock_conn_send_op(conn, 11, "null") == DGW_OK)
    conn->mock->stats.acks_sent++;
}

/* One complete client message: a gateway payload. */
void mock_conn_handle_payload(struct dgw_mock_conn *conn, const uint8_t *msg,
                              size_t len) {
  struct dgw_mock *mock = conn->mock;
  json_object *root = NULL, *opv;
  char *text;
  int ok = 0, op = -1;
  size_t in_window;
  uint32_t budget = mock->cfg.rate_budget != 0 ? mock->cfg.rate_budget
                                               : MOCK_DEFAULT_RATE_BUDGET;

  in_window = conn_rate_count(conn);
  text = malloc(len + 1);
  if (text == NULL || in_window == 0) {
    free(text);
    mock_conn_end(conn, END_DROP);
    return;
  }
  if (len > 0)
    memcpy(text, msg, len);
  text[len] = '\0';
  root = mock_json_parse_exact(text, len, &ok);
  if (root != NULL && json_object_is_type(root, json_type_object) &&
      json_object_object_get_ex(root, "op", &opv) && mock_json_is_int(opv)) {
    int64_t v = json_object_get_int64(opv);
    if (v >= 0 && v <= INT_MAX)
      op = (int)v;
  }
  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: received op %d (%zu bytes)",
           conn->id, op, len);
  if (mock->cfg.hooks.on_payload != NULL)
    mock->cfg.hooks.on_payload(mock, conn, op, text, len, mock->cfg.user_data);
  mock_world_record_gateway(conn, op, text, len);
  if (!mock_conn_can_send(conn))
    goto out;
  if (!mock->cfg.no_rate_limit && in_window > budget) {
    mock->stats.rate_limit_closes++;
    mock_log(mock, DGW_LOG_INFO,
             "conn %lu: %zu payloads in the rate window, budget %lu: 4008",
             conn->id, in_window, (unsigned long)budget);
    mock_conn_close(conn, 4008, "Rate limited");
  } else if (len > MOCK_MAX_PAYLOAD) {
    mock_conn_close(conn, 4002, "Payload too large");
  } else if (!ok || !json_object_is_type(root, json_type_object)) {
    mock_conn_close(conn, 4002, "Error while decoding payload");
  } else if (op < 0) {
    mock_conn_close(conn, 4001, "Unknown opcode");
  } else {
    switch (op) {
    case 1:
      conn_handle_heartbeat(conn, root);
      break;
    case 2:
      mock_conn_handle_identify(conn, root);
      break;
    case 6:
      mock_conn_handle_resume(conn, root);
      break;
    case 3:
    case 4:
    case 8:
    case 31:
    case 43:
      mock_conn_handle_command(conn, op, root);
      break;
    default:
      mock_conn_close(conn, 4001, "Unknown opcode");
      break;
    }
  }
out:
  json_object_put(root);
  free(text);
}
