/*
 * A test plugin for the host's gateway_pause/release
 * (tests/test_plugin_hold.c): at the MESSAGE_CREATE with s == "at" (config) it
 * pauses the shard twice (the second is a no-op), then releases it twice from a
 * timer "ms" later, logging each result ("pause1 0", "paused 1", ...) for the
 * test to read.
 */
#include <stdlib.h>
#include <string.h>

#include <dgw/plugin.h>

struct holder {
  const struct dgw_plugin_host *host;
  struct dgw_gateway *gw;
  long long at;
  unsigned ms;
};

static void release_cb(void *arg) {
  struct holder *h = arg;
  const struct dgw_plugin_host *host = h->host;

  host->log(host, DGW_LOG_INFO, "release1 %d",
            host->gateway_release(host, h->gw));
  host->log(host, DGW_LOG_INFO, "paused after release %d",
            host->gateway_paused(host, h->gw));
  host->log(host, DGW_LOG_INFO, "release2 %d",
            host->gateway_release(host, h->gw));
}

static int holder_init(const struct dgw_plugin_host *host, const char *config,
                       void **state) {
  struct holder *h = calloc(1, sizeof(*h));
  const char *p;

  if (h == NULL || !DGW_PLUGIN_HOST_HAS(host, gateway_paused)) {
    free(h);
    return -1;
  }
  h->host = host;
  h->at = (p = strstr(config, "\"at\":")) != NULL ? atoll(p + 5) : 3;
  h->ms = (p = strstr(config, "\"ms\":")) != NULL ? (unsigned)atoi(p + 5) : 100;
  *state = h;
  return 0;
}

static void holder_dispatch(void *state, struct dgw_gateway *gw,
                            const struct dgw_event *ev) {
  struct holder *h = state;
  const struct dgw_plugin_host *host = h->host;

  host->log(host, DGW_LOG_INFO, "saw s %lld", (long long)host->event_seq(ev));
  if (host->event_seq(ev) != h->at)
    return;
  h->gw = gw;
  host->log(host, DGW_LOG_INFO, "release before pause %d",
            host->gateway_release(host, gw));
  host->log(host, DGW_LOG_INFO, "pause1 %d", host->gateway_pause(host, gw));
  host->log(host, DGW_LOG_INFO, "pause2 %d", host->gateway_pause(host, gw));
  host->log(host, DGW_LOG_INFO, "paused %d", host->gateway_paused(host, gw));
  host->log(host, DGW_LOG_INFO, "pause foreign %d",
            host->gateway_pause(host, (struct dgw_gateway *)h));
  host->timer_add(host, h->ms, 0, release_cb, h);
}

static void holder_fini(void *state) {
  free(state);
}

static const char *const holder_events[] = {"MESSAGE_CREATE", NULL};

static const struct dgw_plugin holder = {
    .abi = DGW_PLUGIN_ABI,
    .size = sizeof(struct dgw_plugin),
    .name = "holder",
    .events = holder_events,
    .init = holder_init,
    .on_dispatch = holder_dispatch,
    .fini = holder_fini,
};

const struct dgw_plugin *dgw_plugin_describe(void) {
  return &holder;
}
