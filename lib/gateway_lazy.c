/*
 * Lazy connect (issue 17, item 3): a shard with no session to resume does
 * not open its connection until its identify turn is near.  It joins the
 * identify queue first (the queue's optional early()), waits without a
 * socket, and connects when the queue says its grant is expected within
 * the lead (dgw_options_set_lazy_connect()).  At HELLO it asks the queue
 * as any shard does and keeps its place in line; the queue grants it
 * nothing before that, so IDENTIFY still goes out only on a grant, at
 * HELLO or later.  A connection lost on the way leaves the line (lost()
 * cancels, gateway.c).  A shard with a session RESUMEs and connects at
 * once; a queue without early() (the shared Redis one) keeps the old
 * way: connect, then ask at HELLO.
 */
#include "config.h"

#include <event2/event.h>

#include <dgw/dgw.h>

#include "gateway.h"
#include "gateway_internal.h"
#include "session.h"

/* Its turn is near: connect from the loop, through the pacer like any
 * attempt (with many buckets many wake at once).  A shard that got a
 * connection meanwhile (terminate, or it woke inside early()) or was
 * closed does nothing more. */
static void wake_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_gateway *gw = arg;

  (void)fd;
  (void)what;
  shard_enter(gw);
  if (gw->lazy == SHARD_LAZY_WOKEN && gw->ws == NULL && gw->pacing == 0 &&
      (gw->state == DGW_STATE_IDLE || gw->state == DGW_STATE_BACKOFF ||
       gw->state == DGW_STATE_OFFLINE)) {
    shard_log(gw, DGW_LOG_DEBUG, "shard %u: identify turn near: connecting",
              gw->cfg.shard_id);
    evtimer_del(gw->timer);
    shard_connect_paced(gw);
  }
  shard_leave(gw);
}

int shard_lazy_wait(struct dgw_gateway *gw) {
  if (gw->lazy == SHARD_LAZY_WAITING)
    return 1; /* in line already: a relaunch changes nothing */
  if (gw->lazy != SHARD_LAZY_NONE)
    return 0; /* its turn is near */
  if (gw->cfg.lazy_lead_ms == 0 || dgw_session_resumable(gw->session) ||
      gw->ops->identify_early == NULL)
    return 0;
  if (gw->lazy_ev == NULL &&
      (gw->lazy_ev = event_new(gw->cfg.base, -1, 0, wake_cb, gw)) == NULL)
    return 0;
  gw->lazy = SHARD_LAZY_WAITING;
  if (!gw->ops->identify_early(gw->owner, gw, gw->cfg.lazy_lead_ms)) {
    gw->lazy = SHARD_LAZY_NONE; /* the queue cannot say: connect now */
    return 0;
  }
  if (gw->lazy != SHARD_LAZY_WAITING)
    return 0; /* its turn is now: connect at once, as before */
  shard_log(gw, DGW_LOG_DEBUG,
            "shard %u: waiting for its identify turn before connecting",
            gw->cfg.shard_id);
  return 1;
}

void gateway_lazy_near(struct dgw_gateway *gw) {
  if (gw->lazy != SHARD_LAZY_WAITING)
    return;
  gw->lazy = SHARD_LAZY_WOKEN;
  event_active(gw->lazy_ev, EV_TIMEOUT, 0);
}

void shard_lazy_reset(struct dgw_gateway *gw) {
  gw->lazy = SHARD_LAZY_NONE;
}
