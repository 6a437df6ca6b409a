/*
 * dgw-bench internals: the seeded event corpus, the pre-compressed stream,
 * the forked bench server, the shard runner and small helpers shared by
 * the files of tools/bench/.  Not installed; see docs/performance.md.
 */
#ifndef DGW_BENCH_H
#define DGW_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* ------------------------------------------------------------ helpers */

/* A growable byte buffer.  Appends abort the bench when memory runs out:
 * a benchmark with a missing allocation has no result worth printing. */
struct sbuf {
  char *p;
  size_t len, cap;
};

void sb_reserve(struct sbuf *b, size_t more);
void sb_mem(struct sbuf *b, const void *p, size_t n);
void sb_str(struct sbuf *b, const char *s);
void sb_fmt(struct sbuf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void sb_free(struct sbuf *b);

/* Monotonic nanoseconds (CLOCK_MONOTONIC: one clock for every process of
 * the machine, so a forked server's stamps compare with ours). */
int64_t now_ns(void);
/* User + system CPU seconds of this process (getrusage RUSAGE_SELF). */
double cpu_seconds(void);
/* Resident set size of this process now, and its peak, in KiB. */
long rss_now_kb(void);
long rss_peak_kb(void);
/* Bytes of heap in use (mallinfo2), or -1 when unknown. */
long heap_in_use(void);

/* Prints "dgw-bench: <message>" on stderr and exits with status 1. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* ------------------------------------------------------------- corpus */

/* A deterministic generator of realistic gateway dispatches. */
struct corpus;

/* A generator seeded with `seed`; the same seed gives the same events. */
struct corpus *corpus_new(uint64_t seed);
void corpus_free(struct corpus *c);

/*
 * Appends the next event of the mix to `out` as a whole gateway payload
 * {"t":...,"s":seq,"op":0,"d":{...}} and returns its name (static).  The
 * mix has no GUILD_CREATE (see corpus_guild_create()).  With `stamp_at`
 * non-NULL `d` starts with "bench_t0":"<20 digits>", and *stamp_at receives the
 * offset of those digits in `out` (see corpus_stamp()).
 */
const char *corpus_next(struct corpus *c, struct sbuf *out, int64_t seq,
                        size_t *stamp_at);

/* Appends a GUILD_CREATE payload with `members` members. */
void corpus_guild_create(struct corpus *c, struct sbuf *out, int64_t seq,
                         unsigned members);
/* Appends only the `d` of one (a guild object). */
void corpus_guild_create_d(struct corpus *c, struct sbuf *out,
                           unsigned members);

/* The name of event kind `k` as counted in stream.count_by_kind, or NULL
 * past the last kind. */
const char *corpus_kind_name(unsigned k);

/* Writes `t` as 20 decimal digits at `digits` (see corpus_next()). */
void corpus_stamp(char *digits, int64_t t);

/* ------------------------------------------------------------ packer */

/* One connection's compression stream on the server side (pack.c):
 * zlib-stream (`zstd` 0: deflate at `level`, Z_SYNC_FLUSH per payload) or
 * zstd-stream (`zstd` 1: ZSTD_e_flush per payload at `level`).  Dies when
 * it cannot start (or zstd without libzstd). */
struct packer;
struct packer *packer_new(int zstd, int level);
void packer_free(struct packer *p);
/* Compresses `len` bytes of `json` as the next payload into `out` (its
 * old content dropped).  Returns 0 or -1. */
int packer_run(struct packer *p, struct sbuf *out, const char *json,
               size_t len);

/* ------------------------------------------------------------- stream */

/*
 * One gateway connection's worth of server output, made once: HELLO, READY,
 * `events` dispatches, then op 7 RECONNECT (which ends a client's run:
 * it shows up as on_disconnect even with no dispatch handler).  Every
 * payload is deflated through ONE zlib stream with Z_SYNC_FLUSH, and every
 * compressed payload is one unmasked binary WebSocket frame.
 */
struct stream {
  uint8_t *frames; /* every frame, back to back */
  size_t frames_len;
  size_t hello_end; /* bytes of the HELLO frame at the start */
  /* The WebSocket message (frame payload) of each payload, in order:
   * [0] HELLO, [1] READY, [2 .. 2+events) dispatches, then op 7. */
  size_t *msg_off;
  size_t *msg_len;
  size_t nmsg;
  uint64_t events;          /* dispatches after READY */
  int64_t last_seq;         /* s of the last dispatch */
  uint64_t timed_raw_bytes; /* decompressed bytes after READY */
  uint64_t timed_zbytes;    /* compressed message bytes after READY */
  uint64_t large_events;    /* GUILD_CREATEs among them */
  int zstd;                 /* 1: zstd-stream, 0: zlib-stream */
  uint64_t count_by_kind[16];
};

/* The gateway's HELLO for these runs: an interval long enough that no
 * heartbeat falls into a run (and none needs an ACK). */
#define BENCH_HELLO "{\"op\":10,\"d\":{\"heartbeat_interval\":3600000}}"
#define BENCH_READY_SESSION "0123456789abcdef0123456789abcdef"

/* Appends the READY payload (s 1) to `out`. */
void bench_ready_payload(struct sbuf *out);

/* Builds the stream: `events` dispatches of the seeded mix, `large`
 * GUILD_CREATEs of `large_members` members spread among them, through
 * zlib-stream at zlib's default level 6 (`zstd` 0) or zstd-stream at
 * zstd's default level 3 (`zstd` 1).  The same seed gives the same JSON
 * either way. */
void stream_build(struct stream *s, uint64_t seed, uint64_t events,
                  unsigned large, unsigned large_members, int zstd);
void stream_free(struct stream *s);

/* Appends one unmasked FIN frame of `opcode` carrying `len` bytes. */
void ws_frame(struct sbuf *out, int opcode, const void *data, size_t len);

/* ------------------------------------------------------------- server */

enum server_mode {
  SERVER_BLAST, /* the pre-built stream, as fast as the socket takes it */
  SERVER_PACED, /* live dispatches at a steady rate, each stamped */
};

struct server_config {
  enum server_mode mode;
  const struct stream *stream; /* BLAST */
  const char *cert_file;       /* both set: TLS */
  const char *key_file;
  unsigned connections; /* served one after the other, then exit */
  /* PACED: events per second, how many, and the corpus seed. */
  double rate;
  uint64_t paced_events;
  uint64_t seed;
  int zstd; /* PACED: zstd-stream (BLAST: the stream's own) */
};

/* Listens on 127.0.0.1 (a free port, stored in *port) and forks a child
 * that serves `cfg->connections` connections and exits.  The child never
 * outlives the bench.  Returns the child's pid. */
pid_t server_start(const struct server_config *cfg, uint16_t *port);

/* Waits for a child; returns its exit status or -1 if it failed. */
int child_wait(pid_t pid, const char *what);

/* ------------------------------------------------------------- shards */

/* What each shard receives after READY: GUILD_CREATEs of these sizes, so
 * that an idle shard holds what a real one holds after its startup burst
 * (its READY lists them as unavailable guilds). */
#define SHARD_GUILDS                                                           \
  { 20u, 100u }

struct shard_result {
  int ok;
  char error[160];
  uint32_t shards;
  double up_seconds;            /* start until every shard is READY and has its
                                   startup GUILD_CREATEs */
  double idle_seconds;          /* the measured idle window */
  double idle_cpu;              /* CPU seconds per second while idle */
  long rss_first_kb;            /* VmRSS with the first shard ready */
  long rss_all_kb;              /* VmRSS with every shard ready and idle */
  long rss_peak_kb;             /* ru_maxrss of the shard process */
  long rss_trimmed_kb;          /* VmRSS after malloc_trim(0), or 0 */
  double rss_per_shard;         /* KiB per shard beyond the first */
  double rss_trimmed_per_shard; /* the same after malloc_trim(0) */
  double heap_per_shard; /* KiB of malloc'd memory per shard (mallinfo2) */
  uint64_t disconnects;  /* connections lost during the run (want 0) */
  uint64_t heartbeats;   /* heartbeats the mock saw during the idle window */
  uint64_t zombies;      /* of the connections lost, to a zombie check */
  /* The forced client-wide outage after the idle window (every connection
   * cut at once by the mock, which keeps listening). */
  int outage_done;
  int outage_all;             /* every shard RESUMED */
  double outage_seconds;      /* the cut until the last RESUMED */
  uint64_t outage_resumed;    /* RESUMED received */
  uint64_t outage_identifies; /* IDENTIFY sent (want 0) */
  uint64_t outage_zombies;    /* connections lost to a zombie check (want 0) */
  uint64_t outage_lost;       /* connections lost beyond the cut (want 0) */
  /* The most shards at once that held a connection before their IDENTIFY
   * or RESUME went out (connecting, or at HELLO waiting for their turn). */
  uint32_t peak_waiting;
  /* VmRSS when half the shards were READY, and how many held a connection
   * before their turn then. */
  long rss_half_kb;
  uint32_t waiting_half;
  /* Quiet shards (dgw_options_set_quiet_sleep): the setting, and at the
   * end of the idle window the shards whose window was packed and what
   * the packed windows held. */
  uint32_t quiet_ms;
  uint32_t asleep;
  uint64_t saved_bytes;
};

/* How a fleet identifies: NULL for the idle-shard runs (every shard its
 * own bucket, the library's default connect); the lazy part runs one
 * bucket (max_concurrency 1) with a short window, lazy connect on or off. */
struct shard_plan {
  uint32_t concurrency, window_ms;
  int lazy;         /* dgw_options_set_lazy_connect()'s `on` */
  uint32_t lead_ms; /* its lead */
};

/* Runs `shards` idle shards against tools/mock in forked processes (the
 * client side in a fresh child so its RSS is its own), with TLS when
 * `cert_file` is set (the CA in `ca_file`).  Fills *out. */
void shards_run(uint32_t shards, const char *cert_file, const char *key_file,
                const char *ca_file, uint32_t heartbeat_ms, double idle_seconds,
                const struct shard_plan *plan, struct shard_result *out);

/* --------------------------------------------------------- failover */

/* The cluster's failover (failover.c): two members split 8 shards of a
 * mock; one is killed with SIGKILL; the time from the kill to the last
 * RESUME of its shards by the other, and the IDENTIFYs spent meanwhile. */
struct failover_result {
  int ok;
  char error[160];
  uint32_t lease_ms;
  int moved;      /* shards of the killed member (its connections) */
  int resumes;    /* RESUMEs after the kill */
  int identifies; /* IDENTIFYs after the kill (aim 0) */
  double seconds; /* kill to the last RESUME */
};

/* Runs it on Redis at `redis_url` with leases of `lease_ms`. */
void failover_run(const char *redis_url, uint32_t lease_ms,
                  struct failover_result *out);

/* ---------------------------------------------------- options, report */

/* The handler setups of the throughput part: no subscriber, a handler
 * touching the raw `d`, one parsing it with json-c (dgw_event_json()),
 * and one reading channel_id, author/id and content of each
 * MESSAGE_CREATE with the field getters (<dgw/field.h>, no DOM). */
enum setup { SETUP_NONE, SETUP_RAW, SETUP_PARSED, SETUP_FIELDS, NSETUPS };

/* Each setup's name in --setups and in the JSON report. */
extern const char *const bench_setup_key[NSETUPS];

/* What the command line asked for (see bench_parse_args()). */
struct options {
  uint64_t events;
  uint64_t seed;
  unsigned repeat;
  unsigned large;
  unsigned large_members;
  uint32_t shards;
  uint32_t heartbeat_ms;
  double idle_seconds;
  uint32_t quiet_ms; /* the idle fleets' quiet sleep (0: off) */
  double latency_rate;
  double latency_seconds;
  int json;
  const char *json_file;
  int tls;
  int do_limits, do_throughput, do_latency, do_shards, do_lazy;
  /* The lazy part: shards of one bucket, the identify window and the
   * lazy connect lead. */
  uint32_t lazy_shards, lazy_window_ms, lazy_lead_ms;
  int setups[NSETUPS]; /* which handler setups the throughput part runs */
  int zstd;            /* also measure zstd-stream (--no-zstd: 0) */
  int cluster;         /* the firehose with the cluster on (--no-cluster) */
  int streams;         /* through the redis-streams plugin (--no-streams) */
  const char *openssl;
};

/* One timed run: a limit or a client run. */
struct measure {
  int ok;
  double wall; /* seconds */
  double cpu;  /* seconds of this process */
};

/* One firehose run through the redis-streams plugin (streams.c). */
struct streams_measure {
  struct measure m; /* READY to the last seq stored in the stream */
  double redis_cpu; /* redis-server's CPU seconds over the same span */
  long rss_peak_kb; /* this process's RSS, sampled every 10 ms */
  char error[200];
};

/* The send-to-handler latency of one paced run. */
struct latency {
  int ok;
  uint64_t events;
  double p50_us, p99_us, max_us;
  /* Where a tail comes from: the client's time runnable but not running
   * during the run (/proc/self/schedstat; -1 unknown) and the times it
   * was preempted (involuntary context switches). */
  double run_delay_ms;
  long preempted;
};

/* Everything one dgw-bench run measured, for bench_report(). */
struct results {
  struct measure limit_inflate, limit_peek, limit_parse;
  /* Quiet shards: the CPU of packing a window after a payload and of
   * restoring it for the next (best of the rounds), and the packed size,
   * over the corpus's first QUIET_CYCLES payloads. */
  double quiet_pack_us, quiet_restore_us, quiet_packed_kb;
  struct measure run[2][NSETUPS]; /* [tls][setup] */
  struct latency lat[2];
  /* The same JSON through zstd-stream (zstream NULL: not measured). */
  const struct stream *zstream;
  struct measure limit_zstd;
  struct measure runz[2][NSETUPS];
  struct latency latz[2];
  struct shard_result shardsz[2];
  struct shard_result shards[2];
  struct shard_result shards_awake; /* TLS with quiet shards off */
  struct shard_result lazy[2];      /* [lazy connect on]; TLS unless --no-tls */
  int have_tls;
  double build_seconds;
  /* The raw-d firehose, plain zlib, with the cluster on (one shard held
   * on a lease in a private redis-server), beside run[0][SETUP_RAW] of the
   * same rounds.  cluster_note: why it was not measured ("" when it was
   * or was not asked for). */
  struct measure cluster_on;
  char cluster_note[160];
  struct failover_result failover; /* lease_ms 0: not run */
  /* The raw-d firehose through the redis-streams plugin into the private
   * redis-server (plain, zlib), beside run[0][SETUP_RAW]; the latency
   * from the server's send to a worker's XREAD.  streams_note: why not
   * measured ("" when it was or was not asked for). */
  struct streams_measure streams;
  struct latency streams_lat;
  char streams_note[160];
};

/* The firehose `s` served on `port` through the plugin at `plugin` into
 * the redis-server at `redis_url` (a unix:// URL; pid `redis_pid`);
 * the best of several calls is the caller's business.  Fills *out. */
void streams_throughput(const struct stream *s, uint16_t port,
                        const char *plugin, const char *redis_url,
                        pid_t redis_pid, struct streams_measure *out);

/* `rate` stamped events a second for `seconds` through the plugin, read
 * by a forked worker with XREAD BLOCK: send to worker, p50/p99/max. */
void streams_latency(double rate, double seconds, uint64_t seed,
                     const char *plugin, const char *redis_url,
                     struct latency *out);

/* The machine the bench ran on, for the report. */
struct machine {
  long cpus;
  char model[128];
  long mem_mb;
  char kernel[160];
};

/* Fills *o from the command line, defaults first; prints usage and exits
 * on --help or a bad option. */
void bench_parse_args(struct options *o, int argc, char **argv);

/* Fills *m with the CPU model and count, memory and kernel. */
void bench_machine_info(struct machine *m);

/* Prints the results as a table, or as JSON with --json, and writes the
 * JSON to --json-file. */
void bench_report(const struct options *o, const struct machine *mc,
                  const struct stream *s, const struct results *res);

#endif /* DGW_BENCH_H */
