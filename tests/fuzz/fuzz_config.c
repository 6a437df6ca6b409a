/* Fuzz target: the `dgw run` config (tools/cli/botconfig.c) on a scratch
 * file.  The environment is fixed: DISCORD_TOKEN is set. */
#include "config.h"

#include <string.h>

#include <dgw/dgw.h>

#include "botconfig.h"
#include "fuzz.h"

static char *fake_getenv(const char *name) {
  static char token[] = "fuzz-token";

  return strcmp(name, "DISCORD_TOKEN") == 0 ? token : NULL;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct cli_config cfg;
  struct dgw_options *opt;
  char why[1024];
  const char *path;

  if (size > 1 << 20)
    return 0;
  if ((path = fuzz_scratch_file(data, size)) == NULL)
    return 0;
  why[0] = '\0';
  if (cli_config_load(path, &cfg, fake_getenv, why, sizeof(why)) != 0) {
    if (why[0] == '\0')
      fuzz_fail("a refused config without a reason");
    return 0;
  }
  if ((opt = dgw_options_new()) != NULL) {
    (void)cli_config_apply(&cfg, opt, why, sizeof(why));
    dgw_options_free(opt);
  }
  cli_config_free(&cfg);
  return 0;
}
