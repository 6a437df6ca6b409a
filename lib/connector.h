/*
 * The connector: from a host name and a port to a connected bufferevent.
 * It resolves the host (at once for an IP literal, else on the client's
 * resolver), tries each address in turn, giving each but the last its
 * share of the timeout, and wraps the socket in TLS (SNI and host-name
 * verification) when given an SSL_CTX.  It knows no protocol: ws.c speaks
 * WebSocket over what it hands back.  Internal to dgw.
 *
 * Below the whole connector are its two building blocks, the lookup and
 * the (TLS) bufferevent, for callers that must let someone else do the
 * connecting: rest.c hands its bufferevent to evhttp, which insists on
 * connecting it itself (evhttp_make_request() closes any socket the
 * bufferevent already has).
 */
#ifndef DGW_CONNECTOR_H
#define DGW_CONNECTOR_H

#include <stddef.h>
#include <stdint.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/util.h>
#include <openssl/ssl.h>

#include <dgw/dgw.h>

/* Each address but the last gets a quarter of the timeout, within these
 * bounds, to connect (TCP and TLS) before the next one is tried. */
#define DGW_CONNECTOR_MIN_ADDRESS_TIMEOUT_MS 250u
#define DGW_CONNECTOR_MAX_ADDRESS_TIMEOUT_MS 5000u

struct dgw_connector;
struct dgw_resolver;

struct dgw_connector_config {
  const char *host; /* a name or an IP literal; copied */
  uint16_t port;
  /* A name needs one; NULL makes names fail with DGW_ERR_DNS. */
  struct dgw_resolver *resolver;
  /* Not NULL: TLS over the TCP connection, with SNI (names only) and
   * verification of `host` against the peer's certificate. */
  SSL_CTX *ssl_ctx;
  /* The whole connect, DNS to the end of the TLS handshake; each
   * address's share is dgw_connector_address_timeout_ms() of it. */
  uint32_t timeout_ms;
  /* Debug lines ("<log_name> host:port: ...; trying the next address");
   * log may be NULL, log_name must not be NULL when log is set. */
  const char *log_name;
  dgw_log_fn log;
  void *log_user_data;
};

struct dgw_connector_callbacks {
  /* Connected (and the TLS handshake done and verified).  The bufferevent
   * is the caller's now, with no callbacks set and EV_READ|EV_WRITE
   * enabled; bytes may already wait in its input buffer.  It was made with
   * BEV_OPT_CLOSE_ON_FREE | BEV_OPT_DEFER_CALLBACKS. */
  void (*on_connected)(struct bufferevent *bev, void *user_data);
  /* No connection: DGW_ERR_DNS, DGW_ERR_CONNECT (every address refused,
   * unreachable or closed), DGW_ERR_TLS, DGW_ERR_TLS_VERIFY,
   * DGW_ERR_TIMEOUT or DGW_ERR_NOMEM, and a sentence (valid only during
   * the call). */
  void (*on_failed)(int error, const char *why, void *user_data);
};

/*
 * How long one address may take to connect when more are left to try,
 * for a whole-connect timeout of `timeout_ms`.
 */
uint32_t dgw_connector_address_timeout_ms(uint32_t timeout_ms);

/*
 * Starts connecting, from the loop: no callback runs inside this call.
 * Exactly one of the callbacks runs later, unless dgw_connector_cancel()
 * comes first; the connector frees itself once that callback returns, so
 * the pointer is invalid from the moment either callback starts.  Returns
 * the connector, or NULL with *err = DGW_ERR_INVALID_ARGUMENT (no base,
 * config, host or callbacks) or DGW_ERR_NOMEM.
 */
struct dgw_connector *dgw_connector_start(
    struct event_base *base, const struct dgw_connector_config *cfg,
    const struct dgw_connector_callbacks *cb, void *user_data, int *err);

/*
 * Gives the connection up: no callback runs after this, and everything is
 * released (a DNS lookup in flight is cancelled; its late answer is
 * dropped).  Only before a callback has started.  NULL is a no-op.
 */
void dgw_connector_cancel(struct dgw_connector *c);

/* ------------------------------------------------------ building blocks */

struct dgw_lookup;

/* The addresses of a lookup (the callee's to free with
 * evutil_freeaddrinfo), or NULL with error DGW_ERR_DNS and a sentence
 * (valid only during the call). */
typedef void (*dgw_lookup_fn)(int error, struct evutil_addrinfo *addrs,
                              const char *why, void *user_data);

/*
 * Resolves `host`:`port` to TCP addresses.  An IP literal is answered at
 * once: DGW_OK, *addrs set, *lookup NULL, and `fn` never runs.  A name is
 * looked up on `resolver`: DGW_OK with *addrs NULL, and `fn` runs exactly
 * once unless dgw_lookup_cancel() comes first, possibly before this
 * returns (then *lookup is NULL); otherwise *lookup is the lookup until
 * `fn` runs.  DGW_ERR_DNS when a name has no resolver (the sentence in
 * `why`), DGW_ERR_NOMEM.  The lookup holds a reference on the resolver
 * until evdns lets it go, so the resolver may be released at any time.
 */
int dgw_lookup_start(struct dgw_resolver *resolver, const char *host,
                     uint16_t port, dgw_lookup_fn fn, void *user_data,
                     struct evutil_addrinfo **addrs, struct dgw_lookup **lookup,
                     char *why, size_t why_size);

/* Cancels a lookup still pending: `fn` will not run.  NULL is a no-op. */
void dgw_lookup_cancel(struct dgw_lookup *l);

/*
 * A new, unconnected bufferevent on `base` with BEV_OPT_CLOSE_ON_FREE |
 * BEV_OPT_DEFER_CALLBACKS: TLS (SNI and verification of `host`) when
 * `ssl_ctx` is not NULL, else plain TCP.  NULL with *err = DGW_ERR_TLS
 * (cannot set up TLS for the host) or DGW_ERR_NOMEM.
 */
struct bufferevent *dgw_connector_bufferevent_new(struct event_base *base,
                                                  SSL_CTX *ssl_ctx,
                                                  const char *host, int *err);

#endif /* DGW_CONNECTOR_H */
