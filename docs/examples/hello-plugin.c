/*
 * hello: a complete dgw plugin.  It greets each shard that becomes ready,
 * logs the size of every MESSAGE_CREATE, says how many it saw every
 * "every_ms" milliseconds (config, default 60000), and says goodbye when
 * the client is freed.  Only the installed headers are needed to build
 * it, and it links against nothing but libc:
 *
 *   cc -std=c11 -shared -fPIC $(pkg-config --cflags dgw) \
 *      -o hello.so hello-plugin.c -Wl,-z,defs
 */
#include <stdlib.h>
#include <string.h>

#include <dgw/plugin.h>

struct hello {
  const struct dgw_plugin_host *host; /* valid until fini returns */
  struct dgw_plugin_timer *timer;
  unsigned long messages;
};

/* Reads "every_ms" from the config without a JSON library; a real plugin
 * would use json-c (pkg-config json-c). */
static unsigned long every_ms(const char *config_json) {
  const char *p = strstr(config_json, "\"every_ms\"");

  if (p == NULL || (p = strchr(p, ':')) == NULL)
    return 60000;
  return strtoul(p + 1, NULL, 10);
}

static void report(void *arg) {
  struct hello *h = arg;

  h->host->log(h->host, DGW_LOG_INFO, "%lu messages so far", h->messages);
}

static int hello_init(const struct dgw_plugin_host *host,
                      const char *config_json, void **state) {
  struct hello *h = calloc(1, sizeof(*h));
  unsigned long ms = every_ms(config_json);

  if (h == NULL || ms == 0 || ms > 86400000) {
    host->log(host, DGW_LOG_ERROR, "\"every_ms\" must be 1..86400000");
    free(h);
    return -1; /* the host refuses the plugin: "init failed" */
  }
  h->host = host;
  h->timer = host->timer_add(host, (uint32_t)ms, 1, report, h);
  host->log(host, DGW_LOG_INFO, "loaded into dgw %s", host->version);
  *state = h;
  return 0;
}

static void hello_dispatch(void *state, struct dgw_gateway *gw,
                           const struct dgw_event *event) {
  struct hello *h = state;
  size_t len;

  /* The raw JSON of d: no parse unless someone asks for event_json. */
  h->host->event_data(event, &len);
  h->messages++;
  h->host->log(h->host, DGW_LOG_INFO, "%s #%lu on shard %u: %zu bytes",
               h->host->event_name(event), h->messages,
               (unsigned)h->host->gateway_shard_id(gw), len);
}

static void hello_lifecycle(void *state, struct dgw_gateway *gw,
                            enum dgw_lifecycle what,
                            const struct dgw_disconnect *info) {
  struct hello *h = state;

  (void)info;
  if (what == DGW_LIFECYCLE_READY)
    h->host->log(h->host, DGW_LOG_INFO, "hello, shard %u",
                 (unsigned)h->host->gateway_shard_id(gw));
}

static void hello_fini(void *state) {
  struct hello *h = state;

  h->host->timer_remove(h->host, h->timer);
  h->host->log(h->host, DGW_LOG_INFO, "goodbye after %lu messages",
               h->messages);
  free(h);
}

static const char *const hello_events[] = {"MESSAGE_CREATE", NULL};

static const struct dgw_plugin hello = {
    .abi = DGW_PLUGIN_ABI,
    .size = sizeof(struct dgw_plugin),
    .name = "hello",
    .version = "1.0.0",
    .description = "greets ready shards and counts messages",
    .events = hello_events,
    .init = hello_init,
    .on_dispatch = hello_dispatch,
    .on_lifecycle = hello_lifecycle,
    .fini = hello_fini,
};

const struct dgw_plugin *dgw_plugin_describe(void) {
  return &hello;
}
