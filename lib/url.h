/*
 * ws://, wss://, http:// and https:// URL parsing, without I/O.  Internal
 * to dgw.
 */
#ifndef DGW_URL_H
#define DGW_URL_H

#include <stddef.h>
#include <stdint.h>

/* Longest URL accepted, in bytes. */
#define DGW_URL_MAX 2048

struct dgw_url {
  int tls;        /* 1 for wss:// and https://, 0 for ws:// and http:// */
  char host[256]; /* host name or address, without IPv6 brackets */
  uint16_t port;  /* explicit port, else 443 for wss and 80 for ws */
  int port_given; /* 1 when the URL named the port */
  /* Path and query, starting with '/'; "/" when the URL has neither. */
  char path_query[DGW_URL_MAX];
  /* Value for the Host header: host (bracketed if IPv6) plus ":port" when
   * the port is not the scheme's default. */
  char host_header[270];
};

/*
 * Parses `url` (NUL-terminated) into `out`.  Accepts "ws" and "wss"
 * (case-insensitive), a host name (RFC 1123 labels of letters, digits and
 * '-', 1-63 bytes each, no '-' first or last, at most 253 bytes in all),
 * an IPv4 address or a bracketed IPv6 address (one inet_pton accepts), an
 * optional port 1-65535, and an optional path and query.  Refuses, with
 * DGW_ERR_URL and a sentence in `reason` (size `reason_size`, may be NULL):
 * other schemes, user info, an empty or invalid host, a bad port, a
 * fragment, spaces or control bytes, and URLs over DGW_URL_MAX bytes.
 * Returns DGW_OK on success.
 */
int dgw_url_parse(const char *url, struct dgw_url *out, char *reason,
                  size_t reason_size);

/*
 * The same for the REST API's base URL: "http" and "https" instead of "ws"
 * and "wss" (ports 80 and 443), everything else checked alike.
 */
int dgw_url_parse_http(const char *url, struct dgw_url *out, char *reason,
                       size_t reason_size);

#endif /* DGW_URL_H */
