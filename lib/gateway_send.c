/*
 * A shard's sends with the application's completion: the sender it owns
 * (writing on the current connection, its drain timer inside the owner's
 * free guard), dgw_gateway_send_json_cb(), and the drop of every queued
 * command when the client is freed.  Each command sent with a completion
 * completes exactly once: written, or dropped with the reason.
 */
#include "config.h"

#include <stdlib.h>

#include <dgw/dgw.h>

#include "gateway.h"
#include "gateway_internal.h"
#include "payload.h"
#include "sender.h"
#include "ws.h"

static int sender_write(void *arg, const char *json, size_t len) {
  struct dgw_gateway *gw = arg;

  if (gw->ws == NULL || (gw->cfg.may_send != NULL &&
                         !gw->cfg.may_send(gw->cfg.may_send_data, gw)))
    return DGW_ERR_STATE; /* gone, or the owner's fencing said no */
  return dgw_ws_send_text(gw->ws, json, len);
}

static void guard_enter(void *arg) {
  shard_enter(arg);
}

static void guard_leave(void *arg) {
  shard_leave(arg);
}

static int guard_gone(void *arg) {
  return shard_gone(arg);
}

struct dgw_sender *gateway_sender_new(struct dgw_gateway *gw, int *err) {
  const struct shard_config *cfg = &gw->cfg;
  struct dgw_sender *s =
      dgw_sender_new(cfg->base, cfg->send_budget, cfg->send_window_ms, 0,
                     cfg->send_queue, sender_write, gw, err);

  if (s != NULL)
    dgw_sender_set_guard(s, guard_enter, guard_leave, guard_gone);
  return s;
}

/* One command's completion, between the sender and the application. */
struct sent {
  struct dgw_gateway *gw;
  dgw_sent_fn fn;
  void *user_data;
};

static void sent_done(int result, void *arg) {
  struct sent c = *(struct sent *)arg;

  free(arg);
  c.fn(c.gw, (enum dgw_send_outcome)result, c.user_data);
}

int gateway_command_cb(struct dgw_gateway *gw, const char *json, size_t len,
                       dgw_sent_fn fn, void *user_data) {
  struct sent *c = NULL;
  int rv;

  if (fn != NULL) {
    c = malloc(sizeof(*c));
    if (c == NULL)
      return DGW_ERR_NOMEM;
    c->gw = gw;
    c->fn = fn;
    c->user_data = user_data;
  }
  /* A command that goes out at once completes inside this call: `fn` may
   * free the client, which then goes when this frame is left. */
  shard_enter(gw);
  rv = gateway_command(gw, json, len, fn != NULL ? sent_done : NULL, c);
  if (rv != DGW_OK)
    free(c); /* not queued: no completion */
  shard_leave(gw);
  return rv;
}

void gateway_drop_commands(struct dgw_gateway *gw,
                           enum dgw_send_outcome outcome) {
  dgw_sender_shutdown(gw->sender, (int)outcome);
}

int dgw_gateway_send_json_cb(struct dgw_gateway *gw, const char *json,
                             size_t len, dgw_sent_fn on_sent, void *user_data) {
  struct dgw_envelope env;

  if (gw == NULL || json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (len > DGW_PAYLOAD_MAX_SEND)
    return DGW_ERR_PAYLOAD_TOO_LARGE;
  if (dgw_envelope_peek(json, len, &env) != DGW_OK)
    return DGW_ERR_JSON;
  return gateway_command_cb(gw, json, len, on_sent, user_data);
}

const char *dgw_send_outcome_name(enum dgw_send_outcome outcome) {
  switch (outcome) {
  case DGW_SEND_WRITTEN:
    return "written";
  case DGW_SEND_SESSION_LOST:
    return "session lost";
  case DGW_SEND_CLOSED:
    return "shard closed";
  case DGW_SEND_RESTART:
    return "stopped for a restart";
  case DGW_SEND_FREED:
    return "client freed";
  }
  return "unknown";
}
