/*
 * The one fixture of the integration tests: a client against the
 * in-process mock gateway on one event loop, and recorders of what each
 * side saw.  test_gateway, test_commands_gw and test_plugin build on it;
 * a test program adds only what is its own (predicates, and at most a
 * hook on dispatch).
 *
 * Every wait has a deadline (see fx_wait_for), every failure is a cmocka
 * failure, and fx_free() (or fx_teardown) releases everything, the
 * client included, whatever state the test left it in.
 */
#ifndef DGW_TEST_FIXTURE_H
#define DGW_TEST_FIXTURE_H

#include "harness.h"

#include "mock.h"

struct json_object;

#define FX_MAX_SEEN 512      /* dispatches the application saw */
#define FX_MAX_BEATS 256     /* heartbeats the mock timed */
#define FX_MAX_ACTIVITY 1024 /* op 3 activity names the mock saw */
#define FX_MAX_SENT 64       /* ops the mock saw, heartbeats aside */
#define FX_MAX_LINES 2048    /* log lines kept */
#define FX_MAX_OP 64         /* ops counted by number: 0..63 */

struct fx;

/* A test program's extra look at each dispatch the application saw,
 * called after the fixture recorded it (see struct fx, on_dispatch). */
typedef void (*fx_dispatch_fn)(struct fx *f, struct dgw_gateway *gw,
                               const struct dgw_event *ev);

struct fx {
  struct event_base *base;
  struct dgw_mock *mock;
  struct dgw_client *client; /* NULL until fx_client_new() or fx_start() */
  struct dgw_options *opt;   /* the client is made from these */
  struct dgw_callbacks *cb;  /* every recorder below, user data `f` */

  /* --- what the application saw (the client's callbacks) --- */
  enum dgw_state state_log[256]; /* each state entered, in order */
  int nstates;
  double hello_ms; /* now_ms() when a shard first reached HELLO */
  int connecting, ready, resumed, disconnects, fatal;
  struct dgw_disconnect last_dc; /* .reason points at last_dc_reason */
  char last_dc_reason[256];
  uint32_t retry_delays[64]; /* each disconnect's retry_in_ms */
  int nretry;
  uint16_t fatal_code;
  char fatal_meaning[64];
  int64_t seqs[FX_MAX_SEEN]; /* each dispatch's seq and name */
  char names[FX_MAX_SEEN][32];
  int nseen; /* counts on past FX_MAX_SEEN */
  /* The answer of the last member request and voice join made with
   * fx_on_members / fx_on_voice (results held until fx_free). */
  int members_done, members_err;
  struct json_object *members_result;
  int voice_done, voice_err;
  struct json_object *voice_state, *voice_server;
  /* Every log line of the client (and any the test adds with
   * fx_log_line), in order. */
  char *lines[FX_MAX_LINES];
  int nlines;

  /* --- what the mock saw --- */
  int count[FX_MAX_OP];       /* payloads by op */
  char last[FX_MAX_OP][4200]; /* the last payload of each op */
  int sent_ops[FX_MAX_SENT];  /* ops in order, heartbeats aside */
  int nsent;
  double beat_ms[FX_MAX_BEATS];  /* when each heartbeat arrived */
  char beat_d[FX_MAX_BEATS][24]; /* and its d */
  int nbeats;
  int64_t resume_seq; /* the last RESUME's seq and session_id */
  char resume_session[64];
  char activity[FX_MAX_ACTIVITY][16]; /* op 3: the first activity's name */
  int nactivity;
  int close_codes[64]; /* each close code the client sent (0: none) */
  int ncloses;

  /* --- the order of events (READY and RESUMED aside) --- */
  int since_up;     /* events delivered since the last READY or RESUMED */
  int64_t last_seq; /* the seq of the last one */
  int out_of_order; /* events whose seq was not above the one before */

  /* --- behaviour switches, off by default --- */
  /* The recorder of on_dispatch (and any test handler that looks) frees
   * the client at this seq. */
  int64_t free_on_seq;
  int close_on_ready;         /* on_ready calls dgw_gateway_close() */
  int terminate_in_dc;        /* on_disconnect calls dgw_gateway_terminate() */
  int op9_on_identify;        /* the mock answers every IDENTIFY with op 9 */
  int fatal_on_op;            /* the mock closes 4004 when this op arrives */
  int drop_on_resuming;       /* the mock drops every connection when a shard
                                 enters RESUMING (right after HELLO) */
  fx_dispatch_fn on_dispatch; /* the program's own look at each event */

  /* A target for the predicate of the moment (a count to reach). */
  int want;
};

/*
 * Starts a mock on a new event base (configured by `mc`, which may be
 * NULL; its heartbeat interval defaults to 30 s, its log and hooks are
 * the fixture's) and makes options that point a client at it: token
 * "t0ken.SECRET", intents DGW_INTENTS_ALL, quick re-IDENTIFY, reconnect and op 9 waits of
 * tens of milliseconds, and connect/close timeouts scaled by time_scale().  The
 * callbacks are the fixture's recorders.  The test may change f->opt and
 * f->cb before the client is made.  Fails the test on error.  Free with
 * fx_free().
 */
struct fx *fx_new(struct dgw_mock_config *mc);

/* Makes f->client from f->opt and f->cb (user data `f`), not started.
 * Fails the test on error. */
void fx_client_new(struct fx *f);

/* Makes the client unless there is one, starts it and returns its shard
 * 0.  Fails the test when it does not start. */
struct dgw_gateway *fx_start(struct fx *f);

/* Frees the client (when there is one), the mock, the options, the
 * callbacks, the held results and log lines, the base and `f`. */
void fx_free(struct fx *f);

/* cmocka setup and teardown: *state = fx_new(NULL); fx_free(*state). */
int fx_setup(void **state);
int fx_teardown(void **state);

/* Runs the loop until *counter >= n or `seconds` (scaled) pass; returns
 * whether it got there. */
int fx_wait_count(struct fx *f, const int *counter, int n, double seconds);

/* Runs the loop until the client delivered `n` events (its stats'
 * dispatches) or `seconds` (scaled) pass; returns whether it got there. */
int fx_wait_dispatches(struct fx *f, uint64_t n, double seconds);

/* Runs the loop until pred(f) holds or `seconds` (scaled) pass; returns
 * pred(f). */
int fx_wait_for(struct fx *f, int (*pred)(struct fx *), double seconds);

/* Starts the client and takes shard 0 through one of each: READY, a
 * dropped connection and its RESUME, then a fatal close (4004).  Fails
 * the test when a step does not come within 5 s (scaled). */
void fx_ready_resume_fatal(struct fx *f);

/* Predicates for fx_wait_for: at least one READY, RESUMED, fatal close,
 * disconnect; shard 0 CLOSED (0 when there is no client); the client
 * freed (f->client NULL). */
int fx_is_ready(struct fx *f);
int fx_is_resumed(struct fx *f);
int fx_has_fatal(struct fx *f);
int fx_has_disconnect(struct fx *f);
int fx_is_closed(struct fx *f);
int fx_client_gone(struct fx *f);

/* Recorders for dgw_gateway_request_members() and
 * dgw_gateway_update_voice_state(), user data `f`: they fill
 * f->members_* and f->voice_*. */
void fx_on_members(struct dgw_gateway *gw, int error,
                   struct json_object *result, void *ud);
void fx_on_voice(struct dgw_gateway *gw, int error, struct json_object *st,
                 struct json_object *sv, void *ud);

/* Adds a copy of `line` to f->lines (dropped past FX_MAX_LINES). */
void fx_log_line(struct fx *f, const char *line);

/* The index of the first log line at or after `from` containing
 * `needle`, or -1. */
int fx_find_line(struct fx *f, int from, const char *needle);

/* How many log lines contain `needle`. */
int fx_count_lines(struct fx *f, const char *needle);

/* The client's counters through the public dgw_client_stats(); fails the
 * test when the call fails or there is no client. */
struct dgw_client_stats fx_stats(const struct fx *f);

/* How many plugins the client refused to load (the router's count). */
size_t fx_plugins_refused(const struct fx *f);

#endif /* DGW_TEST_FIXTURE_H */
