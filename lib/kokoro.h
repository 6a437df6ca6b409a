/*
 * Kokoro ("heart"), after hata: the heartbeat of one gateway connection.
 * A libevent timer sends a beat every interval (the first after
 * interval * jitter), an ACK gives the latency on a monotonic clock, and a
 * beat whose ACK did not arrive by the time the next is due means the
 * connection is a zombie.  "Did not arrive", not "was not read yet": when
 * the timer itself fired late (the loop was busy), the deadline is first
 * extended by that lateness (at most one interval in all), and then the
 * owner reads what already waits on the socket before it decides (see the
 * zombie callback and dgw_kokoro_revive()).  Internal to dgw.
 */
#ifndef DGW_KOKORO_H
#define DGW_KOKORO_H

#include <stdint.h>

#include <event2/event.h>

struct dgw_kokoro;

struct dgw_kokoro_callbacks {
  /* Send a heartbeat now (the owner knows the sequence). */
  void (*beat)(void *user_data);
  /* The previous beat has no ACK by its (lateness-extended) deadline.
   * The owner reads and handles what already waits on its connection (an
   * ACK among it reaches dgw_kokoro_ack() as usual), then calls
   * dgw_kokoro_revive(): 1 means the ACK was there and the beat goes on;
   * 0 means the connection is a zombie (the kokoro has stopped) and the
   * owner drops it.  Kokoro touches nothing after this call. */
  void (*zombie)(void *user_data);
};

/* Creates a stopped kokoro on `base`.  NULL without memory. */
struct dgw_kokoro *dgw_kokoro_new(struct event_base *base,
                                  const struct dgw_kokoro_callbacks *cb,
                                  void *user_data);
void dgw_kokoro_free(struct dgw_kokoro *k);

/* Starts beating every `interval_ms`, the first beat after
 * interval_ms * jitter01 (jitter01 in [0,1)). */
void dgw_kokoro_start(struct dgw_kokoro *k, uint32_t interval_ms,
                      double jitter01);

/* Stops the timer; the latency is kept. */
void dgw_kokoro_stop(struct dgw_kokoro *k);

/* The gateway asked for a beat (op 1): send one now; the next is due a
 * whole interval later. */
void dgw_kokoro_beat_now(struct dgw_kokoro *k);

/* A HEARTBEAT_ACK arrived.  Returns 1 when it measured a latency (the ACK
 * of the beat in flight), 0 when it was ignored. */
int dgw_kokoro_ack(struct dgw_kokoro *k);

/* Below this lateness of its own timer the loop counts as on time and no
 * credit is given. */
#define DGW_KOKORO_LATE_SLACK_MS 5u

/* After the zombie callback's look at the socket: when the beat's ACK
 * came meanwhile (or op 1 started a new beat), beating goes on (the next
 * beat now) and 1 is returned; otherwise the kokoro stops and returns 0.
 * 0 also when stopped. */
int dgw_kokoro_revive(struct dgw_kokoro *k);

/* Runs a beat that is due but whose timer has not fired yet because the
 * loop is busy with a burst of messages.  Cheap; call between messages so
 * heartbeats never wait behind a backlog.  A beat still un-ACKed is not
 * judged here but by the timer, once the loop has turned. */
void dgw_kokoro_poll(struct dgw_kokoro *k);

/* Milliseconds between the last beat and its ACK; -1 before the first. */
double dgw_kokoro_latency_ms(const struct dgw_kokoro *k);

/* Milliseconds until the next beat is due (0 when overdue or stopped). */
uint64_t dgw_kokoro_due_in_ms(const struct dgw_kokoro *k);

/* The largest lateness of the kokoro's own timer (how long after it was
 * due it ran), in ms, since creation: the time the loop lost. */
uint64_t dgw_kokoro_late_max_ms(const struct dgw_kokoro *k);

/* The interval given to dgw_kokoro_start(), in ms; 0 before. */
uint32_t dgw_kokoro_interval_ms(const struct dgw_kokoro *k);

/* Beats sent since creation (for tests and stats). */
uint64_t dgw_kokoro_beats(const struct dgw_kokoro *k);

#endif /* DGW_KOKORO_H */
