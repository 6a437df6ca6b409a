/*
 * Gateway intents by name (protocol §10): the names Discord documents,
 * their older aliases, and the sets ALL, PRIVILEGED and UNPRIVILEGED.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <dgw/dgw.h>

#include "why.h"

static const struct {
  const char *name;
  uint64_t bits;
} names[] = {
    {"GUILDS", DGW_INTENT_GUILDS},
    {"GUILD_MEMBERS", DGW_INTENT_GUILD_MEMBERS},
    {"GUILD_MODERATION", DGW_INTENT_GUILD_MODERATION},
    {"GUILD_EXPRESSIONS", DGW_INTENT_GUILD_EXPRESSIONS},
    {"GUILD_INTEGRATIONS", DGW_INTENT_GUILD_INTEGRATIONS},
    {"GUILD_WEBHOOKS", DGW_INTENT_GUILD_WEBHOOKS},
    {"GUILD_INVITES", DGW_INTENT_GUILD_INVITES},
    {"GUILD_VOICE_STATES", DGW_INTENT_GUILD_VOICE_STATES},
    {"GUILD_PRESENCES", DGW_INTENT_GUILD_PRESENCES},
    {"GUILD_MESSAGES", DGW_INTENT_GUILD_MESSAGES},
    {"GUILD_MESSAGE_REACTIONS", DGW_INTENT_GUILD_MESSAGE_REACTIONS},
    {"GUILD_MESSAGE_TYPING", DGW_INTENT_GUILD_MESSAGE_TYPING},
    {"DIRECT_MESSAGES", DGW_INTENT_DIRECT_MESSAGES},
    {"DIRECT_MESSAGE_REACTIONS", DGW_INTENT_DIRECT_MESSAGE_REACTIONS},
    {"DIRECT_MESSAGE_TYPING", DGW_INTENT_DIRECT_MESSAGE_TYPING},
    {"MESSAGE_CONTENT", DGW_INTENT_MESSAGE_CONTENT},
    {"GUILD_SCHEDULED_EVENTS", DGW_INTENT_GUILD_SCHEDULED_EVENTS},
    {"AUTO_MODERATION_CONFIGURATION", DGW_INTENT_AUTO_MODERATION_CONFIGURATION},
    {"AUTO_MODERATION_EXECUTION", DGW_INTENT_AUTO_MODERATION_EXECUTION},
    {"GUILD_MESSAGE_POLLS", DGW_INTENT_GUILD_MESSAGE_POLLS},
    {"DIRECT_MESSAGE_POLLS", DGW_INTENT_DIRECT_MESSAGE_POLLS},
    /* Sets, then the names Discord used before. */
    {"ALL", DGW_INTENTS_ALL},
    {"PRIVILEGED", DGW_INTENTS_PRIVILEGED},
    {"UNPRIVILEGED", DGW_INTENTS_UNPRIVILEGED},
    {"GUILD_BANS", DGW_INTENT_GUILD_MODERATION},
    {"GUILD_EMOJIS", DGW_INTENT_GUILD_EXPRESSIONS},
    {"GUILD_EMOJIS_AND_STICKERS", DGW_INTENT_GUILD_EXPRESSIONS},
};
#define NNAMES (sizeof(names) / sizeof(names[0]))
/* The first entries are the single bits, in bit order. */
#define NSINGLE 21

const char *dgw_intent_name(uint64_t bit) {
  for (size_t i = 0; i < NSINGLE; i++)
    if (names[i].bits == bit)
      return names[i].name;
  return NULL;
}

static int is_separator(char ch) {
  return ch == ',' || ch == '|' || ch == '+' || ch == ' ' || ch == '\t';
}

/* One word: a name (any case) or a decimal number of defined bits. */
static int parse_word(const char *w, size_t len, uint64_t *bits, char *why,
                      size_t why_size) {
  if (w[0] >= '0' && w[0] <= '9') {
    char buf[24], *end;
    unsigned long long v;

    if (len >= sizeof(buf))
      goto unknown;
    memcpy(buf, w, len);
    buf[len] = '\0';
    errno = 0;
    v = strtoull(buf, &end, 10);
    if (errno != 0 || *end != '\0')
      goto unknown;
    if ((v & ~DGW_INTENTS_ALL) != 0) {
      dgw_set_why(
          why, why_size,
          "intents %llu set undefined bits (0x%llx); Discord closes with 4013",
          v, v & ~(unsigned long long)DGW_INTENTS_ALL);
      return DGW_ERR_INVALID_ARGUMENT;
    }
    *bits = v;
    return DGW_OK;
  }
  for (size_t i = 0; i < NNAMES; i++)
    if (strlen(names[i].name) == len &&
        strncasecmp(names[i].name, w, len) == 0) {
      *bits = names[i].bits;
      return DGW_OK;
    }
unknown:
  dgw_set_why(why, why_size,
              "unknown intent \"%.*s\" (names as Discord spells "
              "them, e.g. GUILD_MESSAGES, or a number)",
              len > 64 ? 64 : (int)len, w);
  return DGW_ERR_INVALID_ARGUMENT;
}

int dgw_intents_parse(const char *text, uint64_t *out, char *why,
                      size_t why_size) {
  uint64_t all = 0;
  int words = 0;

  if (text == NULL || out == NULL) {
    dgw_set_why(why, why_size, "no intents given");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  for (const char *p = text; *p != '\0';) {
    const char *w;
    uint64_t bits;
    int rv;

    while (is_separator(*p))
      p++;
    if (*p == '\0')
      break;
    w = p;
    while (*p != '\0' && !is_separator(*p))
      p++;
    rv = parse_word(w, (size_t)(p - w), &bits, why, why_size);
    if (rv != DGW_OK)
      return rv;
    all |= bits;
    words++;
  }
  if (words == 0) {
    dgw_set_why(why, why_size, "no intents given (use 0 for none)");
    return DGW_ERR_INVALID_ARGUMENT;
  }
  *out = all;
  return DGW_OK;
}
