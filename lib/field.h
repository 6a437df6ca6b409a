/*
 * Fields without a DOM: the JSON Pointer lookup behind the public getters
 * of <dgw/field.h>, for the library's own readers (routing by guild, the
 * request tracker, READY).  Internal to dgw.
 */
#ifndef DGW_LIB_FIELD_H
#define DGW_LIB_FIELD_H

#include <stddef.h>

#include <dgw/field.h>

/*
 * Deepest nesting of arrays and objects accepted in the text a getter
 * reads: one less than the envelope peek allows for the whole message,
 * since the envelope object holds `d`.  Every `d` the peek accepted is
 * accepted here, and json-c (dgw_payload_parse) accepts the same depth.
 */
#define DGW_FIELD_MAX_DEPTH 511

/*
 * Finds the value `pointer` (`pointer_len` bytes, an RFC 6901 JSON
 * Pointer, need not be NUL-terminated) names in the `len` bytes of JSON
 * text at `json`, with the rules of <dgw/field.h>: the path and the value
 * are checked, what lies beside the path only stepped over, and a
 * duplicated key counts by its last occurrence.  On DGW_OK,
 * `*value` points at the first byte of the value inside `json` (never at
 * whitespace) and `*value_len` is its length.  Returns DGW_OK,
 * DGW_ERR_INVALID_ARGUMENT, DGW_ERR_JSON or DGW_ERR_NOT_FOUND; the outputs
 * are untouched on error.
 */
int dgw_field_find(const char *json, size_t len, const char *pointer,
                   size_t pointer_len, const char **value, size_t *value_len);

#endif /* DGW_LIB_FIELD_H */
