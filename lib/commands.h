/*
 * Gateway commands without I/O: snowflake checks, shard routing, and an
 * encoder for every command a bot sends (gateway-protocol.md section 11).
 * Each encoder checks its arguments first and refuses bad ones with
 * DGW_ERR_INVALID_ARGUMENT and a sentence saying which argument is wrong
 * and why, so nothing Discord would answer with a close code (4002 for a
 * malformed or oversized payload) ever leaves.  Internal to dgw; the
 * structs here are meant to move to the public header as they are.
 *
 * Common to the encoders: on success they return DGW_OK and store the
 * whole payload text ({"op":N,"d":{...}}, no whitespace) in a new
 * NUL-terminated string `*out` (free() it) of `*out_len` bytes.  On error
 * `*out` is NULL and `*out_len` 0.  Errors: DGW_ERR_INVALID_ARGUMENT for a
 * bad argument (also when `out` or `out_len` is NULL),
 * DGW_ERR_PAYLOAD_TOO_LARGE when the text would exceed DGW_PAYLOAD_MAX_SEND
 * (4096) bytes, DGW_ERR_NOMEM.  `why` (may be NULL, `why_size` may be 0)
 * receives a NUL-terminated English sentence, truncated to `why_size` bytes,
 * that names the failed argument, e.g. `guild_id "12a" is not a snowflake:
 * decimal digits only`; it is set to "" on success.  Snowflakes are given
 * as decimal strings and sent as JSON strings; every text argument must be
 * valid UTF-8.  The inputs are borrowed for the call only.
 */
#ifndef DGW_COMMANDS_H
#define DGW_COMMANDS_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h> /* the command structs */

struct json_object;

/* Longest snowflake accepted, in decimal digits (UINT64_MAX has 20). */
#define DGW_SNOWFLAKE_MAX_DIGITS 20
/* Longest request-guild-members nonce Discord keeps, in bytes. */
#define DGW_NONCE_MAX 32
/* Length of a nonce dgw generates: lower-case hex digits. */
#define DGW_NONCE_GENERATED_LEN 16
/* Most user ids in one request-guild-members command. */
#define DGW_MEMBER_REQUEST_MAX_USER_IDS 100
/* Largest request-guild-members limit (a query returns at most 100). */
#define DGW_MEMBER_REQUEST_MAX_LIMIT 100
/* The name sent for a custom status (type 4) given without a name. */
#define DGW_CUSTOM_STATUS_NAME "Custom Status"

/*
 * A source of random bytes: fills the `len` bytes at `buf` and returns 0,
 * or returns nonzero when it cannot.  `user_data` is the pointer given
 * along with it.
 */
typedef int (*dgw_random_fn)(void *buf, size_t len, void *user_data);

/*
 * Parses the snowflake `s`: 1 to DGW_SNOWFLAKE_MAX_DIGITS decimal digits,
 * no sign, no space, no leading zero, a value that fits uint64_t and is
 * greater than 0.  Returns DGW_OK and stores the value in `*out` (when
 * `out` is not NULL), or DGW_ERR_INVALID_ARGUMENT (`*out` untouched).
 */
int dgw_snowflake_parse(const char *s, uint64_t *out);

/*
 * The shard that receives the events of guild `guild_id` among
 * `shard_count` shards: (guild_id >> 22) % shard_count.  0 when
 * `shard_count` is 0.
 */
uint32_t dgw_shard_for_guild(uint64_t guild_id, uint32_t shard_count);

/*
 * Writes a fresh nonce of DGW_NONCE_GENERATED_LEN lower-case hex digits
 * and a NUL into `out`, from 8 bytes of `rng` (with `rng_data`), or
 * of OpenSSL's RAND_bytes() when `rng` is NULL.  Returns DGW_OK,
 * DGW_ERR_INVALID_ARGUMENT when `out` is NULL, or DGW_ERR_IO when the
 * source fails (`out` is then "").
 */
int dgw_nonce_generate(dgw_random_fn rng, void *rng_data,
                       char out[DGW_NONCE_GENERATED_LEN + 1]);

/*
 * Checks `presence` and builds its JSON object
 * ({"since":..,"activities":[..],"status":..,"afk":..}) alone, e.g. for
 * IDENTIFY's "presence".  Returns a new reference (json_object_put() it);
 * or NULL with *err (if not NULL) set to DGW_ERR_INVALID_ARGUMENT (also
 * for a NULL `presence`; `why` says what) or DGW_ERR_NOMEM.  No size check:
 * the payload that embeds it is checked when encoded.
 */
struct json_object *dgw_presence_to_json(const struct dgw_presence *presence,
                                         int *err, char *why, size_t why_size);

/* Update Presence (op 3) with `presence`, as dgw_presence_to_json(). */
int dgw_presence_encode(const struct dgw_presence *presence, char **out,
                        size_t *out_len, char *why, size_t why_size);

/*
 * Update Voice State (op 4): join or move to channel `channel_id` of guild
 * `guild_id`, or leave the guild's voice channel when `channel_id` is NULL;
 * `self_mute` and `self_deaf` nonzero for true.
 */
int dgw_voice_state_encode(const char *guild_id, const char *channel_id,
                           int self_mute, int self_deaf, char **out,
                           size_t *out_len, char *why, size_t why_size);

/*
 * Request Guild Members (op 8) with `request`.  Without a nonce in it, one
 * is generated with dgw_nonce_generate(rng, rng_data) (DGW_ERR_IO
 * when that fails).  The nonce sent is copied, NUL-terminated, into
 * `nonce_out` when not NULL (set to "" on error), so the caller can match
 * the GUILD_MEMBERS_CHUNK events that echo it.
 */
int dgw_member_request_encode(const struct dgw_member_request *request,
                              dgw_random_fn rng, void *rng_data,
                              char nonce_out[DGW_NONCE_MAX + 1], char **out,
                              size_t *out_len, char *why, size_t why_size);

/*
 * Request Soundboard Sounds (op 31) for the `count` guilds in `guild_ids`
 * (at least one).  Discord answers on each guild's own shard: a caller that
 * spans shards splits the list with dgw_shard_for_guild() first.
 */
int dgw_soundboard_request_encode(const char *const *guild_ids, size_t count,
                                  char **out, size_t *out_len, char *why,
                                  size_t why_size);

/*
 * Request Channel Info (op 43) for guild `guild_id`, asking for `fields`: a
 * non-empty OR of enum dgw_channel_info_field values, sent in enum order.
 */
int dgw_channel_info_request_encode(const char *guild_id, unsigned fields,
                                    char **out, size_t *out_len, char *why,
                                    size_t why_size);

/*
 * What IDENTIFY (op 2) carries for one shard.  The strings are borrowed
 * for the call.
 */
struct dgw_identify_params {
  const char *token;         /* the bot token, without "Bot " */
  uint64_t intents;          /* the gateway intents bit set */
  uint32_t shard_id;         /* this shard, below shard_total */
  uint32_t shard_total;      /* the bot's shard count */
  int large_threshold;       /* 50..250; 0 or less: not sent */
  const char *presence_json; /* a presence object's JSON text, or NULL: not
                                sent; text that does not parse is sent as
                                null (checked when the option was set) */
  /* The "properties" object's JSON text ({"os","browser","device"}), or
   * NULL: {"os":"linux","browser":"dgw","device":"dgw"}. */
  const char *properties_json;
};

/*
 * Identify (op 2) with `params`: {"token","properties":{"os":"linux",
 * "browser":"dgw","device":"dgw"} (or
 * params->properties_json),"intents","shard":[id,total]
 * [,"large_threshold"][,"presence"]}.  DGW_ERR_INVALID_ARGUMENT when
 * `params` or its token is NULL.  The text holds the token: the caller
 * wipes it (OPENSSL_cleanse) before free(); the encoder wipes every copy
 * of its own that it frees.
 */
int dgw_identify_encode(const struct dgw_identify_params *params, char **out,
                        size_t *out_len, char *why, size_t why_size);

/*
 * Resume (op 6): {"token","session_id","seq"} for session `session_id` at
 * sequence `seq` (0 or more).  DGW_ERR_INVALID_ARGUMENT when a string is
 * NULL or `seq` is negative.  The text holds the token: wipe it as for
 * dgw_identify_encode().
 */
int dgw_resume_encode(const char *token, const char *session_id, int64_t seq,
                      char **out, size_t *out_len, char *why, size_t why_size);

/*
 * Heartbeat (op 1) with the last sequence `seq` (JSON null when 0 or
 * less) into `buf` of `size` bytes (32 is always enough), NUL-terminated.
 * Returns the length, or -1 when `buf` is too small.  Never allocates: it
 * runs on every beat.
 */
int dgw_heartbeat_encode(int64_t seq, char *buf, size_t size);

#endif /* DGW_COMMANDS_H */
