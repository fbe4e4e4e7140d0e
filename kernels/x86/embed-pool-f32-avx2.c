/* Embedding gather + masked pooling of one field, AVX2: 8 dims per step,
 * the ragged end of dim with masked loads and stores. Each lane adds (or
 * maxes) the rows in the order of the scalar oracle: the same bits. */
#include <immintrin.h>

#include "../kernels.h"

static inline __m256i lanes(size_t left) {
  const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(left < 8 ? left : 8)), idx);
}

void trt_embed_pool_f32_avx2(const float *table, size_t dim, const int64_t *ids, size_t n_ids, int mode, float *out) {
  for (size_t d = 0; d < dim; d += 8) {
    __m256i m = lanes(dim - d);
    __m256 acc = _mm256_setzero_ps();
    size_t count = 0;
    for (size_t j = 0; j < n_ids; j++) {
      const float *row = table + (size_t)ids[j] * dim + d;
      if (mode == TRT_POOL_MAX) { /* padding (id 0) reads row 0 shifted down by 1e9, as the reference */
        __m256 v = _mm256_sub_ps(_mm256_maskload_ps(row, m), _mm256_set1_ps(ids[j] != 0 ? 0.0f : 1e9f));
        acc = j == 0 ? v : _mm256_max_ps(v, acc); /* v > acc ? v : acc */
      } else if (ids[j] != 0) {
        acc = _mm256_add_ps(acc, _mm256_maskload_ps(row, m));
        count++;
      }
    }
    if (mode == TRT_POOL_MEAN) acc = _mm256_div_ps(acc, _mm256_set1_ps((float)count + 1e-8f));
    _mm256_maskstore_ps(out + d, m, acc);
  }
}
