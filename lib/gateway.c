/*
 * One shard: the glue between the session core and the I/O.
 *
 * The session core (session.c) decides; this file owns the connection
 * (ws, inflate), the timers (reconnect/HELLO wait, healthy mark, the
 * identify grant), kokoro and the sender, and carries out the core's
 * actions.  Every way a connection ends funnels into lost(): the core
 * says resume, start anew, or stop, and after how long.  A connection we
 * leave on purpose (op 7, op 9, zombie, terminate) is closed with code
 * 4000 in the background (so Discord keeps the session) while the next
 * one starts at once.
 *
 * Upward the shard speaks only through its owner's table (gateway.h);
 * the calls on a shard from above are in gateway_api.c.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>
#include <openssl/crypto.h>

#include <dgw/dgw.h>

#include "commands.h"
#include "field.h"
#include "gateway.h"
#include "gateway_internal.h"
#include "decomp.h"
#include "kokoro.h"
#include "payload.h"
#include "policy.h"
#include "sender.h"
#include "session.h"
#include "url.h"
#include "ws.h"

/* ------------------------------------------------------------ helpers */

void shard_log(struct dgw_gateway *gw, enum dgw_log_level level,
               const char *fmt, ...) {
  char line[512];
  va_list ap;

  if (gw->cfg.log == NULL || level > gw->cfg.log_level)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  gw->cfg.log(level, line, gw->cfg.log_user_data);
}

int shard_gone(struct dgw_gateway *gw) {
  return gw->ops->gone(gw->owner);
}

void shard_enter(struct dgw_gateway *gw) {
  gw->ops->enter(gw->owner);
}

void shard_leave(struct dgw_gateway *gw) {
  gw->ops->leave(gw->owner); /* gw may be gone after this */
}

static double random01(struct dgw_gateway *gw) {
  return gw->cfg.random01 != NULL ? gw->cfg.random01(gw->cfg.random_user_data)
                                  : dgw_random01();
}

void shard_set_state(struct dgw_gateway *gw, enum dgw_state to) {
  enum dgw_state from = gw->state;

  if (from == to)
    return;
  gw->state = to;
  shard_log(gw, DGW_LOG_DEBUG, "shard %u: %s -> %s", gw->cfg.shard_id,
            dgw_state_name(from), dgw_state_name(to));
  if (!shard_gone(gw))
    gw->ops->state_changed(gw->owner, gw, from, to);
}

static void arm(struct event *ev, uint32_t ms) {
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

  evtimer_add(ev, &tv);
}

/* Retires the current connection: closes it with `code` in the background
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

/*
 * The connection is gone (or being left): ask the session core what comes
 * next, tell the owner, and schedule it.  `wait_ms` >= 0 forces a minimum
 * delay (op 9); -1 lets the backoff decide.
 */
static void lost(struct dgw_gateway *gw, int err, uint16_t code,
                 const char *reason, enum dgw_close_action action,
                 int64_t wait_ms) {
  struct dgw_session_retry r;
  struct dgw_disconnect info;
  uint32_t delay;

  evtimer_del(gw->timer);
  evtimer_del(gw->healthy);
  dgw_kokoro_stop(gw->kokoro);
  gw->ops->identify_cancel(gw->owner, gw); /* no longer waiting to IDENTIFY */
  shard_lazy_reset(gw);
  dgw_sender_set_ready(gw->sender, 0); /* commands wait for the next READY */
  dgw_session_lost(gw->session, err, gw->opened, action, wait_ms, &r);
  /* Chunks and voice events of a dropped session will never come. */
  if (r.session_dropped)
    gw->ops->session_lost(gw->owner, gw);
  delay = r.delay_ms;

  memset(&info, 0, sizeof(info));
  info.error = err;
  info.close_code = code;
  info.reason = reason;
  info.action = action;
  info.will_resume = r.will_resume;
  info.retry_in_ms = r.delay_ms;
  {
    char code_text[64] = "";

    /* The reason already says "peer closed with code N: TEXT"; add what
     * the code means to Discord when the peer's TEXT did not say it. */
    if (code && strstr(reason, dgw_close_code_name(code)) == NULL)
      snprintf(code_text, sizeof(code_text), "; %u means %s", (unsigned)code,
               dgw_close_code_name(code));
    shard_log(gw, action == DGW_CLOSE_FATAL ? DGW_LOG_ERROR : DGW_LOG_INFO,
              "shard %u: disconnected (%s%s), %s in %u ms", gw->cfg.shard_id,
              reason, code_text,
              action == DGW_CLOSE_FATAL ? "fatal, not retrying"
              : info.will_resume        ? "resuming"
                                        : "identifying",
              (unsigned)info.retry_in_ms);
  }
  gw->retry_now = 0;
  gw->in_lost++;
  if (!shard_gone(gw))
    gw->ops->lifecycle(gw->owner, gw, SHARD_DISCONNECTED, &info);
  gw->in_lost--;
  if (shard_gone(gw) || gw->state == DGW_STATE_CLOSED ||
      gw->state == DGW_STATE_CLOSING)
    return;          /* the application closed or freed us from the callback */
  if (gw->retry_now) /* dgw_gateway_terminate() from the callback */
    delay = 0;

  if (action == DGW_CLOSE_FATAL) {
    dgw_session_forget(gw->session);
    shard_set_state(gw, DGW_STATE_FATAL);
    dgw_sender_fail_all(gw->sender, DGW_SEND_SESSION_LOST);
    gw->ops->session_lost(gw->owner, gw);
    if (!shard_gone(gw))
      gw->ops->lifecycle(gw->owner, gw, SHARD_FATAL, &info);
    return;
  }
  shard_set_state(gw, r.offline ? DGW_STATE_OFFLINE : DGW_STATE_BACKOFF);
  if (gw->state == DGW_STATE_OFFLINE && gw->ops->network_lost(gw->owner, gw))
    return; /* parked: the owner's probe speaks for us */
  if (gw->state == DGW_STATE_OFFLINE || gw->state == DGW_STATE_BACKOFF)
    arm(gw->timer, delay);
}

/* Carries out the core's DGW_SESSION_LEAVE. */
static void leave(struct dgw_gateway *gw, const struct dgw_session_action *a) {
  retire_ws(gw, a->close_code, a->close_reason);
  lost(gw, a->error, 0, a->reason, a->close, a->wait_ms);
}

/* We leave the current connection on purpose but keep the session. */
void shard_leave_and_resume(struct dgw_gateway *gw, int err,
                            const char *reason) {
  retire_ws(gw, DGW_SESSION_RECONNECT_CODE, "dgw: reconnecting");
  lost(gw, err, 0, reason, DGW_CLOSE_RESUME, -1);
}

/* ----------------------------------------------------------- sending */

static void heartbeat(void *arg) {
  struct dgw_gateway *gw = arg;
  char buf[48];
  int n = dgw_heartbeat_encode(dgw_session_seq(gw->session), buf, sizeof(buf));

  if (n > 0 && dgw_sender_send_now(gw->sender, DGW_SEND_HEARTBEAT, buf,
                                   (size_t)n) == DGW_ERR_QUEUE_FULL)
    shard_log(gw, DGW_LOG_WARN,
              "shard %u: heartbeat skipped: send budget exhausted",
              gw->cfg.shard_id);
}

/* Sends IDENTIFY or RESUME ahead of any command, then wipes our copy of
 * the text: it carries the token (the socket buffers and json-c's own
 * copies are beyond our reach). */
static int send_secret(struct dgw_gateway *gw, int rv, char *text, size_t len) {
  if (rv == DGW_OK)
    rv = dgw_sender_send_now(gw->sender, DGW_SEND_CONTROL, text, len);
  if (text != NULL) {
    OPENSSL_cleanse(text, len);
    free(text);
  }
  return rv;
}

void gateway_identify_now(struct dgw_gateway *gw) {
  struct dgw_identify_params p;
  char *text = NULL;
  size_t len = 0;
  int rv;

  if (gw->state != DGW_STATE_HELLO || gw->ws == NULL)
    return; /* the connection went away while we waited */
  memset(&p, 0, sizeof(p));
  p.token = gw->cfg.token;
  p.intents = gw->cfg.intents;
  p.shard_id = gw->cfg.shard_id;
  p.shard_total = gw->cfg.shard_total;
  p.large_threshold = gw->cfg.large_threshold;
  p.presence_json = gw->cfg.presence_json;
  p.properties_json = gw->cfg.properties_json;
  rv = dgw_identify_encode(&p, &text, &len, NULL, 0);
  rv = send_secret(gw, rv, text, len);
  if (rv != DGW_OK) {
    shard_log(gw, DGW_LOG_ERROR, "shard %u: cannot send IDENTIFY: %s",
              gw->cfg.shard_id, dgw_strerror(rv));
    shard_leave_and_resume(gw, rv, "IDENTIFY could not be sent");
    return;
  }
  gw->ops->identify_sent(gw->owner, gw); /* the window starts at the write */
  shard_lazy_reset(gw);
  gw->counters.identifies++;
  dgw_session_identified(gw->session);
  shard_set_state(gw, DGW_STATE_IDENTIFYING);
}

static void send_resume(struct dgw_gateway *gw) {
  char *text = NULL;
  size_t len = 0;
  int rv =
      dgw_resume_encode(gw->cfg.token, dgw_session_id(gw->session),
                        dgw_session_seq(gw->session), &text, &len, NULL, 0);

  rv = send_secret(gw, rv, text, len);
  if (rv != DGW_OK) {
    shard_leave_and_resume(gw, rv, "RESUME could not be sent");
    return;
  }
  shard_set_state(gw, DGW_STATE_RESUMING);
}

/* --------------------------------------------------------- receiving */

static void on_hello(struct dgw_gateway *gw, const struct dgw_envelope *env) {
  struct dgw_session_action a;
  int64_t interval = 0;

  /* Not an integer, missing or out of range: 0, which the core refuses. */
  if (dgw_field_int64(env->d, env->d_len, "/heartbeat_interval", &interval) !=
      DGW_OK)
    interval = 0;
  dgw_session_on_hello(gw->session, gw->state, interval, &a);
  if (a.what == DGW_SESSION_LEAVE) {
    leave(gw, &a);
    return;
  }
  if (a.what == DGW_SESSION_NOTHING)
    return;               /* a second HELLO changes nothing */
  evtimer_del(gw->timer); /* the HELLO wait */
  dgw_sender_set_heartbeat_interval(gw->sender, (uint32_t)interval);
  dgw_kokoro_start(gw->kokoro, (uint32_t)interval, random01(gw));
  if (a.what == DGW_SESSION_RESUME)
    send_resume(gw);
  else /* a lazy shard keeps its place in line (gateway_lazy.c) */
    gw->ops->identify_request(gw->owner, gw);
}

/* `pointer`'s string in READY's `d` into `buf`, or NULL when it is missing
 * or not a string.  One too long for `buf` comes back as "" so that the
 * core refuses it as malformed (and says so) rather than taking it as
 * missing. */
static const char *ready_string(const char *d, size_t len, const char *pointer,
                                char *buf, size_t size) {
  size_t n;
  int rv = dgw_field_string(d, len, pointer, buf, size, &n);

  if (rv == DGW_ERR_BUFFER_TOO_SMALL) {
    buf[0] = '\0';
    return buf;
  }
  return rv == DGW_OK ? buf : NULL;
}

/* Takes the session id, resume URL and our user id from READY's d, read
 * in place (no DOM: READY can carry every guild). */
static void take_ready(struct dgw_gateway *gw, const char *d, size_t len) {
  char sid_buf[256], url_buf[DGW_URL_MAX], id_buf[64];
  size_t id_len;
  const char *sid =
      ready_string(d, len, "/session_id", sid_buf, sizeof(sid_buf));
  const char *url =
      ready_string(d, len, "/resume_gateway_url", url_buf, sizeof(url_buf));
  int bad_id = 0;
  int bad_url = 0;

  if (dgw_field_string(d, len, "/user/id", id_buf, sizeof(id_buf), &id_len) ==
      DGW_OK) {
    free(gw->self_id);
    gw->self_id = strdup(id_buf);
  }
  dgw_session_ready(gw->session, sid, url, gw->cfg.gateway_url, &bad_id,
                    &bad_url);
  if (bad_id)
    shard_log(gw, DGW_LOG_WARN,
              "shard %u: READY has a malformed session_id; this session "
              "cannot be resumed",
              gw->cfg.shard_id);
  if (bad_url)
    shard_log(gw, DGW_LOG_WARN,
              "shard %u: READY's resume_gateway_url is malformed or not "
              "wss://; resuming on the configured URL instead",
              gw->cfg.shard_id);
}

void gateway_grant_identify(struct dgw_gateway *gw) {
  event_active(gw->identify_ev, EV_TIMEOUT, 0);
}

static void identify_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_gateway *gw = arg;

  (void)fd;
  (void)what;
  shard_enter(gw);
  gateway_identify_now(gw);
  shard_leave(gw);
}

static void healthy_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_gateway *gw = arg;

  (void)fd;
  (void)what;
  dgw_session_healthy(gw->session);
}

static void log_dispatch_note(struct dgw_gateway *gw,
                              const struct dgw_session_action *a) {
  unsigned id = gw->cfg.shard_id;

  switch (a->note) {
  case DGW_SESSION_NOTE_NO_NAME:
    shard_log(gw, DGW_LOG_WARN, "shard %u: dispatch without t dropped", id);
    break;
  case DGW_SESSION_NOTE_SEQ_MAX:
    shard_log(gw, DGW_LOG_WARN, "shard %u: dispatch with s=INT64_MAX", id);
    break;
  case DGW_SESSION_NOTE_REPLAY:
    shard_log(gw, DGW_LOG_DEBUG, "shard %u: s=%lld already delivered", id,
              (long long)a->seq);
    break;
  case DGW_SESSION_NOTE_SEQ_JUMP:
    shard_log(gw, DGW_LOG_WARN, "shard %u: sequence jumped %lld -> %lld", id,
              (long long)a->prev_seq, (long long)a->seq);
    break;
  default:
    break;
  }
}

static void on_dispatch(struct dgw_gateway *gw,
                        const struct dgw_envelope *env) {
  struct dgw_session_action a;
  struct shard_dispatch ev;

  dgw_session_on_dispatch(gw->session, gw->state,
                          env->has_name ? env->name : NULL, env->has_seq,
                          env->seq, &a);
  log_dispatch_note(gw, &a);
  if (a.what != DGW_SESSION_DELIVER)
    return;
  if (a.ready)
    take_ready(gw, env->d, env->d_len);
  if (a.ready || a.resumed) {
    struct dgw_ws *ws = gw->ws;

    shard_set_state(gw, DGW_STATE_READY);
    /* state_changed may have closed, terminated or freed us. */
    if (shard_gone(gw) || gw->state != DGW_STATE_READY || gw->ws != ws)
      return;
    arm(gw->healthy, gw->cfg.healthy_ms);
    dgw_sender_set_ready(gw->sender, 1); /* queued commands go out now */
    if (a.resumed)
      gw->counters.resumes++;
    shard_log(gw, DGW_LOG_INFO, "shard %u: %s (session %s, seq %lld)",
              gw->cfg.shard_id, a.ready ? "ready" : "resumed",
              dgw_session_id(gw->session) != NULL ? dgw_session_id(gw->session)
                                                  : "?",
              (long long)dgw_session_seq(gw->session));
    gw->ops->lifecycle(gw->owner, gw, a.ready ? SHARD_READY : SHARD_RESUMED,
                       NULL);
    if (gw->state != DGW_STATE_READY || gw->ws != ws)
      return; /* closed or terminated from on_ready or a plugin's hook */
  }
  if (shard_gone(gw))
    return;
  gw->counters.dispatches++;
  ev.name = env->name;
  ev.seq = env->seq;
  ev.data = env->d != NULL ? env->d : "null";
  ev.data_len = env->d != NULL ? env->d_len : 4;
  gw->ops->dispatch(gw->owner, gw, &ev);
}

/*
 * A payload the envelope peek refused, or a message that did not inflate.
 * A dispatch json-c can still read is skipped with a warning but keeps its
 * sequence number (resuming would only replay it and loop); anything else
 * resumes, and a stream that keeps dying without an event in between gets
 * a new session (the core counts the strikes).
 */
static void bad_payload(struct dgw_gateway *gw, const char *json, size_t len,
                        int err, const char *what) {
  struct dgw_session_action a;

  dgw_session_on_bad_payload(gw->session, err, what,
                             dgw_payload_recover_seq(json, len), &a);
  if (a.note == DGW_SESSION_NOTE_SKIPPED) {
    shard_log(gw, DGW_LOG_WARN,
              "shard %u: dispatch s=%lld dropped: beyond dgw's limits "
              "(event name over %d bytes or nesting over %d levels)",
              gw->cfg.shard_id, (long long)a.seq, DGW_EVENT_NAME_MAX,
              DGW_JSON_MAX_DEPTH);
    return;
  }
  if (a.note == DGW_SESSION_NOTE_POISONED)
    shard_log(gw, DGW_LOG_ERROR,
              "shard %u: %s three times with no event in between (s=%lld); "
              "starting a new session",
              gw->cfg.shard_id, what, (long long)dgw_session_seq(gw->session));
  leave(gw, &a);
}

/* One whole gateway payload (JSON text). */
static void on_payload(struct dgw_gateway *gw, const char *json, size_t len) {
  struct dgw_envelope env;
  struct dgw_session_action a;
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
    shard_ack(gw);
    break;
  case DGW_OP_HELLO:
    on_hello(gw, &env);
    break;
  case DGW_OP_RECONNECT:
    dgw_session_on_reconnect(gw->session, &a);
    leave(gw, &a);
    break;
  case DGW_OP_INVALID_SESSION:
    dgw_session_on_invalid_session(
        gw->session, env.d_len == 4 && memcmp(env.d, "true", 4) == 0, &a);
    leave(gw, &a);
    break;
  default:
    shard_log(gw, DGW_LOG_DEBUG, "shard %u: op %d ignored", gw->cfg.shard_id,
              env.op);
  }
}

/* ------------------------------------------------------- ws callbacks */

static void ws_open(struct dgw_ws *ws, void *arg) {
  struct dgw_gateway *gw = arg;

  if (ws != gw->ws)
    return;
  shard_enter(gw);
  gw->opened = 1;
  gw->ops->network_back(gw->owner, gw); /* the network is there */
  dgw_decomp_reset(gw->z);
  dgw_sender_new_connection(gw->sender); /* the budget is per connection */
  shard_set_state(gw, DGW_STATE_HELLO);
  /* HELLO must follow promptly; reuse the connect timeout for it. */
  if (gw->state == DGW_STATE_HELLO)
    arm(gw->timer, gw->cfg.connect_timeout_ms);
  shard_leave(gw);
}

static void ws_message(struct dgw_ws *ws, int binary, const uint8_t *data,
                       size_t len, void *arg) {
  struct dgw_gateway *gw = arg;
  const char *json = (const char *)data;
  size_t json_len = len;
  int rv = DGW_OK;

  if (ws != gw->ws)
    return; /* a retiring connection: its events will be replayed */
  shard_enter(gw);
  if (binary && len > 0)
    shard_quiet_wake(gw);
  if (binary && (rv = dgw_decomp_push(gw->z, data, len, &json, &json_len)) ==
                    DGW_ERR_AGAIN) /* refuse at its header what must fail */
    dgw_ws_limit_next_frame(ws, dgw_decomp_room(gw->z));
  shard_count_frame(gw, len, rv == DGW_OK ? json_len : 0);
  if (rv == DGW_OK)
    on_payload(gw, json, json_len);
  else if (rv != DGW_ERR_AGAIN)
    bad_payload(gw, NULL, 0, rv,
                rv == DGW_ERR_INFLATE_LIMIT
                    ? "a payload inflated past the size cap"
                    : dgw_decomp_corrupt_why(gw->z));
  /* on_payload may have freed or replaced everything but the shard. */
  if (binary && rv == DGW_OK && !shard_gone(gw)) {
    dgw_decomp_done(gw->z);
    shard_quiet_sleep(gw);
  }
  /* A burst of messages must not starve the heartbeat: a beat that fell
   * due while we were busy goes out now.  After the message, so that an
   * ACK in it counts first. */
  if (gw->ws == ws && !shard_gone(gw))
    dgw_kokoro_poll(gw->kokoro);
  shard_leave(gw);
}

static void ws_close(struct dgw_ws *ws, int err, void *arg) {
  struct dgw_gateway *gw = arg;
  uint16_t code = dgw_ws_close_code(ws);
  char reason[300];

  if (ws == gw->retiring) {
    dgw_ws_free(ws);
    gw->retiring = NULL;
    return;
  }
  if (ws != gw->ws)
    return;
  shard_enter(gw);
  snprintf(reason, sizeof(reason), "%s", dgw_ws_reason(ws));
  dgw_ws_free(ws);
  gw->ws = NULL;
  if (gw->state == DGW_STATE_CLOSING) {
    dgw_kokoro_stop(gw->kokoro);
    shard_set_state(gw, DGW_STATE_CLOSED);
  } else {
    enum dgw_close_action action =
        dgw_session_on_close(gw->session, err, code, gw->opened);

    lost(gw, err, err == DGW_ERR_CLOSED ? code : 0, reason, action, -1);
  }
  shard_leave(gw);
}

static const struct dgw_ws_callbacks ws_callbacks = {ws_open, ws_message,
                                                     ws_close};

/* ------------------------------------------------------------- timers */

void shard_connect_now(struct dgw_gateway *gw) {
  struct dgw_ws_config cfg;
  const char *base = dgw_session_connect_url(gw->session, gw->cfg.gateway_url);
  char url[DGW_URL_MAX + 64];
  int err = DGW_OK;

  memset(&cfg, 0, sizeof(cfg));
  cfg.ssl_ctx = gw->cfg.ssl;
  cfg.resolver = gw->cfg.resolver;
  cfg.max_message = gw->cfg.max_payload;
  cfg.connect_timeout_ms = gw->cfg.connect_timeout_ms;
  cfg.close_timeout_ms = gw->cfg.close_timeout_ms;
  cfg.log = gw->cfg.log_level >= DGW_LOG_DEBUG ? gw->cfg.log : NULL;
  cfg.log_user_data = gw->cfg.log_user_data;

  gw->opened = 0;
  gw->pacing = 0;
  gw->counters.connects++;
  shard_set_state(gw, DGW_STATE_CONNECTING);
  if (!shard_gone(gw))
    gw->ops->lifecycle(gw->owner, gw, SHARD_CONNECTING, NULL);
  if (shard_gone(gw) || gw->state != DGW_STATE_CONNECTING)
    return;
  if (base != NULL && shard_build_url(gw, base, url, sizeof(url)) == DGW_OK)
    gw->ws = dgw_ws_new(gw->cfg.base, &cfg, &ws_callbacks, gw, &err);
  else
    err = DGW_ERR_URL;
  if (gw->ws != NULL && shard_held(gw))
    dgw_ws_pause(gw->ws, 1); /* a grant given before the hold: held too */
  if (gw->ws != NULL)
    err = dgw_ws_connect(gw->ws, url);
  if (err != DGW_OK) {
    shard_log(gw, DGW_LOG_WARN, "shard %u: cannot connect to %s: %s",
              gw->cfg.shard_id, base != NULL ? base : "(no URL)",
              dgw_strerror(err));
    dgw_ws_free(gw->ws);
    gw->ws = NULL;
    dgw_session_connect_failed(gw->session, base);
    lost(gw, err, 0, "the connection could not be started", DGW_CLOSE_RESUME,
         -1);
    return;
  }
  shard_log(gw, DGW_LOG_DEBUG, "shard %u: connecting to %s", gw->cfg.shard_id,
            url);
}

void shard_connect_paced(struct dgw_gateway *gw) {
  if (shard_lazy_wait(gw))
    return; /* no socket until its identify turn is near */
  if (gw->ops->connect_request != NULL &&
      !gw->ops->connect_request(gw->owner, gw)) {
    gw->pacing = 1;
    shard_log(gw, DGW_LOG_DEBUG,
              "shard %u: waiting for a connection slot (pacing)",
              gw->cfg.shard_id);
    return;
  }
  gw->pacing = 0;
  shard_connect_now(gw);
}

int gateway_grant_connect(struct dgw_gateway *gw, uint32_t delay_ms) {
  if (gw->pacing != 1 || gw->ws != NULL ||
      (gw->state != DGW_STATE_BACKOFF && gw->state != DGW_STATE_OFFLINE &&
       gw->state != DGW_STATE_IDLE))
    return 0;
  gw->pacing = 2; /* granted: timer_cb connects */
  evtimer_del(gw->timer);
  arm(gw->timer, delay_ms);
  return 1;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_gateway *gw = arg;

  (void)fd;
  (void)what;
  shard_enter(gw);
  if (gw->state == DGW_STATE_HELLO)
    shard_leave_and_resume(gw, DGW_ERR_TIMEOUT, "no HELLO from the gateway");
  else if (shard_held(gw) && gw->pacing != 2)
    shard_hold_timer(gw); /* gateway_hold.c */
  else if (gw->pacing == 2 &&
           (gw->state == DGW_STATE_IDLE || gw->state == DGW_STATE_BACKOFF ||
            gw->state == DGW_STATE_OFFLINE))
    shard_connect_now(gw); /* the owner's grant */
  else if (gw->state == DGW_STATE_BACKOFF || gw->state == DGW_STATE_OFFLINE)
    shard_connect_paced(gw);
  shard_leave(gw);
}

/*
 * Kokoro's deadline for a beat's ACK passed (already extended by the
 * loop's own lateness).  A zombie is a connection whose ACK did not
 * arrive, not one whose ACK we did not get around to reading: first read
 * and handle what already waits on the socket, then judge.  Kokoro's
 * timer fires outside any other entry point: bracket it.
 */
static void kokoro_zombie(void *arg) {
  struct dgw_gateway *gw = arg;
  struct dgw_ws *ws = gw->ws;

  shard_enter(gw);
  if (shard_hold_zombie(gw)) /* held: gateway_hold.c */
    ws = NULL;
  else if (ws != NULL)
    dgw_ws_read_waiting(ws); /* may ACK, or end or replace the connection */
  if (shard_gone(gw) || gw->ws != ws) {
    /* what we read ended the connection (or held: not judged) */
  } else if (dgw_kokoro_revive(gw->kokoro)) {
    shard_log(gw, DGW_LOG_DEBUG,
              "shard %u: heartbeat ACK found unread at the deadline",
              gw->cfg.shard_id);
  } else {
    gw->counters.zombies++;
    shard_leave_and_resume(gw, DGW_ERR_TIMEOUT,
                           "no heartbeat ACK before the next beat: zombied "
                           "connection");
  }
  shard_leave(gw);
}

/* ------------------------------------------------------------ public */

static char *dup_or_null(const char *s, int *failed) {
  char *copy;

  if (s == NULL)
    return NULL;
  if ((copy = strdup(s)) == NULL)
    *failed = 1;
  return copy;
}

struct dgw_gateway *gateway_new(const struct shard_config *cfg,
                                const struct shard_owner_ops *ops,
                                void *owner) {
  static const struct dgw_kokoro_callbacks kcb = {heartbeat, kokoro_zombie};
  struct dgw_session_config sc;
  struct dgw_gateway *gw = calloc(1, sizeof(*gw));
  int failed = 0;
  int err;

  if (gw == NULL)
    return NULL;
  gw->ops = ops;
  gw->owner = owner;
  gw->cfg = *cfg;
  gw->cfg.token = dup_or_null(cfg->token, &failed);
  gw->cfg.gateway_url = dup_or_null(cfg->gateway_url, &failed);
  gw->cfg.presence_json = dup_or_null(cfg->presence_json, &failed);
  gw->cfg.properties_json = dup_or_null(cfg->properties_json, &failed);
  memset(&sc, 0, sizeof(sc));
  sc.backoff_base_ms = cfg->backoff_base_ms;
  sc.backoff_max_ms = cfg->backoff_max_ms;
  sc.invalid_min_ms = cfg->invalid_min_ms;
  sc.invalid_max_ms = cfg->invalid_max_ms;
  sc.random01 = cfg->random01;
  sc.random_user_data = cfg->random_user_data;
  gw->session = dgw_session_new(&sc);
  gw->z = dgw_decomp_new(cfg->compress, cfg->max_payload, &err);
  gw->kokoro = dgw_kokoro_new(cfg->base, &kcb, gw);
  gw->timer = evtimer_new(cfg->base, timer_cb, gw);
  gw->healthy = evtimer_new(cfg->base, healthy_cb, gw);
  gw->identify_ev = event_new(cfg->base, -1, 0, identify_cb, gw);
  gw->sender = gateway_sender_new(gw, &err); /* gateway_send.c */
  if (failed || gw->session == NULL || gw->z == NULL || gw->kokoro == NULL ||
      gw->timer == NULL || gw->healthy == NULL || gw->identify_ev == NULL ||
      gw->sender == NULL) {
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
  dgw_decomp_free(gw->z);
  dgw_kokoro_free(gw->kokoro);
  if (gw->timer != NULL)
    event_free(gw->timer);
  if (gw->healthy != NULL)
    event_free(gw->healthy);
  if (gw->identify_ev != NULL)
    event_free(gw->identify_ev);
  if (gw->lazy_ev != NULL)
    event_free(gw->lazy_ev);
  dgw_sender_free(gw->sender);
  dgw_session_free(gw->session);
  if (gw->cfg.token != NULL) {
    OPENSSL_cleanse((char *)(uintptr_t)gw->cfg.token, strlen(gw->cfg.token));
    free((char *)(uintptr_t)gw->cfg.token);
  }
  free((char *)(uintptr_t)gw->cfg.gateway_url);
  free((char *)(uintptr_t)gw->cfg.presence_json);
  free((char *)(uintptr_t)gw->cfg.properties_json);
  free(gw->self_id);
  free(gw);
}
