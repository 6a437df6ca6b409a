#include "config.h"

/*
 * REST: GET <anything>/gateway/bot, Discord's call that tells a bot where
 * the gateway is and how many shards to run, answered on the gateway's own
 * port with this mock's URL (or 401 for a wrong token), so a client with
 * "auto" shards can run against the mock.
 */

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>

#include "handshake.h"
#include "mock_int.h"

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

/* GET .../gateway/bot (Discord's REST call that tells a bot where the
 * gateway is and how many shards to run): answered with this mock's own
 * URL, so a client with "auto" shards can run against the mock.  Returns 1
 * when `buf` was such a request (answered, or incomplete: 0 bytes used). */
int mock_rest_serve(struct dgw_mock_conn *conn, const char *buf, size_t len) {
  struct dgw_mock *mock = conn->mock;
  const char *target = buf + 4, *sp, *hend;
  char auth[512], want[512], body[768];
  size_t tlen;

  if (len < 4 || memcmp(buf, "GET ", 4) != 0)
    return 0;
  sp = memchr(target, ' ', len - 4);
  if (sp == NULL)
    return 0;
  tlen = (size_t)(sp - target);
  {
    const char *q = memchr(target, '?', tlen);

    if (q != NULL)
      tlen = (size_t)(q - target);
  }
  if (tlen < 12 || memcmp(target + tlen - 12, "/gateway/bot", 12) != 0)
    return 0;
  hend = NULL;
  for (size_t i = 0; i + 3 < len; i++)
    if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
      hend = buf + i + 4;
      break;
    }
  if (hend == NULL) {
    if (len >= DGW_HANDSHAKE_MAX_HEADER) /* it will never end in time */
      mock_conn_reject_http(conn, "request header block too large");
    return 1; /* else wait for the rest of the header block */
  }
  mock->stats.rest_requests++;
  if (!header_get(buf, (size_t)(hend - buf), "Authorization", auth,
                  sizeof auth))
    auth[0] = '\0';
  snprintf(want, sizeof want, "Bot %s", mock->token != NULL ? mock->token : "");
  if (strncmp(auth, "Bot ", 4) != 0 || auth[4] == '\0' ||
      (mock->token != NULL && strcmp(auth, want) != 0)) {
    static const char unauthorized[] = "{\"message\": \"401: Unauthorized\", "
                                       "\"code\": 0}";

    mock_log(mock, DGW_LOG_INFO, "conn %lu: GET /gateway/bot: 401", conn->id);
    evbuffer_add_printf(bufferevent_get_output(conn->bev),
                        "HTTP/1.1 401 Unauthorized\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %zu\r\n"
                        "Connection: close\r\n\r\n%s",
                        sizeof(unauthorized) - 1, unauthorized);
  } else {
    uint64_t used = mock->stats.identifies;

    snprintf(body, sizeof body,
             "{\"url\":\"%s\",\"shards\":%u,\"session_start_limit\":"
             "{\"total\":1000,\"remaining\":%llu,\"reset_after\":86400000,"
             "\"max_concurrency\":%u}}",
             mock->resume_url,
             (unsigned)(mock->cfg.rest_shards ? mock->cfg.rest_shards : 1),
             (unsigned long long)(used < 1000 ? 1000 - used : 0),
             (unsigned)(mock->cfg.rest_max_concurrency
                            ? mock->cfg.rest_max_concurrency
                            : 1));
    mock_log(mock, DGW_LOG_INFO, "conn %lu: GET /gateway/bot: %s", conn->id,
             body);
    evbuffer_add_printf(bufferevent_get_output(conn->bev),
                        "HTTP/1.1 200 OK\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %zu\r\n"
                        "Connection: close\r\n\r\n%s",
                        strlen(body), body);
  }
  mock_conn_end(conn, END_CLEAN);
  return 1;
}
