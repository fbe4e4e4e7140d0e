/* Light-SE field attention (IntTower, layers/interaction.py LightSE). */
#include <math.h>

#include "../kernels.h"

void trt_lightse_f32_scalar(const float *e, size_t n_fields, size_t dim, const float *w,
                            const float *b, float *scratch, float *out) {
  float *z = scratch;
  float *a = scratch + n_fields;
  for (size_t f = 0; f < n_fields; f++) {
    float s = 0.0f;
    for (size_t d = 0; d < dim; d++) s += e[f * dim + d];
    z[f] = s / (float)dim;
  }
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
  for (size_t f = 0; f < n_fields; f++) {
    float att = a[f] / total;
    for (size_t d = 0; d < dim; d++) {
      float v = e[f * dim + d];
      out[f * dim + d] = v + v * att;
    }
  }
}
