/* Dense layer Y = act(X W^T + b), aarch64 NEON, W in PyTorch's out x in
 * layout; the NEON twin of kernels/x86/dense-f32-avx512.c. A block of 4 rows
 * x 4 outputs keeps 16 accumulators along `in` (each W vector is loaded once
 * for 4 rows when n >= 4), then reduces four of them at once with two
 * levels of faddp. A ragged `in` ends with one step on zero-padded copies,
 * so no read passes a row. */
#include <arm_neon.h>
#include <string.h>

#include "../dense-blocks.h"
#include "../kernels.h"

#include "../inline.h"
#define ROWS 4
#define OUTS 4

/* Lane j of the result = the sum of the 4 lanes of the j-th argument. */
TRT_INLINE float32x4_t hsum4(float32x4_t a, float32x4_t b, float32x4_t c, float32x4_t d) {
  return vpaddq_f32(vpaddq_f32(a, b), vpaddq_f32(c, d));
}

/* The last n < 4 values of a row, zero-padded. */
static inline float32x4_t load_tail(const float *p, size_t n) {
  float t[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  memcpy(t, p, n * sizeof *p);
  return vld1q_f32(t);
}

TRT_INLINE void block(const float *x, size_t in, const float *w, const float *b, size_t out,
                      int relu, float *y, size_t o0, const int nr, const int no) {
  float32x4_t acc[ROWS][OUTS];
#pragma GCC unroll 4
  for (int r = 0; r < ROWS; r++)
#pragma GCC unroll 4
    for (int o = 0; o < OUTS; o++) acc[r][o] = vdupq_n_f32(0.0f);
  size_t i = 0;
  for (; i + 4 <= in; i += 4) {
    float32x4_t xv[ROWS];
#pragma GCC unroll 4
    for (int r = 0; r < nr; r++) xv[r] = vld1q_f32(x + (size_t)r * in + i);
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) {
      float32x4_t wv = vld1q_f32(w + (o0 + (size_t)o) * in + i);
#pragma GCC unroll 4
      for (int r = 0; r < nr; r++) acc[r][o] = vfmaq_f32(acc[r][o], wv, xv[r]);
    }
  }
  if (i < in) {
#pragma GCC unroll 4
    for (int o = 0; o < no; o++) {
      float32x4_t wv = load_tail(w + (o0 + (size_t)o) * in + i, in - i);
#pragma GCC unroll 4
      for (int r = 0; r < nr; r++) acc[r][o] = vfmaq_f32(acc[r][o], wv, load_tail(x + (size_t)r * in + i, in - i));
    }
  }
  float bias[OUTS] = {0.0f, 0.0f, 0.0f, 0.0f};
  for (int o = 0; o < no && b; o++) bias[o] = b[o0 + (size_t)o];
#pragma GCC unroll 4
  for (int r = 0; r < nr; r++) {
    float32x4_t s = vaddq_f32(hsum4(acc[r][0], acc[r][1], acc[r][2], acc[r][3]), vld1q_f32(bias));
    /* s < 0 ? 0 : s exactly as the scalar kernel (keeps NaN and -0). */
    if (relu) s = vbslq_f32(vcltq_f32(s, vdupq_n_f32(0.0f)), vdupq_n_f32(0.0f), s);
    float v[4];
    vst1q_f32(v, s);
    for (int o = 0; o < no; o++) y[(size_t)r * out + o0 + (size_t)o] = v[o];
  }
}

/* All outputs of nr rows: 4 at a time, then the ragged rest. */
TRT_INLINE void rows(const float *x, size_t in, const float *w, const float *b, size_t out,
                     int relu, float *y, const int nr) {
#define BLOCK(o0, no) block(x, in, w, b, out, relu, y, o0, nr, no)
  TRT_DENSE_OUTPUT_BLOCKS(out, BLOCK);
#undef BLOCK
}

void trt_dense_f32_neon(const float *x, size_t n, size_t in, const float *w, const float *b,
                        size_t out, int relu, float *y) {
  size_t r = 0;
  for (; r + ROWS <= n; r += ROWS) rows(x + r * in, in, w, b, out, relu, y + r * out, ROWS);
  for (; r < n; r++) rows(x + r * in, in, w, b, out, relu, y + r * out, 1);
}
