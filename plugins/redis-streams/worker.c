/*
 * redis-streams-worker: the C twin of worker.py, on hiredis's blocking API.
 * Reads dgw:{NAME}:events in a consumer group, skips a repeated (session,
 * s) (delivery is at-least-once), prints each new event as a line
 *
 *   t=MESSAGE_CREATE s=42 shard=0 session=... d={...raw d...}
 *
 * and acknowledges it.  A MESSAGE_CREATE whose content is "!ping" is
 * answered with a presence update (activity "PONG-MSGID") XADDed to the
 * command stream of the message's shard, (guild_id >> 22) % --shards
 * (docs/streams.md); stderr says "command ID to shard N".  Exits 0 after
 * --count events, 1 when --timeout seconds pass without one, 2 on a usage
 * or Redis error.
 *
 *   redis-streams-worker --socket PATH | --host H --port P
 *       [--name NAME] [--group G] [--consumer C] [--count N] [--timeout S]
 *       [--shards N] [--pong TEXT] [--no-answer 1]
 *
 * The dedup set here is a small ring of the last keys seen: enough for the
 * resends of one reconnect; a real worker bounds it by time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>
#include <json-c/json.h>

#define RING 4096

static char ring[RING][112];
static unsigned ring_next;

static int seen(const char *key) {
  for (unsigned i = 0; i < RING; i++)
    if (strcmp(ring[i], key) == 0)
      return 1;
  snprintf(ring[ring_next++ % RING], sizeof(ring[0]), "%s", key);
  return 0;
}

static const redisReply *field(const redisReply *f, const char *name) {
  for (size_t i = 0; i + 1 < f->elements; i += 2)
    if (strcmp(f->element[i]->str, name) == 0)
      return f->element[i + 1];
  return NULL;
}

/* The string member `k` of `d`, or NULL. */
static const char *str(struct json_object *d, const char *k) {
  struct json_object *v;

  if (!json_object_object_get_ex(d, k, &v) ||
      !json_object_is_type(v, json_type_string))
    return NULL;
  return json_object_get_string(v);
}

/* Answers a "!ping" (the raw d of a MESSAGE_CREATE) with a presence
 * update through its shard's command stream; 0, or -1 on a Redis error. */
static int answer_ping(redisContext *c, const char *name, const char *consumer,
                       const char *pong, unsigned shards, const char *raw,
                       size_t len) {
  struct json_object *d = json_tokener_parse(raw), *p, *acts, *act;
  const char *content, *gid, *mid;
  char stream[200], cid[200], shard_s[16];
  unsigned shard = 0;
  redisReply *r;
  int rv = 0;

  (void)len;
  if (d == NULL)
    return 0;
  content = str(d, "content");
  if (content == NULL || strcmp(content, "!ping") != 0) {
    json_object_put(d);
    return 0;
  }
  gid = str(d, "guild_id");
  mid = str(d, "id") != NULL ? str(d, "id") : "0";
  if (gid != NULL) /* the shard that owns the guild; DMs go to shard 0 */
    shard = (unsigned)((strtoull(gid, NULL, 10) >> 22) % shards);
  snprintf(stream, sizeof(stream), "dgw:{%s}:commands:%u", name, shard);
  snprintf(cid, sizeof(cid), "ping-%s-%s", consumer, mid);
  snprintf(shard_s, sizeof(shard_s), "%u", shard);
  p = json_object_new_object();
  acts = json_object_new_array();
  act = json_object_new_object();
  {
    char an[160];

    snprintf(an, sizeof(an), "%s-%s", pong, mid);
    json_object_object_add(act, "name", json_object_new_string(an));
  }
  json_object_object_add(act, "type", json_object_new_int(0));
  json_object_array_add(acts, act);
  json_object_object_add(p, "status", json_object_new_string("online"));
  json_object_object_add(p, "since", NULL);
  json_object_object_add(p, "afk", json_object_new_boolean(0));
  json_object_object_add(p, "activities", acts);
  r = redisCommand(c, "XADD %s * id %s op presence shard %s d %s", stream, cid,
                   shard_s,
                   json_object_to_json_string_ext(p, JSON_C_TO_STRING_PLAIN));
  if (r == NULL || r->type == REDIS_REPLY_ERROR) {
    fprintf(stderr, "redis-streams-worker: XADD %s: %s\n", stream,
            r != NULL ? r->str : c->errstr);
    rv = -1;
  } else {
    fprintf(stderr, "command %s to shard %u\n", cid, shard);
  }
  freeReplyObject(r);
  json_object_put(p);
  json_object_put(d);
  return rv;
}

int main(int argc, char **argv) {
  const char *sock = NULL, *host = "127.0.0.1", *name = "dgw";
  const char *group = "workers", *consumer = "worker-1", *pong = "pong";
  int port = 6379, done = 0, answer = 1;
  unsigned shards = 1;
  long count = 0;
  double timeout = 10;
  char stream[200];
  redisContext *c;
  redisReply *r;

  for (int i = 1; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--socket") == 0)
      sock = argv[i + 1];
    else if (strcmp(argv[i], "--host") == 0)
      host = argv[i + 1];
    else if (strcmp(argv[i], "--port") == 0)
      port = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--name") == 0)
      name = argv[i + 1];
    else if (strcmp(argv[i], "--group") == 0)
      group = argv[i + 1];
    else if (strcmp(argv[i], "--consumer") == 0)
      consumer = argv[i + 1];
    else if (strcmp(argv[i], "--count") == 0)
      count = atol(argv[i + 1]);
    else if (strcmp(argv[i], "--timeout") == 0)
      timeout = atof(argv[i + 1]);
    else if (strcmp(argv[i], "--shards") == 0)
      shards = (unsigned)atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--pong") == 0)
      pong = argv[i + 1];
    else if (strcmp(argv[i], "--no-answer") == 0)
      answer = atoi(argv[i + 1]) == 0;
    else {
      fprintf(stderr, "redis-streams-worker: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (shards == 0) {
    fprintf(stderr, "redis-streams-worker: --shards must be at least 1\n");
    return 2;
  }
  c = sock != NULL ? redisConnectUnix(sock) : redisConnect(host, port);
  if (c == NULL || c->err) {
    fprintf(stderr, "redis-streams-worker: %s\n",
            c != NULL ? c->errstr : "out of memory");
    return 2;
  }
  snprintf(stream, sizeof(stream), "dgw:{%s}:events", name);
  r = redisCommand(c, "XGROUP CREATE %s %s 0 MKSTREAM", stream, group);
  if (r == NULL ||
      (r->type == REDIS_REPLY_ERROR && strncmp(r->str, "BUSYGROUP", 9) != 0)) {
    fprintf(stderr, "redis-streams-worker: XGROUP CREATE: %s\n",
            r != NULL ? r->str : c->errstr);
    return 2;
  }
  freeReplyObject(r);
  while (count == 0 || done < count) {
    r = redisCommand(c,
                     "XREADGROUP GROUP %s %s COUNT 100 BLOCK %d STREAMS %s >",
                     group, consumer, (int)(timeout * 1000), stream);
    if (r == NULL || r->type == REDIS_REPLY_ERROR) {
      fprintf(stderr, "redis-streams-worker: XREADGROUP: %s\n",
              r != NULL ? r->str : c->errstr);
      return 2;
    }
    if (r->type != REDIS_REPLY_ARRAY || r->elements == 0) {
      freeReplyObject(r);
      return count > 0 ? 1 : 0;
    }
    for (size_t s = 0; s < r->elements; s++) {
      const redisReply *entries = r->element[s]->element[1];

      for (size_t i = 0; i < entries->elements; i++) {
        const redisReply *id = entries->element[i]->element[0];
        const redisReply *f = entries->element[i]->element[1];
        const redisReply *t = field(f, "t"), *sq = field(f, "s");
        const redisReply *sh = field(f, "shard"), *se = field(f, "session");
        const redisReply *d = field(f, "d");
        char key[112];
        redisReply *ack;

        if (t == NULL || sq == NULL || sh == NULL || se == NULL || d == NULL)
          continue; /* not an entry of the plugin */
        snprintf(key, sizeof(key), "%s/%s", se->str, sq->str);
        if (!seen(key)) {
          printf("t=%s s=%s shard=%s session=%s d=%.*s\n", t->str, sq->str,
                 sh->str, se->str, (int)d->len, d->str);
          fflush(stdout);
          done++;
          if (answer && strcmp(t->str, "MESSAGE_CREATE") == 0 &&
              answer_ping(c, name, consumer, pong, shards, d->str, d->len) < 0)
            return 2;
        }
        /* Acknowledged after its command is in Redis: a worker that dies
         * before gets the message again (at-least-once). */
        ack = redisCommand(c, "XACK %s %s %s", stream, group, id->str);
        freeReplyObject(ack);
      }
    }
    freeReplyObject(r);
  }
  redisFree(c);
  return 0;
}
