/* Light-SE field attention (IntTower, layers/interaction.py LightSE). */
#include "../kernels.h"
#include "../lightse-attention.h"

void trt_lightse_f32_scalar(const float *e, size_t n_fields, size_t dim, const float *w,
                            const float *b, float *scratch, float *out) {
  float *z = scratch;
  float *a = scratch + n_fields;
  for (size_t f = 0; f < n_fields; f++) {
    float s = 0.0f;
    for (size_t d = 0; d < dim; d++) s += e[f * dim + d];
    z[f] = s / (float)dim;
  }
  trt_lightse_attention(z, n_fields, w, b, a);
  for (size_t f = 0; f < n_fields; f++) {
    float att = a[f];
    for (size_t d = 0; d < dim; d++) {
      float v = e[f * dim + d];
      out[f * dim + d] = v + v * att;
    }
  }
}
