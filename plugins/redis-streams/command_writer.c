/*
 * redis-streams' command streams: the writer connection.  Each command's
 * acknowledgement and reply go in one script call (the acknowledged id
 * only ever moves forward; the reply stream expires), queued and sent one
 * at a time so that acknowledgements keep their order, and sent again
 * after Redis came back.  Once a second each stream is trimmed up to what
 * was acknowledged.  Reading the streams and running the commands is in
 * commands.c.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "commands_internal.h"
#include "redis.h"

#define RETRY_MS 200 /* a failed reply script is sent again after */
#define MAX_ARGS 24
#define TRIM_TICKS 10 /* a stream is trimmed at most once a second */

/* One script call for the writer: reply and/or acknowledgement (of
 * entry `acked` of `sh`'s stream; "" when none). */
struct cout {
  struct cout *next;
  struct cshard *sh;
  char acked[48];
  int argc;
  char *argv[MAX_ARGS];
  size_t len[MAX_ARGS];
};

static struct redis_script ack_script =
    REDIS_SCRIPT("local function newer(a, b)\n"
                 "  local am, as = string.match(a, '^(%d+)-(%d+)$')\n"
                 "  local bm, bs = string.match(b or '', '^(%d+)-(%d+)$')\n"
                 "  if not bm then return true end\n"
                 "  am, as, bm, bs = tonumber(am), tonumber(as), tonumber(bm), "
                 "tonumber(bs)\n"
                 "  return am > bm or (am == bm and as > bs)\n"
                 "end\n"
                 "if ARGV[1] ~= '' then\n"
                 "  local cur = redis.call('GET', KEYS[2])\n"
                 "  if not cur or newer(ARGV[1], cur) then\n"
                 "    redis.call('SET', KEYS[2], ARGV[1])\n"
                 "  end\n"
                 "end\n"
                 "if ARGV[2] ~= '0' then\n"
                 "  redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))\n"
                 "  redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
                 "end\n"
                 "return 1\n");

/* ------------------------------------------------------------ outbox */

static void out_free(struct cout *o) {
  for (int i = 0; i < o->argc; i++)
    free(o->argv[i]);
  free(o);
}

static void out_retry(void *arg) {
  struct commands *c = arg;

  c->retry = NULL;
  writer_flush(c);
}

static void out_done(struct dgw_redis *r, redisReply *reply, const char *err,
                     void *ud) {
  struct commands *c = ud;
  struct cout *o = c->out_head;

  (void)r;
  c->out_busy = 0;
  if (c->closing)
    return;
  if (reply == NULL) {
    /* Not written: the same call again once Redis answers. */
    if (c->retry == NULL)
      c->retry = c->host->timer_add(c->host, RETRY_MS, 0, out_retry, c);
    return;
  }
  if (err != NULL)
    c->host->log(c->host, DGW_LOG_ERROR,
                 "commands: reply to %s refused by Redis: %s", o->argv[0], err);
  else if (o->sh != NULL && o->acked[0] != '\0') {
    /* Acknowledged (or already past it): the stream may be trimmed up to
     * it, by the next tick that trims. */
    snprintf(o->sh->trim_id, sizeof(o->sh->trim_id), "%s", o->acked);
    o->sh->trim_due = 1;
  }
  c->out_head = o->next;
  if (c->out_head == NULL)
    c->out_tail = NULL;
  out_free(o);
  writer_flush(c);
}

void writer_flush(struct commands *c) {
  struct cout *o = c->out_head;

  if (o == NULL || c->out_busy || c->closing || !redis_is_up(c->writer))
    return;
  if (redis_eval(c->writer, &ack_script, 2, o->argc, (const char **)o->argv,
                 o->len, out_done, c) == 0)
    c->out_busy = 1;
  else if (c->retry == NULL)
    c->retry = c->host->timer_add(c->host, RETRY_MS, 0, out_retry, c);
}

void writer_push(struct crun *run, int ack, int reply, ...) {
  struct commands *c = run->c;
  struct cout *o = calloc(1, sizeof(*o));
  char key[400], shard[16];
  const char *s;
  va_list ap;
  int ok = o != NULL;

#define PUSH(str, n)                                                           \
  do {                                                                         \
    if (ok && o->argc < MAX_ARGS &&                                            \
        (o->argv[o->argc] = malloc((n) + 1)) != NULL) {                        \
      memcpy(o->argv[o->argc], (str), (n));                                    \
      o->argv[o->argc][(n)] = '\0';                                            \
      o->len[o->argc++] = (n);                                                 \
    } else                                                                     \
      ok = 0;                                                                  \
  } while (0)
#define PUSHS(str) PUSH((str), strlen(str))
  snprintf(key, sizeof(key), "dgw:{%s}:replies:%s", c->name,
           run->reply_by_entry ? run->entry : run->id);
  snprintf(shard, sizeof(shard), "%u", (unsigned)run->sh->shard_id);
  if (ok && ack) {
    o->sh = run->sh;
    snprintf(o->acked, sizeof(o->acked), "%s", run->entry);
  }
  PUSHS(key);
  PUSHS(run->sh->acked_key);
  PUSHS(ack ? run->entry : "");
  PUSHS(reply ? c->ttl : "0");
  if (reply) {
    PUSHS("id");
    PUSHS(run->id);
    PUSHS("entry");
    PUSHS(run->entry);
    PUSHS("shard");
    PUSHS(shard);
    PUSHS("op");
    PUSHS(run->op);
    va_start(ap, reply);
    while ((s = va_arg(ap, const char *)) != NULL)
      PUSHS(s);
    va_end(ap);
  }
#undef PUSHS
#undef PUSH
  if (!ok) {
    c->host->log(c->host, DGW_LOG_ERROR,
                 "commands: out of memory: the reply to %s is lost", run->id);
    if (o != NULL)
      out_free(o);
    return;
  }
  if (c->out_tail != NULL)
    c->out_tail->next = o;
  else
    c->out_head = o;
  c->out_tail = o;
  writer_flush(c);
}

void writer_error(struct crun *run, const char *code, const char *why) {
  run->c->done_err++;
  run->c->host->log(run->c->host, DGW_LOG_INFO,
                    "commands: shard %u entry %s (id \"%s\", op \"%s\"): %s: "
                    "%s",
                    (unsigned)run->sh->shard_id, run->entry, run->id, run->op,
                    code, why);
  writer_push(run, 1, 1, "status", "error", "error", code, "why", why,
              (const char *)NULL);
}

/* ------------------------------------------------------------ trimming */

static void on_trimmed(struct dgw_redis *r, redisReply *reply, const char *err,
                       void *ud) {
  struct cshard *sh = ud;
  struct commands *c = sh->c;

  (void)r;
  sh->trimming = 0;
  if (c->closing)
    return;
  if (reply == NULL) {
    sh->trim_due = 1; /* not sent: the next round tries again */
    return;
  }
  if (err != NULL) {
    if (!c->trim_refused++)
      c->host->log(c->host, DGW_LOG_WARN,
                   "commands: XTRIM %s MINID refused: %s (Redis older than "
                   "6.2?); the command streams are not trimmed",
                   sh->key, err);
    return;
  }
  if (reply->type == REDIS_REPLY_INTEGER && reply->integer > 0)
    c->trimmed += (uint64_t)reply->integer;
}

/* Once a second: each stream whose acknowledged id moved is trimmed up to
 * it.  XTRIM MINID removes the entries before that id only: each was
 * acknowledged (in order, by this process or an earlier holder of the
 * shard; the acknowledged id never moves back), so no command still to be
 * sent is removed.  The acknowledged entry itself stays. */
void writer_trim(struct commands *c) {
  if (++c->ticks % TRIM_TICKS != 0 || c->trim_refused ||
      !redis_is_up(c->writer))
    return;
  for (uint32_t i = 0; i < c->nshards; i++) {
    struct cshard *sh = c->shards[i];

    if (!sh->trim_due || sh->trimming)
      continue;
    if (redis_command(c->writer, on_trimmed, sh, "XTRIM %s MINID %s", sh->key,
                      sh->trim_id) == 0) {
      sh->trim_due = 0;
      sh->trimming = 1;
    }
  }
}

uint64_t writer_drop(struct commands *c) {
  uint64_t unsent = 0;

  while (c->out_head != NULL) {
    struct cout *o = c->out_head;

    c->out_head = o->next;
    out_free(o);
    unsent++;
  }
  return unsent;
}
