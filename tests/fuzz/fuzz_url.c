/* Fuzz target: the ws[s]:// and http[s]:// URL parser (lib/url.c).  The
 * input is the URL; an accepted one must be self-consistent, its IPv6
 * literal one inet_pton takes, its host name RFC 1123 labels. */
#include "config.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include <dgw/dgw.h>

#include "fuzz.h"
#include "url.h"

static void check(const char *text, int http) {
  static struct dgw_url u;
  char why[128];
  int rv = http ? dgw_url_parse_http(text, &u, why, sizeof(why))
                : dgw_url_parse(text, &u, why, sizeof(why));

  if (rv != DGW_OK) {
    if (rv != DGW_ERR_URL || why[0] == '\0')
      fuzz_fail("a refusal without DGW_ERR_URL and a reason");
    return;
  }
  if (u.host[0] == '\0' || u.port == 0 || u.path_query[0] != '/')
    fuzz_fail("an accepted URL without host, port or path");
  if (strlen(u.host) > 253 || strchr(u.host, '/') != NULL)
    fuzz_fail("an accepted host name that is too long or has a '/'");
  if (strstr(u.host_header, u.host) == NULL)
    fuzz_fail("the Host header lacks the host");
  if (strchr(u.host, ':') != NULL) {
    struct in6_addr a;

    if (inet_pton(AF_INET6, u.host, &a) != 1)
      fuzz_fail("an accepted IPv6 literal inet_pton refuses");
  } else {
    size_t label = 0;

    for (const char *p = u.host;; p++) {
      if (*p == '.' || *p == '\0') {
        if (label == 0 || label > 63 || p[-1] == '-')
          fuzz_fail("an accepted host name with a bad label");
        if (*p == '\0')
          break;
        label = 0;
      } else if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                        "0123456789-",
                        *p) == NULL ||
                 (label++ == 0 && *p == '-')) {
        fuzz_fail("an accepted host name with a bad character");
      }
    }
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  char *text;

  if (size > DGW_URL_MAX + 16)
    return 0;
  if ((text = malloc(size + 1)) == NULL)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  check(text, 0);
  check(text, 1);
  free(text);
  return 0;
}
