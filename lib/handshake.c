/*
 * The RFC 6455 opening handshake without I/O.  We write the HTTP/1.1 upgrade
 * ourselves (wslay does framing only) and check the response strictly: a
 * client that accepts any 101 could be talking to a misconfigured proxy.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/rand.h>

#include <dgw/dgw.h>

#include "handshake.h"
#include "why.h"

static const char ws_guid[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* One header field, pointing into the caller's buffer. */
struct header {
  const char *name;
  size_t name_len;
  const char *value;
  size_t value_len;
};

int dgw_ws_make_key(char key[DGW_WS_KEY_LEN + 1]) {
  unsigned char nonce[16];

  if (RAND_bytes(nonce, (int)sizeof(nonce)) != 1) {
    ERR_clear_error(); /* as in dgw_ws_accept_key() */
    return DGW_ERR_NOMEM;
  }
  EVP_EncodeBlock((unsigned char *)key, nonce, (int)sizeof(nonce));
  return DGW_OK;
}

void dgw_ws_accept_key(const char *key, size_t key_len,
                       char accept[DGW_WS_ACCEPT_LEN + 1]) {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX *md = EVP_MD_CTX_new();

  if (md == NULL || EVP_DigestInit_ex(md, EVP_sha1(), NULL) != 1 ||
      EVP_DigestUpdate(md, key, key_len) != 1 ||
      EVP_DigestUpdate(md, ws_guid, sizeof(ws_guid) - 1) != 1 ||
      EVP_DigestFinal_ex(md, digest, &len) != 1 || len != 20) {
    /* Only under memory exhaustion: an accept value that can never match
     * makes the handshake fail closed.  OpenSSL queued the error (with
     * blocks of its own) on this thread: clear it, or it stays there for
     * the application's next SSL_get_error() to trip over. */
    memset(digest, 0, sizeof(digest));
    ERR_clear_error();
  }
  EVP_MD_CTX_free(md);
  EVP_EncodeBlock((unsigned char *)accept, digest, 20);
}

int dgw_handshake_request(char *out, size_t out_size, const char *host_header,
                          const char *path_query, const char *key) {
  int n = snprintf(out, out_size,
                   "GET %s HTTP/1.1\r\n"
                   "Host: %s\r\n"
                   "Upgrade: websocket\r\n"
                   "Connection: Upgrade\r\n"
                   "Sec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n"
                   "User-Agent: dgw/" DGW_VERSION_STRING "\r\n"
                   "\r\n",
                   path_query, host_header, key);

  if (n < 0 || (size_t)n >= out_size)
    return DGW_ERR_INVALID_ARGUMENT;
  return n;
}

/* Finds the end of the header block ("\r\n\r\n"); returns its length
 * including the terminator, 0 when not there yet. */
static size_t header_block_len(const char *buf, size_t len) {
  const char *p = buf;
  const char *end = buf + len;

  while (p + 4 <= end) {
    const char *cr = memchr(p, '\r', (size_t)(end - p));

    if (cr == NULL || cr + 4 > end)
      return 0;
    if (cr[1] == '\n' && cr[2] == '\r' && cr[3] == '\n')
      return (size_t)(cr + 4 - buf);
    p = cr + 1;
  }
  return 0;
}

static int is_ows(char c) {
  return c == ' ' || c == '\t';
}

/* Splits the header field at [p, eol) into name and trimmed value.
 * Returns 0 on a malformed line. */
static int parse_field(const char *p, const char *eol, struct header *h) {
  const char *colon = memchr(p, ':', (size_t)(eol - p));
  const char *v;
  const char *ve;

  if (colon == NULL || colon == p)
    return 0;
  for (const char *q = p; q < colon; q++)
    if (is_ows(*q) || (unsigned char)*q < 0x21 || *q == 0x7f)
      return 0;
  v = colon + 1;
  ve = eol;
  while (v < ve && is_ows(*v))
    v++;
  while (ve > v && is_ows(ve[-1]))
    ve--;
  /* RFC 7230 3.2: a value is visible characters, spaces and tabs; a NUL
   * or another control byte would cut it short where it is used as a
   * string (found by tests/fuzz/fuzz_handshake: a key of NUL bytes). */
  for (const char *q = v; q < ve; q++)
    if (((unsigned char)*q < 0x20 && *q != '\t') || *q == 0x7f)
      return 0;
  h->name = p;
  h->name_len = (size_t)(colon - p);
  h->value = v;
  h->value_len = (size_t)(ve - v);
  return 1;
}

static int name_is(const struct header *h, const char *name) {
  return strlen(name) == h->name_len &&
         strncasecmp(h->name, name, h->name_len) == 0;
}

static int value_is(const struct header *h, const char *value) {
  return strlen(value) == h->value_len &&
         strncasecmp(h->value, value, h->value_len) == 0;
}

/* True when the comma-separated list in h's value holds `token`
 * (case-insensitive), e.g. "keep-alive, Upgrade". */
static int value_has_token(const struct header *h, const char *token) {
  const char *p = h->value;
  const char *end = h->value + h->value_len;
  size_t tlen = strlen(token);

  while (p < end) {
    const char *comma = memchr(p, ',', (size_t)(end - p));
    const char *te = comma != NULL ? comma : end;
    const char *ts = p;

    while (ts < te && is_ows(*ts))
      ts++;
    while (te > ts && is_ows(te[-1]))
      te--;
    if ((size_t)(te - ts) == tlen && strncasecmp(ts, token, tlen) == 0)
      return 1;
    if (comma == NULL)
      break;
    p = comma + 1;
  }
  return 0;
}

/* Walks the header fields after the start line.  `start` points just past
 * the start line's CRLF; `end` at the block's final CRLFCRLF + 2. Calls
 * `fn` for each field; a nonzero return stops the walk with that value. */
static int each_field(const char *start, const char *end,
                      int (*fn)(const struct header *, void *), void *arg) {
  const char *p = start;

  while (p < end) {
    const char *eol = memchr(p, '\r', (size_t)(end - p));
    struct header h;
    int rv;

    if (eol == NULL || eol + 1 >= end || eol[1] != '\n')
      return -1;
    if (eol == p) /* the empty line that ends the block */
      return 0;
    if (!parse_field(p, eol, &h))
      return -1;
    if ((rv = fn(&h, arg)) != 0)
      return rv;
    p = eol + 2;
  }
  return -1;
}

struct response_state {
  int upgrade, connection, accept_ok, accept_seen, extension, protocol;
  const char *expected;
};

static int response_field(const struct header *h, void *arg) {
  struct response_state *st = arg;

  if (name_is(h, "Upgrade"))
    st->upgrade = value_is(h, "websocket");
  else if (name_is(h, "Connection"))
    st->connection = value_has_token(h, "upgrade");
  else if (name_is(h, "Sec-WebSocket-Accept")) {
    st->accept_seen = 1;
    st->accept_ok = h->value_len == DGW_WS_ACCEPT_LEN &&
                    memcmp(h->value, st->expected, DGW_WS_ACCEPT_LEN) == 0;
  } else if (name_is(h, "Sec-WebSocket-Extensions") && h->value_len > 0)
    st->extension = 1;
  else if (name_is(h, "Sec-WebSocket-Protocol") && h->value_len > 0)
    st->protocol = 1;
  return 0;
}

int dgw_handshake_check_response(const char *buf, size_t len,
                                 const char *expected_accept,
                                 size_t *header_len, char *reason,
                                 size_t reason_size) {
  struct response_state st = {0};
  size_t hlen;
  const char *eol;
  char status[64];

  hlen = header_block_len(
      buf, len < DGW_HANDSHAKE_MAX_HEADER ? len : DGW_HANDSHAKE_MAX_HEADER);
  if (hlen == 0) {
    if (len >= DGW_HANDSHAKE_MAX_HEADER) {
      dgw_set_why(reason, reason_size, "%s",
                  "upgrade response headers exceed 16384 bytes");
      return DGW_ERR_HANDSHAKE;
    }
    /* Fail early on something that is clearly not HTTP. */
    if (len >= 5 && memcmp(buf, "HTTP/", 5) != 0) {
      dgw_set_why(reason, reason_size, "%s", "upgrade response is not HTTP");
      return DGW_ERR_HANDSHAKE;
    }
    return DGW_ERR_AGAIN;
  }

  eol = memchr(buf, '\r', hlen);
  /* Copy the status line for the message, minus control bytes. */
  {
    size_t n = (size_t)(eol - buf);
    size_t i;

    if (n >= sizeof(status))
      n = sizeof(status) - 1;
    for (i = 0; i < n; i++)
      status[i] = (buf[i] >= 0x20 && buf[i] < 0x7f) ? buf[i] : '?';
    status[n] = '\0';
  }
  if ((size_t)(eol - buf) < 12 || memcmp(buf, "HTTP/1.1 ", 9) != 0) {
    dgw_set_why(reason, reason_size, "malformed status line \"%s\"", status);
    return DGW_ERR_HANDSHAKE;
  }
  if (memcmp(buf + 9, "101", 3) != 0 ||
      ((size_t)(eol - buf) > 12 && buf[12] != ' ')) {
    dgw_set_why(reason, reason_size,
                "server answered \"%s\" instead of 101 Switching Protocols",
                status);
    return DGW_ERR_HANDSHAKE;
  }

  st.expected = expected_accept;
  if (each_field(eol + 2, buf + hlen, response_field, &st) != 0) {
    dgw_set_why(reason, reason_size, "%s",
                "malformed header field in upgrade response");
    return DGW_ERR_HANDSHAKE;
  }
  if (!st.upgrade) {
    dgw_set_why(reason, reason_size, "%s",
                "upgrade response lacks \"Upgrade: websocket\"");
    return DGW_ERR_HANDSHAKE;
  }
  if (!st.connection) {
    dgw_set_why(reason, reason_size, "%s",
                "upgrade response lacks \"Connection: Upgrade\"");
    return DGW_ERR_HANDSHAKE;
  }
  if (!st.accept_seen) {
    dgw_set_why(reason, reason_size, "%s",
                "upgrade response lacks Sec-WebSocket-Accept");
    return DGW_ERR_HANDSHAKE;
  }
  if (!st.accept_ok) {
    dgw_set_why(reason, reason_size, "%s",
                "Sec-WebSocket-Accept does not match the key sent");
    return DGW_ERR_HANDSHAKE;
  }
  if (st.extension || st.protocol) {
    dgw_set_why(reason, reason_size, "%s",
                "server selected an extension or subprotocol not offered");
    return DGW_ERR_HANDSHAKE;
  }
  *header_len = hlen;
  return DGW_OK;
}

struct request_state {
  int upgrade, connection, version, key;
  struct dgw_handshake_request_info *info;
};

static int request_field(const struct header *h, void *arg) {
  struct request_state *st = arg;

  if (name_is(h, "Upgrade"))
    st->upgrade = value_has_token(h, "websocket");
  else if (name_is(h, "Connection"))
    st->connection = value_has_token(h, "upgrade");
  else if (name_is(h, "Sec-WebSocket-Version"))
    st->version = value_is(h, "13");
  else if (name_is(h, "Sec-WebSocket-Key")) {
    st->key = h->value_len == DGW_WS_KEY_LEN;
    if (st->key) {
      memcpy(st->info->key, h->value, DGW_WS_KEY_LEN);
      st->info->key[DGW_WS_KEY_LEN] = '\0';
    }
  }
  return 0;
}

int dgw_handshake_parse_request(const char *buf, size_t len, size_t *header_len,
                                struct dgw_handshake_request_info *info,
                                char *reason, size_t reason_size) {
  struct request_state st = {0};
  const char *eol;
  const char *target;
  const char *sp;
  size_t hlen;
  size_t tlen;

  hlen = header_block_len(
      buf, len < DGW_HANDSHAKE_MAX_HEADER ? len : DGW_HANDSHAKE_MAX_HEADER);
  if (hlen == 0) {
    if (len >= DGW_HANDSHAKE_MAX_HEADER) {
      dgw_set_why(reason, reason_size, "%s", "request headers too large");
      return DGW_ERR_HANDSHAKE;
    }
    if (len >= 4 && memcmp(buf, "GET ", 4) != 0) {
      dgw_set_why(reason, reason_size, "%s", "not a GET request");
      return DGW_ERR_HANDSHAKE;
    }
    return DGW_ERR_AGAIN;
  }
  eol = memchr(buf, '\r', hlen);
  if ((size_t)(eol - buf) < 14 || memcmp(buf, "GET ", 4) != 0) {
    dgw_set_why(reason, reason_size, "%s", "not a GET request");
    return DGW_ERR_HANDSHAKE;
  }
  target = buf + 4;
  sp = memchr(target, ' ', (size_t)(eol - target));
  if (sp == NULL || *target != '/' || (size_t)(eol - sp) != 9 ||
      memcmp(sp, " HTTP/1.1", 9) != 0) {
    dgw_set_why(reason, reason_size, "%s", "malformed request line");
    return DGW_ERR_HANDSHAKE;
  }
  tlen = (size_t)(sp - target);
  if (tlen >= sizeof(info->path_query)) {
    dgw_set_why(reason, reason_size, "%s", "request target too long");
    return DGW_ERR_HANDSHAKE;
  }
  memcpy(info->path_query, target, tlen);
  info->path_query[tlen] = '\0';

  st.info = info;
  if (each_field(eol + 2, buf + hlen, request_field, &st) != 0) {
    dgw_set_why(reason, reason_size, "%s", "malformed header field");
    return DGW_ERR_HANDSHAKE;
  }
  if (!st.upgrade || !st.connection) {
    dgw_set_why(reason, reason_size, "%s",
                "missing Upgrade: websocket or Connection: Upgrade");
    return DGW_ERR_HANDSHAKE;
  }
  if (!st.version) {
    dgw_set_why(reason, reason_size, "%s", "Sec-WebSocket-Version is not 13");
    return DGW_ERR_HANDSHAKE;
  }
  if (!st.key) {
    dgw_set_why(reason, reason_size, "%s", "missing or bad Sec-WebSocket-Key");
    return DGW_ERR_HANDSHAKE;
  }
  *header_len = hlen;
  return DGW_OK;
}
