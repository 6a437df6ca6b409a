#include "config.h"

/*
 * REST rate limits, so that a bot's test suite can exercise its 429
 * handling (docs/mock.md, "Rate limits"):
 *
 *   - injected 429s: the next N REST requests (whose path starts with a
 *     given prefix, if any) are answered 429 with Discord's body and
 *     headers, global or not, without being performed (POST
 *     /_mock/ratelimit, dgw_mock_inject_429());
 *   - enforced limits (cfg.rest_rate_limits, `dgw mock --rate-limits`):
 *     POST /channels/{id}/messages 5 per 5 s per channel, every other
 *     route 50 per second per major parameter (channel, guild, webhook),
 *     and 50 requests per second in all (the global limit); the
 *     X-RateLimit-* headers tell the truth and going over answers 429
 *     with the real retry_after.
 *
 * Without either, the headers advertise a generous limit (50 per second,
 * 49 remaining) that is never enforced.  Limits are fixed windows that
 * start with a bucket's first request, as Discord's do.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

#include <event2/buffer.h>

#include <json-c/json.h>

#include "mock_int.h"

#define RL_LIMIT 50           /* requests of a bucket per window */
#define RL_WINDOW_MS 1000     /* ... of that length */
#define RL_MSG_LIMIT 5        /* POST /channels/{id}/messages */
#define RL_MSG_WINDOW_MS 5000 /* ... per channel */
#define RL_GLOBAL 50          /* requests per second in all */

/* One bucket of one major parameter: its window and what it used. */
struct rl_bucket {
  char key[512]; /* route template + major parameter */
  uint64_t reset_ms;
  uint32_t used;
};

/* What the headers of the reply being written say (one request at a
 * time: set by mock_ratelimit_check(), used by mock_http_reply()). */
struct rl_answer {
  const struct dgw_mock_conn *conn; /* whose reply; NULL: nothing set */
  int status429;                    /* 1: the 429 headers */
  int global;                       /* a global 429: no bucket headers */
  const char *scope;                /* "user", "global", "shared" */
  uint32_t limit, remaining;
  uint64_t reset_after_ms;
  unsigned long hash;
};

struct mock_ratelimit {
  /* Injected 429s. */
  uint64_t inject_left, inject_served;
  double inject_retry_after;
  int inject_global;
  char inject_scope[16];
  char inject_route[256];
  /* Enforced limits. */
  struct rl_bucket *buckets;
  size_t len, cap;
  uint64_t global_reset_ms;
  uint32_t global_used;
  uint64_t enforced_served;
  struct rl_answer answer;
};

static struct mock_ratelimit *state(struct dgw_mock *mock) {
  if (mock->ratelimit == NULL)
    mock->ratelimit = calloc(1, sizeof *mock->ratelimit);
  return mock->ratelimit;
}

static unsigned long djb2(const char *s) {
  unsigned long h = 5381;

  for (; *s != '\0'; s++)
    h = h * 33 + (unsigned char)*s;
  return h & 0xffffffffUL;
}

static int all_digits(const char *s) {
  if (*s == '\0')
    return 0;
  for (; *s != '\0'; s++)
    if (*s < '0' || *s > '9')
      return 0;
  return 1;
}

/* The route template of `method` on segments `seg` into `tpl` (ids that
 * are not a major parameter, and emojis, as placeholders), and the major
 * parameter (the id after channels/guilds/webhooks, and a webhook's
 * token) into `major`. */
static void route_key(const char *method, const char *const *seg, size_t nseg,
                      char *tpl, size_t tpl_size, char *major,
                      size_t major_size) {
  size_t i;
  int n = snprintf(tpl, tpl_size, "%s", method);

  major[0] = '\0';
  for (i = 0; i < nseg && n >= 0 && (size_t)n < tpl_size; i++) {
    const char *prev = i > 0 ? seg[i - 1] : "";
    const char *s = seg[i];
    int is_major =
        (strcmp(prev, "channels") == 0 || strcmp(prev, "guilds") == 0 ||
         strcmp(prev, "webhooks") == 0) ||
        (i == 2 && strcmp(seg[0], "webhooks") == 0);

    if (is_major) {
      size_t m = strlen(major);
      snprintf(major + m, major_size - m, "/%s", s);
      s = "{major}";
    } else if (strcmp(prev, "reactions") == 0) {
      s = "{emoji}";
    } else if (all_digits(s)) {
      s = "{id}";
    }
    n += snprintf(tpl + n, tpl_size - (size_t)n, "/%s", s);
  }
}

/* The bucket `key`, its window restarted when over; NULL out of memory. */
static struct rl_bucket *bucket(struct mock_ratelimit *rl, const char *key,
                                uint64_t now) {
  size_t i, kept = 0;

  for (i = 0; i < rl->len; i++)
    if (strcmp(rl->buckets[i].key, key) == 0) {
      if (now >= rl->buckets[i].reset_ms)
        rl->buckets[i].used = 0;
      return &rl->buckets[i];
    }
  if (rl->len == rl->cap) {
    /* Forget the buckets whose window is over before growing. */
    for (i = 0; i < rl->len; i++)
      if (now < rl->buckets[i].reset_ms)
        rl->buckets[kept++] = rl->buckets[i];
    rl->len = kept;
  }
  if (rl->len == rl->cap) {
    size_t cap = rl->cap != 0 ? rl->cap * 2 : 16;
    struct rl_bucket *p = realloc(rl->buckets, cap * sizeof *p);
    if (p == NULL)
      return NULL;
    rl->buckets = p;
    rl->cap = cap;
  }
  memset(&rl->buckets[rl->len], 0, sizeof rl->buckets[0]);
  snprintf(rl->buckets[rl->len].key, sizeof rl->buckets[0].key, "%s", key);
  return &rl->buckets[rl->len++];
}

/* Answers 429 with Discord's body; the headers from rl->answer. */
static void reply_429(struct dgw_mock_conn *conn,
                      const struct mock_http_req *req, double retry_after,
                      int global) {
  struct dgw_mock *mock = conn->mock;
  char body[160];

  snprintf(body, sizeof body,
           "{\"message\":\"You are being rate limited.\",\"retry_after\":%.3f,"
           "\"global\":%s%s}",
           retry_after, global ? "true" : "false", global ? ",\"code\":0" : "");
  mock->stats.rest_rate_limited++;
  mock_world_record_rest(mock, req, 429);
  mock_log(mock, DGW_LOG_INFO, "conn %lu: %s %s: 429 (retry_after %.3f%s)",
           conn->id, req->method, req->path, retry_after,
           global ? ", global" : "");
  mock_http_reply(conn, 429, body, "429");
}

int mock_ratelimit_check(struct dgw_mock_conn *conn,
                         const struct mock_http_req *req, const char *path,
                         const char *const *seg, size_t nseg) {
  struct dgw_mock *mock = conn->mock;
  struct mock_ratelimit *rl;
  struct rl_answer *a;
  char tpl[300], major[200], key[512];
  struct rl_bucket *b;
  uint64_t now = mock_now_ms();
  int msg;

  if (mock->ratelimit == NULL && !mock->cfg.rest_rate_limits)
    return 0;
  if ((rl = state(mock)) == NULL)
    return 0;
  a = &rl->answer;
  memset(a, 0, sizeof *a);
  route_key(req->method, seg, nseg, tpl, sizeof tpl, major, sizeof major);
  a->hash = djb2(tpl);
  if (rl->inject_left > 0 &&
      (rl->inject_route[0] == '\0' ||
       strncmp(path, rl->inject_route, strlen(rl->inject_route)) == 0 ||
       strncmp(req->path, rl->inject_route, strlen(rl->inject_route)) == 0)) {
    rl->inject_left--;
    rl->inject_served++;
    a->conn = conn;
    a->status429 = 1;
    a->global = rl->inject_global;
    a->scope = rl->inject_scope[0] != '\0' ? rl->inject_scope
               : rl->inject_global         ? "global"
                                           : "user";
    a->limit = RL_LIMIT;
    a->reset_after_ms = (uint64_t)(rl->inject_retry_after * 1000.0 + 0.5);
    reply_429(conn, req, rl->inject_retry_after, rl->inject_global);
    return 1;
  }
  if (!mock->cfg.rest_rate_limits)
    return 0;
  a->conn = conn;
  if (now >= rl->global_reset_ms) {
    rl->global_reset_ms = now + 1000;
    rl->global_used = 0;
  }
  if (rl->global_used >= RL_GLOBAL) {
    rl->enforced_served++;
    a->status429 = a->global = 1;
    a->scope = "global";
    a->reset_after_ms = rl->global_reset_ms - now;
    reply_429(conn, req, (double)a->reset_after_ms / 1000.0, 1);
    return 1;
  }
  msg = strcmp(req->method, "POST") == 0 && nseg == 3 &&
        strcmp(seg[0], "channels") == 0 && strcmp(seg[2], "messages") == 0;
  a->limit = msg ? RL_MSG_LIMIT : RL_LIMIT;
  snprintf(key, sizeof key, "%s %s", tpl, major);
  if ((b = bucket(rl, key, now)) == NULL) {
    a->conn = NULL; /* out of memory: the generous headers */
    return 0;
  }
  if (b->used == 0)
    b->reset_ms = now + (msg ? RL_MSG_WINDOW_MS : RL_WINDOW_MS);
  a->reset_after_ms = b->reset_ms - now;
  if (b->used >= a->limit) {
    rl->enforced_served++;
    a->status429 = 1;
    a->scope = "user";
    reply_429(conn, req, (double)a->reset_after_ms / 1000.0, 0);
    return 1;
  }
  b->used++;
  rl->global_used++;
  a->remaining = a->limit - b->used;
  return 0;
}

void mock_ratelimit_headers(struct dgw_mock_conn *conn, struct evbuffer *out,
                            const char *bucket_name) {
  struct mock_ratelimit *rl = conn->mock->ratelimit;
  struct rl_answer a;
  struct timeval tv;
  uint64_t reset_ms;

  if (rl != NULL && rl->answer.conn == conn) {
    a = rl->answer;
    rl->answer.conn = NULL;
  } else {
    /* A generous limit, never enforced: the libraries' REST limiters read
     * these and never have to wait. */
    memset(&a, 0, sizeof a);
    a.limit = RL_LIMIT;
    a.remaining = RL_LIMIT - 1;
    a.reset_after_ms = 1000;
    a.hash = djb2(bucket_name);
  }
  if (a.status429) {
    evbuffer_add_printf(out, "Retry-After: %llu\r\n",
                        (unsigned long long)((a.reset_after_ms + 999) / 1000));
    if (a.global)
      evbuffer_add_printf(out, "X-RateLimit-Global: true\r\n");
    evbuffer_add_printf(out, "X-RateLimit-Scope: %s\r\n", a.scope);
    if (a.global)
      return;
  }
  gettimeofday(&tv, NULL);
  reset_ms = (uint64_t)tv.tv_sec * 1000 + (uint64_t)(tv.tv_usec / 1000) +
             a.reset_after_ms;
  evbuffer_add_printf(out,
                      "X-RateLimit-Limit: %u\r\n"
                      "X-RateLimit-Remaining: %u\r\n"
                      "X-RateLimit-Reset: %llu.%03llu\r\n"
                      "X-RateLimit-Reset-After: %llu.%03llu\r\n"
                      "X-RateLimit-Bucket: %08lx\r\n",
                      a.limit, a.remaining,
                      (unsigned long long)(reset_ms / 1000),
                      (unsigned long long)(reset_ms % 1000),
                      (unsigned long long)(a.reset_after_ms / 1000),
                      (unsigned long long)(a.reset_after_ms % 1000), a.hash);
}

int dgw_mock_inject_429(struct dgw_mock *mock, unsigned count,
                        double retry_after, int global, const char *route) {
  struct mock_ratelimit *rl;

  if (mock == NULL || !(retry_after >= 0.0 && retry_after <= 86400.0) ||
      (route != NULL && strlen(route) >= sizeof rl->inject_route))
    return DGW_ERR_INVALID_ARGUMENT;
  if ((rl = state(mock)) == NULL)
    return DGW_ERR_NOMEM;
  rl->inject_left = count;
  rl->inject_retry_after = retry_after;
  rl->inject_global = global != 0;
  rl->inject_scope[0] = '\0';
  snprintf(rl->inject_route, sizeof rl->inject_route, "%s",
           route != NULL ? route : "");
  return DGW_OK;
}

void mock_ratelimit_ctl(struct dgw_mock_conn *conn, json_object *body) {
  struct dgw_mock *mock = conn->mock;
  json_object *v, *o;
  const char *route = NULL, *scope = NULL;
  double retry_after = 1.0;
  int64_t count = 1;
  int global = 0;

  if (json_object_object_get_ex(body, "count", &v)) {
    if (!mock_json_is_int(v) || (count = json_object_get_int64(v)) < 0 ||
        count > UINT32_MAX)
      goto bad;
  }
  if (json_object_object_get_ex(body, "retry_after", &v)) {
    if (!json_object_is_type(v, json_type_double) && !mock_json_is_int(v))
      goto bad;
    retry_after = json_object_get_double(v);
  }
  if (json_object_object_get_ex(body, "global", &v)) {
    if (!json_object_is_type(v, json_type_boolean))
      goto bad;
    global = json_object_get_boolean(v);
  }
  if (json_object_object_get_ex(body, "route", &v)) {
    if (!json_object_is_type(v, json_type_string))
      goto bad;
    route = json_object_get_string(v);
  }
  if (json_object_object_get_ex(body, "scope", &v)) {
    if (!json_object_is_type(v, json_type_string) ||
        (strcmp((scope = json_object_get_string(v)), "user") != 0 &&
         strcmp(scope, "global") != 0 && strcmp(scope, "shared") != 0))
      goto bad;
  }
  if (dgw_mock_inject_429(mock, (unsigned)count, retry_after, global, route) !=
      DGW_OK)
    goto bad;
  if (scope != NULL)
    snprintf(mock->ratelimit->inject_scope,
             sizeof mock->ratelimit->inject_scope, "%s", scope);
  mock_log(mock, DGW_LOG_INFO, "control: the next %lld REST requests%s%s: 429",
           (long long)count, route != NULL ? " under " : "",
           route != NULL ? route : "");
  o = mock_ratelimit_json(mock);
  mock_http_reply(conn, 200, o != NULL ? mock_json_plain(o) : "{}", NULL);
  json_object_put(o);
  return;
bad:
  mock_http_reply(conn, 400,
                  "{\"message\":\"count: a non-negative integer, retry_after: "
                  "seconds, global: a boolean, route: a path prefix, scope: "
                  "user, global or shared\",\"code\":0}",
                  NULL);
}

json_object *mock_ratelimit_json(struct dgw_mock *mock) {
  const struct mock_ratelimit *rl = mock->ratelimit;
  json_object *o = json_object_new_object();

  if (o == NULL)
    return NULL;
  json_object_object_add(
      o, "injected_left",
      json_object_new_int64(rl != NULL ? (int64_t)rl->inject_left : 0));
  json_object_object_add(
      o, "injected_served",
      json_object_new_int64(rl != NULL ? (int64_t)rl->inject_served : 0));
  json_object_object_add(o, "enforced",
                         json_object_new_boolean(mock->cfg.rest_rate_limits));
  json_object_object_add(
      o, "enforced_served",
      json_object_new_int64(rl != NULL ? (int64_t)rl->enforced_served : 0));
  return o;
}

void mock_ratelimit_reset(struct dgw_mock *mock) {
  struct mock_ratelimit *rl = mock->ratelimit;

  if (rl == NULL)
    return;
  rl->inject_left = 0;
  rl->len = 0;
  rl->global_used = 0;
  rl->global_reset_ms = 0;
}

void mock_ratelimit_free(struct dgw_mock *mock) {
  if (mock->ratelimit == NULL)
    return;
  free(mock->ratelimit->buckets);
  free(mock->ratelimit);
  mock->ratelimit = NULL;
}
