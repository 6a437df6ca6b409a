/*
 * The identify queue: who may IDENTIFY when.  Internal to dgw.
 *
 * Discord allows `max_concurrency` IDENTIFYs per 5 s, bucketed by
 * shard_id % max_concurrency (one per bucket per window), and a daily
 * budget of session starts (`session_start_limit`): exceeding it resets the
 * bot's token.  Shards ask; the queue grants, in order, when the bucket's
 * window and the budget allow.  Discord counts IDENTIFYs as they arrive,
 * so a bucket's window starts when the granted IDENTIFY is written (see
 * `sent`), not when it is granted: a loop stalled between the two would
 * otherwise let two IDENTIFYs of a bucket land closer than the window.
 *
 * The queue is an interface (a table of functions) so that a deployment
 * spreading shards over several machines can plug in a coordinated one;
 * dgw_identify_local_new() is the in-process implementation.
 */
#ifndef DGW_IDENTIFY_H
#define DGW_IDENTIFY_H

#include <stdint.h>

#include <event2/event.h>

#include <dgw/dgw.h>

/* Called when `shard` may IDENTIFY now (also the type of early()'s
 * near(): `shard`'s turn is near). */
typedef void (*dgw_identify_grant_fn)(void *shard, void *user_data);

struct dgw_identify_queue {
  /* `shard` (an opaque non-NULL pointer; its id decides the bucket) wants to
   * IDENTIFY: the queue calls grant(shard) once, now or later. */
  void (*request)(struct dgw_identify_queue *q, void *shard, uint32_t shard_id);
  /* `shard` stopped waiting (its connection went away): forget it. */
  void (*cancel)(struct dgw_identify_queue *q, void *shard);
  /* Frees the queue; pending requests are dropped without grants. */
  void (*destroy)(struct dgw_identify_queue *q);
  /* `shard` (id `shard_id`) has just written its granted IDENTIFY: the
   * bucket's window starts now.  The shard calls it right after the
   * write; a shard that loses its connection between the grant and the
   * write calls cancel() instead.  May be NULL (a queue that spaces its
   * grants only); last, so that tables written before it stay valid. */
  void (*sent)(struct dgw_identify_queue *q, void *shard, uint32_t shard_id);
  /* Lazy connect.  `shard` wants to IDENTIFY but has no connection yet:
   * it joins the line now, and the queue calls near(shard, near_data)
   * once, when its grant is expected within `lead_ms` (at once when it is
   * that close already), so that it connects in time.  Once connected
   * (HELLO) the shard calls request() as any other and keeps its place in
   * line; nothing is granted to it before that, and its bucket waits for
   * it (or for its cancel(), which forgets an early shard too).  near()
   * is called from the queue's timer, or inside early() or request(); it
   * must only schedule the connection, never call into the queue.  Returns 0
   * when queued; nonzero when the queue cannot say (the shard connects at once
   * and calls request() at HELLO, as without early()).  May be NULL: the same
   * as nonzero. */
  int (*early)(struct dgw_identify_queue *q, void *shard, uint32_t shard_id,
               uint32_t lead_ms, dgw_identify_grant_fn near, void *near_data);
};

struct dgw_identify_limits {
  uint32_t max_concurrency; /* buckets; 0 means 1 */
  uint32_t window_ms;       /* per bucket; 0 means 5000 */
  /* Session starts left, and when the budget resets (ms from now) to
   * `total`; remaining < 0 means unknown (no budget enforced). */
  int64_t remaining;
  uint64_t reset_after_ms;
  int64_t total;
};

/*
 * The in-process queue on `base`.  `grant` is called from the loop (or
 * inside request() when the bucket is free).  `log` may be NULL; it says
 * when the queue waits for the daily budget.  NULL without memory.
 *
 * After a grant the bucket waits for the shard's sent() (the window then
 * runs from that moment; a sent() later than the window start, from a
 * shard the queue no longer tracks, still moves it later) or cancel()
 * (the window runs from the grant: nothing more was written).  A grant
 * that hears neither within DGW_IDENTIFY_PENDING_MAX windows (at least
 * 1 s) is given up, with a warning, as if sent then: the bucket never
 * stays blocked for good.
 */
#define DGW_IDENTIFY_PENDING_MAX 2

struct dgw_identify_queue *
dgw_identify_local_new(struct event_base *base,
                       const struct dgw_identify_limits *limits,
                       dgw_identify_grant_fn grant, void *user_data,
                       dgw_log_fn log, void *log_user_data);

/* Grants given so far by a local queue (for tests and stats). */
uint64_t dgw_identify_local_granted(const struct dgw_identify_queue *q);

/* The limits a local queue runs with now (for tests): `remaining` counts
 * down with each grant. */
void dgw_identify_local_limits(const struct dgw_identify_queue *q,
                               struct dgw_identify_limits *out);

#endif /* DGW_IDENTIFY_H */
