/* Redis URLs: redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] and
 * unix:///PATH[?db=N&password=P&user=U].  No I/O. */
#include "config.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "redis.h"
#include "why.h"

static int hexval(int c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  c = tolower(c);
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  return -1;
}

/* Percent-decodes s[0..n) into out (size cap).  -1 on a bad escape, a NUL
 * byte or overflow. */
static int decode(const char *s, size_t n, char *out, size_t cap) {
  size_t o = 0;

  for (size_t i = 0; i < n; i++) {
    int c = (unsigned char)s[i];

    if (c == '%') {
      int hi, lo;

      if (i + 2 >= n)
        return -1;
      hi = hexval(s[i + 1]);
      lo = hexval(s[i + 2]);
      if (hi < 0 || lo < 0)
        return -1;
      c = hi * 16 + lo;
      i += 2;
      if (c == 0)
        return -1;
    }
    if (o + 1 >= cap)
      return -1;
    out[o++] = (char)c;
  }
  out[o] = '\0';
  return 0;
}

/* A decimal in [lo, hi] spelling all of s[0..n); -1 otherwise. */
static long number(const char *s, size_t n, long lo, long hi) {
  long v = 0;

  if (n == 0 || n > 9)
    return -1;
  for (size_t i = 0; i < n; i++) {
    if (!isdigit((unsigned char)s[i]))
      return -1;
    v = v * 10 + (s[i] - '0');
  }
  return v >= lo && v <= hi ? v : -1;
}

#define DB_MAX 1000000L

/* The query of a unix:// URL: db, password and user. */
static int parse_query(const char *q, struct redis_addr *out, const char *url,
                       char *why, size_t why_len) {
  while (*q != '\0') {
    size_t len = strcspn(q, "&");
    const char *eq = memchr(q, '=', len);
    size_t klen = eq != NULL ? (size_t)(eq - q) : len;
    const char *v = eq != NULL ? eq + 1 : q + len;
    size_t vlen = eq != NULL ? len - klen - 1 : 0;

    if (eq == NULL) {
      dgw_set_why(why, why_len, "Redis URL %s: query item \"%.*s\" has no '='",
                  url, (int)len, q);
      return -1;
    }
    if (klen == 2 && strncmp(q, "db", 2) == 0) {
      long db = number(v, vlen, 0, DB_MAX);

      if (db < 0) {
        dgw_set_why(why, why_len,
                    "Redis URL %s: db must be a number from 0, not \"%.*s\"",
                    url, (int)vlen, v);
        return -1;
      }
      out->db = (int)db;
    } else if (klen == 8 && strncmp(q, "password", 8) == 0) {
      if (decode(v, vlen, out->password, sizeof(out->password)) < 0) {
        dgw_set_why(why, why_len,
                    "Redis URL %s: the password is too long or has a bad "
                    "%%-escape",
                    url);
        return -1;
      }
    } else if (klen == 4 && strncmp(q, "user", 4) == 0) {
      if (decode(v, vlen, out->user, sizeof(out->user)) < 0) {
        dgw_set_why(why, why_len,
                    "Redis URL %s: the user is too long or has a bad "
                    "%%-escape",
                    url);
        return -1;
      }
    } else {
      dgw_set_why(why, why_len,
                  "Redis URL %s: unknown query item \"%.*s\" (known: db, "
                  "password, user)",
                  url, (int)klen, q);
      return -1;
    }
    q += len;
    if (*q == '&')
      q++;
  }
  return 0;
}

static int parse_unix(const char *url, const char *rest, struct redis_addr *out,
                      char *why, size_t why_len) {
  size_t plen = strcspn(rest, "?");

  if (rest[0] != '/') {
    dgw_set_why(why, why_len,
                "Redis URL %s: a unix socket needs an absolute path "
                "(unix:///path/to/redis.sock)",
                url);
    return -1;
  }
  if (plen >= sizeof(out->path)) {
    dgw_set_why(why, why_len,
                "Redis URL %s: the socket path is longer than %zu bytes", url,
                sizeof(out->path) - 1);
    return -1;
  }
  memcpy(out->path, rest, plen);
  out->path[plen] = '\0';
  out->is_unix = 1;
  if (rest[plen] == '?')
    return parse_query(rest + plen + 1, out, url, why, why_len);
  return 0;
}

static int parse_userinfo(const char *url, const char *s, size_t n,
                          struct redis_addr *out, char *why, size_t why_len) {
  const char *colon = memchr(s, ':', n);

  if (colon == NULL) {
    dgw_set_why(why, why_len,
                "Redis URL %s: the part before '@' needs a ':' "
                "(redis://:PASSWORD@host or redis://USER:PASSWORD@host)",
                url);
    return -1;
  }
  if (decode(s, (size_t)(colon - s), out->user, sizeof(out->user)) < 0 ||
      decode(colon + 1, n - (size_t)(colon - s) - 1, out->password,
             sizeof(out->password)) < 0) {
    dgw_set_why(why, why_len,
                "Redis URL %s: the user or password is too long or has a bad "
                "%%-escape",
                url);
    return -1;
  }
  return 0;
}

static int parse_tcp(const char *url, const char *rest, struct redis_addr *out,
                     char *why, size_t why_len) {
  size_t alen = strcspn(rest, "/?#");
  const char *at = NULL;
  const char *host, *end = rest + alen, *port = NULL;
  size_t hlen;

  for (const char *p = rest; p < end; p++)
    if (*p == '@')
      at = p;
  if (at != NULL) {
    if (parse_userinfo(url, rest, (size_t)(at - rest), out, why, why_len) < 0)
      return -1;
    host = at + 1;
  } else {
    host = rest;
  }
  if (*host == '[') {
    const char *close = memchr(host, ']', (size_t)(end - host));

    if (close == NULL) {
      dgw_set_why(why, why_len, "Redis URL %s: '[' without ']' in the host",
                  url);
      return -1;
    }
    hlen = (size_t)(close - host - 1);
    host++;
    if (close + 1 < end) {
      if (close[1] != ':') {
        dgw_set_why(why, why_len, "Redis URL %s: junk after ']' in the host",
                    url);
        return -1;
      }
      port = close + 2;
    }
  } else {
    const char *colon = memchr(host, ':', (size_t)(end - host));

    hlen = colon != NULL ? (size_t)(colon - host) : (size_t)(end - host);
    if (colon != NULL)
      port = colon + 1;
  }
  if (hlen == 0) {
    dgw_set_why(why, why_len, "Redis URL %s: no host", url);
    return -1;
  }
  if (hlen >= sizeof(out->host)) {
    dgw_set_why(why, why_len, "Redis URL %s: the host is too long", url);
    return -1;
  }
  memcpy(out->host, host, hlen);
  out->host[hlen] = '\0';
  if (port != NULL) {
    long p = number(port, (size_t)(end - port), 1, 65535);

    if (p < 0) {
      dgw_set_why(why, why_len,
                  "Redis URL %s: the port must be a number from 1 to 65535, "
                  "not \"%.*s\"",
                  url, (int)(end - port), port);
      return -1;
    }
    out->port = (int)p;
  }
  if (*end == '/') {
    const char *db = end + 1;
    size_t dlen = strlen(db);

    if (dlen > 0) {
      long v = number(db, dlen, 0, DB_MAX);

      if (v < 0) {
        dgw_set_why(why, why_len,
                    "Redis URL %s: the path must be a database number "
                    "(/0, /1, ...), not \"/%s\"",
                    url, db);
        return -1;
      }
      out->db = (int)v;
    }
  } else if (*end != '\0') {
    dgw_set_why(why, why_len,
                "Redis URL %s: unexpected \"%s\" (a redis:// URL takes no "
                "query; the database goes in the path: /N)",
                url, end);
    return -1;
  }
  return 0;
}

int redis_url_parse(const char *url, struct redis_addr *out, char *why,
                    size_t why_len) {
  memset(out, 0, sizeof(*out));
  out->port = 6379;
  if (url == NULL || url[0] == '\0') {
    dgw_set_why(why, why_len, "Redis URL is empty");
    return -1;
  }
  if (strncasecmp(url, "redis://", 8) == 0)
    return parse_tcp(url, url + 8, out, why, why_len);
  if (strncasecmp(url, "unix://", 7) == 0)
    return parse_unix(url, url + 7, out, why, why_len);
  if (strncasecmp(url, "rediss://", 9) == 0) {
    dgw_set_why(why, why_len,
                "Redis URL %s: rediss:// (TLS) is not supported; use redis:// "
                "or unix://",
                url);
    return -1;
  }
  dgw_set_why(why, why_len,
              "Redis URL %s: must start with redis:// or unix:// "
              "(redis://HOST:PORT/DB or unix:///path/to/redis.sock)",
              url);
  return -1;
}

void redis_addr_describe(const struct redis_addr *a, char *buf, size_t len) {
  if (len == 0)
    return;
  if (a->is_unix) {
    snprintf(buf, len, "unix://%s?db=%d", a->path, a->db);
    if (a->user[0] != '\0') {
      size_t n = strlen(buf);

      snprintf(buf + n, len > n ? len - n : 0, "&user=%s", a->user);
    }
    return;
  }
  snprintf(buf, len, "redis://%s%s%s%s%s:%d/%d", a->user,
           a->user[0] != '\0' ? "@" : "", strchr(a->host, ':') ? "[" : "",
           a->host, strchr(a->host, ':') ? "]" : "", a->port, a->db);
}
