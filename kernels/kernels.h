/*
 * kernels.h - signatures of the compute kernels and the dispatch table.
 *
 * Kernels are pure functions: raw pointers, sizes and strides in, results
 * out. They allocate nothing, do no I/O and touch no globals. Each ISA
 * lives in its own file (kernels/<isa>/<op>-<types>-<isa>.c) compiled with
 * that ISA's flags; the scalar files are the oracle the others are tested
 * against. The runtime picks one towerrt_kernels table at load.
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

typedef struct towerrt_kernels {
  const char *name; /* "scalar", "avx2", ... */
  trt_embed_pool_f32_fn embed_pool_f32;
  trt_lightse_f32_fn lightse_f32;
  trt_dense_f32_fn dense_f32;
  trt_maxsim_f32_fn maxsim_f32;
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

#endif
