/*
 * dgw: a Discord Gateway client library for programs that run a libevent
 * loop.
 *
 * Every function here is called from the thread that runs the caller's
 * struct event_base; dgw creates no threads and keeps no global mutable
 * state, so several independent clients may live in one process.
 *
 * Errors: functions return 0 (DGW_OK) on success or a negative
 * enum dgw_error value; functions that return a pointer return NULL and, when
 * given an `int *err`, store the reason there.  dgw_strerror() turns a code
 * into a fixed English sentence.  The library never aborts, exits or prints
 * on its own.
 */
#ifndef DGW_DGW_H
#define DGW_DGW_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/version.h>

#ifdef __cplusplus
extern "C" {
#endif

struct json_object;  /* json-c's, from <json-c/json.h> */
struct dgw_presence; /* a presence, declared with the gateway commands */

/** Marks a symbol exported from libdgw; everything else is hidden. */
#if defined(DGW_BUILDING_LIBRARY) && defined(__GNUC__)
#define DGW_EXTERN __attribute__((visibility("default")))
#else
#define DGW_EXTERN
#endif

/**
 * Error codes.  0 is success; every error is negative, grouped by the layer
 * that reports it.  New codes may be added in later releases: treat an
 * unknown negative value as a generic failure.
 */
enum dgw_error {
  DGW_OK = 0,

  /* Caller and resource errors. */
  DGW_ERR_INVALID_ARGUMENT = -1, /**< a NULL, empty or out-of-range argument */
  DGW_ERR_NOMEM = -2,            /**< an allocation failed */
  DGW_ERR_STATE = -3,            /**< not allowed in the object's state */
  DGW_ERR_AGAIN = -4,            /**< not complete yet; more input needed */
  DGW_ERR_QUEUE_FULL = -5,       /**< a bounded send queue is full */
  DGW_ERR_SESSION_LOST = -6,     /**< the session ended for good before a
                                      command was sent or answered */
  DGW_ERR_RATE_LIMITED = -7,     /**< Discord refused a request for now
                                      (RATE_LIMITED, see retry_after) */
  DGW_ERR_UNSUPPORTED = -8,      /**< not built in: zstd-stream without
                                      libzstd, the cluster without hiredis */

  /* URL and connection establishment. */
  DGW_ERR_URL = -100,        /**< the URL is malformed or not ws:// wss:// */
  DGW_ERR_DNS = -101,        /**< the host name could not be resolved */
  DGW_ERR_CONNECT = -102,    /**< TCP connect failed (refused, unreachable) */
  DGW_ERR_TLS = -103,        /**< the TLS handshake or TLS stream failed */
  DGW_ERR_TLS_VERIFY = -104, /**< the peer certificate or host name failed
                                  verification */
  DGW_ERR_TIMEOUT = -105,    /**< connect, handshake or close timed out */
  DGW_ERR_HANDSHAKE = -106,  /**< the HTTP upgrade response was refused */

  /* WebSocket stream. */
  DGW_ERR_PROTOCOL = -200,          /**< the peer broke RFC 6455 framing */
  DGW_ERR_CLOSED = -201,            /**< the peer closed with a close frame */
  DGW_ERR_CONNECTION_LOST = -202,   /**< the TCP stream ended without a close
                                         frame */
  DGW_ERR_MESSAGE_TOO_LARGE = -203, /**< an inbound message exceeded the cap */
  DGW_ERR_IO = -204, /**< a socket or file read or write failed */

  /* Payloads. */
  DGW_ERR_INFLATE = -300,           /**< the zlib or zstd stream is corrupt */
  DGW_ERR_INFLATE_LIMIT = -301,     /**< a payload inflated past the size cap */
  DGW_ERR_JSON = -302,              /**< a payload is not the JSON expected */
  DGW_ERR_PAYLOAD_TOO_LARGE = -303, /**< an outgoing payload is over 4096
                                         bytes */
  /* The field getters of <dgw/field.h>. */
  DGW_ERR_NOT_FOUND = -310,        /**< a JSON Pointer names no value */
  DGW_ERR_TYPE = -311,             /**< a value has another type than asked */
  DGW_ERR_RANGE = -312,            /**< a number does not fit the type asked */
  DGW_ERR_BUFFER_TOO_SMALL = -313, /**< a caller's buffer is too small */

  /* Plugins. */
  DGW_ERR_PLUGIN = -400, /**< a plugin was refused (the message says why) */

  /* The REST API (GET /gateway/bot). */
  DGW_ERR_AUTH = -500, /**< the bot token was refused (HTTP 401) */
  DGW_ERR_HTTP = -501, /**< the API refused the request for good (another
                            4xx, or a redirect) */
};

/**
 * Returns a fixed, NUL-terminated English description of `error` (an
 * enum dgw_error value).  Unknown values give "unknown error".  The string
 * is static: never free it.
 */
DGW_EXTERN const char *dgw_strerror(int error);

/**
 * Returns the version string of the library actually linked, e.g. "0.1.0".
 * Compare with DGW_VERSION to detect a header/library mismatch.  Static
 * storage.
 */
DGW_EXTERN const char *dgw_version(void);

/** Severity of a log line, most severe first. */
enum dgw_log_level {
  DGW_LOG_ERROR = 0,
  DGW_LOG_WARN = 1,
  DGW_LOG_INFO = 2,
  DGW_LOG_DEBUG = 3,
};

/**
 * A log sink.  dgw never writes to stdout or stderr itself: it hands every
 * log line to a callback of this type.  `message` is NUL-terminated, has no
 * trailing newline and is valid only during the call.  Log lines never
 * contain the bot token.
 */
typedef void (*dgw_log_fn)(enum dgw_log_level level, const char *message,
                           void *user_data);

/**
 * Returns the fixed lower-case name of `level` ("error", "warn", "info",
 * "debug"), or "?" for any other value.  Static storage.
 */
DGW_EXTERN const char *dgw_log_level_name(enum dgw_log_level level);

/* ================================================================ */
/* Close codes                                                       */
/* ================================================================ */

/** What a shard does after the gateway closed with a given code. */
enum dgw_close_action {
  /** Reconnect and RESUME the session (falls back to IDENTIFY when the
   * gateway refuses the resume). */
  DGW_CLOSE_RESUME = 0,
  /** Forget the session; reconnect and IDENTIFY anew. */
  DGW_CLOSE_NEW_SESSION = 1,
  /** Stop the shard and report it: retrying cannot help (bad token, bad
   * shard, bad intents, sharding required, bad API version). */
  DGW_CLOSE_FATAL = 2,
};

/**
 * The policy for close code `code`, in one table: 4004, 4010, 4011, 4012,
 * 4013 and 4014 are fatal; 4006, 4007 and 4009 start a new session;
 * every other code (4003 included, and no code at all, 0) resumes.
 */
DGW_EXTERN enum dgw_close_action dgw_close_code_action(int code);

/**
 * Discord's name for gateway close code `code` ("Authentication failed"
 * for 4004), a name for the standard WebSocket codes, or "unknown close
 * code".  Static storage.
 */
DGW_EXTERN const char *dgw_close_code_name(int code);

/* ================================================================ */
/* Options                                                           */
/* ================================================================ */

/** Gateway API version dgw speaks. */
#define DGW_API_VERSION 10
/** Discord's gateway URL.  dgw does not fall back to it: without a
 * configured gateway URL it asks GET /gateway/bot where to connect. */
#define DGW_DEFAULT_GATEWAY_URL "wss://gateway.discord.gg"
/** The REST API base dgw asks GET /gateway/bot of, unless configured. */
#define DGW_DEFAULT_API_URL "https://discord.com/api/v10"
/** dgw_gateway_latency() before the first heartbeat ACK. */
#define DGW_LATENCY_UNKNOWN (-1.0)

/**
 * Everything a client is configured with, filled through setters so new
 * options never break the ABI.  A dgw_options is copied by dgw_client_new()
 * and may be freed right after.  Setters return DGW_OK or
 * DGW_ERR_INVALID_ARGUMENT (DGW_ERR_URL for a bad URL, DGW_ERR_JSON for bad
 * JSON, DGW_ERR_NOMEM).
 */
struct dgw_options;

/** Returns new options with the defaults below, or NULL without memory. */
DGW_EXTERN struct dgw_options *dgw_options_new(void);

/** Frees `opt` (and wipes the token from memory).  NULL is a no-op. */
DGW_EXTERN void dgw_options_free(struct dgw_options *opt);

/**
 * The bot token, without the "Bot " prefix (required).  Copied; dgw never
 * writes it to a log line or an error message.
 */
DGW_EXTERN int dgw_options_set_token(struct dgw_options *opt,
                                     const char *token);

/* Gateway intents (protocol §10): OR them into dgw_options_set_intents().
 * The three marked privileged must be enabled for the application in the
 * Developer Portal, or Discord closes with 4014. */
#define DGW_INTENT_GUILDS (UINT64_C(1) << 0)
#define DGW_INTENT_GUILD_MEMBERS (UINT64_C(1) << 1) /**< privileged */
#define DGW_INTENT_GUILD_MODERATION (UINT64_C(1) << 2)
#define DGW_INTENT_GUILD_EXPRESSIONS (UINT64_C(1) << 3)
#define DGW_INTENT_GUILD_INTEGRATIONS (UINT64_C(1) << 4)
#define DGW_INTENT_GUILD_WEBHOOKS (UINT64_C(1) << 5)
#define DGW_INTENT_GUILD_INVITES (UINT64_C(1) << 6)
#define DGW_INTENT_GUILD_VOICE_STATES (UINT64_C(1) << 7)
#define DGW_INTENT_GUILD_PRESENCES (UINT64_C(1) << 8) /**< privileged */
#define DGW_INTENT_GUILD_MESSAGES (UINT64_C(1) << 9)
#define DGW_INTENT_GUILD_MESSAGE_REACTIONS (UINT64_C(1) << 10)
#define DGW_INTENT_GUILD_MESSAGE_TYPING (UINT64_C(1) << 11)
#define DGW_INTENT_DIRECT_MESSAGES (UINT64_C(1) << 12)
#define DGW_INTENT_DIRECT_MESSAGE_REACTIONS (UINT64_C(1) << 13)
#define DGW_INTENT_DIRECT_MESSAGE_TYPING (UINT64_C(1) << 14)
#define DGW_INTENT_MESSAGE_CONTENT (UINT64_C(1) << 15) /**< privileged */
#define DGW_INTENT_GUILD_SCHEDULED_EVENTS (UINT64_C(1) << 16)
#define DGW_INTENT_AUTO_MODERATION_CONFIGURATION (UINT64_C(1) << 20)
#define DGW_INTENT_AUTO_MODERATION_EXECUTION (UINT64_C(1) << 21)
#define DGW_INTENT_GUILD_MESSAGE_POLLS (UINT64_C(1) << 24)
#define DGW_INTENT_DIRECT_MESSAGE_POLLS (UINT64_C(1) << 25)
/** Every documented intent (53608447); other bits make Discord close 4013. */
#define DGW_INTENTS_ALL UINT64_C(53608447)
/** GUILD_MEMBERS, GUILD_PRESENCES and MESSAGE_CONTENT. */
#define DGW_INTENTS_PRIVILEGED                                                 \
  (DGW_INTENT_GUILD_MEMBERS | DGW_INTENT_GUILD_PRESENCES |                     \
   DGW_INTENT_MESSAGE_CONTENT)
/** Every documented intent that needs no approval. */
#define DGW_INTENTS_UNPRIVILEGED (DGW_INTENTS_ALL & ~DGW_INTENTS_PRIVILEGED)

/**
 * Parses intents written as text: names separated by commas, '|', '+' or
 * spaces ("GUILDS, GUILD_MESSAGES"), in any case, as Discord spells them
 * (the old GUILD_BANS, GUILD_EMOJIS and GUILD_EMOJIS_AND_STICKERS too),
 * the sets ALL, PRIVILEGED and UNPRIVILEGED, or decimal numbers of defined
 * bits ("513").  Sets *out to the OR of them all and returns DGW_OK; on an
 * unknown name, undefined bits or empty text returns
 * DGW_ERR_INVALID_ARGUMENT with a sentence naming the culprit in `why`
 * (may be NULL), and leaves *out alone.
 */
DGW_EXTERN int dgw_intents_parse(const char *text, uint64_t *out, char *why,
                                 size_t why_size);

/** The name of the intent `bit` (one DGW_INTENT_* value), or NULL when it
 * is not exactly one documented intent.  Static storage. */
DGW_EXTERN const char *dgw_intent_name(uint64_t bit);

/** Gateway intents bit set (default 0: no privileged events). */
DGW_EXTERN int dgw_options_set_intents(struct dgw_options *opt,
                                       uint64_t intents);

/**
 * The gateway URL to IDENTIFY on, ws:// or wss://, without a query.  dgw
 * appends "?v=10&encoding=json" and, with compression on,
 * "&compress=zlib-stream"; the same query is used on `resume_gateway_url`
 * when resuming.
 *
 * Default (and NULL): none, and dgw_client_start() asks GET /gateway/bot
 * (see dgw_options_set_api_url) for the URL and the identify limits.  A
 * configured URL with explicit shards (dgw_options_set_shards) makes no
 * REST call at all: that is how tests, the mock and gateway proxies run.
 */
DGW_EXTERN int dgw_options_set_gateway_url(struct dgw_options *opt,
                                           const char *url);

/**
 * The REST API base for GET /gateway/bot, http:// or https://, without a
 * query (default and NULL: DGW_DEFAULT_API_URL).  "/gateway/bot" is
 * appended to its path.  https:// verifies the server's certificate and
 * host name against the CA file or the system store, like wss://.
 * http:// is accepted for tests and for REST proxies on a trusted
 * network: the token then travels in clear, and a ws:// gateway URL in
 * the answer is accepted only from an http:// API.  Returns DGW_ERR_URL
 * for anything else.
 */
DGW_EXTERN int dgw_options_set_api_url(struct dgw_options *opt,
                                       const char *url);

/** zlib-stream transport compression on (1, the default) or off (0).
 * Same as dgw_options_set_compression() with "zlib-stream" or "none". */
DGW_EXTERN int dgw_options_set_compress(struct dgw_options *opt, int on);

/**
 * The transport compression to ask the gateway for: "zlib-stream" (the
 * default), "zstd-stream" or "none".  zstd-stream needs dgw built with
 * libzstd (configure says whether it found it): without it this returns
 * DGW_ERR_UNSUPPORTED and keeps the previous choice.  Any other name (or
 * NULL) gives DGW_ERR_INVALID_ARGUMENT.  Each connection gets one fresh
 * decompression stream; the cap of dgw_options_set_max_payload() bounds
 * a decompressed payload whichever is chosen, and a corrupt stream closes
 * the connection and resumes the session.  See docs/transport.md for the
 * measured difference (CPU, bytes on the wire, memory per idle shard).
 */
DGW_EXTERN int dgw_options_set_compression(struct dgw_options *opt,
                                           const char *name);

/**
 * A PEM file of CA certificates to trust instead of the system store (for
 * tests and private proxies).  NULL restores the system store.  Peer and
 * host-name verification are always on.
 */
DGW_EXTERN int dgw_options_set_ca_file(struct dgw_options *opt,
                                       const char *path);

/**
 * The shards this client runs: ids first .. first+count-1 of `total`
 * (default 0, 1, 1: one unsharded session).  count >= 1, first + count <=
 * total.  Replaces dgw_options_set_shards_auto().
 */
DGW_EXTERN int dgw_options_set_shards(struct dgw_options *opt, uint32_t first,
                                      uint32_t count, uint32_t total);

/**
 * Automatic sharding: dgw_client_start() asks GET /gateway/bot for the
 * recommended shard count N and this client runs all of shards 0..N-1.
 * dgw_client_new() then creates no shard: dgw_client_shard_count() is 0
 * and dgw_client_gateway() NULL until the answer arrives, when the shards
 * are created and started together.  Replaces dgw_options_set_shards().
 * Returns DGW_OK, or DGW_ERR_INVALID_ARGUMENT for a NULL `opt`.
 */
DGW_EXTERN int dgw_options_set_shards_auto(struct dgw_options *opt);

/** IDENTIFY's large_threshold, 50..250 (default: not sent, Discord's 50). */
DGW_EXTERN int dgw_options_set_large_threshold(struct dgw_options *opt,
                                               int threshold);

/**
 * IDENTIFY's initial presence, as the JSON text of a presence object
 * ({"status":"online","activities":[],"since":null,"afk":false}); NULL
 * sends none.  Checked to be a JSON object.
 */
DGW_EXTERN int dgw_options_set_presence_json(struct dgw_options *opt,
                                             const char *json);

/**
 * IDENTIFY's initial presence from a struct dgw_presence (declared with
 * the gateway commands below), checked as dgw_gateway_update_presence()
 * checks it: DGW_ERR_INVALID_ARGUMENT with a sentence in `why` (may be
 * NULL) for a bad status or activity.  NULL sends none.
 */
DGW_EXTERN int dgw_options_set_presence(struct dgw_options *opt,
                                        const struct dgw_presence *presence,
                                        char *why, size_t why_size);

/**
 * Where log lines go, and the most verbose level passed on (default: no
 * logging).  Returns DGW_OK, or DGW_ERR_INVALID_ARGUMENT for a NULL `opt`
 * (it returned void in 0.1.0; callers that ignore the result are
 * unaffected).
 */
DGW_EXTERN int dgw_options_set_log(struct dgw_options *opt, dgw_log_fn fn,
                                   void *user_data,
                                   enum dgw_log_level max_level);

/**
 * Reconnect backoff: the first retry after a healthy session is at once;
 * each further failure waits min(max_ms, base_ms * 2^n), half of it
 * random.  A fresh start has no healthy session yet: its first failure
 * already waits base_ms.  A session that stays up for `healthy_ms` resets
 * the count.
 * Defaults 1000, 60000, 60000.
 */
DGW_EXTERN int dgw_options_set_reconnect(struct dgw_options *opt,
                                         uint32_t base_ms, uint32_t max_ms,
                                         uint32_t healthy_ms);

/**
 * After INVALID_SESSION (op 9) with d=false, wait a uniform random time in
 * [min_ms, max_ms] before identifying (default 1000..5000, as Discord
 * advises).  Tests shorten it.
 */
DGW_EXTERN int dgw_options_set_invalid_session_wait(struct dgw_options *opt,
                                                    uint32_t min_ms,
                                                    uint32_t max_ms);

/**
 * Time allowed for DNS + TCP + TLS + upgrade (default 30000), and for the
 * peer to answer a close frame (default 5000), in milliseconds.  Once set,
 * `connect_ms` also limits each attempt of GET /gateway/bot, from DNS to
 * the whole answer (default 10000).
 */
DGW_EXTERN int dgw_options_set_timeouts(struct dgw_options *opt,
                                        uint32_t connect_ms, uint32_t close_ms);

/**
 * Largest inbound payload accepted, compressed or not (default 64 MiB;
 * Discord's READY can be several MB).  Bigger ones end the connection,
 * which then resumes.
 */
DGW_EXTERN int dgw_options_set_max_payload(struct dgw_options *opt,
                                           size_t bytes);

/**
 * IDENTIFY pacing: shards identify in `max_concurrency` buckets (shard_id %
 * max_concurrency), one per bucket per `window_ms` (Discord: the
 * max_concurrency of GET /gateway/bot, per 5000 ms).  Default 1, 5000.
 * When the client asks GET /gateway/bot, its max_concurrency replaces
 * `max_concurrency`; `window_ms` stays.
 */
DGW_EXTERN int dgw_options_set_identify_limits(struct dgw_options *opt,
                                               uint32_t max_concurrency,
                                               uint32_t window_ms);

/** Connection attempts a client has in flight at most, by default. */
#define DGW_DEFAULT_MAX_CONNECTING 16

/**
 * Connection pacing: at most `max` of the client's shards are between
 * "connecting" and the end of their handshake (HELLO and, when resuming,
 * RESUMED; a shard that must IDENTIFY leaves the count when it starts
 * waiting for the identify queue) at once; the others wait their turn in
 * order, let go a few milliseconds apart.  After a client-wide outage
 * thousands of shards reconnect and resume at once; paced, they do not
 * starve each other's heartbeats.  A shard that finds a free slot is not
 * delayed at all.  Default DGW_DEFAULT_MAX_CONNECTING (16); 0 means no
 * limit; DGW_ERR_INVALID_ARGUMENT above 65536.  dgw_gateway_terminate()
 * is never paced.
 */
DGW_EXTERN int dgw_options_set_max_connecting(struct dgw_options *opt,
                                              uint32_t max);

/** Lazy connect's default lead, and the longest allowed, in ms. */
#define DGW_DEFAULT_LAZY_LEAD_MS 2000
#define DGW_LAZY_LEAD_MAX_MS 600000

/**
 * Lazy connect: a shard with no session to resume joins the identify
 * queue before it connects and opens its connection only `lead_ms` before
 * its expected identify turn (enough for TCP, TLS and HELLO), so a process
 * of thousands of shards at max_concurrency 1 holds sockets only for the
 * shards that run and the next one or two, not for every shard waiting in
 * the queue.  A shard with a session (RESUME) connects at once.  A grant
 * that comes before HELLO is used at HELLO; IDENTIFY still never goes out
 * without one.  An identify queue that cannot say when a turn comes (a
 * cluster's shared queue in Redis) connects at once and asks at HELLO.
 * `on` 0 turns it off (every shard connects at once, then waits for its
 * turn); `lead_ms` 0 means DGW_DEFAULT_LAZY_LEAD_MS.  Default: on, with
 * DGW_DEFAULT_LAZY_LEAD_MS.  DGW_ERR_INVALID_ARGUMENT for a NULL `opt` or
 * `lead_ms` above DGW_LAZY_LEAD_MAX_MS.
 */
DGW_EXTERN int dgw_options_set_lazy_connect(struct dgw_options *opt, int on,
                                            uint32_t lead_ms);

#define DGW_DEFAULT_QUIET_SLEEP_MS 30000
#define DGW_QUIET_SLEEP_MAX_MS 86400000

/**
 * Quiet shards give their zlib window back.  The one zlib stream of a
 * connection holds a 32 KiB window and 7 KiB of state, about half of what
 * an idle TLS shard costs.  When a heartbeat ACK arrives and the shard has
 * had no dispatch for `quiet_ms`, dgw deflates the window into a buffer of
 * its size (a few KiB of JSON history), frees the stream, and restores it
 * exactly when the next message comes: nothing is lost or changed.  A
 * quiet shard pays a restore and a small append per heartbeat (about
 * 60 us of CPU in docs/performance.md's runs; a full pack, about 35 us
 * more, after a dispatch or every 4 KiB of ACKs).  zstd-stream windows are not packed.  The shard statistics
 * count it (window_sleeps, window_wakes, windows_asleep).  `quiet_ms` 0
 * turns it off.  Default: DGW_DEFAULT_QUIET_SLEEP_MS.
 * DGW_ERR_INVALID_ARGUMENT for a NULL `opt` or `quiet_ms` above
 * DGW_QUIET_SLEEP_MAX_MS.
 */
DGW_EXTERN int dgw_options_set_quiet_sleep(struct dgw_options *opt,
                                           uint32_t quiet_ms);

/**
 * Runs this client as one member of a cluster of dgw processes sharing
 * the bot's shards through Redis (docs/cluster.md): `redis_url`
 * "redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]" or "unix:///PATH[?db=N]",
 * `name` the cluster (1..64 of [A-Za-z0-9_.-], the same on every member),
 * `lease_ms` how long a member that stops renewing keeps its shards (0:
 * 15000; 300..600000).  The client then runs only the shards whose lease
 * it holds, about total/members of them, resuming their sessions from
 * Redis, and dgw_client_stop() hands them over to the other members.
 * `redis_url` NULL turns the cluster off.  Returns DGW_OK;
 * DGW_ERR_URL for a malformed Redis URL; DGW_ERR_INVALID_ARGUMENT for a bad
 * name or lease; DGW_ERR_UNSUPPORTED when dgw was built without hiredis.
 */
DGW_EXTERN int dgw_options_set_cluster(struct dgw_options *opt,
                                       const char *redis_url, const char *name,
                                       uint32_t lease_ms);

/**
 * The daily session-start budget (GET /gateway/bot's session_start_limit):
 * never more than `remaining` IDENTIFYs until `reset_after_ms` from the
 * client's creation, then `total` again; the client waits (and logs that
 * it waits) rather than exceed it, since Discord resets the token of a bot
 * that does.  `remaining` -1 (the default) means unknown: not enforced.
 * When the client asks GET /gateway/bot, its session_start_limit replaces
 * these (counted from the answer).
 */
DGW_EXTERN int dgw_options_set_session_start_limit(struct dgw_options *opt,
                                                   int64_t total,
                                                   int64_t remaining,
                                                   uint64_t reset_after_ms);

/**
 * Strict plugin loading: when on, dgw_client_start() refuses to start
 * (DGW_ERR_PLUGIN) if any dgw_client_load_plugin() call was refused.  Off
 * (the default), the client starts without the refused plugins.
 */
DGW_EXTERN int dgw_options_set_plugins_strict(struct dgw_options *opt, int on);

/* ================================================================ */
/* Client, shards and events                                         */
/* ================================================================ */

/** A set of shards sharing one configuration, TLS context and resolver. */
struct dgw_client;
/** One shard's gateway session, owned by its client. */
struct dgw_gateway;
/** A DISPATCH event as handed to a callback: a borrowed view. */
struct dgw_event;

/** Where a shard is in its life. */
enum dgw_state {
  DGW_STATE_IDLE = 0,        /**< not started */
  DGW_STATE_CONNECTING = 1,  /**< DNS, TCP, TLS and the upgrade */
  DGW_STATE_HELLO = 2,       /**< connected, waiting for HELLO */
  DGW_STATE_IDENTIFYING = 3, /**< IDENTIFY sent, waiting for READY */
  DGW_STATE_RESUMING = 4,    /**< RESUME sent, waiting for RESUMED */
  DGW_STATE_READY = 5,       /**< the session is live */
  DGW_STATE_BACKOFF = 6,     /**< waiting before the next connection */
  DGW_STATE_OFFLINE = 7,     /**< the network failed (DNS, refused,
                                  unreachable, timeout); retrying */
  DGW_STATE_CLOSING = 8,     /**< dgw_gateway_close() in progress */
  DGW_STATE_CLOSED = 9,      /**< ended by dgw_gateway_close() */
  DGW_STATE_FATAL = 10,      /**< stopped on a fatal close code */
};

/** Lower-case name of a state ("ready", "offline"...).  Static. */
DGW_EXTERN const char *dgw_state_name(enum dgw_state state);

/** Why a connection ended, handed to the on_disconnect callback. */
struct dgw_disconnect {
  int error;           /**< DGW_ERR_CLOSED when the gateway closed with a
                            code, else the failure (e.g. DGW_ERR_TIMEOUT
                            for a zombied connection) */
  uint16_t close_code; /**< the gateway's close code, 0 when none */
  const char *reason;  /**< readable detail; valid during the call */
  enum dgw_close_action action; /**< what happens next */
  int will_resume;              /**< 1 when the next connection will RESUME */
  uint32_t retry_in_ms;         /**< delay before reconnecting (0 for fatal) */
};

/* Callback types.  Each gets the shard, and the user_data given to
 * dgw_client_new().  Pointers handed in are valid only during the call.
 * Any of them may call dgw_gateway_close(), dgw_gateway_terminate(),
 * dgw_client_stop() or dgw_client_free(). */
typedef void (*dgw_state_fn)(struct dgw_gateway *gw, enum dgw_state from,
                             enum dgw_state to, void *user_data);
typedef void (*dgw_gateway_fn)(struct dgw_gateway *gw, void *user_data);
typedef void (*dgw_disconnect_fn)(struct dgw_gateway *gw,
                                  const struct dgw_disconnect *info,
                                  void *user_data);
typedef void (*dgw_fatal_fn)(struct dgw_gateway *gw, uint16_t close_code,
                             const char *meaning, void *user_data);
typedef void (*dgw_dispatch_fn)(struct dgw_gateway *gw,
                                const struct dgw_event *event, void *user_data);

/** The client as a whole lost the network (`online` 0: every shard failed
 * at the network level; one probes with backoff while the others wait) or
 * got it back (1: the others reconnect at once, resuming). */
typedef void (*dgw_network_fn)(struct dgw_client *client, int online,
                               void *user_data);

/**
 * The client cannot run at all, and no shard started or will start:
 * GET /gateway/bot was refused for good.  `error` is DGW_ERR_AUTH (401:
 * the token is wrong; `why` is "the token was refused (401
 * Unauthorized)"), DGW_ERR_HTTP (another 4xx, or a redirect; `why` has
 * the status and Discord's message) or DGW_ERR_NOMEM (the shards could
 * not be made).  Or, in a cluster (dgw_options_set_cluster), the running
 * members have other shard numbers or another lease:
 * DGW_ERR_INVALID_ARGUMENT, `why` naming both sides (docs/cluster.md,
 * "Agreement"); no shard runs from then on, any held is dropped.  `why`
 * is valid during the call and never holds the token.  Called at most
 * once, from the loop; the client stays allocated until
 * dgw_client_free(), which may be called inside.  Transient failures
 * (network, TLS, timeouts, 5xx, 429) are retried instead, with
 * a WARN log line each.
 */
typedef void (*dgw_client_fatal_fn)(struct dgw_client *client, int error,
                                    const char *why, void *user_data);

/** The application's callbacks, set one by one (all optional). */
struct dgw_callbacks;

/** Returns an empty callback table, or NULL without memory. */
DGW_EXTERN struct dgw_callbacks *dgw_callbacks_new(void);
/** Frees `cb`; NULL is a no-op.  dgw_client_new() keeps its own copy. */
DGW_EXTERN void dgw_callbacks_free(struct dgw_callbacks *cb);
/** Every change of a shard's state. */
DGW_EXTERN void dgw_callbacks_set_on_state(struct dgw_callbacks *cb,
                                           dgw_state_fn fn);
/** Starting a connection attempt. */
DGW_EXTERN void dgw_callbacks_set_on_connecting(struct dgw_callbacks *cb,
                                                dgw_gateway_fn fn);
/** READY arrived: a new session (session_id is set). */
DGW_EXTERN void dgw_callbacks_set_on_ready(struct dgw_callbacks *cb,
                                           dgw_gateway_fn fn);
/** RESUMED arrived: the session continues, replayed events delivered. */
DGW_EXTERN void dgw_callbacks_set_on_resumed(struct dgw_callbacks *cb,
                                             dgw_gateway_fn fn);
/** A connection ended (not called after dgw_gateway_close()). */
DGW_EXTERN void dgw_callbacks_set_on_disconnect(struct dgw_callbacks *cb,
                                                dgw_disconnect_fn fn);
/** A fatal close code stopped the shard for good. */
DGW_EXTERN void dgw_callbacks_set_on_fatal(struct dgw_callbacks *cb,
                                           dgw_fatal_fn fn);
/** The client went offline or came back online (see dgw_network_fn). */
DGW_EXTERN void dgw_callbacks_set_on_network(struct dgw_callbacks *cb,
                                             dgw_network_fn fn);
/** The client cannot run at all (see dgw_client_fatal_fn). */
DGW_EXTERN void dgw_callbacks_set_on_client_fatal(struct dgw_callbacks *cb,
                                                  dgw_client_fatal_fn fn);
/** Every DISPATCH, in sequence order, each exactly once across resumes.
 * Unknown event names are passed on like any other. */
DGW_EXTERN void dgw_callbacks_set_on_dispatch(struct dgw_callbacks *cb,
                                              dgw_dispatch_fn fn);

struct event_base; /* libevent's, from <event2/event.h> */

/**
 * Creates a client on the caller's `base` (borrowed; must outlive the
 * client) with copies of `opt` and `cb` (either may be freed afterwards;
 * `cb` may be NULL).  Nothing connects until dgw_client_start().  The
 * shards are created here, idle, except with auto shards (created when
 * GET /gateway/bot answers).  Returns NULL and sets *err
 * (DGW_ERR_INVALID_ARGUMENT when no token is set or the application's
 * SSL_CTX no longer verifies the peer, DGW_ERR_TLS when the CA file cannot
 * be loaded, DGW_ERR_NOMEM).
 */
DGW_EXTERN struct dgw_client *dgw_client_new(struct event_base *base,
                                             const struct dgw_options *opt,
                                             const struct dgw_callbacks *cb,
                                             void *user_data, int *err);

/**
 * Starts every shard; returns at once (DGW_OK).  Everything after is
 * callbacks.  Builds the event routing table from the plugins and
 * handlers registered so far.
 *
 * With auto shards (dgw_options_set_shards_auto) or without a configured
 * gateway URL, the client first asks GET /gateway/bot (in the background,
 * retried through failures) and starts the shards when it answers: the
 * answer's url becomes the gateway URL unless one was configured, its
 * shard count the shards when auto, and its max_concurrency and
 * session_start_limit the identify limits; one INFO log line says what it
 * answered.  A refusal (401, another 4xx) starts nothing and calls
 * on_client_fatal, as does a cluster whose members run other shard
 * numbers or another lease.
 *
 * Returns DGW_ERR_STATE when already started (also after
 * dgw_client_stop(): a client runs once), DGW_ERR_PLUGIN (and starts
 * nothing) when plugin loading is strict and a plugin was refused,
 * DGW_ERR_URL or DGW_ERR_TLS when the REST call cannot be made,
 * DGW_ERR_NOMEM.
 */
DGW_EXTERN int dgw_client_start(struct dgw_client *client);

/** dgw_gateway_close() on every shard; while GET /gateway/bot is still in
 * flight, cancels it instead (no shard starts, no callback follows).
 * Once the shards are CLOSED nothing of the client's keeps the loop
 * running; the client cannot be started again (see "Living in the
 * application's event loop" below). */
DGW_EXTERN void dgw_client_stop(struct dgw_client *client);

/**
 * Drops every connection at once and frees the client and its shards.
 * Safe from inside any dgw callback (the free happens when the callback
 * returns; no further callbacks run).  NULL is a no-op.  Everything is
 * released by the time it returns (or its callback does), even when the
 * loop was broken and never runs again, except a DNS lookup in flight
 * and a connection with a libevent callback queued: run the loop one more
 * pass before event_base_free() (see "Living in the application's event
 * loop" below).
 */
DGW_EXTERN void dgw_client_free(struct dgw_client *client);

/**
 * Loads a plugin (see <dgw/plugin.h>) before dgw_client_start().
 *
 * `name_or_path` containing a '/' is a path to the shared object, used
 * as is.  Otherwise it is a name ("log"), looked up as "NAME.so" in the
 * directories of $DGW_PLUGIN_PATH (colon separated), then in the
 * installed plugin directory (`pkg-config --variable=plugindir dgw`).
 * The object is opened with dlopen(RTLD_NOW | RTLD_LOCAL), its
 * dgw_plugin_describe() descriptor checked, and its init() called with
 * `config_json` (JSON text, copied; NULL means "{}").
 *
 * Returns DGW_OK, or DGW_ERR_PLUGIN when the plugin is refused, with the
 * reason in `why` (NUL-terminated, cut to `why_size` bytes; `why` may be
 * NULL when why_size is 0) and in the log: the file is missing, is not a
 * loadable shared object, lacks dgw_plugin_describe, was built for
 * another plugin ABI, has too small a descriptor, or its init failed;
 * also when `config_json` is not JSON.  A refused plugin is left out; the
 * client still starts unless loading is strict
 * (dgw_options_set_plugins_strict).  DGW_ERR_STATE after
 * dgw_client_start(), DGW_ERR_INVALID_ARGUMENT, DGW_ERR_NOMEM.
 *
 * Plugins receive the events they subscribed to in load order; their
 * fini() runs in reverse load order when the client is freed, and the
 * object is closed after it.
 */
DGW_EXTERN int dgw_client_load_plugin(struct dgw_client *client,
                                      const char *name_or_path,
                                      const char *config_json, char *why,
                                      size_t why_size);

/** What dgw_client_plugin_info() reports of a loaded plugin.  Fields
 * are only ever added at the end. */
struct dgw_plugin_info {
  const char *name;          /**< the descriptor's name */
  const char *version;       /**< its version ("" when none) */
  const char *description;   /**< its description ("" when none) */
  const char *path;          /**< the shared object, as resolved */
  uint32_t abi;              /**< the plugin ABI it was built for */
  int all_events;            /**< 1 when it subscribed to every event ("*") */
  const char *const *events; /**< the event names it subscribed to */
  size_t nevents;            /**< how many */
};

/** The number of plugins loaded (refused ones are not counted). */
DGW_EXTERN size_t dgw_client_plugin_count(const struct dgw_client *client);

/**
 * Fills `info` (of `info_size` bytes: pass sizeof(struct
 * dgw_plugin_info); an older, smaller struct gets the fields it has) for
 * the `index`th plugin loaded, in load order.  The strings stay valid until
 * the client is freed.  Returns DGW_OK, or DGW_ERR_INVALID_ARGUMENT when
 * `index` >= dgw_client_plugin_count().
 */
DGW_EXTERN int dgw_client_plugin_info(const struct dgw_client *client,
                                      size_t index,
                                      struct dgw_plugin_info *info,
                                      size_t info_size);

/**
 * Registers an in-process handler: fn(gw, event, user_data) for every
 * DISPATCH named `event_name` ("MESSAGE_CREATE"), or for every event with
 * "*".  The event view is the same as on_dispatch's.  Before
 * dgw_client_start() only (DGW_ERR_STATE after).
 *
 * Order for one event: the application's on_dispatch callback first,
 * then plugins and handlers in the order they were loaded or registered.
 * Each registration is called once per matching event (register once
 * with "*" rather than also by name).  An event that no handler, plugin
 * or on_dispatch wants is dropped unparsed.  Returns DGW_OK,
 * DGW_ERR_INVALID_ARGUMENT (no fn; empty name or longer than 127 bytes),
 * DGW_ERR_NOMEM.
 */
DGW_EXTERN int dgw_client_on_event(struct dgw_client *client,
                                   const char *event_name, dgw_dispatch_fn fn,
                                   void *user_data);

/**
 * Stops every shard for a restart: closes with code 4000, which Discord
 * keeps resumable for a few minutes (unlike dgw_client_stop()'s 1000), and
 * keeps each session in memory for dgw_client_save_sessions().  Queued
 * commands are failed back.  Cancels GET /gateway/bot if it is in flight.
 * Returns DGW_OK.
 */
DGW_EXTERN int dgw_client_stop_for_restart(struct dgw_client *client);

/**
 * Writes each shard's session_id, sequence and resume URL to `path` as
 * JSON (mode 0600, through a temporary file and rename, so a crash never
 * leaves a torn file).  Shards without a session are left out.  Sessions
 * restored but not applied yet (GET /gateway/bot has not answered) are
 * written back as they were read.  Returns
 * DGW_OK, or DGW_ERR_IO with a sentence in `why` (may be NULL).
 */
DGW_EXTERN int dgw_client_save_sessions(struct dgw_client *client,
                                        const char *path, char *why,
                                        size_t why_size);

/**
 * Before dgw_client_start(): loads a file written by
 * dgw_client_save_sessions() so that the shards it names RESUME instead of
 * identifying.  Entries for shards this client does not run, malformed
 * ones, or a file saved for another shard count are skipped (those shards
 * identify; a session the gateway no longer knows also falls back to
 * IDENTIFY).  A shard listed more than once takes its last well-formed
 * entry.  `*restored` (may be NULL) gets the number of shards restored,
 * each counted once.  Returns DGW_OK,
 * DGW_ERR_IO (unreadable), DGW_ERR_JSON (not a session file) or
 * DGW_ERR_STATE (already started), with `why`.
 *
 * When the client will ask GET /gateway/bot (auto shards, or no gateway
 * URL), the shard count or the gateway URL is not known yet: the file is
 * read and checked now, and its sessions are applied when the answer
 * arrives, with the same rules (a file for another shard count is then
 * skipped with a warning).  `*restored` is then the number of shards with
 * a well-formed-looking entry (a shard id and a session id) kept, each
 * counted once.
 */
DGW_EXTERN int dgw_client_restore_sessions(struct dgw_client *client,
                                           const char *path, uint32_t *restored,
                                           char *why, size_t why_size);

/** 1 while the client is offline as a whole (every shard failed at the
 * network level), else 0. */
DGW_EXTERN int dgw_client_is_offline(const struct dgw_client *client);

/** The number of shards this client runs.  With auto shards, 0 until
 * GET /gateway/bot answered (see dgw_options_set_shards_auto). */
DGW_EXTERN uint32_t dgw_client_shard_count(const struct dgw_client *client);

/** The shard with id `shard_id`, or NULL when this client does not run
 * it.  Owned by the client. */
DGW_EXTERN struct dgw_gateway *dgw_client_gateway(struct dgw_client *client,
                                                  uint32_t shard_id);

/** The client that owns `gw`. */
DGW_EXTERN struct dgw_client *dgw_gateway_client(struct dgw_gateway *gw);

/** The shard's current state. */
DGW_EXTERN enum dgw_state dgw_gateway_state(const struct dgw_gateway *gw);

/** The shard id. */
DGW_EXTERN uint32_t dgw_gateway_shard_id(const struct dgw_gateway *gw);

/** The last sequence number received (0 before the first dispatch). */
DGW_EXTERN int64_t dgw_gateway_sequence(const struct dgw_gateway *gw);

/** The session id from READY, or NULL when there is no session.  Valid
 * until the session changes; copy it to keep it. */
DGW_EXTERN const char *dgw_gateway_session_id(const struct dgw_gateway *gw);

/** The resume_gateway_url from READY, or NULL.  Same lifetime. */
DGW_EXTERN const char *dgw_gateway_resume_url(const struct dgw_gateway *gw);

/** Round trip of the last heartbeat and its ACK in milliseconds, measured
 * on a monotonic clock; DGW_LATENCY_UNKNOWN before the first ACK. */
DGW_EXTERN double dgw_gateway_latency(const struct dgw_gateway *gw);

/**
 * Sends one payload (JSON text of `len` bytes, copied) on the shard, for
 * what dgw does not wrap yet: at once when the send window allows, else
 * queued like every command (see "Gateway commands" below), so it never
 * trips Discord's 4008.  Returns DGW_OK (sent or queued),
 * DGW_ERR_PAYLOAD_TOO_LARGE over 4096 bytes, DGW_ERR_JSON when it is not an
 * object with an integer "op", DGW_ERR_QUEUE_FULL, or DGW_ERR_STATE when
 * the shard is closed or fatal.  Never crashes on a closed socket.
 */
DGW_EXTERN int dgw_gateway_send_json(struct dgw_gateway *gw, const char *json,
                                     size_t len);

/**
 * Ends the session for good: closes with code 1000 (Discord then drops the
 * session and the bot goes offline on this shard) and does not reconnect.
 * The state becomes CLOSING, then CLOSED.  Returns DGW_OK or DGW_ERR_STATE
 * when already closed.
 */
DGW_EXTERN int dgw_gateway_close(struct dgw_gateway *gw);

/**
 * Drops the connection but keeps the session: closes with code 4000 (not
 * 1000/1001, so Discord keeps the session) and reconnects at once to
 * RESUME.  Returns DGW_OK or DGW_ERR_STATE when closed or fatal.
 */
DGW_EXTERN int dgw_gateway_terminate(struct dgw_gateway *gw);

/** The event name ("MESSAGE_CREATE").  Valid during the callback. */
DGW_EXTERN const char *dgw_event_name(const struct dgw_event *event);
/** The event's sequence number. */
DGW_EXTERN int64_t dgw_event_seq(const struct dgw_event *event);
/** The id of the shard that received it. */
DGW_EXTERN uint32_t dgw_event_shard(const struct dgw_event *event);
/**
 * The raw JSON text of the event's `d`, not NUL-terminated, `*len` bytes
 * ("null" when d was null).  Borrowed: valid only during the callback.
 * Forwarding this text costs nothing; no JSON tree is built.
 */
DGW_EXTERN const char *dgw_event_data(const struct dgw_event *event,
                                      size_t *len);
/**
 * `d` parsed with json-c, on first use, and cached for the other handlers
 * of the same event.  Borrowed (do not json_object_put it; take your own
 * reference with json_object_get to keep it).  NULL when d is null or
 * cannot be parsed.
 */
DGW_EXTERN struct json_object *dgw_event_json(const struct dgw_event *event);

/* ================================================================ */
/* Gateway commands                                                  */
/* ================================================================ */

/* Commands go through each connection's send rate limit (120 payloads per
 * 60 s, a few slots always kept for heartbeats): over the budget they wait
 * in a bounded per-shard queue and go out in order as the window allows.
 * A queued command survives a resume and is sent on the new connection; it
 * is failed back (DGW_ERR_SESSION_LOST) only when the session ends for good
 * (dgw_gateway_close(), a fatal close code).  Arguments are checked before
 * anything is queued: a bad one is refused with DGW_ERR_INVALID_ARGUMENT
 * and a sentence in `why` (may be NULL), an encoded payload over 4096
 * bytes with DGW_ERR_PAYLOAD_TOO_LARGE; a full queue gives
 * DGW_ERR_QUEUE_FULL; a closed or fatal shard DGW_ERR_STATE.  Argument
 * structs are read during the call only. */

/* Activity types a bot may set. */
enum dgw_activity_type {
  DGW_ACTIVITY_PLAYING = 0,
  DGW_ACTIVITY_STREAMING = 1, /* `url`: a twitch.tv or youtube.com URL */
  DGW_ACTIVITY_LISTENING = 2,
  DGW_ACTIVITY_WATCHING = 3,
  DGW_ACTIVITY_CUSTOM = 4, /* the text is `state` */
  DGW_ACTIVITY_COMPETING = 5,
};

/* One activity of a presence.  Bots may set only these four fields. */
struct dgw_activity {
  /* Required, non-empty, except for DGW_ACTIVITY_CUSTOM where NULL sends
   * DGW_CUSTOM_STATUS_NAME. */
  const char *name;
  int type;          /* an enum dgw_activity_type value */
  const char *state; /* optional (NULL: not sent) */
  const char *url;   /* optional (NULL: not sent); Discord shows it only
                        for DGW_ACTIVITY_STREAMING */
};

/*
 * A presence, for Update Presence (op 3) and as IDENTIFY's initial
 * presence.  All zeros is valid: online, no activity, not idle, not AFK.
 */
struct dgw_presence {
  /* "online", "dnd", "idle", "invisible" or "offline"; NULL: "online". */
  const char *status;
  /* Unix time in ms since when the client is idle, at most INT64_MAX;
   * 0: not idle (sent as null). */
  uint64_t since_ms;
  int afk;                               /* nonzero: true */
  const struct dgw_activity *activities; /* `activity_count` of them */
  size_t activity_count;
};

/*
 * A Request Guild Members (op 8) command: by `query` (a username prefix,
 * "" for every member) and `limit`, or by `user_ids`; exactly one of the
 * two.
 */
struct dgw_member_request {
  const char *guild_id; /* required */
  /* NULL when asking by user ids.  With "" and limit 0 it asks for every
   * member (needs the GUILD_MEMBERS intent; Discord allows one such
   * request per guild per 30 s). */
  const char *query;
  /* With a query: 0 .. DGW_MEMBER_REQUEST_MAX_LIMIT, 0 (all) only with an
   * empty query.  Must be 0 with user ids. */
  uint32_t limit;
  /* 1 .. DGW_MEMBER_REQUEST_MAX_USER_IDS snowflakes, or NULL and 0. */
  const char *const *user_ids;
  size_t user_id_count;
  int presences; /* nonzero: ask for presences too */
  /* 1 .. DGW_NONCE_MAX bytes echoed in the chunks; NULL: dgw generates
   * one. */
  const char *nonce;
};

/** The longest nonce of a member request, in bytes. */
#define DGW_NONCE_MAX 32
/** The size of dgw_gateway_request_members()'s `nonce_out` buffer: the
 * longest nonce and its NUL. */
#define DGW_NONCE_SIZE (DGW_NONCE_MAX + 1)

/* Fields Request Channel Info (op 43) can ask for; OR them together. */
enum dgw_channel_info_field {
  DGW_CHANNEL_INFO_STATUS = 1u << 0,           /* "status" */
  DGW_CHANNEL_INFO_VOICE_START_TIME = 1u << 1, /* "voice_start_time" */
};
/* Every field Request Channel Info knows. */
#define DGW_CHANNEL_INFO_ALL                                                   \
  (DGW_CHANNEL_INFO_STATUS | DGW_CHANNEL_INFO_VOICE_START_TIME)

/** Answer to dgw_gateway_request_members(): `error` is DGW_OK with
 * `result` = {"guild_id", "nonce", "chunk_count", "members": [...],
 * "not_found": [...], "presences": [...]} gathered from every
 * GUILD_MEMBERS_CHUNK; DGW_ERR_RATE_LIMITED with `result` = the
 * RATE_LIMITED event's d ({"opcode": 8, "retry_after": seconds, "meta"});
 * or DGW_ERR_SESSION_LOST with NULL.  `result` is borrowed for the call
 * (json_object_get() to keep it).  Called exactly once. */
typedef void (*dgw_members_fn)(struct dgw_gateway *gw, int error,
                               struct json_object *result, void *user_data);

/** Answer to dgw_gateway_update_voice_state(): once both the bot's
 * VOICE_STATE_UPDATE and the guild's VOICE_SERVER_UPDATE arrived (what a
 * voice connection needs: session_id, token, endpoint), with both events'
 * d, borrowed for the call; or an error (DGW_ERR_SESSION_LOST, or
 * DGW_ERR_STATE when a newer voice request for the guild replaced this
 * one) with NULLs.  Called at most once. */
typedef void (*dgw_voice_fn)(struct dgw_gateway *gw, int error,
                             struct json_object *voice_state,
                             struct json_object *voice_server, void *user_data);

/** Update Presence (op 3). */
DGW_EXTERN int dgw_gateway_update_presence(struct dgw_gateway *gw,
                                           const struct dgw_presence *presence,
                                           char *why, size_t why_size);

/**
 * Update Voice State (op 4): join or move to `channel_id` of `guild_id`
 * (snowflakes as decimal strings), or leave with `channel_id` NULL.  With
 * `fn` (joining only), `fn` gets the VOICE_STATE_UPDATE +
 * VOICE_SERVER_UPDATE pair once both arrived, in either order.
 */
DGW_EXTERN int dgw_gateway_update_voice_state(struct dgw_gateway *gw,
                                              const char *guild_id,
                                              const char *channel_id,
                                              int self_mute, int self_deaf,
                                              dgw_voice_fn fn, void *user_data,
                                              char *why, size_t why_size);

/**
 * Request Guild Members (op 8).  dgw makes the nonce when the request has
 * none and copies the one used into `nonce_out` (may be NULL).  `fn` (may
 * be NULL) is called once with all the chunks gathered, or the error; the
 * GUILD_MEMBERS_CHUNK events still reach handlers as usual.
 */
DGW_EXTERN int dgw_gateway_request_members(
    struct dgw_gateway *gw, const struct dgw_member_request *request,
    dgw_members_fn fn, void *user_data, char nonce_out[DGW_NONCE_SIZE],
    char *why, size_t why_size);

/** Request Soundboard Sounds (op 31) for `count` guilds of this shard. */
DGW_EXTERN int
dgw_gateway_request_soundboard_sounds(struct dgw_gateway *gw,
                                      const char *const *guild_ids,
                                      size_t count, char *why, size_t why_size);

/** Request Channel Info (op 43): `fields` is an OR of
 * enum dgw_channel_info_field. */
DGW_EXTERN int dgw_gateway_request_channel_info(struct dgw_gateway *gw,
                                                const char *guild_id,
                                                unsigned fields, char *why,
                                                size_t why_size);

/**
 * The shard of this client that owns guild `guild_id` ((id >> 22) %
 * total shards), or NULL when the id is not a snowflake or that shard runs
 * elsewhere.  Send guild commands there.
 */
DGW_EXTERN struct dgw_gateway *
dgw_client_gateway_for_guild(struct dgw_client *client, const char *guild_id);

/** Commands waiting in the shard's queue for the rate limit. */
DGW_EXTERN size_t dgw_gateway_queued(const struct dgw_gateway *gw);

/**
 * The fixed slots of the statistics' arrays.  They never change meaning:
 * new event names and close codes only fill spare slots, so the arrays
 * keep their size.  Slot 0 is "other" (a name or code not in the table;
 * for closes also a connection lost without a close frame).  The table
 * bounds the set of labels a hostile stream can produce.
 */
#define DGW_STATS_EVENT_NAMES 96
#define DGW_STATS_CLOSE_CODES 24
#define DGW_STATS_LATENCY_BUCKETS 10
#define DGW_STATS_HANDLER_BUCKETS 10

/** The event name of slot `slot` ("other" for 0), or NULL for a spare or
 * out-of-range slot.  Static storage. */
DGW_EXTERN const char *dgw_stats_event_name(unsigned slot);
/** The close code of slot `slot`: 0 for slot 0 ("other"), -1 for a spare
 * or out-of-range slot. */
DGW_EXTERN int dgw_stats_close_code(unsigned slot);
/** The upper bound of latency bucket `bucket` in milliseconds (the last is
 * INFINITY), or -1 out of range. */
DGW_EXTERN double dgw_stats_latency_bound_ms(unsigned bucket);
/** The upper bound of handler time bucket `bucket` in microseconds (the
 * last is INFINITY), or -1 out of range. */
DGW_EXTERN double dgw_stats_handler_bound_us(unsigned bucket);

/**
 * A snapshot of a client's counters, for tests, the stats plugin and
 * metrics.  The struct carries its own size so it can grow: set `size` to
 * sizeof(struct dgw_client_stats) as your header declares it, and the
 * library fills only the members that fit in that many bytes (a program
 * built against an older header gets the fields it knows; one built
 * against a newer header gets zeros in fields this library lacks).  New
 * members are only ever added at the end.  Counters start at 0 with the
 * client and only grow.
 */
struct dgw_client_stats {
  size_t size;              /**< in: sizeof(struct dgw_client_stats) */
  uint64_t dispatches;      /**< events delivered by the shards (READY and
                                 RESUMED included, replays not) */
  uint64_t dropped;         /**< of those, wanted by nobody (no on_dispatch,
                                 handler, plugin or waiting request):
                                 dropped without being parsed */
  uint64_t parsed;          /**< events whose `d` was parsed (the first
                                 dgw_event_json() of each) */
  uint32_t shards;          /**< shards the client runs now */
  uint32_t shards_ready;    /**< of those, in DGW_STATE_READY */
  uint64_t reconnects;      /**< connection attempts after each shard's
                                 first */
  uint64_t resumes;         /**< sessions resumed (RESUMED received) */
  uint64_t identifies;      /**< IDENTIFY payloads sent */
  uint64_t zombies;         /**< connections left because no heartbeat ACK
                                 came before the next beat */
  uint64_t commands_queued; /**< commands waiting in the shards' send
                                 queues now */
  /* --- Appended for operations (issue 14); summed over the shards unless
   * said otherwise.  The arrays are indexed by the slots described at
   * DGW_STATS_EVENT_NAMES and friends. */
  uint64_t frames_in;      /**< WebSocket messages received */
  uint64_t bytes_wire;     /**< their payload bytes as received */
  uint64_t bytes_inflated; /**< the payloads' bytes after zlib (equal to
                                bytes_wire without compression) */
  uint64_t dispatches_by_name[DGW_STATS_EVENT_NAMES]; /**< by event name */
  uint64_t closes;                                    /**< connections lost */
  uint64_t closes_by_code[DGW_STATS_CLOSE_CODES];     /**< by close code */
  uint64_t rate_limit_waits;   /**< commands queued behind the send limit */
  uint64_t identify_waits;     /**< IDENTIFYs that waited in the identify
                                    queue */
  int64_t session_starts_left; /**< session starts left as last learnt
                                    from GET /gateway/bot; -1 unknown */
  int64_t ms_since_event;      /**< since the last dispatch of any shard;
                                    -1 before the first */
  double latency_ms_max;       /**< the largest shard heartbeat latency;
                                    DGW_LATENCY_UNKNOWN without any */
  uint64_t handled_by_name[DGW_STATS_EVENT_NAMES]; /**< events given to a
                                    handler (on_dispatch, plugin, request) */
  uint64_t handler_hist[DGW_STATS_EVENT_NAMES]
                       [DGW_STATS_HANDLER_BUCKETS]; /**< time in those
                                    handlers, per event, by bucket
                                    (dgw_stats_handler_bound_us) */
  double handler_us_sum[DGW_STATS_EVENT_NAMES]; /**< its sum, microseconds */
  /* --- Appended for quiet shards (dgw_options_set_quiet_sleep). */
  uint64_t window_sleeps;      /**< zlib windows packed while quiet */
  uint64_t window_wakes;       /**< packed windows restored for a message */
  uint32_t windows_asleep;     /**< shards whose window is packed now */
  uint64_t window_saved_bytes; /**< what those packed windows hold now */
};

/**
 * Fills `out` with the client's counters, summed over its shards.  The
 * caller sets out->size first (see struct dgw_client_stats); only
 * min(out->size, sizeof(struct dgw_client_stats)) bytes are written and
 * out->size is left as given.  Cheap (a loop over the shards, no
 * allocation); call it from any thread that owns the client's event loop,
 * inside callbacks too.  Returns DGW_OK, or DGW_ERR_INVALID_ARGUMENT when
 * `client` or `out` is NULL or out->size is below sizeof(size_t).
 */
DGW_EXTERN int dgw_client_stats(const struct dgw_client *client,
                                struct dgw_client_stats *out);

/**
 * A snapshot of one shard's counters; grows like struct dgw_client_stats
 * (the caller sets `size`).  The counters cover the shard's whole life,
 * across reconnects and sessions.
 */
struct dgw_shard_stats {
  size_t size;              /**< in: sizeof(struct dgw_shard_stats) */
  uint32_t shard_id;        /**< as dgw_gateway_shard_id() */
  enum dgw_state state;     /**< as dgw_gateway_state() */
  uint64_t dispatches;      /**< events delivered (replays not) */
  uint64_t reconnects;      /**< connection attempts after the first */
  uint64_t resumes;         /**< RESUMED received */
  uint64_t identifies;      /**< IDENTIFY sent */
  uint64_t zombies;         /**< connections left for a missing ACK */
  double latency_ms;        /**< as dgw_gateway_latency():
                                 DGW_LATENCY_UNKNOWN before the first ACK */
  uint64_t commands_queued; /**< as dgw_gateway_queued() */
  /* --- Appended for operations (issue 14). */
  uint64_t frames_in;      /**< WebSocket messages received */
  uint64_t bytes_wire;     /**< their payload bytes as received */
  uint64_t bytes_inflated; /**< after zlib (= bytes_wire without it) */
  uint64_t dispatches_by_name[DGW_STATS_EVENT_NAMES]; /**< by event name */
  uint64_t closes;                                    /**< connections lost */
  uint64_t closes_by_code[DGW_STATS_CLOSE_CODES];     /**< by close code */
  uint64_t rate_limit_waits; /**< commands queued behind the send limit */
  uint64_t identify_waits;   /**< IDENTIFYs that waited in the queue */
  int64_t ms_since_event;    /**< since the last dispatch; -1 before one */
  uint64_t latency_hist[DGW_STATS_LATENCY_BUCKETS]; /**< heartbeat ACK
                                latencies by bucket (non-cumulative;
                                dgw_stats_latency_bound_ms) */
  double latency_sum_ms;                            /**< their sum */
  uint64_t latency_count;                           /**< their number */
  /* --- Appended for quiet shards (dgw_options_set_quiet_sleep). */
  uint64_t window_sleeps;      /**< zlib window packed while quiet */
  uint64_t window_wakes;       /**< and restored for a message */
  uint32_t window_asleep;      /**< 1 while the window is packed */
  uint64_t window_saved_bytes; /**< what the packed window holds now */
};

/**
 * Fills `out` with the counters of shard `gw`, as dgw_client_stats() does
 * (the caller sets out->size; only that many bytes are written).  Returns
 * DGW_OK, or DGW_ERR_INVALID_ARGUMENT when `gw` or `out` is NULL or
 * out->size is below sizeof(size_t).
 */
DGW_EXTERN int dgw_gateway_stats(const struct dgw_gateway *gw,
                                 struct dgw_shard_stats *out);

/**
 * The send limit for tests and private gateways: `budget` payloads per
 * `window_ms` per connection (default 120 per 60000), and the command
 * queue's capacity (default 256).
 */
DGW_EXTERN int dgw_options_set_send_limit(struct dgw_options *opt,
                                          uint32_t budget, uint32_t window_ms,
                                          size_t queue_capacity);

/* ================================================================ */
/* Living in the application's event loop                            */
/* ================================================================ */

/*
 * The loop contract (see docs/integration.md):
 *
 * - dgw puts on the caller's event_base only its own events: per shard a
 *   few timers and, while connected, one socket (a bufferevent); per
 *   client an identify timer, and a GET /gateway/bot request while it
 *   runs.  Its evdns_base (or the application's, borrowed) has no event
 *   added while no lookup runs.  dgw installs no signal handler, starts no
 *   thread and keeps no global mutable state.
 * - After dgw_client_stop() has closed every shard (each CLOSED), or once
 *   every shard is FATAL (a refused token, 4004...) or CLOSED, dgw holds
 *   no event that keeps event_base_dispatch() running: the loop returns
 *   by itself when the application has nothing else on it.
 * - A client runs once: dgw_client_start() after dgw_client_stop() (or
 *   dgw_client_stop_for_restart()) returns DGW_ERR_STATE.  To run again,
 *   free it and make a new client (dgw_client_save_sessions() /
 *   dgw_client_restore_sessions() carry the sessions over).
 * - dgw_client_free() removes every event of the client's and frees what
 *   it holds at once, whatever state the loop is in (running, returned,
 *   or broken with event_base_loopbreak() inside a dgw callback), GET
 *   /gateway/bot's HTTP connection and a half-made gateway connection
 *   (TCP, TLS) included.  Two exceptions: a DNS lookup in flight at the
 *   free (libevent's evdns reports its cancellation from the loop: one
 *   zero-delay callback that frees about 1.2 KiB on the next pass), and a
 *   gateway connection whose deferred bufferevent callback is queued for
 *   the next pass (libevent 2.1 frees a bufferevent a queued callback
 *   still references when that callback runs; the loop was broken in the
 *   pass in which it read or wrote).  Before event_base_free() (or
 *   evdns_base_free() of a borrowed evdns_base), run the loop once more,
 *   e.g. event_base_loop(base, EVLOOP_NONBLOCK), or simply let
 *   event_base_dispatch() return; freeing the base without that pass
 *   leaks those bytes (a connection's buffers, tens of KiB), nothing
 *   worse.
 */

struct evdns_base; /* libevent's, from <event2/dns.h> */
struct ssl_ctx_st; /* OpenSSL's SSL_CTX, from <openssl/ssl.h> */

/**
 * Use the application's TLS context for wss:// and https:// instead of
 * one dgw makes from the system store or dgw_options_set_ca_file() (which
 * is then ignored).  dgw takes its own reference (SSL_CTX_up_ref) in the
 * options and in every client made from them, and drops only those: the
 * application may SSL_CTX_free() its own reference at any time.  NULL
 * goes back to dgw's own context.
 *
 * dgw still verifies every connection: each SSL gets SSL_VERIFY_PEER (the
 * context's verify callback is kept) and the host name (SSL_set1_host,
 * SNI), and a gateway handshake whose verify result is not X509_V_OK
 * fails with DGW_ERR_TLS_VERIFY even if a verify callback accepted it.  A
 * context whose verify mode lacks SSL_VERIFY_PEER (SSL_VERIFY_NONE) is refused
 * with DGW_ERR_INVALID_ARGUMENT, here (with an ERROR log line when a log
 * is set) and again by dgw_client_new() if the mode was changed since.
 */
DGW_EXTERN int dgw_options_set_ssl_ctx(struct dgw_options *opt,
                                       struct ssl_ctx_st *ctx);

/**
 * Resolve host names with the application's `dns` (which must belong to
 * the event_base given to dgw_client_new()) instead of one dgw makes from
 * /etc/resolv.conf.  Borrowed: dgw never frees it, and it must outlive
 * every client made with it, plus the loop pass after dgw_client_free()
 * described above (a cancelled lookup reports back to dgw through it).
 * Created with EVDNS_BASE_DISABLE_WHEN_INACTIVE it keeps no event on the
 * loop between lookups; otherwise its nameserver events keep
 * event_base_dispatch() running, which is the application's choice.  NULL
 * goes back to dgw's own resolver.  Returns DGW_OK, or
 * DGW_ERR_INVALID_ARGUMENT for a NULL `opt`.
 */
DGW_EXTERN int dgw_options_set_dns_base(struct dgw_options *opt,
                                        struct evdns_base *dns);

/**
 * IDENTIFY's `properties` (default: os "linux", browser "dgw", device
 * "dgw"): each 1..64 bytes without control characters, or all three NULL
 * for the default.  Returns DGW_OK, DGW_ERR_INVALID_ARGUMENT, or
 * DGW_ERR_NOMEM.
 */
DGW_EXTERN int dgw_options_set_identify_properties(struct dgw_options *opt,
                                                   const char *os,
                                                   const char *browser,
                                                   const char *device);

/** Attaches the application's pointer to one shard (NULL at first); the
 * client's user_data is unchanged.  A NULL `gw` is a no-op. */
DGW_EXTERN void dgw_gateway_set_user_data(struct dgw_gateway *gw,
                                          void *user_data);

/** The pointer given to dgw_gateway_set_user_data(), or NULL. */
DGW_EXTERN void *dgw_gateway_user_data(const struct dgw_gateway *gw);

/**
 * 1 when retrying the same thing unchanged cannot succeed: the program
 * must change an argument, the configuration, the token or the object's
 * state (like nghttp2_is_fatal); 0 for DGW_OK and for conditions that pass
 * (dgw itself retries them on its connections).  Unknown negative codes
 * give 1.
 *
 *   fatal (1): INVALID_ARGUMENT, NOMEM, STATE, URL, JSON,
 *              PAYLOAD_TOO_LARGE, PLUGIN, AUTH, HTTP, and the field
 *              getters' NOT_FOUND, TYPE, RANGE, BUFFER_TOO_SMALL (the
 *              same read of the same text gives the same answer)
 *   retry (0): AGAIN, QUEUE_FULL (when the queue drains), SESSION_LOST
 *              (send again on the next session), RATE_LIMITED (after
 *              retry_after), DNS, CONNECT, TLS, TLS_VERIFY (dgw retries
 *              with backoff; a bad certificate persists, so watch the
 *              log), TIMEOUT, HANDSHAKE, PROTOCOL, CLOSED,
 *              CONNECTION_LOST, MESSAGE_TOO_LARGE, IO, INFLATE,
 *              INFLATE_LIMIT
 *
 * A shard ended by a close code is reported by on_fatal with the code;
 * dgw_close_code_action() is the table for close codes.
 */
DGW_EXTERN int dgw_error_is_fatal(int error);

/* ================================================================ */
/* Knowing when a command left                                       */
/* ================================================================ */

/** What became of a command sent with a completion callback: written, or
 * dropped (with the reason) before it could be. */
enum dgw_send_outcome {
  /** Written to the connection: handed to its socket (TLS) buffer, so it
   * leaves with the next write.  Not a delivery receipt: a connection
   * that dies at once may still lose it, and Discord's answer (if the
   * command has one) comes as events. */
  DGW_SEND_WRITTEN = 0,
  /** Dropped: a fatal close code ended the session before it went out. */
  DGW_SEND_SESSION_LOST = 1,
  /** Dropped: dgw_gateway_close() or dgw_client_stop() ended the shard
   * first. */
  DGW_SEND_CLOSED = 2,
  /** Dropped: dgw_client_stop_for_restart() ended the shard first. */
  DGW_SEND_RESTART = 3,
  /** Dropped: dgw_client_free() (the callback runs inside it, while the
   * client and its shards are still whole). */
  DGW_SEND_FREED = 4,
};

/** A lower-case name for `outcome` ("written", "session lost", "shard
 * closed", "stopped for a restart", "client freed"; "unknown").  Static. */
DGW_EXTERN const char *dgw_send_outcome_name(enum dgw_send_outcome outcome);

/**
 * A command's completion: called exactly once for every command accepted
 * with one (its send call returned DGW_OK), never for a refused one.
 * Commands wait in the shard's queue while the rate limit or a reconnect
 * holds them (a resume or a new session keeps them); they never expire,
 * so the only drops are the outcomes above.  Called from the loop, or
 * before the send call returns when the command is written at once.  It
 * may call any dgw function, dgw_client_free() included (the free then
 * happens when dgw's frame returns; no other callback follows).
 */
typedef void (*dgw_sent_fn)(struct dgw_gateway *gw,
                            enum dgw_send_outcome outcome, void *user_data);

/**
 * dgw_gateway_send_json() with a completion: `on_sent` (may be NULL: then
 * exactly dgw_gateway_send_json()) gets `user_data` once the payload was
 * written or dropped.  Same checks and return values as
 * dgw_gateway_send_json(), and DGW_ERR_NOMEM; `on_sent` is called only
 * when DGW_OK is returned.
 */
DGW_EXTERN int dgw_gateway_send_json_cb(struct dgw_gateway *gw,
                                        const char *json, size_t len,
                                        dgw_sent_fn on_sent, void *user_data);

/* ---------------------------------------------- growable command arguments */

/*
 * The commands again, each with all its arguments in one struct that can
 * grow without breaking the ABI, as the stats structs do: set `size` to
 * sizeof the struct as your header declares it (zero the rest first, e.g.
 * `struct dgw_presence_args a = {sizeof a}`).  dgw reads only `size`
 * bytes: members a later dgw adds (only ever at the end) read as 0, their
 * default, for a program built against this header.  A `size` below the
 * members every version has gives DGW_ERR_INVALID_ARGUMENT.  Otherwise the
 * same checks, results and queueing as the calls above, plus the
 * completion `on_sent` (may be NULL; see dgw_sent_fn) with
 * `sent_user_data`.  The structs are read during the call only.
 */

/** dgw_gateway_update_presence() (op 3). */
struct dgw_presence_args {
  size_t size;                  /**< sizeof(struct dgw_presence_args) */
  struct dgw_presence presence; /**< as for dgw_gateway_update_presence() */
  dgw_sent_fn on_sent;          /**< completion, or NULL */
  void *sent_user_data;
};

/** dgw_gateway_update_voice_state() (op 4). */
struct dgw_voice_state_args {
  size_t size;            /**< sizeof(struct dgw_voice_state_args) */
  const char *guild_id;   /**< required */
  const char *channel_id; /**< NULL: leave */
  int self_mute, self_deaf;
  dgw_voice_fn on_voice; /**< the state + server pair (joining), or NULL */
  void *voice_user_data;
  dgw_sent_fn on_sent; /**< completion, or NULL */
  void *sent_user_data;
};

/** dgw_gateway_request_members() (op 8). */
struct dgw_member_request_args {
  size_t size; /**< sizeof(struct dgw_member_request_args) */
  struct dgw_member_request request;
  dgw_members_fn on_members; /**< every chunk gathered, or NULL */
  void *members_user_data;
  /** NULL, or DGW_NONCE_SIZE bytes for the nonce used ("" on failure) */
  char *nonce_out;
  dgw_sent_fn on_sent; /**< completion, or NULL */
  void *sent_user_data;
};

/** dgw_gateway_request_soundboard_sounds() (op 31). */
struct dgw_soundboard_args {
  size_t size; /**< sizeof(struct dgw_soundboard_args) */
  const char *const *guild_ids;
  size_t count;
  dgw_sent_fn on_sent; /**< completion, or NULL */
  void *sent_user_data;
};

/** dgw_gateway_request_channel_info() (op 43). */
struct dgw_channel_info_args {
  size_t size; /**< sizeof(struct dgw_channel_info_args) */
  const char *guild_id;
  unsigned fields;     /**< an OR of enum dgw_channel_info_field */
  dgw_sent_fn on_sent; /**< completion, or NULL */
  void *sent_user_data;
};

/** Update Presence from a struct dgw_presence_args. */
DGW_EXTERN int
dgw_gateway_update_presence_args(struct dgw_gateway *gw,
                                 const struct dgw_presence_args *args,
                                 char *why, size_t why_size);
/** Update Voice State from a struct dgw_voice_state_args. */
DGW_EXTERN int
dgw_gateway_update_voice_state_args(struct dgw_gateway *gw,
                                    const struct dgw_voice_state_args *args,
                                    char *why, size_t why_size);
/** Request Guild Members from a struct dgw_member_request_args. */
DGW_EXTERN int
dgw_gateway_request_members_args(struct dgw_gateway *gw,
                                 const struct dgw_member_request_args *args,
                                 char *why, size_t why_size);
/** Request Soundboard Sounds from a struct dgw_soundboard_args. */
DGW_EXTERN int dgw_gateway_request_soundboard_sounds_args(
    struct dgw_gateway *gw, const struct dgw_soundboard_args *args, char *why,
    size_t why_size);
/** Request Channel Info from a struct dgw_channel_info_args. */
DGW_EXTERN int
dgw_gateway_request_channel_info_args(struct dgw_gateway *gw,
                                      const struct dgw_channel_info_args *args,
                                      char *why, size_t why_size);

#ifdef __cplusplus
}
#endif

#endif /* DGW_DGW_H */
