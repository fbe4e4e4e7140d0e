/* towerrt_load_modes_bench MODEL.twr STORE.twi [ROUNDS]: what
 * TOWERRT_LOAD_COPY costs against the default TOWERRT_LOAD_MAP
 * (docs/serving.md, "Files under a running process"): the wall time of
 * towerrt_model_load + towerrt_items_load (median of ROUNDS, default 5, the
 * files in the page cache: the first round warms it), the process's
 * anonymous (private) and file-backed resident memory after loading and
 * after 20 requests of k = 1000 random candidates, and those requests'
 * mean latency. One thread. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "towerrt.h"

static double now(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (double)t.tv_sec + (double)t.tv_nsec * 1e-9;
}

/* RssAnon and RssFile of this process, in MiB. */
static void rss(double *anon, double *file) {
  FILE *f = fopen("/proc/self/status", "r");
  char line[256];
  *anon = *file = 0;
  while (f && fgets(line, sizeof line, f)) {
    long kb;
    if (sscanf(line, "RssAnon: %ld", &kb) == 1) *anon = (double)kb / 1024.0;
    if (sscanf(line, "RssFile: %ld", &kb) == 1) *file = (double)kb / 1024.0;
  }
  if (f) fclose(f);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static int one_mode(const char *model, const char *store, uint32_t mode, int rounds) {
  towerrt_options o;
  towerrt_options_init(&o);
  o.load_mode = mode;
  o.max_load_bytes = 0;
  double t[32];
  towerrt_model *m = NULL;
  towerrt_items *it = NULL;
  for (int r = 0; r < rounds; r++) {
    towerrt_items_free(it), towerrt_model_free(m);
    double t0 = now();
    if (towerrt_model_load(model, &o, &m) || towerrt_items_load(store, &o, &it)) {
      fprintf(stderr, "%s\n", towerrt_last_error());
      return 1;
    }
    t[r] = now() - t0;
  }
  qsort(t, (size_t)rounds, sizeof t[0], cmp);
  double anon0, file0, anon1, file1;
  rss(&anon0, &file0);
  towerrt_session *s = NULL;
  if (towerrt_session_create(m, it, &o, &s)) return 1;
  size_t id_slots = towerrt_model_id_slots(m, TOWERRT_USER), dense_width = towerrt_model_dense_width(m, TOWERRT_USER);
  int64_t *ids = calloc(id_slots + 1, sizeof *ids);
  float *dense = calloc(dense_width + 1, sizeof *dense), *scores = malloc(1000 * sizeof *scores);
  uint64_t *keys = malloc(1000 * sizeof *keys);
  size_t n_stored = towerrt_items_count(it);
  uint64_t *stored = malloc((n_stored + 1) * sizeof *stored);
  if (!ids || !dense || !scores || !keys || !stored || towerrt_items_ids(it, stored, n_stored) != n_stored || !n_stored) return 1;
  double ts = 0;
  srand(7);
  for (int q = 0; q < 20; q++) {
    for (size_t c = 0; c < 1000; c++) keys[c] = stored[(size_t)rand() % n_stored]; /* a random stored id */
    towerrt_features uf = {ids, id_slots, dense_width ? dense : NULL, dense_width};
    double t0 = now();
    if (towerrt_score(s, &uf, keys, 1000, scores)) {
      fprintf(stderr, "%s\n", towerrt_session_error(s));
      return 1;
    }
    ts += now() - t0;
  }
  rss(&anon1, &file1);
  printf("%-10s load %8.1f ms (median of %d)  after load: anon %7.1f MiB file %7.1f MiB  after 20 x k=1000: anon %7.1f MiB file %7.1f "
         "MiB, %.2f ms/request\n",
         mode ? "LOAD_COPY" : "LOAD_MAP", t[rounds / 2] * 1e3, rounds, anon0, file0, anon1, file1, ts / 20 * 1e3);
  free(ids), free(dense), free(scores), free(keys), free(stored);
  towerrt_session_free(s);
  towerrt_items_free(it);
  towerrt_model_free(m);
  return 0;
}

int main(int argc, char **argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: towerrt_load_modes_bench MODEL.twr STORE.twi [ROUNDS]\n");
    return 2;
  }
  int rounds = argc > 3 ? atoi(argv[3]) : 5;
  if (rounds < 1 || rounds > 32) rounds = 5;
  /* each mode in its own run keeps the RSS figures apart: pass "copy" or
   * "map" as the 4th argument; both by default, map first */
  const char *only = argc > 4 ? argv[4] : NULL;
  int rc = 0;
  if (!only || !strcmp(only, "map")) rc |= one_mode(argv[1], argv[2], TOWERRT_LOAD_MAP, rounds);
  if (!only || !strcmp(only, "copy")) rc |= one_mode(argv[1], argv[2], TOWERRT_LOAD_COPY, rounds);
  return rc;
}
