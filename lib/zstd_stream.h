/*
 * Transport decompression for Discord's `compress=zstd-stream`, without
 * I/O.  Internal to dgw; the shard reaches it through decomp.h.
 *
 * The whole connection is one zstd frame that never ends: the server
 * flushes a block (ZSTD_e_flush) after every payload, so each WebSocket
 * message is one payload.  The decompressor is fed each binary message as
 * it arrives; a payload is complete when all input is consumed, all output
 * flushed, and the decoder stands between blocks (it asks for the next
 * block header and holds no byte of it), so a payload split over several
 * messages is assembled too, and a message cut inside a block waits for
 * the rest.  An ended frame (the server used ZSTD_e_end) also completes a
 * payload; the next message may start a new frame.  One case cannot be
 * told apart: a payload of more than one block (over 128 KiB of JSON) cut
 * into messages exactly between two of its blocks looks whole at the cut;
 * its first part then fails as JSON and the shard resumes.  Discord sends
 * one payload per message (protocol §7.2), so only a splitting proxy
 * could do this.
 *
 * Memory: the decoder's window is capped at 2^DGW_ZSTD_WINDOW_LOG_MAX
 * bytes (a stream that declares a larger one fails with
 * DGW_ERR_INFLATE_LIMIT); the output of one payload at the cap + 2 bytes;
 * no input is held back (the decoder keeps at most one block, 128 KiB).
 *
 * Only built with libzstd (HAVE_ZSTD); without it decomp.c answers
 * DGW_ERR_UNSUPPORTED and nothing here exists.
 */
#ifndef DGW_ZSTD_STREAM_H
#define DGW_ZSTD_STREAM_H

#include <stddef.h>
#include <stdint.h>

/* Largest window accepted: 2^23 = 8 MiB (zstd's levels 1-19 use at most
 * 2^23 on a stream of unknown size; libzstd's own default limit is 2^27). */
#define DGW_ZSTD_WINDOW_LOG_MAX 23

struct dgw_unzstd;

/*
 * Creates a decompressor with a fresh stream; `max_output` caps one
 * payload's decompressed size (0: DGW_INFLATE_DEFAULT_MAX).  Returns it
 * and DGW_OK in `*err`, or NULL and DGW_ERR_NOMEM (`err` may be NULL).
 */
struct dgw_unzstd *dgw_unzstd_new(size_t max_output, int *err);

/* Releases `u` (NULL: no-op). */
void dgw_unzstd_free(struct dgw_unzstd *u);

/* A new connection: fresh stream, nothing held, not failed; counters
 * kept; a grown output buffer released.  NULL: no-op. */
void dgw_unzstd_reset(struct dgw_unzstd *u);

/*
 * Feeds one binary message; results as dgw_inflate_push() (inflate.h):
 * DGW_OK with `*out`/`*out_len` (NUL-terminated, owned by `u`, valid until
 * the next push, reset, done or free), DGW_ERR_AGAIN (no payload complete
 * yet; an empty message changes nothing), DGW_ERR_INFLATE (a zstd error:
 * corrupt data, a bad checksum, a dictionary asked for),
 * DGW_ERR_INFLATE_LIMIT (a payload past the cap, or a window past
 * DGW_ZSTD_WINDOW_LOG_MAX), DGW_ERR_NOMEM, DGW_ERR_INVALID_ARGUMENT (NULL
 * `u`, `out`, `out_len`, or NULL `msg` with a length; `u` unchanged).
 * The three failures leave `u` failed until dgw_unzstd_reset().
 */
int dgw_unzstd_push(struct dgw_unzstd *u, const uint8_t *msg, size_t len,
                    const char **out, size_t *out_len);

/* Done with the last payload: an output buffer past 32 KiB goes now; a
 * payload still being assembled is kept.  NULL: no-op. */
void dgw_unzstd_done(struct dgw_unzstd *u);

/* Counters as dgw_inflate_bytes_in/out (0 for NULL). */
uint64_t dgw_unzstd_bytes_in(const struct dgw_unzstd *u);
uint64_t dgw_unzstd_bytes_out(const struct dgw_unzstd *u);

#endif /* DGW_ZSTD_STREAM_H */
