/*
 * dgw-bench: how fast and how lean dgw is, measured against the limits of
 * its own building blocks, in one process run (so the ratios hold on a
 * noisy machine).  See docs/performance.md for what each number means and
 * for a recorded run; `make bench` builds and runs it.
 *
 *   throughput  the real dgw_client against a forked server that writes a
 *               pre-compressed, pre-framed stream over loopback, plain and
 *               TLS, with no subscriber, a raw-d one and a parsed one
 *   limits      the same frames through dgw_inflate_push() alone, with
 *               dgw_envelope_peek(), and with json_tokener_parse() on each
 *               payload, in a tight loop with no I/O
 *   latency     send time (stamped in d by the server) to handler call at
 *               a steady rate
 *   shards      N idle shards against tools/mock: bring-up time, RSS per
 *               shard, idle CPU
 *
 * This file runs the parts; the command line is in options.c, the report
 * in report.c, and corpus.c, server.c and shards.c hold the rest (see
 * bench.h).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/wait.h>

#include <event2/event.h>
#include <json-c/json.h>

#include <dgw/dgw.h>
#include <dgw/field.h>

#include "bench.h"
#include "decomp.h"
#include "inflate.h"
#include "payload.h"
#ifdef HAVE_HIREDIS
#include "redis_server.h"
#endif

/* The cluster's lease in the cluster-on runs: long against a run (no
 * expiry inside one), short enough that a member's first claim (after
 * lease/3) comes quickly. */
#define CLUSTER_LEASE_MS 3000
/* The failover's lease: the tests' (failover is bounded by it). */
#define CLUSTER_FAILOVER_LEASE_MS 2000

static void progress(const char *what);

/* ------------------------------------------------------------ results */

/* Keeps the better of two measurements (less wall time). */
static void keep_best(struct measure *best, const struct measure *m) {
  if (m->ok && (!best->ok || m->wall < best->wall))
    *best = *m;
}

/* ---------------------------------------------------------- the limits */

enum limit { LIMIT_INFLATE, LIMIT_PEEK, LIMIT_PARSE };

static struct measure limit_run(const struct stream *s, enum limit what) {
  struct measure m = {0};
  struct dgw_decomp *z = dgw_decomp_new(
      s->zstd ? DGW_COMPRESSION_ZSTD : DGW_COMPRESSION_ZLIB, 0, NULL);
  const char *out;
  size_t out_len;
  int64_t t0;
  double c0;

  if (z == NULL)
    die("dgw_decomp_new failed");
  for (size_t i = 0; i < 2; i++) /* HELLO and READY, untimed */
    if (dgw_decomp_push(z, s->frames + s->msg_off[i], s->msg_len[i], &out,
                        &out_len) != DGW_OK)
      die("the stream does not inflate");
  t0 = now_ns();
  c0 = cpu_seconds();
  for (size_t i = 2; i < s->nmsg; i++) {
    if (dgw_decomp_push(z, s->frames + s->msg_off[i], s->msg_len[i], &out,
                        &out_len) != DGW_OK)
      die("the stream does not inflate");
    if (what == LIMIT_PARSE) {
      struct json_object *o = json_tokener_parse(out);

      if (o == NULL)
        die("payload %zu does not parse", i);
      json_object_put(o);
    } else if (what == LIMIT_PEEK) {
      struct dgw_envelope env;

      if (dgw_envelope_peek(out, out_len, &env) != DGW_OK)
        die("payload %zu does not peek", i);
    }
  }
  m.cpu = cpu_seconds() - c0;
  m.wall = (double)(now_ns() - t0) / 1e9;
  m.ok = 1;
  dgw_decomp_free(z);
  return m;
}

/*
 * Quiet shards (lib/inflate.c's sleep): the corpus's first payloads
 * through two decompressors, one packed after every payload; the CPU of
 * the packs, and of the pushes that restore less the same pushes awake.
 */
#define QUIET_CYCLES 2000

static void quiet_run(const struct stream *s, struct results *res) {
  struct dgw_decomp *z = dgw_decomp_new(DGW_COMPRESSION_ZLIB, 0, NULL);
  struct dgw_decomp *awake = dgw_decomp_new(DGW_COMPRESSION_ZLIB, 0, NULL);
  struct dgw_inflate_sleeper *sl = dgw_inflate_sleeper_new();
  double pack = 0, wake = 0, plain = 0, c0, packed = 0;
  size_t n = 0, i;
  const char *out;
  size_t out_len;

  if (z == NULL || awake == NULL || sl == NULL)
    die("out of memory");
  for (i = 0; i < s->nmsg && n < QUIET_CYCLES; i++) {
    const uint8_t *msg = s->frames + s->msg_off[i];

    c0 = cpu_seconds();
    if (dgw_decomp_push(awake, msg, s->msg_len[i], &out, &out_len) != DGW_OK)
      die("the stream does not inflate");
    plain += cpu_seconds() - c0;
    c0 = cpu_seconds();
    if (dgw_decomp_push(z, msg, s->msg_len[i], &out, &out_len) != DGW_OK)
      die("the stream does not inflate after a sleep");
    if (i >= 2)
      wake += cpu_seconds() - c0;
    c0 = cpu_seconds();
    if (dgw_decomp_sleep(z, sl) != DGW_OK)
      die("the stream does not sleep");
    if (i >= 2) { /* HELLO and READY aside */
      pack += cpu_seconds() - c0;
      packed += (double)dgw_decomp_saved_bytes(z);
      n++;
    } else {
      plain = 0;
    }
  }
  if (n > 0 && (res->quiet_pack_us == 0 ||
                (pack + wake - plain) / (double)n * 1e6 <
                    res->quiet_pack_us + res->quiet_restore_us)) {
    res->quiet_pack_us = pack / (double)n * 1e6;
    res->quiet_restore_us = (wake - plain) / (double)n * 1e6;
    res->quiet_packed_kb = packed / (double)n / 1024;
  }
  dgw_decomp_free(z);
  dgw_decomp_free(awake);
  dgw_inflate_sleeper_free(sl);
}

/* The redis-streams runs, when asked for and possible (streams.c). */
static struct {
  const char *plugin; /* the built plugin, from DGW_BENCH_STREAMS_PLUGIN */
  const char *redis_url;
  pid_t redis_pid;
} streams_ctx;

static int streams_on(void) {
  return streams_ctx.plugin != NULL && streams_ctx.redis_url != NULL;
}

/* ------------------------------------------------------ the client runs */

struct run {
  struct event_base *base;
  struct dgw_client *client;
  const struct stream *stream;
  enum setup setup;
  int64_t t0;
  double c0;
  struct measure m;
  uint64_t events;
  uint64_t bytes;
  unsigned check;
  char error[200];
  /* latency */
  int64_t *lat;
  uint64_t nlat, cap_lat;
  int64_t want_seq;
  const char *cluster_url; /* non-NULL: the shard is held on a lease */
};

static void run_ready(struct dgw_gateway *gw, void *ud) {
  struct run *r = ud;

  (void)gw;
  r->t0 = now_ns();
  r->c0 = cpu_seconds();
}

static void run_dispatch(struct dgw_gateway *gw, const struct dgw_event *ev,
                         void *ud) {
  struct run *r = ud;
  size_t len;
  const char *d;

  (void)gw;
  if (dgw_event_seq(ev) < 2)
    return; /* READY */
  r->events++;
  if (r->setup == SETUP_PARSED) {
    if (dgw_event_json(ev) == NULL)
      snprintf(r->error, sizeof r->error, "event s=%lld did not parse",
               (long long)dgw_event_seq(ev));
    return;
  }
  d = dgw_event_data(ev, &len);
  r->bytes += len;
  r->check ^= (unsigned char)d[len - 1];
  if (r->setup == SETUP_FIELDS &&
      strcmp(dgw_event_name(ev), "MESSAGE_CREATE") == 0) {
    uint64_t channel, author;
    const char *content;
    size_t n;
    char buf[256];

    int rc;

    /* A long content with escapes does not fit buf: its length is read. */
    if (dgw_field_uint64(d, len, "/channel_id", &channel) != DGW_OK ||
        dgw_field_uint64(d, len, "/author/id", &author) != DGW_OK ||
        ((rc = dgw_field_string_view(d, len, "/content", buf, sizeof buf,
                                     &content, &n)) != DGW_OK &&
         rc != DGW_ERR_BUFFER_TOO_SMALL))
      snprintf(r->error, sizeof r->error,
               "MESSAGE_CREATE s=%lld: a field could not be read",
               (long long)dgw_event_seq(ev));
    else
      r->check ^= (unsigned)(channel ^ author ^ n);
  }
}

static void run_latency(struct dgw_gateway *gw, const struct dgw_event *ev,
                        void *ud) {
  int64_t now = now_ns();
  struct run *r = ud;
  size_t len;
  const char *d = dgw_event_data(ev, &len);
  static const char key[] = "{\"bench_t0\":\"";
  int64_t t0 = 0;

  (void)gw;
  if (dgw_event_seq(ev) < 2)
    return;
  if (len < sizeof key - 1 + 20 || memcmp(d, key, sizeof key - 1) != 0) {
    snprintf(r->error, sizeof r->error, "event without a stamp");
    return;
  }
  for (size_t i = 0; i < 20; i++)
    t0 = t0 * 10 + (d[sizeof key - 1 + i] - '0');
  if (r->nlat == r->cap_lat) {
    r->cap_lat = r->cap_lat ? r->cap_lat * 2 : 4096;
    r->lat = realloc(r->lat, r->cap_lat * sizeof *r->lat);
    if (r->lat == NULL)
      die("out of memory");
  }
  r->lat[r->nlat++] = now - t0;
  r->events++;
}

static void run_disconnect(struct dgw_gateway *gw,
                           const struct dgw_disconnect *info, void *ud) {
  struct run *r = ud;

  r->m.wall = (double)(now_ns() - r->t0) / 1e9;
  r->m.cpu = cpu_seconds() - r->c0;
  if (info->error != DGW_OK && r->error[0] == '\0')
    snprintf(r->error, sizeof r->error, "connection ended: %s (%s)",
             dgw_strerror(info->error), info->reason);
  else if (dgw_gateway_sequence(gw) != r->want_seq && r->error[0] == '\0')
    snprintf(r->error, sizeof r->error, "ended at s=%lld, expected s=%lld",
             (long long)dgw_gateway_sequence(gw), (long long)r->want_seq);
  r->m.ok = r->error[0] == '\0';
  dgw_client_free(r->client); /* deferred until this callback returns */
  r->client = NULL;
  event_base_loopbreak(r->base);
}

static void run_fatal(struct dgw_gateway *gw, uint16_t code,
                      const char *meaning, void *ud) {
  struct run *r = ud;

  (void)gw;
  snprintf(r->error, sizeof r->error, "fatal close %u: %s", (unsigned)code,
           meaning);
  event_base_loopbreak(r->base);
}

static void watchdog(evutil_socket_t fd, short what, void *arg) {
  struct run *r = arg;

  (void)fd;
  (void)what;
  snprintf(r->error, sizeof r->error, "no end of stream within 300 s");
  event_base_loopbreak(r->base);
}

/* Connects a fresh client to the server on `port` and runs it until the
 * stream's op 7 ends the connection. */
static void client_run(struct run *r, uint16_t port, const char *ca_file,
                       int zstd, dgw_dispatch_fn handler) {
  struct dgw_options *opt = dgw_options_new();
  struct dgw_callbacks *cb = dgw_callbacks_new();
  struct timeval tv = {300, 0};
  struct event *dog;
  char url[64];
  int err = 0;

  snprintf(url, sizeof url, "%s://127.0.0.1:%u", ca_file ? "wss" : "ws",
           (unsigned)port);
  r->base = event_base_new();
  if (r->base == NULL || opt == NULL || cb == NULL ||
      dgw_options_set_token(opt, "bench-token") != DGW_OK ||
      dgw_options_set_gateway_url(opt, url) != DGW_OK ||
      (ca_file != NULL && dgw_options_set_ca_file(opt, ca_file) != DGW_OK) ||
      (zstd && dgw_options_set_compression(opt, "zstd-stream") != DGW_OK))
    die("cannot configure the client");
  if (r->cluster_url != NULL) {
    static unsigned runs;
    char name[32];

    /* A cluster of its own per run: no lease of an earlier run's member
     * (freed without a word, as at a crash) to wait for. */
    snprintf(name, sizeof name, "bench%u", ++runs);
    if (dgw_options_set_shards(opt, 0, 1, 1) != DGW_OK ||
        dgw_options_set_cluster(opt, r->cluster_url, name, CLUSTER_LEASE_MS) !=
            DGW_OK)
      die("cannot configure the cluster");
  }
  dgw_callbacks_set_on_ready(cb, run_ready);
  dgw_callbacks_set_on_disconnect(cb, run_disconnect);
  dgw_callbacks_set_on_fatal(cb, run_fatal);
  if (handler != NULL)
    dgw_callbacks_set_on_dispatch(cb, handler);
  r->client = dgw_client_new(r->base, opt, cb, r, &err);
  dgw_options_free(opt);
  dgw_callbacks_free(cb);
  if (r->client == NULL)
    die("dgw_client_new: %s", dgw_strerror(err));
  dog = evtimer_new(r->base, watchdog, r);
  evtimer_add(dog, &tv);
  dgw_client_start(r->client);
  event_base_dispatch(r->base);
  event_free(dog);
  dgw_client_free(r->client);
  event_base_free(r->base);
  if (r->error[0] != '\0') {
    fprintf(stderr, "dgw-bench: run failed: %s\n", r->error);
    r->m.ok = 0;
  }
}

/* One client run per selected setup against the server on `port`. */
static void throughput_round(const struct options *o, const struct stream *s,
                             int tls, uint16_t port, const char *ca,
                             struct measure run[NSETUPS],
                             const char *cluster_url,
                             struct measure *cluster_on,
                             struct streams_measure *streams_best) {
  static const dgw_dispatch_fn handlers[NSETUPS] = {NULL, run_dispatch,
                                                    run_dispatch, run_dispatch};

  for (int k = 0; k < NSETUPS; k++) {
    struct run r;

    if (!o->setups[k])
      continue;
    memset(&r, 0, sizeof r);
    r.stream = s;
    r.setup = (enum setup)k;
    r.want_seq = s->last_seq;
    client_run(&r, port, tls ? ca : NULL, s->zstd, handlers[k]);
    if (r.m.ok && k != SETUP_NONE && r.events != s->events) {
      fprintf(stderr, "dgw-bench: %llu events delivered, %llu sent\n",
              (unsigned long long)r.events, (unsigned long long)s->events);
      r.m.ok = 0;
    }
    keep_best(&run[k], &r.m);
    if (k == SETUP_RAW && cluster_url != NULL) {
      /* The same firehose with the shard held on a lease, right after the
       * run without: the fence's clock read per event, the tick's Redis
       * writes (the seq once a second) against nothing. */
      memset(&r, 0, sizeof r);
      r.stream = s;
      r.setup = SETUP_RAW;
      r.want_seq = s->last_seq;
      r.cluster_url = cluster_url;
      client_run(&r, port, tls ? ca : NULL, s->zstd, run_dispatch);
      if (r.m.ok && r.events != s->events)
        r.m.ok = 0;
      keep_best(cluster_on, &r.m);
    }
    if (k == SETUP_RAW && !tls && !s->zstd && streams_on()) {
      /* The same firehose through the redis-streams plugin, no handler:
       * READY to the last seq stored in the stream. */
      struct streams_measure sm;

      streams_throughput(s, port, streams_ctx.plugin, streams_ctx.redis_url,
                         streams_ctx.redis_pid, &sm);
      if (sm.m.ok && (!streams_best->m.ok || sm.m.wall < streams_best->m.wall))
        *streams_best = sm;
      else if (!streams_best->m.ok && streams_best->error[0] == '\0')
        snprintf(streams_best->error, sizeof streams_best->error, "%s",
                 sm.error);
    }
  }
}

/*
 * The limits and the client runs, interleaved: each round measures every
 * one of them once, so a noisy minute on a shared machine hurts the
 * limits and the runs alike, and the best of the rounds is kept.
 */
static void rounds(const struct options *o, const struct stream *s,
                   const struct stream *sz, const char *cert, const char *key,
                   const char *ca, const char *cluster_url,
                   struct results *res) {
  struct server_config cfg;
  uint16_t port[2][2] = {{0, 0}, {0, 0}}; /* [zstd][tls] */
  pid_t pid[2][2] = {{0, 0}, {0, 0}};
  char what[64];

  memset(&cfg, 0, sizeof cfg);
  cfg.mode = SERVER_BLAST;
  for (int k = 0; k < NSETUPS; k++)
    cfg.connections += o->setups[k] ? o->repeat : 0;
  for (int z = 0; o->do_throughput && z <= (sz != NULL); z++)
    for (int t = 0; t <= res->have_tls; t++) {
      cfg.stream = z ? sz : s;
      cfg.cert_file = t ? cert : NULL;
      cfg.key_file = t ? key : NULL;
      if (z == 0 && t == 0 && (cluster_url != NULL || streams_on())) {
        unsigned more = (cluster_url != NULL ? o->repeat : 0) +
                        (streams_on() && o->setups[SETUP_RAW] ? o->repeat : 0);

        cfg.connections += more; /* the cluster-on and streams runs */
        pid[z][t] = server_start(&cfg, &port[z][t]);
        cfg.connections -= more;
      } else {
        pid[z][t] = server_start(&cfg, &port[z][t]);
      }
    }
  for (unsigned rep = 0; rep < o->repeat; rep++) {
    snprintf(what, sizeof what, "round %u of %u", rep + 1, o->repeat);
    progress(what);
    if (o->do_limits) {
      struct measure a = limit_run(s, LIMIT_INFLATE);
      struct measure b = limit_run(s, LIMIT_PEEK);
      struct measure c = limit_run(s, LIMIT_PARSE);

      keep_best(&res->limit_inflate, &a);
      keep_best(&res->limit_peek, &b);
      keep_best(&res->limit_parse, &c);
      quiet_run(s, res);
      if (sz != NULL) {
        struct measure d = limit_run(sz, LIMIT_INFLATE);

        keep_best(&res->limit_zstd, &d);
      }
    }
    for (int t = 0; o->do_throughput && t <= res->have_tls; t++) {
      throughput_round(o, s, t, port[0][t], ca, res->run[t],
                       t == 0 ? cluster_url : NULL, &res->cluster_on,
                       &res->streams);
      if (sz != NULL) /* the same stream of JSON, zstd-stream: side by side */
        throughput_round(o, sz, t, port[1][t], ca, res->runz[t], NULL, NULL,
                         NULL);
    }
  }
  for (int z = 0; o->do_throughput && z <= (sz != NULL); z++)
    for (int t = 0; t <= res->have_tls; t++)
      child_wait(pid[z][t], "the bench server");
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

  return (x > y) - (x < y);
}

/* Nanoseconds this thread has waited on a run queue (schedstat's second
 * field), or -1 when the kernel does not say. */
static int64_t run_delay_ns(void) {
  FILE *f = fopen("/proc/self/schedstat", "r");
  long long run = 0, wait = -1;

  if (f != NULL) {
    if (fscanf(f, "%lld %lld", &run, &wait) != 2)
      wait = -1;
    fclose(f);
  }
  return wait;
}

static long preemptions(void) {
  struct rusage ru;

  return getrusage(RUSAGE_SELF, &ru) == 0 ? ru.ru_nivcsw : 0;
}

static void latency(const struct options *o, int tls, int zstd,
                    const char *cert, const char *key, const char *ca,
                    struct latency *out) {
  struct server_config cfg;
  struct run r;
  uint16_t port;
  pid_t pid;
  int64_t wait0;
  long pre0;

  memset(&cfg, 0, sizeof cfg);
  cfg.mode = SERVER_PACED;
  cfg.cert_file = tls ? cert : NULL;
  cfg.key_file = tls ? key : NULL;
  cfg.connections = 1;
  cfg.rate = o->latency_rate;
  cfg.paced_events = (uint64_t)(o->latency_rate * o->latency_seconds);
  cfg.seed = o->seed + 1;
  cfg.zstd = zstd;
  pid = server_start(&cfg, &port);
  memset(&r, 0, sizeof r);
  r.want_seq = (int64_t)cfg.paced_events + 1;
  wait0 = run_delay_ns();
  pre0 = preemptions();
  client_run(&r, port, tls ? ca : NULL, zstd, run_latency);
  child_wait(pid, "the paced server");
  memset(out, 0, sizeof *out);
  out->run_delay_ms = wait0 < 0 ? -1 : (double)(run_delay_ns() - wait0) / 1e6;
  out->preempted = preemptions() - pre0;
  if (r.m.ok && r.nlat > 0) {
    qsort(r.lat, r.nlat, sizeof *r.lat, cmp_i64);
    out->ok = 1;
    out->events = r.nlat;
    out->p50_us = (double)r.lat[r.nlat / 2] / 1e3;
    out->p99_us = (double)r.lat[(r.nlat * 99) / 100] / 1e3;
    out->max_us = (double)r.lat[r.nlat - 1] / 1e3;
  }
  free(r.lat);
}

/* ---------------------------------------------------------------- TLS */

static int run_quiet(const char *const argv[]) {
  pid_t pid = fork();
  int status = 0;

  if (pid == 0) {
    int null = open("/dev/null", O_WRONLY);

    if (null >= 0) {
      dup2(null, STDOUT_FILENO);
      dup2(null, STDERR_FILENO);
    }
    execvp(argv[0], (char *const *)(uintptr_t)argv);
    _exit(127);
  }
  if (pid < 0 || waitpid(pid, &status, 0) < 0)
    return -1;
  return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

/* A test CA and a leaf for 127.0.0.1 signed by it, as tests/gen-certs.sh
 * makes them, in a fresh directory. */
static int make_certs(const char *openssl, const char *dir) {
  char cakey[512], ca[512], key[512], csr[512], cert[512], ext[512];
  FILE *f;

  snprintf(cakey, sizeof cakey, "%s/ca.key", dir);
  snprintf(ca, sizeof ca, "%s/ca.pem", dir);
  snprintf(key, sizeof key, "%s/localhost.key", dir);
  snprintf(csr, sizeof csr, "%s/localhost.csr", dir);
  snprintf(cert, sizeof cert, "%s/localhost.pem", dir);
  snprintf(ext, sizeof ext, "%s/localhost.ext", dir);
  {
    const char *const a[] = {openssl,
                             "req",
                             "-x509",
                             "-newkey",
                             "ec",
                             "-pkeyopt",
                             "ec_paramgen_curve:P-256",
                             "-nodes",
                             "-keyout",
                             cakey,
                             "-out",
                             ca,
                             "-days",
                             "2",
                             "-subj",
                             "/CN=dgw bench CA",
                             "-addext",
                             "basicConstraints=critical,CA:TRUE",
                             "-addext",
                             "keyUsage=critical,keyCertSign",
                             NULL};
    if (run_quiet(a) != 0)
      return -1;
  }
  {
    const char *const a[] = {openssl,
                             "req",
                             "-newkey",
                             "ec",
                             "-pkeyopt",
                             "ec_paramgen_curve:P-256",
                             "-nodes",
                             "-keyout",
                             key,
                             "-out",
                             csr,
                             "-subj",
                             "/CN=localhost",
                             NULL};
    if (run_quiet(a) != 0)
      return -1;
  }
  f = fopen(ext, "w");
  if (f == NULL)
    return -1;
  fputs("subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:"
        "FALSE\nextendedKeyUsage=serverAuth\n",
        f);
  fclose(f);
  {
    const char *const a[] = {
        openssl, "x509", "-req",   "-in", csr,
        "-CA",   ca,     "-CAkey", cakey, "-CAcreateserial",
        "-out",  cert,   "-days",  "2",   "-extfile",
        ext,     NULL};
    if (run_quiet(a) != 0)
      return -1;
  }
  return 0;
}

static void remove_dir(const char *dir) {
  static const char *const names[] = {
      "ca.key",        "ca.pem",        "ca.srl",        "localhost.key",
      "localhost.csr", "localhost.pem", "localhost.ext",
  };
  char path[512];

  for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* ---------------------------------------------------------------- main */

/* Lets the user see progress on a long run, on stderr. */
static void progress(const char *what) {
  /* The monotonic stamp lines a phase up with `perf record -k mono`. */
  fprintf(stderr, "dgw-bench: [%.6f] %s...\n", (double)now_ns() / 1e9, what);
}

int main(int argc, char **argv) {
  struct options o;
  struct machine mc;
  struct results *res = calloc(1, sizeof *res);
  struct stream s, sz;
  struct rlimit rl;
  char dir[] = "/tmp/dgw-bench.XXXXXX";
  char cert[600], key[600], ca[600];
  const char *cluster_url = NULL;
  int want_cluster, want_streams;
  int64_t t0;
#ifdef HAVE_HIREDIS
  struct redis_server *rs = NULL;
#endif

  if (res == NULL)
    die("out of memory");
  bench_parse_args(&o, argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  bench_machine_info(&mc);
  if (o.tls) {
    if (mkdtemp(dir) == NULL)
      die("mkdtemp: %s", strerror(errno));
    snprintf(cert, sizeof cert, "%s/localhost.pem", dir);
    snprintf(key, sizeof key, "%s/localhost.key", dir);
    snprintf(ca, sizeof ca, "%s/ca.pem", dir);
    if (make_certs(o.openssl, dir) == 0) {
      res->have_tls = 1;
    } else {
      fprintf(stderr,
              "dgw-bench: cannot make certificates with %s; "
              "skipping TLS\n",
              o.openssl);
      remove_dir(dir);
    }
  }

  /* Shards first, while this process is small: each fleet runs in a
   * child forked from here. */
  if (o.do_shards) {
    char quiet[16];

    snprintf(quiet, sizeof quiet, "%u", (unsigned)o.quiet_ms);
    setenv("DGW_BENCH_QUIET_MS", quiet, 1);
    for (int t = 0; t <= res->have_tls; t++) {
      progress(t ? "shards, TLS" : "shards, plain");
      shards_run(o.shards, t ? cert : NULL, t ? key : NULL, t ? ca : NULL,
                 o.heartbeat_ms, o.idle_seconds, NULL, &res->shards[t]);
    }
    /* Beside it, the same TLS fleet with quiet shards off: what packing
     * the windows saves, in one run. */
    if (o.quiet_ms > 0 && res->have_tls) {
      progress("shards, TLS, quiet sleep off");
      setenv("DGW_BENCH_QUIET_MS", "0", 1);
      shards_run(o.shards, cert, key, ca, o.heartbeat_ms, o.idle_seconds, NULL,
                 &res->shards_awake);
    }
    unsetenv("DGW_BENCH_QUIET_MS");
    /* The same fleets on zstd-stream: what an idle shard holds with each
     * (the zstd window against zlib's 32 KiB). */
    for (int t = 0; o.zstd && t <= res->have_tls; t++) {
      progress(t ? "shards, TLS, zstd" : "shards, plain, zstd");
      setenv("DGW_BENCH_COMPRESSION", "zstd-stream", 1);
      shards_run(o.shards, t ? cert : NULL, t ? key : NULL, t ? ca : NULL,
                 o.heartbeat_ms, o.idle_seconds, NULL, &res->shardsz[t]);
      unsetenv("DGW_BENCH_COMPRESSION");
    }
  }

  /* Lazy connect: one identify bucket, a short window; TLS (what an idle
   * connection costs most), lazy connect on, then off. */
  if (o.do_lazy) {
    for (int on = 1; on >= 0; on--) {
      struct shard_plan plan = {1, o.lazy_window_ms, on, o.lazy_lead_ms};
      int t = res->have_tls;

      progress(on ? "lazy connect on" : "lazy connect off");
      shards_run(o.lazy_shards, t ? cert : NULL, t ? key : NULL, t ? ca : NULL,
                 o.heartbeat_ms, o.idle_seconds, &plan, &res->lazy[on]);
    }
  }

  progress("building the corpus");
  t0 = now_ns();
  stream_build(&s, o.seed, o.events, o.large, o.large_members, 0);
  res->build_seconds = (double)(now_ns() - t0) / 1e9;
  memset(&sz, 0, sizeof sz);
  if (o.zstd && (o.do_limits || o.do_throughput)) {
    progress("building the zstd-stream corpus");
    stream_build(&sz, o.seed, o.events, o.large, o.large_members, 1);
    res->zstream = &sz;
  }

  want_cluster =
      o.cluster && (o.do_shards || (o.do_throughput && o.setups[SETUP_RAW]));
  want_streams =
      o.streams && ((o.do_throughput && o.setups[SETUP_RAW]) || o.do_latency);
  if (want_cluster || want_streams) {
#ifdef HAVE_HIREDIS
    progress("starting a private redis-server for the cluster and streams");
    rs = redis_server_start(NULL); /* killed at exit on every path */
    if (rs == NULL) {
      snprintf(res->cluster_note, sizeof res->cluster_note,
               "redis-server could not be started (see above)");
      snprintf(res->streams_note, sizeof res->streams_note,
               "redis-server could not be started (see above)");
    } else {
      if (want_cluster)
        cluster_url = redis_server_url(rs);
      if (want_streams) {
        streams_ctx.redis_url = redis_server_url(rs);
        streams_ctx.redis_pid = redis_server_pid(rs);
        streams_ctx.plugin = getenv("DGW_BENCH_STREAMS_PLUGIN");
        if (streams_ctx.plugin == NULL ||
            access(streams_ctx.plugin, R_OK) != 0) {
          snprintf(res->streams_note, sizeof res->streams_note,
                   "no plugin at DGW_BENCH_STREAMS_PLUGIN (make bench sets "
                   "it)");
          streams_ctx.plugin = NULL;
        }
      }
    }
#else
    snprintf(res->cluster_note, sizeof res->cluster_note,
             "built without hiredis (no cluster)");
    snprintf(res->streams_note, sizeof res->streams_note,
             "built without hiredis (no redis-streams)");
#endif
  }
  if (o.do_limits || o.do_throughput)
    rounds(&o, &s, res->zstream, cert, key, ca, cluster_url, res);
  if (o.do_shards && cluster_url != NULL) {
    progress("cluster failover (kill -9 of one of two members)");
    failover_run(cluster_url, CLUSTER_FAILOVER_LEASE_MS, &res->failover);
  }
  if (o.do_latency) {
    for (int z = 0; z <= o.zstd; z++)
      for (int t = 0; t <= res->have_tls; t++) {
        progress(t ? (z ? "latency, TLS, zstd" : "latency, TLS")
                   : (z ? "latency, plain, zstd" : "latency, plain"));
        latency(&o, t, z, cert, key, ca, z ? &res->latz[t] : &res->lat[t]);
      }
    if (streams_on()) {
      progress("latency, plain, through redis-streams to a worker");
      streams_latency(o.latency_rate, o.latency_seconds, o.seed + 1,
                      streams_ctx.plugin, streams_ctx.redis_url,
                      &res->streams_lat);
    }
  }
#ifdef HAVE_HIREDIS
  redis_server_free(rs);
#endif
  if (res->have_tls)
    remove_dir(dir);
  bench_report(&o, &mc, &s, res);
  stream_free(&s);
  stream_free(&sz);
  free(res);
  return 0;
}
