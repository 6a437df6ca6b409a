/*
 * The operations keys of `dgw run`'s config: the metrics endpoint, the
 * log format, giving up after a long time offline, and the token read
 * from a file (systemd credentials).
 */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "config_ops.h"

/* A token file is a line; refuse anything bigger than this. */
#define TOKEN_FILE_MAX 4096

static int fail(char *why, size_t why_size, const char *path, const char *key,
                const char *fmt, ...) __attribute__((format(printf, 5, 6)));

static int fail(char *why, size_t why_size, const char *path, const char *key,
                const char *fmt, ...) {
  char msg[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(msg, sizeof(msg), fmt, ap);
  va_end(ap);
  if (why != NULL && why_size > 0)
    snprintf(why, why_size, "%s: %s: %s", path, key, msg);
  return -1;
}

static int parse_metrics(const char *path, struct json_object *v,
                         struct cli_ops *ops, char *why, size_t why_size) {
  struct json_object *listen;
  const char *s;

  if (!json_object_is_type(v, json_type_object) ||
      !json_object_object_get_ex(v, "listen", &listen) ||
      !json_object_is_type(listen, json_type_string))
    return fail(why, why_size, path, "metrics",
                "must be {\"listen\": \"127.0.0.1:9464\"} (host:port of the "
                "/metrics and /healthz endpoint)");
  s = json_object_get_string(listen);
  if (strrchr(s, ':') == NULL || strrchr(s, ':')[1] == '\0')
    return fail(why, why_size, path, "metrics",
                "\"listen\" must be host:port, e.g. \"127.0.0.1:9464\"; got "
                "\"%s\"",
                s);
  json_object_object_foreach(v, k, val) {
    (void)val;
    if (strcmp(k, "listen") != 0 && strcmp(k, "resume_budget_s") != 0)
      return fail(why, why_size, path, "metrics",
                  "unknown key \"%s\" (listen, resume_budget_s)", k);
  }
  free(ops->metrics_json);
  ops->metrics_json =
      strdup(json_object_to_json_string_ext(v, JSON_C_TO_STRING_PLAIN));
  if (ops->metrics_json == NULL)
    return fail(why, why_size, path, "metrics", "out of memory");
  return 0;
}

int config_ops_key(const char *path, const char *key, struct json_object *v,
                   struct cli_ops *ops, char *why, size_t why_size) {
  if (strcmp(key, "metrics") == 0)
    return parse_metrics(path, v, ops, why, why_size);
  if (strcmp(key, "log_format") == 0) {
    const char *s = json_object_is_type(v, json_type_string)
                        ? json_object_get_string(v)
                        : "";

    if (strcmp(s, "json") != 0 && strcmp(s, "text") != 0)
      return fail(why, why_size, path, key, "must be \"text\" or \"json\"");
    ops->log_json = strcmp(s, "json") == 0;
    return 0;
  }
  if (strcmp(key, "give_up_after_s") == 0 ||
      strcmp(key, "offline_reminder_s") == 0) {
    int64_t n;

    if (!json_object_is_type(v, json_type_int) ||
        (n = json_object_get_int64(v)) < 0 || n > 31536000)
      return fail(why, why_size, path, key,
                  "must be a whole number of seconds between 0 (%s) and "
                  "31536000",
                  key[0] == 'g' ? "never" : "the default, 300");
    if (key[0] == 'g')
      ops->give_up_after_s = (uint32_t)n;
    else
      ops->reminder_s = (uint32_t)n;
    return 0;
  }
  if (strcmp(key, "token_file") == 0)
    return 0; /* config_ops_token() */
  return 1;
}

/* Reads at most TOKEN_FILE_MAX bytes of `file` into a NUL-terminated
 * buffer; NULL with errno set. */
static char *read_small(const char *file) {
  char *buf = malloc(TOKEN_FILE_MAX + 1);
  size_t len = 0;
  int fd;

  if (buf == NULL)
    return NULL;
  if ((fd = open(file, O_RDONLY | O_CLOEXEC)) < 0) {
    free(buf);
    return NULL;
  }
  while (len < TOKEN_FILE_MAX) {
    ssize_t n = read(fd, buf + len, TOKEN_FILE_MAX - len);

    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  buf[len] = '\0';
  return buf;
}

int config_ops_token(const char *path, const char *dir,
                     struct json_object *root, char **token, char *why,
                     size_t why_size) {
  struct json_object *v;
  const char *name, *base = getenv("CREDENTIALS_DIRECTORY");
  char file[4096];
  struct stat st;
  char *text, *t, *end;

  if (!json_object_object_get_ex(root, "token_file", &v))
    return 1;
  if (json_object_object_get_ex(root, "token", NULL) ||
      json_object_object_get_ex(root, "token_env", NULL))
    return fail(why, why_size, path, "token_file",
                "give one of \"token\", \"token_env\" and \"token_file\"");
  if (!json_object_is_type(v, json_type_string) ||
      json_object_get_string_len(v) == 0)
    return fail(why, why_size, path, "token_file",
                "must be a file name (relative to $CREDENTIALS_DIRECTORY "
                "when set, else to the config's directory)");
  name = json_object_get_string(v);
  if (name[0] != '/' && base != NULL && *base != '\0')
    snprintf(file, sizeof(file), "%s/%s", base, name);
  else if (name[0] != '/' && dir != NULL)
    snprintf(file, sizeof(file), "%s/%s", dir, name);
  else
    snprintf(file, sizeof(file), "%s", name);
  if (stat(file, &st) != 0)
    return fail(why, why_size, path, "token_file", "cannot read %s: %s", file,
                strerror(errno));
  if ((st.st_mode & 077) != 0)
    return fail(why, why_size, path, "token_file",
                "%s can be read by others; chmod 600 it (or use systemd's "
                "LoadCredential=)",
                file);
  if ((text = read_small(file)) == NULL)
    return fail(why, why_size, path, "token_file", "cannot read %s: %s", file,
                strerror(errno));
  t = text;
  end = t + strlen(t);
  while (end > t && (end[-1] == '\n' || end[-1] == '\r' || end[-1] == ' ' ||
                     end[-1] == '\t'))
    *--end = '\0';
  if (strncmp(t, "Bot ", 4) == 0)
    t += 4; /* a common paste; dgw adds the prefix itself */
  if (*t == '\0' || strpbrk(t, " \t\r\n\"\\") != NULL) {
    memset(text, 0, TOKEN_FILE_MAX + 1);
    free(text);
    return fail(why, why_size, path, "token_file",
                "%s must hold the token alone on one line", file);
  }
  *token = strdup(t);
  memset(text, 0, TOKEN_FILE_MAX + 1);
  free(text);
  if (*token == NULL)
    return fail(why, why_size, path, "token_file", "out of memory");
  return 0;
}

void config_ops_free(struct cli_ops *ops) {
  free(ops->metrics_json);
  memset(ops, 0, sizeof(*ops));
}
