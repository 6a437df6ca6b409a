/* Unit tests: ws://, wss://, http:// and https:// URL parsing (lib/url.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include <dgw/dgw.h>

#include "url.h"

struct good_case {
  const char *url;
  int tls;
  const char *host;
  unsigned port;
  const char *path_query;
  const char *host_header;
};

/* Accepted URLs and what they parse to. */
static const struct good_case good[] = {
    {"wss://gateway.discord.gg", 1, "gateway.discord.gg", 443, "/",
     "gateway.discord.gg"},
    {"wss://gateway.discord.gg/?v=10&encoding=json&compress=zlib-stream", 1,
     "gateway.discord.gg", 443, "/?v=10&encoding=json&compress=zlib-stream",
     "gateway.discord.gg"},
    /* resume_gateway_url arrives bare; a query may follow the host. */
    {"wss://gateway-us-east1-b.discord.gg?v=10", 1,
     "gateway-us-east1-b.discord.gg", 443, "/?v=10",
     "gateway-us-east1-b.discord.gg"},
    {"ws://127.0.0.1:8080/gw", 0, "127.0.0.1", 8080, "/gw", "127.0.0.1:8080"},
    {"WS://LocalHost:80/", 0, "LocalHost", 80, "/", "LocalHost"},
    {"wss://[::1]:9443/x?y=%20z", 1, "::1", 9443, "/x?y=%20z", "[::1]:9443"},
    {"wss://[::1]", 1, "::1", 443, "/", "[::1]"},
    {"ws://h:65535", 0, "h", 65535, "/", "h:65535"},
};

/* Each good URL parses to exactly the expected parts. */
static void test_good_urls(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
    struct dgw_url u;
    char why[128] = "";

    assert_int_equal(dgw_url_parse(good[i].url, &u, why, sizeof(why)), DGW_OK);
    assert_int_equal(u.tls, good[i].tls);
    assert_string_equal(u.host, good[i].host);
    assert_int_equal(u.port, good[i].port);
    assert_string_equal(u.path_query, good[i].path_query);
    assert_string_equal(u.host_header, good[i].host_header);
  }
}

struct bad_case {
  const char *url;
  const char *why; /* a word the reason must contain */
};

/* Refused URLs, each with the reason it must give. */
static const struct bad_case bad[] = {
    {"https://discord.com", "scheme"},
    {"gateway.discord.gg", "scheme"},
    {"wss://", "empty host"},
    {"wss:///path", "empty host"},
    {"wss://user:pw@host/", "user info"},
    {"wss://host:/", "empty port"},
    {"wss://host:0/", "port 0"},
    {"wss://host:65536/", "range"},
    {"wss://host:12a/", "not a number"},
    {"wss://host/#frag", "fragment"},
    {"wss://ho st/", "space"},
    {"wss://host/\x01", "control"},
    {"wss://hö.st/", "non-ASCII"},
    {"wss://[::1/", "unterminated"},
    {"wss://[zz::1]/", "IPv6"},
    {"wss://[::1]x/", "after the host"},
    {"wss://host/%zz", "percent"},
    {"wss://host/a\"b", "invalid character"},
    {"wss://ho$t/", "host name"},
    /* Brackets hold a real IPv6 address (inet_pton), not any hex. */
    {"ws://[1]/", "invalid IPv6 address"},
    {"ws://[abc]/", "invalid IPv6 address"},
    {"ws://[::::::]/", "invalid IPv6 address"},
    {"ws://[1:2:3:4:5:6:7:8:9]/", "invalid IPv6 address"},
    {"ws://[::1::2]/", "invalid IPv6 address"},
    {"ws://[::ffff:1.2.3]/", "invalid IPv6 address"},
    {"ws://[]/", "empty host"},
    /* Host names are RFC 1123 labels: letters, digits, '-'. */
    {"ws://-/", "label starts with '-'"},
    {"ws://.../", "empty label"},
    {"ws://a..b/", "empty label"},
    {"ws://.a/", "empty label"},
    {"ws://a./", "empty label"},
    {"ws://-a.b/", "label starts with '-'"},
    {"ws://a-.b/", "label ends with '-'"},
    {"ws://a.b-:80/", "label ends with '-'"},
    {"ws://a_b/", "invalid character in host name"},
    {"ws://aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa/",
     "label longer than 63"},
};

/* One test per refused URL (its name is the URL): refused with
 * DGW_ERR_URL and a reason naming what is wrong. */
static void test_bad_url(void **state) {
  const struct bad_case *c = *state;
  struct dgw_url u;
  char why[128] = "";

  assert_int_equal(dgw_url_parse(c->url, &u, why, sizeof(why)), DGW_ERR_URL);
  if (strstr(why, c->why) == NULL)
    fail_msg("%s: reason \"%s\" lacks \"%s\"", c->url, why, c->why);
}

/* A URL over 2048 bytes is refused; one just under the cap is fine. */
static void test_long_url(void **state) {
  static char url[DGW_URL_MAX + 2];
  struct dgw_url u;
  char why[128];

  (void)state;
  strcpy(url, "ws://h/");
  memset(url + 7, 'a', DGW_URL_MAX - 7);
  url[DGW_URL_MAX] = '\0';
  assert_int_equal(dgw_url_parse(url, &u, why, sizeof(why)), DGW_OK);
  assert_int_equal(strlen(u.path_query), DGW_URL_MAX - 6);
  url[DGW_URL_MAX] = 'a';
  url[DGW_URL_MAX + 1] = '\0';
  assert_int_equal(dgw_url_parse(url, &u, why, sizeof(why)), DGW_ERR_URL);
  assert_non_null(strstr(why, "longer"));
}

/* A host name of 253 bytes (four labels of 63, 63, 63 and 61) is fine;
 * one more byte is refused, and so is a label of 64 bytes. */
static void test_long_host(void **state) {
  char url[300];
  char why[128] = "";
  struct dgw_url u;

  (void)state;
  strcpy(url, "ws://");
  memset(url + 5, 'h', 254);
  url[5 + 63] = url[5 + 127] = url[5 + 191] = '.';
  url[5 + 253] = '\0';
  assert_int_equal(dgw_url_parse(url, &u, why, sizeof(why)), DGW_OK);
  assert_int_equal(strlen(u.host), 253);
  url[5 + 253] = 'h';
  url[5 + 254] = '\0';
  assert_int_equal(dgw_url_parse(url, &u, why, sizeof(why)), DGW_ERR_URL);
  assert_non_null(strstr(why, "longer than 253"));
  memset(url + 5, 'h', 64);
  url[5 + 64] = '\0';
  assert_int_equal(dgw_url_parse(url, &u, why, sizeof(why)), DGW_ERR_URL);
  assert_non_null(strstr(why, "label longer than 63"));
  url[5 + 63] = '\0';
  assert_int_equal(dgw_url_parse(url, &u, why, sizeof(why)), DGW_OK);
}

/* NULL arguments are an error, not a crash. */
static void test_null(void **state) {
  struct dgw_url u;

  (void)state;
  assert_int_equal(dgw_url_parse(NULL, &u, NULL, 0), DGW_ERR_URL);
  assert_int_equal(dgw_url_parse("ws://h", NULL, NULL, 0), DGW_ERR_URL);
}

/* The REST base URL: http:// and https:// with the same checks, and
 * neither scheme pair accepted by the other parser. */
static void test_http_urls(void **state) {
  struct dgw_url u;
  char why[128] = "";

  (void)state;
  assert_int_equal(
      dgw_url_parse_http("https://discord.com/api/v10", &u, why, sizeof(why)),
      DGW_OK);
  assert_int_equal(u.tls, 1);
  assert_string_equal(u.host, "discord.com");
  assert_int_equal(u.port, 443);
  assert_string_equal(u.path_query, "/api/v10");
  assert_string_equal(u.host_header, "discord.com");
  assert_int_equal(
      dgw_url_parse_http("HTTP://[::1]:8080", &u, why, sizeof(why)), DGW_OK);
  assert_int_equal(u.tls, 0);
  assert_string_equal(u.host, "::1");
  assert_int_equal(u.port, 8080);
  assert_string_equal(u.path_query, "/");
  assert_string_equal(u.host_header, "[::1]:8080");
  assert_int_equal(dgw_url_parse_http("http://h:80/", &u, NULL, 0), DGW_OK);
  assert_string_equal(u.host_header, "h");

  assert_int_equal(
      dgw_url_parse_http("wss://gateway.discord.gg", &u, why, sizeof(why)),
      DGW_ERR_URL);
  assert_non_null(strstr(why, "http:// or https://"));
  assert_int_equal(dgw_url_parse_http("https://a@b/", &u, why, sizeof(why)),
                   DGW_ERR_URL);
  assert_non_null(strstr(why, "user info"));
  assert_int_equal(dgw_url_parse_http("https://h/#x", &u, NULL, 0),
                   DGW_ERR_URL);
  assert_int_equal(dgw_url_parse_http(NULL, &u, NULL, 0), DGW_ERR_URL);
}

#define N_BAD (sizeof(bad) / sizeof(bad[0]))

int main(void) {
  static const struct CMUnitTest fixed[] = {
      cmocka_unit_test(test_good_urls), cmocka_unit_test(test_long_url),
      cmocka_unit_test(test_long_host), cmocka_unit_test(test_null),
      cmocka_unit_test(test_http_urls),
  };
  struct CMUnitTest tests[sizeof(fixed) / sizeof(fixed[0]) + N_BAD];
  size_t n = 0;

  for (size_t i = 0; i < sizeof(fixed) / sizeof(fixed[0]); i++)
    tests[n++] = fixed[i];
  for (size_t i = 0; i < N_BAD; i++) {
    struct CMUnitTest t =
        cmocka_unit_test_prestate(test_bad_url, (void *)&bad[i]);

    t.name = bad[i].url;
    tests[n++] = t;
  }
  return _cmocka_run_group_tests("url", tests, n, NULL, NULL);
}
