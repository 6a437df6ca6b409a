/*
 * The session core: every decision of a shard's session, no I/O.
 *
 *   connect ─ HELLO ─ IDENTIFY ─ READY ─ dispatches ...
 *           └─────── RESUME ── replayed dispatches ─ RESUMED ─ ...
 *
 * Exactly-once delivery: the sequence survives reconnects; a dispatch
 * whose s is not above the last one delivered is a replay we already have
 * and is dropped.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

#include "policy.h"
#include "session.h"
#include "url.h"

struct dgw_session {
  struct dgw_session_config cfg;
  char *id;
  char *resume_url;
  int64_t seq;
  int identify_next; /* connect to the gateway URL and IDENTIFY */
  uint32_t failures; /* connections in a row not ending healthy */
  int was_healthy;   /* some connection succeeded (or the healthy mark) */
  int up;            /* this connection reached READY or RESUMED */
  int delivered;     /* ... and delivered an event of its own */
  uint32_t resume_url_failures;
  int poison_strikes; /* bad payloads with no event delivered between */
};

static double draw(const struct dgw_session *s) {
  return s->cfg.random01 != NULL ? s->cfg.random01(s->cfg.random_user_data)
                                 : dgw_random01();
}

static void action_init(struct dgw_session_action *out,
                        enum dgw_session_do what) {
  memset(out, 0, sizeof(*out));
  out->what = what;
  out->wait_ms = -1;
}

/* We leave the connection on purpose; close with 4000 so Discord keeps the
 * session, whatever comes next. */
static void leave(struct dgw_session_action *out, enum dgw_close_action close,
                  int err, const char *reason, const char *close_reason) {
  action_init(out, DGW_SESSION_LEAVE);
  out->close = close;
  out->error = err;
  out->reason = reason;
  out->close_code = DGW_SESSION_RECONNECT_CODE;
  out->close_reason = close_reason;
}

/* A session id we will send back and log: a short token of letters,
 * digits, '-' and '_' (Discord's are 32 hex digits). */
static int session_id_ok(const char *s) {
  size_t n = 0;

  for (; s[n] != '\0'; n++)
    if (n >= 128 ||
        !((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' && s[n] <= 'Z') ||
          (s[n] >= '0' && s[n] <= '9') || s[n] == '-' || s[n] == '_'))
      return 0;
  return n > 0;
}

/* A resume URL we will send the token to: well formed, and no weaker than
 * the configured URL (never ws:// when we identified over wss://). */
static int resume_url_ok(const char *url, const char *configured) {
  struct dgw_url parsed;
  struct dgw_url conf;

  if (configured == NULL || dgw_url_parse(url, &parsed, NULL, 0) != DGW_OK ||
      dgw_url_parse(configured, &conf, NULL, 0) != DGW_OK)
    return 0;
  return parsed.tls || !conf.tls;
}

static int is_network_error(int err) {
  return err == DGW_ERR_DNS || err == DGW_ERR_CONNECT || err == DGW_ERR_TIMEOUT;
}

struct dgw_session *dgw_session_new(const struct dgw_session_config *cfg) {
  struct dgw_session *s = calloc(1, sizeof(*s));

  if (s != NULL && cfg != NULL)
    s->cfg = *cfg;
  return s;
}

void dgw_session_free(struct dgw_session *s) {
  if (s == NULL)
    return;
  dgw_session_forget(s);
  free(s);
}

const char *dgw_session_id(const struct dgw_session *s) {
  return s->id;
}

int64_t dgw_session_seq(const struct dgw_session *s) {
  return s->seq;
}

const char *dgw_session_resume_url(const struct dgw_session *s) {
  return s->resume_url;
}

int dgw_session_resumable(const struct dgw_session *s) {
  return s->id != NULL && !s->identify_next;
}

uint32_t dgw_session_failures(const struct dgw_session *s) {
  return s->failures;
}

const char *dgw_session_connect_url(const struct dgw_session *s,
                                    const char *configured) {
  if (dgw_session_resumable(s) && s->resume_url != NULL &&
      s->resume_url_failures < DGW_SESSION_RESUME_URL_MAX_FAILURES)
    return s->resume_url;
  return configured;
}

void dgw_session_connect_failed(struct dgw_session *s, const char *url) {
  /* Only a resume URL from the gateway can be malformed: the configured
   * one was checked when it was set.  Fall back to it. */
  if (url != NULL && url == s->resume_url)
    s->resume_url_failures = DGW_SESSION_RESUME_URL_MAX_FAILURES;
}

void dgw_session_forget(struct dgw_session *s) {
  free(s->id);
  free(s->resume_url);
  s->id = NULL;
  s->resume_url = NULL;
  s->seq = 0;
  s->resume_url_failures = 0;
}

void dgw_session_on_hello(struct dgw_session *s, enum dgw_state state,
                          int64_t interval, struct dgw_session_action *out) {
  if (state != DGW_STATE_HELLO) {
    action_init(out, DGW_SESSION_NOTHING); /* a second HELLO changes nothing */
    return;
  }
  if (interval < DGW_SESSION_HELLO_MIN_MS ||
      interval > DGW_SESSION_HELLO_MAX_MS) {
    leave(out, DGW_CLOSE_RESUME, DGW_ERR_PROTOCOL,
          "HELLO without a valid heartbeat_interval", "dgw: reconnecting");
    return;
  }
  action_init(out, dgw_session_resumable(s) ? DGW_SESSION_RESUME
                                            : DGW_SESSION_IDENTIFY);
}

void dgw_session_identified(struct dgw_session *s) {
  s->identify_next = 0;
}

void dgw_session_on_reconnect(struct dgw_session *s,
                              struct dgw_session_action *out) {
  (void)s;
  leave(out, DGW_CLOSE_RESUME, DGW_OK, "the gateway asked to reconnect (op 7)",
        "dgw: reconnecting");
}

void dgw_session_on_invalid_session(struct dgw_session *s, int resumable,
                                    struct dgw_session_action *out) {
  if (resumable && s->id != NULL) {
    leave(out, DGW_CLOSE_RESUME, DGW_OK, "invalid session (op 9), resumable",
          "dgw: reconnecting");
    return;
  }
  /* Start over on the gateway URL, after the random wait Discord asks for
   * so that identify storms spread out. */
  leave(out, DGW_CLOSE_NEW_SESSION, DGW_OK,
        "invalid session (op 9), not resumable", "dgw: invalid session");
  out->wait_ms =
      dgw_uniform_ms(s->cfg.invalid_min_ms, s->cfg.invalid_max_ms, draw(s));
}

void dgw_session_on_dispatch(struct dgw_session *s, enum dgw_state state,
                             const char *name, int has_seq, int64_t seq,
                             struct dgw_session_action *out) {
  int ready = name != NULL && strcmp(name, "READY") == 0;
  int resumed = name != NULL && strcmp(name, "RESUMED") == 0;

  action_init(out, DGW_SESSION_DROP);
  out->seq = has_seq ? seq : 0;
  out->prev_seq = s->seq;
  if (state == DGW_STATE_CLOSING || state == DGW_STATE_CLOSED) {
    out->note = DGW_SESSION_NOTE_CLOSED; /* after dgw_gateway_close() */
    return;
  }
  if (name == NULL) {
    out->note = DGW_SESSION_NOTE_NO_NAME;
    return;
  }
  if (has_seq) {
    if (seq == INT64_MAX) {
      /* Nothing could follow it: a broken gateway, not a sequence. */
      out->note = DGW_SESSION_NOTE_SEQ_MAX;
      return;
    }
    if (seq <= s->seq && !ready) {
      out->note = DGW_SESSION_NOTE_REPLAY;
      return;
    }
    if (seq - 1 > s->seq && s->seq > 0)
      out->note = DGW_SESSION_NOTE_SEQ_JUMP;
  }
  out->what = DGW_SESSION_DELIVER;
  out->ready = ready;
  out->resumed = resumed;
  if (ready)
    dgw_session_forget(s); /* dgw_session_ready() sets the new one */
  if (has_seq)
    s->seq = seq;
  if (ready || resumed) {
    s->resume_url_failures = 0;
    s->up = 1;
  } else {
    s->poison_strikes = 0; /* progress (RESUMED alone is none) */
    s->delivered = 1;
  }
  /* Up and streaming: this connection is a success, whatever failed
   * before it, so the next loss reconnects at once (issue 20). */
  if (s->up && s->delivered) {
    s->failures = 0;
    s->was_healthy = 1;
  }
}

int dgw_session_ready(struct dgw_session *s, const char *session_id,
                      const char *resume_url, const char *configured,
                      int *bad_id, int *bad_url) {
  int rv = DGW_OK;
  int id_refused = 0;
  int url_refused = 0;

  free(s->id);
  free(s->resume_url);
  s->id = NULL;
  s->resume_url = NULL;
  if (session_id != NULL && !(id_refused = !session_id_ok(session_id)) &&
      (s->id = strdup(session_id)) == NULL)
    rv = DGW_ERR_NOMEM;
  if (resume_url != NULL &&
      !(url_refused = !resume_url_ok(resume_url, configured)) &&
      (s->resume_url = strdup(resume_url)) == NULL)
    rv = DGW_ERR_NOMEM;
  if (bad_id != NULL)
    *bad_id = id_refused;
  if (bad_url != NULL)
    *bad_url = url_refused;
  return rv;
}

void dgw_session_on_bad_payload(struct dgw_session *s, int err,
                                const char *what, int64_t recovered_seq,
                                struct dgw_session_action *out) {
  if (recovered_seq > s->seq && recovered_seq < INT64_MAX) {
    action_init(out, DGW_SESSION_DROP);
    out->note = DGW_SESSION_NOTE_SKIPPED;
    out->prev_seq = s->seq;
    out->seq = recovered_seq;
    s->seq = recovered_seq;
    return;
  }
  /* Reset by every ordinary dispatch delivered: strikes in a row mean no
   * progress between them. */
  if (++s->poison_strikes >= DGW_SESSION_POISON_STRIKES) {
    s->poison_strikes = 0;
    leave(out, DGW_CLOSE_NEW_SESSION, err, what, "dgw: unreadable stream");
    out->note = DGW_SESSION_NOTE_POISONED;
    return;
  }
  leave(out, DGW_CLOSE_RESUME, err, what, "dgw: reconnecting");
}

enum dgw_close_action dgw_session_on_close(struct dgw_session *s, int err,
                                           uint16_t code, int opened) {
  if (dgw_session_resumable(s) && !opened)
    s->resume_url_failures++;
  return err == DGW_ERR_CLOSED ? dgw_close_code_action(code) : DGW_CLOSE_RESUME;
}

void dgw_session_lost(struct dgw_session *s, int err, int opened,
                      enum dgw_close_action action, int64_t wait_ms,
                      struct dgw_session_retry *out) {
  uint32_t delay;

  memset(out, 0, sizeof(*out));
  out->action = action;
  out->offline = is_network_error(err) && !opened;
  s->up = 0;
  s->delivered = 0;
  if (action == DGW_CLOSE_NEW_SESSION) {
    dgw_session_forget(s);
    s->identify_next = 1;
    out->session_dropped = 1;
  }
  if (s->failures == 0 && s->was_healthy)
    delay = 0; /* a healthy session that dropped: straight back */
  else
    /* Failures since the last success; on a fresh start, which never had
     * one, the very first failure already waits (issue 15). */
    delay =
        dgw_backoff_ms(s->failures - (s->was_healthy ? 1 : 0),
                       s->cfg.backoff_base_ms, s->cfg.backoff_max_ms, draw(s));
  /* A forced wait (op 9) never shortens the backoff: a gateway that keeps
   * refusing IDENTIFY must not get one every few seconds for ever, or the
   * daily session-start budget (and then the token) is gone. */
  if (wait_ms >= 0 && (uint64_t)wait_ms > delay)
    delay = wait_ms > UINT32_MAX ? UINT32_MAX : (uint32_t)wait_ms;
  s->failures++;
  out->will_resume = action != DGW_CLOSE_FATAL && dgw_session_resumable(s);
  out->delay_ms = action == DGW_CLOSE_FATAL ? 0 : delay;
}

void dgw_session_healthy(struct dgw_session *s) {
  s->failures = 0;
  s->was_healthy = 1;
}

int dgw_session_restore(struct dgw_session *s, const char *session_id,
                        int64_t seq, const char *resume_url,
                        const char *configured) {
  char *id;
  char *url = NULL;

  if (session_id == NULL || !session_id_ok(session_id) || seq < 0 ||
      (resume_url != NULL && !resume_url_ok(resume_url, configured)))
    return DGW_ERR_INVALID_ARGUMENT;
  if ((id = strdup(session_id)) == NULL ||
      (resume_url != NULL && (url = strdup(resume_url)) == NULL)) {
    free(id);
    return DGW_ERR_NOMEM;
  }
  dgw_session_forget(s);
  s->id = id;
  s->resume_url = url;
  s->seq = seq;
  s->identify_next = 0;
  return DGW_OK;
}
