/* Dense layer y = act(W x + b), W in PyTorch's out x in layout. */
#include "../kernels.h"

void trt_dense_f32_scalar(const float *x, size_t n, size_t in, const float *w, const float *b,
                          size_t out, int relu, float *y) {
  for (size_t r = 0; r < n; r++) {
    const float *xr = x + r * in;
    float *yr = y + r * out;
    for (size_t o = 0; o < out; o++) {
      const float *wo = w + o * in;
      float s = 0.0f;
      for (size_t i = 0; i < in; i++) s += wo[i] * xr[i];
      s += b ? b[o] : 0.0f;
      yr[o] = (relu && s < 0.0f) ? 0.0f : s;
    }
  }
}
