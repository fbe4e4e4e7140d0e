/* Dense layer oracle with bf16 weights and activations: a bf16 x bf16
 * product is exact in fp32 (8 + 8 significant bits), so only the order of
 * the fp32 sums differs between this and the SIMD variants. */
#include "../dense-blocks.h"

void trt_dense_bf16_scalar(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b,
                           size_t out, int relu, float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint16_t *xr = x + r * in;
    float *yr = y + r * out;
    for (size_t o = 0; o < out; o++) {
      const uint16_t *wo = w + o * in;
      yr[o] = trt_dense_bf16_finish(0.0f, xr, wo, 0, in, b, o, relu);
    }
  }
}
