/* The 256-bit int8 MaxSim shared by maxsim-u8s8-avx2.c (vpmaddubsw +
 * vpmaddwd, 7-bit user bytes) and maxsim-u8s8-avxvnni.c (VEX vpdpbusd).
 * Internal to kernels/x86. The includer defines, before including:
 *   static inline __m256i trt_yq_dot(__m256i acc, __m256i u, __m256i s):
 *     acc + in each int32 lane the sum of the 4 products u8 x s8 of the
 *     lane's bytes, exactly (the includer's comment proves it);
 *   TRT_YQ_MR, TRT_YQ_NR: the register tile (panels x item heads);
 *   TRT_MS_NAME (optional): the public name the driver defines.
 *
 * Layout as the AVX-512 VNNI kernel with 8 lanes: a packed panel holds
 * [d/4][8 lanes][4 x u8], then -zp and the scale of its 8 heads (the
 * loops around the tile: kernels/maxsim-driver.h); the 4 item bytes d..d+3 of
 * an item head broadcast to all lanes straight from the store (no
 * per-candidate widening), MR x NR int32 accumulators, each starting at
 * -zp[u] * colsum[h] so that it ends as the corrected dot product D[u][h]
 * and the max over item heads is a vertical vpmaxsd. The fp32 work (one
 * convert and multiply per user head, the sum) happens once per candidate,
 * in the oracle's formula. */
#ifndef TRT_MAXSIM_U8S8_YMM_TILE_H
#define TRT_MAXSIM_U8S8_YMM_TILE_H

#include <immintrin.h>
#include <string.h>

#include "../kernels.h"
#include "../maxsim-pass.h"

#define TRT_YQ_LANES 8
#define TRT_YQ_PACK_BYTES 16384 /* packed user heads per pass (96 x 64 = 6 KiB) */
#define TRT_YQ_MAX_PANELS 64    /* panels per pass */

static inline size_t trt_yq_pass_panels(size_t dim) {
  size_t groups = (dim + 3) / 4;
  if (groups * 4 * TRT_YQ_LANES > TRT_YQ_PACK_BYTES) return 0;
  size_t pp = TRT_YQ_PACK_BYTES / (groups * 4 * TRT_YQ_LANES);
  return pp < TRT_YQ_MAX_PANELS ? pp : TRT_YQ_MAX_PANELS;
}

/* words, then -zp per lane, then the scale per lane */
static inline size_t trt_yq_panel_bytes(size_t dim) { return (dim + 3) / 4 * 4 * TRT_YQ_LANES + 2 * TRT_YQ_LANES * 4; }

static void trt_yq_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  size_t dim = u->dim, groups = (dim + 3) / 4;
  uint32_t *ut = (uint32_t *)(void *)panel;
  int32_t *nzp = (int32_t *)(void *)(panel + groups * 4 * TRT_YQ_LANES);
  float *scale = (float *)(void *)(panel + groups * 4 * TRT_YQ_LANES + TRT_YQ_LANES * 4);
  for (size_t l = 0; l < TRT_YQ_LANES; l++) {
    const uint8_t *src = l < n ? (const uint8_t *)u->heads + (u0 + l) * dim : NULL;
    for (size_t g = 0; g < groups; g++) {
      uint32_t word = 0;
      for (size_t j = 0; j < 4 && l < n && 4 * g + j < dim; j++) word |= (uint32_t)src[4 * g + j] << (8 * j);
      ut[g * TRT_YQ_LANES + l] = word;
    }
    nzp[l] = l < n ? -u->zp[u0 + l] : 0;
    scale[l] = l < n ? u->scale[u0 + l] : 0.0f;
  }
}

static inline int32_t trt_yq_word(const int8_t *p) {
  int32_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

TRT_INLINE void trt_yq_tile(const trt_ms_pass *ps, size_t v, const int8_t *ih, size_t hs, const int32_t *colsum,
                            int32_t *best, const int mr, const int nr) {
  size_t groups = (ps->dim + 3) / 4, vs = ps->panel_bytes / 4; /* words between panels */
  const uint32_t *ut = (const uint32_t *)(const void *)ps->panels + v * vs;
  __m256i acc[TRT_YQ_MR][TRT_YQ_NR];
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m256i nzp = _mm256_load_si256((const __m256i *)(const void *)(ut + (size_t)m * vs + groups * TRT_YQ_LANES));
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) acc[m][n] = _mm256_mullo_epi32(nzp, _mm256_set1_epi32(colsum[n]));
  }
  for (size_t g = 0; g < groups; g++) {
    __m256i u[TRT_YQ_MR];
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++) u[m] = _mm256_load_si256((const __m256i *)(const void *)(ut + (size_t)m * vs + g * TRT_YQ_LANES));
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) {
      __m256i b = _mm256_set1_epi32(trt_yq_word(ih + (size_t)n * hs + 4 * g));
#pragma GCC unroll 8
      for (int m = 0; m < mr; m++) acc[m][n] = trt_yq_dot(acc[m][n], u[m], b);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m256i *dst = (__m256i *)(void *)(best + (v + (size_t)m) * TRT_YQ_LANES);
    __m256i r = _mm256_load_si256(dst);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) r = _mm256_max_epi32(r, acc[m][n]);
    _mm256_store_si256(dst, r);
  }
}

TRT_INLINE void trt_yq_head_block(const trt_ms_pass *ps, const int8_t *ih, size_t hs, const int32_t *colsum, int32_t *best,
                                  const int nr) {
  size_t v = 0;
  for (; v + TRT_YQ_MR <= ps->n_panels; v += TRT_YQ_MR) trt_yq_tile(ps, v, ih, hs, colsum, best, TRT_YQ_MR, nr);
#pragma GCC unroll 8
  for (int mr = TRT_YQ_MR - 1; mr >= 1; mr--)
    if (ps->n_panels - v == (size_t)mr) trt_yq_tile(ps, v, ih, hs, colsum, best, mr, nr);
}

/* A dim that is not a multiple of 4 would make the last group of a head
 * read into the next head (or past the row): copy such a block into a
 * zero-padded buffer (the padded user bytes are zero too). */
static const int8_t *trt_yq_padded(const int8_t *ih, size_t nr, size_t dim, size_t groups, int8_t *buf) {
  if (dim % 4 == 0) return ih;
  for (size_t n = 0; n < nr; n++) {
    memcpy(buf + n * groups * 4, ih + n * dim, dim);
    memset(buf + n * groups * 4 + dim, 0, groups * 4 - dim);
  }
  return buf;
}

static inline size_t trt_yq_block_heads(size_t left) { return left >= TRT_YQ_NR ? TRT_YQ_NR : left; }

static inline void trt_yq_best_init(const trt_ms_pass *ps, void *best) {
  for (size_t v = 0; v < ps->n_panels; v++)
    _mm256_store_si256((__m256i *)best + v, _mm256_set1_epi32(INT32_MIN));
}

static inline void trt_yq_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                                void *buf) {
  size_t dim = ps->dim, groups = (dim + 3) / 4, hs = dim % 4 ? groups * 4 : dim;
  const int8_t *ih = trt_yq_padded((const int8_t *)c->heads + h * dim, nr, dim, groups, buf);
  const int32_t *cs = c->colsum + h;
  if (pf) trt_ms_prefetch(pf, nr * dim);
  switch (nr) { /* a constant nr per call: the tile's loops unroll fully */
#define TRT_YQ_CASE(n) \
  case n: trt_yq_head_block(ps, ih, hs, cs, best, n); break;
#if TRT_YQ_NR >= 6
    TRT_YQ_CASE(6)
#endif
#if TRT_YQ_NR >= 5
    TRT_YQ_CASE(5)
#endif
    TRT_YQ_CASE(4)
    TRT_YQ_CASE(3)
    TRT_YQ_CASE(2)
#undef TRT_YQ_CASE
    default: trt_yq_head_block(ps, ih, hs, cs, best, 1); break;
  }
}

/* The 8 lanes of v summed: the fp32 order the kernels have always used. */
TRT_INLINE float trt_yq_hsum(__m256 v) {
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

/* term_u = (float)D_max[u] * (scale[u] * item_scale), as in the oracle. */
static inline float trt_yq_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  size_t scale_at = (ps->dim + 3) / 4 * 4 * TRT_YQ_LANES + TRT_YQ_LANES * 4;
  __m256 s_item = _mm256_set1_ps(c->item_scale), sum = _mm256_setzero_ps();
  for (size_t v = 0; v < ps->n_panels; v++) {
    __m256 f = _mm256_cvtepi32_ps(_mm256_load_si256((const __m256i *)best + v));
    __m256 scale = _mm256_load_ps((const float *)(const void *)(ps->panels + v * ps->panel_bytes + scale_at));
    sum = _mm256_fmadd_ps(f, _mm256_mul_ps(scale, s_item), sum);
  }
  return trt_yq_hsum(sum);
}

#define TRT_MS(x) trt_yq_##x
#define TRT_MS_LANES TRT_YQ_LANES
#define TRT_MS_ITEM_BYTES 1
#define TRT_MS_STACK_BYTES (TRT_YQ_PACK_BYTES + TRT_YQ_MAX_PANELS * 2 * TRT_YQ_LANES * 4)
#define TRT_MS_BEST_BYTES (TRT_YQ_MAX_PANELS * TRT_YQ_LANES * 4)
#define TRT_MS_BUF_BYTES (TRT_YQ_NR * (TRT_YQ_PACK_BYTES / TRT_YQ_LANES))
#include "../maxsim-driver.h"

#endif
