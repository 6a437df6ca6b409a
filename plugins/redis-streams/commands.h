/*
 * redis-streams' command streams (issue 13, item 3; docs/streams.md):
 * workers XADD gateway commands to dgw:{NAME}:commands:N, the process
 * that runs shard N executes them through the shard's send rate limiter
 * and XADDs each outcome to dgw:{NAME}:replies:{ID}.  Internal to the
 * plugin: redis_streams.c creates it from its config and frees it.
 */
#ifndef DGW_REDIS_STREAMS_COMMANDS_H
#define DGW_REDIS_STREAMS_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/plugin.h>

/* The largest `d` of a command, in bytes: the gateway's payload limit. */
#define COMMANDS_MAX_D 4096

struct commands;
struct json_object;

/*
 * Starts reading the command streams of bot `name` in Redis at `url` (two
 * connections of its own: one blocks in XREAD, one writes replies and
 * acknowledgements).  Replies expire `reply_ttl_ms` after they were
 * written.  Returns NULL with a sentence in `why` (a bad URL, no memory,
 * a host without the completion calls).  Free with commands_free().
 */
struct commands *commands_new(const struct dgw_plugin_host *host,
                              const char *url, const char *name,
                              uint64_t reply_ttl_ms, char *why,
                              size_t why_size);

/* Stops reading and frees everything, logging what was done.  A command
 * not yet acknowledged stays in its stream for the next process that runs
 * the shard.  NULL is fine. */
void commands_free(struct commands *c);

/*
 * Sends one command on shard `gw`: `op` ("presence", "voice_state",
 * "request_members", "soundboard", "channel_info" or "raw") with its
 * arguments from the JSON object `d` (for "raw" the payload `raw` of
 * `raw_len` bytes is sent as it is), through the shard's checked call
 * with completion `on_sent` (and, for request_members, `on_members`),
 * both with `ud`.  Returns DGW_OK (the completion follows, possibly
 * before this returns) or the refusal, with `code` (the reply's error:
 * "invalid_argument", "unknown_op", "too_large", "queue_full") and a
 * sentence naming the field in `why`.  DGW_ERR_STATE (the shard is not
 * running) is not the command's fault: the caller leaves it unanswered.
 */
int command_send(const struct dgw_plugin_host *h, struct dgw_gateway *gw,
                 const char *op, const char *raw, size_t raw_len,
                 struct json_object *d, dgw_sent_fn on_sent,
                 dgw_members_fn on_members, void *ud, const char **code,
                 char *why, size_t why_size);

#endif /* DGW_REDIS_STREAMS_COMMANDS_H */
