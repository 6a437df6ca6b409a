/* Fuzz target: the ws[s]:// and http[s]:// URL parser (lib/url.c).  The
 * input is the URL; an accepted one must be self-consistent. */
#include "config.h"

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
