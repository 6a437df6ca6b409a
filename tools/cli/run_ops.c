/*
 * The operator's side of `dgw run`: why a shard cannot connect, how long
 * the bot has been offline, when to give up, and what systemd is told.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#ifdef HAVE_SYSTEMD
#include <systemd/sd-daemon.h>
#endif

#include "cli.h"
#include "run_ops.h"

/* What we know of one shard (its dgw_gateway_user_data). */
struct shard_note {
  struct shard_note *next;
  int warned;    /* its network failure was said at warn level */
  int was_ready; /* READY once at least */
  char cause[256];
  char url[256];
};

struct run_ops {
  struct event_base *base;
  struct dgw_client *client;
  char *gateway_url;
  uint32_t give_up_after_s, reminder_s;
  void (*give_up)(void *arg);
  void *arg;
  struct event *give_up_ev, *reminder_ev, *watchdog_ev;
  struct shard_note *notes;
  uint32_t ready_once; /* shards READY once at least */
  int notified_ready;  /* READY=1 sent */
  int stopping;        /* STOPPING=1 sent */
  uint64_t offline_since_ms;
  char last_status[256];
};

static uint64_t now_ms(const struct run_ops *o) {
  struct timeval tv;

  event_base_gettimeofday_cached(o->base, &tv);
  return (uint64_t)tv.tv_sec * 1000u + (uint64_t)tv.tv_usec / 1000u;
}

int run_ops_have_systemd(void) {
#ifdef HAVE_SYSTEMD
  return 1;
#else
  return 0;
#endif
}

static void notify(const char *state) {
#ifdef HAVE_SYSTEMD
  sd_notify(0, state);
#else
  (void)state;
#endif
}

/* STATUS= with a one-line summary, when it changed. */
static void status(struct run_ops *o) {
  struct dgw_client_stats st;
  char line[256];

  memset(&st, 0, sizeof(st));
  st.size = offsetof(struct dgw_client_stats, commands_queued);
  if (dgw_client_stats(o->client, &st) != DGW_OK)
    return;
  snprintf(line, sizeof(line),
           "STATUS=%u/%u shards ready%s, %llu events, %llu reconnects",
           (unsigned)st.shards_ready, (unsigned)st.shards,
           dgw_client_is_offline(o->client) ? ", offline" : "",
           (unsigned long long)st.dispatches,
           (unsigned long long)st.reconnects);
  if (strcmp(line, o->last_status) == 0)
    return;
  snprintf(o->last_status, sizeof(o->last_status), "%s", line);
  notify(line);
}

static struct shard_note *note_of(struct run_ops *o, struct dgw_gateway *gw) {
  struct shard_note *n = dgw_gateway_user_data(gw);

  if (n != NULL)
    return n;
  if ((n = calloc(1, sizeof(*n))) == NULL)
    return NULL;
  n->next = o->notes;
  o->notes = n;
  dgw_gateway_set_user_data(gw, n);
  return n;
}

static void on_give_up(evutil_socket_t fd, short what, void *arg) {
  struct run_ops *o = arg;

  (void)fd;
  (void)what;
  cli_say(DGW_LOG_ERROR,
          "offline for %u s (give_up_after_s): giving up so that the "
          "supervisor can act",
          (unsigned)o->give_up_after_s);
  o->give_up(o->arg);
}

/* The reminder while offline: every shard's last cause. */
static void on_reminder(evutil_socket_t fd, short what, void *arg) {
  struct run_ops *o = arg;
  uint64_t for_s = (now_ms(o) - o->offline_since_ms) / 1000u;

  (void)fd;
  (void)what;
  for (struct shard_note *n = o->notes; n != NULL; n = n->next)
    if (n->warned)
      cli_say(DGW_LOG_WARN, "still offline after %llu s: cannot reach %s: %s",
              (unsigned long long)for_s, n->url, n->cause);
  status(o);
}

static void on_watchdog(evutil_socket_t fd, short what, void *arg) {
  struct run_ops *o = arg;

  (void)fd;
  (void)what;
  notify("WATCHDOG=1");
  status(o);
}

struct run_ops *run_ops_new(struct event_base *base, struct dgw_client *client,
                            const char *gateway_url, uint32_t give_up_after_s,
                            uint32_t reminder_s, void (*give_up)(void *arg),
                            void *arg) {
  struct run_ops *o = calloc(1, sizeof(*o));

  if (o == NULL)
    return NULL;
  o->base = base;
  o->client = client;
  o->give_up_after_s = give_up_after_s;
  o->reminder_s = reminder_s > 0 ? reminder_s : RUN_OPS_REMINDER_S;
  o->give_up = give_up;
  o->arg = arg;
  if (gateway_url != NULL && (o->gateway_url = strdup(gateway_url)) == NULL)
    goto fail;
  o->give_up_ev = evtimer_new(base, on_give_up, o);
  o->reminder_ev = event_new(base, -1, EV_PERSIST, on_reminder, o);
  if (o->give_up_ev == NULL || o->reminder_ev == NULL)
    goto fail;
#ifdef HAVE_SYSTEMD
  {
    uint64_t usec = 0;

    /* WatchdogSec=: a beat from the loop at half the period, so a stuck
     * loop is what systemd sees. */
    if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
      struct timeval tv = {(time_t)(usec / 2 / 1000000u),
                           (suseconds_t)(usec / 2 % 1000000u)};

      o->watchdog_ev = event_new(base, -1, EV_PERSIST, on_watchdog, o);
      if (o->watchdog_ev == NULL || event_add(o->watchdog_ev, &tv) != 0)
        goto fail;
      notify("WATCHDOG=1");
    }
  }
#endif
  status(o);
  return o;
fail:
  run_ops_free(o);
  return NULL;
}

void run_ops_disconnect(struct run_ops *o, struct dgw_gateway *gw,
                        const struct dgw_disconnect *info) {
  struct shard_note *n;
  const char *url;

  if (o == NULL)
    return;
  status(o);
  if (info->error == DGW_ERR_CLOSED || (n = note_of(o, gw)) == NULL)
    return; /* the gateway closed with a code: the library said why */
  url = info->will_resume && dgw_gateway_resume_url(gw) != NULL
            ? dgw_gateway_resume_url(gw)
        : o->gateway_url != NULL ? o->gateway_url
                                 : "the gateway (from GET /gateway/bot)";
  snprintf(n->url, sizeof(n->url), "%s", url);
  snprintf(n->cause, sizeof(n->cause), "%s",
           info->reason != NULL && *info->reason != '\0'
               ? info->reason
               : dgw_strerror(info->error));
  if (n->warned)
    return; /* said once; the reminder says it again while offline */
  n->warned = 1;
  cli_say(DGW_LOG_WARN, "shard %u: cannot reach %s: %s (retrying in %u ms)",
          dgw_gateway_shard_id(gw), n->url, n->cause,
          (unsigned)info->retry_in_ms);
}

void run_ops_ready(struct run_ops *o, struct dgw_gateway *gw) {
  struct shard_note *n;

  if (o == NULL || (n = note_of(o, gw)) == NULL)
    return;
  n->warned = 0;
  if (!n->was_ready) {
    n->was_ready = 1;
    o->ready_once++;
  }
  if (!o->notified_ready &&
      o->ready_once >= dgw_client_shard_count(o->client)) {
    o->notified_ready = 1;
    notify("READY=1");
  }
  status(o);
}

void run_ops_network(struct run_ops *o, int online) {
  if (o == NULL)
    return;
  if (online) {
    evtimer_del(o->give_up_ev);
    event_del(o->reminder_ev);
    for (struct shard_note *n = o->notes; n != NULL; n = n->next)
      n->warned = 0;
  } else {
    struct timeval remind = {(time_t)o->reminder_s, 0};

    o->offline_since_ms = now_ms(o);
    event_add(o->reminder_ev, &remind);
    if (o->give_up_after_s > 0) {
      struct timeval tv = {(time_t)o->give_up_after_s, 0};

      evtimer_add(o->give_up_ev, &tv);
    }
  }
  status(o);
}

void run_ops_stopping(struct run_ops *o) {
  if (o == NULL || o->stopping)
    return;
  o->stopping = 1;
  notify("STOPPING=1");
}

void run_ops_free(struct run_ops *o) {
  if (o == NULL)
    return;
  if (o->give_up_ev != NULL)
    event_free(o->give_up_ev);
  if (o->reminder_ev != NULL)
    event_free(o->reminder_ev);
  if (o->watchdog_ev != NULL)
    event_free(o->watchdog_ev);
  while (o->notes != NULL) {
    struct shard_note *n = o->notes;

    o->notes = n->next;
    free(n);
  }
  free(o->gateway_url);
  free(o);
}
