/* The in-process identify queue: buckets of max_concurrency, one
 * IDENTIFY per bucket per window, within the daily session-start budget.
 * A bucket's window runs from the moment its IDENTIFY was written (the
 * shard's sent()), and the bucket grants nothing while a grant waits for
 * that write.  Early waiters (lazy connect) stand in line like the others
 * and are woken (near()) once their expected grant is within their lead. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>

#include "clock.h"
#include "identify.h"

struct waiter {
  struct waiter *next;
  void *shard;
  /* early(): near() not called yet while asleep; not ready (granted
   * nothing) until the shard's request() says it is connected. */
  dgw_identify_grant_fn near;
  void *near_data;
  uint32_t lead_ms;
  int asleep;
  int ready;
};

struct bucket {
  struct waiter *head, *tail;
  void *pending;             /* granted, IDENTIFY not yet written */
  uint64_t pending_since_ms; /* when `pending` was granted */
  uint64_t start_ms;         /* the window's start: the last send */
  int started;               /* start_ms is set */
};

struct local_queue {
  struct dgw_identify_queue iface; /* first: the interface */
  struct event_base *base;
  struct dgw_identify_limits lim;
  dgw_identify_grant_fn grant;
  void *user_data;
  dgw_log_fn log;
  void *log_user_data;
  struct bucket *buckets;
  struct event *timer;
  uint64_t budget_resets_at_ms;
  uint64_t granted;
  int budget_logged;
};

static void schedule(struct local_queue *q);

/* When bucket `b` could grant next, at the earliest: a grant still
 * waiting for its write starts a window no sooner than now. */
static uint64_t bucket_next_ms(const struct local_queue *q,
                               const struct bucket *b, uint64_t now) {
  uint64_t at = now;

  if (b->pending != NULL)
    at = now + q->lim.window_ms;
  else if (b->started && b->start_ms + q->lim.window_ms > now)
    at = b->start_ms + q->lim.window_ms;
  if (q->lim.remaining == 0 && q->budget_resets_at_ms > at)
    at = q->budget_resets_at_ms;
  return at;
}

/* Early waiters of `b` whose grant is expected within their lead: with
 * `wake`, calls their near() (they connect now); returns when the next
 * sleeping one's lead starts (UINT64_MAX: none sleeps).  The k-th waiter
 * of a bucket is expected k windows after the bucket's next grant. */
static uint64_t wake_near(struct local_queue *q, struct bucket *b, uint64_t now,
                          int wake) {
  uint64_t at = bucket_next_ms(q, b, now);

  for (struct waiter *w = b->head; w != NULL;
       w = w->next, at += q->lim.window_ms) {
    if (!w->asleep)
      continue;
    if (at > now + w->lead_ms)
      return at - w->lead_ms;
    if (!wake)
      return now;
    w->asleep = 0;
    w->near(w->shard, w->near_data);
  }
  return UINT64_MAX;
}

static void local_log(struct local_queue *q, const char *msg) {
  if (q->log != NULL)
    q->log(DGW_LOG_WARN, msg, q->log_user_data);
}

/* How long a grant may wait for its sent() or cancel(). */
static uint64_t pending_max_ms(const struct local_queue *q) {
  uint64_t m = (uint64_t)q->lim.window_ms * DGW_IDENTIFY_PENDING_MAX;

  return m < 1000 ? 1000 : m;
}

/* `b`'s grant heard neither sent() nor cancel() in time: taken as sent
 * now (the write may still come; nothing later than now is known). */
static void give_up_pending(struct local_queue *q, struct bucket *b,
                            uint64_t now) {
  char line[160];

  snprintf(line, sizeof(line),
           "identify: a granted IDENTIFY was neither sent nor cancelled "
           "within %llu ms; its bucket goes on",
           (unsigned long long)pending_max_ms(q));
  local_log(q, line);
  b->pending = NULL;
  b->start_ms = now;
  b->started = 1;
}

/* Grants every bucket whose window has passed, within the budget; then
 * sets the timer for the next moment something can happen. */
static void run(struct local_queue *q) {
  uint64_t now = dgw_monotonic_ms();

  if (q->lim.remaining == 0 && now >= q->budget_resets_at_ms &&
      q->budget_resets_at_ms > 0) {
    q->lim.remaining = q->lim.total > 0 ? q->lim.total : 1000;
    q->budget_logged = 0;
  }
  for (uint32_t i = 0; i < q->lim.max_concurrency; i++) {
    struct bucket *b = &q->buckets[i];
    struct waiter *w;

    /* A grant runs its shard's code (IDENTIFY encoded, maybe written):
     * the next bucket reads the clock again rather than stamp its grant
     * with a time from before that work. */
    if (i > 0)
      now = dgw_monotonic_ms();
    if (b->pending != NULL && now - b->pending_since_ms >= pending_max_ms(q))
      give_up_pending(q, b, now);
    if (b->head == NULL || q->lim.remaining == 0 || b->pending != NULL)
      continue;
    if (b->started && now - b->start_ms < q->lim.window_ms)
      continue;
    if (!b->head->ready)
      continue; /* an early shard still connecting: woken below */
    w = b->head;
    b->head = w->next;
    if (b->head == NULL)
      b->tail = NULL;
    /* The window starts at the grant until sent() moves it to the write;
     * set before grant(), which may call sent() at once. */
    b->pending = w->shard;
    b->pending_since_ms = now;
    b->start_ms = now;
    b->started = 1;
    if (q->lim.remaining > 0)
      q->lim.remaining--;
    q->granted++;
    q->grant(w->shard, q->user_data);
    free(w);
  }
  now = dgw_monotonic_ms();
  for (uint32_t i = 0; i < q->lim.max_concurrency; i++)
    (void)wake_near(q, &q->buckets[i], now, 1);
  schedule(q);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  (void)fd;
  (void)what;
  run(arg);
}

static void schedule(struct local_queue *q) {
  uint64_t now = dgw_monotonic_ms();
  uint64_t next = UINT64_MAX;

  for (uint32_t i = 0; i < q->lim.max_concurrency; i++) {
    struct bucket *b = &q->buckets[i];
    uint64_t at, wake_at;

    if (b->head == NULL)
      continue;
    wake_at = wake_near(q, b, now, 0);
    if (wake_at < next)
      next = wake_at;
    if (b->pending == NULL && !b->head->ready)
      continue; /* its request() or cancel() reschedules */
    if (b->pending != NULL)
      at = b->pending_since_ms + pending_max_ms(q);
    else
      at = b->started ? b->start_ms + q->lim.window_ms : now;
    if (q->lim.remaining == 0) {
      at = q->budget_resets_at_ms;
      if (!q->budget_logged) {
        char line[160];

        snprintf(line, sizeof(line),
                 "identify: daily session-start budget used up; waiting %llu "
                 "ms for it to reset",
                 (unsigned long long)(at > now ? at - now : 0));
        local_log(q, line);
        q->budget_logged = 1;
      }
    }
    if (at < next)
      next = at;
  }
  evtimer_del(q->timer);
  if (next != UINT64_MAX) {
    uint64_t wait = next > now ? next - now : 0;
    struct timeval tv = dgw_timeval_ms(wait);

    evtimer_add(q->timer, &tv);
  }
}

/* Appends `shard` to its bucket's line; NULL without memory. */
static struct waiter *enqueue(struct local_queue *q, void *shard,
                              uint32_t shard_id) {
  struct bucket *b = &q->buckets[shard_id % q->lim.max_concurrency];
  struct waiter *w = calloc(1, sizeof(*w));

  if (w == NULL)
    return NULL;
  w->shard = shard;
  w->ready = 1;
  if (b->tail != NULL)
    b->tail->next = w;
  else
    b->head = w;
  b->tail = w;
  return w;
}

static void local_request(struct dgw_identify_queue *iface, void *shard,
                          uint32_t shard_id) {
  struct local_queue *q = (struct local_queue *)iface;
  struct bucket *b = &q->buckets[shard_id % q->lim.max_concurrency];

  /* An early shard, connected now, keeps its place in line (it is near
   * the head: it was woken, or connected on its own). */
  for (struct waiter *w = b->head; w != NULL; w = w->next)
    if (w->shard == shard) {
      w->ready = 1;
      w->asleep = 0;
      run(q);
      return;
    }
  if (enqueue(q, shard, shard_id) == NULL) {
    q->grant(shard, q->user_data); /* better early than never */
    return;
  }
  run(q);
}

static int local_early(struct dgw_identify_queue *iface, void *shard,
                       uint32_t shard_id, uint32_t lead_ms,
                       dgw_identify_grant_fn near, void *near_data) {
  struct local_queue *q = (struct local_queue *)iface;
  struct waiter *w;

  if (near == NULL || (w = enqueue(q, shard, shard_id)) == NULL)
    return -1; /* the shard connects now and asks as before */
  w->near = near;
  w->near_data = near_data;
  w->lead_ms = lead_ms;
  w->asleep = 1;
  w->ready = 0;
  run(q);
  return 0;
}

static void local_sent(struct dgw_identify_queue *iface, void *shard,
                       uint32_t shard_id) {
  struct local_queue *q = (struct local_queue *)iface;
  struct bucket *b = &q->buckets[shard_id % q->lim.max_concurrency];
  uint64_t now = dgw_monotonic_ms();

  if (b->pending == shard)
    b->pending = NULL;
  /* Any write moves the window later, even one the queue no longer
   * tracks (given up, or granted by a queue this one replaced). */
  if (!b->started || now > b->start_ms)
    b->start_ms = now;
  b->started = 1;
  schedule(q);
}

static void local_cancel(struct dgw_identify_queue *iface, void *shard) {
  struct local_queue *q = (struct local_queue *)iface;

  /* A grant whose IDENTIFY was never written: the window runs from the
   * grant, and the next waiter goes when it has passed. */
  for (uint32_t i = 0; i < q->lim.max_concurrency; i++)
    if (q->buckets[i].pending == shard) {
      q->buckets[i].pending = NULL;
      schedule(q);
      return;
    }
  for (uint32_t i = 0; i < q->lim.max_concurrency; i++) {
    struct bucket *b = &q->buckets[i];
    struct waiter *prev = NULL;

    for (struct waiter *w = b->head; w != NULL; prev = w, w = w->next)
      if (w->shard == shard) {
        if (prev != NULL)
          prev->next = w->next;
        else
          b->head = w->next;
        if (b->tail == w)
          b->tail = prev;
        free(w);
        schedule(q);
        return;
      }
  }
}

static void local_destroy(struct dgw_identify_queue *iface) {
  struct local_queue *q = (struct local_queue *)iface;

  if (q == NULL)
    return;
  if (q->buckets != NULL)
    for (uint32_t i = 0; i < q->lim.max_concurrency; i++)
      while (q->buckets[i].head != NULL) {
        struct waiter *w = q->buckets[i].head;

        q->buckets[i].head = w->next;
        free(w);
      }
  if (q->timer != NULL)
    event_free(q->timer);
  free(q->buckets);
  free(q);
}

struct dgw_identify_queue *
dgw_identify_local_new(struct event_base *base,
                       const struct dgw_identify_limits *limits,
                       dgw_identify_grant_fn grant, void *user_data,
                       dgw_log_fn log, void *log_user_data) {
  struct local_queue *q = calloc(1, sizeof(*q));

  if (q == NULL)
    return NULL;
  q->iface.request = local_request;
  q->iface.cancel = local_cancel;
  q->iface.destroy = local_destroy;
  q->iface.sent = local_sent;
  q->iface.early = local_early;
  q->base = base;
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
  q->log_user_data = log_user_data;
  q->buckets = calloc(q->lim.max_concurrency, sizeof(*q->buckets));
  q->timer = evtimer_new(base, timer_cb, q);
  if (q->buckets == NULL || q->timer == NULL) {
    local_destroy(&q->iface);
    return NULL;
  }
  return &q->iface;
}

uint64_t dgw_identify_local_granted(const struct dgw_identify_queue *iface) {
  return ((const struct local_queue *)iface)->granted;
}

void dgw_identify_local_limits(const struct dgw_identify_queue *iface,
                               struct dgw_identify_limits *out) {
  *out = ((const struct local_queue *)iface)->lim;
}
