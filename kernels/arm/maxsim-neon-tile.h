/* Shared by maxsim-f32-neon.c and maxsim-bf16-neon.c (aarch64 NEON): the
 * fp32 MaxSim register tile, the NEON twin of kernels/x86/maxsim-avx512-tile.h,
 * and the driver hooks (kernels/maxsim-driver.h) both use. Internal to
 * kernels/arm.
 *
 * User heads are packed into panels of 4 heads, [panel][dpad][4 lanes],
 * dims padded with zeros to a multiple of 4 (dpad). A tile is MR = 4 panels
 * (16 user heads) x NR = 4 item heads = 16 accumulators; per 4 dims it loads
 * one q-register of each item head (4 dims) and 16 user vectors, and does 64
 * fmla-by-lane (vfmaq_laneq_f32), so the item values never need a broadcast.
 * Each lane is one full dot product, so the max over item heads is a
 * vertical fmax and the only horizontal reduction is the final sum over user
 * heads, once per candidate. Item heads are read 4 dims at a time: a dim
 * that is not a multiple of 4 goes through a zero-padded copy of the block,
 * so no read passes the item row. */
#ifndef TRT_MAXSIM_NEON_TILE_H
#define TRT_MAXSIM_NEON_TILE_H

#include <arm_neon.h>
#include <math.h>
#include <stddef.h>
#include <stdint.h>

#include "../maxsim-pass.h"

#define TRT_N_LANES 4
#define TRT_N_MR 4
#define TRT_N_NR 4
/* A pass holds 8192 floats (32 KiB) of packed user heads, the reference
 * 96 x 64 in one pass; dim > 1024 falls back to scalar (and bounds the
 * padded item block buffer, 4 x 1024 floats). */
#define TRT_N_PACK_FLOATS 8192
#define TRT_N_MAX_DIM 1024
#define TRT_N_MAX_PANELS 128 /* panels per pass: bounds the best[] array */


/* One dim of the 4 loaded: the lane index must be a literal for fmla. */
#define TRT_N_LANE_STEP(L)                                                              \
  do {                                                                                   \
    float32x4_t u_[TRT_N_MR];                                                            \
    _Pragma("GCC unroll 4") for (int m = 0; m < mr; m++) u_[m] =                        \
        vld1q_f32(ut + (size_t)m * vs + (d + (L)) * TRT_N_LANES);                         \
    _Pragma("GCC unroll 4") for (int n = 0; n < nr; n++)                                 \
        _Pragma("GCC unroll 4") for (int m = 0; m < mr; m++) acc[m][n] =                \
            vfmaq_laneq_f32(acc[m][n], u_[m], iv[n], (L));                               \
  } while (0)

/* best[m] = max(best[m], max_n <user panel m, item head n>). ut: first
 * panel; vs: floats between panels; ih: first item head, hs: its stride;
 * dpad: dims, a multiple of 4 (the item heads have dpad readable values). */
TRT_INLINE void trt_n_tile(const float *ut, size_t vs, const float *ih, size_t hs, size_t dpad,
                           float *best, const int mr, const int nr) {
  float32x4_t acc[TRT_N_MR][TRT_N_NR];
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++)
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) acc[m][n] = vdupq_n_f32(0.0f);
  for (size_t d = 0; d < dpad; d += 4) {
    float32x4_t iv[TRT_N_NR];
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) iv[n] = vld1q_f32(ih + (size_t)n * hs + d);
    TRT_N_LANE_STEP(0);
    TRT_N_LANE_STEP(1);
    TRT_N_LANE_STEP(2);
    TRT_N_LANE_STEP(3);
  }
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++) {
    float32x4_t r = vld1q_f32(best + m * TRT_N_LANES);
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) r = vmaxq_f32(r, acc[m][n]);
    vst1q_f32(best + m * TRT_N_LANES, r);
  }
}

/* One item head block (nr heads) against all n_panels user panels. */
TRT_INLINE void trt_n_head_block(const float *ut, size_t n_panels, size_t dpad, const float *ih,
                                 size_t hs, float *best, const int nr) {
  size_t vs = dpad * TRT_N_LANES, v = 0;
  for (; v + 4 <= n_panels; v += 4) trt_n_tile(ut + v * vs, vs, ih, hs, dpad, best + v * TRT_N_LANES, 4, nr);
  if (n_panels - v >= 2) {
    trt_n_tile(ut + v * vs, vs, ih, hs, dpad, best + v * TRT_N_LANES, 2, nr);
    v += 2;
  }
  if (n_panels - v == 1) trt_n_tile(ut + v * vs, vs, ih, hs, dpad, best + v * TRT_N_LANES, 1, nr);
}

/* All heads of one item block: 4, or 2 + 1 for ragged head counts. */
TRT_INLINE void trt_n_heads(const float *ut, size_t n_panels, size_t dpad, const float *ih,
                            size_t hs, size_t nr, float *best) {
  switch (nr) {
    case 4: trt_n_head_block(ut, n_panels, dpad, ih, hs, best, 4); break;
    case 3:
      trt_n_head_block(ut, n_panels, dpad, ih, hs, best, 2);
      trt_n_head_block(ut, n_panels, dpad, ih + 2 * hs, hs, best, 1);
      break;
    case 2: trt_n_head_block(ut, n_panels, dpad, ih, hs, best, 2); break;
    default: trt_n_head_block(ut, n_panels, dpad, ih, hs, best, 1); break;
  }
}

TRT_INLINE void trt_n_best_fill(float *best, size_t n_panels) {
  for (size_t v = 0; v < n_panels; v++) vst1q_f32(best + v * TRT_N_LANES, vdupq_n_f32(-INFINITY));
}

/* Sum of best over the n_user valid lanes; padding lanes are masked out. */
TRT_INLINE float trt_n_best_sum(const float *best, size_t n_panels, size_t n_user) {
  float32x4_t s = vdupq_n_f32(0.0f);
  for (size_t v = 0; v + 1 < n_panels; v++) s = vaddq_f32(s, vld1q_f32(best + v * TRT_N_LANES));
  static const uint32_t lane[4] = {0, 1, 2, 3};
  uint32x4_t keep = vcltq_u32(vld1q_u32(lane), vdupq_n_u32((uint32_t)(n_user - (n_panels - 1) * TRT_N_LANES)));
  float32x4_t last = vreinterpretq_f32_u32(vandq_u32(keep, vreinterpretq_u32_f32(vld1q_f32(best + (n_panels - 1) * TRT_N_LANES))));
  return vaddvq_f32(vaddq_f32(s, last));
}

/* Driver hooks shared by the fp32 and widened-bf16 kernels (the prefix
 * trt_n_ is theirs: #define TRT_MS(x) trt_n_##x). dpad: dim rounded up
 * to a multiple of 4. */
static inline size_t trt_n_dpad(size_t dim) { return (dim + 3) / 4 * 4; }

static inline size_t trt_n_pass_panels(size_t dim) {
  size_t dpad = trt_n_dpad(dim);
  if (dpad > TRT_N_MAX_DIM) return 0;
  size_t pp = TRT_N_PACK_FLOATS / (TRT_N_LANES * dpad);
  return pp < TRT_N_MAX_PANELS ? pp : TRT_N_MAX_PANELS;
}

static inline size_t trt_n_panel_bytes(size_t dim) { return trt_n_dpad(dim) * TRT_N_LANES * sizeof(float); }

static inline size_t trt_n_block_heads(size_t left) { return left < TRT_N_NR ? left : TRT_N_NR; }

static inline void trt_n_best_init(const trt_ms_pass *ps, void *best) { trt_n_best_fill(best, ps->n_panels); }

static inline float trt_n_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  (void)c;
  return trt_n_best_sum(best, ps->n_panels, ps->n_user);
}

#define TRT_MS_LANES TRT_N_LANES
#define TRT_MS_STACK_BYTES (TRT_N_PACK_FLOATS * sizeof(float))
#define TRT_MS_BEST_BYTES (TRT_N_MAX_PANELS * TRT_N_LANES * sizeof(float))
#define TRT_MS_BUF_BYTES (TRT_N_NR * TRT_N_MAX_DIM * sizeof(float))

#endif
