/* towerrt's side of the item-tower build measurement (docs/item-stores.md):
 * the catalog is parsed into memory first (as the PyTorch peer does), then
 * the public streaming builder (towerrt_items_builder_*) runs the item
 * tower over it, timed, and writes the store: by default to tmpfs
 * (/dev/shm/item_tower_build_bench.twi, removed at exit), so the time is
 * the tower plus the CRC-32 and the page-cache copy of the heads, no disk;
 * --out puts the store elsewhere (and keeps it). The store is removed
 * before each repetition, outside the timed region.
 *
 *   item_tower_build_bench MODEL.twr ITEMS.txt THREADS [--engine onednn|internal]
 *       [--reps R] [--out STORE.twi] [--bf16 | --int8]
 *
 * Prints one line of JSON. Build (from a configured build directory BUILD):
 *   cc -O2 -std=c11 -D_POSIX_C_SOURCE=200809L -I. -Iinclude bench/peers/item_tower_build_bench.c tools/text_input.c \
 *      BUILD/libtowerrt.a -ldnnl -lhwloc -lpthread -lm -ldl -o item_tower_build_bench */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tools/text_input.h"
#include "towerrt.h"

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static double cpu_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_d(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: %s MODEL.twr ITEMS.txt THREADS [--engine onednn|internal] [--reps R] [--out S.twi] [--bf16|--int8]\n",
            argv[0]);
    return 2;
  }
  towerrt_build_options o;
  towerrt_build_options_init(&o);
  o.threads = (uint32_t)atoi(argv[3]);
  o.engine = TOWERRT_BUILD_ONEDNN;
  int reps = 3;
  const char *out = NULL, *tmpfs_out = "/dev/shm/item_tower_build_bench.twi";
  for (int i = 4; i < argc; i++) {
    if (!strcmp(argv[i], "--engine") && i + 1 < argc) {
      i++;
      o.engine = !strcmp(argv[i], "internal") ? TOWERRT_BUILD_INTERNAL : TOWERRT_BUILD_ONEDNN;
    } else if (!strcmp(argv[i], "--reps") && i + 1 < argc) reps = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--out") && i + 1 < argc) out = argv[++i];
    else if (!strcmp(argv[i], "--int8")) o.precision = TOWERRT_PRECISION_INT8;
    else if (!strcmp(argv[i], "--bf16")) o.precision = TOWERRT_PRECISION_BF16;
    else {
      fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  towerrt_model *m;
  towerrt_status st = towerrt_model_load(argv[1], NULL, &m);
  if (st) {
    fprintf(stderr, "%s\n", towerrt_last_error());
    return 1;
  }
  FILE *f = fopen(argv[2], "r");
  trt_text_reader r;
  trt_rows rows = {0};
  int done = 0;
  st = f ? trt_text_open(&r, f, argv[2], "towerrt-items", m) : TOWERRT_ERR_IO;
  while (!st && !done) st = trt_text_read_items(&r, &rows, (size_t)1 << 20, &done);
  if (st) {
    fprintf(stderr, "%s\n", trt_text_error());
    return 1;
  }
  towerrt_features feats = {rows.ids, rows.n_ids, rows.dense, rows.n_dense};
  o.expected_rows = rows.n_keys;
  const char *path = out ? out : tmpfs_out;
  double *t = calloc((size_t)reps + 1, sizeof *t), *c = calloc((size_t)reps + 1, sizeof *c);
  char engine[256] = "";
  for (int k = -1; k < reps; k++) { /* k = -1: warm-up (page faults, first primitives) */
    towerrt_items_builder *b;
    remove(path); /* every repetition writes into fresh tmpfs pages */
    double t0 = now_s(), c0 = cpu_s();
    st = towerrt_items_builder_open(m, path, &o, &b);
    if (!st) {
      snprintf(engine, sizeof engine, "%s", towerrt_items_builder_engine(b));
      st = towerrt_items_builder_append(b, &feats, rows.keys, rows.n_keys);
      if (!st) st = towerrt_items_builder_finish(b); /* finish waits for the last batches */
      else towerrt_items_builder_abort(b);
    }
    double dt = now_s() - t0, dc = cpu_s() - c0;
    if (st) {
      fprintf(stderr, "%s\n", towerrt_last_error());
      return 1;
    }
    if (k >= 0) {
      t[k] = dt;
      c[k] = dc;
    }
  }
  qsort(t, (size_t)reps, sizeof *t, cmp_d);
  qsort(c, (size_t)reps, sizeof *c, cmp_d);
  double best = t[0], med = t[reps / 2];
  printf("{\"peer\": \"towerrt\", \"engine\": \"%s\", \"items\": %zu, \"threads\": %u, \"out\": \"%s\", \"best_s\": %.4f, \"median_s\": %.4f, "
         "\"items_per_s_best\": %.1f, \"items_per_s_median\": %.1f, \"cpu_s_median\": %.4f}\n",
         engine, rows.n_keys, o.threads, path, best, med, (double)rows.n_keys / best, (double)rows.n_keys / med, c[reps / 2]);
  if (!out) remove(tmpfs_out);
  free(t);
  free(c);
  trt_text_close(&r);
  trt_rows_free(&rows);
  fclose(f);
  towerrt_model_free(m);
  return 0;
}
