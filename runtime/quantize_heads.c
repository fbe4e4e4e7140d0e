#include "quantize_heads.h"

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

void trt_quantize_user_u8(const float *x, size_t n_heads, size_t dim, uint8_t *q, int32_t *zp, float *scale) {
  for (size_t u = 0; u < n_heads; u++) {
    const float *h = x + u * dim;
    float lo = 0.0f, hi = 0.0f;
    for (size_t d = 0; d < dim; d++) {
      lo = fminf(lo, h[d]);
      hi = fmaxf(hi, h[d]);
    }
    float s = (hi - lo) / 255.0f;
    if (!(s > 0.0f)) s = 1.0f; /* an all-zero head: any scale, q = zp = 0 */
    long z = lrintf(-lo / s);
    z = z < 0 ? 0 : z > 255 ? 255 : z;
    for (size_t d = 0; d < dim; d++) {
      long v = lrintf(h[d] / s) + z;
      q[u * dim + d] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
    }
    zp[u] = (int32_t)z;
    scale[u] = s;
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
