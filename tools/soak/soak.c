/*
 * dgw-soak: the chaos soak of issue 15 (docs/reliability.md).
 *
 * Runs 16 shards (two clients of 8: one over ws:// with zlib-stream and
 * every compressed payload split across messages, one over wss:// without
 * compression and every message fragmented into continuation frames)
 * against two in-process mocks on one event loop, feeds each session a
 * stream of numbered dispatches, and injects a random fault about every
 * --fault-every events from a seeded RNG (the seed is printed; --seed
 * replays a run).  It checks, and exits 1 on any breach:
 *
 *   - every dispatch of a session reaches the application exactly once
 *     and in order, across every resume (each s is the one before + 1, and
 *     each SOAK event's body names its own shard and s);
 *   - at the end every session's last dispatch was delivered;
 *   - a shard starts a new session (IDENTIFY + READY) only after a fault
 *     that ends the session (close 4007/4009, op 9 false);
 *   - IDENTIFYs respect the identify window per bucket and the session
 *     start budget;
 *   - reconnects stay bounded (no shard reconnects more than a few times
 *     per fault, none more than 10 times in one second);
 *   - RSS stays flat (growth after the warm-up under --rss-growth-mb) and
 *     no file descriptor leaks;
 *   - no crash, and a clean shutdown within its deadline.
 *
 * Every wait has a deadline (--max-seconds for the whole run).
 */
#include "config.h"

#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>

#include <dgw/dgw.h>

#include "soak.h"

#if defined(__SANITIZE_ADDRESS__)
#define SOAK_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SOAK_ASAN 1
#endif
#endif
#ifndef SOAK_ASAN
#define SOAK_ASAN 0
#endif

/* ------------------------------------------------------------- helpers */

void violation(struct soak *s, const char *fmt, ...) {
  va_list ap;

  if (s->violations++ < MAX_NOTES) {
    fprintf(stderr, "soak: VIOLATION: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
  }
}

static long rss_kb(void) {
  FILE *f = fopen("/proc/self/statm", "r");
  long pages = 0, resident = 0;

  if (f == NULL)
    return 0;
  if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
    resident = 0;
  fclose(f);
  return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

static int fd_count(void) {
  DIR *d = opendir("/proc/self/fd");
  struct dirent *e;
  int n = 0;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL)
    if (e->d_name[0] != '.')
      n++;
  closedir(d);
  return n - 1; /* the directory's own */
}

static void log_fn(enum dgw_log_level level, const char *msg, void *ud) {
  struct soak *s = ud;

  if (s->verbose || level <= DGW_LOG_ERROR)
    fprintf(stderr, "# [%s] %s\n", dgw_log_level_name(level), msg);
}

static struct shard *shard_by_id(struct soak *s, uint32_t id) {
  return id < s->nshards ? &s->shard[id] : NULL;
}

/* ---------------------------------------------------------- mock hooks */

/* The shard an IDENTIFY is for ("shard":[N,T]). */
static int identify_shard(const char *json, size_t len, uint32_t *out) {
  char buf[4300];
  const char *p;

  if (len >= sizeof buf)
    len = sizeof buf - 1;
  memcpy(buf, json, len);
  buf[len] = '\0';
  p = strstr(buf, "\"shard\":[");
  return p != NULL && sscanf(p + 9, "%" SCNu32, out) == 1;
}

static void on_identify(struct side *side, struct dgw_mock_conn *conn,
                        const char *json, size_t len) {
  struct soak *s = side->soak;
  struct shard *sh;
  uint32_t id;

  if (!identify_shard(json, len, &id) || (sh = shard_by_id(s, id)) == NULL) {
    violation(s, "an IDENTIFY without a known shard");
    return;
  }
  sh->conn = conn;
  sh->identifies++;
}

/* IDENTIFY pacing, stamped where the client sends (the shard enters
 * IDENTIFYING as it writes IDENTIFY): the mock's arrival stamps would
 * count the loop's lateness (it shares the loop), so two IDENTIFYs read
 * in one pass look 0 ms apart.  dgw's identify queue starts a bucket's
 * window when the IDENTIFY is written (identify.h's sent()), so even a
 * pass stalled between grant and send (the slow reader's 150 ms) keeps
 * two sends of a bucket a full window apart: allowed, 20 ms (scaled) of
 * slack for the clock reads. */
static void on_state(struct dgw_gateway *gw, enum dgw_state from,
                     enum dgw_state to, void *ud) {
  struct shard *sh = dgw_gateway_user_data(gw);
  struct side *side = sh->side;
  struct soak *s = side->soak;
  unsigned bucket = sh->id % IDENT_CONC;
  double t = now_ms();

  (void)from;
  (void)ud;
  if (to != DGW_STATE_IDENTIFYING)
    return;
  if (side->ident_ms[bucket] > 0) {
    double gap = t - side->ident_ms[bucket];

    if (gap < s->min_ident_gap)
      s->min_ident_gap = gap;
    if (gap < IDENT_WIN - 20 * s->scale)
      violation(s,
                "shard %u: IDENTIFY %.1f ms after the last of its "
                "bucket (window %d ms)",
                sh->id, gap, IDENT_WIN);
  }
  side->ident_ms[bucket] = t;
}

static void on_resume(struct side *side, struct dgw_mock_conn *conn,
                      const char *json, size_t len) {
  struct soak *s = side->soak;
  uint32_t i;

  for (i = side->first; i < side->first + side->count; i++) {
    struct shard *sh = &s->shard[i];

    if (sh->sid[0] != '\0' && memmem(json, len, sh->sid, strlen(sh->sid))) {
      sh->conn = conn;
      return;
    }
  }
}

static void mock_on_payload(struct dgw_mock *mock, struct dgw_mock_conn *conn,
                            int op, const char *json, size_t len, void *ud) {
  (void)mock;
  if (op == 2)
    on_identify(ud, conn, json, len);
  else if (op == 6)
    on_resume(ud, conn, json, len);
}

static void mock_on_close(struct dgw_mock *mock, struct dgw_mock_conn *conn,
                          int code, void *ud) {
  struct side *side = ud;
  uint32_t i;

  (void)mock;
  (void)code;
  for (i = side->first; i < side->first + side->count; i++)
    if (side->soak->shard[i].conn == conn)
      side->soak->shard[i].conn = NULL;
}

/* ------------------------------------------------------ client callbacks */

static void on_connecting(struct dgw_gateway *gw, void *ud) {
  struct shard *sh = dgw_gateway_user_data(gw);
  double t = now_ms(), oldest;

  (void)ud;
  sh->connects++;
  if (--sh->credit < 0)
    violation(sh->side->soak,
              "shard %u: connect %" PRIu64 " is more than its faults explain",
              sh->id, sh->connects);
  /* The figure: the most connects within one second (the ring holds the
   * last 10). */
  {
    unsigned n, back = sh->nconnect < 10 ? sh->nconnect : 10;

    for (n = 1; n <= back; n++) {
      oldest = sh->connect_ms[(sh->nconnect - n) % 10];
      if (t - oldest >= 1000.0)
        break;
    }
    if ((double)n > sh->max_rate)
      sh->max_rate = (double)n;
  }
  sh->connect_ms[sh->nconnect++ % 10] = t;
}

static void on_disconnect(struct dgw_gateway *gw,
                          const struct dgw_disconnect *info, void *ud) {
  struct shard *sh = dgw_gateway_user_data(gw);

  (void)ud;
  if (info->error == DGW_ERR_TIMEOUT)
    sh->credit += 2; /* a zombie (withheld ACKs, or a loop too late) */
}

static void on_ready(struct dgw_gateway *gw, void *ud) {
  struct shard *sh = dgw_gateway_user_data(gw);
  struct soak *s = sh->side->soak;
  const char *sid = dgw_gateway_session_id(gw);

  (void)ud;
  if (sh->sessions > 0) {
    if (sh->owed == 0)
      violation(s, "shard %u: a new session (%s after %s) no fault asked for",
                sh->id, sid != NULL ? sid : "?", sh->sid);
    if (sh->top > sh->last_seq)
      sh->abandoned += (uint64_t)(sh->top - sh->last_seq);
  }
  sh->owed = 0;
  sh->sessions++;
  snprintf(sh->sid, sizeof sh->sid, "%s", sid != NULL ? sid : "");
  sh->last_seq = 0; /* READY is s 1 */
  sh->top = 0;
}

/* "{"sh":N,"s":S,...": the body names its shard and its own s. */
static void check_body(struct shard *sh, const struct dgw_event *ev) {
  size_t len;
  const char *d = dgw_event_data(ev, &len);
  char buf[64];
  unsigned id;
  long long seq;

  if (len >= sizeof buf)
    len = sizeof buf - 1;
  memcpy(buf, d, len);
  buf[len] = '\0';
  if (sscanf(buf, "{\"sh\":%u,\"s\":%lld", &id, &seq) != 2 || id != sh->id ||
      seq != (long long)dgw_event_seq(ev))
    violation(sh->side->soak, "shard %u: s %lld carries another body (%s)",
              sh->id, (long long)dgw_event_seq(ev), buf);
}

static void stall_ms(int ms) {
  struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};

  while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
    ;
}

static void on_dispatch(struct dgw_gateway *gw, const struct dgw_event *ev,
                        void *ud) {
  struct shard *sh = dgw_gateway_user_data(gw);
  struct soak *s = sh->side->soak;
  int64_t seq = dgw_event_seq(ev);
  const char *name = dgw_event_name(ev);

  (void)ud;
  if (seq != sh->last_seq + 1)
    violation(s, "shard %u session %s: %s with s %lld after s %lld", sh->id,
              sh->sid, name, (long long)seq, (long long)sh->last_seq);
  if (seq > sh->last_seq)
    sh->last_seq = seq;
  if (strcmp(name, "SOAK") != 0)
    return;
  check_body(sh, ev);
  sh->delivered++;
  s->delivered++;
  if (sh->stall) {
    sh->stall = 0;
    stall_ms(STALL_MS);
  }
}

/* ------------------------------------------------------------------ pump */

void add_events(struct soak *s, struct shard *sh, int n) {
  char d[700];
  int i;

  sh->top = dgw_mock_session_seq(sh->side->mock, sh->sid);
  if (sh->top < 0)
    return; /* the session is gone: a new one comes */
  for (i = 0; i < n; i++) {
    int64_t next = sh->top + 1;
    size_t off = (size_t)rnd_below(s, 200), plen = (size_t)rnd_below(s, 300);

    snprintf(d, sizeof d, "{\"sh\":%u,\"s\":%lld,\"p\":\"%.*s\"}", sh->id,
             (long long)next, (int)plen, s->pad + off);
    if (dgw_mock_session_add_dispatch(sh->side->mock, sh->sid, "SOAK", d) !=
        DGW_OK)
      return;
    sh->top = dgw_mock_session_seq(sh->side->mock, sh->sid);
  }
}

static int all_live(struct soak *s) {
  uint32_t i;

  for (i = 0; i < s->nshards; i++)
    if (dgw_gateway_state(s->shard[i].gw) != DGW_STATE_READY ||
        s->shard[i].conn == NULL)
      return 0;
  return 1;
}

static int all_delivered(struct soak *s) {
  uint32_t i;

  for (i = 0; i < s->nshards; i++) {
    struct shard *sh = &s->shard[i];

    if (dgw_gateway_state(sh->gw) != DGW_STATE_READY || sh->sid[0] == '\0' ||
        dgw_mock_session_seq(sh->side->mock, sh->sid) != sh->last_seq)
      return 0;
  }
  return 1;
}

static void pump(evutil_socket_t fd, short what, void *arg) {
  struct soak *s = arg;
  double t = now_ms();
  long rss;
  uint32_t i;

  (void)fd;
  (void)what;
  if (t > s->deadline) {
    violation(s,
              "deadline: %.0f s passed with %" PRIu64 " of %" PRIu64
              " events delivered",
              (t - s->t0) / 1000.0, s->delivered, s->target);
    s->phase = DONE;
    event_base_loopbreak(s->base);
    return;
  }
  rss = rss_kb();
  if (s->rss_base == 0 && s->delivered >= s->target / 4)
    s->rss_base = rss;
  /* Every shard connected and live, no outage: the fd count to keep. */
  if (s->fd_base == 0 && s->rss_base > 0 && !s->side[0].listen_off &&
      !s->side[1].listen_off && all_live(s))
    s->fd_base = fd_count();
  if (rss > s->rss_peak)
    s->rss_peak = rss;
  if (s->phase == QUIESCE) {
    if (all_delivered(s)) {
      s->phase = DONE;
      s->t_end = t;
      event_base_loopbreak(s->base);
    }
    return;
  }
  if (s->delivered >= s->target) {
    /* Faults end; every side heals; what is in flight must arrive. */
    for (i = 0; i < 2; i++) {
      struct side *side = &s->side[i];

      if (side->ack_off)
        ack_back(-1, 0, side);
      evtimer_del(side->ack_timer);
      if (side->listen_off)
        listen_back(-1, 0, side);
      evtimer_del(side->listen_timer);
    }
    s->phase = QUIESCE;
    return;
  }
  if (s->fault_every > 0 && s->delivered >= s->next_fault)
    soak_fault(s);
  for (i = 0; i < s->nshards; i++) {
    struct shard *sh = &s->shard[i];
    int64_t top, room;

    if (sh->sid[0] == '\0')
      continue;
    top = dgw_mock_session_seq(sh->side->mock, sh->sid);
    if (top < 0)
      continue; /* the session is gone: a new one comes */
    sh->top = top;
    room = WINDOW - (top - sh->last_seq);
    if (room > BATCH)
      room = BATCH;
    if (room > 0)
      add_events(s, sh, (int)room);
  }
}

/* ----------------------------------------------------------------- setup */

static int side_start(struct soak *s, struct side *side, const char *certs) {
  struct dgw_mock_config mc;
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  char url[128], cert[600], key[600], ca[600];
  int err = 0;
  uint32_t i;

  snprintf(cert, sizeof cert, "%s/localhost.pem", certs);
  snprintf(key, sizeof key, "%s/localhost.key", certs);
  snprintf(ca, sizeof ca, "%s/ca.pem", certs);
  memset(&mc, 0, sizeof mc);
  mc.heartbeat_interval_ms = BEAT_MS;
  mc.history_max = HISTORY;
  mc.detached_max = 4096;
  mc.replay_overlap = side->tls ? 0 : 3; /* replays the client must drop */
  mc.no_rate_limit = 1; /* the soak pushes; the client only heartbeats */
  if (side->tls) {
    mc.cert_file = cert;
    mc.key_file = key;
    mc.fragment_size = 48; /* continuation frames */
  } else {
    mc.split_size = 24; /* compressed payloads across messages */
  }
  mc.log = log_fn;
  mc.log_user_data = s;
  mc.hooks.on_payload = mock_on_payload;
  mc.hooks.on_close = mock_on_close;
  mc.user_data = side;
  side->mock = dgw_mock_new(s->base, &mc, &err);
  if (side->mock == NULL) {
    fprintf(stderr, "soak: cannot start a mock (%s)\n", dgw_strerror(err));
    return -1;
  }
  side->ack_timer = evtimer_new(s->base, ack_back, side);
  side->listen_timer = evtimer_new(s->base, listen_back, side);
  snprintf(url, sizeof url, "%s://127.0.0.1:%u", side->tls ? "wss" : "ws",
           (unsigned)dgw_mock_port(side->mock));

  opt = dgw_options_new();
  cb = dgw_callbacks_new();
  if (opt == NULL || cb == NULL || side->ack_timer == NULL ||
      side->listen_timer == NULL) {
    dgw_options_free(opt);
    dgw_callbacks_free(cb);
    return -1;
  }
  dgw_options_set_token(opt, "soak.token");
  dgw_options_set_intents(opt, 513);
  dgw_options_set_gateway_url(opt, url);
  dgw_options_set_compress(opt, !side->tls);
  if (side->tls)
    dgw_options_set_ca_file(opt, ca);
  dgw_options_set_shards(opt, side->first, side->count, s->nshards);
  dgw_options_set_identify_limits(opt, IDENT_CONC, IDENT_WIN);
  dgw_options_set_session_start_limit(opt, START_BUDGET, START_BUDGET,
                                      86400000);
  dgw_options_set_reconnect(opt, 20, 500, 60000);
  dgw_options_set_invalid_session_wait(opt, 20, 60);
  dgw_options_set_timeouts(opt, (uint32_t)(5000 * s->scale),
                           (uint32_t)(1000 * s->scale));
  dgw_options_set_log(opt, log_fn, s, DGW_LOG_DEBUG);
  dgw_callbacks_set_on_connecting(cb, on_connecting);
  dgw_callbacks_set_on_state(cb, on_state);
  dgw_callbacks_set_on_ready(cb, on_ready);
  dgw_callbacks_set_on_disconnect(cb, on_disconnect);
  dgw_callbacks_set_on_dispatch(cb, on_dispatch);
  side->client = dgw_client_new(s->base, opt, cb, s, &err);
  dgw_options_free(opt);
  dgw_callbacks_free(cb);
  if (side->client == NULL) {
    fprintf(stderr, "soak: cannot make a client (%s)\n", dgw_strerror(err));
    return -1;
  }
  for (i = side->first; i < side->first + side->count; i++) {
    struct shard *sh = &s->shard[i];

    sh->side = side;
    sh->id = i;
    sh->gw = dgw_client_gateway(side->client, i);
    sh->credit = 1;
    dgw_gateway_set_user_data(sh->gw, sh);
  }
  return dgw_client_start(side->client) == DGW_OK ? 0 : -1;
}

static int all_closed(struct soak *s) {
  uint32_t i;

  for (i = 0; i < s->nshards; i++) {
    enum dgw_state st = dgw_gateway_state(s->shard[i].gw);

    if (st != DGW_STATE_CLOSED && st != DGW_STATE_FATAL)
      return 0;
  }
  return 1;
}

static void shutdown_all(struct soak *s) {
  double end = now_ms() + 5000 * s->scale;
  int i;

  for (i = 0; i < 2; i++)
    if (s->side[i].client != NULL)
      dgw_client_stop(s->side[i].client);
  while (s->side[0].client != NULL && s->side[1].client != NULL &&
         !all_closed(s) && now_ms() < end) {
    struct timeval tv = {0, 20000};

    event_base_loopexit(s->base, &tv);
    event_base_loop(s->base, EVLOOP_ONCE);
  }
  if (s->side[0].client != NULL && s->side[1].client != NULL && !all_closed(s))
    violation(s, "the shards did not close within 5 s of dgw_client_stop()");
  for (i = 0; i < 2; i++) {
    struct side *side = &s->side[i];

    dgw_client_free(side->client);
    dgw_mock_free(side->mock);
    if (side->ack_timer != NULL)
      event_free(side->ack_timer);
    if (side->listen_timer != NULL)
      event_free(side->listen_timer);
  }
  event_base_loop(s->base, EVLOOP_NONBLOCK);
}

/* -------------------------------------------------------------- report */

static void report(struct soak *s) {
  struct dgw_client_stats st[2];
  uint64_t ident = 0, sessions = 0, connects = 0, abandoned = 0;
  uint64_t resumes = 0, zombies = 0, nfaults = 0;
  double secs = (s->t_end - s->t0) / 1000.0, max_rate = 0;
  uint32_t i;
  int k;

  for (i = 0; i < 2; i++) {
    memset(&st[i], 0, sizeof st[i]);
    st[i].size = sizeof st[i];
    dgw_client_stats(s->side[i].client, &st[i]);
    resumes += st[i].resumes;
    zombies += st[i].zombies;
  }
  for (i = 0; i < s->nshards; i++) {
    struct shard *sh = &s->shard[i];

    ident += sh->identifies;
    sessions += sh->sessions;
    connects += sh->connects;
    abandoned += sh->abandoned;
    if (sh->max_rate > max_rate)
      max_rate = sh->max_rate;
    if (sh->identifies > sh->sessions + s->global_faults + sh->faults)
      violation(s, "shard %u: %" PRIu64 " IDENTIFYs for %" PRIu64 " sessions",
                sh->id, sh->identifies, sh->sessions);
  }
  if (ident > (uint64_t)START_BUDGET * 2)
    violation(s, "%" PRIu64 " IDENTIFYs: over the session start budget", ident);
  /* A fault costs a shard a reconnect or two (op 7 after a drop...); a
   * storm would cost many. */
  printf("soak: seed %" PRIu64 ", %u shards (%u over wss, fragmented; %u over "
         "ws with zlib-stream, split)\n",
         s->seed, s->nshards, s->side[1].count, s->side[0].count);
  printf("soak: %" PRIu64 " events delivered in %.1f s (%.0f/s)\n",
         s->delivered, secs, secs > 0 ? (double)s->delivered / secs : 0.0);
  for (k = 0; k < F_COUNT; k++)
    nfaults += s->faults[k];
  printf("soak: faults %" PRIu64 " (one about every %" PRIu64
         " events; %" PRIu64 " shard hits):\n",
         nfaults, s->fault_every, s->fault_hits);
  for (k = 0; k < F_COUNT; k++)
    printf("soak:   %-42s %" PRIu64 "\n", soak_kinds[k].name, s->faults[k]);
  printf("soak: connects %" PRIu64 " (most by one shard within 1 s: %.0f), "
         "resumes %" PRIu64 ", zombies %" PRIu64 "\n",
         connects, max_rate, resumes, zombies);
  printf("soak: identifies %" PRIu64 " (sessions %" PRIu64
         ": %u first + %" PRIu64
         " new after a session-ending fault), events abandoned with their "
         "session %" PRIu64 "\n",
         ident, sessions, s->nshards, sessions - s->nshards, abandoned);
  printf("soak: closest IDENTIFYs of one bucket %.1f ms apart (window %d ms)\n",
         s->min_ident_gap, IDENT_WIN);
  if (s->check_rss)
    printf("soak: rss at 25%% %.1f MB, peak %.1f MB, end %.1f MB; fds at 25%% "
           "%d, end %d\n",
           (double)s->rss_base / 1024.0, (double)s->rss_peak / 1024.0,
           (double)s->rss_end / 1024.0, s->fd_base, s->fd_end);
  else
    printf("soak: rss not checked (%s); peak %.1f MB; fds at 25%% %d, end %d\n",
           SOAK_ASAN ? "AddressSanitizer: its quarantine is most of the RSS"
                     : "--no-rss, as under valgrind",
           (double)s->rss_peak / 1024.0, s->fd_base, s->fd_end);
  printf("soak: violations %" PRIu64 ": %s\n", s->violations,
         s->violations == 0 ? "PASS" : "FAIL");
}

static void usage(void) {
  fprintf(stderr,
          "usage: dgw-soak [--events N] [--seed N] [--fault-every N]\n"
          "                [--shards N] [--certs DIR] [--max-seconds S]\n"
          "                [--rss-growth-mb M] [--no-rss] [-v]\n"
          "Defaults: 1000000 events, a random seed (printed), a fault about\n"
          "every 5000 events, 16 shards, $DGW_TEST_CERTS or tests/certs,\n"
          "900 s, 16 MB.  Exit 0 when every check held, 1 otherwise.\n");
}

int main(int argc, char **argv) {
  static struct soak s;
  const char *certs = getenv("DGW_TEST_CERTS");
  const char *scale = getenv("DGW_TEST_TIME_SCALE");
  struct event *pump_ev;
  struct timeval tick = {0, 2000};
  double max_seconds = 900;
  int i;

  s.target = 1000000;
  s.fault_every = 5000;
  s.nshards = 16;
  s.seed = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
  /* Under AddressSanitizer the RSS is mostly its quarantine of freed
   * memory (256 MB by default), not the program's: the check would
   * measure ASan.  The plain and valgrind runs keep it. */
  s.check_rss = !SOAK_ASAN;
  s.rss_growth_mb = 16;
  s.scale = scale != NULL && atof(scale) > 1.0 ? atof(scale) : 1.0;
  s.min_ident_gap = 1e9;
  if (certs == NULL)
    certs = "tests/certs";
  for (i = 1; i < argc; i++) {
    const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;

    if (strcmp(a, "-v") == 0) {
      s.verbose = 1;
      continue;
    }
    if (strcmp(a, "--no-rss") == 0) {
      s.check_rss = 0;
      continue;
    }
    if (v == NULL) {
      usage();
      return 2;
    }
    i++;
    if (strcmp(a, "--events") == 0)
      s.target = strtoull(v, NULL, 10);
    else if (strcmp(a, "--seed") == 0)
      s.seed = strtoull(v, NULL, 10);
    else if (strcmp(a, "--fault-every") == 0)
      s.fault_every = strtoull(v, NULL, 10);
    else if (strcmp(a, "--shards") == 0)
      s.nshards = (uint32_t)strtoul(v, NULL, 10);
    else if (strcmp(a, "--certs") == 0)
      certs = v;
    else if (strcmp(a, "--max-seconds") == 0)
      max_seconds = atof(v);
    else if (strcmp(a, "--rss-growth-mb") == 0)
      s.rss_growth_mb = atof(v);
    else {
      usage();
      return 2;
    }
  }
  if (s.nshards < 2 || s.nshards > MAX_SHARDS || s.nshards % 2 != 0 ||
      s.target == 0) {
    usage();
    return 2;
  }
  printf("soak: seed %" PRIu64 " (replay with --seed %" PRIu64 ")\n", s.seed,
         s.seed);
  fflush(stdout);
  s.rng = s.seed;
  for (i = 0; i < (int)sizeof s.pad - 1; i++)
    s.pad[i] = (char)('a' + rnd_below(&s, 26));
  s.next_fault = s.fault_every;
  signal(SIGPIPE, SIG_IGN);
  s.base = event_base_new();
  if (s.base == NULL)
    return 1;
  s.side[0].soak = &s;
  s.side[1].soak = &s;
  s.side[0].first = 0;
  s.side[0].count = s.nshards / 2;
  s.side[1].first = s.nshards / 2;
  s.side[1].count = s.nshards / 2;
  s.side[1].tls = 1;
  s.t0 = now_ms();
  s.deadline = s.t0 + max_seconds * 1000.0;
  pump_ev = event_new(s.base, -1, EV_PERSIST, pump, &s);
  if (pump_ev == NULL || side_start(&s, &s.side[0], certs) != 0 ||
      side_start(&s, &s.side[1], certs) != 0) {
    violation(&s, "setup failed");
  } else {
    evtimer_add(pump_ev, &tick);
    event_base_dispatch(s.base);
  }
  if (s.t_end == 0)
    s.t_end = now_ms();
  s.rss_end = rss_kb();
  s.fd_end = fd_count();
  if (s.check_rss && s.rss_base > 0 &&
      s.rss_peak - s.rss_base > (long)(s.rss_growth_mb * 1024))
    violation(&s, "RSS grew %.1f MB after the warm-up (limit %.1f MB)",
              (double)(s.rss_peak - s.rss_base) / 1024.0, s.rss_growth_mb);
  if (s.fd_base > 0 && s.fd_end > s.fd_base + 4)
    violation(&s, "%d file descriptors at the end, %d at 25%%", s.fd_end,
              s.fd_base);
  if (s.side[0].client != NULL && s.side[1].client != NULL)
    report(&s);
  if (pump_ev != NULL)
    event_free(pump_ev);
  shutdown_all(&s);
  event_base_free(s.base);
  if (s.violations > 0)
    fprintf(stderr,
            "soak: FAIL (%" PRIu64 " violations; replay with --seed "
            "%" PRIu64 ")\n",
            s.violations, s.seed);
  return s.violations == 0 ? 0 : 1;
}
