/* Horizontal sums shared by the x86 dense kernels (included by files
 * compiled with AVX2 or AVX-512 flags; the AVX-512 ones only where
 * __AVX512F__ is on): lane j of the result = the sum of the lanes of the
 * j-th argument, four accumulators reduced by one hadd tree. */
#ifndef TOWERRT_X86_DENSE_REDUCE_H
#define TOWERRT_X86_DENSE_REDUCE_H

#include <immintrin.h>

static inline __attribute__((always_inline)) __m128 trt_hsum4_ps256(__m256 a, __m256 b, __m256 c, __m256 d) {
  __m256 t = _mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d));
  return _mm_add_ps(_mm256_castps256_ps128(t), _mm256_extractf128_ps(t, 1));
}

static inline __attribute__((always_inline)) __m128i trt_hsum4_epi32_256(__m256i a, __m256i b, __m256i c, __m256i d) {
  __m256i t = _mm256_hadd_epi32(_mm256_hadd_epi32(a, b), _mm256_hadd_epi32(c, d));
  return _mm_add_epi32(_mm256_castsi256_si128(t), _mm256_extracti128_si256(t, 1));
}

#ifdef __AVX512F__
static inline __attribute__((always_inline)) __m128 trt_hsum4_ps512(__m512 a, __m512 b, __m512 c, __m512 d) {
#define TRT_FOLD(v) _mm256_add_ps(_mm512_castps512_ps256(v), _mm512_extractf32x8_ps(v, 1))
  __m128 r = trt_hsum4_ps256(TRT_FOLD(a), TRT_FOLD(b), TRT_FOLD(c), TRT_FOLD(d));
#undef TRT_FOLD
  return r;
}

static inline __attribute__((always_inline)) __m128i trt_hsum4_epi32_512(__m512i a, __m512i b, __m512i c, __m512i d) {
#define TRT_FOLD(v) _mm256_add_epi32(_mm512_castsi512_si256(v), _mm512_extracti64x4_epi64(v, 1))
  __m128i r = trt_hsum4_epi32_256(TRT_FOLD(a), TRT_FOLD(b), TRT_FOLD(c), TRT_FOLD(d));
#undef TRT_FOLD
  return r;
}
#endif

#endif
