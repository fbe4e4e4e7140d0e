/* bf16 batched MaxSim for AVX-512F machines without AVX512_BF16 (Skylake-X,
 * Ice Lake): bf16 -> fp32 is a 16-bit left shift (exact), so user heads are
 * widened while packing and each item head block is widened into a small
 * stack buffer, then the fp32 tile of maxsim-avx512-tile.h runs unchanged
 * (loops: kernels/maxsim-driver.h). Machines with AVX512_BF16 use
 * maxsim-bf16-avx512bf16.c instead. */
#include "../dense-blocks.h" /* trt_bf16_to_f32 */
#include "../kernels.h"
#include "maxsim-avx512-tile.h"

static void trt_z_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  const uint16_t *user = (const uint16_t *)u->heads + u0 * u->dim;
  float *ut = (float *)(void *)panel;
  for (size_t l = 0; l < TRT_Z_LANES; l++)
    for (size_t d = 0; d < u->dim; d++) ut[d * TRT_Z_LANES + l] = l < n ? trt_bf16_to_f32(user[l * u->dim + d]) : 0.0f;
}

/* n contiguous bf16 values -> fp32; the tail uses a masked load, never
 * reading past the item row. */
static void widen(const uint16_t *src, size_t n, float *dst) {
  size_t i = 0;
  for (; i + 16 <= n; i += 16) {
    __m512i w = _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)(src + i)));
    _mm512_storeu_ps(dst + i, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
  if (i < n) {
    __mmask16 m = (__mmask16)((1u << (n - i)) - 1u);
    __m512i w = _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16(m, src + i));
    _mm512_mask_storeu_ps(dst + i, m, _mm512_castsi512_ps(_mm512_slli_epi32(w, 16)));
  }
}

static inline void trt_z_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                               void *buf) {
  const float *ut = (const float *)(const void *)ps->panels;
  size_t dim = ps->dim, np = ps->n_panels;
  if (pf) trt_ms_prefetch(pf, nr * dim * sizeof(uint16_t));
  widen((const uint16_t *)c->heads + h * dim, nr * dim, buf);
  switch (nr) {
    case 8: trt_z_head_block(ut, np, dim, buf, dim, best, 8, NULL, 0); break;
    case 4: trt_z_head_block(ut, np, dim, buf, dim, best, 4, NULL, 0); break;
    case 2: trt_z_head_block(ut, np, dim, buf, dim, best, 2, NULL, 0); break;
    default: trt_z_head_block(ut, np, dim, buf, dim, best, 1, NULL, 0); break;
  }
}

#define TRT_MS(x) trt_z_##x
#define TRT_MS_ITEM_BYTES 2
#define TRT_MS_BUF_BYTES (TRT_Z_NR * (TRT_Z_PACK_FLOATS / TRT_Z_LANES) * sizeof(float))
#define TRT_MS_NAME trt_maxsim_bf16_avx512
#define TRT_MS_SCALAR trt_maxsim_bf16_scalar
#define TRT_MS_U8S8 0
#define TRT_MS_ELEM uint16_t
#include "../maxsim-driver.h"
