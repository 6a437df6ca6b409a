/*
 * A bot that stops cleanly on SIGINT or SIGTERM and saves its sessions, so
 * that the next start RESUMEs them (the events sent meanwhile are
 * replayed) instead of identifying again.  Run by
 * tests/test_mock_examples.sh against `dgw mock`.
 *
 *   DISCORD_TOKEN=... ./graceful-bot SESSION_FILE [GATEWAY_URL]
 *
 * With GATEWAY_URL (e.g. ws://127.0.0.1:7878 of a `dgw mock`) it runs one
 * shard there and makes no REST call; without, it asks Discord for the
 * gateway and the shard count.  On the signal it closes every shard with
 * 4000 (resumable), writes SESSION_FILE, removes its own events, and the
 * loop ends by itself.  Exit status: 0 after a clean stop with the
 * sessions saved, 1 on an error, 2 on a usage error.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include <dgw/dgw.h>

struct bot {
  struct event_base *base;
  struct dgw_client *client;
  struct event *sigint, *sigterm;
  const char *session_file;
  int saved; /* 1: written, -1: failed */
};

static void on_ready(struct dgw_gateway *gw, void *ud) {
  (void)ud;
  printf("ready: shard %u, session %s\n", dgw_gateway_shard_id(gw),
         dgw_gateway_session_id(gw));
  fflush(stdout);
}

static void on_resumed(struct dgw_gateway *gw, void *ud) {
  (void)ud;
  printf("resumed: shard %u, session %s at seq %lld\n",
         dgw_gateway_shard_id(gw), dgw_gateway_session_id(gw),
         (long long)dgw_gateway_sequence(gw));
  fflush(stdout);
}

static void on_event(struct dgw_gateway *gw, const struct dgw_event *ev,
                     void *ud) {
  (void)gw;
  (void)ud;
  printf("event: s=%lld %s\n", (long long)dgw_event_seq(ev),
         dgw_event_name(ev));
  fflush(stdout);
}

static void on_log(enum dgw_log_level level, const char *message, void *ud) {
  (void)ud;
  fprintf(stderr, "graceful-bot: %s: %s\n", dgw_log_level_name(level), message);
}

static void on_client_fatal(struct dgw_client *client, int error,
                            const char *why, void *ud) {
  struct bot *b = ud;

  (void)client;
  fprintf(stderr, "graceful-bot: cannot run: %s (%s)\n", why,
          dgw_strerror(error));
  event_base_loopbreak(b->base);
}

/* SIGINT / SIGTERM: close for a restart, save, and let the loop run dry. */
static void on_signal(evutil_socket_t sig, short what, void *arg) {
  struct bot *b = arg;
  char why[256];

  (void)what;
  printf("signal %d: stopping, saving the sessions\n", (int)sig);
  event_del(b->sigint);
  event_del(b->sigterm);
  dgw_client_stop_for_restart(b->client); /* 4000: Discord keeps them */
  if (dgw_client_save_sessions(b->client, b->session_file, why, sizeof why) ==
      DGW_OK) {
    b->saved = 1;
    printf("sessions saved to %s\n", b->session_file);
  } else {
    b->saved = -1;
    fprintf(stderr, "graceful-bot: cannot save the sessions: %s\n", why);
  }
  fflush(stdout);
}

int main(int argc, char **argv) {
  const char *token = getenv("DISCORD_TOKEN");
  struct bot b = {0};
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  uint32_t restored = 0;
  char why[256];
  int err = DGW_OK, status;

  if (argc < 2 || argc > 3) {
    fprintf(stderr, "usage: %s SESSION_FILE [GATEWAY_URL]\n", argv[0]);
    return 2;
  }
  if (token == NULL || token[0] == '\0') {
    fprintf(stderr, "graceful-bot: set DISCORD_TOKEN to the bot's token\n");
    return 2;
  }
  b.session_file = argv[1];
  signal(SIGPIPE, SIG_IGN);
  b.base = event_base_new();
  opt = dgw_options_new();
  cb = dgw_callbacks_new();
  if (b.base == NULL || opt == NULL || cb == NULL)
    return fprintf(stderr, "graceful-bot: out of memory\n"), 1;
  dgw_options_set_token(opt, token);
  dgw_options_set_intents(opt, DGW_INTENT_GUILDS | DGW_INTENT_GUILD_MESSAGES);
  dgw_options_set_log(opt, on_log, NULL, DGW_LOG_WARN);
  if (argc == 3) {
    if (dgw_options_set_gateway_url(opt, argv[2]) != DGW_OK)
      return fprintf(stderr, "graceful-bot: bad URL %s\n", argv[2]), 2;
    dgw_options_set_shards(opt, 0, 1, 1); /* with a URL: no REST at all */
  } else {
    dgw_options_set_shards_auto(opt);
  }
  dgw_callbacks_set_on_ready(cb, on_ready);
  dgw_callbacks_set_on_resumed(cb, on_resumed);
  dgw_callbacks_set_on_dispatch(cb, on_event);
  dgw_callbacks_set_on_client_fatal(cb, on_client_fatal);
  b.client = dgw_client_new(b.base, opt, cb, &b, &err);
  dgw_options_free(opt);
  dgw_callbacks_free(cb);
  if (b.client == NULL)
    return fprintf(stderr, "graceful-bot: %s\n", dgw_strerror(err)), 1;
  /* A missing file is a first start; anything else wrong with it is said. */
  if (dgw_client_restore_sessions(b.client, b.session_file, &restored, why,
                                  sizeof why) == DGW_OK)
    printf("restored %u session(s) from %s\n", (unsigned)restored,
           b.session_file);
  else
    printf("starting fresh (%s)\n", why);
  b.sigint = evsignal_new(b.base, SIGINT, on_signal, &b);
  b.sigterm = evsignal_new(b.base, SIGTERM, on_signal, &b);
  if (b.sigint == NULL || b.sigterm == NULL || evsignal_add(b.sigint, NULL) ||
      evsignal_add(b.sigterm, NULL) || dgw_client_start(b.client) != DGW_OK) {
    fprintf(stderr, "graceful-bot: cannot start\n");
    return 1;
  }
  fflush(stdout);
  event_base_dispatch(b.base); /* ends by itself after the stop */
  status = b.saved == 1 ? 0 : 1;
  printf("the loop ended (%s)\n", status == 0 ? "clean stop" : "error");
  dgw_client_free(b.client);
  event_free(b.sigint);
  event_free(b.sigterm);
  event_base_free(b.base);
  return status;
}
