/*
 * The client's side of its plugins: the host interface that lets the
 * router (router.c) and the loader (plugin.c) reach the client without
 * knowing its struct, and the public calls that load plugins, register
 * handlers and describe what is loaded.
 */
#include "config.h"

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

#include "client.h"
#include "client_plugins.h"
#include "cluster.h"
#include "gateway.h"
#include "plugin.h"
#include "router.h"
#include "why.h"

/* ------------------------------------------------ the host interface */

static uint32_t host_shard_count(void *owner) {
  const struct dgw_client *c = owner;

  return c->nshards;
}

static struct dgw_gateway *host_shard_at(void *owner, uint32_t index) {
  struct dgw_client *c = owner;

  return index < c->nshards ? c->shards[index] : NULL;
}

static int host_log_enabled(void *owner, enum dgw_log_level level) {
  const struct dgw_client *c = owner;

  return c->opt.log != NULL && level <= c->opt.log_level;
}

static void host_log(void *owner, enum dgw_log_level level, const char *line) {
  client_log(owner, level, "%s", line);
}

static int host_freeing(void *owner) {
  const struct dgw_client *c = owner;

  return client_dying(c);
}

static void host_enter(void *owner) {
  client_enter(owner);
}

static int host_leave(void *owner) {
  return client_leave(owner);
}

/* A shard of this client, or NULL. */
static int host_owns(const struct dgw_client *c, const struct dgw_gateway *gw) {
  for (uint32_t i = 0; i < c->nshards; i++)
    if (c->shards[i] == gw)
      return 1;
  return 0;
}

static int host_hold(void *owner, struct dgw_gateway *gw, int on) {
  struct dgw_client *c = owner;

  if (!host_owns(c, gw))
    return DGW_ERR_INVALID_ARGUMENT;
  if (client_dying(c))
    return DGW_ERR_STATE;
  return on ? gateway_hold(gw) : gateway_release(gw);
}

static int host_held(void *owner, const struct dgw_gateway *gw) {
  return host_owns(owner, gw) && gateway_holds(gw) > 0;
}

static const char *host_cluster_name(void *owner) {
  struct dgw_client *c = owner;

  return c->opt.cluster_redis != NULL ? c->opt.cluster_name : NULL;
}

static int host_cluster_lease(void *owner, uint32_t shard_id, char *member,
                              size_t member_size, uint64_t *token) {
  return client_cluster_lease(owner, shard_id, member, member_size, token);
}

struct dgw_plugins *client_plugins_new(struct dgw_client *c) {
  struct plugins_host host = {
      .client = c,
      .base = c->base,
      .owner = c,
      .strict = c->opt.plugins_strict,
      .shard_count = host_shard_count,
      .shard_at = host_shard_at,
      .log_enabled = host_log_enabled,
      .log = host_log,
      .freeing = host_freeing,
      .enter = host_enter,
      .leave = host_leave,
      .hold = host_hold,
      .held = host_held,
      .cluster_name = host_cluster_name,
      .cluster_lease = host_cluster_lease,
  };

  return plugins_new(&host);
}

/* ------------------------------------------------------------ public */

int dgw_client_load_plugin(struct dgw_client *c, const char *name_or_path,
                           const char *config_json, char *why,
                           size_t why_size) {
  if (why != NULL && why_size > 0)
    why[0] = '\0';
  if (c == NULL || name_or_path == NULL || *name_or_path == '\0') {
    dgw_set_why(why, why_size, "no client, or no plugin name or path given");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if (c->started || client_dying(c)) {
    dgw_set_why(why, why_size,
                "%s: the client has started; load plugins before "
                "dgw_client_start()",
                name_or_path);
    return DGW_ERR_STATE;
  }
  return plugins_load(c->plugins, name_or_path, config_json, why, why_size);
}

size_t dgw_client_plugin_count(const struct dgw_client *c) {
  return c != NULL ? plugins_count(c->plugins) : 0;
}

int dgw_client_plugin_info(const struct dgw_client *c, size_t index,
                           struct dgw_plugin_info *info, size_t info_size) {
  if (c == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  return plugins_info(c->plugins, index, info, info_size);
}

int dgw_client_on_event(struct dgw_client *c, const char *event_name,
                        dgw_dispatch_fn fn, void *user_data) {
  if (c == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (c->started || client_dying(c))
    return DGW_ERR_STATE;
  return plugins_add_handler(c->plugins, event_name, fn, user_data);
}
