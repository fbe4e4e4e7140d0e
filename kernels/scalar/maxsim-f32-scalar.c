/* FE-Block MaxSim: sum over user heads of the max over item heads of the
 * dot product (preprocessing/utils.py fe_score), one candidate at a time. */
#include <math.h>

#include "../kernels.h"

static float dot(const float *a, const float *b, size_t n) {
  float s = 0.0f;
  for (size_t i = 0; i < n; i++) s += a[i] * b[i];
  return s;
}

void trt_maxsim_f32_scalar(const float *user, size_t n_user, const float *items,
                           size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                           size_t dim, float *scores) {
  for (size_t c = 0; c < k; c++) {
    const float *item = items + (rows ? (size_t)rows[c] : c) * item_stride;
    float score = 0.0f;
    for (size_t u = 0; u < n_user; u++) {
      float best = -INFINITY;
      for (size_t h = 0; h < n_item; h++) {
        float d = dot(user + u * dim, item + h * dim, dim);
        if (d > best) best = d;
      }
      score += best;
    }
    scores[c] = score;
  }
}
