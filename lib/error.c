/* dgw_strerror(), dgw_version() and other fixed strings, and the one
 * writer of explanations into a caller's `why` buffer. */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>

#include <dgw/dgw.h>

#include "why.h"

const char *dgw_strerror(int error) {
  switch (error) {
  case DGW_OK:
    return "success";
  case DGW_ERR_INVALID_ARGUMENT:
    return "invalid argument";
  case DGW_ERR_NOMEM:
    return "out of memory";
  case DGW_ERR_STATE:
    return "operation not allowed in the current state";
  case DGW_ERR_AGAIN:
    return "incomplete input, more data needed";
  case DGW_ERR_QUEUE_FULL:
    return "send queue full";
  case DGW_ERR_SESSION_LOST:
    return "the session ended before the command was sent or answered";
  case DGW_ERR_RATE_LIMITED:
    return "rate limited by Discord; retry later";
  case DGW_ERR_UNSUPPORTED:
    return "not supported by this build";
  case DGW_ERR_URL:
    return "malformed or unsupported URL";
  case DGW_ERR_DNS:
    return "host name could not be resolved";
  case DGW_ERR_CONNECT:
    return "TCP connection failed";
  case DGW_ERR_TLS:
    return "TLS handshake or stream failed";
  case DGW_ERR_TLS_VERIFY:
    return "TLS certificate verification failed";
  case DGW_ERR_TIMEOUT:
    return "timed out";
  case DGW_ERR_HANDSHAKE:
    return "WebSocket upgrade refused or malformed";
  case DGW_ERR_PROTOCOL:
    return "WebSocket protocol error";
  case DGW_ERR_CLOSED:
    return "connection closed by peer";
  case DGW_ERR_CONNECTION_LOST:
    return "connection lost without a close frame";
  case DGW_ERR_MESSAGE_TOO_LARGE:
    return "inbound message too large";
  case DGW_ERR_IO:
    return "I/O error (socket or file)";
  case DGW_ERR_INFLATE:
    return "corrupt zlib stream";
  case DGW_ERR_INFLATE_LIMIT:
    return "decompressed payload exceeds the size cap";
  case DGW_ERR_JSON:
    return "malformed JSON payload";
  case DGW_ERR_PAYLOAD_TOO_LARGE:
    return "outgoing payload exceeds 4096 bytes";
  case DGW_ERR_NOT_FOUND:
    return "no value at that JSON Pointer";
  case DGW_ERR_TYPE:
    return "the value has another type";
  case DGW_ERR_RANGE:
    return "the number does not fit the type";
  case DGW_ERR_BUFFER_TOO_SMALL:
    return "the buffer is too small";
  case DGW_ERR_PLUGIN:
    return "plugin refused";
  case DGW_ERR_AUTH:
    return "the bot token was refused (401 Unauthorized)";
  case DGW_ERR_HTTP:
    return "the REST API refused the request";
  }
  return "unknown error";
}

int dgw_error_is_fatal(int error) {
  switch (error) {
  case DGW_OK:
  case DGW_ERR_AGAIN:
  case DGW_ERR_QUEUE_FULL:
  case DGW_ERR_SESSION_LOST:
  case DGW_ERR_RATE_LIMITED:
  case DGW_ERR_DNS:
  case DGW_ERR_CONNECT:
  case DGW_ERR_TLS:
  case DGW_ERR_TLS_VERIFY:
  case DGW_ERR_TIMEOUT:
  case DGW_ERR_HANDSHAKE:
  case DGW_ERR_PROTOCOL:
  case DGW_ERR_CLOSED:
  case DGW_ERR_CONNECTION_LOST:
  case DGW_ERR_MESSAGE_TOO_LARGE:
  case DGW_ERR_IO:
  case DGW_ERR_INFLATE:
  case DGW_ERR_INFLATE_LIMIT:
    return 0;
  case DGW_ERR_INVALID_ARGUMENT:
  case DGW_ERR_NOMEM:
  case DGW_ERR_STATE:
  case DGW_ERR_URL:
  case DGW_ERR_JSON:
  case DGW_ERR_PAYLOAD_TOO_LARGE:
  case DGW_ERR_PLUGIN:
  case DGW_ERR_AUTH:
  case DGW_ERR_HTTP:
  case DGW_ERR_NOT_FOUND:
  case DGW_ERR_TYPE:
  case DGW_ERR_RANGE:
  case DGW_ERR_BUFFER_TOO_SMALL:
    return 1;
  }
  return error < 0; /* unknown: do not retry blindly */
}

const char *dgw_version(void) {
  return DGW_VERSION_STRING;
}

const char *dgw_log_level_name(enum dgw_log_level level) {
  switch (level) {
  case DGW_LOG_ERROR:
    return "error";
  case DGW_LOG_WARN:
    return "warn";
  case DGW_LOG_INFO:
    return "info";
  case DGW_LOG_DEBUG:
    return "debug";
  }
  return "?";
}

void dgw_set_why(char *why, size_t why_size, const char *fmt, ...) {
  va_list ap;

  if (why == NULL || why_size == 0)
    return;
  va_start(ap, fmt);
  vsnprintf(why, why_size, fmt, ap);
  va_end(ap);
}
