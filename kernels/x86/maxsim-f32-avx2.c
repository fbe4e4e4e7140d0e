/* fp32 batched MaxSim, AVX2 + FMA. The register tile and its layout are in
 * maxsim-avx2-tile.h; this file packs the user heads and walks the
 * candidates. */
#include "../kernels.h"
#include "maxsim-avx2-tile.h"

/* [u][d] -> [panel][d][8 lanes]; lanes past n_user are zero. */
static void pack_user(const float *user, size_t n_user, size_t dim, float *ut) {
  size_t n_panels = (n_user + TRT_Y_LANES - 1) / TRT_Y_LANES;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < TRT_Y_LANES; l++) {
      size_t u = v * TRT_Y_LANES + l;
      float *dst = ut + v * dim * TRT_Y_LANES + l;
      for (size_t d = 0; d < dim; d++) dst[d * TRT_Y_LANES] = u < n_user ? user[u * dim + d] : 0.0f;
    }
}

static float score_one(const float *ut, size_t n_panels, size_t n_user, const float *item,
                       const float *next, size_t n_item, size_t dim, float *best) {
  trt_y_best_init(best, n_panels);
  for (size_t h = 0; h < n_item; h += TRT_Y_NR) {
    size_t nr = n_item - h < TRT_Y_NR ? n_item - h : TRT_Y_NR;
    if (next) trt_y_prefetch(next + h * dim, nr * dim * sizeof(float));
    trt_y_heads(ut, n_panels, dim, item + h * dim, dim, nr, best);
  }
  return trt_y_best_sum(best, n_panels, n_user);
}

void trt_maxsim_f32_avx2(const float *user, size_t n_user, const float *items, size_t item_stride,
                         const uint32_t *rows, size_t k, size_t n_item, size_t dim, float *scores) {
  if (!n_user || !n_item || !dim || dim > TRT_Y_PACK_FLOATS / TRT_Y_LANES) {
    trt_maxsim_f32_scalar(user, n_user, items, item_stride, rows, k, n_item, dim, scores);
    return;
  }
  _Alignas(32) float ut[TRT_Y_PACK_FLOATS];
  _Alignas(32) float best[TRT_Y_MAX_PANELS * TRT_Y_LANES];
  size_t pass_panels = TRT_Y_PACK_FLOATS / (TRT_Y_LANES * dim);
  if (pass_panels > TRT_Y_MAX_PANELS) pass_panels = TRT_Y_MAX_PANELS;
  for (size_t u0 = 0; u0 < n_user; u0 += pass_panels * TRT_Y_LANES) {
    size_t nu = n_user - u0 < pass_panels * TRT_Y_LANES ? n_user - u0 : pass_panels * TRT_Y_LANES;
    size_t np = (nu + TRT_Y_LANES - 1) / TRT_Y_LANES;
    pack_user(user + u0 * dim, nu, dim, ut);
    for (size_t c = 0; c < k; c++) {
      const float *item = items + (rows ? (size_t)rows[c] : c) * item_stride;
      const float *next = c + 1 < k ? items + (rows ? (size_t)rows[c + 1] : c + 1) * item_stride : NULL;
      float s = score_one(ut, np, nu, item, next, n_item, dim, best);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
