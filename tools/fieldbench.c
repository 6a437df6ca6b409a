/*
 * fieldbench: what a handler pays to read channel_id, author/id and
 * content out of a MESSAGE_CREATE `d`, through the field getters of
 * <dgw/field.h> and through json-c, side by side in one run
 * (docs/fields.md).  Built with the library, run by `make bench-field`,
 * never by `make check`.
 *
 * Usage: fieldbench [seconds per round, default 1] [rounds, default 5]
 */
#include "config.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include <dgw/dgw.h>
#include <dgw/field.h>

#include "payload.h"

/* A plain message in a guild, as the gateway sends it (about 1.3 KB). */
static const char plain[] =
    "{\"type\":0,\"tts\":false,\"timestamp\":\"2026-12-03T08:15:42.123000+00:"
    "00\",\"referenced_message\":null,\"pinned\":false,\"nonce\":"
    "\"1313131313131313131\",\"mentions\":[],\"mention_roles\":[],"
    "\"mention_everyone\":false,\"member\":{\"roles\":[\"41771983423143936\","
    "\"41771983423143937\",\"41771983423143938\"],\"premium_since\":null,"
    "\"pending\":false,\"nick\":null,\"mute\":false,\"joined_at\":\"2021-03-"
    "04T05:06:07.000000+00:00\",\"flags\":0,\"deaf\":false,\"communication_"
    "disabled_until\":null,\"banner\":null,\"avatar\":null},\"id\":"
    "\"1313131313131313132\",\"flags\":0,\"embeds\":[],\"edited_timestamp\":"
    "null,\"content\":\"did anyone try the new build? it crashes on startup "
    "for me when the config has a trailing comma\",\"components\":[],"
    "\"channel_type\":0,\"channel_id\":\"1039485012345678901\",\"author\":{"
    "\"username\":\"carol\",\"public_flags\":0,\"primary_guild\":null,\"id\":"
    "\"1024907412345678901\",\"global_name\":\"Carol\",\"discriminator\":"
    "\"0\",\"collectibles\":null,\"clan\":null,\"avatar_decoration_data\":"
    "null,\"avatar\":\"b2a6536641da18f4a63b23ba4e7b5fe0\"},\"attachments\":"
    "[],\"guild_id\":\"197038439483310086\"}";

/* A reply with a mention, an embed and escapes (about 3 KB): the
 * referenced message carries its own author and channel_id. */
static const char reply[] =
    "{\"type\":19,\"tts\":false,\"timestamp\":\"2026-12-03T08:16:01.456000+"
    "00:00\",\"referenced_message\":{\"type\":0,\"tts\":false,\"timestamp\":"
    "\"2026-12-03T08:15:42.123000+00:00\",\"pinned\":false,\"mentions\":[],"
    "\"mention_roles\":[],\"mention_everyone\":false,\"id\":"
    "\"1313131313131313132\",\"flags\":0,\"embeds\":[],\"edited_timestamp\":"
    "null,\"content\":\"did anyone try the new build? it crashes on startup "
    "for me when the config has a trailing comma\",\"components\":[],"
    "\"channel_id\":\"1039485012345678901\",\"author\":{\"username\":"
    "\"carol\",\"public_flags\":0,\"id\":\"1024907412345678901\","
    "\"global_name\":\"Carol\",\"discriminator\":\"0\",\"clan\":null,"
    "\"avatar_decoration_data\":null,\"avatar\":"
    "\"b2a6536641da18f4a63b23ba4e7b5fe0\"},\"attachments\":[]},"
    "\"pinned\":false,\"nonce\":\"1313131313131313140\",\"message_reference\""
    ":{\"type\":0,\"message_id\":\"1313131313131313132\",\"channel_id\":"
    "\"1039485012345678901\",\"guild_id\":\"197038439483310086\"},"
    "\"mentions\":[{\"username\":\"carol\",\"public_flags\":0,\"member\":{"
    "\"roles\":[\"41771983423143936\"],\"premium_since\":null,\"pending\":"
    "false,\"nick\":null,\"mute\":false,\"joined_at\":\"2021-03-04T05:06:07."
    "000000+00:00\",\"flags\":0,\"deaf\":false,\"communication_disabled_"
    "until\":null,\"avatar\":null},\"id\":\"1024907412345678901\","
    "\"global_name\":\"Carol\",\"discriminator\":\"0\",\"avatar\":"
    "\"b2a6536641da18f4a63b23ba4e7b5fe0\"}],\"mention_roles\":[],"
    "\"mention_everyone\":false,\"member\":{\"roles\":[\"41771983423143937\""
    "],\"premium_since\":\"2024-05-06T07:08:09.000000+00:00\",\"pending\":"
    "false,\"nick\":\"Dave \\ud83d\\udee0\\ufe0f\",\"mute\":false,"
    "\"joined_at\":\"2022-02-02T02:02:02.000000+00:00\",\"flags\":2,\"deaf\":"
    "false,\"communication_disabled_until\":null,\"avatar\":null},\"id\":"
    "\"1313131313131313141\",\"flags\":0,\"embeds\":[{\"type\":\"article\","
    "\"url\":\"https://example.org/issues/17\",\"title\":\"Config parser "
    "rejects \\\"trailing\\\" commas\",\"description\":\"Steps:\\n1. add a "
    "comma\\n2. start the bot\\n\\nExpected: a clear error. Got: a crash "
    "in {parser}.\",\"provider\":{\"name\":\"example.org\"},\"color\":"
    "5814783,\"thumbnail\":{\"width\":400,\"url\":\"https://example.org/t."
    "png\",\"proxy_url\":\"https://images-ext-1.discordapp.net/external/"
    "abc/https/example.org/t.png\",\"height\":400,\"flags\":0}}],"
    "\"edited_timestamp\":null,\"content\":\"<@1024907412345678901> yes "
    "\\u2014 "
    "see https://example.org/issues/17, it\\u2019s the \\\"strict\\\" flag "
    "\\ud83d\\ude05\",\"components\":[],\"channel_type\":0,\"channel_id\":"
    "\"1039485012345678901\",\"author\":{\"username\":\"dave\","
    "\"public_flags\":128,\"primary_guild\":null,\"id\":"
    "\"1024907412345678955\",\"global_name\":\"Dave\",\"discriminator\":"
    "\"0\",\"collectibles\":null,\"clan\":null,\"avatar_decoration_data\":"
    "null,\"avatar\":\"a_9a8b7c6d5e4f30211203f4e5d6c7b8a9\"},"
    "\"attachments\":[],\"guild_id\":\"197038439483310086\"}";

static volatile uint64_t sink;

/* CPU time of this process: on a shared machine, time spent waiting for a
 * core is not the code's. */
static double now(void) {
  struct timespec ts;

  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* The handler through the field getters.  Returns nonzero on failure. */
static int read_fields(const char *d, size_t len) {
  uint64_t channel, author;
  const char *content;
  size_t content_len;
  char buf[4096];

  if (dgw_field_uint64(d, len, "/channel_id", &channel) != DGW_OK ||
      dgw_field_uint64(d, len, "/author/id", &author) != DGW_OK ||
      dgw_field_string_view(d, len, "/content", buf, sizeof buf, &content,
                            &content_len) != DGW_OK)
    return 1;
  sink += channel ^ author ^ content_len ^ (unsigned char)content[0];
  return 0;
}

/* The same through a json-c DOM: a new tokener per event when `tok` is
 * NULL (json_tokener_parse), else `tok` reused as dgw_event_json() does. */
static int read_json_c(const char *d, size_t len, struct json_tokener *tok) {
  struct json_object *root, *channel, *author, *id, *content;
  int err;

  if (tok == NULL)
    root = json_tokener_parse(d); /* d is NUL-terminated here */
  else
    root = dgw_payload_parse_with(tok, d, len, &err);
  if (root == NULL)
    return 1;
  if (!json_object_object_get_ex(root, "channel_id", &channel) ||
      !json_object_object_get_ex(root, "author", &author) ||
      !json_object_object_get_ex(author, "id", &id) ||
      !json_object_object_get_ex(root, "content", &content)) {
    json_object_put(root);
    return 1;
  }
  sink += strtoull(json_object_get_string(channel), NULL, 10) ^
          strtoull(json_object_get_string(id), NULL, 10) ^
          (uint64_t)json_object_get_string_len(content) ^
          (unsigned char)json_object_get_string(content)[0];
  json_object_put(root);
  return 0;
}

enum way { WAY_FIELDS, WAY_JSONC, WAY_JSONC_REUSE };

/* Events per second of one way over `seconds`. */
static double measure(enum way way, const char *d, size_t len,
                      struct json_tokener *tok, double seconds) {
  double start = now(), elapsed;
  uint64_t events = 0;

  do {
    for (int i = 0; i < 256; i++) {
      int failed =
          way == WAY_FIELDS
              ? read_fields(d, len)
              : read_json_c(d, len, way == WAY_JSONC_REUSE ? tok : NULL);

      if (failed) {
        fprintf(stderr, "fieldbench: a read failed\n");
        exit(1);
      }
    }
    events += 256;
    elapsed = now() - start;
  } while (elapsed < seconds);
  return (double)events / elapsed;
}

int main(int argc, char **argv) {
  static const struct {
    const char *name;
    const char *d;
  } samples[] = {{"plain", plain}, {"reply", reply}};
  double seconds = argc > 1 ? atof(argv[1]) : 1.0;
  int rounds = argc > 2 ? atoi(argv[2]) : 5;
  struct json_tokener *tok = dgw_payload_tokener_new();

  if (seconds <= 0 || rounds <= 0 || tok == NULL) {
    fprintf(stderr, "usage: fieldbench [seconds per round] [rounds]\n");
    return 2;
  }
  /* The three ways take turns, round after round, and each keeps its best
   * round: on a shared machine the best is the least disturbed (caches and
   * a busy sibling hyperthread still slow every way). */
  printf("MESSAGE_CREATE: channel_id, author/id, content; best of %d rounds "
         "of %.2f s CPU\n",
         rounds, seconds);
  printf("%-6s %6s %14s %14s %14s %8s %8s\n", "d", "bytes", "fields ev/s",
         "json-c ev/s", "reused ev/s", "ratio", "ratio-r");
  for (size_t k = 0; k < sizeof samples / sizeof samples[0]; k++) {
    size_t len = strlen(samples[k].d);
    double best[3] = {0, 0, 0};

    for (int r = 0; r < rounds; r++)
      for (int w = WAY_FIELDS; w <= WAY_JSONC_REUSE; w++) {
        double rate = measure((enum way)w, samples[k].d, len, tok, seconds);

        if (rate > best[w])
          best[w] = rate;
      }
    printf("%-6s %6zu %14.0f %14.0f %14.0f %7.1fx %7.1fx\n", samples[k].name,
           len, best[0], best[1], best[2], best[0] / best[1],
           best[0] / best[2]);
    printf("{\"sample\":\"%s\",\"bytes\":%zu,\"fields_events_per_s\":%.0f,"
           "\"jsonc_events_per_s\":%.0f,\"jsonc_reused_events_per_s\":%.0f,"
           "\"ratio\":%.2f,\"ratio_reused\":%.2f,\"fields_mb_per_s\":%.1f}\n",
           samples[k].name, len, best[0], best[1], best[2], best[0] / best[1],
           best[0] / best[2], best[0] * (double)len / 1e6);
  }
  json_tokener_free(tok);
  return 0;
}
