/* The heartbeat timer: beats, ACKs, latency and zombie detection. */
#include "config.h"

#include <stdlib.h>
#include "clock.h"
#include "kokoro.h"

struct dgw_kokoro {
  struct dgw_kokoro_callbacks cb;
  void *user_data;
  struct event *timer;
  int running;
  int acked;         /* the last beat was ACKed (or none was sent) */
  uint32_t interval; /* ms */
  uint64_t due_ns;   /* when the next beat is due */
  uint64_t sent_ns;  /* when the last beat left */
  double latency_ms; /* -1 before the first ACK */
  uint64_t beats;
};

static uint64_t now_ns(void) {
  return dgw_monotonic_ns();
}

static void arm(struct dgw_kokoro *k, uint64_t delay_ns) {
  struct timeval tv = dgw_timeval_ns(delay_ns);

  k->due_ns = now_ns() + delay_ns;
  evtimer_add(k->timer, &tv);
}

static void send_beat(struct dgw_kokoro *k) {
  k->acked = 0;
  k->sent_ns = now_ns();
  k->beats++;
  k->cb.beat(k->user_data);
}

/* A beat is due: the previous one must have been ACKed by now. */
static void due(struct dgw_kokoro *k) {
  if (!k->acked) {
    dgw_kokoro_stop(k);
    k->cb.zombie(k->user_data);
    return;
  }
  arm(k, (uint64_t)k->interval * 1000000u);
  send_beat(k);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_kokoro *k = arg;

  (void)fd;
  (void)what;
  if (k->running)
    due(k);
}

struct dgw_kokoro *dgw_kokoro_new(struct event_base *base,
                                  const struct dgw_kokoro_callbacks *cb,
                                  void *user_data) {
  struct dgw_kokoro *k = calloc(1, sizeof(*k));

  if (k == NULL)
    return NULL;
  k->cb = *cb;
  k->user_data = user_data;
  k->latency_ms = -1.0;
  k->acked = 1;
  k->timer = evtimer_new(base, timer_cb, k);
  if (k->timer == NULL) {
    free(k);
    return NULL;
  }
  return k;
}

void dgw_kokoro_free(struct dgw_kokoro *k) {
  if (k == NULL)
    return;
  event_free(k->timer);
  free(k);
}

void dgw_kokoro_start(struct dgw_kokoro *k, uint32_t interval_ms,
                      double jitter01) {
  if (jitter01 < 0.0 || !(jitter01 < 1.0))
    jitter01 = 0.0;
  k->interval = interval_ms;
  k->running = 1;
  k->acked = 1;
  arm(k, (uint64_t)((double)interval_ms * jitter01 * 1e6));
}

void dgw_kokoro_stop(struct dgw_kokoro *k) {
  k->running = 0;
  evtimer_del(k->timer);
}

void dgw_kokoro_beat_now(struct dgw_kokoro *k) {
  if (!k->running)
    return;
  /* A full interval for this beat's ACK, as hata does: keeping the old
   * schedule could call a healthy connection a zombie when the request
   * came just before a scheduled beat. */
  evtimer_del(k->timer);
  arm(k, (uint64_t)k->interval * 1000000u);
  send_beat(k);
}

void dgw_kokoro_ack(struct dgw_kokoro *k) {
  if (!k->running || k->acked)
    return; /* an ACK we did not ask for says nothing about latency */
  k->acked = 1;
  k->latency_ms = (double)(now_ns() - k->sent_ns) / 1e6;
}

void dgw_kokoro_poll(struct dgw_kokoro *k) {
  if (k->running && now_ns() >= k->due_ns) {
    evtimer_del(k->timer);
    due(k);
  }
}

double dgw_kokoro_latency_ms(const struct dgw_kokoro *k) {
  return k->latency_ms;
}

uint64_t dgw_kokoro_due_in_ms(const struct dgw_kokoro *k) {
  uint64_t now = now_ns();

  if (!k->running || now >= k->due_ns)
    return 0;
  return (k->due_ns - now + 999999u) / 1000000u;
}

uint64_t dgw_kokoro_beats(const struct dgw_kokoro *k) {
  return k->beats;
}
