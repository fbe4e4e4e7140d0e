/* The ISA-neutral pieces shared by the dense kernels of every ISA (the
 * scalar oracles included, so that every variant ends the same way). */
#ifndef TOWERRT_DENSE_BLOCKS_H
#define TOWERRT_DENSE_BLOCKS_H

#include <string.h>

#include "kernels.h"

/* A bf16 (the upper 16 bits of an fp32) as fp32: exact. */
static inline float trt_bf16_to_f32(uint16_t v) {
  uint32_t bits = (uint32_t)v << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

/* One bf16 output from a partial sum over [0, i0): the products of
 * [i0, in) one at a time (the ragged end), then the bias and ReLU. */
static inline float trt_dense_bf16_finish(float s, const uint16_t *x, const uint16_t *w_row, size_t i0, size_t in,
                                          const float *b, size_t o, int relu) {
  for (size_t i = i0; i < in; i++) s += trt_bf16_to_f32(w_row[i]) * trt_bf16_to_f32(x[i]);
  s += b ? b[o] : 0.0f;
  return (relu && s < 0.0f) ? 0.0f : s; /* keeps NaN and -0 */
}

/* One u8 x s8 output from its exact integer part d (zero-point term
 * included): one multiply by the two scales, the bias, ReLU. */
static inline float trt_dense_u8s8_finish(const trt_dense_u8s8_params *p, size_t o, int32_t d, float sx) {
  float s = (float)d * (sx * p->w_scale[o]) + (p->b ? p->b[o] : 0.0f);
  return (p->relu && s < 0.0f) ? 0.0f : s;
}

/* The output loop: full blocks of 4 outputs, then one block of the 3, 2 or
 * 1 left. BLOCK(o0, no) must be a macro or always-inline call whose `no` is
 * then a constant, so each block size compiles to its own unrolled code. */
#define TRT_DENSE_OUTPUT_BLOCKS(out, BLOCK)   \
  do {                                        \
    size_t o_ = 0;                            \
    for (; o_ + 4 <= (out); o_ += 4) BLOCK(o_, 4); \
    switch ((out) - o_) {                     \
      case 3: BLOCK(o_, 3); break;            \
      case 2: BLOCK(o_, 2); break;            \
      case 1: BLOCK(o_, 1); break;            \
      default: break;                         \
    }                                         \
  } while (0)

#endif
