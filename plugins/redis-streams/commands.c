/*
 * redis-streams' command streams (docs/streams.md): the way back from the
 * workers to the gateway.
 *
 *   XADD dgw:{NAME}:commands:N * id ID op presence d {...} [shard N]
 *
 * The process that runs shard N (READY here; in a cluster, the holder of
 * its lease) reads that stream from the last entry acknowledged
 * (dgw:{NAME}:commands:N:acked), one command at a time per shard, sends
 * it through the shard's own calls (checked, under its send rate limit)
 * and, once the command was written, moves the acknowledged id past it
 * and XADDs the outcome to dgw:{NAME}:replies:{ID} in one script
 * (command_writer.c):
 *
 *   id ID entry 1764-0 shard N op presence status ok [result {...}]
 *   id ID entry 1764-0 shard N op presence status error error CODE why TEXT
 *
 * A bad entry gets its error reply and is acknowledged like any other, so
 * a stream never gets stuck.  Once a second, each stream whose
 * acknowledged id moved is trimmed up to it (XTRIM MINID): only
 * acknowledged entries go.  A command dropped because this process let
 * the shard go (closed, restarting, freed) is neither answered nor
 * acknowledged: the next process that runs the shard sends it.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "commands.h"
#include "commands_internal.h"
#include "redis.h"

#define READ_COUNT 16       /* entries per XREAD */
#define READ_BLOCK_MS "500" /* how long one XREAD waits */
#define TICK_MS 100         /* how often shard states are looked at */

static void pump(struct cshard *sh);
static void read_more(struct commands *c);

/* ------------------------------------------------------------ runs */

static void run_release(struct crun *run) {
  struct crun **pp;

  if (!run->sent_done || !run->members_done)
    return;
  for (pp = &run->c->runs; *pp != NULL; pp = &(*pp)->next)
    if (*pp == run) {
      *pp = run->next;
      break;
    }
  free(run);
}

/* Forgets what was read for `sh`: the next process (or this one, once the
 * shard is READY again) reads from the acknowledged id. */
static void shard_leave(struct cshard *sh) {
  while (sh->head != NULL) {
    struct centry *e = sh->head;

    sh->head = e->next;
    free(e->id);
    free(e->op);
    free(e->d);
    free(e->shard);
    free(e);
  }
  sh->tail = NULL;
  sh->here = 0;
  sh->gen++;
}

static void on_sent(struct dgw_gateway *gw, enum dgw_send_outcome outcome,
                    void *ud) {
  struct crun *run = ud;
  struct cshard *sh = run->sh;
  struct commands *c = run->c;

  (void)gw;
  run->sent_done = 1;
  if (!c->closing) {
    if (outcome == DGW_SEND_WRITTEN) {
      run->written = 1;
      c->done_ok++;
      if (strcmp(run->op, "request_members") == 0)
        writer_push(run, 1, 0); /* acknowledged; the answer follows */
      else
        writer_push(run, 1, 1, "status", "ok", (const char *)NULL);
    } else if (outcome == DGW_SEND_SESSION_LOST) {
      writer_error(run, "session_lost",
                   "the session ended (a fatal close code) before it was sent");
    } else {
      /* This process let the shard go: the next one sends it. */
      c->host->log(c->host, DGW_LOG_INFO,
                   "commands: shard %u: entry %s not sent (%s); left in the "
                   "stream for the next process that runs the shard",
                   (unsigned)sh->shard_id, run->entry,
                   outcome == DGW_SEND_RESTART ? "restart"
                   : outcome == DGW_SEND_FREED ? "client freed"
                                               : "shard closed");
      if (!run->detached)
        shard_leave(sh);
    }
  }
  if (run->starting)
    return; /* written at once: run_entry goes on */
  if (sh->running == run) {
    sh->running = NULL;
    run_release(run);
    if (!c->closing)
      pump(sh);
    return;
  }
  run_release(run);
}

static void on_members(struct dgw_gateway *gw, int error,
                       struct json_object *result, void *ud) {
  struct crun *run = ud;
  struct commands *c = run->c;
  const char *res =
      result != NULL
          ? json_object_to_json_string_ext(result, JSON_C_TO_STRING_PLAIN)
          : "null";

  (void)gw;
  run->members_done = 1;
  if (run->written && !c->closing) {
    if (error == DGW_OK)
      writer_push(run, 0, 1, "status", "ok", "result", res, (const char *)NULL);
    else if (error == DGW_ERR_RATE_LIMITED)
      writer_push(run, 0, 1, "status", "error", "error", "rate_limited", "why",
                  "Discord answered RATE_LIMITED (see result.retry_after)",
                  "result", res, (const char *)NULL);
    else
      writer_push(run, 0, 1, "status", "error", "error", "session_lost", "why",
                  c->host->strerror(error), (const char *)NULL);
  }
  run_release(run);
}

static int valid_id(const char *id) {
  size_t n = id != NULL ? strlen(id) : 0;

  if (n == 0 || n > MAX_ID)
    return 0;
  for (size_t i = 0; i < n; i++)
    if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
               "0123456789_.:-",
               id[i]) == NULL)
      return 0;
  return 1;
}

static int known_op(const char *op) {
  static const char *const ops[] = {
      "presence",   "voice_state",  "request_members",
      "soundboard", "channel_info", "raw",
      NULL};

  for (int i = 0; op != NULL && ops[i] != NULL; i++)
    if (strcmp(op, ops[i]) == 0)
      return 1;
  return 0;
}

/* Checks and starts one entry.  Returns 1 when it is in flight (its
 * completion continues the shard), 0 when it is done. */
static int run_entry(struct cshard *sh, const struct centry *e) {
  struct commands *c = sh->c;
  struct crun *run = calloc(1, sizeof(*run));
  struct json_object *d = NULL;
  char why[300], shard[16];
  const char *code = NULL;
  int rv;

  if (run == NULL) {
    c->host->log(c->host, DGW_LOG_ERROR,
                 "commands: out of memory: entry %s left for later", e->entry);
    shard_leave(sh);
    return 0;
  }
  run->c = c;
  run->sh = sh;
  run->members_done = 1;
  snprintf(run->entry, sizeof(run->entry), "%s", e->entry);
  snprintf(run->op, sizeof(run->op), "%.20s", e->op != NULL ? e->op : "");
  snprintf(shard, sizeof(shard), "%u", (unsigned)sh->shard_id);
  if (valid_id(e->id)) {
    snprintf(run->id, sizeof(run->id), "%s", e->id);
  } else {
    run->reply_by_entry = 1;
    snprintf(run->id, sizeof(run->id), "%s", "");
    code = "missing_id";
    snprintf(why, sizeof(why),
             "no \"id\" (1-%d bytes of A-Z a-z 0-9 _ . : -); the reply is "
             "keyed by the entry id",
             MAX_ID);
  }
  if (code == NULL && e->shard != NULL && strcmp(e->shard, shard) != 0) {
    code = "wrong_shard";
    snprintf(why, sizeof(why),
             "the entry names shard \"%.20s\" but is in the stream of shard "
             "%s",
             e->shard, shard);
  }
  if (code == NULL && !known_op(e->op)) {
    code = "unknown_op";
    snprintf(why, sizeof(why),
             "op \"%.40s\" is not presence, voice_state, request_members, "
             "soundboard, channel_info or raw",
             e->op != NULL ? e->op : "(none)");
  }
  if (code == NULL && e->has_d && e->d_len > COMMANDS_MAX_D) {
    code = "too_large";
    snprintf(why, sizeof(why), "d is %zu bytes, over the gateway's %d",
             e->d_len, COMMANDS_MAX_D);
  }
  if (code == NULL) {
    struct json_tokener *tok = json_tokener_new();

    if (tok != NULL && e->has_d) {
      json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
      d = json_tokener_parse_ex(tok, e->d, (int)e->d_len);
      if (d != NULL && (json_tokener_get_error(tok) != json_tokener_success ||
                        json_tokener_get_parse_end(tok) != e->d_len ||
                        !json_object_is_type(d, json_type_object))) {
        json_object_put(d);
        d = NULL;
      }
    }
    json_tokener_free(tok);
    if (d == NULL) {
      code = "invalid_json";
      snprintf(why, sizeof(why), "%s",
               e->has_d ? "d is not a JSON object" : "no d (a JSON object)");
    }
  }
  if (code == NULL) {
    run->next = c->runs;
    c->runs = run;
    run->starting = 1;
    if (strcmp(e->op, "request_members") == 0)
      run->members_done = 0; /* its answer follows the completion */
    rv = command_send(c->host, sh->gw, e->op, e->d, e->d_len, d, on_sent,
                      on_members, run, &code, why, sizeof(why));
    if (rv != DGW_OK)
      run->members_done = 1;
    run->starting = 0;
    json_object_put(d);
    if (rv == DGW_OK) {
      if (run->sent_done) { /* written at once */
        run_release(run);
        return 0;
      }
      sh->running = run;
      return 1;
    }
    c->runs = run->next;
    if (rv == DGW_ERR_STATE) {
      /* The shard stopped (closed, fatal): not this command's fault.  It
       * stays in the stream for the next process that runs the shard. */
      c->host->log(c->host, DGW_LOG_INFO,
                   "commands: shard %u is not running: entry %s left in the "
                   "stream",
                   (unsigned)sh->shard_id, e->entry);
      free(run);
      shard_leave(sh);
      return 0;
    }
  }
  writer_error(run, code, why);
  free(run);
  return 0;
}

/* Starts the shard's next commands until one is in flight. */
static void pump(struct cshard *sh) {
  if (sh->pumping)
    return;
  sh->pumping = 1;
  while (sh->here && sh->running == NULL && sh->head != NULL &&
         !sh->c->closing) {
    struct centry *e = sh->head;
    unsigned gen = sh->gen;

    if (sh->c->host->gateway_state(sh->gw) != DGW_STATE_READY) {
      /* Not READY (reconnecting, closed): what was read is read again
       * from the acknowledged id once it is. */
      shard_leave(sh);
      break;
    }

    sh->head = e->next;
    if (sh->head == NULL)
      sh->tail = NULL;
    run_entry(sh, e);
    free(e->id);
    free(e->op);
    free(e->d);
    free(e->shard);
    free(e);
    if (gen != sh->gen)
      break; /* the shard was let go meanwhile */
  }
  sh->pumping = 0;
  read_more(sh->c);
}

/* ------------------------------------------------------------ reading */

static char *dup_reply(const redisReply *r) {
  char *s = malloc(r->len + 1);

  if (s != NULL) {
    memcpy(s, r->str, r->len);
    s[r->len] = '\0';
  }
  return s;
}

static void take_entry(struct cshard *sh, const redisReply *item) {
  const redisReply *fields;
  struct centry *e;

  if (item->type != REDIS_REPLY_ARRAY || item->elements < 2 ||
      item->element[0]->type != REDIS_REPLY_STRING)
    return;
  fields = item->element[1];
  snprintf(sh->read_id, sizeof(sh->read_id), "%s", item->element[0]->str);
  sh->c->read++;
  e = calloc(1, sizeof(*e));
  if (e == NULL) {
    shard_leave(sh);
    return;
  }
  snprintf(e->entry, sizeof(e->entry), "%s", item->element[0]->str);
  for (size_t i = 0;
       fields->type == REDIS_REPLY_ARRAY && i + 1 < fields->elements; i += 2) {
    const redisReply *k = fields->element[i], *v = fields->element[i + 1];
    char **slot = NULL;

    if (k->type != REDIS_REPLY_STRING || v->type != REDIS_REPLY_STRING)
      continue;
    if (strcmp(k->str, "id") == 0)
      slot = &e->id;
    else if (strcmp(k->str, "op") == 0)
      slot = &e->op;
    else if (strcmp(k->str, "shard") == 0)
      slot = &e->shard;
    else if (strcmp(k->str, "d") == 0) {
      slot = &e->d;
      e->d_len = v->len;
      e->has_d = 1;
    }
    if (slot != NULL && *slot == NULL)
      *slot = dup_reply(v);
  }
  if (sh->tail != NULL)
    sh->tail->next = e;
  else
    sh->head = e;
  sh->tail = e;
}

static void on_read(struct dgw_redis *r, redisReply *reply, const char *err,
                    void *ud) {
  struct commands *c = ud;

  (void)r;
  c->reading = 0;
  for (uint32_t i = 0; i < c->nshards; i++)
    c->shards[i]->in_read = 0;
  if (c->closing)
    return;
  if (err != NULL && reply != NULL && !c->read_refused) /* once a streak */
    c->host->log(c->host, DGW_LOG_ERROR,
                 "commands: XREAD refused: %s (is a commands key not a "
                 "stream?); trying again every %d ms",
                 err, TICK_MS);
  c->read_refused = err != NULL && reply != NULL;
  if (reply != NULL && reply->type == REDIS_REPLY_ARRAY) {
    for (size_t s = 0; s < reply->elements; s++) {
      const redisReply *st = reply->element[s];

      if (st->type != REDIS_REPLY_ARRAY || st->elements < 2)
        continue;
      for (uint32_t i = 0; i < c->nshards; i++) {
        struct cshard *sh = c->shards[i];

        if (strcmp(sh->key, st->element[0]->str) != 0 ||
            sh->read_gen != sh->gen || !sh->here)
          continue;
        for (size_t k = 0; k < st->element[1]->elements; k++)
          take_entry(sh, st->element[1]->element[k]);
      }
    }
    for (uint32_t i = 0; i < c->nshards; i++)
      pump(c->shards[i]);
  }
  if (err != NULL && reply != NULL)
    return; /* the next tick tries again */
  read_more(c);
}

/* One XREAD for every shard that runs here and has nothing to do. */
static void read_more(struct commands *c) {
  const char **argv;
  int argc = 0, n = 0;

  if (c->reading || c->closing || !redis_is_up(c->reader))
    return;
  for (uint32_t i = 0; i < c->nshards; i++) {
    struct cshard *sh = c->shards[i];

    if (sh->here && sh->head == NULL && sh->running == NULL)
      n++;
  }
  if (n == 0)
    return;
  argv = calloc(6 + 2 * (size_t)n, sizeof(*argv));
  if (argv == NULL)
    return;
  argv[argc++] = "XREAD";
  argv[argc++] = "COUNT";
  argv[argc++] = "16";
  argv[argc++] = "BLOCK";
  argv[argc++] = READ_BLOCK_MS;
  argv[argc++] = "STREAMS";
  for (int pass = 0; pass < 2; pass++)
    for (uint32_t i = 0; i < c->nshards; i++) {
      struct cshard *sh = c->shards[i];

      if (sh->here && sh->head == NULL && sh->running == NULL) {
        argv[argc++] = pass == 0 ? sh->key : sh->read_id;
        sh->in_read = 1;
        sh->read_gen = sh->gen;
      }
    }
  if (redis_command_argv(c->reader, on_read, c, argc, argv, NULL) == 0)
    c->reading = 1;
  free(argv);
}

static void on_acked(struct dgw_redis *r, redisReply *reply, const char *err,
                     void *ud) {
  struct cshard *sh = ud;
  struct commands *c = sh->c;

  (void)r;
  sh->loading = 0;
  if (c->closing || err != NULL || reply == NULL)
    return; /* the next tick asks again */
  if (c->host->gateway_state(sh->gw) != DGW_STATE_READY)
    return;
  if (reply->type == REDIS_REPLY_STRING)
    snprintf(sh->read_id, sizeof(sh->read_id), "%s", reply->str);
  else
    snprintf(sh->read_id, sizeof(sh->read_id), "0-0");
  sh->here = 1;
  sh->gen++;
  c->host->log(c->host, DGW_LOG_DEBUG,
               "commands: reading %s after %s (acknowledged)", sh->key,
               sh->read_id);
  read_more(c);
}

/* Looks at which shards are READY here: a shard's stream is read only
 * while it is. */
static void tick(void *arg) {
  struct commands *c = arg;
  const struct dgw_plugin_host *h = c->host;
  uint32_t n = h->shard_count(h);

  if (n > c->nshards) { /* the first tick, or automatic sharding began */
    struct cshard **grown = realloc(c->shards, n * sizeof(*grown));

    if (grown == NULL)
      return;
    c->shards = grown;
    for (; c->nshards < n; c->nshards++) {
      struct cshard *sh = calloc(1, sizeof(*sh));
      uint32_t id;

      if (sh == NULL)
        return;
      id = h->gateway_shard_id(h->gateway_at(h, c->nshards));
      sh->c = c;
      sh->shard_id = id;
      snprintf(sh->key, sizeof(sh->key), "dgw:{%s}:commands:%u", c->name,
               (unsigned)id);
      snprintf(sh->acked_key, sizeof(sh->acked_key), "%s:acked", sh->key);
      c->shards[c->nshards] = sh;
    }
  }
  for (uint32_t i = 0; i < c->nshards && i < n; i++) {
    struct cshard *sh = c->shards[i];
    struct dgw_gateway *gw = h->gateway_at(h, i);
    int ready;

    if (gw != sh->gw) {
      /* The client replaced the shard (a cluster take or release): what
       * was read for the old one is read again from the acknowledged id;
       * a command still in the old one's queue no longer holds the way. */
      if (sh->running != NULL) {
        sh->running->detached = 1;
        sh->running = NULL;
      }
      shard_leave(sh);
      sh->gw = gw;
    }
    ready = gw != NULL && h->gateway_state(gw) == DGW_STATE_READY;

    if (ready && !sh->here && !sh->loading && sh->running == NULL &&
        redis_is_up(c->writer) &&
        redis_command(c->writer, on_acked, sh, "GET %s", sh->acked_key) == 0)
      sh->loading = 1;
    else if (!ready && sh->here && sh->running == NULL)
      shard_leave(sh);
  }
  writer_trim(c);
  writer_flush(c);
  read_more(c);
}

/* ------------------------------------------------------------ life */

static void redis_log(enum dgw_log_level level, const char *msg, void *ud) {
  struct commands *c = ud;

  c->host->log(c->host, level, "commands: %s", msg);
}

static void on_up(struct dgw_redis *r, void *ud) {
  struct commands *c = ud;

  (void)r;
  writer_flush(c);
  read_more(c);
}

struct commands *commands_new(const struct dgw_plugin_host *host,
                              const char *url, const char *name,
                              uint64_t reply_ttl_ms, char *why,
                              size_t why_size) {
  static const struct redis_callbacks cb = {on_up, NULL};
  struct commands *c;

  if (!DGW_PLUGIN_HOST_HAS(host, request_channel_info_args)) {
    snprintf(why, why_size,
             "this dgw is too old for command streams (no completions in "
             "its plugin host table)");
    return NULL;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL) {
    snprintf(why, why_size, "out of memory");
    return NULL;
  }
  c->host = host;
  snprintf(c->name, sizeof(c->name), "%s", name);
  snprintf(c->ttl, sizeof(c->ttl), "%llu", (unsigned long long)reply_ttl_ms);
  c->reader = redis_new(host->base, url, &cb, c, redis_log, c, why, why_size);
  c->writer = c->reader != NULL ? redis_new(host->base, url, &cb, c, redis_log,
                                            c, why, why_size)
                                : NULL;
  c->tick =
      c->writer != NULL ? host->timer_add(host, TICK_MS, 1, tick, c) : NULL;
  if (c->tick == NULL) {
    if (c->reader != NULL && c->writer != NULL)
      snprintf(why, why_size, "out of memory");
    redis_free(c->writer);
    redis_free(c->reader);
    free(c);
    return NULL;
  }
  host->log(host, DGW_LOG_INFO,
            "commands: reading dgw:{%s}:commands:N for the shards READY here",
            c->name);
  return c;
}

void commands_free(struct commands *c) {
  uint64_t unsent = 0;

  if (c == NULL)
    return;
  c->closing = 1;
  redis_free(c->reader);
  redis_free(c->writer);
  c->host->timer_remove(c->host, c->tick);
  c->host->timer_remove(c->host, c->retry);
  for (uint32_t i = 0; i < c->nshards; i++)
    shard_leave(c->shards[i]);
  unsent = writer_drop(c);
  while (c->runs != NULL) {
    struct crun *run = c->runs;

    c->runs = run->next;
    free(run);
  }
  c->host->log(c->host, unsent > 0 ? DGW_LOG_WARN : DGW_LOG_INFO,
               "commands: %llu read, %llu sent, %llu refused with an error "
               "reply, %llu replies not written at exit, %llu acknowledged "
               "entries trimmed",
               (unsigned long long)c->read, (unsigned long long)c->done_ok,
               (unsigned long long)c->done_err, (unsigned long long)unsent,
               (unsigned long long)c->trimmed);
  for (uint32_t i = 0; i < c->nshards; i++)
    free(c->shards[i]);
  free(c->shards);
  free(c);
}
