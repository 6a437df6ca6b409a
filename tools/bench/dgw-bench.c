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
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>

#include <event2/event.h>
#include <json-c/json.h>

#include <dgw/dgw.h>

#include "bench.h"
#include "inflate.h"
#include "payload.h"

enum setup { SETUP_NONE, SETUP_RAW, SETUP_PARSED, NSETUPS };
static const char *const setup_name[NSETUPS] = {"no subscriber", "raw d",
                                                "parsed d"};
static const char *const setup_key[NSETUPS] = {"none", "raw", "parsed"};

struct options {
  uint64_t events;
  uint64_t seed;
  unsigned repeat;
  unsigned large;
  unsigned large_members;
  uint32_t shards;
  uint32_t heartbeat_ms;
  double idle_seconds;
  double latency_rate;
  double latency_seconds;
  int json;
  const char *json_file;
  int tls;
  int do_limits, do_throughput, do_latency, do_shards;
  int setups[NSETUPS]; /* which handler setups the throughput part runs */
  const char *openssl;
};

static void progress(const char *what);

/* ------------------------------------------------------------ results */

struct measure {
  int ok;
  double wall; /* seconds */
  double cpu;  /* seconds of this process */
};

struct latency {
  int ok;
  uint64_t events;
  double p50_us, p99_us, max_us;
};

struct results {
  struct measure limit_inflate, limit_peek, limit_parse;
  struct measure run[2][NSETUPS]; /* [tls][setup] */
  struct latency lat[2];
  struct shard_result shards[2];
  int have_tls;
  double build_seconds;
};

/* Keeps the better of two measurements (less wall time). */
static void keep_best(struct measure *best, const struct measure *m) {
  if (m->ok && (!best->ok || m->wall < best->wall))
    *best = *m;
}

/* ---------------------------------------------------------- the limits */

enum limit { LIMIT_INFLATE, LIMIT_PEEK, LIMIT_PARSE };

static struct measure limit_run(const struct stream *s, enum limit what) {
  struct measure m = {0};
  struct dgw_inflate *z = dgw_inflate_new(0, NULL);
  const char *out;
  size_t out_len;
  int64_t t0;
  double c0;

  if (z == NULL)
    die("dgw_inflate_new failed");
  for (size_t i = 0; i < 2; i++) /* HELLO and READY, untimed */
    if (dgw_inflate_push(z, s->frames + s->msg_off[i], s->msg_len[i], &out,
                         &out_len) != DGW_OK)
      die("the stream does not inflate");
  t0 = now_ns();
  c0 = cpu_seconds();
  for (size_t i = 2; i < s->nmsg; i++) {
    if (dgw_inflate_push(z, s->frames + s->msg_off[i], s->msg_len[i], &out,
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
  dgw_inflate_free(z);
  return m;
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
                       dgw_dispatch_fn handler) {
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
      (ca_file != NULL && dgw_options_set_ca_file(opt, ca_file) != DGW_OK))
    die("cannot configure the client");
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
                             struct results *res) {
  static const dgw_dispatch_fn handlers[NSETUPS] = {NULL, run_dispatch,
                                                    run_dispatch};

  for (int k = 0; k < NSETUPS; k++) {
    struct run r;

    if (!o->setups[k])
      continue;
    memset(&r, 0, sizeof r);
    r.stream = s;
    r.setup = (enum setup)k;
    r.want_seq = s->last_seq;
    client_run(&r, port, tls ? ca : NULL, handlers[k]);
    if (r.m.ok && k != SETUP_NONE && r.events != s->events) {
      fprintf(stderr, "dgw-bench: %llu events delivered, %llu sent\n",
              (unsigned long long)r.events, (unsigned long long)s->events);
      r.m.ok = 0;
    }
    keep_best(&res->run[tls][k], &r.m);
  }
}

/*
 * The limits and the client runs, interleaved: each round measures every
 * one of them once, so a noisy minute on a shared machine hurts the
 * limits and the runs alike, and the best of the rounds is kept.
 */
static void rounds(const struct options *o, const struct stream *s,
                   const char *cert, const char *key, const char *ca,
                   struct results *res) {
  struct server_config cfg;
  uint16_t port[2] = {0, 0};
  pid_t pid[2] = {0, 0};
  char what[64];

  memset(&cfg, 0, sizeof cfg);
  cfg.mode = SERVER_BLAST;
  cfg.stream = s;
  for (int k = 0; k < NSETUPS; k++)
    cfg.connections += o->setups[k] ? o->repeat : 0;
  for (int t = 0; o->do_throughput && t <= res->have_tls; t++) {
    cfg.cert_file = t ? cert : NULL;
    cfg.key_file = t ? key : NULL;
    pid[t] = server_start(&cfg, &port[t]);
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
    }
    for (int t = 0; o->do_throughput && t <= res->have_tls; t++)
      throughput_round(o, s, t, port[t], ca, res);
  }
  for (int t = 0; o->do_throughput && t <= res->have_tls; t++)
    child_wait(pid[t], "the bench server");
}

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

  return (x > y) - (x < y);
}

static void latency(const struct options *o, int tls, const char *cert,
                    const char *key, const char *ca, struct latency *out) {
  struct server_config cfg;
  struct run r;
  uint16_t port;
  pid_t pid;

  memset(&cfg, 0, sizeof cfg);
  cfg.mode = SERVER_PACED;
  cfg.cert_file = tls ? cert : NULL;
  cfg.key_file = tls ? key : NULL;
  cfg.connections = 1;
  cfg.rate = o->latency_rate;
  cfg.paced_events = (uint64_t)(o->latency_rate * o->latency_seconds);
  cfg.seed = o->seed + 1;
  pid = server_start(&cfg, &port);
  memset(&r, 0, sizeof r);
  r.want_seq = (int64_t)cfg.paced_events + 1;
  client_run(&r, port, tls ? ca : NULL, run_latency);
  child_wait(pid, "the paced server");
  memset(out, 0, sizeof *out);
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

/* ------------------------------------------------------------ machine */

struct machine {
  long cpus;
  char model[128];
  long mem_mb;
  char kernel[160];
};

static void machine_info(struct machine *m) {
  char line[512];
  FILE *f;
  struct utsname u;

  memset(m, 0, sizeof *m);
  m->cpus = sysconf(_SC_NPROCESSORS_ONLN);
  snprintf(m->model, sizeof m->model, "unknown CPU");
  if ((f = fopen("/proc/cpuinfo", "r")) != NULL) {
    while (fgets(line, sizeof line, f) != NULL) {
      char *colon = strchr(line, ':');

      if (strncmp(line, "model name", 10) == 0 && colon != NULL) {
        colon += 2;
        colon[strcspn(colon, "\n")] = '\0';
        snprintf(m->model, sizeof m->model, "%s", colon);
        break;
      }
    }
    fclose(f);
  }
  if ((f = fopen("/proc/meminfo", "r")) != NULL) {
    long kb;

    while (fgets(line, sizeof line, f) != NULL)
      if (sscanf(line, "MemTotal: %ld kB", &kb) == 1)
        m->mem_mb = kb / 1024;
    fclose(f);
  }
  if (uname(&u) == 0)
    snprintf(m->kernel, sizeof m->kernel, "%s %s", u.sysname, u.release);
}

/* ------------------------------------------------------------- report */

static double per_s(double n, double seconds) {
  return seconds > 0 ? n / seconds : 0;
}

static void json_add_double(struct json_object *o, const char *k, double v) {
  json_object_object_add(o, k, json_object_new_double(v));
}

static void json_add_int(struct json_object *o, const char *k, int64_t v) {
  json_object_object_add(o, k, json_object_new_int64(v));
}

static struct json_object *measure_json(const struct measure *m,
                                        const struct stream *s,
                                        const struct measure *limit,
                                        double aim) {
  struct json_object *o = json_object_new_object();

  json_object_object_add(o, "ok", json_object_new_boolean(m->ok));
  if (!m->ok)
    return o;
  json_add_double(o, "wall_s", m->wall);
  json_add_double(o, "cpu_s", m->cpu);
  json_add_double(o, "events_per_s", per_s((double)s->events, m->wall));
  json_add_double(o, "mb_per_s",
                  per_s((double)s->timed_raw_bytes / 1e6, m->wall));
  json_add_double(o, "cpu_s_per_million_events",
                  m->cpu / (double)s->events * 1e6);
  if (limit != NULL && limit->ok) {
    json_add_double(o, "x_limit_wall", m->wall / limit->wall);
    json_add_double(o, "x_limit_cpu", m->cpu / limit->cpu);
    json_add_double(o, "aim", aim);
    json_object_object_add(o, "aim_met",
                           json_object_new_boolean(m->cpu / limit->cpu <= aim));
  }
  return o;
}

static void print_measure(const char *label, const struct measure *m,
                          const struct stream *s, const struct measure *limit,
                          double aim) {
  if (!m->ok) {
    printf("  %-30s %s\n", label, "failed");
    return;
  }
  printf("  %-30s %10.0f %8.1f %11.3f", label,
         per_s((double)s->events, m->wall),
         per_s((double)s->timed_raw_bytes / 1e6, m->wall),
         m->cpu / (double)s->events * 1e6);
  /* The aim is judged on CPU time: on a shared machine the wall clock
   * also counts the moments another process held the core. */
  if (limit != NULL && limit->ok)
    printf(" %6.2fx %6.2fx %5.1fx %s", m->wall / limit->wall,
           m->cpu / limit->cpu, aim,
           m->cpu / limit->cpu <= aim ? "met" : "NOT met");
  printf("\n");
}

static void report(const struct options *o, const struct machine *mc,
                   const struct stream *s, const struct results *res) {
  static const char *const tname[2] = {"plain", "tls"};
  static const double aim[NSETUPS] = {1.5, 1.5, 1.3};
  struct json_object *root = json_object_new_object();
  struct json_object *jm = json_object_new_object();
  struct json_object *jc = json_object_new_object();
  char label[64];

  json_object_object_add(jm, "cpus", json_object_new_int64(mc->cpus));
  json_object_object_add(jm, "cpu_model", json_object_new_string(mc->model));
  json_add_int(jm, "mem_mb", mc->mem_mb);
  json_object_object_add(jm, "kernel", json_object_new_string(mc->kernel));
  json_object_object_add(root, "machine", jm);
  json_object_object_add(root, "dgw_version",
                         json_object_new_string(dgw_version()));
  json_add_int(jc, "seed", (int64_t)o->seed);
  json_add_int(jc, "events", (int64_t)s->events);
  json_add_int(jc, "guild_creates", (int64_t)s->large_events);
  json_add_int(jc, "decompressed_bytes", (int64_t)s->timed_raw_bytes);
  json_add_int(jc, "compressed_bytes", (int64_t)s->timed_zbytes);
  json_add_int(jc, "repeat", o->repeat);
  {
    struct json_object *mix = json_object_new_object();

    for (unsigned k = 0; corpus_kind_name(k) != NULL; k++)
      json_add_int(mix, corpus_kind_name(k), (int64_t)s->count_by_kind[k]);
    json_object_object_add(jc, "mix", mix);
  }
  json_object_object_add(root, "corpus", jc);

  if (!o->json) {
    printf("dgw-bench %s: %s, %ld CPUs, %ld MiB, %s\n", dgw_version(),
           mc->model, mc->cpus, mc->mem_mb, mc->kernel);
    printf("corpus: %llu dispatches (seed %llu, %llu GUILD_CREATE), "
           "%.1f MB of JSON in %.1f MB of zlib-stream (%.1f:1); best of %u\n",
           (unsigned long long)s->events, (unsigned long long)o->seed,
           (unsigned long long)s->large_events,
           (double)s->timed_raw_bytes / 1e6, (double)s->timed_zbytes / 1e6,
           (double)s->timed_raw_bytes /
               (double)(s->timed_zbytes ? s->timed_zbytes : 1),
           o->repeat);
  }
  if (o->do_limits) {
    struct json_object *jl = json_object_new_object();

    json_object_object_add(jl, "inflate",
                           measure_json(&res->limit_inflate, s, NULL, 0));
    json_object_object_add(jl, "inflate_peek",
                           measure_json(&res->limit_peek, s, NULL, 0));
    json_object_object_add(jl, "inflate_parse",
                           measure_json(&res->limit_parse, s, NULL, 0));
    json_object_object_add(root, "limits", jl);
    if (!o->json) {
      printf("\n%-32s %10s %8s %11s\n", "limits (no I/O, one core)", "events/s",
             "MB/s", "CPU s/M ev");
      print_measure("inflate only", &res->limit_inflate, s, NULL, 0);
      print_measure("inflate + envelope peek", &res->limit_peek, s, NULL, 0);
      print_measure("inflate + json_tokener_parse", &res->limit_parse, s, NULL,
                    0);
    }
  }
  if (o->do_throughput) {
    struct json_object *jt = json_object_new_object();

    if (!o->json)
      printf("\n%-32s %10s %8s %11s %7s %7s %6s\n",
             "throughput (loopback, zlib)", "events/s", "MB/s", "CPU s/M ev",
             "x limit", "x (CPU)", "aim");
    for (int t = 0; t <= res->have_tls; t++) {
      struct json_object *jtt = json_object_new_object();

      for (int k = 0; k < NSETUPS; k++) {
        const struct measure *lim =
            k == SETUP_PARSED ? &res->limit_parse : &res->limit_inflate;

        if (!o->setups[k])
          continue;
        json_object_object_add(jtt, setup_key[k],
                               measure_json(&res->run[t][k], s, lim, aim[k]));
        if (!o->json) {
          snprintf(label, sizeof label, "%-5s %s", tname[t], setup_name[k]);
          print_measure(label, &res->run[t][k], s, lim, aim[k]);
        }
      }
      json_object_object_add(jt, tname[t], jtt);
    }
    json_object_object_add(root, "throughput", jt);
  }
  if (o->do_latency) {
    struct json_object *jl = json_object_new_object();

    json_add_double(jl, "rate", o->latency_rate);
    if (!o->json)
      printf("\n%-32s %10s %8s %8s %8s\n", "latency (send to handler, raw d)",
             "events", "p50 us", "p99 us", "max us");
    for (int t = 0; t <= res->have_tls; t++) {
      const struct latency *l = &res->lat[t];
      struct json_object *jx = json_object_new_object();

      json_object_object_add(jx, "ok", json_object_new_boolean(l->ok));
      if (l->ok) {
        json_add_int(jx, "events", (int64_t)l->events);
        json_add_double(jx, "p50_us", l->p50_us);
        json_add_double(jx, "p99_us", l->p99_us);
        json_add_double(jx, "max_us", l->max_us);
      }
      json_object_object_add(jl, tname[t], jx);
      if (!o->json) {
        snprintf(label, sizeof label, "%-5s %.0f ev/s", tname[t],
                 o->latency_rate);
        if (l->ok)
          printf("  %-30s %10llu %8.1f %8.1f %8.1f\n", label,
                 (unsigned long long)l->events, l->p50_us, l->p99_us,
                 l->max_us);
        else
          printf("  %-30s failed\n", label);
      }
    }
    json_object_object_add(root, "latency", jl);
  }
  if (o->do_shards) {
    struct json_object *js = json_object_new_object();

    json_add_int(js, "shards", o->shards);
    json_add_int(js, "heartbeat_ms", o->heartbeat_ms);
    if (!o->json) {
      snprintf(label, sizeof label, "shards (%u idle, beat %u ms)",
               (unsigned)o->shards, (unsigned)o->heartbeat_ms);
      printf("\n%-32s %6s %8s %8s %9s %7s %8s %8s %7s %4s\n", label, "up s",
             "RSS1 MiB", "peak MiB", "KiB/shard", "trimmed", "heap KiB",
             "idle CPU", "us/beat", "lost");
    }
    for (int t = 0; t <= res->have_tls; t++) {
      const struct shard_result *r = &res->shards[t];
      struct json_object *jx = json_object_new_object();

      json_object_object_add(jx, "ok", json_object_new_boolean(r->ok));
      if (r->ok) {
        json_add_double(jx, "up_s", r->up_seconds);
        json_add_int(jx, "rss_first_kb", r->rss_first_kb);
        json_add_int(jx, "rss_all_kb", r->rss_all_kb);
        json_add_int(jx, "rss_peak_kb", r->rss_peak_kb);
        json_add_double(jx, "rss_kb_per_shard", r->rss_per_shard);
        json_add_int(jx, "rss_trimmed_kb", r->rss_trimmed_kb);
        json_add_double(jx, "rss_trimmed_kb_per_shard",
                        r->rss_trimmed_per_shard);
        json_add_double(jx, "heap_kb_per_shard", r->heap_per_shard);
        json_add_double(jx, "idle_cpu_s_per_s", r->idle_cpu);
        json_add_double(jx, "cpu_us_per_heartbeat",
                        r->idle_cpu * 1e6 * o->heartbeat_ms / 1e3 /
                            (double)o->shards);
        json_add_double(jx, "idle_window_s", r->idle_seconds);
        json_add_int(jx, "shards_with_acked_heartbeat", (int64_t)r->heartbeats);
        json_add_int(jx, "disconnects", (int64_t)r->disconnects);
        if (r->disconnects > 0)
          json_object_object_add(jx, "first_disconnect",
                                 json_object_new_string(r->error));
      } else {
        json_object_object_add(jx, "error", json_object_new_string(r->error));
      }
      json_object_object_add(js, tname[t], jx);
      if (!o->json) {
        snprintf(label, sizeof label, "%s", tname[t]);
        if (r->ok) {
          printf("  %-30s %6.2f %8.1f %8.1f %9.1f %7.1f %8.1f %7.2f%% %7.0f "
                 "%4llu\n",
                 label, r->up_seconds, (double)r->rss_first_kb / 1024,
                 (double)r->rss_peak_kb / 1024, r->rss_per_shard,
                 r->rss_trimmed_per_shard, r->heap_per_shard, r->idle_cpu * 100,
                 r->idle_cpu * 1e6 * o->heartbeat_ms / 1e3 / (double)o->shards,
                 (unsigned long long)r->disconnects);
          if (r->disconnects > 0)
            printf("    (first connection lost: %s)\n", r->error);
        } else
          printf("  %-30s failed: %s\n", label, r->error);
      }
    }
    json_object_object_add(root, "shards", js);
  }
  if (o->json)
    printf("%s\n",
           json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
  if (o->json_file != NULL) {
    FILE *f = fopen(o->json_file, "w");

    if (f == NULL)
      die("cannot write %s: %s", o->json_file, strerror(errno));
    fprintf(f, "%s\n",
            json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY));
    fclose(f);
  }
  json_object_put(root);
}

/* ---------------------------------------------------------------- main */

static void usage(FILE *out) {
  fputs("usage: dgw-bench [OPTION]...\n"
        "Measure dgw's throughput against its limits, latency, and idle "
        "shards.\n"
        "\n"
        "  --events N         dispatches in the throughput stream (150000)\n"
        "  --seed N           corpus seed (1)\n"
        "  --repeat N         rounds of limits and runs, best kept (5)\n"
        "  --large N          GUILD_CREATEs in the stream (4)\n"
        "  --large-members N  members of the first of them (2500; each next\n"
        "                     has 997 more)\n"
        "  --shards N         idle shards (1000)\n"
        "  --heartbeat MS     the shards' heartbeat interval (5000)\n"
        "  --idle S           seconds the shards are watched idle (6)\n"
        "  --latency-rate R   events per second of the latency run (2000)\n"
        "  --latency-seconds S  length of each latency run (2)\n"
        "  --only LIST        comma-separated subset of\n"
        "                     limits,throughput,latency,shards\n"
        "  --setups LIST      handler setups of the throughput part, a subset\n"
        "                     of none,raw,parsed (all; for profiling)\n"
        "  --no-tls           skip the TLS runs\n"
        "  --json             print JSON instead of the table\n"
        "  --json-file PATH   also write the JSON to PATH\n"
        "  --help             this text\n"
        "\n"
        "The openssl command (OPENSSL in the environment, else openssl) makes\n"
        "the TLS certificates in a temporary directory.\n",
        out);
}

static uint64_t parse_num(const char *s, const char *what) {
  char *end;
  unsigned long long v;

  errno = 0;
  v = strtoull(s, &end, 10);
  if (errno != 0 || *s == '\0' || *end != '\0')
    die("bad %s: %s", what, s);
  return v;
}

static void parse_only(struct options *o, const char *list) {
  char buf[256];
  char *save = NULL;

  o->do_limits = o->do_throughput = o->do_latency = o->do_shards = 0;
  snprintf(buf, sizeof buf, "%s", list);
  for (char *t = strtok_r(buf, ",", &save); t != NULL;
       t = strtok_r(NULL, ",", &save)) {
    if (strcmp(t, "limits") == 0)
      o->do_limits = 1;
    else if (strcmp(t, "throughput") == 0)
      o->do_throughput = 1;
    else if (strcmp(t, "latency") == 0)
      o->do_latency = 1;
    else if (strcmp(t, "shards") == 0)
      o->do_shards = 1;
    else
      die("unknown part for --only: %s", t);
  }
}

static void parse_setups(struct options *o, const char *list) {
  char buf[256];
  char *save = NULL;

  memset(o->setups, 0, sizeof o->setups);
  snprintf(buf, sizeof buf, "%s", list);
  for (char *t = strtok_r(buf, ",", &save); t != NULL;
       t = strtok_r(NULL, ",", &save)) {
    int k = 0;

    while (k < NSETUPS && strcmp(t, setup_key[k]) != 0)
      k++;
    if (k == NSETUPS)
      die("unknown setup for --setups: %s", t);
    o->setups[k] = 1;
  }
}

static void parse_args(struct options *o, int argc, char **argv) {
  enum {
    O_EVENTS = 256,
    O_SEED,
    O_REPEAT,
    O_LARGE,
    O_LARGE_MEMBERS,
    O_SHARDS,
    O_HEARTBEAT,
    O_IDLE,
    O_LAT_RATE,
    O_LAT_SECONDS,
    O_ONLY,
    O_NO_TLS,
    O_JSON,
    O_JSON_FILE,
    O_SETUPS,
    O_HELP,
  };
  static const struct option longopts[] = {
      {"events", required_argument, NULL, O_EVENTS},
      {"seed", required_argument, NULL, O_SEED},
      {"repeat", required_argument, NULL, O_REPEAT},
      {"large", required_argument, NULL, O_LARGE},
      {"large-members", required_argument, NULL, O_LARGE_MEMBERS},
      {"shards", required_argument, NULL, O_SHARDS},
      {"heartbeat", required_argument, NULL, O_HEARTBEAT},
      {"idle", required_argument, NULL, O_IDLE},
      {"latency-rate", required_argument, NULL, O_LAT_RATE},
      {"latency-seconds", required_argument, NULL, O_LAT_SECONDS},
      {"only", required_argument, NULL, O_ONLY},
      {"setups", required_argument, NULL, O_SETUPS},
      {"no-tls", no_argument, NULL, O_NO_TLS},
      {"json", no_argument, NULL, O_JSON},
      {"json-file", required_argument, NULL, O_JSON_FILE},
      {"help", no_argument, NULL, O_HELP},
      {NULL, 0, NULL, 0},
  };
  int c;

  memset(o, 0, sizeof *o);
  o->events = 150000;
  o->seed = 1;
  o->repeat = 5;
  o->large = 4;
  o->large_members = 2500;
  o->shards = 1000;
  o->heartbeat_ms = 5000;
  o->idle_seconds = 6;
  o->latency_rate = 2000;
  o->latency_seconds = 2;
  o->tls = 1;
  o->do_limits = o->do_throughput = o->do_latency = o->do_shards = 1;
  for (int k = 0; k < NSETUPS; k++)
    o->setups[k] = 1;
  o->openssl = getenv("OPENSSL") != NULL && getenv("OPENSSL")[0] != '\0'
                   ? getenv("OPENSSL")
                   : "openssl";
  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case O_EVENTS:
      o->events = parse_num(optarg, "--events");
      break;
    case O_SEED:
      o->seed = parse_num(optarg, "--seed");
      break;
    case O_REPEAT:
      o->repeat = (unsigned)parse_num(optarg, "--repeat");
      break;
    case O_LARGE:
      o->large = (unsigned)parse_num(optarg, "--large");
      break;
    case O_LARGE_MEMBERS:
      o->large_members = (unsigned)parse_num(optarg, "--large-members");
      break;
    case O_SHARDS:
      o->shards = (uint32_t)parse_num(optarg, "--shards");
      break;
    case O_HEARTBEAT:
      o->heartbeat_ms = (uint32_t)parse_num(optarg, "--heartbeat");
      break;
    case O_IDLE:
      o->idle_seconds = atof(optarg);
      break;
    case O_LAT_RATE:
      o->latency_rate = atof(optarg);
      break;
    case O_LAT_SECONDS:
      o->latency_seconds = atof(optarg);
      break;
    case O_ONLY:
      parse_only(o, optarg);
      break;
    case O_SETUPS:
      parse_setups(o, optarg);
      break;
    case O_NO_TLS:
      o->tls = 0;
      break;
    case O_JSON:
      o->json = 1;
      break;
    case O_JSON_FILE:
      o->json_file = optarg;
      break;
    case O_HELP:
      usage(stdout);
      exit(0);
    default:
      usage(stderr);
      exit(2);
    }
  }
  if (optind != argc) {
    usage(stderr);
    exit(2);
  }
  if (o->events < 10 || o->repeat < 1 || o->shards < 1 ||
      o->heartbeat_ms < 50 || o->idle_seconds <= 0 || o->latency_rate <= 0 ||
      o->latency_rate > 1e6 || o->latency_seconds <= 0)
    die("an option is out of range (see --help)");
  if (o->large > o->events / 2)
    o->large = (unsigned)(o->events / 2);
}

/* Lets the user see progress on a long run, on stderr. */
static void progress(const char *what) {
  /* The monotonic stamp lines a phase up with `perf record -k mono`. */
  fprintf(stderr, "dgw-bench: [%.6f] %s...\n", (double)now_ns() / 1e9, what);
}

int main(int argc, char **argv) {
  struct options o;
  struct machine mc;
  struct results *res = calloc(1, sizeof *res);
  struct stream s;
  struct rlimit rl;
  char dir[] = "/tmp/dgw-bench.XXXXXX";
  char cert[600], key[600], ca[600];
  int64_t t0;

  if (res == NULL)
    die("out of memory");
  parse_args(&o, argc, argv);
  signal(SIGPIPE, SIG_IGN);
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  machine_info(&mc);
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
    for (int t = 0; t <= res->have_tls; t++) {
      progress(t ? "shards, TLS" : "shards, plain");
      shards_run(o.shards, t ? cert : NULL, t ? key : NULL, t ? ca : NULL,
                 o.heartbeat_ms, o.idle_seconds, &res->shards[t]);
    }
  }

  progress("building the corpus");
  t0 = now_ns();
  stream_build(&s, o.seed, o.events, o.large, o.large_members);
  res->build_seconds = (double)(now_ns() - t0) / 1e9;

  if (o.do_limits || o.do_throughput)
    rounds(&o, &s, cert, key, ca, res);
  if (o.do_latency) {
    for (int t = 0; t <= res->have_tls; t++) {
      progress(t ? "latency, TLS" : "latency, plain");
      latency(&o, t, cert, key, ca, &res->lat[t]);
    }
  }
  if (res->have_tls)
    remove_dir(dir);
  report(&o, &mc, &s, res);
  stream_free(&s);
  free(res);
  return 0;
}
