/*
 * Plugins: finding and checking shared objects, the host table handed to
 * each, their timers, and the event-name routing table.
 *
 * Every DISPATCH handler, loaded or in-process, is one "unit" in
 * registration order.  At dgw_client_start() the units are folded into
 * an open-addressing hash table from event name to the ordered list of
 * units that want it (those naming it and those wanting "*"); a name not
 * in the table gets the "*" list.  An event whose list is empty, and that
 * the application's on_dispatch does not want either, is dropped by the
 * gateway right after the envelope peek, without building a DOM.
 */
#include "config.h"

#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <event2/event.h>
#include <json-c/json.h>

#include <dgw/dgw.h>
#include <dgw/plugin.h>

#include "client.h"
#include "payload.h"
#include "plugin.h"
#include "why.h"

#ifndef DGW_PLUGIN_DIR
#error "DGW_PLUGIN_DIR (the installed plugin directory) must be defined"
#endif

/* Longest plugin path we handle. */
#define PLUGIN_PATH_MAX 4096

struct plugin;

/* One handler: a plugin, or an application function. */
struct unit {
  struct plugin *plugin; /* NULL for an in-process handler */
  dgw_dispatch_fn fn;
  void *user_data;
  char **events; /* copies, without "*" */
  size_t nevents;
  int wildcard; /* wants "*" */
};

struct dgw_plugin_timer {
  struct plugin *plugin;
  struct event *ev;
  dgw_plugin_timer_fn fn;
  void *arg;
  int repeat;
  int running; /* inside fn */
  int removed; /* timer_remove() from inside fn */
  struct dgw_plugin_timer *prev, *next;
};

struct plugin {
  struct dgw_plugin_host host; /* what the plugin sees of us */
  struct dgw_plugins *set;
  void *dl;
  const struct dgw_plugin *desc; /* inside the shared object */
  void *state;
  char *path; /* as resolved */
  char *config;
  struct unit unit;
  struct dgw_plugin_timer *timers;
  int in_init;
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
  struct dgw_client *client;
  struct unit **units; /* registration order */
  size_t nunits, units_cap;
  struct plugin **plugins; /* load order */
  size_t nplugins, plugins_cap;
  struct slot *slots; /* power-of-two sized */
  size_t nslots;
  struct plugin_route wildcard;
  size_t refused;
  int built;
  int unloading;
};

/* ------------------------------------------------------------ helpers */

static int valid_event_name(const char *name) {
  return name != NULL && *name != '\0' && strlen(name) <= DGW_EVENT_NAME_MAX;
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

/* Adds `name` to what `u` wants; duplicates are ignored. */
static int unit_want(struct unit *u, const char *name) {
  char **grown;

  if (strcmp(name, "*") == 0) {
    u->wildcard = 1;
    return DGW_OK;
  }
  for (size_t i = 0; i < u->nevents; i++)
    if (strcmp(u->events[i], name) == 0)
      return DGW_OK;
  grown = realloc(u->events, (u->nevents + 1) * sizeof(*u->events));
  if (grown == NULL)
    return DGW_ERR_NOMEM;
  u->events = grown;
  if ((u->events[u->nevents] = strdup(name)) == NULL)
    return DGW_ERR_NOMEM;
  u->nevents++;
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

static void unit_clear(struct unit *u) {
  for (size_t i = 0; i < u->nevents; i++)
    free(u->events[i]);
  free(u->events);
  u->events = NULL;
  u->nevents = 0;
}

/* ------------------------------------------------------------ timers */

static void timer_free(struct dgw_plugin_timer *t) {
  struct plugin *p = t->plugin;

  if (t->prev != NULL)
    t->prev->next = t->next;
  else
    p->timers = t->next;
  if (t->next != NULL)
    t->next->prev = t->prev;
  event_free(t->ev);
  free(t);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_plugin_timer *t = arg;
  struct dgw_client *c = t->plugin->set->client;

  (void)fd;
  (void)what;
  /* Bracketed like every entry from the loop, so that the plugin may stop
   * the client and the application may free it from a callback this
   * triggers: the free then waits for client_leave(). */
  client_enter(c);
  t->running = 1;
  t->fn(t->arg);
  t->running = 0;
  if (!t->repeat || t->removed)
    timer_free(t);
  client_leave(c);
}

/* ------------------------------------------------------- host table */

static struct plugin *plugin_of(const struct dgw_plugin_host *host) {
  return (struct plugin *)(uintptr_t)((const char *)host -
                                      offsetof(struct plugin, host));
}

static void host_log(const struct dgw_plugin_host *host,
                     enum dgw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void host_log(const struct dgw_plugin_host *host,
                     enum dgw_log_level level, const char *fmt, ...) {
  struct plugin *p;
  struct dgw_client *c;
  char line[480];
  va_list ap;

  if (host == NULL || fmt == NULL)
    return;
  p = plugin_of(host);
  c = p->set->client;
  if (c->opt.log == NULL || level > c->opt.log_level)
    return; /* not worth formatting */
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  client_log(c, level, "plugin %s: %s", p->desc->name, line);
}

static int host_subscribe(const struct dgw_plugin_host *host,
                          const char *event_name) {
  struct plugin *p;

  if (host == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  p = plugin_of(host);
  if (!p->in_init)
    return DGW_ERR_STATE;
  if (!valid_event_name(event_name) || p->desc->on_dispatch == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  return unit_want(&p->unit, event_name);
}

static int host_send_json(const struct dgw_plugin_host *host, uint32_t shard_id,
                          const char *json, size_t len) {
  struct plugin *p;
  struct dgw_gateway *gw;

  if (host == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  p = plugin_of(host);
  if (p->set->unloading)
    return DGW_ERR_STATE;
  if ((gw = dgw_client_gateway(p->set->client, shard_id)) == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  return dgw_gateway_send_json(gw, json, len);
}

static void host_stop(const struct dgw_plugin_host *host) {
  struct plugin *p;

  if (host == NULL)
    return;
  p = plugin_of(host);
  if (p->set->unloading)
    return; /* the client is going away anyway, without callbacks */
  client_log(p->set->client, DGW_LOG_INFO, "plugin %s: stops the client",
             p->desc->name);
  dgw_client_stop(p->set->client);
}

static struct dgw_plugin_timer *
host_timer_add(const struct dgw_plugin_host *host, uint32_t ms, int repeat,
               dgw_plugin_timer_fn fn, void *arg) {
  struct plugin *p;
  struct dgw_plugin_timer *t;
  struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};

  if (host == NULL || fn == NULL)
    return NULL;
  p = plugin_of(host);
  if (p->set->unloading || (t = calloc(1, sizeof(*t))) == NULL)
    return NULL;
  t->plugin = p;
  t->fn = fn;
  t->arg = arg;
  t->repeat = repeat != 0;
  t->ev = event_new(p->set->client->base, -1, t->repeat ? EV_PERSIST : 0,
                    timer_cb, t);
  if (t->ev == NULL || event_add(t->ev, &tv) != 0) {
    if (t->ev != NULL)
      event_free(t->ev);
    free(t);
    return NULL;
  }
  t->next = p->timers;
  if (p->timers != NULL)
    p->timers->prev = t;
  p->timers = t;
  return t;
}

static void host_timer_remove(const struct dgw_plugin_host *host,
                              struct dgw_plugin_timer *t) {
  (void)host;
  if (t == NULL)
    return;
  if (t->running) { /* timer_cb frees it when the callback returns */
    t->removed = 1;
    event_del(t->ev);
    return;
  }
  timer_free(t);
}

static uint32_t host_shard_count(const struct dgw_plugin_host *host) {
  return host != NULL ? plugin_of(host)->set->client->nshards : 0;
}

static struct dgw_gateway *
host_gateway_for_guild(const struct dgw_plugin_host *h, const char *guild_id) {
  return dgw_client_gateway_for_guild(h->client, guild_id);
}

static struct dgw_gateway *host_gateway_at(const struct dgw_plugin_host *host,
                                           uint32_t index) {
  struct dgw_client *c;

  if (host == NULL)
    return NULL;
  c = plugin_of(host)->set->client;
  return index < c->nshards ? c->shards[index] : NULL;
}

static void host_init(struct plugin *p) {
  struct dgw_plugin_host *h = &p->host;
  struct dgw_client *c = p->set->client;

  memset(h, 0, sizeof(*h));
  h->size = (uint32_t)sizeof(*h);
  h->abi = DGW_PLUGIN_ABI;
  h->version = dgw_version();
  h->client = c;
  h->base = c->base;
  h->config_json = p->config;
  h->log = host_log;
  h->subscribe = host_subscribe;
  h->send_json = host_send_json;
  h->stop = host_stop;
  h->timer_add = host_timer_add;
  h->timer_remove = host_timer_remove;
  h->shard_count = host_shard_count;
  h->gateway_at = host_gateway_at;
  h->gateway_shard_id = dgw_gateway_shard_id;
  h->gateway_state = dgw_gateway_state;
  h->gateway_sequence = dgw_gateway_sequence;
  h->gateway_latency = dgw_gateway_latency;
  h->gateway_send_json = dgw_gateway_send_json;
  h->event_name = dgw_event_name;
  h->event_seq = dgw_event_seq;
  h->event_shard = dgw_event_shard;
  h->event_data = dgw_event_data;
  h->event_json = dgw_event_json;
  h->strerror = dgw_strerror;
  h->state_name = dgw_state_name;
  h->gateway_for_guild = host_gateway_for_guild;
  h->update_presence = dgw_gateway_update_presence;
  h->update_voice_state = dgw_gateway_update_voice_state;
  h->request_members = dgw_gateway_request_members;
  h->request_soundboard_sounds = dgw_gateway_request_soundboard_sounds;
  h->request_channel_info = dgw_gateway_request_channel_info;
}

/* ------------------------------------------------------------ loading */

static int has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s);
  size_t m = strlen(suffix);

  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* Tries "<dir>/<file><suffix>" (dir is `len` bytes); 1 when it exists. */
static int try_dir(const char *dir, size_t len, const char *file,
                   const char *suffix, char *out, size_t out_size) {
  struct stat st;
  int n;

  if (len == 0)
    return 0;
  n = snprintf(out, out_size, "%.*s/%s%s", (int)len, dir, file, suffix);
  return n > 0 && (size_t)n < out_size && stat(out, &st) == 0 &&
         !S_ISDIR(st.st_mode);
}

int plugins_resolve(const char *name, const char *search_path,
                    const char *install_dir, char *out, size_t out_size,
                    char *why, size_t why_size) {
  const char *suffix;
  struct stat st;

  if (name == NULL || *name == '\0' || out == NULL || out_size == 0) {
    dgw_set_why(why, why_size, "no plugin name or path given");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if (strchr(name, '/') != NULL) {
    if (strlen(name) >= out_size) {
      dgw_set_why(why, why_size, "%.64s...: file missing (path too long)",
                  name);
      return DGW_ERR_PLUGIN;
    }
    if (stat(name, &st) != 0) {
      dgw_set_why(why, why_size, "%s: file missing (%s)", name,
                  strerror(errno));
      return DGW_ERR_PLUGIN;
    }
    memcpy(out, name, strlen(name) + 1);
    return DGW_OK;
  }
  suffix = has_suffix(name, ".so") ? "" : ".so";
  for (const char *dir = search_path; dir != NULL && *dir != '\0';) {
    const char *colon = strchr(dir, ':');
    size_t len = colon != NULL ? (size_t)(colon - dir) : strlen(dir);

    if (try_dir(dir, len, name, suffix, out, out_size))
      return DGW_OK;
    dir = colon != NULL ? colon + 1 : NULL;
  }
  if (install_dir != NULL &&
      try_dir(install_dir, strlen(install_dir), name, suffix, out, out_size))
    return DGW_OK;
  dgw_set_why(
      why, why_size, "%s: file missing (no %s%s in %s=\"%s\" nor in %s)", name,
      name, suffix, DGW_PLUGIN_PATH_ENV, search_path != NULL ? search_path : "",
      install_dir != NULL ? install_dir : "(none)");
  return DGW_ERR_PLUGIN;
}

/* Frees a plugin record: its timers, the shared object, its copies.  The
 * plugin's fini, if due, has run. */
static void plugin_destroy(struct plugin *p) {
  while (p->timers != NULL)
    timer_free(p->timers);
  if (p->dl != NULL)
    dlclose(p->dl);
  unit_clear(&p->unit);
  free(p->path);
  free(p->config);
  free(p);
}

/* Checks what dgw_plugin_describe() returned. */
static int check_descriptor(const struct dgw_plugin *d, const char *path,
                            char *why, size_t why_size) {
  if (d == NULL) {
    dgw_set_why(why, why_size, "%s: dgw_plugin_describe returned NULL", path);
    return DGW_ERR_PLUGIN;
  }
  if (d->abi != DGW_PLUGIN_ABI) {
    dgw_set_why(why, why_size,
                "%s: other plugin ABI (built for %u, this dgw speaks %d)", path,
                (unsigned)d->abi, DGW_PLUGIN_ABI);
    return DGW_ERR_PLUGIN;
  }
  if (d->size < sizeof(struct dgw_plugin)) {
    dgw_set_why(
        why, why_size,
        "%s: descriptor too small (%u bytes, this dgw needs at least %zu)",
        path, (unsigned)d->size, sizeof(struct dgw_plugin));
    return DGW_ERR_PLUGIN;
  }
  if (d->name == NULL || *d->name == '\0') {
    dgw_set_why(why, why_size, "%s: bad descriptor (no name)", path);
    return DGW_ERR_PLUGIN;
  }
  for (size_t i = 0; d->events != NULL && d->events[i] != NULL; i++) {
    if (!valid_event_name(d->events[i])) {
      dgw_set_why(why, why_size,
                  "%s: bad descriptor (event %zu is empty or too long)", path,
                  i);
      return DGW_ERR_PLUGIN;
    }
    if (d->on_dispatch == NULL) {
      dgw_set_why(why, why_size,
                  "%s: bad descriptor (events but no on_dispatch)", path);
      return DGW_ERR_PLUGIN;
    }
  }
  return DGW_OK;
}

/* Everything in plugins_load() but the reporting.  On success *out is the
 * initialized plugin, not yet in the set. */
static int load_one(struct dgw_plugins *ps, const char *name,
                    const char *config, struct plugin **out, char *why,
                    size_t why_size) {
  char path[PLUGIN_PATH_MAX];
  struct plugin *p;
  struct json_object *parsed;
  dgw_plugin_describe_fn describe;
  void *sym;
  int err = DGW_OK;
  int rv;

  if (config == NULL)
    config = "{}";
  parsed = dgw_payload_parse(config, strlen(config), &err);
  json_object_put(parsed);
  if (err != DGW_OK) {
    dgw_set_why(why, why_size, "%s: config is not valid JSON", name);
    return DGW_ERR_PLUGIN;
  }
  rv = plugins_resolve(name, getenv(DGW_PLUGIN_PATH_ENV), DGW_PLUGIN_DIR, path,
                       sizeof(path), why, why_size);
  if (rv != DGW_OK)
    return rv;
  if ((p = calloc(1, sizeof(*p))) == NULL)
    goto nomem;
  p->config = strdup(config);
  p->path = strdup(path);
  if (p->config == NULL || p->path == NULL)
    goto nomem;
  p->set = ps;
  p->unit.plugin = p;

  dlerror();
  if ((p->dl = dlopen(path, RTLD_NOW | RTLD_LOCAL)) == NULL) {
    const char *e = dlerror();

    dgw_set_why(why, why_size, "%s: not a loadable shared object (%s)", path,
                e != NULL ? e : "dlopen failed");
    rv = DGW_ERR_PLUGIN;
    goto fail;
  }
  dlerror();
  if ((sym = dlsym(p->dl, DGW_PLUGIN_DESCRIBE_SYMBOL)) == NULL) {
    dgw_set_why(why, why_size, "%s: lacks the symbol %s", path,
                DGW_PLUGIN_DESCRIBE_SYMBOL);
    rv = DGW_ERR_PLUGIN;
    goto fail;
  }
  /* POSIX guarantees a function's address survives the trip through
   * void *; memcpy says so without a cast ISO C frowns on. */
  memcpy(&describe, &sym, sizeof(describe));
  p->desc = describe();
  if ((rv = check_descriptor(p->desc, path, why, why_size)) != DGW_OK)
    goto fail;
  for (size_t i = 0; p->desc->events != NULL && p->desc->events[i] != NULL; i++)
    if ((rv = unit_want(&p->unit, p->desc->events[i])) != DGW_OK) {
      dgw_set_why(why, why_size, "%s: out of memory", path);
      goto fail;
    }
  host_init(p);
  if (p->desc->init != NULL) {
    int ret;

    p->in_init = 1;
    ret = p->desc->init(&p->host, p->config, &p->state);
    p->in_init = 0;
    if (ret != 0) {
      dgw_set_why(why, why_size, "%s: init failed (returned %d)", path, ret);
      rv = DGW_ERR_PLUGIN;
      goto fail;
    }
  }
  *out = p;
  return DGW_OK;

nomem:
  dgw_set_why(why, why_size, "%s: out of memory", path);
  rv = DGW_ERR_NOMEM;
fail:
  if (p != NULL)
    plugin_destroy(p);
  return rv;
}

int plugins_load(struct dgw_plugins *ps, const char *name_or_path,
                 const char *config_json, char *why, size_t why_size) {
  struct dgw_client *c;
  struct plugin *p = NULL;
  char reason[PLUGIN_PATH_MAX + 256];
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
  c = ps->client;
  /* Room in both lists first, so that nothing can fail after init. */
  rv = reserve(ps, 1);
  if (rv != DGW_OK)
    snprintf(reason, sizeof(reason), "%s: out of memory", name_or_path);
  else
    rv = load_one(ps, name_or_path, config_json, &p, reason, sizeof(reason));
  if (rv != DGW_OK) {
    ps->refused++;
    client_log(c, c->opt.plugins_strict ? DGW_LOG_ERROR : DGW_LOG_WARN,
               "plugin refused: %s", reason);
    dgw_set_why(why, why_size, "%s", reason);
    return rv;
  }
  ps->plugins[ps->nplugins++] = p;
  ps->units[ps->nunits++] = &p->unit;
  if (p->unit.wildcard)
    snprintf(reason, sizeof(reason), "every event");
  else
    snprintf(reason, sizeof(reason), "%zu event name(s)", p->unit.nevents);
  client_log(c, DGW_LOG_INFO, "plugin %s%s%s loaded from %s, wants %s",
             p->desc->name, p->desc->version != NULL ? " " : "",
             p->desc->version != NULL ? p->desc->version : "", p->path, reason);
  return DGW_OK;
}

int plugins_add_handler(struct dgw_plugins *ps, const char *event,
                        dgw_dispatch_fn fn, void *user_data) {
  struct unit *u;

  if (ps == NULL || fn == NULL || !valid_event_name(event))
    return DGW_ERR_INVALID_ARGUMENT;
  if (ps->built)
    return DGW_ERR_STATE;
  if (reserve(ps, 0) != DGW_OK || (u = calloc(1, sizeof(*u))) == NULL)
    return DGW_ERR_NOMEM;
  u->fn = fn;
  u->user_data = user_data;
  if (unit_want(u, event) != DGW_OK) {
    unit_clear(u);
    free(u);
    return DGW_ERR_NOMEM;
  }
  ps->units[ps->nunits++] = u;
  return DGW_OK;
}

size_t plugins_refused(const struct dgw_plugins *ps) {
  return ps != NULL ? ps->refused : 0;
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
  struct dgw_client *c = ps->client;

  for (size_t i = 0; i < route->n && !c->free_pending; i++) {
    struct unit *u = route->units[i];

    if (u->plugin != NULL)
      u->plugin->desc->on_dispatch(u->plugin->state, gw, ev);
    else
      u->fn(gw, ev, u->user_data);
  }
}

void plugins_lifecycle(struct dgw_plugins *ps, struct dgw_gateway *gw,
                       enum dgw_lifecycle what,
                       const struct dgw_disconnect *info) {
  struct dgw_client *c = ps->client;

  for (size_t i = 0; i < ps->nplugins && !c->free_pending; i++) {
    struct plugin *p = ps->plugins[i];

    if (p->desc->on_lifecycle != NULL)
      p->desc->on_lifecycle(p->state, gw, what, info);
  }
}

/* ------------------------------------------------------- the set */

struct dgw_plugins *plugins_new(struct dgw_client *c) {
  struct dgw_plugins *ps = calloc(1, sizeof(*ps));

  if (ps != NULL)
    ps->client = c;
  return ps;
}

void plugins_free(struct dgw_plugins *ps) {
  if (ps == NULL)
    return;
  ps->unloading = 1;
  /* The application's handlers first: a plugin's unit lives inside the
   * plugin record, freed below. */
  for (size_t i = 0; i < ps->nunits; i++) {
    if (ps->units[i]->plugin == NULL) {
      unit_clear(ps->units[i]);
      free(ps->units[i]);
    }
  }
  /* Reverse load order: a plugin loaded later may rely on an earlier one
   * (the same rule as C++ destructors and atexit). */
  for (size_t i = ps->nplugins; i-- > 0;) {
    struct plugin *p = ps->plugins[i];

    if (p->desc->fini != NULL)
      p->desc->fini(p->state);
    plugin_destroy(p);
  }
  for (size_t i = 0; i < ps->nslots; i++)
    free(ps->slots[i].route.units);
  free(ps->slots);
  free(ps->wildcard.units);
  free(ps->plugins);
  free(ps->units);
  free(ps);
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
  if (c->started || c->free_pending) {
    dgw_set_why(why, why_size,
                "%s: the client has started; load plugins before "
                "dgw_client_start()",
                name_or_path);
    return DGW_ERR_STATE;
  }
  return plugins_load(c->plugins, name_or_path, config_json, why, why_size);
}

size_t dgw_client_plugin_count(const struct dgw_client *c) {
  return c != NULL && c->plugins != NULL ? c->plugins->nplugins : 0;
}

int dgw_client_plugin_info(const struct dgw_client *c, size_t index,
                           struct dgw_plugin_info *info, size_t info_size) {
  struct dgw_plugin_info full;
  const struct plugin *p;

  if (c == NULL || info == NULL || info_size == 0 || c->plugins == NULL ||
      index >= c->plugins->nplugins)
    return DGW_ERR_INVALID_ARGUMENT;
  p = c->plugins->plugins[index];
  memset(&full, 0, sizeof(full));
  full.name = p->desc->name;
  full.version = p->desc->version != NULL ? p->desc->version : "";
  full.description = p->desc->description != NULL ? p->desc->description : "";
  full.path = p->path;
  full.abi = p->desc->abi;
  full.all_events = p->unit.wildcard;
  full.events = (const char *const *)p->unit.events;
  full.nevents = p->unit.nevents;
  /* An older caller's smaller struct gets the fields it knows of. */
  memcpy(info, &full, info_size < sizeof(full) ? info_size : sizeof(full));
  return DGW_OK;
}

int dgw_client_on_event(struct dgw_client *c, const char *event_name,
                        dgw_dispatch_fn fn, void *user_data) {
  if (c == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (c->started || c->free_pending)
    return DGW_ERR_STATE;
  return plugins_add_handler(c->plugins, event_name, fn, user_data);
}
