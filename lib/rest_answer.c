/*
 * What an answer of the REST API says, without I/O: the body of
 * GET /gateway/bot checked field by field, the wait a 429 asks for, and
 * the message of an error body made safe for the log (nothing of the
 * token, however echoed).  The call itself is rest.c.
 */
#include "config.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "rest.h"
#include "url.h"
#include "why.h"

/* A week: Discord's session-start window is a day. */
#define MAX_RESET_AFTER_MS (7ull * 24 * 3600 * 1000)

/* Parses all of `text` as one JSON value (surrounding white space
 * allowed), or returns NULL. */
static struct json_object *parse_whole(const char *text, size_t len) {
  struct json_tokener *tok;
  struct json_object *obj;
  size_t end;

  if (text == NULL || len == 0 || len > INT_MAX)
    return NULL;
  if ((tok = json_tokener_new()) == NULL)
    return NULL;
  obj = json_tokener_parse_ex(tok, text, (int)len);
  if (obj != NULL && json_tokener_get_error(tok) != json_tokener_success) {
    json_object_put(obj);
    obj = NULL;
  }
  end = json_tokener_get_parse_end(tok);
  json_tokener_free(tok);
  for (; obj != NULL && end < len; end++)
    if (strchr(" \t\r\n", text[end]) == NULL) {
      json_object_put(obj); /* something after the value */
      obj = NULL;
    }
  return obj;
}

/* `key` of `o` as an integer in [lo, hi]; DGW_ERR_JSON with `why` when it
 * is missing, not an integer or out of range. */
static int get_int(struct json_object *o, const char *key, int64_t lo,
                   int64_t hi, int64_t *out, char *why, size_t why_size) {
  struct json_object *v;
  int64_t n;

  if (!json_object_object_get_ex(o, key, &v) ||
      !json_object_is_type(v, json_type_int)) {
    dgw_set_why(why, why_size, "\"%s\" is missing or not an integer", key);
    return DGW_ERR_JSON;
  }
  n = json_object_get_int64(v);
  if (n < lo || n > hi) {
    dgw_set_why(why, why_size, "\"%s\" is %lld, not in %lld..%lld", key,
                (long long)n, (long long)lo, (long long)hi);
    return DGW_ERR_JSON;
  }
  *out = n;
  return DGW_OK;
}

static int check_bot(struct json_object *root, int api_tls,
                     struct dgw_gateway_bot *out, char *why, size_t why_size) {
  struct json_object *v;
  struct json_object *limit;
  struct dgw_url parsed;
  const char *url;
  char detail[128];
  int64_t n;

  if (!json_object_is_type(root, json_type_object)) {
    dgw_set_why(why, why_size, "the body is not a JSON object");
    return DGW_ERR_JSON;
  }
  if (!json_object_object_get_ex(root, "url", &v) ||
      !json_object_is_type(v, json_type_string)) {
    dgw_set_why(why, why_size, "\"url\" is missing or not a string");
    return DGW_ERR_JSON;
  }
  url = json_object_get_string(v);
  if ((size_t)json_object_get_string_len(v) != strlen(url) ||
      dgw_url_parse(url, &parsed, detail, sizeof(detail)) != DGW_OK) {
    dgw_set_why(why, why_size, "\"url\" is not a gateway URL: %s",
                (size_t)json_object_get_string_len(v) != strlen(url)
                    ? "it contains a NUL byte"
                    : detail);
    return DGW_ERR_JSON;
  }
  if (strchr(url, '?') != NULL) {
    dgw_set_why(why, why_size, "\"url\" has a query (dgw adds its own)");
    return DGW_ERR_JSON;
  }
  if (api_tls && !parsed.tls) {
    dgw_set_why(why, why_size,
                "\"url\" is ws:// from an https:// API: the token would go to "
                "the gateway in clear");
    return DGW_ERR_JSON;
  }
  snprintf(out->url, sizeof(out->url), "%s", url);
  if (get_int(root, "shards", 1, DGW_REST_MAX_SHARDS, &n, why, why_size) !=
      DGW_OK)
    return DGW_ERR_JSON;
  out->shards = (uint32_t)n;
  if (!json_object_object_get_ex(root, "session_start_limit", &limit) ||
      !json_object_is_type(limit, json_type_object)) {
    dgw_set_why(why, why_size,
                "\"session_start_limit\" is missing or not an object");
    return DGW_ERR_JSON;
  }
  if (get_int(limit, "total", 0, INT64_MAX, &out->total, why, why_size) !=
          DGW_OK ||
      get_int(limit, "remaining", 0, out->total, &out->remaining, why,
              why_size) != DGW_OK ||
      get_int(limit, "reset_after", 0, (int64_t)MAX_RESET_AFTER_MS, &n, why,
              why_size) != DGW_OK)
    return DGW_ERR_JSON;
  out->reset_after_ms = (uint64_t)n;
  if (get_int(limit, "max_concurrency", 1, 65536, &n, why, why_size) != DGW_OK)
    return DGW_ERR_JSON;
  out->max_concurrency = (uint32_t)n;
  return DGW_OK;
}

int dgw_gateway_bot_parse(const char *body, size_t len, int api_tls,
                          struct dgw_gateway_bot *out, char *why,
                          size_t why_size) {
  struct json_object *root;
  int rv;

  if (out == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  memset(out, 0, sizeof(*out));
  if ((root = parse_whole(body, len)) == NULL) {
    dgw_set_why(why, why_size, len == 0 ? "the body is empty" : "not JSON");
    return DGW_ERR_JSON;
  }
  rv = check_bot(root, api_tls, out, why, why_size);
  json_object_put(root);
  if (rv != DGW_OK)
    memset(out, 0, sizeof(*out));
  return rv;
}

/* Seconds as Retry-After gives them: digits, perhaps a fraction. */
static double header_seconds(const char *s) {
  char *end;
  double v;

  while (*s == ' ' || *s == '\t')
    s++;
  if (*s < '0' || *s > '9')
    return -1; /* an HTTP date, or nothing usable */
  v = strtod(s, &end);
  while (*end == ' ' || *end == '\t')
    end++;
  return *end == '\0' ? v : -1;
}

int64_t dgw_rest_retry_after_ms(const char *body, size_t len,
                                const char *header) {
  struct json_object *root = parse_whole(body, len);
  struct json_object *v;
  double s = -1;
  int64_t ms;

  if (root != NULL && json_object_is_type(root, json_type_object) &&
      json_object_object_get_ex(root, "retry_after", &v) &&
      (json_object_is_type(v, json_type_double) ||
       json_object_is_type(v, json_type_int)))
    s = json_object_get_double(v);
  json_object_put(root);
  if (!(s > 0) && header != NULL)
    s = header_seconds(header);
  if (!(s > 0))
    return -1; /* NaN, zero, negative: no wait given */
  if (s * 1000.0 >= (double)DGW_REST_MAX_RETRY_AFTER_MS)
    return DGW_REST_MAX_RETRY_AFTER_MS;
  ms = (int64_t)(s * 1000.0); /* rounded up: never sooner than asked */
  return (double)ms < s * 1000.0 ? ms + 1 : ms;
}

/* A run of this many characters of the token is enough to call a text a
 * leak (a server may echo the token cut short or altered at one end). */
#define TOKEN_SLICE 12

/* `s` with only its letters (lower-cased) and digits, in a new string
 * (NULL when out of memory); its length in `*n`.  The filter compares
 * these, so an echo with its case changed or its '.', '-' or '_' turned
 * into another separator (or dropped) is still caught. */
static char *alnum_lower(const char *s, size_t *n) {
  char *out = malloc(strlen(s) + 1);

  *n = 0;
  if (out == NULL)
    return NULL;
  for (; *s != '\0'; s++) {
    char c = *s;

    if (c >= 'A' && c <= 'Z')
      out[(*n)++] = (char)(c - 'A' + 'a');
    else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
      out[(*n)++] = c;
  }
  out[*n] = '\0';
  return out;
}

/* 1 when `m` holds any TOKEN_SLICE-character run of `token` (all of a
 * shorter token), both compared with only their letters, case-folded, and
 * digits (issue 15: an echo lower-cased, or with '.' turned into '-', was
 * logged), or an Authorization value; 1 as well when there is no memory
 * to tell (withheld rather than risked). */
int dgw_rest_echoes_token(const char *m, const char *token) {
  size_t mlen, tlen, slice;
  char *nm, *nt;
  int found = 0;

  if (strstr(m, "Bot ") != NULL)
    return 1;
  if (token == NULL || token[0] == '\0')
    return 0;
  nm = alnum_lower(m, &mlen);
  nt = alnum_lower(token, &tlen);
  if (nm == NULL || nt == NULL) {
    free(nm);
    free(nt);
    return 1;
  }
  slice = tlen < TOKEN_SLICE ? tlen : TOKEN_SLICE;
  for (size_t i = 0; slice > 0 && i + slice <= tlen && !found; i++)
    found = memmem(nm, mlen, nt + i, slice) != NULL;
  free(nm);
  free(nt);
  return found;
}

void dgw_rest_error_message(const char *body, size_t len, const char *token,
                            char *out, size_t size) {
  struct json_object *root = parse_whole(body, len);
  struct json_object *v;
  size_t n = 0;

  out[0] = '\0';
  if (root != NULL && json_object_is_type(root, json_type_object) &&
      json_object_object_get_ex(root, "message", &v) &&
      json_object_is_type(v, json_type_string)) {
    const char *m = json_object_get_string(v);

    if (!dgw_rest_echoes_token(m, token))
      for (; *m != '\0' && n + 1 < size && n < 120; m++)
        out[n++] = (*m >= 0x20 && *m < 0x7f) ? *m : '?';
    out[n] = '\0';
  }
  json_object_put(root);
}
