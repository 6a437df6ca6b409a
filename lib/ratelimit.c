/*
 * The send limiter and the send queue.
 *
 * The limiter is a ring of the times of the last `budget` sends, oldest
 * first.  A send at time t counts from t until t + W, exclusive; a new send
 * is allowed while fewer than the class's limit still count.  Since a send
 * is refused once `budget` sends count,
 * any half-open span [a, a + W) holds at most `budget` sends: take the last
 * send s in it; every other send in the span lies in (s - W, s] and counted
 * when s was allowed.
 */
#include "config.h"

#include "ratelimit.h"

#include <stdlib.h>
#include <string.h>

struct dgw_ratelimit {
  uint32_t budget;
  uint32_t reserved;
  uint64_t window_ms;
  uint64_t *stamps; /* ring of `budget` slots, non-decreasing from head */
  uint32_t head;    /* index of the oldest recorded send */
  uint32_t count;   /* recorded sends, some possibly expired */
};

/* The ring starts with no slots and grows by doubling up to `capacity`
 * only when commands queue up: most shards never queue one, and an idle
 * shard should not pay for a full ring (issue 7's memory per shard). */
#define SENDQ_FIRST_SLOTS 8

struct dgw_sendq {
  struct dgw_sendq_entry *entries; /* ring of `slots` slots */
  size_t slots;                    /* allocated, <= capacity */
  size_t capacity;                 /* most entries at once */
  size_t head;
  size_t count;
};

static uint32_t class_limit(const struct dgw_ratelimit *rl,
                            enum dgw_send_class cls);
static uint64_t clamp_now(const struct dgw_ratelimit *rl, uint64_t now_ms);
static uint64_t stamp_at(const struct dgw_ratelimit *rl, uint32_t i);
static uint32_t expired_count(const struct dgw_ratelimit *rl, uint64_t now);

static uint32_t class_limit(const struct dgw_ratelimit *rl,
                            enum dgw_send_class cls) {
  switch (cls) {
  case DGW_SEND_CONTROL:
  case DGW_SEND_HEARTBEAT:
    return rl->budget;
  case DGW_SEND_COMMAND:
    break;
  }
  return rl->budget - rl->reserved;
}

/* The i-th recorded send, 0 being the oldest. */
static uint64_t stamp_at(const struct dgw_ratelimit *rl, uint32_t i) {
  return rl->stamps[(rl->head + i) % rl->budget];
}

/* A clock that went backwards reads as the last send's time, which keeps
 * the ring sorted and every comparison below free of underflow. */
static uint64_t clamp_now(const struct dgw_ratelimit *rl, uint64_t now_ms) {
  uint64_t last;

  if (rl->count == 0)
    return now_ms;
  last = stamp_at(rl, rl->count - 1);
  return now_ms < last ? last : now_ms;
}

/* How many of the oldest recorded sends no longer count at `now`. */
static uint32_t expired_count(const struct dgw_ratelimit *rl, uint64_t now) {
  uint32_t n = 0;

  while (n < rl->count && now - stamp_at(rl, n) >= rl->window_ms)
    n++;
  return n;
}

struct dgw_ratelimit *dgw_ratelimit_new(uint32_t budget, uint64_t window_ms,
                                        uint32_t reserved, int *err) {
  struct dgw_ratelimit *rl;

  if (budget < 1 || budget > DGW_RATELIMIT_MAX_BUDGET || reserved >= budget ||
      window_ms < 1) {
    if (err != NULL)
      *err = DGW_ERR_INVALID_ARGUMENT;
    return NULL;
  }
  rl = calloc(1, sizeof(*rl));
  if (rl != NULL)
    rl->stamps = calloc(budget, sizeof(*rl->stamps));
  if (rl == NULL || rl->stamps == NULL) {
    free(rl);
    if (err != NULL)
      *err = DGW_ERR_NOMEM;
    return NULL;
  }
  rl->budget = budget;
  rl->reserved = reserved;
  rl->window_ms = window_ms;
  if (err != NULL)
    *err = DGW_OK;
  return rl;
}

void dgw_ratelimit_free(struct dgw_ratelimit *rl) {
  if (rl == NULL)
    return;
  free(rl->stamps);
  free(rl);
}

void dgw_ratelimit_reset(struct dgw_ratelimit *rl) {
  rl->head = 0;
  rl->count = 0;
}

int dgw_ratelimit_try(struct dgw_ratelimit *rl, enum dgw_send_class cls,
                      uint64_t now_ms) {
  uint64_t now = clamp_now(rl, now_ms);
  uint32_t expired = expired_count(rl, now);

  rl->head = (rl->head + expired) % rl->budget;
  rl->count -= expired;
  if (rl->count >= class_limit(rl, cls))
    return 0;
  /* count < limit <= budget, so the ring has room. */
  rl->stamps[(rl->head + rl->count) % rl->budget] = now;
  rl->count++;
  return 1;
}

uint64_t dgw_ratelimit_next_ms(const struct dgw_ratelimit *rl,
                               enum dgw_send_class cls, uint64_t now_ms) {
  uint64_t now = clamp_now(rl, now_ms);
  uint32_t expired = expired_count(rl, now);
  uint32_t live = rl->count - expired;
  uint32_t limit = class_limit(rl, cls);
  uint64_t stamp;

  if (live < limit)
    return now;
  /* live - limit + 1 more sends must leave the window; the last of them
   * is the (live - limit)-th live one. */
  stamp = stamp_at(rl, expired + (live - limit));
  if (stamp > UINT64_MAX - rl->window_ms)
    return UINT64_MAX;
  return stamp + rl->window_ms;
}

uint32_t dgw_ratelimit_available(const struct dgw_ratelimit *rl,
                                 enum dgw_send_class cls, uint64_t now_ms) {
  uint32_t live = dgw_ratelimit_in_window(rl, now_ms);
  uint32_t limit = class_limit(rl, cls);

  return live < limit ? limit - live : 0;
}

uint32_t dgw_ratelimit_in_window(const struct dgw_ratelimit *rl,
                                 uint64_t now_ms) {
  return rl->count - expired_count(rl, clamp_now(rl, now_ms));
}

struct dgw_sendq *dgw_sendq_new(size_t capacity, int *err) {
  struct dgw_sendq *q;

  if (capacity < 1 || capacity > DGW_SENDQ_MAX_CAPACITY) {
    if (err != NULL)
      *err = DGW_ERR_INVALID_ARGUMENT;
    return NULL;
  }
  q = calloc(1, sizeof(*q));
  if (q == NULL) {
    if (err != NULL)
      *err = DGW_ERR_NOMEM;
    return NULL;
  }
  q->capacity = capacity;
  if (err != NULL)
    *err = DGW_OK;
  return q;
}

void dgw_sendq_free(struct dgw_sendq *q) {
  if (q == NULL)
    return;
  while (dgw_sendq_pop(q, NULL) == DGW_OK)
    ;
  free(q->entries);
  free(q);
}

/* Doubles the ring (up to the capacity), laying the entries out from
 * slot 0 in queue order. */
static int grow(struct dgw_sendq *q) {
  size_t slots = q->slots == 0 ? SENDQ_FIRST_SLOTS : q->slots * 2;
  struct dgw_sendq_entry *entries;

  if (slots > q->capacity)
    slots = q->capacity;
  entries = calloc(slots, sizeof(*entries));
  if (entries == NULL)
    return DGW_ERR_NOMEM;
  for (size_t i = 0; i < q->count; i++)
    entries[i] = q->entries[(q->head + i) % q->slots];
  free(q->entries);
  q->entries = entries;
  q->slots = slots;
  q->head = 0;
  return DGW_OK;
}

int dgw_sendq_push(struct dgw_sendq *q, const char *json, size_t len,
                   dgw_send_done_fn done, void *user_data) {
  struct dgw_sendq_entry *e;
  char *copy;

  if (q == NULL || json == NULL || len == 0)
    return DGW_ERR_INVALID_ARGUMENT;
  if (q->count == q->capacity)
    return DGW_SENDQ_ERR_FULL;
  if (len == SIZE_MAX)
    return DGW_ERR_NOMEM;
  if (q->count == q->slots && grow(q) != DGW_OK)
    return DGW_ERR_NOMEM;
  copy = malloc(len + 1);
  if (copy == NULL)
    return DGW_ERR_NOMEM;
  memcpy(copy, json, len);
  copy[len] = '\0';
  e = &q->entries[(q->head + q->count) % q->slots];
  e->json = copy;
  e->len = len;
  e->done = done;
  e->user_data = user_data;
  q->count++;
  return DGW_OK;
}

const struct dgw_sendq_entry *dgw_sendq_peek(const struct dgw_sendq *q) {
  if (q->count == 0)
    return NULL;
  return &q->entries[q->head];
}

int dgw_sendq_pop(struct dgw_sendq *q, struct dgw_sendq_entry *out) {
  struct dgw_sendq_entry *e;

  if (q->count == 0) {
    if (out != NULL)
      memset(out, 0, sizeof(*out));
    return DGW_ERR_AGAIN;
  }
  e = &q->entries[q->head];
  if (out != NULL)
    *out = *e;
  else
    free(e->json);
  memset(e, 0, sizeof(*e));
  q->head = (q->head + 1) % q->slots;
  q->count--;
  if (q->count == 0 && q->slots > SENDQ_FIRST_SLOTS) {
    /* A burst is over: give its ring back; the next one grows again. */
    free(q->entries);
    q->entries = NULL;
    q->slots = 0;
    q->head = 0;
  }
  return DGW_OK;
}

void dgw_sendq_clear(struct dgw_sendq *q, int error) {
  struct dgw_sendq_entry e;
  size_t n;

  if (q == NULL)
    return;
  /* Only the commands present now: pushes from a callback land behind
   * them and stay queued. */
  for (n = q->count; n > 0; n--) {
    if (dgw_sendq_pop(q, &e) != DGW_OK)
      break;
    free(e.json);
    if (e.done != NULL)
      e.done(error, e.user_data);
  }
}

size_t dgw_sendq_length(const struct dgw_sendq *q) {
  return q->count;
}

size_t dgw_sendq_capacity(const struct dgw_sendq *q) {
  return q->capacity;
}

size_t dgw_sendq_slots(const struct dgw_sendq *q) {
  return q->slots;
}
