/* Embedding gather + masked pooling of one field, AVX-512F: 16 dims per
 * step, a ragged dim with masks. Each lane adds (or maxes) the rows in the
 * order of the scalar oracle, so the result is the same to the bit. */
#include <immintrin.h>

#include "../kernels.h"

void trt_embed_pool_f32_avx512(const float *table, size_t dim, const int64_t *ids, size_t n_ids, int mode, float *out) {
  for (size_t d = 0; d < dim; d += 16) {
    __mmask16 m = dim - d >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << (dim - d)) - 1u);
    __m512 acc = _mm512_setzero_ps();
    size_t count = 0;
    for (size_t j = 0; j < n_ids; j++) {
      const float *row = table + (size_t)ids[j] * dim + d;
      if (mode == TRT_POOL_MAX) { /* padding (id 0) reads row 0 shifted down by 1e9, as the reference */
        __m512 v = _mm512_sub_ps(_mm512_maskz_loadu_ps(m, row), _mm512_set1_ps(ids[j] != 0 ? 0.0f : 1e9f));
        acc = j == 0 ? v : _mm512_max_ps(v, acc); /* v > acc ? v : acc */
      } else if (ids[j] != 0) {
        acc = _mm512_add_ps(acc, _mm512_maskz_loadu_ps(m, row));
        count++;
      }
    }
    if (mode == TRT_POOL_MEAN) acc = _mm512_div_ps(acc, _mm512_set1_ps((float)count + 1e-8f));
    _mm512_mask_storeu_ps(out + d, m, acc);
  }
}
