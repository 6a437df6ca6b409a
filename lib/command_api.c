/*
 * The public gateway commands: check and encode (commands.c), then send or
 * queue on the shard (gateway_command), and for the requests answered by
 * events, register the wait (requests.c).
 */
#include "config.h"

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

/* Queues an encoded payload and frees it.  (Callers encode first, in a
 * statement of its own: argument evaluation order is unspecified.) */
static int queue(struct dgw_gateway *gw, int rv, char *text, size_t len) {
  if (rv == DGW_OK)
    rv = gateway_command(gw, text, len, NULL, NULL);
  free(text);
  return rv;
}

static int refuse_closed(const struct dgw_gateway *gw) {
  enum dgw_state st = dgw_gateway_state(gw);

  return st == DGW_STATE_CLOSED || st == DGW_STATE_CLOSING ||
         st == DGW_STATE_FATAL;
}

int dgw_gateway_update_presence(struct dgw_gateway *gw,
                                const struct dgw_presence *presence, char *why,
                                size_t why_size) {
  char *text = NULL;
  size_t len = 0;

  int rv;

  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rv = dgw_presence_encode(presence, &text, &len, why, why_size);
  return queue(gw, rv, text, len);
}

int dgw_gateway_update_voice_state(struct dgw_gateway *gw, const char *guild_id,
                                   const char *channel_id, int self_mute,
                                   int self_deaf, dgw_voice_fn fn,
                                   void *user_data, char *why,
                                   size_t why_size) {
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
  return queue(gw, rv, text, len);
}

int dgw_gateway_request_members(struct dgw_gateway *gw,
                                const struct dgw_member_request *request,
                                dgw_members_fn fn, void *user_data,
                                char nonce_out[33], char *why,
                                size_t why_size) {
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
    rv = gateway_command(gw, text, len, NULL, NULL);
    if (rv != DGW_OK && fn != NULL) /* not queued: nobody will answer */
      dgw_requests_cancel_members(requests_of(gw), nonce);
  }
  free(text);
  if (nonce_out != NULL)
    strcpy(nonce_out, rv == DGW_OK ? nonce : "");
  return rv;
}

int dgw_gateway_request_soundboard_sounds(struct dgw_gateway *gw,
                                          const char *const *guild_ids,
                                          size_t count, char *why,
                                          size_t why_size) {
  char *text = NULL;
  size_t len = 0;
  int rv;

  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rv = dgw_soundboard_request_encode(guild_ids, count, &text, &len, why,
                                     why_size);
  return queue(gw, rv, text, len);
}

int dgw_gateway_request_channel_info(struct dgw_gateway *gw,
                                     const char *guild_id, unsigned fields,
                                     char *why, size_t why_size) {
  char *text = NULL;
  size_t len = 0;

  int rv;

  if (gw == NULL)
    return DGW_ERR_INVALID_ARGUMENT;
  rv = dgw_channel_info_request_encode(guild_id, fields, &text, &len, why,
                                       why_size);
  return queue(gw, rv, text, len);
}

struct dgw_gateway *dgw_client_gateway_for_guild(struct dgw_client *c,
                                                 const char *guild_id) {
  uint64_t id;

  if (c == NULL || dgw_snowflake_parse(guild_id, &id) != DGW_OK)
    return NULL;
  return dgw_client_gateway(c, dgw_shard_for_guild(id, c->opt.shard_total));
}
