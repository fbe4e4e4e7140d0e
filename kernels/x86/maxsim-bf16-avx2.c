/* bf16 batched MaxSim for AVX2 machines, which have no bf16 arithmetic:
 * bf16 -> fp32 is a 16-bit left shift (exact), so the user heads are widened
 * while packing and each item head block is widened into a small stack
 * buffer, then the fp32 tile of maxsim-avx2-tile.h runs unchanged (loops:
 * kernels/maxsim-driver.h). The widening costs about 2 instructions per 8
 * item values against 3 x 8 FMAs per item value, so this runs at the fp32
 * kernel's speed. */
#include "../dense-blocks.h" /* trt_bf16_to_f32 */
#include "../kernels.h"
#include "maxsim-avx2-tile.h"

static void trt_y_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  const uint16_t *user = (const uint16_t *)u->heads + u0 * u->dim;
  float *ut = (float *)(void *)panel;
  for (size_t l = 0; l < TRT_Y_LANES; l++)
    for (size_t d = 0; d < u->dim; d++) ut[d * TRT_Y_LANES + l] = l < n ? trt_bf16_to_f32(user[l * u->dim + d]) : 0.0f;
}

/* n contiguous bf16 values -> fp32. */
static void widen(const uint16_t *src, size_t n, float *dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; i < n; i++) dst[i] = trt_bf16_to_f32(src[i]);
}

static inline void trt_y_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                               void *buf) {
  size_t dim = ps->dim;
  if (pf) trt_ms_prefetch(pf, nr * dim * sizeof(uint16_t));
  widen((const uint16_t *)c->heads + h * dim, nr * dim, buf);
  trt_y_heads((const float *)(const void *)ps->panels, ps->n_panels, dim, buf, dim, nr, best);
}

#define TRT_MS(x) trt_y_##x
#define TRT_MS_ITEM_BYTES 2
#define TRT_MS_BUF_BYTES (TRT_Y_NR * (TRT_Y_PACK_FLOATS / TRT_Y_LANES) * sizeof(float))
#define TRT_MS_NAME trt_maxsim_bf16_avx2
#define TRT_MS_SCALAR trt_maxsim_bf16_scalar
#define TRT_MS_U8S8 0
#define TRT_MS_ELEM uint16_t
#include "../maxsim-driver.h"
