/*
 * Quiet shards give their zlib window back (dgw_options_set_quiet_sleep):
 * the policy, on top of the decompressor's sleep (inflate.h).  A heartbeat
 * ACK that finds no dispatch for cfg.quiet_ms marks the window due; once
 * that message is handled the window is packed.  The next message with
 * bytes restores it inside the push.  ACKs are the clock: a quiet shard
 * is checked once per heartbeat and costs nothing between them.
 */
#include "config.h"

#include <stdint.h>

#include "clock.h"
#include "decomp.h"
#include "gateway_internal.h"

void shard_quiet_ack(struct dgw_gateway *gw) {
  uint64_t last = gw->counters.obs.last_event_ns;

  /* Before the first dispatch the shard is starting, not quiet. */
  if (last == 0 || gw->window_asleep)
    return;
  if (dgw_monotonic_ns() - last >= (uint64_t)gw->cfg.quiet_ms * 1000000u)
    gw->sleep_due = 1;
}

void shard_quiet_sleep(struct dgw_gateway *gw) {
  if (!gw->sleep_due)
    return;
  gw->sleep_due = 0;
  /* DGW_ERR_AGAIN (mid-payload, zstd, a small window) and DGW_ERR_NOMEM
   * leave the stream awake and whole: it is tried again at a later ACK. */
  if (dgw_decomp_sleep(gw->z, gw->cfg.sleeper) == DGW_OK) {
    gw->window_asleep = 1;
    gw->counters.window_sleeps++;
  }
}
