/*
 * Transport decompression for Discord's `compress=zlib-stream`, without I/O.
 * Internal to dgw.
 *
 * The whole connection is one zlib (RFC 1950) stream.  The server ends every
 * payload with a Z_SYNC_FLUSH, so a complete payload ends with the four bytes
 * 00 00 FF FF.  The caller hands over each binary WebSocket message as it
 * arrives; messages are collected until the collected bytes end with that
 * suffix, then inflated through the one z_stream of the connection, which
 * yields one payload (JSON text).  A payload may span any number of messages
 * and the suffix itself may be split across them.
 *
 * One struct dgw_inflate per connection; call dgw_inflate_reset() when a new
 * connection (including a resume) starts.  An object is not thread-safe: use
 * it from one thread at a time.
 */
#ifndef DGW_INFLATE_H
#define DGW_INFLATE_H

#include <stddef.h>
#include <stdint.h>

/*
 * Default cap on one decompressed payload, in bytes: 64 MiB.  Discord sends
 * multi-megabyte READY and GUILD_CREATE payloads (5.6 MB has been seen).
 */
#define DGW_INFLATE_DEFAULT_MAX ((size_t)64 * 1024 * 1024)

struct dgw_inflate;

/*
 * Creates a decompressor with a fresh zlib stream.
 *
 * `max_output` caps the decompressed size of one payload in bytes, and also
 * the compressed bytes held back while waiting for a suffix; 0 means
 * DGW_INFLATE_DEFAULT_MAX.  Output memory never exceeds the cap plus two
 * bytes, however well a hostile stream compresses.
 *
 * Returns the new object, to be released with dgw_inflate_free(), and stores
 * DGW_OK in `*err`.  On failure returns NULL and stores DGW_ERR_NOMEM (or
 * DGW_ERR_INFLATE if zlib refuses to initialise, e.g. a library version
 * mismatch) in `*err`.  `err` may be NULL.
 */
struct dgw_inflate *dgw_inflate_new(size_t max_output, int *err);

/*
 * Releases `z`, its zlib stream and its buffers.  Any payload pointer handed
 * out by dgw_inflate_push() becomes invalid.  `z` may be NULL.
 */
void dgw_inflate_free(struct dgw_inflate *z);

/*
 * Prepares `z` for a new connection: resets the zlib stream (the compression
 * context of the old connection is gone), drops buffered input and any
 * partly inflated payload, clears the failed state, and releases buffers
 * that grew beyond the keep threshold.  The byte counters are kept.  Any
 * payload pointer handed out before becomes invalid.  `z` may be NULL.
 */
void dgw_inflate_reset(struct dgw_inflate *z);

/*
 * Feeds one binary WebSocket message of `len` bytes at `msg`.  The bytes are
 * copied if they must be kept; `msg` may be reused or freed as soon as the
 * call returns.  `msg` may be NULL when `len` is 0.
 *
 * Returns:
 *  - DGW_OK: a payload is complete.  `*out` points to its `*out_len`
 *    decompressed bytes followed by a NUL (`(*out)[*out_len] == '\0'`), so
 *    JSON text can be used as a C string.  The bytes are owned by `z` and
 *    stay valid until the next dgw_inflate_push(), dgw_inflate_reset() or
 *    dgw_inflate_free() on `z`.  A payload may be empty (`*out_len` 0).
 *  - DGW_ERR_AGAIN: the message was taken in but no payload is complete yet
 *    (the bytes so far do not end with 00 00 FF FF, or a message boundary
 *    happened to end with those bytes inside a deflate block, where they are
 *    data and not a flush marker).  An empty message (`len` 0) changes
 *    nothing and always gives DGW_ERR_AGAIN.
 *  - DGW_ERR_INFLATE: the stream is corrupt (a zlib data error, a preset
 *    dictionary request, or the end of the zlib stream: Discord never ends
 *    the stream, so a stream end means a server or framing bug).
 *  - DGW_ERR_INFLATE_LIMIT: the payload inflates past the cap, or the bytes
 *    buffered while waiting for a suffix would exceed the cap.  Inflation
 *    stops as soon as the output passes the cap.
 *  - DGW_ERR_NOMEM: an allocation failed (in dgw or in zlib).
 *  - DGW_ERR_INVALID_ARGUMENT: `z`, `out` or `out_len` is NULL, or `msg` is
 *    NULL with a non-zero `len`.  The object is not changed.
 *
 * On every result but DGW_OK, `*out` is set to NULL and `*out_len` to 0
 * (when those pointers are not NULL).
 *
 * DGW_ERR_INFLATE, DGW_ERR_INFLATE_LIMIT and DGW_ERR_NOMEM leave `z` failed:
 * the stream position is lost, the buffered bytes are dropped, and every
 * later push returns that same error at once, without touching zlib, until
 * dgw_inflate_reset().  The connection should then be closed.
 */
int dgw_inflate_push(struct dgw_inflate *z, const uint8_t *msg, size_t len,
                     const char **out, size_t *out_len);

/*
 * Tells `z` that the caller is done with the payload the last
 * dgw_inflate_push() returned: an output buffer that grew past 32 KiB for
 * it is released now rather than at the next push, so that a connection
 * that goes quiet after a large payload does not keep its buffer.  The
 * payload pointer becomes invalid.  A payload still being assembled (the
 * last push returned DGW_ERR_AGAIN) is kept.  `z` may be NULL.
 */
void dgw_inflate_done(struct dgw_inflate *z);

/*
 * Total compressed bytes given to dgw_inflate_push() since creation, counting
 * every push that found the object healthy (also the one that failed it), but
 * not pushes refused for a bad argument or a failed object.  Not cleared by
 * dgw_inflate_reset().  Returns 0 for a NULL `z`.
 */
uint64_t dgw_inflate_bytes_in(const struct dgw_inflate *z);

/*
 * Total decompressed bytes of the payloads returned with DGW_OK since
 * creation (NUL terminators not counted).  Not cleared by
 * dgw_inflate_reset().  Returns 0 for a NULL `z`.
 */
uint64_t dgw_inflate_bytes_out(const struct dgw_inflate *z);

/*
 * Compressed bytes `z` holds back while it waits for a payload's suffix
 * (0 when the last message completed a payload or `z` is failed).  A push
 * fails with DGW_ERR_INFLATE_LIMIT once these plus its message would pass
 * the cap, so the next message can be refused before it is read (issue
 * 15).  Returns 0 for a NULL `z`.
 */
size_t dgw_inflate_held(const struct dgw_inflate *z);

/*
 * Quiet connections.  An idle shard's zlib stream holds a 32 KiB window
 * and 7 KiB of state, most of what the shard costs.  dgw_inflate_sleep()
 * deflates the window into a buffer of its own size (JSON shrinks about
 * five times) and frees the zlib state; the next dgw_inflate_push() that
 * brings bytes restores the stream exactly (a fresh raw stream inflates
 * the saved window first) and goes on.  The payloads are the same with or
 * without sleeps in between.
 *
 * The deflate stream and the scratch buffers a sleep needs (about 330 KiB
 * once the first window is packed) live in a struct dgw_inflate_sleeper,
 * shared by every decompressor used from the same thread.
 */
struct dgw_inflate_sleeper;

/* A sleeper, or NULL when out of memory.  Its deflate stream is made on
 * the first sleep.  It also keeps up to four of the 32 KiB windows that
 * sleeping streams gave back, mapped, for the next streams that wake: a
 * quiet shard's heartbeat ACK then costs no mmap, munmap or page fault.  Free it with
 * dgw_inflate_sleeper_free() only after every object it put to sleep
 * (they give their windows back to it). */
struct dgw_inflate_sleeper *dgw_inflate_sleeper_new(void);

/* Releases `s`.  NULL is a no-op. */
void dgw_inflate_sleeper_free(struct dgw_inflate_sleeper *s);

/*
 * Puts `z` to sleep between two payloads.  Returns DGW_OK (asleep now, or
 * already); DGW_ERR_AGAIN when `z` cannot sleep now and is left as it
 * was: a payload is partly in, `z` is failed, the stream stands inside a
 * deflate block, its window is smaller than 32 KiB, or the window does
 * not compress; DGW_ERR_NOMEM (left as it was, awake); or
 * DGW_ERR_INVALID_ARGUMENT for a NULL argument.  The last payload's
 * pointer becomes invalid.  A `z` that has read nothing of its stream
 * yet sleeps by freeing its state.
 */
int dgw_inflate_sleep(struct dgw_inflate *z, struct dgw_inflate_sleeper *s);

/* 1 when `z` is asleep, else 0 (also for NULL). */
int dgw_inflate_asleep(const struct dgw_inflate *z);

/* The bytes of the deflated window an asleep `z` keeps (0 when awake, or
 * asleep with an empty window, or NULL). */
size_t dgw_inflate_saved_bytes(const struct dgw_inflate *z);

/* The windows `s` keeps for the next streams that wake (0 to 4; 0 for
 * NULL).  For tests. */
unsigned dgw_inflate_sleeper_spares(const struct dgw_inflate_sleeper *s);

/* 1 while zlib's window of `z` sits on pages of its own (mapped when the
 * stream first needs it, unmapped when it sleeps, resets to a smaller
 * window or is freed), else 0.  For tests. */
int dgw_inflate_window_mapped(const struct dgw_inflate *z);

#endif /* DGW_INFLATE_H */
