/*
 * The connector: resolve, try each address within its share of the
 * timeout, TLS.  Every libevent callback into a connector is bracketed by
 * enter()/leave(); the connector is destroyed by the leave() that follows
 * its one callback to the owner (or a cancel), never under libevent's feet.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <openssl/err.h>

#include "clock.h"
#include "connector.h"
#include "guard.h"
#include "resolver.h"
#include "tls.h"

/* ------------------------------------------------------------ lookups */

/* A DNS lookup in flight.  A cancelled one still calls back later, from
 * evdns; it then finds `cancelled` and only frees this. */
struct dgw_lookup {
  struct dgw_resolver *resolver; /* referenced until the callback */
  struct evdns_getaddrinfo_request *req;
  dgw_lookup_fn fn;
  void *user_data;
  int cancelled;
  char host[256];
};

static void lookup_done(int result, struct evutil_addrinfo *res, void *arg) {
  struct dgw_lookup *l = arg;

  /* Lets go of the resolver from a fresh loop callback if it was the
   * last reference (evdns uses it after we return). */
  dgw_resolver_unref_in_callback(l->resolver);
  if (l->cancelled) {
    if (res != NULL)
      evutil_freeaddrinfo(res);
  } else if (result != 0 || res == NULL) {
    char why[512];

    if (res != NULL)
      evutil_freeaddrinfo(res);
    snprintf(why, sizeof(why), "cannot resolve %s: %s", l->host,
             evutil_gai_strerror(result));
    l->fn(DGW_ERR_DNS, NULL, why, l->user_data);
  } else {
    l->fn(DGW_OK, res, NULL, l->user_data);
  }
  free(l);
}

int dgw_lookup_start(struct dgw_resolver *resolver, const char *host,
                     uint16_t port, dgw_lookup_fn fn, void *user_data,
                     struct evutil_addrinfo **addrs, struct dgw_lookup **lookup,
                     char *why, size_t why_size) {
  struct evutil_addrinfo hints;
  struct evdns_getaddrinfo_request *req;
  struct dgw_lookup *l;
  char port_text[8];

  *addrs = NULL;
  *lookup = NULL;
  memset(&hints, 0, sizeof(hints));
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = EVUTIL_AI_ADDRCONFIG | EVUTIL_AI_NUMERICHOST;
  snprintf(port_text, sizeof(port_text), "%u", (unsigned)port);
  if (evutil_getaddrinfo(host, port_text, &hints, addrs) == 0)
    return DGW_OK; /* an IP literal: no lookup needed */
  *addrs = NULL;
  if (resolver == NULL) {
    snprintf(why, why_size, "cannot resolve %s: no resolver configured", host);
    return DGW_ERR_DNS;
  }
  if ((l = calloc(1, sizeof(*l))) == NULL) {
    snprintf(why, why_size, "out of memory");
    return DGW_ERR_NOMEM;
  }
  hints.ai_flags &= ~EVUTIL_AI_NUMERICHOST;
  l->resolver = resolver;
  l->fn = fn;
  l->user_data = user_data;
  snprintf(l->host, sizeof(l->host), "%s", host);
  dgw_resolver_ref(resolver);
  /* May answer at once (hosts file, a failure) and free `l`: then it
   * returns NULL, and `l` must not be touched. */
  req = evdns_getaddrinfo(dgw_resolver_evdns(resolver), host, port_text, &hints,
                          lookup_done, l);
  if (req != NULL) {
    l->req = req;
    *lookup = l;
  }
  return DGW_OK;
}

void dgw_lookup_cancel(struct dgw_lookup *l) {
  if (l == NULL || l->cancelled)
    return;
  l->cancelled = 1;
  evdns_getaddrinfo_cancel(l->req); /* lookup_done frees it, later */
}

/* ------------------------------------------------------- bufferevents */

struct bufferevent *dgw_connector_bufferevent_new(struct event_base *base,
                                                  SSL_CTX *ssl_ctx,
                                                  const char *host, int *err) {
  int opts = BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS;
  struct bufferevent *bev;

  if (ssl_ctx != NULL) {
    SSL *ssl = SSL_new(ssl_ctx);

    if (ssl == NULL || dgw_tls_prepare(ssl, host) != DGW_OK) {
      SSL_free(ssl);
      ERR_clear_error();
      *err = DGW_ERR_TLS;
      return NULL;
    }
    bev = bufferevent_openssl_socket_new(base, -1, ssl,
                                         BUFFEREVENT_SSL_CONNECTING, opts);
    /* A TCP end without close_notify reaches us as a plain EOF thanks to
     * SSL_OP_IGNORE_UNEXPECTED_EOF (tls.c); allow_dirty_shutdown would
     * also turn real socket errors into EOFs, so it stays off. */
    if (bev == NULL)
      SSL_free(ssl);
  } else {
    bev = bufferevent_socket_new(base, -1, opts);
  }
  if (bev == NULL)
    *err = DGW_ERR_NOMEM;
  return bev;
}

/* ---------------------------------------------------------- connector */

enum connector_state {
  CONNECTOR_IDLE,       /* starts from the loop */
  CONNECTOR_RESOLVING,  /* a lookup in flight */
  CONNECTOR_CONNECTING, /* TCP (and TLS) to one address */
  CONNECTOR_DONE,       /* a callback ran, or cancelled */
};

struct dgw_connector {
  struct event_base *base;
  struct dgw_connector_config cfg;
  struct dgw_connector_callbacks cb;
  void *user_data;
  char host[256];

  enum connector_state state;
  struct event *kick;       /* the start, from the loop */
  struct event *deadline;   /* the whole connect */
  struct event *addr_timer; /* one address's share, while more are left */
  struct dgw_lookup *lookup;
  struct evutil_addrinfo *addrs;
  struct evutil_addrinfo *next_addr;
  struct bufferevent *bev;
  struct dgw_guard guard;
};

static void try_next_address(struct dgw_connector *c);

static void enter(struct dgw_connector *c) {
  dgw_guard_enter(&c->guard);
}

static void destroy(struct dgw_connector *c) {
  dgw_lookup_cancel(c->lookup);
  if (c->bev != NULL)
    bufferevent_free(c->bev); /* safe in its own callbacks: deferred */
  if (c->addrs != NULL)
    evutil_freeaddrinfo(c->addrs);
  if (c->kick != NULL)
    event_free(c->kick);
  if (c->deadline != NULL)
    event_free(c->deadline);
  if (c->addr_timer != NULL)
    event_free(c->addr_timer);
  free(c);
}

/* Ends a frame: a connector that is done (its callback ran, or it was
 * cancelled) is destroyed by the outermost frame. */
static void leave(struct dgw_connector *c) {
  if (dgw_guard_leave(&c->guard) ||
      (!dgw_guard_inside(&c->guard) && c->state == CONNECTOR_DONE))
    destroy(c);
}

static void conn_log(struct dgw_connector *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void conn_log(struct dgw_connector *c, const char *fmt, ...) {
  char line[600];
  int n;
  va_list ap;

  if (c->cfg.log == NULL)
    return;
  n = snprintf(line, sizeof(line), "%s %s:%u: ", c->cfg.log_name, c->host,
               (unsigned)c->cfg.port);
  if (n < 0 || (size_t)n >= sizeof(line))
    return;
  va_start(ap, fmt);
  vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
  va_end(ap);
  c->cfg.log(DGW_LOG_DEBUG, line, c->cfg.log_user_data);
}

static void release_socket(struct dgw_connector *c) {
  event_del(c->addr_timer);
  if (c->bev != NULL) {
    bufferevent_free(c->bev);
    c->bev = NULL;
  }
}

static void fail(struct dgw_connector *c, int error, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Tells the owner there is no connection; the connector is done. */
static void fail(struct dgw_connector *c, int error, const char *fmt, ...) {
  char why[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(why, sizeof(why), fmt, ap);
  va_end(ap);
  release_socket(c);
  event_del(c->deadline);
  c->state = CONNECTOR_DONE;
  if (!dgw_guard_dying(&c->guard))
    c->cb.on_failed(error, why, c->user_data);
}

/* Describes a failure of the connection in progress; returns the error
 * code. */
static int connect_error(struct dgw_connector *c, short what, char *why,
                         size_t size) {
  unsigned long ssl_err = 0;
  int sock_err = EVUTIL_SOCKET_ERROR();
  SSL *ssl = NULL;

  if (c->cfg.ssl_ctx != NULL) {
    ssl = bufferevent_openssl_get_ssl(c->bev);
    ssl_err = bufferevent_get_openssl_error(c->bev);
  }
  /* libevent pushes SSL_get_error()'s bare code (library 0) for socket
   * failures: those are TCP problems (refused, unreachable, reset), not
   * TLS ones, and deserve the next address. */
  if (ssl_err != 0 && ERR_GET_LIB(ssl_err) == 0)
    ssl_err = 0;
  if (ssl != NULL && (ssl_err != 0 || SSL_get_verify_result(ssl) != X509_V_OK ||
                      ((what & BEV_EVENT_EOF) && sock_err == 0)))
    return dgw_tls_describe_error(ssl, ssl_err, why, size,
                                  "peer closed during the TLS handshake");
  snprintf(why, size, "cannot connect to %s port %u: %s", c->host,
           (unsigned)c->cfg.port,
           (what & BEV_EVENT_EOF) ? "connection closed"
                                  : evutil_socket_error_to_string(sock_err));
  return DGW_ERR_CONNECT;
}

static void event_cb(struct bufferevent *bev, short what, void *arg) {
  struct dgw_connector *c = arg;
  char why[512];

  (void)bev;
  enter(c);
  if (c->state != CONNECTOR_CONNECTING) {
    /* nothing: the socket is going */
  } else if ((what & BEV_EVENT_CONNECTED) && c->cfg.ssl_ctx != NULL &&
             dgw_tls_check_verified(bufferevent_openssl_get_ssl(c->bev), why,
                                    sizeof(why)) != DGW_OK) {
    /* An application's verify callback let a bad certificate through. */
    fail(c, DGW_ERR_TLS_VERIFY, "%s", why);
  } else if (what & BEV_EVENT_CONNECTED) {
    struct bufferevent *mine = c->bev;

    c->bev = NULL;
    event_del(c->addr_timer);
    event_del(c->deadline);
    c->state = CONNECTOR_DONE;
    bufferevent_setcb(mine, NULL, NULL, NULL, NULL);
    if (!dgw_guard_dying(&c->guard))
      c->cb.on_connected(mine, c->user_data);
    else
      bufferevent_free(mine);
  } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) {
    int rv = connect_error(c, what, why, sizeof(why));

    /* A refused or unreachable address: try the next one. */
    if (rv == DGW_ERR_CONNECT && c->next_addr != NULL) {
      conn_log(c, "%s; trying the next address", why);
      release_socket(c);
      try_next_address(c);
    } else {
      fail(c, rv, "%s", why);
    }
  }
  leave(c);
}

/* One address gave no TCP (and TLS) connection within its share of the
 * timeout: go on with the next. */
static void addr_timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_connector *c = arg;

  (void)fd;
  (void)what;
  enter(c);
  if (c->state == CONNECTOR_CONNECTING && c->next_addr != NULL) {
    conn_log(c, "no connection within %u ms; trying the next address",
             (unsigned)dgw_connector_address_timeout_ms(c->cfg.timeout_ms));
    release_socket(c);
    try_next_address(c);
  }
  leave(c);
}

static void deadline_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_connector *c = arg;

  (void)fd;
  (void)what;
  enter(c);
  if (c->state == CONNECTOR_RESOLVING || c->state == CONNECTOR_CONNECTING) {
    dgw_lookup_cancel(c->lookup);
    c->lookup = NULL;
    fail(c, DGW_ERR_TIMEOUT, "no connection to %s port %u within %u ms",
         c->host, (unsigned)c->cfg.port, (unsigned)c->cfg.timeout_ms);
  }
  leave(c);
}

uint32_t dgw_connector_address_timeout_ms(uint32_t timeout_ms) {
  uint32_t ms = timeout_ms / 4;

  if (ms < DGW_CONNECTOR_MIN_ADDRESS_TIMEOUT_MS)
    ms = DGW_CONNECTOR_MIN_ADDRESS_TIMEOUT_MS;
  if (ms > DGW_CONNECTOR_MAX_ADDRESS_TIMEOUT_MS)
    ms = DGW_CONNECTOR_MAX_ADDRESS_TIMEOUT_MS;
  return ms;
}

static void try_next_address(struct dgw_connector *c) {
  struct evutil_addrinfo *ai = c->next_addr;
  int err = DGW_OK;

  c->next_addr = ai->ai_next;
  c->state = CONNECTOR_CONNECTING;
  c->bev =
      dgw_connector_bufferevent_new(c->base, c->cfg.ssl_ctx, c->host, &err);
  if (c->bev == NULL) {
    if (err == DGW_ERR_TLS)
      fail(c, err, "cannot set up TLS for %s", c->host);
    else
      fail(c, err, "cannot allocate a bufferevent");
    return;
  }
  bufferevent_setcb(c->bev, NULL, NULL, event_cb, c);
  bufferevent_enable(c->bev, EV_READ | EV_WRITE);
  if (c->next_addr != NULL) {
    struct timeval tv =
        dgw_timeval_ms(dgw_connector_address_timeout_ms(c->cfg.timeout_ms));

    event_add(c->addr_timer, &tv);
  }
  if (bufferevent_socket_connect(c->bev, ai->ai_addr, (int)ai->ai_addrlen) !=
      0) {
    /* Errors are normally reported through event_cb; this is the
     * synchronous kind (no route for this address family, say). */
    if (c->state == CONNECTOR_CONNECTING && c->bev != NULL) {
      char why[512];

      snprintf(why, sizeof(why), "cannot connect to %s port %u: %s", c->host,
               (unsigned)c->cfg.port,
               evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
      release_socket(c);
      if (c->next_addr != NULL) {
        conn_log(c, "%s; trying the next address", why);
        try_next_address(c);
      } else {
        fail(c, DGW_ERR_CONNECT, "%s", why);
      }
    }
  }
}

static void resolved(int error, struct evutil_addrinfo *addrs, const char *why,
                     void *arg) {
  struct dgw_connector *c = arg;

  enter(c);
  c->lookup = NULL;
  if (c->state != CONNECTOR_RESOLVING) {
    if (addrs != NULL)
      evutil_freeaddrinfo(addrs);
  } else if (error != DGW_OK) {
    fail(c, error, "%s", why);
  } else {
    c->addrs = addrs;
    c->next_addr = addrs;
    try_next_address(c);
  }
  leave(c);
}

static void kick_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_connector *c = arg;
  struct evutil_addrinfo *addrs = NULL;
  struct dgw_lookup *lookup = NULL;
  struct timeval tv = dgw_timeval_ms(c->cfg.timeout_ms);
  char why[512];
  int rv;

  (void)fd;
  (void)what;
  enter(c);
  if (c->state == CONNECTOR_IDLE) {
    c->state = CONNECTOR_RESOLVING;
    event_add(c->deadline, &tv);
    rv = dgw_lookup_start(c->cfg.resolver, c->host, c->cfg.port, resolved, c,
                          &addrs, &lookup, why, sizeof(why));
    if (rv != DGW_OK) {
      fail(c, rv, "%s", why);
    } else if (addrs != NULL) {
      c->addrs = addrs;
      c->next_addr = addrs;
      try_next_address(c);
    } else if (c->state == CONNECTOR_RESOLVING) {
      c->lookup = lookup; /* NULL when it answered already */
    }
  }
  leave(c);
}

struct dgw_connector *dgw_connector_start(
    struct event_base *base, const struct dgw_connector_config *cfg,
    const struct dgw_connector_callbacks *cb, void *user_data, int *err) {
  struct dgw_connector *c;

  if (base == NULL || cfg == NULL || cfg->host == NULL || cb == NULL ||
      cb->on_connected == NULL || cb->on_failed == NULL ||
      strlen(cfg->host) >= sizeof(c->host)) {
    if (err != NULL)
      *err = DGW_ERR_INVALID_ARGUMENT;
    return NULL;
  }
  if ((c = calloc(1, sizeof(*c))) == NULL) {
    if (err != NULL)
      *err = DGW_ERR_NOMEM;
    return NULL;
  }
  c->base = base;
  c->cfg = *cfg;
  c->cb = *cb;
  c->user_data = user_data;
  snprintf(c->host, sizeof(c->host), "%s", cfg->host);
  c->cfg.host = c->host;
  if (c->cfg.log_name == NULL)
    c->cfg.log_name = "connect";
  c->kick = event_new(base, -1, 0, kick_cb, c);
  c->deadline = evtimer_new(base, deadline_cb, c);
  c->addr_timer = evtimer_new(base, addr_timer_cb, c);
  if (c->kick == NULL || c->deadline == NULL || c->addr_timer == NULL) {
    destroy(c);
    if (err != NULL)
      *err = DGW_ERR_NOMEM;
    return NULL;
  }
  event_active(c->kick, EV_TIMEOUT, 0);
  return c;
}

void dgw_connector_cancel(struct dgw_connector *c) {
  if (c == NULL)
    return;
  c->state = CONNECTOR_DONE;
  if (dgw_guard_free(&c->guard))
    destroy(c);
}
