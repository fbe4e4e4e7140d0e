/* Dense layer with s8 weights and u8 inputs, NEON with the int8
 * matrix-multiply extension (FEAT_I8MM). Both instructions take u8 x s8,
 * so, unlike the dotprod kernel, the input is used as it is (no q - 128
 * flip and no flip correction): D = sum q w - zx * sum w, exact int32.
 *   - two rows at a time (batched user towers): usmmla on [row r, row r+1]
 *     x [output o, output o+1] blocks of 8 inputs, 32 multiply-adds per
 *     instruction, each lane one whole dot product (no horizontal sum);
 *   - one row (the request path, and an odd last row): usdot, 16 per
 *     instruction, four outputs sharing each input load.
 * Rows are in_pad bytes (a multiple of 64): no tails. */
#include <arm_neon.h>

#include "../dense-blocks.h"
#include "../kernels.h"

#include "../inline.h"
#define OUTS 4

/* One row, outputs o0 .. o0 + no - 1. */
TRT_INLINE void row_block(const trt_dense_u8s8_params *p, const uint8_t *x, int32_t zp, float sx, float *y, size_t o0,
                          const int no) {
  int32x4_t acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = vdupq_n_s32(0);
  for (size_t i = 0; i < p->in_pad; i += 16) {
    uint8x16_t xv = vld1q_u8(x + i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) acc[o] = vusdotq_s32(acc[o], xv, vld1q_s8(p->w + (o0 + (size_t)o) * p->in_pad + i));
  }
  for (int o = 0; o < no; o++) {
    size_t oo = o0 + (size_t)o;
    /* wrapping unsigned arithmetic: exact, |d| < 2^31 */
    uint32_t d = (uint32_t)vaddvq_s32(acc[o]) - (uint32_t)zp * (uint32_t)p->w_sum[oo];
    y[oo] = trt_dense_u8s8_finish(p, oo, (int32_t)d, sx);
  }
}

/* 8 bytes of a and 8 of b, side by side: the [2 x 8] operand of usmmla. */
TRT_INLINE uint8x16_t pair_lo_u8(uint8x16_t a, uint8x16_t b) {
  return vreinterpretq_u8_u64(vzip1q_u64(vreinterpretq_u64_u8(a), vreinterpretq_u64_u8(b)));
}
TRT_INLINE uint8x16_t pair_hi_u8(uint8x16_t a, uint8x16_t b) {
  return vreinterpretq_u8_u64(vzip2q_u64(vreinterpretq_u64_u8(a), vreinterpretq_u64_u8(b)));
}
TRT_INLINE int8x16_t pair_lo_s8(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip1q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}
TRT_INLINE int8x16_t pair_hi_s8(int8x16_t a, int8x16_t b) {
  return vreinterpretq_s8_s64(vzip2q_s64(vreinterpretq_s64_s8(a), vreinterpretq_s64_s8(b)));
}

/* Rows r, r+1 (x0, x1), outputs o0 .. o0 + 2 * np - 1 (np pairs; a pair
 * whose second output is past the end uses the first row twice and drops
 * it). acc[j] lanes: (r, o), (r, o+1), (r+1, o), (r+1, o+1). */
TRT_INLINE void two_row_block(const trt_dense_u8s8_params *p, const uint8_t *x0, const uint8_t *x1, const int32_t *zp,
                              const float *sx, float *y0, float *y1, size_t o0, const int no) {
  const int np = (no + 1) / 2;
  const int8_t *w[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) w[o] = p->w + (o0 + (size_t)(o < no ? o : 0)) * p->in_pad;
  int32x4_t acc[OUTS / 2];
#pragma GCC unroll 2
  for (int j = 0; j < OUTS / 2; j++) acc[j] = vdupq_n_s32(0);
  for (size_t i = 0; i < p->in_pad; i += 16) {
    uint8x16_t a0 = vld1q_u8(x0 + i), a1 = vld1q_u8(x1 + i);
    uint8x16_t lo = pair_lo_u8(a0, a1), hi = pair_hi_u8(a0, a1);
#pragma GCC unroll 2
    for (int j = 0; j < np; j++) {
      int8x16_t b0 = vld1q_s8(w[2 * j] + i), b1 = vld1q_s8(w[2 * j + 1] + i);
      acc[j] = vusmmlaq_s32(acc[j], lo, pair_lo_s8(b0, b1));
      acc[j] = vusmmlaq_s32(acc[j], hi, pair_hi_s8(b0, b1));
    }
  }
  for (int j = 0; j < np; j++) {
    int32_t d[4];
    vst1q_s32(d, acc[j]);
    for (int c = 0; c < 2 && 2 * j + c < no; c++) {
      size_t oo = o0 + (size_t)(2 * j + c);
      uint32_t ws = (uint32_t)p->w_sum[oo];
      y0[oo] = trt_dense_u8s8_finish(p, oo, (int32_t)((uint32_t)d[c] - (uint32_t)zp[0] * ws), sx[0]);
      y1[oo] = trt_dense_u8s8_finish(p, oo, (int32_t)((uint32_t)d[2 + c] - (uint32_t)zp[1] * ws), sx[1]);
    }
  }
}

void trt_dense_u8s8_neoni8mm(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                             const float *x_scale, float *y) {
  size_t r = 0;
  for (; r + 2 <= n; r += 2) {
    const uint8_t *x0 = x + r * p->in_pad, *x1 = x0 + p->in_pad;
    float *y0 = y + r * p->out, *y1 = y0 + p->out;
#define BLOCK(o0, no) two_row_block(p, x0, x1, x_zp + r, x_scale + r, y0, y1, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(p->out, BLOCK);
#undef BLOCK
  }
  if (r < n) {
    const uint8_t *xr = x + r * p->in_pad;
    float *yr = y + r * p->out;
#define BLOCK(o0, no) row_block(p, xr, x_zp[r], x_scale[r], yr, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(p->out, BLOCK);
#undef BLOCK
  }
}
