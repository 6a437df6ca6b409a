/*
 * The session core of one shard: what to do on HELLO, READY, RESUMED,
 * op 7, op 9, each close, a dispatch with an old seq, an unreadable
 * payload; resume or identify; the backoff.  Like nghttp2's session it
 * does no I/O and keeps no timer: each input returns an action that the
 * shard (gateway.c) carries out.  Time never enters; randomness (the
 * backoff and op 9 jitter) comes from a function in the config, so tests
 * drive it from tables.
 *
 * It holds the session id, the last sequence delivered, the resume URL,
 * the failure count behind the backoff, the resume-URL failure count and
 * the unreadable-payload strikes.  Internal to dgw.
 */
#ifndef DGW_SESSION_H
#define DGW_SESSION_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

/* The close code for connections we leave but whose session we keep. */
#define DGW_SESSION_RECONNECT_CODE 4000
/* After this many failed connections to resume_gateway_url in a row, the
 * configured gateway URL is used (still resuming). */
#define DGW_SESSION_RESUME_URL_MAX_FAILURES 3
/* Unreadable payloads in a row, with no event delivered between, after
 * which the stream counts as poisoned and a new session starts. */
#define DGW_SESSION_POISON_STRIKES 3
/* HELLO's heartbeat_interval bounds, in ms: no beat storms, no interval so
 * long the session would time out anyway. */
#define DGW_SESSION_HELLO_MIN_MS 50
#define DGW_SESSION_HELLO_MAX_MS 3600000

/* A uniform double in [0,1); `user_data` as given in the config. */
typedef double (*dgw_session_random_fn)(void *user_data);

struct dgw_session_config {
  uint32_t backoff_base_ms, backoff_max_ms; /* see dgw_backoff_ms() */
  uint32_t invalid_min_ms, invalid_max_ms;  /* op 9's wait before IDENTIFY */
  dgw_session_random_fn random01;           /* NULL: dgw_random01() */
  void *random_user_data;
};

/* What the shard does next. */
enum dgw_session_do {
  DGW_SESSION_NOTHING = 0, /* ignore the input */
  DGW_SESSION_IDENTIFY,    /* ask the identify queue; IDENTIFY when granted */
  DGW_SESSION_RESUME,      /* send RESUME (dgw_session_id(), _seq()) now */
  /* Close this connection with close_code/close_reason in the background,
   * then report the loss: dgw_session_lost(error, close, wait_ms). */
  DGW_SESSION_LEAVE,
  DGW_SESSION_DELIVER, /* hand the dispatch to the owner */
  DGW_SESSION_DROP,    /* drop the dispatch; `note` says why */
};

/* What the shard may log about the input (the core itself never logs). */
enum dgw_session_note {
  DGW_SESSION_NOTE_NONE = 0,
  DGW_SESSION_NOTE_NO_NAME,  /* a dispatch without t (dropped) */
  DGW_SESSION_NOTE_SEQ_MAX,  /* a dispatch with s = INT64_MAX (dropped) */
  DGW_SESSION_NOTE_REPLAY,   /* s already delivered (dropped) */
  DGW_SESSION_NOTE_SEQ_JUMP, /* delivered, but s skipped past prev_seq + 1 */
  DGW_SESSION_NOTE_SKIPPED,  /* an unreadable dispatch skipped, its s kept */
  DGW_SESSION_NOTE_POISONED, /* unreadable payloads in a row: new session */
  DGW_SESSION_NOTE_CLOSED,   /* the shard is closing: nothing is delivered */
};

struct dgw_session_action {
  enum dgw_session_do what;
  enum dgw_session_note note;
  /* DGW_SESSION_LEAVE: */
  enum dgw_close_action close; /* resume, new session (never fatal here) */
  int error;                   /* DGW_OK or what ended the connection */
  const char *reason;          /* for the disconnect report; static */
  uint16_t close_code;         /* DGW_SESSION_RECONNECT_CODE */
  const char *close_reason;    /* static */
  int64_t wait_ms;             /* a forced minimum wait (op 9), or -1 */
  /* DGW_SESSION_DELIVER: */
  int ready;   /* it is READY: call dgw_session_ready() with its fields */
  int resumed; /* it is RESUMED */
  int64_t seq; /* the dispatch's s (0 without one) */
  /* DGW_SESSION_NOTE_SEQ_JUMP, _SKIPPED: the sequence before it. */
  int64_t prev_seq;
};

/* What dgw_session_lost() decided. */
struct dgw_session_retry {
  enum dgw_close_action action;
  uint32_t delay_ms;   /* before the next connection (0 when fatal) */
  int will_resume;     /* the next connection RESUMEs */
  int offline;         /* a network failure before the upgrade */
  int session_dropped; /* the session was forgotten (new session): requests
                          waiting for its events will never be answered */
};

struct dgw_session;

/* A new session core, no session yet (the first connection identifies).
 * `cfg` is copied.  NULL without memory. */
struct dgw_session *dgw_session_new(const struct dgw_session_config *cfg);

/* Frees `s` (NULL is fine), wiping nothing: it holds no token. */
void dgw_session_free(struct dgw_session *s);

/* The session id (NULL without one), the last sequence delivered (0 before
 * any), the resume URL from READY (NULL: none or refused).  Borrowed until
 * the next call that changes the session. */
const char *dgw_session_id(const struct dgw_session *s);
int64_t dgw_session_seq(const struct dgw_session *s);
const char *dgw_session_resume_url(const struct dgw_session *s);

/* 1 when the next connection RESUMEs rather than IDENTIFYing. */
int dgw_session_resumable(const struct dgw_session *s);

/* Connections in a row that did not end in a healthy session. */
uint32_t dgw_session_failures(const struct dgw_session *s);

/* The base URL for the next connection: the resume URL while resuming and
 * it has not failed DGW_SESSION_RESUME_URL_MAX_FAILURES times in a row,
 * else `configured` (returned as is). */
const char *dgw_session_connect_url(const struct dgw_session *s,
                                    const char *configured);

/* The connection to `url` (from dgw_session_connect_url()) could not even
 * be started: a resume URL is not tried again for this session. */
void dgw_session_connect_failed(struct dgw_session *s, const char *url);

/* HELLO arrived with `interval` ms (0 when missing or not an integer)
 * while the shard is in `state`.  NOTHING unless the shard waits for
 * HELLO; LEAVE (DGW_ERR_PROTOCOL, resume) for an interval outside
 * [DGW_SESSION_HELLO_MIN_MS, DGW_SESSION_HELLO_MAX_MS]; else RESUME or
 * IDENTIFY. */
void dgw_session_on_hello(struct dgw_session *s, enum dgw_state state,
                          int64_t interval, struct dgw_session_action *out);

/* IDENTIFY went out: the next connections resume the session it makes. */
void dgw_session_identified(struct dgw_session *s);

/* Op 7: LEAVE, resuming at once. */
void dgw_session_on_reconnect(struct dgw_session *s,
                              struct dgw_session_action *out);

/* Op 9 with d = `resumable`: LEAVE resuming when there is a session to
 * resume, else LEAVE for a new session after a wait uniform in
 * [invalid_min_ms, invalid_max_ms]. */
void dgw_session_on_invalid_session(struct dgw_session *s, int resumable,
                                    struct dgw_session_action *out);

/*
 * A dispatch named `name` (NULL: none) with s = `seq` when `has_seq`, while
 * the shard is in `state`.  DROP when the shard is closing or closed, for
 * no name, s = INT64_MAX, or an s not above the last one delivered (READY
 * excepted: it starts a new sequence).  Else DELIVER, and the sequence
 * moves to s; READY forgets the old session (follow with
 * dgw_session_ready()), READY and RESUMED reset the resume-URL failures,
 * and any other event clears the unreadable-payload strikes.  Once the
 * connection has both reached READY or RESUMED and delivered an event of
 * its own (a replay before RESUMED counts), it is a success: the failure
 * count starts again, so its loss reconnects at once.
 */
void dgw_session_on_dispatch(struct dgw_session *s, enum dgw_state state,
                             const char *name, int has_seq, int64_t seq,
                             struct dgw_session_action *out);

/*
 * READY's session_id and resume_gateway_url (either NULL when missing),
 * after dgw_session_on_dispatch() said ready.  A session id that is not a
 * short token of [A-Za-z0-9_-] is refused (the session cannot be resumed);
 * a resume URL that does not parse, or is ws:// when `configured` (the
 * gateway URL we identified on) is wss://, is refused (resumes use
 * `configured`).  Returns DGW_OK, or DGW_ERR_NOMEM (the session is then not
 * resumable); `*bad_id` and `*bad_url` (when not NULL) say what was
 * refused.
 */
int dgw_session_ready(struct dgw_session *s, const char *session_id,
                      const char *resume_url, const char *configured,
                      int *bad_id, int *bad_url);

/*
 * A payload that could not be read (err, `what` a static description).
 * When `recovered_seq` > 0 is the s of a dispatch json-c could still read
 * (an event name or nesting past dgw's limits) and is above the last one,
 * the event is skipped: DROP with note SKIPPED, the sequence moves on (a
 * resume would only replay it).  Otherwise LEAVE resuming, or, at the
 * DGW_SESSION_POISON_STRIKES-th in a row with no event between, LEAVE for a
 * new session (note POISONED).
 */
void dgw_session_on_bad_payload(struct dgw_session *s, int err,
                                const char *what, int64_t recovered_seq,
                                struct dgw_session_action *out);

/*
 * The connection ended under us with `err` (DGW_ERR_CLOSED: the peer
 * closed with `code`); `opened` when it got past the upgrade.  Returns the
 * close-code policy's action (policy.c; resume for anything but a close
 * frame) and counts a failed connection to the resume URL.
 */
enum dgw_close_action dgw_session_on_close(struct dgw_session *s, int err,
                                           uint16_t code, int opened);

/*
 * The connection is gone with `err` and the policy `action`; `wait_ms` >= 0
 * forces a minimum wait (op 9), -1 lets the backoff decide; `opened` as
 * above.  A new session forgets the old one now; a fatal one keeps it until
 * dgw_session_forget() (the disconnect report may still show it).  The
 * delay is 0 when nothing failed since the last success (a connection that
 * came up and delivered, the healthy mark, the network coming back), else
 * dgw_backoff_ms(failures - 1) after a success, dgw_backoff_ms(failures) on
 * a fresh start that never had one (so its very first failure already
 * waits), and never below `wait_ms`; the failure count grows by one.  A
 * connection that fails before READY or RESUMED, or comes up but is lost before
 * delivering anything, is such a failure.
 */
void dgw_session_lost(struct dgw_session *s, int err, int opened,
                      enum dgw_close_action action, int64_t wait_ms,
                      struct dgw_session_retry *out);

/* The session ran long enough to count as healthy, or the network came
 * back (the network was the problem, not this shard): the failure count
 * starts again, so the next loss reconnects at once. */
void dgw_session_healthy(struct dgw_session *s);

/* Forgets the session: the next connection identifies. */
void dgw_session_forget(struct dgw_session *s);

/*
 * Before the first connection: resume `session_id` at `seq` (on
 * `resume_url`, may be NULL), checked as READY's fields against
 * `configured`.  DGW_ERR_INVALID_ARGUMENT when malformed, DGW_ERR_NOMEM.
 */
int dgw_session_restore(struct dgw_session *s, const char *session_id,
                        int64_t seq, const char *resume_url,
                        const char *configured);

#endif /* DGW_SESSION_H */
