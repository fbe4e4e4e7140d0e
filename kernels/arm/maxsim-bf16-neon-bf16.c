/* bf16 batched MaxSim with the aarch64 BF16 extension (FEAT_BF16: bfmmla,
 * vbfmmlaq_f32). Semantics: kernels.h, trt_maxsim_bf16_fn.
 *
 * bfmmla multiplies a 2x4 bf16 matrix by the transpose of a 2x4 bf16
 * matrix into a 2x2 fp32 block: 16 multiply-adds per instruction, against
 * 4 for the fmla-by-lane of the NEON kernel (which must also widen every
 * bf16 to fp32 first). The A operand is two user heads x 4 dims, the B
 * operand two item heads x 4 dims. The products are exact in fp32; the
 * architecture's sums round to odd (FEAT_BF16 without EBF16) instead of
 * to nearest, a rounding difference of the same order as reassociation,
 * inside the bound the tests use (docs/kernels.md).
 *
 * Layout: user heads in pairs [pair][dpad/4][2][4], dims zero-padded to a
 * multiple of 4; per candidate each block of up to 8 item heads is packed
 * the same way (an odd last head is paired with a zero head whose lanes
 * are masked out of the max). Tile: 4 user pairs x 4 item pairs = 16
 * accumulators; per 4 dims, 4 A + 4 B loads and 16 bfmmla (256
 * multiply-adds). */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "../kernels.h"

#include "../inline.h"
#define MR 4
#define NR 4
#define PACK_ELEMS 8192 /* packed user bf16 values on the stack (96 x 64 = 6144) */
#define MAX_DPAD 1024   /* bounds the packed item block (8 x 1024 values) */
#define MAX_PAIRS 256

static void pack_user(const uint16_t *user, size_t nu, size_t dim, size_t dpad, uint16_t *ua) {
  for (size_t v = 0; v < (nu + 1) / 2; v++)
    for (size_t l = 0; l < 2; l++) {
      size_t u = v * 2 + l;
      for (size_t d = 0; d < dpad; d++) ua[(v * dpad / 4 + d / 4) * 8 + l * 4 + d % 4] = u < nu && d < dim ? user[u * dim + d] : 0;
    }
}

/* nh (1..8) heads -> [pair][dpad/4][2][4]; keep[pair]: lanes of real heads. */
static void pack_items(const uint16_t *ih, size_t nh, size_t dim, size_t dpad, uint16_t *ib, uint32x4_t *keep) {
  for (size_t v = 0; v < (nh + 1) / 2; v++) {
    for (size_t l = 0; l < 2; l++) {
      size_t h = v * 2 + l;
      uint16_t *dst = ib + v * dpad * 2 + l * 4;
      const uint16_t *src = ih + h * dim;
      size_t d = 0;
      if (h < nh)
        for (; d + 4 <= dim; d += 4) memcpy(dst + d * 2, src + d, 4 * sizeof *src);
      for (; d < dpad; d += 4)
        for (size_t j = 0; j < 4; j++) dst[d * 2 + j] = h < nh && d + j < dim ? src[d + j] : 0;
    }
    uint32_t k1 = v * 2 + 1 < nh ? UINT32_MAX : 0, k[4] = {UINT32_MAX, k1, UINT32_MAX, k1};
    keep[v] = vld1q_u32(k);
  }
}

TRT_INLINE bfloat16x8_t load_bf16(const uint16_t *p) { return vreinterpretq_bf16_u16(vld1q_u16(p)); }

TRT_INLINE void tile(const uint16_t *ua, size_t dpad, const uint16_t *ib, const uint32x4_t *keep, float32x4_t *best,
                     const int mr, const int nr, const int odd) {
  const size_t ps = dpad * 2; /* values between pairs */
  float32x4_t acc[MR][NR];
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++)
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) acc[m][n] = vdupq_n_f32(0.0f);
#pragma GCC unroll 2
  for (size_t d = 0; d < dpad; d += 4) {
    bfloat16x8_t b[NR];
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++) b[n] = load_bf16(ib + (size_t)n * ps + d * 2);
#pragma GCC unroll 4
    for (int m = 0; m < mr; m++) {
      bfloat16x8_t a = load_bf16(ua + (size_t)m * ps + d * 2);
#pragma GCC unroll 4
      for (int n = 0; n < nr; n++) acc[m][n] = vbfmmlaq_f32(acc[m][n], a, b[n]);
    }
  }
  const float32x4_t lowest = vdupq_n_f32(-INFINITY);
#pragma GCC unroll 4
  for (int m = 0; m < mr; m++)
#pragma GCC unroll 4
    for (int n = 0; n < nr; n++)
      best[m] = vmaxq_f32(best[m], odd && n == nr - 1 ? vbslq_f32(*keep, acc[m][n], lowest) : acc[m][n]);
}

TRT_INLINE void pairs_block(const uint16_t *ua, size_t n_pairs, size_t dpad, const uint16_t *ib, const uint32x4_t *keep,
                            float32x4_t *best, const int nr, const int odd) {
  size_t v = 0, ps = dpad * 2;
  for (; v + MR <= n_pairs; v += MR) tile(ua + v * ps, dpad, ib, keep, best + v, MR, nr, odd);
  switch (n_pairs - v) {
    case 3: tile(ua + v * ps, dpad, ib, keep, best + v, 3, nr, odd); break;
    case 2: tile(ua + v * ps, dpad, ib, keep, best + v, 2, nr, odd); break;
    case 1: tile(ua + v * ps, dpad, ib, keep, best + v, 1, nr, odd); break;
    default: break;
  }
}

static float score_one(const uint16_t *ua, size_t nu, const uint16_t *item, const uint16_t *next, size_t n_item,
                       size_t dim, size_t dpad, float32x4_t *best, uint16_t *ib) {
  size_t n_pairs = (nu + 1) / 2;
  for (size_t v = 0; v < n_pairs; v++) best[v] = vdupq_n_f32(-INFINITY);
  for (size_t h = 0; h < n_item; h += 2 * NR) {
    size_t nh = n_item - h < 2 * NR ? n_item - h : 2 * NR;
    if (next)
      for (size_t off = 0; off < nh * dim * 2; off += 64) __builtin_prefetch((const char *)(next + h * dim) + off, 0, 3);
    uint32x4_t keep[NR];
    pack_items(item + h * dim, nh, dim, dpad, ib, keep);
    /* the keep mask matters only for an odd head count's last pair */
#define PAIRS(nr) (nh & 1 ? pairs_block(ua, n_pairs, dpad, ib, keep + (nr) - 1, best, nr, 1) : pairs_block(ua, n_pairs, dpad, ib, keep, best, nr, 0))
    switch ((nh + 1) / 2) {
      case 4: PAIRS(4); break;
      case 3: PAIRS(3); break;
      case 2: PAIRS(2); break;
      default: PAIRS(1); break;
    }
#undef PAIRS
  }
  /* lanes: u0 x (even, odd heads), u1 x (even, odd): pairwise max folds them */
  float32x4_t sum = vdupq_n_f32(0.0f);
  size_t v = 0;
  for (; v + 2 <= n_pairs && v * 2 + 4 <= nu; v += 2) sum = vaddq_f32(sum, vpmaxq_f32(best[v], best[v + 1]));
  float total = vaddvq_f32(sum), m[8];
  for (; v < n_pairs; v++) {
    vst1q_f32(m, best[v]);
    total += fmaxf(m[0], m[1]);
    if (v * 2 + 1 < nu) total += fmaxf(m[2], m[3]);
  }
  return total;
}

void trt_maxsim_bf16_neonbf16(const uint16_t *user, size_t n_user, const uint16_t *items, size_t item_stride,
                              const uint32_t *rows, size_t k, size_t n_item, size_t dim, float *scores) {
  size_t dpad = (dim + 3) / 4 * 4;
  if (!n_user || !n_item || !dim || dpad > MAX_DPAD) {
    trt_maxsim_bf16_scalar(user, n_user, items, item_stride, rows, k, n_item, dim, scores);
    return;
  }
  uint16_t ua[PACK_ELEMS], ib[2 * NR * MAX_DPAD];
  float32x4_t best[MAX_PAIRS];
  size_t pass_pairs = PACK_ELEMS / (dpad * 2);
  if (pass_pairs > MAX_PAIRS) pass_pairs = MAX_PAIRS;
  for (size_t u0 = 0; u0 < n_user; u0 += pass_pairs * 2) {
    size_t nu = n_user - u0 < pass_pairs * 2 ? n_user - u0 : pass_pairs * 2;
    pack_user(user + u0 * dim, nu, dim, dpad, ua);
    for (size_t c = 0; c < k; c++) {
      const uint16_t *item = items + (rows ? (size_t)rows[c] : c) * item_stride;
      const uint16_t *next = c + 1 < k ? items + (rows ? (size_t)rows[c + 1] : c + 1) * item_stride : NULL;
      float s = score_one(ua, nu, item, next, n_item, dim, dpad, best, ib);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
