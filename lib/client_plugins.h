/*
 * The client's side of its plugins: the struct plugins_host it gives the
 * router and loader, and the public dgw_client_*plugin* calls.
 */
#ifndef DGW_LIB_CLIENT_PLUGINS_H
#define DGW_LIB_CLIENT_PLUGINS_H

struct dgw_client;
struct dgw_plugins;

/* An empty plugin set for `c`, reaching it through a plugins_host (see
 * plugin.h), or NULL without memory.  Call once c->base and c->opt are
 * set; free with plugins_free(). */
struct dgw_plugins *client_plugins_new(struct dgw_client *c);

#endif /* DGW_LIB_CLIENT_PLUGINS_H */
