/*
 * One shard's gateway session: the state machine that hata's
 * DiscordGateway is, in C.  Internal; the public face is in dgw.h.
 */
#ifndef DGW_GATEWAY_H
#define DGW_GATEWAY_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

#include "ratelimit.h"

struct dgw_client;

/* Creates shard `shard_id` of client `c`, idle.  NULL without memory. */
struct dgw_gateway *gateway_new(struct dgw_client *c, uint32_t shard_id);

/* Drops the connection at once and frees the shard; no callbacks. */
void gateway_free(struct dgw_gateway *gw);

/* Starts the first connection. */
void gateway_start(struct dgw_gateway *gw);

/* Sends (or queues, under the rate limit) one command payload; `done`
 * as for dgw_sender_command().  DGW_ERR_STATE when closed or fatal. */
int gateway_command(struct dgw_gateway *gw, const char *json, size_t len,
                    dgw_send_done_fn done, void *user_data);

/* The shard's table of member and voice requests waiting for events. */
struct dgw_requests *gateway_requests(struct dgw_gateway *gw);

/* Closes with 4000 (resumable) and keeps the session in memory, for a
 * restart that saves sessions.  DGW_ERR_STATE when already closed. */
int gateway_close_keep_session(struct dgw_gateway *gw);

/* Before start: the shard will RESUME `session_id` at `seq` (on
 * `resume_url`, may be NULL) instead of identifying.  Checked like READY's
 * fields: DGW_ERR_INVALID_ARGUMENT when malformed or not idle. */
int gateway_restore_session(struct dgw_gateway *gw, const char *session_id,
                            int64_t seq, const char *resume_url);

/* The client is offline: stop waiting for a reconnect of our own (the
 * state stays OFFLINE) until gateway_relaunch(). */
void gateway_park(struct dgw_gateway *gw);

/* The network is back: a parked (or waiting) shard reconnects now. */
void gateway_relaunch(struct dgw_gateway *gw);

/* The identify queue allows this shard to IDENTIFY: it does so from its
 * own loop callback. */
void gateway_grant_identify(struct dgw_gateway *gw);

/* The client allows this shard to IDENTIFY now. */
void gateway_identify_now(struct dgw_gateway *gw);

#endif /* DGW_GATEWAY_H */
