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
 * happens once per candidate. The loops around the tile:
 * kernels/maxsim-driver.h; a packed panel is [d/4][16 lanes] words, then
 * -zp and the scale of its 16 heads. */
#include <immintrin.h>
#include <string.h>

#include "../kernels.h"
#include "../maxsim-pass.h"

#define LANES 16
#define MR 3
#define NR 8
#define PACK_BYTES 16384 /* packed user heads per pass (96 x 64 = 6 KiB) */
#define MAX_PANELS 32    /* panels per pass */

static inline size_t vnni_pass_panels(size_t dim) {
  size_t groups = (dim + 3) / 4;
  if (groups * 4 * LANES > PACK_BYTES) return 0;
  size_t pp = PACK_BYTES / (groups * 4 * LANES);
  return pp < MAX_PANELS ? pp : MAX_PANELS;
}

/* words, then -zp per lane, then the scale per lane */
static inline size_t vnni_panel_bytes(size_t dim) { return (dim + 3) / 4 * 4 * LANES + 2 * LANES * 4; }

static void vnni_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  size_t dim = u->dim, groups = (dim + 3) / 4;
  uint32_t *ut = (uint32_t *)(void *)panel;
  int32_t *nzp = (int32_t *)(void *)(panel + groups * 4 * LANES);
  float *scale = (float *)(void *)(panel + groups * 4 * LANES + LANES * 4);
  for (size_t l = 0; l < LANES; l++) {
    const uint8_t *src = l < n ? (const uint8_t *)u->heads + (u0 + l) * dim : NULL;
    for (size_t g = 0; g < groups; g++) {
      uint32_t word = 0;
      for (size_t j = 0; j < 4 && l < n && 4 * g + j < dim; j++) word |= (uint32_t)src[4 * g + j] << (8 * j);
      ut[g * LANES + l] = word;
    }
    nzp[l] = l < n ? -u->zp[u0 + l] : 0;
    scale[l] = l < n ? u->scale[u0 + l] : 0.0f;
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
 * best[m] = max(best[m], max_n acc[m][n]). Panel v + m starts at
 * ps->panels + (v + m) * panel_bytes; item head n starts at ih + n * hs
 * and has groups * 4 readable bytes. */
TRT_INLINE void tile(const trt_ms_pass *ps, size_t v, const int8_t *ih, size_t hs, const int32_t *colsum, int32_t *best,
                     const int mr, const int nr) {
  size_t groups = (ps->dim + 3) / 4, vs = ps->panel_bytes / 4; /* words between panels */
  const uint32_t *ut = (const uint32_t *)(const void *)ps->panels + v * vs;
  __m512i acc[MR][NR];
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m512i nzp = _mm512_load_si512(ut + (size_t)m * vs + groups * LANES);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) acc[m][n] = _mm512_mullo_epi32(nzp, _mm512_set1_epi32(colsum[n]));
  }
  for (size_t g = 0; g < groups; g++) {
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

TRT_INLINE void head_block(const trt_ms_pass *ps, const int8_t *ih, size_t hs, const int32_t *colsum, int32_t *best,
                           const int nr) {
  size_t v = 0;
  for (; v + 3 <= ps->n_panels; v += 3) tile(ps, v, ih, hs, colsum, best, 3, nr);
  if (ps->n_panels - v == 2) tile(ps, v, ih, hs, colsum, best, 2, nr);
  if (ps->n_panels - v == 1) tile(ps, v, ih, hs, colsum, best, 1, nr);
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

static inline size_t vnni_block_heads(size_t left) { return left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1; }

static inline void vnni_best_init(const trt_ms_pass *ps, void *best) {
  for (size_t v = 0; v < ps->n_panels; v++) _mm512_store_si512((int32_t *)best + v * LANES, _mm512_set1_epi32(INT32_MIN));
}

static inline void vnni_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                              void *buf) {
  size_t dim = ps->dim, groups = (dim + 3) / 4, hs = dim % 4 ? groups * 4 : dim;
  const int8_t *ih = padded_heads((const int8_t *)c->heads + h * dim, nr, dim, groups, buf);
  if (pf) trt_ms_prefetch(pf, nr * dim);
  const int32_t *cs = c->colsum + h;
  switch (nr) {
    case 8: head_block(ps, ih, hs, cs, best, 8); break;
    case 4: head_block(ps, ih, hs, cs, best, 4); break;
    case 2: head_block(ps, ih, hs, cs, best, 2); break;
    default: head_block(ps, ih, hs, cs, best, 1); break;
  }
}

/* term_u = (float)D_max[u] * (scale[u] * item_scale), as in the oracle. */
static inline float vnni_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  size_t scale_at = (ps->dim + 3) / 4 * 4 * LANES + LANES * 4;
  __m512 s_item = _mm512_set1_ps(c->item_scale), sum = _mm512_setzero_ps();
  for (size_t v = 0; v < ps->n_panels; v++) {
    __m512 f = _mm512_cvtepi32_ps(_mm512_load_si512((const int32_t *)best + v * LANES));
    __m512 scale = _mm512_load_ps(ps->panels + v * ps->panel_bytes + scale_at);
    sum = _mm512_fmadd_ps(f, _mm512_mul_ps(scale, s_item), sum);
  }
  return _mm512_reduce_add_ps(sum);
}

#define TRT_MS(x) vnni_##x
#define TRT_MS_LANES LANES
#define TRT_MS_ITEM_BYTES 1
#define TRT_MS_STACK_BYTES (PACK_BYTES + MAX_PANELS * 2 * LANES * 4)
#define TRT_MS_BEST_BYTES (MAX_PANELS * LANES * 4)
#define TRT_MS_BUF_BYTES (NR * (PACK_BYTES / LANES))
#define TRT_MS_NAME trt_maxsim_u8s8_avx512vnni
#define TRT_MS_SCALAR trt_maxsim_u8s8_scalar
#define TRT_MS_U8S8 1
#include "../maxsim-driver.h"
