/*
 * dgw mock: the mock Discord gateway as a standalone server, for developing
 * bots and plugins offline, for replaying a recorded capture, and for tests
 * driven from scripts.
 *
 * Prints "dgw mock listening on ws[s]://HOST:PORT" on stdout once ready,
 * logs on stderr, stops cleanly on SIGINT/SIGTERM.  Exit status: 0 after a
 * clean stop, 1 on a runtime error, 2 on a usage error.
 */
#include "config.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include "cli.h"
#include "mock.h"

struct options {
  struct dgw_mock_config cfg;
  const char *script;
  int guild; /* -1: default (on without --script), 0 off, 1 on */
  int raw_script;
  int verbose;
};

static void usage(FILE *out) {
  fputs(
      "usage: dgw mock [OPTION]...\n"
      "Serve a mock Discord gateway (API v10, JSON, optional zlib-stream or\n"
      "zstd-stream).\n"
      "\n"
      "  --host H                  address to listen on (default 127.0.0.1)\n"
      "  --port P                  port to listen on; 0 picks a free one\n"
      "                            (default 0)\n"
      "  --tls-cert F              PEM certificate chain: serve wss://\n"
      "  --tls-key F               PEM private key for --tls-cert\n"
      "  --token T                 token IDENTIFY must carry (default: any\n"
      "                            non-empty token); a wrong one gets 4004\n"
      "  --heartbeat-interval MS   heartbeat_interval sent in HELLO\n"
      "                            (default 41250)\n"
      "  --dispatch-interval MS    gap between scripted dispatches after\n"
      "                            READY (default 0: all at once)\n"
      "  --split N                 split each compressed payload into\n"
      "                            WebSocket messages of at most N bytes\n"
      "  --fragment N              send each message as frames of at most\n"
      "                            N payload bytes (continuation frames)\n"
      "  --script FILE.jsonl       dispatches sent after READY, one JSON\n"
      "                            object {\"t\": NAME, \"d\": VALUE} a line\n"
      "                            (what `dgw record` and the log plugin\n"
      "                            write; their READY and RESUMED lines are\n"
      "                            skipped, the mock makes its own);\n"
      "                            each GUILD_CREATE's d.id is listed in\n"
      "                            READY as an unavailable guild; a resumed\n"
      "                            session goes on where it stopped\n"
      "  --replay FILE.jsonl       the same as --script\n"
      "  --history N               dispatches each session keeps for RESUME\n"
      "                            replay (default 1024); a RESUME from\n"
      "                            before them gets op 9 d:false\n"
      "  --session-ttl MS          how long a session stays resumable after\n"
      "                            its connection ended (default 180000)\n"
      "  --replay-overlap N        on RESUME, also re-send the last N\n"
      "                            dispatches the client already has\n"
      "  --no-ack                  never answer heartbeats with op 11\n"
      "                            (zombie connections)\n"
      "  --hello-delay MS          send HELLO MS after the upgrade\n"
      "  --reconnect-before-hello  send op 7 instead of HELLO on the first\n"
      "                            connection\n"
      "  --members N               synthetic members of every guild for\n"
      "                            op 8 (default 2500): member i has id\n"
      "                            2000000000000000000+i, username user<i>\n"
      "  --chunk-size N            most members per GUILD_MEMBERS_CHUNK\n"
      "                            (default 1000)\n"
      "  --member-rate MS          least time between two all-members\n"
      "                            requests for one guild on a session;\n"
      "                            sooner ones get RATE_LIMITED\n"
      "                            (default 30000)\n"
      "  --voice-server-first      answer op 4 with VOICE_SERVER_UPDATE\n"
      "                            before VOICE_STATE_UPDATE\n"
      "  --rate-budget N           client payloads allowed per rate window\n"
      "                            on a connection; one more closes 4008\n"
      "                            (default 120)\n"
      "  --rate-window MS          length of the sliding rate window\n"
      "                            (default 60000)\n"
      "  --no-rate-limit           never close 4008\n"
      "  --rate-limits             enforce Discord's REST rate limits\n"
      "                            (POST /channels/{id}/messages 5 per 5 s,\n"
      "                            other routes 50/s, 50/s in all): 429\n"
      "                            over them (default: never enforced)\n"
      "  --shards N                what GET /gateway/bot recommends\n"
      "                            (default 1)\n"
      "  --max-concurrency N       its session_start_limit.max_concurrency\n"
      "                            (default 1)\n"
      "  --privileged LIST         privileged intents the app has enabled:\n"
      "                            GUILD_MEMBERS, GUILD_PRESENCES,\n"
      "                            MESSAGE_CONTENT separated by commas, or\n"
      "                            none (default: all three); an IDENTIFY\n"
      "                            asking for another one gets 4014\n"
      "  --raw-script              send scripted events as they are (by\n"
      "                            default a MESSAGE_CREATE, MESSAGE_UPDATE\n"
      "                            or GUILD_CREATE gets the fields Discord\n"
      "                            always sends that its d lacks)\n"
      "  --guild, --no-guild       serve (or not) the built-in guild: in\n"
      "                            READY and as GUILD_CREATE after it\n"
      "                            (default: on without --script)\n"
      "  --verbose                 log every connection and payload\n"
      "  --help                    show this help and exit\n"
      "\n"
      "Clients connect to ws[s]://HOST:PORT/?v=10&encoding=json and may add\n"
      "&compress=zlib-stream (or zstd-stream).  Plain HTTP on the same port\n"
      "is Discord's REST (http[s]://HOST:PORT/api/v10: users/@me,\n"
      "gateway/bot, messages,\n"
      "commands, interaction callbacks...) and a control API under /_mock/\n"
      "for test suites (docs/mock.md).  Once listening, one line\n"
      "\"dgw mock listening on ws[s]://HOST:PORT\" is printed on stdout;\n"
      "logs go to stderr.  SIGINT or SIGTERM stops the server.\n"
      "\n"
      "Exit status: 0 after a clean stop, 1 on a runtime error (cannot\n"
      "listen, unreadable certificate or script), 2 on a usage error.\n",
      out);
}

static void log_stderr(enum dgw_log_level level, const char *message,
                       void *user_data) {
  const int *verbose = user_data;

  if (level == DGW_LOG_DEBUG && !*verbose)
    return;
  fprintf(stderr, "dgw mock: %s: %s\n", dgw_log_level_name(level), message);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  (void)sig;
  (void)what;
  event_base_loopbreak(arg);
}

/* --privileged: the privileged intents named in `text` ("none": not
 * one) are enabled, *denied gets the others.  Returns 0, or -1 after
 * printing why. */
static int parse_privileged(const char *text, uint32_t *denied) {
  uint64_t on = 0;
  char why[160];

  if (strcmp(text, "none") != 0 &&
      dgw_intents_parse(text, &on, why, sizeof why) != DGW_OK) {
    fprintf(stderr, "dgw mock: --privileged: %s\n", why);
    return -1;
  }
  if ((on & ~(uint64_t)DGW_INTENTS_PRIVILEGED) != 0) {
    fprintf(stderr,
            "dgw mock: --privileged takes GUILD_MEMBERS, GUILD_PRESENCES, "
            "MESSAGE_CONTENT or none, not '%s'\n",
            text);
    return -1;
  }
  *denied = (uint32_t)(DGW_INTENTS_PRIVILEGED & ~on);
  return 0;
}

/* Returns 0, or CLI_EXIT_USAGE after printing why. */
static int parse_options(int argc, char **argv, struct options *opt) {
  enum {
    OPT_HOST = 256,
    OPT_PORT,
    OPT_CERT,
    OPT_KEY,
    OPT_TOKEN,
    OPT_HEARTBEAT,
    OPT_DISPATCH,
    OPT_SPLIT,
    OPT_FRAGMENT,
    OPT_SCRIPT,
    OPT_REPLAY,
    OPT_HISTORY,
    OPT_SESSION_TTL,
    OPT_REPLAY_OVERLAP,
    OPT_NO_ACK,
    OPT_HELLO_DELAY,
    OPT_RECONNECT_BEFORE_HELLO,
    OPT_MEMBERS,
    OPT_CHUNK_SIZE,
    OPT_MEMBER_RATE,
    OPT_VOICE_SERVER_FIRST,
    OPT_RATE_BUDGET,
    OPT_RATE_WINDOW,
    OPT_NO_RATE_LIMIT,
    OPT_RATE_LIMITS,
    OPT_SHARDS,
    OPT_MAX_CONCURRENCY,
    OPT_PRIVILEGED,
    OPT_RAW_SCRIPT,
    OPT_GUILD,
    OPT_NO_GUILD,
    OPT_VERBOSE,
    OPT_HELP
  };
  static const struct option longopts[] = {
      {"host", required_argument, NULL, OPT_HOST},
      {"port", required_argument, NULL, OPT_PORT},
      {"tls-cert", required_argument, NULL, OPT_CERT},
      {"tls-key", required_argument, NULL, OPT_KEY},
      {"token", required_argument, NULL, OPT_TOKEN},
      {"heartbeat-interval", required_argument, NULL, OPT_HEARTBEAT},
      {"dispatch-interval", required_argument, NULL, OPT_DISPATCH},
      {"split", required_argument, NULL, OPT_SPLIT},
      {"fragment", required_argument, NULL, OPT_FRAGMENT},
      {"script", required_argument, NULL, OPT_SCRIPT},
      {"replay", required_argument, NULL, OPT_REPLAY},
      {"history", required_argument, NULL, OPT_HISTORY},
      {"session-ttl", required_argument, NULL, OPT_SESSION_TTL},
      {"replay-overlap", required_argument, NULL, OPT_REPLAY_OVERLAP},
      {"no-ack", no_argument, NULL, OPT_NO_ACK},
      {"hello-delay", required_argument, NULL, OPT_HELLO_DELAY},
      {"reconnect-before-hello", no_argument, NULL, OPT_RECONNECT_BEFORE_HELLO},
      {"members", required_argument, NULL, OPT_MEMBERS},
      {"chunk-size", required_argument, NULL, OPT_CHUNK_SIZE},
      {"member-rate", required_argument, NULL, OPT_MEMBER_RATE},
      {"voice-server-first", no_argument, NULL, OPT_VOICE_SERVER_FIRST},
      {"rate-budget", required_argument, NULL, OPT_RATE_BUDGET},
      {"rate-window", required_argument, NULL, OPT_RATE_WINDOW},
      {"no-rate-limit", no_argument, NULL, OPT_NO_RATE_LIMIT},
      {"rate-limits", no_argument, NULL, OPT_RATE_LIMITS},
      {"shards", required_argument, NULL, OPT_SHARDS},
      {"max-concurrency", required_argument, NULL, OPT_MAX_CONCURRENCY},
      {"privileged", required_argument, NULL, OPT_PRIVILEGED},
      {"raw-script", no_argument, NULL, OPT_RAW_SCRIPT},
      {"guild", no_argument, NULL, OPT_GUILD},
      {"no-guild", no_argument, NULL, OPT_NO_GUILD},
      {"verbose", no_argument, NULL, OPT_VERBOSE},
      {"help", no_argument, NULL, OPT_HELP},
      {NULL, 0, NULL, 0}};
  unsigned long long n;
  int c;

  while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
    switch (c) {
    case OPT_HOST:
      opt->cfg.host = optarg;
      break;
    case OPT_PORT:
      if (cli_parse_number(optarg, 65535, &n) != 0)
        goto bad_number;
      opt->cfg.port = (uint16_t)n;
      break;
    case OPT_CERT:
      opt->cfg.cert_file = optarg;
      break;
    case OPT_KEY:
      opt->cfg.key_file = optarg;
      break;
    case OPT_TOKEN:
      if (optarg[0] == '\0') {
        fprintf(stderr, "dgw mock: --token must not be empty\n");
        return CLI_EXIT_USAGE;
      }
      opt->cfg.token = optarg;
      break;
    case OPT_HEARTBEAT:
      if (cli_parse_number(optarg, UINT32_MAX, &n) != 0 || n == 0)
        goto bad_number;
      opt->cfg.heartbeat_interval_ms = (uint32_t)n;
      break;
    case OPT_DISPATCH:
      if (cli_parse_number(optarg, UINT32_MAX, &n) != 0)
        goto bad_number;
      opt->cfg.dispatch_interval_ms = (uint32_t)n;
      break;
    case OPT_SPLIT:
      if (cli_parse_number(optarg, SIZE_MAX, &n) != 0)
        goto bad_number;
      opt->cfg.split_size = (size_t)n;
      break;
    case OPT_FRAGMENT:
      if (cli_parse_number(optarg, SIZE_MAX, &n) != 0)
        goto bad_number;
      opt->cfg.fragment_size = (size_t)n;
      break;
    case OPT_SCRIPT:
    case OPT_REPLAY:
      opt->script = optarg;
      break;
    case OPT_HISTORY:
      if (cli_parse_number(optarg, SIZE_MAX, &n) != 0 || n == 0)
        goto bad_number;
      opt->cfg.history_max = (size_t)n;
      break;
    case OPT_SESSION_TTL:
      if (cli_parse_number(optarg, UINT32_MAX, &n) != 0 || n == 0)
        goto bad_number;
      opt->cfg.session_ttl_ms = (uint32_t)n;
      break;
    case OPT_REPLAY_OVERLAP:
      if (cli_parse_number(optarg, UINT32_MAX, &n) != 0)
        goto bad_number;
      opt->cfg.replay_overlap = (uint32_t)n;
      break;
    case OPT_NO_ACK:
      opt->cfg.no_ack = 1;
      break;
    case OPT_HELLO_DELAY:
      if (cli_parse_number(optarg, UINT32_MAX, &n) != 0)
        goto bad_number;
      opt->cfg.hello_delay_ms = (uint32_t)n;
      break;
    case OPT_RECONNECT_BEFORE_HELLO:
      opt->cfg.reconnect_before_hello = 1;
      break;
    /* In the config 0 means the default, so these take 1 and up. */
    case OPT_MEMBERS:
      if (cli_parse_number(optarg, UINT32_MAX, &n) != 0 || n == 0)
        goto bad_number;
      opt->cfg.members_per_guild = (uint32_t)n;
      break;
    case OPT_CHUNK_SIZE:
      if (cli_parse_number(optarg, UINT32_MAX, &n) != 0 || n == 0)
        goto bad_number;
      opt->cfg.chunk_size = (uint32_t)n;
      break;
    case OPT_MEMBER_RATE:
      if (cli_parse_number(optarg, UINT32_MAX, &n) != 0 || n == 0)
        goto bad_number;
      opt->cfg.member_rate_ms = (uint32_t)n;
      break;
    case OPT_VOICE_SERVER_FIRST:
      opt->cfg.voice_server_first = 1;
      break;
    case OPT_RATE_BUDGET:
      if (cli_parse_number(optarg, UINT32_MAX, &n) != 0 || n == 0)
        goto bad_number;
      opt->cfg.rate_budget = (uint32_t)n;
      break;
    case OPT_RATE_WINDOW:
      if (cli_parse_number(optarg, UINT32_MAX, &n) != 0 || n == 0)
        goto bad_number;
      opt->cfg.rate_window_ms = (uint32_t)n;
      break;
    case OPT_NO_RATE_LIMIT:
      opt->cfg.no_rate_limit = 1;
      break;
    case OPT_RATE_LIMITS:
      opt->cfg.rest_rate_limits = 1;
      break;
    case OPT_SHARDS:
      if (cli_parse_number(optarg, 65535, &n) != 0 || n == 0)
        goto bad_number;
      opt->cfg.rest_shards = (uint32_t)n;
      break;
    case OPT_MAX_CONCURRENCY:
      if (cli_parse_number(optarg, 1024, &n) != 0 || n == 0)
        goto bad_number;
      opt->cfg.rest_max_concurrency = (uint32_t)n;
      break;
    case OPT_PRIVILEGED:
      if (parse_privileged(optarg, &opt->cfg.privileged_denied) != 0)
        return CLI_EXIT_USAGE;
      break;
    case OPT_RAW_SCRIPT:
      opt->raw_script = 1;
      break;
    case OPT_GUILD:
    case OPT_NO_GUILD:
      opt->guild = c == OPT_GUILD;
      break;
    case OPT_VERBOSE:
      opt->verbose = 1;
      break;
    case OPT_HELP:
      usage(stdout);
      exit(EXIT_SUCCESS);
    default:
      fprintf(stderr, "Try 'dgw mock --help'.\n");
      return CLI_EXIT_USAGE;
    }
    continue;
  bad_number:
    fprintf(stderr, "dgw mock: bad value '%s' for --%s\n", optarg,
            longopts[c - OPT_HOST].name);
    return CLI_EXIT_USAGE;
  }
  if (optind < argc) {
    fprintf(stderr, "dgw mock: unexpected argument '%s'\n", argv[optind]);
    return CLI_EXIT_USAGE;
  }
  if ((opt->cfg.cert_file == NULL) != (opt->cfg.key_file == NULL)) {
    fprintf(stderr, "dgw mock: --tls-cert and --tls-key go together\n");
    return CLI_EXIT_USAGE;
  }
  return 0;
}

int cmd_mock(int argc, char **argv) {
  struct options opt;
  struct event_base *base = NULL;
  struct event *sigint = NULL, *sigterm = NULL;
  struct dgw_mock *mock = NULL;
  const char *host;
  int rv, err = 0, status = CLI_EXIT_RUNTIME;

  memset(&opt, 0, sizeof opt);
  opt.guild = -1;
  rv = parse_options(argc, argv, &opt);
  if (rv != 0)
    return rv;
  opt.cfg.builtin_guild = opt.guild >= 0 ? opt.guild : opt.script == NULL;
  opt.cfg.complete_payloads = !opt.raw_script;
  opt.cfg.log = log_stderr;
  opt.cfg.log_user_data = &opt.verbose;

  /* A client vanishing while we write must not kill the server. */
  signal(SIGPIPE, SIG_IGN);

  base = event_base_new();
  if (base == NULL) {
    fprintf(stderr, "dgw mock: cannot create the event loop\n");
    goto out;
  }
  mock = dgw_mock_new(base, &opt.cfg, &err);
  if (mock == NULL) {
    fprintf(stderr, "dgw mock: cannot start: %s\n",
            err == DGW_ERR_TLS       ? "bad TLS certificate or key"
            : err == DGW_ERR_CONNECT ? "cannot listen on that address"
                                     : dgw_strerror(err));
    goto out;
  }
  if (opt.script != NULL &&
      (rv = dgw_mock_load_script(mock, opt.script)) != DGW_OK) {
    fprintf(stderr, "dgw mock: cannot load script %s: %s\n", opt.script,
            rv == DGW_ERR_JSON ? "bad JSON line" : "cannot read it");
    goto out;
  }
  cli_ignore_stop_signals(); /* what libevent restores at the free */
  sigint = evsignal_new(base, SIGINT, on_signal, base);
  sigterm = evsignal_new(base, SIGTERM, on_signal, base);
  if (sigint == NULL || sigterm == NULL || evsignal_add(sigint, NULL) != 0 ||
      evsignal_add(sigterm, NULL) != 0) {
    fprintf(stderr, "dgw mock: cannot install signal handlers\n");
    goto out;
  }

  host = opt.cfg.host != NULL ? opt.cfg.host : "127.0.0.1";
  printf("dgw mock listening on %s://%s%s%s:%u\n",
         opt.cfg.cert_file != NULL ? "wss" : "ws",
         strchr(host, ':') != NULL ? "[" : "", host,
         strchr(host, ':') != NULL ? "]" : "", (unsigned)dgw_mock_port(mock));
  fflush(stdout);

  if (event_base_dispatch(base) < 0) {
    fprintf(stderr, "dgw mock: event loop failed\n");
    goto out;
  }
  if (opt.verbose)
    fprintf(stderr, "dgw mock: stopping\n");
  status = EXIT_SUCCESS;

out:
  if (sigint != NULL)
    event_free(sigint);
  if (sigterm != NULL)
    event_free(sigterm);
  dgw_mock_free(mock);
  if (base != NULL)
    event_base_free(base);
  return status;
}
