/*
 * Gateway payloads without I/O: peeking at the envelope of an inbound
 * message ({"op", "d", "s", "t"}) without building a DOM, parsing the raw
 * `d` text with json-c when someone needs it, and encoding outgoing
 * payloads.  Internal to dgw.
 */
#ifndef DGW_PAYLOAD_H
#define DGW_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>

struct json_object;
struct json_tokener;

/* Longest event name (`t`) kept, in bytes, without the NUL. */
#define DGW_EVENT_NAME_MAX 127
/* Discord's cap for a serialized client->server payload, in bytes. */
#define DGW_PAYLOAD_MAX_SEND 4096
/*
 * Deepest nesting of arrays and objects accepted in an inbound message,
 * counting the envelope object itself as 1; so `d` may nest
 * DGW_JSON_MAX_DEPTH - 1 levels.
 */
#define DGW_JSON_MAX_DEPTH 512

/* Gateway opcodes (gateway-protocol.md section 3). */
enum dgw_op {
  DGW_OP_DISPATCH = 0,
  DGW_OP_HEARTBEAT = 1,
  DGW_OP_IDENTIFY = 2,
  DGW_OP_PRESENCE_UPDATE = 3,
  DGW_OP_VOICE_STATE_UPDATE = 4,
  DGW_OP_RESUME = 6,
  DGW_OP_RECONNECT = 7,
  DGW_OP_REQUEST_GUILD_MEMBERS = 8,
  DGW_OP_INVALID_SESSION = 9,
  DGW_OP_HELLO = 10,
  DGW_OP_HEARTBEAT_ACK = 11,
  DGW_OP_REQUEST_SOUNDBOARD_SOUNDS = 31,
  DGW_OP_REQUEST_CHANNEL_INFO = 43,
};

/* What dgw_envelope_peek() found in one message. */
struct dgw_envelope {
  /* `op`: a JSON integer that fits an int (required). */
  int op;
  /* `s`: has_seq is 1 when s is a non-negative integer fitting int64_t
   * ("-0" reads as 0), 0 when s is null or absent (seq is then 0). */
  int has_seq;
  int64_t seq;
  /* `t`: has_name is 1 when t is a string; name holds it with its escapes
   * decoded, NUL-terminated, name_len bytes long.  has_name is 0 (and name
   * empty) when t is null or absent. */
  int has_name;
  char name[DGW_EVENT_NAME_MAX + 1];
  size_t name_len;
  /* `d`: the raw JSON text of the value, without surrounding whitespace,
   * pointing into the peeked input (borrowed: valid as long as the input
   * is).  The text "null" when d is null; d == NULL and d_len == 0 when the
   * key is absent. */
  const char *d;
  size_t d_len;
};

/*
 * Reads op, s, t and the span of d from the gateway message in `json`
 * (`len` bytes, not necessarily NUL-terminated; never read past `len`).
 * Validates the whole message on the way, in a single pass and without
 * recursion: it must be one JSON object (RFC 8259: strings with their
 * escapes, numbers by the grammar, literals, nesting up to
 * DGW_JSON_MAX_DEPTH), optionally surrounded by JSON whitespace (space, tab,
 * CR, LF) and nothing else.  Keys other than op, d, s and t are skipped;
 * keys are compared after decoding their escapes.  A duplicate key counts
 * only by its last occurrence, as in json-c, so {"op":"x","op":1} is op 1.
 *
 * Not checked: that bytes >= 0x80 form valid UTF-8 (json-c does not check
 * either), and that \u escapes inside `d` or unknown keys pair their
 * surrogates (they are grammatical JSON).  In `t` a surrogate pair decodes
 * to its 4-byte UTF-8 form and a lone surrogate to U+FFFD, as json-c does.
 *
 * Returns DGW_OK with `*env` filled, DGW_ERR_INVALID_ARGUMENT when `env` is
 * NULL or `json` is NULL with a non-zero `len`, or DGW_ERR_JSON when the
 * text is malformed, empty, not an object, nested too deep, has no op, or
 * op, s or t has the wrong type or range; t is also refused when it is
 * longer than DGW_EVENT_NAME_MAX bytes decoded or contains U+0000.  On
 * error `*env` is zeroed (d == NULL).
 */
int dgw_envelope_peek(const char *json, size_t len, struct dgw_envelope *env);

/*
 * Parses `len` bytes of JSON text at `text` (typically a dgw_envelope d
 * span; not necessarily NUL-terminated) with json-c and returns a new
 * reference the caller releases with json_object_put().  The text must be
 * exactly one JSON value, optionally surrounded by whitespace; json-c's
 * default (non-strict) mode decides what else is accepted.  json-c's depth
 * limit is set to DGW_JSON_MAX_DEPTH (json-c counts the innermost scalar as
 * a level), so every d that dgw_envelope_peek() accepted parses.
 *
 * JSON null is represented by json-c as a NULL pointer, so NULL is also a
 * successful result: always look at `*err`.  An absent d (text == NULL and
 * len == 0) reads as null: NULL with DGW_OK, since Discord means the same
 * by both.  On failure returns NULL and sets `*err` to DGW_ERR_JSON
 * (malformed, trailing data, too deep), DGW_ERR_NOMEM, or
 * DGW_ERR_INVALID_ARGUMENT (text NULL with a non-zero len).  `err` may be
 * NULL when the caller does not need to tell null from failure.
 */
struct json_object *dgw_payload_parse(const char *text, size_t len, int *err);

/*
 * dgw_payload_parse() with a tokener kept by the caller and reused, rather
 * than one made and freed per call: json-c zeroes a stack of
 * DGW_JSON_MAX_DEPTH levels (16 KiB) for every new tokener, about a fifth
 * of the cost of parsing a typical event.  `tok` comes from
 * dgw_payload_tokener_new() (json_tokener_free() it); it is reset before
 * and after use, so no call sees what another left.  Its string buffer
 * keeps the size of the longest string or number it has read.  NULL `tok`
 * is dgw_payload_parse().
 */
struct json_object *dgw_payload_parse_with(struct json_tokener *tok,
                                           const char *text, size_t len,
                                           int *err);

/* A new tokener for dgw_payload_parse_with(), or NULL without memory. */
struct json_tokener *dgw_payload_tokener_new(void);

/*
 * Serializes the payload {"op":op,"d":d} in that key order, without
 * whitespace and without escaping '/', into a new NUL-terminated string
 * stored in `*out` (free() it) with its length in `*out_len`.  `d` is
 * borrowed (its reference count is unchanged on return); NULL stands for
 * JSON null.  json-c caches the serialization inside `d` and its children.
 *
 * Returns DGW_OK, DGW_ERR_INVALID_ARGUMENT when `out` or `out_len` is NULL,
 * DGW_ERR_NOMEM, or DGW_ERR_PAYLOAD_TOO_LARGE when the text is longer than
 * `max_len` bytes (pass DGW_PAYLOAD_MAX_SEND for Discord, 0 for no limit).
 * On error `*out` is NULL and `*out_len` 0.
 */
int dgw_payload_encode(int op, struct json_object *d, size_t max_len,
                       char **out, size_t *out_len);

/*
 * Returns the upper-case name of opcode `op` as in enum dgw_op without the
 * prefix ("DISPATCH", "HELLO", ...), or "UNKNOWN" for any other value
 * (including the retired 5 and 12).  Static storage.
 */
const char *dgw_op_name(int op);

/* The s of `json` (`len` bytes) when json-c can still read it as a
 * dispatch although the envelope peek refused it (an event name over
 * DGW_EVENT_NAME_MAX bytes, nesting past DGW_JSON_MAX_DEPTH); -1 otherwise.
 * For skipping such an event without losing its place in the sequence. */
int64_t dgw_payload_recover_seq(const char *json, size_t len);

#endif /* DGW_PAYLOAD_H */
