/* Fuzz target: the zlib-stream decompressor (lib/inflate.c, through the
 * compression seam lib/decomp.c).  The first byte picks the message sizes
 * the rest is cut into (as split WebSocket messages would be); the cap is
 * small (64 KiB) so a bomb ends quickly.
 *
 * Then the same messages go through two more decompressors, one of which
 * packs its window (a quiet shard's sleep) after every payload: every
 * result and every payload must be the same as the other's, byte for
 * byte, whatever the input. */
#include "config.h"

#include <string.h>

#include <dgw/dgw.h>

#include "decomp.h"
#include "fuzz.h"
#include "inflate.h"

#define CAP (64 * 1024)

static void sleep_differential(const uint8_t *data, size_t size) {
  struct dgw_decomp *awake = dgw_decomp_new(DGW_COMPRESSION_ZLIB, CAP, NULL);
  struct dgw_decomp *quiet = dgw_decomp_new(DGW_COMPRESSION_ZLIB, CAP, NULL);
  struct dgw_inflate_sleeper *s = dgw_inflate_sleeper_new();
  size_t chunk = data[0] == 0 ? size : data[0], pos = 1;

  if (awake == NULL || quiet == NULL || s == NULL)
    goto out;
  while (pos < size) {
    size_t n = size - pos < chunk ? size - pos : chunk;
    const char *a = NULL, *q = NULL;
    size_t a_len = 0, q_len = 0;
    int ra = dgw_decomp_push(awake, data + pos, n, &a, &a_len);
    int rq = dgw_decomp_push(quiet, data + pos, n, &q, &q_len);

    pos += n;
    if (ra == DGW_ERR_NOMEM || rq == DGW_ERR_NOMEM)
      break;
    if (ra != rq)
      fuzz_fail("a result differs after a sleep");
    if (ra == DGW_OK) {
      if (a_len != q_len || memcmp(a, q, a_len) != 0)
        fuzz_fail("a payload differs after a sleep");
      dgw_decomp_done(awake);
      dgw_decomp_done(quiet);
      if (dgw_decomp_sleep(quiet, s) == DGW_ERR_NOMEM)
        break;
    } else if (ra != DGW_ERR_AGAIN) {
      dgw_decomp_reset(awake);
      dgw_decomp_reset(quiet);
    }
  }
out:
  dgw_decomp_free(awake);
  dgw_decomp_free(quiet);
  dgw_inflate_sleeper_free(s); /* after the objects that slept with it */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct dgw_decomp *d =
      fuzz_decomp_stream(DGW_COMPRESSION_ZLIB, data, size, CAP);

  if (d == NULL)
    return 0;
  if (dgw_decomp_bytes_out(d) > dgw_decomp_bytes_in(d) * 1100 + CAP)
    fuzz_fail("more output than zlib's ratio allows");
  dgw_decomp_free(d);
  sleep_differential(data, size);
  return 0;
}
