/*
 * Out-of-memory sweep over a whole client: dgw_client_new(), start, the
 * loop turns up to READY, dgw_client_stop(), the loop running out, and
 * dgw_client_free(), with the Nth allocation made inside the client's
 * calls and loop turns failing, for N = 1, 2, ... until a run meets no
 * failure.
 *
 * The mock runs in a forked child on its own event base over loopback, so
 * none of its allocations is ever counted or failed; the parent's
 * allocator (the interposer below, a minimal copy of tests/test_oom.c's)
 * fails only while `armed` is set: around the client's calls and the loop
 * turns that serve it.
 *
 * Checks per N: no crash; no leak (the live blocks after the run, base and
 * all, equal those before); dgw_client_new() returns the client or NULL
 * with DGW_ERR_NOMEM; dgw_client_start() returns DGW_OK or DGW_ERR_NOMEM;
 * after a start, the client reaches READY or reports through a callback
 * (on_disconnect, on_fatal, on_client_fatal) within a deadline (else a
 * shard is stuck); after dgw_client_stop() the loop runs out of the
 * client's events within a deadline; dgw_client_free() returns.
 *
 * The client uses a TLS context the test made unarmed: dgw's own one
 * loads the system CA store in dgw_client_new(), some 225,000 allocations
 * of OpenSSL's.  Without it a whole run makes about 150 allocations, and
 * the sweep takes every one of them.  The sweep takes every STRIDE-th
 * allocation, the stride chosen so about DGW_OOM_RUNS (default 150) runs
 * cover one unfailed run: stride 1 as things are.  Environment:
 *   DGW_OOM_STRIDE=1    every allocation, whatever the count
 *   DGW_OOM_OWN_CTX=1   dgw's own context, CA store loading swept too
 *   DGW_OOM_FROM=N, DGW_OOM_MAX=N   start at, stop after, N (one N: both)
 *   DGW_OOM_TRACE=1     print the backtrace of each failed allocation
 *   DGW_OOM_VERBOSE=1   one line per run
 *   DGW_OOM_WSLAY=1     fail wslay's allocations too (see should_fail)
 * Prints TAP.
 */
#include "config.h"

#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <dlfcn.h>
#include <execinfo.h>
#include <event2/event.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include <dgw/dgw.h>

#include "mock.h"

/* ------------------------------------------------- the interposer */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

static volatile int armed;      /* count (and maybe fail) allocations */
static volatile long fail_at;   /* the armed allocation that fails; 0: none */
static volatile long calls;     /* armed allocations in this run */
static volatile long live;      /* blocks allocated and not freed */
static volatile int failed_one; /* the failure happened in this run */

static int in_lib(const void *addr, const char *lib);

/* The allocator runs before AddressSanitizer has mapped its shadow memory
 * (ASan's own start-up calls malloc): nothing in it may be instrumented,
 * or the sanitizer build crashes on the first stack frame with a local
 * array. */
#if defined(__GNUC__)
#define OOM_NO_ASAN __attribute__((no_sanitize_address))
#else
#define OOM_NO_ASAN
#endif
static int spare_wslay = 1; /* DGW_OOM_WSLAY=1: fail wslay's too */
static int trace;

OOM_NO_ASAN static int should_fail(const void *caller) {
  if (!armed)
    return 0;
  /* libwslay's own allocations are spared by default: wslay 1.1.1 leaks
   * the message it built when wslay_queue_push() fails inside
   * wslay_event_queue_msg_ex() (2 blocks; its bug, not dgw's).
   * DGW_OOM_WSLAY=1 fails them too; that is how the double free in
   * lib/ws.c's start_wslay() was found (fixed: init into a local). */
  if (spare_wslay && in_lib(caller, "libwslay"))
    return 0;
  if (++calls == fail_at) {
    failed_one = 1;
    if (trace) { /* DGW_OOM_TRACE=1: where the failing allocation is */
      void *frames[24];
      int n;

      armed = 0;
      n = backtrace(frames, 24);
      backtrace_symbols_fd(frames, n, 1);
      armed = 1;
    }
    return 1;
  }
  return 0;
}

OOM_NO_ASAN static void *counted_malloc(size_t size, const void *caller) {
  void *p;

  if (should_fail(caller))
    return NULL;
  p = __libc_malloc(size);
  if (p != NULL)
    live++;
  return p;
}

OOM_NO_ASAN void *malloc(size_t size) {
  return counted_malloc(size, __builtin_return_address(0));
}

OOM_NO_ASAN void *calloc(size_t n, size_t size) {
  void *p;

  if (should_fail(__builtin_return_address(0)))
    return NULL;
  p = __libc_calloc(n, size);
  if (p != NULL)
    live++;
  return p;
}

OOM_NO_ASAN void *realloc(void *old, size_t size) {
  if (old == NULL)
    return counted_malloc(size, __builtin_return_address(0));
  if (size == 0) {
    free(old);
    return NULL;
  }
  if (should_fail(__builtin_return_address(0)))
    return NULL;
  return __libc_realloc(old, size);
}

OOM_NO_ASAN void free(void *p) {
  if (p != NULL)
    live--;
  __libc_free(p);
}

/* json-c 0.16's tokener does not check strdup() for an object key (see
 * tests/test_oom.c): a strdup() called from json-c never fails here. */
OOM_NO_ASAN static int in_lib(const void *addr, const char *lib) {
  Dl_info info;

  return dladdr(addr, &info) != 0 && info.dli_fname != NULL &&
         strstr(info.dli_fname, lib) != NULL;
}

OOM_NO_ASAN char *strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p;

  if (in_lib(__builtin_return_address(0), "libjson-c")) {
    p = __libc_malloc(n);
    if (p != NULL)
      live++;
  } else {
    p = counted_malloc(n, __builtin_return_address(0));
  }
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

/* ------------------------------------------- the mock, in a child */

static pid_t mock_pid;
static int mock_stop_fd = -1; /* closing it ends the child */
static uint16_t mock_port;

static void child_eof(evutil_socket_t fd, short what, void *ud) {
  (void)fd;
  (void)what;
  event_base_loopbreak(ud);
}

/* Runs in the child: never armed, so nothing of the mock fails. */
static void run_mock(int port_fd, int stop_fd) {
  struct dgw_mock_config mc;
  struct event_base *base = event_base_new();
  struct dgw_mock *mock;
  struct event *ev;
  uint16_t port;
  int err = 0;

  memset(&mc, 0, sizeof(mc));
  mc.host = "127.0.0.1";
  mc.heartbeat_interval_ms = 30000;
  mock = dgw_mock_new(base, &mc, &err);
  if (mock == NULL)
    _exit(2);
  port = dgw_mock_port(mock);
  if (write(port_fd, &port, sizeof(port)) != (ssize_t)sizeof(port))
    _exit(2);
  close(port_fd);
  ev = event_new(base, stop_fd, EV_READ, child_eof, base);
  event_add(ev, NULL);
  alarm(600); /* never outlive a killed parent for long */
  event_base_dispatch(base);
  event_free(ev);
  dgw_mock_free(mock);
  event_base_free(base);
  _exit(0);
}

static int start_mock(void) {
  int port_pipe[2], stop_pipe[2];

  if (pipe(port_pipe) != 0 || pipe(stop_pipe) != 0)
    return -1;
  mock_pid = fork();
  if (mock_pid < 0)
    return -1;
  if (mock_pid == 0) {
    close(port_pipe[0]);
    close(stop_pipe[1]);
    run_mock(port_pipe[1], stop_pipe[0]);
  }
  close(port_pipe[1]);
  close(stop_pipe[0]);
  mock_stop_fd = stop_pipe[1];
  if (read(port_pipe[0], &mock_port, sizeof(mock_port)) !=
      (ssize_t)sizeof(mock_port))
    return -1;
  close(port_pipe[0]);
  return 0;
}

static void stop_mock(void) {
  int status;

  if (mock_stop_fd >= 0)
    close(mock_stop_fd);
  if (mock_pid > 0 && waitpid(mock_pid, &status, 0) < 0)
    kill(mock_pid, SIGKILL);
}

/* ------------------------------------------------------- one run */

struct run {
  struct event_base *base;
  int ready, reported; /* READY seen; an error reported by a callback */
  int timed_out;
  char why[160]; /* what went wrong, for the report */
};

static void quiet(enum dgw_log_level level, const char *msg, void *ud) {
  (void)level;
  (void)msg;
  (void)ud;
}

static void on_ready(struct dgw_gateway *gw, void *ud) {
  struct run *r = ud;

  (void)gw;
  r->ready = 1;
  event_base_loopbreak(r->base);
}

static void on_disconnect(struct dgw_gateway *gw,
                          const struct dgw_disconnect *info, void *ud) {
  struct run *r = ud;

  (void)gw;
  (void)info;
  r->reported = 1;
  event_base_loopbreak(r->base);
}

static void on_fatal(struct dgw_gateway *gw, uint16_t code, const char *m,
                     void *ud) {
  struct run *r = ud;

  (void)gw;
  (void)code;
  (void)m;
  r->reported = 1;
  event_base_loopbreak(r->base);
}

static void on_client_fatal(struct dgw_client *c, int error, const char *why,
                            void *ud) {
  struct run *r = ud;

  (void)c;
  (void)error;
  (void)why;
  r->reported = 1;
  event_base_loopbreak(r->base);
}

static void deadline(evutil_socket_t fd, short what, void *ud) {
  struct run *r = ud;

  (void)fd;
  (void)what;
  r->timed_out = 1;
  event_base_loopbreak(r->base);
}

static double time_scale(void) {
  const char *s = getenv("DGW_TEST_TIME_SCALE");
  double v = s != NULL ? atof(s) : 1;

  return v >= 1 ? v : 1;
}

/* Turns the loop (armed) until `done` or the deadline; returns 1 when the
 * deadline passed.  `timer` is the test's own event, made unarmed. */
static int turn_until(struct run *r, struct event *timer, int ms,
                      int (*done)(struct run *)) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};

  r->timed_out = 0;
  evtimer_add(timer, &tv);
  while (!done(r) && !r->timed_out) {
    armed = 1;
    event_base_loop(r->base, EVLOOP_ONCE);
    armed = 0;
  }
  evtimer_del(timer);
  return r->timed_out && !done(r);
}

static int up_or_reported(struct run *r) {
  return r->ready || r->reported;
}

/* 1 when only the test's timer is left: the loop would run out. */
static int loop_empty(struct run *r) {
  return event_base_get_num_events(r->base, EVENT_BASE_COUNT_ADDED) <= 1;
}

/* One run with allocation `n` failing (0: none).  Returns 0 when every
 * check held, else sets r->why. */
static SSL_CTX *app_ctx; /* NULL: dgw's own context (DGW_OOM_OWN_CTX) */

static int run_once(long n, struct run *r, long *allocs) {
  double scale = time_scale();
  struct dgw_options *opt;
  struct dgw_callbacks *cb;
  struct dgw_client *client;
  struct event *timer;
  char url[64];
  int err = 0, rc = 0;

  memset(r, 0, sizeof(*r));
  r->base = event_base_new();
  timer = evtimer_new(r->base, deadline, r);
  opt = dgw_options_new();
  cb = dgw_callbacks_new();
  if (r->base == NULL || timer == NULL || opt == NULL || cb == NULL) {
    snprintf(r->why, sizeof(r->why), "setup failed unarmed");
    return 1;
  }
  snprintf(url, sizeof(url), "ws://127.0.0.1:%u", (unsigned)mock_port);
  dgw_options_set_token(opt, "t0ken.SECRET");
  dgw_options_set_intents(opt, 513);
  dgw_options_set_gateway_url(opt, url);
  dgw_options_set_log(opt, quiet, NULL, DGW_LOG_DEBUG);
  dgw_options_set_identify_limits(opt, 1, 10);
  dgw_options_set_reconnect(opt, 20, 200, 60000);
  /* libevent's bufferevent_socket_new() ignores a failed evbuffer_add_cb():
   * the bufferevent then never writes, and only the connect timeout ends
   * the attempt.  It must do so well inside the deadline. */
  dgw_options_set_timeouts(opt, (uint32_t)(1000 * scale),
                           (uint32_t)(500 * scale));
  if (app_ctx != NULL)
    dgw_options_set_ssl_ctx(opt, app_ctx);
  dgw_callbacks_set_on_ready(cb, on_ready);
  dgw_callbacks_set_on_disconnect(cb, on_disconnect);
  dgw_callbacks_set_on_fatal(cb, on_fatal);
  dgw_callbacks_set_on_client_fatal(cb, on_client_fatal);

  calls = 0;
  failed_one = 0;
  fail_at = n;
  armed = 1;
  client = dgw_client_new(r->base, opt, cb, r, &err);
  armed = 0;
  if (client == NULL) {
    if (err != DGW_ERR_NOMEM) {
      snprintf(r->why, sizeof(r->why), "dgw_client_new: %s", dgw_strerror(err));
      rc = 1;
    }
    goto out;
  }
  armed = 1;
  err = dgw_client_start(client);
  armed = 0;
  if (err != DGW_OK && err != DGW_ERR_NOMEM) {
    snprintf(r->why, sizeof(r->why), "dgw_client_start: %s", dgw_strerror(err));
    rc = 1;
  }
  if (err == DGW_OK &&
      turn_until(r, timer, (int)(5000 * scale), up_or_reported)) {
    snprintf(r->why, sizeof(r->why),
             "stuck: neither READY nor an error reported in %d ms",
             (int)(5000 * scale));
    rc = 1;
  }
  armed = 1;
  dgw_client_stop(client);
  armed = 0;
  if (turn_until(r, timer, (int)(5000 * scale), loop_empty) && rc == 0) {
    snprintf(r->why, sizeof(r->why),
             "the loop did not run out after dgw_client_stop() (%d events)",
             event_base_get_num_events(r->base, EVENT_BASE_COUNT_ADDED) - 1);
    rc = 1;
  }
  dgw_client_free(client);
out:
  *allocs = calls;
  fail_at = 0;
  event_base_loop(r->base, EVLOOP_NONBLOCK); /* the pass after free */
  event_free(timer);
  dgw_callbacks_free(cb);
  dgw_options_free(opt);
  event_base_free(r->base);
  return rc;
}

static long env_long(const char *name, long def) {
  const char *s = getenv(name);

  return s != NULL && *s != '\0' ? atol(s) : def;
}

int main(void) {
  long total = 0, allocs = 0, stride, max, n, runs = 0, ready = 0, before;
  int bad = 0, t = 0, verbose = getenv("DGW_OOM_VERBOSE") != NULL;
  struct run r;

  signal(SIGPIPE, SIG_IGN);
  spare_wslay = getenv("DGW_OOM_WSLAY") == NULL;
  trace = getenv("DGW_OOM_TRACE") != NULL;
  /* The application's TLS context, made unarmed: else dgw_client_new()
   * loads the system CA store, some 200,000 allocations of OpenSSL's that
   * would take the whole sweep (its failures there are OpenSSL's to
   * handle; DGW_OOM_OWN_CTX=1 sweeps them too). */
  /* OpenSSL makes its per-thread error queue at the first error and keeps
   * it until exit: make it now, unarmed, or the first failed allocation
   * inside OpenSSL would count it as a leak. */
  ERR_raise(ERR_LIB_USER, ERR_R_MALLOC_FAILURE);
  ERR_clear_error();
  if (getenv("DGW_OOM_OWN_CTX") == NULL) {
    app_ctx = SSL_CTX_new(TLS_client_method());
    if (app_ctx == NULL) {
      printf("Bail out! SSL_CTX_new\n");
      return 1;
    }
    SSL_CTX_set_verify(app_ctx, SSL_VERIFY_PEER, NULL);
  }
  if (start_mock() != 0) {
    printf("Bail out! the mock did not start\n");
    return 1;
  }
  /* Unarmed runs first: lazily made global state is then in place, and
   * the count of allocations of a whole run sets the stride. */
  for (int i = 0; i < 2; i++) {
    before = live;
    if (run_once(0, &r, &total) != 0 || !r.ready) {
      printf("Bail out! an unfailed run did not reach READY: %s\n", r.why);
      stop_mock();
      return 1;
    }
    if (i == 1 && live != before) {
      printf("Bail out! an unfailed run leaked %ld block(s)\n", live - before);
      stop_mock();
      return 1;
    }
  }
  printf("ok %d - an unfailed run reaches READY (%ld allocations)\n", ++t,
         total);
  max = env_long("DGW_OOM_MAX", 1000000);
  stride = env_long("DGW_OOM_STRIDE", 0);
  if (stride <= 0) {
    long want = env_long("DGW_OOM_RUNS", 150);

    stride = want > 0 ? total / want : 1;
    if (stride < 1)
      stride = 1;
  }
  for (n = env_long("DGW_OOM_FROM", 1); n <= max; n += stride) {
    int rc;

    before = live;
    rc = run_once(n, &r, &allocs);
    runs++;
    ready += r.ready;
    if (rc != 0) {
      printf("# allocation %ld failing: %s\n", n, r.why);
      bad++;
    }
    if (live != before) {
      printf("# allocation %ld failing: %ld block(s) leaked\n", n,
             live - before);
      bad++;
    }
    if (verbose)
      printf("# n=%ld: %ld allocation(s), %s\n", n, allocs,
             r.ready      ? "READY"
             : r.reported ? "reported"
                          : "refused");
    if (!failed_one)
      break; /* the run made fewer than n allocations: all swept */
  }
  printf("%s %d - %ld run(s), allocations 1..%ld step %ld: each returned "
         "DGW_ERR_NOMEM or reported through a callback, no leak, no stuck "
         "loop (%ld reached READY)\n",
         bad == 0 ? "ok" : "not ok", ++t, runs, n, stride, ready);
  stop_mock();
  SSL_CTX_free(app_ctx);
  printf("1..%d\n", t);
  return bad == 0 ? 0 : 1;
}
