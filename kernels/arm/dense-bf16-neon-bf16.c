/* Dense layer with bf16 weights and inputs, NEON with the BF16 extension
 * (FEAT_BF16: bfdot, vbfdotq_f32): each fp32 lane adds the products of 2
 * adjacent bf16 pairs, 8 multiply-adds per instruction on the bf16 values
 * as loaded (the NEON kernel widens every value to fp32 and does 4 per
 * fmla). Four outputs at a time share each input load; the ragged end of
 * `in` (not a multiple of 8) in scalar code. The architecture rounds the
 * sums to odd (FEAT_BF16 without EBF16): within the tests' bound of the
 * reassociated sum (docs/kernels.md). */
#include <arm_neon.h>

#include "../dense-blocks.h"
#include "../kernels.h"

#include "../inline.h"
#define OUTS 4

TRT_INLINE bfloat16x8_t load_bf16(const uint16_t *p) { return vreinterpretq_bf16_u16(vld1q_u16(p)); }

TRT_INLINE void block(const uint16_t *x, size_t in, const uint16_t *w, const float *b, int relu, float *y, size_t o0,
                      const int no) {
  float32x4_t acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = vdupq_n_f32(0.0f);
  size_t i = 0;
  for (; i + 8 <= in; i += 8) {
    bfloat16x8_t xv = load_bf16(x + i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) acc[o] = vbfdotq_f32(acc[o], xv, load_bf16(w + (o0 + (size_t)o) * in + i));
  }
  for (int o = 0; o < no; o++) {
    size_t oo = o0 + (size_t)o;
    y[oo] = trt_dense_bf16_finish(vaddvq_f32(acc[o]), x, w + oo * in, i, in, b, oo, relu);
  }
}

void trt_dense_bf16_neonbf16(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b, size_t out,
                             int relu, float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint16_t *xr = x + r * in;
    float *yr = y + r * out;
#define BLOCK(o0, no) block(xr, in, w, b, relu, yr, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(out, BLOCK);
#undef BLOCK
  }
}
