/*
 * A managed client: its owner (the cluster) takes and releases shards one
 * at a time, and fences every write.  See client_shards.h.
 *
 * A release closes the shard with 4000 (its session stays resumable) and
 * waits for CLOSED: events of the closing connection are still delivered
 * until then, so the seq handed back is the last one this process saw and
 * the next holder's RESUME replays exactly what came after it.  The report
 * goes out from a timer of its own, outside any shard frame, and the
 * closed shard is swapped for a fresh idle one first.
 */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <dgw/dgw.h>

#include "client.h"
#include "client_shards.h"
#include "gateway.h"

struct slot {
  struct dgw_client *c;
  uint32_t index;
  int taken;     /* taken and not released or dropped */
  int releasing; /* a release waits for CLOSED or its report */
  int fenced;    /* an event was withheld since the last take (logged) */
  client_released_fn done;
  void *done_data;
  struct event *report;    /* the release's report, from the loop */
  struct dgw_gateway *old; /* the closed shard, swapped out on CLOSED */
};

struct client_shards {
  client_fence_fn fence;
  void *fence_data;
  struct slot *slots; /* one per shard once their count is known */
  uint32_t nslots;
};

int client_shards_manage(struct dgw_client *c, client_fence_fn fence,
                         void *fence_data) {
  if (c->started)
    return DGW_ERR_STATE;
  if (c->managed == NULL &&
      (c->managed = calloc(1, sizeof(*c->managed))) == NULL)
    return DGW_ERR_NOMEM;
  c->managed->fence = fence;
  c->managed->fence_data = fence_data;
  return DGW_OK;
}

int client_shards_managed(const struct dgw_client *c) {
  return c->managed != NULL;
}

int client_shards_ready(const struct dgw_client *c) {
  return c->managed != NULL && c->started && !client_rest_pending(c) &&
         !client_dying(c);
}

void client_shards_free(struct dgw_client *c) {
  struct client_shards *m = c->managed;

  if (m == NULL)
    return;
  for (uint32_t i = 0; i < m->nslots; i++) {
    if (m->slots[i].report != NULL)
      event_free(m->slots[i].report);
    if (m->slots[i].old != NULL)
      client_retire_shard(c, i, m->slots[i].old);
  }
  free(m->slots);
  free(m);
  c->managed = NULL;
}

int client_shards_may_send(void *data, const struct dgw_gateway *gw) {
  struct dgw_client *c = data;

  if (c->managed == NULL || c->managed->fence == NULL)
    return 1;
  return c->managed->fence(c->managed->fence_data, dgw_gateway_shard_id(gw));
}

int client_shards_may_deliver(struct dgw_client *c,
                              const struct dgw_gateway *gw) {
  struct client_shards *m = c->managed;
  uint32_t id = dgw_gateway_shard_id(gw);
  uint32_t i = id - c->opt.shard_first;

  if (m == NULL || m->fence == NULL || m->fence(m->fence_data, id))
    return 1;
  if (i < m->nslots && !m->slots[i].fenced) {
    m->slots[i].fenced = 1;
    client_log(c, DGW_LOG_WARN,
               "shard %u: lease lost; events read after it are not "
               "delivered",
               (unsigned)id);
  }
  return 0;
}

static void report_cb(evutil_socket_t fd, short what, void *arg);

/* The slot of shard `shard_id`, made with the others on first use; NULL
 * for a shard the client does not have (or without memory). */
static struct slot *slot_of(struct dgw_client *c, uint32_t shard_id) {
  struct client_shards *m = c->managed;
  uint32_t i = shard_id - c->opt.shard_first;
  struct slot *s;

  if (m == NULL || shard_id < c->opt.shard_first || i >= c->nshards)
    return NULL;
  if (m->nslots != c->nshards) {
    if (m->nslots != 0)
      return NULL; /* the shard count never changes once known */
    if ((m->slots = calloc(c->nshards, sizeof(*m->slots))) == NULL)
      return NULL;
    m->nslots = c->nshards;
    for (uint32_t k = 0; k < m->nslots; k++) {
      m->slots[k].c = c;
      m->slots[k].index = k;
    }
  }
  s = &m->slots[i];
  if (s->report == NULL &&
      (s->report = evtimer_new(c->base, report_cb, s)) == NULL)
    return NULL;
  return s;
}

int client_shard_taken(const struct dgw_client *c, uint32_t shard_id) {
  const struct client_shards *m = c->managed;
  uint32_t i = shard_id - c->opt.shard_first;

  if (m == NULL || shard_id < c->opt.shard_first || i >= m->nslots)
    return 0;
  return m->slots[i].taken || m->slots[i].releasing;
}

int client_shard_take(struct dgw_client *c, uint32_t shard_id,
                      const struct client_shard_session *ss) {
  struct slot *s;
  struct dgw_gateway *gw;
  int rv;

  if (!client_shards_ready(c) || dgw_guard_inside(&c->guard))
    return DGW_ERR_STATE;
  if ((s = slot_of(c, shard_id)) == NULL)
    return shard_id - c->opt.shard_first < c->nshards
               ? DGW_ERR_NOMEM
               : DGW_ERR_INVALID_ARGUMENT;
  if (s->taken || s->releasing)
    return DGW_ERR_STATE;
  if (dgw_gateway_state(c->shards[s->index]) != DGW_STATE_IDLE &&
      (rv = client_replace_shard(c, s->index)) != DGW_OK)
    return rv;
  gw = c->shards[s->index];
  if (ss != NULL && ss->session_id != NULL) {
    if (gateway_restore_session(gw, ss->session_id, ss->seq, ss->resume_url) ==
        DGW_OK)
      client_log(c, DGW_LOG_INFO,
                 "shard %u: taken; resuming session %s at %lld",
                 (unsigned)shard_id, ss->session_id, (long long)ss->seq);
    else
      client_log(c, DGW_LOG_WARN,
                 "shard %u: taken; its stored session is malformed, "
                 "identifying",
                 (unsigned)shard_id);
  } else {
    client_log(c, DGW_LOG_INFO,
               "shard %u: taken; no stored session, identifying",
               (unsigned)shard_id);
  }
  s->taken = 1;
  s->fenced = 0;
  client_enter(c);
  gateway_start(gw);
  if (client_leave(c))
    return DGW_ERR_STATE; /* the application freed the client */
  return DGW_OK;
}

/* The release is complete (CLOSED, or never running): report from the
 * loop. */
static void arm_report(struct slot *s) {
  struct timeval now = {0, 0};

  evtimer_add(s->report, &now);
}

static void report_cb(evutil_socket_t fd, short what, void *arg) {
  struct slot *s = arg;
  struct dgw_client *c = s->c;
  struct dgw_gateway *gw = s->old != NULL ? s->old : c->shards[s->index];
  struct client_shard_session ss;
  client_released_fn done = s->done;
  void *done_data = s->done_data;
  char *id = NULL;
  char *url = NULL;
  uint32_t shard_id = dgw_gateway_shard_id(gw);
  int gone;

  (void)fd;
  (void)what;
  if (dgw_gateway_session_id(gw) != NULL)
    id = strdup(dgw_gateway_session_id(gw));
  if (dgw_gateway_resume_url(gw) != NULL)
    url = strdup(dgw_gateway_resume_url(gw));
  ss.session_id = id;
  ss.seq = dgw_gateway_sequence(gw);
  ss.resume_url = url;
  s->releasing = 0;
  s->taken = 0;
  s->done = NULL;
  client_log(c, DGW_LOG_INFO, "shard %u: released (session %s, seq %lld)",
             (unsigned)shard_id, id != NULL ? id : "none", (long long)ss.seq);
  client_enter(c);
  if (s->old != NULL) {
    client_retire_shard(c, s->index, s->old); /* swapped out on CLOSED */
    s->old = NULL;
  } else if (dgw_gateway_state(gw) != DGW_STATE_IDLE && !client_dying(c)) {
    struct dgw_gateway *old = client_swap_shard(c, s->index);

    if (old != NULL)
      client_retire_shard(c, s->index, old);
  }
  if (done != NULL && !client_dying(c))
    done(c, shard_id, &ss, done_data);
  free(id);
  free(url);
  gone = client_leave(c);
  (void)gone;
}

int client_shard_release(struct dgw_client *c, uint32_t shard_id,
                         client_released_fn done, void *user_data) {
  struct slot *s;
  struct dgw_gateway *gw;
  enum dgw_state st;

  if (c->managed == NULL)
    return DGW_ERR_STATE;
  if ((s = slot_of(c, shard_id)) == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (s->releasing)
    return DGW_ERR_STATE;
  gw = c->shards[s->index];
  s->releasing = 1;
  s->done = done;
  s->done_data = user_data;
  st = dgw_gateway_state(gw);
  if (st == DGW_STATE_IDLE || st == DGW_STATE_CLOSED || st == DGW_STATE_FATAL) {
    arm_report(s);
    return DGW_OK;
  }
  client_enter(c);
  /* CLOSED (at once without a connection, or after the close handshake)
   * arms the report through client_shards_state(). */
  gateway_close_keep_session(gw);
  client_leave(c);
  return DGW_OK;
}

void client_shards_state(struct dgw_client *c, struct dgw_gateway *gw,
                         enum dgw_state to) {
  struct client_shards *m = c->managed;
  uint32_t i = dgw_gateway_shard_id(gw) - c->opt.shard_first;

  if (m == NULL || to != DGW_STATE_CLOSED || i >= m->nslots ||
      c->shards[i] != gw || !m->slots[i].releasing)
    return;
  /* A fresh idle shard takes its place at once, so that whoever looks at
   * the client's shards from here on (dgw run waits for all CLOSED) sees
   * one that can be taken; the closed one is kept for the report. */
  if (m->slots[i].old == NULL)
    m->slots[i].old = client_swap_shard(c, i);
  arm_report(&m->slots[i]);
}

int client_shard_drop(struct dgw_client *c, uint32_t shard_id) {
  struct slot *s;

  if (c->managed == NULL || dgw_guard_inside(&c->guard))
    return DGW_ERR_STATE;
  if ((s = slot_of(c, shard_id)) == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  evtimer_del(s->report);
  s->releasing = 0;
  s->taken = 0;
  s->done = NULL;
  if (s->old != NULL) {
    client_enter(c);
    client_retire_shard(c, s->index, s->old);
    s->old = NULL;
    if (client_leave(c))
      return DGW_ERR_STATE;
  }
  if (dgw_gateway_state(c->shards[s->index]) == DGW_STATE_IDLE)
    return DGW_OK;
  client_log(c, DGW_LOG_WARN, "shard %u: dropped at once (lease lost)",
             (unsigned)shard_id);
  return client_replace_shard(c, s->index);
}
