/*
 * The WebSocket connection's insides, shared by ws.c (the connection, the
 * upgrade, wslay's callbacks, the close handshake, the public calls) and
 * ws_frames.c (the input, frame by frame).  No other file includes this.
 */
#ifndef DGW_WS_INTERNAL_H
#define DGW_WS_INTERNAL_H

#include <stdint.h>

#include <wslay/wslay.h>

#include "guard.h"
#include "handshake.h"
#include "url.h"
#include "ws.h"

struct bufferevent;
struct event;
struct dgw_connector;

enum ws_state {
  WS_IDLE,
  WS_CONNECTING,
  WS_UPGRADING,
  WS_OPEN,
  WS_CLOSING,
  WS_CLOSED,
};

struct dgw_ws {
  struct event_base *base;
  struct dgw_ws_config cfg;
  struct dgw_ws_callbacks cb;
  void *user_data;

  enum ws_state state;
  struct bufferevent *bev;
  struct event *timer; /* connect/upgrade timeout, then the close wait */
  struct event *kick;  /* starts the connection from the loop */
  wslay_event_context_ptr wslay;
  /* DNS, each address within its share of the timeout, TLS. */
  struct dgw_connector *connector;

  struct dgw_url url;
  char key[DGW_WS_KEY_LEN + 1];
  char accept[DGW_WS_ACCEPT_LEN + 1];

  int we_closed;       /* the close handshake is ours */
  uint16_t close_code; /* the peer's */
  char close_reason[124];
  char reason[256];

  /* Framing of the input (see ws_read_frames): bytes of the current frame
   * still to be handed to wslay, and whether wslay holds the first frames
   * of a fragmented message. */
  uint64_t wslay_left;
  int fragmented;
  /* The owner's limit on the next binary or continuation frame
   * (dgw_ws_limit_next_frame); UINT64_MAX: none.  Lifted whenever a
   * binary message is delivered. */
  uint64_t next_limit;
  /* A big whole binary frame gathered as it arrives (ws_read_frames). */
  struct {
    uint8_t *buf; /* NULL: none under way */
    size_t len;
    size_t have;
  } big;

  int paused; /* dgw_ws_pause(): no frame is read while set */
  int plain;  /* a plain socket (no TLS): ws_read_more() may read it */
  /* The reads past libevent's 4 KiB (ws_read.c). */
  struct {
    size_t left;       /* input bytes the last read_cb left unread */
    size_t budget;     /* what this callback may still read itself */
    int pending_errno; /* an error our read took from the socket */
    uint64_t reads;    /* reads of ours that returned data */
    uint64_t bytes;    /* the bytes they returned */
  } io;
  int pending_error;      /* a failure found inside an API call, reported from
                             the loop so on_close never runs inside the call */
  struct dgw_guard guard; /* dgw_ws_free() inside a callback waits */
};

/* Keeps printf-style `fmt` as the connection's reason (dgw_ws_reason()). */
void ws_set_reason(struct dgw_ws *ws, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* ws_read_frames()'s answer when it failed the connection itself (close
 * 1002 sent, the reason set): the caller ends it with DGW_ERR_PROTOCOL. */
#define WS_FRAME_FAILED 1
/* ws_read_frames()'s answer when it refused a frame over the owner's limit
 * (close 1009 sent, the reason set): DGW_ERR_MESSAGE_TOO_LARGE. */
#define WS_FRAME_TOO_BIG 2

/* Reads the frames waiting in an open or closing connection's input,
 * delivering messages to on_message.  Returns 0, a wslay error code from
 * wslay_event_recv(), WSLAY_ERR_NOMEM, WS_FRAME_FAILED or WS_FRAME_TOO_BIG. */
int ws_read_frames(struct dgw_ws *ws);

/* At most this much is read by ws_read_more() per read callback, so that
 * one busy connection does not hold the loop from the others. */
#define WS_READ_BUDGET (256u * 1024u)

struct evbuffer;

/* At the start of a read callback on `in`, the connection's input: decides
 * whether libevent's read was capped, so that ws_read_more() may read. */
void ws_read_begin(struct dgw_ws *ws, struct evbuffer *in);

/* At the end of a read callback: remembers what the input still holds
 * (`in` NULL: the socket is gone). */
void ws_read_end(struct dgw_ws *ws, struct evbuffer *in);

/* Reads once more from a plain socket into the input, without waiting,
 * within the callback's budget, the bufferevent's read watermark and rate
 * limit.  Returns 1 when it read something (call again after handling
 * it), 0 otherwise.  End of stream is left for libevent to find; an error
 * is kept for ws_read_failed(). */
int ws_read_more(struct dgw_ws *ws);

/* Returns the errno of an error ws_read_more() took from the socket, once,
 * with errno set to it, when it is due: the connection is open or closing
 * and not paused (what came before it was delivered).  0: none due. */
int ws_read_failed(struct dgw_ws *ws);

#endif
