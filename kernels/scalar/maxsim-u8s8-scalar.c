/* int8 MaxSim oracle (kernels.h, trt_maxsim_u8s8_params): exact integer
 * dot products with the zero-point correction, the max over item heads on
 * int32, then one fp32 multiply per user head and an fp32 sum over user
 * heads in head order. The SIMD variants must reproduce the int32 maxima
 * bit for bit; only the order of the final fp32 sum may differ. */
#include <math.h>

#include "../kernels.h"

/* int64 so that no intermediate can overflow (signed overflow is undefined
 * in C); the result fits int32 under the documented limits. */
static int32_t corrected_dot(const uint8_t *u, const int8_t *it, size_t dim, int32_t zp,
                             int32_t colsum) {
  int64_t s = 0;
  for (size_t d = 0; d < dim; d++) s += (int64_t)u[d] * it[d];
  return (int32_t)(s - (int64_t)zp * colsum);
}

static float score_row(const trt_maxsim_u8s8_params *p, size_t row) {
  const int8_t *item = p->items + row * p->item_stride;
  const int32_t *colsum = p->colsum + row * p->colsum_stride;
  float score = 0.0f;
  for (size_t u = 0; u < p->n_user; u++) {
    if (p->n_item == 0) return -INFINITY;
    int32_t best = INT32_MIN;
    for (size_t h = 0; h < p->n_item; h++) {
      int32_t d = corrected_dot(p->user + u * p->dim, item + h * p->dim, p->dim, p->user_zp[u], colsum[h]);
      if (d > best) best = d;
    }
    score += (float)best * (p->user_scale[u] * p->item_scale[row]);
  }
  return score;
}

void trt_maxsim_u8s8_scalar(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k,
                            float *scores) {
  for (size_t c = 0; c < k; c++) scores[c] = score_row(p, rows ? (size_t)rows[c] : c);
}
