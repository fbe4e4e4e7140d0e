/* int8 batched MaxSim with the aarch64 dot-product extension (sdot by lane,
 * vdotq_laneq_s32: four s8 x s8 products summed into each int32 lane).
 * Semantics: kernels.h, trt_maxsim_u8s8_params.
 *
 * The user side is u8 but sdot is s8 x s8 (usdot, u8 x s8, needs the later
 * I8MM extension). Transformation: q' = q - 128 is an exact s8 for q in
 * 0..255, and since colsum[h] = sum_d item[h][d],
 *   sum_d q * item - zp * colsum = sum_d q' * item + (128 - zp) * colsum,
 * so the accumulators start at (128 - zp[u]) * colsum[h] and sdot adds the
 * q' products: bit-identical int32 results for the full u8 and s8 ranges
 * (|q' * item| <= 128 * 128, no saturation anywhere). This relies on the
 * colsum contract: the values the store holds are the true column sums.
 *
 * Layout: user heads packed [panel of 4][dpad/4][4 lanes][4 x s8], dims
 * zero-padded (q' = 0) to a multiple of 16; tile: 4 panels (16 user heads)
 * x 4 item heads = 16 int32x4 accumulators; per 16 dims it loads one
 * q-register per item head and 16 user vectors and does 64 sdot by lane
 * (1024 multiply-adds). A dim that is not a multiple of 16 goes through a
 * zero-padded copy of the item block, so no read passes the row. */
#include <arm_neon.h>
#include <string.h>

#include "../kernels.h"

#include "../inline.h"
#define LANES 4
#define MR 4
#define NR 4
#define PACK_BYTES 16384 /* packed user values on the stack (96 x 64 = 6 KiB) */
#define MAX_PANELS 128

typedef struct packed_user {
  const int8_t *ut;   /* [panel][dpad/4][4 lanes][4] */
  const int32_t *zp;  /* 128 - zp per lane, 0 in padding lanes */
  const float *scale; /* per lane, 0 in padding lanes */
  size_t n_panels, dpad;
} packed_user;

static void pack_user(const trt_maxsim_u8s8_params *p, size_t u0, size_t nu, size_t dpad, int8_t *ut,
                      int32_t *zp, float *scale) {
  size_t n_panels = (nu + LANES - 1) / LANES;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < LANES; l++) {
      size_t u = v * LANES + l;
      const uint8_t *src = p->user + (u0 + u) * p->dim;
      for (size_t d = 0; d < dpad; d++)
        ut[((v * dpad / 4 + d / 4) * LANES + l) * 4 + d % 4] = u < nu && d < p->dim ? (int8_t)((int)src[d] - 128) : 0;
      zp[v * LANES + l] = u < nu ? 128 - p->user_zp[u0 + u] : 0;
      scale[v * LANES + l] = u < nu ? p->user_scale[u0 + u] : 0.0f;
    }
}

/* The block as the tile reads it: in place when dim is a multiple of 16,
 * else a copy with each head zero-padded to dpad. */
static const int8_t *padded_heads(const int8_t *ih, size_t nr, size_t dim, size_t dpad, int8_t *buf) {
  if (dim == dpad) return ih;
  for (size_t n = 0; n < nr; n++) {
    memcpy(buf + n * dpad, ih + n * dim, dim);
    memset(buf + n * dpad + dim, 0, dpad - dim);
  }
  return buf;
}

/* Group G (dims d + 4G .. d + 4G + 3) of the 16 loaded; G must be a literal. */
#define GROUP_STEP(G)                                                                        \
  do {                                                                                       \
    int8x16_t u_[MR];                                                                        \
    _Pragma("GCC unroll 4") for (int m = 0; m < mr; m++) u_[m] =                            \
        vld1q_s8(ut + ((size_t)m * vs + d / 4 + (G)) * LANES * 4);                            \
    _Pragma("GCC unroll 4") for (int n = 0; n < nr; n++)                                     \
        _Pragma("GCC unroll 4") for (int m = 0; m < mr; m++) acc[m][n] =                    \
            vdotq_laneq_s32(acc[m][n], u_[m], iv[n], (G));                                    \
  } while (0)

TRT_INLINE void tile(const packed_user *pu, size_t v, const int8_t *ih, size_t hs,
                     const int32_t *colsum, int32_t *best, const int mr, const int nr) {
  size_t vs = pu->dpad / 4; /* groups per panel */
  const int8_t *ut = pu->ut + v * vs * LANES * 4;
  int32x4_t acc[MR][NR];
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++) {
    int32x4_t z = vld1q_s32(pu->zp + (v + (size_t)m) * LANES);
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) acc[m][n] = vmulq_n_s32(z, colsum[n]);
  }
  for (size_t d = 0; d < pu->dpad; d += 16) {
    int8x16_t iv[NR];
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) iv[n] = vld1q_s8(ih + (size_t)n * hs + d);
    GROUP_STEP(0);
    GROUP_STEP(1);
    GROUP_STEP(2);
    GROUP_STEP(3);
  }
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++) {
    int32_t *dst = best + (v + (size_t)m) * LANES;
    int32x4_t r = vld1q_s32(dst);
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) r = vmaxq_s32(r, acc[m][n]);
    vst1q_s32(dst, r);
  }
}

TRT_INLINE void head_block(const packed_user *pu, const int8_t *ih, size_t hs, const int32_t *colsum,
                           int32_t *best, const int nr) {
  size_t v = 0;
  for (; v + 4 <= pu->n_panels; v += 4) tile(pu, v, ih, hs, colsum, best, 4, nr);
  if (pu->n_panels - v >= 2) {
    tile(pu, v, ih, hs, colsum, best, 2, nr);
    v += 2;
  }
  if (pu->n_panels - v == 1) tile(pu, v, ih, hs, colsum, best, 1, nr);
}

static float score_one(const packed_user *pu, const trt_maxsim_u8s8_params *p, size_t row,
                       const int8_t *next, int32_t *best, int8_t *buf) {
  const int8_t *item = p->items + row * p->item_stride;
  const int32_t *colsum = p->colsum + row * p->colsum_stride;
  size_t dim = p->dim, dpad = pu->dpad, hs = dim == dpad ? dim : dpad;
  for (size_t i = 0; i < pu->n_panels * LANES; i++) best[i] = INT32_MIN;
  for (size_t h = 0; h < p->n_item; h += NR) {
    size_t nr = p->n_item - h < NR ? p->n_item - h : NR;
    if (next)
      for (size_t off = 0; off < nr * dim; off += 64) __builtin_prefetch(next + h * dim + off, 0, 3);
    const int8_t *ih = padded_heads(item + h * dim, nr, dim, dpad, buf);
    switch (nr) {
      case 4: head_block(pu, ih, hs, colsum + h, best, 4); break;
      case 3:
        head_block(pu, ih, hs, colsum + h, best, 2);
        head_block(pu, ih + 2 * hs, hs, colsum + h + 2, best, 1);
        break;
      case 2: head_block(pu, ih, hs, colsum + h, best, 2); break;
      default: head_block(pu, ih, hs, colsum + h, best, 1); break;
    }
  }
  /* term_u = (float)D_max[u] * (scale[u] * item_scale), as in the oracle. */
  float32x4_t s_item = vdupq_n_f32(p->item_scale[row]), sum = vdupq_n_f32(0.0f);
  for (size_t i = 0; i < pu->n_panels * LANES; i += 4)
    sum = vfmaq_f32(sum, vcvtq_f32_s32(vld1q_s32(best + i)), vmulq_f32(vld1q_f32(pu->scale + i), s_item));
  return vaddvq_f32(sum);
}

void trt_maxsim_u8s8_neondotprod(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k,
                                 float *scores) {
  size_t dpad = (p->dim + 15) / 16 * 16;
  if (!p->n_user || !p->n_item || !p->dim || dpad * LANES > PACK_BYTES) {
    trt_maxsim_u8s8_scalar(p, rows, k, scores);
    return;
  }
  int8_t ut[PACK_BYTES], buf[NR * (PACK_BYTES / LANES)];
  int32_t zp[MAX_PANELS * LANES], best[MAX_PANELS * LANES];
  float scale[MAX_PANELS * LANES];
  size_t pass_panels = PACK_BYTES / (dpad * LANES);
  if (pass_panels > MAX_PANELS) pass_panels = MAX_PANELS;
  for (size_t u0 = 0; u0 < p->n_user; u0 += pass_panels * LANES) {
    size_t nu = p->n_user - u0 < pass_panels * LANES ? p->n_user - u0 : pass_panels * LANES;
    pack_user(p, u0, nu, dpad, ut, zp, scale);
    packed_user pu = {ut, zp, scale, (nu + LANES - 1) / LANES, dpad};
    for (size_t c = 0; c < k; c++) {
      size_t row = rows ? (size_t)rows[c] : c;
      const int8_t *next = c + 1 < k ? p->items + (rows ? (size_t)rows[c + 1] : c + 1) * p->item_stride : NULL;
      float s = score_one(&pu, p, row, next, best, buf);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
