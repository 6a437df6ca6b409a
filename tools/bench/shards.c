/*
 * Many idle shards: one process runs the mock gateway (tools/mock), a
 * fresh child runs the dgw clients, so the RSS measured is the shards'
 * own and not the corpus of the throughput runs.  The first shard comes
 * up alone; its RSS is the baseline that the other N - 1 are measured
 * against.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <malloc.h>
#include <sys/resource.h>
#include <sys/wait.h>
#ifdef __linux__
#include <sys/prctl.h>
#endif

#include <event2/event.h>

#include <dgw/dgw.h>

#include "bench.h"
#include "mock.h"

struct fleet {
  struct event_base *base;
  uint32_t ready;
  uint32_t guilds; /* startup GUILD_CREATEs received */
  uint64_t disconnects;
  uint32_t resumed;       /* RESUMED received (the outage) */
  uint32_t waiting;       /* shards connecting or at HELLO now */
  uint32_t peak_waiting;  /* the most of them at once */
  char first_reason[120]; /* why the first connection was lost */
};

static const unsigned shard_guilds[] = SHARD_GUILDS;
#define NGUILDS_PER_SHARD (sizeof shard_guilds / sizeof shard_guilds[0])

/*
 * With DGW_BENCH_TRACE set in the environment, the mock's process and the
 * shards' process each print a line a second on stderr: how late their
 * event loop ran a 10 ms timer at worst (a loop busy elsewhere reads a
 * heartbeat or its ACK that much late), their CPU in that second, and
 * their progress.  Stamps are CLOCK_MONOTONIC seconds, one clock for both
 * processes (and for `perf record -k mono`).
 */
#define WATCH_TICK_MS 10

struct watch {
  struct event *tick;
  const char *who;
  int64_t due_ns;    /* when the tick should run */
  int64_t worst_ns;  /* its worst lateness in this second */
  int64_t second_ns; /* start of this second */
  double cpu0;
  /* Appends this process's progress to the line. */
  void (*progress)(void *arg, char *out, size_t size);
  void *arg;
};

static void watch_tick(evutil_socket_t fd, short what, void *arg) {
  struct watch *w = arg;
  struct timeval tv = {0, WATCH_TICK_MS * 1000};
  int64_t now = now_ns();

  (void)fd;
  (void)what;
  if (now - w->due_ns > w->worst_ns)
    w->worst_ns = now - w->due_ns;
  if (now - w->second_ns >= 1000000000) {
    double cpu = cpu_seconds();
    char extra[200] = "";

    w->progress(w->arg, extra, sizeof extra);
    fprintf(stderr,
            "dgw-bench: [%.3f] %s: loop late by %.1f ms at worst, "
            "CPU %.0f%% (%.2f s in all)%s\n",
            (double)now / 1e9, w->who, (double)w->worst_ns / 1e6,
            (cpu - w->cpu0) / ((double)(now - w->second_ns) / 1e9) * 100, cpu,
            extra);
    w->cpu0 = cpu;
    w->second_ns = now;
    w->worst_ns = 0;
  }
  w->due_ns = now + WATCH_TICK_MS * 1000000;
  evtimer_add(w->tick, &tv);
}

/* Starts the watch on `base` when DGW_BENCH_TRACE is set. */
static void watch_start(struct watch *w, struct event_base *base,
                        const char *who,
                        void (*progress)(void *, char *, size_t), void *arg) {
  memset(w, 0, sizeof *w);
  if (getenv("DGW_BENCH_TRACE") == NULL)
    return;
  w->tick = evtimer_new(base, watch_tick, w);
  if (w->tick == NULL)
    return;
  w->who = who;
  w->progress = progress;
  w->arg = arg;
  w->second_ns = now_ns();
  w->due_ns = w->second_ns;
  w->cpu0 = cpu_seconds();
  event_active(w->tick, EV_TIMEOUT, 0);
}

static void watch_stop(struct watch *w) {
  if (w->tick != NULL)
    event_free(w->tick);
  w->tick = NULL;
}

static void on_dispatch(struct dgw_gateway *gw, const struct dgw_event *ev,
                        void *ud) {
  struct fleet *f = ud;

  (void)gw;
  if (strcmp(dgw_event_name(ev), "GUILD_CREATE") == 0)
    f->guilds++;
}

static void on_ready(struct dgw_gateway *gw, void *ud) {
  struct fleet *f = ud;

  (void)gw;
  f->ready++;
}

static void on_resumed(struct dgw_gateway *gw, void *ud) {
  struct fleet *f = ud;

  (void)gw;
  f->resumed++;
}

static int before_turn(enum dgw_state s) {
  return s == DGW_STATE_CONNECTING || s == DGW_STATE_HELLO;
}

/* Counts the shards that hold a connection before their IDENTIFY or
 * RESUME went out. */
static void on_state(struct dgw_gateway *gw, enum dgw_state from,
                     enum dgw_state to, void *ud) {
  struct fleet *f = ud;

  (void)gw;
  if (before_turn(to) && !before_turn(from) && ++f->waiting > f->peak_waiting)
    f->peak_waiting = f->waiting;
  else if (before_turn(from) && !before_turn(to) && f->waiting > 0)
    f->waiting--;
}

static void on_disconnect(struct dgw_gateway *gw,
                          const struct dgw_disconnect *info, void *ud) {
  struct fleet *f = ud;

  (void)gw;
  if (f->disconnects++ == 0)
    snprintf(f->first_reason, sizeof f->first_reason, "%s", info->reason);
}

static struct dgw_client *fleet_client(struct fleet *f, uint16_t port,
                                       const char *ca_file, uint32_t first,
                                       uint32_t count, uint32_t total,
                                       const struct shard_plan *plan) {
  struct dgw_options *opt = dgw_options_new();
  struct dgw_callbacks *cb = dgw_callbacks_new();
  struct dgw_client *client;
  char url[64];
  int err = 0;

  snprintf(url, sizeof url, "%s://127.0.0.1:%u", ca_file ? "wss" : "ws",
           (unsigned)port);
  if (opt == NULL || cb == NULL ||
      dgw_options_set_token(opt, "bench-token") != DGW_OK ||
      dgw_options_set_gateway_url(opt, url) != DGW_OK ||
      /* The mock sends GUILD_CREATE only with GUILDS, as Discord. */
      dgw_options_set_intents(opt, DGW_INTENT_GUILDS) != DGW_OK ||
      dgw_options_set_shards(opt, first, count, total) != DGW_OK ||
      /* Identify concurrency relaxed: every shard its own bucket. */
      (plan == NULL && dgw_options_set_identify_limits(
                           opt, total < 65536 ? total : 65536, 1) != DGW_OK) ||
      (plan != NULL &&
       (dgw_options_set_identify_limits(opt, plan->concurrency,
                                        plan->window_ms) != DGW_OK ||
        dgw_options_set_lazy_connect(opt, plan->lazy, plan->lead_ms) !=
            DGW_OK)) ||
      (ca_file != NULL && dgw_options_set_ca_file(opt, ca_file) != DGW_OK) ||
      /* DGW_BENCH_COMPRESSION: zstd-stream for the zstd fleet (main). */
      (getenv("DGW_BENCH_COMPRESSION") != NULL &&
       dgw_options_set_compression(opt, getenv("DGW_BENCH_COMPRESSION")) !=
           DGW_OK))
    die("cannot configure the shard client");
  /* For experiments: DGW_BENCH_MAX_CONNECTING=N paces connection attempts
   * at N in flight (0: no limit) instead of the library's default. */
  if (getenv("DGW_BENCH_MAX_CONNECTING") != NULL &&
      dgw_options_set_max_connecting(
          opt, (uint32_t)strtoul(getenv("DGW_BENCH_MAX_CONNECTING"), NULL,
                                 10)) != DGW_OK)
    die("bad DGW_BENCH_MAX_CONNECTING");
  /* DGW_BENCH_QUIET_MS: the quiet sleep of the idle fleets (main). */
  if (getenv("DGW_BENCH_QUIET_MS") != NULL &&
      dgw_options_set_quiet_sleep(
          opt, (uint32_t)strtoul(getenv("DGW_BENCH_QUIET_MS"), NULL, 10)) !=
          DGW_OK)
    die("bad DGW_BENCH_QUIET_MS");
  dgw_callbacks_set_on_ready(cb, on_ready);
  dgw_callbacks_set_on_disconnect(cb, on_disconnect);
  dgw_callbacks_set_on_resumed(cb, on_resumed);
  dgw_callbacks_set_on_dispatch(cb, on_dispatch);
  dgw_callbacks_set_on_state(cb, on_state);
  client = dgw_client_new(f->base, opt, cb, f, &err);
  dgw_options_free(opt);
  dgw_callbacks_free(cb);
  if (client == NULL)
    die("dgw_client_new: %s", dgw_strerror(err));
  return client;
}

static void loop_for(struct event_base *base, double seconds) {
  struct timeval tv = {
      (time_t)seconds,
      (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};

  event_base_loopexit(base, &tv);
  event_base_dispatch(base);
}

/* Runs the loop until `*count` reaches `want` or `seconds` pass. */
static int loop_until(struct event_base *base, const uint32_t *count,
                      uint32_t want, double seconds) {
  int64_t deadline = now_ns() + (int64_t)(seconds * 1e9);

  while (*count < want && now_ns() < deadline)
    event_base_loop(base, EVLOOP_ONCE);
  return *count >= want;
}

/* loop_until() for the fleet of the rest, also taking the RSS when half
 * of it is READY: mid-start, where lazy connect makes the difference. */
static int loop_until_up(struct fleet *f, uint32_t want, uint32_t half,
                         double seconds, struct shard_result *r) {
  int64_t deadline = now_ns() + (int64_t)(seconds * 1e9);

  while (f->guilds < want && now_ns() < deadline) {
    event_base_loop(f->base, EVLOOP_ONCE);
    if (r->rss_half_kb == 0 && f->ready >= half) {
      r->rss_half_kb = rss_now_kb();
      r->waiting_half = f->waiting;
    }
  }
  return f->guilds >= want;
}

struct mock_seen {
  struct dgw_mock *mock;
  struct dgw_mock_stats last;
};

static void mock_progress_line(void *arg, char *out, size_t size) {
  struct mock_seen *p = arg;
  struct dgw_mock_stats now;

  dgw_mock_get_stats(p->mock, &now);
  snprintf(out, size,
           "; %zu connections, +%llu IDENTIFY, +%llu RESUME, "
           "+%llu heartbeats, +%llu ACKs",
           dgw_mock_conn_count(p->mock),
           (unsigned long long)(now.identifies - p->last.identifies),
           (unsigned long long)(now.resumes - p->last.resumes),
           (unsigned long long)(now.heartbeats - p->last.heartbeats),
           (unsigned long long)(now.acks_sent - p->last.acks_sent));
  p->last = now;
}

/* SIGUSR1 from the runner: a client-wide outage, every connection cut at
 * once (no close frame); the sessions stay resumable. */
static void mock_cut_all(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  dgw_mock_drop_all(arg);
}

static void mock_main(int port_fd, const char *cert, const char *key,
                      uint32_t heartbeat_ms, uint32_t shards) {
  struct event_base *base = event_base_new();
  struct dgw_mock_config cfg;
  struct dgw_mock *mock;
  struct mock_seen progress;
  struct watch watch;
  struct event *cut = NULL;
  uint16_t port;
  int err = 0;

  memset(&cfg, 0, sizeof cfg);
  cfg.detached_max = (size_t)shards + 64; /* every session survives a cut */
  cfg.host = "127.0.0.1";
  cfg.cert_file = cert;
  cfg.key_file = key;
  cfg.heartbeat_interval_ms = heartbeat_ms;
  mock = base != NULL ? dgw_mock_new(base, &cfg, &err) : NULL;
  port = mock != NULL ? dgw_mock_port(mock) : 0;
  if (mock != NULL) {
    struct corpus *c = corpus_new(7);
    struct sbuf d = {0};

    for (size_t i = 0; i < NGUILDS_PER_SHARD; i++) {
      d.len = 0;
      corpus_guild_create_d(c, &d, shard_guilds[i]);
      if (dgw_mock_add_dispatch(mock, "GUILD_CREATE", d.p) != DGW_OK)
        port = 0;
    }
    sb_free(&d);
    corpus_free(c);
  }
  if (write(port_fd, &port, sizeof port) != (ssize_t)sizeof port || port == 0)
    _exit(1);
  close(port_fd);
  memset(&progress, 0, sizeof progress);
  progress.mock = mock;
  watch_start(&watch, base, "mock", mock_progress_line, &progress);
  cut = evsignal_new(base, SIGUSR1, mock_cut_all, mock);
  if (cut == NULL || evsignal_add(cut, NULL) != 0)
    _exit(1);
  event_base_dispatch(base); /* until the runner kills us */
  _exit(0);
}

struct fleets {
  const struct fleet *first, *rest;
};

static void fleet_progress_line(void *arg, char *out, size_t size) {
  const struct fleets *f = arg;

  snprintf(out, size, "; %u READY, %u GUILD_CREATE, %llu lost, %u RESUMED",
           (unsigned)(f->first->ready + f->rest->ready),
           (unsigned)(f->first->guilds + f->rest->guilds),
           (unsigned long long)(f->first->disconnects + f->rest->disconnects),
           (unsigned)(f->first->resumed + f->rest->resumed));
}

/* The counters of both clients, summed. */
static void sum_stats(struct dgw_client *a, struct dgw_client *b,
                      struct dgw_client_stats *sum) {
  struct dgw_client_stats st;

  memset(sum, 0, sizeof *sum);
  for (int i = 0; i < 2; i++) {
    memset(&st, 0, sizeof st);
    st.size = sizeof st;
    if ((i == 0 ? a : b) == NULL ||
        dgw_client_stats(i == 0 ? a : b, &st) != DGW_OK)
      continue;
    sum->identifies += st.identifies;
    sum->resumes += st.resumes;
    sum->zombies += st.zombies;
    sum->reconnects += st.reconnects;
    sum->windows_asleep += st.windows_asleep;
    sum->window_saved_bytes += st.window_saved_bytes;
  }
}

/*
 * A client-wide outage: the mock cuts every connection at once (SIGUSR1);
 * every shard must come back and RESUME (none IDENTIFYs), and none may
 * then lose its connection to a zombie check while the others catch up.
 * Watched for two heartbeat intervals after the last RESUMED.
 */
static void outage(struct shard_result *r, pid_t mock, struct dgw_client *a,
                   struct dgw_client *b, struct fleet *first,
                   struct fleet *rest, uint32_t shards, uint32_t heartbeat_ms) {
  struct dgw_client_stats st0, st1;
  uint64_t lost0 = first->disconnects + rest->disconnects;
  uint32_t resumed = 0;
  int64_t t0, deadline;

  sum_stats(a, b, &st0);
  first->resumed = rest->resumed = 0;
  t0 = now_ns();
  deadline = t0 + 120 * (int64_t)1000000000;
  if (kill(mock, SIGUSR1) != 0)
    return;
  while ((resumed = first->resumed + rest->resumed) < shards &&
         now_ns() < deadline)
    event_base_loop(first->base, EVLOOP_ONCE);
  r->outage_seconds = (double)(now_ns() - t0) / 1e9;
  loop_for(first->base, 2.0 * heartbeat_ms / 1000.0 + 0.5);
  sum_stats(a, b, &st1);
  r->outage_done = 1;
  r->outage_resumed = first->resumed + rest->resumed;
  r->outage_all = resumed >= shards;
  r->outage_identifies = st1.identifies - st0.identifies;
  r->outage_zombies = st1.zombies - st0.zombies;
  r->outage_lost = first->disconnects + rest->disconnects - lost0;
  r->outage_lost = r->outage_lost > shards ? r->outage_lost - shards : 0;
}

static void runner_main(int out_fd, uint32_t shards, const char *cert,
                        const char *key, const char *ca_file,
                        uint32_t heartbeat_ms, double idle_seconds,
                        const struct shard_plan *plan) {
  struct shard_result r;
  struct fleet first = {0}, rest = {0};
  struct fleets both = {&first, &rest};
  struct watch watch;
  struct dgw_client_stats st0;
  struct dgw_client *a, *b = NULL;
  struct rlimit rl;
  int fds[2];
  uint16_t port = 0;
  pid_t mock;
  int64_t t0;
  double c0, w0;
  long heap_first;

  memset(&r, 0, sizeof r);
  r.shards = shards;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)shards + 64) {
    snprintf(r.error, sizeof r.error,
             "open-file limit %lu too low for %u shards (ulimit -n)",
             (unsigned long)rl.rlim_cur, (unsigned)shards);
    goto report;
  }
  if (pipe(fds) != 0)
    die("pipe: %s", strerror(errno));
  mock = fork();
  if (mock == 0) {
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    close(fds[0]);
    mock_main(fds[1], cert, key, heartbeat_ms, shards);
  }
  close(fds[1]);
  if (mock < 0 || read(fds[0], &port, sizeof port) != (ssize_t)sizeof port ||
      port == 0) {
    snprintf(r.error, sizeof r.error, "the mock gateway did not start");
    goto report;
  }
  close(fds[0]);

  first.base = rest.base = event_base_new();
  if (first.base == NULL)
    die("event_base_new failed");
  watch_start(&watch, first.base, "shards", fleet_progress_line, &both);
  a = fleet_client(&first, port, ca_file, 0, 1, shards, plan);
  t0 = now_ns();
  dgw_client_start(a);
  if (!loop_until(first.base, &first.guilds, NGUILDS_PER_SHARD, 30)) {
    snprintf(r.error, sizeof r.error, "the first shard never became ready");
    goto done;
  }
  loop_for(first.base, 0.3);
  r.rss_first_kb = rss_now_kb();
  heap_first = heap_in_use();
  if (shards > 1) {
    b = fleet_client(&rest, port, ca_file, 1, shards - 1, shards, plan);
    t0 = now_ns();
    dgw_client_start(b);
    if (!loop_until_up(&rest, (shards - 1) * (uint32_t)NGUILDS_PER_SHARD,
                       (shards - 1) / 2, plan != NULL ? 600 : 120, &r)) {
      snprintf(r.error, sizeof r.error,
               "only %u of %u shards became ready (%u GUILD_CREATEs)",
               (unsigned)rest.ready + 1, (unsigned)shards,
               (unsigned)rest.guilds);
      goto done;
    }
  }
  r.up_seconds = (double)(now_ns() - t0) / 1e9;
  loop_for(first.base, 0.5);
  c0 = cpu_seconds();
  w0 = (double)now_ns() / 1e9;
  /* Quiet shards pack at the first ACK after quiet_ms without a dispatch:
   * watch at least a beat past that. */
  if (getenv("DGW_BENCH_QUIET_MS") != NULL) {
    r.quiet_ms = (uint32_t)strtoul(getenv("DGW_BENCH_QUIET_MS"), NULL, 10);
    if (r.quiet_ms > 0 &&
        idle_seconds < (r.quiet_ms + heartbeat_ms) / 1e3 + 1.5)
      idle_seconds = (r.quiet_ms + heartbeat_ms) / 1e3 + 1.5;
  }
  loop_for(first.base, idle_seconds);
  r.idle_seconds = (double)now_ns() / 1e9 - w0;
  r.idle_cpu = (cpu_seconds() - c0) / r.idle_seconds;
  r.rss_all_kb = rss_now_kb();
  r.rss_peak_kb = rss_peak_kb();
#if defined(__GLIBC__)
  /* What glibc keeps of the startup burst, handed back: the rest is live
   * or fragmented for good. */
  malloc_trim(0);
  r.rss_trimmed_kb = rss_now_kb();
#endif
  if (shards > 1) {
    r.rss_per_shard =
        (double)(r.rss_all_kb - r.rss_first_kb) / (double)(shards - 1);
    if (r.rss_trimmed_kb > 0)
      r.rss_trimmed_per_shard =
          (double)(r.rss_trimmed_kb - r.rss_first_kb) / (double)(shards - 1);
    if (heap_first >= 0)
      r.heap_per_shard =
          (double)(heap_in_use() - heap_first) / 1024.0 / (double)(shards - 1);
  }
  for (uint32_t i = 0; i < shards; i++) {
    struct dgw_gateway *gw = dgw_client_gateway(i == 0 ? a : b, i);

    if (gw != NULL && dgw_gateway_latency(gw) >= 0)
      r.heartbeats++; /* shards with an ACKed heartbeat */
  }
  r.disconnects = first.disconnects + rest.disconnects;
  snprintf(r.error, sizeof r.error, "%s",
           first.disconnects ? first.first_reason : rest.first_reason);
  sum_stats(a, b, &st0);
  r.zombies = st0.zombies;
  r.asleep = st0.windows_asleep;
  r.saved_bytes = st0.window_saved_bytes;
  r.peak_waiting = first.peak_waiting > rest.peak_waiting ? first.peak_waiting
                                                          : rest.peak_waiting;
  r.ok = 1;
  if (plan == NULL) /* the lazy part is about the start only */
    outage(&r, mock, a, b, &first, &rest, shards, heartbeat_ms);
done:
  watch_stop(&watch);
  dgw_client_free(b);
  dgw_client_free(a);
  event_base_free(first.base);
  kill(mock, SIGKILL);
  waitpid(mock, NULL, 0);
report:
  if (write(out_fd, &r, sizeof r) != (ssize_t)sizeof r)
    _exit(1);
  _exit(0);
}

void shards_run(uint32_t shards, const char *cert_file, const char *key_file,
                const char *ca_file, uint32_t heartbeat_ms, double idle_seconds,
                const struct shard_plan *plan, struct shard_result *out) {
  int fds[2];
  pid_t pid;

  memset(out, 0, sizeof *out);
  if (pipe(fds) != 0)
    die("pipe: %s", strerror(errno));
  fflush(stdout);
  fflush(stderr);
  pid = fork();
  if (pid < 0)
    die("fork: %s", strerror(errno));
  if (pid == 0) {
#ifdef __linux__
    prctl(PR_SET_PDEATHSIG, SIGKILL);
#endif
    close(fds[0]);
    runner_main(fds[1], shards, cert_file, key_file, ca_file, heartbeat_ms,
                idle_seconds, plan);
  }
  close(fds[1]);
  if (read(fds[0], out, sizeof *out) != (ssize_t)sizeof *out) {
    memset(out, 0, sizeof *out);
    snprintf(out->error, sizeof out->error, "the shard process died");
  }
  close(fds[0]);
  child_wait(pid, "the shard process");
}
