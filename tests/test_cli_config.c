/* Unit tests: the `dgw run` config file (tools/cli/botconfig.c): what each
 * accepted form turns into, and the message each mistake gets. */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include <dgw/dgw.h>

#include "botconfig.h"

static char dir[64];
static char path[128];

/* The environment the configs see. */
static char *fake_getenv(const char *name) {
  if (strcmp(name, "DISCORD_TOKEN") == 0)
    return "env-token";
  if (strcmp(name, "OTHER_TOKEN") == 0)
    return "Bot other-token";
  if (strcmp(name, "EMPTY_TOKEN") == 0)
    return "";
  return NULL;
}

static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof(dir), "/tmp/dgw-cfg-XXXXXX");
  if (mkdtemp(dir) == NULL)
    return -1;
  snprintf(path, sizeof(path), "%s/bot.json", dir);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  unlink(path);
  rmdir(dir);
  return 0;
}

static void write_config(const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");

  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  assert_int_equal(chmod(path, mode), 0);
}

static void load_ok(const char *text, struct cli_config *cfg) {
  char why[512] = "";

  write_config(text, 0644);
  if (cli_config_load(path, cfg, fake_getenv, why, sizeof(why)) != 0)
    fail_msg("refused: %s", why);
}

/* The config must be refused with a message holding `expect`. */
static void load_bad(const char *text, const char *expect) {
  struct cli_config cfg;
  char why[512] = "";

  write_config(text, 0644);
  if (cli_config_load(path, &cfg, fake_getenv, why, sizeof(why)) == 0)
    fail_msg("accepted: %s", text);
  if (strstr(why, expect) == NULL)
    fail_msg("for %s: \"%s\" lacks \"%s\"", text, why, expect);
  /* The message names the file. */
  assert_non_null(strstr(why, path));
}

static void test_minimal_and_defaults(void **state) {
  struct cli_config cfg;

  (void)state;
  load_ok("{\"intents\": 513}", &cfg);
  assert_string_equal(cfg.token, "env-token");
  assert_true(cfg.intents == 513);
  assert_int_equal(cfg.shards_auto, 1); /* no gateway_url: ask Discord */
  assert_int_equal(cfg.compress, 1);
  assert_int_equal(cfg.plugins_strict, 1);
  assert_int_equal(cfg.log_level, DGW_LOG_INFO);
  assert_null(cfg.gateway_url);
  assert_null(cfg.session_file);
  assert_int_equal(cfg.nplugins, 0);
  cli_config_free(&cfg);

  /* A gateway of one's own and no shards: one shard, no REST. */
  load_ok("{\"intents\": 0, \"gateway_url\": \"ws://127.0.0.1:7878\"}", &cfg);
  assert_int_equal(cfg.shards_auto, 0);
  assert_int_equal(cfg.shard_first, 0);
  assert_int_equal(cfg.shard_count, 1);
  assert_int_equal(cfg.shard_total, 1);
  assert_string_equal(cfg.gateway_url, "ws://127.0.0.1:7878");
  cli_config_free(&cfg);

  /* compress by name (docs/transport.md): 0 none, 1 zlib, 2 zstd. */
  load_ok("{\"intents\": 0, \"compress\": \"zstd-stream\"}", &cfg);
  assert_int_equal(cfg.compress, 2);
  cli_config_free(&cfg);
  load_ok("{\"intents\": 0, \"compress\": \"none\"}", &cfg);
  assert_int_equal(cfg.compress, 0);
  cli_config_free(&cfg);
  load_bad("{\"intents\": 1, \"compress\": \"zstd\"}",
           "\"zstd-stream\", \"none\"");
}

static void test_every_key(void **state) {
  struct cli_config cfg;
  char want[256];
  FILE *ca;

  (void)state;
  snprintf(want, sizeof(want), "%s/ca.pem", dir); /* must be readable */
  ca = fopen(want, "w");
  assert_non_null(ca);
  fclose(ca);
  load_ok(
      "{\"token_env\": \"OTHER_TOKEN\",\n"
      " \"intents\": [\"GUILDS\", \"guild_messages\", \"MESSAGE_CONTENT\"],\n"
      " \"shards\": {\"first\": 2, \"count\": 2, \"total\": 8},\n"
      " \"gateway_url\": \"wss://gw.example\",\n"
      " \"api_url\": \"https://api.example/v10\",\n"
      " \"ca_file\": \"ca.pem\",\n"
      " \"compress\": false,\n"
      " \"large_threshold\": 250,\n"
      " \"lazy_connect\": 1500,\n"
      " \"quiet_sleep_ms\": 60000,\n"
      " \"presence\": {\"status\": \"idle\", \"afk\": false},\n"
      " \"plugins\": [\"stats\", {\"path\": \"p/my.so\", \"config\": "
      "{\"a\": 1}}, {\"name\": \"log\"}],\n"
      " \"plugins_strict\": false,\n"
      " \"session_file\": \"s.json\",\n"
      " \"log_level\": \"debug\"}\n",
      &cfg);
  assert_string_equal(cfg.token, "other-token"); /* "Bot " dropped */
  assert_true(cfg.intents == (DGW_INTENT_GUILDS | DGW_INTENT_GUILD_MESSAGES |
                              DGW_INTENT_MESSAGE_CONTENT));
  assert_int_equal(cfg.shards_auto, 0);
  assert_int_equal(cfg.shard_first, 2);
  assert_int_equal(cfg.shard_count, 2);
  assert_int_equal(cfg.shard_total, 8);
  assert_string_equal(cfg.gateway_url, "wss://gw.example");
  assert_string_equal(cfg.api_url, "https://api.example/v10");
  /* Relative paths are the config file's directory's. */
  snprintf(want, sizeof(want), "%s/ca.pem", dir);
  assert_string_equal(cfg.ca_file, want);
  assert_int_equal(cfg.compress, 0);
  assert_int_equal(cfg.large_threshold, 250);
  assert_int_equal(cfg.lazy_connect, 1);
  assert_int_equal(cfg.lazy_lead_ms, 1500);
  assert_int_equal(cfg.quiet_sleep_ms, 60000);
  assert_non_null(strstr(cfg.presence_json, "\"idle\""));
  assert_int_equal(cfg.nplugins, 3);
  assert_string_equal(cfg.plugins[0].name_or_path, "stats");
  assert_string_equal(cfg.plugins[0].config_json, "{}");
  snprintf(want, sizeof(want), "%s/p/my.so", dir);
  assert_string_equal(cfg.plugins[1].name_or_path, want);
  assert_string_equal(cfg.plugins[1].config_json, "{\"a\":1}");
  assert_string_equal(cfg.plugins[2].name_or_path, "log");
  assert_int_equal(cfg.plugins_strict, 0);
  snprintf(want, sizeof(want), "%s/s.json", dir);
  assert_string_equal(cfg.session_file, want);
  assert_int_equal(cfg.log_level, DGW_LOG_DEBUG);
  cli_config_free(&cfg);
  snprintf(want, sizeof(want), "%s/ca.pem", dir);
  unlink(want);
}

static void test_shard_forms(void **state) {
  struct cli_config cfg;

  (void)state;
  load_ok("{\"intents\": 1, \"shards\": 4}", &cfg);
  assert_int_equal(cfg.shards_auto, 0);
  assert_int_equal(cfg.shard_first, 0);
  assert_int_equal(cfg.shard_count, 4);
  assert_int_equal(cfg.shard_total, 4);
  cli_config_free(&cfg);
  load_ok("{\"intents\": 1, \"shards\": \"auto\", \"gateway_url\": "
          "\"ws://127.0.0.1:1\"}",
          &cfg);
  assert_int_equal(cfg.shards_auto, 1);
  cli_config_free(&cfg);
  /* count defaults to the rest of the total. */
  load_ok("{\"intents\": 1, \"shards\": {\"first\": 3, \"total\": 10}}", &cfg);
  assert_int_equal(cfg.shard_first, 3);
  assert_int_equal(cfg.shard_count, 7);
  assert_int_equal(cfg.shard_total, 10);
  cli_config_free(&cfg);
}

/* The token may sit in the file only when nobody else can read it. */
static void test_token_in_file(void **state) {
  struct cli_config cfg;
  char why[512];

  (void)state;
  write_config("{\"intents\": 1, \"token\": \"file-token\"}", 0600);
  assert_int_equal(cli_config_load(path, &cfg, fake_getenv, why, sizeof(why)),
                   0);
  assert_string_equal(cfg.token, "file-token");
  cli_config_free(&cfg);
  write_config("{\"intents\": 1, \"token\": \"file-token\"}", 0640);
  assert_int_equal(cli_config_load(path, &cfg, fake_getenv, why, sizeof(why)),
                   -1);
  assert_non_null(strstr(why, "token: a token in a file others can read"));
}

static void test_mistakes_are_named(void **state) {
  (void)state;
  load_bad("", "not valid JSON at line 1: unexpected end of file");
  load_bad("{\"intents\": 1,\n\n \"shards\" 4}", "not valid JSON at line 3");
  load_bad("{\"intents\": 1} {}", "text after the JSON object");
  load_bad("\"intents\"", "must be a JSON object");
  load_bad("{}", "intents: required");
  load_bad("{\"intents\": \"GUILDS,GUILD\"}", "unknown intent \"GUILD\"");
  load_bad("{\"intents\": [\"GUILDS\", 5]}", "intents: entry 1 is not a name");
  load_bad("{\"intents\": 131072}", "4013");
  load_bad("{\"intents\": -1}", "intents: must be between");
  load_bad("{\"intents\": true}", "intents: must be a number, a string or");
  load_bad("{\"intents\": 1, \"intnets\": 2}", "unknown key \"intnets\"");
  load_bad("{\"intents\": 1, \"shards\": 0}", "shards: must be between 1");
  load_bad("{\"intents\": 1, \"shards\": \"many\"}",
           "shards: must be \"auto\"");
  load_bad("{\"intents\": 1, \"shards\": {\"count\": 2}}",
           "\"total\" is required");
  load_bad("{\"intents\": 1, \"shards\": {\"first\": 4, \"total\": 4}}",
           "goes past total");
  load_bad("{\"intents\": 1, \"shards\": {\"total\": 4, \"last\": 3}}",
           "unknown key \"last\"");
  load_bad("{\"intents\": 1, \"compress\": \"yes\"}",
           "compress: must be true or false");
  load_bad("{\"intents\": 1, \"large_threshold\": 10}",
           "large_threshold: must be between 50 and 250");
  load_bad("{\"intents\": 1, \"lazy_connect\": \"yes\"}",
           "lazy_connect: must be true, false or the lead in ms");
  load_bad("{\"intents\": 1, \"quiet_sleep_ms\": -1}",
           "quiet_sleep_ms: must be between 0 and 86400000");
  load_bad("{\"intents\": 1, \"quiet_sleep_ms\": true}",
           "quiet_sleep_ms: must be a whole number");
  load_bad("{\"intents\": 1, \"lazy_connect\": 0}",
           "lazy_connect: must be between 1 and 600000");
  load_bad("{\"intents\": 1, \"presence\": \"online\"}",
           "presence: must be a presence object");
  load_bad("{\"intents\": 1, \"gateway_url\": \"\"}",
           "gateway_url: must be a non-empty string");
  load_bad("{\"intents\": 1, \"plugins\": \"log\"}",
           "plugins: must be an array");
  load_bad("{\"intents\": 1, \"plugins\": [{\"config\": {}}]}",
           "plugins[0]: give either \"name\" or \"path\"");
  load_bad("{\"intents\": 1, \"plugins\": [\"a/b.so\"]}",
           "plugins[0]: a name has no '/'");
  load_bad(
      "{\"intents\": 1, \"plugins\": [{\"name\": \"log\", \"config\": 3}]}",
      "\"config\" must be a JSON object");
  load_bad("{\"intents\": 1, \"plugins\": [{\"name\": \"log\", \"cfg\": {}}]}",
           "unknown key \"cfg\"");
  load_bad("{\"intents\": 1, \"log_level\": \"verbose\"}",
           "log_level: must be");
  load_bad("{\"intents\": 1, \"token_env\": \"NOT_SET\"}",
           "the environment variable NOT_SET is not set");
  load_bad("{\"intents\": 1, \"token_env\": \"EMPTY_TOKEN\"}",
           "EMPTY_TOKEN is not set");
  load_bad("{\"intents\": 1, \"token\": \"a\", \"token_env\": \"X\"}",
           "not both");
  load_bad("{\"intents\": 1, \"token_env\": \"A\\u0000B\"}",
           "token_env: contains a NUL character");
  load_bad("{\"intents\": 1, \"ca_file\": \"/nonexistent/ca.pem\"}",
           "ca_file: cannot read /nonexistent/ca.pem");
  load_bad("{\"intents\": 1, \"session_file\": \"/nonexistent/dir/s.json\"}",
           "session_file: cannot write in /nonexistent/dir");
}

/* Strict JSON (RFC 8259): what json-c would let through is refused, with
 * the line it is on (and, for a duplicate, the key). */
static void test_strict_json(void **state) {
  (void)state;
  load_bad("{\"intents\": 1,\n}", "line 2: a trailing comma before '}'");
  load_bad("{\"intents\": [1,\n 2,]}", "line 2: a trailing comma before ']'");
  load_bad("{'intents': 1}",
           "line 1: strings take double quotes, not single ones");
  load_bad("{\"intents\": 'GUILDS'}", "strings take double quotes");
  load_bad("{\"intents\": 1 /* all */}",
           "line 1: comments are not allowed in JSON");
  load_bad("/* bot */\n{\"intents\": 1}", "comments are not allowed");
  load_bad("{\"intents\": 1}\n// end\n", "text after the JSON object (line 2)");
  load_bad("{\"intents\": 1,\n \"intents\": 2}",
           "line 2: duplicate key \"intents\"");
  load_bad("{\"intents\": 1, \"int\\u0065nts\": 2}",
           "duplicate key \"int\\u0065nts\"");
  load_bad("{\"intents\": 1, \"shards\": {\"total\": 2,\n\n\"total\": 3}}",
           "line 3: duplicate key \"total\"");
  load_bad("{\"intents\": NaN}", "expected a value, found 'N'");
  load_bad("{\"intents\": 01}", "no leading zeros");
  load_bad("{\"intents\": 1.}", "digits must follow '.'");
  load_bad("{\"intents\": \"a\tb\"}", "a control character in a string");
  load_bad("{\"intents\": \"\\x\"}", "an unknown escape");
  load_bad("{\"intents\": 1 \"shards\": 2}", "expected ',' or '}'");
  load_bad("{\"intents\" 1}", "expected ':' after the key");
  load_bad("{\"intents\": tru}", "expected a value");
  load_bad("{\"intents\": \"GUILDS}", "a string without its closing quote");
  load_bad("[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]]"
           "]]]]]",
           "nested deeper than 32 levels");
  /* The same key in two different objects is fine. */
  {
    struct cli_config cfg;

    load_ok("{\"intents\": 1, \"plugins\": [{\"name\": \"log\", \"config\": "
            "{\"name\": 1}}, {\"name\": \"stats\"}]}",
            &cfg);
    cli_config_free(&cfg);
  }
}

static void test_unreadable_file(void **state) {
  struct cli_config cfg;
  char why[512];

  (void)state;
  unlink(path);
  assert_int_equal(cli_config_load(path, &cfg, fake_getenv, why, sizeof(why)),
                   -1);
  assert_non_null(strstr(why, "cannot open"));
  /* A directory is not a config either. */
  assert_int_equal(cli_config_load(dir, &cfg, fake_getenv, why, sizeof(why)),
                   -1);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_minimal_and_defaults),
      cmocka_unit_test(test_every_key),
      cmocka_unit_test(test_shard_forms),
      cmocka_unit_test(test_token_in_file),
      cmocka_unit_test(test_mistakes_are_named),
      cmocka_unit_test(test_strict_json),
      cmocka_unit_test(test_unreadable_file),
  };
  return cmocka_run_group_tests_name("cli_config", tests, setup, teardown);
}
