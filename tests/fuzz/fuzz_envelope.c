/*
 * Fuzz target: the gateway envelope peek (lib/payload.c), differential
 * against json-c.  When dgw_envelope_peek() accepts a message, json-c
 * (with the same depth) must parse it whole, as an object, and agree on
 * op, s and t; and the d span must parse on its own with
 * dgw_payload_parse() (the layer above relies on both).
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <dgw/dgw.h>

#include "fuzz.h"
#include "payload.h"

static int space_only(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r' && s[i] != '\n')
      return 0;
  return 1;
}

static void differ(const struct dgw_envelope *env, const char *text,
                   size_t size) {
  struct json_tokener *tok = json_tokener_new_ex(DGW_JSON_MAX_DEPTH + 1);
  struct json_object *root, *v;
  size_t end;

  if (tok == NULL)
    return;
  root = json_tokener_parse_ex(tok, text, (int)size);
  end = json_tokener_get_parse_end(tok);
  if (json_tokener_get_error(tok) != json_tokener_success || root == NULL)
    fuzz_fail("peek accepted what json-c refuses");
  if (!space_only(text + end, size - end))
    fuzz_fail("peek accepted text json-c leaves after the object");
  if (!json_object_is_type(root, json_type_object))
    fuzz_fail("peek accepted what json-c does not see as an object");
  if (!json_object_object_get_ex(root, "op", &v) ||
      !json_object_is_type(v, json_type_int) ||
      json_object_get_int64(v) != env->op)
    fuzz_fail("peek and json-c disagree on op");
  if (json_object_object_get_ex(root, "s", &v) && v != NULL) {
    if (!env->has_seq || !json_object_is_type(v, json_type_int) ||
        json_object_get_int64(v) != env->seq)
      fuzz_fail("peek and json-c disagree on s");
  } else if (env->has_seq) {
    fuzz_fail("peek found an s json-c does not have");
  }
  if (json_object_object_get_ex(root, "t", &v) && v != NULL) {
    if (!env->has_name || !json_object_is_type(v, json_type_string) ||
        (size_t)json_object_get_string_len(v) != env->name_len ||
        memcmp(json_object_get_string(v), env->name, env->name_len) != 0)
      fuzz_fail("peek and json-c disagree on t");
  } else if (env->has_name) {
    fuzz_fail("peek found a t json-c does not have");
  }
  if (env->d != NULL) {
    int err = 0;
    struct json_object *d = dgw_payload_parse(env->d, env->d_len, &err);

    if (err != DGW_OK)
      fuzz_fail("the d span peek gave does not parse");
    json_object_put(d);
  }
  json_object_put(root);
  json_tokener_free(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct dgw_envelope env;
  char *copy;

  if (size > 1 << 20)
    return 0;
  /* Exactly `size` bytes, no NUL after them: peek must not read past. */
  if ((copy = malloc(size > 0 ? size : 1)) == NULL)
    return 0;
  if (size > 0)
    memcpy(copy, data, size);
  if (dgw_envelope_peek(copy, size, &env) == DGW_OK)
    differ(&env, copy, size);
  else if (env.d != NULL || env.op != 0)
    fuzz_fail("a refused peek left *env filled");
  free(copy);
  return 0;
}
