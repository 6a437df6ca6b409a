/*
 * dgw-bench's report: the machine it ran on, and the results as a table
 * or as JSON (docs/performance.md explains each column).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sys/utsname.h>

#include <json-c/json.h>

#include <dgw/dgw.h>

#include "bench.h"

static const char *const setup_name[NSETUPS] = {"no subscriber", "raw d",
                                                "parsed d", "fields of d"};

/* ------------------------------------------------------------ machine */

void bench_machine_info(struct machine *m) {
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

/* Two runs side by side under the heading `title`: the baseline `base`
 * (labelled `base_label`), then `m` (labelled `label`). */
static void print_beside(const char *title, const char *base_label,
                         const struct measure *base, const char *label,
                         const struct measure *m, const struct stream *s) {
  printf("\n%-32s %10s %8s %11s\n", title, "events/s", "MB/s", "CPU s/M ev");
  print_measure(base_label, base, s, NULL, 0);
  print_measure(label, m, s, NULL, 0);
}

/* The ratio line under runs side by side, without its newline: `label`,
 * the ratio of events per second, that of CPU time when cpu_ratio >= 0,
 * and whether either meets `aim`. */
static void print_ratio(const char *label, double ratio, double cpu_ratio,
                        double aim) {
  printf("  %-30s %9.3fx (events/s)", label, ratio);
  if (cpu_ratio >= 0)
    printf(", %.3fx (CPU)", cpu_ratio);
  printf("; aim >= %gx: %s", aim,
         ratio >= aim || cpu_ratio >= aim ? "met" : "NOT met");
}

/* One zlib row beside its zstd row: events/s and CPU per million events
 * of each, and zstd's speed-up (events/s) and CPU saving (zlib CPU over
 * zstd CPU). */
static void print_pair(const char *label, const struct measure *zl,
                       const struct measure *zs, const struct stream *s) {
  if (!zl->ok || !zs->ok) {
    printf("  %-30s %s\n", label, "failed");
    return;
  }
  printf("  %-30s %10.0f %10.0f %7.2fx %10.3f %10.3f %7.2fx\n", label,
         per_s((double)s->events, zl->wall), per_s((double)s->events, zs->wall),
         zl->wall / zs->wall, zl->cpu / (double)s->events * 1e6,
         zs->cpu / (double)s->events * 1e6, zl->cpu / zs->cpu);
}

static struct json_object *latency_json(const struct latency *l) {
  struct json_object *jx = json_object_new_object();

  json_object_object_add(jx, "ok", json_object_new_boolean(l->ok));
  if (l->ok) {
    json_add_int(jx, "events", (int64_t)l->events);
    json_add_double(jx, "p50_us", l->p50_us);
    json_add_double(jx, "p99_us", l->p99_us);
    json_add_double(jx, "max_us", l->max_us);
    json_add_double(jx, "client_run_delay_ms", l->run_delay_ms);
    json_add_int(jx, "client_preempted", l->preempted);
  }
  return jx;
}

/* zstd-stream beside zlib-stream: the same JSON, the same runs. */
static void report_zstd(const struct options *o, const struct stream *s,
                        const struct results *res, struct json_object *root) {
  static const char *const tname[2] = {"plain", "tls"};
  const struct stream *sz = res->zstream;
  struct json_object *jz = json_object_new_object();
  char label[64];

  if (sz != NULL) {
    struct json_object *jt = json_object_new_object();

    json_add_int(jz, "compressed_bytes", (int64_t)sz->timed_zbytes);
    json_add_int(jz, "zlib_compressed_bytes", (int64_t)s->timed_zbytes);
    json_add_int(jz, "level", 3);
    if (o->do_limits)
      json_object_object_add(jz, "limit_decompress",
                             measure_json(&res->limit_zstd, sz, NULL, 0));
    for (int t = 0; o->do_throughput && t <= res->have_tls; t++) {
      struct json_object *jtt = json_object_new_object();

      for (int k = 0; k < NSETUPS; k++)
        if (o->setups[k])
          json_object_object_add(
              jtt, bench_setup_key[k],
              measure_json(&res->runz[t][k], sz, &res->limit_zstd, 0));
      json_object_object_add(jt, tname[t], jtt);
    }
    json_object_object_add(jz, "throughput", jt);
  }
  if (o->do_latency && o->zstd) {
    struct json_object *jl = json_object_new_object();

    for (int t = 0; t <= res->have_tls; t++)
      json_object_object_add(jl, tname[t], latency_json(&res->latz[t]));
    json_object_object_add(jz, "latency", jl);
  }
  json_object_object_add(root, "zstd", jz);
  if (o->json || (sz == NULL && !o->do_latency))
    return;
  printf("\nzstd-stream (level 3) beside zlib-stream (level 6), the same "
         "JSON\n");
  if (sz != NULL) {
    printf("  %-30s %10.1f %10.1f %7.2fx  (MB on the wire, %.1f:1 and "
           "%.1f:1)\n",
           "bytes on the wire", (double)s->timed_zbytes / 1e6,
           (double)sz->timed_zbytes / 1e6,
           (double)s->timed_zbytes / (double)(sz->timed_zbytes ?: 1),
           (double)s->timed_raw_bytes / (double)(s->timed_zbytes ?: 1),
           (double)sz->timed_raw_bytes / (double)(sz->timed_zbytes ?: 1));
    printf("  %-30s %10s %10s %8s %10s %10s %8s\n", "", "zlib ev/s",
           "zstd ev/s", "speedup", "zlib CPU", "zstd CPU", "saving");
    if (o->do_limits)
      print_pair("decompress only (limit)", &res->limit_inflate,
                 &res->limit_zstd, s);
    for (int t = 0; o->do_throughput && t <= res->have_tls; t++)
      for (int k = 0; k < NSETUPS; k++) {
        if (!o->setups[k])
          continue;
        snprintf(label, sizeof label, "%-5s %s", tname[t], setup_name[k]);
        print_pair(label, &res->run[t][k], &res->runz[t][k], s);
      }
  }
  for (int t = 0; o->do_latency && o->zstd && t <= res->have_tls; t++) {
    const struct latency *l = &res->latz[t];

    snprintf(label, sizeof label, "latency %s %.0f ev/s", tname[t],
             o->latency_rate);
    if (l->ok)
      printf("  %-30s %10llu events, p50 %.1f us, p99 %.1f us, max %.1f "
             "us; waited %.1f ms, preempted %ld times\n",
             label, (unsigned long long)l->events, l->p50_us, l->p99_us,
             l->max_us, l->run_delay_ms, l->preempted);
    else
      printf("  %-30s failed\n", label);
  }
}

/* The field-reading handler beside the raw one, per transport: the aim is
 * >= 0.6x of the raw path's events/s (issue 17, item 2). */
static void report_fields(const struct options *o, const struct results *res,
                          struct json_object *root) {
  static const char *const tname[2] = {"plain", "tls"};
  struct json_object *jf;

  if (!o->setups[SETUP_FIELDS] || !o->setups[SETUP_RAW])
    return;
  jf = json_object_new_object();
  for (int t = 0; t <= res->have_tls; t++) {
    const struct measure *raw = &res->run[t][SETUP_RAW];
    const struct measure *f = &res->run[t][SETUP_FIELDS];

    if (!raw->ok || !f->ok)
      continue;
    json_add_double(jf, tname[t], raw->wall / f->wall);
    if (!o->json) {
      char label[32];

      snprintf(label, sizeof label, "%-5s %s", tname[t], "fields / raw d");
      print_ratio(label, raw->wall / f->wall, raw->cpu / f->cpu, 0.6);
      printf("\n");
    }
  }
  json_add_double(jf, "aim", 0.6);
  json_object_object_add(root, "fields_vs_raw", jf);
}

/* The raw-d firehose with the cluster on beside the same rounds' run
 * without (plain, zlib): the ratio of events per second, aim >= 0.95. */
static void report_cluster(const struct options *o, const struct stream *s,
                           const struct results *res,
                           struct json_object *root) {
  const struct measure *off = &res->run[0][SETUP_RAW];
  const struct measure *on = &res->cluster_on;
  struct json_object *jc;

  if (!o->cluster || !o->setups[SETUP_RAW])
    return;
  jc = json_object_new_object();
  if (res->cluster_note[0] != '\0' || !on->ok || !off->ok) {
    const char *why =
        res->cluster_note[0] != '\0' ? res->cluster_note : "a run failed";

    json_object_object_add(jc, "error", json_object_new_string(why));
    if (!o->json)
      printf("\ncluster on vs off (plain raw d): not measured: %s\n", why);
  } else {
    double ratio = off->wall / on->wall;
    double cpu_ratio = off->cpu / on->cpu;

    json_object_object_add(jc, "off", measure_json(off, s, NULL, 0));
    json_object_object_add(jc, "on", measure_json(on, s, NULL, 0));
    json_add_double(jc, "ratio", ratio);
    json_add_double(jc, "cpu_ratio", cpu_ratio);
    json_add_double(jc, "aim", 0.95);
    if (!o->json) {
      print_beside("cluster (plain, raw d, 1 shard)", "cluster off", off,
                   "cluster on (lease in Redis)", on, s);
      print_ratio("on / off", ratio, cpu_ratio, 0.95);
      printf("\n");
    }
  }
  json_object_object_add(root, "cluster", jc);
}

/* The raw-d firehose through the redis-streams plugin beside the same
 * rounds' run without (plain, zlib), and the latency to a worker: aim
 * >= 0.5x of the raw path into Redis (issue 13). */
static void report_streams(const struct options *o, const struct stream *s,
                           const struct results *res,
                           struct json_object *root) {
  const struct measure *raw = &res->run[0][SETUP_RAW];
  const struct streams_measure *sm = &res->streams;
  const struct latency *l = &res->streams_lat;
  int thr = o->do_throughput && o->setups[SETUP_RAW];
  struct json_object *js;

  if (!o->streams || (!thr && !o->do_latency))
    return;
  js = json_object_new_object();
  if (res->streams_note[0] != '\0') {
    json_object_object_add(js, "error",
                           json_object_new_string(res->streams_note));
    json_object_object_add(root, "streams", js);
    if (!o->json)
      printf("\nredis-streams: not measured: %s\n", res->streams_note);
    return;
  }
  if (thr && sm->m.ok && raw->ok) {
    double ratio = raw->wall / sm->m.wall;

    json_object_object_add(js, "raw", measure_json(raw, s, NULL, 0));
    json_object_object_add(js, "plugin", measure_json(&sm->m, s, NULL, 0));
    json_add_double(js, "redis_cpu_s", sm->redis_cpu);
    json_add_int(js, "rss_peak_kb", sm->rss_peak_kb);
    json_add_double(js, "ratio", ratio);
    json_add_double(js, "aim", 0.5);
    if (!o->json) {
      print_beside("redis-streams (plain, 1 shard)", "raw d, no plugin", raw,
                   "into Redis (stored)", &sm->m, s);
      print_ratio("plugin / raw", ratio, -1, 0.5);
      printf("; redis-server CPU %.2f s, dgw %.2f s; dgw RSS peak %.1f MiB\n",
             sm->redis_cpu, sm->m.cpu, (double)sm->rss_peak_kb / 1024.0);
    }
  } else if (thr) {
    const char *why = sm->error[0] != '\0' ? sm->error : "a run failed";

    json_object_object_add(js, "error", json_object_new_string(why));
    if (!o->json)
      printf("\nredis-streams firehose: failed: %s\n", why);
  }
  if (o->do_latency) {
    json_object_object_add(js, "latency", latency_json(l));
    if (!o->json) {
      if (l->ok)
        printf("  %-30s %10llu events at %.0f ev/s, p50 %.1f us, p99 %.1f "
               "us, max %.1f us\n",
               "latency send to worker", (unsigned long long)l->events,
               o->latency_rate, l->p50_us, l->p99_us, l->max_us);
      else
        printf("  %-30s failed\n", "latency send to worker");
    }
  }
  json_object_object_add(root, "streams", js);
}

/* kill -9 of one of two members to every shard of it RESUMEd. */
/* The fields a shards row and a lazy row share, into `jx`. */
static void shard_result_json(struct json_object *jx,
                              const struct shard_result *r) {
  json_add_double(jx, "up_s", r->up_seconds);
  json_add_int(jx, "rss_first_kb", r->rss_first_kb);
  json_add_int(jx, "rss_all_kb", r->rss_all_kb);
  json_add_int(jx, "rss_peak_kb", r->rss_peak_kb);
  json_add_double(jx, "rss_kb_per_shard", r->rss_per_shard);
  json_add_double(jx, "rss_trimmed_kb_per_shard", r->rss_trimmed_per_shard);
  json_add_double(jx, "heap_kb_per_shard", r->heap_per_shard);
  json_add_double(jx, "idle_cpu_s_per_s", r->idle_cpu);
  json_add_int(jx, "disconnects", (int64_t)r->disconnects);
}

/* The lazy part: one identify bucket, lazy connect on and off. */
static void report_lazy(const struct options *o, const struct results *res,
                        struct json_object *root) {
  struct json_object *js = json_object_new_object();
  char label[96];

  json_add_int(js, "shards", o->lazy_shards);
  json_add_int(js, "window_ms", o->lazy_window_ms);
  json_add_int(js, "lead_ms", o->lazy_lead_ms);
  json_object_object_add(js, "tls", json_object_new_boolean(res->have_tls));
  if (!o->json) {
    snprintf(label, sizeof label, "lazy connect (%u shards, %s)",
             (unsigned)o->lazy_shards, res->have_tls ? "tls" : "plain");
    printf("\n%-32s %6s %8s %8s %9s %7s %8s %9s %7s %4s\n", label, "up s",
           "half MiB", "peak MiB", "KiB/shard", "trimmed", "idle CPU",
           "us/shard", "waiting", "lost");
  }
  for (int on = 1; on >= 0; on--) {
    const struct shard_result *r = &res->lazy[on];
    struct json_object *jx = json_object_new_object();
    double per_shard = r->idle_cpu * 1e6 / (double)o->lazy_shards;

    json_object_object_add(jx, "ok", json_object_new_boolean(r->ok));
    if (r->ok) {
      shard_result_json(jx, r);
      json_add_double(jx, "idle_cpu_us_per_shard_per_s", per_shard);
      json_add_int(jx, "peak_waiting", r->peak_waiting);
      json_add_int(jx, "rss_half_ready_kb", r->rss_half_kb);
      json_add_int(jx, "waiting_half_ready", r->waiting_half);
    } else {
      json_object_object_add(jx, "error", json_object_new_string(r->error));
    }
    json_object_object_add(js, on ? "on" : "off", jx);
    if (o->json)
      continue;
    snprintf(label, sizeof label, "%s, window %u ms%s", on ? "on" : "off",
             (unsigned)o->lazy_window_ms, on ? ", lead" : "");
    if (on)
      snprintf(label + strlen(label), sizeof label - strlen(label), " %u ms",
               (unsigned)o->lazy_lead_ms);
    if (r->ok)
      printf("  %-30s %6.2f %8.1f %8.1f %9.1f %7.1f %7.2f%% %9.2f %7u %4llu\n",
             label, r->up_seconds, (double)r->rss_half_kb / 1024,
             (double)r->rss_peak_kb / 1024, r->rss_per_shard,
             r->rss_trimmed_per_shard, r->idle_cpu * 100, per_shard,
             (unsigned)r->peak_waiting, (unsigned long long)r->disconnects);
    else
      printf("  %-30s failed: %s\n", label, r->error);
  }
  json_object_object_add(root, "lazy", js);
}

static void report_failover(const struct options *o,
                            const struct failover_result *f,
                            struct json_object *root) {
  struct json_object *jf;

  if (f->lease_ms == 0)
    return;
  jf = json_object_new_object();
  json_add_int(jf, "lease_ms", f->lease_ms);
  json_add_int(jf, "shards_moved", f->moved);
  json_add_int(jf, "resumes", f->resumes);
  json_add_int(jf, "identifies", f->identifies);
  if (f->ok)
    json_add_double(jf, "seconds", f->seconds);
  else
    json_object_object_add(jf, "error", json_object_new_string(f->error));
  json_object_object_add(root, "failover", jf);
  if (o->json)
    return;
  if (f->ok)
    printf("\ncluster failover: kill -9 of 1 of 2 members, %d shards resumed "
           "in %.2f s (lease %u ms), %d IDENTIFY (aim 0)\n",
           f->moved, f->seconds, (unsigned)f->lease_ms, f->identifies);
  else
    printf("\ncluster failover: failed: %s\n", f->error);
}

void bench_report(const struct options *o, const struct machine *mc,
                  const struct stream *s, const struct results *res) {
  static const char *const tname[2] = {"plain", "tls"};
  /* fields: >= 0.6x of the raw path's events/s (issue 17), so at most
   * 1.5 / 0.6 of the inflate limit's CPU. */
  static const double aim[NSETUPS] = {1.5, 1.5, 1.3, 2.5};
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
    {
      struct json_object *jq = json_object_new_object();

      json_add_double(jq, "pack_us", res->quiet_pack_us);
      json_add_double(jq, "restore_us", res->quiet_restore_us);
      json_add_double(jq, "packed_kb", res->quiet_packed_kb);
      json_object_object_add(jl, "quiet_window", jq);
    }
    json_object_object_add(root, "limits", jl);
    if (!o->json) {
      printf("\n%-32s %10s %8s %11s\n", "limits (no I/O, one core)", "events/s",
             "MB/s", "CPU s/M ev");
      print_measure("inflate only", &res->limit_inflate, s, NULL, 0);
      print_measure("inflate + envelope peek", &res->limit_peek, s, NULL, 0);
      print_measure("inflate + json_tokener_parse", &res->limit_parse, s, NULL,
                    0);
      printf("  quiet window: pack %.1f us, restore %.1f us (CPU), packed "
             "%.1f KiB\n",
             res->quiet_pack_us, res->quiet_restore_us, res->quiet_packed_kb);
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
        json_object_object_add(jtt, bench_setup_key[k],
                               measure_json(&res->run[t][k], s, lim, aim[k]));
        if (!o->json) {
          snprintf(label, sizeof label, "%-5s %s", tname[t], setup_name[k]);
          print_measure(label, &res->run[t][k], s, lim, aim[k]);
        }
      }
      json_object_object_add(jt, tname[t], jtt);
    }
    json_object_object_add(root, "throughput", jt);
    report_fields(o, res, root);
    report_cluster(o, s, res, root);
  }
  if (o->do_latency) {
    struct json_object *jl = json_object_new_object();

    json_add_double(jl, "rate", o->latency_rate);
    if (!o->json)
      printf("\n%-32s %10s %8s %8s %8s %9s %9s\n",
             "latency (send to handler, raw d)", "events", "p50 us", "p99 us",
             "max us", "waited ms", "preempted");
    for (int t = 0; t <= res->have_tls; t++) {
      const struct latency *l = &res->lat[t];

      json_object_object_add(jl, tname[t], latency_json(l));
      if (!o->json) {
        snprintf(label, sizeof label, "%-5s %.0f ev/s", tname[t],
                 o->latency_rate);
        if (l->ok)
          printf("  %-30s %10llu %8.1f %8.1f %8.1f %9.1f %9ld\n", label,
                 (unsigned long long)l->events, l->p50_us, l->p99_us, l->max_us,
                 l->run_delay_ms, l->preempted);
        else
          printf("  %-30s failed\n", label);
      }
    }
    json_object_object_add(root, "latency", jl);
  }
  report_failover(o, &res->failover, root);
  report_streams(o, s, res, root);
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
    /* plain, tls, their zstd runs, then tls with quiet shards off. */
    for (int zt = 0; zt <= 4; zt++) {
      int t = zt == 4 ? 1 : zt & 1, z = zt >> 1 & 1, off = zt == 4;
      const struct shard_result *r = off ? &res->shards_awake
                                     : z ? &res->shardsz[t]
                                         : &res->shards[t];
      struct json_object *jx;

      if (t > res->have_tls || (z && !o->zstd) || (off && o->quiet_ms == 0))
        continue;
      jx = json_object_new_object();
      json_object_object_add(jx, "ok", json_object_new_boolean(r->ok));
      if (r->ok) {
        shard_result_json(jx, r);
        json_add_int(jx, "rss_trimmed_kb", r->rss_trimmed_kb);
        json_add_double(jx, "cpu_us_per_heartbeat",
                        r->idle_cpu * 1e6 * o->heartbeat_ms / 1e3 /
                            (double)o->shards);
        json_add_double(jx, "idle_window_s", r->idle_seconds);
        json_add_int(jx, "shards_with_acked_heartbeat", (int64_t)r->heartbeats);
        json_add_int(jx, "zombies", (int64_t)r->zombies);
        json_add_int(jx, "quiet_ms", r->quiet_ms);
        json_add_int(jx, "windows_asleep", r->asleep);
        json_add_double(jx, "packed_window_kb",
                        r->asleep ? (double)r->saved_bytes / 1024 / r->asleep
                                  : 0);
        if (r->outage_done) {
          struct json_object *jo = json_object_new_object();

          json_object_object_add(jo, "all_resumed",
                                 json_object_new_boolean(r->outage_all));
          json_add_double(jo, "seconds", r->outage_seconds);
          json_add_int(jo, "resumed", (int64_t)r->outage_resumed);
          json_add_int(jo, "identifies", (int64_t)r->outage_identifies);
          json_add_int(jo, "zombies", (int64_t)r->outage_zombies);
          json_add_int(jo, "lost_after_cut", (int64_t)r->outage_lost);
          json_object_object_add(jx, "outage", jo);
        }
        if (r->disconnects > 0)
          json_object_object_add(jx, "first_disconnect",
                                 json_object_new_string(r->error));
      } else {
        json_object_object_add(jx, "error", json_object_new_string(r->error));
      }
      snprintf(label, sizeof label, "%s%s", tname[t],
               off ? "_quiet_off"
               : z ? "_zstd"
                   : "");
      json_object_object_add(js, label, jx);
      if (!o->json) {
        snprintf(label, sizeof label, "%s%s", tname[t],
                 off ? " quiet off"
                 : z ? " zstd"
                     : "");
        if (r->ok) {
          printf("  %-30s %6.2f %8.1f %8.1f %9.1f %7.1f %8.1f %7.2f%% %7.0f "
                 "%4llu\n",
                 label, r->up_seconds, (double)r->rss_first_kb / 1024,
                 (double)r->rss_peak_kb / 1024, r->rss_per_shard,
                 r->rss_trimmed_per_shard, r->heap_per_shard, r->idle_cpu * 100,
                 r->idle_cpu * 1e6 * o->heartbeat_ms / 1e3 / (double)o->shards,
                 (unsigned long long)r->disconnects);
          if (r->disconnects > 0)
            printf("    (first connection lost: %s; %llu to zombie checks)\n",
                   r->error, (unsigned long long)r->zombies);
          if (r->quiet_ms > 0)
            printf("    quiet %u ms: %u of %u windows packed, %.1f KiB "
                   "each\n",
                   (unsigned)r->quiet_ms, (unsigned)r->asleep,
                   (unsigned)r->shards,
                   r->asleep ? (double)r->saved_bytes / 1024 / r->asleep : 0);
          if (r->outage_done)
            printf("    outage (every connection cut at once): %s, "
                   "%llu RESUMED in %.2f s, %llu IDENTIFY, %llu lost to "
                   "zombie checks, %llu lost after the cut\n",
                   r->outage_all ? "every shard resumed" : "NOT all resumed",
                   (unsigned long long)r->outage_resumed, r->outage_seconds,
                   (unsigned long long)r->outage_identifies,
                   (unsigned long long)r->outage_zombies,
                   (unsigned long long)r->outage_lost);
        } else
          printf("  %-30s failed: %s\n", label, r->error);
      }
    }
    json_object_object_add(root, "shards", js);
  }
  if (o->do_lazy)
    report_lazy(o, res, root);
  if (o->zstd)
    report_zstd(o, s, res, root);
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
