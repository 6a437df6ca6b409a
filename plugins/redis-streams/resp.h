/*
 * redis-streams' RESP writer: a command as an array of bulk strings,
 *
 *   *ARGC\r\n $LEN\r\n BYTES\r\n ...
 *
 * written by the plugin into the entry it keeps until Redis answered, so
 * that each field (the raw `d` above all) is copied once on its way to
 * hiredis (redis_command_formatted(): hiredis appends it to its output
 * buffer as it is).  Binary-safe: lengths, never terminators.  Internal to
 * the plugin; tests/test_streams_resp.c checks it.
 */
#ifndef DGW_REDIS_STREAMS_RESP_H
#define DGW_REDIS_STREAMS_RESP_H

#include <stddef.h>

/* The bytes resp_write() writes for `argc` arguments of lengths `len`. */
size_t resp_size(int argc, const size_t *len);

/* Writes the command into `out` (resp_size() bytes of room; not
 * NUL-terminated) and returns the bytes written.  `argv[i]` may be NULL
 * when `len[i]` is 0. */
size_t resp_write(char *out, int argc, const char *const *argv,
                  const size_t *len);

#endif /* DGW_REDIS_STREAMS_RESP_H */
