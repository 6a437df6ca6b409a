/* Fuzz target: the mock's script parser (tools/mock: dgw_mock_load_script,
 * the JSON lines `dgw mock --script` and --replay read), on a scratch
 * file and a fresh mock each time (the script is appended to). */
#include "config.h"

#include <event2/event.h>

#include <dgw/dgw.h>

#include "fuzz.h"
#include "mock.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct event_base *base;
  struct dgw_mock_config cfg = {0};
  struct dgw_mock *mock;
  const char *path;
  int err = 0, rv;

  if (size > 1 << 20)
    return 0;
  if (base == NULL && (base = event_base_new()) == NULL)
    fuzz_fail("cannot set up");
  if ((path = fuzz_scratch_file(data, size)) == NULL)
    return 0;
  if ((mock = dgw_mock_new(base, &cfg, &err)) == NULL)
    return 0;
  rv = dgw_mock_load_script(mock, path);
  if (rv != DGW_OK && rv != DGW_ERR_JSON && rv != DGW_ERR_NOMEM &&
      rv != DGW_ERR_IO)
    fuzz_fail("dgw_mock_load_script: an unexpected result");
  dgw_mock_free(mock);
  return 0;
}
