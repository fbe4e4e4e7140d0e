/* Embedding gather + masked pooling of one field, as the reference's
 * SequencePoolingLayer(support_masking=True) computes it. */
#include "../kernels.h"

static void pool_max(const float *table, size_t dim, const int64_t *ids, size_t n_ids, float *out) {
  /* Reference: hist = e - (1 - mask) * 1e9, then the max over slots; padding
   * slots still read row 0, shifted down by 1e9. */
  for (size_t j = 0; j < n_ids; j++) {
    const float *row = table + (size_t)ids[j] * dim;
    float shift = ids[j] != 0 ? 0.0f : 1e9f;
    for (size_t d = 0; d < dim; d++) {
      float v = row[d] - shift;
      if (j == 0 || v > out[d]) out[d] = v;
    }
  }
}

void trt_embed_pool_f32_scalar(const float *table, size_t dim, const int64_t *ids, size_t n_ids,
                               int mode, float *out) {
  if (mode == TRT_POOL_MAX) {
    pool_max(table, dim, ids, n_ids, out);
    return;
  }
  for (size_t d = 0; d < dim; d++) out[d] = 0.0f;
  size_t count = 0;
  for (size_t j = 0; j < n_ids; j++) {
    if (ids[j] == 0) continue;
    const float *row = table + (size_t)ids[j] * dim;
    for (size_t d = 0; d < dim; d++) out[d] += row[d];
    count++;
  }
  if (mode == TRT_POOL_MEAN) {
    float denom = (float)count + 1e-8f;
    for (size_t d = 0; d < dim; d++) out[d] /= denom;
  }
}
