/*
 * kernels.h - signatures of the compute kernels and the dispatch table.
 *
 * Kernels are pure functions: raw pointers, sizes and strides in, results
 * out. They allocate nothing, do no I/O and touch no globals. Each ISA
 * lives in its own file (kernels/<isa>/<op>-<types>-<isa>.c) compiled with
 * that ISA's flags; the scalar files are the oracle the others are tested
 * against. The runtime picks one towerrt_kernels table at load. The MaxSim
 * loops are written once (maxsim-driver.h); the ISA files hold the tiles.
 */
#ifndef TOWERRT_KERNELS_H
#define TOWERRT_KERNELS_H

#include <stddef.h>
#include <stdint.h>

/* Multi-id pooling modes (reference SequencePoolingLayer). */
enum { TRT_POOL_MEAN = 0, TRT_POOL_SUM = 1, TRT_POOL_MAX = 2 };

/* out[d] = pooled rows table[ids[j]] over the non-zero ids (id 0 = padding):
 * mean divides by (count + 1e-8) like the reference, so all-padding -> 0.
 * ids must already be range-checked by the caller. */
typedef void (*trt_embed_pool_f32_fn)(const float *table, size_t dim, const int64_t *ids,
                                      size_t n_ids, int mode, float *out);

/* Light-SE over F fields of d dims: z = mean_d(e); a = softmax(W z + b);
 * out = e + e * a. w is F x F row-major, b may be NULL. out may not alias e.
 * scratch holds 2 * F floats. */
typedef void (*trt_lightse_f32_fn)(const float *e, size_t n_fields, size_t dim,
                                   const float *w, const float *b, float *scratch, float *out);

/* Y[r][o] = act(b[o] + sum_i W[o][i] * X[r][i]) for n rows.
 * W is out x in row-major (PyTorch layout), b may be NULL; relu 0/1.
 * X rows have stride in, Y rows stride out. */
typedef void (*trt_dense_f32_fn)(const float *x, size_t n, size_t in, const float *w,
                                 const float *b, size_t out, int relu, float *y);

/* Batched MaxSim. For each of k candidates c (row rows[c] of the item
 * matrix, or row c if rows is NULL):
 *   scores[c] = sum_{u < n_user} max_{h < n_item} <user[u], item_c[h]>
 * user is n_user x dim; an item row is n_item x dim, rows item_stride
 * floats apart. The k x n_user x n_item dot products are never stored. */
typedef void (*trt_maxsim_f32_fn)(const float *user, size_t n_user, const float *items,
                                  size_t item_stride, const uint32_t *rows, size_t k,
                                  size_t n_item, size_t dim, float *scores);

/* bf16 values are stored as uint16_t: the upper 16 bits of an IEEE fp32.
 * Batched MaxSim as trt_maxsim_f32_fn, on bf16 user and item heads
 * (item_stride in elements), products and sums in fp32. */
typedef void (*trt_maxsim_bf16_fn)(const uint16_t *user, size_t n_user, const uint16_t *items,
                                   size_t item_stride, const uint32_t *rows, size_t k,
                                   size_t n_item, size_t dim, float *scores);

/* int8 MaxSim (docs/design.md, Kernels). A user head u is u8 with zero point
 * zp[u] and scale s[u]: x = s[u] * (q - zp[u]). An item row r holds n_item
 * s8 heads sharing ONE scale item_scale[r] >= 0, plus the column sums
 * colsum[h] = sum_d q_item[h][d] (in the item store, so that the zero-point
 * term costs nothing at query time). Per candidate:
 *   D[u][h] = sum_d q_user[u][d] * q_item[h][d] - zp[u] * colsum[h]  (int32, exact)
 *   score   = sum_u (float)max_h D[u][h] * (s[u] * item_scale[r])
 * The max is taken on int32 because a positive scale commutes with max.
 * Exact for dim <= 65535 and zero points in 0..255 (|D| < 2^31). */
typedef struct trt_maxsim_u8s8_params {
  const uint8_t *user;      /* n_user x dim */
  const int32_t *user_zp;   /* n_user zero points, 0..255 */
  const float *user_scale;  /* n_user scales */
  size_t n_user;
  const int8_t *items;      /* row r at items + r * item_stride: n_item x dim s8 */
  size_t item_stride;       /* bytes between rows */
  const int32_t *colsum;    /* row r at colsum + r * colsum_stride: n_item sums */
  size_t colsum_stride;     /* int32 elements between rows */
  const float *item_scale;  /* one scale per row, indexed by row */
  size_t n_item, dim;
} trt_maxsim_u8s8_params;

/* scores[c] for the k candidates rows[c] (or row c if rows is NULL). */
typedef void (*trt_maxsim_u8s8_fn)(const trt_maxsim_u8s8_params *p, const uint32_t *rows,
                                   size_t k, float *scores);

/* MaxSim on user heads packed once per request. The legacy entry points
 * above pack the user heads on every call (the kernel tests and
 * micro-benchmarks use them); a request packs them once with `pack` into
 * the layout of the set's register tile and scores every block of
 * candidates from that buffer with `score`. Both give the same bits. */
typedef struct trt_maxsim_user {
  const void *heads;   /* n_user x dim: float, bf16 (uint16_t) or u8 */
  const int32_t *zp;   /* int8: n_user zero points 0..255; else NULL */
  const float *scale;  /* int8: n_user scales; else NULL */
  size_t n_user, dim;
} trt_maxsim_user;

typedef struct trt_maxsim_items {
  const void *items;        /* row r at items + r * item_stride bytes: n_item x dim heads (f32, bf16 or s8) */
  size_t item_stride;       /* bytes between rows */
  const int32_t *colsum;    /* int8: row r at colsum + r * colsum_stride (int32 elements); else NULL */
  size_t colsum_stride;
  const float *item_scale;  /* int8: one scale per row; else NULL */
  size_t n_item, dim;
} trt_maxsim_items;

typedef struct trt_maxsim_kernel {
  /* bytes of the packed user heads (a multiple of 64) */
  size_t (*pack_bytes)(size_t n_user, size_t dim);
  /* packed: 64-byte aligned, pack_bytes(user->n_user, user->dim) bytes */
  void (*pack)(const trt_maxsim_user *user, void *packed);
  /* scores[c] for the k candidates rows[c] (or row c if rows is NULL);
   * n_user and items->dim as packed */
  void (*score)(const void *packed, size_t n_user, const trt_maxsim_items *items, const uint32_t *rows, size_t k,
                float *scores);
} trt_maxsim_kernel;

/* The three functions of a trt_maxsim_kernel named NAME_pack_bytes,
 * NAME_pack and NAME_packed (kernels/maxsim-driver.h defines them). */
#define TRT_DECLARE_PACKED_MAXSIM(name)                                                               \
  size_t name##_pack_bytes(size_t n_user, size_t dim);                                                \
  void name##_pack(const trt_maxsim_user *user, void *packed);                                        \
  void name##_packed(const void *packed, size_t n_user, const trt_maxsim_items *items, const uint32_t *rows, \
                     size_t k, float *scores)
#define TRT_PACKED_MAXSIM(name) {name##_pack_bytes, name##_pack, name##_packed}

/* Dense layer with bf16 weights (quantized models, docs/quantization.md):
 * Y[r][o] = act(b[o] + sum_i W[o][i] * X[r][i]) with X and W bf16 (the
 * caller rounds X once), each product exact in fp32, sums in fp32.
 * Shapes and strides as trt_dense_f32_fn. */
typedef void (*trt_dense_bf16_fn)(const uint16_t *x, size_t n, size_t in, const uint16_t *w,
                                  const float *b, size_t out, int relu, float *y);

/* Dense layer with s8 weights, one scale per output channel, and u8
 * activations with one zero point and scale per row (x ~ sx * (q - zx)):
 *   D[r][o] = sum_i q_x[r][i] * q_w[o][i] - zx[r] * w_sum[o]     (int32, exact)
 *   Y[r][o] = act(b[o] + (float)D[r][o] * (sx[r] * w_scale[o]))
 * W rows are in_pad bytes (a multiple of 64, zero beyond `in`) and so are
 * the X rows (their bytes beyond `in` may hold anything: the weights there
 * are 0). Exact for in_pad <= 65536. */
typedef struct trt_dense_u8s8_params {
  const int8_t *w;       /* out x in_pad */
  const int32_t *w_sum;  /* out: sum_i q_w[o][i] */
  const float *w_scale;  /* out, > 0 */
  const float *b;        /* out, or NULL */
  size_t in_pad, out;
  int relu;
} trt_dense_u8s8_params;
typedef void (*trt_dense_u8s8_fn)(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n,
                                  const int32_t *x_zp, const float *x_scale, float *y);

/* Per-head asymmetric u8 quantization (the user heads for an int8 store,
 * and the input of an s8 layer): for each of n_heads heads of dim values,
 * the range [min(0, min x), max(0, max x)] maps to 0..qmax: scale[u] =
 * range / qmax, zp[u] = round(-min / scale[u]), q = clamp(round(x / scale[u])
 * + zp[u], 0, qmax), rounding to nearest even. qmax is 255, or 127 for the
 * kernel sets whose int8 kernels take 7-bit activations (towerrt_kernels,
 * u8_max). Every variant writes the same bytes for finite input. */
typedef void (*trt_quantize_u8_fn)(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp,
                                   float *scale);

typedef struct towerrt_kernels {
  const char *name; /* "scalar", "avx2", ... */
  trt_embed_pool_f32_fn embed_pool_f32;
  trt_lightse_f32_fn lightse_f32;
  trt_dense_f32_fn dense_f32;
  trt_maxsim_f32_fn maxsim_f32;
  /* appended: reduced-precision MaxSim for the bf16 / int8 item stores */
  trt_maxsim_bf16_fn maxsim_bf16;
  trt_maxsim_u8s8_fn maxsim_u8s8;
  /* appended: quantized tower weights (the user tower of a quantized model) */
  trt_dense_bf16_fn dense_bf16;
  trt_dense_u8s8_fn dense_u8s8;
  trt_quantize_u8_fn quantize_u8;
  /* appended: the top of the u8 range the runtime quantizes the user heads
   * of an int8 store to for this set's maxsim_u8s8: 255, or 127 where the
   * kernel uses vpmaddubsw (AVX2 without VNNI). With u8 <= 127 its i16 pair
   * sums cannot saturate (kernels/x86/maxsim-u8s8-avx2.c); the kernels stay
   * exact for any byte (a slower path where a byte > 127), so the oracle
   * given the same bytes gives the same int32 sums. The inputs of s8
   * layers stay 0..255 on every set (docs/quantization.md says why). */
  int u8_max;
  /* appended: MaxSim with the user heads packed once per request */
  trt_maxsim_kernel packed_maxsim_f32, packed_maxsim_bf16, packed_maxsim_u8s8;
} towerrt_kernels;

/* scalar oracle */
void trt_embed_pool_f32_scalar(const float *table, size_t dim, const int64_t *ids, size_t n_ids,
                               int mode, float *out);
void trt_lightse_f32_scalar(const float *e, size_t n_fields, size_t dim, const float *w,
                            const float *b, float *scratch, float *out);
void trt_dense_f32_scalar(const float *x, size_t n, size_t in, const float *w, const float *b,
                          size_t out, int relu, float *y);
void trt_maxsim_f32_scalar(const float *user, size_t n_user, const float *items,
                           size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                           size_t dim, float *scores);
void trt_maxsim_bf16_scalar(const uint16_t *user, size_t n_user, const uint16_t *items,
                            size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                            size_t dim, float *scores);
void trt_maxsim_u8s8_scalar(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k,
                            float *scores);
void trt_dense_bf16_scalar(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b,
                           size_t out, int relu, float *y);
void trt_dense_u8s8_scalar(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n,
                           const int32_t *x_zp, const float *x_scale, float *y);
void trt_quantize_u8_scalar(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp, float *scale);

TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_f32_scalar);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_bf16_scalar);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_u8s8_scalar);

/* SIMD variants (kernels/x86, kernels/arm): compiled only for their
 * architecture, callable only where runtime/cpu_features.c says the CPU
 * runs them. */
void trt_maxsim_f32_avx2(const float *user, size_t n_user, const float *items, size_t item_stride,
                         const uint32_t *rows, size_t k, size_t n_item, size_t dim, float *scores);
void trt_maxsim_f32_avx512(const float *user, size_t n_user, const float *items,
                           size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                           size_t dim, float *scores);
void trt_maxsim_f32_neon(const float *user, size_t n_user, const float *items, size_t item_stride,
                         const uint32_t *rows, size_t k, size_t n_item, size_t dim, float *scores);
void trt_dense_f32_avx2(const float *x, size_t n, size_t in, const float *w, const float *b,
                        size_t out, int relu, float *y);
void trt_dense_f32_avx512(const float *x, size_t n, size_t in, const float *w, const float *b,
                          size_t out, int relu, float *y);
void trt_dense_f32_neon(const float *x, size_t n, size_t in, const float *w, const float *b,
                        size_t out, int relu, float *y);
void trt_maxsim_bf16_avx2(const uint16_t *user, size_t n_user, const uint16_t *items,
                          size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                          size_t dim, float *scores);
void trt_maxsim_bf16_avx512(const uint16_t *user, size_t n_user, const uint16_t *items,
                            size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                            size_t dim, float *scores);
void trt_maxsim_bf16_avx512bf16(const uint16_t *user, size_t n_user, const uint16_t *items,
                                size_t item_stride, const uint32_t *rows, size_t k,
                                size_t n_item, size_t dim, float *scores);
void trt_maxsim_bf16_neon(const uint16_t *user, size_t n_user, const uint16_t *items,
                          size_t item_stride, const uint32_t *rows, size_t k, size_t n_item,
                          size_t dim, float *scores);
void trt_maxsim_u8s8_avx2(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k,
                          float *scores);
void trt_maxsim_u8s8_avxvnni(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k, float *scores);
void trt_maxsim_u8s8_avx512vnni(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k,
                                float *scores);
void trt_maxsim_u8s8_neon(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k,
                          float *scores);
void trt_maxsim_u8s8_neondotprod(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k,
                                 float *scores);

void trt_dense_bf16_avx2(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b, size_t out,
                         int relu, float *y);
void trt_dense_bf16_avx512(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b, size_t out,
                           int relu, float *y);
void trt_dense_bf16_avx512bf16(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b,
                               size_t out, int relu, float *y);
void trt_dense_bf16_neon(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b, size_t out,
                         int relu, float *y);
void trt_dense_u8s8_avx2(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                         const float *x_scale, float *y);
void trt_dense_u8s8_avxvnni(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                             const float *x_scale, float *y);
void trt_dense_u8s8_avx512vnni(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                               const float *x_scale, float *y);
void trt_dense_u8s8_neon(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                         const float *x_scale, float *y);
void trt_dense_u8s8_neondotprod(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                                const float *x_scale, float *y);
void trt_embed_pool_f32_avx2(const float *table, size_t dim, const int64_t *ids, size_t n_ids, int mode, float *out);
void trt_embed_pool_f32_avx512(const float *table, size_t dim, const int64_t *ids, size_t n_ids, int mode, float *out);
void trt_embed_pool_f32_neon(const float *table, size_t dim, const int64_t *ids, size_t n_ids, int mode, float *out);
void trt_lightse_f32_avx2(const float *e, size_t n_fields, size_t dim, const float *w, const float *b, float *scratch,
                          float *out);
void trt_lightse_f32_avx512(const float *e, size_t n_fields, size_t dim, const float *w, const float *b, float *scratch,
                            float *out);
void trt_lightse_f32_neon(const float *e, size_t n_fields, size_t dim, const float *w, const float *b, float *scratch,
                          float *out);
void trt_quantize_u8_avx2(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp, float *scale);
void trt_quantize_u8_avx512(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp, float *scale);
void trt_quantize_u8_neon(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp, float *scale);

/* aarch64 matrix extensions (kernels/arm: the -neon-i8mm and -neon-bf16 files; docs/arm.md) */
void trt_maxsim_u8s8_neoni8mm(const trt_maxsim_u8s8_params *p, const uint32_t *rows, size_t k, float *scores);
void trt_dense_u8s8_neoni8mm(const trt_dense_u8s8_params *p, const uint8_t *x, size_t n, const int32_t *x_zp,
                             const float *x_scale, float *y);
void trt_maxsim_bf16_neonbf16(const uint16_t *user, size_t n_user, const uint16_t *items, size_t item_stride,
                              const uint32_t *rows, size_t k, size_t n_item, size_t dim, float *scores);
void trt_dense_bf16_neonbf16(const uint16_t *x, size_t n, size_t in, const uint16_t *w, const float *b, size_t out,
                             int relu, float *y);

/* Packed MaxSim of every SIMD variant above, same names. */
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_f32_avx2);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_f32_avx512);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_f32_neon);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_bf16_avx2);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_bf16_avx512);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_bf16_avx512bf16);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_bf16_neon);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_bf16_neonbf16);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_u8s8_avx2);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_u8s8_avxvnni);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_u8s8_avx512vnni);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_u8s8_neon);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_u8s8_neondotprod);
TRT_DECLARE_PACKED_MAXSIM(trt_maxsim_u8s8_neoni8mm);

#endif
