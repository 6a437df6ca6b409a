/* One shard's outbound path: the rate limit, the command queue, and the
 * timer that drains it. */
#include "config.h"

#include <stdlib.h>

#include <dgw/dgw.h>

#include "clock.h"
#include "sender.h"

struct dgw_sender {
  struct dgw_ratelimit *rl;
  uint32_t budget;
  uint64_t window_ms; /* with the slack */
  uint32_t reserved;
  struct dgw_sendq *q;
  struct event *drain;
  dgw_sender_write_fn write;
  void *user_data;
  void (*enter)(void *); /* the owner's free guard (may be NULL) */
  void (*leave)(void *);
  int (*gone)(void *);
  int ready;
  int shut; /* dgw_sender_shutdown(): no more commands */
};

static void drain(struct dgw_sender *s);

/* The timer calls out from the loop: inside the owner's guard, so a
 * `done` that frees the owner only marks it (see drain()). */
static void drain_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_sender *s = arg;
  void (*leave)(void *) = s->leave;
  void *owner = s->user_data;

  (void)fd;
  (void)what;
  if (s->enter != NULL)
    s->enter(owner);
  drain(s);
  if (leave != NULL)
    leave(owner); /* `s` may be gone now */
}

/* Sends queued commands while the window allows; re-arms the timer for
 * when it next will. */
static void drain(struct dgw_sender *s) {
  while (s->ready && dgw_sendq_length(s->q) > 0) {
    uint64_t now = dgw_monotonic_ms();
    const struct dgw_sendq_entry *e;
    struct dgw_sendq_entry popped;
    int rv;

    if (!dgw_ratelimit_try(s->rl, DGW_SEND_COMMAND, now)) {
      uint64_t at = dgw_ratelimit_next_ms(s->rl, DGW_SEND_COMMAND, now);
      uint64_t wait = at > now ? at - now : 1;
      struct timeval tv = dgw_timeval_ms(wait);

      evtimer_add(s->drain, &tv);
      return;
    }
    e = dgw_sendq_peek(s->q);
    rv = s->write(s->user_data, e->json, e->len);
    if (rv != DGW_OK)
      return; /* the connection is going; the entry waits for the next */
    dgw_sendq_pop(s->q, &popped);
    free(popped.json);
    if (popped.done != NULL) {
      popped.done(DGW_OK, popped.user_data);
      /* `done` may have freed the owner (it goes when the guard is left):
       * touch nothing more.  It may also have let the sender go
       * not-ready, or queued more. */
      if (s->gone != NULL && s->gone(s->user_data))
        return;
    }
  }
}

struct dgw_sender *dgw_sender_new(struct event_base *base, uint32_t budget,
                                  uint32_t window_ms, uint32_t reserved,
                                  size_t queue_capacity,
                                  dgw_sender_write_fn write, void *user_data,
                                  int *err) {
  struct dgw_sender *s = calloc(1, sizeof(*s));
  int e = DGW_ERR_NOMEM;

  if (s == NULL)
    goto fail;
  if (budget == 0)
    budget = DGW_RATELIMIT_DEFAULT_BUDGET;
  if (window_ms == 0)
    window_ms = DGW_RATELIMIT_DEFAULT_WINDOW_MS;
  if (reserved == 0)
    reserved = budget > DGW_RATELIMIT_DEFAULT_RESERVED
                   ? DGW_RATELIMIT_DEFAULT_RESERVED
                   : budget / 2;
  if (queue_capacity == 0)
    queue_capacity = DGW_SENDQ_DEFAULT_CAPACITY;
  s->write = write;
  s->user_data = user_data;
  /* Discord counts a payload when it arrives, we when it leaves: a window
   * exactly as long as theirs would let a send at the edge land inside
   * their window and cost a 4008.  Keep 5% + 20 ms of slack for the
   * network in between. */
  s->budget = budget;
  s->window_ms = (uint64_t)window_ms + window_ms / 20 + 20;
  s->reserved = reserved;
  s->rl = dgw_ratelimit_new(budget, s->window_ms, reserved, &e);
  if (s->rl == NULL)
    goto fail;
  s->q = dgw_sendq_new(queue_capacity, &e);
  if (s->q == NULL)
    goto fail;
  e = DGW_ERR_NOMEM;
  s->drain = evtimer_new(base, drain_cb, s);
  if (s->drain == NULL)
    goto fail;
  return s;

fail:
  dgw_sender_free(s);
  if (err != NULL)
    *err = e;
  return NULL;
}

void dgw_sender_free(struct dgw_sender *s) {
  if (s == NULL)
    return;
  if (s->drain != NULL)
    event_free(s->drain);
  dgw_sendq_free(s->q);
  dgw_ratelimit_free(s->rl);
  free(s);
}

void dgw_sender_set_guard(struct dgw_sender *s, void (*enter)(void *),
                          void (*leave)(void *), int (*gone)(void *)) {
  s->enter = enter;
  s->leave = leave;
  s->gone = gone;
}

void dgw_sender_new_connection(struct dgw_sender *s) {
  s->ready = 0;
  evtimer_del(s->drain);
  dgw_ratelimit_reset(s->rl);
}

int dgw_sender_set_heartbeat_interval(struct dgw_sender *s,
                                      uint32_t interval_ms) {
  /* Every beat of one window, plus IDENTIFY or RESUME, plus one beat the
   * gateway may ask for: never fewer than the default, never more than
   * half the budget. */
  uint64_t want = (interval_ms > 0 ? s->window_ms / interval_ms + 1 : 0) + 2;
  uint32_t reserved = (uint32_t)(want > s->reserved ? want : s->reserved);
  struct dgw_ratelimit *rl;

  if (reserved > s->budget / 2)
    reserved = s->budget / 2;
  rl = dgw_ratelimit_new(s->budget, s->window_ms, reserved, NULL);
  if (rl == NULL)
    return DGW_ERR_NOMEM;
  dgw_ratelimit_free(s->rl); /* called before anything was sent */
  s->rl = rl;
  return DGW_OK;
}

void dgw_sender_set_ready(struct dgw_sender *s, int ready) {
  s->ready = ready;
  if (ready)
    drain(s);
  else
    evtimer_del(s->drain);
}

int dgw_sender_send_now(struct dgw_sender *s, enum dgw_send_class cls,
                        const char *json, size_t len) {
  if (!dgw_ratelimit_try(s->rl, cls, dgw_monotonic_ms()))
    return DGW_ERR_QUEUE_FULL;
  return s->write(s->user_data, json, len);
}

int dgw_sender_command(struct dgw_sender *s, const char *json, size_t len,
                       dgw_send_done_fn done, void *user_data) {
  int rv;

  if (s->shut)
    return DGW_ERR_STATE;
  if (s->ready && dgw_sendq_length(s->q) == 0 &&
      dgw_ratelimit_available(s->rl, DGW_SEND_COMMAND, dgw_monotonic_ms()) >
          0) {
    /* The common case: straight out, no copy. */
    if (dgw_ratelimit_try(s->rl, DGW_SEND_COMMAND, dgw_monotonic_ms()) &&
        s->write(s->user_data, json, len) == DGW_OK) {
      if (done != NULL)
        done(DGW_OK, user_data);
      return DGW_OK;
    }
  }
  rv = dgw_sendq_push(s->q, json, len, done, user_data);
  if (rv == DGW_OK && s->ready && !evtimer_pending(s->drain, NULL))
    drain(s);
  return rv;
}

void dgw_sender_fail_all(struct dgw_sender *s, int error) {
  evtimer_del(s->drain);
  dgw_sendq_clear(s->q, error);
}

void dgw_sender_shutdown(struct dgw_sender *s, int error) {
  s->shut = 1;
  s->ready = 0;
  dgw_sender_fail_all(s, error);
}

size_t dgw_sender_queued(const struct dgw_sender *s) {
  return dgw_sendq_length(s->q);
}

uint32_t dgw_sender_in_window(const struct dgw_sender *s) {
  return dgw_ratelimit_in_window(s->rl, dgw_monotonic_ms());
}
