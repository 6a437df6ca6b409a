#include "config.h"

/*
 * The mock's server side: the object (dgw_mock_new(), dgw_mock_free()),
 * its TLS context, the listening socket, each accepted connection's
 * bufferevent and its callbacks, and a connection's lifetime.
 *
 * Lifetime: every libevent callback and every public call on a connection
 * brackets its work with mock_conn_enter()/mock_conn_leave().  Ending a
 * connection while it is entered (a hook calling dgw_mock_conn_drop(),
 * wslay reporting the end of the close handshake) only marks it;
 * mock_conn_leave() frees it once nothing of it is on the stack.  Closing
 * sockets politely (flush, FIN or close_notify, wait briefly for the
 * peer's end) is left to a "linger" record that outlives the connection,
 * so on_close fires as soon as the WebSocket is over.
 */

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>
#include <zlib.h>

#include "mock_int.h"

#define MOCK_DEFAULT_HOST "127.0.0.1"
/* Seconds a client may take to send its upgrade request. */
#define MOCK_HANDSHAKE_TIMEOUT_S 10
/* How long a closed socket waits for the peer's FIN before it is freed. */
#define MOCK_LINGER_TIMEOUT_S 2

/* A socket whose connection is over, waiting to be closed politely. */
struct mock_linger {
  struct mock_linger *prev, *next;
  struct dgw_mock *mock;
  struct bufferevent *bev;
  int tls_notify; /* send close_notify rather than a bare FIN */
  int shut;
};

static void conn_destroy(struct dgw_mock_conn *, enum conn_end);
static void linger_free(struct mock_linger *);

/* ------------------------------------------------------------------- linger */

static void linger_shut(struct mock_linger *lg) {
  evutil_socket_t fd;

  if (lg->shut)
    return;
  lg->shut = 1;
  if (lg->tls_notify) {
    SSL *ssl = bufferevent_openssl_get_ssl(lg->bev);
    if (ssl != NULL) {
      /* One call sends close_notify; the peer's arrives as EOF later. */
      (void)SSL_shutdown(ssl);
      ERR_clear_error();
      return;
    }
  }
  fd = bufferevent_getfd(lg->bev);
  if (fd >= 0)
    (void)shutdown(fd, SHUT_WR);
}

static void linger_read_cb(struct bufferevent *bev, void *arg) {
  struct evbuffer *in = bufferevent_get_input(bev);

  (void)arg;
  evbuffer_drain(in, evbuffer_get_length(in));
}

static void linger_write_cb(struct bufferevent *bev, void *arg) {
  struct mock_linger *lg = arg;

  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
    linger_shut(lg);
}

static void linger_event_cb(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
    linger_free(arg);
}

static void linger_free(struct mock_linger *lg) {
  struct dgw_mock *mock = lg->mock;

  if (lg->prev != NULL)
    lg->prev->next = lg->next;
  else
    mock->lingers = lg->next;
  if (lg->next != NULL)
    lg->next->prev = lg->prev;
  bufferevent_free(lg->bev);
  free(lg);
}

/*
 * Takes over `bev` of a finished connection: lets its output drain, then
 * half-closes (close_notify for a clean TLS end, a bare FIN otherwise) and
 * discards input until the peer closes or MOCK_LINGER_TIMEOUT_S passes.
 * Closing with unread input would send an RST that can destroy the bytes
 * still in flight to the client.
 */
static void linger_start(struct dgw_mock *mock, struct bufferevent *bev,
                         int tls, enum conn_end how) {
  struct mock_linger *lg;
  struct timeval tv = {MOCK_LINGER_TIMEOUT_S, 0};

  if (mock->freeing || (lg = calloc(1, sizeof *lg)) == NULL) {
    bufferevent_free(bev);
    return;
  }
  lg->mock = mock;
  lg->bev = bev;
  lg->tls_notify = tls && how == END_CLEAN;
  lg->next = mock->lingers;
  if (mock->lingers != NULL)
    mock->lingers->prev = lg;
  mock->lingers = lg;
  bufferevent_setcb(bev, linger_read_cb, linger_write_cb, linger_event_cb, lg);
  bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
  bufferevent_set_timeouts(bev, &tv, &tv);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
  linger_read_cb(bev, lg);
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
    linger_shut(lg);
}

/* ---------------------------------------------------------- connection life */

void mock_conn_enter(struct dgw_mock_conn *conn) {
  conn->busy++;
}

void mock_conn_leave(struct dgw_mock_conn *conn) {
  if (--conn->busy == 0 && conn->doomed != END_NONE)
    conn_destroy(conn, conn->doomed);
}

/* Ends the connection now, or as soon as nothing of it is on the stack. */
void mock_conn_end(struct dgw_mock_conn *conn, enum conn_end how) {
  if (conn->state == CONN_DEAD || conn->doomed != END_NONE)
    return;
  if (conn->busy > 0) {
    conn->doomed = how;
    if (conn->bev != NULL)
      bufferevent_disable(conn->bev, EV_READ);
    return;
  }
  conn_destroy(conn, how);
}

static void conn_unlink(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  struct dgw_mock_conn **head =
      conn->state == CONN_OPEN ? &mock->open : &mock->pending;

  if (conn->prev != NULL)
    conn->prev->next = conn->next;
  else
    *head = conn->next;
  if (conn->next != NULL)
    conn->next->prev = conn->prev;
  conn->prev = conn->next = NULL;
  if (conn->state == CONN_OPEN)
    mock->open_count--;
}

static void conn_link(struct dgw_mock_conn *conn, struct dgw_mock_conn **head) {
  conn->prev = NULL;
  conn->next = *head;
  if (*head != NULL)
    (*head)->prev = conn;
  *head = conn;
}

void mock_conn_open(struct dgw_mock_conn *conn) {
  conn_unlink(conn);
  conn->state = CONN_OPEN;
  conn_link(conn, &conn->mock->open);
  conn->mock->open_count++;
}

static void conn_destroy(struct dgw_mock_conn *conn, enum conn_end how) {
  struct dgw_mock *mock = conn->mock;
  int was_open = conn->state == CONN_OPEN;
  struct mock_fragment *frag, *next;
  struct bufferevent *bev = conn->bev;

  conn_unlink(conn);
  conn->state = CONN_DEAD;
  conn->doomed = how;
  conn->busy++; /* nothing below may free it a second time */
  if (was_open) {
    int code =
        conn->client_closed && !conn->mock_closed_first ? conn->client_code : 0;
    mock_log(mock, DGW_LOG_DEBUG, "conn %lu: closed (client code %d)", conn->id,
             conn->client_closed ? conn->client_code : 0);
    if (mock->cfg.hooks.on_close != NULL)
      mock->cfg.hooks.on_close(mock, conn, code, mock->cfg.user_data);
  }
  mock_session_detach(conn);
  if (conn->dispatch_timer != NULL)
    event_free(conn->dispatch_timer);
  if (conn->close_timer != NULL)
    event_free(conn->close_timer);
  if (conn->hello_timer != NULL)
    event_free(conn->hello_timer);
  if (conn->ws != NULL)
    wslay_event_context_free(conn->ws);
  if (conn->zs_ready)
    deflateEnd(&conn->zs);
  mock_zstd_free(conn);
  for (frag = conn->frags; frag != NULL; frag = next) {
    next = frag->next;
    free(frag);
  }
  free(conn->zbuf);
  free(conn->path_query);
  free(conn->rate_stamps);
  if (bev != NULL) {
    if (how == END_DROP)
      bufferevent_free(bev);
    else
      linger_start(mock, bev, conn->tls, how);
  }
  free(conn);
}

/* ---------------------------------------------------- bufferevent callbacks */

static void conn_read_cb(struct bufferevent *bev, void *arg) {
  struct dgw_mock_conn *conn = arg;

  (void)bev;
  mock_conn_enter(conn);
  if (conn->doomed == END_NONE) {
    if (conn->state == CONN_HTTP)
      mock_conn_read_http(conn);
    else if (conn->state == CONN_OPEN)
      mock_conn_ws_read(conn);
  }
  mock_conn_leave(conn);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg) {
  struct dgw_mock_conn *conn = arg;

  mock_conn_enter(conn);
  if (what & BEV_EVENT_CONNECTED) {
    mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: TLS handshake done",
             conn->id);
  } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
    unsigned long ssl_err = conn->tls ? bufferevent_get_openssl_error(bev) : 0;
    if (ssl_err != 0) {
      char msg[256];
      ERR_error_string_n(ssl_err, msg, sizeof msg);
      mock_log(conn->mock, DGW_LOG_INFO, "conn %lu: TLS error: %s", conn->id,
               msg);
    } else {
      mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: %s", conn->id,
               (what & BEV_EVENT_TIMEOUT) ? "timed out"
               : (what & BEV_EVENT_EOF)   ? "client closed TCP"
                                          : "socket error");
    }
    while (conn->tls && bufferevent_get_openssl_error(bev) != 0)
      ;
    mock_conn_end(conn, END_DROP);
  }
  mock_conn_leave(conn);
}

static void listener_cb(struct evconnlistener *listener, evutil_socket_t fd,
                        struct sockaddr *sa, int socklen, void *arg) {
  struct dgw_mock *mock = arg;
  struct dgw_mock_conn *conn;
  struct timeval tv = {MOCK_HANDSHAKE_TIMEOUT_S, 0};
  char addr[INET6_ADDRSTRLEN] = "?";
  int one = 1;

  (void)listener;
  (void)socklen;
  conn = calloc(1, sizeof *conn);
  if (conn == NULL) {
    evutil_closesocket(fd);
    return;
  }
  conn->mock = mock;
  conn->id = ++mock->next_conn_id;
  conn->state = CONN_HTTP;
  if (sa->sa_family == AF_INET) {
    struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)sa;
    inet_ntop(AF_INET, &in4->sin_addr, addr, sizeof addr);
    snprintf(conn->peer, sizeof conn->peer, "%s:%u", addr,
             (unsigned)ntohs(in4->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
    snprintf(conn->peer, sizeof conn->peer, "[%s]:%u", addr,
             (unsigned)ntohs(in6->sin6_port));
  }
  /* Small request/response payloads: do not wait for delayed ACKs. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
  (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  if (mock->ssl_ctx != NULL) {
    SSL *ssl = SSL_new(mock->ssl_ctx);
    if (ssl != NULL)
      conn->bev = bufferevent_openssl_socket_new(mock->base, fd, ssl,
                                                 BUFFEREVENT_SSL_ACCEPTING,
                                                 BEV_OPT_CLOSE_ON_FREE);
    /* On failure libevent has already freed the SSL. */
    if (conn->bev != NULL)
      bufferevent_openssl_set_allow_dirty_shutdown(conn->bev, 1);
    conn->tls = 1;
  } else {
    conn->bev = bufferevent_socket_new(mock->base, fd, BEV_OPT_CLOSE_ON_FREE);
  }
  if (conn->bev == NULL) {
    mock_log(mock, DGW_LOG_WARN, "cannot set up a connection from %s",
             conn->peer);
    evutil_closesocket(fd);
    ERR_clear_error();
    free(conn);
    return;
  }
  conn_link(conn, &mock->pending);
  bufferevent_setcb(conn->bev, conn_read_cb, NULL, conn_event_cb, conn);
  bufferevent_set_timeouts(conn->bev, &tv, NULL);
  bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: accepted from %s", conn->id,
           conn->peer);
}

static void listener_error_cb(struct evconnlistener *listener, void *arg) {
  struct dgw_mock *mock = arg;
  int err = EVUTIL_SOCKET_ERROR();

  (void)listener;
  mock_log(mock, DGW_LOG_WARN, "accept failed: %s",
           evutil_socket_error_to_string(err));
}

/* ----------------------------------------------------------------- the mock */

/* `ws(s)://host:port` with a host a client can dial. */
static void mock_make_resume_url(struct dgw_mock *mock) {
  const char *host = mock->host;
  int v6;

  if (strcmp(host, "0.0.0.0") == 0)
    host = "127.0.0.1";
  else if (strcmp(host, "::") == 0)
    host = "::1";
  v6 = strchr(host, ':') != NULL;
  snprintf(mock->resume_url, sizeof mock->resume_url, "%s://%s%s%s:%u",
           mock->ssl_ctx != NULL ? "wss" : "ws", v6 ? "[" : "", host,
           v6 ? "]" : "", (unsigned)mock->port);
}

static int mock_tls_init(struct dgw_mock *mock) {
  char msg[256];
  unsigned long err;

  mock->ssl_ctx = SSL_CTX_new(TLS_server_method());
  if (mock->ssl_ctx == NULL)
    return DGW_ERR_NOMEM;
  SSL_CTX_set_min_proto_version(mock->ssl_ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(mock->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(mock->ssl_ctx, mock->cert_file) != 1 ||
      SSL_CTX_use_PrivateKey_file(mock->ssl_ctx, mock->key_file,
                                  SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(mock->ssl_ctx) != 1) {
    err = ERR_peek_error(); /* the first error names the cause */
    ERR_error_string_n(err, msg, sizeof msg);
    mock_log(mock, DGW_LOG_ERROR, "cannot load TLS certificate %s / key %s: %s",
             mock->cert_file, mock->key_file, msg);
    ERR_clear_error();
    return DGW_ERR_TLS;
  }
  return DGW_OK;
}

/* Binds and listens on mock->host at `port_number` (0: any free port) and
 * records the port in mock->port. */
int mock_listen(struct dgw_mock *mock, uint16_t port_number) {
  struct evutil_addrinfo hints, *res = NULL, *ai;
  char port[8];
  int gai;
  const unsigned flags =
      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;

  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV;
  snprintf(port, sizeof port, "%u", (unsigned)port_number);
  gai = evutil_getaddrinfo(mock->host, port, &hints, &res);
  if (gai != 0) {
    mock_log(mock, DGW_LOG_ERROR, "cannot resolve %s: %s", mock->host,
             evutil_gai_strerror(gai));
    return DGW_ERR_CONNECT;
  }
  for (ai = res; ai != NULL && mock->listener == NULL; ai = ai->ai_next)
    mock->listener =
        evconnlistener_new_bind(mock->base, listener_cb, mock, flags, -1,
                                ai->ai_addr, (int)ai->ai_addrlen);
  evutil_freeaddrinfo(res);
  if (mock->listener == NULL) {
    int err = EVUTIL_SOCKET_ERROR();
    mock_log(mock, DGW_LOG_ERROR, "cannot listen on %s port %s: %s", mock->host,
             port, evutil_socket_error_to_string(err));
    return DGW_ERR_CONNECT;
  }
  evconnlistener_set_error_cb(mock->listener, listener_error_cb);
  {
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    evutil_socket_t fd = evconnlistener_get_fd(mock->listener);
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
      if (ss.ss_family == AF_INET)
        mock->port = ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
      else if (ss.ss_family == AF_INET6)
        mock->port = ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
    }
  }
  return DGW_OK;
}

struct dgw_mock *dgw_mock_new(struct event_base *base,
                              const struct dgw_mock_config *cfg, int *err) {
  struct dgw_mock *mock;
  int rv;

  if (base == NULL || cfg == NULL ||
      (cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
    if (err != NULL)
      *err = DGW_ERR_INVALID_ARGUMENT;
    return NULL;
  }
  mock = calloc(1, sizeof *mock);
  if (mock == NULL) {
    if (err != NULL)
      *err = DGW_ERR_NOMEM;
    return NULL;
  }
  mock->base = base;
  mock->cfg = *cfg;
  mock->host = mock_strdup(cfg->host != NULL ? cfg->host : MOCK_DEFAULT_HOST);
  mock->cert_file = mock_strdup(cfg->cert_file);
  mock->key_file = mock_strdup(cfg->key_file);
  mock->token = mock_strdup(cfg->token);
  mock->cfg.host = mock->host;
  mock->cfg.cert_file = mock->cert_file;
  mock->cfg.key_file = mock->key_file;
  mock->cfg.token = mock->token;
  if (mock->host == NULL ||
      (cfg->cert_file != NULL && mock->cert_file == NULL) ||
      (cfg->key_file != NULL && mock->key_file == NULL) ||
      (cfg->token != NULL && mock->token == NULL)) {
    rv = DGW_ERR_NOMEM;
    goto fail;
  }
  if (mock->cert_file != NULL && (rv = mock_tls_init(mock)) != DGW_OK)
    goto fail;
  mock->ack = !cfg->no_ack;
  if ((rv = mock_listen(mock, cfg->port)) != DGW_OK)
    goto fail;
  mock_make_resume_url(mock);
  mock_log(mock, DGW_LOG_DEBUG, "listening on %s", mock->resume_url);
  return mock;

fail:
  if (err != NULL)
    *err = rv;
  dgw_mock_free(mock);
  return NULL;
}

void dgw_mock_free(struct dgw_mock *mock) {
  if (mock == NULL)
    return;
  mock->freeing = 1;
  if (mock->listener != NULL)
    evconnlistener_free(mock->listener);
  mock->listener = NULL;
  while (mock->open != NULL)
    conn_destroy(mock->open, END_DROP);
  while (mock->pending != NULL)
    conn_destroy(mock->pending, END_DROP);
  while (mock->lingers != NULL)
    linger_free(mock->lingers);
  while (mock->sessions != NULL)
    mock_session_free(mock, mock->sessions);
  mock_script_free(mock);
  mock_world_free(mock);
  mock_ratelimit_free(mock);
  if (mock->relisten_timer != NULL)
    event_free(mock->relisten_timer);
  if (mock->ssl_ctx != NULL)
    SSL_CTX_free(mock->ssl_ctx);
  free(mock->host);
  free(mock->cert_file);
  free(mock->key_file);
  free(mock->token);
  free(mock);
}

uint16_t dgw_mock_port(const struct dgw_mock *mock) {
  return mock != NULL ? mock->port : 0;
}
