/* maxsim-driver.h - the MaxSim outer loop, written once for every ISA.
 *
 * A MaxSim kernel is a register tile (ISA-specific: which user heads share
 * a register, how item heads are read) inside the same loops: user heads
 * packed in panels, passes of at most pass_panels panels (the packing
 * capacity; each pass adds its part to the scores), the candidate loop
 * with the next row's address for prefetching, the blocks of item heads,
 * and the scalar oracle for shapes the tile does not take. This header is
 * those loops; each ISA file defines its tile's hooks and includes it (so
 * the loops compile with that file's ISA flags and inline the tile).
 *
 * Packed layout: panel v holds user heads v*LANES .. v*LANES+LANES-1 in the
 * tile's layout, with whatever the tile keeps per head (int8: -zp and the
 * scale), panel_bytes(dim) apart, so a pass is a slice of panels and
 * packing once per request (`pack`) or once per pass on the stack (the
 * legacy entry points) feed the same loop the same bytes.
 *
 * The includer defines, before including:
 *   TRT_MS(x)            its hooks' prefix, e.g. #define TRT_MS(x) trt_z_f32_##x
 *   TRT_MS_LANES         user heads per panel
 *   TRT_MS_ITEM_BYTES    bytes per item (and user) value: 4, 2 or 1
 *   TRT_MS_STACK_BYTES   the legacy entry's packing buffer: at least
 *                        pass_panels(dim) * panel_bytes(dim) for every dim
 *                        the tile takes
 *   TRT_MS_BEST_BYTES    best[] of one pass, TRT_MS_BUF_BYTES the block scratch
 *   TRT_MS_NAME          the public name (trt_maxsim_f32_avx512): the driver
 *                        defines NAME, NAME_pack_bytes, NAME_pack, NAME_packed;
 *                        or leave it undefined and write them (avx2 int8)
 *   TRT_MS_SCALAR        the oracle's name (trt_maxsim_f32_scalar)
 *   TRT_MS_U8S8          1 for the int8 signature (params), else 0 and
 *   TRT_MS_ELEM          the element type of the f32 / bf16 signature
 * and the static hooks:
 *   size_t TRT_MS(pass_panels)(size_t dim)   panels per pass; 0: dim not taken
 *   size_t TRT_MS(panel_bytes)(size_t dim)   one packed panel, a multiple of the tile's
 *                                            vector size (panels stay aligned)
 *   void TRT_MS(pack_panel)(const trt_maxsim_user *u, size_t u0, size_t n, unsigned char *panel)
 *                                            heads u0 .. u0+n-1 (n <= LANES) into a panel
 *   size_t TRT_MS(block_heads)(size_t left)  item heads in the next block
 *   void TRT_MS(best_init)(const trt_ms_pass *ps, void *best)
 *   void TRT_MS(block)(const trt_ms_pass *ps, const trt_ms_cand *c, size_t h, size_t nr,
 *                      const void *pf, void *best, void *buf)
 *                                            item heads h .. h+nr-1 of the candidate; pf (or
 *                                            NULL): the same heads of the next candidate, to
 *                                            prefetch (trt_ms_prefetch, or spread in the tile)
 *   float TRT_MS(finish)(const trt_ms_pass *ps, const trt_ms_cand *c, const void *best)
 *                                            the pass's part of the score */
#include "maxsim-pass.h"

/* ---- instantiated once per inclusion, with the includer's tile ---- */

/* Shapes the tile takes (n_item is checked where it is known). */
static inline int TRT_MS(takes)(size_t n_user, size_t dim) { return n_user && dim && TRT_MS(pass_panels)(dim); }

static size_t TRT_MS(packed_size)(size_t n_user, size_t dim) {
  return ((n_user + TRT_MS_LANES - 1) / TRT_MS_LANES * TRT_MS(panel_bytes)(dim) + 63) & ~(size_t)63;
}

static void TRT_MS(pack_all)(const trt_maxsim_user *u, unsigned char *packed) {
  size_t pb = TRT_MS(panel_bytes)(u->dim);
  for (size_t u0 = 0, v = 0; u0 < u->n_user; u0 += TRT_MS_LANES, v++)
    TRT_MS(pack_panel)(u, u0, trt_ms_min(TRT_MS_LANES, u->n_user - u0), packed + v * pb);
}

/* Sum over the pass's user heads of the max over the candidate's heads. */
static float TRT_MS(score_one)(const trt_ms_pass *ps, const trt_ms_cand *c, const unsigned char *next, size_t n_item,
                               void *best, void *buf) {
  size_t head_bytes = ps->dim * TRT_MS_ITEM_BYTES;
  TRT_MS(best_init)(ps, best);
  for (size_t h = 0; h < n_item;) {
    size_t nr = TRT_MS(block_heads)(n_item - h);
    TRT_MS(block)(ps, c, h, nr, next ? next + h * head_bytes : NULL, best, buf);
    h += nr;
  }
  return TRT_MS(finish)(ps, c, best);
}

/* int8 rows come with their column sums and scale, in other sections of
 * the store: without a prefetch, each candidate waits on those lines once
 * its heads have arrived (measured: int8 at k = 100,000 on gathered rows,
 * 121 -> 113 ms, docs/performance.md "Huge pages for item stores"). */
static inline void TRT_MS(prefetch_side)(const trt_maxsim_items *it, size_t row) {
  trt_ms_prefetch(it->colsum + row * it->colsum_stride, it->n_item * sizeof(int32_t));
  if (it->item_scale) __builtin_prefetch(it->item_scale + row, 0, 3);
}

/* The candidate loop of one pass: the first pass writes the scores, the
 * others add to them. */
static void TRT_MS(run_pass)(const trt_ms_pass *ps, const trt_maxsim_items *it, const uint32_t *rows, size_t k, int first,
                             float *scores) {
  _Alignas(64) unsigned char best[TRT_MS_BEST_BYTES];
  _Alignas(64) unsigned char buf[TRT_MS_BUF_BYTES];
  const unsigned char *base = (const unsigned char *)it->items;
  for (size_t c = 0; c < k; c++) {
    size_t row = rows ? (size_t)rows[c] : c;
    const unsigned char *next = c + 1 < k ? base + (rows ? (size_t)rows[c + 1] : c + 1) * it->item_stride : NULL;
    if (next && it->colsum) TRT_MS(prefetch_side)(it, rows ? (size_t)rows[c + 1] : c + 1);
    trt_ms_cand cd = {base + row * it->item_stride, it->colsum ? it->colsum + row * it->colsum_stride : NULL,
                      it->item_scale ? it->item_scale[row] : 0.0f};
    float s = TRT_MS(score_one)(ps, &cd, next, it->n_item, best, buf);
    scores[c] = first ? s : scores[c] + s;
  }
}

/* No item heads: every max is over nothing, as the oracle gives it. */
static void TRT_MS(no_items)(size_t n_user, size_t k, float *scores) {
  for (size_t c = 0; c < k; c++) scores[c] = n_user ? -INFINITY : 0.0f;
}

/* The passes over user heads packed once (packed_size bytes). */
static void TRT_MS(run_packed)(const unsigned char *packed, size_t n_user, const trt_maxsim_items *it, const uint32_t *rows,
                               size_t k, float *scores) {
  if (!it->n_item) {
    TRT_MS(no_items)(n_user, k, scores);
    return;
  }
  size_t pp = TRT_MS(pass_panels)(it->dim), pb = TRT_MS(panel_bytes)(it->dim);
  for (size_t u0 = 0; u0 < n_user; u0 += pp * TRT_MS_LANES) {
    size_t nu = trt_ms_min(n_user - u0, pp * TRT_MS_LANES);
    trt_ms_pass ps = {packed + u0 / TRT_MS_LANES * pb, (nu + TRT_MS_LANES - 1) / TRT_MS_LANES, nu, it->dim, pb};
    TRT_MS(run_pass)(&ps, it, rows, k, u0 == 0, scores);
  }
}

/* The same passes, each packed on the stack first (the legacy entry). */
static void TRT_MS(run_unpacked)(const trt_maxsim_user *u, const trt_maxsim_items *it, const uint32_t *rows, size_t k,
                                 float *scores) {
  _Alignas(64) unsigned char packed[TRT_MS_STACK_BYTES];
  size_t pp = TRT_MS(pass_panels)(u->dim), pb = TRT_MS(panel_bytes)(u->dim);
  for (size_t u0 = 0; u0 < u->n_user; u0 += pp * TRT_MS_LANES) {
    size_t nu = trt_ms_min(u->n_user - u0, pp * TRT_MS_LANES);
    trt_maxsim_user part = {(const unsigned char *)u->heads + u0 * u->dim * TRT_MS_ITEM_BYTES, u->zp ? u->zp + u0 : NULL,
                            u->scale ? u->scale + u0 : NULL, nu, u->dim};
    TRT_MS(pack_all)(&part, packed);
    trt_ms_pass ps = {packed, (nu + TRT_MS_LANES - 1) / TRT_MS_LANES, nu, u->dim, pb};
    TRT_MS(run_pass)(&ps, it, rows, k, u0 == 0, scores);
  }
}

#ifdef TRT_MS_NAME
#define TRT_MS_CAT_(a, b) a##b
#define TRT_MS_CAT(a, b) TRT_MS_CAT_(a, b)

size_t TRT_MS_CAT(TRT_MS_NAME, _pack_bytes)(size_t n_user, size_t dim) {
  return TRT_MS(takes)(n_user, dim) ? TRT_MS(packed_size)(n_user, dim) : TRT_MS_CAT(TRT_MS_SCALAR, _pack_bytes)(n_user, dim);
}

void TRT_MS_CAT(TRT_MS_NAME, _pack)(const trt_maxsim_user *u, void *packed) {
  if (TRT_MS(takes)(u->n_user, u->dim))
    TRT_MS(pack_all)(u, packed);
  else
    TRT_MS_CAT(TRT_MS_SCALAR, _pack)(u, packed);
}

void TRT_MS_CAT(TRT_MS_NAME, _packed)(const void *packed, size_t n_user, const trt_maxsim_items *it, const uint32_t *rows,
                                      size_t k, float *scores) {
  if (TRT_MS(takes)(n_user, it->dim))
    TRT_MS(run_packed)(packed, n_user, it, rows, k, scores);
  else
    TRT_MS_CAT(TRT_MS_SCALAR, _packed)(packed, n_user, it, rows, k, scores);
}

#if TRT_MS_U8S8
void TRT_MS_NAME(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k, float *scores) {
  if (!p->n_item || !TRT_MS(takes)(p->n_user, p->dim)) {
    TRT_MS_SCALAR(p, rows, k, scores);
    return;
  }
  trt_maxsim_user u = {p->user, p->user_zp, p->user_scale, p->n_user, p->dim};
  trt_maxsim_items it = {p->items, p->item_stride, p->colsum, p->colsum_stride, p->item_scale, p->n_item, p->dim};
  TRT_MS(run_unpacked)(&u, &it, rows, k, scores);
}
#else
void TRT_MS_NAME(const TRT_MS_ELEM *user, size_t n_user, const TRT_MS_ELEM *items, size_t item_stride, const uint32_t *rows,
                 size_t k, size_t n_item, size_t dim, float *scores) {
  if (!n_item || !TRT_MS(takes)(n_user, dim)) {
    TRT_MS_SCALAR(user, n_user, items, item_stride, rows, k, n_item, dim, scores);
    return;
  }
  trt_maxsim_user u = {user, NULL, NULL, n_user, dim};
  trt_maxsim_items it = {items, item_stride * sizeof *items, NULL, 0, NULL, n_item, dim};
  TRT_MS(run_unpacked)(&u, &it, rows, k, scores);
}
#endif
#undef TRT_MS_CAT
#undef TRT_MS_CAT_
#endif /* TRT_MS_NAME */

/* The next inclusion (a second tile in the same file) starts afresh. */
#undef TRT_MS
#undef TRT_MS_LANES
#undef TRT_MS_ITEM_BYTES
#undef TRT_MS_STACK_BYTES
#undef TRT_MS_BEST_BYTES
#undef TRT_MS_BUF_BYTES
#undef TRT_MS_NAME
#undef TRT_MS_SCALAR
#undef TRT_MS_U8S8
#undef TRT_MS_ELEM
