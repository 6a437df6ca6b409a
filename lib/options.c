/* dgw_options and dgw_callbacks: configuration filled through setters. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <openssl/crypto.h>
#include <openssl/ssl.h>

#include <dgw/dgw.h>

#include "client.h"
#include "commands.h"
#include "decomp.h"
#include "url.h"

static void set_defaults(struct dgw_options *opt) {
  opt->compress = DGW_COMPRESSION_ZLIB;
  opt->shard_first = 0;
  opt->shard_count = 1;
  opt->shard_total = 1;
  opt->log_level = DGW_LOG_INFO;
  opt->backoff_base_ms = 1000;
  opt->backoff_max_ms = 60000;
  opt->healthy_ms = 60000;
  opt->invalid_min_ms = 1000;
  opt->invalid_max_ms = 5000;
  opt->connect_timeout_ms = 30000;
  opt->close_timeout_ms = 5000;
  opt->max_payload = 64u * 1024u * 1024u;
  opt->starts_remaining = -1;
  opt->max_connecting = DGW_DEFAULT_MAX_CONNECTING;
  opt->lazy_lead_ms = DGW_DEFAULT_LAZY_LEAD_MS;
  opt->quiet_sleep_ms = DGW_DEFAULT_QUIET_SLEEP_MS;
}

struct dgw_options *dgw_options_new(void) {
  struct dgw_options *opt = calloc(1, sizeof(*opt));

  if (opt == NULL)
    return NULL;
  set_defaults(opt);
  return opt;
}

static void wipe_free(char *s) {
  if (s != NULL) {
    OPENSSL_cleanse(s, strlen(s));
    free(s);
  }
}

void options_clear(struct dgw_options *opt) {
  wipe_free(opt->token);
  free(opt->gateway_url);
  free(opt->api_url);
  free(opt->ca_file);
  free(opt->presence_json);
  free(opt->properties_json);
  wipe_free(opt->cluster_redis); /* may hold a password */
  free(opt->cluster_name);
  SSL_CTX_free(opt->ssl_ctx); /* our reference only */
  memset(opt, 0, sizeof(*opt));
}

void dgw_options_free(struct dgw_options *opt) {
  if (opt == NULL)
    return;
  options_clear(opt);
  free(opt);
}

static int dup_field(char **field, const char *value) {
  char *copy = NULL;

  if (value != NULL && (copy = strdup(value)) == NULL)
    return DGW_ERR_NOMEM;
  if (field == NULL) {
    free(copy);
    return DGW_ERR_INVALID_ARGUMENT;
  }
  free(*field);
  *field = copy;
  return DGW_OK;
}

int options_copy(struct dgw_options *dst, const struct dgw_options *src) {
  *dst = *src;
  dst->token = NULL;
  dst->gateway_url = NULL;
  dst->api_url = NULL;
  dst->ca_file = NULL;
  dst->presence_json = NULL;
  dst->properties_json = NULL;
  dst->cluster_redis = NULL;
  dst->cluster_name = NULL;
  if (dup_field(&dst->cluster_redis, src->cluster_redis) != DGW_OK ||
      dup_field(&dst->cluster_name, src->cluster_name) != DGW_OK ||
      dup_field(&dst->token, src->token) != DGW_OK ||
      dup_field(&dst->gateway_url, src->gateway_url) != DGW_OK ||
      dup_field(&dst->api_url, src->api_url) != DGW_OK ||
      dup_field(&dst->ca_file, src->ca_file) != DGW_OK ||
      dup_field(&dst->presence_json, src->presence_json) != DGW_OK ||
      dup_field(&dst->properties_json, src->properties_json) != DGW_OK) {
    dst->ssl_ctx = NULL;
    options_clear(dst);
    return DGW_ERR_NOMEM;
  }
  if (dst->ssl_ctx != NULL)
    SSL_CTX_up_ref(dst->ssl_ctx);
  return DGW_OK;
}

int dgw_options_set_token(struct dgw_options *opt, const char *token) {
  char *copy;

  if (opt == NULL || token == NULL || *token == '\0')
    return DGW_ERR_INVALID_ARGUMENT;
  /* A token is one printable word; refusing anything else keeps it from
   * breaking the IDENTIFY JSON or a log line. */
  for (const char *p = token; *p; p++)
    if (*p <= 0x20 || *p >= 0x7f || *p == '"' || *p == '\\')
      return DGW_ERR_INVALID_ARGUMENT;
  if ((copy = strdup(token)) == NULL)
    return DGW_ERR_NOMEM;
  wipe_free(opt->token);
  opt->token = copy;
  return DGW_OK;
}

int dgw_options_set_intents(struct dgw_options *opt, uint64_t intents) {
  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->intents = intents;
  return DGW_OK;
}

int dgw_options_set_gateway_url(struct dgw_options *opt, const char *url) {
  struct dgw_url parsed;

  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (url != NULL && (dgw_url_parse(url, &parsed, NULL, 0) != DGW_OK ||
                      strchr(url, '?') != NULL))
    return DGW_ERR_URL;
  return dup_field(&opt->gateway_url, url);
}

int dgw_options_set_api_url(struct dgw_options *opt, const char *url) {
  struct dgw_url parsed;

  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  /* The route is appended to the base, so a query cannot come along. */
  if (url != NULL && (dgw_url_parse_http(url, &parsed, NULL, 0) != DGW_OK ||
                      strchr(url, '?') != NULL))
    return DGW_ERR_URL;
  return dup_field(&opt->api_url, url);
}

int dgw_options_set_compress(struct dgw_options *opt, int on) {
  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->compress = on != 0 ? DGW_COMPRESSION_ZLIB : DGW_COMPRESSION_NONE;
  return DGW_OK;
}

int dgw_options_set_compression(struct dgw_options *opt, const char *name) {
  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  return dgw_compression_parse(name, &opt->compress);
}

int dgw_options_set_ca_file(struct dgw_options *opt, const char *path) {
  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  return dup_field(&opt->ca_file, path);
}

int dgw_options_set_shards(struct dgw_options *opt, uint32_t first,
                           uint32_t count, uint32_t total) {
  if (opt == NULL || count == 0 || total == 0 || first >= total ||
      count > total - first)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->shard_first = first;
  opt->shard_count = count;
  opt->shard_total = total;
  opt->shards_auto = 0;
  return DGW_OK;
}

int dgw_options_set_shards_auto(struct dgw_options *opt) {
  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->shards_auto = 1;
  return DGW_OK;
}

int dgw_options_set_large_threshold(struct dgw_options *opt, int threshold) {
  if (opt == NULL || threshold < 50 || threshold > 250)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->large_threshold = threshold;
  return DGW_OK;
}

int dgw_options_set_presence_json(struct dgw_options *opt, const char *json) {
  struct json_object *obj;
  int is_object;

  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (json == NULL)
    return dup_field(&opt->presence_json, NULL);
  obj = json_tokener_parse(json);
  is_object = obj != NULL && json_object_is_type(obj, json_type_object);
  json_object_put(obj);
  if (!is_object)
    return DGW_ERR_JSON;
  return dup_field(&opt->presence_json, json);
}

int dgw_options_set_presence(struct dgw_options *opt,
                             const struct dgw_presence *presence, char *why,
                             size_t why_size) {
  struct json_object *obj;
  int err = DGW_OK;
  int rv;

  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (presence == NULL)
    return dup_field(&opt->presence_json, NULL);
  obj = dgw_presence_to_json(presence, &err, why, why_size);
  if (obj == NULL)
    return err;
  rv = dup_field(
      &opt->presence_json,
      json_object_to_json_string_ext(obj, JSON_C_TO_STRING_PLAIN |
                                              JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put(obj);
  return rv;
}

int dgw_options_set_log(struct dgw_options *opt, dgw_log_fn fn, void *user_data,
                        enum dgw_log_level max_level) {
  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->log = fn;
  opt->log_user_data = user_data;
  opt->log_level = max_level;
  return DGW_OK;
}

/* A property value: 1..64 bytes, no control character. */
static int property_ok(const char *v) {
  size_t n = v != NULL ? strlen(v) : 0;

  if (n == 0 || n > 64)
    return 0;
  for (const char *p = v; *p; p++)
    if ((unsigned char)*p < 0x20 || *p == 0x7f)
      return 0;
  return 1;
}

int dgw_options_set_identify_properties(struct dgw_options *opt, const char *os,
                                        const char *browser,
                                        const char *device) {
  struct json_object *props;
  int rv;

  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (os == NULL && browser == NULL && device == NULL)
    return dup_field(&opt->properties_json, NULL);
  if (!property_ok(os) || !property_ok(browser) || !property_ok(device))
    return DGW_ERR_INVALID_ARGUMENT;
  if ((props = json_object_new_object()) == NULL)
    return DGW_ERR_NOMEM;
  if (json_object_object_add(props, "os", json_object_new_string(os)) != 0 ||
      json_object_object_add(props, "browser",
                             json_object_new_string(browser)) != 0 ||
      json_object_object_add(props, "device", json_object_new_string(device)) !=
          0) {
    json_object_put(props);
    return DGW_ERR_NOMEM;
  }
  rv = dup_field(
      &opt->properties_json,
      json_object_to_json_string_ext(
          props, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
  json_object_put(props);
  return rv;
}

int dgw_options_set_ssl_ctx(struct dgw_options *opt, SSL_CTX *ctx) {
  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  if (ctx != NULL && !(SSL_CTX_get_verify_mode(ctx) & SSL_VERIFY_PEER)) {
    if (opt->log != NULL && opt->log_level >= DGW_LOG_ERROR)
      opt->log(DGW_LOG_ERROR,
               "dgw_options_set_ssl_ctx: refused: the SSL_CTX does not "
               "verify the peer (SSL_VERIFY_NONE); dgw needs SSL_VERIFY_PEER",
               opt->log_user_data);
    return DGW_ERR_INVALID_ARGUMENT;
  }
  if (ctx != NULL && SSL_CTX_up_ref(ctx) != 1)
    return DGW_ERR_NOMEM;
  SSL_CTX_free(opt->ssl_ctx);
  opt->ssl_ctx = ctx;
  return DGW_OK;
}

int dgw_options_set_dns_base(struct dgw_options *opt, struct evdns_base *dns) {
  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->dns_base = dns;
  return DGW_OK;
}

int dgw_options_set_reconnect(struct dgw_options *opt, uint32_t base_ms,
                              uint32_t max_ms, uint32_t healthy_ms) {
  if (opt == NULL || base_ms == 0 || max_ms < base_ms)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->backoff_base_ms = base_ms;
  opt->backoff_max_ms = max_ms;
  opt->healthy_ms = healthy_ms;
  return DGW_OK;
}

int dgw_options_set_invalid_session_wait(struct dgw_options *opt,
                                         uint32_t min_ms, uint32_t max_ms) {
  if (opt == NULL || max_ms < min_ms)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->invalid_min_ms = min_ms;
  opt->invalid_max_ms = max_ms;
  return DGW_OK;
}

int dgw_options_set_timeouts(struct dgw_options *opt, uint32_t connect_ms,
                             uint32_t close_ms) {
  if (opt == NULL || connect_ms == 0 || close_ms == 0)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->connect_timeout_ms = connect_ms;
  opt->close_timeout_ms = close_ms;
  opt->connect_timeout_set = 1;
  return DGW_OK;
}

int dgw_options_set_max_payload(struct dgw_options *opt, size_t bytes) {
  if (opt == NULL || bytes < 4096)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->max_payload = bytes;
  return DGW_OK;
}

int dgw_options_set_send_limit(struct dgw_options *opt, uint32_t budget,
                               uint32_t window_ms, size_t queue_capacity) {
  /* A budget must leave room for heartbeats and IDENTIFY next to
   * commands; 8 is the least that does with the reserve. */
  if (opt == NULL || budget < 8 || budget > 65536 || window_ms == 0 ||
      queue_capacity == 0 || queue_capacity > 65536)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->send_budget = budget;
  opt->send_window_ms = window_ms;
  opt->send_queue = queue_capacity;
  return DGW_OK;
}

int dgw_options_set_identify_limits(struct dgw_options *opt,
                                    uint32_t max_concurrency,
                                    uint32_t window_ms) {
  if (opt == NULL || max_concurrency == 0 || max_concurrency > 65536 ||
      window_ms == 0)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->identify_concurrency = max_concurrency;
  opt->identify_window_ms = window_ms;
  return DGW_OK;
}

int dgw_options_set_max_connecting(struct dgw_options *opt, uint32_t max) {
  if (opt == NULL || max > 65536)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->max_connecting = max;
  return DGW_OK;
}

int dgw_options_set_lazy_connect(struct dgw_options *opt, int on,
                                 uint32_t lead_ms) {
  if (opt == NULL || lead_ms > DGW_LAZY_LEAD_MAX_MS)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->lazy_lead_ms =
      !on ? 0 : (lead_ms != 0 ? lead_ms : DGW_DEFAULT_LAZY_LEAD_MS);
  return DGW_OK;
}

int dgw_options_set_quiet_sleep(struct dgw_options *opt, uint32_t quiet_ms) {
  if (opt == NULL || quiet_ms > DGW_QUIET_SLEEP_MAX_MS)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->quiet_sleep_ms = quiet_ms;
  return DGW_OK;
}

int dgw_options_set_session_start_limit(struct dgw_options *opt, int64_t total,
                                        int64_t remaining,
                                        uint64_t reset_after_ms) {
  if (opt == NULL || total < 0 || remaining < -1 ||
      (remaining >= 0 && total > 0 && remaining > total))
    return DGW_ERR_INVALID_ARGUMENT;
  opt->starts_total = total;
  opt->starts_remaining = remaining;
  opt->starts_reset_after_ms = reset_after_ms;
  return DGW_OK;
}

int dgw_options_set_plugins_strict(struct dgw_options *opt, int on) {
  if (opt == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  opt->plugins_strict = on != 0;
  return DGW_OK;
}

struct dgw_callbacks *dgw_callbacks_new(void) {
  return calloc(1, sizeof(struct dgw_callbacks));
}

void dgw_callbacks_free(struct dgw_callbacks *cb) {
  free(cb);
}

void dgw_callbacks_set_on_state(struct dgw_callbacks *cb, dgw_state_fn fn) {
  if (cb != NULL)
    cb->on_state = fn;
}

void dgw_callbacks_set_on_connecting(struct dgw_callbacks *cb,
                                     dgw_gateway_fn fn) {
  if (cb != NULL)
    cb->on_connecting = fn;
}

void dgw_callbacks_set_on_ready(struct dgw_callbacks *cb, dgw_gateway_fn fn) {
  if (cb != NULL)
    cb->on_ready = fn;
}

void dgw_callbacks_set_on_resumed(struct dgw_callbacks *cb, dgw_gateway_fn fn) {
  if (cb != NULL)
    cb->on_resumed = fn;
}

void dgw_callbacks_set_on_disconnect(struct dgw_callbacks *cb,
                                     dgw_disconnect_fn fn) {
  if (cb != NULL)
    cb->on_disconnect = fn;
}

void dgw_callbacks_set_on_fatal(struct dgw_callbacks *cb, dgw_fatal_fn fn) {
  if (cb != NULL)
    cb->on_fatal = fn;
}

void dgw_callbacks_set_on_network(struct dgw_callbacks *cb, dgw_network_fn fn) {
  if (cb != NULL)
    cb->on_network = fn;
}

void dgw_callbacks_set_on_client_fatal(struct dgw_callbacks *cb,
                                       dgw_client_fatal_fn fn) {
  if (cb != NULL)
    cb->on_client_fatal = fn;
}

void dgw_callbacks_set_on_dispatch(struct dgw_callbacks *cb,
                                   dgw_dispatch_fn fn) {
  if (cb != NULL)
    cb->on_dispatch = fn;
}
