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
};

static void test_bad_urls(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    struct dgw_url u;
    char why[128] = "";

    assert_int_equal(dgw_url_parse(bad[i].url, &u, why, sizeof(why)),
                     DGW_ERR_URL);
    if (strstr(why, bad[i].why) == NULL)
      fail_msg("%s: reason \"%s\" lacks \"%s\"", bad[i].url, why, bad[i].why);
  }
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

/* A 256-byte host does not fit the host buffer and is refused. */
static void test_long_host(void **state) {
  char url[300];
  struct dgw_url u;

  (void)state;
  strcpy(url, "ws://");
  memset(url + 5, 'h', 256);
  url[261] = '\0';
  assert_int_equal(dgw_url_parse(url, &u, NULL, 0), DGW_ERR_URL);
  url[260] = '\0'; /* 255 bytes: fine */
  assert_int_equal(dgw_url_parse(url, &u, NULL, 0), DGW_OK);
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

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_good_urls), cmocka_unit_test(test_bad_urls),
      cmocka_unit_test(test_long_url),  cmocka_unit_test(test_long_host),
      cmocka_unit_test(test_null),      cmocka_unit_test(test_http_urls),
  };
  return cmocka_run_group_tests_name("url", tests, NULL, NULL);
}
