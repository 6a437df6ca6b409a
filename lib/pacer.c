/* The connection pacer: a bounded number of connection attempts in
 * flight, the rest in a FIFO let go with random spacing. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "pacer.h"

struct dgw_pacer {
  struct event *timer; /* lets the next waiting item go */
  uint32_t max;        /* 0: no limit */
  dgw_pacer_grant_fn grant;
  void *user_data;
  void **held; /* slots in use (unordered); capacity `held_cap` */
  uint32_t nheld, held_cap, peak;
  void **queue; /* waiting, FIFO in [head, tail); NULL: left the queue */
  uint32_t head, tail, queue_cap, nwaiting;
};

static int find(void *const *v, uint32_t from, uint32_t to, const void *item,
                uint32_t *at) {
  for (uint32_t i = from; i < to; i++)
    if (v[i] == item) {
      *at = i;
      return 1;
    }
  return 0;
}

static int has_room(const struct dgw_pacer *p) {
  return p->max == 0 || p->nheld < p->max;
}

static int hold(struct dgw_pacer *p, void *item) {
  if (p->nheld == p->held_cap) {
    uint32_t cap = p->held_cap ? p->held_cap * 2 : 16;
    void **v = realloc(p->held, cap * sizeof(*v));

    if (v == NULL)
      return 0;
    p->held = v;
    p->held_cap = cap;
  }
  p->held[p->nheld++] = item;
  if (p->nheld > p->peak)
    p->peak = p->nheld;
  return 1;
}

static void schedule(struct dgw_pacer *p) {
  struct timeval tv = {0, 0};

  if (p->nwaiting == 0 || !has_room(p) || evtimer_pending(p->timer, NULL))
    return;
  evtimer_add(p->timer, &tv); /* from the loop, never inside a caller */
}

/* Lets waiting items go while there is room.  The grant callback may
 * call back into the pacer (release, request) but not free it. */
static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_pacer *p = arg;

  (void)fd;
  (void)what;
  while (has_room(p) && p->nwaiting > 0) {
    void *item = NULL;

    while (p->head < p->tail && item == NULL)
      item = p->queue[p->head++];
    if (item == NULL)
      break;
    p->nwaiting--;
    if (!hold(p, item)) {
      struct timeval tv = {0, 1000};

      p->queue[--p->head] = item; /* no memory: try again in a moment */
      p->nwaiting++;
      evtimer_add(p->timer, &tv);
      return;
    }
    p->grant(item, p->user_data);
  }
  if (p->head == p->tail)
    p->head = p->tail = 0;
}

struct dgw_pacer *dgw_pacer_new(struct event_base *base, uint32_t max,
                                dgw_pacer_grant_fn grant, void *user_data) {
  struct dgw_pacer *p = calloc(1, sizeof(*p));

  if (p == NULL)
    return NULL;
  p->max = max;
  p->grant = grant;
  p->user_data = user_data;
  if ((p->timer = evtimer_new(base, timer_cb, p)) == NULL) {
    free(p);
    return NULL;
  }
  return p;
}

void dgw_pacer_free(struct dgw_pacer *p) {
  if (p == NULL)
    return;
  event_free(p->timer);
  free(p->held);
  free(p->queue);
  free(p);
}

int dgw_pacer_request(struct dgw_pacer *p, void *item) {
  uint32_t at;

  if (find(p->held, 0, p->nheld, item, &at))
    return 1;
  if (find(p->queue, p->head, p->tail, item, &at))
    return 0;
  if (p->nwaiting == 0 && has_room(p) && hold(p, item))
    return 1;
  if (p->tail == p->queue_cap) {
    uint32_t n = p->tail - p->head;

    if (p->head > 0 && n < p->queue_cap / 2) { /* compact */
      memmove(p->queue, p->queue + p->head, n * sizeof(*p->queue));
      p->head = 0;
      p->tail = n;
    } else {
      uint32_t cap = p->queue_cap ? p->queue_cap * 2 : 64;
      void **v = realloc(p->queue, cap * sizeof(*v));

      if (v == NULL)
        return 1; /* no memory to wait: go unpaced rather than stall */
      p->queue = v;
      p->queue_cap = cap;
    }
  }
  p->queue[p->tail++] = item;
  p->nwaiting++;
  schedule(p);
  return 0;
}

void dgw_pacer_release(struct dgw_pacer *p, void *item) {
  uint32_t at;

  if (p == NULL || item == NULL)
    return;
  if (find(p->held, 0, p->nheld, item, &at)) {
    p->held[at] = p->held[--p->nheld];
    schedule(p);
  } else if (find(p->queue, p->head, p->tail, item, &at)) {
    p->queue[at] = NULL;
    p->nwaiting--;
  }
}

uint32_t dgw_pacer_in_flight(const struct dgw_pacer *p) {
  return p->nheld;
}

uint32_t dgw_pacer_peak(const struct dgw_pacer *p) {
  return p->peak;
}

uint32_t dgw_pacer_waiting(const struct dgw_pacer *p) {
  return p->nwaiting;
}
