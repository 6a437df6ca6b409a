/*
 * metrics: serves the client's statistics in the Prometheus text format
 * (version 0.0.4) and a health check, with libevent's evhttp on the
 * client's own loop.  Config:
 *
 *   {"listen": "127.0.0.1:9464",    address and port (default shown)
 *    "resume_budget_s": 60}         how long a shard may be away from READY
 *                                   (reconnecting, resuming) and still
 *                                   count as healthy (default 60)
 *
 * GET /metrics   every counter of dgw_client_stats() and
 *                dgw_gateway_stats(), names prefixed dgw_, a `shard`
 *                label, histograms of heartbeat latency (per shard) and
 *                of handler time (per event name).  Event names come from
 *                the library's fixed table ("other" for the rest), so a
 *                hostile stream cannot grow the label set.
 * GET /healthz   200 {"status":"ok",...} while every shard is READY or
 *                away from it for less than resume_budget_s; else 503 and
 *                {"status":"unhealthy","faulty":[{"shard":N,"state":...,
 *                "for_s":...}]}.
 *
 * A port that cannot be bound (busy, bad address) fails init with a line
 * naming the address.  Needs a host with the statistics members of the
 * host table (dgw 0.1 with issue 14).
 */
#include <inttypes.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/buffer.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <json-c/json.h>

#include <dgw/plugin.h>

#define DEFAULT_LISTEN "127.0.0.1:9464"

struct shard_seen {
  struct dgw_gateway *gw;
  double away_since; /* monotonic seconds; 0: READY now */
};

struct metrics {
  const struct dgw_plugin_host *host;
  struct evhttp *http;
  double budget_s;
  double started;
  struct shard_seen *seen;
  size_t nseen, cap;
  struct dgw_shard_stats *snap; /* this scrape's shard snapshots */
  size_t nsnap, snap_cap;
};

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The record of `gw`, made on first sight (away since the plugin started);
 * NULL without memory. */
static struct shard_seen *seen_of(struct metrics *m, struct dgw_gateway *gw) {
  for (size_t i = 0; i < m->nseen; i++)
    if (m->seen[i].gw == gw)
      return &m->seen[i];
  if (m->nseen == m->cap) {
    size_t cap = m->cap ? m->cap * 2 : 8;
    struct shard_seen *n = realloc(m->seen, cap * sizeof(*n));

    if (n == NULL)
      return NULL;
    m->seen = n;
    m->cap = cap;
  }
  m->seen[m->nseen].gw = gw;
  m->seen[m->nseen].away_since = m->started;
  return &m->seen[m->nseen++];
}

/* ------------------------------------------------------------ /metrics */

static void help(struct evbuffer *b, const char *name, const char *type,
                 const char *text) {
  evbuffer_add_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, text, name,
                      type);
}

/* A bound as Prometheus writes it ("+Inf" for the last). */
static void le(char *out, size_t size, double bound) {
  if (isinf(bound))
    snprintf(out, size, "+Inf");
  else
    snprintf(out, size, "%g", bound);
}

/* Every shard's snapshot of this scrape, taken once (snap_take). */
#define FOR_SHARDS(m, i, sh)                                                   \
  for (size_t i = 0; i < (m)->nsnap && ((sh) = &(m)->snap[i]) != NULL; i++)

/* One counter per shard: `expr` reads s_, a struct dgw_shard_stats *. */
#define PER_SHARD(m, b, name, type, text, fmt, expr)                           \
  do {                                                                         \
    const struct dgw_shard_stats *s_;                                          \
    help((b), (name), (type), (text));                                         \
    FOR_SHARDS((m), i_, s_)                                                    \
    evbuffer_add_printf((b), "%s{shard=\"%" PRIu32 "\"} " fmt "\n", (name),    \
                        s_->shard_id, (expr));                                 \
  } while (0)

/* Takes every shard's snapshot once for this scrape; -1 without memory. */
static int snap_take(struct metrics *m) {
  const struct dgw_plugin_host *h = m->host;
  uint32_t n = h->shard_count(h);

  m->nsnap = 0;
  if (n > m->snap_cap) {
    struct dgw_shard_stats *s = realloc(m->snap, n * sizeof(*s));

    if (s == NULL)
      return -1;
    m->snap = s;
    m->snap_cap = n;
  }
  for (uint32_t i = 0; i < n; i++) {
    struct dgw_gateway *gw = h->gateway_at(h, i);
    struct dgw_shard_stats *sh = &m->snap[m->nsnap];

    memset(sh, 0, sizeof(*sh));
    sh->size = sizeof(*sh);
    if (gw != NULL && h->gateway_stats(gw, sh) == DGW_OK)
      m->nsnap++;
  }
  return 0;
}

static void shard_metrics(struct metrics *m, struct evbuffer *b) {
  const struct dgw_plugin_host *h = m->host;
  const struct dgw_shard_stats *sh;

  help(b, "dgw_shard_up", "gauge", "1 while the shard is READY");
  FOR_SHARDS(m, i, sh)
  evbuffer_add_printf(b, "dgw_shard_up{shard=\"%" PRIu32 "\"} %d\n",
                      sh->shard_id, sh->state == DGW_STATE_READY);
  help(b, "dgw_shard_state", "gauge", "the shard's state (1 for the current)");
  FOR_SHARDS(m, i, sh)
  evbuffer_add_printf(b,
                      "dgw_shard_state{shard=\"%" PRIu32 "\",state=\"%s\"} 1\n",
                      sh->shard_id, h->state_name(sh->state));
  PER_SHARD(m, b, "dgw_frames_received_total", "counter",
            "WebSocket messages received", "%" PRIu64, s_->frames_in);
  PER_SHARD(m, b, "dgw_wire_bytes_received_total", "counter",
            "payload bytes received as sent (compressed)", "%" PRIu64,
            s_->bytes_wire);
  PER_SHARD(m, b, "dgw_inflated_bytes_received_total", "counter",
            "payload bytes received after zlib", "%" PRIu64,
            s_->bytes_inflated);
  PER_SHARD(m, b, "dgw_reconnects_total", "counter",
            "connection attempts after the first", "%" PRIu64, s_->reconnects);
  PER_SHARD(m, b, "dgw_resumes_total", "counter", "sessions resumed",
            "%" PRIu64, s_->resumes);
  PER_SHARD(m, b, "dgw_identifies_total", "counter", "IDENTIFY sent",
            "%" PRIu64, s_->identifies);
  PER_SHARD(m, b, "dgw_zombies_total", "counter",
            "connections left for a missing heartbeat ACK", "%" PRIu64,
            s_->zombies);
  PER_SHARD(m, b, "dgw_window_sleeps_total", "counter",
            "zlib windows packed while the shard was quiet", "%" PRIu64,
            s_->window_sleeps);
  PER_SHARD(m, b, "dgw_window_asleep", "gauge",
            "1 while the shard's zlib window is packed", "%" PRIu32,
            s_->window_asleep);
  PER_SHARD(m, b, "dgw_send_queue_depth", "gauge",
            "commands waiting behind the send rate limit", "%" PRIu64,
            s_->commands_queued);
  PER_SHARD(m, b, "dgw_rate_limit_waits_total", "counter",
            "commands queued behind the send rate limit", "%" PRIu64,
            s_->rate_limit_waits);
  PER_SHARD(m, b, "dgw_identify_waits_total", "counter",
            "IDENTIFYs that waited in the identify queue", "%" PRIu64,
            s_->identify_waits);
  PER_SHARD(m, b, "dgw_seconds_since_last_event", "gauge",
            "seconds since the shard's last dispatch (-1 before one)", "%g",
            s_->ms_since_event < 0 ? -1.0
                                   : (double)s_->ms_since_event / 1000.0);
  PER_SHARD(m, b, "dgw_heartbeat_latency_last_seconds", "gauge",
            "the last heartbeat round trip (-1 before one)", "%g",
            s_->latency_ms < 0 ? -1.0 : s_->latency_ms / 1000.0);

  help(b, "dgw_dispatches_total", "counter",
       "events delivered, by event name (a fixed set; other for the rest)");
  FOR_SHARDS(m, i, sh)
  for (unsigned k = 0; k < DGW_STATS_EVENT_NAMES; k++)
    if (sh->dispatches_by_name[k] > 0 && h->stats_event_name(k) != NULL)
      evbuffer_add_printf(b,
                          "dgw_dispatches_total{shard=\"%" PRIu32
                          "\",event=\"%s\"} %" PRIu64 "\n",
                          sh->shard_id, h->stats_event_name(k),
                          sh->dispatches_by_name[k]);
  help(b, "dgw_closes_total", "counter",
       "connections lost, by close code (other: none or unknown)");
  FOR_SHARDS(m, i, sh)
  for (unsigned k = 0; k < DGW_STATS_CLOSE_CODES; k++)
    if (sh->closes_by_code[k] > 0) {
      char code[16];

      if (k == 0)
        snprintf(code, sizeof(code), "other");
      else
        snprintf(code, sizeof(code), "%d", h->stats_close_code(k));
      evbuffer_add_printf(b,
                          "dgw_closes_total{shard=\"%" PRIu32
                          "\",code=\"%s\"} %" PRIu64 "\n",
                          sh->shard_id, code, sh->closes_by_code[k]);
    }
  help(b, "dgw_heartbeat_latency_seconds", "histogram",
       "heartbeat round trips");
  FOR_SHARDS(m, i, sh) {
    uint64_t cum = 0;

    for (unsigned k = 0; k < DGW_STATS_LATENCY_BUCKETS; k++) {
      double bound = h->stats_latency_bound_ms(k);
      char l[32];

      cum += sh->latency_hist[k];
      le(l, sizeof(l), isinf(bound) ? bound : bound / 1000.0);
      evbuffer_add_printf(
          b,
          "dgw_heartbeat_latency_seconds_bucket{shard=\"%" PRIu32
          "\",le=\"%s\"} %" PRIu64 "\n",
          sh->shard_id, l, cum);
    }
    evbuffer_add_printf(
        b, "dgw_heartbeat_latency_seconds_sum{shard=\"%" PRIu32 "\"} %g\n",
        sh->shard_id, sh->latency_sum_ms / 1000.0);
    evbuffer_add_printf(b,
                        "dgw_heartbeat_latency_seconds_count{shard=\"%" PRIu32
                        "\"} %" PRIu64 "\n",
                        sh->shard_id, sh->latency_count);
  }
}

static void client_metrics(struct metrics *m, struct evbuffer *b,
                           const struct dgw_client_stats *cs) {
  const struct dgw_plugin_host *h = m->host;

  help(b, "dgw_shards", "gauge", "shards the client runs");
  evbuffer_add_printf(b, "dgw_shards %" PRIu32 "\n", cs->shards);
  help(b, "dgw_shards_ready", "gauge", "of those, READY");
  evbuffer_add_printf(b, "dgw_shards_ready %" PRIu32 "\n", cs->shards_ready);
  help(b, "dgw_offline", "gauge", "1 while every shard lost the network");
  evbuffer_add_printf(b, "dgw_offline %d\n",
                      h->client_is_offline(h->client) ? 1 : 0);
  help(b, "dgw_events_dropped_total", "counter",
       "events wanted by nobody, dropped unparsed");
  evbuffer_add_printf(b, "dgw_events_dropped_total %" PRIu64 "\n", cs->dropped);
  help(b, "dgw_events_parsed_total", "counter", "events whose d was parsed");
  evbuffer_add_printf(b, "dgw_events_parsed_total %" PRIu64 "\n", cs->parsed);
  help(b, "dgw_session_starts_left", "gauge",
       "session starts left as last learnt (-1 unknown)");
  evbuffer_add_printf(b, "dgw_session_starts_left %" PRId64 "\n",
                      cs->session_starts_left);
  help(b, "dgw_handler_seconds", "histogram",
       "time the handlers took per event, by event name");
  for (unsigned k = 0; k < DGW_STATS_EVENT_NAMES; k++) {
    uint64_t cum = 0;
    const char *name = h->stats_event_name(k);

    if (cs->handled_by_name[k] == 0 || name == NULL)
      continue;
    for (unsigned j = 0; j < DGW_STATS_HANDLER_BUCKETS; j++) {
      double bound = h->stats_handler_bound_us(j);
      char l[32];

      cum += cs->handler_hist[k][j];
      le(l, sizeof(l), isinf(bound) ? bound : bound / 1e6);
      evbuffer_add_printf(b,
                          "dgw_handler_seconds_bucket{event=\"%s\",le=\"%s\"} "
                          "%" PRIu64 "\n",
                          name, l, cum);
    }
    evbuffer_add_printf(b, "dgw_handler_seconds_sum{event=\"%s\"} %g\n", name,
                        cs->handler_us_sum[k] / 1e6);
    evbuffer_add_printf(b,
                        "dgw_handler_seconds_count{event=\"%s\"} %" PRIu64 "\n",
                        name, cs->handled_by_name[k]);
  }
}

static void reply(struct evhttp_request *req, int code, const char *reason,
                  const char *type, struct evbuffer *b) {
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    type);
  evhttp_send_reply(req, code, reason, b);
}

static void on_metrics(struct evhttp_request *req, void *arg) {
  struct metrics *m = arg;
  struct evbuffer *b = evbuffer_new();
  struct dgw_client_stats *cs = calloc(1, sizeof(*cs));

  if (b == NULL || cs == NULL) {
    evhttp_send_error(req, 500, "out of memory");
    evbuffer_free(b);
    free(cs);
    return;
  }
  cs->size = sizeof(*cs);
  if (m->host->client_stats(m->host->client, cs) == DGW_OK &&
      snap_take(m) == 0) {
    client_metrics(m, b, cs);
    shard_metrics(m, b);
  }
  reply(req, 200, "OK", "text/plain; version=0.0.4; charset=utf-8", b);
  evbuffer_free(b);
  free(cs);
}

/* ------------------------------------------------------------ /healthz */

static void on_healthz(struct evhttp_request *req, void *arg) {
  struct metrics *m = arg;
  const struct dgw_plugin_host *h = m->host;
  struct evbuffer *b = evbuffer_new();
  uint32_t n = h->shard_count(h);
  double now = now_s();
  int faulty = 0;

  if (b == NULL) {
    evhttp_send_error(req, 500, "out of memory");
    return;
  }
  for (uint32_t i = 0; i < n; i++) {
    struct dgw_gateway *gw = h->gateway_at(h, i);
    struct shard_seen *s;
    enum dgw_state st;
    double away;

    if (gw == NULL)
      continue;
    st = h->gateway_state(gw);
    s = seen_of(m, gw);
    if (st == DGW_STATE_READY) {
      if (s != NULL)
        s->away_since = 0;
      continue;
    }
    if (s != NULL && s->away_since == 0)
      s->away_since = now; /* left READY without telling us yet */
    away = s != NULL ? now - s->away_since : 0;
    if (st != DGW_STATE_FATAL && st != DGW_STATE_CLOSED && away <= m->budget_s)
      continue;
    evbuffer_add_printf(b,
                        "%s{\"shard\":%" PRIu32 ",\"state\":\"%s\","
                        "\"for_s\":%.1f}",
                        faulty ? "," : "{\"status\":\"unhealthy\",\"faulty\":[",
                        h->gateway_shard_id(gw), h->state_name(st), away);
    faulty++;
  }
  if (faulty) {
    evbuffer_add_printf(b, "]}\n");
    reply(req, 503, "Service Unavailable", "application/json", b);
  } else {
    evbuffer_add_printf(b, "{\"status\":\"ok\",\"shards\":%" PRIu32 "}\n", n);
    reply(req, 200, "OK", "application/json", b);
  }
  evbuffer_free(b);
}

static void on_other(struct evhttp_request *req, void *arg) {
  (void)arg;
  evhttp_send_error(req, 404, "try /metrics or /healthz");
}

/* ------------------------------------------------------------ plugin */

static void metrics_lifecycle(void *state, struct dgw_gateway *gw,
                              enum dgw_lifecycle what,
                              const struct dgw_disconnect *info) {
  struct metrics *m = state;
  struct shard_seen *s = seen_of(m, gw);

  (void)info;
  if (s == NULL)
    return;
  if (what == DGW_LIFECYCLE_READY || what == DGW_LIFECYCLE_RESUMED)
    s->away_since = 0;
  else if (s->away_since == 0)
    s->away_since = now_s();
}

/* Splits "host:port" (the host may be "[v6]"); -1 when malformed. */
static int split_listen(const char *listen, char *host, size_t size,
                        uint16_t *port) {
  const char *colon = strrchr(listen, ':');
  size_t n;
  char *end;
  unsigned long p;

  if (colon == NULL || colon == listen)
    return -1;
  n = (size_t)(colon - listen);
  if (listen[0] == '[' && n >= 2 && listen[n - 1] == ']') {
    listen++;
    n -= 2;
  }
  if (n == 0 || n >= size)
    return -1;
  memcpy(host, listen, n);
  host[n] = '\0';
  p = strtoul(colon + 1, &end, 10);
  if (*end != '\0' || colon[1] == '\0' || p > 65535)
    return -1;
  *port = (uint16_t)p;
  return 0;
}

static int metrics_init(const struct dgw_plugin_host *host,
                        const char *config_json, void **state) {
  struct json_object *cfg = json_tokener_parse(config_json);
  struct json_object *v;
  const char *listen = DEFAULT_LISTEN;
  struct metrics *m;
  char addr[256];
  uint16_t port;

  if (!DGW_PLUGIN_HOST_HAS(host, stats_handler_bound_us)) {
    host->log(host, DGW_LOG_ERROR,
              "this host has no statistics calls (a newer dgw is needed)");
    json_object_put(cfg);
    return -1;
  }
  m = calloc(1, sizeof(*m));
  if (m == NULL) {
    json_object_put(cfg);
    return -1;
  }
  m->host = host;
  m->budget_s = 60;
  m->started = now_s();
  if (cfg != NULL && json_object_object_get_ex(cfg, "listen", &v))
    listen = json_object_get_string(v);
  if (cfg != NULL && json_object_object_get_ex(cfg, "resume_budget_s", &v)) {
    if ((!json_object_is_type(v, json_type_int) &&
         !json_object_is_type(v, json_type_double)) ||
        json_object_get_double(v) < 0) {
      host->log(host, DGW_LOG_ERROR,
                "\"resume_budget_s\" must be a number of seconds >= 0");
      goto fail;
    }
    m->budget_s = json_object_get_double(v);
  }
  if (listen == NULL || split_listen(listen, addr, sizeof(addr), &port) != 0) {
    host->log(host, DGW_LOG_ERROR,
              "\"listen\" must be \"host:port\", e.g. \"%s\"; got \"%s\"",
              DEFAULT_LISTEN, listen != NULL ? listen : "(not a string)");
    goto fail;
  }
  m->http = evhttp_new(host->base);
  if (m->http == NULL)
    goto fail;
  if (evhttp_bind_socket_with_handle(m->http, addr, port) == NULL) {
    host->log(host, DGW_LOG_ERROR,
              "cannot listen on %s (port busy, or not an address of this "
              "host)",
              listen);
    goto fail;
  }
  evhttp_set_allowed_methods(m->http, EVHTTP_REQ_GET | EVHTTP_REQ_HEAD);
  evhttp_set_cb(m->http, "/metrics", on_metrics, m);
  evhttp_set_cb(m->http, "/healthz", on_healthz, m);
  evhttp_set_gencb(m->http, on_other, m);
  host->log(host, DGW_LOG_INFO, "serving /metrics and /healthz on %s", listen);
  json_object_put(cfg);
  *state = m;
  return 0;
fail:
  if (m->http != NULL)
    evhttp_free(m->http);
  free(m);
  json_object_put(cfg);
  return -1;
}

static void metrics_fini(void *state) {
  struct metrics *m = state;

  if (m == NULL)
    return;
  evhttp_free(m->http);
  free(m->snap);
  free(m->seen);
  free(m);
}

static const struct dgw_plugin descriptor = {
    .abi = DGW_PLUGIN_ABI,
    .size = sizeof(struct dgw_plugin),
    .name = "metrics",
    .version = "1.0.0",
    .description = "Prometheus /metrics and /healthz over HTTP",
    .events = NULL,
    .init = metrics_init,
    .on_dispatch = NULL,
    .on_lifecycle = metrics_lifecycle,
    .fini = metrics_fini,
};

const struct dgw_plugin *dgw_plugin_describe(void) {
  return &descriptor;
}
