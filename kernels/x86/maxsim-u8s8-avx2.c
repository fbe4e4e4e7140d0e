/* int8 batched MaxSim for AVX2 (no VNNI). Semantics: kernels.h,
 * trt_maxsim_u8s8_params.
 *
 * Fast path: vpmaddubsw + vpmaddwd (the int8 roof of an AVX2 core) on the
 * shared 256-bit tile (maxsim-u8s8-ymm-tile.h), taken when every user byte
 * is <= 127, which is what the runtime gives this kernel set: its tables
 * say u8_max = 127, so the user heads are quantized to 0..127.
 *
 * Why that cannot saturate (the proof the fast path rests on):
 * vpmaddubsw multiplies an unsigned byte a by a signed byte b and adds
 * adjacent pairs into a signed 16-bit lane with saturation. With
 * 0 <= a <= 127 and -128 <= b <= 127:
 *   a0*b0 + a1*b1 <= 2 * 127 * 127 = 32258  <= 32767,
 *   a0*b0 + a1*b1 >= 2 * 127 * (-128) = -32512 >= -32768,
 * so every pair sum is exact. vpmaddwd by ones then adds two pair sums
 * into an int32 lane (|.| <= 65024, exact), and the int32 accumulator
 * holds |D| <= dim * 127 * 128 + 127 * |colsum| < 2^31 for dim <= 65535,
 * as in the oracle. So the int32 maxima equal the oracle's bit for bit.
 * (With a full u8 byte, 2 * 255 * 127 = 64770 would saturate.)
 *
 * Exact path for any other input (a byte > 127: a caller that quantized to
 * 0..255): both sides widened to i16 and multiplied with vpmaddwd
 * (255 * 128 * 2 < 2^31), slower but exact for the full u8 and s8 ranges.
 * Either way no result ever depends on saturation.
 *
 * The exact path: the user heads are
 * widened once while packing ([panel][d/2][8 lanes][2 x i16]); each block
 * of 6 item heads is widened once per candidate into a stack buffer, and
 * its pairs (d, d+1) are broadcast to all lanes. Tile: 2 panels (16 user
 * heads) x 6 item heads = 12 int32 accumulators (+ 2 user vectors, the
 * broadcast and the vpmaddwd result: all 16 ymm registers, no spill), each
 * starting at -zp[u] * colsum[h], so it ends as the corrected dot product
 * D[u][h] and the max over item heads is a vertical vpmaxsd. */
#include <immintrin.h>
#include <string.h>

#include "../kernels.h"

/* The fast path's step: acc += the 4 products of each int32 lane, through
 * 16-bit pair sums that cannot saturate for u <= 127 (proof above). */
static inline __attribute__((always_inline)) __m256i trt_yq_dot(__m256i acc, __m256i u, __m256i s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
#define TRT_YQ_MR 2
#define TRT_YQ_NR 5
#include "maxsim-u8s8-ymm-tile.h"

#define LANES 8
#define MR 2
#define NR 6
#define PACK_WORDS 4096 /* packed user pairs on the stack (16 KiB; 96 x 64 uses 12 KiB) */
#define MAX_PANELS 64   /* panels per pass */

typedef struct packed_user {
  const uint32_t *ut;  /* [panel][d/2][8] pairs of i16 */
  const int32_t *nzp;  /* -zp per lane, 0 in padding lanes */
  const float *scale;  /* scale per lane, 0 in padding lanes */
  size_t n_panels, pairs;
} packed_user;

static void pack_user(const trt_maxsim_u8s8_params *p, size_t u0, size_t nu, uint32_t *ut,
                      int32_t *nzp, float *scale) {
  size_t n_panels = (nu + LANES - 1) / LANES, pairs = (p->dim + 1) / 2;
  for (size_t v = 0; v < n_panels; v++)
    for (size_t l = 0; l < LANES; l++) {
      size_t u = v * LANES + l;
      const uint8_t *src = p->user + (u0 + u) * p->dim;
      for (size_t q = 0; q < pairs; q++) {
        uint32_t lo = u < nu ? src[2 * q] : 0, hi = u < nu && 2 * q + 1 < p->dim ? src[2 * q + 1] : 0;
        ut[(v * pairs + q) * LANES + l] = lo | hi << 16;
      }
      nzp[v * LANES + l] = u < nu ? -p->user_zp[u0 + u] : 0;
      scale[v * LANES + l] = u < nu ? p->user_scale[u0 + u] : 0.0f;
    }
}

/* nr heads of dim s8 -> i16 rows of 2 * pairs values (odd dim: a 0 pad). */
static void widen(const int8_t *ih, size_t nr, size_t dim, size_t pairs, int16_t *buf) {
  for (size_t n = 0; n < nr; n++) {
    const int8_t *src = ih + n * dim;
    int16_t *dst = buf + n * 2 * pairs;
    size_t d = 0;
    for (; d + 16 <= dim; d += 16)
      _mm256_storeu_si256((__m256i *)(dst + d), _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(src + d))));
    for (; d < dim; d++) dst[d] = src[d];
    if (dim & 1) dst[dim] = 0;
  }
}

static inline int32_t load_pair(const int16_t *p) {
  int32_t v;
  memcpy(&v, p, sizeof v);
  return v;
}

TRT_INLINE void tile(const packed_user *pu, size_t v, const int16_t *buf, const int32_t *colsum,
                     int32_t *best, const int mr, const int nr) {
  size_t vs = pu->pairs * LANES, hs = 2 * pu->pairs;
  const uint32_t *ut = pu->ut + v * vs;
  __m256i acc[MR][NR];
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m256i nzp = _mm256_load_si256((const __m256i *)(pu->nzp + (v + (size_t)m) * LANES));
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) acc[m][n] = _mm256_mullo_epi32(nzp, _mm256_set1_epi32(colsum[n]));
  }
  for (size_t q = 0; q < pu->pairs; q++) {
    __m256i u[MR];
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++) u[m] = _mm256_load_si256((const __m256i *)(ut + (size_t)m * vs + q * LANES));
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) {
      __m256i b = _mm256_set1_epi32(load_pair(buf + (size_t)n * hs + 2 * q));
#pragma GCC unroll 8
      for (int m = 0; m < mr; m++) acc[m][n] = _mm256_add_epi32(acc[m][n], _mm256_madd_epi16(u[m], b));
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m256i *dst = (__m256i *)(best + (v + (size_t)m) * LANES);
    __m256i r = _mm256_load_si256(dst);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) r = _mm256_max_epi32(r, acc[m][n]);
    _mm256_store_si256(dst, r);
  }
}

TRT_INLINE void head_block(const packed_user *pu, const int16_t *buf, const int32_t *colsum,
                           int32_t *best, const int nr) {
  size_t v = 0;
  for (; v + 2 <= pu->n_panels; v += 2) tile(pu, v, buf, colsum, best, 2, nr);
  if (pu->n_panels - v == 1) tile(pu, v, buf, colsum, best, 1, nr);
}

static float score_one(const packed_user *pu, const trt_maxsim_u8s8_params *p, size_t row,
                       const int8_t *next, int32_t *best, int16_t *buf) {
  const int8_t *item = p->items + row * p->item_stride;
  const int32_t *colsum = p->colsum + row * p->colsum_stride;
  size_t dim = p->dim;
  for (size_t v = 0; v < pu->n_panels; v++)
    _mm256_store_si256((__m256i *)(best + v * LANES), _mm256_set1_epi32(INT32_MIN));
  for (size_t h = 0; h < p->n_item;) {
    size_t left = p->n_item - h, nr = left >= 6 ? 6 : left >= 4 ? 4 : left >= 2 ? 2 : 1;
    if (next)
      for (size_t off = 0; off < nr * dim; off += 64) _mm_prefetch((const char *)(next + h * dim + off), _MM_HINT_T0);
    widen(item + h * dim, nr, dim, pu->pairs, buf);
    switch (nr) {
      case 6: head_block(pu, buf, colsum + h, best, 6); break;
      case 4: head_block(pu, buf, colsum + h, best, 4); break;
      case 2: head_block(pu, buf, colsum + h, best, 2); break;
      default: head_block(pu, buf, colsum + h, best, 1); break;
    }
    h += nr;
  }
  /* term_u = (float)D_max[u] * (scale[u] * item_scale), as in the oracle. */
  __m256 s_item = _mm256_set1_ps(p->item_scale[row]), sum = _mm256_setzero_ps();
  for (size_t v = 0; v < pu->n_panels; v++) {
    __m256 f = _mm256_cvtepi32_ps(_mm256_load_si256((const __m256i *)(best + v * LANES)));
    sum = _mm256_fmadd_ps(f, _mm256_mul_ps(_mm256_load_ps(pu->scale + v * LANES), s_item), sum);
  }
  __m128 q = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
  q = _mm_add_ps(q, _mm_movehl_ps(q, q));
  return _mm_cvtss_f32(_mm_add_ss(q, _mm_movehdup_ps(q)));
}

static void maxsim_exact(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k, float *scores) {
  size_t pairs = (p->dim + 1) / 2;
  if (!p->n_user || !p->n_item || !p->dim || pairs * LANES > PACK_WORDS) {
    trt_maxsim_u8s8_scalar(p, rows, k, scores);
    return;
  }
  _Alignas(32) uint32_t ut[PACK_WORDS];
  _Alignas(32) int32_t nzp[MAX_PANELS * LANES], best[MAX_PANELS * LANES];
  _Alignas(32) float scale[MAX_PANELS * LANES];
  _Alignas(32) int16_t buf[NR * 2 * (PACK_WORDS / LANES)];
  size_t pass_panels = PACK_WORDS / (pairs * LANES);
  if (pass_panels > MAX_PANELS) pass_panels = MAX_PANELS;
  for (size_t u0 = 0; u0 < p->n_user; u0 += pass_panels * LANES) {
    size_t nu = p->n_user - u0 < pass_panels * LANES ? p->n_user - u0 : pass_panels * LANES;
    pack_user(p, u0, nu, ut, nzp, scale);
    packed_user pu = {ut, nzp, scale, (nu + LANES - 1) / LANES, pairs};
    for (size_t c = 0; c < k; c++) {
      size_t row = rows ? (size_t)rows[c] : c;
      const int8_t *next = c + 1 < k ? p->items + (rows ? (size_t)rows[c + 1] : c + 1) * p->item_stride : NULL;
      float s = score_one(&pu, p, row, next, best, buf);
      scores[c] = u0 ? scores[c] + s : s;
    }
  }
}

/* 1 if every user byte is <= 127 (one pass over n_user x dim bytes per
 * call, against k x n_user x n_item x dim multiply-adds). */
static int user_is_u7(const trt_maxsim_u8s8_params *p) {
  size_t n = p->n_user * p->dim, i = 0;
  __m256i any = _mm256_setzero_si256();
  for (; i + 32 <= n; i += 32) any = _mm256_or_si256(any, _mm256_loadu_si256((const __m256i *)(const void *)(p->user + i)));
  int high = _mm256_movemask_epi8(any);
  for (; i < n; i++) high |= p->user[i] & 0x80;
  return high == 0;
}

void trt_maxsim_u8s8_avx2(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k, float *scores) {
  if (user_is_u7(p) && trt_yq_maxsim(p, rows, k, scores)) return;
  maxsim_exact(p, rows, k, scores);
}
