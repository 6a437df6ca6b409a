/*
 * The operations half of dgw_client_stats(): the client's handler-time
 * tables and the sums of the shards' operations counters (stats.h).
 */
#include "config.h"

#include <string.h>

#include <dgw/dgw.h>

#include "client.h"

void client_stats_more(const struct dgw_client *c,
                       struct dgw_client_stats *full) {
  memcpy(full->handled_by_name, c->stats.handled, sizeof(c->stats.handled));
  memcpy(full->handler_us_sum, c->stats.handler_us_sum,
         sizeof(c->stats.handler_us_sum));
  memcpy(full->handler_hist, c->stats.handler_hist,
         sizeof(c->stats.handler_hist));
  full->session_starts_left = c->opt.starts_remaining;
  full->ms_since_event = -1;
  full->latency_ms_max = DGW_LATENCY_UNKNOWN;
}

void client_stats_add(struct dgw_client_stats *full,
                      const struct dgw_shard_stats *s) {
  full->frames_in += s->frames_in;
  full->bytes_wire += s->bytes_wire;
  full->bytes_inflated += s->bytes_inflated;
  for (unsigned i = 0; i < DGW_STATS_EVENT_NAMES; i++)
    full->dispatches_by_name[i] += s->dispatches_by_name[i];
  full->closes += s->closes;
  for (unsigned i = 0; i < DGW_STATS_CLOSE_CODES; i++)
    full->closes_by_code[i] += s->closes_by_code[i];
  full->rate_limit_waits += s->rate_limit_waits;
  full->identify_waits += s->identify_waits;
  full->window_sleeps += s->window_sleeps;
  full->window_wakes += s->window_wakes;
  full->windows_asleep += s->window_asleep;
  full->window_saved_bytes += s->window_saved_bytes;
  if (s->ms_since_event >= 0 &&
      (full->ms_since_event < 0 || s->ms_since_event < full->ms_since_event))
    full->ms_since_event = s->ms_since_event;
  if (s->latency_ms >= 0 && s->latency_ms > full->latency_ms_max)
    full->latency_ms_max = s->latency_ms;
}
