/* Batched dense layers in bf16 or int8 with towerrt's own kernels: the
 * internal twin of the oneDNN wrapper (onednn_matmul.h), with the same
 * arithmetic, for CPUs where oneDNN has no primitive for that precision
 * (oneDNN 2.x builds bf16 matmul only from AVX-512 on) and for builds
 * without oneDNN. Item-store builds choose it at open time and say so in
 * their engine name (docs/item-stores.md, "Engines").
 *
 * Arithmetic, identical to trt_mm_dense's:
 *  - bf16: weights and each layer's input rounded to bf16 (nearest even),
 *    products exact in fp32, fp32 sums, bias and ReLU in fp32.
 *  - int8: weights s8 per output channel (trt_quantize_weights_s8 to 127
 *    levels);
 *    each call's input quantized with one scale for all its rows
 *    (trt_quantize_batch_int8): u8 after a ReLU, else s8 (run here as u8
 *    with zero point 128, which gives the same integers); int32 sums;
 *    y = sum * (sx * sw[o]) + b, ReLU.
 * Sums run in another order than oneDNN's, so the two engines agree to
 * fp32 reassociation, not bit for bit. */
#ifndef TOWERRT_BATCH_MATMUL_INTERNAL_H
#define TOWERRT_BATCH_MATMUL_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "model.h"

typedef struct trt_bmm trt_bmm;

/* precision: TOWERRT_PRECISION_BF16 or TOWERRT_PRECISION_INT8 (onednn_matmul.h). Weights are
 * converted on a layer's first call and kept; max_rows and max_in size the
 * per-call activation buffers. */
towerrt_status trt_bmm_create(const towerrt_kernels *k, int precision, size_t max_rows, size_t max_in, trt_bmm **out);
void trt_bmm_free(trt_bmm *bmm);

/* As trt_mm_dense: y[r * ldy + o] = act(b[o] + sum_i W[o][i] x[r * ldx + i])
 * for r < n (n <= max_rows); x_nonneg as there. */
towerrt_status trt_bmm_dense(trt_bmm *bmm, const trt_dense_layer *d, int x_nonneg, const float *x, size_t ldx, size_t n,
                             float *y, size_t ldy);

/* The int8 engines' activation quantization, one scale for n rows of in
 * values (x finite): u8 (x >= 0) with q = min(255, round(x / s)), s =
 * max / 255; else s8 with s = max|x| / 127, rounding half away from zero.
 * Rows of q are q_stride bytes apart. Returns s. */
float trt_quantize_batch_int8(const float *x, size_t ldx, size_t n, size_t in, int u8, void *q, size_t q_stride);

/* The int8 engines' weights: each of the out rows of w (out x in) in s8
 * with its own scale max|row| / w_max (1 for a zero row), q = lrintf(w /
 * scale) clamped to +-w_max, rows q_stride bytes apart (bytes past `in`
 * untouched); row sums into sum (may be NULL). */
void trt_quantize_weights_s8(const float *w, size_t out, size_t in, int w_max, int8_t *q, size_t q_stride, int32_t *sum,
                             float *scale);

#endif
