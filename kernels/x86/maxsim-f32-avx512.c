/* fp32 batched MaxSim, AVX-512F. The register tile and its layout are
 * described in maxsim-avx512-tile.h, the loops around it in
 * kernels/maxsim-driver.h; this file packs a panel and runs a block. */
#include "../kernels.h"
#include "maxsim-avx512-tile.h"

/* Heads u0 .. u0+n-1 -> one panel [d][16 lanes]; lanes past n are zero. */
static void trt_z_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  const float *user = (const float *)u->heads + u0 * u->dim;
  float *ut = (float *)(void *)panel;
  for (size_t l = 0; l < TRT_Z_LANES; l++)
    for (size_t d = 0; d < u->dim; d++) ut[d * TRT_Z_LANES + l] = l < n ? user[l * u->dim + d] : 0.0f;
}

/* Item heads h .. h+nr-1 against every panel of the pass; the next
 * candidate's block is prefetched a line at a time during the first tile
 * (maxsim-avx512-tile.h says why). */
static inline void trt_z_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                               void *buf) {
  (void)buf;
  const float *ut = (const float *)(const void *)ps->panels, *ih = (const float *)c->heads + h * ps->dim;
  size_t dim = ps->dim, np = ps->n_panels, pfb = nr * dim * sizeof(float);
  switch (nr) {
    case 8: trt_z_head_block(ut, np, dim, ih, dim, best, 8, pf, pfb); break;
    case 4: trt_z_head_block(ut, np, dim, ih, dim, best, 4, pf, pfb); break;
    case 2: trt_z_head_block(ut, np, dim, ih, dim, best, 2, pf, pfb); break;
    default: trt_z_head_block(ut, np, dim, ih, dim, best, 1, pf, pfb); break;
  }
}

#define TRT_MS(x) trt_z_##x
#define TRT_MS_ITEM_BYTES 4
#define TRT_MS_BUF_BYTES 64 /* unused: the tile reads the row in place */
#define TRT_MS_NAME trt_maxsim_f32_avx512
#define TRT_MS_SCALAR trt_maxsim_f32_scalar
#define TRT_MS_U8S8 0
#define TRT_MS_ELEM float
#include "../maxsim-driver.h"
