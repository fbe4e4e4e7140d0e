/* Per-head asymmetric u8 quantization of the user heads (and of a quantized
 * layer's input): the range [min(0, min x), max(0, max x)] of each head maps
 * to 0..255, scale s = range / 255, zero point z = round(-lo / s),
 * q = clamp(round(x / s) + z, 0, 255), rounding to nearest even.
 * The SIMD variants give the same bytes: min, max, the division and the
 * rounding are exact IEEE operations in any order. */
#include "../kernels.h"

/* Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves
 * no fraction bits, so the FPU rounds (in its default mode) as rint would. */
static inline float round_even(float v) {
  const float magic = 12582912.0f;
  return (v + magic) - magic;
}

void trt_quantize_u8_scalar(const float *x, size_t n_heads, size_t dim, uint8_t *q, int32_t *zp, float *scale) {
  for (size_t u = 0; u < n_heads; u++) {
    const float *h = x + u * dim;
    float lo = 0.0f, hi = 0.0f;
    for (size_t d = 0; d < dim; d++) {
      lo = h[d] < lo ? h[d] : lo;
      hi = h[d] > hi ? h[d] : hi;
    }
    float s = (hi - lo) / 255.0f;
    if (!(s > 0.0f)) s = 1.0f; /* an all-zero head: any scale, q = zp = 0 */
    float z = round_even(-lo / s); /* 0..255: lo <= 0 <= hi */
    z = z > 0.0f ? z : 0.0f;
    z = z < 255.0f ? z : 255.0f;
    uint8_t *qu = q + u * dim;
    for (size_t d = 0; d < dim; d++) {
      float v = round_even(h[d] / s) + z;
      v = v > 0.0f ? v : 0.0f; /* so that a NaN becomes 0, never an out-of-range conversion */
      qu[d] = (uint8_t)(int32_t)(v < 255.0f ? v : 255.0f);
    }
    zp[u] = (int32_t)z;
    scale[u] = s;
  }
}
