/* The driver the decompressor harnesses (fuzz_inflate.c, fuzz_zstd.c)
 * share: the input cut into WebSocket-sized messages, pushed through the
 * compression seam (lib/decomp.c), the push contract checked on each. */
#include "config.h"

#include <dgw/dgw.h>

#include "decomp.h"
#include "fuzz.h"

struct dgw_decomp *fuzz_decomp_stream(int kind, const uint8_t *data,
                                      size_t size, size_t cap) {
  struct dgw_decomp *d;
  size_t chunk, pos = 1;
  int failed = 0;

  if (size < 1)
    return NULL;
  chunk = data[0] == 0 ? size : data[0];
  if ((d = dgw_decomp_new(kind, cap, NULL)) == NULL)
    return NULL;
  while (pos < size) {
    size_t n = size - pos < chunk ? size - pos : chunk;
    const char *out = NULL;
    size_t out_len = 0;
    int rv = dgw_decomp_push(d, data + pos, n, &out, &out_len);

    pos += n;
    if (rv == DGW_OK) {
      if (failed || out == NULL || out[out_len] != '\0' || out_len > cap)
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
  return d;
}
