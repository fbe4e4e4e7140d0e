/* bf16 batched MaxSim with AVX512_BF16 vdpbf16ps: each fp32 lane takes two
 * bf16 products per instruction (32 MACs per zmm op, twice the fp32 rate).
 * The loops around the tile: kernels/maxsim-driver.h.
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

/* Heads u0 .. u0+n-1 -> one panel [d/2][16 lanes] of pairs; padding
 * (lanes, odd dim) is +0. */
static void pbf_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  const uint16_t *user = (const uint16_t *)u->heads + u0 * u->dim;
  size_t dim = u->dim, pairs = (dim + 1) / 2;
  uint32_t *dst = (uint32_t *)(void *)panel;
  for (size_t l = 0; l < TRT_Z_LANES; l++)
    for (size_t p = 0; p < pairs; p++) {
      uint32_t lo = l < n ? user[l * dim + 2 * p] : 0;
      uint32_t hi = l < n && 2 * p + 1 < dim ? user[l * dim + 2 * p + 1] : 0;
      dst[p * TRT_Z_LANES + l] = lo | hi << 16;
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

/* Pack capacity in 32-bit pair lanes, the same 32 KiB as the fp32 kernel. */
static inline size_t pbf_pass_panels(size_t dim) {
  size_t pairs = (dim + 1) / 2;
  if (pairs > TRT_Z_PACK_FLOATS / TRT_Z_LANES) return 0;
  size_t pp = TRT_Z_PACK_FLOATS / (TRT_Z_LANES * pairs);
  return pp < TRT_Z_MAX_PANELS ? pp : TRT_Z_MAX_PANELS;
}

static inline size_t pbf_panel_bytes(size_t dim) { return (dim + 1) / 2 * TRT_Z_LANES * sizeof(uint32_t); }

static inline size_t pbf_block_heads(size_t left) { return trt_z_block_heads(left); }

static inline void pbf_best_init(const trt_ms_pass *ps, void *best) { trt_z_best_fill(best, ps->n_panels); }

static inline void pbf_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                             void *buf) {
  const uint32_t *ut = (const uint32_t *)(const void *)ps->panels;
  size_t dim = ps->dim, np = ps->n_panels, pairs = (dim + 1) / 2, hs = 2 * pairs;
  const uint16_t *ih = padded_heads((const uint16_t *)c->heads + h * dim, nr, dim, buf);
  if (pf) trt_ms_prefetch(pf, nr * dim * sizeof(uint16_t));
  switch (nr) {
    case 8: head_block(ut, np, pairs, ih, hs, best, 8); break;
    case 4: head_block(ut, np, pairs, ih, hs, best, 4); break;
    case 2: head_block(ut, np, pairs, ih, hs, best, 2); break;
    default: head_block(ut, np, pairs, ih, hs, best, 1); break;
  }
}

static inline float pbf_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  (void)c;
  return trt_z_best_sum(best, ps->n_panels, ps->n_user);
}

#define TRT_MS(x) pbf_##x
#define TRT_MS_ITEM_BYTES 2
#define TRT_MS_BUF_BYTES (TRT_Z_NR * 2 * (TRT_Z_PACK_FLOATS / TRT_Z_LANES) * sizeof(uint16_t))
#define TRT_MS_NAME trt_maxsim_bf16_avx512bf16
#define TRT_MS_SCALAR trt_maxsim_bf16_scalar
#define TRT_MS_U8S8 0
#define TRT_MS_ELEM uint16_t
#include "../maxsim-driver.h"
