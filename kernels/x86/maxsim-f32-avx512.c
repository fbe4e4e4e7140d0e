/* fp32 batched MaxSim, AVX-512F. The register tile and its layout are
 * described in maxsim-avx512-tile.h; this file packs the user heads and
 * walks the candidates. */
#include "../kernels.h"
#include "maxsim-avx512-tile.h"

/* [u][d] -> [panel][d][16 lanes]; lanes past n_user are zero. Done once per
 * call (a few thousand moves), amortised over the call's candidates. */
static void pack_user(const float *user, size_t n_user, size_t dim, float *ut) {
  size_t n_panels = (n_user + TRT_Z_LANES - 1) / TRT_Z_LANES;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < TRT_Z_LANES; l++) {
      size_t u = v * TRT_Z_LANES + l;
      float *dst = ut + v * dim * TRT_Z_LANES + l;
      for (size_t d = 0; d < dim; d++) dst[d * TRT_Z_LANES] = u < n_user ? user[u * dim + d] : 0.0f;
    }
}

/* Sum over the packed user heads of the max over the item's heads. */
static float score_one(const float *ut, size_t n_panels, size_t n_user, const float *item,
                       const float *next, size_t n_item, size_t dim, float *best) {
  trt_z_best_init(best, n_panels);
  for (size_t h = 0; h < n_item;) {
    size_t nr = trt_z_block_heads(n_item - h);
    const float *ih = item + h * dim;
#define PF next ? next + h * dim : NULL, nr * dim * sizeof(float)
    switch (nr) {
      case 8: trt_z_head_block(ut, n_panels, dim, ih, dim, best, 8, PF); break;
      case 4: trt_z_head_block(ut, n_panels, dim, ih, dim, best, 4, PF); break;
      case 2: trt_z_head_block(ut, n_panels, dim, ih, dim, best, 2, PF); break;
      default: trt_z_head_block(ut, n_panels, dim, ih, dim, best, 1, PF); break;
    }
#undef PF
    h += nr;
  }
  return trt_z_best_sum(best, n_panels, n_user);
}

void trt_maxsim_f32_avx512(const float *user, size_t n_user, const float *items,
                           size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                           size_t dim, float *scores) {
  if (!n_user || !n_item || !dim || dim > TRT_Z_PACK_FLOATS / TRT_Z_LANES) {
    trt_maxsim_f32_scalar(user, n_user, items, item_stride, rows, k, n_item, dim, scores);
    return;
  }
  _Alignas(64) float ut[TRT_Z_PACK_FLOATS];
  _Alignas(64) float best[TRT_Z_MAX_PANELS * TRT_Z_LANES];
  size_t pass_panels = TRT_Z_PACK_FLOATS / (TRT_Z_LANES * dim);
  if (pass_panels > TRT_Z_MAX_PANELS) pass_panels = TRT_Z_MAX_PANELS;
  /* Usually one pass; many user heads take several, each adding its part. */
  for (size_t u0 = 0; u0 < n_user; u0 += pass_panels * TRT_Z_LANES) {
    size_t nu = n_user - u0 < pass_panels * TRT_Z_LANES ? n_user - u0 : pass_panels * TRT_Z_LANES;
    size_t np = (nu + TRT_Z_LANES - 1) / TRT_Z_LANES;
    pack_user(user + u0 * dim, nu, dim, ut);
    for (size_t c = 0; c < k; c++) {
      const float *item = items + (rows ? (size_t)rows[c] : c) * item_stride;
      const float *next = c + 1 < k ? items + (rows ? (size_t)rows[c + 1] : c + 1) * item_stride : NULL;
      float s = score_one(ut, np, nu, item, next, n_item, dim, best);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
