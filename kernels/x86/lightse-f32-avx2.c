/* Light-SE field attention, AVX2: the per-field mean and the final
 * `e + e * a` over 8 dims per step (masked for a ragged dim); the small
 * F x F attention is the shared scalar code (kernels/lightse-attention.h).
 * The mean's sum is reassociated: within rounding of the oracle. */
#include <immintrin.h>

#include "../kernels.h"
#include "../lightse-attention.h"

static inline __m256i lanes(size_t left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)), idx);
}

void trt_lightse_f32_avx2(const float *e, size_t n_fields, size_t dim, const float *w, const float *b, float *scratch,
                          float *out) {
  float *z = scratch, *a = scratch + n_fields;
  for (size_t f = 0; f < n_fields; f++) {
    __m256 s = _mm256_setzero_ps();
    for (size_t d = 0; d < dim; d += 8) s = _mm256_add_ps(s, _mm256_maskload_ps(e + f * dim + d, lanes(dim - d)));
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    z[f] = _mm_cvtss_f32(h) / (float)dim;
  }
  trt_lightse_attention(z, n_fields, w, b, a);
  for (size_t f = 0; f < n_fields; f++) {
    __m256 att = _mm256_set1_ps(a[f]);
    for (size_t d = 0; d < dim; d += 8) {
      __m256i m = lanes(dim - d);
      __m256 v = _mm256_maskload_ps(e + f * dim + d, m);
      _mm256_maskstore_ps(out + f * dim + d, m, _mm256_add_ps(v, _mm256_mul_ps(v, att)));
    }
  }
}
