/* Batched dense layers through oneDNN matmul (docs/design.md, Kernels: "batched
 * work uses oneDNN matmul"): Y = act(X W^T + b) for X of n rows, with W the
 * model's folded weights (trt_dense_layer: out x in, row-major), bias and
 * ReLU fused (bias argument / post-ops). fp32, bf16, and int8 (s8 weights
 * with per-output-channel scales, u8 or s8 activations with one scale per
 * call).
 *
 * A trt_mm is a per-user cache (one per builder or per batch job; not
 * shared between threads): the primitive of a (layer, n, strides,
 * precision) is created on its first call and reused afterwards, and the
 * weights are reordered (and quantized) once per layer and layout. Nothing
 * is created per batch once every shape has been seen.
 *
 * Without oneDNN (TOWERRT_WITH_ONEDNN=OFF or not found) the functions exist,
 * trt_mm_available() is 0 and trt_mm_create fails with
 * TOWERRT_ERR_UNSUPPORTED: callers fall back to the internal kernels. */
#ifndef TOWERRT_ONEDNN_MATMUL_H
#define TOWERRT_ONEDNN_MATMUL_H

#include <stddef.h>

#include "model.h"

typedef struct trt_mm trt_mm;

/* f32: fp32 throughout (the internal kernels' results within fp32
 * reassociation). bf16: weights and each layer's input rounded to bf16,
 * fp32 accumulation, bias and output (2x the fp32 GEMM rate on CPUs with
 * AVX512-BF16 or AMX). int8: s8 weights (per-output-channel scales), each
 * layer's input quantized with one scale per call (u8 after a ReLU, else
 * s8): results then depend on the other rows of the call. Precisions are
 * the public towerrt_precision values. */

/* 1 when this build has oneDNN. */
int trt_mm_available(void);
/* "oneDNN 2.6.3, isa avx512_core_bf16" or "oneDNN: not built in". */
const char *trt_mm_describe(void);

/* TOWERRT_OK when oneDNN can make a matmul of this precision on this CPU
 * (oneDNN 2.x: bf16 needs AVX-512), else TOWERRT_ERR_UNSUPPORTED with a
 * message naming the precision, the oneDNN version and its ISA. */
towerrt_status trt_mm_probe(int precision);

/* The largest |s8 weight| of the int8 matmul: 127, or 63 where oneDNN's
 * ISA lacks VNNI (its u8 x s8 pair sums are saturating int16). */
int trt_mm_weight_max(void);

/* threads: 0 keeps oneDNN's default (all cores), else the number of
 * threads oneDNN uses on the calling thread (OpenMP builds of oneDNN).
 * precision: TOWERRT_PRECISION_F32, TOWERRT_PRECISION_BF16 or TOWERRT_PRECISION_INT8. */
towerrt_status trt_mm_create(unsigned threads, int precision, trt_mm **out);
void trt_mm_free(trt_mm *mm);

/* y[r * ldy + o] = act(b[o] + sum_i W[o][i] x[r * ldx + i]) for r < n, o < d->out.
 * Only the d->out first floats of each y row are written. x_nonneg: the
 * caller promises x >= 0 (the output of a ReLU layer): int8 then quantizes
 * x to u8, else to s8. Ignored for fp32. */
towerrt_status trt_mm_dense(trt_mm *mm, const trt_dense_layer *d, int x_nonneg, const float *x, size_t ldx,
                            size_t n, float *y, size_t ldy);

/* Counters for tests and logs: primitives created, weight reorders, calls. */
typedef struct trt_mm_stats {
  size_t primitives, weight_reorders, calls;
} trt_mm_stats;
void trt_mm_get_stats(const trt_mm *mm, trt_mm_stats *out);

#endif
