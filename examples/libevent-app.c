/*
 * libevent-app: a libevent program that already has its own HTTP server,
 * its own DNS resolver and its own TLS context, and runs a dgw client
 * beside them (docs/integration.md).
 *
 *   libevent-app GATEWAY_URL CA_FILE [--self-stop]
 *
 * It serves http://127.0.0.1:PORT/ (the port is printed): GET /status says
 * what the shard does, GET /stop stops the dgw client and the HTTP server.
 * Then nothing is left on the loop and event_base_dispatch() returns by
 * itself: no loopbreak, no signal.  With --self-stop the program asks its
 * own /stop once the shard is READY (what tests/test_example.sh runs under
 * valgrind).  The token is "example" unless DGW_TOKEN is set.
 *
 * Uses only the installed headers and libdgw.
 */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/dns.h>
#include <event2/event.h>
#include <event2/http.h>
#include <openssl/ssl.h>

#include <dgw/dgw.h>

struct app {
  struct event_base *base;
  struct evdns_base *dns;
  SSL_CTX *ssl;
  struct evhttp *http;
  struct evhttp_connection *self; /* --self-stop's request to ourselves */
  struct dgw_client *client;
  int self_stop;
  int port;
  int ready;   /* the shard reached READY */
  int stopped; /* GET /stop was served */
  int closed;  /* the shard reached CLOSED */
};

static void on_log(enum dgw_log_level level, const char *msg, void *ud) {
  (void)ud;
  fprintf(stderr, "dgw %s: %s\n", dgw_log_level_name(level), msg);
}

/* --- the HTTP server, the application's own --- */

static void free_http_later(evutil_socket_t fd, short what, void *arg) {
  struct app *a = arg;

  (void)fd;
  (void)what;
  /* Not inside evhttp's own callback: from a fresh loop callback. */
  evhttp_free(a->http);
  a->http = NULL;
}

static void serve_status(struct evhttp_request *req, void *arg) {
  struct app *a = arg;
  struct evbuffer *out = evbuffer_new();
  struct dgw_gateway *gw =
      a->client != NULL ? dgw_client_gateway(a->client, 0) : NULL;

  evbuffer_add_printf(out, "shard 0: %s\n",
                      gw != NULL ? dgw_state_name(dgw_gateway_state(gw))
                                 : "gone");
  evhttp_send_reply(req, HTTP_OK, "OK", out);
  evbuffer_free(out);
}

/* The reply to /stop is out: nothing more to serve, close the listener. */
static void stop_reply_sent(struct evhttp_request *req, void *arg) {
  struct app *a = arg;
  struct timeval now = {0, 0};

  (void)req;
  event_base_once(a->base, -1, EV_TIMEOUT, free_http_later, a, &now);
}

static void serve_stop(struct evhttp_request *req, void *arg) {
  struct app *a = arg;
  struct evbuffer *out = evbuffer_new();

  if (a->client != NULL)
    dgw_client_stop(a->client); /* 1000: the shard goes CLOSING, CLOSED */
  a->stopped = 1;
  evbuffer_add_printf(out, "stopping\n");
  evhttp_request_set_on_complete_cb(req, stop_reply_sent, a);
  evhttp_send_reply(req, HTTP_OK, "OK", out);
  evbuffer_free(out);
}

/* --- --self-stop: ask our own /stop, as a browser or curl would --- */

static void free_self_later(evutil_socket_t fd, short what, void *arg) {
  struct app *a = arg;

  (void)fd;
  (void)what;
  evhttp_connection_free(a->self);
  a->self = NULL;
}

static void stop_answered(struct evhttp_request *req, void *arg) {
  struct app *a = arg;
  struct timeval now = {0, 0};

  printf("GET /stop answered %d\n",
         req != NULL ? evhttp_request_get_response_code(req) : 0);
  /* libevent still uses the connection after this callback returns. */
  event_base_once(a->base, -1, EV_TIMEOUT, free_self_later, a, &now);
}

static void ask_stop(struct app *a) {
  struct evhttp_request *req;

  a->self = evhttp_connection_base_new(a->base, a->dns, "127.0.0.1",
                                       (unsigned short)a->port);
  req = evhttp_request_new(stop_answered, a);
  if (a->self == NULL || req == NULL ||
      evhttp_make_request(a->self, req, EVHTTP_REQ_GET, "/stop") != 0)
    fprintf(stderr, "cannot ask /stop\n");
}

/* --- the dgw client's callbacks --- */

static void on_ready(struct dgw_gateway *gw, void *ud) {
  struct app *a = ud;

  printf("shard %u READY (session %s)\n", dgw_gateway_shard_id(gw),
         dgw_gateway_session_id(gw));
  fflush(stdout);
  a->ready = 1;
  if (a->self_stop)
    ask_stop(a);
}

static void on_state(struct dgw_gateway *gw, enum dgw_state from,
                     enum dgw_state to, void *ud) {
  struct app *a = ud;

  (void)gw;
  (void)from;
  if (to == DGW_STATE_CLOSED || to == DGW_STATE_FATAL) {
    a->closed = 1;
    /* Safe inside a dgw callback: the free happens when it returns. */
    dgw_client_free(a->client);
    a->client = NULL;
  }
}

static struct dgw_client *make_client(struct app *a, const char *url) {
  struct dgw_options *opt = dgw_options_new();
  struct dgw_callbacks *cb = dgw_callbacks_new();
  const char *token = getenv("DGW_TOKEN");
  struct dgw_client *c = NULL;
  int err = DGW_ERR_NOMEM;

  if (opt != NULL && cb != NULL &&
      dgw_options_set_token(opt, token != NULL ? token : "example") == DGW_OK &&
      dgw_options_set_gateway_url(opt, url) == DGW_OK &&
      dgw_options_set_log(opt, on_log, NULL, DGW_LOG_INFO) == DGW_OK &&
      /* Ours, shared: dgw borrows the resolver and references the
       * SSL_CTX. */
      dgw_options_set_ssl_ctx(opt, a->ssl) == DGW_OK &&
      dgw_options_set_dns_base(opt, a->dns) == DGW_OK) {
    dgw_callbacks_set_on_ready(cb, on_ready);
    dgw_callbacks_set_on_state(cb, on_state);
    c = dgw_client_new(a->base, opt, cb, a, &err);
  }
  if (c == NULL)
    fprintf(stderr, "dgw_client_new: %s\n", dgw_strerror(err));
  dgw_options_free(opt); /* copied by the client */
  dgw_callbacks_free(cb);
  return c;
}

/* --- the application's own objects --- */

static int start_http(struct app *a) {
  struct evhttp_bound_socket *bound;
  struct sockaddr_storage ss;
  ev_socklen_t len = sizeof(ss);

  a->http = evhttp_new(a->base);
  if (a->http == NULL)
    return -1;
  evhttp_set_cb(a->http, "/status", serve_status, a);
  evhttp_set_cb(a->http, "/stop", serve_stop, a);
  bound = evhttp_bind_socket_with_handle(a->http, "127.0.0.1", 0);
  if (bound == NULL || getsockname(evhttp_bound_socket_get_fd(bound),
                                   (struct sockaddr *)&ss, &len) != 0)
    return -1;
  a->port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  printf("http://127.0.0.1:%d/status and /stop\n", a->port);
  fflush(stdout);
  return 0;
}

static SSL_CTX *make_ssl(const char *ca_file) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

  if (ctx == NULL)
    return NULL;
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
    SSL_CTX_free(ctx);
    return NULL;
  }
  return ctx;
}

int main(int argc, char **argv) {
  struct app a;
  int rc = 1;

  if (argc < 3) {
    fprintf(stderr, "usage: %s GATEWAY_URL CA_FILE [--self-stop]\n", argv[0]);
    return 2;
  }
  signal(SIGPIPE, SIG_IGN); /* ours to decide: dgw never touches signals */
  memset(&a, 0, sizeof(a));
  a.self_stop = argc > 3 && strcmp(argv[3], "--self-stop") == 0;
  a.base = event_base_new();
  /* Idle between lookups, so it never keeps the loop alive (libevent 2.1:
   * the flag first, then resolv.conf; see docs/integration.md). */
  a.dns = a.base != NULL
              ? evdns_base_new(a.base, EVDNS_BASE_DISABLE_WHEN_INACTIVE)
              : NULL;
  if (a.dns != NULL) {
    (void)evdns_base_resolv_conf_parse(a.dns, DNS_OPTIONS_ALL,
                                       "/etc/resolv.conf");
    evdns_base_load_hosts(a.dns, NULL);
  }
  a.ssl = make_ssl(argv[2]);
  if (a.base == NULL || a.dns == NULL || a.ssl == NULL || start_http(&a) != 0) {
    fprintf(stderr, "cannot set up the application\n");
    goto out;
  }
  if ((a.client = make_client(&a, argv[1])) == NULL ||
      dgw_client_start(a.client) != DGW_OK)
    goto out;

  /* No loopexit, no loopbreak: it returns when nothing is left on it. */
  event_base_dispatch(a.base);
  printf("the loop ended by itself (ready %d, stopped %d, closed %d)\n",
         a.ready, a.stopped, a.closed);
  rc = a.ready && a.stopped && a.closed ? 0 : 1;

out:
  dgw_client_free(a.client); /* NULL when already freed */
  if (a.http != NULL)
    evhttp_free(a.http);
  if (a.self != NULL)
    evhttp_connection_free(a.self);
  /* The one loop pass after dgw_client_free() (dgw.h). */
  if (a.base != NULL)
    event_base_loop(a.base, EVLOOP_NONBLOCK);
  if (a.dns != NULL)
    evdns_base_free(a.dns, 0);
  SSL_CTX_free(a.ssl);
  if (a.base != NULL)
    event_base_free(a.base);
  return rc;
}
