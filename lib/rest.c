/*
 * GET /gateway/bot over libevent's HTTP client, retried until the answer
 * is one to act on.
 *
 * An attempt: resolve the API host (the client's resolver, or at once for
 * an IP literal), then one evhttp_connection per address in turn, each
 * over a fresh bufferevent (and SSL for https://, with SNI and host-name
 * verification), until one gives an HTTP status; all of it within the
 * per-attempt time limit.  The status decides: 200 with a valid body is
 * the answer; 401 and the other refusals end the call; everything else is
 * retried after a wait.  Every libevent callback into this file is
 * bracketed by enter()/leave(), so that dgw_rest_free() from inside the
 * owner's callback is deferred until we are off the stack.
 */
#include "config.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/util.h>
#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/err.h>

#include "clock.h"
#include "connector.h"
#include "guard.h"
#include "policy.h"
#include "resolver.h"
#include "rest.h"
#include "tls.h"
#include "why.h"

#define REST_ROUTE "/gateway/bot"
/* Response headers read at most; Discord sends about 1.5 KiB. */
#define MAX_HEADERS 16384

enum rest_state {
  REST_IDLE,       /* created; the first attempt starts from the loop */
  REST_RESOLVING,  /* looking the API host up */
  REST_REQUESTING, /* an HTTP request to one of its addresses */
  REST_WAITING,    /* between attempts */
  REST_DONE,       /* answered; nothing more happens */
};

struct dgw_rest {
  struct event_base *base;
  struct dgw_rest_config cfg;
  struct dgw_url api;
  char *api_url;       /* as configured, without a trailing '/' */
  char *authorization; /* "Bot TOKEN", wiped when freed */
  char path[DGW_URL_MAX + sizeof(REST_ROUTE)];
  char user_agent[96];
  dgw_rest_done_fn done;
  void *user_data;

  enum rest_state state;
  struct event *timer;           /* the attempt's deadline, then the wait */
  uint64_t due_ns;               /* when it is due, on CLOCK_MONOTONIC */
  struct event *kick;            /* the first attempt, from the loop */
  struct dgw_lookup *lookup;     /* the API host's, in flight */
  struct evutil_addrinfo *addrs; /* this attempt's addresses */
  struct evutil_addrinfo *next_addr;
  char addr_text[INET6_ADDRSTRLEN];
  struct evhttp_connection *evcon; /* the request in flight */
  int http_error;                  /* from its error callback, or -1 */
  uint32_t attempts;
  uint32_t failures;      /* in a row, for the backoff */
  struct dgw_guard guard; /* dgw_rest_free() inside a callback waits */
};

static void rest_log(struct dgw_rest *r, enum dgw_log_level level,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void attempt_failed(struct dgw_rest *r, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void rest_log(struct dgw_rest *r, enum dgw_log_level level,
                     const char *fmt, ...) {
  char line[512];
  va_list ap;

  if (r->cfg.log == NULL || level > r->cfg.log_level)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  r->cfg.log(level, line, r->cfg.log_user_data);
}

/* ------------------------------------------------------------- the call */

static void enter(struct dgw_rest *r) {
  dgw_guard_enter(&r->guard);
}

static void destroy(struct dgw_rest *r);

/* Returns 1 when the call was freed and must not be touched again. */
static int leave(struct dgw_rest *r) {
  if (dgw_guard_leave(&r->guard)) {
    destroy(r);
    return 1;
  }
  return 0;
}

static uint64_t now_ns(void) {
  return dgw_monotonic_ns();
}

static void arm_ns(struct dgw_rest *r, uint64_t ns) {
  struct timeval tv = dgw_timeval_ns(ns); /* rounded up */

  evtimer_del(r->timer);
  evtimer_add(r->timer, &tv);
}

/* Arms the timer for `ms` from now.  libevent 2.1 times its timers on
 * CLOCK_MONOTONIC_COARSE (4 ms steps on many kernels) and from the time it
 * cached when the loop woke, so they may fire a little early; timer_cb
 * checks `due_ns` and waits out the rest, so that a wait the server asked
 * for is never cut short. */
static void arm(struct dgw_rest *r, uint32_t ms) {
  r->due_ns = now_ns() + (uint64_t)ms * 1000000u;
  arm_ns(r, (uint64_t)ms * 1000000u);
}

/* Lets go of the connection whose request callback is running, at once.
 * libevent 2.1 is done with it by then: the request callback is the last
 * thing each of its paths does with the connection (evhttp_connection_done
 * unlinks the request before the callback and afterwards frees only the
 * request, since we never ask for EVHTTP_CON_AUTOFREE;
 * evhttp_connection_fail_ and the connect failure's cleanup call it last),
 * and the bufferevent it frees is refcounted and finalized by libevent,
 * from the loop or at event_base_free().  Freeing it from a later loop
 * callback instead leaked it whenever the loop never ran again (an owner
 * that breaks its loop in the callback this answer leads to, then frees
 * everything). */
static void release_connection(struct dgw_rest *r) {
  if (r->evcon == NULL)
    return;
  evhttp_connection_free(r->evcon);
  r->evcon = NULL;
}

/* Ends whatever the current attempt still holds, synchronously (see
 * release_connection()). */
static void drop_attempt(struct dgw_rest *r) {
  dgw_lookup_cancel(r->lookup);
  r->lookup = NULL;
  if (r->evcon != NULL) {
    evhttp_connection_free(r->evcon);
    r->evcon = NULL;
  }
  if (r->addrs != NULL) {
    evutil_freeaddrinfo(r->addrs);
    r->addrs = NULL;
    r->next_addr = NULL;
  }
}

static void destroy(struct dgw_rest *r) {
  drop_attempt(r);
  if (r->timer != NULL)
    event_free(r->timer);
  if (r->kick != NULL)
    event_free(r->kick);
  if (r->authorization != NULL) {
    OPENSSL_cleanse(r->authorization, strlen(r->authorization));
    free(r->authorization);
  }
  free(r->api_url);
  free(r);
}

/* The answer: tells the owner, once. */
static void finish(struct dgw_rest *r, int error,
                   const struct dgw_gateway_bot *bot, const char *why) {
  drop_attempt(r);
  evtimer_del(r->timer);
  r->state = REST_DONE;
  if (r->done != NULL && !dgw_guard_dying(&r->guard))
    r->done(r, error, bot, why, r->user_data);
}

/* Waits `wait_ms`, then tries again. */
static void retry_in(struct dgw_rest *r, uint32_t wait_ms, const char *reason) {
  drop_attempt(r);
  r->failures++;
  r->state = REST_WAITING;
  rest_log(r, DGW_LOG_WARN, "GET %s%s: %s; retrying in %u ms (attempt %u)",
           r->api_url, REST_ROUTE, reason, (unsigned)wait_ms,
           (unsigned)r->attempts + 1);
  arm(r, wait_ms);
}

static uint32_t backoff(struct dgw_rest *r) {
  return dgw_backoff_ms(r->failures, r->cfg.backoff_base_ms,
                        r->cfg.backoff_max_ms, dgw_random01());
}

static void attempt_failed(struct dgw_rest *r, const char *fmt, ...) {
  char reason[400];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(reason, sizeof(reason), fmt, ap);
  va_end(ap);
  retry_in(r, backoff(r), reason);
}

static void request_done(struct evhttp_request *req, void *arg);

static void request_error(enum evhttp_request_error error, void *arg) {
  struct dgw_rest *r = arg;

  r->http_error = (int)error;
}

/* Starts the request on the address in r->addr_text.  The request
 * callback may run before this returns (libevent reports an immediate
 * connect failure at once), so nothing may follow a call to this. */
static void open_connection(struct dgw_rest *r) {
  struct bufferevent *bev;
  struct evhttp_request *req;
  struct evkeyvalq *headers;
  /* A second more than our deadline, so that ours decides (see below). */
  uint64_t idle_ms = (uint64_t)r->cfg.timeout_ms + 1000;
  struct timeval tv = dgw_timeval_ms(idle_ms);
  int err = DGW_OK;

  /* evhttp connects the bufferevent itself (it closes any socket one
   * already has), so the whole connector cannot be used here; only its
   * TLS bufferevent. */
  bev = dgw_connector_bufferevent_new(r->base, r->api.tls ? r->cfg.ssl : NULL,
                                      r->api.host, &err);
  if (bev == NULL) {
    if (err == DGW_ERR_TLS)
      attempt_failed(r, "cannot set up TLS for %s", r->api.host);
    else
      attempt_failed(r, "out of memory");
    return;
  }
  /* The address is numeric, so evhttp never resolves (that was ours, on
   * the client's resolver); no dns_base. */
  r->evcon = evhttp_connection_base_bufferevent_new(r->base, NULL, bev,
                                                    r->addr_text, r->api.port);
  if (r->evcon == NULL) {
    bufferevent_free(bev);
    attempt_failed(r, "out of memory");
    return;
  }
  /* Our own deadline covers the whole attempt, DNS to the last byte;
   * evhttp's is an idle timeout per read or write, which a server that
   * trickles bytes never trips.  It is set only to keep evhttp's 50 s
   * default out of the way. */
  evhttp_connection_set_timeout_tv(r->evcon, &tv);
  evhttp_connection_set_max_body_size(r->evcon, (ev_ssize_t)r->cfg.max_body);
  evhttp_connection_set_max_headers_size(r->evcon, MAX_HEADERS);
  evhttp_connection_set_retries(r->evcon, 0);
  req = evhttp_request_new(request_done, r);
  if (req == NULL) {
    drop_attempt(r);
    attempt_failed(r, "out of memory");
    return;
  }
  evhttp_request_set_error_cb(req, request_error);
  headers = evhttp_request_get_output_headers(req);
  if (evhttp_add_header(headers, "Host", r->api.host_header) != 0 ||
      evhttp_add_header(headers, "Authorization", r->authorization) != 0 ||
      evhttp_add_header(headers, "User-Agent", r->user_agent) != 0 ||
      evhttp_add_header(headers, "Accept", "application/json") != 0 ||
      evhttp_add_header(headers, "Connection", "close") != 0) {
    evhttp_request_free(req);
    drop_attempt(r);
    attempt_failed(r, "out of memory");
    return;
  }
  r->http_error = -1;
  r->state = REST_REQUESTING;
  if (evhttp_make_request(r->evcon, req, EVHTTP_REQ_GET, r->path) != 0) {
    drop_attempt(r); /* the request was freed with the failure */
    attempt_failed(r, "cannot start the request");
  }
}

/* Tries the next address of the attempt, or gives the attempt up with
 * `reason` (why the previous one failed) when none is left. */
static void connect_next(struct dgw_rest *r, const char *reason) {
  while (r->next_addr != NULL) {
    struct evutil_addrinfo *ai = r->next_addr;
    const void *a = NULL;

    r->next_addr = ai->ai_next;
    if (ai->ai_family == AF_INET)
      a = &((const struct sockaddr_in *)(const void *)ai->ai_addr)->sin_addr;
    else if (ai->ai_family == AF_INET6)
      a = &((const struct sockaddr_in6 *)(const void *)ai->ai_addr)->sin6_addr;
    if (a == NULL || evutil_inet_ntop(ai->ai_family, a, r->addr_text,
                                      sizeof(r->addr_text)) == NULL)
      continue;
    open_connection(r);
    return;
  }
  attempt_failed(r, "%s", reason);
}

static void resolved(int error, struct evutil_addrinfo *res, const char *why,
                     void *arg) {
  struct dgw_rest *r = arg;

  enter(r);
  r->lookup = NULL;
  if (error != DGW_OK) {
    attempt_failed(r, "%s", why);
  } else {
    r->addrs = res;
    r->next_addr = res;
    connect_next(r, "no usable address");
  }
  leave(r);
}

static void start_attempt(struct dgw_rest *r) {
  struct evutil_addrinfo *res = NULL;
  struct dgw_lookup *lookup = NULL;
  char why[512];
  int rv;

  drop_attempt(r);
  r->attempts++;
  r->state = REST_RESOLVING;
  rest_log(r, DGW_LOG_DEBUG, "GET %s%s: attempt %u, %u ms allowed", r->api_url,
           REST_ROUTE, (unsigned)r->attempts, (unsigned)r->cfg.timeout_ms);
  arm(r, r->cfg.timeout_ms);
  rv = dgw_lookup_start(r->cfg.resolver, r->api.host, r->api.port, resolved, r,
                        &res, &lookup, why, sizeof(why));
  if (rv != DGW_OK) {
    attempt_failed(r, "%s", why);
  } else if (res != NULL) {
    r->addrs = res; /* an IP literal: no lookup needed */
    r->next_addr = res;
    connect_next(r, "no usable address");
  } else if (r->state == REST_RESOLVING) {
    r->lookup = lookup; /* NULL when it answered already */
  }
}

/* Why an attempt ended without an HTTP status. */
static int describe_failure(struct dgw_rest *r, struct bufferevent *bev,
                            int sock_err, char *why, size_t size) {
  switch (r->http_error) {
  case EVREQ_HTTP_TIMEOUT:
    snprintf(why, size, "%s:%u sent nothing for %u ms", r->addr_text,
             (unsigned)r->api.port, (unsigned)r->cfg.timeout_ms);
    return DGW_ERR_TIMEOUT;
  case EVREQ_HTTP_DATA_TOO_LONG:
    snprintf(why, size, "the answer's body is over %zu bytes; refused",
             r->cfg.max_body);
    return DGW_ERR_MESSAGE_TOO_LARGE;
  case EVREQ_HTTP_INVALID_HEADER: /* libevent's word for too long, too */
    snprintf(why, size,
             "%s:%u sent a malformed HTTP response, or headers over %u "
             "bytes",
             r->addr_text, (unsigned)r->api.port, (unsigned)MAX_HEADERS);
    return DGW_ERR_PROTOCOL;
  default:
    break;
  }
  if (r->api.tls && bev != NULL) {
    SSL *ssl = bufferevent_openssl_get_ssl(bev);
    unsigned long e = bufferevent_get_openssl_error(bev);

    if (e != 0 || (ssl != NULL && SSL_get_verify_result(ssl) != X509_V_OK)) {
      char detail[300];
      int rv = dgw_tls_describe_error(ssl, e, detail, sizeof(detail), "");

      snprintf(why, size, "%s:%u: %s", r->addr_text, (unsigned)r->api.port,
               detail);
      return rv;
    }
  }
  if (sock_err != 0)
    snprintf(why, size,
             "%s:%u: connection failed or closed before an "
             "answer: %s",
             r->addr_text, (unsigned)r->api.port,
             evutil_socket_error_to_string(sock_err));
  else
    snprintf(why, size, "%s:%u: connection failed or closed before an answer",
             r->addr_text, (unsigned)r->api.port);
  return DGW_ERR_CONNECT;
}

/* Reason phrases of the statuses we name.  The server's own reason phrase
 * is never logged: a hostile or broken server could echo the token in
 * it.  Other statuses go by their number alone. */
static const char *status_text(int code) {
  static const struct {
    int code;
    const char *text;
  } table[] = {
      {400, "Bad Request"},        {401, "Unauthorized"},
      {403, "Forbidden"},          {404, "Not Found"},
      {405, "Method Not Allowed"}, {408, "Request Timeout"},
      {429, "Too Many Requests"},  {500, "Internal Server Error"},
      {502, "Bad Gateway"},        {503, "Service Unavailable"},
      {504, "Gateway Timeout"},
  };
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    if (table[i].code == code)
      return table[i].text;
  return "";
}

/* An HTTP status arrived: decide. */
static void take_status(struct dgw_rest *r, struct evhttp_request *req,
                        int code) {
  struct evbuffer *in = evhttp_request_get_input_buffer(req);
  size_t len = evbuffer_get_length(in);
  const char *body = len > 0 ? (const char *)evbuffer_pullup(in, -1) : "";
  const char *token = r->authorization + 4; /* after "Bot " */
  const char *text = status_text(code);
  char message[128];
  char why[300];

  if (body == NULL) { /* no memory to make it contiguous */
    len = 0;
    body = "";
  }
  if (code == 200) {
    struct dgw_gateway_bot bot;
    char detail[200];

    if (dgw_gateway_bot_parse(body, len, r->api.tls, &bot, detail,
                              sizeof(detail)) != DGW_OK)
      attempt_failed(r, "malformed answer (HTTP 200): %s",
                     dgw_rest_echoes_token(detail, token) ? "(detail withheld)"
                                                          : detail);
    else if (dgw_rest_echoes_token(bot.url, token))
      /* The URL is logged and connected to: not one that carries the
       * token to wherever it points. */
      attempt_failed(r, "malformed answer (HTTP 200): the url repeats part "
                        "of the token");
    else {
      r->failures = 0;
      finish(r, DGW_OK, &bot, NULL);
    }
    return;
  }
  if (code == 401) {
    finish(r, DGW_ERR_AUTH, NULL, "the token was refused (401 Unauthorized)");
    return;
  }
  if (code == 429) {
    int64_t ms = dgw_rest_retry_after_ms(
        body, len,
        evhttp_find_header(evhttp_request_get_input_headers(req),
                           "Retry-After"));

    if (ms < 0) {
      attempt_failed(r, "rate limited (HTTP 429) without a retry_after");
      return;
    }
    /* Never sooner (see arm()): a retry even a millisecond early is
     * another 429, and those count towards Cloudflare's ban on invalid
     * requests. */
    snprintf(why, sizeof(why), "rate limited (HTTP 429) for %lld ms",
             (long long)ms);
    retry_in(r, (uint32_t)ms, why);
    return;
  }
  dgw_rest_error_message(body, len, token, message, sizeof(message));
  if (code >= 500 || code == 408 || code < 300) {
    attempt_failed(r, "HTTP %d%s%s%s%s", code, text[0] ? " " : "", text,
                   message[0] ? ": " : "", message);
    return;
  }
  /* 3xx (not followed) and the other 4xx: asking again cannot help. */
  snprintf(why, sizeof(why), "GET %s%s was refused: HTTP %d%s%s%s%s",
           r->api_url, REST_ROUTE, code, text[0] ? " " : "", text,
           message[0] ? ": " : "", message);
  finish(r, DGW_ERR_HTTP, NULL, why);
}

/* Wipes our Authorization header's copy in the request (best effort: the
 * request is freed by libevent after this callback). */
static void wipe_authorization(struct evhttp_request *req) {
  struct evkeyvalq *headers = evhttp_request_get_output_headers(req);

  for (struct evkeyval *kv = headers != NULL ? headers->tqh_first : NULL;
       kv != NULL; kv = kv->next.tqe_next)
    if (strcasecmp(kv->key, "Authorization") == 0)
      OPENSSL_cleanse(kv->value, strlen(kv->value));
}

static void request_done(struct evhttp_request *req, void *arg) {
  struct dgw_rest *r = arg;
  int sock_err = EVUTIL_SOCKET_ERROR();
  int code = req != NULL ? evhttp_request_get_response_code(req) : 0;
  struct bufferevent *bev;

  enter(r);
  if (req != NULL)
    wipe_authorization(req);
  if (r->state != REST_REQUESTING || r->evcon == NULL) {
    leave(r); /* not ours to judge any more */
    return;
  }
  bev = evhttp_connection_get_bufferevent(r->evcon);
  if (code == 0) {
    char why[400];
    int err = describe_failure(r, bev, sock_err, why, sizeof(why));

    release_connection(r);
    if (err == DGW_ERR_CONNECT && r->next_addr != NULL) {
      rest_log(r, DGW_LOG_DEBUG, "GET %s%s: %s; trying the next address",
               r->api_url, REST_ROUTE, why);
      connect_next(r, why);
    } else {
      attempt_failed(r, "%s", why);
    }
  } else {
    release_connection(r);
    take_status(r, req, code);
  }
  leave(r);
}

static void timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_rest *r = arg;

  (void)fd;
  (void)what;
  if (now_ns() < r->due_ns) {
    arm_ns(r, r->due_ns - now_ns()); /* early: see arm() */
    return;
  }
  enter(r);
  if (r->state == REST_RESOLVING || r->state == REST_REQUESTING)
    attempt_failed(r, "no answer within %u ms", (unsigned)r->cfg.timeout_ms);
  else if (r->state == REST_WAITING)
    start_attempt(r);
  leave(r);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_rest *r = arg;

  (void)fd;
  (void)what;
  enter(r);
  if (r->state == REST_IDLE)
    start_attempt(r);
  leave(r);
}

struct dgw_rest *dgw_rest_gateway_bot(struct event_base *base,
                                      const struct dgw_rest_config *cfg,
                                      dgw_rest_done_fn done, void *user_data,
                                      int *err) {
  struct dgw_rest *r = NULL;
  size_t n;
  int rv = DGW_ERR_INVALID_ARGUMENT;

  if (base == NULL || cfg == NULL || cfg->api_url == NULL ||
      cfg->token == NULL || cfg->resolver == NULL || done == NULL)
    goto fail;
  rv = DGW_ERR_NOMEM;
  if ((r = calloc(1, sizeof(*r))) == NULL)
    goto fail;
  r->base = base;
  r->cfg = *cfg;
  r->cfg.api_url = NULL;
  r->cfg.token = NULL;
  r->done = done;
  r->user_data = user_data;
  if (r->cfg.timeout_ms == 0)
    r->cfg.timeout_ms = DGW_REST_DEFAULT_TIMEOUT_MS;
  if (r->cfg.max_body == 0)
    r->cfg.max_body = DGW_REST_MAX_BODY;
  if ((r->api_url = strdup(cfg->api_url)) == NULL)
    goto fail;
  for (n = strlen(r->api_url); n > 0 && r->api_url[n - 1] == '/'; n--)
    r->api_url[n - 1] = '\0';
  rv = DGW_ERR_URL;
  if (dgw_url_parse_http(r->api_url, &r->api, NULL, 0) != DGW_OK ||
      strchr(r->api.path_query, '?') != NULL)
    goto fail;
  rv = DGW_ERR_TLS;
  if (r->api.tls && r->cfg.ssl == NULL)
    goto fail;
  rv = DGW_ERR_NOMEM;
  snprintf(r->path, sizeof(r->path), "%s%s",
           strcmp(r->api.path_query, "/") == 0 ? "" : r->api.path_query,
           REST_ROUTE);
  snprintf(r->user_agent, sizeof(r->user_agent),
           "DiscordBot (https://github.com/dgw, %s)", DGW_VERSION);
  n = strlen(cfg->token) + sizeof("Bot ");
  if ((r->authorization = malloc(n)) == NULL)
    goto fail;
  snprintf(r->authorization, n, "Bot %s", cfg->token);
  r->timer = evtimer_new(base, timer_cb, r);
  r->kick = event_new(base, -1, 0, kick_cb, r);
  if (r->timer == NULL || r->kick == NULL)
    goto fail;
  event_active(r->kick, EV_TIMEOUT, 0);
  return r;

fail:
  if (r != NULL)
    destroy(r);
  if (err != NULL)
    *err = rv;
  return NULL;
}

void dgw_rest_free(struct dgw_rest *r) {
  if (r == NULL)
    return;
  if (dgw_guard_free(&r->guard))
    destroy(r);
}

uint32_t dgw_rest_attempts(const struct dgw_rest *r) {
  return r->attempts;
}
