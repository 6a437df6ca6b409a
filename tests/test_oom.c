/*
 * Out-of-memory tests, as nghttp2 does them: this program replaces
 * malloc, calloc, realloc and free (glibc lets a program interpose them;
 * json-c, zlib and OpenSSL allocate through them too), and a sweep makes
 * the 1st, 2nd, ... Nth allocation of a scenario fail until one run gets
 * through without meeting a failure.  Every run must return DGW_OK or
 * DGW_ERR_NOMEM (or degrade as documented, said per scenario), must not
 * crash, and must free everything it allocated: the interposer counts
 * live blocks, and the count after the run must equal the count before.
 * Run under valgrind (make check-valgrind TESTS=tests/test_oom) once for
 * memory errors on the failure paths.
 *
 * The layers swept are the ones without I/O: inflate, the envelope and
 * payload codec, the session core, the command encoders, the rate limiter
 * and send queue, the local identify queue and the request table.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <dlfcn.h>
#include <event2/event.h>
#include <json-c/json.h>
#include <zlib.h>
#ifdef HAVE_ZSTD
#include <zstd.h>
#endif

#include <dgw/dgw.h>

#include "commands.h"
#include "decomp.h"
#include "identify.h"
#include "inflate.h"
#include "payload.h"
#include "ratelimit.h"
#include "requests.h"
#include "session.h"

/* ------------------------------------------------- the interposer */

extern void *__libc_malloc(size_t size);
extern void *__libc_calloc(size_t n, size_t size);
extern void *__libc_realloc(void *p, size_t size);
extern void __libc_free(void *p);

static volatile long fail_at; /* the allocation (from 1) that fails; 0: none */
static volatile long calls;   /* allocations since the sweep armed it */
static volatile long live;    /* blocks allocated and not freed */
static volatile int failed_one; /* the armed failure happened in this run */

/* 1 when this allocation must fail. */
static int should_fail(void) {
  if (fail_at == 0)
    return 0;
  if (++calls == fail_at) {
    failed_one = 1;
    return 1;
  }
  return 0;
}

void *malloc(size_t size) {
  void *p;

  if (should_fail())
    return NULL;
  p = __libc_malloc(size);
  if (p != NULL)
    live++;
  return p;
}

void *calloc(size_t n, size_t size) {
  void *p;

  if (should_fail())
    return NULL;
  p = __libc_calloc(n, size);
  if (p != NULL)
    live++;
  return p;
}

void *realloc(void *old, size_t size) {
  void *p;

  if (old == NULL)
    return malloc(size);
  if (size == 0) {
    free(old);
    return NULL;
  }
  if (should_fail())
    return NULL;
  p = __libc_realloc(old, size);
  return p;
}

void free(void *p) {
  if (p != NULL)
    live--;
  __libc_free(p);
}

/* 1 when `addr` is code of json-c. */
static int in_json_c(const void *addr) {
  Dl_info info;

  return dladdr(addr, &info) != 0 && info.dli_fname != NULL &&
         strstr(info.dli_fname, "libjson-c") != NULL;
}

/* json-c 0.16's tokener uses strdup() for an object key and does not check
 * the result (json_object_object_add_ex then runs strlen(NULL)): a crash
 * in json-c, not in dgw, which no caller can avoid.  So a strdup() called
 * from json-c never fails here; every other one does when its turn
 * comes. */
char *strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p;

  if (in_json_c(__builtin_return_address(0))) {
    p = __libc_malloc(n);
    if (p != NULL)
      live++;
  } else {
    p = malloc(n);
  }
  if (p != NULL)
    memcpy(p, s, n);
  return p;
}

/* ------------------------------------------------------ the sweep */

/* One run of a scenario: returns 0 when every result it saw was allowed,
 * else a line number to report. */
typedef int (*scenario_fn)(void);

/* Runs `run` unarmed once (lazily made global state, e.g. OpenSSL's RNG,
 * is then in place), then with the Nth allocation failing for N = 1, 2,
 * ... until a run meets no failure.  Each run must pass its own checks and
 * leave as many live blocks as it found. */
static void sweep(const char *name, scenario_fn run) {
  long n;

  assert_int_equal(run(), 0);
  for (n = 1;; n++) {
    long before = live;
    int bad;

    calls = 0;
    failed_one = 0;
    fail_at = n;
    bad = run();
    fail_at = 0;
    if (bad != 0)
      fail_msg("%s: allocation %ld failing: a wrong result (line %d)", name, n,
               bad);
    if (live != before)
      fail_msg("%s: allocation %ld failing: %ld block(s) leaked", name, n,
               live - before);
    if (!failed_one)
      break; /* the run needed fewer than n allocations: all swept */
  }
  print_message("# %s: %ld allocation(s) swept\n", name, n - 1);
  assert_true(n > 1); /* the scenario allocates something */
}

#define CHECK(cond)                                                            \
  do {                                                                         \
    if (!(cond))                                                               \
      return __LINE__;                                                         \
  } while (0)

/* ------------------------------------------------------ scenarios */

/* A zlib-stream payload, built before any sweep. */
static uint8_t zmsg[256];
static size_t zmsg_len;
static const char zjson[] =
    "{\"op\":0,\"s\":1,\"t\":\"MESSAGE_CREATE\",\"d\":{\"content\":\"hi\"}}";

/* The next payload of the same stream (for the sleep scenario). */
static uint8_t zmsg2[256];
static size_t zmsg2_len;

static void make_zmsg(void) {
  z_stream zs;

  memset(&zs, 0, sizeof(zs));
  assert_int_equal(deflateInit(&zs, 6), Z_OK);
  zs.next_in = (Bytef *)(uintptr_t)zjson;
  zs.avail_in = (uInt)strlen(zjson);
  zs.next_out = zmsg;
  zs.avail_out = sizeof(zmsg);
  assert_int_equal(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
  zmsg_len = sizeof(zmsg) - zs.avail_out;
  zs.next_in = (Bytef *)(uintptr_t)zjson;
  zs.avail_in = (uInt)strlen(zjson);
  zs.next_out = zmsg2;
  zs.avail_out = sizeof(zmsg2);
  assert_int_equal(deflate(&zs, Z_SYNC_FLUSH), Z_OK);
  zmsg2_len = sizeof(zmsg2) - zs.avail_out;
  deflateEnd(&zs);
}

/* Inflate: a new decompressor, one payload in two messages, a reset, the
 * payload again.  NOMEM from new or push; a push after a failed one goes
 * on failing (the stream is broken), never crashes. */
static int run_inflate(void) {
  int err = 0;
  struct dgw_inflate *z = dgw_inflate_new(0, &err);
  const char *out;
  size_t out_len;
  int rv;

  if (z == NULL) {
    CHECK(err == DGW_ERR_NOMEM);
    return 0;
  }
  CHECK(err == DGW_OK);
  rv = dgw_inflate_push(z, zmsg, 5, &out, &out_len);
  CHECK(rv == DGW_ERR_AGAIN || rv == DGW_ERR_NOMEM);
  if (rv == DGW_ERR_AGAIN) {
    rv = dgw_inflate_push(z, zmsg + 5, zmsg_len - 5, &out, &out_len);
    CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
    if (rv == DGW_OK) {
      CHECK(out_len == strlen(zjson) && memcmp(out, zjson, out_len) == 0);
      dgw_inflate_done(z);
    }
  }
  dgw_inflate_reset(z);
  rv = dgw_inflate_push(z, zmsg, zmsg_len, &out, &out_len);
  CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
  if (rv == DGW_OK)
    dgw_inflate_done(z);
  dgw_inflate_free(z);
  return 0;
}

/* A quiet sleep and its wake: a payload, the window packed (NOMEM leaves
 * the stream awake and whole), the stream's next payload (NOMEM from the
 * wake fails the object, as any NOMEM of a push).  Whatever fails,
 * nothing leaks and every payload that comes is right. */
static int run_sleep(void) {
  struct dgw_inflate_sleeper *s = dgw_inflate_sleeper_new();
  struct dgw_inflate *z;
  const char *out;
  size_t out_len;
  int rv;

  if (s == NULL)
    return 0;
  z = dgw_inflate_new(0, NULL);
  if (z == NULL) {
    dgw_inflate_sleeper_free(s);
    return 0;
  }
  rv = dgw_inflate_push(z, zmsg, zmsg_len, &out, &out_len);
  CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
  if (rv == DGW_OK) {
    rv = dgw_inflate_sleep(z, s);
    CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
    CHECK(dgw_inflate_asleep(z) == (rv == DGW_OK));
    rv = dgw_inflate_push(z, zmsg2, zmsg2_len, &out, &out_len);
    CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
    if (rv == DGW_OK)
      CHECK(out_len == strlen(zjson) && memcmp(out, zjson, out_len) == 0);
  }
  dgw_inflate_free(z);
  dgw_inflate_sleeper_free(s);
  return 0;
}

#ifdef HAVE_ZSTD
/* The same payload as a zstd-stream message, built before the sweep. */
static uint8_t smsg[256];
static size_t smsg_len;

static void make_smsg(void) {
  ZSTD_CCtx *cc = ZSTD_createCCtx();
  ZSTD_inBuffer in = {zjson, strlen(zjson), 0};
  ZSTD_outBuffer ob = {smsg, sizeof(smsg), 0};
  size_t left;

  assert_non_null(cc);
  do
    left = ZSTD_compressStream2(cc, &ob, &in, ZSTD_e_flush);
  while (left != 0 && !ZSTD_isError(left));
  assert_false(ZSTD_isError(left));
  smsg_len = ob.pos;
  ZSTD_freeCCtx(cc);
}

/* zstd-stream through the seam, as run_inflate: NOMEM from new or push
 * (libzstd's own allocations included), a failed object keeps failing
 * until the reset, nothing leaks. */
static int run_zstd(void) {
  int err = 0;
  struct dgw_decomp *d = dgw_decomp_new(DGW_COMPRESSION_ZSTD, 0, &err);
  const char *out;
  size_t out_len;
  int rv;

  if (d == NULL) {
    CHECK(err == DGW_ERR_NOMEM);
    return 0;
  }
  CHECK(err == DGW_OK);
  rv = dgw_decomp_push(d, smsg, 5, &out, &out_len);
  CHECK(rv == DGW_ERR_AGAIN || rv == DGW_ERR_NOMEM);
  if (rv == DGW_ERR_AGAIN) {
    rv = dgw_decomp_push(d, smsg + 5, smsg_len - 5, &out, &out_len);
    CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
    if (rv == DGW_OK) {
      CHECK(out_len == strlen(zjson) && memcmp(out, zjson, out_len) == 0);
      dgw_decomp_done(d);
    }
  }
  dgw_decomp_reset(d);
  rv = dgw_decomp_push(d, smsg, smsg_len, &out, &out_len);
  CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
  if (rv == DGW_OK)
    CHECK(out_len == strlen(zjson) && memcmp(out, zjson, out_len) == 0);
  dgw_decomp_free(d);
  return 0;
}
#endif

/* The envelope peek (no allocation), d parsed with a fresh and a reused
 * tokener, and a payload encoded. */
static int run_payload(void) {
  struct dgw_envelope env;
  struct json_object *d;
  struct json_tokener *tok;
  char *text = NULL;
  size_t len = 0;
  int err = 0;
  int rv;

  CHECK(dgw_envelope_peek(zjson, strlen(zjson), &env) == DGW_OK);
  /* json-c 0.16 reports an allocation that failed while parsing as a
   * parse error: DGW_ERR_JSON (the shard treats it as a bad payload:
   * close 4000 and resume), documented in docs/reliability.md. */
  d = dgw_payload_parse(zjson, strlen(zjson), &err);
  CHECK((d != NULL && err == DGW_OK) ||
        (d == NULL && (err == DGW_ERR_NOMEM || err == DGW_ERR_JSON)));
  json_object_put(d);
  tok = dgw_payload_tokener_new();
  if (tok != NULL) {
    d = dgw_payload_parse_with(tok, zjson, strlen(zjson), &err);
    CHECK((d != NULL && err == DGW_OK) ||
          (d == NULL && (err == DGW_ERR_NOMEM || err == DGW_ERR_JSON)));
    json_object_put(d);
    json_tokener_free(tok);
  }
  d = json_object_new_object();
  if (d != NULL &&
      json_object_object_add(d, "since", json_object_new_int(0)) == 0) {
    rv = dgw_payload_encode(3, d, DGW_PAYLOAD_MAX_SEND, &text, &len);
    CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
    CHECK(rv != DGW_OK || (text != NULL && len > 0));
    CHECK(rv == DGW_OK || (text == NULL && len == 0));
    free(text);
  }
  json_object_put(d);
  return 0;
}

static double half(void *ud) {
  (void)ud;
  return 0.5;
}

/* The session core: READY with an id and a resume URL, dispatches, a
 * loss, a restore.  NOMEM from ready and restore; a session whose copy
 * failed is simply not resumable (it identifies). */
static int run_session(void) {
  struct dgw_session_config cfg;
  struct dgw_session *s;
  struct dgw_session_action a;
  struct dgw_session_retry r;
  int rv;

  memset(&cfg, 0, sizeof(cfg));
  cfg.backoff_base_ms = 1000;
  cfg.backoff_max_ms = 60000;
  cfg.invalid_min_ms = 1000;
  cfg.invalid_max_ms = 5000;
  cfg.random01 = half;
  s = dgw_session_new(&cfg);
  if (s == NULL)
    return 0; /* documented: NULL without memory */
  dgw_session_on_hello(s, DGW_STATE_HELLO, 41250, &a);
  CHECK(a.what == DGW_SESSION_IDENTIFY);
  dgw_session_identified(s);
  dgw_session_on_dispatch(s, DGW_STATE_IDENTIFYING, "READY", 1, 1, &a);
  rv = dgw_session_ready(s, "abc123", "wss://resume.example",
                         "wss://gw.example", NULL, NULL);
  CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
  dgw_session_on_dispatch(s, DGW_STATE_READY, "MESSAGE_CREATE", 1, 2, &a);
  CHECK(a.what == DGW_SESSION_DELIVER);
  dgw_session_lost(s, DGW_ERR_CONNECTION_LOST, 1, DGW_CLOSE_RESUME, -1, &r);
  CHECK(r.will_resume == (dgw_session_id(s) != NULL));
  rv = dgw_session_restore(s, "def456", 7, "wss://resume.example",
                           "wss://gw.example");
  CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
  if (rv == DGW_OK)
    CHECK(dgw_session_seq(s) == 7 && dgw_session_resumable(s));
  dgw_session_free(s);
  return 0;
}

static int fixed_rng(void *buf, size_t len, void *ud) {
  (void)ud;
  memset(buf, 0x5a, len);
  return 0;
}

/* Every command encoder: DGW_OK with the text, or NOMEM with none. */
static int run_commands(void) {
  struct dgw_identify_params id;
  struct dgw_member_request mr;
  const char *guilds[] = {"81384788765712384", "41771983423143937"};
  char nonce[DGW_NONCE_MAX + 1];
  char why[128];
  char *text;
  size_t len;
  int rv;

  memset(&id, 0, sizeof(id));
  id.token = "t0ken.SECRET";
  id.intents = 513;
  id.shard_id = 1;
  id.shard_total = 2;
  id.large_threshold = 100;
  id.presence_json = "{\"since\":null,\"activities\":[],\"status\":\"online\","
                     "\"afk\":false}";
#define ENCODED(call)                                                          \
  do {                                                                         \
    text = NULL;                                                               \
    len = 0;                                                                   \
    rv = (call);                                                               \
    CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);                                \
    CHECK(rv != DGW_OK || (text != NULL && len == strlen(text)));              \
    free(text);                                                                \
  } while (0)
  ENCODED(dgw_identify_encode(&id, &text, &len, why, sizeof(why)));
  ENCODED(dgw_resume_encode("t0ken.SECRET", "abc123", 42, &text, &len, why,
                            sizeof(why)));
  ENCODED(dgw_voice_state_encode("81384788765712384", "81384788765712385", 1, 0,
                                 &text, &len, why, sizeof(why)));
  memset(&mr, 0, sizeof(mr));
  mr.guild_id = "81384788765712384";
  mr.query = "";
  mr.limit = 0;
  ENCODED(dgw_member_request_encode(&mr, fixed_rng, NULL, nonce, &text, &len,
                                    why, sizeof(why)));
  ENCODED(
      dgw_soundboard_request_encode(guilds, 2, &text, &len, why, sizeof(why)));
  ENCODED(dgw_channel_info_request_encode("81384788765712384", 1u, &text, &len,
                                          why, sizeof(why)));
#undef ENCODED
  return 0;
}

static void sent(int result, void *ud) {
  (void)result;
  (void)ud;
}

/* The rate limiter and the send queue: NOMEM from new and push, and a
 * queue cleared with what it holds. */
static int run_ratelimit(void) {
  int err = 0;
  struct dgw_ratelimit *rl = dgw_ratelimit_new(120, 60000, 3, &err);
  struct dgw_sendq *q;
  int rv;

  if (rl == NULL)
    CHECK(err == DGW_ERR_NOMEM);
  dgw_ratelimit_free(rl);
  q = dgw_sendq_new(8, &err);
  if (q == NULL) {
    CHECK(err == DGW_ERR_NOMEM);
    return 0;
  }
  for (int i = 0; i < 3; i++) {
    rv = dgw_sendq_push(q, "{\"op\":1,\"d\":null}", 17, sent, NULL);
    CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
  }
  dgw_sendq_clear(q, DGW_ERR_CLOSED);
  dgw_sendq_free(q);
  return 0;
}

static struct event_base *base;
static int grants;

static void granted(void *shard, void *ud) {
  (void)shard;
  (void)ud;
  grants++;
}

/* The local identify queue: NULL without memory; a request it cannot
 * record is granted at once, so no shard waits for ever: with one bucket
 * the first request is granted, and every one whose record failed. */
static int run_identify(void) {
  struct dgw_identify_limits lim;
  struct dgw_identify_queue *q;
  int shards[3];

  memset(&lim, 0, sizeof(lim));
  lim.max_concurrency = 1;
  lim.window_ms = 5000;
  lim.remaining = -1;
  q = dgw_identify_local_new(base, &lim, granted, NULL, NULL, NULL);
  if (q == NULL)
    return 0;
  grants = 0;
  for (int i = 0; i < 3; i++)
    q->request(q, &shards[i], (uint32_t)i);
  CHECK(grants >= 1);
  q->cancel(q, &shards[2]);
  q->destroy(q);
  return 0;
}

static void members(struct dgw_gateway *gw, int error, struct json_object *res,
                    void *ud) {
  (void)gw;
  (void)res;
  *(int *)ud = error;
}

static void voice(struct dgw_gateway *gw, int error, struct json_object *vs,
                  struct json_object *vsrv, void *ud) {
  (void)gw;
  (void)vs;
  (void)vsrv;
  *(int *)ud = error;
}

/* The request table: NOMEM from add, every waiting requester called back
 * once by fail_all. */
static int run_requests(void) {
  struct dgw_requests *r = dgw_requests_new();
  int m_err = 1, v_err = 1;
  int rv;

  if (r == NULL)
    return 0;
  rv = dgw_requests_add_members(r, "nonce1", "81384788765712384", members,
                                &m_err);
  CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
  if (rv != DGW_OK)
    m_err = DGW_ERR_CLOSED; /* never queued: no call back */
  rv = dgw_requests_add_voice(r, NULL, "81384788765712384", voice, &v_err);
  CHECK(rv == DGW_OK || rv == DGW_ERR_NOMEM);
  if (rv != DGW_OK)
    v_err = DGW_ERR_CLOSED;
  dgw_requests_fail_all(r, NULL, DGW_ERR_CLOSED);
  CHECK(m_err == DGW_ERR_CLOSED && v_err == DGW_ERR_CLOSED);
  CHECK(dgw_requests_pending(r) == 0);
  dgw_requests_free(r);
  return 0;
}

/* ---------------------------------------------------------- tests */

static void test_interposer(void **state) {
  long before = live;
  void *volatile p; /* volatile: the compiler may not drop the pair */

  (void)state;
  p = malloc(10);
  assert_int_equal(live, before + 1);
  free(p);
  assert_int_equal(live, before);
  fail_at = 1;
  calls = 0;
  p = malloc(10);
  fail_at = 0;
  assert_null(p);
  assert_int_equal(live, before);
}

static void test_oom_inflate(void **state) {
  (void)state;
  make_zmsg();
  sweep("inflate", run_inflate);
  sweep("inflate sleep", run_sleep);
}

#ifdef HAVE_ZSTD
static void test_oom_zstd(void **state) {
  (void)state;
  make_zmsg();
  make_smsg();
  sweep("zstd", run_zstd);
}
#endif

static void test_oom_payload(void **state) {
  (void)state;
  sweep("payload", run_payload);
}

static void test_oom_session(void **state) {
  (void)state;
  sweep("session", run_session);
}

static void test_oom_commands(void **state) {
  (void)state;
  sweep("commands", run_commands);
}

static void test_oom_ratelimit(void **state) {
  (void)state;
  sweep("ratelimit", run_ratelimit);
}

static void test_oom_identify(void **state) {
  (void)state;
  base = event_base_new();
  assert_non_null(base);
  sweep("identify", run_identify);
  event_base_free(base);
  base = NULL;
}

static void test_oom_requests(void **state) {
  (void)state;
  sweep("requests", run_requests);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_interposer),   cmocka_unit_test(test_oom_inflate),
#ifdef HAVE_ZSTD
      cmocka_unit_test(test_oom_zstd),
#endif
      cmocka_unit_test(test_oom_payload),  cmocka_unit_test(test_oom_session),
      cmocka_unit_test(test_oom_commands), cmocka_unit_test(test_oom_ratelimit),
      cmocka_unit_test(test_oom_identify), cmocka_unit_test(test_oom_requests),
  };
  return cmocka_run_group_tests_name("oom", tests, NULL, NULL);
}
