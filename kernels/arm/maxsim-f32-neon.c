/* fp32 batched MaxSim, aarch64 NEON. The register tile and its layout are
 * in maxsim-neon-tile.h, the loops around it in kernels/maxsim-driver.h;
 * this file packs a panel and runs a block. */
#include <string.h>

#include "../kernels.h"
#include "maxsim-neon-tile.h"

/* Heads u0 .. u0+n-1 -> one panel [dpad][4 lanes]; padding lanes and dims are zero. */
static void trt_n_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  const float *user = (const float *)u->heads + u0 * u->dim;
  size_t dim = u->dim, dpad = trt_n_dpad(dim);
  float *ut = (float *)(void *)panel;
  for (size_t l = 0; l < TRT_N_LANES; l++)
    for (size_t d = 0; d < dpad; d++) ut[d * TRT_N_LANES + l] = l < n && d < dim ? user[l * dim + d] : 0.0f;
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

static inline void trt_n_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                               void *buf) {
  size_t dim = ps->dim, dpad = trt_n_dpad(dim);
  if (pf) trt_ms_prefetch(pf, nr * dim * sizeof(float));
  const float *ih = padded_heads((const float *)c->heads + h * dim, nr, dim, dpad, buf);
  trt_n_heads((const float *)(const void *)ps->panels, ps->n_panels, dpad, ih, dpad, nr, best);
}

#define TRT_MS(x) trt_n_##x
#define TRT_MS_ITEM_BYTES 4
#define TRT_MS_NAME trt_maxsim_f32_neon
#define TRT_MS_SCALAR trt_maxsim_f32_scalar
#define TRT_MS_U8S8 0
#define TRT_MS_ELEM float
#include "../maxsim-driver.h"
