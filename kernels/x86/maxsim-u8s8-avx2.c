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
 * widened once while packing (a panel: [d/2][8 lanes][2 x i16], then -zp
 * and the scale of its 8 heads); each block
 * of 6 item heads is widened once per candidate into a stack buffer, and
 * its pairs (d, d+1) are broadcast to all lanes. Tile: 2 panels (16 user
 * heads) x 6 item heads = 12 int32 accumulators (+ 2 user vectors, the
 * broadcast and the vpmaddwd result: all 16 ymm registers, no spill), each
 * starting at -zp[u] * colsum[h], so it ends as the corrected dot product
 * D[u][h] and the max over item heads is a vertical vpmaxsd. Both paths
 * run in the loops of kernels/maxsim-driver.h; a packed request records
 * which one its heads were packed for. */
#include <immintrin.h>
#include <string.h>

#include "../inline.h"
#include "../kernels.h"

/* The fast path's step: acc += the 4 products of each int32 lane, through
 * 16-bit pair sums that cannot saturate for u <= 127 (proof above). */
TRT_INLINE __m256i trt_yq_dot(__m256i acc, __m256i u, __m256i s) {
  return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}
#define TRT_YQ_MR 2
#define TRT_YQ_NR 5
#include "maxsim-u8s8-ymm-tile.h"

/* ---- the exact path (prefix xq_) ---- */
#define LANES 8
#define MR 2
#define NR 6
#define PACK_WORDS 4096 /* packed user pairs per pass (16 KiB; 96 x 64 uses 12 KiB) */
#define MAX_PANELS 64   /* panels per pass */

static inline size_t xq_pass_panels(size_t dim) {
  size_t pairs = (dim + 1) / 2;
  if (pairs * LANES > PACK_WORDS) return 0;
  size_t pp = PACK_WORDS / (pairs * LANES);
  return pp < MAX_PANELS ? pp : MAX_PANELS;
}

/* pair words, then -zp per lane, then the scale per lane */
static inline size_t xq_panel_bytes(size_t dim) { return (dim + 1) / 2 * LANES * 4 + 2 * LANES * 4; }

static void xq_pack_panel(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel) {
  size_t dim = u->dim, pairs = (dim + 1) / 2;
  uint32_t *ut = (uint32_t *)(void *)panel;
  int32_t *nzp = (int32_t *)(void *)(panel + pairs * LANES * 4);
  float *scale = (float *)(void *)(panel + pairs * LANES * 4 + LANES * 4);
  for (size_t l = 0; l < LANES; l++) {
    const uint8_t *src = l < n ? (const uint8_t *)u->heads + (u0 + l) * dim : NULL;
    for (size_t q = 0; q < pairs; q++) {
      uint32_t lo = l < n ? src[2 * q] : 0, hi = l < n && 2 * q + 1 < dim ? src[2 * q + 1] : 0;
      ut[q * LANES + l] = lo | hi << 16;
    }
    nzp[l] = l < n ? -u->zp[u0 + l] : 0;
    scale[l] = l < n ? u->scale[u0 + l] : 0.0f;
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

TRT_INLINE void tile(const trt_ms_pass *ps, size_t v, const int16_t *buf, const int32_t *colsum, int32_t *best, const int mr,
                     const int nr) {
  size_t pairs = (ps->dim + 1) / 2, vs = ps->panel_bytes / 4, hs = 2 * pairs; /* vs: words between panels */
  const uint32_t *ut = (const uint32_t *)(const void *)ps->panels + v * vs;
  __m256i acc[MR][NR];
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m256i nzp = _mm256_load_si256((const __m256i *)(const void *)(ut + (size_t)m * vs + pairs * LANES));
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) acc[m][n] = _mm256_mullo_epi32(nzp, _mm256_set1_epi32(colsum[n]));
  }
  for (size_t q = 0; q < pairs; q++) {
    __m256i u[MR];
#pragma GCC unroll 8
    for (int m = 0; m < mr; m++) u[m] = _mm256_load_si256((const __m256i *)(const void *)(ut + (size_t)m * vs + q * LANES));
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) {
      __m256i b = _mm256_set1_epi32(load_pair(buf + (size_t)n * hs + 2 * q));
#pragma GCC unroll 8
      for (int m = 0; m < mr; m++) acc[m][n] = _mm256_add_epi32(acc[m][n], _mm256_madd_epi16(u[m], b));
    }
  }
#pragma GCC unroll 8
  for (int m = 0; m < mr; m++) {
    __m256i *dst = (__m256i *)(void *)(best + (v + (size_t)m) * LANES);
    __m256i r = _mm256_load_si256(dst);
#pragma GCC unroll 8
    for (int n = 0; n < nr; n++) r = _mm256_max_epi32(r, acc[m][n]);
    _mm256_store_si256(dst, r);
  }
}

TRT_INLINE void head_block(const trt_ms_pass *ps, const int16_t *buf, const int32_t *colsum, int32_t *best, const int nr) {
  size_t v = 0;
  for (; v + 2 <= ps->n_panels; v += 2) tile(ps, v, buf, colsum, best, 2, nr);
  if (ps->n_panels - v == 1) tile(ps, v, buf, colsum, best, 1, nr);
}

static inline size_t xq_block_heads(size_t left) { return left >= 6 ? 6 : left >= 4 ? 4 : left >= 2 ? 2 : 1; }

static inline void xq_best_init(const trt_ms_pass *ps, void *best) { trt_yq_best_init(ps, best); }

static inline void xq_block(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr, const void *pf, void *best,
                            void *buf) {
  size_t dim = ps->dim;
  const int32_t *cs = c->colsum + h;
  if (pf) trt_ms_prefetch(pf, nr * dim);
  widen((const int8_t *)c->heads + h * dim, nr, dim, (dim + 1) / 2, buf);
  switch (nr) {
    case 6: head_block(ps, buf, cs, best, 6); break;
    case 4: head_block(ps, buf, cs, best, 4); break;
    case 2: head_block(ps, buf, cs, best, 2); break;
    default: head_block(ps, buf, cs, best, 1); break;
  }
}

/* term_u = (float)D_max[u] * (scale[u] * item_scale), as in the oracle. */
static inline float xq_finish(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best) {
  size_t scale_at = (ps->dim + 1) / 2 * LANES * 4 + LANES * 4;
  __m256 s_item = _mm256_set1_ps(c->item_scale), sum = _mm256_setzero_ps();
  for (size_t v = 0; v < ps->n_panels; v++) {
    __m256 f = _mm256_cvtepi32_ps(_mm256_load_si256((const __m256i *)best + v));
    __m256 scale = _mm256_load_ps((const float *)(const void *)(ps->panels + v * ps->panel_bytes + scale_at));
    sum = _mm256_fmadd_ps(f, _mm256_mul_ps(scale, s_item), sum);
  }
  return trt_yq_hsum(sum);
}

#define TRT_MS(x) xq_##x
#define TRT_MS_LANES LANES
#define TRT_MS_ITEM_BYTES 1
#define TRT_MS_STACK_BYTES (PACK_WORDS * 4 + MAX_PANELS * 2 * LANES * 4)
#define TRT_MS_BEST_BYTES (MAX_PANELS * LANES * 4)
#define TRT_MS_BUF_BYTES (NR * 2 * (PACK_WORDS / LANES) * sizeof(int16_t))
#include "../maxsim-driver.h"

/* ---- the public entry points: which path, then its driver ---- */

/* 1 if every user byte is <= 127 (one pass over n_user x dim bytes, once
 * per request or call, against k x n_user x n_item x dim multiply-adds). */
static int user_is_u7(const uint8_t *user, size_t n) {
  size_t i = 0;
  __m256i any = _mm256_setzero_si256();
  for (; i + 32 <= n; i += 32) any = _mm256_or_si256(any, _mm256_loadu_si256((const __m256i *)(const void *)(user + i)));
  int high = _mm256_movemask_epi8(any);
  for (; i < n; i++) high |= user[i] & 0x80;
  return high == 0;
}

enum { PATH_SCALAR = 0, PATH_FAST = 1, PATH_EXACT = 2 };

static int choose_path(const trt_maxsim_user *u) {
  if (trt_yq_takes(u->n_user, u->dim) && user_is_u7(u->heads, u->n_user * u->dim)) return PATH_FAST;
  return xq_takes(u->n_user, u->dim) ? PATH_EXACT : PATH_SCALAR;
}

void trt_maxsim_u8s8_avx2(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k, float *scores) {
  trt_maxsim_user u = {p->user, p->user_zp, p->user_scale, p->n_user, p->dim};
  trt_maxsim_items it = {p->items, p->item_stride, p->colsum, p->colsum_stride, p->item_scale, p->n_item, p->dim};
  int path = p->n_item ? choose_path(&u) : PATH_SCALAR;
  if (path == PATH_FAST)
    trt_yq_run_unpacked(&u, &it, rows, k, scores);
  else if (path == PATH_EXACT)
    xq_run_unpacked(&u, &it, rows, k, scores);
  else
    trt_maxsim_u8s8_scalar(p, rows, k, scores);
}

/* A packed request: 64 bytes that say the path, then its packed heads. */
size_t trt_maxsim_u8s8_avx2_pack_bytes(size_t n_user, size_t dim) {
  size_t fast = trt_yq_takes(n_user, dim) ? trt_yq_packed_size(n_user, dim) : 0;
  size_t exact = xq_takes(n_user, dim) ? xq_packed_size(n_user, dim) : 0;
  size_t most = trt_maxsim_u8s8_scalar_pack_bytes(n_user, dim);
  most = fast > most ? fast : most;
  return 64 + (exact > most ? exact : most);
}

void trt_maxsim_u8s8_avx2_pack(const trt_maxsim_user *u, void *packed) {
  unsigned char *p = packed;
  uint32_t path = (uint32_t)choose_path(u);
  memcpy(p, &path, sizeof path);
  if (path == PATH_FAST)
    trt_yq_pack_all(u, p + 64);
  else if (path == PATH_EXACT)
    xq_pack_all(u, p + 64);
  else
    trt_maxsim_u8s8_scalar_pack(u, p + 64);
}

void trt_maxsim_u8s8_avx2_packed(const void *packed, size_t n_user, const trt_maxsim_items *it, const uint32_t *rows, size_t k,
                                 float *scores) {
  const unsigned char *p = packed;
  uint32_t path;
  memcpy(&path, p, sizeof path);
  if (path == PATH_FAST)
    trt_yq_run_packed(p + 64, n_user, it, rows, k, scores);
  else if (path == PATH_EXACT)
    xq_run_packed(p + 64, n_user, it, rows, k, scores);
  else
    trt_maxsim_u8s8_scalar_packed(p + 64, n_user, it, rows, k, scores);
}
