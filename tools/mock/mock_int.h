/*
 * The mock gateway's insides, shared by its files (the public API is
 * mock.h):
 *
 *   server.c     the mock object, TLS, the listener, accepted connections
 *                and their lifetime, lingering sockets
 *   websocket.c  the HTTP upgrade, wslay, compression and fragmenting of
 *                what the mock sends, the close handshake
 *   http.c       plain HTTP/1.1 requests on the gateway port (REST, control)
 *   rest.c       Discord's REST routes the libraries need
 *   shapes.c     the one source of the JSON shapes (user, guild, message...)
 *   world.c      what REST and the control API keep: messages, commands,
 *                interactions, what the bot sent; dispatch to a guild's shard
 *   ctl.c        the control API under /_mock/
 *   ratelimit.c  REST 429s: injected, and enforced limits (opt-in)
 *   gateway.c    HELLO, the send rate limit, each client payload by opcode
 *   session.c    sessions, their dispatches and history, READY, IDENTIFY,
 *                RESUME and its replay
 *   events.c     the script of dispatches and its pacing
 *   commands.c   ops 3, 4, 8, 31, 43
 *   intents.c    which dispatches a session's intents let through, and
 *                MESSAGE_CONTENT's emptied messages
 *   faults.c     the fault knobs tests use
 *   control.c    what tests read from the mock and send through it
 *   util.c       log, strings, JSON, clock, random ids
 *
 * The gateway logic is a small state machine per connection; sessions (id,
 * sequence, the dispatches sent, the script position) live on the mock so
 * that a connection can end while its session stays, and a RESUME on
 * another connection picks it up.  A connection that ends while one of its
 * callbacks runs is freed only when that callback returns (see server.c).
 */
#ifndef DGW_MOCK_INT_H
#define DGW_MOCK_INT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <json-c/json.h>
#include <openssl/ssl.h>
#include <wslay/wslay.h>
#include <zlib.h>

#include "mock.h"

#define MOCK_USER_ID "1000000000000000001"
#define MOCK_TRACE "[\"dgw-mock\"]"

struct mock_linger;
struct mock_world;
struct mock_sent;
struct mock_member_rate;
struct mock_ratelimit;

/* One scripted dispatch (owned by the mock). */
struct mock_dispatch {
  struct mock_dispatch *next;
  char *t;
  char *d_json;
  /* A GUILD_CREATE's d.id when it is a string (READY lists the guild as
   * unavailable), else NULL; taken when the entry is added, so READY does
   * not parse every GUILD_CREATE again for each IDENTIFY. */
  json_object *guild_id;
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
  int compress; /* 0, 1 zlib-stream, 2 zstd-stream (MOCK_ZSTD) */
  z_stream zs;
  int zs_ready;
  void *zc; /* zstd-stream: the connection's ZSTD_CCtx */
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
  struct mock_world *world;         /* REST and control state (world.c) */
  struct event *relisten_timer;     /* ctl.c: the end of a cut's outage */
  struct mock_ratelimit *ratelimit; /* ratelimit.c, created on first use */
  int freeing;
};

/* ------------------------------------------------------------- util.c */

/* Formats one line and hands it to cfg.log at `level`; silent without one. */
void mock_log(const struct dgw_mock *mock, enum dgw_log_level level,
              const char *fmt, ...) __attribute__((format(printf, 3, 4)));
/* A heap copy of `s` (NULL for NULL or when out of memory). */
char *mock_strdup(const char *s);
/* Formats into a fresh heap string; NULL when out of memory. */
char *mock_asprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Parses exactly `len` bytes as one strict JSON value: the value (caller
 * puts it) with *ok = 1, or NULL with *ok = 0 (a literal null: NULL, 1). */
json_object *mock_json_parse_exact(const char *text, size_t len, int *ok);
/* Adds `value` under `key` of `obj`; frees it and returns -1 on failure. */
int mock_json_add(json_object *obj, const char *key, json_object *value);
/* Appends `value` to `array`; frees it and returns -1 on failure. */
int mock_json_append(json_object *array, json_object *value);
/* `obj` as compact JSON text, owned by `obj`. */
const char *mock_json_plain(json_object *obj);
/* Whether `obj` is a JSON integer (not a float, not a string). */
int mock_json_is_int(json_object *obj);
/* Milliseconds on a monotonic clock. */
uint64_t mock_now_ms(void);
/* Writes 32 random hex digits and a NUL into `id` (session ids, tokens). */
void mock_random_id(char id[33]);

/* ----------------------------------------------------------- server.c */

/* Marks `conn` in use by the caller, so ending it only dooms it. */
void mock_conn_enter(struct dgw_mock_conn *conn);
/* Ends the caller's use; frees `conn` when it was doomed meanwhile. */
void mock_conn_leave(struct dgw_mock_conn *conn);
/* Ends the connection now, or as soon as nothing of it is on the stack. */
void mock_conn_end(struct dgw_mock_conn *conn, enum conn_end how);
/* Moves a connection that finished its upgrade to the open list. */
void mock_conn_open(struct dgw_mock_conn *conn);
/* Binds and listens on mock->host at `port_number` (0: any free port) and
 * records the port in mock->port; DGW_OK or DGW_ERR_CONNECT. */
int mock_listen(struct dgw_mock *mock, uint16_t port_number);

/* -------------------------------------------------------- websocket.c */

/* Whether the mock may still send on `conn` (open, no close either way). */
int mock_conn_can_send(const struct dgw_mock_conn *conn);
/* 1 when the mock serves compress=zstd-stream (built with libzstd). */
#ifdef HAVE_ZSTD
#define MOCK_ZSTD 1
#else
#define MOCK_ZSTD 0
#endif

/* Frees the connection's zstd stream, if any (server.c, conn_free). */
void mock_zstd_free(struct dgw_mock_conn *conn);

/* Sends one payload (compressed, split, fragmented as configured), then
 * flushes; DGW_OK, DGW_ERR_STATE, DGW_ERR_NOMEM. */
int mock_conn_send_payload(struct dgw_mock_conn *conn, const char *json,
                           size_t len);
/* Sends {"t":null,"s":null,"op":op,"d":d_json}, as mock_conn_send_payload(). */
int mock_conn_send_op(struct dgw_mock_conn *conn, int op, const char *d_json);
/* Starts the close handshake with `code` and `reason` (cut to 123 bytes),
 * after the replies already queued; DGW_ERR_STATE when already closing. */
int mock_conn_close(struct dgw_mock_conn *conn, uint16_t code,
                    const char *reason);
/* Reads the request of a connection still in HTTP: serves REST, upgrades,
 * or answers 400. */
void mock_conn_read_http(struct dgw_mock_conn *conn);
/* Reads and handles the client's WebSocket frames waiting in the input. */
void mock_conn_ws_read(struct dgw_mock_conn *conn);
/* Answers 400 with `reason` and ends the connection cleanly. */
void mock_conn_reject_http(struct dgw_mock_conn *conn, const char *reason);

/* ---------------------------------------------------------- rest.c */

/* Serves the request waiting on `conn` when it is plain HTTP (no Upgrade:
 * websocket): REST or the control API.  Returns 1 when it was (answered,
 * or incomplete: nothing consumed), 0 when it is a WebSocket upgrade (or
 * not even a complete header block yet, for the upgrade path to judge). */
int mock_rest_serve(struct dgw_mock_conn *conn, const char *buf, size_t len);

/* ---------------------------------------------------------- http.c */

/* One plain HTTP request, parsed. Strings are NUL-terminated copies. */
struct mock_http_req {
  char method[8];
  char path[512];   /* without the query, percent-decoding not applied */
  char query[512];  /* after '?', or "" */
  char auth[512];   /* Authorization header, or "" */
  char ctype[128];  /* Content-Type header, or "" */
  const char *body; /* valid during the serving call */
  size_t body_len;
};

/* Parses the request at the start of `buf` (`len` bytes).  Returns 1 with
 * *req and *total (header + body bytes) set, 0 when more bytes are needed,
 * -1 when malformed, -2 when it is a WebSocket upgrade, -3 when the body
 * is too large. */
int mock_http_parse(const char *buf, size_t len, struct mock_http_req *req,
                    size_t *total);
/* Writes a response with `status`, JSON `body` (NULL: no body, e.g. 204),
 * the X-RateLimit-* headers of `bucket` (NULL: none), Connection: close,
 * and ends the connection cleanly once written. */
void mock_http_reply(struct dgw_mock_conn *conn, int status, const char *body,
                     const char *bucket);
/* The value of query parameter `name` in `query` copied into `out`; 0 when
 * absent. */
int mock_http_query(const char *query, const char *name, char *out,
                    size_t out_size);

/* ---------------------------------------------------------- shapes.c */

#define MOCK_GUILD_ID "1200000000000000001"
#define MOCK_CHANNEL_ID "1200000000000000011"
#define MOCK_CHANNEL2_ID "1200000000000000012"
#define MOCK_ROLE_ID "1200000000000000021"
#define MOCK_USER2_ID "1300000000000000001"

/* Each builder returns a new object (the caller puts it) or NULL when out
 * of memory.  Ids are decimal snowflake strings. */
/* The bot's user: id MOCK_USER_ID, "dgw-mock", bot: true, avatar... */
json_object *mock_shape_bot_user(void);
/* A user with the given id and username (global_name = username). */
json_object *mock_shape_user(const char *id, const char *username, int bot);
/* A guild member object (`user` taken over, may be NULL: left out). */
json_object *mock_shape_member(json_object *user, const char *joined_at);
/* The application of /oauth2/applications/@me (and READY's partial). */
json_object *mock_shape_application(int partial);
/* The built-in guild's GUILD_CREATE d (every field Discord documents). */
json_object *mock_shape_guild_create(void);
/* A message: `author` taken over; guild_id NULL for a DM; `member` added
 * (without user) when in a guild. */
json_object *mock_shape_message(const char *id, const char *channel_id,
                                const char *guild_id, json_object *author,
                                const char *content);
/* With cfg.complete_payloads, a scripted MESSAGE_CREATE, MESSAGE_UPDATE
 * (with an author) or GUILD_CREATE gets, in place, the fields Discord
 * always sends that its `d` lacks (what it has wins).  Returns 1 when `d`
 * was completed, 0 when the event is not one of those, -1 out of memory. */
int mock_shape_complete(const char *t, json_object *d);
/* An ISO 8601 timestamp of now, as Discord writes them. */
void mock_shape_now(char out[40]);
/* The guild of a channel of the built-in guild, or NULL. */
const char *mock_shape_channel_guild(const char *channel_id);
/* The channel object of the built-in guild with id `channel_id`, or NULL. */
json_object *mock_shape_channel(const char *channel_id);

/* ---------------------------------------------------------- world.c */

/* A fresh snowflake (now, and a counter) in `out`. */
void mock_world_snowflake(struct dgw_mock *mock, char out[24]);
/* Whether guild `guild_id` (NULL: a DM, shard 0) is on session `s`'s
 * shard: (guild_id >> 22) % shard_count, Discord's formula. */
int mock_world_on_shard(const struct mock_session *s, const char *guild_id);
/* Sends dispatch `t` with `d_json` to every live session of the shard of
 * `guild_id` (NULL: shard 0).  Returns the number of sessions reached
 * (not counting those whose intents leave it out). */
int mock_world_dispatch(struct dgw_mock *mock, const char *guild_id,
                        const char *t, const char *d_json);
/* The guild of channel `channel_id`: the built-in guild's, one learned
 * from the control API, or one a scripted GUILD_CREATE lists; NULL when
 * unknown (a DM channel, for the mock).  Valid until the next call. */
const char *mock_world_channel_guild(struct dgw_mock *mock,
                                     const char *channel_id);
/* Remembers that `channel_id` is in `guild_id`. */
void mock_world_learn_channel(struct dgw_mock *mock, const char *channel_id,
                              const char *guild_id);
/* Creates a message in `channel_id` from the fields of `body` (content,
 * embeds, tts, nonce, components, message_reference, flags; NULL: none)
 * with `author` (taken over) and `extra` fields merged (may be NULL, not
 * taken), keeps it, dispatches MESSAGE_CREATE to its guild's shard
 * (unless ephemeral) and returns it (borrowed), or NULL when out of
 * memory. */
json_object *mock_message_create(struct dgw_mock *mock, const char *channel_id,
                                 json_object *author, json_object *body,
                                 json_object *extra);
/* Keeps a message (taken over) by its id, replacing an older one. */
int mock_world_put_message(struct dgw_mock *mock, json_object *msg);
/* The kept message `id` (borrowed), or NULL. */
json_object *mock_world_message(struct dgw_mock *mock, const char *id);
/* Forgets message `id`; 0 when it was kept, -1 otherwise. */
int mock_world_delete_message(struct dgw_mock *mock, const char *id);
/* The application commands (borrowed array), created on first use. */
json_object *mock_world_commands(struct dgw_mock *mock);
/* Replaces the commands with `arr` (taken over). */
void mock_world_set_commands(struct dgw_mock *mock, json_object *arr);
/* Remembers an interaction the mock sent (taken over, its d). */
int mock_world_put_interaction(struct dgw_mock *mock, json_object *inter);
/* The interaction `id` with token `token` (borrowed), or NULL. */
json_object *mock_world_interaction(struct dgw_mock *mock, const char *id,
                                    const char *token);
/* The interaction whose token is `token` (borrowed), or NULL. */
json_object *mock_world_interaction_by_token(struct dgw_mock *mock,
                                             const char *token);
/* Records what the bot sent: a gateway payload (not heartbeats) or a REST
 * call with its status (the body as text when JSON, else as a string). */
void mock_world_record_gateway(struct dgw_mock_conn *conn, int op,
                               const char *json, size_t len);
void mock_world_record_rest(struct dgw_mock *mock,
                            const struct mock_http_req *req, int status);
/* {"gateway": [...], "rest": [...]} of what was recorded (borrowed). */
json_object *mock_world_sent(struct dgw_mock *mock);
/* Forgets messages, commands, interactions and the record. */
void mock_world_reset(struct dgw_mock *mock);
/* Frees the world (dgw_mock_free()). */
void mock_world_free(struct dgw_mock *mock);

/* ---------------------------------------------------------- ctl.c */

/* Serves a request under /_mock/ (path without the prefix). */
void mock_ctl_serve(struct dgw_mock_conn *conn, const struct mock_http_req *req,
                    const char *path);
/* The built-in guild's GUILD_CREATE after READY, when cfg.builtin_guild
 * and the guild is on the session's shard. */
void mock_conn_send_builtin_guild(struct dgw_mock_conn *conn);

/* ------------------------------------------------------ ratelimit.c */

/* Before a REST request is performed (`path` without the /api[/vN]
 * prefix, split into `nseg` segments): returns 1 when it was answered 429
 * (an injected one, or over an enforced limit; recorded, not performed),
 * 0 when it goes on, its reply's X-RateLimit-* headers then set. */
int mock_ratelimit_check(struct dgw_mock_conn *conn,
                         const struct mock_http_req *req, const char *path,
                         const char *const *seg, size_t nseg);
/* Writes the rate limit headers of the reply on `conn` being written
 * (mock_http_reply() with a bucket): what mock_ratelimit_check() decided,
 * else a generous limit named after `bucket`. */
void mock_ratelimit_headers(struct dgw_mock_conn *conn, struct evbuffer *out,
                            const char *bucket);
/* POST /_mock/ratelimit {count?, retry_after?, global?, route?, scope?}:
 * answers with mock_ratelimit_json(), or 400. */
void mock_ratelimit_ctl(struct dgw_mock_conn *conn, json_object *body);
/* {injected_left, injected_served, enforced, enforced_served} (new). */
json_object *mock_ratelimit_json(struct dgw_mock *mock);
/* Forgets the injected 429s left and the enforced buckets' counts. */
void mock_ratelimit_reset(struct dgw_mock *mock);
/* Frees the rate limit state (dgw_mock_free()). */
void mock_ratelimit_free(struct dgw_mock *mock);

/* -------------------------------------------------------- gateway.c */

/* Sends a connection that just opened its first payload: op 7, a HELLO
 * after cfg.hello_delay_ms, or a HELLO now. */
void mock_conn_greet(struct dgw_mock_conn *conn);
/* conn->hello_timer's callback: the delayed HELLO. */
void mock_hello_timer_cb(evutil_socket_t fd, short what, void *arg);
/* Acts on one complete client message (`len` bytes of `msg`). */
void mock_conn_handle_payload(struct dgw_mock_conn *conn, const uint8_t *msg,
                              size_t len);

/* -------------------------------------------------------- session.c */

/* Unlinks and frees a session; an attached connection stays open,
 * unauthenticated. */
void mock_session_free(struct dgw_mock *mock, struct mock_session *s);
/* The session `id`, or the newest when `id` is NULL; NULL when none. */
struct mock_session *mock_session_lookup(const struct dgw_mock *mock,
                                         const char *id);
/* Detaches a connection that ends from its session (kept resumable, or
 * ended by the client's close 1000/1001). */
void mock_session_detach(struct dgw_mock_conn *conn);
/* Makes a dispatch of session `s`: next seq, history, then the attached
 * connection.  DGW_OK once in the history; MOCK_INTENTS_DROP (positive)
 * when the session's intents keep it from the session (no seq taken,
 * nothing sent); *send_rv (optional) gets the outcome of the send.  The
 * caller keeps the connection entered. */
int mock_session_dispatch(struct mock_session *s, const char *t,
                          const char *d_json, int *send_rv);
/* Sends a dispatch on `conn`: through its session (DGW_OK too when its
 * intents drop it), or counted by the connection alone before IDENTIFY. */
int mock_conn_send_dispatch(struct dgw_mock_conn *conn, const char *t,
                            const char *d_json);
/* op 2 IDENTIFY: a new session, READY, the script. */
void mock_conn_handle_identify(struct dgw_mock_conn *conn, json_object *root);
/* op 6 RESUME: take the session over, replay, RESUMED, the script. */
void mock_conn_handle_resume(struct dgw_mock_conn *conn, json_object *root);

/* --------------------------------------------------------- events.c */

/* Goes on with the session's script where it stopped (after READY: from
 * the start). */
void mock_conn_script_continue(struct dgw_mock_conn *conn);
/* conn->dispatch_timer's callback: the next scripted dispatch. */
void mock_script_timer_cb(evutil_socket_t fd, short what, void *arg);
/* Frees the script (dgw_mock_free()). */
void mock_script_free(struct dgw_mock *mock);

/* ------------------------------------------------------- commands.c */

/* Ops 3, 4, 8, 31, 43: checks d, answers with dispatches of the session,
 * or closes 4003 / 4001. */
void mock_conn_handle_command(struct dgw_mock_conn *conn, int op,
                              json_object *root);

/* -------------------------------------------------------- intents.c */

/* Every intent bit Discord defines (protocol §10); others close 4013. */
#define MOCK_INTENTS_ALL INT64_C(53608447)
/* The privileged ones: GUILD_MEMBERS, GUILD_PRESENCES, MESSAGE_CONTENT. */
#define MOCK_INTENTS_PRIVILEGED                                                \
  ((INT64_C(1) << 1) | (INT64_C(1) << 8) | (INT64_C(1) << 15))

/* What mock_intents_filter() decided. */
#define MOCK_INTENTS_SEND 0
#define MOCK_INTENTS_DROP 1
#define MOCK_INTENTS_NOMEM (-1)

/* Whether session `s` gets dispatch `t` with `d_json`, by its intents:
 * MOCK_INTENTS_SEND (with *own_d NULL: send d_json as it is; or a heap
 * copy of d for this session alone, MESSAGE_CONTENT's fields emptied, for
 * the caller to free), MOCK_INTENTS_DROP (Discord would not send it: it
 * takes no sequence number), or MOCK_INTENTS_NOMEM.  Events the table does
 * not know always go. */
int mock_intents_filter(const struct mock_session *s, const char *t,
                        const char *d_json, char **own_d);
/* READY's application.flags for an app whose privileged intents `denied`
 * are off: GATEWAY_PRESENCE, GATEWAY_GUILD_MEMBERS, GATEWAY_MESSAGE_CONTENT
 * for the others. */
int64_t mock_intents_privileged_flags(uint32_t denied);

#endif /* DGW_MOCK_INT_H */
