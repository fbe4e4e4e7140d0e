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
 * multiply-adds). The loops around the tile: kernels/maxsim-driver.h, with
 * a pair of user heads as its panel. */
#include <arm_neon.h>
#include <math.h>
#include <string.h>

#include "../kernels.h"
#include "../maxsim-pass.h"

#define MR 4
#define NR 4
#define PACK_ELEMS 8192 /* packed user bf16 values per pass (96 x 64 = 6144) */
#define MAX_DPAD 1024   /* bounds the packed item block (8 x 1024 values) */
#define MAX_PAIRS 256

static inline size_t dpad_of(size_t dim) { return (dim + 3) / 4 * 4; }

static inline size_t nb_pass_panels(size_t dim) {
  size_t dpad = dpad_of(dim);
  if (dpad > MAX_DPAD) return 0;
  size_t pp = PACK_ELEMS / (dpad * 2);
  return pp < MAX_PAIRS ? pp : MAX_PAIRS;
}

/* one pair: [dpad/4][2][4] bf16 */
static inline size_t nb_panel_bytes(size_t dim) { return dpad_of(dim) * 2 * sizeof(uint16_t); }

static void nb_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  size_t dim = u->dim, dpad = dpad_of(dim);
  const uint16_t *user = (const uint16_t *)u->heads + u0 * dim;
  uint16_t *ua = (uint16_t *)(void *)panel;
  for (size_t l = 0; l < 2; l++)
    for (size_t d = 0; d < dpad; d++) ua[(d / 4) * 8 + l * 4 + d % 4] = l < n && d < dim ? user[l * dim + d] : 0;
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
  const size_t ps = dpad * 2; /* values between pairs (user and item) */
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

static inline size_t nb_block_heads(size_t left) { return left < 2 * NR ? left : 2 * NR; }

static inline void nb_best_init(const trt_ms_pass *ps, void *best) {
  float32x4_t *b = best;
  for (size_t v = 0; v < ps->n_panels; v++) b[v] = vdupq_n_f32(-INFINITY);
}

static inline void nb_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nh, const void *pf, void *best,
                            void *buf) {
  size_t dim = ps->dim, dpad = dpad_of(dim), n_pairs = ps->n_panels;
  const uint16_t *ua = (const uint16_t *)(const void *)ps->panels;
  uint16_t *ib = buf;
  uint32x4_t keep[NR];
  if (pf) trt_ms_prefetch(pf, nh * dim * sizeof(uint16_t));
  pack_items((const uint16_t *)c->heads + h * dim, nh, dim, dpad, ib, keep);
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
static inline float nb_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  (void)c;
  const float32x4_t *b = best;
  size_t n_pairs = ps->n_panels, nu = ps->n_user, v = 0;
  float32x4_t sum = vdupq_n_f32(0.0f);
  for (; v + 2 <= n_pairs && v * 2 + 4 <= nu; v += 2) sum = vaddq_f32(sum, vpmaxq_f32(b[v], b[v + 1]));
  float total = vaddvq_f32(sum), m[8];
  for (; v < n_pairs; v++) {
    vst1q_f32(m, b[v]);
    total += fmaxf(m[0], m[1]);
    if (v * 2 + 1 < nu) total += fmaxf(m[2], m[3]);
  }
  return total;
}

#define TRT_MS(x) nb_##x
#define TRT_MS_LANES 2
#define TRT_MS_ITEM_BYTES 2
#define TRT_MS_STACK_BYTES (PACK_ELEMS * sizeof(uint16_t))
#define TRT_MS_BEST_BYTES (MAX_PAIRS * 16)
#define TRT_MS_BUF_BYTES (2 * NR * MAX_DPAD * sizeof(uint16_t))
#define TRT_MS_NAME trt_maxsim_bf16_neonbf16
#define TRT_MS_SCALAR trt_maxsim_bf16_scalar
#define TRT_MS_U8S8 0
#define TRT_MS_ELEM uint16_t
#include "../maxsim-driver.h"
