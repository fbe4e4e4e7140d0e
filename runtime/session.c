/* Sessions: one per caller thread, each with its own arena planned at
 * creation; scoring allocates nothing. With a pool and threads > 1, a
 * request's candidates are cut into fixed blocks (the same cut whatever
 * the thread count, so scores are bitwise identical) that the caller and
 * the workers of one NUMA node share. */
#include <math.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "arch_family.h"
#include "item_store.h"
#include "onednn_matmul.h"
#include "pool.h"
#include "quantize_heads.h"
#include "status.h"
#include "tower_exec.h"

struct towerrt_session {
  const towerrt_model *model;
  const towerrt_items *items;
  uint32_t max_k, fe_mask, output_logits;
  /* Where it runs: a node's pool, that node's copies of the weights/heads. */
  trt_node_pool *pool;
  uint32_t threads, node;
  const trt_tower *user, *item;
  const void *item_heads;
  trt_maxsim_u8s8_params u8s8; /* int8 stores: fixed at creation but for the user heads */
  /* One workspace per participant slot (slot 0: the caller). */
  void *arena;
  trt_workspace *ws;
  /* The request being scored, read by the tasks. */
  const uint64_t *req_ids;
  const towerrt_features *req_items;
  float *req_scores;
  size_t req_k;
  atomic_size_t first_unknown; /* lowest candidate index with an unknown id */
  trt_job job;
  struct trt_mm *mm; /* towerrt_user_heads: oneDNN primitives, made on first use */
  char error[TRT_MSG_CAP];
};

/* Records the thread's message on the session too, and fills the scores
 * with NaN so that a failed call can never be mistaken for a result. */
static towerrt_status session_fail(towerrt_session *s, towerrt_status st, float *scores, size_t k) {
  strncpy(s->error, towerrt_last_error(), sizeof s->error - 1);
  s->error[sizeof s->error - 1] = '\0';
  for (size_t i = 0; scores && i < k; i++) scores[i] = NAN;
  return st;
}

static towerrt_status check_items(const towerrt_model *m, const towerrt_items *it, const towerrt_options *o) {
  if (!it) return TOWERRT_OK;
  if (it->heads != m->heads_item || it->head_dim != m->head_dim)
    return trt_fail(TOWERRT_ERR_MISMATCH, "item store rows are %u heads x %u dims, the model's item heads are %u x %u", it->heads,
                    it->head_dim, m->heads_item, m->head_dim);
  if (it->fingerprint != m->item_fingerprint && !o->allow_foreign_items)
    return trt_fail(TOWERRT_ERR_MISMATCH, "item store was built by another model (fingerprint 0x%08x, this model 0x%08x); "
                    "rebuild it or set allow_foreign_items", it->fingerprint, m->item_fingerprint);
  return TOWERRT_OK;
}

/* "0,2" for the bits of a layer mask. */
static const char *layer_list(uint32_t mask, char *buf, size_t cap) {
  size_t n = 0;
  buf[0] = 0;
  for (unsigned i = 0; i < 32 && n < cap; i++)
    if (mask & (1u << i)) n += (size_t)snprintf(buf + n, cap - n, n ? ",%u" : "%u", i);
  return buf;
}

static towerrt_status check_mask(const towerrt_model *m, uint32_t mask) {
  if (mask & ~m->user.fe_present) {
    char want[96], have[96];
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "user FE layer(s) %s asked for (fe_layer_mask 0x%x), but the model has FE layers %s",
                    layer_list(mask & ~m->user.fe_present, want, sizeof want), mask, layer_list(m->user.fe_present, have, sizeof have));
  }
  return TOWERRT_OK;
}

/* Picks the node and its pool; checks threads against its workers. */
static towerrt_status choose_node(const towerrt_options *o, trt_node_pool **pool, uint32_t *node) {
  *pool = NULL;
  *node = 0;
  if (o->threads == 0 || o->threads > 1024) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.threads %u out of range 1..1024", o->threads);
  towerrt_pool *p = o->pool;
  if (!p) {
    if (o->threads > 1) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.threads = %u needs options.pool (towerrt_pool_create)", o->threads);
    return TOWERRT_OK;
  }
  uint32_t n = o->numa_node >= 0 ? (uint32_t)o->numa_node : trt_topology_current_node(&p->topo);
  if (o->numa_node < 0 && !(p->active & (UINT64_C(1) << n)))
    for (n = 0; n < p->topo.n_nodes && !(p->active & (UINT64_C(1) << n)); n++) {
    }
  if (n >= p->topo.n_nodes || !(p->active & (UINT64_C(1) << n)))
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "numa_node %d has no worker pool (%u nodes)", o->numa_node, p->topo.n_nodes);
  if (o->threads > p->nodes[n].n_workers + 1)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "threads = %u, but node %u has %u workers (+ the caller)", o->threads, n, p->nodes[n].n_workers);
  *pool = &p->nodes[n];
  *node = n;
  return TOWERRT_OK;
}

static towerrt_status make_arena(towerrt_session *s) {
  size_t per = (trt_workspace_bytes(s->model) + 63) & ~(size_t)63;
  s->ws = calloc(s->threads, sizeof *s->ws);
  s->arena = aligned_alloc(64, per * s->threads);
  if (!s->ws || !s->arena) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a session arena of %zu bytes", per * s->threads);
  for (uint32_t i = 0; i < s->threads; i++) trt_workspace_init(s->model, (char *)s->arena + per * i, &s->ws[i]);
  return TOWERRT_OK;
}

towerrt_status towerrt_session_create(const towerrt_model *m, const towerrt_items *items, const towerrt_options *o,
                                      towerrt_session **out) {
  if (!out) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_session_create: out is NULL");
  *out = NULL;
  if (!m) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_session_create: model is NULL");
  if (o && o->struct_size != sizeof *o)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.struct_size is %u, expected %zu: call towerrt_options_init", o->struct_size, sizeof *o);
  towerrt_options defaults;
  towerrt_options_init(&defaults);
  if (!o) o = &defaults;
  if (o->max_k == 0) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "options.max_k must be at least 1");
  uint32_t mask = o->fe_layer_mask ? o->fe_layer_mask : m->trained_fe_mask;
  trt_node_pool *pool;
  uint32_t node;
  /* two-tower family hook: options only IntTower has (fe_layer_mask) */
  towerrt_status st = m->arch ? trt_arch_check_session(m, o) : TOWERRT_OK;
  if (!st) st = check_mask(m, mask);
  if (!st) st = check_items(m, items, o);
  if (!st) st = choose_node(o, &pool, &node);
  if (st) return st;
  towerrt_session *s = calloc(1, sizeof *s);
  if (!s) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  const trt_placed_towers *placed = node < TRT_MAX_NODES ? m->placed[node] : NULL;
  *s = (towerrt_session){.model = m, .items = items, .max_k = o->max_k, .fe_mask = mask, .output_logits = o->output_logits != 0,
                         .pool = pool, .threads = o->threads, .node = node,
                         .user = placed ? &placed->user : &m->user, .item = placed ? &placed->item : &m->item,
                         .item_heads = items ? trt_items_heads_for_node(items, node) : NULL};
  if ((st = make_arena(s))) {
    towerrt_session_free(s);
    return st;
  }
  if (items && items->dtype == TRT_ITEMS_S8)
    s->u8s8 = (trt_maxsim_u8s8_params){.user = s->ws[0].user_u8, .user_zp = s->ws[0].user_zp, .user_scale = s->ws[0].user_scale,
                                       .n_user = (size_t)__builtin_popcount(mask) * m->heads_user, .items = s->item_heads,
                                       .item_stride = (size_t)items->row_stride, .colsum = items->colsums, .colsum_stride = items->heads,
                                       .item_scale = items->scales, .n_item = m->heads_item, .dim = m->head_dim};
  *out = s;
  return TOWERRT_OK;
}

void towerrt_session_free(towerrt_session *s) {
  if (!s) return;
  trt_mm_free(s->mm);
  free(s->arena);
  free(s->ws);
  free(s);
}

const char *towerrt_session_error(const towerrt_session *s) { return s ? s->error : ""; }

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
    /* A raw score that overflowed is marked NaN; check_scores reports it. */
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

static towerrt_status check_scores(const float *scores, size_t k) {
  for (size_t i = 0; i < k; i++)
    if (!isfinite(scores[i]))
      return trt_fail(TOWERRT_ERR_NONFINITE, "candidate %zu: the score is not finite: the item tower or MaxSim overflowed (weights or "
                      "values too large)", i);
  return TOWERRT_OK;
}

static void note_unknown(towerrt_session *s, size_t c) {
  size_t cur = atomic_load(&s->first_unknown);
  while (c < cur && !atomic_compare_exchange_weak(&s->first_unknown, &cur, c)) {
  }
}

/* One block of TRT_ID_BLOCK candidates by store id. */
static void task_by_id(void *ctx, uint32_t task, uint32_t slot) {
  towerrt_session *s = ctx;
  const towerrt_model *m = s->model;
  trt_workspace *ws = &s->ws[slot];
  size_t c0 = (size_t)task * TRT_ID_BLOCK, b = s->req_k - c0 < TRT_ID_BLOCK ? s->req_k - c0 : TRT_ID_BLOCK;
  for (size_t c = 0; c < b; c++) {
    uint32_t row = trt_items_find(s->items, s->req_ids[c0 + c]);
    if (row == TRT_EMPTY_ROW) {
      note_unknown(s, c0 + c);
      return;
    }
    ws->rows[c] = row;
  }
  float *scores = s->req_scores + c0;
  const trt_workspace *w0 = &s->ws[0];
  size_t stride = (size_t)(s->items->row_stride / s->items->elem_size);
  switch (s->items->dtype) {
    case TRT_ITEMS_S8: m->kernels.maxsim_u8s8(&s->u8s8, ws->rows, b, scores); break;
    case TRT_ITEMS_BF16:
      m->kernels.maxsim_bf16(w0->user_bf16, n_user_heads(s), s->item_heads, stride, ws->rows, b, m->heads_item, m->head_dim, scores);
      break;
    default: m->kernels.maxsim_f32(w0->user_heads, n_user_heads(s), s->item_heads, stride, ws->rows, b, m->heads_item, m->head_dim, scores);
  }
  /* two-tower family hook: the kernel gave <u, i>; cosine / scale per candidate */
  if (m->arch)
    trt_arch_scores(m, w0->user_heads, s->item_heads, s->items->dtype, (size_t)s->items->row_stride, s->items->scales, ws->rows, b, scores);
  finish(s, scores, b);
}

/* The user heads in the precision of the item store, once per request. */
static void convert_user_heads(towerrt_session *s) {
  trt_workspace *w0 = &s->ws[0];
  size_t n = n_user_heads(s), dim = s->model->head_dim;
  if (s->items->dtype == TRT_ITEMS_BF16) trt_f32_to_bf16_array(w0->user_heads, n * dim, w0->user_bf16);
  if (s->items->dtype == TRT_ITEMS_S8) s->model->kernels.quantize_u8(w0->user_heads, n, dim, w0->user_u8, w0->user_zp, w0->user_scale);
}

/* One block of TRT_ITEM_BLOCK candidates by features (item tower online). */
static void task_by_features(void *ctx, uint32_t task, uint32_t slot) {
  towerrt_session *s = ctx;
  const towerrt_model *m = s->model;
  trt_workspace *ws = &s->ws[slot];
  const towerrt_features *it = s->req_items;
  size_t c0 = (size_t)task * TRT_ITEM_BLOCK, b = s->req_k - c0 < TRT_ITEM_BLOCK ? s->req_k - c0 : TRT_ITEM_BLOCK;
  trt_item_forward(m, s->item, ws, it->ids + c0 * m->item.id_slots, it->dense ? it->dense + c0 * m->item.dense_width : NULL, b);
  m->kernels.maxsim_f32(s->ws[0].user_heads, n_user_heads(s), ws->item_heads, (size_t)m->heads_item * m->head_dim, NULL, b,
                        m->heads_item, m->head_dim, s->req_scores + c0);
  if (m->arch) /* two-tower family hook, as in task_by_id */
    trt_arch_scores(m, s->ws[0].user_heads, ws->item_heads, TRT_ITEMS_F32, (size_t)m->head_dim * sizeof(float), NULL, NULL, b,
                    s->req_scores + c0);
  finish(s, s->req_scores + c0, b);
  size_t per = (size_t)m->heads_item * m->head_dim;
  for (size_t c = 0; c < b; c++)
    for (size_t j = 0; j < per; j++)
      if (!isfinite(ws->item_heads[c * per + j])) {
        s->req_scores[c0 + c] = NAN;
        break;
      }
}

static void run(towerrt_session *s, size_t k, size_t block, trt_task_fn fn) {
  uint32_t n_tasks = (uint32_t)((k + block - 1) / block);
  trt_node_pool_run(s->threads > 1 ? s->pool : NULL, &s->job, n_tasks, s->threads, fn, s);
}

/* The k candidates by id, the user heads being in ws[0].user_heads. */
static towerrt_status score_ids(towerrt_session *s, const uint64_t *item_ids, size_t k, float *scores) {
  towerrt_status st;
  if ((st = check_user_heads(s))) return session_fail(s, st, scores, k);
  convert_user_heads(s);
  s->req_ids = item_ids;
  s->req_scores = scores;
  s->req_k = k;
  atomic_store(&s->first_unknown, SIZE_MAX);
  run(s, k, TRT_ID_BLOCK, task_by_id);
  size_t bad = atomic_load(&s->first_unknown);
  if (bad != SIZE_MAX)
    return session_fail(s, trt_fail(TOWERRT_ERR_UNKNOWN_ITEM, "candidate %zu: item id %llu is not in the item store (%llu items)", bad,
                                    (unsigned long long)item_ids[bad], (unsigned long long)s->items->count), scores, k);
  if ((st = check_scores(scores, k))) return session_fail(s, st, scores, k);
  return TOWERRT_OK;
}

towerrt_status towerrt_score(towerrt_session *s, const towerrt_features *user, const uint64_t *item_ids, size_t k, float *scores) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_score: session is NULL");
  towerrt_status st = check_request(s, user, item_ids, k, scores);
  if (!st && !s->items) st = trt_fail(TOWERRT_ERR_NO_ITEMS, "this session has no item store: score by features, or create it with one");
  if (st) return session_fail(s, st, scores, k);
  trt_user_forward(s->model, s->user, &s->ws[0], user->ids, user->dense, s->fe_mask, s->ws[0].user_heads);
  return score_ids(s, item_ids, k, scores);
}

size_t towerrt_session_user_heads_size(const towerrt_session *s) { return s ? n_user_heads(s) * s->model->head_dim : 0; }

towerrt_status towerrt_user_heads(towerrt_session *s, const towerrt_features *users, size_t n_users, float *heads) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_user_heads: session is NULL");
  size_t per = towerrt_session_user_heads_size(s);
  towerrt_status st = !users || !heads ? trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_user_heads: users and heads must not be NULL")
                      : n_users == 0   ? trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "towerrt_user_heads: n_users = 0")
                      : n_users > SIZE_MAX / sizeof(float) / per
                          ? trt_fail(TOWERRT_ERR_LIMIT, "towerrt_user_heads: %zu users x %zu floats overflow", n_users, per)
                          : trt_check_features(s->model, TOWERRT_USER, users, n_users);
  if (!st) st = trt_user_heads_batch(s->model, s->user, &s->ws[0], &s->mm, s->fe_mask, users, n_users, heads);
  for (size_t i = 0; !st && i < n_users * per; i++)
    if (!isfinite(heads[i]))
      st = trt_fail(TOWERRT_ERR_NONFINITE, "user %zu: the user tower overflowed (head value %zu is %s)", i / per, i % per,
                    isnan(heads[i]) ? "NaN" : "Inf");
  return st ? session_fail(s, st, heads, n_users * per) : TOWERRT_OK;
}

towerrt_status towerrt_score_heads(towerrt_session *s, const float *heads, const uint64_t *item_ids, size_t k, float *scores) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_score_heads: session is NULL");
  towerrt_status st = check_candidates(s, heads, "heads", item_ids, k, scores);
  if (!st && !s->items) st = trt_fail(TOWERRT_ERR_NO_ITEMS, "this session has no item store");
  if (st) return session_fail(s, st, scores, k);
  memcpy(s->ws[0].user_heads, heads, towerrt_session_user_heads_size(s) * sizeof(float));
  return score_ids(s, item_ids, k, scores);
}

towerrt_status towerrt_score_features(towerrt_session *s, const towerrt_features *user, const towerrt_features *items, size_t k,
                                      float *scores) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_score_features: session is NULL");
  towerrt_status st = check_request(s, user, items, k, scores);
  if (!st) st = trt_check_features(s->model, TOWERRT_ITEM, items, k);
  if (st) return session_fail(s, st, scores, k);
  trt_user_forward(s->model, s->user, &s->ws[0], user->ids, user->dense, s->fe_mask, s->ws[0].user_heads);
  if ((st = check_user_heads(s))) return session_fail(s, st, scores, k);
  s->req_items = items;
  s->req_scores = scores;
  s->req_k = k;
  run(s, k, TRT_ITEM_BLOCK, task_by_features);
  if ((st = check_scores(scores, k))) return session_fail(s, st, scores, k);
  return TOWERRT_OK;
}
