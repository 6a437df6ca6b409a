/*
 * dgw fields: read single values out of raw JSON text by JSON Pointer
 * (RFC 6901), without building a DOM.
 *
 * Meant for an event's `d` (dgw_event_data()), so a handler that needs
 * `/author/id` does not pay for parsing the whole event with json-c:
 *
 *   size_t len;
 *   const char *d = dgw_event_data(event, &len);
 *   uint64_t author;
 *   if (dgw_field_uint64(d, len, "/author/id", &author) == DGW_OK) ...
 *
 * Common to every getter:
 *
 * - `json` is `len` bytes of JSON text, not necessarily NUL-terminated;
 *   nothing is read past `len`.  It must be one JSON value (RFC 8259, the
 *   grammar dgw's envelope peek accepts: no comments, no single quotes, no
 *   trailing commas) with optional JSON whitespace around it.  What a
 *   lookup checks: every container on the path member by member (keys,
 *   separators, every scalar member), the value it returns whole, nesting
 *   up to 511 arrays and objects on the path and inside that value, and
 *   that only whitespace surrounds the outermost value.  Containers beside
 *   the path are stepped over with their quotes paired and brackets
 *   counted, not checked: a fault inside one may go unseen (every `d` dgw
 *   hands out was checked whole by the envelope peek already).  Bytes >=
 *   0x80 are not checked to form valid UTF-8 (json-c does not either).
 * - `pointer` is a NUL-terminated RFC 6901 JSON Pointer: "" is the whole
 *   text, "/author/id" the member "id" of the member "author".  In a
 *   reference token "~1" stands for '/' and "~0" for '~'; any other '~' is
 *   an invalid pointer.  On an array, a token must be a decimal index
 *   without leading zeros ("0", "17"); "-", "01" or "+1" name nothing.
 * - Keys are compared after decoding their JSON escapes ("\u0061" matches
 *   "a"); in a key an unpaired surrogate escape decodes to U+FFFD, as in
 *   json-c.  When an object has a key more than once, the LAST occurrence
 *   counts, as in json-c (json_object_object_add replaces).
 * - Nothing allocates, except dgw_field_double() for a number longer than
 *   63 bytes.  Getters keep no state: any thread may call them on any
 *   text.
 *
 * Errors, in the order they are checked:
 *   DGW_ERR_INVALID_ARGUMENT  a NULL argument (json may be NULL only with
 *                             len 0), or a pointer that is not "" and does
 *                             not start with '/', or has a bad '~' escape;
 *   DGW_ERR_JSON              the text breaks the grammar where it is
 *                             checked (also empty text, or nested too
 *                             deep), or the string to decode holds an
 *                             unpaired surrogate;
 *   DGW_ERR_NOT_FOUND         the pointer names no value: a key that is
 *                             absent, an index past the end or not a valid
 *                             index, or a step into a string, number,
 *                             literal;
 *   DGW_ERR_TYPE              the value exists but is of another type than
 *                             the getter reads (a float for an integer, a
 *                             non-decimal string for dgw_field_uint64...);
 *   DGW_ERR_RANGE             an integer does not fit the getter's type;
 *   DGW_ERR_BUFFER_TOO_SMALL  the decoded string does not fit the caller's
 *                             buffer (the length needed is reported).
 * On any error the output parameters are left unchanged unless a getter
 * says otherwise.
 */
#ifndef DGW_FIELD_H
#define DGW_FIELD_H

#include <stddef.h>
#include <stdint.h>

#include <dgw/dgw.h>

#ifdef __cplusplus
extern "C" {
#endif

/** The JSON type of a value, as dgw_field_type() reports it. */
enum dgw_field_type {
  DGW_FIELD_NULL = 0,
  DGW_FIELD_BOOL = 1,
  DGW_FIELD_NUMBER = 2,
  DGW_FIELD_STRING = 3,
  DGW_FIELD_ARRAY = 4,
  DGW_FIELD_OBJECT = 5,
};

/**
 * Returns 1 when `pointer` names a value in `json` (null counts as a
 * value), 0 when it names none (where the other getters return
 * DGW_ERR_NOT_FOUND), or a negative error: DGW_ERR_INVALID_ARGUMENT or
 * DGW_ERR_JSON.
 */
DGW_EXTERN int dgw_field_present(const char *json, size_t len,
                                 const char *pointer);

/**
 * Stores the JSON type of the value at `pointer` in `*type`.  Returns
 * DGW_OK, DGW_ERR_INVALID_ARGUMENT, DGW_ERR_JSON or DGW_ERR_NOT_FOUND.
 */
DGW_EXTERN int dgw_field_type(const char *json, size_t len, const char *pointer,
                              enum dgw_field_type *type);

/**
 * The raw JSON text of the value at `pointer`, without whitespace around
 * it: `*out` points into `json` (borrowed: valid as long as `json` is) and
 * `*out_len` is its length.  A string's span includes its quotes and
 * escapes as written.  Returns DGW_OK, DGW_ERR_INVALID_ARGUMENT,
 * DGW_ERR_JSON or DGW_ERR_NOT_FOUND.
 */
DGW_EXTERN int dgw_field_raw(const char *json, size_t len, const char *pointer,
                             const char **out, size_t *out_len);

/**
 * Decodes the string at `pointer` into `buf` (`size` bytes) and adds a
 * NUL.  Escapes are decoded, \uXXXX to UTF-8 and a surrogate pair to one
 * 4-byte sequence; an unpaired surrogate is DGW_ERR_JSON.  "\u0000" decodes
 * to a NUL byte inside the string: use `*out_len`, not strlen().
 *
 * Returns DGW_OK with `*out_len` set to the decoded length (without the
 * NUL), or DGW_ERR_BUFFER_TOO_SMALL with `*out_len` set to that same
 * length: `buf` then needs `*out_len + 1` bytes, and its contents are
 * unspecified.  `buf` may be NULL when `size` is 0, to ask for the length.
 * Other errors: DGW_ERR_INVALID_ARGUMENT (`out_len` NULL, or `buf` NULL
 * with a non-zero `size`), DGW_ERR_JSON, DGW_ERR_NOT_FOUND, DGW_ERR_TYPE
 * (not a string; null is not a string either).
 */
DGW_EXTERN int dgw_field_string(const char *json, size_t len,
                                const char *pointer, char *buf, size_t size,
                                size_t *out_len);

/**
 * The string at `pointer` with no copy when it can be: when the string has
 * no escapes, `*out` points at its first byte inside `json` (borrowed,
 * valid as long as `json` is; not NUL-terminated) and `*out_len` is its
 * length.  When it has escapes, it is decoded into `buf` as by
 * dgw_field_string() (NUL-terminated) and `*out` points at `buf`.  With
 * `buf` NULL and `size` 0 only borrowed strings succeed.
 *
 * Returns DGW_OK, or DGW_ERR_BUFFER_TOO_SMALL with `*out_len` set to the
 * decoded length (`buf` needs `*out_len + 1` bytes) and `*out` unchanged,
 * or the errors of dgw_field_string() (DGW_ERR_INVALID_ARGUMENT also when
 * `out` is NULL).
 */
DGW_EXTERN int dgw_field_string_view(const char *json, size_t len,
                                     const char *pointer, char *buf,
                                     size_t size, const char **out,
                                     size_t *out_len);

/**
 * Reads the number at `pointer` as an int64_t.  Only integers are
 * accepted: no fraction, no exponent ("1.0" and "1e3" are DGW_ERR_TYPE,
 * as is a string, even of digits); "-0" is 0.  Returns DGW_OK,
 * DGW_ERR_RANGE outside [INT64_MIN, INT64_MAX], or DGW_ERR_INVALID_ARGUMENT,
 * DGW_ERR_JSON, DGW_ERR_NOT_FOUND, DGW_ERR_TYPE.
 */
DGW_EXTERN int dgw_field_int64(const char *json, size_t len,
                               const char *pointer, int64_t *out);

/**
 * Reads the unsigned 64-bit integer at `pointer`: a Discord snowflake or
 * bitfield, which Discord sends as a string of decimal digits
 * ("1234567890123456789"), or a JSON integer.  A string must be 1 to 20
 * ASCII digits without sign, spaces, escapes or leading zeros (except
 * "0"); a number must be an integer as for dgw_field_int64() ("-0" is 0).
 * Returns DGW_OK, DGW_ERR_RANGE for a value above UINT64_MAX or a negative
 * number, DGW_ERR_TYPE for any other string or value, or
 * DGW_ERR_INVALID_ARGUMENT, DGW_ERR_JSON, DGW_ERR_NOT_FOUND.
 */
DGW_EXTERN int dgw_field_uint64(const char *json, size_t len,
                                const char *pointer, uint64_t *out);

/**
 * Reads the number at `pointer` (integer or not) as a double, converted
 * with strtod() as json-c does (so a program that changes LC_NUMERIC
 * affects both).  A number beyond the double range gives +-HUGE_VAL, as
 * strtod().  Returns DGW_OK, or DGW_ERR_TYPE when the value is not a
 * number, DGW_ERR_NOMEM (numbers longer than 63 bytes are copied to the
 * heap), DGW_ERR_INVALID_ARGUMENT, DGW_ERR_JSON, DGW_ERR_NOT_FOUND.
 */
DGW_EXTERN int dgw_field_double(const char *json, size_t len,
                                const char *pointer, double *out);

/**
 * Reads the literal true or false at `pointer` into `*out` (1 or 0).
 * Returns DGW_OK, or DGW_ERR_TYPE for any other value (null included),
 * DGW_ERR_INVALID_ARGUMENT, DGW_ERR_JSON, DGW_ERR_NOT_FOUND.
 */
DGW_EXTERN int dgw_field_bool(const char *json, size_t len, const char *pointer,
                              int *out);

/**
 * Returns DGW_OK when the value at `pointer` is null, DGW_ERR_TYPE when it
 * is anything else, or DGW_ERR_INVALID_ARGUMENT, DGW_ERR_JSON,
 * DGW_ERR_NOT_FOUND.  (An absent key is not null: test both when Discord
 * means the same by them.)
 */
DGW_EXTERN int dgw_field_null(const char *json, size_t len,
                              const char *pointer);

/**
 * Stores in `*out` the number of elements of the array at `pointer`, so
 * that "/mentions/0" .. "/mentions/N-1" can be read.  Returns DGW_OK,
 * DGW_ERR_TYPE for any other value (objects included), or
 * DGW_ERR_INVALID_ARGUMENT, DGW_ERR_JSON, DGW_ERR_NOT_FOUND.
 */
DGW_EXTERN int dgw_field_count(const char *json, size_t len,
                               const char *pointer, size_t *out);

#ifdef __cplusplus
}
#endif

#endif /* DGW_FIELD_H */
