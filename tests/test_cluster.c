/*
 * Integration tests: a cluster of members (clients with
 * dgw_options_set_cluster) on a private redis-server (tests/redis_server.h)
 * against one in-process mock serving 16 shards.  The members share the
 * test's event loop; a "crash" frees a member without a word to Redis
 * (dgw_client_free: no handover, its connections dropped), so its leases
 * must expire.  Every wait has a deadline; the server dies with the test.
 *
 * Checked throughout: each shard's events reach some member in order;
 * a repeat counts only where a crash allows it, a gap never.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "client.h"
#include "client_shards.h"
#include "fixture.h"
#include "payload.h"
#include "redis_server.h"

#define SHARDS 16
#define MAX_MEMBERS 4
/* The lease, scaled like every wait (valgrind runs 10x slower). */
#define LEASE_MS ((uint32_t)(2000 * time_scale()))
#define WINDOW_MS 500 /* the identify window, per bucket of 4 */
#define EVENTS 3000   /* per session, 10 ms apart: streaming all test long */

struct member {
  struct dgw_client *c;
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  int n;
};

struct world {
  struct event_base *base;
  struct dgw_mock *mock;
  struct redis_server *redis;
  struct member m[MAX_MEMBERS];
  int identifies, resumes;
  int identify_of[SHARDS];
  double last_of_bucket[4];
  int bucket_too_soon;  /* IDENTIFYs of one bucket less than a window apart */
  int64_t last[SHARDS]; /* the last seq any member saw, per shard */
  int repeats[SHARDS], gaps[SHARDS];
  int verbose;
  /* The forked member's connections (its IDENTIFY's properties say os
   * "childos"): `old` ones existed when it was stopped. */
  struct {
    struct dgw_mock_conn *conn;
    int old;
  } child[64];
  int nchild;
  int after_wake;  /* payloads on its old connections after SIGCONT */
  int disconnects; /* connections of the test's members lost (kicked) */
  pid_t child_pid;
  /* The pause test: shard 0's connection at the mock, the session it
   * had, and what happened after its member's loop slept past the lease. */
  struct dgw_mock_conn *conn0;
  char sid0[128];
  double pause_ms;  /* > 0: the next "burst" event of shard 0 sleeps */
  int paused;       /* the sleep is over: the lease deadline has passed */
  int late;         /* events of the old connection delivered after it */
  int sent_late;    /* payloads on the old connection after it */
  int conn0_closed; /* the old connection ended (the drop) */
  int resumed0;     /* shard 0's session RESUMEd (the window ends) */
};

static struct world w;

static void member_log(enum dgw_log_level level, const char *msg, void *ud) {
  struct member *m = ud;

  (void)level;
  if (w.verbose)
    fprintf(stderr, "[m%d] %s\n", m->n, msg);
}

static void on_dispatch(struct dgw_gateway *gw, const struct dgw_event *ev,
                        void *ud) {
  uint32_t s = dgw_event_shard(ev);
  int64_t seq = dgw_event_seq(ev);

  (void)gw;
  (void)ud;
  if (s == 0 && w.paused && !w.resumed0)
    w.late++;
  if (s == 0 && w.pause_ms > 0 && !w.paused) {
    size_t len = 0;
    const char *d = dgw_event_data(ev, &len);

    if (len > 0 && memmem(d, len, "burst", 5) != NULL) {
      /* A SIGSTOP as the loop sees it: nothing runs for longer than the
       * lease, then the rest of what was read is processed first. */
      usleep((useconds_t)(w.pause_ms * 1000));
      w.paused = 1;
    }
  }
  if (s >= SHARDS || seq == 0)
    return; /* RESUMED has no s */
  if (seq <= w.last[s])
    w.repeats[s]++;
  else if (w.last[s] != 0 && seq != w.last[s] + 1)
    w.gaps[s]++;
  if (seq > w.last[s])
    w.last[s] = seq;
}

static int child_conn(struct dgw_mock_conn *conn) {
  for (int k = 0; k < w.nchild; k++)
    if (w.child[k].conn == conn)
      return k;
  return -1;
}

static void mock_close(struct dgw_mock *m, struct dgw_mock_conn *conn, int code,
                       void *ud) {
  int k = child_conn(conn);

  (void)m;
  (void)code;
  (void)ud;
  if (conn == w.conn0) {
    w.conn0_closed = 1;
    w.conn0 = NULL;
  }
  if (k >= 0)
    w.child[k] = w.child[--w.nchild];
}

/* A member's connection ended without the member leaving it (a close of
 * our own, as in a handover, reports no disconnect): for the test's own
 * members in steady state, only a RESUME of the same session from
 * elsewhere (the mock, like Discord, then closes the older connection). */
static void on_disconnect(struct dgw_gateway *gw,
                          const struct dgw_disconnect *info, void *ud) {
  (void)gw;
  (void)info;
  (void)ud;
  w.disconnects++;
}

static void mock_payload(struct dgw_mock *m, struct dgw_mock_conn *conn, int op,
                         const char *json, size_t len, void *ud) {
  const char *p;
  int k = child_conn(conn);

  (void)m;
  (void)len;
  (void)ud;
  if (k >= 0 && w.child[k].old)
    w.after_wake++;
  if (conn == w.conn0 && w.paused)
    w.sent_late++;
  if (op == DGW_OP_RESUME && w.sid0[0] != '\0' && strstr(json, w.sid0) != NULL)
    w.resumed0 = 1;
  if (op == DGW_OP_IDENTIFY && strstr(json, "\"shard\":[0,") != NULL)
    w.conn0 = conn;
  if (k < 0 && op == DGW_OP_IDENTIFY && strstr(json, "childos") != NULL &&
      w.nchild < 64) {
    w.child[w.nchild].conn = conn;
    w.child[w.nchild++].old = 0;
  }
  if (op == DGW_OP_RESUME)
    w.resumes++;
  if (op != DGW_OP_IDENTIFY)
    return;
  w.identifies++;
  if ((p = strstr(json, "\"shard\":[")) != NULL) {
    int s = atoi(p + 9);

    if (s >= 0 && s < SHARDS) {
      double now = now_ms();

      w.identify_of[s]++;
      /* 20 ms of slack (scaled): the grant's key expires in Redis's
       * clock, and the mock sees a payload when its loop gets to it. */
      if (w.last_of_bucket[s % 4] != 0 &&
          now - w.last_of_bucket[s % 4] < WINDOW_MS - 20 * time_scale())
        w.bucket_too_soon++;
      w.last_of_bucket[s % 4] = now;
    }
  }
}

/* Makes member i on `base`, IDENTIFYing with properties.os `os` (NULL:
 * dgw's); the test's loop unless forked. */
static void member_make(int i, struct event_base *base, const char *os) {
  struct member *m = &w.m[i];
  char url[128];
  int err = 0;

  m->n = i;
  m->opt = dgw_options_new();
  m->cb = dgw_callbacks_new();
  assert_int_equal(dgw_options_set_token(m->opt, "t0ken.SECRET"), DGW_OK);
  if (os != NULL)
    assert_int_equal(
        dgw_options_set_identify_properties(m->opt, os, "dgw", "dgw"), DGW_OK);
  /* GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES: the pushed messages have
   * no guild_id, DMs, which the mock (as Discord) filters by intents. */
  assert_int_equal(dgw_options_set_intents(m->opt, 513 | 4096), DGW_OK);
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u",
           (unsigned)dgw_mock_port(w.mock));
  assert_int_equal(dgw_options_set_gateway_url(m->opt, url), DGW_OK);
  assert_int_equal(dgw_options_set_shards(m->opt, 0, SHARDS, SHARDS), DGW_OK);
  dgw_options_set_log(m->opt, member_log, m, DGW_LOG_DEBUG);
  dgw_options_set_identify_limits(m->opt, 4, WINDOW_MS);
  assert_int_equal(dgw_options_set_reconnect(m->opt, 20, 200, 60000), DGW_OK);
  assert_int_equal(dgw_options_set_cluster(m->opt, redis_server_url(w.redis),
                                           "testbot", LEASE_MS),
                   DGW_OK);
  dgw_callbacks_set_on_dispatch(m->cb, on_dispatch);
  dgw_callbacks_set_on_disconnect(m->cb, on_disconnect);
  m->c = dgw_client_new(base, m->opt, m->cb, m, &err);
  if (m->c == NULL)
    fail_msg("client: %s", dgw_strerror(err));
  assert_int_equal(dgw_client_start(m->c), DGW_OK);
}

static void member_start(int i) {
  member_make(i, w.base, NULL);
}

/* A member in a child process of its own (so that it can be stopped with
 * SIGSTOP), on a loop of its own, until killed (60 s at most).  The child
 * never returns into cmocka and leaves by _exit (the parent's atexit
 * handlers, the redis-server's among them, are not its own). */
static void member_fork(void) {
  pid_t pid = fork();

  assert_true(pid >= 0);
  if (pid == 0) {
    struct event_base *base;
    struct timeval tv = {60, 0};

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    base = event_base_new();
    if (base == NULL)
      _exit(1);
    member_make(MAX_MEMBERS - 1, base, "childos");
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    _exit(0);
  }
  w.child_pid = pid;
}

/* A crash: no handover, no membership removal, connections dropped. */
static void member_crash(int i) {
  dgw_client_free(w.m[i].c);
  w.m[i].c = NULL;
}

static void member_free(int i) {
  dgw_client_free(w.m[i].c);
  dgw_options_free(w.m[i].opt);
  dgw_callbacks_free(w.m[i].cb);
  memset(&w.m[i], 0, sizeof(w.m[i]));
}

/* Shards READY in member i (and held by it). */
static int ready_in(int i) {
  int n = 0;

  if (w.m[i].c == NULL)
    return 0;
  for (uint32_t s = 0; s < SHARDS; s++)
    if (client_shard_taken(w.m[i].c, s) &&
        dgw_gateway_state(dgw_client_gateway(w.m[i].c, s)) == DGW_STATE_READY)
      n++;
  return n;
}

/* Every shard READY in exactly one member, and no member running one it
 * does not hold. */
static int all_ready(void *arg) {
  int total = 0;

  (void)arg;
  for (uint32_t s = 0; s < SHARDS; s++) {
    int in = 0;

    for (int i = 0; i < MAX_MEMBERS; i++)
      if (w.m[i].c != NULL &&
          dgw_gateway_state(dgw_client_gateway(w.m[i].c, s)) == DGW_STATE_READY)
        in++;
    if (in != 1)
      return 0;
    total++;
  }
  return total == SHARDS;
}

/* all_ready, and the split fair among the live members. */
static int balanced(void *arg) {
  int live = 0;

  if (!all_ready(arg))
    return 0;
  for (int i = 0; i < MAX_MEMBERS; i++)
    live += w.m[i].c != NULL;
  for (int i = 0; i < MAX_MEMBERS; i++)
    if (w.m[i].c != NULL && (ready_in(i) < SHARDS / live ||
                             ready_in(i) > (SHARDS + live - 1) / live))
      return 0;
  return 1;
}

static int m1_closed(void *arg) {
  (void)arg;
  for (uint32_t s = 0; s < SHARDS; s++)
    if (dgw_gateway_state(dgw_client_gateway(w.m[1].c, s)) != DGW_STATE_CLOSED)
      return 0;
  return 1;
}

static int never(void *arg) {
  (void)arg;
  return 0;
}

/* Runs the loop for `seconds`, failing at once if a shard is ever READY in
 * two members (the invariant: one holder per session). */
static void run_checked(double seconds) {
  double end = deadline_ms(seconds);

  while (now_ms() < end) {
    loop_until(w.base, never, NULL, 0.05);
    for (uint32_t s = 0; s < SHARDS; s++) {
      int in = 0;

      for (int i = 0; i < MAX_MEMBERS; i++)
        if (w.m[i].c != NULL && client_shard_taken(w.m[i].c, s) &&
            dgw_gateway_state(dgw_client_gateway(w.m[i].c, s)) ==
                DGW_STATE_READY)
          in++;
      if (in > 1)
        fail_msg("shard %u READY in %d members at once", s, in);
    }
  }
}

static int setup(void **state) {
  struct dgw_mock_config mc = {0};
  int err = 0;

  (void)state;
  memset(&w, 0, sizeof(w));
  w.verbose = getenv("DGW_TEST_VERBOSE") != NULL;
  w.redis = redis_server_start(NULL);
  if (w.redis == NULL)
    fail_msg("redis-server could not be started (see above)");
  w.base = event_base_new();
  mc.heartbeat_interval_ms = 1000;
  mc.dispatch_interval_ms = 10;
  mc.detached_max = 64;
  mc.history_max = 100000;
  mc.hooks.on_payload = mock_payload;
  mc.hooks.on_close = mock_close;
  mc.log = test_log;
  w.mock = dgw_mock_new(w.base, &mc, &err);
  if (w.mock == NULL)
    fail_msg("mock: %s", dgw_strerror(err));
  for (int i = 0; i < EVENTS; i++)
    assert_int_equal(
        dgw_mock_add_dispatch(w.mock, "MESSAGE_CREATE", "{\"n\":1}"), DGW_OK);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  if (w.child_pid > 0) {
    kill(w.child_pid, SIGKILL);
    waitpid(w.child_pid, NULL, 0);
  }
  for (int i = 0; i < MAX_MEMBERS; i++)
    member_free(i);
  dgw_mock_free(w.mock);
  event_base_free(w.base);
  redis_server_free(w.redis);
  return 0;
}

/* Three members: every shard READY exactly once (one IDENTIFY each, no
 * RESUME), split 6/5/5; then one crashes (freed with no handover): its
 * shards are RESUMEd by the survivors within lease + 5 s with the stored
 * session, no IDENTIFY, no event of any shard is missing, and only the
 * events after the last flushed seq (about a second's) come twice. */
static void test_split_then_crash(void **state) {
  int before;
  int identifies;
  double t0;

  (void)state;
  for (int i = 0; i < 3; i++)
    member_start(i);
  assert_true(loop_until(w.base, balanced, NULL, 20));
  assert_int_equal(w.identifies, SHARDS);
  for (uint32_t s = 0; s < SHARDS; s++)
    assert_int_equal(w.identify_of[s], 1);
  /* The shared identify queue: one per bucket per window across members. */
  assert_int_equal(w.bucket_too_soon, 0);
  assert_int_equal(w.resumes, 0);
  run_checked(1.5); /* events flow; seqs get flushed */
  assert_true(all_ready(NULL));

  before = ready_in(0);
  assert_true(before >= 5);
  identifies = w.identifies;
  member_crash(0);
  t0 = now_ms();
  assert_true(loop_until(w.base, balanced, NULL, (LEASE_MS + 5000) / 1000.0));
  fprintf(stderr, "# failover of %d shards: %.0f ms (lease %d ms)\n", before,
          now_ms() - t0, LEASE_MS);
  assert_int_equal(w.identifies, identifies); /* RESUMEs, not IDENTIFYs */
  assert_int_equal(w.resumes, before);
  run_checked(1);
  {
    int most = 0;

    for (uint32_t s = 0; s < SHARDS; s++)
      most = w.repeats[s] > most ? w.repeats[s] : most;
    fprintf(stderr, "# events repeated after the crash: at most %d per shard\n",
            most);
  }
  for (uint32_t s = 0; s < SHARDS; s++) {
    assert_int_equal(w.gaps[s], 0);
    /* Repeats only after the last flushed seq: the seq goes to Redis at
     * least every second, events come every 10 ms (+50% slack). */
    assert_true(w.repeats[s] <= 150 * time_scale());
  }
}

/* A clean handover: a 4th member joins (the others hand shards over to
 * reach 4 each), then one member stops (dgw_client_stop: handover): no
 * IDENTIFY beyond the first 16, and no event lost or repeated. */
static void test_join_and_stop_hand_over(void **state) {
  int repeats = 0;

  (void)state;
  for (int i = 0; i < 3; i++)
    member_start(i);
  assert_true(loop_until(w.base, balanced, NULL, 20));
  run_checked(1);
  member_start(3);
  assert_true(loop_until(w.base, balanced, NULL, 15));
  assert_int_equal(ready_in(3), 4);
  run_checked(1);
  dgw_client_stop(w.m[1].c);
  /* Its shards all close once handed over (dgw run waits for that). */
  assert_true(loop_until(w.base, m1_closed, NULL, 5));
  member_free(1);
  assert_true(loop_until(w.base, balanced, NULL, 10));
  run_checked(1);
  assert_int_equal(w.identifies, SHARDS);
  for (uint32_t s = 0; s < SHARDS; s++) {
    assert_int_equal(w.gaps[s], 0);
    repeats += w.repeats[s];
  }
  assert_int_equal(repeats, 0);
}

/* Redis killed and restarted (empty: no persistence) within the lease: no
 * shard stops, no IDENTIFY, no RESUME; the holders put their leases back
 * and nobody claims a shard held by another meanwhile. */
static void test_redis_restart_within_lease(void **state) {
  int resumes;

  (void)state;
  for (int i = 0; i < 2; i++)
    member_start(i);
  assert_true(loop_until(w.base, balanced, NULL, 20));
  run_checked(1);
  resumes = w.resumes;
  assert_int_equal(redis_server_kill(w.redis), 0);
  run_checked(0.4);
  assert_int_equal(redis_server_restart(w.redis), 0);
  run_checked(4); /* twice the (unscaled) lease */
  assert_true(all_ready(NULL));
  assert_int_equal(w.identifies, SHARDS);
  assert_int_equal(w.resumes, resumes);
}

/* No shard of the test's members in trouble: each taken one READY or on
 * its way (handover) and none FATAL. */
static int all_ready_here_or_moving(void) {
  for (int i = 0; i < MAX_MEMBERS - 1; i++)
    for (uint32_t s = 0; w.m[i].c != NULL && s < SHARDS; s++)
      if (dgw_gateway_state(dgw_client_gateway(w.m[i].c, s)) == DGW_STATE_FATAL)
        return 0;
  return 1;
}

/* Shards READY in the test's own members. */
static int ready_here(void) {
  int n = 0;

  for (int i = 0; i < MAX_MEMBERS - 1; i++)
    n += ready_in(i);
  return n;
}

static int here_all(void *arg) {
  (void)arg;
  return ready_here() == SHARDS;
}

static int split_with_child(void *arg) {
  (void)arg;
  return w.identifies == SHARDS && ready_here() >= SHARDS - 6 &&
         ready_here() <= SHARDS - 5;
}

static int child_back(void *arg) {
  (void)arg;
  return ready_here() <= SHARDS - 5 && all_ready_here_or_moving();
}

/* A member (a process of its own) is stopped (SIGSTOP) past its lease: the
 * others RESUME its shards (no IDENTIFY).  Continued (SIGCONT), it writes
 * nothing on the connections it had, RESUMEs none of the sessions it lost
 * from under their new holders (the mock, like Discord, would close the
 * holder's connection: a disconnect in the test's members) and spends no
 * IDENTIFY; it drops those shards and rejoins, getting shards back by
 * handover.  A member that judged its lease by a renew's reply time, or
 * did not check it before writing, would RESUME on waking.  (The fence
 * itself, write by write, is tested in test_cluster_shards.) */
static void test_sigstop_past_lease(void **state) {
  int identifies, resumes;

  (void)state;
  member_fork();
  for (int i = 0; i < 2; i++)
    member_start(i);
  assert_true(loop_until(w.base, split_with_child, NULL, 20));
  run_checked(1);
  identifies = w.identifies;
  assert_true(w.nchild >= 5);
  assert_int_equal(kill(w.child_pid, SIGSTOP), 0);
  assert_true(loop_until(w.base, here_all, NULL, (LEASE_MS + 5000) / 1000.0));
  assert_int_equal(w.identifies, identifies);
  run_checked(1);
  for (int k = 0; k < w.nchild; k++)
    w.child[k].old = 1;
  fprintf(stderr, "# %d connections of the stopped member still open\n",
          w.nchild);
  resumes = w.resumes;
  w.disconnects = 0;
  assert_int_equal(kill(w.child_pid, SIGCONT), 0);
  run_checked(2);
  /* Nothing on its old connections, and none of the sessions it lost was
   * RESUMEd from under their new holders (that would have kicked them). */
  assert_int_equal(w.after_wake, 0);
  assert_int_equal(w.disconnects, 0);
  /* It rejoined: the others handed some shards over to it (RESUMEd). */
  assert_true(loop_until(w.base, child_back, NULL, 15));
  run_checked(1);
  assert_true(w.resumes >= resumes + 4);
  assert_int_equal(w.after_wake, 0);
  assert_int_equal(w.disconnects, 0);
  assert_int_equal(w.identifies, identifies);
}

static int conn0_closed(void *arg) {
  (void)arg;
  return w.conn0_closed;
}

static int shard0_back(void *arg) {
  (void)arg;
  return w.resumed0 && ready_in(0) == SHARDS;
}

/* Fencing on delivery: a member whose loop is stopped past its lease (a
 * SIGSTOP, a VM freeze) wakes with events already read from the socket;
 * they are processed before any timer of the cluster runs.  Input: one
 * member holding all shards; the mock sends shard 0 a burst of 50 events
 * at once, and the handler of the first one sleeps lease + 300 ms.
 * Without the fence on the dispatch path, the other 49 reach the handler
 * although the lease is gone (another member could already hold it);
 * with it, none does, the shard is dropped (its connection cut, nothing
 * written on it), and it comes back by RESUME with no event lost. */
static void test_pause_past_lease_fences_delivery(void **state) {
  struct dgw_gateway *gw;
  int identifies;

  (void)state;
  member_start(0);
  assert_true(loop_until(w.base, all_ready, NULL, 20));
  run_checked(1); /* a seq flushed */
  assert_non_null(w.conn0);
  gw = dgw_client_gateway(w.m[0].c, 0);
  assert_non_null(dgw_gateway_session_id(gw));
  snprintf(w.sid0, sizeof(w.sid0), "%s", dgw_gateway_session_id(gw));
  identifies = w.identifies;
  w.pause_ms = LEASE_MS + 300 * time_scale();
  for (int k = 0; k < 50; k++)
    assert_int_equal(
        dgw_mock_conn_send_dispatch(w.conn0, "MESSAGE_CREATE", "{\"burst\":1}"),
        DGW_OK);
  assert_true(loop_until(w.base, conn0_closed, NULL, 5));
  assert_true(w.paused);
  fprintf(stderr,
          "# after the pause: %d event(s) delivered, %d payload(s) "
          "sent on the old connection\n",
          w.late, w.sent_late);
  assert_int_equal(w.late, 0);
  assert_int_equal(w.sent_late, 0);
  /* Re-claimed and RESUMEd (the burst replayed): nothing lost. */
  assert_true(
      loop_until(w.base, shard0_back, NULL, (LEASE_MS + 5000) / 1000.0));
  run_checked(1);
  assert_int_equal(w.gaps[0], 0);
  assert_int_equal(w.identifies, identifies);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_split_then_crash, setup, teardown),
      cmocka_unit_test_setup_teardown(test_join_and_stop_hand_over, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_redis_restart_within_lease, setup,
                                      teardown),
      cmocka_unit_test_setup_teardown(test_sigstop_past_lease, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pause_past_lease_fences_delivery,
                                      setup, teardown),
  };

  ignore_sigpipe(); /* a killed redis-server or peer: EPIPE, not death */
  return cmocka_run_group_tests(tests, NULL, NULL);
}
