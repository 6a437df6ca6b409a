/*
 * The JSON config of `dgw run`: every key checked, every mistake named
 * with the file and the key, unknown keys refused (a typo must not
 * silently fall back to a default).
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "botconfig.h"
#include "cli.h"

/* A config is a small file; refuse anything bigger than this. */
#define CONFIG_MAX_BYTES (1024 * 1024)
#define DEFAULT_TOKEN_ENV "DISCORD_TOKEN"

struct ctx {
  const char *path;
  char *dir; /* the config file's directory, for relative paths */
  char *why;
  size_t why_size;
};

static int fail(struct ctx *x, const char *key, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int fail(struct ctx *x, const char *key, const char *fmt, ...) {
  char msg[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (x->why != NULL && x->why_size > 0) {
    if (key != NULL)
      snprintf(x->why, x->why_size, "%s: %s: %s", x->path, key, msg);
    else
      snprintf(x->why, x->why_size, "%s: %s", x->path, msg);
  }
  return -1;
}

/* The whole file, NUL-terminated, or NULL (said why). */
static char *read_text(struct ctx *x, size_t *len_out) {
  FILE *f = fopen(x->path, "rb");
  char *buf = NULL;
  size_t len = 0, got;

  if (f == NULL) {
    fail(x, NULL, "cannot open: %s", strerror(errno));
    return NULL;
  }
  buf = malloc(CONFIG_MAX_BYTES + 1);
  if (buf == NULL) {
    fail(x, NULL, "out of memory");
    fclose(f);
    return NULL;
  }
  while ((got = fread(buf + len, 1, CONFIG_MAX_BYTES + 1 - len, f)) > 0)
    len += got;
  if (ferror(f)) {
    fail(x, NULL, "cannot read: %s", strerror(errno));
    goto bad;
  }
  if (len > CONFIG_MAX_BYTES) {
    fail(x, NULL, "larger than %d bytes; is this the config?",
         CONFIG_MAX_BYTES);
    goto bad;
  }
  fclose(f);
  buf[len] = '\0';
  *len_out = len;
  return buf;
bad:
  fclose(f);
  free(buf);
  return NULL;
}

/*
 * Strict JSON (RFC 8259), checked before json-c parses the text: json-c,
 * even with JSON_TOKENER_STRICT, takes single quotes, NaN and raw control
 * characters in strings, and keeps the last of two equal keys silently.
 * A config with any of these, or with a trailing comma or a comment, is
 * refused with the line it is on.
 */
#define SCAN_MAX_DEPTH 32 /* json-c's default depth */

struct scan {
  struct ctx *x;
  const char *s;
  size_t len, i;
  int depth;
};

static int line_at(const char *s, size_t at) {
  int line = 1;

  for (size_t i = 0; i < at; i++)
    line += s[i] == '\n';
  return line;
}

static int scan_bad(struct scan *sc, const char *what) {
  return fail(sc->x, NULL, "not valid JSON at line %d: %s",
              line_at(sc->s, sc->i < sc->len ? sc->i : sc->len), what);
}

/* The character at the cursor is not what the grammar wants there. */
static int scan_unexpected(struct scan *sc, const char *wanted) {
  char msg[160];
  unsigned char c;

  if (sc->i >= sc->len)
    return scan_bad(sc, "unexpected end of file");
  c = (unsigned char)sc->s[sc->i];
  if (c == '/')
    return scan_bad(sc, "comments are not allowed in JSON");
  if (c == '\'')
    return scan_bad(sc, "strings take double quotes, not single ones");
  if (c > 0x20 && c < 0x7f)
    snprintf(msg, sizeof(msg), "expected %s, found '%c'", wanted, c);
  else
    snprintf(msg, sizeof(msg), "expected %s, found byte 0x%02x", wanted, c);
  return scan_bad(sc, msg);
}

static void scan_ws(struct scan *sc) {
  while (sc->i < sc->len && strchr(" \t\r\n", sc->s[sc->i]) != NULL &&
         sc->s[sc->i] != '\0')
    sc->i++;
}

static int is_digit(char c) {
  return c >= '0' && c <= '9';
}

static int is_hex_digit(char c) {
  return is_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/* A string at the cursor (on its '"'); the cursor ends after it. */
static int scan_string(struct scan *sc) {
  for (sc->i++; sc->i < sc->len; sc->i++) {
    unsigned char c = (unsigned char)sc->s[sc->i];

    if (c == '"') {
      sc->i++;
      return 0;
    }
    if (c < 0x20)
      return scan_bad(sc, "a control character in a string (write it as "
                          "an escape such as \\n)");
    if (c != '\\')
      continue;
    if (++sc->i >= sc->len)
      break;
    c = (unsigned char)sc->s[sc->i];
    if (c == 'u') {
      for (int k = 1; k <= 4; k++)
        if (sc->i + (size_t)k >= sc->len || !is_hex_digit(sc->s[sc->i + k]))
          return scan_bad(sc, "a \\u escape needs four hex digits");
      sc->i += 4;
    } else if (strchr("\"\\/bfnrt", c) == NULL || c == '\0') {
      return scan_bad(sc, "an unknown escape in a string");
    }
  }
  return scan_bad(sc, "a string without its closing quote");
}

static int scan_number(struct scan *sc) {
  const char *s = sc->s;

  if (sc->i < sc->len && s[sc->i] == '-')
    sc->i++;
  if (sc->i < sc->len && s[sc->i] == '0')
    sc->i++;
  else if (sc->i < sc->len && is_digit(s[sc->i]))
    while (sc->i < sc->len && is_digit(s[sc->i]))
      sc->i++;
  else
    return scan_bad(sc, "a bad number");
  if (sc->i < sc->len && s[sc->i] == '.') {
    if (++sc->i >= sc->len || !is_digit(s[sc->i]))
      return scan_bad(sc, "a bad number (digits must follow '.')");
    while (sc->i < sc->len && is_digit(s[sc->i]))
      sc->i++;
  }
  if (sc->i < sc->len && (s[sc->i] == 'e' || s[sc->i] == 'E')) {
    sc->i++;
    if (sc->i < sc->len && (s[sc->i] == '+' || s[sc->i] == '-'))
      sc->i++;
    if (sc->i >= sc->len || !is_digit(s[sc->i]))
      return scan_bad(sc, "a bad number (digits must follow the exponent)");
    while (sc->i < sc->len && is_digit(s[sc->i]))
      sc->i++;
  }
  if (sc->i < sc->len && is_digit(s[sc->i]))
    return scan_bad(sc, "a bad number (no leading zeros)");
  return 0;
}

static int scan_value(struct scan *sc);

/* Records the key that ends just before the cursor (its quotes at `from`
 * and sc->i - 1) in `seen`; refuses a key seen before in this object. */
static int scan_key(struct scan *sc, struct json_object *seen, size_t from) {
  size_t n = sc->i - from; /* with the quotes */
  struct json_object *decoded = NULL;
  const char *key;
  char *raw = malloc(n + 1), *plain = malloc(n);
  int rv = 0;

  if (raw == NULL || plain == NULL) {
    free(raw);
    free(plain);
    return fail(sc->x, NULL, "out of memory");
  }
  memcpy(raw, sc->s + from, n);
  raw[n] = '\0';
  memcpy(plain, raw + 1, n - 2);
  plain[n - 2] = '\0';
  key = plain;
  /* An escaped key ("\u0061") is the same key as its plain form. */
  if (memchr(raw, '\\', n) != NULL &&
      (decoded = json_tokener_parse(raw)) != NULL &&
      json_object_is_type(decoded, json_type_string))
    key = json_object_get_string(decoded);
  if (json_object_object_get_ex(seen, key, NULL))
    rv = fail(sc->x, NULL,
              "line %d: duplicate key %.*s (each key may appear once in an "
              "object)",
              line_at(sc->s, from), n > 66 ? 66 : (int)n, raw);
  else if (json_object_object_add(seen, key, NULL) != 0)
    rv = fail(sc->x, NULL, "out of memory");
  json_object_put(decoded);
  free(raw);
  free(plain);
  return rv;
}

static int scan_object(struct scan *sc) {
  struct json_object *seen = json_object_new_object();
  int rv = -1;

  if (seen == NULL)
    return fail(sc->x, NULL, "out of memory");
  sc->i++; /* '{' */
  scan_ws(sc);
  if (sc->i < sc->len && sc->s[sc->i] == '}') {
    sc->i++;
    rv = 0;
    goto out;
  }
  for (int first = 1;; first = 0) {
    size_t from;

    scan_ws(sc);
    if (!first && sc->i < sc->len && sc->s[sc->i] == '}') {
      scan_bad(sc, "a trailing comma before '}'");
      goto out;
    }
    if (sc->i >= sc->len || sc->s[sc->i] != '"') {
      scan_unexpected(sc, "a key in double quotes");
      goto out;
    }
    from = sc->i;
    if (scan_string(sc) != 0 || scan_key(sc, seen, from) != 0)
      goto out;
    scan_ws(sc);
    if (sc->i >= sc->len || sc->s[sc->i] != ':') {
      scan_unexpected(sc, "':' after the key");
      goto out;
    }
    sc->i++;
    if (scan_value(sc) != 0)
      goto out;
    scan_ws(sc);
    if (sc->i < sc->len && sc->s[sc->i] == ',') {
      sc->i++;
      continue;
    }
    if (sc->i < sc->len && sc->s[sc->i] == '}') {
      sc->i++;
      rv = 0;
      goto out;
    }
    scan_unexpected(sc, "',' or '}'");
    goto out;
  }
out:
  json_object_put(seen);
  return rv;
}

static int scan_array(struct scan *sc) {
  sc->i++; /* '[' */
  scan_ws(sc);
  if (sc->i < sc->len && sc->s[sc->i] == ']') {
    sc->i++;
    return 0;
  }
  for (int first = 1;; first = 0) {
    scan_ws(sc);
    if (!first && sc->i < sc->len && sc->s[sc->i] == ']')
      return scan_bad(sc, "a trailing comma before ']'");
    if (scan_value(sc) != 0)
      return -1;
    scan_ws(sc);
    if (sc->i < sc->len && sc->s[sc->i] == ',') {
      sc->i++;
      continue;
    }
    if (sc->i < sc->len && sc->s[sc->i] == ']') {
      sc->i++;
      return 0;
    }
    return scan_unexpected(sc, "',' or ']'");
  }
}

static int scan_word(struct scan *sc, const char *word) {
  size_t n = strlen(word);

  if (sc->len - sc->i < n || memcmp(sc->s + sc->i, word, n) != 0)
    return scan_unexpected(sc, "a value");
  sc->i += n;
  return 0;
}

static int scan_value(struct scan *sc) {
  int rv;

  scan_ws(sc);
  if (sc->i >= sc->len)
    return scan_unexpected(sc, "a value");
  if (sc->depth >= SCAN_MAX_DEPTH && strchr("{[", sc->s[sc->i]) != NULL &&
      sc->s[sc->i] != '\0')
    return scan_bad(sc, "nested deeper than 32 levels");
  switch (sc->s[sc->i]) {
  case '{':
    sc->depth++;
    rv = scan_object(sc);
    sc->depth--;
    return rv;
  case '[':
    sc->depth++;
    rv = scan_array(sc);
    sc->depth--;
    return rv;
  case '"':
    return scan_string(sc);
  case 't':
    return scan_word(sc, "true");
  case 'f':
    return scan_word(sc, "false");
  case 'n':
    return scan_word(sc, "null");
  default:
    if (sc->s[sc->i] == '-' || is_digit(sc->s[sc->i]))
      return scan_number(sc);
    return scan_unexpected(sc, "a value");
  }
}

/* 0 when `text` is one strict JSON value and nothing else but space. */
static int scan_text(struct ctx *x, const char *text, size_t len) {
  struct scan sc = {x, text, len, 0, 0};

  if (scan_value(&sc) != 0)
    return -1;
  scan_ws(&sc);
  if (sc.i < len)
    return fail(x, NULL, "text after the JSON object (line %d)",
                line_at(text, sc.i));
  return 0;
}

/* Parses `text` as one JSON object, naming the line of a syntax error. */
static struct json_object *parse_text(struct ctx *x, const char *text,
                                      size_t len) {
  struct json_tokener *tok;
  struct json_object *root;
  enum json_tokener_error jerr;

  if (scan_text(x, text, len) != 0)
    return NULL;
  if ((tok = json_tokener_new()) == NULL) {
    fail(x, NULL, "out of memory");
    return NULL;
  }
  json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
  root = json_tokener_parse_ex(tok, text, (int)len);
  jerr = json_tokener_get_error(tok);
  if (root == NULL || jerr != json_tokener_success) {
    size_t at = jerr == json_tokener_continue ? len : (size_t)tok->char_offset;
    int line = 1;

    for (size_t i = 0; i < at && i < len; i++)
      line += text[i] == '\n';
    fail(x, NULL, "not valid JSON at line %d: %s", line,
         jerr == json_tokener_continue ? "unexpected end of file"
                                       : json_tokener_error_desc(jerr));
    json_object_put(root);
    root = NULL;
  } else if (tok->char_offset < (int)len &&
             strspn(text + tok->char_offset, " \t\r\n") !=
                 len - (size_t)tok->char_offset) {
    fail(x, NULL, "text after the JSON object");
    json_object_put(root);
    root = NULL;
  } else if (!json_object_is_type(root, json_type_object)) {
    fail(x, NULL, "must be a JSON object ({ ... })");
    json_object_put(root);
    root = NULL;
  }
  json_tokener_free(tok);
  return root;
}

static int get_string(struct ctx *x, struct json_object *v, const char *key,
                      const char **out) {
  if (!json_object_is_type(v, json_type_string) ||
      json_object_get_string_len(v) == 0)
    return fail(x, key, "must be a non-empty string");
  if ((size_t)json_object_get_string_len(v) !=
      strlen(json_object_get_string(v)))
    return fail(x, key, "contains a NUL character (\\u0000)");
  *out = json_object_get_string(v);
  return 0;
}

static int get_bool(struct ctx *x, struct json_object *v, const char *key,
                    int *out) {
  if (!json_object_is_type(v, json_type_boolean))
    return fail(x, key, "must be true or false");
  *out = json_object_get_boolean(v);
  return 0;
}

/* `compress`: a boolean (zlib-stream or none) or a name; 0 none, 1 zlib,
 * 2 zstd (docs/transport.md). */
static int get_compress(struct ctx *x, struct json_object *v, const char *key,
                        int *out) {
  static const char *const names[] = {"none", "zlib-stream", "zstd-stream"};

  if (!json_object_is_type(v, json_type_string))
    return get_bool(x, v, key, out);
  for (int i = 0; i < 3; i++)
    if (strcmp(json_object_get_string(v), names[i]) == 0)
      return (*out = i), 0;
  return fail(x, key,
              "must be true or false, or one of \"zlib-stream\", "
              "\"zstd-stream\", \"none\"");
}

/* An integer in [min, max]. */
static int get_int(struct ctx *x, struct json_object *v, const char *key,
                   int64_t min, int64_t max, int64_t *out) {
  int64_t n;

  if (!json_object_is_type(v, json_type_int))
    return fail(x, key, "must be a whole number");
  errno = 0;
  n = json_object_get_int64(v);
  if (errno != 0 || n < min || n > max)
    return fail(x, key, "must be between %lld and %lld", (long long)min,
                (long long)max);
  *out = n;
  return 0;
}

/* A copy of `p`, made absolute against the config's directory when it is
 * relative, or NULL without memory. */
static char *resolve_path(struct ctx *x, const char *p) {
  char *out;
  size_t n;

  if (p[0] == '/' || x->dir == NULL)
    return strdup(p);
  n = strlen(x->dir) + 1 + strlen(p) + 1;
  if ((out = malloc(n)) != NULL)
    snprintf(out, n, "%s/%s", x->dir, p);
  return out;
}

static int set_path(struct ctx *x, struct json_object *v, const char *key,
                    char **out) {
  const char *s = NULL;

  if (get_string(x, v, key, &s) != 0)
    return -1;
  if ((*out = resolve_path(x, s)) == NULL)
    return fail(x, key, "out of memory");
  return 0;
}

static int set_string(struct ctx *x, struct json_object *v, const char *key,
                      char **out) {
  const char *s = NULL;

  if (get_string(x, v, key, &s) != 0)
    return -1;
  if ((*out = strdup(s)) == NULL)
    return fail(x, key, "out of memory");
  return 0;
}

static int parse_intents(struct ctx *x, struct json_object *v,
                         struct cli_config *cfg) {
  char why[256];
  uint64_t bits = 0, one;

  if (json_object_is_type(v, json_type_int)) {
    int64_t n;

    if (get_int(x, v, "intents", 0, INT64_MAX, &n) != 0)
      return -1;
    if (((uint64_t)n & ~DGW_INTENTS_ALL) != 0)
      return fail(x, "intents",
                  "%lld sets bits Discord does not define (it would close "
                  "with 4013)",
                  (long long)n);
    cfg->intents = (uint64_t)n;
    return 0;
  }
  if (json_object_is_type(v, json_type_string)) {
    if (dgw_intents_parse(json_object_get_string(v), &bits, why, sizeof(why)) !=
        DGW_OK)
      return fail(x, "intents", "%s", why);
    cfg->intents = bits;
    return 0;
  }
  if (!json_object_is_type(v, json_type_array))
    return fail(x, "intents",
                "must be a number, a string or an array of names, e.g. "
                "[\"GUILDS\", \"GUILD_MESSAGES\"]");
  for (size_t i = 0; i < json_object_array_length(v); i++) {
    struct json_object *e = json_object_array_get_idx(v, i);

    if (!json_object_is_type(e, json_type_string))
      return fail(x, "intents", "entry %zu is not a name", i);
    if (dgw_intents_parse(json_object_get_string(e), &one, why, sizeof(why)) !=
        DGW_OK)
      return fail(x, "intents", "%s", why);
    bits |= one;
  }
  cfg->intents = bits;
  return 0;
}

static int parse_shards(struct ctx *x, struct json_object *v,
                        struct cli_config *cfg) {
  int64_t first = 0, count, total;

  if (json_object_is_type(v, json_type_string)) {
    if (strcmp(json_object_get_string(v), "auto") != 0)
      return fail(x, "shards",
                  "must be \"auto\", a count or "
                  "{\"first\", \"count\", \"total\"}");
    cfg->shards_auto = 1;
    return 0;
  }
  if (json_object_is_type(v, json_type_int)) {
    if (get_int(x, v, "shards", 1, 65535, &total) != 0)
      return -1;
    cfg->shard_first = 0;
    cfg->shard_count = cfg->shard_total = (uint32_t)total;
    return 0;
  }
  if (!json_object_is_type(v, json_type_object))
    return fail(x, "shards",
                "must be \"auto\", a count or "
                "{\"first\", \"count\", \"total\"}");
  json_object_object_foreach(v, key, val) {
    if (strcmp(key, "first") == 0) {
      if (get_int(x, val, "shards.first", 0, 65534, &first) != 0)
        return -1;
    } else if (strcmp(key, "count") != 0 && strcmp(key, "total") != 0) {
      return fail(x, "shards", "unknown key \"%s\" (first, count, total)", key);
    }
  }
  {
    struct json_object *c, *t;

    if (!json_object_object_get_ex(v, "total", &t))
      return fail(x, "shards", "\"total\" is required");
    if (get_int(x, t, "shards.total", 1, 65535, &total) != 0)
      return -1;
    if (!json_object_object_get_ex(v, "count", &c))
      count = total - first;
    else if (get_int(x, c, "shards.count", 1, 65535, &count) != 0)
      return -1;
  }
  if (first + count > total || count < 1)
    return fail(x, "shards",
                "first %lld + count %lld goes past total %lld (shard ids are "
                "0 .. total-1)",
                (long long)first, (long long)count, (long long)total);
  cfg->shard_first = (uint32_t)first;
  cfg->shard_count = (uint32_t)count;
  cfg->shard_total = (uint32_t)total;
  return 0;
}

static int parse_plugins(struct ctx *x, struct json_object *v,
                         struct cli_config *cfg) {
  size_t n;

  if (!json_object_is_type(v, json_type_array))
    return fail(x, "plugins",
                "must be an array of names or {\"name\"|\"path\", "
                "\"config\"} objects");
  n = json_object_array_length(v);
  if (n == 0)
    return 0;
  cfg->plugins = calloc(n, sizeof(*cfg->plugins));
  if (cfg->plugins == NULL)
    return fail(x, "plugins", "out of memory");
  for (size_t i = 0; i < n; i++) {
    struct json_object *e = json_object_array_get_idx(v, i);
    struct cli_plugin *p = &cfg->plugins[cfg->nplugins];
    const char *name = NULL, *path = NULL, *conf = "{}";
    char key[32];

    snprintf(key, sizeof(key), "plugins[%zu]", i);
    if (json_object_is_type(e, json_type_string)) {
      name = json_object_get_string(e);
    } else if (json_object_is_type(e, json_type_object)) {
      json_object_object_foreach(e, k, val) {
        if (strcmp(k, "name") == 0) {
          if (get_string(x, val, key, &name) != 0)
            return -1;
        } else if (strcmp(k, "path") == 0) {
          if (get_string(x, val, key, &path) != 0)
            return -1;
        } else if (strcmp(k, "config") == 0) {
          if (!json_object_is_type(val, json_type_object))
            return fail(x, key, "\"config\" must be a JSON object");
          conf = json_object_to_json_string_ext(val, JSON_C_TO_STRING_PLAIN);
        } else {
          return fail(x, key, "unknown key \"%s\" (name, path, config)", k);
        }
      }
    } else {
      return fail(x, key, "must be a name or an object");
    }
    if ((name == NULL) == (path == NULL))
      return fail(x, key, "give either \"name\" or \"path\"");
    if (name != NULL && (*name == '\0' || strchr(name, '/') != NULL))
      return fail(x, key,
                  "a name has no '/' (use \"path\" for a shared object)");
    p->name_or_path = path != NULL ? resolve_path(x, path) : strdup(name);
    p->config_json = strdup(conf);
    cfg->nplugins++;
    if (p->name_or_path == NULL || p->config_json == NULL)
      return fail(x, key, "out of memory");
  }
  return 0;
}

/* The token: from the variable named by token_env (default DISCORD_TOKEN),
 * or from "token" in the file when the file is readable by its owner only. */
static int find_token(struct ctx *x, struct json_object *root,
                      struct cli_config *cfg,
                      char *(*getenv_fn)(const char *)) {
  struct json_object *v;
  const char *env = DEFAULT_TOKEN_ENV;
  const char *token = NULL;
  int rv =
      config_ops_token(x->path, x->dir, root, &cfg->token, x->why, x->why_size);

  if (rv <= 0)
    return rv; /* "token_file": read, or refused */
  if (json_object_object_get_ex(root, "token", &v)) {
    struct stat st;

    if (json_object_object_get_ex(root, "token_env", NULL))
      return fail(x, "token", "give \"token\" or \"token_env\", not both");
    if (get_string(x, v, "token", &token) != 0)
      return -1;
    if (stat(x->path, &st) != 0 || (st.st_mode & 077) != 0)
      return fail(x, "token",
                  "a token in a file others can read is refused; put it in "
                  "an environment variable (\"token_env\") or chmod 600 "
                  "the file");
  } else {
    if (json_object_object_get_ex(root, "token_env", &v) &&
        get_string(x, v, "token_env", &env) != 0)
      return -1;
    token = getenv_fn(env);
    if (token == NULL || *token == '\0')
      return fail(x, "token_env",
                  "the environment variable %s is not set (it must hold the "
                  "bot token)",
                  env);
  }
  if (strncmp(token, "Bot ", 4) == 0)
    token += 4; /* a common paste; dgw adds the prefix itself */
  if (strpbrk(token, " \t\r\n\"\\") != NULL)
    return fail(x, "token",
                "contains spaces, quotes or line breaks; is it "
                "the whole token and nothing else?");
  if ((cfg->token = strdup(token)) == NULL)
    return fail(x, "token", "out of memory");
  return 0;
}

static int parse_root(struct ctx *x, struct json_object *root,
                      struct cli_config *cfg,
                      char *(*getenv_fn)(const char *)) {
  int have_intents = 0, have_shards = 0;
  int64_t n;

  json_object_object_foreach(root, key, v) {
    int rv = 0;

    if (strcmp(key, "token") == 0 || strcmp(key, "token_env") == 0) {
      continue; /* find_token() */
    } else if (strcmp(key, "intents") == 0) {
      have_intents = 1;
      rv = parse_intents(x, v, cfg);
    } else if (strcmp(key, "shards") == 0) {
      have_shards = 1;
      rv = parse_shards(x, v, cfg);
    } else if (strcmp(key, "gateway_url") == 0) {
      rv = set_string(x, v, key, &cfg->gateway_url);
    } else if (strcmp(key, "api_url") == 0) {
      rv = set_string(x, v, key, &cfg->api_url);
    } else if (strcmp(key, "ca_file") == 0) {
      rv = set_path(x, v, key, &cfg->ca_file);
    } else if (strcmp(key, "session_file") == 0) {
      rv = set_path(x, v, key, &cfg->session_file);
    } else if (strcmp(key, "compress") == 0) {
      rv = get_compress(x, v, key, &cfg->compress);
    } else if (strcmp(key, "plugins_strict") == 0) {
      rv = get_bool(x, v, key, &cfg->plugins_strict);
    } else if (strcmp(key, "lazy_connect") == 0) {
      if (json_object_is_type(v, json_type_boolean)) {
        cfg->lazy_connect = json_object_get_boolean(v);
      } else if (json_object_is_type(v, json_type_int)) {
        if ((rv = get_int(x, v, key, 1, DGW_LAZY_LEAD_MAX_MS, &n)) == 0) {
          cfg->lazy_connect = 1;
          cfg->lazy_lead_ms = (uint32_t)n;
        }
      } else {
        rv = fail(x, key, "must be true, false or the lead in ms (1..%u)",
                  (unsigned)DGW_LAZY_LEAD_MAX_MS);
      }
    } else if (strcmp(key, "quiet_sleep_ms") == 0) {
      rv = get_int(x, v, key, 0, DGW_QUIET_SLEEP_MAX_MS, &cfg->quiet_sleep_ms);
    } else if (strcmp(key, "large_threshold") == 0) {
      if ((rv = get_int(x, v, key, 50, 250, &n)) == 0)
        cfg->large_threshold = (int)n;
    } else if (strcmp(key, "presence") == 0) {
      if (!json_object_is_type(v, json_type_object))
        rv = fail(x, key, "must be a presence object ({\"status\": ...})");
      else if ((cfg->presence_json = strdup(json_object_to_json_string_ext(
                    v, JSON_C_TO_STRING_PLAIN))) == NULL)
        rv = fail(x, key, "out of memory");
    } else if (strcmp(key, "plugins") == 0) {
      rv = parse_plugins(x, v, cfg);
    } else if (strcmp(key, "log_level") == 0) {
      const char *s = NULL;
      int level;

      if ((rv = get_string(x, v, key, &s)) == 0) {
        if ((level = cli_log_level(s)) < 0)
          rv = fail(x, key,
                    "must be \"error\", \"warn\", \"info\" or "
                    "\"debug\"");
        else
          cfg->log_level = (enum dgw_log_level)level;
      }
    } else if ((rv = config_ops_key(x->path, key, v, &cfg->ops, x->why,
                                    x->why_size)) <= 0) {
      /* an operations key (config_ops.c), parsed or refused */
    } else if ((rv = config_cluster_key(x->path, key, v, &cfg->cluster, x->why,
                                        x->why_size)) <= 0) {
      /* "cluster" (config_cluster.c), parsed or refused */
    } else {
      rv = fail(x, NULL,
                "unknown key \"%s\" (see docs/cli.md for the keys; a typo "
                "must not fall back to a default silently)",
                key);
    }
    if (rv != 0)
      return -1;
  }
  if (cfg->ca_file != NULL && access(cfg->ca_file, R_OK) != 0)
    return fail(x, "ca_file", "cannot read %s: %s", cfg->ca_file,
                strerror(errno));
  if (cfg->session_file != NULL) {
    /* Found out now, not at the graceful stop that needs it. */
    char *dir = strdup(cfg->session_file);
    char *slash = dir != NULL ? strrchr(dir, '/') : NULL;
    int ok;

    if (dir == NULL)
      return fail(x, "session_file", "out of memory");
    if (slash == dir)
      slash[1] = '\0';
    else if (slash != NULL)
      *slash = '\0';
    ok = access(slash != NULL ? dir : ".", W_OK) == 0;
    if (!ok)
      fail(x, "session_file", "cannot write in %s: %s",
           slash != NULL ? dir : ".", strerror(errno));
    free(dir);
    if (!ok)
      return -1;
  }
  if (!have_intents)
    return fail(x, "intents",
                "required: the events the bot wants, e.g. [\"GUILDS\", "
                "\"GUILD_MESSAGES\"] (or 0 for none)");
  if (!have_shards) {
    /* Discord's own gateway: ask it how many; a gateway of one's own (a
     * proxy, the mock): one shard. */
    if (cfg->gateway_url == NULL)
      cfg->shards_auto = 1;
    else
      cfg->shard_count = cfg->shard_total = 1;
  }
  return find_token(x, root, cfg, getenv_fn);
}

int cli_config_load(const char *path, struct cli_config *cfg,
                    char *(*getenv_fn)(const char *), char *why,
                    size_t why_size) {
  struct ctx x = {path, NULL, why, why_size};
  struct json_object *root;
  const char *slash;
  char *text;
  size_t len;
  int rv = -1;

  memset(cfg, 0, sizeof(*cfg));
  cfg->compress = 1;
  cfg->plugins_strict = 1;
  cfg->lazy_connect = -1;
  cfg->quiet_sleep_ms = -1;
  cfg->log_level = DGW_LOG_INFO;
  if ((slash = strrchr(path, '/')) != NULL &&
      (x.dir = strndup(path, slash == path ? 1 : (size_t)(slash - path))) ==
          NULL)
    return fail(&x, NULL, "out of memory");
  if ((text = read_text(&x, &len)) == NULL)
    goto out;
  root = parse_text(&x, text, len);
  free(text);
  if (root == NULL)
    goto out;
  rv = parse_root(&x, root, cfg, getenv_fn);
  json_object_put(root);
out:
  free(x.dir);
  if (rv != 0)
    cli_config_free(cfg);
  return rv;
}

int cli_config_apply(const struct cli_config *cfg, struct dgw_options *opt,
                     char *why, size_t why_size) {
  const char *what = NULL;
  int rv = DGW_OK;

#define TRY(call, name)                                                        \
  do {                                                                         \
    if (rv == DGW_OK && (rv = (call)) != DGW_OK)                               \
      what = (name);                                                           \
  } while (0)
  TRY(dgw_options_set_token(opt, cfg->token), "token");
  TRY(dgw_options_set_intents(opt, cfg->intents), "intents");
  if (cfg->shards_auto)
    TRY(dgw_options_set_shards_auto(opt), "shards");
  else
    TRY(dgw_options_set_shards(opt, cfg->shard_first, cfg->shard_count,
                               cfg->shard_total),
        "shards");
  if (cfg->gateway_url != NULL)
    TRY(dgw_options_set_gateway_url(opt, cfg->gateway_url), "gateway_url");
  if (cfg->api_url != NULL)
    TRY(dgw_options_set_api_url(opt, cfg->api_url), "api_url");
  if (cfg->ca_file != NULL)
    TRY(dgw_options_set_ca_file(opt, cfg->ca_file), "ca_file");
  TRY(cfg->compress == 2 ? dgw_options_set_compression(opt, "zstd-stream")
                         : dgw_options_set_compress(opt, cfg->compress),
      "compress");
  if (cfg->large_threshold != 0)
    TRY(dgw_options_set_large_threshold(opt, cfg->large_threshold),
        "large_threshold");
  if (cfg->presence_json != NULL)
    TRY(dgw_options_set_presence_json(opt, cfg->presence_json), "presence");
  if (cfg->lazy_connect >= 0)
    TRY(dgw_options_set_lazy_connect(opt, cfg->lazy_connect, cfg->lazy_lead_ms),
        "lazy_connect");
  if (cfg->quiet_sleep_ms >= 0)
    TRY(dgw_options_set_quiet_sleep(opt, (uint32_t)cfg->quiet_sleep_ms),
        "quiet_sleep_ms");
  TRY(dgw_options_set_plugins_strict(opt, cfg->plugins_strict),
      "plugins_strict");
#undef TRY
  if (rv == DGW_OK && config_cluster_apply(&cfg->cluster, opt, why, why_size))
    return -1;
  if (rv != DGW_OK) {
    snprintf(why, why_size, "%s: %s", what,
             rv == DGW_ERR_URL ? "not a ws:// or wss:// URL (or an http(s) "
                                 "URL for api_url) without a query"
                               : dgw_strerror(rv));
    return -1;
  }
  return 0;
}

void cli_config_free(struct cli_config *cfg) {
  if (cfg->token != NULL) {
    /* The token does not outlive its use in memory we free. */
    volatile char *t = cfg->token;

    while (*t != '\0')
      *t++ = '\0';
    free(cfg->token);
  }
  free(cfg->gateway_url);
  free(cfg->api_url);
  free(cfg->ca_file);
  free(cfg->presence_json);
  free(cfg->session_file);
  for (size_t i = 0; i < cfg->nplugins; i++) {
    free(cfg->plugins[i].name_or_path);
    free(cfg->plugins[i].config_json);
  }
  free(cfg->plugins);
  config_ops_free(&cfg->ops);
  config_cluster_free(&cfg->cluster);
  memset(cfg, 0, sizeof(*cfg));
}
