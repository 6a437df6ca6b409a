/*
 * Holding a shard's reading back (issue 13): a consumer above that cannot
 * keep up (the redis-streams plugin while Redis is slow or gone) holds the
 * shard; no further dispatch is delivered and the socket is not read, so
 * the kernel's buffers and TCP flow control hold the rest, as with a slow
 * handler.  A held shard cannot read its heartbeat ACKs: that is no
 * zombie while the hold is short, and past one heartbeat interval the
 * connection is left keeping the session (close 4000); the shard then
 * waits without reconnecting until released, and RESUMEs, so the gateway
 * replays what was never read.  The engine calls in here from kokoro's
 * zombie callback and from its timer (gateway.c).
 */
#include "config.h"

#include <event2/event.h>

#include <dgw/dgw.h>

#include "clock.h"
#include "gateway.h"
#include "gateway_internal.h"
#include "kokoro.h"
#include "ws.h"

/* The limit of a hold when no heartbeat interval is known yet. */
#define HOLD_DEFAULT_LIMIT_MS 41250u

static int connected(const struct dgw_gateway *gw) {
  return gw->ws != NULL && gw->state != DGW_STATE_CONNECTING &&
         gw->state != DGW_STATE_HELLO;
}

int gateway_hold(struct dgw_gateway *gw) {
  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (gw->holds++ > 0)
    return DGW_OK;
  gw->held_since_ns = dgw_monotonic_ns();
  gw->hold_stopped_heart = 0;
  gw->hold_limit_armed = 0;
  dgw_ws_pause(gw->ws, 1);
  shard_log(gw, DGW_LOG_INFO, "shard %u: reading held back", gw->cfg.shard_id);
  return DGW_OK;
}

int gateway_release(struct dgw_gateway *gw) {
  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (gw->holds == 0)
    return DGW_ERR_STATE;
  if (--gw->holds > 0)
    return DGW_OK;
  shard_log(gw, DGW_LOG_INFO, "shard %u: reading released after %llu ms",
            gw->cfg.shard_id,
            (unsigned long long)((dgw_monotonic_ns() - gw->held_since_ns) /
                                 1000000u));
  if (gw->hold_limit_armed && connected(gw))
    evtimer_del(gw->timer);
  gw->hold_limit_armed = 0;
  dgw_ws_pause(gw->ws, 0);
  if (gw->hold_stopped_heart && connected(gw)) {
    uint32_t interval = dgw_kokoro_interval_ms(gw->kokoro);

    /* A beat at once: its ACK comes behind what waits on the socket. */
    dgw_kokoro_start(gw->kokoro, interval, 0.0);
  }
  gw->hold_stopped_heart = 0;
  if ((gw->state == DGW_STATE_BACKOFF || gw->state == DGW_STATE_OFFLINE) &&
      gw->ws == NULL && gw->pacing == 0 && !evtimer_pending(gw->timer, NULL)) {
    /* The wait ended while held: reconnect from the loop (timer_cb, in
     * the owner's guard), not inside the caller's callback. */
    struct timeval now = {0, 0};

    evtimer_add(gw->timer, &now);
  }
  return DGW_OK;
}

uint32_t gateway_holds(const struct dgw_gateway *gw) {
  return gw != NULL ? gw->holds : 0;
}

int shard_hold_zombie(struct dgw_gateway *gw) {
  uint32_t limit, held_ms;
  struct timeval tv;

  if (!shard_held(gw))
    return 0;
  /* The ACK may well be waiting unread: not a zombie.  Not revived either
   * (nothing was read): the heart stops until the release. */
  (void)dgw_kokoro_revive(gw->kokoro);
  gw->hold_stopped_heart = 1;
  limit = dgw_kokoro_interval_ms(gw->kokoro);
  if (limit == 0)
    limit = HOLD_DEFAULT_LIMIT_MS;
  held_ms = (uint32_t)((dgw_monotonic_ns() - gw->held_since_ns) / 1000000u);
  tv = dgw_timeval_ms(held_ms < limit ? limit - held_ms : 0);
  evtimer_del(gw->timer);
  evtimer_add(gw->timer, &tv);
  gw->hold_limit_armed = 1;
  shard_log(gw, DGW_LOG_INFO,
            "shard %u: held back %u ms, heartbeat ACK unread: leaving the "
            "connection in %u ms unless released",
            gw->cfg.shard_id, (unsigned)held_ms,
            (unsigned)(held_ms < limit ? limit - held_ms : 0));
  return 1;
}

void shard_hold_timer(struct dgw_gateway *gw) {
  if (!connected(gw)) /* waiting to reconnect: not while held */
    return;
  gw->hold_limit_armed = 0;
  shard_log(gw, DGW_LOG_WARN,
            "shard %u: held back longer than the heartbeat interval: leaving "
            "the connection, keeping the session until released",
            gw->cfg.shard_id);
  shard_leave_and_resume(gw, DGW_ERR_TIMEOUT,
                         "held back longer than the heartbeat interval");
}
