/*
 * A test plugin that tells the test everything it sees, through the
 * host's logger (so the test reads its log sink and nothing is shared):
 *
 *   rec ID init | rec ID fini
 *   rec ID dispatch NAME SEQ SHARD D
 *   rec ID json SEQ POINTER            ("parse": true)
 *   rec ID lifecycle ready|resumed|disconnected|fatal [CODE]
 *   rec ID sent RESULT                 ("send_on"/"send")
 *   rec ID tick N                      ("timer_ms")
 *   rec ID late-subscribe RESULT       ("late_subscribe": true)
 *   rec ID field POINTER RC VALUE      ("field": a JSON Pointer into d,
 *                                       read by host->field_string)
 *
 * Built three times: -DREC_NAMED wants MESSAGE_CREATE and TYPING_START
 * in its descriptor, -DREC_WILDCARD wants "*", and plain wants what its
 * config's "subscribe" array says.  Other config keys: "id", "parse",
 * "send_on" + "send", "stop_on", "fail_init" (init's return value),
 * "timer_ms" + "timer_repeat" (a repeating timer removes itself after 3
 * ticks), "field" (read that string of each d through the host's field
 * getters, when the host has them).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <dgw/plugin.h>

#if defined(REC_NAMED)
#define REC_NAME "rec-named"
static const char *const events[] = {"MESSAGE_CREATE", "TYPING_START", NULL};
#define REC_EVENTS events
#elif defined(REC_WILDCARD)
#define REC_NAME "rec-all"
static const char *const events[] = {"*", NULL};
#define REC_EVENTS events
#else
#define REC_NAME "rec-sub"
#define REC_EVENTS NULL
#endif

struct rec {
  const struct dgw_plugin_host *host;
  char id[16];
  int parse;
  char send_on[64];
  char send[512];
  char stop_on[64];
  char presence_on[64]; /* update_presence(status) on this event */
  char presence_status[16];
  int late_subscribe;
  char field[64]; /* a JSON Pointer read from each d */
  struct dgw_plugin_timer *timer;
  int ticks;
};

static void copy_string(struct json_object *cfg, const char *key, char *out,
                        size_t size) {
  struct json_object *v;

  if (json_object_object_get_ex(cfg, key, &v))
    snprintf(out, size, "%s", json_object_get_string(v));
}

static int get_int(struct json_object *cfg, const char *key) {
  struct json_object *v;

  return json_object_object_get_ex(cfg, key, &v) ? json_object_get_int(v) : 0;
}

static void tick(void *arg) {
  struct rec *r = arg;

  r->ticks++;
  r->host->log(r->host, DGW_LOG_INFO, "rec %s tick %d", r->id, r->ticks);
  if (r->timer != NULL && r->ticks == 3) {
    r->host->timer_remove(r->host, r->timer); /* from its own callback */
    r->timer = NULL;
  }
}

static int rec_init(const struct dgw_plugin_host *host, const char *config_json,
                    void **state) {
  struct json_object *cfg = json_tokener_parse(config_json);
  struct json_object *v;
  struct rec *r = calloc(1, sizeof(*r));
  int fail = get_int(cfg, "fail_init");
  int timer_ms = get_int(cfg, "timer_ms");

  if (r == NULL || fail != 0) {
    host->log(host, DGW_LOG_INFO, "rec init failing with %d", fail);
    json_object_put(cfg);
    free(r);
    return fail != 0 ? fail : -1;
  }
  r->host = host;
  snprintf(r->id, sizeof(r->id), "?");
  copy_string(cfg, "id", r->id, sizeof(r->id));
  copy_string(cfg, "send_on", r->send_on, sizeof(r->send_on));
  copy_string(cfg, "send", r->send, sizeof(r->send));
  copy_string(cfg, "stop_on", r->stop_on, sizeof(r->stop_on));
  copy_string(cfg, "field", r->field, sizeof(r->field));
  copy_string(cfg, "presence_on", r->presence_on, sizeof(r->presence_on));
  copy_string(cfg, "presence_status", r->presence_status,
              sizeof(r->presence_status));
  r->parse = get_int(cfg, "parse");
  r->late_subscribe = get_int(cfg, "late_subscribe");
  if (json_object_object_get_ex(cfg, "subscribe", &v))
    for (size_t i = 0; i < json_object_array_length(v); i++)
      host->subscribe(host,
                      json_object_get_string(json_object_array_get_idx(v, i)));
  if (timer_ms > 0) {
    int repeat = get_int(cfg, "timer_repeat");
    struct dgw_plugin_timer *t =
        host->timer_add(host, (uint32_t)timer_ms, repeat, tick, r);

    if (repeat)
      r->timer = t;
  }
  json_object_put(cfg);
  host->log(host, DGW_LOG_INFO, "rec %s init", r->id);
  *state = r;
  return 0;
}

static void rec_dispatch(void *state, struct dgw_gateway *gw,
                         const struct dgw_event *ev) {
  struct rec *r = state;
  const struct dgw_plugin_host *h = r->host;
  const char *name = h->event_name(ev);
  size_t len;
  const char *d = h->event_data(ev, &len);

  h->log(h, DGW_LOG_INFO, "rec %s dispatch %s %lld %u %.*s", r->id, name,
         (long long)h->event_seq(ev), (unsigned)h->event_shard(ev), (int)len,
         d);
  if (r->parse)
    h->log(h, DGW_LOG_INFO, "rec %s json %lld %p", r->id,
           (long long)h->event_seq(ev), (void *)h->event_json(ev));
  if (r->field[0] != '\0' && DGW_PLUGIN_HOST_HAS(h, field_string)) {
    char value[128] = "";
    size_t n = 0;
    int rc = h->field_string(d, len, r->field, value, sizeof(value), &n);

    h->log(h, DGW_LOG_INFO, "rec %s field %s %d %s", r->id, r->field, rc,
           rc == DGW_OK ? value : "");
  }
  if (r->late_subscribe) {
    r->late_subscribe = 0;
    h->log(h, DGW_LOG_INFO, "rec %s late-subscribe %d", r->id,
           h->subscribe(h, "GUILD_CREATE"));
  }
  if (r->send_on[0] != '\0' && strcmp(name, r->send_on) == 0)
    h->log(h, DGW_LOG_INFO, "rec %s sent %d", r->id,
           h->send_json(h, h->gateway_shard_id(gw), r->send, strlen(r->send)));
  if (r->presence_on[0] != '\0' && strcmp(name, r->presence_on) == 0 &&
      DGW_PLUGIN_HOST_HAS(h, update_presence)) {
    struct dgw_presence p = {r->presence_status, 0, 0, NULL, 0};
    char why[128] = "";

    h->log(h, DGW_LOG_INFO, "rec %s presence %d %s", r->id,
           h->update_presence(gw, &p, why, sizeof(why)), why);
  }
  if (r->stop_on[0] != '\0' && strcmp(name, r->stop_on) == 0)
    h->stop(h);
}

static void rec_lifecycle(void *state, struct dgw_gateway *gw,
                          enum dgw_lifecycle what,
                          const struct dgw_disconnect *info) {
  static const char *const names[] = {"?", "ready", "resumed", "disconnected",
                                      "fatal"};
  struct rec *r = state;

  (void)gw;
  r->host->log(r->host, DGW_LOG_INFO, "rec %s lifecycle %s %u", r->id,
               names[(unsigned)what <= 4 ? what : 0],
               info != NULL ? (unsigned)info->close_code : 0u);
}

static void rec_fini(void *state) {
  struct rec *r = state;

  r->host->log(r->host, DGW_LOG_INFO, "rec %s fini", r->id);
  free(r);
}

static const struct dgw_plugin descriptor = {
    .abi = DGW_PLUGIN_ABI,
    .size = sizeof(struct dgw_plugin),
    .name = REC_NAME,
    .version = "0.0.1",
    .description = "records what it sees in the log, for the tests",
    .events = REC_EVENTS,
    .init = rec_init,
    .on_dispatch = rec_dispatch,
    .on_lifecycle = rec_lifecycle,
    .fini = rec_fini,
};

const struct dgw_plugin *dgw_plugin_describe(void) {
  return &descriptor;
}
