/* Per-head u8 quantization (kernels/scalar/quantize-u8-scalar.c), AVX2:
 * 8 values per step, the ragged end of a head by the scalar formula. Same
 * bytes as the oracle: min/max, the division and round-to-nearest-even are
 * exact. */
#include <immintrin.h>

#include "../kernels.h"
#include "../quantize-u8-head.h"

static inline float hmin8(__m256 v) {
  __m128 a = _mm_min_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_min_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_min_ss(a, _mm_movehdup_ps(a)));
}

static inline float hmax8(__m256 v) {
  __m128 a = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  a = _mm_max_ps(a, _mm_movehl_ps(a, a));
  return _mm_cvtss_f32(_mm_max_ss(a, _mm_movehdup_ps(a)));
}

void trt_quantize_u8_avx2(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp, float *scale) {
  const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps((float)qmax);
  for (size_t u = 0; u < n_heads; u++) {
    const float *h = x + u * dim;
    uint8_t *qu = q + u * dim;
    __m256 lov = zero, hiv = zero;
    size_t d = 0;
    for (; d + 8 <= dim; d += 8) {
      __m256 v = _mm256_loadu_ps(h + d);
      lov = _mm256_min_ps(v, lov);
      hiv = _mm256_max_ps(v, hiv);
    }
    float lo = hmin8(lov), hi = hmax8(hiv), z;
    trt_u8_range_tail(h, d, dim, &lo, &hi);
    float s = trt_u8_head_scale(lo, hi, qmax, &z);
    __m256 sv = _mm256_set1_ps(s), zv = _mm256_set1_ps(z);
    for (d = 0; d + 8 <= dim; d += 8) {
      __m256 v = _mm256_div_ps(_mm256_loadu_ps(h + d), sv);
      v = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC), zv);
      v = _mm256_min_ps(_mm256_max_ps(v, zero), top);
      __m256i i = _mm256_cvtps_epi32(v);
      __m128i w = _mm_packus_epi32(_mm256_castsi256_si128(i), _mm256_extracti128_si256(i, 1));
      _mm_storel_epi64((__m128i *)(void *)(qu + d), _mm_packus_epi16(w, w));
    }
    trt_u8_quantize_tail(h, d, dim, s, z, qmax, qu);
    zp[u] = (int32_t)z;
    scale[u] = s;
  }
}
