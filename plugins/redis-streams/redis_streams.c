/*
 * redis-streams: XADDs each wanted DISPATCH event to a Redis stream, on
 * the client's own loop (hiredis's libevent adapter, no threads):
 *
 *   XADD dgw:{NAME}:events MAXLEN ~ 1000000 * t MESSAGE_CREATE s 42
 *        shard 0 session SESSION_ID d <the raw bytes of d>
 *
 * `d` is the exact bytes the gateway sent (never parsed or re-encoded).
 * The command is written in RESP by the plugin (resp.c) into the entry
 * it keeps until Redis answered (pipeline.c), and handed to hiredis as it
 * is: `d` is copied once there, once into hiredis's output buffer.
 * Config (docs/redis.md, "The redis-streams plugin"):
 *
 *   {"redis": "redis://HOST:PORT/DB" or "unix:///path",  required
 *    "name": "mybot",                the keys' hash tag; default "dgw"
 *    "layout": "single",             or "per-event": ...:events:{T}
 *    "events": ["MESSAGE_CREATE"],   default: every event
 *    "maxlen": 1000000,              approximate trimming; 0: none
 *    "max_pending": 1000,            XADDs in flight at most
 *    "max_buffer_bytes": 67108864}   bytes held at most: shards pause
 *
 * Delivery without the cluster is at-least-once: an XADD whose connection
 * dropped before its reply is sent again, so a consumer deduplicates on
 * (session, s).  Nothing is dropped for want of room: when the bytes held
 * for Redis (in flight or waiting) reach 3/4 of max_buffer_bytes, every
 * shard is paused (host->gateway_pause: it reads no more; the kernel's
 * buffers hold the rest; a pause longer than a heartbeat interval closes
 * the connection keeping the session, and Discord replays on RESUME), and
 * released when they are back under 1/4.  Each pause is logged and
 * counted.
 *
 * With the cluster on (host->cluster_name), delivery is exactly-once: each
 * entry goes through one Lua script (EVAL, below) that checks the shard's
 * lease is still this member's with the token the event was delivered
 * under, skips it when dgw:{NAME}:stored:N already holds its (session, s)
 * or a later s of that session, and otherwise XADDs it and stores
 * (session, s), in one step.  A member that takes the shard over resumes
 * no later than that position (lib/cluster.c), so a kill -9 loses nothing
 * and repeats nothing in the stream (docs/cluster.md).
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <dgw/plugin.h>

#include "commands.h"
#include "redis.h"
#include "redis_streams.h"
#include "why.h"

#define DEFAULT_MAXLEN 1000000
#define DEFAULT_MAX_PENDING 1000
#define DEFAULT_MAX_BUFFER (64u * 1024 * 1024)

/* The plugin's own copy of lib/redis_url.c needs this one helper. */
void dgw_set_why(char *why, size_t why_size, const char *fmt, ...) {
  va_list ap;

  if (why == NULL || why_size == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(why, why_size, fmt, ap);
  va_end(ap);
}

static void on_up(struct dgw_redis *r, void *ud) {
  struct streams *st = ud;

  (void)r;
  if (st->drop_logged || st->head != NULL)
    st->host->log(st->host, DGW_LOG_INFO,
                  "Redis is up: sending %zu buffered bytes", st->buffered);
  st->drop_logged = 0;
  pipeline_flush(st);
}

static void on_down(struct dgw_redis *r, const char *cause, void *ud) {
  struct streams *st = ud;

  (void)r;
  st->host->log(st->host, DGW_LOG_WARN,
                "Redis down (%s): holding events, up to %zu bytes", cause,
                st->max_buffer);
}

static void remember_session(struct streams *st, uint32_t shard,
                             const struct dgw_event *ev) {
  const struct dgw_plugin_host *h = st->host;
  size_t len, n_out;
  const char *d = h->event_data(ev, &len);

  if (shard >= st->nsessions) {
    uint32_t n = shard + 1;
    char(*grown)[80] = realloc(st->sessions, n * sizeof(*st->sessions));

    if (grown == NULL)
      return;
    memset(grown + st->nsessions, 0,
           (n - st->nsessions) * sizeof(*st->sessions));
    st->sessions = grown;
    st->nsessions = n;
  }
  if (!DGW_PLUGIN_HOST_HAS(h, field_string) ||
      h->field_string(d, len, "/session_id", st->sessions[shard],
                      sizeof(st->sessions[shard]), &n_out) != DGW_OK)
    st->sessions[shard][0] = '\0';
}

static void on_dispatch(void *state, struct dgw_gateway *gw,
                        const struct dgw_event *ev) {
  struct streams *st = state;
  const struct dgw_plugin_host *h = st->host;
  const char *t = h->event_name(ev);
  uint32_t shard = h->event_shard(ev);
  size_t dlen;
  const char *d = h->event_data(ev, &dlen);
  const char *session = NULL;
  int only_position = 0;

  if (strcmp(t, "READY") == 0) {
    remember_session(st, shard, ev);
    /* Unwanted, it still moves the position to the new session. */
    only_position = !st->want_ready;
  }
  if (DGW_PLUGIN_HOST_HAS(h, gateway_session_id) && gw != NULL)
    session = h->gateway_session_id(gw);
  if (session == NULL)
    session = shard < st->nsessions ? st->sessions[shard] : "";
  pipeline_store(st, shard, t, h->event_seq(ev), session, d, dlen,
                 only_position);
}

/* Every second (exactly-once only): a shard whose events went by unwanted
 * (an "events" list) and that has nothing queued here has its position
 * moved to the seq it delivered, so that a takeover does not resume from
 * the last wanted event (a long replay, or a new session past Discord's
 * replay window).  Everything up to that seq that was wanted is stored:
 * delivery to on_dispatch is synchronous and nothing of the shard waits. */
static void advance(void *arg) {
  struct streams *st = arg;
  const struct dgw_plugin_host *h = st->host;
  uint32_t count = h->shard_count(h);
  char member[128];
  uint64_t token;

  for (uint32_t i = 0; i < count && !st->closing; i++) {
    struct dgw_gateway *gw = h->gateway_at(h, i);
    uint32_t shard;
    const char *sid;
    int64_t seq;

    if (gw == NULL)
      continue;
    shard = h->gateway_shard_id(gw);
    sid = h->gateway_session_id(gw);
    seq = h->gateway_sequence(gw);
    if (sid == NULL || seq <= 0 || pipeline_grow(st, shard) != 0 ||
        st->shards[shard].pending > 0 ||
        (seq <= st->shards[shard].posted &&
         strcmp(sid, st->shards[shard].sid) == 0) ||
        h->cluster_lease(h, shard, member, sizeof(member), &token) != DGW_OK)
      continue;
    pipeline_store(st, shard, "", seq, sid, "", 0, 1);
  }
}

/* Reads an integer config item in [lo, hi]; 0 (absent is fine) or -1. */
static int get_int(const struct dgw_plugin_host *h, struct json_object *cfg,
                   const char *k, long long lo, long long hi, long long *out) {
  struct json_object *v;

  if (!json_object_object_get_ex(cfg, k, &v))
    return 0;
  if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < lo ||
      json_object_get_int64(v) > hi) {
    h->log(h, DGW_LOG_ERROR,
           "config: \"%s\" must be an integer from %lld to "
           "%lld",
           k, lo, hi);
    return -1;
  }
  *out = json_object_get_int64(v);
  return 0;
}

static int configure(struct streams *st, const char *config_json,
                     const char **url) {
  const struct dgw_plugin_host *h = st->host;
  static const char *const known[] = {
      "redis",        "name",        "layout",           "events",
      "maxlen",       "max_pending", "max_buffer_bytes", "commands",
      "reply_ttl_ms", NULL};
  struct json_object *cfg = json_tokener_parse(config_json), *v;
  long long pending = DEFAULT_MAX_PENDING, buffer = DEFAULT_MAX_BUFFER;
  int subscribed = 0, rv = -1;

  if (!json_object_is_type(cfg, json_type_object)) {
    h->log(h, DGW_LOG_ERROR, "config must be a JSON object");
    goto out;
  }
  json_object_object_foreach(cfg, k, val) {
    int ok = 0;

    (void)val;
    for (int i = 0; known[i] != NULL; i++)
      ok |= strcmp(k, known[i]) == 0;
    if (!ok) {
      h->log(h, DGW_LOG_ERROR, "config: unknown key \"%s\"", k);
      goto out;
    }
  }
  if (!json_object_object_get_ex(cfg, "redis", &v) ||
      !json_object_is_type(v, json_type_string)) {
    h->log(h, DGW_LOG_ERROR, "config: \"redis\" (a Redis URL) is required");
    goto out;
  }
  *url = json_object_get_string(v);
  snprintf(st->name, sizeof(st->name), "dgw");
  if (json_object_object_get_ex(cfg, "name", &v)) {
    const char *name = json_object_get_string(v);

    if (!json_object_is_type(v, json_type_string) || name[0] == '\0' ||
        strlen(name) >= sizeof(st->name) || strpbrk(name, "{}") != NULL) {
      h->log(h, DGW_LOG_ERROR,
             "config: \"name\" must be a non-empty string without braces");
      goto out;
    }
    snprintf(st->name, sizeof(st->name), "%s", name);
  }
  if (DGW_PLUGIN_HOST_HAS(h, gateway_session_id) &&
      (st->cluster = h->cluster_name(h)) != NULL) {
    /* The script touches the stream and the lease in one step: one hash
     * tag, one Redis Cluster slot. */
    if (json_object_object_get_ex(cfg, "name", &v) &&
        strcmp(st->name, st->cluster) != 0) {
      h->log(h, DGW_LOG_ERROR,
             "config: \"name\" must be the cluster's name \"%s\" (or "
             "left out) when the cluster is on",
             st->cluster);
      goto out;
    }
    snprintf(st->name, sizeof(st->name), "%s", st->cluster);
  }
  if (json_object_object_get_ex(cfg, "layout", &v)) {
    const char *l = json_object_get_string(v);

    if (strcmp(l, "single") == 0)
      st->per_event = 0;
    else if (strcmp(l, "per-event") == 0)
      st->per_event = 1;
    else {
      h->log(h, DGW_LOG_ERROR,
             "config: \"layout\" must be \"single\" or \"per-event\"");
      goto out;
    }
  }
  st->maxlen = DEFAULT_MAXLEN;
  if (get_int(h, cfg, "maxlen", 0, INT64_MAX, &st->maxlen) < 0 ||
      get_int(h, cfg, "max_pending", 1, 1000000, &pending) < 0 ||
      get_int(h, cfg, "max_buffer_bytes", 4096, INT64_MAX, &buffer) < 0)
    goto out;
  st->reply_ttl_ms = 600000;
  if (get_int(h, cfg, "reply_ttl_ms", 1000, INT64_MAX, &st->reply_ttl_ms) < 0)
    goto out;
  if (json_object_object_get_ex(cfg, "commands", &v)) {
    if (!json_object_is_type(v, json_type_boolean)) {
      h->log(h, DGW_LOG_ERROR, "config: \"commands\" must be true or false");
      goto out;
    }
    st->want_commands = json_object_get_boolean(v);
  }
  st->max_pending = (uint32_t)pending;
  st->max_buffer = (size_t)buffer;
  if (json_object_object_get_ex(cfg, "events", &v)) {
    if (!json_object_is_type(v, json_type_array)) {
      h->log(h, DGW_LOG_ERROR, "config: \"events\" must be an array");
      goto out;
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
      struct json_object *e = json_object_array_get_idx(v, i);

      if (!json_object_is_type(e, json_type_string) ||
          h->subscribe(h, json_object_get_string(e)) != DGW_OK) {
        h->log(h, DGW_LOG_ERROR, "config: events[%zu] is not an event name", i);
        goto out;
      }
      if (strcmp(json_object_get_string(e), "READY") == 0 ||
          strcmp(json_object_get_string(e), "*") == 0)
        st->want_ready = 1;
      subscribed = 1;
    }
  }
  if (!subscribed) {
    if (h->subscribe(h, "*") != DGW_OK)
      goto out;
    st->want_ready = 1;
  }
  /* READY carries the session id every entry names. */
  if (!st->want_ready && h->subscribe(h, "READY") != DGW_OK)
    goto out;
  snprintf(st->single_key, sizeof(st->single_key), "dgw:{%s}:events", st->name);
  pipeline_put_i64(st->maxlen_s, st->maxlen);
  rv = 0;
out:
  if (rv == 0)
    *url = strdup(*url);
  json_object_put(cfg);
  return rv;
}

static void redis_log(enum dgw_log_level level, const char *msg, void *ud) {
  struct streams *st = ud;

  st->host->log(st->host, level, "%s", msg);
}

static int streams_init(const struct dgw_plugin_host *host,
                        const char *config_json, void **state) {
  struct streams *st = calloc(1, sizeof(*st));
  static const struct redis_callbacks cb = {on_up, on_down};
  const char *url = NULL;
  char why[300];

  if (st == NULL)
    return -1;
  st->host = host;
  if (configure(st, config_json, &url) != 0) {
    free(st);
    return -1;
  }
  st->redis =
      redis_new(host->base, url, &cb, st, redis_log, st, why, sizeof(why));
  if (st->redis == NULL) {
    host->log(host, DGW_LOG_ERROR, "config: \"redis\": %s", why);
    free((char *)url);
    free(st);
    return -1;
  }
  if (st->want_commands && (st->commands = commands_new(
                                host, url, st->name, (uint64_t)st->reply_ttl_ms,
                                why, sizeof(why))) == NULL) {
    host->log(host, DGW_LOG_ERROR, "config: \"commands\": %s", why);
    redis_free(st->redis);
    free((char *)url);
    free(st);
    return -1;
  }
  host->log(host, DGW_LOG_INFO, "storing events in %s, %s",
            redis_describe(st->redis),
            st->per_event ? "one stream per event" : "one stream");
  free((char *)url);
  if (st->cluster != NULL &&
      (st->advance = host->timer_add(host, 1000, 1, advance, st)) == NULL)
    host->log(host, DGW_LOG_WARN,
              "no timer: the stream's position moves only with stored "
              "events");
  *state = st;
  return 0;
}

static void streams_fini(void *state) {
  struct streams *st = state;
  uint64_t lost = 0;

  st->closing = 1;
  commands_free(st->commands);
  redis_free(st->redis);
  lost = pipeline_free(st);
  st->host->log(st->host,
                lost > 0 || st->dropped > 0 ? DGW_LOG_WARN : DGW_LOG_INFO,
                "%llu events stored, %llu dropped, %llu not yet stored at "
                "exit, %llu XADDs sent again, %llu pauses, peak %zu bytes "
                "held",
                (unsigned long long)st->stored, (unsigned long long)st->dropped,
                (unsigned long long)lost, (unsigned long long)st->resent,
                (unsigned long long)st->pauses, st->peak_buffered);
  if (st->cluster != NULL)
    st->host->log(
        st->host, DGW_LOG_INFO,
        "exactly-once: %llu skipped as already stored, %llu fenced, "
        "%llu stored with the lease key missing, %llu stored "
        "without a lease at hand",
        (unsigned long long)st->skipped, (unsigned long long)st->fenced,
        (unsigned long long)st->unleased, (unsigned long long)st->unfenced);
  free(st->sessions);
  free(st->shards);
  free(st);
}

static const struct dgw_plugin descriptor = {
    .abi = DGW_PLUGIN_ABI,
    .size = sizeof(struct dgw_plugin),
    .name = "redis-streams",
    .version = "0.2.0",
    .description =
        "XADDs events (raw d) to Redis streams: at-least-once, no loss; "
        "exactly-once with the cluster",
    .events = NULL, /* from the config, in init */
    .init = streams_init,
    .on_dispatch = on_dispatch,
    .on_lifecycle = NULL,
    .fini = streams_fini,
};

const struct dgw_plugin *dgw_plugin_describe(void) {
  return &descriptor;
}
