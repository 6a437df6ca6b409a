/* The scratch file and the failure report the harnesses share. */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char scratch[4096];

static void remove_scratch(void) {
  if (scratch[0] != '\0')
    unlink(scratch);
}

const char *fuzz_scratch_file(const uint8_t *data, size_t size) {
  FILE *f;

  if (scratch[0] == '\0') {
    const char *dir = getenv("TMPDIR");
    int fd;

    snprintf(scratch, sizeof(scratch), "%s/dgw-fuzz.XXXXXX",
             dir != NULL && dir[0] != '\0' ? dir : "/tmp");
    if ((fd = mkstemp(scratch)) < 0) {
      scratch[0] = '\0';
      return NULL;
    }
    close(fd);
    atexit(remove_scratch);
  }
  if ((f = fopen(scratch, "wb")) == NULL)
    return NULL;
  if (size > 0 && fwrite(data, 1, size, f) != size) {
    fclose(f);
    return NULL;
  }
  return fclose(f) == 0 ? scratch : NULL;
}

void fuzz_fail(const char *what) {
  fprintf(stderr, "fuzz: check failed: %s\n", what);
  fflush(stderr);
  abort();
}
