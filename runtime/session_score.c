/* A session's requests: by id (user features or precomputed heads) and by
 * features, scores or top-n. The candidates are cut into fixed blocks
 * (the same cut whatever the thread count, so scores are bitwise
 * identical) that the caller and the workers of one NUMA node share; each
 * block resolves its ids, runs the store's MaxSim over user heads packed
 * once per request, adds a centred store's terms and the family's
 * finish. Allocates nothing: everything lives in the session's arena. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "onednn_matmul.h"
#include "options.h"
#include "quantize_heads.h"
#include "session_internal.h"

/* Records the thread's message on the session too, and fills the scores
 * with NaN so that a failed call can never be mistaken for a result. A
 * LIMIT failure writes nothing: the size that was refused (k > max_k, or a
 * count whose product with the row size wraps) says nothing about the
 * caller's buffer, which may well hold only max_k floats. */
static towerrt_status session_fail(towerrt_session *s, towerrt_status st, float *scores, size_t k) {
  strncpy(s->error, towerrt_last_error(), sizeof s->error - 1);
  s->error[sizeof s->error - 1] = '\0';
  if (st == TOWERRT_ERR_LIMIT) return st;
  for (size_t i = 0; scores && i < k; i++) scores[i] = NAN;
  return st;
}

/* The request's store: a reference taken on the current one, and what the
 * kernels read of it (this node's copy of the heads, the int8 parameters). */
static const towerrt_items *acquire_items(towerrt_session *s) {
  pthread_mutex_lock(&s->items_mu);
  const towerrt_items *it = s->current;
  trt_items_retain(it);
  pthread_mutex_unlock(&s->items_mu);
  s->items = it;
  if (!it) return NULL;
  const towerrt_model *m = s->model;
  /* an overlay: the base's copy here, a delta's rows are read where they are mapped */
  s->item_heads = trt_items_heads_for_node(it->overlay ? it->overlay->layer[0] : it, s->node);
  const trt_maxsim_kernel *k = it->dtype == TOWERRT_PRECISION_INT8   ? &m->kernels.packed_maxsim_u8s8
                               : it->dtype == TOWERRT_PRECISION_BF16 ? &m->kernels.packed_maxsim_bf16
                                                                     : &m->kernels.packed_maxsim_f32;
  int int8 = it->dtype == TOWERRT_PRECISION_INT8;
  s->maxsim = k;
  s->maxsim_items = (trt_maxsim_items){.items = s->item_heads, .item_stride = (size_t)it->row_stride,
                                       .colsum = int8 ? it->colsums : NULL, .colsum_stride = it->heads,
                                       .item_scale = int8 ? it->scales : NULL, .n_item = m->heads_item, .dim = m->head_dim};
  return it;
}

static void release_items(towerrt_session *s) {
  trt_items_release(s->items);
  s->items = NULL;
}

/* The candidates' side of a request: `what` names the user's form in the message. */
static towerrt_status check_candidates(towerrt_session *s, const void *user, const char *what, const void *cands, size_t k,
                                       float *scores) {
  if (!user || !cands || !scores) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "%s, candidates and scores must not be NULL", what);
  if (k == 0) return trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "k = 0: no candidates to score");
  if (k > s->max_k) return trt_fail(TOWERRT_ERR_LIMIT, "k = %zu exceeds the session's planned maximum %u (options.max_k)", k, s->max_k);
  return TOWERRT_OK;
}

static towerrt_status check_request(towerrt_session *s, const towerrt_features *user, const void *cands, size_t k, float *scores) {
  towerrt_status st = check_candidates(s, user, "user", cands, k, scores);
  return st ? st : trt_check_features(s->model, TOWERRT_USER, user, 1);
}

/* The prediction layer, as the reference: sigmoid(score + bias). */
static void finish(const towerrt_session *s, float *scores, size_t k) {
  float bias = s->model->out_bias;
  int sigmoid = s->model->output_sigmoid && !s->output_logits;
  for (size_t i = 0; i < k; i++) {
    float z = scores[i] + bias;
    /* A raw score that overflowed is marked NaN; the tasks report it. */
    scores[i] = !isfinite(z) ? NAN : sigmoid ? 1.0f / (1.0f + expf(-z)) : z;
  }
}

static size_t n_user_heads(const towerrt_session *s) { return (size_t)__builtin_popcount(s->fe_mask) * s->model->heads_user; }

/* Finite weights and inputs can still overflow in the towers: an Inf or
 * NaN head would be skipped by MaxSim's max and give a finite, wrong
 * score. The user heads are checked once per request; candidates whose
 * item heads are not finite get a NaN score, and no call returns OK with a
 * NaN score. */
static towerrt_status check_user_heads(const towerrt_session *s) {
  const float *h = s->ws[0].user_heads;
  for (size_t i = 0, n = n_user_heads(s) * s->model->head_dim; i < n; i++)
    if (!isfinite(h[i]))
      return trt_fail(TOWERRT_ERR_NONFINITE, "the user tower overflowed: user FE head value %zu is %s (weights or dense values too large)", i,
                      isnan(h[i]) ? "NaN" : "Inf");
  return TOWERRT_OK;
}

static void note_first(atomic_size_t *first, size_t c) {
  size_t cur = atomic_load(first);
  while (c < cur && !atomic_compare_exchange_weak(first, &cur, c)) {
  }
}

/* The rows of a block's candidates into ws->rows, and their places in the
 * block into slot->pos; returns how many resolved, or SIZE_MAX when an
 * unknown id fails the request (strict). Unknown ids are counted when skipped.
 * Overlays: rows of the base come first (*n_base of them); rows found in
 * deltas follow, grouped by delta: group g is delta sl->dlayer[g] and ends
 * before row sl->drow[g] (*n_groups groups). */
static size_t resolve_ids(towerrt_session *s, trt_workspace *ws, trt_serve_slot *sl, size_t c0, size_t b, size_t *n_base,
                          size_t *n_groups) {
  size_t n = 0, nd = 0;
  const towerrt_items *base = s->items->overlay ? s->items->overlay->layer[0] : s->items, *layer = base;
  for (size_t c = 0; c < b; c++) {
    uint64_t id = s->req_ids[c0 + c];
    uint32_t row = s->items->overlay ? trt_items_locate(s->items, id, &layer) : trt_items_find(s->items, id);
    if (row == TRT_EMPTY_ROW) {
      if (!s->skip_unknown) {
        note_first(&s->first_unknown, c0 + c);
        return SIZE_MAX;
      }
      continue;
    }
    if (layer != base) {
      sl->drow[nd] = row;
      sl->dpos[nd] = (uint16_t)c;
      sl->dlayer[nd++] = layer;
      continue;
    }
    ws->rows[n] = row;
    sl->pos[n++] = (uint16_t)c;
  }
  *n_base = n;
  /* group the delta rows by delta, after the base rows. Group g's record
   * goes to index g <= i: every entry below i is consumed by then. */
  size_t g = 0;
  for (size_t i = 0; i < nd; i++) {
    const towerrt_items *l = sl->dlayer[i];
    if (!l) continue;
    for (size_t j = i; j < nd; j++)
      if (sl->dlayer[j] == l) {
        ws->rows[n] = sl->drow[j];
        sl->pos[n++] = sl->dpos[j];
        sl->dlayer[j] = NULL;
      }
    sl->dlayer[g] = l;
    sl->drow[g++] = (uint32_t)n;
  }
  *n_groups = g;
  if (n < b) atomic_fetch_add(&s->skipped, b - n);
  return n;
}

/* A centred store's term: its heads are m + r, and m is shared by every
 * head of every item, so max_h <u, m + r_h> = <u, m> + max_h <u, r_h>:
 * the score is the kernel's sum over r plus sum_u <u, m>. From the f32
 * user heads (not the u8 / bf16 copies the kernels read), summed in
 * double and rounded once: the term adds one f32 rounding to the score. */
static float centre_term(const towerrt_session *s, const towerrt_items *it) {
  if (!it->centre) return 0.0f;
  const float *u = s->ws[0].user_heads;
  size_t dim = s->model->head_dim;
  double t = 0.0;
  for (size_t h = 0, n = n_user_heads(s); h < n; h++)
    for (size_t d = 0; d < dim; d++) t += (double)u[h * dim + d] * it->centre[d];
  return (float)t;
}

/* A row-centred store: candidate c's heads are m_c + r_h, so its score
 * gains sum_u <u, m_c> = <sum_u u, m_c>: head_dim multiply-adds per
 * candidate with the request's summed user heads, in double (4 partial
 * sums), rounded once. */
static void add_row_terms(const towerrt_session *s, const towerrt_items *it, const uint32_t *rows, size_t n, float *out) {
  const double *u = s->user_sum;
  size_t dim = it->head_dim, d4 = dim & ~(size_t)3;
  for (size_t c = 0; c < n; c++) {
    /* the centres are read in candidate order, rows scattered: fetch a few
     * candidates ahead (measured: without it, +10% per int8 request at
     * k = 10,000 in the reference configuration; docs/quantization.md) */
    if (c + 8 < n)
      for (size_t off = 0; off < dim; off += 16) __builtin_prefetch(it->row_centres + (size_t)rows[c + 8] * dim + off);
    const float *m = it->row_centres + (size_t)rows[c] * dim;
    double a0 = 0, a1 = 0, a2 = 0, a3 = 0;
    size_t d = 0;
    for (; d < d4; d += 4) {
      a0 += u[d] * m[d];
      a1 += u[d + 1] * m[d + 1];
      a2 += u[d + 2] * m[d + 2];
      a3 += u[d + 3] * m[d + 3];
    }
    for (; d < dim; d++) a0 += u[d] * m[d];
    out[c] += (float)((a0 + a1) + (a2 + a3));
  }
}

/* A row-centred store, or an overlay with one among its layers. */
static int has_row_centres(const towerrt_items *it) {
  for (uint32_t i = 0; i < (it->overlay ? it->overlay->n_layers : 1); i++)
    if ((it->overlay ? it->overlay->layer[i] : it)->row_centres) return 1;
  return 0;
}

/* The request's sum of user heads, for row-centred stores. */
static void sum_user_heads(towerrt_session *s) {
  const float *u = s->ws[0].user_heads;
  size_t dim = s->model->head_dim, n = n_user_heads(s);
  for (size_t d = 0; d < dim; d++) s->user_sum[d] = 0.0;
  for (size_t h = 0; h < n; h++)
    for (size_t d = 0; d < dim; d++) s->user_sum[d] += u[h * dim + d];
}

/* MaxSim + centre term + family hook + prediction layer over n rows of
 * store `it` (its heads at `heads`) into out[n]. */
static void score_rows(towerrt_session *s, const towerrt_items *it, const void *heads, const uint32_t *rows, size_t n, float *out) {
  const towerrt_model *m = s->model;
  const trt_workspace *w0 = &s->ws[0];
  trt_maxsim_items items = s->maxsim_items;
  items.items = heads;
  if (items.colsum) { /* int8: this layer's column sums and scales */
    items.colsum = it->colsums;
    items.item_scale = it->scales;
  }
  s->maxsim->score(w0->user_packed, n_user_heads(s), &items, rows, n, out);
  if (it->centre) {
    /* the base's term was computed with the request; a delta's (rare) here */
    const towerrt_items *base = s->items->overlay ? s->items->overlay->layer[0] : s->items;
    float term = it == base ? s->centre_term : centre_term(s, it);
    for (size_t c = 0; c < n; c++) out[c] += term;
  }
  if (it->row_centres) add_row_terms(s, it, rows, n, out);
  /* two-tower family hook: the kernel gave <u, i>; cosine / scale per candidate */
  if (m->family->finish_scores) {
    trt_score_block blk = {w0->user_heads, heads, it->dtype, (size_t)it->row_stride, it->scales, rows, n};
    m->family->finish_scores(m, &blk, out);
  }
  finish(s, out, n);
}

/* The n resolved rows of a block: the base's first, then each delta's run
 * (resolve_ids grouped them) with that delta's heads and parameters. */
static void score_resolved(towerrt_session *s, const trt_workspace *ws, const trt_serve_slot *sl, size_t n_base, size_t n_groups,
                           float *out) {
  const towerrt_items *it = s->items->overlay ? s->items->overlay->layer[0] : s->items;
  if (n_base) score_rows(s, it, s->item_heads, ws->rows, n_base, out);
  for (size_t g = 0, first = n_base; g < n_groups; first = sl->drow[g++])
    score_rows(s, sl->dlayer[g], sl->dlayer[g]->heads_data, ws->rows + first, sl->drow[g] - first, out + first);
}

/* Top-n requests: offers a block's n scores to the participant's heap;
 * scores[j] belongs to candidate c0 + pos[j] (pos NULL: c0 + j). The id is
 * the candidate's item id, or its position when scored by features. */
static void keep_best(towerrt_session *s, trt_serve_slot *sl, size_t c0, const uint16_t *pos, const float *scores, size_t n) {
  trt_topn *h = &sl->topn;
  for (size_t j = 0; j < n; j++) {
    size_t c = c0 + (pos ? pos[j] : j);
    if (!isfinite(scores[j])) {
      note_first(&s->first_nonfinite, c);
      continue;
    }
    trt_rank r = {.score = scores[j], .pos = (uint32_t)c, .id = s->req_ids ? s->req_ids[c] : c};
    /* most candidates miss the cut: one comparison with the worst kept */
    if (h->size == h->cap && !trt_rank_before(&r, &h->e[0])) continue;
    trt_topn_push(h, r);
  }
}

/* Scores in candidate order: the n resolved scores into the caller's
 * array, NaN for the skipped candidates; non-finite scores are noted. */
static void place_scores(towerrt_session *s, size_t c0, size_t b, const uint16_t *pos, const float *scores, size_t n) {
  float *out = s->req_scores + c0;
  if (scores != out) {
    for (size_t c = 0; c < b; c++) out[c] = NAN;
    for (size_t j = 0; j < n; j++) out[pos[j]] = scores[j];
  }
  for (size_t j = 0; j < n; j++)
    if (!isfinite(scores[j])) note_first(&s->first_nonfinite, c0 + pos[j]);
}

/* One block of TRT_ID_BLOCK candidates by store id. */
static void task_by_id(void *ctx, uint32_t task, uint32_t slot) {
  towerrt_session *s = ctx;
  trt_workspace *ws = &s->ws[slot];
  trt_serve_slot *sl = &s->slots[slot];
  uint64_t t0 = trt_trace_begin(s), t1 = t0, t2;
  size_t c0 = (size_t)task * TRT_ID_BLOCK, b = s->req_k - c0 < TRT_ID_BLOCK ? s->req_k - c0 : TRT_ID_BLOCK;
  size_t n_base = 0, n_groups = 0;
  size_t n = resolve_ids(s, ws, sl, c0, b, &n_base, &n_groups);
  if (n == SIZE_MAX) return;
  trt_trace_end(s, "resolve", t1, slot);
  t2 = trt_trace_begin(s);
  /* the common case writes straight into the caller's scores (rows in
   * candidate order: all resolved, none from a delta) */
  float *out = !s->req_n && n == b && n_base == n ? s->req_scores + c0 : sl->scores;
  if (n) score_resolved(s, ws, sl, n_base, n_groups, out);
  trt_trace_end(s, "maxsim", t2, slot);
  t1 = trt_trace_begin(s);
  if (s->req_n)
    keep_best(s, sl, c0, sl->pos, out, n);
  else
    place_scores(s, c0, b, sl->pos, out, n);
  trt_trace_end(s, "output", t1, slot);
  trt_trace_end(s, "score_block", t0, slot);
}

/* The user heads in the precision of the item store, packed for its MaxSim
 * kernel: once per request, read by every block. */
static void pack_user_heads(towerrt_session *s) {
  trt_workspace *w0 = &s->ws[0];
  s->centre_term = centre_term(s, s->items->overlay ? s->items->overlay->layer[0] : s->items);
  if (has_row_centres(s->items)) sum_user_heads(s);
  size_t n = n_user_heads(s), dim = s->model->head_dim;
  trt_maxsim_user u = {w0->user_heads, NULL, NULL, n, dim};
  if (s->items->dtype == TOWERRT_PRECISION_BF16) {
    trt_f32_to_bf16_array(w0->user_heads, n * dim, w0->user_bf16);
    u.heads = w0->user_bf16;
  }
  if (s->items->dtype == TOWERRT_PRECISION_INT8) {
    s->model->kernels.quantize_u8(w0->user_heads, n, dim, s->model->kernels.u8_max, w0->user_u8, w0->user_zp, w0->user_scale);
    u = (trt_maxsim_user){w0->user_u8, w0->user_zp, w0->user_scale, n, dim};
  }
  s->maxsim->pack(&u, w0->user_packed);
}

/* One block of TRT_ITEM_BLOCK candidates by features (item tower online). */
static void task_by_features(void *ctx, uint32_t task, uint32_t slot) {
  towerrt_session *s = ctx;
  const towerrt_model *m = s->model;
  trt_workspace *ws = &s->ws[slot];
  const towerrt_features *it = s->req_items;
  size_t c0 = (size_t)task * TRT_ITEM_BLOCK, b = s->req_k - c0 < TRT_ITEM_BLOCK ? s->req_k - c0 : TRT_ITEM_BLOCK;
  float *out = s->req_n ? s->slots[slot].scores : s->req_scores + c0;
  trt_item_forward(m, s->item, ws, it->ids + c0 * m->item.id_slots, it->dense ? it->dense + c0 * m->item.dense_width : NULL, b);
  trt_maxsim_items items = {.items = ws->item_heads, .item_stride = (size_t)m->heads_item * m->head_dim * sizeof(float),
                           .n_item = m->heads_item, .dim = m->head_dim};
  m->kernels.packed_maxsim_f32.score(s->ws[0].user_packed, n_user_heads(s), &items, NULL, b, out);
  if (m->family->finish_scores) {
    trt_score_block blk = {s->ws[0].user_heads, ws->item_heads, TOWERRT_PRECISION_F32, (size_t)m->heads_item * m->head_dim * sizeof(float), NULL, NULL, b};
    m->family->finish_scores(m, &blk, out);
  }
  finish(s, out, b);
  size_t per = (size_t)m->heads_item * m->head_dim;
  for (size_t c = 0; c < b; c++)
    for (size_t j = 0; j < per; j++)
      if (!isfinite(ws->item_heads[c * per + j])) {
        out[c] = NAN;
        break;
      }
  if (s->req_n) {
    keep_best(s, &s->slots[slot], c0, NULL, out, b);
    return;
  }
  for (size_t c = 0; c < b; c++)
    if (!isfinite(out[c])) note_first(&s->first_nonfinite, c0 + c);
}

/* One request's output: scores in candidate order, or the n best. */
typedef struct trt_out {
  float *scores; /* k, or NULL for top-n */
  size_t n;
  uint64_t *ids;
  float *top_scores;
} trt_out;

static towerrt_status out_fail(towerrt_session *s, towerrt_status st, const trt_out *o, size_t k) {
  if (o->scores) return session_fail(s, st, o->scores, k);
  /* Top-n: the caller sized both outputs by n itself, so all n entries are
   * NO_ID / NaN after any failure, LIMIT included (docs/serving.md). */
  for (size_t i = 0; o->ids && i < o->n; i++) o->ids[i] = TOWERRT_NO_ID;
  for (size_t i = 0; o->top_scores && i < o->n; i++) o->top_scores[i] = NAN;
  return session_fail(s, st, NULL, 0);
}

/* Checks what a top-n call adds to a request. */
static towerrt_status check_topn(const towerrt_session *s, const trt_out *o) {
  if (!o->ids || !o->top_scores) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "out_ids and out_scores must not be NULL");
  if (o->n == 0) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "n = 0: no candidates asked for");
  if (o->n > s->max_topn)
    return trt_fail(TOWERRT_ERR_LIMIT, "n = %zu exceeds the session's planned top-n maximum %u (options.max_topn, at most max_k)", o->n,
                    s->max_topn);
  return TOWERRT_OK;
}

/* Runs the tasks over k candidates, then turns what they noted into the status. */
static towerrt_status run(towerrt_session *s, size_t k, size_t block, trt_task_fn fn, const trt_out *o) {
  s->req_scores = o->scores;
  s->req_k = k;
  s->req_n = o->scores ? 0 : o->n;
  atomic_store(&s->first_unknown, SIZE_MAX);
  atomic_store(&s->first_nonfinite, SIZE_MAX);
  atomic_store(&s->skipped, 0);
  for (uint32_t i = 0; i < s->threads && s->req_n; i++) trt_topn_reset(&s->slots[i].topn, s->slots[i].heap, s->req_n);
  uint32_t n_tasks = (uint32_t)((k + block - 1) / block);
  trt_node_pool_run(s->threads > 1 ? s->pool : NULL, &s->job, n_tasks, s->threads, fn, s);
  size_t bad = atomic_load(&s->first_unknown), inf = atomic_load(&s->first_nonfinite);
  if (bad != SIZE_MAX)
    return out_fail(s, trt_fail(TOWERRT_ERR_UNKNOWN_ITEM, "candidate %zu: item id %llu is not in the item store (%llu items)", bad,
                                (unsigned long long)s->req_ids[bad], (unsigned long long)s->items->count), o, k);
  if (inf != SIZE_MAX)
    return out_fail(s, trt_fail(TOWERRT_ERR_NONFINITE, "candidate %zu: the score is not finite: the item tower or MaxSim overflowed "
                                "(weights or values too large)", inf), o, k);
  if (s->req_n) {
    for (uint32_t i = 1; i < s->threads; i++) trt_topn_merge(&s->slots[0].topn, &s->slots[i].topn);
    trt_topn_emit(&s->slots[0].topn, o->n, o->ids, o->top_scores);
  }
  s->last_skipped = atomic_load(&s->skipped);
  return TOWERRT_OK;
}

/* The k candidates by id, the user heads being in ws[0].user_heads; the
 * store was acquired by the caller. */
static towerrt_status score_ids(towerrt_session *s, const uint64_t *item_ids, size_t k, const trt_out *o) {
  towerrt_status st;
  uint64_t t0 = trt_trace_begin(s);
  if ((st = check_user_heads(s))) return out_fail(s, st, o, k);
  trt_trace_end(s, "heads_check", t0, 0);
  t0 = trt_trace_begin(s);
  pack_user_heads(s);
  trt_trace_end(s, "user_heads", t0, 0);
  s->req_ids = item_ids;
  return run(s, k, TRT_ID_BLOCK, task_by_id, o);
}

static towerrt_status no_items(towerrt_session *s, const trt_out *o, size_t k, const char *hint) {
  release_items(s);
  return out_fail(s, trt_fail(TOWERRT_ERR_NO_ITEMS, "this session has no item store%s", hint), o, k);
}

struct trt_out;
static towerrt_status family_request_ids(towerrt_session *s, const towerrt_features *user, const uint64_t *ids, size_t k,
                                         const struct trt_out *o);

/* By id, from the user's features: towerrt_score and towerrt_score_topn. */
static towerrt_status score_user_ids(towerrt_session *s, const char *fn, const towerrt_features *user, const uint64_t *item_ids, size_t k,
                                     const trt_out *o) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "%s: session is NULL", fn);
  s->last_skipped = 0;
  uint64_t tc = trt_trace_begin(s);
  towerrt_status st = check_request(s, user, item_ids, k, o->scores ? o->scores : o->top_scores);
  if (!st && !o->scores) st = check_topn(s, o);
  if (st) return out_fail(s, st, o, k);
  trt_trace_end(s, "check", tc, 0);
  if (!acquire_items(s)) return no_items(s, o, k, ": score by features, or give it one (towerrt_session_set_items)");
  if (s->model->family->score_rows) {
    st = family_request_ids(s, user, item_ids, k, o);
    release_items(s);
    return st;
  }
  uint64_t t0 = trt_trace_begin(s);
  trt_user_forward(s->model, s->user, &s->ws[0], user->ids, user->dense, s->fe_mask, s->ws[0].user_heads);
  trt_trace_end(s, "user_tower", t0, 0);
  st = score_ids(s, item_ids, k, o);
  trt_trace_end(s, "request", t0, 0);
  release_items(s);
  return st;
}

towerrt_status towerrt_score(towerrt_session *s, const towerrt_features *user, const uint64_t *item_ids, size_t k, float *scores) {
  trt_out o = {.scores = scores};
  return score_user_ids(s, "towerrt_score", user, item_ids, k, &o);
}

towerrt_status towerrt_score_topn(towerrt_session *s, const towerrt_features *user, const uint64_t *item_ids, size_t k, size_t n,
                                  uint64_t *out_ids, float *out_scores) {
  trt_out o = {.n = n, .ids = out_ids, .top_scores = out_scores};
  return score_user_ids(s, "towerrt_score_topn", user, item_ids, k, &o);
}

size_t towerrt_session_last_skipped(const towerrt_session *s) { return s ? s->last_skipped : 0; }
size_t towerrt_session_max_topn(const towerrt_session *s) { return s ? s->max_topn : 0; }

size_t towerrt_session_user_heads_size(const towerrt_session *s) { return s ? n_user_heads(s) * s->model->head_dim : 0; }

towerrt_status towerrt_user_heads(towerrt_session *s, const towerrt_features *users, size_t n_users, float *heads) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_user_heads: session is NULL");
  if (s->model->family->score_features)
    return session_fail(s, trt_fail(TOWERRT_ERR_UNSUPPORTED, "towerrt_user_heads: a %s model has no user heads of its own: they depend on "
                                    "each candidate's query index (score by features)", s->model->family->name), NULL, 0);
  size_t per = towerrt_session_user_heads_size(s);
  towerrt_status st = !users || !heads ? trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_user_heads: users and heads must not be NULL")
                      : n_users == 0   ? trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "towerrt_user_heads: n_users = 0")
                      : n_users > SIZE_MAX / sizeof(float) / per
                          ? trt_fail(TOWERRT_ERR_LIMIT, "towerrt_user_heads: %zu users x %zu floats overflow", n_users, per)
                          : trt_check_features(s->model, TOWERRT_USER, users, n_users);
  /* Arguments that fail their checks leave heads untouched: n_users is
   * not bounded by the session (unlike k by max_k), so a buffer sized for
   * it cannot be assumed when the counts disagree (issue 13). Once they
   * passed, a failure of the tower itself marks all n_users x per NaN. */
  size_t fill = st ? 0 : n_users * per;
  if (!st) st = trt_user_heads_batch(s->model, s->user, &s->ws[0], &s->mm, s->fe_mask, users, n_users, heads);
  for (size_t i = 0; !st && i < n_users * per; i++)
    if (!isfinite(heads[i]))
      st = trt_fail(TOWERRT_ERR_NONFINITE, "user %zu: the user tower overflowed (head value %zu is %s)", i / per, i % per,
                    isnan(heads[i]) ? "NaN" : "Inf");
  return st ? session_fail(s, st, heads, fill) : TOWERRT_OK;
}

static towerrt_status score_heads(towerrt_session *s, const char *fn, const float *heads, const uint64_t *item_ids, size_t k,
                                  const trt_out *o) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "%s: session is NULL", fn);
  s->last_skipped = 0;
  towerrt_status st = check_candidates(s, heads, "heads", item_ids, k, o->scores ? o->scores : o->top_scores);
  if (!st && !o->scores) st = check_topn(s, o);
  if (!st && s->model->family->score_rows)
    st = trt_fail(TOWERRT_ERR_UNSUPPORTED, "%s: a %s model has no user heads of its own (they depend on each candidate's query): score "
                  "from the user's features", fn, s->model->family->name);
  if (st) return out_fail(s, st, o, k);
  if (!acquire_items(s)) return no_items(s, o, k, "");
  memcpy(s->ws[0].user_heads, heads, towerrt_session_user_heads_size(s) * sizeof(float));
  uint64_t t0 = trt_trace_begin(s);
  st = score_ids(s, item_ids, k, o);
  trt_trace_end(s, "request", t0, 0);
  release_items(s);
  return st;
}

towerrt_status towerrt_score_heads(towerrt_session *s, const float *heads, const uint64_t *item_ids, size_t k, float *scores) {
  trt_out o = {.scores = scores};
  return score_heads(s, "towerrt_score_heads", heads, item_ids, k, &o);
}

towerrt_status towerrt_score_heads_topn(towerrt_session *s, const float *heads, const uint64_t *item_ids, size_t k, size_t n,
                                        uint64_t *out_ids, float *out_scores) {
  trt_out o = {.n = n, .ids = out_ids, .top_scores = out_scores};
  return score_heads(s, "towerrt_score_heads_topn", heads, item_ids, k, &o);
}

/* A family with its own request (FIT): the whole request on slot 0 (one
 * thread), then the prediction layer and the output as the shared path.
 * By id (r->rows set): skipped candidates are NaN in candidate order and
 * left out of a top-n. */
static towerrt_status family_request(towerrt_session *s, trt_family_request *r, const uint64_t *ids, const trt_out *o) {
  size_t k = r->k;
  float *raw = o->scores ? o->scores : s->family_scores;
  r->item = s->item, r->ws = &s->ws[0], r->scratch = s->family_scratch, r->scores = raw;
  uint64_t t0 = trt_trace_begin(s);
  towerrt_status st = r->rows ? s->model->family->score_rows(s->model, r) : s->model->family->score_features(s->model, r);
  trt_trace_end(s, "request", t0, 0);
  if (st) return out_fail(s, st, o, k);
  finish(s, raw, k);
  s->req_ids = ids;
  size_t skipped = 0;
  for (size_t c = 0; r->rows && c < k; c++) skipped += r->rows[c] == NULL;
  s->last_skipped = skipped;
  if (!o->scores) {
    trt_topn_reset(&s->slots[0].topn, s->slots[0].heap, o->n);
    for (size_t c = 0; c < k; c++)
      if (!r->rows || r->rows[c]) keep_best(s, &s->slots[0], c, NULL, raw + c, 1);
    trt_topn_emit(&s->slots[0].topn, o->n, o->ids, o->top_scores);
  }
  for (size_t c = 0; c < k; c++)
    if (!isfinite(raw[c]) && (!r->rows || r->rows[c]))
      return out_fail(s, trt_fail(TOWERRT_ERR_NONFINITE, "candidate %zu: the score is not finite: the item tower or the LSS overflowed "
                                  "(weights or values too large)", c), o, k);
  return TOWERRT_OK;
}

/* By id for a family with its own request: each candidate's f32 row
 * (base or delta of an overlay); an unknown id fails the request, or is
 * skipped (NaN) with skip_unknown_items. */
static towerrt_status family_request_ids(towerrt_session *s, const towerrt_features *user, const uint64_t *ids, size_t k,
                                         const struct trt_out *o) {
  const towerrt_items *it = s->items, *base = it->overlay ? it->overlay->layer[0] : it;
  for (size_t c = 0; c < k; c++) {
    const towerrt_items *layer = base;
    uint32_t row = it->overlay ? trt_items_locate(it, ids[c], &layer) : trt_items_find(it, ids[c]);
    if (row == TRT_EMPTY_ROW && !s->skip_unknown)
      return out_fail(s, trt_fail(TOWERRT_ERR_UNKNOWN_ITEM, "candidate %zu: item id %llu is not in the item store (%llu items)", c,
                                  (unsigned long long)ids[c], (unsigned long long)it->count), o, k);
    const char *heads = layer == base ? s->item_heads : layer->heads_data;
    s->family_rows[c] = row == TRT_EMPTY_ROW ? NULL : (const float *)(const void *)(heads + (size_t)row * layer->row_stride);
  }
  trt_family_request r = {.user = user, .rows = s->family_rows, .k = k};
  return family_request(s, &r, ids, o);
}

static towerrt_status family_request_features(towerrt_session *s, const towerrt_features *user, const towerrt_features *items, size_t k,
                                              const trt_out *o) {
  trt_family_request r = {.user = user, .items = items, .k = k};
  towerrt_status st = family_request(s, &r, NULL, o);
  s->last_skipped = 0;
  return st;
}

static towerrt_status score_features(towerrt_session *s, const char *fn, const towerrt_features *user, const towerrt_features *items,
                                     size_t k, const trt_out *o) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "%s: session is NULL", fn);
  s->last_skipped = 0;
  towerrt_status st = check_request(s, user, items, k, o->scores ? o->scores : o->top_scores);
  if (!st && !o->scores) st = check_topn(s, o);
  if (!st) st = trt_check_features(s->model, TOWERRT_ITEM, items, k);
  if (st) return out_fail(s, st, o, k);
  if (s->model->family->score_features) return family_request_features(s, user, items, k, o);
  trt_user_forward(s->model, s->user, &s->ws[0], user->ids, user->dense, s->fe_mask, s->ws[0].user_heads);
  if ((st = check_user_heads(s))) return out_fail(s, st, o, k);
  /* the item tower's heads are fp32: the user heads packed once for them */
  trt_maxsim_user u = {s->ws[0].user_heads, NULL, NULL, n_user_heads(s), s->model->head_dim};
  s->model->kernels.packed_maxsim_f32.pack(&u, s->ws[0].user_packed);
  s->req_items = items;
  s->req_ids = NULL;
  return run(s, k, TRT_ITEM_BLOCK, task_by_features, o);
}

towerrt_status towerrt_score_features(towerrt_session *s, const towerrt_features *user, const towerrt_features *items, size_t k,
                                      float *scores) {
  trt_out o = {.scores = scores};
  return score_features(s, "towerrt_score_features", user, items, k, &o);
}

towerrt_status towerrt_score_features_topn(towerrt_session *s, const towerrt_features *user, const towerrt_features *items, size_t k,
                                           size_t n, uint64_t *out_ids, float *out_scores) {
  trt_out o = {.n = n, .ids = out_ids, .top_scores = out_scores};
  return score_features(s, "towerrt_score_features_topn", user, items, k, &o);
}
