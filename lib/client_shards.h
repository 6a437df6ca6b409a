/*
 * Shards taken and released one at a time inside a running client, for an
 * owner that decides which shards this process runs (the cluster: a shard
 * runs only where its lease is held).  Internal to dgw.
 *
 * Once managed (client_shards_manage() before dgw_client_start()), the
 * client makes its shards as usual but starts none of them: the owner
 * takes shard N (optionally with a stored session, so it RESUMEs), and
 * releases it (closed with 4000, the session kept and handed back with its
 * final seq once no event of it can arrive any more) or drops it (lease
 * lost: the connection goes at once, no frame, no callback).  A fence
 * callback is asked before every payload any shard writes.
 */
#ifndef DGW_CLIENT_SHARDS_H
#define DGW_CLIENT_SHARDS_H

#include <stdint.h>

#include <dgw/dgw.h>

struct dgw_client;

/* A shard's session as stored elsewhere (Redis); session_id NULL: none. */
struct client_shard_session {
  const char *session_id;
  int64_t seq;
  const char *resume_url; /* may be NULL */
};

/* A released shard's final session (session_id NULL when it had none),
 * valid during the call.  Called from the loop, never inside a shard. */
typedef void (*client_released_fn)(struct dgw_client *c, uint32_t shard_id,
                                   const struct client_shard_session *s,
                                   void *user_data);

/* Asked before every payload shard `shard_id` writes: 0 vetoes it. */
typedef int (*client_fence_fn)(void *user_data, uint32_t shard_id);

/* Before dgw_client_start(): the client starts no shard on its own; the
 * owner takes them.  `fence` may be NULL.  DGW_OK, DGW_ERR_STATE once
 * started, DGW_ERR_NOMEM. */
int client_shards_manage(struct dgw_client *c, client_fence_fn fence,
                         void *fence_data);

/* 1 when the client is managed. */
int client_shards_managed(const struct dgw_client *c);

/* 1 when shards can be taken now: started, GET /gateway/bot answered (the
 * shard count and the gateway URL are known). */
int client_shards_ready(const struct dgw_client *c);

/* Starts shard `shard_id`, RESUMing `s` when given (and well-formed;
 * otherwise it identifies).  DGW_OK; DGW_ERR_STATE when not ready, or the
 * shard runs or is being released; DGW_ERR_INVALID_ARGUMENT for a shard
 * the client does not have; DGW_ERR_NOMEM. */
int client_shard_take(struct dgw_client *c, uint32_t shard_id,
                      const struct client_shard_session *s);

/* Closes shard `shard_id` keeping its session (code 4000) and calls
 * done() with the final session from the loop once it is CLOSED; the
 * shard is then idle again (a fresh one) and can be taken.  DGW_OK;
 * DGW_ERR_STATE when it is already being released;
 * DGW_ERR_INVALID_ARGUMENT for a shard the client does not have. */
int client_shard_release(struct dgw_client *c, uint32_t shard_id,
                         client_released_fn done, void *user_data);

/* Lease lost: drops shard `shard_id`'s connection at once (no close
 * frame, nothing more written) and leaves a fresh idle shard.  A release
 * in progress is abandoned without its callback.  Not from inside a shard
 * callback (DGW_ERR_STATE then).  DGW_OK or DGW_ERR_INVALID_ARGUMENT. */
int client_shard_drop(struct dgw_client *c, uint32_t shard_id);

/* 1 when shard `shard_id` was taken and not dropped or released yet
 * (running, reconnecting or being released). */
int client_shard_taken(const struct dgw_client *c, uint32_t shard_id);

/* client.c: the fence of shard configs (gateway.h's may_send). */
int client_shards_may_send(void *data, const struct dgw_gateway *gw);

/* fanout.c, before an event of shard `gw` reaches anyone: 1 to deliver
 * it; 0 when the fence says no (the lease is gone: a process woken from a
 * pause reads before any timer of its owner runs), and the event is
 * withheld (its owner drops the shard; the next holder's RESUME replays
 * it).  1 for a client that is not managed.  Cheap: the owner compares a
 * deadline with the monotonic clock, no I/O. */
int client_shards_may_deliver(struct dgw_client *c,
                              const struct dgw_gateway *gw);

/* client.c / fanout.c: shard `gw` moved to `to` (a release completes on
 * CLOSED). */
void client_shards_state(struct dgw_client *c, struct dgw_gateway *gw,
                         enum dgw_state to);

/* client.c's destroy(): frees the bookkeeping, no callbacks. */
void client_shards_free(struct dgw_client *c);

#endif /* DGW_CLIENT_SHARDS_H */
