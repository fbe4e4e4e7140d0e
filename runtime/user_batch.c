/* The user tower of many users at once (offline scoring): the same layers
 * as trt_user_forward, run as batched matrix products through oneDNN
 * matmul (docs/design.md: "batched work ... many users at once ... uses oneDNN
 * matmul"), so each weight matrix is read once per batch instead of once
 * per user. Without oneDNN, for a quantized user tower or a two-tower family
 * model, each user goes through trt_user_forward: the same heads as
 * towerrt_score computes. */
#include <stdlib.h>
#include <string.h>

#include "onednn_matmul.h"
#include "status.h"
#include "family.h"
#include "tower_exec.h"

#define USERS_PER_BATCH 64u

/* The load checks that every user layer has the precision META names
 * (model_load.c, check_quantization), so layer 0 speaks for the tower. */
static int batchable(const towerrt_model *m, const trt_tower *t) {
  return trt_mm_available() && m->family->batched_user_tower && !trt_dense_quantized(&t->layers[0]);
}

typedef struct batch_buffers {
  float *x0, *a, *b;
  trt_mm *mm;
} batch_buffers;

/* nb users (rows of x0 filled) through the layers up to the last FE layer
 * in the mask; FE outputs land in their place of each user's heads. */
static towerrt_status run_batch(const trt_tower *t, batch_buffers *bb, uint32_t fe_mask, size_t per_layer, size_t nb,
                                float *heads) {
  size_t per_user = (size_t)__builtin_popcount(fe_mask) * per_layer, slot = 0, ldx = t->input_width;
  uint32_t last = 31u - (uint32_t)__builtin_clz(fe_mask);
  const float *x = bb->x0;
  float *next = bb->a;
  int nonneg = 0;
  for (uint32_t L = 0; L <= last; L++) {
    towerrt_status st;
    if ((fe_mask >> L) & 1u) {
      if ((st = trt_mm_dense(bb->mm, &t->fe[L], nonneg, x, ldx, nb, heads + slot * per_layer, per_user))) return st;
      slot++;
    }
    if (L == last) break;
    if ((st = trt_mm_dense(bb->mm, &t->layers[L], nonneg, x, ldx, nb, next, t->layers[L].out))) return st;
    x = next;
    ldx = t->layers[L].out;
    nonneg = t->layers[L].relu;
    next = next == bb->a ? bb->b : bb->a;
  }
  return TOWERRT_OK;
}

/* Rows per oneDNN call: nb rounded up to a power of two (at most
 * USERS_PER_BATCH), so that a session caches at most 7 shapes per layer
 * however its calls are sized; the padding rows cost at most 2x on the last
 * batch of a call. */
static size_t padded_rows(size_t nb) {
  size_t r = 1;
  while (r < nb) r <<= 1;
  return r;
}

towerrt_status trt_user_heads_batch(const towerrt_model *m, const trt_tower *t, trt_workspace *ws, struct trt_mm **mm,
                                    uint32_t fe_mask, const towerrt_features *users, size_t n, float *heads) {
  size_t per_layer = (size_t)m->heads_user * m->head_dim, per_user = (size_t)__builtin_popcount(fe_mask) * per_layer;
  const float *dense = users->dense;
  if (!batchable(m, t)) {
    for (size_t r = 0; r < n; r++)
      trt_user_forward(m, t, ws, users->ids + r * t->id_slots, dense ? dense + r * t->dense_width : NULL, fe_mask,
                       heads + r * per_user);
    return TOWERRT_OK;
  }
  size_t B = padded_rows(n < USERS_PER_BATCH ? n : USERS_PER_BATCH);
  /* zeroed: padding rows are finite inputs whose outputs are dropped */
  batch_buffers bb = {calloc(B * t->input_width, sizeof(float)), calloc(B * t->max_width, sizeof(float)),
                      calloc(B * t->max_width, sizeof(float)), *mm};
  float *out = calloc(B * per_user, sizeof(float));
  towerrt_status st = bb.x0 && bb.a && bb.b && out ? TOWERRT_OK : trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a batch of %zu users", B);
  /* The oneDNN primitives live with the caller's session: created on its
   * first call (tens of ms), reused by every later one. */
  if (!st && !bb.mm && !(st = trt_mm_create(1, TOWERRT_PRECISION_F32, &bb.mm))) *mm = bb.mm;
  for (size_t r0 = 0; r0 < n && !st; r0 += B) {
    size_t nb = n - r0 < B ? n - r0 : B;
    for (size_t r = 0; r < nb; r++)
      trt_tower_input(m, t, users->ids + (r0 + r) * t->id_slots, dense ? dense + (r0 + r) * t->dense_width : NULL, ws->user_emb,
                      ws->user_scratch, bb.x0 + r * t->input_width);
    st = run_batch(t, &bb, fe_mask, per_layer, padded_rows(nb), out);
    if (!st) memcpy(heads + r0 * per_user, out, nb * per_user * sizeof(float));
  }
  free(bb.x0), free(bb.a), free(bb.b), free(out);
  return st;
}
