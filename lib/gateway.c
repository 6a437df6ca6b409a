/*
 * One shard's gateway session, after hata's DiscordGateway.
 *
 *   connect ─ HELLO ─ IDENTIFY ─ READY ─ dispatches ...
 *           └─────── RESUME ── replayed dispatches ─ RESUMED ─ ...
 *
 * Every way a connection ends funnels into lost(): the close-code policy
 * (policy.c) says resume, start anew, or stop; the backoff says when.  A
 * connection we leave on purpose (op 7, op 9, zombie, terminate) is closed
 * with code 4000 in the background (so Discord keeps the session) while
 * the next one starts at once.
 *
 * Exactly-once delivery: the sequence survives reconnects; a dispatch
 * whose s is not above the last one delivered is a replay we already have
 * and is dropped.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>

#include <dgw/dgw.h>

#include "client.h"
#include "gateway.h"
#include "inflate.h"
#include "kokoro.h"
#include "payload.h"
#include "plugin.h"
#include "policy.h"
#include "requests.h"
#include "sender.h"
#include "url.h"
#include "ws.h"

/* dgw_event_json() of a `d` larger than this lets go of the client's
 * tokener afterwards, so one huge string does not stay allocated. */
#define TOKENER_KEEP_BYTES ((size_t)256 * 1024)

/* The close code for connections we leave but whose session we keep. */
#define RECONNECT_CLOSE_CODE 4000
/* After this many failed connections to resume_gateway_url in a row, try
 * the configured gateway URL (still resuming). */
#define RESUME_URL_MAX_FAILURES 3

struct dgw_event {
  struct dgw_client *client; /* counts parses */
  const char *name;
  int64_t seq;
  uint32_t shard;
  const char *data;
  size_t data_len;
  struct json_object *json; /* parsed on first use */
  int parsed;
};

struct dgw_gateway {
  struct dgw_client *client;
  uint32_t shard_id;
  enum dgw_state state;

  struct dgw_ws *ws;       /* the current connection */
  struct dgw_ws *retiring; /* a connection we left, closing quietly */
  struct dgw_inflate *z;
  struct dgw_kokoro *kokoro;
  struct event *timer;       /* reconnect wait, HELLO wait, op 9 wait */
  struct event *healthy;     /* resets the failure count */
  struct event *identify_ev; /* the identify queue's grant */

  int64_t seq;
  char *session_id;
  char *resume_url;
  int opened;        /* the current connection got past the upgrade */
  int identify_next; /* connect to the gateway URL and IDENTIFY */
  uint32_t failures; /* connections in a row that did not become READY */
  uint32_t resume_url_failures;
  uint32_t hello_interval;
  int in_lost;               /* lost() is telling the application */
  int retry_now;             /* terminate() asked for an immediate reconnect */
  int poison_strikes;        /* bad payloads with no event delivered between */
  struct dgw_sender *sender; /* rate limit and command queue */
  struct dgw_requests *requests; /* member and voice requests waiting */
  char *self_id;                 /* the bot's user id, from READY */
};

static void connect_now(struct dgw_gateway *gw);

/* ------------------------------------------------------------ helpers */

static void set_state(struct dgw_gateway *gw, enum dgw_state to) {
  enum dgw_state from = gw->state;
  struct dgw_client *c = gw->client;

  if (from == to)
    return;
  gw->state = to;
  client_log(c, DGW_LOG_DEBUG, "shard %u: %s -> %s", gw->shard_id,
             dgw_state_name(from), dgw_state_name(to));
  if (c->cb.on_state != NULL && !c->free_pending)
    c->cb.on_state(gw, from, to, c->user_data);
}

static void forget_session(struct dgw_gateway *gw) {
  free(gw->session_id);
  free(gw->resume_url);
  gw->session_id = NULL;
  gw->resume_url = NULL;
  gw->seq = 0;
  gw->resume_url_failures = 0;
}

static void arm(struct event *ev, uint32_t ms) {
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

  evtimer_add(ev, &tv);
}

/* Builds "<base>/?v=10&encoding=json[&compress=zlib-stream]". */
static int build_url(struct dgw_gateway *gw, const char *base, char *out,
                     size_t size) {
  const char *q = strchr(base, '?');
  size_t n = q != NULL ? (size_t)(q - base) : strlen(base);
  const char *slash;
  int len;

  /* A resume URL from READY arrives bare; a configured one may end in a
   * path.  Either way the query is ours, so drop one that came along. */
  slash = (n > 0 && base[n - 1] == '/') ? "" : "/";
  len = snprintf(out, size, "%.*s%s?v=%d&encoding=json%s", (int)n, base, slash,
                 DGW_API_VERSION,
                 gw->client->opt.compress ? "&compress=zlib-stream" : "");
  return len > 0 && (size_t)len < size ? DGW_OK : DGW_ERR_URL;
}

static int send_text(struct dgw_gateway *gw, const char *json, size_t len) {
  if (gw->ws == NULL)
    return DGW_ERR_STATE;
  return dgw_ws_send_text(gw->ws, json, len);
}

static int sender_write(void *arg, const char *json, size_t len) {
  return send_text(arg, json, len);
}

/* Retires the current connection: closes it with 4000 in the background
 * (it is freed when the close completes) so a new one can start now. */
static void retire_ws(struct dgw_gateway *gw, uint16_t code,
                      const char *reason) {
  if (gw->ws == NULL)
    return;
  dgw_kokoro_stop(gw->kokoro);
  if (dgw_ws_is_open(gw->ws) && dgw_ws_close(gw->ws, code, reason) == DGW_OK) {
    dgw_ws_free(gw->retiring); /* at most one in the background */
    gw->retiring = gw->ws;
  } else {
    dgw_ws_free(gw->ws);
  }
  gw->ws = NULL;
}

/* ------------------------------------------------------- losing it */

static int is_network_error(int err) {
  return err == DGW_ERR_DNS || err == DGW_ERR_CONNECT || err == DGW_ERR_TIMEOUT;
}

/*
 * The connection is gone (or being left): decide what comes next, tell the
 * application, and schedule it.  `wait_ms` >= 0 forces the delay (op 9);
 * -1 lets the backoff decide.
 */
static void lost(struct dgw_gateway *gw, int err, uint16_t code,
                 const char *reason, enum dgw_close_action action,
                 int64_t wait_ms) {
  struct dgw_client *c = gw->client;
  struct dgw_disconnect info;
  int offline = is_network_error(err) && !gw->opened;
  uint32_t delay;

  evtimer_del(gw->timer);
  evtimer_del(gw->healthy);
  dgw_kokoro_stop(gw->kokoro);
  client_cancel_identify(c, gw);       /* no longer waiting to IDENTIFY */
  dgw_sender_set_ready(gw->sender, 0); /* commands wait for the next READY */
  if (action == DGW_CLOSE_NEW_SESSION) {
    forget_session(gw);
    gw->identify_next = 1;
    /* Chunks and voice events of the old session will never come. */
    dgw_requests_fail_all(gw->requests, gw, DGW_ERR_SESSION_LOST);
  }
  if (gw->failures == 0)
    delay = 0; /* a healthy session that dropped: straight back */
  else
    delay = dgw_backoff_ms(gw->failures - 1, c->opt.backoff_base_ms,
                           c->opt.backoff_max_ms, dgw_random01());
  /* A forced wait (op 9) never shortens the backoff: a gateway that keeps
   * refusing IDENTIFY must not get one every few seconds for ever, or the
   * daily session-start budget (and then the token) is gone. */
  if (wait_ms >= 0 && (uint32_t)wait_ms > delay)
    delay = (uint32_t)wait_ms;
  gw->failures++;

  memset(&info, 0, sizeof(info));
  info.error = err;
  info.close_code = code;
  info.reason = reason;
  info.action = action;
  info.will_resume =
      action != DGW_CLOSE_FATAL && gw->session_id != NULL && !gw->identify_next;
  info.retry_in_ms = action == DGW_CLOSE_FATAL ? 0 : delay;
  {
    char code_text[64] = "";

    /* The reason already says "peer closed with code N: TEXT"; add what
     * the code means to Discord when the peer's TEXT did not say it. */
    if (code && strstr(reason, dgw_close_code_name(code)) == NULL)
      snprintf(code_text, sizeof(code_text), "; %u means %s", (unsigned)code,
               dgw_close_code_name(code));
    client_log(c, action == DGW_CLOSE_FATAL ? DGW_LOG_ERROR : DGW_LOG_INFO,
               "shard %u: disconnected (%s%s), %s in %u ms", gw->shard_id,
               reason, code_text,
               action == DGW_CLOSE_FATAL ? "fatal, not retrying"
               : info.will_resume        ? "resuming"
                                         : "identifying",
               (unsigned)info.retry_in_ms);
  }
  gw->retry_now = 0;
  gw->in_lost++;
  if (c->cb.on_disconnect != NULL && !c->free_pending)
    c->cb.on_disconnect(gw, &info, c->user_data);
  if (!c->free_pending)
    plugins_lifecycle(c->plugins, gw, DGW_LIFECYCLE_DISCONNECTED, &info);
  gw->in_lost--;
  if (c->free_pending || gw->state == DGW_STATE_CLOSED ||
      gw->state == DGW_STATE_CLOSING)
    return;          /* the application closed or freed us from the callback */
  if (gw->retry_now) /* dgw_gateway_terminate() from the callback */
    delay = 0;

  if (action == DGW_CLOSE_FATAL) {
    forget_session(gw);
    set_state(gw, DGW_STATE_FATAL);
    dgw_sender_fail_all(gw->sender, DGW_ERR_SESSION_LOST);
    dgw_requests_fail_all(gw->requests, gw, DGW_ERR_SESSION_LOST);
    if (c->cb.on_fatal != NULL && !c->free_pending)
      c->cb.on_fatal(gw, code, dgw_close_code_name(code), c->user_data);
    if (!c->free_pending)
      plugins_lifecycle(c->plugins, gw, DGW_LIFECYCLE_FATAL, &info);
    return;
  }
  set_state(gw, offline ? DGW_STATE_OFFLINE : DGW_STATE_BACKOFF);
  if (gw->state == DGW_STATE_OFFLINE && client_shard_offline(c, gw))
    return; /* parked: the client's probe speaks for us */
  if (gw->state == DGW_STATE_OFFLINE || gw->state == DGW_STATE_BACKOFF)
    arm(gw->timer, delay);
}

void gateway_park(struct dgw_gateway *gw) {
  if (gw->state == DGW_STATE_OFFLINE)
    evtimer_del(gw->timer);
}

void gateway_relaunch(struct dgw_gateway *gw) {
  if (gw->state != DGW_STATE_OFFLINE && gw->state != DGW_STATE_BACKOFF)
    return;
  evtimer_del(gw->timer);
  gw->failures = 0; /* the network was the problem, not this shard */
  connect_now(gw);
}

/* We leave the current connection on purpose but keep the session. */
static void leave_and_resume(struct dgw_gateway *gw, int err,
                             const char *reason) {
  retire_ws(gw, RECONNECT_CLOSE_CODE, "dgw: reconnecting");
  lost(gw, err, 0, reason, DGW_CLOSE_RESUME, -1);
}

/* ----------------------------------------------------------- sending */

static void heartbeat(void *arg) {
  struct dgw_gateway *gw = arg;
  char buf[48];
  int n;

  if (gw->seq > 0)
    n = snprintf(buf, sizeof(buf), "{\"op\":1,\"d\":%lld}", (long long)gw->seq);
  else
    n = snprintf(buf, sizeof(buf), "{\"op\":1,\"d\":null}");
  if (dgw_sender_send_now(gw->sender, DGW_SEND_HEARTBEAT, buf, (size_t)n) ==
      DGW_ERR_QUEUE_FULL)
    client_log(gw->client, DGW_LOG_WARN,
               "shard %u: heartbeat skipped: send budget exhausted",
               gw->shard_id);
}

static void zombie(void *arg) {
  struct dgw_gateway *gw = arg;

  leave_and_resume(gw, DGW_ERR_TIMEOUT,
                   "no heartbeat ACK before the next beat: zombied "
                   "connection");
}

static int send_object(struct dgw_gateway *gw, int op, struct json_object *d) {
  char *text = NULL;
  size_t len = 0;
  int rv = dgw_payload_encode(op, d, DGW_PAYLOAD_MAX_SEND, &text, &len);

  if (rv == DGW_OK) /* IDENTIFY, RESUME: never behind commands */
    rv = dgw_sender_send_now(gw->sender, DGW_SEND_CONTROL, text, len);
  if (text != NULL) {
    /* IDENTIFY and RESUME carry the token: wipe our copy of the text (the
     * socket buffers and json-c's own copies are beyond our reach). */
    OPENSSL_cleanse(text, len);
    free(text);
  }
  return rv;
}

static void add_string(struct json_object *o, const char *key,
                       const char *value) {
  json_object_object_add(o, key, json_object_new_string(value));
}

void gateway_identify_now(struct dgw_gateway *gw) {
  const struct dgw_options *opt = &gw->client->opt;
  struct json_object *d;
  struct json_object *props;
  struct json_object *shard;
  int rv;

  if (gw->state != DGW_STATE_HELLO || gw->ws == NULL)
    return; /* the connection went away while we waited */
  d = json_object_new_object();
  props = json_object_new_object();
  shard = json_object_new_array();
  add_string(d, "token", opt->token);
  add_string(props, "os", "linux");
  add_string(props, "browser", "dgw");
  add_string(props, "device", "dgw");
  json_object_object_add(d, "properties", props);
  json_object_object_add(d, "intents",
                         json_object_new_int64((int64_t)opt->intents));
  json_object_array_add(shard, json_object_new_int64(gw->shard_id));
  json_object_array_add(shard, json_object_new_int64(opt->shard_total));
  json_object_object_add(d, "shard", shard);
  if (opt->large_threshold > 0)
    json_object_object_add(d, "large_threshold",
                           json_object_new_int(opt->large_threshold));
  if (opt->presence_json != NULL)
    json_object_object_add(d, "presence",
                           json_tokener_parse(opt->presence_json));
  rv = send_object(gw, DGW_OP_IDENTIFY, d);
  json_object_put(d);
  if (rv != DGW_OK) {
    client_log(gw->client, DGW_LOG_ERROR, "shard %u: cannot send IDENTIFY: %s",
               gw->shard_id, dgw_strerror(rv));
    leave_and_resume(gw, rv, "IDENTIFY could not be sent");
    return;
  }
  gw->identify_next = 0;
  set_state(gw, DGW_STATE_IDENTIFYING);
}

static void send_resume(struct dgw_gateway *gw) {
  struct json_object *d = json_object_new_object();
  int rv;

  add_string(d, "token", gw->client->opt.token);
  add_string(d, "session_id", gw->session_id);
  json_object_object_add(d, "seq", json_object_new_int64(gw->seq));
  rv = send_object(gw, DGW_OP_RESUME, d);
  json_object_put(d);
  if (rv != DGW_OK) {
    leave_and_resume(gw, rv, "RESUME could not be sent");
    return;
  }
  set_state(gw, DGW_STATE_RESUMING);
}

/* --------------------------------------------------------- receiving */

static void on_hello(struct dgw_gateway *gw, const struct dgw_envelope *env) {
  struct json_object *d = dgw_payload_parse(env->d, env->d_len, NULL);
  struct json_object *iv = NULL;
  int64_t interval = 0;

  if (d != NULL && json_object_object_get_ex(d, "heartbeat_interval", &iv) &&
      json_object_is_type(iv, json_type_int))
    interval = json_object_get_int64(iv);
  json_object_put(d);
  if (gw->state != DGW_STATE_HELLO)
    return; /* a second HELLO changes nothing */
  /* Bounds against a broken or hostile gateway: no beat storms, and no
   * interval so long the session would time out anyway. */
  if (interval < 50 || interval > 3600000) {
    leave_and_resume(gw, DGW_ERR_PROTOCOL,
                     "HELLO without a valid heartbeat_interval");
    return;
  }
  evtimer_del(gw->timer); /* the HELLO wait */
  gw->hello_interval = (uint32_t)interval;
  dgw_sender_set_heartbeat_interval(gw->sender, (uint32_t)interval);
  dgw_kokoro_start(gw->kokoro, (uint32_t)interval, dgw_random01());
  if (gw->session_id != NULL && !gw->identify_next)
    send_resume(gw);
  else
    client_request_identify(gw->client, gw);
}

static void on_invalid_session(struct dgw_gateway *gw,
                               const struct dgw_envelope *env) {
  const struct dgw_options *opt = &gw->client->opt;
  int resumable = env->d_len == 4 && memcmp(env->d, "true", 4) == 0;
  uint32_t wait;

  if (resumable && gw->session_id != NULL) {
    leave_and_resume(gw, DGW_OK, "invalid session (op 9), resumable");
    return;
  }
  /* Start over on the gateway URL, after the random wait Discord asks for
   * so that identify storms spread out. */
  wait =
      dgw_uniform_ms(opt->invalid_min_ms, opt->invalid_max_ms, dgw_random01());
  retire_ws(gw, RECONNECT_CLOSE_CODE, "dgw: invalid session");
  lost(gw, DGW_OK, 0, "invalid session (op 9), not resumable",
       DGW_CLOSE_NEW_SESSION, wait);
}

/* Takes session_id and resume_gateway_url from READY's d. */
/* A session id we will send back and log: a short token of letters,
 * digits, '-' and '_' (Discord's are 32 hex digits). */
static int session_id_ok(const char *s) {
  size_t n = 0;

  for (; s[n] != '\0'; n++)
    if (n >= 128 ||
        !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
          (s[n] >= '0' && s[n] <= '9') || s[n] == '-' || s[n] == '_'))
      return 0;
  return n > 0;
}

/* A resume URL we will send the token to: well formed, and no weaker than
 * the configured URL (never ws:// when we identified over wss://). */
static int resume_url_ok(struct dgw_gateway *gw, const char *url) {
  struct dgw_url parsed;
  struct dgw_url configured;

  if (dgw_url_parse(url, &parsed, NULL, 0) != DGW_OK ||
      dgw_url_parse(gw->client->opt.gateway_url, &configured, NULL, 0) !=
          DGW_OK)
    return 0;
  return parsed.tls || !configured.tls;
}

static void take_ready(struct dgw_gateway *gw, const char *d, size_t len) {
  struct json_object *obj = dgw_payload_parse(d, len, NULL);
  struct json_object *v;

  forget_session(gw);
  gw->seq = 0; /* set again by the caller */
  if (obj != NULL && json_object_object_get_ex(obj, "user", &v)) {
    struct json_object *id;

    if (json_object_object_get_ex(v, "id", &id) &&
        json_object_is_type(id, json_type_string)) {
      free(gw->self_id);
      gw->self_id = strdup(json_object_get_string(id));
    }
  }
  if (obj != NULL && json_object_object_get_ex(obj, "session_id", &v) &&
      json_object_is_type(v, json_type_string)) {
    if (session_id_ok(json_object_get_string(v)))
      gw->session_id = strdup(json_object_get_string(v));
    else
      client_log(gw->client, DGW_LOG_WARN,
                 "shard %u: READY has a malformed session_id; this session "
                 "cannot be resumed",
                 gw->shard_id);
  }
  if (obj != NULL && json_object_object_get_ex(obj, "resume_gateway_url", &v) &&
      json_object_is_type(v, json_type_string)) {
    if (resume_url_ok(gw, json_object_get_string(v)))
      gw->resume_url = strdup(json_object_get_string(v));
    else
      client_log(gw->client, DGW_LOG_WARN,
                 "shard %u: READY's resume_gateway_url is malformed or not "
                 "wss://; resuming on the configured URL instead",
                 gw->shard_id);
  }
  json_object_put(obj);
}
void gateway_grant_identify(struct dgw_gateway *gw) {
  event_active(gw->identify_ev, EV_TIMEOUT, 0);
}

static void identify_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_gateway *gw = arg;
  struct dgw_client *c = gw->client;

  (void)fd;
  (void)what;
  client_enter(c);
  gateway_identify_now(gw);
  client_leave(c);
}

static void healthy_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_gateway *gw = arg;

  (void)fd;
  (void)what;
  gw->failures = 0;
}

static void on_dispatch(struct dgw_gateway *gw,
                        const struct dgw_envelope *env) {
  struct dgw_client *c = gw->client;
  const struct plugin_route *route;
  struct dgw_event ev;
  int ready = 0;
  int resumed = 0;

  if (gw->state == DGW_STATE_CLOSING || gw->state == DGW_STATE_CLOSED)
    return; /* after dgw_gateway_close() nothing more is delivered */
  if (!env->has_name) {
    client_log(c, DGW_LOG_WARN, "shard %u: dispatch without t dropped",
               gw->shard_id);
    return;
  }
  if (env->has_seq) {
    if (env->seq == INT64_MAX) {
      /* Nothing could follow it: a broken gateway, not a sequence. */
      client_log(c, DGW_LOG_WARN, "shard %u: dispatch with s=INT64_MAX",
                 gw->shard_id);
      return;
    }
    if (env->seq <= gw->seq && strcmp(env->name, "READY") != 0) {
      client_log(c, DGW_LOG_DEBUG, "shard %u: s=%lld already delivered",
                 gw->shard_id, (long long)env->seq);
      return;
    }
    if (env->seq - 1 > gw->seq && gw->seq > 0)
      client_log(c, DGW_LOG_WARN, "shard %u: sequence jumped %lld -> %lld",
                 gw->shard_id, (long long)gw->seq, (long long)env->seq);
  }
  if (strcmp(env->name, "READY") == 0) {
    take_ready(gw, env->d, env->d_len);
    ready = 1;
  } else if (strcmp(env->name, "RESUMED") == 0) {
    resumed = 1;
  }
  if (env->has_seq)
    gw->seq = env->seq;
  if (ready || resumed) {
    struct dgw_ws *ws = gw->ws;

    gw->resume_url_failures = 0;
    set_state(gw, DGW_STATE_READY);
    /* on_state may have closed, terminated or freed us. */
    if (c->free_pending || gw->state != DGW_STATE_READY || gw->ws != ws)
      return;
    arm(gw->healthy, c->opt.healthy_ms);
    dgw_sender_set_ready(gw->sender, 1); /* queued commands go out now */
    client_log(c, DGW_LOG_INFO, "shard %u: %s (session %s, seq %lld)",
               gw->shard_id, ready ? "ready" : "resumed",
               gw->session_id != NULL ? gw->session_id : "?",
               (long long)gw->seq);
    if (ready && c->cb.on_ready != NULL && !c->free_pending)
      c->cb.on_ready(gw, c->user_data);
    if (resumed && c->cb.on_resumed != NULL && !c->free_pending)
      c->cb.on_resumed(gw, c->user_data);
    if (gw->state != DGW_STATE_READY || gw->ws != ws)
      return; /* closed or terminated from on_ready / on_resumed */
    plugins_lifecycle(c->plugins, gw,
                      ready ? DGW_LIFECYCLE_READY : DGW_LIFECYCLE_RESUMED,
                      NULL);
    if (gw->state != DGW_STATE_READY || gw->ws != ws)
      return; /* ... or from a plugin's lifecycle hook */
  }
  if (!ready && !resumed)
    gw->poison_strikes = 0; /* progress */
  if (c->free_pending)
    return;
  c->stats.dispatches++;
  /* Nobody wants it (no on_dispatch, handler, plugin or request waiting
   * for an answer): dropped here, right after the peek, never parsed. */
  route = plugins_route(c->plugins, env->name);
  if (c->cb.on_dispatch == NULL && route == NULL &&
      dgw_requests_pending(gw->requests) == 0) {
    c->stats.dropped++;
    return;
  }
  ev.client = c;
  ev.name = env->name;
  ev.seq = env->seq;
  ev.shard = gw->shard_id;
  ev.data = env->d != NULL ? env->d : "null";
  ev.data_len = env->d != NULL ? env->d_len : 4;
  ev.json = NULL;
  ev.parsed = 0;
  dgw_requests_observe(gw->requests, gw, &ev, gw->self_id);
  if (c->cb.on_dispatch != NULL && !c->free_pending)
    c->cb.on_dispatch(gw, &ev, c->user_data);
  if (route != NULL && !c->free_pending)
    plugins_dispatch(c->plugins, route, gw, &ev);
  json_object_put(ev.json);
}

/*
 * A payload the envelope peek refused.  When json-c can still read it as a
 * dispatch (an event name over 127 bytes, nesting past our depth limit),
 * skip that one event, with a warning, but keep its sequence number:
 * resuming would only get it replayed, and the shard would loop on it.
 * Anything else is a protocol error that resumes; if the shard keeps
 * dying without delivering a single event in between, the stream itself
 * is poisoned and a new session is the only way forward.
 */
static void bad_payload(struct dgw_gateway *gw, const char *json, size_t len,
                        int err, const char *what) {
  struct json_tokener *tok = json_tokener_new_ex(4096);
  struct json_object *root = NULL;
  struct json_object *op;
  struct json_object *s;

  if (tok != NULL && json != NULL && len < (size_t)INT32_MAX) {
    root = json_tokener_parse_ex(tok, json, (int)len);
    if (json_tokener_get_error(tok) != json_tokener_success) {
      json_object_put(root);
      root = NULL;
    }
  }
  json_tokener_free(tok);
  if (root != NULL && json_object_object_get_ex(root, "op", &op) &&
      json_object_get_int(op) == DGW_OP_DISPATCH &&
      json_object_object_get_ex(root, "s", &s) &&
      json_object_is_type(s, json_type_int) &&
      json_object_get_int64(s) > gw->seq &&
      json_object_get_int64(s) < INT64_MAX) {
    gw->seq = json_object_get_int64(s);
    client_log(gw->client, DGW_LOG_WARN,
               "shard %u: dispatch s=%lld dropped: beyond dgw's limits "
               "(event name over %d bytes or nesting over %d levels)",
               gw->shard_id, (long long)gw->seq, DGW_EVENT_NAME_MAX,
               DGW_JSON_MAX_DEPTH);
    json_object_put(root);
    return;
  }
  json_object_put(root);
  /* Reset by every ordinary dispatch delivered: strikes in a row mean no
   * progress between them (RESUMED alone is no progress). */
  if (++gw->poison_strikes >= 3) {
    client_log(gw->client, DGW_LOG_ERROR,
               "shard %u: %s three times with no event in between (s=%lld); "
               "starting a new session",
               gw->shard_id, what, (long long)gw->seq);
    gw->poison_strikes = 0;
    retire_ws(gw, RECONNECT_CLOSE_CODE, "dgw: unreadable stream");
    lost(gw, err, 0, what, DGW_CLOSE_NEW_SESSION, -1);
    return;
  }
  leave_and_resume(gw, err, what);
}

/* One whole gateway payload (JSON text). */
static void on_payload(struct dgw_gateway *gw, const char *json, size_t len) {
  struct dgw_envelope env;
  int rv = dgw_envelope_peek(json, len, &env);

  if (rv != DGW_OK) {
    bad_payload(gw, json, len, DGW_ERR_JSON,
                "a payload that is not gateway JSON");
    return;
  }
  switch (env.op) {
  case DGW_OP_DISPATCH:
    on_dispatch(gw, &env);
    break;
  case DGW_OP_HEARTBEAT:
    dgw_kokoro_beat_now(gw->kokoro);
    break;
  case DGW_OP_HEARTBEAT_ACK:
    dgw_kokoro_ack(gw->kokoro);
    break;
  case DGW_OP_HELLO:
    on_hello(gw, &env);
    break;
  case DGW_OP_RECONNECT:
    leave_and_resume(gw, DGW_OK, "the gateway asked to reconnect (op 7)");
    break;
  case DGW_OP_INVALID_SESSION:
    on_invalid_session(gw, &env);
    break;
  default:
    client_log(gw->client, DGW_LOG_DEBUG, "shard %u: op %d ignored",
               gw->shard_id, env.op);
  }
}

/* ------------------------------------------------------- ws callbacks */

static void ws_open(struct dgw_ws *ws, void *arg) {
  struct dgw_gateway *gw = arg;
  struct dgw_client *c = gw->client;

  if (ws != gw->ws)
    return;
  client_enter(c);
  gw->opened = 1;
  client_shard_online(c, gw); /* the network is there */
  dgw_inflate_reset(gw->z);
  dgw_sender_new_connection(gw->sender); /* the budget is per connection */
  set_state(gw, DGW_STATE_HELLO);
  /* HELLO must follow promptly; reuse the connect timeout for it. */
  if (gw->state == DGW_STATE_HELLO)
    arm(gw->timer, c->opt.connect_timeout_ms);
  client_leave(c);
}

static void ws_message(struct dgw_ws *ws, int binary, const uint8_t *data,
                       size_t len, void *arg) {
  struct dgw_gateway *gw = arg;
  struct dgw_client *c = gw->client;
  const char *json = (const char *)data;
  size_t json_len = len;
  int rv = DGW_OK;

  if (ws != gw->ws)
    return; /* a retiring connection: its events will be replayed */
  client_enter(c);
  if (binary)
    rv = dgw_inflate_push(gw->z, data, len, &json, &json_len);
  if (rv == DGW_OK)
    on_payload(gw, json, json_len);
  else if (rv != DGW_ERR_AGAIN)
    bad_payload(gw, NULL, 0, rv,
                rv == DGW_ERR_INFLATE_LIMIT
                    ? "a payload inflated past the size cap"
                    : "corrupt zlib stream");
  /* on_payload may have freed or replaced everything but the shard. */
  if (binary && rv == DGW_OK && !c->free_pending)
    dgw_inflate_done(gw->z);
  /* A burst of messages must not starve the heartbeat: a beat that fell
   * due while we were busy goes out now.  After the message, so that an
   * ACK in it counts first. */
  if (gw->ws == ws && !c->free_pending)
    dgw_kokoro_poll(gw->kokoro);
  client_leave(c);
}

static void ws_close(struct dgw_ws *ws, int err, void *arg) {
  struct dgw_gateway *gw = arg;
  struct dgw_client *c = gw->client;
  uint16_t code = dgw_ws_close_code(ws);
  char reason[300];

  if (ws == gw->retiring) {
    dgw_ws_free(ws);
    gw->retiring = NULL;
    return;
  }
  if (ws != gw->ws)
    return;
  client_enter(c);
  snprintf(reason, sizeof(reason), "%s", dgw_ws_reason(ws));
  dgw_ws_free(ws);
  gw->ws = NULL;
  if (gw->state == DGW_STATE_CLOSING) {
    dgw_kokoro_stop(gw->kokoro);
    set_state(gw, DGW_STATE_CLOSED);
  } else {
    enum dgw_close_action action =
        err == DGW_ERR_CLOSED ? dgw_close_code_action(code) : DGW_CLOSE_RESUME;

    if (gw->session_id != NULL && !gw->identify_next && !gw->opened)
      gw->resume_url_failures++;
    lost(gw, err, err == DGW_ERR_CLOSED ? code : 0, reason, action, -1);
  }
  client_leave(c);
}

static const struct dgw_ws_callbacks ws_callbacks = {ws_open, ws_message,
                                                     ws_close};

/* ------------------------------------------------------------- timers */

static void connect_now(struct dgw_gateway *gw) {
  struct dgw_client *c = gw->client;
  struct dgw_ws_config cfg;
  const char *base = c->opt.gateway_url;
  char url[DGW_URL_MAX + 64];
  int err = DGW_OK;

  if (gw->session_id != NULL && !gw->identify_next && gw->resume_url != NULL &&
      gw->resume_url_failures < RESUME_URL_MAX_FAILURES)
    base = gw->resume_url;
  memset(&cfg, 0, sizeof(cfg));
  cfg.ssl_ctx = c->ssl;
  cfg.resolver = c->resolver;
  cfg.max_message = c->opt.max_payload;
  cfg.connect_timeout_ms = c->opt.connect_timeout_ms;
  cfg.close_timeout_ms = c->opt.close_timeout_ms;
  cfg.log = c->opt.log_level >= DGW_LOG_DEBUG ? c->opt.log : NULL;
  cfg.log_user_data = c->opt.log_user_data;

  gw->opened = 0;
  set_state(gw, DGW_STATE_CONNECTING);
  if (c->cb.on_connecting != NULL && !c->free_pending)
    c->cb.on_connecting(gw, c->user_data);
  if (c->free_pending || gw->state != DGW_STATE_CONNECTING)
    return;
  if (build_url(gw, base, url, sizeof(url)) == DGW_OK)
    gw->ws = dgw_ws_new(c->base, &cfg, &ws_callbacks, gw, &err);
  else
    err = DGW_ERR_URL;
  if (gw->ws != NULL)
    err = dgw_ws_connect(gw->ws, url);
  if (err != DGW_OK) {
    /* Only a resume URL from the gateway can be malformed: the configured
     * one was checked when it was set.  Fall back to it. */
    client_log(c, DGW_LOG_WARN, "shard %u: cannot connect to %s: %s",
               gw->shard_id, base, dgw_strerror(err));
    dgw_ws_free(gw->ws);
    gw->ws = NULL;
    if (base == gw->resume_url)
      gw->resume_url_failures = RESUME_URL_MAX_FAILURES;
    lost(gw, err, 0, "the connection could not be started", DGW_CLOSE_RESUME,
         -1);
    return;
  }
  client_log(c, DGW_LOG_DEBUG, "shard %u: connecting to %s", gw->shard_id, url);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_gateway *gw = arg;
  struct dgw_client *c = gw->client;

  (void)fd;
  (void)what;
  client_enter(c);
  if (gw->state == DGW_STATE_HELLO)
    leave_and_resume(gw, DGW_ERR_TIMEOUT, "no HELLO from the gateway");
  else if (gw->state == DGW_STATE_BACKOFF || gw->state == DGW_STATE_OFFLINE)
    connect_now(gw);
  client_leave(c);
}

static void kokoro_beat(void *arg) {
  struct dgw_gateway *gw = arg;

  heartbeat(gw);
}

/* Kokoro's timer fires outside any other entry point: bracket it. */
static void kokoro_zombie(void *arg) {
  struct dgw_gateway *gw = arg;
  struct dgw_client *c = gw->client;

  client_enter(c);
  zombie(gw);
  client_leave(c);
}

/* ------------------------------------------------------------ public */

struct dgw_gateway *gateway_new(struct dgw_client *c, uint32_t shard_id) {
  static const struct dgw_kokoro_callbacks kcb = {kokoro_beat, kokoro_zombie};
  struct dgw_gateway *gw = calloc(1, sizeof(*gw));
  int err;

  if (gw == NULL)
    return NULL;
  gw->client = c;
  gw->shard_id = shard_id;
  gw->z = dgw_inflate_new(c->opt.max_payload, &err);
  gw->kokoro = dgw_kokoro_new(c->base, &kcb, gw);
  gw->timer = evtimer_new(c->base, timer_cb, gw);
  gw->healthy = evtimer_new(c->base, healthy_cb, gw);
  gw->identify_ev = event_new(c->base, -1, 0, identify_cb, gw);
  gw->sender =
      dgw_sender_new(c->base, c->opt.send_budget, c->opt.send_window_ms, 0,
                     c->opt.send_queue, sender_write, gw, &err);
  gw->requests = dgw_requests_new();
  if (gw->z == NULL || gw->kokoro == NULL || gw->timer == NULL ||
      gw->healthy == NULL || gw->identify_ev == NULL || gw->sender == NULL ||
      gw->requests == NULL) {
    gateway_free(gw);
    return NULL;
  }
  return gw;
}

void gateway_free(struct dgw_gateway *gw) {
  if (gw == NULL)
    return;
  dgw_ws_free(gw->ws);
  dgw_ws_free(gw->retiring);
  dgw_inflate_free(gw->z);
  dgw_kokoro_free(gw->kokoro);
  if (gw->timer != NULL)
    event_free(gw->timer);
  if (gw->healthy != NULL)
    event_free(gw->healthy);
  if (gw->identify_ev != NULL)
    event_free(gw->identify_ev);
  dgw_sender_free(gw->sender);
  dgw_requests_free(gw->requests);
  forget_session(gw);
  free(gw->self_id);
  free(gw);
}

int gateway_command(struct dgw_gateway *gw, const char *json, size_t len,
                    dgw_send_done_fn done, void *user_data) {
  if (json == NULL || len == 0)
    return DGW_ERR_INVALID_ARGUMENT;
  if (gw->state == DGW_STATE_CLOSED || gw->state == DGW_STATE_CLOSING ||
      gw->state == DGW_STATE_FATAL)
    return DGW_ERR_STATE;
  return dgw_sender_command(gw->sender, json, len, done, user_data);
}

struct dgw_requests *gateway_requests(struct dgw_gateway *gw) {
  return gw->requests;
}

size_t dgw_gateway_queued(const struct dgw_gateway *gw) {
  return dgw_sender_queued(gw->sender);
}

void gateway_start(struct dgw_gateway *gw) {
  if (gw->state == DGW_STATE_IDLE)
    connect_now(gw);
}

const char *dgw_state_name(enum dgw_state state) {
  static const char *const names[] = {
      "idle",    "connecting", "hello",   "identifying", "resuming", "ready",
      "backoff", "offline",    "closing", "closed",      "fatal",
  };

  if ((unsigned)state < sizeof(names) / sizeof(names[0]))
    return names[state];
  return "?";
}

struct dgw_client *dgw_gateway_client(struct dgw_gateway *gw) {
  return gw->client;
}

enum dgw_state dgw_gateway_state(const struct dgw_gateway *gw) {
  return gw->state;
}

uint32_t dgw_gateway_shard_id(const struct dgw_gateway *gw) {
  return gw->shard_id;
}

int64_t dgw_gateway_sequence(const struct dgw_gateway *gw) {
  return gw->seq;
}

const char *dgw_gateway_session_id(const struct dgw_gateway *gw) {
  return gw->session_id;
}

const char *dgw_gateway_resume_url(const struct dgw_gateway *gw) {
  return gw->resume_url;
}

double dgw_gateway_latency(const struct dgw_gateway *gw) {
  double ms = dgw_kokoro_latency_ms(gw->kokoro);

  return ms < 0 ? DGW_LATENCY_UNKNOWN : ms;
}

int dgw_gateway_send_json(struct dgw_gateway *gw, const char *json,
                          size_t len) {
  struct dgw_envelope env;

  if (gw == NULL || json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (len > DGW_PAYLOAD_MAX_SEND)
    return DGW_ERR_PAYLOAD_TOO_LARGE;
  if (dgw_envelope_peek(json, len, &env) != DGW_OK)
    return DGW_ERR_JSON;
  return gateway_command(gw, json, len, NULL, NULL);
}

/* Ends the shard's connection for good.  With `keep_session` the close
 * code is 4000, which Discord leaves resumable, and the session stays in
 * memory for dgw_client_save_sessions(); otherwise 1000 ends it. */
static int close_shard(struct dgw_gateway *gw, int keep_session) {
  struct dgw_client *c;

  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (gw->state == DGW_STATE_CLOSED || gw->state == DGW_STATE_CLOSING)
    return DGW_ERR_STATE;
  c = gw->client;
  client_enter(c);
  evtimer_del(gw->timer);
  evtimer_del(gw->healthy);
  dgw_kokoro_stop(gw->kokoro);
  client_cancel_identify(c, gw);
  client_shard_closed(c, gw);
  /* Code 1000 ends the session on Discord's side too. */
  if (!keep_session)
    forget_session(gw);
  dgw_sender_set_ready(gw->sender, 0);
  dgw_sender_fail_all(gw->sender, DGW_ERR_SESSION_LOST);
  dgw_requests_fail_all(gw->requests, gw, DGW_ERR_SESSION_LOST);
  if (gw->ws != NULL && dgw_ws_is_open(gw->ws) &&
      dgw_ws_close(gw->ws, keep_session ? RECONNECT_CLOSE_CODE : 1000,
                   keep_session ? "dgw: restarting" : "dgw: closing") ==
          DGW_OK) {
    set_state(gw, DGW_STATE_CLOSING);
  } else {
    dgw_ws_free(gw->ws);
    gw->ws = NULL;
    set_state(gw, DGW_STATE_CLOSED);
  }
  client_leave(c);
  return DGW_OK;
}

int dgw_gateway_close(struct dgw_gateway *gw) {
  return close_shard(gw, 0);
}

int gateway_close_keep_session(struct dgw_gateway *gw) {
  return close_shard(gw, 1);
}

int gateway_restore_session(struct dgw_gateway *gw, const char *session_id,
                            int64_t seq, const char *resume_url) {
  char *sid;
  char *url = NULL;

  if (gw->state != DGW_STATE_IDLE || !session_id_ok(session_id) || seq < 0 ||
      (resume_url != NULL && !resume_url_ok(gw, resume_url)))
    return DGW_ERR_INVALID_ARGUMENT;
  if ((sid = strdup(session_id)) == NULL ||
      (resume_url != NULL && (url = strdup(resume_url)) == NULL)) {
    free(sid);
    return DGW_ERR_NOMEM;
  }
  forget_session(gw);
  gw->session_id = sid;
  gw->resume_url = url;
  gw->seq = seq;
  gw->identify_next = 0;
  return DGW_OK;
}

int dgw_gateway_terminate(struct dgw_gateway *gw) {
  struct dgw_client *c;

  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (gw->state == DGW_STATE_CLOSED || gw->state == DGW_STATE_CLOSING ||
      gw->state == DGW_STATE_FATAL || gw->state == DGW_STATE_IDLE)
    return DGW_ERR_STATE;
  c = gw->client;
  client_enter(c);
  if (gw->in_lost) {
    gw->retry_now = 1; /* from on_disconnect: lost() reconnects at once */
  } else if (gw->ws == NULL && (gw->state == DGW_STATE_BACKOFF ||
                                gw->state == DGW_STATE_OFFLINE)) {
    evtimer_del(gw->timer); /* waiting: skip the rest of the wait */
    connect_now(gw);
  } else {
    leave_and_resume(gw, DGW_OK, "terminated by the application");
  }
  client_leave(c);
  return DGW_OK;
}

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
