/*
 * The shard's insides, shared by gateway.c (the engine: connection,
 * timers, the session core's actions) and gateway_api.c (the calls on a
 * shard from above: getters, commands, close, terminate, stats).  No other
 * file includes this.
 */
#ifndef DGW_GATEWAY_INTERNAL_H
#define DGW_GATEWAY_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

#include "gateway.h"
#include "kokoro.h"
#include "stats.h"

struct dgw_session;
struct dgw_ws;
struct dgw_decomp;
struct dgw_kokoro;
struct dgw_sender;
struct event;

/* Counters for dgw_gateway_stats(). */
struct shard_counters {
  uint64_t connects;
  uint64_t identifies;
  uint64_t resumes;
  uint64_t zombies;
  uint64_t dispatches;
  uint64_t window_sleeps; /* zlib windows packed while quiet */
  uint64_t window_wakes;  /* and restored for a message */
  struct stats_shard obs; /* the rest, shared with the owner (stats.h) */
};

struct dgw_gateway {
  const struct shard_owner_ops *ops;
  void *owner;
  struct shard_config cfg; /* the strings are our own copies */
  enum dgw_state state;
  struct dgw_session *session; /* id, seq, resume URL, failures */

  struct dgw_ws *ws;       /* the current connection */
  struct dgw_ws *retiring; /* a connection we left, closing quietly */
  struct dgw_decomp *z;
  struct dgw_kokoro *kokoro;
  struct event *timer;       /* reconnect wait, HELLO wait, op 9 wait */
  struct event *healthy;     /* resets the failure count */
  struct event *identify_ev; /* the identify queue's grant */
  struct dgw_sender *sender; /* rate limit and command queue */

  int opened;    /* the current connection got past the upgrade */
  int in_lost;   /* lost() is telling the owner */
  int retry_now; /* terminate() asked for an immediate reconnect */
  int pacing;    /* 1: waiting for gateway_grant_connect(); 2: granted */
  int lazy;      /* enum shard_lazy (gateway_lazy.c) */
  struct event *lazy_ev; /* lazy: connect now (made on first use) */
  char *self_id;         /* the bot's user id, from READY */
  struct shard_counters counters;
  /* Held back from above (gateway_hold.c): the number of holders, since
   * when, and whether the heart was stopped or the limit armed for it. */
  uint32_t holds;
  uint64_t held_since_ns;
  int hold_stopped_heart, hold_limit_armed;
  /* Quiet shards (gateway_quiet.c): pack the window once this message is
   * done; the window is packed now. */
  int sleep_due, window_asleep;
  void *user_data; /* the application's, per shard */
};

/* One WebSocket message of `wire` bytes in, `inflated` after zlib (0 when
 * it did not inflate to a payload yet). */
static inline void shard_count_frame(struct dgw_gateway *gw, size_t wire,
                                     size_t inflated) {
  gw->counters.obs.frames_in++;
  gw->counters.obs.bytes_wire += wire;
  gw->counters.obs.bytes_inflated += inflated;
}

/* Quiet shards (gateway_quiet.c).  At a heartbeat ACK: with no dispatch
 * for cfg.quiet_ms, the window is to be packed once the message is done. */
void shard_quiet_ack(struct dgw_gateway *gw);

/* The message is done (its payload handled): packs the window if due. */
void shard_quiet_sleep(struct dgw_gateway *gw);

/* A message with bytes arrives: a packed window is restored by the push. */
static inline void shard_quiet_wake(struct dgw_gateway *gw) {
  if (gw->window_asleep) {
    gw->window_asleep = 0;
    gw->counters.window_wakes++;
  }
}

/* A heartbeat ACK: the heart timer learns it, the histogram counts the
 * latency it measured (when it was one we asked for). */
static inline void shard_ack(struct dgw_gateway *gw) {
  if (dgw_kokoro_ack(gw->kokoro))
    stats_latency(&gw->counters.obs, dgw_kokoro_latency_ms(gw->kokoro));
  if (gw->cfg.sleeper != NULL)
    shard_quiet_ack(gw);
}

/* Logs through the config's sink when `level` passes its filter. */
void shard_log(struct dgw_gateway *gw, enum dgw_log_level level,
               const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The owner's free guard: every entry from the loop or from above brackets
 * its work with enter/leave; after leave the shard may be gone.  gone is 1
 * once the owner is being freed: call nothing more and unwind. */
void shard_enter(struct dgw_gateway *gw);
void shard_leave(struct dgw_gateway *gw);
int shard_gone(struct dgw_gateway *gw);

/* Moves to `to` and tells the owner (which may close or free us). */
void shard_set_state(struct dgw_gateway *gw, enum dgw_state to);

/* Builds "<base>/?v=10&encoding=json[&compress=zlib-stream|zstd-stream]"
 * into `out`.
 * DGW_OK, or DGW_ERR_URL when it does not fit. */
int shard_build_url(struct dgw_gateway *gw, const char *base, char *out,
                    size_t size);

/* Starts a connection now (to the URL the session core picks). */
void shard_connect_now(struct dgw_gateway *gw);

/* Starts a connection once the owner's pacing allows (at once when it
 * does now; otherwise the shard waits in its state for
 * gateway_grant_connect()). */
void shard_connect_paced(struct dgw_gateway *gw);

/* Leaves the current connection (4000, in the background), keeping the
 * session, and reports the loss. */
void shard_leave_and_resume(struct dgw_gateway *gw, int err,
                            const char *reason);

/* The shard's sender (gateway_send.c): writes on gw->ws, its drain timer
 * inside the owner's guard.  NULL with *err on failure. */
struct dgw_sender *gateway_sender_new(struct dgw_gateway *gw, int *err);

/* Lazy connect (gateway_lazy.c). */
enum shard_lazy {
  SHARD_LAZY_NONE,    /* not waiting in the identify line without a socket */
  SHARD_LAZY_WAITING, /* in line (early()), no connection yet */
  SHARD_LAZY_WOKEN,   /* its turn is near: connecting or at HELLO */
};

/* Before a connection attempt: a shard with no session to resume, lazy
 * connect on and an identify queue that can say when its turn is near
 * joins the line and waits without a socket (returns 1); 0: connect now. */
int shard_lazy_wait(struct dgw_gateway *gw);

/* The connection went away, the IDENTIFY was written, or the shard
 * closed: no longer lazy (the owner's identify_cancel leaves the line). */
void shard_lazy_reset(struct dgw_gateway *gw);

/* Holding back (gateway_hold.c).  1 while some holder holds the shard. */
static inline int shard_held(const struct dgw_gateway *gw) {
  return gw->holds > 0;
}

/* Kokoro's zombie callback while held: the ACK cannot be read, so this is
 * no zombie; the heart stops and the hold's limit (one heartbeat interval
 * from the start of the hold) is armed on gw->timer.  Returns 1 when it
 * handled the call (the shard is held), 0 to judge as usual. */
int shard_hold_zombie(struct dgw_gateway *gw);

/* gw->timer fired while held: past the limit a connected shard leaves
 * keeping its session (close 4000); a waiting one does not reconnect
 * until released. */
void shard_hold_timer(struct dgw_gateway *gw);

#endif /* DGW_GATEWAY_INTERNAL_H */
