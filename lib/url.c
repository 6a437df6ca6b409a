/* ws://, wss://, http:// and https:// URL parsing. */
#include "config.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <dgw/dgw.h>

#include "url.h"

static int fail(char *reason, size_t size, const char *text) {
  if (reason != NULL && size > 0)
    snprintf(reason, size, "%s", text);
  return DGW_ERR_URL;
}

static int is_alnum(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9');
}

/* Longest host name and label, RFC 1123 section 2.1 and RFC 1035 2.3.4. */
#define HOST_NAME_MAX_LEN 253
#define LABEL_MAX_LEN 63

static int is_hex(char c) {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
         (c >= 'A' && c <= 'F');
}

/* Characters RFC 3986 allows in a path or query, '%' escapes included. */
static int is_path_char(char c) {
  return is_alnum(c) || strchr("-._~!$&'()*+,;=:@/?%", c) != NULL;
}

/* 0 when the `len` bytes at `s` (the text between the brackets) are an
 * IPv6 address inet_pton accepts; -1 otherwise. */
static int check_ipv6(const char *s, size_t len) {
  char text[INET6_ADDRSTRLEN + 1];
  struct in6_addr addr;

  if (len >= sizeof(text))
    return -1;
  for (size_t i = 0; i < len; i++)
    if (!is_hex(s[i]) && s[i] != ':' && s[i] != '.')
      return -1;
  memcpy(text, s, len);
  text[len] = '\0';
  return inet_pton(AF_INET6, text, &addr) == 1 ? 0 : -1;
}

/* NULL when the `len` bytes at `s` are a host name of RFC 1123 labels
 * (letters, digits and '-', 1-63 bytes, no '-' first or last, 253 bytes in
 * all), which an IPv4 address in dotted form also is; else the reason. */
static const char *check_host_name(const char *s, size_t len) {
  size_t label = 0;

  if (len > HOST_NAME_MAX_LEN)
    return "host name longer than 253 bytes";
  for (size_t i = 0; i < len; i++) {
    if (s[i] == '.') {
      if (label == 0)
        return "empty label in host name";
      if (s[i - 1] == '-')
        return "host name label ends with '-'";
      label = 0;
      continue;
    }
    if (!is_alnum(s[i]) && s[i] != '-')
      return "invalid character in host name";
    if (label == 0 && s[i] == '-')
      return "host name label starts with '-'";
    if (++label > LABEL_MAX_LEN)
      return "host name label longer than 63 bytes";
  }
  if (label == 0)
    return "empty label in host name";
  if (s[len - 1] == '-')
    return "host name label ends with '-'";
  return NULL;
}

/* The one parser behind both entry points: `http` picks the scheme pair
 * (http/https instead of ws/wss); everything after the scheme is the same
 * for all four. */
static int parse(const char *url, int http, struct dgw_url *out, char *reason,
                 size_t reason_size) {
  const char *p;
  const char *host;
  const char *host_end;
  const char *path;
  size_t len;
  size_t host_len;
  int ipv6 = 0;

  if (url == NULL || out == NULL)
    return fail(reason, reason_size, "no URL given");
  memset(out, 0, sizeof(*out));
  len = strlen(url);
  if (len > DGW_URL_MAX)
    return fail(reason, reason_size, "URL longer than 2048 bytes");
  for (size_t i = 0; i < len; i++)
    if ((unsigned char)url[i] <= 0x20 || (unsigned char)url[i] >= 0x7f)
      return fail(reason, reason_size,
                  "URL contains a space, control or non-ASCII byte");

  if (strncasecmp(url, http ? "https://" : "wss://", http ? 8 : 6) == 0) {
    out->tls = 1;
    p = url + (http ? 8 : 6);
  } else if (strncasecmp(url, http ? "http://" : "ws://", http ? 7 : 5) == 0) {
    p = url + (http ? 7 : 5);
  } else {
    return fail(reason, reason_size,
                http ? "URL scheme is not http:// or https://"
                     : "URL scheme is not ws:// or wss://");
  }

  /* Authority: up to the first '/', '?' or '#'. */
  host = p;
  path = p + strcspn(p, "/?#");
  if (memchr(host, '@', (size_t)(path - host)) != NULL)
    return fail(reason, reason_size, "URL user info is not supported");

  if (*host == '[') {
    const char *rb = memchr(host, ']', (size_t)(path - host));

    if (rb == NULL)
      return fail(reason, reason_size, "unterminated IPv6 address");
    ipv6 = 1;
    host++;
    host_end = rb;
    p = rb + 1;
    if (host_end == host)
      return fail(reason, reason_size, "URL has an empty host");
    if (check_ipv6(host, (size_t)(host_end - host)) != 0)
      return fail(reason, reason_size, "invalid IPv6 address");
  } else {
    host_end = host + strcspn(host, ":/?#");
    p = host_end;
    if (host_end == host)
      return fail(reason, reason_size, "URL has an empty host");
    const char *why = check_host_name(host, (size_t)(host_end - host));

    if (why != NULL)
      return fail(reason, reason_size, why);
  }
  host_len = (size_t)(host_end - host);
  if (host_len >= sizeof(out->host))
    return fail(reason, reason_size, "host name longer than 255 bytes");
  memcpy(out->host, host, host_len);
  out->host[host_len] = '\0';

  out->port = out->tls ? 443 : 80;
  if (p < path && *p == ':') {
    unsigned long port = 0;
    const char *q = p + 1;

    if (q == path)
      return fail(reason, reason_size, "URL has an empty port");
    for (; q < path; q++) {
      if (*q < '0' || *q > '9')
        return fail(reason, reason_size, "port is not a number");
      port = port * 10 + (unsigned long)(*q - '0');
      if (port > 65535)
        return fail(reason, reason_size, "port is out of range");
    }
    if (port == 0)
      return fail(reason, reason_size, "port 0 is not allowed");
    out->port = (uint16_t)port;
    out->port_given = 1;
  } else if (p != path) {
    return fail(reason, reason_size, "unexpected text after the host");
  }

  if (strchr(path, '#') != NULL)
    return fail(reason, reason_size, "URL fragments are not allowed");
  for (const char *q = path; *q; q++) {
    if (!is_path_char(*q))
      return fail(reason, reason_size, "invalid character in path or query");
    if (*q == '%' && (!is_hex(q[1]) || !is_hex(q[2])))
      return fail(reason, reason_size, "bad percent escape in path or query");
  }
  if (*path == '\0')
    snprintf(out->path_query, sizeof(out->path_query), "/");
  else if (*path == '?')
    snprintf(out->path_query, sizeof(out->path_query), "/%s", path);
  else
    snprintf(out->path_query, sizeof(out->path_query), "%s", path);

  if (out->port == (out->tls ? 443 : 80))
    snprintf(out->host_header, sizeof(out->host_header), ipv6 ? "[%s]" : "%s",
             out->host);
  else
    snprintf(out->host_header, sizeof(out->host_header),
             ipv6 ? "[%s]:%u" : "%s:%u", out->host, (unsigned)out->port);
  return DGW_OK;
}

int dgw_url_parse(const char *url, struct dgw_url *out, char *reason,
                  size_t reason_size) {
  return parse(url, 0, out, reason, reason_size);
}

int dgw_url_parse_http(const char *url, struct dgw_url *out, char *reason,
                       size_t reason_size) {
  return parse(url, 1, out, reason, reason_size);
}
