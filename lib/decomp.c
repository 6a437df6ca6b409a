/* The transport-compression seam: zlib-stream or zstd-stream behind one
 * small table of operations (decomp.h). */
#include "config.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

#include "decomp.h"
#include "inflate.h"
#include "zstd_stream.h"

/* One implementation: its functions with the object as a void pointer. */
struct decomp_ops {
  int kind;
  const char *corrupt_why;
  void (*free)(void *impl);
  void (*reset)(void *impl);
  int (*push)(void *impl, const uint8_t *msg, size_t len, const char **out,
              size_t *out_len);
  void (*done)(void *impl);
  uint64_t (*bytes_in)(const void *impl);
  uint64_t (*bytes_out)(const void *impl);
  size_t (*held)(const void *impl); /* compressed bytes held back */
};

struct dgw_decomp {
  const struct decomp_ops *ops;
  void *impl;
  size_t max; /* the cap, as the implementation applies it */
};

/* zlib-stream (inflate.c). */
static void z_free(void *p) {
  dgw_inflate_free(p);
}
static void z_reset(void *p) {
  dgw_inflate_reset(p);
}
static int z_push(void *p, const uint8_t *msg, size_t len, const char **out,
                  size_t *out_len) {
  return dgw_inflate_push(p, msg, len, out, out_len);
}
static void z_done(void *p) {
  dgw_inflate_done(p);
}
static uint64_t z_in(const void *p) {
  return dgw_inflate_bytes_in(p);
}
static uint64_t z_out(const void *p) {
  return dgw_inflate_bytes_out(p);
}
static size_t z_held(const void *p) {
  return dgw_inflate_held(p);
}

static const struct decomp_ops zlib_ops = {
    DGW_COMPRESSION_ZLIB,
    "corrupt zlib stream",
    z_free,
    z_reset,
    z_push,
    z_done,
    z_in,
    z_out,
    z_held,
};

#ifdef HAVE_ZSTD
/* zstd-stream (zstd_stream.c). */
static void s_free(void *p) {
  dgw_unzstd_free(p);
}
static void s_reset(void *p) {
  dgw_unzstd_reset(p);
}
static int s_push(void *p, const uint8_t *msg, size_t len, const char **out,
                  size_t *out_len) {
  return dgw_unzstd_push(p, msg, len, out, out_len);
}
static void s_done(void *p) {
  dgw_unzstd_done(p);
}
static uint64_t s_in(const void *p) {
  return dgw_unzstd_bytes_in(p);
}
static uint64_t s_out(const void *p) {
  return dgw_unzstd_bytes_out(p);
}
static size_t s_held(const void *p) {
  (void)p;
  return 0; /* input is consumed as it comes */
}

static const struct decomp_ops zstd_ops = {
    DGW_COMPRESSION_ZSTD,
    "corrupt zstd stream",
    s_free,
    s_reset,
    s_push,
    s_done,
    s_in,
    s_out,
    s_held,
};
#endif

int dgw_compression_parse(const char *name, int *kind) {
  int k;

  if (name == NULL || kind == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (strcmp(name, "zlib-stream") == 0)
    k = DGW_COMPRESSION_ZLIB;
  else if (strcmp(name, "zstd-stream") == 0)
    k = DGW_COMPRESSION_ZSTD;
  else if (strcmp(name, "none") == 0)
    k = DGW_COMPRESSION_NONE;
  else
    return DGW_ERR_INVALID_ARGUMENT;
  if (!dgw_compression_available(k))
    return DGW_ERR_UNSUPPORTED;
  *kind = k;
  return DGW_OK;
}

const char *dgw_compression_name(int kind) {
  switch (kind) {
  case DGW_COMPRESSION_ZLIB:
    return "zlib-stream";
  case DGW_COMPRESSION_ZSTD:
    return "zstd-stream";
  default:
    return "none";
  }
}

const char *dgw_compression_query(int kind) {
  switch (kind) {
  case DGW_COMPRESSION_ZLIB:
    return "&compress=zlib-stream";
  case DGW_COMPRESSION_ZSTD:
    return "&compress=zstd-stream";
  default:
    return "";
  }
}

int dgw_compression_available(int kind) {
#ifdef HAVE_ZSTD
  if (kind == DGW_COMPRESSION_ZSTD)
    return 1;
#endif
  return kind == DGW_COMPRESSION_NONE || kind == DGW_COMPRESSION_ZLIB;
}

struct dgw_decomp *dgw_decomp_new(int kind, size_t max_output, int *err) {
  const struct decomp_ops *ops = &zlib_ops;
  struct dgw_decomp *d;
  int e = DGW_OK;

  if (kind == DGW_COMPRESSION_ZSTD) {
#ifdef HAVE_ZSTD
    ops = &zstd_ops;
#else
    e = DGW_ERR_UNSUPPORTED;
#endif
  } else if (kind != DGW_COMPRESSION_ZLIB && kind != DGW_COMPRESSION_NONE) {
    e = DGW_ERR_INVALID_ARGUMENT;
  }
  d = e == DGW_OK ? calloc(1, sizeof *d) : NULL;
  if (e == DGW_OK && d == NULL)
    e = DGW_ERR_NOMEM;
  if (d != NULL) {
    d->ops = ops;
    d->max = max_output == 0 ? DGW_INFLATE_DEFAULT_MAX : max_output;
    if (d->max > SIZE_MAX - 2)
      d->max = SIZE_MAX - 2;
#ifdef HAVE_ZSTD
    if (ops == &zstd_ops)
      d->impl = dgw_unzstd_new(max_output, &e);
    else
#endif
      d->impl = dgw_inflate_new(max_output, &e);
    if (d->impl == NULL) {
      free(d);
      d = NULL;
    }
  }
  if (err != NULL)
    *err = e;
  return d;
}

void dgw_decomp_free(struct dgw_decomp *d) {
  if (d == NULL)
    return;
  d->ops->free(d->impl);
  free(d);
}

void dgw_decomp_reset(struct dgw_decomp *d) {
  if (d != NULL)
    d->ops->reset(d->impl);
}

int dgw_decomp_push(struct dgw_decomp *d, const uint8_t *msg, size_t len,
                    const char **out, size_t *out_len) {
  if (d == NULL) {
    if (out != NULL)
      *out = NULL;
    if (out_len != NULL)
      *out_len = 0;
    return DGW_ERR_INVALID_ARGUMENT;
  }
  return d->ops->push(d->impl, msg, len, out, out_len);
}

void dgw_decomp_done(struct dgw_decomp *d) {
  if (d != NULL)
    d->ops->done(d->impl);
}

uint64_t dgw_decomp_bytes_in(const struct dgw_decomp *d) {
  return d == NULL ? 0 : d->ops->bytes_in(d->impl);
}

uint64_t dgw_decomp_bytes_out(const struct dgw_decomp *d) {
  return d == NULL ? 0 : d->ops->bytes_out(d->impl);
}

size_t dgw_decomp_room(const struct dgw_decomp *d) {
  size_t held;

  if (d == NULL)
    return SIZE_MAX;
  held = d->ops->held(d->impl);
  return held >= d->max ? 0 : d->max - held;
}

const char *dgw_decomp_corrupt_why(const struct dgw_decomp *d) {
  return d == NULL ? zlib_ops.corrupt_why : d->ops->corrupt_why;
}

int dgw_decomp_sleep(struct dgw_decomp *d, struct dgw_inflate_sleeper *s) {
  if (d == NULL || s == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  /* A zstd window is the server's choice and up to megabytes; packing it
   * per quiet spell is not done. */
  if (d->ops != &zlib_ops)
    return DGW_ERR_AGAIN;
  return dgw_inflate_sleep(d->impl, s);
}

int dgw_decomp_asleep(const struct dgw_decomp *d) {
  return d != NULL && d->ops == &zlib_ops && dgw_inflate_asleep(d->impl);
}

size_t dgw_decomp_saved_bytes(const struct dgw_decomp *d) {
  return d != NULL && d->ops == &zlib_ops ? dgw_inflate_saved_bytes(d->impl)
                                          : 0;
}
