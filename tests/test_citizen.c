/*
 * Issue 18, "a good citizen of an existing libevent program": what dgw
 * puts on, borrows from and leaves behind on the application's
 * event_base.  Each test names its input and the error it expects.
 */
#include "config.h"

#include "fixture.h"

#include <dlfcn.h>
#include <unistd.h>

#include <event2/dns.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <openssl/ssl.h>

#include "payload.h"

/* --- the loop contract --- */

static int dump_event(const struct event_base *base, const struct event *ev,
                      void *arg) {
  Dl_info info;
  void *fn = (void *)event_get_callback(ev);

  (void)base;
  (void)arg;
  memset(&info, 0, sizeof(info));
  dladdr(fn, &info);
  fprintf(stderr, "# left on the base: fd %d events 0x%x cb %s+%#lx (%s)\n",
          (int)event_get_fd(ev), (unsigned)event_get_events(ev),
          info.dli_sname ? info.dli_sname : "?",
          (unsigned long)((char *)fn - (char *)info.dli_fbase),
          info.dli_fname ? info.dli_fname : "?");
  return 0;
}

/* Runs the loop without blocking until nothing is added on it any more,
 * for at most `seconds` (scaled); returns how many events stay added,
 * after printing each. */
static int drain_to_zero(struct event_base *base, double seconds) {
  double end = deadline_ms(seconds);
  int n;

  while ((n = event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED)) > 0 &&
         now_ms() < end) {
    event_base_loop(base, EVLOOP_NONBLOCK);
    usleep(2000);
  }
  if (n > 0)
    event_base_foreach_event(base, dump_event, NULL);
  return n;
}

/* The real check: event_base_dispatch() returns by itself.  No event of
 * the test's keeps it alive; SIGALRM (default action: the test dies)
 * stops a hang. */
static void dispatch_returns(struct event_base *base) {
  alarm((unsigned)(20 * time_scale()));
  assert_int_equal(event_base_dispatch(base), 1); /* 1: no events */
  alarm(0);
}

/* Input: a mock that closes 4004 when IDENTIFY arrives (refused token).
 * Expected: the shard is FATAL, and once the mock is gone nothing of
 * dgw's is left added on the base: event_base_dispatch() returns 1. */
static void test_loop_ends_after_fatal(void **state) {
  struct fx *f = *state;

  f->fatal_on_op = DGW_OP_IDENTIFY;
  fx_start(f);
  assert_true(fx_wait_for(f, fx_has_fatal, 5));
  assert_int_equal(f->fatal_code, 4004);
  dgw_mock_free(f->mock);
  f->mock = NULL;
  assert_int_equal(drain_to_zero(f->base, 5), 0);
  dispatch_returns(f->base);
}

/* Input: a READY shard, then dgw_client_stop().  Expected: CLOSED and an
 * empty base. */
static void test_loop_ends_after_stop(void **state) {
  struct fx *f = *state;

  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  dgw_client_stop(f->client);
  assert_true(fx_wait_for(f, fx_is_closed, 5));
  dgw_mock_free(f->mock);
  f->mock = NULL;
  assert_int_equal(drain_to_zero(f->base, 5), 0);
  dispatch_returns(f->base);
}

/* Input: no gateway URL and auto shards, so GET /gateway/bot (to the
 * mock, over https with the test CA) comes first; the gateway then closes
 * 4004.  Expected: FATAL, and after the mock is gone the REST request, its
 * connection and the resolver leave nothing added on the base. */
static void test_loop_ends_after_fatal_with_rest(void **state) {
  struct dgw_mock_config mc;
  struct fx *f;
  char api[128];

  (void)state;
  memset(&mc, 0, sizeof(mc));
  mc.cert_file = cert_path("localhost.pem");
  mc.key_file = cert_path("localhost.key");
  f = fx_new(&mc);
  f->fatal_on_op = DGW_OP_IDENTIFY;
  snprintf(api, sizeof(api), "https://localhost:%u/api/v10",
           (unsigned)dgw_mock_port(f->mock));
  assert_int_equal(dgw_options_set_api_url(f->opt, api), DGW_OK);
  assert_int_equal(dgw_options_set_gateway_url(f->opt, NULL), DGW_OK);
  assert_int_equal(dgw_options_set_shards_auto(f->opt), DGW_OK);
  assert_int_equal(dgw_options_set_ca_file(f->opt, cert_path("ca.pem")),
                   DGW_OK);
  fx_client_new(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(fx_wait_for(f, fx_has_fatal, 5));
  assert_int_equal(f->fatal_code, 4004);
  dgw_mock_free(f->mock);
  f->mock = NULL;
  assert_int_equal(drain_to_zero(f->base, 5), 0);
  dispatch_returns(f->base);
  fx_free(f);
}

/* Input: a started client, stopped; then dgw_client_start() again.
 * Expected: DGW_ERR_STATE (a client runs once, as dgw.h says). */
static void test_start_after_stop_is_refused(void **state) {
  struct fx *f = *state;

  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  dgw_client_stop(f->client);
  assert_int_equal(dgw_client_start(f->client), DGW_ERR_STATE);
  assert_true(fx_wait_for(f, fx_is_closed, 5));
  assert_int_equal(dgw_client_start(f->client), DGW_ERR_STATE);
}

/* Input: dgw_client_free() on a READY client, then the mock freed.
 * Expected: one non-blocking loop pass leaves nothing added on the base
 * (the documented drain), and dispatch returns by itself. */
static void test_nothing_left_after_free(void **state) {
  struct fx *f = *state;

  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  /* fx_wait_for's 20 ms loopexit timers are the test's: let them pass. */
  run_for(f->base, 60);
  dgw_client_free(f->client);
  f->client = NULL;
  dgw_mock_free(f->mock);
  f->mock = NULL;
  event_base_loop(f->base, EVLOOP_NONBLOCK);
  assert_int_equal(drain_to_zero(f->base, 0), 0);
  dispatch_returns(f->base);
}

/* --- the application's SSL_CTX --- */

static struct fx *fx_tls(void) {
  struct dgw_mock_config mc;

  memset(&mc, 0, sizeof(mc));
  mc.cert_file = cert_path("localhost.pem");
  mc.key_file = cert_path("localhost.key");
  return fx_new(&mc);
}

static int accept_all(int ok, X509_STORE_CTX *ctx) {
  (void)ok;
  (void)ctx;
  return 1;
}

/* An application context: TLS client, `verify` mode, the test CA when
 * `with_ca`. */
static SSL_CTX *app_ctx(int verify, int with_ca) {
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());

  assert_non_null(ctx);
  SSL_CTX_set_verify(ctx, verify, NULL);
  if (with_ca)
    assert_int_equal(
        SSL_CTX_load_verify_locations(ctx, cert_path("ca.pem"), NULL), 1);
  return ctx;
}

/* Input: an application SSL_CTX trusting the test CA (the application
 * frees its own reference right after handing it over), wss to the mock.
 * Expected: READY, with no CA file configured in dgw. */
static void test_app_ssl_ctx_connects(void **state) {
  struct fx *f = fx_tls();
  SSL_CTX *ctx = app_ctx(SSL_VERIFY_PEER, 1);

  (void)state;
  assert_int_equal(dgw_options_set_ssl_ctx(f->opt, ctx), DGW_OK);
  SSL_CTX_free(ctx); /* dgw holds its own reference */
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  fx_free(f);
}

/* Input: an application SSL_CTX without the test CA.  Expected: the
 * connection fails with DGW_ERR_TLS_VERIFY, never READY. */
static void test_app_ssl_ctx_without_ca_fails_verify(void **state) {
  struct fx *f = fx_tls();
  SSL_CTX *ctx = app_ctx(SSL_VERIFY_PEER, 0);

  (void)state;
  assert_int_equal(dgw_options_set_ssl_ctx(f->opt, ctx), DGW_OK);
  SSL_CTX_free(ctx);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_has_disconnect, 5));
  assert_int_equal(f->last_dc.error, DGW_ERR_TLS_VERIFY);
  assert_int_equal(f->ready, 0);
  fx_free(f);
}

/* Input: SSL_VERIFY_PEER with a verify callback that accepts everything,
 * and no CA.  Expected: dgw still fails the connection with
 * DGW_ERR_TLS_VERIFY (the verify result is not X509_V_OK). */
static void test_app_verify_callback_cannot_skip_verification(void **state) {
  struct fx *f = fx_tls();
  SSL_CTX *ctx = app_ctx(SSL_VERIFY_PEER, 0);

  (void)state;
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, accept_all);
  assert_int_equal(dgw_options_set_ssl_ctx(f->opt, ctx), DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_has_disconnect, 5));
  assert_int_equal(f->last_dc.error, DGW_ERR_TLS_VERIFY);
  assert_int_equal(f->ready, 0);
  fx_free(f);
  SSL_CTX_free(ctx);
}

/* Input: a context with SSL_VERIFY_NONE, to the setter; then a context
 * accepted by the setter and switched to SSL_VERIFY_NONE before
 * dgw_client_new().  Expected: DGW_ERR_INVALID_ARGUMENT with an ERROR log
 * line saying why, both times. */
static void test_app_ssl_ctx_verify_none_refused(void **state) {
  struct fx *f = *state;
  SSL_CTX *ctx = app_ctx(SSL_VERIFY_NONE, 1);
  int err = 0;

  assert_int_equal(dgw_options_set_ssl_ctx(f->opt, ctx),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_true(fx_find_line(f, 0, "SSL_VERIFY_NONE") >= 0);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL);
  assert_int_equal(dgw_options_set_ssl_ctx(f->opt, ctx), DGW_OK);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
  assert_null(dgw_client_new(f->base, f->opt, f->cb, f, &err));
  assert_int_equal(err, DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(fx_count_lines(f, "SSL_VERIFY_NONE"), 2);
  assert_int_equal(dgw_options_set_ssl_ctx(f->opt, NULL), DGW_OK);
  SSL_CTX_free(ctx);
}

/* --- the application's evdns_base --- */

/* Input: the application's evdns_base with no nameserver and a hosts file
 * naming "dgw-citizen.test" 127.0.0.1; the gateway URL uses that name.
 * Expected: READY (dgw's own resolver could not know the name), and after
 * stop the loop ends with the application's evdns_base still alive. */
static void test_app_dns_base_resolves(void **state) {
  struct fx *f = *state;
  char path[] = "/tmp/dgw-citizen-hosts-XXXXXX";
  char url[128];
  struct evdns_base *dns;
  int fd = mkstemp(path);
  FILE *fp;

  assert_true(fd >= 0);
  fp = fdopen(fd, "w");
  assert_non_null(fp);
  fprintf(fp, "127.0.0.1 dgw-citizen.test\n");
  fclose(fp);
  dns = evdns_base_new(f->base, EVDNS_BASE_DISABLE_WHEN_INACTIVE);
  assert_non_null(dns);
  assert_int_equal(evdns_base_load_hosts(dns, path), 0);
  unlink(path);
  snprintf(url, sizeof(url), "ws://dgw-citizen.test:%u",
           (unsigned)dgw_mock_port(f->mock));
  assert_int_equal(dgw_options_set_gateway_url(f->opt, url), DGW_OK);
  assert_int_equal(dgw_options_set_dns_base(f->opt, dns), DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  dgw_client_stop(f->client);
  assert_true(fx_wait_for(f, fx_is_closed, 5));
  dgw_client_free(f->client);
  f->client = NULL;
  dgw_mock_free(f->mock);
  f->mock = NULL;
  assert_int_equal(drain_to_zero(f->base, 5), 0);
  dispatch_returns(f->base);
  evdns_base_free(dns, 0); /* ours: dgw never frees it */
}

/* --- per-shard user data, IDENTIFY properties, error table --- */

static void *seen_shard_ud;

static void look_at_user_data(struct fx *f, struct dgw_gateway *gw,
                              const struct dgw_event *ev) {
  (void)f;
  (void)ev;
  seen_shard_ud = dgw_gateway_user_data(gw);
}

/* Input: dgw_gateway_set_user_data(shard 0, &marker) before start.
 * Expected: the shard's callbacks read it back; the client's user data
 * (f) is untouched. */
static void test_shard_user_data(void **state) {
  struct fx *f = *state;
  static int marker;
  struct dgw_gateway *gw;

  fx_client_new(f);
  gw = dgw_client_gateway(f->client, 0);
  assert_null(dgw_gateway_user_data(gw));
  dgw_gateway_set_user_data(gw, &marker);
  dgw_gateway_set_user_data(NULL, &marker); /* no-op */
  assert_null(dgw_gateway_user_data(NULL));
  f->on_dispatch = look_at_user_data;
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_true(seen_shard_ud == &marker);
}

/* Input: properties os "freebsd", browser "mybot", device "mybot-1".
 * Expected: IDENTIFY carries exactly them; bad values are refused with
 * DGW_ERR_INVALID_ARGUMENT. */
static void test_identify_properties(void **state) {
  struct fx *f = *state;
  struct json_object *root, *d, *props;

  assert_int_equal(
      dgw_options_set_identify_properties(f->opt, "linux", NULL, "x"),
      DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      dgw_options_set_identify_properties(f->opt, "linux", "a\nb", "x"),
      DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_identify_properties(f->opt, "freebsd",
                                                       "mybot", "mybot-1"),
                   DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  root = json_tokener_parse(f->last[DGW_OP_IDENTIFY]);
  assert_non_null(root);
  assert_true(json_object_object_get_ex(root, "d", &d));
  assert_true(json_object_object_get_ex(d, "properties", &props));
  assert_string_equal(
      json_object_to_json_string_ext(props, JSON_C_TO_STRING_PLAIN),
      "{\"os\":\"freebsd\",\"browser\":\"mybot\","
      "\"device\":\"mybot-1\"}");
  json_object_put(root);
}

/* Input: no properties set.  Expected: dgw's defaults. */
static void test_identify_properties_default(void **state) {
  struct fx *f = *state;

  assert_int_equal(
      dgw_options_set_identify_properties(f->opt, NULL, NULL, NULL), DGW_OK);
  fx_start(f);
  assert_true(fx_wait_for(f, fx_is_ready, 5));
  assert_non_null(strstr(f->last[DGW_OP_IDENTIFY],
                         "\"properties\":{\"os\":\"linux\",\"browser\":"
                         "\"dgw\",\"device\":\"dgw\"}"));
}

/* Input: every error code.  Expected: the table in dgw.h. */
static void test_error_is_fatal(void **state) {
  static const int fatal[] = {DGW_ERR_INVALID_ARGUMENT,
                              DGW_ERR_NOMEM,
                              DGW_ERR_STATE,
                              DGW_ERR_URL,
                              DGW_ERR_JSON,
                              DGW_ERR_PAYLOAD_TOO_LARGE,
                              DGW_ERR_PLUGIN,
                              DGW_ERR_AUTH,
                              DGW_ERR_HTTP,
                              DGW_ERR_NOT_FOUND,
                              DGW_ERR_TYPE,
                              DGW_ERR_RANGE,
                              DGW_ERR_BUFFER_TOO_SMALL,
                              -9999};
  static const int retry[] = {DGW_OK,
                              DGW_ERR_AGAIN,
                              DGW_ERR_QUEUE_FULL,
                              DGW_ERR_SESSION_LOST,
                              DGW_ERR_RATE_LIMITED,
                              DGW_ERR_DNS,
                              DGW_ERR_CONNECT,
                              DGW_ERR_TLS,
                              DGW_ERR_TLS_VERIFY,
                              DGW_ERR_TIMEOUT,
                              DGW_ERR_HANDSHAKE,
                              DGW_ERR_PROTOCOL,
                              DGW_ERR_CLOSED,
                              DGW_ERR_CONNECTION_LOST,
                              DGW_ERR_MESSAGE_TOO_LARGE,
                              DGW_ERR_IO,
                              DGW_ERR_INFLATE,
                              DGW_ERR_INFLATE_LIMIT};

  (void)state;
  for (size_t i = 0; i < sizeof(fatal) / sizeof(fatal[0]); i++)
    assert_int_equal(dgw_error_is_fatal(fatal[i]), 1);
  for (size_t i = 0; i < sizeof(retry) / sizeof(retry[0]); i++)
    assert_int_equal(dgw_error_is_fatal(retry[i]), 0);
}

/* Input: dgw_options_set_log(NULL, ...), and the nonce buffer size.
 * Expected: DGW_ERR_INVALID_ARGUMENT (it returned void before), and
 * DGW_NONCE_SIZE is the longest nonce plus its NUL. */
static void test_abi_cheap_parts(void **state) {
  struct fx *f = *state;
  char nonce[DGW_NONCE_SIZE];

  assert_int_equal(dgw_options_set_log(NULL, test_log, NULL, DGW_LOG_INFO),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_log(f->opt, test_log, NULL, DGW_LOG_INFO),
                   DGW_OK);
  assert_int_equal(sizeof(nonce), DGW_NONCE_MAX + 1);
  assert_int_equal(DGW_NONCE_SIZE, 33);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_loop_ends_after_fatal, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_loop_ends_after_stop, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_loop_ends_after_fatal_with_rest),
      cmocka_unit_test_setup_teardown(test_start_after_stop_is_refused,
                                      fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_nothing_left_after_free, fx_setup,
                                      fx_teardown),
      cmocka_unit_test(test_app_ssl_ctx_connects),
      cmocka_unit_test(test_app_ssl_ctx_without_ca_fails_verify),
      cmocka_unit_test(test_app_verify_callback_cannot_skip_verification),
      cmocka_unit_test_setup_teardown(test_app_ssl_ctx_verify_none_refused,
                                      fx_setup, fx_teardown),
      cmocka_unit_test_setup_teardown(test_app_dns_base_resolves, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_shard_user_data, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_identify_properties, fx_setup,
                                      fx_teardown),
      cmocka_unit_test_setup_teardown(test_identify_properties_default,
                                      fx_setup, fx_teardown),
      cmocka_unit_test(test_error_is_fatal),
      cmocka_unit_test_setup_teardown(test_abi_cheap_parts, fx_setup,
                                      fx_teardown),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
