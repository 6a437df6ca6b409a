/*
 * The members' agreement on the shard range, the shard total and the
 * lease (cluster_agree.h): the membership beat's script, which checks
 * dgw:{NAME}:config before adding the member, and the reading of its
 * answer.
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

#include "client.h"
#include "cluster_agree.h"
#include "redis.h"

/* KEYS: members zset, this member's key, the config hash.  ARGV: member,
 * lease_ms, "host pid", first, count, total, the session keys' prefix.
 * Prune the expired members; a stored config that differs while another
 * member is alive refuses us ({'refused', first, count, total, lease_ms,
 * a live member}); otherwise ours is the config (written when absent or
 * different: no one else is alive) and we are a member for lease_ms
 * ({'ok', {members}}, and the old numbers after them when they were
 * replaced).  Other shard numbers make the stored sessions of the old
 * range wrong to RESUME (their shard tuple is the old one): deleted, in
 * the name's slot.  The fencing tokens stay (they only ever grow). */
static struct redis_script agree_lua = REDIS_SCRIPT(
    "local t = redis.call('TIME')\n"
    "local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)\n"
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    "local other = nil\n"
    "for _, m in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do\n"
    "  if m ~= ARGV[1] then other = m break end\n"
    "end\n"
    "local c = redis.call('HMGET', KEYS[3], 'first', 'count', 'total', "
    "'lease_ms')\n"
    "local same = c[1] == ARGV[4] and c[2] == ARGV[5] and c[3] == ARGV[6] "
    "and c[4] == ARGV[2]\n"
    "if not same then\n"
    "  if c[1] and other then\n"
    "    return {'refused', c[1], c[2] or '', c[3] or '', c[4] or '', other}\n"
    "  end\n"
    "  if c[1] and (c[1] ~= ARGV[4] or c[2] ~= ARGV[5] or c[3] ~= ARGV[6]) "
    "then\n"
    "    for i = tonumber(c[1]), tonumber(c[1]) + tonumber(c[2] or '0') - 1 "
    "do\n"
    "      redis.call('DEL', ARGV[7] .. i)\n"
    "    end\n"
    "  end\n"
    "  redis.call('HSET', KEYS[3], 'first', ARGV[4], 'count', ARGV[5], "
    "'total', ARGV[6], 'lease_ms', ARGV[2], 'member', ARGV[1], 'since', "
    "now)\n"
    "end\n"
    "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
    "redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[2])\n"
    "local live = redis.call('ZRANGE', KEYS[1], 0, -1)\n"
    "if c[1] and not same then return {'ok', live, c[1], c[2] or '', "
    "c[3] or '', c[4] or ''} end\n"
    "return {'ok', live}\n");

void cluster_agree_describe(const struct cluster_agree *a, char *out,
                            size_t len) {
  snprintf(out, len,
           "shards %" PRIu32 "-%" PRIu32 " of %" PRIu32 ", lease_ms %" PRIu32,
           a->first, a->first + a->count - 1, a->total, a->lease_ms);
}

int cluster_agree_beat(struct dgw_redis *r, const char *name,
                       const char *member, const char *info,
                       const struct cluster_agree *mine, redis_reply_fn fn,
                       void *data) {
  char zkey[200], mkey[300], ckey[200], ms[16], first[16], count[16], total[16],
      sess[200];
  const char *argv[10];

  snprintf(zkey, sizeof(zkey), "dgw:{%s}:members", name);
  snprintf(mkey, sizeof(mkey), "dgw:{%s}:member:%s", name, member);
  snprintf(ckey, sizeof(ckey), "dgw:{%s}:config", name);
  snprintf(ms, sizeof(ms), "%" PRIu32, mine->lease_ms);
  snprintf(first, sizeof(first), "%" PRIu32, mine->first);
  snprintf(count, sizeof(count), "%" PRIu32, mine->count);
  snprintf(total, sizeof(total), "%" PRIu32, mine->total);
  snprintf(sess, sizeof(sess), "dgw:{%s}:session:", name);
  argv[0] = zkey;
  argv[1] = mkey;
  argv[2] = ckey;
  argv[3] = member;
  argv[4] = ms;
  argv[5] = info;
  argv[6] = first;
  argv[7] = count;
  argv[8] = total;
  argv[9] = sess;
  return redis_eval(r, &agree_lua, 3, 10, argv, NULL, fn, data);
}

static uint32_t num(const redisReply *e) {
  return e->type == REDIS_REPLY_STRING ? (uint32_t)strtoul(e->str, NULL, 10)
                                       : 0;
}

/* The stored numbers, from the four elements of the answer at `at`, and
 * both sides described into `a` (ours) and `b` (theirs). */
static void theirs_from(const redisReply *reply, size_t at,
                        const struct cluster_agree *mine,
                        struct cluster_agree *theirs, char *a, char *b,
                        size_t len) {
  theirs->first = num(reply->element[at]);
  theirs->count = num(reply->element[at + 1]);
  theirs->total = num(reply->element[at + 2]);
  theirs->lease_ms = num(reply->element[at + 3]);
  cluster_agree_describe(mine, a, len);
  cluster_agree_describe(theirs, b, len);
}

int cluster_agree_answer(struct dgw_client *c, const char *name,
                         const struct cluster_agree *mine, redisReply *reply,
                         redisReply **members, char *why, size_t why_len) {
  struct cluster_agree theirs;
  char a[96], b[96];

  if (reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
      reply->elements < 2 || reply->element[0]->type != REDIS_REPLY_STRING)
    return -1;
  if (strcmp(reply->element[0]->str, "ok") == 0) {
    if (reply->element[1]->type != REDIS_REPLY_ARRAY)
      return -1;
    *members = reply->element[1];
    if (reply->elements >= 6) {
      theirs_from(reply, 2, mine, &theirs, a, b, sizeof(a));
      client_log(c, DGW_LOG_WARN,
                 "cluster %s: no other member is alive: the cluster's "
                 "numbers change from %s to this member's %s%s",
                 name, b, a,
                 theirs.first != mine->first || theirs.count != mine->count ||
                         theirs.total != mine->total
                     ? " (the old shards' stored sessions are dropped)"
                     : "");
    }
    return 1;
  }
  if (strcmp(reply->element[0]->str, "refused") != 0 || reply->elements < 6)
    return -1;
  theirs_from(reply, 1, mine, &theirs, a, b, sizeof(a));
  snprintf(why, why_len,
           "cluster %s: this member has %s; the cluster has %s (member %s); "
           "refusing to run shards (to change them, stop every member, then "
           "start them all with the new numbers)",
           name, a, b,
           reply->element[5]->type == REDIS_REPLY_STRING
               ? reply->element[5]->str
               : "?");
  client_log(c, DGW_LOG_ERROR, "%s", why);
  return 0;
}

int cluster_agree_fatal(struct dgw_client *c, const char *why) {
  client_enter(c);
  if (c->cb.on_client_fatal != NULL && !client_dying(c))
    c->cb.on_client_fatal(c, DGW_ERR_INVALID_ARGUMENT, why, c->user_data);
  return client_leave(c);
}
