/* Dense layer with s8 weights and u8 inputs, AVX-512 VNNI (vpdpbusd): the
 * request path's quantized user tower (one row, in <= a few hundred,
 * out = 300 or 2,048). Four outputs at a time share each 64-byte load of
 * the input; rows are in_pad bytes (a multiple of 64, weights zero past
 * `in`), so there are no tails. The int32 sums are exact (in_pad <= 65536),
 * then one float multiply and the bias, as the scalar oracle. */
#include <immintrin.h>

#include "../dense-blocks.h"
#include "../kernels.h"
#include "dense-reduce.h"

#include "../inline.h"
#define OUTS 4

/* vpdpbusd through inline asm, as in maxsim-u8s8-avx512vnni.c: GCC 12
 * otherwise copies the accumulators around the loop. */
static inline __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
}

TRT_INLINE void block(const trt_dense_u8s8_params *p, const uint8_t *x, int32_t zp, float sx, float *y, size_t o0,
                      const int no) {
  __m512i acc[OUTS];
#pragma GCC unroll 4
  for (int o = 0; o < OUTS; o++) acc[o] = _mm512_setzero_si512();
  for (size_t i = 0; i < p->in_pad; i += 64) {
    __m512i xv = _mm512_loadu_si512(x + i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) acc[o] = dpbusd(acc[o], xv, _mm512_loadu_si512(p->w + (o0 + (size_t)o) * p->in_pad + i));
  }
  __mmask8 om = (__mmask8)((1u << no) - 1u);
  __m128i sum = _mm_maskz_loadu_epi32(om, p->w_sum + o0);
  __m128i d = _mm_sub_epi32(trt_hsum4_epi32_512(acc[0], acc[1], acc[2], acc[3]), _mm_mullo_epi32(_mm_set1_epi32(zp), sum));
  __m128 scale = _mm_mul_ps(_mm_set1_ps(sx), _mm_maskz_loadu_ps(om, p->w_scale + o0));
  __m128 bias = p->b ? _mm_maskz_loadu_ps(om, p->b + o0) : _mm_setzero_ps();
  __m128 v = _mm_add_ps(_mm_mul_ps(_mm_cvtepi32_ps(d), scale), bias);
  if (p->relu) v = _mm_max_ps(_mm_setzero_ps(), v); /* NaN stays, as the oracle's `s < 0 ? 0 : s` */
  _mm_mask_storeu_ps(y + o0, om, v);
}

void trt_dense_u8s8_avx512vnni(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                               const float *x_scale, float *y) {
  for (size_t r = 0; r < n; r++) {
    const uint8_t *xr = x + r * p->in_pad;
    float *yr = y + r * p->out;
#define BLOCK(o0, no) block(p, xr, x_zp[r], x_scale[r], yr, o0, no)
    TRT_DENSE_OUTPUT_BLOCKS(p->out, BLOCK);
#undef BLOCK
  }
}
