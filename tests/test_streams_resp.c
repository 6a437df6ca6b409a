/*
 * redis-streams' RESP writer (plugins/redis-streams/resp.c): the bytes it
 * writes are hiredis's own (redisFormatCommandArgv) for the same
 * arguments, resp_size() is exactly what it writes, and it is
 * binary-safe: empty fields, NUL bytes and "\r\n" inside a field, lengths
 * across a digit boundary, a large field.
 */
#include "config.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "resp.h"

/* Writes argv with resp_write() into a buffer with a guard byte after it
 * and checks it against hiredis and resp_size(). */
static void same_as_hiredis(int argc, const char **argv, const size_t *len) {
  size_t want = resp_size(argc, len), got;
  char *ours = malloc(want + 1), *theirs = NULL;
  long long n = redisFormatCommandArgv(&theirs, argc, argv, len);

  assert_non_null(ours);
  assert_true(n > 0);
  ours[want] = '#';
  got = resp_write(ours, argc, argv, len);
  assert_int_equal(got, want);
  assert_int_equal(got, (size_t)n);
  assert_memory_equal(ours, theirs, got);
  assert_int_equal(ours[want], '#'); /* nothing past resp_size() */
  redisFreeCommand(theirs);
  free(ours);
}

/* Input: an XADD as the plugin writes it, with an empty field value.
 * Output: byte for byte the literal RESP. */
static void test_literal(void **state) {
  const char *argv[] = {"XADD", "k", "*", "t", ""};
  size_t len[] = {4, 1, 1, 1, 0};
  static const char want[] = "*5\r\n$4\r\nXADD\r\n$1\r\nk\r\n$1\r\n*\r\n"
                             "$1\r\nt\r\n$0\r\n\r\n";
  char out[128];

  (void)state;
  assert_int_equal(resp_size(5, len), sizeof(want) - 1);
  assert_int_equal(resp_write(out, 5, argv, len), sizeof(want) - 1);
  assert_memory_equal(out, want, sizeof(want) - 1);
}

/* Input: fields holding "\r\n", NUL bytes, "$3\r\n" look-alikes, and an
 * empty one given as NULL.  Output: hiredis's bytes; the lengths, not
 * the content, delimit each field. */
static void test_binary_fields(void **state) {
  static const char crlf[] = "a\r\nb\r\n", nul[] = {'x', '\0', 'y', '\0'};
  static const char fake[] = "$3\r\nabc\r\n*2\r\n";
  const char *argv[] = {
      "XADD", "dgw:{t}:events", "*", "d", crlf, "n", nul, "f", fake, "e", ""};
  size_t len[] = {
      4, 14, 1, 1, sizeof(crlf) - 1, 1, sizeof(nul), 1, sizeof(fake) - 1, 1, 0};
  const char *with_null[] = {"SET", "k", NULL};
  size_t null_len[] = {3, 1, 0};
  char out[64];

  (void)state;
  same_as_hiredis(11, argv, len);
  assert_int_equal(resp_write(out, 3, with_null, null_len),
                   resp_size(3, null_len));
  assert_memory_equal(out, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$0\r\n\r\n",
                      resp_size(3, null_len));
}

/* Input: lengths 0, 9, 10, 99, 100, 999, 1000 and 1,000,000 (every digit
 * boundary of the length prefix), and argument counts 9 to 11.  Output:
 * hiredis's bytes every time. */
static void test_lengths(void **state) {
  static const size_t sizes[] = {0, 1, 9, 10, 99, 100, 999, 1000, 1000000};
  char *big = malloc(1000000);
  const char *argv[12];
  size_t len[12];

  (void)state;
  assert_non_null(big);
  for (size_t i = 0; i < 1000000; i++)
    big[i] = (char)(i * 7 + 13); /* every byte value, \r and \n too */
  for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
    argv[0] = "XADD";
    len[0] = 4;
    argv[1] = big;
    len[1] = sizes[i];
    same_as_hiredis(2, argv, len);
  }
  for (int argc = 9; argc <= 11; argc++) {
    for (int i = 0; i < argc; i++) {
      argv[i] = big + i;
      len[i] = (size_t)i * 3;
    }
    same_as_hiredis(argc, argv, len);
  }
  free(big);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_literal),
      cmocka_unit_test(test_binary_fields),
      cmocka_unit_test(test_lengths),
  };

  return cmocka_run_group_tests_name("streams_resp", tests, NULL, NULL);
}
