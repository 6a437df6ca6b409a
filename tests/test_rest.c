/*
 * GET /gateway/bot (lib/rest.c) and what the client does with it
 * (lib/client.c): the answer's parser and the 429 wait as tables, then
 * clients against a local HTTPS server (evhttp, a bufferevent_openssl per
 * connection, the certificates of tests/gen-certs.sh) that answers from a
 * script, with the mock gateway behind.  Waits are asserted as lower
 * bounds only: timers never fire early, but a loaded machine makes them
 * late.
 */
#include "config.h"

#include "harness.h"

#include <ctype.h>
#include <errno.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/dns.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>
#include <event2/listener.h>
#include <json-c/json.h>
#include <openssl/ssl.h>

#include "client.h"
#include "identify.h"
#include "mock.h"
#include "payload.h"
#include "rest.h"

#define TOKEN "MTIz.rest-test.token_9"
#define USER_AGENT "DiscordBot (https://github.com/dgw, " DGW_VERSION ")"
#define LIMIT_1000                                                             \
  "\"session_start_limit\":{\"total\":1000,\"remaining\":999,"                 \
  "\"reset_after\":14400000,\"max_concurrency\":1}"

/* ================================================================ */
/* The answer's parser                                               */
/* ================================================================ */

struct parse_case {
  const char *body;
  int api_tls;
  const char *why; /* NULL: accepted; else a word the reason contains */
};

static const struct parse_case parse_cases[] = {
    {"{\"url\":\"wss://gateway.discord.gg\",\"shards\":9," LIMIT_1000 "}", 1,
     NULL},
    /* Unknown keys, white space, a trailing slash: fine. */
    {" {\"shards\":1,\"url\":\"wss://g.example/\",\"x\":[1,{}]," LIMIT_1000
     "}\r\n",
     1, NULL},
    /* ws:// only from an http:// API. */
    {"{\"url\":\"ws://127.0.0.1:1\",\"shards\":1," LIMIT_1000 "}", 0, NULL},
    {"{\"url\":\"ws://127.0.0.1:1\",\"shards\":1," LIMIT_1000 "}", 1,
     "in clear"},
    {"", 1, "empty"},
    {"{", 1, "not JSON"},
    {"nul", 1, "not JSON"},
    {"{\"url\":\"wss://g\",\"shards\":1," LIMIT_1000 "} x", 1, "not JSON"},
    {"[1,2]", 1, "not a JSON object"},
    {"{\"shards\":1," LIMIT_1000 "}", 1, "\"url\" is missing"},
    {"{\"url\":7,\"shards\":1," LIMIT_1000 "}", 1, "\"url\" is missing"},
    {"{\"url\":\"https://g\",\"shards\":1," LIMIT_1000 "}", 1, "scheme"},
    {"{\"url\":\"wss://\",\"shards\":1," LIMIT_1000 "}", 1, "empty host"},
    {"{\"url\":\"wss://g/?v=9\",\"shards\":1," LIMIT_1000 "}", 1, "query"},
    {"{\"url\":\"wss://g\\u0000x\",\"shards\":1," LIMIT_1000 "}", 1, "NUL"},
    {"{\"url\":\"wss://g\"," LIMIT_1000 "}", 1, "\"shards\" is missing"},
    {"{\"url\":\"wss://g\",\"shards\":\"9\"," LIMIT_1000 "}", 1,
     "not an integer"},
    {"{\"url\":\"wss://g\",\"shards\":9.5," LIMIT_1000 "}", 1,
     "not an integer"},
    {"{\"url\":\"wss://g\",\"shards\":0," LIMIT_1000 "}", 1, "\"shards\" is 0"},
    {"{\"url\":\"wss://g\",\"shards\":-3," LIMIT_1000 "}", 1, "\"shards\""},
    {"{\"url\":\"wss://g\",\"shards\":65537," LIMIT_1000 "}", 1,
     "\"shards\" is 65537"},
    {"{\"url\":\"wss://g\",\"shards\":99999999999999999999999," LIMIT_1000 "}",
     1, "\"shards\""},
    {"{\"url\":\"wss://g\",\"shards\":1}", 1, "session_start_limit"},
    {"{\"url\":\"wss://g\",\"shards\":1,\"session_start_limit\":[]}", 1,
     "session_start_limit"},
    {"{\"url\":\"wss://g\",\"shards\":1,\"session_start_limit\":{"
     "\"remaining\":1,\"reset_after\":1,\"max_concurrency\":1}}",
     1, "\"total\""},
    {"{\"url\":\"wss://g\",\"shards\":1,\"session_start_limit\":{"
     "\"total\":10,\"remaining\":11,\"reset_after\":1,\"max_concurrency\":1}}",
     1, "\"remaining\" is 11"},
    {"{\"url\":\"wss://g\",\"shards\":1,\"session_start_limit\":{"
     "\"total\":10,\"remaining\":-1,\"reset_after\":1,\"max_concurrency\":1}}",
     1, "\"remaining\""},
    {"{\"url\":\"wss://g\",\"shards\":1,\"session_start_limit\":{"
     "\"total\":10,\"remaining\":1,\"reset_after\":-1,\"max_concurrency\":1}}",
     1, "\"reset_after\""},
    {"{\"url\":\"wss://g\",\"shards\":1,\"session_start_limit\":{"
     "\"total\":10,\"remaining\":1,\"reset_after\":1,\"max_concurrency\":0}}",
     1, "\"max_concurrency\" is 0"},
    {"{\"url\":\"wss://g\",\"shards\":1,\"session_start_limit\":{"
     "\"total\":10,\"remaining\":1,\"reset_after\":1}}",
     1, "\"max_concurrency\""},
};

/* Every accepted body gives its fields; every refused one says why, and
 * leaves nothing half-filled. */
static void test_parse_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(parse_cases) / sizeof(parse_cases[0]); i++) {
    const struct parse_case *pc = &parse_cases[i];
    struct dgw_gateway_bot bot;
    char why[200] = "";
    /* Not NUL-terminated: the parser must honour the length. */
    size_t len = strlen(pc->body);
    char *copy = malloc(len + 1);
    int rv;

    memcpy(copy, pc->body, len);
    copy[len] = 'x';
    rv = dgw_gateway_bot_parse(copy, len, pc->api_tls, &bot, why, sizeof(why));
    free(copy);
    if (pc->why == NULL && rv != DGW_OK)
      fail_msg("case %zu refused: %s", i, why);
    if (pc->why != NULL) {
      if (rv != DGW_ERR_JSON)
        fail_msg("case %zu accepted: %s", i, pc->body);
      if (strstr(why, pc->why) == NULL)
        fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why, pc->why);
      assert_int_equal(bot.shards, 0);
      assert_string_equal(bot.url, "");
    }
  }
}

/* The fields of Discord's own example, exactly. */
static void test_parse_fields(void **state) {
  const char *body = "{\"url\": \"wss://gateway.discord.gg\", \"shards\": 9, "
                     "\"session_start_limit\": {\"total\": 1000, "
                     "\"remaining\": 999, \"reset_after\": 14400000, "
                     "\"max_concurrency\": 16}}";
  struct dgw_gateway_bot bot;

  (void)state;
  assert_int_equal(dgw_gateway_bot_parse(body, strlen(body), 1, &bot, NULL, 0),
                   DGW_OK);
  assert_string_equal(bot.url, "wss://gateway.discord.gg");
  assert_int_equal(bot.shards, 9);
  assert_int_equal(bot.total, 1000);
  assert_int_equal(bot.remaining, 999);
  assert_int_equal(bot.reset_after_ms, 14400000);
  assert_int_equal(bot.max_concurrency, 16);
  assert_int_equal(dgw_gateway_bot_parse(NULL, 0, 1, &bot, NULL, 0),
                   DGW_ERR_JSON);
  assert_int_equal(dgw_gateway_bot_parse(body, strlen(body), 1, NULL, NULL, 0),
                   DGW_ERR_INVALID_ARGUMENT);
}

/* No input crashes the parser: every prefix of a valid answer, and every
 * byte of it replaced by a few troublesome ones, is either accepted or
 * refused with a reason (run under ASan and valgrind). */
static void test_parse_mutations(void **state) {
  static const char good[] =
      "{\"url\":\"wss://gateway.discord.gg\",\"shards\":9," LIMIT_1000 "}";
  static const char subst[] = {'\0', '"',  '}', '{',       '9',
                               '-',  '\\', ':', (char)0xff};
  size_t len = sizeof(good) - 1;
  char buf[sizeof(good)];
  int accepted = 0;

  (void)state;
  for (size_t cut = 0; cut <= len; cut++) {
    struct dgw_gateway_bot bot;
    char why[200] = "";
    int rv = dgw_gateway_bot_parse(good, cut, 1, &bot, why, sizeof(why));

    assert_true(rv == DGW_OK || (rv == DGW_ERR_JSON && why[0] != '\0'));
    accepted += rv == DGW_OK;
  }
  assert_int_equal(accepted, 1); /* only the whole answer */
  for (size_t i = 0; i < len; i++)
    for (size_t k = 0; k < sizeof(subst); k++) {
      struct dgw_gateway_bot bot;
      char why[200] = "";
      int rv;

      memcpy(buf, good, len);
      buf[i] = subst[k];
      buf[len] = '\0'; /* the header argument is a C string */
      rv = dgw_gateway_bot_parse(buf, len, 1, &bot, why, sizeof(why));
      assert_true(rv == DGW_OK || (rv == DGW_ERR_JSON && why[0] != '\0'));
      if (rv == DGW_OK) {
        assert_true(bot.shards >= 1 && bot.max_concurrency >= 1);
        assert_true(bot.remaining <= bot.total);
      }
      assert_true(dgw_rest_retry_after_ms(buf, len, buf) >= -1);
    }
}

struct wait_case {
  const char *body;
  const char *header;
  int64_t ms;
};

static const struct wait_case wait_cases[] = {
    {"{\"retry_after\":1.5,\"global\":false}", NULL, 1500},
    {"{\"retry_after\":2}", "9", 2000},    /* the body wins: it is exact */
    {"{\"retry_after\":0.0011}", NULL, 2}, /* rounded up, never sooner */
    {NULL, "3", 3000},
    {"<html>429</html>", " 0.25 ", 250},
    {"{\"retry_after\":0}", "1", 1000},
    {"{\"retry_after\":-5}", NULL, -1},
    {"{\"retry_after\":\"1\"}", NULL, -1},
    {"{\"retry_after\":NaN}", NULL, -1},
    {"{\"retry_after\":1e300}", NULL, DGW_REST_MAX_RETRY_AFTER_MS},
    {NULL, "99999999999", DGW_REST_MAX_RETRY_AFTER_MS},
    {NULL, "Wed, 21 Oct 2015 07:28:00 GMT", -1},
    {NULL, "5s", -1},
    {NULL, "", -1},
    {"[]", NULL, -1},
    {NULL, NULL, -1},
};

/* The wait a 429 asks for: the body's retry_after, else Retry-After, cut
 * to an hour; -1 when neither says. */
static void test_retry_after_table(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(wait_cases) / sizeof(wait_cases[0]); i++) {
    const struct wait_case *wc = &wait_cases[i];
    int64_t ms = dgw_rest_retry_after_ms(
        wc->body, wc->body != NULL ? strlen(wc->body) : 0, wc->header);

    if (ms != wc->ms)
      fail_msg("case %zu: %lld ms, expected %lld", i, (long long)ms,
               (long long)wc->ms);
  }
}

/* ================================================================ */
/* A scripted HTTPS server                                           */
/* ================================================================ */

struct step {
  int status;         /* 0: read the request and never answer */
  const char *body;   /* NULL: empty */
  const char *retry;  /* a Retry-After header, or NULL */
  size_t big;         /* > 0: a body of this many bytes instead */
  int chunked;        /* send the body chunked */
  size_t big_header;  /* > 0: and a header of this many bytes */
  const char *reason; /* the reason phrase; NULL: "Scripted" */
};

#define MAX_SEEN 32

struct server {
  struct evhttp *http;
  SSL_CTX *ctx; /* NULL: plain http:// */
  uint16_t port;
  const struct step *steps;
  int nsteps;
  int served;
  double at[MAX_SEEN];
  char auth[MAX_SEEN][128];
  char agent[MAX_SEEN][128];
  char host[MAX_SEEN][128];
  char accept[MAX_SEEN][64];
  char uri[MAX_SEEN][256];
  int method[MAX_SEEN];
  struct event_base *break_base; /* non-NULL: loopbreak on each request */
};

static void copy_header(struct evhttp_request *req, const char *name, char *out,
                        size_t size) {
  const char *v =
      evhttp_find_header(evhttp_request_get_input_headers(req), name);

  snprintf(out, size, "%s", v != NULL ? v : "(none)");
}

static void serve(struct evhttp_request *req, void *arg) {
  struct server *s = arg;
  int i = s->served++;
  const struct step *st = &s->steps[i < s->nsteps ? i : s->nsteps - 1];
  struct evbuffer *body;

  if (i < MAX_SEEN) {
    s->at[i] = now_ms();
    s->method[i] = (int)evhttp_request_get_command(req);
    copy_header(req, "Authorization", s->auth[i], sizeof(s->auth[i]));
    copy_header(req, "User-Agent", s->agent[i], sizeof(s->agent[i]));
    copy_header(req, "Host", s->host[i], sizeof(s->host[i]));
    copy_header(req, "Accept", s->accept[i], sizeof(s->accept[i]));
    snprintf(s->uri[i], sizeof(s->uri[i]), "%s", evhttp_request_get_uri(req));
  }
  if (s->break_base != NULL)
    event_base_loopbreak(s->break_base);
  if (st->status == 0)
    return; /* hold it: the client's timeout has to end it */
  body = evbuffer_new();
  if (st->big > 0) {
    char chunk[1024];

    memset(chunk, ' ', sizeof(chunk));
    for (size_t n = 0; n < st->big; n += sizeof(chunk))
      evbuffer_add(body, chunk,
                   st->big - n < sizeof(chunk) ? st->big - n : sizeof(chunk));
  } else if (st->body != NULL) {
    evbuffer_add(body, st->body, strlen(st->body));
  }
  evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                    "application/json");
  if (st->retry != NULL)
    evhttp_add_header(evhttp_request_get_output_headers(req), "Retry-After",
                      st->retry);
  if (st->big_header > 0) {
    char *v = malloc(st->big_header + 1);

    memset(v, 'h', st->big_header);
    v[st->big_header] = '\0';
    evhttp_add_header(evhttp_request_get_output_headers(req), "X-Big", v);
    free(v);
  }
  if (st->chunked) {
    evhttp_send_reply_start(req, st->status,
                            st->reason != NULL ? st->reason : "Scripted");
    evhttp_send_reply_chunk(req, body);
    evhttp_send_reply_end(req);
  } else {
    evhttp_send_reply(req, st->status,
                      st->reason != NULL ? st->reason : "Scripted", body);
  }
  evbuffer_free(body);
}

static struct bufferevent *server_bev(struct event_base *base, void *arg) {
  struct server *s = arg;

  return bufferevent_openssl_socket_new(base, -1, SSL_new(s->ctx),
                                        BUFFEREVENT_SSL_ACCEPTING,
                                        BEV_OPT_CLOSE_ON_FREE);
}

/* Listens on 127.0.0.1; with `cert` (a name from gen-certs.sh) over TLS. */
static void server_start(struct server *s, struct event_base *base,
                         const char *cert, const struct step *steps,
                         int nsteps) {
  struct evhttp_bound_socket *bound;
  struct sockaddr_in sin;
  socklen_t slen = sizeof(sin);
  char pem[64], key[64];

  memset(s, 0, sizeof(*s));
  s->steps = steps;
  s->nsteps = nsteps;
  s->http = evhttp_new(base);
  assert_non_null(s->http);
  if (cert != NULL) {
    snprintf(pem, sizeof(pem), "%s.pem", cert);
    snprintf(key, sizeof(key), "%s.key", cert);
    s->ctx = SSL_CTX_new(TLS_server_method());
    assert_non_null(s->ctx);
    assert_int_equal(SSL_CTX_use_certificate_chain_file(s->ctx, cert_path(pem)),
                     1);
    assert_int_equal(
        SSL_CTX_use_PrivateKey_file(s->ctx, cert_path(key), SSL_FILETYPE_PEM),
        1);
    evhttp_set_bevcb(s->http, server_bev, s);
  }
  evhttp_set_gencb(s->http, serve, s);
  bound = evhttp_bind_socket_with_handle(s->http, "127.0.0.1", 0);
  assert_non_null(bound);
  assert_int_equal(getsockname(evhttp_bound_socket_get_fd(bound),
                               (struct sockaddr *)&sin, &slen),
                   0);
  s->port = ntohs(sin.sin_port);
}

static void server_stop(struct server *s) {
  if (s->http != NULL)
    evhttp_free(s->http);
  SSL_CTX_free(s->ctx);
  s->http = NULL;
  s->ctx = NULL;
}

/* ================================================================ */
/* The client under test                                             */
/* ================================================================ */

struct fx {
  struct event_base *base;
  struct server srv;
  struct dgw_mock *mock;
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  struct dgw_client *client;
  char api[128];
  char gw_url[96];
  /* A body pointing at the mock, for scripts. */
  char good[512];
  int fatal_calls;
  int fatal_error;
  char fatal_why[300];
  int free_in_fatal;
  int break_in_fatal; /* on_client_fatal breaks the loop */
  int break_in_state; /* on_state breaks the loop */
  int states;         /* on_state calls */
  int ready;
  int resumed;
  /* IDENTIFYs the mock read, in order. */
  int id_shard[16];
  double id_at[16];
  int identifies;
  char log[1 << 16];
  size_t loglen;
  /* When each log line was written, by its offset in `log`. */
  struct {
    size_t off;
    double at;
  } lines[512];
  int nlines;
};

static void fx_log(enum dgw_log_level level, const char *msg, void *ud) {
  struct fx *f = ud;
  int n;

  test_log(level, msg, NULL);
  if (f->nlines < 512) {
    f->lines[f->nlines].off = f->loglen;
    f->lines[f->nlines++].at = now_ms();
  }
  n = snprintf(f->log + f->loglen, sizeof(f->log) - f->loglen, "[%s] %s\n",
               dgw_log_level_name(level), msg);
  if (n > 0 && (size_t)n < sizeof(f->log) - f->loglen)
    f->loglen += (size_t)n;
}

static int count_lines(struct fx *f, const char *needle) {
  int n = 0;

  for (const char *p = f->log; (p = strstr(p, needle)) != NULL; p++)
    n++;
  return n;
}

/* When the `nth` (from 0) log line holding `needle` was written; fails
 * the test when there is none. */
static double line_at(struct fx *f, const char *needle, int nth) {
  for (int i = 0; i < f->nlines; i++) {
    const char *line = f->log + f->lines[i].off;
    const char *end = strchr(line, '\n');
    const char *hit = strstr(line, needle);

    if (hit != NULL && (end == NULL || hit < end) && nth-- == 0)
      return f->lines[i].at;
  }
  fail_msg("no line %d with \"%s\" in:\n%s", nth, needle, f->log);
  return 0;
}

/* The waits the retry lines announced ("retrying in N ms"), in order. */
static int retry_waits(struct fx *f, unsigned *waits, int max) {
  int n = 0;

  for (const char *p = f->log; n < max && (p = strstr(p, "retrying in ")); p++)
    if (sscanf(p, "retrying in %u ms", &waits[n]) == 1)
      n++;
  return n;
}

static void on_client_fatal(struct dgw_client *c, int error, const char *why,
                            void *ud) {
  struct fx *f = ud;

  f->fatal_calls++;
  f->fatal_error = error;
  snprintf(f->fatal_why, sizeof(f->fatal_why), "%s", why);
  if (f->free_in_fatal) {
    dgw_client_free(c);
    f->client = NULL;
  }
  if (f->break_in_fatal)
    event_base_loopbreak(f->base);
}

static void on_state(struct dgw_gateway *gw, enum dgw_state from,
                     enum dgw_state to, void *ud) {
  struct fx *f = ud;

  (void)gw;
  (void)from;
  (void)to;
  f->states++;
  if (f->break_in_state)
    event_base_loopbreak(f->base);
}

static void on_ready(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->ready++;
}

static void on_resumed(struct dgw_gateway *gw, void *ud) {
  struct fx *f = ud;
  (void)gw;
  f->resumed++;
}

static void mock_payload(struct dgw_mock *m, struct dgw_mock_conn *conn, int op,
                         const char *json, size_t len, void *ud) {
  struct fx *f = ud;
  struct json_object *root, *d, *sh;

  (void)m;
  (void)conn;
  (void)len;
  if (op != DGW_OP_IDENTIFY || f->identifies >= 16)
    return;
  root = json_tokener_parse(json);
  if (root != NULL && json_object_object_get_ex(root, "d", &d) &&
      json_object_object_get_ex(d, "shard", &sh)) {
    f->id_shard[f->identifies] =
        json_object_get_int(json_object_array_get_idx(sh, 0));
    f->id_at[f->identifies] = now_ms();
    f->identifies++;
  }
  json_object_put(root);
}

/* A scripted API server (TLS with `cert` unless NULL), a mock gateway
 * (TLS when `mock_tls`), and options for a client of both: the token, the
 * test CA, a quick backoff, the API URL, auto shards. */
static struct fx *fx_new(const char *cert, int mock_tls,
                         const struct step *steps, int nsteps) {
  struct fx *f = calloc(1, sizeof(*f));
  struct dgw_mock_config mc;
  int err = 0;

  f->base = event_base_new();
  server_start(&f->srv, f->base, cert, steps, nsteps);
  memset(&mc, 0, sizeof(mc));
  if (mock_tls) {
    mc.cert_file = cert_path("localhost.pem");
    mc.key_file = cert_path("localhost.key");
  }
  mc.heartbeat_interval_ms = 30000;
  mc.hooks.on_payload = mock_payload;
  mc.user_data = f;
  f->mock = dgw_mock_new(f->base, &mc, &err);
  assert_non_null(f->mock);
  snprintf(f->gw_url, sizeof(f->gw_url), "%s://%s:%u", mock_tls ? "wss" : "ws",
           mock_tls ? "localhost" : "127.0.0.1",
           (unsigned)dgw_mock_port(f->mock));
  snprintf(f->good, sizeof(f->good),
           "{\"url\":\"%s\",\"shards\":1," LIMIT_1000 "}", f->gw_url);
  snprintf(f->api, sizeof(f->api), "%s://%s:%u/api/v10",
           cert != NULL ? "https" : "http",
           cert != NULL ? "localhost" : "127.0.0.1", (unsigned)f->srv.port);
  f->opt = dgw_options_new();
  assert_int_equal(dgw_options_set_token(f->opt, TOKEN), DGW_OK);
  assert_int_equal(dgw_options_set_ca_file(f->opt, cert_path("ca.pem")),
                   DGW_OK);
  assert_int_equal(dgw_options_set_reconnect(f->opt, 20, 100, 60000), DGW_OK);
  assert_int_equal(dgw_options_set_api_url(f->opt, f->api), DGW_OK);
  assert_int_equal(dgw_options_set_shards_auto(f->opt), DGW_OK);
  dgw_options_set_log(f->opt, fx_log, f, DGW_LOG_DEBUG);
  f->cb = dgw_callbacks_new();
  dgw_callbacks_set_on_client_fatal(f->cb, on_client_fatal);
  dgw_callbacks_set_on_ready(f->cb, on_ready);
  dgw_callbacks_set_on_resumed(f->cb, on_resumed);
  dgw_callbacks_set_on_state(f->cb, on_state);
  return f;
}

static void fx_client(struct fx *f) {
  int err = 0;

  f->client = dgw_client_new(f->base, f->opt, f->cb, f, &err);
  assert_non_null(f->client);
}

/* Frees everything; with `loop_pass` the loop runs a little after the
 * client's free, without it the base is freed as the loop left it. */
static void fx_dispose(struct fx *f, int loop_pass) {
  dgw_client_free(f->client);
  f->client = NULL;
  if (loop_pass)
    run_for(f->base, 30);
  /* Whatever happened, the token was never logged. */
  assert_null(strstr(f->log, TOKEN));
  server_stop(&f->srv);
  dgw_mock_free(f->mock);
  dgw_options_free(f->opt);
  dgw_callbacks_free(f->cb);
  event_base_free(f->base);
  free(f);
}

static void fx_free(struct fx *f) {
  fx_dispose(f, 1);
}

/* Runs the loop until `*counter` reaches `want` or `seconds` (scaled)
 * pass.  On a timeout the client's log so far goes to stderr (the test's
 * .log), so that a failure seen once in CI can be read afterwards. */
static int wait_count(struct fx *f, const int *counter, int want,
                      double seconds) {
  double end = deadline_ms(seconds);

  while (*counter < want && now_ms() < end)
    loop_once(f->base);
  if (*counter < want)
    fprintf(stderr,
            "# wait_count: %d of %d after %.0f s (scaled); served %d; the "
            "client's log:\n%s\n",
            *counter, want, seconds * time_scale(), f->srv.served, f->log);
  return *counter >= want;
}

/* Runs the loop until the log holds `needle` `want` times. */
static int wait_log(struct fx *f, const char *needle, int want,
                    double seconds) {
  double end = deadline_ms(seconds);

  while (count_lines(f, needle) < want && now_ms() < end)
    loop_once(f->base);
  return count_lines(f, needle) >= want;
}

/* ================================================================ */
/* Cases                                                             */
/* ================================================================ */

/* Auto shards end to end: the answer names the mock (wss://), 4 shards
 * and max_concurrency 2 with 2 session starts left; the client asks once
 * with exactly the headers Discord wants, makes and starts 4 shards only
 * then, identifies in 2 buckets, and holds the last two IDENTIFYs until
 * the budget resets. */
static void test_auto_shards(void **state) {
  static char body[512];
  struct step steps[] = {{200, body, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new("localhost", 1, steps, 1);
  struct dgw_identify_limits lim;
  char line[256];

  (void)state;
  /* The reset comes after the first two READYs even under valgrind on a
   * loaded machine (unscaled, all four shards could connect only after
   * it, and no IDENTIFY would wait). */
  const unsigned reset_ms = (unsigned)(600 * time_scale());

  snprintf(body, sizeof(body),
           "{\"url\":\"%s\",\"shards\":4,\"session_start_limit\":{"
           "\"total\":1000,\"remaining\":2,\"reset_after\":%u,"
           "\"max_concurrency\":2}}",
           f->gw_url, reset_ms);
  /* The window stays; max_concurrency 1 is replaced by the answer's. */
  assert_int_equal(dgw_options_set_identify_limits(f->opt, 1, 100), DGW_OK);
  fx_client(f);
  assert_int_equal(dgw_client_shard_count(f->client), 0);
  assert_null(dgw_client_gateway(f->client, 0));
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_int_equal(dgw_client_shard_count(f->client), 0); /* not yet */
  assert_int_equal(dgw_client_start(f->client), DGW_ERR_STATE);
  assert_true(wait_count(f, &f->ready, 4, 10));

  assert_int_equal(dgw_client_shard_count(f->client), 4);
  for (uint32_t i = 0; i < 4; i++)
    assert_int_equal(dgw_gateway_state(dgw_client_gateway(f->client, i)),
                     DGW_STATE_READY);
  assert_int_equal(f->srv.served, 1);
  assert_int_equal(f->srv.method[0], EVHTTP_REQ_GET);
  assert_string_equal(f->srv.uri[0], "/api/v10/gateway/bot");
  assert_string_equal(f->srv.auth[0], "Bot " TOKEN);
  assert_string_equal(f->srv.agent[0], USER_AGENT);
  snprintf(line, sizeof(line), "localhost:%u", (unsigned)f->srv.port);
  assert_string_equal(f->srv.host[0], line);
  assert_string_equal(f->srv.accept[0], "application/json");

  dgw_identify_local_limits(f->client->identify, &lim);
  assert_int_equal(lim.max_concurrency, 2);
  assert_int_equal(lim.window_ms, 100);
  assert_int_equal(lim.total, 1000);
  /* Two starts were left: the other two waited for the reset, which is
   * reset_ms after the answer (sent after the request arrived), as the
   * identify queue counts it: in whole milliseconds. */
  assert_int_equal(f->identifies, 4);
  assert_true(f->id_at[2] - f->srv.at[0] >= reset_ms - 1); /* whole ms */
  assert_true(f->id_at[3] - f->srv.at[0] >= reset_ms - 1);
  assert_true(count_lines(f, "budget used up") >= 1);

  snprintf(line, sizeof(line),
           "GET /gateway/bot: url %s, shards 4, max_concurrency 2, "
           "session starts 2/1000 left, reset after %u ms; running all 4",
           f->gw_url, reset_ms);
  if (count_lines(f, line) != 1)
    fail_msg("no INFO line \"%s\" in:\n%s", line, f->log);
  assert_int_equal(count_lines(f, "[warn] GET"), 0); /* no retry */
  fx_free(f);
}

struct refusal {
  int status;
  const char *body;
  int error;
  const char *why; /* contained in on_client_fatal's why */
};

static const struct refusal refusals[] = {
    {401, "{\"message\": \"401: Unauthorized\", \"code\": 0}", DGW_ERR_AUTH,
     "the token was refused (401 Unauthorized)"},
    {403, "{\"message\": \"Missing Access\", \"code\": 50001}", DGW_ERR_HTTP,
     "HTTP 403 Forbidden: Missing Access"},
    {404, "<html>no</html>", DGW_ERR_HTTP, "HTTP 404 Not Found"},
    {400, "{\"message\": \"bad " TOKEN "\"}", DGW_ERR_HTTP,
     "HTTP 400 Bad Request"},
    {301, NULL, DGW_ERR_HTTP, "HTTP 301"},
};

/* A refusal is final: on_client_fatal once with the code and a sentence,
 * no retry, no shard; the token never shows, even when the server echoes
 * it.  Explicit shards without a gateway URL stay idle; the client may be
 * freed inside the callback. */
static void test_refusals(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
    const struct refusal *rf = &refusals[i];
    struct step steps[] = {{rf->status, rf->body, NULL, 0, 0, 0, NULL}};
    struct fx *f = fx_new("localhost", 1, steps, 1);
    int explicit_shards = i == 1;

    if (explicit_shards)
      assert_int_equal(dgw_options_set_shards(f->opt, 0, 2, 2), DGW_OK);
    f->free_in_fatal = i == 2;
    fx_client(f);
    assert_int_equal(dgw_client_start(f->client), DGW_OK);
    assert_true(wait_count(f, &f->fatal_calls, 1, 5));
    run_for(f->base, 200); /* time for retries that must not come */
    assert_int_equal(f->fatal_calls, 1);
    assert_int_equal(f->fatal_error, rf->error);
    if (strstr(f->fatal_why, rf->why) == NULL)
      fail_msg("%d: why \"%s\" lacks \"%s\"", rf->status, f->fatal_why,
               rf->why);
    if (rf->status == 401)
      assert_string_equal(f->fatal_why, rf->why);
    assert_null(strstr(f->fatal_why, TOKEN));
    assert_int_equal(f->srv.served, 1);
    assert_int_equal(count_lines(f, "[error] not starting: "), 1);
    if (f->client != NULL) {
      assert_int_equal(dgw_client_shard_count(f->client),
                       explicit_shards ? 2 : 0);
      if (explicit_shards) {
        assert_int_equal(dgw_gateway_state(dgw_client_gateway(f->client, 0)),
                         DGW_STATE_IDLE);
        assert_int_equal(dgw_gateway_state(dgw_client_gateway(f->client, 1)),
                         DGW_STATE_IDLE);
      }
    }
    {
      struct dgw_mock_stats ms;

      dgw_mock_get_stats(f->mock, &ms);
      assert_int_equal(ms.connections, 0);
    }
    fx_free(f);
  }
}

/* 429 waits what the server asks, at least: the body's retry_after (0.3 s,
 * longer than the whole backoff), then the Retry-After header (1 s) of a
 * body that is not JSON; without either, the backoff. */
static void test_rate_limited(void **state) {
  static const char *limited =
      "{\"message\": \"You are being rate limited.\", \"retry_after\": 0.3, "
      "\"global\": false}";
  struct step steps[] = {{429, NULL, NULL, 0, 0, 0, NULL},
                         {429, limited, NULL, 0, 0, 0, NULL},
                         {429, "<html>slow down</html>", "1", 0, 0, 0, NULL},
                         {200, NULL, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new("localhost", 1, steps, 4);

  (void)state;
  steps[3].body = f->good;
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->ready, 1, 10));
  assert_int_equal(f->srv.served, 4);
  /* Without a wait given: the backoff. */
  assert_int_equal(
      count_lines(f, "rate limited (HTTP 429) without a retry_after; "), 1);
  /* The server's own measure: the next request came no sooner. */
  assert_true(f->srv.at[2] - f->srv.at[1] >= 300);
  assert_true(f->srv.at[3] - f->srv.at[2] >= 1000);
  assert_int_equal(count_lines(f, "rate limited (HTTP 429) for 300 ms; "), 1);
  assert_int_equal(count_lines(f, "rate limited (HTTP 429) for 1000 ms; "), 1);
  assert_int_equal(f->fatal_calls, 0);
  fx_free(f);
}

/* 5xx are retried with the backoff, each retry logged with the status
 * (and Discord's message when the body has one). */
static void test_server_errors(void **state) {
  struct step steps[] = {
      {500, NULL, NULL, 0, 0, 0, NULL},
      {503, "{\"message\":\"upstream\"}", NULL, 0, 0, 0, NULL},
      {502, "{}", NULL, 0, 0, 0, NULL},
      {200, NULL, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new("localhost", 1, steps, 4);

  (void)state;
  steps[3].body = f->good;
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->ready, 1, 10));
  assert_int_equal(f->srv.served, 4);
  assert_int_equal(count_lines(f, "HTTP 500 Internal Server Error; retrying"),
                   1);
  assert_int_equal(
      count_lines(f, "HTTP 503 Service Unavailable: upstream; retrying"), 1);
  assert_int_equal(count_lines(f, "HTTP 502 Bad Gateway; retrying"), 1);
  /* The backoff (base 20 ms) doubles per failure, half of it random;
   * each next request came no sooner than its announced wait. */
  {
    unsigned waits[8];

    assert_int_equal(retry_waits(f, waits, 8), 3);
    for (int i = 0; i < 3; i++) {
      assert_in_range(waits[i], 10u << i, 20u << i);
      assert_true(f->srv.at[i + 1] - f->srv.at[i] >= waits[i]);
    }
  }
  assert_int_equal(dgw_client_shard_count(f->client), 1);
  fx_free(f);
}

/* 1 when `text` holds any 8-byte run of TOKEN. */
static int has_token_slice(const char *text) {
  static const char token[] = TOKEN;

  for (size_t i = 0; i + 8 <= sizeof(token) - 1; i++)
    if (memmem(text, strlen(text), token + i, 8) != NULL)
      return 1;
  return 0;
}

/* A server that echoes the token, whole or cut short, in its reason
 * phrase, its error message or the gateway URL it hands out: no log line
 * and no fatal reason carries any part of it.  (The review found the
 * reason phrase of an unknown status, and a token cut by one byte in the
 * message, in the log.) */
static void test_token_never_logged(void **state) {
  static const char echo_reason[] = "Echo " TOKEN;
  static const char cut_message[] =
      "{\"message\":\"bad token MTIz.rest-test.token_\"}";
  static const char url_with_token[] =
      "{\"url\":\"wss://rest-test.token.example\",\"shards\":1," LIMIT_1000 "}";
  struct step steps[] = {
      {599, cut_message, NULL, 0, 0, 0, echo_reason},
      {200, url_with_token, NULL, 0, 0, 0, NULL},
      {418, cut_message, NULL, 0, 0, 0, echo_reason},
  };
  struct fx *f = fx_new("localhost", 1, steps, 3);

  (void)state;
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->fatal_calls, 1, 10));
  assert_int_equal(f->srv.served, 3);
  /* Each answer was understood: retried, refused as malformed, fatal. */
  assert_int_equal(count_lines(f, "HTTP 599; retrying"), 1);
  assert_int_equal(
      count_lines(f, "malformed answer (HTTP 200): the url repeats part"), 1);
  assert_int_equal(f->fatal_error, DGW_ERR_HTTP);
  assert_non_null(strstr(f->fatal_why, "HTTP 418"));
  if (has_token_slice(f->log))
    fail_msg("the log holds part of the token:\n%s", f->log);
  assert_false(has_token_slice(f->fatal_why));
  fx_free(f);
}

/* `text` holds a 12-character run of the token, compared on letters
 * (case-folded) and digits only. */
static int has_folded_token_slice(const char *text) {
  static const char folded[] = "mtizresttesttoken9"; /* TOKEN, folded */
  char *t = malloc(strlen(text) + 1);
  size_t n = 0;
  int found = 0;

  assert_non_null(t);
  for (; *text != '\0'; text++)
    if (isalnum((unsigned char)*text))
      t[n++] = (char)tolower((unsigned char)*text);
  t[n] = '\0';
  for (size_t i = 0; i + 12 <= sizeof(folded) - 1 && !found; i++)
    found = memmem(t, n, folded + i, 12) != NULL;
  free(t);
  return found;
}

/* Issue 15: the filter was an exact, case-sensitive substring test.
 * Inputs: error messages echoing the token lower-cased, with '.' turned
 * into '-', and with every separator changed (and cut short at the end).
 * Before the fix each was logged ("HTTP 599: bad token mtiz.rest-...").
 * A message with nothing of the token is still logged. */
static void test_token_echo_altered(void **state) {
  static const char lower[] =
      "{\"message\":\"bad token mtiz.rest-test.token_9\"}";
  static const char dashed[] =
      "{\"message\":\"bad token MTIz-rest-test-token_9\"}";
  static const char mixed[] =
      "{\"message\":\"bad token mTiZ rest/TEST:token\"}";
  static const char plain[] = "{\"message\":\"I'm a teapot, friend\"}";
  struct step steps[] = {
      {599, lower, NULL, 0, 0, 0, NULL},
      {599, dashed, NULL, 0, 0, 0, NULL},
      {599, mixed, NULL, 0, 0, 0, NULL},
      {418, plain, NULL, 0, 0, 0, NULL},
  };
  struct fx *f = fx_new("localhost", 1, steps, 4);

  (void)state;
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->fatal_calls, 1, 20));
  assert_int_equal(f->srv.served, 4);
  /* Understood, and the message withheld: no ": bad token ...". */
  assert_int_equal(count_lines(f, "HTTP 599; retrying"), 3);
  assert_int_equal(count_lines(f, "bad token"), 0);
  if (has_folded_token_slice(f->log))
    fail_msg("the log holds part of the token:\n%s", f->log);
  assert_non_null(strstr(f->fatal_why, "HTTP 418"));
  assert_non_null(strstr(f->fatal_why, "I'm a teapot, friend"));
  fx_free(f);
}

/* Sends `req` (`len` bytes; the last `flood` bytes of header lines are
 * repeated until `flood_total` bytes went) to the mock on loopback and
 * returns what it answered until it closed (or 5 s, scaled); *closed
 * says whether the mock closed the connection. */
static char *mock_http(struct event_base *base, uint16_t port, const char *req,
                       size_t flood_total, int *closed) {
  struct sockaddr_in sin;
  char *out = calloc(1, 65536);
  size_t got = 0, sent = 0;
  double until = deadline_ms(5);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  static const char line[] = "X-Filler: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n";

  assert_true(fd >= 0 && out != NULL);
  memset(&sin, 0, sizeof(sin));
  sin.sin_family = AF_INET;
  sin.sin_port = htons(port);
  sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  assert_int_equal(connect(fd, (struct sockaddr *)&sin, sizeof(sin)), 0);
  evutil_make_socket_nonblocking(fd);
  assert_int_equal(send(fd, req, strlen(req), 0), (ssize_t)strlen(req));
  while (now_ms() < until) {
    ssize_t n;

    if (sent < flood_total &&
        send(fd, line, sizeof(line) - 1, MSG_NOSIGNAL) > 0)
      sent += sizeof(line) - 1;
    loop_once(base);
    n = recv(fd, out + got, 65535 - got, MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
      *closed = 1; /* closed (or reset while we still sent) */
      break;
    }
    if (n > 0)
      got += (size_t)n;
  }
  close(fd);
  return out;
}

/* The mock serves GET /gateway/bot (what "auto" shards against `dgw mock`
 * rely on): its own URL, the shard count and max_concurrency it was given,
 * 401 without the right token; and a request whose header block never
 * ends is refused, not buffered without bound (found in review). */
static void test_mock_serves_gateway_bot(void **state) {
  struct event_base *base = event_base_new();
  struct dgw_mock_config mc;
  struct dgw_mock *mock;
  struct dgw_mock_stats ms;
  char req[256], url[64];
  char *answer;
  int err = 0, closed = 0;

  (void)state;
  memset(&mc, 0, sizeof(mc));
  mc.token = "right";
  mc.rest_shards = 5;
  mc.rest_max_concurrency = 2;
  mc.log = test_log;
  mock = dgw_mock_new(base, &mc, &err);
  assert_non_null(mock);
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u",
           (unsigned)dgw_mock_port(mock));

  snprintf(req, sizeof(req),
           "GET /api/v10/gateway/bot HTTP/1.1\r\nHost: x\r\n"
           "Authorization: Bot right\r\n\r\n");
  answer = mock_http(base, dgw_mock_port(mock), req, 0, &closed);
  assert_true(closed); /* Connection: close */
  assert_non_null(strstr(answer, "HTTP/1.1 200 OK\r\n"));
  assert_non_null(strstr(answer, url));
  assert_non_null(strstr(answer, "\"shards\":5"));
  assert_non_null(strstr(answer, "\"max_concurrency\":2"));
  assert_non_null(strstr(answer, "\"remaining\":1000"));
  free(answer);

  snprintf(req, sizeof(req),
           "GET /api/v10/gateway/bot HTTP/1.1\r\nAuthorization: Bot wrong"
           "\r\n\r\n");
  answer = mock_http(base, dgw_mock_port(mock), req, 0, &closed);
  assert_non_null(strstr(answer, "HTTP/1.1 401 Unauthorized\r\n"));
  free(answer);
  closed = 0;

  /* 64 KiB of header lines: refused once past the header cap. */
  answer =
      mock_http(base, dgw_mock_port(mock),
                "GET /api/v10/gateway/bot HTTP/1.1\r\n", 64 * 1024, &closed);
  assert_true(closed);
  if (strstr(answer, "400 Bad Request") == NULL)
    assert_true(answer[0] == '\0'); /* reset before we could read it */
  free(answer);
  dgw_mock_get_stats(mock, &ms);
  assert_int_equal(ms.rest_requests, 2);
  dgw_mock_free(mock);
  event_base_free(base);
}

/* The mock's injected 429 (dgw_mock_inject_429) is one Discord would
 * send: the client waits its retry_after and asks again, and the mock
 * counted it without performing the request. */
static void test_mock_injected_429(void **state) {
  struct fx *f = fx_new(NULL, 0, NULL, 0);
  struct dgw_mock_stats ms;
  char api[96];

  (void)state;
  assert_int_equal(dgw_mock_inject_429(NULL, 1, 1.0, 0, NULL),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_mock_inject_429(f->mock, 1, -1.0, 0, NULL),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      dgw_mock_inject_429(f->mock, 1, 0.3, 0, "/api/v10/gateway/bot"), DGW_OK);
  snprintf(api, sizeof(api), "http://127.0.0.1:%u/api/v10",
           (unsigned)dgw_mock_port(f->mock));
  assert_int_equal(dgw_options_set_api_url(f->opt, api), DGW_OK);
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->ready, 1, 10));
  assert_int_equal(count_lines(f, "rate limited (HTTP 429) for 300 ms; "), 1);
  dgw_mock_get_stats(f->mock, &ms);
  assert_int_equal(ms.rest_requests, 2);
  assert_int_equal(ms.rest_rate_limited, 1);
  assert_int_equal(f->fatal_calls, 0);
  fx_free(f);
}

/* cfg.rest_rate_limits: five messages to a channel, the headers counting
 * down, then a 429 with the real wait; without it, never. */
static void test_mock_enforced_limits(void **state) {
  static const char post[] =
      "POST /api/v10/channels/1200000000000000011/messages HTTP/1.1\r\n"
      "Authorization: Bot right\r\nContent-Type: application/json\r\n"
      "Content-Length: 15\r\n\r\n{\"content\":\"x\"}";
  struct event_base *base = event_base_new();
  struct dgw_mock_config mc;
  struct dgw_mock *mock;
  struct dgw_mock_stats ms;
  int err = 0, closed = 0, i, enforced;

  (void)state;
  for (enforced = 0; enforced <= 1; enforced++) {
    memset(&mc, 0, sizeof(mc));
    mc.token = "right";
    mc.rest_rate_limits = enforced;
    mc.log = test_log;
    mock = dgw_mock_new(base, &mc, &err);
    assert_non_null(mock);
    for (i = 0; i < 6; i++) {
      char *answer = mock_http(base, dgw_mock_port(mock), post, 0, &closed);
      char want[40];

      if (i < 5 || !enforced) {
        assert_non_null(strstr(answer, "HTTP/1.1 200 OK\r\n"));
        snprintf(want, sizeof(want), "X-RateLimit-Remaining: %d\r\n",
                 enforced ? 4 - i : 49);
        assert_non_null(strstr(answer, want));
      } else {
        assert_non_null(strstr(answer, "HTTP/1.1 429 Too Many Requests\r\n"));
        assert_non_null(strstr(answer, "X-RateLimit-Scope: user\r\n"));
        assert_non_null(strstr(answer, "\"global\":false"));
        assert_null(strstr(answer, "Retry-After: 0\r\n"));
      }
      free(answer);
    }
    dgw_mock_get_stats(mock, &ms);
    assert_int_equal(ms.rest_rate_limited, enforced ? 1 : 0);
    dgw_mock_free(mock);
  }
  event_base_free(base);
}

/* A 200 whose body is not a valid answer is retried, and the log says
 * what was wrong with it. */
static void test_malformed_answers(void **state) {
  struct step steps[] = {{200, "{\"url\":", NULL, 0, 0, 0, NULL},
                         {200,
                          "{\"url\":\"wss://g\",\"shards\":0," LIMIT_1000 "}",
                          NULL, 0, 0, 0, NULL},
                         {200, "", NULL, 0, 0, 0, NULL},
                         {200, NULL, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new("localhost", 1, steps, 4);

  (void)state;
  steps[3].body = f->good;
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->ready, 1, 10));
  assert_int_equal(f->srv.served, 4);
  assert_int_equal(count_lines(f, "[warn] GET "), 3);
  assert_int_equal(count_lines(f, "malformed answer (HTTP 200): not JSON"), 1);
  assert_int_equal(
      count_lines(f, "malformed answer (HTTP 200): \"shards\" is 0"), 1);
  assert_int_equal(
      count_lines(f, "malformed answer (HTTP 200): the body is empty"), 1);
  assert_int_equal(f->fatal_calls, 0);
  fx_free(f);
}

/* A certificate for another name: every attempt fails verification, is
 * logged as a TLS error and retried; nothing reaches the server's HTTP
 * layer, nothing crashes, nothing is fatal. */
static void test_tls_name_mismatch(void **state) {
  struct step steps[] = {{200, NULL, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new("wrongname", 1, steps, 1);

  (void)state;
  steps[0].body = f->good;
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(
      wait_log(f, "TLS certificate verify failed: hostname mismatch", 3, 10));
  assert_true(count_lines(f, "; retrying in ") >= 3);
  assert_int_equal(f->srv.served, 0);
  assert_int_equal(f->fatal_calls, 0);
  assert_int_equal(f->ready, 0);
  assert_int_equal(dgw_client_shard_count(f->client), 0);
  fx_free(f);
}

/* A server that reads the request and never answers: the attempt times
 * out after the configured connect timeout and the next one succeeds. */
static void test_timeout(void **state) {
  struct step steps[] = {{0, NULL, NULL, 0, 0, 0, NULL},
                         {200, NULL, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new("localhost", 1, steps, 2);
  uint32_t timeout = (uint32_t)(300 * time_scale());
  char line[64];

  (void)state;
  steps[1].body = f->good;
  assert_int_equal(dgw_options_set_timeouts(f->opt, timeout, 1000), DGW_OK);
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->ready, 1, 10));
  assert_int_equal(f->srv.served, 2);
  snprintf(line, sizeof(line), "no answer within %u ms", (unsigned)timeout);
  assert_int_equal(count_lines(f, line), 1);
  /* From the start of the first attempt to giving it up. */
  assert_true(line_at(f, line, 0) - line_at(f, ": attempt 1, ", 0) >= timeout);
  fx_free(f);
}

/* A body over 64 KiB is refused (with a Content-Length, or chunked), and
 * so are headers over 16 KiB; the call is retried. */
static void test_oversized_answer(void **state) {
  struct step steps[] = {{200, NULL, NULL, 70000, 0, 0, NULL},
                         {200, NULL, NULL, 70000, 1, 0, NULL},
                         {200, NULL, NULL, 0, 0, 20000, NULL},
                         {200, NULL, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new("localhost", 1, steps, 4);

  (void)state;
  steps[2].body = f->good;
  steps[3].body = f->good;
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->ready, 1, 10));
  assert_int_equal(f->srv.served, 4);
  assert_int_equal(
      count_lines(f, "the answer's body is over 65536 bytes; refused"), 2);
  assert_int_equal(count_lines(f, "sent a malformed HTTP response, or headers "
                                  "over 16384 bytes"),
                   1);
  fx_free(f);
}

/* Free or stop while the call is in flight, waiting for a retry, or not
 * yet begun: no callback after, no leak (ASan, valgrind), nothing
 * started. */
static void test_stop_and_free_in_flight(void **state) {
  (void)state;
  for (int how = 0; how < 5; how++) {
    struct step hang[] = {{0, NULL, NULL, 0, 0, 0, NULL}};
    struct step fail[] = {{500, NULL, NULL, 0, 0, 0, NULL}};
    struct fx *f = fx_new("localhost", 1, how == 2 ? fail : hang, 1);

    if (how == 2) /* a long wait after the first failure */
      assert_int_equal(dgw_options_set_reconnect(f->opt, 5000, 5000, 60000),
                       DGW_OK);
    fx_client(f);
    assert_int_equal(dgw_client_start(f->client), DGW_OK);
    if (how == 0 || how == 1)
      assert_true(wait_count(f, &f->srv.served, 1, 5)); /* in flight */
    if (how == 2)
      assert_true(wait_log(f, "retrying in", 1, 5));
    if (how == 1 || how == 3) {
      dgw_client_stop(f->client); /* stop: nothing more happens */
      run_for(f->base, 100);
      assert_int_equal(dgw_client_shard_count(f->client), 0);
      assert_int_equal(count_lines(f, "GET /gateway/bot cancelled"), 1);
    }
    dgw_client_free(f->client); /* free: nothing more either */
    f->client = NULL;
    run_for(f->base, 100);
    assert_int_equal(f->fatal_calls, 0);
    assert_int_equal(f->ready, 0);
    assert_true(f->srv.served <= 1);
    fx_free(f);
  }
}

/* Sessions saved by one process resume in the next even with auto shards:
 * dgw_client_restore_sessions() before start keeps them until GET
 * /gateway/bot made the shards.  A file for another shard count is
 * skipped then, with a warning. */
static void test_restore_with_auto_shards(void **state) {
  static char body[512];
  struct step steps[] = {{200, body, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new("localhost", 1, steps, 1);
  char path[] = "/tmp/dgw-test-rest-XXXXXX";
  char why[256] = "";
  uint32_t restored = 99;
  struct dgw_mock_stats ms;
  int fd = mkstemp(path);

  (void)state;
  assert_true(fd >= 0);
  close(fd);
  /* First process: two explicit shards on the configured URL (no REST). */
  assert_int_equal(dgw_options_set_identify_limits(f->opt, 1, 50), DGW_OK);
  assert_int_equal(dgw_options_set_shards(f->opt, 0, 2, 2), DGW_OK);
  assert_int_equal(dgw_options_set_gateway_url(f->opt, f->gw_url), DGW_OK);
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->ready, 2, 10));
  assert_int_equal(f->srv.served, 0); /* configured: REST skipped */
  assert_int_equal(dgw_client_stop_for_restart(f->client), DGW_OK);
  run_for(f->base, 100);
  assert_int_equal(dgw_client_save_sessions(f->client, path, why, sizeof(why)),
                   DGW_OK);
  dgw_client_free(f->client);

  /* Next process: auto shards; GET /gateway/bot says 2. */
  snprintf(body, sizeof(body), "{\"url\":\"%s\",\"shards\":2," LIMIT_1000 "}",
           f->gw_url);
  assert_int_equal(dgw_options_set_gateway_url(f->opt, NULL), DGW_OK);
  assert_int_equal(dgw_options_set_shards_auto(f->opt), DGW_OK);
  fx_client(f);
  assert_int_equal(
      dgw_client_restore_sessions(f->client, path, &restored, why, sizeof(why)),
      DGW_OK);
  assert_int_equal(restored, 2);
  assert_int_equal(dgw_client_shard_count(f->client), 0);
  /* Stopped and saved again before GET /gateway/bot answered: the
   * sessions go back to the file untouched. */
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_int_equal(dgw_client_stop_for_restart(f->client), DGW_OK);
  assert_int_equal(dgw_client_save_sessions(f->client, path, why, sizeof(why)),
                   DGW_OK);
  dgw_client_free(f->client);
  assert_int_equal(f->srv.served, 0);
  fx_client(f);
  assert_int_equal(
      dgw_client_restore_sessions(f->client, path, &restored, why, sizeof(why)),
      DGW_OK);
  assert_int_equal(restored, 2);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->resumed, 2, 10));
  dgw_mock_get_stats(f->mock, &ms);
  assert_int_equal(ms.identifies, 2); /* the first process's only */
  assert_int_equal(ms.resumes_ok, 2);
  assert_int_equal(count_lines(f, "2 saved session(s) will resume"), 1);
  assert_int_equal(dgw_client_stop_for_restart(f->client), DGW_OK);
  run_for(f->base, 100);
  assert_int_equal(dgw_client_save_sessions(f->client, path, why, sizeof(why)),
                   DGW_OK);
  dgw_client_free(f->client);

  /* Discord now recommends 3: the saved sessions are of no use. */
  snprintf(body, sizeof(body), "{\"url\":\"%s\",\"shards\":3," LIMIT_1000 "}",
           f->gw_url);
  f->ready = 0;
  fx_client(f);
  assert_int_equal(
      dgw_client_restore_sessions(f->client, path, &restored, why, sizeof(why)),
      DGW_OK);
  assert_int_equal(restored, 2);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->ready, 3, 10));
  assert_int_equal(count_lines(f, "saved for another shard count"), 1);
  dgw_mock_get_stats(f->mock, &ms);
  assert_int_equal(ms.identifies, 5);
  /* Not a session file: refused before anything is kept. */
  dgw_client_free(f->client);
  fx_client(f);
  assert_int_equal(dgw_client_restore_sessions(f->client, cert_path("ca.pem"),
                                               &restored, why, sizeof(why)),
                   DGW_ERR_JSON);
  assert_null(f->client->pending_sessions);
  unlink(path);
  fx_free(f);
}

/* Explicit shards without a gateway URL: the shards exist from the start,
 * GET /gateway/bot (plain http:// here, so its ws:// URL is accepted)
 * gives the URL and the limits, and the configured shard layout stays
 * although Discord recommends another. */
static void test_url_from_rest(void **state) {
  static char body[512];
  struct step steps[] = {{200, body, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new(NULL, 0, steps, 1);

  (void)state;
  snprintf(body, sizeof(body),
           "{\"url\":\"%s\",\"shards\":4,\"session_start_limit\":{"
           "\"total\":1000,\"remaining\":900,\"reset_after\":5,"
           "\"max_concurrency\":2}}",
           f->gw_url);
  assert_int_equal(dgw_options_set_shards(f->opt, 0, 2, 2), DGW_OK);
  fx_client(f);
  assert_int_equal(dgw_client_shard_count(f->client), 2);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->ready, 2, 10));
  assert_int_equal(f->srv.served, 1);
  assert_string_equal(f->client->opt.gateway_url, f->gw_url);
  assert_int_equal(count_lines(f, "running shards 0..1 of 2 as configured"), 1);
  assert_int_equal(count_lines(f, "is not https://: the token travels in "
                                  "clear"),
                   1);
  fx_free(f);
}

/* A configured gateway URL with explicit shards makes no REST call. */
static void test_configured_skips_rest(void **state) {
  struct step steps[] = {{500, NULL, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new("localhost", 1, steps, 1);

  (void)state;
  assert_int_equal(dgw_options_set_shards(f->opt, 0, 1, 1), DGW_OK);
  assert_int_equal(dgw_options_set_gateway_url(f->opt, f->gw_url), DGW_OK);
  fx_client(f);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_count(f, &f->ready, 1, 10));
  run_for(f->base, 50);
  assert_int_equal(f->srv.served, 0);
  assert_int_equal(count_lines(f, "gateway/bot"), 0);
  fx_free(f);
}

/* Issue 15: a session file listing a shard more than once counts that
 * shard once, and its last well-formed entry wins.  Input: 5 entries for
 * shard 0 (the last one "s0e"), for shard 1 a good entry then a malformed
 * one (negative seq), and shard 7, which this client does not run.  Before
 * the fix `restored` was 7 (every entry; 5 for shard 0 alone), both now
 * and when applied after GET /gateway/bot. */
static void test_restore_duplicate_entries(void **state) {
  static char body[512];
  struct step steps[] = {{200, body, NULL, 0, 0, 0, NULL}};
  struct fx *f = fx_new("localhost", 1, steps, 1);
  char path[] = "/tmp/dgw-test-dups-XXXXXX";
  char why[256] = "";
  uint32_t restored = 99;
  int fd = mkstemp(path);
  FILE *fp;

  (void)state;
  assert_true(fd >= 0);
  fp = fdopen(fd, "w");
  assert_non_null(fp);
  fputs("{\"version\":1,\"shard_total\":2,\"shards\":["
        "{\"shard\":0,\"session_id\":\"s0a\",\"seq\":1},"
        "{\"shard\":0,\"session_id\":\"s0b\",\"seq\":2},"
        "{\"shard\":1,\"session_id\":\"s1a\",\"seq\":5},"
        "{\"shard\":0,\"session_id\":\"s0c\",\"seq\":3},"
        "{\"shard\":0,\"session_id\":\"s0d\",\"seq\":4},"
        "{\"shard\":7,\"session_id\":\"s7\",\"seq\":4},"
        "{\"shard\":1,\"session_id\":\"s1b\",\"seq\":-3},"
        "{\"shard\":0,\"session_id\":\"s0e\",\"seq\":9}]}\n",
        fp);
  assert_int_equal(fclose(fp), 0);

  /* Applied at once: explicit shards on a configured URL. */
  assert_int_equal(dgw_options_set_shards(f->opt, 0, 2, 2), DGW_OK);
  assert_int_equal(dgw_options_set_gateway_url(f->opt, f->gw_url), DGW_OK);
  fx_client(f);
  assert_int_equal(
      dgw_client_restore_sessions(f->client, path, &restored, why, sizeof(why)),
      DGW_OK);
  assert_int_equal(restored, 2);
  assert_string_equal(dgw_gateway_session_id(dgw_client_gateway(f->client, 0)),
                      "s0e");
  assert_int_equal(dgw_gateway_sequence(dgw_client_gateway(f->client, 0)), 9);
  assert_string_equal(dgw_gateway_session_id(dgw_client_gateway(f->client, 1)),
                      "s1a");
  assert_int_equal(count_lines(f, "shard 1's saved session is malformed"), 1);
  dgw_client_free(f->client);

  /* Kept until GET /gateway/bot answers: the count is of shards too (the
   * malformed entry of shard 1 is not known to be one yet: it is shard
   * 1's last, counted once; shard 7 may exist then). */
  snprintf(body, sizeof(body), "{\"url\":\"%s\",\"shards\":2," LIMIT_1000 "}",
           f->gw_url);
  assert_int_equal(dgw_options_set_gateway_url(f->opt, NULL), DGW_OK);
  assert_int_equal(dgw_options_set_shards_auto(f->opt), DGW_OK);
  fx_client(f);
  assert_int_equal(
      dgw_client_restore_sessions(f->client, path, &restored, why, sizeof(why)),
      DGW_OK);
  assert_int_equal(restored, 3);
  assert_int_equal(dgw_client_start(f->client), DGW_OK);
  assert_true(wait_log(f, "saved session(s) will resume", 1, 10));
  assert_int_equal(count_lines(f, "2 saved session(s) will resume"), 1);
  unlink(path);
  fx_free(f);
}

/* The new options and error codes. */
static void test_options(void **state) {
  struct dgw_options *o = dgw_options_new();
  struct event_base *base = event_base_new();
  struct dgw_client *c;
  int err = 0;

  (void)state;
  assert_null(o->gateway_url); /* default: ask GET /gateway/bot */
  assert_null(o->api_url);     /* default: DGW_DEFAULT_API_URL */
  assert_int_equal(dgw_options_set_api_url(o, "wss://discord.com/api"),
                   DGW_ERR_URL);
  assert_int_equal(dgw_options_set_api_url(o, "https://d/api?x=1"),
                   DGW_ERR_URL);
  assert_int_equal(dgw_options_set_api_url(o, "ftp://d"), DGW_ERR_URL);
  assert_int_equal(dgw_options_set_api_url(o, "https://u@d/"), DGW_ERR_URL);
  assert_int_equal(dgw_options_set_api_url(NULL, "https://d"),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_api_url(o, "http://127.0.0.1:1/x/"), DGW_OK);
  assert_string_equal(o->api_url, "http://127.0.0.1:1/x/");
  assert_int_equal(dgw_options_set_api_url(o, NULL), DGW_OK);
  assert_null(o->api_url);
  assert_int_equal(dgw_options_set_shards_auto(NULL), DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_options_set_shards_auto(o), DGW_OK);
  assert_int_equal(o->shards_auto, 1);
  assert_int_equal(dgw_options_set_shards(o, 0, 2, 2), DGW_OK);
  assert_int_equal(o->shards_auto, 0);
  assert_int_equal(dgw_options_set_gateway_url(o, "wss://g"), DGW_OK);
  assert_int_equal(dgw_options_set_gateway_url(o, NULL), DGW_OK);
  assert_null(o->gateway_url);
  dgw_callbacks_set_on_client_fatal(NULL, on_client_fatal); /* no crash */
  assert_string_equal(dgw_strerror(DGW_ERR_AUTH),
                      "the bot token was refused (401 Unauthorized)");
  assert_string_not_equal(dgw_strerror(DGW_ERR_HTTP), "unknown error");

  /* The default API is asked at start (DNS and all, in the background):
   * start succeeds, free cancels it before anything leaves. */
  assert_int_equal(dgw_options_set_token(o, TOKEN), DGW_OK);
  assert_int_equal(dgw_options_set_shards_auto(o), DGW_OK);
  c = dgw_client_new(base, o, NULL, NULL, &err);
  assert_non_null(c);
  assert_int_equal(dgw_client_start(c), DGW_OK);
  assert_non_null(c->rest);
  dgw_client_free(c);
  dgw_options_free(o);
  event_base_free(base);
}

/* An application that breaks its loop inside a callback, then frees the
 * client and the base with no further pass (examples/bot.c's pattern with
 * event_base_loopbreak() instead of event_base_loopexit()): nothing may
 * be left for a loop pass to free.  Inputs, each over TLS: a 401, the
 * break in on_client_fatal; the same with dgw_client_free() inside it; a
 * 200 with the break in the first shard's on_state (called inside the
 * answer's callback, the gateway's wss:// connect just started); a request
 * the server holds, the break from the server's handler.  The error this
 * catches is valgrind's (make check-valgrind): without the synchronous
 * release, the finished evhttp connection of lib/rest.c
 * (evhttp_connection_base_bufferevent_new in open_connection), with its
 * bufferevent and SSL, is definitely lost in the first three. */
static void test_loopbreak_then_free(void **state) {
  (void)state;
  for (int how = 0; how < 4; how++) {
    struct step refuse[] = {
        {401, "{\"message\": \"401: Unauthorized\", \"code\": 0}", NULL, 0, 0,
         0, NULL}};
    struct step answer[] = {{200, NULL, NULL, 0, 0, 0, NULL}};
    struct step hang[] = {{0, NULL, NULL, 0, 0, 0, NULL}};
    struct fx *f = fx_new("localhost", 1,
                          how < 2    ? refuse
                          : how == 2 ? answer
                                     : hang,
                          1);

    answer[0].body = f->good;
    f->break_in_fatal = how < 2;
    f->free_in_fatal = how == 1;
    f->break_in_state = how == 2;
    if (how == 3)
      f->srv.break_base = f->base;
    fx_client(f);
    assert_int_equal(dgw_client_start(f->client), DGW_OK);
    if (how < 2)
      assert_true(wait_count(f, &f->fatal_calls, 1, 5));
    else if (how == 2)
      assert_true(wait_count(f, &f->states, 1, 5));
    else
      assert_true(wait_count(f, &f->srv.served, 1, 5));
    assert_int_equal(f->srv.served, 1);
    fx_dispose(f, 0); /* no pass: the loop was broken */
  }
}

/* Breaks the loop when a silent server gets a connection (kept open,
 * never answered) or a DNS query (never answered). */
struct silent {
  struct event_base *base;
  evutil_socket_t held[4];
  int nheld, queries;
};

static void silent_accept(struct evconnlistener *l, evutil_socket_t fd,
                          struct sockaddr *sa, int len, void *arg) {
  struct silent *s = arg;

  (void)l;
  (void)sa;
  (void)len;
  if (s->nheld < 4)
    s->held[s->nheld++] = fd;
  else
    evutil_closesocket(fd);
  event_base_loopbreak(s->base);
}

static void silent_query(evutil_socket_t fd, short what, void *arg) {
  struct silent *s = arg;
  char buf[512];

  (void)what;
  while (recv(fd, buf, sizeof(buf), 0) > 0)
    s->queries++;
  event_base_loopbreak(s->base);
}

/* The same pattern on the gateway's connector, configured URL (no REST):
 * the loop is broken by the test's own server callback while the shard's
 * connection is half made, then everything is freed.  Inputs: a wss:// URL
 * whose server accepts TCP and never answers the TLS ClientHello (the
 * break on accept: the TLS handshake pending), freed with no loop pass; a
 * host name looked up on the application's evdns_base whose only
 * nameserver never answers (the break on the query: the lookup pending),
 * freed after the one loop pass the contract asks for when a lookup is in
 * flight.  Under make check-valgrind neither may leave anything definitely
 * lost; without that one pass, the lookup case loses 1,232 bytes (the
 * dgw_lookup of lib/connector.c, evdns's request and its cancel report). */
static void test_loopbreak_while_connecting(void **state) {
  (void)state;
  for (int how = 0; how < 2; how++) {
    struct step steps[] = {{500, NULL, NULL, 0, 0, 0, NULL}};
    struct fx *f = fx_new("localhost", 1, steps, 1);
    struct silent s;
    struct evconnlistener *listener = NULL;
    struct evdns_base *dns = NULL;
    struct event *udp_ev = NULL;
    evutil_socket_t udp = -1;
    struct sockaddr_in sin;
    socklen_t slen = sizeof(sin);
    char url[128], ns[64];

    memset(&s, 0, sizeof(s));
    s.base = f->base;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (how == 0) {
      listener = evconnlistener_new_bind(
          f->base, silent_accept, &s, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
          -1, (struct sockaddr *)&sin, sizeof(sin));
      assert_non_null(listener);
      assert_int_equal(getsockname(evconnlistener_get_fd(listener),
                                   (struct sockaddr *)&sin, &slen),
                       0);
      snprintf(url, sizeof(url), "wss://localhost:%u",
               (unsigned)ntohs(sin.sin_port));
    } else {
      udp = socket(AF_INET, SOCK_DGRAM, 0);
      assert_true(udp >= 0);
      assert_int_equal(bind(udp, (struct sockaddr *)&sin, sizeof(sin)), 0);
      assert_int_equal(getsockname(udp, (struct sockaddr *)&sin, &slen), 0);
      evutil_make_socket_nonblocking(udp);
      udp_ev = event_new(f->base, udp, EV_READ | EV_PERSIST, silent_query, &s);
      event_add(udp_ev, NULL);
      dns = evdns_base_new(f->base, 0);
      assert_non_null(dns);
      snprintf(ns, sizeof(ns), "127.0.0.1:%u", (unsigned)ntohs(sin.sin_port));
      assert_int_equal(evdns_base_nameserver_ip_add(dns, ns), 0);
      assert_int_equal(dgw_options_set_dns_base(f->opt, dns), DGW_OK);
      snprintf(url, sizeof(url), "wss://gateway.dgw-test.invalid:443");
    }
    assert_int_equal(dgw_options_set_shards(f->opt, 0, 1, 1), DGW_OK);
    assert_int_equal(dgw_options_set_gateway_url(f->opt, url), DGW_OK);
    fx_client(f);
    assert_int_equal(dgw_client_start(f->client), DGW_OK);
    if (how == 0)
      assert_true(wait_count(f, &s.nheld, 1, 5));
    else
      assert_true(wait_count(f, &s.queries, 1, 5));
    dgw_client_free(f->client);
    f->client = NULL;
    /* A cancelled lookup reports back from the loop (libevent's evdns
     * allocates that report in evdns_cancel_request): one pass, the most
     * the contract asks for (dgw.h, "Living in the application's event
     * loop").  The TLS case gets none. */
    if (how == 1)
      event_base_loop(f->base, EVLOOP_NONBLOCK);
    if (listener != NULL)
      evconnlistener_free(listener);
    for (int i = 0; i < s.nheld; i++)
      evutil_closesocket(s.held[i]);
    if (udp_ev != NULL)
      event_free(udp_ev);
    if (udp >= 0)
      evutil_closesocket(udp);
    if (dns != NULL)
      evdns_base_free(dns, 0);
    fx_dispose(f, 0);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_parse_table),
      cmocka_unit_test(test_parse_fields),
      cmocka_unit_test(test_parse_mutations),
      cmocka_unit_test(test_retry_after_table),
      cmocka_unit_test(test_auto_shards),
      cmocka_unit_test(test_refusals),
      cmocka_unit_test(test_rate_limited),
      cmocka_unit_test(test_server_errors),
      cmocka_unit_test(test_token_never_logged),
      cmocka_unit_test(test_token_echo_altered),
      cmocka_unit_test(test_mock_serves_gateway_bot),
      cmocka_unit_test(test_mock_injected_429),
      cmocka_unit_test(test_mock_enforced_limits),
      cmocka_unit_test(test_malformed_answers),
      cmocka_unit_test(test_tls_name_mismatch),
      cmocka_unit_test(test_timeout),
      cmocka_unit_test(test_oversized_answer),
      cmocka_unit_test(test_stop_and_free_in_flight),
      cmocka_unit_test(test_loopbreak_then_free),
      cmocka_unit_test(test_loopbreak_while_connecting),
      cmocka_unit_test(test_restore_with_auto_shards),
      cmocka_unit_test(test_restore_duplicate_entries),
      cmocka_unit_test(test_url_from_rest),
      cmocka_unit_test(test_configured_skips_rest),
      cmocka_unit_test(test_options),
  };
  ignore_sigpipe();
  if (getenv("DGW_TEST_FILTER") != NULL) /* one test, e.g. under valgrind */
    cmocka_set_test_filter(getenv("DGW_TEST_FILTER"));
  return cmocka_run_group_tests_name("rest", tests, NULL, NULL);
}
