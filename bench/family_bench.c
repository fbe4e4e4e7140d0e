/* The family table of docs/performance.md: candidates per second of each
 * model, one thread, at k = 1,000 and 10,000, by item-store id (where the
 * family has a store) and by features (item tower online), from one run.
 * Uses include/towerrt.h only. Times are the median of the calling
 * thread's CPU time per request (stable on a shared machine), and the
 * median wall time. Random users and items (ids within each
 * field's vocabulary, dense values in [0, 1)); a store of STORE_ITEMS items
 * per model; the median of up to MAX_REQ requests (at least MIN_REQ, about
 * SECONDS per point) after WARMUP.
 *   towerrt_family_bench MODEL.twr... */
#define _POSIX_C_SOURCE 200809L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "towerrt.h"

#define STORE_ITEMS 20000u
#define MAX_REQ 200
#define MIN_REQ 5
#define WARMUP 3
#define SECONDS 2.0

static uint64_t rng = 88172645463325252ull;
static uint64_t next(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return rng;
}

static double clock_s(clockid_t id) {
  struct timespec t;
  clock_gettime(id, &t);
  return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}
static double now(void) { return clock_s(CLOCK_MONOTONIC); }
/* The calling thread's CPU time: on a shared machine (other processes
 * preempt this one) it measures the work, not the wait. */
static double cpu_now(void) { return clock_s(CLOCK_THREAD_CPUTIME_ID); }

/* n random rows of one side. */
static towerrt_features rows(const towerrt_model *m, towerrt_side side, size_t n) {
  size_t slots = towerrt_model_id_slots(m, side), dw = towerrt_model_dense_width(m, side);
  int64_t *ids = malloc((n * slots + 1) * sizeof *ids);
  float *dense = malloc((n * dw + 1) * sizeof *dense);
  for (size_t r = 0; r < n; r++) {
    size_t s = 0, d = 0;
    for (size_t i = 0; i < towerrt_model_field_count(m); i++) {
      towerrt_field_info f;
      towerrt_model_field(m, i, &f);
      if (f.side != side) continue;
      for (uint32_t j = 0; j < f.width; j++) {
        if (f.kind == 2) dense[r * dw + d++] = (float)(next() % 1000) / 1000.0f;
        else ids[r * slots + s++] = (int64_t)(next() % f.vocab);
      }
    }
  }
  return (towerrt_features){ids, n * slots, dw ? dense : NULL, n * dw};
}

static void features_free(towerrt_features *f) {
  free((void *)f->ids);
  free((void *)f->dense);
}

static int cmp(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

/* Median seconds of one request (thread CPU time, and wall time into
 * *wall); by id if ids != NULL. */
static double measure(double *wall, towerrt_session *s, const towerrt_model *m, const uint64_t *ids, const towerrt_features *items, size_t k) {
  towerrt_features users = rows(m, TOWERRT_USER, MAX_REQ + WARMUP);
  size_t us = towerrt_model_id_slots(m, TOWERRT_USER), ud = towerrt_model_dense_width(m, TOWERRT_USER);
  float *scores = malloc(k * sizeof *scores);
  double t[MAX_REQ], w[MAX_REQ], start = now();
  int n = 0;
  for (int r = 0; r < MAX_REQ + WARMUP; r++) {
    towerrt_features u = {users.ids + r * us, us, ud ? users.dense + r * ud : NULL, ud};
    size_t off = (size_t)(next() % (STORE_ITEMS - k + 1));
    towerrt_features it = {NULL, 0, NULL, 0};
    if (!ids) {
      size_t is = towerrt_model_id_slots(m, TOWERRT_ITEM), id = towerrt_model_dense_width(m, TOWERRT_ITEM);
      it = (towerrt_features){items->ids + off * is, k * is, id ? items->dense + off * id : NULL, k * id};
    }
    double t0 = cpu_now(), w0 = now();
    towerrt_status st = ids ? towerrt_score(s, &u, ids + off, k, scores) : towerrt_score_features(s, &u, &it, k, scores);
    double dt = cpu_now() - t0, dw = now() - w0;
    if (st) {
      fprintf(stderr, "score: %s\n", towerrt_session_error(s));
      exit(1);
    }
    if (r >= WARMUP) w[n] = dw, t[n++] = dt;
    if (n >= MIN_REQ && now() - start > SECONDS) break;
  }
  qsort(t, (size_t)n, sizeof t[0], cmp);
  qsort(w, (size_t)n, sizeof w[0], cmp);
  *wall = w[n / 2];
  free(scores);
  features_free(&users);
  return t[n / 2];
}

int main(int argc, char **argv) {
  const size_t ks[2] = {1000, 10000};
  printf("| model | k | by id: cands/CPU-s | by features: cands/CPU-s | by id: cands/s wall | by features: cands/s wall |\n"
         "|---|---:|---:|---:|---:|---:|\n");
  for (int a = 1; a < argc; a++) {
    towerrt_model *m = NULL;
    if (towerrt_model_load(argv[a], NULL, &m)) {
      fprintf(stderr, "%s: %s\n", argv[a], towerrt_last_error());
      return 1;
    }
    towerrt_features items = rows(m, TOWERRT_ITEM, STORE_ITEMS);
    uint64_t *ids = malloc(STORE_ITEMS * sizeof *ids);
    for (uint64_t i = 0; i < STORE_ITEMS; i++) ids[i] = 1000 + i;
    char store[] = "/tmp/towerrt_family_bench_XXXXXX";
    int fd = mkstemp(store);
    if (fd >= 0) fclose(fdopen(fd, "w"));
    towerrt_items *st = NULL;
    towerrt_options o;
    towerrt_options_init(&o);
    o.max_k = 10000;
    towerrt_session *s = NULL, *sf = NULL;
    if (!towerrt_items_build(m, &items, ids, STORE_ITEMS, store) && !towerrt_items_load(store, NULL, &st) &&
        towerrt_session_create(m, st, &o, &s))
      s = NULL; /* the family serves no store (FIT): by features only */
    if (towerrt_session_create(m, NULL, &o, &sf)) {
      fprintf(stderr, "%s: %s\n", argv[a], towerrt_last_error());
      return 1;
    }
    for (int i = 0; i < 2; i++) {
      double wid = 0.0, wf = 0.0;
      double by_id = s ? (double)ks[i] / measure(&wid, s, m, ids, NULL, ks[i]) : 0.0;
      double by_f = (double)ks[i] / measure(&wf, sf, m, NULL, &items, ks[i]);
      char id_text[32] = "n/a", id_wall[32] = "n/a";
      if (s) snprintf(id_text, sizeof id_text, "%.0f", by_id), snprintf(id_wall, sizeof id_wall, "%.0f", (double)ks[i] / wid);
      printf("| %s | %zu | %s | %.0f | %s | %.0f |\n", argv[a], ks[i], id_text, by_f, id_wall, (double)ks[i] / wf);
      fflush(stdout);
    }
    towerrt_session_free(s);
    towerrt_session_free(sf);
    towerrt_items_free(st);
    remove(store);
    features_free(&items);
    free(ids);
    towerrt_model_free(m);
  }
  return 0;
}
