/*
 * dgw run CONFIG.json: a bot from a config file, its plugins loaded, one
 * log line per lifecycle change, a graceful stop on SIGINT/SIGTERM that
 * saves the sessions for the next start when the config says where.
 *
 * dgw record CONFIG.json OUT.jsonl: the same, with every event written to
 * OUT.jsonl by the log plugin, in the script format `dgw mock --replay`
 * serves.
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>
#include <json-c/json.h>

#include "botconfig.h"
#include "cli.h"
#include "run_ops.h"

/* How long a graceful stop may take before the connections are dropped. */
#define STOP_GRACE_MS 10000

struct run {
  struct event_base *base;
  struct dgw_client *client;
  struct cli_config cfg;
  enum dgw_log_level level;
  struct event *sigint, *sigterm, *grace;
  int stopping;        /* a signal asked us to stop */
  int refused;         /* Discord refused the bot for good */
  int config_error;    /* the REST API refused the request (not the token) */
  int save_failed;     /* the sessions could not be saved */
  int gave_up;         /* offline for give_up_after_s */
  struct run_ops *ops; /* warn lines, give up, systemd (run_ops.c) */
  int lock_fd;         /* <session_file>.lock, held while we run; -1: none */
  char *lock_path;
  int status;
};

/*
 * Takes <session_file>.lock (flock, exclusive, not waiting) for the life of
 * the process, so that a second dgw run or record on the same session file
 * refuses to start instead of resuming the same session and kicking the
 * first bot off, again and again.  The lock file is removed at exit while
 * still locked; a lock taken on a file someone removed meanwhile is
 * dropped and taken again on the new one.  Returns 0, or -1 with a
 * sentence in `why`.
 */
static int lock_session_file(struct run *r, char *why, size_t why_size) {
  size_t len;

  if (r->cfg.session_file == NULL)
    return 0;
  len = strlen(r->cfg.session_file) + sizeof(".lock");
  if ((r->lock_path = malloc(len)) == NULL) {
    snprintf(why, why_size, "out of memory");
    return -1;
  }
  snprintf(r->lock_path, len, "%s.lock", r->cfg.session_file);
  for (int tries = 0; tries < 10; tries++) {
    struct stat held, now;
    int fd = open(r->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);

    if (fd < 0) {
      snprintf(why, why_size, "session_file: cannot create the lock %s: %s",
               r->lock_path, strerror(errno));
      return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
      int e = errno;

      close(fd);
      if (e == EWOULDBLOCK)
        snprintf(why, why_size,
                 "session_file: %s is in use by another dgw run or record "
                 "(it holds %s); two bots on one session would keep "
                 "resuming it from each other",
                 r->cfg.session_file, r->lock_path);
      else
        snprintf(why, why_size, "session_file: cannot lock %s: %s",
                 r->lock_path, strerror(e));
      return -1;
    }
    if (fstat(fd, &held) == 0 && stat(r->lock_path, &now) == 0 &&
        held.st_dev == now.st_dev && held.st_ino == now.st_ino) {
      r->lock_fd = fd;
      return 0;
    }
    close(fd); /* the previous holder removed it as we took it: again */
  }
  snprintf(why, why_size, "session_file: cannot lock %s: it keeps changing",
           r->lock_path);
  return -1;
}

static void unlock_session_file(struct run *r) {
  if (r->lock_fd >= 0) {
    unlink(r->lock_path); /* still locked: nobody can take the old file */
    close(r->lock_fd);
    r->lock_fd = -1;
  }
  free(r->lock_path);
  r->lock_path = NULL;
}

/* 1 when no shard will connect again: all closed or stopped for good. */
static int all_ended(struct run *r) {
  uint32_t n = dgw_client_shard_count(r->client);

  if (n == 0)
    return 0; /* "auto": the shards are not made yet */
  for (uint32_t i = 0; i < n; i++) {
    struct dgw_gateway *gw =
        dgw_client_gateway(r->client, r->cfg.shard_first + i);
    enum dgw_state s = gw != NULL ? dgw_gateway_state(gw) : DGW_STATE_CLOSED;

    if (s != DGW_STATE_CLOSED && s != DGW_STATE_FATAL)
      return 0;
  }
  return 1;
}

static void on_state(struct dgw_gateway *gw, enum dgw_state from,
                     enum dgw_state to, void *ud) {
  struct run *r = ud;

  /* The library logs every change ("shard N: A -> B") at debug itself;
   * logging it here too printed each one twice. */
  (void)from;
  if (to == DGW_STATE_CLOSED && r->level >= DGW_LOG_INFO)
    cli_say(DGW_LOG_INFO, "shard %u: closed", dgw_gateway_shard_id(gw));
  if ((to == DGW_STATE_CLOSED || to == DGW_STATE_FATAL) && all_ended(r))
    event_base_loopexit(r->base, NULL);
}

static void on_connecting(struct dgw_gateway *gw, void *ud) {
  struct run *r = ud;

  if (r->level >= DGW_LOG_INFO)
    cli_say(DGW_LOG_INFO, "shard %u: connecting", dgw_gateway_shard_id(gw));
}

/* The library logs READY, RESUMED, every disconnect (fatal ones at error
 * level) and the client going offline and online; these callbacks only
 * keep what the exit status needs. */
static void on_fatal(struct dgw_gateway *gw, uint16_t close_code,
                     const char *meaning, void *ud) {
  struct run *r = ud;

  (void)gw;
  (void)close_code;
  (void)meaning;
  r->refused = 1;
}

static void on_client_fatal(struct dgw_client *client, int error,
                            const char *why, void *ud) {
  struct run *r = ud;

  /* The library has logged `why` at error level already.  A refused token
   * is Discord refusing the bot; any other refusal (404, a redirect) means
   * api_url is wrong, and a cluster refusing this member's shards or
   * lease_ms (DGW_ERR_INVALID_ARGUMENT) means this config differs from the
   * running members': configuration errors. */
  (void)client;
  (void)why;
  if (error == DGW_ERR_AUTH)
    r->refused = 1;
  else
    r->config_error = 1;
  event_base_loopexit(r->base, NULL);
}

static void on_disconnect(struct dgw_gateway *gw,
                          const struct dgw_disconnect *info, void *ud) {
  struct run *r = ud;

  run_ops_disconnect(r->ops, gw, info);
}

static void on_ready(struct dgw_gateway *gw, void *ud) {
  struct run *r = ud;

  run_ops_ready(r->ops, gw);
}

static void on_network(struct dgw_client *client, int online, void *ud) {
  struct run *r = ud;

  (void)client;
  run_ops_network(r->ops, online);
}

/* Offline for give_up_after_s: stop, and exit 1 for the supervisor. */
static void give_up(void *arg) {
  struct run *r = arg;

  r->gave_up = 1;
  run_ops_stopping(r->ops);
  dgw_client_stop(r->client);
  event_base_loopexit(r->base, NULL);
}

static void on_grace_over(evutil_socket_t fd, short what, void *arg) {
  struct run *r = arg;

  (void)fd;
  (void)what;
  cli_say(DGW_LOG_WARN, "the shards did not close in %d ms; dropping them",
          STOP_GRACE_MS);
  event_base_loopexit(r->base, NULL);
}

static void on_signal(evutil_socket_t sig, short what, void *arg) {
  struct run *r = arg;
  struct timeval grace = {STOP_GRACE_MS / 1000, 0};

  (void)what;
  if (r->stopping) {
    cli_say(DGW_LOG_WARN, "second signal: stopping now");
    event_base_loopexit(r->base, NULL);
    return;
  }
  r->stopping = 1;
  run_ops_stopping(r->ops);
  cli_say(DGW_LOG_INFO, "%s: stopping%s", sig == SIGINT ? "SIGINT" : "SIGTERM",
          r->cfg.session_file != NULL ? " (sessions kept for the next start)"
                                      : "");
  if (dgw_client_shard_count(r->client) == 0) {
    /* Still asking Discord about the shards: nothing to close. */
    event_base_loopexit(r->base, NULL);
    return;
  }
  if (r->cfg.session_file != NULL)
    dgw_client_stop_for_restart(r->client);
  else
    dgw_client_stop(r->client);
  if (all_ended(r))
    event_base_loopexit(r->base, NULL);
  else
    evtimer_add(r->grace, &grace);
}

static void save_sessions(struct run *r) {
  char why[512];

  if (r->cfg.session_file == NULL || !r->stopping)
    return;
  if (dgw_client_save_sessions(r->client, r->cfg.session_file, why,
                               sizeof(why)) != DGW_OK) {
    /* The next start will identify: a deploy script must hear of it. */
    cli_say(DGW_LOG_ERROR, "cannot save the sessions: %s", why);
    r->save_failed = 1;
  } else
    cli_say(DGW_LOG_INFO, "sessions saved to %s", r->cfg.session_file);
}

static void restore_sessions(struct run *r) {
  char why[512];
  uint32_t n = 0;

  if (r->cfg.session_file == NULL)
    return;
  if (access(r->cfg.session_file, F_OK) != 0) {
    cli_say(DGW_LOG_INFO, "no saved sessions in %s; identifying",
            r->cfg.session_file);
    return;
  }
  if (dgw_client_restore_sessions(r->client, r->cfg.session_file, &n, why,
                                  sizeof(why)) != DGW_OK)
    cli_say(DGW_LOG_WARN, "saved sessions not used: %s", why);
  else
    cli_say(DGW_LOG_INFO, "%u saved session(s) to resume from %s", (unsigned)n,
            r->cfg.session_file);
}

static struct dgw_callbacks *make_callbacks(void) {
  struct dgw_callbacks *cb = dgw_callbacks_new();

  if (cb == NULL)
    return NULL;
  dgw_callbacks_set_on_state(cb, on_state);
  dgw_callbacks_set_on_connecting(cb, on_connecting);
  dgw_callbacks_set_on_fatal(cb, on_fatal);
  dgw_callbacks_set_on_client_fatal(cb, on_client_fatal);
  dgw_callbacks_set_on_disconnect(cb, on_disconnect);
  dgw_callbacks_set_on_ready(cb, on_ready);
  dgw_callbacks_set_on_resumed(cb, on_ready);
  dgw_callbacks_set_on_network(cb, on_network);
  return cb;
}

/* Loads `record_to`'s log plugin (when set), then the config's plugins;
 * the first refusal ends the run (plugins_strict, the default) or is
 * logged. */
static int load_plugins(struct run *r, const char *record_to,
                        const char *record_events) {
  char why[1024];

  if (record_to != NULL) {
    struct json_object *conf = json_object_new_object();
    int rv;

    json_object_object_add(conf, "path", json_object_new_string(record_to));
    if (record_events != NULL) {
      struct json_object *events = json_object_new_array();
      char *list = strdup(record_events), *save = NULL;

      for (char *e = strtok_r(list, ", ", &save); e != NULL;
           e = strtok_r(NULL, ", ", &save))
        json_object_array_add(events, json_object_new_string(e));
      free(list);
      json_object_object_add(conf, "events", events);
    }
    rv = dgw_client_load_plugin(
        r->client, "log",
        json_object_to_json_string_ext(conf, JSON_C_TO_STRING_PLAIN), why,
        sizeof(why));
    json_object_put(conf);
    if (rv != DGW_OK) {
      cli_say(DGW_LOG_ERROR, "cannot record: %s", why);
      return -1;
    }
  }
  /* "metrics": {"listen": ...}: the metrics plugin (a busy port is
   * refused by it, naming the address). */
  if (r->cfg.ops.metrics_json != NULL &&
      dgw_client_load_plugin(r->client, "metrics", r->cfg.ops.metrics_json, why,
                             sizeof(why)) != DGW_OK)
    return -1;
  /* A refusal is logged by the library ("plugin refused: ..."). */
  for (size_t i = 0; i < r->cfg.nplugins; i++)
    if (dgw_client_load_plugin(r->client, r->cfg.plugins[i].name_or_path,
                               r->cfg.plugins[i].config_json, why,
                               sizeof(why)) != DGW_OK &&
        r->cfg.plugins_strict)
      return -1;
  return 0;
}

/* The body of run and record. */
static int run_config(const char *config_path, const char *record_to,
                      const char *record_events) {
  struct run r;
  struct dgw_options *opt = NULL;
  struct dgw_callbacks *cb = NULL;
  char why[1024];
  int err = 0;

  memset(&r, 0, sizeof(r));
  r.lock_fd = -1;
  r.status = CLI_EXIT_RUNTIME;
  if (cli_config_load(config_path, &r.cfg, getenv, why, sizeof(why)) != 0) {
    cli_say(DGW_LOG_ERROR, "%s", why);
    return CLI_EXIT_CONFIG;
  }
  if (lock_session_file(&r, why, sizeof(why)) != 0) {
    cli_say(DGW_LOG_ERROR, "%s: %s", config_path, why);
    unlock_session_file(&r);
    cli_config_free(&r.cfg);
    return CLI_EXIT_CONFIG;
  }
  r.level = r.cfg.log_level;
  cli_log_json = r.cfg.ops.log_json;
  opt = dgw_options_new();
  cb = make_callbacks();
  if (opt == NULL || cb == NULL) {
    cli_say(DGW_LOG_ERROR, "out of memory");
    goto out;
  }
  if (cli_config_apply(&r.cfg, opt, why, sizeof(why)) != 0) {
    cli_say(DGW_LOG_ERROR, "%s: %s", config_path, why);
    r.status = CLI_EXIT_CONFIG;
    goto out;
  }
  dgw_options_set_log(opt, cli_log, &r.level, r.level);
  if ((r.base = event_base_new()) == NULL) {
    cli_say(DGW_LOG_ERROR, "cannot create the event loop");
    goto out;
  }
  /* At once, so that a signal during the start (plugins loading, sessions
   * read) is a graceful stop once the loop runs, not a kill. */
  cli_ignore_stop_signals(); /* what libevent restores at the free */
  r.sigint = evsignal_new(r.base, SIGINT, on_signal, &r);
  r.sigterm = evsignal_new(r.base, SIGTERM, on_signal, &r);
  r.grace = evtimer_new(r.base, on_grace_over, &r);
  if (r.sigint == NULL || r.sigterm == NULL || r.grace == NULL ||
      evsignal_add(r.sigint, NULL) != 0 || evsignal_add(r.sigterm, NULL) != 0) {
    cli_say(DGW_LOG_ERROR, "cannot install the signal handlers");
    goto out;
  }
  r.client = dgw_client_new(r.base, opt, cb, &r, &err);
  dgw_options_free(opt);
  dgw_callbacks_free(cb);
  opt = NULL;
  cb = NULL;
  if (r.client == NULL) {
    cli_say(DGW_LOG_ERROR, "cannot create the client: %s%s", dgw_strerror(err),
            err == DGW_ERR_TLS ? " (is ca_file a PEM file of certificates?)"
                               : "");
    r.status = err == DGW_ERR_TLS ? CLI_EXIT_CONFIG : CLI_EXIT_RUNTIME;
    goto out;
  }
  r.ops =
      run_ops_new(r.base, r.client, r.cfg.gateway_url,
                  r.cfg.ops.give_up_after_s, r.cfg.ops.reminder_s, give_up, &r);
  if (r.ops == NULL) {
    cli_say(DGW_LOG_ERROR, "out of memory");
    goto out;
  }
  if (load_plugins(&r, record_to, record_events) != 0) {
    r.status = CLI_EXIT_CONFIG;
    goto out;
  }
  restore_sessions(&r);
  if ((err = dgw_client_start(r.client)) != DGW_OK) {
    cli_say(DGW_LOG_ERROR, "cannot start: %s", dgw_strerror(err));
    goto out;
  }
  if (event_base_dispatch(r.base) < 0) {
    cli_say(DGW_LOG_ERROR, "the event loop failed");
    goto out;
  }
  run_ops_stopping(r.ops);
  save_sessions(&r);
  if (r.save_failed || r.gave_up)
    r.status = CLI_EXIT_RUNTIME;
  else if (r.stopping)
    r.status = CLI_EXIT_OK;
  else if (r.refused)
    r.status = CLI_EXIT_REFUSED;
  else if (r.config_error)
    r.status = CLI_EXIT_CONFIG;
  else if (all_ended(&r)) {
    /* Every shard closed and none was refused: something asked the client
     * to stop (a plugin's host->stop), as a signal would. */
    cli_say(DGW_LOG_INFO, "the client was stopped (by a plugin)");
    r.status = CLI_EXIT_OK;
  }
  cli_say(r.status == CLI_EXIT_OK ? DGW_LOG_INFO : DGW_LOG_ERROR,
          "stopped (exit status %d)", r.status);

out:
  dgw_options_free(opt);
  dgw_callbacks_free(cb);
  dgw_client_free(r.client);
  run_ops_free(r.ops); /* after the client (its shards point to our notes),
                        before the base (our timers are on it) */
  if (r.sigint != NULL)
    event_free(r.sigint);
  if (r.sigterm != NULL)
    event_free(r.sigterm);
  if (r.grace != NULL)
    event_free(r.grace);
  if (r.base != NULL)
    event_base_free(r.base);
  unlock_session_file(&r);
  cli_config_free(&r.cfg);
  return r.status;
}

static void run_usage(FILE *out) {
  fputs("usage: dgw run CONFIG.json\n"
        "Run a bot: connect its shards, load its plugins, and keep the\n"
        "sessions alive until SIGINT or SIGTERM.\n"
        "\n"
        "The config is a JSON object (docs/cli.md lists every key):\n"
        "  {\"token_env\": \"DISCORD_TOKEN\",\n"
        "   \"intents\": [\"GUILDS\", \"GUILD_MESSAGES\"],\n"
        "   \"shards\": \"auto\",\n"
        "   \"plugins\": [{\"name\": \"stats\", \"config\": {}}],\n"
        "   \"session_file\": \"sessions.json\",\n"
        "   \"log_level\": \"info\"}\n"
        "The token is read from the environment variable named by\n"
        "token_env (default DISCORD_TOKEN), never from a file others can\n"
        "read.  Log lines go to stderr, one per lifecycle change.\n"
        "\n"
        "On SIGINT or SIGTERM the shards close; with session_file set they\n"
        "close resumable and their sessions are saved there, and the next\n"
        "start resumes them instead of identifying.  A second signal stops\n"
        "at once.  While it runs, the bot holds SESSION_FILE.lock: a\n"
        "second dgw run on the same session file refuses to start.\n"
        "\n"
        "For operators (docs/operations.md, dgw(1)):\n"
        "  \"metrics\": {\"listen\": \"127.0.0.1:9464\"}  Prometheus /metrics\n"
        "                                  and /healthz on that address\n"
        "  \"log_format\": \"json\"        one JSON object a log line\n"
        "  \"give_up_after_s\": N        exit 1 after N s offline (0: never)\n"
        "  \"offline_reminder_s\": N     warn again every N s offline (300)\n"
        "  \"token_file\": \"NAME\"        the token from a file, relative to\n"
        "                               $CREDENTIALS_DIRECTORY (systemd)\n"
        "Under systemd (Type=notify) it sends READY=1 once every shard was\n"
        "ready, STATUS=, WATCHDOG=1 and STOPPING=1.\n"
        "\n"
        "Exit status: 0 stopped by a signal (or by a plugin), 1 runtime\n"
        "failure (or give_up_after_s offline), 2 usage\n"
        "error, 3 bad config (or unset token variable, refused plugin,\n"
        "session file in use by another dgw run, shards or lease_ms the\n"
        "cluster's running members do not share),\n"
        "4 Discord refused the bot (token, intents, shards).\n",
        out);
}

static void record_usage(FILE *out) {
  fputs("usage: dgw record [--events NAME,...] CONFIG.json OUT.jsonl\n"
        "Run the bot of CONFIG.json (as dgw run does) and append every\n"
        "event it receives to OUT.jsonl, one JSON object a line:\n"
        "  {\"shard\":0,\"seq\":42,\"t\":\"MESSAGE_CREATE\",\"d\":{...}}\n"
        "with d exactly as the gateway sent it.  `dgw mock --replay\n"
        "OUT.jsonl` serves the recording again.\n"
        "\n"
        "  --events LIST   record only these events (comma separated)\n"
        "  --help          show this help and exit\n"
        "\n"
        "Exit status: as dgw run.\n",
        out);
}

/* Only --help; anything else is a usage error.  Returns -1 to go on, or
 * an exit status. */
static int parse_args(int argc, char **argv, int nargs, const char **events,
                      void (*usage)(FILE *)) {
  static const struct option longopts[] = {
      {"help", no_argument, NULL, 'h'},
      {"events", required_argument, NULL, 'e'},
      {NULL, 0, NULL, 0}};
  int c;

  while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return CLI_EXIT_OK;
    }
    if (c == 'e' && events != NULL) {
      *events = optarg;
      continue;
    }
    if (c == 'e')
      fprintf(stderr, "dgw: --events is for dgw record\n");
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  if (argc - optind != nargs) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  return -1;
}

int cmd_run(int argc, char **argv) {
  int rv = parse_args(argc, argv, 1, NULL, run_usage);

  if (rv >= 0)
    return rv;
  return run_config(argv[optind], NULL, NULL);
}

int cmd_record(int argc, char **argv) {
  const char *events = NULL;
  int rv = parse_args(argc, argv, 2, &events, record_usage);

  if (rv >= 0)
    return rv;
  return run_config(argv[optind], argv[optind + 1], events);
}
