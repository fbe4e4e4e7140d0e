/* The ISA-neutral parts of per-head u8 quantization (kernels.h,
 * trt_quantize_u8_fn), shared by the oracle and every SIMD variant so that
 * all of them write the same bytes: the rounding, the scale and zero point
 * of a head from its range, and the scalar tail of a head. */
#ifndef TOWERRT_QUANTIZE_U8_HEAD_H
#define TOWERRT_QUANTIZE_U8_HEAD_H

#include <stddef.h>
#include <stdint.h>

/* Round to nearest, ties to even, for |v| < 2^22: adding 1.5 * 2^23 leaves
 * no fraction bits, so the FPU rounds (in its default mode) as rint would.
 * (lrintf is a library call per value, and does not vectorise.) */
static inline float trt_round_even(float v) {
  const float magic = 12582912.0f;
  return (v + magic) - magic;
}

/* The head's scale from its range [lo <= 0, hi >= 0] mapped to 0..qmax
 * (255, or 127: kernels.h, trt_quantize_u8_fn), and its zero point. */
static inline float trt_u8_head_scale(float lo, float hi, int qmax, float *zp) {
  const float top = (float)qmax;
  float s = (hi - lo) / top;
  if (!(s > 0.0f)) s = 1.0f; /* an all-zero head: any scale, q = zp = 0 */
  float z = trt_round_even(-lo / s);
  z = z > 0.0f ? z : 0.0f;
  *zp = z < top ? z : top;
  return s;
}

/* q[d] for d in [d0, dim), one value at a time. */
static inline void trt_u8_quantize_tail(const float *h, size_t d0, size_t dim, float s, float z, int qmax, uint8_t *q) {
  const float top = (float)qmax;
  for (size_t d = d0; d < dim; d++) {
    float v = trt_round_even(h[d] / s) + z;
    v = v > 0.0f ? v : 0.0f; /* so that a NaN becomes 0, never an out-of-range conversion */
    q[d] = (uint8_t)(int32_t)(v < top ? v : top);
  }
}

/* lo, hi over h[d0, dim), starting from the given values. */
static inline void trt_u8_range_tail(const float *h, size_t d0, size_t dim, float *lo, float *hi) {
  for (size_t d = d0; d < dim; d++) {
    *lo = h[d] < *lo ? h[d] : *lo;
    *hi = h[d] > *hi ? h[d] : *hi;
  }
}

#endif
