/*
 * A cluster of dgw processes on Redis: membership, shard leases with
 * fencing tokens, sessions per shard in Redis, handover and failover.
 * Internal to dgw; built only with hiredis (HAVE_HIREDIS).  The client
 * makes one at dgw_client_start() when dgw_options_set_cluster() was
 * given, and manages its shards through it (client_shards.h).  The rules
 * are in lease.h and docs/cluster.md.
 *
 * Keys (NAME the cluster's name; the braces keep them in one Redis Cluster
 * slot):
 *   dgw:{NAME}:members      zset: member id -> expiry (Redis ms time)
 *   dgw:{NAME}:config       hash first, count, total, lease_ms, member,
 *                           since: what the members agreed on
 *                           (cluster_agree.h)
 *   dgw:{NAME}:member:ID    string "host pid", PX lease
 *   dgw:{NAME}:lease:N      string "MEMBER TOKEN", PX lease
 *   dgw:{NAME}:token:N      counter: the fencing token of shard N
 *   dgw:{NAME}:session:N    hash sid, seq, url, token, member
 *   dgw:{NAME}:stored:N     hash sid, seq: how far redis-streams stored
 */
#ifndef DGW_CLUSTER_H
#define DGW_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

#include "identify.h"

struct dgw_client;
struct dgw_cluster;

/* Makes the cluster of client `c` (which it then manages: call before
 * the client starts) on Redis at `url`, named `name`, with leases of
 * `lease_ms`.  Connecting starts at once; shards are claimed once Redis is
 * up and the client is ready.  NULL with a sentence in `why` for a bad URL
 * or name, or without memory. */
struct dgw_cluster *cluster_new(struct dgw_client *c, const char *url,
                                const char *name, uint32_t lease_ms, char *why,
                                size_t why_len);

/* Leaves the cluster cleanly: every held shard is released (closed with
 * 4000) and its final session and seq written to Redis with its lease
 * removed, so other members RESUME it at once; then the membership goes
 * and every shard of the client is closed (CLOSED), at the latest after a
 * few seconds when Redis does not answer. */
void cluster_leave(struct dgw_cluster *cl);

/* Frees the cluster without writing anything (the leases expire). */
void cluster_free(struct dgw_cluster *cl);

/* client_shards.h's fence: 1 while shard `shard_id`'s lease is held and
 * its deadline not passed, read against the clock now. */
int cluster_fence(void *cluster, uint32_t shard_id);

/* The identify queue shared by every member (identify_redis.h) on the
 * cluster's Redis connection, for the client to use instead of its local
 * one; destroy it before cluster_free().  NULL without memory. */
struct dgw_identify_queue *
cluster_identify_new(struct dgw_cluster *cl,
                     const struct dgw_identify_limits *limits,
                     dgw_identify_grant_fn grant, void *user_data);

/* This member's lease of shard `shard_id`, as the delivery fence sees it
 * now: DGW_OK with the member id copied into `member` and the fencing
 * token in *token; DGW_ERR_NOT_FOUND when not held or past its deadline;
 * DGW_ERR_BUFFER_TOO_SMALL. */
int cluster_lease_of(struct dgw_cluster *cl, uint32_t shard_id, char *member,
                     size_t member_size, uint64_t *token);

/* cluster_options.c (built without hiredis too): checks a cluster name,
 * 1..64 characters of [A-Za-z0-9_.-].  0 when well-formed; -1 with a
 * sentence in `why`. */
int cluster_name_check(const char *name, char *why, size_t why_len);

/* cluster_options.c: the client's hooks, no-ops without a cluster (or
 * without hiredis).  Start: makes the cluster (DGW_OK, or an error logged
 * with its cause); stop: leaves it (1 when the cluster closes the shards
 * itself once handed over); identify: the shared identify queue, or NULL
 * without a cluster (the client keeps its local one); free: frees it. */
int client_cluster_start(struct dgw_client *c);
struct dgw_identify_queue *
client_cluster_identify(struct dgw_client *c,
                        const struct dgw_identify_limits *limits,
                        dgw_identify_grant_fn grant, void *user_data);
int client_cluster_stop(struct dgw_client *c);
/* cluster_lease_of() of the client's cluster; DGW_ERR_NOT_FOUND without
 * one (for the plugins' host->cluster_lease). */
int client_cluster_lease(struct dgw_client *c, uint32_t shard_id, char *member,
                         size_t member_size, uint64_t *token);
void client_cluster_free(struct dgw_client *c);

#endif /* DGW_CLUSTER_H */
