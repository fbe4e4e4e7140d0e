/* Light-SE field attention, NEON: the per-field mean and the final
 * `e + e * a` over 4 dims per step (the ragged end in scalar code); the
 * small F x F attention is the shared scalar code
 * (kernels/lightse-attention.h). The mean's sum is reassociated: within
 * rounding of the oracle. */
#include <arm_neon.h>

#include "../kernels.h"
#include "../lightse-attention.h"

void trt_lightse_f32_neon(const float *e, size_t n_fields, size_t dim, const float *w, const float *b, float *scratch,
                          float *out) {
  float *z = scratch, *a = scratch + n_fields;
  for (size_t f = 0; f < n_fields; f++) {
    const float *ef = e + f * dim;
    float32x4_t s = vdupq_n_f32(0.0f);
    size_t d = 0;
    for (; d + 4 <= dim; d += 4) s = vaddq_f32(s, vld1q_f32(ef + d));
    float t = vaddvq_f32(s);
    for (; d < dim; d++) t += ef[d];
    z[f] = t / (float)dim;
  }
  trt_lightse_attention(z, n_fields, w, b, a);
  for (size_t f = 0; f < n_fields; f++) {
    const float *ef = e + f * dim;
    float *of = out + f * dim;
    float32x4_t att = vdupq_n_f32(a[f]);
    size_t d = 0;
    for (; d + 4 <= dim; d += 4) {
      float32x4_t v = vld1q_f32(ef + d);
      vst1q_f32(of + d, vaddq_f32(v, vmulq_f32(v, att)));
    }
    for (; d < dim; d++) of[d] = ef[d] + ef[d] * a[f];
  }
}
