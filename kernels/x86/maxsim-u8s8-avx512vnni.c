/* int8 batched MaxSim with AVX512_VNNI vpdpbusd (u8 x s8, four products
 * summed into each int32 lane, no saturation: |sum| <= 4 * 255 * 128).
 * Semantics and limits: trt_maxsim_u8s8_params in kernels.h.
 *
 * Same blocking as the fp32 kernel (maxsim-avx512-tile.h), with 4 dims per
 * 32-bit lane: user heads packed [panel][d/4][16 lanes][4 x u8], the 4 item
 * bytes (d..d+3) of a head broadcast to all lanes ({1to16}), a tile of
 * 3 panels (48 user heads) x 8 item heads = 24 int32 accumulators. Each
 * accumulator starts at -zp[u] * colsum[h], so after the dims it holds the
 * corrected dot product D[u][h] and the max over item heads is a vertical
 * vpmaxsd. The fp32 work (one convert and multiply per user head, the sum)
 * happens once per candidate. */
#include <immintrin.h>
#include <string.h>

#include "../kernels.h"

#define TRT_INLINE static inline __attribute__((always_inline))
#define LANES 16
#define MR 3
#define NR 8
#define PACK_BYTES 16384 /* packed user heads on the stack (96 x 64 = 6 KiB) */
#define MAX_PANELS 32    /* panels per pass */

typedef struct packed_user {
  const uint32_t *ut;  /* [panel][d/4][16] groups of 4 u8 */
  const int32_t *nzp;  /* -zp per lane, 0 in padding lanes */
  const float *scale;  /* scale per lane, 0 in padding lanes */
  size_t n_panels, groups;
} packed_user;

static void pack_user(const trt_maxsim_u8s8_params *p, size_t u0, size_t nu, uint32_t *ut,
                      int32_t *nzp, float *scale) {
  size_t n_panels = (nu + LANES - 1) / LANES, groups = (p->dim + 3) / 4;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < LANES; l++) {
      size_t u = v * LANES + l, lane = v * LANES + l;
      const uint8_t *src = p->user + (u0 + u) * p->dim;
      for (size_t g = 0; g < groups; g++) {
        uint32_t word = 0;
        for (size_t j = 0; j < 4 && u < nu && 4 * g + j < p->dim; j++) word |= (uint32_t)src[4 * g + j] << (8 * j);
        ut[(v * groups + g) * LANES + l] = word;
      }
      nzp[lane] = u < nu ? -p->user_zp[u0 + u] : 0;
      scale[lane] = u < nu ? p->user_scale[u0 + u] : 0.0f;
    }
}

/* The 4 item bytes at d..d+3 as one little-endian int32. */
static inline int32_t item_word(const int8_t *p) {
  int32_t w;
  memcpy(&w, p, sizeof w);
  return w;
}

/* vpdpbusd through inline asm: with the intrinsic, GCC 12 copies and
 * spills the accumulators of this tile on every step (it does not tie the
 * accumulator operand to the result), which halves the throughput. */
static inline __m512i dpbusd(__m512i acc, __m512i u8, __m512i s8) {
  __asm__("vpdpbusd %2, %1, %0" : "+v"(acc) : "v"(u8), "v"(s8));
  return acc;
}

/* acc[m][n] = -zp * colsum[n] + sum over `groups` 4-byte groups; then
 * best[m] = max(best[m], max_n acc[m][n]). Item head n starts at
 * ih + n * hs and has groups * 4 readable bytes. */
TRT_INLINE void tile(const packed_user *pu, size_t v, const int8_t *ih, size_t hs,
                     const int32_t *colsum, int32_t *best, const int mr, const int nr) {
  size_t vs = pu->groups * LANES;
  const uint32_t *ut = pu->ut + v * vs;
  __m512i acc[MR][NR];
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m512i nzp = _mm512_load_si512(pu->nzp + (v + (size_t)m) * LANES);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) acc[m][n] = _mm512_mullo_epi32(nzp, _mm512_set1_epi32(colsum[n]));
  }
  for (size_t g = 0; g < pu->groups; g++) {
    __m512i u[MR];
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++) u[m] = _mm512_load_si512(ut + (size_t)m * vs + g * LANES);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) {
      __m512i b = _mm512_set1_epi32(item_word(ih + (size_t)n * hs + 4 * g));
#pragma GCC unroll 8
      for (int m = 0; m < mr; m++) acc[m][n] = dpbusd(acc[m][n], u[m], b);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m512i r = _mm512_load_si512(best + (v + (size_t)m) * LANES);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) r = _mm512_max_epi32(r, acc[m][n]);
    _mm512_store_si512(best + (v + (size_t)m) * LANES, r);
  }
}

TRT_INLINE void head_block(const packed_user *pu, const int8_t *ih, size_t hs,
                           const int32_t *colsum, int32_t *best, const int nr) {
  size_t v = 0;
  for (; v + 3 <= pu->n_panels; v += 3) tile(pu, v, ih, hs, colsum, best, 3, nr);
  if (pu->n_panels - v == 2) tile(pu, v, ih, hs, colsum, best, 2, nr);
  if (pu->n_panels - v == 1) tile(pu, v, ih, hs, colsum, best, 1, nr);
}

/* A dim that is not a multiple of 4 would make the last group of the last
 * head read past the row: copy such a block into a zero-padded buffer
 * (the padded user bytes are zero, so the pad contributes nothing). One
 * copy per block keeps a single loop in the tile, which is what lets GCC
 * keep all 24 accumulators in registers. */
static const int8_t *padded_heads(const int8_t *ih, size_t nr, size_t dim, size_t groups, int8_t *buf) {
  if (dim % 4 == 0) return ih;
  for (size_t n = 0; n < nr; n++) {
    memcpy(buf + n * groups * 4, ih + n * dim, dim);
    memset(buf + n * groups * 4 + dim, 0, groups * 4 - dim);
  }
  return buf;
}

static float score_one(const packed_user *pu, const trt_maxsim_u8s8_params *p, size_t row,
                       const int8_t *next, int32_t *best, int8_t *buf) {
  const int8_t *item = p->items + row * p->item_stride;
  const int32_t *colsum = p->colsum + row * p->colsum_stride;
  size_t dim = p->dim, hs = dim % 4 ? pu->groups * 4 : dim;
  for (size_t v = 0; v < pu->n_panels; v++) _mm512_store_si512(best + v * LANES, _mm512_set1_epi32(INT32_MIN));
  for (size_t h = 0; h < p->n_item;) {
    size_t left = p->n_item - h, nr = left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
    const int8_t *ih = padded_heads(item + h * dim, nr, dim, pu->groups, buf);
    if (next)
      for (size_t off = 0; off < nr * dim; off += 64) _mm_prefetch((const char *)(next + h * dim + off), _MM_HINT_T0);
    switch (nr) {
      case 8: head_block(pu, ih, hs, colsum + h, best, 8); break;
      case 4: head_block(pu, ih, hs, colsum + h, best, 4); break;
      case 2: head_block(pu, ih, hs, colsum + h, best, 2); break;
      default: head_block(pu, ih, hs, colsum + h, best, 1); break;
    }
    h += nr;
  }
  /* term_u = (float)D_max[u] * (scale[u] * item_scale), as in the oracle. */
  __m512 s_item = _mm512_set1_ps(p->item_scale[row]), sum = _mm512_setzero_ps();
  for (size_t v = 0; v < pu->n_panels; v++) {
    __m512 f = _mm512_cvtepi32_ps(_mm512_load_si512(best + v * LANES));
    sum = _mm512_fmadd_ps(f, _mm512_mul_ps(_mm512_load_ps(pu->scale + v * LANES), s_item), sum);
  }
  return _mm512_reduce_add_ps(sum);
}

void trt_maxsim_u8s8_avx512vnni(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k,
                                float *scores) {
  size_t groups = (p->dim + 3) / 4;
  if (!p->n_user || !p->n_item || !p->dim || groups * 4 * LANES > PACK_BYTES) {
    trt_maxsim_u8s8_scalar(p, rows, k, scores);
    return;
  }
  _Alignas(64) uint32_t ut[PACK_BYTES / 4];
  _Alignas(64) int32_t nzp[MAX_PANELS * LANES], best[MAX_PANELS * LANES];
  _Alignas(64) float scale[MAX_PANELS * LANES];
  _Alignas(64) int8_t buf[NR * (PACK_BYTES / LANES)];
  size_t pass_panels = PACK_BYTES / (groups * 4 * LANES);
  if (pass_panels > MAX_PANELS) pass_panels = MAX_PANELS;
  for (size_t u0 = 0; u0 < p->n_user; u0 += pass_panels * LANES) {
    size_t nu = p->n_user - u0 < pass_panels * LANES ? p->n_user - u0 : pass_panels * LANES;
    pack_user(p, u0, nu, ut, nzp, scale);
    packed_user pu = {ut, nzp, scale, (nu + LANES - 1) / LANES, groups};
    for (size_t c = 0; c < k; c++) {
      size_t row = rows ? (size_t)rows[c] : c;
      const int8_t *next = c + 1 < k ? p->items + (rows ? (size_t)rows[c + 1] : c + 1) * p->item_stride : NULL;
      float s = score_one(&pu, p, row, next, best, buf);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
