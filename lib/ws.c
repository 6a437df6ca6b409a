/*
 * The WebSocket transport: bufferevent (+ TLS) below, wslay for framing,
 * and our own HTTP/1.1 upgrade in between.
 *
 * States run one way: IDLE -> CONNECTING (the connector: DNS, TCP, TLS) ->
 * UPGRADING (request sent, waiting for 101) -> OPEN -> CLOSING (a close
 * frame sent or received, waiting for the exchange to finish) -> CLOSED.
 * Whatever ends the connection goes through finish(), which releases the
 * socket and calls on_close exactly once; the object itself lives until
 * dgw_ws_free().  Every libevent callback into this file is bracketed by
 * enter()/leave() so that dgw_ws_free() from inside an owner's callback is
 * deferred until we are off the stack (hiredis does the same).  The input,
 * frame by frame, is in ws_frames.c; the struct both share, in
 * ws_internal.h.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/util.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <wslay/wslay.h>

#include "clock.h"
#include "connector.h"
#include "guard.h"
#include "handshake.h"
#include "tls.h"
#include "url.h"
#include "ws.h"
#include "ws_internal.h"

void ws_set_reason(struct dgw_ws *ws, const char *fmt, ...) {
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(ws->reason, sizeof(ws->reason), fmt, ap);
  va_end(ap);
}

static void release_socket(struct dgw_ws *ws) {
  if (ws->connector != NULL) {
    dgw_connector_cancel(ws->connector);
    ws->connector = NULL;
  }
  if (ws->bev != NULL) {
    /* Safe inside the bufferevent's own callbacks: libevent defers the
     * real free until they return. */
    bufferevent_free(ws->bev);
    ws->bev = NULL;
  }
}

static void destroy(struct dgw_ws *ws) {
  release_socket(ws);
  if (ws->timer != NULL)
    event_free(ws->timer);
  if (ws->kick != NULL)
    event_free(ws->kick);
  if (ws->wslay != NULL)
    wslay_event_context_free(ws->wslay);
  free(ws->big.buf);
  free(ws);
}

static void enter(struct dgw_ws *ws) {
  dgw_guard_enter(&ws->guard);
}

/* Returns 1 when the object was freed and must not be touched again. */
static int leave(struct dgw_ws *ws) {
  if (dgw_guard_leave(&ws->guard)) {
    destroy(ws);
    return 1;
  }
  return 0;
}

/* Ends the connection: releases the socket and tells the owner, once. */
static void finish(struct dgw_ws *ws, int error) {
  if (ws->state == WS_CLOSED)
    return;
  ws->state = WS_CLOSED;
  event_del(ws->timer);
  event_del(ws->kick);
  release_socket(ws);
  if (ws->cfg.log != NULL && error != DGW_OK) {
    char line[600];

    snprintf(line, sizeof(line), "ws %s:%u: %s", ws->url.host,
             (unsigned)ws->url.port, ws->reason);
    ws->cfg.log(DGW_LOG_DEBUG, line, ws->cfg.log_user_data);
  }
  if (ws->cb.on_close != NULL && !dgw_guard_dying(&ws->guard))
    ws->cb.on_close(ws, error, ws->user_data);
}

static void arm_timer(struct dgw_ws *ws, uint32_t ms) {
  struct timeval tv = dgw_timeval_ms(ms);

  event_add(ws->timer, &tv);
}

/* ---------------------------------------------------------------- wslay */

/* wslay reads only the frame ws_read_frames() handed it, never past it, so
 * that its parser is between frames whenever that frame is done. */
static ssize_t recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *user_data) {
  struct dgw_ws *ws = user_data;
  int n = -1;

  (void)flags;
  if (len > ws->wslay_left)
    len = (size_t)ws->wslay_left;
  if (ws->bev != NULL && !dgw_guard_dying(&ws->guard) && len > 0)
    n = evbuffer_remove(bufferevent_get_input(ws->bev), buf, len);
  if (n <= 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  ws->wslay_left -= (uint64_t)n;
  return n;
}

static ssize_t send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *user_data) {
  struct dgw_ws *ws = user_data;

  (void)flags;
  if (ws->bev == NULL ||
      evbuffer_add(bufferevent_get_output(ws->bev), data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static int genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                      void *user_data) {
  (void)user_data;
  /* RFC 6455 wants masks an intermediary cannot predict. */
  if (RAND_bytes(buf, (int)len) != 1) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return 0;
}

static void msg_cb(wslay_event_context_ptr ctx,
                   const struct wslay_event_on_msg_recv_arg *arg,
                   void *user_data) {
  struct dgw_ws *ws = user_data;

  (void)ctx;
  if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
    size_t n = arg->msg_length > 2 ? arg->msg_length - 2 : 0;

    ws->close_code = arg->status_code;
    if (n >= sizeof(ws->close_reason))
      n = sizeof(ws->close_reason) - 1;
    for (size_t i = 0; i < n; i++) {
      uint8_t c = arg->msg[2 + i];
      /* The reason ends up in logs: keep it printable. */
      ws->close_reason[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    ws->close_reason[n] = '\0';
    return;
  }
  if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
    return; /* pings are answered by wslay itself */
  if (ws->state != WS_OPEN || dgw_guard_dying(&ws->guard))
    return; /* after a close started, or after the owner let go */
  if (arg->opcode == WSLAY_BINARY_FRAME)
    ws->next_limit = UINT64_MAX; /* the owner may set it again */
  if (ws->cb.on_message != NULL)
    ws->cb.on_message(ws, arg->opcode == WSLAY_BINARY_FRAME, arg->msg,
                      arg->msg_length, ws->user_data);
}

static int output_empty(struct dgw_ws *ws) {
  return ws->bev == NULL ||
         evbuffer_get_length(bufferevent_get_output(ws->bev)) == 0;
}

/* Output we let pile up before deciding the peer is not reading: our own
 * payloads are at most 4 KiB and few, so only a peer that floods pings
 * and never reads the pongs gets here. */
#define WS_MAX_OUTPUT (4u * 1024u * 1024u)

static int closing_result(struct dgw_ws *ws) {
  return ws->we_closed ? DGW_OK : DGW_ERR_CLOSED;
}

/* After reading or sending: flush wslay's queue and decide whether its
 * view of the connection ends it. */
static void pump(struct dgw_ws *ws) {
  if (ws->state != WS_OPEN && ws->state != WS_CLOSING)
    return;
  if (wslay_event_send(ws->wslay) != 0) {
    ws_set_reason(ws, "cannot queue output on the connection");
    finish(ws, DGW_ERR_NOMEM);
    return;
  }
  if (!output_empty(ws) &&
      evbuffer_get_length(bufferevent_get_output(ws->bev)) > WS_MAX_OUTPUT) {
    ws_set_reason(ws, "the peer is not reading: over %u bytes of output queued",
                  (unsigned)WS_MAX_OUTPUT);
    finish(ws, DGW_ERR_IO);
    return;
  }
  if (wslay_event_get_close_received(ws->wslay)) {
    /* Nothing more can come that we would deliver. */
    if (ws->bev != NULL)
      bufferevent_disable(ws->bev, EV_READ);
    if (ws->state == WS_OPEN) {
      /* The peer closed first; wslay queued our echo of its code. */
      ws->state = WS_CLOSING;
      if (ws->close_code != 0)
        ws_set_reason(ws, "peer closed with code %u%s%s",
                      (unsigned)ws->close_code, ws->close_reason[0] ? ": " : "",
                      ws->close_reason);
      else
        ws_set_reason(ws, "peer closed without a code");
      arm_timer(ws, ws->cfg.close_timeout_ms);
    }
    /* Done once our reply (or our own close) has left. */
    if (output_empty(ws))
      finish(ws, closing_result(ws));
    return;
  }
  if (ws->state == WS_OPEN && !wslay_event_get_read_enabled(ws->wslay)) {
    /* wslay stopped reading on its own: a framing error (it queued close
     * 1002) or a message over the cap (1009). */
    uint16_t sent = wslay_event_get_status_code_sent(ws->wslay);

    if (sent == WSLAY_CODE_MESSAGE_TOO_BIG) {
      ws_set_reason(ws, "inbound message larger than %zu bytes",
                    ws->cfg.max_message);
      finish(ws, DGW_ERR_MESSAGE_TOO_LARGE);
    } else {
      ws_set_reason(ws,
                    "WebSocket protocol error by the peer (we sent close %u)",
                    (unsigned)sent);
      finish(ws, DGW_ERR_PROTOCOL);
    }
  }
}

/* Reports `err` from the loop rather than inside the caller's API call. */
static void fail_soon(struct dgw_ws *ws, int err) {
  if (ws->pending_error == 0)
    ws->pending_error = err;
  event_active(ws->kick, EV_TIMEOUT, 0);
}

/* Writes queued frames from inside an API call: failures are reported
 * from the loop (fail_soon), never by calling on_close here. */
static void flush_from_api(struct dgw_ws *ws) {
  if (wslay_event_send(ws->wslay) != 0) {
    ws_set_reason(ws, "cannot queue output on the connection");
    fail_soon(ws, DGW_ERR_NOMEM);
  } else if (!output_empty(ws) && evbuffer_get_length(bufferevent_get_output(
                                      ws->bev)) > WS_MAX_OUTPUT) {
    ws_set_reason(ws, "the peer is not reading: over %u bytes of output queued",
                  (unsigned)WS_MAX_OUTPUT);
    fail_soon(ws, DGW_ERR_IO);
  }
}

static int start_wslay(struct dgw_ws *ws) {
  struct wslay_event_callbacks callbacks = {
      recv_cb, send_cb, genmask_cb, NULL, NULL, NULL, msg_cb,
  };

  wslay_event_context_ptr ctx = NULL;

  /* Into a local first: wslay frees the context when its init fails but
   * leaves the pointer set, and destroy() would free it again (found by
   * tests/test_oom_client with wslay's allocations failed). */
  if (wslay_event_context_client_init(&ctx, &callbacks, ws) != 0)
    return DGW_ERR_NOMEM;
  ws->wslay = ctx;
  wslay_event_config_set_max_recv_msg_length(ws->wslay, ws->cfg.max_message);
  return DGW_OK;
}

/* ------------------------------------------------------------ upgrading */

static void send_upgrade(struct dgw_ws *ws) {
  char req[DGW_URL_MAX + 512];
  int n;

  if (dgw_ws_make_key(ws->key) != DGW_OK) {
    ws_set_reason(ws, "no randomness for Sec-WebSocket-Key");
    finish(ws, DGW_ERR_NOMEM);
    return;
  }
  dgw_ws_accept_key(ws->key, DGW_WS_KEY_LEN, ws->accept);
  n = dgw_handshake_request(req, sizeof(req), ws->url.host_header,
                            ws->url.path_query, ws->key);
  if (n < 0 ||
      evbuffer_add(bufferevent_get_output(ws->bev), req, (size_t)n) != 0) {
    ws_set_reason(ws, "cannot write the upgrade request");
    finish(ws, DGW_ERR_NOMEM);
    return;
  }
  ws->state = WS_UPGRADING;
}

/* Reads the upgrade response; on success leaves any frames that arrived
 * behind it in the input buffer for wslay. */
static void read_upgrade(struct dgw_ws *ws) {
  struct evbuffer *in = bufferevent_get_input(ws->bev);
  size_t len = evbuffer_get_length(in);
  size_t want = len < DGW_HANDSHAKE_MAX_HEADER ? len : DGW_HANDSHAKE_MAX_HEADER;
  const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)want);
  size_t header_len = 0;
  char why[160];
  int rv;

  if (buf == NULL)
    return;
  rv = dgw_handshake_check_response(buf, want, ws->accept, &header_len, why,
                                    sizeof(why));
  if (rv == DGW_ERR_AGAIN)
    return;
  if (rv != DGW_OK) {
    ws_set_reason(ws, "upgrade refused: %s", why);
    finish(ws, DGW_ERR_HANDSHAKE);
    return;
  }
  evbuffer_drain(in, header_len);
  if (start_wslay(ws) != DGW_OK) {
    ws_set_reason(ws, "cannot allocate the WebSocket context");
    finish(ws, DGW_ERR_NOMEM);
    return;
  }
  event_del(ws->timer);
  ws->state = WS_OPEN;
  if (ws->paused) /* held back before the upgrade completed */
    bufferevent_disable(ws->bev, EV_READ);
  if (ws->cb.on_open != NULL)
    ws->cb.on_open(ws, ws->user_data);
}

/* ------------------------------------------------------ libevent glue */

static void event_cb(struct bufferevent *bev, short what, void *arg);

/* Hands the input to the upgrade or the frame reader; returns 0 when the
 * connection ended. */
static int read_input(struct dgw_ws *ws) {
  if (ws->state == WS_UPGRADING)
    read_upgrade(ws);
  if ((ws->state == WS_OPEN || ws->state == WS_CLOSING) &&
      !dgw_guard_dying(&ws->guard)) {
    int rv = ws_read_frames(ws);

    if (rv == WSLAY_ERR_NOMEM) {
      ws_set_reason(ws, "out of memory while reading frames");
      finish(ws, DGW_ERR_NOMEM);
    } else if (rv == WS_FRAME_FAILED) {
      finish(ws, DGW_ERR_PROTOCOL); /* the reason is set */
    } else if (rv == WS_FRAME_TOO_BIG) {
      finish(ws, DGW_ERR_MESSAGE_TOO_LARGE); /* the reason is set */
    } else if (rv != 0) {
      /* Frame-level violations (an oversized control frame, a bad length
       * encoding) make wslay give up on the stream. */
      ws_set_reason(ws, "WebSocket protocol error by the peer (bad frame)");
      finish(ws, DGW_ERR_PROTOCOL);
    } else {
      pump(ws);
    }
  }
  return ws->state != WS_CLOSED && !dgw_guard_dying(&ws->guard);
}

/* The input grew.  On a plain socket whose last read libevent capped at
 * 4 KiB, what else waits is read here in large reads (ws_read.c), each
 * handled before the next, up to a budget per callback. */
static void read_cb(struct bufferevent *bev, void *arg) {
  struct dgw_ws *ws = arg;

  (void)bev;
  enter(ws);
  if (ws->bev != NULL)
    ws_read_begin(ws, bufferevent_get_input(ws->bev));
  while (read_input(ws) && ws_read_more(ws))
    ;
  if (!dgw_guard_dying(&ws->guard) && ws_read_failed(ws)) {
    /* An error our own read took: reported as libevent reports its own,
     * after everything read before it. */
    bufferevent_disable(ws->bev, EV_READ);
    event_cb(ws->bev, BEV_EVENT_READING | BEV_EVENT_ERROR, ws);
  }
  ws_read_end(ws, ws->bev != NULL ? bufferevent_get_input(ws->bev) : NULL);
  leave(ws);
}

/* Reads what already waits on the socket, without waiting, and hands it
 * through the normal path (read_cb).  A TLS bufferevent owns its socket:
 * only the bytes it already decrypted are handled.  End of stream and
 * errors are left to the bufferevent, which sees them again at once. */
void dgw_ws_read_waiting(struct dgw_ws *ws) {
  if (ws == NULL || ws->bev == NULL || ws->paused ||
      (ws->state != WS_OPEN && ws->state != WS_CLOSING))
    return;
  enter(ws);
  if (bufferevent_openssl_get_ssl(ws->bev) == NULL) {
    struct evbuffer *in = bufferevent_get_input(ws->bev);
    evutil_socket_t fd = bufferevent_getfd(ws->bev);
    size_t total = 0;

    /* The input's end is frozen to all but libevent's own read; thaw it
     * as bufferevent_sock.c does around its evbuffer_read(). */
    evbuffer_unfreeze(in, 0);
    while (fd >= 0 && total < DGW_WS_READ_WAITING_MAX) {
      int n = evbuffer_read(in, fd, 65536);

      if (n <= 0)
        break; /* EAGAIN, end of stream or an error */
      total += (size_t)n;
    }
    evbuffer_freeze(in, 0);
  }
  read_cb(ws->bev, ws);
  leave(ws);
}

void dgw_ws_pause(struct dgw_ws *ws, int paused) {
  if (ws == NULL || ws->paused == (paused != 0))
    return;
  ws->paused = paused != 0;
  if (ws->bev == NULL || ws->state != WS_OPEN)
    return;
  if (ws->paused) {
    bufferevent_disable(ws->bev, EV_READ);
  } else {
    bufferevent_enable(ws->bev, EV_READ);
    /* What was read before the pause waits in the input buffer. */
    bufferevent_trigger(ws->bev, EV_READ,
                        BEV_TRIG_IGNORE_WATERMARKS | BEV_TRIG_DEFER_CALLBACKS);
  }
}

static void write_cb(struct bufferevent *bev, void *arg) {
  struct dgw_ws *ws = arg;

  (void)bev;
  enter(ws);
  /* The output drained: a close exchange may now be complete. */
  if (ws->state == WS_CLOSING && wslay_event_get_close_received(ws->wslay))
    finish(ws, closing_result(ws));
  leave(ws);
}

static void event_cb(struct bufferevent *bev, short what, void *arg) {
  struct dgw_ws *ws = arg;

  (void)bev;
  enter(ws);
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    switch (ws->state) {
    case WS_UPGRADING: {
      /* bufferevent_get_openssl_error() pops the error: read it once. */
      unsigned long e = ws->url.tls ? bufferevent_get_openssl_error(bev) : 0;

      if (e != 0) {
        char detail[200];

        dgw_tls_describe_error(NULL, e, detail, sizeof(detail), "");
        ws_set_reason(ws, "during the upgrade: %s", detail);
        finish(ws, DGW_ERR_TLS);
      } else {
        ws_set_reason(ws, "connection closed before the upgrade response");
        finish(ws, DGW_ERR_HANDSHAKE);
      }
      break;
    }
    case WS_OPEN:
      if (what & BEV_EVENT_ERROR)
        ws_set_reason(ws, "connection lost: %s",
                      evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
      else
        ws_set_reason(ws, "connection lost: peer ended the stream without a "
                          "close frame");
      finish(ws, DGW_ERR_CONNECTION_LOST);
      break;
    case WS_CLOSING:
      finish(ws, closing_result(ws));
      break;
    default:
      break;
    }
  }
  leave(ws);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_ws *ws = arg;

  (void)fd;
  (void)what;
  enter(ws);
  if (ws->state == WS_CLOSING) {
    /* The peer never answered our close (or never read its echo). */
    finish(ws, closing_result(ws));
  } else if (ws->state != WS_CLOSED) {
    ws_set_reason(ws, "no WebSocket connection to %s within %u ms",
                  ws->url.host, (unsigned)ws->cfg.connect_timeout_ms);
    finish(ws, DGW_ERR_TIMEOUT);
  }
  leave(ws);
}

/* The connector's answers. */
static void connected(struct bufferevent *bev, void *arg) {
  struct dgw_ws *ws = arg;

  enter(ws);
  ws->connector = NULL;
  ws->bev = bev;
  ws->plain = bufferevent_openssl_get_ssl(bev) == NULL;
  if (ws->plain) /* ws_read_more() reads within the bufferevent's limit */
    bufferevent_set_max_single_read(bev, WS_READ_BUDGET);
  bufferevent_setcb(ws->bev, read_cb, write_cb, event_cb, ws);
  send_upgrade(ws);
  /* Bytes read before the hand-over raised no read callback. */
  if (ws->state == WS_UPGRADING &&
      evbuffer_get_length(bufferevent_get_input(ws->bev)) > 0)
    read_cb(ws->bev, ws);
  leave(ws);
}

static void connect_failed(int error, const char *why, void *arg) {
  struct dgw_ws *ws = arg;

  enter(ws);
  ws->connector = NULL;
  if (error == DGW_ERR_TIMEOUT)
    ws_set_reason(ws, "no WebSocket connection to %s within %u ms",
                  ws->url.host, (unsigned)ws->cfg.connect_timeout_ms);
  else
    ws_set_reason(ws, "%s", why);
  finish(ws, error);
  leave(ws);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_ws *ws = arg;

  (void)fd;
  (void)what;
  enter(ws);
  if (ws->pending_error != 0) {
    if (ws->state != WS_CLOSED)
      finish(ws, ws->pending_error);
  } else if (ws->state == WS_CONNECTING && ws->connector == NULL) {
    static const struct dgw_connector_callbacks cb = {connected,
                                                      connect_failed};
    struct dgw_connector_config cc = {0};
    int err = DGW_OK;

    cc.host = ws->url.host;
    cc.port = ws->url.port;
    cc.resolver = ws->cfg.resolver;
    cc.ssl_ctx = ws->url.tls ? ws->cfg.ssl_ctx : NULL;
    cc.timeout_ms = ws->cfg.connect_timeout_ms;
    cc.log_name = "ws";
    cc.log = ws->cfg.log;
    cc.log_user_data = ws->cfg.log_user_data;
    ws->connector = dgw_connector_start(ws->base, &cc, &cb, ws, &err);
    if (ws->connector == NULL) {
      ws_set_reason(ws, "cannot start connecting to %s", ws->url.host);
      finish(ws, err);
    }
  }
  leave(ws);
}

/* ------------------------------------------------------------ public */

struct dgw_ws *dgw_ws_new(struct event_base *base,
                          const struct dgw_ws_config *cfg,
                          const struct dgw_ws_callbacks *cb, void *user_data,
                          int *err) {
  struct dgw_ws *ws;

  if (base == NULL || cfg == NULL || cb == NULL) {
    if (err != NULL)
      *err = DGW_ERR_INVALID_ARGUMENT;
    return NULL;
  }
  ws = calloc(1, sizeof(*ws));
  if (ws == NULL)
    goto nomem;
  ws->base = base;
  ws->cfg = *cfg;
  ws->cb = *cb;
  ws->user_data = user_data;
  if (ws->cfg.max_message == 0)
    ws->cfg.max_message = DGW_WS_DEFAULT_MAX_MESSAGE;
  ws->next_limit = UINT64_MAX;
  if (ws->cfg.connect_timeout_ms == 0)
    ws->cfg.connect_timeout_ms = DGW_WS_DEFAULT_CONNECT_TIMEOUT_MS;
  if (ws->cfg.close_timeout_ms == 0)
    ws->cfg.close_timeout_ms = DGW_WS_DEFAULT_CLOSE_TIMEOUT_MS;
  ws->timer = evtimer_new(base, timer_cb, ws);
  ws->kick = event_new(base, -1, 0, kick_cb, ws);
  if (ws->timer == NULL || ws->kick == NULL)
    goto nomem;
  return ws;

nomem:
  if (ws != NULL)
    destroy(ws);
  if (err != NULL)
    *err = DGW_ERR_NOMEM;
  return NULL;
}

int dgw_ws_connect(struct dgw_ws *ws, const char *url) {
  char why[128];

  if (ws == NULL || url == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (ws->state != WS_IDLE)
    return DGW_ERR_STATE;
  if (dgw_url_parse(url, &ws->url, why, sizeof(why)) != DGW_OK) {
    ws_set_reason(ws, "bad URL: %s", why);
    return DGW_ERR_URL;
  }
  if (ws->url.tls && ws->cfg.ssl_ctx == NULL) {
    ws_set_reason(ws, "wss:// needs a TLS context");
    return DGW_ERR_TLS;
  }
  ws->state = WS_CONNECTING;
  /* Everything after this happens from the loop, never inside this call. */
  event_active(ws->kick, EV_TIMEOUT, 0);
  arm_timer(ws, ws->cfg.connect_timeout_ms);
  return DGW_OK;
}

int dgw_ws_send_text(struct dgw_ws *ws, const char *data, size_t len) {
  struct wslay_event_msg msg;

  if (ws == NULL || (data == NULL && len > 0))
    return DGW_ERR_INVALID_ARGUMENT;
  if (ws->state != WS_OPEN)
    return DGW_ERR_STATE;
  msg.opcode = WSLAY_TEXT_FRAME;
  msg.msg = (const uint8_t *)data;
  msg.msg_length = len;
  if (wslay_event_queue_msg(ws->wslay, &msg) != 0)
    return DGW_ERR_NOMEM;
  /* Inside our own callbacks the frames go out when the callback returns;
   * elsewhere, now. */
  if (!dgw_guard_inside(&ws->guard))
    flush_from_api(ws);
  return DGW_OK;
}

int dgw_ws_close(struct dgw_ws *ws, uint16_t code, const char *reason) {
  size_t rlen = reason != NULL ? strlen(reason) : 0;

  /* The codes an endpoint may send (RFC 6455 7.4): 1000-1003, 1007-1011
   * and the registered and private ranges 3000-4999. */
  if (ws == NULL || rlen > 123 ||
      !((code >= 1000 && code <= 1003) || (code >= 1007 && code <= 1011) ||
        (code >= 3000 && code <= 4999)))
    return DGW_ERR_INVALID_ARGUMENT;
  if (ws->state == WS_IDLE || ws->state == WS_CLOSING || ws->state == WS_CLOSED)
    return DGW_ERR_STATE;
  ws->we_closed = 1;
  enter(ws);
  if (ws->state != WS_OPEN) {
    /* Nothing to hand-shake yet: just drop the attempt. */
    ws_set_reason(ws, "closed by the owner before the upgrade");
    finish(ws, DGW_OK);
  } else if (wslay_event_queue_close(ws->wslay, code, (const uint8_t *)reason,
                                     rlen) != 0) {
    ws_set_reason(ws, "cannot queue the close frame");
    finish(ws, DGW_ERR_NOMEM);
  } else {
    ws->state = WS_CLOSING;
    arm_timer(ws, ws->cfg.close_timeout_ms);
    flush_from_api(ws);
  }
  leave(ws);
  return DGW_OK;
}

void dgw_ws_free(struct dgw_ws *ws) {
  if (ws == NULL)
    return;
  if (dgw_guard_free(&ws->guard))
    destroy(ws);
}

uint16_t dgw_ws_close_code(const struct dgw_ws *ws) {
  return ws->close_code;
}

const char *dgw_ws_close_reason(const struct dgw_ws *ws) {
  return ws->close_reason;
}

const char *dgw_ws_reason(const struct dgw_ws *ws) {
  return ws->reason;
}

int dgw_ws_is_open(const struct dgw_ws *ws) {
  return ws->state == WS_OPEN;
}

void dgw_ws_limit_next_frame(struct dgw_ws *ws, size_t max) {
  if (ws != NULL)
    ws->next_limit = max;
}
