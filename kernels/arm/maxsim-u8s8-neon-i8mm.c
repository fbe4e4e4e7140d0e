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
 * lanes, folded by one pairwise max per candidate. */
#include <arm_neon.h>
#include <string.h>

#include "../kernels.h"

#include "../inline.h"
#define MR 4            /* user pairs per tile */
#define NR 4            /* item pairs per tile */
#define PACK_BYTES 16384 /* packed user heads on the stack (96 x 64 = 6 KiB) */
#define MAX_DPAD 2048   /* bounds the packed item block (8 x 2048 bytes) */
#define MAX_PAIRS 256   /* user pairs per pass */

typedef struct packed_user {
  const uint8_t *ua;   /* [pair][dpad/8][2][8] */
  const int32_t *nzp;  /* per pair: -zp[u0], -zp[u0], -zp[u1], -zp[u1] */
  size_t n_pairs, dpad;
} packed_user;

static void pack_user(const trt_maxsim_u8s8_params *p, size_t u0, size_t nu, size_t dpad, uint8_t *ua, int32_t *nzp) {
  size_t n_pairs = (nu + 1) / 2;
  for (size_t v = 0; v < n_pairs; v++)
    for (size_t l = 0; l < 2; l++) {
      size_t u = v * 2 + l;
      const uint8_t *src = p->user + (u0 + u) * p->dim;
      for (size_t d = 0; d < dpad; d++) ua[(v * dpad / 8 + d / 8) * 16 + l * 8 + d % 8] = u < nu && d < p->dim ? src[d] : 0;
      int32_t z = u < nu ? -p->user_zp[u0 + u] : 0;
      nzp[v * 4 + l * 2] = z, nzp[v * 4 + l * 2 + 1] = z;
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

/* best[m] = max(best[m], blocks of user pair m x item pairs 0..nr-1). */
TRT_INLINE void tile(const uint8_t *ua, size_t dpad, const int32_t *nzp, const int8_t *ib, const int32x4_t *cs,
                     const uint32x4_t *keep, int32x4_t *best, const int mr, const int nr, const int odd) {
  const size_t ps = dpad * 2; /* bytes between pairs */
  int32x4_t acc[MR][NR];
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++) {
    int32x4_t z = vld1q_s32(nzp + m * 4);
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) acc[m][n] = vmulq_s32(z, cs[n]);
  }
#pragma GCC unroll 2
  for (size_t d = 0; d < dpad; d += 8) {
    int8x16_t b[NR];
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) b[n] = vld1q_s8(ib + (size_t)n * ps + d * 2);
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

TRT_INLINE void pairs_block(const packed_user *pu, const int8_t *ib, const int32x4_t *cs, const uint32x4_t *keep,
                            int32x4_t *best, const int nr, const int odd) {
  size_t v = 0, ps = pu->dpad * 2;
  for (; v + MR <= pu->n_pairs; v += MR) tile(pu->ua + v * ps, pu->dpad, pu->nzp + v * 4, ib, cs, keep, best + v, MR, nr, odd);
  switch (pu->n_pairs - v) {
    case 3: tile(pu->ua + v * ps, pu->dpad, pu->nzp + v * 4, ib, cs, keep, best + v, 3, nr, odd); break;
    case 2: tile(pu->ua + v * ps, pu->dpad, pu->nzp + v * 4, ib, cs, keep, best + v, 2, nr, odd); break;
    case 1: tile(pu->ua + v * ps, pu->dpad, pu->nzp + v * 4, ib, cs, keep, best + v, 1, nr, odd); break;
    default: break;
  }
}

static float score_one(const packed_user *pu, const trt_maxsim_u8s8_params *p, size_t nu, const float *uscale, size_t row,
                       const int8_t *next, int32x4_t *best, int8_t *ib) {
  const int8_t *item = p->items + row * p->item_stride;
  const int32_t *colsum = p->colsum + row * p->colsum_stride;
  for (size_t v = 0; v < pu->n_pairs; v++) best[v] = vdupq_n_s32(INT32_MIN);
  for (size_t h = 0; h < p->n_item; h += 2 * NR) {
    size_t nh = p->n_item - h < 2 * NR ? p->n_item - h : 2 * NR;
    if (next)
      for (size_t off = 0; off < nh * p->dim; off += 64) __builtin_prefetch(next + h * p->dim + off, 0, 3);
    int32x4_t cs[NR];
    uint32x4_t keep[NR];
    pack_items(item + h * p->dim, colsum + h, nh, p->dim, pu->dpad, ib, cs, keep);
    /* the keep mask matters only for an odd head count's last pair */
#define PAIRS(nr) (nh & 1 ? pairs_block(pu, ib, cs, keep + (nr) - 1, best, nr, 1) : pairs_block(pu, ib, cs, keep, best, nr, 0))
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
  float32x4_t s_item = vdupq_n_f32(p->item_scale[row]), sum = vdupq_n_f32(0.0f);
  size_t v = 0;
  for (; v + 2 <= pu->n_pairs; v += 2) {
    int32x4_t m4 = vpmaxq_s32(best[v], best[v + 1]); /* u 4v/2 .. +3 */
    sum = vfmaq_f32(sum, vcvtq_f32_s32(m4), vmulq_f32(vld1q_f32(uscale + v * 2), s_item));
  }
  float total = vaddvq_f32(sum);
  if (v < pu->n_pairs) {
    int32_t m[4];
    vst1q_s32(m, best[v]);
    float si = p->item_scale[row];
    total += (float)(m[0] > m[1] ? m[0] : m[1]) * (uscale[v * 2] * si);
    if (v * 2 + 1 < nu) total += (float)(m[2] > m[3] ? m[2] : m[3]) * (uscale[v * 2 + 1] * si);
  }
  return total;
}

void trt_maxsim_u8s8_neoni8mm(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k, float *scores) {
  size_t dpad = (p->dim + 7) / 8 * 8;
  if (!p->n_user || !p->n_item || !p->dim || dpad > MAX_DPAD) {
    trt_maxsim_u8s8_scalar(p, rows, k, scores);
    return;
  }
  uint8_t ua[PACK_BYTES];
  int8_t ib[2 * NR * MAX_DPAD];
  int32_t nzp[MAX_PAIRS * 4];
  int32x4_t best[MAX_PAIRS];
  float uscale[MAX_PAIRS * 2];
  size_t pass_pairs = PACK_BYTES / (dpad * 2);
  if (pass_pairs > MAX_PAIRS) pass_pairs = MAX_PAIRS;
  for (size_t u0 = 0; u0 < p->n_user; u0 += pass_pairs * 2) {
    size_t nu = p->n_user - u0 < pass_pairs * 2 ? p->n_user - u0 : pass_pairs * 2;
    pack_user(p, u0, nu, dpad, ua, nzp);
    for (size_t u = 0; u < (nu + 1) / 2 * 2; u++) uscale[u] = u < nu ? p->user_scale[u0 + u] : 0.0f;
    packed_user pu = {ua, nzp, (nu + 1) / 2, dpad};
    for (size_t c = 0; c < k; c++) {
      size_t row = rows ? (size_t)rows[c] : c;
      const int8_t *next = c + 1 < k ? p->items + (rows ? (size_t)rows[c + 1] : c + 1) * p->item_stride : NULL;
      float s = score_one(&pu, p, nu, uscale, row, next, best, ib);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
