/* Scoring of the two-tower family (docs/family.md): the MaxSim kernel with
 * one user head and one item head is the batched dot product over a block
 * of candidates (SIMD in every kernel set); this file finishes each score:
 *
 *   cosine (reference preprocessing/utils.py Cosine_Similarity):
 *     s = clamp(<u, i> / (|u| |i| + 1e-8), -1, 1) * gamma
 *   dot:
 *     s = <u, i> * gamma
 *
 * then session.c applies the prediction layer (sigmoid(s + bias)). The
 * item store holds the raw item vector, so |i| is computed here from the
 * row the kernel just read (d multiply-adds per candidate, in cache).
 * Also the field concatenation that stands in the Light-SE slot of a
 * family model's kernel table. Nothing here allocates. */
#include <math.h>
#include <string.h>

#include "family_twotower.h"
#include "item_store.h"
#include "status.h"

/* The family has no Light-SE: the tower input is the field embeddings as
 * they are (reference combined_dnn_input: concatenate, flatten). Same
 * signature as trt_lightse_f32_fn; w, b and scratch are unused. */
static void fields_concat_f32(const float *e, size_t n_fields, size_t dim, const float *w, const float *b, float *scratch,
                              float *out) {
  (void)w, (void)b, (void)scratch;
  memcpy(out, e, n_fields * dim * sizeof *out);
}

void trt_twotower_bind_kernels(towerrt_model *m) { m->kernels.lightse_f32 = fields_concat_f32; }

towerrt_status trt_twotower_check_session(const towerrt_model *m, const towerrt_options *o) {
  if (o->fe_layer_mask && o->fe_layer_mask != m->trained_fe_mask)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "fe_layer_mask 0x%x: a two-tower family model has no FE layers to choose from "
                    "(leave it 0)", o->fe_layer_mask);
  return TOWERRT_OK;
}

/* Squared norm, 8 independent partial sums (vectorizes without reassociation). */
static float sqnorm_f32(const float *x, size_t n) {
  float acc[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) acc[j] += x[i + j] * x[i + j];
  float s = ((acc[0] + acc[4]) + (acc[1] + acc[5])) + ((acc[2] + acc[6]) + (acc[3] + acc[7]));
  for (; i < n; i++) s += x[i] * x[i];
  return s;
}

static float norm_f32(const float *x, size_t n) {
  float s = sqnorm_f32(x, n);
  if (isfinite(s)) return sqrtf(s);
  double d = 0.0; /* rare: the f32 sum overflowed (or x holds Inf/NaN) */
  for (size_t i = 0; i < n; i++) d += (double)x[i] * (double)x[i];
  return (float)sqrt(d);
}

static float norm_bf16(const uint16_t *x, size_t n) {
  float acc[8] = {0};
  size_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; j++) {
      uint32_t bits = (uint32_t)x[i + j] << 16;
      float v;
      memcpy(&v, &bits, 4);
      acc[j] += v * v;
    }
  double s = 0.0;
  for (int j = 0; j < 8; j++) s += acc[j];
  for (; i < n; i++) {
    uint32_t bits = (uint32_t)x[i] << 16;
    float v;
    memcpy(&v, &bits, 4);
    s += (double)v * v;
  }
  return (float)sqrt(s);
}

static float norm_s8(const int8_t *x, size_t n, float scale) {
  int64_t s = 0;
  for (size_t i = 0; i < n; i++) s += (int32_t)x[i] * x[i];
  return (float)(sqrt((double)s) * (double)scale);
}

void trt_twotower_finish_scores(const towerrt_model *m, const trt_score_block *blk, float *scores) {
  const trt_twotower_model *a = m->family_data;
  const float gamma = a->gamma;
  if (a->similarity == TRT_SIM_DOT) {
    for (size_t c = 0; c < blk->k; c++) scores[c] *= gamma;
    return;
  }
  const size_t d = a->dim;
  const float nu = norm_f32(blk->user, d);
  for (size_t c = 0; c < blk->k; c++) {
    size_t r = blk->rows ? blk->rows[c] : c;
    const unsigned char *row = (const unsigned char *)blk->items + r * blk->row_bytes;
    float ni = blk->dtype == TOWERRT_PRECISION_BF16 ? norm_bf16((const uint16_t *)(const void *)row, d)
               : blk->dtype == TOWERRT_PRECISION_INT8 ? norm_s8((const int8_t *)(const void *)row, d, blk->row_scales[r])
                                       : norm_f32((const float *)(const void *)row, d);
    /* as the reference, in f32: <u,i> / (|u| * |i| + 1e-8), clamped; a NaN stays NaN */
    float cs = scores[c] / (nu * ni + 1e-8f);
    if (cs > 1.0f) cs = 1.0f;
    else if (cs < -1.0f) cs = -1.0f;
    scores[c] = cs * gamma;
  }
}
