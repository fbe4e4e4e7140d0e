/* Dense layer with s8 weights and u8 inputs, NEON with dotprod. sdot takes
 * s8 x s8, so the input is shifted into s8 on the fly (q ^ 0x80 = q - 128)
 * and the shift is added back once per output: sum q w = sum (q-128) w
 * + 128 * sum w, the row sum being in the params already. Four outputs at a
 * time; rows are in_pad bytes (a multiple of 64): no tails. Exact int32. */
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
  const uint8x16_t flip = vdupq_n_u8(0x80);
  for (size_t i = 0; i < p->in_pad; i += 16) {
    int8x16_t xv = vreinterpretq_s8_u8(veorq_u8(vld1q_u8(x + i), flip));
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) acc[o] = vdotq_s32(acc[o], xv, vld1q_s8(p->w + (o0 + (size_t)o) * p->in_pad + i));
  }
  for (int o = 0; o < no; o++) {
    size_t oo = o0 + (size_t)o;
    /* (q - 128) . w + (128 - zp) * sum w, in wrapping unsigned arithmetic: exact, |d| < 2^31 */
    uint32_t d = (uint32_t)vaddvq_s32(acc[o]) + (uint32_t)(128 - zp) * (uint32_t)p->w_sum[oo];
    y[oo] = trt_dense_u8s8_finish(p, oo, (int32_t)d, sx);
  }
}

void trt_dense_u8s8_neondotprod(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                                const float *x_scale, float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *xr = x + r * p->in_pad;
    float *yr = y + r * p->out;
#define BLOCK(o0, no) block(p, xr, x_zp[r], x_scale[r], yr, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(p->out, BLOCK);
#undef BLOCK
  }
}
