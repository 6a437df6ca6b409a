/*
 * redis-streams' internals shared by its files: the plugin's state, and
 * the entry pipeline (pipeline.c) that redis_streams.c (the config, the
 * dispatch and the plugin's life) feeds.  Internal to the plugin.
 */
#ifndef DGW_REDIS_STREAMS_H
#define DGW_REDIS_STREAMS_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/plugin.h>

struct commands;
struct dgw_redis;
struct entry;

/* The plugin's state, one per instance: made by streams_init
 * (redis_streams.c), freed by streams_fini. */
struct streams {
  const struct dgw_plugin_host *host;
  struct dgw_redis *redis;
  char name[128];
  int per_event;
  long long maxlen;
  /* Written once (snprintf is a fifth of an entry's cost): the stream of
   * the single layout, and maxlen in decimal. */
  char single_key[160], maxlen_s[24];
  uint32_t max_pending;
  size_t max_buffer;
  /* Entries not yet acknowledged, oldest first: those in flight are a
   * prefix; `cursor` is the first one not sent. */
  struct entry *head, *tail, *cursor;
  uint32_t in_flight;
  size_t buffered;
  /* The session id of each shard, from its READY. */
  char (*sessions)[80];
  uint32_t nsessions;
  int want_ready; /* READY itself is wanted, not only read */
  int closing;
  uint64_t stored, dropped, resent;
  int drop_logged;
  /* Exactly-once: the cluster's name (NULL: at-least-once), entries
   * skipped as already stored, refused by the fence, stored while the
   * lease key was missing, and stored without a lease at hand; each kind
   * logged once. */
  const char *cluster;
  struct shard_pos {
    uint32_t pending; /* entries of the shard queued or in flight */
    int64_t posted;   /* the s of its last entry queued */
    char sid[80];     /* and its session */
  } * shards;
  uint32_t nshards;
  struct dgw_plugin_timer *advance;
  uint64_t skipped, fenced, unleased, unfenced;
  int logged_exact, logged_skip, logged_fence, logged_unleased, logged_unfenced;
  /* Backpressure: the shards are paused while `paused`; how often, since
   * when (ms of the loop's clock), and the most bytes ever held. */
  int paused;
  uint64_t pauses;
  size_t peak_buffered;
  /* Answered entries kept for reuse, and how many. */
  struct entry *pool;
  uint32_t npool;
  /* Command streams (commands.c; docs/streams.md), when configured. */
  int want_commands;
  long long reply_ttl_ms;
  struct commands *commands;
};

/* Queues one entry of shard `shard`: the event (t, s, session, d), or with
 * `only_position` the stream's position (session, s) alone (exactly-once
 * only; without the cluster nothing is queued).  Every string is copied
 * before this returns; the entry is sent at once when the pipeline has
 * room, and the shards are paused when the bytes held reach 3/4 of
 * max_buffer_bytes.  An event that cannot be queued (no memory; a host
 * that cannot pause, over the bound) is counted in st->dropped and
 * logged. */
void pipeline_store(struct streams *st, uint32_t shard, const char *t,
                    int64_t s, const char *session, const char *d, size_t dlen,
                    int only_position);

/* Sends waiting entries while Redis is up and fewer than max_pending are
 * in flight (after the connection came back, say). */
void pipeline_flush(struct streams *st);

/* Makes st->shards[shard] exist (zeroed when new); 0, or -1 without
 * memory. */
int pipeline_grow(struct streams *st, uint32_t shard);

/* Writes `v` in decimal at `out` (24 bytes of room), NUL-terminated. */
void pipeline_put_i64(char *out, int64_t v);

/* Frees every entry, queued, in flight or pooled (st->closing set and the
 * connection freed first: no reply comes any more).  Returns how many were
 * never answered. */
uint64_t pipeline_free(struct streams *st);

#endif /* DGW_REDIS_STREAMS_H */
