/* Conversions of FE heads to the reduced precisions of the MaxSim kernels
 * (docs/quantization.md). Shared by the store quantizer and the sessions,
 * so an item and a user head are always converted the same way. */
#ifndef TOWERRT_QUANTIZE_HEADS_H
#define TOWERRT_QUANTIZE_HEADS_H

#include <stddef.h>
#include <stdint.h>

/* Round to nearest even (finite inputs). */
uint16_t trt_f32_to_bf16(float x);
void trt_f32_to_bf16_array(const float *x, size_t n, uint16_t *out);

/* Per user head, asymmetric u8: the range [min(0, min x), max(0, max x)]
 * over the head's dim values maps to 0..qmax (the kernel set's u8_max:
 * 255, or 127 on AVX2); x ~ scale * (q - zp). */
void trt_quantize_user_u8(const float *x, size_t n_heads, size_t dim, int qmax, uint8_t *q, int32_t *zp, float *scale);

/* A quantized layer's input with a calibrated (scale, zero point):
 * q = clamp(round(x / scale) + zp, 0, qmax) (qmax: kernels.h, u8_max). */
void trt_quantize_u8_static(const float *x, size_t n, float scale, int32_t zp, int qmax, uint8_t *q);

/* One item row (heads x dim): symmetric s8 with one scale max|x| / 127,
 * and the column sum of each head. Returns the scale. */
float trt_quantize_item_s8(const float *x, size_t heads, size_t dim, int8_t *q, int32_t *colsum);

#endif
