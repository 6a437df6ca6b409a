/* zlib-stream transport decompression: one z_stream per connection. */
#include "config.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define ZLIB_CONST
#include <zlib.h>

#include <dgw/dgw.h>

#include "inflate.h"

/*
 * Buffers that grew beyond this are released once their bytes are no longer
 * needed (dgw_inflate_done), so the startup burst of READY and GUILD_CREATEs
 * (tens of KiB to megabytes each) does not stay pinned in thousands of idle
 * shards.  Dispatches are mostly far smaller; a larger one pays a realloc
 * or two and a free, next to inflating tens of KiB.
 */
#define KEEP_BYTES ((size_t)32 * 1024)
/* First output allocation; most dispatches inflate to a few KiB, a
 * heartbeat ACK to a few dozen bytes. */
#define OUT_INITIAL ((size_t)4 * 1024)
/* First allocation of the input buffer (rarely used at all). */
#define IN_INITIAL ((size_t)4 * 1024)

struct dgw_inflate {
  z_stream zs;
  size_t max_output; /* cap on one payload and on buffered input */
  int failed;        /* 0, or the error every push repeats until reset */
  int partial;       /* out holds the start of an unfinished payload */
  uint8_t *in;       /* compressed bytes waiting for the suffix */
  size_t in_len;
  size_t in_cap;
  char *out; /* current payload, NUL-terminated once complete */
  size_t out_len;
  size_t out_cap;
  uint64_t bytes_in;
  uint64_t bytes_out;
  /* The 2-byte zlib header, read by us (see read_header()). */
  uint8_t header[2];
  unsigned header_seen; /* 0, 1, 2 */
  /* Asleep (dgw_inflate_sleep()): zs holds no zlib state; `saved` is the
   * window deflated (NULL with saved_len 0 for an empty window) and
   * `saved_window` its length inflated again (the window, and any bytes
   * appended raw after it; see dgw_inflate_sleep()). */
  int asleep;
  uint8_t *saved;
  size_t saved_len;
  size_t saved_window;
  size_t saved_raw; /* of saved_window, the bytes appended raw */
  /* Awake after a restore: the packed form it came from (NULL once more
   * than APPEND_MAX bytes came since), its length inflated, and zlib's
   * total_out right after the restore. */
  uint8_t *kept;
  size_t kept_len;
  size_t kept_window;
  size_t kept_raw;
  uLong wake_out;
  /* zlib's window when it is mapped on its own (see z_alloc()). */
  void *window_map;
  size_t window_map_len;
  /* The sleeper of the last sleep: its spare windows serve this stream's
   * next window (z_alloc()).  Borrowed; outlives `z`. */
  struct dgw_inflate_sleeper *sleeper;
};

/*
 * The compressor quiet connections share: a raw deflate stream (made on
 * first use, reset per window) and the two scratch buffers of one
 * window, before and after.
 */
#define WINDOW_BYTES ((size_t)1 << 15)
/* A stream woken for little (a quiet shard's heartbeat ACK) is packed
 * again by appending the bytes it inflated since, raw, to the packed form
 * it woke from: up to APPEND_MAX bytes since the wake, APPEND_TOTAL in
 * all before the window is packed anew. */
#define APPEND_MAX ((size_t)1024)
#define APPEND_TOTAL ((size_t)4096)
/* Mapped 32 KiB windows kept for the next stream that wakes: a quiet
 * shard's ACK maps no pages and takes no page faults. */
#define SPARE_WINDOWS 4

struct dgw_inflate_sleeper {
  z_stream ds;
  int ready; /* ds is initialised */
  void *spare[SPARE_WINDOWS];
  unsigned nspare;
  uint8_t window[WINDOW_BYTES];
  uint8_t packed[WINDOW_BYTES];
};

static const uint8_t flush_suffix[4] = {0x00, 0x00, 0xff, 0xff};

static int ends_with_suffix(const uint8_t *buf, size_t len);
static void release_in(struct dgw_inflate *z, size_t keep);
static void release_out(struct dgw_inflate *z, size_t keep);
static int fail(struct dgw_inflate *z, int error);
static int out_grow(struct dgw_inflate *z);
static int in_append(struct dgw_inflate *z, const uint8_t *msg, size_t len);
static int run(struct dgw_inflate *z, const uint8_t *in, size_t len);
static int read_header(struct dgw_inflate *z, const uint8_t **in, size_t *len);
static int wake(struct dgw_inflate *z);
static void drop_kept(struct dgw_inflate *z);
static void stream_init(struct dgw_inflate *z);

struct dgw_inflate *dgw_inflate_new(size_t max_output, int *err) {
  struct dgw_inflate *z;
  int rc;

  z = calloc(1, sizeof *z);
  if (z == NULL) {
    if (err != NULL)
      *err = DGW_ERR_NOMEM;
    return NULL;
  }
  z->max_output = max_output == 0 ? DGW_INFLATE_DEFAULT_MAX : max_output;
  /* The output buffer holds cap + 1 bytes (to see the overflow) + NUL. */
  if (z->max_output > SIZE_MAX - 2)
    z->max_output = SIZE_MAX - 2;

  stream_init(z);
  /* Discord sends a zlib stream (RFC 1950: a 2-byte header, then
   * deflate).  The header is read here and the deflate data inflated raw:
   * zlib would otherwise keep an Adler-32 of every byte for a trailer
   * that never comes (the stream does not end), 7-10% of the inflate
   * time.  The window size is set from the header (read_header()). */
  rc = inflateInit2(&z->zs, -15);
  if (rc != Z_OK) {
    free(z);
    if (err != NULL)
      *err = rc == Z_MEM_ERROR ? DGW_ERR_NOMEM : DGW_ERR_INFLATE;
    return NULL;
  }
  if (err != NULL)
    *err = DGW_OK;
  return z;
}

void dgw_inflate_free(struct dgw_inflate *z) {
  if (z == NULL)
    return;
  if (!z->asleep)
    inflateEnd(&z->zs);
  free(z->saved);
  free(z->kept);
  free(z->in);
  free(z->out);
  free(z);
}

void dgw_inflate_reset(struct dgw_inflate *z) {
  if (z == NULL)
    return;
  if (z->asleep) {
    /* The window belonged to the old connection: the next push starts a
     * fresh stream instead of restoring it. */
    free(z->saved);
    z->saved = NULL;
    z->saved_len = 0;
    z->saved_window = 0;
    z->saved_raw = 0;
  } else {
    /* Keeps zlib's window allocation; only fails on a broken z_stream. */
    (void)inflateReset(&z->zs);
  }
  drop_kept(z);
  z->header_seen = 0;
  z->failed = 0;
  z->partial = 0;
  z->in_len = 0;
  z->out_len = 0;
  release_in(z, KEEP_BYTES);
  release_out(z, KEEP_BYTES);
}

int dgw_inflate_push(struct dgw_inflate *z, const uint8_t *msg, size_t len,
                     const char **out, size_t *out_len) {
  int rc;

  if (out != NULL)
    *out = NULL;
  if (out_len != NULL)
    *out_len = 0;
  if (z == NULL || out == NULL || out_len == NULL || (msg == NULL && len > 0))
    return DGW_ERR_INVALID_ARGUMENT;
  if (z->failed != 0)
    return z->failed;

  /* The previous payload's pointer dies here, so its buffer may go. */
  if (!z->partial) {
    z->out_len = 0;
    release_out(z, KEEP_BYTES);
  }
  z->bytes_in += len;
  /* Nothing buffered ended with the suffix (else it would be inflated), and
     an empty message cannot change that. */
  if (len == 0)
    return DGW_ERR_AGAIN;
  if (z->asleep && (rc = wake(z)) != DGW_OK)
    return fail(z, rc);

  if (z->in_len == 0 && ends_with_suffix(msg, len)) {
    /* Fast path, one message per payload: inflate the caller's bytes. */
    rc = run(z, msg, len);
  } else {
    if (len > z->max_output - z->in_len)
      return fail(z, DGW_ERR_INFLATE_LIMIT);
    rc = in_append(z, msg, len);
    if (rc != DGW_OK)
      return fail(z, rc);
    if (!ends_with_suffix(z->in, z->in_len))
      return DGW_ERR_AGAIN;
    rc = run(z, z->in, z->in_len);
    z->in_len = 0;
    release_in(z, KEEP_BYTES);
  }
  if (rc != DGW_OK)
    return fail(z, rc);

  /*
   * A sync flush leaves inflate between blocks (data_type bit 128).  If it
   * stopped inside a block, the suffix was payload data that happened to
   * end a message: keep the output so far and wait for the rest.
   */
  if ((z->zs.data_type & 128) == 0) {
    z->partial = 1;
    return DGW_ERR_AGAIN;
  }
  z->partial = 0;
  z->out[z->out_len] = '\0';
  z->bytes_out += z->out_len;
  /* A shard busy again: its packed form is of no more use. */
  if (z->kept != NULL && z->zs.total_out - z->wake_out > APPEND_MAX)
    drop_kept(z);
  *out = z->out;
  *out_len = z->out_len;
  return DGW_OK;
}

void dgw_inflate_done(struct dgw_inflate *z) {
  if (z == NULL || z->partial)
    return;
  z->out_len = 0;
  release_out(z, KEEP_BYTES);
}

uint64_t dgw_inflate_bytes_in(const struct dgw_inflate *z) {
  return z == NULL ? 0 : z->bytes_in;
}

uint64_t dgw_inflate_bytes_out(const struct dgw_inflate *z) {
  return z == NULL ? 0 : z->bytes_out;
}

size_t dgw_inflate_held(const struct dgw_inflate *z) {
  return z == NULL ? 0 : z->in_len;
}

static int ends_with_suffix(const uint8_t *buf, size_t len) {
  return len >= sizeof flush_suffix &&
         memcmp(buf + len - sizeof flush_suffix, flush_suffix,
                sizeof flush_suffix) == 0;
}

/* Frees the input buffer if it holds no bytes and is larger than `keep`. */
static void release_in(struct dgw_inflate *z, size_t keep) {
  if (z->in_len == 0 && z->in_cap > keep) {
    free(z->in);
    z->in = NULL;
    z->in_cap = 0;
  }
}

/* Frees the output buffer if it holds no bytes and is larger than `keep`. */
static void release_out(struct dgw_inflate *z, size_t keep) {
  if (z->out_len == 0 && z->out_cap > keep) {
    free(z->out);
    z->out = NULL;
    z->out_cap = 0;
  }
}

/*
 * Marks `z` failed with `error` and returns it.  The buffered bytes belong
 * to a stream position that is lost, so they and the buffers go at once.
 */
static int fail(struct dgw_inflate *z, int error) {
  z->failed = error;
  z->partial = 0;
  z->in_len = 0;
  z->out_len = 0;
  release_in(z, 0);
  release_out(z, 0);
  return error;
}

/* Grows the output buffer geometrically, never past cap + 1 + NUL. */
static int out_grow(struct dgw_inflate *z) {
  size_t limit = z->max_output + 2;
  size_t cap;
  char *p;

  if (z->out_cap == 0)
    cap = OUT_INITIAL;
  else if (z->out_cap > limit / 2)
    cap = limit;
  else
    cap = z->out_cap * 2;
  if (cap > limit)
    cap = limit;
  p = realloc(z->out, cap);
  if (p == NULL)
    return DGW_ERR_NOMEM;
  z->out = p;
  z->out_cap = cap;
  return DGW_OK;
}

/* Appends to the input buffer; the caller has checked the cap. */
static int in_append(struct dgw_inflate *z, const uint8_t *msg, size_t len) {
  size_t need = z->in_len + len;

  if (need > z->in_cap) {
    size_t cap = z->in_cap == 0 ? IN_INITIAL : z->in_cap;
    uint8_t *p;

    while (cap < need)
      cap = cap > z->max_output / 2 ? z->max_output : cap * 2;
    if (cap > z->max_output)
      cap = z->max_output;
    p = realloc(z->in, cap);
    if (p == NULL)
      return DGW_ERR_NOMEM;
    z->in = p;
    z->in_cap = cap;
  }
  memcpy(z->in + z->in_len, msg, len);
  z->in_len = need;
  return DGW_OK;
}

/*
 * Inflates all `len` bytes at `in` through the connection's stream, appending
 * to z->out straight from zlib.  Returns DGW_OK once every byte is consumed
 * and zlib has no output left to write, or an error.
 */
/*
 * Takes the zlib header (RFC 1950) from the front of the input, across
 * messages if it comes split: CM 8 (deflate), CINFO <= 7 (a window of at
 * most 32 KiB), FCHECK right, no preset dictionary, as inflate() itself
 * would check them; then sets the raw stream's window to CINFO's.
 * Returns DGW_OK (header done, or waiting for its second byte) or
 * DGW_ERR_INFLATE.
 */
static int read_header(struct dgw_inflate *z, const uint8_t **in, size_t *len) {
  unsigned cmf, flg;

  while (z->header_seen < 2 && *len > 0) {
    z->header[z->header_seen++] = **in;
    (*in)++;
    (*len)--;
  }
  if (z->header_seen < 2)
    return DGW_OK;
  cmf = z->header[0];
  flg = z->header[1];
  if ((cmf & 0x0f) != 8 || (cmf >> 4) > 7 || (cmf * 256 + flg) % 31 != 0 ||
      (flg & 0x20) != 0)
    return DGW_ERR_INFLATE;
  return inflateReset2(&z->zs, -(int)((cmf >> 4) + 8)) == Z_OK
             ? DGW_OK
             : DGW_ERR_INFLATE;
}

static int run(struct dgw_inflate *z, const uint8_t *in, size_t len) {
  z_stream *zs = &z->zs;
  size_t in_left;

  if (z->header_seen < 2) {
    int rc = read_header(z, &in, &len);

    if (rc != DGW_OK)
      return rc;
  }
  in_left = len;
  zs->next_in = in;
  zs->avail_in = 0;
  for (;;) {
    size_t room;
    int rc;

    /* avail_in is a uInt: feed inputs beyond UINT_MAX in slices. */
    if (zs->avail_in == 0) {
      uInt n = in_left > UINT_MAX ? UINT_MAX : (uInt)in_left;

      zs->avail_in = n;
      in_left -= n;
    }
    /* Keep one byte for the NUL.  out_len <= max_output here, so a full
       buffer is below its limit and can grow. */
    if (z->out_cap == 0 || z->out_len >= z->out_cap - 1) {
      rc = out_grow(z);
      if (rc != DGW_OK)
        return rc;
    }
    room = z->out_cap - 1 - z->out_len;
    if (room > UINT_MAX)
      room = UINT_MAX;
    zs->next_out = (Bytef *)z->out + z->out_len;
    zs->avail_out = (uInt)room;

    rc = inflate(zs, Z_NO_FLUSH);
    z->out_len += room - zs->avail_out;
    /* The buffer ends one byte past the cap, so a bomb stops right here. */
    if (z->out_len > z->max_output)
      return DGW_ERR_INFLATE_LIMIT;

    switch (rc) {
    case Z_OK:
      break;
    case Z_BUF_ERROR:
      /* No progress was possible.  At the end of the input that only means
         the previous call already wrote everything: not an error. */
      if (zs->avail_in == 0 && in_left == 0)
        return DGW_OK;
      return DGW_ERR_INFLATE;
    case Z_MEM_ERROR:
      return DGW_ERR_NOMEM;
    case Z_STREAM_END:
      /* Discord never ends the stream (no Z_FINISH): an end, with or
         without bytes after it, is a broken stream. */
    case Z_NEED_DICT:
    case Z_DATA_ERROR:
    case Z_STREAM_ERROR:
    default:
      return DGW_ERR_INFLATE;
    }
    /* Input used up with output space to spare: zlib has nothing pending. */
    if (zs->avail_in == 0 && in_left == 0 && zs->avail_out != 0)
      return DGW_OK;
  }
}

/* ------------------------------------------------------ quiet connections */

/*
 * zlib's allocator for our streams.  The window (32 KiB, the one request
 * of that size; 1 << wbits bytes in general) gets pages of its own, so
 * that a sleep or a connection's end gives it straight back to the
 * system: from malloc's heap, freed windows of thousands of shards stay
 * resident between the objects still in use.  Everything else (the 7 KiB
 * state) comes from malloc.
 */
#define WINDOW_MAP_MIN ((size_t)16 * 1024)

static voidpf z_alloc(voidpf opaque, uInt items, uInt size) {
  struct dgw_inflate *z = opaque;
  size_t len;
  void *p;

  if (size != 0 && items > SIZE_MAX / size)
    return Z_NULL;
  len = (size_t)items * size;
  if (len < WINDOW_MAP_MIN || z->window_map != NULL)
    return malloc(len);
  if (z->sleeper != NULL && len == WINDOW_BYTES && z->sleeper->nspare > 0) {
    p = z->sleeper->spare[--z->sleeper->nspare];
  } else {
    p = mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1,
             0);
    if (p == MAP_FAILED)
      return Z_NULL;
  }
  z->window_map = p;
  z->window_map_len = len;
  return p;
}

static void z_free(voidpf opaque, voidpf p) {
  struct dgw_inflate *z = opaque;

  if (p != NULL && p == z->window_map) {
    struct dgw_inflate_sleeper *s = z->sleeper;

    if (s != NULL && z->window_map_len == WINDOW_BYTES &&
        s->nspare < SPARE_WINDOWS)
      s->spare[s->nspare++] = p;
    else
      munmap(p, z->window_map_len);
    z->window_map = NULL;
    z->window_map_len = 0;
    return;
  }
  free(p);
}

/* A z_stream with nothing in it and our allocator. */
static void stream_init(struct dgw_inflate *z) {
  memset(&z->zs, 0, sizeof z->zs);
  z->zs.zalloc = z_alloc;
  z->zs.zfree = z_free;
  z->zs.opaque = z;
  z->zs.next_in = Z_NULL;
  z->zs.avail_in = 0;
}

struct dgw_inflate_sleeper *dgw_inflate_sleeper_new(void) {
  return calloc(1, sizeof(struct dgw_inflate_sleeper));
}

void dgw_inflate_sleeper_free(struct dgw_inflate_sleeper *s) {
  if (s == NULL)
    return;
  if (s->ready)
    deflateEnd(&s->ds);
  while (s->nspare > 0)
    munmap(s->spare[--s->nspare], WINDOW_BYTES);
  free(s);
}

/*
 * Deflates the `have` bytes of s->window into s->packed, ending with a
 * sync flush so that inflating them leaves a stream between two blocks.
 * DGW_OK with the length in `*len`; DGW_ERR_AGAIN when they do not fit
 * (an incompressible window is not worth it); DGW_ERR_NOMEM.
 */
static int pack(struct dgw_inflate_sleeper *s, uInt have, size_t *len) {
  int rc;

  if (!s->ready) {
    s->ds.zalloc = Z_NULL;
    s->ds.zfree = Z_NULL;
    s->ds.opaque = Z_NULL;
    /* Level 1: a window is packed once per quiet spell, and JSON still
     * shrinks about five times. */
    rc = deflateInit2(&s->ds, 1, Z_DEFLATED, -15, 8, Z_DEFAULT_STRATEGY);
    if (rc != Z_OK)
      return rc == Z_MEM_ERROR ? DGW_ERR_NOMEM : DGW_ERR_INFLATE;
    s->ready = 1;
  } else if (deflateReset(&s->ds) != Z_OK) {
    return DGW_ERR_INFLATE;
  }
  s->ds.next_in = s->window;
  s->ds.avail_in = have;
  s->ds.next_out = s->packed;
  s->ds.avail_out = (uInt)sizeof s->packed;
  rc = deflate(&s->ds, Z_SYNC_FLUSH);
  /* All in, and room to spare: nothing of the flush is left pending. */
  if (rc != Z_OK || s->ds.avail_in != 0 || s->ds.avail_out == 0)
    return DGW_ERR_AGAIN;
  *len = sizeof s->packed - s->ds.avail_out;
  return DGW_OK;
}

/*
 * The packed form `z` woke from, with the `len` bytes at `tail` after it
 * as one stored block (after a sync flush the stream stands on a byte
 * boundary between blocks, where a stored block may follow: a 0 byte for
 * BFINAL 0 and BTYPE 00, LEN and NLEN, the bytes).  Restoring it inflates
 * the old window and then the tail, leaving the last 32 KiB of both: the
 * window as it is now.  DGW_OK with a new buffer, or DGW_ERR_NOMEM.
 */
static int append(const struct dgw_inflate *z, const uint8_t *tail, size_t len,
                  uint8_t **out, size_t *out_len) {
  size_t n = z->kept_len + (len > 0 ? 5 + len : 0);
  uint8_t *p = malloc(n > 0 ? n : 1);

  if (p == NULL)
    return DGW_ERR_NOMEM;
  memcpy(p, z->kept, z->kept_len);
  if (len > 0) {
    uint8_t *h = p + z->kept_len;

    h[0] = 0x00;
    h[1] = (uint8_t)(len & 0xff);
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)(~len & 0xff);
    h[4] = (uint8_t)(~len >> 8 & 0xff);
    memcpy(h + 5, tail, len);
  }
  *out = p;
  *out_len = n;
  return DGW_OK;
}

static void drop_kept(struct dgw_inflate *z) {
  free(z->kept);
  z->kept = NULL;
  z->kept_len = 0;
  z->kept_window = 0;
  z->kept_raw = 0;
}

int dgw_inflate_sleep(struct dgw_inflate *z, struct dgw_inflate_sleeper *s) {
  uint8_t *saved = NULL;
  size_t saved_len = 0, total = 0, raw = 0;
  uInt have = 0;
  uLong fresh;

  if (z == NULL || s == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (z->asleep)
    return DGW_OK;
  if (z->failed != 0 || z->partial || z->in_len != 0 || z->header_seen == 1)
    return DGW_ERR_AGAIN;
  z->sleeper = s;
  if (z->header_seen == 2) {
    int rc;

    /* Between two blocks on a byte boundary, not in the last block
     * (data_type exactly 128), with the 32 KiB window the sleeper's
     * deflate stream is made for (CINFO 7; Discord's). */
    if (z->zs.data_type != 128 || z->header[0] >> 4 != 7)
      return DGW_ERR_AGAIN;
    if (inflateGetDictionary(&z->zs, s->window, &have) != Z_OK)
      return DGW_ERR_AGAIN;
    fresh = z->zs.total_out - z->wake_out;
    if (z->kept != NULL && fresh <= APPEND_MAX && fresh <= have &&
        z->kept_raw + fresh <= APPEND_TOTAL) {
      rc = append(z, s->window + have - fresh, (size_t)fresh, &saved,
                  &saved_len);
      if (rc != DGW_OK)
        return rc;
      total = z->kept_window + (size_t)fresh;
      raw = z->kept_raw + (size_t)fresh;
    } else if (have > 0) {
      rc = pack(s, have, &saved_len);
      if (rc != DGW_OK)
        return rc;
      saved = malloc(saved_len);
      if (saved == NULL)
        return DGW_ERR_NOMEM;
      memcpy(saved, s->packed, saved_len);
      total = have;
    }
  }
  inflateEnd(&z->zs);
  drop_kept(z);
  z->asleep = 1;
  z->saved = saved;
  z->saved_len = saved_len;
  z->saved_window = total;
  z->saved_raw = raw;
  z->out_len = 0;
  release_out(z, 0);
  release_in(z, 0);
  return DGW_OK;
}

int dgw_inflate_asleep(const struct dgw_inflate *z) {
  return z != NULL && z->asleep;
}

size_t dgw_inflate_saved_bytes(const struct dgw_inflate *z) {
  return z == NULL ? 0 : z->saved_len;
}

/*
 * Gives an asleep `z` its zlib stream back: a fresh raw stream with the
 * header's window, which inflates the saved window first so that it ends
 * up holding exactly the bytes it held before, between two blocks.
 * Without a saved window (a new connection, or none yet) the stream is
 * simply new.  DGW_OK, DGW_ERR_NOMEM or DGW_ERR_INFLATE (a saved window
 * that does not inflate back whole: never, short of memory corruption).
 */
static int wake(struct dgw_inflate *z) {
  int bits = z->header_seen == 2 ? (int)(z->header[0] >> 4) + 8 : 15;
  uint8_t *scratch;
  int rc;

  stream_init(z);
  rc = inflateInit2(&z->zs, -bits);
  if (rc != Z_OK)
    return rc == Z_MEM_ERROR ? DGW_ERR_NOMEM : DGW_ERR_INFLATE;
  if (z->saved_window > 0) {
    scratch = malloc(z->saved_window);
    if (scratch == NULL) {
      inflateEnd(&z->zs);
      return DGW_ERR_NOMEM;
    }
    z->zs.next_in = z->saved;
    z->zs.avail_in = (uInt)z->saved_len;
    z->zs.next_out = scratch;
    z->zs.avail_out = (uInt)z->saved_window;
    rc = inflate(&z->zs, Z_SYNC_FLUSH);
    free(scratch);
    if (rc == Z_MEM_ERROR) {
      inflateEnd(&z->zs);
      return DGW_ERR_NOMEM;
    }
    if ((rc != Z_OK && rc != Z_BUF_ERROR) || z->zs.avail_in != 0 ||
        z->zs.avail_out != 0 || z->zs.data_type != 128) {
      inflateEnd(&z->zs);
      return DGW_ERR_INFLATE;
    }
  }
  /* Kept for a sleep that follows soon, with little inflated between. */
  drop_kept(z);
  z->kept = z->saved;
  z->kept_len = z->saved_len;
  z->kept_window = z->saved_window;
  z->kept_raw = z->saved_raw;
  z->wake_out = z->zs.total_out;
  z->saved = NULL;
  z->saved_len = 0;
  z->saved_window = 0;
  z->saved_raw = 0;
  z->asleep = 0;
  return DGW_OK;
}

int dgw_inflate_window_mapped(const struct dgw_inflate *z) {
  return z != NULL && z->window_map != NULL;
}

unsigned dgw_inflate_sleeper_spares(const struct dgw_inflate_sleeper *s) {
  return s == NULL ? 0 : s->nspare;
}
