#include "config.h"

/*
 * The mock Discord gateway.  One listener; per connection a bufferevent
 * (plain or TLS), our own HTTP upgrade, a wslay server context and, with
 * compress=zlib-stream, one deflate stream.  The gateway logic is a small
 * state machine per connection; sessions (id, sequence, the dispatches sent,
 * the script position) live on the mock so that a connection can end while
 * its session stays, and a RESUME on another connection picks it up.
 *
 * Every dispatch of a session goes through session_dispatch(): it takes the
 * next sequence number and enters the history first, and only then is it
 * written to the attached connection (if any, and unless that connection
 * is told to lose it).  The history is thus the truth a replay works from.
 *
 * Lifetime: every libevent callback and every public call on a connection
 * brackets its work with conn_enter()/conn_leave().  Ending a connection
 * while it is entered (a hook calling dgw_mock_conn_drop(), wslay reporting
 * the end of the close handshake) only marks it; conn_leave() frees it once
 * nothing of it is on the stack.  Closing sockets politely (flush, FIN or
 * close_notify, wait briefly for the peer's end) is left to a "linger"
 * record that outlives the connection, so on_close fires as soon as the
 * WebSocket is over.
 */

#include <errno.h>
#include <inttypes.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/types.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <event2/util.h>

#include <json-c/json.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>
#include <zlib.h>

#include "handshake.h"
#include "mock.h"

#define MOCK_DEFAULT_HOST "127.0.0.1"
#define MOCK_DEFAULT_HEARTBEAT_MS 41250u
/* Largest client payload Discord accepts (protocol §6.3). */
#define MOCK_MAX_PAYLOAD 4096
/* Largest client message wslay buffers; bigger ones get close 1009. */
#define MOCK_MAX_RECV_MSG (1u << 20)
/* Seconds a client may take to send its upgrade request. */
#define MOCK_HANDSHAKE_TIMEOUT_S 10
/* How long the mock waits for the client's close frame after its own. */
#define MOCK_CLOSE_TIMEOUT_MS 2000
/* How long a closed socket waits for the peer's FIN before it is freed. */
#define MOCK_LINGER_TIMEOUT_S 2
/* Dispatches kept per session for a later resume replay. */
#define MOCK_DEFAULT_HISTORY_MAX 1024
/* How long a detached session stays resumable. */
#define MOCK_DEFAULT_SESSION_TTL_MS 180000u
/* Sessions kept after their connection ended (oldest dropped first). */
#define MOCK_DETACHED_SESSIONS_MAX 32
/* Every documented intent bit (protocol §10). */
#define MOCK_INTENTS_ALL 53608447LL
#define MOCK_USER_ID "1000000000000000001"
#define MOCK_TRACE "[\"dgw-mock\"]"
/* Length of the 1000-byte frame header drop_midframe() announces. */
#define MOCK_MIDFRAME_LEN 1000
/* Commands (protocol §11): defaults of the config and fixed answers. */
#define MOCK_DEFAULT_MEMBERS 2500u
#define MOCK_DEFAULT_CHUNK_SIZE 1000u
#define MOCK_DEFAULT_MEMBER_RATE_MS 30000u
#define MOCK_MEMBER_ID_BASE UINT64_C(2000000000000000000)
#define MOCK_MAX_USER_IDS 100 /* user_ids per op 8 */
#define MOCK_QUERY_MAX 100    /* members a prefix query returns */
#define MOCK_NONCE_MAX 32     /* bytes of a nonce Discord echoes */
#define MOCK_CHANNEL_ID "3000000000000000001"
#define MOCK_CHANNEL_STATUS "mock status"
#define MOCK_VOICE_START_TIME 1764201600
#define MOCK_SOUND_ID_BASE UINT64_C(4000000000000000000)
#define MOCK_SOUNDS_PER_GUILD 2
#define MOCK_VOICE_ENDPOINT "voice.mock.invalid:443"
/* Send rate limit (protocol §6.1). */
#define MOCK_DEFAULT_RATE_WINDOW_MS 60000u
#define MOCK_DEFAULT_RATE_BUDGET 120u
/* Stamps a connection keeps at least, for stats.max_in_window when the
 * count goes past the budget (limit off); beyond, it saturates. */
#define MOCK_RATE_TRACK_MAX 65536u

/* One scripted dispatch (owned by the mock). */
struct mock_dispatch {
  struct mock_dispatch *next;
  char *t;
  char *d_json;
};

/* A dispatch as it was sent, kept for resume replay. */
struct mock_sent {
  struct mock_sent *next;
  int64_t seq;
  char *json;
};

/* When an all-members request (op 8) for a guild was last served. */
struct mock_member_rate {
  uint64_t guild_id;
  uint64_t at_ms;
};

/*
 * A gateway session: created by IDENTIFY, outlives its connection unless
 * the client closed with 1000/1001, for session_ttl_ms.  `seq` is the last
 * sequence number given out; `history` holds the newest dispatches, in
 * order and without gaps.
 */
struct mock_session {
  struct mock_session *prev, *next; /* newest first */
  struct dgw_mock *mock;
  struct dgw_mock_conn *conn; /* attached connection, or NULL */
  char id[33];
  char *token; /* the one IDENTIFY carried; RESUME must repeat it */
  int64_t seq;
  int64_t intents;
  int64_t shard_id, shard_count; /* shard_count 0: no shard in IDENTIFY */
  struct mock_sent *history, *history_tail;
  size_t history_len;
  struct mock_dispatch *script_last; /* last script entry sent, or NULL */
  struct event *expire_timer;        /* armed while detached */
  /* All-members requests served within cfg.member_rate_ms (op 8). */
  struct mock_member_rate *member_rates;
  size_t member_rates_len, member_rates_cap;
};

/* An outgoing message that wslay reads in slices of fragment_size bytes,
 * one frame per slice. */
struct mock_fragment {
  struct mock_fragment *prev, *next;
  struct dgw_mock_conn *conn;
  size_t len, off;
  unsigned char data[];
};

/* A socket whose connection is over, waiting to be closed politely. */
struct mock_linger {
  struct mock_linger *prev, *next;
  struct dgw_mock *mock;
  struct bufferevent *bev;
  int tls_notify; /* send close_notify rather than a bare FIN */
  int shut;
};

enum conn_state { CONN_HTTP, CONN_OPEN, CONN_DEAD };

/* How a connection ends, in the order a later request may not override. */
enum conn_end {
  END_NONE = 0,
  END_DROP,    /* free the socket now */
  END_CLEAN,   /* flush, FIN / close_notify, then wait for the peer */
  END_MIDFRAME /* flush, bare FIN, then wait for the peer */
};

struct dgw_mock_conn {
  struct dgw_mock_conn *prev, *next;
  struct dgw_mock *mock;
  unsigned long id;
  enum conn_state state;
  struct bufferevent *bev;
  int tls;
  char peer[64];
  char *path_query;

  wslay_event_context_ptr ws;
  int version;
  int compress;
  z_stream zs;
  int zs_ready;
  unsigned char *zbuf;
  size_t zcap;
  struct mock_fragment *frags;

  int authenticated;
  struct mock_session *session;
  int64_t seq_unsessioned; /* dispatches sent before any session */
  unsigned lose_next;      /* dispatches still to "lose in flight" */

  /* Arrival stamps (ms) of the client payloads in the current rate
   * window: a ring of rate_cap slots, rate_len used from rate_head. */
  uint64_t *rate_stamps;
  size_t rate_cap, rate_head, rate_len;

  struct event *dispatch_timer; /* paces the session's script */
  struct event *hello_timer;    /* cfg.hello_delay_ms */

  int closing;           /* the mock queued a close frame */
  int mock_closed_first; /* ... before the client sent one */
  int client_closed;     /* the client's close frame arrived */
  int client_code;       /* its code, 0 when it carried none */
  struct event *close_timer;
  /* A close decided while wslay was reading: queued by conn_flush() after
   * the data already queued, which wslay would otherwise skip (it sends
   * control frames first and nothing after a close). */
  int close_pending;
  uint16_t close_pending_code;
  size_t close_pending_len;
  char close_pending_reason[124];

  int busy;
  int in_recv;
  enum conn_end doomed;
};

struct dgw_mock {
  struct event_base *base;
  struct dgw_mock_config cfg; /* strings point at the copies below */
  char *host, *cert_file, *key_file, *token;
  SSL_CTX *ssl_ctx;
  struct evconnlistener *listener;
  uint16_t port;
  char resume_url[300];
  char ready_resume_url[256]; /* override for READY; "" = resume_url */

  struct dgw_mock_conn *pending; /* before the upgrade */
  struct dgw_mock_conn *open;    /* most recently opened first */
  size_t open_count;
  struct mock_linger *lingers;
  struct mock_session *sessions;
  struct mock_dispatch *script, *script_tail;
  unsigned long next_conn_id;
  int ack;            /* answer heartbeats */
  int reconnect_sent; /* cfg.reconnect_before_hello done */
  struct dgw_mock_stats stats;
  int freeing;
};

static void conn_enter(struct dgw_mock_conn *);
static void conn_leave(struct dgw_mock_conn *);
static void conn_end(struct dgw_mock_conn *, enum conn_end);
static void conn_destroy(struct dgw_mock_conn *, enum conn_end);
static void conn_flush(struct dgw_mock_conn *);
static int conn_close_internal(struct dgw_mock_conn *, uint16_t, const char *);
static int conn_send_payload(struct dgw_mock_conn *, const char *, size_t);
static int conn_send_dispatch_internal(struct dgw_mock_conn *, const char *,
                                       const char *);
static void conn_script_next(struct dgw_mock_conn *);
static void linger_start(struct dgw_mock *, struct bufferevent *, int,
                         enum conn_end);
static void linger_free(struct mock_linger *);
static void session_free(struct dgw_mock *, struct mock_session *);

/* ------------------------------------------------------------ utilities */

static void mock_log(const struct dgw_mock *mock, enum dgw_log_level level,
                     const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void mock_log(const struct dgw_mock *mock, enum dgw_log_level level,
                     const char *fmt, ...) {
  char line[512];
  va_list ap;

  if (mock->cfg.log == NULL)
    return;
  va_start(ap, fmt);
  vsnprintf(line, sizeof line, fmt, ap);
  va_end(ap);
  mock->cfg.log(level, line, mock->cfg.log_user_data);
}

static char *mock_strdup(const char *s) {
  size_t len;
  char *copy;

  if (s == NULL)
    return NULL;
  len = strlen(s);
  copy = malloc(len + 1);
  if (copy != NULL)
    memcpy(copy, s, len + 1);
  return copy;
}

/* Formats into a fresh heap string; NULL when out of memory. */
static char *mock_asprintf(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));

static char *mock_asprintf(const char *fmt, ...) {
  va_list ap;
  int len;
  char *s;

  va_start(ap, fmt);
  len = vsnprintf(NULL, 0, fmt, ap);
  va_end(ap);
  if (len < 0)
    return NULL;
  s = malloc((size_t)len + 1);
  if (s == NULL)
    return NULL;
  va_start(ap, fmt);
  vsnprintf(s, (size_t)len + 1, fmt, ap);
  va_end(ap);
  return s;
}

/*
 * Parses exactly `len` bytes of `text` as one strict JSON value (trailing
 * whitespace allowed).  Returns the value (caller puts it), or NULL with
 * *ok = 0 when it does not parse.  A literal null parses to NULL, *ok = 1.
 */
static json_object *json_parse_exact(const char *text, size_t len, int *ok) {
  json_tokener *tok;
  json_object *obj;
  size_t end;

  *ok = 0;
  if (len > INT_MAX)
    return NULL;
  tok = json_tokener_new();
  if (tok == NULL)
    return NULL;
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
  obj = json_tokener_parse_ex(tok, text, (int)len);
  end = json_tokener_get_parse_end(tok);
  if (obj == NULL && json_tokener_get_error(tok) == json_tokener_continue) {
    /* A bare number is only known complete at the end of the input, which
     * the tokener was given whole. */
    obj = json_tokener_parse_ex(tok, "", 1);
    end = len;
  }
  if (json_tokener_get_error(tok) != json_tokener_success) {
    json_object_put(obj);
    json_tokener_free(tok);
    return NULL;
  }
  json_tokener_free(tok);
  for (; end < len; end++) {
    char c = text[end];
    if (c != ' ' && c != '\t' && c != '\r' && c != '\n') {
      json_object_put(obj);
      return NULL;
    }
  }
  *ok = 1;
  return obj;
}

/* Adds `value` under `key`; frees it and returns -1 on failure. */
static int json_add(json_object *obj, const char *key, json_object *value) {
  if (value == NULL)
    return -1;
  if (json_object_object_add(obj, key, value) != 0) {
    json_object_put(value);
    return -1;
  }
  return 0;
}

static int json_append(json_object *array, json_object *value) {
  if (value == NULL)
    return -1;
  if (json_object_array_add(array, value) != 0) {
    json_object_put(value);
    return -1;
  }
  return 0;
}

static const char *json_plain(json_object *obj) {
  return json_object_to_json_string_ext(
      obj, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
}

/* Whether `obj` is a JSON integer (not a float, not a string). */
static int json_is_int(json_object *obj) {
  return obj != NULL && json_object_is_type(obj, json_type_int);
}

/* Milliseconds on a monotonic clock. */
static uint64_t mock_now_ms(void) {
  struct timespec ts;

  if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
    return 0;
  return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ------------------------------------------------------------- sessions */

static void session_random_id(char id[33]) {
  static const char hex[] = "0123456789abcdef";
  unsigned char raw[16];
  size_t i;

  if (RAND_bytes(raw, (int)sizeof raw) != 1) {
    /* The id only has to be unlikely to repeat within one test run. */
    unsigned long x = (unsigned long)time(NULL) ^ (unsigned long)clock() ^
                      (unsigned long)(uintptr_t)id;
    for (i = 0; i < sizeof raw; i++) {
      x = x * 6364136223846793005UL + 1442695040888963407UL;
      raw[i] = (unsigned char)(x >> 33);
    }
  }
  for (i = 0; i < sizeof raw; i++) {
    id[2 * i] = hex[raw[i] >> 4];
    id[2 * i + 1] = hex[raw[i] & 0x0f];
  }
  id[32] = '\0';
}

static void session_expire_cb(evutil_socket_t fd, short what, void *arg) {
  struct mock_session *s = arg;

  (void)fd;
  (void)what;
  if (s->conn != NULL)
    return;
  mock_log(s->mock, DGW_LOG_DEBUG, "session %s expired", s->id);
  session_free(s->mock, s);
}

/* A new session, first in the list (the newest); NULL when out of
 * memory. */
static struct mock_session *session_new(struct dgw_mock *mock,
                                        const char *token) {
  struct mock_session *s = calloc(1, sizeof *s);

  if (s == NULL)
    return NULL;
  s->mock = mock;
  s->token = mock_strdup(token);
  s->expire_timer = evtimer_new(mock->base, session_expire_cb, s);
  if (s->token == NULL || s->expire_timer == NULL) {
    if (s->expire_timer != NULL)
      event_free(s->expire_timer);
    free(s->token);
    free(s);
    return NULL;
  }
  session_random_id(s->id);
  s->next = mock->sessions;
  if (mock->sessions != NULL)
    mock->sessions->prev = s;
  mock->sessions = s;
  return s;
}

/* Unlinks and frees a session; an attached connection stays open, without
 * a session. */
static void session_free(struct dgw_mock *mock, struct mock_session *s) {
  struct mock_sent *sent, *next;

  if (s->prev != NULL)
    s->prev->next = s->next;
  else
    mock->sessions = s->next;
  if (s->next != NULL)
    s->next->prev = s->prev;
  if (s->conn != NULL) {
    s->conn->session = NULL;
    s->conn->authenticated = 0;
    if (s->conn->dispatch_timer != NULL)
      evtimer_del(s->conn->dispatch_timer);
  }
  for (sent = s->history; sent != NULL; sent = next) {
    next = sent->next;
    free(sent->json);
    free(sent);
  }
  event_free(s->expire_timer);
  free(s->member_rates);
  free(s->token);
  free(s);
}

/* Appends `sent` (its seq and json set) to the history, dropping the
 * oldest entries beyond cfg.history_max. */
static void session_keep(struct mock_session *s, struct mock_sent *sent) {
  size_t max = s->mock->cfg.history_max != 0 ? s->mock->cfg.history_max
                                             : MOCK_DEFAULT_HISTORY_MAX;

  sent->next = NULL;
  if (s->history_tail != NULL)
    s->history_tail->next = sent;
  else
    s->history = sent;
  s->history_tail = sent;
  s->history_len++;
  while (s->history_len > max) {
    struct mock_sent *old = s->history;
    s->history = old->next;
    free(old->json);
    free(old);
    s->history_len--;
  }
}

static struct mock_session *session_find(const struct dgw_mock *mock,
                                         const char *id) {
  struct mock_session *s;

  for (s = mock->sessions; s != NULL; s = s->next)
    if (strcmp(s->id, id) == 0)
      return s;
  return NULL;
}

/* `id`, or the newest session when `id` is NULL. */
static struct mock_session *session_lookup(const struct dgw_mock *mock,
                                           const char *id) {
  if (id == NULL)
    return mock->sessions;
  return session_find(mock, id);
}

/*
 * Detaches the connection's session.  A client that closed first with
 * 1000/1001 ends the session (protocol §4.2; an echo of the mock's own
 * close is not the client's choice); otherwise it stays resumable for
 * session_ttl_ms, up to MOCK_DETACHED_SESSIONS_MAX of them.
 */
static void session_detach(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  struct mock_session *s = conn->session, *last_detached = NULL;
  uint32_t ttl = mock->cfg.session_ttl_ms != 0 ? mock->cfg.session_ttl_ms
                                               : MOCK_DEFAULT_SESSION_TTL_MS;
  struct timeval tv = {(time_t)(ttl / 1000), (suseconds_t)(ttl % 1000) * 1000};
  size_t detached = 0;

  if (s == NULL)
    return;
  s->conn = NULL;
  conn->session = NULL;
  if (conn->client_closed && !conn->mock_closed_first &&
      (conn->client_code == 1000 || conn->client_code == 1001)) {
    mock_log(mock, DGW_LOG_DEBUG, "session %s ended by close %d", s->id,
             conn->client_code);
    session_free(mock, s);
    return;
  }
  if (mock->freeing)
    return;
  evtimer_add(s->expire_timer, &tv);
  for (s = mock->sessions; s != NULL; s = s->next) {
    if (s->conn == NULL) {
      detached++;
      last_detached = s;
    }
  }
  if (detached > MOCK_DETACHED_SESSIONS_MAX && last_detached != NULL)
    session_free(mock, last_detached);
}

/* Attaches `conn` to `s` (which must have no connection). */
static void session_attach(struct mock_session *s, struct dgw_mock_conn *conn) {
  evtimer_del(s->expire_timer);
  s->conn = conn;
  conn->session = s;
  conn->authenticated = 1;
}

/* --------------------------------------------------------------- linger */

static void linger_shut(struct mock_linger *lg) {
  evutil_socket_t fd;

  if (lg->shut)
    return;
  lg->shut = 1;
  if (lg->tls_notify) {
    SSL *ssl = bufferevent_openssl_get_ssl(lg->bev);
    if (ssl != NULL) {
      /* One call sends close_notify; the peer's arrives as EOF later. */
      (void)SSL_shutdown(ssl);
      ERR_clear_error();
      return;
    }
  }
  fd = bufferevent_getfd(lg->bev);
  if (fd >= 0)
    (void)shutdown(fd, SHUT_WR);
}

static void linger_read_cb(struct bufferevent *bev, void *arg) {
  struct evbuffer *in = bufferevent_get_input(bev);

  (void)arg;
  evbuffer_drain(in, evbuffer_get_length(in));
}

static void linger_write_cb(struct bufferevent *bev, void *arg) {
  struct mock_linger *lg = arg;

  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
    linger_shut(lg);
}

static void linger_event_cb(struct bufferevent *bev, short what, void *arg) {
  (void)bev;
  if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT))
    linger_free(arg);
}

static void linger_free(struct mock_linger *lg) {
  struct dgw_mock *mock = lg->mock;

  if (lg->prev != NULL)
    lg->prev->next = lg->next;
  else
    mock->lingers = lg->next;
  if (lg->next != NULL)
    lg->next->prev = lg->prev;
  bufferevent_free(lg->bev);
  free(lg);
}

/*
 * Takes over `bev` of a finished connection: lets its output drain, then
 * half-closes (close_notify for a clean TLS end, a bare FIN otherwise) and
 * discards input until the peer closes or MOCK_LINGER_TIMEOUT_S passes.
 * Closing with unread input would send an RST that can destroy the bytes
 * still in flight to the client.
 */
static void linger_start(struct dgw_mock *mock, struct bufferevent *bev,
                         int tls, enum conn_end how) {
  struct mock_linger *lg;
  struct timeval tv = {MOCK_LINGER_TIMEOUT_S, 0};

  if (mock->freeing || (lg = calloc(1, sizeof *lg)) == NULL) {
    bufferevent_free(bev);
    return;
  }
  lg->mock = mock;
  lg->bev = bev;
  lg->tls_notify = tls && how == END_CLEAN;
  lg->next = mock->lingers;
  if (mock->lingers != NULL)
    mock->lingers->prev = lg;
  mock->lingers = lg;
  bufferevent_setcb(bev, linger_read_cb, linger_write_cb, linger_event_cb, lg);
  bufferevent_setwatermark(bev, EV_WRITE, 0, 0);
  bufferevent_set_timeouts(bev, &tv, &tv);
  bufferevent_enable(bev, EV_READ | EV_WRITE);
  linger_read_cb(bev, lg);
  if (evbuffer_get_length(bufferevent_get_output(bev)) == 0)
    linger_shut(lg);
}

/* ------------------------------------------------------ connection life */

static void conn_enter(struct dgw_mock_conn *conn) {
  conn->busy++;
}

static void conn_leave(struct dgw_mock_conn *conn) {
  if (--conn->busy == 0 && conn->doomed != END_NONE)
    conn_destroy(conn, conn->doomed);
}

/* Ends the connection now, or as soon as nothing of it is on the stack. */
static void conn_end(struct dgw_mock_conn *conn, enum conn_end how) {
  if (conn->state == CONN_DEAD || conn->doomed != END_NONE)
    return;
  if (conn->busy > 0) {
    conn->doomed = how;
    if (conn->bev != NULL)
      bufferevent_disable(conn->bev, EV_READ);
    return;
  }
  conn_destroy(conn, how);
}

static void conn_unlink(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  struct dgw_mock_conn **head =
      conn->state == CONN_OPEN ? &mock->open : &mock->pending;

  if (conn->prev != NULL)
    conn->prev->next = conn->next;
  else
    *head = conn->next;
  if (conn->next != NULL)
    conn->next->prev = conn->prev;
  conn->prev = conn->next = NULL;
  if (conn->state == CONN_OPEN)
    mock->open_count--;
}

static void conn_link(struct dgw_mock_conn *conn, struct dgw_mock_conn **head) {
  conn->prev = NULL;
  conn->next = *head;
  if (*head != NULL)
    (*head)->prev = conn;
  *head = conn;
}

static void conn_destroy(struct dgw_mock_conn *conn, enum conn_end how) {
  struct dgw_mock *mock = conn->mock;
  int was_open = conn->state == CONN_OPEN;
  struct mock_fragment *frag, *next;
  struct bufferevent *bev = conn->bev;

  conn_unlink(conn);
  conn->state = CONN_DEAD;
  conn->doomed = how;
  conn->busy++; /* nothing below may free it a second time */
  if (was_open) {
    int code =
        conn->client_closed && !conn->mock_closed_first ? conn->client_code : 0;
    mock_log(mock, DGW_LOG_DEBUG, "conn %lu: closed (client code %d)", conn->id,
             conn->client_closed ? conn->client_code : 0);
    if (mock->cfg.hooks.on_close != NULL)
      mock->cfg.hooks.on_close(mock, conn, code, mock->cfg.user_data);
  }
  session_detach(conn);
  if (conn->dispatch_timer != NULL)
    event_free(conn->dispatch_timer);
  if (conn->close_timer != NULL)
    event_free(conn->close_timer);
  if (conn->hello_timer != NULL)
    event_free(conn->hello_timer);
  if (conn->ws != NULL)
    wslay_event_context_free(conn->ws);
  if (conn->zs_ready)
    deflateEnd(&conn->zs);
  for (frag = conn->frags; frag != NULL; frag = next) {
    next = frag->next;
    free(frag);
  }
  free(conn->zbuf);
  free(conn->path_query);
  free(conn->rate_stamps);
  if (bev != NULL) {
    if (how == END_DROP)
      bufferevent_free(bev);
    else
      linger_start(mock, bev, conn->tls, how);
  }
  free(conn);
}

/* ------------------------------------------------------- wslay plumbing */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                          int flags, void *user_data) {
  struct dgw_mock_conn *conn = user_data;
  int n;

  (void)flags;
  if (conn->doomed != END_NONE || conn->bev == NULL) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  n = evbuffer_remove(bufferevent_get_input(conn->bev), buf, len);
  if (n <= 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  return n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                          size_t len, int flags, void *user_data) {
  struct dgw_mock_conn *conn = user_data;

  (void)flags;
  if (conn->bev == NULL || bufferevent_write(conn->bev, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

/* Hands wslay at most fragment_size bytes, so each call is one frame. */
static ssize_t ws_fragment_read_cb(wslay_event_context_ptr ctx, uint8_t *buf,
                                   size_t len,
                                   const union wslay_event_msg_source *source,
                                   int *eof, void *user_data) {
  struct mock_fragment *frag = source->data;
  struct dgw_mock_conn *conn = user_data;
  size_t n = frag->len - frag->off;

  (void)ctx;
  if (n > conn->mock->cfg.fragment_size)
    n = conn->mock->cfg.fragment_size;
  if (n > len)
    n = len;
  memcpy(buf, frag->data + frag->off, n);
  frag->off += n;
  if (frag->off == frag->len) {
    /* wslay never reads a source again after eof. */
    *eof = 1;
    if (frag->prev != NULL)
      frag->prev->next = frag->next;
    else
      conn->frags = frag->next;
    if (frag->next != NULL)
      frag->next->prev = frag->prev;
    free(frag);
  }
  return (ssize_t)n;
}

/* Queues one WebSocket message, fragmented when configured. */
static int conn_queue_message(struct dgw_mock_conn *conn, uint8_t opcode,
                              const unsigned char *data, size_t len) {
  size_t frag_size = conn->mock->cfg.fragment_size;
  int rv;

  if (frag_size > 0 && len > frag_size) {
    struct wslay_event_fragmented_msg msg;
    struct mock_fragment *frag = malloc(sizeof *frag + len);

    if (frag == NULL)
      return DGW_ERR_NOMEM;
    frag->conn = conn;
    frag->len = len;
    frag->off = 0;
    memcpy(frag->data, data, len);
    memset(&msg, 0, sizeof msg);
    msg.opcode = opcode;
    msg.source.data = frag;
    msg.read_callback = ws_fragment_read_cb;
    rv = wslay_event_queue_fragmented_msg(conn->ws, &msg);
    if (rv != 0) {
      free(frag);
    } else {
      frag->prev = NULL;
      frag->next = conn->frags;
      if (conn->frags != NULL)
        conn->frags->prev = frag;
      conn->frags = frag;
    }
  } else {
    struct wslay_event_msg msg;

    msg.opcode = opcode;
    msg.msg = data;
    msg.msg_length = len;
    rv = wslay_event_queue_msg(conn->ws, &msg);
  }
  if (rv == WSLAY_ERR_NOMEM)
    return DGW_ERR_NOMEM;
  return rv == 0 ? DGW_OK : DGW_ERR_STATE;
}

/* Writes out everything wslay has queued, then ends the connection when
 * both close frames have passed. */
static void conn_flush(struct dgw_mock_conn *conn) {
  if (conn->state != CONN_OPEN || conn->doomed != END_NONE || conn->in_recv)
    return;
  if (wslay_event_send(conn->ws) != 0) {
    mock_log(conn->mock, DGW_LOG_WARN, "conn %lu: send failed, dropping",
             conn->id);
    conn_end(conn, END_DROP);
    return;
  }
  if (conn->close_pending) {
    conn->close_pending = 0;
    /* Fails only when wslay already queued a close (the echo of the
     * client's, or one for a protocol error): that one ends it. */
    if (wslay_event_queue_close(conn->ws, conn->close_pending_code,
                                (const uint8_t *)conn->close_pending_reason,
                                conn->close_pending_len) == 0 &&
        wslay_event_send(conn->ws) != 0) {
      mock_log(conn->mock, DGW_LOG_WARN, "conn %lu: send failed, dropping",
               conn->id);
      conn_end(conn, END_DROP);
      return;
    }
  }
  if (!wslay_event_want_read(conn->ws) && !wslay_event_want_write(conn->ws))
    conn_end(conn, END_CLEAN);
}

static int conn_can_send(const struct dgw_mock_conn *conn) {
  return conn->state == CONN_OPEN && conn->doomed == END_NONE &&
         !conn->closing && !conn->client_closed;
}

/* Deflates one payload through the connection's stream into conn->zbuf. */
static int conn_deflate(struct dgw_mock_conn *conn, const char *json,
                        size_t len, size_t *out_len) {
  z_stream *zs = &conn->zs;
  size_t used = 0;

  if (len > UINT_MAX)
    return DGW_ERR_INVALID_ARGUMENT;
  zs->next_in = (Bytef *)(uintptr_t)json;
  zs->avail_in = (uInt)len;
  for (;;) {
    int zr;
    if (conn->zcap - used < 64) {
      size_t cap = conn->zcap ? conn->zcap * 2 : 256;
      unsigned char *p;
      while (cap - used < len / 2 + 64)
        cap *= 2;
      if (cap > UINT_MAX || (p = realloc(conn->zbuf, cap)) == NULL)
        return DGW_ERR_NOMEM;
      conn->zbuf = p;
      conn->zcap = cap;
    }
    zs->next_out = conn->zbuf + used;
    zs->avail_out = (uInt)(conn->zcap - used);
    zr = deflate(zs, Z_SYNC_FLUSH);
    used = conn->zcap - zs->avail_out;
    if (zr != Z_OK && zr != Z_BUF_ERROR)
      return DGW_ERR_NOMEM;
    if (zs->avail_out != 0)
      break;
  }
  *out_len = used;
  return DGW_OK;
}

/* Sends one payload as the connection's compression and split/fragment
 * settings say, and flushes. */
static int conn_send_payload(struct dgw_mock_conn *conn, const char *json,
                             size_t len) {
  int rv = DGW_OK;

  if (!conn_can_send(conn))
    return DGW_ERR_STATE;
  if (conn->compress) {
    size_t zlen = 0, off, split = conn->mock->cfg.split_size;

    rv = conn_deflate(conn, json, len, &zlen);
    if (split == 0)
      split = zlen;
    for (off = 0; rv == DGW_OK && off < zlen; off += split) {
      size_t n = zlen - off < split ? zlen - off : split;
      rv = conn_queue_message(conn, WSLAY_BINARY_FRAME, conn->zbuf + off, n);
    }
    if (rv != DGW_OK) {
      /* The client's inflate stream can no longer follow ours. */
      mock_log(conn->mock, DGW_LOG_WARN,
               "conn %lu: compressed send failed, dropping", conn->id);
      conn_end(conn, END_DROP);
      return rv;
    }
  } else {
    rv = conn_queue_message(conn, WSLAY_TEXT_FRAME, (const unsigned char *)json,
                            len);
    if (rv != DGW_OK)
      return rv;
  }
  conn_flush(conn);
  return DGW_OK;
}

static int conn_send_op(struct dgw_mock_conn *conn, int op,
                        const char *d_json) {
  char *json =
      mock_asprintf("{\"t\":null,\"s\":null,\"op\":%d,\"d\":%s}", op, d_json);
  int rv;

  if (json == NULL)
    return DGW_ERR_NOMEM;
  rv = conn_send_payload(conn, json, strlen(json));
  free(json);
  return rv;
}

/* The text of a dispatch payload; NULL when out of memory. */
static char *dispatch_json(const char *t, int64_t seq, const char *d_json) {
  json_object *name = json_object_new_string(t);
  char *json;

  if (name == NULL)
    return NULL;
  json = mock_asprintf("{\"t\":%s,\"s\":%lld,\"op\":0,\"d\":%s}",
                       json_plain(name), (long long)seq, d_json);
  json_object_put(name);
  return json;
}

/* Writes one dispatch payload to the connection, or swallows it while the
 * connection is told to lose dispatches. */
static int conn_write_dispatch(struct dgw_mock_conn *conn, const char *json,
                               const char *t, int64_t seq) {
  int rv;

  if (conn->lose_next > 0) {
    conn->lose_next--;
    mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: lost dispatch %s s=%lld",
             conn->id, t, (long long)seq);
    return DGW_OK;
  }
  rv = conn_send_payload(conn, json, strlen(json));
  if (rv != DGW_OK)
    return rv;
  conn->mock->stats.dispatches_sent++;
  mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: sent dispatch %s s=%lld",
           conn->id, t, (long long)seq);
  return DGW_OK;
}

/*
 * Gives a dispatch the session's next sequence number, keeps it in the
 * history, then sends it to the attached connection if that one can take
 * it.  Returns DGW_OK once the dispatch is in the history (DGW_ERR_NOMEM
 * otherwise); *send_rv (optional) gets the outcome of the send, DGW_OK
 * when nothing was to be sent.  The caller keeps the connection entered.
 */
static int session_dispatch(struct mock_session *s, const char *t,
                            const char *d_json, int *send_rv) {
  struct mock_sent *sent;
  char *json = dispatch_json(t, s->seq + 1, d_json);
  int rv = DGW_OK;

  if (json == NULL || (sent = malloc(sizeof *sent)) == NULL) {
    free(json);
    if (send_rv != NULL)
      *send_rv = DGW_ERR_NOMEM;
    return DGW_ERR_NOMEM;
  }
  sent->seq = ++s->seq;
  sent->json = json;
  session_keep(s, sent); /* cfg.history_max >= 1: `sent` stays */
  if (s->conn != NULL && conn_can_send(s->conn))
    rv = conn_write_dispatch(s->conn, json, t, s->seq);
  else
    mock_log(s->mock, DGW_LOG_DEBUG, "session %s: kept dispatch %s s=%lld",
             s->id, t, (long long)s->seq);
  if (send_rv != NULL)
    *send_rv = rv;
  return DGW_OK;
}

static int conn_send_dispatch_internal(struct dgw_mock_conn *conn,
                                       const char *t, const char *d_json) {
  char *json;
  int rv;

  if (!conn_can_send(conn))
    return DGW_ERR_STATE;
  if (conn->session != NULL) {
    int send_rv;
    rv = session_dispatch(conn->session, t, d_json, &send_rv);
    return rv != DGW_OK ? rv : send_rv;
  }
  /* Before IDENTIFY: the connection counts on its own, nothing is kept. */
  json = dispatch_json(t, conn->seq_unsessioned + 1, d_json);
  if (json == NULL)
    return DGW_ERR_NOMEM;
  rv = conn_write_dispatch(conn, json, t, conn->seq_unsessioned + 1);
  free(json);
  if (rv == DGW_OK)
    conn->seq_unsessioned++;
  return rv;
}

/* Queues a close frame (reason cut to the 123 bytes a frame allows). */
static int conn_close_internal(struct dgw_mock_conn *conn, uint16_t code,
                               const char *reason) {
  size_t len = reason != NULL ? strlen(reason) : 0;
  struct timeval tv = {MOCK_CLOSE_TIMEOUT_MS / 1000,
                       (MOCK_CLOSE_TIMEOUT_MS % 1000) * 1000};
  int rv;

  if (conn->state != CONN_OPEN || conn->doomed != END_NONE || conn->closing ||
      conn->client_closed)
    return DGW_ERR_STATE;
  if (len > 123) {
    len = 123;
    while (len > 0 && ((unsigned char)reason[len] & 0xc0) == 0x80)
      len--; /* do not cut a UTF-8 sequence */
  }
  if (conn->in_recv) {
    /* Replies to the payloads before this one are still in wslay's
     * queue: the close goes after them (see conn_flush()). */
    conn->close_pending = 1;
    conn->close_pending_code = code;
    conn->close_pending_len = len;
    if (len > 0)
      memcpy(conn->close_pending_reason, reason, len);
  } else {
    rv = wslay_event_queue_close(conn->ws, code, (const uint8_t *)reason, len);
    if (rv != 0)
      return rv == WSLAY_ERR_NOMEM ? DGW_ERR_NOMEM : DGW_ERR_STATE;
  }
  conn->closing = 1;
  conn->mock_closed_first = 1;
  mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: sending close %u (%.*s)",
           conn->id, (unsigned)code, (int)len, reason != NULL ? reason : "");
  if (conn->dispatch_timer != NULL)
    evtimer_del(conn->dispatch_timer);
  if (conn->hello_timer != NULL)
    evtimer_del(conn->hello_timer);
  if (conn->close_timer != NULL)
    evtimer_add(conn->close_timer, &tv);
  conn_flush(conn);
  return DGW_OK;
}

/* ------------------------------------------------------- gateway logic */

/* `ws(s)://host:port` with a host a client can dial. */
static void mock_make_resume_url(struct dgw_mock *mock) {
  const char *host = mock->host;
  int v6;

  if (strcmp(host, "0.0.0.0") == 0)
    host = "127.0.0.1";
  else if (strcmp(host, "::") == 0)
    host = "::1";
  v6 = strchr(host, ':') != NULL;
  snprintf(mock->resume_url, sizeof mock->resume_url, "%s://%s%s%s:%u",
           mock->ssl_ctx != NULL ? "wss" : "ws", v6 ? "[" : "", host,
           v6 ? "]" : "", (unsigned)mock->port);
}

static int conn_send_ready(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  struct mock_session *s = conn->session;
  json_object *d = json_object_new_object();
  json_object *user, *guilds, *app, *trace;
  struct mock_dispatch *disp;
  int bad = 0, rv;

  if (d == NULL)
    return DGW_ERR_NOMEM;
  bad |= json_add(d, "v", json_object_new_int(conn->version));
  if ((user = json_object_new_object()) != NULL) {
    bad |= json_add(user, "id", json_object_new_string(MOCK_USER_ID));
    bad |= json_add(user, "username", json_object_new_string("dgw-mock"));
    bad |= json_add(user, "discriminator", json_object_new_string("0"));
    bad |= json_add(user, "bot", json_object_new_boolean(1));
  }
  bad |= json_add(d, "user", user);
  /* Every scripted GUILD_CREATE is one unavailable guild in READY. */
  if ((guilds = json_object_new_array()) != NULL) {
    for (disp = mock->script; disp != NULL; disp = disp->next) {
      json_object *gd, *id, *g;
      if (strcmp(disp->t, "GUILD_CREATE") != 0)
        continue;
      gd = json_tokener_parse(disp->d_json);
      if (gd != NULL && json_object_object_get_ex(gd, "id", &id) &&
          json_object_is_type(id, json_type_string) &&
          (g = json_object_new_object()) != NULL) {
        bad |= json_add(g, "id", json_object_get(id));
        bad |= json_add(g, "unavailable", json_object_new_boolean(1));
        bad |= json_append(guilds, g);
      }
      json_object_put(gd);
    }
  }
  bad |= json_add(d, "guilds", guilds);
  bad |= json_add(d, "session_id", json_object_new_string(s->id));
  bad |= json_add(d, "resume_gateway_url",
                  json_object_new_string(mock->ready_resume_url[0] != '\0'
                                             ? mock->ready_resume_url
                                             : mock->resume_url));
  if (s->shard_count > 0) {
    json_object *shard = json_object_new_array();
    if (shard != NULL) {
      bad |= json_append(shard, json_object_new_int64(s->shard_id));
      bad |= json_append(shard, json_object_new_int64(s->shard_count));
    }
    bad |= json_add(d, "shard", shard);
  }
  if ((app = json_object_new_object()) != NULL) {
    bad |= json_add(app, "id", json_object_new_string(MOCK_USER_ID));
    bad |= json_add(app, "flags", json_object_new_int(0));
  }
  bad |= json_add(d, "application", app);
  bad |= json_add(d, "session_type", json_object_new_string("normal"));
  if ((trace = json_object_new_array()) != NULL)
    bad |= json_append(trace, json_object_new_string("dgw-mock"));
  bad |= json_add(d, "_trace", trace);
  if (bad) {
    json_object_put(d);
    return DGW_ERR_NOMEM;
  }
  rv = conn_send_dispatch_internal(conn, "READY", json_plain(d));
  json_object_put(d);
  return rv;
}

static void dispatch_timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_mock_conn *conn = arg;

  (void)fd;
  (void)what;
  conn_enter(conn);
  conn_script_next(conn);
  conn_leave(conn);
}

/* Sends the session's next scripted dispatch (all the rest when there is
 * no interval), rearming the timer while more remain. */
static void conn_script_next(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  uint32_t interval = mock->cfg.dispatch_interval_ms;

  for (;;) {
    struct mock_session *s = conn->session;
    struct mock_dispatch *next;
    if (s == NULL || !conn_can_send(conn))
      return;
    next = s->script_last != NULL ? s->script_last->next : mock->script;
    if (next == NULL ||
        session_dispatch(s, next->t, next->d_json, NULL) != DGW_OK)
      return;
    s->script_last = next;
    if (interval > 0) {
      struct timeval tv = {(time_t)(interval / 1000),
                           (suseconds_t)((interval % 1000) * 1000)};
      if (next->next != NULL && conn->dispatch_timer != NULL)
        evtimer_add(conn->dispatch_timer, &tv);
      return;
    }
  }
}

/* Goes on with the session's script where it stopped: after READY from
 * the start, after RESUMED from the first entry not yet sent. */
static void conn_script_continue(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  struct mock_session *s = conn->session;
  uint32_t interval = mock->cfg.dispatch_interval_ms;
  struct mock_dispatch *next;

  if (s == NULL)
    return;
  next = s->script_last != NULL ? s->script_last->next : mock->script;
  if (next == NULL)
    return;
  if (interval == 0) {
    conn_script_next(conn);
  } else if (conn->dispatch_timer != NULL) {
    struct timeval tv = {(time_t)(interval / 1000),
                         (suseconds_t)((interval % 1000) * 1000)};
    evtimer_add(conn->dispatch_timer, &tv);
  }
}

static void conn_handle_heartbeat(struct dgw_mock_conn *conn,
                                  json_object *root) {
  json_object *d;

  conn->mock->stats.heartbeats++;
  if (!json_object_object_get_ex(root, "d", &d) ||
      (d != NULL && !json_is_int(d))) {
    conn_close_internal(conn, 4001, "Invalid heartbeat payload");
    return;
  }
  if (!conn->mock->ack) {
    mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: heartbeat not ACKed",
             conn->id);
    return;
  }
  if (conn_send_op(conn, 11, "null") == DGW_OK)
    conn->mock->stats.acks_sent++;
}

/* Checks IDENTIFY's d.token; closes 4004 and returns -1 when wrong. */
static int conn_check_token(struct dgw_mock_conn *conn, json_object *d) {
  const char *want = conn->mock->token;
  json_object *token;

  if (!json_object_object_get_ex(d, "token", &token) ||
      !json_object_is_type(token, json_type_string) ||
      json_object_get_string_len(token) == 0 ||
      (want != NULL && strcmp(json_object_get_string(token), want) != 0)) {
    conn_close_internal(conn, 4004, "Authentication failed");
    return -1;
  }
  return 0;
}

static void conn_handle_identify(struct dgw_mock_conn *conn,
                                 json_object *root) {
  struct dgw_mock *mock = conn->mock;
  json_object *d, *intents, *shard, *props;
  int64_t shard_id = 0, shard_count = 0, bits = 0;
  struct mock_session *s;

  mock->stats.identifies++;
  if (conn->authenticated) {
    conn_close_internal(conn, 4005, "Already authenticated");
    return;
  }
  if (!json_object_object_get_ex(root, "d", &d) ||
      !json_object_is_type(d, json_type_object) ||
      (json_object_object_get_ex(d, "properties", &props) &&
       !json_object_is_type(props, json_type_object))) {
    conn_close_internal(conn, 4001, "Invalid identify payload");
    return;
  }
  if (conn_check_token(conn, d) != 0)
    return;
  if (!json_object_object_get_ex(d, "intents", &intents) ||
      !json_is_int(intents) || (bits = json_object_get_int64(intents)) < 0 ||
      (bits & ~MOCK_INTENTS_ALL) != 0) {
    conn_close_internal(conn, 4013, "Invalid intent(s)");
    return;
  }
  if (json_object_object_get_ex(d, "shard", &shard) && shard != NULL) {
    json_object *a, *b;
    if (!json_object_is_type(shard, json_type_array) ||
        json_object_array_length(shard) != 2 ||
        !json_is_int(a = json_object_array_get_idx(shard, 0)) ||
        !json_is_int(b = json_object_array_get_idx(shard, 1)) ||
        (shard_id = json_object_get_int64(a)) < 0 ||
        (shard_count = json_object_get_int64(b)) <= shard_id) {
      conn_close_internal(conn, 4010, "Invalid shard");
      return;
    }
  }
  s = session_new(mock,
                  json_object_get_string(json_object_object_get(d, "token")));
  if (s == NULL) {
    conn_end(conn, END_DROP);
    return;
  }
  s->intents = bits;
  s->shard_id = shard_id;
  s->shard_count = shard_count;
  session_attach(s, conn);
  /* Dispatches sent before IDENTIFY do not count toward the session. */
  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: identified, session %s", conn->id,
           s->id);
  if (conn_send_ready(conn) != DGW_OK)
    return;
  conn_script_continue(conn);
}

/*
 * RESUME (protocol §5.5, §13.6): attach this connection to the session,
 * replay what the client missed with the original sequence numbers (plus
 * cfg.replay_overlap it already had), send RESUMED, go on with the script.
 * What cannot be resumed gets op 9 d:false on an open connection.
 */
static void conn_handle_resume(struct dgw_mock_conn *conn, json_object *root) {
  struct dgw_mock *mock = conn->mock;
  struct dgw_mock_conn *old;
  json_object *d, *sid, *seqv, *token;
  struct mock_session *s;
  struct mock_sent *sent;
  int64_t seq, from;
  uint32_t overlap = mock->cfg.replay_overlap;

  mock->stats.resumes++;
  if (conn->authenticated) {
    conn_close_internal(conn, 4005, "Already authenticated");
    return;
  }
  if (!json_object_object_get_ex(root, "d", &d) ||
      !json_object_is_type(d, json_type_object) ||
      !json_object_object_get_ex(d, "session_id", &sid) ||
      !json_object_is_type(sid, json_type_string) ||
      !json_object_object_get_ex(d, "seq", &seqv) ||
      (seqv != NULL && !json_is_int(seqv))) {
    conn_close_internal(conn, 4001, "Invalid resume payload");
    return;
  }
  if (conn_check_token(conn, d) != 0)
    return;
  s = session_find(mock, json_object_get_string(sid));
  if (s == NULL) {
    mock_log(mock, DGW_LOG_DEBUG,
             "conn %lu: resume of an unknown, expired or invalidated "
             "session, op 9",
             conn->id);
    conn_send_op(conn, 9, "false");
    return;
  }
  json_object_object_get_ex(d, "token", &token);
  if (strcmp(json_object_get_string(token), s->token) != 0) {
    conn_close_internal(conn, 4004, "Authentication failed");
    return;
  }
  seq = seqv != NULL ? json_object_get_int64(seqv) : 0;
  if (seq < 0 || seq > s->seq) {
    mock_log(mock, DGW_LOG_DEBUG,
             "conn %lu: resume of session %s at seq %lld, beyond %lld",
             conn->id, s->id, (long long)seq, (long long)s->seq);
    conn_close_internal(conn, 4007, "Invalid seq");
    return;
  }
  /* The history has no gaps: its first entry tells what is still there. */
  if (seq < s->seq && (s->history == NULL || s->history->seq > seq + 1)) {
    mock_log(mock, DGW_LOG_DEBUG,
             "conn %lu: resume of session %s at seq %lld, older than the "
             "history, op 9",
             conn->id, s->id, (long long)seq);
    conn_send_op(conn, 9, "false");
    return;
  }

  /* The session's old connection may still look alive to the mock (a
   * zombie the client gave up on): it loses the session and is dropped,
   * once this handler is done with the session. */
  old = s->conn;
  if (old != NULL) {
    mock_log(mock, DGW_LOG_DEBUG, "conn %lu: session %s taken over, dropping",
             old->id, s->id);
    old->session = NULL;
    old->authenticated = 0;
    s->conn = NULL;
    if (old->dispatch_timer != NULL)
      evtimer_del(old->dispatch_timer);
    conn_enter(old);
    conn_end(old, END_DROP);
  }
  session_attach(s, conn);
  mock->stats.resumes_ok++;
  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: resumed session %s at seq %lld/%lld",
           conn->id, s->id, (long long)seq, (long long)s->seq);

  from = seq > (int64_t)overlap ? seq - (int64_t)overlap : 0;
  for (sent = s->history; sent != NULL && conn_can_send(conn);
       sent = sent->next) {
    if (sent->seq > from)
      conn_write_dispatch(conn, sent->json, "(replay)", sent->seq);
  }
  if (conn_can_send(conn) &&
      session_dispatch(s, "RESUMED", "{\"_trace\":" MOCK_TRACE "}", NULL) ==
          DGW_OK)
    conn_script_continue(conn);
  if (old != NULL)
    conn_leave(old);
}

/* ------------------------------------------------------ send rate limit */

/*
 * Stamps one client payload into the connection's sliding window of
 * cfg.rate_window_ms and returns how many the window now holds, this one
 * included; 0 when out of memory.  The ring holds up to
 * max(budget + 1, MOCK_RATE_TRACK_MAX) stamps, so the 4008 decision is
 * exact; past that (limit off) the oldest stamp is forgotten and the count
 * saturates.  Updates stats.max_in_window.
 */
static size_t conn_rate_count(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  uint64_t window = mock->cfg.rate_window_ms != 0 ? mock->cfg.rate_window_ms
                                                  : MOCK_DEFAULT_RATE_WINDOW_MS;
  uint64_t budget = mock->cfg.rate_budget != 0 ? mock->cfg.rate_budget
                                               : MOCK_DEFAULT_RATE_BUDGET;
  uint64_t ceiling =
      budget + 1 > MOCK_RATE_TRACK_MAX ? budget + 1 : MOCK_RATE_TRACK_MAX;
  uint64_t now = mock_now_ms();

  if (ceiling > SIZE_MAX / sizeof *conn->rate_stamps)
    ceiling = SIZE_MAX / sizeof *conn->rate_stamps;
  while (conn->rate_len > 0 &&
         now - conn->rate_stamps[conn->rate_head] >= window) {
    conn->rate_head = (conn->rate_head + 1) % conn->rate_cap;
    conn->rate_len--;
  }
  if (conn->rate_len == conn->rate_cap) {
    if (conn->rate_cap >= ceiling) {
      conn->rate_head = (conn->rate_head + 1) % conn->rate_cap;
      conn->rate_len--;
    } else {
      size_t cap = conn->rate_cap != 0 ? conn->rate_cap * 2 : 64, i;
      uint64_t *p;

      if (cap > ceiling)
        cap = (size_t)ceiling;
      p = malloc(cap * sizeof *p);
      if (p == NULL)
        return 0;
      for (i = 0; i < conn->rate_len; i++)
        p[i] = conn->rate_stamps[(conn->rate_head + i) % conn->rate_cap];
      free(conn->rate_stamps);
      conn->rate_stamps = p;
      conn->rate_cap = cap;
      conn->rate_head = 0;
    }
  }
  conn->rate_stamps[(conn->rate_head + conn->rate_len) % conn->rate_cap] = now;
  conn->rate_len++;
  if (conn->rate_len > mock->stats.max_in_window)
    mock->stats.max_in_window = conn->rate_len;
  return conn->rate_len;
}

/* ------------------------------------------------------------- commands */

/*
 * Reads a snowflake: a string of 1 to 20 digits or a JSON integer >= 0,
 * at most UINT64_MAX.  Returns 0, or -1 when `v` is not one.
 */
static int json_snowflake(json_object *v, uint64_t *out) {
  if (json_is_int(v)) {
    if (json_object_get_int64(v) < 0)
      return -1;
    *out = json_object_get_uint64(v);
    return 0;
  }
  if (v != NULL && json_object_is_type(v, json_type_string)) {
    const char *str = json_object_get_string(v);
    int len = json_object_get_string_len(v), i;
    uint64_t x = 0;

    if (len <= 0 || len > 20)
      return -1;
    for (i = 0; i < len; i++) {
      unsigned digit;
      if (str[i] < '0' || str[i] > '9')
        return -1;
      digit = (unsigned)(str[i] - '0');
      if (x > (UINT64_MAX - digit) / 10)
        return -1;
      x = x * 10 + digit;
    }
    *out = x;
    return 0;
  }
  return -1;
}

/* A snowflake as a JSON string; NULL when out of memory. */
static json_object *json_new_snowflake(uint64_t id) {
  char text[24];

  snprintf(text, sizeof text, "%" PRIu64, id);
  return json_object_new_string(text);
}

/* Whether `v` is a string (when `allow_null`, or null). */
static int json_is_string(json_object *v, int allow_null) {
  if (v == NULL)
    return allow_null;
  return json_object_is_type(v, json_type_string);
}

static int json_is_bool(json_object *v) {
  return v != NULL && json_object_is_type(v, json_type_boolean);
}

/* `d.key` as a snowflake: 0, or -1 when missing or not one. */
static int json_get_snowflake(json_object *d, const char *key, uint64_t *out) {
  json_object *v;

  if (!json_object_object_get_ex(d, key, &v))
    return -1;
  return json_snowflake(v, out);
}

/*
 * Makes `d` (consumed, may be NULL) a dispatch `t` of the session.  `bad`
 * says building `d` ran out of memory.  Returns DGW_OK once the dispatch
 * is in the history, DGW_ERR_NOMEM otherwise.
 */
static int session_dispatch_obj(struct mock_session *s, const char *t,
                                json_object *d, int bad) {
  const char *text;
  int rv;

  if (d == NULL || bad) {
    json_object_put(d);
    return DGW_ERR_NOMEM;
  }
  text = json_plain(d);
  rv = text != NULL ? session_dispatch(s, t, text, NULL) : DGW_ERR_NOMEM;
  json_object_put(d);
  return rv;
}

/* op 3 (protocol §11.1): all four fields, with their types. */
static int cmd_presence(json_object *d) {
  static const char *const statuses[] = {"online", "dnd", "idle", "invisible",
                                         "offline"};
  json_object *v, *acts;
  const char *status;
  size_t i, n;
  int known = 0;

  if (!json_object_object_get_ex(d, "since", &v) ||
      (v != NULL && (!json_is_int(v) || json_object_get_int64(v) < 0)))
    return DGW_ERR_INVALID_ARGUMENT;
  if (!json_object_object_get_ex(d, "afk", &v) || !json_is_bool(v))
    return DGW_ERR_INVALID_ARGUMENT;
  if (!json_object_object_get_ex(d, "status", &v) || !json_is_string(v, 0))
    return DGW_ERR_INVALID_ARGUMENT;
  status = json_object_get_string(v);
  for (i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
    known |= strcmp(status, statuses[i]) == 0;
  if (!known)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!json_object_object_get_ex(d, "activities", &acts) || acts == NULL ||
      !json_object_is_type(acts, json_type_array))
    return DGW_ERR_INVALID_ARGUMENT;
  n = json_object_array_length(acts);
  for (i = 0; i < n; i++) {
    json_object *a = json_object_array_get_idx(acts, i);
    int64_t type;
    if (a == NULL || !json_object_is_type(a, json_type_object) ||
        !json_object_object_get_ex(a, "name", &v) || !json_is_string(v, 0) ||
        !json_object_object_get_ex(a, "type", &v) || !json_is_int(v))
      return DGW_ERR_INVALID_ARGUMENT;
    type = json_object_get_int64(v);
    if (type < 0 || type > 5)
      return DGW_ERR_INVALID_ARGUMENT;
    if ((json_object_object_get_ex(a, "state", &v) && !json_is_string(v, 1)) ||
        (json_object_object_get_ex(a, "url", &v) && !json_is_string(v, 1)))
      return DGW_ERR_INVALID_ARGUMENT;
  }
  return DGW_OK;
}

static json_object *voice_state_d(const struct mock_session *s, uint64_t guild,
                                  int has_channel, uint64_t channel,
                                  int self_mute, int self_deaf) {
  json_object *d = json_object_new_object(), *member, *user;
  int bad = 0;

  if (d == NULL)
    return NULL;
  bad |= json_add(d, "guild_id", json_new_snowflake(guild));
  if (has_channel)
    bad |= json_add(d, "channel_id", json_new_snowflake(channel));
  else if (json_object_object_add(d, "channel_id", NULL) != 0)
    bad = -1;
  bad |= json_add(d, "user_id", json_object_new_string(MOCK_USER_ID));
  bad |= json_add(d, "session_id", json_object_new_string(s->id));
  bad |= json_add(d, "deaf", json_object_new_boolean(0));
  bad |= json_add(d, "mute", json_object_new_boolean(0));
  bad |= json_add(d, "self_deaf", json_object_new_boolean(self_deaf));
  bad |= json_add(d, "self_mute", json_object_new_boolean(self_mute));
  bad |= json_add(d, "self_video", json_object_new_boolean(0));
  bad |= json_add(d, "suppress", json_object_new_boolean(0));
  if (json_object_object_add(d, "request_to_speak_timestamp", NULL) != 0)
    bad = -1;
  if ((member = json_object_new_object()) != NULL) {
    if ((user = json_object_new_object()) != NULL) {
      bad |= json_add(user, "id", json_object_new_string(MOCK_USER_ID));
      bad |= json_add(user, "username", json_object_new_string("dgw-mock"));
      bad |= json_add(user, "bot", json_object_new_boolean(1));
    }
    bad |= json_add(member, "user", user);
    bad |= json_add(member, "roles", json_object_new_array());
    bad |= json_add(member, "deaf", json_object_new_boolean(0));
    bad |= json_add(member, "mute", json_object_new_boolean(0));
  }
  bad |= json_add(d, "member", member);
  if (bad) {
    json_object_put(d);
    return NULL;
  }
  return d;
}

static json_object *voice_server_d(uint64_t guild) {
  json_object *d = json_object_new_object();
  char token[12 + 33];
  int bad = 0;

  if (d == NULL)
    return NULL;
  memcpy(token, "voice-token-", 12);
  session_random_id(token + 12);
  bad |= json_add(d, "token", json_object_new_string(token));
  bad |= json_add(d, "guild_id", json_new_snowflake(guild));
  bad |= json_add(d, "endpoint", json_object_new_string(MOCK_VOICE_ENDPOINT));
  if (bad) {
    json_object_put(d);
    return NULL;
  }
  return d;
}

/* op 4 (protocol §11.2): VOICE_STATE_UPDATE, and VOICE_SERVER_UPDATE
 * unless the bot leaves. */
static int cmd_voice_state(struct dgw_mock *mock, struct mock_session *s,
                           json_object *d) {
  json_object *v;
  uint64_t guild, channel = 0;
  int has_channel, self_mute, self_deaf, rv, i;

  if (json_get_snowflake(d, "guild_id", &guild) != 0 ||
      !json_object_object_get_ex(d, "channel_id", &v))
    return DGW_ERR_INVALID_ARGUMENT;
  has_channel = v != NULL;
  if (has_channel && json_snowflake(v, &channel) != 0)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!json_object_object_get_ex(d, "self_mute", &v) || !json_is_bool(v))
    return DGW_ERR_INVALID_ARGUMENT;
  self_mute = json_object_get_boolean(v);
  if (!json_object_object_get_ex(d, "self_deaf", &v) || !json_is_bool(v))
    return DGW_ERR_INVALID_ARGUMENT;
  self_deaf = json_object_get_boolean(v);
  for (i = 0; i < 2; i++) {
    int server = (i == 0) == (mock->cfg.voice_server_first != 0);
    if (server && !has_channel)
      continue;
    if (server)
      rv = session_dispatch_obj(s, "VOICE_SERVER_UPDATE", voice_server_d(guild),
                                0);
    else
      rv = session_dispatch_obj(
          s, "VOICE_STATE_UPDATE",
          voice_state_d(s, guild, has_channel, channel, self_mute, self_deaf),
          0);
    if (rv != DGW_OK)
      return rv;
  }
  return DGW_OK;
}

/* The members an op 8 request gets. */
struct member_result {
  int all;        /* every member: 0 .. count - 1 */
  uint32_t count; /* members of the guild */
  int by_ids;     /* a user_ids request: not_found goes in chunk 0 */
  uint32_t idx[MOCK_QUERY_MAX > MOCK_MAX_USER_IDS ? MOCK_QUERY_MAX
                                                  : MOCK_MAX_USER_IDS];
  size_t n; /* used of idx (unless `all`) */
  uint64_t not_found[MOCK_MAX_USER_IDS];
  size_t n_not_found;
};

static char ascii_lower(char c) {
  return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/*
 * Fills r->idx with the members whose username "user<i>" starts with `q`
 * (ASCII case-insensitively), lowest i first, at most `cap`.  The i that
 * start with the digits D are D, then D0..D9, D00..D99, ...: ranges that
 * ascend, so no member list is ever built.
 */
static void members_query(struct member_result *r, const char *q, size_t qlen,
                          size_t cap) {
  static const char prefix[] = "user";
  uint64_t d = 0, lo, span, x;
  size_t i;

  for (i = 0; i < qlen && i < 4; i++)
    if (ascii_lower(q[i]) != prefix[i])
      return;
  if (qlen <= 4) {
    for (x = 0; x < r->count && r->n < cap; x++)
      r->idx[r->n++] = (uint32_t)x;
    return;
  }
  q += 4;
  qlen -= 4;
  if (qlen > 10 || (q[0] == '0' && qlen > 1))
    return; /* more digits than a uint32_t, or a leading zero */
  for (i = 0; i < qlen; i++) {
    if (q[i] < '0' || q[i] > '9')
      return;
    d = d * 10 + (uint64_t)(q[i] - '0');
  }
  for (lo = d, span = 1; lo < r->count && r->n < cap; lo *= 10, span *= 10) {
    for (x = lo; x < lo + span && x < r->count && r->n < cap; x++)
      r->idx[r->n++] = (uint32_t)x;
    if (d == 0)
      break; /* "user0": only member 0 */
  }
}

/* Sorts the requested user ids into members and not_found, each once. */
static int members_by_ids(struct member_result *r, json_object *ids) {
  size_t i, j, n = 1;
  int single = !json_object_is_type(ids, json_type_array);

  if (!single) {
    n = json_object_array_length(ids);
    if (n > MOCK_MAX_USER_IDS)
      return DGW_ERR_INVALID_ARGUMENT;
  }
  r->by_ids = 1;
  for (i = 0; i < n; i++) {
    json_object *v = single ? ids : json_object_array_get_idx(ids, i);
    uint64_t id;
    int seen = 0;

    if (json_snowflake(v, &id) != 0)
      return DGW_ERR_INVALID_ARGUMENT;
    if (id >= MOCK_MEMBER_ID_BASE && id - MOCK_MEMBER_ID_BASE < r->count) {
      uint32_t m = (uint32_t)(id - MOCK_MEMBER_ID_BASE);
      for (j = 0; j < r->n; j++)
        seen |= r->idx[j] == m;
      if (!seen)
        r->idx[r->n++] = m;
    } else {
      for (j = 0; j < r->n_not_found; j++)
        seen |= r->not_found[j] == id;
      if (!seen)
        r->not_found[r->n_not_found++] = id;
    }
  }
  return DGW_OK;
}

static json_object *member_obj(uint64_t i) {
  json_object *m = json_object_new_object(), *user;
  char name[32];
  int bad = 0;

  if (m == NULL)
    return NULL;
  snprintf(name, sizeof name, "user%" PRIu64, i);
  if ((user = json_object_new_object()) != NULL) {
    bad |= json_add(user, "id", json_new_snowflake(MOCK_MEMBER_ID_BASE + i));
    bad |= json_add(user, "username", json_object_new_string(name));
  }
  bad |= json_add(m, "user", user);
  if (bad) {
    json_object_put(m);
    return NULL;
  }
  return m;
}

/* GUILD_MEMBERS_CHUNK dispatches of at most cfg.chunk_size members; one,
 * empty, when nothing matched. */
static int member_chunks(struct dgw_mock *mock, struct mock_session *s,
                         uint64_t guild, const struct member_result *r,
                         const char *nonce, int presences) {
  uint64_t size = mock->cfg.chunk_size != 0 ? mock->cfg.chunk_size
                                            : MOCK_DEFAULT_CHUNK_SIZE;
  uint64_t total = r->all ? r->count : r->n;
  uint64_t chunks = total == 0 ? 1 : (total + size - 1) / size, k, p;
  size_t i;

  for (k = 0; k < chunks; k++) {
    json_object *d = json_object_new_object(), *members, *nf;
    int bad = 0, rv;

    if (d == NULL)
      return DGW_ERR_NOMEM;
    bad |= json_add(d, "guild_id", json_new_snowflake(guild));
    if ((members = json_object_new_array()) != NULL) {
      for (p = k * size; !bad && p < total && p < (k + 1) * size; p++)
        bad |= json_append(members, member_obj(r->all ? p : r->idx[p]));
    }
    bad |= json_add(d, "members", members);
    bad |= json_add(d, "chunk_index", json_object_new_int64((int64_t)k));
    bad |= json_add(d, "chunk_count", json_object_new_int64((int64_t)chunks));
    if (k == 0 && r->by_ids) {
      if ((nf = json_object_new_array()) != NULL) {
        for (i = 0; i < r->n_not_found; i++)
          bad |= json_append(nf, json_new_snowflake(r->not_found[i]));
      }
      bad |= json_add(d, "not_found", nf);
    }
    if (presences)
      bad |= json_add(d, "presences", json_object_new_array());
    if (nonce != NULL)
      bad |= json_add(d, "nonce", json_object_new_string(nonce));
    rv = session_dispatch_obj(s, "GUILD_MEMBERS_CHUNK", d, bad);
    if (rv != DGW_OK)
      return rv;
  }
  return DGW_OK;
}

/*
 * The all-members rate of a session (protocol §6.4): returns 0 and
 * remembers now when `guild` may be served, the milliseconds left (>= 1)
 * when it may not, -1 when out of memory.
 */
static int64_t session_member_rate(struct mock_session *s, uint64_t guild) {
  uint64_t rate = s->mock->cfg.member_rate_ms != 0
                      ? s->mock->cfg.member_rate_ms
                      : MOCK_DEFAULT_MEMBER_RATE_MS;
  uint64_t now = mock_now_ms();
  size_t i, kept = 0;

  for (i = 0; i < s->member_rates_len; i++)
    if (now - s->member_rates[i].at_ms < rate)
      s->member_rates[kept++] = s->member_rates[i];
  s->member_rates_len = kept;
  for (i = 0; i < kept; i++)
    if (s->member_rates[i].guild_id == guild)
      return (int64_t)(rate - (now - s->member_rates[i].at_ms));
  if (s->member_rates_len == s->member_rates_cap) {
    size_t cap = s->member_rates_cap != 0 ? s->member_rates_cap * 2 : 8;
    struct mock_member_rate *p;
    if (cap > SIZE_MAX / sizeof *p ||
        (p = realloc(s->member_rates, cap * sizeof *p)) == NULL)
      return -1;
    s->member_rates = p;
    s->member_rates_cap = cap;
  }
  s->member_rates[s->member_rates_len].guild_id = guild;
  s->member_rates[s->member_rates_len].at_ms = now;
  s->member_rates_len++;
  return 0;
}

static int member_rate_limited(struct dgw_mock *mock, struct mock_session *s,
                               uint64_t guild, const char *nonce,
                               int64_t wait_ms) {
  json_object *d = json_object_new_object(), *meta;
  char secs[32];
  int bad = 0;

  if (d == NULL)
    return DGW_ERR_NOMEM;
  snprintf(secs, sizeof secs, "%" PRId64 ".%03" PRId64, wait_ms / 1000,
           wait_ms % 1000);
  bad |= json_add(d, "opcode", json_object_new_int(8));
  bad |= json_add(d, "retry_after",
                  json_object_new_double_s((double)wait_ms / 1000.0, secs));
  if ((meta = json_object_new_object()) != NULL) {
    bad |= json_add(meta, "guild_id", json_new_snowflake(guild));
    if (nonce != NULL)
      bad |= json_add(meta, "nonce", json_object_new_string(nonce));
  }
  bad |= json_add(d, "meta", meta);
  mock->stats.rate_limited++;
  return session_dispatch_obj(s, "RATE_LIMITED", d, bad);
}

/* op 8 (protocol §11.3, §6.4). */
static int cmd_members(struct dgw_mock *mock, struct mock_session *s,
                       json_object *d) {
  struct member_result *r;
  json_object *v, *ids, *query;
  const char *nonce = NULL;
  uint64_t guild;
  int presences = 0, rv = DGW_OK;

  if (json_get_snowflake(d, "guild_id", &guild) != 0)
    return DGW_ERR_INVALID_ARGUMENT;
  if (json_object_object_get_ex(d, "presences", &v) && v != NULL) {
    if (!json_is_bool(v))
      return DGW_ERR_INVALID_ARGUMENT;
    presences = json_object_get_boolean(v);
  }
  /* An invalid nonce is dropped silently, not refused. */
  if (json_object_object_get_ex(d, "nonce", &v) && json_is_string(v, 0) &&
      json_object_get_string_len(v) >= 1 &&
      json_object_get_string_len(v) <= MOCK_NONCE_MAX)
    nonce = json_object_get_string(v);
  if ((r = calloc(1, sizeof *r)) == NULL)
    return DGW_ERR_NOMEM;
  r->count = mock->cfg.members_per_guild != 0 ? mock->cfg.members_per_guild
                                              : MOCK_DEFAULT_MEMBERS;
  if (json_object_object_get_ex(d, "user_ids", &ids) && ids != NULL) {
    rv = members_by_ids(r, ids);
  } else if (json_object_object_get_ex(d, "query", &query) &&
             json_is_string(query, 0) &&
             json_object_object_get_ex(d, "limit", &v) && json_is_int(v) &&
             json_object_get_int64(v) >= 0) {
    int64_t limit = json_object_get_int64(v);
    int qlen = json_object_get_string_len(query);

    if (qlen == 0 && limit == 0) {
      int64_t wait = session_member_rate(s, guild);
      if (wait < 0)
        rv = DGW_ERR_NOMEM;
      else if (wait > 0)
        rv = member_rate_limited(mock, s, guild, nonce, wait);
      else
        r->all = 1;
      if (wait != 0) {
        free(r);
        return rv;
      }
    } else {
      members_query(r, json_object_get_string(query), (size_t)qlen,
                    limit == 0 || limit > MOCK_QUERY_MAX ? MOCK_QUERY_MAX
                                                         : (size_t)limit);
    }
  } else {
    rv = DGW_ERR_INVALID_ARGUMENT; /* neither user_ids nor query + limit */
  }
  if (rv == DGW_OK)
    rv = member_chunks(mock, s, guild, r, nonce, presences);
  free(r);
  return rv;
}

/* op 31 (protocol §11.4): one SOUNDBOARD_SOUNDS per guild, in order. */
static int cmd_soundboard(struct mock_session *s, json_object *d) {
  json_object *ids;
  size_t i, n;
  uint64_t guild;
  int k;

  if (!json_object_object_get_ex(d, "guild_ids", &ids) || ids == NULL ||
      !json_object_is_type(ids, json_type_array))
    return DGW_ERR_INVALID_ARGUMENT;
  n = json_object_array_length(ids);
  for (i = 0; i < n; i++)
    if (json_snowflake(json_object_array_get_idx(ids, i), &guild) != 0)
      return DGW_ERR_INVALID_ARGUMENT;
  for (i = 0; i < n; i++) {
    json_object *out = json_object_new_object(), *sounds;
    int bad = 0, rv;

    json_snowflake(json_object_array_get_idx(ids, i), &guild);
    if (out == NULL)
      return DGW_ERR_NOMEM;
    bad |= json_add(out, "guild_id", json_new_snowflake(guild));
    if ((sounds = json_object_new_array()) != NULL) {
      for (k = 1; k <= MOCK_SOUNDS_PER_GUILD; k++) {
        json_object *snd = json_object_new_object();
        char name[24];
        snprintf(name, sizeof name, "sound%d", k);
        if (snd != NULL) {
          bad |= json_add(snd, "sound_id",
                          json_new_snowflake(MOCK_SOUND_ID_BASE + (uint64_t)k));
          bad |= json_add(snd, "name", json_object_new_string(name));
          bad |= json_add(snd, "volume", json_object_new_double_s(1.0, "1.0"));
          if (json_object_object_add(snd, "emoji_id", NULL) != 0 ||
              json_object_object_add(snd, "emoji_name", NULL) != 0)
            bad = -1;
          bad |= json_add(snd, "guild_id", json_new_snowflake(guild));
          bad |= json_add(snd, "available", json_object_new_boolean(1));
        }
        bad |= json_append(sounds, snd);
      }
    }
    bad |= json_add(out, "soundboard_sounds", sounds);
    rv = session_dispatch_obj(s, "SOUNDBOARD_SOUNDS", out, bad);
    if (rv != DGW_OK)
      return rv;
  }
  return DGW_OK;
}

/* op 43 (protocol §11.5): one CHANNEL_INFO with the fields asked for. */
static int cmd_channel_info(struct mock_session *s, json_object *d) {
  json_object *fields, *out, *channels, *ch;
  uint64_t guild;
  size_t i, n;
  int want_status = 0, want_start = 0, bad = 0;

  if (json_get_snowflake(d, "guild_id", &guild) != 0 ||
      !json_object_object_get_ex(d, "fields", &fields) || fields == NULL ||
      !json_object_is_type(fields, json_type_array))
    return DGW_ERR_INVALID_ARGUMENT;
  n = json_object_array_length(fields);
  for (i = 0; i < n; i++) {
    json_object *f = json_object_array_get_idx(fields, i);
    const char *name;
    if (!json_is_string(f, 0))
      return DGW_ERR_INVALID_ARGUMENT;
    name = json_object_get_string(f);
    if (strcmp(name, "status") == 0)
      want_status = 1;
    else if (strcmp(name, "voice_start_time") == 0)
      want_start = 1;
    else
      return DGW_ERR_INVALID_ARGUMENT;
  }
  if ((out = json_object_new_object()) == NULL)
    return DGW_ERR_NOMEM;
  bad |= json_add(out, "guild_id", json_new_snowflake(guild));
  if ((channels = json_object_new_array()) != NULL) {
    if ((ch = json_object_new_object()) != NULL) {
      bad |= json_add(ch, "id", json_object_new_string(MOCK_CHANNEL_ID));
      if (want_status)
        bad |=
            json_add(ch, "status", json_object_new_string(MOCK_CHANNEL_STATUS));
      if (want_start)
        bad |= json_add(ch, "voice_start_time",
                        json_object_new_int64(MOCK_VOICE_START_TIME));
    }
    bad |= json_append(channels, ch);
  }
  bad |= json_add(out, "channels", channels);
  return session_dispatch_obj(s, "CHANNEL_INFO", out, bad);
}

/* Ops 3, 4, 8, 31, 43: checks d, answers with dispatches of the session. */
static void conn_handle_command(struct dgw_mock_conn *conn, int op,
                                json_object *root) {
  struct dgw_mock *mock = conn->mock;
  struct mock_session *s = conn->session;
  json_object *d;
  const char *what;
  char reason[64];
  int rv;

  switch (op) {
  case 3:
    what = "presence update";
    break;
  case 4:
    what = "voice state update";
    break;
  case 8:
    what = "request guild members";
    break;
  case 31:
    what = "request soundboard sounds";
    break;
  default:
    what = "request channel info";
    break;
  }
  if (!conn->authenticated || s == NULL) {
    conn_close_internal(conn, 4003, "Not authenticated");
    return;
  }
  if (!json_object_object_get_ex(root, "d", &d) || d == NULL ||
      !json_object_is_type(d, json_type_object)) {
    rv = DGW_ERR_INVALID_ARGUMENT;
  } else {
    switch (op) {
    case 3:
      rv = cmd_presence(d);
      break;
    case 4:
      rv = cmd_voice_state(mock, s, d);
      break;
    case 8:
      rv = cmd_members(mock, s, d);
      break;
    case 31:
      rv = cmd_soundboard(s, d);
      break;
    default:
      rv = cmd_channel_info(s, d);
      break;
    }
  }
  if (rv == DGW_OK) {
    mock->stats.commands++;
    mock_log(mock, DGW_LOG_DEBUG, "conn %lu: %s (op %d) done", conn->id, what,
             op);
  } else if (rv == DGW_ERR_INVALID_ARGUMENT) {
    snprintf(reason, sizeof reason, "Invalid %s payload", what);
    conn_close_internal(conn, 4001, reason);
  } else {
    mock_log(mock, DGW_LOG_WARN, "conn %lu: out of memory answering op %d",
             conn->id, op);
    conn_end(conn, END_DROP);
  }
}

/* One complete client message: a gateway payload. */
static void conn_handle_payload(struct dgw_mock_conn *conn, const uint8_t *msg,
                                size_t len) {
  struct dgw_mock *mock = conn->mock;
  json_object *root = NULL, *opv;
  char *text;
  int ok = 0, op = -1;
  size_t in_window;
  uint32_t budget = mock->cfg.rate_budget != 0 ? mock->cfg.rate_budget
                                               : MOCK_DEFAULT_RATE_BUDGET;

  in_window = conn_rate_count(conn);
  text = malloc(len + 1);
  if (text == NULL || in_window == 0) {
    free(text);
    conn_end(conn, END_DROP);
    return;
  }
  if (len > 0)
    memcpy(text, msg, len);
  text[len] = '\0';
  root = json_parse_exact(text, len, &ok);
  if (root != NULL && json_object_is_type(root, json_type_object) &&
      json_object_object_get_ex(root, "op", &opv) && json_is_int(opv)) {
    int64_t v = json_object_get_int64(opv);
    if (v >= 0 && v <= INT_MAX)
      op = (int)v;
  }
  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: received op %d (%zu bytes)",
           conn->id, op, len);
  if (mock->cfg.hooks.on_payload != NULL)
    mock->cfg.hooks.on_payload(mock, conn, op, text, len, mock->cfg.user_data);
  if (!conn_can_send(conn))
    goto out;
  if (!mock->cfg.no_rate_limit && in_window > budget) {
    mock->stats.rate_limit_closes++;
    mock_log(mock, DGW_LOG_INFO,
             "conn %lu: %zu payloads in the rate window, budget %lu: 4008",
             conn->id, in_window, (unsigned long)budget);
    conn_close_internal(conn, 4008, "Rate limited");
  } else if (len > MOCK_MAX_PAYLOAD) {
    conn_close_internal(conn, 4002, "Payload too large");
  } else if (!ok || !json_object_is_type(root, json_type_object)) {
    conn_close_internal(conn, 4002, "Error while decoding payload");
  } else if (op < 0) {
    conn_close_internal(conn, 4001, "Unknown opcode");
  } else {
    switch (op) {
    case 1:
      conn_handle_heartbeat(conn, root);
      break;
    case 2:
      conn_handle_identify(conn, root);
      break;
    case 6:
      conn_handle_resume(conn, root);
      break;
    case 3:
    case 4:
    case 8:
    case 31:
    case 43:
      conn_handle_command(conn, op, root);
      break;
    default:
      conn_close_internal(conn, 4001, "Unknown opcode");
      break;
    }
  }
out:
  json_object_put(root);
  free(text);
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *arg,
                      void *user_data) {
  struct dgw_mock_conn *conn = user_data;

  (void)ctx;
  if (conn->doomed != END_NONE)
    return;
  switch (arg->opcode) {
  case WSLAY_TEXT_FRAME:
  case WSLAY_BINARY_FRAME:
    conn_handle_payload(conn, arg->msg, arg->msg_length);
    break;
  case WSLAY_CONNECTION_CLOSE:
    conn->client_closed = 1;
    conn->client_code = arg->status_code;
    mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: client sent close %u",
             conn->id, (unsigned)arg->status_code);
    if (conn->dispatch_timer != NULL)
      evtimer_del(conn->dispatch_timer);
    break;
  default:
    break; /* pings are answered by wslay */
  }
}

static void conn_ws_read(struct dgw_mock_conn *conn) {
  int rv;

  conn->in_recv = 1;
  rv = wslay_event_recv(conn->ws);
  conn->in_recv = 0;
  if (conn->doomed != END_NONE)
    return;
  if (rv != 0) {
    /* Broken framing: wslay stopped reading and queued a close frame;
     * send it, then close the socket. */
    mock_log(conn->mock, DGW_LOG_INFO,
             "conn %lu: WebSocket protocol error from the client", conn->id);
    conn_flush(conn);
    conn_end(conn, END_CLEAN);
    return;
  }
  conn_flush(conn);
}

static void close_timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_mock_conn *conn = arg;

  (void)fd;
  (void)what;
  conn_enter(conn);
  mock_log(conn->mock, DGW_LOG_DEBUG,
           "conn %lu: no close reply from the client, closing", conn->id);
  conn_end(conn, END_CLEAN);
  conn_leave(conn);
}

static void conn_send_hello(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  char *hello =
      mock_asprintf("{\"heartbeat_interval\":%lu,\"_trace\":" MOCK_TRACE "}",
                    (unsigned long)(mock->cfg.heartbeat_interval_ms != 0
                                        ? mock->cfg.heartbeat_interval_ms
                                        : MOCK_DEFAULT_HEARTBEAT_MS));

  if (hello == NULL) {
    conn_end(conn, END_DROP);
    return;
  }
  conn_send_op(conn, 10, hello);
  free(hello);
}

static void hello_timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_mock_conn *conn = arg;

  (void)fd;
  (void)what;
  conn_enter(conn);
  if (conn_can_send(conn))
    conn_send_hello(conn);
  conn_leave(conn);
}

/* ---------------------------------------------------------- HTTP upgrade */

/* Finds `key` in the query of `path_query`; copies its value into `out`.
 * Returns 1 when present. */
static int query_get(const char *path_query, const char *key, char *out,
                     size_t out_size) {
  const char *p = strchr(path_query, '?');
  size_t key_len = strlen(key);

  if (p == NULL)
    return 0;
  p++;
  while (*p != '\0' && *p != '#') {
    const char *end = p + strcspn(p, "&#");
    const char *eq = memchr(p, '=', (size_t)(end - p));
    size_t name_len = eq != NULL ? (size_t)(eq - p) : (size_t)(end - p);
    if (name_len == key_len && memcmp(p, key, key_len) == 0) {
      size_t vlen = eq != NULL ? (size_t)(end - eq - 1) : 0;
      if (vlen >= out_size)
        vlen = out_size - 1;
      if (vlen > 0)
        memcpy(out, eq + 1, vlen);
      out[vlen] = '\0';
      return 1;
    }
    p = *end == '&' ? end + 1 : end;
  }
  return 0;
}

static void conn_reject_http(struct dgw_mock_conn *conn, const char *reason) {
  mock_log(conn->mock, DGW_LOG_INFO, "conn %lu: bad upgrade request: %s",
           conn->id, reason);
  evbuffer_add_printf(bufferevent_get_output(conn->bev),
                      "HTTP/1.1 400 Bad Request\r\n"
                      "Content-Type: text/plain\r\n"
                      "Content-Length: %zu\r\n"
                      "Connection: close\r\n\r\n%s\n",
                      strlen(reason) + 1, reason);
  conn_end(conn, END_CLEAN);
}

static int conn_ws_init(struct dgw_mock_conn *conn) {
  struct wslay_event_callbacks cbs;

  memset(&cbs, 0, sizeof cbs);
  cbs.recv_callback = ws_recv_cb;
  cbs.send_callback = ws_send_cb;
  cbs.on_msg_recv_callback = ws_msg_cb;
  if (wslay_event_context_server_init(&conn->ws, &cbs, conn) != 0) {
    conn->ws = NULL;
    return DGW_ERR_NOMEM;
  }
  wslay_event_config_set_max_recv_msg_length(conn->ws, MOCK_MAX_RECV_MSG);
  conn->dispatch_timer = evtimer_new(conn->mock->base, dispatch_timer_cb, conn);
  conn->close_timer = evtimer_new(conn->mock->base, close_timer_cb, conn);
  conn->hello_timer = evtimer_new(conn->mock->base, hello_timer_cb, conn);
  if (conn->dispatch_timer == NULL || conn->close_timer == NULL ||
      conn->hello_timer == NULL)
    return DGW_ERR_NOMEM;
  return DGW_OK;
}

static void conn_upgrade(struct dgw_mock_conn *conn,
                         const struct dgw_handshake_request_info *info) {
  struct dgw_mock *mock = conn->mock;
  char accept[DGW_WS_ACCEPT_LEN + 1], v[16], encoding[32], compress[32];
  int has_v, has_encoding, has_compress, version = -1;
  uint16_t close_code = 0;
  const char *close_reason = NULL;

  conn->path_query = mock_strdup(info->path_query);
  if (conn->path_query == NULL || conn_ws_init(conn) != DGW_OK) {
    conn_end(conn, END_DROP);
    return;
  }
  dgw_ws_accept_key(info->key, strlen(info->key), accept);
  if (mock->cfg.bad_accept)
    accept[0] = accept[0] == 'A' ? 'B' : 'A';
  evbuffer_add_printf(bufferevent_get_output(conn->bev),
                      "HTTP/1.1 101 Switching Protocols\r\n"
                      "Upgrade: websocket\r\n"
                      "Connection: Upgrade\r\n"
                      "Sec-WebSocket-Accept: %s\r\n\r\n",
                      accept);
  bufferevent_set_timeouts(conn->bev, NULL, NULL);

  has_v = query_get(conn->path_query, "v", v, sizeof v);
  has_encoding =
      query_get(conn->path_query, "encoding", encoding, sizeof encoding);
  has_compress =
      query_get(conn->path_query, "compress", compress, sizeof compress);
  if (has_v && (strcmp(v, "10") == 0 || strcmp(v, "9") == 0))
    version = v[0] == '9' ? 9 : 10;
  if (version < 0) {
    close_code = 4012;
    close_reason = "Invalid API version";
  } else if (has_encoding && strcmp(encoding, "json") != 0) {
    close_code = 4002;
    close_reason = strcmp(encoding, "etf") == 0 ? "etf not supported by mock"
                                                : "Unknown encoding";
  } else if (has_compress && strcmp(compress, "zlib-stream") != 0) {
    close_code = 4002;
    close_reason = "Unsupported compress (only zlib-stream)";
  }
  conn->version = version;
  if (close_code == 0 && has_compress) {
    memset(&conn->zs, 0, sizeof conn->zs);
    if (deflateInit(&conn->zs, Z_DEFAULT_COMPRESSION) != Z_OK) {
      conn_end(conn, END_DROP);
      return;
    }
    conn->zs_ready = 1;
    conn->compress = 1;
  }

  conn_unlink(conn);
  conn->state = CONN_OPEN;
  conn_link(conn, &mock->open);
  mock->open_count++;
  mock->stats.connections++;
  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: opened %s from %s", conn->id,
           conn->path_query, conn->peer);
  if (mock->cfg.hooks.on_open != NULL)
    mock->cfg.hooks.on_open(mock, conn, conn->path_query, mock->cfg.user_data);
  if (!conn_can_send(conn))
    return; /* the hook closed or dropped it */

  if (close_code != 0) {
    conn_close_internal(conn, close_code, close_reason);
  } else if (mock->cfg.reconnect_before_hello && !mock->reconnect_sent) {
    mock->reconnect_sent = 1;
    mock_log(mock, DGW_LOG_DEBUG, "conn %lu: op 7 instead of HELLO", conn->id);
    conn_send_op(conn, 7, "null");
  } else if (mock->cfg.hello_delay_ms > 0 && conn->hello_timer != NULL) {
    uint32_t ms = mock->cfg.hello_delay_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(conn->hello_timer, &tv);
  } else {
    conn_send_hello(conn);
  }
  /* Frames that came with the request are already in the input buffer. */
  if (conn->doomed == END_NONE &&
      evbuffer_get_length(bufferevent_get_input(conn->bev)) > 0)
    conn_ws_read(conn);
}

/* The value of header `name` (case-insensitive) in the header block `buf`
 * of `len` bytes, copied into `out`; 0 when absent. */
static int header_get(const char *buf, size_t len, const char *name, char *out,
                      size_t out_size) {
  size_t nlen = strlen(name);
  const char *p = memchr(buf, '\n', len), *end = buf + len;

  while (p != NULL && p + 1 < end) {
    const char *line = p + 1, *eol = memchr(line, '\n', (size_t)(end - line));
    size_t vlen;

    if (eol == NULL)
      break;
    if ((size_t)(eol - line) > nlen && line[nlen] == ':' &&
        strncasecmp(line, name, nlen) == 0) {
      const char *v = line + nlen + 1;

      while (v < eol && (*v == ' ' || *v == '\t'))
        v++;
      vlen = (size_t)(eol - v);
      while (vlen > 0 && (v[vlen - 1] == '\r' || v[vlen - 1] == ' '))
        vlen--;
      if (vlen >= out_size)
        vlen = out_size - 1;
      memcpy(out, v, vlen);
      out[vlen] = '\0';
      return 1;
    }
    p = eol;
  }
  return 0;
}

/* GET .../gateway/bot (Discord's REST call that tells a bot where the
 * gateway is and how many shards to run): answered with this mock's own
 * URL, so a client with "auto" shards can run against the mock.  Returns 1
 * when `buf` was such a request (answered, or incomplete: 0 bytes used). */
static int conn_serve_rest(struct dgw_mock_conn *conn, const char *buf,
                           size_t len) {
  struct dgw_mock *mock = conn->mock;
  const char *target = buf + 4, *sp, *hend;
  char auth[512], want[512], body[768];
  size_t tlen;

  if (len < 4 || memcmp(buf, "GET ", 4) != 0)
    return 0;
  sp = memchr(target, ' ', len - 4);
  if (sp == NULL)
    return 0;
  tlen = (size_t)(sp - target);
  {
    const char *q = memchr(target, '?', tlen);

    if (q != NULL)
      tlen = (size_t)(q - target);
  }
  if (tlen < 12 || memcmp(target + tlen - 12, "/gateway/bot", 12) != 0)
    return 0;
  hend = NULL;
  for (size_t i = 0; i + 3 < len; i++)
    if (memcmp(buf + i, "\r\n\r\n", 4) == 0) {
      hend = buf + i + 4;
      break;
    }
  if (hend == NULL) {
    if (len >= DGW_HANDSHAKE_MAX_HEADER) /* it will never end in time */
      conn_reject_http(conn, "request header block too large");
    return 1; /* else wait for the rest of the header block */
  }
  mock->stats.rest_requests++;
  if (!header_get(buf, (size_t)(hend - buf), "Authorization", auth,
                  sizeof auth))
    auth[0] = '\0';
  snprintf(want, sizeof want, "Bot %s", mock->token != NULL ? mock->token : "");
  if (strncmp(auth, "Bot ", 4) != 0 || auth[4] == '\0' ||
      (mock->token != NULL && strcmp(auth, want) != 0)) {
    static const char unauthorized[] = "{\"message\": \"401: Unauthorized\", "
                                       "\"code\": 0}";

    mock_log(mock, DGW_LOG_INFO, "conn %lu: GET /gateway/bot: 401", conn->id);
    evbuffer_add_printf(bufferevent_get_output(conn->bev),
                        "HTTP/1.1 401 Unauthorized\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %zu\r\n"
                        "Connection: close\r\n\r\n%s",
                        sizeof(unauthorized) - 1, unauthorized);
  } else {
    uint64_t used = mock->stats.identifies;

    snprintf(body, sizeof body,
             "{\"url\":\"%s\",\"shards\":%u,\"session_start_limit\":"
             "{\"total\":1000,\"remaining\":%llu,\"reset_after\":86400000,"
             "\"max_concurrency\":%u}}",
             mock->resume_url,
             (unsigned)(mock->cfg.rest_shards ? mock->cfg.rest_shards : 1),
             (unsigned long long)(used < 1000 ? 1000 - used : 0),
             (unsigned)(mock->cfg.rest_max_concurrency
                            ? mock->cfg.rest_max_concurrency
                            : 1));
    mock_log(mock, DGW_LOG_INFO, "conn %lu: GET /gateway/bot: %s", conn->id,
             body);
    evbuffer_add_printf(bufferevent_get_output(conn->bev),
                        "HTTP/1.1 200 OK\r\n"
                        "Content-Type: application/json\r\n"
                        "Content-Length: %zu\r\n"
                        "Connection: close\r\n\r\n%s",
                        strlen(body), body);
  }
  conn_end(conn, END_CLEAN);
  return 1;
}

static void conn_read_http(struct dgw_mock_conn *conn) {
  struct evbuffer *in = bufferevent_get_input(conn->bev);
  size_t len = evbuffer_get_length(in);
  size_t take = len < DGW_HANDSHAKE_MAX_HEADER ? len : DGW_HANDSHAKE_MAX_HEADER;
  struct dgw_handshake_request_info info;
  char reason[160];
  size_t header_len = 0;
  const char *buf;
  int rv;

  if (take == 0)
    return;
  buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)take);
  if (buf == NULL) {
    conn_end(conn, END_DROP);
    return;
  }
  if (conn_serve_rest(conn, buf, take))
    return;
  reason[0] = '\0';
  rv = dgw_handshake_parse_request(buf, take, &header_len, &info, reason,
                                   sizeof reason);
  if (rv == DGW_ERR_AGAIN) {
    if (len >= DGW_HANDSHAKE_MAX_HEADER)
      conn_reject_http(conn, "request header block too large");
    return;
  }
  if (rv != DGW_OK || header_len == 0 || header_len > take) {
    conn_reject_http(conn, reason[0] != '\0' ? reason : "bad request");
    return;
  }
  evbuffer_drain(in, header_len);
  conn_upgrade(conn, &info);
}

/* ------------------------------------------------- bufferevent callbacks */

static void conn_read_cb(struct bufferevent *bev, void *arg) {
  struct dgw_mock_conn *conn = arg;

  (void)bev;
  conn_enter(conn);
  if (conn->doomed == END_NONE) {
    if (conn->state == CONN_HTTP)
      conn_read_http(conn);
    else if (conn->state == CONN_OPEN)
      conn_ws_read(conn);
  }
  conn_leave(conn);
}

static void conn_event_cb(struct bufferevent *bev, short what, void *arg) {
  struct dgw_mock_conn *conn = arg;

  conn_enter(conn);
  if (what & BEV_EVENT_CONNECTED) {
    mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: TLS handshake done",
             conn->id);
  } else if (what & (BEV_EVENT_EOF | BEV_EVENT_ERROR | BEV_EVENT_TIMEOUT)) {
    unsigned long ssl_err = conn->tls ? bufferevent_get_openssl_error(bev) : 0;
    if (ssl_err != 0) {
      char msg[256];
      ERR_error_string_n(ssl_err, msg, sizeof msg);
      mock_log(conn->mock, DGW_LOG_INFO, "conn %lu: TLS error: %s", conn->id,
               msg);
    } else {
      mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: %s", conn->id,
               (what & BEV_EVENT_TIMEOUT) ? "timed out"
               : (what & BEV_EVENT_EOF)   ? "client closed TCP"
                                          : "socket error");
    }
    while (conn->tls && bufferevent_get_openssl_error(bev) != 0)
      ;
    conn_end(conn, END_DROP);
  }
  conn_leave(conn);
}

static void listener_cb(struct evconnlistener *listener, evutil_socket_t fd,
                        struct sockaddr *sa, int socklen, void *arg) {
  struct dgw_mock *mock = arg;
  struct dgw_mock_conn *conn;
  struct timeval tv = {MOCK_HANDSHAKE_TIMEOUT_S, 0};
  char addr[INET6_ADDRSTRLEN] = "?";
  int one = 1;

  (void)listener;
  (void)socklen;
  conn = calloc(1, sizeof *conn);
  if (conn == NULL) {
    evutil_closesocket(fd);
    return;
  }
  conn->mock = mock;
  conn->id = ++mock->next_conn_id;
  conn->state = CONN_HTTP;
  if (sa->sa_family == AF_INET) {
    struct sockaddr_in *in4 = (struct sockaddr_in *)(void *)sa;
    inet_ntop(AF_INET, &in4->sin_addr, addr, sizeof addr);
    snprintf(conn->peer, sizeof conn->peer, "%s:%u", addr,
             (unsigned)ntohs(in4->sin_port));
  } else if (sa->sa_family == AF_INET6) {
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)(void *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, addr, sizeof addr);
    snprintf(conn->peer, sizeof conn->peer, "[%s]:%u", addr,
             (unsigned)ntohs(in6->sin6_port));
  }
  /* Small request/response payloads: do not wait for delayed ACKs. */
  (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
#ifdef SO_NOSIGPIPE
  (void)setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one);
#endif
  if (mock->ssl_ctx != NULL) {
    SSL *ssl = SSL_new(mock->ssl_ctx);
    if (ssl != NULL)
      conn->bev = bufferevent_openssl_socket_new(mock->base, fd, ssl,
                                                 BUFFEREVENT_SSL_ACCEPTING,
                                                 BEV_OPT_CLOSE_ON_FREE);
    /* On failure libevent has already freed the SSL. */
    if (conn->bev != NULL)
      bufferevent_openssl_set_allow_dirty_shutdown(conn->bev, 1);
    conn->tls = 1;
  } else {
    conn->bev = bufferevent_socket_new(mock->base, fd, BEV_OPT_CLOSE_ON_FREE);
  }
  if (conn->bev == NULL) {
    mock_log(mock, DGW_LOG_WARN, "cannot set up a connection from %s",
             conn->peer);
    evutil_closesocket(fd);
    ERR_clear_error();
    free(conn);
    return;
  }
  conn_link(conn, &mock->pending);
  bufferevent_setcb(conn->bev, conn_read_cb, NULL, conn_event_cb, conn);
  bufferevent_set_timeouts(conn->bev, &tv, NULL);
  bufferevent_enable(conn->bev, EV_READ | EV_WRITE);
  mock_log(mock, DGW_LOG_DEBUG, "conn %lu: accepted from %s", conn->id,
           conn->peer);
}

static void listener_error_cb(struct evconnlistener *listener, void *arg) {
  struct dgw_mock *mock = arg;
  int err = EVUTIL_SOCKET_ERROR();

  (void)listener;
  mock_log(mock, DGW_LOG_WARN, "accept failed: %s",
           evutil_socket_error_to_string(err));
}

/* ------------------------------------------------------------ public API */

static int mock_tls_init(struct dgw_mock *mock) {
  char msg[256];
  unsigned long err;

  mock->ssl_ctx = SSL_CTX_new(TLS_server_method());
  if (mock->ssl_ctx == NULL)
    return DGW_ERR_NOMEM;
  SSL_CTX_set_min_proto_version(mock->ssl_ctx, TLS1_2_VERSION);
  SSL_CTX_set_mode(mock->ssl_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
                                      SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  if (SSL_CTX_use_certificate_chain_file(mock->ssl_ctx, mock->cert_file) != 1 ||
      SSL_CTX_use_PrivateKey_file(mock->ssl_ctx, mock->key_file,
                                  SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(mock->ssl_ctx) != 1) {
    err = ERR_peek_error(); /* the first error names the cause */
    ERR_error_string_n(err, msg, sizeof msg);
    mock_log(mock, DGW_LOG_ERROR, "cannot load TLS certificate %s / key %s: %s",
             mock->cert_file, mock->key_file, msg);
    ERR_clear_error();
    return DGW_ERR_TLS;
  }
  return DGW_OK;
}

/* Binds and listens on mock->host at `port_number` (0: any free port) and
 * records the port in mock->port. */
static int mock_listen(struct dgw_mock *mock, uint16_t port_number) {
  struct evutil_addrinfo hints, *res = NULL, *ai;
  char port[8];
  int gai;
  const unsigned flags =
      LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;

  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_protocol = IPPROTO_TCP;
  hints.ai_flags = EVUTIL_AI_PASSIVE | EVUTIL_AI_NUMERICSERV;
  snprintf(port, sizeof port, "%u", (unsigned)port_number);
  gai = evutil_getaddrinfo(mock->host, port, &hints, &res);
  if (gai != 0) {
    mock_log(mock, DGW_LOG_ERROR, "cannot resolve %s: %s", mock->host,
             evutil_gai_strerror(gai));
    return DGW_ERR_CONNECT;
  }
  for (ai = res; ai != NULL && mock->listener == NULL; ai = ai->ai_next)
    mock->listener =
        evconnlistener_new_bind(mock->base, listener_cb, mock, flags, -1,
                                ai->ai_addr, (int)ai->ai_addrlen);
  evutil_freeaddrinfo(res);
  if (mock->listener == NULL) {
    int err = EVUTIL_SOCKET_ERROR();
    mock_log(mock, DGW_LOG_ERROR, "cannot listen on %s port %s: %s", mock->host,
             port, evutil_socket_error_to_string(err));
    return DGW_ERR_CONNECT;
  }
  evconnlistener_set_error_cb(mock->listener, listener_error_cb);
  {
    struct sockaddr_storage ss;
    socklen_t sslen = sizeof ss;
    evutil_socket_t fd = evconnlistener_get_fd(mock->listener);
    if (getsockname(fd, (struct sockaddr *)&ss, &sslen) == 0) {
      if (ss.ss_family == AF_INET)
        mock->port = ntohs(((struct sockaddr_in *)(void *)&ss)->sin_port);
      else if (ss.ss_family == AF_INET6)
        mock->port = ntohs(((struct sockaddr_in6 *)(void *)&ss)->sin6_port);
    }
  }
  return DGW_OK;
}

struct dgw_mock *dgw_mock_new(struct event_base *base,
                              const struct dgw_mock_config *cfg, int *err) {
  struct dgw_mock *mock;
  int rv;

  if (base == NULL || cfg == NULL ||
      (cfg->cert_file == NULL) != (cfg->key_file == NULL)) {
    if (err != NULL)
      *err = DGW_ERR_INVALID_ARGUMENT;
    return NULL;
  }
  mock = calloc(1, sizeof *mock);
  if (mock == NULL) {
    if (err != NULL)
      *err = DGW_ERR_NOMEM;
    return NULL;
  }
  mock->base = base;
  mock->cfg = *cfg;
  mock->host = mock_strdup(cfg->host != NULL ? cfg->host : MOCK_DEFAULT_HOST);
  mock->cert_file = mock_strdup(cfg->cert_file);
  mock->key_file = mock_strdup(cfg->key_file);
  mock->token = mock_strdup(cfg->token);
  mock->cfg.host = mock->host;
  mock->cfg.cert_file = mock->cert_file;
  mock->cfg.key_file = mock->key_file;
  mock->cfg.token = mock->token;
  if (mock->host == NULL ||
      (cfg->cert_file != NULL && mock->cert_file == NULL) ||
      (cfg->key_file != NULL && mock->key_file == NULL) ||
      (cfg->token != NULL && mock->token == NULL)) {
    rv = DGW_ERR_NOMEM;
    goto fail;
  }
  if (mock->cert_file != NULL && (rv = mock_tls_init(mock)) != DGW_OK)
    goto fail;
  mock->ack = !cfg->no_ack;
  if ((rv = mock_listen(mock, cfg->port)) != DGW_OK)
    goto fail;
  mock_make_resume_url(mock);
  mock_log(mock, DGW_LOG_DEBUG, "listening on %s", mock->resume_url);
  return mock;

fail:
  if (err != NULL)
    *err = rv;
  dgw_mock_free(mock);
  return NULL;
}

void dgw_mock_free(struct dgw_mock *mock) {
  struct mock_dispatch *disp, *next;

  if (mock == NULL)
    return;
  mock->freeing = 1;
  if (mock->listener != NULL)
    evconnlistener_free(mock->listener);
  mock->listener = NULL;
  while (mock->open != NULL)
    conn_destroy(mock->open, END_DROP);
  while (mock->pending != NULL)
    conn_destroy(mock->pending, END_DROP);
  while (mock->lingers != NULL)
    linger_free(mock->lingers);
  while (mock->sessions != NULL)
    session_free(mock, mock->sessions);
  for (disp = mock->script; disp != NULL; disp = next) {
    next = disp->next;
    free(disp->t);
    free(disp->d_json);
    free(disp);
  }
  if (mock->ssl_ctx != NULL)
    SSL_CTX_free(mock->ssl_ctx);
  free(mock->host);
  free(mock->cert_file);
  free(mock->key_file);
  free(mock->token);
  free(mock);
}

uint16_t dgw_mock_port(const struct dgw_mock *mock) {
  return mock != NULL ? mock->port : 0;
}

/* A new script entry, or NULL (with *rv set). */
static struct mock_dispatch *dispatch_new(const char *t, const char *d_json,
                                          int *rv) {
  struct mock_dispatch *disp = calloc(1, sizeof *disp);

  if (disp == NULL || (disp->t = mock_strdup(t)) == NULL ||
      (disp->d_json = mock_strdup(d_json)) == NULL) {
    if (disp != NULL)
      free(disp->t);
    free(disp);
    *rv = DGW_ERR_NOMEM;
    return NULL;
  }
  return disp;
}

static void script_append(struct dgw_mock *mock, struct mock_dispatch *first,
                          struct mock_dispatch *last) {
  if (mock->script_tail != NULL)
    mock->script_tail->next = first;
  else
    mock->script = first;
  mock->script_tail = last;
}

int dgw_mock_add_dispatch(struct dgw_mock *mock, const char *t,
                          const char *d_json) {
  struct mock_dispatch *disp;
  json_object *d;
  int ok, rv = DGW_OK;

  if (mock == NULL || t == NULL || t[0] == '\0' || d_json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  d = json_parse_exact(d_json, strlen(d_json), &ok);
  json_object_put(d);
  if (!ok)
    return DGW_ERR_JSON;
  disp = dispatch_new(t, d_json, &rv);
  if (disp == NULL)
    return rv;
  script_append(mock, disp, disp);
  return DGW_OK;
}

/* Reads a whole file into a NUL-terminated heap buffer. */
static char *read_file(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t len = 0, cap = 0;

  if (f == NULL)
    return NULL;
  for (;;) {
    size_t n;
    if (cap - len < 4096) {
      char *p;
      cap = cap ? cap * 2 : 8192;
      if ((p = realloc(buf, cap)) == NULL) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = p;
    }
    n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0)
      break;
  }
  if (ferror(f)) {
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  buf[len] = '\0';
  *len_out = len;
  return buf;
}

int dgw_mock_load_script(struct dgw_mock *mock, const char *path) {
  struct mock_dispatch *first = NULL, *last = NULL, *disp, *next;
  size_t len, lineno = 0;
  char *buf, *line;
  int rv = DGW_OK;

  if (mock == NULL || path == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  buf = read_file(path, &len);
  if (buf == NULL) {
    mock_log(mock, DGW_LOG_ERROR, "cannot read script %s: %s", path,
             strerror(errno));
    return DGW_ERR_IO;
  }
  for (line = buf; rv == DGW_OK && line < buf + len;) {
    char *end = strchr(line, '\n');
    size_t line_len = end != NULL ? (size_t)(end - line) : strlen(line);
    json_object *root, *t, *d;
    int ok;

    lineno++;
    if (line_len > 0 && line[line_len - 1] == '\r')
      line_len--;
    if (strspn(line, " \t\r") >= line_len) {
      line = end != NULL ? end + 1 : buf + len;
      continue;
    }
    root = json_parse_exact(line, line_len, &ok);
    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "t", &t) ||
        !json_object_is_type(t, json_type_string) ||
        json_object_get_string_len(t) == 0) {
      mock_log(mock, DGW_LOG_ERROR,
               "%s:%zu: not a {\"t\": NAME, \"d\": VALUE} JSON line", path,
               lineno);
      rv = DGW_ERR_JSON;
    } else if (strcmp(json_object_get_string(t), "READY") == 0 ||
               strcmp(json_object_get_string(t), "RESUMED") == 0) {
      /* A recording's session events: the mock makes its own. */
    } else {
      if (!json_object_object_get_ex(root, "d", &d))
        d = NULL;
      disp = dispatch_new(json_object_get_string(t),
                          d != NULL ? json_plain(d) : "null", &rv);
      if (disp != NULL) {
        if (last != NULL)
          last->next = disp;
        else
          first = disp;
        last = disp;
      }
    }
    json_object_put(root);
    line = end != NULL ? end + 1 : buf + len;
  }
  free(buf);
  if (rv != DGW_OK) {
    for (disp = first; disp != NULL; disp = next) {
      next = disp->next;
      free(disp->t);
      free(disp->d_json);
      free(disp);
    }
    return rv;
  }
  if (first != NULL)
    script_append(mock, first, last);
  mock_log(mock, DGW_LOG_DEBUG, "loaded script %s", path);
  return DGW_OK;
}

size_t dgw_mock_conn_count(const struct dgw_mock *mock) {
  return mock != NULL ? mock->open_count : 0;
}

struct dgw_mock_conn *dgw_mock_last_conn(struct dgw_mock *mock) {
  return mock != NULL ? mock->open : NULL;
}

int dgw_mock_conn_send_json(struct dgw_mock_conn *conn, const char *json) {
  int rv;

  if (conn == NULL || json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!conn_can_send(conn))
    return DGW_ERR_STATE;
  conn_enter(conn);
  rv = conn_send_payload(conn, json, strlen(json));
  conn_leave(conn);
  return rv;
}

int dgw_mock_conn_send_dispatch(struct dgw_mock_conn *conn, const char *t,
                                const char *d_json) {
  int rv;

  if (conn == NULL || t == NULL || d_json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!conn_can_send(conn))
    return DGW_ERR_STATE;
  conn_enter(conn);
  rv = conn_send_dispatch_internal(conn, t, d_json);
  conn_leave(conn);
  return rv;
}

int dgw_mock_conn_close(struct dgw_mock_conn *conn, uint16_t code,
                        const char *reason) {
  int rv;

  if (conn == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!conn_can_send(conn))
    return DGW_ERR_STATE;
  conn_enter(conn);
  rv = conn_close_internal(conn, code, reason);
  conn_leave(conn);
  return rv;
}

void dgw_mock_conn_drop(struct dgw_mock_conn *conn) {
  if (conn == NULL || conn->state == CONN_DEAD)
    return;
  mock_log(conn->mock, DGW_LOG_DEBUG, "conn %lu: dropping", conn->id);
  conn_end(conn, END_DROP);
}

void dgw_mock_conn_drop_midframe(struct dgw_mock_conn *conn) {
  unsigned char frame[4 + MOCK_MIDFRAME_LEN / 2];

  if (conn == NULL || conn->state == CONN_DEAD || conn->doomed != END_NONE)
    return;
  /* wslay has written whole frames only, so this starts at a boundary. */
  frame[0] = (unsigned char)(0x80 | (conn->compress ? WSLAY_BINARY_FRAME
                                                    : WSLAY_TEXT_FRAME));
  frame[1] = 126;
  frame[2] = (unsigned char)(MOCK_MIDFRAME_LEN >> 8);
  frame[3] = (unsigned char)(MOCK_MIDFRAME_LEN & 0xff);
  memset(frame + 4, ' ', sizeof frame - 4);
  frame[4] = '{';
  bufferevent_write(conn->bev, frame, sizeof frame);
  mock_log(conn->mock, DGW_LOG_DEBUG,
           "conn %lu: dropping in the middle of a frame", conn->id);
  conn_end(conn, END_MIDFRAME);
}

int64_t dgw_mock_conn_seq(const struct dgw_mock_conn *conn) {
  if (conn == NULL)
    return 0;
  return conn->session != NULL ? conn->session->seq : conn->seq_unsessioned;
}

/* ------------------------------------------------- sessions and faults */

int dgw_mock_session_add_dispatch(struct dgw_mock *mock, const char *session_id,
                                  const char *t, const char *d_json) {
  struct mock_session *s;
  struct dgw_mock_conn *conn;
  json_object *d;
  int ok, rv;

  if (mock == NULL || t == NULL || t[0] == '\0' || d_json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  d = json_parse_exact(d_json, strlen(d_json), &ok);
  json_object_put(d);
  if (!ok)
    return DGW_ERR_JSON;
  s = session_lookup(mock, session_id);
  if (s == NULL || mock->freeing)
    return DGW_ERR_STATE;
  conn = s->conn;
  if (conn != NULL)
    conn_enter(conn);
  rv = session_dispatch(s, t, d_json, NULL);
  if (conn != NULL)
    conn_leave(conn);
  return rv;
}

void dgw_mock_conn_lose_next(struct dgw_mock_conn *conn, unsigned n) {
  if (conn != NULL)
    conn->lose_next = n;
}

void dgw_mock_set_ack(struct dgw_mock *mock, int on) {
  if (mock != NULL)
    mock->ack = on != 0;
}

int dgw_mock_conn_request_heartbeat(struct dgw_mock_conn *conn) {
  int rv;

  if (conn == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (!conn_can_send(conn))
    return DGW_ERR_STATE;
  conn_enter(conn);
  rv = conn_send_op(conn, 1, "null");
  conn_leave(conn);
  return rv;
}

int dgw_mock_invalidate_session(struct dgw_mock *mock, const char *session_id) {
  struct mock_session *s;
  struct dgw_mock_conn *conn;

  if (mock == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  s = session_lookup(mock, session_id);
  if (s == NULL || mock->freeing)
    return DGW_ERR_STATE;
  conn = s->conn;
  mock_log(mock, DGW_LOG_DEBUG, "session %s invalidated", s->id);
  session_free(mock, s); /* the connection stays, unauthenticated */
  if (conn != NULL && conn_can_send(conn)) {
    conn_enter(conn);
    conn_send_op(conn, 9, "false");
    conn_leave(conn);
  }
  return DGW_OK;
}

const char *dgw_mock_conn_session_id(const struct dgw_mock_conn *conn) {
  if (conn == NULL || conn->session == NULL)
    return NULL;
  return conn->session->id;
}

size_t dgw_mock_session_count(const struct dgw_mock *mock) {
  const struct mock_session *s;
  size_t n = 0;

  if (mock == NULL)
    return 0;
  for (s = mock->sessions; s != NULL; s = s->next)
    n++;
  return n;
}

int64_t dgw_mock_session_seq(const struct dgw_mock *mock,
                             const char *session_id) {
  const struct mock_session *s;

  if (mock == NULL)
    return -1;
  s = session_lookup(mock, session_id);
  return s != NULL ? s->seq : -1;
}

/* The first connection in `head` a bulk operation has not dealt with yet:
 * hooks run by each step may end any connection, so every step starts the
 * walk again; each one leaves its connection closing or doomed. */
static struct dgw_mock_conn *conn_first_live(struct dgw_mock_conn *head,
                                             int want_open) {
  struct dgw_mock_conn *conn;

  for (conn = head; conn != NULL; conn = conn->next) {
    if (conn->doomed != END_NONE || conn->state == CONN_DEAD)
      continue;
    if (!want_open || conn_can_send(conn))
      return conn;
  }
  return NULL;
}

int dgw_mock_close_all(struct dgw_mock *mock, uint16_t code,
                       const char *reason) {
  struct dgw_mock_conn *conn;

  if (mock == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (mock->freeing)
    return DGW_ERR_STATE;
  while ((conn = conn_first_live(mock->open, 1)) != NULL) {
    conn_enter(conn);
    if (conn_close_internal(conn, code, reason) != DGW_OK)
      conn_end(conn, END_DROP);
    conn_leave(conn);
  }
  while ((conn = conn_first_live(mock->pending, 0)) != NULL)
    conn_end(conn, END_DROP);
  return DGW_OK;
}

void dgw_mock_drop_all(struct dgw_mock *mock) {
  struct dgw_mock_conn *conn;

  if (mock == NULL || mock->freeing)
    return;
  mock_log(mock, DGW_LOG_DEBUG, "dropping every connection");
  while ((conn = conn_first_live(mock->open, 0)) != NULL ||
         (conn = conn_first_live(mock->pending, 0)) != NULL)
    conn_end(conn, END_DROP);
}

int dgw_mock_set_listening(struct dgw_mock *mock, int on) {
  int rv;

  if (mock == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (mock->freeing)
    return DGW_ERR_STATE;
  if (!on) {
    if (mock->listener != NULL) {
      /* Closing the socket makes the kernel refuse new connects (a
       * disabled evconnlistener would still complete them). */
      evconnlistener_free(mock->listener);
      mock->listener = NULL;
      mock_log(mock, DGW_LOG_DEBUG, "stopped listening on port %u",
               (unsigned)mock->port);
    }
    return DGW_OK;
  }
  if (mock->listener != NULL)
    return DGW_OK;
  rv = mock_listen(mock, mock->port);
  if (rv == DGW_OK)
    mock_log(mock, DGW_LOG_DEBUG, "listening again on port %u",
             (unsigned)mock->port);
  return rv;
}

void dgw_mock_get_stats(const struct dgw_mock *mock,
                        struct dgw_mock_stats *out) {
  if (out == NULL)
    return;
  if (mock == NULL) {
    memset(out, 0, sizeof *out);
    return;
  }
  *out = mock->stats;
}

void dgw_mock_set_ready_resume_url(struct dgw_mock *mock, const char *url) {
  snprintf(mock->ready_resume_url, sizeof(mock->ready_resume_url), "%s",
           url != NULL ? url : "");
}
