/*
 * The operations keys of `dgw run`'s config (docs/operations.md):
 * "metrics", "log_format", "give_up_after_s", "token_file".  Parsed here so
 * that botconfig.c only hooks them in.
 */
#ifndef DGW_CLI_CONFIG_OPS_H
#define DGW_CLI_CONFIG_OPS_H

#include <stddef.h>
#include <stdint.h>

struct json_object;

struct cli_ops {
  char *metrics_json;       /* the metrics plugin's config, or NULL: none */
  int log_json;             /* "log_format": "json" */
  uint32_t give_up_after_s; /* 0: never give up while offline */
  uint32_t reminder_s;      /* between "still offline" lines; 0: 300 */
};

/*
 * Parses top-level key `key` with value `v` of the config at `path` when
 * it is an operations key.  Returns 1 when it is not one (the caller goes
 * on), 0 when parsed, -1 with "PATH: KEY: sentence" in `why`.
 * "token_file" is accepted here and read by config_ops_token().
 */
int config_ops_key(const char *path, const char *key, struct json_object *v,
                   struct cli_ops *ops, char *why, size_t why_size);

/*
 * The token from "token_file" of `root` when it has one: the file named
 * there, relative to $CREDENTIALS_DIRECTORY when set (systemd's
 * LoadCredential=), else to `dir` (the config's directory), read whole,
 * trailing white space cut.  Returns 1 when `root` has no token_file, 0
 * with a malloc'd token in *token, or -1 with a sentence in `why` (also
 * for a token_file given with "token" or "token_env", or a file others can
 * read).
 */
int config_ops_token(const char *path, const char *dir,
                     struct json_object *root, char **token, char *why,
                     size_t why_size);

/* Frees what config_ops_key() filled. */
void config_ops_free(struct cli_ops *ops);

#endif /* DGW_CLI_CONFIG_OPS_H */
