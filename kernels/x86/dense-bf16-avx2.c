/* Dense layer with bf16 weights and inputs, AVX2 + FMA: 8 values at a time
 * widened to fp32 (a bf16 is the top half of an fp32), products exact, FMA
 * into fp32; four outputs at a time share each input load; the ragged end
 * of `in` in scalar code (no load past a row). */
#include <immintrin.h>

#include "../dense-blocks.h"
#include "../kernels.h"
#include "dense-reduce.h"

#include "../inline.h"
#define OUTS 4

TRT_INLINE __m256 widen(const uint16_t *p) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(const void *)p)), 16));
}

TRT_INLINE void block(const uint16_t *x, size_t in, const uint16_t *w, const float *b, int relu, float *y, size_t o0,
                      const int no) {
  __m256 acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= in; i += 8) {
    __m256 xv = widen(x + i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) acc[o] = _mm256_fmadd_ps(widen(w + (o0 + (size_t)o) * in + i), xv, acc[o]);
  }
  float s[OUTS];
  _mm_storeu_ps(s, trt_hsum4_ps256(acc[0], acc[1], acc[2], acc[3]));
  for (int o = 0; o < no; o++) {
    size_t oo = o0 + (size_t)o;
    y[oo] = trt_dense_bf16_finish(s[o], x, w + oo * in, i, in, b, oo, relu);
  }
}

void trt_dense_bf16_avx2(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b, size_t out, int relu,
                         float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint16_t *xr = x + r * in;
    float *yr = y + r * out;
#define BLOCK(o0, no) block(xr, in, w, b, relu, yr, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(out, BLOCK);
#undef BLOCK
  }
}
