/* Dense layer with bf16 weights and inputs, AVX-512F/BW without the BF16
 * extension: 16 values at a time widened to fp32 (a bf16 is the top half of
 * an fp32), products exact, FMA into fp32. Four outputs at a time share
 * each input load; a ragged `in` ends with a masked load. */
#include <immintrin.h>

#include "../dense-blocks.h"
#include "../kernels.h"
#include "dense-reduce.h"

#include "../inline.h"
#define OUTS 4

TRT_INLINE __m512 widen(__mmask16 m, const uint16_t *p) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, p)), 16));
}

TRT_INLINE void block(const uint16_t *x, size_t in, const uint16_t *w, const float *b, int relu, float *y, size_t o0,
                      const int no) {
  __m512 acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = _mm512_setzero_ps();
  for (size_t i = 0; i < in; i += 16) {
    __mmask16 m = in - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (in - i)) - 1u);
    __m512 xv = widen(m, x + i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) acc[o] = _mm512_fmadd_ps(widen(m, w + (o0 + (size_t)o) * in + i), xv, acc[o]);
  }
  __mmask8 om = (__mmask8)((1u << no) - 1u);
  __m128 s = _mm_add_ps(trt_hsum4_ps512(acc[0], acc[1], acc[2], acc[3]), b ? _mm_maskz_loadu_ps(om, b + o0) : _mm_setzero_ps());
  if (relu) s = _mm_max_ps(_mm_setzero_ps(), s);
  _mm_mask_storeu_ps(y + o0, om, s);
}

void trt_dense_bf16_avx512(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b, size_t out, int relu,
                           float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint16_t *xr = x + r * in;
    float *yr = y + r * out;
#define BLOCK(o0, no) block(xr, in, w, b, relu, yr, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(out, BLOCK);
#undef BLOCK
  }
}
