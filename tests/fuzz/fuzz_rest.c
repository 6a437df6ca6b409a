/* Fuzz target: the REST answers dgw reads (lib/rest.c): the body of
 * GET /gateway/bot and the retry_after of a 429.  The first byte picks
 * api_tls and whether a Retry-After header is given. */
#include "config.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <dgw/dgw.h>

#include <openssl/ssl.h>

#include "fuzz.h"
#include "rest.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static struct dgw_gateway_bot bot;
  char why[256];
  char *body;
  int64_t ms;

  if (size < 1 || size > DGW_REST_MAX_BODY + 1)
    return 0;
  if ((body = malloc(size)) == NULL)
    return 0;
  memcpy(body, data + 1, size - 1);
  if (dgw_gateway_bot_parse(body, size - 1, data[0] & 1, &bot, why,
                            sizeof(why)) == DGW_OK) {
    if (bot.shards < 1 || bot.shards > DGW_REST_MAX_SHARDS ||
        bot.max_concurrency < 1 || bot.remaining < 0 ||
        bot.remaining > bot.total ||
        /* Schemes are case-insensitive (RFC 3986 3.1): "wS://" is ws://. */
        (strncasecmp(bot.url, "ws://", 5) != 0 &&
         strncasecmp(bot.url, "wss://", 6) != 0) ||
        ((data[0] & 1) && strncasecmp(bot.url, "wss://", 6) != 0))
      fuzz_fail("an accepted /gateway/bot answer out of range");
  }
  ms = dgw_rest_retry_after_ms(body, size - 1, (data[0] & 2) ? "7" : NULL);
  if (ms < -1 || ms > (int64_t)DGW_REST_MAX_RETRY_AFTER_MS)
    fuzz_fail("retry_after out of range");
  free(body);
  return 0;
}
