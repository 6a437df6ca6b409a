/*
 * Fuzz target: the session file (lib/session_file.c), through the public
 * dgw_client_restore_sessions() on a scratch file (its parser is static).
 * The client has 4 fixed shards and a configured gateway URL, so the
 * entries are applied at once.
 */
#include "config.h"

#include <event2/event.h>

#include <dgw/dgw.h>

#include "fuzz.h"

static void quiet(enum dgw_log_level level, const char *msg, void *ud) {
  (void)level;
  (void)msg;
  (void)ud;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct event_base *base;
  static struct dgw_options *opt;
  struct dgw_client *c;
  const char *path;
  char why[512];
  uint32_t n = 0;
  int err = 0, rv;

  if (size > 1 << 20)
    return 0;
  if (base == NULL) {
    base = event_base_new();
    opt = dgw_options_new();
    if (base == NULL || opt == NULL)
      fuzz_fail("cannot set up");
    dgw_options_set_token(opt, "fuzz-token");
    dgw_options_set_gateway_url(opt, "ws://127.0.0.1:9/?v=10");
    dgw_options_set_shards(opt, 0, 4, 4);
    dgw_options_set_log(opt, quiet, NULL, DGW_LOG_DEBUG);
  }
  if ((path = fuzz_scratch_file(data, size)) == NULL)
    return 0;
  if ((c = dgw_client_new(base, opt, NULL, NULL, &err)) == NULL)
    return 0;
  rv = dgw_client_restore_sessions(c, path, &n, why, sizeof(why));
  if (rv == DGW_OK && n > 4 * 64)
    fuzz_fail("more sessions restored than entries could hold");
  dgw_client_free(c);
  return 0;
}
