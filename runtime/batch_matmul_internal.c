/* bf16 / int8 batched dense layers with the internal kernels
 * (batch_matmul_internal.h). */
#include "batch_matmul_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "onednn_matmul.h"
#include "quantize_heads.h"
#include "status.h"

#define TRT_BMM_MAX_LAYERS (2 * TRT_MAX_LAYERS)

/* One layer's weights in the kernel's precision, made on its first call. */
typedef struct bmm_layer {
  const float *w; /* the f32 weights this was made from (the cache key) */
  uint16_t *w_bf16;
  int8_t *w_s8;   /* out x in_pad */
  int32_t *w_sum; /* int8: row sums */
  float *w_scale; /* int8: per output channel */
  uint32_t in_pad;
} bmm_layer;

struct trt_bmm {
  const towerrt_kernels *k;
  int precision;
  size_t max_rows, max_in;
  bmm_layer layers[TRT_BMM_MAX_LAYERS];
  size_t n_layers;
  void *x;        /* the call's converted input: bf16 (in per row) or u8 (in_pad per row) */
  float *y;       /* dense n x out, when the caller's ldy != out */
  size_t y_cap;
  int32_t *x_zp;  /* int8: per row */
  float *x_scale; /* int8: per row */
};

static size_t pad64(size_t n) { return (n + 63) & ~(size_t)63; }

towerrt_status trt_bmm_create(const towerrt_kernels *k, int precision, size_t max_rows, size_t max_in, trt_bmm **out) {
  *out = NULL;
  if (precision != TOWERRT_PRECISION_BF16 && precision != TOWERRT_PRECISION_INT8)
    return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "internal batch matmul: precision %d is not bf16 or int8", precision);
  trt_bmm *b = calloc(1, sizeof *b);
  if (!b) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
  b->k = k;
  b->precision = precision;
  b->max_rows = max_rows;
  b->max_in = max_in;
  size_t x_bytes = precision == TOWERRT_PRECISION_BF16 ? max_rows * max_in * 2 : max_rows * pad64(max_in);
  b->x = aligned_alloc(64, pad64(x_bytes ? x_bytes : 1));
  b->x_zp = malloc((max_rows ? max_rows : 1) * sizeof *b->x_zp);
  b->x_scale = malloc((max_rows ? max_rows : 1) * sizeof *b->x_scale);
  if (!b->x || !b->x_zp || !b->x_scale) {
    trt_bmm_free(b);
    return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a batch of %zu rows", max_rows);
  }
  /* the bytes past a row's `in` meet zero weights, but must not be
   * uninitialised reads */
  memset(b->x, 0, pad64(x_bytes ? x_bytes : 1));
  *out = b;
  return TOWERRT_OK;
}

void trt_bmm_free(trt_bmm *b) {
  if (!b) return;
  for (size_t i = 0; i < b->n_layers; i++) {
    free(b->layers[i].w_bf16);
    free(b->layers[i].w_s8);
    free(b->layers[i].w_sum);
    free(b->layers[i].w_scale);
  }
  free(b->x);
  free(b->y);
  free(b->x_zp);
  free(b->x_scale);
  free(b);
}

void trt_quantize_weights_s8(const float *w, size_t out, size_t in, int w_max, int8_t *q, size_t q_stride, int32_t *sum,
                             float *scale) {
  const float qmax = (float)w_max;
  for (size_t o = 0; o < out; o++) {
    const float *row = w + o * in;
    float mx = 0.0f;
    for (size_t i = 0; i < in; i++) mx = fmaxf(mx, fabsf(row[i]));
    float s = mx > 0.0f ? mx / qmax : 1.0f;
    int32_t total = 0;
    for (size_t i = 0; i < in; i++) {
      int8_t v = (int8_t)lrintf(fminf(qmax, fmaxf(-qmax, row[i] / s)));
      q[o * q_stride + i] = v;
      total += v;
    }
    if (sum) sum[o] = total;
    scale[o] = s;
  }
}

/* s8 per output channel (127 levels: the u8 x s8 kernels sum in int32). */
static towerrt_status make_s8(const trt_dense_layer *d, bmm_layer *L) {
  L->in_pad = (uint32_t)pad64(d->in);
  L->w_s8 = aligned_alloc(64, (size_t)d->out * L->in_pad);
  L->w_sum = malloc(d->out * sizeof(int32_t));
  L->w_scale = malloc(d->out * sizeof(float));
  if (!L->w_s8 || !L->w_sum || !L->w_scale) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a %u x %u layer", d->out, d->in);
  memset(L->w_s8, 0, (size_t)d->out * L->in_pad);
  trt_quantize_weights_s8(d->w, d->out, d->in, 127, L->w_s8, L->in_pad, L->w_sum, L->w_scale);
  return TOWERRT_OK;
}

static towerrt_status get_layer(trt_bmm *b, const trt_dense_layer *d, bmm_layer **out) {
  for (size_t i = 0; i < b->n_layers; i++)
    if (b->layers[i].w == d->w) {
      *out = &b->layers[i];
      return TOWERRT_OK;
    }
  if (b->n_layers == TRT_BMM_MAX_LAYERS) return trt_fail(TOWERRT_ERR_LIMIT, "internal batch matmul: more than %d layers", TRT_BMM_MAX_LAYERS);
  bmm_layer *L = &b->layers[b->n_layers];
  memset(L, 0, sizeof *L);
  L->w = d->w;
  towerrt_status st = TOWERRT_OK;
  if (b->precision == TOWERRT_PRECISION_BF16) {
    if (!(L->w_bf16 = malloc((size_t)d->out * d->in * sizeof(uint16_t))))
      st = trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory for a %u x %u layer", d->out, d->in);
    else trt_f32_to_bf16_array(d->w, (size_t)d->out * d->in, L->w_bf16);
  } else {
    st = make_s8(d, L);
  }
  b->n_layers++; /* freed with b even when incomplete */
  if (st) return st;
  *out = L;
  return TOWERRT_OK;
}

float trt_quantize_batch_int8(const float *x, size_t ldx, size_t n, size_t in, int u8, void *q, size_t q_stride) {
  /* the max of |x| compares the bit patterns of finite non-negative
   * floats, which order as their values */
  uint32_t mbits = 0;
  for (size_t r = 0; r < n; r++)
    for (size_t i = 0; i < in; i++) {
      uint32_t bits;
      memcpy(&bits, x + r * ldx + i, 4);
      bits &= UINT32_C(0x7FFFFFFF);
      mbits = bits > mbits ? bits : mbits;
    }
  float mx;
  memcpy(&mx, &mbits, 4);
  const float qmax = u8 ? 255.0f : 127.0f;
  float s = mx > 0.0f ? mx / qmax : 1.0f, inv = qmax / (mx > 0.0f ? mx : qmax);
  for (size_t r = 0; r < n; r++) {
    const float *xr = x + r * ldx;
    if (u8) {
      uint8_t *qr = (uint8_t *)q + r * q_stride;
      for (size_t i = 0; i < in; i++) {
        float v = xr[i] * inv + 0.5f;
        v = v < qmax ? v : qmax;
        qr[i] = (uint8_t)(v > 0.0f ? (int32_t)v : 0);
      }
    } else {
      int8_t *qr = (int8_t *)q + r * q_stride;
      for (size_t i = 0; i < in; i++) {
        float v = xr[i] * inv;
        v = v < 127.0f ? v : 127.0f;
        v = v > -127.0f ? v : -127.0f;
        qr[i] = (int8_t)(int32_t)(v >= 0.0f ? v + 0.5f : v - 0.5f);
      }
    }
  }
  return s;
}

static void run_int8(trt_bmm *b, const trt_dense_layer *d, const bmm_layer *L, int x_nonneg, const float *x, size_t ldx,
                     size_t n, float *y) {
  uint8_t *q = b->x;
  float sx = trt_quantize_batch_int8(x, ldx, n, d->in, x_nonneg, q, L->in_pad);
  int32_t zp = 0;
  if (!x_nonneg) { /* s8 -> u8 with zero point 128: the same integers */
    zp = 128;
    for (size_t r = 0; r < n; r++)
      for (uint32_t i = 0; i < d->in; i++) q[r * L->in_pad + i] = (uint8_t)(q[r * L->in_pad + i] ^ 0x80);
  }
  for (size_t r = 0; r < n; r++) {
    b->x_zp[r] = zp;
    b->x_scale[r] = sx;
  }
  trt_dense_u8s8_params p = {L->w_s8, L->w_sum, L->w_scale, d->b, L->in_pad, d->out, d->relu};
  b->k->dense_u8s8(&p, q, n, b->x_zp, b->x_scale, y);
}

towerrt_status trt_bmm_dense(trt_bmm *b, const trt_dense_layer *d, int x_nonneg, const float *x, size_t ldx, size_t n,
                             float *y, size_t ldy) {
  if (!b || !d || !x || !y || !d->w) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "trt_bmm_dense: NULL argument");
  if (n == 0) return TOWERRT_OK;
  if (n > b->max_rows || d->in > b->max_in || ldx < d->in || ldy < d->out)
    return trt_fail(TOWERRT_ERR_SHAPE, "trt_bmm_dense: %zu rows of a %u x %u layer (strides %zu / %zu) exceed the buffers (%zu x %zu)",
                    n, d->out, d->in, ldx, ldy, b->max_rows, b->max_in);
  bmm_layer *L = NULL;
  towerrt_status st = get_layer(b, d, &L);
  if (st) return st;
  float *dst = y;
  if (ldy != d->out) { /* the kernels write dense rows */
    size_t need = n * d->out;
    if (need > b->y_cap) {
      float *p = realloc(b->y, need * sizeof *p);
      if (!p) return trt_fail(TOWERRT_ERR_NO_MEMORY, "out of memory");
      b->y = p;
      b->y_cap = need;
    }
    dst = b->y;
  }
  if (b->precision == TOWERRT_PRECISION_BF16) {
    uint16_t *xb = b->x;
    for (size_t r = 0; r < n; r++) trt_f32_to_bf16_array(x + r * ldx, d->in, xb + r * d->in);
    b->k->dense_bf16(xb, n, d->in, L->w_bf16, d->b, d->out, d->relu, dst);
  } else {
    run_int8(b, d, L, x_nonneg, x, ldx, n, dst);
  }
  if (dst != y)
    for (size_t r = 0; r < n; r++) memcpy(y + r * ldy, dst + r * d->out, d->out * sizeof(float));
  return TOWERRT_OK;
}
