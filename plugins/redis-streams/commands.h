/*
 * redis-streams' command streams (issue 13, item 3; docs/streams.md):
 * workers XADD gateway commands to dgw:{NAME}:commands:N, the process
 * that runs shard N executes them through the shard's send rate limiter
 * and XADDs each outcome to dgw:{NAME}:replies:{ID}.  Internal to the
 * plugin: redis_streams.c creates it from its config and frees it.
 */
#ifndef DGW_REDIS_STREAMS_COMMANDS_H
#define DGW_REDIS_STREAMS_COMMANDS_H

#include <stdint.h>

#include <dgw/plugin.h>

/* The largest `d` of a command, in bytes: the gateway's payload limit. */
#define COMMANDS_MAX_D 4096

struct commands;

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

#endif /* DGW_REDIS_STREAMS_COMMANDS_H */
