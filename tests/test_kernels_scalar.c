/* The scalar kernels are the oracle for every SIMD variant, so they are
 * themselves checked against plain double-precision arithmetic on random
 * and ragged shapes. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "kernels/kernels.h"
#include "test_util.h"

static float *rand_array(uint64_t *s, size_t n, float lo, float hi) {
  float *p = malloc((n ? n : 1) * sizeof *p);
  for (size_t i = 0; i < n; i++) p[i] = test_rand_float(s, lo, hi);
  return p;
}

static void test_maxsim(uint64_t *s) {
  for (int iter = 0; iter < 200; iter++) {
    size_t n_user = test_rand_range(s, 1, 40), n_item = test_rand_range(s, 1, 20), dim = test_rand_range(s, 1, 70);
    size_t k = test_rand_range(s, 1, 30), n_rows = test_rand_range(s, 1, 40);
    size_t stride = n_item * dim + test_rand_range(s, 0, 5);
    float *user = rand_array(s, n_user * dim, -1, 1), *items = rand_array(s, n_rows * stride, -1, 1);
    uint32_t *rows = malloc(k * sizeof *rows);
    for (size_t c = 0; c < k; c++) rows[c] = (uint32_t)test_rand_range(s, 0, n_rows - 1);
    float *scores = malloc(k * sizeof *scores);
    int use_rows = iter % 2;
    size_t kk = use_rows ? k : (k < n_rows ? k : n_rows);
    trt_maxsim_f32_scalar(user, n_user, items, stride, use_rows ? rows : NULL, kk, n_item, dim, scores);
    for (size_t c = 0; c < kk; c++) {
      const float *item = items + (use_rows ? rows[c] : c) * stride;
      double want = 0, mag = 0;
      for (size_t u = 0; u < n_user; u++) {
        double best = -INFINITY;
        for (size_t h = 0; h < n_item; h++) {
          double d = 0;
          for (size_t i = 0; i < dim; i++) d += (double)user[u * dim + i] * item[h * dim + i];
          best = fmax(best, d);
        }
        want += best;
        mag += fabs(best) + dim * 1e-7;
      }
      CHECK(fabs(scores[c] - want) <= 1e-5 * mag + 1e-6, "maxsim %zux%zux%zu cand %zu: got %.9g want %.9g", n_user, n_item, dim, c,
            (double)scores[c], want);
    }
    free(user);
    free(items);
    free(rows);
    free(scores);
  }
}

static void test_dense(uint64_t *s) {
  for (int iter = 0; iter < 100; iter++) {
    size_t n = test_rand_range(s, 1, 9), in = test_rand_range(s, 1, 77), out = test_rand_range(s, 1, 50);
    float *x = rand_array(s, n * in, -2, 2), *w = rand_array(s, out * in, -1, 1), *b = rand_array(s, out, -1, 1);
    float *y = malloc(n * out * sizeof *y);
    int relu = iter % 2, with_bias = iter % 3 != 0;
    trt_dense_f32_scalar(x, n, in, w, with_bias ? b : NULL, out, relu, y);
    for (size_t r = 0; r < n; r++)
      for (size_t o = 0; o < out; o++) {
        double acc = with_bias ? b[o] : 0, mag = fabs(acc);
        for (size_t i = 0; i < in; i++) {
          acc += (double)w[o * in + i] * x[r * in + i];
          mag += fabs((double)w[o * in + i] * x[r * in + i]);
        }
        if (relu && acc < 0) acc = 0;
        CHECK(fabs(y[r * out + o] - acc) <= 1e-6 * mag + 1e-7, "dense %zux%zu->%zu: got %.9g want %.9g", n, in, out,
              (double)y[r * out + o], acc);
      }
    free(x), free(w), free(b), free(y);
  }
}

static void test_lightse(uint64_t *s) {
  for (int iter = 0; iter < 100; iter++) {
    size_t F = test_rand_range(s, 1, 12), d = test_rand_range(s, 1, 40);
    float *e = rand_array(s, F * d, -1, 1), *w = rand_array(s, F * F, -3, 3), *b = rand_array(s, F, -1, 1);
    float *out = malloc(F * d * sizeof *out), scratch[64];
    int with_bias = iter % 2;
    trt_lightse_f32_scalar(e, F, d, w, with_bias ? b : NULL, scratch, out);
    double z[16], a[16], amax = -INFINITY, tot = 0;
    for (size_t f = 0; f < F; f++) {
      z[f] = 0;
      for (size_t i = 0; i < d; i++) z[f] += e[f * d + i];
      z[f] /= (double)d;
    }
    for (size_t o = 0; o < F; o++) {
      a[o] = with_bias ? b[o] : 0;
      for (size_t i = 0; i < F; i++) a[o] += (double)w[o * F + i] * z[i];
      amax = fmax(amax, a[o]);
    }
    for (size_t o = 0; o < F; o++) tot += (a[o] = exp(a[o] - amax));
    for (size_t f = 0; f < F; f++)
      for (size_t i = 0; i < d; i++) {
        double want = e[f * d + i] * (1.0 + a[f] / tot);
        CHECK(test_close(out[f * d + i], want, 1e-5, 1e-7), "lightse F=%zu d=%zu: got %.9g want %.9g", F, d, (double)out[f * d + i], want);
      }
    free(e), free(w), free(b), free(out);
  }
}

static void test_pool(uint64_t *s) {
  for (int iter = 0; iter < 200; iter++) {
    size_t vocab = test_rand_range(s, 1, 30), dim = test_rand_range(s, 1, 20), n = test_rand_range(s, 1, 8);
    int mode = iter % 3;
    float *table = rand_array(s, vocab * dim, -1, 1), out[32];
    int64_t ids[8];
    for (size_t j = 0; j < n; j++) ids[j] = (int64_t)test_rand_range(s, 0, vocab - 1) * (test_rand_u64(s) % 3 != 0);
    trt_embed_pool_f32_scalar(table, dim, ids, n, mode, out);
    for (size_t d = 0; d < dim; d++) {
      double sum = 0, best = -INFINITY;
      size_t count = 0;
      for (size_t j = 0; j < n; j++) {
        double v = table[ids[j] * dim + d];
        best = fmax(best, ids[j] ? v : v - 1e9);
        if (ids[j]) sum += v, count++;
      }
      double want = mode == TRT_POOL_MAX ? best : mode == TRT_POOL_SUM ? sum : sum / ((double)count + 1e-8);
      CHECK(test_close(out[d], want, 1e-6, 1e-6), "pool mode %d n=%zu: got %.9g want %.9g", mode, n, (double)out[d], want);
    }
    free(table);
  }
}

int main(void) {
  uint64_t s = test_seed("test_kernels_scalar");
  test_maxsim(&s);
  test_dense(&s);
  test_lightse(&s);
  test_pool(&s);
  return test_finish("test_kernels_scalar");
}
