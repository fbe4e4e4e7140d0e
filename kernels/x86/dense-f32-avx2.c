/* Dense layer Y = act(X W^T + b), AVX2 + FMA, W in PyTorch's out x in
 * layout; the AVX2 twin of dense-f32-avx512.c. With 16 ymm registers a
 * block is 4 rows x 2 outputs (8 accumulators + 4 x + 1 w) when n >= 4,
 * so each W vector feeds 4 rows, else 1 row x 4 outputs. A ragged `in`
 * ends with vmaskmovps, which does not touch masked-out memory. */
#include <immintrin.h>

#include "../dense-blocks.h"
#include "../kernels.h"
#include "dense-reduce.h"

#include "../inline.h"
#define ROWS 4
#define OUTS 4

/* Lanes j < n all ones: the mask for the first n of 8 floats. */
TRT_INLINE __m256i first_lanes(size_t n) {
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

TRT_INLINE void block(const float *x, size_t in, const float *w, const float *b, size_t out,
                      int relu, float *y, size_t o0, const int nr, const int no) {
  __m256 acc[ROWS][OUTS];
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int o = 0; o < OUTS; o++) acc[r][o] = _mm256_setzero_ps();
  size_t i = 0;
  for (; i + 8 <= in; i += 8) {
    __m256 xv[ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) xv[r] = _mm256_loadu_ps(x + (size_t)r * in + i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) {
      __m256 wv = _mm256_loadu_ps(w + (o0 + (size_t)o) * in + i);
#pragma GCC unroll 4
      for (int r = 0; r < nr; r++) acc[r][o] = _mm256_fmadd_ps(wv, xv[r], acc[r][o]);
    }
  }
  if (i < in) {
    __m256i m = first_lanes(in - i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) {
      __m256 wv = _mm256_maskload_ps(w + (o0 + (size_t)o) * in + i, m);
#pragma GCC unroll 4
      for (int r = 0; r < nr; r++)
        acc[r][o] = _mm256_fmadd_ps(wv, _mm256_maskload_ps(x + (size_t)r * in + i, m), acc[r][o]);
    }
  }
  float bias[OUTS] = {0};
  for (int o = 0; o < no && b; o++) bias[o] = b[o0 + (size_t)o];
#pragma GCC unroll 4
  for (int r = 0; r < nr; r++) {
    __m128 s = _mm_add_ps(trt_hsum4_ps256(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), _mm_loadu_ps(bias));
    /* max(0, s) keeps a NaN and a -0 as the scalar `s < 0 ? 0 : s` does. */
    if (relu) s = _mm_max_ps(_mm_setzero_ps(), s);
    float v[4];
    _mm_storeu_ps(v, s);
    for (int o = 0; o < no; o++) y[(size_t)r * out + o0 + (size_t)o] = v[o];
  }
}

/* Up to 4 outputs of nr rows; with 4 rows as blocks of 2 outputs (16 ymm
 * registers hold 4 x 2 accumulators with their operands, not 4 x 4). */
TRT_INLINE void outputs(const float *x, size_t in, const float *w, const float *b, size_t out,
                        int relu, float *y, size_t o0, const int nr, const int no) {
  if (nr < ROWS || no == 1) {
    block(x, in, w, b, out, relu, y, o0, nr, no);
    return;
  }
  block(x, in, w, b, out, relu, y, o0, nr, 2);
  if (no > 2) block(x, in, w, b, out, relu, y, o0 + 2, nr, no - 2);
}

/* All outputs of nr rows: 4 at a time, then the ragged rest. */
TRT_INLINE void rows(const float *x, size_t in, const float *w, const float *b, size_t out,
                     int relu, float *y, const int nr) {
#define BLOCK(o0, no) outputs(x, in, w, b, out, relu, y, o0, nr, no)
  TRT_DENSE_OUTPUT_BLOCKS(out, BLOCK);
#undef BLOCK
}

void trt_dense_f32_avx2(const float *x, size_t n, size_t in, const float *w, const float *b,
                        size_t out, int relu, float *y) {
  size_t r = 0;
  for (; r + ROWS <= n; r += ROWS) rows(x + r * in, in, w, b, out, relu, y + r * out, ROWS);
  for (; r < n; r++) rows(x + r * in, in, w, b, out, relu, y + r * out, 1);
}
