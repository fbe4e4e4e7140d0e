/* Dense layer Y = act(X W^T + b), AVX-512F, W in PyTorch's out x in layout.
 * The request path multiplies one user (n = 1) or a small batch of item
 * rows (n <= 32), so the weights are read in their given layout: a block of
 * R rows x O outputs keeps R*O accumulators along `in` (each W vector is
 * loaded once and used by R rows, which is what halves weight traffic for
 * n >= 4), then four accumulators are reduced together with one hadd tree.
 * A ragged `in` ends with a masked load, which never reads past a row. */
#include <immintrin.h>

#include "../dense-blocks.h"
#include "../kernels.h"
#include "dense-reduce.h"

#include "../inline.h"
#define ROWS 4
#define OUTS 4

/* y[r][o0 .. o0+no) for rows r < nr. */
TRT_INLINE void block(const float *x, size_t in, const float *w, const float *b, size_t out,
                      int relu, float *y, size_t o0, const int nr, const int no) {
  __m512 acc[ROWS][OUTS];
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int o = 0; o < OUTS; o++) acc[r][o] = _mm512_setzero_ps();
  for (size_t i = 0; i < in; i += 16) {
    __mmask16 m = in - i >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (in - i)) - 1u);
    __m512 xv[ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) xv[r] = _mm512_maskz_loadu_ps(m, x + (size_t)r * in + i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) {
      __m512 wv = _mm512_maskz_loadu_ps(m, w + (o0 + (size_t)o) * in + i);
#pragma GCC unroll 4
      for (int r = 0; r < nr; r++) acc[r][o] = _mm512_fmadd_ps(wv, xv[r], acc[r][o]);
    }
  }
  __mmask8 om = (__mmask8)((1u << no) - 1u);
  __m128 bias = b ? _mm_maskz_loadu_ps(om, b + o0) : _mm_setzero_ps();
#pragma GCC unroll 4
  for (int r = 0; r < nr; r++) {
    __m128 s = _mm_add_ps(trt_hsum4_ps512(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), bias);
    /* max(0, s) keeps a NaN and a -0 as the scalar `s < 0 ? 0 : s` does. */
    if (relu) s = _mm_max_ps(_mm_setzero_ps(), s);
    _mm_mask_storeu_ps(y + (size_t)r * out + o0, om, s);
  }
}

/* All outputs of nr rows: 4 at a time, then the ragged rest. */
TRT_INLINE void rows(const float *x, size_t in, const float *w, const float *b, size_t out,
                     int relu, float *y, const int nr) {
#define BLOCK(o0, no) block(x, in, w, b, out, relu, y, o0, nr, no)
  TRT_DENSE_OUTPUT_BLOCKS(out, BLOCK);
#undef BLOCK
}

void trt_dense_f32_avx512(const float *x, size_t n, size_t in, const float *w, const float *b,
                          size_t out, int relu, float *y) {
  size_t r = 0;
  for (; r + ROWS <= n; r += ROWS) rows(x + r * in, in, w, b, out, relu, y + r * out, ROWS);
  for (; r < n; r++) rows(x + r * in, in, w, b, out, relu, y + r * out, 1);
}
