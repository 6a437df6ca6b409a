/*
 * redis-streams-worker: the C twin of worker.py, on hiredis's blocking API.
 * Reads dgw:{NAME}:events in a consumer group, skips a repeated (session,
 * s) (delivery is at-least-once), prints each new event as a line
 *
 *   t=MESSAGE_CREATE s=42 shard=0 session=... d={...raw d...}
 *
 * and acknowledges it.  Exits 0 after --count events, 1 when --timeout
 * seconds pass without one, 2 on a usage or Redis error.
 *
 *   redis-streams-worker --socket PATH | --host H --port P
 *       [--name NAME] [--group G] [--consumer C] [--count N] [--timeout S]
 *
 * The dedup set here is a small ring of the last keys seen: enough for the
 * resends of one reconnect; a real worker bounds it by time.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/hiredis.h>

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

int main(int argc, char **argv) {
  const char *sock = NULL, *host = "127.0.0.1", *name = "dgw";
  const char *group = "workers", *consumer = "worker-1";
  int port = 6379, done = 0;
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
    else {
      fprintf(stderr, "redis-streams-worker: unknown option %s\n", argv[i]);
      return 2;
    }
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
        }
        ack = redisCommand(c, "XACK %s %s %s", stream, group, id->str);
        freeReplyObject(ack);
      }
    }
    freeReplyObject(r);
  }
  redisFree(c);
  return 0;
}
