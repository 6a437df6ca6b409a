/*
 * Shared fixtures for the integration tests: an event loop with a
 * watchdog, certificate paths, and a log sink.  Header-only so each test
 * program stays one file plus this.
 */
#ifndef DGW_TEST_HARNESS_H
#define DGW_TEST_HARNESS_H

#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <cmocka.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <dgw/dgw.h>

/* Like every libevent network program, a test must not die of SIGPIPE
 * when a peer vanishes mid-write: writes then fail with EPIPE instead. */
static inline void ignore_sigpipe(void) {
  signal(SIGPIPE, SIG_IGN);
}

/* Path of a fixture made by tests/gen-certs.sh, e.g. cert_path("ca.pem"). */
static inline const char *cert_path(const char *name) {
  static char buf[4][1024];
  static int next;
  const char *dir = getenv("DGW_TEST_CERTS");
  char *out = buf[next++ % 4];

  snprintf(out, sizeof(buf[0]), "%s/%s", dir != NULL ? dir : "tests/certs",
           name);
  return out;
}

/* Watchdogs and connect timeouts are multiplied by DGW_TEST_TIME_SCALE
 * (make check-valgrind sets 10): slow instrumented runs must not trip
 * them.  No test asserts that something is fast. */
static inline double time_scale(void) {
  const char *s = getenv("DGW_TEST_TIME_SCALE");
  double v = s != NULL ? atof(s) : 1.0;

  return v >= 1.0 ? v : 1.0;
}

/* Milliseconds on the monotonic clock. */
static inline double now_ms(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* The moment `seconds` (scaled, see time_scale) from now, in now_ms(). */
static inline double deadline_ms(double seconds) {
  return now_ms() + seconds * 1000.0 * time_scale();
}

/* One pass of `base`'s loop, back within 20 ms even when nothing
 * happens: the body of every "run until this holds" loop. */
static inline void loop_once(struct event_base *base) {
  struct timeval tv = {0, 20000};

  event_base_loopexit(base, &tv);
  event_base_loop(base, EVLOOP_ONCE);
}

/* Runs `base` until pred(arg) holds or `seconds` (scaled, see
 * time_scale) pass, a pass of at most 20 ms at a time.  Returns pred(arg):
 * the condition, not the clock, decides. */
static inline int loop_until(struct event_base *base, int (*pred)(void *),
                             void *arg, double seconds) {
  double end = deadline_ms(seconds);

  while (!pred(arg) && now_ms() < end)
    loop_once(base);
  return pred(arg);
}

struct watchdog {
  struct event *ev;
  int fired;
};

static inline void watchdog_cb(evutil_socket_t fd, short what, void *arg) {
  struct watchdog *w = arg;
  (void)fd;
  (void)what;
  w->fired = 1;
  event_base_loopbreak(event_get_base(w->ev));
}

/* Runs `base` until `*done` is nonzero (checked each loop pass) or
 * `seconds` pass.  Returns 1 when done, 0 on timeout: a hung test fails
 * instead of hanging the suite. */
static inline int run_until(struct event_base *base, const int *done,
                            double seconds) {
  struct watchdog w = {NULL, 0};
  struct timeval tv = {
      (time_t)seconds,
      (suseconds_t)((seconds - (double)(time_t)seconds) * 1e6)};

  w.ev = evtimer_new(base, watchdog_cb, &w);
  evtimer_add(w.ev, &tv);
  while (!*done && !w.fired)
    event_base_loop(base, EVLOOP_ONCE);
  event_free(w.ev);
  return *done != 0;
}

/* Lets pending callbacks run for `ms` milliseconds. */
static inline void run_for(struct event_base *base, int ms) {
  int never = 0;
  run_until(base, &never, ms / 1000.0);
}

/* A log sink that prints when DGW_TEST_VERBOSE is set. */
static inline void test_log(enum dgw_log_level level, const char *msg,
                            void *ud) {
  (void)ud;
  if (getenv("DGW_TEST_VERBOSE") != NULL)
    fprintf(stderr, "# [%s] %s\n", dgw_log_level_name(level), msg);
}

/* A TCP listener on `ip`:`port` (both in host order; port 0 picks a free
 * one), accepting into `cb` with `arg`; the port it got goes to *bound.
 * Fails the test when it cannot listen.  Free with evconnlistener_free(). */
static inline struct evconnlistener *
listen_ipv4(struct event_base *base, evconnlistener_cb cb, void *arg,
            uint32_t ip, uint16_t port, uint16_t *bound) {
  struct sockaddr_in sin = {0};
  socklen_t slen = sizeof(sin);
  struct evconnlistener *l;

  sin.sin_family = AF_INET;
  sin.sin_addr.s_addr = htonl(ip);
  sin.sin_port = htons(port);
  l = evconnlistener_new_bind(base, cb, arg,
                              LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 16,
                              (struct sockaddr *)&sin, sizeof(sin));
  assert_non_null(l);
  assert_int_equal(
      getsockname(evconnlistener_get_fd(l), (struct sockaddr *)&sin, &slen), 0);
  *bound = ntohs(sin.sin_port);
  return l;
}

#endif /* DGW_TEST_HARNESS_H */
