/* Fuzz target: the zstd-stream decompressor (lib/zstd_stream.c) through
 * the compression seam (lib/decomp.c).  The first byte picks the message
 * sizes the rest is cut into (as split WebSocket messages would be); the
 * cap is small (64 KiB) so a bomb ends quickly. */
#include "config.h"

#include "decomp.h"
#include "fuzz.h"

#define CAP (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct dgw_decomp *d =
      fuzz_decomp_stream(DGW_COMPRESSION_ZSTD, data, size, CAP);

  if (d == NULL)
    return 0;
  if (dgw_decomp_room(d) != CAP)
    fuzz_fail("zstd-stream holds input back");
  dgw_decomp_free(d);
  return 0;
}
