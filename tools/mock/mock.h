/*
 * The dgw mock Discord gateway: a libevent + wslay (server side) + zlib
 * fake of wss://gateway.discord.gg that the test suite runs in-process over
 * loopback, and that `dgw mock` serves standalone.
 *
 * It speaks gateway v10 JSON (see ../shared/docs/gateway-protocol.md, §13):
 * HELLO, heartbeat ACKs, IDENTIFY -> READY + scripted dispatches with
 * increasing sequence numbers, the opcode/close-code rules of §13.3, and
 * zlib-stream transport compression (one deflate stream per connection,
 * Z_SYNC_FLUSH per payload) when the URL asks for compress=zlib-stream.
 *
 * Sessions live on the mock, not on a connection: IDENTIFY creates one
 * (READY has s 1), and it survives its connection for session_ttl_ms unless
 * the client closed first with 1000/1001.  Each session has its own
 * sequence numbers, its own history of dispatches (for replay) and its own
 * position in the script.  RESUME {"token","session_id","seq"} (protocol
 * §5.5), checked in this order:
 *   - a token other than the mock's (or the one the session identified
 *     with): close 4004;
 *   - an unknown, expired or invalidated session: op 9 d:false, and the
 *     connection stays open (the client may IDENTIFY on it);
 *   - seq (null counts as 0) negative or above the session's last seq:
 *     close 4007;
 *   - seq older than the history keeps (cfg.history_max): op 9 d:false;
 *   - otherwise the connection takes the session over (a connection still
 *     attached to it is dropped, no close frame), gets every kept dispatch
 *     with s > seq (and the cfg.replay_overlap ones before) with its
 *     original s, then RESUMED {"_trace":["dgw-mock"]} with the next s,
 *     then the rest of the session's script.
 *
 * Intents (protocol §10, tools/mock/intents.c): a session gets only the
 * dispatches its IDENTIFY intents cover (one without guild_id in d is a
 * DM: MESSAGE_CREATE then needs DIRECT_MESSAGES), and one it does not get
 * takes none of its sequence numbers; event names the table does not know
 * always go.  Without MESSAGE_CONTENT a guild message's content, embeds,
 * attachments and components come empty (and its poll goes) unless the
 * bot wrote it or is mentioned.  An IDENTIFY with a privileged intent in
 * cfg.privileged_denied closes 4014; undefined bits close 4013.
 *
 * Commands (protocol §11, §13.10), after IDENTIFY or RESUME (before: close
 * 4003).  Every reply is an ordinary dispatch of the session: it takes the
 * next sequence number, enters the history and is replayed by a RESUME.
 * A payload whose d breaks the rules below closes 4001 (Discord: "invalid
 * payload for an opcode").  Snowflakes may be strings of 1 to 20 digits or
 * JSON integers >= 0; replies carry them as decimal strings.
 *   - op 3 PRESENCE_UPDATE: d {since: int >= 0 or null, activities: array
 *     of {name: string, type: 0..5, state?, url?: string or null},
 *     status: "online"|"dnd"|"idle"|"invisible"|"offline", afk: bool}, all
 *     four required.  No reply (read it through hooks.on_payload).
 *   - op 4 VOICE_STATE_UPDATE: d {guild_id, channel_id (null: leave),
 *     self_mute, self_deaf (bools)}, all required.  Reply: dispatch
 *     VOICE_STATE_UPDATE {guild_id, channel_id, user_id (the bot,
 *     "1000000000000000001"), session_id (the gateway session's id),
 *     self_mute, self_deaf, deaf, mute, suppress, self_video (false),
 *     request_to_speak_timestamp: null, member}, then, unless channel_id is
 *     null, VOICE_SERVER_UPDATE {token: "voice-token-<32 hex>", guild_id,
 *     endpoint: "voice.mock.invalid:443"}; cfg.voice_server_first swaps
 *     the two.
 *   - op 8 REQUEST_GUILD_MEMBERS: d {guild_id, and either user_ids (one
 *     snowflake or an array of at most 100; wins when query is given too)
 *     or query (string) with limit (int >= 0, required with query);
 *     presences?: bool; nonce?}.  Every guild has the same
 *     cfg.members_per_guild synthetic members: member i has user id
 *     2000000000000000000 + i and username "user<i>".  user_ids asks for
 *     those ids (the others, duplicates removed, are "not_found"); query
 *     "" with limit 0 asks for every member; any other query asks for the
 *     members whose username starts with it (ASCII case-insensitively),
 *     at most min(limit, 100) of them (limit 0: 100), as Discord caps
 *     prefix queries at 100.  Reply: GUILD_MEMBERS_CHUNK dispatches of at
 *     most cfg.chunk_size members each, at least one, {guild_id, members:
 *     [{user: {id, username}}], chunk_index, chunk_count, not_found (chunk
 *     0 of a user_ids request only), presences: [] (with presences:true),
 *     nonce (echoed when it is a string of 1 to 32 bytes; any other nonce
 *     is dropped silently, as Discord does)}.  A second all-members
 *     request (query "", limit 0) for the same guild within
 *     cfg.member_rate_ms of the last one served, on the same session, gets
 *     instead a dispatch RATE_LIMITED {opcode: 8, retry_after: seconds
 *     left (float), meta: {guild_id, nonce?}} (protocol §6.4); refused
 *     requests do not restart the wait.
 *   - op 31 REQUEST_SOUNDBOARD_SOUNDS: d {guild_ids: array of snowflakes}.
 *     Reply: one SOUNDBOARD_SOUNDS dispatch per id, in order, {guild_id,
 *     soundboard_sounds: 2 sounds {sound_id, name: "sound1"/"sound2",
 *     volume: 1.0, emoji_id: null, emoji_name: null, guild_id, available:
 *     true}}.
 *   - op 43 REQUEST_CHANNEL_INFO: d {guild_id, fields: array of "status"
 *     and/or "voice_start_time" (anything else closes 4001)}.  Reply: one
 *     CHANNEL_INFO dispatch {guild_id, channels: [{id:
 *     "3000000000000000001", status: "mock status" (when asked),
 *     voice_start_time: 1764201600 (when asked)}]}.
 *
 * Send rate limit (protocol §6.1, §13.3): every text or binary message a
 * client sends on a connection counts (heartbeats, IDENTIFY, RESUME, bad
 * ones too; not WebSocket pings), stamped when the mock reads it, in a
 * sliding window of cfg.rate_window_ms; the one that makes more than
 * cfg.rate_budget in a window closes 4008 "Rate limited" (the session
 * stays resumable).  The count starts again on each connection.
 * stats.max_in_window reports the most any connection had in a window,
 * also with cfg.no_rate_limit.  The mock stamps arrival, not departure,
 * and in-process it shares the client's event loop: a payload read late
 * (the loop was busy) looks closer to the next ones than it was sent.  A
 * client that paces itself to the exact millisecond of the same window
 * therefore trips 4008 now and then; tests give the mock a window about
 * 10% shorter than the client's (or a budget a little larger).
 *
 * Closes and replies keep their order: a close the mock decides while it
 * reads a batch of client messages (4008, 4001, a hook's
 * dgw_mock_conn_close()) goes out after the replies to the earlier
 * messages of that batch.
 *
 * Fault knobs (split payloads, continuation frames, wrong accept key, close
 * with any code, drop mid-frame, lost dispatches, withheld heartbeat ACKs,
 * late HELLO, op 7 before HELLO, invalidated sessions, a listener that goes
 * away) let tests provoke every failure a client must survive.
 *
 * Single-threaded: every call on the thread that runs the event_base.
 * Every call except dgw_mock_free() may be made from inside a hook.
 */
#ifndef DGW_MOCK_H
#define DGW_MOCK_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include <dgw/dgw.h>

struct dgw_mock;
struct dgw_mock_conn;

/* Observations the tests (and the CLI's logging) hook into.  All optional.
 * Pointers passed in are valid only during the call. */
struct dgw_mock_hooks {
  /* A client finished the WebSocket upgrade. `path_query` is the request
   * target, e.g. "/?v=10&encoding=json&compress=zlib-stream". */
  void (*on_open)(struct dgw_mock *mock, struct dgw_mock_conn *conn,
                  const char *path_query, void *user_data);
  /* A client sent a payload (any text or binary message), as received;
   * `op` is its opcode or -1 when it did not parse.  Called before the mock
   * acts on it. */
  void (*on_payload)(struct dgw_mock *mock, struct dgw_mock_conn *conn, int op,
                     const char *json, size_t len, void *user_data);
  /* A connection ended.  `code` is the close code the client sent, or 0
   * when there was none (TCP dropped, or the mock closed first). */
  void (*on_close)(struct dgw_mock *mock, struct dgw_mock_conn *conn, int code,
                   void *user_data);
};

struct dgw_mock_config {
  const char *host; /* bind address; NULL means "127.0.0.1" */
  uint16_t port;    /* 0 picks a free port: see dgw_mock_port() */
  /* PEM certificate chain and key: when both are set the mock serves
   * wss:// (TLS 1.2+); otherwise plain ws://. */
  const char *cert_file;
  const char *key_file;
  /* Token IDENTIFY must carry; NULL accepts any non-empty token.  A wrong
   * one closes with 4004. */
  const char *token;
  uint32_t heartbeat_interval_ms; /* in HELLO; 0 means 41250 */
  /* Gap between scripted dispatches after READY; 0 sends them at once. */
  uint32_t dispatch_interval_ms;
  /* 0: one WebSocket message per compressed payload.  N > 0: split every
   * compressed payload into messages of at most N bytes (so with N < 4
   * the 00 00 FF FF suffix itself is split across messages). */
  size_t split_size;
  /* 0: one frame per message.  N > 0: send every message as a first frame
   * plus continuation frames of at most N payload bytes each. */
  size_t fragment_size;
  /* Answer the upgrade with a wrong Sec-WebSocket-Accept (tests that the
   * client refuses it). */
  int bad_accept;
  /* Dispatches each session keeps for resume replay (the newest ones);
   * 0 means 1024.  A RESUME whose seq is older than that window (a
   * dispatch it needs is gone) gets op 9 d:false. */
  size_t history_max;
  /* How long a session stays resumable after its connection ended
   * (without a client close 1000/1001); 0 means 180000 (3 minutes).  An
   * expired session is forgotten: a RESUME of it gets op 9 d:false. */
  uint32_t session_ttl_ms;
  /* On a successful RESUME with seq S, also re-send the dispatches with
   * s in (S - replay_overlap, S] (the ones the client already has) before
   * the missed ones, with their original s: the client must drop them. */
  uint32_t replay_overlap;
  /* Do not answer heartbeats with op 11 (the connection looks like a
   * zombie to the client).  See dgw_mock_set_ack(). */
  int no_ack;
  /* Send HELLO this long after the upgrade instead of at once. */
  uint32_t hello_delay_ms;
  /* On the first connection of this mock that would get HELLO, send op 7
   * Reconnect instead (and nothing else; the client is expected to go and
   * reconnect).  Later connections get HELLO as usual. */
  int reconnect_before_hello;

  /* Commands (see the top of this file). */
  /* Answer op 4 with VOICE_SERVER_UPDATE first, then VOICE_STATE_UPDATE
   * (Discord promises no order; clients must handle both). */
  int voice_server_first;
  /* Synthetic members of every guild, for op 8; 0 means 2500. */
  uint32_t members_per_guild;
  /* Most members in one GUILD_MEMBERS_CHUNK; 0 means 1000 (Discord's). */
  uint32_t chunk_size;
  /* Least time between two served all-members requests for one guild on
   * one session; 0 means 30000 (Discord's, protocol §6.4). */
  uint32_t member_rate_ms;

  /* Send rate limit (see the top of this file). */
  /* Sliding window length; 0 means 60000 (Discord's). */
  uint32_t rate_window_ms;
  /* Client payloads allowed in one window; 0 means 120 (Discord's). */
  uint32_t rate_budget;
  /* Never close 4008 (stats.max_in_window is still kept). */
  int no_rate_limit;

  /* REST: the mock also answers GET <anything>/gateway/bot (plain HTTP/1.1
   * on the same port, or HTTPS with cert_file) with {"url": its own
   * ws[s]:// URL, "shards": rest_shards, "session_start_limit": {"total":
   * 1000, "remaining": 1000 - IDENTIFYs so far, "reset_after": 86400000,
   * "max_concurrency": rest_max_concurrency}}, or 401 when the
   * Authorization header is not "Bot <token>" (any non-empty token when
   * cfg.token is NULL).  0 means 1 for both. */
  uint32_t rest_shards;
  uint32_t rest_max_concurrency;
  /* REST rate limits enforced (docs/mock.md, "Rate limits"): POST
   * /channels/{id}/messages 5 per 5 s per channel, every other route 50
   * per second per major parameter, 50 requests per second in all; the
   * X-RateLimit-* headers tell the truth and a request over a limit gets
   * Discord's 429.  Off by default: the headers advertise a generous
   * limit that is never enforced.  `dgw mock --rate-limits` turns it on. */
  int rest_rate_limits;

  /* The built-in guild (id 1200000000000000001, two text channels, roles,
   * the bot and one user "alice" as members, a presence): listed
   * unavailable in READY and sent as GUILD_CREATE right after it, on the
   * shard the guild belongs to.  Off by default (the test suite's scripts
   * bring their own guilds); `dgw mock` turns it on without --script.
   *
   * Plain HTTP requests on the port (no Upgrade: websocket) are Discord's
   * REST (routes under /api/v10, /api/v9 and /api; see docs/mock.md) and
   * the control API under /_mock/ that test suites drive: inject a
   * message, an interaction or any event, list what the bot sent, close
   * or cut connections, withhold ACKs, reset. */
  int builtin_guild;
  /* Scripted (and replayed) MESSAGE_CREATE, MESSAGE_UPDATE with an
   * author, and GUILD_CREATE dispatches get the fields Discord always
   * sends that their d lacks, with the same shapes as the mock's own (what
   * d has wins; channels get type, position, permission_overwrites...), so
   * that a thin script builds in discord.py or discord.js too.  Off by
   * default (tests compare their d byte for byte); `dgw mock` turns it on
   * unless --raw-script. */
  int complete_payloads;

  /* Privileged intents (GUILD_MEMBERS 1<<1, GUILD_PRESENCES 1<<8,
   * MESSAGE_CONTENT 1<<15) the app has NOT enabled in the Developer
   * Portal; 0 (the default) enables all three.  An IDENTIFY asking for
   * one of these closes 4014 "Disallowed intent(s)", and READY's
   * application.flags leaves out its GATEWAY_* flag.  Whatever the app
   * may ask for, every session gets only the dispatches its own intents
   * cover (docs/mock.md, "Intents"). */
  uint32_t privileged_denied;

  /* Sessions kept resumable without a connection at once (the oldest
   * beyond are forgotten); 0 means 32.  A bench that cuts thousands of
   * connections at once and expects them all to RESUME raises it. */
  size_t detached_max;

  /* Log sink for the mock's own diagnostics; NULL is silent. */
  dgw_log_fn log;
  void *log_user_data;
  struct dgw_mock_hooks hooks;
  void *user_data; /* handed to the hooks */
};

/*
 * Creates a mock listening on cfg->host:cfg->port on `base`.  Returns NULL
 * and sets *err (DGW_ERR_INVALID_ARGUMENT, DGW_ERR_TLS for unreadable
 * cert/key, DGW_ERR_CONNECT when the address cannot be bound, DGW_ERR_NOMEM)
 * on failure.  `cfg` is copied (strings too).  Free with dgw_mock_free().
 */
struct dgw_mock *dgw_mock_new(struct event_base *base,
                              const struct dgw_mock_config *cfg, int *err);

/* Closes the listener and every connection at once (no close frames) and
 * frees the mock.  NULL is a no-op.  Not to be called from a hook. */
void dgw_mock_free(struct dgw_mock *mock);

/* The port the mock listens on (useful with cfg->port == 0). */
uint16_t dgw_mock_port(const struct dgw_mock *mock);

/*
 * Appends a dispatch to the script sent, in order, to each session after
 * its READY: `t` is the event name, `d_json` the JSON text of `d` (copied).
 * The position in the script belongs to the session, so a resumed session
 * goes on where it stopped.  Returns DGW_OK, DGW_ERR_JSON when d_json does
 * not parse, DGW_ERR_NOMEM.
 */
int dgw_mock_add_dispatch(struct dgw_mock *mock, const char *t,
                          const char *d_json);

/*
 * Loads a script from a file of JSON lines, each {"t": NAME, "d": VALUE}
 * (the format dgw record and the log plugin write; other keys are ignored,
 * and READY and RESUMED lines are skipped: the mock makes its own session
 * events).  Returns DGW_OK, DGW_ERR_IO when the file
 * cannot be read, DGW_ERR_JSON naming nothing (check the log) for a bad line.
 */
int dgw_mock_load_script(struct dgw_mock *mock, const char *path);

/* The number of open connections, and the most recently opened one (NULL
 * when none).  A connection pointer is valid until its on_close hook. */
size_t dgw_mock_conn_count(const struct dgw_mock *mock);
struct dgw_mock_conn *dgw_mock_last_conn(struct dgw_mock *mock);

/*
 * Sends one payload (the JSON text `json`, copied) to the client as the
 * connection's compression and split/fragment settings say.  Returns DGW_OK
 * or DGW_ERR_STATE when the connection is closing.
 */
int dgw_mock_conn_send_json(struct dgw_mock_conn *conn, const char *json);

/*
 * Sends `len` bytes at `data` (copied) as one binary message exactly as
 * given: no compression, no split (fragmented if so configured).  For
 * tests of the client's decompressors: a corrupt stream, a message that
 * never completes a payload.  Returns DGW_OK, DGW_ERR_STATE when the
 * connection is closing, DGW_ERR_INVALID_ARGUMENT or DGW_ERR_NOMEM.
 */
int dgw_mock_conn_send_binary(struct dgw_mock_conn *conn, const void *data,
                              size_t len);

/* Sends a dispatch with the next sequence number of the connection's
 * session, and keeps it in the session history for replay (before IDENTIFY
 * the connection counts on its own and keeps nothing).  One the
 * session's intents do not cover is left out, without a sequence number.
 * Returns DGW_OK or DGW_ERR_STATE when the connection is closing. */
int dgw_mock_conn_send_dispatch(struct dgw_mock_conn *conn, const char *t,
                                const char *d_json);

/* Starts a close handshake with `code` and `reason` (may be NULL). */
int dgw_mock_conn_close(struct dgw_mock_conn *conn, uint16_t code,
                        const char *reason);

/* Drops the TCP connection at once, with no close frame. */
void dgw_mock_conn_drop(struct dgw_mock_conn *conn);

/* Writes the first half of a frame (header and part of its payload), then
 * drops the TCP connection: the client must report a lost connection, not
 * hang waiting for the rest. */
void dgw_mock_conn_drop_midframe(struct dgw_mock_conn *conn);

/* Writes `len` raw bytes to the connection as they are, between two
 * frames: a corrupt zlib message or a malformed frame the client must
 * fail the connection on.  Returns DGW_OK, DGW_ERR_STATE when the
 * connection is closing, DGW_ERR_INVALID_ARGUMENT, DGW_ERR_NOMEM. */
int dgw_mock_conn_send_raw(struct dgw_mock_conn *conn, const void *bytes,
                           size_t len);

/* The last sequence number of this connection's session (0 before
 * READY); lost dispatches (dgw_mock_conn_lose_next()) count too. */
int64_t dgw_mock_conn_seq(const struct dgw_mock_conn *conn);

/* ------------------------------------------------- sessions and faults */

/*
 * Appends a dispatch (`t` the event name, `d_json` the JSON text of `d`,
 * both copied) with the session's next sequence number to its history.
 * When a connection is attached it is sent there at once; otherwise it
 * waits in the history and reaches the client only through a RESUME
 * replay (events the client missed while away).  `session_id` NULL means
 * the most recently created session still alive.  A dispatch the
 * session's intents do not cover is left out, without a sequence number
 * (docs/mock.md, "Intents").  Returns DGW_OK (also when the attached
 * connection could not take it: it is in the history; and when the
 * intents left it out),
 * DGW_ERR_STATE when there is no such session, DGW_ERR_JSON when d_json
 * does not parse, DGW_ERR_INVALID_ARGUMENT, DGW_ERR_NOMEM.
 */
int dgw_mock_session_add_dispatch(struct dgw_mock *mock, const char *session_id,
                                  const char *t, const char *d_json);

/*
 * The next `n` dispatches the mock sends on this connection (READY, the
 * script, replays, RESUMED, dgw_mock_session_add_dispatch(),
 * dgw_mock_conn_send_dispatch()) are "lost in flight": they take their
 * sequence number and go into the session history, but are not written to
 * the socket.  A later RESUME with an older seq replays them.  0 cancels.
 */
void dgw_mock_conn_lose_next(struct dgw_mock_conn *conn, unsigned n);

/* Starts (on != 0) or stops answering client heartbeats with op 11, for
 * every connection, from the next heartbeat on.  Overrides cfg->no_ack. */
void dgw_mock_set_ack(struct dgw_mock *mock, int on);

/* Sends a server heartbeat request {"op":1,"d":null,"s":null,"t":null}:
 * the client must heartbeat at once.  Returns DGW_OK or DGW_ERR_STATE when
 * the connection is closing. */
int dgw_mock_conn_request_heartbeat(struct dgw_mock_conn *conn);

/*
 * Invalidates a session (NULL: the most recently created one) and forgets
 * it: a later RESUME of it gets op 9 d:false.  When a connection is
 * attached, it gets op 9 d:false now and stays open, unauthenticated, so
 * the client may IDENTIFY (or RESUME another session) on it.  Returns
 * DGW_OK or DGW_ERR_STATE when there is no such session.
 */
int dgw_mock_invalidate_session(struct dgw_mock *mock, const char *session_id);

/*
 * The session of a connection: its id, or NULL until IDENTIFY or RESUME
 * succeeded on it (and again after the session was invalidated or taken
 * over by another connection's RESUME).  The string is valid until control
 * returns to the event loop or the next call into the mock.
 */
const char *dgw_mock_conn_session_id(const struct dgw_mock_conn *conn);

/* The number of sessions alive, attached to a connection or not. */
size_t dgw_mock_session_count(const struct dgw_mock *mock);

/* The last sequence number of a session (NULL: the most recently created
 * one), lost and detached-added dispatches included; -1 when unknown. */
int64_t dgw_mock_session_seq(const struct dgw_mock *mock,
                             const char *session_id);

/*
 * Sends a close frame with `code` and `reason` (may be NULL) on every open
 * connection not already closing, and drops the connections still in
 * their HTTP upgrade.  Sessions survive (the client closes are echoes, not
 * its choice).  Returns DGW_OK or DGW_ERR_INVALID_ARGUMENT.
 */
int dgw_mock_close_all(struct dgw_mock *mock, uint16_t code,
                       const char *reason);

/* Drops every connection, open or still upgrading, with no close frame
 * (a network cut).  Sessions survive and may be resumed. */
void dgw_mock_drop_all(struct dgw_mock *mock);

/*
 * Closes (on == 0) or reopens (on != 0) the listening socket, on the same
 * address and port: while closed, new connects are refused (the gateway
 * is gone).  Open connections are not touched; combine with
 * dgw_mock_drop_all() for a full outage.  Returns DGW_OK (also when
 * already in that state), DGW_ERR_CONNECT when the port cannot be bound
 * again (someone else took it), DGW_ERR_INVALID_ARGUMENT.
 */
int dgw_mock_set_listening(struct dgw_mock *mock, int on);

/*
 * Answers the next `count` REST requests whose path (with or without its
 * /api/vN prefix) starts with `route` (NULL or "": any) with HTTP 429, as
 * Discord does, without performing them: body {"message": "You are being
 * rate limited.", "retry_after": retry_after, "global": global} (and
 * "code": 0 when global), headers Retry-After (whole seconds, rounded up),
 * X-RateLimit-Scope (global or user), X-RateLimit-Global: true when
 * global, else the bucket's X-RateLimit-* with Remaining 0 and
 * Reset-After retry_after.  Replaces what an earlier call left; count 0
 * cancels.  Returns DGW_OK, DGW_ERR_INVALID_ARGUMENT (retry_after not in
 * 0..86400, route of 256 bytes or more), DGW_ERR_NOMEM.
 */
int dgw_mock_inject_429(struct dgw_mock *mock, unsigned count,
                        double retry_after, int global, const char *route);

/* Counters since dgw_mock_new(). */
struct dgw_mock_stats {
  uint64_t connections;       /* connections that completed the upgrade */
  uint64_t identifies;        /* IDENTIFY payloads received (any outcome) */
  uint64_t resumes;           /* RESUME payloads received (any outcome) */
  uint64_t resumes_ok;        /* RESUMEs that attached to their session */
  uint64_t heartbeats;        /* op 1 payloads received */
  uint64_t acks_sent;         /* op 11 sent */
  uint64_t dispatches_sent;   /* op 0 written to a socket by the mock:
                                 READY, script, replays, RESUMED, added;
                                 lost ones and send_json ones excluded */
  uint64_t commands;          /* op 3, 4, 8, 31, 43 payloads accepted */
  uint64_t rate_limited;      /* RATE_LIMITED dispatches made for op 8 */
  uint64_t rate_limit_closes; /* connections closed with 4008 */
  /* The most client payloads any connection had in one window of
   * cfg.rate_window_ms (the payload that tripped a 4008 included), so a
   * test can check that a client never went over the budget. */
  uint64_t max_in_window;
  uint64_t rest_requests; /* REST requests answered (control API excluded) */
  uint64_t rest_rate_limited; /* of those, answered 429 (injected or not) */
};

/* Copies the counters into *out. */
void dgw_mock_get_stats(const struct dgw_mock *mock,
                        struct dgw_mock_stats *out);

/*
 * The d of a MESSAGE_CREATE by user `author_id` named `username` with
 * every field Discord documents (author with avatar, discriminator and
 * global_name, member when `guild_id` is not NULL, attachments, embeds,
 * mentions, mention_roles, mention_everyone, pinned, tts, type, timestamp
 * of now, edited_timestamp, flags...): the one shape the mock's REST and
 * control API send too, for scripts and tools that add dispatches.
 * Returns a heap string (free()), or NULL for a NULL argument (guild_id
 * excepted) or when out of memory.
 */
char *dgw_mock_message_json(const char *id, const char *channel_id,
                            const char *guild_id, const char *author_id,
                            const char *username, const char *content);

/* The resume_gateway_url READY announces from now on (copied, at most 255
 * bytes), e.g. a ws:// URL on a wss:// mock to test that a client refuses
 * the downgrade; NULL restores the mock's own address. */
void dgw_mock_set_ready_resume_url(struct dgw_mock *mock, const char *url);

#endif /* DGW_MOCK_H */
