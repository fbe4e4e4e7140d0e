/* towerrt_load_bench STORE.twi [REPS (5)]: towerrt_items_load time of a
 * store, full (TOWERRT_ITEMS_VERIFY_ALL, checksums on: the default) and
 * trusted (TOWERRT_ITEMS_VERIFY_STRUCTURE), warm (file in the page cache:
 * median of REPS loads after one) and cold (this file's pages evicted
 * first with posix_fadvise(POSIX_FADV_DONTNEED): a per-file cold cache
 * that leaves the rest of the machine's page cache alone; median of REPS).
 * A trusted load reads its pages on first use instead: the first requests
 * pay for them (docs/serving.md). */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "towerrt.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

static int cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

/* 0 if the file's pages could be dropped from the page cache. */
static int evict(const char *path) {
  int fd = open(path, O_RDONLY);
  if (fd < 0) return -1;
  int rc = posix_fadvise(fd, 0, 0, POSIX_FADV_DONTNEED);
  close(fd);
  return rc;
}

static double load_once(const char *path, uint32_t level) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.items_verify = level;
  towerrt_items *it = NULL;
  double t0 = now();
  towerrt_status st = towerrt_items_load(path, &o, &it);
  double t = now() - t0;
  towerrt_items_free(it);
  if (st) {
    fprintf(stderr, "towerrt_load_bench: %s\n", towerrt_last_error());
    exit(1);
  }
  return t;
}

static double median_load(const char *path, uint32_t level, int cold, int reps) {
  double t[32];
  if (!cold) load_once(path, level);
  for (int i = 0; i < reps; i++) {
    if (cold && evict(path)) {
      fprintf(stderr, "towerrt_load_bench: posix_fadvise(DONTNEED) failed on %s\n", path);
      exit(1);
    }
    t[i] = load_once(path, level);
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_double);
  return t[reps / 2];
}

int main(int argc, char **argv) {
  int reps = argc > 2 ? atoi(argv[2]) : 5;
  if (argc < 2 || reps < 1 || reps > 32) {
    fprintf(stderr, "usage: towerrt_load_bench STORE.twi [REPS 1..32]\n");
    return 2;
  }
  struct stat st;
  if (stat(argv[1], &st) != 0) {
    fprintf(stderr, "towerrt_load_bench: cannot stat %s\n", argv[1]);
    return 1;
  }
  printf("# towerrt_load_bench %s: %.1f MB, median of %d\n", argv[1], (double)st.st_size / 1e6, reps);
  printf("%-10s %-5s %12s\n", "verify", "cache", "load_ms");
  const char *names[2] = {"all", "structure"};
  for (int cold = 1; cold >= 0; cold--)
    for (uint32_t level = 0; level < 2; level++)
      printf("%-10s %-5s %12.3f\n", names[level], cold ? "cold" : "warm", median_load(argv[1], level, cold, reps) * 1e3);
  return 0;
}
