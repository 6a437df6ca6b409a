/*
 * Integration tests: the connector (lib/connector.c) over real loopback
 * sockets: IP literals and names from a hosts file, refused and
 * black-holed addresses, each address's share of the timeout, TLS with a
 * good and a wrong certificate, and cancelling at every stage.
 */
#include "config.h"

#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "connector.h"
#include "resolver.h"
#include "tls.h"

/* ------------------------------------------------------------ servers */

/* A loopback listener, plain or TLS, that counts what it accepted and
 * keeps the first connection to read from it. */
struct server {
  struct evconnlistener *listener;
  SSL_CTX *ssl;
  struct bufferevent *bev;
  uint16_t port;
  int accepted;
  char got[64];
};

static void server_read(struct bufferevent *bev, void *arg) {
  struct server *s = arg;
  size_t have = strlen(s->got);

  bufferevent_read(bev, s->got + have, sizeof(s->got) - 1 - have);
}

static void server_event(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  (void)what;
  (void)arg;
}

static void server_accept(struct evconnlistener *l, evutil_socket_t fd,
                          struct sockaddr *sa, int socklen, void *arg) {
  struct server *s = arg;
  struct event_base *base = evconnlistener_get_base(l);
  struct bufferevent *bev;

  (void)sa;
  (void)socklen;
  s->accepted++;
  if (s->ssl != NULL)
    bev = bufferevent_openssl_socket_new(base, fd, SSL_new(s->ssl),
                                         BUFFEREVENT_SSL_ACCEPTING,
                                         BEV_OPT_CLOSE_ON_FREE);
  else
    bev = bufferevent_socket_new(base, fd, BEV_OPT_CLOSE_ON_FREE);
  assert_non_null(bev);
  if (s->bev != NULL) {
    bufferevent_free(bev); /* one is enough */
    return;
  }
  s->bev = bev;
  bufferevent_setcb(bev, server_read, NULL, server_event, s);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
}

/* Listens on `ip` (host order), port `port` or any free one. */
static void server_start(struct event_base *base, struct server *s, uint32_t ip,
                         uint16_t port, const char *cert) {
  memset(s, 0, sizeof(*s));
  if (cert != NULL) {
    s->ssl = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ssl);
    assert_int_equal(
        SSL_CTX_use_certificate_chain_file(s->ssl, cert_path(cert)), 1);
    char key[64];
    snprintf(key, sizeof(key), "%.*s.key", (int)(strlen(cert) - 4), cert);
    assert_int_equal(
        SSL_CTX_use_PrivateKey_file(s->ssl, cert_path(key), SSL_FILETYPE_PEM),
        1);
  }
  s->listener = listen_ipv4(base, server_accept, s, ip, port, &s->port);
}

static void server_stop(struct server *s) {
  if (s->bev != NULL)
    bufferevent_free(s->bev);
  evconnlistener_free(s->listener);
  if (s->ssl != NULL)
    SSL_CTX_free(s->ssl);
}

/* A port on 127.0.0.1 that nobody listens on. */
static uint16_t closed_port(void) {
  struct sockaddr_in sin = {0};
  socklen_t slen = sizeof(sin);
  int fd = socket(AF_INET, SOCK_STREAM, 0);

  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
  close(fd);
  return ntohs(sin.sin_port);
}

/* A black hole on 127.0.0.2:`port`: a listener whose backlog of 0 is
 * already full, so that further SYNs are dropped and a connect hangs. */
struct hole {
  int listener, filler;
};

static void hole_open(struct hole *h, uint16_t port) {
  struct sockaddr_in sin = {0};

  h->listener = socket(AF_INET, SOCK_STREAM, 0);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(0x7f000002);
  assert_int_equal(bind(h->listener, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(listen(h->listener, 0), 0);
  h->filler = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(h->filler, (struct sockaddr *)&sin, sizeof(sin)), 0);
}

static void hole_close(struct hole *h) {
  close(h->filler);
  close(h->listener);
}

/* ------------------------------------------------------------ fixture */

struct fx {
  struct event_base *base;
  struct dgw_resolver *resolver;
  SSL_CTX *ssl;
  char hosts[32];
  struct dgw_connector_config cfg;
  /* what came back */
  int done;
  int connected, failed;
  int error;
  char why[512];
  struct bufferevent *bev;
  double started_ms, done_ms;
  int next_address_lines;
  char last_line[600];
};

static void fx_log(enum dgw_log_level level, const char *msg, void *ud) {
  struct fx *f = ud;

  test_log(level, msg, NULL);
  snprintf(f->last_line, sizeof(f->last_line), "%s", msg);
  if (strstr(msg, "trying the next address") != NULL)
    f->next_address_lines++;
}

static void on_connected(struct bufferevent *bev, void *ud) {
  struct fx *f = ud;

  f->connected++;
  f->done = 1;
  f->bev = bev;
  f->done_ms = now_ms();
}

static void on_failed(int error, const char *why, void *ud) {
  struct fx *f = ud;

  f->failed++;
  f->done = 1;
  f->error = error;
  snprintf(f->why, sizeof(f->why), "%s", why);
  f->done_ms = now_ms();
}

static const struct dgw_connector_callbacks callbacks = {on_connected,
                                                         on_failed};

/* `hosts`: lines of a hosts file for the resolver, or NULL for none. */
static struct fx *fx_new(const char *hosts, const char *ca) {
  struct fx *f = calloc(1, sizeof(*f));
  struct evdns_base *dns;

  assert_non_null(f);
  f->base = event_base_new();
  dns = evdns_base_new(f->base, 0);
  assert_non_null(dns);
  if (hosts != NULL) {
    int fd;

    snprintf(f->hosts, sizeof(f->hosts), "/tmp/dgw-hosts-XXXXXX");
    fd = mkstemp(f->hosts);
    assert_true(fd >= 0);
    assert_true(write(fd, hosts, strlen(hosts)) == (ssize_t)strlen(hosts));
    close(fd);
    assert_int_equal(evdns_base_load_hosts(dns, f->hosts), 0);
  }
  f->resolver = dgw_resolver_new(f->base, dns, 1);
  assert_non_null(f->resolver);
  if (ca != NULL) {
    char why[256];
    int err;

    f->ssl = dgw_tls_client_ctx_new(cert_path(ca), why, sizeof(why), &err);
    assert_non_null(f->ssl);
  }
  f->cfg.resolver = f->resolver;
  f->cfg.ssl_ctx = f->ssl;
  f->cfg.timeout_ms = (uint32_t)(5000 * time_scale());
  f->cfg.log_name = "test";
  f->cfg.log = fx_log;
  f->cfg.log_user_data = f;
  return f;
}

static void fx_free(struct fx *f) {
  if (f->bev != NULL)
    bufferevent_free(f->bev);
  run_for(f->base, 10); /* deferred frees */
  dgw_resolver_unref(f->resolver);
  run_for(f->base, 10);
  if (f->ssl != NULL)
    SSL_CTX_free(f->ssl);
  if (f->hosts[0] != '\0')
    unlink(f->hosts);
  event_base_free(f->base);
  free(f);
}

/* Starts connecting to host:port and runs until a callback. */
static void fx_connect(struct fx *f, const char *host, uint16_t port) {
  struct dgw_connector *c;
  int err = 0;

  f->cfg.host = host;
  f->cfg.port = port;
  f->started_ms = now_ms();
  c = dgw_connector_start(f->base, &f->cfg, &callbacks, f, &err);
  assert_non_null(c);
  assert_false(f->done); /* never inside the call */
  assert_true(run_until(f->base, &f->done, 10 * time_scale()));
  run_for(f->base, 20); /* no second callback */
  assert_int_equal(f->connected + f->failed, 1);
}

/* -------------------------------------------------------------- cases */

static void test_address_timeout_table(void **state) {
  static const struct {
    uint32_t timeout, share;
  } table[] = {{0, 250},    {100, 250},    {1000, 250},   {1004, 251},
               {2000, 500}, {20000, 5000}, {30000, 5000}, {UINT32_MAX, 5000}};

  (void)state;
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++)
    assert_int_equal(dgw_connector_address_timeout_ms(table[i].timeout),
                     table[i].share);
}

static void test_argument_errors(void **state) {
  struct fx *f = fx_new(NULL, NULL);
  char long_host[300];
  int err = 0;

  (void)state;
  f->cfg.host = "127.0.0.1";
  f->cfg.port = 1;
  assert_null(dgw_connector_start(NULL, &f->cfg, &callbacks, f, &err));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
  err = 0;
  assert_null(dgw_connector_start(f->base, NULL, &callbacks, f, &err));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
  assert_null(dgw_connector_start(f->base, &f->cfg, NULL, f, NULL));
  memset(long_host, 'a', sizeof(long_host) - 1);
  long_host[sizeof(long_host) - 1] = '\0';
  f->cfg.host = long_host;
  err = 0;
  assert_null(dgw_connector_start(f->base, &f->cfg, &callbacks, f, &err));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
  dgw_connector_cancel(NULL);
  run_for(f->base, 20);
  assert_int_equal(f->done, 0);
  fx_free(f);
}

/* An IP literal with a listener: connected, and the bufferevent is ours
 * and works. */
static void test_connect_ok(void **state) {
  struct fx *f = fx_new(NULL, NULL);
  struct server s;
  int got = 0;

  (void)state;
  server_start(f->base, &s, INADDR_LOOPBACK, 0, NULL);
  fx_connect(f, "127.0.0.1", s.port);
  assert_int_equal(f->connected, 1);
  assert_non_null(f->bev);
  assert_true(bufferevent_getfd(f->bev) >= 0);
  assert_int_equal(bufferevent_write(f->bev, "hello", 5), 0);
  for (double end = deadline_ms(5); now_ms() < end && !got;)
    loop_once(f->base), got = strcmp(s.got, "hello") == 0;
  assert_string_equal(s.got, "hello");
  assert_int_equal(s.accepted, 1);
  assert_int_equal(f->next_address_lines, 0);
  server_stop(&s);
  fx_free(f);
}

/* A name whose first address refuses: the next one is tried at once. */
static void test_refused_then_next(void **state) {
  struct fx *f = fx_new("127.0.0.2 two.test\n127.0.0.1 two.test\n", NULL);
  struct server s;

  (void)state;
  server_start(f->base, &s, INADDR_LOOPBACK, 0, NULL); /* not on .2 */
  fx_connect(f, "two.test", s.port);
  assert_int_equal(f->connected, 1);
  assert_int_equal(f->next_address_lines, 1);
  assert_non_null(strstr(f->last_line, "refused"));
  assert_non_null(strstr(f->last_line, "test two.test:"));
  /* Refused is quick: nowhere near a share of the timeout. */
  assert_true(f->done_ms - f->started_ms < 250 * time_scale());
  server_stop(&s);
  fx_free(f);
}

/* Every address refuses: DGW_ERR_CONNECT, after trying each. */
static void test_all_refused(void **state) {
  struct fx *f = fx_new("127.0.0.2 two.test\n127.0.0.1 two.test\n", NULL);
  uint16_t port = closed_port();

  (void)state;
  fx_connect(f, "two.test", port);
  assert_int_equal(f->failed, 1);
  assert_int_equal(f->error, DGW_ERR_CONNECT);
  assert_non_null(strstr(f->why, "refused"));
  assert_non_null(strstr(f->why, "two.test"));
  assert_int_equal(f->next_address_lines, 1);
  fx_free(f);

  /* An IP literal alone, and over TLS too: still a TCP failure. */
  f = fx_new(NULL, "ca.pem");
  fx_connect(f, "127.0.0.1", port);
  assert_int_equal(f->error, DGW_ERR_CONNECT);
  assert_non_null(strstr(f->why, "refused"));
  fx_free(f);
}

/* A black-holed first address gets its share of the timeout (a quarter),
 * then the next address is tried and connects. */
static void test_timeout_split_over_addresses(void **state) {
  struct fx *f = fx_new("127.0.0.2 two.test\n127.0.0.1 two.test\n", NULL);
  struct server s;
  struct hole h;
  uint32_t share;
  char line[64];

  (void)state;
  server_start(f->base, &s, INADDR_LOOPBACK, 0, NULL);
  hole_open(&h, s.port);
  f->cfg.timeout_ms = (uint32_t)(2000 * time_scale());
  share = dgw_connector_address_timeout_ms(f->cfg.timeout_ms);
  fx_connect(f, "two.test", s.port);
  assert_int_equal(f->connected, 1);
  assert_int_equal(f->next_address_lines, 1);
  snprintf(line, sizeof(line), "no connection within %u ms", (unsigned)share);
  assert_non_null(strstr(f->last_line, line));
  assert_true(f->done_ms - f->started_ms >= share - 5);
  assert_true(f->done_ms - f->started_ms < f->cfg.timeout_ms);
  server_stop(&s);
  fx_free(f);
  hole_close(&h);
}

/* The only address black-holed: DGW_ERR_TIMEOUT after the whole timeout
 * (the last address is not cut short by a share). */
static void test_timeout_whole(void **state) {
  struct fx *f = fx_new(NULL, NULL);
  struct hole h;
  uint16_t port = closed_port();
  char want[64];

  (void)state;
  hole_open(&h, port);
  f->cfg.timeout_ms = (uint32_t)(400 * time_scale());
  fx_connect(f, "127.0.0.2", port);
  assert_int_equal(f->error, DGW_ERR_TIMEOUT);
  snprintf(want, sizeof(want), "within %u ms", (unsigned)f->cfg.timeout_ms);
  assert_non_null(strstr(f->why, want));
  assert_true(f->done_ms - f->started_ms >= f->cfg.timeout_ms - 5);
  assert_int_equal(f->next_address_lines, 0);
  fx_free(f);
  hole_close(&h);
}

/* TLS to a server whose certificate names us: connected, verified. */
static void test_tls_ok(void **state) {
  struct fx *f = fx_new("127.0.0.1 localhost\n", "ca.pem");
  struct server s;
  SSL *ssl;

  (void)state;
  server_start(f->base, &s, INADDR_LOOPBACK, 0, "localhost.pem");
  fx_connect(f, "localhost", s.port);
  if (f->connected != 1)
    fail_msg("failed: %s (%s)", dgw_strerror(f->error), f->why);
  ssl = bufferevent_openssl_get_ssl(f->bev);
  assert_non_null(ssl);
  assert_int_equal(SSL_get_verify_result(ssl), X509_V_OK);
  assert_string_equal(SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name),
                      "localhost");
  server_stop(&s);
  fx_free(f);
}

/* TLS to a server whose certificate names another host: a verification
 * failure, not tried elsewhere. */
static void test_tls_name_mismatch(void **state) {
  struct fx *f = fx_new("127.0.0.1 localhost\n", "ca.pem");
  struct server s;

  (void)state;
  server_start(f->base, &s, INADDR_LOOPBACK, 0, "wrongname.pem");
  fx_connect(f, "localhost", s.port);
  assert_int_equal(f->failed, 1);
  assert_int_equal(f->error, DGW_ERR_TLS_VERIFY);
  assert_non_null(strstr(f->why, "hostname mismatch"));
  server_stop(&s);
  fx_free(f);
}

/* A name without a resolver, and a name the resolver cannot find. */
static void test_dns_errors(void **state) {
  struct fx *f = fx_new(NULL, NULL);

  (void)state;
  f->cfg.resolver = NULL;
  fx_connect(f, "nowhere.test", 1);
  assert_int_equal(f->error, DGW_ERR_DNS);
  assert_non_null(strstr(f->why, "no resolver"));
  fx_free(f);
}

/* A nameserver that never answers, for lookups that stay in flight. */
static int silent_nameserver(struct dgw_resolver *resolver) {
  struct sockaddr_in sin = {0};
  socklen_t slen = sizeof(sin);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  char ns[64];

  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
  snprintf(ns, sizeof(ns), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
  assert_int_equal(
      evdns_base_nameserver_ip_add(dgw_resolver_evdns(resolver), ns), 0);
  assert_int_equal(
      evdns_base_set_option(dgw_resolver_evdns(resolver), "timeout:", "0.2"),
      0);
  assert_int_equal(
      evdns_base_set_option(dgw_resolver_evdns(resolver), "attempts:", "1"), 0);
  return fd;
}

/* The lookup times out on the resolver's side: DGW_ERR_DNS naming the
 * host. */
static void test_dns_no_answer(void **state) {
  struct fx *f = fx_new(NULL, NULL);
  int fd = silent_nameserver(f->resolver);

  (void)state;
  fx_connect(f, "gateway.invalid", 1);
  assert_int_equal(f->error, DGW_ERR_DNS);
  assert_non_null(strstr(f->why, "gateway.invalid"));
  fx_free(f);
  close(fd);
}

/* Cancelled before it started, while resolving, while connecting (a black
 * hole) and right after the TCP connect (TLS pending): no callback ever,
 * nothing leaks (valgrind), and the resolver may go first. */
static void test_cancel(void **state) {
  (void)state;
  for (int stage = 0; stage < 4; stage++) {
    struct fx *f = fx_new(NULL, stage == 3 ? "ca.pem" : NULL);
    int fd = silent_nameserver(f->resolver);
    struct server s;
    struct hole h;
    struct dgw_connector *c;
    const char *host = "127.0.0.1";
    uint16_t port;
    int err;

    server_start(f->base, &s, INADDR_LOOPBACK, 0,
                 stage == 3 ? "localhost.pem" : NULL);
    port = s.port;
    if (stage == 1)
      host = "slow.invalid";
    if (stage == 2) {
      port = closed_port();
      hole_open(&h, port);
      host = "127.0.0.2";
    }
    f->cfg.host = host;
    f->cfg.port = port;
    c = dgw_connector_start(f->base, &f->cfg, &callbacks, f, &err);
    assert_non_null(c);
    if (stage == 1 || stage == 2)
      run_for(f->base, 50);
    if (stage == 3) /* the TCP connect is accepted, TLS not yet done */
      for (double end = deadline_ms(5); now_ms() < end && s.accepted == 0;)
        event_base_loop(f->base, EVLOOP_ONCE | EVLOOP_NONBLOCK);
    assert_int_equal(f->done, 0);
    dgw_connector_cancel(c);
    run_for(f->base, 300); /* past the silent nameserver's timeout */
    assert_int_equal(f->done, 0);
    if (stage == 2)
      hole_close(&h);
    server_stop(&s);
    fx_free(f);
    close(fd);
  }
}

/* The pointer is dead once a callback starts, but the callback may start
 * another connector at once. */
static struct dgw_connector *second;

static void on_failed_restart(int error, const char *why, void *ud) {
  struct fx *f = ud;
  static const struct dgw_connector_callbacks cb = {on_connected, on_failed};
  int err;

  (void)error;
  (void)why;
  f->failed++;
  f->cfg.host = "127.0.0.1";
  second = dgw_connector_start(f->base, &f->cfg, &cb, f, &err);
  assert_non_null(second);
}

static void test_restart_inside_callback(void **state) {
  struct fx *f = fx_new(NULL, NULL);
  static const struct dgw_connector_callbacks cb = {on_connected,
                                                    on_failed_restart};
  struct server s;
  int err;

  (void)state;
  server_start(f->base, &s, INADDR_LOOPBACK, 0, NULL);
  f->cfg.resolver = NULL;
  f->cfg.host = "needs.resolver";
  f->cfg.port = s.port;
  assert_non_null(dgw_connector_start(f->base, &f->cfg, &cb, f, &err));
  assert_true(run_until(f->base, &f->done, 5 * time_scale()));
  assert_int_equal(f->failed, 1);
  assert_int_equal(f->connected, 1);
  server_stop(&s);
  fx_free(f);
}

/* The lookup alone: an IP literal answers at once, without a callback. */
static int lookup_calls;

static void lookup_fn(int error, struct evutil_addrinfo *addrs, const char *why,
                      void *ud) {
  (void)error;
  (void)why;
  (void)ud;
  lookup_calls++;
  if (addrs != NULL)
    evutil_freeaddrinfo(addrs);
}

static void test_lookup_literal_and_cancel(void **state) {
  struct fx *f = fx_new(NULL, NULL);
  int fd = silent_nameserver(f->resolver);
  struct evutil_addrinfo *addrs = NULL;
  struct dgw_lookup *l = NULL;
  char why[256];

  (void)state;
  lookup_calls = 0;
  assert_int_equal(dgw_lookup_start(f->resolver, "::1", 443, lookup_fn, NULL,
                                    &addrs, &l, why, sizeof(why)),
                   DGW_OK);
  assert_null(l);
  if (addrs != NULL) /* ::1 may be refused without IPv6 (ADDRCONFIG) */
    evutil_freeaddrinfo(addrs);
  assert_int_equal(dgw_lookup_start(f->resolver, "10.1.2.3", 443, lookup_fn,
                                    NULL, &addrs, &l, why, sizeof(why)),
                   DGW_OK);
  assert_non_null(addrs);
  assert_null(l);
  assert_int_equal(addrs->ai_family, AF_INET);
  evutil_freeaddrinfo(addrs);
  assert_int_equal(dgw_lookup_start(NULL, "name.test", 443, lookup_fn, NULL,
                                    &addrs, &l, why, sizeof(why)),
                   DGW_ERR_DNS);
  assert_non_null(strstr(why, "no resolver"));
  assert_int_equal(dgw_lookup_start(f->resolver, "name.invalid", 443, lookup_fn,
                                    NULL, &addrs, &l, why, sizeof(why)),
                   DGW_OK);
  assert_non_null(l);
  dgw_lookup_cancel(l);
  run_for(f->base, 300);
  assert_int_equal(lookup_calls, 0);
  fx_free(f);
  close(fd);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_address_timeout_table),
      cmocka_unit_test(test_argument_errors),
      cmocka_unit_test(test_connect_ok),
      cmocka_unit_test(test_refused_then_next),
      cmocka_unit_test(test_all_refused),
      cmocka_unit_test(test_timeout_split_over_addresses),
      cmocka_unit_test(test_timeout_whole),
      cmocka_unit_test(test_tls_ok),
      cmocka_unit_test(test_tls_name_mismatch),
      cmocka_unit_test(test_dns_errors),
      cmocka_unit_test(test_dns_no_answer),
      cmocka_unit_test(test_cancel),
      cmocka_unit_test(test_restart_inside_callback),
      cmocka_unit_test(test_lookup_literal_and_cancel),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
