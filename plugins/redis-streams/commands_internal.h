/*
 * redis-streams' command streams, the internals shared by commands.c
 * (reading the streams, running each command on its shard, following the
 * shards' states) and command_writer.c (the writer connection: replies,
 * acknowledgements, trimming).  Internal to the plugin; commands.h is what
 * redis_streams.c sees.
 */
#ifndef DGW_REDIS_STREAMS_COMMANDS_INTERNAL_H
#define DGW_REDIS_STREAMS_COMMANDS_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/plugin.h>

#define MAX_ID 100 /* bytes of a command's id */

struct cout;
struct cshard;
struct dgw_redis;

/* One command read from a stream, not yet started. */
struct centry {
  struct centry *next;
  char entry[48]; /* the stream entry's id */
  char *id, *op, *d, *shard;
  size_t d_len;
  int has_d;
};

/* A command handed to the shard: lives until its completion (and, for a
 * member request, its answer) came, or until commands_free(). */
struct crun {
  struct crun *next;
  struct commands *c;
  struct cshard *sh;
  char entry[48];
  char id[MAX_ID + 1];
  char op[24];
  int reply_by_entry;
  int sent_done, written, members_done;
  int detached; /* its shard was replaced: it no longer holds the shard */
  int starting; /* inside the send call: run_entry finishes it */
};

struct cshard {
  struct commands *c;
  struct dgw_gateway *gw;
  uint32_t shard_id;
  char key[200], acked_key[220];
  int here;               /* READY here and its acknowledged id loaded */
  int loading;            /* the GET of the acknowledged id is in flight */
  int in_read;            /* part of the XREAD in flight */
  unsigned gen, read_gen; /* read_gen: gen when the XREAD was sent */
  char read_id[48];       /* the last entry read */
  struct centry *head, *tail;
  struct crun *running;
  int pumping;
  /* Trimming: the last entry this process acknowledged (Redis answered
   * the script), whether the stream was trimmed up to it, and whether an
   * XTRIM is in flight. */
  char trim_id[48];
  int trim_due, trimming;
};

struct commands {
  const struct dgw_plugin_host *host;
  struct dgw_redis *reader, *writer;
  char name[128];
  char ttl[24];
  struct cshard **shards; /* by index in the client, each allocated once */
  uint32_t nshards;
  int reading;
  int read_refused; /* the last XREAD got an error reply (logged) */
  struct cout *out_head, *out_tail;
  int out_busy;
  struct crun *runs;
  struct dgw_plugin_timer *tick, *retry;
  int closing;
  uint64_t done_ok, done_err, read;
  unsigned ticks;
  int trim_refused; /* logged once */
  uint64_t trimmed; /* entries removed by XTRIM */
};

/* Queues one script call for the writer, sent in order after those
 * queued before it: acknowledges `run`'s entry in its shard's stream
 * (moving the acknowledged id past it, never back) when `ack` is not 0
 * and, unless `reply` is 0, XADDs the fields (name, value pairs after
 * `reply`, NULL-terminated) to the run's reply stream, which expires
 * reply_ttl_ms later.  Every string is copied; without memory the call is
 * logged and lost. */
void writer_push(struct crun *run, int ack, int reply, ...);

/* Counts and logs a refused command and queues its error reply (status
 * error, error `code`, why `why`) with its acknowledgement. */
void writer_error(struct crun *run, const char *code, const char *why);

/* Sends the oldest queued script call when the writer is up and none is
 * in flight: one at a time, so acknowledgements keep their order.  A call
 * Redis did not get is sent again 200 ms later (RETRY_MS); while the
 * writer is down, the next call of this (each tick, and when it is up)
 * sends it. */
void writer_flush(struct commands *c);

/* Called every tick (TICK_MS): every tenth call (once a second), trims
 * each stream whose acknowledged id moved up to it (XTRIM MINID). */
void writer_trim(struct commands *c);

/* Frees every queued script call (c->closing set and the writer freed
 * first: no reply comes any more).  Returns how many were not written. */
uint64_t writer_drop(struct commands *c);

#endif /* DGW_REDIS_STREAMS_COMMANDS_INTERNAL_H */
