/*
 * The RFC 6455 opening handshake, both sides, without I/O: building the
 * client's upgrade request, checking the server's response, and (for the
 * mock gateway) parsing a client's request.  Internal to dgw.
 */
#ifndef DGW_HANDSHAKE_H
#define DGW_HANDSHAKE_H

#include <stddef.h>

/* Length of a base64 Sec-WebSocket-Key (16 bytes) without the NUL. */
#define DGW_WS_KEY_LEN 24
/* Length of a base64 Sec-WebSocket-Accept (SHA-1, 20 bytes) without NUL. */
#define DGW_WS_ACCEPT_LEN 28
/* Largest response or request header block accepted, in bytes. */
#define DGW_HANDSHAKE_MAX_HEADER 16384

/*
 * Fills `key` with a fresh Sec-WebSocket-Key: 16 bytes from the OpenSSL
 * CSPRNG, base64-encoded, NUL-terminated.  Returns DGW_OK or DGW_ERR_NOMEM
 * when the CSPRNG fails.
 */
int dgw_ws_make_key(char key[DGW_WS_KEY_LEN + 1]);

/*
 * Computes Sec-WebSocket-Accept for `key` (base64(SHA-1(key + GUID))) into
 * `accept`, NUL-terminated.  `key_len` is the length of `key`.
 */
void dgw_ws_accept_key(const char *key, size_t key_len,
                       char accept[DGW_WS_ACCEPT_LEN + 1]);

/*
 * Writes the client upgrade request for `host_header` (the Host value,
 * with ":port" when not the scheme's default) and `path_query` (starting
 * with '/') with `key` into `out` (size `out_size`).  Returns the length
 * written (without NUL) or DGW_ERR_INVALID_ARGUMENT when it does not fit.
 */
int dgw_handshake_request(char *out, size_t out_size, const char *host_header,
                          const char *path_query, const char *key);

/*
 * Checks a server's upgrade response at the start of `buf` (length `len`)
 * against `expected_accept`.  On success returns DGW_OK and sets
 * `*header_len` to the bytes of the header block including the final
 * CRLFCRLF; bytes after it are already WebSocket frames.  Returns
 * DGW_ERR_AGAIN when the header block is not complete yet, and
 * DGW_ERR_HANDSHAKE with a readable sentence in `reason` (size
 * `reason_size`) when the response is refused: not HTTP/1.1 101, missing or
 * wrong Upgrade / Connection / Sec-WebSocket-Accept, an extension or
 * subprotocol we did not ask for, or a header block over
 * DGW_HANDSHAKE_MAX_HEADER bytes.
 */
int dgw_handshake_check_response(const char *buf, size_t len,
                                 const char *expected_accept,
                                 size_t *header_len, char *reason,
                                 size_t reason_size);

/* A client's upgrade request as the server side sees it. */
struct dgw_handshake_request_info {
  char path_query[2048];        /* request target, NUL-terminated */
  char key[DGW_WS_KEY_LEN + 1]; /* Sec-WebSocket-Key */
};

/*
 * Parses a client's upgrade request at the start of `buf`.  Returns DGW_OK
 * with `*header_len` and `info` filled, DGW_ERR_AGAIN when incomplete, or
 * DGW_ERR_HANDSHAKE with `reason` for a request that is not a valid
 * WebSocket upgrade (method, version 13, Upgrade, Connection, key).
 */
int dgw_handshake_parse_request(const char *buf, size_t len, size_t *header_len,
                                struct dgw_handshake_request_info *info,
                                char *reason, size_t reason_size);

#endif /* DGW_HANDSHAKE_H */
