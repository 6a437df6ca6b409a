/*
 * The plugin loader: finding and checking shared objects, the host table
 * handed to each, and their timers.  What a plugin wants (its descriptor's
 * events and what init() subscribes to) is kept here; routing events to
 * it is router.c's.  Everything the loader needs of the client comes
 * through the struct plugins_host it was given.
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

#include "clock.h"
#include "payload.h"
#include "plugin.h"
#include "why.h"

#ifndef DGW_PLUGIN_DIR
#error "DGW_PLUGIN_DIR (the installed plugin directory) must be defined"
#endif

/* Longest plugin path we handle. */
#define PLUGIN_PATH_MAX 4096

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
  struct dgw_plugin_host host;      /* what the plugin sees of us */
  const struct plugins_host *owner; /* borrowed from the set */
  void *dl;
  const struct dgw_plugin *desc; /* inside the shared object */
  void *state;
  char *path; /* as resolved */
  char *config;
  char **events; /* copies, without "*" */
  size_t nevents;
  int wildcard; /* wants "*" */
  struct dgw_plugin_timer *timers;
  int in_init;
  int unloading; /* in fini: host calls that would act are refused */
  struct dgw_gateway **holds; /* the shards this plugin paused */
  size_t nholds, holds_cap;
};

/* ------------------------------------------------------------ helpers */

static int valid_event_name(const char *name) {
  return name != NULL && *name != '\0' && strlen(name) <= DGW_EVENT_NAME_MAX;
}

/* Adds `name` to what `p` wants; duplicates are ignored. */
static int plugin_want(struct plugin *p, const char *name) {
  char **grown;

  if (strcmp(name, "*") == 0) {
    p->wildcard = 1;
    return DGW_OK;
  }
  for (size_t i = 0; i < p->nevents; i++)
    if (strcmp(p->events[i], name) == 0)
      return DGW_OK;
  grown = realloc(p->events, (p->nevents + 1) * sizeof(*p->events));
  if (grown == NULL)
    return DGW_ERR_NOMEM;
  p->events = grown;
  if ((p->events[p->nevents] = strdup(name)) == NULL)
    return DGW_ERR_NOMEM;
  p->nevents++;
  return DGW_OK;
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
  const struct plugins_host *o = t->plugin->owner;
  void *owner = o->owner;

  (void)fd;
  (void)what;
  /* Bracketed like every entry from the loop, so that the plugin may stop
   * the client and the application may free it from a callback this
   * triggers: the free then waits for leave(). */
  o->enter(owner);
  t->running = 1;
  t->fn(t->arg);
  t->running = 0;
  if (!t->repeat || t->removed)
    timer_free(t);
  o->leave(owner);
}

/* ------------------------------------------------------- host table */

static struct plugin *plugin_of(const struct dgw_plugin_host *host) {
  return (struct plugin *)(uintptr_t)((const char *)host -
                                      offsetof(struct plugin, host));
}

/* Logs "plugin NAME: " and a printf-style line through the owner. */
static void plugin_log(const struct plugin *p, enum dgw_log_level level,
                       const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

static void plugin_log(const struct plugin *p, enum dgw_log_level level,
                       const char *fmt, va_list ap) {
  const struct plugins_host *o = p->owner;
  char text[480];
  char line[512];

  if (!o->log_enabled(o->owner, level))
    return; /* not worth formatting */
  vsnprintf(text, sizeof(text), fmt, ap);
  snprintf(line, sizeof(line), "plugin %s: %s", p->desc->name, text);
  o->log(o->owner, level, line);
}

static void host_log(const struct dgw_plugin_host *host,
                     enum dgw_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void host_log(const struct dgw_plugin_host *host,
                     enum dgw_log_level level, const char *fmt, ...) {
  va_list ap;

  if (host == NULL || fmt == NULL)
    return;
  va_start(ap, fmt);
  plugin_log(plugin_of(host), level, fmt, ap);
  va_end(ap);
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
  return plugin_want(p, event_name);
}

static int host_send_json(const struct dgw_plugin_host *host, uint32_t shard_id,
                          const char *json, size_t len) {
  struct plugin *p;
  struct dgw_gateway *gw;

  if (host == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  p = plugin_of(host);
  if (p->unloading)
    return DGW_ERR_STATE;
  if ((gw = dgw_client_gateway(p->owner->client, shard_id)) == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  return dgw_gateway_send_json(gw, json, len);
}

static void host_stop(const struct dgw_plugin_host *host) {
  struct plugin *p;

  if (host == NULL)
    return;
  p = plugin_of(host);
  if (p->unloading)
    return; /* the client is going away anyway, without callbacks */
  host_log(host, DGW_LOG_INFO, "stops the client");
  dgw_client_stop(p->owner->client);
}

static struct dgw_plugin_timer *
host_timer_add(const struct dgw_plugin_host *host, uint32_t ms, int repeat,
               dgw_plugin_timer_fn fn, void *arg) {
  struct plugin *p;
  struct dgw_plugin_timer *t;
  struct timeval tv = dgw_timeval_ms(ms);

  if (host == NULL || fn == NULL)
    return NULL;
  p = plugin_of(host);
  if (p->unloading || (t = calloc(1, sizeof(*t))) == NULL)
    return NULL;
  t->plugin = p;
  t->fn = fn;
  t->arg = arg;
  t->repeat = repeat != 0;
  t->ev =
      event_new(p->owner->base, -1, t->repeat ? EV_PERSIST : 0, timer_cb, t);
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
  const struct plugins_host *o;

  if (host == NULL)
    return 0;
  o = plugin_of(host)->owner;
  return o->shard_count(o->owner);
}

static struct dgw_gateway *
host_gateway_for_guild(const struct dgw_plugin_host *h, const char *guild_id) {
  return dgw_client_gateway_for_guild(h->client, guild_id);
}

static struct dgw_gateway *host_gateway_at(const struct dgw_plugin_host *host,
                                           uint32_t index) {
  const struct plugins_host *o;

  if (host == NULL)
    return NULL;
  o = plugin_of(host)->owner;
  return o->shard_at(o->owner, index);
}

/* Pauses (`on`) or releases `gw` for this plugin, once each way. */
static int host_hold(const struct dgw_plugin_host *host, struct dgw_gateway *gw,
                     int on) {
  struct plugin *p;
  const struct plugins_host *o;
  size_t i;
  int rv;

  if (host == NULL || gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  p = plugin_of(host);
  o = p->owner;
  if (p->unloading || o->hold == NULL)
    return DGW_ERR_STATE;
  for (i = 0; i < p->nholds && p->holds[i] != gw; i++)
    ;
  if ((i < p->nholds) == (on != 0))
    return DGW_OK; /* already so */
  if (on && p->nholds == p->holds_cap) {
    size_t cap = p->holds_cap ? p->holds_cap * 2 : 4;
    struct dgw_gateway **grown = realloc(p->holds, cap * sizeof(*grown));

    if (grown == NULL)
      return DGW_ERR_NOMEM;
    p->holds = grown;
    p->holds_cap = cap;
  }
  if ((rv = o->hold(o->owner, gw, on)) != DGW_OK)
    return rv;
  if (on)
    p->holds[p->nholds++] = gw;
  else
    p->holds[i] = p->holds[--p->nholds];
  return DGW_OK;
}

static int host_gateway_pause(const struct dgw_plugin_host *host,
                              struct dgw_gateway *gw) {
  return host_hold(host, gw, 1);
}

static int host_gateway_release(const struct dgw_plugin_host *host,
                                struct dgw_gateway *gw) {
  return host_hold(host, gw, 0);
}

static int host_gateway_paused(const struct dgw_plugin_host *host,
                               const struct dgw_gateway *gw) {
  const struct plugins_host *o;

  if (host == NULL || gw == NULL)
    return 0;
  o = plugin_of(host)->owner;
  return o->held != NULL && o->held(o->owner, gw);
}

static const char *host_cluster_name(const struct dgw_plugin_host *host) {
  const struct plugins_host *o;

  if (host == NULL)
    return NULL;
  o = plugin_of(host)->owner;
  return o->cluster_name != NULL ? o->cluster_name(o->owner) : NULL;
}

static int host_cluster_lease(const struct dgw_plugin_host *host,
                              uint32_t shard_id, char *member,
                              size_t member_size, uint64_t *token) {
  const struct plugins_host *o;

  if (host == NULL || member == NULL || token == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  o = plugin_of(host)->owner;
  if (o->cluster_lease == NULL)
    return DGW_ERR_NOT_FOUND;
  return o->cluster_lease(o->owner, shard_id, member, member_size, token);
}

static void host_init(struct plugin *p) {
  struct dgw_plugin_host *h = &p->host;

  memset(h, 0, sizeof(*h));
  h->size = (uint32_t)sizeof(*h);
  h->abi = DGW_PLUGIN_ABI;
  h->version = dgw_version();
  h->client = p->owner->client;
  h->base = p->owner->base;
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
  h->field_present = dgw_field_present;
  h->field_type = dgw_field_type;
  h->field_raw = dgw_field_raw;
  h->field_string = dgw_field_string;
  h->field_string_view = dgw_field_string_view;
  h->field_int64 = dgw_field_int64;
  h->field_uint64 = dgw_field_uint64;
  h->field_double = dgw_field_double;
  h->field_bool = dgw_field_bool;
  h->field_null = dgw_field_null;
  h->field_count = dgw_field_count;
  h->client_stats = dgw_client_stats;
  h->gateway_stats = dgw_gateway_stats;
  h->client_is_offline = dgw_client_is_offline;
  h->stats_event_name = dgw_stats_event_name;
  h->stats_close_code = dgw_stats_close_code;
  h->stats_latency_bound_ms = dgw_stats_latency_bound_ms;
  h->stats_handler_bound_us = dgw_stats_handler_bound_us;
  h->gateway_pause = host_gateway_pause;
  h->gateway_release = host_gateway_release;
  h->gateway_paused = host_gateway_paused;
  h->gateway_send_json_cb = dgw_gateway_send_json_cb;
  h->update_presence_args = dgw_gateway_update_presence_args;
  h->update_voice_state_args = dgw_gateway_update_voice_state_args;
  h->request_members_args = dgw_gateway_request_members_args;
  h->request_soundboard_sounds_args =
      dgw_gateway_request_soundboard_sounds_args;
  h->request_channel_info_args = dgw_gateway_request_channel_info_args;
  h->cluster_name = host_cluster_name;
  h->cluster_lease = host_cluster_lease;
  h->gateway_session_id = dgw_gateway_session_id;
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
  for (size_t i = 0; i < p->nevents; i++)
    free(p->events[i]);
  free(p->events);
  free(p->holds); /* the holds end with the client */
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

struct plugin *plugin_load(const struct plugins_host *host, const char *name,
                           const char *config, char *why, size_t why_size,
                           int *err) {
  char path[PLUGIN_PATH_MAX];
  struct plugin *p = NULL;
  struct json_object *parsed;
  dgw_plugin_describe_fn describe;
  void *sym;
  int perr = DGW_OK;
  int rv;

  if (host == NULL || name == NULL || *name == '\0') {
    dgw_set_why(why, why_size, "no plugin name or path given");
    rv = DGW_ERR_INVALID_ARGUMENT;
    goto out;
  }
  if (config == NULL)
    config = "{}";
  parsed = dgw_payload_parse(config, strlen(config), &perr);
  json_object_put(parsed);
  if (perr != DGW_OK) {
    dgw_set_why(why, why_size, "%s: config is not valid JSON", name);
    rv = DGW_ERR_PLUGIN;
    goto out;
  }
  rv = plugins_resolve(name, getenv(DGW_PLUGIN_PATH_ENV), DGW_PLUGIN_DIR, path,
                       sizeof(path), why, why_size);
  if (rv != DGW_OK)
    goto out;
  if ((p = calloc(1, sizeof(*p))) == NULL)
    goto nomem;
  p->config = strdup(config);
  p->path = strdup(path);
  if (p->config == NULL || p->path == NULL)
    goto nomem;
  p->owner = host;

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
    if ((rv = plugin_want(p, p->desc->events[i])) != DGW_OK) {
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
  return p;

nomem:
  dgw_set_why(why, why_size, "%s: out of memory", path);
  rv = DGW_ERR_NOMEM;
fail:
  if (p != NULL)
    plugin_destroy(p);
out:
  if (err != NULL)
    *err = rv;
  return NULL;
}

void plugin_unload(struct plugin *p) {
  if (p == NULL)
    return;
  p->unloading = 1;
  if (p->desc->fini != NULL)
    p->desc->fini(p->state);
  plugin_destroy(p);
}

/* ------------------------------------------------------------ a plugin */

const char *const *plugin_events(const struct plugin *p, size_t *n, int *all) {
  *n = p->nevents;
  *all = p->wildcard;
  return (const char *const *)p->events;
}

void plugin_dispatch(struct plugin *p, struct dgw_gateway *gw,
                     const struct dgw_event *ev) {
  p->desc->on_dispatch(p->state, gw, ev);
}

void plugin_lifecycle(struct plugin *p, struct dgw_gateway *gw,
                      enum dgw_lifecycle what,
                      const struct dgw_disconnect *info) {
  if (p->desc->on_lifecycle != NULL)
    p->desc->on_lifecycle(p->state, gw, what, info);
}

void plugin_describe(const struct plugin *p, struct dgw_plugin_info *info) {
  memset(info, 0, sizeof(*info));
  info->name = p->desc->name;
  info->version = p->desc->version != NULL ? p->desc->version : "";
  info->description = p->desc->description != NULL ? p->desc->description : "";
  info->path = p->path;
  info->abi = p->desc->abi;
  info->all_events = p->wildcard;
  info->events = (const char *const *)p->events;
  info->nevents = p->nevents;
}
