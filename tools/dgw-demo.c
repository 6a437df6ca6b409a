/*
 * dgw-demo: the library end to end, with no token and no network.
 *
 * Starts the mock gateway in this process on a free loopback port with a
 * stream of realistic events, connects a dgw client to it with
 * zlib-stream, prints each event as it arrives, forces a reconnect halfway
 * (while more events happen), shows the session resume with the missed
 * events replayed, and ends with a summary that checks every sequence
 * number arrived exactly once.  Exits 0 when it did, 1 otherwise; Ctrl-C
 * stops it early.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <dgw/dgw.h>

#include "mock.h"

static const struct {
  const char *t;
  const char *d;
} script[] = {
    {"GUILD_CREATE", "{\"id\":\"81384788765712384\",\"name\":\"dgw lounge\","
                     "\"member_count\":3,\"unavailable\":false}"},
    {"MESSAGE_CREATE",
     "{\"id\":\"1300000000000000001\",\"channel_id\":\"81384788765712385\","
     "\"guild_id\":\"81384788765712384\",\"content\":\"hello, gateway\","
     "\"author\":{\"id\":\"80351110224678912\",\"username\":\"nelly\"}}"},
    {"TYPING_START", "{\"channel_id\":\"81384788765712385\",\"user_id\":"
                     "\"80351110224678912\",\"timestamp\":1764201600}"},
    {"PRESENCE_UPDATE", "{\"user\":{\"id\":\"80351110224678912\"},\"guild_id\":"
                        "\"81384788765712384\",\"status\":\"online\"}"},
    {"MESSAGE_REACTION_ADD",
     "{\"user_id\":\"80351110224678912\",\"channel_id\":\"81384788765712385\","
     "\"message_id\":\"1300000000000000001\",\"emoji\":{\"name\":\"+1\"}}"},
    {"MESSAGE_CREATE",
     "{\"id\":\"1300000000000000002\",\"channel_id\":\"81384788765712385\","
     "\"guild_id\":\"81384788765712384\",\"content\":\"still here?\","
     "\"author\":{\"id\":\"80351110224678912\",\"username\":\"nelly\"}}"},
    {"GUILD_MEMBER_ADD", "{\"guild_id\":\"81384788765712384\",\"user\":{\"id\":"
                         "\"80351110224678913\",\"username\":\"ash\"}}"},
    {"MESSAGE_CREATE",
     "{\"id\":\"1300000000000000003\",\"channel_id\":\"81384788765712385\","
     "\"guild_id\":\"81384788765712384\",\"content\":\"welcome, ash\","
     "\"author\":{\"id\":\"80351110224678912\",\"username\":\"nelly\"}}"},
};
#define SCRIPT_LEN ((int)(sizeof(script) / sizeof(script[0])))
#define RECONNECT_AFTER 4 /* force a reconnect after this many events */
#define MISSED 2          /* events that happen while we are away */

struct demo {
  struct event_base *base;
  struct dgw_mock *mock;
  struct dgw_client *client;
  int64_t last_seq;
  int in_order; /* every seq was last + 1 */
  int events;   /* dispatches other than READY/RESUMED */
  int reconnects;
  int resumes;
  int done;
  int status;
};

static void on_ready(struct dgw_gateway *gw, void *ud) {
  (void)ud;
  printf("READY     session %s\n", dgw_gateway_session_id(gw));
}

static void on_resumed(struct dgw_gateway *gw, void *ud) {
  struct demo *d = ud;

  d->resumes++;
  printf("RESUMED   session %s at seq %lld: nothing lost\n",
         dgw_gateway_session_id(gw), (long long)dgw_gateway_sequence(gw));
}

static void on_disconnect(struct dgw_gateway *gw,
                          const struct dgw_disconnect *info, void *ud) {
  struct demo *d = ud;

  (void)gw;
  d->reconnects++;
  printf("--        disconnected (%s); %s in %u ms\n", info->reason,
         info->will_resume ? "resuming" : "identifying",
         (unsigned)info->retry_in_ms);
  /* The world goes on while the shard is away: the gateway keeps these
   * and replays them after RESUME. */
  for (int i = 0; i < MISSED; i++)
    dgw_mock_session_add_dispatch(
        d->mock, NULL, "MESSAGE_CREATE",
        "{\"id\":\"1300000000000000099\",\"content\":\"said while you were "
        "away\",\"channel_id\":\"81384788765712385\"}");
}

static void on_dispatch(struct dgw_gateway *gw, const struct dgw_event *ev,
                        void *ud) {
  struct demo *d = ud;
  const char *name = dgw_event_name(ev);
  int64_t seq = dgw_event_seq(ev);
  size_t len;
  const char *data = dgw_event_data(ev, &len);

  if (seq != d->last_seq + 1)
    d->in_order = 0;
  d->last_seq = seq;
  if (strcmp(name, "READY") == 0 || strcmp(name, "RESUMED") == 0)
    return;
  d->events++;
  printf("s=%-3lld    %-22s %.60s%s\n", (long long)seq, name, data,
         len > 60 ? "..." : "");
  if (d->events == RECONNECT_AFTER) {
    printf("--        forcing a reconnect (as a zombied connection or op 7 "
           "would)\n");
    dgw_gateway_terminate(gw);
  }
  if (d->events == SCRIPT_LEN + MISSED) {
    printf("--        heartbeat latency %.3f ms\n", dgw_gateway_latency(gw));
    d->done = 1;
    dgw_client_stop(dgw_gateway_client(gw));
  }
}

static void on_state(struct dgw_gateway *gw, enum dgw_state from,
                     enum dgw_state to, void *ud) {
  struct demo *d = ud;

  (void)gw;
  (void)from;
  if (to == DGW_STATE_CLOSED || to == DGW_STATE_FATAL)
    event_base_loopbreak(d->base);
}

static void on_log(enum dgw_log_level level, const char *msg, void *ud) {
  (void)ud;
  if (level <= DGW_LOG_WARN)
    fprintf(stderr, "dgw-demo: [%s] %s\n", dgw_log_level_name(level), msg);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
  struct demo *d = arg;

  (void)fd;
  (void)what;
  fprintf(stderr, "dgw-demo: timed out\n");
  d->status = 1;
  event_base_loopbreak(d->base);
}

static void on_sigint(evutil_socket_t fd, short what, void *arg) {
  struct demo *d = arg;

  (void)fd;
  (void)what;
  printf("\ninterrupted\n");
  event_base_loopbreak(d->base);
}

int main(void) {
  struct demo d = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  struct event *timeout;
  struct event *sigint;
  struct timeval limit = {20, 0};
  char url[64];
  int err = 0;

  signal(SIGPIPE, SIG_IGN); /* a vanished peer must not kill us */
  d.in_order = 1;
  d.base = event_base_new();
  mc.dispatch_interval_ms = 120;
  mc.heartbeat_interval_ms = 400;
  d.mock = d.base != NULL ? dgw_mock_new(d.base, &mc, &err) : NULL;
  if (d.mock == NULL) {
    fprintf(stderr, "dgw-demo: cannot start the mock gateway: %s\n",
            dgw_strerror(err));
    return 1;
  }
  for (int i = 0; i < SCRIPT_LEN; i++)
    dgw_mock_add_dispatch(d.mock, script[i].t, script[i].d);
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u",
           (unsigned)dgw_mock_port(d.mock));
  printf("dgw %s demo: a mock Discord gateway on %s (no token, no "
         "network)\n",
         dgw_version(), url);

  opt = dgw_options_new();
  cb = dgw_callbacks_new();
  if (opt == NULL || cb == NULL ||
      dgw_options_set_token(opt, "demo-token") != DGW_OK ||
      dgw_options_set_gateway_url(opt, url) != DGW_OK ||
      dgw_options_set_intents(opt, 513) != DGW_OK) {
    fprintf(stderr, "dgw-demo: cannot set options\n");
    return 1;
  }
  dgw_options_set_log(opt, on_log, NULL, DGW_LOG_WARN);
  dgw_callbacks_set_on_ready(cb, on_ready);
  dgw_callbacks_set_on_resumed(cb, on_resumed);
  dgw_callbacks_set_on_disconnect(cb, on_disconnect);
  dgw_callbacks_set_on_dispatch(cb, on_dispatch);
  dgw_callbacks_set_on_state(cb, on_state);
  d.client = dgw_client_new(d.base, opt, cb, &d, &err);
  dgw_options_free(opt);
  dgw_callbacks_free(cb);
  if (d.client == NULL || dgw_client_start(d.client) != DGW_OK) {
    fprintf(stderr, "dgw-demo: cannot start the client: %s\n",
            dgw_strerror(err));
    return 1;
  }
  timeout = evtimer_new(d.base, on_timeout, &d);
  evtimer_add(timeout, &limit);
  sigint = evsignal_new(d.base, SIGINT, on_sigint, &d);
  event_add(sigint, NULL);

  event_base_dispatch(d.base);

  if (d.done) {
    printf("done: %d events, %d reconnect, %d resume, sequence 1..%lld %s\n",
           d.events, d.reconnects, d.resumes, (long long)d.last_seq,
           d.in_order ? "complete, each exactly once" : "BROKEN");
    if (!d.in_order)
      d.status = 1;
  } else if (d.status == 0) {
    d.status = 1;
  }
  event_free(timeout);
  event_free(sigint);
  dgw_client_free(d.client);
  dgw_mock_free(d.mock);
  event_base_free(d.base);
  return d.status;
}
