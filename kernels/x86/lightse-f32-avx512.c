/* Light-SE field attention, AVX-512F: the per-field mean and the final
 * `e + e * a` over 16 dims per step (masked for a ragged dim); the small
 * F x F attention is the shared scalar code (kernels/lightse-attention.h).
 * The mean's sum is reassociated: within rounding of the oracle. */
#include <immintrin.h>

#include "../kernels.h"
#include "../lightse-attention.h"

void trt_lightse_f32_avx512(const float *e, size_t n_fields, size_t dim, const float *w, const float *b, float *scratch,
                            float *out) {
  float *z = scratch, *a = scratch + n_fields;
  for (size_t f = 0; f < n_fields; f++) {
    __m512 s = _mm512_setzero_ps();
    for (size_t d = 0; d < dim; d += 16) {
      __mmask16 m = dim - d >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (dim - d)) - 1u);
      s = _mm512_add_ps(s, _mm512_maskz_loadu_ps(m, e + f * dim + d));
    }
    z[f] = _mm512_reduce_add_ps(s) / (float)dim;
  }
  trt_lightse_attention(z, n_fields, w, b, a);
  for (size_t f = 0; f < n_fields; f++) {
    __m512 att = _mm512_set1_ps(a[f]);
    for (size_t d = 0; d < dim; d += 16) {
      __mmask16 m = dim - d >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (dim - d)) - 1u);
      __m512 v = _mm512_maskz_loadu_ps(m, e + f * dim + d);
      _mm512_mask_storeu_ps(out + f * dim + d, m, _mm512_add_ps(v, _mm512_mul_ps(v, att)));
    }
  }
}
