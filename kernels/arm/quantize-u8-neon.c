/* Per-head u8 quantization (kernels/scalar/quantize-u8-scalar.c), NEON:
 * 4 values per step, the ragged end of a head by the scalar formula. Same
 * bytes as the oracle for finite inputs (the only ones the runtime passes:
 * NEON's min/max propagate a NaN where the oracle ignores it). */
#include <arm_neon.h>
#include <string.h>

#include "../kernels.h"
#include "../quantize-u8-head.h"

void trt_quantize_u8_neon(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp, float *scale) {
  const float32x4_t zero = vdupq_n_f32(0.0f), top = vdupq_n_f32((float)qmax);
  for (size_t u = 0; u < n_heads; u++) {
    const float *h = x + u * dim;
    uint8_t *qu = q + u * dim;
    float32x4_t lov = zero, hiv = zero;
    size_t d = 0;
    for (; d + 4 <= dim; d += 4) {
      float32x4_t v = vld1q_f32(h + d);
      lov = vminq_f32(v, lov);
      hiv = vmaxq_f32(v, hiv);
    }
    float lo = vminvq_f32(lov), hi = vmaxvq_f32(hiv), z;
    trt_u8_range_tail(h, d, dim, &lo, &hi);
    float s = trt_u8_head_scale(lo, hi, qmax, &z);
    float32x4_t sv = vdupq_n_f32(s), zv = vdupq_n_f32(z);
    for (d = 0; d + 4 <= dim; d += 4) {
      float32x4_t v = vaddq_f32(vrndnq_f32(vdivq_f32(vld1q_f32(h + d), sv)), zv);
      v = vminq_f32(vmaxq_f32(v, zero), top);
      uint16x4_t w = vmovn_u32(vcvtq_u32_f32(v));
      uint32_t four = vget_lane_u32(vreinterpret_u32_u8(vmovn_u16(vcombine_u16(w, w))), 0);
      memcpy(qu + d, &four, 4);
    }
    trt_u8_quantize_tail(h, d, dim, s, z, qmax, qu);
    zp[u] = (int32_t)z;
    scale[u] = s;
  }
}
