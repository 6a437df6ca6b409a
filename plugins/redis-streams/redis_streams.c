/*
 * redis-streams: XADDs each wanted DISPATCH event to a Redis stream, on
 * the client's own loop (hiredis's libevent adapter, no threads):
 *
 *   XADD dgw:{NAME}:events MAXLEN ~ 1000000 * t MESSAGE_CREATE s 42
 *        shard 0 session SESSION_ID d <the raw bytes of d>
 *
 * `d` is the exact bytes the gateway sent (never parsed or re-encoded).
 * The command is written in RESP by the plugin (resp.c) into the entry
 * it keeps until Redis answered, and handed to hiredis as it is: `d` is
 * copied once here, once into hiredis's output buffer.
 * Config (docs/redis.md, "The redis-streams plugin"):
 *
 *   {"redis": "redis://HOST:PORT/DB" or "unix:///path",  required
 *    "name": "mybot",                the keys' hash tag; default "dgw"
 *    "layout": "single",             or "per-event": ...:events:{T}
 *    "events": ["MESSAGE_CREATE"],   default: every event
 *    "maxlen": 1000000,              approximate trimming; 0: none
 *    "max_pending": 1000,            XADDs in flight at most
 *    "max_buffer_bytes": 67108864}   bytes held at most: shards pause
 *
 * Delivery without the cluster is at-least-once: an XADD whose connection
 * dropped before its reply is sent again, so a consumer deduplicates on
 * (session, s).  Nothing is dropped for want of room: when the bytes held
 * for Redis (in flight or waiting) reach 3/4 of max_buffer_bytes, every
 * shard is paused (host->gateway_pause: it reads no more; the kernel's
 * buffers hold the rest; a pause longer than a heartbeat interval closes
 * the connection keeping the session, and Discord replays on RESUME), and
 * released when they are back under 1/4.  Each pause is logged and
 * counted.
 *
 * With the cluster on (host->cluster_name), delivery is exactly-once: each
 * entry goes through one Lua script (EVAL, below) that checks the shard's
 * lease is still this member's with the token the event was delivered
 * under, skips it when dgw:{NAME}:stored:N already holds its (session, s)
 * or a later s of that session, and otherwise XADDs it and stores
 * (session, s), in one step.  A member that takes the shard over resumes
 * no later than that position (lib/cluster.c), so a kill -9 loses nothing
 * and repeats nothing in the stream (docs/cluster.md).
 */
#include "config.h"

#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <dgw/plugin.h>

#include "commands.h"
#include "redis.h"
#include "resp.h"
#include "why.h"

#define DEFAULT_MAXLEN 1000000
#define DEFAULT_MAX_PENDING 1000
#define DEFAULT_MAX_BUFFER (64u * 1024 * 1024)

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

/* The plugin's own copy of lib/redis_url.c needs this one helper. */
void dgw_set_why(char *why, size_t why_size, const char *fmt, ...) {
  va_list ap;

  if (why == NULL || why_size == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(why, why_size, fmt, ap);
  va_end(ap);
}

static void flush(struct streams *st);

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

/* Writes `v` in decimal at `out` (24 bytes of room), NUL-terminated. */
static void put_i64(char *out, int64_t v) {
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

/* Makes st->shards[shard] exist; 0, or -1 without memory. */
static int grow(struct streams *st, uint32_t shard) {
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
  flush(st);
  backpressure(st);
}

/* Sends waiting entries while Redis is up and the pipeline has room. */
static void flush(struct streams *st) {
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

static void on_up(struct dgw_redis *r, void *ud) {
  struct streams *st = ud;

  (void)r;
  if (st->drop_logged || st->head != NULL)
    st->host->log(st->host, DGW_LOG_INFO,
                  "Redis is up: sending %zu buffered bytes", st->buffered);
  st->drop_logged = 0;
  flush(st);
}

static void on_down(struct dgw_redis *r, const char *cause, void *ud) {
  struct streams *st = ud;

  (void)r;
  st->host->log(st->host, DGW_LOG_WARN,
                "Redis down (%s): holding events, up to %zu bytes", cause,
                st->max_buffer);
}

static void remember_session(struct streams *st, uint32_t shard,
                             const struct dgw_event *ev) {
  const struct dgw_plugin_host *h = st->host;
  size_t len, n_out;
  const char *d = h->event_data(ev, &len);

  if (shard >= st->nsessions) {
    uint32_t n = shard + 1;
    char(*grown)[80] = realloc(st->sessions, n * sizeof(*st->sessions));

    if (grown == NULL)
      return;
    memset(grown + st->nsessions, 0,
           (n - st->nsessions) * sizeof(*st->sessions));
    st->sessions = grown;
    st->nsessions = n;
  }
  if (!DGW_PLUGIN_HOST_HAS(h, field_string) ||
      h->field_string(d, len, "/session_id", st->sessions[shard],
                      sizeof(st->sessions[shard]), &n_out) != DGW_OK)
    st->sessions[shard][0] = '\0';
}

/* Queues one entry of shard `shard`: the event (t, s, session, d), or with
 * `only_position` the stream's position (session, s) alone (exactly-once
 * only; without the cluster nothing is queued). */
static void store(struct streams *st, uint32_t shard, const char *t, int64_t s,
                  const char *session, const char *d, size_t dlen,
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
  put_i64(seq, s);
  put_i64(shard_s, shard);
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
  if (exact && grow(st, shard) == 0) {
    st->shards[shard].pending++;
    st->shards[shard].posted = s;
    snprintf(st->shards[shard].sid, sizeof(st->shards[shard].sid), "%s",
             session);
  }
  flush(st);
  backpressure(st);
}

static void on_dispatch(void *state, struct dgw_gateway *gw,
                        const struct dgw_event *ev) {
  struct streams *st = state;
  const struct dgw_plugin_host *h = st->host;
  const char *t = h->event_name(ev);
  uint32_t shard = h->event_shard(ev);
  size_t dlen;
  const char *d = h->event_data(ev, &dlen);
  const char *session = NULL;
  int only_position = 0;

  if (strcmp(t, "READY") == 0) {
    remember_session(st, shard, ev);
    /* Unwanted, it still moves the position to the new session. */
    only_position = !st->want_ready;
  }
  if (DGW_PLUGIN_HOST_HAS(h, gateway_session_id) && gw != NULL)
    session = h->gateway_session_id(gw);
  if (session == NULL)
    session = shard < st->nsessions ? st->sessions[shard] : "";
  store(st, shard, t, h->event_seq(ev), session, d, dlen, only_position);
}

/* Every second (exactly-once only): a shard whose events went by unwanted
 * (an "events" list) and that has nothing queued here has its position
 * moved to the seq it delivered, so that a takeover does not resume from
 * the last wanted event (a long replay, or a new session past Discord's
 * replay window).  Everything up to that seq that was wanted is stored:
 * delivery to on_dispatch is synchronous and nothing of the shard waits. */
static void advance(void *arg) {
  struct streams *st = arg;
  const struct dgw_plugin_host *h = st->host;
  uint32_t count = h->shard_count(h);
  char member[128];
  uint64_t token;

  for (uint32_t i = 0; i < count && !st->closing; i++) {
    struct dgw_gateway *gw = h->gateway_at(h, i);
    uint32_t shard;
    const char *sid;
    int64_t seq;

    if (gw == NULL)
      continue;
    shard = h->gateway_shard_id(gw);
    sid = h->gateway_session_id(gw);
    seq = h->gateway_sequence(gw);
    if (sid == NULL || seq <= 0 || grow(st, shard) != 0 ||
        st->shards[shard].pending > 0 ||
        (seq <= st->shards[shard].posted &&
         strcmp(sid, st->shards[shard].sid) == 0) ||
        h->cluster_lease(h, shard, member, sizeof(member), &token) != DGW_OK)
      continue;
    store(st, shard, "", seq, sid, "", 0, 1);
  }
}

/* Reads an integer config item in [lo, hi]; 0 (absent is fine) or -1. */
static int get_int(const struct dgw_plugin_host *h, struct json_object *cfg,
                   const char *k, long long lo, long long hi, long long *out) {
  struct json_object *v;

  if (!json_object_object_get_ex(cfg, k, &v))
    return 0;
  if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < lo ||
      json_object_get_int64(v) > hi) {
    h->log(h, DGW_LOG_ERROR,
           "config: \"%s\" must be an integer from %lld to "
           "%lld",
           k, lo, hi);
    return -1;
  }
  *out = json_object_get_int64(v);
  return 0;
}

static int configure(struct streams *st, const char *config_json,
                     const char **url) {
  const struct dgw_plugin_host *h = st->host;
  static const char *const known[] = {
      "redis",        "name",        "layout",           "events",
      "maxlen",       "max_pending", "max_buffer_bytes", "commands",
      "reply_ttl_ms", NULL};
  struct json_object *cfg = json_tokener_parse(config_json), *v;
  long long pending = DEFAULT_MAX_PENDING, buffer = DEFAULT_MAX_BUFFER;
  int subscribed = 0, rv = -1;

  if (!json_object_is_type(cfg, json_type_object)) {
    h->log(h, DGW_LOG_ERROR, "config must be a JSON object");
    goto out;
  }
  json_object_object_foreach(cfg, k, val) {
    int ok = 0;

    (void)val;
    for (int i = 0; known[i] != NULL; i++)
      ok |= strcmp(k, known[i]) == 0;
    if (!ok) {
      h->log(h, DGW_LOG_ERROR, "config: unknown key \"%s\"", k);
      goto out;
    }
  }
  if (!json_object_object_get_ex(cfg, "redis", &v) ||
      !json_object_is_type(v, json_type_string)) {
    h->log(h, DGW_LOG_ERROR, "config: \"redis\" (a Redis URL) is required");
    goto out;
  }
  *url = json_object_get_string(v);
  snprintf(st->name, sizeof(st->name), "dgw");
  if (json_object_object_get_ex(cfg, "name", &v)) {
    const char *name = json_object_get_string(v);

    if (!json_object_is_type(v, json_type_string) || name[0] == '\0' ||
        strlen(name) >= sizeof(st->name) || strpbrk(name, "{}") != NULL) {
      h->log(h, DGW_LOG_ERROR,
             "config: \"name\" must be a non-empty string without braces");
      goto out;
    }
    snprintf(st->name, sizeof(st->name), "%s", name);
  }
  if (DGW_PLUGIN_HOST_HAS(h, gateway_session_id) &&
      (st->cluster = h->cluster_name(h)) != NULL) {
    /* The script touches the stream and the lease in one step: one hash
     * tag, one Redis Cluster slot. */
    if (json_object_object_get_ex(cfg, "name", &v) &&
        strcmp(st->name, st->cluster) != 0) {
      h->log(h, DGW_LOG_ERROR,
             "config: \"name\" must be the cluster's name \"%s\" (or "
             "left out) when the cluster is on",
             st->cluster);
      goto out;
    }
    snprintf(st->name, sizeof(st->name), "%s", st->cluster);
  }
  if (json_object_object_get_ex(cfg, "layout", &v)) {
    const char *l = json_object_get_string(v);

    if (strcmp(l, "single") == 0)
      st->per_event = 0;
    else if (strcmp(l, "per-event") == 0)
      st->per_event = 1;
    else {
      h->log(h, DGW_LOG_ERROR,
             "config: \"layout\" must be \"single\" or \"per-event\"");
      goto out;
    }
  }
  st->maxlen = DEFAULT_MAXLEN;
  if (get_int(h, cfg, "maxlen", 0, INT64_MAX, &st->maxlen) < 0 ||
      get_int(h, cfg, "max_pending", 1, 1000000, &pending) < 0 ||
      get_int(h, cfg, "max_buffer_bytes", 4096, INT64_MAX, &buffer) < 0)
    goto out;
  st->reply_ttl_ms = 600000;
  if (get_int(h, cfg, "reply_ttl_ms", 1000, INT64_MAX, &st->reply_ttl_ms) < 0)
    goto out;
  if (json_object_object_get_ex(cfg, "commands", &v)) {
    if (!json_object_is_type(v, json_type_boolean)) {
      h->log(h, DGW_LOG_ERROR, "config: \"commands\" must be true or false");
      goto out;
    }
    st->want_commands = json_object_get_boolean(v);
  }
  st->max_pending = (uint32_t)pending;
  st->max_buffer = (size_t)buffer;
  if (json_object_object_get_ex(cfg, "events", &v)) {
    if (!json_object_is_type(v, json_type_array)) {
      h->log(h, DGW_LOG_ERROR, "config: \"events\" must be an array");
      goto out;
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
      struct json_object *e = json_object_array_get_idx(v, i);

      if (!json_object_is_type(e, json_type_string) ||
          h->subscribe(h, json_object_get_string(e)) != DGW_OK) {
        h->log(h, DGW_LOG_ERROR, "config: events[%zu] is not an event name", i);
        goto out;
      }
      if (strcmp(json_object_get_string(e), "READY") == 0 ||
          strcmp(json_object_get_string(e), "*") == 0)
        st->want_ready = 1;
      subscribed = 1;
    }
  }
  if (!subscribed) {
    if (h->subscribe(h, "*") != DGW_OK)
      goto out;
    st->want_ready = 1;
  }
  /* READY carries the session id every entry names. */
  if (!st->want_ready && h->subscribe(h, "READY") != DGW_OK)
    goto out;
  snprintf(st->single_key, sizeof(st->single_key), "dgw:{%s}:events", st->name);
  put_i64(st->maxlen_s, st->maxlen);
  rv = 0;
out:
  if (rv == 0)
    *url = strdup(*url);
  json_object_put(cfg);
  return rv;
}

static void redis_log(enum dgw_log_level level, const char *msg, void *ud) {
  struct streams *st = ud;

  st->host->log(st->host, level, "%s", msg);
}

static int streams_init(const struct dgw_plugin_host *host,
                        const char *config_json, void **state) {
  struct streams *st = calloc(1, sizeof(*st));
  static const struct redis_callbacks cb = {on_up, on_down};
  const char *url = NULL;
  char why[300];

  if (st == NULL)
    return -1;
  st->host = host;
  if (configure(st, config_json, &url) != 0) {
    free(st);
    return -1;
  }
  st->redis =
      redis_new(host->base, url, &cb, st, redis_log, st, why, sizeof(why));
  if (st->redis == NULL) {
    host->log(host, DGW_LOG_ERROR, "config: \"redis\": %s", why);
    free((char *)url);
    free(st);
    return -1;
  }
  if (st->want_commands && (st->commands = commands_new(
                                host, url, st->name, (uint64_t)st->reply_ttl_ms,
                                why, sizeof(why))) == NULL) {
    host->log(host, DGW_LOG_ERROR, "config: \"commands\": %s", why);
    redis_free(st->redis);
    free((char *)url);
    free(st);
    return -1;
  }
  host->log(host, DGW_LOG_INFO, "storing events in %s, %s",
            redis_describe(st->redis),
            st->per_event ? "one stream per event" : "one stream");
  free((char *)url);
  if (st->cluster != NULL &&
      (st->advance = host->timer_add(host, 1000, 1, advance, st)) == NULL)
    host->log(host, DGW_LOG_WARN,
              "no timer: the stream's position moves only with stored "
              "events");
  *state = st;
  return 0;
}

static void streams_fini(void *state) {
  struct streams *st = state;
  uint64_t lost = 0;

  st->closing = 1;
  commands_free(st->commands);
  redis_free(st->redis);
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
  st->host->log(st->host,
                lost > 0 || st->dropped > 0 ? DGW_LOG_WARN : DGW_LOG_INFO,
                "%llu events stored, %llu dropped, %llu not yet stored at "
                "exit, %llu XADDs sent again, %llu pauses, peak %zu bytes "
                "held",
                (unsigned long long)st->stored, (unsigned long long)st->dropped,
                (unsigned long long)lost, (unsigned long long)st->resent,
                (unsigned long long)st->pauses, st->peak_buffered);
  if (st->cluster != NULL)
    st->host->log(
        st->host, DGW_LOG_INFO,
        "exactly-once: %llu skipped as already stored, %llu fenced, "
        "%llu stored with the lease key missing, %llu stored "
        "without a lease at hand",
        (unsigned long long)st->skipped, (unsigned long long)st->fenced,
        (unsigned long long)st->unleased, (unsigned long long)st->unfenced);
  free(st->sessions);
  free(st->shards);
  free(st);
}

static const struct dgw_plugin descriptor = {
    .abi = DGW_PLUGIN_ABI,
    .size = sizeof(struct dgw_plugin),
    .name = "redis-streams",
    .version = "0.2.0",
    .description =
        "XADDs events (raw d) to Redis streams: at-least-once, no loss; "
        "exactly-once with the cluster",
    .events = NULL, /* from the config, in init */
    .init = streams_init,
    .on_dispatch = on_dispatch,
    .on_lifecycle = NULL,
    .fini = streams_fini,
};

const struct dgw_plugin *dgw_plugin_describe(void) {
  return &descriptor;
}
