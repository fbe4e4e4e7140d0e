/* int8 batched MaxSim with the aarch64 int8 matrix-multiply extension
 * (FEAT_I8MM: usmmla, vusmmlaq_s32). Semantics: kernels.h,
 * trt_maxsim_u8s8_params.
 *
 * usmmla multiplies a 2x8 u8 matrix by the transpose of a 2x8 s8 matrix
 * into a 2x2 int32 block: 32 multiply-adds per instruction, twice sdot's
 * 16. The A operand is two user heads x 8 dims, the B operand two item
 * heads x 8 dims, so each result lane is a partial dot product of one
 * (user head, item head) pair. usmmla takes u8 x s8 directly: no q - 128
 * flip (unlike the dotprod kernel), the accumulators start at the
 * zero-point term -zp[u] * colsum[h] and end as the exact int32 D[u][h].
 *
 * Layout: user heads packed in pairs [pair][dpad/8][2 heads][8 u8], dims
 * zero-padded to a multiple of 8 (a zero u8 with any item value adds 0);
 * per candidate, each block of up to 8 item heads is packed the same way
 * [pair][dpad/8][2][8] s8 (zero-padded dims; an odd last head is paired
 * with a zero head whose lanes are masked out of the max). Tile: MR = 4
 * user pairs x NR = 4 item pairs = 16 accumulators (8 x 8 heads); per 8
 * dims it loads 4 A and 4 B registers and issues 16 usmmla (512
 * multiply-adds). The max over item heads is a vertical max per pair of
 * lanes, folded by one pairwise max per candidate. The loops around the
 * tile: kernels/maxsim-driver.h, with a pair of user heads as its panel
 * (the pair's u8 values, then -zp per result lane and the two scales). */
#include <arm_neon.h>
#include <string.h>

#include "../kernels.h"
#include "../maxsim-pass.h"

#define MR 4            /* user pairs per tile */
#define NR 4            /* item pairs per tile */
#define PACK_BYTES 16384 /* packed user heads per pass (96 x 64 = 6 KiB) */
#define MAX_DPAD 2048   /* bounds the packed item block (8 x 2048 bytes) */
#define MAX_PAIRS 256   /* user pairs per pass */

static inline size_t dpad_of(size_t dim) { return (dim + 7) / 8 * 8; }

static inline size_t mm_pass_panels(size_t dim) {
  size_t dpad = dpad_of(dim);
  if (dpad > MAX_DPAD) return 0;
  size_t pp = PACK_BYTES / (dpad * 2);
  return pp < MAX_PAIRS ? pp : MAX_PAIRS;
}

/* [dpad/8][2][8] u8, then -zp per result lane (4 x int32), then the two
 * scales (and 8 bytes of padding) */
static inline size_t mm_panel_bytes(size_t dim) { return dpad_of(dim) * 2 + 32; }

static void mm_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  size_t dim = u->dim, dpad = dpad_of(dim);
  int32_t *nzp = (int32_t *)(void *)(panel + dpad * 2);
  float *scale = (float *)(void *)(panel + dpad * 2 + 16);
  memset(panel + dpad * 2, 0, 32);
  for (size_t l = 0; l < 2; l++) {
    const uint8_t *src = l < n ? (const uint8_t *)u->heads + (u0 + l) * dim : NULL;
    for (size_t d = 0; d < dpad; d++) panel[(d / 8) * 16 + l * 8 + d % 8] = l < n && d < dim ? src[d] : 0;
    int32_t z = l < n ? -u->zp[u0 + l] : 0;
    nzp[l * 2] = z, nzp[l * 2 + 1] = z;
    scale[l] = l < n ? u->scale[u0 + l] : 0.0f;
  }
}

/* nh (1..8) item heads of dim s8 -> pairs [pair][dpad/8][2][8]; cs[pair] =
 * colsums as [c0, c1, c0, c1]; keep[pair] = all ones but in the lanes of a
 * missing odd head. */
static void pack_items(const int8_t *ih, const int32_t *colsum, size_t nh, size_t dim, size_t dpad, int8_t *ib,
                       int32x4_t *cs, uint32x4_t *keep) {
  size_t n_pairs = (nh + 1) / 2;
  for (size_t v = 0; v < n_pairs; v++) {
    for (size_t l = 0; l < 2; l++) {
      size_t h = v * 2 + l;
      int8_t *dst = ib + v * dpad * 2 + l * 8;
      if (h >= nh) {
        for (size_t d = 0; d < dpad; d += 8) memset(dst + d * 2, 0, 8);
        continue;
      }
      const int8_t *src = ih + h * dim;
      size_t d = 0;
      for (; d + 8 <= dim; d += 8) memcpy(dst + d * 2, src + d, 8);
      if (d < dpad) {
        memset(dst + d * 2, 0, 8);
        memcpy(dst + d * 2, src + d, dim - d);
      }
    }
    int32_t c0 = colsum[v * 2], c1 = v * 2 + 1 < nh ? colsum[v * 2 + 1] : 0;
    int32_t c[4] = {c0, c1, c0, c1};
    uint32_t k1 = v * 2 + 1 < nh ? UINT32_MAX : 0, k[4] = {UINT32_MAX, k1, UINT32_MAX, k1};
    cs[v] = vld1q_s32(c), keep[v] = vld1q_u32(k);
  }
}

/* best[m] = max(best[m], blocks of user pair m x item pairs 0..nr-1);
 * ua: the first pair, ps: bytes between pairs. */
TRT_INLINE void tile(const uint8_t *ua, size_t ps, size_t dpad, const int8_t *ib, const int32x4_t *cs, const uint32x4_t *keep,
                     int32x4_t *best, const int mr, const int nr, const int odd) {
  const size_t is = dpad * 2; /* bytes between item pairs */
  int32x4_t acc[MR][NR];
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++) {
    int32x4_t z = vld1q_s32((const int32_t *)(const void *)(ua + (size_t)m * ps + dpad * 2));
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) acc[m][n] = vmulq_s32(z, cs[n]);
  }
#pragma GCC unroll 2
  for (size_t d = 0; d < dpad; d += 8) {
    int8x16_t b[NR];
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) b[n] = vld1q_s8(ib + (size_t)n * is + d * 2);
#pragma GCC unroll 4
    for (int m = 0; m < mr; m++) {
      uint8x16_t a = vld1q_u8(ua + (size_t)m * ps + d * 2);
#pragma GCC unroll 4
      for (int n = 0; n < nr; n++) acc[m][n] = vusmmlaq_s32(acc[m][n], a, b[n]);
    }
  }
  const int32x4_t lowest = vdupq_n_s32(INT32_MIN);
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++)
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++)
      best[m] = vmaxq_s32(best[m], odd && n == nr - 1 ? vbslq_s32(*keep, acc[m][n], lowest) : acc[m][n]);
}

TRT_INLINE void pairs_block(const trt_ms_pass *ps, const int8_t *ib, const int32x4_t *cs, const uint32x4_t *keep,
                            int32x4_t *best, const int nr, const int odd) {
  size_t v = 0, pb = ps->panel_bytes, dpad = dpad_of(ps->dim), n_pairs = ps->n_panels;
  const uint8_t *ua = ps->panels;
  for (; v + MR <= n_pairs; v += MR) tile(ua + v * pb, pb, dpad, ib, cs, keep, best + v, MR, nr, odd);
  switch (n_pairs - v) {
    case 3: tile(ua + v * pb, pb, dpad, ib, cs, keep, best + v, 3, nr, odd); break;
    case 2: tile(ua + v * pb, pb, dpad, ib, cs, keep, best + v, 2, nr, odd); break;
    case 1: tile(ua + v * pb, pb, dpad, ib, cs, keep, best + v, 1, nr, odd); break;
    default: break;
  }
}

static inline size_t mm_block_heads(size_t left) { return left < 2 * NR ? left : 2 * NR; }

static inline void mm_best_init(const trt_ms_pass *ps, void *best) {
  int32x4_t *b = best;
  for (size_t v = 0; v < ps->n_panels; v++) b[v] = vdupq_n_s32(INT32_MIN);
}

static inline void mm_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nh, const void *pf, void *best,
                            void *buf) {
  size_t dim = ps->dim;
  int32x4_t cs[NR];
  uint32x4_t keep[NR];
  if (pf) trt_ms_prefetch(pf, nh * dim);
  pack_items((const int8_t *)c->heads + h * dim, c->colsum + h, nh, dim, dpad_of(dim), buf, cs, keep);
  /* the keep mask matters only for an odd head count's last pair */
#define PAIRS(nr) (nh & 1 ? pairs_block(ps, buf, cs, keep + (nr) - 1, best, nr, 1) : pairs_block(ps, buf, cs, keep, best, nr, 0))
  switch ((nh + 1) / 2) {
    case 4: PAIRS(4); break;
    case 3: PAIRS(3); break;
    case 2: PAIRS(2); break;
    default: PAIRS(1); break;
  }
#undef PAIRS
}

/* best[v] lanes: u0 x (even, odd heads), u1 x (even, odd): fold pairs of
 * lanes, then term_u = (float)D_max[u] * (scale[u] * item_scale) as in
 * the oracle. */
static inline float mm_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  const int32x4_t *b = best;
  size_t n_pairs = ps->n_panels, scale_at = dpad_of(ps->dim) * 2 + 16;
  float32x4_t s_item = vdupq_n_f32(c->item_scale), sum = vdupq_n_f32(0.0f);
  size_t v = 0;
  for (; v + 2 <= n_pairs; v += 2) {
    int32x4_t m4 = vpmaxq_s32(b[v], b[v + 1]); /* u 4v/2 .. +3 */
    float32x2_t s0 = vld1_f32((const float *)(const void *)(ps->panels + v * ps->panel_bytes + scale_at));
    float32x2_t s1 = vld1_f32((const float *)(const void *)(ps->panels + (v + 1) * ps->panel_bytes + scale_at));
    sum = vfmaq_f32(sum, vcvtq_f32_s32(m4), vmulq_f32(vcombine_f32(s0, s1), s_item));
  }
  float total = vaddvq_f32(sum);
  if (v < n_pairs) {
    int32_t m[4];
    const float *us = (const float *)(const void *)(ps->panels + v * ps->panel_bytes + scale_at);
    vst1q_s32(m, b[v]);
    float si = c->item_scale;
    total += (float)(m[0] > m[1] ? m[0] : m[1]) * (us[0] * si);
    if (v * 2 + 1 < ps->n_user) total += (float)(m[2] > m[3] ? m[2] : m[3]) * (us[1] * si);
  }
  return total;
}

#define TRT_MS(x) mm_##x
#define TRT_MS_LANES 2
#define TRT_MS_ITEM_BYTES 1
#define TRT_MS_STACK_BYTES (PACK_BYTES + MAX_PAIRS * 32)
#define TRT_MS_BEST_BYTES (MAX_PAIRS * 16)
#define TRT_MS_BUF_BYTES (2 * NR * MAX_DPAD)
#define TRT_MS_NAME trt_maxsim_u8s8_neoni8mm
#define TRT_MS_SCALAR trt_maxsim_u8s8_scalar
#define TRT_MS_U8S8 1
#include "../maxsim-driver.h"
