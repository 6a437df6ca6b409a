/*
 * The send side of a shard without I/O: a sliding-window limiter for the
 * payloads sent on one connection, and the bounded FIFO of commands waiting
 * for room in it.  Time is passed in (milliseconds on a monotonic clock), so
 * unit tests drive both without a loop.  Internal to dgw.
 *
 * Discord allows 120 payloads in 60 s per connection and closes with 4008
 * past that (gateway-protocol.md section 6.1).  Every payload counts:
 * heartbeats, IDENTIFY and RESUME included.  The limiter keeps the stamps of
 * the last `budget` sends, so no span of `window_ms` ever holds more than
 * `budget` of them, and keeps `reserved` of those slots out of reach of user
 * commands so they can never starve a heartbeat.
 *
 * How the gateway uses it: a heartbeat or an IDENTIFY/RESUME asks
 * dgw_ratelimit_try() with its class and goes out when allowed (it always is
 * in practice, see DGW_RATELIMIT_DEFAULT_RESERVED).  A command goes straight
 * out only when the send queue is empty and dgw_ratelimit_try() allows it;
 * otherwise it is pushed on the shard's dgw_sendq, and a timer set for
 * dgw_ratelimit_next_ms() drains the queue in order.  The limiter is reset
 * on every new connection; the queue is per shard and survives a resume.
 *
 * No function here accepts a NULL limiter or queue unless it says so.
 */
#ifndef DGW_RATELIMIT_H
#define DGW_RATELIMIT_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

/* Discord's send budget: payloads per window, and the window length. */
#define DGW_RATELIMIT_DEFAULT_BUDGET 120u
#define DGW_RATELIMIT_DEFAULT_WINDOW_MS 60000u
/*
 * Slots of each window that user commands may not use (they get 115).  With
 * Discord's heartbeat interval of about 41 s a window holds at most 2
 * scheduled heartbeats, plus 1 IDENTIFY or RESUME per connection; the other
 * 2 cover heartbeats the gateway asks for with op 1 and the skew between our
 * clock and Discord's count.
 */
#define DGW_RATELIMIT_DEFAULT_RESERVED 5u
/* Largest budget accepted, to bound the stamp ring (8 bytes a slot). */
#define DGW_RATELIMIT_MAX_BUDGET 65536u

/* Default and largest capacity of a shard's send queue. */
#define DGW_SENDQ_DEFAULT_CAPACITY 256u
#define DGW_SENDQ_MAX_CAPACITY 65536u
/* What dgw_sendq_push() returns when the queue is full. */
#define DGW_SENDQ_ERR_FULL DGW_ERR_QUEUE_FULL

/* Who a payload is for; decides how much of the budget it may use. */
enum dgw_send_class {
  /* IDENTIFY and RESUME: the whole budget, and never behind commands. */
  DGW_SEND_CONTROL = 0,
  /* Heartbeats (op 1): the whole budget. */
  DGW_SEND_HEARTBEAT = 1,
  /* Everything else (user commands, raw sends): budget - reserved. */
  DGW_SEND_COMMAND = 2,
};

/* One connection's send limiter.  Opaque. */
struct dgw_ratelimit;

/*
 * Creates a limiter allowing `budget` sends in any `window_ms`
 * milliseconds, of which `reserved` are kept from DGW_SEND_COMMAND (pass the
 * DGW_RATELIMIT_DEFAULT_* values for Discord's).  Requires 1 <= budget <=
 * DGW_RATELIMIT_MAX_BUDGET, reserved < budget (commands keep at least one
 * slot) and window_ms >= 1.  Returns the limiter, empty, to be freed with
 * dgw_ratelimit_free(); or NULL with *err (if `err` is not NULL) set to
 * DGW_ERR_INVALID_ARGUMENT or DGW_ERR_NOMEM.
 */
struct dgw_ratelimit *dgw_ratelimit_new(uint32_t budget, uint64_t window_ms,
                                        uint32_t reserved, int *err);

/* Frees `rl`.  NULL is a no-op. */
void dgw_ratelimit_free(struct dgw_ratelimit *rl);

/*
 * Forgets every recorded send: call it when a new connection opens, since
 * Discord counts per connection.  The configuration is kept.
 */
void dgw_ratelimit_reset(struct dgw_ratelimit *rl);

/*
 * Whether a payload of class `cls` may be sent at `now_ms`: returns 1 and
 * records the send when the sends recorded in (now_ms - window_ms, now_ms]
 * number fewer than the class's limit (budget for CONTROL and HEARTBEAT,
 * budget - reserved for COMMAND); returns 0 and records nothing otherwise.
 * A send at t thus stops counting at exactly t + window_ms.  An unknown
 * class is treated as COMMAND.
 *
 * `now_ms` is a monotonic clock and must not go backwards between calls; a
 * smaller value than the last recorded send is taken as that send's time,
 * so the guarantee holds even then.  Call it only for a payload that is
 * then actually sent.
 */
int dgw_ratelimit_try(struct dgw_ratelimit *rl, enum dgw_send_class cls,
                      uint64_t now_ms);

/*
 * The earliest time, at or after `now_ms`, at which dgw_ratelimit_try() for
 * `cls` would return 1 if nothing else is sent meanwhile: `now_ms` itself
 * when it may send now, else the moment enough recorded sends leave the
 * window.  Records nothing; meant for a timer.  Same clock rule as
 * dgw_ratelimit_try().
 */
uint64_t dgw_ratelimit_next_ms(const struct dgw_ratelimit *rl,
                               enum dgw_send_class cls, uint64_t now_ms);

/*
 * How many payloads of class `cls` could be sent at `now_ms` one after the
 * other (0 when none).  Records nothing.
 */
uint32_t dgw_ratelimit_available(const struct dgw_ratelimit *rl,
                                 enum dgw_send_class cls, uint64_t now_ms);

/* The number of sends recorded in (now_ms - window_ms, now_ms]. */
uint32_t dgw_ratelimit_in_window(const struct dgw_ratelimit *rl,
                                 uint64_t now_ms);

/*
 * Called once for every queued command when its fate is known: `result` is
 * DGW_OK once it was handed to the connection, or the error that failed it
 * (given to dgw_sendq_clear()).  `user_data` is the pointer given to
 * dgw_sendq_push().
 */
typedef void (*dgw_send_done_fn)(int result, void *user_data);

/* One queued command. */
struct dgw_sendq_entry {
  char *json; /* the payload text, NUL-terminated, owned by the queue */
  size_t len; /* its length in bytes, without the NUL */
  dgw_send_done_fn done; /* may be NULL */
  void *user_data;
};

/* A shard's bounded FIFO of commands waiting for the limiter.  Opaque. */
struct dgw_sendq;

/*
 * Creates an empty queue holding at most `capacity` commands (1 ..
 * DGW_SENDQ_MAX_CAPACITY; pass DGW_SENDQ_DEFAULT_CAPACITY).  Returns it, to
 * be freed with dgw_sendq_free(); or NULL with *err (if `err` is not NULL)
 * set to DGW_ERR_INVALID_ARGUMENT or DGW_ERR_NOMEM.
 */
struct dgw_sendq *dgw_sendq_new(size_t capacity, int *err);

/*
 * Frees `q` and the commands still in it without calling their `done`
 * callbacks: call dgw_sendq_clear() first to fail them back.  NULL is a
 * no-op.
 */
void dgw_sendq_free(struct dgw_sendq *q);

/*
 * Appends a copy of the `len` bytes at `json` (any bytes; a NUL is added
 * after the copy) with its completion `done` and `user_data` (both
 * optional, both stored as given).  Returns DGW_OK; DGW_SENDQ_ERR_FULL when
 * the queue holds `capacity` commands (nothing is stored and `done` is not
 * called: the caller reports the error itself); DGW_ERR_INVALID_ARGUMENT
 * when `q` is NULL or `json` is NULL or `len` is 0; DGW_ERR_NOMEM.
 */
int dgw_sendq_push(struct dgw_sendq *q, const char *json, size_t len,
                   dgw_send_done_fn done, void *user_data);

/*
 * The oldest command, or NULL when the queue is empty.  Owned by the queue:
 * valid until the next dgw_sendq_push() (the ring may grow and move),
 * dgw_sendq_pop(), dgw_sendq_clear() or dgw_sendq_free().
 */
const struct dgw_sendq_entry *dgw_sendq_peek(const struct dgw_sendq *q);

/*
 * Removes the oldest command.  With `out` not NULL, moves it there: the
 * caller then owns out->json (free() it) and is responsible for calling
 * out->done.  With `out` NULL, frees the text and calls nothing.  Returns
 * DGW_OK, or DGW_ERR_AGAIN when the queue is empty (`*out` is then zeroed).
 */
int dgw_sendq_pop(struct dgw_sendq *q, struct dgw_sendq_entry *out);

/*
 * Fails every queued command back to its caller: removes the commands
 * present at the call, oldest first, and calls each one's `done` (when not
 * NULL) exactly once with `error`, after the command has left the queue and
 * its text has been freed.  Callbacks may push new commands (they stay
 * queued) but must not pop, clear or free `q`.  Use it when the session is
 * lost for good; a resume keeps the queue.  NULL is a no-op.
 */
void dgw_sendq_clear(struct dgw_sendq *q, int error);

/* The number of queued commands. */
size_t dgw_sendq_length(const struct dgw_sendq *q);

/* The capacity given to dgw_sendq_new(). */
size_t dgw_sendq_capacity(const struct dgw_sendq *q);

/* Slots allocated now: 0 while nothing waits (or after a drained burst),
 * else doubled from 8 up to the capacity as commands queue up. */
size_t dgw_sendq_slots(const struct dgw_sendq *q);

#endif /* DGW_RATELIMIT_H */
