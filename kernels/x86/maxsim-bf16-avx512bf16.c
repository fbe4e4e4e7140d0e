/* bf16 batched MaxSim with AVX512_BF16 vdpbf16ps: each fp32 lane takes two
 * bf16 products per instruction (32 MACs per zmm op, twice the fp32 rate).
 * Same blocking as maxsim-avx512-tile.h, with pairs of dims in a 32-bit
 * lane: user heads packed [panel][d/2][16 lanes][2 x bf16], and the item
 * pair (d, d+1) broadcast to all lanes. An odd dim pads each head with
 * a zero (copied block, see padded_heads) so no read passes the item row.
 * vdpbf16ps treats denormal inputs as zero and rounds each sum to fp32
 * (nearest-even); the scalar oracle rounds after every add, so results
 * agree to fp32 reassociation tolerance. */
#include <immintrin.h>
#include <math.h>
#include <string.h>

#include "../kernels.h"
#include "maxsim-avx512-tile.h" /* lanes, MR/NR, pack size, best[] helpers */

/* Two adjacent bf16 values as one 32-bit lane (lower dim in the low half). */
static inline uint32_t load_pair(const uint16_t *p) {
  uint32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

/* [u][d] -> [panel][d/2][16 lanes] pairs; padding (lanes, odd dim) is +0. */
static void pack_user(const uint16_t *user, size_t n_user, size_t dim, uint32_t *ut) {
  size_t n_panels = (n_user + TRT_Z_LANES - 1) / TRT_Z_LANES, pairs = (dim + 1) / 2;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < TRT_Z_LANES; l++) {
      size_t u = v * TRT_Z_LANES + l;
      uint32_t *dst = ut + v * pairs * TRT_Z_LANES + l;
      for (size_t p = 0; p < pairs; p++) {
        uint32_t lo = u < n_user ? user[u * dim + 2 * p] : 0;
        uint32_t hi = u < n_user && 2 * p + 1 < dim ? user[u * dim + 2 * p + 1] : 0;
        dst[p * TRT_Z_LANES] = lo | hi << 16;
      }
    }
}

/* vdpbf16ps through inline asm, as vpdpbusd in maxsim-u8s8-avx512vnni.c:
 * GCC 12 otherwise copies the accumulators around the loop. */
static inline __m512 dpbf16(__m512 acc, __m512i u, __m512i pair) {
  __asm__("vdpbf16ps %2, %1, %0" : "+v"(acc) : "v"(u), "v"(pair));
  return acc;
}

/* best[m] = max(best[m], max_n <user panel m, item head n>). vs: lanes
 * between panels (pairs * 16); item head n starts at ih + n * hs and has
 * 2 * pairs readable values. */
TRT_INLINE void tile(const uint32_t *ut, size_t vs, const uint16_t *ih, size_t hs, size_t pairs,
                     float *best, const int mr, const int nr) {
  __m512 acc[TRT_Z_MR][TRT_Z_NR];
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++)
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) acc[m][n] = _mm512_setzero_ps();
  for (size_t p = 0; p < pairs; p++) {
    __m512i u[TRT_Z_MR];
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++) u[m] = _mm512_load_si512(ut + (size_t)m * vs + p * TRT_Z_LANES);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) {
      __m512i b = _mm512_set1_epi32((int)load_pair(ih + (size_t)n * hs + 2 * p));
#pragma GCC unroll 8
      for (int m = 0; m < mr; m++) acc[m][n] = dpbf16(acc[m][n], u[m], b);
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m512 r = _mm512_load_ps(best + m * TRT_Z_LANES);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) r = _mm512_max_ps(r, acc[m][n]);
    _mm512_store_ps(best + m * TRT_Z_LANES, r);
  }
}

TRT_INLINE void head_block(const uint32_t *ut, size_t n_panels, size_t pairs, const uint16_t *ih,
                           size_t hs, float *best, const int nr) {
  size_t vs = pairs * TRT_Z_LANES, v = 0;
  for (; v + 3 <= n_panels; v += 3) tile(ut + v * vs, vs, ih, hs, pairs, best + v * TRT_Z_LANES, 3, nr);
  if (n_panels - v == 2) tile(ut + v * vs, vs, ih, hs, pairs, best + v * TRT_Z_LANES, 2, nr);
  if (n_panels - v == 1) tile(ut + v * vs, vs, ih, hs, pairs, best + v * TRT_Z_LANES, 1, nr);
}

/* An odd dim would make the last pair of the last head read past the row:
 * copy such a block into a buffer with a +0 after each head (the padded
 * user value is +0 too). One copy per block keeps a single loop in the
 * tile, and with it all accumulators in registers. */
static const uint16_t *padded_heads(const uint16_t *ih, size_t nr, size_t dim, uint16_t *buf) {
  if (dim % 2 == 0) return ih;
  for (size_t n = 0; n < nr; n++) {
    memcpy(buf + n * (dim + 1), ih + n * dim, dim * sizeof *ih);
    buf[n * (dim + 1) + dim] = 0;
  }
  return buf;
}

static float score_one(const uint32_t *ut, size_t n_panels, size_t n_user, const uint16_t *item,
                       const uint16_t *next, size_t n_item, size_t dim, float *best, uint16_t *buf) {
  size_t pairs = (dim + 1) / 2, hs = 2 * pairs;
  trt_z_best_init(best, n_panels);
  for (size_t h = 0; h < n_item;) {
    size_t nr = trt_z_block_heads(n_item - h);
    const uint16_t *ih = padded_heads(item + h * dim, nr, dim, buf);
    if (next) trt_z_prefetch(next + h * dim, nr * dim * sizeof(uint16_t));
    switch (nr) {
      case 8: head_block(ut, n_panels, pairs, ih, hs, best, 8); break;
      case 4: head_block(ut, n_panels, pairs, ih, hs, best, 4); break;
      case 2: head_block(ut, n_panels, pairs, ih, hs, best, 2); break;
      default: head_block(ut, n_panels, pairs, ih, hs, best, 1); break;
    }
    h += nr;
  }
  return trt_z_best_sum(best, n_panels, n_user);
}

void trt_maxsim_bf16_avx512bf16(const uint16_t *user, size_t n_user, const uint16_t *items,
                                size_t item_stride, const uint32_t *rows, size_t k,
                                size_t n_item, size_t dim, float *scores) {
  /* Pack capacity in 32-bit pair lanes, the same 32 KiB as the fp32 kernel. */
  size_t pairs = (dim + 1) / 2;
  if (!n_user || !n_item || !dim || pairs > TRT_Z_PACK_FLOATS / TRT_Z_LANES) {
    trt_maxsim_bf16_scalar(user, n_user, items, item_stride, rows, k, n_item, dim, scores);
    return;
  }
  _Alignas(64) uint32_t ut[TRT_Z_PACK_FLOATS];
  _Alignas(64) float best[TRT_Z_MAX_PANELS * TRT_Z_LANES];
  _Alignas(64) uint16_t buf[TRT_Z_NR * 2 * (TRT_Z_PACK_FLOATS / TRT_Z_LANES)];
  size_t pass_panels = TRT_Z_PACK_FLOATS / (TRT_Z_LANES * pairs);
  if (pass_panels > TRT_Z_MAX_PANELS) pass_panels = TRT_Z_MAX_PANELS;
  for (size_t u0 = 0; u0 < n_user; u0 += pass_panels * TRT_Z_LANES) {
    size_t nu = n_user - u0 < pass_panels * TRT_Z_LANES ? n_user - u0 : pass_panels * TRT_Z_LANES;
    size_t np = (nu + TRT_Z_LANES - 1) / TRT_Z_LANES;
    pack_user(user + u0 * dim, nu, dim, ut);
    for (size_t c = 0; c < k; c++) {
      const uint16_t *item = items + (rows ? (size_t)rows[c] : c) * item_stride;
      const uint16_t *next = c + 1 < k ? items + (rows ? (size_t)rows[c + 1] : c + 1) * item_stride : NULL;
      float s = score_one(ut, np, nu, item, next, n_item, dim, best, buf);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
