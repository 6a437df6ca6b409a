/* Fuzz target: the server's upgrade response, as the client checks it
 * (lib/handshake.c), and a client's upgrade request as the mock parses it.
 * The input is the bytes received. */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

#include "fuzz.h"
#include "handshake.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* The accept value of RFC 6455's sample key "dGhlIHNhbXBsZSBub25jZQ==". */
  static const char accept[] = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=";
  static struct dgw_handshake_request_info info;
  char why[256];
  size_t header_len = 0;
  char *copy;
  int rv;

  /* An exact-size copy, so ASan sees any read past the end. */
  if ((copy = malloc(size > 0 ? size : 1)) == NULL)
    return 0;
  if (size > 0)
    memcpy(copy, data, size);
  rv = dgw_handshake_check_response(copy, size, accept, &header_len, why,
                                    sizeof(why));
  if (rv == DGW_OK && (header_len < 4 || header_len > size ||
                       memcmp(copy + header_len - 4, "\r\n\r\n", 4) != 0))
    fuzz_fail("an accepted response whose header does not end in CRLFCRLF");
  if (rv != DGW_OK && rv != DGW_ERR_AGAIN && rv != DGW_ERR_HANDSHAKE)
    fuzz_fail("check_response: an unexpected result");
  header_len = 0;
  rv = dgw_handshake_parse_request(copy, size, &header_len, &info, why,
                                   sizeof(why));
  if (rv == DGW_OK && (header_len > size || info.key[0] == '\0'))
    fuzz_fail("an accepted request without a key");
  free(copy);
  return 0;
}
