/*
 * dgw plugin ABI: DISPATCH handlers in shared objects that a dgw client
 * loads with dlopen(RTLD_NOW | RTLD_LOCAL).
 *
 * A plugin exports one function, dgw_plugin_describe(), returning a static
 * struct dgw_plugin: the ABI number and the descriptor's own size first,
 * then its name, version, the events it wants and its entry points.  The
 * host refuses a plugin built for another ABI or whose descriptor is
 * smaller than the host needs, with a message naming the reason.
 *
 * Plugins never link against the host program or libdgw: everything a
 * plugin may call in dgw comes through the struct dgw_plugin_host table
 * handed to init().  That table starts with its own size, so later hosts
 * can append functions; test a newer member with DGW_PLUGIN_HOST_HAS()
 * before calling it.  The types in <dgw/dgw.h> (enum dgw_log_level,
 * struct dgw_event...) are shared; its functions are for applications.
 *
 * Everything runs on the thread of the client's event loop, one call at a
 * time: a plugin needs no locks.  Pointers the host passes in are borrowed
 * and valid only during the call unless said otherwise.
 *
 * Build a plugin with `cc -shared -fPIC $(pkg-config --cflags dgw)` (or
 * libtool's `-module -avoid-version`) and install it into the directory
 * `pkg-config --variable=plugindir dgw`.  docs/plugins.md has a complete
 * example.
 */
#ifndef DGW_PLUGIN_H
#define DGW_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>
#include <dgw/field.h>

#ifdef __cplusplus
extern "C" {
#endif

/**
 * The plugin ABI this header describes.  Raised only when a change would
 * break existing plugins; appending to the two tables below does not.
 */
#define DGW_PLUGIN_ABI 1

/** The one symbol a plugin exports. */
#define DGW_PLUGIN_DESCRIBE_SYMBOL "dgw_plugin_describe"

/** The environment variable holding extra plugin directories (colon
 * separated), searched before the installed plugin directory. */
#define DGW_PLUGIN_PATH_ENV "DGW_PLUGIN_PATH"

/** Marks dgw_plugin_describe() exported even under -fvisibility=hidden. */
#if defined(__GNUC__)
#define DGW_PLUGIN_EXPORT __attribute__((visibility("default")))
#define DGW_PLUGIN_PRINTF(fmt, args) __attribute__((format(printf, fmt, args)))
#else
#define DGW_PLUGIN_EXPORT
#define DGW_PLUGIN_PRINTF(fmt, args)
#endif

/** What happened to a shard, for a plugin's on_lifecycle hook. */
enum dgw_lifecycle {
  DGW_LIFECYCLE_READY = 1,        /**< READY: a new session */
  DGW_LIFECYCLE_RESUMED = 2,      /**< RESUMED: the session continues */
  DGW_LIFECYCLE_DISCONNECTED = 3, /**< a connection ended (not after
                                       dgw_gateway_close()) */
  DGW_LIFECYCLE_FATAL = 4,        /**< a fatal close code stopped the shard */
};

struct dgw_plugin_host;
struct event_base;  /* libevent's */
struct json_object; /* json-c's */

/** A timer a plugin added on the client's loop (opaque). */
struct dgw_plugin_timer;

/** A plugin timer's callback; `arg` is what was given to timer_add. */
typedef void (*dgw_plugin_timer_fn)(void *arg);

/**
 * What a plugin is.  Return a pointer to a static, constant instance from
 * dgw_plugin_describe(); the host reads it until the plugin is unloaded.
 * Fill `abi` with DGW_PLUGIN_ABI and `size` with sizeof(struct dgw_plugin).
 */
struct dgw_plugin {
  /** DGW_PLUGIN_ABI as the plugin was built. */
  uint32_t abi;
  /** sizeof(struct dgw_plugin) as the plugin was built. */
  uint32_t size;
  /** Short name, used in log lines ("log"); required. */
  const char *name;
  /** The plugin's own version ("1.0.0"); may be NULL. */
  const char *version;
  /** One line saying what it does; may be NULL. */
  const char *description;
  /**
   * The DISPATCH event names it wants ("MESSAGE_CREATE"), "*" for every
   * event, ending with NULL.  May be NULL when init() subscribes instead
   * (host->subscribe), e.g. to events named in its config.
   */
  const char *const *events;
  /**
   * Called once when the plugin is loaded, before the client starts.
   * `host` is this plugin's host table, valid until fini() returns: keep
   * the pointer.  `config_json` is the JSON text the application gave
   * (never NULL; "{}" when it gave none), valid until fini() returns.
   * Store the plugin's state in *state (it starts NULL).  Return 0 on
   * success; anything else refuses the plugin ("init failed"), and then
   * fini() is not called: free what you allocated first.  May be NULL.
   */
  int (*init)(const struct dgw_plugin_host *host, const char *config_json,
              void **state);
  /**
   * One DISPATCH event the plugin subscribed to, in sequence order, each
   * once.  `event` is a borrowed view, valid during the call: read it with
   * host->event_name, event_data, event_json...  Several handlers of one
   * event are called in load order and share one parse of `d`.  Required
   * when the plugin subscribes to anything.
   */
  void (*on_dispatch)(void *state, struct dgw_gateway *gw,
                      const struct dgw_event *event);
  /**
   * A shard became ready, resumed, disconnected or was stopped by a fatal
   * close code.  `info` says why for DISCONNECTED and FATAL, and is NULL
   * for READY and RESUMED.  May be NULL.
   */
  void (*on_lifecycle)(void *state, struct dgw_gateway *gw,
                       enum dgw_lifecycle what,
                       const struct dgw_disconnect *info);
  /**
   * Called once when the client is freed, in reverse load order, before
   * the shared object is closed.  Free the state here; timers still
   * pending are removed by the host afterwards.  May be NULL.
   */
  void (*fini)(void *state);
};

/**
 * The function a plugin exports under the name dgw_plugin_describe.
 * Declared here so that a plugin's definition is checked against it.
 */
DGW_PLUGIN_EXPORT const struct dgw_plugin *dgw_plugin_describe(void);

/** The type of dgw_plugin_describe, for dlsym. */
typedef const struct dgw_plugin *(*dgw_plugin_describe_fn)(void);

/**
 * The host's side: one table per loaded plugin, handed to init() and
 * valid until fini() returns.  Functions take the table itself as `host`
 * where they act for this plugin.  Read `size` before using a member a
 * newer header added (DGW_PLUGIN_HOST_HAS).
 */
struct dgw_plugin_host {
  /** sizeof(struct dgw_plugin_host) as the host was built. */
  uint32_t size;
  /** DGW_PLUGIN_ABI of the host. */
  uint32_t abi;
  /** The library version, e.g. "0.1.0". */
  const char *version;
  /** The client that loaded the plugin (opaque to plugins). */
  struct dgw_client *client;
  /** The client's event loop, for plugins that use libevent directly
   * (they then link libevent themselves). */
  struct event_base *base;
  /** The plugin's config: JSON text, "{}" when none was given. */
  const char *config_json;

  /**
   * Logs a printf-style line through the application's logger, prefixed
   * with "plugin NAME: ".  Lines longer than about 500 bytes are cut.
   */
  void (*log)(const struct dgw_plugin_host *host, enum dgw_log_level level,
              const char *fmt, ...) DGW_PLUGIN_PRINTF(3, 4);

  /**
   * Adds `event_name` ("*" for all) to the events this plugin receives.
   * Only during init().  Returns DGW_OK, DGW_ERR_STATE outside init(),
   * DGW_ERR_INVALID_ARGUMENT for an empty or too long name, or
   * DGW_ERR_NOMEM.
   */
  int (*subscribe)(const struct dgw_plugin_host *host, const char *event_name);

  /**
   * Sends one gateway payload (JSON text of `len` bytes, copied) on shard
   * `shard_id` of this client, as dgw_gateway_send_json(): at once, or
   * queued behind the shard's send rate limit.  Returns what that returns
   * (DGW_OK, DGW_ERR_JSON, DGW_ERR_PAYLOAD_TOO_LARGE, DGW_ERR_QUEUE_FULL,
   * DGW_ERR_STATE), or DGW_ERR_INVALID_ARGUMENT when the client runs no
   * such shard.  DGW_ERR_STATE also during fini.
   */
  int (*send_json)(const struct dgw_plugin_host *host, uint32_t shard_id,
                   const char *json, size_t len);

  /** Asks the client to stop: dgw_client_stop(), every shard closes with
   * code 1000.  Safe inside on_dispatch and timers; ignored in fini(). */
  void (*stop)(const struct dgw_plugin_host *host);

  /**
   * Calls fn(arg) after `ms` milliseconds on the client's loop; again
   * every `ms` when `repeat` is nonzero.  A one-shot timer is removed
   * after its call (do not remove it then); a repeating one runs until
   * timer_remove() or the plugin is unloaded.  Returns the timer, or NULL
   * without memory or during fini().
   */
  struct dgw_plugin_timer *(*timer_add)(const struct dgw_plugin_host *host,
                                        uint32_t ms, int repeat,
                                        dgw_plugin_timer_fn fn, void *arg);

  /** Cancels and frees `timer` (also from inside its own callback).  NULL
   * is a no-op. */
  void (*timer_remove)(const struct dgw_plugin_host *host,
                       struct dgw_plugin_timer *timer);

  /** The number of shards the client runs. */
  uint32_t (*shard_count)(const struct dgw_plugin_host *host);
  /** The shard at `index` (0 .. shard_count-1, not the shard id), or
   * NULL. */
  struct dgw_gateway *(*gateway_at)(const struct dgw_plugin_host *host,
                                    uint32_t index);

  /** As dgw_gateway_shard_id(), _state(), _sequence(), _latency() and
   * _send_json() in <dgw/dgw.h>. */
  uint32_t (*gateway_shard_id)(const struct dgw_gateway *gw);
  enum dgw_state (*gateway_state)(const struct dgw_gateway *gw);
  int64_t (*gateway_sequence)(const struct dgw_gateway *gw);
  double (*gateway_latency)(const struct dgw_gateway *gw);
  int (*gateway_send_json)(struct dgw_gateway *gw, const char *json,
                           size_t len);

  /** As dgw_event_name(), _seq(), _shard(), _data() and _json() in
   * <dgw/dgw.h>: the borrowed event view.  event_json parses `d` once
   * per event, for every handler of it. */
  const char *(*event_name)(const struct dgw_event *event);
  int64_t (*event_seq)(const struct dgw_event *event);
  uint32_t (*event_shard)(const struct dgw_event *event);
  const char *(*event_data)(const struct dgw_event *event, size_t *len);
  struct json_object *(*event_json)(const struct dgw_event *event);

  /** As dgw_strerror() and dgw_state_name(). */
  const char *(*strerror)(int error);
  const char *(*state_name)(enum dgw_state state);

  /* --- Gateway commands (added after the first release of this table:
   * check them with DGW_PLUGIN_HOST_HAS).  As the dgw_gateway_* calls of
   * the same names in <dgw/dgw.h>: checked, then sent or queued under
   * the shard's send rate limit. */
  /** The shard of this client that owns a guild, or NULL. */
  struct dgw_gateway *(*gateway_for_guild)(const struct dgw_plugin_host *host,
                                           const char *guild_id);
  int (*update_presence)(struct dgw_gateway *gw,
                         const struct dgw_presence *presence, char *why,
                         size_t why_size);
  int (*update_voice_state)(struct dgw_gateway *gw, const char *guild_id,
                            const char *channel_id, int self_mute,
                            int self_deaf, dgw_voice_fn fn, void *user_data,
                            char *why, size_t why_size);
  int (*request_members)(struct dgw_gateway *gw,
                         const struct dgw_member_request *request,
                         dgw_members_fn fn, void *user_data, char nonce_out[33],
                         char *why, size_t why_size);
  int (*request_soundboard_sounds)(struct dgw_gateway *gw,
                                   const char *const *guild_ids, size_t count,
                                   char *why, size_t why_size);
  int (*request_channel_info)(struct dgw_gateway *gw, const char *guild_id,
                              unsigned fields, char *why, size_t why_size);

  /* --- Field getters (added after the gateway commands: check them with
   * DGW_PLUGIN_HOST_HAS).  As the dgw_field_* calls of the same names in
   * <dgw/field.h>: read one value of the JSON text at `json` (typically
   * event_data()) by JSON Pointer, without building a DOM. */
  int (*field_present)(const char *json, size_t len, const char *pointer);
  int (*field_type)(const char *json, size_t len, const char *pointer,
                    enum dgw_field_type *type);
  int (*field_raw)(const char *json, size_t len, const char *pointer,
                   const char **out, size_t *out_len);
  int (*field_string)(const char *json, size_t len, const char *pointer,
                      char *buf, size_t size, size_t *out_len);
  int (*field_string_view)(const char *json, size_t len, const char *pointer,
                           char *buf, size_t size, const char **out,
                           size_t *out_len);
  int (*field_int64)(const char *json, size_t len, const char *pointer,
                     int64_t *out);
  int (*field_uint64)(const char *json, size_t len, const char *pointer,
                      uint64_t *out);
  int (*field_double)(const char *json, size_t len, const char *pointer,
                      double *out);
  int (*field_bool)(const char *json, size_t len, const char *pointer,
                    int *out);
  int (*field_null)(const char *json, size_t len, const char *pointer);
  int (*field_count)(const char *json, size_t len, const char *pointer,
                     size_t *out);

  /* --- Statistics (added after the field getters: check them with
   * DGW_PLUGIN_HOST_HAS).  As dgw_client_stats(), dgw_gateway_stats(),
   * dgw_client_is_offline() and the dgw_stats_* slot tables in
   * <dgw/dgw.h>; `client` is host->client.  The caller sets out->size. */
  int (*client_stats)(const struct dgw_client *client,
                      struct dgw_client_stats *out);
  int (*gateway_stats)(const struct dgw_gateway *gw,
                       struct dgw_shard_stats *out);
  int (*client_is_offline)(const struct dgw_client *client);
  const char *(*stats_event_name)(unsigned slot);
  int (*stats_close_code)(unsigned slot);
  double (*stats_latency_bound_ms)(unsigned bucket);
  double (*stats_handler_bound_us)(unsigned bucket);

  /* --- Holding a shard back (added after the statistics: check them with
   * DGW_PLUGIN_HOST_HAS).  For a plugin that cannot keep up, e.g. one
   * writing every event to a broker that is slow or gone: rather than
   * drop or buffer without bound, it holds the shard back.
   *
   * gateway_pause(): from the next dispatch on, shard `gw` of this client
   * delivers nothing (not even what it has already read) and reads no
   * more from its socket; the kernel's buffers and TCP flow control hold
   * the rest, as with a slow handler.  Missed heartbeat ACKs during a
   * pause are not a zombie.  A pause longer than about one heartbeat
   * interval (the connection can no longer stay healthy) closes the
   * connection keeping the session (close 4000, like op 7, reported to
   * on_lifecycle as DISCONNECTED with will_resume), and the shard does not
   * reconnect while paused; once released it RESUMEs and Discord replays
   * every event after the last one delivered: nothing is lost.
   * gateway_release(): lets it read again; what waited is delivered in
   * order, from the loop (not inside the call).
   *
   * Idempotent per plugin: a second pause by the same plugin, or a release
   * of a shard it did not pause, does nothing and returns DGW_OK.  Holds
   * of several plugins add up: the shard reads when none holds it.  Call
   * from the loop's thread, in init() (not useful), on_dispatch, a timer
   * or a libevent callback of your own.  Refused with DGW_ERR_STATE during
   * fini(); when the client is freed every hold simply ends with it (no
   * release needed).  DGW_ERR_INVALID_ARGUMENT when `gw` is not a shard of
   * this client; DGW_ERR_NOMEM. */
  int (*gateway_pause)(const struct dgw_plugin_host *host,
                       struct dgw_gateway *gw);
  int (*gateway_release)(const struct dgw_plugin_host *host,
                         struct dgw_gateway *gw);
  /** 1 while `gw` is paused (by any plugin), else 0. */
  int (*gateway_paused)(const struct dgw_plugin_host *host,
                        const struct dgw_gateway *gw);

  /* --- Commands with a completion (added after holding a shard back:
   * check them with DGW_PLUGIN_HOST_HAS).  As dgw_gateway_send_json_cb()
   * and the dgw_gateway_*_args() calls in <dgw/dgw.h>: checked, sent or
   * queued under the shard's send rate limit, and `on_sent` called
   * exactly once for every command accepted (DGW_OK), with the outcome
   * (written, or dropped and why).  For a plugin that must know when a
   * command left, e.g. to acknowledge it to a broker (redis-streams'
   * command streams, docs/streams.md). */
  int (*gateway_send_json_cb)(struct dgw_gateway *gw, const char *json,
                              size_t len, dgw_sent_fn on_sent, void *user_data);
  int (*update_presence_args)(struct dgw_gateway *gw,
                              const struct dgw_presence_args *args, char *why,
                              size_t why_size);
  int (*update_voice_state_args)(struct dgw_gateway *gw,
                                 const struct dgw_voice_state_args *args,
                                 char *why, size_t why_size);
  int (*request_members_args)(struct dgw_gateway *gw,
                              const struct dgw_member_request_args *args,
                              char *why, size_t why_size);
  int (*request_soundboard_sounds_args)(struct dgw_gateway *gw,
                                        const struct dgw_soundboard_args *args,
                                        char *why, size_t why_size);
  int (*request_channel_info_args)(struct dgw_gateway *gw,
                                   const struct dgw_channel_info_args *args,
                                   char *why, size_t why_size);
  /* --- The cluster (added after the holds: check them with
   * DGW_PLUGIN_HOST_HAS).  For a plugin that writes to the cluster's
   * Redis and must fence its writes like the cluster does (docs/cluster.md,
   * redis-streams' exactly-once). */
  /** The name of the cluster this client is a member of
   * (dgw_options_set_cluster()), valid until fini() returns; NULL without
   * a cluster.  Already answers in init(). */
  const char *(*cluster_name)(const struct dgw_plugin_host *host);
  /**
   * Whether this member holds the lease of shard `shard_id` now (and its
   * deadline has not passed).  DGW_OK: the member id is copied into
   * `member` (NUL-terminated) and the lease's fencing token into *token;
   * a write to Redis guarded by "dgw:{NAME}:lease:N == MEMBER TOKEN" (or,
   * the key missing, "dgw:{NAME}:token:N <= TOKEN") is then safe.
   * DGW_ERR_NOT_FOUND: no cluster, not started yet, not held, or past its
   * deadline.  DGW_ERR_BUFFER_TOO_SMALL: `member` cannot hold the id (128
   * bytes always can).
   * Inside on_dispatch, the lease under which the event was delivered.
   */
  int (*cluster_lease)(const struct dgw_plugin_host *host, uint32_t shard_id,
                       char *member, size_t member_size, uint64_t *token);
  /** As dgw_gateway_session_id(): the session the shard's events belong
   * to (inside on_dispatch, the event's), also after a RESUME in a
   * process that never saw the READY. */
  const char *(*gateway_session_id)(const struct dgw_gateway *gw);
};

/** Nonzero when the host table `host` has member `member` (a plugin built
 * against a newer header running in an older host may find it missing). */
#define DGW_PLUGIN_HOST_HAS(host, member)                                      \
  ((host)->size >=                                                             \
   offsetof(struct dgw_plugin_host, member) + sizeof((host)->member))

#ifdef __cplusplus
}
#endif

#endif /* DGW_PLUGIN_H */
