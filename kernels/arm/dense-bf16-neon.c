/* Dense layer with bf16 weights and inputs, NEON: 4 values at a time
 * widened to fp32 (a bf16 is the top half of an fp32; vshll by 16), exact
 * products, FMA into fp32; four outputs at a time share each input load;
 * the ragged end of `in` in scalar code. */
#include <arm_neon.h>

#include "../dense-blocks.h"
#include "../kernels.h"

#include "../inline.h"
#define OUTS 4

TRT_INLINE float32x4_t widen(const uint16_t *p) { return vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(p), 16)); }

TRT_INLINE void block(const uint16_t *x, size_t in, const uint16_t *w, const float *b, int relu, float *y, size_t o0,
                      const int no) {
  float32x4_t acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = vdupq_n_f32(0.0f);
  size_t i = 0;
  for (; i + 4 <= in; i += 4) {
    float32x4_t xv = widen(x + i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) acc[o] = vfmaq_f32(acc[o], widen(w + (o0 + (size_t)o) * in + i), xv);
  }
  for (int o = 0; o < no; o++) {
    size_t oo = o0 + (size_t)o;
    y[oo] = trt_dense_bf16_finish(vaddvq_f32(acc[o]), x, w + oo * in, i, in, b, oo, relu);
  }
}

void trt_dense_bf16_neon(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b, size_t out, int relu,
                         float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint16_t *xr = x + r * in;
    float *yr = y + r * out;
#define BLOCK(o0, no) block(xr, in, w, b, relu, yr, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(out, BLOCK);
#undef BLOCK
  }
}
