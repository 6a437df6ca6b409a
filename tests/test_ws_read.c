/*
 * Integration tests: the reads past libevent's 4 KiB on plain sockets
 * (lib/ws_read.c).  A hand-rolled server answers the upgrade, then writes
 * a burst of binary frames while the client is paused, so that the
 * client's socket holds far more than 4 KiB when it resumes: libevent's
 * capped read is followed by large reads of our own.  The burst arrives
 * whole and in order; an end of stream or a reset right behind it is
 * handled as before, after every frame sent before it.
 */
#include "config.h"

#include "harness.h"

#include <arpa/inet.h>
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/dns.h>
#include <event2/listener.h>

#include "handshake.h"
#include "resolver.h"
#include "ws.h"

/* ------------------------------------------------------------ server */

enum end { END_NONE, END_FIN, END_RESET };

struct server {
  struct evconnlistener *listener;
  struct bufferevent *bev;
  uint16_t port;
  int upgraded;
};

static void server_read(struct bufferevent *bev, void *arg) {
  struct server *s = arg;
  struct evbuffer *in = bufferevent_get_input(bev);
  size_t len = evbuffer_get_length(in);
  const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
  struct dgw_handshake_request_info info;
  char accept[DGW_WS_ACCEPT_LEN + 1];
  char why[128];
  size_t hlen;

  if (s->upgraded) {
    evbuffer_drain(in, len); /* the client's frames: not looked at */
    return;
  }
  if (buf == NULL || dgw_handshake_parse_request(buf, len, &hlen, &info, why,
                                                 sizeof(why)) != DGW_OK)
    return;
  evbuffer_drain(in, len);
  s->upgraded = 1;
  dgw_ws_accept_key(info.key, strlen(info.key), accept);
  evbuffer_add_printf(bufferevent_get_output(bev),
                      "HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
}

static void server_event(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  (void)what;
  (void)arg;
}

static void server_accept(struct evconnlistener *l, evutil_socket_t fd,
                          struct sockaddr *sa, int socklen, void *arg) {
  struct server *s = arg;

  (void)sa;
  (void)socklen;
  s->bev = bufferevent_socket_new(evconnlistener_get_base(l), fd,
                                  BEV_OPT_CLOSE_ON_FREE);
  bufferevent_setcb(s->bev, server_read, NULL, server_event, s);
  bufferevent_enable(s->bev, EV_READ | EV_WRITE);
}

static void server_start(struct event_base *base, struct server *s) {
  s->listener =
      listen_ipv4(base, server_accept, s, INADDR_LOOPBACK, 0, &s->port);
}

/* Bytes written to the server's socket that the client's kernel has not
 * acknowledged yet (held in the server's bufferevent, or sent but not
 * acknowledged); 0 once the client's socket holds them all. */
static size_t server_unsent(struct server *s) {
  int n = 0;

  if (s->bev == NULL)
    return 0;
  if (ioctl(bufferevent_getfd(s->bev), SIOCOUTQ, &n) != 0)
    n = 0;
  return evbuffer_get_length(bufferevent_get_output(s->bev)) + (size_t)n;
}

/* Writes `len` bytes of frames and waits until they left the server's
 * bufferevent (for a reset: until the client's socket holds them all, as
 * a reset drops what it has not acknowledged), then ends the connection
 * as `end` says: a FIN behind them, or a reset (SO_LINGER 0). */
static void server_burst(struct event_base *base, struct server *s,
                         const uint8_t *frames, size_t len, enum end end) {
  double until = deadline_ms(10);
  struct evbuffer *out = bufferevent_get_output(s->bev);

  assert_int_equal(bufferevent_write(s->bev, frames, len), 0);
  while ((end == END_RESET ? server_unsent(s) : evbuffer_get_length(out)) > 0 &&
         now_ms() < until)
    loop_once(base);
  assert_int_equal(evbuffer_get_length(out), 0);
  if (end == END_NONE)
    return;
  if (end == END_RESET) {
    struct linger lg = {1, 0};

    assert_int_equal(server_unsent(s), 0);
    assert_int_equal(setsockopt(bufferevent_getfd(s->bev), SOL_SOCKET,
                                SO_LINGER, &lg, sizeof(lg)),
                     0);
  }
  bufferevent_free(s->bev);
  s->bev = NULL;
}

static void server_stop(struct server *s) {
  if (s->bev != NULL)
    bufferevent_free(s->bev);
  evconnlistener_free(s->listener);
}

/* Frame i: a binary frame of 20 + (i * 7919) % 3000 bytes (every 97th
 * 70,000), its first 4 bytes i, the rest a pattern of i. */
static size_t frame_len(uint32_t i) {
  return i % 97 == 96 ? 70000 : 20 + (i * 7919u) % 3000u;
}

/* Appends frame i at `n` in `out`; returns the new length. */
static size_t put_frame(uint8_t *out, size_t n, uint32_t i) {
  size_t len = frame_len(i);

  out[n++] = 0x82;
  if (len < 126) {
    out[n++] = (uint8_t)len;
  } else if (len < 65536) {
    out[n++] = 126;
    out[n++] = (uint8_t)(len >> 8);
    out[n++] = (uint8_t)len;
  } else {
    out[n++] = 127;
    for (int k = 7; k >= 0; k--)
      out[n++] = (uint8_t)((uint64_t)len >> (8 * k));
  }
  memcpy(out + n, &i, 4);
  for (size_t k = 4; k < len; k++)
    out[n + k] = (uint8_t)(i + k);
  return n + len;
}

static size_t put_frames(uint8_t *out, uint32_t count) {
  size_t n = 0;

  for (uint32_t i = 0; i < count; i++)
    n = put_frame(out, n, i);
  return n;
}

static size_t frames_size(uint32_t count) {
  size_t n = 0;

  for (uint32_t i = 0; i < count; i++)
    n += 10 + frame_len(i);
  return n;
}

/* ------------------------------------------------------------ client */

struct client {
  struct dgw_resolver *resolver;
  struct dgw_ws *ws;
  int opened;
  int closed;
  int close_err;
  uint32_t got;  /* frames received, in order */
  int bad;       /* a frame out of order or damaged */
  uint32_t want; /* set done after this many frames */
  int done;
};

static void on_open(struct dgw_ws *ws, void *ud) {
  struct client *c = ud;

  c->opened = 1;
  dgw_ws_pause(ws, 1); /* until the burst waits in the socket */
}

static void on_message(struct dgw_ws *ws, int binary, const uint8_t *data,
                       size_t len, void *ud) {
  struct client *c = ud;
  uint32_t i;

  (void)ws;
  if (!binary || len != frame_len(c->got) || len < 4) {
    c->bad = 1;
    c->done = 1;
    return;
  }
  memcpy(&i, data, 4);
  for (size_t k = 4; k < len && i == c->got; k++)
    if (data[k] != (uint8_t)(i + k))
      c->bad = 1;
  if (i != c->got)
    c->bad = 1;
  c->got++;
  if (c->bad || (c->want && c->got == c->want))
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

/* A paused, open client of a fresh server on `base`. */
static struct client *client_open(struct event_base *base, struct server *s) {
  struct client *c = calloc(1, sizeof(*c));
  struct dgw_ws_config cfg = {0};
  struct evdns_base *dns = evdns_base_new(base, 0);
  char url[64];
  int err = 0;

  assert_non_null(c);
  assert_non_null(dns);
  assert_int_equal(evdns_base_load_hosts(dns, NULL), 0);
  c->resolver = dgw_resolver_new(base, dns, 1);
  cfg.resolver = c->resolver;
  cfg.connect_timeout_ms = (uint32_t)(5000 * time_scale());
  cfg.close_timeout_ms = (uint32_t)(2000 * time_scale());
  cfg.log = test_log;
  c->ws = dgw_ws_new(base, &cfg, &callbacks, c, &err);
  assert_non_null(c->ws);
  server_start(base, s);
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u/", (unsigned)s->port);
  assert_int_equal(dgw_ws_connect(c->ws, url), DGW_OK);
  assert_true(run_until(base, &c->opened, 5 * time_scale()));
  assert_int_equal(c->closed, 0);
  return c;
}

static void client_free(struct client *c) {
  dgw_ws_free(c->ws);
  dgw_resolver_unref(c->resolver);
  free(c);
}

/* Lets the paused client read again and runs until `c->done`. */
static void resume(struct event_base *base, struct client *c) {
  dgw_ws_pause(c->ws, 0);
  assert_true(run_until(base, &c->done, 10 * time_scale()));
}

/* ------------------------------------------------------------ cases */

/* About 1.5 MB of frames of all sizes waiting in the socket arrive whole
 * and in order, most of them through reads of ours larger than the 4 KiB
 * libevent takes at a time. */
static void test_big_burst(void **state) {
  struct event_base *base = event_base_new();
  struct server s = {0};
  const uint32_t count = 1200;
  uint8_t *frames = malloc(frames_size(count));
  size_t len = put_frames(frames, count);
  struct client *c;
  uint64_t reads = 0, bytes = 0;

  (void)state;
  c = client_open(base, &s);
  c->want = count;
  server_burst(base, &s, frames, len, END_NONE);
  resume(base, c);
  assert_false(c->bad);
  assert_int_equal(c->got, count);
  assert_int_equal(c->closed, 0);
  dgw_ws_read_stats(c->ws, &reads, &bytes);
  assert_true(reads > 0);
  assert_true(bytes > len / 2);
  assert_true(bytes / reads > 4096); /* larger than libevent's reads */
  client_free(c);
  server_stop(&s);
  event_base_free(base);
  free(frames);
}

/* The end of the stream right behind a burst: every frame first, then the
 * connection lost as before (no close frame came). */
static void test_eof_after_burst(void **state) {
  struct event_base *base = event_base_new();
  struct server s = {0};
  const uint32_t count = 60; /* about 90 KB */
  uint8_t *frames = malloc(frames_size(count));
  size_t len = put_frames(frames, count);
  struct client *c;
  uint64_t reads = 0;

  (void)state;
  c = client_open(base, &s);
  server_burst(base, &s, frames, len, END_FIN);
  resume(base, c);
  assert_false(c->bad);
  assert_int_equal(c->got, count);
  assert_int_equal(c->closed, 1);
  assert_int_equal(c->close_err, DGW_ERR_CONNECTION_LOST);
  assert_non_null(strstr(dgw_ws_reason(c->ws), "without a close frame"));
  dgw_ws_read_stats(c->ws, &reads, NULL);
  assert_true(reads > 0);
  client_free(c);
  server_stop(&s);
  event_base_free(base);
  free(frames);
}

/* A reset right behind a burst, found by one of our reads (the kernel
 * reports it once, then only an end of stream): every frame first, then
 * the error as libevent reports its own. */
static void test_reset_after_burst(void **state) {
  struct event_base *base = event_base_new();
  struct server s = {0};
  const uint32_t count = 25; /* about 35 KB, under the socket's window */
  uint8_t *frames = malloc(frames_size(count));
  size_t len = put_frames(frames, count);
  struct client *c;
  uint64_t reads = 0;

  (void)state;
  c = client_open(base, &s);
  server_burst(base, &s, frames, len, END_RESET);
  resume(base, c);
  assert_false(c->bad);
  assert_int_equal(c->got, count);
  assert_int_equal(c->closed, 1);
  assert_int_equal(c->close_err, DGW_ERR_CONNECTION_LOST);
  assert_non_null(strstr(dgw_ws_reason(c->ws), strerror(ECONNRESET)));
  dgw_ws_read_stats(c->ws, &reads, NULL);
  assert_true(reads > 0);
  client_free(c);
  server_stop(&s);
  event_base_free(base);
  free(frames);
}

/* Frames that come one at a time (less than 4 KiB a wakeup) cost no read
 * of ours: nothing is read at low rates that libevent would not read. */
static void test_small_reads_left_to_libevent(void **state) {
  struct event_base *base = event_base_new();
  struct server s = {0};
  uint8_t frame[4096];
  struct client *c;
  uint64_t reads = 1;

  (void)state;
  c = client_open(base, &s);
  dgw_ws_pause(c->ws, 0);
  for (uint32_t i = 0; i < 5; i++) {
    c->want = i + 1;
    c->done = 0;
    server_burst(base, &s, frame, put_frame(frame, 0, i), END_NONE);
    assert_true(run_until(base, &c->done, 5 * time_scale()));
  }
  assert_false(c->bad);
  assert_int_equal(c->got, 5);
  dgw_ws_read_stats(c->ws, &reads, NULL);
  assert_int_equal(reads, 0);
  client_free(c);
  server_stop(&s);
  event_base_free(base);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_big_burst),
      cmocka_unit_test(test_eof_after_burst),
      cmocka_unit_test(test_reset_after_burst),
      cmocka_unit_test(test_small_reads_left_to_libevent),
  };

  ignore_sigpipe();
  return cmocka_run_group_tests(tests, NULL, NULL);
}
