/* zstd-stream transport decompression: one ZSTD_DStream per connection. */
#include "config.h"

#ifdef HAVE_ZSTD

#include <stdlib.h>
#include <string.h>

#include <zstd.h>
#include <zstd_errors.h>

#include <dgw/dgw.h>

#include "inflate.h" /* DGW_INFLATE_DEFAULT_MAX */
#include "zstd_stream.h"

/* As inflate.c: a buffer grown past this for one big payload (READY, a
 * GUILD_CREATE) is released once that payload is done. */
#define KEEP_BYTES ((size_t)32 * 1024)
#define OUT_INITIAL ((size_t)4 * 1024)
/* What ZSTD_decompressStream() asks for when it stands between two blocks
 * with no byte of the next one: a whole block header (ZSTD_blockHeaderSize
 * in libzstd, not in its public header).  Inside a block it asks for the
 * rest of the block plus the next header (more), inside a header for the
 * rest of it (less). */
#define BLOCK_HEADER_SIZE 3

struct dgw_unzstd {
  ZSTD_DStream *ds;
  size_t max_output; /* cap on one payload */
  int failed;        /* 0, or the error every push repeats until reset */
  int partial;       /* out holds the start of an unfinished payload */
  char *out;         /* current payload, NUL-terminated once complete */
  size_t out_len;
  size_t out_cap;
  uint64_t bytes_in;
  uint64_t bytes_out;
};

static void release_out(struct dgw_unzstd *u, size_t keep);
static int fail(struct dgw_unzstd *u, int error);
static int out_grow(struct dgw_unzstd *u);
static int map_error(size_t ret);

struct dgw_unzstd *dgw_unzstd_new(size_t max_output, int *err) {
  struct dgw_unzstd *u = calloc(1, sizeof *u);

  if (u != NULL)
    u->ds = ZSTD_createDStream();
  if (u == NULL || u->ds == NULL ||
      ZSTD_isError(ZSTD_DCtx_setParameter(u->ds, ZSTD_d_windowLogMax,
                                          DGW_ZSTD_WINDOW_LOG_MAX))) {
    if (u != NULL)
      ZSTD_freeDStream(u->ds);
    free(u);
    if (err != NULL)
      *err = DGW_ERR_NOMEM;
    return NULL;
  }
  u->max_output = max_output == 0 ? DGW_INFLATE_DEFAULT_MAX : max_output;
  /* The output buffer holds cap + 1 bytes (to see the overflow) + NUL. */
  if (u->max_output > SIZE_MAX - 2)
    u->max_output = SIZE_MAX - 2;
  if (err != NULL)
    *err = DGW_OK;
  return u;
}

void dgw_unzstd_free(struct dgw_unzstd *u) {
  if (u == NULL)
    return;
  ZSTD_freeDStream(u->ds);
  free(u->out);
  free(u);
}

void dgw_unzstd_reset(struct dgw_unzstd *u) {
  if (u == NULL)
    return;
  /* Keeps the parameters (the window cap) and the window allocation. */
  (void)ZSTD_DCtx_reset(u->ds, ZSTD_reset_session_only);
  u->failed = 0;
  u->partial = 0;
  u->out_len = 0;
  release_out(u, KEEP_BYTES);
}

int dgw_unzstd_push(struct dgw_unzstd *u, const uint8_t *msg, size_t len,
                    const char **out, size_t *out_len) {
  ZSTD_inBuffer in = {msg, len, 0};
  size_t ret = 0;

  if (out != NULL)
    *out = NULL;
  if (out_len != NULL)
    *out_len = 0;
  if (u == NULL || out == NULL || out_len == NULL || (msg == NULL && len > 0))
    return DGW_ERR_INVALID_ARGUMENT;
  if (u->failed != 0)
    return u->failed;
  if (!u->partial) {
    u->out_len = 0;
    release_out(u, KEEP_BYTES);
  }
  u->bytes_in += len;
  if (len == 0)
    return DGW_ERR_AGAIN;

  for (;;) {
    ZSTD_outBuffer ob;
    int rc;

    /* Keep one byte for the NUL.  out_len <= max_output here, so a full
     * buffer is below its limit and can grow. */
    if (u->out_cap == 0 || u->out_len >= u->out_cap - 1) {
      rc = out_grow(u);
      if (rc != DGW_OK)
        return fail(u, rc);
    }
    ob.dst = u->out + u->out_len;
    ob.size = u->out_cap - 1 - u->out_len;
    ob.pos = 0;
    ret = ZSTD_decompressStream(u->ds, &ob, &in);
    u->out_len += ob.pos;
    if (ZSTD_isError(ret))
      return fail(u, map_error(ret));
    /* The buffer ends one byte past the cap, so a bomb stops right here. */
    if (u->out_len > u->max_output)
      return fail(u, DGW_ERR_INFLATE_LIMIT);
    /* All input taken and room to spare: nothing is left to flush. */
    if (in.pos == in.size && ob.pos < ob.size)
      break;
  }
  /* A payload ends where the server flushed: between blocks (or at the
   * end of a frame).  Anything else is a message cut short; an ended
   * frame header alone, with no output yet, is not a payload either. */
  if ((ret != BLOCK_HEADER_SIZE && ret != 0) || u->out_len == 0) {
    u->partial = 1;
    return DGW_ERR_AGAIN;
  }
  u->partial = 0;
  u->out[u->out_len] = '\0';
  u->bytes_out += u->out_len;
  *out = u->out;
  *out_len = u->out_len;
  return DGW_OK;
}

void dgw_unzstd_done(struct dgw_unzstd *u) {
  if (u == NULL || u->partial)
    return;
  u->out_len = 0;
  release_out(u, KEEP_BYTES);
}

uint64_t dgw_unzstd_bytes_in(const struct dgw_unzstd *u) {
  return u == NULL ? 0 : u->bytes_in;
}

uint64_t dgw_unzstd_bytes_out(const struct dgw_unzstd *u) {
  return u == NULL ? 0 : u->bytes_out;
}

/* Frees the output buffer if it holds no bytes and is larger than `keep`. */
static void release_out(struct dgw_unzstd *u, size_t keep) {
  if (u->out_len == 0 && u->out_cap > keep) {
    free(u->out);
    u->out = NULL;
    u->out_cap = 0;
  }
}

/* Marks `u` failed with `error` and returns it; the stream position is
 * lost, so the output goes at once. */
static int fail(struct dgw_unzstd *u, int error) {
  u->failed = error;
  u->partial = 0;
  u->out_len = 0;
  release_out(u, 0);
  return error;
}

/* Grows the output buffer geometrically, never past cap + 1 + NUL. */
static int out_grow(struct dgw_unzstd *u) {
  size_t limit = u->max_output + 2;
  size_t cap;
  char *p;

  if (u->out_cap == 0)
    cap = OUT_INITIAL;
  else if (u->out_cap > limit / 2)
    cap = limit;
  else
    cap = u->out_cap * 2;
  if (cap > limit)
    cap = limit;
  p = realloc(u->out, cap);
  if (p == NULL)
    return DGW_ERR_NOMEM;
  u->out = p;
  u->out_cap = cap;
  return DGW_OK;
}

static int map_error(size_t ret) {
  switch (ZSTD_getErrorCode(ret)) {
  case ZSTD_error_memory_allocation:
    return DGW_ERR_NOMEM;
  case ZSTD_error_frameParameter_windowTooLarge:
    return DGW_ERR_INFLATE_LIMIT;
  default:
    return DGW_ERR_INFLATE;
  }
}

#else
/* Built without libzstd: decomp.c answers DGW_ERR_UNSUPPORTED. */
typedef int dgw_zstd_stream_unused;
#endif /* HAVE_ZSTD */
