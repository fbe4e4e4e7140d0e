/* fp32 batched MaxSim, aarch64 NEON. The register tile and its layout are
 * in maxsim-neon-tile.h; this file packs the user heads and walks the
 * candidates. */
#include <string.h>

#include "../kernels.h"
#include "maxsim-neon-tile.h"

/* [u][d] -> [panel][dpad][4 lanes]; padding lanes and dims are zero. */
static void pack_user(const float *user, size_t n_user, size_t dim, size_t dpad, float *ut) {
  size_t n_panels = (n_user + TRT_N_LANES - 1) / TRT_N_LANES;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < TRT_N_LANES; l++) {
      size_t u = v * TRT_N_LANES + l;
      float *dst = ut + v * dpad * TRT_N_LANES + l;
      for (size_t d = 0; d < dpad; d++) dst[d * TRT_N_LANES] = u < n_user && d < dim ? user[u * dim + d] : 0.0f;
    }
}

/* The block as the tile reads it: in place when dim is a multiple of 4,
 * else a copy with each head zero-padded to dpad. */
static const float *padded_heads(const float *ih, size_t nr, size_t dim, size_t dpad, float *buf) {
  if (dim == dpad) return ih;
  for (size_t n = 0; n < nr; n++) {
    memcpy(buf + n * dpad, ih + n * dim, dim * sizeof *ih);
    memset(buf + n * dpad + dim, 0, (dpad - dim) * sizeof *ih);
  }
  return buf;
}

static float score_one(const float *ut, size_t n_panels, size_t n_user, const float *item,
                       const float *next, size_t n_item, size_t dim, float *best, float *buf) {
  size_t dpad = (dim + 3) / 4 * 4, hs = dim == dpad ? dim : dpad;
  trt_n_best_init(best, n_panels);
  for (size_t h = 0; h < n_item; h += TRT_N_NR) {
    size_t nr = n_item - h < TRT_N_NR ? n_item - h : TRT_N_NR;
    if (next) trt_n_prefetch(next + h * dim, nr * dim * sizeof(float));
    trt_n_heads(ut, n_panels, dpad, padded_heads(item + h * dim, nr, dim, dpad, buf), hs, nr, best);
  }
  return trt_n_best_sum(best, n_panels, n_user);
}

void trt_maxsim_f32_neon(const float *user, size_t n_user, const float *items, size_t item_stride,
                         const uint32_t *rows, size_t k, size_t n_item, size_t dim, float *scores) {
  size_t dpad = (dim + 3) / 4 * 4;
  if (!n_user || !n_item || !dim || dpad > TRT_N_MAX_DIM) {
    trt_maxsim_f32_scalar(user, n_user, items, item_stride, rows, k, n_item, dim, scores);
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
      const float *item = items + (rows ? (size_t)rows[c] : c) * item_stride;
      const float *next = c + 1 < k ? items + (rows ? (size_t)rows[c + 1] : c + 1) * item_stride : NULL;
      float s = score_one(ut, np, nu, item, next, n_item, dim, best, buf);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
