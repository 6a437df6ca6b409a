/*
 * The cluster's option (dgw_options_set_cluster) and the client's hooks
 * into it, built with or without hiredis: without it the option says
 * DGW_ERR_UNSUPPORTED and the hooks do nothing.
 */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include <dgw/dgw.h>

#include "client.h"
#include "client_shards.h"
#include "cluster.h"
#ifdef HAVE_HIREDIS
#include "redis.h"
#endif

#define LEASE_DEFAULT_MS 15000
#define LEASE_MIN_MS 300
#define LEASE_MAX_MS 600000

int cluster_name_check(const char *name, char *why, size_t why_len) {
  size_t n = name != NULL ? strlen(name) : 0;

  if (n == 0 || n > 64) {
    snprintf(why, why_len, "the cluster name must be 1 to 64 characters");
    return -1;
  }
  for (size_t i = 0; i < n; i++)
    if (!isalnum((unsigned char)name[i]) && strchr("_.-", name[i]) == NULL) {
      snprintf(why, why_len,
               "the cluster name \"%s\" may hold only letters, digits, "
               "'_', '.' and '-'",
               name);
      return -1;
    }
  return 0;
}

int dgw_options_set_cluster(struct dgw_options *opt, const char *redis_url,
                            const char *name, uint32_t lease_ms) {
#ifdef HAVE_HIREDIS
  struct redis_addr addr;
  char why[256];
  char *url_copy;
  char *name_copy;

  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (redis_url == NULL) {
    if (opt->cluster_redis != NULL)
      OPENSSL_cleanse(opt->cluster_redis, strlen(opt->cluster_redis));
    free(opt->cluster_redis);
    free(opt->cluster_name);
    opt->cluster_redis = NULL;
    opt->cluster_name = NULL;
    return DGW_OK;
  }
  if (redis_url_parse(redis_url, &addr, why, sizeof(why)) != 0)
    return DGW_ERR_URL;
  OPENSSL_cleanse(&addr, sizeof(addr));
  if (cluster_name_check(name, why, sizeof(why)) != 0)
    return DGW_ERR_INVALID_ARGUMENT;
  if (lease_ms == 0)
    lease_ms = LEASE_DEFAULT_MS;
  if (lease_ms < LEASE_MIN_MS || lease_ms > LEASE_MAX_MS)
    return DGW_ERR_INVALID_ARGUMENT;
  url_copy = strdup(redis_url);
  name_copy = strdup(name);
  if (url_copy == NULL || name_copy == NULL) {
    free(url_copy);
    free(name_copy);
    return DGW_ERR_NOMEM;
  }
  dgw_options_set_cluster(opt, NULL, NULL, 0);
  opt->cluster_redis = url_copy;
  opt->cluster_name = name_copy;
  opt->cluster_lease_ms = lease_ms;
  return DGW_OK;
#else
  (void)redis_url;
  (void)name;
  (void)lease_ms;
  return opt == NULL ? DGW_ERR_INVALID_ARGUMENT : DGW_ERR_UNSUPPORTED;
#endif
}

int client_cluster_start(struct dgw_client *c) {
#ifdef HAVE_HIREDIS
  char why[256] = "";
  int rv;

  if (c->opt.cluster_redis == NULL || c->cluster != NULL)
    return DGW_OK;
  c->cluster = cluster_new(c, c->opt.cluster_redis, c->opt.cluster_name,
                           c->opt.cluster_lease_ms, why, sizeof(why));
  if (c->cluster == NULL) {
    client_log(c, DGW_LOG_ERROR, "not starting: the cluster: %s", why);
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if ((rv = client_shards_manage(c, cluster_fence, c->cluster)) != DGW_OK) {
    cluster_free(c->cluster);
    c->cluster = NULL;
  }
  return rv;
#else
  (void)c;
  return DGW_OK;
#endif
}

struct dgw_identify_queue *
client_cluster_identify(struct dgw_client *c,
                        const struct dgw_identify_limits *limits,
                        dgw_identify_grant_fn grant, void *user_data) {
#ifdef HAVE_HIREDIS
  if (c->cluster != NULL)
    return cluster_identify_new(c->cluster, limits, grant, user_data);
#else
  (void)limits;
  (void)grant;
  (void)user_data;
#endif
  (void)c;
  return NULL;
}

int client_cluster_stop(struct dgw_client *c) {
#ifdef HAVE_HIREDIS
  if (c->cluster == NULL)
    return 0;
  cluster_leave(c->cluster);
  return 1;
#else
  (void)c;
  return 0;
#endif
}

int client_cluster_lease(struct dgw_client *c, uint32_t shard_id, char *member,
                         size_t member_size, uint64_t *token) {
#ifdef HAVE_HIREDIS
  if (c->cluster != NULL)
    return cluster_lease_of(c->cluster, shard_id, member, member_size, token);
#else
  (void)shard_id;
  (void)member;
  (void)member_size;
  (void)token;
#endif
  (void)c;
  return DGW_ERR_NOT_FOUND;
}

void client_cluster_free(struct dgw_client *c) {
#ifdef HAVE_HIREDIS
  cluster_free(c->cluster);
#endif
  c->cluster = NULL;
}
