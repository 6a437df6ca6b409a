#include "config.h"

/*
 * Scripted events: the dispatches every session gets after its READY, in
 * order (dgw_mock_add_dispatch(), or a file of JSON lines as dgw record
 * and the log plugin write them), and their pacing on each connection
 * (cfg.dispatch_interval_ms).  The position in the script belongs to the
 * session, so a resumed session goes on where it stopped.
 */

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/event.h>

#include <json-c/json.h>

#include "clock.h"
#include "mock_int.h"

/* ------------------------------------------------------------------- pacing */

/* Sends the session's next scripted dispatch (all the rest when there is
 * no interval), rearming the timer while more remain. */
static void conn_script_next(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  uint32_t interval = mock->cfg.dispatch_interval_ms;

  for (;;) {
    struct mock_session *s = conn->session;
    struct mock_dispatch *next;
    if (s == NULL || !mock_conn_can_send(conn))
      return;
    next = s->script_last != NULL ? s->script_last->next : mock->script;
    /* One the session's intents leave out is still done with. */
    if (next == NULL ||
        mock_session_dispatch(s, next->t, next->d_json, NULL) < 0)
      return;
    s->script_last = next;
    if (interval > 0) {
      struct timeval tv = dgw_timeval_ms(interval);
      if (next->next != NULL && conn->dispatch_timer != NULL)
        evtimer_add(conn->dispatch_timer, &tv);
      return;
    }
  }
}

void mock_script_timer_cb(evutil_socket_t fd, short what, void *arg) {
  struct dgw_mock_conn *conn = arg;

  (void)fd;
  (void)what;
  mock_conn_enter(conn);
  conn_script_next(conn);
  mock_conn_leave(conn);
}

/* Goes on with the session's script where it stopped: after READY from
 * the start, after RESUMED from the first entry not yet sent. */
void mock_conn_script_continue(struct dgw_mock_conn *conn) {
  struct dgw_mock *mock = conn->mock;
  struct mock_session *s = conn->session;
  uint32_t interval = mock->cfg.dispatch_interval_ms;
  struct mock_dispatch *next;

  if (s == NULL)
    return;
  next = s->script_last != NULL ? s->script_last->next : mock->script;
  if (next == NULL)
    return;
  if (interval == 0) {
    conn_script_next(conn);
  } else if (conn->dispatch_timer != NULL) {
    struct timeval tv = dgw_timeval_ms(interval);
    evtimer_add(conn->dispatch_timer, &tv);
  }
}

/* --------------------------------------------------------------- the script */

/* A new script entry, or NULL (with *rv set).  `d` is `d_json` parsed
 * (NULL for null). */
static struct mock_dispatch *dispatch_new(const struct dgw_mock *mock,
                                          const char *t, const char *d_json,
                                          json_object *d, int *rv) {
  struct mock_dispatch *disp = calloc(1, sizeof *disp);
  json_object *id;

  /* cfg.complete_payloads: the fields Discord always sends (shapes.c). */
  if (mock->cfg.complete_payloads && d != NULL && mock_shape_complete(t, d) > 0)
    d_json = mock_json_plain(d);

  if (disp == NULL || (disp->t = mock_strdup(t)) == NULL ||
      (disp->d_json = mock_strdup(d_json)) == NULL) {
    if (disp != NULL)
      free(disp->t);
    free(disp);
    *rv = DGW_ERR_NOMEM;
    return NULL;
  }
  if (strcmp(t, "GUILD_CREATE") == 0 && d != NULL &&
      json_object_object_get_ex(d, "id", &id) &&
      json_object_is_type(id, json_type_string))
    disp->guild_id = json_object_get(id);
  return disp;
}

static void dispatch_list_free(struct mock_dispatch *disp) {
  struct mock_dispatch *next;

  for (; disp != NULL; disp = next) {
    next = disp->next;
    free(disp->t);
    free(disp->d_json);
    json_object_put(disp->guild_id);
    free(disp);
  }
}

void mock_script_free(struct dgw_mock *mock) {
  dispatch_list_free(mock->script);
  mock->script = mock->script_tail = NULL;
}

static void script_append(struct dgw_mock *mock, struct mock_dispatch *first,
                          struct mock_dispatch *last) {
  if (mock->script_tail != NULL)
    mock->script_tail->next = first;
  else
    mock->script = first;
  mock->script_tail = last;
}

int dgw_mock_add_dispatch(struct dgw_mock *mock, const char *t,
                          const char *d_json) {
  struct mock_dispatch *disp;
  json_object *d;
  int ok, rv = DGW_OK;

  if (mock == NULL || t == NULL || t[0] == '\0' || d_json == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  d = mock_json_parse_exact(d_json, strlen(d_json), &ok);
  if (!ok)
    return DGW_ERR_JSON;
  disp = dispatch_new(mock, t, d_json, d, &rv);
  json_object_put(d);
  if (disp == NULL)
    return rv;
  script_append(mock, disp, disp);
  return DGW_OK;
}

/* Reads a whole file into a NUL-terminated heap buffer. */
static char *read_file(const char *path, size_t *len_out) {
  FILE *f = fopen(path, "rb");
  char *buf = NULL;
  size_t len = 0, cap = 0;

  if (f == NULL)
    return NULL;
  for (;;) {
    size_t n;
    if (cap - len < 4096) {
      char *p;
      cap = cap ? cap * 2 : 8192;
      if ((p = realloc(buf, cap)) == NULL) {
        free(buf);
        fclose(f);
        return NULL;
      }
      buf = p;
    }
    n = fread(buf + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0)
      break;
  }
  if (ferror(f)) {
    free(buf);
    fclose(f);
    return NULL;
  }
  fclose(f);
  buf[len] = '\0';
  *len_out = len;
  return buf;
}

int dgw_mock_load_script(struct dgw_mock *mock, const char *path) {
  struct mock_dispatch *first = NULL, *last = NULL, *disp;
  size_t len, lineno = 0;
  char *buf, *line;
  int rv = DGW_OK;

  if (mock == NULL || path == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  buf = read_file(path, &len);
  if (buf == NULL) {
    mock_log(mock, DGW_LOG_ERROR, "cannot read script %s: %s", path,
             strerror(errno));
    return DGW_ERR_IO;
  }
  for (line = buf; rv == DGW_OK && line < buf + len;) {
    char *end = strchr(line, '\n');
    size_t line_len = end != NULL ? (size_t)(end - line) : strlen(line);
    json_object *root, *t, *d;
    int ok;

    lineno++;
    if (line_len > 0 && line[line_len - 1] == '\r')
      line_len--;
    if (strspn(line, " \t\r") >= line_len) {
      line = end != NULL ? end + 1 : buf + len;
      continue;
    }
    root = mock_json_parse_exact(line, line_len, &ok);
    if (root == NULL || !json_object_is_type(root, json_type_object) ||
        !json_object_object_get_ex(root, "t", &t) ||
        !json_object_is_type(t, json_type_string) ||
        json_object_get_string_len(t) == 0) {
      mock_log(mock, DGW_LOG_ERROR,
               "%s:%zu: not a {\"t\": NAME, \"d\": VALUE} JSON line", path,
               lineno);
      rv = DGW_ERR_JSON;
    } else if (strcmp(json_object_get_string(t), "READY") == 0 ||
               strcmp(json_object_get_string(t), "RESUMED") == 0) {
      /* A recording's session events: the mock makes its own. */
    } else {
      if (!json_object_object_get_ex(root, "d", &d))
        d = NULL;
      disp = dispatch_new(mock, json_object_get_string(t),
                          d != NULL ? mock_json_plain(d) : "null", d, &rv);
      if (disp != NULL) {
        if (last != NULL)
          last->next = disp;
        else
          first = disp;
        last = disp;
      }
    }
    json_object_put(root);
    line = end != NULL ? end + 1 : buf + len;
  }
  free(buf);
  if (rv != DGW_OK) {
    dispatch_list_free(first);
    return rv;
  }
  if (first != NULL)
    script_append(mock, first, last);
  mock_log(mock, DGW_LOG_DEBUG, "loaded script %s", path);
  return DGW_OK;
}
