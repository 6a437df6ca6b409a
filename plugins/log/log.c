/*
 * log: writes DISPATCH events as JSON lines, one per event,
 *
 *   {"shard":0,"seq":42,"t":"MESSAGE_CREATE","d":{...}}
 *
 * with `d` copied as the gateway sent it (never parsed), to a file or to
 * standard output.  Config (all optional):
 *
 *   {"path": "/var/log/bot/events.jsonl",   file to append to; "-" or
 *                                            absent: standard output
 *    "events": ["MESSAGE_CREATE", ...]}      events to write; absent: all
 *
 * Only the events listed are subscribed to, so the others cost nothing.
 * Each line is flushed as it is written, so `tail -f` sees it at once.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include <dgw/plugin.h>

struct log_state {
  const struct dgw_plugin_host *host;
  FILE *out;
  int own_file; /* opened by us: fclose at fini */
  int failed;   /* a write failed; said once */
  uint64_t lines;
};

/* Writes `s` as a JSON string. */
static void put_json_string(FILE *out, const char *s) {
  putc('"', out);
  for (const unsigned char *p = (const unsigned char *)s; *p != '\0'; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(out, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(out, "\\u%04x", *p);
    else
      putc(*p, out);
  }
  putc('"', out);
}

/* Writes raw JSON text; CR and LF can only be whitespace between tokens in
 * valid JSON, so they become spaces and the line stays one line. */
static void put_raw(FILE *out, const char *d, size_t len) {
  if (memchr(d, '\n', len) == NULL && memchr(d, '\r', len) == NULL) {
    fwrite(d, 1, len, out);
    return;
  }
  for (size_t i = 0; i < len; i++)
    putc(d[i] == '\n' || d[i] == '\r' ? ' ' : d[i], out);
}

static void log_dispatch(void *state, struct dgw_gateway *gw,
                         const struct dgw_event *ev) {
  struct log_state *st = state;
  const struct dgw_plugin_host *h = st->host;
  size_t len;
  const char *d = h->event_data(ev, &len);

  (void)gw;
  fprintf(st->out,
          "{\"shard\":%u,\"seq\":%lld,\"t\":", (unsigned)h->event_shard(ev),
          (long long)h->event_seq(ev));
  put_json_string(st->out, h->event_name(ev));
  fputs(",\"d\":", st->out);
  put_raw(st->out, d, len);
  fputs("}\n", st->out);
  if (fflush(st->out) != 0 && !st->failed) {
    st->failed = 1;
    h->log(h, DGW_LOG_ERROR, "cannot write: %s", strerror(errno));
  }
  st->lines++;
}

/* Reads the config; subscribes.  0 or -1 (said why). */
static int configure(struct log_state *st, const char *config_json) {
  const struct dgw_plugin_host *h = st->host;
  struct json_object *cfg = json_tokener_parse(config_json);
  struct json_object *v;
  const char *path = NULL;
  int rv = -1;

  if (!json_object_is_type(cfg, json_type_object)) {
    h->log(h, DGW_LOG_ERROR, "config must be a JSON object");
    goto out;
  }
  if (json_object_object_get_ex(cfg, "path", &v)) {
    if (!json_object_is_type(v, json_type_string)) {
      h->log(h, DGW_LOG_ERROR, "config: \"path\" must be a string");
      goto out;
    }
    path = json_object_get_string(v);
  }
  if (json_object_object_get_ex(cfg, "events", &v)) {
    if (!json_object_is_type(v, json_type_array)) {
      h->log(h, DGW_LOG_ERROR, "config: \"events\" must be an array");
      goto out;
    }
    for (size_t i = 0; i < json_object_array_length(v); i++) {
      struct json_object *e = json_object_array_get_idx(v, i);

      if (!json_object_is_type(e, json_type_string) ||
          h->subscribe(h, json_object_get_string(e)) != DGW_OK) {
        h->log(h, DGW_LOG_ERROR, "config: events[%zu] is not an event name", i);
        goto out;
      }
    }
  } else if (h->subscribe(h, "*") != DGW_OK) {
    goto out;
  }
  if (path == NULL || strcmp(path, "-") == 0) {
    st->out = stdout;
  } else if ((st->out = fopen(path, "a")) == NULL) {
    h->log(h, DGW_LOG_ERROR, "cannot open %s: %s", path, strerror(errno));
    goto out;
  } else {
    st->own_file = 1;
  }
  h->log(h, DGW_LOG_INFO, "writing events to %s",
         st->own_file ? path : "standard output");
  rv = 0;
out:
  json_object_put(cfg);
  return rv;
}

static int log_init(const struct dgw_plugin_host *host, const char *config_json,
                    void **state) {
  struct log_state *st = calloc(1, sizeof(*st));

  if (st == NULL)
    return -1;
  st->host = host;
  if (configure(st, config_json) != 0) {
    free(st);
    return -1;
  }
  *state = st;
  return 0;
}

static void log_fini(void *state) {
  struct log_state *st = state;

  if (st->own_file)
    fclose(st->out);
  else
    fflush(st->out);
  st->host->log(st->host, DGW_LOG_DEBUG, "%llu events written",
                (unsigned long long)st->lines);
  free(st);
}

static const struct dgw_plugin descriptor = {
    .abi = DGW_PLUGIN_ABI,
    .size = sizeof(struct dgw_plugin),
    .name = "log",
    .version = "1.0.0",
    .description = "writes chosen events as JSON lines to a file or stdout",
    .events = NULL, /* from the config, in init */
    .init = log_init,
    .on_dispatch = log_dispatch,
    .on_lifecycle = NULL,
    .fini = log_fini,
};

const struct dgw_plugin *dgw_plugin_describe(void) {
  return &descriptor;
}
