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
  uint64_t credit_ns;   /* lateness credited to the current beat's deadline */
  int suspect;          /* the deadline passed; the owner is looking */
  uint64_t late_max_ns; /* the largest lateness measured (stats) */
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

/* Gives the current beat's deadline the time the loop lost (its timer or
 * poll came `late_ns` after the deadline), up to one interval in all.
 * Returns 1 when it did, and the judgment waits for the new deadline. */
static int credit_lateness(struct dgw_kokoro *k, uint64_t late_ns) {
  uint64_t cap = (uint64_t)k->interval * 1000000u;
  uint64_t give;

  if (late_ns > k->late_max_ns)
    k->late_max_ns = late_ns;
  if (late_ns < DGW_KOKORO_LATE_SLACK_MS * 1000000u || k->credit_ns >= cap)
    return 0;
  give = late_ns < cap - k->credit_ns ? late_ns : cap - k->credit_ns;
  k->credit_ns += give;
  arm(k, give);
  return 1;
}

/* A beat is due: the previous one must have been ACKed by now.  When it
 * was not, the loop's own lateness is credited first; then the owner
 * looks at what already waits on the socket (the zombie callback) and
 * either revives us or drops the connection. */
static void due(struct dgw_kokoro *k) {
  if (!k->acked) {
    uint64_t now = now_ns();

    if (credit_lateness(k, now > k->due_ns ? now - k->due_ns : 0))
      return;
    k->suspect = 1;
    k->cb.zombie(k->user_data); /* the last thing we do: it may free us */
    return;
  }
  k->credit_ns = 0;
  arm(k, (uint64_t)k->interval * 1000000u);
  send_beat(k);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_kokoro *k = arg;

  (void)fd;
  (void)what;
  if (k->running) {
    uint64_t now = now_ns();

    if (now > k->due_ns && now - k->due_ns > k->late_max_ns)
      k->late_max_ns = now - k->due_ns;
    due(k);
  }
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
  k->suspect = 0;
  k->credit_ns = 0;
  arm(k, (uint64_t)((double)interval_ms * jitter01 * 1e6));
}

void dgw_kokoro_stop(struct dgw_kokoro *k) {
  k->running = 0;
  k->suspect = 0;
  evtimer_del(k->timer);
}

void dgw_kokoro_beat_now(struct dgw_kokoro *k) {
  if (!k->running)
    return;
  /* A full interval for this beat's ACK, as hata does: keeping the old
   * schedule could call a healthy connection a zombie when the request
   * came just before a scheduled beat. */
  evtimer_del(k->timer);
  k->suspect = 0; /* a request is proof of life too; this beat starts anew */
  k->credit_ns = 0;
  arm(k, (uint64_t)k->interval * 1000000u);
  send_beat(k);
}

int dgw_kokoro_revive(struct dgw_kokoro *k) {
  if (!k->running)
    return 0;
  if (!k->suspect)
    return 1; /* op 1 came meanwhile and started a new beat */
  k->suspect = 0;
  if (!k->acked) {
    dgw_kokoro_stop(k);
    return 0;
  }
  k->credit_ns = 0;
  arm(k, (uint64_t)k->interval * 1000000u);
  send_beat(k);
  return 1;
}

int dgw_kokoro_ack(struct dgw_kokoro *k) {
  if (!k->running || k->acked)
    return 0; /* an ACK we did not ask for says nothing about latency */
  k->acked = 1;
  k->latency_ms = (double)(now_ns() - k->sent_ns) / 1e6;
  return 1;
}

void dgw_kokoro_poll(struct dgw_kokoro *k) {
  /* Only a beat goes out from here.  An un-ACKed beat is judged by the
   * timer, after the loop has turned: its ACK may be waiting unread behind
   * the burst we are in, and our own beat may not have left yet. */
  if (k->running && !k->suspect && k->acked && now_ns() >= k->due_ns) {
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

uint64_t dgw_kokoro_late_max_ms(const struct dgw_kokoro *k) {
  return k->late_max_ns / 1000000u;
}

uint32_t dgw_kokoro_interval_ms(const struct dgw_kokoro *k) {
  return k->interval;
}
