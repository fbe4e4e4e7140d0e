/* Dense layer with s8 weights and u8 inputs, AVX-VNNI (VEX vpdpbusd,
 * 256-bit): four outputs at a time sharing each 32-byte input load. The
 * four products of a lane are summed without saturation, so the full u8
 * range is exact. Rows are in_pad bytes (a multiple of 64, weights zero
 * past `in`): no tails. Exact int32 sums, then the oracle's float finish. */
#include <immintrin.h>

#include "../dense-blocks.h"
#include "../kernels.h"
#include "dense-reduce.h"

#include "../inline.h"
#define OUTS 4

static inline __attribute__((always_inline)) __m256i dpbusd(__m256i acc, __m256i u, __m256i s) {
  __asm__("%{vex%} vpdpbusd %2, %1, %0" : "+x"(acc) : "x"(u), "x"(s));
  return acc;
}

TRT_INLINE void block(const trt_dense_u8s8_params *p, const uint8_t *x, int32_t zp, float sx, float *y, size_t o0,
                      const int no) {
  __m256i acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = _mm256_setzero_si256();
  for (size_t i = 0; i < p->in_pad; i += 32) {
    __m256i xv = _mm256_loadu_si256((const __m256i *)(const void *)(x + i));
#pragma GCC unroll 4
    for (int o = 0; o < no; o++)
      acc[o] = dpbusd(acc[o], xv, _mm256_loadu_si256((const __m256i *)(const void *)(p->w + (o0 + (size_t)o) * p->in_pad + i)));
  }
  int32_t d[OUTS];
  _mm_storeu_si128((__m128i *)(void *)d, trt_hsum4_epi32_256(acc[0], acc[1], acc[2], acc[3]));
  for (int o = 0; o < no; o++) {
    size_t oo = o0 + (size_t)o;
    int32_t v = (int32_t)((uint32_t)d[o] - (uint32_t)zp * (uint32_t)p->w_sum[oo]); /* exact: |result| < 2^31 */
    y[oo] = trt_dense_u8s8_finish(p, oo, v, sx);
  }
}

void trt_dense_u8s8_avxvnni(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                            const float *x_scale, float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *xr = x + r * p->in_pad;
    float *yr = y + r * p->out;
#define BLOCK(o0, no) block(p, xr, x_zp[r], x_scale[r], yr, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(p->out, BLOCK);
#undef BLOCK
  }
}
