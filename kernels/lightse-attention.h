/* The ISA-neutral middle of Light-SE, shared by the scalar oracle and the
 * SIMD variants: from the per-field means z (n_fields), the attention
 * a = softmax(W z + b), written over z's neighbour `a`. n_fields is a few
 * fields, so this part is scalar in every variant; only the per-field mean
 * and the final scaling (dim values per field) are vectorised. */
#ifndef TOWERRT_LIGHTSE_ATTENTION_H
#define TOWERRT_LIGHTSE_ATTENTION_H

#include <math.h>
#include <stddef.h>

static inline void trt_lightse_attention(const float *z, size_t n_fields, const float *w, const float *b, float *a) {
  float amax = -INFINITY;
  for (size_t o = 0; o < n_fields; o++) {
    float s = b ? b[o] : 0.0f;
    for (size_t i = 0; i < n_fields; i++) s += w[o * n_fields + i] * z[i];
    a[o] = s;
    if (s > amax) amax = s;
  }
  float total = 0.0f;
  for (size_t o = 0; o < n_fields; o++) {
    a[o] = expf(a[o] - amax);
    total += a[o];
  }
  for (size_t o = 0; o < n_fields; o++) a[o] /= total;
}

#endif
