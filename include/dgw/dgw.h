/*
 * dgw: a Discord Gateway client library for programs that run a libevent
 * loop.
 *
 * Every function here is called from the thread that runs the caller's
 * struct event_base; dgw creates no threads and keeps no global mutable
 * state, so several independent clients may live in one process.
 *
 * Errors: functions return 0 (DGW_OK) on success or a negative
 * enum dgw_error value; functions that return a pointer return NULL and, when
 * given an `int *err`, store the reason there.  dgw_strerror() turns a code
 * into a fixed English sentence.  The library never aborts, exits or prints
 * on its own.
 */
#ifndef DGW_DGW_H
#define DGW_DGW_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/version.h>

#ifdef __cplusplus
extern "C" {
#endif

/** Marks a symbol exported from libdgw; everything else is hidden. */
#if defined(DGW_BUILDING_LIBRARY) && defined(__GNUC__)
#define DGW_EXTERN __attribute__((visibility("default")))
#else
#define DGW_EXTERN
#endif

/**
 * Error codes.  0 is success; every error is negative, grouped by the layer
 * that reports it.  New codes may be added in later releases: treat an
 * unknown negative value as a generic failure.
 */
enum dgw_error {
  DGW_OK = 0,

  /* Caller and resource errors. */
  DGW_ERR_INVALID_ARGUMENT = -1, /**< a NULL, empty or out-of-range argument */
  DGW_ERR_NOMEM = -2,            /**< an allocation failed */
  DGW_ERR_STATE = -3,            /**< not allowed in the object's state */
  DGW_ERR_AGAIN = -4,            /**< not complete yet; more input needed */

  /* URL and connection establishment. */
  DGW_ERR_URL = -100,        /**< the URL is malformed or not ws:// wss:// */
  DGW_ERR_DNS = -101,        /**< the host name could not be resolved */
  DGW_ERR_CONNECT = -102,    /**< TCP connect failed (refused, unreachable) */
  DGW_ERR_TLS = -103,        /**< the TLS handshake or TLS stream failed */
  DGW_ERR_TLS_VERIFY = -104, /**< the peer certificate or host name failed
                                  verification */
  DGW_ERR_TIMEOUT = -105,    /**< connect, handshake or close timed out */
  DGW_ERR_HANDSHAKE = -106,  /**< the HTTP upgrade response was refused */

  /* WebSocket stream. */
  DGW_ERR_PROTOCOL = -200,      /**< the peer broke RFC 6455 framing */
  DGW_ERR_CLOSED = -201,        /**< the peer closed with a close frame */
  DGW_ERR_CONNECTION_LOST = -202, /**< the TCP stream ended without a close
                                       frame */
  DGW_ERR_MESSAGE_TOO_LARGE = -203, /**< an inbound message exceeded the cap */
  DGW_ERR_IO = -204,                /**< a socket read or write failed */

  /* Payloads. */
  DGW_ERR_INFLATE = -300,       /**< the zlib stream is corrupt */
  DGW_ERR_INFLATE_LIMIT = -301, /**< a payload inflated past the size cap */
  DGW_ERR_JSON = -302,          /**< a payload is not the JSON expected */
  DGW_ERR_PAYLOAD_TOO_LARGE = -303, /**< an outgoing payload is over 4096
                                         bytes */
};

/**
 * Returns a fixed, NUL-terminated English description of `error` (an
 * enum dgw_error value).  Unknown values give "unknown error".  The string
 * is static: never free it.
 */
DGW_EXTERN const char *dgw_strerror(int error);

/**
 * Returns the version string of the library actually linked, e.g. "0.1.0".
 * Compare with DGW_VERSION to detect a header/library mismatch.  Static
 * storage.
 */
DGW_EXTERN const char *dgw_version(void);

/** Severity of a log line, most severe first. */
enum dgw_log_level {
  DGW_LOG_ERROR = 0,
  DGW_LOG_WARN = 1,
  DGW_LOG_INFO = 2,
  DGW_LOG_DEBUG = 3,
};

/**
 * A log sink.  dgw never writes to stdout or stderr itself: it hands every
 * log line to a callback of this type.  `message` is NUL-terminated, has no
 * trailing newline and is valid only during the call.  Log lines never
 * contain the bot token.
 */
typedef void (*dgw_log_fn)(enum dgw_log_level level, const char *message,
                           void *user_data);

/**
 * Returns the fixed lower-case name of `level` ("error", "warn", "info",
 * "debug"), or "?" for any other value.  Static storage.
 */
DGW_EXTERN const char *dgw_log_level_name(enum dgw_log_level level);

#ifdef __cplusplus
}
#endif

#endif /* DGW_DGW_H */
