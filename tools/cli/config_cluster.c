/*
 * "cluster" in `dgw run`'s config, and `dgw cluster status CONFIG` (a
 * blocking hiredis client: one look at the keys lib/cluster.h lists).
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <json-c/json.h>

#include <dgw/dgw.h>

#include "cli.h"
#include "config_cluster.h"
#ifdef HAVE_HIREDIS
#include <hiredis/hiredis.h>

#include "redis.h"
#endif

#define LEASE_MIN_MS 300
#define LEASE_MAX_MS 600000

static int fail(const char *path, const char *key, char *why, size_t why_size,
                const char *msg) {
  snprintf(why, why_size, "%s: %s: %s", path, key, msg);
  return -1;
}

#ifdef HAVE_HIREDIS
/* The name rule of lib/cluster_options.c, checked here for the message. */
static int bad_name(const char *name) {
  size_t n = strlen(name);

  if (n == 0 || n > 64)
    return 1;
  for (size_t i = 0; i < n; i++)
    if (!((name[i] >= 'a' && name[i] <= 'z') ||
          (name[i] >= 'A' && name[i] <= 'Z') ||
          (name[i] >= '0' && name[i] <= '9') || strchr("_.-", name[i])))
      return 1;
  return 0;
}
#endif

int config_cluster_key(const char *path, const char *key, struct json_object *v,
                       struct cli_cluster *cc, char *why, size_t why_size) {
  if (strcmp(key, "cluster") != 0)
    return 1;
#ifndef HAVE_HIREDIS
  (void)v;
  (void)cc;
  return fail(path, "cluster", why, why_size,
              "this dgw was built without hiredis (configure "
              "--with-hiredis): no cluster");
#else
  char msg[300];

  if (!json_object_is_type(v, json_type_object))
    return fail(path, "cluster", why, why_size,
                "must be an object {\"redis\": URL, \"name\": NAME, "
                "\"lease_ms\": N}");
  json_object_object_foreach(v, k, val) {
    if (strcmp(k, "redis") == 0 || strcmp(k, "name") == 0) {
      char **field = k[0] == 'r' ? &cc->redis : &cc->name;

      if (!json_object_is_type(val, json_type_string)) {
        snprintf(msg, sizeof(msg), "cluster.%s", k);
        return fail(path, msg, why, why_size, "must be a string");
      }
      free(*field);
      if ((*field = strdup(json_object_get_string(val))) == NULL)
        return fail(path, "cluster", why, why_size, "out of memory");
    } else if (strcmp(k, "lease_ms") == 0) {
      int64_t n = json_object_get_int64(val);

      if (!json_object_is_type(val, json_type_int) || n < LEASE_MIN_MS ||
          n > LEASE_MAX_MS)
        return fail(path, "cluster.lease_ms", why, why_size,
                    "must be a whole number of ms from 300 to 600000");
      cc->lease_ms = (uint32_t)n;
    } else {
      snprintf(msg, sizeof(msg), "unknown key \"%s\" (redis, name, lease_ms)",
               k);
      return fail(path, "cluster", why, why_size, msg);
    }
  }
  if (cc->redis == NULL)
    return fail(path, "cluster.redis", why, why_size,
                "required: \"redis://HOST:PORT/DB\" or \"unix:///PATH\"");
  if (cc->name == NULL)
    return fail(path, "cluster.name", why, why_size,
                "required: the cluster's name, the same on every member");
  {
    struct redis_addr addr;

    if (redis_url_parse(cc->redis, &addr, msg, sizeof(msg)) != 0)
      return fail(path, "cluster.redis", why, why_size, msg);
  }
  if (bad_name(cc->name))
    return fail(path, "cluster.name", why, why_size,
                "1 to 64 of letters, digits, '_', '.' and '-'");
  return 0;
#endif
}

int config_cluster_apply(const struct cli_cluster *cc, struct dgw_options *opt,
                         char *why, size_t why_size) {
  int rv;

  if (cc->redis == NULL)
    return 0;
  rv = dgw_options_set_cluster(opt, cc->redis, cc->name, cc->lease_ms);
  if (rv != DGW_OK) {
    snprintf(why, why_size, "cluster: %s", dgw_strerror(rv));
    return -1;
  }
  return 0;
}

void config_cluster_free(struct cli_cluster *cc) {
  if (cc->redis != NULL) {
    volatile char *p = cc->redis;

    while (*p != '\0')
      *p++ = '\0';
  }
  free(cc->redis);
  free(cc->name);
  memset(cc, 0, sizeof(*cc));
}

/* ------------------------------------------------------------ status */

#ifdef HAVE_HIREDIS
static redisReply *cmd(redisContext *rc, const char *fmt, ...) {
  va_list ap;
  void *r;

  va_start(ap, fmt);
  r = redisvCommand(rc, fmt, ap);
  va_end(ap);
  return r;
}

/* Connects, AUTHs and SELECTs; NULL after a line naming the cause. */
static redisContext *connect_to(const char *url) {
  struct redis_addr a;
  struct timeval tv = {2, 0};
  redisContext *rc;
  redisReply *r = NULL;
  char why[300];

  if (redis_url_parse(url, &a, why, sizeof(why)) != 0) {
    cli_say(DGW_LOG_ERROR, "%s", why);
    return NULL;
  }
  rc = a.is_unix ? redisConnectUnixWithTimeout(a.path, tv)
                 : redisConnectWithTimeout(a.host, a.port, tv);
  if (rc == NULL || rc->err) {
    redis_addr_describe(&a, why, sizeof(why));
    cli_say(DGW_LOG_ERROR, "cannot reach Redis at %s: %s", why,
            rc != NULL ? rc->errstr : "out of memory");
    goto fail;
  }
  redisSetTimeout(rc, tv);
  if (a.password[0] != '\0')
    r = a.user[0] != '\0' ? cmd(rc, "AUTH %s %s", a.user, a.password)
                          : cmd(rc, "AUTH %s", a.password);
  if (r == NULL && a.db != 0)
    r = cmd(rc, "SELECT %d", a.db);
  else if (r != NULL && r->type != REDIS_REPLY_ERROR && a.db != 0) {
    freeReplyObject(r);
    r = cmd(rc, "SELECT %d", a.db);
  }
  if (r != NULL && r->type == REDIS_REPLY_ERROR) {
    cli_say(DGW_LOG_ERROR, "Redis refused the login or database: %s", r->str);
    freeReplyObject(r);
    goto fail;
  }
  if (r != NULL)
    freeReplyObject(r);
  return rc;
fail:
  if (rc != NULL)
    redisFree(rc);
  return NULL;
}

/* The highest shard id with a lease or a session key, + 1. */
static long shard_count(redisContext *rc, const char *name) {
  char cursor[32] = "0";
  char match[200];
  long n = 0;

  snprintf(match, sizeof(match), "dgw:{%s}:*", name);
  do {
    redisReply *r = cmd(rc, "SCAN %s MATCH %s COUNT 1000", cursor, match);

    if (r == NULL || r->type != REDIS_REPLY_ARRAY || r->elements != 2) {
      if (r != NULL)
        freeReplyObject(r);
      return -1;
    }
    snprintf(cursor, sizeof(cursor), "%s", r->element[0]->str);
    for (size_t i = 0; i < r->element[1]->elements; i++) {
      const char *k = r->element[1]->element[i]->str;
      const char *p = strrchr(k, ':');
      long id;

      if (p == NULL ||
          (strstr(k, "}:lease:") == NULL && strstr(k, "}:session:") == NULL))
        continue;
      id = strtol(p + 1, NULL, 10);
      if (id + 1 > n)
        n = id + 1;
    }
    freeReplyObject(r);
  } while (strcmp(cursor, "0") != 0);
  return n;
}

/* The numbers the members agreed on (lib/cluster_agree.h). */
static void print_config(redisContext *rc, const char *name) {
  redisReply *c = cmd(rc,
                      "HMGET dgw:{%s}:config first count total lease_ms "
                      "member",
                      name);

  if (c != NULL && c->type == REDIS_REPLY_ARRAY && c->elements == 5 &&
      c->element[0]->type == REDIS_REPLY_STRING &&
      c->element[1]->type == REDIS_REPLY_STRING &&
      c->element[2]->type == REDIS_REPLY_STRING &&
      c->element[3]->type == REDIS_REPLY_STRING)
    printf("  config: shards %s-%ld of %s, lease_ms %s (set by %s)\n",
           c->element[0]->str,
           strtol(c->element[0]->str, NULL, 10) +
               strtol(c->element[1]->str, NULL, 10) - 1,
           c->element[2]->str, c->element[3]->str,
           c->element[4]->type == REDIS_REPLY_STRING ? c->element[4]->str
                                                     : "?");
  else
    printf("  config: none stored (no member has joined)\n");
  if (c != NULL)
    freeReplyObject(c);
}

static int status(const struct cli_cluster *cc) {
  redisContext *rc = connect_to(cc->redis);
  redisReply *r;
  long n;

  if (rc == NULL)
    return CLI_EXIT_RUNTIME;
  r = cmd(rc, "ZRANGE dgw:{%s}:members 0 -1", cc->name);
  if (r == NULL || r->type != REDIS_REPLY_ARRAY) {
    cli_say(DGW_LOG_ERROR, "Redis: %s", r != NULL ? r->str : rc->errstr);
    if (r != NULL)
      freeReplyObject(r);
    redisFree(rc);
    return CLI_EXIT_RUNTIME;
  }
  printf("cluster %s: %zu member(s)\n", cc->name, r->elements);
  for (size_t i = 0; i < r->elements; i++) {
    redisReply *info =
        cmd(rc, "GET dgw:{%s}:member:%s", cc->name, r->element[i]->str);

    printf("  member %s (%s)\n", r->element[i]->str,
           info != NULL && info->type == REDIS_REPLY_STRING ? info->str
                                                            : "expired");
    if (info != NULL)
      freeReplyObject(info);
  }
  freeReplyObject(r);
  print_config(rc, cc->name);
  n = shard_count(rc, cc->name);
  printf("%-6s %-32s %-6s %-11s %-10s %s\n", "shard", "holder", "token",
         "state", "seq", "lease_left_ms");
  for (long s = 0; s < n; s++) {
    redisReply *l = cmd(rc, "GET dgw:{%s}:lease:%ld", cc->name, s);
    redisReply *t = cmd(rc, "PTTL dgw:{%s}:lease:%ld", cc->name, s);
    redisReply *h =
        cmd(rc, "HMGET dgw:{%s}:session:%ld seq state", cc->name, s);
    char holder[160] = "-", token[24] = "-";

    if (l != NULL && l->type == REDIS_REPLY_STRING) {
      const char *sp = strrchr(l->str, ' ');

      snprintf(holder, sizeof(holder), "%.*s",
               sp != NULL ? (int)(sp - l->str) : (int)l->len, l->str);
      if (sp != NULL)
        snprintf(token, sizeof(token), "%s", sp + 1);
    }
    printf("%-6ld %-32s %-6s %-11s %-10s %lld\n", s, holder, token,
           h != NULL && h->type == REDIS_REPLY_ARRAY && h->elements == 2 &&
                   h->element[1]->type == REDIS_REPLY_STRING
               ? h->element[1]->str
               : (holder[0] == '-' ? "free" : "held"),
           h != NULL && h->type == REDIS_REPLY_ARRAY && h->elements == 2 &&
                   h->element[0]->type == REDIS_REPLY_STRING
               ? h->element[0]->str
               : "-",
           t != NULL && t->type == REDIS_REPLY_INTEGER && t->integer > 0
               ? (long long)t->integer
               : 0LL);
    if (l != NULL)
      freeReplyObject(l);
    if (t != NULL)
      freeReplyObject(t);
    if (h != NULL)
      freeReplyObject(h);
  }
  redisFree(rc);
  return CLI_EXIT_OK;
}
#endif

int cmd_cluster(int argc, char **argv) {
  struct cli_cluster cc;
  struct json_object *root;
  struct json_object *v;
  char why[512];
  int rv;

  if (argc != 3 || strcmp(argv[1], "status") != 0) {
    fprintf(argc >= 2 && strcmp(argv[1], "--help") == 0 ? stdout : stderr,
            "usage: dgw cluster status CONFIG\n"
            "Members, and for each shard its holder, fencing token, state,\n"
            "seq and lease left, from the Redis of CONFIG's \"cluster\" key.\n"
            "Exit status: 0 shown, 1 Redis unreachable, 2 usage, 3 config.\n");
    return argc >= 2 && strcmp(argv[1], "--help") == 0 ? CLI_EXIT_OK
                                                       : CLI_EXIT_USAGE;
  }
  memset(&cc, 0, sizeof(cc));
  if ((root = json_object_from_file(argv[2])) == NULL) {
    cli_say(DGW_LOG_ERROR, "%s: cannot read it as JSON", argv[2]);
    return CLI_EXIT_CONFIG;
  }
  if (!json_object_object_get_ex(root, "cluster", &v)) {
    cli_say(DGW_LOG_ERROR, "%s: cluster: not set", argv[2]);
    json_object_put(root);
    return CLI_EXIT_CONFIG;
  }
  if (config_cluster_key(argv[2], "cluster", v, &cc, why, sizeof(why)) != 0) {
    cli_say(DGW_LOG_ERROR, "%s", why);
    json_object_put(root);
    config_cluster_free(&cc);
    return CLI_EXIT_CONFIG;
  }
  json_object_put(root);
#ifdef HAVE_HIREDIS
  rv = status(&cc);
#else
  rv = CLI_EXIT_CONFIG;
#endif
  config_cluster_free(&cc);
  return rv;
}
