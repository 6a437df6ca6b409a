/*
 * The public gateway commands: check and encode (commands.c), then send or
 * queue on the shard (gateway_command), and for the requests answered by
 * events, register the wait (requests.c).
 */
#include "config.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

#include "client.h"
#include "commands.h"
#include "gateway.h"
#include "requests.h"

/* The client's table of requests waiting for this shard's events. */
static struct dgw_requests *requests_of(struct dgw_gateway *gw) {
  return client_requests(dgw_gateway_client(gw), gw);
}

/* Queues an encoded payload with its completion (may be NULL) and frees
 * it.  (Callers encode first, in a statement of its own: argument
 * evaluation order is unspecified.) */
static int queue(struct dgw_gateway *gw, int rv, char *text, size_t len,
                 dgw_sent_fn on_sent, void *sent_user_data) {
  if (rv == DGW_OK)
    rv = gateway_command_cb(gw, text, len, on_sent, sent_user_data);
  free(text);
  return rv;
}

/* Reads a caller's size-first argument struct into `full` (zeroed, of
 * `full_size` bytes): the members past the caller's `size` read as 0, the
 * defaults.  A struct shorter than `min_size` (the members every version
 * has) is refused. */
static int args_in(void *full, size_t full_size, const void *in,
                   size_t min_size, char *why, size_t why_size) {
  size_t n;

  memset(full, 0, full_size);
  if (in == NULL || (n = *(const size_t *)in) < min_size) {
    if (why != NULL && why_size > 0)
      snprintf(why, why_size, "%s",
               in == NULL ? "no arguments"
                          : "the arguments' size is too small (set size to "
                            "sizeof the struct)");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  memcpy(full, in, n < full_size ? n : full_size);
  return DGW_OK;
}

static int refuse_closed(const struct dgw_gateway *gw) {
  enum dgw_state st = dgw_gateway_state(gw);

  return st == DGW_STATE_CLOSED || st == DGW_STATE_CLOSING ||
         st == DGW_STATE_FATAL;
}

static int update_presence(struct dgw_gateway *gw,
                           const struct dgw_presence *presence,
                           dgw_sent_fn on_sent, void *sent_user_data, char *why,
                           size_t why_size) {
  char *text = NULL;
  size_t len = 0;
  int rv;

  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rv = dgw_presence_encode(presence, &text, &len, why, why_size);
  return queue(gw, rv, text, len, on_sent, sent_user_data);
}

int dgw_gateway_update_presence(struct dgw_gateway *gw,
                                const struct dgw_presence *presence, char *why,
                                size_t why_size) {
  return update_presence(gw, presence, NULL, NULL, why, why_size);
}

int dgw_gateway_update_presence_args(struct dgw_gateway *gw,
                                     const struct dgw_presence_args *args,
                                     char *why, size_t why_size) {
  struct dgw_presence_args a;
  int rv = args_in(&a, sizeof(a), args,
                   offsetof(struct dgw_presence_args, on_sent), why, why_size);

  if (rv != DGW_OK)
    return rv;
  return update_presence(gw, &a.presence, a.on_sent, a.sent_user_data, why,
                         why_size);
}

static int update_voice_state(struct dgw_gateway *gw, const char *guild_id,
                              const char *channel_id, int self_mute,
                              int self_deaf, dgw_voice_fn fn, void *user_data,
                              dgw_sent_fn on_sent, void *sent_user_data,
                              char *why, size_t why_size) {
  char *text = NULL;
  size_t len = 0;
  int rv;

  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rv = dgw_voice_state_encode(guild_id, channel_id, self_mute, self_deaf, &text,
                              &len, why, why_size);
  if (rv == DGW_OK && refuse_closed(gw))
    rv = DGW_ERR_STATE;
  if (rv == DGW_OK && fn != NULL && channel_id != NULL)
    rv = dgw_requests_add_voice(requests_of(gw), gw, guild_id, fn, user_data);
  return queue(gw, rv, text, len, on_sent, sent_user_data);
}

int dgw_gateway_update_voice_state(struct dgw_gateway *gw, const char *guild_id,
                                   const char *channel_id, int self_mute,
                                   int self_deaf, dgw_voice_fn fn,
                                   void *user_data, char *why,
                                   size_t why_size) {
  return update_voice_state(gw, guild_id, channel_id, self_mute, self_deaf, fn,
                            user_data, NULL, NULL, why, why_size);
}

int dgw_gateway_update_voice_state_args(struct dgw_gateway *gw,
                                        const struct dgw_voice_state_args *args,
                                        char *why, size_t why_size) {
  struct dgw_voice_state_args a;
  int rv =
      args_in(&a, sizeof(a), args,
              offsetof(struct dgw_voice_state_args, on_sent), why, why_size);

  if (rv != DGW_OK)
    return rv;
  return update_voice_state(gw, a.guild_id, a.channel_id, a.self_mute,
                            a.self_deaf, a.on_voice, a.voice_user_data,
                            a.on_sent, a.sent_user_data, why, why_size);
}

static int request_members(struct dgw_gateway *gw,
                           const struct dgw_member_request *request,
                           dgw_members_fn fn, void *user_data,
                           char nonce_out[DGW_NONCE_SIZE], dgw_sent_fn on_sent,
                           void *sent_user_data, char *why, size_t why_size) {
  char nonce[DGW_NONCE_MAX + 1];
  char *text = NULL;
  size_t len = 0;
  int rv;

  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rv = dgw_member_request_encode(request, NULL, NULL, nonce, &text, &len, why,
                                 why_size);
  if (rv == DGW_OK && refuse_closed(gw))
    rv = DGW_ERR_STATE;
  /* Wait for the chunks before the request can possibly go out. */
  if (rv == DGW_OK && fn != NULL)
    rv = dgw_requests_add_members(requests_of(gw), nonce, request->guild_id, fn,
                                  user_data);
  if (rv == DGW_OK) {
    rv = gateway_command_cb(gw, text, len, on_sent, sent_user_data);
    if (rv != DGW_OK && fn != NULL) /* not queued: nobody will answer */
      dgw_requests_cancel_members(requests_of(gw), nonce);
  }
  free(text);
  if (nonce_out != NULL)
    strcpy(nonce_out, rv == DGW_OK ? nonce : "");
  return rv;
}

int dgw_gateway_request_members(struct dgw_gateway *gw,
                                const struct dgw_member_request *request,
                                dgw_members_fn fn, void *user_data,
                                char nonce_out[DGW_NONCE_SIZE], char *why,
                                size_t why_size) {
  return request_members(gw, request, fn, user_data, nonce_out, NULL, NULL, why,
                         why_size);
}

int dgw_gateway_request_members_args(struct dgw_gateway *gw,
                                     const struct dgw_member_request_args *args,
                                     char *why, size_t why_size) {
  struct dgw_member_request_args a;
  int rv =
      args_in(&a, sizeof(a), args,
              offsetof(struct dgw_member_request_args, on_sent), why, why_size);

  if (rv != DGW_OK)
    return rv;
  return request_members(gw, &a.request, a.on_members, a.members_user_data,
                         a.nonce_out, a.on_sent, a.sent_user_data, why,
                         why_size);
}

static int request_soundboard(struct dgw_gateway *gw,
                              const char *const *guild_ids, size_t count,
                              dgw_sent_fn on_sent, void *sent_user_data,
                              char *why, size_t why_size) {
  char *text = NULL;
  size_t len = 0;
  int rv;

  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rv = dgw_soundboard_request_encode(guild_ids, count, &text, &len, why,
                                     why_size);
  return queue(gw, rv, text, len, on_sent, sent_user_data);
}

int dgw_gateway_request_soundboard_sounds(struct dgw_gateway *gw,
                                          const char *const *guild_ids,
                                          size_t count, char *why,
                                          size_t why_size) {
  return request_soundboard(gw, guild_ids, count, NULL, NULL, why, why_size);
}

int dgw_gateway_request_soundboard_sounds_args(
    struct dgw_gateway *gw, const struct dgw_soundboard_args *args, char *why,
    size_t why_size) {
  struct dgw_soundboard_args a;
  int rv =
      args_in(&a, sizeof(a), args,
              offsetof(struct dgw_soundboard_args, on_sent), why, why_size);

  if (rv != DGW_OK)
    return rv;
  return request_soundboard(gw, a.guild_ids, a.count, a.on_sent,
                            a.sent_user_data, why, why_size);
}

static int request_channel_info(struct dgw_gateway *gw, const char *guild_id,
                                unsigned fields, dgw_sent_fn on_sent,
                                void *sent_user_data, char *why,
                                size_t why_size) {
  char *text = NULL;
  size_t len = 0;
  int rv;

  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rv = dgw_channel_info_request_encode(guild_id, fields, &text, &len, why,
                                       why_size);
  return queue(gw, rv, text, len, on_sent, sent_user_data);
}

int dgw_gateway_request_channel_info(struct dgw_gateway *gw,
                                     const char *guild_id, unsigned fields,
                                     char *why, size_t why_size) {
  return request_channel_info(gw, guild_id, fields, NULL, NULL, why, why_size);
}

int dgw_gateway_request_channel_info_args(
    struct dgw_gateway *gw, const struct dgw_channel_info_args *args, char *why,
    size_t why_size) {
  struct dgw_channel_info_args a;
  int rv =
      args_in(&a, sizeof(a), args,
              offsetof(struct dgw_channel_info_args, on_sent), why, why_size);

  if (rv != DGW_OK)
    return rv;
  return request_channel_info(gw, a.guild_id, a.fields, a.on_sent,
                              a.sent_user_data, why, why_size);
}

struct dgw_gateway *dgw_client_gateway_for_guild(struct dgw_client *c,
                                                 const char *guild_id) {
  uint64_t id;

  if (c == NULL || dgw_snowflake_parse(guild_id, &id) != DGW_OK)
    return NULL;
  return dgw_client_gateway(c, dgw_shard_for_guild(id, c->opt.shard_total));
}
