/*
 * The README's "bot in thirty lines", as a file the test suite builds and
 * runs against `dgw mock` (tests/test_mock_examples.sh), with what a real
 * bot adds: a log callback, and on_client_fatal / on_fatal so that a
 * missing or refused token is one clear message and the program ends.
 *
 *   DISCORD_TOKEN=... ./bot
 *   DISCORD_TOKEN=test DGW_API_URL=http://127.0.0.1:7878/api/v10 ./bot
 *
 * DGW_API_URL (optional) points GET /gateway/bot at another REST base,
 * such as a `dgw mock`.  Exit status: 0 never (it runs until killed), 1
 * when the client cannot run (refused token...), 2 without a token.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>

#include <event2/event.h>

#include <dgw/dgw.h>

static void on_event(struct dgw_gateway *gw, const struct dgw_event *ev,
                     void *ud) {
  size_t len;
  const char *d = dgw_event_data(ev, &len); /* raw JSON of "d", no parse */

  (void)gw;
  (void)ud;
  printf("shard %u s=%lld %s %.*s\n", dgw_event_shard(ev),
         (long long)dgw_event_seq(ev), dgw_event_name(ev), (int)len, d);
  fflush(stdout);
}

static void on_log(enum dgw_log_level level, const char *message, void *ud) {
  (void)ud;
  fprintf(stderr, "bot: %s: %s\n", dgw_log_level_name(level), message);
}

/* The client cannot run at all (a refused token on GET /gateway/bot...). */
static void on_client_fatal(struct dgw_client *client, int error,
                            const char *why, void *ud) {
  (void)client;
  fprintf(stderr, "bot: cannot run: %s (%s)\n", why, dgw_strerror(error));
  event_base_loopexit(ud, NULL); /* the loop ends after this round */
}

/* A shard stopped for good (4004 a refused token, 4014 intents...). */
static void on_fatal(struct dgw_gateway *gw, uint16_t code, const char *meaning,
                     void *ud) {
  (void)gw;
  fprintf(stderr, "bot: the gateway refused us: %u %s\n", (unsigned)code,
          meaning);
  event_base_loopexit(ud, NULL);
}

int main(void) {
  const char *token = getenv("DISCORD_TOKEN"), *api = getenv("DGW_API_URL");
  struct event_base *base;
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  struct dgw_client *client;
  int err = DGW_OK;

  if (token == NULL || token[0] == '\0') {
    fprintf(stderr, "bot: set DISCORD_TOKEN to the bot's token\n");
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* as in any libevent network program */
  base = event_base_new();
  opt = dgw_options_new();
  cb = dgw_callbacks_new();
  if (base == NULL || opt == NULL || cb == NULL)
    return fprintf(stderr, "bot: out of memory\n"), 1;
  dgw_options_set_token(opt, token);
  dgw_options_set_intents(opt, DGW_INTENT_GUILDS | DGW_INTENT_GUILD_MESSAGES);
  dgw_options_set_shards_auto(opt); /* as many as Discord recommends */
  dgw_options_set_log(opt, on_log, NULL, DGW_LOG_INFO);
  if (api != NULL && dgw_options_set_api_url(opt, api) != DGW_OK)
    return fprintf(stderr, "bot: bad DGW_API_URL %s\n", api), 2;
  dgw_callbacks_set_on_dispatch(cb, on_event);
  dgw_callbacks_set_on_client_fatal(cb, on_client_fatal);
  dgw_callbacks_set_on_fatal(cb, on_fatal);
  client = dgw_client_new(base, opt, cb, base, &err);
  if (client == NULL || dgw_client_start(client) != DGW_OK) {
    fprintf(stderr, "bot: cannot start: %s\n", dgw_strerror(err));
    return 1;
  }
  event_base_dispatch(base); /* heartbeats, resumes, backoff: all inside */
  /* Only a fatal error ends the loop. */
  dgw_client_free(client);
  dgw_callbacks_free(cb);
  dgw_options_free(opt);
  event_base_free(base);
  return 1;
}
