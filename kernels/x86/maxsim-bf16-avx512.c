/* bf16 batched MaxSim for AVX-512F machines without AVX512_BF16 (Skylake-X,
 * Ice Lake): bf16 -> fp32 is a 16-bit left shift (exact), so user heads are
 * widened while packing and each item head block is widened into a small
 * stack buffer, then the fp32 tile of maxsim-avx512-tile.h runs unchanged.
 * Machines with AVX512_BF16 use maxsim-bf16-avx512bf16.c instead. */
#include <string.h>

#include "../kernels.h"
#include "maxsim-avx512-tile.h"

static float bf16_to_f32(uint16_t v) {
  uint32_t bits = (uint32_t)v << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static void pack_user(const uint16_t *user, size_t n_user, size_t dim, float *ut) {
  size_t n_panels = (n_user + TRT_Z_LANES - 1) / TRT_Z_LANES;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < TRT_Z_LANES; l++) {
      size_t u = v * TRT_Z_LANES + l;
      float *dst = ut + v * dim * TRT_Z_LANES + l;
      for (size_t d = 0; d < dim; d++) dst[d * TRT_Z_LANES] = u < n_user ? bf16_to_f32(user[u * dim + d]) : 0.0f;
    }
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

static float score_one(const float *ut, size_t n_panels, size_t n_user, const uint16_t *item,
                       const uint16_t *next, size_t n_item, size_t dim, float *best, float *buf) {
  trt_z_best_init(best, n_panels);
  for (size_t h = 0; h < n_item;) {
    size_t nr = trt_z_block_heads(n_item - h);
    if (next) trt_z_prefetch(next + h * dim, nr * dim * sizeof(uint16_t));
    widen(item + h * dim, nr * dim, buf);
    switch (nr) {
      case 8: trt_z_head_block(ut, n_panels, dim, buf, dim, best, 8, NULL, 0); break;
      case 4: trt_z_head_block(ut, n_panels, dim, buf, dim, best, 4, NULL, 0); break;
      case 2: trt_z_head_block(ut, n_panels, dim, buf, dim, best, 2, NULL, 0); break;
      default: trt_z_head_block(ut, n_panels, dim, buf, dim, best, 1, NULL, 0); break;
    }
    h += nr;
  }
  return trt_z_best_sum(best, n_panels, n_user);
}

void trt_maxsim_bf16_avx512(const uint16_t *user, size_t n_user, const uint16_t *items,
                            size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                            size_t dim, float *scores) {
  if (!n_user || !n_item || !dim || dim > TRT_Z_PACK_FLOATS / TRT_Z_LANES) {
    trt_maxsim_bf16_scalar(user, n_user, items, item_stride, rows, k, n_item, dim, scores);
    return;
  }
  _Alignas(64) float ut[TRT_Z_PACK_FLOATS];
  _Alignas(64) float best[TRT_Z_MAX_PANELS * TRT_Z_LANES];
  _Alignas(64) float buf[TRT_Z_NR * (TRT_Z_PACK_FLOATS / TRT_Z_LANES)];
  size_t pass_panels = TRT_Z_PACK_FLOATS / (TRT_Z_LANES * dim);
  if (pass_panels > TRT_Z_MAX_PANELS) pass_panels = TRT_Z_MAX_PANELS;
  for (size_t u0 = 0; u0 < n_user; u0 += pass_panels * TRT_Z_LANES) {
    size_t nu = n_user - u0 < pass_panels * TRT_Z_LANES ? n_user - u0 : pass_panels * TRT_Z_LANES;
    size_t np = (nu + TRT_Z_LANES - 1) / TRT_Z_LANES;
    pack_user(user + u0 * dim, nu, dim, ut);
    for (size_t c = 0; c < k; c++) {
      const uint16_t *item = items + (rows ? (size_t)rows[c] : c) * item_stride;
      const uint16_t *next = c + 1 < k ? items + (rows ? (size_t)rows[c + 1] : c + 1) * item_stride : NULL;
      float s = score_one(ut, np, nu, item, next, n_item, dim, best, buf);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
