/*
 * The calls on a shard from above: the public dgw_gateway_* getters,
 * commands, close, terminate and stats, and the owner's gateway_* calls
 * (start, park, relaunch, restore, URL).  The engine is in gateway.c.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <dgw/dgw.h>

#include "clock.h"
#include "decomp.h"
#include "gateway.h"
#include "gateway_internal.h"
#include "kokoro.h"
#include "payload.h"
#include "sender.h"
#include "session.h"
#include "ws.h"

/* Builds "<base>/?v=10&encoding=json[&compress=zlib-stream|zstd-stream]". */
int shard_build_url(struct dgw_gateway *gw, const char *base, char *out,
                    size_t size) {
  const char *q = strchr(base, '?');
  size_t n = q != NULL ? (size_t)(q - base) : strlen(base);
  const char *slash;
  int len;

  /* A resume URL from READY arrives bare; a configured one may end in a
   * path.  Either way the query is ours, so drop one that came along. */
  slash = (n > 0 && base[n - 1] == '/') ? "" : "/";
  len = snprintf(out, size, "%.*s%s?v=%d&encoding=json%s", (int)n, base, slash,
                 DGW_API_VERSION, dgw_compression_query(gw->cfg.compress));
  return len > 0 && (size_t)len < size ? DGW_OK : DGW_ERR_URL;
}

void gateway_park(struct dgw_gateway *gw) {
  if (gw->state == DGW_STATE_OFFLINE)
    evtimer_del(gw->timer);
}

void gateway_relaunch(struct dgw_gateway *gw) {
  if ((gw->state != DGW_STATE_OFFLINE && gw->state != DGW_STATE_BACKOFF) ||
      shard_held(gw))
    return; /* held: gateway_release() reconnects */
  evtimer_del(gw->timer);
  dgw_session_healthy(gw->session); /* the network was the problem */
  /* Every parked shard comes back at once: paced. */
  shard_connect_paced(gw);
}

void dgw_gateway_set_user_data(struct dgw_gateway *gw, void *user_data) {
  if (gw != NULL)
    gw->user_data = user_data;
}

void *dgw_gateway_user_data(const struct dgw_gateway *gw) {
  return gw != NULL ? gw->user_data : NULL;
}

void *gateway_owner(const struct dgw_gateway *gw) {
  return gw->owner;
}

int gateway_set_url(struct dgw_gateway *gw, const char *url) {
  char *copy = NULL;

  if (url != NULL && (copy = strdup(url)) == NULL)
    return DGW_ERR_NOMEM;
  free((char *)(uintptr_t)gw->cfg.gateway_url);
  gw->cfg.gateway_url = copy;
  return DGW_OK;
}

const char *gateway_self_id(const struct dgw_gateway *gw) {
  return gw->self_id;
}

int gateway_command(struct dgw_gateway *gw, const char *json, size_t len,
                    dgw_send_done_fn done, void *user_data) {
  int rv;

  if (json == NULL || len == 0)
    return DGW_ERR_INVALID_ARGUMENT;
  if (gw->state == DGW_STATE_CLOSED || gw->state == DGW_STATE_CLOSING ||
      gw->state == DGW_STATE_FATAL)
    return DGW_ERR_STATE;
  rv = dgw_sender_command(gw->sender, json, len, done, user_data);
  if (rv == DGW_OK && dgw_sender_queued(gw->sender) > 0)
    gw->counters.obs.rate_limit_waits++; /* it waits behind the limit */
  return rv;
}

struct stats_shard *gateway_obs(struct dgw_gateway *gw) {
  return &gw->counters.obs;
}

size_t dgw_gateway_queued(const struct dgw_gateway *gw) {
  return dgw_sender_queued(gw->sender);
}

/* Fills a whole snapshot, then copies as much of it as the caller's struct
 * holds: it may come from an older (shorter) header. */
int dgw_gateway_stats(const struct dgw_gateway *gw,
                      struct dgw_shard_stats *out) {
  struct dgw_shard_stats full;
  size_t size;

  if (gw == NULL || out == NULL || out->size < sizeof(size_t))
    return DGW_ERR_INVALID_ARGUMENT;
  size = out->size < sizeof(full) ? out->size : sizeof(full);
  memset(&full, 0, sizeof(full));
  full.size = out->size;
  full.shard_id = gw->cfg.shard_id;
  full.state = gw->state;
  full.dispatches = gw->counters.dispatches;
  full.reconnects = gw->counters.connects > 0 ? gw->counters.connects - 1 : 0;
  full.resumes = gw->counters.resumes;
  full.identifies = gw->counters.identifies;
  full.zombies = gw->counters.zombies;
  full.latency_ms = dgw_gateway_latency(gw);
  full.commands_queued = dgw_sender_queued(gw->sender);
  full.window_sleeps = gw->counters.window_sleeps;
  full.window_wakes = gw->counters.window_wakes;
  full.window_asleep = dgw_decomp_asleep(gw->z) ? 1u : 0u;
  full.window_saved_bytes = dgw_decomp_saved_bytes(gw->z);
  stats_fill_shard(&full, &gw->counters.obs, dgw_monotonic_ns());
  memcpy(out, &full, size);
  return DGW_OK;
}

void gateway_start(struct dgw_gateway *gw) {
  if (gw->state == DGW_STATE_IDLE)
    shard_connect_paced(gw); /* a mass start is paced like a mass resume */
}

const char *dgw_state_name(enum dgw_state state) {
  static const char *const names[] = {
      "idle",    "connecting", "hello",   "identifying", "resuming", "ready",
      "backoff", "offline",    "closing", "closed",      "fatal",
  };

  if ((unsigned)state < sizeof(names) / sizeof(names[0]))
    return names[state];
  return "?";
}

enum dgw_state dgw_gateway_state(const struct dgw_gateway *gw) {
  return gw->state;
}

uint32_t dgw_gateway_shard_id(const struct dgw_gateway *gw) {
  return gw->cfg.shard_id;
}

int64_t dgw_gateway_sequence(const struct dgw_gateway *gw) {
  return dgw_session_seq(gw->session);
}

const char *dgw_gateway_session_id(const struct dgw_gateway *gw) {
  return dgw_session_id(gw->session);
}

const char *dgw_gateway_resume_url(const struct dgw_gateway *gw) {
  return dgw_session_resume_url(gw->session);
}

double dgw_gateway_latency(const struct dgw_gateway *gw) {
  double ms = dgw_kokoro_latency_ms(gw->kokoro);

  return ms < 0 ? DGW_LATENCY_UNKNOWN : ms;
}

int dgw_gateway_send_json(struct dgw_gateway *gw, const char *json,
                          size_t len) {
  struct dgw_envelope env;

  if (gw == NULL || json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (len > DGW_PAYLOAD_MAX_SEND)
    return DGW_ERR_PAYLOAD_TOO_LARGE;
  if (dgw_envelope_peek(json, len, &env) != DGW_OK)
    return DGW_ERR_JSON;
  return gateway_command(gw, json, len, NULL, NULL);
}

/* Ends the shard's connection for good.  With `keep_session` the close
 * code is 4000, which Discord leaves resumable, and the session stays in
 * memory for dgw_client_save_sessions(); otherwise 1000 ends it. */
static int close_shard(struct dgw_gateway *gw, int keep_session) {
  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (gw->state == DGW_STATE_CLOSED || gw->state == DGW_STATE_CLOSING)
    return DGW_ERR_STATE;
  shard_enter(gw);
  evtimer_del(gw->timer);
  evtimer_del(gw->healthy);
  dgw_kokoro_stop(gw->kokoro);
  gw->ops->identify_cancel(gw->owner, gw);
  shard_lazy_reset(gw);
  gw->ops->closed(gw->owner, gw);
  /* Code 1000 ends the session on Discord's side too. */
  if (!keep_session)
    dgw_session_forget(gw->session);
  dgw_sender_set_ready(gw->sender, 0);
  dgw_sender_fail_all(gw->sender,
                      keep_session ? DGW_SEND_RESTART : DGW_SEND_CLOSED);
  gw->ops->session_lost(gw->owner, gw);
  if (gw->ws != NULL && dgw_ws_is_open(gw->ws) &&
      dgw_ws_close(gw->ws, keep_session ? DGW_SESSION_RECONNECT_CODE : 1000,
                   keep_session ? "dgw: restarting" : "dgw: closing") ==
          DGW_OK) {
    shard_set_state(gw, DGW_STATE_CLOSING);
  } else {
    dgw_ws_free(gw->ws);
    gw->ws = NULL;
    shard_set_state(gw, DGW_STATE_CLOSED);
  }
  shard_leave(gw);
  return DGW_OK;
}

int dgw_gateway_close(struct dgw_gateway *gw) {
  return close_shard(gw, 0);
}

int gateway_close_keep_session(struct dgw_gateway *gw) {
  return close_shard(gw, 1);
}

int gateway_restore_session(struct dgw_gateway *gw, const char *session_id,
                            int64_t seq, const char *resume_url) {
  if (gw->state != DGW_STATE_IDLE)
    return DGW_ERR_INVALID_ARGUMENT;
  return dgw_session_restore(gw->session, session_id, seq, resume_url,
                             gw->cfg.gateway_url);
}

int dgw_gateway_terminate(struct dgw_gateway *gw) {
  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (gw->state == DGW_STATE_CLOSED || gw->state == DGW_STATE_CLOSING ||
      gw->state == DGW_STATE_FATAL || gw->state == DGW_STATE_IDLE)
    return DGW_ERR_STATE;
  shard_enter(gw);
  if (gw->in_lost) {
    gw->retry_now = 1; /* from on_disconnect: lost() reconnects at once */
  } else if (gw->ws == NULL && (gw->state == DGW_STATE_BACKOFF ||
                                gw->state == DGW_STATE_OFFLINE)) {
    evtimer_del(gw->timer); /* waiting: skip the rest of the wait */
    shard_connect_now(gw);
  } else {
    shard_leave_and_resume(gw, DGW_OK, "terminated by the application");
  }
  shard_leave(gw);
  return DGW_OK;
}
