/*
 * One shard: its connection, its timers, kokoro (heartbeat, zombie), the
 * sender, and the session core (session.h) whose decisions it carries
 * out.  Internal; the public face is the dgw_gateway_* calls in dgw.h.
 *
 * A shard knows only its own config (copied by gateway_new()) and a table
 * of functions to its owner, the way kokoro, sender and identify report
 * upward: it never sees the client's struct, the plugins or the
 * application's callbacks.  client.c is the only owner.
 */
#ifndef DGW_GATEWAY_H
#define DGW_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include <dgw/dgw.h>

#include "ratelimit.h" /* dgw_send_done_fn */

struct dgw_resolver;

/* What one shard needs, copied by gateway_new() (strings included; the
 * token is wiped when the shard is freed). */
struct shard_config {
  uint32_t shard_id, shard_total;
  const char *token;
  uint64_t intents;
  const char *gateway_url;     /* NULL until known: see gateway_set_url() */
  int compress;                /* enum dgw_compression (decomp.h) */
  int large_threshold;         /* 0: not sent */
  const char *presence_json;   /* IDENTIFY's presence, or NULL */
  const char *properties_json; /* IDENTIFY's properties, or NULL: dgw's */
  uint32_t backoff_base_ms, backoff_max_ms, healthy_ms;
  uint32_t invalid_min_ms, invalid_max_ms;
  uint32_t connect_timeout_ms, close_timeout_ms;
  size_t max_payload;
  uint32_t send_budget, send_window_ms; /* 0: Discord's 120 per 60 s */
  size_t send_queue;                    /* 0: the default capacity */
  /* Lazy connect: without a session, connect this long before the
   * identify turn (gateway_lazy.c); 0: connect at once, ask at HELLO. */
  uint32_t lazy_lead_ms;
  /* Quiet shards: at a heartbeat ACK with no dispatch for quiet_ms, the
   * zlib window is packed through `sleeper` (shared, borrowed; NULL:
   * never; inflate.h). */
  uint32_t quiet_ms;
  struct dgw_inflate_sleeper *sleeper;
  dgw_log_fn log; /* may be NULL */
  void *log_user_data;
  enum dgw_log_level log_level;
  /* Shared and borrowed: they outlive the shard. */
  struct event_base *base;
  SSL_CTX *ssl;
  struct dgw_resolver *resolver;
  /* Jitter for the backoff and op 9's wait; NULL: dgw_random01(). */
  double (*random01)(void *user_data);
  void *random_user_data;
  /* The owner's fencing: asked before every payload the shard writes
   * (IDENTIFY, RESUME, heartbeats, commands); 0 vetoes it and the write
   * fails with DGW_ERR_STATE as if the connection were gone.  NULL: every
   * write goes out. */
  int (*may_send)(void *data, const struct dgw_gateway *gw);
  void *may_send_data;
};

/* What the shard tells its owner through shard_owner_ops.lifecycle. */
enum shard_event {
  SHARD_CONNECTING,   /* a connection attempt starts */
  SHARD_READY,        /* READY: a new session (its dispatch follows) */
  SHARD_RESUMED,      /* RESUMED: the session continues (dispatch follows) */
  SHARD_DISCONNECTED, /* a connection ended; `info` says what comes next */
  SHARD_FATAL,        /* a fatal close stopped the shard; `info` as above */
};

/* One dispatch as the shard peeked it: valid only during the call. */
struct shard_dispatch {
  const char *name; /* the event name, t */
  int64_t seq;      /* s, 0 when absent */
  const char *data; /* the raw text of d ("null" when absent) */
  size_t data_len;
};

/*
 * The shard's only way up.  Every function gets the `owner` pointer given
 * to gateway_new() and the shard.  Any of them may close, terminate or
 * (through the owner) free the shard's owner; the shard checks `gone` and
 * its own state after each call that reaches the application.
 */
struct shard_owner_ops {
  /* Brackets every entry from the event loop into shard code; `leave`
   * returns 1 when the owner, and with it this shard, was freed. */
  void (*enter)(void *owner);
  int (*leave)(void *owner);
  /* 1 once the owner is being freed inside a callback: the shard calls
   * nothing more and unwinds. */
  int (*gone)(void *owner);
  void (*state_changed)(void *owner, struct dgw_gateway *gw,
                        enum dgw_state from, enum dgw_state to);
  /* `info` is NULL except for SHARD_DISCONNECTED and SHARD_FATAL. */
  void (*lifecycle)(void *owner, struct dgw_gateway *gw, enum shard_event ev,
                    const struct dgw_disconnect *info);
  /* One dispatch to deliver: READY and RESUMED included, replays not. */
  void (*dispatch)(void *owner, struct dgw_gateway *gw,
                   const struct shard_dispatch *ev);
  /* The shard wants to IDENTIFY: answer with gateway_grant_identify()
   * (from the loop) or gateway_identify_now(), when the limits allow. */
  void (*identify_request)(void *owner, struct dgw_gateway *gw);
  /* ... and no longer does (its connection went away). */
  void (*identify_cancel)(void *owner, struct dgw_gateway *gw);
  /* A network-level failure before the upgrade; the shard is OFFLINE and
   * about to wait.  Return 1 to park it (no timer of its own; another
   * shard probes and gateway_relaunch() wakes it). */
  int (*network_lost)(void *owner, struct dgw_gateway *gw);
  /* A connection got through the upgrade: the network is there. */
  void (*network_back)(void *owner, struct dgw_gateway *gw);
  /* The shard was closed for good (dgw_gateway_close() and friends). */
  void (*closed)(void *owner, struct dgw_gateway *gw);
  /* The events of the shard's session that anyone waits for will never
   * come (new session, fatal close, shard closed): fail such waits. */
  void (*session_lost)(void *owner, struct dgw_gateway *gw);
  /* The shard is about to start a connection attempt after a wait (its
   * backoff, or a relaunch).  Return 1 to let it go now; 0 makes it wait
   * (still BACKOFF or OFFLINE) for gateway_grant_connect().  The owner
   * counts the attempt in flight until the shard leaves CONNECTING, HELLO
   * and RESUMING or asks to IDENTIFY.  May be NULL: never wait. */
  int (*connect_request)(void *owner, struct dgw_gateway *gw);
  /* The granted IDENTIFY has just been written: the identify window of
   * the shard's bucket starts now. */
  void (*identify_sent)(void *owner, struct dgw_gateway *gw);
  /* Lazy connect: the shard has no connection and no session; put it in
   * the identify line now and call gateway_lazy_near() when its turn is
   * within `lead_ms`.  At HELLO it asks with identify_request() as any
   * shard, keeping its place.  Returns 0 when the queue cannot say (the
   * shard connects now and asks at HELLO).  May be NULL: the same. */
  int (*identify_early)(void *owner, struct dgw_gateway *gw, uint32_t lead_ms);
};

/* Creates a shard from `cfg` (copied), idle, reporting to `ops` (static,
 * borrowed) with `owner`.  NULL without memory. */
struct dgw_gateway *gateway_new(const struct shard_config *cfg,
                                const struct shard_owner_ops *ops, void *owner);

/* Drops the connection at once and frees the shard; no callbacks. */
void gateway_free(struct dgw_gateway *gw);

/* The `owner` given to gateway_new(). */
void *gateway_owner(const struct dgw_gateway *gw);

/* The gateway URL learnt after gateway_new() (GET /gateway/bot), copied.
 * DGW_OK or DGW_ERR_NOMEM (the old URL stays). */
int gateway_set_url(struct dgw_gateway *gw, const char *url);

/* Starts the first connection. */
void gateway_start(struct dgw_gateway *gw);

/* Sends (or queues, under the rate limit) one command payload; `done`
 * as for dgw_sender_command().  DGW_ERR_STATE when closed or fatal. */
int gateway_command(struct dgw_gateway *gw, const char *json, size_t len,
                    dgw_send_done_fn done, void *user_data);

/* gateway_command() with the application's completion (gateway_send.c):
 * `fn` (may be NULL) gets the shard, the outcome and `user_data` exactly
 * once when DGW_OK is returned, never otherwise.  Brackets the call with
 * the owner's guard, so `fn` may free the owner when the command goes out
 * at once. */
int gateway_command_cb(struct dgw_gateway *gw, const char *json, size_t len,
                       dgw_sent_fn fn, void *user_data);

/* For dgw_client_free(): completes every queued command with `outcome`
 * (their callbacks run now) and refuses every later command. */
void gateway_drop_commands(struct dgw_gateway *gw,
                           enum dgw_send_outcome outcome);

/* The bot's user id from the last READY, or NULL.  Borrowed until the
 * next READY. */
const char *gateway_self_id(const struct dgw_gateway *gw);

/* The shard's counters the owner bumps too (dispatches by name, closes by
 * code, identify waits, the last event's time); see stats.h. */
struct stats_shard *gateway_obs(struct dgw_gateway *gw);

/* Closes with 4000 (resumable) and keeps the session in memory, for a
 * restart that saves sessions.  DGW_ERR_STATE when already closed. */
int gateway_close_keep_session(struct dgw_gateway *gw);

/* Before start: the shard will RESUME `session_id` at `seq` (on
 * `resume_url`, may be NULL) instead of identifying.  Checked like READY's
 * fields: DGW_ERR_INVALID_ARGUMENT when malformed or not idle. */
int gateway_restore_session(struct dgw_gateway *gw, const char *session_id,
                            int64_t seq, const char *resume_url);

/* The owner is offline: stop waiting for a reconnect of our own (the
 * state stays OFFLINE) until gateway_relaunch(). */
void gateway_park(struct dgw_gateway *gw);

/* The network is back: a parked (or waiting) shard reconnects now. */
void gateway_relaunch(struct dgw_gateway *gw);

/* The identify queue allows this shard to IDENTIFY: it does so from its
 * own loop callback. */
void gateway_grant_identify(struct dgw_gateway *gw);

/* The owner's pacing lets this shard start the connection it asked for
 * (connect_request said 0): it does so from its own timer in `delay_ms`.
 * Runs no callbacks.  Returns 1 when it will, 0 when the shard no longer
 * waits for one (closed, terminated, already connecting meanwhile): the
 * owner's slot is then free. */
int gateway_grant_connect(struct dgw_gateway *gw, uint32_t delay_ms);

/* Lazy connect: the identify turn of a shard waiting in line without a
 * connection is near: it connects from its own loop callback.  Runs no
 * callbacks; a shard that no longer waits ignores it. */
void gateway_lazy_near(struct dgw_gateway *gw);

/* The owner allows this shard to IDENTIFY now. */
void gateway_identify_now(struct dgw_gateway *gw);

/*
 * Holds the shard's reading back (gateway_hold.c), for a consumer that
 * cannot keep up (a plugin whose broker is slow or gone).  Holds count:
 * the shard reads again when every gateway_hold() had its
 * gateway_release().  While held no dispatch is delivered (not even one
 * already read), the socket is not read, and missed heartbeat ACKs are no
 * zombie; a hold longer than one heartbeat interval closes the connection
 * keeping the session (close 4000, as for op 7), and the shard does not
 * reconnect until released; then it RESUMEs and the gateway replays.
 * Safe inside the shard's callbacks (the dispatch that holds it was
 * delivered).  Returns DGW_OK, or DGW_ERR_STATE for release without hold.
 */
int gateway_hold(struct dgw_gateway *gw);
int gateway_release(struct dgw_gateway *gw);

/* The number of holds on the shard (0: it reads). */
uint32_t gateway_holds(const struct dgw_gateway *gw);

#endif /* DGW_GATEWAY_H */
