/*
 * The seeded event corpus: dispatches shaped like what a mid-size bot
 * receives (gateway v10 field sets and key order as Discord sends them),
 * drawn from fixed pools of guilds, channels, users and words so that the
 * zlib stream compresses about as well as the real one.  Deterministic:
 * the same seed gives the same bytes.
 */
#include "config.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <malloc.h>
#include <sys/resource.h>

#define ZLIB_CONST
#include <zlib.h>

#include "bench.h"

/* ------------------------------------------------------------ helpers */

void die(const char *fmt, ...) {
  va_list ap;

  fflush(stdout);
  fputs("dgw-bench: ", stderr);
  va_start(ap, fmt);
  vfprintf(stderr, fmt, ap);
  va_end(ap);
  fputc('\n', stderr);
  exit(1);
}

void sb_reserve(struct sbuf *b, size_t more) {
  size_t cap;
  char *p;

  if (b->cap - b->len > more)
    return;
  cap = b->cap == 0 ? 4096 : b->cap;
  while (cap - b->len <= more)
    cap *= 2;
  p = realloc(b->p, cap);
  if (p == NULL)
    die("out of memory (%zu bytes)", cap);
  b->p = p;
  b->cap = cap;
}

void sb_mem(struct sbuf *b, const void *p, size_t n) {
  sb_reserve(b, n);
  memcpy(b->p + b->len, p, n);
  b->len += n;
  b->p[b->len] = '\0';
}

void sb_str(struct sbuf *b, const char *s) {
  sb_mem(b, s, strlen(s));
}

void sb_fmt(struct sbuf *b, const char *fmt, ...) {
  va_list ap;
  int n;

  sb_reserve(b, 256);
  va_start(ap, fmt);
  n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
  va_end(ap);
  if (n < 0)
    die("vsnprintf failed");
  if ((size_t)n >= b->cap - b->len) {
    sb_reserve(b, (size_t)n + 1);
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
  }
  b->len += (size_t)n;
}

void sb_free(struct sbuf *b) {
  free(b->p);
  b->p = NULL;
  b->len = b->cap = 0;
}

int64_t now_ns(void) {
  struct timespec ts;

  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

double cpu_seconds(void) {
  struct rusage ru;

  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

long rss_now_kb(void) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  long kb = -1;

  if (f == NULL)
    return -1;
  while (fgets(line, sizeof line, f) != NULL)
    if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
      break;
  fclose(f);
  return kb;
}

long rss_peak_kb(void) {
  struct rusage ru;

  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss; /* KiB on Linux */
}

long heap_in_use(void) {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || __GLIBC_MINOR__ >= 33)
  struct mallinfo2 mi = mallinfo2();

  return (long)mi.uordblks + (long)mi.hblkhd;
#else
  return -1;
#endif
}

/* ------------------------------------------------------------- pools */

static const char *const words[] = {
    "the",     "a",       "and",    "to",     "of",      "is",      "it",
    "you",     "that",    "in",     "i",      "for",     "on",      "was",
    "with",    "this",    "be",     "have",   "are",     "not",     "but",
    "at",      "they",    "just",   "so",     "what",    "we",      "can",
    "do",      "if",      "like",   "get",    "my",      "out",     "up",
    "no",      "yeah",    "lol",    "ok",     "game",    "server",  "bot",
    "role",    "channel", "voice",  "stream", "tonight", "raid",    "patch",
    "build",   "deploy",  "ping",   "pong",   "gg",      "nice",    "thanks",
    "anyone",  "help",    "error",  "crash",  "update",  "version", "fixed",
    "issue",   "merge",   "review", "test",   "docs",    "meme",    "music",
    "queue",   "skip",    "play",   "pause",  "event",   "today",   "tomorrow",
    "weekend", "morning", "night",  "here",   "there",   "link",    "image",
    "video",   "clip",    "ranked", "match",  "team",    "lobby",   "map",
};
#define NWORDS (sizeof words / sizeof words[0])

static const char *const syllables[] = {
    "ka", "ri", "to", "mo", "na", "shi", "ze",  "lu",  "vi",  "dra",
    "xo", "ny", "el", "ar", "qu", "bee", "fox", "owl", "pix", "rex",
};
#define NSYL (sizeof syllables / sizeof syllables[0])

static const char *const games[] = {
    "Minecraft",          "Valorant",     "League of Legends",
    "Visual Studio Code", "Spotify",      "Rocket League",
    "Counter-Strike 2",   "Elden Ring",   "Stardew Valley",
    "Factorio",           "Apex Legends", "Terraria",
};
#define NGAMES (sizeof games / sizeof games[0])

/* Emoji as UTF-8 bytes, and a few custom ones. */
static const char *const emoji[] = {
    "\xf0\x9f\x91\x8d", "\xe2\x9d\xa4\xef\xb8\x8f",
    "\xf0\x9f\x98\x82", "\xf0\x9f\x8e\x89",
    "\xf0\x9f\x94\xa5", "\xf0\x9f\x91\x80",
    "pepega",           "kekw",
    "catjam",
};
#define NEMOJI (sizeof emoji / sizeof emoji[0])

static const char *const statuses[] = {"online", "online", "online",
                                       "idle",   "dnd",    "offline"};

#define NGUILDS 12
#define NCHANNELS 16 /* per guild */
#define NROLES 24    /* per guild */
#define NUSERS 4000

struct user {
  uint64_t id;
  char name[24];
  char avatar[33]; /* "" when none */
  unsigned flags;
};

struct corpus {
  uint64_t rng;
  uint64_t clock_ms; /* advances with every event */
  uint64_t guild[NGUILDS];
  uint64_t channel[NGUILDS][NCHANNELS];
  uint64_t role[NGUILDS][NROLES];
  struct user user[NUSERS];
};

/* splitmix64 */
static uint64_t rnd(struct corpus *c) {
  uint64_t z = (c->rng += 0x9e3779b97f4a7c15u);

  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9u;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebu;
  return z ^ (z >> 31);
}

static unsigned below(struct corpus *c, unsigned n) {
  return (unsigned)(rnd(c) % n);
}

/* A snowflake for a moment `ms` after the Unix epoch. */
static uint64_t snowflake(struct corpus *c, uint64_t ms) {
  return ((ms - 1420070400000u) << 22) | (rnd(c) & 0x3fffffu);
}

/* Users are not all equally active: a skewed pick. */
static const struct user *pick_user(struct corpus *c) {
  unsigned a = below(c, NUSERS), b = below(c, NUSERS);

  return &c->user[a < b ? a : b];
}

struct corpus *corpus_new(uint64_t seed) {
  struct corpus *c = calloc(1, sizeof *c);
  static const char hex[] = "0123456789abcdef";

  if (c == NULL)
    die("out of memory");
  c->rng = seed;
  c->clock_ms = 1717200000000u; /* June 2024 */
  for (int g = 0; g < NGUILDS; g++) {
    c->guild[g] = snowflake(c, 1450000000000u + rnd(c) % 150000000000u);
    for (int i = 0; i < NCHANNELS; i++)
      c->channel[g][i] = snowflake(c, 1500000000000u + rnd(c) % 200000000000u);
    for (int i = 0; i < NROLES; i++)
      c->role[g][i] = snowflake(c, 1500000000000u + rnd(c) % 200000000000u);
  }
  for (int u = 0; u < NUSERS; u++) {
    struct user *us = &c->user[u];
    size_t n = 0;
    unsigned parts = 2 + below(c, 3);

    us->id = snowflake(c, 1430000000000u + rnd(c) % 280000000000u);
    for (unsigned i = 0; i < parts; i++) {
      const char *s = syllables[below(c, NSYL)];
      size_t l = strlen(s);

      memcpy(us->name + n, s, l);
      n += l;
    }
    if (below(c, 3) == 0)
      n += (size_t)snprintf(us->name + n, sizeof us->name - n, "%u",
                            below(c, 1000));
    us->name[n] = '\0';
    if (below(c, 5) != 0) {
      for (int i = 0; i < 32; i++)
        us->avatar[i] = hex[below(c, 16)];
      us->avatar[32] = '\0';
    }
    us->flags = below(c, 4) == 0 ? 64u << below(c, 4) : 0;
  }
  return c;
}

void corpus_free(struct corpus *c) {
  free(c);
}

/* ---------------------------------------------------------- fragments */

static void iso_time(struct sbuf *b, uint64_t ms) {
  time_t t = (time_t)(ms / 1000);
  struct tm tm;

  gmtime_r(&t, &tm);
  sb_fmt(b, "\"%04d-%02d-%02dT%02d:%02d:%02d.%03u000+00:00\"",
         tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min,
         tm.tm_sec, (unsigned)(ms % 1000));
}

static void user_obj(struct sbuf *b, const struct user *u) {
  sb_fmt(b,
         "{\"username\":\"%s\",\"public_flags\":%u,\"id\":\"%llu\","
         "\"global_name\":\"%c%s\",\"discriminator\":\"0\","
         "\"clan\":null,\"avatar_decoration_data\":null,",
         u->name, u->flags, (unsigned long long)u->id, u->name[0] - ('a' - 'A'),
         u->name + 1);
  if (u->avatar[0] != '\0')
    sb_fmt(b, "\"avatar\":\"%s\"}", u->avatar);
  else
    sb_str(b, "\"avatar\":null}");
}

static void roles(struct sbuf *b, struct corpus *c, unsigned g) {
  unsigned n = below(c, 5);

  sb_str(b, "[");
  for (unsigned i = 0; i < n; i++)
    sb_fmt(b, "%s\"%llu\"", i ? "," : "",
           (unsigned long long)c->role[g][below(c, NROLES)]);
  sb_str(b, "]");
}

/* A guild member object; `with_user` adds the nested user. */
static void member_obj(struct sbuf *b, struct corpus *c, unsigned g,
                       const struct user *u, int with_user) {
  sb_str(b, "{");
  if (with_user) {
    sb_str(b, "\"user\":");
    user_obj(b, u);
    sb_str(b, ",");
  }
  sb_str(b, "\"roles\":");
  roles(b, c, g);
  sb_str(b, ",\"premium_since\":null,\"pending\":false,");
  if (below(c, 4) == 0)
    sb_fmt(b, "\"nick\":\"%s%s\",", syllables[below(c, NSYL)], u->name);
  else
    sb_str(b, "\"nick\":null,");
  sb_str(b, "\"mute\":false,\"joined_at\":");
  iso_time(b, 1600000000000u + (u->id >> 22) % 100000000000u);
  sb_str(b, ",\"flags\":0,\"deaf\":false,"
            "\"communication_disabled_until\":null,\"banner\":null,"
            "\"avatar\":null}");
}

static void sentence(struct sbuf *b, struct corpus *c, unsigned max_words) {
  unsigned n = 1 + below(c, max_words);

  for (unsigned i = 0; i < n; i++) {
    sb_str(b, i ? " " : "");
    sb_str(b, words[below(c, NWORDS)]);
  }
  if (below(c, 8) == 0)
    sb_str(b, below(c, 2) ? " \\ud83d\\ude02" : " \\\"quoted\\\"");
}

/* --------------------------------------------------------- the events */

enum kind {
  K_MESSAGE_CREATE,
  K_PRESENCE_UPDATE,
  K_TYPING_START,
  K_MESSAGE_REACTION_ADD,
  K_MESSAGE_REACTION_REMOVE,
  K_GUILD_MEMBER_UPDATE,
  K_GUILD_MEMBER_ADD,
  K_MESSAGE_UPDATE,
  K_MESSAGE_DELETE,
  K_GUILD_CREATE,
};

static const char *const kind_name[] = {
    "MESSAGE_CREATE",       "PRESENCE_UPDATE",         "TYPING_START",
    "MESSAGE_REACTION_ADD", "MESSAGE_REACTION_REMOVE", "GUILD_MEMBER_UPDATE",
    "GUILD_MEMBER_ADD",     "MESSAGE_UPDATE",          "MESSAGE_DELETE",
    "GUILD_CREATE",
};

/* The mix in permille (GUILD_CREATE is placed by the stream, not drawn). */
static const unsigned mix[] = {380, 330, 130, 60, 15, 40, 10, 25, 10};
#define NMIX (sizeof mix / sizeof mix[0])

static void message(struct sbuf *b, struct corpus *c, unsigned g,
                    const struct user *u, int update) {
  uint64_t ch = c->channel[g][below(c, NCHANNELS)];
  uint64_t id = snowflake(c, c->clock_ms);

  sb_fmt(b, "\"type\":0,\"tts\":false,\"timestamp\":");
  iso_time(b, c->clock_ms);
  sb_str(b, ",\"pinned\":false,");
  if (!update)
    sb_fmt(b, "\"nonce\":\"%llu\",",
           (unsigned long long)snowflake(c, c->clock_ms));
  sb_str(b, "\"mentions\":[");
  if (below(c, 6) == 0) {
    const struct user *m = pick_user(c);

    user_obj(b, m);
    b->len--; /* reopen the object to add its member */
    sb_str(b, ",\"member\":");
    member_obj(b, c, g, m, 0);
    sb_str(b, "}");
  }
  sb_str(b, "],\"mention_roles\":[],\"mention_everyone\":false,\"member\":");
  member_obj(b, c, g, u, 0);
  sb_fmt(b, ",\"id\":\"%llu\",\"flags\":0,\"embeds\":[",
         (unsigned long long)id);
  if (below(c, 10) == 0) {
    sb_str(b, "{\"type\":\"link\",\"url\":\"https://example.com/");
    sb_str(b, words[below(c, NWORDS)]);
    sb_str(b, "\",\"title\":\"");
    sentence(b, c, 8);
    sb_str(b, "\",\"description\":\"");
    sentence(b, c, 30);
    sb_str(b, "\"}");
  }
  sb_str(b, "],\"edited_timestamp\":");
  if (update)
    iso_time(b, c->clock_ms + 1000);
  else
    sb_str(b, "null");
  sb_str(b, ",\"content\":\"");
  sentence(b, c, 24);
  sb_fmt(b, "\",\"components\":[],\"channel_id\":\"%llu\",\"author\":",
         (unsigned long long)ch);
  user_obj(b, u);
  sb_fmt(b, ",\"attachments\":[],\"guild_id\":\"%llu\"",
         (unsigned long long)c->guild[g]);
}

static void presence(struct sbuf *b, struct corpus *c, unsigned g,
                     const struct user *u) {
  const char *st = statuses[below(c, 6)];
  unsigned acts = below(c, 3);

  sb_fmt(b, "\"user\":{\"id\":\"%llu\"},\"status\":\"%s\",",
         (unsigned long long)u->id, st);
  sb_fmt(b, "\"guild_id\":\"%llu\",\"client_status\":{\"%s\":\"%s\"},",
         (unsigned long long)c->guild[g],
         below(c, 3) ? "desktop" : (below(c, 2) ? "mobile" : "web"), st);
  sb_str(b, "\"activities\":[");
  for (unsigned i = 0; i < acts; i++) {
    uint64_t start = c->clock_ms - below(c, 7200000);

    if (i == 0 && below(c, 3) == 0) {
      sb_fmt(b, "%s{\"type\":4,\"state\":\"", i ? "," : "");
      sentence(b, c, 6);
      sb_fmt(b,
             "\",\"name\":\"Custom Status\",\"id\":\"custom\","
             "\"emoji\":{\"name\":\"%s\"},\"created_at\":%llu}",
             emoji[below(c, 6)], (unsigned long long)start);
    } else {
      sb_fmt(b,
             "%s{\"type\":0,\"timestamps\":{\"start\":%llu},"
             "\"name\":\"%s\",\"id\":\"%016llx\",\"created_at\":%llu,"
             "\"application_id\":\"%llu\"}",
             i ? "," : "", (unsigned long long)start, games[below(c, NGAMES)],
             (unsigned long long)(rnd(c) >> 1), (unsigned long long)start,
             (unsigned long long)snowflake(c, 1500000000000u));
    }
  }
  sb_str(b, "]");
}

static void reaction(struct sbuf *b, struct corpus *c, unsigned g,
                     const struct user *u, int add) {
  const char *e = emoji[below(c, NEMOJI)];

  sb_fmt(b, "\"user_id\":\"%llu\",\"type\":0,\"message_id\":\"%llu\",",
         (unsigned long long)u->id,
         (unsigned long long)snowflake(c, c->clock_ms - below(c, 600000)));
  if (add) {
    sb_fmt(b, "\"message_author_id\":\"%llu\",\"member\":",
           (unsigned long long)pick_user(c)->id);
    member_obj(b, c, g, u, 1);
    sb_str(b, ",");
  }
  if ((unsigned char)e[0] < 0x80)
    sb_fmt(b, "\"emoji\":{\"name\":\"%s\",\"id\":\"%llu\"},", e,
           (unsigned long long)snowflake(c, 1600000000000u));
  else
    sb_fmt(b, "\"emoji\":{\"name\":\"%s\",\"id\":null},", e);
  sb_fmt(b, "\"channel_id\":\"%llu\",\"burst\":false,\"guild_id\":\"%llu\"",
         (unsigned long long)c->channel[g][below(c, NCHANNELS)],
         (unsigned long long)c->guild[g]);
}

static void event_body(struct sbuf *b, struct corpus *c, enum kind k) {
  unsigned g = below(c, NGUILDS);
  const struct user *u = pick_user(c);

  switch (k) {
  case K_MESSAGE_CREATE:
    message(b, c, g, u, 0);
    break;
  case K_MESSAGE_UPDATE:
    message(b, c, g, u, 1);
    break;
  case K_PRESENCE_UPDATE:
    presence(b, c, g, u);
    break;
  case K_TYPING_START:
    sb_fmt(b, "\"user_id\":\"%llu\",\"timestamp\":%llu,\"member\":",
           (unsigned long long)u->id, (unsigned long long)(c->clock_ms / 1000));
    member_obj(b, c, g, u, 1);
    sb_fmt(b, ",\"channel_id\":\"%llu\",\"guild_id\":\"%llu\"",
           (unsigned long long)c->channel[g][below(c, NCHANNELS)],
           (unsigned long long)c->guild[g]);
    break;
  case K_MESSAGE_REACTION_ADD:
    reaction(b, c, g, u, 1);
    break;
  case K_MESSAGE_REACTION_REMOVE:
    reaction(b, c, g, u, 0);
    break;
  case K_GUILD_MEMBER_UPDATE:
  case K_GUILD_MEMBER_ADD: {
    size_t at = b->len;

    member_obj(b, c, g, u, 1);
    /* Splice the member's fields into d and add guild_id. */
    memmove(b->p + at, b->p + at + 1, b->len - at - 1);
    b->len -= 2;
    sb_fmt(b, ",\"guild_id\":\"%llu\"", (unsigned long long)c->guild[g]);
    break;
  }
  case K_MESSAGE_DELETE:
    sb_fmt(b, "\"id\":\"%llu\",\"channel_id\":\"%llu\",\"guild_id\":\"%llu\"",
           (unsigned long long)snowflake(c, c->clock_ms - below(c, 600000)),
           (unsigned long long)c->channel[g][below(c, NCHANNELS)],
           (unsigned long long)c->guild[g]);
    break;
  case K_GUILD_CREATE:
    break;
  }
}

const char *corpus_next(struct corpus *c, struct sbuf *out, int64_t seq,
                        size_t *stamp_at) {
  unsigned r = below(c, 1000);
  enum kind k = K_MESSAGE_CREATE;

  for (unsigned i = 0, acc = 0; i < NMIX; i++) {
    acc += mix[i];
    if (r < acc) {
      k = (enum kind)i;
      break;
    }
  }
  c->clock_ms += below(c, 40);
  sb_fmt(out, "{\"t\":\"%s\",\"s\":%lld,\"op\":0,\"d\":{", kind_name[k],
         (long long)seq);
  if (stamp_at != NULL) {
    /* A string: JSON numbers may not have leading zeros. */
    sb_str(out, "\"bench_t0\":\"");
    *stamp_at = out->len;
    sb_str(out, "00000000000000000000\",");
  }
  event_body(out, c, k);
  sb_str(out, "}}");
  return kind_name[k];
}

void corpus_guild_create(struct corpus *c, struct sbuf *out, int64_t seq,
                         unsigned members) {
  sb_fmt(out,
         "{\"t\":\"GUILD_CREATE\",\"s\":%lld,\"op\":0,\"d\":", (long long)seq);
  corpus_guild_create_d(c, out, members);
  sb_str(out, "}");
}

void corpus_guild_create_d(struct corpus *c, struct sbuf *out,
                           unsigned members) {
  unsigned g = below(c, NGUILDS);

  sb_fmt(out,
         "{\"id\":\"%llu\",\"name\":\"guild %u\",\"icon\":null,"
         "\"owner_id\":\"%llu\",\"large\":true,\"member_count\":%u,"
         "\"joined_at\":",
         (unsigned long long)c->guild[g], g, (unsigned long long)c->user[g].id,
         members);
  iso_time(out, c->clock_ms);
  sb_str(out, ",\"roles\":[");
  for (unsigned i = 0; i < NROLES; i++)
    sb_fmt(out,
           "%s{\"id\":\"%llu\",\"name\":\"%s\",\"color\":%u,\"hoist\":%s,"
           "\"position\":%u,\"permissions\":\"%llu\",\"managed\":false,"
           "\"mentionable\":false,\"flags\":0}",
           i ? "," : "", (unsigned long long)c->role[g][i],
           words[below(c, NWORDS)], below(c, 0xffffff),
           below(c, 2) ? "true" : "false", i,
           (unsigned long long)(rnd(c) & 0x1ffffffffffu));
  sb_str(out, "],\"channels\":[");
  for (unsigned i = 0; i < NCHANNELS; i++)
    sb_fmt(out,
           "%s{\"id\":\"%llu\",\"type\":%u,\"name\":\"%s-%s\","
           "\"position\":%u,\"permission_overwrites\":[],\"nsfw\":false,"
           "\"topic\":null,\"last_message_id\":\"%llu\"}",
           i ? "," : "", (unsigned long long)c->channel[g][i],
           i % 4 == 3 ? 2u : 0u, words[below(c, NWORDS)],
           words[below(c, NWORDS)], i,
           (unsigned long long)snowflake(c, c->clock_ms));
  sb_str(out, "],\"members\":[");
  for (unsigned i = 0; i < members; i++) {
    if (i)
      sb_str(out, ",");
    member_obj(out, c, g, &c->user[i % NUSERS], 1);
  }
  sb_str(out, "],\"presences\":[");
  for (unsigned i = 0; i < members / 4; i++) {
    sb_str(out, i ? ",{" : "{");
    presence(out, c, g, &c->user[below(c, NUSERS)]);
    sb_str(out, "}");
  }
  sb_str(out, "],\"voice_states\":[],\"threads\":[],\"stickers\":[],"
              "\"emojis\":[],\"features\":[\"COMMUNITY\",\"NEWS\"]}");
}

void corpus_stamp(char *digits, int64_t t) {
  for (int i = 19; i >= 0; i--) {
    digits[i] = (char)('0' + t % 10);
    t /= 10;
  }
}

/* ------------------------------------------------------------- stream */

void ws_frame(struct sbuf *out, int opcode, const void *data, size_t len) {
  uint8_t h[10];
  size_t n = 2;

  h[0] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    h[1] = (uint8_t)len;
  } else if (len < 65536) {
    h[1] = 126;
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
    n = 4;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; i++)
      h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
    n = 10;
  }
  sb_mem(out, h, n);
  sb_mem(out, data, len);
}

void bench_ready_payload(struct sbuf *out) {
  sb_str(out,
         "{\"t\":\"READY\",\"s\":1,\"op\":0,\"d\":{\"v\":10,"
         "\"user_settings\":{},\"user\":{\"verified\":true,"
         "\"username\":\"benchbot\",\"mfa_enabled\":false,"
         "\"id\":\"1100000000000000001\",\"flags\":0,\"email\":null,"
         "\"discriminator\":\"0\",\"bot\":true,\"avatar\":null},"
         "\"session_type\":\"normal\",\"session_id\":\"" BENCH_READY_SESSION
         "\",\"resume_gateway_url\":\"wss://gateway-us-east1-b."
         "discord.gg\",\"relationships\":[],\"private_channels\":[],"
         "\"presences\":[],\"guilds\":[],\"guild_join_requests\":[],"
         "\"geo_ordered_rtc_regions\":[\"us-east\"],\"auth\":{},"
         "\"application\":{\"id\":\"1100000000000000001\","
         "\"flags\":0},\"_trace\":[\"[\\\"gateway-prd\\\"]\"]}}");
}

/* Compresses `len` bytes of `json` as the next payload of the stream and
 * appends the result as one frame. */
static void add_payload(struct stream *s, struct packer *zs,
                        struct sbuf *frames, struct sbuf *zbuf,
                        const char *json, size_t len, size_t *cap_msgs) {
  if (packer_run(zs, zbuf, json, len) != 0)
    die("compression failed");
  if (s->nmsg == *cap_msgs) {
    *cap_msgs = *cap_msgs ? *cap_msgs * 2 : 1024;
    s->msg_off = realloc(s->msg_off, *cap_msgs * sizeof *s->msg_off);
    s->msg_len = realloc(s->msg_len, *cap_msgs * sizeof *s->msg_len);
    if (s->msg_off == NULL || s->msg_len == NULL)
      die("out of memory");
  }
  ws_frame(frames, 2, zbuf->p, zbuf->len);
  s->msg_off[s->nmsg] = frames->len - zbuf->len;
  s->msg_len[s->nmsg] = zbuf->len;
  s->nmsg++;
}

void stream_build(struct stream *s, uint64_t seed, uint64_t events,
                  unsigned large, unsigned large_members, int zstd) {
  struct corpus *c = corpus_new(seed);
  struct sbuf frames = {0}, zbuf = {0}, json = {0};
  size_t cap_msgs = 0;
  struct packer *zs = packer_new(zstd, zstd ? 3 : Z_DEFAULT_COMPRESSION);
  int64_t seq = 1;

  memset(s, 0, sizeof *s);
  s->zstd = zstd;
  add_payload(s, zs, &frames, &zbuf, BENCH_HELLO, strlen(BENCH_HELLO),
              &cap_msgs);
  s->hello_end = frames.len;
  bench_ready_payload(&json);
  add_payload(s, zs, &frames, &zbuf, json.p, json.len, &cap_msgs);
  for (uint64_t i = 0; i < events; i++) {
    /* GUILD_CREATEs evenly spaced: the j-th at events * (2j + 1) / 2n. */
    int is_large = s->large_events < large &&
                   i == events * (2 * s->large_events + 1) / (2 * large);

    json.len = 0;
    seq++;
    if (is_large) {
      corpus_guild_create(c, &json, seq,
                          large_members + 997u * (unsigned)s->large_events);
      s->large_events++;
      s->count_by_kind[K_GUILD_CREATE]++;
    } else {
      const char *name = corpus_next(c, &json, seq, NULL);

      for (unsigned k = 0; k < NMIX; k++)
        if (name == kind_name[k])
          s->count_by_kind[k]++;
    }
    s->timed_raw_bytes += json.len;
    add_payload(s, zs, &frames, &zbuf, json.p, json.len, &cap_msgs);
    s->timed_zbytes += s->msg_len[s->nmsg - 1];
  }
  s->events = events;
  s->last_seq = seq;
  json.len = 0;
  sb_str(&json, "{\"t\":null,\"s\":null,\"op\":7,\"d\":null}");
  s->timed_raw_bytes += json.len;
  add_payload(s, zs, &frames, &zbuf, json.p, json.len, &cap_msgs);
  s->timed_zbytes += s->msg_len[s->nmsg - 1];
  packer_free(zs);
  sb_free(&zbuf);
  sb_free(&json);
  corpus_free(c);
  s->frames = (uint8_t *)frames.p;
  s->frames_len = frames.len;
}

void stream_free(struct stream *s) {
  free(s->frames);
  free(s->msg_off);
  free(s->msg_len);
  memset(s, 0, sizeof *s);
}

const char *corpus_kind_name(unsigned k) {
  return k < sizeof kind_name / sizeof kind_name[0] ? kind_name[k] : NULL;
}
