/* Dense layer oracle with bf16 weights and activations: a bf16 x bf16
 * product is exact in fp32 (8 + 8 significant bits), so only the order of
 * the fp32 sums differs between this and the SIMD variants. */
#include <string.h>

#include "../kernels.h"

static float bf16_to_f32(uint16_t v) {
  uint32_t bits = (uint32_t)v << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

void trt_dense_bf16_scalar(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b,
                           size_t out, int relu, float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint16_t *xr = x + r * in;
    float *yr = y + r * out;
    for (size_t o = 0; o < out; o++) {
      const uint16_t *wo = w + o * in;
      float s = 0.0f;
      for (size_t i = 0; i < in; i++) s += bf16_to_f32(wo[i]) * bf16_to_f32(xr[i]);
      s += b ? b[o] : 0.0f;
      yr[o] = (relu && s < 0.0f) ? 0.0f : s;
    }
  }
}
