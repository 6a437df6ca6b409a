/*
 * The counters behind dgw_client_stats() and dgw_gateway_stats() that are
 * kept per shard: dispatches by event name, closes by code, bytes and
 * frames in, heartbeat latency and handler time histograms.  Pure tables
 * and arithmetic, no I/O: the shard and the client bump them on paths they
 * already take.  Internal to dgw.
 */
#ifndef DGW_STATS_H
#define DGW_STATS_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

/* One shard's counters (zeroed with the shard). */
struct stats_shard {
  uint64_t frames_in;
  uint64_t bytes_wire;
  uint64_t bytes_inflated;
  uint64_t by_name[DGW_STATS_EVENT_NAMES];
  uint64_t closes_by_code[DGW_STATS_CLOSE_CODES];
  uint64_t rate_limit_waits;
  uint64_t identify_waits;
  uint64_t last_event_ns; /* dgw_monotonic_ns() of the last event; 0: none */
  uint64_t latency_hist[DGW_STATS_LATENCY_BUCKETS];
  double latency_sum_ms;
  uint64_t latency_count;
};

/* The slot of event name `name` in DGW_STATS_EVENT_NAMES: its index in the
 * fixed table of known names, or 0 ("other") for any other name. */
unsigned stats_name_slot(const char *name);

/* The slot of close code `code` in DGW_STATS_CLOSE_CODES, 0 for "other". */
unsigned stats_close_slot(int code);

/* The bucket of `value` among the upper bounds `bounds` (`n` of them, the
 * last INFINITY). */
unsigned stats_bucket(const double *bounds, unsigned n, double value);

/* The upper bounds of the heartbeat latency buckets (ms) and of the
 * handler time buckets (us). */
extern const double stats_latency_bounds_ms[DGW_STATS_LATENCY_BUCKETS];
extern const double stats_handler_bounds_us[DGW_STATS_HANDLER_BUCKETS];

/* Copies the counters of `s` into the public snapshot `out` (whose other
 * members the shard fills), at `now_ns` on dgw_monotonic_ns()'s clock. */
void stats_fill_shard(struct dgw_shard_stats *out, const struct stats_shard *s,
                      uint64_t now_ns);

/* One heartbeat ACK measured `ms` after its beat. */
void stats_latency(struct stats_shard *s, double ms);

#endif /* DGW_STATS_H */
