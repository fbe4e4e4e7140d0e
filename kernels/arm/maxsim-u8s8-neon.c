/* int8 batched MaxSim, plain aarch64 NEON (no dot-product instructions).
 * Semantics: kernels.h, trt_maxsim_u8s8_params.
 *
 * Both sides are widened to i16 (u8 user values 0..255 and s8 items fit)
 * and multiplied with smlal/smlal2 by lane (i16 x i16 -> i32, exact), so the
 * int32 results are bit-identical to the scalar oracle with no range limit.
 * User heads are widened once while packing, [panel of 8][dpad][8 lanes],
 * dims zero-padded to a multiple of 8; each block of 4 item heads is
 * widened once per candidate into a zero-padded stack buffer. Tile: 2
 * panels (16 user heads) x 4 item heads = 16 int32x4 accumulators (a low
 * and a high half per panel and head), each starting at -zp[u] * colsum[h]
 * so that it ends as the corrected dot product; per 8 dims it loads one
 * q-register per item head and 16 user vectors, and does 128 smlal. The max
 * over item heads is a vertical smax. The loops around the tile:
 * kernels/maxsim-driver.h; a packed panel is [dpad][8 lanes] i16, then -zp
 * and the scale of its 8 heads. */
#include <arm_neon.h>

#include "../kernels.h"
#include "../maxsim-pass.h"

#define LANES 8
#define MR 2
#define NR 4
#define PACK_HALVES 8192 /* packed i16 user values per pass (16 KiB; 96 x 64 fills 12 KiB) */
#define MAX_PANELS 64

static inline size_t dpad_of(size_t dim) { return (dim + 7) / 8 * 8; }

static inline size_t nq_pass_panels(size_t dim) {
  size_t dpad = dpad_of(dim);
  if (dpad * LANES > PACK_HALVES) return 0;
  size_t pp = PACK_HALVES / (dpad * LANES);
  return pp < MAX_PANELS ? pp : MAX_PANELS;
}

/* i16 values, then -zp per lane, then the scale per lane */
static inline size_t nq_panel_bytes(size_t dim) { return dpad_of(dim) * LANES * 2 + 2 * LANES * 4; }

static void nq_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  size_t dim = u->dim, dpad = dpad_of(dim);
  int16_t *ut = (int16_t *)(void *)panel;
  int32_t *nzp = (int32_t *)(void *)(panel + dpad * LANES * 2);
  float *scale = (float *)(void *)(panel + dpad * LANES * 2 + LANES * 4);
  for (size_t l = 0; l < LANES; l++) {
    const uint8_t *src = l < n ? (const uint8_t *)u->heads + (u0 + l) * dim : NULL;
    for (size_t d = 0; d < dpad; d++) ut[d * LANES + l] = l < n && d < dim ? (int16_t)src[d] : 0;
    nzp[l] = l < n ? -u->zp[u0 + l] : 0;
    scale[l] = l < n ? u->scale[u0 + l] : 0.0f;
  }
}

/* nr heads of dim s8 -> i16 rows of dpad (zero pad). */
static void widen(const int8_t *ih, size_t nr, size_t dim, size_t dpad, int16_t *buf) {
  for (size_t n = 0; n < nr; n++) {
    const int8_t *src = ih + n * dim;
    int16_t *dst = buf + n * dpad;
    size_t d = 0;
    for (; d + 8 <= dim; d += 8) vst1q_s16(dst + d, vmovl_s8(vld1_s8(src + d)));
    for (; d < dim; d++) dst[d] = src[d];
    for (; d < dpad; d++) dst[d] = 0;
  }
}

/* One dim of the 8 loaded (the lane must be a literal): both halves of
 * each user panel times item lane L. */
#define LANE_STEP(L)                                                                        \
  do {                                                                                       \
    int16x8_t u_[MR];                                                                        \
    _Pragma("GCC unroll 2") for (int m = 0; m < mr; m++) u_[m] =                            \
        vld1q_s16(ut + (size_t)m * vs + (d + (L)) * LANES);                                   \
    _Pragma("GCC unroll 4") for (int n = 0; n < nr; n++)                                     \
        _Pragma("GCC unroll 2") for (int m = 0; m < mr; m++) {                              \
      lo[m][n] = vmlal_laneq_s16(lo[m][n], vget_low_s16(u_[m]), iv[n], (L));                 \
      hi[m][n] = vmlal_high_laneq_s16(hi[m][n], u_[m], iv[n], (L));                          \
    }                                                                                        \
  } while (0)

TRT_INLINE void tile(const trt_ms_pass *ps, size_t v, const int16_t *buf, const int32_t *colsum, int32_t *best, const int mr,
                     const int nr) {
  size_t dpad = dpad_of(ps->dim), vs = ps->panel_bytes / 2, hs = dpad; /* vs: i16 values between panels */
  const int16_t *ut = (const int16_t *)(const void *)ps->panels + v * vs;
  int32x4_t lo[MR][NR], hi[MR][NR];
#pragma GCC unroll 2
  for (int m = 0; m < mr; m++) {
    const int32_t *nzp = (const int32_t *)(const void *)(ut + (size_t)m * vs + dpad * LANES);
    int32x4_t zl = vld1q_s32(nzp), zh = vld1q_s32(nzp + 4);
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) lo[m][n] = vmulq_n_s32(zl, colsum[n]), hi[m][n] = vmulq_n_s32(zh, colsum[n]);
  }
  for (size_t d = 0; d < dpad; d += 8) {
    int16x8_t iv[NR];
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) iv[n] = vld1q_s16(buf + (size_t)n * hs + d);
    LANE_STEP(0);
    LANE_STEP(1);
    LANE_STEP(2);
    LANE_STEP(3);
    LANE_STEP(4);
    LANE_STEP(5);
    LANE_STEP(6);
    LANE_STEP(7);
  }
#pragma GCC unroll 2
  for (int m = 0; m < mr; m++) {
    int32_t *dst = best + (v + (size_t)m) * LANES;
    int32x4_t rl = vld1q_s32(dst), rh = vld1q_s32(dst + 4);
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) rl = vmaxq_s32(rl, lo[m][n]), rh = vmaxq_s32(rh, hi[m][n]);
    vst1q_s32(dst, rl);
    vst1q_s32(dst + 4, rh);
  }
}

TRT_INLINE void head_block(const trt_ms_pass *ps, const int16_t *buf, const int32_t *colsum, int32_t *best, const int nr) {
  size_t v = 0;
  for (; v + 2 <= ps->n_panels; v += 2) tile(ps, v, buf, colsum, best, 2, nr);
  if (ps->n_panels - v == 1) tile(ps, v, buf, colsum, best, 1, nr);
}

static inline size_t nq_block_heads(size_t left) { return left < NR ? left : NR; }

static inline void nq_best_init(const trt_ms_pass *ps, void *best) {
  int32_t *b = best;
  for (size_t i = 0; i < ps->n_panels * LANES; i++) b[i] = INT32_MIN;
}

static inline void nq_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                            void *buf) {
  size_t dim = ps->dim, dpad = dpad_of(dim);
  const int32_t *cs = c->colsum + h;
  int16_t *b = buf;
  if (pf) trt_ms_prefetch(pf, nr * dim);
  widen((const int8_t *)c->heads + h * dim, nr, dim, dpad, b);
  switch (nr) {
    case 4: head_block(ps, b, cs, best, 4); break;
    case 3:
      head_block(ps, b, cs, best, 2);
      head_block(ps, b + 2 * dpad, cs + 2, best, 1);
      break;
    case 2: head_block(ps, b, cs, best, 2); break;
    default: head_block(ps, b, cs, best, 1); break;
  }
}

/* term_u = (float)D_max[u] * (scale[u] * item_scale), as in the oracle. */
static inline float nq_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  size_t scale_at = dpad_of(ps->dim) * LANES * 2 + LANES * 4;
  const int32_t *b = best;
  float32x4_t s_item = vdupq_n_f32(c->item_scale), sum = vdupq_n_f32(0.0f);
  for (size_t v = 0; v < ps->n_panels; v++) {
    const float *scale = (const float *)(const void *)(ps->panels + v * ps->panel_bytes + scale_at);
    for (size_t i = 0; i < LANES; i += 4)
      sum = vfmaq_f32(sum, vcvtq_f32_s32(vld1q_s32(b + v * LANES + i)), vmulq_f32(vld1q_f32(scale + i), s_item));
  }
  return vaddvq_f32(sum);
}

#define TRT_MS(x) nq_##x
#define TRT_MS_LANES LANES
#define TRT_MS_ITEM_BYTES 1
#define TRT_MS_STACK_BYTES (PACK_HALVES * 2 + MAX_PANELS * 2 * LANES * 4)
#define TRT_MS_BEST_BYTES (MAX_PANELS * LANES * 4)
#define TRT_MS_BUF_BYTES (NR * (PACK_HALVES / LANES) * 2)
#define TRT_MS_NAME trt_maxsim_u8s8_neon
#define TRT_MS_SCALAR trt_maxsim_u8s8_scalar
#define TRT_MS_U8S8 1
#include "../maxsim-driver.h"
