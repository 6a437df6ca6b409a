/*
 * The redis-streams plugin in `make bench` (issue 13, "Measured"): the
 * firehose through the plugin into a private redis-server, beside the raw
 * path of the same round, and the latency from the gateway's socket to a
 * worker that reads the stream.
 *
 * A throughput run starts its clock at READY, as the raw runs do, and
 * stops it when the stream's last entry carries the firehose's last seq:
 * every event has then been stored, not only read.  The CPU of this
 * process and of redis-server (from /proc/PID/stat) is taken over the same
 * span, and the RSS of this process is sampled while it runs.
 *
 * The latency run serves paced, stamped events (the stamp is the server's
 * CLOCK_MONOTONIC at send, the first thing in `d`); a forked worker reads
 * the stream with XREAD BLOCK on its own connection and takes its clock
 * when an entry arrives: socket, inflate, plugin, Redis, worker.
 */
#include "config.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <event2/event.h>

#include <dgw/dgw.h>

#include "bench.h"

#ifdef HAVE_HIREDIS
#include <hiredis/hiredis.h>

/* Stream trimming in the runs: bounds redis-server's memory (the firehose
 * is hundreds of MB of JSON); the trimming is part of what is measured. */
#define STREAMS_MAXLEN "100000"

/* CPU seconds (user + system) of process `pid`, or -1. */
static double proc_cpu(pid_t pid) {
  char path[64], buf[1024], *p;
  unsigned long long ut = 0, st = 0;
  FILE *f;
  size_t n;

  snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
  if ((f = fopen(path, "r")) == NULL)
    return -1;
  n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = '\0';
  /* After the command's closing parenthesis: state is field 3, utime and
   * stime are 14 and 15. */
  if ((p = strrchr(buf, ')')) == NULL ||
      sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu",
             &ut, &st) != 2)
    return -1;
  return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* The value of field `name` of a stream entry's field list, or NULL. */
static const redisReply *entry_field(const redisReply *fields,
                                     const char *name) {
  if (fields == NULL || fields->type != REDIS_REPLY_ARRAY)
    return NULL;
  for (size_t i = 0; i + 1 < fields->elements; i += 2)
    if (fields->element[i]->type == REDIS_REPLY_STRING &&
        strcmp(fields->element[i]->str, name) == 0)
      return fields->element[i + 1];
  return NULL;
}

struct srun {
  struct event_base *base;
  struct dgw_client *client;
  redisContext *rc;
  const char *key;
  pid_t redis_pid;
  int64_t want_seq;
  int64_t t0;
  double c0, r0;
  int started;
  struct streams_measure *out;
  char error[200];
};

static void srun_ready(struct dgw_gateway *gw, void *ud) {
  struct srun *r = ud;

  (void)gw;
  if (r->started)
    return;
  r->started = 1;
  r->t0 = now_ns();
  r->c0 = cpu_seconds();
  r->r0 = proc_cpu(r->redis_pid);
}

/* The stream's op 7 ends the connection; the plugin may still be storing:
 * the client stops (no reconnect takes the server's next connection) and
 * the poll below decides when the run is over. */
static void srun_disconnect(struct dgw_gateway *gw,
                            const struct dgw_disconnect *info, void *ud) {
  struct srun *r = ud;

  (void)gw;
  if (info->error != DGW_OK && r->error[0] == '\0')
    snprintf(r->error, sizeof r->error, "connection ended: %s (%s)",
             dgw_strerror(info->error), info->reason);
  dgw_client_stop(r->client);
}

/* Every 10 ms: the RSS, and whether the last seq is in the stream. */
static void srun_poll(evutil_socket_t fd, short what, void *arg) {
  struct srun *r = arg;
  redisReply *rep;
  long rss = rss_now_kb();

  (void)fd;
  (void)what;
  if (rss > r->out->rss_peak_kb)
    r->out->rss_peak_kb = rss;
  if (r->error[0] != '\0') {
    event_base_loopbreak(r->base);
    return;
  }
  if (!r->started)
    return;
  rep = redisCommand(r->rc, "XREVRANGE %s + - COUNT 1", r->key);
  if (rep == NULL) {
    snprintf(r->error, sizeof r->error, "redis: %s", r->rc->errstr);
    event_base_loopbreak(r->base);
    return;
  }
  if (rep->type == REDIS_REPLY_ARRAY && rep->elements == 1 &&
      rep->element[0]->type == REDIS_REPLY_ARRAY &&
      rep->element[0]->elements == 2) {
    const redisReply *s = entry_field(rep->element[0]->element[1], "s");

    if (s != NULL && s->type == REDIS_REPLY_STRING &&
        strtoll(s->str, NULL, 10) == r->want_seq) {
      r->out->m.wall = (double)(now_ns() - r->t0) / 1e9;
      r->out->m.cpu = cpu_seconds() - r->c0;
      r->out->redis_cpu = proc_cpu(r->redis_pid) - r->r0;
      r->out->m.ok = 1;
      event_base_loopbreak(r->base);
    }
  }
  freeReplyObject(rep);
}

static void srun_watchdog(evutil_socket_t fd, short what, void *arg) {
  struct srun *r = arg;

  (void)fd;
  (void)what;
  snprintf(r->error, sizeof r->error, "the stream did not end within 300 s");
  event_base_loopbreak(r->base);
}

/* A client with the plugin writing to `key`'s stream (name `name`). */
static struct dgw_client *plugin_client(struct event_base *base, uint16_t port,
                                        const char *plugin,
                                        const char *redis_url, const char *name,
                                        const struct dgw_callbacks *cb,
                                        void *ud, char *why, size_t why_len) {
  struct dgw_options *opt = dgw_options_new();
  struct dgw_client *c;
  char url[64], config[600];
  int err = 0;

  snprintf(url, sizeof url, "ws://127.0.0.1:%u", (unsigned)port);
  if (opt == NULL || dgw_options_set_token(opt, "bench-token") != DGW_OK ||
      dgw_options_set_gateway_url(opt, url) != DGW_OK ||
      dgw_options_set_plugins_strict(opt, 1) != DGW_OK)
    die("cannot configure the client");
  c = dgw_client_new(base, opt, cb, ud, &err);
  dgw_options_free(opt);
  if (c == NULL)
    die("dgw_client_new: %s", dgw_strerror(err));
  snprintf(config, sizeof config,
           "{\"redis\":\"%s\",\"name\":\"%s\",\"maxlen\":" STREAMS_MAXLEN "}",
           redis_url, name);
  if (dgw_client_load_plugin(c, plugin, config, why, why_len) != DGW_OK) {
    dgw_client_free(c);
    return NULL;
  }
  return c;
}

void streams_throughput(const struct stream *s, uint16_t port,
                        const char *plugin, const char *redis_url,
                        pid_t redis_pid, struct streams_measure *out) {
  static unsigned runs;
  struct dgw_callbacks *cb = dgw_callbacks_new();
  struct timeval every = {0, 10000}, limit = {300, 0};
  struct event *poll, *dog;
  struct srun r;
  char name[32], key[64], why[300];

  memset(&r, 0, sizeof r);
  memset(out, 0, sizeof *out);
  snprintf(name, sizeof name, "bs%u", ++runs);
  snprintf(key, sizeof key, "dgw:{%s}:events", name);
  r.key = key;
  r.out = out;
  r.redis_pid = redis_pid;
  r.want_seq = s->last_seq;
  r.base = event_base_new();
  if (r.base == NULL || cb == NULL)
    die("out of memory");
  if ((r.rc = redisConnectUnix(redis_url + strlen("unix://"))) == NULL ||
      r.rc->err != 0)
    die("cannot reach the bench's redis-server");
  dgw_callbacks_set_on_ready(cb, srun_ready);
  dgw_callbacks_set_on_disconnect(cb, srun_disconnect);
  r.client = plugin_client(r.base, port, plugin, redis_url, name, cb, &r, why,
                           sizeof why);
  dgw_callbacks_free(cb);
  if (r.client == NULL) {
    snprintf(out->error, sizeof out->error, "the plugin: %.180s", why);
    redisFree(r.rc);
    event_base_free(r.base);
    return;
  }
  poll = event_new(r.base, -1, EV_PERSIST, srun_poll, &r);
  dog = evtimer_new(r.base, srun_watchdog, &r);
  event_add(poll, &every);
  evtimer_add(dog, &limit);
  dgw_client_start(r.client);
  event_base_dispatch(r.base);
  event_free(poll);
  event_free(dog);
  dgw_client_free(r.client);
  /* One loop pass lets the freed plugin close its Redis connection. */
  event_base_loop(r.base, EVLOOP_NONBLOCK);
  freeReplyObject(redisCommand(r.rc, "DEL %s", key));
  redisFree(r.rc);
  event_base_free(r.base);
  if (r.error[0] != '\0' || !out->m.ok) {
    out->m.ok = 0;
    snprintf(out->error, sizeof out->error, "%s",
             r.error[0] ? r.error : "the stream did not end");
    fprintf(stderr, "dgw-bench: streams run failed: %s\n", out->error);
  }
}

/* ------------------------------------------------------------ latency */

static int cmp_i64(const void *a, const void *b) {
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

  return (x > y) - (x < y);
}

/* The worker: reads `key` from the start until `want` stamped entries came
 * or nothing came for 5 s; writes count, p50, p99, max (ns) to `fd`. */
static void worker(const char *socket_path, const char *key, uint64_t want,
                   int fd) {
  redisContext *rc = redisConnectUnix(socket_path);
  int64_t *lat = calloc(want + 1, sizeof *lat), res[4] = {0, 0, 0, 0};
  uint64_t n = 0;
  char last[64] = "0";
  static const char stamp[] = "{\"bench_t0\":\"";

  if (rc == NULL || rc->err != 0 || lat == NULL)
    _exit(2);
  while (n < want) {
    redisReply *rep = redisCommand(
        rc, "XREAD COUNT 1000 BLOCK 5000 STREAMS %s %s", key, last);
    int64_t now = now_ns();
    const redisReply *entries;

    if (rep == NULL || rep->type != REDIS_REPLY_ARRAY || rep->elements != 1) {
      freeReplyObject(rep);
      break; /* nothing for 5 s (or an error): the run is over */
    }
    entries = rep->element[0]->element[1];
    for (size_t i = 0; i < entries->elements; i++) {
      const redisReply *e = entries->element[i];
      const redisReply *d = entry_field(e->element[1], "d");
      int64_t t0 = 0;

      snprintf(last, sizeof last, "%s", e->element[0]->str);
      if (d == NULL || d->len < sizeof stamp - 1 + 20 ||
          memcmp(d->str, stamp, sizeof stamp - 1) != 0 || n >= want)
        continue; /* READY */
      for (size_t k = 0; k < 20; k++)
        t0 = t0 * 10 + (d->str[sizeof stamp - 1 + k] - '0');
      lat[n++] = now - t0;
    }
    freeReplyObject(rep);
  }
  if (n > 0) {
    qsort(lat, n, sizeof *lat, cmp_i64);
    res[0] = (int64_t)n;
    res[1] = lat[n / 2];
    res[2] = lat[(n * 99) / 100];
    res[3] = lat[n - 1];
  }
  if (write(fd, res, sizeof res) != (ssize_t)sizeof res)
    _exit(3);
  _exit(0);
}

struct lrun {
  struct event_base *base;
  struct dgw_client *client;
};

static void lrun_disconnect(struct dgw_gateway *gw,
                            const struct dgw_disconnect *info, void *ud) {
  struct lrun *r = ud;

  (void)gw;
  (void)info;
  dgw_client_stop(r->client);
  event_base_loopbreak(r->base);
}

static void lrun_watchdog(evutil_socket_t fd, short what, void *arg) {
  struct lrun *r = arg;

  (void)fd;
  (void)what;
  fprintf(stderr, "dgw-bench: streams latency: no end within 300 s\n");
  event_base_loopbreak(r->base);
}

void streams_latency(double rate, double seconds, uint64_t seed,
                     const char *plugin, const char *redis_url,
                     struct latency *out) {
  static unsigned runs;
  struct server_config cfg;
  struct dgw_callbacks *cb = dgw_callbacks_new();
  struct timeval limit = {300, 0}, settle = {0, 200000};
  struct lrun r;
  char name[32], key[64], why[300];
  int64_t res[4] = {0, 0, 0, 0};
  int pfd[2];
  uint16_t port;
  pid_t server, work;
  struct event *dog;

  memset(out, 0, sizeof *out);
  memset(&cfg, 0, sizeof cfg);
  cfg.mode = SERVER_PACED;
  cfg.connections = 1;
  cfg.rate = rate;
  cfg.paced_events = (uint64_t)(rate * seconds);
  cfg.seed = seed;
  snprintf(name, sizeof name, "bl%u", ++runs);
  snprintf(key, sizeof key, "dgw:{%s}:events", name);
  if (pipe(pfd) != 0)
    die("pipe: %s", strerror(errno));
  work = fork();
  if (work < 0)
    die("fork: %s", strerror(errno));
  if (work == 0) {
    close(pfd[0]);
    worker(redis_url + strlen("unix://"), key, cfg.paced_events, pfd[1]);
  }
  close(pfd[1]);
  server = server_start(&cfg, &port);
  memset(&r, 0, sizeof r);
  r.base = event_base_new();
  if (r.base == NULL || cb == NULL)
    die("out of memory");
  dgw_callbacks_set_on_disconnect(cb, lrun_disconnect);
  r.client = plugin_client(r.base, port, plugin, redis_url, name, cb, &r, why,
                           sizeof why);
  dgw_callbacks_free(cb);
  if (r.client == NULL) {
    fprintf(stderr, "dgw-bench: streams latency: the plugin: %s\n", why);
    kill(work, SIGKILL);
  } else {
    dog = evtimer_new(r.base, lrun_watchdog, &r);
    evtimer_add(dog, &limit);
    dgw_client_start(r.client);
    event_base_dispatch(r.base);
    event_free(dog);
    /* Let the plugin store the tail before it is freed. */
    event_base_loopexit(r.base, &settle);
    event_base_dispatch(r.base);
    dgw_client_free(r.client);
    event_base_loop(r.base, EVLOOP_NONBLOCK);
  }
  event_base_free(r.base);
  child_wait(server, "the paced server");
  if (read(pfd[0], res, sizeof res) == (ssize_t)sizeof res && res[0] > 0) {
    out->ok = 1;
    out->events = (uint64_t)res[0];
    out->p50_us = (double)res[1] / 1e3;
    out->p99_us = (double)res[2] / 1e3;
    out->max_us = (double)res[3] / 1e3;
    out->run_delay_ms = -1;
  }
  close(pfd[0]);
  child_wait(work, "the stream worker");
}

#else /* !HAVE_HIREDIS */

void streams_throughput(const struct stream *s, uint16_t port,
                        const char *plugin, const char *redis_url,
                        pid_t redis_pid, struct streams_measure *out) {
  (void)s;
  (void)port;
  (void)plugin;
  (void)redis_url;
  (void)redis_pid;
  memset(out, 0, sizeof *out);
  snprintf(out->error, sizeof out->error, "built without hiredis");
}

void streams_latency(double rate, double seconds, uint64_t seed,
                     const char *plugin, const char *redis_url,
                     struct latency *out) {
  (void)rate;
  (void)seconds;
  (void)seed;
  (void)plugin;
  (void)redis_url;
  memset(out, 0, sizeof *out);
}

#endif
