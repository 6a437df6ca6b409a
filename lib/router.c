/*
 * The router: every DISPATCH handler, loaded or in-process, is one "unit"
 * in registration order.  At dgw_client_start() the units are folded into
 * an open-addressing hash table from event name to the ordered list of
 * units that want it (those naming it and those wanting "*"); a name not
 * in the table gets the "*" list.  An event whose list is empty, and that
 * the application's on_dispatch does not want either, is dropped by the
 * client right after the envelope peek, without building a DOM.
 *
 * Plugins are opaque here: plugin.h loads them, says what they want, and
 * calls their hooks.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>
#include <dgw/plugin.h>

#include "payload.h"
#include "plugin.h"
#include "router.h"
#include "why.h"

/* Room for a refusal: a plugin path (up to 4096 bytes) and why. */
#define REASON_MAX (4096 + 256)

/* One handler: a plugin, or an application function. */
struct unit {
  struct plugin *plugin; /* NULL for an in-process handler */
  dgw_dispatch_fn fn;
  void *user_data;
  const char *const *events; /* without "*"; the plugin's, or &name */
  size_t nevents;
  int wildcard; /* wants "*" */
  char *name;   /* an in-process handler's one event name */
};

struct plugin_route {
  struct unit **units;
  size_t n;
};

struct slot {
  const char *name; /* NULL: empty; borrowed from a unit */
  uint32_t hash;
  struct plugin_route route;
};

struct dgw_plugins {
  struct plugins_host host;
  struct unit **units; /* registration order */
  size_t nunits, units_cap;
  struct plugin **plugins; /* load order */
  size_t nplugins, plugins_cap;
  struct slot *slots; /* power-of-two sized */
  size_t nslots;
  struct plugin_route wildcard;
  size_t refused;
  int built;
};

/* ------------------------------------------------------------ helpers */

static void say(const struct dgw_plugins *ps, enum dgw_log_level level,
                const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void say(const struct dgw_plugins *ps, enum dgw_log_level level,
                const char *fmt, ...) {
  char line[512];
  va_list ap;

  if (!ps->host.log_enabled(ps->host.owner, level))
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  ps->host.log(ps->host.owner, level, line);
}

/* Returns `array` (of `elem`-byte entries, `*cap` of them) grown to hold
 * at least `need`, or NULL without memory (then `array` is untouched). */
static void *grow(void *array, size_t *cap, size_t need, size_t elem) {
  size_t n = *cap ? *cap : 4;
  void *grown;

  if (need <= *cap)
    return array;
  while (n < need)
    n *= 2;
  if ((grown = realloc(array, n * elem)) != NULL)
    *cap = n;
  return grown;
}

/* Room for one more plugin and one more unit. */
static int reserve(struct dgw_plugins *ps, int plugin) {
  void *grown;

  if (plugin) {
    grown = grow(ps->plugins, &ps->plugins_cap, ps->nplugins + 1,
                 sizeof(*ps->plugins));
    if (grown == NULL)
      return DGW_ERR_NOMEM;
    ps->plugins = grown;
  }
  grown = grow(ps->units, &ps->units_cap, ps->nunits + 1, sizeof(*ps->units));
  if (grown == NULL)
    return DGW_ERR_NOMEM;
  ps->units = grown;
  return DGW_OK;
}

static int unit_wants(const struct unit *u, const char *name) {
  if (u->wildcard)
    return 1;
  for (size_t i = 0; i < u->nevents; i++)
    if (strcmp(u->events[i], name) == 0)
      return 1;
  return 0;
}

static void unit_free(struct unit *u) {
  free(u->name);
  free(u);
}

/* ------------------------------------------------------- registering */

int plugins_load(struct dgw_plugins *ps, const char *name_or_path,
                 const char *config_json, char *why, size_t why_size) {
  struct plugin *p = NULL;
  struct unit *u = NULL;
  struct dgw_plugin_info info;
  char reason[REASON_MAX];
  int rv;

  if (why != NULL && why_size > 0)
    why[0] = '\0';
  if (ps == NULL || name_or_path == NULL || *name_or_path == '\0') {
    dgw_set_why(why, why_size, "no plugin name or path given");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if (ps->built) {
    dgw_set_why(why, why_size,
                "%s: the client has started; load plugins before",
                name_or_path);
    return DGW_ERR_STATE;
  }
  /* Room in both lists and the unit first, so that nothing can fail after
   * the plugin's init. */
  rv = reserve(ps, 1);
  if (rv == DGW_OK && (u = calloc(1, sizeof(*u))) == NULL)
    rv = DGW_ERR_NOMEM;
  if (rv != DGW_OK)
    snprintf(reason, sizeof(reason), "%s: out of memory", name_or_path);
  else
    p = plugin_load(&ps->host, name_or_path, config_json, reason,
                    sizeof(reason), &rv);
  if (p == NULL) {
    free(u);
    ps->refused++;
    say(ps, ps->host.strict ? DGW_LOG_ERROR : DGW_LOG_WARN,
        "plugin refused: %s", reason);
    dgw_set_why(why, why_size, "%s", reason);
    return rv;
  }
  u->plugin = p;
  u->events = plugin_events(p, &u->nevents, &u->wildcard);
  ps->plugins[ps->nplugins++] = p;
  ps->units[ps->nunits++] = u;
  plugin_describe(p, &info);
  if (info.all_events)
    snprintf(reason, sizeof(reason), "every event");
  else
    snprintf(reason, sizeof(reason), "%zu event name(s)", info.nevents);
  say(ps, DGW_LOG_INFO, "plugin %s%s%s loaded from %s, wants %s", info.name,
      *info.version != '\0' ? " " : "", info.version, info.path, reason);
  return DGW_OK;
}

int plugins_add_handler(struct dgw_plugins *ps, const char *event,
                        dgw_dispatch_fn fn, void *user_data) {
  struct unit *u;

  if (ps == NULL || fn == NULL || event == NULL || *event == '\0' ||
      strlen(event) > DGW_EVENT_NAME_MAX)
    return DGW_ERR_INVALID_ARGUMENT;
  if (ps->built)
    return DGW_ERR_STATE;
  if (reserve(ps, 0) != DGW_OK || (u = calloc(1, sizeof(*u))) == NULL)
    return DGW_ERR_NOMEM;
  u->fn = fn;
  u->user_data = user_data;
  if (strcmp(event, "*") == 0) {
    u->wildcard = 1;
  } else {
    if ((u->name = strdup(event)) == NULL) {
      unit_free(u);
      return DGW_ERR_NOMEM;
    }
    u->events = (const char *const *)&u->name;
    u->nevents = 1;
  }
  ps->units[ps->nunits++] = u;
  return DGW_OK;
}

size_t plugins_refused(const struct dgw_plugins *ps) {
  return ps != NULL ? ps->refused : 0;
}

size_t plugins_count(const struct dgw_plugins *ps) {
  return ps != NULL ? ps->nplugins : 0;
}

int plugins_info(const struct dgw_plugins *ps, size_t index,
                 struct dgw_plugin_info *info, size_t info_size) {
  struct dgw_plugin_info full;

  if (ps == NULL || info == NULL || info_size == 0 || index >= ps->nplugins)
    return DGW_ERR_INVALID_ARGUMENT;
  plugin_describe(ps->plugins[index], &full);
  /* An older caller's smaller struct gets the fields it knows of. */
  memcpy(info, &full, info_size < sizeof(full) ? info_size : sizeof(full));
  return DGW_OK;
}

/* ------------------------------------------------------------ routing */

/* FNV-1a: short keys, no adversary (the names come from our own units,
 * and a lookup of a hostile name costs one probe sequence). */
static uint32_t hash_name(const char *s) {
  uint32_t h = 2166136261u;

  for (; *s != '\0'; s++) {
    h ^= (unsigned char)*s;
    h *= 16777619u;
  }
  return h;
}

static struct slot *find_slot(const struct dgw_plugins *ps, const char *name,
                              uint32_t h) {
  size_t mask = ps->nslots - 1;

  for (size_t i = h & mask;; i = (i + 1) & mask) {
    struct slot *s = &ps->slots[i];

    if (s->name == NULL || (s->hash == h && strcmp(s->name, name) == 0))
      return s;
  }
}

/* Fills `r` with the units that want `name` (NULL: "*"), in order. */
static int fill_route(struct dgw_plugins *ps, struct plugin_route *r,
                      const char *name) {
  if ((r->units = calloc(ps->nunits, sizeof(*r->units))) == NULL)
    return DGW_ERR_NOMEM;
  for (size_t i = 0; i < ps->nunits; i++) {
    struct unit *u = ps->units[i];

    if (name == NULL ? u->wildcard : unit_wants(u, name))
      r->units[r->n++] = u;
  }
  return DGW_OK;
}

int plugins_build_routes(struct dgw_plugins *ps) {
  size_t names = 0;

  if (ps->built)
    return DGW_OK;
  for (size_t i = 0; i < ps->nunits; i++)
    names += ps->units[i]->nevents;
  if (ps->nunits > 0 && fill_route(ps, &ps->wildcard, NULL) != DGW_OK)
    return DGW_ERR_NOMEM;
  if (names > 0) {
    /* At most half full, so probe sequences stay short and end. */
    ps->nslots = 8;
    while (ps->nslots < 2 * names)
      ps->nslots *= 2;
    if ((ps->slots = calloc(ps->nslots, sizeof(*ps->slots))) == NULL) {
      ps->nslots = 0;
      return DGW_ERR_NOMEM;
    }
  }
  for (size_t i = 0; i < ps->nunits; i++) {
    for (size_t j = 0; j < ps->units[i]->nevents; j++) {
      const char *name = ps->units[i]->events[j];
      uint32_t h = hash_name(name);
      struct slot *s = find_slot(ps, name, h);

      if (s->name != NULL)
        continue;
      s->name = name;
      s->hash = h;
      if (fill_route(ps, &s->route, name) != DGW_OK)
        return DGW_ERR_NOMEM;
    }
  }
  ps->built = 1;
  return DGW_OK;
}

const struct plugin_route *plugins_route(const struct dgw_plugins *ps,
                                         const char *event_name) {
  if (ps == NULL || !ps->built)
    return NULL;
  if (ps->nslots > 0) {
    struct slot *s = find_slot(ps, event_name, hash_name(event_name));

    if (s->name != NULL)
      return &s->route;
  }
  return ps->wildcard.n > 0 ? &ps->wildcard : NULL;
}

void plugins_dispatch(struct dgw_plugins *ps, const struct plugin_route *route,
                      struct dgw_gateway *gw, const struct dgw_event *ev) {
  const struct plugins_host *h = &ps->host;

  for (size_t i = 0; i < route->n && !h->freeing(h->owner); i++) {
    struct unit *u = route->units[i];

    if (u->plugin != NULL)
      plugin_dispatch(u->plugin, gw, ev);
    else
      u->fn(gw, ev, u->user_data);
  }
}

void plugins_lifecycle(struct dgw_plugins *ps, struct dgw_gateway *gw,
                       enum dgw_lifecycle what,
                       const struct dgw_disconnect *info) {
  const struct plugins_host *h = &ps->host;

  for (size_t i = 0; i < ps->nplugins && !h->freeing(h->owner); i++)
    plugin_lifecycle(ps->plugins[i], gw, what, info);
}

/* ------------------------------------------------------- the set */

struct dgw_plugins *plugins_new(const struct plugins_host *host) {
  struct dgw_plugins *ps;

  if (host == NULL || (ps = calloc(1, sizeof(*ps))) == NULL)
    return NULL;
  ps->host = *host;
  return ps;
}

void plugins_free(struct dgw_plugins *ps) {
  if (ps == NULL)
    return;
  for (size_t i = 0; i < ps->nunits; i++)
    unit_free(ps->units[i]);
  /* Reverse load order: a plugin loaded later may rely on an earlier one
   * (the same rule as C++ destructors and atexit). */
  for (size_t i = ps->nplugins; i-- > 0;)
    plugin_unload(ps->plugins[i]);
  for (size_t i = 0; i < ps->nslots; i++)
    free(ps->slots[i].route.units);
  free(ps->slots);
  free(ps->wildcard.units);
  free(ps->plugins);
  free(ps->units);
  free(ps);
}
