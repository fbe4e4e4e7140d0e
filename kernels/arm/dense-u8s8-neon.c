/* Dense layer with s8 weights and u8 inputs, NEON without dotprod: both
 * widened to 16 bits (a u8 fits an s16), multiplied and accumulated into
 * int32 with vmlal; four outputs at a time share each input load. Rows are
 * in_pad bytes (a multiple of 64, weights zero past `in`): no tails. Exact
 * int32 sums, then one float multiply and the bias, as the scalar oracle. */
#include <arm_neon.h>

#include "../dense-blocks.h"
#include "../kernels.h"

#include "../inline.h"
#define OUTS 4

TRT_INLINE void block(const trt_dense_u8s8_params *p, const uint8_t *x, int32_t zp, float sx, float *y, size_t o0,
                      const int no) {
  int32x4_t acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = vdupq_n_s32(0);
  for (size_t i = 0; i < p->in_pad; i += 8) {
    int16x8_t xv = vreinterpretq_s16_u16(vmovl_u8(vld1_u8(x + i)));
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) {
      int16x8_t wv = vmovl_s8(vld1_s8(p->w + (o0 + (size_t)o) * p->in_pad + i));
      acc[o] = vmlal_s16(acc[o], vget_low_s16(xv), vget_low_s16(wv));
      acc[o] = vmlal_high_s16(acc[o], xv, wv);
    }
  }
  for (int o = 0; o < no; o++) {
    size_t oo = o0 + (size_t)o;
    int32_t d = (int32_t)((uint32_t)vaddvq_s32(acc[o]) - (uint32_t)zp * (uint32_t)p->w_sum[oo]); /* exact: |d| < 2^31 */
    y[oo] = trt_dense_u8s8_finish(p, oo, d, sx);
  }
}

void trt_dense_u8s8_neon(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                         const float *x_scale, float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *xr = x + r * p->in_pad;
    float *yr = y + r * p->out;
#define BLOCK(o0, no) block(p, xr, x_zp[r], x_scale[r], yr, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(p->out, BLOCK);
#undef BLOCK
  }
}
