/*
 * The cluster (cluster.h) on lib/redis.h: one tick every 100 ms carries
 * out the lease core's decisions (lease.h).  Per tick: drop the shards
 * whose lease deadline passed, renew what is due, flush sessions (on a new
 * session at once, the seq at least every second), beat the membership,
 * and every half second read every lease and claim or hand over shards to
 * reach this member's fair share.  Nothing here is on the event path:
 * events never wait for Redis.
 */
#include "config.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>

#include <dgw/dgw.h>

#include "client.h"
#include "client_shards.h"
#include "clock.h"
#include "cluster.h"
#include "cluster_agree.h"
#include "identify_redis.h"
#include "lease.h"
#include "policy.h"
#include "redis.h"

#define TICK_MS 100
#define SCAN_MS 500
#define FLUSH_MS 1000
#define LEAVE_MAX_MS 5000

/* Acquire: free -> ours with the next token; returns {token, sid, seq,
 * url, stored sid, stored seq} (the stored session and how far a stream
 * writer got, read in the same step: no write of the old token can land
 * after it) or {0}. */
static struct redis_script acquire_lua = REDIS_SCRIPT(
    "if redis.call('EXISTS', KEYS[1]) == 1 then return {0} end\n"
    "local t = redis.call('INCR', KEYS[2])\n"
    "redis.call('SET', KEYS[1], ARGV[1] .. ' ' .. t, 'PX', ARGV[2])\n"
    "local s = redis.call('HMGET', KEYS[3], 'sid', 'seq', 'url')\n"
    "local p = redis.call('HMGET', KEYS[4], 'sid', 'seq')\n"
    "return {t, s[1], s[2], s[3], p[1], p[2]}\n");

/* Renew: ours -> extended.  A key Redis lost (a restart without
 * persistence) is ours again unless a newer token was handed out. */
static struct redis_script renew_lua = REDIS_SCRIPT(
    "local mine = ARGV[1] .. ' ' .. ARGV[2]\n"
    "local v = redis.call('GET', KEYS[1])\n"
    "if v == mine then redis.call('PEXPIRE', KEYS[1], ARGV[3]) return 1 end\n"
    "if v then return 0 end\n"
    "local c = tonumber(redis.call('GET', KEYS[2]) or '0')\n"
    "if c > tonumber(ARGV[2]) then return 0 end\n"
    "redis.call('SET', KEYS[2], ARGV[2])\n"
    "redis.call('SET', KEYS[1], mine, 'PX', ARGV[3])\n"
    "return 1\n");

/* Save (ARGV[6] "1": and release): the session, only with the current
 * token. */
static struct redis_script save_lua = REDIS_SCRIPT(
    "if redis.call('GET', KEYS[1]) ~= ARGV[1] .. ' ' .. ARGV[2] then "
    "return 0 end\n"
    "if ARGV[3] == '' then redis.call('DEL', KEYS[2]) else\n"
    "redis.call('HSET', KEYS[2], 'sid', ARGV[3], 'seq', ARGV[4], 'url', "
    "ARGV[5], 'token', ARGV[2], 'member', ARGV[1], 'state', ARGV[7]) end\n"
    "if ARGV[6] == '1' then redis.call('DEL', KEYS[1]) end\n"
    "return 1\n");

struct cshard {
  struct dgw_lease lease;
  int claiming;  /* an acquire in flight */
  int releasing; /* handing over: closing, then the release script */
  int saving;    /* a save in flight */
  char sid[128]; /* the session last written ("" none) */
  int64_t seq;
  uint64_t saved_at;
};

struct dgw_cluster {
  struct dgw_client *c;
  struct event_base *base;
  struct dgw_redis *r;
  char *name;
  char member[128];
  struct dgw_lease_config lc;
  struct event *tick;
  uint32_t total;             /* the client's shards, 0 until known */
  uint32_t first;             /* the first one's id */
  struct cluster_agree agree; /* what the members must share */
  int refused;                /* the cluster has other numbers: idle */
  struct cshard *sh;
  uint8_t *mine, *taken;
  uint32_t *claim, *release;
  char **members;
  uint32_t nmembers;
  int rank; /* ours among the sorted members, -1 unknown */
  uint64_t started, next_beat, next_scan, hold_until;
  int beating, scanning;
  int was_up; /* Redis was up before: a reconnect may have lost keys */
  int leaving, left;
  int pending; /* releases and writes the leave waits for */
  uint64_t leave_deadline;
  int freeing;
};

/* One command in flight: what it was about. */
struct op {
  struct dgw_cluster *cl;
  uint32_t i; /* the shard's index */
  uint64_t sent;
  int release; /* a save that also ends the lease (handover) */
};

static void cl_log(struct dgw_cluster *cl, enum dgw_log_level level,
                   const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void cl_log(struct dgw_cluster *cl, enum dgw_log_level level,
                   const char *fmt, ...) {
  char line[400];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  client_log(cl->c, level, "cluster %s: %s", cl->name, line);
}

static void key(const struct dgw_cluster *cl, char *out, size_t len,
                const char *kind, uint32_t i) {
  snprintf(out, len, "dgw:{%s}:%s:%" PRIu32, cl->name, kind, cl->first + i);
}

static struct op *op_new(struct dgw_cluster *cl, uint32_t i) {
  struct op *o = calloc(1, sizeof(*o));

  if (o != NULL) {
    o->cl = cl;
    o->i = i;
    o->sent = dgw_monotonic_ms();
  }
  return o;
}

/* ------------------------------------------------------------ fence */

int cluster_fence(void *data, uint32_t shard_id) {
  struct dgw_cluster *cl = data;
  uint32_t i = shard_id - cl->first;

  if (cl->sh == NULL || i >= cl->total)
    return 0;
  if (dgw_lease_may_send(&cl->sh[i].lease, dgw_monotonic_ms()))
    return 1;
  /* Past the deadline (a woken process reads or writes before its tick
   * ran): the tick drops the shard at the next turn of the loop. */
  if (cl->sh[i].lease.held && cl->tick != NULL)
    event_active(cl->tick, EV_TIMEOUT, 1);
  return 0;
}

int cluster_lease_of(struct dgw_cluster *cl, uint32_t shard_id, char *member,
                     size_t member_size, uint64_t *token) {
  uint32_t i = shard_id - cl->first;

  if (cl->sh == NULL || i >= cl->total ||
      !dgw_lease_may_send(&cl->sh[i].lease, dgw_monotonic_ms()))
    return DGW_ERR_NOT_FOUND;
  if (strlen(cl->member) >= member_size)
    return DGW_ERR_BUFFER_TOO_SMALL;
  memcpy(member, cl->member, strlen(cl->member) + 1);
  *token = cl->sh[i].lease.token;
  return DGW_OK;
}

/* ---------------------------------------------------- sessions, saves */

static void leave_step(struct dgw_cluster *cl);

static void save_done(struct dgw_redis *r, redisReply *reply, const char *err,
                      void *data) {
  struct op *o = data;
  struct dgw_cluster *cl = o->cl;

  (void)r;
  if (!cl->freeing) {
    struct cshard *s = &cl->sh[o->i];

    s->saving = 0;
    if (err != NULL || reply == NULL || reply->type != REDIS_REPLY_INTEGER ||
        reply->integer != 1) {
      cl_log(cl, DGW_LOG_WARN, "shard %" PRIu32 ": session not written: %s",
             cl->first + o->i, err != NULL ? err : "the lease is not ours");
      if (!o->release)
        s->sid[0] = '\0'; /* write it all again next time */
    }
    if (o->release) {
      dgw_lease_lost(&s->lease);
      s->releasing = 0;
      cl->pending--;
      leave_step(cl);
    }
  }
  free(o);
}

/* Writes shard i's session (sid "" deletes it) guarded by its token;
 * `release` also removes the lease.  0 when sent. */
static int save(struct dgw_cluster *cl, uint32_t i, const char *sid,
                int64_t seq, const char *url, int release) {
  struct cshard *s = &cl->sh[i];
  char lease_key[200], sess_key[200], token[24], seqs[24];
  const char *argv[9];
  struct dgw_gateway *gw = dgw_client_gateway(cl->c, cl->first + i);
  struct op *o = op_new(cl, i);

  if (o == NULL)
    return -1;
  o->release = release;
  key(cl, lease_key, sizeof(lease_key), "lease", i);
  key(cl, sess_key, sizeof(sess_key), "session", i);
  snprintf(token, sizeof(token), "%" PRIu64, s->lease.token);
  snprintf(seqs, sizeof(seqs), "%" PRId64, seq);
  argv[0] = lease_key;
  argv[1] = sess_key;
  argv[2] = cl->member;
  argv[3] = token;
  argv[4] = sid;
  argv[5] = seqs;
  argv[6] = url != NULL ? url : "";
  argv[7] = release ? "1" : "0";
  argv[8] = release      ? "handed-over"
            : gw != NULL ? dgw_state_name(dgw_gateway_state(gw))
                         : "?";
  if (redis_eval(cl->r, &save_lua, 2, 9, argv, NULL, save_done, o) != 0) {
    free(o);
    return -1;
  }
  s->saving = 1;
  snprintf(s->sid, sizeof(s->sid), "%s", sid);
  s->seq = seq;
  s->saved_at = o->sent;
  return 0;
}

/* A new session is written at once, the seq at least every FLUSH_MS. */
static void flush(struct dgw_cluster *cl, uint32_t i, uint64_t now) {
  struct cshard *s = &cl->sh[i];
  struct dgw_gateway *gw = dgw_client_gateway(cl->c, cl->first + i);
  const char *sid = gw != NULL ? dgw_gateway_session_id(gw) : NULL;

  if (sid == NULL || s->saving || s->releasing ||
      !dgw_lease_may_send(&s->lease, now))
    return;
  if (strcmp(sid, s->sid) == 0 &&
      (dgw_gateway_sequence(gw) == s->seq || now - s->saved_at < FLUSH_MS))
    return;
  save(cl, i, sid, dgw_gateway_sequence(gw), dgw_gateway_resume_url(gw), 0);
}

/* The client handed shard `shard_id` back with its final session: write
 * it and end the lease in one step (the handover). */
static void released(struct dgw_client *c, uint32_t shard_id,
                     const struct client_shard_session *ss, void *data) {
  struct dgw_cluster *cl = data;
  uint32_t i = shard_id - cl->first;

  (void)c;
  if (cl->freeing || i >= cl->total)
    return;
  if (!cl->sh[i].lease.held ||
      save(cl, i, ss->session_id != NULL ? ss->session_id : "", ss->seq,
           ss->resume_url, 1) != 0) {
    /* Lost meanwhile, or Redis is down: the lease expires by itself and
     * the next holder resumes from the last flushed seq. */
    cl_log(cl, DGW_LOG_WARN,
           "shard %" PRIu32 ": handover not written (Redis unreachable or "
           "lease lost); it expires instead",
           shard_id);
    dgw_lease_lost(&cl->sh[i].lease);
    cl->sh[i].releasing = 0;
    cl->pending--;
    leave_step(cl);
    return;
  }
  cl_log(cl, DGW_LOG_INFO, "shard %" PRIu32 ": handed over at seq %" PRId64,
         shard_id, ss->seq);
}

static void hand_over(struct dgw_cluster *cl, uint32_t i) {
  struct cshard *s = &cl->sh[i];

  if (s->releasing || !s->lease.held)
    return;
  s->releasing = 1;
  cl->pending++;
  if (client_shard_release(cl->c, cl->first + i, released, cl) != DGW_OK) {
    s->releasing = 0;
    cl->pending--;
  }
}

/* ------------------------------------------------------------ leases */

static void acquire_done(struct dgw_redis *r, redisReply *reply,
                         const char *err, void *data) {
  struct op *o = data;
  struct dgw_cluster *cl = o->cl;
  struct cshard *s;
  struct client_shard_session ss;
  char sid[128] = "", url[512] = "";

  (void)r;
  if (cl->freeing)
    goto out;
  s = &cl->sh[o->i];
  s->claiming = 0;
  if (err != NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
      reply->elements < 1 || reply->element[0]->type != REDIS_REPLY_INTEGER ||
      reply->element[0]->integer <= 0)
    goto out; /* taken by someone else first, or Redis failed */
  dgw_lease_acquired(&s->lease, &cl->lc, o->sent,
                     (uint64_t)reply->element[0]->integer);
  memset(&ss, 0, sizeof(ss));
  if (reply->elements >= 4 && reply->element[1]->type == REDIS_REPLY_STRING &&
      reply->element[2]->type == REDIS_REPLY_STRING) {
    snprintf(sid, sizeof(sid), "%s", reply->element[1]->str);
    ss.session_id = sid;
    ss.seq = strtoll(reply->element[2]->str, NULL, 10);
    if (reply->elements >= 6 && reply->element[4]->type == REDIS_REPLY_STRING &&
        reply->element[5]->type == REDIS_REPLY_STRING) {
      /* Never past what the stream holds (docs/cluster.md). */
      int64_t at =
          dgw_lease_resume_seq(sid, ss.seq, reply->element[4]->str,
                               strtoll(reply->element[5]->str, NULL, 10));

      if (at != ss.seq)
        cl_log(cl, DGW_LOG_INFO,
               "shard %" PRIu32 ": resuming at seq %" PRId64
               " (stored in the stream), not %" PRId64,
               cl->first + o->i, at, ss.seq);
      ss.seq = at;
    }
    if (reply->element[3]->type == REDIS_REPLY_STRING &&
        reply->element[3]->str[0] != '\0') {
      snprintf(url, sizeof(url), "%s", reply->element[3]->str);
      ss.resume_url = url;
    }
    /* What Redis has is what we would write: no write until it changes. */
    snprintf(s->sid, sizeof(s->sid), "%s", sid);
    s->seq = ss.seq;
    s->saved_at = o->sent;
  } else {
    s->sid[0] = '\0';
  }
  cl_log(cl, DGW_LOG_INFO,
         "shard %" PRIu32 ": lease acquired (token %" PRIu64 ")%s",
         cl->first + o->i, s->lease.token,
         ss.session_id != NULL ? "; resuming its stored session" : "");
  if (cl->leaving ||
      client_shard_take(cl->c, cl->first + o->i,
                        ss.session_id != NULL ? &ss : NULL) != DGW_OK) {
    /* Cannot run it: give it back at once (the session unchanged). */
    s->releasing = 1;
    cl->pending++;
    if (save(cl, o->i, sid, ss.seq, ss.resume_url, 1) != 0) {
      s->releasing = 0;
      cl->pending--;
      dgw_lease_lost(&s->lease);
    }
  }
out:
  free(o);
}

static void claim(struct dgw_cluster *cl, uint32_t i) {
  char lease_key[200], token_key[200], sess_key[200], pos_key[200], ms[16];
  const char *argv[6];
  struct op *o = op_new(cl, i);

  if (o == NULL)
    return;
  key(cl, lease_key, sizeof(lease_key), "lease", i);
  key(cl, token_key, sizeof(token_key), "token", i);
  key(cl, sess_key, sizeof(sess_key), "session", i);
  key(cl, pos_key, sizeof(pos_key), "stored", i);
  snprintf(ms, sizeof(ms), "%" PRIu32, cl->lc.lease_ms);
  argv[0] = lease_key;
  argv[1] = token_key;
  argv[2] = sess_key;
  argv[3] = pos_key;
  argv[4] = cl->member;
  argv[5] = ms;
  if (redis_eval(cl->r, &acquire_lua, 4, 6, argv, NULL, acquire_done, o) == 0)
    cl->sh[i].claiming = 1;
  else
    free(o);
}

static void renew_done(struct dgw_redis *r, redisReply *reply, const char *err,
                       void *data) {
  struct op *o = data;
  struct dgw_cluster *cl = o->cl;

  (void)r;
  if (!cl->freeing) {
    struct cshard *s = &cl->sh[o->i];
    uint64_t now = dgw_monotonic_ms();

    if (err != NULL || reply == NULL || reply->type != REDIS_REPLY_INTEGER) {
      dgw_lease_renew_failed(&s->lease, &cl->lc, now);
    } else if (s->lease.held && s->lease.in_flight != 0) {
      dgw_lease_renew_answered(&s->lease, &cl->lc, reply->integer == 1, now);
      if (!s->lease.held) {
        cl_log(cl, DGW_LOG_WARN,
               "shard %" PRIu32 ": lease taken by another member; dropped",
               cl->first + o->i);
        client_shard_drop(cl->c, cl->first + o->i);
        if (s->releasing) { /* a handover it abandons: nothing to write */
          s->releasing = 0;
          cl->pending--;
          leave_step(cl);
        }
      }
    }
  }
  free(o);
}

static void renew(struct dgw_cluster *cl, uint32_t i, uint64_t now) {
  char lease_key[200], token_key[200], token[24], ms[16];
  const char *argv[5];
  struct op *o = op_new(cl, i);

  if (o == NULL)
    return;
  key(cl, lease_key, sizeof(lease_key), "lease", i);
  key(cl, token_key, sizeof(token_key), "token", i);
  snprintf(token, sizeof(token), "%" PRIu64, cl->sh[i].lease.token);
  snprintf(ms, sizeof(ms), "%" PRIu32, cl->lc.lease_ms);
  argv[0] = lease_key;
  argv[1] = token_key;
  argv[2] = cl->member;
  argv[3] = token;
  argv[4] = ms;
  o->sent = now;
  if (redis_eval(cl->r, &renew_lua, 2, 5, argv, NULL, renew_done, o) == 0)
    dgw_lease_renew_sent(&cl->sh[i].lease, now);
  else {
    dgw_lease_renew_failed(&cl->sh[i].lease, &cl->lc, now);
    free(o);
  }
}

/* ------------------------------------------------- membership, scans */

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(char *const *)a, *(char *const *)b);
}

static void free_members(struct dgw_cluster *cl) {
  for (uint32_t k = 0; k < cl->nmembers; k++)
    free(cl->members[k]);
  free(cl->members);
  cl->members = NULL;
  cl->nmembers = 0;
}

static void beat_done(struct dgw_redis *r, redisReply *reply, const char *err,
                      void *data) {
  struct dgw_cluster *cl = data;
  uint32_t old = cl->nmembers;
  char why[600];
  int agreed;

  (void)r;
  if (cl->freeing)
    return;
  cl->beating = 0;
  if (err != NULL ||
      (agreed = cluster_agree_answer(cl->c, cl->name, &cl->agree, reply, &reply,
                                     why, sizeof(why))) < 0)
    return;
  if (!agreed) { /* never a member: no share, no claim; ours dropped */
    cl->refused = 1;
    cl->rank = -1;
    for (uint32_t i = 0; i < cl->total; i++)
      if (cl->sh[i].lease.held) {
        client_shard_drop(cl->c, cl->first + i);
        dgw_lease_lost(&cl->sh[i].lease);
      }
    cluster_agree_fatal(cl->c, why);
    return;
  }
  free_members(cl);
  cl->members = calloc(reply->elements + 1, sizeof(char *));
  if (cl->members == NULL)
    return;
  for (size_t k = 0; k < reply->elements; k++)
    if (reply->element[k]->type == REDIS_REPLY_STRING &&
        (cl->members[cl->nmembers] = strdup(reply->element[k]->str)) != NULL)
      cl->nmembers++;
  qsort(cl->members, cl->nmembers, sizeof(char *), cmp_str);
  cl->rank = -1;
  for (uint32_t k = 0; k < cl->nmembers; k++)
    if (strcmp(cl->members[k], cl->member) == 0)
      cl->rank = (int)k;
  if (cl->nmembers != old)
    cl_log(cl, DGW_LOG_INFO, "%" PRIu32 " member(s); we are #%d", cl->nmembers,
           cl->rank);
}

/* Membership, with the agreement checked first (cluster_agree.h). */
static void beat(struct dgw_cluster *cl) {
  char info[160], host[100] = "?";

  gethostname(host, sizeof(host) - 1);
  snprintf(info, sizeof(info), "%s %ld", host, (long)getpid());
  if (cluster_agree_beat(cl->r, cl->name, cl->member, info, &cl->agree,
                         beat_done, cl) == 0)
    cl->beating = 1;
}

/* Every lease read at once (MGET): who holds what; then the plan. */
static void scan_done(struct dgw_redis *r, redisReply *reply, const char *err,
                      void *data) {
  struct dgw_cluster *cl = data;
  uint32_t nc = 0, nr = 0;

  (void)r;
  if (cl->freeing)
    return;
  cl->scanning = 0;
  if (err != NULL || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
      reply->elements != cl->total || cl->leaving || cl->rank < 0)
    return;
  for (uint32_t i = 0; i < cl->total; i++) {
    struct cshard *s = &cl->sh[i];

    cl->taken[i] = reply->element[i]->type == REDIS_REPLY_STRING;
    cl->mine[i] = s->lease.held || s->claiming;
    if (s->releasing)
      cl->taken[i] = 1, cl->mine[i] = 0; /* going: not ours to count */
  }
  dgw_lease_plan(cl->total, cl->nmembers, (uint32_t)cl->rank, cl->mine,
                 cl->taken, cl->claim, &nc, cl->release, &nr);
  for (uint32_t k = 0; k < nr; k++) {
    cl_log(cl, DGW_LOG_INFO, "shard %" PRIu32 ": handing over (fair share)",
           cl->first + cl->release[k]);
    hand_over(cl, cl->release[k]);
  }
  for (uint32_t k = 0; k < nc; k++)
    claim(cl, cl->claim[k]);
}

static void scan(struct dgw_cluster *cl) {
  const char **argv = calloc(cl->total + 1, sizeof(char *));
  char *keys = calloc(cl->total, 200);

  if (argv != NULL && keys != NULL) {
    argv[0] = "MGET";
    for (uint32_t i = 0; i < cl->total; i++) {
      key(cl, keys + (size_t)i * 200, 200, "lease", i);
      argv[i + 1] = keys + (size_t)i * 200;
    }
    if (redis_command_argv(cl->r, scan_done, cl, (int)cl->total + 1, argv,
                           NULL) == 0)
      cl->scanning = 1;
  }
  free(argv);
  free(keys);
}

/* The shard count is known once the client is ready. */
static int know_shards(struct dgw_cluster *cl) {
  uint32_t n;

  if (cl->total != 0)
    return 1;
  if (!client_shards_ready(cl->c) || (n = dgw_client_shard_count(cl->c)) == 0)
    return 0;
  cl->sh = calloc(n, sizeof(*cl->sh));
  cl->mine = calloc(n, 1);
  cl->taken = calloc(n, 1);
  cl->claim = calloc(n, sizeof(uint32_t));
  cl->release = calloc(n, sizeof(uint32_t));
  if (cl->sh == NULL || cl->mine == NULL || cl->taken == NULL ||
      cl->claim == NULL || cl->release == NULL)
    return 0;
  cl->first = cl->c->opt.shard_first;
  cl->total = n;
  cl->agree.first = cl->first;
  cl->agree.count = n;
  cl->agree.total = cl->c->opt.shard_total;
  cl->agree.lease_ms = cl->lc.lease_ms;
  return 1;
}

/* ---------------------------------------------------------- leaving */

static void leave_finish(struct dgw_cluster *cl) {
  char zkey[200], mkey[300];

  if (cl->left)
    return;
  cl->left = 1;
  snprintf(zkey, sizeof(zkey), "dgw:{%s}:members", cl->name);
  snprintf(mkey, sizeof(mkey), "dgw:{%s}:member:%s", cl->name, cl->member);
  redis_command(cl->r, NULL, NULL, "ZREM %s %s", zkey, cl->member);
  redis_command(cl->r, NULL, NULL, "DEL %s", mkey);
  cl_log(cl, DGW_LOG_INFO, "left the cluster");
  /* Every shard ends (dgw run waits for all CLOSED). */
  for (uint32_t i = 0; i < dgw_client_shard_count(cl->c); i++) {
    struct dgw_gateway *gw =
        dgw_client_gateway(cl->c, cl->c->opt.shard_first + i);

    if (gw != NULL)
      dgw_gateway_close(gw);
  }
}

static void leave_step(struct dgw_cluster *cl) {
  if (cl->leaving && cl->pending <= 0)
    leave_finish(cl);
}

void cluster_leave(struct dgw_cluster *cl) {
  if (cl == NULL || cl->leaving)
    return;
  cl->leaving = 1;
  cl->leave_deadline = dgw_monotonic_ms() + LEAVE_MAX_MS;
  cl_log(cl, DGW_LOG_INFO, "leaving: handing every shard over");
  for (uint32_t i = 0; i < cl->total; i++)
    hand_over(cl, i);
  leave_step(cl);
}

/* ------------------------------------------------------------- tick */

static void tick_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_cluster *cl = arg;
  struct timeval tv = dgw_timeval_ms(TICK_MS);
  uint64_t now = dgw_monotonic_ms();
  int up = redis_is_up(cl->r);

  (void)fd;
  (void)what;
  evtimer_add(cl->tick, &tv);
  if (cl->leaving && !cl->left && now >= cl->leave_deadline) {
    cl_log(cl, DGW_LOG_WARN,
           "leaving: Redis did not answer in time; the "
           "leases left expire by themselves");
    for (uint32_t i = 0; i < cl->total; i++)
      if (cl->sh[i].lease.held)
        client_shard_drop(cl->c, cl->first + i);
    leave_finish(cl);
  }
  if (cl->left || cl->refused || !know_shards(cl))
    return;
  for (uint32_t i = 0; i < cl->total; i++) {
    struct cshard *s = &cl->sh[i];

    if (dgw_lease_expired(&s->lease, now)) {
      cl_log(cl, DGW_LOG_WARN,
             "shard %" PRIu32 ": lease not renewed in time; closed at once",
             cl->first + i);
      client_shard_drop(cl->c, cl->first + i);
      dgw_lease_lost(&s->lease);
      if (s->releasing) {
        s->releasing = 0;
        cl->pending--;
      }
      continue;
    }
    if (!up)
      continue;
    if (dgw_lease_renew_due(&s->lease, now))
      renew(cl, i, now);
    flush(cl, i, now);
  }
  leave_step(cl);
  if (!up || cl->leaving)
    return;
  if (!cl->beating && now >= cl->next_beat) {
    /* Often enough that members started together see each other before
     * their first claim (hold_until). */
    cl->next_beat =
        now + (cl->lc.renew_ms < SCAN_MS ? cl->lc.renew_ms : SCAN_MS);
    beat(cl);
  }
  if (!cl->scanning && cl->rank >= 0 && now >= cl->next_scan &&
      now >= cl->hold_until) {
    cl->next_scan = now + SCAN_MS;
    scan(cl);
  }
}

static void on_up(struct dgw_redis *r, void *data) {
  struct dgw_cluster *cl = data;
  uint64_t now = dgw_monotonic_ms();

  (void)r;
  if (cl->was_up) {
    /* A restarted Redis may have lost every key: let the holders put
     * theirs back (renews recreate them) before claiming anything. */
    cl->hold_until = now + cl->lc.lease_ms;
    for (uint32_t i = 0; i < cl->total; i++)
      cl->sh[i].sid[0] = '\0'; /* write the sessions again */
    cl_log(cl, DGW_LOG_INFO, "Redis is back; no claims for %" PRIu32 " ms",
           cl->lc.lease_ms);
  } else {
    /* Members started together see each other before the first claim. */
    cl->hold_until = now + cl->lc.renew_ms;
  }
  cl->was_up = 1;
  cl->next_beat = now;
}

struct dgw_cluster *cluster_new(struct dgw_client *c, const char *url,
                                const char *name, uint32_t lease_ms, char *why,
                                size_t why_len) {
  static const struct redis_callbacks rcb = {on_up, NULL};
  struct dgw_lease_config in = {lease_ms, 0, 0, 0};
  struct dgw_cluster *cl;
  struct timeval tv = dgw_timeval_ms(TICK_MS);
  char host[64] = "host";

  if (cluster_name_check(name, why, why_len) != 0)
    return NULL;
  if ((cl = calloc(1, sizeof(*cl))) == NULL ||
      (cl->name = strdup(name)) == NULL) {
    snprintf(why, why_len, "out of memory");
    cluster_free(cl);
    return NULL;
  }
  cl->c = c;
  cl->base = c->base;
  cl->rank = -1;
  dgw_lease_config_resolve(&in, &cl->lc);
  gethostname(host, sizeof(host) - 1);
  host[sizeof(host) - 1] = '\0';
  snprintf(cl->member, sizeof(cl->member), "%s:%ld:%08x", host, (long)getpid(),
           (unsigned)(dgw_random01() * 4294967295.0));
  cl->started = dgw_monotonic_ms();
  cl->r = redis_new(c->base, url, &rcb, cl, c->opt.log, c->opt.log_user_data,
                    why, why_len);
  cl->tick = evtimer_new(c->base, tick_cb, cl);
  if (cl->r == NULL || cl->tick == NULL) {
    cluster_free(cl);
    return NULL;
  }
  evtimer_add(cl->tick, &tv);
  cl_log(cl, DGW_LOG_INFO, "member %s, leases of %" PRIu32 " ms on %s",
         cl->member, cl->lc.lease_ms, redis_describe(cl->r));
  return cl;
}

void cluster_free(struct dgw_cluster *cl) {
  if (cl == NULL)
    return;
  cl->freeing = 1;
  redis_free(cl->r); /* pending callbacks run now and see `freeing` */
  if (cl->tick != NULL)
    event_free(cl->tick);
  free_members(cl);
  free(cl->sh);
  free(cl->mine);
  free(cl->taken);
  free(cl->claim);
  free(cl->release);
  free(cl->name);
  free(cl);
}

struct dgw_identify_queue *
cluster_identify_new(struct dgw_cluster *cl,
                     const struct dgw_identify_limits *limits,
                     dgw_identify_grant_fn grant, void *user_data) {
  return dgw_identify_redis_new(cl->base, cl->r, cl->name, limits, grant,
                                user_data, cl->c->opt.log,
                                cl->c->opt.log_user_data);
}
