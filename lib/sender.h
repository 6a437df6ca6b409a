/*
 * One shard's outbound path: every payload the shard sends goes through
 * here and through the connection's send rate limit.  Internal to dgw.
 *
 * Heartbeats and IDENTIFY/RESUME go out at once, on the slots the limiter
 * keeps for them; commands go out at once when the window allows and the
 * queue is empty, else wait in a bounded FIFO that drains, in order, as
 * the window moves.  The queue belongs to the shard, not the connection:
 * commands survive a reconnect and go out once the session is READY again
 * (RESUMED or a new READY), and are failed back only when the owner calls
 * dgw_sender_fail_all() (the session is lost for good).
 */
#ifndef DGW_SENDER_H
#define DGW_SENDER_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "ratelimit.h"

struct dgw_sender;

/* Writes one payload on the current connection; returns DGW_OK or an
 * error (no connection). */
typedef int (*dgw_sender_write_fn)(void *user_data, const char *json,
                                   size_t len);

/*
 * Creates a sender on `base`: at most `budget` payloads per `window_ms`
 * (0, 0: Discord's 120 per 60 s) plus 5% + 20 ms of slack for the transit
 * time between our clock and the gateway's, `reserved` of them kept for
 * heartbeats and IDENTIFY/RESUME (0: DGW_RATELIMIT_DEFAULT_RESERVED), and a
 * queue of `queue_capacity` commands (0: DGW_SENDQ_DEFAULT_CAPACITY).  Not
 * ready until dgw_sender_set_ready().  NULL with *err on failure.
 */
struct dgw_sender *dgw_sender_new(struct event_base *base, uint32_t budget,
                                  uint32_t window_ms, uint32_t reserved,
                                  size_t queue_capacity,
                                  dgw_sender_write_fn write, void *user_data,
                                  int *err);

/*
 * The owner's free guard, for the drain timer: it calls out (each
 * command's `done`) from the loop, and `done` may free the owner.  The
 * timer brackets its work with enter(user_data) and leave(user_data)
 * (after which the sender may be gone), and stops calling out once
 * gone(user_data) is 1.  Without a guard the timer calls nothing around
 * its work.  `user_data` is the one given to dgw_sender_new().
 */
void dgw_sender_set_guard(struct dgw_sender *s, void (*enter)(void *),
                          void (*leave)(void *), int (*gone)(void *));

/* Frees the sender; queued commands are dropped without callbacks (the
 * owner fails them first, with dgw_sender_fail_all() or
 * dgw_sender_shutdown(), when it wants them reported).  NULL is a no-op. */
void dgw_sender_free(struct dgw_sender *s);

/* A new connection starts: a fresh window, not ready. */
void dgw_sender_new_connection(struct dgw_sender *s);

/* HELLO arrived on a new connection, before anything was sent on it:
 * keep enough slots for every heartbeat of one window (a short interval
 * needs more than the default reserve), at most half the budget.  DGW_OK
 * or DGW_ERR_NOMEM (the old reserve stays). */
int dgw_sender_set_heartbeat_interval(struct dgw_sender *s,
                                      uint32_t interval_ms);

/* The session is READY (1: drain the queue as the window allows) or not
 * (0: hold commands). */
void dgw_sender_set_ready(struct dgw_sender *s, int ready);

/* Sends a heartbeat, or IDENTIFY/RESUME (`cls`), now.  Returns DGW_OK, the
 * write error, or DGW_ERR_QUEUE_FULL in the impossible case the reserved
 * slots are gone (then nothing is sent: better a missed beat than 4008). */
int dgw_sender_send_now(struct dgw_sender *s, enum dgw_send_class cls,
                        const char *json, size_t len);

/*
 * Sends a command (copied) now when the session is ready, the queue empty
 * and the window allows; otherwise queues it.  `done` (may be NULL) is
 * called once: with DGW_OK when it was written (before this returns when
 * it goes out at once), or with the error of dgw_sender_fail_all() or
 * dgw_sender_shutdown().  Returns DGW_OK (sent or queued) or
 * DGW_ERR_QUEUE_FULL / DGW_ERR_NOMEM / DGW_ERR_STATE after
 * dgw_sender_shutdown() (nothing queued, `done` not called).
 */
int dgw_sender_command(struct dgw_sender *s, const char *json, size_t len,
                       dgw_send_done_fn done, void *user_data);

/* Fails every queued command back with `error` (any int: the owner's
 * reason, passed to each `done` as its result). */
void dgw_sender_fail_all(struct dgw_sender *s, int error);

/* For good: fails every queued command back with `error` and refuses
 * every later one (dgw_sender_command() returns DGW_ERR_STATE), so a
 * `done` that queues again cannot leave a command behind.  For an owner
 * about to free the sender. */
void dgw_sender_shutdown(struct dgw_sender *s, int error);

/* Commands waiting, and payloads sent in the current window. */
size_t dgw_sender_queued(const struct dgw_sender *s);
uint32_t dgw_sender_in_window(const struct dgw_sender *s);

#endif /* DGW_SENDER_H */
