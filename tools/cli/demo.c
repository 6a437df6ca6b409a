/*
 * dgw demo: the library end to end, with no token and no network.
 *
 * Starts the mock gateway in this process on a free loopback port with a
 * seeded stream of realistic events, connects a dgw client to it with
 * zlib-stream and the log and stats plugins, prints each event as it
 * arrives, forces a reconnect partway (while more events happen on the
 * gateway), shows the session resume with the missed events replayed, and
 * ends with a summary that checks every sequence number arrived exactly
 * once, in the callbacks and in the log plugin's file.  Exits by itself;
 * Ctrl-C stops it early.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "cli.h"
#include "mock.h"

#define DEFAULT_EVENTS 30
#define MAX_EVENTS 100000
#define MISSED 3 /* events that happen on the gateway while we are away */

struct demo {
  struct event_base *base;
  struct dgw_mock *mock;
  struct dgw_client *client;
  enum dgw_log_level level;
  int total;           /* scripted events */
  int reconnect_after; /* force a reconnect after this many events */
  int64_t last_seq;
  int in_order; /* every seq was last + 1 */
  int events;   /* dispatches other than READY/RESUMED */
  int reconnects;
  int resumes;
  int done;
  int interrupted;
  int quiet;
  enum dgw_log_level mock_level;
  double latency_ms;
  char log_path[4096];
  int keep_log; /* --log FILE: the file stays */
};

/* A small deterministic generator, so every run shows the same story. */
static uint32_t next_rand(uint32_t *state) {
  *state = *state * 1664525u + 1013904223u;
  return *state >> 8;
}

static const char *const users[] = {"nelly", "ash", "kai", "mira", "ole"};
static const char *const words[] = {
    "hello", "gateway", "anyone", "around?", "the", "build",  "is",   "green",
    "ship",  "it",      "lunch",  "at",      "one", "resume", "works"};

/* Appends one event of a mid-size bot's mix to the mock's script. */
static int add_event(struct dgw_mock *mock, int i, uint32_t *rng) {
  char d[512], text[160] = "";
  uint32_t r = next_rand(rng) % 100;
  unsigned u = next_rand(rng) % 5;

  if (i == 0)
    return dgw_mock_add_dispatch(
        mock, "GUILD_CREATE",
        "{\"id\":\"81384788765712384\",\"name\":\"dgw lounge\","
        "\"member_count\":5,\"unavailable\":false,\"channels\":[{\"id\":"
        "\"81384788765712385\",\"name\":\"general\",\"type\":0}]}");
  if (r < 45) {
    int n = 2 + (int)(next_rand(rng) % 5);

    for (int w = 0; w < n; w++) {
      strcat(text, words[next_rand(rng) % 15]);
      if (w + 1 < n)
        strcat(text, " ");
    }
    char id[24], author[24], *msg;
    int rv;

    snprintf(id, sizeof id, "%llu",
             1300000000000000000ULL + (unsigned long long)i);
    snprintf(author, sizeof author, "8035111022467891%u", u);
    /* The mock's own message shape (every field Discord gives). */
    msg = dgw_mock_message_json(id, "81384788765712385", "81384788765712384",
                                author, users[u], text);
    if (msg == NULL)
      return DGW_ERR_NOMEM;
    rv = dgw_mock_add_dispatch(mock, "MESSAGE_CREATE", msg);
    free(msg);
    return rv;
  }
  if (r < 75) {
    snprintf(d, sizeof(d),
             "{\"user\":{\"id\":\"8035111022467891%u\"},\"guild_id\":"
             "\"81384788765712384\",\"status\":\"%s\",\"activities\":[]}",
             u, (r & 1) ? "online" : "idle");
    return dgw_mock_add_dispatch(mock, "PRESENCE_UPDATE", d);
  }
  if (r < 90) {
    snprintf(d, sizeof(d),
             "{\"channel_id\":\"81384788765712385\",\"guild_id\":"
             "\"81384788765712384\",\"user_id\":\"8035111022467891%u\","
             "\"timestamp\":%d}",
             u, 1764201600 + i);
    return dgw_mock_add_dispatch(mock, "TYPING_START", d);
  }
  snprintf(d, sizeof(d),
           "{\"user_id\":\"8035111022467891%u\",\"guild_id\":"
           "\"81384788765712384\",\"channel_id\":"
           "\"81384788765712385\",\"message_id\":\"%llu\",\"emoji\":"
           "{\"name\":\"\\ud83d\\udc4d\"}}",
           u, 1300000000000000000ULL + (unsigned long long)(i > 1 ? i - 1 : 1));
  return dgw_mock_add_dispatch(mock, "MESSAGE_REACTION_ADD", d);
}

static void on_ready(struct dgw_gateway *gw, void *ud) {
  struct demo *d = ud;

  if (!d->quiet)
    printf("READY      session %s\n", dgw_gateway_session_id(gw));
}

static void on_resumed(struct dgw_gateway *gw, void *ud) {
  struct demo *d = ud;

  d->resumes++;
  if (!d->quiet)
    printf("RESUMED    session %s at seq %lld: the missed events were "
           "replayed, nothing lost\n",
           dgw_gateway_session_id(gw), (long long)dgw_gateway_sequence(gw));
}

static void on_disconnect(struct dgw_gateway *gw,
                          const struct dgw_disconnect *info, void *ud) {
  struct demo *d = ud;

  (void)gw;
  d->reconnects++;
  if (!d->quiet)
    printf("--         disconnected (%s); %s in %u ms\n", info->reason,
           info->will_resume ? "resuming" : "identifying",
           (unsigned)info->retry_in_ms);
  /* The world goes on while the shard is away: the gateway keeps these
   * and replays them after RESUME. */
  for (int i = 0; i < MISSED; i++) {
    char id[24], text[64], *body;

    snprintf(id, sizeof id, "%llu",
             1390000000000000000ULL + (unsigned long long)i);
    snprintf(text, sizeof text, "said while you were away (%d)", i + 1);
    body = dgw_mock_message_json(id, "81384788765712385", "81384788765712384",
                                 "80351110224678910", users[0], text);
    if (body != NULL)
      dgw_mock_session_add_dispatch(d->mock, NULL, "MESSAGE_CREATE", body);
    free(body);
  }
}

static void on_dispatch(struct dgw_gateway *gw, const struct dgw_event *ev,
                        void *ud) {
  struct demo *d = ud;
  const char *name = dgw_event_name(ev);
  int64_t seq = dgw_event_seq(ev);
  size_t len;
  const char *data = dgw_event_data(ev, &len);

  if (seq != d->last_seq + 1)
    d->in_order = 0;
  d->last_seq = seq;
  if (strcmp(name, "READY") == 0 || strcmp(name, "RESUMED") == 0)
    return;
  d->events++;
  if (!d->quiet)
    printf("s=%-4lld    %-22s %.56s%s\n", (long long)seq, name, data,
           len > 56 ? "..." : "");
  if (d->events == d->reconnect_after) {
    if (!d->quiet)
      printf("--         heartbeat latency %.3f ms; now forcing a reconnect "
             "(as a zombied connection or op 7 would)\n",
             dgw_gateway_latency(gw));
    dgw_gateway_terminate(gw);
  }
  if (d->events == d->total + MISSED) {
    d->latency_ms = dgw_gateway_latency(gw);
    d->done = 1;
    dgw_client_stop(dgw_gateway_client(gw));
  }
}

static void on_state(struct dgw_gateway *gw, enum dgw_state from,
                     enum dgw_state to, void *ud) {
  struct demo *d = ud;

  (void)gw;
  (void)from;
  if (to == DGW_STATE_CLOSED || to == DGW_STATE_FATAL)
    event_base_loopexit(d->base, NULL);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg) {
  struct demo *d = arg;

  (void)fd;
  (void)what;
  cli_say(DGW_LOG_ERROR, "demo: timed out");
  event_base_loopexit(d->base, NULL);
}

static void on_sigint(evutil_socket_t fd, short what, void *arg) {
  struct demo *d = arg;

  (void)fd;
  (void)what;
  d->interrupted = 1;
  printf("\ninterrupted\n");
  event_base_loopexit(d->base, NULL);
}

/* Lines of the log plugin's file: each one JSON with the next seq. */
static int check_log_file(struct demo *d, int64_t *lines_out) {
  FILE *f = fopen(d->log_path, "r");
  char line[4096];
  int64_t lines = 0, last = 0;
  int ok = 1;

  if (f == NULL)
    return 0;
  while (fgets(line, sizeof(line), f) != NULL) {
    struct json_object *o = json_tokener_parse(line), *s;

    if (o == NULL || !json_object_object_get_ex(o, "seq", &s) ||
        json_object_get_int64(s) != last + 1)
      ok = 0;
    else
      last = json_object_get_int64(s);
    json_object_put(o);
    lines++;
  }
  fclose(f);
  *lines_out = lines;
  return ok && last == d->last_seq;
}

static void usage(FILE *out) {
  fputs("usage: dgw demo [--events N] [--log FILE] [--quiet]\n"
        "See dgw work with no token and no network: a mock Discord gateway\n"
        "starts in this process, a client connects to it with zlib-stream\n"
        "and the log and stats plugins, events flow, the connection is cut\n"
        "partway and the session resumes with the missed events replayed.\n"
        "The demo checks that every event arrived exactly once, and exits.\n"
        "\n"
        "  --events N   scripted events (default 30)\n"
        "  --log FILE   keep the log plugin's JSON lines in FILE (default: a\n"
        "               temporary file, removed); `dgw mock --replay FILE`\n"
        "               serves them again\n"
        "  --quiet      print only the summary\n"
        "  --help       show this help and exit\n"
        "\n"
        "The plugins are looked up as a client does: $DGW_PLUGIN_PATH, then\n"
        "the installed plugin directory (`make demo` in the source tree\n"
        "sets DGW_PLUGIN_PATH to the built ones).\n"
        "\n"
        "Exit status: 0 every event exactly once, 1 otherwise (or Ctrl-C),\n"
        "2 usage error, 3 the plugins were not found.\n",
        out);
}

static int parse_args(int argc, char **argv, struct demo *d) {
  static const struct option longopts[] = {
      {"events", required_argument, NULL, 'n'},
      {"quiet", no_argument, NULL, 'q'},
      {"log", required_argument, NULL, 'l'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  unsigned long long n;
  int c;

  while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
    switch (c) {
    case 'n':
      if (cli_parse_number(optarg, MAX_EVENTS, &n) != 0 || n < 4) {
        fprintf(stderr, "dgw demo: --events takes 4 to %d\n", MAX_EVENTS);
        return CLI_EXIT_USAGE;
      }
      d->total = (int)n;
      break;
    case 'q':
      d->quiet = 1;
      break;
    case 'l':
      if (strlen(optarg) >= sizeof(d->log_path)) {
        fprintf(stderr, "dgw demo: --log path too long\n");
        return CLI_EXIT_USAGE;
      }
      snprintf(d->log_path, sizeof(d->log_path), "%s", optarg);
      d->keep_log = 1;
      break;
    case 'h':
      usage(stdout);
      return CLI_EXIT_OK;
    default:
      usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (optind != argc) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  return -1;
}

/* Loads the log plugin (into a temporary file) and stats (every second). */
static int load_plugins(struct demo *d) {
  char why[1024], conf[4200];
  int fd;

  struct json_object *o;

  if (!d->keep_log) {
    snprintf(d->log_path, sizeof(d->log_path), "/tmp/dgw-demo-XXXXXX");
    if ((fd = mkstemp(d->log_path)) < 0) {
      cli_say(DGW_LOG_ERROR, "demo: cannot make a temporary file in /tmp");
      d->log_path[0] = '\0';
      return CLI_EXIT_RUNTIME;
    }
    close(fd);
  } else if (truncate(d->log_path, 0) != 0 && errno != ENOENT) {
    cli_say(DGW_LOG_ERROR, "demo: cannot write %s: %s", d->log_path,
            strerror(errno));
    return CLI_EXIT_RUNTIME;
  }
  o = json_object_new_object();
  json_object_object_add(o, "path", json_object_new_string(d->log_path));
  snprintf(conf, sizeof(conf), "%s",
           json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
  json_object_put(o);
  if (dgw_client_load_plugin(d->client, "log", conf, why, sizeof(why)) !=
          DGW_OK ||
      dgw_client_load_plugin(d->client, "stats", "{\"interval_ms\":1000}", why,
                             sizeof(why)) != DGW_OK) {
    cli_say(DGW_LOG_ERROR,
            "demo: %s (set DGW_PLUGIN_PATH to the directories holding log.so "
            "and stats.so, or run `make demo` in the source tree)",
            why);
    return CLI_EXIT_CONFIG;
  }
  return -1;
}

static int summarize(struct demo *d) {
  int64_t lines = 0;
  int log_ok;

  if (!d->done) {
    printf("stopped before the end: %d of %d events\n", d->events,
           d->total + MISSED);
    return CLI_EXIT_RUNTIME;
  }
  log_ok = check_log_file(d, &lines);
  printf("done: %d events, %d reconnect, %d resume, heartbeat latency "
         "%.3f ms\n",
         d->events, d->reconnects, d->resumes, d->latency_ms);
  printf("      sequence 1..%lld %s\n", (long long)d->last_seq,
         d->in_order ? "complete, each exactly once" : "BROKEN");
  printf("      the log plugin wrote %lld lines (%s)\n", (long long)lines,
         log_ok ? "the same sequence" : "NOT the same sequence");
  if (d->keep_log)
    printf("      serve them again with: dgw mock --replay %s\n", d->log_path);
  return d->in_order && log_ok && d->resumes > 0 ? CLI_EXIT_OK
                                                 : CLI_EXIT_RUNTIME;
}

int cmd_demo(int argc, char **argv) {
  struct demo d;
  struct dgw_mock_config mc;
  struct dgw_options *opt = NULL;
  struct dgw_callbacks *cb = NULL;
  struct event *timeout = NULL, *sigint = NULL;
  struct timeval limit = {60, 0};
  uint32_t rng = 20261127;
  char url[64];
  int err = 0, status = CLI_EXIT_RUNTIME, rv;

  /* Line by line even into a pipe, so the story keeps its order with the
   * log lines on stderr. */
  setvbuf(stdout, NULL, _IOLBF, 0);
  memset(&d, 0, sizeof(d));
  memset(&mc, 0, sizeof(mc));
  d.total = DEFAULT_EVENTS;
  d.in_order = 1;
  d.level = DGW_LOG_INFO;
  d.mock_level = DGW_LOG_WARN;
  if ((rv = parse_args(argc, argv, &d)) >= 0)
    return rv;
  d.reconnect_after = d.total * 2 / 5;
  if ((d.base = event_base_new()) == NULL)
    goto out;
  mc.dispatch_interval_ms = 60;
  mc.heartbeat_interval_ms = 250;
  mc.log = cli_log;
  mc.log_user_data = &d.mock_level;
  if ((d.mock = dgw_mock_new(d.base, &mc, &err)) == NULL) {
    cli_say(DGW_LOG_ERROR, "demo: cannot start the mock gateway: %s",
            dgw_strerror(err));
    goto out;
  }
  for (int i = 0; i < d.total; i++)
    if (add_event(d.mock, i, &rng) != DGW_OK)
      goto out;
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u",
           (unsigned)dgw_mock_port(d.mock));
  printf("dgw %s demo: a mock Discord gateway on %s (no token, no "
         "network)\n",
         dgw_version(), url);

  opt = dgw_options_new();
  cb = dgw_callbacks_new();
  if (opt == NULL || cb == NULL ||
      dgw_options_set_token(opt, "demo-token") != DGW_OK ||
      dgw_options_set_gateway_url(opt, url) != DGW_OK ||
      /* The mock sends only what these cover, as Discord does: every
       * kind of event the script holds, and the messages' text. */
      dgw_options_set_intents(opt, DGW_INTENT_GUILDS |
                                       DGW_INTENT_GUILD_MESSAGES |
                                       DGW_INTENT_GUILD_PRESENCES |
                                       DGW_INTENT_GUILD_MESSAGE_TYPING |
                                       DGW_INTENT_GUILD_MESSAGE_REACTIONS |
                                       DGW_INTENT_MESSAGE_CONTENT) != DGW_OK)
    goto out;
  dgw_options_set_log(opt, cli_log, &d.level, d.level);
  dgw_callbacks_set_on_ready(cb, on_ready);
  dgw_callbacks_set_on_resumed(cb, on_resumed);
  dgw_callbacks_set_on_disconnect(cb, on_disconnect);
  dgw_callbacks_set_on_dispatch(cb, on_dispatch);
  dgw_callbacks_set_on_state(cb, on_state);
  if ((d.client = dgw_client_new(d.base, opt, cb, &d, &err)) == NULL) {
    cli_say(DGW_LOG_ERROR, "demo: cannot make the client: %s",
            dgw_strerror(err));
    goto out;
  }
  if ((rv = load_plugins(&d)) >= 0) {
    status = rv;
    goto out;
  }
  if (dgw_client_start(d.client) != DGW_OK)
    goto out;
  timeout = evtimer_new(d.base, on_timeout, &d);
  sigint = evsignal_new(d.base, SIGINT, on_sigint, &d);
  if (timeout == NULL || sigint == NULL || evtimer_add(timeout, &limit) != 0 ||
      event_add(sigint, NULL) != 0)
    goto out;
  event_base_dispatch(d.base);
  /* The plugins' fini (the log file's last flush, stats' last report)
   * runs with the client's free. */
  dgw_client_free(d.client);
  d.client = NULL;
  status = summarize(&d);

out:
  dgw_options_free(opt);
  dgw_callbacks_free(cb);
  dgw_client_free(d.client);
  if (timeout != NULL)
    event_free(timeout);
  if (sigint != NULL)
    event_free(sigint);
  dgw_mock_free(d.mock);
  if (d.base != NULL)
    event_base_free(d.base);
  if (!d.keep_log && d.log_path[0] != '\0')
    unlink(d.log_path);
  return status;
}
