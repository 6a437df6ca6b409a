/* Fuzz target: the zlib-stream decompressor (lib/inflate.c).  The first
 * byte picks the message sizes the rest is cut into (as split WebSocket
 * messages would be); the cap is small (64 KiB) so a bomb ends quickly. */
#include "config.h"

#include <string.h>

#include <dgw/dgw.h>

#include "fuzz.h"
#include "inflate.h"

#define CAP (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct dgw_inflate *z;
  size_t chunk, pos = 1;
  int failed = 0;

  if (size < 1)
    return 0;
  chunk = data[0] == 0 ? size : data[0];
  if ((z = dgw_inflate_new(CAP, NULL)) == NULL)
    return 0;
  while (pos < size) {
    size_t n = size - pos < chunk ? size - pos : chunk;
    const char *out = NULL;
    size_t out_len = 0;
    int rv = dgw_inflate_push(z, data + pos, n, &out, &out_len);

    pos += n;
    if (rv == DGW_OK) {
      if (failed || out == NULL || out[out_len] != '\0' || out_len > CAP)
        fuzz_fail("a payload that breaks the contract");
      dgw_inflate_done(z);
    } else if (rv == DGW_ERR_AGAIN) {
      if (failed || out != NULL || out_len != 0)
        fuzz_fail("AGAIN with a payload");
    } else if (rv == DGW_ERR_INFLATE || rv == DGW_ERR_INFLATE_LIMIT) {
      failed = 1;
      if ((data[0] & 1) != 0) { /* half the inputs go on after a reset */
        dgw_inflate_reset(z);
        failed = 0;
      }
    } else if (rv != DGW_ERR_NOMEM) {
      fuzz_fail("dgw_inflate_push: an unexpected result");
    }
  }
  if (dgw_inflate_bytes_out(z) > dgw_inflate_bytes_in(z) * 1100 + CAP)
    fuzz_fail("more output than zlib's ratio allows");
  dgw_inflate_free(z);
  return 0;
}
