/* Dense layer oracle with s8 weights (per-output-channel scales) and u8
 * activations (per-row zero point and scale). The integer part is exact
 * (int64 here; int32 in the SIMD variants, where it cannot overflow for
 * in_pad <= 65536), so SIMD variants differ from this only in the last
 * float rounding. */
#include "../dense-blocks.h"

void trt_dense_u8s8_scalar(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n,
                           const int32_t *x_zp, const float *x_scale, float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *xr = x + r * p->in_pad;
    float *yr = y + r * p->out;
    for (size_t o = 0; o < p->out; o++) {
      const int8_t *wo = p->w + o * p->in_pad;
      int64_t d = 0;
      for (size_t i = 0; i < p->in_pad; i++) d += (int64_t)xr[i] * wo[i];
      d -= (int64_t)x_zp[r] * p->w_sum[o];
      yr[o] = trt_dense_u8s8_finish(p, o, (int32_t)d, x_scale[r]);
    }
  }
}
