/* Unit tests: the RFC 6455 opening handshake (lib/handshake.c). */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <dgw/dgw.h>

#include "handshake.h"

/* The worked example of RFC 6455 section 1.3. */
static void test_accept_rfc_example(void **state) {
  char accept[DGW_WS_ACCEPT_LEN + 1];
  const char *key = "dGhlIHNhbXBsZSBub25jZQ==";

  (void)state;
  dgw_ws_accept_key(key, strlen(key), accept);
  assert_string_equal(accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

/* Keys are 24 base64 characters of 16 random bytes, different each time. */
static void test_make_key(void **state) {
  char a[DGW_WS_KEY_LEN + 1], b[DGW_WS_KEY_LEN + 1];

  (void)state;
  assert_int_equal(dgw_ws_make_key(a), DGW_OK);
  assert_int_equal(dgw_ws_make_key(b), DGW_OK);
  assert_int_equal(strlen(a), DGW_WS_KEY_LEN);
  assert_string_equal(a + 22, "==");
  assert_string_not_equal(a, b);
}

/* The request carries every header the server needs, and no more. */
static void test_request(void **state) {
  char buf[1024];
  int n;

  (void)state;
  n = dgw_handshake_request(buf, sizeof(buf), "gateway.discord.gg",
                            "/?v=10&encoding=json", "dGhlIHNhbXBsZSBub25jZQ==");
  assert_true(n > 0);
  assert_int_equal((size_t)n, strlen(buf));
  assert_non_null(strstr(buf, "GET /?v=10&encoding=json HTTP/1.1\r\n"));
  assert_non_null(strstr(buf, "\r\nHost: gateway.discord.gg\r\n"));
  assert_non_null(strstr(buf, "\r\nUpgrade: websocket\r\n"));
  assert_non_null(strstr(buf, "\r\nConnection: Upgrade\r\n"));
  assert_non_null(
      strstr(buf, "\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"));
  assert_non_null(strstr(buf, "\r\nSec-WebSocket-Version: 13\r\n"));
  assert_int_equal(strcmp(buf + n - 4, "\r\n\r\n"), 0);
  /* Too small a buffer is an error, not a truncated request. */
  assert_int_equal(dgw_handshake_request(buf, 40, "h", "/", "k"),
                   DGW_ERR_INVALID_ARGUMENT);
}

#define ACCEPT "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
#define GOOD                                                                   \
  "HTTP/1.1 101 Switching Protocols\r\n"                                       \
  "Upgrade: websocket\r\n"                                                     \
  "Connection: Upgrade\r\n"                                                    \
  "Sec-WebSocket-Accept: " ACCEPT "\r\n"                                       \
  "\r\n"

static int check(const char *resp, size_t len, size_t *hlen, char *why) {
  /* Copy into an exact-size heap block so ASan catches any overread. */
  char *copy = malloc(len ? len : 1);
  int rv;

  memcpy(copy, resp, len);
  rv = dgw_handshake_check_response(copy, len, ACCEPT, hlen, why, 160);
  free(copy);
  return rv;
}

/* A good response; the frame bytes behind it are not part of the header. */
static void test_response_good(void **state) {
  const char resp[] = GOOD "\x81\x02hi";
  size_t hlen = 0;
  char why[160];

  (void)state;
  assert_int_equal(check(resp, sizeof(resp) - 1, &hlen, why), DGW_OK);
  assert_int_equal(hlen, sizeof(GOOD) - 1);
}

/* Header names and token values are case-insensitive, Connection is a
 * list, and odd spacing is fine. */
static void test_response_lenient_forms(void **state) {
  const char resp[] = "HTTP/1.1 101 Web Socket Protocol Handshake\r\n"
                      "uPgRaDe:   WebSocket  \r\n"
                      "connection: keep-alive, upgrade\r\n"
                      "Server: test\r\n"
                      "sec-websocket-accept:" ACCEPT "\r\n"
                      "\r\n";
  size_t hlen = 0;
  char why[160];

  (void)state;
  assert_int_equal(check(resp, sizeof(resp) - 1, &hlen, why), DGW_OK);
  assert_int_equal(hlen, sizeof(resp) - 1);
}

/* Every proper prefix of a good response asks for more bytes. */
static void test_response_incomplete(void **state) {
  const char resp[] = GOOD;
  size_t hlen;
  char why[160];

  (void)state;
  for (size_t n = 0; n < sizeof(resp) - 1; n++)
    assert_int_equal(check(resp, n, &hlen, why), DGW_ERR_AGAIN);
}

struct bad_response {
  const char *name;
  const char *text;
  const char *why; /* expected part of the reason */
};

static const struct bad_response bad[] = {
    {"not HTTP", "SSH-2.0-OpenSSH\r\n\r\n", "status line"},
    {"not HTTP, incomplete", "SSH-2.0-OpenSSH", "not HTTP"},
    {"200 instead of 101", "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
     "instead of 101"},
    {"401", "HTTP/1.1 401 Unauthorized\r\n\r\n", "401 Unauthorized"},
    {"HTTP/1.0", "HTTP/1.0 101 Switching\r\n\r\n", "status line"},
    {"1010 is not 101",
     "HTTP/1.1 1010 X\r\nUpgrade: websocket\r\nConnection: upgrade\r\n"
     "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
     "instead of 101"},
    {"no Upgrade",
     "HTTP/1.1 101 S\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: " ACCEPT
     "\r\n\r\n",
     "Upgrade: websocket"},
    {"Upgrade: h2c",
     "HTTP/1.1 101 S\r\nUpgrade: h2c\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: " ACCEPT "\r\n\r\n",
     "Upgrade: websocket"},
    {"no Connection",
     "HTTP/1.1 101 S\r\nUpgrade: websocket\r\nSec-WebSocket-Accept: " ACCEPT
     "\r\n\r\n",
     "Connection: Upgrade"},
    {"no accept",
     "HTTP/1.1 101 S\r\nUpgrade: websocket\r\n"
     "Connection: Upgrade\r\n\r\n",
     "lacks Sec-WebSocket-Accept"},
    {"wrong accept",
     "HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: AAAAAAAAAAAAAAAAAAAAAAAAAAA=\r\n\r\n",
     "does not match"},
    {"accept with a suffix",
     "HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: " ACCEPT "x\r\n\r\n",
     "does not match"},
    {"unasked extension",
     "HTTP/1.1 101 S\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
     "Sec-WebSocket-Accept: " ACCEPT "\r\n"
     "Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n",
     "extension"},
    {"field without colon", "HTTP/1.1 101 S\r\nUpgrade websocket\r\n\r\n",
     "malformed header"},
    {"space before colon", "HTTP/1.1 101 S\r\nUpgrade : websocket\r\n\r\n",
     "malformed header"},
    {"bare LF inside", "HTTP/1.1 101 S\r\nUpgrade: websocket\rX\r\n\r\n",
     "malformed header"},
};

static void test_response_refused(void **state) {
  (void)state;
  for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
    size_t hlen;
    char why[160] = "";
    int rv = check(bad[i].text, strlen(bad[i].text), &hlen, why);

    if (rv != DGW_ERR_HANDSHAKE)
      fail_msg("%s: got %d (%s)", bad[i].name, rv, why);
    if (strstr(why, bad[i].why) == NULL)
      fail_msg("%s: reason \"%s\" lacks \"%s\"", bad[i].name, why, bad[i].why);
  }
}

/* Headers that never end are refused at the cap, not buffered forever. */
static void test_response_too_large(void **state) {
  size_t len = DGW_HANDSHAKE_MAX_HEADER + 100;
  char *resp = malloc(len);
  size_t hlen;
  char why[160] = "";

  (void)state;
  memcpy(resp, "HTTP/1.1 101 S\r\n", 16);
  for (size_t i = 16; i < len; i += 10)
    memcpy(resp + i, "X-Pad: 1\r\n", len - i < 10 ? len - i : 10);
  assert_int_equal(
      dgw_handshake_check_response(resp, len, ACCEPT, &hlen, why, sizeof(why)),
      DGW_ERR_HANDSHAKE);
  assert_non_null(strstr(why, "exceed"));
  free(resp);
}

/* The server side: our own request parses back to its target and key. */
static void test_parse_request_roundtrip(void **state) {
  char buf[1024];
  struct dgw_handshake_request_info info;
  size_t hlen = 0;
  char why[160];
  int n;

  (void)state;
  n = dgw_handshake_request(buf, sizeof(buf), "localhost:1234",
                            "/?v=10&encoding=json", "dGhlIHNhbXBsZSBub25jZQ==");
  assert_true(n > 0);
  assert_int_equal(dgw_handshake_parse_request(buf, (size_t)n, &hlen, &info,
                                               why, sizeof(why)),
                   DGW_OK);
  assert_int_equal(hlen, (size_t)n);
  assert_string_equal(info.path_query, "/?v=10&encoding=json");
  assert_string_equal(info.key, "dGhlIHNhbXBsZSBub25jZQ==");
  for (int k = 0; k < n; k++)
    assert_int_equal(dgw_handshake_parse_request(buf, (size_t)k, &hlen, &info,
                                                 why, sizeof(why)),
                     DGW_ERR_AGAIN);
}

/* Requests that are not WebSocket upgrades are refused with a reason. */
static void test_parse_request_refused(void **state) {
  static const struct bad_response reqs[] = {
      {"POST", "POST / HTTP/1.1\r\n\r\n", "not a GET"},
      {"no version",
       "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
       "Version"},
      {"no key",
       "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
       "Sec-WebSocket-Version: 13\r\n\r\n",
       "Key"},
      {"plain GET", "GET / HTTP/1.1\r\nHost: x\r\n\r\n", "Upgrade"},
      {"HTTP/1.0", "GET / HTTP/1.0\r\n\r\n", "request line"},
  };
  (void)state;
  for (size_t i = 0; i < sizeof(reqs) / sizeof(reqs[0]); i++) {
    struct dgw_handshake_request_info info;
    size_t hlen;
    char why[160] = "";
    int rv = dgw_handshake_parse_request(reqs[i].text, strlen(reqs[i].text),
                                         &hlen, &info, why, sizeof(why));

    if (rv != DGW_ERR_HANDSHAKE || strstr(why, reqs[i].why) == NULL)
      fail_msg("%s: got %d \"%s\"", reqs[i].name, rv, why);
  }
  /* A header value with NUL bytes (the fuzzer's find: the key read as ""
   * was accepted) or another control byte is malformed. */
  {
    static const char nul_key[] =
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: \0\0\0\0dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    static const char ctl_value[] =
        "GET / HTTP/1.1\r\nUpgrade: web\x01socket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
        "Sec-WebSocket-Version: 13\r\n\r\n";
    struct dgw_handshake_request_info info;
    size_t hlen;
    char why[160] = "";

    assert_int_equal(dgw_handshake_parse_request(nul_key, sizeof(nul_key) - 1,
                                                 &hlen, &info, why,
                                                 sizeof(why)),
                     DGW_ERR_HANDSHAKE);
    assert_int_equal(dgw_handshake_parse_request(ctl_value,
                                                 sizeof(ctl_value) - 1, &hlen,
                                                 &info, why, sizeof(why)),
                     DGW_ERR_HANDSHAKE);
  }
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_accept_rfc_example),
      cmocka_unit_test(test_make_key),
      cmocka_unit_test(test_request),
      cmocka_unit_test(test_response_good),
      cmocka_unit_test(test_response_lenient_forms),
      cmocka_unit_test(test_response_incomplete),
      cmocka_unit_test(test_response_refused),
      cmocka_unit_test(test_response_too_large),
      cmocka_unit_test(test_parse_request_roundtrip),
      cmocka_unit_test(test_parse_request_refused),
  };
  return cmocka_run_group_tests_name("handshake", tests, NULL, NULL);
}
