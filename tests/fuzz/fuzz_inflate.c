/* Fuzz target: the zlib-stream decompressor (lib/inflate.c, through the
 * compression seam lib/decomp.c).  The first byte picks the message sizes
 * the rest is cut into (as split WebSocket messages would be); the cap is
 * small (64 KiB) so a bomb ends quickly. */
#include "config.h"

#include "decomp.h"
#include "fuzz.h"

#define CAP (64 * 1024)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct dgw_decomp *d =
      fuzz_decomp_stream(DGW_COMPRESSION_ZLIB, data, size, CAP);

  if (d == NULL)
    return 0;
  if (dgw_decomp_bytes_out(d) > dgw_decomp_bytes_in(d) * 1100 + CAP)
    fuzz_fail("more output than zlib's ratio allows");
  dgw_decomp_free(d);
  return 0;
}
