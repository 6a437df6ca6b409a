/*
 * dgw_client: the shards, the shared TLS context and resolver, GET
 * /gateway/bot before the shards when it is needed, and the deferred free
 * that makes dgw_client_free() safe inside any callback.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include <dgw/dgw.h>

#include "client.h"
#include "client_plugins.h"
#include "client_shards.h"
#include "cluster.h"
#include "gateway.h"
#include "identify.h"
#include "inflate.h"
#include "pacer.h"
#include "policy.h"
#include "requests.h"
#include "resolver.h"
#include "rest.h"
#include "router.h"
#include "tls.h"

void client_log(struct dgw_client *c, enum dgw_log_level level, const char *fmt,
                ...) {
  char line[512];
  va_list ap;

  if (c->opt.log == NULL || level > c->opt.log_level)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  c->opt.log(level, line, c->opt.log_user_data);
}

static void free_shards(struct dgw_client *c);

static void destroy(struct dgw_client *c) {
  /* Plugins first: their fini may still log and look at the shards. */
  plugins_free(c->plugins);
  c->plugins = NULL;
  /* Before the resolver and the TLS context: its lookup and connection
   * hold their own references to both. */
  dgw_rest_free(c->rest);
  c->rest = NULL;
  client_drop_pending_sessions(c);
  /* A shared identify queue runs on the cluster's Redis: it goes first. */
  if (c->identify != NULL)
    c->identify->destroy(c->identify);
  c->identify = NULL;
  client_cluster_free(c); /* writes nothing: its leases expire */
  client_shards_free(c);
  free_shards(c);
  /* Lookups still in flight keep the resolver until they report back. */
  dgw_resolver_unref(c->resolver);
  if (c->identify != NULL)
    c->identify->destroy(c->identify);
  dgw_pacer_free(c->pacer);
  dgw_inflate_sleeper_free(c->sleeper);
  SSL_CTX_free(c->ssl);
  if (c->tokener != NULL)
    json_tokener_free(c->tokener);
  options_clear(&c->opt);
  free(c);
}

void client_enter(struct dgw_client *c) {
  dgw_guard_enter(&c->guard);
}

int client_leave(struct dgw_client *c) {
  if (dgw_guard_leave(&c->guard)) {
    destroy(c);
    return 1;
  }
  return 0;
}

/* The identify queue's grant: the shard identifies from its own loop
 * callback, never inside the queue. */
static void identify_granted(void *shard, void *user_data) {
  (void)user_data;
  gateway_grant_identify(shard);
}

/* The pacer's grant: a shard waiting for a connection slot connects from
 * its own timer a few random ms from now; one that no longer waits gives
 * the slot back. */
static void connect_granted(void *shard, void *user_data) {
  struct dgw_client *c = user_data;
  uint32_t jitter = (uint32_t)(dgw_random01() * (DGW_PACER_JITTER_MS + 1));

  if (!gateway_grant_connect(shard, jitter))
    dgw_pacer_release(c->pacer, shard);
}

/* An identify queue with the limits in c->opt. */
static struct dgw_identify_queue *new_identify_queue(struct dgw_client *c) {
  struct dgw_identify_limits lim;

  lim.max_concurrency = c->opt.identify_concurrency;
  lim.window_ms = c->opt.identify_window_ms;
  lim.remaining = c->opt.starts_remaining;
  lim.total = c->opt.starts_total;
  lim.reset_after_ms = c->opt.starts_reset_after_ms;
  if (c->cluster != NULL) /* one queue for every member, in Redis */
    return client_cluster_identify(c, &lim, identify_granted, c);
  return dgw_identify_local_new(c->base, &lim, identify_granted, c, c->opt.log,
                                c->opt.log_user_data);
}

/* What shard `shard_id` needs of c->opt and the client's shared handles. */
static void shard_config_of(const struct dgw_client *c, uint32_t shard_id,
                            struct shard_config *sc) {
  memset(sc, 0, sizeof(*sc));
  sc->shard_id = shard_id;
  sc->shard_total = c->opt.shard_total;
  sc->token = c->opt.token;
  sc->intents = c->opt.intents;
  sc->gateway_url = c->opt.gateway_url;
  sc->compress = c->opt.compress;
  sc->large_threshold = c->opt.large_threshold;
  sc->presence_json = c->opt.presence_json;
  sc->properties_json = c->opt.properties_json;
  sc->backoff_base_ms = c->opt.backoff_base_ms;
  sc->backoff_max_ms = c->opt.backoff_max_ms;
  sc->healthy_ms = c->opt.healthy_ms;
  sc->invalid_min_ms = c->opt.invalid_min_ms;
  sc->invalid_max_ms = c->opt.invalid_max_ms;
  sc->connect_timeout_ms = c->opt.connect_timeout_ms;
  sc->close_timeout_ms = c->opt.close_timeout_ms;
  sc->max_payload = c->opt.max_payload;
  sc->send_budget = c->opt.send_budget;
  sc->send_window_ms = c->opt.send_window_ms;
  sc->send_queue = c->opt.send_queue;
  sc->lazy_lead_ms = c->opt.lazy_lead_ms;
  sc->quiet_ms = c->opt.quiet_sleep_ms;
  sc->sleeper = c->opt.quiet_sleep_ms > 0 ? c->sleeper : NULL;
  sc->log = c->opt.log;
  sc->log_user_data = c->opt.log_user_data;
  sc->log_level = c->opt.log_level;
  sc->base = c->base;
  sc->ssl = c->ssl;
  sc->resolver = c->resolver;
  sc->may_send = client_shards_may_send; /* a managed client's fence */
  sc->may_send_data = (void *)(uintptr_t)c;
}

/* Frees the shards and their request tables, without callbacks. */
static void free_shards(struct dgw_client *c) {
  for (uint32_t i = 0; i < c->nshards; i++) {
    if (c->shards != NULL) {
      dgw_pacer_release(c->pacer, c->shards[i]);
      gateway_free(c->shards[i]);
    }
    if (c->requests != NULL)
      dgw_requests_free(c->requests[i]);
  }
  free(c->shards);
  free(c->requests);
  c->shards = NULL;
  c->requests = NULL;
  c->nshards = 0;
}

/* Creates the shards c->opt names, idle.  On failure none is left. */
static int create_shards(struct dgw_client *c) {
  struct shard_config sc;

  if (c->opt.shard_count == 0)
    return DGW_OK;
  c->shards = calloc(c->opt.shard_count, sizeof(*c->shards));
  c->requests = calloc(c->opt.shard_count, sizeof(*c->requests));
  c->nshards = c->opt.shard_count;
  if (c->shards == NULL || c->requests == NULL) {
    free_shards(c);
    return DGW_ERR_NOMEM;
  }
  for (uint32_t i = 0; i < c->nshards; i++) {
    shard_config_of(c, c->opt.shard_first + i, &sc);
    c->shards[i] = gateway_new(&sc, &client_shard_ops, c);
    c->requests[i] = dgw_requests_new();
    if (c->shards[i] == NULL || c->requests[i] == NULL) {
      free_shards(c);
      return DGW_ERR_NOMEM;
    }
  }
  return DGW_OK;
}

struct dgw_gateway *client_swap_shard(struct dgw_client *c, uint32_t i) {
  struct dgw_gateway *old = c->shards[i];
  struct dgw_gateway *gw;
  struct shard_config sc;

  shard_config_of(c, c->opt.shard_first + i, &sc);
  if ((gw = gateway_new(&sc, &client_shard_ops, c)) == NULL)
    return NULL;
  c->shards[i] = gw;
  if (c->probe == old)
    c->probe = NULL;
  return old;
}

void client_retire_shard(struct dgw_client *c, uint32_t i,
                         struct dgw_gateway *old) {
  dgw_pacer_release(c->pacer, old);
  client_cancel_identify(c, old);
  /* Waits for this session's events fail now (the application hears it). */
  if (!client_dying(c))
    dgw_requests_fail_all(c->requests[i], old, DGW_ERR_SESSION_LOST);
  gateway_free(old);
}

int client_replace_shard(struct dgw_client *c, uint32_t i) {
  struct dgw_gateway *old = client_swap_shard(c, i);

  if (old == NULL)
    return DGW_ERR_NOMEM;
  client_enter(c);
  client_retire_shard(c, i, old);
  return client_leave(c) ? DGW_ERR_STATE : DGW_OK;
}

struct dgw_requests *client_requests(struct dgw_client *c,
                                     struct dgw_gateway *gw) {
  uint32_t i = dgw_gateway_shard_id(gw) - c->opt.shard_first;

  if (c->requests == NULL || i >= c->nshards || c->shards[i] != gw)
    return NULL;
  return c->requests[i];
}

/* c->ssl: a reference on the application's SSL_CTX, checked again (it may
 * have changed since dgw_options_set_ssl_ctx), or one of our own. */
static int take_ssl_ctx(struct dgw_client *c, char *why, size_t why_size) {
  int rv = DGW_ERR_TLS;

  if (c->opt.ssl_ctx == NULL) {
    c->ssl = dgw_tls_client_ctx_new(c->opt.ca_file, why, why_size, &rv);
    return c->ssl != NULL ? DGW_OK : rv;
  }
  if (!(SSL_CTX_get_verify_mode(c->opt.ssl_ctx) & SSL_VERIFY_PEER)) {
    snprintf(why, why_size,
             "the application's SSL_CTX does not verify the peer "
             "(SSL_VERIFY_NONE); dgw needs SSL_VERIFY_PEER");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if (SSL_CTX_up_ref(c->opt.ssl_ctx) != 1) {
    snprintf(why, why_size, "out of memory");
    return DGW_ERR_NOMEM;
  }
  c->ssl = c->opt.ssl_ctx;
  if (c->opt.ca_file != NULL)
    client_log(c, DGW_LOG_WARN,
               "the CA file %s is ignored: the application's SSL_CTX decides "
               "which CAs are trusted",
               c->opt.ca_file);
  return DGW_OK;
}

struct dgw_client *dgw_client_new(struct event_base *base,
                                  const struct dgw_options *opt,
                                  const struct dgw_callbacks *cb,
                                  void *user_data, int *err) {
  struct dgw_client *c;
  char why[256];
  int rv = DGW_ERR_NOMEM;

  if (base == NULL || opt == NULL || opt->token == NULL) {
    if (err != NULL)
      *err = DGW_ERR_INVALID_ARGUMENT;
    return NULL;
  }
  c = calloc(1, sizeof(*c));
  if (c == NULL)
    goto fail;
  c->base = base;
  c->user_data = user_data;
  if (cb != NULL)
    c->cb = *cb;
  if (options_copy(&c->opt, opt) != DGW_OK)
    goto fail;
  if ((c->plugins = client_plugins_new(c)) == NULL)
    goto fail;
  if ((rv = take_ssl_ctx(c, why, sizeof(why))) != DGW_OK) {
    client_log(c, DGW_LOG_ERROR, "%s", why);
    goto fail;
  }
  rv = DGW_ERR_NOMEM;
  /* The application's evdns_base (borrowed), or one that reads
   * /etc/resolv.conf and /etc/hosts once, for every shard of this client
   * (and GET /gateway/bot). */
  c->resolver = dgw_resolver_new(base, c->opt.dns_base, 0);
  if (c->resolver == NULL)
    goto fail;
  if ((c->identify = new_identify_queue(c)) == NULL)
    goto fail;
  c->pacer = dgw_pacer_new(base, c->opt.max_connecting, connect_granted, c);
  if (c->pacer == NULL)
    goto fail;
  if (c->opt.quiet_sleep_ms > 0 &&
      (c->sleeper = dgw_inflate_sleeper_new()) == NULL)
    goto fail;
  /* With auto shards the count comes from GET /gateway/bot. */
  if (c->opt.shards_auto)
    c->opt.shard_count = 0;
  if (create_shards(c) != DGW_OK)
    goto fail;
  return c;

fail:
  if (c != NULL)
    destroy(c);
  if (err != NULL)
    *err = rv;
  return NULL;
}

int client_rest_pending(const struct dgw_client *c) {
  return (c->opt.shards_auto || c->opt.gateway_url == NULL) &&
         !c->rest_answered;
}

void client_cancel_rest(struct dgw_client *c) {
  if (c->rest != NULL)
    client_log(c, DGW_LOG_DEBUG, "GET /gateway/bot cancelled");
  dgw_rest_free(c->rest);
  c->rest = NULL;
}

/* The client cannot run: says so, once. */
static void client_fail(struct dgw_client *c, int error, const char *why) {
  client_log(c, DGW_LOG_ERROR, "not starting: %s", why);
  if (c->cb.on_client_fatal != NULL && !client_dying(c))
    c->cb.on_client_fatal(c, error, why, c->user_data);
}

/* GET /gateway/bot answered: take what it says, make the shards (with
 * auto shards) and start them. */
static int take_answer(struct dgw_client *c,
                       const struct dgw_gateway_bot *bot) {
  struct dgw_identify_queue *q;
  char plan[160];

  if (c->opt.shards_auto)
    snprintf(plan, sizeof(plan), "running all %u", (unsigned)bot->shards);
  else
    snprintf(plan, sizeof(plan), "running shards %u..%u of %u as configured",
             (unsigned)c->opt.shard_first,
             (unsigned)(c->opt.shard_first + c->opt.shard_count - 1),
             (unsigned)c->opt.shard_total);
  client_log(c, DGW_LOG_INFO,
             "GET /gateway/bot: url %s, shards %u, max_concurrency %u, "
             "session starts %lld/%lld left, reset after %llu ms; %s%s",
             bot->url, (unsigned)bot->shards, (unsigned)bot->max_concurrency,
             (long long)bot->remaining, (long long)bot->total,
             (unsigned long long)bot->reset_after_ms, plan,
             c->opt.gateway_url != NULL ? " on the configured gateway URL"
                                        : "");
  if (c->opt.gateway_url == NULL) {
    if ((c->opt.gateway_url = strdup(bot->url)) == NULL)
      return DGW_ERR_NOMEM;
    /* Shards made before the answer learn it now (copied). */
    for (uint32_t i = 0; i < c->nshards; i++)
      if (gateway_set_url(c->shards[i], c->opt.gateway_url) != DGW_OK)
        return DGW_ERR_NOMEM;
  }
  /* Discord's limits replace the options'; the window stays. */
  c->opt.identify_concurrency = bot->max_concurrency;
  c->opt.starts_total = bot->total;
  c->opt.starts_remaining = bot->remaining;
  c->opt.starts_reset_after_ms = bot->reset_after_ms;
  /* No shard has asked to IDENTIFY yet, so the queue can be swapped. */
  if ((q = new_identify_queue(c)) != NULL) {
    c->identify->destroy(c->identify);
    c->identify = q;
  } else {
    client_log(c, DGW_LOG_WARN,
               "out of memory for the identify queue; keeping the "
               "configured identify limits");
  }
  if (c->opt.shards_auto) {
    c->opt.shard_first = 0;
    c->opt.shard_count = bot->shards;
    c->opt.shard_total = bot->shards;
    if (create_shards(c) != DGW_OK)
      return DGW_ERR_NOMEM;
  }
  c->rest_answered = 1;
  client_apply_pending_sessions(c);
  for (uint32_t i = 0;
       i < c->nshards && !client_shards_managed(c) && !client_dying(c); i++)
    gateway_start(c->shards[i]);
  return DGW_OK;
}

static void rest_done(struct dgw_rest *r, int error,
                      const struct dgw_gateway_bot *bot, const char *why,
                      void *user_data) {
  struct dgw_client *c = user_data;

  client_enter(c);
  dgw_rest_free(r); /* deferred until its callback returns */
  c->rest = NULL;
  if (error == DGW_OK && (error = take_answer(c, bot)) != DGW_OK)
    why = "out of memory while making the shards";
  if (error != DGW_OK)
    client_fail(c, error, why);
  client_leave(c);
}

/* Starts GET /gateway/bot; the shards start when it answers. */
static int ask_gateway_bot(struct dgw_client *c) {
  struct dgw_rest_config rc;
  int err = DGW_ERR_NOMEM;

  memset(&rc, 0, sizeof(rc));
  rc.api_url = c->opt.api_url != NULL ? c->opt.api_url : DGW_DEFAULT_API_URL;
  rc.token = c->opt.token;
  rc.ssl = c->ssl;
  rc.resolver = c->resolver;
  rc.timeout_ms = c->opt.connect_timeout_set ? c->opt.connect_timeout_ms : 0;
  rc.backoff_base_ms = c->opt.backoff_base_ms;
  rc.backoff_max_ms = c->opt.backoff_max_ms;
  rc.log = c->opt.log;
  rc.log_user_data = c->opt.log_user_data;
  rc.log_level = c->opt.log_level;
  c->rest = dgw_rest_gateway_bot(c->base, &rc, rest_done, c, &err);
  if (c->rest == NULL) {
    client_log(c, DGW_LOG_ERROR, "cannot ask GET %s/gateway/bot: %s",
               rc.api_url, dgw_strerror(err));
    return err;
  }
  if (strncasecmp(rc.api_url, "http://", 7) == 0)
    client_log(c, DGW_LOG_WARN,
               "the REST API URL %s is not https://: the token travels in "
               "clear",
               rc.api_url);
  client_log(c, DGW_LOG_DEBUG, "asking GET %s/gateway/bot before starting",
             rc.api_url);
  return DGW_OK;
}

int dgw_client_start(struct dgw_client *c) {
  if (c == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (c->started || client_dying(c))
    return DGW_ERR_STATE;
  if (c->opt.plugins_strict && plugins_refused(c->plugins) > 0) {
    client_log(c, DGW_LOG_ERROR,
               "not starting: %zu plugin(s) refused and loading is strict",
               plugins_refused(c->plugins));
    return DGW_ERR_PLUGIN;
  }
  if (plugins_build_routes(c->plugins) != DGW_OK)
    return DGW_ERR_NOMEM;
  {
    int err = client_cluster_start(c); /* managed from now on, if set */
    struct dgw_identify_queue *q;

    if (err != DGW_OK)
      return err;
    /* Nobody asked to IDENTIFY yet: the shared queue replaces ours. */
    if (c->cluster != NULL && (q = new_identify_queue(c)) != NULL) {
      c->identify->destroy(c->identify);
      c->identify = q;
    }
  }
  if (client_rest_pending(c)) {
    int err = ask_gateway_bot(c);

    if (err == DGW_OK)
      c->started = 1;
    return err;
  }
  c->started = 1;
  client_enter(c);
  for (uint32_t i = 0;
       i < c->nshards && !client_shards_managed(c) && !client_dying(c); i++)
    gateway_start(c->shards[i]); /* managed: the owner takes them */
  client_leave(c);
  return DGW_OK;
}

void dgw_client_stop(struct dgw_client *c) {
  if (c == NULL)
    return;
  client_enter(c);
  client_cancel_rest(c);
  /* A cluster member hands its shards over, then closes them all. */
  if (!client_cluster_stop(c))
    for (uint32_t i = 0; i < c->nshards && !client_dying(c); i++)
      dgw_gateway_close(c->shards[i]);
  client_leave(c);
}

void dgw_client_free(struct dgw_client *c) {
  if (c == NULL)
    return;
  /* Every queued command completes (dropped) while the client is whole,
   * inside a frame of ours: a completion that frees the client again
   * only marks it, and the outermost frame destroys (issue 18). */
  client_enter(c);
  for (uint32_t i = 0; i < c->nshards && c->shards != NULL; i++)
    gateway_drop_commands(c->shards[i], DGW_SEND_FREED);
  dgw_guard_free(&c->guard); /* inside our frame: marks it */
  client_leave(c);
}

uint32_t dgw_client_shard_count(const struct dgw_client *c) {
  return c->nshards;
}

struct dgw_gateway *dgw_client_gateway(struct dgw_client *c,
                                       uint32_t shard_id) {
  if (c == NULL || shard_id < c->opt.shard_first ||
      shard_id - c->opt.shard_first >= c->nshards)
    return NULL;
  return c->shards[shard_id - c->opt.shard_first];
}

void client_request_identify(struct dgw_client *c, struct dgw_gateway *gw) {
  c->identify->request(c->identify, gw, dgw_gateway_shard_id(gw));
}

int client_shard_offline(struct dgw_client *c, struct dgw_gateway *gw) {
  if (c->offline)
    return gw != c->probe; /* only the probe keeps trying */
  for (uint32_t i = 0; i < c->nshards; i++)
    if (c->shards[i] != gw &&
        dgw_gateway_state(c->shards[i]) != DGW_STATE_OFFLINE)
      return 0; /* some shard still reaches the gateway */
  /* Every shard failed at the network level: no point in N reconnect
   * storms.  This shard probes, with its backoff; the rest wait. */
  c->offline = 1;
  c->probe = gw;
  for (uint32_t i = 0; i < c->nshards; i++)
    if (c->shards[i] != gw)
      gateway_park(c->shards[i]);
  client_log(c, DGW_LOG_WARN,
             "offline: every shard lost the network; shard %u probes",
             dgw_gateway_shard_id(gw));
  if (c->cb.on_network != NULL && !client_dying(c))
    c->cb.on_network(c, 0, c->user_data);
  return 0;
}

void client_shard_online(struct dgw_client *c, struct dgw_gateway *gw) {
  if (!c->offline)
    return;
  c->offline = 0;
  c->probe = NULL;
  client_log(c, DGW_LOG_INFO, "online again (shard %u got through)",
             dgw_gateway_shard_id(gw));
  if (c->cb.on_network != NULL && !client_dying(c))
    c->cb.on_network(c, 1, c->user_data);
  for (uint32_t i = 0; i < c->nshards && !client_dying(c); i++)
    if (c->shards[i] != gw)
      gateway_relaunch(c->shards[i]);
}

void client_shard_closed(struct dgw_client *c, struct dgw_gateway *gw) {
  if (!c->offline || c->probe != gw)
    return;
  c->probe = NULL;
  for (uint32_t i = 0; i < c->nshards; i++)
    if (c->shards[i] != gw &&
        dgw_gateway_state(c->shards[i]) == DGW_STATE_OFFLINE) {
      c->probe = c->shards[i];
      gateway_relaunch(c->shards[i]);
      return;
    }
  c->offline = 0; /* nobody left waiting for the network */
}

int dgw_client_is_offline(const struct dgw_client *c) {
  return c != NULL && c->offline;
}

/* The identify queue's word that a lazy shard's turn is near: it
 * connects from its own loop callback, never inside the queue. */
static void identify_near(void *shard, void *user_data) {
  (void)user_data;
  gateway_lazy_near(shard);
}

int client_identify_early(struct dgw_client *c, struct dgw_gateway *gw,
                          uint32_t lead_ms) {
  struct dgw_identify_queue *q = c->identify;

  return q != NULL && q->early != NULL &&
         q->early(q, gw, dgw_gateway_shard_id(gw), lead_ms, identify_near, c) ==
             0;
}

void client_cancel_identify(struct dgw_client *c, struct dgw_gateway *gw) {
  if (c->identify != NULL)
    c->identify->cancel(c->identify, gw);
}

void client_identify_sent(struct dgw_client *c, struct dgw_gateway *gw) {
  if (c->identify != NULL && c->identify->sent != NULL)
    c->identify->sent(c->identify, gw, dgw_gateway_shard_id(gw));
}

int dgw_client_stats(const struct dgw_client *c, struct dgw_client_stats *out) {
  struct dgw_client_stats full;
  size_t size;

  if (c == NULL || out == NULL || out->size < sizeof(size_t))
    return DGW_ERR_INVALID_ARGUMENT;
  /* Fill a whole snapshot, then copy as much as the caller's struct holds:
   * it may come from an older (shorter) header. */
  size = out->size < sizeof(full) ? out->size : sizeof(full);
  memset(&full, 0, sizeof(full));
  full.size = out->size;
  full.dispatches = c->stats.dispatches;
  full.dropped = c->stats.dropped;
  full.parsed = c->stats.parsed;
  full.shards = c->nshards;
  client_stats_more(c, &full);
  for (uint32_t i = 0; i < c->nshards; i++) {
    struct dgw_shard_stats s;

    s.size = sizeof(s);
    if (dgw_gateway_stats(c->shards[i], &s) != DGW_OK)
      continue;
    if (s.state == DGW_STATE_READY)
      full.shards_ready++;
    full.reconnects += s.reconnects;
    full.resumes += s.resumes;
    full.identifies += s.identifies;
    full.zombies += s.zombies;
    full.commands_queued += s.commands_queued;
    client_stats_add(&full, &s);
  }
  memcpy(out, &full, size);
  return DGW_OK;
}
