#include "quantize_heads.h"

#include "kernels/kernels.h"
#include "kernels/quantize-u8-head.h"

#include <math.h>
#include <string.h>

uint16_t trt_f32_to_bf16(float x) {
  uint32_t u;
  memcpy(&u, &x, 4);
  u += 0x7FFFu + ((u >> 16) & 1u);
  return (uint16_t)(u >> 16);
}

void trt_f32_to_bf16_array(const float *x, size_t n, uint16_t *out) {
  for (size_t i = 0; i < n; i++) out[i] = trt_f32_to_bf16(x[i]);
}

/* The oracle kernel (kernels/scalar/quantize-u8-scalar.c); sessions call
 * the selected kernel table's variant, which writes the same bytes. */
void trt_quantize_user_u8(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp, float *scale) {
  trt_quantize_u8_scalar(x, n_heads, dim, qmax, q, zp, scale);
}

void trt_quantize_u8_static(const float *x, size_t n, float scale, int32_t zp, int qmax, uint8_t *q) {
  float inv = 1.0f / scale, z = (float)zp, top = (float)qmax;
  for (size_t i = 0; i < n; i++) {
    float v = x[i] * inv;
    v = v > -512.0f ? v : -512.0f; /* far outside the calibrated range (or NaN) */
    v = v < 512.0f ? v : 512.0f;
    v = trt_round_even(v) + z;
    v = v > 0.0f ? v : 0.0f;
    q[i] = (uint8_t)(int32_t)(v < top ? v : top);
  }
}

float trt_quantize_item_s8(const float *x, size_t heads, size_t dim, int8_t *q, int32_t *colsum) {
  float amax = 0.0f;
  for (size_t i = 0; i < heads * dim; i++) amax = fmaxf(amax, fabsf(x[i]));
  float scale = amax / 127.0f;
  for (size_t h = 0; h < heads; h++) {
    int32_t sum = 0;
    for (size_t d = 0; d < dim; d++) {
      long v = scale > 0.0f ? lrintf(x[h * dim + d] / scale) : 0;
      v = v > 127 ? 127 : v < -127 ? -127 : v;
      q[h * dim + d] = (int8_t)v;
      sum += (int32_t)v;
    }
    colsum[h] = sum;
  }
  return scale;
}
