/*
 * The plugin loader: finding a shared object, opening and checking it,
 * the host table handed to it, its timers, and closing it again.
 * Internal; the public faces are <dgw/plugin.h> (for plugins) and
 * dgw_client_load_plugin() in <dgw/dgw.h> (for applications).
 *
 * The loader knows nothing of event routing (router.h registers a loaded
 * plugin as a handler) and nothing of the client's struct: it reaches its
 * owner only through the struct plugins_host it is given.
 */
#ifndef DGW_LIB_PLUGIN_H
#define DGW_LIB_PLUGIN_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>
#include <dgw/plugin.h>

struct event_base;

/*
 * What the loader and the router need of whoever holds the plugins (the
 * client, or a test).  Every callback is required and gets `owner`.  The
 * table is copied by plugins_new(); `owner` must outlive the set.
 */
struct plugins_host {
  /* The public handle plugins see as host->client, and that their
   * commands go to (dgw_client_stop(), dgw_client_gateway(),
   * dgw_client_gateway_for_guild()); may be NULL in tests. */
  struct dgw_client *client;
  /* The loop plugin timers run on (and host->base); may be NULL when no
   * plugin adds a timer. */
  struct event_base *base;
  void *owner;
  /* Refusals are logged at DGW_LOG_ERROR instead of DGW_LOG_WARN
   * (dgw_options_set_plugins_strict()). */
  int strict;

  /* The shards, by index (0 .. shard_count - 1; NULL past the end). */
  uint32_t (*shard_count)(void *owner);
  struct dgw_gateway *(*shard_at)(void *owner, uint32_t index);
  /* 1 when a line at `level` would be logged: lets the loader skip
   * formatting a plugin's line nobody reads. */
  int (*log_enabled)(void *owner, enum dgw_log_level level);
  /* Logs one finished line. */
  void (*log)(void *owner, enum dgw_log_level level, const char *line);
  /* 1 while the owner is being freed from inside a callback: the router
   * calls no further handler. */
  int (*freeing)(void *owner);
  /* Bracket a callback that enters from the loop (a plugin timer), so
   * that the owner may be freed inside it; leave() returns 1 when it was
   * freed on the way out. */
  void (*enter)(void *owner);
  int (*leave)(void *owner);
  /* Holds shard `gw` back (`on`) or releases one hold of it (holds add
   * up; see gateway_hold()); DGW_ERR_INVALID_ARGUMENT when `gw` is not
   * the owner's.  held() says whether any hold is on.  May be NULL: the
   * host members refuse with DGW_ERR_STATE. */
  int (*hold)(void *owner, struct dgw_gateway *gw, int on);
  int (*held)(void *owner, const struct dgw_gateway *gw);
  /* The cluster (host->cluster_name, host->cluster_lease).  May be NULL:
   * no cluster (NULL, DGW_ERR_NOT_FOUND). */
  const char *(*cluster_name)(void *owner);
  int (*cluster_lease)(void *owner, uint32_t shard_id, char *member,
                       size_t member_size, uint64_t *token);
};

/* One loaded, initialized plugin. */
struct plugin;

/*
 * Finds `name_or_path` (see plugins_resolve(), with $DGW_PLUGIN_PATH and
 * the installed plugin directory), checks that `config_json` (NULL: "{}")
 * is JSON, dlopens the object, checks its descriptor and ABI, and runs its
 * init with a host table built on `host`, which the plugin borrows until
 * plugin_unload(): it must stay put.  Returns the plugin, or NULL with
 * DGW_ERR_PLUGIN (or DGW_ERR_NOMEM, DGW_ERR_INVALID_ARGUMENT) in *err and
 * the reason in `why` (when why_size > 0).  Logs nothing: the caller
 * reports.
 */
struct plugin *plugin_load(const struct plugins_host *host,
                           const char *name_or_path, const char *config_json,
                           char *why, size_t why_size, int *err);

/*
 * Runs the plugin's fini (during which its host calls that would act,
 * send_json, stop and timer_add, are refused), removes its timers,
 * dlcloses it and frees the record.  NULL is a no-op.
 */
void plugin_unload(struct plugin *p);

/* The event names `p` wants (descriptor and init's subscribe, without
 * "*"), *n of them, and in *all whether it wants every event.  Valid
 * until plugin_unload(). */
const char *const *plugin_events(const struct plugin *p, size_t *n, int *all);

/* Hands one DISPATCH event to the plugin's on_dispatch (which it has,
 * when it wants any event). */
void plugin_dispatch(struct plugin *p, struct dgw_gateway *gw,
                     const struct dgw_event *ev);

/* Calls the plugin's on_lifecycle hook, when it has one. */
void plugin_lifecycle(struct plugin *p, struct dgw_gateway *gw,
                      enum dgw_lifecycle what,
                      const struct dgw_disconnect *info);

/* Fills the whole of `*info` (see dgw_client_plugin_info()); its strings
 * are valid until plugin_unload(). */
void plugin_describe(const struct plugin *p, struct dgw_plugin_info *info);

/*
 * Where `name_or_path` is: itself when it contains '/', else
 * "<dir>/<name>.so" (or "<dir>/<name>" when it ends in ".so") in the first
 * directory of `search_path` (colon separated; may be NULL) or then
 * `install_dir` (may be NULL) that has it.  Returns DGW_OK with the path
 * in `out`, or DGW_ERR_PLUGIN with a "file missing" reason in `why`.
 */
int plugins_resolve(const char *name_or_path, const char *search_path,
                    const char *install_dir, char *out, size_t out_size,
                    char *why, size_t why_size);

#endif /* DGW_LIB_PLUGIN_H */
