#include "tower_exec.h"

#include <math.h>
#include <string.h>

#include "arena_carve.h"
#include "quantize_heads.h"
#include "status.h"

/* Bytes of n user heads packed for the largest of the set's MaxSim layouts. */
static size_t packed_user_bytes(const towerrt_model *m, size_t n) {
  const trt_maxsim_kernel *k[3] = {&m->kernels.packed_maxsim_f32, &m->kernels.packed_maxsim_bf16, &m->kernels.packed_maxsim_u8s8};
  size_t most = 0;
  for (int i = 0; i < 3; i++) {
    size_t b = k[i]->pack_bytes ? k[i]->pack_bytes(n, m->head_dim) : 0;
    most = b > most ? b : most;
  }
  return most;
}

static size_t layout(const towerrt_model *m, void *arena, trt_workspace *ws) {
  const trt_tower *u = &m->user, *it = &m->item;
  const size_t B = TRT_ITEM_BLOCK, F = sizeof(float);
  size_t n_fe = (size_t)__builtin_popcount(u->fe_present);
  trt_carver c = {arena, 0};
  ws->user_emb = trt_carve(&c, u->input_width * F);
  ws->user_x0 = trt_carve(&c, u->input_width * F);
  ws->user_scratch = trt_carve(&c, 2 * (size_t)u->n_id_fields * F);
  ws->user_a = trt_carve(&c, u->max_width * F);
  ws->user_b = trt_carve(&c, u->max_width * F);
  size_t n_user_heads = n_fe * m->heads_user;
  ws->user_heads = trt_carve(&c, n_user_heads * m->head_dim * F);
  ws->user_bf16 = trt_carve(&c, n_user_heads * m->head_dim * sizeof(uint16_t));
  ws->user_u8 = trt_carve(&c, n_user_heads * m->head_dim);
  ws->user_zp = trt_carve(&c, n_user_heads * sizeof(int32_t));
  ws->user_scale = trt_carve(&c, n_user_heads * F);
  ws->user_packed = trt_carve(&c, packed_user_bytes(m, n_user_heads));
  ws->user_x_bf16 = trt_carve(&c, u->max_width * sizeof(uint16_t));
  ws->user_x_u8 = trt_carve(&c, (u->max_width + 63) & ~(size_t)63);
  ws->item_emb = trt_carve(&c, it->input_width * F);
  ws->item_x0 = trt_carve(&c, B * it->input_width * F);
  ws->item_scratch = trt_carve(&c, 2 * (size_t)it->n_id_fields * F);
  ws->item_a = trt_carve(&c, B * it->max_width * F);
  ws->item_b = trt_carve(&c, B * it->max_width * F);
  ws->item_heads = trt_carve(&c, B * m->heads_item * m->head_dim * F);
  ws->rows = trt_carve(&c, TRT_ID_BLOCK * sizeof(uint32_t));
  return c.used;
}

size_t trt_workspace_bytes(const towerrt_model *m) {
  trt_workspace dry;
  return layout(m, NULL, &dry);
}

void trt_workspace_init(const towerrt_model *m, void *arena, trt_workspace *ws) { layout(m, arena, ws); }

static towerrt_status check_ids(const towerrt_model *m, const trt_tower *t, const int64_t *ids, size_t row) {
  size_t slot = 0;
  for (uint32_t fi = 0; fi < t->n_id_fields; fi++) {
    const trt_field *f = &m->fields[t->first_field + fi];
    for (uint32_t j = 0; j < f->slots; j++, slot++) {
      int64_t id = ids[slot];
      if (id < 0 || id >= (int64_t)f->vocab)
        return trt_fail(TOWERRT_ERR_ID_OUT_OF_RANGE, "%s field '%s' (row %zu, slot %u): id %lld is outside its vocabulary [0, %u)",
                        trt_side_name(f->side), f->name, row, j, (long long)id, f->vocab);
    }
  }
  return TOWERRT_OK;
}

static towerrt_status check_dense(const towerrt_model *m, const trt_tower *t, const float *dense, size_t row) {
  size_t off = 0;
  for (uint32_t fi = t->n_id_fields; fi < t->n_fields; fi++) {
    const trt_field *f = &m->fields[t->first_field + fi];
    for (uint32_t j = 0; j < f->dim; j++, off++)
      if (!isfinite(dense[off]))
        return trt_fail(TOWERRT_ERR_NONFINITE, "%s dense field '%s' (row %zu, element %u) is %s", trt_side_name(f->side), f->name, row, j,
                        isnan(dense[off]) ? "NaN" : "Inf");
  }
  return TOWERRT_OK;
}

towerrt_status trt_check_features(const towerrt_model *m, uint32_t side, const towerrt_features *f, size_t rows) {
  const trt_tower *t = side ? &m->item : &m->user;
  const char *name = trt_side_name(side);
  if (!f) return trt_fail(TOWERRT_ERR_INVALID_ARGUMENT, "%s features are NULL", name);
  /* rows comes from the caller (n_users, n items): rows x slots must not
   * wrap, or a wrapped n_ids would pass the check below. */
  size_t per_row = t->id_slots > t->dense_width ? t->id_slots : t->dense_width;
  if (per_row && rows > SIZE_MAX / sizeof(float) / per_row)
    return trt_fail(TOWERRT_ERR_LIMIT, "%s features: %zu rows x %zu values per row overflow", name, rows, per_row);
  if (f->n_ids != rows * t->id_slots || (t->id_slots && !f->ids))
    return trt_fail(TOWERRT_ERR_SHAPE, "%s features: %zu ids given, the model needs %zu rows x %u id slots = %zu", name, f->n_ids, rows,
                    t->id_slots, rows * t->id_slots);
  if (f->n_dense != rows * t->dense_width || (t->dense_width && !f->dense))
    return trt_fail(TOWERRT_ERR_SHAPE, "%s features: %zu dense values given, the model needs %zu rows x %u = %zu", name, f->n_dense, rows,
                    t->dense_width, rows * t->dense_width);
  for (size_t r = 0; r < rows; r++) {
    towerrt_status st = check_ids(m, t, f->ids + r * t->id_slots, r);
    if (!st && t->dense_width) st = check_dense(m, t, f->dense + r * t->dense_width, r);
    if (st) return st;
  }
  return TOWERRT_OK;
}

/* Gather + pool + Light-SE + concat dense for one row into x0. */
void trt_tower_input(const towerrt_model *m, const trt_tower *t, const int64_t *ids, const float *dense, float *emb,
                        float *scratch, float *x0) {
  const towerrt_kernels *k = &m->kernels;
  size_t slot = 0;
  for (uint32_t fi = 0; fi < t->n_id_fields; fi++) {
    const trt_field *f = &m->fields[t->first_field + fi];
    if (f->kind == TRT_FIELD_SINGLE) /* no padding in single-id fields: id 0 is a real row */
      memcpy(emb + (size_t)fi * t->emb_dim, f->table + (size_t)ids[slot] * t->emb_dim, t->emb_dim * sizeof(float));
    else
      k->embed_pool_f32(f->table, t->emb_dim, ids + slot, f->slots, (int)f->combiner, emb + (size_t)fi * t->emb_dim);
    slot += f->slots;
  }
  size_t id_width = (size_t)t->n_id_fields * t->emb_dim;
  k->lightse_f32(emb, t->n_id_fields, t->emb_dim, t->lightse_w, t->lightse_b, scratch, x0);
  if (t->dense_width) memcpy(x0 + id_width, dense, t->dense_width * sizeof(float));
}

static void dense(const towerrt_model *m, const trt_dense_layer *d, const float *x, size_t n, float *y) {
  m->kernels.dense_f32(x, n, d->in, d->w, d->b, d->out, d->relu, y);
}

/* 1 if no value is Inf or NaN (x * 0 is NaN exactly for those). */
static int all_finite(const float *x, size_t n) {
  float acc = 0.0f;
  for (size_t i = 0; i < n; i++) acc += x[i] * 0.0f;
  return acc == 0.0f;
}

/* One user row through a layer of any weight precision. A quantized layer
 * converts its input first: to bf16, or to u8 with the calibrated
 * (scale, zero point) or, without one, the row's own range. */
void trt_user_dense(const towerrt_model *m, trt_workspace *ws, const trt_dense_layer *d, const float *x, float *y) {
  const towerrt_kernels *k = &m->kernels;
  if (trt_dense_quantized(d) && !all_finite(x, d->in)) {
    /* Rounding would turn an overflowed input into a finite (wrong) one:
     * keep it visible, the session's check of the heads then fails. */
    for (uint32_t o = 0; o < d->out; o++) y[o] = NAN;
    return;
  }
  if (d->wtype == TRT_DTYPE_BF16) {
    trt_f32_to_bf16_array(x, d->in, ws->user_x_bf16);
    k->dense_bf16(ws->user_x_bf16, 1, d->in, d->w_bf16, d->b, d->out, d->relu, y);
  } else if (d->wtype == TRT_DTYPE_S8) {
    int32_t zp = d->x_zp;
    float scale = d->x_scale;
    /* Full u8 on every kernel set: 7-bit layer inputs (kernels.h, u8_max)
     * cost the trained fixtures' int8 model its Spearman bar (0.9989 < 0.999
     * over three layers), so the AVX2 dense kernel takes its exact
     * widening path here; only the MaxSim user heads use u8_max. */
    if (scale > 0.0f) trt_quantize_u8_static(x, d->in, scale, zp, 255, ws->user_x_u8);
    else k->quantize_u8(x, 1, d->in, 255, ws->user_x_u8, &zp, &scale);
    /* The kernel reads in_pad bytes; the weights there are 0, but the bytes
     * are zeroed so that no uninitialised memory is read (valgrind, MSan). */
    memset(ws->user_x_u8 + d->in, 0, d->in_pad - d->in);
    trt_dense_u8s8_params p = {d->w_s8, d->w_sum, d->w_scale, d->b, d->in_pad, d->out, d->relu};
    k->dense_u8s8(&p, ws->user_x_u8, 1, &zp, &scale, y);
  } else {
    dense(m, d, x, 1, y);
  }
}

void trt_user_forward(const towerrt_model *m, const trt_tower *t, trt_workspace *ws, const int64_t *ids, const float *dns,
                      uint32_t fe_mask, float *heads) {
  trt_user_forward_observed(m, t, ws, ids, dns, fe_mask, heads, NULL, NULL);
}

void trt_user_forward_observed(const towerrt_model *m, const trt_tower *t, trt_workspace *ws, const int64_t *ids,
                               const float *dns, uint32_t fe_mask, float *heads, trt_layer_observer observe, void *ctx) {
  trt_tower_input(m, t, ids, dns, ws->user_emb, ws->user_scratch, ws->user_x0);
  const float *x = ws->user_x0;
  float *next = ws->user_a;
  size_t per_layer = (size_t)m->heads_user * m->head_dim;
  uint32_t last = 31u - (uint32_t)__builtin_clz(fe_mask); /* layers after the last FE layer are not needed */
  for (uint32_t L = 0; L <= last; L++) {
    if (observe) observe(ctx, L, x, L ? t->layers[L - 1].out : t->input_width);
    if (fe_mask & (1u << L)) {
      trt_user_dense(m, ws, &t->fe[L], x, heads);
      heads += per_layer;
    }
    if (L == last) break;
    trt_user_dense(m, ws, &t->layers[L], x, next);
    x = next;
    next = next == ws->user_a ? ws->user_b : ws->user_a;
  }
}

void trt_item_forward(const towerrt_model *m, const trt_tower *t, trt_workspace *ws, const int64_t *ids, const float *dns,
                      size_t n) {
  for (size_t r = 0; r < n; r++)
    trt_tower_input(m, t, ids + r * t->id_slots, dns ? dns + r * t->dense_width : NULL, ws->item_emb, ws->item_scratch,
                ws->item_x0 + r * t->input_width);
  const float *x = ws->item_x0;
  float *next = ws->item_a;
  for (uint32_t L = 0; L < t->n_layers; L++) {
    dense(m, &t->layers[L], x, n, next);
    x = next;
    next = next == ws->item_a ? ws->item_b : ws->item_a;
  }
  dense(m, &t->fe[0], x, n, ws->item_heads);
}
