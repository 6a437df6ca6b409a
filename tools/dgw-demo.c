/*
 * dgw-demo: the library's layers end to end, with no token and no network.
 *
 * Starts the mock gateway in this process on a free loopback port, connects
 * to it over ws:// with zlib-stream, and prints what arrives: HELLO, the
 * READY and dispatches after IDENTIFY (with their sequence numbers), and
 * the round trip of one heartbeat.  Exits 0 after the last scripted event,
 * 1 on any failure.  (The gateway session layer replaces the hand-written
 * IDENTIFY and heartbeat here once it lands.)
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <event2/event.h>

#include <dgw/dgw.h>

#include "inflate.h"
#include "mock.h"
#include "payload.h"
#include "ws.h"

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
     "\"message_id\":\"1300000000000000001\",\"emoji\":{\"name\":\"👍\"}}"},
};
#define SCRIPT_LEN (sizeof(script) / sizeof(script[0]))

struct demo {
  struct event_base *base;
  struct dgw_ws *ws;
  struct dgw_inflate *z;
  int64_t last_seq;
  int dispatches;
  struct timespec beat_sent;
  int status;
};

static void send_json(struct demo *d, const char *json) {
  if (dgw_ws_send_text(d->ws, json, strlen(json)) != DGW_OK) {
    fprintf(stderr, "dgw-demo: cannot send\n");
    d->status = 1;
    event_base_loopbreak(d->base);
  }
}

static void on_payload(struct demo *d, const char *json, size_t len) {
  struct dgw_envelope env;
  int rv = dgw_envelope_peek(json, len, &env);

  if (rv != DGW_OK) {
    fprintf(stderr, "dgw-demo: bad payload: %s\n", dgw_strerror(rv));
    d->status = 1;
    return;
  }
  switch (env.op) {
  case DGW_OP_HELLO:
    printf("<- op 10 HELLO d=%.*s\n-> op 2 IDENTIFY\n", (int)env.d_len, env.d);
    send_json(d, "{\"op\":2,\"d\":{\"token\":\"demo-token\",\"intents\":513,"
                 "\"properties\":{\"os\":\"linux\",\"browser\":\"dgw\","
                 "\"device\":\"dgw\"}}}");
    break;
  case DGW_OP_HEARTBEAT_ACK: {
    struct timespec now;
    double ms;

    clock_gettime(CLOCK_MONOTONIC, &now);
    ms = (double)(now.tv_sec - d->beat_sent.tv_sec) * 1e3 +
         (double)(now.tv_nsec - d->beat_sent.tv_nsec) / 1e6;
    printf("<- op 11 HEARTBEAT_ACK after %.3f ms\n", ms);
    break;
  }
  case DGW_OP_DISPATCH:
    d->last_seq = env.seq;
    printf("<- op 0 s=%-3lld %-22s %zu bytes of d\n", (long long)env.seq,
           env.name, env.d_len);
    if (strcmp(env.name, "READY") == 0) {
      char beat[64];

      snprintf(beat, sizeof(beat), "{\"op\":1,\"d\":%lld}", (long long)env.seq);
      printf("-> op 1 HEARTBEAT d=%lld\n", (long long)env.seq);
      clock_gettime(CLOCK_MONOTONIC, &d->beat_sent);
      send_json(d, beat);
    } else if (++d->dispatches == (int)SCRIPT_LEN) {
      printf("-> close 1000: all %d events received, last seq %lld\n",
             d->dispatches, (long long)d->last_seq);
      dgw_ws_close(d->ws, 1000, "demo done");
    }
    break;
  default:
    printf("<- op %d %s\n", env.op, dgw_op_name(env.op));
  }
  fflush(stdout);
}

static void on_open(struct dgw_ws *ws, void *ud) {
  (void)ws;
  (void)ud;
  printf("connected, WebSocket upgraded\n");
}

static void on_message(struct dgw_ws *ws, int binary, const uint8_t *data,
                       size_t len, void *ud) {
  struct demo *d = ud;
  const char *json = (const char *)data;
  size_t json_len = len;

  (void)ws;
  if (binary) {
    int rv = dgw_inflate_push(d->z, data, len, &json, &json_len);

    if (rv == DGW_ERR_AGAIN)
      return;
    if (rv != DGW_OK) {
      fprintf(stderr, "dgw-demo: %s\n", dgw_strerror(rv));
      d->status = 1;
      dgw_ws_close(ws, 4000, "bad zlib");
      return;
    }
  }
  on_payload(d, json, json_len);
}

static void on_close(struct dgw_ws *ws, int err, void *ud) {
  struct demo *d = ud;

  if (err != DGW_OK) {
    fprintf(stderr, "dgw-demo: connection ended: %s (%s)\n", dgw_strerror(err),
            dgw_ws_reason(ws));
    d->status = 1;
  } else {
    printf("closed cleanly\n");
  }
  event_base_loopbreak(d->base);
}

static void give_up(evutil_socket_t fd, short what, void *arg) {
  struct demo *d = arg;

  (void)fd;
  (void)what;
  fprintf(stderr, "dgw-demo: timed out\n");
  d->status = 1;
  event_base_loopbreak(d->base);
}

int main(void) {
  static const struct dgw_ws_callbacks cb = {on_open, on_message, on_close};
  struct demo d = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_ws_config wc = {0};
  struct dgw_mock *mock;
  struct event *timeout;
  struct timeval ten = {10, 0};
  char url[128];
  int err = 0;

  signal(SIGPIPE, SIG_IGN); /* a vanished peer must not kill us */
  d.base = event_base_new();
  mc.dispatch_interval_ms = 150;
  mock = dgw_mock_new(d.base, &mc, &err);
  if (d.base == NULL || mock == NULL) {
    fprintf(stderr, "dgw-demo: cannot start the mock gateway: %s\n",
            dgw_strerror(err));
    return 1;
  }
  for (size_t i = 0; i < SCRIPT_LEN; i++)
    dgw_mock_add_dispatch(mock, script[i].t, script[i].d);
  snprintf(url, sizeof(url),
           "ws://127.0.0.1:%u/?v=10&encoding=json&compress=zlib-stream",
           (unsigned)dgw_mock_port(mock));
  printf("dgw %s demo: mock gateway on %s\n", dgw_version(), url);

  d.z = dgw_inflate_new(0, &err);
  d.ws = dgw_ws_new(d.base, &wc, &cb, &d, &err);
  if (d.z == NULL || d.ws == NULL || dgw_ws_connect(d.ws, url) != DGW_OK) {
    fprintf(stderr, "dgw-demo: cannot connect: %s\n", dgw_strerror(err));
    return 1;
  }
  timeout = evtimer_new(d.base, give_up, &d);
  evtimer_add(timeout, &ten);
  event_base_dispatch(d.base);

  event_free(timeout);
  dgw_ws_free(d.ws);
  dgw_inflate_free(d.z);
  dgw_mock_free(mock);
  event_base_free(d.base);
  return d.status;
}
