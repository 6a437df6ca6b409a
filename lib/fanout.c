/*
 * The client's side of its shards: the owner table every shard reports
 * to (gateway.h), and the one place an event fans out, to the request
 * tracker (member chunks, voice pairs), the application's on_dispatch and
 * the plugin router, through one lazily parsed event view.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include <json-c/json.h>

#include <dgw/dgw.h>

#include "client.h"
#include "client_shards.h"
#include "clock.h"
#include "gateway.h"
#include "pacer.h"
#include "payload.h"
#include "router.h"
#include "requests.h"
#include "stats.h"

/* dgw_event_json() of a `d` larger than this lets go of the client's
 * tokener afterwards, so one huge string does not stay allocated. */
#define TOKENER_KEEP_BYTES ((size_t)256 * 1024)

/* The view of one event handed to the application, the tracker and the
 * plugins; on the stack for the duration of the fan-out. */
struct dgw_event {
  struct dgw_client *client; /* counts parses, lends its tokener */
  const char *name;
  int64_t seq;
  uint32_t shard;
  const char *data;
  size_t data_len;
  struct json_object *json; /* parsed on first use */
  int parsed;
};

/* ------------------------------------------------------ owner table */

static void owner_enter(void *owner) {
  client_enter(owner);
}

static int owner_leave(void *owner) {
  return client_leave(owner);
}

static int owner_gone(void *owner) {
  const struct dgw_client *c = owner;

  return client_dying(c);
}

static void owner_state_changed(void *owner, struct dgw_gateway *gw,
                                enum dgw_state from, enum dgw_state to) {
  struct dgw_client *c = owner;

  /* A connection attempt holds its pacing slot until it got through
   * (READY, RESUMED; IDENTIFY waits in the identify queue instead) or
   * failed. */
  if (to != DGW_STATE_CONNECTING && to != DGW_STATE_HELLO &&
      to != DGW_STATE_RESUMING)
    dgw_pacer_release(c->pacer, gw);
  client_shards_state(c, gw, to); /* a release completes on CLOSED */
  if (c->cb.on_state != NULL && !client_dying(c))
    c->cb.on_state(gw, from, to, c->user_data);
}

static void owner_lifecycle(void *owner, struct dgw_gateway *gw,
                            enum shard_event ev,
                            const struct dgw_disconnect *info) {
  struct dgw_client *c = owner;

  switch (ev) {
  case SHARD_CONNECTING:
    if (c->cb.on_connecting != NULL && !client_dying(c))
      c->cb.on_connecting(gw, c->user_data);
    break;
  case SHARD_READY:
  case SHARD_RESUMED:
    if (ev == SHARD_READY && c->cb.on_ready != NULL && !client_dying(c))
      c->cb.on_ready(gw, c->user_data);
    if (ev == SHARD_RESUMED && c->cb.on_resumed != NULL && !client_dying(c))
      c->cb.on_resumed(gw, c->user_data);
    if (dgw_gateway_state(gw) != DGW_STATE_READY)
      return; /* closed or terminated from on_ready / on_resumed */
    plugins_lifecycle(
        c->plugins, gw,
        ev == SHARD_READY ? DGW_LIFECYCLE_READY : DGW_LIFECYCLE_RESUMED, NULL);
    break;
  case SHARD_DISCONNECTED:
    gateway_obs(gw)->closes_by_code[stats_close_slot(info->close_code)]++;
    if (c->cb.on_disconnect != NULL && !client_dying(c))
      c->cb.on_disconnect(gw, info, c->user_data);
    if (!client_dying(c))
      plugins_lifecycle(c->plugins, gw, DGW_LIFECYCLE_DISCONNECTED, info);
    break;
  case SHARD_FATAL:
    gateway_obs(gw)->closes_by_code[stats_close_slot(info->close_code)]++;
    if (c->cb.on_fatal != NULL && !client_dying(c))
      c->cb.on_fatal(gw, info->close_code,
                     dgw_close_code_name(info->close_code), c->user_data);
    if (!client_dying(c))
      plugins_lifecycle(c->plugins, gw, DGW_LIFECYCLE_FATAL, info);
    break;
  }
}

/* One event to everyone who wants it.  Nobody (no on_dispatch, handler,
 * plugin or request waiting for an answer): dropped here, right after the
 * shard's peek, never parsed. */
static void owner_dispatch(void *owner, struct dgw_gateway *gw,
                           const struct shard_dispatch *sd) {
  struct dgw_client *c = owner;
  struct dgw_requests *reqs = client_requests(c, gw);
  const struct plugin_route *route;
  struct stats_shard *obs = gateway_obs(gw);
  unsigned slot = stats_name_slot(sd->name);
  struct dgw_event ev;
  uint64_t t0 = dgw_monotonic_ns(); /* a vDSO read, no syscall */
  double us;

  /* A cluster-held shard whose lease is gone delivers nothing more. */
  if (c->managed != NULL && !client_shards_may_deliver(c, gw))
    return;
  c->stats.dispatches++;
  obs->by_name[slot]++;
  obs->last_event_ns = t0;
  route = plugins_route(c->plugins, sd->name);
  if (c->cb.on_dispatch == NULL && route == NULL &&
      (reqs == NULL || dgw_requests_pending(reqs) == 0)) {
    c->stats.dropped++;
    return;
  }
  ev.client = c;
  ev.name = sd->name;
  ev.seq = sd->seq;
  ev.shard = dgw_gateway_shard_id(gw);
  ev.data = sd->data;
  ev.data_len = sd->data_len;
  ev.json = NULL;
  ev.parsed = 0;
  if (reqs != NULL)
    dgw_requests_observe(reqs, gw, &ev, gateway_self_id(gw));
  if (c->cb.on_dispatch != NULL && !client_dying(c))
    c->cb.on_dispatch(gw, &ev, c->user_data);
  if (route != NULL && !client_dying(c))
    plugins_dispatch(c->plugins, route, gw, &ev);
  json_object_put(ev.json);
  /* The time the handlers took, by event name (the client outlives a
   * dgw_client_free() from a handler until its outermost frame). */
  us = (double)(dgw_monotonic_ns() - t0) / 1000.0;
  c->stats.handled[slot]++;
  c->stats.handler_us_sum[slot] += us;
  c->stats.handler_hist[slot][stats_bucket(stats_handler_bounds_us,
                                           DGW_STATS_HANDLER_BUCKETS, us)]++;
}

/* The identifies of `gw` so far (a rare path: the snapshot is fine). */
static uint64_t identifies_of(const struct dgw_gateway *gw) {
  struct dgw_shard_stats s;

  s.size = offsetof(struct dgw_shard_stats, identifies) + sizeof(s.identifies);
  return dgw_gateway_stats(gw, &s) == DGW_OK ? s.identifies : 0;
}

static void owner_identify_request(void *owner, struct dgw_gateway *gw) {
  struct dgw_client *c = owner;
  uint64_t before = identifies_of(gw);

  dgw_pacer_release(c->pacer, gw); /* the identify queue paces it now */
  client_request_identify(owner, gw);
  if (!client_dying(c) && identifies_of(gw) == before)
    gateway_obs(gw)->identify_waits++; /* not granted at once: it waits */
}

static int owner_identify_early(void *owner, struct dgw_gateway *gw,
                                uint32_t lead_ms) {
  return client_identify_early(owner, gw, lead_ms);
}

static void owner_identify_cancel(void *owner, struct dgw_gateway *gw) {
  client_cancel_identify(owner, gw);
}

static void owner_identify_sent(void *owner, struct dgw_gateway *gw) {
  client_identify_sent(owner, gw);
}

static int owner_network_lost(void *owner, struct dgw_gateway *gw) {
  return client_shard_offline(owner, gw);
}

static void owner_network_back(void *owner, struct dgw_gateway *gw) {
  client_shard_online(owner, gw);
}

static void owner_closed(void *owner, struct dgw_gateway *gw) {
  client_shard_closed(owner, gw);
}

static void owner_session_lost(void *owner, struct dgw_gateway *gw) {
  struct dgw_requests *reqs = client_requests(owner, gw);

  if (reqs != NULL)
    dgw_requests_fail_all(reqs, gw, DGW_ERR_SESSION_LOST);
}

static int owner_connect_request(void *owner, struct dgw_gateway *gw) {
  struct dgw_client *c = owner;

  return dgw_pacer_request(c->pacer, gw);
}

const struct shard_owner_ops client_shard_ops = {
    owner_enter,
    owner_leave,
    owner_gone,
    owner_state_changed,
    owner_lifecycle,
    owner_dispatch,
    owner_identify_request,
    owner_identify_cancel,
    owner_network_lost,
    owner_network_back,
    owner_closed,
    owner_session_lost,
    owner_connect_request,
    owner_identify_sent,
    owner_identify_early,
};

struct dgw_client *dgw_gateway_client(struct dgw_gateway *gw) {
  return gateway_owner(gw);
}

/* ------------------------------------------------------- event view */

const char *dgw_event_name(const struct dgw_event *ev) {
  return ev->name;
}

int64_t dgw_event_seq(const struct dgw_event *ev) {
  return ev->seq;
}

uint32_t dgw_event_shard(const struct dgw_event *ev) {
  return ev->shard;
}

const char *dgw_event_data(const struct dgw_event *ev, size_t *len) {
  if (len != NULL)
    *len = ev->data_len;
  return ev->data;
}

struct json_object *dgw_event_json(const struct dgw_event *event) {
  /* The view is const to handlers; the cache is ours to fill. */
  struct dgw_event *ev = (struct dgw_event *)(uintptr_t)event;

  /* One parse per event, shared by every handler after the first. */
  if (!ev->parsed) {
    struct dgw_client *c = ev->client;

    ev->parsed = 1;
    c->stats.parsed++;
    if (c->tokener == NULL)
      c->tokener = dgw_payload_tokener_new(); /* NULL: one per parse */
    ev->json = dgw_payload_parse_with(c->tokener, ev->data, ev->data_len, NULL);
    /* A huge string would keep the tokener's buffer that large. */
    if (ev->data_len > TOKENER_KEEP_BYTES && c->tokener != NULL) {
      json_tokener_free(c->tokener);
      c->tokener = NULL;
    }
  }
  return ev->json;
}
