#include "config.h"

/*
 * Plain HTTP/1.1 on the gateway's port: parsing one request (method,
 * target, the few headers REST and the control API read, a Content-Length
 * body) and writing one response with Discord's X-RateLimit-* headers.
 * One request per connection (Connection: close), which every HTTP client
 * handles.
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "handshake.h"
#include "mock_int.h"

#define MOCK_HTTP_MAX_BODY (1024 * 1024)

/* The value of header `name` (case-insensitive) in the header block `buf`
 * of `len` bytes, copied into `out`; 0 when absent. */
static int header_get(const char *buf, size_t len, const char *name, char *out,
                      size_t out_size) {
  size_t nlen = strlen(name);
  const char *p = memchr(buf, '\n', len), *end = buf + len;

  while (p != NULL && p + 1 < end) {
    const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));
    size_t vlen;

    if (eol == NULL)
      break;
    if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
        strncasecmp(line, name, nlen) == 0) {
      const char *v = line + nlen + 1;

      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      vlen = (size_t)(eol - v);
      while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
        vlen--;
      if (vlen >= out_size)
        vlen = out_size - 1;
      memcpy(out, v, vlen);
      out[vlen] = '\0';
      return 1;
    }
    p = eol;
  }
  return 0;
}

static int copy_span(char *out, size_t out_size, const char *s, size_t n) {
  if (n >= out_size)
    return -1;
  memcpy(out, s, n);
  out[n] = '\0';
  return 0;
}

int mock_http_parse(const char *buf, size_t len, struct mock_http_req *req,
                    size_t *total) {
  const char *hend = NULL, *sp1, *sp2, *q;
  char value[64];
  size_t hlen, body_len = 0;

  for (size_t i = 0; i + 3 < len; i++)
    if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
      hend = buf + i + 4;
      break;
    }
  if (hend == NULL)
    return len >= DGW_HANDSHAKE_MAX_HEADER ? -1 : 0;
  hlen = (size_t)(hend - buf);
  memset(req, 0, sizeof *req);
  if (header_get(buf, hlen, "Upgrade", value, sizeof value) &&
      strcasecmp(value, "websocket") == 0)
    return -2;
  sp1 = memchr(buf, ' ', hlen);
  if (sp1 == NULL ||
      copy_span(req->method, sizeof req->method, buf, (size_t)(sp1 - buf)))
    return -1;
  sp2 = memchr(sp1 + 1, ' ', (size_t)(hend - sp1 - 1));
  if (sp2 == NULL || sp1[1] != '/')
    return -1;
  q = memchr(sp1 + 1, '?', (size_t)(sp2 - sp1 - 1));
  if (copy_span(req->path, sizeof req->path, sp1 + 1,
                (size_t)((q != NULL ? q : sp2) - sp1 - 1)) != 0 ||
      (q != NULL && copy_span(req->query, sizeof req->query, q + 1,
                              (size_t)(sp2 - q - 1)) != 0))
    return -1;
  header_get(buf, hlen, "Authorization", req->auth, sizeof req->auth);
  header_get(buf, hlen, "Content-Type", req->ctype, sizeof req->ctype);
  if (header_get(buf, hlen, "Content-Length", value, sizeof value)) {
    char *endp;
    unsigned long long n = strtoull(value, &endp, 10);

    if (endp == value || *endp != '\0')
      return -1;
    if (n > MOCK_HTTP_MAX_BODY)
      return -3;
    body_len = (size_t)n;
  } else if (header_get(buf, hlen, "Transfer-Encoding", value, sizeof value)) {
    return -1; /* chunked bodies: no client of ours sends them */
  }
  if (len - hlen < body_len)
    return 0;
  req->body = hend;
  req->body_len = body_len;
  *total = hlen + body_len;
  return 1;
}

int mock_http_query(const char *query, const char *name, char *out,
                    size_t out_size) {
  size_t nlen = strlen(name);
  const char *p = query;

  while (p != NULL && *p != '\0') {
    const char *amp = strchr(p, '&');
    size_t plen = amp != NULL ? (size_t)(amp - p) : strlen(p);

    if (plen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
      size_t vlen = plen - nlen - 1;
      if (vlen >= out_size)
        vlen = out_size - 1;
      memcpy(out, p + nlen + 1, vlen);
      out[vlen] = '\0';
      return 1;
    }
    p = amp != NULL ? amp + 1 : NULL;
  }
  return 0;
}

static const char *status_text(int status) {
  switch (status) {
  case 200:
    return "OK";
  case 201:
    return "Created";
  case 204:
    return "No Content";
  case 400:
    return "Bad Request";
  case 401:
    return "Unauthorized";
  case 403:
    return "Forbidden";
  case 404:
    return "Not Found";
  case 405:
    return "Method Not Allowed";
  case 413:
    return "Payload Too Large";
  case 429:
    return "Too Many Requests";
  default:
    return "Error";
  }
}

void mock_http_reply(struct dgw_mock_conn *conn, int status, const char *body,
                     const char *bucket) {
  struct evbuffer *out = bufferevent_get_output(conn->bev);
  size_t blen = body != NULL ? strlen(body) : 0;

  evbuffer_add_printf(out, "HTTP/1.1 %d %s\r\n", status, status_text(status));
  if (bucket != NULL)
    mock_ratelimit_headers(conn, out, bucket);
  if (body != NULL)
    evbuffer_add_printf(out, "Content-Type: application/json\r\n");
  evbuffer_add_printf(out,
                      "Content-Length: %zu\r\n"
                      "Via: 1.1 dgw-mock\r\n"
                      "Connection: close\r\n\r\n",
                      blen);
  if (blen > 0)
    evbuffer_add(out, body, blen);
  mock_conn_end(conn, END_CLEAN);
}
