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
 * over item heads is a vertical smax. */
#include <arm_neon.h>

#include "../kernels.h"

#include "../inline.h"
#define LANES 8
#define MR 2
#define NR 4
#define PACK_HALVES 8192 /* packed i16 user values on the stack (16 KiB; 96 x 64 fills 12 KiB) */
#define MAX_PANELS 64

typedef struct packed_user {
  const int16_t *ut;  /* [panel][dpad][8] */
  const int32_t *nzp; /* -zp per lane, 0 in padding lanes */
  const float *scale; /* per lane, 0 in padding lanes */
  size_t n_panels, dpad;
} packed_user;

static void pack_user(const trt_maxsim_u8s8_params *p, size_t u0, size_t nu, size_t dpad, int16_t *ut,
                      int32_t *nzp, float *scale) {
  size_t n_panels = (nu + LANES - 1) / LANES;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < LANES; l++) {
      size_t u = v * LANES + l;
      const uint8_t *src = p->user + (u0 + u) * p->dim;
      for (size_t d = 0; d < dpad; d++) ut[(v * dpad + d) * LANES + l] = u < nu && d < p->dim ? (int16_t)src[d] : 0;
      nzp[v * LANES + l] = u < nu ? -p->user_zp[u0 + u] : 0;
      scale[v * LANES + l] = u < nu ? p->user_scale[u0 + u] : 0.0f;
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

TRT_INLINE void tile(const packed_user *pu, size_t v, const int16_t *buf, const int32_t *colsum,
                     int32_t *best, const int mr, const int nr) {
  size_t vs = pu->dpad * LANES, hs = pu->dpad;
  const int16_t *ut = pu->ut + v * vs;
  int32x4_t lo[MR][NR], hi[MR][NR];
#pragma GCC unroll 2
  for (int m = 0; m < mr; m++) {
    int32x4_t zl = vld1q_s32(pu->nzp + (v + (size_t)m) * LANES), zh = vld1q_s32(pu->nzp + (v + (size_t)m) * LANES + 4);
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) lo[m][n] = vmulq_n_s32(zl, colsum[n]), hi[m][n] = vmulq_n_s32(zh, colsum[n]);
  }
  for (size_t d = 0; d < pu->dpad; d += 8) {
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

TRT_INLINE void head_block(const packed_user *pu, const int16_t *buf, const int32_t *colsum,
                           int32_t *best, const int nr) {
  size_t v = 0;
  for (; v + 2 <= pu->n_panels; v += 2) tile(pu, v, buf, colsum, best, 2, nr);
  if (pu->n_panels - v == 1) tile(pu, v, buf, colsum, best, 1, nr);
}

static float score_one(const packed_user *pu, const trt_maxsim_u8s8_params *p, size_t row,
                       const int8_t *next, int32_t *best, int16_t *buf) {
  const int8_t *item = p->items + row * p->item_stride;
  const int32_t *colsum = p->colsum + row * p->colsum_stride;
  size_t dim = p->dim, dpad = pu->dpad;
  for (size_t i = 0; i < pu->n_panels * LANES; i++) best[i] = INT32_MIN;
  for (size_t h = 0; h < p->n_item; h += NR) {
    size_t nr = p->n_item - h < NR ? p->n_item - h : NR;
    if (next)
      for (size_t off = 0; off < nr * dim; off += 64) __builtin_prefetch(next + h * dim + off, 0, 3);
    widen(item + h * dim, nr, dim, dpad, buf);
    switch (nr) {
      case 4: head_block(pu, buf, colsum + h, best, 4); break;
      case 3:
        head_block(pu, buf, colsum + h, best, 2);
        head_block(pu, buf + 2 * dpad, colsum + h + 2, best, 1);
        break;
      case 2: head_block(pu, buf, colsum + h, best, 2); break;
      default: head_block(pu, buf, colsum + h, best, 1); break;
    }
  }
  /* term_u = (float)D_max[u] * (scale[u] * item_scale), as in the oracle. */
  float32x4_t s_item = vdupq_n_f32(p->item_scale[row]), sum = vdupq_n_f32(0.0f);
  for (size_t i = 0; i < pu->n_panels * LANES; i += 4)
    sum = vfmaq_f32(sum, vcvtq_f32_s32(vld1q_s32(best + i)), vmulq_f32(vld1q_f32(pu->scale + i), s_item));
  return vaddvq_f32(sum);
}

void trt_maxsim_u8s8_neon(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k,
                          float *scores) {
  size_t dpad = (p->dim + 7) / 8 * 8;
  if (!p->n_user || !p->n_item || !p->dim || dpad * LANES > PACK_HALVES) {
    trt_maxsim_u8s8_scalar(p, rows, k, scores);
    return;
  }
  int16_t ut[PACK_HALVES], buf[NR * (PACK_HALVES / LANES)];
  int32_t nzp[MAX_PANELS * LANES], best[MAX_PANELS * LANES];
  float scale[MAX_PANELS * LANES];
  size_t pass_panels = PACK_HALVES / (dpad * LANES);
  if (pass_panels > MAX_PANELS) pass_panels = MAX_PANELS;
  for (size_t u0 = 0; u0 < p->n_user; u0 += pass_panels * LANES) {
    size_t nu = p->n_user - u0 < pass_panels * LANES ? p->n_user - u0 : pass_panels * LANES;
    pack_user(p, u0, nu, dpad, ut, nzp, scale);
    packed_user pu = {ut, nzp, scale, (nu + LANES - 1) / LANES, dpad};
    for (size_t c = 0; c < k; c++) {
      size_t row = rows ? (size_t)rows[c] : c;
      const int8_t *next = c + 1 < k ? p->items + (rows ? (size_t)rows[c + 1] : c + 1) * p->item_stride : NULL;
      float s = score_one(&pu, p, row, next, best, buf);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
