/* Fuzz target: the zstd-stream decompressor (lib/zstd_stream.c) through
 * the compression seam (lib/decomp.c).  The first byte picks the message
 * sizes the rest is cut into (as split WebSocket messages would be); the
 * cap is small (64 KiB) so a bomb ends quickly. */
#include "config.h"

#include <string.h>

#include <dgw/dgw.h>

#include "decomp.h"
#include "fuzz.h"

#define CAP (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct dgw_decomp *d;
  size_t chunk, pos = 1;
  int failed = 0;

  if (size < 1)
    return 0;
  chunk = data[0] == 0 ? size : data[0];
  if ((d = dgw_decomp_new(DGW_COMPRESSION_ZSTD, CAP, NULL)) == NULL)
    return 0;
  while (pos < size) {
    size_t n = size - pos < chunk ? size - pos : chunk;
    const char *out = NULL;
    size_t out_len = 0;
    int rv = dgw_decomp_push(d, data + pos, n, &out, &out_len);

    pos += n;
    if (rv == DGW_OK) {
      if (failed || out == NULL || out[out_len] != '\0' || out_len > CAP)
        fuzz_fail("a payload that breaks the contract");
      dgw_decomp_done(d);
    } else if (rv == DGW_ERR_AGAIN) {
      if (failed || out != NULL || out_len != 0)
        fuzz_fail("AGAIN with a payload");
    } else if (rv == DGW_ERR_INFLATE || rv == DGW_ERR_INFLATE_LIMIT) {
      failed = 1;
      if ((data[0] & 1) != 0) { /* half the inputs go on after a reset */
        dgw_decomp_reset(d);
        failed = 0;
      }
    } else if (rv != DGW_ERR_NOMEM) {
      fuzz_fail("dgw_decomp_push: an unexpected result");
    }
  }
  if (dgw_decomp_room(d) != CAP)
    fuzz_fail("zstd-stream holds input back");
  dgw_decomp_free(d);
  return 0;
}
