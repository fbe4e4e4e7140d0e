/* Sessions: one per caller thread, each with its own arena planned at
 * creation; scoring allocates nothing. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "item_store.h"
#include "status.h"
#include "tower_exec.h"

struct towerrt_session {
  const towerrt_model *model;
  const towerrt_items *items;
  uint32_t max_k, fe_mask, output_logits;
  void *arena;
  trt_workspace ws;
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
  if (it->fingerprint != m->item_fingerprint && !(o && o->allow_foreign_items))
    return trt_fail(TOWERRT_ERR_MISMATCH, "item store was built by another model (fingerprint 0x%08x, this model 0x%08x); "
                    "rebuild it or set allow_foreign_items", it->fingerprint, m->item_fingerprint);
  return TOWERRT_OK;
}

static towerrt_status check_mask(const towerrt_model *m, uint32_t mask) {
  if (mask & ~m->user.fe_present)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "fe_layer_mask 0x%x asks for user FE layers the model lacks (present: 0x%x)", mask,
                    m->user.fe_present);
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
  towerrt_status st = check_mask(m, mask);
  if (!st) st = check_items(m, items, o);
  if (st) return st;
  towerrt_session *s = calloc(1, sizeof *s);
  size_t bytes = (trt_workspace_bytes(m) + 63) & ~(size_t)63;
  void *arena = s ? aligned_alloc(64, bytes) : NULL;
  if (!s || !arena) {
    free(s);
    free(arena);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a session arena of %zu bytes", bytes);
  }
  *s = (towerrt_session){.model = m, .items = items, .max_k = o->max_k, .fe_mask = mask, .output_logits = o->output_logits != 0,
                         .arena = arena};
  trt_workspace_init(m, arena, &s->ws);
  *out = s;
  return TOWERRT_OK;
}

void towerrt_session_free(towerrt_session *s) {
  if (!s) return;
  free(s->arena);
  free(s);
}

const char *towerrt_session_error(const towerrt_session *s) { return s ? s->error : ""; }

static towerrt_status check_request(towerrt_session *s, const towerrt_features *user, const void *cands, size_t k, float *scores) {
  if (!user || !cands || !scores) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "user, candidates and scores must not be NULL");
  if (k == 0) return trt_fail(TOWERRT_ERR_EMPTY_REQUEST, "k = 0: no candidates to score");
  if (k > s->max_k) return trt_fail(TOWERRT_ERR_LIMIT, "k = %zu exceeds the session's planned maximum %u (options.max_k)", k, s->max_k);
  return trt_check_features(s->model, TOWERRT_USER, user, 1);
}

/* The prediction layer, as the reference: sigmoid(score + bias). */
static void finish(const towerrt_session *s, float *scores, size_t k) {
  float bias = s->model->out_bias;
  int sigmoid = s->model->output_sigmoid && !s->output_logits;
  for (size_t i = 0; i < k; i++) {
    float z = scores[i] + bias;
    scores[i] = sigmoid ? 1.0f / (1.0f + expf(-z)) : z;
  }
}

static size_t n_user_heads(const towerrt_session *s) {
  return (size_t)__builtin_popcount(s->fe_mask) * s->model->heads_user;
}

towerrt_status towerrt_score(towerrt_session *s, const towerrt_features *user, const uint64_t *item_ids, size_t k, float *scores) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_score: session is NULL");
  towerrt_status st = check_request(s, user, item_ids, k, scores);
  if (!st && !s->items) st = trt_fail(TOWERRT_ERR_NO_ITEMS, "this session has no item store: score by features, or create it with one");
  if (st) return session_fail(s, st, scores, k);
  const towerrt_model *m = s->model;
  const towerrt_items *it = s->items;
  trt_user_forward(m, &s->ws, user->ids, user->dense, s->fe_mask, s->ws.user_heads);
  size_t stride = (size_t)(it->row_stride / sizeof(float));
  for (size_t c0 = 0; c0 < k; c0 += TRT_ID_BLOCK) {
    size_t b = k - c0 < TRT_ID_BLOCK ? k - c0 : TRT_ID_BLOCK;
    for (size_t c = 0; c < b; c++) {
      uint32_t row = trt_items_find(it, item_ids[c0 + c]);
      if (row == TRT_EMPTY_ROW)
        return session_fail(s, trt_fail(TOWERRT_ERR_UNKNOWN_ITEM, "candidate %zu: item id %llu is not in the item store (%llu items)",
                                        c0 + c, (unsigned long long)item_ids[c0 + c], (unsigned long long)it->count), scores, k);
      s->ws.rows[c] = row;
    }
    m->kernels.maxsim_f32(s->ws.user_heads, n_user_heads(s), it->heads_data, stride, s->ws.rows, b, m->heads_item, m->head_dim,
                          scores + c0);
  }
  finish(s, scores, k);
  return TOWERRT_OK;
}

towerrt_status towerrt_score_features(towerrt_session *s, const towerrt_features *user, const towerrt_features *items, size_t k,
                                      float *scores) {
  if (!s) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "towerrt_score_features: session is NULL");
  towerrt_status st = check_request(s, user, items, k, scores);
  if (!st) st = trt_check_features(s->model, TOWERRT_ITEM, items, k);
  if (st) return session_fail(s, st, scores, k);
  const towerrt_model *m = s->model;
  trt_user_forward(m, &s->ws, user->ids, user->dense, s->fe_mask, s->ws.user_heads);
  size_t per_row = (size_t)m->heads_item * m->head_dim;
  for (size_t c0 = 0; c0 < k; c0 += TRT_ITEM_BLOCK) {
    size_t b = k - c0 < TRT_ITEM_BLOCK ? k - c0 : TRT_ITEM_BLOCK;
    trt_item_forward(m, &s->ws, items->ids + c0 * m->item.id_slots, items->dense ? items->dense + c0 * m->item.dense_width : NULL, b);
    m->kernels.maxsim_f32(s->ws.user_heads, n_user_heads(s), s->ws.item_heads, per_row, NULL, b, m->heads_item, m->head_dim,
                          scores + c0);
  }
  finish(s, scores, k);
  return TOWERRT_OK;
}
