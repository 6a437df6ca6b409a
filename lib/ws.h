/*
 * The WebSocket transport: one client connection to a ws:// or wss:// URL
 * over a bufferevent (TLS through bufferevent_openssl), our own HTTP/1.1
 * upgrade, and wslay for framing.  Internal to dgw; the gateway layer owns
 * one dgw_ws per connection attempt.
 *
 * Life of a dgw_ws: dgw_ws_new() -> dgw_ws_connect() -> on_open ->
 * on_message... -> on_close (exactly once, whatever ended it) ->
 * dgw_ws_free().  Every callback may call dgw_ws_free(), dgw_ws_close() or
 * dgw_ws_send_text() on the same object: freeing is deferred until the
 * library is back on its own stack.
 */
#ifndef DGW_WS_H
#define DGW_WS_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include <dgw/dgw.h>

/* Default cap on one inbound message (after reassembly of fragments).
 * Discord's READY and GUILD_CREATE reach several MB (5.6 MB seen). */
#define DGW_WS_DEFAULT_MAX_MESSAGE (64u * 1024u * 1024u)
#define DGW_WS_DEFAULT_CONNECT_TIMEOUT_MS 30000u
/* Each resolved address but the last gets a share of the connect timeout
 * to connect (TCP and TLS) before the next one is tried (connector.h); the
 * whole attempt stays within the connect timeout. */
#define DGW_WS_DEFAULT_CLOSE_TIMEOUT_MS 5000u

struct dgw_ws;
struct dgw_resolver;

struct dgw_ws_callbacks {
  /* The upgrade succeeded; messages may be sent. */
  void (*on_open)(struct dgw_ws *ws, void *user_data);
  /* One whole message (fragments reassembled).  `data` is borrowed for the
   * call.  `binary` is 1 for a binary message, 0 for text. */
  void (*on_message)(struct dgw_ws *ws, int binary, const uint8_t *data,
                     size_t len, void *user_data);
  /* The connection is over; called exactly once.  `error` is DGW_OK when
   * a close we started completed, DGW_ERR_CLOSED when the peer closed
   * (see dgw_ws_close_code()), or the failure (DGW_ERR_DNS,
   * DGW_ERR_CONNECT, DGW_ERR_TLS, DGW_ERR_TLS_VERIFY, DGW_ERR_TIMEOUT,
   * DGW_ERR_HANDSHAKE, DGW_ERR_PROTOCOL, DGW_ERR_MESSAGE_TOO_LARGE,
   * DGW_ERR_CONNECTION_LOST, DGW_ERR_IO, DGW_ERR_NOMEM); dgw_ws_reason()
   * has the readable detail. */
  void (*on_close)(struct dgw_ws *ws, int error, void *user_data);
};

struct dgw_ws_config {
  /* Client TLS context for wss:// (borrowed; must outlive the dgw_ws).
   * NULL makes wss:// URLs fail with DGW_ERR_TLS. */
  SSL_CTX *ssl_ctx;
  /* Resolver (see resolver.h); each lookup holds a reference, so the
   * owner may drop its own at any time.  Needed for host names; IP
   * literals connect without one.  A host name with no resolver fails
   * with DGW_ERR_DNS. */
  struct dgw_resolver *resolver;
  size_t max_message;          /* 0: DGW_WS_DEFAULT_MAX_MESSAGE */
  uint32_t connect_timeout_ms; /* DNS+TCP+TLS+upgrade; 0: default */
  uint32_t close_timeout_ms;   /* wait for the close reply; 0: default */
  dgw_log_fn log;              /* may be NULL */
  void *log_user_data;
};

/*
 * Creates an idle connection object on `base`.  `cfg` and `cb` are copied;
 * `user_data` is handed to every callback.  Returns NULL with *err set
 * (DGW_ERR_INVALID_ARGUMENT, DGW_ERR_NOMEM) on failure.
 */
struct dgw_ws *dgw_ws_new(struct event_base *base,
                          const struct dgw_ws_config *cfg,
                          const struct dgw_ws_callbacks *cb, void *user_data,
                          int *err);

/*
 * Starts connecting to `url` (ws:// or wss://; see dgw_url_parse) and
 * returns at once.  DGW_OK means on_open or on_close will follow.  Returns
 * DGW_ERR_URL (reason in dgw_ws_reason()), DGW_ERR_TLS when wss:// has no
 * TLS context, DGW_ERR_STATE when already used, DGW_ERR_NOMEM; on_close is
 * not called for these.
 */
int dgw_ws_connect(struct dgw_ws *ws, const char *url);

/*
 * Queues one text message (copied) and starts writing it; a write failure
 * is reported later through on_close, never inside this call.  Returns
 * DGW_OK,
 * DGW_ERR_STATE when the connection is not open (closing, closed, or not
 * yet upgraded), or DGW_ERR_NOMEM.
 */
int dgw_ws_send_text(struct dgw_ws *ws, const char *data, size_t len);

/*
 * Starts the close handshake with `code` (1000-1003, 1007-1011 or
 * 3000-4999) and `reason` (may be NULL; at most 123 bytes).  on_close follows
 * with DGW_OK once the peer answered and our output drained, or after the close
 * timeout.  Messages that arrive after this call are not delivered.  Before the
 * upgrade there is nothing to hand-shake: the attempt is dropped and on_close
 * (DGW_OK) runs before this returns.  Returns DGW_OK, DGW_ERR_INVALID_ARGUMENT
 * for a bad code, or DGW_ERR_STATE when never connected, already closing or
 * closed.  A failure while writing the close frame is reported through on_close
 * from the loop, never inside this call.
 */
int dgw_ws_close(struct dgw_ws *ws, uint16_t code, const char *reason);

/*
 * Drops the connection at once without callbacks and frees everything.
 * Safe inside any of this object's callbacks.  NULL is a no-op.
 */
void dgw_ws_free(struct dgw_ws *ws);

/* Close code the peer sent (0 when none), and its reason text (NUL-
 * terminated, "" when none; valid until dgw_ws_free). */
uint16_t dgw_ws_close_code(const struct dgw_ws *ws);
const char *dgw_ws_close_reason(const struct dgw_ws *ws);

/* Readable detail of the last failure ("" when none), e.g. "TLS
 * certificate verify failed: hostname mismatch".  Valid until
 * dgw_ws_free. */
const char *dgw_ws_reason(const struct dgw_ws *ws);

/* The reads a plain connection made itself past libevent's 4 KiB per read
 * (lib/ws_read.c): how many returned data, and the bytes they returned.
 * Either pointer may be NULL.  For tests and measurements. */
void dgw_ws_read_stats(const struct dgw_ws *ws, uint64_t *reads,
                       uint64_t *bytes);

/* At most this much is read from the socket by one dgw_ws_read_waiting(). */
#define DGW_WS_READ_WAITING_MAX (4u * 1024u * 1024u)

/*
 * Reads what has already arrived on the socket (without waiting; over TLS
 * only what the TLS layer already decrypted) and delivers its messages
 * through on_message now, as the loop would have later; a failure found
 * on the way is reported through on_close as usual.  For a judgment that
 * must not count bytes that are merely unread (kokoro's zombie check).
 * No-op unless open or closing.  Safe inside this object's callbacks.
 */
void dgw_ws_read_waiting(struct dgw_ws *ws);

/*
 * Limits the binary data frames (first frames and continuations) that
 * arrive before the next binary message is delivered to `max` payload
 * bytes each: a frame over it is refused at its header, before its payload
 * is read or any buffer is allocated for it, with close 1009 and on_close
 * DGW_ERR_MESSAGE_TOO_LARGE.  Delivering a binary message lifts the limit,
 * so an owner calls this from on_message when what it holds leaves less
 * room than the cap (the shard: a decompressor waiting for the end of a
 * payload, issue 15).  Text and control frames are not affected.  NULL is
 * a no-op.
 */
void dgw_ws_limit_next_frame(struct dgw_ws *ws, size_t max);

/*
 * Holds reading back (`paused` nonzero) or lets it go again.  While
 * paused no further message is delivered, not even one already in the
 * input buffer (frames are read one at a time), and the socket is not
 * read: the kernel's buffers and then TCP flow control hold the rest.
 * Releasing delivers what waits from the loop, not inside this call.
 * Idempotent; safe inside this object's callbacks; NULL is a no-op.
 */
void dgw_ws_pause(struct dgw_ws *ws, int paused);

/* 1 once the upgrade has completed and until the connection ends. */
int dgw_ws_is_open(const struct dgw_ws *ws);

#endif /* DGW_WS_H */
