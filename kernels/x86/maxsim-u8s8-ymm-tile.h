/* The 256-bit int8 MaxSim shared by maxsim-u8s8-avx2.c (vpmaddubsw +
 * vpmaddwd, 7-bit user bytes) and maxsim-u8s8-avxvnni.c (VEX vpdpbusd).
 * Internal to kernels/x86. The includer defines, before including:
 *   static inline __m256i trt_yq_dot(__m256i acc, __m256i u, __m256i s):
 *     acc + in each int32 lane the sum of the 4 products u8 x s8 of the
 *     lane's bytes, exactly (the includer's comment proves it);
 *   TRT_YQ_MR, TRT_YQ_NR: the register tile (panels x item heads).
 *
 * Layout as the AVX-512 VNNI kernel with 8 lanes: user heads packed
 * [panel][d/4][8 lanes][4 x u8] once per call, the 4 item bytes d..d+3 of
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

#define TRT_INLINE static inline __attribute__((always_inline))
#define TRT_YQ_LANES 8
#define TRT_YQ_PACK_BYTES 16384 /* packed user heads on the stack (96 x 64 = 6 KiB) */
#define TRT_YQ_MAX_PANELS 64    /* panels per pass */

typedef struct trt_yq_user {
  const uint32_t *ut;  /* [panel][d/4][8] groups of 4 u8 */
  const int32_t *nzp;  /* -zp per lane, 0 in padding lanes */
  const float *scale;  /* scale per lane, 0 in padding lanes */
  size_t n_panels, groups;
} trt_yq_user;

static void trt_yq_pack(const trt_maxsim_u8s8_params *p, size_t u0, size_t nu, uint32_t *ut, int32_t *nzp,
                        float *scale) {
  size_t n_panels = (nu + TRT_YQ_LANES - 1) / TRT_YQ_LANES, groups = (p->dim + 3) / 4;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < TRT_YQ_LANES; l++) {
      size_t u = v * TRT_YQ_LANES + l;
      const uint8_t *src = p->user + (u0 + u) * p->dim;
      for (size_t g = 0; g < groups; g++) {
        uint32_t word = 0;
        for (size_t j = 0; j < 4 && u < nu && 4 * g + j < p->dim; j++) word |= (uint32_t)src[4 * g + j] << (8 * j);
        ut[(v * groups + g) * TRT_YQ_LANES + l] = word;
      }
      nzp[u] = u < nu ? -p->user_zp[u0 + u] : 0;
      scale[u] = u < nu ? p->user_scale[u0 + u] : 0.0f;
    }
}

static inline int32_t trt_yq_word(const int8_t *p) {
  int32_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

TRT_INLINE void trt_yq_tile(const trt_yq_user *pu, size_t v, const int8_t *ih, size_t hs, const int32_t *colsum,
                            int32_t *best, const int mr, const int nr) {
  size_t vs = pu->groups * TRT_YQ_LANES;
  const uint32_t *ut = pu->ut + v * vs;
  __m256i acc[TRT_YQ_MR][TRT_YQ_NR];
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m256i nzp = _mm256_load_si256((const __m256i *)(const void *)(pu->nzp + (v + (size_t)m) * TRT_YQ_LANES));
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) acc[m][n] = _mm256_mullo_epi32(nzp, _mm256_set1_epi32(colsum[n]));
  }
  for (size_t g = 0; g < pu->groups; g++) {
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

TRT_INLINE void trt_yq_head_block(const trt_yq_user *pu, const int8_t *ih, size_t hs, const int32_t *colsum,
                                  int32_t *best, const int nr) {
  size_t v = 0;
  for (; v + TRT_YQ_MR <= pu->n_panels; v += TRT_YQ_MR) trt_yq_tile(pu, v, ih, hs, colsum, best, TRT_YQ_MR, nr);
#pragma GCC unroll 8
  for (int mr = TRT_YQ_MR - 1; mr >= 1; mr--)
    if (pu->n_panels - v == (size_t)mr) trt_yq_tile(pu, v, ih, hs, colsum, best, mr, nr);
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

static float trt_yq_score_one(const trt_yq_user *pu, const trt_maxsim_u8s8_params *p, size_t row, const int8_t *next,
                              int32_t *best, int8_t *buf) {
  const int8_t *item = p->items + row * p->item_stride;
  const int32_t *colsum = p->colsum + row * p->colsum_stride;
  size_t dim = p->dim, hs = dim % 4 ? pu->groups * 4 : dim;
  for (size_t v = 0; v < pu->n_panels; v++)
    _mm256_store_si256((__m256i *)(void *)(best + v * TRT_YQ_LANES), _mm256_set1_epi32(INT32_MIN));
  for (size_t h = 0; h < p->n_item;) {
    size_t left = p->n_item - h, nr = left >= TRT_YQ_NR ? TRT_YQ_NR : left;
    const int8_t *ih = trt_yq_padded(item + h * dim, nr, dim, pu->groups, buf);
    if (next)
      for (size_t off = 0; off < nr * dim; off += 64) _mm_prefetch((const char *)(next + h * dim + off), _MM_HINT_T0);
    switch (nr) { /* a constant nr per call: the tile's loops unroll fully */
#define TRT_YQ_CASE(c) \
  case c: trt_yq_head_block(pu, ih, hs, colsum + h, best, c); break;
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
      default: trt_yq_head_block(pu, ih, hs, colsum + h, best, 1); break;
    }
    h += nr;
  }
  /* term_u = (float)D_max[u] * (scale[u] * item_scale), as in the oracle. */
  __m256 s_item = _mm256_set1_ps(p->item_scale[row]), sum = _mm256_setzero_ps();
  for (size_t v = 0; v < pu->n_panels; v++) {
    __m256 f = _mm256_cvtepi32_ps(_mm256_load_si256((const __m256i *)(const void *)(best + v * TRT_YQ_LANES)));
    sum = _mm256_fmadd_ps(f, _mm256_mul_ps(_mm256_load_ps(pu->scale + v * TRT_YQ_LANES), s_item), sum);
  }
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

/* 0 if the shape does not fit the stack buffers (the caller falls back). */
static int trt_yq_maxsim(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k, float *scores) {
  size_t groups = (p->dim + 3) / 4;
  if (!p->n_user || !p->n_item || !p->dim || groups * 4 * TRT_YQ_LANES > TRT_YQ_PACK_BYTES) return 0;
  _Alignas(32) uint32_t ut[TRT_YQ_PACK_BYTES / 4];
  _Alignas(32) int32_t nzp[TRT_YQ_MAX_PANELS * TRT_YQ_LANES], best[TRT_YQ_MAX_PANELS * TRT_YQ_LANES];
  _Alignas(32) float scale[TRT_YQ_MAX_PANELS * TRT_YQ_LANES];
  _Alignas(32) int8_t buf[TRT_YQ_NR * (TRT_YQ_PACK_BYTES / TRT_YQ_LANES)];
  size_t pass_panels = TRT_YQ_PACK_BYTES / (groups * 4 * TRT_YQ_LANES);
  if (pass_panels > TRT_YQ_MAX_PANELS) pass_panels = TRT_YQ_MAX_PANELS;
  for (size_t u0 = 0; u0 < p->n_user; u0 += pass_panels * TRT_YQ_LANES) {
    size_t nu = p->n_user - u0 < pass_panels * TRT_YQ_LANES ? p->n_user - u0 : pass_panels * TRT_YQ_LANES;
    trt_yq_pack(p, u0, nu, ut, nzp, scale);
    trt_yq_user pu = {ut, nzp, scale, (nu + TRT_YQ_LANES - 1) / TRT_YQ_LANES, groups};
    for (size_t c = 0; c < k; c++) {
      size_t row = rows ? (size_t)rows[c] : c;
      const int8_t *next = c + 1 < k ? p->items + (rows ? (size_t)rows[c + 1] : c + 1) * p->item_stride : NULL;
      float s = trt_yq_score_one(&pu, p, row, next, best, buf);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
  return 1;
}

#endif
