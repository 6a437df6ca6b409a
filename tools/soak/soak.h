/*
 * dgw-soak's shared state: the shards, the two sides (a mock and a client
 * each), the fault kinds.  See soak.c for what the soak checks.
 */
#ifndef DGW_SOAK_H
#define DGW_SOAK_H

#include <stdint.h>
#include <time.h>

#include <event2/event.h>

#include <dgw/dgw.h>

#include "mock.h"

#define MAX_SHARDS 64
#define WINDOW 256    /* dispatches in flight per session at most */
#define BATCH 64      /* added per session per pump tick at most */
#define HISTORY 1024  /* the mock's replay history per session */
#define BEAT_MS 500   /* the mocks' heartbeat interval */
#define IDENT_CONC 2  /* identify buckets per client */
#define IDENT_WIN 400 /* ms between IDENTIFYs of one bucket */
#define STALL_MS 150  /* the slow reader's stall */
#define START_BUDGET 1000
#define MAX_NOTES 20

enum fault {
  F_DROP,
  F_MIDFRAME,
  F_CLOSE_4000,
  F_CLOSE_4001,
  F_CLOSE_4002,
  F_CLOSE_4005,
  F_CLOSE_4008,
  F_CLOSE_4007,
  F_CLOSE_4009,
  F_OP7,
  F_OP9_TRUE,
  F_OP9_FALSE,
  F_LOST_THEN_CUT,
  F_HB_REQUEST,
  F_CORRUPT_ZLIB,
  F_BAD_FRAME,
  F_SLOW_READER,
  F_NO_ACK,
  F_CUT_ALL,
  F_OUTAGE,
  F_COUNT
};

/* What each fault kind is (faults.c). */
struct fault_kind {
  const char *name;
  int new_session; /* ends the session: the next READY is owed */
  int global;      /* hits every shard of one side */
  int credit;      /* connects it may cost each shard it hits */
};
extern const struct fault_kind soak_kinds[F_COUNT];

struct soak;

struct shard {
  struct side *side;
  uint32_t id;
  struct dgw_gateway *gw;
  struct dgw_mock_conn *conn; /* the mock's end, when known */
  char sid[64];               /* the current session */
  int64_t last_seq;           /* the last s delivered in it */
  int64_t top;                /* the last s the mock gave it */
  uint64_t delivered;         /* SOAK events delivered */
  uint64_t sessions, identifies, connects, abandoned, faults;
  int owed; /* new sessions a fault made legitimate */
  /* Connects the faults so far explain: 1 to start, each fault's credit
   * (a zombie the client found: 2); a connect beyond is a storm. */
  int64_t credit;
  int stall; /* the next SOAK event blocks the loop */
  double connect_ms[10];
  unsigned nconnect;
  double max_rate; /* most connects in 1 s */
};

struct side {
  struct soak *soak;
  int tls;
  struct dgw_mock *mock;
  struct dgw_client *client;
  uint32_t first, count;
  double ident_ms[IDENT_CONC];
  struct event *ack_timer, *listen_timer;
  int ack_off, listen_off;
};

struct soak {
  struct event_base *base;
  struct side side[2];
  struct shard shard[MAX_SHARDS];
  uint32_t nshards;
  uint64_t rng;
  uint64_t seed;
  uint64_t target, fault_every, next_fault;
  uint64_t delivered;
  uint64_t faults[F_COUNT], fault_hits, global_faults;
  uint64_t violations;
  double min_ident_gap;
  double max_conn_rate; /* most connects of one shard in 1 s */
  enum { RUN, QUIESCE, DONE } phase;
  double t0, t_end, deadline;
  double scale;
  long rss_base, rss_peak, rss_end;
  int fd_base, fd_end;
  int check_rss;
  double rss_growth_mb;
  int verbose;
  char pad[512];
};

static inline double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* splitmix64: one seed, one stream. */
static inline uint64_t rnd(struct soak *s) {
  uint64_t z = (s->rng += UINT64_C(0x9E3779B97F4A7C15));

  z = (z ^ (z >> 30)) * UINT64_C(0xBF58476D1CE4E5B9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94D049BB133111EB);
  return z ^ (z >> 31);
}

static inline uint64_t rnd_below(struct soak *s, uint64_t n) {
  return n > 0 ? rnd(s) % n : 0;
}

/* Counts a breach of an invariant and prints the first MAX_NOTES. */
void violation(struct soak *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Appends `n` SOAK dispatches to shard `sh`'s session on its mock. */
void add_events(struct soak *s, struct shard *sh, int n);

/* Timer callbacks (arg: the side): ACKs come back; the listener is back. */
void ack_back(evutil_socket_t fd, short what, void *arg);
void listen_back(evutil_socket_t fd, short what, void *arg);

/* Injects the next fault: a random kind on a random live shard; on
 * success draws when the next one comes. */
void soak_fault(struct soak *s);

#endif /* DGW_SOAK_H */
