/* The Redis connection: a hiredis async context on the caller's libevent
 * base, AUTH and SELECT before "up", connect and command timeouts,
 * reconnection with backoff and jitter, and one callback per accepted
 * command whatever happens to the connection.
 *
 * Who calls back a command: while the connection lives, hiredis does
 * (req_cb with the reply).  The moment the connection is lost or dropped,
 * lose() takes every pending request off the list, marks it an orphan and
 * calls its callback with the cause itself; hiredis's own later NULL-reply
 * call for an orphan only frees it.  So each callback runs exactly once. */
#include "config.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/dns.h>
#include <event2/util.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <openssl/evp.h>

#include "clock.h"
#include "guard.h"
#include "redis.h"
#include "resolver.h"
#include "why.h"

enum state { ST_DOWN, ST_CONNECTING, ST_HANDSHAKE, ST_UP };

/* The handshake's commands, as hiredis privdata. */
enum { HS_AUTH = 1, HS_SELECT, HS_PING };

#define WARN_EVERY_MS 10000
#define BACKOFF_FIRST_MS 50

struct req {
  struct req *prev, *next;
  struct dgw_redis *r;
  redis_reply_fn fn;
  void *ud;
  uint64_t sent_ms;
  int orphan;       /* lose() took it: it calls back, hiredis only frees */
  int hiredis_done; /* hiredis called req_cb for it */
  int user_done;    /* its callback ran */
};

/* A host name lookup in flight (evdns: hiredis would block the loop in
 * getaddrinfo()).  Abandoned (r NULL) when the attempt ends first; its
 * callback always comes and frees it. */
struct lookup {
  struct dgw_redis *r;
  struct dgw_resolver *res; /* the lookup's own reference */
  struct evdns_getaddrinfo_request *req;
};

struct dgw_redis {
  struct event_base *base;
  struct dgw_resolver *resolver; /* made on the first host name */
  struct lookup *lookup;         /* the one in flight, or NULL */
  struct redis_addr addr;
  char desc[512];
  struct redis_callbacks cb;
  void *ud;
  dgw_log_fn log;
  void *log_ud;
  redisAsyncContext *ac;
  enum state state;
  struct event *retry; /* the next connect attempt */
  struct event *watch; /* connect timeout, then the oldest command's */
  uint32_t connect_ms, command_ms, backoff_cap_ms;
  uint32_t backoff_ms;
  uint64_t failures; /* connect attempts failed since the last up */
  uint64_t last_warn_ms;
  enum dgw_log_level fail_level;
  char last_error[400];
  struct req *head, *tail;
  struct dgw_guard guard;
  uint64_t rng;
};

static void rlog(struct dgw_redis *r, enum dgw_log_level level, const char *fmt,
                 ...) __attribute__((format(printf, 3, 4)));

static void rlog(struct dgw_redis *r, enum dgw_log_level level, const char *fmt,
                 ...) {
  char line[1024];
  va_list ap;

  if (r->log == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  r->log(level, line, r->log_ud);
}

static void finish_free(struct dgw_redis *r);

/* Leaves a library frame; 1 when `r` is gone. */
static int leave(struct dgw_redis *r) {
  if (dgw_guard_leave(&r->guard)) {
    finish_free(r);
    return 1;
  }
  return 0;
}

static uint32_t jitter(struct dgw_redis *r, uint32_t ms) {
  r->rng ^= r->rng << 13;
  r->rng ^= r->rng >> 7;
  r->rng ^= r->rng << 17;
  return ms / 2 + (uint32_t)(r->rng % (ms / 2 + 1));
}

static void schedule_retry(struct dgw_redis *r) {
  struct timeval tv;

  if (r->backoff_ms == 0)
    r->backoff_ms = BACKOFF_FIRST_MS;
  else if (r->backoff_ms < r->backoff_cap_ms)
    r->backoff_ms = r->backoff_ms * 2 < r->backoff_cap_ms ? r->backoff_ms * 2
                                                          : r->backoff_cap_ms;
  tv = dgw_timeval_ms(jitter(r, r->backoff_ms));
  evtimer_add(r->retry, &tv);
}

/* A connect attempt failed: say so (the first time, then every 10 s) and
 * try again later. */
static void failed(struct dgw_redis *r, const char *cause) {
  uint64_t now = dgw_monotonic_ms();
  enum dgw_log_level level = r->fail_level;

  r->fail_level = DGW_LOG_WARN;
  r->failures++;
  snprintf(r->last_error, sizeof(r->last_error), "%s", cause);
  if (r->failures == 1 || now - r->last_warn_ms >= WARN_EVERY_MS) {
    rlog(r, level, "redis: cannot use %s (attempt %llu): %s; retrying", r->desc,
         (unsigned long long)r->failures, cause);
    r->last_warn_ms = now;
  }
  schedule_retry(r);
}

/* Arms the watch for the oldest pending command (when up). */
static void rearm_watch(struct dgw_redis *r) {
  uint64_t now, due;
  struct timeval tv;

  if (r->state != ST_UP)
    return;
  if (r->head == NULL) {
    evtimer_del(r->watch);
    return;
  }
  now = dgw_monotonic_ms();
  due = r->head->sent_ms + r->command_ms;
  tv = dgw_timeval_ms(due > now ? due - now : 0);
  evtimer_add(r->watch, &tv);
}

/*
 * The connection is lost (hiredis is freeing it: free_ac 0) or we drop it
 * (free_ac 1).  Every pending command gets its callback with `cause`;
 * then, unless the handle is being freed, on_down (when it was up) and a
 * reconnect.  Called inside a library frame.
 */
static void lose(struct dgw_redis *r, const char *cause, int free_ac) {
  redisAsyncContext *ac = r->ac;
  struct req *list = r->head, *q, *next;
  int was_up = r->state == ST_UP;

  r->head = r->tail = NULL;
  r->ac = NULL;
  r->state = ST_DOWN;
  evtimer_del(r->watch);
  if (r->lookup != NULL) {
    struct lookup *l = r->lookup;

    r->lookup = NULL;
    l->r = NULL; /* its callback (with EVUTIL_EAI_CANCEL) frees it */
    if (l->req != NULL)
      evdns_getaddrinfo_cancel(l->req);
  }
  for (q = list; q != NULL; q = q->next)
    q->orphan = 1;
  if (ac != NULL) {
    ac->data = NULL;
    if (free_ac)
      redisAsyncFree(ac); /* deferred by hiredis inside its callbacks */
  }
  for (q = list; q != NULL; q = next) {
    next = q->next;
    if (q->fn != NULL)
      q->fn(r, NULL, cause, q->ud);
    q->user_done = 1;
    if (q->hiredis_done)
      free(q);
  }
  if (dgw_guard_dying(&r->guard))
    return;
  if (was_up) {
    snprintf(r->last_error, sizeof(r->last_error), "%s", cause);
    rlog(r, DGW_LOG_WARN, "redis: lost the connection to %s: %s", r->desc,
         cause);
    r->last_warn_ms = dgw_monotonic_ms();
    if (r->cb.on_down != NULL)
      r->cb.on_down(r, cause, r->ud);
    if (dgw_guard_dying(&r->guard))
      return;
    r->backoff_ms = 0;
    r->failures = 0;
    schedule_retry(r);
  } else {
    failed(r, cause);
  }
}

static void req_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct req *q = priv;
  struct dgw_redis *r = q->r;
  redisReply *rep = reply;
  const char *err = NULL;

  if (q->orphan) {
    q->hiredis_done = 1;
    if (q->user_done)
      free(q);
    return;
  }
  dgw_guard_enter(&r->guard);
  if (rep == NULL) {
    char cause[300];

    snprintf(cause, sizeof(cause), "connection lost: %s",
             ac->err != 0 ? ac->errstr : "closed");
    lose(r, cause, 0); /* calls q back with the others */
    q->hiredis_done = 1;
    free(q);
    leave(r);
    return;
  }
  if (q->prev != NULL)
    q->prev->next = q->next;
  else
    r->head = q->next;
  if (q->next != NULL)
    q->next->prev = q->prev;
  else
    r->tail = q->prev;
  if (rep->type == REDIS_REPLY_ERROR)
    err = rep->str;
  if (q->fn != NULL)
    q->fn(r, rep, err, q->ud);
  free(q);
  if (!dgw_guard_dying(&r->guard))
    rearm_watch(r);
  leave(r);
}

static void handshake_cb(redisAsyncContext *ac, void *reply, void *priv) {
  struct dgw_redis *r = ac->data;
  redisReply *rep = reply;
  int kind = (int)(intptr_t)priv;
  static const char *const names[] = {"", "AUTH", "SELECT", "PING"};

  if (r == NULL || rep == NULL)
    return; /* dropped: lose() or on_disconnect handles it */
  dgw_guard_enter(&r->guard);
  if (rep->type == REDIS_REPLY_ERROR) {
    char cause[400];

    snprintf(cause, sizeof(cause), "%s failed: %s", names[kind], rep->str);
    r->fail_level = DGW_LOG_ERROR;
    lose(r, cause, 1);
  } else if (kind == HS_PING) {
    r->state = ST_UP;
    evtimer_del(r->watch);
    if (r->failures > 0)
      rlog(r, DGW_LOG_INFO, "redis: connected to %s after %llu failed attempts",
           r->desc, (unsigned long long)r->failures);
    r->failures = 0;
    r->backoff_ms = 0;
    if (r->cb.on_up != NULL)
      r->cb.on_up(r, r->ud);
  }
  leave(r);
}

static void on_connect(const redisAsyncContext *cac, int status) {
  struct dgw_redis *r = cac->data;
  redisAsyncContext *ac = r != NULL ? r->ac : NULL;

  if (r == NULL || ac != cac)
    return;
  dgw_guard_enter(&r->guard);
  if (status != REDIS_OK) {
    char cause[300];

    snprintf(cause, sizeof(cause), "%s", cac->errstr);
    lose(r, cause, 0); /* hiredis frees the context after this */
    leave(r);
    return;
  }
  r->state = ST_HANDSHAKE;
  if (r->addr.password[0] != '\0') {
    const char *argv[3] = {"AUTH", r->addr.user, r->addr.password};

    if (r->addr.user[0] != '\0')
      redisAsyncCommandArgv(ac, handshake_cb, (void *)(intptr_t)HS_AUTH, 3,
                            argv, NULL);
    else
      redisAsyncCommand(ac, handshake_cb, (void *)(intptr_t)HS_AUTH, "AUTH %s",
                        r->addr.password);
  }
  if (r->addr.db != 0)
    redisAsyncCommand(ac, handshake_cb, (void *)(intptr_t)HS_SELECT,
                      "SELECT %d", r->addr.db);
  redisAsyncCommand(ac, handshake_cb, (void *)(intptr_t)HS_PING, "PING");
  leave(r);
}

static void on_disconnect(const redisAsyncContext *cac, int status) {
  struct dgw_redis *r = cac->data;
  char cause[300];

  if (r == NULL || r->ac != cac)
    return;
  dgw_guard_enter(&r->guard);
  snprintf(cause, sizeof(cause), "connection lost: %s",
           status == REDIS_OK || cac->err == 0 ? "closed by Redis"
                                               : cac->errstr);
  lose(r, cause, 0);
  leave(r);
}

/* Connects to `host` (a numeric address, or the socket path). */
static void connect_to(struct dgw_redis *r, const char *host) {
  redisAsyncContext *ac;

  if (r->addr.is_unix)
    ac = redisAsyncConnectUnix(r->addr.path);
  else
    ac = redisAsyncConnect(host, r->addr.port);
  if (ac == NULL) {
    r->state = ST_DOWN;
    evtimer_del(r->watch);
    failed(r, "out of memory");
    return;
  }
  if (ac->err != 0) {
    char cause[300];

    snprintf(cause, sizeof(cause), "%s", ac->errstr);
    redisAsyncFree(ac);
    r->state = ST_DOWN;
    evtimer_del(r->watch);
    failed(r, cause);
    return;
  }
  if (redisLibeventAttach(ac, r->base) != REDIS_OK) {
    redisAsyncFree(ac);
    r->state = ST_DOWN;
    evtimer_del(r->watch);
    failed(r, "cannot attach to the event loop");
    return;
  }
  ac->data = r;
  redisAsyncSetConnectCallback(ac, on_connect);
  redisAsyncSetDisconnectCallback(ac, on_disconnect);
  r->ac = ac;
  r->state = ST_CONNECTING;
}

static void lookup_cb(int result, struct evutil_addrinfo *res, void *arg) {
  struct lookup *l = arg;
  struct dgw_redis *r = l->r;
  char ip[INET6_ADDRSTRLEN] = "";

  dgw_resolver_unref_in_callback(l->res);
  free(l);
  if (r == NULL) { /* abandoned */
    if (res != NULL)
      evutil_freeaddrinfo(res);
    return;
  }
  r->lookup = NULL;
  if (result == 0 && res != NULL) {
    if (res->ai_family == AF_INET)
      evutil_inet_ntop(AF_INET,
                       &((struct sockaddr_in *)(void *)res->ai_addr)->sin_addr,
                       ip, sizeof(ip));
    else if (res->ai_family == AF_INET6)
      evutil_inet_ntop(
          AF_INET6, &((struct sockaddr_in6 *)(void *)res->ai_addr)->sin6_addr,
          ip, sizeof(ip));
  }
  if (res != NULL)
    evutil_freeaddrinfo(res);
  dgw_guard_enter(&r->guard);
  if (ip[0] == '\0') {
    char cause[400];

    snprintf(cause, sizeof(cause), "cannot resolve %s: %s", r->addr.host,
             result != 0 ? evutil_gai_strerror(result) : "no address");
    r->state = ST_DOWN;
    evtimer_del(r->watch);
    failed(r, cause);
  } else {
    connect_to(r, ip);
  }
  leave(r);
}

/* Resolves the host name on the loop (evdns), then connects. */
static void start_lookup(struct dgw_redis *r) {
  struct evutil_addrinfo hints;
  struct evdns_getaddrinfo_request *req;
  struct lookup *l;

  if (r->resolver == NULL)
    r->resolver = dgw_resolver_new(r->base, NULL, 1);
  l = calloc(1, sizeof(*l));
  if (r->resolver == NULL || l == NULL) {
    free(l);
    r->state = ST_DOWN;
    evtimer_del(r->watch);
    failed(r, "out of memory");
    return;
  }
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  l->r = r;
  l->res = r->resolver;
  dgw_resolver_ref(l->res);
  r->lookup = l;
  /* The callback may run inside this call (/etc/hosts): it frees `l` and
   * clears r->lookup. */
  req = evdns_getaddrinfo(dgw_resolver_evdns(r->resolver), r->addr.host, NULL,
                          &hints, lookup_cb, l);
  if (r->lookup != NULL)
    r->lookup->req = req;
}

static int numeric_host(const char *host) {
  unsigned char buf[sizeof(struct in6_addr)];

  return inet_pton(AF_INET, host, buf) == 1 ||
         inet_pton(AF_INET6, host, buf) == 1;
}

/* One connect attempt; the watch bounds it all (lookup, connect, AUTH,
 * SELECT, PING). */
static void start_connect(struct dgw_redis *r) {
  struct timeval tv = dgw_timeval_ms(r->connect_ms);

  r->state = ST_CONNECTING;
  evtimer_add(r->watch, &tv);
  if (!r->addr.is_unix && !numeric_host(r->addr.host))
    start_lookup(r);
  else
    connect_to(r, r->addr.host);
}

static void retry_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_redis *r = arg;

  (void)fd;
  (void)what;
  dgw_guard_enter(&r->guard);
  start_connect(r);
  leave(r);
}

static void watch_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_redis *r = arg;
  char cause[160];

  (void)fd;
  (void)what;
  if (r->ac == NULL && r->lookup == NULL)
    return;
  dgw_guard_enter(&r->guard);
  if (r->state == ST_UP)
    snprintf(cause, sizeof(cause), "no reply within %u ms", r->command_ms);
  else
    snprintf(cause, sizeof(cause), "not connected within %u ms", r->connect_ms);
  lose(r, cause, 1);
  leave(r);
}

struct dgw_redis *redis_new(struct event_base *base, const char *url,
                            const struct redis_callbacks *cb, void *user_data,
                            dgw_log_fn log, void *log_user_data, char *why,
                            size_t why_len) {
  struct dgw_redis *r = calloc(1, sizeof(*r));
  struct timeval now = {0, 0};

  if (r == NULL) {
    dgw_set_why(why, why_len, "out of memory");
    return NULL;
  }
  if (redis_url_parse(url, &r->addr, why, why_len) < 0) {
    free(r);
    return NULL;
  }
  r->base = base;
  if (cb != NULL)
    r->cb = *cb;
  r->ud = user_data;
  r->log = log;
  r->log_ud = log_user_data;
  r->connect_ms = 2000;
  r->command_ms = 5000;
  r->backoff_cap_ms = 2000;
  r->fail_level = DGW_LOG_WARN;
  r->rng = dgw_monotonic_ns() ^ (uint64_t)(uintptr_t)r;
  if (r->rng == 0)
    r->rng = 1;
  redis_addr_describe(&r->addr, r->desc, sizeof(r->desc));
  r->retry = evtimer_new(base, retry_cb, r);
  r->watch = evtimer_new(base, watch_cb, r);
  if (r->retry == NULL || r->watch == NULL) {
    if (r->retry != NULL)
      event_free(r->retry);
    if (r->watch != NULL)
      event_free(r->watch);
    free(r);
    dgw_set_why(why, why_len, "out of memory");
    return NULL;
  }
  evtimer_add(r->retry, &now);
  return r;
}

void redis_set_timeouts(struct dgw_redis *r, uint32_t connect_ms,
                        uint32_t command_ms, uint32_t backoff_cap_ms) {
  if (connect_ms != 0)
    r->connect_ms = connect_ms;
  if (command_ms != 0)
    r->command_ms = command_ms;
  if (backoff_cap_ms != 0)
    r->backoff_cap_ms = backoff_cap_ms;
}

int redis_is_up(const struct dgw_redis *r) {
  return r != NULL && r->state == ST_UP && !dgw_guard_dying(&r->guard);
}

uint64_t redis_failures(const struct dgw_redis *r) {
  return r->failures;
}

const char *redis_last_error(const struct dgw_redis *r) {
  return r->last_error;
}

const char *redis_describe(const struct dgw_redis *r) {
  return r->desc;
}

/* Puts a request on the list once hiredis took its command. */
static struct req *req_new(struct dgw_redis *r, redis_reply_fn fn, void *ud) {
  struct req *q;

  if (!redis_is_up(r))
    return NULL;
  q = calloc(1, sizeof(*q));
  if (q == NULL)
    return NULL;
  q->r = r;
  q->fn = fn;
  q->ud = ud;
  q->sent_ms = dgw_monotonic_ms();
  return q;
}

static void req_link(struct dgw_redis *r, struct req *q) {
  q->prev = r->tail;
  if (r->tail != NULL)
    r->tail->next = q;
  else
    r->head = q;
  r->tail = q;
  if (r->head == q)
    rearm_watch(r);
}

int redis_command_argv(struct dgw_redis *r, redis_reply_fn fn, void *user_data,
                       int argc, const char **argv, const size_t *argvlen) {
  struct req *q = req_new(r, fn, user_data);

  if (q == NULL)
    return -1;
  if (redisAsyncCommandArgv(r->ac, req_cb, q, argc, argv, argvlen) !=
      REDIS_OK) {
    free(q);
    return -1;
  }
  req_link(r, q);
  return 0;
}

int redis_command(struct dgw_redis *r, redis_reply_fn fn, void *user_data,
                  const char *fmt, ...) {
  struct req *q = req_new(r, fn, user_data);
  char *cmd = NULL;
  int len, rc;
  va_list ap;

  if (q == NULL)
    return -1;
  va_start(ap, fmt);
  len = redisvFormatCommand(&cmd, fmt, ap);
  va_end(ap);
  if (len < 0) {
    free(q);
    return -1;
  }
  rc = redisAsyncFormattedCommand(r->ac, req_cb, q, cmd, (size_t)len);
  redisFreeCommand(cmd);
  if (rc != REDIS_OK) {
    free(q);
    return -1;
  }
  req_link(r, q);
  return 0;
}

int redis_command_formatted(struct dgw_redis *r, redis_reply_fn fn,
                            void *user_data, const char *cmd, size_t len) {
  struct req *q = req_new(r, fn, user_data);

  if (q == NULL)
    return -1;
  if (redisAsyncFormattedCommand(r->ac, req_cb, q, cmd, len) != REDIS_OK) {
    free(q);
    return -1;
  }
  req_link(r, q);
  return 0;
}

/* ---------------------------------------------------------------- scripts */

/* An EVALSHA in flight, with a copy of its arguments for the EVAL retry. */
struct eval_call {
  struct redis_script *s;
  redis_reply_fn fn;
  void *ud;
  int nkeys, argc;
  const char **argv;
  size_t *lens;
};

static int send_eval(struct dgw_redis *r, struct eval_call *e, int by_sha,
                     redis_reply_fn fn, void *ud) {
  const char *argv[e->argc + 3];
  size_t lens[e->argc + 3];
  char nk[16];

  snprintf(nk, sizeof(nk), "%d", e->nkeys);
  argv[0] = by_sha ? "EVALSHA" : "EVAL";
  argv[1] = by_sha ? e->s->sha1 : e->s->body;
  argv[2] = nk;
  lens[0] = strlen(argv[0]);
  lens[1] = strlen(argv[1]);
  lens[2] = strlen(nk);
  for (int i = 0; i < e->argc; i++) {
    argv[i + 3] = e->argv[i];
    lens[i + 3] = e->lens[i];
  }
  return redis_command_argv(r, fn, ud, e->argc + 3, argv, lens);
}

static void eval_cb(struct dgw_redis *r, redisReply *reply, const char *err,
                    void *ud) {
  struct eval_call *e = ud;

  if (reply != NULL && reply->type == REDIS_REPLY_ERROR &&
      strncmp(reply->str, "NOSCRIPT", 8) == 0) {
    if (send_eval(r, e, 0, e->fn, e->ud) < 0 && e->fn != NULL)
      e->fn(r, NULL, "connection lost before EVAL after NOSCRIPT", e->ud);
  } else if (e->fn != NULL) {
    e->fn(r, reply, err, e->ud);
  }
  free(e);
}

static void script_sha1(struct redis_script *s) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int n = 0;

  EVP_Digest(s->body, strlen(s->body), md, &n, EVP_sha1(), NULL);
  for (unsigned int i = 0; i < n && i < 20; i++)
    snprintf(s->sha1 + 2 * i, 3, "%02x", md[i]);
}

int redis_eval(struct dgw_redis *r, struct redis_script *s, int nkeys, int argc,
               const char **argv, const size_t *argvlen, redis_reply_fn fn,
               void *user_data) {
  size_t total = 0, off;
  struct eval_call *e;
  char *p;

  if (!redis_is_up(r) || argc < 0 || nkeys < 0 || nkeys > argc)
    return -1;
  if (s->sha1[0] == '\0')
    script_sha1(s);
  for (int i = 0; i < argc; i++)
    total += argvlen != NULL ? argvlen[i] : strlen(argv[i]);
  off = sizeof(*e) + (size_t)argc * (sizeof(char *) + sizeof(size_t));
  e = malloc(off + total + 1);
  if (e == NULL)
    return -1;
  e->s = s;
  e->fn = fn;
  e->ud = user_data;
  e->nkeys = nkeys;
  e->argc = argc;
  e->argv = (const char **)(void *)(e + 1);
  e->lens = (size_t *)(void *)(e->argv + argc);
  p = (char *)e + off;
  for (int i = 0; i < argc; i++) {
    size_t n = argvlen != NULL ? argvlen[i] : strlen(argv[i]);

    memcpy(p, argv[i], n);
    e->argv[i] = p;
    e->lens[i] = n;
    p += n;
  }
  if (send_eval(r, e, 1, eval_cb, e) < 0) {
    free(e);
    return -1;
  }
  return 0;
}

/* ------------------------------------------------------------------ free */

static void finish_free(struct dgw_redis *r) {
  r->guard.depth = 1;
  r->guard.free_pending = 1;
  lose(r, "the Redis handle was freed", 1);
  dgw_resolver_unref(r->resolver);
  event_free(r->retry);
  event_free(r->watch);
  free(r);
}

void redis_free(struct dgw_redis *r) {
  if (r != NULL && dgw_guard_free(&r->guard))
    finish_free(r);
}
