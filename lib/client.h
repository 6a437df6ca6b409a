/*
 * The client's internals, shared by client.c, fanout.c, options.c,
 * command_api.c, session_file.c and (for now) plugin.c.  The shards
 * (gateway.c) never see this header: they talk to the client through
 * client_shard_ops.
 */
#ifndef DGW_CLIENT_H
#define DGW_CLIENT_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>
#include <openssl/ssl.h>

#include <dgw/dgw.h>

#include "guard.h"

struct dgw_options {
  char *token;
  uint64_t intents;
  char *gateway_url; /* without a query; NULL: learnt from GET /gateway/bot */
  char *api_url;     /* the REST base; NULL: DGW_DEFAULT_API_URL */
  int compress;
  char *ca_file;
  uint32_t shard_first, shard_count, shard_total;
  int shards_auto;     /* all of GET /gateway/bot's recommended shard count */
  int large_threshold; /* 0: not sent */
  char *presence_json;
  char *properties_json; /* IDENTIFY's properties object, or NULL: dgw's */
  dgw_log_fn log;
  void *log_user_data;
  enum dgw_log_level log_level;
  uint32_t backoff_base_ms, backoff_max_ms, healthy_ms;
  uint32_t invalid_min_ms, invalid_max_ms;
  uint32_t connect_timeout_ms, close_timeout_ms;
  int connect_timeout_set; /* also the REST timeout, when set */
  size_t max_payload;
  uint32_t send_budget, send_window_ms; /* 0: Discord's 120 per 60 s */
  uint32_t identify_concurrency, identify_window_ms; /* 0: 1 per 5 s */
  int64_t starts_remaining; /* -1: unknown, not enforced */
  int64_t starts_total;
  uint64_t starts_reset_after_ms;
  size_t send_queue;  /* 0: the default capacity */
  int plugins_strict; /* a refused plugin stops dgw_client_start() */
  /* The application's own, or NULL: dgw makes its own.  The SSL_CTX is
   * referenced (SSL_CTX_up_ref) by every dgw_options and client holding
   * it; the evdns_base is borrowed, never freed. */
  SSL_CTX *ssl_ctx;
  struct evdns_base *dns_base;
  /* Connection attempts in flight at most (pacer.h); 0: no limit. */
  uint32_t max_connecting;
  /* Lazy connect's lead (gateway_lazy.c); 0: off. */
  uint32_t lazy_lead_ms;
  /* Quiet shards pack their zlib window after this long; 0: never. */
  uint32_t quiet_sleep_ms;
  /* dgw_options_set_cluster(): Redis URL (NULL: no cluster), name, lease. */
  char *cluster_redis;
  char *cluster_name;
  uint32_t cluster_lease_ms;
};

struct dgw_resolver;
struct dgw_identify_queue;
struct evdns_base;
struct dgw_pacer;

struct dgw_callbacks {
  dgw_state_fn on_state;
  dgw_gateway_fn on_connecting;
  dgw_gateway_fn on_ready;
  dgw_gateway_fn on_resumed;
  dgw_disconnect_fn on_disconnect;
  dgw_fatal_fn on_fatal;
  dgw_dispatch_fn on_dispatch;
  dgw_network_fn on_network;
  dgw_client_fatal_fn on_client_fatal;
};

/* Counters of the dispatch path (see dgw_client_stats()). */
struct client_stats {
  uint64_t dispatches; /* DISPATCH payloads taken (replays excluded) */
  uint64_t dropped;    /* of those, wanted by nobody: dropped unparsed */
  uint64_t parsed;     /* `d` parsed for handlers (dgw_event_json) */
  /* Events given to handlers, and the time they took, by name slot. */
  uint64_t handled[DGW_STATS_EVENT_NAMES];
  double handler_us_sum[DGW_STATS_EVENT_NAMES];
  uint64_t handler_hist[DGW_STATS_EVENT_NAMES][DGW_STATS_HANDLER_BUCKETS];
};

struct dgw_plugins;
struct dgw_requests;
struct dgw_rest;
struct json_object;
struct shard_owner_ops;
struct client_shards;
struct dgw_cluster;

struct dgw_client {
  struct event_base *base;
  struct dgw_options opt;
  struct dgw_callbacks cb;
  void *user_data;
  SSL_CTX *ssl;
  struct dgw_resolver *resolver;       /* shared by the shards' connections */
  struct dgw_identify_queue *identify; /* who may IDENTIFY when */
  struct dgw_pacer *pacer; /* connection attempts in flight (pacer.h) */
  /* Packs quiet shards' zlib windows (inflate.h); NULL when off. */
  struct dgw_inflate_sleeper *sleeper;
  struct dgw_gateway **shards;
  /* The member and voice requests waiting for events, one table per shard
   * (same index as shards). */
  struct dgw_requests **requests;
  uint32_t nshards;
  int started;
  /* GET /gateway/bot in flight (see client_rest_pending); NULL otherwise. */
  struct dgw_rest *rest;
  int rest_answered; /* its answer made (and started) the shards */
  /* dgw_client_restore_sessions() before the shards exist: the parsed
   * file, applied once GET /gateway/bot answered. */
  struct json_object *pending_sessions;
  char *pending_sessions_path;
  int offline;                 /* every shard failed at the network level */
  struct dgw_gateway *probe;   /* the shard that keeps trying meanwhile */
  struct dgw_guard guard;      /* dgw_client_free() inside a callback waits for
                                  the outermost frame (see client_enter) */
  struct dgw_plugins *plugins; /* plugins, handlers, routes (plugin.c) */
  struct client_stats stats;
  /* Reused by every dgw_event_json() of the client's shards (made on first
   * use; see dgw_payload_parse_with()). */
  struct json_tokener *tokener;
  /* Shards taken and released by an owner (client_shards.h); NULL: the
   * client starts them all itself. */
  struct client_shards *managed;
  struct dgw_cluster *cluster; /* dgw_options_set_cluster(), once started */
};

/* fanout.c: the table every shard of a client reports to, with the client
 * as its owner pointer. */
extern const struct shard_owner_ops client_shard_ops;

/* The request table of shard `gw` of `c`, or NULL when `gw` is not one of
 * its shards. */
struct dgw_requests *client_requests(struct dgw_client *c,
                                     struct dgw_gateway *gw);

/* Replaces shard index `i` by a fresh idle one: the old one is freed with
 * no frame written and no callback but its requests' failure (waits for
 * its events fail with DGW_ERR_SESSION_LOST).  Not from inside a shard
 * callback.  DGW_OK; DGW_ERR_NOMEM (the old shard stays); DGW_ERR_STATE
 * when the application freed the client meanwhile (touch nothing). */
int client_replace_shard(struct dgw_client *c, uint32_t i);

/* The two halves of client_replace_shard(): a fresh idle shard takes index
 * `i` at once (no callback; NULL without memory, nothing changed) and the
 * old one is returned, still allocated; client_retire_shard() frees it
 * later, from outside its callbacks, inside a client_enter() frame. */
struct dgw_gateway *client_swap_shard(struct dgw_client *c, uint32_t i);
void client_retire_shard(struct dgw_client *c, uint32_t i,
                         struct dgw_gateway *old);

/* Deep copy of `src` into `dst` (zeroed first).  DGW_OK or NOMEM. */
int options_copy(struct dgw_options *dst, const struct dgw_options *src);
/* Frees what options_copy allocated, wiping the token. */
void options_clear(struct dgw_options *opt);

/* Every entry from libevent into client, gateway or kokoro code brackets
 * its work with these.  client_leave() returns 1 when the client was freed
 * on the way out (dgw_client_free() from a user callback): touch nothing
 * after that. */
void client_enter(struct dgw_client *c);
int client_leave(struct dgw_client *c);

/* 1 once dgw_client_free() was called inside a callback: call nothing more
 * of the application's and unwind. */
static inline int client_dying(const struct dgw_client *c) {
  return dgw_guard_dying(&c->guard);
}

/* Logs through the application's sink when `level` passes its filter. */
void client_log(struct dgw_client *c, enum dgw_log_level level, const char *fmt,
                ...) __attribute__((format(printf, 3, 4)));

/* A shard asks to IDENTIFY; the client grants it by calling
 * gateway_identify_now() when the identify rate limits allow (at once for
 * now; the identify queue shapes this later). */
void client_request_identify(struct dgw_client *c, struct dgw_gateway *gw);

/* A shard failed at the network level and is about to wait for its next
 * attempt.  Returns 1 when it should not keep a timer of its own: the
 * client is offline and another shard probes for all. */
int client_shard_offline(struct dgw_client *c, struct dgw_gateway *gw);

/* A shard got a WebSocket up: if the client was offline, the network is
 * back and the parked shards reconnect now. */
void client_shard_online(struct dgw_client *c, struct dgw_gateway *gw);

/* A shard was closed: if it was the offline probe, another takes over. */
void client_shard_closed(struct dgw_client *c, struct dgw_gateway *gw);

/* Lazy connect: the shard, without a connection or a session, joins the
 * identify line now and is woken (gateway_lazy_near()) `lead_ms` before
 * its expected turn.  0 when the queue cannot say (no early()). */
int client_identify_early(struct dgw_client *c, struct dgw_gateway *gw,
                          uint32_t lead_ms);

/* The shard no longer waits to IDENTIFY (its connection went away). */
void client_cancel_identify(struct dgw_client *c, struct dgw_gateway *gw);

/* The shard has just written its granted IDENTIFY: tells the identify
 * queue (when it has sent()), whose bucket window starts now. */
void client_identify_sent(struct dgw_client *c, struct dgw_gateway *gw);

/* 1 when the client asks (or will ask, at start) GET /gateway/bot and has
 * no answer yet: with auto shards, or without a configured gateway URL.
 * The shard count, the gateway URL and the identify limits are not final
 * until then. */
int client_rest_pending(const struct dgw_client *c);

/* Stops GET /gateway/bot if it is in flight: no answer is acted on, no
 * shard starts (dgw_client_stop() and friends). */
void client_cancel_rest(struct dgw_client *c);

/* session_file.c: applies the sessions that dgw_client_restore_sessions()
 * kept while the shards did not exist yet, and forgets them. */
void client_apply_pending_sessions(struct dgw_client *c);

/* client_stats.c: fills the client-wide operations members of `full`
 * (handler times, session starts left) and resets the ones
 * client_stats_add() folds the shards into. */
void client_stats_more(const struct dgw_client *c,
                       struct dgw_client_stats *full);
/* client_stats.c: adds shard snapshot `s` to `full`. */
void client_stats_add(struct dgw_client_stats *full,
                      const struct dgw_shard_stats *s);

/* session_file.c: forgets them unapplied. */
void client_drop_pending_sessions(struct dgw_client *c);

#endif /* DGW_CLIENT_H */
