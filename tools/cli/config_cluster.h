/*
 * The "cluster" key of `dgw run`'s config (docs/cluster.md) and the
 * `dgw cluster status CONFIG` command.  Parsed here so that botconfig.c
 * only hooks it in.
 */
#ifndef DGW_CLI_CONFIG_CLUSTER_H
#define DGW_CLI_CONFIG_CLUSTER_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

struct json_object;

struct cli_cluster {
  char *redis; /* NULL: no cluster */
  char *name;
  uint32_t lease_ms; /* 0: the library's default */
};

/*
 * Parses top-level key `key` with value `v` of the config at `path` when
 * it is "cluster": {"redis": URL, "name": NAME, "lease_ms": N}.  Returns 1
 * when `key` is not "cluster", 0 when parsed, -1 with "PATH: cluster.KEY:
 * sentence" in `why` (an unknown key, a malformed URL, a bad name, or a
 * dgw built without hiredis).
 */
int config_cluster_key(const char *path, const char *key, struct json_object *v,
                       struct cli_cluster *cc, char *why, size_t why_size);

/* Sets the cluster of `opt` when `cc` has one.  0, or -1 with a sentence
 * in `why`. */
int config_cluster_apply(const struct cli_cluster *cc, struct dgw_options *opt,
                         char *why, size_t why_size);

/* Frees what config_cluster_key() filled (wiping the URL: it may hold a
 * password). */
void config_cluster_free(struct cli_cluster *cc);

/* `dgw cluster status CONFIG`: members, and for each shard its holder,
 * fencing token, state, seq and lease left.  Exit 0; 1 when Redis cannot
 * be reached; 2 usage; 3 a config without a cluster or a bad one. */
int cmd_cluster(int argc, char **argv);

#endif /* DGW_CLI_CONFIG_CLUSTER_H */
