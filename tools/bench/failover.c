/*
 * The cluster's failover, measured (issue 12): two members (forked
 * processes, each a dgw_client with the cluster on) split FO_SHARDS shards
 * served by an in-process tools/mock, on the bench's private redis-server;
 * one is killed with SIGKILL mid-stream, and the mock times the RESUMEs of
 * its shards by the survivor and counts any IDENTIFY spent.  See
 * docs/performance.md.
 */
#include "config.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include <dgw/dgw.h>

#include "bench.h"
#include "mock.h"
#include "payload.h"

#define FO_SHARDS 8
#define FO_EVENTS 20000 /* 10 ms apart: streaming all run long */

struct fo {
  int killed;
  int identifies, resumes; /* after the kill */
  int identifies_before;
  int closes; /* connections of the killed member that ended */
  int64_t t_kill, t_last_resume;
};

static struct fo fo;

static void fo_payload(struct dgw_mock *m, struct dgw_mock_conn *conn, int op,
                       const char *json, size_t len, void *ud) {
  (void)m;
  (void)conn;
  (void)json;
  (void)len;
  (void)ud;
  if (op == DGW_OP_IDENTIFY) {
    if (fo.killed)
      fo.identifies++;
    else
      fo.identifies_before++;
  }
  if (op == DGW_OP_RESUME && fo.killed) {
    fo.resumes++;
    fo.t_last_resume = now_ns();
  }
}

static void fo_close(struct dgw_mock *m, struct dgw_mock_conn *conn, int code,
                     void *ud) {
  (void)m;
  (void)conn;
  (void)code;
  (void)ud;
  if (fo.killed)
    fo.closes++;
}

/* A member: its own loop, until killed (or 120 s); leaves by _exit. */
static pid_t member_fork(uint16_t port, const char *redis_url,
                         uint32_t lease_ms) {
  pid_t pid = fork();

  if (pid != 0)
    return pid;
  {
    struct event_base *base;
    struct dgw_options *opt = dgw_options_new();
    struct dgw_callbacks *cb = dgw_callbacks_new();
    struct dgw_client *c;
    struct timeval tv = {120, 0};
    char url[64];
    int err = 0;

    prctl(PR_SET_PDEATHSIG, SIGKILL);
    base = event_base_new();
    snprintf(url, sizeof url, "ws://127.0.0.1:%u", (unsigned)port);
    if (base == NULL || opt == NULL || cb == NULL ||
        dgw_options_set_token(opt, "bench-token") != DGW_OK ||
        dgw_options_set_gateway_url(opt, url) != DGW_OK ||
        /* The pushed messages have no guild_id: DMs, which the mock (as
         * Discord) sends only with DIRECT_MESSAGES. */
        dgw_options_set_intents(
            opt, DGW_INTENT_GUILDS | DGW_INTENT_DIRECT_MESSAGES) != DGW_OK ||
        dgw_options_set_shards(opt, 0, FO_SHARDS, FO_SHARDS) != DGW_OK ||
        dgw_options_set_identify_limits(opt, 4, 500) != DGW_OK ||
        dgw_options_set_cluster(opt, redis_url, "benchfailover", lease_ms) !=
            DGW_OK)
      _exit(1);
    c = dgw_client_new(base, opt, cb, NULL, &err);
    if (c == NULL || dgw_client_start(c) != DGW_OK)
      _exit(1);
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
    _exit(0);
  }
}

/* Runs `base` until *flag >= want or `seconds` passed. */
static void run_until(struct event_base *base, const int *flag, int want,
                      double seconds) {
  int64_t end = now_ns() + (int64_t)(seconds * 1e9);

  while (now_ns() < end && (flag == NULL || *flag < want)) {
    struct timeval tv = {0, 20000};

    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
  }
}

void failover_run(const char *redis_url, uint32_t lease_ms,
                  struct failover_result *out) {
  struct event_base *base = event_base_new();
  struct dgw_mock_config mc;
  struct dgw_mock *mock;
  pid_t pid[2];
  int err = 0;

  memset(out, 0, sizeof(*out));
  memset(&fo, 0, sizeof(fo));
  out->lease_ms = lease_ms;
  memset(&mc, 0, sizeof(mc));
  mc.heartbeat_interval_ms = 1000;
  mc.dispatch_interval_ms = 10;
  mc.detached_max = 64;
  mc.history_max = 100000;
  mc.hooks.on_payload = fo_payload;
  mc.hooks.on_close = fo_close;
  if (base == NULL || (mock = dgw_mock_new(base, &mc, &err)) == NULL) {
    snprintf(out->error, sizeof out->error, "cannot start the mock");
    if (base != NULL)
      event_base_free(base);
    return;
  }
  for (int i = 0; i < FO_EVENTS; i++)
    dgw_mock_add_dispatch(mock, "MESSAGE_CREATE", "{\"n\":1}");
  for (int k = 0; k < 2; k++)
    pid[k] = member_fork(dgw_mock_port(mock), redis_url, lease_ms);
  /* Every shard identified once, then the seqs flow and get flushed. */
  run_until(base, &fo.identifies_before, FO_SHARDS, 30);
  if (fo.identifies_before < FO_SHARDS) {
    snprintf(out->error, sizeof out->error,
             "only %d of %d shards identified in 30 s", fo.identifies_before,
             FO_SHARDS);
  } else {
    run_until(base, NULL, 0, 2);
    fo.killed = 1;
    fo.t_kill = now_ns();
    kill(pid[0], SIGKILL);
    waitpid(pid[0], NULL, 0);
    pid[0] = 0;
    /* Its connections end at once; the survivor RESUMEs them after the
     * lease (plus one scan).  Done when as many RESUMEs as closes came. */
    run_until(base, NULL, 0, 0.2);
    while (fo.closes == 0 || fo.resumes < fo.closes) {
      int want = fo.closes > 0 ? fo.closes : 1;

      run_until(base, &fo.resumes, want, (lease_ms + 10000) / 1000.0);
      if (fo.resumes < want ||
          now_ns() - fo.t_kill > (int64_t)(lease_ms + 10000) * 1000000)
        break;
    }
    out->moved = fo.closes;
    out->resumes = fo.resumes;
    out->identifies = fo.identifies;
    if (fo.closes > 0 && fo.resumes >= fo.closes) {
      out->ok = 1;
      out->seconds = (double)(fo.t_last_resume - fo.t_kill) / 1e9;
    } else {
      snprintf(out->error, sizeof out->error,
               "%d of %d shards resumed within lease + 10 s", fo.resumes,
               fo.closes);
    }
  }
  for (int k = 0; k < 2; k++)
    if (pid[k] > 0) {
      kill(pid[k], SIGKILL);
      waitpid(pid[k], NULL, 0);
    }
  dgw_mock_free(mock);
  event_base_free(base);
}
