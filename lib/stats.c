/*
 * The fixed tables of the statistics: known event names, close codes and
 * histogram bounds, and the lookups the hot paths use.  The tables only
 * ever grow into their spare slots, so a slot's meaning never changes.
 */
#include "config.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

#include "stats.h"

/* Sorted (strcmp order) for bsearch; slot = position + 1 (0 is "other"). */
static const char *const names[] = {
    "APPLICATION_COMMAND_PERMISSIONS_UPDATE",
    "AUTO_MODERATION_ACTION_EXECUTION",
    "AUTO_MODERATION_RULE_CREATE",
    "AUTO_MODERATION_RULE_DELETE",
    "AUTO_MODERATION_RULE_UPDATE",
    "CHANNEL_CREATE",
    "CHANNEL_DELETE",
    "CHANNEL_INFO",
    "CHANNEL_PINS_UPDATE",
    "CHANNEL_UPDATE",
    "ENTITLEMENT_CREATE",
    "ENTITLEMENT_DELETE",
    "ENTITLEMENT_UPDATE",
    "GUILD_AUDIT_LOG_ENTRY_CREATE",
    "GUILD_BAN_ADD",
    "GUILD_BAN_REMOVE",
    "GUILD_CREATE",
    "GUILD_DELETE",
    "GUILD_EMOJIS_UPDATE",
    "GUILD_INTEGRATIONS_UPDATE",
    "GUILD_MEMBERS_CHUNK",
    "GUILD_MEMBER_ADD",
    "GUILD_MEMBER_REMOVE",
    "GUILD_MEMBER_UPDATE",
    "GUILD_ROLE_CREATE",
    "GUILD_ROLE_DELETE",
    "GUILD_ROLE_UPDATE",
    "GUILD_SCHEDULED_EVENT_CREATE",
    "GUILD_SCHEDULED_EVENT_DELETE",
    "GUILD_SCHEDULED_EVENT_UPDATE",
    "GUILD_SCHEDULED_EVENT_USER_ADD",
    "GUILD_SCHEDULED_EVENT_USER_REMOVE",
    "GUILD_SOUNDBOARD_SOUNDS_UPDATE",
    "GUILD_SOUNDBOARD_SOUND_CREATE",
    "GUILD_SOUNDBOARD_SOUND_DELETE",
    "GUILD_SOUNDBOARD_SOUND_UPDATE",
    "GUILD_STICKERS_UPDATE",
    "GUILD_UPDATE",
    "INTEGRATION_CREATE",
    "INTEGRATION_DELETE",
    "INTEGRATION_UPDATE",
    "INTERACTION_CREATE",
    "INVITE_CREATE",
    "INVITE_DELETE",
    "MESSAGE_CREATE",
    "MESSAGE_DELETE",
    "MESSAGE_DELETE_BULK",
    "MESSAGE_POLL_VOTE_ADD",
    "MESSAGE_POLL_VOTE_REMOVE",
    "MESSAGE_REACTION_ADD",
    "MESSAGE_REACTION_REMOVE",
    "MESSAGE_REACTION_REMOVE_ALL",
    "MESSAGE_REACTION_REMOVE_EMOJI",
    "MESSAGE_UPDATE",
    "PRESENCE_UPDATE",
    "READY",
    "RESUMED",
    "SOUNDBOARD_SOUNDS",
    "STAGE_INSTANCE_CREATE",
    "STAGE_INSTANCE_DELETE",
    "STAGE_INSTANCE_UPDATE",
    "SUBSCRIPTION_CREATE",
    "SUBSCRIPTION_DELETE",
    "SUBSCRIPTION_UPDATE",
    "THREAD_CREATE",
    "THREAD_DELETE",
    "THREAD_LIST_SYNC",
    "THREAD_MEMBERS_UPDATE",
    "THREAD_MEMBER_UPDATE",
    "THREAD_UPDATE",
    "TYPING_START",
    "USER_UPDATE",
    "VOICE_CHANNEL_EFFECT_SEND",
    "VOICE_SERVER_UPDATE",
    "VOICE_STATE_UPDATE",
    "WEBHOOKS_UPDATE",
};
#define NNAMES (sizeof(names) / sizeof(names[0]))

/* Slot = position + 1 (0 is "other"). */
static const int codes[] = {1000, 1001, 1006, 1011, 4000, 4001,
                            4002, 4003, 4004, 4005, 4007, 4008,
                            4009, 4010, 4011, 4012, 4013, 4014};
#define NCODES (sizeof(codes) / sizeof(codes[0]))

const double stats_latency_bounds_ms[DGW_STATS_LATENCY_BUCKETS] = {
    5, 10, 25, 50, 100, 250, 500, 1000, 2500, INFINITY};
const double stats_handler_bounds_us[DGW_STATS_HANDLER_BUCKETS] = {
    10, 50, 100, 500, 1000, 5000, 10000, 50000, 100000, INFINITY};

static int cmp_name(const void *key, const void *elem) {
  return strcmp(key, *(const char *const *)elem);
}

unsigned stats_name_slot(const char *name) {
  const char *const *hit;

  if (name == NULL)
    return 0;
  hit = bsearch(name, names, NNAMES, sizeof(names[0]), cmp_name);
  return hit == NULL ? 0 : (unsigned)(hit - names) + 1;
}

unsigned stats_close_slot(int code) {
  for (unsigned i = 0; i < NCODES; i++)
    if (codes[i] == code)
      return i + 1;
  return 0;
}

unsigned stats_bucket(const double *bounds, unsigned n, double value) {
  for (unsigned i = 0; i + 1 < n; i++)
    if (value <= bounds[i])
      return i;
  return n - 1;
}

void stats_latency(struct stats_shard *s, double ms) {
  s->latency_hist[stats_bucket(stats_latency_bounds_ms,
                               DGW_STATS_LATENCY_BUCKETS, ms)]++;
  s->latency_sum_ms += ms;
  s->latency_count++;
}

const char *dgw_stats_event_name(unsigned slot) {
  if (slot == 0)
    return "other";
  if (slot - 1 < NNAMES)
    return names[slot - 1];
  return NULL;
}

int dgw_stats_close_code(unsigned slot) {
  if (slot >= 1 && slot - 1 < NCODES)
    return codes[slot - 1];
  return slot == 0 ? 0 : -1;
}

double dgw_stats_latency_bound_ms(unsigned bucket) {
  return bucket < DGW_STATS_LATENCY_BUCKETS ? stats_latency_bounds_ms[bucket]
                                            : -1.0;
}

double dgw_stats_handler_bound_us(unsigned bucket) {
  return bucket < DGW_STATS_HANDLER_BUCKETS ? stats_handler_bounds_us[bucket]
                                            : -1.0;
}

void stats_fill_shard(struct dgw_shard_stats *out, const struct stats_shard *s,
                      uint64_t now_ns) {
  out->frames_in = s->frames_in;
  out->bytes_wire = s->bytes_wire;
  out->bytes_inflated = s->bytes_inflated;
  memcpy(out->dispatches_by_name, s->by_name, sizeof(s->by_name));
  out->closes = 0;
  for (unsigned i = 0; i < DGW_STATS_CLOSE_CODES; i++)
    out->closes += s->closes_by_code[i];
  memcpy(out->closes_by_code, s->closes_by_code, sizeof(s->closes_by_code));
  out->rate_limit_waits = s->rate_limit_waits;
  out->identify_waits = s->identify_waits;
  if (s->last_event_ns == 0)
    out->ms_since_event = -1;
  else if (now_ns > s->last_event_ns)
    out->ms_since_event = (int64_t)((now_ns - s->last_event_ns) / 1000000u);
  else
    out->ms_since_event = 0;
  memcpy(out->latency_hist, s->latency_hist, sizeof(s->latency_hist));
  out->latency_sum_ms = s->latency_sum_ms;
  out->latency_count = s->latency_count;
}
