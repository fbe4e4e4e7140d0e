/* Dense layer with s8 weights and u8 inputs, AVX2, four outputs at a time
 * sharing each input load. Rows are in_pad bytes (a multiple of 64,
 * weights zero past `in`): no tails. Exact int32 sums, then one float
 * multiply and the bias, as the scalar oracle.
 *
 * Fast path, for a row whose bytes are all <= 127 (what the runtime gives
 * this kernel set: u8_max = 127 in its tables): vpmaddubsw + vpmaddwd by
 * ones. A 16-bit pair sum a0*w0 + a1*w1 with 0 <= a <= 127, -128 <= w <= 127
 * lies in [-32512, 32258], inside int16: it never saturates (the proof in
 * maxsim-u8s8-avx2.c). Any other row: both sides widened to 16 bits and
 * multiplied with vpmaddwd (exact for the full u8 range). */
#include <immintrin.h>

#include "../dense-blocks.h"
#include "../kernels.h"
#include "dense-reduce.h"

#include "../inline.h"
#define OUTS 4

TRT_INLINE void block_u7(const trt_dense_u8s8_params *p, const uint8_t *x, int32_t zp, float sx, float *y, size_t o0,
                         const int no) {
  const __m256i ones = _mm256_set1_epi16(1);
  __m256i acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = _mm256_setzero_si256();
  for (size_t i = 0; i < p->in_pad; i += 32) {
    __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) {
      __m256i wv = _mm256_loadu_si256((const __m256i *)(const void *)(p->w + (o0 + (size_t)o) * p->in_pad + i));
      acc[o] = _mm256_add_epi32(acc[o], _mm256_madd_epi16(_mm256_maddubs_epi16(xv, wv), ones));
    }
  }
  int32_t d[OUTS];
  _mm_storeu_si128((__m128i *)(void *)d, trt_hsum4_epi32_256(acc[0], acc[1], acc[2], acc[3]));
  for (int o = 0; o < no; o++) {
    size_t oo = o0 + (size_t)o;
    int32_t v = (int32_t)((uint32_t)d[o] - (uint32_t)zp * (uint32_t)p->w_sum[oo]); /* exact: |result| < 2^31 */
    y[oo] = trt_dense_u8s8_finish(p, oo, v, sx);
  }
}

/* 1 if every byte of the row is <= 127 (in_pad is a multiple of 64). */
static int row_is_u7(const uint8_t *x, size_t in_pad) {
  __m256i any = _mm256_setzero_si256();
  for (size_t i = 0; i < in_pad; i += 32) any = _mm256_or_si256(any, _mm256_loadu_si256((const __m256i *)(const void *)(x + i)));
  return _mm256_movemask_epi8(any) == 0;
}

TRT_INLINE void block(const trt_dense_u8s8_params *p, const uint8_t *x, int32_t zp, float sx, float *y, size_t o0,
                      const int no) {
  __m256i acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = _mm256_setzero_si256();
  for (size_t i = 0; i < p->in_pad; i += 16) {
    __m256i xv = _mm256_cvtepu8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(x + i)));
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) {
      const int8_t *w = p->w + (o0 + (size_t)o) * p->in_pad + i;
      __m256i wv = _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)w));
      acc[o] = _mm256_add_epi32(acc[o], _mm256_madd_epi16(xv, wv));
    }
  }
  int32_t d[OUTS];
  _mm_storeu_si128((__m128i *)(void *)d, trt_hsum4_epi32_256(acc[0], acc[1], acc[2], acc[3]));
  for (int o = 0; o < no; o++) {
    size_t oo = o0 + (size_t)o;
    int32_t v = (int32_t)((uint32_t)d[o] - (uint32_t)zp * (uint32_t)p->w_sum[oo]); /* exact: |result| < 2^31 */
    y[oo] = trt_dense_u8s8_finish(p, oo, v, sx);
  }
}

void trt_dense_u8s8_avx2(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                         const float *x_scale, float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *xr = x + r * p->in_pad;
    float *yr = y + r * p->out;
    if (row_is_u7(xr, p->in_pad)) {
#define BLOCK(o0, no) block_u7(p, xr, x_zp[r], x_scale[r], yr, o0, no)
      TRT_DENSE_OUTPUT_BLOCKS(p->out, BLOCK);
#undef BLOCK
    } else {
#define BLOCK(o0, no) block(p, xr, x_zp[r], x_scale[r], yr, o0, no)
      TRT_DENSE_OUTPUT_BLOCKS(p->out, BLOCK);
#undef BLOCK
    }
  }
}
