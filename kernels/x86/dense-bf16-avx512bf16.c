/* Dense layer with bf16 weights and inputs, AVX-512 BF16 (vdpbf16ps: each
 * fp32 lane accumulates the products of one pair of bf16 values). Four
 * outputs at a time share each 32-value load of the input; a ragged `in`
 * ends with a 16-bit-granular masked load, which never reads past a row
 * and zeroes the missing half of the last pair. */
#include <immintrin.h>

#include "../dense-blocks.h"
#include "../kernels.h"
#include "dense-reduce.h"

#include "../inline.h"
#define OUTS 4

/* vdpbf16ps through inline asm, as in maxsim-bf16-avx512bf16.c. */
static inline __m512 dpbf16(__m512 acc, __m512i a, __m512i b) {
  __asm__("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(a), "v"(b));
  return acc;
}

TRT_INLINE void block(const uint16_t *x, size_t in, const uint16_t *w, const float *b, int relu, float *y, size_t o0,
                      const int no) {
  __m512 acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = _mm512_setzero_ps();
  for (size_t i = 0; i < in; i += 32) {
    __mmask32 m = in - i >= 32 ? (__mmask32)0xFFFFFFFFu : (__mmask32)((1u << (in - i)) - 1u);
    __m512i xv = _mm512_maskz_loadu_epi16(m, x + i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) acc[o] = dpbf16(acc[o], xv, _mm512_maskz_loadu_epi16(m, w + (o0 + (size_t)o) * in + i));
  }
  __mmask8 om = (__mmask8)((1u << no) - 1u);
  __m128 s = _mm_add_ps(trt_hsum4_ps512(acc[0], acc[1], acc[2], acc[3]), b ? _mm_maskz_loadu_ps(om, b + o0) : _mm_setzero_ps());
  if (relu) s = _mm_max_ps(_mm_setzero_ps(), s);
  _mm_mask_storeu_ps(y + o0, om, s);
}

void trt_dense_bf16_avx512bf16(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b, size_t out,
                               int relu, float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint16_t *xr = x + r * in;
    float *yr = y + r * out;
#define BLOCK(o0, no) block(xr, in, w, b, relu, yr, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(out, BLOCK);
#undef BLOCK
  }
}
