/*
 * redis-streams' entry pipeline: each event written in RESP as its XADD
 * (or, with the cluster, the exactly-once EVAL) into an entry kept until
 * Redis answered, entries pooled for reuse, at most max_pending in flight,
 * replies taken in order, everything in flight sent again after a dropped
 * connection, and the shards paused while too many bytes are held
 * (redis_streams.c describes the delivery promises; it configures the
 * plugin and feeds this file).
 */
#include "config.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dgw/plugin.h>

#include "redis.h"
#include "redis_streams.h"
#include "resp.h"

/* One event to store: its XADD (or EVAL) already in RESP, in the same
 * allocation (resp.h), kept until Redis answered so that it can be sent
 * again after a dropped connection. */
struct entry {
  struct entry *next;
  struct streams *st;
  int in_flight;
  size_t bytes;
  int exact; /* 1: through the script; 2: its position only (READY) */
  uint32_t shard;
  int64_t seq;
  size_t cap;     /* bytes of room in cmd */
  size_t cmd_len; /* bytes of it used */
  char cmd[];
};

/* Entries are recycled: one that was answered goes to a pool (at most
 * POOL_MAX of them) and the next event is written into it, unless it is
 * larger than POOL_ENTRY_MAX (a big GUILD_CREATE's room is given back at
 * once).  A new one has at least POOL_ENTRY_MIN bytes of room, so that
 * most events fit in any pooled one. */
#define POOL_MAX 64
#define POOL_ENTRY_MIN 2048
#define POOL_ENTRY_MAX 16384

#define MAX_ARGS 28

/* Exactly-once (with the cluster): KEYS lease:N, token:N, stored:N, the
 * stream; ARGV member, token, session, s, maxlen (0: none), then the
 * entry's fields (none: only the position, for an unwanted READY).
 * Returns 1 stored, 2 stored with the lease key missing (a Redis that lost
 * its keys; the holder's renew puts it back), 0 skipped (the stream holds
 * it: a replay after a RESUME, or a resend after a lost reply), or an
 * error "FENCED ..." (another member holds the shard, or a newer token was
 * handed out: the next holder resumes from this position and stores it).
 * Sent as EVAL, never EVALSHA: a NOSCRIPT answered to one entry while
 * another client loads the script could reorder entries, and a reordered
 * entry would be skipped as not newer. */
static const char exact_lua[] =
    "if redis.replicate_commands then redis.replicate_commands() end\n"
    "local r = 1\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "if v ~= ARGV[1] .. ' ' .. ARGV[2] then\n"
    " if v then return redis.error_reply('FENCED shard held by ' .. v) end\n"
    " if tonumber(redis.call('GET', KEYS[2]) or '0') > tonumber(ARGV[2])\n"
    " then return redis.error_reply('FENCED a newer token') end\n"
    " r = 2\n"
    "end\n"
    "local p = redis.call('HMGET', KEYS[3], 'sid', 'seq')\n"
    "if p[1] == ARGV[3] and tonumber(p[2]) >= tonumber(ARGV[4]) then\n"
    " return 0 end\n"
    "if #ARGV > 5 then\n"
    " local a = {'XADD', KEYS[4]}\n"
    " if ARGV[5] ~= '0' then a[3] = 'MAXLEN' a[4] = '~' a[5] = ARGV[5] end\n"
    " a[#a + 1] = '*'\n"
    " for i = 6, #ARGV do a[#a + 1] = ARGV[i] end\n"
    " redis.call(unpack(a))\n"
    "end\n"
    "redis.call('HSET', KEYS[3], 'sid', ARGV[3], 'seq', ARGV[4])\n"
    "return r\n";

/* Pause at 3/4 of the bound, release under 1/4: a single event larger
 * than a quarter of max_buffer_bytes can take it past the bound. */
static size_t pause_at(const struct streams *st) {
  return st->max_buffer / 4 * 3;
}

static size_t release_at(const struct streams *st) {
  return st->max_buffer / 4;
}

/* Pauses (`on`) or releases every shard of the client. */
static void hold_all(struct streams *st, int on) {
  const struct dgw_plugin_host *h = st->host;
  uint32_t n = h->shard_count(h);

  for (uint32_t i = 0; i < n; i++) {
    struct dgw_gateway *gw = h->gateway_at(h, i);
    int rv = on ? h->gateway_pause(h, gw) : h->gateway_release(h, gw);

    if (rv != DGW_OK)
      h->log(h, DGW_LOG_ERROR, "cannot %s shard %u: %s",
             on ? "pause" : "release", (unsigned)h->gateway_shard_id(gw),
             h->strerror(rv));
  }
}

/* After the bytes held changed: pause or release the shards. */
static void backpressure(struct streams *st) {
  const struct dgw_plugin_host *h = st->host;

  if (st->buffered > st->peak_buffered)
    st->peak_buffered = st->buffered;
  if (!DGW_PLUGIN_HOST_HAS(h, gateway_pause))
    return;
  if (!st->paused && st->buffered >= pause_at(st)) {
    st->paused = 1;
    st->pauses++;
    h->log(h, DGW_LOG_WARN,
           "%zu bytes held for Redis (%s): pausing the shards until it "
           "drains (pause %llu)",
           st->buffered, redis_is_up(st->redis) ? "slow" : "down",
           (unsigned long long)st->pauses);
    hold_all(st, 1);
  } else if (st->paused && st->buffered <= release_at(st)) {
    st->paused = 0;
    h->log(h, DGW_LOG_INFO,
           "Redis drained to %zu bytes: releasing the shards (peak %zu bytes "
           "held)",
           st->buffered, st->peak_buffered);
    hold_all(st, 0);
  }
}

/* An entry with room for `cmd_len` bytes: the pool's first when it is
 * large enough, else a new one; NULL without memory.  Cleared but its
 * room. */
static struct entry *entry_get(struct streams *st, size_t cmd_len) {
  struct entry *e = st->pool;
  size_t cap;

  if (e != NULL && e->cap >= cmd_len) {
    st->pool = e->next;
    st->npool--;
    cap = e->cap;
  } else {
    cap = cmd_len < POOL_ENTRY_MIN ? POOL_ENTRY_MIN : cmd_len;
    if ((e = malloc(sizeof(*e) + cap)) == NULL)
      return NULL;
  }
  memset(e, 0, sizeof(*e));
  e->cap = cap;
  return e;
}

/* Gives an answered entry back: to the pool, or freed. */
static void entry_put(struct streams *st, struct entry *e) {
  if (e->cap <= POOL_ENTRY_MAX && st->npool < POOL_MAX) {
    e->next = st->pool;
    st->pool = e;
    st->npool++;
  } else {
    free(e);
  }
}

void pipeline_put_i64(char *out, int64_t v) {
  char tmp[24];
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  size_t n = 0;

  do {
    tmp[n++] = (char)('0' + u % 10);
    u /= 10;
  } while (u > 0);
  if (v < 0)
    *out++ = '-';
  while (n > 0)
    *out++ = tmp[--n];
  *out = '\0';
}

int pipeline_grow(struct streams *st, uint32_t shard) {
  struct shard_pos *grown;

  if (shard < st->nshards)
    return 0;
  grown = realloc(st->shards, (shard + 1) * sizeof(*grown));
  if (grown == NULL)
    return -1;
  memset(grown + st->nshards, 0, (shard + 1 - st->nshards) * sizeof(*grown));
  st->shards = grown;
  st->nshards = shard + 1;
  return 0;
}

static void xadd_reply(struct dgw_redis *r, redisReply *reply, const char *err,
                       void *ud) {
  struct entry *e = ud;
  struct streams *st = e->st;

  (void)r;
  e->in_flight = 0;
  st->in_flight--;
  if (st->closing)
    return; /* fini frees the list */
  if (reply == NULL) {
    /* The connection went; every XADD in flight fails now, in order, and
     * all are sent again once it is back (at-least-once). */
    st->resent++;
    if (st->in_flight == 0)
      st->cursor = st->head;
    return;
  }
  /* Replies come in order: `e` is the head. */
  if (e->exact && err != NULL && strncmp(err, "FENCED", 6) == 0) {
    st->fenced++;
    if (!st->logged_fence++)
      st->host->log(st->host, DGW_LOG_WARN,
                    "shard %u: s %lld not stored: %s (the lease moved on; "
                    "its next holder resumes from the stream's position and "
                    "stores it); counting these",
                    (unsigned)e->shard, (long long)e->seq, err);
  } else if (err != NULL) {
    st->host->log(st->host, DGW_LOG_ERROR, "XADD refused: %s; event dropped",
                  err);
    st->dropped++;
  } else if (e->exact == 2) {
    /* the position of a READY that is not stored itself */
  } else if (e->exact && reply->type == REDIS_REPLY_INTEGER &&
             reply->integer == 0) {
    st->skipped++;
    if (!st->logged_skip++)
      st->host->log(st->host, DGW_LOG_INFO,
                    "shard %u: s %lld skipped: the stream holds it already "
                    "(replayed after a RESUME); counting these",
                    (unsigned)e->shard, (long long)e->seq);
  } else {
    st->stored++;
    if (e->exact && reply->type == REDIS_REPLY_INTEGER && reply->integer == 2 &&
        !st->logged_unleased++)
      st->host->log(st->host, DGW_LOG_INFO,
                    "shard %u: stored while its lease key is missing (just "
                    "handed over, or a Redis that lost its keys; no newer "
                    "token, so still safe; if this repeats, is \"redis\" the "
                    "cluster's Redis?)",
                    (unsigned)e->shard);
    st->unleased +=
        e->exact && reply->type == REDIS_REPLY_INTEGER && reply->integer == 2;
  }
  st->head = e->next;
  if (st->head == NULL)
    st->tail = NULL;
  if (e->exact && e->shard < st->nshards && st->shards[e->shard].pending > 0)
    st->shards[e->shard].pending--;
  if (st->cursor == e)
    st->cursor = e->next;
  st->buffered -= e->bytes;
  entry_put(st, e);
  pipeline_flush(st);
  backpressure(st);
}

void pipeline_flush(struct streams *st) {
  while (st->cursor != NULL && st->in_flight < st->max_pending &&
         redis_is_up(st->redis)) {
    struct entry *e = st->cursor;

    if (redis_command_formatted(st->redis, xadd_reply, e, e->cmd, e->cmd_len) <
        0)
      return;
    e->in_flight = 1;
    st->in_flight++;
    st->cursor = e->next;
  }
}

void pipeline_store(struct streams *st, uint32_t shard, const char *t,
                    int64_t s, const char *session, const char *d, size_t dlen,
                    int only_position) {
  const struct dgw_plugin_host *h = st->host;
  size_t tlen = strlen(t), need, cmd_len;
  const char *argv[MAX_ARGS];
  size_t len[MAX_ARGS];
  char key_buf[400], seq[24], shard_s[24], member[128];
  const char *key = st->single_key, *maxlen = st->maxlen_s;
  char lease_k[200], token_k[200], stored_k[200], token_s[24];
  uint64_t token = 0;
  struct entry *e;
  int n = 0, exact = 0;

  if (only_position && st->cluster == NULL)
    return;
  if (st->cluster != NULL) {
    exact =
        h->cluster_lease(h, shard, member, sizeof(member), &token) == DGW_OK &&
        session[0] != '\0';
    if (!exact && only_position)
      return; /* nothing to store, no position to fence */
    if (!exact && !st->logged_unfenced++)
      h->log(h, DGW_LOG_WARN,
             "shard %u: s %lld delivered without a lease or a session at "
             "hand: stored at-least-once; counting these",
             (unsigned)shard, (long long)s);
    st->unfenced += !exact;
    if (exact) {
      snprintf(lease_k, sizeof(lease_k), "dgw:{%s}:lease:%u", st->cluster,
               (unsigned)shard);
      snprintf(token_k, sizeof(token_k), "dgw:{%s}:token:%u", st->cluster,
               (unsigned)shard);
      snprintf(stored_k, sizeof(stored_k), "dgw:{%s}:stored:%u", st->cluster,
               (unsigned)shard);
      snprintf(token_s, sizeof(token_s), "%llu", (unsigned long long)token);
      if (!st->logged_exact++)
        h->log(h, DGW_LOG_INFO,
               "exactly-once: each entry stored by one script fenced by the "
               "shard's lease (cluster %s)",
               st->cluster);
    }
  }
  if (st->per_event) {
    snprintf(key_buf, sizeof(key_buf), "dgw:{%s}:events:%s", st->name, t);
    key = key_buf;
  }
  pipeline_put_i64(seq, s);
  pipeline_put_i64(shard_s, shard);
  /* The arguments point at the strings above and at `d`: each is copied
   * once, into the entry's RESP. */
#define ARG(s, l)                                                              \
  do {                                                                         \
    argv[n] = (s);                                                             \
    len[n++] = (l);                                                            \
  } while (0)
#define LIT(s) ARG((s), strlen(s))
  if (exact) {
    LIT("EVAL");
    ARG(exact_lua, sizeof(exact_lua) - 1);
    LIT("4");
    LIT(lease_k);
    LIT(token_k);
    LIT(stored_k);
    LIT(key);
    LIT(member);
    LIT(token_s);
    LIT(session);
    LIT(seq);
    LIT(st->maxlen > 0 ? maxlen : "0");
  } else {
    LIT("XADD");
    LIT(key);
    if (st->maxlen > 0) {
      LIT("MAXLEN");
      LIT("~");
      LIT(maxlen);
    }
    LIT("*");
  }
  if (!only_position) {
    LIT("t");
    ARG(t, tlen);
    LIT("s");
    LIT(seq);
    LIT("shard");
    LIT(shard_s);
    LIT("session");
    LIT(session);
    LIT("d");
    ARG(d, dlen);
  }
#undef LIT
#undef ARG
  cmd_len = resp_size(n, len);
  need = sizeof(*e) + cmd_len;
  if (!DGW_PLUGIN_HOST_HAS(h, gateway_pause) &&
      st->buffered + need > st->max_buffer) {
    /* An older host cannot hold a shard back: the old bound. */
    st->dropped++;
    if (!st->drop_logged) {
      h->log(h, DGW_LOG_ERROR,
             "%zu bytes held for Redis (max_buffer_bytes): dropping events "
             "until it catches up (this host cannot pause a shard)",
             st->buffered);
      st->drop_logged = 1;
    }
    return;
  }
  e = entry_get(st, cmd_len);
  if (e == NULL) {
    st->dropped++;
    h->log(h, DGW_LOG_ERROR, "out of memory: event s %lld of shard %u lost",
           (long long)s, (unsigned)shard);
    return;
  }
  e->st = st;
  e->bytes = need;
  e->exact = exact ? 1 + only_position : 0;
  e->shard = shard;
  e->seq = s;
  e->cmd_len = resp_write(e->cmd, n, argv, len);
  if (st->tail != NULL)
    st->tail->next = e;
  else
    st->head = e;
  st->tail = e;
  if (st->cursor == NULL)
    st->cursor = e;
  st->buffered += need;
  if (exact && pipeline_grow(st, shard) == 0) {
    st->shards[shard].pending++;
    st->shards[shard].posted = s;
    snprintf(st->shards[shard].sid, sizeof(st->shards[shard].sid), "%s",
             session);
  }
  pipeline_flush(st);
  backpressure(st);
}

uint64_t pipeline_free(struct streams *st) {
  uint64_t lost = 0;

  while (st->head != NULL) {
    struct entry *e = st->head;

    st->head = e->next;
    free(e);
    lost++;
  }
  while (st->pool != NULL) {
    struct entry *e = st->pool;

    st->pool = e->next;
    free(e);
  }
  return lost;
}
