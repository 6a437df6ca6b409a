/*
 * Saving and restoring sessions across a restart: on a graceful stop each
 * shard's session_id, sequence and resume URL go to a small JSON file, and
 * the next start RESUMEs them instead of identifying, saving session-start
 * budget across restarts and deploys.  A stale file costs nothing: the
 * gateway refuses the resume (op 9) and the shard identifies.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <json-c/json.h>

#include <dgw/dgw.h>

#include "client.h"
#include "cluster.h"
#include "gateway.h"
#include "why.h"

#define SESSION_FILE_VERSION 1

int dgw_client_stop_for_restart(struct dgw_client *c) {
  if (c == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  client_enter(c);
  client_cancel_rest(c);
  /* A cluster member's sessions live in Redis: it hands them over. */
  if (!client_cluster_stop(c))
    for (uint32_t i = 0; i < c->nshards && !client_dying(c); i++)
      gateway_close_keep_session(c->shards[i]);
  client_leave(c);
  return DGW_OK;
}

int dgw_client_save_sessions(struct dgw_client *c, const char *path, char *why,
                             size_t why_size) {
  struct json_object *root;
  struct json_object *list;
  const char *text;
  char tmp[4096];
  size_t len;
  int fd;
  int rv = DGW_OK;

  if (c == NULL || path == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  /* Sessions restored but never applied (GET /gateway/bot did not answer)
   * go back as they came: a second quick restart loses nothing. */
  if (c->pending_sessions != NULL) {
    root = json_object_get(c->pending_sessions);
    goto write;
  }
  root = json_object_new_object();
  list = json_object_new_array();
  json_object_object_add(root, "version",
                         json_object_new_int(SESSION_FILE_VERSION));
  json_object_object_add(root, "shard_total",
                         json_object_new_int64(c->opt.shard_total));
  for (uint32_t i = 0; i < c->nshards; i++) {
    struct dgw_gateway *gw = c->shards[i];
    struct json_object *e;

    if (dgw_gateway_session_id(gw) == NULL)
      continue; /* nothing to resume */
    e = json_object_new_object();
    json_object_object_add(e, "shard",
                           json_object_new_int64(dgw_gateway_shard_id(gw)));
    json_object_object_add(e, "session_id",
                           json_object_new_string(dgw_gateway_session_id(gw)));
    json_object_object_add(e, "seq",
                           json_object_new_int64(dgw_gateway_sequence(gw)));
    if (dgw_gateway_resume_url(gw) != NULL)
      json_object_object_add(
          e, "resume_gateway_url",
          json_object_new_string(dgw_gateway_resume_url(gw)));
    json_object_array_add(list, e);
  }
  json_object_object_add(root, "shards", list);
write:
  text = json_object_to_json_string_ext(
      root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE);
  len = strlen(text);

  /* Write a temporary file beside it and rename: a crash mid-write never
   * leaves a torn file where the next start looks. */
  if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp", path) >= sizeof(tmp)) {
    dgw_set_why(why, why_size, "path too long: %s", path);
    json_object_put(root);
    return DGW_ERR_INVALID_ARGUMENT;
  }
  fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0 || write(fd, text, len) != (ssize_t)len ||
      write(fd, "\n", 1) != 1 || fsync(fd) != 0) {
    dgw_set_why(why, why_size, "cannot write %s: %s", tmp, strerror(errno));
    rv = DGW_ERR_IO;
  }
  if (fd >= 0 && close(fd) != 0 && rv == DGW_OK) {
    dgw_set_why(why, why_size, "cannot write %s: %s", tmp, strerror(errno));
    rv = DGW_ERR_IO;
  }
  if (rv == DGW_OK && rename(tmp, path) != 0) {
    dgw_set_why(why, why_size, "cannot rename to %s: %s", path,
                strerror(errno));
    rv = DGW_ERR_IO;
  }
  if (rv != DGW_OK)
    unlink(tmp);
  json_object_put(root);
  return rv;
}

static int64_t get_int(struct json_object *o, const char *key, int64_t dflt) {
  struct json_object *v;

  if (json_object_object_get_ex(o, key, &v) &&
      json_object_is_type(v, json_type_int))
    return json_object_get_int64(v);
  return dflt;
}

static const char *get_str(struct json_object *o, const char *key) {
  struct json_object *v;

  if (json_object_object_get_ex(o, key, &v) &&
      json_object_is_type(v, json_type_string))
    return json_object_get_string(v);
  return NULL;
}

/* Whether entry `i` of `list` names a shard and a session id, and which
 * shard (`*shard`). */
static int plausible(struct json_object *list, size_t i, uint32_t *shard) {
  struct json_object *e = json_object_array_get_idx(list, i);
  int64_t id = get_int(e, "shard", -1);

  if (id < 0 || id > UINT32_MAX || get_str(e, "session_id") == NULL)
    return 0;
  *shard = (uint32_t)id;
  return 1;
}

/* Applies the entries of a session file to the shards; returns how many
 * shards were restored.  A shard listed more than once takes its last
 * well-formed entry (the file is read from the end; earlier entries for a
 * shard already restored are skipped) and counts once.  `path` is for the
 * log lines only. */
static uint32_t apply_sessions(struct dgw_client *c, struct json_object *root,
                               const char *path) {
  struct json_object *list;
  uint32_t *done; /* shards restored so far */
  uint32_t n = 0;
  size_t len;

  /* Sessions of another shard layout are of no use: identify instead. */
  if (get_int(root, "shard_total", -1) != (int64_t)c->opt.shard_total) {
    client_log(c, DGW_LOG_WARN,
               "%s: saved for another shard count; identifying instead", path);
    return 0;
  }
  json_object_object_get_ex(root, "shards", &list);
  len = json_object_array_length(list);
  if (len == 0)
    return 0;
  done = calloc(len, sizeof(*done));
  if (done == NULL) {
    client_log(c, DGW_LOG_WARN, "%s: out of memory; identifying instead", path);
    return 0;
  }
  for (size_t i = len; i-- > 0;) {
    struct json_object *e = json_object_array_get_idx(list, i);
    uint32_t shard;
    struct dgw_gateway *gw;
    int seen = 0;

    if (!plausible(list, i, &shard))
      continue;
    gw = dgw_client_gateway(c, shard);
    if (gw == NULL)
      continue; /* a shard this process does not run */
    for (uint32_t k = 0; k < n && !seen; k++)
      seen = done[k] == shard;
    if (seen)
      continue; /* a later entry for this shard won */
    if (gateway_restore_session(gw, get_str(e, "session_id"),
                                get_int(e, "seq", -1),
                                get_str(e, "resume_gateway_url")) == DGW_OK)
      done[n++] = shard;
    else
      client_log(c, DGW_LOG_WARN,
                 "%s: an entry of shard %u's saved session is malformed; "
                 "skipped",
                 path, (unsigned)shard);
  }
  free(done);
  return n;
}

void client_drop_pending_sessions(struct dgw_client *c) {
  json_object_put(c->pending_sessions);
  c->pending_sessions = NULL;
  free(c->pending_sessions_path);
  c->pending_sessions_path = NULL;
}

void client_apply_pending_sessions(struct dgw_client *c) {
  uint32_t n;

  if (c->pending_sessions == NULL)
    return;
  n = apply_sessions(c, c->pending_sessions, c->pending_sessions_path);
  client_log(c, DGW_LOG_INFO, "%s: %u saved session(s) will resume",
             c->pending_sessions_path, (unsigned)n);
  client_drop_pending_sessions(c);
}

/* Shards with an entry that looks restorable, each counted once, for the
 * count reported before the shards exist. */
static uint32_t count_entries(struct json_object *list) {
  size_t len = json_object_array_length(list);
  uint32_t n = 0;

  for (size_t i = 0; i < len; i++) {
    uint32_t shard;
    uint32_t other;
    int later = 0;

    if (!plausible(list, i, &shard))
      continue;
    for (size_t j = i + 1; j < len && !later; j++)
      later = plausible(list, j, &other) && other == shard;
    if (!later)
      n++; /* the last entry of its shard */
  }
  return n;
}

int dgw_client_restore_sessions(struct dgw_client *c, const char *path,
                                uint32_t *restored, char *why,
                                size_t why_size) {
  struct json_object *root;
  struct json_object *list;
  uint32_t n;

  if (restored != NULL)
    *restored = 0;
  if (c == NULL || path == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (c->started)
    return DGW_ERR_STATE;
  root = json_object_from_file(path);
  if (root == NULL) {
    dgw_set_why(why, why_size, "cannot read %s: %s", path,
                access(path, R_OK) != 0 ? strerror(errno) : "not JSON");
    return access(path, R_OK) != 0 ? DGW_ERR_IO : DGW_ERR_JSON;
  }
  if (get_int(root, "version", 0) != SESSION_FILE_VERSION ||
      !json_object_object_get_ex(root, "shards", &list) ||
      !json_object_is_type(list, json_type_array)) {
    dgw_set_why(why, why_size, "%s is not a dgw session file (version %d)",
                path, SESSION_FILE_VERSION);
    json_object_put(root);
    return DGW_ERR_JSON;
  }
  if (client_rest_pending(c)) {
    /* The shard count or the gateway URL (which a resume URL is checked
     * against) comes with GET /gateway/bot: keep the file until then. */
    char *copy = strdup(path);

    if (copy == NULL) {
      json_object_put(root);
      return DGW_ERR_NOMEM;
    }
    client_drop_pending_sessions(c);
    c->pending_sessions = root;
    c->pending_sessions_path = copy;
    n = count_entries(list);
  } else {
    n = apply_sessions(c, root, path);
    json_object_put(root);
  }
  if (restored != NULL)
    *restored = n;
  return DGW_OK;
}
