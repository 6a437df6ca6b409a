/*
 * What the members of a cluster must agree on (docs/cluster.md,
 * "Agreement"): the shard range (first shard and count), the shard total
 * of the IDENTIFY tuple and the lease.  Every member's lease plan splits
 * shards first .. first+count-1 among the members by rank, and Discord
 * routes a guild to shard (guild_id >> 22) % total: a member with other
 * numbers would claim shards the others do not know and split guilds
 * wrongly.  Internal to cluster.c; built only with hiredis.
 *
 * The check rides on the membership beat: one script prunes the expired
 * members, compares this member's numbers with dgw:{NAME}:config (a hash)
 * and only then adds the member.  With no config stored, or no other live
 * member, this member's numbers are written (a fresh start, or every old
 * member gone after a reconfiguration); otherwise a difference refuses
 * the member, which is never added.
 */
#ifndef DGW_CLUSTER_AGREE_H
#define DGW_CLUSTER_AGREE_H

#include <stddef.h>
#include <stdint.h>

#include "redis.h"

struct dgw_client;

/* The numbers agreed on. */
struct cluster_agree {
  uint32_t first, count, total; /* shards first..first+count-1 of total */
  uint32_t lease_ms;
};

/* Sends the beat of member `member` (with `info`, "host pid", for its
 * member key) in cluster `name`: prune, check `mine`, and on agreement
 * add the member for lease_ms.  `fn` gets the reply for
 * cluster_agree_answer().  0 when sent. */
int cluster_agree_beat(struct dgw_redis *r, const char *name,
                       const char *member, const char *info,
                       const struct cluster_agree *mine, redis_reply_fn fn,
                       void *data);

/* Reads a beat's reply.  1: agreed, and *members points into `reply` at
 * the array of live members (this one among them).  0: refused: the
 * sentence naming both sides (and a live member) is in `why` and logged
 * at ERROR on client `c`.  -1: no answer (Redis failed: try again). */
int cluster_agree_answer(struct dgw_client *c, const char *name,
                         const struct cluster_agree *mine, redisReply *reply,
                         redisReply **members, char *why, size_t why_len);

/* Tells the application of client `c` that it cannot run: on_client_fatal
 * with DGW_ERR_INVALID_ARGUMENT and `why` (dgw run exits 3).  Returns 1
 * when the client was freed inside: touch nothing of it after that. */
int cluster_agree_fatal(struct dgw_client *c, const char *why);

/* "shards 0-15 of 16, lease_ms 15000" into `out`. */
void cluster_agree_describe(const struct cluster_agree *a, char *out,
                            size_t len);

#endif /* DGW_CLUSTER_AGREE_H */
