/* fp32 batched MaxSim, AVX2 + FMA. The register tile and its layout are in
 * maxsim-avx2-tile.h, the loops around it in kernels/maxsim-driver.h; this
 * file packs a panel and runs a block. */
#include "../kernels.h"
#include "maxsim-avx2-tile.h"

/* Heads u0 .. u0+n-1 -> one panel [d][8 lanes]; lanes past n are zero. */
static void trt_y_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  const float *user = (const float *)u->heads + u0 * u->dim;
  float *ut = (float *)(void *)panel;
  for (size_t l = 0; l < TRT_Y_LANES; l++)
    for (size_t d = 0; d < u->dim; d++) ut[d * TRT_Y_LANES + l] = l < n ? user[l * u->dim + d] : 0.0f;
}

static inline void trt_y_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                               void *buf) {
  (void)buf;
  size_t dim = ps->dim;
  if (pf) trt_ms_prefetch(pf, nr * dim * sizeof(float));
  trt_y_heads((const float *)(const void *)ps->panels, ps->n_panels, dim, (const float *)c->heads + h * dim, dim, nr, best);
}

#define TRT_MS(x) trt_y_##x
#define TRT_MS_ITEM_BYTES 4
#define TRT_MS_BUF_BYTES 64 /* unused: the tile reads the row in place */
#define TRT_MS_NAME trt_maxsim_f32_avx2
#define TRT_MS_SCALAR trt_maxsim_f32_scalar
#define TRT_MS_U8S8 0
#define TRT_MS_ELEM float
#include "../maxsim-driver.h"
