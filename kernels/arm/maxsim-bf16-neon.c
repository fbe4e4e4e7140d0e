/* bf16 batched MaxSim, aarch64 NEON without the BF16 extension: bf16 ->
 * fp32 is a 16-bit left shift (exact; vshll_n_u16), so user heads are
 * widened while packing and each block of item heads is widened, zero-padded
 * to a multiple of 4 dims, into a stack buffer; then the fp32 tile of
 * maxsim-neon-tile.h runs unchanged. */
#include <string.h>

#include "../kernels.h"
#include "maxsim-neon-tile.h"

static float bf16_to_f32(uint16_t v) {
  uint32_t bits = (uint32_t)v << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static void pack_user(const uint16_t *user, size_t n_user, size_t dim, size_t dpad, float *ut) {
  size_t n_panels = (n_user + TRT_N_LANES - 1) / TRT_N_LANES;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < TRT_N_LANES; l++) {
      size_t u = v * TRT_N_LANES + l;
      float *dst = ut + v * dpad * TRT_N_LANES + l;
      for (size_t d = 0; d < dpad; d++) dst[d * TRT_N_LANES] = u < n_user && d < dim ? bf16_to_f32(user[u * dim + d]) : 0.0f;
    }
}

/* nr heads of dim bf16 -> fp32 rows of dpad (zero pad). */
static void widen(const uint16_t *ih, size_t nr, size_t dim, size_t dpad, float *buf) {
  for (size_t n = 0; n < nr; n++) {
    const uint16_t *src = ih + n * dim;
    float *dst = buf + n * dpad;
    size_t d = 0;
    for (; d + 4 <= dim; d += 4) vst1q_f32(dst + d, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(src + d), 16)));
    for (; d < dim; d++) dst[d] = bf16_to_f32(src[d]);
    for (; d < dpad; d++) dst[d] = 0.0f;
  }
}

static float score_one(const float *ut, size_t n_panels, size_t n_user, const uint16_t *item,
                       const uint16_t *next, size_t n_item, size_t dim, float *best, float *buf) {
  size_t dpad = (dim + 3) / 4 * 4;
  trt_n_best_init(best, n_panels);
  for (size_t h = 0; h < n_item; h += TRT_N_NR) {
    size_t nr = n_item - h < TRT_N_NR ? n_item - h : TRT_N_NR;
    if (next) trt_n_prefetch(next + h * dim, nr * dim * sizeof(uint16_t));
    widen(item + h * dim, nr, dim, dpad, buf);
    trt_n_heads(ut, n_panels, dpad, buf, dpad, nr, best);
  }
  return trt_n_best_sum(best, n_panels, n_user);
}

void trt_maxsim_bf16_neon(const uint16_t *user, size_t n_user, const uint16_t *items,
                          size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                          size_t dim, float *scores) {
  size_t dpad = (dim + 3) / 4 * 4;
  if (!n_user || !n_item || !dim || dpad > TRT_N_MAX_DIM) {
    trt_maxsim_bf16_scalar(user, n_user, items, item_stride, rows, k, n_item, dim, scores);
    return;
  }
  float ut[TRT_N_PACK_FLOATS], best[TRT_N_MAX_PANELS * TRT_N_LANES];
  float buf[TRT_N_NR * TRT_N_MAX_DIM];
  size_t pass_panels = TRT_N_PACK_FLOATS / (TRT_N_LANES * dpad);
  if (pass_panels > TRT_N_MAX_PANELS) pass_panels = TRT_N_MAX_PANELS;
  for (size_t u0 = 0; u0 < n_user; u0 += pass_panels * TRT_N_LANES) {
    size_t nu = n_user - u0 < pass_panels * TRT_N_LANES ? n_user - u0 : pass_panels * TRT_N_LANES;
    size_t np = (nu + TRT_N_LANES - 1) / TRT_N_LANES;
    pack_user(user + u0 * dim, nu, dim, dpad, ut);
    for (size_t c = 0; c < k; c++) {
      const uint16_t *item = items + (rows ? (size_t)rows[c] : c) * item_stride;
      const uint16_t *next = c + 1 < k ? items + (rows ? (size_t)rows[c + 1] : c + 1) * item_stride : NULL;
      float s = score_one(ut, np, nu, item, next, n_item, dim, best, buf);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
