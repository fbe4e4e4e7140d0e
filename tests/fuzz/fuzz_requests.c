/* Fuzz target: bytes as a text requests file (or an item features file),
 * parsed with runtime/text_input.h against a fixture model; every request
 * parsed is scored.
 *
 * Input: one mode byte, then the text.
 *   mode bits 0-3: which fixture (sorted by name, modulo their count);
 *   mode bit 4:    the text is an item features file ("towerrt-items 1"):
 *                  its rows are scored as candidates of a fixture user;
 *   mode bit 5:    output_logits;
 *   mode bit 6:    a session (and reader) with max_k = 8.
 * Requests by id are also scored by features when every candidate is in
 * the fixture catalog, and the two must agree. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "runtime/model.h"

#define MAX_INPUT (1u << 20)
#define MAX_REQUESTS 64
#define MAX_CATALOG_ROWS 4096u

static void score_catalog(const fz_fixture *fx, towerrt_session *s, trt_text_reader *r, int probs) {
  trt_rows rows = {0};
  int done = 0;
  towerrt_status st = trt_text_read_items(r, &rows, MAX_CATALOG_ROWS, &done);
  if (st) {
    if (!towerrt_last_error()[0]) fz_die("trt_text_read_items failed without a message");
  } else if (rows.n_rows) {
    if (rows.n_keys != rows.n_rows) fz_die("items file: %zu keys for %zu rows", rows.n_keys, rows.n_rows);
    const trt_request *q = &fx->requests[0];
    towerrt_features user = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
    towerrt_features items = {rows.ids, rows.n_ids, rows.dense, rows.n_dense};
    float *scores = malloc(rows.n_rows * sizeof *scores);
    if (!scores) fz_die("out of memory");
    st = towerrt_score_features(s, &user, &items, rows.n_rows, scores);
    fz_check_score(st, s, scores, rows.n_rows, probs, "towerrt_score_features (items file)");
    free(scores);
  }
  trt_rows_free(&rows);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 2 || size > MAX_INPUT) return 0;
  uint8_t mode = data[0];
  const fz_fixture *fx = fz_pick(mode & 15u);
  int items_file = (mode & 16) != 0;
  towerrt_options o;
  towerrt_options_init(&o);
  o.output_logits = (mode >> 5) & 1u;
  if (mode & 64) o.max_k = 8;
  int probs = fx->model->output_sigmoid && !o.output_logits;
  towerrt_session *s = NULL;
  towerrt_status st = towerrt_session_create(fx->model, fx->items, &o, &s);
  if (st) fz_die("session on a fixture: %s", towerrt_last_error());

  char *text = malloc(size - 1);
  if (!text) fz_die("out of memory");
  memcpy(text, data + 1, size - 1);
  FILE *f = fmemopen(text, size - 1, "r");
  if (!f) fz_die("fmemopen failed");
  trt_text_reader r;
  st = trt_text_open(&r, f, "fuzz.txt", items_file ? "towerrt-items" : "towerrt-requests", fx->model);
  if (st) {
    if (!towerrt_last_error()[0]) fz_die("trt_text_open failed without a message");
  } else if (items_file) {
    score_catalog(fx, s, &r, probs);
  } else {
    r.max_candidates = o.max_k;
    trt_request q = {0};
    for (int n = 0; n < MAX_REQUESTS; n++) {
      int done = 0;
      st = trt_text_next_request(&r, &q, &done);
      if (st) {
        if (!towerrt_last_error()[0]) fz_die("trt_text_next_request failed without a message");
        break;
      }
      if (done) break;
      size_t k = q.by_id ? q.items.n_keys : q.items.n_rows;
      if (k == 0 || k > o.max_k) fz_die("the reader returned a request of %zu candidates (max %u)", k, o.max_k);
      if (q.user.n_rows != 1) fz_die("the reader returned %zu user rows", q.user.n_rows);
      fz_score_request(fx, s, &q, probs);
    }
    trt_request_free(&q);
  }
  trt_text_close(&r);
  fclose(f);
  free(text);
  towerrt_session_free(s);
  return 0;
}
