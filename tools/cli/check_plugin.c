/*
 * dgw check-plugin PATH: loads a plugin the way a client does (the same
 * lookup, checks and init), reports what it is, and unloads it (its fini
 * runs).  For plugin authors and for deploy scripts that vet a plugin
 * before a restart.
 */
#include "config.h"

#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include <event2/event.h>

#include <dgw/plugin.h>

#include "cli.h"

static void usage(FILE *out) {
  fputs("usage: dgw check-plugin [--config JSON] NAME_OR_PATH\n"
        "Load a plugin as a client would (a NAME is looked up in\n"
        "$DGW_PLUGIN_PATH, then in the installed plugin directory; a path\n"
        "has a '/'), run its init with the config, report its name,\n"
        "version, ABI and events, and unload it.\n"
        "\n"
        "  --config JSON   the plugin's config (default {})\n"
        "  --quiet         print nothing on success\n"
        "  --help          show this help and exit\n"
        "\n"
        "Exit status: 0 the plugin loads, 1 it was refused (the reason is\n"
        "printed), 2 usage error.\n",
        out);
}

int cmd_check_plugin(int argc, char **argv) {
  static const struct option longopts[] = {
      {"config", required_argument, NULL, 'c'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0}};
  const char *config = "{}";
  enum dgw_log_level level = DGW_LOG_WARN;
  struct event_base *base = NULL;
  struct dgw_options *opt = NULL;
  struct dgw_client *client = NULL;
  struct dgw_plugin_info info;
  char why[1024];
  int quiet = 0, c, err = 0, status = CLI_EXIT_RUNTIME;

  while ((c = getopt_long(argc, argv, "+h", longopts, NULL)) != -1) {
    switch (c) {
    case 'c':
      config = optarg;
      break;
    case 'q':
      quiet = 1;
      break;
    case 'h':
      usage(stdout);
      return CLI_EXIT_OK;
    default:
      usage(stderr);
      return CLI_EXIT_USAGE;
    }
  }
  if (argc - optind != 1) {
    usage(stderr);
    return CLI_EXIT_USAGE;
  }
  /* A client that never starts: it only hosts the plugin.  With a gateway
   * URL and explicit shards it never asks Discord anything. */
  base = event_base_new();
  opt = dgw_options_new();
  if (base == NULL || opt == NULL ||
      dgw_options_set_token(opt, "check-plugin") != DGW_OK ||
      dgw_options_set_gateway_url(opt, "ws://127.0.0.1:9") != DGW_OK) {
    fprintf(stderr, "dgw check-plugin: out of memory\n");
    goto out;
  }
  dgw_options_set_log(opt, cli_log, &level, level);
  client = dgw_client_new(base, opt, NULL, NULL, &err);
  if (client == NULL) {
    fprintf(stderr, "dgw check-plugin: cannot make a client: %s\n",
            dgw_strerror(err));
    goto out;
  }
  if (dgw_client_load_plugin(client, argv[optind], config, why, sizeof(why)) !=
      DGW_OK) {
    printf("refused: %s\n", why);
    status = 1;
    goto out;
  }
  if (dgw_client_plugin_info(client, 0, &info, sizeof(info)) != DGW_OK) {
    fprintf(stderr, "dgw check-plugin: loaded, but no plugin info\n");
    goto out;
  }
  if (!quiet) {
    printf("plugin:      %s %s\n", info.name, info.version);
    if (info.description[0] != '\0')
      printf("description: %s\n", info.description);
    printf("path:        %s\n", info.path);
    printf("abi:         %u (this dgw speaks %d)\n", (unsigned)info.abi,
           DGW_PLUGIN_ABI);
    if (info.all_events) {
      printf("events:      every event (*)\n");
    } else if (info.nevents == 0) {
      printf("events:      none (it only watches the lifecycle or sends)\n");
    } else {
      printf("events:     ");
      for (size_t i = 0; i < info.nevents; i++)
        printf(" %s", info.events[i]);
      printf("\n");
    }
    printf("init:        ok\n");
  }
  status = CLI_EXIT_OK;
out:
  dgw_client_free(client); /* the plugin's fini runs here */
  dgw_options_free(opt);
  if (base != NULL)
    event_base_free(base);
  return status;
}
