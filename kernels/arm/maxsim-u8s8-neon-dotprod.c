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
 * zero-padded copy of the item block, so no read passes the row. The
 * loops around the tile: kernels/maxsim-driver.h; a packed panel holds its
 * s8 values, then 128 - zp and the scale of its 4 heads. */
#include <arm_neon.h>
#include <string.h>

#include "../kernels.h"
#include "../maxsim-pass.h"

#define LANES 4
#define MR 4
#define NR 4
#define PACK_BYTES 16384 /* packed user values per pass (96 x 64 = 6 KiB) */
#define MAX_PANELS 128

static inline size_t dpad_of(size_t dim) { return (dim + 15) / 16 * 16; }

static inline size_t dq_pass_panels(size_t dim) {
  size_t dpad = dpad_of(dim);
  if (dpad * LANES > PACK_BYTES) return 0;
  size_t pp = PACK_BYTES / (dpad * LANES);
  return pp < MAX_PANELS ? pp : MAX_PANELS;
}

/* s8 values, then 128 - zp per lane, then the scale per lane (64 bytes: the
 * next panel stays 64-byte aligned) */
static inline size_t dq_panel_bytes(size_t dim) { return dpad_of(dim) * LANES + 64; }

static void dq_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  size_t dim = u->dim, dpad = dpad_of(dim);
  int8_t *ut = (int8_t *)panel;
  int32_t *zp = (int32_t *)(void *)(panel + dpad * LANES);
  float *scale = (float *)(void *)(panel + dpad * LANES + LANES * 4);
  memset(panel + dpad * LANES, 0, 64);
  for (size_t l = 0; l < LANES; l++) {
    const uint8_t *src = l < n ? (const uint8_t *)u->heads + (u0 + l) * dim : NULL;
    for (size_t d = 0; d < dpad; d++) ut[((d / 4) * LANES + l) * 4 + d % 4] = l < n && d < dim ? (int8_t)((int)src[d] - 128) : 0;
    zp[l] = l < n ? 128 - u->zp[u0 + l] : 0;
    scale[l] = l < n ? u->scale[u0 + l] : 0.0f;
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
        vld1q_s8(ut + (size_t)m * vs + (d / 4 + (G)) * LANES * 4);                            \
    _Pragma("GCC unroll 4") for (int n = 0; n < nr; n++)                                     \
        _Pragma("GCC unroll 4") for (int m = 0; m < mr; m++) acc[m][n] =                    \
            vdotq_laneq_s32(acc[m][n], u_[m], iv[n], (G));                                    \
  } while (0)

TRT_INLINE void tile(const trt_ms_pass *ps, size_t v, const int8_t *ih, size_t hs, const int32_t *colsum, int32_t *best,
                     const int mr, const int nr) {
  size_t dpad = dpad_of(ps->dim), vs = ps->panel_bytes; /* bytes between panels */
  const int8_t *ut = (const int8_t *)ps->panels + v * vs;
  int32x4_t acc[MR][NR];
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++) {
    int32x4_t z = vld1q_s32((const int32_t *)(const void *)(ut + (size_t)m * vs + dpad * LANES));
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) acc[m][n] = vmulq_n_s32(z, colsum[n]);
  }
  for (size_t d = 0; d < dpad; d += 16) {
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

TRT_INLINE void head_block(const trt_ms_pass *ps, const int8_t *ih, size_t hs, const int32_t *colsum, int32_t *best,
                           const int nr) {
  size_t v = 0;
  for (; v + 4 <= ps->n_panels; v += 4) tile(ps, v, ih, hs, colsum, best, 4, nr);
  if (ps->n_panels - v >= 2) {
    tile(ps, v, ih, hs, colsum, best, 2, nr);
    v += 2;
  }
  if (ps->n_panels - v == 1) tile(ps, v, ih, hs, colsum, best, 1, nr);
}

static inline size_t dq_block_heads(size_t left) { return left < NR ? left : NR; }

static inline void dq_best_init(const trt_ms_pass *ps, void *best) {
  int32_t *b = best;
  for (size_t i = 0; i < ps->n_panels * LANES; i++) b[i] = INT32_MIN;
}

static inline void dq_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                            void *buf) {
  size_t dim = ps->dim, dpad = dpad_of(dim), hs = dim == dpad ? dim : dpad;
  const int32_t *cs = c->colsum + h;
  if (pf) trt_ms_prefetch(pf, nr * dim);
  const int8_t *ih = padded_heads((const int8_t *)c->heads + h * dim, nr, dim, dpad, buf);
  switch (nr) {
    case 4: head_block(ps, ih, hs, cs, best, 4); break;
    case 3:
      head_block(ps, ih, hs, cs, best, 2);
      head_block(ps, ih + 2 * hs, hs, cs + 2, best, 1);
      break;
    case 2: head_block(ps, ih, hs, cs, best, 2); break;
    default: head_block(ps, ih, hs, cs, best, 1); break;
  }
}

/* term_u = (float)D_max[u] * (scale[u] * item_scale), as in the oracle. */
static inline float dq_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  size_t scale_at = dpad_of(ps->dim) * LANES + LANES * 4;
  const int32_t *b = best;
  float32x4_t s_item = vdupq_n_f32(c->item_scale), sum = vdupq_n_f32(0.0f);
  for (size_t v = 0; v < ps->n_panels; v++) {
    const float *scale = (const float *)(const void *)(ps->panels + v * ps->panel_bytes + scale_at);
    sum = vfmaq_f32(sum, vcvtq_f32_s32(vld1q_s32(b + v * LANES)), vmulq_f32(vld1q_f32(scale), s_item));
  }
  return vaddvq_f32(sum);
}

#define TRT_MS(x) dq_##x
#define TRT_MS_LANES LANES
#define TRT_MS_ITEM_BYTES 1
#define TRT_MS_STACK_BYTES (PACK_BYTES + MAX_PANELS * 64)
#define TRT_MS_BEST_BYTES (MAX_PANELS * LANES * 4)
#define TRT_MS_BUF_BYTES (NR * (PACK_BYTES / LANES))
#define TRT_MS_NAME trt_maxsim_u8s8_neondotprod
#define TRT_MS_SCALAR trt_maxsim_u8s8_scalar
#define TRT_MS_U8S8 1
#include "../maxsim-driver.h"
