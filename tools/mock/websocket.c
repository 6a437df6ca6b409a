#include "config.h"

/*
 * The WebSocket side of a connection: the HTTP/1.1 upgrade (a GET
 * /gateway/bot goes to rest.c instead), the gateway URL's query (v,
 * encoding, compress), the wslay server context, how the mock's payloads
 * go out (zlib-stream, split and fragmented as configured), the close
 * handshake, and reading client messages, each handed to gateway.c.
 */

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include <wslay/wslay.h>
#include <zlib.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include "handshake.h"
#include "mock_int.h"

/* Largest client message wslay buffers; bigger ones get close 1009. */
#define MOCK_MAX_RECV_MSG (1u << 20)
/* How long the mock waits for the client's close frame after its own. */
#define MOCK_CLOSE_TIMEOUT_MS 2000

/* ----------------------------------------------------------- wslay plumbing */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                          int flags, void *user_data) {
  struct dgw_mock_conn *conn = user_data;
  int n;

  (void)flags;
  if (conn->doomed != END_NONE || conn->bev == NULL) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  n = evbuffer_remove(bufferevent_get_input(conn->bev), buf, len);
  if (n <= 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  return n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                          size_t len, int flags, void *user_data) {
  struct dgw_mock_conn *conn = user_data;

  (void)flags;
  if (conn->bev == NULL || bufferevent_write(conn->bev, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

/* Hands wslay at most fragment_size bytes, so each call is one frame. */
static ssize_t ws_fragment_read_cb(wslay_event_context_ptr ctx, uint8_t *buf,
                                   size_t len,
                                   const union wslay_event_msg_source *source,
                                   int *eof, void *user_data) {
  struct mock_fragment *frag = source->data;
  struct dgw_mock_conn *conn = user_data;
  size_t n = frag->len - frag->off;

  (void)ctx;
  if (n > conn->mock->cfg.fragment_size)
    n = conn->mock->cfg.fragment_size;
  if (n > len)
    n = len;
  memcpy(buf, frag->data + frag->off, n);
  frag->off += n;
  if (frag->off == frag->len) {
    /* wslay never reads a source again after eof. */
    *eof = 1;
    if (frag->prev != NULL)
      frag->prev->next = frag->next;
    else
      conn->frags = frag->next;
    if (frag->next != NULL)
      frag->next->prev = frag->prev;
    free(frag);
  }
  return (ssize_t)n;
}

/* Queues one WebSocket message, fragmented when configured. */
static int conn_queue_message(struct dgw_mock_conn *conn, uint8_t opcode,
                              const unsigned char *data, size_t len) {
  size_t frag_size = conn->mock->cfg.fragment_size;
  int rv;

  if (frag_size > 0 && len > frag_size) {
    struct wslay_event_fragmented_msg msg;
    struct mock_fragment *frag = malloc(sizeof *frag + len);

    if (frag == NULL)
      return DGW_ERR_NOMEM;
    frag->conn = conn;
    frag->len = len;
    frag->off = 0;
    memcpy(frag->data, data, len);
    memset(&msg, 0, sizeof msg);
    msg.opcode = opcode;
    msg.source.data = frag;
    msg.read_callback = ws_fragment_read_cb;
    rv = wslay_event_queue_fragmented_msg(conn->ws, &msg);
    if (rv != 0) {
      free(frag);
    } else {
      frag->prev = NULL;
      frag->next = conn->frags;
      if (conn->frags != NULL)
        conn->frags->prev = frag;
      conn->frags = frag;
    }
  } else {
    struct wslay_event_msg msg;

    msg.opcode = opcode;
    msg.msg = data;
    msg.msg_length = len;
    rv = wslay_event_queue_msg(conn->ws, &msg);
  }
  if (rv == WSLAY_ERR_NOMEM)
    return DGW_ERR_NOMEM;
  return rv == 0 ? DGW_OK : DGW_ERR_STATE;
}

/* Writes out everything wslay has queued, then ends the connection when
 * both close frames have passed. */
static void conn_flush(struct dgw_mock_conn *conn) {
  if (conn->state != CONN_OPEN || conn->doomed != END_NONE || conn->in_recv)
    return;
  if (wslay_event_send(conn->ws) != 0) {
    mock_log(conn->mock, DGW_LOG_WARN, "conn %lu: send failed, dropping",
             conn->id);
    mock_conn_end(conn, END_DROP);
    return;
  }
  if (conn->close_pending) {
    conn->close_pending = 0;
    /* Fails only when wslay already queued a close (the echo of the
     * client's, or one for a protocol error): that one ends it. */
    if (wslay_event_queue_close(conn->ws, conn->close_pending_code,
                                (const uint8_t *)conn->close_pending_reason,
                                conn->close_pending_len) == 0 &&
        wslay_event_send(conn->ws) != 0) {
      mock_log(conn->mock, DGW_LOG_WARN, "conn %lu: send failed, dropping",
               conn->id);
      mock_conn_end(conn, END_DROP);
      return;
    }
  }
  if (!wslay_event_want_read(conn->ws) && !wslay_event_want_write(conn->ws))
    mock_conn_end(conn, END_CLEAN);
}

int mock_conn_can_send(const struct dgw_mock_conn *conn) {
  return conn->state == CONN_OPEN && conn->doomed == END_NONE &&
         !conn->closing && !conn->client_closed;
}

/* Deflates one payload through the connection's stream into conn->zbuf. */
static int conn_deflate(struct dgw_mock_conn *conn, const char *json,
                        size_t len, size_t *out_len) {
  z_stream *zs = &conn->zs;
  size_t used = 0;

  if (len > UINT_MAX)
    return DGW_ERR_INVALID_ARGUMENT;
  zs->next_in = (Bytef *)(uintptr_t)json;
  zs->avail_in = (uInt)len;
  for (;;) {
    int zr;
    if (conn->zcap - used < 64) {
      size_t cap = conn->zcap ? conn->zcap * 2 : 256;
      unsigned char *p;
      while (cap - used < len / 2 + 64)
        cap *= 2;
      if (cap > UINT_MAX || (p = realloc(conn->zbuf, cap)) == NULL)
        return DGW_ERR_NOMEM;
      conn->zbuf = p;
      conn->zcap = cap;
    }
    zs->next_out = conn->zbuf + used;
    zs->avail_out = (uInt)(conn->zcap - used);
    zr = deflate(zs, Z_SYNC_FLUSH);
    used = conn->zcap - zs->avail_out;
    if (zr != Z_OK && zr != Z_BUF_ERROR)
      return DGW_ERR_NOMEM;
    if (zs->avail_out != 0)
      break;
  }
  *out_len = used;
  return DGW_OK;
}

#ifdef HAVE_ZSTD
/* Compresses one payload through the connection's zstd stream into
 * conn->zbuf: one ZSTD_e_flush per payload, never ZSTD_e_end, so the
 * connection is one long frame (protocol §7.2). */
static int conn_zstd(struct dgw_mock_conn *conn, const char *json, size_t len,
                     size_t *out_len) {
  ZSTD_inBuffer in = {json, len, 0};
  size_t used = 0;

  for (;;) {
    ZSTD_outBuffer out;
    size_t left;

    if (conn->zcap - used < 64) {
      size_t cap = conn->zcap ? conn->zcap * 2 : 256;
      unsigned char *p;
      while (cap - used < len / 2 + 64)
        cap *= 2;
      if ((p = realloc(conn->zbuf, cap)) == NULL)
        return DGW_ERR_NOMEM;
      conn->zbuf = p;
      conn->zcap = cap;
    }
    out.dst = conn->zbuf;
    out.size = conn->zcap;
    out.pos = used;
    left = ZSTD_compressStream2(conn->zc, &out, &in, ZSTD_e_flush);
    used = out.pos;
    if (ZSTD_isError(left))
      return DGW_ERR_NOMEM;
    if (left == 0)
      break;
  }
  *out_len = used;
  return DGW_OK;
}
#endif

void mock_zstd_free(struct dgw_mock_conn *conn) {
#ifdef HAVE_ZSTD
  ZSTD_freeCCtx(conn->zc);
#endif
  conn->zc = NULL;
}

/* Starts the connection's compression stream for `compress` (1 zlib, 2
 * zstd): DGW_OK, or DGW_ERR_NOMEM. */
static int conn_compress_init(struct dgw_mock_conn *conn, int compress) {
  if (compress == 2) {
#ifdef HAVE_ZSTD
    /* Level 1, as for zlib: the mock must not be what limits a bench. */
    conn->zc = ZSTD_createCCtx();
    if (conn->zc == NULL || ZSTD_isError(ZSTD_CCtx_setParameter(
                                conn->zc, ZSTD_c_compressionLevel, 1)))
      return DGW_ERR_NOMEM;
#endif
  } else {
    memset(&conn->zs, 0, sizeof conn->zs);
    /* Level 1: the client inflates any level alike, and at the default
     * level (6) deflating every shard's startup GUILD_CREATEs made the
     * mock, not the client, what limited a benchmark of thousands of
     * shards. */
    if (deflateInit(&conn->zs, Z_BEST_SPEED) != Z_OK)
      return DGW_ERR_NOMEM;
    conn->zs_ready = 1;
  }
  conn->compress = compress;
  return DGW_OK;
}

/* Sends one payload as the connection's compression and split/fragment
 * settings say, and flushes. */
int mock_conn_send_payload(struct dgw_mock_conn *conn, const char *json,
                           size_t len) {
  int rv = DGW_OK;

  if (!mock_conn_can_send(conn))
    return DGW_ERR_STATE;
  if (conn->compress) {
    size_t zlen = 0, off, split = conn->mock->cfg.split_size;

#ifdef HAVE_ZSTD
    if (conn->compress == 2)
      rv = conn_zstd(conn, json, len, &zlen);
    else
#endif
      rv = conn_deflate(conn, json, len, &zlen);
    if (split == 0)
      split = zlen;
    for (off = 0; rv == DGW_OK && off < zlen; off += split) {
      size_t n = zlen - off < split ? zlen - off : split;
      rv = conn_queue_message(conn, WSLAY_BINARY_FRAME, conn->zbuf + off, n);
    }
    if (rv != DGW_OK) {
      /* The client's inflate stream can no longer follow ours. */
      mock_log(conn->mock, DGW_LOG_WARN,
               "conn %lu: compressed send failed, dropping", conn->id);
      mock_conn_end(conn, END_DROP);
      return rv;
    }
  } else {
    rv = conn_queue_message(conn, WSLAY_TEXT_FRAME, (const unsigned char *)json,
                            len);
    if (rv != DGW_OK)
      return rv;
  }
  conn_flush(conn);
  return DGW_OK;
}

int dgw_mock_conn_send_binary(struct dgw_mock_conn *conn, const void *data,
                              size_t len) {
  int rv;

  if (conn == NULL || (data == NULL && len > 0))
    return DGW_ERR_INVALID_ARGUMENT;
  if (!mock_conn_can_send(conn))
    return DGW_ERR_STATE;
  rv = conn_queue_message(conn, WSLAY_BINARY_FRAME, data, len);
  if (rv == DGW_OK)
    conn_flush(conn);
  return rv;
}

int mock_conn_send_op(struct dgw_mock_conn *conn, int op, const char *d_json) {
  char *json =
      mock_asprintf("{\"t\":null,\"s\":null,\"op\":%d,\"d\":%s}", op, d_json);
  int rv;

  if (json == NULL)
    return DGW_ERR_NOMEM;
  rv = mock_conn_send_payload(conn, json, strlen(json));
  free(json);
  return rv;
}

/* Queues a close frame (reason cut to the 123 bytes a frame allows). */
int mock_conn_close(struct dgw_mock_conn *conn, uint16_t code,
                    const char *reason) {
  size_t len = reason != NULL ? strlen(reason) : 0;
  struct timeval tv = {MOCK_CLOSE_TIMEOUT_MS / 1000,
                       (MOCK_CLOSE_TIMEOUT_MS % 1000) * 1000};
  int rv;

  if (conn->state != CONN_OPEN || conn->doomed != END_NONE || conn->closing ||
      conn->client_closed)
    return DGW_ERR_STATE;
  if (len > 123) {
    len = 123;
    while (len > 0 && ((unsigned char)reason[len] & 0xc0) == 0x80)
      len--; /* do not cut a UTF-8 sequence */
  }
  if (conn->in_recv) {
    /* Replies to the payloads before this one are still in wslay's
     * queue: the close goes after them (see conn_flush()). */
    conn->close_pending = 1;
    conn->close_pending_code = code;
    conn->close_pending_len = len;
    if (len > 0)
      memcpy(conn->close_pending_reason, reason, len);
  } else {
    rv = wslay_event_queue_close(conn->ws, code, (const uint8_t *)reason, len);
    if (rv != 0)
      return rv == WSLAY_ERR_NOMEM ? DGW_ERR_NOMEM : DGW_ERR_STATE;
  }
  conn->closing = 1;
  conn->mock_closed_first = 1;
  mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: sending close %u (%.*s)",
           conn->id, (unsigned)code, (int)len, reason != NULL ? reason : "");
  if (conn->dispatch_timer != NULL)
    evtimer_del(conn->dispatch_timer);
  if (conn->hello_timer != NULL)
    evtimer_del(conn->hello_timer);
  if (conn->close_timer != NULL)
    evtimer_add(conn->close_timer, &tv);
  conn_flush(conn);
  return DGW_OK;
}

static void close_timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_mock_conn *conn = arg;

  (void)fd;
  (void)what;
  mock_conn_enter(conn);
  mock_log(conn->mock, DGW_LOG_DEBUG,
           "conn %lu: no close reply from the client, closing", conn->id);
  mock_conn_end(conn, END_CLEAN);
  mock_conn_leave(conn);
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *arg,
                      void *user_data) {
  struct dgw_mock_conn *conn = user_data;

  (void)ctx;
  if (conn->doomed != END_NONE)
    return;
  switch (arg->opcode) {
  case WSLAY_TEXT_FRAME:
  case WSLAY_BINARY_FRAME:
    mock_conn_handle_payload(conn, arg->msg, arg->msg_length);
    break;
  case WSLAY_CONNECTION_CLOSE:
    conn->client_closed = 1;
    conn->client_code = arg->status_code;
    mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: client sent close %u",
             conn->id, (unsigned)arg->status_code);
    if (conn->dispatch_timer != NULL)
      evtimer_del(conn->dispatch_timer);
    break;
  default:
    break; /* pings are answered by wslay */
  }
}

void mock_conn_ws_read(struct dgw_mock_conn *conn) {
  int rv;

  conn->in_recv = 1;
  rv = wslay_event_recv(conn->ws);
  conn->in_recv = 0;
  if (conn->doomed != END_NONE)
    return;
  if (rv != 0) {
    /* Broken framing: wslay stopped reading and queued a close frame;
     * send it, then close the socket. */
    mock_log(conn->mock, DGW_LOG_INFO,
             "conn %lu: WebSocket protocol error from the client", conn->id);
    conn_flush(conn);
    mock_conn_end(conn, END_CLEAN);
    return;
  }
  conn_flush(conn);
}

/* ------------------------------------------------------------- HTTP upgrade */

/* Finds `key` in the query of `path_query`; copies its value into `out`.
 * Returns 1 when present. */
static int query_get(const char *path_query, const char *key, char *out,
                     size_t out_size) {
  const char *p = strchr(path_query, '?');
  size_t key_len = strlen(key);

  if (p == NULL)
    return 0;
  p++;
  while (*p != '\0' && *p != '#') {
    const char *end = p + strcspn(p, "&#");
    const char *eq = memchr(p, '=', (size_t)(end - p));
    size_t name_len = eq != NULL ? (size_t)(eq - p) : (size_t)(end - p);
    if (name_len == key_len && memcmp(p, key, key_len) == 0) {
      size_t vlen = eq != NULL ? (size_t)(end - eq - 1) : 0;
      if (vlen >= out_size)
        vlen = out_size - 1;
      if (vlen > 0)
        memcpy(out, eq + 1, vlen);
      out[vlen] = '\0';
      return 1;
    }
    p = *end == '&' ? end + 1 : end;
  }
  return 0;
}

void mock_conn_reject_http(struct dgw_mock_conn *conn, const char *reason) {
  mock_log(conn->mock, DGW_LOG_INFO, "conn %lu: bad upgrade request: %s",
           conn->id, reason);
  evbuffer_add_printf(bufferevent_get_output(conn->bev),
                      "HTTP/1.1 400 Bad Request\r\n"
                      "Content-Type: text/plain\r\n"
                      "Content-Length: %zu\r\n"
                      "Connection: close\r\n\r\n%s\n",
                      strlen(reason) + 1, reason);
  mock_conn_end(conn, END_CLEAN);
}

static int conn_ws_init(struct dgw_mock_conn *conn) {
  struct wslay_event_callbacks cbs;

  memset(&cbs, 0, sizeof cbs);
  cbs.recv_callback = ws_recv_cb;
  cbs.send_callback = ws_send_cb;
  cbs.on_msg_recv_callback = ws_msg_cb;
  if (wslay_event_context_server_init(&conn->ws, &cbs, conn) != 0) {
    conn->ws = NULL;
    return DGW_ERR_NOMEM;
  }
  wslay_event_config_set_max_recv_msg_length(conn->ws, MOCK_MAX_RECV_MSG);
  conn->dispatch_timer =
      evtimer_new(conn->mock->base, mock_script_timer_cb, conn);
  conn->close_timer = evtimer_new(conn->mock->base, close_timer_cb, conn);
  conn->hello_timer = evtimer_new(conn->mock->base, mock_hello_timer_cb, conn);
  if (conn->dispatch_timer == NULL || conn->close_timer == NULL ||
      conn->hello_timer == NULL)
    return DGW_ERR_NOMEM;
  return DGW_OK;
}

static void conn_upgrade(struct dgw_mock_conn *conn,
                         const struct dgw_handshake_request_info *info) {
  struct dgw_mock *mock = conn->mock;
  char accept[DGW_WS_ACCEPT_LEN + 1], v[16], encoding[32], compress[32];
  int has_v, has_encoding, has_compress, version = -1;
  uint16_t close_code = 0;
  const char *close_reason = NULL;

  conn->path_query = mock_strdup(info->path_query);
  if (conn->path_query == NULL || conn_ws_init(conn) != DGW_OK) {
    mock_conn_end(conn, END_DROP);
    return;
  }
  dgw_ws_accept_key(info->key, strlen(info->key), accept);
  if (mock->cfg.bad_accept)
    accept[0] = accept[0] == 'A' ? 'B' : 'A';
  evbuffer_add_printf(bufferevent_get_output(conn->bev),
                      "HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
  bufferevent_set_timeouts(conn->bev, NULL, NULL);

  has_v = query_get(conn->path_query, "v", v, sizeof v);
  has_encoding =
      query_get(conn->path_query, "encoding", encoding, sizeof encoding);
  has_compress =
      query_get(conn->path_query, "compress", compress, sizeof compress);
  if (has_v && (strcmp(v, "10") == 0 || strcmp(v, "9") == 0))
    version = v[0] == '9' ? 9 : 10;
  if (version < 0) {
    close_code = 4012;
    close_reason = "Invalid API version";
  } else if (has_encoding && strcmp(encoding, "json") != 0) {
    close_code = 4002;
    close_reason = strcmp(encoding, "etf") == 0 ? "etf not supported by mock"
                                                : "Unknown encoding";
  } else if (has_compress && strcmp(compress, "zlib-stream") != 0 &&
             (!MOCK_ZSTD || strcmp(compress, "zstd-stream") != 0)) {
    close_code = 4002;
    close_reason = MOCK_ZSTD ? "Unsupported compress (zlib-stream or "
                               "zstd-stream)"
                             : "Unsupported compress (only zlib-stream)";
  }
  conn->version = version;
  if (close_code == 0 && has_compress &&
      conn_compress_init(conn, strcmp(compress, "zstd-stream") == 0 ? 2 : 1) !=
          DGW_OK) {
    mock_conn_end(conn, END_DROP);
    return;
  }

  mock_conn_open(conn);
  mock->stats.connections++;
  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: opened %s from %s", conn->id,
           conn->path_query, conn->peer);
  if (mock->cfg.hooks.on_open != NULL)
    mock->cfg.hooks.on_open(mock, conn, conn->path_query, mock->cfg.user_data);
  if (!mock_conn_can_send(conn))
    return; /* the hook closed or dropped it */

  if (close_code != 0)
    mock_conn_close(conn, close_code, close_reason);
  else
    mock_conn_greet(conn);
  /* Frames that came with the request are already in the input buffer. */
  if (conn->doomed == END_NONE &&
      evbuffer_get_length(bufferevent_get_input(conn->bev)) > 0)
    mock_conn_ws_read(conn);
}

void mock_conn_read_http(struct dgw_mock_conn *conn) {
  struct evbuffer *in = bufferevent_get_input(conn->bev);
  size_t len = evbuffer_get_length(in);
  size_t take = len < DGW_HANDSHAKE_MAX_HEADER ? len : DGW_HANDSHAKE_MAX_HEADER;
  struct dgw_handshake_request_info info;
  char reason[160];
  size_t header_len = 0;
  const char *buf;
  int rv;

  if (take == 0)
    return;
  buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)take);
  if (buf == NULL) {
    mock_conn_end(conn, END_DROP);
    return;
  }
  if (mock_rest_serve(conn, buf, take))
    return;
  reason[0] = '\0';
  rv = dgw_handshake_parse_request(buf, take, &header_len, &info, reason,
                                   sizeof reason);
  if (rv == DGW_ERR_AGAIN) {
    if (len >= DGW_HANDSHAKE_MAX_HEADER)
      mock_conn_reject_http(conn, "request header block too large");
    return;
  }
  if (rv != DGW_OK || header_len == 0 || header_len > take) {
    mock_conn_reject_http(conn, reason[0] != '\0' ? reason : "bad request");
    return;
  }
  evbuffer_drain(in, header_len);
  conn_upgrade(conn, &info);
}
