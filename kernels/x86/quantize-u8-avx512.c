/* Per-head u8 quantization (kernels/scalar/quantize-u8-scalar.c), AVX-512F/BW:
 * 16 values per step, a ragged dim with masks. Same bytes as the scalar
 * oracle: min/max, the division and round-to-nearest-even are exact. */
#include <immintrin.h>

#include "../kernels.h"
#include "../quantize-u8-head.h"

void trt_quantize_u8_avx512(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp, float *scale) {
  const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps((float)qmax);
  for (size_t u = 0; u < n_heads; u++) {
    const float *h = x + u * dim;
    __m512 lo = zero, hi = zero; /* masked-off lanes load 0, which the range holds anyway */
    for (size_t d = 0; d < dim; d += 16) {
      __mmask16 m = dim - d >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (dim - d)) - 1u);
      __m512 v = _mm512_maskz_loadu_ps(m, h + d);
      lo = _mm512_min_ps(v, lo); /* v < lo ? v : lo, as the oracle */
      hi = _mm512_max_ps(v, hi);
    }
    float z, s = trt_u8_head_scale(_mm512_reduce_min_ps(lo), _mm512_reduce_max_ps(hi), qmax, &z);
    __m512 sv = _mm512_set1_ps(s), zv = _mm512_set1_ps(z);
    for (size_t d = 0; d < dim; d += 16) {
      __mmask16 m = dim - d >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (dim - d)) - 1u);
      __m512 v = _mm512_div_ps(_mm512_maskz_loadu_ps(m, h + d), sv);
      v = _mm512_add_ps(_mm512_roundscale_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zv);
      v = _mm512_min_ps(_mm512_max_ps(v, zero), top);
      _mm512_mask_cvtusepi32_storeu_epi8(q + u * dim + d, m, _mm512_cvtps_epu32(v));
    }
    zp[u] = (int32_t)z;
    scale[u] = s;
  }
}
