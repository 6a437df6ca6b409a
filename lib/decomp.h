/*
 * The transport-compression seam: one decompressor per shard, chosen by
 * the `compress=` the shard asks for, without I/O.  Internal to dgw.
 *
 * Two implementations sit behind it: zlib-stream (inflate.c, one z_stream
 * per connection, a payload ends with the 00 00 FF FF of a sync flush) and
 * zstd-stream (zstd_stream.c, one ZSTD_DStream per connection, a payload
 * ends where the server flushed a block).  Both keep the same promises:
 * the decompressed size of one payload is capped, a corrupt stream fails
 * the object until the next connection, memory stays bounded.  The shard
 * (gateway.c) sees only this header.
 *
 * "none" (no transport compression asked for) still gets a zlib object,
 * as dgw always did: a binary message is then inflated as zlib-stream.
 *
 * Not thread-safe: one thread at a time per object.
 */
#ifndef DGW_DECOMP_H
#define DGW_DECOMP_H

#include <stddef.h>
#include <stdint.h>

/* What a shard asks the gateway for in `compress=`. */
enum dgw_compression {
  DGW_COMPRESSION_NONE = 0,
  DGW_COMPRESSION_ZLIB = 1, /* compress=zlib-stream, the default */
  DGW_COMPRESSION_ZSTD = 2, /* compress=zstd-stream */
};

/*
 * Parses a compression name: "zlib-stream", "zstd-stream" or "none" into
 * `*kind`.  Returns DGW_OK; DGW_ERR_UNSUPPORTED for "zstd-stream" when
 * this build has no libzstd (`*kind` unchanged); DGW_ERR_INVALID_ARGUMENT
 * for NULL arguments or any other name.
 */
int dgw_compression_parse(const char *name, int *kind);

/* The name of `kind` ("zlib-stream", "zstd-stream", "none"; "none" for an
 * unknown value).  Static storage. */
const char *dgw_compression_name(int kind);

/* The URL query part a shard appends for `kind`: "&compress=zlib-stream",
 * "&compress=zstd-stream", or "" for none (and unknown values). */
const char *dgw_compression_query(int kind);

/* 1 when this build can decompress `kind`, else 0. */
int dgw_compression_available(int kind);

struct dgw_decomp;

/*
 * Creates a decompressor for `kind` (NONE gives zlib, see above) whose
 * payloads are capped at `max_output` decompressed bytes (0: 64 MiB,
 * DGW_INFLATE_DEFAULT_MAX).  Returns it and stores DGW_OK in `*err`; on
 * failure returns NULL and stores DGW_ERR_NOMEM, DGW_ERR_INFLATE (the
 * library refused to start), DGW_ERR_UNSUPPORTED (zstd without libzstd)
 * or DGW_ERR_INVALID_ARGUMENT (unknown kind).  `err` may be NULL.
 */
struct dgw_decomp *dgw_decomp_new(int kind, size_t max_output, int *err);

/* Releases `d` and everything it holds.  NULL is a no-op. */
void dgw_decomp_free(struct dgw_decomp *d);

/* A new connection starts: fresh stream, nothing buffered, not failed;
 * the byte counters are kept.  NULL is a no-op. */
void dgw_decomp_reset(struct dgw_decomp *d);

/*
 * Feeds one binary WebSocket message.  The results and their meaning are
 * exactly dgw_inflate_push()'s (see inflate.h): DGW_OK with a
 * NUL-terminated payload in `*out` (owned by `d`, valid until the next
 * push, reset, done or free), DGW_ERR_AGAIN, DGW_ERR_INFLATE (corrupt
 * stream), DGW_ERR_INFLATE_LIMIT, DGW_ERR_NOMEM, DGW_ERR_INVALID_ARGUMENT.
 * The three failures leave `d` failed until dgw_decomp_reset().
 */
int dgw_decomp_push(struct dgw_decomp *d, const uint8_t *msg, size_t len,
                    const char **out, size_t *out_len);

/* The caller is done with the last payload: large buffers may go now.
 * NULL is a no-op. */
void dgw_decomp_done(struct dgw_decomp *d);

/*
 * Lets a quiet connection's decompressor give back most of its memory
 * until its next message (see dgw_inflate_sleep()): zlib-stream only.
 * DGW_OK (asleep), DGW_ERR_AGAIN (not now, or zstd-stream: nothing done),
 * DGW_ERR_NOMEM, DGW_ERR_INVALID_ARGUMENT (NULL).  The next push wakes it.
 */
struct dgw_inflate_sleeper;
int dgw_decomp_sleep(struct dgw_decomp *d, struct dgw_inflate_sleeper *s);

/* 1 when `d` is asleep, else 0 (also for NULL). */
int dgw_decomp_asleep(const struct dgw_decomp *d);

/* The bytes of the packed window an asleep `d` keeps; 0 otherwise. */
size_t dgw_decomp_saved_bytes(const struct dgw_decomp *d);

/* Compressed bytes pushed and decompressed bytes returned since creation
 * (see dgw_inflate_bytes_in/out).  0 for NULL. */
uint64_t dgw_decomp_bytes_in(const struct dgw_decomp *d);
uint64_t dgw_decomp_bytes_out(const struct dgw_decomp *d);

/*
 * How many more compressed bytes the next message may bring before a push
 * is bound to fail with DGW_ERR_INFLATE_LIMIT: the cap less the compressed
 * bytes `d` holds back while it waits for the end of a payload (zlib; the
 * zstd object consumes its input as it comes and holds none back).  The
 * shard gives this to the WebSocket layer so that a frame which could only
 * be refused is refused at its header, before it is read (issue 15).
 * SIZE_MAX for NULL.
 */
size_t dgw_decomp_room(const struct dgw_decomp *d);

/* "corrupt zlib stream" or "corrupt zstd stream": the reason a shard logs
 * for DGW_ERR_INFLATE.  Static storage; NULL gives the zlib text. */
const char *dgw_decomp_corrupt_why(const struct dgw_decomp *d);

#endif /* DGW_DECOMP_H */
