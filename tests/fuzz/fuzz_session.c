/*
 * Fuzz target: the session file (lib/session_file.c), through the public
 * dgw_client_restore_sessions() on a scratch file (its parser is static).
 * The client has 4 fixed shards and a configured gateway URL, so the
 * entries are applied at once.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include <event2/event.h>

#include <dgw/dgw.h>

#include "fuzz.h"

/* A one-certificate CA file: loading the system store in every
 * dgw_client_new() would make this target run at 2 inputs a second. */
static const char ca_pem[] =
    "-----BEGIN CERTIFICATE-----\n"
    "MIIBfTCCASOgAwIBAgIUIjGt+S0Ov5DoghNnHSW2baB23jUwCgYIKoZIzj0EAwIw\n"
    "EzERMA8GA1UEAwwIZGd3LWZ1enowIBcNMjYxMjAzMDg1MDA3WhgPMjEyNjExMDkw\n"
    "ODUwMDdaMBMxETAPBgNVBAMMCGRndy1mdXp6MFkwEwYHKoZIzj0CAQYIKoZIzj0D\n"
    "AQcDQgAETqq9ulp3vh2WC1/QYcMOGoYfLGoTRHqGR097NrM8WcDAW9xErXNsqXvx\n"
    "HOK2cy6WbyrJoyuHzNKaXdjo7N3TJKNTMFEwHQYDVR0OBBYEFFHaj42rAFkPXjF8\n"
    "f34UfE5RRdK4MB8GA1UdIwQYMBaAFFHaj42rAFkPXjF8f34UfE5RRdK4MA8GA1Ud\n"
    "EwEB/wQFMAMBAf8wCgYIKoZIzj0EAwIDSAAwRQIhAKaLSOXXPe7bs99JM5vLMmrW\n"
    "ATGbcDPCPk7+2PJmTxyXAiAVLLLJpMtLHjMRHLkT5Xkx5oImkPnPquje2Qha4/8f\n"
    "5A==\n"
    "-----END CERTIFICATE-----\n";
static char ca_path[4096];

static void remove_ca(void) {
  unlink(ca_path);
}

static const char *write_ca(void) {
  const char *dir = getenv("TMPDIR");
  FILE *f;
  int fd;

  snprintf(ca_path, sizeof(ca_path), "%s/dgw-fuzz-ca.XXXXXX",
           dir != NULL && dir[0] != '\0' ? dir : "/tmp");
  if ((fd = mkstemp(ca_path)) < 0 || (f = fdopen(fd, "w")) == NULL)
    fuzz_fail("cannot write the CA file");
  atexit(remove_ca);
  fputs(ca_pem, f);
  if (fclose(f) != 0)
    fuzz_fail("cannot write the CA file");
  return ca_path;
}

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
    dgw_options_set_ca_file(opt, write_ca());
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
