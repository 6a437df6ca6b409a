/*
 * Gateway intents (protocol §10): which dispatches a session gets, and what
 * of a message it may read.
 *
 * Discord sends an event only to sessions that asked for its intent in
 * IDENTIFY, and never counts the ones it did not send: the filter runs
 * before the session's sequence number is taken.  One table says which
 * intent each event needs, in a guild and in a DM (no guild_id in d); the
 * events it does not list (READY, RESUMED, INTERACTION_CREATE,
 * GUILD_MEMBERS_CHUNK... and any name a test makes up) always go out.
 *
 * Without MESSAGE_CONTENT (privileged) a guild message's content, embeds,
 * attachments and components come empty and its poll goes, unless the bot
 * wrote it or is mentioned in it; DMs keep theirs.  That happens on a copy
 * of d for that session alone.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "mock_int.h"

#define I(bit) (INT64_C(1) << (bit))
#define GUILDS I(0)
#define GUILD_MEMBERS I(1)
#define GUILD_MODERATION I(2)
#define GUILD_EXPRESSIONS I(3)
#define GUILD_INTEGRATIONS I(4)
#define GUILD_WEBHOOKS I(5)
#define GUILD_INVITES I(6)
#define GUILD_VOICE_STATES I(7)
#define GUILD_PRESENCES I(8)
#define GUILD_MESSAGES I(9)
#define GUILD_MESSAGE_REACTIONS I(10)
#define GUILD_MESSAGE_TYPING I(11)
#define DIRECT_MESSAGES I(12)
#define DIRECT_MESSAGE_REACTIONS I(13)
#define DIRECT_MESSAGE_TYPING I(14)
#define MESSAGE_CONTENT I(15)
#define GUILD_SCHEDULED_EVENTS I(16)
#define AUTO_MODERATION_CONFIGURATION I(20)
#define AUTO_MODERATION_EXECUTION I(21)
#define GUILD_MESSAGE_POLLS I(24)
#define DIRECT_MESSAGE_POLLS I(25)

/* What an event needs beyond its intent. */
enum rule {
  RULE_PLAIN,         /* the intent alone */
  RULE_CONTENT,       /* a message: MESSAGE_CONTENT gates its content */
  RULE_OWN_MEMBER,    /* the bot's own member: sent regardless */
  RULE_THREAD_MEMBERS /* without GUILD_MEMBERS only when it is the bot */
};

/* An event and the intent it needs in a guild and in a DM (0: in a DM it
 * needs the guild one too, Discord has no DM variant). */
struct intent_rule {
  const char *t;
  int64_t guild, dm;
  enum rule rule;
};

static const struct intent_rule rules[] = {
    {"GUILD_CREATE", GUILDS, 0, RULE_PLAIN},
    {"GUILD_UPDATE", GUILDS, 0, RULE_PLAIN},
    {"GUILD_DELETE", GUILDS, 0, RULE_PLAIN},
    {"GUILD_ROLE_CREATE", GUILDS, 0, RULE_PLAIN},
    {"GUILD_ROLE_UPDATE", GUILDS, 0, RULE_PLAIN},
    {"GUILD_ROLE_DELETE", GUILDS, 0, RULE_PLAIN},
    {"CHANNEL_CREATE", GUILDS, 0, RULE_PLAIN},
    {"CHANNEL_UPDATE", GUILDS, 0, RULE_PLAIN},
    {"CHANNEL_DELETE", GUILDS, 0, RULE_PLAIN},
    {"CHANNEL_PINS_UPDATE", GUILDS, DIRECT_MESSAGES, RULE_PLAIN},
    {"THREAD_CREATE", GUILDS, 0, RULE_PLAIN},
    {"THREAD_UPDATE", GUILDS, 0, RULE_PLAIN},
    {"THREAD_DELETE", GUILDS, 0, RULE_PLAIN},
    {"THREAD_LIST_SYNC", GUILDS, 0, RULE_PLAIN},
    {"THREAD_MEMBER_UPDATE", GUILDS, 0, RULE_PLAIN},
    {"THREAD_MEMBERS_UPDATE", GUILDS, 0, RULE_THREAD_MEMBERS},
    {"STAGE_INSTANCE_CREATE", GUILDS, 0, RULE_PLAIN},
    {"STAGE_INSTANCE_UPDATE", GUILDS, 0, RULE_PLAIN},
    {"STAGE_INSTANCE_DELETE", GUILDS, 0, RULE_PLAIN},
    {"VOICE_CHANNEL_STATUS_UPDATE", GUILDS, 0, RULE_PLAIN},
    {"VOICE_CHANNEL_START_TIME_UPDATE", GUILDS, 0, RULE_PLAIN},
    {"GUILD_MEMBER_ADD", GUILD_MEMBERS, 0, RULE_PLAIN},
    {"GUILD_MEMBER_UPDATE", GUILD_MEMBERS, 0, RULE_OWN_MEMBER},
    {"GUILD_MEMBER_REMOVE", GUILD_MEMBERS, 0, RULE_PLAIN},
    {"GUILD_AUDIT_LOG_ENTRY_CREATE", GUILD_MODERATION, 0, RULE_PLAIN},
    {"GUILD_BAN_ADD", GUILD_MODERATION, 0, RULE_PLAIN},
    {"GUILD_BAN_REMOVE", GUILD_MODERATION, 0, RULE_PLAIN},
    {"GUILD_EMOJIS_UPDATE", GUILD_EXPRESSIONS, 0, RULE_PLAIN},
    {"GUILD_STICKERS_UPDATE", GUILD_EXPRESSIONS, 0, RULE_PLAIN},
    {"GUILD_SOUNDBOARD_SOUND_CREATE", GUILD_EXPRESSIONS, 0, RULE_PLAIN},
    {"GUILD_SOUNDBOARD_SOUND_UPDATE", GUILD_EXPRESSIONS, 0, RULE_PLAIN},
    {"GUILD_SOUNDBOARD_SOUND_DELETE", GUILD_EXPRESSIONS, 0, RULE_PLAIN},
    {"GUILD_SOUNDBOARD_SOUNDS_UPDATE", GUILD_EXPRESSIONS, 0, RULE_PLAIN},
    {"GUILD_INTEGRATIONS_UPDATE", GUILD_INTEGRATIONS, 0, RULE_PLAIN},
    {"INTEGRATION_CREATE", GUILD_INTEGRATIONS, 0, RULE_PLAIN},
    {"INTEGRATION_UPDATE", GUILD_INTEGRATIONS, 0, RULE_PLAIN},
    {"INTEGRATION_DELETE", GUILD_INTEGRATIONS, 0, RULE_PLAIN},
    {"WEBHOOKS_UPDATE", GUILD_WEBHOOKS, 0, RULE_PLAIN},
    {"INVITE_CREATE", GUILD_INVITES, 0, RULE_PLAIN},
    {"INVITE_DELETE", GUILD_INVITES, 0, RULE_PLAIN},
    {"VOICE_CHANNEL_EFFECT_SEND", GUILD_VOICE_STATES, 0, RULE_PLAIN},
    {"VOICE_STATE_UPDATE", GUILD_VOICE_STATES, 0, RULE_PLAIN},
    {"PRESENCE_UPDATE", GUILD_PRESENCES, 0, RULE_PLAIN},
    {"MESSAGE_CREATE", GUILD_MESSAGES, DIRECT_MESSAGES, RULE_CONTENT},
    {"MESSAGE_UPDATE", GUILD_MESSAGES, DIRECT_MESSAGES, RULE_CONTENT},
    {"MESSAGE_DELETE", GUILD_MESSAGES, DIRECT_MESSAGES, RULE_PLAIN},
    {"MESSAGE_DELETE_BULK", GUILD_MESSAGES, DIRECT_MESSAGES, RULE_PLAIN},
    {"MESSAGE_REACTION_ADD", GUILD_MESSAGE_REACTIONS, DIRECT_MESSAGE_REACTIONS,
     RULE_PLAIN},
    {"MESSAGE_REACTION_REMOVE", GUILD_MESSAGE_REACTIONS,
     DIRECT_MESSAGE_REACTIONS, RULE_PLAIN},
    {"MESSAGE_REACTION_REMOVE_ALL", GUILD_MESSAGE_REACTIONS,
     DIRECT_MESSAGE_REACTIONS, RULE_PLAIN},
    {"MESSAGE_REACTION_REMOVE_EMOJI", GUILD_MESSAGE_REACTIONS,
     DIRECT_MESSAGE_REACTIONS, RULE_PLAIN},
    {"TYPING_START", GUILD_MESSAGE_TYPING, DIRECT_MESSAGE_TYPING, RULE_PLAIN},
    {"GUILD_SCHEDULED_EVENT_CREATE", GUILD_SCHEDULED_EVENTS, 0, RULE_PLAIN},
    {"GUILD_SCHEDULED_EVENT_UPDATE", GUILD_SCHEDULED_EVENTS, 0, RULE_PLAIN},
    {"GUILD_SCHEDULED_EVENT_DELETE", GUILD_SCHEDULED_EVENTS, 0, RULE_PLAIN},
    {"GUILD_SCHEDULED_EVENT_USER_ADD", GUILD_SCHEDULED_EVENTS, 0, RULE_PLAIN},
    {"GUILD_SCHEDULED_EVENT_USER_REMOVE", GUILD_SCHEDULED_EVENTS, 0,
     RULE_PLAIN},
    {"AUTO_MODERATION_RULE_CREATE", AUTO_MODERATION_CONFIGURATION, 0,
     RULE_PLAIN},
    {"AUTO_MODERATION_RULE_UPDATE", AUTO_MODERATION_CONFIGURATION, 0,
     RULE_PLAIN},
    {"AUTO_MODERATION_RULE_DELETE", AUTO_MODERATION_CONFIGURATION, 0,
     RULE_PLAIN},
    {"AUTO_MODERATION_ACTION_EXECUTION", AUTO_MODERATION_EXECUTION, 0,
     RULE_PLAIN},
    {"MESSAGE_POLL_VOTE_ADD", GUILD_MESSAGE_POLLS, DIRECT_MESSAGE_POLLS,
     RULE_PLAIN},
    {"MESSAGE_POLL_VOTE_REMOVE", GUILD_MESSAGE_POLLS, DIRECT_MESSAGE_POLLS,
     RULE_PLAIN},
};

static const struct intent_rule *rule_of(const char *t) {
  for (size_t i = 0; i < sizeof rules / sizeof rules[0]; i++)
    if (strcmp(rules[i].t, t) == 0)
      return &rules[i];
  return NULL;
}

/* Whether d's `key` is the string `id`. */
static int is_id(json_object *d, const char *key, const char *id) {
  json_object *v;

  return json_object_object_get_ex(d, key, &v) &&
         json_object_is_type(v, json_type_string) &&
         strcmp(json_object_get_string(v), id) == 0;
}

/* Whether d's `user` object (a member's, a mention's) is the bot. */
static int user_is_bot(json_object *holder) {
  json_object *user;

  return json_object_object_get_ex(holder, "user", &user) &&
         is_id(user, "id", MOCK_USER_ID);
}

/* THREAD_MEMBERS_UPDATE lists the bot among added_members or
 * removed_member_ids. */
static int thread_members_has_bot(json_object *d) {
  json_object *arr;
  size_t i, n;

  if (json_object_object_get_ex(d, "added_members", &arr) &&
      json_object_is_type(arr, json_type_array))
    for (i = 0, n = json_object_array_length(arr); i < n; i++) {
      json_object *m = json_object_array_get_idx(arr, i);
      if (is_id(m, "user_id", MOCK_USER_ID) || user_is_bot(m))
        return 1;
    }
  if (json_object_object_get_ex(d, "removed_member_ids", &arr) &&
      json_object_is_type(arr, json_type_array))
    for (i = 0, n = json_object_array_length(arr); i < n; i++) {
      json_object *id = json_object_array_get_idx(arr, i);
      if (json_object_is_type(id, json_type_string) &&
          strcmp(json_object_get_string(id), MOCK_USER_ID) == 0)
        return 1;
    }
  return 0;
}

/* A message the bot may read without MESSAGE_CONTENT: its own, or one
 * that mentions it. */
static int message_for_bot(json_object *d) {
  json_object *author, *mentions;

  if (json_object_object_get_ex(d, "author", &author) &&
      is_id(author, "id", MOCK_USER_ID))
    return 1;
  if (json_object_object_get_ex(d, "mentions", &mentions) &&
      json_object_is_type(mentions, json_type_array))
    for (size_t i = 0, n = json_object_array_length(mentions); i < n; i++)
      if (is_id(json_object_array_get_idx(mentions, i), "id", MOCK_USER_ID))
        return 1;
  return 0;
}

/* Empties what MESSAGE_CONTENT gates in `d` (the fields it has); -1 when
 * out of memory. */
static int strip_content(json_object *d) {
  static const char *const arrays[] = {"embeds", "attachments", "components"};
  int bad = 0;

  if (json_object_object_get_ex(d, "content", NULL))
    bad |= mock_json_add(d, "content", json_object_new_string(""));
  for (size_t i = 0; i < sizeof arrays / sizeof arrays[0]; i++)
    if (json_object_object_get_ex(d, arrays[i], NULL))
      bad |= mock_json_add(d, arrays[i], json_object_new_array());
  json_object_object_del(d, "poll");
  return bad ? -1 : 0;
}

int mock_intents_filter(const struct mock_session *s, const char *t,
                        const char *d_json, char **own_d) {
  const struct intent_rule *r = rule_of(t);
  int64_t have = s->intents, need;
  json_object *d, *gid;
  int ok, guild, rv = MOCK_INTENTS_SEND;

  *own_d = NULL;
  if (r == NULL)
    return MOCK_INTENTS_SEND;
  /* Only parse d when the answer depends on it. */
  if (r->rule == RULE_PLAIN) {
    int g = (have & r->guild) != 0;
    if (r->dm == 0 || g == ((have & r->dm) != 0))
      return g ? MOCK_INTENTS_SEND : MOCK_INTENTS_DROP;
  }
  if (r->rule == RULE_CONTENT && (have & r->guild) != 0 &&
      (have & r->dm) != 0 && (have & MESSAGE_CONTENT) != 0)
    return MOCK_INTENTS_SEND;
  if ((r->rule == RULE_OWN_MEMBER || r->rule == RULE_THREAD_MEMBERS) &&
      (have & r->guild) != 0 && (have & GUILD_MEMBERS) != 0)
    return MOCK_INTENTS_SEND;

  d = mock_json_parse_exact(d_json, strlen(d_json), &ok);
  if (!ok || !json_object_is_type(d, json_type_object)) {
    json_object_put(d);
    return (have & r->guild) != 0 ? MOCK_INTENTS_SEND : MOCK_INTENTS_DROP;
  }
  guild = json_object_object_get_ex(d, "guild_id", &gid) && gid != NULL;
  need = guild || r->dm == 0 ? r->guild : r->dm;
  if ((have & need) == 0) {
    if (r->rule == RULE_OWN_MEMBER && user_is_bot(d))
      rv = MOCK_INTENTS_SEND;
    else if (r->rule == RULE_THREAD_MEMBERS && (have & GUILDS) != 0 &&
             thread_members_has_bot(d))
      rv = MOCK_INTENTS_SEND;
    else
      rv = MOCK_INTENTS_DROP;
  } else if (r->rule == RULE_THREAD_MEMBERS && (have & GUILD_MEMBERS) == 0 &&
             !thread_members_has_bot(d)) {
    rv = MOCK_INTENTS_DROP;
  } else if (r->rule == RULE_CONTENT && guild &&
             (have & MESSAGE_CONTENT) == 0 && !message_for_bot(d)) {
    const char *text;
    if (strip_content(d) != 0 || (text = mock_json_plain(d)) == NULL ||
        (*own_d = mock_strdup(text)) == NULL)
      rv = MOCK_INTENTS_NOMEM;
  }
  json_object_put(d);
  return rv;
}

int64_t mock_intents_privileged_flags(uint32_t denied) {
  int64_t flags = 0;

  if ((denied & GUILD_PRESENCES) == 0)
    flags |= I(12); /* GATEWAY_PRESENCE */
  if ((denied & GUILD_MEMBERS) == 0)
    flags |= I(14); /* GATEWAY_GUILD_MEMBERS */
  if ((denied & MESSAGE_CONTENT) == 0)
    flags |= I(18); /* GATEWAY_MESSAGE_CONTENT */
  return flags;
}
