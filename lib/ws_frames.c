/*
 * The WebSocket input, one frame at a time (ws_read_frames): the whole
 * binary frames a gateway sends by the thousand go straight from the input
 * buffer to on_message, big ones are gathered as they arrive, and every
 * other frame is handed to wslay byte for byte.  Split from ws.c, which
 * owns the connection, the upgrade and the close handshake; both share
 * struct dgw_ws through ws_internal.h.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <wslay/wslay.h>

#include "guard.h"
#include "ws_internal.h"

/* A whole binary frame this big that has not all arrived yet is gathered
 * into a block of its own as it comes, rather than left in the input
 * buffer and pulled up at the end: the pullup copies the frame into one
 * new block while the old chains still hold it, twice the frame at the
 * peak (issue 15: two 60 MiB frames took 189 MB). */
#define WS_GATHER_MIN (256u * 1024u)

/* Ends the connection at once on a frame it must not read: close `code`
 * sent (on a plain socket written out now; over TLS, as for wslay's own
 * failures, only if it leaves before the socket is released), reading
 * stopped. */
static void close_now(struct dgw_ws *ws, uint16_t code) {
  wslay_event_queue_close(ws->wslay, code, NULL, 0);
  wslay_event_shutdown_read(ws->wslay);
  if (wslay_event_send(ws->wslay) == 0 && ws->bev != NULL && !ws->url.tls &&
      bufferevent_getfd(ws->bev) >= 0) {
    /* The bufferevent's output is frozen to others: send it directly, so
     * the close leaves before the socket is released. */
    struct evbuffer *out = bufferevent_get_output(ws->bev);
    size_t n = evbuffer_get_length(out);
    const unsigned char *p = evbuffer_pullup(out, (ev_ssize_t)n);

    if (p != NULL && n > 0)
      (void)!send(bufferevent_getfd(ws->bev), p, n, MSG_NOSIGNAL);
  }
}

/* Fails the connection on a frame wslay would misjudge: close 1002, `why`
 * kept as the reason.  Returns WS_FRAME_FAILED for read_cb, which ends the
 * connection with DGW_ERR_PROTOCOL. */
static int fail_frame(struct dgw_ws *ws, const char *why) {
  close_now(ws, WSLAY_CODE_PROTOCOL_ERROR);
  ws_set_reason(ws,
                "WebSocket protocol error by the peer: %s (we sent close "
                "1002)",
                why);
  return WS_FRAME_FAILED;
}

/*
 * The input, one frame at a time.  The frames a gateway sends by the
 * thousand, whole unmasked binary messages, are handed to on_message
 * straight from the input buffer: no copy into wslay's buffer, its
 * per-message chunk and its reassembled message, and no allocation.
 * Every other frame (text, whose UTF-8 wslay checks; control frames;
 * fragments; anything malformed, masked, oversized or with RSV bits) is
 * given to wslay byte for byte, so it judges them exactly as before.  The
 * fast path takes only frames wslay would deliver unchanged as a message
 * of their own: wslay must be between messages (no fragmented one
 * pending), and the header must use the shortest length encoding, as
 * wslay demands.
 *
 * What it buys, measured (2026-12-03, dgw-bench, plain ws://, the fast
 * path switched off by a temporary flag in the same build): read_cb
 * inclusive under callgrind, 20,000 events x (no subscriber + raw d),
 * 1,256.0 M instructions through wslay alone against 1,202.5 M with the
 * fast path, about 1,340 fewer per event (4.3%), most of them wslay's
 * copies and its malloc/free per message.  CPU time per million events
 * (best of 3, 150,000 events, runs alternated): no subscriber 5.42-5.60 s
 * without, 5.19-5.25 s with; raw d 5.36-5.57 s without, 5.22-5.29 s with.
 * wslay's own frame layer (wslay_frame_recv) would not save the copy (it
 * reads through its own 4 KiB buffer) and would leave fragments, control
 * frames, UTF-8 and the close handshake to rewrite here; so it stays.
 *
 * Returns 0, or a wslay error code from wslay_event_recv(), or
 * WSLAY_ERR_NOMEM when the frame cannot be made contiguous, or
 * WS_FRAME_FAILED (fail_frame()).
 */
int ws_read_frames(struct dgw_ws *ws) {
  for (;;) {
    struct evbuffer *in;
    uint8_t h[10];
    size_t have, header_len;
    uint64_t payload_len;
    const uint8_t *frame;
    int fin, opcode, fast;

    if (ws->bev == NULL || dgw_guard_dying(&ws->guard) || ws->paused ||
        !wslay_event_get_read_enabled(ws->wslay))
      return 0;
    if (ws->big.buf != NULL) {
      uint8_t *buf;
      size_t want = ws->big.len - ws->big.have;
      int n;

      in = bufferevent_get_input(ws->bev);
      if (want > evbuffer_get_length(in))
        want = evbuffer_get_length(in);
      if (want > 0 &&
          (n = evbuffer_remove(in, ws->big.buf + ws->big.have, want)) > 0)
        ws->big.have += (size_t)n;
      if (ws->big.have < ws->big.len)
        return 0; /* the rest is still to come */
      buf = ws->big.buf;
      ws->big.buf = NULL;
      /* As for wslay's messages: nothing after a close started. */
      ws->next_limit = UINT64_MAX; /* the owner may set it again */
      if (ws->state == WS_OPEN && ws->cb.on_message != NULL)
        ws->cb.on_message(ws, 1, buf, ws->big.len, ws->user_data);
      free(buf);
      continue;
    }
    if (ws->wslay_left > 0) {
      int rv = wslay_event_recv(ws->wslay);

      if (rv != 0 || ws->wslay_left > 0)
        return rv; /* an error, or the rest of the frame is still to come */
      continue;
    }
    in = bufferevent_get_input(ws->bev);
    have = evbuffer_get_length(in);
    if (have < 2 || evbuffer_copyout(in, h, have < 10 ? have : 10) < 2)
      return 0;
    fin = h[0] >> 7;
    opcode = h[0] & 0x0f;
    payload_len = h[1] & 0x7f;
    header_len = payload_len == 126 ? 4 : payload_len == 127 ? 10 : 2;
    if (h[1] & 0x80)
      /* RFC 6455 5.1: a client MUST fail the connection on a masked
       * frame.  At once, whatever its length: the header would also be 4
       * bytes longer (the masking key), and handing wslay a frame cut 4
       * bytes short made the fast path take the key for the next frame
       * (issue 15). */
      return fail_frame(ws, "the server sent a masked frame");
    if (opcode == WSLAY_CONNECTION_CLOSE && payload_len == 1)
      /* RFC 6455 5.5.1: a close body is empty or starts with a 2-byte
       * code; wslay would read 1 byte as "no code". */
      return fail_frame(ws, "a close frame with a 1-byte body");
    if (have < header_len)
      return 0;
    if (header_len == 4)
      payload_len = (uint64_t)h[2] << 8 | h[3];
    else if (header_len == 10)
      for (int i = 0; i < 8; i++)
        payload_len = (i ? payload_len << 8 : 0) | h[2 + i];
    if ((opcode == WSLAY_BINARY_FRAME || opcode == WSLAY_CONTINUATION_FRAME) &&
        payload_len > ws->next_limit) {
      /* The owner could only refuse it (issue 15: the decompressor holds
       * most of a payload already): refuse it unread, at its header. */
      close_now(ws, WSLAY_CODE_MESSAGE_TOO_BIG);
      ws_set_reason(ws,
                    "inbound frame of %llu bytes refused at its header: "
                    "only %llu more bytes fit under the %zu-byte cap",
                    (unsigned long long)payload_len,
                    (unsigned long long)ws->next_limit, ws->cfg.max_message);
      return WS_FRAME_TOO_BIG;
    }
    fast =
        ws->state == WS_OPEN && fin && (h[0] & 0x70) == 0 &&
        opcode == WSLAY_BINARY_FRAME && (h[1] & 0x80) == 0 && !ws->fragmented &&
        payload_len <= ws->cfg.max_message &&
        (header_len == 2 || (header_len == 4 && payload_len >= 126) ||
         (header_len == 10 && payload_len >= 65536 && payload_len >> 63 == 0));
    if (!fast) {
      /* wslay's turn.  Its own checks decide what the frame means; a
       * bogus length only needs to be large, since wslay stops at the
       * header. */
      if (opcode == WSLAY_TEXT_FRAME || opcode == WSLAY_BINARY_FRAME)
        ws->fragmented = !fin;
      else if (opcode == WSLAY_CONTINUATION_FRAME && fin)
        ws->fragmented = 0;
      ws->wslay_left = payload_len > UINT64_MAX - header_len
                           ? UINT64_MAX
                           : header_len + payload_len;
      continue;
    }
    if (have - header_len < payload_len && payload_len >= WS_GATHER_MIN) {
      /* Within the cap (checked above), so it fits a size_t. */
      ws->big.buf = malloc((size_t)payload_len);
      if (ws->big.buf == NULL)
        return WSLAY_ERR_NOMEM;
      ws->big.len = (size_t)payload_len;
      ws->big.have = 0;
      evbuffer_drain(in, header_len);
      continue;
    }
    if (have - header_len < payload_len)
      return 0; /* wait for the whole frame */
    frame = evbuffer_pullup(in, (ev_ssize_t)(header_len + payload_len));
    if (frame == NULL)
      return WSLAY_ERR_NOMEM;
    ws->next_limit = UINT64_MAX; /* the owner may set it again */
    if (ws->cb.on_message != NULL)
      ws->cb.on_message(ws, 1, frame + header_len, (size_t)payload_len,
                        ws->user_data);
    /* The callback may have closed or dropped the connection; the frame
     * was consumed either way. */
    if (ws->bev != NULL)
      evbuffer_drain(bufferevent_get_input(ws->bev),
                     header_len + (size_t)payload_len);
  }
}
