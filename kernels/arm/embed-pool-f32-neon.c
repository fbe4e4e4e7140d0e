/* Embedding gather + masked pooling of one field, NEON: 4 dims per step,
 * the ragged end of dim in scalar code. Each lane adds (or maxes) the rows
 * in the order of the scalar oracle: the same bits (finite tables: the
 * loader rejects NaN, and NEON's max differs from `v > acc` only on NaN). */
#include <arm_neon.h>

#include "../kernels.h"

void trt_embed_pool_f32_neon(const float *table, size_t dim, const int64_t *ids, size_t n_ids, int mode, float *out) {
  size_t d = 0;
  for (; d + 4 <= dim; d += 4) {
    float32x4_t acc = vdupq_n_f32(0.0f);
    size_t count = 0;
    for (size_t j = 0; j < n_ids; j++) {
      const float *row = table + (size_t)ids[j] * dim + d;
      if (mode == TRT_POOL_MAX) { /* padding (id 0) reads row 0 shifted down by 1e9, as the reference */
        float32x4_t v = vsubq_f32(vld1q_f32(row), vdupq_n_f32(ids[j] != 0 ? 0.0f : 1e9f));
        acc = j == 0 ? v : vmaxq_f32(v, acc);
      } else if (ids[j] != 0) {
        acc = vaddq_f32(acc, vld1q_f32(row));
        count++;
      }
    }
    if (mode == TRT_POOL_MEAN) acc = vdivq_f32(acc, vdupq_n_f32((float)count + 1e-8f));
    vst1q_f32(out + d, acc);
  }
  for (; d < dim; d++) {
    float acc = 0.0f;
    size_t count = 0;
    for (size_t j = 0; j < n_ids; j++) {
      float v = table[(size_t)ids[j] * dim + d];
      if (mode == TRT_POOL_MAX) {
        v -= ids[j] != 0 ? 0.0f : 1e9f;
        if (j == 0 || v > acc) acc = v;
      } else if (ids[j] != 0) {
        acc += v;
        count++;
      }
    }
    out[d] = mode == TRT_POOL_MEAN ? acc / ((float)count + 1e-8f) : acc;
  }
}
