/*
 * libFuzzer harnesses of dgw's parsers (docs/reliability.md).  Each
 * fuzz_*.c defines LLVMFuzzerTestOneInput; with clang (configure
 * --enable-fuzz) it links with libFuzzer, and with any compiler it links
 * with replay.c, which feeds it every file of its seed corpus as an
 * ordinary test.
 */
#ifndef DGW_FUZZ_H
#define DGW_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* One input; returns 0.  A crash, a sanitizer report or an abort() is a
 * finding. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/*
 * Writes `size` bytes at `data` to this process's scratch file (created on
 * first use in $TMPDIR, removed at exit) and returns its path; NULL when
 * it cannot be written.  For the parsers that read a file by path.
 */
const char *fuzz_scratch_file(const uint8_t *data, size_t size);

struct dgw_decomp;

/*
 * The decompressor harnesses' driver (stream.c): a new decompressor of
 * `kind` (lib/decomp.h) with output cap `cap`, fed data[1..] cut into
 * messages of data[0] bytes (0: one message), the push contract checked on
 * each (fuzz_fail on a breach); after a failed message, half the inputs
 * (data[0] odd) reset and go on.  Returns the decompressor for the
 * harness's own checks (it frees it), or NULL (empty input, none made).
 */
struct dgw_decomp *fuzz_decomp_stream(int kind, const uint8_t *data,
                                      size_t size, size_t cap);

/* Aborts with `what` on stderr: a harness's own check failed. */
void fuzz_fail(const char *what) __attribute__((noreturn));

#endif /* DGW_FUZZ_H */
