/* The identify queue shared through Redis: see identify_redis.h and
 * docs/redis.md.  Each waiting shard is a member of its bucket's line in
 * Redis; it runs the TRY script when it may be due (at the end of the
 * window Redis reported, or every poll interval while someone older waits)
 * and is granted when the script says so.  No lock is ever held: a grant
 * is a key that expires by itself. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "clock.h"
#include "guard.h"
#include "identify_redis.h"

/* KEYS: bucket, line (ZSET by first request), seen (ZSET by last poll),
 * budget, epoch, hold.  ARGV: member, window_ms, stale_ms, seed (the
 * budget's remaining to seed with, -1: no budget), seed_ttl_ms.
 * Returns {code, ms}: 0 the bucket is busy for ms; 1 someone older waits;
 * 2 the daily budget is used up until ms from now; 3 granted.
 * The epoch key is missing only on first use or after Redis lost its data:
 * then every bucket holds for one window, since a grant given before the
 * loss may still be in its window. */
static struct redis_script try_script = REDIS_SCRIPT(
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "local me, window = ARGV[1], tonumber(ARGV[2])\n"
    "if redis.call('SET', KEYS[5], '1', 'NX') then\n"
    "  redis.call('SET', KEYS[6], '1', 'PX', window)\n"
    "end\n"
    "redis.call('ZADD', KEYS[2], 'NX', now, me)\n"
    "redis.call('ZADD', KEYS[3], now, me)\n"
    "local dead = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf',\n"
    "                        now - tonumber(ARGV[3]))\n"
    "for _, m in ipairs(dead) do\n"
    "  redis.call('ZREM', KEYS[2], m)\n"
    "  redis.call('ZREM', KEYS[3], m)\n"
    "end\n"
    "local wait = math.max(redis.call('PTTL', KEYS[1]),\n"
    "                      redis.call('PTTL', KEYS[6]))\n"
    "if wait > 0 then return {0, wait} end\n"
    "if redis.call('ZRANGE', KEYS[2], 0, 0)[1] ~= me then return {1, 0} end\n"
    "if tonumber(ARGV[4]) >= 0 then\n"
    "  redis.call('SET', KEYS[4], ARGV[4], 'PX', ARGV[5], 'NX')\n"
    "  if tonumber(redis.call('GET', KEYS[4])) <= 0 then\n"
    "    return {2, redis.call('PTTL', KEYS[4])}\n"
    "  end\n"
    "  redis.call('DECR', KEYS[4])\n"
    "end\n"
    "redis.call('SET', KEYS[1], me, 'PX', window)\n"
    "redis.call('ZREM', KEYS[2], me)\n"
    "redis.call('ZREM', KEYS[3], me)\n"
    "return {3, window}\n");

/* A grant that arrived for a waiter already cancelled: give the bucket
 * (and the budget's unit) back.  KEYS: bucket, budget; ARGV: member,
 * budget on (1/0). */
static struct redis_script release_script = REDIS_SCRIPT(
    "if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
    "  redis.call('DEL', KEYS[1])\n"
    "  if ARGV[2] == '1' and redis.call('EXISTS', KEYS[2]) == 1 then\n"
    "    redis.call('INCR', KEYS[2])\n"
    "  end\n"
    "  return 1\n"
    "end\n"
    "return 0\n");

enum { TRY_BUSY = 0, TRY_BEHIND = 1, TRY_BUDGET = 2, TRY_GRANTED = 3 };

struct redis_queue;

struct waiter {
  struct waiter *next;
  struct redis_queue *q; /* NULL once the queue is gone */
  void *shard;
  uint32_t bucket;
  char member[128];
  uint64_t next_at; /* monotonic ms of the next try */
  int in_flight;    /* a TRY is out; its reply decides */
  int cancelled;    /* off the list; freed when the reply comes */
};

struct redis_queue {
  struct dgw_identify_queue iface; /* first: the interface */
  struct event_base *base;
  struct dgw_redis *redis;
  char prefix[160]; /* dgw:{NAME}:identify: */
  char proc[96];    /* this queue's part of the member names */
  struct dgw_identify_limits lim;
  uint64_t budget_resets_at_ms;
  uint64_t granted;
  dgw_identify_grant_fn grant;
  void *user_data;
  dgw_log_fn log;
  void *log_ud;
  struct waiter *head;
  struct event *timer;
  uint32_t poll_ms, stale_ms;
  int down_logged, budget_logged;
  struct dgw_guard guard;
};

static void qlog(struct redis_queue *q, enum dgw_log_level level,
                 const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void qlog(struct redis_queue *q, enum dgw_log_level level,
                 const char *fmt, ...) {
  char line[512];
  va_list ap;

  if (q->log == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  q->log(level, line, q->log_ud);
}

static void destroy_now(struct redis_queue *q);

static int leave(struct redis_queue *q) {
  if (dgw_guard_leave(&q->guard)) {
    destroy_now(q);
    return 1;
  }
  return 0;
}

static void key(const struct redis_queue *q, char *out, size_t len,
                const char *what, long bucket) {
  if (bucket >= 0)
    snprintf(out, len, "%s%s:%ld", q->prefix, what, bucket);
  else
    snprintf(out, len, "%s%s", q->prefix, what);
}

/* The budget to seed Redis with when its counter is missing: what this
 * process knows (remaining minus its own grants) before the reset, the
 * full total after it.  "After" starts a little early (a quarter of the
 * reset delay, at most 2 s): the counter a process seeded expires at that
 * process's reset, and another that read GET /gateway/bot a moment later
 * must not re-seed it with its stale pre-reset view (seen: 1 left instead
 * of total - 1). */
static uint64_t budget_skew_ms(const struct redis_queue *q) {
  uint64_t quarter = q->lim.reset_after_ms / 4;

  return quarter < 2000 ? quarter : 2000;
}

static void budget_seed(const struct redis_queue *q, char *seed, size_t slen,
                        char *ttl, size_t tlen) {
  uint64_t now = dgw_monotonic_ms();
  int64_t left;
  uint64_t ms;

  if (q->lim.remaining < 0) {
    snprintf(seed, slen, "-1");
    snprintf(ttl, tlen, "1");
    return;
  }
  if (now + budget_skew_ms(q) < q->budget_resets_at_ms) {
    left = q->lim.remaining - (int64_t)q->granted;
    ms = q->budget_resets_at_ms - now;
  } else {
    left = q->lim.total > 0 ? q->lim.total : 1000;
    ms = 24ULL * 3600 * 1000;
  }
  snprintf(seed, slen, "%lld", (long long)(left > 0 ? left : 0));
  snprintf(ttl, tlen, "%llu", (unsigned long long)(ms > 0 ? ms : 1));
}

static void schedule(struct redis_queue *q) {
  uint64_t now = dgw_monotonic_ms(), next = UINT64_MAX;

  for (struct waiter *w = q->head; w != NULL; w = w->next)
    if (!w->in_flight && w->next_at < next)
      next = w->next_at;
  evtimer_del(q->timer);
  if (next != UINT64_MAX) {
    struct timeval tv = dgw_timeval_ms(next > now ? next - now : 0);

    evtimer_add(q->timer, &tv);
  }
}

static void unlink_waiter(struct redis_queue *q, struct waiter *w) {
  for (struct waiter **p = &q->head; *p != NULL; p = &(*p)->next)
    if (*p == w) {
      *p = w->next;
      return;
    }
}

static void send_release(struct dgw_redis *r, struct redis_queue *q,
                         const struct waiter *w) {
  char bucket[200], budget[200];
  const char *argv[4];

  if (q == NULL)
    return; /* the keys' names went with the queue: the grant expires */
  key(q, bucket, sizeof(bucket), "bucket", w->bucket);
  key(q, budget, sizeof(budget), "budget", -1);
  argv[0] = bucket;
  argv[1] = budget;
  argv[2] = w->member;
  argv[3] = q->lim.remaining >= 0 ? "1" : "0";
  redis_eval(r, &release_script, 2, 4, argv, NULL, NULL, NULL);
}

/* Redis could not be asked: wait for it (logged once per outage). */
static void redis_unavailable(struct redis_queue *q, struct waiter *w,
                              const char *cause) {
  if (!q->down_logged) {
    qlog(q, DGW_LOG_WARN,
         "identify: Redis (%s) unavailable: %s; shards wait for it before "
         "any IDENTIFY",
         redis_describe(q->redis), cause);
    q->down_logged = 1;
  }
  w->next_at = dgw_monotonic_ms() + q->poll_ms;
}

static void try_reply(struct dgw_redis *r, redisReply *reply, const char *err,
                      void *ud) {
  struct waiter *w = ud;
  struct redis_queue *q = w->q;
  long long code, ms;
  uint64_t now = dgw_monotonic_ms();

  w->in_flight = 0;
  if (w->cancelled || q == NULL) {
    if (reply != NULL && reply->type == REDIS_REPLY_ARRAY &&
        reply->elements == 2 && reply->element[0]->integer == TRY_GRANTED)
      send_release(r, q, w);
    free(w);
    return;
  }
  dgw_guard_enter(&q->guard);
  if (err != NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
      reply->elements != 2) {
    redis_unavailable(q, w, err != NULL ? err : "unexpected reply");
    goto out;
  }
  if (q->down_logged) {
    qlog(q, DGW_LOG_INFO, "identify: Redis (%s) is back", redis_describe(r));
    q->down_logged = 0;
  }
  code = reply->element[0]->integer;
  ms = reply->element[1]->integer;
  if (ms < 0)
    ms = 0;
  switch (code) {
  case TRY_GRANTED:
    unlink_waiter(q, w);
    q->granted++;
    q->budget_logged = 0;
    q->grant(w->shard, q->user_data);
    free(w);
    break;
  case TRY_BUSY: /* due when the window ends; keep the place in line */
    w->next_at = now + ((uint64_t)ms < q->poll_ms ? (uint64_t)ms : q->poll_ms);
    break;
  case TRY_BUDGET:
    if (!q->budget_logged) {
      qlog(q, DGW_LOG_WARN,
           "identify: the daily session-start budget (shared in Redis) is "
           "used up; waiting %lld ms for it to reset",
           ms);
      q->budget_logged = 1;
    }
    w->next_at = now + ((uint64_t)ms < q->poll_ms ? (uint64_t)ms : q->poll_ms);
    break;
  default: /* TRY_BEHIND */
    w->next_at = now + q->poll_ms;
    break;
  }
out:
  if (!dgw_guard_dying(&q->guard))
    schedule(q);
  leave(q);
}

static void try_send(struct redis_queue *q, struct waiter *w) {
  char keys[6][200], seed[32], ttl[32], window[16], stale[16];
  const char *argv[11];

  key(q, keys[0], sizeof(keys[0]), "bucket", w->bucket);
  key(q, keys[1], sizeof(keys[1]), "line", w->bucket);
  key(q, keys[2], sizeof(keys[2]), "seen", w->bucket);
  key(q, keys[3], sizeof(keys[3]), "budget", -1);
  key(q, keys[4], sizeof(keys[4]), "epoch", -1);
  key(q, keys[5], sizeof(keys[5]), "hold", -1);
  budget_seed(q, seed, sizeof(seed), ttl, sizeof(ttl));
  snprintf(window, sizeof(window), "%u", q->lim.window_ms);
  snprintf(stale, sizeof(stale), "%u", q->stale_ms);
  for (int i = 0; i < 6; i++)
    argv[i] = keys[i];
  argv[6] = w->member;
  argv[7] = window;
  argv[8] = stale;
  argv[9] = seed;
  argv[10] = ttl;
  if (!redis_is_up(q->redis)) {
    redis_unavailable(q, w, "not connected");
    return;
  }
  if (redis_eval(q->redis, &try_script, 6, 11, argv, NULL, try_reply, w) < 0) {
    redis_unavailable(q, w, "cannot send");
    return;
  }
  w->in_flight = 1;
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct redis_queue *q = arg;
  uint64_t now = dgw_monotonic_ms();

  (void)fd;
  (void)what;
  dgw_guard_enter(&q->guard);
  for (struct waiter *w = q->head; w != NULL; w = w->next)
    if (!w->in_flight && w->next_at <= now)
      try_send(q, w);
  schedule(q);
  leave(q);
}

static void rq_request(struct dgw_identify_queue *iface, void *shard,
                       uint32_t shard_id) {
  struct redis_queue *q = (struct redis_queue *)iface;
  struct waiter *w = calloc(1, sizeof(*w)), **tail;
  static uint64_t seq;

  if (w == NULL)
    return; /* never IDENTIFY without a grant: the shard keeps waiting */
  w->q = q;
  w->shard = shard;
  w->bucket = shard_id % q->lim.max_concurrency;
  /* Unique per request: a repeated request is a new place in line. */
  snprintf(w->member, sizeof(w->member), "%s:%u:%llu", q->proc, shard_id,
           (unsigned long long)++seq);
  w->next_at = dgw_monotonic_ms();
  for (tail = &q->head; *tail != NULL; tail = &(*tail)->next)
    ;
  *tail = w;
  schedule(q); /* from the loop: grant never runs inside request() */
}

/* Leaves the line in Redis now rather than when the entry goes stale. */
static void leave_line(struct redis_queue *q, const struct waiter *w) {
  char line[200], seen[200];

  if (!redis_is_up(q->redis))
    return;
  key(q, line, sizeof(line), "line", w->bucket);
  key(q, seen, sizeof(seen), "seen", w->bucket);
  redis_command(q->redis, NULL, NULL, "ZREM %s %s", line, w->member);
  redis_command(q->redis, NULL, NULL, "ZREM %s %s", seen, w->member);
}

static void rq_cancel(struct dgw_identify_queue *iface, void *shard) {
  struct redis_queue *q = (struct redis_queue *)iface;

  for (struct waiter *w = q->head; w != NULL; w = w->next)
    if (w->shard == shard) {
      unlink_waiter(q, w);
      leave_line(q, w);
      if (w->in_flight)
        w->cancelled = 1; /* try_reply frees it (and gives back a grant) */
      else
        free(w);
      schedule(q);
      return;
    }
}

static void destroy_now(struct redis_queue *q) {
  while (q->head != NULL) {
    struct waiter *w = q->head;

    q->head = w->next;
    leave_line(q, w);
    if (w->in_flight) {
      w->q = NULL; /* its reply frees it */
      w->cancelled = 1;
    } else {
      free(w);
    }
  }
  if (q->timer != NULL)
    event_free(q->timer);
  free(q);
}

static void rq_destroy(struct dgw_identify_queue *iface) {
  struct redis_queue *q = (struct redis_queue *)iface;

  if (q != NULL && dgw_guard_free(&q->guard))
    destroy_now(q);
}

struct dgw_identify_queue *dgw_identify_redis_new(
    struct event_base *base, struct dgw_redis *redis, const char *name,
    const struct dgw_identify_limits *limits, dgw_identify_grant_fn grant,
    void *user_data, dgw_log_fn log, void *log_user_data) {
  struct redis_queue *q;
  char host[64] = "";

  if (name == NULL || name[0] == '\0' || strlen(name) > 100 ||
      strpbrk(name, "{}") != NULL)
    return NULL;
  q = calloc(1, sizeof(*q));
  if (q == NULL)
    return NULL;
  q->iface.request = rq_request;
  q->iface.cancel = rq_cancel;
  q->iface.destroy = rq_destroy;
  q->base = base;
  q->redis = redis;
  q->lim = *limits;
  if (q->lim.max_concurrency == 0)
    q->lim.max_concurrency = 1;
  if (q->lim.window_ms == 0)
    q->lim.window_ms = 5000;
  if (q->lim.remaining >= 0)
    q->budget_resets_at_ms = dgw_monotonic_ms() + q->lim.reset_after_ms;
  q->grant = grant;
  q->user_data = user_data;
  q->log = log;
  q->log_ud = log_user_data;
  q->poll_ms = q->lim.window_ms / 5;
  if (q->poll_ms < 50)
    q->poll_ms = 50;
  if (q->poll_ms > 1000)
    q->poll_ms = 1000;
  q->stale_ms = 2000;
  if (q->stale_ms < 5 * q->poll_ms)
    q->stale_ms = 5 * q->poll_ms;
  if (q->stale_ms < 2 * q->lim.window_ms)
    q->stale_ms = 2 * q->lim.window_ms;
  snprintf(q->prefix, sizeof(q->prefix), "dgw:{%s}:identify:", name);
  gethostname(host, sizeof(host) - 1);
  snprintf(q->proc, sizeof(q->proc), "%s:%ld:%llx", host, (long)getpid(),
           (unsigned long long)(dgw_monotonic_ns() ^ (uintptr_t)q));
  q->timer = evtimer_new(base, timer_cb, q);
  if (q->timer == NULL) {
    free(q);
    return NULL;
  }
  return &q->iface;
}

uint64_t dgw_identify_redis_granted(const struct dgw_identify_queue *iface) {
  return ((const struct redis_queue *)iface)->granted;
}

void dgw_identify_redis_set_timing(struct dgw_identify_queue *iface,
                                   uint32_t poll_ms, uint32_t stale_ms) {
  struct redis_queue *q = (struct redis_queue *)iface;

  if (poll_ms != 0)
    q->poll_ms = poll_ms;
  if (stale_ms != 0)
    q->stale_ms = stale_ms;
}
