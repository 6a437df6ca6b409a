#include "config.h"

/*
 * The one source of truth for the JSON shapes the mock sends (READY's
 * user and application, the built-in guild, members, messages), with
 * every field Discord's documentation gives, so the models of real bot
 * libraries (discord.py, discord.js) build from them.  Nullable fields are
 * present as null, as Discord sends them.
 */

#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include <json-c/json.h>

#include "mock_int.h"

#define ADD(o, k, v) bad |= mock_json_add((o), (k), (v))
#define STR(s) json_object_new_string(s)
#define INT(n) json_object_new_int64(n)
#define BOOL(b) json_object_new_boolean(b)
#define ADDNULL(o, k) bad |= (json_object_object_add((o), (k), NULL) != 0)
#define ARR() json_object_new_array()

static json_object *done(json_object *o, int bad) {
  if (bad) {
    json_object_put(o);
    return NULL;
  }
  return o;
}

void mock_shape_now(char out[40]) {
  struct timeval tv;
  struct tm tm;
  char date[32];

  gettimeofday(&tv, NULL);
  gmtime_r(&tv.tv_sec, &tm);
  strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, 40, "%.19s.%06u+00:00", date, (unsigned)(tv.tv_usec % 1000000));
}

json_object *mock_shape_user(const char *id, const char *username, int bot) {
  json_object *u = json_object_new_object();
  int bad = u == NULL;

  if (bad)
    return NULL;
  ADD(u, "id", STR(id));
  ADD(u, "username", STR(username));
  ADD(u, "discriminator", STR("0"));
  ADD(u, "global_name", STR(username));
  ADDNULL(u, "avatar");
  ADDNULL(u, "avatar_decoration_data");
  ADDNULL(u, "banner");
  ADDNULL(u, "accent_color");
  ADD(u, "bot", BOOL(bot));
  ADD(u, "system", BOOL(0));
  ADD(u, "public_flags", INT(0));
  ADD(u, "flags", INT(0));
  return done(u, bad);
}

json_object *mock_shape_bot_user(void) {
  json_object *u = mock_shape_user(MOCK_USER_ID, "dgw-mock", 1);
  int bad = u == NULL;

  if (bad)
    return NULL;
  ADD(u, "verified", BOOL(1));
  ADD(u, "mfa_enabled", BOOL(0));
  ADDNULL(u, "email");
  ADD(u, "locale", STR("en-US"));
  return done(u, bad);
}

json_object *mock_shape_member(json_object *user, const char *joined_at) {
  json_object *m = json_object_new_object();
  int bad = m == NULL;

  if (bad) {
    json_object_put(user);
    return NULL;
  }
  if (user != NULL)
    ADD(m, "user", user);
  ADDNULL(m, "nick");
  ADDNULL(m, "avatar");
  ADD(m, "roles", ARR());
  ADD(m, "joined_at", STR(joined_at));
  ADDNULL(m, "premium_since");
  ADD(m, "deaf", BOOL(0));
  ADD(m, "mute", BOOL(0));
  ADD(m, "flags", INT(0));
  ADD(m, "pending", BOOL(0));
  ADDNULL(m, "communication_disabled_until");
  return done(m, bad);
}

json_object *mock_shape_application(int partial) {
  json_object *a = json_object_new_object();
  int bad = a == NULL;

  if (bad)
    return NULL;
  ADD(a, "id", STR(MOCK_USER_ID));
  ADD(a, "flags", INT(0));
  if (partial)
    return done(a, bad);
  ADD(a, "name", STR("dgw-mock"));
  ADDNULL(a, "icon");
  ADD(a, "description", STR("the dgw mock's application"));
  ADD(a, "rpc_origins", ARR());
  ADD(a, "bot_public", BOOL(1));
  ADD(a, "bot_require_code_grant", BOOL(0));
  ADD(a, "bot", mock_shape_bot_user());
  ADDNULL(a, "terms_of_service_url");
  ADDNULL(a, "privacy_policy_url");
  ADD(a, "owner", mock_shape_user(MOCK_USER2_ID, "alice", 0));
  ADD(a, "verify_key",
      STR("0000000000000000000000000000000000000000000000000"
          "000000000000000"));
  ADDNULL(a, "team");
  ADDNULL(a, "guild_id");
  ADDNULL(a, "cover_image");
  ADD(a, "tags", ARR());
  ADDNULL(a, "install_params");
  ADDNULL(a, "custom_install_url");
  ADD(a, "approximate_guild_count", INT(1));
  ADD(a, "redirect_uris", ARR());
  ADDNULL(a, "interactions_endpoint_url");
  ADD(a, "summary", STR(""));
  ADD(a, "hook", BOOL(1));
  ADD(a, "is_monetized", BOOL(0));
  return done(a, bad);
}

/* The built-in guild's channels: id, name, position, topic. */
static const struct {
  const char *id, *name, *topic;
} channels[] = {
    {MOCK_CHANNEL_ID, "general", "where everyone talks"},
    {MOCK_CHANNEL2_ID, "bot-commands", "where the bot is tried"},
};

const char *mock_shape_channel_guild(const char *channel_id) {
  for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++)
    if (strcmp(channel_id, channels[i].id) == 0)
      return MOCK_GUILD_ID;
  return NULL;
}

static json_object *channel_at(size_t i) {
  json_object *c = json_object_new_object(), *ow, *o;
  int bad = c == NULL;

  if (bad)
    return NULL;
  ADD(c, "id", STR(channels[i].id));
  ADD(c, "type", INT(0)); /* GUILD_TEXT */
  ADD(c, "guild_id", STR(MOCK_GUILD_ID));
  ADD(c, "position", INT((int64_t)i));
  /* @everyone may read and send everywhere (VIEW_CHANNEL|SEND_MESSAGES). */
  if ((ow = ARR()) != NULL && (o = json_object_new_object()) != NULL) {
    ADD(o, "id", STR(MOCK_GUILD_ID));
    ADD(o, "type", INT(0));
    ADD(o, "allow", STR("3072"));
    ADD(o, "deny", STR("0"));
    bad |= mock_json_append(ow, o);
  } else {
    bad = 1;
  }
  ADD(c, "permission_overwrites", ow);
  ADD(c, "name", STR(channels[i].name));
  ADD(c, "topic", STR(channels[i].topic));
  ADD(c, "nsfw", BOOL(0));
  ADDNULL(c, "last_message_id");
  ADD(c, "rate_limit_per_user", INT(0));
  ADDNULL(c, "parent_id");
  ADDNULL(c, "last_pin_timestamp");
  ADD(c, "default_auto_archive_duration", INT(1440));
  ADD(c, "flags", INT(0));
  return done(c, bad);
}

json_object *mock_shape_channel(const char *channel_id) {
  for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++)
    if (strcmp(channel_id, channels[i].id) == 0)
      return channel_at(i);
  return NULL;
}

static json_object *role(const char *id, const char *name, int64_t position,
                         const char *permissions, int64_t color) {
  json_object *r = json_object_new_object();
  int bad = r == NULL;

  if (bad)
    return NULL;
  ADD(r, "id", STR(id));
  ADD(r, "name", STR(name));
  ADD(r, "color", INT(color));
  ADD(r, "hoist", BOOL(0));
  ADDNULL(r, "icon");
  ADDNULL(r, "unicode_emoji");
  ADD(r, "position", INT(position));
  ADD(r, "permissions", STR(permissions));
  ADD(r, "managed", BOOL(0));
  ADD(r, "mentionable", BOOL(0));
  ADD(r, "flags", INT(0));
  return done(r, bad);
}

static json_object *presence(const char *user_id) {
  json_object *p = json_object_new_object(), *u, *cs;
  int bad = p == NULL;

  if (bad)
    return NULL;
  if ((u = json_object_new_object()) != NULL)
    ADD(u, "id", STR(user_id));
  ADD(p, "user", u);
  ADD(p, "guild_id", STR(MOCK_GUILD_ID));
  ADD(p, "status", STR("online"));
  ADD(p, "activities", ARR());
  if ((cs = json_object_new_object()) != NULL)
    ADD(cs, "desktop", STR("online"));
  ADD(p, "client_status", cs);
  return done(p, bad);
}

json_object *mock_shape_guild_create(void) {
  json_object *g = json_object_new_object(), *a;
  char now[40];
  int bad = g == NULL;

  if (bad)
    return NULL;
  mock_shape_now(now);
  ADD(g, "id", STR(MOCK_GUILD_ID));
  ADD(g, "name", STR("dgw mock guild"));
  ADDNULL(g, "icon");
  ADDNULL(g, "icon_hash");
  ADDNULL(g, "splash");
  ADDNULL(g, "discovery_splash");
  ADD(g, "owner_id", STR(MOCK_USER2_ID));
  ADDNULL(g, "region");
  ADDNULL(g, "afk_channel_id");
  ADD(g, "afk_timeout", INT(300));
  ADD(g, "widget_enabled", BOOL(0));
  ADDNULL(g, "widget_channel_id");
  ADD(g, "verification_level", INT(0));
  ADD(g, "default_message_notifications", INT(0));
  ADD(g, "explicit_content_filter", INT(0));
  if ((a = ARR()) != NULL) {
    /* @everyone: VIEW_CHANNEL, SEND_MESSAGES, READ_MESSAGE_HISTORY,
     * ADD_REACTIONS, USE_APPLICATION_COMMANDS... */
    bad |= mock_json_append(
        a, role(MOCK_GUILD_ID, "@everyone", 0, "2248473465835073", 0));
    bad |= mock_json_append(a, role(MOCK_ROLE_ID, "mods", 1, "8", 3447003));
  }
  ADD(g, "roles", a);
  ADD(g, "emojis", ARR());
  ADD(g, "features", ARR());
  ADD(g, "mfa_level", INT(0));
  ADDNULL(g, "application_id");
  ADD(g, "system_channel_id", STR(MOCK_CHANNEL_ID));
  ADD(g, "system_channel_flags", INT(0));
  ADDNULL(g, "rules_channel_id");
  ADDNULL(g, "max_presences");
  ADD(g, "max_members", INT(500000));
  ADDNULL(g, "vanity_url_code");
  ADDNULL(g, "description");
  ADDNULL(g, "banner");
  ADD(g, "premium_tier", INT(0));
  ADD(g, "premium_subscription_count", INT(0));
  ADD(g, "preferred_locale", STR("en-US"));
  ADDNULL(g, "public_updates_channel_id");
  ADD(g, "max_video_channel_users", INT(25));
  ADD(g, "max_stage_video_channel_users", INT(50));
  ADD(g, "nsfw_level", INT(0));
  ADD(g, "stickers", ARR());
  ADD(g, "premium_progress_bar_enabled", BOOL(0));
  ADDNULL(g, "safety_alerts_channel_id");
  ADDNULL(g, "incidents_data");
  /* The GUILD_CREATE-only fields. */
  ADD(g, "joined_at", STR(now));
  ADD(g, "large", BOOL(0));
  ADD(g, "unavailable", BOOL(0));
  ADD(g, "member_count", INT(2));
  ADD(g, "voice_states", ARR());
  if ((a = ARR()) != NULL) {
    json_object *m;

    bad |= mock_json_append(a, mock_shape_member(mock_shape_bot_user(), now));
    m = mock_shape_member(mock_shape_user(MOCK_USER2_ID, "alice", 0), now);
    if (m != NULL) {
      json_object *roles = ARR();
      if (roles != NULL)
        bad |= mock_json_append(roles, STR(MOCK_ROLE_ID));
      ADD(m, "roles", roles);
    }
    bad |= mock_json_append(a, m);
  }
  ADD(g, "members", a);
  if ((a = ARR()) != NULL)
    for (size_t i = 0; i < sizeof channels / sizeof channels[0]; i++)
      bad |= mock_json_append(a, channel_at(i));
  ADD(g, "channels", a);
  ADD(g, "threads", ARR());
  if ((a = ARR()) != NULL)
    bad |= mock_json_append(a, presence(MOCK_USER2_ID));
  ADD(g, "presences", a);
  ADD(g, "stage_instances", ARR());
  ADD(g, "guild_scheduled_events", ARR());
  ADD(g, "soundboard_sounds", ARR());
  return done(g, bad);
}

json_object *mock_shape_message(const char *id, const char *channel_id,
                                const char *guild_id, json_object *author,
                                const char *content) {
  json_object *m = json_object_new_object();
  char now[40];
  int bad = m == NULL;

  if (bad) {
    json_object_put(author);
    return NULL;
  }
  mock_shape_now(now);
  ADD(m, "id", STR(id));
  ADD(m, "type", INT(0));
  ADD(m, "content", STR(content));
  ADD(m, "channel_id", STR(channel_id));
  if (guild_id != NULL)
    ADD(m, "guild_id", STR(guild_id));
  ADD(m, "author", author);
  if (guild_id != NULL)
    ADD(m, "member", mock_shape_member(NULL, now));
  ADD(m, "timestamp", STR(now));
  ADDNULL(m, "edited_timestamp");
  ADD(m, "tts", BOOL(0));
  ADD(m, "mention_everyone", BOOL(0));
  ADD(m, "mentions", ARR());
  ADD(m, "mention_roles", ARR());
  ADD(m, "mention_channels", ARR());
  ADD(m, "attachments", ARR());
  ADD(m, "embeds", ARR());
  ADD(m, "reactions", ARR());
  ADD(m, "pinned", BOOL(0));
  ADD(m, "flags", INT(0));
  ADD(m, "components", ARR());
  ADD(m, "sticker_items", ARR());
  ADDNULL(m, "position");
  return done(m, bad);
}

char *dgw_mock_message_json(const char *id, const char *channel_id,
                            const char *guild_id, const char *author_id,
                            const char *username, const char *content) {
  json_object *m;
  char *out;

  if (id == NULL || channel_id == NULL || author_id == NULL ||
      username == NULL || content == NULL)
    return NULL;
  m = mock_shape_message(id, channel_id, guild_id,
                         mock_shape_user(author_id, username, 0), content);
  if (m == NULL)
    return NULL;
  out = mock_strdup(mock_json_plain(m));
  json_object_put(m);
  return out;
}

/* Adds to `d` each key of `defaults` it lacks (taking references). */
static void fill_missing(json_object *d, json_object *defaults) {
  json_object_object_foreach(defaults, key, val) {
    if (!json_object_object_get_ex(d, key, NULL))
      json_object_object_add(d, key, json_object_get(val));
  }
}

/* A user object completed with the user fields Discord always sends. */
static void complete_user(json_object *u) {
  json_object *id, *name, *defaults;

  if (!json_object_is_type(u, json_type_object))
    return;
  if (!json_object_object_get_ex(u, "id", &id) ||
      !json_object_object_get_ex(u, "username", &name))
    return; /* a partial user (presences): left as it is */
  defaults = mock_shape_user(json_object_get_string(id),
                             json_object_get_string(name), 0);
  if (defaults != NULL) {
    json_object_object_del(defaults, "global_name"); /* null when unset */
    json_object_object_add(defaults, "global_name", NULL);
    fill_missing(u, defaults);
  }
  json_object_put(defaults);
}

static const char *str_of(json_object *o, const char *key, const char *def) {
  json_object *v;

  if (json_object_object_get_ex(o, key, &v) &&
      json_object_is_type(v, json_type_string))
    return json_object_get_string(v);
  return def;
}

int mock_shape_complete(const char *t, json_object *d) {
  json_object *defaults = NULL, *v;
  char now[40];

  if (!json_object_is_type(d, json_type_object))
    return 0;
  mock_shape_now(now);
  if (strcmp(t, "MESSAGE_CREATE") == 0 || strcmp(t, "MESSAGE_UPDATE") == 0) {
    const char *guild = str_of(d, "guild_id", NULL);

    if (json_object_object_get_ex(d, "author", &v))
      complete_user(v);
    else if (strcmp(t, "MESSAGE_UPDATE") == 0)
      return 0; /* a partial update: only what changed */
    defaults = mock_shape_message(
        str_of(d, "id", "0"), str_of(d, "channel_id", "0"), guild,
        mock_shape_user(MOCK_USER2_ID, "alice", 0), "");
  } else if (strcmp(t, "GUILD_CREATE") == 0) {
    json_object *chans;

    defaults = mock_shape_guild_create();
    if (defaults != NULL) { /* the built-in guild's own lists: not these */
      static const char *const lists[] = {"channels", "members", "presences",
                                          "roles"};
      for (size_t i = 0; i < sizeof lists / sizeof lists[0]; i++)
        json_object_object_add(defaults, lists[i], ARR());
      json_object_object_add(defaults, "member_count", INT(0));
      json_object_object_add(defaults, "owner_id", STR(MOCK_USER_ID));
      json_object_object_add(defaults, "system_channel_id", NULL);
      json_object_object_add(defaults, "name", STR("guild"));
    }
    if (json_object_object_get_ex(d, "channels", &chans) &&
        json_object_is_type(chans, json_type_array))
      for (size_t i = 0; i < json_object_array_length(chans); i++) {
        json_object *c = json_object_array_get_idx(chans, i);
        if (!json_object_is_type(c, json_type_object))
          continue;
        if (!json_object_object_get_ex(c, "type", NULL))
          json_object_object_add(c, "type", INT(0));
        if (!json_object_object_get_ex(c, "position", NULL))
          json_object_object_add(c, "position", INT((int64_t)i));
        if (!json_object_object_get_ex(c, "permission_overwrites", NULL))
          json_object_object_add(c, "permission_overwrites", ARR());
        if (!json_object_object_get_ex(c, "name", NULL))
          json_object_object_add(c, "name", STR("channel"));
        if (!json_object_object_get_ex(c, "nsfw", NULL))
          json_object_object_add(c, "nsfw", BOOL(0));
      }
  } else {
    return 0;
  }
  if (defaults == NULL)
    return -1;
  fill_missing(d, defaults);
  json_object_put(defaults);
  return 1;
}
