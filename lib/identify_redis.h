/*
 * The identify queue shared through Redis (lib/identify_redis.c): the
 * interface of lib/identify.h for several dgw processes of one bot.
 * Internal to dgw; built only with hiredis (HAVE_HIREDIS).  Keys, the
 * guarantees and the outage behaviour: docs/redis.md.
 *
 * - one IDENTIFY per bucket (shard_id % max_concurrency) per window
 *   across every process using the same Redis and bot name: a grant is a
 *   key with a PX expiry of one window, set by an atomic Lua script;
 * - the daily session-start budget is one counter in Redis, seeded from
 *   `limits` (remaining, reset_after_ms) and decremented per grant;
 * - fair order: per bucket, the oldest waiter (by its first request)
 *   wins; the waiters of a process that died expire after `stale` ms;
 * - a process that dies holding a grant loses nothing: the grant key
 *   simply expires at the end of its window;
 * - Redis down: nobody is granted (never an IDENTIFY without a grant),
 *   logged once per outage; after Redis lost its data (a restart without
 *   persistence) every bucket waits one window before the next grant.
 */
#ifndef DGW_IDENTIFY_REDIS_H
#define DGW_IDENTIFY_REDIS_H

#include "identify.h"
#include "redis.h"

/*
 * A queue on `redis` (not owned: free the queue first) for bot `name`
 * (the keys' hash tag: dgw:{NAME}:identify:...).  `limits` as for
 * dgw_identify_local_new(); every process of one bot should pass the same
 * max_concurrency and window.  `grant` is always called from the loop,
 * never inside request().  `log` may be NULL.  NULL without memory or for
 * an empty or over-long `name`.
 */
struct dgw_identify_queue *dgw_identify_redis_new(
    struct event_base *base, struct dgw_redis *redis, const char *name,
    const struct dgw_identify_limits *limits, dgw_identify_grant_fn grant,
    void *user_data, dgw_log_fn log, void *log_user_data);

/* Grants given so far by this queue (for tests and stats). */
uint64_t dgw_identify_redis_granted(const struct dgw_identify_queue *q);

/* The intervals a redis queue runs with (for tests): a waiter polls at
 * least every `poll_ms` (default: window / 5, 50 to 1000 ms), and a
 * waiter not seen for `stale_ms` (default: the larger of 2000, 5 polls and
 * 2 windows) is dropped from the line.  0 keeps the current value. */
void dgw_identify_redis_set_timing(struct dgw_identify_queue *q,
                                   uint32_t poll_ms, uint32_t stale_ms);

#endif /* DGW_IDENTIFY_REDIS_H */
