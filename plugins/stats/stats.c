/*
 * stats: counts what the gateway delivers and reports it on a timer
 * through the application's logger (level info):
 *
 *   plugin stats: events 1200 (+300, 30.0/s), bytes in 482113, ready 1,
 *                 resumes 2, reconnects 2, fatal 0
 *   plugin stats: by name: MESSAGE_CREATE=800 TYPING_START=250 ...
 *   plugin stats: latency: shard 0 41.2 ms, shard 1 unknown
 *
 * "bytes in" counts the raw `d` text of each event (after inflating);
 * "reconnects" counts connections that ended and will be retried;
 * "resumes" counts RESUMED; latency is each shard's last heartbeat round
 * trip.  A last report is logged when the client is freed.  Config:
 *
 *   {"interval_ms": 60000}     time between reports (default 60000, >= 10)
 *
 * Subscribes to every event ("*") but never parses one.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include <dgw/plugin.h>

/* Longest report line we build (the host cuts lines at about 480). */
#define LINE_MAX_LEN 400

struct counter {
  char *name; /* NULL: empty slot */
  uint64_t n;
};

struct stats {
  const struct dgw_plugin_host *host;
  struct dgw_plugin_timer *timer;
  uint32_t interval_ms;
  struct counter *slots; /* open addressing, power-of-two sized */
  size_t nslots, used;
  uint64_t events, bytes;
  uint64_t ready, resumes, reconnects, fatal;
  uint64_t events_at_report;
  double report_at; /* seconds, monotonic */
};

static double now_s(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static uint32_t hash_name(const char *s) {
  uint32_t h = 2166136261u;

  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= 16777619u;
  }
  return h;
}

static struct counter *find(struct counter *slots, size_t nslots,
                            const char *name) {
  size_t mask = nslots - 1;

  for (size_t i = hash_name(name) & mask;; i = (i + 1) & mask)
    if (slots[i].name == NULL || strcmp(slots[i].name, name) == 0)
      return &slots[i];
}

/* Doubles the table; 0 or -1 without memory (then counting goes on in
 * the old table, which still has room). */
static int grow(struct stats *st) {
  size_t n = st->nslots ? st->nslots * 2 : 64;
  struct counter *slots = calloc(n, sizeof(*slots));

  if (slots == NULL)
    return -1;
  for (size_t i = 0; i < st->nslots; i++)
    if (st->slots[i].name != NULL)
      *find(slots, n, st->slots[i].name) = st->slots[i];
  free(st->slots);
  st->slots = slots;
  st->nslots = n;
  return 0;
}

static void count(struct stats *st, const char *name) {
  struct counter *c;

  /* Kept at most half full so probes stay short and always end. */
  if (2 * (st->used + 1) > st->nslots && grow(st) != 0 &&
      st->used + 1 >= st->nslots)
    return;
  c = find(st->slots, st->nslots, name);
  if (c->name == NULL) {
    if ((c->name = strdup(name)) == NULL)
      return;
    st->used++;
  }
  c->n++;
}

static void stats_dispatch(void *state, struct dgw_gateway *gw,
                           const struct dgw_event *ev) {
  struct stats *st = state;
  size_t len;

  (void)gw;
  st->host->event_data(ev, &len);
  st->events++;
  st->bytes += len;
  count(st, st->host->event_name(ev));
}

static void stats_lifecycle(void *state, struct dgw_gateway *gw,
                            enum dgw_lifecycle what,
                            const struct dgw_disconnect *info) {
  struct stats *st = state;

  (void)gw;
  switch (what) {
  case DGW_LIFECYCLE_READY:
    st->ready++;
    break;
  case DGW_LIFECYCLE_RESUMED:
    st->resumes++;
    break;
  case DGW_LIFECYCLE_DISCONNECTED:
    if (info == NULL || info->action != DGW_CLOSE_FATAL)
      st->reconnects++;
    break;
  case DGW_LIFECYCLE_FATAL:
    st->fatal++;
    break;
  }
}

static int by_count(const void *a, const void *b) {
  const struct counter *x = *(const struct counter *const *)a;
  const struct counter *y = *(const struct counter *const *)b;

  if (x->n != y->n)
    return x->n > y->n ? -1 : 1;
  return strcmp(x->name, y->name);
}

/* Appends `piece` to `line` after `sep`, logging the line first when it
 * would not fit.  `*len` is the line's length. */
static void add_piece(struct stats *st, const char *head, const char *sep,
                      char *line, size_t *len, const char *piece) {
  size_t n = strlen(piece);

  if (*len > 0 && *len + strlen(sep) + n > LINE_MAX_LEN) {
    st->host->log(st->host, DGW_LOG_INFO, "%s: %s", head, line);
    *len = 0;
  }
  *len += (size_t)snprintf(line + *len, LINE_MAX_LEN + 1 - *len, "%s%s",
                           *len > 0 ? sep : "", piece);
}

static void report(struct stats *st) {
  const struct dgw_plugin_host *h = st->host;
  double t = now_s();
  double span = t - st->report_at;
  uint64_t delta = st->events - st->events_at_report;
  struct counter **sorted;
  char line[LINE_MAX_LEN + 1];
  char piece[160];
  size_t len = 0;

  h->log(h, DGW_LOG_INFO,
         "events %llu (+%llu, %.1f/s), bytes in %llu, ready %llu, "
         "resumes %llu, reconnects %llu, fatal %llu",
         (unsigned long long)st->events, (unsigned long long)delta,
         span > 0 ? (double)delta / span : 0.0, (unsigned long long)st->bytes,
         (unsigned long long)st->ready, (unsigned long long)st->resumes,
         (unsigned long long)st->reconnects, (unsigned long long)st->fatal);
  st->events_at_report = st->events;
  st->report_at = t;

  sorted = st->used > 0 ? calloc(st->used, sizeof(*sorted)) : NULL;
  if (sorted != NULL) {
    size_t n = 0;

    for (size_t i = 0; i < st->nslots; i++)
      if (st->slots[i].name != NULL)
        sorted[n++] = &st->slots[i];
    qsort(sorted, n, sizeof(*sorted), by_count);
    for (size_t i = 0; i < n; i++) {
      snprintf(piece, sizeof(piece), "%.120s=%llu", sorted[i]->name,
               (unsigned long long)sorted[i]->n);
      add_piece(st, "by name", " ", line, &len, piece);
    }
    if (len > 0)
      h->log(h, DGW_LOG_INFO, "by name: %s", line);
    free(sorted);
  }

  len = 0;
  for (uint32_t i = 0; i < h->shard_count(h); i++) {
    struct dgw_gateway *gw = h->gateway_at(h, i);
    double ms = h->gateway_latency(gw);

    if (ms < 0)
      snprintf(piece, sizeof(piece), "shard %u unknown",
               (unsigned)h->gateway_shard_id(gw));
    else
      snprintf(piece, sizeof(piece), "shard %u %.1f ms",
               (unsigned)h->gateway_shard_id(gw), ms);
    add_piece(st, "latency", ", ", line, &len, piece);
  }
  if (len > 0)
    h->log(h, DGW_LOG_INFO, "latency: %s", line);
}

static void tick(void *arg) {
  report(arg);
}

static int stats_init(const struct dgw_plugin_host *host,
                      const char *config_json, void **state) {
  struct json_object *cfg = json_tokener_parse(config_json);
  struct json_object *v;
  struct stats *st;
  int64_t interval = 60000;

  if (!json_object_is_type(cfg, json_type_object)) {
    host->log(host, DGW_LOG_ERROR, "config must be a JSON object");
    json_object_put(cfg);
    return -1;
  }
  if (json_object_object_get_ex(cfg, "interval_ms", &v)) {
    interval =
        json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : -1;
    if (interval < 10 || interval > 86400000) {
      host->log(host, DGW_LOG_ERROR,
                "config: \"interval_ms\" must be an integer, 10..86400000");
      json_object_put(cfg);
      return -1;
    }
  }
  json_object_put(cfg);
  if ((st = calloc(1, sizeof(*st))) == NULL)
    return -1;
  st->host = host;
  st->interval_ms = (uint32_t)interval;
  st->report_at = now_s();
  st->timer = host->timer_add(host, st->interval_ms, 1, tick, st);
  if (st->timer == NULL || grow(st) != 0) {
    host->timer_remove(host, st->timer);
    free(st);
    return -1;
  }
  *state = st;
  return 0;
}

static void stats_fini(void *state) {
  struct stats *st = state;

  report(st);
  st->host->timer_remove(st->host, st->timer);
  for (size_t i = 0; i < st->nslots; i++)
    free(st->slots[i].name);
  free(st->slots);
  free(st);
}

static const char *const events[] = {"*", NULL};

static const struct dgw_plugin descriptor = {
    .abi = DGW_PLUGIN_ABI,
    .size = sizeof(struct dgw_plugin),
    .name = "stats",
    .version = "1.0.0",
    .description = "counts events, bytes, reconnects and latency; reports "
                   "them through the logger",
    .events = events,
    .init = stats_init,
    .on_dispatch = stats_dispatch,
    .on_lifecycle = stats_lifecycle,
    .fini = stats_fini,
};

const struct dgw_plugin *dgw_plugin_describe(void) {
  return &descriptor;
}
