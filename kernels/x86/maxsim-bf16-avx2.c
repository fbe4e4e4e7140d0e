/* bf16 batched MaxSim for AVX2 machines, which have no bf16 arithmetic:
 * bf16 -> fp32 is a 16-bit left shift (exact), so the user heads are widened
 * while packing and each item head block is widened into a small stack
 * buffer, then the fp32 tile of maxsim-avx2-tile.h runs unchanged. The
 * widening costs about 2 instructions per 8 item values against 3 x 8 FMAs
 * per item value, so this runs at the fp32 kernel's speed. */
#include <string.h>

#include "../kernels.h"
#include "maxsim-avx2-tile.h"

static float bf16_to_f32(uint16_t v) {
  uint32_t bits = (uint32_t)v << 16;
  float f;
  memcpy(&f, &bits, sizeof f);
  return f;
}

static void pack_user(const uint16_t *user, size_t n_user, size_t dim, float *ut) {
  size_t n_panels = (n_user + TRT_Y_LANES - 1) / TRT_Y_LANES;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < TRT_Y_LANES; l++) {
      size_t u = v * TRT_Y_LANES + l;
      float *dst = ut + v * dim * TRT_Y_LANES + l;
      for (size_t d = 0; d < dim; d++) dst[d * TRT_Y_LANES] = u < n_user ? bf16_to_f32(user[u * dim + d]) : 0.0f;
    }
}

/* n contiguous bf16 values -> fp32. */
static void widen(const uint16_t *src, size_t n, float *dst) {
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i w = _mm256_cvtepu16_epi32(_mm_loadu_si128((const __m128i *)(src + i)));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(w, 16)));
  }
  for (; i < n; i++) dst[i] = bf16_to_f32(src[i]);
}

static float score_one(const float *ut, size_t n_panels, size_t n_user, const uint16_t *item,
                       const uint16_t *next, size_t n_item, size_t dim, float *best, float *buf) {
  trt_y_best_init(best, n_panels);
  for (size_t h = 0; h < n_item; h += TRT_Y_NR) {
    size_t nr = n_item - h < TRT_Y_NR ? n_item - h : TRT_Y_NR;
    if (next) trt_y_prefetch(next + h * dim, nr * dim * sizeof(uint16_t));
    widen(item + h * dim, nr * dim, buf);
    trt_y_heads(ut, n_panels, dim, buf, dim, nr, best);
  }
  return trt_y_best_sum(best, n_panels, n_user);
}

void trt_maxsim_bf16_avx2(const uint16_t *user, size_t n_user, const uint16_t *items,
                          size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                          size_t dim, float *scores) {
  if (!n_user || !n_item || !dim || dim > TRT_Y_PACK_FLOATS / TRT_Y_LANES) {
    trt_maxsim_bf16_scalar(user, n_user, items, item_stride, rows, k, n_item, dim, scores);
    return;
  }
  _Alignas(32) float ut[TRT_Y_PACK_FLOATS];
  _Alignas(32) float best[TRT_Y_MAX_PANELS * TRT_Y_LANES];
  _Alignas(32) float buf[TRT_Y_NR * (TRT_Y_PACK_FLOATS / TRT_Y_LANES)];
  size_t pass_panels = TRT_Y_PACK_FLOATS / (TRT_Y_LANES * dim);
  if (pass_panels > TRT_Y_MAX_PANELS) pass_panels = TRT_Y_MAX_PANELS;
  for (size_t u0 = 0; u0 < n_user; u0 += pass_panels * TRT_Y_LANES) {
    size_t nu = n_user - u0 < pass_panels * TRT_Y_LANES ? n_user - u0 : pass_panels * TRT_Y_LANES;
    size_t np = (nu + TRT_Y_LANES - 1) / TRT_Y_LANES;
    pack_user(user + u0 * dim, nu, dim, ut);
    for (size_t c = 0; c < k; c++) {
      const uint16_t *item = items + (rows ? (size_t)rows[c] : c) * item_stride;
      const uint16_t *next = c + 1 < k ? items + (rows ? (size_t)rows[c + 1] : c + 1) * item_stride : NULL;
      float s = score_one(ut, np, nu, item, next, n_item, dim, best, buf);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}
