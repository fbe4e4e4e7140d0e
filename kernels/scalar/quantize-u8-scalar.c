/* Per-head asymmetric u8 quantization of the user heads (and of a quantized
 * layer's input): the range [min(0, min x), max(0, max x)] of each head maps
 * to 0..qmax (255, or 127 for the AVX2 int8 kernels), scale s = range / qmax,
 * zero point z = round(-lo / s), q = clamp(round(x / s) + z, 0, qmax), rounding to nearest even.
 * The SIMD variants give the same bytes: min, max, the division and the
 * rounding are exact IEEE operations in any order. */
#include "../kernels.h"
#include "../quantize-u8-head.h"

void trt_quantize_u8_scalar(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp, float *scale) {
  for (size_t u = 0; u < n_heads; u++) {
    const float *h = x + u * dim;
    float lo = 0.0f, hi = 0.0f, z;
    trt_u8_range_tail(h, 0, dim, &lo, &hi);
    float s = trt_u8_head_scale(lo, hi, qmax, &z);
    trt_u8_quantize_tail(h, 0, dim, s, z, qmax, q + u * dim);
    zp[u] = (int32_t)z;
    scale[u] = s;
  }
}
