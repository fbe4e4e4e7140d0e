/* Shared by maxsim-f32-avx512.c and maxsim-bf16-avx512.c (both compiled
 * with AVX-512F): the fp32 MaxSim register tile and the driver hooks
 * (kernels/maxsim-driver.h) both use. Internal to kernels/x86, not part
 * of kernels.h.
 *
 * Layout: user heads are packed into panels of 16 heads,
 * [panel][d][16 lanes], so one zmm holds element d of 16 user heads. A tile
 * is MR panels (48 user heads) x NR item heads: for each d it loads MR user
 * vectors, broadcasts NR item scalars (vfmadd231ps with an embedded
 * {1to16} broadcast) and does MR*NR FMAs into 24 accumulators. Each
 * accumulator lane is one full dot product, so the max over item heads is a
 * vertical vmaxps and no horizontal reduction happens until the final sum
 * over user heads, once per candidate. */
#ifndef TRT_MAXSIM_AVX512_TILE_H
#define TRT_MAXSIM_AVX512_TILE_H

#include <immintrin.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "../maxsim-pass.h"

#define TRT_Z_LANES 16
#define TRT_Z_MR 3
#define TRT_Z_NR 8
/* A pass holds 8192 floats (32 KiB) of packed user heads: the reference
 * 96 heads x 64 dims in one pass; more heads run in several passes, and
 * dim > 512 falls back to the scalar kernel. */
#define TRT_Z_PACK_FLOATS 8192
#define TRT_Z_MAX_PANELS 32 /* panels per pass: bounds the best[] array */


/* Step `step` of a loop of `steps`: prefetch the lines of pf up to
 * (step + 1) * lines / steps, so that the next candidate's block is fetched
 * a line or so per step. Issued in one burst, the 32 prefetches of an f32
 * block fill the miss buffers and stall the arithmetic behind them (f32
 * MaxSim on rows gathered from a large store ran 20-65% slower that way).
 * The bf16 and int8 kernels keep their bursts (16 and 8 lines per block):
 * spreading them measured -20% to +8% depending on the FE mode. */
TRT_INLINE void trt_z_prefetch_step(const char *pf, size_t lines, size_t step, size_t steps, size_t *next) {
  for (size_t upto = pf ? (step + 1) * lines / steps : 0; *next < upto; ++*next) _mm_prefetch(pf + *next * 64, _MM_HINT_T0);
}

/* acc[m][n] = <user panel m lanes, item head n>; best[m] = max(best[m], max_n acc[m][n]).
 * ut: first panel at d = 0; vs: floats between panels; ih: first item head;
 * hs: elements between item heads. mr/nr are constants after inlining, so
 * the loops unroll and the accumulators stay in registers. */
TRT_INLINE void trt_z_tile(const float *ut, size_t vs, const float *ih, size_t hs, size_t dim,
                           float *best, const int mr, const int nr, const char *pf, size_t pf_lines) {
  size_t pf_next = 0;
  __m512 acc[TRT_Z_MR][TRT_Z_NR];
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++)
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) acc[m][n] = _mm512_setzero_ps();
  for (size_t d = 0; d < dim; d++) {
    __m512 u[TRT_Z_MR];
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++) u[m] = _mm512_load_ps(ut + (size_t)m * vs + d * TRT_Z_LANES);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) {
      __m512 b = _mm512_set1_ps(ih[(size_t)n * hs + d]);
#pragma GCC unroll 8
      for (int m = 0; m < mr; m++) acc[m][n] = _mm512_fmadd_ps(u[m], b, acc[m][n]);
    }
    trt_z_prefetch_step(pf, pf_lines, d, dim, &pf_next);
  }
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m512 r = _mm512_load_ps(best + m * TRT_Z_LANES);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) r = _mm512_max_ps(r, acc[m][n]);
    _mm512_store_ps(best + m * TRT_Z_LANES, r);
  }
}

/* One item head block (nr heads) against all n_panels user panels. */
/* pf (may be NULL): pf_bytes to prefetch during the first tile (the same
 * head block of the next candidate). */
TRT_INLINE void trt_z_head_block(const float *ut, size_t n_panels, size_t dim, const float *ih,
                                 size_t hs, float *best, const int nr, const void *pf, size_t pf_bytes) {
  size_t vs = dim * TRT_Z_LANES, v = 0, lines = (pf_bytes + 63) / 64;
  const char *p = (const char *)pf;
  for (; v + 3 <= n_panels; v += 3, p = NULL) trt_z_tile(ut + v * vs, vs, ih, hs, dim, best + v * TRT_Z_LANES, 3, nr, p, lines);
  if (n_panels - v == 2) trt_z_tile(ut + v * vs, vs, ih, hs, dim, best + v * TRT_Z_LANES, 2, nr, p, lines);
  if (n_panels - v == 1) trt_z_tile(ut + v * vs, vs, ih, hs, dim, best + v * TRT_Z_LANES, 1, nr, p, lines);
}

/* Heads in blocks of 8, then 4, 2, 1 for ragged head counts. */
static inline size_t trt_z_block_heads(size_t left) {
  return left >= 8 ? 8 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
}

TRT_INLINE void trt_z_best_fill(float *best, size_t n_panels) {
  for (size_t v = 0; v < n_panels; v++) _mm512_store_ps(best + v * TRT_Z_LANES, _mm512_set1_ps(-INFINITY));
}

/* Sum of best over the n_user valid lanes (padding lanes excluded by mask,
 * so they cannot leak even if an item held a non-finite value). */
TRT_INLINE float trt_z_best_sum(const float *best, size_t n_panels, size_t n_user) {
  __m512 s = _mm512_setzero_ps();
  for (size_t v = 0; v + 1 < n_panels; v++) s = _mm512_add_ps(s, _mm512_load_ps(best + v * TRT_Z_LANES));
  size_t tail = n_user - (n_panels - 1) * TRT_Z_LANES;
  __mmask16 m = (__mmask16)((1u << tail) - 1u);
  s = _mm512_mask_add_ps(s, m, s, _mm512_load_ps(best + (n_panels - 1) * TRT_Z_LANES));
  return _mm512_reduce_add_ps(s);
}

/* Driver hooks shared by the fp32 and widened-bf16 kernels (the prefix
 * trt_z_ is theirs: #define TRT_MS(x) trt_z_##x). */
static inline size_t trt_z_pass_panels(size_t dim) {
  if (dim > TRT_Z_PACK_FLOATS / TRT_Z_LANES) return 0;
  size_t pp = TRT_Z_PACK_FLOATS / (TRT_Z_LANES * dim);
  return pp < TRT_Z_MAX_PANELS ? pp : TRT_Z_MAX_PANELS;
}

static inline size_t trt_z_panel_bytes(size_t dim) { return dim * TRT_Z_LANES * sizeof(float); }

static inline void trt_z_best_init(const trt_ms_pass *ps, void *best) { trt_z_best_fill(best, ps->n_panels); }

static inline float trt_z_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  (void)c;
  return trt_z_best_sum(best, ps->n_panels, ps->n_user);
}

#define TRT_MS_LANES TRT_Z_LANES
#define TRT_MS_STACK_BYTES (TRT_Z_PACK_FLOATS * sizeof(float))
#define TRT_MS_BEST_BYTES (TRT_Z_MAX_PANELS * TRT_Z_LANES * sizeof(float))

#endif
