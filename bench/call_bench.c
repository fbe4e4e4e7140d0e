/* towerrt_call_bench MODEL.twr STORE.twi K REPS IDS_OUT: the median time
 * of one towerrt_score call (one thread) for a fixed request: user ids 0,
 * dense values 0.5, the first K item ids of the store's id map; writes
 * those ids to IDS_OUT (uint64, native order) so that another caller (the
 * Python package: bench/python_overhead.py) can time the very same request.
 * Prints "median_us <value>". */
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

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

int main(int argc, char **argv) {
  if (argc != 6) {
    fprintf(stderr, "usage: towerrt_call_bench MODEL.twr STORE.twi K REPS IDS_OUT\n");
    return 2;
  }
  size_t k = strtoul(argv[3], NULL, 10);
  int reps = atoi(argv[4]);
  towerrt_model *m = NULL;
  towerrt_items *it = NULL;
  towerrt_session *s = NULL;
  if (!k || reps < 1 || towerrt_model_load(argv[1], NULL, &m) || towerrt_items_load(argv[2], NULL, &it) ||
      towerrt_session_create(m, it, NULL, &s)) {
    fprintf(stderr, "towerrt_call_bench: %s\n", towerrt_last_error());
    return 1;
  }
  uint64_t *ids = malloc(k * sizeof *ids);
  size_t n = towerrt_items_ids(it, ids, k);
  if (n < k) {
    fprintf(stderr, "towerrt_call_bench: the store has only %zu items\n", n);
    return 1;
  }
  size_t slots = towerrt_model_id_slots(m, TOWERRT_USER), width = towerrt_model_dense_width(m, TOWERRT_USER);
  int64_t *uids = calloc(slots + 1, sizeof *uids);
  float *dense = malloc((width + 1) * sizeof *dense), *scores = malloc(k * sizeof *scores);
  double *t = malloc((size_t)reps * sizeof *t);
  for (size_t i = 0; i < width; i++) dense[i] = 0.5f;
  towerrt_features u = {uids, slots, width ? dense : NULL, width};
  if (towerrt_score(s, &u, ids, k, scores)) {
    fprintf(stderr, "towerrt_call_bench: %s\n", towerrt_session_error(s));
    return 1;
  }
  for (int r = 0; r < reps; r++) {
    double t0 = now();
    towerrt_score(s, &u, ids, k, scores);
    t[r] = now() - t0;
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_double);
  FILE *f = fopen(argv[5], "wb");
  if (!f || fwrite(ids, sizeof *ids, k, f) != k || fclose(f) != 0) {
    fprintf(stderr, "towerrt_call_bench: cannot write %s\n", argv[5]);
    return 1;
  }
  printf("median_us %.3f\n", t[reps / 2] * 1e6);
  towerrt_session_free(s);
  towerrt_items_free(it);
  towerrt_model_free(m);
  free(ids), free(uids), free(dense), free(scores), free(t);
  return 0;
}
