/*
 * Replays a fuzz target's seed corpus as an ordinary test (make check,
 * any compiler): every file of FUZZ_CORPUS (or of the directories given
 * as arguments) goes through LLVMFuzzerTestOneInput once.  A crash or a
 * failed check aborts the program; otherwise one TAP line per target.
 */
#include "config.h"

#include <dirent.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

/* The input being replayed, named when it crashes the harness. */
static char current[4096];

static void on_crash(int sig) {
  static const char msg[] = "# crashed on the corpus input ";

  /* Only async-signal-safe calls; then die of the same signal. */
  (void)!write(2, msg, sizeof(msg) - 1);
  (void)!write(2, current, strlen(current));
  (void)!write(2, "\n", 1);
  signal(sig, SIG_DFL);
  raise(sig);
}

/* Feeds one file; -1 when it cannot be read. */
static int replay_file(const char *path) {
  FILE *f = fopen(path, "rb");
  uint8_t *buf = NULL;
  size_t len = 0, cap = 0, got;

  if (f == NULL)
    return -1;
  snprintf(current, sizeof(current), "%s", path);
  do {
    if (len == cap) {
      uint8_t *more = realloc(buf, cap = cap * 2 + 4096);

      if (more == NULL) {
        free(buf);
        fclose(f);
        return -1;
      }
      buf = more;
    }
    got = fread(buf + len, 1, cap - len, f);
    len += got;
  } while (got > 0);
  fclose(f);
  LLVMFuzzerTestOneInput(buf, len);
  free(buf);
  return 0;
}

/* Replays every regular file of `dir`; returns how many, or -1. */
static long replay_dir(const char *dir) {
  DIR *d = opendir(dir);
  struct dirent *e;
  long n = 0;

  if (d == NULL)
    return -1;
  while ((e = readdir(d)) != NULL) {
    char path[4096];

    if (e->d_name[0] == '.')
      continue;
    snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
    if (replay_file(path) != 0) {
      closedir(d);
      return -1;
    }
    n++;
  }
  closedir(d);
  return n;
}

int main(int argc, char **argv) {
  long total = 0;

  setvbuf(stdout, NULL, _IOLBF, 0);
  /* A failed check aborts.  (SIGSEGV is left to the sanitizers, which
   * report it better, in a --enable-sanitizers build.) */
  signal(SIGABRT, on_crash);
  printf("1..1\n");
  for (int i = argc > 1 ? 1 : 0; i < (argc > 1 ? argc : 1); i++) {
    const char *dir = argc > 1 ? argv[i] : FUZZ_CORPUS;
    long n = replay_dir(dir);

    if (n < 0) {
      printf("not ok 1 - %s: cannot read the corpus %s\n", FUZZ_NAME, dir);
      return 1;
    }
    total += n;
  }
  printf("ok 1 - %s: %ld corpus inputs replayed, no crash, no failed check\n",
         FUZZ_NAME, total);
  return 0;
}
