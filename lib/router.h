/*
 * The router: a client's DISPATCH handlers (loaded plugins and in-process
 * functions) in registration order, the table from event name to the
 * handlers that want it, the dispatch loop and the lifecycle fan-out to
 * plugins.  Internal; the client is its only caller, and the router
 * reaches the client only through the struct plugins_host (plugin.h) it
 * was given.  Loading itself is plugin.h's.
 *
 * Life: plugins_new() with the client; plugins_load() and
 * plugins_add_handler() while the client is not started;
 * plugins_build_routes() at dgw_client_start(); plugins_route() and
 * plugins_dispatch() per event; plugins_free() first thing when the
 * client is destroyed (fini in reverse load order, then dlclose).
 */
#ifndef DGW_LIB_ROUTER_H
#define DGW_LIB_ROUTER_H

#include <stddef.h>

#include <dgw/dgw.h>
#include <dgw/plugin.h>

struct plugins_host;
struct dgw_plugins;
/* The handlers of one event name, in registration order. */
struct plugin_route;

/* An empty set that reports to `host` (copied; see plugin.h), or NULL
 * without memory. */
struct dgw_plugins *plugins_new(const struct plugins_host *host);

/* Runs every loaded plugin's fini in reverse load order, removes its
 * timers, dlcloses it, and frees the set.  NULL is a no-op. */
void plugins_free(struct dgw_plugins *ps);

/*
 * Finds, opens, checks and initializes one plugin (see
 * dgw_client_load_plugin() and plugin_load()) and registers it as a
 * handler of the events it wants.  On refusal returns DGW_ERR_PLUGIN (or
 * DGW_ERR_NOMEM; DGW_ERR_STATE once the routes are built) with the reason
 * in `why` (when why_size > 0), logs it, and counts it for
 * plugins_refused().
 */
int plugins_load(struct dgw_plugins *ps, const char *name_or_path,
                 const char *config_json, char *why, size_t why_size);

/* Registers an in-process handler of `event` ("*" for all).  DGW_OK,
 * DGW_ERR_INVALID_ARGUMENT (no fn, an empty or too long name),
 * DGW_ERR_STATE once the routes are built, or DGW_ERR_NOMEM. */
int plugins_add_handler(struct dgw_plugins *ps, const char *event,
                        dgw_dispatch_fn fn, void *user_data);

/* The number of plugins refused so far. */
size_t plugins_refused(const struct dgw_plugins *ps);

/* The number of plugins loaded (0 for NULL). */
size_t plugins_count(const struct dgw_plugins *ps);

/* Fills `*info` (info_size bytes of it, for callers built against a
 * smaller struct) for the plugin loaded `index`-th.  DGW_OK, or
 * DGW_ERR_INVALID_ARGUMENT for no such plugin or no room. */
int plugins_info(const struct dgw_plugins *ps, size_t index,
                 struct dgw_plugin_info *info, size_t info_size);

/* Builds the routing table from what is registered.  DGW_OK or
 * DGW_ERR_NOMEM.  Nothing may be registered afterwards. */
int plugins_build_routes(struct dgw_plugins *ps);

/* The handlers of `event_name`, or NULL when there are none (the event
 * can be dropped unparsed) or the routes are not built.  Valid until
 * plugins_free(). */
const struct plugin_route *plugins_route(const struct dgw_plugins *ps,
                                         const char *event_name);

/* Calls every handler of `route` with the event, in order, and stops
 * early when the host is being freed (plugins_host.freeing). */
void plugins_dispatch(struct dgw_plugins *ps, const struct plugin_route *route,
                      struct dgw_gateway *gw, const struct dgw_event *ev);

/* Calls every plugin's on_lifecycle hook in load order, and stops early
 * when the host is being freed. */
void plugins_lifecycle(struct dgw_plugins *ps, struct dgw_gateway *gw,
                       enum dgw_lifecycle what,
                       const struct dgw_disconnect *info);

#endif /* DGW_LIB_ROUTER_H */
