/*
 * Requests whose answers come back as dispatches: Request Guild Members
 * (op 8), whose GUILD_MEMBERS_CHUNK events are gathered by nonce into one
 * result, and Update Voice State (op 4), whose VOICE_STATE_UPDATE and
 * VOICE_SERVER_UPDATE pair is handed over together.  Internal to dgw; one
 * table per shard.  The events still reach every handler as usual: this
 * only watches them.
 */
#ifndef DGW_REQUESTS_H
#define DGW_REQUESTS_H

#include <dgw/dgw.h>

struct dgw_requests;

/* A new, empty table.  NULL without memory. */
struct dgw_requests *dgw_requests_new(void);

/* Frees the table without calling anyone back (see fail_all). */
void dgw_requests_free(struct dgw_requests *r);

/* Waits for the chunks of the member request with `nonce` for `guild_id`
 * (both copied).  DGW_OK or DGW_ERR_NOMEM. */
int dgw_requests_add_members(struct dgw_requests *r, const char *nonce,
                             const char *guild_id, dgw_members_fn fn,
                             void *user_data);

/* Forgets the member request with `nonce` without calling it back (it
 * could not be queued after all). */
void dgw_requests_cancel_members(struct dgw_requests *r, const char *nonce);

/* Waits for the voice state + voice server pair of `guild_id` for the bot
 * user.  A newer request for the same guild replaces an older one, which
 * is failed with DGW_ERR_STATE.  DGW_OK or DGW_ERR_NOMEM. */
int dgw_requests_add_voice(struct dgw_requests *r, struct dgw_gateway *gw,
                           const char *guild_id, dgw_voice_fn fn,
                           void *user_data);

/* Looks at one dispatch; `self_id` is the bot's user id from READY (may be
 * NULL).  Parses the event (through its cached view) only when something
 * waits for it. */
void dgw_requests_observe(struct dgw_requests *r, struct dgw_gateway *gw,
                          const struct dgw_event *ev, const char *self_id);

/* Calls every waiting requester back with `error` and empties the table. */
void dgw_requests_fail_all(struct dgw_requests *r, struct dgw_gateway *gw,
                           int error);

/* Requests still waiting. */
size_t dgw_requests_pending(const struct dgw_requests *r);

#endif /* DGW_REQUESTS_H */
