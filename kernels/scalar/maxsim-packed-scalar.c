/* The packed MaxSim of the scalar set (and of every SIMD set for shapes
 * its tile does not take): "packing" copies the user heads (and, for int8,
 * the zero points and scales) as they are, and scoring is the oracle. */
#include <string.h>

#include "../kernels.h"

static size_t up64(size_t n) { return (n + 63) & ~(size_t)63; }

size_t trt_maxsim_f32_scalar_pack_bytes(size_t n_user, size_t dim) { return up64(n_user * dim * sizeof(float)); }

void trt_maxsim_f32_scalar_pack(const trt_maxsim_user *u, void *packed) {
  if (u->n_user && u->dim) memcpy(packed, u->heads, u->n_user * u->dim * sizeof(float));
}

void trt_maxsim_f32_scalar_packed(const void *packed, size_t n_user, const trt_maxsim_items *it, const uint32_t *rows, size_t k,
                                  float *scores) {
  trt_maxsim_f32_scalar(packed, n_user, it->items, it->item_stride / sizeof(float), rows, k, it->n_item, it->dim, scores);
}

size_t trt_maxsim_bf16_scalar_pack_bytes(size_t n_user, size_t dim) { return up64(n_user * dim * sizeof(uint16_t)); }

void trt_maxsim_bf16_scalar_pack(const trt_maxsim_user *u, void *packed) {
  if (u->n_user && u->dim) memcpy(packed, u->heads, u->n_user * u->dim * sizeof(uint16_t));
}

void trt_maxsim_bf16_scalar_packed(const void *packed, size_t n_user, const trt_maxsim_items *it, const uint32_t *rows, size_t k,
                                   float *scores) {
  trt_maxsim_bf16_scalar(packed, n_user, it->items, it->item_stride / sizeof(uint16_t), rows, k, it->n_item, it->dim, scores);
}

/* int8: [u8 heads][zero points][scales], each 64-byte aligned. */
size_t trt_maxsim_u8s8_scalar_pack_bytes(size_t n_user, size_t dim) {
  return up64(n_user * dim) + up64(n_user * sizeof(int32_t)) + up64(n_user * sizeof(float));
}

void trt_maxsim_u8s8_scalar_pack(const trt_maxsim_user *u, void *packed) {
  unsigned char *p = packed;
  if (!u->n_user) return;
  if (u->dim) memcpy(p, u->heads, u->n_user * u->dim);
  memcpy(p + up64(u->n_user * u->dim), u->zp, u->n_user * sizeof(int32_t));
  memcpy(p + up64(u->n_user * u->dim) + up64(u->n_user * sizeof(int32_t)), u->scale, u->n_user * sizeof(float));
}

void trt_maxsim_u8s8_scalar_packed(const void *packed, size_t n_user, const trt_maxsim_items *it, const uint32_t *rows, size_t k,
                                   float *scores) {
  const unsigned char *p = packed;
  size_t heads = up64(n_user * it->dim), zps = up64(n_user * sizeof(int32_t));
  trt_maxsim_u8s8_params q = {p, (const int32_t *)(const void *)(p + heads), (const float *)(const void *)(p + heads + zps), n_user,
                              it->items, it->item_stride, it->colsum, it->colsum_stride, it->item_scale, it->n_item, it->dim};
  trt_maxsim_u8s8_scalar(&q, rows, k, scores);
}
