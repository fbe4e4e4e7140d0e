/* Loading golden fixtures (catalog, item store, first request) for the
 * tests that run the whole runtime; kept out of test_util.c, which the
 * cross-built kernel tests link without the runtime. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test_util.h"

towerrt_status test_read_catalog(const towerrt_model *m, const char *dir, trt_rows *rows) {
  char path[1024];
  snprintf(path, sizeof path, "%s/items.txt", dir);
  FILE *f = fopen(path, "r");
  if (!f) return TOWERRT_ERR_IO;
  trt_text_reader r;
  int done = 0;
  towerrt_status st = trt_text_open(&r, f, path, "towerrt-items", m);
  while (!st && !done) st = trt_text_read_items(&r, rows, 1u << 20, &done);
  trt_text_close(&r);
  fclose(f);
  return st;
}

towerrt_status test_build_store(const towerrt_model *m, const char *dir, const char *out) {
  trt_rows rows = {0};
  towerrt_status st = test_read_catalog(m, dir, &rows);
  towerrt_features feats = {rows.ids, rows.n_ids, rows.dense, rows.n_dense};
  if (!st) st = towerrt_items_build(m, &feats, rows.keys, rows.n_keys, out);
  trt_rows_free(&rows);
  return st;
}

int test_first_request(const towerrt_model *m, const char *dir, const char *name, trt_request *q) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  trt_text_reader r;
  int done = 1;
  if (trt_text_open(&r, f, path, "towerrt-requests", m) == TOWERRT_OK && trt_text_next_request(&r, q, &done) != TOWERRT_OK) done = 1;
  trt_text_close(&r);
  fclose(f);
  return !done;
}

size_t test_read_requests(const towerrt_model *m, const char *dir, const char *name, trt_request **out) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  *out = NULL;
  FILE *f = fopen(path, "r");
  if (!f) return 0;
  trt_text_reader r;
  size_t n = 0;
  int done = 0;
  if (trt_text_open(&r, f, path, "towerrt-requests", m) == TOWERRT_OK) {
    for (;;) {
      trt_request *grown = realloc(*out, (n + 1) * sizeof *grown);
      if (!grown) break;
      *out = grown;
      memset(&grown[n], 0, sizeof grown[n]);
      if (trt_text_next_request(&r, &grown[n], &done) != TOWERRT_OK || done) {
        trt_request_free(&grown[n]);
        break;
      }
      n++;
    }
  }
  trt_text_close(&r);
  fclose(f);
  return n;
}

towerrt_features test_users_of(const trt_request *q, size_t n, trt_rows *rows) {
  memset(rows, 0, sizeof *rows);
  for (size_t i = 0; i < n; i++)
    if (trt_rows_append(rows, &q[i].user) != TOWERRT_OK) {
      fprintf(stderr, "test_users_of: out of memory\n");
      exit(2);
    }
  return (towerrt_features){rows->ids, rows->n_ids, rows->dense, rows->n_dense};
}

void test_free_requests(trt_request *q, size_t n) {
  for (size_t i = 0; i < n; i++) trt_request_free(&q[i]);
  free(q);
}
