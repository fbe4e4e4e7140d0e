/* Standalone driver for a fuzz target without libFuzzer: runs every file
 * given (directories: every file in them, sorted; names starting with '.'
 * and README files are skipped) through LLVMFuzzerTestOneInput once. This
 * is how the seed corpora and the crash regressions of tests/fuzz/ run in
 * the ordinary (gcc) build, under ctest.
 *   usage: <target>_replay [--allow-missing] PATH...
 * A path that does not exist is an error unless --allow-missing is given
 * before it. Exits 0 when every input ran (a finding aborts). */
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz_common.h"

static size_t g_inputs;

static int run_file(const char *path) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fprintf(stderr, "replay: cannot open %s\n", path);
    return 0;
  }
  size_t cap = 1 << 16, n = 0;
  unsigned char *buf = malloc(cap);
  for (size_t got; buf && (got = fread(buf + n, 1, cap - n, f)) > 0;) {
    n += got;
    if (n == cap) {
      unsigned char *grown = realloc(buf, cap *= 2);
      if (!grown) free(buf);
      buf = grown;
    }
  }
  fclose(f);
  if (!buf) {
    fprintf(stderr, "replay: out of memory reading %s\n", path);
    return 0;
  }
  /* A copy of exactly n bytes, so ASan sees reads past the input. */
  unsigned char *exact = malloc(n ? n : 1);
  if (exact) memcpy(exact, buf, n);
  free(buf);
  if (!exact) return 0;
  if (getenv("REPLAY_VERBOSE")) fprintf(stderr, "replay: %s (%zu bytes)\n", path, n);
  LLVMFuzzerTestOneInput(exact, n);
  free(exact);
  g_inputs++;
  return 1;
}

static int by_name(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static int run_dir(const char *dir) {
  DIR *d = opendir(dir);
  if (!d) return 0;
  char **names = NULL;
  size_t n = 0, cap = 0;
  for (struct dirent *e; (e = readdir(d));) {
    if (e->d_name[0] == '.' || strncmp(e->d_name, "README", 6) == 0) continue;
    if (n == cap) {
      char **grown = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
      if (!grown) break;
      names = grown;
    }
    names[n++] = strdup(e->d_name);
  }
  closedir(d);
  if (n) qsort(names, n, sizeof *names, by_name);
  int ok = 1;
  for (size_t i = 0; i < n; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, names[i]);
    struct stat st;
    if (stat(path, &st) == 0 && S_ISREG(st.st_mode)) ok &= run_file(path);
    free(names[i]);
  }
  free(names);
  return ok;
}

int main(int argc, char **argv) {
  int allow_missing = 0, ok = 1;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--allow-missing")) {
      allow_missing = 1;
      continue;
    }
    struct stat st;
    if (stat(argv[i], &st) != 0) {
      if (!allow_missing) {
        fprintf(stderr, "replay: %s does not exist\n", argv[i]);
        ok = 0;
      }
      continue;
    }
    ok &= S_ISDIR(st.st_mode) ? run_dir(argv[i]) : run_file(argv[i]);
  }
  printf("replay: %zu inputs ran without a finding\n", g_inputs);
  if (!g_inputs) {
    fprintf(stderr, "replay: no inputs\n");
    return 1;
  }
  return ok ? 0 : 1;
}
