/* bf16 batched MaxSim, aarch64 NEON without the BF16 extension: bf16 ->
 * fp32 is a 16-bit left shift (exact; vshll_n_u16), so user heads are
 * widened while packing and each block of item heads is widened, zero-padded
 * to a multiple of 4 dims, into a stack buffer; then the fp32 tile of
 * maxsim-neon-tile.h runs unchanged (loops: kernels/maxsim-driver.h). */
#include "../dense-blocks.h" /* trt_bf16_to_f32 */
#include "../kernels.h"
#include "maxsim-neon-tile.h"

static void trt_n_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  const uint16_t *user = (const uint16_t *)u->heads + u0 * u->dim;
  size_t dim = u->dim, dpad = trt_n_dpad(dim);
  float *ut = (float *)(void *)panel;
  for (size_t l = 0; l < TRT_N_LANES; l++)
    for (size_t d = 0; d < dpad; d++) ut[d * TRT_N_LANES + l] = l < n && d < dim ? trt_bf16_to_f32(user[l * dim + d]) : 0.0f;
}

/* nr heads of dim bf16 -> fp32 rows of dpad (zero pad). */
static void widen(const uint16_t *ih, size_t nr, size_t dim, size_t dpad, float *buf) {
  for (size_t n = 0; n < nr; n++) {
    const uint16_t *src = ih + n * dim;
    float *dst = buf + n * dpad;
    size_t d = 0;
    for (; d + 4 <= dim; d += 4) vst1q_f32(dst + d, vreinterpretq_f32_u32(vshll_n_u16(vld1_u16(src + d), 16)));
    for (; d < dim; d++) dst[d] = trt_bf16_to_f32(src[d]);
    for (; d < dpad; d++) dst[d] = 0.0f;
  }
}

static inline void trt_n_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                               void *buf) {
  size_t dim = ps->dim, dpad = trt_n_dpad(dim);
  if (pf) trt_ms_prefetch(pf, nr * dim * sizeof(uint16_t));
  widen((const uint16_t *)c->heads + h * dim, nr, dim, dpad, buf);
  trt_n_heads((const float *)(const void *)ps->panels, ps->n_panels, dpad, buf, dpad, nr, best);
}

#define TRT_MS(x) trt_n_##x
#define TRT_MS_ITEM_BYTES 2
#define TRT_MS_NAME trt_maxsim_bf16_neon
#define TRT_MS_SCALAR trt_maxsim_bf16_scalar
#define TRT_MS_U8S8 0
#define TRT_MS_ELEM uint16_t
#include "../maxsim-driver.h"
