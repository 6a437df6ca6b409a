/*
 * Integration tests: the WebSocket transport (lib/ws.c) with zlib-stream
 * and the envelope peek, against the mock gateway and a few hand-rolled
 * misbehaving servers, over real loopback sockets, plain and TLS.
 */
#include "config.h"

#include "harness.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/listener.h>
#include <openssl/ssl.h>

#include "handshake.h"
#include "inflate.h"
#include "mock.h"
#include "payload.h"
#include "resolver.h"
#include "tls.h"
#include "ws.h"

/* ------------------------------------------------------------ fixture */

#define MAX_PAYLOADS 64

struct client {
  struct event_base *base;
  struct dgw_resolver *resolver; /* /etc/hosts only: "localhost" */
  struct dgw_ws *ws;
  struct dgw_inflate *z;
  SSL_CTX *ssl;
  int opened;
  int closed;
  int close_err;
  int binary_msgs;
  int text_msgs;
  int payloads;
  char *payload[MAX_PAYLOADS]; /* decompressed JSON, in order */
  int payload_err;             /* first inflate error seen */
  size_t payload_len[MAX_PAYLOADS];
  int raw;             /* keep binary messages as they came */
  int free_on_message; /* dgw_ws_free() from inside on_message */
  int close_after;     /* dgw_ws_close() after this many payloads */
  int done;            /* the loop stops when set */
  int stop_after;      /* set done after this many payloads */
};

static void on_open(struct dgw_ws *ws, void *ud) {
  struct client *c = ud;
  (void)ws;
  c->opened = 1;
}

static void on_message(struct dgw_ws *ws, int binary, const uint8_t *data,
                       size_t len, void *ud) {
  struct client *c = ud;
  const char *json = (const char *)data;
  size_t json_len = len;

  if (binary && !c->raw) {
    int rv;

    c->binary_msgs++;
    rv = dgw_inflate_push(c->z, data, len, &json, &json_len);
    if (rv == DGW_ERR_AGAIN)
      return;
    if (rv != DGW_OK) {
      if (c->payload_err == 0)
        c->payload_err = rv;
      c->done = 1;
      return;
    }
  } else if (binary) {
    c->binary_msgs++;
  } else {
    c->text_msgs++;
  }
  if (c->payloads < MAX_PAYLOADS) {
    c->payload_len[c->payloads] = json_len;
    c->payload[c->payloads] = malloc(json_len + 1);
    memcpy(c->payload[c->payloads], json, json_len);
    c->payload[c->payloads][json_len] = '\0';
  }
  c->payloads++;
  if (c->free_on_message) {
    dgw_ws_free(ws);
    c->ws = NULL;
    c->done = 1;
    return;
  }
  if (c->close_after && c->payloads == c->close_after)
    assert_int_equal(dgw_ws_close(ws, 1000, "bye"), DGW_OK);
  if (c->stop_after && c->payloads >= c->stop_after)
    c->done = 1;
}

static void on_close(struct dgw_ws *ws, int err, void *ud) {
  struct client *c = ud;
  (void)ws;
  c->closed++;
  c->close_err = err;
  c->done = 1;
}

static const struct dgw_ws_callbacks callbacks = {on_open, on_message,
                                                  on_close};

/* A client resolving through `hosts` (NULL: /etc/hosts), with a connect
 * timeout of `connect_ms` (0: 5 s), both scaled, logging to `log`. */
static struct client *client_new_ex(struct event_base *base, const char *ca,
                                    size_t max_message, const char *hosts,
                                    uint32_t connect_ms, dgw_log_fn log) {
  struct client *c = calloc(1, sizeof(*c));
  struct dgw_ws_config cfg = {0};
  char why[256];
  int err = 0;

  c->base = base;
  {
    struct evdns_base *dns = evdns_base_new(base, 0);

    assert_non_null(dns);
    assert_int_equal(evdns_base_load_hosts(dns, hosts), 0);
    c->resolver = dgw_resolver_new(base, dns, 1);
  }
  if (ca != NULL) {
    c->ssl = dgw_tls_client_ctx_new(ca, why, sizeof(why), &err);
    assert_non_null(c->ssl);
  }
  cfg.ssl_ctx = c->ssl;
  cfg.resolver = c->resolver;
  cfg.max_message = max_message;
  cfg.connect_timeout_ms =
      (uint32_t)((connect_ms ? connect_ms : 5000) * time_scale());
  cfg.close_timeout_ms = (uint32_t)(2000 * time_scale());
  cfg.log = log != NULL ? log : test_log;
  c->ws = dgw_ws_new(base, &cfg, &callbacks, c, &err);
  assert_non_null(c->ws);
  c->z = dgw_inflate_new(0, &err);
  assert_non_null(c->z);
  return c;
}

static struct client *client_new(struct event_base *base, const char *ca,
                                 size_t max_message) {
  return client_new_ex(base, ca, max_message, NULL, 0, NULL);
}

static void client_free(struct client *c) {
  int n = c->payloads < MAX_PAYLOADS ? c->payloads : MAX_PAYLOADS;

  for (int i = 0; i < n; i++)
    free(c->payload[i]);
  dgw_ws_free(c->ws);
  dgw_inflate_free(c->z);
  SSL_CTX_free(c->ssl);
  dgw_resolver_unref(c->resolver);
  free(c);
}

/* Peeks payload i and checks its op (and name when given). */
static struct dgw_envelope peek(struct client *c, int i, int op,
                                const char *name) {
  struct dgw_envelope env;

  assert_true(i < c->payloads);
  assert_int_equal(
      dgw_envelope_peek(c->payload[i], strlen(c->payload[i]), &env), DGW_OK);
  assert_int_equal(env.op, op);
  if (name != NULL) {
    assert_true(env.has_name);
    assert_string_equal(env.name, name);
  }
  return env;
}

/* What the mock saw, through its hooks. */
struct observed {
  int opens;
  int payloads;
  int last_op;
  char last_payload[4200];
  int closes;
  int close_code;
  char path_query[256];
};

static void mock_open(struct dgw_mock *m, struct dgw_mock_conn *conn,
                      const char *path_query, void *ud) {
  struct observed *o = ud;
  (void)m;
  (void)conn;
  o->opens++;
  snprintf(o->path_query, sizeof(o->path_query), "%s", path_query);
}

static void mock_payload(struct dgw_mock *m, struct dgw_mock_conn *conn, int op,
                         const char *json, size_t len, void *ud) {
  struct observed *o = ud;
  (void)m;
  (void)conn;
  o->payloads++;
  o->last_op = op;
  snprintf(o->last_payload, sizeof(o->last_payload), "%.*s", (int)len, json);
}

static void mock_close(struct dgw_mock *m, struct dgw_mock_conn *conn, int code,
                       void *ud) {
  struct observed *o = ud;
  (void)m;
  (void)conn;
  o->closes++;
  o->close_code = code;
}

static struct dgw_mock *mock_start(struct event_base *base,
                                   struct dgw_mock_config *cfg,
                                   struct observed *o) {
  int err = 0;
  struct dgw_mock *m;

  cfg->log = test_log;
  cfg->hooks.on_open = mock_open;
  cfg->hooks.on_payload = mock_payload;
  cfg->hooks.on_close = mock_close;
  cfg->user_data = o;
  m = dgw_mock_new(base, cfg, &err);
  if (m == NULL)
    fail_msg("mock did not start: %s", dgw_strerror(err));
  return m;
}

static void connect_to(struct client *c, const char *scheme, const char *host,
                       uint16_t port, const char *query) {
  char url[256];

  snprintf(url, sizeof(url), "%s://%s:%u/%s", scheme, host, (unsigned)port,
           query);
  assert_int_equal(dgw_ws_connect(c->ws, url), DGW_OK);
}

#define GW_QUERY "?v=10&encoding=json&compress=zlib-stream"
/* Intents GUILDS | GUILD_MESSAGES | DIRECT_MESSAGES: the scripted messages
 * have no guild_id, DMs to the mock, which filters by intents. */
#define IDENTIFY                                                               \
  "{\"op\":2,\"d\":{\"token\":\"t0ken\",\"intents\":4609,\"properties\":"      \
  "{\"os\":\"linux\",\"browser\":\"dgw\",\"device\":\"dgw\"}}}"

/* Runs HELLO -> IDENTIFY -> READY + 2 dispatches -> close 1000 against a
 * mock, over `scheme` to `host`. */
static void full_session(const char *scheme, const char *host, const char *cert,
                         const char *key, const char *ca) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;
  struct dgw_envelope env;

  mc.cert_file = cert;
  mc.key_file = key;
  mc.heartbeat_interval_ms = 45000;
  m = mock_start(base, &mc, &o);
  assert_int_equal(dgw_mock_add_dispatch(m, "GUILD_CREATE", "{\"id\":\"1\"}"),
                   DGW_OK);
  assert_int_equal(
      dgw_mock_add_dispatch(m, "MESSAGE_CREATE", "{\"content\":\"hi\"}"),
      DGW_OK);

  c = client_new(base, ca, 0);
  c->stop_after = 1;
  connect_to(c, scheme, host, dgw_mock_port(m), GW_QUERY);
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->closed, 0);
  assert_true(c->opened);
  assert_string_equal(o.path_query, "/" GW_QUERY);
  env = peek(c, 0, DGW_OP_HELLO, NULL);
  assert_false(env.has_seq);
  assert_non_null(strstr(c->payload[0], "\"heartbeat_interval\":45000"));

  assert_int_equal(dgw_ws_send_text(c->ws, IDENTIFY, strlen(IDENTIFY)), DGW_OK);
  c->done = 0;
  c->stop_after = 4;
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(o.last_op, 2);
  assert_string_equal(o.last_payload, IDENTIFY);
  env = peek(c, 1, DGW_OP_DISPATCH, "READY");
  assert_int_equal(env.seq, 1);
  env = peek(c, 2, DGW_OP_DISPATCH, "GUILD_CREATE");
  assert_int_equal(env.seq, 2);
  env = peek(c, 3, DGW_OP_DISPATCH, "MESSAGE_CREATE");
  assert_int_equal(env.seq, 3);
  assert_int_equal(c->text_msgs, 0); /* zlib-stream: all binary */

  /* Our close: the handshake completes and the mock sees code 1000. */
  c->done = 0;
  assert_int_equal(dgw_ws_close(c->ws, 1000, "bye"), DGW_OK);
  assert_int_equal(dgw_ws_send_text(c->ws, "{}", 2), DGW_ERR_STATE);
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->closed, 1);
  assert_int_equal(c->close_err, DGW_OK);
  run_for(base, 50);
  assert_int_equal(o.closes, 1);
  assert_int_equal(o.close_code, 1000);

  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* ------------------------------------------------------------ cases */

/* Plain ws:// to the mock: a whole session and a clean close. */
static void test_plain_session(void **state) {
  (void)state;
  full_session("ws", "127.0.0.1", NULL, NULL, NULL);
}

/* wss:// to "localhost" with a certificate from our test CA. */
static void test_tls_session(void **state) {
  (void)state;
  full_session("wss", "localhost", cert_path("localhost.pem"),
               cert_path("localhost.key"), cert_path("ca.pem"));
}

/* wss:// to an IP literal is verified against the IP SAN, without SNI. */
static void test_tls_session_ip(void **state) {
  (void)state;
  full_session("wss", "127.0.0.1", cert_path("localhost.pem"),
               cert_path("localhost.key"), cert_path("ca.pem"));
}

/* Expects connecting to `url_host` on a mock with the given cert to fail
 * with `want` and a reason containing `why`. */
static void expect_connect_error(const char *cert, const char *key,
                                 const char *scheme, const char *host, int want,
                                 const char *why, const char *why_alt) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;

  mc.cert_file = cert;
  mc.key_file = key;
  m = mock_start(base, &mc, &o);
  c = client_new(base, cert_path("ca.pem"), 0);
  connect_to(c, scheme, host, dgw_mock_port(m), GW_QUERY);
  assert_true(run_until(base, &c->done, 5));
  assert_false(c->opened);
  assert_int_equal(c->closed, 1);
  if (c->close_err != want)
    fail_msg("expected %s, got %s (%s)", dgw_strerror(want),
             dgw_strerror(c->close_err), dgw_ws_reason(c->ws));
  if (strstr(dgw_ws_reason(c->ws), why) == NULL &&
      (why_alt == NULL || strstr(dgw_ws_reason(c->ws), why_alt) == NULL))
    fail_msg("reason \"%s\" lacks \"%s\"", dgw_ws_reason(c->ws), why);
  assert_int_equal(o.opens, 0);
  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* A certificate for wrong.example, from a trusted CA: host name mismatch. */
static void test_tls_name_mismatch(void **state) {
  (void)state;
  expect_connect_error(cert_path("wrongname.pem"), cert_path("wrongname.key"),
                       "wss", "localhost", DGW_ERR_TLS_VERIFY,
                       "hostname mismatch", NULL);
}

/* A self-signed certificate nobody trusts. */
static void test_tls_untrusted(void **state) {
  (void)state;
  expect_connect_error(cert_path("selfsigned.pem"), cert_path("selfsigned.key"),
                       "wss", "localhost", DGW_ERR_TLS_VERIFY, "self-signed",
                       "self signed");
}

/* wss:// to a plain server: the TLS handshake fails, with OpenSSL's
 * reason. */
static void test_tls_to_plain_server(void **state) {
  (void)state;
  expect_connect_error(NULL, NULL, "wss", "localhost", DGW_ERR_TLS, "TLS",
                       NULL);
}

/* A wrong Sec-WebSocket-Accept is refused. */
static void test_bad_accept(void **state) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;

  (void)state;
  mc.bad_accept = 1;
  m = mock_start(base, &mc, &o);
  c = client_new(base, NULL, 0);
  connect_to(c, "ws", "127.0.0.1", dgw_mock_port(m), GW_QUERY);
  assert_true(run_until(base, &c->done, 5));
  assert_false(c->opened);
  assert_int_equal(c->close_err, DGW_ERR_HANDSHAKE);
  assert_non_null(strstr(dgw_ws_reason(c->ws), "does not match"));
  assert_int_equal(c->payloads, 0);
  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* Identifies on a fresh mock session and waits for `n` payloads. */
static void identify_and_wait(struct client *c, int n) {
  c->done = 0;
  c->stop_after = 1;
  assert_true(run_until(c->base, &c->done, 5));
  assert_true(c->opened);
  assert_int_equal(dgw_ws_send_text(c->ws, IDENTIFY, strlen(IDENTIFY)), DGW_OK);
  c->done = 0;
  c->stop_after = n;
  assert_true(run_until(c->base, &c->done, 30));
}

/* The mock drops TCP in the middle of a frame: the client reports a lost
 * connection instead of waiting for the rest. */
static void test_drop_midframe(void **state) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;

  (void)state;
  m = mock_start(base, &mc, &o);
  c = client_new(base, NULL, 0);
  connect_to(c, "ws", "127.0.0.1", dgw_mock_port(m), GW_QUERY);
  identify_and_wait(c, 2); /* HELLO, READY */
  c->done = 0;
  c->stop_after = 0;
  dgw_mock_conn_drop_midframe(dgw_mock_last_conn(m));
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->closed, 1);
  assert_int_equal(c->close_err, DGW_ERR_CONNECTION_LOST);
  assert_int_equal(c->payloads, 2); /* the half frame was not delivered */
  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* The same over TLS. */
static void test_drop_midframe_tls(void **state) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;

  (void)state;
  mc.cert_file = cert_path("localhost.pem");
  mc.key_file = cert_path("localhost.key");
  m = mock_start(base, &mc, &o);
  c = client_new(base, cert_path("ca.pem"), 0);
  connect_to(c, "wss", "localhost", dgw_mock_port(m), GW_QUERY);
  identify_and_wait(c, 2);
  c->done = 0;
  c->stop_after = 0;
  dgw_mock_conn_drop_midframe(dgw_mock_last_conn(m));
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->close_err, DGW_ERR_CONNECTION_LOST);
  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* Sends a dispatch whose d holds `size` bytes of text and checks it
 * arrives whole, byte for byte. */
static void big_payload(const char *cert, const char *key, const char *ca,
                        const char *scheme, const char *host, size_t size) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;
  struct dgw_envelope env;
  char *d = malloc(size + 64);
  size_t n = 0;

  /* A realistic-ish member list: repetitive but not trivially so. */
  n += (size_t)sprintf(d, "{\"members\":[");
  for (unsigned i = 0; n < size; i++)
    n += (size_t)sprintf(d + n, "{\"id\":\"%u\",\"n\":\"user%u\"},",
                         i * 2654435761u, i);
  d[n - 1] = ']';
  d[n++] = '}';
  d[n] = '\0';

  mc.cert_file = cert;
  mc.key_file = key;
  m = mock_start(base, &mc, &o);
  assert_int_equal(dgw_mock_add_dispatch(m, "GUILD_CREATE", d), DGW_OK);
  c = client_new(base, ca, 0);
  connect_to(c, scheme, host, dgw_mock_port(m), GW_QUERY);
  identify_and_wait(c, 3);
  assert_int_equal(c->closed, 0);
  env = peek(c, 2, DGW_OP_DISPATCH, "GUILD_CREATE");
  assert_int_equal(env.d_len, n);
  assert_memory_equal(env.d, d, n);
  free(d);
  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* A 6 MB GUILD_CREATE (Discord sends several MB) arrives whole. */
static void test_multi_mb_payload(void **state) {
  (void)state;
  big_payload(NULL, NULL, NULL, "ws", "127.0.0.1", 6u << 20);
}

static void test_multi_mb_payload_tls(void **state) {
  (void)state;
  big_payload(cert_path("localhost.pem"), cert_path("localhost.key"),
              cert_path("ca.pem"), "wss", "localhost", 6u << 20);
}

/* Every compressed payload split into messages of 1, 2, 3 and 7 bytes (so
 * the 00 00 FF FF suffix is split too), and sent as continuation frames:
 * all payloads still arrive, in order. */
static void test_split_and_fragmented(void **state) {
  static const size_t splits[] = {1, 2, 3, 7, 0};
  static const size_t frags[] = {0, 0, 1, 5, 3};

  (void)state;
  for (size_t i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
    struct event_base *base = event_base_new();
    struct observed o = {0};
    struct dgw_mock_config mc = {0};
    struct dgw_mock *m;
    struct client *c;

    mc.split_size = splits[i];
    mc.fragment_size = frags[i];
    m = mock_start(base, &mc, &o);
    for (int k = 0; k < 5; k++)
      assert_int_equal(
          dgw_mock_add_dispatch(m, "MESSAGE_CREATE", "{\"content\":\"x\"}"),
          DGW_OK);
    c = client_new(base, NULL, 0);
    connect_to(c, "ws", "127.0.0.1", dgw_mock_port(m), GW_QUERY);
    identify_and_wait(c, 7);
    assert_int_equal(c->payload_err, 0);
    for (int k = 2; k < 7; k++)
      assert_int_equal(peek(c, k, DGW_OP_DISPATCH, "MESSAGE_CREATE").seq, k);
    if (splits[i] > 0)
      assert_true(c->binary_msgs > 7 * 4); /* really split */
    else
      assert_int_equal(c->binary_msgs, 7); /* reassembled by wslay */
    client_free(c);
    dgw_mock_free(m);
    event_base_free(base);
  }
}

/* Without compress=zlib-stream the mock sends text messages. */
static void test_text_frames(void **state) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;

  (void)state;
  m = mock_start(base, &mc, &o);
  c = client_new(base, NULL, 0);
  connect_to(c, "ws", "127.0.0.1", dgw_mock_port(m), "?v=10&encoding=json");
  identify_and_wait(c, 2);
  assert_int_equal(c->text_msgs, 2);
  assert_int_equal(c->binary_msgs, 0);
  peek(c, 1, DGW_OP_DISPATCH, "READY");
  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* The peer closes with 4004: DGW_ERR_CLOSED with its code and reason. */
static void test_peer_close_code(void **state) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;

  (void)state;
  m = mock_start(base, &mc, &o);
  c = client_new(base, NULL, 0);
  connect_to(c, "ws", "127.0.0.1", dgw_mock_port(m), GW_QUERY);
  identify_and_wait(c, 2);
  c->done = 0;
  assert_int_equal(
      dgw_mock_conn_close(dgw_mock_last_conn(m), 4004, "Authentication failed"),
      DGW_OK);
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->close_err, DGW_ERR_CLOSED);
  assert_int_equal(dgw_ws_close_code(c->ws), 4004);
  assert_string_equal(dgw_ws_close_reason(c->ws), "Authentication failed");
  assert_non_null(strstr(dgw_ws_reason(c->ws), "4004"));
  run_for(base, 50);
  assert_int_equal(o.closes, 1);
  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* A message over the configured cap ends the connection with
 * DGW_ERR_MESSAGE_TOO_LARGE instead of buffering it. */
static void test_message_too_large(void **state) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;
  char d[3000];

  (void)state;
  memset(d, 'a', sizeof(d));
  d[0] = '"';
  d[sizeof(d) - 2] = '"';
  d[sizeof(d) - 1] = '\0';
  m = mock_start(base, &mc, &o);
  assert_int_equal(dgw_mock_add_dispatch(m, "X", d), DGW_OK);
  c = client_new(base, NULL, 1000);
  /* Text mode, so the message is as large as the JSON. */
  connect_to(c, "ws", "127.0.0.1", dgw_mock_port(m), "?v=10&encoding=json");
  identify_and_wait(c, 3);
  assert_int_equal(c->closed, 1);
  assert_int_equal(c->close_err, DGW_ERR_MESSAGE_TOO_LARGE);
  assert_int_equal(c->payloads, 2); /* HELLO and READY only */
  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* The owner frees the connection from inside on_message: no crash, no
 * leak, no further callback. */
static void test_free_inside_callback(void **state) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;

  (void)state;
  m = mock_start(base, &mc, &o);
  c = client_new(base, NULL, 0);
  c->free_on_message = 1;
  connect_to(c, "ws", "127.0.0.1", dgw_mock_port(m), GW_QUERY);
  assert_true(run_until(base, &c->done, 5));
  assert_null(c->ws);
  run_for(base, 50);
  assert_int_equal(c->closed, 0);
  assert_int_equal(o.closes, 1); /* the mock saw the TCP end */
  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* Closing from inside on_message completes the close handshake. */
static void test_close_inside_callback(void **state) {
  struct event_base *base = event_base_new();
  struct observed o = {0};
  struct dgw_mock_config mc = {0};
  struct dgw_mock *m;
  struct client *c;

  (void)state;
  m = mock_start(base, &mc, &o);
  c = client_new(base, NULL, 0);
  c->close_after = 1;
  connect_to(c, "ws", "127.0.0.1", dgw_mock_port(m), GW_QUERY);
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->close_err, DGW_OK);
  run_for(base, 50);
  assert_int_equal(o.close_code, 1000);
  client_free(c);
  dgw_mock_free(m);
  event_base_free(base);
}

/* A port nobody listens on: DGW_ERR_CONNECT, "refused". */
static void test_connection_refused(void **state) {
  struct event_base *base = event_base_new();
  struct sockaddr_in sin = {0};
  socklen_t slen = sizeof(sin);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct client *c;

  (void)state;
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
  close(fd); /* the port is now free, and closed */
  c = client_new(base, NULL, 0);
  connect_to(c, "ws", "127.0.0.1", ntohs(sin.sin_port), "");
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->close_err, DGW_ERR_CONNECT);
  assert_non_null(strstr(dgw_ws_reason(c->ws), "refused"));
  client_free(c);
  event_base_free(base);
}

static int tried_next_address;

static void log_next_address(enum dgw_log_level level, const char *msg,
                             void *ud) {
  test_log(level, msg, ud);
  if (strstr(msg, "no connection within") != NULL &&
      strstr(msg, "trying the next address") != NULL)
    tried_next_address++;
}

/* A host whose first address swallows the SYN (a broken IPv6 route, a
 * dead server: here a listener on 127.0.0.2 whose backlog is full) gets
 * its next address tried after that address's share of the connect
 * timeout; before, the first address ate the whole timeout and the
 * connection failed with addresses left untried. */
static void test_blackholed_first_address(void **state) {
  struct event_base *base = event_base_new();
  struct dgw_mock_config mc = {0};
  struct observed o = {0};
  struct dgw_mock *m;
  struct sockaddr_in sin = {0};
  char hosts[] = "/tmp/dgw-hosts-XXXXXX";
  int hole, filler, hfd;
  struct client *c;
  uint16_t port;

  (void)state;
  m = mock_start(base, &mc, &o); /* 127.0.0.1, a free port */
  port = dgw_mock_port(m);
  /* The same port on 127.0.0.2: listening, backlog 0, and filled. */
  hole = socket(AF_INET, SOCK_STREAM, 0);
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(0x7f000002);
  assert_int_equal(bind(hole, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(listen(hole, 0), 0);
  filler = socket(AF_INET, SOCK_STREAM, 0);
  assert_int_equal(connect(filler, (struct sockaddr *)&sin, sizeof(sin)), 0);
  /* dual.test: the black hole first, then the mock. */
  hfd = mkstemp(hosts);
  assert_true(hfd >= 0);
  assert_true(write(hfd, "127.0.0.2 dual.test\n127.0.0.1 dual.test\n", 40) ==
              40);
  close(hfd);
  tried_next_address = 0;
  c = client_new_ex(base, NULL, 0, hosts, 2000, log_next_address);
  connect_to(c, "ws", "dual.test", port, "?v=10&encoding=json");
  assert_true(run_until(base, &c->opened, 10));
  assert_int_equal(c->closed, 0);
  assert_int_equal(tried_next_address, 1);
  run_for(base, 50);
  assert_int_equal(o.opens, 1); /* the mock has it */
  client_free(c);
  close(filler);
  close(hole);
  unlink(hosts);
  dgw_mock_free(m);
  event_base_free(base);
}

/* wss:// to a port nobody listens on is a TCP failure (DGW_ERR_CONNECT,
 * so the next address is tried and the shard counts as offline), not a
 * TLS one. */
static void test_tls_connection_refused(void **state) {
  struct event_base *base = event_base_new();
  struct sockaddr_in sin = {0};
  socklen_t slen = sizeof(sin);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct client *c;

  (void)state;
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
  close(fd);
  c = client_new(base, cert_path("ca.pem"), 0);
  connect_to(c, "wss", "127.0.0.1", ntohs(sin.sin_port), "");
  assert_true(run_until(base, &c->done, 5));
  if (c->close_err != DGW_ERR_CONNECT)
    fail_msg("got %s (%s)", dgw_strerror(c->close_err), dgw_ws_reason(c->ws));
  assert_non_null(strstr(dgw_ws_reason(c->ws), "refused"));
  client_free(c);
  event_base_free(base);
}

/* A host name that cannot be resolved: DGW_ERR_DNS.  The resolver asks a
 * loopback UDP socket that never answers, so nothing leaves the machine
 * and the lookup times out quickly. */
static void test_dns_failure(void **state) {
  struct event_base *base = event_base_new();
  struct evdns_base *dns = evdns_base_new(base, 0);
  struct dgw_resolver *resolver = dgw_resolver_new(base, dns, 1);
  struct sockaddr_in sin = {0};
  socklen_t slen = sizeof(sin);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  struct dgw_ws_config cfg = {0};
  struct client *c;
  char ns[64];
  int err;

  (void)state;
  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(bind(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  assert_int_equal(getsockname(fd, (struct sockaddr *)&sin, &slen), 0);
  snprintf(ns, sizeof(ns), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
  assert_int_equal(evdns_base_nameserver_ip_add(dns, ns), 0);
  assert_int_equal(evdns_base_set_option(dns, "timeout:", "0.2"), 0);
  assert_int_equal(evdns_base_set_option(dns, "attempts:", "1"), 0);

  c = client_new(base, NULL, 0);
  dgw_ws_free(c->ws);
  cfg.resolver = resolver;
  c->ws = dgw_ws_new(base, &cfg, &callbacks, c, &err);
  assert_int_equal(dgw_ws_connect(c->ws, "ws://gateway.invalid/"), DGW_OK);
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->close_err, DGW_ERR_DNS);
  assert_non_null(strstr(dgw_ws_reason(c->ws), "gateway.invalid"));
  /* And without any resolver, a host name is refused the same way. */
  dgw_ws_free(c->ws);
  cfg.resolver = NULL;
  c->ws = dgw_ws_new(base, &cfg, &callbacks, c, &err);
  c->done = 0;
  assert_int_equal(dgw_ws_connect(c->ws, "ws://gateway.invalid/"), DGW_OK);
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->close_err, DGW_ERR_DNS);
  assert_non_null(strstr(dgw_ws_reason(c->ws), "no resolver"));
  client_free(c);
  dgw_resolver_unref(resolver);
  close(fd);
  event_base_free(base);
}

/* Bad URLs and wss:// without a TLS context fail at once, no callback. */
static void test_connect_argument_errors(void **state) {
  struct event_base *base = event_base_new();
  struct client *c = client_new(base, NULL, 0);

  (void)state;
  assert_int_equal(dgw_ws_connect(c->ws, "http://x/"), DGW_ERR_URL);
  assert_non_null(strstr(dgw_ws_reason(c->ws), "scheme"));
  assert_int_equal(dgw_ws_connect(c->ws, "wss://x/"), DGW_ERR_TLS);
  assert_int_equal(dgw_ws_send_text(c->ws, "{}", 2), DGW_ERR_STATE);
  assert_int_equal(dgw_ws_close(c->ws, 999, NULL), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_ws_close(c->ws, 1005, NULL), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_ws_close(c->ws, 2000, NULL), DGW_ERR_INVALID_ARGUMENT);
  /* Never connected: nothing to close. */
  assert_int_equal(dgw_ws_close(c->ws, 4000, NULL), DGW_ERR_STATE);
  run_for(base, 20);
  assert_int_equal(c->closed, 0);
  client_free(c);
  event_base_free(base);
}

/* ------------------------------------------- hand-rolled raw servers */

/* A one-connection server that answers the upgrade itself and then writes
 * `extra` (raw frame bytes), or nothing at all when `silent`. */
struct raw_server {
  struct evconnlistener *listener;
  struct bufferevent *bev;
  const uint8_t *extra;
  size_t extra_len;
  int silent;
  int never_read; /* after the upgrade, read nothing more */
  uint16_t port;
  /* With `trickle` set, `extra` goes out in pieces of 1, 2, 5 and 4093
   * bytes, one piece a millisecond, so frames arrive cut at every kind of
   * place: inside headers, lengths and payloads. */
  int trickle;
  struct event *tick;
  size_t sent;
  unsigned piece;
  int upgraded;
  int pongs;        /* pong frames the client sent */
  int client_close; /* the code of the client's close frame, 0: none */
};

static void raw_tick(evutil_socket_t fd, short what, void *arg) {
  static const size_t pieces[] = {1, 2, 5, 4093};
  struct raw_server *s = arg;
  size_t n = pieces[s->piece++ % 4];
  struct timeval ms = {0, 1000};

  (void)fd;
  (void)what;
  if (n > s->extra_len - s->sent)
    n = s->extra_len - s->sent;
  bufferevent_write(s->bev, s->extra + s->sent, n);
  s->sent += n;
  if (s->sent < s->extra_len)
    evtimer_add(s->tick, &ms);
}

/* Counts the client's pongs (its frames are small and masked). */
static void raw_client_frames(struct raw_server *s, struct evbuffer *in) {
  for (;;) {
    uint8_t h[2];
    size_t len = evbuffer_get_length(in);
    size_t frame;

    if (len < 2 || evbuffer_copyout(in, h, 2) != 2)
      return;
    frame = 2 + 4 + (h[1] & 0x7f); /* control frames: 7-bit lengths */
    if (len < frame)
      return;
    if ((h[0] & 0x0f) == 0x0a)
      s->pongs++;
    if ((h[0] & 0x0f) == 0x08) {
      uint8_t f[8];

      s->client_close = -1; /* a close frame, no code */
      if ((h[1] & 0x7f) >= 2 && evbuffer_copyout(in, f, 8) == 8)
        s->client_close = (f[6] ^ f[2]) << 8 | (f[7] ^ f[3]);
    }
    evbuffer_drain(in, frame);
  }
}

static void raw_read(struct bufferevent *bev, void *arg) {
  struct raw_server *s = arg;
  struct evbuffer *in = bufferevent_get_input(bev);
  struct dgw_handshake_request_info info;
  size_t len = evbuffer_get_length(in);
  const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
  char accept[DGW_WS_ACCEPT_LEN + 1];
  char why[128];
  size_t hlen;
  struct evbuffer *out = bufferevent_get_output(bev);

  if (s->upgraded) {
    raw_client_frames(s, in);
    return;
  }
  if (s->silent || buf == NULL)
    return;
  if (dgw_handshake_parse_request(buf, len, &hlen, &info, why, sizeof(why)) !=
      DGW_OK)
    return;
  evbuffer_drain(in, len);
  s->upgraded = 1;
  dgw_ws_accept_key(info.key, strlen(info.key), accept);
  /* Response and first frames in one write: one TCP segment. */
  evbuffer_add_printf(out,
                      "HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
  if (s->trickle) {
    struct timeval ms = {0, 1000};

    s->tick = evtimer_new(bufferevent_get_base(bev), raw_tick, s);
    evtimer_add(s->tick, &ms);
  } else {
    evbuffer_add(out, s->extra, s->extra_len);
  }
  if (s->never_read)
    bufferevent_disable(bev, EV_READ);
}

static void raw_event(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  (void)what;
  (void)arg;
}

static void raw_accept(struct evconnlistener *l, evutil_socket_t fd,
                       struct sockaddr *sa, int socklen, void *arg) {
  struct raw_server *s = arg;

  (void)sa;
  (void)socklen;
  int one = 1;

  /* Trickled pieces must leave one by one, not coalesced. */
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  s->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
                                  BEV_OPT_CLOSE_ON_FREE);
  bufferevent_setcb(s->bev, raw_read, NULL, raw_event, s);
  bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void raw_start(struct event_base *base, struct raw_server *s) {
  s->listener = listen_ipv4(base, raw_accept, s, INADDR_LOOPBACK, 0, &s->port);
}

static void raw_stop(struct raw_server *s) {
  if (s->tick != NULL)
    event_free(s->tick);
  if (s->bev != NULL)
    bufferevent_free(s->bev);
  evconnlistener_free(s->listener);
}

/* Frames that arrive in the same segment as the 101 response are not
 * lost: two text messages right behind the headers. */
static void test_frames_behind_upgrade(void **state) {
  static const uint8_t frames[] = {0x81, 0x02, '{', '}', 0x81,
                                   0x03, '[',  '1', ']'};
  struct event_base *base = event_base_new();
  struct raw_server s = {0};
  struct client *c;

  (void)state;
  s.extra = frames;
  s.extra_len = sizeof(frames);
  raw_start(base, &s);
  c = client_new(base, NULL, 0);
  c->stop_after = 2;
  connect_to(c, "ws", "127.0.0.1", s.port, "");
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->payloads, 2);
  assert_string_equal(c->payload[0], "{}");
  assert_string_equal(c->payload[1], "[1]");
  client_free(c);
  raw_stop(&s);
  event_base_free(base);
}

/* A masked frame from the server breaks RFC 6455: DGW_ERR_PROTOCOL. */
static void test_protocol_error(void **state) {
  static const uint8_t frames[] = {0x81, 0x82, 1, 2, 3, 4, 'a', 'b'};
  struct event_base *base = event_base_new();
  struct raw_server s = {0};
  struct client *c;

  (void)state;
  s.extra = frames;
  s.extra_len = sizeof(frames);
  raw_start(base, &s);
  c = client_new(base, NULL, 0);
  connect_to(c, "ws", "127.0.0.1", s.port, "");
  assert_true(run_until(base, &c->done, 5));
  assert_true(c->opened);
  assert_int_equal(c->close_err, DGW_ERR_PROTOCOL);
  assert_int_equal(c->payloads, 0);
  client_free(c);
  raw_stop(&s);
  event_base_free(base);
}

/* A peer that floods pings and never reads our pongs: once 4 MiB of
 * output piles up the connection ends with DGW_ERR_IO instead of growing
 * without bound. */
static void test_ping_flood_not_read(void **state) {
  enum { PINGS = 70000, PAYLOAD = 125 };
  uint8_t *frames = malloc((size_t)PINGS * (PAYLOAD + 2));
  struct event_base *base = event_base_new();
  struct raw_server s = {0};
  struct client *c;

  (void)state;
  for (size_t i = 0; i < PINGS; i++) {
    uint8_t *p = frames + i * (PAYLOAD + 2);

    p[0] = 0x89; /* FIN | ping */
    p[1] = PAYLOAD;
    memset(p + 2, 'p', PAYLOAD);
  }
  s.extra = frames;
  s.extra_len = (size_t)PINGS * (PAYLOAD + 2);
  s.never_read = 1;
  raw_start(base, &s);
  c = client_new(base, NULL, 0);
  connect_to(c, "ws", "127.0.0.1", s.port, "");
  assert_true(run_until(base, &c->done, 20));
  assert_true(c->opened);
  assert_int_equal(c->close_err, DGW_ERR_IO);
  assert_non_null(strstr(dgw_ws_reason(c->ws), "not reading"));
  client_free(c);
  raw_stop(&s);
  event_base_free(base);
  free(frames);
}

/* A server that accepts TCP but never answers the upgrade: the connect
 * timeout fires with DGW_ERR_TIMEOUT instead of waiting forever. */
static void test_upgrade_timeout(void **state) {
  struct event_base *base = event_base_new();
  struct raw_server s = {0};
  struct dgw_ws_config cfg = {0};
  struct client *c;
  int err;

  (void)state;
  s.silent = 1;
  raw_start(base, &s);
  c = client_new(base, NULL, 0);
  dgw_ws_free(c->ws);
  cfg.connect_timeout_ms = 200;
  c->ws = dgw_ws_new(base, &cfg, &callbacks, c, &err);
  connect_to(c, "ws", "127.0.0.1", s.port, "");
  assert_true(run_until(base, &c->done, 5));
  assert_int_equal(c->close_err, DGW_ERR_TIMEOUT);
  assert_non_null(strstr(dgw_ws_reason(c->ws), "200 ms"));
  client_free(c);
  raw_stop(&s);
  event_base_free(base);
}

/* ------------------------------------------------- the frame reader */

/* Appends one server frame (unmasked unless `mask`) to `out` and returns
 * the new length.  `form` forces the length encoding: 7, 16 or 64 bits, or
 * 0 for the shortest. */
static size_t put_frame(uint8_t *out, size_t at, int fin, int rsv, int opcode,
                        int form, int mask, const void *data, size_t len) {
  static const uint8_t key[4] = {0x11, 0x22, 0x33, 0x44};
  uint8_t *p = out + at;

  if (form == 0)
    form = len < 126 ? 7 : len < 65536 ? 16 : 64;
  *p++ = (uint8_t)((fin ? 0x80 : 0) | (rsv << 4) | opcode);
  if (form == 7) {
    *p++ = (uint8_t)((mask ? 0x80 : 0) | len);
  } else if (form == 16) {
    *p++ = (uint8_t)((mask ? 0x80 : 0) | 126);
    *p++ = (uint8_t)(len >> 8);
    *p++ = (uint8_t)len;
  } else {
    *p++ = (uint8_t)((mask ? 0x80 : 0) | 127);
    for (int i = 7; i >= 0; i--)
      *p++ = (uint8_t)((uint64_t)len >> (8 * i));
  }
  if (mask) {
    memcpy(p, key, 4);
    p += 4;
  }
  for (size_t i = 0; i < len; i++)
    *p++ = (uint8_t)(((const uint8_t *)data)[i] ^ (mask ? key[i % 4] : 0));
  return (size_t)(p - out);
}

/* Runs `frames` from a raw server against a raw-mode client; the loop
 * stops after `stop_after` messages or when the connection ends. */
static struct client *run_frames(struct event_base *base, struct raw_server *s,
                                 const uint8_t *frames, size_t len, int trickle,
                                 size_t max_message, int stop_after) {
  struct client *c;

  s->extra = frames;
  s->extra_len = len;
  s->trickle = trickle;
  raw_start(base, s);
  c = client_new(base, NULL, max_message);
  c->raw = 1;
  c->stop_after = stop_after;
  connect_to(c, "ws", "127.0.0.1", s->port, "");
  assert_true(run_until(base, &c->done, 10 * time_scale()));
  return c;
}

/* Whole binary frames (taken straight from the input buffer) mixed with
 * what wslay handles: pings, a fragmented message with a ping between its
 * fragments, a text frame, 16- and 64-bit lengths.  All arrive, in order,
 * whole, whether the bytes come at once or cut into pieces. */
static void frames_mixed(int trickle) {
  struct event_base *base = event_base_new();
  struct raw_server s = {0};
  struct client *c;
  uint8_t *frames = malloc(400000);
  uint8_t *big = malloc(70000);
  uint8_t *huge = malloc(300000); /* over WS_GATHER_MIN: gathered */
  char medium[200];
  size_t n = 0;

  memset(big, 'y', 70000);
  memset(huge, 'z', 300000);
  memset(medium, 'x', sizeof(medium));
  n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "one", 3);
  n = put_frame(frames, n, 1, 0, 0x9, 0, 0, "p", 1);
  n = put_frame(frames, n, 0, 0, 0x2, 0, 0, "tw", 2);
  n = put_frame(frames, n, 1, 0, 0x9, 0, 0, "q", 1);
  n = put_frame(frames, n, 1, 0, 0x0, 0, 0, "o", 1);
  n = put_frame(frames, n, 1, 0, 0x1, 0, 0, "three", 5);
  n = put_frame(frames, n, 1, 0, 0x2, 0, 0, medium, sizeof(medium));
  n = put_frame(frames, n, 1, 0, 0x2, 0, 0, big, 70000);
  n = put_frame(frames, n, 1, 0, 0x2, 0, 0, huge, 300000);
  n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "", 0);
  n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "end", 3);
  c = run_frames(base, &s, frames, n, trickle, 0, 8);
  assert_int_equal(c->closed, 0);
  assert_int_equal(c->payloads, 8);
  assert_string_equal(c->payload[0], "one");
  assert_string_equal(c->payload[1], "two");
  assert_string_equal(c->payload[2], "three");
  assert_int_equal(c->payload_len[3], sizeof(medium));
  assert_memory_equal(c->payload[3], medium, sizeof(medium));
  assert_int_equal(c->payload_len[4], 70000);
  assert_memory_equal(c->payload[4], big, 70000);
  assert_int_equal(c->payload_len[5], 300000);
  assert_memory_equal(c->payload[5], huge, 300000);
  assert_int_equal(c->payload_len[6], 0);
  assert_string_equal(c->payload[7], "end");
  assert_int_equal(c->binary_msgs, 7);
  assert_int_equal(c->text_msgs, 1);
  run_for(base, 50);
  assert_int_equal(s.pongs, 2); /* wslay still answers pings */
  client_free(c);
  raw_stop(&s);
  event_base_free(base);
  free(frames);
  free(big);
  free(huge);
}

static void test_frames_mixed(void **state) {
  (void)state;
  frames_mixed(0);
}

static void test_frames_mixed_trickled(void **state) {
  (void)state;
  frames_mixed(1);
}

/* Frames that break RFC 6455 or the cap end the connection with the same
 * error as before the fast path, whatever their opcode; what came before
 * them is delivered, nothing after. */
static void test_frame_errors(void **state) {
  static const uint8_t msb_len[] = {0x82, 127, 0x80, 0, 0, 0, 0, 0, 0, 1, 'z'};
  static const struct {
    const char *name;
    int fin, rsv, opcode, form, mask;
    size_t len;
    int fragment_first; /* a binary fragment (FIN 0) precedes it */
    size_t max_message;
    int trickle;
    int error;
  } cases[] = {
      {"RSV1 on a binary frame", 1, 4, 0x2, 0, 0, 3, 0, 0, 0, DGW_ERR_PROTOCOL},
      {"masked binary frame", 1, 0, 0x2, 0, 1, 3, 0, 0, 0, DGW_ERR_PROTOCOL},
      {"16-bit length for 5 bytes", 1, 0, 0x2, 16, 0, 5, 0, 0, 0,
       DGW_ERR_PROTOCOL},
      {"64-bit length for 200 bytes", 1, 0, 0x2, 64, 0, 200, 0, 0, 1,
       DGW_ERR_PROTOCOL},
      {"binary frame inside a fragmented message", 1, 0, 0x2, 0, 0, 3, 1, 0, 0,
       DGW_ERR_PROTOCOL},
      {"continuation with nothing to continue", 1, 0, 0x0, 0, 0, 3, 0, 0, 0,
       DGW_ERR_PROTOCOL},
      {"unknown opcode", 1, 0, 0x3, 0, 0, 3, 0, 0, 0, DGW_ERR_PROTOCOL},
      {"binary frame over the cap", 1, 0, 0x2, 0, 0, 300, 0, 256, 1,
       DGW_ERR_MESSAGE_TOO_LARGE},
      {"fragmented message over the cap", 1, 0, 0x0, 0, 0, 200, 1, 150, 0,
       DGW_ERR_MESSAGE_TOO_LARGE},
      {"64-bit length with the top bit set", 0, 0, 0, 0, 0, 0, 0, 0, 1,
       DGW_ERR_PROTOCOL},
  };
  uint8_t frames[1024];
  char body[300];

  (void)state;
  memset(body, 'b', sizeof(body));
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct event_base *base = event_base_new();
    struct raw_server s = {0};
    struct client *c;
    size_t n = 0;

    print_message("# %s\n", cases[i].name);
    n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "ok", 2);
    if (cases[i].fragment_first)
      n = put_frame(frames, n, 0, 0, 0x2, 0, 0, body, 100);
    if (cases[i].opcode == 0 && cases[i].len == 0) {
      memcpy(frames + n, msb_len, sizeof(msb_len));
      n += sizeof(msb_len);
    } else {
      n = put_frame(frames, n, cases[i].fin, cases[i].rsv, cases[i].opcode,
                    cases[i].form, cases[i].mask, body, cases[i].len);
    }
    n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "never", 5);
    c = run_frames(base, &s, frames, n, cases[i].trickle, cases[i].max_message,
                   0);
    assert_int_equal(c->closed, 1);
    assert_int_equal(c->close_err, cases[i].error);
    assert_int_equal(c->payloads, 1);
    assert_string_equal(c->payload[0], "ok");
    client_free(c);
    raw_stop(&s);
    event_base_free(base);
  }
}

/* Issue 15, RFC 6455 5.1 and 5.5.1: a masked frame from the server, of any
 * length and kind, and a close frame with a 1-byte body fail the
 * connection at once: DGW_ERR_PROTOCOL, close 1002 to the server, nothing
 * after it delivered.  Before the fix a masked frame of 0-4 bytes was cut
 * 4 bytes short (its masking key not counted), so the fast path read the
 * key as the next frame: the key 82 02 'h' 'i' below delivered "hi"; and
 * a 1-byte close body was "peer closed without a code" (DGW_ERR_CLOSED)
 * with close 1005 echoed. */
static void test_masked_and_short_close(void **state) {
  static const struct {
    const char *name;
    int opcode;
    size_t len;
    int mask;
    int trickle;
  } cases[] = {
      {"masked, 0 bytes, key = a frame", 0x2, 0, 2, 0},
      {"masked, 0 bytes, key = a frame, trickled", 0x2, 0, 2, 1},
      {"masked binary, 1 byte", 0x2, 1, 1, 0},
      {"masked binary, 2 bytes", 0x2, 2, 1, 0},
      {"masked binary, 4 bytes", 0x2, 4, 1, 1},
      {"masked binary, 5 bytes", 0x2, 5, 1, 0},
      {"masked text, 3 bytes", 0x1, 3, 1, 0},
      {"masked ping, 0 bytes", 0x9, 0, 1, 0},
      {"masked close, 2 bytes", 0x8, 2, 1, 0},
      {"masked binary, 300 bytes", 0x2, 300, 1, 0},
      {"close with a 1-byte body", 0x8, 1, 0, 0},
      {"close with a 1-byte body, trickled", 0x8, 1, 0, 1},
  };
  static const uint8_t key_is_a_frame[] = {0x82, 0x80, 0x82, 0x02, 'h', 'i'};
  uint8_t frames[1024];
  char body[300];

  (void)state;
  memset(body, 0x03, sizeof(body)); /* 03 e8 would be code 1000 */
  body[0] = 0x03;
  body[1] = (char)0xe8;
  for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
    struct event_base *base = event_base_new();
    struct raw_server s = {0};
    struct client *c;
    size_t n = 0;

    print_message("# %s\n", cases[i].name);
    n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "ok", 2);
    if (cases[i].mask == 2) {
      memcpy(frames + n, key_is_a_frame, sizeof(key_is_a_frame));
      n += sizeof(key_is_a_frame);
    } else {
      n = put_frame(frames, n, 1, 0, cases[i].opcode, 0, cases[i].mask, body,
                    cases[i].len);
    }
    n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "never", 5);
    c = run_frames(base, &s, frames, n, cases[i].trickle, 0, 0);
    assert_int_equal(c->closed, 1);
    if (c->close_err != DGW_ERR_PROTOCOL)
      fail_msg("%s: error %d", cases[i].name, c->close_err);
    assert_int_equal(c->payloads, 1);
    assert_string_equal(c->payload[0], "ok");
    run_for(base, 50);
    /* Written out before the socket is released (was never sent). */
    if (s.client_close != 1002)
      fail_msg("%s: the server got close %d", cases[i].name, s.client_close);
    client_free(c);
    raw_stop(&s);
    event_base_free(base);
  }
}

/* Issue 15: a big whole frame is gathered into a block of its own as it
 * arrives (not pulled up from the input buffer at the end, twice its size
 * at the peak).  Input: the header of a 1 MiB binary frame and 100 KB of
 * it, then the peer drops the connection: DGW_ERR_CONNECTION_LOST, nothing
 * delivered, and the half-gathered block is freed (valgrind). */
static void test_big_frame_cut_short(void **state) {
  struct event_base *base = event_base_new();
  struct raw_server s = {0};
  struct client *c;
  uint8_t *frames = calloc(1, 120000);
  size_t n = 0;

  (void)state;
  n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "ok", 2);
  frames[n++] = 0x82;
  frames[n++] = 127;
  for (int i = 7; i >= 0; i--)
    frames[n++] = (uint8_t)((uint64_t)(1u << 20) >> (8 * i));
  n += 100000;
  s.extra = frames;
  s.extra_len = n;
  raw_start(base, &s);
  c = client_new(base, NULL, 0);
  c->raw = 1;
  connect_to(c, "ws", "127.0.0.1", s.port, "");
  assert_true(run_until(base, &c->opened, 5 * time_scale()));
  run_for(base, 100);
  assert_int_equal(c->payloads, 1);
  bufferevent_free(s.bev);
  s.bev = NULL;
  assert_true(run_until(base, &c->done, 5 * time_scale()));
  assert_int_equal(c->close_err, DGW_ERR_CONNECTION_LOST);
  assert_int_equal(c->payloads, 1);
  client_free(c);
  raw_stop(&s);
  event_base_free(base);
  free(frames);
}

/* Closing or freeing from on_message with more whole frames behind the
 * current one in the same read: they are not delivered, and nothing
 * touches the freed connection. */
static void test_frames_after_close_or_free(void **state) {
  uint8_t frames[64];
  size_t n = 0;

  (void)state;
  n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "a", 1);
  n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "b", 1);
  n = put_frame(frames, n, 1, 0, 0x2, 0, 0, "c", 1);
  for (int freeing = 0; freeing <= 1; freeing++) {
    struct event_base *base = event_base_new();
    struct raw_server s = {0};
    struct client *c;

    s.extra = frames;
    s.extra_len = n;
    raw_start(base, &s);
    c = client_new(base, NULL, 0);
    c->raw = 1;
    if (freeing)
      c->free_on_message = 1;
    else
      c->close_after = 1;
    connect_to(c, "ws", "127.0.0.1", s.port, "");
    /* Freeing ends it at once; a close the server never answers ends
     * with the close timeout. */
    assert_true(run_until(base, &c->done, 10 * time_scale()));
    run_for(base, 50);
    assert_int_equal(c->payloads, 1);
    assert_int_equal(c->closed, freeing ? 0 : 1);
    if (!freeing)
      assert_int_equal(c->close_err, DGW_OK);
    client_free(c);
    raw_stop(&s);
    event_base_free(base);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_plain_session),
      cmocka_unit_test(test_tls_session),
      cmocka_unit_test(test_tls_session_ip),
      cmocka_unit_test(test_tls_name_mismatch),
      cmocka_unit_test(test_tls_untrusted),
      cmocka_unit_test(test_tls_to_plain_server),
      cmocka_unit_test(test_bad_accept),
      cmocka_unit_test(test_drop_midframe),
      cmocka_unit_test(test_drop_midframe_tls),
      cmocka_unit_test(test_multi_mb_payload),
      cmocka_unit_test(test_multi_mb_payload_tls),
      cmocka_unit_test(test_split_and_fragmented),
      cmocka_unit_test(test_text_frames),
      cmocka_unit_test(test_peer_close_code),
      cmocka_unit_test(test_message_too_large),
      cmocka_unit_test(test_free_inside_callback),
      cmocka_unit_test(test_close_inside_callback),
      cmocka_unit_test(test_connection_refused),
      cmocka_unit_test(test_tls_connection_refused),
      cmocka_unit_test(test_blackholed_first_address),
      cmocka_unit_test(test_dns_failure),
      cmocka_unit_test(test_connect_argument_errors),
      cmocka_unit_test(test_frames_behind_upgrade),
      cmocka_unit_test(test_protocol_error),
      cmocka_unit_test(test_ping_flood_not_read),
      cmocka_unit_test(test_upgrade_timeout),
      cmocka_unit_test(test_frames_mixed),
      cmocka_unit_test(test_frames_mixed_trickled),
      cmocka_unit_test(test_frame_errors),
      cmocka_unit_test(test_masked_and_short_close),
      cmocka_unit_test(test_big_frame_cut_short),
      cmocka_unit_test(test_frames_after_close_or_free),
  };
  ignore_sigpipe();
  return cmocka_run_group_tests_name("ws", tests, NULL, NULL);
}
