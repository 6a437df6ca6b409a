/*
 * A client's plugins and in-process handlers, and the event-name routing
 * table built from them when the client starts.  Internal; the public
 * faces are <dgw/plugin.h> (for plugins) and dgw_client_load_plugin() /
 * dgw_client_on_event() in <dgw/dgw.h> (for applications).
 *
 * Life: plugins_new() with the client; plugins_load() and
 * plugins_add_handler() while the client is not started;
 * plugins_build_routes() at dgw_client_start(); plugins_route() and
 * plugins_dispatch() per event; plugins_free() first thing when the
 * client is destroyed (fini in reverse load order, then dlclose).
 */
#ifndef DGW_LIB_PLUGIN_H
#define DGW_LIB_PLUGIN_H

#include <stddef.h>

#include <dgw/dgw.h>
#include <dgw/plugin.h>

struct dgw_plugins;
/* The handlers of one event name, in registration order. */
struct plugin_route;

/* An empty set for client `c`, or NULL without memory. */
struct dgw_plugins *plugins_new(struct dgw_client *c);

/* Runs every loaded plugin's fini in reverse load order, removes its
 * timers, dlcloses it, and frees the set.  NULL is a no-op. */
void plugins_free(struct dgw_plugins *ps);

/*
 * Finds, opens, checks and initializes one plugin (see
 * dgw_client_load_plugin()).  On refusal returns DGW_ERR_PLUGIN (or
 * DGW_ERR_NOMEM) with the reason in `why` (when why_size > 0), logs it,
 * and counts it for plugins_refused().
 */
int plugins_load(struct dgw_plugins *ps, const char *name_or_path,
                 const char *config_json, char *why, size_t why_size);

/* Registers an in-process handler of `event` ("*" for all). */
int plugins_add_handler(struct dgw_plugins *ps, const char *event,
                        dgw_dispatch_fn fn, void *user_data);

/* The number of plugins refused so far. */
size_t plugins_refused(const struct dgw_plugins *ps);

/* Builds the routing table from what is registered.  DGW_OK or
 * DGW_ERR_NOMEM.  Nothing may be registered afterwards. */
int plugins_build_routes(struct dgw_plugins *ps);

/* The handlers of `event_name`, or NULL when there are none (the event
 * can be dropped unparsed).  Valid until plugins_free(). */
const struct plugin_route *plugins_route(const struct dgw_plugins *ps,
                                         const char *event_name);

/* Calls every handler of `route` with the event, in order, and stops
 * early when the client is being freed. */
void plugins_dispatch(struct dgw_plugins *ps, const struct plugin_route *route,
                      struct dgw_gateway *gw, const struct dgw_event *ev);

/* Calls every plugin's on_lifecycle hook in load order. */
void plugins_lifecycle(struct dgw_plugins *ps, struct dgw_gateway *gw,
                       enum dgw_lifecycle what,
                       const struct dgw_disconnect *info);

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
