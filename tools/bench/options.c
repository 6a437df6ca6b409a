/*
 * dgw-bench's command line: the options, their defaults and ranges, and
 * --help.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"

const char *const bench_setup_key[NSETUPS] = {"none", "raw", "parsed",
                                              "fields"};

static void usage(FILE *out) {
  fputs(
      "usage: dgw-bench [OPTION]...\n"
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
      "  --idle S           seconds the shards are watched idle (6; longer\n"
      "                     when needed for quiet shards to pack)\n"
      "  --quiet MS         the idle shards' quiet sleep (1000; 0: off)\n"
      "  --latency-rate R   events per second of the latency run (20000)\n"
      "  --latency-seconds S  length of each latency run (2)\n"
      "  --only LIST        comma-separated subset of\n"
      "                     limits,throughput,latency,shards,lazy\n"
      "  --lazy-shards N    shards of the lazy part, one identify bucket "
      "(2500)\n"
      "  --lazy-window MS   their identify window (10)\n"
      "  --lazy-lead MS     the lazy connect lead (5)\n"
      "  --setups LIST      handler setups of the throughput part, a subset\n"
      "                     of none,raw,parsed,fields (all)\n"
      "  --no-tls           skip the TLS runs\n"
      "  --no-zstd          skip the zstd-stream runs beside the zlib ones\n"
      "  --no-cluster       skip the cluster runs (firehose on/off, failover)\n"
      "  --no-streams       skip the redis-streams runs (firehose, latency)\n"
      "  --json             print JSON instead of the table\n"
      "  --json-file PATH   also write the JSON to PATH\n"
      "  --help             this text\n"
      "\n"
      "The openssl command (OPENSSL in the environment, else openssl) makes\n"
      "the TLS certificates in a temporary directory.  With DGW_BENCH_TRACE\n"
      "set, the shards part prints each second how late the event loops of\n"
      "the shards' and the mock's processes ran, and their CPU.\n",
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
  o->do_lazy = 0;
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
    else if (strcmp(t, "lazy") == 0)
      o->do_lazy = 1;
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

    while (k < NSETUPS && strcmp(t, bench_setup_key[k]) != 0)
      k++;
    if (k == NSETUPS)
      die("unknown setup for --setups: %s", t);
    o->setups[k] = 1;
  }
}

void bench_parse_args(struct options *o, int argc, char **argv) {
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
    O_NO_ZSTD,
    O_NO_CLUSTER,
    O_NO_STREAMS,
    O_JSON,
    O_JSON_FILE,
    O_SETUPS,
    O_HELP,
    O_LAZY_SHARDS,
    O_QUIET,
    O_LAZY_WINDOW,
    O_LAZY_LEAD,
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
      {"no-zstd", no_argument, NULL, O_NO_ZSTD},
      {"no-cluster", no_argument, NULL, O_NO_CLUSTER},
      {"no-streams", no_argument, NULL, O_NO_STREAMS},
      {"json", no_argument, NULL, O_JSON},
      {"json-file", required_argument, NULL, O_JSON_FILE},
      {"help", no_argument, NULL, O_HELP},
      {"lazy-shards", required_argument, NULL, O_LAZY_SHARDS},
      {"quiet", required_argument, NULL, O_QUIET},
      {"lazy-window", required_argument, NULL, O_LAZY_WINDOW},
      {"lazy-lead", required_argument, NULL, O_LAZY_LEAD},
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
  o->quiet_ms = 1000;
  o->latency_rate = 20000;
  o->latency_seconds = 2;
  o->tls = 1;
#ifdef HAVE_ZSTD
  o->zstd = 1;
#endif
  o->cluster = 1; /* without hiredis the report says why it was not run */
  o->streams = 1;
  o->do_limits = o->do_throughput = o->do_latency = o->do_shards = 1;
  o->do_lazy = 1;
  o->lazy_shards = 2500;
  o->lazy_window_ms = 10;
  o->lazy_lead_ms = 5;
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
    case O_NO_CLUSTER:
      o->cluster = 0;
      break;
    case O_NO_STREAMS:
      o->streams = 0;
      break;
    case O_NO_ZSTD:
      o->zstd = 0;
      break;
    case O_JSON:
      o->json = 1;
      break;
    case O_JSON_FILE:
      o->json_file = optarg;
      break;
    case O_QUIET:
      o->quiet_ms = (uint32_t)parse_num(optarg, "--quiet");
      break;
    case O_LAZY_SHARDS:
      o->lazy_shards = (uint32_t)parse_num(optarg, "--lazy-shards");
      if (o->lazy_shards < 2)
        die("--lazy-shards: at least 2");
      break;
    case O_LAZY_WINDOW:
      o->lazy_window_ms = (uint32_t)parse_num(optarg, "--lazy-window");
      if (o->lazy_window_ms == 0)
        die("--lazy-window: at least 1");
      break;
    case O_LAZY_LEAD:
      o->lazy_lead_ms = (uint32_t)parse_num(optarg, "--lazy-lead");
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
