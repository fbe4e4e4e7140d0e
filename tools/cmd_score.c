/* towerrt score: a file of requests (docs/format.md) -> one line of k
 * scores per request; --batch-users runs the user towers of many requests
 * as batched matrix products. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/text_input.h"
#include "tools/cli.h"
#include "towerrt.h"

static towerrt_status score_one(towerrt_session *s, const trt_request *q, float **scores, size_t *cap, size_t *k) {
  *k = q->by_id ? q->items.n_keys : q->items.n_rows;
  if (*k > *cap) {
    float *p = realloc(*scores, *k * sizeof(float));
    if (!p) return TOWERRT_ERR_NO_MEMORY;
    *scores = p;
    *cap = *k;
  }
  towerrt_features user = {q->user.ids, q->user.n_ids, q->user.dense, q->user.n_dense};
  if (q->by_id) return towerrt_score(s, &user, q->items.keys, *k, *scores);
  towerrt_features items = {q->items.ids, q->items.n_ids, q->items.dense, q->items.n_dense};
  return towerrt_score_features(s, &user, &items, *k, *scores);
}

/* A file with a header and no request is valid but almost surely not what
 * was meant. */
static void warn_empty(const trt_text_reader *r) {
  fprintf(stderr, "towerrt: warning: %s holds no requests (only its header): nothing scored\n", r->name);
}

static void write_scores(FILE *out, const float *scores, size_t k) {
  for (size_t i = 0; i < k; i++) fprintf(out, i ? " %.9g" : "%.9g", (double)scores[i]);
  fputc('\n', out);
}

/* Offline scoring (--batch-users N): the user towers of up to N requests
 * by id in one towerrt_user_heads call, then each request's candidates with
 * towerrt_score_heads. A request by features is scored on its own. */
typedef struct user_batch {
  trt_request *q;
  size_t n, cap;
  trt_rows users; /* the n requests' users, as one block */
  float *heads, *scores;
  size_t scores_cap;
} user_batch;

static towerrt_status flush_batch(towerrt_session *s, user_batch *b, FILE *out, size_t *done_requests) {
  if (!b->n) return TOWERRT_OK;
  size_t per = towerrt_session_user_heads_size(s);
  float *heads = realloc(b->heads, b->n * per * sizeof *heads);
  if (!heads) return TOWERRT_ERR_NO_MEMORY;
  b->heads = heads;
  towerrt_features users = {b->users.ids, b->users.n_ids, b->users.dense, b->users.n_dense};
  towerrt_status st = towerrt_user_heads(s, &users, b->n, heads);
  for (size_t i = 0; i < b->n && !st; i++) {
    size_t k = b->q[i].items.n_keys;
    if (k > b->scores_cap) {
      float *p = realloc(b->scores, k * sizeof *p);
      if (!p) return TOWERRT_ERR_NO_MEMORY;
      b->scores = p, b->scores_cap = k;
    }
    if (!(st = towerrt_score_heads(s, heads + i * per, b->q[i].items.keys, k, b->scores))) {
      write_scores(out, b->scores, k);
      ++*done_requests;
    }
  }
  for (size_t i = 0; i < b->n; i++) trt_request_free(&b->q[i]);
  b->n = 0;
  trt_rows_clear(&b->users);
  return st;
}

static towerrt_status add_to_batch(user_batch *b, trt_request *q) {
  if (b->n == b->cap) {
    size_t cap = b->cap ? 2 * b->cap : 64;
    trt_request *p = realloc(b->q, cap * sizeof *p);
    if (!p) return TOWERRT_ERR_NO_MEMORY;
    b->q = p, b->cap = cap;
  }
  towerrt_status st = trt_rows_append(&b->users, &q->user);
  if (st) return st;
  b->q[b->n++] = *q; /* takes the request's rows */
  memset(q, 0, sizeof *q);
  return TOWERRT_OK;
}

static int run_batched(towerrt_session *s, trt_text_reader *r, FILE *out, size_t batch) {
  user_batch b = {0};
  trt_request q = {0};
  float *scores = NULL;
  size_t cap = 0, k = 0, n = 0;
  int done = 0, rc = 0;
  towerrt_status st = TOWERRT_OK;
  while (!st) {
    if ((st = trt_text_next_request(r, &q, &done)) || done) break;
    if (q.by_id) {
      if (!(st = add_to_batch(&b, &q)) && b.n == batch) st = flush_batch(s, &b, out, &n);
    } else if (!(st = flush_batch(s, &b, out, &n)) && !(st = score_one(s, &q, &scores, &cap, &k))) {
      write_scores(out, scores, k);
      n++;
    }
  }
  if (!st) st = flush_batch(s, &b, out, &n);
  if (st) {
    fprintf(stderr, "towerrt: error: %s: request %zu: %s (%s)\n", r->name, n + 1,
            st == TOWERRT_ERR_NO_MEMORY ? "out of memory" : *towerrt_session_error(s) ? towerrt_session_error(s) : towerrt_last_error(),
            towerrt_status_name(st));
    rc = EXIT_FAILED;
  }
  if (!rc && n == 0) warn_empty(r);
  for (size_t i = 0; i < b.n; i++) trt_request_free(&b.q[i]);
  free(b.q), free(b.heads), free(b.scores), free(scores);
  trt_rows_free(&b.users);
  trt_request_free(&q);
  return rc;
}

static int run_requests(towerrt_session *s, trt_text_reader *r, FILE *out) {
  trt_request q = {0};
  float *scores = NULL;
  size_t cap = 0, k = 0, n = 0;
  int done = 0, rc = 0;
  for (;;) {
    towerrt_status st = trt_text_next_request(r, &q, &done);
    if (st) {
      rc = fail(st, NULL);
      break;
    }
    if (done) break;
    st = score_one(s, &q, &scores, &cap, &k);
    if (st) {
      fprintf(stderr, "towerrt: error: %s:%zu: request %zu: %s (%s)\n", r->name, q.line, n + 1,
              st == TOWERRT_ERR_NO_MEMORY ? "out of memory" : towerrt_session_error(s), towerrt_status_name(st));
      rc = EXIT_FAILED;
      break;
    }
    write_scores(out, scores, k);
    n++;
  }
  if (!rc && n == 0) warn_empty(r);
  free(scores);
  trt_request_free(&q);
  return rc;
}

int cmd_score(const cli_args *a) {
  if (a->help) {
    puts("usage: towerrt score --model M.twr [--items S.twi] --requests R.txt [--out O.txt]\n"
         "                     [--fe-layers 0,1,2] [--logits] [--max-k N] [--isa NAME]\n"
         "                     [--threads N] [--numa-node I] [--placement shared|replicate|interleave]\n"
         "                     [--batch-users N]\n"
         "  Scores every request of R (docs/format.md) and writes one line of k scores\n"
         "  per request. --fe-layers forces a subset of user FE layers (an approximation\n"
         "  unless the model was trained that way: docs/fe-modes.md). --batch-users N\n"
         "  (offline scoring) runs the user towers of N requests by id at once, as\n"
         "  batched matrix products (towerrt_user_heads).");
    return 0;
  }
  towerrt_options o;
  options_from(a, &o);
  towerrt_pool *pool = NULL;
  towerrt_model *m = NULL;
  towerrt_items *items = NULL;
  towerrt_session *s = NULL;
  towerrt_status st = pool_from(a, &o, &pool);
  if (!st) st = towerrt_model_load(a->model, &o, &m);
  if (!st && a->items) st = towerrt_items_load(a->items, &o, &items);
  if (!st) st = towerrt_session_create(m, items, &o, &s);
  if (st) {
    int rc = fail(st, NULL);
    towerrt_items_free(items);
    towerrt_model_free(m);
    towerrt_pool_free(pool);
    return rc;
  }
  FILE *in = open_in(a->requests);
  FILE *out = in ? (a->out ? open_out(a->out) : stdout) : NULL;
  int rc = EXIT_FAILED;
  if (in && out) {
    trt_text_reader r;
    st = trt_text_open(&r, in, a->requests, "towerrt-requests", m);
    if (st) rc = fail(st, NULL);
    else {
      r.max_candidates = o.max_k;
      rc = a->batch_users > 1 ? run_batched(s, &r, out, a->batch_users) : run_requests(s, &r, out);
    }
    trt_text_close(&r);
  }
  if (in && in != stdin) fclose(in);
  if (out && out != stdout && fclose(out) != 0) rc = EXIT_FAILED;
  towerrt_session_free(s);
  towerrt_items_free(items);
  towerrt_model_free(m);
  towerrt_pool_free(pool);
  return rc;
}

