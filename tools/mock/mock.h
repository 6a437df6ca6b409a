/*
 * The dgw mock Discord gateway: a libevent + wslay (server side) + zlib
 * fake of wss://gateway.discord.gg that the test suite runs in-process over
 * loopback, and that the dgw-mock program serves standalone.
 *
 * It speaks gateway v10 JSON (see ../shared/docs/gateway-protocol.md, §13):
 * HELLO, heartbeat ACKs, IDENTIFY -> READY + scripted dispatches with
 * increasing sequence numbers, the opcode/close-code rules of §13.3, and
 * zlib-stream transport compression (one deflate stream per connection,
 * Z_SYNC_FLUSH per payload) when the URL asks for compress=zlib-stream.
 *
 * Fault knobs (split payloads, continuation frames, wrong accept key, close
 * with any code, drop mid-frame) let tests provoke every failure a client
 * must survive.  Later scenarios (resume replay, rate limits...) extend the
 * per-connection state machine in mock.c; the API below stays.
 *
 * Single-threaded: every call on the thread that runs the event_base.
 */
#ifndef DGW_MOCK_H
#define DGW_MOCK_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include <dgw/dgw.h>

struct dgw_mock;
struct dgw_mock_conn;

/* Observations the tests (and the CLI's logging) hook into.  All optional.
 * Pointers passed in are valid only during the call. */
struct dgw_mock_hooks {
  /* A client finished the WebSocket upgrade. `path_query` is the request
   * target, e.g. "/?v=10&encoding=json&compress=zlib-stream". */
  void (*on_open)(struct dgw_mock *mock, struct dgw_mock_conn *conn,
                  const char *path_query, void *user_data);
  /* A client sent a payload (any text or binary message), as received;
   * `op` is its opcode or -1 when it did not parse.  Called before the mock
   * acts on it. */
  void (*on_payload)(struct dgw_mock *mock, struct dgw_mock_conn *conn, int op,
                     const char *json, size_t len, void *user_data);
  /* A connection ended.  `code` is the close code the client sent, or 0
   * when there was none (TCP dropped, or the mock closed first). */
  void (*on_close)(struct dgw_mock *mock, struct dgw_mock_conn *conn, int code,
                   void *user_data);
};

struct dgw_mock_config {
  const char *host; /* bind address; NULL means "127.0.0.1" */
  uint16_t port;    /* 0 picks a free port: see dgw_mock_port() */
  /* PEM certificate chain and key: when both are set the mock serves
   * wss:// (TLS 1.2+); otherwise plain ws://. */
  const char *cert_file;
  const char *key_file;
  /* Token IDENTIFY must carry; NULL accepts any non-empty token.  A wrong
   * one closes with 4004. */
  const char *token;
  uint32_t heartbeat_interval_ms; /* in HELLO; 0 means 41250 */
  /* Gap between scripted dispatches after READY; 0 sends them at once. */
  uint32_t dispatch_interval_ms;
  /* 0: one WebSocket message per compressed payload.  N > 0: split every
   * compressed payload into messages of at most N bytes (so with N < 4
   * the 00 00 FF FF suffix itself is split across messages). */
  size_t split_size;
  /* 0: one frame per message.  N > 0: send every message as a first frame
   * plus continuation frames of at most N payload bytes each. */
  size_t fragment_size;
  /* Answer the upgrade with a wrong Sec-WebSocket-Accept (tests that the
   * client refuses it). */
  int bad_accept;
  /* Log sink for the mock's own diagnostics; NULL is silent. */
  dgw_log_fn log;
  void *log_user_data;
  struct dgw_mock_hooks hooks;
  void *user_data; /* handed to the hooks */
};

/*
 * Creates a mock listening on cfg->host:cfg->port on `base`.  Returns NULL
 * and sets *err (DGW_ERR_INVALID_ARGUMENT, DGW_ERR_TLS for unreadable
 * cert/key, DGW_ERR_CONNECT when the address cannot be bound, DGW_ERR_NOMEM)
 * on failure.  `cfg` is copied (strings too).  Free with dgw_mock_free().
 */
struct dgw_mock *dgw_mock_new(struct event_base *base,
                              const struct dgw_mock_config *cfg, int *err);

/* Closes the listener and every connection at once (no close frames) and
 * frees the mock.  NULL is a no-op.  Not to be called from a hook. */
void dgw_mock_free(struct dgw_mock *mock);

/* The port the mock listens on (useful with cfg->port == 0). */
uint16_t dgw_mock_port(const struct dgw_mock *mock);

/*
 * Appends a dispatch to the script sent, in order, to each connection after
 * its READY: `t` is the event name, `d_json` the JSON text of `d` (copied).
 * Returns DGW_OK, DGW_ERR_JSON when d_json does not parse, DGW_ERR_NOMEM.
 */
int dgw_mock_add_dispatch(struct dgw_mock *mock, const char *t,
                          const char *d_json);

/*
 * Loads a script from a file of JSON lines, each {"t": NAME, "d": VALUE}
 * (the format dgw record writes).  Returns DGW_OK, DGW_ERR_IO when the file
 * cannot be read, DGW_ERR_JSON naming nothing (check the log) for a bad line.
 */
int dgw_mock_load_script(struct dgw_mock *mock, const char *path);

/* The number of open connections, and the most recently opened one (NULL
 * when none).  A connection pointer is valid until its on_close hook. */
size_t dgw_mock_conn_count(const struct dgw_mock *mock);
struct dgw_mock_conn *dgw_mock_last_conn(struct dgw_mock *mock);

/*
 * Sends one payload (the JSON text `json`, copied) to the client as the
 * connection's compression and split/fragment settings say.  Returns DGW_OK
 * or DGW_ERR_STATE when the connection is closing.
 */
int dgw_mock_conn_send_json(struct dgw_mock_conn *conn, const char *json);

/* Sends a dispatch with the connection's next sequence number. */
int dgw_mock_conn_send_dispatch(struct dgw_mock_conn *conn, const char *t,
                                const char *d_json);

/* Starts a close handshake with `code` and `reason` (may be NULL). */
int dgw_mock_conn_close(struct dgw_mock_conn *conn, uint16_t code,
                        const char *reason);

/* Drops the TCP connection at once, with no close frame. */
void dgw_mock_conn_drop(struct dgw_mock_conn *conn);

/* Writes the first half of a frame (header and part of its payload), then
 * drops the TCP connection: the client must report a lost connection, not
 * hang waiting for the rest. */
void dgw_mock_conn_drop_midframe(struct dgw_mock_conn *conn);

/* The last sequence number sent on this connection (0 before READY). */
int64_t dgw_mock_conn_seq(const struct dgw_mock_conn *conn);

#endif /* DGW_MOCK_H */
