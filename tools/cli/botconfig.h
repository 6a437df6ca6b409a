/*
 * The JSON config of `dgw run` and `dgw record` (docs/cli.md): read,
 * checked key by key with a message naming the file and the key, and
 * turned into dgw_options.
 */
#ifndef DGW_CLI_BOTCONFIG_H
#define DGW_CLI_BOTCONFIG_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

#include "config_ops.h"
#include "config_cluster.h"

struct cli_plugin {
  char *name_or_path; /* a path is made absolute against the config's dir */
  char *config_json;  /* "{}" when none */
};

struct cli_config {
  char *token; /* from the environment (or the file, see docs/cli.md) */
  uint64_t intents;
  int shards_auto;
  uint32_t shard_first, shard_count, shard_total;
  char *gateway_url; /* NULL: from GET /gateway/bot */
  char *api_url;     /* NULL: Discord's */
  char *ca_file;
  int compress;        /* 0 none, 1 zlib-stream, 2 zstd-stream */
  int large_threshold; /* 0: not sent */
  /* "lazy_connect": -1 not set (the library's default), 0 off, 1 on with
   * lazy_lead_ms (0: the library's default lead). */
  int lazy_connect;
  uint32_t lazy_lead_ms;
  /* "quiet_sleep_ms": -1 not set (the library's default), else the
   * quiet time before a shard packs its zlib window (0: never). */
  int64_t quiet_sleep_ms;
  char *presence_json;
  struct cli_plugin *plugins;
  size_t nplugins;
  int plugins_strict;
  enum dgw_log_level log_level;
  char *session_file;
  struct cli_ops ops;         /* config_ops.c */
  struct cli_cluster cluster; /* config_cluster.c */
};

/*
 * Reads and checks the config at `path`.  Returns 0, or -1 with one
 * sentence in `why` ("bot.json: intents: unknown intent \"GUILD\" ...");
 * *cfg is then empty.  `getenv_fn` reads the environment (getenv; tests
 * pass their own).
 */
int cli_config_load(const char *path, struct cli_config *cfg,
                    char *(*getenv_fn)(const char *), char *why,
                    size_t why_size);

/* Sets `opt` from `cfg`.  Returns 0, or -1 with a sentence in `why`. */
int cli_config_apply(const struct cli_config *cfg, struct dgw_options *opt,
                     char *why, size_t why_size);

/* Frees what cli_config_load() filled (wiping the token). */
void cli_config_free(struct cli_config *cfg);

#endif /* DGW_CLI_BOTCONFIG_H */
