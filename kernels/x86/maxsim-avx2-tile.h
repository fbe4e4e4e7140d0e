/* Shared by maxsim-f32-avx2.c and maxsim-bf16-avx2.c (both compiled with
 * AVX2+FMA): the fp32 MaxSim register tile, the AVX2 twin of
 * maxsim-avx512-tile.h, and the driver hooks (kernels/maxsim-driver.h)
 * both use. Internal to kernels/x86.
 *
 * User heads are packed into panels of 8 heads, [panel][d][8 lanes]. A tile
 * is MR = 3 panels (24 user heads) x NR = 4 item heads: per d, 3 loads,
 * 4 vbroadcastss and 12 FMAs into 12 accumulators (16 ymm registers: 12 +
 * 3 user vectors + 1 broadcast). Each lane is one whole dot product, so the
 * max over item heads is a vertical vmaxps; the only horizontal reduction is
 * the final sum over user heads, once per candidate. */
#ifndef TRT_MAXSIM_AVX2_TILE_H
#define TRT_MAXSIM_AVX2_TILE_H

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "../maxsim-pass.h"

#define TRT_Y_LANES 8
#define TRT_Y_MR 3
#define TRT_Y_NR 4
/* A pass holds 8192 floats (32 KiB) of packed user heads: the reference
 * 96 x 64 in one pass; dim > 1024 falls back to scalar. */
#define TRT_Y_PACK_FLOATS 8192
#define TRT_Y_MAX_PANELS 64 /* panels per pass: bounds the best[] array */


/* best[m] = max(best[m], max_n <user panel m, item head n>); see the AVX-512 twin. */
TRT_INLINE void trt_y_tile(const float *ut, size_t vs, const float *ih, size_t hs, size_t dim,
                           float *best, const int mr, const int nr) {
  __m256 acc[TRT_Y_MR][TRT_Y_NR];
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++)
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) acc[m][n] = _mm256_setzero_ps();
  for (size_t d = 0; d < dim; d++) {
    __m256 u[TRT_Y_MR];
#pragma GCC unroll 4
    for (int m = 0; m < mr; m++) u[m] = _mm256_load_ps(ut + (size_t)m * vs + d * TRT_Y_LANES);
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) {
      __m256 b = _mm256_broadcast_ss(ih + (size_t)n * hs + d);
#pragma GCC unroll 4
      for (int m = 0; m < mr; m++) acc[m][n] = _mm256_fmadd_ps(u[m], b, acc[m][n]);
    }
  }
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++) {
    __m256 r = _mm256_load_ps(best + m * TRT_Y_LANES);
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) r = _mm256_max_ps(r, acc[m][n]);
    _mm256_store_ps(best + m * TRT_Y_LANES, r);
  }
}

/* One item head block (nr heads) against all n_panels user panels. */
TRT_INLINE void trt_y_head_block(const float *ut, size_t n_panels, size_t dim, const float *ih,
                                 size_t hs, float *best, const int nr) {
  size_t vs = dim * TRT_Y_LANES, v = 0;
  for (; v + 3 <= n_panels; v += 3) trt_y_tile(ut + v * vs, vs, ih, hs, dim, best + v * TRT_Y_LANES, 3, nr);
  if (n_panels - v == 2) trt_y_tile(ut + v * vs, vs, ih, hs, dim, best + v * TRT_Y_LANES, 2, nr);
  if (n_panels - v == 1) trt_y_tile(ut + v * vs, vs, ih, hs, dim, best + v * TRT_Y_LANES, 1, nr);
}

/* All heads of one item block, 4 at a time then 2, 1 for ragged counts. */
TRT_INLINE void trt_y_heads(const float *ut, size_t n_panels, size_t dim, const float *ih,
                            size_t hs, size_t nr, float *best) {
  switch (nr) {
    case 4: trt_y_head_block(ut, n_panels, dim, ih, hs, best, 4); break;
    case 3:
      trt_y_head_block(ut, n_panels, dim, ih, hs, best, 2);
      trt_y_head_block(ut, n_panels, dim, ih + 2 * hs, hs, best, 1);
      break;
    case 2: trt_y_head_block(ut, n_panels, dim, ih, hs, best, 2); break;
    default: trt_y_head_block(ut, n_panels, dim, ih, hs, best, 1); break;
  }
}

TRT_INLINE void trt_y_best_fill(float *best, size_t n_panels) {
  for (size_t v = 0; v < n_panels; v++) _mm256_store_ps(best + v * TRT_Y_LANES, _mm256_set1_ps(-INFINITY));
}

/* Sum of best over the n_user valid lanes; padding lanes are masked out. */
TRT_INLINE float trt_y_best_sum(const float *best, size_t n_panels, size_t n_user) {
  __m256 s = _mm256_setzero_ps();
  for (size_t v = 0; v + 1 < n_panels; v++) s = _mm256_add_ps(s, _mm256_load_ps(best + v * TRT_Y_LANES));
  int tail = (int)(n_user - (n_panels - 1) * TRT_Y_LANES);
  __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  __m256 keep = _mm256_castsi256_ps(_mm256_cmpgt_epi32(_mm256_set1_epi32(tail), lane));
  s = _mm256_add_ps(s, _mm256_and_ps(keep, _mm256_load_ps(best + (n_panels - 1) * TRT_Y_LANES)));
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  q = _mm_add_ss(q, _mm_movehdup_ps(q));
  return _mm_cvtss_f32(q);
}

/* Driver hooks shared by the fp32 and widened-bf16 kernels (the prefix
 * trt_y_ is theirs: #define TRT_MS(x) trt_y_##x). */
static inline size_t trt_y_pass_panels(size_t dim) {
  if (dim > TRT_Y_PACK_FLOATS / TRT_Y_LANES) return 0;
  size_t pp = TRT_Y_PACK_FLOATS / (TRT_Y_LANES * dim);
  return pp < TRT_Y_MAX_PANELS ? pp : TRT_Y_MAX_PANELS;
}

static inline size_t trt_y_panel_bytes(size_t dim) { return dim * TRT_Y_LANES * sizeof(float); }

static inline size_t trt_y_block_heads(size_t left) { return left < TRT_Y_NR ? left : TRT_Y_NR; }

static inline void trt_y_best_init(const trt_ms_pass *ps, void *best) { trt_y_best_fill(best, ps->n_panels); }

static inline float trt_y_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  (void)c;
  return trt_y_best_sum(best, ps->n_panels, ps->n_user);
}

#define TRT_MS_LANES TRT_Y_LANES
#define TRT_MS_STACK_BYTES (TRT_Y_PACK_FLOATS * sizeof(float))
#define TRT_MS_BEST_BYTES (TRT_Y_MAX_PANELS * TRT_Y_LANES * sizeof(float))

#endif
