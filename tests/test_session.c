/* Unit tests: the session core (lib/session.c) from tables, no sockets,
 * no event loop; the randomness is a fixed value per case. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dgw/dgw.h>

#include "policy.h"
#include "session.h"

#define ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

#define SID "0123456789abcdef0123456789abcdef"
#define CONFIGURED "wss://gateway.discord.gg"
#define RESUME_URL "wss://resume.example"

static double fixed_random;

static double fixed(void *user_data) {
  (void)user_data;
  return fixed_random;
}

static struct dgw_session *new_session(void) {
  struct dgw_session_config cfg;
  struct dgw_session *s;

  memset(&cfg, 0, sizeof(cfg));
  cfg.backoff_base_ms = 1000;
  cfg.backoff_max_ms = 60000;
  cfg.invalid_min_ms = 1000;
  cfg.invalid_max_ms = 5000;
  cfg.random01 = fixed;
  fixed_random = 0.5;
  s = dgw_session_new(&cfg);
  assert_non_null(s);
  return s;
}

/* A session as after READY at `seq`. */
static struct dgw_session *ready_session(int64_t seq) {
  struct dgw_session *s = new_session();
  struct dgw_session_action a;

  dgw_session_identified(s);
  dgw_session_on_dispatch(s, DGW_STATE_IDENTIFYING, "READY", 1, seq, &a);
  assert_int_equal(a.what, DGW_SESSION_DELIVER);
  assert_true(a.ready);
  assert_int_equal(
      dgw_session_ready(s, SID, RESUME_URL, CONFIGURED, NULL, NULL), DGW_OK);
  return s;
}

/* ------------------------------------------------------------- HELLO */

static const struct {
  const char *name;
  int with_session;
  enum dgw_state state;
  int64_t interval;
  enum dgw_session_do what;
} hello_cases[] = {
    {"fresh shard identifies", 0, DGW_STATE_HELLO, 41250, DGW_SESSION_IDENTIFY},
    {"a session resumes", 1, DGW_STATE_HELLO, 41250, DGW_SESSION_RESUME},
    {"lowest interval", 0, DGW_STATE_HELLO, 50, DGW_SESSION_IDENTIFY},
    {"highest interval", 1, DGW_STATE_HELLO, 3600000, DGW_SESSION_RESUME},
    {"interval too short", 0, DGW_STATE_HELLO, 49, DGW_SESSION_LEAVE},
    {"interval too long", 1, DGW_STATE_HELLO, 3600001, DGW_SESSION_LEAVE},
    {"no interval", 0, DGW_STATE_HELLO, 0, DGW_SESSION_LEAVE},
    {"negative interval", 0, DGW_STATE_HELLO, -5, DGW_SESSION_LEAVE},
    {"second HELLO", 0, DGW_STATE_IDENTIFYING, 41250, DGW_SESSION_NOTHING},
    {"HELLO when ready", 1, DGW_STATE_READY, 41250, DGW_SESSION_NOTHING},
    {"bad HELLO when ready", 1, DGW_STATE_READY, 1, DGW_SESSION_NOTHING},
};

static void test_hello(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(hello_cases); i++) {
    struct dgw_session *s =
        hello_cases[i].with_session ? ready_session(5) : new_session();
    struct dgw_session_action a;

    dgw_session_on_hello(s, hello_cases[i].state, hello_cases[i].interval, &a);
    if (a.what != hello_cases[i].what)
      fail_msg("case \"%s\": action %d, expected %d", hello_cases[i].name,
               a.what, hello_cases[i].what);
    if (a.what == DGW_SESSION_LEAVE) {
      assert_int_equal(a.close, DGW_CLOSE_RESUME);
      assert_int_equal(a.error, DGW_ERR_PROTOCOL);
      assert_int_equal(a.close_code, 4000);
      assert_int_equal(a.wait_ms, -1);
    }
    dgw_session_free(s);
  }
}

/* ------------------------------------------------------ op 7, op 9 */

static const struct {
  const char *name;
  int with_session;
  int op; /* 7 or 9 */
  int resumable;
  enum dgw_close_action close;
  int64_t wait_ms; /* with random 0.5 in [1000, 5000] */
  const char *close_reason;
} leave_cases[] = {
    {"op 7 with a session", 1, 7, 0, DGW_CLOSE_RESUME, -1, "dgw: reconnecting"},
    {"op 7 before READY", 0, 7, 0, DGW_CLOSE_RESUME, -1, "dgw: reconnecting"},
    {"op 9 true with a session", 1, 9, 1, DGW_CLOSE_RESUME, -1,
     "dgw: reconnecting"},
    {"op 9 true, nothing to resume", 0, 9, 1, DGW_CLOSE_NEW_SESSION, 3000,
     "dgw: invalid session"},
    {"op 9 false with a session", 1, 9, 0, DGW_CLOSE_NEW_SESSION, 3000,
     "dgw: invalid session"},
    {"op 9 false before READY", 0, 9, 0, DGW_CLOSE_NEW_SESSION, 3000,
     "dgw: invalid session"},
};

static void test_reconnect_and_invalid_session(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(leave_cases); i++) {
    struct dgw_session *s =
        leave_cases[i].with_session ? ready_session(9) : new_session();
    struct dgw_session_action a;

    if (leave_cases[i].op == 7)
      dgw_session_on_reconnect(s, &a);
    else
      dgw_session_on_invalid_session(s, leave_cases[i].resumable, &a);
    if (a.what != DGW_SESSION_LEAVE || a.close != leave_cases[i].close ||
        a.wait_ms != leave_cases[i].wait_ms)
      fail_msg("case \"%s\": action %d close %d wait %lld", leave_cases[i].name,
               a.what, a.close, (long long)a.wait_ms);
    assert_int_equal(a.error, DGW_OK);
    assert_int_equal(a.close_code, 4000);
    assert_string_equal(a.close_reason, leave_cases[i].close_reason);
    dgw_session_free(s);
  }
}

/* The op 9 wait follows the injected randomness, inclusive of both ends. */
static void test_invalid_session_wait(void **state) {
  static const struct {
    double random01;
    int64_t wait_ms;
  } rows[] = {{0.0, 1000}, {0.25, 2000}, {0.999999, 5000}, {-1.0, 3000}};
  struct dgw_session *s = new_session();

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
    struct dgw_session_action a;

    fixed_random = rows[i].random01;
    dgw_session_on_invalid_session(s, 0, &a);
    assert_int_equal(a.wait_ms, rows[i].wait_ms);
  }
  dgw_session_free(s);
}

/* -------------------------------------------------------- dispatches */

static const struct {
  const char *name;
  enum dgw_state state;
  const char *event;
  int has_seq;
  int64_t seq;
  enum dgw_session_do what;
  enum dgw_session_note note;
  int64_t seq_after; /* the session was at 10 */
} dispatch_cases[] = {
    {"next in order", DGW_STATE_READY, "MESSAGE_CREATE", 1, 11,
     DGW_SESSION_DELIVER, DGW_SESSION_NOTE_NONE, 11},
    {"a gap", DGW_STATE_READY, "MESSAGE_CREATE", 1, 15, DGW_SESSION_DELIVER,
     DGW_SESSION_NOTE_SEQ_JUMP, 15},
    {"same seq again", DGW_STATE_READY, "MESSAGE_CREATE", 1, 10,
     DGW_SESSION_DROP, DGW_SESSION_NOTE_REPLAY, 10},
    {"an old seq", DGW_STATE_READY, "MESSAGE_CREATE", 1, 3, DGW_SESSION_DROP,
     DGW_SESSION_NOTE_REPLAY, 10},
    {"seq 0", DGW_STATE_READY, "MESSAGE_CREATE", 1, 0, DGW_SESSION_DROP,
     DGW_SESSION_NOTE_REPLAY, 10},
    {"INT64_MAX", DGW_STATE_READY, "MESSAGE_CREATE", 1, INT64_MAX,
     DGW_SESSION_DROP, DGW_SESSION_NOTE_SEQ_MAX, 10},
    {"no seq", DGW_STATE_READY, "MESSAGE_CREATE", 0, 0, DGW_SESSION_DELIVER,
     DGW_SESSION_NOTE_NONE, 10},
    {"no name", DGW_STATE_READY, NULL, 1, 11, DGW_SESSION_DROP,
     DGW_SESSION_NOTE_NO_NAME, 10},
    {"while closing", DGW_STATE_CLOSING, "MESSAGE_CREATE", 1, 11,
     DGW_SESSION_DROP, DGW_SESSION_NOTE_CLOSED, 10},
    {"once closed", DGW_STATE_CLOSED, "MESSAGE_CREATE", 1, 11, DGW_SESSION_DROP,
     DGW_SESSION_NOTE_CLOSED, 10},
    {"replayed while resuming", DGW_STATE_RESUMING, "MESSAGE_CREATE", 1, 9,
     DGW_SESSION_DROP, DGW_SESSION_NOTE_REPLAY, 10},
    {"RESUMED", DGW_STATE_RESUMING, "RESUMED", 1, 11, DGW_SESSION_DELIVER,
     DGW_SESSION_NOTE_NONE, 11},
    {"READY restarts the sequence", DGW_STATE_IDENTIFYING, "READY", 1, 1,
     DGW_SESSION_DELIVER, DGW_SESSION_NOTE_NONE, 1},
    {"READY without seq", DGW_STATE_IDENTIFYING, "READY", 0, 0,
     DGW_SESSION_DELIVER, DGW_SESSION_NOTE_NONE, 0},
};

static void test_dispatch(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(dispatch_cases); i++) {
    struct dgw_session *s = ready_session(10);
    struct dgw_session_action a;
    const char *ev = dispatch_cases[i].event;

    dgw_session_on_dispatch(s, dispatch_cases[i].state, ev,
                            dispatch_cases[i].has_seq, dispatch_cases[i].seq,
                            &a);
    if (a.what != dispatch_cases[i].what || a.note != dispatch_cases[i].note ||
        dgw_session_seq(s) != dispatch_cases[i].seq_after)
      fail_msg("case \"%s\": action %d note %d seq %lld",
               dispatch_cases[i].name, a.what, a.note,
               (long long)dgw_session_seq(s));
    assert_int_equal(a.ready, ev != NULL && strcmp(ev, "READY") == 0 &&
                                  a.what == DGW_SESSION_DELIVER);
    assert_int_equal(a.resumed, ev != NULL && strcmp(ev, "RESUMED") == 0);
    assert_int_equal(a.prev_seq, 10);
    /* READY forgets the old session until dgw_session_ready(). */
    if (a.ready)
      assert_null(dgw_session_id(s));
    else
      assert_string_equal(dgw_session_id(s), SID);
    dgw_session_free(s);
  }
}

/* READY's fields: refused ones leave the session unresumable or on the
 * configured URL. */
static const struct {
  const char *name;
  const char *session_id;
  const char *resume_url;
  const char *configured;
  int bad_id, bad_url;
  int resumable;
  const char *connect_url;
} ready_cases[] = {
    {"both good", SID, RESUME_URL, CONFIGURED, 0, 0, 1, RESUME_URL},
    {"no resume URL", SID, NULL, CONFIGURED, 0, 0, 1, CONFIGURED},
    {"no session id", NULL, RESUME_URL, CONFIGURED, 0, 0, 0, CONFIGURED},
    {"session id with a quote", "ab\"c", RESUME_URL, CONFIGURED, 1, 0, 0,
     CONFIGURED},
    {"empty session id", "", NULL, CONFIGURED, 1, 0, 0, CONFIGURED},
    {"ws:// after wss://", SID, "ws://resume.example", CONFIGURED, 0, 1, 1,
     CONFIGURED},
    {"ws:// after ws://", SID, "ws://resume.example", "ws://127.0.0.1:1", 0, 0,
     1, "ws://resume.example"},
    {"not a URL", SID, "http://x", CONFIGURED, 0, 1, 1, CONFIGURED},
};

static void test_ready_fields(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(ready_cases); i++) {
    struct dgw_session *s = new_session();
    struct dgw_session_action a;
    int bad_id = -1, bad_url = -1;

    dgw_session_identified(s);
    dgw_session_on_dispatch(s, DGW_STATE_IDENTIFYING, "READY", 1, 1, &a);
    assert_int_equal(dgw_session_ready(s, ready_cases[i].session_id,
                                       ready_cases[i].resume_url,
                                       ready_cases[i].configured, &bad_id,
                                       &bad_url),
                     DGW_OK);
    if (bad_id != ready_cases[i].bad_id || bad_url != ready_cases[i].bad_url ||
        dgw_session_resumable(s) != ready_cases[i].resumable)
      fail_msg("case \"%s\": bad_id %d bad_url %d resumable %d",
               ready_cases[i].name, bad_id, bad_url, dgw_session_resumable(s));
    assert_string_equal(dgw_session_connect_url(s, ready_cases[i].configured),
                        ready_cases[i].connect_url);
    dgw_session_free(s);
  }
}

/* ------------------------------------------------- unreadable payloads */

static void test_bad_payload(void **state) {
  struct dgw_session *s = ready_session(10);
  struct dgw_session_action a;

  (void)state;
  /* A dispatch json-c can read past our limits: skipped, seq kept. */
  dgw_session_on_bad_payload(s, DGW_ERR_JSON, "x", 11, &a);
  assert_int_equal(a.what, DGW_SESSION_DROP);
  assert_int_equal(a.note, DGW_SESSION_NOTE_SKIPPED);
  assert_int_equal(dgw_session_seq(s), 11);
  /* An old or impossible s is no progress: resume. */
  dgw_session_on_bad_payload(s, DGW_ERR_JSON, "x", 11, &a);
  assert_int_equal(a.what, DGW_SESSION_LEAVE);
  assert_int_equal(a.close, DGW_CLOSE_RESUME);
  assert_int_equal(a.error, DGW_ERR_JSON);
  assert_string_equal(a.reason, "x");
  dgw_session_on_bad_payload(s, DGW_ERR_JSON, "x", INT64_MAX, &a);
  assert_int_equal(a.close, DGW_CLOSE_RESUME);
  /* The third in a row with no event between: a new session. */
  dgw_session_on_bad_payload(s, DGW_ERR_INFLATE, "zlib", -1, &a);
  assert_int_equal(a.what, DGW_SESSION_LEAVE);
  assert_int_equal(a.close, DGW_CLOSE_NEW_SESSION);
  assert_int_equal(a.note, DGW_SESSION_NOTE_POISONED);
  assert_string_equal(a.close_reason, "dgw: unreadable stream");
  /* Counting starts again; an event in between clears the strikes, and
   * RESUMED alone does not. */
  dgw_session_on_bad_payload(s, DGW_ERR_JSON, "x", -1, &a);
  dgw_session_on_bad_payload(s, DGW_ERR_JSON, "x", -1, &a);
  dgw_session_on_dispatch(s, DGW_STATE_RESUMING, "RESUMED", 1, 12, &a);
  dgw_session_on_bad_payload(s, DGW_ERR_JSON, "x", -1, &a);
  assert_int_equal(a.close, DGW_CLOSE_NEW_SESSION);
  dgw_session_on_bad_payload(s, DGW_ERR_JSON, "x", -1, &a);
  dgw_session_on_bad_payload(s, DGW_ERR_JSON, "x", -1, &a);
  dgw_session_on_dispatch(s, DGW_STATE_READY, "TYPING_START", 1, 13, &a);
  dgw_session_on_bad_payload(s, DGW_ERR_JSON, "x", -1, &a);
  assert_int_equal(a.close, DGW_CLOSE_RESUME);
  dgw_session_free(s);
}

/* ------------------------------------------------------ every close */

/* Every row of policy.c's table, a few unknown codes, and errors without a
 * close frame: the action, and whether the next connection resumes. */
static const struct {
  int err;
  uint16_t code;
  enum dgw_close_action action;
} close_cases[] = {
    {DGW_ERR_CLOSED, 1000, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1001, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1002, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1003, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1006, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1007, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1008, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1009, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1011, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1012, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1013, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 1014, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 4000, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 4001, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 4002, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 4003, DGW_CLOSE_RESUME}, /* issue 15: resume first */
    {DGW_ERR_CLOSED, 4004, DGW_CLOSE_FATAL},
    {DGW_ERR_CLOSED, 4005, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 4006, DGW_CLOSE_NEW_SESSION},
    {DGW_ERR_CLOSED, 4007, DGW_CLOSE_NEW_SESSION},
    {DGW_ERR_CLOSED, 4008, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 4009, DGW_CLOSE_NEW_SESSION},
    {DGW_ERR_CLOSED, 4010, DGW_CLOSE_FATAL},
    {DGW_ERR_CLOSED, 4011, DGW_CLOSE_FATAL},
    {DGW_ERR_CLOSED, 4012, DGW_CLOSE_FATAL},
    {DGW_ERR_CLOSED, 4013, DGW_CLOSE_FATAL},
    {DGW_ERR_CLOSED, 4014, DGW_CLOSE_FATAL},
    {DGW_ERR_CLOSED, 4015, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 3000, DGW_CLOSE_RESUME},
    {DGW_ERR_CLOSED, 0, DGW_CLOSE_RESUME},
    /* No close frame: the code is not looked at. */
    {DGW_ERR_CONNECTION_LOST, 4004, DGW_CLOSE_RESUME},
    {DGW_ERR_TIMEOUT, 0, DGW_CLOSE_RESUME},
    {DGW_ERR_PROTOCOL, 0, DGW_CLOSE_RESUME},
    {DGW_ERR_TLS, 0, DGW_CLOSE_RESUME},
};

static void test_every_close(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(close_cases); i++) {
    struct dgw_session *s = ready_session(7);
    struct dgw_session_retry r;
    enum dgw_close_action act =
        dgw_session_on_close(s, close_cases[i].err, close_cases[i].code, 1);

    dgw_session_healthy(s); /* it ran a while */

    if (act != close_cases[i].action)
      fail_msg("err %d code %u: action %d", close_cases[i].err,
               close_cases[i].code, act);
    dgw_session_lost(s, close_cases[i].err, 1, act, -1, &r);
    assert_int_equal(r.action, act);
    assert_int_equal(r.offline, 0);
    assert_int_equal(r.delay_ms, 0); /* a healthy session: straight back */
    assert_int_equal(r.will_resume, act == DGW_CLOSE_RESUME);
    assert_int_equal(r.session_dropped, act == DGW_CLOSE_NEW_SESSION);
    if (act == DGW_CLOSE_NEW_SESSION) {
      assert_null(dgw_session_id(s));
      assert_int_equal(dgw_session_seq(s), 0);
    } else {
      /* Fatal keeps it for the report, until dgw_session_forget(). */
      assert_string_equal(dgw_session_id(s), SID);
      assert_int_equal(dgw_session_seq(s), 7);
    }
    dgw_session_free(s);
  }
}

/* Issue 15: close 4003 (a payload sent before identifying) leaves the
 * session alive, so the shard RESUMEs first (it started a new session,
 * spending an IDENTIFY of the daily budget).  When the gateway did drop
 * the session it answers the RESUME with op 9 false: then the random 1-5 s
 * wait and IDENTIFY on the configured URL. */
static void test_4003_resumes_first(void **state) {
  struct dgw_session *s = ready_session(7);
  struct dgw_session_action a;
  struct dgw_session_retry r;
  enum dgw_close_action act;

  (void)state;
  dgw_session_healthy(s);
  act = dgw_session_on_close(s, DGW_ERR_CLOSED, 4003, 1);
  assert_int_equal(act, DGW_CLOSE_RESUME);
  dgw_session_lost(s, DGW_ERR_CLOSED, 1, act, -1, &r);
  assert_true(r.will_resume);
  assert_int_equal(r.session_dropped, 0);
  assert_int_equal(r.delay_ms, 0);
  dgw_session_on_hello(s, DGW_STATE_HELLO, 41250, &a);
  assert_int_equal(a.what, DGW_SESSION_RESUME);
  assert_string_equal(dgw_session_id(s), SID);
  assert_int_equal(dgw_session_seq(s), 7);
  /* The gateway had invalidated it. */
  dgw_session_on_invalid_session(s, 0, &a);
  assert_int_equal(a.what, DGW_SESSION_LEAVE);
  assert_int_equal(a.close, DGW_CLOSE_NEW_SESSION);
  assert_in_range(a.wait_ms, 1000, 5000);
  dgw_session_lost(s, DGW_OK, 1, a.close, a.wait_ms, &r);
  assert_true(r.session_dropped);
  assert_false(r.will_resume);
  assert_in_range(r.delay_ms, 1000, 5000);
  assert_string_equal(dgw_session_connect_url(s, CONFIGURED), CONFIGURED);
  dgw_session_on_hello(s, DGW_STATE_HELLO, 41250, &a);
  assert_int_equal(a.what, DGW_SESSION_IDENTIFY);
  dgw_session_free(s);
}

/* Network errors before the upgrade are "offline"; after it they are not,
 * and other errors never are. */
static void test_offline(void **state) {
  static const struct {
    int err;
    int opened;
    int offline;
  } rows[] = {
      {DGW_ERR_DNS, 0, 1},     {DGW_ERR_CONNECT, 0, 1},
      {DGW_ERR_TIMEOUT, 0, 1}, {DGW_ERR_TIMEOUT, 1, 0},
      {DGW_ERR_TLS, 0, 0},     {DGW_ERR_HANDSHAKE, 0, 0},
      {DGW_ERR_CLOSED, 0, 0},  {DGW_OK, 0, 0},
      {DGW_ERR_CONNECT, 1, 0},
  };

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
    struct dgw_session *s = new_session();
    struct dgw_session_retry r;

    dgw_session_lost(s, rows[i].err, rows[i].opened, DGW_CLOSE_RESUME, -1, &r);
    if (r.offline != rows[i].offline)
      fail_msg("row %zu: offline %d", i, r.offline);
    assert_int_equal(r.will_resume, 0); /* nothing to resume yet */
    dgw_session_free(s);
  }
}

/* ------------------------------------------------------------ backoff */

/* Failures in a row from a fresh start: base * 2^n with equal jitter,
 * capped, from the very first (issue 15: a fresh start whose first
 * connection failed was retried at once, 0 ms, as if it had been healthy);
 * after the healthy mark, 0 ms once, then the backoff again. */
static void test_backoff_growth_and_cap(void **state) {
  /* With random 0.5: half fixed + a quarter = 3/4 of each step. */
  static const uint32_t expected[] = {750,   1500,  3000,  6000,  12000,
                                      24000, 45000, 45000, 45000, 45000};
  struct dgw_session *s = new_session();
  struct dgw_session_retry r;

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(expected); i++) {
    dgw_session_lost(s, DGW_ERR_CONNECT, 0, DGW_CLOSE_RESUME, -1, &r);
    if (r.delay_ms != expected[i])
      fail_msg("failure %zu: %u ms, expected %u", i, r.delay_ms, expected[i]);
    assert_int_equal(dgw_session_failures(s), i + 1);
  }
  fixed_random = 0.0;
  dgw_session_lost(s, DGW_ERR_CONNECT, 0, DGW_CLOSE_RESUME, -1, &r);
  assert_int_equal(r.delay_ms, 30000); /* the cap's fixed half */
  fixed_random = 0.9999999;
  dgw_session_lost(s, DGW_ERR_CONNECT, 0, DGW_CLOSE_RESUME, -1, &r);
  assert_in_range(r.delay_ms, 59990, 60000);
  dgw_session_healthy(s);
  dgw_session_lost(s, DGW_ERR_CONNECT, 0, DGW_CLOSE_RESUME, -1, &r);
  assert_int_equal(r.delay_ms, 0);
  dgw_session_lost(s, DGW_ERR_CONNECT, 0, DGW_CLOSE_RESUME, -1, &r);
  assert_in_range(r.delay_ms, 500, 1000);
  dgw_session_free(s);
}

/* A forced wait (op 9) is a floor: it never shortens the backoff. */
static void test_forced_wait_is_a_floor(void **state) {
  static const struct {
    uint32_t failures_before;
    int64_t wait_ms;
    uint32_t delay_ms;
  } rows[] = {
      {0, 3000, 3000},     /* after a healthy session: the wait */
      {1, 3000, 3000},     /* backoff 750 < wait */
      {5, 3000, 12000},    /* backoff 12000 > wait */
      {9, 100000, 100000}, /* over the cap: the wait */
      {3, -1, 3000},       /* no forced wait */
  };

  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(rows); i++) {
    struct dgw_session *s = new_session();
    struct dgw_session_retry r;

    dgw_session_healthy(s); /* the failures follow a healthy session */
    for (uint32_t f = 0; f < rows[i].failures_before; f++)
      dgw_session_lost(s, DGW_ERR_CONNECT, 0, DGW_CLOSE_RESUME, -1, &r);
    dgw_session_lost(s, DGW_OK, 1, DGW_CLOSE_NEW_SESSION, rows[i].wait_ms, &r);
    if (r.delay_ms != rows[i].delay_ms)
      fail_msg("row %zu: %u ms", i, r.delay_ms);
    dgw_session_free(s);
  }
}

/* Fatal: no retry delay, and the session stays until forgotten. */
static void test_fatal(void **state) {
  struct dgw_session *s = ready_session(3);
  struct dgw_session_retry r;

  (void)state;
  dgw_session_lost(s, DGW_ERR_CONNECT, 0, DGW_CLOSE_RESUME, -1, &r);
  dgw_session_lost(s, DGW_ERR_CLOSED, 1, DGW_CLOSE_FATAL, -1, &r);
  assert_int_equal(r.delay_ms, 0);
  assert_int_equal(r.will_resume, 0);
  assert_string_equal(dgw_session_id(s), SID);
  dgw_session_forget(s);
  assert_null(dgw_session_id(s));
  assert_null(dgw_session_resume_url(s));
  assert_int_equal(dgw_session_seq(s), 0);
  dgw_session_free(s);
}

/* ----------------------------------------------- resume or identify */

static void test_resume_or_identify(void **state) {
  struct dgw_session *s = new_session();
  struct dgw_session_action a;
  struct dgw_session_retry r;

  (void)state;
  /* Fresh: identify on the configured URL. */
  dgw_session_on_hello(s, DGW_STATE_HELLO, 41250, &a);
  assert_int_equal(a.what, DGW_SESSION_IDENTIFY);
  assert_string_equal(dgw_session_connect_url(s, CONFIGURED), CONFIGURED);
  dgw_session_identified(s);
  dgw_session_on_dispatch(s, DGW_STATE_IDENTIFYING, "READY", 1, 1, &a);
  dgw_session_ready(s, SID, RESUME_URL, CONFIGURED, NULL, NULL);
  /* A resumable loss: resume on the resume URL. */
  dgw_session_lost(s, DGW_ERR_CONNECTION_LOST, 1, DGW_CLOSE_RESUME, -1, &r);
  assert_true(r.will_resume);
  assert_string_equal(dgw_session_connect_url(s, CONFIGURED), RESUME_URL);
  dgw_session_on_hello(s, DGW_STATE_HELLO, 41250, &a);
  assert_int_equal(a.what, DGW_SESSION_RESUME);
  /* Three failed connections to it: the configured URL, still resuming. */
  for (int i = 0; i < DGW_SESSION_RESUME_URL_MAX_FAILURES; i++) {
    assert_string_equal(dgw_session_connect_url(s, CONFIGURED), RESUME_URL);
    dgw_session_on_close(s, DGW_ERR_CONNECT, 0, 0);
  }
  assert_string_equal(dgw_session_connect_url(s, CONFIGURED), CONFIGURED);
  assert_true(dgw_session_resumable(s));
  /* RESUMED resets that count. */
  dgw_session_on_dispatch(s, DGW_STATE_RESUMING, "RESUMED", 1, 2, &a);
  assert_string_equal(dgw_session_connect_url(s, CONFIGURED), RESUME_URL);
  /* A resume URL that cannot even be connected to is dropped at once. */
  dgw_session_connect_failed(s, dgw_session_connect_url(s, CONFIGURED));
  assert_string_equal(dgw_session_connect_url(s, CONFIGURED), CONFIGURED);
  dgw_session_connect_failed(s, CONFIGURED); /* harmless */
  /* A new session: identify, on the configured URL. */
  dgw_session_lost(s, DGW_ERR_CLOSED, 1, DGW_CLOSE_NEW_SESSION, -1, &r);
  assert_false(r.will_resume);
  assert_false(dgw_session_resumable(s));
  dgw_session_on_hello(s, DGW_STATE_HELLO, 41250, &a);
  assert_int_equal(a.what, DGW_SESSION_IDENTIFY);
  dgw_session_free(s);
}

static void test_restore(void **state) {
  struct dgw_session *s = new_session();
  struct dgw_session_action a;

  (void)state;
  assert_int_equal(dgw_session_restore(s, "bad id!", 1, NULL, CONFIGURED),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_session_restore(s, SID, -1, NULL, CONFIGURED),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      dgw_session_restore(s, SID, 1, "ws://weaker.example", CONFIGURED),
      DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_session_restore(s, NULL, 1, NULL, CONFIGURED),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_false(dgw_session_resumable(s));
  assert_int_equal(dgw_session_restore(s, SID, 42, RESUME_URL, CONFIGURED),
                   DGW_OK);
  assert_int_equal(dgw_session_seq(s), 42);
  dgw_session_on_hello(s, DGW_STATE_HELLO, 41250, &a);
  assert_int_equal(a.what, DGW_SESSION_RESUME);
  assert_string_equal(dgw_session_connect_url(s, CONFIGURED), RESUME_URL);
  dgw_session_free(s);
}

/* --------------------------------------------- success resets backoff */

/* Issue 20: a connection that came up (READY or RESUMED) and delivered an
 * event of its own is a success, so its loss reconnects at once however
 * many failures came before; one that came up and delivered nothing, or
 * never came up, still backs off.  Steps: R = READY, M = RESUMED, E = a
 * new event, O = an old (replayed, dropped) event. */
static const struct {
  const char *name;
  uint32_t failures_before;
  const char *steps;
  uint32_t delay_ms; /* base 1000, random 0.5 */
} success_cases[] = {
    {"resumed, then events", 3, "ME", 0},
    {"replay, then resumed", 3, "EM", 0},
    {"ready, then an event", 2, "RE", 0},
    {"resumed, nothing new", 3, "M", 3000},
    {"resumed, only duplicates", 3, "MOO", 3000},
    {"events but never resumed", 3, "EE", 3000},
    {"ready, nothing", 2, "R", 1500},
    {"never came up", 4, "", 6000},
    {"no failures before", 0, "M", 0},
};

static void test_success_resets_backoff(void **state) {
  (void)state;
  for (size_t i = 0; i < ARRAY_LEN(success_cases); i++) {
    struct dgw_session *s = ready_session(10);
    struct dgw_session_action a;
    struct dgw_session_retry r;
    int64_t seq = 10;

    dgw_session_healthy(s); /* the failures follow a healthy session */
    for (uint32_t f = 0; f < success_cases[i].failures_before; f++)
      dgw_session_lost(s, DGW_ERR_CONNECT, 0, DGW_CLOSE_RESUME, -1, &r);
    for (const char *p = success_cases[i].steps; *p != '\0'; p++) {
      if (*p == 'R')
        dgw_session_on_dispatch(s, DGW_STATE_IDENTIFYING, "READY", 1, seq = 1,
                                &a);
      else if (*p == 'M')
        dgw_session_on_dispatch(s, DGW_STATE_RESUMING, "RESUMED", 0, 0, &a);
      else if (*p == 'E')
        dgw_session_on_dispatch(s, DGW_STATE_READY, "MESSAGE_CREATE", 1, ++seq,
                                &a);
      else
        dgw_session_on_dispatch(s, DGW_STATE_READY, "MESSAGE_CREATE", 1, 1, &a);
    }
    dgw_session_lost(s, DGW_ERR_CONNECTION_LOST, 1, DGW_CLOSE_RESUME, -1, &r);
    if (r.delay_ms != success_cases[i].delay_ms)
      fail_msg("case \"%s\": %u ms, expected %u", success_cases[i].name,
               r.delay_ms, success_cases[i].delay_ms);
    dgw_session_free(s);
  }
}

/* Ten faults in a row, each after a resume that streamed: every one
 * reconnects at once; then a connection that fails before coming up backs
 * off from the start again, not from ten. */
static void test_ten_faults_with_progress(void **state) {
  struct dgw_session *s = ready_session(1);
  struct dgw_session_action a;
  struct dgw_session_retry r;
  int64_t seq = 1;

  (void)state;
  for (int i = 0; i < 10; i++) {
    dgw_session_on_dispatch(s, DGW_STATE_READY, "MESSAGE_CREATE", 1, ++seq, &a);
    dgw_session_lost(s, DGW_ERR_CLOSED, 1, DGW_CLOSE_RESUME, -1, &r);
    if (r.delay_ms != 0)
      fail_msg("fault %d: %u ms", i, r.delay_ms);
    assert_true(r.will_resume);
    dgw_session_on_dispatch(s, DGW_STATE_RESUMING, "RESUMED", 0, 0, &a);
  }
  dgw_session_on_dispatch(s, DGW_STATE_READY, "MESSAGE_CREATE", 1, ++seq, &a);
  dgw_session_lost(s, DGW_ERR_CLOSED, 1, DGW_CLOSE_RESUME, -1, &r);
  assert_int_equal(r.delay_ms, 0);
  dgw_session_lost(s, DGW_ERR_CONNECT, 0, DGW_CLOSE_RESUME, -1, &r);
  assert_int_equal(r.delay_ms, 750);
  dgw_session_lost(s, DGW_ERR_CONNECT, 0, DGW_CLOSE_RESUME, -1, &r);
  assert_int_equal(r.delay_ms, 1500);
  dgw_session_free(s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_hello),
      cmocka_unit_test(test_reconnect_and_invalid_session),
      cmocka_unit_test(test_invalid_session_wait),
      cmocka_unit_test(test_dispatch),
      cmocka_unit_test(test_ready_fields),
      cmocka_unit_test(test_bad_payload),
      cmocka_unit_test(test_every_close),
      cmocka_unit_test(test_4003_resumes_first),
      cmocka_unit_test(test_offline),
      cmocka_unit_test(test_backoff_growth_and_cap),
      cmocka_unit_test(test_forced_wait_is_a_floor),
      cmocka_unit_test(test_fatal),
      cmocka_unit_test(test_resume_or_identify),
      cmocka_unit_test(test_restore),
      cmocka_unit_test(test_success_resets_backoff),
      cmocka_unit_test(test_ten_faults_with_progress),
  };

  return cmocka_run_group_tests(tests, NULL, NULL);
}
