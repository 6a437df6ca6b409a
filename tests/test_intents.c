/* Unit tests: gateway intents by name (lib/intents.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dgw/dgw.h>

/* The values of gateway-protocol.md §10, bit by bit. */
static void test_bits_match_the_protocol(void **state) {
  static const struct {
    const char *name;
    int bit;
  } table[] = {
      {"GUILDS", 0},
      {"GUILD_MEMBERS", 1},
      {"GUILD_MODERATION", 2},
      {"GUILD_EXPRESSIONS", 3},
      {"GUILD_INTEGRATIONS", 4},
      {"GUILD_WEBHOOKS", 5},
      {"GUILD_INVITES", 6},
      {"GUILD_VOICE_STATES", 7},
      {"GUILD_PRESENCES", 8},
      {"GUILD_MESSAGES", 9},
      {"GUILD_MESSAGE_REACTIONS", 10},
      {"GUILD_MESSAGE_TYPING", 11},
      {"DIRECT_MESSAGES", 12},
      {"DIRECT_MESSAGE_REACTIONS", 13},
      {"DIRECT_MESSAGE_TYPING", 14},
      {"MESSAGE_CONTENT", 15},
      {"GUILD_SCHEDULED_EVENTS", 16},
      {"AUTO_MODERATION_CONFIGURATION", 20},
      {"AUTO_MODERATION_EXECUTION", 21},
      {"GUILD_MESSAGE_POLLS", 24},
      {"DIRECT_MESSAGE_POLLS", 25},
  };
  uint64_t all = 0;

  (void)state;
  for (size_t i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
    uint64_t v = 0;

    assert_int_equal(dgw_intents_parse(table[i].name, &v, NULL, 0), DGW_OK);
    assert_true(v == UINT64_C(1) << table[i].bit);
    assert_string_equal(dgw_intent_name(v), table[i].name);
    all |= v;
  }
  assert_true(all == DGW_INTENTS_ALL);
  assert_true(DGW_INTENTS_ALL == UINT64_C(53608447));
  assert_true(DGW_INTENTS_UNPRIVILEGED == UINT64_C(53575421));
  assert_null(dgw_intent_name(0));
  assert_null(dgw_intent_name(UINT64_C(1) << 17)); /* unassigned */
  assert_null(dgw_intent_name(3));                 /* two bits */
}

static void test_lists_sets_aliases_numbers(void **state) {
  uint64_t v = 0;

  (void)state;
  assert_int_equal(dgw_intents_parse("GUILDS, GUILD_MESSAGES", &v, NULL, 0),
                   DGW_OK);
  assert_true(v == 513);
  assert_int_equal(
      dgw_intents_parse(" guilds|guild_messages+Message_Content ", &v, NULL, 0),
      DGW_OK);
  assert_true(v == (513 | DGW_INTENT_MESSAGE_CONTENT));
  assert_int_equal(dgw_intents_parse("513", &v, NULL, 0), DGW_OK);
  assert_true(v == 513);
  assert_int_equal(dgw_intents_parse("0", &v, NULL, 0), DGW_OK);
  assert_true(v == 0);
  assert_int_equal(dgw_intents_parse("ALL", &v, NULL, 0), DGW_OK);
  assert_true(v == DGW_INTENTS_ALL);
  assert_int_equal(dgw_intents_parse("PRIVILEGED", &v, NULL, 0), DGW_OK);
  assert_true(v == (DGW_INTENT_GUILD_MEMBERS | DGW_INTENT_GUILD_PRESENCES |
                    DGW_INTENT_MESSAGE_CONTENT));
  assert_int_equal(dgw_intents_parse("UNPRIVILEGED,GUILD_MEMBERS", &v, NULL, 0),
                   DGW_OK);
  assert_true(v == (DGW_INTENTS_UNPRIVILEGED | DGW_INTENT_GUILD_MEMBERS));
  /* The names Discord used before. */
  assert_int_equal(dgw_intents_parse("GUILD_BANS", &v, NULL, 0), DGW_OK);
  assert_true(v == DGW_INTENT_GUILD_MODERATION);
  assert_int_equal(dgw_intents_parse("GUILD_EMOJIS_AND_STICKERS", &v, NULL, 0),
                   DGW_OK);
  assert_true(v == DGW_INTENT_GUILD_EXPRESSIONS);
}

/* Each bad input: an error naming it, and *out untouched. */
static void test_bad_input_is_named(void **state) {
  char why[256];
  uint64_t v = 77;

  (void)state;
  assert_int_equal(dgw_intents_parse("GUILDS,GUILD", &v, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "unknown intent \"GUILD\""));
  assert_true(v == 77);
  /* Bit 17 is not assigned: Discord would close 4013. */
  assert_int_equal(dgw_intents_parse("131072", &v, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "4013"));
  assert_int_equal(dgw_intents_parse("", &v, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_non_null(strstr(why, "no intents"));
  assert_int_equal(dgw_intents_parse(" , |", &v, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(
      dgw_intents_parse("99999999999999999999999", &v, why, sizeof(why)),
      DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_intents_parse("12abc", &v, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_intents_parse(NULL, &v, why, sizeof(why)),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_int_equal(dgw_intents_parse("GUILDS", NULL, NULL, 0),
                   DGW_ERR_INVALID_ARGUMENT);
  assert_true(v == 77);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_bits_match_the_protocol),
      cmocka_unit_test(test_lists_sets_aliases_numbers),
      cmocka_unit_test(test_bad_input_is_named),
  };
  return cmocka_run_group_tests_name("intents", tests, NULL, NULL);
}
