/*
 * The server side of transport compression for the bench: one zlib-stream
 * (deflate, Z_SYNC_FLUSH per payload) or zstd-stream (ZSTD_e_flush per
 * payload, never an end) stream per connection, as Discord sends them.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#define ZLIB_CONST
#include <zlib.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include "bench.h"

struct packer {
  int zstd;
  z_stream zs;
#ifdef HAVE_ZSTD
  ZSTD_CCtx *zc;
#endif
};

struct packer *packer_new(int zstd, int level) {
  struct packer *p = calloc(1, sizeof *p);

  if (p == NULL)
    die("out of memory");
  p->zstd = zstd;
  if (zstd) {
#ifdef HAVE_ZSTD
    p->zc = ZSTD_createCCtx();
    if (p->zc == NULL || ZSTD_isError(ZSTD_CCtx_setParameter(
                             p->zc, ZSTD_c_compressionLevel, level)))
      die("cannot start a zstd stream");
#else
    die("built without libzstd: no zstd-stream");
#endif
  } else if (deflateInit(&p->zs, level) != Z_OK) {
    die("deflateInit failed");
  }
  return p;
}

void packer_free(struct packer *p) {
  if (p == NULL)
    return;
  if (p->zstd) {
#ifdef HAVE_ZSTD
    ZSTD_freeCCtx(p->zc);
#endif
  } else {
    deflateEnd(&p->zs);
  }
  free(p);
}

int packer_run(struct packer *p, struct sbuf *out, const char *json,
               size_t len) {
  out->len = 0;
  if (p->zstd) {
#ifdef HAVE_ZSTD
    ZSTD_inBuffer in = {json, len, 0};
    size_t left;

    do {
      ZSTD_outBuffer ob;

      sb_reserve(out, 65536);
      ob.dst = out->p + out->len;
      ob.size = 65536;
      ob.pos = 0;
      left = ZSTD_compressStream2(p->zc, &ob, &in, ZSTD_e_flush);
      if (ZSTD_isError(left))
        return -1;
      out->len += ob.pos;
    } while (left != 0);
#endif
    return 0;
  }
  p->zs.next_in = (const Bytef *)json;
  p->zs.avail_in = (uInt)len;
  do {
    sb_reserve(out, 65536);
    p->zs.next_out = (Bytef *)out->p + out->len;
    p->zs.avail_out = 65536;
    if (deflate(&p->zs, Z_SYNC_FLUSH) == Z_STREAM_ERROR)
      return -1;
    out->len = (size_t)((char *)p->zs.next_out - out->p);
  } while (p->zs.avail_out == 0);
  return 0;
}
