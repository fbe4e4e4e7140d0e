/* bf16 MaxSim oracle: bf16 -> fp32 is exact (append 16 zero bits), a
 * bf16 x bf16 product is exact in fp32 (8 + 8 significant bits), and the
 * sums run in fp32 in dot-product order, like trt_maxsim_f32_scalar. */
#include <math.h>
#include <string.h>

#include "../kernels.h"

static float bf16_to_f32(uint16_t v) {
  uint32_t bits = (uint32_t)v << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static float dot_bf16(const uint16_t *a, const uint16_t *b, size_t n) {
  float s = 0.0f;
  for (size_t i = 0; i < n; i++) s += bf16_to_f32(a[i]) * bf16_to_f32(b[i]);
  return s;
}

void trt_maxsim_bf16_scalar(const uint16_t *user, size_t n_user, const uint16_t *items,
                            size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                            size_t dim, float *scores) {
  for (size_t c = 0; c < k; c++) {
    const uint16_t *item = items + (rows ? (size_t)rows[c] : c) * item_stride;
    float score = 0.0f;
    for (size_t u = 0; u < n_user; u++) {
      float best = -INFINITY;
      for (size_t h = 0; h < n_item; h++) {
        float d = dot_bf16(user + u * dim, item + h * dim, dim);
        if (d > best) best = d;
      }
      score += best;
    }
    scores[c] = score;
  }
}
